/* test_protocols.c — the shipped protocol files and the strict loader.
 *
 * Part one loads every file in protocols/ and spot-checks values against
 * PROTOCOLS.md and specs/datasets.md. Part two feeds the loader one broken
 * variant of a real protocol per test and asserts the exact message, since
 * the message (file + key path, or file:line:col) is the loader's contract
 * with whoever edits a protocol. Runs from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_protocol.h"
#include "tfiles.h"

static char g_dir[64];   /* scratch directory for broken variants */

/* ---- helpers -------------------------------------------------------------- */

/* Writes g_dir/<name>.json = protocols/<name>.json with the first occurrence
 * of `from` replaced by `to` (which must exist: the test is about that spot). */
static void variant(const char *name, const char *from, const char *to, char *out, size_t cap) {
    char src[256];
    snprintf(src, sizeof src, "protocols/%s.json", name);
    char *t = tf_read(src, NULL);
    char *at = strstr(t, from);
    assert_non_null(at);
    size_t nf = strlen(from), nt = strlen(to), nt_all = strlen(t) - nf + nt;
    char *v = malloc(nt_all + 1);
    assert_non_null(v);
    size_t pre = (size_t)(at - t);
    memcpy(v, t, pre);
    memcpy(v + pre, to, nt);
    strcpy(v + pre + nt, at + nf);
    snprintf(out, cap, "%s/%s.json", g_dir, name);
    tf_spit(out, v);
    free(v);
    free(t);
}

/* Loads the variant and asserts status and the exact message. */
static void expect_error(const char *name, const char *from, const char *to, int code,
                         const char *msg_after_path) {
    char path[256], want[1024];
    lt_protocol *p = malloc(sizeof *p);
    assert_non_null(p);
    variant(name, from, to, path, sizeof path);
    assert_int_equal(lt_protocol_load(path, p), code);
    snprintf(want, sizeof want, "%s: %s", path, msg_after_path);
    assert_string_equal(lt_errmsg(), want);
    unlink(path);
    free(p);
}

static lt_protocol *load(const char *name) {
    char path[256];
    lt_protocol *p = malloc(sizeof *p);
    assert_non_null(p);
    assert_int_equal(lt_protocol_find(name, NULL, path, sizeof path), LT_OK);
    int rc = lt_protocol_load(path, p);
    if (rc != LT_OK) fail_msg("%s: %s", name, lt_errmsg());
    return p;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/lt_test_protocols_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);   /* a sub-directory a failed test left */
        }
        closedir(d);
    }
    return rmdir(g_dir);
}

/* ---- the shipped files ----------------------------------------------------- */

static const char *const k_shipped[] = {
    "cifar100_lt_r10",       "cifar100_lt_r100",      "cifar100_lt_r100_balms", "cifar100_lt_r10_balms",
    "cifar100_lt_r200",      "cifar100_lt_r200_balms", "cifar100_lt_r50",       "cifar100_lt_r50_balms",
    "cifar10_lt_r10",        "cifar10_lt_r100",       "cifar10_lt_r100_balms",  "cifar10_lt_r10_balms",
    "cifar10_lt_r200",       "cifar10_lt_r200_balms", "cifar10_lt_r50",         "cifar10_lt_r50_balms",
    "fmnist_lt_r10",         "fmnist_lt_r100",        "imagenet_lt",            "imagenet_lt_bcrumb",
    "imagenet_lt_cbd",       "imagenet_lt_decoupling", "imagenet_lt_fixture",   "imagenet_lt_ssd",        "inat2018",
    "inat2018_cbd",          "inat2018_decoupling",          "lvis_lt",               "lvis_lt_fixture",        "places_lt"};
#define N_SHIPPED ((int)(sizeof k_shipped / sizeof k_shipped[0]))

typedef struct { int n, bad; char names[32][64]; } list_acc;

static int collect(void *ud, const char *path, const lt_protocol *p, int status, const char *msg) {
    list_acc *a = ud;
    if (status != LT_OK || !p) {
        print_error("invalid protocol %s: %s\n", path, msg);
        a->bad++;
        return 0;
    }
    if (a->n < 32) snprintf(a->names[a->n++], sizeof a->names[0], "%s", p->name);
    return 0;
}

/* Every shipped file loads, and the listing is exactly the expected set in
 * byte order of file name. */
static void test_all_shipped_protocols_load(void **state) {
    (void)state;
    list_acc a = {0};
    assert_int_equal(lt_protocol_list("protocols", collect, &a), LT_OK);
    assert_int_equal(a.bad, 0);
    assert_int_equal(a.n, N_SHIPPED);
    for (int i = 0; i < N_SHIPPED; i++) assert_string_equal(a.names[i], k_shipped[i]);
    for (int i = 0; i < N_SHIPPED; i++) {
        lt_protocol *p = load(k_shipped[i]);
        assert_int_equal(p->version, 1);
        assert_string_equal(p->name, k_shipped[i]);
        assert_int_equal(p->n_seeds, 3);
        for (int s = 0; s < 3; s++) assert_int_equal(p->seeds[s], s);
        assert_int_equal(p->groups.many_gt, 100);
        assert_int_equal(p->groups.few_lt, 20);
        assert_string_equal(p->selection.rule, "last_epoch");
        assert_int_equal(p->ece_bins, 15);
        assert_string_equal(p->metrics[0], "top1");
        assert_int_equal(p->scales[LT_SCALE_CI].test_subset, 2000);
        assert_true(p->description[0] && p->paper_reference[0]);
        for (int s = 0; s < LT_N_SCALES; s++) {
            /* decoupled methods rely on these stage-2 defaults */
            assert_int_equal(p->scales[s].stage2.sampler, LT_SAMPLER_CLASS_BALANCED);
            assert_int_equal(p->scales[s].stage2.bn_eval, 1);
            assert_int_equal(p->scales[s].stage1.sampler, LT_SAMPLER_INSTANCE);
        }
        free(p);
    }
}

