/* test_subset.c — LT profile counts, the LDAM selection and its digests
 * against the values in specs/datasets.md §1.3, §1.5 and §2.4. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"

static long sum(const long *a, int n)
{
    long s = 0;
    for (int i = 0; i < n; i++) s += a[i];
    return s;
}

static void expect_counts(long n_max, int C, double ir, const long *want, long total)
{
    long got[100];
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, n_max, C, ir, got), LT_OK);
    for (int i = 0; i < C; i++) {
        if (got[i] != want[i]) fail_msg("n_max %ld IR %g class %d: got %ld want %ld", n_max, ir, i, got[i], want[i]);
    }
    assert_int_equal(sum(got, C), total);
}

static void test_cifar10_counts(void **state)
{
    (void)state;
    static const long r10[] = {5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500};
    static const long r20[] = {5000, 3584, 2569, 1842, 1320, 946, 678, 486, 348, 250};
    static const long r50[] = {5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100};
    static const long r100[] = {5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50};
    static const long r200[] = {5000, 2775, 1540, 854, 474, 263, 146, 81, 45, 25};
    expect_counts(5000, 10, 10, r10, 20431);
    expect_counts(5000, 10, 20, r20, 17023);
    expect_counts(5000, 10, 50, r50, 13996);
    expect_counts(5000, 10, 100, r100, 12406);
    expect_counts(5000, 10, 200, r200, 11203);
    int m, md, f;
    long c[10];
    lt_subset_counts(LT_PROFILE_EXP, 5000, 10, 100, c);
    lt_shot_groups(c, 10, &m, &md, &f);
    assert_int_equal(m, 8);
    assert_int_equal(md, 2);
    assert_int_equal(f, 0);
}

static void test_cifar100_counts(void **state)
{
    (void)state;
    static const long r100[] = {500, 477, 455, 434, 415, 396, 378, 361, 344, 328, 314, 299, 286, 273, 260, 248, 237,
        226, 216, 206, 197, 188, 179, 171, 163, 156, 149, 142, 135, 129, 123, 118, 112, 107, 102, 98, 93, 89, 85, 81,
        77, 74, 70, 67, 64, 61, 58, 56, 53, 51, 48, 46, 44, 42, 40, 38, 36, 35, 33, 32, 30, 29, 27, 26, 25, 24, 23, 22,
        21, 20, 19, 18, 17, 16, 15, 15, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5};
    static const long r50[] = {500, 480, 462, 444, 426, 410, 394, 379, 364, 350, 336, 323, 311, 299, 287, 276, 265,
        255, 245, 235, 226, 218, 209, 201, 193, 186, 178, 172, 165, 158, 152, 146, 141, 135, 130, 125, 120, 115, 111,
        107, 102, 98, 95, 91, 87, 84, 81, 78, 75, 72, 69, 66, 64, 61, 59, 56, 54, 52, 50, 48, 46, 44, 43, 41, 39, 38,
        36, 35, 34, 32, 31, 30, 29, 27, 26, 25, 24, 23, 22, 22, 21, 20, 19, 18, 18, 17, 16, 16, 15, 14, 14, 13, 13, 12,
        12, 11, 11, 10, 10, 10};
    static const long r10[] = {500, 488, 477, 466, 455, 445, 434, 424, 415, 405, 396, 387, 378, 369, 361, 352, 344,
        336, 328, 321, 314, 306, 299, 292, 286, 279, 273, 266, 260, 254, 248, 243, 237, 232, 226, 221, 216, 211, 206,
        201, 197, 192, 188, 183, 179, 175, 171, 167, 163, 159, 156, 152, 149, 145, 142, 139, 135, 132, 129, 126, 123,
        121, 118, 115, 112, 110, 107, 105, 102, 100, 98, 95, 93, 91, 89, 87, 85, 83, 81, 79, 77, 75, 74, 72, 70, 69,
        67, 66, 64, 63, 61, 60, 58, 57, 56, 54, 53, 52, 51, 50};
    static const long r200[] = {500, 473, 449, 425, 403, 382, 362, 343, 325, 308, 292, 277, 263, 249, 236, 224, 212,
        201, 190, 180, 171, 162, 154, 146, 138, 131, 124, 117, 111, 105, 100, 95, 90, 85, 81, 76, 72, 69, 65, 62, 58,
        55, 52, 50, 47, 44, 42, 40, 38, 36, 34, 32, 30, 29, 27, 26, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 13,
        12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2, 2};
    expect_counts(500, 100, 100, r100, 10847);
    expect_counts(500, 100, 50, r50, 12608);
    expect_counts(500, 100, 10, r10, 19573);
    expect_counts(500, 100, 200, r200, 9502);
    /* Shot groups, strict rule (§1.3). */
    static const struct { double ir; int m, md, f; } g[] = {
        {100, 35, 35, 30}, {50, 41, 41, 18}, {10, 69, 31, 0}, {200, 30, 31, 39}};
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
        long c[100];
        int m, md, f;
        assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, 500, 100, g[k].ir, c), LT_OK);
        lt_shot_groups(c, 100, &m, &md, &f);
        if (m != g[k].m || md != g[k].md || f != g[k].f)
            fail_msg("CIFAR-100 IR%g groups %d/%d/%d, want %d/%d/%d", g[k].ir, m, md, f, g[k].m, g[k].md, g[k].f);
    }
}

