/* test_backend.c — backend objects (engine/lt_backend.h): cpu backends and
 * their descriptions, options from the environment's strings, the cuda
 * stub's message, and models on two backends in one process computing each
 * on its own path, bit for bit what a process switched by the environment
 * (the old process-wide LT_CONV_REF / LT_CONV_WINO switches) computes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradcheck.h"
#include "lt.h"

static void test_cpu_create_describe_free(void **st) {
    (void)st;
    /* what each path is, by the kernels the CPU has (lt_conv_isa) */
    static const struct { lt_conv_path p; const char *by_isa[3]; } want[] = {
        {LT_CONV_PATH_AUTO, {"im2col-sgemm", "avx2-direct", "avx512-direct+winograd"}},
        {LT_CONV_PATH_REF, {"im2col-sgemm", "im2col-sgemm", "im2col-sgemm"}},
        {LT_CONV_PATH_DIRECT, {"im2col-sgemm", "avx2-direct", "avx512-direct"}},
        {LT_CONV_PATH_WINO, {"im2col-sgemm", "avx2-direct", "avx512-direct+winograd"}},
    };
    /* this CPU's kernels, then capped at AVX2 and at none (never above what
     * the CPU has) */
    const lt_conv_isa_kind cpu = lt_conv_isa();
    assert_int_equal(cpu == LT_CONV_ISA_AVX512, lt_cpu_has_avx512f());
    printf("note: this CPU's convolution kernels: %s\n",
           cpu == LT_CONV_ISA_AVX512 ? "AVX-512" : cpu == LT_CONV_ISA_AVX2 ? "AVX2 + FMA" : "none (im2col + sgemm)");
    for (int cap = LT_CONV_ISA_AVX512; cap >= LT_CONV_ISA_NONE; cap--) {
        lt_conv_isa_cap(cap);
        assert_int_equal(lt_conv_isa(), cap < (int)cpu ? cap : (int)cpu);
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            lt_cpu_opts o;
            lt_cpu_opts_default(&o);
            o.conv = want[i].p;
            lt_backend *b = NULL;
            assert_int_equal(lt_backend_cpu_create(&o, &b), LT_OK);
            assert_string_equal(lt_backend_describe(b), want[i].by_isa[lt_conv_isa()]);
            lt_backend_free(b);
        }
    }
    lt_conv_isa_cap(-1);
    assert_int_equal(lt_conv_isa(), cpu);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        lt_cpu_opts o;
        lt_cpu_opts_default(&o);
        o.conv = want[i].p;
        o.wino_tile = i == 3 ? 4 : 0;
        lt_backend *b = NULL;
        assert_int_equal(lt_backend_cpu_create(&o, &b), LT_OK);
        assert_non_null(b);
        assert_int_equal(lt_backend_get_kind(b), LT_BACKEND_CPU);
        assert_string_equal(lt_backend_describe(b), want[i].by_isa[cpu]);
        lt_cpu_opts got;
        assert_int_equal(lt_backend_cpu_opts(b, &got), LT_OK);
        assert_int_equal(got.conv, o.conv);
        assert_int_equal(got.wino_tile, o.wino_tile);
        /* the model records its backend; the layers take the path from it */
        lt_model *m;
        assert_int_equal(lt_model_create_on(&m, (lt_shape){1, 1, 8, 8}, b), LT_OK);
        assert_ptr_equal(lt_model_backend(m), b);
        const int c = lt_add_conv(m, "conv", "backbone", 0, 16, 3, 1, 1, 1, 0);
        assert_true(c > 0);
        lt_model_free(m);
        lt_backend_free(b);
    }
    /* options out of range are refused with a message */
    lt_cpu_opts o;
    lt_cpu_opts_default(&o);
    lt_backend *b = (lt_backend *)&o;
    o.conv = LT_CONV_PATH_DEFAULT;
    assert_int_equal(lt_backend_cpu_create(&o, &b), LT_EINVAL);
    assert_null(b);
    assert_non_null(strstr(lt_errmsg(), "conv path"));
    o.conv = LT_CONV_PATH_AUTO;
    o.wino_tile = 3;
    assert_int_equal(lt_backend_cpu_create(&o, &b), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "Winograd tile 3"));
    /* the default: one object, cpu, never freed; lt_model_create uses it */
    lt_backend *d = lt_backend_default();
    assert_ptr_equal(d, lt_backend_default());
    assert_int_equal(lt_backend_get_kind(d), LT_BACKEND_CPU);
    lt_backend_free(d);
    lt_backend_free(NULL);
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 1, 8, 8}), LT_OK);
    assert_ptr_equal(lt_model_backend(m), d);
    lt_model_free(m);
    lt_cpu_opts env;
    lt_cpu_opts_from_env(&env);
    lt_backend *e;
    assert_int_equal(lt_backend_cpu_create(&env, &e), LT_OK);
    assert_string_equal(lt_backend_describe(d), lt_backend_describe(e));
    lt_backend_free(e);
}