/* PROTOCOLS.md §fmnist_lt, the short scale, field by field. */
static void test_fmnist_r100_short_matches_protocols_md(void **state) {
    (void)state;
    lt_protocol *p = load("fmnist_lt_r100");
    const lt_proto_scale *s;
    assert_int_equal(lt_protocol_scale(p, "short", &s), LT_OK);
    assert_string_equal(s->name, "short");
    assert_string_equal(s->arch, "resnet8_cifar");
    assert_int_equal(s->image_size, 28);
    assert_int_equal(s->test_subset, 0);
    const lt_proto_stage *st = &s->stage1;
    assert_int_equal(st->epochs, 30);
    assert_int_equal(st->batch, 128);
    assert_int_equal(st->drop_last, 1);
    assert_int_equal(st->optimizer, LT_OPT_SGD);
    assert_true(st->momentum == 0.9);
    assert_int_equal(st->nesterov, 0);
    assert_true(st->weight_decay == 5e-4);
    assert_true(st->base_lr == 0.1);
    assert_int_equal(st->sched.kind, LT_SCHED_COSINE);
    assert_int_equal(st->sched.per_epoch_update, 0);
    assert_int_equal(st->sched.warmup_epochs, 1);
    assert_int_equal(st->sched.warmup_per_epoch, 0);
    /* stage 2: 10 epochs, cb sampling, lr 0.1 cosine without warm-up, wd 5e-4, BN eval */
    st = &s->stage2;
    assert_int_equal(st->epochs, 10);
    assert_int_equal(st->batch, 128);
    assert_true(st->base_lr == 0.1);
    assert_true(st->momentum == 0.9);
    assert_true(st->weight_decay == 5e-4);
    assert_int_equal(st->sched.kind, LT_SCHED_COSINE);
    assert_int_equal(st->sched.warmup_epochs, 0);
    assert_int_equal(st->sampler, LT_SAMPLER_CLASS_BALANCED);
    assert_int_equal(st->bn_eval, 1);
    /* data side: pad 2 with the zero pixel, 28x28 crop, flip 0.5, mean/std */
    assert_int_equal(s->aug.kind, LT_PROTO_AUG_PAD_CROP);
    assert_int_equal(s->aug.pad, 2);
    assert_int_equal(s->aug.pad_fill, 0);
    assert_int_equal(s->aug.size, 28);
    assert_true(s->aug.hflip_p == 0.5);
    assert_int_equal(s->aug.test_kind, LT_PROTO_TEST_NONE);
    assert_int_equal(p->norm.n, 1);
    assert_true(p->norm.mean[0] == 0.2860 && p->norm.std[0] == 0.3530);
    assert_string_equal(p->dataset.name, "fmnist");
    assert_int_equal(p->dataset.profile.kind, LT_PROTO_EXP);
    assert_true(p->dataset.profile.imbalance_ratio == 100.0);
    assert_int_equal(p->dataset.profile.n_max, 6000);
    assert_int_equal(p->dataset.profile.subset_seed, 0);
    /* the warm-up really is per iteration over the first epoch, then cosine */
    lt_sched sch;
    lt_proto_stage_sched(&s->stage1, &sch);
    assert_true(fabs(lt_sched_lr(&sch, 0, 100) - 0.1 * 1 / 100) < 1e-12);
    assert_true(fabs(lt_sched_lr(&sch, 99, 100) - 0.1) < 1e-12);
    assert_true(lt_sched_lr(&sch, 30 * 100, 100) < 1e-12);
    free(p);
}

/* ci: 2 epochs (stage 2: 1) on the first 2000 test images; full: ResNet-32, 200 epochs. */
static void test_fmnist_r100_ci_and_full(void **state) {
    (void)state;
    lt_protocol *p = load("fmnist_lt_r100");
    const lt_proto_scale *ci, *full;
    assert_int_equal(lt_protocol_scale(p, "ci", &ci), LT_OK);
    assert_int_equal(lt_protocol_scale(p, "full", &full), LT_OK);
    assert_int_equal(ci->stage1.epochs, 2);
    assert_int_equal(ci->stage2.epochs, 1);
    assert_int_equal(ci->test_subset, 2000);
    assert_string_equal(full->arch, "resnet32_cifar");
    assert_int_equal(full->stage1.epochs, 200);
    assert_int_equal(full->stage1.batch, 128);
    assert_true(full->stage1.weight_decay == 5e-4);
    assert_int_equal(full->test_subset, 0);
    free(p);
}

/* cifar100_lt_r100 full = the LDAM-DRW schedule. */
static void test_cifar100_r100_full_is_ldam(void **state) {
    (void)state;
    lt_protocol *p = load("cifar100_lt_r100");
    const lt_proto_scale *s;
    assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
    assert_string_equal(s->arch, "resnet32_cifar");
    const lt_proto_stage *st = &s->stage1;
    assert_int_equal(st->epochs, 200);
    assert_int_equal(st->batch, 128);
    assert_true(st->momentum == 0.9);
    assert_true(st->weight_decay == 2e-4);
    assert_true(st->base_lr == 0.1);
    assert_int_equal(st->sched.kind, LT_SCHED_MULTISTEP);
    assert_int_equal(st->sched.warmup_epochs, 5);
    assert_int_equal(st->sched.warmup_per_epoch, 1);
    assert_int_equal(st->sched.n_milestones, 2);
    assert_int_equal(st->sched.milestones[0], 160);
    assert_int_equal(st->sched.milestones[1], 180);
    assert_true(st->sched.gamma == 0.01);
    /* pad-4 crop 32 + flip, CIFAR mean/std */
    assert_int_equal(s->aug.kind, LT_PROTO_AUG_PAD_CROP);
    assert_int_equal(s->aug.pad, 4);
    assert_int_equal(s->aug.size, 32);
    assert_true(p->norm.mean[0] == 0.4914 && p->norm.mean[2] == 0.4465);
    assert_true(p->norm.std[0] == 0.2023 && p->norm.std[2] == 0.2010);
    /* as an engine schedule: 0.1*e/5 warm-up, then 0.1, 0.1*0.01, 0.1*0.0001 */
    lt_sched sch;
    lt_proto_stage_sched(st, &sch);
    const long ipe = 85;
    assert_true(fabs(lt_sched_lr(&sch, 0, ipe) - 0.02) < 1e-12);
    assert_true(fabs(lt_sched_lr(&sch, 4 * ipe, ipe) - 0.1) < 1e-12);
    assert_true(fabs(lt_sched_lr(&sch, 100 * ipe, ipe) - 0.1) < 1e-12);
    assert_true(fabs(lt_sched_lr(&sch, 160 * ipe, ipe) - 1e-3) < 1e-15);
    assert_true(fabs(lt_sched_lr(&sch, 199 * ipe, ipe) - 1e-5) < 1e-17);
    /* short: ResNet-8, 30 epochs */
    assert_int_equal(lt_protocol_scale(p, "short", &s), LT_OK);
    assert_string_equal(s->arch, "resnet8_cifar");
    assert_int_equal(s->stage1.epochs, 30);
    free(p);
}

