/* test_host_mem.c — pinned host memory of the cuda backend (issue 20, C):
 * lt_cuda_host_alloc / lt_cuda_host_free, lt_backend_host_alloc on a cuda
 * backend, and lt_loader slots in pinned memory (lt_loader_opts_for_backend)
 * giving the cpu loader's bytes and copying to the device.
 *
 * Cases:
 *   host_alloc      1 MiB pinned (the runtime says so; the heap is not),
 *                   written, copied host -> device -> host and compared; 0 bytes gives NULL; an impossible size gives
 *                   LT_ENOMEM or LT_EDEVICE with a message and NULL.
 *   backend_loader  lt_loader_opts_for_backend on cuda: every core, the
 *                   backend's allocator; two epochs of batches equal to a
 *                   default (one worker, heap) loader's bit for bit, its
 *                   slots pinned, and each batch round-trips through the
 *                   device unchanged.
 * Without a CUDA device both print a reason and call skip(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_backend_impl.h"
#include "lt_cuda.h"
#include "lt_data.h"
#include "lt_rng.h"

static lt_backend *gpu_backend(void)
{
    lt_backend *b = NULL;
    if (lt_backend_cuda_create(0, LT_CUDA_FP32, 1, &b) != LT_OK) {
        print_message("skip: no usable CUDA device: %s\n", lt_errmsg());
        return NULL;
    }
    return b;
}

static void test_host_alloc(void **state)
{
    (void)state;
    lt_backend *b = gpu_backend();
    if (!b) {
        skip();
        return;
    }
    const size_t n = (size_t)1 << 20;
    uint8_t *h = NULL, *back = malloc(n);
    void *d = NULL;
    assert_non_null(back);
    assert_int_equal(lt_cuda_host_alloc(b->ctx, (void **)&h, n), LT_OK);
    assert_non_null(h);
    /* page-locked, as the runtime sees it; the heap is not */
    assert_int_equal(lt_cuda_host_is_pinned(h), 1);
    assert_int_equal(lt_cuda_host_is_pinned(h + n / 2), 1);
    assert_int_equal(lt_cuda_host_is_pinned(back), 0);
    for (size_t i = 0; i < n; i++) h[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(lt_cuda_alloc(b->ctx, &d, n), LT_OK);
    assert_int_equal(lt_cuda_h2d(b->ctx, d, h, n), LT_OK);
    assert_int_equal(lt_cuda_d2h(b->ctx, back, d, n), LT_OK);
    assert_memory_equal(h, back, n);
    lt_cuda_free(b->ctx, d);
    lt_cuda_host_free(b->ctx, h);
    lt_cuda_host_free(b->ctx, NULL);
    void *z = (void *)1;
    assert_int_equal(lt_cuda_host_alloc(b->ctx, &z, 0), LT_OK);
    assert_null(z);
    /* through the backend: the device's allocator */
    void *p = NULL;
    assert_int_equal(lt_backend_host_alloc(b, &p, 4096), LT_OK);
    assert_non_null(p);
    memset(p, 1, 4096);
    lt_backend_host_free(b, p);
    /* far more than any host has: refused with a message, nothing sticky */
    void *huge = (void *)1;
    int rc = lt_backend_host_alloc(b, &huge, (size_t)1 << 50);
    assert_true(rc == LT_ENOMEM || rc == LT_EDEVICE);
    assert_null(huge);
    print_message("1 PiB pinned: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "cuda"));
    assert_int_equal(lt_cuda_sync(b->ctx), LT_OK);
    free(back);
    lt_backend_free(b);
}

enum { NIMG = 70, IC = 3, IH = 40, IW = 40, OH = 32, OW = 32, BATCH = 16 };

static void test_backend_loader(void **state)
{
    (void)state;
    lt_backend *b = gpu_backend();
    if (!b) {
        skip();
        return;
    }
    lt_dataset ds;
    assert_int_equal(lt_dataset_alloc(&ds, NIMG, IC, IH, IW, 3), LT_OK);
    lt_rng r;
    lt_rng_init(&r, 3, 4);
    for (size_t i = 0; i < (size_t)NIMG * IC * IH * IW; i++) ds.pixels[i] = (uint8_t)lt_rng_below(&r, 256);
    for (int i = 0; i < NIMG; i++) ds.labels[i] = i % 3;
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = OH;
    a.out_w = OW;
    a.rrc = 1;
    a.hflip = 1;
    a.jitter = 0.4f;
    for (int k = 0; k < 3; k++) a.mean[k] = 0.5f, a.std[k] = 0.25f;

    lt_loader_opts o;
    lt_loader_opts_for_backend(&o, b);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(o.workers, cores < 1 ? 1 : cores > 256 ? 256 : cores);
    assert_non_null(o.alloc);
    lt_loader *P, *H;
    assert_int_equal(lt_loader_open_opts(&P, &ds, &a, BATCH, 0, 1, 11, LT_STREAM_AUG, &o), LT_OK);
    assert_int_equal(lt_loader_open(&H, &ds, &a, BATCH, 0, 1, 11, LT_STREAM_AUG), LT_OK);
    const size_t per = (size_t)IC * OH * OW, xb = BATCH * per * sizeof(float);
    void *d = NULL;
    float *back = malloc(xb);
    assert_non_null(back);
    assert_int_equal(lt_cuda_alloc(b->ctx, &d, xb), LT_OK);
    int32_t idx[NIMG];
    lt_sampler_cfg sc = {.kind = LT_SAMPLER_INSTANCE};
    long batches = 0;
    for (int e = 0; e < 2; e++) {
        assert_int_equal(lt_sampler_epoch(&sc, e, 11, LT_STREAM_ORDER, ds.labels, NIMG, 3, idx, NIMG), LT_OK);
        assert_int_equal(lt_loader_start(P, e, idx, NIMG, 0), LT_OK);
        assert_int_equal(lt_loader_start(H, e, idx, NIMG, 0), LT_OK);
        for (;;) {
            const float *xp, *xh;
            const int32_t *yp, *yh;
            int cp, ch;
            assert_int_equal(lt_loader_next(P, &xp, &yp, NULL, &cp), LT_OK);
            assert_int_equal(lt_loader_next(H, &xh, &yh, NULL, &ch), LT_OK);
            assert_int_equal(cp, ch);
            if (!cp) break;
            assert_memory_equal(xp, xh, (size_t)cp * per * sizeof(float));
            /* the slots are pinned (not a silent fallback to the heap) */
            assert_int_equal(lt_cuda_host_is_pinned(xp), 1);
            assert_int_equal(lt_cuda_host_is_pinned(yp), 1);
            assert_int_equal(lt_cuda_host_is_pinned(xh), 0);
            assert_memory_equal(yp, yh, (size_t)cp * sizeof(int32_t));
            assert_int_equal(lt_cuda_h2d(b->ctx, d, xp, (size_t)cp * per * sizeof(float)), LT_OK);
            assert_int_equal(lt_cuda_d2h(b->ctx, back, d, (size_t)cp * per * sizeof(float)), LT_OK);
            assert_memory_equal(back, xp, (size_t)cp * per * sizeof(float));
            batches++;
        }
    }
    assert_int_equal(batches, 2 * ((NIMG + BATCH - 1) / BATCH));
    lt_loader_close(P);
    lt_loader_close(H);
    lt_cuda_free(b->ctx, d);
    free(back);
    lt_dataset_free(&ds);
    lt_backend_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_alloc),
        cmocka_unit_test(test_backend_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