/* The environment's strings keep the meanings the lazy readers gave them. */
static void test_opts_from_env_strings(void **st) {
    (void)st;
    static const struct { const char *ref, *wino; lt_conv_path p; } cases[] = {
        {NULL, NULL, LT_CONV_PATH_AUTO},  {"1", NULL, LT_CONV_PATH_REF},   {"0", NULL, LT_CONV_PATH_AUTO},
        {"", NULL, LT_CONV_PATH_AUTO},    {"yes", NULL, LT_CONV_PATH_REF}, {"1", "2", LT_CONV_PATH_REF},
        {"1", "0", LT_CONV_PATH_REF},     {NULL, "0", LT_CONV_PATH_DIRECT}, {NULL, "2", LT_CONV_PATH_WINO},
        {NULL, "1", LT_CONV_PATH_AUTO},   {NULL, "", LT_CONV_PATH_AUTO},   {NULL, "x", LT_CONV_PATH_AUTO},
        {"0", "2", LT_CONV_PATH_WINO},    {"", "0", LT_CONV_PATH_DIRECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_cpu_opts o;
        lt_cpu_opts_from_strings(&o, cases[i].ref, cases[i].wino);
        if (o.conv != cases[i].p)
            fail_msg("LT_CONV_REF=%s LT_CONV_WINO=%s: path %s, expected %s", cases[i].ref ? cases[i].ref : "(unset)",
                     cases[i].wino ? cases[i].wino : "(unset)", lt_conv_path_name(o.conv),
                     lt_conv_path_name(cases[i].p));
        assert_int_equal(o.wino_tile, 0);
    }
    /* lt_cpu_opts_from_env reads the two variables (restored after) */
    char *ref0 = getenv("LT_CONV_REF") ? strdup(getenv("LT_CONV_REF")) : NULL;
    char *wino0 = getenv("LT_CONV_WINO") ? strdup(getenv("LT_CONV_WINO")) : NULL;
    lt_cpu_opts o;
    setenv("LT_CONV_REF", "1", 1);
    unsetenv("LT_CONV_WINO");
    lt_cpu_opts_from_env(&o);
    assert_int_equal(o.conv, LT_CONV_PATH_REF);
    setenv("LT_CONV_REF", "0", 1);
    setenv("LT_CONV_WINO", "0", 1);
    lt_cpu_opts_from_env(&o);
    assert_int_equal(o.conv, LT_CONV_PATH_DIRECT);
    if (ref0) setenv("LT_CONV_REF", ref0, 1); else unsetenv("LT_CONV_REF");
    if (wino0) setenv("LT_CONV_WINO", wino0, 1); else unsetenv("LT_CONV_WINO");
    free(ref0);
    free(wino0);
    /* the names of `ltbench run --conv` */
    static const char *names[] = {"auto", "ref", "direct", "winograd"};
    for (int i = 0; i < 4; i++) {
        lt_conv_path p;
        assert_int_equal(lt_conv_path_parse(names[i], &p), LT_OK);
        assert_int_equal(p, LT_CONV_PATH_AUTO + i);
        assert_string_equal(lt_conv_path_name(p), names[i]);
    }
    lt_conv_path p = LT_CONV_PATH_AUTO;
    assert_int_equal(lt_conv_path_parse("wino", &p), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "expected auto, ref, direct or winograd"));
    assert_int_equal(lt_conv_path_parse(NULL, &p), LT_EINVAL);
    assert_int_equal(p, LT_CONV_PATH_AUTO);
}

