/* test_splits_real.c — the published split lists in ../shared/data/splits
 * parse under the strict rules and have exactly the sizes, hashes and class
 * statistics recorded in ../shared/data/splits/SOURCES.md and
 * specs/datasets.md (§3.3, §4.1, §4.3, §4.4, §6.4). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixtures_img.h"
#include "lt_ckpt.h"
#include "lt_imagesets.h"

#define SPLITS "../shared/data/splits"

typedef struct {
    const char *file;
    long bytes, lines;
    int classes;
    long min, max;
    const char *sha256;
} split_t;

/* The table of SOURCES.md, verbatim. */
static const split_t SPLIT[] = {
    {"ImageNet_LT_val.txt", 804172, 20000, 1000, 20, 20,
     "9af7ba688acf9532ff5845a8fb14a1e97fdc4c51ac48bc72c08ea9c3f7ff142e"},
    {"ImageNet_LT_test.txt", 2344500, 50000, 1000, 50, 50,
     "d1590191cf8a71fada7b1aaedaa2d139a2aea93ff2f1b755319d0bd8dbaa55d5"},
    {"Places_LT_train.txt", 2092674, 62500, 365, 5, 4980,
     "726c4871dcbf07ce2f857703bfe32e9a83ffbf52d704239f6d95c4f4f4c247f7"},
    {"Places_LT_val.txt", 253480, 7300, 365, 20, 20,
     "719e3cf3766c09134ea28f56f1036c78def511ac1ed2c2532a6beef78f2439ba"},
    {"Places_LT_test.txt", 1705400, 36500, 365, 100, 100,
     "44eee8441c8098c59195465abede425721bc35525d75209f9433b161a6eb37bc"},
    {"iNaturalist18_val.txt", 1677390, 24426, 8142, 3, 3,
     "efaeff65f80641b60864470e6f255aa69453406ef5717eec8c6681748f3a61f3"},
};
#define NSPLIT (int)(sizeof SPLIT / sizeof SPLIT[0])

