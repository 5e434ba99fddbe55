/* test_val_split.c — the validation split built with a dataset
 * (lt_ds_open_val, lt_val_select; rule in datasets/lt_datasets.h).
 *
 * EXP/STEP datasets run through the real pipeline on a Fashion-MNIST-format
 * fixture whose images carry their own source position (pixels 0-1) and
 * which file they come from (pixel 2: 0x11 train, 0xEE test), so each check
 * reads the truth from the image rather than from the code under test:
 * disjoint from the long-tailed rows and the test rows, min(V, left-over)
 * per class, the exact rule, fixed by the build, short classes reported,
 * hashes, and repair of a missing / damaged / stale split without touching
 * manifest.json. An ImageNet-LT-style fixture reads its official val list
 * from the train archive. The real Fashion-MNIST (Debian package
 * dataset-fashion-mnist) gives the IR 100 / IR 10 counts and checks that
 * manifest.json still has the hash the committed results record; those
 * tests skip() when the package is absent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_io.h"
#include "lt_rng.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return fx_tmpdir(tmpdir, sizeof tmpdir);
}

static int teardown(void **state)
{
    (void)state;
    fx_rm_rf(tmpdir);
    return 0;
}

/* ---- the Fashion-MNIST-format fixture ------------------------------------------------ */
#define FX_C 10
#define FX_PER 60
#define FX_TRAIN (FX_C * FX_PER)
#define FX_TEST 100
#define PX 784
#define TRAIN_MARK 0x11
#define TEST_MARK 0xEE

