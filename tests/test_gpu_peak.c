/* test_gpu_peak.c — the two numbers behind `make bench-gpu`'s fraction of
 * peak, checked without a GPU:
 *   - the peak table (tests/gpu_peak.c): the device names the CUDA runtime
 *     reports for H100 SXM / PCIe / NVL and H200 / H200 NVL map to their
 *     data-sheet figures, the longer key wins ("H100 PCIe" is not an SXM),
 *     an unknown GPU or NULL gets no peak (0);
 *   - the FLOPs per image: lt_model_macs (which bench_gpu.c uses) for the
 *     three benchmarked models at their bench inputs equals a naive count
 *     written out from the architectures here (every conv's
 *     Ho x Wo x Co x Ci x k x k, the classifier's in x out), and ResNet-50
 *     at 224 is torchvision's published 4.09 GMACs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "gpu_peak.h"
#include "lt_model.h"

static void test_peak_table(void **st) {
    (void)st;
    const struct { const char *name, *product; double fp32, tf32; } cases[] = {
        {"NVIDIA H200 (sm_90, 132 SMs), CUDA runtime 13000, cuDNN 91900, cuBLAS 130000", "NVIDIA H200 SXM", 67, 495},
        {"NVIDIA H200", "NVIDIA H200 SXM", 67, 495},
        {"NVIDIA H200 NVL", "NVIDIA H200 NVL", 60, 417.5},
        {"NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5", 67, 495},
        {"NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 51, 378},
        {"NVIDIA H100 NVL", "NVIDIA H100 NVL", 60, 417.5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const lt_gpu_peak *p = lt_gpu_peak_find(cases[i].name);
        assert_non_null(p);
        assert_string_equal(p->product, cases[i].product);
        assert_true(lt_gpu_peak_tflops(p, 0) == cases[i].fp32);
        assert_true(lt_gpu_peak_tflops(p, 1) == cases[i].tf32);
    }
    assert_null(lt_gpu_peak_find("NVIDIA A100-SXM4-80GB"));
    assert_null(lt_gpu_peak_find(NULL));
    assert_true(lt_gpu_peak_tflops(NULL, 0) == 0.0);
    assert_true(lt_gpu_peak_tflops(NULL, 1) == 0.0);
}

/* ---- naive MAC counts, written from the architectures (not the engine) ---- */
static double conv(int ho, int co, int ci, int k) { return (double)ho * ho * co * ci * k * k; }

/* CIFAR ResNet-(6n+2), option A (the shortcut multiplies nothing). */
static double naive_cifar(int n, int c, int hw, int classes) {
    double m = conv(hw, 16, c, 3);
    int inp = 16, h = hw;
    for (int s = 0; s < 3; s++) {
        const int planes = 16 << s;
        for (int b = 0; b < n; b++) {
            if (s > 0 && b == 0) h = (h + 1) / 2;   /* 3x3 pad 1 stride 2 */
            m += conv(h, planes, inp, 3) + conv(h, planes, planes, 3);
            inp = planes;
        }
    }
    return m + 64.0 * classes;
}

/* torchvision ResNet-50 v1.5 (stride on the 3x3 of a bottleneck). */
static double naive_resnet50(int hw, int classes) {
    const int blocks[4] = {3, 4, 6, 3};
    int h = (hw + 2 * 3 - 7) / 2 + 1;   /* 7x7/2 pad 3 */
    double m = conv(h, 64, 3, 7);
    h = (h + 2 - 3) / 2 + 1;            /* max pool 3/2 pad 1 */
    int inp = 64;
    for (int s = 0; s < 4; s++) {
        const int p = 64 << s;
        for (int b = 0; b < blocks[s]; b++) {
            const int hin = h;
            if (s > 0 && b == 0) h = (h + 2 - 3) / 2 + 1;
            m += conv(hin, p, inp, 1) + conv(h, p, p, 3) + conv(h, 4 * p, p, 1);
            if (b == 0) m += conv(h, 4 * p, inp, 1);   /* projection */
            inp = 4 * p;
        }
    }
    return m + 2048.0 * classes;
}

static double engine_macs(const char *arch, int c, int hw, int classes) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, c, hw, hw}), LT_OK);
    int feat = lt_resnet_backbone(m, arch);
    assert_true(feat > 0);
    assert_true(lt_add_linear(m, "logits", "head", feat, classes, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 0), LT_OK);
    double r = lt_model_macs(m);
    lt_model_free(m);
    return r;
}

static void test_bench_flops(void **st) {
    (void)st;
    const double r32 = engine_macs("resnet32_cifar", 3, 32, 100), r8 = engine_macs("resnet8_cifar", 1, 28, 10),
                 r50 = engine_macs("resnet50", 3, 224, 1000);
    print_message("MACs/img: resnet32_cifar 3x32x32 %.0f, resnet8_cifar 1x28x28 %.0f, resnet50 3x224x224 %.0f\n",
                  r32, r8, r50);
    assert_true(r32 == naive_cifar(5, 3, 32, 100));
    assert_true(r8 == naive_cifar(1, 1, 28, 10));
    assert_true(r50 == naive_resnet50(224, 1000));
    /* torchvision's model card: ResNet-50 4.09 GFLOPS (multiply-adds) */
    assert_true(fabs(r50 / 4.09e9 - 1.0) < 1e-3);
    /* the CIFAR ResNet-32 at 10 classes is the figure test_model.c pins */
    assert_true(naive_cifar(5, 3, 32, 10) == 68862592.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peak_table),
        cmocka_unit_test(test_bench_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