/* No CUDA module where the loader looks ($LTBENCH_CUDA_LIB naming nothing:
 * this binary is not linked with libltcuda.a, so the engine's weak creator
 * answers; tests/test_backend_load.c covers the module itself). */
static void test_cuda_not_built(void **st) {
    (void)st;
    setenv("LTBENCH_CUDA_LIB", "/nonexistent/libltcuda.so", 1);
    lt_backend *b = (lt_backend *)&b;
    lt_err_clear();
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 0, &b), LT_ENOTBUILT);
    assert_null(b);
    assert_non_null(strstr(lt_errmsg(), "CUDA backend not built"));
    assert_non_null(strstr(lt_errmsg(), "cuda:0"));
    assert_string_equal(lt_strstatus(LT_ENOTBUILT), "not built into this binary");
    assert_int_equal(lt_backend_cuda_create(3, LT_CUDA_TF32, 1, &b), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "cuda:3"));
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 0, NULL), LT_EINVAL);
    unsetenv("LTBENCH_CUDA_LIB");
}

/* --device and --math words: each accepted spelling against the value it
 * must give, and the refusals naming the choices. */
static void test_device_and_math_parse(void **st) {
    (void)st;
    static const struct { const char *s; lt_backend_kind k; int dev; } ok[] = {
        {"cpu", LT_BACKEND_CPU, 0}, {"cuda", LT_BACKEND_CUDA, 0}, {"cuda:0", LT_BACKEND_CUDA, 0},
        {"cuda:1", LT_BACKEND_CUDA, 1}, {"cuda:17", LT_BACKEND_CUDA, 17}, {"cuda:255", LT_BACKEND_CUDA, 255},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        lt_backend_kind k = (lt_backend_kind)-1;
        int d = -1;
        assert_int_equal(lt_backend_parse_device(ok[i].s, &k, &d), LT_OK);
        assert_int_equal(k, ok[i].k);
        assert_int_equal(d, ok[i].dev);
    }
    static const char *const bad[] = {"", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:256", "cuda:01", "cuda:1x",
                                      "cuda0", "cuda:1000", "cpu:0", " cuda"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lt_backend_kind k = LT_BACKEND_CPU;
        int d = 5;
        assert_int_equal(lt_backend_parse_device(bad[i], &k, &d), LT_EINVAL);
        assert_non_null(strstr(lt_errmsg(), "expected cpu, cuda or cuda:N"));
        assert_int_equal(d, 5);   /* untouched on failure */
    }
    lt_backend_kind k;
    int d;
    assert_int_equal(lt_backend_parse_device(NULL, &k, &d), LT_EINVAL);
    assert_string_equal(lt_backend_kind_name(LT_BACKEND_CPU), "cpu");
    assert_string_equal(lt_backend_kind_name(LT_BACKEND_CUDA), "cuda");
    assert_string_equal(lt_backend_kind_name((lt_backend_kind)7), "?");

    lt_cuda_math m = (lt_cuda_math)-1;
    assert_int_equal(lt_cuda_math_parse("fp32", &m), LT_OK);
    assert_int_equal(m, LT_CUDA_FP32);
    assert_int_equal(lt_cuda_math_parse("tf32", &m), LT_OK);
    assert_int_equal(m, LT_CUDA_TF32);
    assert_int_equal(lt_cuda_math_parse("fp16", &m), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "expected fp32 or tf32"));
    assert_int_equal(m, LT_CUDA_TF32);
    assert_int_equal(lt_cuda_math_parse(NULL, &m), LT_EINVAL);
    assert_string_equal(lt_cuda_math_name(LT_CUDA_FP32), "fp32");
    assert_string_equal(lt_cuda_math_name(LT_CUDA_TF32), "tf32");
    assert_string_equal(lt_cuda_math_name((lt_cuda_math)5), "?");

    lt_layout l = (lt_layout)-1;
    assert_int_equal(lt_layout_parse("nchw", &l), LT_OK);
    assert_int_equal(l, LT_LAYOUT_NCHW);
    assert_int_equal(lt_layout_parse("nhwc", &l), LT_OK);
    assert_int_equal(l, LT_LAYOUT_NHWC);
    assert_int_equal(lt_layout_parse("NHWC", &l), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "layout 'NHWC': expected nchw or nhwc"));
    assert_int_equal(l, LT_LAYOUT_NHWC);   /* untouched on a refusal */
    assert_int_equal(lt_layout_parse("", &l), LT_EINVAL);
    assert_int_equal(lt_layout_parse(NULL, &l), LT_EINVAL);
    assert_string_equal(lt_layout_name(LT_LAYOUT_NCHW), "nchw");
    assert_string_equal(lt_layout_name(LT_LAYOUT_NHWC), "nhwc");
    assert_string_equal(lt_layout_name((lt_layout)2), "?");
}

