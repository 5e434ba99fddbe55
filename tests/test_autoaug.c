/* test_autoaug.c — AutoAugment's CIFAR-10 policy and Cutout (lt_autoaug.c).
 *
 * Every op, at every magnitude the 25 sub-policies use (and 0 and 9), both
 * signs, on two images, against what Pillow 9.4 computed
 * (tests/data/autoaug_pil.txt, written by tests/tools/gen_autoaug_fixture.py
 * from the DeepVoltaire functions BALMS copies): bit for bit. Then the
 * policy's draws (sub-policy uniform over 25, each op applied with its p,
 * signs even), its documented draw order replayed op by op, Cutout's
 * geometry and centre distribution, and lt_aug_train's order (crop, flip,
 * policy, Cutout before normalisation, so holes are -mean/std). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"
#include "lt_data.h"

#define FIXTURE "tests/data/autoaug_pil.txt"

/* gen_autoaug_fixture.py's lcg_image: 3 x 32 x 32, planar. */
static void lcg_image(uint32_t seed, int lo, int span, uint8_t *px)
{
    uint32_t st = seed;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                st = st * 1664525u + 1013904223u;
                px[(c * 32 + y) * 32 + x] = (uint8_t)(lo + (int)((st >> 24) + 3 * x + 2 * y + 40 * c) % span);
            }
}

static int op_by_name(const char *s)
{
    for (int op = 0; op < LT_AA_N_OPS; op++)
        if (!strcmp(lt_autoaug_op_name((lt_aa_op)op), s)) return op;
    return -1;
}

static void matches_pillow(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE, "r");
    if (!f) fail_msg("%s: cannot open (run from the repository root)", FIXTURE);
    uint8_t imgs[2][3072];
    lcg_image(1, 0, 256, imgs[0]);
    lcg_image(2, 60, 121, imgs[1]);
    char line[256];
    int n = 0, bad = 0, seen[LT_AA_N_OPS] = {0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char name[32], want[65];
        int idx, sign, k;
        if (sscanf(line, "%31s %d %d %d %64s", name, &idx, &sign, &k, want) != 5 || k < 0 || k > 1)
            fail_msg("%s: bad line: %s", FIXTURE, line);
        int op = op_by_name(name);
        if (op < 0) fail_msg("%s: unknown op %s", FIXTURE, name);
        uint8_t px[3072];
        memcpy(px, imgs[k], sizeof px);
        double m = lt_autoaug_magnitude((lt_aa_op)op, idx) * sign;
        assert_int_equal(lt_autoaug_op((lt_aa_op)op, m, 3, 32, 32, px), LT_OK);
        char got[65];
        lt_sha256_buf(px, sizeof px, got);
        if (strcmp(got, want)) {
            print_message("differs from Pillow: %s idx %d sign %d image %d\n", name, idx, sign, k);
            bad++;
        }
        seen[op]++;
        n++;
    }
    fclose(f);
    for (int op = 0; op < LT_AA_N_OPS; op++)
        if (!seen[op]) fail_msg("%s has no case for %s", FIXTURE, lt_autoaug_op_name((lt_aa_op)op));
    print_message("note: %d op outputs compared with Pillow's, %d differ\n", n, bad);
    assert_true(n >= 150);
    assert_int_equal(bad, 0);
}

/* The fixture's magnitudes are the policy's: spot values of the ranges. */
static void magnitudes(void **state)
{
    (void)state;
    assert_true(fabs(lt_autoaug_magnitude(LT_AA_SHEAR_X, 9) - 0.3) == 0);
    assert_true(fabs(lt_autoaug_magnitude(LT_AA_TRANSLATE_Y, 9) - 150.0 / 331.0) == 0);
    assert_true(fabs(lt_autoaug_magnitude(LT_AA_ROTATE, 2) - 20.0 / 3.0) < 1e-12);
    static const int bits[10] = {8, 8, 7, 7, 6, 6, 5, 5, 4, 4};
    for (int i = 0; i < 10; i++) assert_int_equal((int)lt_autoaug_magnitude(LT_AA_POSTERIZE, i), bits[i]);
    assert_true(lt_autoaug_magnitude(LT_AA_SOLARIZE, 0) == 256.0);
    assert_true(lt_autoaug_magnitude(LT_AA_SOLARIZE, 9) == 0.0);
    assert_true(fabs(lt_autoaug_magnitude(LT_AA_SOLARIZE, 2) - (256.0 - 2 * 256.0 / 9)) < 1e-9);
    assert_true(lt_autoaug_op_signed(LT_AA_SHEAR_Y) && !lt_autoaug_op_signed(LT_AA_ROTATE) &&
                !lt_autoaug_op_signed(LT_AA_SOLARIZE));
    /* bad shapes are refused, not guessed */
    uint8_t px[3 * 65 * 65] = {0};
    assert_int_equal(lt_autoaug_op(LT_AA_INVERT, 0, 2, 8, 8, px), LT_EINVAL);
    assert_int_equal(lt_autoaug_op(LT_AA_INVERT, 0, 1, 8, 8, px), LT_EINVAL);   /* RGB only, as the policy */
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    assert_int_equal(lt_autoaug_cifar10(1, 8, 8, px, &r), -1);
    assert_int_equal(lt_autoaug_op(LT_AA_INVERT, 0, 3, 65, 65, px), LT_EINVAL);
    assert_int_equal(lt_autoaug_op(LT_AA_ROTATE, 90, 3, 8, 8, px), LT_EINVAL);
}