static const char *const FX_NAMES[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

static int fx_label(int test, long i)
{
    return test ? (int)(i % FX_C) : (int)((i * 7) % FX_C);
}

/* Image i of the train (test = 0) or test file: its position in pixels 0-1,
 * the file in pixel 2, the rest a pattern. */
static void fx_image(int test, long i, uint8_t *p)
{
    p[0] = (uint8_t)(i & 255);
    p[1] = (uint8_t)(i >> 8);
    p[2] = test ? TEST_MARK : TRAIN_MARK;
    for (int k = 3; k < PX; k++) p[k] = (uint8_t)(test ? i * 17 + k * 5 : i * 13 + k);
}

static long pos_of(const lt_dataset *d, long i)
{
    const uint8_t *p = d->pixels + (size_t)i * PX;
    return p[0] | (long)p[1] << 8;
}

static void write_idx(const char *path, int images, int test)
{
    long n = test ? FX_TEST : FX_TRAIN;
    size_t hdr = images ? 16 : 8, len = hdr + (size_t)n * (images ? PX : 1);
    uint8_t *b = calloc(len, 1);
    b[2] = 8;
    b[3] = images ? 3 : 1;
    fx_be32(b + 4, (uint32_t)n);
    if (images) {
        fx_be32(b + 8, 28);
        fx_be32(b + 12, 28);
    }
    for (long i = 0; i < n; i++) {
        if (images) fx_image(test, i, b + hdr + (size_t)i * PX);
        else b[hdr + i] = (uint8_t)fx_label(test, i);
    }
    assert_int_equal(fx_write_gz(path, b, len), 0);
    free(b);
}

typedef struct {
    char path[4][600];
    char sha[4][65];
    char data[600];    /* the data directory of this fixture's builds */
    lt_ds_def def;
} fixture;

/* Source files in <tmp>/<sub>/, found as "system" copies by a copy of the
 * fmnist definition pinned to their hashes. */
static void make_fixture(fixture *fx, const char *sub)
{
    memset(fx, 0, sizeof *fx);
    char src[400];
    snprintf(src, sizeof src, "%s/%s", tmpdir, sub);
    mkdir(src, 0755);
    snprintf(fx->data, sizeof fx->data, "%s/data", src);
    fx->def = *lt_ds_find("fmnist");
    fx->def.n_train = FX_TRAIN;
    fx->def.n_test = FX_TEST;
    fx->def.n_max = FX_PER;
    for (int i = 0; i < 4; i++) {
        snprintf(fx->path[i], sizeof fx->path[i], "%s/%s", src, FX_NAMES[i]);
        write_idx(fx->path[i], i % 2 == 0, i >= 2);
        assert_int_equal(lt_sha256_file(fx->path[i], fx->sha[i]), LT_OK);
        fx->def.files[i].sha256 = fx->sha[i];
        fx->def.files[i].content_sha256 = NULL;
        fx->def.files[i].url = NULL;
        fx->def.files[i].system_path = fx->path[i];
    }
}

static void opts_for(lt_ds_opts *o, const char *data, double ir)
{
    lt_ds_opts_default(o);
    o->data_dir = data;
    o->quiet = 1;
    o->ir = ir;
}

static void must(int rc, const char *what)
{
    if (rc != LT_OK) fail_msg("%s: %s", what, lt_errmsg());
}

static void file_in(const char *dir, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void sha_of(const char *dir, const char *name, char hex[65])
{
    char p[1200];
    file_in(dir, name, p, sizeof p);
    assert_int_equal(lt_sha256_file(p, hex), LT_OK);
}

static cJSON *read_json(const char *dir, const char *name)
{
    char p[1200];
    file_in(dir, name, p, sizeof p);
    cJSON *j = NULL;
    must(lt_json_read(p, &j), p);
    return j;
}

/* The rule of lt_datasets.h written out independently: for each class in
 * label order, shuffle its ascending left-over positions on the sub-stream
 * (class, 0) of (seed, LT_STREAM_SPLIT), keep min(V, left-over), sort. */
static long rule_positions(const int32_t *labels, long n, int C, const uint8_t *in_lt, uint32_t seed, int32_t *out)
{
    lt_rng r;
    lt_rng_init(&r, seed, LT_STREAM_SPLIT);
    int32_t *left = malloc((size_t)n * sizeof *left);
    long k = 0;
    for (int c = 0; c < C; c++) {
        long m = 0;
        for (long i = 0; i < n; i++)
            if (labels[i] == c && !in_lt[i]) left[m++] = (int32_t)i;
        lt_rng rc;
        lt_rng_derive(&rc, &r, (uint64_t)c, 0);
        lt_rng_shuffle_i32(&rc, left, m);
        long kc = m < LT_VAL_PER_CLASS ? m : LT_VAL_PER_CLASS;
        /* insertion sort of the kept prefix */
        for (long a = 1; a < kc; a++)
            for (long b = a; b > 0 && left[b - 1] > left[b]; b--) {
                int32_t t = left[b];
                left[b] = left[b - 1];
                left[b - 1] = t;
            }
        memcpy(out + k, left, (size_t)kc * sizeof *out);
        k += kc;
    }
    free(left);
    return k;
}

/* What a built fixture split must be, read from the images themselves. */
typedef struct {
    long n;
    int32_t pos[FX_TRAIN];
    long counts[FX_C];
} split_seen;

/* Checks the split against the training rows and the test rows of the same
 * build and records what it holds. */
static void check_split(const lt_dataset *tr, const lt_dataset *te, const lt_dataset *va, split_seen *seen)
{
    uint8_t in_lt[FX_TRAIN] = {0};
    for (long i = 0; i < tr->n; i++) in_lt[pos_of(tr, i)] = 1;
    memset(seen, 0, sizeof *seen);
    seen->n = va->n;
    uint8_t want[PX];
    for (long i = 0; i < va->n; i++) {
        const uint8_t *p = va->pixels + (size_t)i * PX;
        long pos = pos_of(va, i);
        /* From the training file, not the test file... */
        if (p[2] != TRAIN_MARK) fail_msg("validation image %ld is not a training-file image (mark %#x)", i, p[2]);
        assert_true(pos < FX_TRAIN);
        /* ...and not one of the long-tailed training rows. */
        if (in_lt[pos]) fail_msg("validation image %ld is training position %ld, a long-tailed training row", i, pos);
        fx_image(0, pos, want);
        assert_memory_equal(p, want, PX);
        assert_int_equal(va->labels[i], fx_label(0, pos));
        /* Classes in label order, ascending positions within a class. */
        if (i > 0) {
            assert_true(va->labels[i] >= va->labels[i - 1]);
            if (va->labels[i] == va->labels[i - 1]) assert_true(pos > seen->pos[i - 1]);
        }
        seen->pos[i] = (int32_t)pos;
        seen->counts[va->labels[i]]++;
    }
    /* No validation image is byte-equal to a test image. */
    for (long i = 0; i < va->n; i++)
        for (long j = 0; j < te->n; j++)
            assert_true(memcmp(va->pixels + (size_t)i * PX, te->pixels + (size_t)j * PX, PX) != 0);
}

static void lt_positions(const lt_dataset *tr, uint8_t *in_lt)
{
    memset(in_lt, 0, FX_TRAIN);
    for (long i = 0; i < tr->n; i++) in_lt[pos_of(tr, i)] = 1;
}

static void fx_labels(int32_t *lab)
{
    for (long i = 0; i < FX_TRAIN; i++) lab[i] = fx_label(0, i);
}

/* ---- EXP: disjoint, balanced, the exact rule ------------------------------------------ */
static void test_leftover_split_disjoint_and_balanced(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "exp");
    lt_ds_opts o;
    opts_for(&o, fx.data, 10);
    lt_dataset tr, te, va;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    lt_ds_val_info vi;
    must(lt_ds_open(&fx.def, &o, &tr, &te, &b), "open");
    must(lt_ds_open_val(&fx.def, &o, &va, &vi), "open_val");
    split_seen seen;
    check_split(&tr, &te, &va, &seen);
    /* Exactly min(V, left-over) per class, left-over from the profile. */
    long keep[FX_C];
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, FX_PER, FX_C, 10, keep), LT_OK);
    int n_short = 0;
    char line[256];
    int len = snprintf(line, sizeof line, "note: fixture IR10 val counts:");
    for (int c = 0; c < FX_C; c++) {
        long want = FX_PER - keep[c] < LT_VAL_PER_CLASS ? FX_PER - keep[c] : LT_VAL_PER_CLASS;
        assert_int_equal(seen.counts[c], want);
        assert_int_equal(vi.counts[c], want);
        n_short += want < LT_VAL_PER_CLASS;
        len += snprintf(line + len, sizeof line - (size_t)len, " %ld", want);
    }
    print_message("%s\n", line);
    /* The fixture has all three kinds of class: none left over (class 0
     * keeps all 60), a few (class 1: 14) and plenty. */
    assert_int_equal(seen.counts[0], 0);
    assert_int_equal(seen.counts[1], 14);
    assert_int_equal(seen.counts[FX_C - 1], LT_VAL_PER_CLASS);
    assert_int_equal(vi.n_short, n_short);
    assert_int_equal(vi.n, va.n);
    assert_int_equal(vi.per_class, LT_VAL_PER_CLASS);
    /* The positions are those of the rule, in stored order. */
    int32_t lab[FX_TRAIN], want_pos[FX_TRAIN];
    uint8_t in_lt[FX_TRAIN];
    fx_labels(lab);
    lt_positions(&tr, in_lt);
    long k = rule_positions(lab, FX_TRAIN, FX_C, in_lt, 0, want_pos);
    assert_int_equal(k, va.n);
    assert_memory_equal(seen.pos, want_pos, (size_t)k * sizeof *want_pos);
    /* lt_val_select is that rule. */
    int32_t got[FX_C * LT_VAL_PER_CLASS], kept[FX_TRAIN];
    long counts[FX_C], n_got, n_kept = 0;
    for (long i = 0; i < FX_TRAIN; i++)
        if (in_lt[i]) kept[n_kept++] = (int32_t)i;
    must(lt_val_select(lab, FX_TRAIN, FX_C, kept, n_kept, LT_VAL_PER_CLASS, 0, got, counts, &n_got), "select");
    assert_int_equal(n_got, k);
    assert_memory_equal(got, want_pos, (size_t)k * sizeof *got);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
    lt_ds_built_free(&b);
}

