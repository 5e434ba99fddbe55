/* test_fingerprint.c — lt_fingerprint: when a finished run may stand for
 * one this build would make (reproduce's strict re-use), and the reason
 * printed when it may not; engine version ordering; the env keys a result
 * records (cpu_model) and reads back; the git state of a tree (commit,
 * dirty, the diff's hash) and the numerics record a checkpoint keeps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_report.h"
#include "lt.h"
#include "lt_fingerprint.h"
#include "lt_leaderboard.h"
#include "lt_run_internal.h"

static lt_fingerprint clean_now(void)
{
    lt_fingerprint f;
    lt_fingerprint_current(&f, 2);
    snprintf(f.commit, sizeof f.commit, "0123456789abcdef0123456789abcdef01234567");
    f.dirty = 0;
    return f;
}

static void test_current_is_this_build(void **state)
{
    (void)state;
    lt_fingerprint f;
    lt_fingerprint_current(&f, 16);
    assert_string_equal(f.engine_version, LT_ENGINE_VERSION);
    assert_string_equal(f.conv_backend, lt_backend_describe(lt_backend_default()));
    assert_true(f.blas_core[0] != '\0');
    assert_int_equal(f.threads, 16);
}

static void test_reasons(void **state)
{
    (void)state;
    lt_fingerprint now, run;
    lt_fingerprint_current(&now, 16);
    char why[256];
    run = clean_now();
    run.threads = 16;
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 0);
    assert_string_equal(why, "");

    run = clean_now();
    run.threads = 16;
    snprintf(run.engine_version, sizeof run.engine_version, "0.1.0");
    snprintf(now.engine_version, sizeof now.engine_version, "0.7.0");
    run.dirty = 1;   /* the engine is named first */
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_string_equal(why, "made by engine 0.1.0, now 0.7.0");
    lt_fingerprint_current(&now, 16);

    run = clean_now();
    run.threads = 16;
    run.dirty = 1;
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_string_equal(why, "made from an uncommitted tree (+dirty)");

    run = clean_now();
    run.threads = 16;
    snprintf(run.commit, sizeof run.commit, "unknown");
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_non_null(strstr(why, "no known commit"));
    run = clean_now();
    run.threads = 16;
    run.dirty = -1;   /* null: not a git tree */
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);

    run = clean_now();   /* threads 2 */
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_string_equal(why, "threads 2, now 16");

    run = clean_now();
    run.threads = 16;
    snprintf(run.conv_backend, sizeof run.conv_backend, "other-kernel");
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    char want[200];
    snprintf(want, sizeof want, "conv backend other-kernel, now %s", now.conv_backend);
    assert_string_equal(why, want);

    run = clean_now();
    run.threads = 16;
    snprintf(run.blas_core, sizeof run.blas_core, "Prescott");
    if (strcmp(now.blas_core, "Prescott")) {
        assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
        snprintf(want, sizeof want, "BLAS core Prescott, now %s", now.blas_core);
        assert_string_equal(why, want);
    }
}

static void test_version_order(void **state)
{
    (void)state;
    assert_int_equal(lt_engine_version_cmp("0.1.0", "0.6.0"), -1);
    assert_int_equal(lt_engine_version_cmp("0.10.0", "0.9.1"), 1);
    assert_int_equal(lt_engine_version_cmp("0.6.0", "0.6.0"), 0);
    assert_int_equal(lt_engine_version_cmp("", "0.1.0"), -1);
    assert_int_equal(lt_engine_version_cmp("garbage", "0.1.0"), -1);
    assert_int_equal(lt_engine_version_cmp("1.0.0", "garbage"), 1);
}

/* A result file's env is read back into the record and its fingerprint. */
static void test_record_fingerprint(void **state)
{
    (void)state;
    char dir[] = "/tmp/lt_fp_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"format\":1,\"status\":\"ok\",\"protocol\":{\"name\":\"p\"},\"scale\":\"short\",\"method\":{\"name\":\"ce\"},"
          "\"seed\":0,\"metrics\":{\"top1\":0.5},\"env\":{\"commit\":\"abc\",\"dirty\":null,\"blas_core\":\"Haswell\","
          "\"conv_backend\":\"im2col-sgemm\",\"threads\":4,\"engine_version\":\"0.3.0\",\"cpu_model\":\"X\"}}\n", f);
    fclose(f);
    lt_run_record r;
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    lt_fingerprint fp;
    lt_fingerprint_of_record(&r, &fp);
    assert_string_equal(fp.engine_version, "0.3.0");
    assert_string_equal(fp.conv_backend, "im2col-sgemm");
    assert_string_equal(fp.blas_core, "Haswell");
    assert_int_equal(fp.threads, 4);
    assert_string_equal(fp.commit, "abc");
    assert_int_equal(fp.dirty, -1);
    /* no "backend" key: a cpu run (results before issue 20) */
    assert_string_equal(r.backend, "cpu");
    assert_string_equal(fp.backend, "cpu");
    unlink(path);
    rmdir(dir);
}