/* Train totals and group sizes from specs/datasets.md §1.3, §2.4, §3-§6. */
static void test_expected_train_totals_and_groups(void **state) {
    (void)state;
    static const struct { const char *name; long total; int g[3]; } want[] = {
        {"fmnist_lt_r100", 14886, {8, 2, 0}},     {"fmnist_lt_r10", 24516, {10, 0, 0}},
        {"cifar10_lt_r10", 20431, {10, 0, 0}},    {"cifar10_lt_r50", 13996, {9, 1, 0}},
        {"cifar10_lt_r100", 12406, {8, 2, 0}},    {"cifar10_lt_r200", 11203, {7, 3, 0}},
        {"cifar100_lt_r10", 19573, {69, 31, 0}},  {"cifar100_lt_r50", 12608, {41, 41, 18}},
        {"cifar100_lt_r100", 10847, {35, 35, 30}}, {"cifar100_lt_r200", 9502, {30, 31, 39}},
        {"imagenet_lt", 115846, {-1, -1, -1}},    {"places_lt", 62500, {131, 163, 71}},
        {"inat2018", 437513, {-1, -1, -1}},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        lt_protocol *p = load(want[i].name);
        assert_int_equal(p->dataset.expected_train_size, want[i].total);
        for (int g = 0; g < 3; g++) assert_int_equal(p->groups.expected[g], want[i].g[g]);
        free(p);
    }
    /* fmnist IR 100 class counts (PROTOCOLS.md) */
    static const long fm[10] = {6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60};
    long c[10];
    lt_protocol *p = load("fmnist_lt_r100");
    assert_int_equal(lt_protocol_class_counts(p, c, 10), LT_OK);
    for (int i = 0; i < 10; i++) assert_int_equal(c[i], fm[i]);
    assert_int_equal(lt_protocol_class_counts(p, c, 9), LT_EINVAL);
    free(p);
    p = load("lvis_lt");
    assert_int_equal(p->dataset.expected_train_size, -1);
    assert_int_equal(p->dataset.profile.kind, LT_PROTO_OBJECT_CROPS);
    assert_int_equal(p->dataset.profile.crop_size, 112);
    assert_int_equal(p->dataset.profile.min_box_size, 16);
    assert_int_equal(p->dataset.profile.max_train_per_class, 1000);
    assert_int_equal(p->dataset.profile.n_drop_ids, 17);
    assert_string_equal(p->groups.frequency_groups, "lvis_frequency");
    int has_map = 0;
    for (int i = 0; i < p->n_metrics; i++) has_map |= !strcmp(p->metrics[i], "map");
    assert_true(has_map);
    assert_int_equal(lt_protocol_class_counts(p, NULL, 0), LT_EINVAL);
    free(p);
}

/* places_lt full needs an ImageNet-pretrained ResNet-152 and says so. */
static void test_places_full_refuses_without_init_checkpoint(void **state) {
    (void)state;
    lt_protocol *p = load("places_lt");
    const lt_proto_scale *full, *shrt;
    assert_int_equal(lt_protocol_scale(p, "full", &full), LT_OK);
    assert_int_equal(lt_protocol_scale(p, "short", &shrt), LT_OK);
    assert_int_equal(full->init.required, 1);
    assert_string_equal(full->init.arch, "resnet152");
    assert_string_equal(full->arch, "resnet152");
    assert_int_equal(lt_protocol_check_init(p, full, NULL), LT_ESTATE);
    assert_non_null(strstr(lt_errmsg(), "protocol places_lt (scale full) refuses to run without "
                                        "its initial checkpoint"));
    assert_non_null(strstr(lt_errmsg(), "[arch resnet152, pretrained on imagenet]"));
    char missing[256];
    snprintf(missing, sizeof missing, "%s/no_such.ckpt", g_dir);
    assert_int_equal(lt_protocol_check_init(p, full, missing), LT_EIO);
    char ck[256];
    snprintf(ck, sizeof ck, "%s/r152.ckpt", g_dir);
    tf_spit(ck, "weights");
    assert_int_equal(lt_protocol_check_init(p, full, ck), LT_OK);
    unlink(ck);
    /* short and ci train from scratch */
    assert_int_equal(shrt->init.required, 0);
    assert_int_equal(lt_protocol_check_init(p, shrt, NULL), LT_OK);
    /* no other protocol needs one */
    lt_protocol *q = load("imagenet_lt");
    for (int s = 0; s < LT_N_SCALES; s++) assert_int_equal(q->scales[s].init.required, 0);
    free(q);
    free(p);
}

static void test_find_scale_and_engine_mapping(void **state) {
    (void)state;
    char path[256];
    assert_int_equal(lt_protocol_find("cifar10_lt_r10", NULL, path, sizeof path), LT_OK);
    assert_string_equal(path, "protocols/cifar10_lt_r10.json");
    assert_int_equal(lt_protocol_find("cifar10_lt_r10", "protocols", path, sizeof path), LT_OK);
    assert_string_equal(path, "protocols/cifar10_lt_r10.json");
    assert_int_equal(lt_protocol_find("protocols/places_lt.json", NULL, path, sizeof path), LT_OK);
    assert_string_equal(path, "protocols/places_lt.json");
    assert_int_equal(lt_protocol_find("cifar10_lt_r7", NULL, path, sizeof path), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "unknown protocol 'cifar10_lt_r7'"));
    assert_non_null(strstr(lt_errmsg(), "protocols/cifar10_lt_r7.json"));
    assert_int_equal(lt_protocol_find("cifar10_lt_r10", NULL, path, 8), LT_EINVAL);

    lt_protocol *p = load("imagenet_lt");
    const lt_proto_scale *s;
    assert_int_equal(lt_protocol_scale(p, "medium", &s), LT_EINVAL);
    assert_string_equal(lt_errmsg(), "unknown scale 'medium' (expected ci, short or full)");
    /* full: RRC 224 + flip + jitter 0.4 from images stored at 256 */
    assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
    lt_aug a;
    assert_int_equal(lt_proto_engine_aug(p, s, &a), LT_OK);
    assert_int_equal(a.out_h, 224);
    assert_int_equal(a.rrc, 1);
    assert_int_equal(a.hflip, 1);
    assert_true(fabsf(a.jitter - 0.4f) < 1e-7f);
    assert_true(fabsf(a.mean[0] - 0.485f) < 1e-7f);
    /* short overrides the augmentation: pad-crop at 64 */
    assert_int_equal(lt_protocol_scale(p, "short", &s), LT_OK);
    assert_int_equal(s->aug_overridden, 1);
    assert_int_equal(lt_proto_engine_aug(p, s, &a), LT_OK);
    assert_int_equal(a.out_h, 64);
    assert_int_equal(a.pad, 4);
    assert_int_equal(a.random_crop, 1);
    assert_int_equal(a.rrc, 0);
    free(p);
}