/* CMocka reports the case SKIPPED (not passed) with the reason printed. */
#define SKIP_WITHOUT_SPLITS()                                                                      \
    do {                                                                                           \
        struct stat st_;                                                                           \
        if (stat(SPLITS "/SOURCES.md", &st_) != 0) {                                               \
            print_message("skip: %s absent (run from the repository root with ../shared)\n", SPLITS); \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static int load(const char *file, lt_listfile *lf, char **raw, size_t *len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", SPLITS, file);
    if (fx_read_file(p, raw, len))
        return -1;
    return lt_listfile_parse(lf, file, *raw, *len);
}

static void test_counts_and_hashes(void **state)
{
    (void)state;
    SKIP_WITHOUT_SPLITS();
    for (int i = 0; i < NSPLIT; i++) {
        const split_t *s = &SPLIT[i];
        lt_listfile lf;
        char *raw;
        size_t len;
        int rc = load(s->file, &lf, &raw, &len);
        if (rc)
            print_message("%s: %s\n", s->file, lt_errmsg());
        assert_int_equal(rc, LT_OK);
        assert_int_equal((long)len, s->bytes);
        char hex[65];
        lt_sha256_buf(raw, len, hex);
        assert_string_equal(hex, s->sha256);
        assert_int_equal(lf.n, s->lines);
        assert_int_equal(lf.n_classes, s->classes);
        long mn = lf.class_count[0], mx = mn;
        for (int c = 0; c < lf.n_classes; c++) {
            if (lf.class_count[c] < mn) mn = lf.class_count[c];
            if (lf.class_count[c] > mx) mx = lf.class_count[c];
        }
        assert_int_equal(mn, s->min);
        assert_int_equal(mx, s->max);
        /* The formatter reproduces the file byte for byte. */
        char *txt;
        size_t tl;
        assert_int_equal(lt_listfile_format(&lf, &txt, &tl), LT_OK);
        assert_int_equal(tl, len);
        assert_memory_equal(txt, raw, len);
        free(txt);
        print_message("note: %s: %ld lines, %d classes, %ld..%ld per class, sha256 ok\n",
                      s->file, lf.n, lf.n_classes, mn, mx);
        lt_listfile_free(&lf);
        free(raw);
    }
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void test_places_lt(void **state)
{
    (void)state;
    SKIP_WITHOUT_SPLITS();
    lt_listfile tr;
    char *raw;
    size_t len;
    assert_int_equal(load("Places_LT_train.txt", &tr, &raw, &len), LT_OK);
    free(raw);
    /* §0.2 / §4.1: strict rule 131 / 163 / 71. */
    int many, med, few;
    lt_listfile_shot_groups(&tr, &many, &med, &few);
    assert_int_equal(many, 131);
    assert_int_equal(med, 163);
    assert_int_equal(few, 71);
    /* OLTR-2019-08 rule (>= 100 / <= 20): 132 / 156 / 77. */
    int m2 = 0, f2 = 0;
    for (int c = 0; c < tr.n_classes; c++) {
        m2 += tr.class_count[c] >= 100;
        f2 += tr.class_count[c] <= 20;
    }
    assert_int_equal(m2, 132);
    assert_int_equal(f2, 77);
    assert_int_equal(tr.n_classes - m2 - f2, 156);
    /* Median 72 (§4.1). */
    long *sorted = malloc((size_t)tr.n_classes * sizeof *sorted);
    memcpy(sorted, tr.class_count, (size_t)tr.n_classes * sizeof *sorted);
    qsort(sorted, (size_t)tr.n_classes, sizeof *sorted, cmp_long);
    assert_int_equal(sorted[tr.n_classes / 2], 72);
    free(sorted);
    /* Grouped by label in ascending order (§0.1). */
    for (long i = 1; i < tr.n; i++)
        assert_true(tr.label[i] >= tr.label[i - 1]);
    /* §4.4 label trap: the list's labels for the five permuted classes. */
    struct { const char *dir; int label; } trap[] = {
        {"train/desert_road/", 116}, {"train/desert-sand/", 117},
        {"train/desert-vegetation/", 118}, {"train/field_road/", 141},
        {"train/field-wild/", 142},
    };
    for (int k = 0; k < 5; k++) {
        long hits = 0;
        for (long i = 0; i < tr.n; i++)
            if (strncmp(tr.path[i], trap[k].dir, strlen(trap[k].dir)) == 0) {
                assert_int_equal(tr.label[i], trap[k].label);
                hits++;
            }
        assert_true(hits > 0);
    }
    /* §4.3 mapping applies to every line, e.g. the documented example. */
    char m[512];
    for (long i = 0; i < tr.n; i++)
        assert_int_equal(lt_pathmap_apply(LT_PATHMAP_PLACES365, tr.path[i], m, sizeof m), LT_OK);
    assert_int_equal(lt_pathmap_apply(LT_PATHMAP_PLACES365,
                                      "train/apartment_building-outdoor/00000794.jpg", m,
                                      sizeof m), LT_OK);
    assert_string_equal(m, "data_256/a/apartment_building/outdoor/00000794.jpg");
    lt_listfile_free(&tr);

    lt_listfile te;
    assert_int_equal(load("Places_LT_test.txt", &te, &raw, &len), LT_OK);
    free(raw);
    assert_int_equal(lt_pathmap_apply(LT_PATHMAP_PLACES365, te.path[0], m, sizeof m), LT_OK);
    assert_string_equal(m, "val_256/Places365_val_00003597.jpg");
    lt_strmap seen;
    assert_int_equal(lt_strmap_init(&seen, (size_t)te.n), LT_OK);
    char **keep = malloc((size_t)te.n * sizeof *keep);
    for (long i = 0; i < te.n; i++) {
        assert_int_equal(lt_pathmap_apply(LT_PATHMAP_PLACES365, te.path[i], m, sizeof m), LT_OK);
        keep[i] = strdup(m);
        long prev;
        assert_int_equal(lt_strmap_put(&seen, keep[i], i, &prev), LT_OK);
        assert_int_equal(prev, -1); /* mapped test paths are unique */
    }
    lt_strmap_free(&seen);
    for (long i = 0; i < te.n; i++)
        free(keep[i]);
    free(keep);
    lt_listfile_free(&te);
}

/* wnid of "train/n01440764/..." or "val/n01440764/...". */
static void wnid_of(const char *p, char out[16])
{
    const char *s = strchr(p, '/') + 1;
    memcpy(out, s, 9);
    out[9] = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_imagenet_lt(void **state)
{
    (void)state;
    SKIP_WITHOUT_SPLITS();
    lt_listfile va, te;
    char *raw;
    size_t len;
    assert_int_equal(load("ImageNet_LT_val.txt", &va, &raw, &len), LT_OK);
    free(raw);
    assert_int_equal(load("ImageNet_LT_test.txt", &te, &raw, &len), LT_OK);
    free(raw);
    /* §3.3: label = rank of the wnid in byte-sorted order, same in val and test. */
    char (*w)[16] = malloc((size_t)te.n * sizeof *w);
    const char **u = malloc((size_t)te.n * sizeof *u);
    for (long i = 0; i < te.n; i++) {
        wnid_of(te.path[i], w[i]);
        u[i] = w[i];
    }
    qsort(u, (size_t)te.n, sizeof *u, cmp_str);
    long nu = 0;
    for (long i = 0; i < te.n; i++)
        if (nu == 0 || strcmp(u[nu - 1], u[i]))
            u[nu++] = u[i];
    assert_int_equal(nu, 1000);
    lt_strmap rank;
    assert_int_equal(lt_strmap_init(&rank, 1000), LT_OK);
    for (long r = 0; r < nu; r++)
        assert_int_equal(lt_strmap_put(&rank, u[r], r, NULL), LT_OK);
    for (long i = 0; i < te.n; i++)
        assert_int_equal(lt_strmap_get(&rank, w[i]), te.label[i]);
    for (long i = 0; i < va.n; i++) {
        char wv[16];
        wnid_of(va.path[i], wv);
        assert_int_equal(lt_strmap_get(&rank, wv), va.label[i]);
    }
    assert_string_equal(u[0], "n01440764");
    assert_string_equal(u[999], "n15075141");
    lt_strmap_free(&rank);
    /* Test lines grouped by ascending label (§0.1). */
    for (long i = 1; i < te.n; i++)
        assert_true(te.label[i] >= te.label[i - 1]);
    /* Basename matching against the flat val tar needs unique basenames. */
    lt_strmap bn;
    assert_int_equal(lt_strmap_init(&bn, (size_t)te.n), LT_OK);
    for (long i = 0; i < te.n; i++) {
        long prev;
        const char *b = strrchr(te.path[i], '/') + 1;
        assert_int_equal(lt_strmap_put(&bn, b, i, &prev), LT_OK);
        assert_int_equal(prev, -1);
        assert_int_equal(strncmp(b, "ILSVRC2012_val_", 15), 0);
    }
    lt_strmap_free(&bn);
    free(w);
    free(u);
    lt_listfile_free(&va);
    lt_listfile_free(&te);
}

static void test_inat18_val(void **state)
{
    (void)state;
    SKIP_WITHOUT_SPLITS();
    lt_listfile va;
    char *raw;
    size_t len;
    assert_int_equal(load("iNaturalist18_val.txt", &va, &raw, &len), LT_OK);
    free(raw);
    /* §6.4: label = the directory number train_val2018/<super>/<id>/<hash>.jpg. */
    for (long i = 0; i < va.n; i++) {
        assert_int_equal(strncmp(va.path[i], "train_val2018/", 14), 0);
        const char *s = strchr(va.path[i] + 14, '/');
        assert_non_null(s);
        assert_int_equal(atol(s + 1), va.label[i]);
    }
    int many, med, few;
    lt_listfile_shot_groups(&va, &many, &med, &few);
    assert_int_equal(few, 8142); /* 3 per class: all "few" by count */
    lt_listfile_free(&va);
}

/* The two train lists that are not in shared/ (too large for the snapshot,
 * SOURCES.md): checked when someone has placed them there. Their shot-group
 * sizes are UNVERIFIED literature values (§8), so they are printed, not
 * asserted. */
static void test_optional_train_lists(void **state)
{
    (void)state;
    SKIP_WITHOUT_SPLITS();
    struct {
        const char *file;
        long lines;
        int classes;
        const char *sha256;
    } opt[2] = {
        {"ImageNet_LT_train.txt", 115846, 1000,
         "efdbdad4f050237c310b2f354cf95a8b1d7c8d57a63c4ea4bb6bf2bcb012f37f"},
        {"iNaturalist18_train.txt", 437513, 8142, NULL},
    };
    int n_checked = 0;
    for (int i = 0; i < 2; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", SPLITS, opt[i].file);
        struct stat st;
        if (stat(p, &st) != 0) {
            /* one absent list is a note; the case is SKIPPED only when
             * neither list could be checked */
            print_message("note: %s not present (not in the shared snapshot; fetched by the "
                          "pipeline), shot groups not checked\n", opt[i].file);
            continue;
        }
        n_checked++;
        lt_listfile lf;
        char *raw;
        size_t len;
        assert_int_equal(load(opt[i].file, &lf, &raw, &len), LT_OK);
        assert_int_equal(lf.n, opt[i].lines);
        assert_int_equal(lf.n_classes, opt[i].classes);
        if (opt[i].sha256) {
            char hex[65];
            lt_sha256_buf(raw, len, hex);
            assert_string_equal(hex, opt[i].sha256);
        }
        int many, med, few;
        lt_listfile_shot_groups(&lf, &many, &med, &few);
        print_message("note: %s: shot groups %d / %d / %d (literature, UNVERIFIED)\n",
                      opt[i].file, many, med, few);
        lt_listfile_free(&lf);
        free(raw);
    }
    if (n_checked == 0) {
        print_message("skip: neither optional train list is present\n");
        skip();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_hashes),
        cmocka_unit_test(test_places_lt),
        cmocka_unit_test(test_imagenet_lt),
        cmocka_unit_test(test_inat18_val),
        cmocka_unit_test(test_optional_train_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