/* Replays the documented draw order with lt_autoaug_op and a twin rng. */
static void policy_draw_order(void **state)
{
    (void)state;
    const lt_aa_subpolicy *pol = lt_autoaug_cifar10_policy();
    uint8_t base[3072];
    lcg_image(7, 0, 256, base);
    lt_rng a, b;
    lt_rng_init(&a, 42, 1);
    lt_rng_init(&b, 42, 1);
    for (int t = 0; t < 300; t++) {
        uint8_t x[3072], y[3072];
        memcpy(x, base, sizeof x);
        memcpy(y, base, sizeof y);
        int k = lt_autoaug_cifar10(3, 32, 32, x, &a);
        int kk = (int)lt_rng_below(&b, LT_AA_CIFAR10_N);
        assert_int_equal(k, kk);
        const lt_aa_subpolicy *s = &pol[k];
        for (int j = 0; j < 2; j++) {
            double p = j ? s->p2 : s->p1;
            lt_aa_op op = j ? s->op2 : s->op1;
            int idx = j ? s->idx2 : s->idx1;
            if (lt_rng_uniform(&b) < p) {
                double m = lt_autoaug_magnitude(op, idx);
                if (lt_autoaug_op_signed(op) && lt_rng_below(&b, 2) == 0) m = -m;
                assert_int_equal(lt_autoaug_op(op, m, 3, 32, 32, y), LT_OK);
            }
        }
        assert_memory_equal(x, y, sizeof x);
    }
    /* both rngs consumed the same number of draws */
    assert_true(lt_rng_uniform(&a) == lt_rng_uniform(&b));
}

/* Sub-policies uniform (chi-square, 24 dof), each op applied with its p. */
static void policy_distribution(void **state)
{
    (void)state;
    const lt_aa_subpolicy *pol = lt_autoaug_cifar10_policy();
    enum { N = 50000 };
    long cnt[LT_AA_CIFAR10_N] = {0}, applied[LT_AA_CIFAR10_N][2] = {{0}};
    lt_rng r;
    lt_rng_init(&r, 3, 9);
    uint8_t img[3 * 8 * 8];
    for (int t = 0; t < N; t++) {
        /* a flat image: invert is the only op that changes it, and it shows */
        memset(img, 100, sizeof img);
        lt_rng before = r;
        int k = lt_autoaug_cifar10(3, 8, 8, img, &r);
        cnt[k]++;
        lt_rng s = before;
        (void)lt_rng_below(&s, LT_AA_CIFAR10_N);
        for (int j = 0; j < 2; j++) {
            double p = j ? pol[k].p2 : pol[k].p1;
            lt_aa_op op = j ? pol[k].op2 : pol[k].op1;
            if (lt_rng_uniform(&s) < p) {
                applied[k][j]++;
                if (lt_autoaug_op_signed(op)) (void)lt_rng_below(&s, 2);
            }
        }
    }
    double chi = 0, e = (double)N / LT_AA_CIFAR10_N;
    for (int k = 0; k < LT_AA_CIFAR10_N; k++) chi += (cnt[k] - e) * (cnt[k] - e) / e;
    print_message("note: sub-policy chi-square %.1f (24 dof; 1e-4 tail at 59.4)\n", chi);
    assert_true(chi < 59.4);
    for (int k = 0; k < LT_AA_CIFAR10_N; k++)
        for (int j = 0; j < 2; j++) {
            double p = j ? pol[k].p2 : pol[k].p1, f = (double)applied[k][j] / cnt[k];
            double sd = sqrt(p * (1 - p) / cnt[k]);
            assert_true(fabs(f - p) <= 4.5 * sd + 1e-9);
        }
    /* Sub-policy 15 is (solarize 0.5, invert 0.0): invert never applies. */
    assert_int_equal(applied[14][1], 0);
}