/* ---- broken variants: one per error class ------------------------------------ */

static void test_unknown_key_names_full_path(void **state) {
    (void)state;
    expect_error("fmnist_lt_r100", "\"epochs\": 30,", "\"epoch\": 30,", LT_EDATA,
                 "unknown key 'scales.short.stage1.epoch'");
    expect_error("fmnist_lt_r100", "\"seeds\"", "\"seed\": 1, \"seeds\"", LT_EDATA,
                 "unknown key 'seed'");
    /* a key of another kind is unknown here, and the message says why */
    expect_error("fmnist_lt_r100", "\"warmup_epochs\": 1,", "\"warmup_epochs\": 1, \"gamma\": 0.1,",
                 LT_EDATA,
                 "unknown key 'scales.ci.stage1.schedule.gamma' (not used by schedule kind "
                 "'cosine')");
}

static void test_duplicate_key(void **state) {
    (void)state;
    expect_error("cifar10_lt_r10", "\"batch\": 128,", "\"batch\": 128, \"batch\": 64,", LT_EDATA,
                 "duplicate key 'scales.ci.stage1.batch'");
}

static void test_wrong_type(void **state) {
    (void)state;
    expect_error("fmnist_lt_r100", "\"batch\": 128,", "\"batch\": \"128\",", LT_EDATA,
                 "key 'scales.ci.stage1.batch' must be an integer, got string");
    expect_error("fmnist_lt_r100", "\"nesterov\": false", "\"nesterov\": 0", LT_EDATA,
                 "key 'scales.ci.stage1.nesterov' must be a boolean, got number");
    expect_error("fmnist_lt_r100", "\"epochs\": 30,", "\"epochs\": 30.5,", LT_EDATA,
                 "key 'scales.short.stage1.epochs' must be an integer, got 30.5");
}

static void test_missing_field(void **state) {
    (void)state;
    expect_error("fmnist_lt_r100", "\"drop_last\": true,", "", LT_EDATA,
                 "missing required key 'scales.ci.stage1.drop_last'");
    expect_error("cifar100_lt_r100", "\"expected_train_size\": 10847,", "", LT_EDATA,
                 "missing required key 'dataset.expected_train_size'");
}

static void test_malformed_json_has_line_and_column(void **state) {
    (void)state;
    char path[256], want[512];
    lt_protocol *p = malloc(sizeof *p);
    assert_non_null(p);
    /* drop the comma that ends line 3: cJSON stops at the next key, line 4 column 3 */
    variant("fmnist_lt_r100", "\"version\": 1,", "\"version\": 1", path, sizeof path);
    assert_int_equal(lt_protocol_load(path, p), LT_EDATA);
    snprintf(want, sizeof want, "%s:4:3: malformed JSON near '\"description\": \"Fashion'", path);
    assert_string_equal(lt_errmsg(), want);
    /* a truncated file */
    tf_spit(path, "{\n  \"protocol\": \"fmnist_lt_r100\",\n  \"version\": [1,\n");
    assert_int_equal(lt_protocol_load(path, p), LT_EDATA);
    snprintf(want, sizeof want, "%s:4:1: malformed JSON (unexpected end of file)", path);
    assert_string_equal(lt_errmsg(), want);
    /* trailing garbage after the object */
    tf_spit(path, "{}\nx");
    assert_int_equal(lt_protocol_load(path, p), LT_EDATA);
    snprintf(want, sizeof want, "%s:2:1: malformed JSON near 'x'", path);
    assert_string_equal(lt_errmsg(), want);
    unlink(path);
    free(p);
}

static void test_unknown_arch(void **state) {
    (void)state;
    expect_error("cifar10_lt_r100", "\"resnet32_cifar\"", "\"resnet9\"", LT_EDATA,
                 "key 'scales.full.arch': unknown architecture 'resnet9' (known: resnet8_cifar, "
                 "resnet20_cifar, resnet32_cifar, resnet56_cifar, resnet10, resnet18, resnet34, "
                 "resnet50, resnet101, resnet152, resnext50_32x4d)");
}

static void test_out_of_range_values(void **state) {
    (void)state;
    expect_error("cifar10_lt_r100", "\"epochs\": 200,", "\"epochs\": -3,", LT_EDATA,
                 "key 'scales.full.stage1.epochs' must be >= 1, got -3");
    expect_error("fmnist_lt_r100", "\"epochs\": 30,", "\"epochs\": 0,", LT_EDATA,
                 "key 'scales.short.stage1.epochs' must be >= 1, got 0");
    expect_error("fmnist_lt_r100", "\"batch\": 128,", "\"batch\": 0,", LT_EDATA,
                 "key 'scales.ci.stage1.batch' must be >= 1, got 0");
    expect_error("fmnist_lt_r100", "\"base_lr\": 0.1,", "\"base_lr\": -0.1,", LT_EDATA,
                 "key 'scales.ci.stage1.base_lr' must be >= 0, got -0.1");
    expect_error("fmnist_lt_r100", "\"kind\": \"cosine\"", "\"kind\": \"linear\"", LT_EDATA,
                 "key 'scales.ci.stage1.schedule.kind' is 'linear', expected one of: constant, "
                 "cosine, multistep, cosine_epoch");
    expect_error("cifar100_lt_r100", "\"milestones\": [160, 180]", "\"milestones\": [180, 160]",
                 LT_EDATA, "key 'scales.full.stage1.schedule.milestones' must be strictly increasing");
    expect_error("cifar100_lt_r100", "\"milestones\": [160, 180]", "\"milestones\": [160, 200]",
                 LT_EDATA,
                 "key 'scales.full.stage1.schedule.milestones[1]' must be between 1 and 199, got 200");
    expect_error("fmnist_lt_r100", "\"momentum\": 0.9,", "\"momentum\": 1.0,", LT_EDATA,
                 "key 'scales.ci.stage1.momentum' must be in [0, 1), got 1");
}

/* The BALMS variants (PROTOCOLS.md: a method whose paper used another
 * schedule ships it as a named variant): every number derived from the
 * official code's rules and the subset's size N, as the code derives them
 * (len(loader) = ceil(N / 512), an epoch runs floor(N / 512) steps). */
