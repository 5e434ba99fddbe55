/* test_backend_load.c — the CUDA backend loaded on demand
 * (engine/lt_backend_dl.c, engine/lt_cuda_module.h): the module's search
 * and its errors, the ABI check, and, where the module was built
 * (build/libltcuda.so, `make cuda`), that it loads and its engine symbols
 * resolve from this program: without a GPU, lt_backend_cuda_create then
 * fails in the module's own device check (LT_EDEVICE "no CUDA device"); on
 * a GPU machine it makes a backend whose info this test reads.
 *
 * Linked as ./ltbench is (-rdynamic, libltengine.a whole: Makefile), and
 * NOT with libltcuda.a, so the engine's weak creator is the one called. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt.h"
#include "lt_cuda_module.h"

/* build/libltcuda.so, found as the loader finds it from build/tests/:
 * <exe dir>/../libltcuda.so. "" when it was not built. */
static void module_path(char *buf, size_t cap) {
    char exe[PATH_MAX];
    buf[0] = '\0';
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(buf, cap, "%s/../libltcuda.so", exe);
    if (access(buf, F_OK) != 0) buf[0] = '\0';
}

#define SKIP_UNLESS_MODULE(path)                                                                     \
    do {                                                                                             \
        module_path(path, sizeof path);                                                              \
        if (!path[0]) {                                                                              \
            print_message("skip: build/libltcuda.so not built (make cuda: needs nvcc, cuDNN, cuBLAS)\n"); \
            skip();                                                                                  \
            return;                                                                                  \
        }                                                                                            \
    } while (0)

/* $LTBENCH_CUDA_LIB naming nothing: LT_ENOTBUILT naming that path (and
 * only that one: an explicit choice is not replaced by another file) and
 * how to build the module. */
static void test_env_path_missing(void **st) {
    (void)st;
    setenv("LTBENCH_CUDA_LIB", "/nonexistent/dir/libltcuda.so", 1);
    lt_backend *b = (lt_backend *)&b;
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 0, &b), LT_ENOTBUILT);
    assert_null(b);
    const char *e = lt_errmsg();
    assert_non_null(strstr(e, "CUDA backend not built"));
    assert_non_null(strstr(e, "no CUDA module at /nonexistent/dir/libltcuda.so (cuda:0 requested)"));
    assert_non_null(strstr(e, "make cuda"));
    assert_null(strstr(e, "build/libltcuda.so"));
    assert_int_equal(lt_backend_cuda_create(2, LT_CUDA_TF32, 1, &b), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "cuda:2 requested"));
    unsetenv("LTBENCH_CUDA_LIB");
}

/* ---- the default search, from a copy of this program -------------------------
 * Where the loader looks depends on where the program is, so the test runs
 * copies of itself placed in a scratch directory (argv[1] = SEARCH_CASE:
 * one lt_backend_cuda_create, its status and message on stdout). */
#define SEARCH_CASE "--search-case"

static int search_case(void) {
    lt_backend *b = NULL;
    int rc = lt_backend_cuda_create(1, LT_CUDA_FP32, 0, &b);
    printf("rc=%d msg=%s\n", rc, rc ? lt_errmsg() : "");
    lt_backend_free(b);
    return 0;
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *z = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(z);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, z), n);
    fclose(a);
    assert_int_equal(fclose(z), 0);
    assert_int_equal(chmod(to, 0755), 0);
}

/* Runs exe SEARCH_CASE without LTBENCH_CUDA_LIB; its stdout into out. */
static void run_copy(const char *exe, char *out, size_t cap) {
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "env -u LTBENCH_CUDA_LIB '%s' " SEARCH_CASE, exe);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
}

/* Without the variable: <exe dir>/build/libltcuda.so, <exe dir>/libltcuda.so,
 * <exe dir>/../libltcuda.so, in that order; none there: LT_ENOTBUILT naming
 * all three. With the module at the third place, it is found and loads. */