static void test_fmnist_counts(void **state)
{
    (void)state;
    static const long r100[] = {6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60};
    expect_counts(6000, 10, 100, r100, 14886);
    long c[10];
    static const struct { double ir; long total; } t[] = {{10, 24516}, {50, 16796}, {200, 13444}};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, 6000, 10, t[k].ir, c), LT_OK);
        assert_int_equal(sum(c, 10), t[k].total);
    }
    int m, md, f;
    lt_subset_counts(LT_PROFILE_EXP, 6000, 10, 100, c);
    lt_shot_groups(c, 10, &m, &md, &f);
    assert_int_equal(m, 8); /* 100 itself is medium (strict rule) */
    assert_int_equal(md, 2);
    assert_int_equal(f, 0);
}

static void test_step_profile(void **state)
{
    (void)state;
    long c[100];
    assert_int_equal(lt_subset_counts(LT_PROFILE_STEP, 5000, 10, 100, c), LT_OK);
    for (int i = 0; i < 5; i++) assert_int_equal(c[i], 5000);
    for (int i = 5; i < 10; i++) assert_int_equal(c[i], 50);
    assert_int_equal(lt_subset_counts(LT_PROFILE_STEP, 500, 100, 10, c), LT_OK);
    assert_int_equal(c[49], 500);
    assert_int_equal(c[50], 50);
    assert_int_equal(sum(c, 100), 50 * 500 + 50 * 50);
    /* Bad recipes are refused with a message. */
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, 500, 100, 0.5, c), LT_EINVAL);
    assert_true(strstr(lt_errmsg(), "IR") != NULL);
    assert_int_equal(lt_subset_counts(LT_PROFILE_NATURAL, 500, 100, 10, c), LT_EINVAL);
    lt_profile p;
    assert_int_equal(lt_profile_parse("step", &p), LT_OK);
    assert_int_equal(p, LT_PROFILE_STEP);
    assert_int_equal(lt_profile_parse("linear", &p), LT_EINVAL);
}

/* Synthetic labels laid out class by class with every class interleaved
 * (label = i % C): position of rank r in class c is r*C + c. The selection
 * must equal the §1.5 perm vectors mapped through that layout. */
static void check_perm(int C, long per, const int32_t *want0, const int32_t *want1, const int32_t *wantl)
{
    long n = (long)C * per;
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    long *counts = malloc((size_t)C * sizeof *counts);
    int32_t *idx = malloc((size_t)n * sizeof *idx), *ranks = malloc((size_t)n * sizeof *ranks);
    assert_non_null(labels);
    for (long i = 0; i < n; i++) labels[i] = (int32_t)(i % C);
    for (int c = 0; c < C; c++) counts[c] = per;
    long k = 0;
    assert_int_equal(lt_subset_select(labels, n, C, counts, 0, idx, ranks, &k), LT_OK);
    assert_int_equal(k, n);
    for (int j = 0; j < 12; j++) {
        assert_int_equal(ranks[j], want0[j]);
        assert_int_equal(idx[j], (int32_t)(want0[j] * C + 0));
        assert_int_equal(ranks[per + j], want1[j]);
        assert_int_equal(idx[per + j], (int32_t)(want1[j] * C + 1));
        assert_int_equal(ranks[(C - 1) * per + j], wantl[j]);
        assert_int_equal(idx[(C - 1) * per + j], (int32_t)(wantl[j] * C + C - 1));
    }
    free(labels); free(counts); free(idx); free(ranks);
}

static void test_perm_vectors(void **state)
{
    (void)state;
    static const int32_t c10_0[] = {398, 3833, 4836, 4572, 636, 2545, 1161, 2230, 148, 2530, 4070, 1261};
    static const int32_t c10_1[] = {597, 332, 521, 3935, 4800, 1102, 4304, 1826, 4282, 2746, 1944, 1989};
    static const int32_t c10_9[] = {2204, 3816, 2206, 2507, 1926, 4765, 368, 3808, 4418, 3498, 541, 4760};
    check_perm(10, 5000, c10_0, c10_1, c10_9);
    static const int32_t c100_0[] = {90, 254, 283, 445, 461, 15, 316, 489, 159, 153, 241, 250};
    static const int32_t c100_1[] = {277, 307, 436, 88, 261, 57, 413, 459, 398, 201, 103, 44};
    static const int32_t c100_99[] = {348, 153, 363, 361, 299, 353, 338, 99, 481, 246, 426, 182};
    check_perm(100, 500, c100_0, c100_1, c100_99);
    /* Fashion-MNIST perm_0 (§2.4), classes in consecutive blocks this time. */
    static const int32_t f0[] = {4320, 2006, 5689, 472, 1370, 1457, 5783, 3484, 1145, 130, 1136, 4658};
    int32_t *labels = malloc(60000 * sizeof *labels), *idx = malloc(60000 * sizeof *idx);
    long counts[10], k;
    for (long i = 0; i < 60000; i++) labels[i] = (int32_t)(i / 6000);
    for (int c = 0; c < 10; c++) counts[c] = 6000;
    assert_int_equal(lt_subset_select(labels, 60000, 10, counts, 0, idx, NULL, &k), LT_OK);
    for (int j = 0; j < 12; j++) assert_int_equal(idx[j], f0[j]);
    free(labels); free(idx);
}