static void test_balms_variants_follow_the_code(void **state) {
    (void)state;
    static const char *const base[] = {"cifar10_lt_r200",  "cifar10_lt_r100",  "cifar10_lt_r50",
                                       "cifar10_lt_r10",   "cifar100_lt_r200", "cifar100_lt_r100",
                                       "cifar100_lt_r50",  "cifar100_lt_r10"};
    static const int e1_spec[] = {591, 520, 465, 325, 685, 591, 520, 334};   /* specs/methods-a.md */
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_balms", base[i]);
        lt_protocol *p = load(name), *b = load(base[i]);
        /* same data, groups, normalisation and test set as the base protocol */
        long N = p->dataset.expected_train_size;
        assert_int_equal(N, b->dataset.expected_train_size);
        assert_string_equal(p->dataset.name, b->dataset.name);
        assert_memory_equal(p->groups.expected, b->groups.expected, sizeof b->groups.expected);
        long len = (N + 511) / 512, steps = N / 512;
        int E1 = (int)((13000 + len - 1) / len), W = (int)((800 + len - 1) / len);
        int E2 = (int)((2000 + steps - 1) / steps);
        assert_int_equal(E1, e1_spec[i]);
        const lt_proto_scale *s;
        assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
        assert_string_equal(s->arch, "resnet32_cifar");
        const lt_proto_stage *st = &s->stage1;
        assert_int_equal(st->epochs, E1);
        assert_int_equal(st->batch, 512);
        assert_int_equal(st->drop_last, 1);
        assert_true(st->momentum == 0.9 && st->weight_decay == 5e-4 && st->base_lr == 0.1 && !st->nesterov);
        assert_int_equal(st->sched.kind, LT_SCHED_COSINE_EPOCH);
        assert_int_equal(st->sched.warmup_epochs, W);
        assert_true(st->sched.warmup_start == 0.5);
        assert_int_equal(s->stage2.epochs, E2);
        assert_int_equal(s->stage2.batch, 512);
        assert_true(s->stage2.weight_decay == 5e-4 && s->stage2.base_lr == 0.1);
        assert_int_equal(s->stage2.sched.kind, LT_SCHED_COSINE_EPOCH);
        assert_int_equal(s->stage2.sched.warmup_epochs, 0);
        /* the lr of the code: 0.05 at epoch 1, 0.1 at epoch W, 0 at the last */
        lt_sched sch;
        lt_proto_stage_sched(st, &sch);
        assert_true(fabs(lt_sched_lr(&sch, 0, steps) - 0.05) < 1e-15);
        assert_true(fabs(lt_sched_lr(&sch, (long)(W - 1) * steps, steps) - 0.1) < 1e-15);
        assert_true(fabs(lt_sched_lr(&sch, (long)(E1 - 1) * steps, steps)) < 1e-15);
        /* pad-4 crop + flip + AutoAugment + Cutout(1, 16) at every scale */
        for (int k = 0; k < LT_N_SCALES; k++) {
            s = &p->scales[k];
            assert_int_equal(s->aug.kind, LT_PROTO_AUG_PAD_CROP);
            assert_int_equal(s->aug.pad, 4);
            assert_true(s->aug.hflip_p == 0.5);
            lt_aug a;
            assert_int_equal(lt_proto_engine_aug(p, s, &a), LT_OK);
            assert_int_equal(a.autoaug, LT_AUTOAUG_CIFAR10);
            assert_int_equal(a.cutout_holes, 1);
            assert_int_equal(a.cutout_length, 16);
            assert_int_equal(a.jitter == 0.0f, 1);
        }
        /* the base protocol has neither */
        lt_aug a;
        assert_int_equal(lt_proto_engine_aug(b, &b->scales[LT_SCALE_FULL], &a), LT_OK);
        assert_int_equal(a.autoaug, 0);
        assert_int_equal(a.cutout_holes, 0);
        free(p);
        free(b);
    }
    /* bad values name the key */
    expect_error("cifar10_lt_r200_balms", "\"autoaugment\": \"cifar10\"", "\"autoaugment\": \"imagenet\"",
                 LT_EDATA, "key 'augmentation.train.autoaugment' is 'imagenet', expected one of: cifar10");
    expect_error("cifar10_lt_r200_balms", "\"holes\": 1", "\"holes\": 0", LT_EDATA,
                 "key 'augmentation.train.cutout.holes' must be between 1 and 64, got 0");
    expect_error("cifar10_lt_r200_balms", "\"length\": 16", "\"length\": 16, \"fill\": 3", LT_EDATA,
                 "unknown key 'augmentation.train.cutout.fill'");
    expect_error("cifar10_lt_r200_balms", "\"warmup_start_factor\": 0.5", "\"warmup_start_factor\": 0", LT_EDATA,
                 "key 'scales.short.stage1.schedule.warmup_start_factor' must be in (0, 1], got 0");
    expect_error("cifar10_lt_r200_balms", "\"update\": \"per_epoch\",\n          \"warmup_epochs\": 8",
                 "\"update\": \"per_iteration\",\n          \"warmup_epochs\": 8", LT_EDATA,
                 "key 'scales.short.stage1.schedule': schedule kind 'cosine_epoch' changes the rate once an "
                 "epoch; 'update' and 'warmup_mode' must be \"per_epoch\"");
    expect_error("cifar10_lt_r200_balms", "\"warmup_epochs\": 8", "\"warmup_epochs\": 1", LT_EDATA,
                 "key 'scales.short.stage1.schedule.warmup_epochs' is 1: a cosine_epoch warm-up takes 0 or at "
                 "least 2 epochs");
    expect_error("cifar10_lt_r200", "\"kind\": \"multistep\"", "\"kind\": \"cosine_epoch\"", LT_EDATA,
                 "unknown key 'scales.short.stage1.schedule.milestones' (not used by schedule kind 'cosine_epoch')");
    /* AutoAugment's policy is for RGB: a 1-channel protocol that asks for it is refused */
    char path[256];
    variant("fmnist_lt_r100", "\"color_jitter\": null", "\"color_jitter\": null, \"autoaugment\": \"cifar10\"",
            path, sizeof path);
    lt_protocol *f = malloc(sizeof *f);
    assert_non_null(f);
    assert_int_equal(lt_protocol_load(path, f), LT_OK);
    assert_int_equal(f->scales[LT_SCALE_SHORT].aug.autoaug, LT_AUTOAUG_CIFAR10);
    lt_aug a;
    assert_int_equal(lt_proto_engine_aug(f, &f->scales[LT_SCALE_SHORT], &a), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "AutoAugment's CIFAR-10 policy needs RGB images"));
    unlink(path);
    free(f);
}

