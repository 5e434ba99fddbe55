/* test_cuemu_wgrad.cc — the filter-gradient stream's joins, one call at a
 * time, on the emulator (lt_cuda_set_wgrad_stream: a convolution's dw is
 * queued on a second stream and complete only after a join). Each library
 * call that documents a join (memset0, the copies, sync, and the graph
 * calls) runs right after a convolution's backward with nothing else in
 * between, so a missing join shows as a stale or overwritten dw (the
 * emulator's streams are independent; lt_cuemu_peek reads device memory
 * without waiting). test_train_cuda's wgrad_stream only reaches these
 * through a model's backward, which joins at its end anyway. Also: the
 * switch is refused (LT_ESTATE) while the stream is captured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cmath>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "lt_cuda.h"
#include "lt_cuemu.h"

namespace {

struct rig {
    lt_cuda_ctx *ctx = nullptr;
    lt_conv_geom g;
    int N = 2;
    size_t nx = 0, nw = 0, ny = 0;
    float *x = nullptr, *w = nullptr, *dy = nullptr, *dw = nullptr, *dw2 = nullptr;
    std::vector<float> hx, ref;
};

float val(size_t i, int salt) { return (float)((int)((i * 2654435761u + (unsigned)salt * 97u) % 17u) - 8) / 8.0f; }

void up(rig &r, float *d, size_t n, int salt, std::vector<float> *keep = nullptr) {
    std::vector<float> h(n);
    for (size_t i = 0; i < n; i++) h[i] = val(i, salt);
    assert_int_equal(lt_cuda_h2d(r.ctx, d, h.data(), n * sizeof(float)), LT_OK);
    if (keep) *keep = h;
}

std::vector<float> down(rig &r, const float *d, size_t n) {
    std::vector<float> h(n);
    assert_int_equal(lt_cuda_d2h(r.ctx, h.data(), d, n * sizeof(float)), LT_OK);
    return h;
}

void open(rig &r) {
    assert_int_equal(lt_cuda_create(&r.ctx, 0, LT_CUDA_FP32, 1), LT_OK);
    assert_int_equal(lt_conv_geom_init(&r.g, 4, 6, 6, 8, 3, 3, 1, 1, 1), LT_OK);
    r.nx = (size_t)r.N * 4 * 36;
    r.ny = (size_t)r.N * 8 * r.g.ho * r.g.wo;
    r.nw = lt_conv2d_weight_count(&r.g);
    assert_int_equal(lt_cuda_alloc(r.ctx, (void **)&r.x, r.nx * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(r.ctx, (void **)&r.w, r.nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(r.ctx, (void **)&r.dy, r.ny * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(r.ctx, (void **)&r.dw, r.nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(r.ctx, (void **)&r.dw2, r.nw * sizeof(float)), LT_OK);
    up(r, r.x, r.nx, 1, &r.hx);
    up(r, r.w, r.nw, 2);
    up(r, r.dy, r.ny, 3);
    /* the reference: one stream */
    assert_int_equal(lt_cuda_memset0(r.ctx, r.dw, r.nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_conv2d_backward(r.ctx, LT_LAYOUT_NCHW, &r.g, r.N, r.x, r.w, r.dy, NULL, r.dw, NULL, 0),
                     LT_OK);
    r.ref = down(r, r.dw, r.nw);
    int nonzero = 0, finite = 1;   /* NaN != 0 would count, and expect() passes NaNs in the same bits */
    for (float v : r.ref) {
        nonzero |= v != 0.0f;
        finite &= std::isfinite(v);
    }
    assert_true(finite);
    assert_true(nonzero);
    assert_int_equal(lt_cuda_set_wgrad_stream(r.ctx, 1), LT_OK);
}

void close(rig &r) {
    lt_cuda_free(r.ctx, r.x);
    lt_cuda_free(r.ctx, r.w);
    lt_cuda_free(r.ctx, r.dy);
    lt_cuda_free(r.ctx, r.dw);
    lt_cuda_free(r.ctx, r.dw2);
    lt_cuda_free_ctx(r.ctx);
}

