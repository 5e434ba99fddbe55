/* lt_backend.h — where a model computes: a backend object instead of
 * process-wide switches.
 *
 * A model is created on a backend (lt_model_create_on); its layers take
 * their kernel path from it, so two models on two backends in one process
 * compute each on its own path. Kinds:
 *   cpu     today's engine: AVX-512 direct convolutions with Winograd where
 *           they pay, the im2col + OpenBLAS sgemm path elsewhere; the path
 *           choices are plain fields of lt_cpu_opts.
 *   cuda:N  a CUDA device (parameters, gradients, optimizer state and
 *           activations on it; engine/cuda/, cuDNN + cuBLAS). In binaries
 *           linked with build/libltcuda.a, or loaded from the module
 *           build/libltcuda.so (lt_backend_cuda_create); elsewhere
 *           LT_ENOTBUILT.
 *
 * The environment switches LT_CONV_REF and LT_CONV_WINO are read in one
 * place only, lt_cpu_opts_from_env, which fills the options of the process
 * default backend (lt_backend_default) and of the backend a run is built on
 * (harness). Nothing else in the engine reads the environment for them.
 *
 * A backend is immutable once created (its options are copied in), so a
 * model's numbers cannot change under it; it is not owned by the models
 * created on it and must outlive them. */
#ifndef LT_BACKEND_H
#define LT_BACKEND_H

#include "lt_base.h"

/* The device name the CPU emulator of the CUDA backend (tests/cuemu)
 * reports: a run on it exercises the CUDA code path, its numbers are not a
 * GPU's, and the leaderboard refuses it. */
#define LT_CUEMU_DEVICE_NAME "ltbench cuemu (CPU emulator)"

typedef struct lt_backend lt_backend;

typedef enum { LT_BACKEND_CPU = 0, LT_BACKEND_CUDA = 1 } lt_backend_kind;

/* Math mode of a cuda backend (and of engine/cuda/lt_cuda.h's contexts). */
typedef enum {
    LT_CUDA_FP32 = 0,   /* IEEE float32, TF32 off (default) */
    LT_CUDA_TF32 = 1    /* TF32 tensor cores in convolutions and GEMMs */
} lt_cuda_math;

/* Activation layout of a cuda model's 4-D tensors on the device (and of
 * lt_cuda.h's layout-sensitive ops): NCHW [N][C][H][W], the engine's own
 * and the default; NHWC [N][H][W][C], PyTorch's channels_last, which
 * cuDNN's tensor-core convolutions read without transposing. Weights keep
 * lt_conv_geom's [co][ci/groups][kh][kw] in both; tensors with H = W = 1
 * are the same bytes in both. */
typedef enum { LT_LAYOUT_NCHW = 0, LT_LAYOUT_NHWC = 1 } lt_layout;

/* The convolution path of a cpu backend. The paths sum in different orders,
 * so their last bits differ; each is deterministic for a fixed thread
 * count. */
typedef enum {
    /* lt_conv_geom only (what lt_conv_geom_init and zeroed geometries
     * hold): the process default backend's path. Not an option value. */
    LT_CONV_PATH_DEFAULT = 0,
    /* AVX-512 direct, Winograd on the 3x3 stride-1 layers where it is
     * measured to pay; AVX2 direct where the CPU lacks AVX-512F, im2col +
     * sgemm where it lacks AVX2 + FMA too (lt_conv_isa) */
    LT_CONV_PATH_AUTO = 1,
    LT_CONV_PATH_REF = 2,      /* im2col + sgemm everywhere (LT_CONV_REF=1) */
    LT_CONV_PATH_DIRECT = 3,   /* direct, no Winograd (LT_CONV_WINO=0) */
    /* Winograd on every 3x3 stride-1 pad-1 layer, whatever it costs
     * (LT_CONV_WINO=2; tests) */
    LT_CONV_PATH_WINO = 4
} lt_conv_path;

/* Options of a cpu backend; {0} is not valid, start from lt_cpu_opts_default
 * or lt_cpu_opts_from_env. */
typedef struct {
    lt_conv_path conv;   /* LT_CONV_PATH_AUTO .. LT_CONV_PATH_WINO */
    /* The Winograd output tile: 0 = the measured rule (lt_conv_wino_tile),
     * 2 = F(2x2, 3x3), 4 = F(4x4, 3x3) wherever Winograd runs (tests; the
     * tiles round differently, so this changes the last bits too). */
    int wino_tile;
} lt_cpu_opts;