/* ---- the val manifest: fields and hashes ---------------------------------------------- */
static void test_val_manifest_records_the_split(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "manifest");
    lt_ds_opts o;
    opts_for(&o, fx.data, 10);
    lt_dataset tr, te, va;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    lt_ds_val_info vi;
    must(lt_ds_open(&fx.def, &o, &tr, &te, &b), "open");
    must(lt_ds_open_val(&fx.def, &o, &va, &vi), "open_val");
    char h[65];
    /* What lt_ds_open_val reports is the file's hash, and it belongs to this build. */
    sha_of(b.dir, "val_manifest.json", h);
    assert_string_equal(vi.manifest_sha256, h);
    assert_string_equal(b.val_manifest_sha256, h);
    sha_of(b.dir, "manifest.json", h);
    assert_string_equal(vi.build_manifest_sha256, h);
    assert_string_equal(b.manifest_sha256, h);
    cJSON *m = read_json(b.dir, "val_manifest.json");
    assert_string_equal(cJSON_GetObjectItem(m, "format")->valuestring, "ltbench-validation-manifest");
    assert_int_equal(cJSON_GetObjectItem(m, "format_version")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(m, "dataset")->valuestring, "fmnist");
    assert_string_equal(cJSON_GetObjectItem(m, "tag")->valuestring, "exp_ir10");
    assert_string_equal(cJSON_GetObjectItem(m, "manifest_sha256")->valuestring, h);
    assert_string_equal(cJSON_GetObjectItem(m, "origin")->valuestring,
                        "left-over training images: up to V per class not in the long-tailed subset");
    assert_string_equal(vi.origin, cJSON_GetObjectItem(m, "origin")->valuestring);
    assert_int_equal(cJSON_GetObjectItem(m, "V")->valueint, LT_VAL_PER_CLASS);
    assert_int_equal(cJSON_GetObjectItem(m, "seed")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(m, "stream")->valueint, LT_STREAM_SPLIT);
    assert_int_equal(cJSON_GetObjectItem(m, "n")->valueint, va.n);
    const cJSON *jc = cJSON_GetObjectItem(m, "counts");
    assert_int_equal(cJSON_GetArraySize(jc), FX_C);
    for (int c = 0; c < FX_C; c++) assert_int_equal(cJSON_GetArrayItem(jc, c)->valueint, vi.counts[c]);
    /* classes_short: every class with fewer than V, with its count. */
    const cJSON *sh = cJSON_GetObjectItem(m, "classes_short");
    assert_int_equal(cJSON_GetArraySize(sh), vi.n_short);
    assert_int_equal(cJSON_GetArraySize(sh), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sh, 0), "class")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sh, 0), "n")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sh, 1), "class")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sh, 1), "n")->valueint, 14);
    /* index_sha256: the stored positions joined by ","; cache_sha256: val.ltc. */
    int32_t pos[FX_TRAIN];
    for (long i = 0; i < va.n; i++) pos[i] = (int32_t)pos_of(&va, i);
    lt_subset_index_sha256(pos, va.n, h);
    assert_string_equal(cJSON_GetObjectItem(m, "index_sha256")->valuestring, h);
    assert_string_equal(vi.index_sha256, h);
    sha_of(b.dir, "val.ltc", h);
    assert_string_equal(cJSON_GetObjectItem(m, "cache_sha256")->valuestring, h);
    cJSON_Delete(m);
    /* No paths in it (the same hash on every machine). */
    char p[1200], *text;
    size_t len;
    file_in(b.dir, "val_manifest.json", p, sizeof p);
    assert_int_equal(fx_read_file(p, &text, &len), 0);
    assert_null(strstr(text, tmpdir));
    assert_null(strstr(text, "/tmp"));
    free(text);
    /* The dataset manifest says nothing about the split. */
    file_in(b.dir, "manifest.json", p, sizeof p);
    assert_int_equal(fx_read_file(p, &text, &len), 0);
    assert_null(strstr(text, "val"));
    free(text);
    /* `ltbench datasets` state: the split's size next to the build. */
    lt_ds_state st;
    must(lt_ds_state_get(&fx.def, &o, &st), "state");
    assert_int_equal(st.n_builds, 1);
    assert_int_equal(st.n_val[0], va.n);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
    lt_ds_built_free(&b);
}

/* ---- fixed by the build; another seed, another selection -------------------------------- */
/* Opens a build's split, checks it, and checks it is the rule's selection
 * for the build's subset and seed. */
static void open_val_positions(const lt_ds_def *def, const lt_ds_opts *o, split_seen *seen, char vm[65])
{
    lt_dataset tr, te, va;
    lt_ds_val_info vi;
    must(lt_ds_open(def, o, &tr, &te, NULL), "open");
    must(lt_ds_open_val(def, o, &va, &vi), "open_val");
    check_split(&tr, &te, &va, seen);
    int32_t lab[FX_TRAIN], want[FX_TRAIN];
    uint8_t in_lt[FX_TRAIN];
    fx_labels(lab);
    lt_positions(&tr, in_lt);
    long k = rule_positions(lab, FX_TRAIN, FX_C, in_lt, o->seed, want);
    assert_int_equal(k, seen->n);
    assert_memory_equal(seen->pos, want, (size_t)k * sizeof *want);
    snprintf(vm, 65, "%s", vi.manifest_sha256);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
}