/* Removes the dotted path's last key from j (which must exist). */
static void drop_key(cJSON *j, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL, *k = strtok_r(buf, ".", &save), *next;
    while ((next = strtok_r(NULL, ".", &save))) {
        j = cJSON_GetObjectItemCaseSensitive(j, k);
        if (!j) fail_msg("no %s", path);
        k = next;
    }
    if (!cJSON_GetObjectItemCaseSensitive(j, k)) fail_msg("no %s", path);
    cJSON_DeleteItemFromObjectCaseSensitive(j, k);
}

/* The methods' own recipes on the large datasets (SSD, Breadcrumb, CBD):
 * each variant is its base protocol but for the keys listed here, which
 * hold the official code's values (specs/methods-a.md §3, methods-b.md
 * §4.2, §5.2). */
static void test_method_variants_differ_only_in_their_recipe(void **state) {
    (void)state;
    static const struct {
        const char *name, *base, *keys[12];
    } v[] = {
        {"imagenet_lt_ssd", "imagenet_lt",
         {"scales.full.arch", "scales.full.stage1.epochs", "scales.full.stage1.batch", "scales.full.stage1.drop_last",
          "scales.full.stage1.base_lr", "scales.full.stage2.epochs", "scales.full.stage2.drop_last", NULL}},
        {"imagenet_lt_bcrumb", "imagenet_lt", {"scales.full.stage1.epochs", NULL}},
        {"imagenet_lt_decoupling", "imagenet_lt",
         {"scales.full.arch", "scales.full.stage1.drop_last", "scales.full.stage1.schedule",
          "scales.full.stage2.drop_last", "scales.full.stage2.schedule", NULL}},
        {"inat2018_decoupling", "inat2018",
         {"scales.full.stage1.drop_last", "scales.full.stage1.schedule", "scales.full.stage2.drop_last",
          "scales.full.stage2.schedule", NULL}},
        {"imagenet_lt_cbd", "imagenet_lt",
         {"scales.full.arch", "scales.full.stage1.epochs", "scales.full.stage1.batch", "scales.full.stage1.drop_last",
          "scales.full.stage1.base_lr", "scales.full.stage1.weight_decay", "scales.full.stage1.schedule",
          "scales.full.augmentation", NULL}},
        {"inat2018_cbd", "inat2018",
         {"scales.full.arch", "scales.full.stage1.epochs", "scales.full.stage1.batch", "scales.full.stage1.drop_last",
          "scales.full.stage1.base_lr", "scales.full.stage1.weight_decay", "scales.full.stage1.schedule",
          "scales.full.augmentation", NULL}},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char pa[128], pb[128];
        snprintf(pa, sizeof pa, "protocols/%s.json", v[i].name);
        snprintf(pb, sizeof pb, "protocols/%s.json", v[i].base);
        char *ta = tf_read(pa, NULL), *tb = tf_read(pb, NULL);
        cJSON *a = cJSON_Parse(ta), *b = cJSON_Parse(tb);
        assert_non_null(a);
        assert_non_null(b);
        static const char *const always[] = {"protocol", "description", "paper_reference"};
        for (int k = 0; k < 3; k++) {
            drop_key(a, always[k]);
            drop_key(b, always[k]);
        }
        for (int k = 0; v[i].keys[k]; k++) {
            drop_key(a, v[i].keys[k]);
            drop_key(b, v[i].keys[k]);   /* scales.full.augmentation: null in the base */
        }
        if (!cJSON_Compare(a, b, 1)) fail_msg("%s differs from %s beyond its recipe's keys", v[i].name, v[i].base);
        cJSON_Delete(a);
        cJSON_Delete(b);
        free(ta);
        free(tb);
    }
    /* the recipes themselves */
    const lt_proto_scale *s;
    lt_protocol *p = load("imagenet_lt_ssd");
    assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
    assert_string_equal(s->arch, "resnext50_32x4d");
    assert_true(s->stage1.epochs == 135 && s->stage1.batch == 256 && s->stage1.base_lr == 0.1 && s->stage1.drop_last);
    assert_true(s->stage2.epochs == 5 && s->stage2.batch == 512 && s->stage2.base_lr == 0.2 && s->stage2.drop_last);
    assert_true(s->stage1.sched.kind == LT_SCHED_COSINE && s->stage1.sched.per_epoch_update);
    free(p);
    p = load("imagenet_lt_bcrumb");
    assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
    assert_int_equal(s->stage1.epochs, 200);
    free(p);
    /* the decoupling code: epoch k (from 1) at 0.2 (1 + cos(pi k / T)) / 2 */
    static const struct { const char *name, *arch; long n; int e1, e2; } dec[] = {
        {"imagenet_lt_decoupling", "resnext50_32x4d", 115846, 90, 10},
        {"inat2018_decoupling", "resnet50", 437513, 90, 30}};
    for (int d = 0; d < 2; d++) {
        p = load(dec[d].name);
        assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
        assert_string_equal(s->arch, dec[d].arch);
        assert_int_equal(s->stage1.epochs, dec[d].e1);
        assert_int_equal(s->stage2.epochs, dec[d].e2);
        for (int k = 0; k < 2; k++) {
            const lt_proto_stage *g = k ? &s->stage2 : &s->stage1;
            assert_true(g->drop_last && g->sched.kind == LT_SCHED_COSINE_EPOCH && g->sched.warmup_epochs == 0);
            lt_sched sch;
            lt_proto_stage_sched(g, &sch);
            const long ipe = dec[d].n / 512;   /* the code's epoch_steps: 226, 854 */
            for (int e = 1; e <= g->epochs; e++)
                assert_true(fabs(lt_sched_lr(&sch, (long)(e - 1) * ipe, ipe) -
                                 0.2 * (1 + cos(M_PI * e / g->epochs)) / 2) < 1e-15);
        }
        free(p);
    }
    static const char *const cbds[] = {"imagenet_lt_cbd", "inat2018_cbd"};
    for (int k = 0; k < 2; k++) {
        p = load(cbds[k]);
        assert_int_equal(lt_protocol_scale(p, "full", &s), LT_OK);
        assert_string_equal(s->arch, "resnet50");
        assert_true(s->stage1.epochs == (k ? 200 : 90) && s->stage1.weight_decay == (k ? 2e-4 : 5e-4));
        assert_true(s->stage1.batch == 128 && s->stage1.base_lr == 0.05 && s->stage1.drop_last);
        assert_true(s->stage1.sched.kind == LT_SCHED_COSINE && !s->stage1.sched.per_epoch_update &&
                    s->stage1.sched.warmup_epochs == 0);
        assert_int_equal(s->aug_overridden, 1);
        assert_true(s->aug.kind == LT_PROTO_AUG_RRC && s->aug.scale[0] == 0.05 && s->aug.scale[1] == 1.0);
        assert_int_equal(s->aug.has_color_jitter, 0);
        free(p);
    }
}

