/* lt_run_device.c — see lt_run_device.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lt_run_device.h"

int lt_run_device_parse(const char *device, const char *math, const char *layout, int deterministic,
                        const char *conv, lt_run_device *out) {
    memset(out, 0, sizeof *out);
    out->kind = LT_BACKEND_CPU;
    out->math = LT_CUDA_FP32;
    out->layout = LT_LAYOUT_NCHW;
    if (device && device[0]) LT_TRY(lt_backend_parse_device(device, &out->kind, &out->device));
    const int cuda = out->kind == LT_BACKEND_CUDA;
    if (math && math[0]) {
        LT_TRY(lt_cuda_math_parse(math, &out->math));
        if (!cuda) return lt_err(LT_EINVAL, "math mode %s: only for a cuda device (--device cuda)", math);
    }
    if (layout && layout[0]) {
        LT_TRY(lt_layout_parse(layout, &out->layout));
        if (!cuda) return lt_err(LT_EINVAL, "layout %s: only for a cuda device (--device cuda)", layout);
    }
    if (deterministic && !cuda) return lt_err(LT_EINVAL, "deterministic: only for a cuda device (--device cuda)");
    out->deterministic = deterministic != 0;
    if (cuda && conv && conv[0])
        return lt_err(LT_EINVAL, "conv path %s: a cpu backend's option, not for device %s", conv, device);
    return LT_OK;
}

/* What the probe child writes back: one record, < PIPE_BUF. */
typedef struct {
    int32_t rc;
    lt_backend_info info;
    char msg[1024];
} probe_msg;

/* The last probe's question and answer (a sweep or a shared stage 1 asks
 * the same again). */
static int cached;
static lt_run_device cached_dev;
static probe_msg cached_ans;

static int probe_child(const lt_run_device *d, probe_msg *ans) {
    int fds[2];
    if (pipe(fds) != 0) return lt_err(LT_EIO, "device probe: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return lt_err(LT_EIO, "device probe: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        probe_msg m;
        memset(&m, 0, sizeof m);
        lt_backend *b = NULL;
        m.rc = lt_backend_cuda_create(d->device, d->math, d->deterministic, &b);
        if (!m.rc) m.rc = lt_backend_get_info(b, &m.info);
        if (m.rc) snprintf(m.msg, sizeof m.msg, "%s", lt_errmsg());
        lt_backend_free(b);
        ssize_t w = write(fds[1], &m, sizeof m);
        _exit(w == (ssize_t)sizeof m ? 0 : 1);   /* no atexit handlers of the parent */
    }
    close(fds[1]);
    size_t have = 0;
    while (have < sizeof *ans) {
        ssize_t n = read(fds[0], (char *)ans + have, sizeof *ans - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (have == sizeof *ans) return LT_OK;
    if (WIFSIGNALED(st))
        return lt_err(LT_EDEVICE, "device probe of cuda:%d crashed: signal %d (%s)", d->device, WTERMSIG(st),
                      strsignal(WTERMSIG(st)));
    return lt_err(LT_EDEVICE, "device probe of cuda:%d ended without an answer (exit status %d)", d->device,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int lt_run_device_probe(const lt_run_device *d, lt_backend_info *info) {
    memset(info, 0, sizeof *info);
    info->kind = d->kind;
    info->math = LT_CUDA_FP32;
    if (d->kind != LT_BACKEND_CUDA) return LT_OK;
    /* the layout is the model's business, not the device's: not a question */
    lt_run_device q = *d;
    q.layout = LT_LAYOUT_NCHW;
    d = &q;
    if (!cached || memcmp(&cached_dev, d, sizeof *d)) {
        probe_msg m;
        memset(&m, 0, sizeof m);
        LT_TRY(probe_child(d, &m));
        cached = 1;
        cached_dev = *d;
        cached_ans = m;
    }
    if (cached_ans.rc) return lt_err(cached_ans.rc, "%s", cached_ans.msg);
    *info = cached_ans.info;
    return LT_OK;
}

int lt_run_device_open(const lt_run_device *d, lt_backend **out) {
    *out = NULL;
    if (d->kind != LT_BACKEND_CUDA) return lt_err(LT_EINVAL, "device: the cpu backend is made by the runner");
    return lt_backend_cuda_create(d->device, d->math, d->deterministic, out);
}

/* The cuda tags, [math][layout]: the first cuda runs' names ("cuda",
 * "cuda-tf32") stay what they were, so their directories stay valid. */
static const char *const CUDA_TAG[2][2] = {{"cuda", "cuda-nhwc"}, {"cuda-tf32", "cuda-tf32-nhwc"}};

const char *lt_run_device_tag(lt_backend_kind kind, lt_cuda_math math, lt_layout layout) {
    if (kind == LT_BACKEND_CPU) return "cpu";
    if (kind == LT_BACKEND_CUDA && (math == LT_CUDA_FP32 || math == LT_CUDA_TF32) &&
        (layout == LT_LAYOUT_NCHW || layout == LT_LAYOUT_NHWC))
        return CUDA_TAG[math][layout];
    return "?";
}

int lt_run_device_tag_parse(const char *s, lt_backend_kind *kind, lt_cuda_math *math, lt_layout *layout) {
    for (int m = 0; s && m < 2; m++)
        for (int l = 0; l < 2; l++)
            if (!strcmp(s, CUDA_TAG[m][l])) {
                *kind = LT_BACKEND_CUDA;
                *math = (lt_cuda_math)m;
                *layout = (lt_layout)l;
                return LT_OK;
            }
    return lt_err(LT_EINVAL, "run directory device '%s': not cuda, cuda-tf32, cuda-nhwc or cuda-tf32-nhwc",
                  s ? s : "(none)");
}

int lt_run_device_method_dir(const lt_run_device *d, const char *method, char *buf, size_t cap) {
    const char *tag = lt_run_device_tag(d->kind, d->math, d->layout);
    int n = d->kind == LT_BACKEND_CPU ? snprintf(buf, cap, "%s", method) : snprintf(buf, cap, "%s@%s", method, tag);
    if (n < 0 || (size_t)n >= cap) return lt_err(LT_EINVAL, "run directory name of %s too long", method);
    return LT_OK;
}

void lt_run_device_identity(const lt_run_device *d, char *buf, size_t cap) {
    if (d->kind == LT_BACKEND_CPU) snprintf(buf, cap, "%s", "");
    /* the layout only when it is not NCHW: the identities of the checkpoints
     * made before it existed (all NCHW) stay what they were */
    else snprintf(buf, cap, ";backend=%s;math=%s;deterministic=%d%s", lt_backend_kind_name(d->kind),
                  lt_cuda_math_name(d->math), d->deterministic, d->layout == LT_LAYOUT_NHWC ? ";layout=nhwc" : "");
}
