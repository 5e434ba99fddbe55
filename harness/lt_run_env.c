/* lt_run_env.c — what a result depends on besides the code: the commit and
 * whether the tree was dirty, the BLAS build and kernel (summation order, so
 * the last bits), the thread count, the machine and the compiler. */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "lt.h"
#include "lt_ckpt.h"   /* lt_sha256 */
#include "lt_run_internal.h"

/* First line of a command's output into buf ("" on failure). Read-only git
 * commands only: --no-optional-locks keeps `git status` from refreshing
 * (writing) the index. */
static int first_line(const char *cmd, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int got = fgets(buf, (int)cap, p) != NULL;
    /* drain, so the command never dies of SIGPIPE and its status is real */
    char tmp[256];
    while (fgets(tmp, sizeof tmp, p)) {}
    int st = pclose(p);
    buf[strcspn(buf, "\r\n")] = 0;
    return st == 0 ? got : -1;
}

/* The work tree of the git checkout this program was built in: the one
 * holding the directory of /proc/self/exe (./ltbench at the root,
 * build/tests/ for the tests), not the working directory, which may be
 * another repository or none. 0 with the path in buf, -1 none. */
static int source_tree(char *buf, size_t cap) {
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    if (strchr(exe, '\'')) return -1;   /* quoted below */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse --show-toplevel 2>/dev/null", exe);
    if (first_line(cmd, buf, cap) != 1 || !buf[0] || strchr(buf, '\'')) return -1;
    return 0;
}

static void cpu_model(char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *c = strchr(line, ':');
        if (!c) continue;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(buf, cap, "%s", c);
        break;
    }
    fclose(f);
}

void lt_run_numerics(const lt_run_env *e, int cuda, char *buf, size_t cap) {
    /* cuda: conv_backend is the device index, where it ran, not how. A
     * dirty tree adds its diff's hash: a checkpoint made under one set of
     * uncommitted changes does not go on under another. */
    char dirty[24];
    if (e->dirty == 1 && e->diff_sha256[0]) snprintf(dirty, sizeof dirty, "1:%.16s", e->diff_sha256);
    else snprintf(dirty, sizeof dirty, "%d", e->dirty);
    snprintf(buf, cap, "threads=%d;conv=%s;blas=%s;dirty=%s", e->threads, cuda ? "cuda" : e->conv_backend, e->blas_core,
             dirty);
}

/* The folders whose sources the Makefile builds by wildcard: an untracked
 * (and not ignored) file there is part of the program as much as a changed
 * tracked one. Untracked files elsewhere (notes, logs, downloads) are not. */
#define CODE_DIRS "engine datasets harness methods"

/* Feeds everything f holds into s; -1 on a read error. */
static int hash_stream(FILE *f, lt_sha256 *s) {
    char buf[8192];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) lt_sha256_update(s, buf, got);
    return ferror(f) ? -1 : 0;
}

/* sha256 of the uncommitted code, into hex: `git diff HEAD` (binary patches
 * included, no external diff tool, no colour: the same changes give the
 * same bytes), then each untracked file of CODE_DIRS, name and content, in
 * git's order; -1 when git fails or a file cannot be read. */
static int diff_sha256(const char *top, char hex[65]) {
    char cmd[4400], path[4400];
    lt_sha256 s;
    lt_sha256_init(&s);
    snprintf(cmd, sizeof cmd,
             "git -C '%s' --no-optional-locks diff HEAD --no-ext-diff --no-color --no-textconv --binary -- . "
             "':(exclude)results' ':(exclude)plots/out' 2>/dev/null",
             top);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int rc = hash_stream(p, &s);
    if (pclose(p) != 0) rc = -1;
    if (rc) return -1;
    snprintf(cmd, sizeof cmd, "git -C '%s' ls-files --others --exclude-standard -z -- " CODE_DIRS " 2>/dev/null", top);
    if (!(p = popen(cmd, "r"))) return -1;
    char *name = NULL;
    size_t cap = 0;
    ssize_t len;
    while (!rc && (len = getdelim(&name, &cap, '\0', p)) > 0) {
        lt_sha256_update(&s, "untracked ", 10);
        lt_sha256_update(&s, name, (size_t)len);   /* with its NUL: names cannot run into contents */
        snprintf(path, sizeof path, "%s/%s", top, name);
        FILE *f = fopen(path, "rb");
        if (!f) rc = -1;
        else {
            rc = hash_stream(f, &s);
            fclose(f);
        }
    }
    free(name);
    if (pclose(p) != 0) rc = -1;
    if (rc) return -1;
    uint8_t d[32];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
    return 0;
}

void lt_run_tree_state(const char *top, char *commit, size_t cap, int *dirty, char diff[65]) {
    char line[256], cmd[4400];
    diff[0] = '\0';
    *dirty = -1;
    snprintf(commit, cap, "unknown");
    if (!top || strchr(top, '\'')) return;   /* quoted below */
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse HEAD 2>/dev/null", top);
    if (first_line(cmd, line, sizeof line) != 1 || strlen(line) < 40) return;
    snprintf(commit, cap, "%s", line);
    /* dirty = the code differs from the commit: a tracked file changed
     * (result files and figures, which every run rewrites, do not count) or
     * an untracked source the build picks up is there */
    snprintf(cmd, sizeof cmd,
             "git -C '%s' --no-optional-locks status --porcelain --untracked-files=no -- . "
             "':(exclude)results' ':(exclude)plots/out' 2>/dev/null",
             top);
    const int tracked = first_line(cmd, line, sizeof line);
    snprintf(cmd, sizeof cmd, "git -C '%s' ls-files --others --exclude-standard -- " CODE_DIRS " 2>/dev/null", top);
    const int untracked = tracked < 0 ? -1 : first_line(cmd, line, sizeof line);
    *dirty = tracked < 0 || untracked < 0 ? -1 : tracked == 1 || untracked == 1;
    if (*dirty == 1 && diff_sha256(top, diff) != 0) diff[0] = '\0';
}