static void cutout_geometry(void **state)
{
    (void)state;
    enum { H = 32, W = 32, L = 16 };
    float img[3 * H * W];
    lt_rng r;
    lt_rng_init(&r, 5, 0);
    long hits[H * W] = {0};
    const int T = 20000;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < 3 * H * W; i++) img[i] = 1.0f;
        lt_rng twin = r;
        int y = (int)lt_rng_below(&twin, H), x = (int)lt_rng_below(&twin, W);
        lt_cutout(3, H, W, img, 1, L, 0.0f, &r);
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++) {
                int in = yy >= y - L / 2 && yy < y + L / 2 && xx >= x - L / 2 && xx < x + L / 2;
                for (int c = 0; c < 3; c++) assert_true(img[(c * H + yy) * W + xx] == (in ? 0.0f : 1.0f));
                hits[yy * W + xx] += in;
            }
    }
    /* Centres uniform over all pixels: the corner is cut by the centres
     * y, x in 0..8 (9 x 9), the middle pixel by 16 x 16 of them. */
    double pc = 81.0 / (H * W), pm = 256.0 / (H * W);
    assert_true(fabs(hits[0] / (double)T - pc) < 4.5 * sqrt(pc * (1 - pc) / T));
    assert_true(fabs(hits[16 * W + 16] / (double)T - pm) < 4.5 * sqrt(pm * (1 - pm) / T));
    /* odd length: y - 7 .. y + 7 exclusive, 14 rows (the code's length // 2) */
    for (int i = 0; i < 3 * H * W; i++) img[i] = 1.0f;
    lt_rng_init(&r, 1, 1);
    lt_cutout(3, H, W, img, 2, 15, -2.0f, &r);
    long zeros = 0;
    for (int i = 0; i < H * W; i++) zeros += img[i] == -2.0f;
    assert_true(zeros > 0 && zeros <= 2 * 14 * 14);
}

/* lt_aug_train: crop -> flip -> policy -> Cutout -> normalise. */
static void train_order(void **state)
{
    (void)state;
    uint8_t img[3072];
    lcg_image(11, 0, 256, img);
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = a.out_w = 32;
    a.pad = 4;
    a.random_crop = 1;
    a.hflip = 1;
    a.autoaug = LT_AUTOAUG_CIFAR10;
    a.cutout_holes = 1;
    a.cutout_length = 16;
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2023f, 0.1994f, 0.2010f};
    for (int c = 0; c < 3; c++) {
        a.mean[c] = mean[c];
        a.std[c] = sd[c];
    }
    lt_aug plain = a;
    plain.autoaug = 0;
    plain.cutout_holes = 0;
    int holes_seen = 0;
    for (int t = 0; t < 50; t++) {
        lt_rng r, q;
        lt_rng_init(&r, 100 + t, 0);
        q = r;
        float out[3072], ref[3072];
        lt_aug_train(&a, 3, 32, 32, img, &r, out);
        /* the same draws by hand: crop + flip (lt_aug_train without the new
         * ops), then the policy on the 8-bit crop, then the hole */
        lt_aug geo = plain;
        for (int c = 0; c < 3; c++) {
            geo.mean[c] = 0.0f;
            geo.std[c] = 1.0f / 255.0f;   /* normalise to x / 255 / (1/255): the raw pixel */
        }
        lt_aug_train(&geo, 3, 32, 32, img, &q, ref);
        uint8_t px[3072];
        for (int i = 0; i < 3072; i++) px[i] = (uint8_t)lrintf(ref[i]);
        lt_autoaug_cifar10(3, 32, 32, px, &q);
        for (int i = 0; i < 3072; i++) ref[i] = px[i];
        lt_cutout(3, 32, 32, ref, 1, 16, 0.0f, &q);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 1024; i++) {
                float want = (ref[c * 1024 + i] / 255.0f - mean[c]) / sd[c];
                assert_true(out[c * 1024 + i] == want);
                holes_seen += c == 0 && ref[i] == 0.0f && out[i] == -mean[0] / sd[0];
            }
        assert_true(lt_rng_uniform(&r) == lt_rng_uniform(&q));
    }
    assert_true(holes_seen > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_pillow),     cmocka_unit_test(magnitudes),
        cmocka_unit_test(policy_draw_order),  cmocka_unit_test(policy_distribution),
        cmocka_unit_test(cutout_geometry),    cmocka_unit_test(train_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