static void test_fixed_by_build_and_seed(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "fixed");
    char d1[700], d2[700], vm1[65], vm2[65], vm3[65], vm4[65];
    snprintf(d1, sizeof d1, "%s1", fx.data);
    snprintf(d2, sizeof d2, "%s2", fx.data);
    lt_ds_opts o1, o2;
    opts_for(&o1, d1, 10);
    opts_for(&o2, d2, 10);
    split_seen *s1 = calloc(1, sizeof *s1), *s2 = calloc(1, sizeof *s2);
    open_val_positions(&fx.def, &o1, s1, vm1);
    open_val_positions(&fx.def, &o2, s2, vm2);
    /* Two independent builds: the same split, byte for byte. */
    assert_string_equal(vm1, vm2);
    assert_int_equal(s1->n, s2->n);
    assert_memory_equal(s1->pos, s2->pos, (size_t)s1->n * sizeof s1->pos[0]);
    /* A forced rebuild too. */
    o1.force = 1;
    open_val_positions(&fx.def, &o1, s2, vm3);
    assert_string_equal(vm3, vm1);
    o1.force = 0;
    /* Another subset seed: another subset, another split (still disjoint:
     * check_split ran on it). Counts depend only on the profile. */
    o2.seed = 5;
    open_val_positions(&fx.def, &o2, s2, vm4);
    assert_string_not_equal(vm4, vm1);
    assert_int_equal(s2->n, s1->n);
    assert_memory_equal(s2->counts, s1->counts, sizeof s1->counts);
    assert_true(memcmp(s1->pos, s2->pos, (size_t)s1->n * sizeof s1->pos[0]) != 0);
    /* Same subset, other split seed: the rule keys the split on the subset
     * seed, so lt_val_select with seed 5 on seed 0's subset differs too. */
    int32_t lab[FX_TRAIN], a[FX_TRAIN], b[FX_TRAIN];
    uint8_t in_lt[FX_TRAIN];
    fx_labels(lab);
    memset(in_lt, 0, sizeof in_lt);
    long keep[FX_C], k;
    int32_t idx[FX_TRAIN];
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, FX_PER, FX_C, 10, keep), LT_OK);
    must(lt_subset_select(lab, FX_TRAIN, FX_C, keep, 0, idx, NULL, &k), "subset");
    for (long i = 0; i < k; i++) in_lt[idx[i]] = 1;
    long na = rule_positions(lab, FX_TRAIN, FX_C, in_lt, 0, a), nb = rule_positions(lab, FX_TRAIN, FX_C, in_lt, 5, b);
    assert_int_equal(na, nb);
    assert_true(memcmp(a, b, (size_t)na * sizeof *a) != 0);
    print_message("note: val manifest seed 0 %.16s..., seed 5 %.16s...\n", vm1, vm4);
    free(s1);
    free(s2);
}

/* ---- short classes: STEP profile and IR 1 ---------------------------------------------- */
static void test_short_classes_reported(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "short");
    lt_ds_opts o;
    opts_for(&o, fx.data, 10);
    o.profile = LT_PROFILE_STEP;
    /* STEP keeps the first half of the classes whole: no left-overs there. */
    lt_dataset tr, te, va;
    lt_ds_val_info vi;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    must(lt_ds_open(&fx.def, &o, &tr, &te, &b), "open");
    must(lt_ds_open_val(&fx.def, &o, &va, &vi), "open_val");
    split_seen seen;
    check_split(&tr, &te, &va, &seen);
    for (int c = 0; c < FX_C; c++) {
        assert_int_equal(seen.counts[c], c < FX_C / 2 ? 0 : LT_VAL_PER_CLASS);
        assert_int_equal(vi.counts[c], seen.counts[c]);
    }
    assert_int_equal(vi.n_short, FX_C / 2);
    cJSON *m = read_json(b.dir, "val_manifest.json");
    const cJSON *sh = cJSON_GetObjectItem(m, "classes_short");
    assert_int_equal(cJSON_GetArraySize(sh), FX_C / 2);
    for (int c = 0; c < FX_C / 2; c++) {
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sh, c), "class")->valueint, c);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sh, c), "n")->valueint, 0);
    }
    cJSON_Delete(m);
    print_message("note: fixture STEP IR10: %ld validation images, %d classes short\n", va.n, vi.n_short);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
    lt_ds_built_free(&b);
    /* IR 1 keeps everything: an empty split, every class short, still a
     * valid (empty) cache rather than an error or borrowed images. */
    o.profile = LT_PROFILE_EXP;
    o.ir = 1;
    must(lt_ds_open_val(&fx.def, &o, &va, &vi), "open_val ir1");
    assert_int_equal(va.n, 0);
    assert_int_equal(vi.n, 0);
    assert_int_equal(vi.n_short, FX_C);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
}

/* ---- repair without touching the build ----------------------------------------------- */
typedef struct {
    char sha[65];
    struct stat st;
} file_id;

static void id_of(const char *dir, const char *name, file_id *f)
{
    char p[1200];
    file_in(dir, name, p, sizeof p);
    assert_int_equal(stat(p, &f->st), 0);
    assert_int_equal(lt_sha256_file(p, f->sha), LT_OK);
}

static void assert_untouched(const char *dir, const char *name, const file_id *before)
{
    file_id now;
    id_of(dir, name, &now);
    assert_string_equal(now.sha, before->sha);
    assert_int_equal(now.st.st_ino, before->st.st_ino);
    if (now.st.st_mtim.tv_sec != before->st.st_mtim.tv_sec || now.st.st_mtim.tv_nsec != before->st.st_mtim.tv_nsec)
        fail_msg("%s/%s was rewritten (mtime changed)", dir, name);
}

static void build_files(const char *dir, file_id ids[3])
{
    id_of(dir, "manifest.json", &ids[0]);
    id_of(dir, "train.ltc", &ids[1]);
    id_of(dir, "test.ltc", &ids[2]);
}

static void assert_build_untouched(const char *dir, const file_id ids[3])
{
    assert_untouched(dir, "manifest.json", &ids[0]);
    assert_untouched(dir, "train.ltc", &ids[1]);
    assert_untouched(dir, "test.ltc", &ids[2]);
}