static void test_default_search_order(void **st) {
    (void)st;
    char tmpl[] = "/tmp/ltbench_search_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char sub[PATH_MAX], exe[PATH_MAX], self[PATH_MAX], out[4096], want[4 * PATH_MAX];
    snprintf(sub, sizeof sub, "%s/bin", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(exe, sizeof exe, "%s/t", sub);
    copy_file(self, exe);
    run_copy(exe, out, sizeof out);
    snprintf(want, sizeof want, "rc=%d msg=CUDA backend not built: no CUDA module at %s/build/libltcuda.so, "
             "%s/libltcuda.so, %s/../libltcuda.so (cuda:1 requested)", LT_ENOTBUILT, sub, sub, sub);
    if (!strstr(out, want)) fail_msg("got: %s\nwant: %s", out, want);
    assert_non_null(strstr(out, "make cuda"));

    char mod[PATH_MAX], link[PATH_MAX];
    module_path(mod, sizeof mod);
    if (mod[0]) {
        /* <exe dir>/../libltcuda.so: the module loads, its device check answers */
        char real[PATH_MAX];
        assert_non_null(realpath(mod, real));
        snprintf(link, sizeof link, "%s/libltcuda.so", dir);
        assert_int_equal(symlink(real, link), 0);
        run_copy(exe, out, sizeof out);
        if (!strstr(out, "no CUDA device") && strncmp(out, "rc=0 ", 5)) fail_msg("module not found or not loaded: %s", out);
        /* an earlier place wins: a file there that is not a module is the one tried */
        char first[PATH_MAX];
        snprintf(first, sizeof first, "%s/build", sub);
        assert_int_equal(mkdir(first, 0755), 0);
        snprintf(first, sizeof first, "%s/build/libltcuda.so", sub);
        FILE *f = fopen(first, "w");
        assert_non_null(f);
        fputs("not a library\n", f);
        fclose(f);
        run_copy(exe, out, sizeof out);
        snprintf(want, sizeof want, "rc=%d msg=CUDA module %s cannot be loaded", LT_EDEVICE, first);
        if (!strstr(out, want)) fail_msg("got: %s\nwant: %s", out, want);
        unlink(first);
        snprintf(first, sizeof first, "%s/build", sub);
        rmdir(first);
        unlink(link);
    } else {
        print_message("note: build/libltcuda.so not built: only the not-found case was checked\n");
    }
    unlink(exe);
    rmdir(sub);
    rmdir(dir);
}

/* A file dlopen refuses (not a shared object): LT_EDEVICE with dlerror's
 * text, naming the file. */
static void test_not_a_library(void **st) {
    (void)st;
    char p[] = "/tmp/ltbench_fake_moduleXXXXXX";
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not an ELF file\n", 16), 16);
    close(fd);
    setenv("LTBENCH_CUDA_LIB", p, 1);
    lt_backend *b = (lt_backend *)&b;
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 0, &b), LT_EDEVICE);
    assert_null(b);
    char want[128];
    snprintf(want, sizeof want, "CUDA module %s cannot be loaded (cuda:0 requested): ", p);
    assert_non_null(strstr(lt_errmsg(), want));
    /* dlerror's own words follow (glibc: "... file too short" or "invalid ELF header") */
    assert_true(strlen(lt_errmsg()) > strlen(want));
    unsetenv("LTBENCH_CUDA_LIB");
    unlink(p);
}

/* A real shared library without the entry point (the C library itself):
 * LT_ENOTBUILT, not an ltbench module. */
static void test_library_without_entry(void **st) {
    (void)st;
    Dl_info di;
    assert_true(dladdr((void *)&strlen, &di) != 0 && di.dli_fname && di.dli_fname[0] == '/');
    setenv("LTBENCH_CUDA_LIB", di.dli_fname, 1);
    lt_backend *b = (lt_backend *)&b;
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 0, &b), LT_ENOTBUILT);
    assert_null(b);
    assert_non_null(strstr(lt_errmsg(), di.dli_fname));
    assert_non_null(strstr(lt_errmsg(), "has no lt_cuda_module_entry"));
    unsetenv("LTBENCH_CUDA_LIB");
}

/* The module refuses an engine of another ABI (version or struct sizes)
 * before touching the device: LT_ENOTBUILT "stale", the backend untouched. */
static void test_module_abi_check(void **st) {
    (void)st;
    char path[PATH_MAX];
    SKIP_UNLESS_MODULE(path);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    void *sym = dlsym(h, LT_CUDA_MODULE_ENTRY);
    assert_non_null(sym);
    lt_cuda_module_entry_fn entry;
    *(void **)&entry = sym;
    /* the module exports nothing else: its lt_backend_cuda_create stays inside */
    assert_null(dlsym(h, "lt_cuda_create"));
    lt_backend b;
    memset(&b, 0, sizeof b);
    lt_cuda_module_abi abi = lt_cuda_module_abi_here();
    abi.version++;
    assert_int_equal(entry(&abi, 0, LT_CUDA_FP32, 0, &b), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "stale CUDA module"));
    assert_non_null(strstr(lt_errmsg(), "make cuda"));
    abi = lt_cuda_module_abi_here();
    abi.model_size += 8;   /* a field added to lt_model without a version bump */
    assert_int_equal(entry(&abi, 0, LT_CUDA_FP32, 0, &b), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "stale CUDA module"));
    abi = lt_cuda_module_abi_here();
    abi.dev_layer_size += 16;   /* an entry added to the device layer table */
    assert_int_equal(entry(&abi, 0, LT_CUDA_FP32, 0, &b), LT_ENOTBUILT);
    assert_non_null(strstr(lt_errmsg(), "stale CUDA module"));
    assert_int_equal(entry(NULL, 0, LT_CUDA_FP32, 0, &b), LT_EINVAL);
    assert_int_equal(b.kind, LT_BACKEND_CPU);   /* never written */
    assert_null(b.dev);
    dlclose(h);
}

