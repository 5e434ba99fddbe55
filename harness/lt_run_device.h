/* lt_run_device.h — the device a run computes on (`ltbench run --device`,
 * --math, --layout, --deterministic): the request's words checked, and the cuda
 * device probed without touching CUDA in the calling process.
 *
 * CUDA does not survive fork(): a process that initialised the driver gives
 * its forked children a broken context. The runner forks a child per run
 * (and a sweep forks many), so the calling process must never create a cuda
 * backend. lt_run_device_probe therefore creates it in a short-lived child,
 * reads back what the device is (lt_backend_info) or why there is none, and
 * the run's own child creates the backend it trains on (lt_run_device_open). */
#ifndef LT_RUN_DEVICE_H
#define LT_RUN_DEVICE_H

#include "lt.h"

/* A run's device, as the request gives it. */
typedef struct {
    lt_backend_kind kind;
    int device;            /* cuda: the index */
    lt_cuda_math math;     /* cuda: LT_CUDA_FP32 unless asked */
    lt_layout layout;      /* cuda: the model's activation layout, NCHW unless asked */
    int deterministic;     /* cuda: deterministic cuDNN algorithms */
} lt_run_device;

/* From the request's strings (NULL or "" = the default: cpu, fp32, nchw)
 * and flags. LT_EINVAL naming the choices for a word that is not one, and
 * for options that do not fit: --math, --layout or --deterministic without
 * a cuda device, --conv (the cpu backend's convolution path) with one. */
int lt_run_device_parse(const char *device, const char *math, const char *layout, int deterministic,
                        const char *conv, lt_run_device *out);

/* The cuda device's info, from a child that creates the backend (and
 * frees it) and exits: LT_OK with *info filled; the creator's status and
 * message otherwise (LT_ENOTBUILT: no CUDA module; LT_EDEVICE: "no CUDA
 * device: ..."). The answer is kept for the process: the same device asked
 * again is not probed again. cpu: *info is the cpu kind, no child. */
int lt_run_device_probe(const lt_run_device *d, lt_backend_info *info);

/* The run's backend, in the process that computes (the run's child):
 * lt_backend_cuda_create for cuda. Not for cpu (the runner makes that one
 * before forking, with its --conv options). */
int lt_run_device_open(const lt_run_device *d, lt_backend **out);

/* What a run's checkpoint identity adds for the device: "" for cpu (the
 * identities of every checkpoint so far), ";backend=cuda;math=fp32;
 * deterministic=0" for cuda, and ";layout=nhwc" after it in NHWC, so a
 * checkpoint never resumes under another math mode or layout. */
void lt_run_device_identity(const lt_run_device *d, char *buf, size_t cap);

/* The device part of a run's identity: "cpu", or for cuda "cuda" (fp32
 * math, NCHW), "cuda-tf32" (tf32 math), "cuda-nhwc" (fp32, NHWC) or
 * "cuda-tf32-nhwc"; "?" for a kind, math or layout out of range. The math
 * mode and the layout are in it because their numbers are another
 * experiment, not another build of the same one (other kernels, other
 * summation orders); the device index (where it ran) and the deterministic
 * flag (like the cpu thread count: the reuse rule's business,
 * lt_fingerprint.h) are not. It names the run directory (below) and is the
 * leaderboard's `backend` column and the figures' series suffix, so a run
 * of one math mode or layout never writes over, resumes or pools with
 * another. cpu ignores math and layout. */
const char *lt_run_device_tag(lt_backend_kind kind, lt_cuda_math math, lt_layout layout);

/* The inverse of lt_run_device_tag for the tags a run directory carries
 * after '@' (the four cuda tags; cpu directories carry none, so "cpu" is
 * not one): LT_OK with kind, math and layout, LT_EINVAL naming s otherwise. */
int lt_run_device_tag_parse(const char *s, lt_backend_kind *kind, lt_cuda_math *math, lt_layout *layout);

/* The run directory's method component: "ce" for cpu (the layout every
 * result so far has), "ce@<tag>" otherwise: "ce@cuda" for cuda fp32,
 * "ce@cuda-tf32" for cuda tf32, "ce@cuda-nhwc" / "ce@cuda-tf32-nhwc" in
 * NHWC. LT_EINVAL when it does not fit. */
int lt_run_device_method_dir(const lt_run_device *d, const char *method, char *buf, size_t cap);

#endif
