/* lt_backend.c — the backend objects (lt_backend.h): the cpu backend's
 * options, the process default made from the environment, the device and
 * math-mode names, and what a backend computes on (lt_backend_get_info).
 * The cuda creator's weak definition, which loads the CUDA module, is
 * lt_backend_dl.c's. */
#include "lt_backend_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lt_cpu_has_avx512f(void) {
    /* __builtin_cpu_supports needs __builtin_cpu_init first when called
     * before constructors ran; both are cheap, the answer never changes */
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cpu;
}

static int isa_cap = -1;

lt_conv_isa_kind lt_conv_isa(void) {
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = lt_cpu_has_avx512f() ? LT_CONV_ISA_AVX512
              : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? LT_CONV_ISA_AVX2
                                                                                 : LT_CONV_ISA_NONE;
    }
    return (lt_conv_isa_kind)(isa_cap >= 0 && isa_cap < cpu ? isa_cap : cpu);
}

void lt_conv_isa_cap(int most) { isa_cap = most < 0 ? -1 : most; }

void lt_cpu_opts_default(lt_cpu_opts *o) {
    memset(o, 0, sizeof *o);
    o->conv = LT_CONV_PATH_AUTO;
    o->wino_tile = 0;
}

void lt_cpu_opts_from_strings(lt_cpu_opts *o, const char *conv_ref, const char *conv_wino) {
    lt_cpu_opts_default(o);
    /* the meanings lt_conv.c and lt_conv_wino.c gave these variables when
     * they read them lazily (engine 0.7.0 and before): results recorded
     * under them must stay reproducible with the same settings */
    if (conv_ref && *conv_ref && strcmp(conv_ref, "0") != 0) {
        o->conv = LT_CONV_PATH_REF;
        return;
    }
    if (conv_wino && !strcmp(conv_wino, "0")) o->conv = LT_CONV_PATH_DIRECT;
    else if (conv_wino && !strcmp(conv_wino, "2")) o->conv = LT_CONV_PATH_WINO;
}

void lt_cpu_opts_from_env(lt_cpu_opts *o) {
    lt_cpu_opts_from_strings(o, getenv("LT_CONV_REF"), getenv("LT_CONV_WINO"));
}

static const char *const path_names[] = {"default", "auto", "ref", "direct", "winograd"};

int lt_conv_path_parse(const char *name, lt_conv_path *out) {
    for (int p = LT_CONV_PATH_AUTO; p <= LT_CONV_PATH_WINO; p++)
        if (name && !strcmp(name, path_names[p])) {
            *out = (lt_conv_path)p;
            return LT_OK;
        }
    return lt_err(LT_EINVAL, "conv path '%s': expected auto, ref, direct or winograd", name ? name : "(none)");
}

const char *lt_conv_path_name(lt_conv_path p) {
    return (int)p >= 0 && (int)p <= LT_CONV_PATH_WINO ? path_names[p] : "?";
}

static int opts_check(const lt_cpu_opts *o) {
    if (!o) return lt_err(LT_EINVAL, "cpu backend: NULL options");
    if (o->conv < LT_CONV_PATH_AUTO || o->conv > LT_CONV_PATH_WINO)
        return lt_err(LT_EINVAL, "cpu backend: conv path %d out of range (auto, ref, direct, winograd)", (int)o->conv);
    if (o->wino_tile != 0 && o->wino_tile != 2 && o->wino_tile != 4)
        return lt_err(LT_EINVAL, "cpu backend: Winograd tile %d (0 = the rule, 2 or 4)", o->wino_tile);
    return LT_OK;
}

int lt_backend_cpu_create(const lt_cpu_opts *o, lt_backend **out) {
    if (!out) return lt_err(LT_EINVAL, "cpu backend: NULL output");
    *out = NULL;
    LT_TRY(opts_check(o));
    lt_backend *b = calloc(1, sizeof *b);
    if (!b) return lt_err(LT_ENOMEM, "cpu backend: out of memory");
    b->kind = LT_BACKEND_CPU;
    b->cpu = *o;
    *out = b;
    return LT_OK;
}

void lt_backend_free(lt_backend *b) {
    if (!b || b->is_default) return;
    if (b->dev && b->ctx) b->dev->ctx_free(b->ctx);
    free(b);
}

lt_backend_kind lt_backend_get_kind(const lt_backend *b) { return b->kind; }

int lt_backend_parse_device(const char *s, lt_backend_kind *kind, int *device) {
    if (s && !strcmp(s, "cpu")) {
        *kind = LT_BACKEND_CPU;
        *device = 0;
        return LT_OK;
    }
    if (s && !strncmp(s, "cuda", 4)) {
        const char *p = s + 4;
        if (!*p) {
            *kind = LT_BACKEND_CUDA;
            *device = 0;
            return LT_OK;
        }
        /* "cuda:N": decimal, no sign, no leading zeros beyond "0", <= 255 */
        if (*p == ':' && p[1] >= '0' && p[1] <= '9' && strlen(p + 1) <= 3 &&
            strspn(p + 1, "0123456789") == strlen(p + 1) && (p[1] != '0' || !p[2])) {
            int n = atoi(p + 1);
            if (n <= 255) {
                *kind = LT_BACKEND_CUDA;
                *device = n;
                return LT_OK;
            }
        }
    }
    return lt_err(LT_EINVAL, "device '%s': expected cpu, cuda or cuda:N (N = 0..255)", s ? s : "(none)");
}