/* {LT_CONV_PATH_AUTO, 0}: today's default. */
void lt_cpu_opts_default(lt_cpu_opts *o);
/* The defaults changed by the environment, with the meanings these switches
 * always had: LT_CONV_REF set, non-empty and not "0" -> LT_CONV_PATH_REF
 * (whatever LT_CONV_WINO says); otherwise LT_CONV_WINO "0" -> DIRECT, "2" ->
 * WINO, anything else or unset -> AUTO. The only reader of those two
 * variables. */
void lt_cpu_opts_from_env(lt_cpu_opts *o);
/* The same rule on given strings (NULL = unset), for tests and callers that
 * hold the values already. */
void lt_cpu_opts_from_strings(lt_cpu_opts *o, const char *conv_ref, const char *conv_wino);
/* "auto" "ref" "direct" "winograd" -> the path (`ltbench run --conv`);
 * LT_EINVAL naming the choices otherwise. */
int lt_conv_path_parse(const char *name, lt_conv_path *out);
const char *lt_conv_path_name(lt_conv_path p);   /* the inverse; "?" when out of range */

/* LT_EINVAL for options out of range. */
int lt_backend_cpu_create(const lt_cpu_opts *o, lt_backend **out);
/* A CUDA backend on device `device` (0-based) with its own context (stream,
 * cuDNN and cuBLAS handles), math mode and deterministic flag (lt_cuda.h).
 * With the CUDA code (linked or loaded, below): LT_EDEVICE with the reason
 * ("no CUDA device: ...") when there is no driver or device or the index is
 * out of range, LT_EINVAL for a bad math mode. Without it (no module found,
 * a CPU-only build): LT_ENOTBUILT "CUDA backend not built: ..." naming the
 * module paths tried. *out = NULL on failure.
 *
 * How (two ways, the same backend object):
 *  - linked statically: libltcuda.a defines the real function
 *    (engine/cuda/lt_cuda_model.c), which the linker takes over the engine's
 *    weak one when libltcuda.a comes before libltengine.a (the tests of
 *    tests/gpu, Makefile);
 *  - loaded on demand (./ltbench): the engine's weak definition
 *    (lt_backend_dl.c) dlopen()s the CUDA module build/libltcuda.so, the first
 *    found of: $LTBENCH_CUDA_LIB when set (then only that); <exe dir>/build/
 *    libltcuda.so; <exe dir>/libltcuda.so; <exe dir>/../libltcuda.so (exe dir:
 *    the directory of /proc/self/exe). None there: LT_ENOTBUILT naming the
 *    paths tried and "make cuda". dlopen fails (a missing libcudnn, a
 *    program that does not export the engine's symbols): LT_EDEVICE with
 *    dlerror()'s text. A module built from other engine sources (another
 *    LT_CUDA_MODULE_ABI or struct layout, lt_cuda_module.h): LT_ENOTBUILT
 *    "stale". The module is loaded once and never unloaded.
 * The module's code resolves the engine's symbols from the program, which
 * must export them (-rdynamic, libltengine.a linked whole). The engine
 * itself never calls into the CUDA code: the backend object carries the
 * device functions (lt_backend_impl.h).
 *
 * CUDA does not survive fork(): a process that forks workers which use
 * CUDA must not create a cuda backend itself (the runner probes the device
 * in a child, harness/lt_run_device.c). */
int lt_backend_cuda_create(int device, lt_cuda_math math, int deterministic, lt_backend **out);
/* NULL and the process default are ignored (the default lives as long as
 * the process). */
void lt_backend_free(lt_backend *b);

/* "cpu", "cuda" or "cuda:N" (N in 0..255; "cuda" is cuda:0) -> kind and
 * device index (0 for cpu): `ltbench run --device`. LT_EINVAL naming the
 * choices otherwise. */
int lt_backend_parse_device(const char *s, lt_backend_kind *kind, int *device);
const char *lt_backend_kind_name(lt_backend_kind k);   /* "cpu", "cuda"; "?" out of range */
/* "fp32" "tf32" -> the math mode (`--math`); LT_EINVAL naming the choices. */
int lt_cuda_math_parse(const char *s, lt_cuda_math *out);
const char *lt_cuda_math_name(lt_cuda_math m);          /* the inverse; "?" out of range */
/* "nchw" / "nhwc" (LT_EINVAL naming s otherwise), and the inverse ("?"
 * out of range). */
int lt_layout_parse(const char *s, lt_layout *out);
const char *lt_layout_name(lt_layout l);

/* What a backend computes on, as results record it (the fingerprint of
 * harness/lt_fingerprint.h). Versions are the libraries' integers:
 * driver / runtime 13000 = 13.0, cuDNN 91900 = 9.19.0, cuBLAS 130000. */