static void test_digests(void **state)
{
    (void)state;
    static const struct { long n_max; int C; double ir; const char *hex; } d[] = {
        {5000, 10, 10, "29734c38b1efdfb3fb1f890e0f75de9cb8c7a49cec6cf085ac49af75a7f522b3"},
        {5000, 10, 50, "8a24c1e8fcce1680801179d01420655cb05a9799cf8380a888d124ccf96de1e5"},
        {5000, 10, 100, "0632086064e4d4dd306ebe21b38c28fc41bb555fea4ce0baaae0864ba78d9c59"},
        {5000, 10, 200, "3fed219b89887e59f77f9c21d707e07cbee98d5507fc75afb268b5b0b02cfa05"},
        {500, 100, 10, "14f431f80b707474608b052016370ecd7af29c5b4ea074bcac5aa461a81cdc72"},
        {500, 100, 50, "629374088d6117ddd50ad594062558cb0080fbe35ba8198e14f49f6ad68b7dfe"},
        {500, 100, 100, "ca20f49070889af27f53b94e9240800c6c9b9e3f169205a88333e90bf96b2b3f"},
        {500, 100, 200, "cb64024701a0e7b955905c87d26b1291a36877f7bcfdf75cea21017093fb69ff"},
        {6000, 10, 100, "0349c26f25afbc0ec16b058c1a40d24dd79225482a395f26e16c11d1e9407727"},
    };
    for (size_t k = 0; k < sizeof d / sizeof d[0]; k++) {
        long sizes[100], counts[100];
        char hex[65];
        for (int c = 0; c < d[k].C; c++) sizes[c] = d[k].n_max;
        assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, d[k].n_max, d[k].C, d[k].ir, counts), LT_OK);
        assert_int_equal(lt_subset_rank_digest(sizes, counts, d[k].C, 0, hex), LT_OK);
        if (strcmp(hex, d[k].hex)) fail_msg("digest n_max %ld IR %g: %s, want %s", d[k].n_max, d[k].ir, hex, d[k].hex);
    }
}

/* The digest computed from an actual selection (shuffled labels layout) must
 * equal the data-free one: the selection code and the digest agree. */
static void test_digest_from_selection(void **state)
{
    (void)state;
    long n = 60000, counts[10], k;
    int32_t *labels = malloc((size_t)n * sizeof *labels), *idx = malloc((size_t)n * sizeof *idx);
    int32_t *ranks = malloc((size_t)n * sizeof *ranks), *kept = malloc((size_t)n * sizeof *kept);
    /* A scrambled but deterministic layout: label = (i * 7919) % 10 gives 6000 each. */
    for (long i = 0; i < n; i++) labels[i] = (int32_t)((i * 7919) % 10);
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, 6000, 10, 100, counts), LT_OK);
    assert_int_equal(lt_subset_select(labels, n, 10, counts, 0, idx, ranks, &k), LT_OK);
    assert_int_equal(k, 14886);
    for (long i = 0; i < k; i++) kept[i] = labels[idx[i]];
    char hex[65];
    assert_int_equal(lt_subset_rank_digest_from(ranks, kept, k, 10, hex), LT_OK);
    assert_string_equal(hex, "0349c26f25afbc0ec16b058c1a40d24dd79225482a395f26e16c11d1e9407727");
    /* Kept positions are unique and of the right class. */
    char *seen = calloc((size_t)n, 1);
    for (long i = 0; i < k; i++) {
        assert_false(seen[idx[i]]);
        seen[idx[i]] = 1;
    }
    free(seen);
    /* Index-list hash: ",".join of the decimals. */
    int32_t small[] = {5, 17, 3};
    char h2[65];
    lt_subset_index_sha256(small, 3, h2);
    char want[65];
    lt_sha256_buf("5,17,3", 6, want);
    assert_string_equal(h2, want);
    /* Too few images in a class -> LT_EDATA naming the class. */
    counts[3] = 7000;
    assert_int_equal(lt_subset_select(labels, n, 10, counts, 0, idx, ranks, &k), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "class 3"));
    free(labels); free(idx); free(ranks); free(kept);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar10_counts),
        cmocka_unit_test(test_cifar100_counts),
        cmocka_unit_test(test_fmnist_counts),
        cmocka_unit_test(test_step_profile),
        cmocka_unit_test(test_perm_vectors),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_digest_from_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