const char *lt_backend_kind_name(lt_backend_kind k) {
    return k == LT_BACKEND_CPU ? "cpu" : k == LT_BACKEND_CUDA ? "cuda" : "?";
}

int lt_cuda_math_parse(const char *s, lt_cuda_math *out) {
    if (s && !strcmp(s, "fp32")) *out = LT_CUDA_FP32;
    else if (s && !strcmp(s, "tf32")) *out = LT_CUDA_TF32;
    else return lt_err(LT_EINVAL, "math mode '%s': expected fp32 or tf32", s ? s : "(none)");
    return LT_OK;
}

const char *lt_cuda_math_name(lt_cuda_math m) {
    return m == LT_CUDA_FP32 ? "fp32" : m == LT_CUDA_TF32 ? "tf32" : "?";
}

int lt_layout_parse(const char *s, lt_layout *out) {
    if (s && !strcmp(s, "nchw")) *out = LT_LAYOUT_NCHW;
    else if (s && !strcmp(s, "nhwc")) *out = LT_LAYOUT_NHWC;
    else return lt_err(LT_EINVAL, "layout '%s': expected nchw or nhwc", s ? s : "(none)");
    return LT_OK;
}

int lt_cuda_wgrad_stream_from_env(void) {
    const char *v = getenv("LT_CUDA_WGRAD_STREAM");
    return v && !strcmp(v, "1");
}

const char *lt_layout_name(lt_layout l) {
    return l == LT_LAYOUT_NCHW ? "nchw" : l == LT_LAYOUT_NHWC ? "nhwc" : "?";
}

int lt_backend_get_info(const lt_backend *b, lt_backend_info *out) {
    if (!b || !out) return lt_err(LT_EINVAL, "backend info: NULL argument");
    memset(out, 0, sizeof *out);
    out->kind = b->kind;
    out->math = LT_CUDA_FP32;
    if (b->kind != LT_BACKEND_CUDA) return LT_OK;
    out->device = b->device;
    out->math = b->math;
    out->deterministic = b->deterministic;
    if (!b->dev || !b->dev->info) return lt_err(LT_EINVAL, "backend info: cuda:%d has no device functions", b->device);
    LT_TRY(b->dev->info(b->ctx, out));
    /* the object's own say, whatever the op wrote */
    out->kind = LT_BACKEND_CUDA;
    out->device = b->device;
    return LT_OK;
}

int lt_backend_cpu_opts(const lt_backend *b, lt_cpu_opts *out) {
    if (!b || b->kind != LT_BACKEND_CPU) return lt_err(LT_EINVAL, "backend: not a cpu backend");
    *out = b->cpu;
    return LT_OK;
}

const char *lt_backend_describe(const lt_backend *b) {
    if (!b) return "?";
    if (b->kind == LT_BACKEND_CUDA) return b->cuda_name;
    /* the strings results have recorded as conv_backend since engine 0.3.0 */
    const lt_conv_isa_kind isa = lt_conv_isa();
    if (isa == LT_CONV_ISA_NONE || b->cpu.conv == LT_CONV_PATH_REF) return "im2col-sgemm";
    if (isa == LT_CONV_ISA_AVX2) return "avx2-direct";
    return b->cpu.conv == LT_CONV_PATH_DIRECT ? "avx512-direct" : "avx512-direct+winograd";
}

/* Static storage: the default is never freed, and making it needs no
 * allocation that could fail. */
static lt_backend default_backend;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void) {
    default_backend.kind = LT_BACKEND_CPU;
    lt_cpu_opts_from_env(&default_backend.cpu);
    default_backend.is_default = 1;
}

lt_backend *lt_backend_default(void) {
    pthread_once(&default_once, default_init);
    return &default_backend;
}

/* ---- host memory (issue 20, C) ------------------------------------------------ */
int lt_backend_host_alloc(const lt_backend *b, void **p, size_t bytes) {
    if (!p) return lt_err(LT_EINVAL, "host alloc: NULL output pointer");
    *p = NULL;
    /* a device that pins host memory (cudaHostAlloc): copies from it run
     * asynchronously and at full bus speed */
    if (b && b->kind == LT_BACKEND_CUDA && b->dev && b->dev->host_alloc)
        return b->dev->host_alloc(b->ctx, p, bytes);
    /* cpu: aligned heap memory (one byte at least, so NULL means failure) */
    *p = lt_alloc(bytes ? bytes : 1);
    return *p ? LT_OK : lt_err(LT_ENOMEM, "host alloc: out of memory allocating %zu bytes", bytes);
}

void lt_backend_host_free(const lt_backend *b, void *p) {
    if (!p) return;
    if (b && b->kind == LT_BACKEND_CUDA && b->dev && b->dev->host_free)
        b->dev->host_free(b->ctx, p);
    else
        lt_free(p);
}

int lt_backend_loader_workers(const lt_backend *b) {
    /* cpu: the trainer's OpenMP threads own the cores; one background
     * loader thread keeps CPU results and timings what they were. A device
     * trains on the device: every core prepares batches. */
    if (!b || b->kind == LT_BACKEND_CPU) return 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 256) n = 256;   /* lt_loader's limit */
    return (int)n;
}