void lt_run_env_capture(lt_run_env *e, int threads, const lt_backend *b, const lt_backend_info *dev) {
    memset(e, 0, sizeof *e);
    char top[4096];
    /* not a git checkout (or git missing): commit "unknown", dirty -1 */
    lt_run_tree_state(source_tree(top, sizeof top) == 0 ? top : NULL, e->commit, sizeof e->commit, &e->dirty,
                      e->diff_sha256);
    snprintf(e->blas_config, sizeof e->blas_config, "%s", openblas_get_config());
    snprintf(e->blas_core, sizeof e->blas_core, "%s", openblas_get_corename());
    if (b) {
        snprintf(e->conv_backend, sizeof e->conv_backend, "%s", lt_backend_describe(b));
        lt_backend_get_info(b, &e->dev);
    } else if (dev) {
        /* a cuda run: lt_backend_describe's string for the backend the child makes */
        e->dev = *dev;
        snprintf(e->conv_backend, sizeof e->conv_backend, "cuda:%d", dev->device);
    }
    e->threads = threads;
    e->wgrad_stream = e->dev.kind == LT_BACKEND_CUDA && lt_cuda_wgrad_stream_from_env();
    struct utsname u;
    char cpu[200];
    cpu_model(cpu, sizeof cpu);
    cpu_model(e->cpu_model, sizeof e->cpu_model);
    if (uname(&u) == 0)
        snprintf(e->machine, sizeof e->machine, "%s %s %s%s%s", u.sysname, u.release, u.machine,
                 cpu[0] ? ", " : "", cpu);
    else
        snprintf(e->machine, sizeof e->machine, "unknown%s%s", cpu[0] ? ", " : "", cpu);
#if defined(__clang__)
    snprintf(e->compiler, sizeof e->compiler, "clang %s", __VERSION__);
#elif defined(__GNUC__)
    snprintf(e->compiler, sizeof e->compiler, "gcc %s", __VERSION__);
#elif defined(__VERSION__)
    snprintf(e->compiler, sizeof e->compiler, "%s", __VERSION__);
#else
    snprintf(e->compiler, sizeof e->compiler, "unknown");
#endif
}

cJSON *lt_run_env_json(const lt_run_env *e) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "commit", e->commit);
    if (e->dirty < 0) cJSON_AddNullToObject(o, "dirty");
    else cJSON_AddBoolToObject(o, "dirty", e->dirty);
    /* which uncommitted changes: two dirty runs of one commit are the same
     * code only when these agree */
    if (e->diff_sha256[0]) cJSON_AddStringToObject(o, "dirty_diff_sha256", e->diff_sha256);
    else cJSON_AddNullToObject(o, "dirty_diff_sha256");
    cJSON_AddStringToObject(o, "blas_config", e->blas_config);
    cJSON_AddStringToObject(o, "blas_core", e->blas_core);
    cJSON_AddStringToObject(o, "conv_backend", e->conv_backend);
    cJSON_AddNumberToObject(o, "threads", e->threads);
    cJSON_AddStringToObject(o, "machine", e->machine);
    cJSON_AddStringToObject(o, "compiler", e->compiler);
    cJSON_AddStringToObject(o, "engine_version", LT_ENGINE_VERSION);
    /* added later, so older readers see the keys they know unchanged */
    cJSON_AddStringToObject(o, "cpu_model", e->cpu_model);
    /* issue 20: what the models computed on. Results without "backend"
     * were made on the cpu (lt_run_record_read reads them so). */
    cJSON_AddStringToObject(o, "backend", lt_backend_kind_name(e->dev.kind));
    if (e->dev.kind == LT_BACKEND_CUDA) {
        char cc[16];
        snprintf(cc, sizeof cc, "%d.%d", e->dev.cc_major, e->dev.cc_minor);
        cJSON_AddStringToObject(o, "gpu_name", e->dev.device_name);
        cJSON_AddStringToObject(o, "gpu_cc", cc);
        cJSON_AddNumberToObject(o, "cuda_driver", e->dev.driver_version);
        cJSON_AddNumberToObject(o, "cuda_runtime", e->dev.runtime_version);
        cJSON_AddNumberToObject(o, "cudnn", e->dev.cudnn_version);
        cJSON_AddNumberToObject(o, "cublas", e->dev.cublas_version);
        cJSON_AddStringToObject(o, "cuda_math", lt_cuda_math_name(e->dev.math));
        cJSON_AddBoolToObject(o, "cuda_deterministic", e->dev.deterministic);
        /* added with --layout: a cuda result without it ran NCHW */
        cJSON_AddStringToObject(o, "cuda_layout", lt_layout_name(e->layout));
        /* how the backward was scheduled (timings only, the same numbers):
         * recorded for the img/s it explains, never compared; absent = off */
        cJSON_AddBoolToObject(o, "cuda_wgrad_stream", e->wgrad_stream);
    }
    return o;
}

void lt_iso8601_now(char buf[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