/* dw = 0, then dw += the filter gradient on the side stream (not joined) */
void wgrad(rig &r) {
    assert_int_equal(lt_cuda_memset0(r.ctx, r.dw, r.nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_conv2d_backward(r.ctx, LT_LAYOUT_NCHW, &r.g, r.N, r.x, r.w, r.dy, NULL, r.dw, NULL, 0),
                     LT_OK);
}

void expect(const std::vector<float> &got, const std::vector<float> &want, const char *what) {
    assert_int_equal(got.size(), want.size());
    if (memcmp(got.data(), want.data(), got.size() * sizeof(float))) {
        print_message("%s: dw differs (first value %g, expected %g)\n", what, (double)got[0], (double)want[0]);
        fail();
    }
}

}  // namespace

static void joins_of_memset_and_copies(void **state) {
    (void)state;
    rig r;
    open(r);
    const std::vector<float> zeros(r.nw, 0.0f);
    /* d2h */
    wgrad(r);
    expect(down(r, r.dw, r.nw), r.ref, "d2h");
    /* memset0 overwrites dw only after the filter gradient was added */
    wgrad(r);
    assert_int_equal(lt_cuda_memset0(r.ctx, r.dw, r.nw * sizeof(float)), LT_OK);
    expect(down(r, r.dw, r.nw), zeros, "memset0");
    /* d2d reads the complete dw */
    wgrad(r);
    assert_int_equal(lt_cuda_d2d(r.ctx, r.dw2, r.dw, r.nw * sizeof(float)), LT_OK);
    expect(down(r, r.dw2, r.nw), r.ref, "d2d");
    /* h2d overwrites x only after the filter gradient read it */
    wgrad(r);
    up(r, r.x, r.nx, 9);
    expect(down(r, r.dw, r.nw), r.ref, "h2d");
    assert_int_equal(lt_cuda_h2d(r.ctx, r.x, r.hx.data(), r.nx * sizeof(float)), LT_OK);
    /* sync: after it the host may read what the stream wrote */
    wgrad(r);
    assert_int_equal(lt_cuda_sync(r.ctx), LT_OK);
    std::vector<float> peek(r.nw);
    lt_cuemu_peek(peek.data(), r.dw, r.nw * sizeof(float));
    expect(peek, r.ref, "sync");
    close(r);
}

/* A capture begun, and a graph launched, with filter-gradient work still
 * queued (a direct lt_cuda_conv2d_backward, no model backward to join it). */
static void joins_of_graph_calls(void **state) {
    (void)state;
    rig r;
    open(r);
    const std::vector<float> zeros(r.nw, 0.0f);
    /* begin: a join inside the capture would make it wait for uncaptured work */
    wgrad(r);
    assert_int_equal(lt_cuda_graph_begin(r.ctx), LT_OK);
    const int in = lt_cuda_memset0(r.ctx, r.dw2, r.nw * sizeof(float));
    void *exec = NULL;
    const int end = lt_cuda_graph_end(r.ctx, &exec);
    assert_int_equal(in, LT_OK);
    assert_int_equal(end, LT_OK);
    expect(down(r, r.dw, r.nw), r.ref, "graph begin");
    lt_cuda_graph_free(r.ctx, exec);
    /* launch: a graph that zeroes dw, launched after the filter gradient */
    exec = NULL;
    assert_int_equal(lt_cuda_graph_begin(r.ctx), LT_OK);
    assert_int_equal(lt_cuda_memset0(r.ctx, r.dw, r.nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_graph_end(r.ctx, &exec), LT_OK);
    wgrad(r);
    assert_int_equal(lt_cuda_graph_launch(r.ctx, exec), LT_OK);
    expect(down(r, r.dw, r.nw), zeros, "graph launch");
    lt_cuda_graph_free(r.ctx, exec);
    /* no switch while the stream is captured (the graph would hold one
     * structure, the context say another) */
    assert_int_equal(lt_cuda_graph_begin(r.ctx), LT_OK);
    const int sw = lt_cuda_set_wgrad_stream(r.ctx, 0);
    assert_int_equal(lt_cuda_graph_end(r.ctx, &exec), LT_OK);
    lt_cuda_graph_free(r.ctx, exec);
    assert_int_equal(sw, LT_ESTATE);
    assert_int_equal(lt_cuda_wgrad_stream(r.ctx), 1);
    close(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(joins_of_memset_and_copies),
        cmocka_unit_test(joins_of_graph_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
