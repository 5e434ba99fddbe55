/* test_run_device.c — the run's device (harness/lt_run_device.h): the
 * request's words and their combinations, the checkpoint identity's device
 * part, the device tag (cpu, cuda, cuda-tf32, and -nhwc) and the run directory's
 * method component it names, and the probe (cpu: no
 * child; cuda without a module: the loader's answer from the child, kept
 * for the process). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt.h"
#include "lt_run_device.h"
#include "lt_runner.h"

static void test_parse(void **state)
{
    (void)state;
    lt_run_device d;
    assert_int_equal(lt_run_device_parse(NULL, NULL, NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(d.kind, LT_BACKEND_CPU);
    assert_int_equal(d.math, LT_CUDA_FP32);
    assert_int_equal(d.deterministic, 0);
    assert_int_equal(lt_run_device_parse("", "", NULL, 0, "ref", &d), LT_OK);   /* --conv on cpu: fine */
    assert_int_equal(d.kind, LT_BACKEND_CPU);
    assert_int_equal(lt_run_device_parse("cuda:2", "tf32", NULL, 1, "", &d), LT_OK);
    assert_int_equal(d.kind, LT_BACKEND_CUDA);
    assert_int_equal(d.device, 2);
    assert_int_equal(d.math, LT_CUDA_TF32);
    assert_int_equal(d.deterministic, 1);
    assert_int_equal(lt_run_device_parse("cuda", NULL, NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(d.device, 0);
    assert_int_equal(d.math, LT_CUDA_FP32);
    assert_int_equal(d.layout, LT_LAYOUT_NCHW);
    assert_int_equal(lt_run_device_parse("cuda", "tf32", "nhwc", 0, NULL, &d), LT_OK);
    assert_int_equal(d.math, LT_CUDA_TF32);
    assert_int_equal(d.layout, LT_LAYOUT_NHWC);
    assert_int_equal(lt_run_device_parse("cuda", NULL, "nchw", 0, NULL, &d), LT_OK);   /* the default, said */
    assert_int_equal(d.layout, LT_LAYOUT_NCHW);
    assert_int_equal(lt_run_device_parse("cuda", NULL, "", 0, NULL, &d), LT_OK);
    assert_int_equal(d.layout, LT_LAYOUT_NCHW);
    static const struct { const char *dev, *math, *layout; int det; const char *conv, *why; } bad[] = {
        {"gpu", NULL, NULL, 0, NULL, "expected cpu, cuda or cuda:N"},
        {"cuda", "bf16", NULL, 0, NULL, "expected fp32 or tf32"},
        {"cpu", "fp32", NULL, 0, NULL, "math mode fp32: only for a cuda device"},
        {NULL, "tf32", NULL, 0, NULL, "only for a cuda device"},
        {"cpu", NULL, NULL, 1, NULL, "deterministic: only for a cuda device"},
        {"cuda:1", NULL, NULL, 0, "direct", "conv path direct: a cpu backend's option, not for device cuda:1"},
        {"cuda", NULL, "channels_last", 0, NULL, "layout 'channels_last': expected nchw or nhwc"},
        {"cpu", NULL, "nhwc", 0, NULL, "layout nhwc: only for a cuda device"},
        {NULL, NULL, "nchw", 0, NULL, "layout nchw: only for a cuda device"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(lt_run_device_parse(bad[i].dev, bad[i].math, bad[i].layout, bad[i].det, bad[i].conv, &d), LT_EINVAL);
        if (!strstr(lt_errmsg(), bad[i].why)) fail_msg("case %zu: %s (want %s)", i, lt_errmsg(), bad[i].why);
    }
}

static void test_identity_and_dir(void **state)
{
    (void)state;
    lt_run_device d;
    char buf[128];
    assert_int_equal(lt_run_device_parse("cpu", NULL, NULL, 0, NULL, &d), LT_OK);
    lt_run_device_identity(&d, buf, sizeof buf);
    assert_string_equal(buf, "");   /* cpu checkpoints keep the identities they always had */
    assert_int_equal(lt_run_device_method_dir(&d, "crt", buf, sizeof buf), LT_OK);
    assert_string_equal(buf, "crt");
    assert_int_equal(lt_run_device_parse("cuda:3", "tf32", NULL, 1, NULL, &d), LT_OK);
    lt_run_device_identity(&d, buf, sizeof buf);
    assert_string_equal(buf, ";backend=cuda;math=tf32;deterministic=1");
    /* tf32 is another experiment: its own directory; the device index and
     * the deterministic flag are not part of it */
    assert_int_equal(lt_run_device_method_dir(&d, "crt", buf, sizeof buf), LT_OK);
    assert_string_equal(buf, "crt@cuda-tf32");
    assert_int_equal(lt_run_device_parse("cuda", NULL, NULL, 0, NULL, &d), LT_OK);
    lt_run_device_identity(&d, buf, sizeof buf);
    assert_string_equal(buf, ";backend=cuda;math=fp32;deterministic=0");
    assert_int_equal(lt_run_device_method_dir(&d, "crt", buf, sizeof buf), LT_OK);
    assert_string_equal(buf, "crt@cuda");   /* the device index is not part of it */
    assert_int_equal(lt_run_device_parse("cuda:2", "fp32", NULL, 1, NULL, &d), LT_OK);
    assert_int_equal(lt_run_device_method_dir(&d, "crt", buf, sizeof buf), LT_OK);
    assert_string_equal(buf, "crt@cuda");   /* explicit fp32, deterministic: the same directory */
    char small[8];
    assert_int_equal(lt_run_device_method_dir(&d, "crt_long", small, sizeof small), LT_EINVAL);
    assert_int_equal(lt_run_device_method_dir(&d, "crt", small, sizeof small), LT_EINVAL);   /* "crt@cuda" + NUL */
    char nine[9];
    assert_int_equal(lt_run_device_method_dir(&d, "crt", nine, sizeof nine), LT_OK);
    assert_string_equal(nine, "crt@cuda");
    /* the rest of the runs' paths: lt_run_dir_on puts the method component
     * between the scale and the seed */
    char path[256];
    assert_int_equal(lt_run_device_parse("cuda:1", "tf32", NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(lt_run_dir_on("res", "p", "ci", "ce", &d, 4, path, sizeof path), LT_OK);
    assert_string_equal(path, "res/runs/p/ci/ce@cuda-tf32/seed4");
    assert_int_equal(lt_run_device_parse(NULL, NULL, NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(lt_run_dir_on(NULL, "p", "ci", "ce", &d, 4, path, sizeof path), LT_OK);
    assert_string_equal(path, "results/runs/p/ci/ce/seed4");
    /* NHWC: its own directory, and its checkpoints never resume NCHW ones
     * (the identity says it; NCHW identities stay as they were above) */
    assert_int_equal(lt_run_device_parse("cuda", NULL, "nhwc", 1, NULL, &d), LT_OK);
    lt_run_device_identity(&d, buf, sizeof buf);
    assert_string_equal(buf, ";backend=cuda;math=fp32;deterministic=1;layout=nhwc");
    assert_int_equal(lt_run_dir_on("res", "p", "ci", "ce", &d, 0, path, sizeof path), LT_OK);
    assert_string_equal(path, "res/runs/p/ci/ce@cuda-nhwc/seed0");
    assert_int_equal(lt_run_device_parse("cuda:1", "tf32", "nhwc", 0, NULL, &d), LT_OK);
    lt_run_device_identity(&d, buf, sizeof buf);
    assert_string_equal(buf, ";backend=cuda;math=tf32;deterministic=0;layout=nhwc");
    assert_int_equal(lt_run_dir_on("res", "p", "ci", "ce", &d, 0, path, sizeof path), LT_OK);
    assert_string_equal(path, "res/runs/p/ci/ce@cuda-tf32-nhwc/seed0");
}

/* The device part of a run's identity, each (backend, math, layout), and
 * its inverse for the directory suffixes. */
static void test_tag(void **state)
{
    (void)state;
    assert_string_equal(lt_run_device_tag(LT_BACKEND_CPU, LT_CUDA_FP32, LT_LAYOUT_NCHW), "cpu");
    /* cpu has no math mode or layout */
    assert_string_equal(lt_run_device_tag(LT_BACKEND_CPU, LT_CUDA_TF32, LT_LAYOUT_NHWC), "cpu");
    static const struct { lt_cuda_math m; lt_layout l; const char *tag; } cuda[] = {
        {LT_CUDA_FP32, LT_LAYOUT_NCHW, "cuda"},
        {LT_CUDA_TF32, LT_LAYOUT_NCHW, "cuda-tf32"},
        {LT_CUDA_FP32, LT_LAYOUT_NHWC, "cuda-nhwc"},
        {LT_CUDA_TF32, LT_LAYOUT_NHWC, "cuda-tf32-nhwc"},
    };
    for (size_t i = 0; i < sizeof cuda / sizeof cuda[0]; i++) {
        assert_string_equal(lt_run_device_tag(LT_BACKEND_CUDA, cuda[i].m, cuda[i].l), cuda[i].tag);
        lt_backend_kind k = LT_BACKEND_CPU;
        lt_cuda_math m = (lt_cuda_math)5;
        lt_layout l = (lt_layout)5;
        assert_int_equal(lt_run_device_tag_parse(cuda[i].tag, &k, &m, &l), LT_OK);
        assert_int_equal(k, LT_BACKEND_CUDA);
        assert_int_equal(m, cuda[i].m);
        assert_int_equal(l, cuda[i].l);
    }
    assert_string_equal(lt_run_device_tag((lt_backend_kind)7, LT_CUDA_FP32, LT_LAYOUT_NCHW), "?");
    assert_string_equal(lt_run_device_tag(LT_BACKEND_CUDA, (lt_cuda_math)7, LT_LAYOUT_NCHW), "?");
    assert_string_equal(lt_run_device_tag(LT_BACKEND_CUDA, LT_CUDA_FP32, (lt_layout)2), "?");
    assert_string_equal(lt_run_device_tag(LT_BACKEND_CUDA, LT_CUDA_FP32, (lt_layout)-1), "?");
    /* "cpu" is never a directory suffix; nor the --device, --math or
     * --layout words, nor the parts in another order */
    const char *bad[] = {"cpu", "tf32", "cuda-fp32", "cuda:0", "cuda-tf32x", "CUDA", "", "nhwc",
                         "cuda-nchw", "cuda-nhwc-tf32", "cuda-tf32-nchw", "cuda-nhwcx", NULL};
    lt_backend_kind k;
    lt_cuda_math m;
    lt_layout l;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(lt_run_device_tag_parse(bad[i], &k, &m, &l), LT_EINVAL);
        if (!strstr(lt_errmsg(), "not cuda, cuda-tf32, cuda-nhwc or cuda-tf32-nhwc"))
            fail_msg("case %zu: %s", i, lt_errmsg());
    }
}

static void test_probe(void **state)
{
    (void)state;
    lt_run_device d;
    lt_backend_info in;
    assert_int_equal(lt_run_device_parse("cpu", NULL, NULL, 0, NULL, &d), LT_OK);
    memset(&in, 0x5a, sizeof in);
    assert_int_equal(lt_run_device_probe(&d, &in), LT_OK);
    assert_int_equal(in.kind, LT_BACKEND_CPU);
    assert_string_equal(in.device_name, "");
    /* cuda with no module: the answer of the child, as the loader gave it */
    setenv("LTBENCH_CUDA_LIB", "/nonexistent/probe/libltcuda.so", 1);
    assert_int_equal(lt_run_device_parse("cuda:1", "tf32", NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(lt_run_device_probe(&d, &in), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "no CUDA module at /nonexistent/probe/libltcuda.so (cuda:1 requested)"));
    /* kept for the process: the same device is not probed again */
    setenv("LTBENCH_CUDA_LIB", "/nonexistent/other.so", 1);
    assert_int_equal(lt_run_device_probe(&d, &in), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "/nonexistent/probe/libltcuda.so"));
    /* another device is */
    assert_int_equal(lt_run_device_parse("cuda:2", NULL, NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(lt_run_device_probe(&d, &in), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "/nonexistent/other.so (cuda:2 requested)"));
    /* the layout is not the device's: the same device in another layout is
     * the same question (cuda:2's answer, kept) */
    setenv("LTBENCH_CUDA_LIB", "/nonexistent/third.so", 1);
    assert_int_equal(lt_run_device_parse("cuda:2", NULL, "nhwc", 0, NULL, &d), LT_OK);
    assert_int_equal(lt_run_device_probe(&d, &in), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "/nonexistent/other.so (cuda:2 requested)"));
    unsetenv("LTBENCH_CUDA_LIB");
    /* open is for cuda only */
    lt_backend *b = (lt_backend *)&b;
    assert_int_equal(lt_run_device_parse("cpu", NULL, NULL, 0, NULL, &d), LT_OK);
    assert_int_equal(lt_run_device_open(&d, &b), LT_EINVAL);
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_identity_and_dir),
        cmocka_unit_test(test_tag),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