/* A cuda device's info as the probe returns it. */
static lt_backend_info h100(int device)
{
    lt_backend_info in;
    memset(&in, 0, sizeof in);
    in.kind = LT_BACKEND_CUDA;
    in.device = device;
    snprintf(in.device_name, sizeof in.device_name, "NVIDIA H100 80GB HBM3");
    in.cc_major = 9;
    in.driver_version = 13000;
    in.runtime_version = 13000;
    in.cudnn_version = 91900;
    in.cublas_version = 130100;
    in.math = LT_CUDA_FP32;
    return in;
}

/* The cuda fingerprint from the device's info; cpu (or NULL) gives the cpu one. */
static void test_current_on_device(void **state)
{
    (void)state;
    lt_fingerprint f, c;
    lt_fingerprint_current(&c, 4);
    assert_string_equal(c.backend, "cpu");
    lt_fingerprint_current_on(&f, 4, NULL, LT_LAYOUT_NHWC);   /* cpu: no layout */
    assert_memory_equal(&f, &c, sizeof f);
    lt_backend_info cpu;
    memset(&cpu, 0, sizeof cpu);
    cpu.kind = LT_BACKEND_CPU;
    lt_fingerprint_current_on(&f, 4, &cpu, LT_LAYOUT_NCHW);
    assert_memory_equal(&f, &c, sizeof f);

    lt_backend_info in = h100(1);
    in.math = LT_CUDA_TF32;
    in.deterministic = 1;
    lt_fingerprint_current_on(&f, 4, &in, LT_LAYOUT_NCHW);
    assert_string_equal(f.layout, "nchw");
    lt_fingerprint_current_on(&f, 4, &in, LT_LAYOUT_NHWC);
    assert_string_equal(f.layout, "nhwc");
    assert_string_equal(f.backend, "cuda");
    assert_string_equal(f.conv_backend, "cuda:1");
    assert_string_equal(f.gpu_name, "NVIDIA H100 80GB HBM3");
    assert_string_equal(f.gpu_cc, "9.0");
    assert_int_equal(f.cuda_runtime, 13000);
    assert_int_equal(f.cudnn, 91900);
    assert_int_equal(f.cublas, 130100);
    assert_string_equal(f.math, "tf32");
    assert_int_equal(f.deterministic, 1);
    assert_int_equal(f.threads, 4);
    assert_string_equal(f.engine_version, LT_ENGINE_VERSION);
    assert_string_equal(f.blas_core, c.blas_core);
}

/* The backend and the cuda fingerprint in the stale check: each difference
 * named; the device index and the driver are not differences. */