typedef struct {
    lt_backend_kind kind;
    int device;                  /* cuda: the index; cpu: 0 */
    char device_name[128];       /* cuda: "NVIDIA H100 80GB HBM3"; cpu: "";
                                  * the CPU emulator (tests/cuemu): LT_CUEMU_DEVICE... */
    int cc_major, cc_minor;      /* cuda: compute capability (9, 0) */
    int driver_version, runtime_version, cudnn_version, cublas_version;
    lt_cuda_math math;           /* cuda; LT_CUDA_FP32 for cpu */
    int deterministic;           /* cuda; 0 for cpu */
} lt_backend_info;

/* Fills *out (zeroed first): the kind for cpu; for cuda the device's
 * properties and library versions, from the backend's module (its `info`
 * op). LT_EINVAL for NULL arguments. */
int lt_backend_get_info(const lt_backend *b, lt_backend_info *out);

/* 1 when the environment asks for the CUDA filter-gradient stream
 * (LT_CUDA_WGRAD_STREAM=1; engine/cuda/lt_cuda.h, lt_cuda_set_wgrad_stream):
 * the only reader of that variable, for lt_cuda_create and for the run
 * records (env.cuda_wgrad_stream). It changes timings, never numbers. */
int lt_cuda_wgrad_stream_from_env(void);

lt_backend_kind lt_backend_get_kind(const lt_backend *b);
/* The cpu options (a copy); LT_EINVAL for a non-cpu backend. */
int lt_backend_cpu_opts(const lt_backend *b, lt_cpu_opts *out);
/* The convolution path the backend's layers actually take, as results
 * record it ("conv_backend"): "avx512-direct+winograd" (AUTO or WINO on an
 * AVX-512 CPU), "avx512-direct" (DIRECT), "avx2-direct" (AUTO, DIRECT or
 * WINO with the AVX2 kernels: lt_conv_isa), "im2col-sgemm" (REF, or any path
 * on a CPU with neither); "cuda:N" for a cuda backend. These strings are
 * compared with finished runs' (lt_fingerprint.c): keep them. */
const char *lt_backend_describe(const lt_backend *b);

/* The process default backend: cpu, options from the environment
 * (lt_cpu_opts_from_env), made on first use and never freed. Models created
 * without a backend (lt_model_create) and convolution geometries with
 * LT_CONV_PATH_DEFAULT use it. */
lt_backend *lt_backend_default(void);

/* 1 when this CPU has AVX-512F (the fast convolution kernels need it). */
int lt_cpu_has_avx512f(void);

/* The vector kernels the direct convolution runs on (lt_conv_fast.h):
 * AVX-512 (with Winograd) where the CPU has AVX-512F, AVX2 + FMA (direct
 * only; the same sums as the AVX-512 direct kernels) where it has those but
 * not AVX-512F, none (every convolution im2col + sgemm) otherwise. */
typedef enum { LT_CONV_ISA_NONE = 0, LT_CONV_ISA_AVX2 = 1, LT_CONV_ISA_AVX512 = 2 } lt_conv_isa_kind;
lt_conv_isa_kind lt_conv_isa(void);
/* Tests: the kernels no wider than `most` from now on (LT_CONV_ISA_AVX2 runs
 * the AVX2 kernels on an AVX-512 CPU), never wider than the CPU has; -1
 * lifts the cap. Not for use while convolutions run. */
void lt_conv_isa_cap(int most);

/* ---- host memory (issue 20, C) ------------------------------------------------
 * Host buffers that feed a backend: the batch loader's slots. A cuda backend
 * gives pinned (page-locked) memory (cudaHostAlloc), which host-to-device
 * copies read asynchronously at full bus speed; LT_ENOMEM / LT_EDEVICE with
 * the reason when that fails. cpu, NULL or a device without it: 64-byte
 * aligned heap memory (lt_alloc), LT_ENOMEM naming the size. *p = NULL on
 * failure. Free with lt_backend_host_free on the same backend. */
int lt_backend_host_alloc(const lt_backend *b, void **p, size_t bytes);
void lt_backend_host_free(const lt_backend *b, void *p);   /* NULL p is fine */
/* Loader worker threads for runs on b: 1 on cpu (the trainer's OpenMP
 * threads own the cores, so CPU results and timings stay what they were),
 * the online cores (sysconf(_SC_NPROCESSORS_ONLN), at most 256) on a device. */
int lt_backend_loader_workers(const lt_backend *b);

#endif