static void overwrite(const char *dir, const char *name, long off, const void *bytes, size_t n)
{
    char p[1200];
    file_in(dir, name, p, sizeof p);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void remove_in(const char *dir, const char *name)
{
    char p[1200];
    file_in(dir, name, p, sizeof p);
    assert_int_equal(unlink(p), 0);
}

/* lt_ds_build (or open_val) must bring back exactly the original split. */
static void expect_split(const lt_ds_def *def, const lt_ds_opts *o, const char *dir, const char *vm_want,
                         const char *cache_want, int via_open_val)
{
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    if (via_open_val) {
        lt_dataset va;
        lt_ds_val_info vi;
        must(lt_ds_open_val(def, o, &va, &vi), "open_val");
        assert_string_equal(vi.manifest_sha256, vm_want);
        lt_dataset_free(&va);
        lt_ds_val_info_free(&vi);
    } else {
        must(lt_ds_build(def, o, &b), "build");
        assert_int_equal(b.rebuilt, 0);
        assert_string_equal(b.val_manifest_sha256, vm_want);
    }
    char h[65];
    sha_of(dir, "val.ltc", h);
    assert_string_equal(h, cache_want);
    sha_of(dir, "val_manifest.json", h);
    assert_string_equal(h, vm_want);
    lt_ds_built_free(&b);
}

static void test_repair_keeps_the_build(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "repair");
    lt_ds_opts o;
    opts_for(&o, fx.data, 10);
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    must(lt_ds_build(&fx.def, &o, &b), "build");
    char dir[1024], vm[65], cache[65];
    snprintf(dir, sizeof dir, "%s", b.dir);
    snprintf(vm, sizeof vm, "%s", b.val_manifest_sha256);
    sha_of(dir, "val.ltc", cache);
    assert_int_equal(strlen(vm), 64);
    file_id ids[3];
    build_files(dir, ids);
    usleep(20000); /* a rewrite would show in mtime even on coarse clocks */

    /* 1. val.ltc deleted: written again by lt_ds_build. */
    remove_in(dir, "val.ltc");
    expect_split(&fx.def, &o, dir, vm, cache, 0);
    assert_build_untouched(dir, ids);
    /* 2. Its header damaged (the header checksum catches it). */
    overwrite(dir, "val.ltc", 20, "\x7f\x7f", 2);
    expect_split(&fx.def, &o, dir, vm, cache, 0);
    assert_build_untouched(dir, ids);
    /* 3. Truncated. */
    char p[1200];
    file_in(dir, "val.ltc", p, sizeof p);
    assert_int_equal(truncate(p, 100), 0);
    expect_split(&fx.def, &o, dir, vm, cache, 0);
    assert_build_untouched(dir, ids);
    /* 4. A pixel flipped (header intact): lt_ds_build's quick check cannot
     * see it, lt_ds_open_val hashes the cache before use and rewrites it. */
    overwrite(dir, "val.ltc", 64 + 4 * 200, "\x01", 1);
    lt_ds_built q;
    memset(&q, 0, sizeof q);
    must(lt_ds_build(&fx.def, &o, &q), "build");
    lt_ds_built_free(&q);
    expect_split(&fx.def, &o, dir, vm, cache, 1);
    assert_build_untouched(dir, ids);
    /* 5. val_manifest.json deleted. */
    remove_in(dir, "val_manifest.json");
    expect_split(&fx.def, &o, dir, vm, cache, 1);
    assert_build_untouched(dir, ids);
    /* 6. Stale: written for another manifest.json. */
    cJSON *m = read_json(dir, "val_manifest.json");
    cJSON_ReplaceItemInObject(m, "manifest_sha256",
                              cJSON_CreateString("0000000000000000000000000000000000000000000000000000000000000000"));
    file_in(dir, "val_manifest.json", p, sizeof p);
    must(lt_json_write_atomic(p, m, NULL), "write");
    cJSON_Delete(m);
    expect_split(&fx.def, &o, dir, vm, cache, 0);
    assert_build_untouched(dir, ids);
    /* 7. Not JSON at all. */
    overwrite(dir, "val_manifest.json", 0, "garbage", 7);
    expect_split(&fx.def, &o, dir, vm, cache, 0);
    assert_build_untouched(dir, ids);
    /* 8. A build made before the split existed (no val files at all). */
    remove_in(dir, "val.ltc");
    remove_in(dir, "val_manifest.json");
    expect_split(&fx.def, &o, dir, vm, cache, 0);
    assert_build_untouched(dir, ids);
    /* And a current split is left alone. */
    file_id v0;
    id_of(dir, "val.ltc", &v0);
    usleep(20000);
    expect_split(&fx.def, &o, dir, vm, cache, 1);
    assert_untouched(dir, "val.ltc", &v0);
    lt_ds_built_free(&b);
}

/* ---- lt_val_select refuses inconsistent input ------------------------------------------ */
static void test_select_refuses_bad_input(void **state)
{
    (void)state;
    int32_t lab[8] = {0, 1, 0, 1, 0, 1, 0, 1}, out[8];
    long counts[2], n;
    int32_t dup[2] = {3, 3}, far[1] = {8};
    assert_int_equal(lt_val_select(lab, 8, 2, dup, 2, 20, 0, out, counts, &n), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "kept twice"));
    assert_int_equal(lt_val_select(lab, 8, 2, far, 1, 20, 0, out, counts, &n), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "outside"));
    lab[5] = 2;
    assert_int_equal(lt_val_select(lab, 8, 2, NULL, 0, 20, 0, out, counts, &n), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "label 2"));
    lab[5] = 1;
    /* per_class caps, and nothing kept means every image is a candidate. */
    int32_t kept[3] = {0, 2, 4};
    must(lt_val_select(lab, 8, 2, kept, 3, 1, 0, out, counts, &n), "select");
    assert_int_equal(n, 2);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(out[0], 6); /* class 0's only left-over */
}

/* ---- NATURAL: the official val list --------------------------------------------------- */
static void colour(int k, int rgb[3])
{
    rgb[0] = 20 + (k * 53) % 220;
    rgb[1] = 20 + (k * 97) % 220;
    rgb[2] = 20 + (k * 31) % 220;
}

static fx_member flat_member(const char *name, int k)
{
    int c[3];
    colour(k, c);
    uint8_t *j;
    size_t l;
    assert_int_equal(fx_jpeg_flat(48, 40, c[0], c[1], c[2], &j, &l), 0);
    fx_member m = {strdup(name), j, l};
    return m;
}