/* The module found by the default search loads and its symbols resolve
 * from this program: lt_backend_cuda_create gets as far as the module's
 * device check. No GPU here: that check answers LT_EDEVICE "no CUDA device"
 * for cuda:0 and for an index past the devices. A GPU: cuda:0 is a backend
 * (its info is test_module_device's), an index past the devices the same
 * LT_EDEVICE. */
static void test_module_loads(void **st) {
    (void)st;
    char path[PATH_MAX];
    SKIP_UNLESS_MODULE(path);
    unsetenv("LTBENCH_CUDA_LIB");
    lt_backend *b = (lt_backend *)&b;
    lt_err_clear();
    int rc = lt_backend_cuda_create(0, LT_CUDA_TF32, 1, &b);
    if (rc == LT_EDEVICE) {
        assert_null(b);
        assert_non_null(strstr(lt_errmsg(), "no CUDA device"));
        assert_non_null(strstr(lt_errmsg(), "cuda:0"));
        print_message("module loaded; no CUDA device here: %s\n", lt_errmsg());
    } else {
        /* loaded, and the module made a backend: not ENOTBUILT (not found,
         * no entry point, stale) nor any other refusal */
        if (rc != LT_OK) fail_msg("cuda:0: rc %d: %s", rc, lt_errmsg());
        assert_non_null(b);
        lt_backend_free(b);
    }
    /* an index past the devices: the same device check */
    b = (lt_backend *)&b;
    assert_int_equal(lt_backend_cuda_create(64, LT_CUDA_FP32, 0, &b), LT_EDEVICE);
    assert_null(b);
    assert_non_null(strstr(lt_errmsg(), "no CUDA device"));
}

/* A GPU: cuda:0 is a backend whose info says what it runs on, and a bad
 * math mode is the module's LT_EINVAL. Skipped without a device. */
static void test_module_device(void **st) {
    (void)st;
    char path[PATH_MAX];
    SKIP_UNLESS_MODULE(path);
    unsetenv("LTBENCH_CUDA_LIB");
    lt_backend *b = (lt_backend *)&b;
    lt_err_clear();
    int rc = lt_backend_cuda_create(0, LT_CUDA_TF32, 1, &b);
    if (rc == LT_EDEVICE && strstr(lt_errmsg(), "no CUDA device")) {
        print_message("skip: no CUDA device here (%s)\n", lt_errmsg());
        skip();
        return;
    }
    assert_int_equal(rc, LT_OK);
    assert_non_null(b);
    assert_int_equal(lt_backend_get_kind(b), LT_BACKEND_CUDA);
    assert_string_equal(lt_backend_describe(b), "cuda:0");
    lt_backend_info in;
    assert_int_equal(lt_backend_get_info(b, &in), LT_OK);
    assert_int_equal(in.kind, LT_BACKEND_CUDA);
    assert_int_equal(in.device, 0);
    assert_true(in.device_name[0] != '\0');
    assert_true(in.cc_major >= 3);
    assert_true(in.driver_version > 0 && in.runtime_version > 0);
    assert_true(in.cudnn_version >= 90000 && in.cublas_version > 0);
    assert_int_equal(in.math, LT_CUDA_TF32);
    assert_int_equal(in.deterministic, 1);
    print_message("cuda:0: %s sm_%d%d driver %d runtime %d cuDNN %d cuBLAS %d\n", in.device_name, in.cc_major,
                  in.cc_minor, in.driver_version, in.runtime_version, in.cudnn_version, in.cublas_version);
    /* a bad math mode is the module's LT_EINVAL */
    lt_backend *b2 = NULL;
    assert_int_equal(lt_backend_cuda_create(0, (lt_cuda_math)9, 0, &b2), LT_EINVAL);
    assert_null(b2);
    lt_backend_free(b);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], SEARCH_CASE)) return search_case();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_path_missing),
        cmocka_unit_test(test_default_search_order),
        cmocka_unit_test(test_not_a_library),
        cmocka_unit_test(test_library_without_entry),
        cmocka_unit_test(test_module_abi_check),
        cmocka_unit_test(test_module_loads),
        cmocka_unit_test(test_module_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