/* A cpu backend's info: the kind and nothing else (no device, fp32). */
static void test_cpu_info(void **st) {
    (void)st;
    lt_cpu_opts o;
    lt_cpu_opts_default(&o);
    lt_backend *b = NULL;
    assert_int_equal(lt_backend_cpu_create(&o, &b), LT_OK);
    lt_backend_info in;
    memset(&in, 0x5a, sizeof in);
    assert_int_equal(lt_backend_get_info(b, &in), LT_OK);
    assert_int_equal(in.kind, LT_BACKEND_CPU);
    assert_int_equal(in.device, 0);
    assert_string_equal(in.device_name, "");
    assert_int_equal(in.cc_major, 0);
    assert_int_equal(in.cudnn_version, 0);
    assert_int_equal(in.math, LT_CUDA_FP32);
    assert_int_equal(in.deterministic, 0);
    assert_int_equal(lt_backend_get_info(lt_backend_default(), &in), LT_OK);
    assert_int_equal(in.kind, LT_BACKEND_CPU);
    assert_int_equal(lt_backend_get_info(NULL, &in), LT_EINVAL);
    assert_int_equal(lt_backend_get_info(b, NULL), LT_EINVAL);
    lt_backend_free(b);
}

/* ---- two backends in one process ---------------------------------------------------
 * One training step's numbers of a ResNet-8 on four 28x28 images (the
 * Fashion-MNIST shape: its 3x3 layers take Winograd F(4x4) at 28, 14 and 7
 * by the rule): logits, every parameter gradient, the BN running
 * statistics after the forward, and an eval forward's logits (the fused
 * inference path). */
#define FB_N 4
#define FB_C 10
#define FB_THREADS 2

typedef struct {
    lt_model *m;
    float *x;
    int logits;
} fb_ctx;

static void fb_setup(fb_ctx *f, lt_backend *b) {
    const lt_shape in = {1, 1, 28, 28};
    assert_int_equal(b ? lt_model_create_on(&f->m, in, b) : lt_model_create(&f->m, in), LT_OK);
    const int feat = lt_resnet_backbone(f->m, "resnet8_cifar");
    assert_true(feat > 0);
    assert_true(lt_add_linear(f->m, "logits", "head", feat, FB_C, 1) > 0);
    assert_int_equal(lt_model_finalize(f->m, 7), LT_OK);
    assert_int_equal(lt_model_set_batch(f->m, FB_N), LT_OK);
    f->logits = lt_model_find(f->m, "logits");
    const size_t nx = (size_t)FB_N * lt_shape_count(in);
    f->x = malloc(sizeof(float) * nx);
    gc_fill(f->x, nx, 5, -1, 1);
}