static void free_members(fx_member *m, int n)
{
    for (int i = 0; i < n; i++) {
        free((void *)m[i].name);
        free((void *)m[i].data);
    }
}

/* The sample a decoded image shows (its flat colour), -1 if none matches. */
static int sample_of(const lt_dataset *d, long i)
{
    size_t plane = (size_t)d->h * d->w;
    const uint8_t *px = d->pixels + (size_t)i * 3 * plane + plane / 2 + d->w / 2;
    for (int k = 0; k < 100; k++) {
        int c[3];
        colour(k, c);
        if (abs(px[0] - c[0]) <= 4 && abs(px[plane] - c[1]) <= 4 && abs(px[2 * plane] - c[2]) <= 4) return k;
    }
    return -1;
}

typedef struct {
    char src[600], data[700];
    char sha[5][65];
    char val_text[1024];
    lt_ds_def def;
} inet_fixture;

static void put_file(const char *dir, const char *name, const void *data, size_t len, char sha[65])
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(fx_write_file(p, data, len), 0);
    lt_sha256_buf(data, len, sha);
}

/* ImageNet-LT in miniature: 3 classes; train samples 0-5 (3/2/1 per class),
 * val samples 20 + 2c, 21 + 2c (two per class) in the same per-class inner
 * tars of the train archive, test samples 40 + c in the flat val archive.
 * val_list NULL: the regular list; otherwise that text. */
static void make_inet(inet_fixture *f, const char *sub, const char *val_list)
{
    static const char *const wn[3] = {"n01440764", "n01443537", "n01484850"};
    static const int per[3] = {3, 2, 1};
    memset(f, 0, sizeof *f);
    snprintf(f->src, sizeof f->src, "%s/%s", tmpdir, sub);
    snprintf(f->data, sizeof f->data, "%s/data", f->src);
    char tr[1024] = "", te[1024] = "", name[128], ip[800];
    fx_member outer[3], val[3];
    int k = 0;
    for (int c = 0; c < 3; c++) {
        fx_member inner[8];
        int ni = 0;
        for (int j = 0; j < per[c]; j++, k++) {
            snprintf(name, sizeof name, "%s_%d.JPEG", wn[c], 100 + j);
            inner[ni++] = flat_member(name, k);
            snprintf(tr + strlen(tr), sizeof tr - strlen(tr), "train/%s/%s %d\n", wn[c], name, c);
        }
        for (int j = 0; j < 2; j++) {
            snprintf(name, sizeof name, "%s_%d.JPEG", wn[c], 700 + j);
            inner[ni++] = flat_member(name, 20 + 2 * c + j);
            snprintf(f->val_text + strlen(f->val_text), sizeof f->val_text - strlen(f->val_text), "train/%s/%s %d\n",
                     wn[c], name, c);
        }
        snprintf(ip, sizeof ip, "%s/inner.tar", tmpdir);
        assert_int_equal(fx_write_archive(ip, "tar", inner, ni), 0);
        char *d;
        size_t l;
        assert_int_equal(fx_read_file(ip, &d, &l), 0);
        remove(ip);
        snprintf(name, sizeof name, "%s.tar", wn[c]);
        outer[c] = (fx_member){strdup(name), d, l};
        free_members(inner, ni);
        snprintf(name, sizeof name, "ILSVRC2012_val_%08d.JPEG", c + 1);
        val[c] = flat_member(name, 40 + c);
        snprintf(te + strlen(te), sizeof te - strlen(te), "val/%s/%s %d\n", wn[c], name, c);
    }
    if (val_list) snprintf(f->val_text, sizeof f->val_text, "%s", val_list);
    put_file(f->src, "ImageNet_LT_train.txt", tr, strlen(tr), f->sha[0]);
    put_file(f->src, "ImageNet_LT_test.txt", te, strlen(te), f->sha[1]);
    put_file(f->src, "ImageNet_LT_val.txt", f->val_text, strlen(f->val_text), f->sha[4]);
    char ap[800];
    snprintf(ap, sizeof ap, "%s/ILSVRC2012_img_train.tar", f->src);
    assert_int_equal(fx_write_archive(ap, "tar", outer, 3), 0);
    assert_int_equal(lt_sha256_file(ap, f->sha[2]), LT_OK);
    snprintf(ap, sizeof ap, "%s/ILSVRC2012_img_val.tar", f->src);
    assert_int_equal(fx_write_archive(ap, "tar", val, 3), 0);
    assert_int_equal(lt_sha256_file(ap, f->sha[3]), LT_OK);
    free_members(outer, 3);
    free_members(val, 3);
    f->def = *lt_ds_find("imagenet_lt");
    assert_int_equal(f->def.n_files, 5);
    assert_string_equal(f->def.files[4].name, "ImageNet_LT_val.txt");
    f->def.n_classes = 3;
    f->def.n_train = 6;
    f->def.n_test = 3;
    for (int i = 0; i < 5; i++) f->def.files[i].sha256 = f->sha[i];
}

static void inet_opts(const inet_fixture *f, lt_ds_opts *o)
{
    lt_ds_opts_default(o);
    o->data_dir = f->data;
    o->from_dir = f->src;
    o->use_system = 0; /* not the real list in ../shared */
    o->scale = "ci";
    o->quiet = 1;
}