/* Cross-field rules: derived numbers must agree with the profile. */
static void test_inconsistent_values(void **state) {
    (void)state;
    expect_error("fmnist_lt_r100", "\"expected_train_size\": 14886", "\"expected_train_size\": 14887",
                 LT_EDATA, "key 'dataset.expected_train_size' is 14887 but the exp profile gives 14886");
    expect_error("cifar100_lt_r100", "\"expected_sizes\": [35, 35, 30]",
                 "\"expected_sizes\": [35, 36, 29]", LT_EDATA,
                 "key 'groups.expected_sizes' is [35, 36, 29] but the profile gives [35, 35, 30]");
    expect_error("fmnist_lt_r100", "\"mean\": [0.286]", "\"mean\": [0.286, 0.3]", LT_EDATA,
                 "key 'normalization.mean' must have 1 entries, got 2");
    expect_error("fmnist_lt_r100", "\"protocol\": \"fmnist_lt_r100\"", "\"protocol\": \"fmnist\"",
                 LT_EDATA, "key 'protocol' is 'fmnist' but the file is named 'fmnist_lt_r100.json'");
    expect_error("cifar10_lt_r10", "\"num_classes\": 10", "\"num_classes\": 100", LT_EDATA,
                 "key 'dataset.num_classes' is 100 but dataset 'cifar10' has 10 classes");
}

static void test_unsupported_version(void **state) {
    (void)state;
    expect_error("fmnist_lt_r10", "\"version\": 1,", "\"version\": 2, \"future_key\": 1,", LT_EABI,
                 "protocol version 2 is not supported (this ltbench reads version 1)");
}

/* Loads path and asserts status and the exact message after "path: ". */
static void expect_load_error(const char *path, int code, const char *msg_after_path) {
    lt_protocol *p = malloc(sizeof *p);
    assert_non_null(p);
    char want[1024];
    int rc = lt_protocol_load(path, p);
    if (rc != code) fail_msg("%s: status %d (%s), want %d", path, rc, lt_errmsg(), code);
    snprintf(want, sizeof want, "%s: %s", path, msg_after_path);
    assert_string_equal(lt_errmsg(), want);
    print_message("note: %s\n", lt_errmsg());
    free(p);
}

/* The protocol name becomes results/runs/<name>/ and table and figure file
 * names, so it follows the name rule of lt_names.h ([a-z0-9_]): a file
 * "...json" saying "protocol": ".." matched its stem and wrote runs into
 * results/ instead of results/runs/. */
static void test_protocol_name_rule(void **state) {
    (void)state;
    char path[256], moved[256];
    variant("fmnist_lt_r100", "\"protocol\": \"fmnist_lt_r100\"", "\"protocol\": \"..\"", path, sizeof path);
    snprintf(moved, sizeof moved, "%s/...json", g_dir);
    assert_int_equal(rename(path, moved), 0);
    expect_load_error(moved, LT_EDATA, "key 'protocol' is '..': a protocol name must be [a-z0-9_], 1..63 characters");
    /* as the CLI reaches it: `--protocol ..` is a bare name */
    char found[256];
    assert_int_equal(lt_protocol_find("..", g_dir, found, sizeof found), LT_OK);
    expect_load_error(found, LT_EDATA, "key 'protocol' is '..': a protocol name must be [a-z0-9_], 1..63 characters");
    unlink(moved);
    /* a control character, shown escaped in the message */
    variant("fmnist_lt_r100", "\"protocol\": \"fmnist_lt_r100\"", "\"protocol\": \"bad\\u0001\"", path,
            sizeof path);
    snprintf(moved, sizeof moved, "%s/bad\x01.json", g_dir);
    assert_int_equal(rename(path, moved), 0);
    expect_load_error(moved, LT_EDATA,
                      "key 'protocol' is 'bad\\x01': a protocol name must be [a-z0-9_], 1..63 characters");
    unlink(moved);
    /* upper case is outside the rule as well */
    variant("fmnist_lt_r100", "\"protocol\": \"fmnist_lt_r100\"", "\"protocol\": \"Fmnist\"", path, sizeof path);
    snprintf(moved, sizeof moved, "%s/Fmnist.json", g_dir);
    assert_int_equal(rename(path, moved), 0);
    expect_load_error(moved, LT_EDATA,
                      "key 'protocol' is 'Fmnist': a protocol name must be [a-z0-9_], 1..63 characters");
    unlink(moved);
}

/* cJSON ends a string at an escaped NUL: "closed\u0000 but actually open"
 * read as "closed". Refused wherever it is, naming the key. */
static void test_nul_escape_refused(void **state) {
    (void)state;
    expect_error("fmnist_lt_r100", "\"division\": \"closed\"",
                 "\"division\": \"closed\\u0000 but actually open\"", LT_EDATA,
                 "key 'division' contains an escaped NUL character (\\u0000), which would cut it short");
    expect_error("fmnist_lt_r100", "\"arch\": \"resnet8_cifar\"", "\"arch\": \"resnet8_cifar\\u0000x\"",
                 LT_EDATA, "key 'scales.ci.arch' contains an escaped NUL character (\\u0000), which would cut it short");
    expect_error("fmnist_lt_r100", "\"metrics\": [\"top1\", \"many\"", "\"metrics\": [\"top1\", \"many\\u0000\"",
                 LT_EDATA,
                 "key 'evaluation.metrics[1]' contains an escaped NUL character (\\u0000), which would cut it short");
    /* in a key: cJSON would have read "drop_last" */
    expect_error("fmnist_lt_r100", "\"drop_last\": true,", "\"drop_last\\u0000x\": true,", LT_EDATA,
                 "key 'scales.ci.stage1.drop_last\\u0000x' has an escaped NUL character (\\u0000), which would cut "
                 "it short");
    /* an escaped backslash followed by the letters u0000 is text, not a NUL */
    char path[256];
    variant("fmnist_lt_r100", "Fashion-MNIST-LT, exponential", "Fashion-MNIST-LT \\\\u0000, exponential", path,
            sizeof path);
    lt_protocol *p = malloc(sizeof *p);
    assert_non_null(p);
    if (lt_protocol_load(path, p) != LT_OK) fail_msg("%s", lt_errmsg());
    assert_non_null(strstr(p->description, "Fashion-MNIST-LT \\u0000, exponential"));
    unlink(path);
    free(p);
}

/* A batch larger than the training set of its scale: no step with
 * drop_last, and the runner used to fail on it as "out of memory". */