static void test_backend_reasons(void **state)
{
    (void)state;
    char why[256];
    lt_fingerprint now_cpu = clean_now(), run;
    const lt_backend_info dev = h100(0);
    lt_fingerprint now_cuda;
    lt_fingerprint_current_on(&now_cuda, 2, &dev, LT_LAYOUT_NCHW);

    /* a result without "backend" (every one before issue 20) is a cpu run */
    run = clean_now();
    run.backend[0] = '\0';
    assert_int_equal(lt_fingerprint_stale(&run, &now_cpu, why, sizeof why), 0);
    assert_int_equal(lt_fingerprint_stale(&run, &now_cuda, why, sizeof why), 1);
    assert_string_equal(why, "backend cpu, now cuda");

    lt_fingerprint_current_on(&run, 2, &dev, LT_LAYOUT_NCHW);
    snprintf(run.commit, sizeof run.commit, "0123456789abcdef0123456789abcdef01234567");
    run.dirty = 0;
    assert_int_equal(lt_fingerprint_stale(&run, &now_cuda, why, sizeof why), 0);
    assert_int_equal(lt_fingerprint_stale(&run, &now_cpu, why, sizeof why), 1);
    assert_string_equal(why, "backend cuda, now cpu");

    /* cuda:1 of the same model: the same numbers */
    const lt_backend_info dev1 = h100(1);
    lt_fingerprint now1;
    lt_fingerprint_current_on(&now1, 2, &dev1, LT_LAYOUT_NCHW);
    assert_int_equal(lt_fingerprint_stale(&run, &now1, why, sizeof why), 0);
    /* the driver is recorded, not compared (there is no field for it) */

    static const struct { int what; const char *why; } cases[] = {
        {0, "math mode tf32, now fp32"},
        {7, "layout nhwc, now nchw"},
        {1, "deterministic algorithms on, now off"},
        {2, "GPU NVIDIA A100-SXM4-80GB (8.0), now NVIDIA H100 80GB HBM3 (9.0)"},
        {3, "cuDNN 90100, now 91900"},
        {4, "cuBLAS 120000, now 130100"},
        {5, "CUDA runtime 12040, now 13000"},
        {6, "threads 8, now 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_fingerprint r = run;
        switch (cases[i].what) {
        case 0: snprintf(r.math, sizeof r.math, "tf32"); break;
        case 1: r.deterministic = 1; break;
        case 2:
            snprintf(r.gpu_name, sizeof r.gpu_name, "NVIDIA A100-SXM4-80GB");
            snprintf(r.gpu_cc, sizeof r.gpu_cc, "8.0");
            break;
        case 3: r.cudnn = 90100; break;
        case 4: r.cublas = 120000; break;
        case 5: r.cuda_runtime = 12040; break;
        case 6: r.threads = 8; break;
        case 7: snprintf(r.layout, sizeof r.layout, "nhwc"); break;
        }
        assert_int_equal(lt_fingerprint_stale(&r, &now_cuda, why, sizeof why), 1);
        assert_string_equal(why, cases[i].why);
    }
    /* the BLAS core still counts on cuda (host-side sums) */
    lt_fingerprint r = run;
    snprintf(r.blas_core, sizeof r.blas_core, "NoSuchCore");
    assert_int_equal(lt_fingerprint_stale(&r, &now_cuda, why, sizeof why), 1);
    assert_non_null(strstr(why, "BLAS core NoSuchCore, now "));
}

/* Writes text to <dir>/<rel> (making the directories). */
static void put(const char *dir, const char *rel, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, rel);
    char d[512];
    snprintf(d, sizeof d, "%s", path);
    for (char *p = d + strlen(dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(d, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define ENV_CPU "\"env\":{\"commit\":\"0123456789abcdef0123456789abcdef01234567\",\"dirty\":false," \
                "\"blas_core\":\"%s\",\"conv_backend\":\"%s\",\"threads\":2,\"engine_version\":\"" LT_ENGINE_VERSION "\"%s}"
#define HEAD "{\"format\":1,\"status\":\"ok\",\"protocol\":{\"name\":\"p\",\"sha256\":\"aa\"},\"scale\":\"ci\"," \
             "\"method\":{\"name\":\"ce\",\"version\":\"1\"},\"seed\":0,\"metrics\":{\"top1\":0.5},"

/* A result file's backend read back (absent = cpu), checked against its
 * directory, and the re-use rule: another backend or math mode is never
 * re-used, not even under --reuse any; a cuda run of the same fingerprint is. */
/* The env of a cuda result: the GPU, then the library versions (each test
 * adds its math mode and deterministic flag). */
#define CUDA_GPU ",\"backend\":\"cuda\",\"gpu_name\":\"NVIDIA H100 80GB HBM3\",\"gpu_cc\":\"9.0\""
#define CUDA_LIBS ",\"cuda_driver\":13000,\"cuda_runtime\":13000,\"cudnn\":91900,\"cublas\":130100"

/* A cuda result file's text (the library versions, not deterministic,
 * conv_backend cuda:0) with math mode MATH and, unless LAYOUT is NULL,
 * "cuda_layout": LAYOUT (JSON text: "\"nhwc\"", "1", "null", ...). */
static void cuda_text(char *text, size_t cap, const char *blas, const char *math, const char *layout)
{
    char env[512], lay[128] = "";
    if (layout) snprintf(lay, sizeof lay, ",\"cuda_layout\":%s", layout);
    snprintf(env, sizeof env, CUDA_GPU CUDA_LIBS ",\"cuda_math\":\"%s\",\"cuda_deterministic\":false%s", math, lay);
    snprintf(text, cap, HEAD ENV_CPU "}\n", blas, "cuda:0", env);
}

static void test_record_backend_and_reuse(void **state)
{
    (void)state;
    char dir[] = "/tmp/lt_fpb_XXXXXX";
    assert_non_null(mkdtemp(dir));
    lt_fingerprint now_cpu;
    lt_fingerprint_current(&now_cpu, 2);
    const lt_backend_info dev = h100(0);
    lt_fingerprint now_cuda;
    lt_fingerprint_current_on(&now_cuda, 2, &dev, LT_LAYOUT_NCHW);
    char text[2048], path[512], why[512];
    lt_run_record r;

    /* no backend: cpu, and re-used as one */
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, now_cpu.conv_backend, "");
    put(dir, "runs/p/ci/ce/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.backend, "cpu");
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_cpu, 0, why, sizeof why), 1);
    /* ... never as a cuda run */
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_cuda, 1, why, sizeof why), 0);
    assert_string_equal(why, "backend cpu, now cuda: another experiment (not re-used under --reuse any either)");

    /* a cuda run: its fingerprint read back */
    const char *cuda_env = CUDA_GPU CUDA_LIBS ",\"cuda_math\":\"fp32\",\"cuda_deterministic\":false";
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:3", cuda_env);
    put(dir, "runs/p/ci/ce@cuda/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.backend, "cuda");
    assert_string_equal(r.method, "ce");
    lt_fingerprint fp;
    lt_fingerprint_of_record(&r, &fp);
    assert_string_equal(fp.backend, "cuda");
    assert_string_equal(fp.gpu_name, "NVIDIA H100 80GB HBM3");
    assert_string_equal(fp.gpu_cc, "9.0");
    assert_int_equal(fp.cuda_runtime, 13000);
    assert_int_equal(fp.cudnn, 91900);
    assert_int_equal(fp.cublas, 130100);
    assert_string_equal(fp.math, "fp32");
    assert_int_equal(fp.deterministic, 0);
    /* made on cuda:3, asked on cuda:0 of the same kind: re-used */
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_cuda, 0, why, sizeof why), 1);
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_cpu, 1, why, sizeof why), 0);
    assert_string_equal(why, "backend cuda, now cpu: another experiment (not re-used under --reuse any either)");
    lt_fingerprint now_tf32 = now_cuda;
    snprintf(now_tf32.math, sizeof now_tf32.math, "tf32");
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_tf32, 1, why, sizeof why), 0);
    assert_string_equal(why, "math mode fp32, now tf32: another experiment (not re-used under --reuse any either)");
    /* another cuDNN: stale, re-used only under --reuse any */
    lt_fingerprint now_dnn = now_cuda;
    now_dnn.cudnn = 92000;
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_dnn, 0, why, sizeof why), 0);
    assert_string_equal(why, "stale: cuDNN 91900, now 92000");
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_dnn, 1, why, sizeof why), 2);

    /* a cuda result in a cpu run's directory, a cpu one in a cuda directory,
     * an unknown backend word or suffix: refused */
    put(dir, "runs/p/ci/crt/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cuda run (env.backend, env.cuda_math, env.cuda_layout) in a directory of cpu runs"));
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, now_cpu.conv_backend, ",\"backend\":\"cpu\"");
    put(dir, "runs/p/ci/crt@cuda/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cpu run (env.backend) in a directory of cuda runs"));
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, now_cpu.conv_backend, ",\"backend\":\"tpu\"");
    put(dir, "runs/p/ci/lws/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "key 'env.backend' is not \"cpu\" or \"cuda\""));
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, now_cpu.conv_backend, "");
    put(dir, "runs/p/ci/lws@tpu/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "in a directory of unknown runs"));

    /* the cuda math mode: tf32 runs live in …@cuda-tf32/, fp32 ones in
     * …@cuda/; each read back with its tag, and refused in any other
     * directory (their numbers would land in the other mode's row) */
    const char *tf32_env = CUDA_GPU CUDA_LIBS ",\"cuda_math\":\"tf32\",\"cuda_deterministic\":true";
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:0", tf32_env);
    put(dir, "runs/p/ci/ce@cuda-tf32/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.backend, "cuda");          /* what it computed on */
    assert_string_equal(r.cuda_math, "tf32");
    assert_string_equal(r.device_tag, "cuda-tf32");  /* its row */
    assert_string_equal(r.method, "ce");
    lt_fingerprint_of_record(&r, &fp);
    assert_string_equal(fp.backend, "cuda");
    assert_string_equal(fp.math, "tf32");
    assert_int_equal(fp.deterministic, 1);
    lt_fingerprint now_tf32_det = now_tf32;
    now_tf32_det.deterministic = 1;
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_tf32_det, 0, why, sizeof why), 1);
    /* another deterministic flag: the same directory, stale (the reuse rule's business) */
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_tf32, 0, why, sizeof why), 0);
    assert_string_equal(why, "stale: deterministic algorithms on, now off");
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_cuda, 1, why, sizeof why), 0);
    assert_string_equal(why, "math mode tf32, now fp32: another experiment (not re-used under --reuse any either)");
    /* the fp32 file of the same run beside it is still read as fp32 */
    snprintf(path, sizeof path, "%s/runs/p/ci/ce@cuda/seed0/result.json", dir);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.device_tag, "cuda");
    /* tf32 in an fp32 directory, in a cpu one; fp32 and cpu in a tf32 one */
    put(dir, "runs/p/ci/bbn@cuda/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "bbn@cuda/seed0/result.json: a cuda-tf32 run (env.backend, env.cuda_math, "
                                        "env.cuda_layout) "
                                        "in a directory of cuda runs"));
    put(dir, "runs/p/ci/bbn/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cuda-tf32 run (env.backend, env.cuda_math, env.cuda_layout) in a directory "
                                        "of cpu runs"));
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:0", cuda_env);
    put(dir, "runs/p/ci/ldam@cuda-tf32/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "ldam@cuda-tf32/seed0/result.json: a cuda run (env.backend, env.cuda_math, "
                                        "env.cuda_layout) "
                                        "in a directory of cuda-tf32 runs"));
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, now_cpu.conv_backend, "");
    put(dir, "runs/p/ci/focal@cuda-tf32/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cpu run (env.backend) in a directory of cuda-tf32 runs"));
    /* a cuda run without a known math mode has no row: refused, wherever it is */
    const char *no_math_env = CUDA_GPU;
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:0", no_math_env);
    put(dir, "runs/p/ci/ride@cuda/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "ride@cuda/seed0/result.json: key 'env.cuda_math' of a cuda run is not "
                                        "\"fp32\" or \"tf32\""));
    const char *fp16_env = ",\"backend\":\"cuda\",\"cuda_math\":\"fp16\"";
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:0", fp16_env);
    put(dir, "runs/p/ci/ride@cuda-tf32/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "key 'env.cuda_math' of a cuda run is not \"fp32\" or \"tf32\""));
    /* a suffix that is no tag, and one without a math mode of its own */
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:0", cuda_env);
    put(dir, "runs/p/ci/ride@cuda-fp32/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cuda run (env.backend, env.cuda_math, env.cuda_layout) in a directory of "
                                        "unknown runs"));
    put(dir, "runs/p/ci/ride@cpu/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "in a directory of unknown runs"));

    /* the layout: a cuda result without env.cuda_layout (every one before
     * --layout) ran NCHW, as does one that says "nchw"; NHWC runs live in
     * …@cuda-nhwc/ (…@cuda-tf32-nhwc/), are their own experiment for the
     * reuse rule, and are refused in any other directory */
    snprintf(path, sizeof path, "%s/runs/p/ci/ce@cuda/seed0/result.json", dir);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.cuda_layout, "nchw");
    lt_fingerprint_of_record(&r, &fp);
    assert_string_equal(fp.layout, "nchw");
    lt_fingerprint now_nhwc;
    lt_fingerprint_current_on(&now_nhwc, 2, &dev, LT_LAYOUT_NHWC);
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_nhwc, 1, why, sizeof why), 0);
    assert_string_equal(why, "layout nchw, now nhwc: another experiment (not re-used under --reuse any either)");
    cuda_text(text, sizeof text, now_cpu.blas_core, "fp32", "\"nchw\"");
    put(dir, "nchw/runs/p/ci/ce@cuda/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.device_tag, "cuda");
    cuda_text(text, sizeof text, now_cpu.blas_core, "fp32", "\"nhwc\"");
    put(dir, "runs/p/ci/ce@cuda-nhwc/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.backend, "cuda");
    assert_string_equal(r.cuda_layout, "nhwc");
    assert_string_equal(r.device_tag, "cuda-nhwc");
    assert_string_equal(r.method, "ce");
    lt_fingerprint_of_record(&r, &fp);
    assert_string_equal(fp.layout, "nhwc");
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_nhwc, 0, why, sizeof why), 1);
    assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now_cuda, 1, why, sizeof why), 0);
    assert_string_equal(why, "layout nhwc, now nchw: another experiment (not re-used under --reuse any either)");
    put(dir, "runs/p/ci/bbn@cuda/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cuda-nhwc run (env.backend, env.cuda_math, env.cuda_layout) "
                                        "in a directory of cuda runs"));
    put(dir, "runs/p/ci/bbn@cuda-tf32-nhwc/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "in a directory of cuda-tf32-nhwc runs"));
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, "cuda:0", cuda_env);   /* no layout: NCHW */
    put(dir, "runs/p/ci/ldam@cuda-nhwc/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "a cuda run (env.backend, env.cuda_math, env.cuda_layout) in a directory "
                                        "of cuda-nhwc runs"));
    cuda_text(text, sizeof text, now_cpu.blas_core, "tf32", "\"nhwc\"");
    put(dir, "runs/p/ci/ce@cuda-tf32-nhwc/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.device_tag, "cuda-tf32-nhwc");
    /* a layout word that is not one, or not a string: refused, naming the
     * file and the key, and quoting a string */
    const char *bad_layouts[] = {"\"NHWC\"", "\"channels_last\"", "\"\"", "1", "null"};
    for (size_t i = 0; i < sizeof bad_layouts / sizeof bad_layouts[0]; i++) {
        cuda_text(text, sizeof text, now_cpu.blas_core, "fp32", bad_layouts[i]);
        put(dir, "runs/p/ci/ride@cuda-nhwc/seed0/result.json", text, path, sizeof path);
        assert_int_equal(lt_run_record_read(path, &r), LT_EDATA);
        char want[256];
        snprintf(want, sizeof want, "ride@cuda-nhwc/seed0/result.json: key 'env.cuda_layout' of a cuda run is not "
                 "\"nchw\" or \"nhwc\": %s", bad_layouts[i][0] == '"' ? bad_layouts[i] : "not a string");
        if (!strstr(lt_errmsg(), want)) fail_msg("layout %s: %s (want %s)", bad_layouts[i], lt_errmsg(), want);
    }
    /* a cpu result has no layout, whatever its file says */
    snprintf(text, sizeof text, HEAD ENV_CPU "}\n", now_cpu.blas_core, now_cpu.conv_backend,
             ",\"backend\":\"cpu\",\"cuda_layout\":\"nhwc\"");
    put(dir, "cpu/runs/p/ci/ce/seed0/result.json", text, path, sizeof path);
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    assert_string_equal(r.device_tag, "cpu");
    assert_string_equal(r.cuda_layout, "");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* reproduce takes --reuse strict|any (and --no-report for regen-results);
 * anything else is a usage error naming the flag. */
static void test_reproduce_reuse_flag(void **state)
{
    (void)state;
    char *any[] = {"reproduce", "--reuse", "any", "--no-report", "--help", NULL};
    assert_int_equal(lt_cmd_reproduce(5, any), 0);
    char *strict[] = {"reproduce", "--reuse", "strict", "--help", NULL};
    assert_int_equal(lt_cmd_reproduce(4, strict), 0);
    char *bad[] = {"reproduce", "--reuse", "sometimes", "--method", "ce", NULL};
    assert_int_equal(lt_cmd_reproduce(5, bad), 2);
}

/* reproduce and sweep run a method with its defaults, so a finished run
 * made with other hyper-parameters (ltbench run --hparams, the same
 * directory) never stands for it, not even under --reuse any. A run from
 * before a key was added lacks that key and still does. */
static void test_reuse_needs_default_hparams(void **state)
{
    (void)state;
    static const lt_method m = {.abi = LT_METHOD_ABI, .name = "ce", .version = "1", .cite = "none",
                                .fidelity = "paper", .defaults = "{\"tau\": 1.0, \"select\": \"fixed\"}"};
    char dir[] = "/tmp/lt_fph_XXXXXX";
    assert_non_null(mkdtemp(dir));
    lt_fingerprint now;
    lt_fingerprint_current(&now, 2);
    char text[2048], path[512], why[512];
    static const struct {
        const char *hparams;   /* method.hparams in the file, NULL: absent */
        int use;
    } cases[] = {
        {"{\"tau\":1,\"select\":\"fixed\"}", 1},
        {"{\"select\":\"fixed\",\"tau\":1.0}", 1},   /* the same object, other key order */
        {"{\"tau\":0,\"select\":\"fixed\"}", 0},
        {"{\"tau\":1,\"select\":\"fixed\",\"gone\":2}", 0},   /* a key the method no longer has */
        /* a key added to the method since (its default keeps the numbers,
         * or the version would have moved): the defaults still */
        {"{\"tau\":1}", 1},
        {NULL, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char hp[256] = "";
        if (cases[k].hparams) snprintf(hp, sizeof hp, ",\"hparams\":%s", cases[k].hparams);
        snprintf(text, sizeof text,
                 "{\"format\":1,\"status\":\"ok\",\"protocol\":{\"name\":\"p\",\"sha256\":\"aa\"},"
                 "\"scale\":\"ci\",\"method\":{\"name\":\"ce\",\"version\":\"1\"%s},\"seed\":0,"
                 "\"metrics\":{\"top1\":0.5}," ENV_CPU "}\n",
                 hp, now.blas_core, now.conv_backend, "");
        put(dir, "runs/p/ci/ce/seed0/result.json", text, path, sizeof path);
        assert_int_equal(lt_result_reusable(path, "aa", "", "1", &now, 0, why, sizeof why), 1);
        for (int any = 0; any < 2; any++) {
            const int use = lt_result_reusable_m(path, "aa", "", &m, &now, any, why, sizeof why);
            if (use != cases[k].use) fail_msg("case %zu any %d: %d (%s)", k, any, use, why);
            if (!use) assert_non_null(strstr(why, "other hyper-parameters than the method's defaults"));
        }
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The commit a result records is the one of the tree this program was
 * built in, whatever the working directory: run from another directory
 * (another repository, or none) it was that directory's, or "unknown". */
static void test_commit_from_source_tree(void **state)
{
    (void)state;
    char expect[128] = "";
    FILE *p = popen("git rev-parse HEAD 2>/dev/null", "r");
    if (p) {
        if (!fgets(expect, sizeof expect, p)) expect[0] = '\0';
        pclose(p);
    }
    expect[strcspn(expect, "\n")] = '\0';
    if (strlen(expect) < 40) {
        print_message("skip: not run from a git checkout (no commit to expect)\n");
        skip();
    }
    char here[4096], dir[] = "/tmp/lt_fpc_XXXXXX";
    assert_non_null(getcwd(here, sizeof here));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    lt_run_env e;
    lt_run_env_capture(&e, 1, NULL, NULL);
    assert_int_equal(chdir(here), 0);
    rmdir(dir);
    assert_string_equal(e.commit, expect);
    assert_true(e.dirty == 0 || e.dirty == 1);
}

/* Runs a shell command in dir; 0 on success. */
static int sh_in(const char *dir, const char *cmd)
{
    char buf[1200];
    snprintf(buf, sizeof buf, "cd '%s' && { %s; } >/dev/null 2>&1", dir, cmd);
    return system(buf) == 0 ? 0 : -1;
}

/* Runs cmd in dir, then lt_run_tree_state on it: dirty, the diff hash in diff. */
static int state_after(const char *dir, const char *cmd, char diff[65])
{
    assert_int_equal(sh_in(dir, cmd), 0);
    char commit[64];
    int dirty;
    lt_run_tree_state(dir, commit, sizeof commit, &dirty, diff);
    assert_int_equal((int)strlen(commit), 40);
    return dirty;
}

/* The GPU machine gets the work tree without .git, and a pack of HEAD's
 * commit that tests/gpu/pack-git.sh makes without the blobs of results/ and
 * plots/out/ (the device tool's 64 MiB); tests/gpu/env.sh points git at it
 * (GIT_DIR, GIT_WORK_TREE, an index of its own from read-tree). There
 * lt_run_tree_state must see what it sees in the real checkout: the
 * commit, clean, results/ and plots/out/ changes not dirty (and no missing
 * object), an untracked source dirty, and a code change dirty with the
 * same diff hash. */
static void test_tree_state_packed(void **state)
{
    (void)state;
    if (system("git --version >/dev/null 2>&1") != 0) {
        print_message("skip: git is not installed\n");
        skip();
    }
    char here[4096];
    assert_non_null(getcwd(here, sizeof here));
    char dir[] = "/tmp/lt_pack_XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* repo/: the checkout; copy/: its files alone; git/: the pack */
    assert_int_equal(sh_in(dir, "mkdir repo && cd repo && git init -q . && mkdir -p results/runs plots/out engine && "
                                "echo 'int x;' > a.c && echo 'int e;' > engine/e.c && echo r > results/runs/r.csv && "
                                "echo f > plots/out/f.svg && git add -A && "
                                "git -c user.email=t@t -c user.name=t commit -q -m one"),
                     0);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "PACKGIT_REPO='%s/repo' bash '%s/tests/gpu/pack-git.sh' '%s/git' && "
             "mkdir copy && cd repo && git ls-files -z | xargs -0 cp --parents -t ../copy", dir, here, dir);
    assert_int_equal(sh_in(dir, cmd), 0);
    /* the pack holds no blob of results/ or plots/out/ */
    snprintf(cmd, sizeof cmd, "test \"$(cd repo && git rev-parse HEAD:results/runs/r.csv)\" && "
             "! git --git-dir='%s/git' cat-file -e \"$(cd repo && git rev-parse HEAD:results/runs/r.csv)\" && "
             "! git --git-dir='%s/git' cat-file -e \"$(cd repo && git rev-parse HEAD:plots/out/f.svg)\" && "
             "git --git-dir='%s/git' cat-file -e \"$(cd repo && git rev-parse HEAD:engine/e.c)\"", dir, dir, dir);
    assert_int_equal(sh_in(dir, cmd), 0);
    char repo[128], copy[128], gitdir[128], index[160];
    snprintf(repo, sizeof repo, "%s/repo", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    snprintf(gitdir, sizeof gitdir, "%s/git", dir);
    snprintf(index, sizeof index, "%s/index", dir);
    char c_real[64], c_pack[64], d_real[65], d_pack[65];
    int dirty;
    lt_run_tree_state(repo, c_real, sizeof c_real, &dirty, d_real);
    assert_int_equal(dirty, 0);
    /* as gpu_env_git does */
    setenv("GIT_DIR", gitdir, 1);
    setenv("GIT_WORK_TREE", copy, 1);
    setenv("GIT_INDEX_FILE", index, 1);
    assert_int_equal(sh_in(copy, "git read-tree HEAD"), 0);
    lt_run_tree_state(copy, c_pack, sizeof c_pack, &dirty, d_pack);
    assert_string_equal(c_pack, c_real);
    assert_int_equal(dirty, 0);
    assert_string_equal(d_pack, "");
    /* a run rewrites results and figures: still clean, nothing missing */
    assert_int_equal(state_after(copy, "echo r2 >> results/runs/r.csv && rm plots/out/f.svg && "
                                       "echo r3 > results/runs/new.csv", d_pack), 0);
    assert_string_equal(d_pack, "");
    /* an untracked source the build would compile: dirty there too */
    assert_int_equal(state_after(copy, "echo 'int u;' > engine/u.c", d_pack), 1);
    assert_int_equal(state_after(copy, "rm engine/u.c", d_pack), 0);
    /* a code change: dirty, with the hash the real checkout gives it */
    assert_int_equal(state_after(copy, "echo 'int y;' >> engine/e.c", d_pack), 1);
    assert_int_equal((int)strlen(d_pack), 64);
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    unsetenv("GIT_INDEX_FILE");
    assert_int_equal(state_after(repo, "echo 'int y;' >> engine/e.c", d_real), 1);
    assert_string_equal(d_pack, d_real);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* lt_run_tree_state on a git repository of its own: clean is dirty 0 with
 * no diff hash; a change to results/ or plots/out/ is not dirty; a change
 * to the code is dirty with the sha256 of its diff, another change another
 * hash, the same change again the same hash; an untracked source in a
 * folder the build takes by wildcard is dirty too (an untracked or ignored
 * file elsewhere is not); the numerics record carries
 * the hash (a dirty checkpoint resumes only under the same changes); a
 * directory outside git is commit "unknown", dirty -1. */
static void test_tree_state(void **state)
{
    (void)state;
    if (system("git --version >/dev/null 2>&1") != 0) {
        print_message("skip: git is not installed\n");
        skip();
    }
    char dir[] = "/tmp/lt_tree_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(sh_in(dir, "git init -q . && mkdir -p results plots/out && echo 'int x;' > a.c && "
                                "echo r > results/r.csv && echo f > plots/out/f.svg && git add -A && "
                                "git -c user.email=t@t -c user.name=t commit -q -m one"),
                     0);
    char commit[64], diff[65], d1[65], d2[65];
    int dirty;
    lt_run_tree_state(dir, commit, sizeof commit, &dirty, diff);
    assert_int_equal((int)strlen(commit), 40);
    assert_int_equal(dirty, 0);
    assert_string_equal(diff, "");
    assert_int_equal(state_after(dir, "echo r2 >> results/r.csv && echo f2 >> plots/out/f.svg", diff), 0);
    assert_string_equal(diff, "");
    assert_int_equal(state_after(dir, "echo 'int y;' >> a.c", d1), 1);
    assert_int_equal((int)strlen(d1), 64);
    lt_run_env e;
    memset(&e, 0, sizeof e);
    e.threads = 2;
    e.dirty = 1;
    snprintf(e.conv_backend, sizeof e.conv_backend, "avx2-direct");
    snprintf(e.blas_core, sizeof e.blas_core, "Zen");
    snprintf(e.diff_sha256, sizeof e.diff_sha256, "%s", d1);
    char num[256], want[256];
    lt_run_numerics(&e, 0, num, sizeof num);
    snprintf(want, sizeof want, "threads=2;conv=avx2-direct;blas=Zen;dirty=1:%.16s", d1);
    assert_string_equal(num, want);
    assert_int_equal(state_after(dir, "echo 'int x;' > a.c && echo 'int z;' >> a.c", diff), 1);
    assert_string_not_equal(diff, d1);
    assert_int_equal(state_after(dir, "echo 'int x;' > a.c && echo 'int y;' >> a.c", diff), 1);
    assert_string_equal(diff, d1);
    /* untracked files: one in a source folder the Makefile builds by
     * wildcard is code (dirty, in the hash, its content too); one elsewhere,
     * or one .gitignore names, is not */
    assert_int_equal(state_after(dir, "echo 'int x;' > a.c && mkdir -p engine methods/m && echo notes > notes.txt && "
                                      "echo '*.o' > .gitignore && git add .gitignore && "
                                      "git -c user.email=t@t -c user.name=t commit -q -m two && echo obj > engine/k.o",
                                 diff),
                     0);
    assert_string_equal(diff, "");
    assert_int_equal(state_after(dir, "echo 'int m;' > methods/m/method.c", d2), 1);
    assert_int_equal((int)strlen(d2), 64);
    assert_int_equal(state_after(dir, "echo 'int n;' > methods/m/method.c", diff), 1);
    assert_string_not_equal(diff, d2);
    assert_int_equal(state_after(dir, "echo 'int m;' > methods/m/method.c", diff), 1);
    assert_string_equal(diff, d2);
    /* a clean tree's record is as before: checkpoints of clean runs still match */
    e.dirty = 0;
    e.diff_sha256[0] = '\0';
    lt_run_numerics(&e, 0, num, sizeof num);
    assert_string_equal(num, "threads=2;conv=avx2-direct;blas=Zen;dirty=0");
    assert_int_equal(sh_in(dir, "rm -rf .git"), 0);
    lt_run_tree_state(dir, commit, sizeof commit, &dirty, diff);
    assert_string_equal(commit, "unknown");
    assert_int_equal(dirty, -1);
    assert_string_equal(diff, "");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_is_this_build),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_version_order),
        cmocka_unit_test(test_record_fingerprint),
        cmocka_unit_test(test_current_on_device),
        cmocka_unit_test(test_backend_reasons),
        cmocka_unit_test(test_record_backend_and_reuse),
        cmocka_unit_test(test_reproduce_reuse_flag),
        cmocka_unit_test(test_reuse_needs_default_hparams),
        cmocka_unit_test(test_commit_from_source_tree),
        cmocka_unit_test(test_tree_state),
        cmocka_unit_test(test_tree_state_packed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