static void test_official_val_list(void **state)
{
    (void)state;
    inet_fixture f;
    make_inet(&f, "inet", NULL);
    lt_ds_opts o;
    inet_opts(&f, &o);
    lt_dataset tr, te, va;
    lt_ds_val_info vi;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    must(lt_ds_open(&f.def, &o, &tr, &te, &b), "open");
    must(lt_ds_open_val(&f.def, &o, &va, &vi), "open_val");
    /* The list's images, in list order, decoded from the train archive. */
    assert_int_equal(va.n, 6);
    assert_int_equal(va.h, tr.h);
    assert_int_equal(va.c, 3);
    for (long i = 0; i < va.n; i++) {
        assert_int_equal(va.labels[i], i / 2);
        assert_int_equal(sample_of(&va, i), 20 + (int)i);
    }
    /* None of them is a training row or a test row. */
    for (long i = 0; i < tr.n; i++) assert_true(sample_of(&tr, i) < 20);
    for (long i = 0; i < te.n; i++) assert_true(sample_of(&te, i) >= 40);
    char origin[256];
    snprintf(origin, sizeof origin, "official val list ImageNet_LT_val.txt (sha256 %s)", f.sha[4]);
    assert_string_equal(vi.origin, origin);
    assert_string_equal(vi.index_sha256, f.sha[4]);
    assert_string_equal(vi.build_manifest_sha256, b.manifest_sha256);
    assert_int_equal(vi.per_class, LT_VAL_PER_CLASS);
    assert_int_equal(vi.n_short, 3); /* 2 < 20 per class in this miniature */
    cJSON *m = read_json(b.dir, "val_manifest.json");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(m, "seed")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(m, "stream")));
    assert_string_equal(cJSON_GetObjectItem(m, "origin")->valuestring, origin);
    cJSON_Delete(m);
    print_message("note: imagenet_lt fixture: %ld validation images from the train archive, val manifest %.16s...\n",
                  va.n, vi.manifest_sha256);
    size_t bytes = (size_t)va.n * 3 * va.h * va.w;
    uint8_t *before = malloc(bytes);
    memcpy(before, va.pixels, bytes);
    char vm[65];
    snprintf(vm, sizeof vm, "%s", vi.manifest_sha256);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);

    /* val.ltc lost: read again from the archive by the val reader alone. */
    file_id ids[3];
    build_files(b.dir, ids);
    usleep(20000);
    remove_in(b.dir, "val.ltc");
    must(lt_ds_open_val(&f.def, &o, &va, &vi), "open_val again");
    assert_string_equal(vi.manifest_sha256, vm);
    assert_int_equal(va.n, 6);
    assert_memory_equal(va.pixels, before, bytes);
    assert_build_untouched(b.dir, ids);
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
    free(before);
    lt_ds_built_free(&b);

    /* A val list naming a training image is refused, naming both lists. */
    inet_fixture g;
    make_inet(&g, "inet_overlap",
              "train/n01440764/n01440764_700.JPEG 0\ntrain/n01443537/n01443537_101.JPEG 1\n"
              "train/n01484850/n01484850_700.JPEG 2\n");
    inet_opts(&g, &o);
    assert_int_equal(lt_ds_build(&g.def, &o, NULL), LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "ImageNet_LT_val.txt:2"));
    assert_non_null(strstr(lt_errmsg(), "ImageNet_LT_train.txt"));
    /* ... and so is one naming a test image. */
    inet_fixture h;
    make_inet(&h, "inet_overlap_test",
              "train/n01440764/n01440764_700.JPEG 0\nval/n01443537/ILSVRC2012_val_00000002.JPEG 1\n"
              "train/n01484850/n01484850_700.JPEG 2\n");
    inet_opts(&h, &o);
    assert_int_equal(lt_ds_build(&h.def, &o, NULL), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "ImageNet_LT_test.txt"));
}

/* ---- datasets without a validation split ----------------------------------------------- */
static void test_no_split_says_why(void **state)
{
    (void)state;
    static const char *const names[3] = {"inat2018", "lvis", "lvis_fixture"};
    lt_ds_opts o;
    lt_ds_opts_default(&o);
    o.data_dir = tmpdir;
    o.quiet = 1;
    for (int i = 0; i < 3; i++) {
        lt_dataset va;
        lt_ds_val_info vi;
        assert_int_equal(lt_ds_open_val(lt_ds_find(names[i]), &o, &va, &vi), LT_EINVAL);
        print_message("note: %s\n", lt_errmsg());
        assert_non_null(strstr(lt_errmsg(), names[i]));
        assert_non_null(strstr(lt_errmsg(), "no validation split"));
        assert_non_null(strstr(lt_errmsg(), "test set"));
        assert_null(va.pixels);
        assert_null(vi.counts);
    }
}

/* ---- the real Fashion-MNIST ------------------------------------------------------------ */
#define COMMITTED "results/runs/fmnist_lt_r100/short/ce/seed0/result.json"

/* Images by content: FNV-1a of the bytes, sorted, for exact lookups. */
typedef struct {
    uint64_t h;
    long pos;
} img_key;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int cmp_key(const void *a, const void *b)
{
    const img_key *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->pos > y->pos) - (x->pos < y->pos);
}

static img_key *index_images(const lt_dataset *d)
{
    img_key *k = malloc((size_t)d->n * sizeof *k);
    for (long i = 0; i < d->n; i++) k[i] = (img_key){fnv(d->pixels + (size_t)i * PX, PX), i};
    qsort(k, (size_t)d->n, sizeof *k, cmp_key);
    return k;
}

/* Positions in d whose image equals img; returns how many (first in *pos). */
static int find_image(const lt_dataset *d, const img_key *keys, const uint8_t *img, long *pos)
{
    uint64_t h = fnv(img, PX);
    long lo = 0, hi = d->n;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (keys[mid].h < h) lo = mid + 1;
        else hi = mid;
    }
    int found = 0;
    for (long i = lo; i < d->n && keys[i].h == h; i++)
        if (!memcmp(d->pixels + (size_t)keys[i].pos * PX, img, PX)) {
            if (!found) *pos = keys[i].pos;
            found++;
        }
    return found;
}

static void committed_manifest_sha(char out[65])
{
    cJSON *r = NULL;
    must(lt_json_read(COMMITTED, &r), COMMITTED);
    const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "dataset"), "manifest_sha256");
    assert_true(cJSON_IsString(s));
    snprintf(out, 65, "%s", s->valuestring);
    cJSON_Delete(r);
}

/* One real build: the split's counts, and by image content: every
 * validation image is exactly one training-file image, not a long-tailed
 * row, and no test image. */