static void test_batch_larger_than_training_set(void **state) {
    (void)state;
    /* exp profile: the size is exact (fmnist_lt_r100 ci trains on all 14886) */
    expect_error("fmnist_lt_r100", "\"batch\": 128,", "\"batch\": 20000,", LT_EDATA,
                 "key 'scales.ci.stage1.batch' is 20000, larger than the training set of scale ci (14886 images)");
    /* list profile with a per-class cap: 20 x 1000 classes at most */
    expect_error("imagenet_lt", "\"batch\": 128,", "\"batch\": 20001,", LT_EDATA,
                 "key 'scales.ci.stage1.batch' is 20001, larger than the training set of scale ci (at most 20000 "
                 "images)");
    /* the whole set in one batch is still a schedule */
    char path[256];
    variant("fmnist_lt_r100", "\"batch\": 128,", "\"batch\": 14886,", path, sizeof path);
    lt_protocol *p = malloc(sizeof *p);
    assert_non_null(p);
    if (lt_protocol_load(path, p) != LT_OK) fail_msg("%s", lt_errmsg());
    unlink(path);
    free(p);
}

/* The hash is the sha256 of the bytes: stable, and any edit changes it. */
static void test_hash_stable_and_changes_with_file(void **state) {
    (void)state;
    char h1[65], h2[65], h3[65], path[256];
    assert_int_equal(lt_protocol_hash("protocols/fmnist_lt_r100.json", h1), LT_OK);
    assert_int_equal(lt_protocol_hash("protocols/fmnist_lt_r100.json", h2), LT_OK);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    lt_protocol *p = load("fmnist_lt_r100");
    assert_string_equal(p->sha256, h1);
    /* an identical copy elsewhere has the same identity */
    variant("fmnist_lt_r100", "{", "{", path, sizeof path);
    assert_int_equal(lt_protocol_hash(path, h3), LT_OK);
    assert_string_equal(h3, h1);
    /* one changed number (still valid) changes it */
    variant("fmnist_lt_r100", "\"epochs\": 30,", "\"epochs\": 31,", path, sizeof path);
    assert_int_equal(lt_protocol_hash(path, h3), LT_OK);
    assert_string_not_equal(h3, h1);
    assert_int_equal(lt_protocol_load(path, p), LT_OK);
    assert_string_equal(p->sha256, h3);
    /* so does whitespace: the file, not its meaning, is hashed */
    variant("fmnist_lt_r100", "{", "{ ", path, sizeof path);
    assert_int_equal(lt_protocol_hash(path, h3), LT_OK);
    assert_string_not_equal(h3, h1);
    unlink(path);
    assert_int_equal(lt_protocol_hash(path, h3), LT_EIO);
    free(p);
}

/* The listing reports an invalid file through the callback, with its message,
 * and a callback's non-zero return stops the walk. */
static int stop_at_second(void *ud, const char *path, const lt_protocol *p, int status,
                          const char *msg) {
    (void)path;
    (void)p;
    (void)msg;
    int *n = ud;
    (void)status;
    return ++*n == 2 ? 42 : 0;
}

typedef struct { int ok, bad; char msg[512]; } list_bad;
static int note_bad(void *ud, const char *path, const lt_protocol *p, int status,
                    const char *msg) {
    (void)path;
    list_bad *b = ud;
    if (status == LT_OK && p) {
        b->ok++;
    } else {
        assert_null(p);
        b->bad++;
        snprintf(b->msg, sizeof b->msg, "%s", msg);
    }
    return 0;
}

static void test_list_reports_invalid_files(void **state) {
    (void)state;
    /* a directory of its own, so files other tests leave behind cannot matter */
    char dir[128], path[256], moved[256], want[512];
    snprintf(dir, sizeof dir, "%s/list", g_dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    variant("fmnist_lt_r10", "\"batch\": 128,", "\"batch\": \"x\",", path, sizeof path);
    snprintf(moved, sizeof moved, "%s/fmnist_lt_r10.json", dir);
    assert_int_equal(rename(path, moved), 0);
    variant("cifar10_lt_r10", "{", "{", path, sizeof path);
    snprintf(moved, sizeof moved, "%s/cifar10_lt_r10.json", dir);
    assert_int_equal(rename(path, moved), 0);
    char readme[256];
    snprintf(readme, sizeof readme, "%s/README.md", dir);
    tf_spit(readme, "not a protocol");
    list_bad b = {0};
    assert_int_equal(lt_protocol_list(dir, note_bad, &b), LT_OK);
    assert_int_equal(b.ok, 1);
    assert_int_equal(b.bad, 1);
    snprintf(want, sizeof want,
             "%s/fmnist_lt_r10.json: key 'scales.ci.stage1.batch' must be an integer, got string",
             dir);
    assert_string_equal(b.msg, want);
    int n = 0;
    assert_int_equal(lt_protocol_list(dir, stop_at_second, &n), 42);
    assert_int_equal(n, 2);
    char nodir[256];
    snprintf(nodir, sizeof nodir, "%s/absent", g_dir);
    assert_int_equal(lt_protocol_list(nodir, note_bad, &b), LT_EIO);
    unlink(readme);
    snprintf(moved, sizeof moved, "%s/fmnist_lt_r10.json", dir);
    unlink(moved);
    snprintf(moved, sizeof moved, "%s/cifar10_lt_r10.json", dir);
    unlink(moved);
    assert_int_equal(rmdir(dir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_shipped_protocols_load),
        cmocka_unit_test(test_fmnist_r100_short_matches_protocols_md),
        cmocka_unit_test(test_fmnist_r100_ci_and_full),
        cmocka_unit_test(test_cifar100_r100_full_is_ldam),
        cmocka_unit_test(test_balms_variants_follow_the_code),
        cmocka_unit_test(test_method_variants_differ_only_in_their_recipe),
        cmocka_unit_test(test_expected_train_totals_and_groups),
        cmocka_unit_test(test_places_full_refuses_without_init_checkpoint),
        cmocka_unit_test(test_find_scale_and_engine_mapping),
        cmocka_unit_test(test_unknown_key_names_full_path),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_malformed_json_has_line_and_column),
        cmocka_unit_test(test_unknown_arch),
        cmocka_unit_test(test_out_of_range_values),
        cmocka_unit_test(test_inconsistent_values),
        cmocka_unit_test(test_unsupported_version),
        cmocka_unit_test(test_hash_stable_and_changes_with_file),
        cmocka_unit_test(test_list_reports_invalid_files),
        cmocka_unit_test(test_protocol_name_rule),
        cmocka_unit_test(test_nul_escape_refused),
        cmocka_unit_test(test_batch_larger_than_training_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