static void fb_forward(fb_ctx *f) { assert_int_equal(lt_model_forward(f->m, f->x, FB_N, 1), LT_OK); }

/* The floats fb_backward_collect writes. */
static size_t fb_count(const fb_ctx *f) {
    size_t k = 2 * (size_t)FB_N * FB_C;
    lt_param_info p;
    lt_buffer_info bi;
    for (int i = 0; i < lt_model_n_params(f->m); i++)
        if (lt_model_param_at(f->m, i, &p) == LT_OK) k += p.count;
    for (int i = 0; i < lt_model_n_buffers(f->m); i++)
        if (lt_model_buffer_at(f->m, i, &bi) == LT_OK) k += bi.count;
    return k;
}

/* After one training forward: backward from a fixed logits gradient;
 * writes the logits, the gradients and the buffers (running statistics
 * updated by that forward), then an eval forward's logits. Returns the
 * floats written. */
static size_t fb_backward_collect(fb_ctx *f, float *out) {
    size_t k = 0;
    const size_t nl = (size_t)FB_N * FB_C;
    memcpy(out + k, lt_model_out(f->m, f->logits), sizeof(float) * nl);
    k += nl;
    float *dl = lt_model_dout(f->m, f->logits);
    for (size_t i = 0; i < nl; i++) dl[i] = (float)((int)(i % 7) - 3) / 16.0f;
    lt_model_zero_grad(f->m);
    assert_int_equal(lt_model_backward(f->m, FB_N, &f->logits, 1), LT_OK);
    for (int i = 0; i < lt_model_n_params(f->m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(f->m, i, &p), LT_OK);
        memcpy(out + k, p.g, sizeof(float) * p.count);
        k += p.count;
    }
    for (int i = 0; i < lt_model_n_buffers(f->m); i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(f->m, i, &bi), LT_OK);
        memcpy(out + k, bi.data, sizeof(float) * bi.count);
        k += bi.count;
    }
    assert_int_equal(lt_model_forward(f->m, f->x, FB_N, 0), LT_OK);
    memcpy(out + k, lt_model_out(f->m, f->logits), sizeof(float) * nl);
    k += nl;
    return k;
}

static void fb_free(fb_ctx *f) {
    lt_model_free(f->m);
    free(f->x);
}

/* The subprocess: the step on the process default backend, whose options
 * the environment set (as LT_CONV_REF / LT_CONV_WINO switched the whole
 * process before backends), written to path. */
static int fb_child_main(const char *path) {
    lt_set_num_threads(FB_THREADS);
    fb_ctx f;
    fb_setup(&f, NULL);
    fb_forward(&f);
    const size_t n = fb_count(&f);
    float *v = malloc(sizeof(float) * n);
    fb_backward_collect(&f, v);
    FILE *o = fopen(path, "wb");
    int ok = o && fwrite(v, sizeof(float), n, o) == n;
    if (o && fclose(o)) ok = 0;
    free(v);
    fb_free(&f);
    printf("note: environment-switched subprocess on %s\n", lt_backend_describe(lt_backend_default()));
    return ok ? 0 : 1;
}

/* Runs this binary as fb_child_main with LT_CONV_REF / LT_CONV_WINO set
 * (NULL: unset) and reads its n floats. */