static void real_split(double ir, const lt_dataset *src, const img_key *src_keys, const lt_dataset *test,
                       const img_key *test_keys, lt_ds_built *b, lt_ds_val_info *vi)
{
    char data[400];
    snprintf(data, sizeof data, "%s/real", tmpdir);
    lt_ds_opts o;
    opts_for(&o, data, ir);
    const lt_ds_def *def = lt_ds_find("fmnist");
    lt_dataset tr, te, va;
    memset(b, 0, sizeof *b);
    must(lt_ds_open(def, &o, &tr, &te, b), "open");
    must(lt_ds_open_val(def, &o, &va, vi), "open_val");
    uint8_t *in_lt = calloc((size_t)src->n, 1);
    long pos;
    for (long i = 0; i < tr.n; i++) {
        assert_int_equal(find_image(src, src_keys, tr.pixels + (size_t)i * PX, &pos), 1);
        in_lt[pos] = 1;
    }
    long counts[10] = {0}, prev = -1;
    for (long i = 0; i < va.n; i++) {
        const uint8_t *img = va.pixels + (size_t)i * PX;
        assert_int_equal(find_image(src, src_keys, img, &pos), 1);
        if (in_lt[pos]) fail_msg("IR %g: validation image %ld is training image %ld, a long-tailed row", ir, i, pos);
        assert_int_equal(va.labels[i], src->labels[pos]);
        if (find_image(test, test_keys, img, &pos))
            fail_msg("IR %g: validation image %ld is test image %ld", ir, i, pos);
        assert_true(va.labels[i] >= prev);
        prev = va.labels[i];
        counts[va.labels[i]]++;
    }
    /* min(V, 6000 - kept) per class: every class but the head has >= 20 left. */
    char line[256];
    int len = snprintf(line, sizeof line, "note: fmnist IR %g: %ld validation images, per class:", ir, va.n);
    for (int c = 0; c < 10; c++) {
        long left = 6000 - b->counts[c], want = left < LT_VAL_PER_CLASS ? left : LT_VAL_PER_CLASS;
        assert_int_equal(counts[c], want);
        assert_int_equal(vi->counts[c], want);
        len += snprintf(line + len, sizeof line - (size_t)len, " %ld", counts[c]);
    }
    print_message("%s (classes short: %d; val manifest %.16s...)\n", line, vi->n_short, vi->manifest_sha256);
    free(in_lt);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_dataset_free(&va);
}

typedef struct {
    lt_dataset src, test;
    img_key *sk, *tk;
} real_data;

static void real_load(real_data *r)
{
    must(lt_idx_load(FX_FMNIST_TRAIN, FX_FMNIST_TRAIN_LABELS, 10, &r->src), "train");
    must(lt_idx_load(FX_FMNIST_TEST, FX_FMNIST_TEST_LABELS, 10, &r->test), "test");
    r->sk = index_images(&r->src);
    r->tk = index_images(&r->test);
}

static void real_free(real_data *r)
{
    free(r->sk);
    free(r->tk);
    lt_dataset_free(&r->src);
    lt_dataset_free(&r->test);
}

static void test_fmnist_real_ir100(void **state)
{
    (void)state;
    FX_SKIP_WITHOUT_FMNIST();
    real_data rd;
    real_load(&rd);
    lt_ds_built b;
    lt_ds_val_info vi;
    char committed[65];
    committed_manifest_sha(committed);

    real_split(100, &rd.src, rd.sk, &rd.test, rd.tk, &b, &vi);
    /* The head class keeps all 6000: no left-overs, reported short. */
    assert_int_equal(vi.n, 180);
    assert_int_equal(vi.counts[0], 0);
    assert_int_equal(vi.n_short, 1);
    /* manifest.json is still the one the committed results record. */
    assert_string_equal(b.manifest_sha256, committed);
    assert_string_equal(vi.build_manifest_sha256, committed);
    print_message("note: fmnist IR 100 manifest.json sha256 %s = %s\n", b.manifest_sha256, COMMITTED);
    /* A build from before the split: val files removed, then built again
     * beside an untouched manifest.json. */
    char vm[65];
    snprintf(vm, sizeof vm, "%s", vi.manifest_sha256);
    file_id ids[3];
    build_files(b.dir, ids);
    usleep(20000);
    remove_in(b.dir, "val.ltc");
    remove_in(b.dir, "val_manifest.json");
    lt_ds_built b2;
    memset(&b2, 0, sizeof b2);
    char data[400];
    snprintf(data, sizeof data, "%s/real", tmpdir);
    lt_ds_opts o;
    opts_for(&o, data, 100);
    must(lt_ds_build(lt_ds_find("fmnist"), &o, &b2), "build");
    assert_string_equal(b2.val_manifest_sha256, vm);
    assert_string_equal(b2.manifest_sha256, committed);
    assert_build_untouched(b.dir, ids);
    lt_ds_built_free(&b2);
    lt_ds_built_free(&b);
    lt_ds_val_info_free(&vi);
    real_free(&rd);
}

static void test_fmnist_real_ir10(void **state)
{
    (void)state;
    FX_SKIP_WITHOUT_FMNIST();
    real_data rd;
    real_load(&rd);
    lt_ds_built b;
    lt_ds_val_info vi;
    real_split(10, &rd.src, rd.sk, &rd.test, rd.tk, &b, &vi);
    assert_int_equal(vi.n, 180);
    assert_int_equal(vi.counts[0], 0);
    assert_int_equal(vi.n_short, 1);
    lt_ds_built_free(&b);
    lt_ds_val_info_free(&vi);
    real_free(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leftover_split_disjoint_and_balanced),
        cmocka_unit_test(test_val_manifest_records_the_split),
        cmocka_unit_test(test_fixed_by_build_and_seed),
        cmocka_unit_test(test_short_classes_reported),
        cmocka_unit_test(test_repair_keeps_the_build),
        cmocka_unit_test(test_select_refuses_bad_input),
        cmocka_unit_test(test_official_val_list),
        cmocka_unit_test(test_no_split_says_why),
        cmocka_unit_test(test_fmnist_real_ir100),
        cmocka_unit_test(test_fmnist_real_ir10),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
