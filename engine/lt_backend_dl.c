/* lt_backend_dl.c — the CUDA backend loaded on demand: the engine's weak
 * lt_backend_cuda_create, which dlopen()s the CUDA module
 * (build/libltcuda.so) and calls its entry point (lt_cuda_module.h).
 *
 * Why a module rather than linking libltcuda.a into ./ltbench: the program
 * then builds, links and runs on machines without the CUDA toolkit, cuDNN
 * or cuBLAS, and `--device cuda` on such a machine is a clear error at the
 * moment it is asked for, not a loader failure at start-up. Programs linked
 * with libltcuda.a (tests/gpu) never reach this file: the linker takes the
 * strong definition there (lt_backend.h). */
#include "lt_cuda_module.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The module, once loaded: never unloaded, since backends made from it
 * point into its code for as long as they live. */
static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static lt_cuda_module_entry_fn module_entry;

#define MODULE_PATH 1024
#define MODULE_CANDIDATES 3

/* The directory of the running program (/proc/self/exe, links resolved):
 * the module is looked for beside the build, not in the working directory. */
static int exe_dir(char *buf, size_t cap) {
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1) return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return -1;
    *slash = '\0';
    return 0;
}

/* The places to look, in order: $LTBENCH_CUDA_LIB alone when set and not
 * empty (an explicit choice is never silently replaced by another file);
 * else <exe dir>/build/libltcuda.so (./ltbench in the checkout),
 * <exe dir>/libltcuda.so (installed side by side), <exe dir>/../libltcuda.so
 * (build/tests/<test> finds build/libltcuda.so). */
static int candidates(char path[MODULE_CANDIDATES][MODULE_PATH]) {
    const char *env = getenv("LTBENCH_CUDA_LIB");
    if (env && *env) {
        snprintf(path[0], MODULE_PATH, "%s", env);
        return 1;
    }
    char dir[MODULE_PATH - 32];
    if (exe_dir(dir, sizeof dir) != 0) return 0;
    snprintf(path[0], MODULE_PATH, "%s/build/libltcuda.so", dir);
    snprintf(path[1], MODULE_PATH, "%s/libltcuda.so", dir);
    snprintf(path[2], MODULE_PATH, "%s/../libltcuda.so", dir);
    return 3;
}

/* Loads the module (once) and returns its entry point. Caller holds the lock. */
static int module_load(int device, lt_cuda_module_entry_fn *out) {
    if (module_entry) {
        *out = module_entry;
        return LT_OK;
    }
    char path[MODULE_CANDIDATES][MODULE_PATH];
    const int n = candidates(path);
    char tried[MODULE_CANDIDATES * (MODULE_PATH + 2)] = "";
    for (int i = 0; i < n; i++) {
        if (access(path[i], F_OK) != 0) {
            size_t len = strlen(tried);
            snprintf(tried + len, sizeof tried - len, "%s%s", i ? ", " : "", path[i]);
            continue;
        }
        /* RTLD_NOW: a symbol the module needs and the program lacks is an
         * error here, not a crash at the first kernel */
        void *h = dlopen(path[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            return lt_err(LT_EDEVICE, "CUDA module %s cannot be loaded (cuda:%d requested): %s", path[i], device,
                          e ? e : "unknown dlopen error");
        }
        void *sym = dlsym(h, LT_CUDA_MODULE_ENTRY);
        if (!sym) {
            dlclose(h);
            return lt_err(LT_ENOTBUILT, "%s has no %s: not an ltbench CUDA module, or a stale one (rebuild it: make cuda)",
                          path[i], LT_CUDA_MODULE_ENTRY);
        }
        /* POSIX: a data pointer from dlsym converts to a function pointer */
        *(void **)&module_entry = sym;
        *out = module_entry;
        return LT_OK;
    }
    if (!n)
        return lt_err(LT_ENOTBUILT, "CUDA backend not built: cannot find the program's directory (/proc/self/exe) to "
                                    "look for libltcuda.so; set LTBENCH_CUDA_LIB (cuda:%d requested)", device);
    return lt_err(LT_ENOTBUILT, "CUDA backend not built: no CUDA module at %s (cuda:%d requested); build it with "
                                "`make cuda` (needs nvcc, cuDNN and cuBLAS) or name it with LTBENCH_CUDA_LIB",
                  tried, device);
}

/* Weak: libltcuda.a's definition (engine/cuda/lt_cuda_model.c) replaces it
 * in programs linked with it. Fails where the backend is chosen, not at the
 * first kernel. */
__attribute__((weak)) int lt_backend_cuda_create(int device, lt_cuda_math math, int deterministic,
                                                 lt_backend **out) {
    if (!out) return lt_err(LT_EINVAL, "CUDA backend: NULL output");
    *out = NULL;
    lt_cuda_module_entry_fn entry = NULL;
    pthread_mutex_lock(&module_lock);
    int rc = module_load(device, &entry);
    pthread_mutex_unlock(&module_lock);
    if (rc) return rc;
    lt_backend *b = calloc(1, sizeof *b);
    if (!b) return lt_err(LT_ENOMEM, "CUDA backend: out of memory");
    const lt_cuda_module_abi abi = lt_cuda_module_abi_here();
    rc = entry(&abi, device, math, deterministic, b);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return LT_OK;
}