static float *fb_env_run(const char *ref, const char *wino, size_t n) {
    char path[] = "/tmp/lt_test_backend_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (ref) setenv("LT_CONV_REF", ref, 1); else unsetenv("LT_CONV_REF");
        if (wino) setenv("LT_CONV_WINO", wino, 1); else unsetenv("LT_CONV_WINO");
        execl("/proc/self/exe", "test_backend", "--fwd-bwd", path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    float *v = malloc(sizeof(float) * n);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    assert_int_equal(fread(v, sizeof(float), n, in), n);
    fclose(in);
    unlink(path);
    return v;
}

static void test_two_backends_one_process(void **st) {
    (void)st;
    const int saved = lt_num_threads();
    lt_set_num_threads(FB_THREADS);
    /* a reference-path model and a Winograd-path model (every 3x3 stride-1
     * layer), then the default rule and direct-only, in pairs, interleaved
     * step by step: neither may see the other's path */
    static const struct { lt_conv_path a, b; const char *ref_a, *wino_a, *ref_b, *wino_b; } pairs[] = {
        {LT_CONV_PATH_REF, LT_CONV_PATH_WINO, "1", NULL, NULL, "2"},
        {LT_CONV_PATH_AUTO, LT_CONV_PATH_DIRECT, NULL, NULL, NULL, "0"},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        lt_cpu_opts oa, ob;
        lt_cpu_opts_default(&oa);
        lt_cpu_opts_default(&ob);
        oa.conv = pairs[k].a;
        ob.conv = pairs[k].b;
        lt_backend *ba, *bb;
        assert_int_equal(lt_backend_cpu_create(&oa, &ba), LT_OK);
        assert_int_equal(lt_backend_cpu_create(&ob, &bb), LT_OK);
        fb_ctx fa, fbb;
        fb_setup(&fa, ba);
        fb_setup(&fbb, bb);
        fb_forward(&fa);
        fb_forward(&fbb);
        const size_t n = fb_count(&fa);
        assert_int_equal(fb_count(&fbb), n);
        float *va = malloc(sizeof(float) * n), *vb = malloc(sizeof(float) * n);
        assert_int_equal(fb_backward_collect(&fbb, vb), n);
        assert_int_equal(fb_backward_collect(&fa, va), n);
        float *ea = fb_env_run(pairs[k].ref_a, pairs[k].wino_a, n);
        float *eb = fb_env_run(pairs[k].ref_b, pairs[k].wino_b, n);
        /* the model sets were built from seed 7 twice: the same starting
         * point, so the floats must be equal, not close */
        for (size_t i = 0; i < n; i++) {
            if (memcmp(&va[i], &ea[i], sizeof(float)))
                fail_msg("%s model: float %zu is %.9g, the environment-switched process %.9g",
                         lt_conv_path_name(pairs[k].a), i, va[i], ea[i]);
            if (memcmp(&vb[i], &eb[i], sizeof(float)))
                fail_msg("%s model: float %zu is %.9g, the environment-switched process %.9g",
                         lt_conv_path_name(pairs[k].b), i, vb[i], eb[i]);
        }
        /* two kernel paths sum in different orders, so they really ran
         * different kernels; options that name one path on this CPU (auto
         * and direct without AVX-512) give the same bits */
        if (strcmp(lt_backend_describe(ba), lt_backend_describe(bb))) {
            /* a NaN differs bytewise too (and equals the other process's) */
            for (size_t i = 0; i < n; i++)
                if (!isfinite(va[i]) || !isfinite(vb[i]))
                    fail_msg("float %zu: %s %.9g, %s %.9g", i, lt_conv_path_name(pairs[k].a), va[i],
                             lt_conv_path_name(pairs[k].b), vb[i]);
            assert_true(memcmp(va, vb, sizeof(float) * n) != 0);
        }
        else
            assert_memory_equal(va, vb, sizeof(float) * n);
        printf("note: %s and %s models in one process equal their environment-switched runs (%zu floats each)\n",
               lt_backend_describe(ba), lt_backend_describe(bb), n);
        free(va); free(vb); free(ea); free(eb);
        fb_free(&fa);
        fb_free(&fbb);
        lt_backend_free(ba);
        lt_backend_free(bb);
    }
    lt_set_num_threads(saved);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--fwd-bwd")) return fb_child_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_create_describe_free),
        cmocka_unit_test(test_opts_from_env_strings),
        cmocka_unit_test(test_cuda_not_built),
        cmocka_unit_test(test_device_and_math_parse),
        cmocka_unit_test(test_cpu_info),
        cmocka_unit_test(test_two_backends_one_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
