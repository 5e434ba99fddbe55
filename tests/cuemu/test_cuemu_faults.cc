/* test_cuemu_faults.cc — error paths of the CUDA library that only a
 * failing runtime or cuDNN call reaches, on the emulator's fault injection
 * (lt_cuemu_fail_call, tests/cuemu/lt_cuemu_counts.h):
 * - the filter-gradient stream (lt_cuda_set_wgrad_stream) failing at each
 *   step of its creation: an error naming the step, the setting still off,
 *   no stream, event or cuDNN handle left behind, and a retry that works;
 * - lt_cuda_create with LT_CUDA_WGRAD_STREAM=1 when that creation fails:
 *   no context, nothing left behind;
 * - a model backward whose join fails reports the join; one where a node
 *   failed first reports the node, whether the join then fails or not;
 *   and the next backward gives the gradients of a backward that never
 *   failed, bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include <cuda_runtime.h>
#include <cudnn.h>

extern "C" {
#include "lt_backend.h"
#include "lt_cuemu_counts.h"
#include "lt_model.h"
#include "lt_rng.h"
}
#include "lt_cuda.h"

namespace {

struct step {
    const char *call;
    int nth;    /* which of the creation's calls of `call` (1-based) */
    int code;
    const char *what;
};

/* side_create's calls in order (lt_cuda_core.cu) */
const step side_steps[] = {
    {"cudaStreamCreateWithFlags", 1, cudaErrorMemoryAllocation, "filter-gradient stream: create stream"},
    {"cudaEventCreateWithFlags", 1, cudaErrorMemoryAllocation, "filter-gradient stream: create event"},
    {"cudaEventCreateWithFlags", 2, cudaErrorUnknown, "filter-gradient stream: create event"},
    {"cudnnCreate", 1, CUDNN_STATUS_ALLOC_FAILED, "filter-gradient stream: create handle"},
    {"cudnnSetStream", 1, CUDNN_STATUS_INTERNAL_ERROR, "filter-gradient stream: set stream"},
};
/* how many calls of each kind the creation makes */
int side_calls(const char *call) {
    int n = 0;
    for (const step &s : side_steps)
        if (!strcmp(s.call, call) && s.nth > n) n = s.nth;
    return n;
}

lt_cuemu_live live() {
    lt_cuemu_live l;
    lt_cuemu_live_get(&l);
    return l;
}

void expect_live(const lt_cuemu_live &got, const lt_cuemu_live &want, long streams, long events, long dnn,
                 const char *when) {
    if (got.streams != want.streams + streams || got.events != want.events + events ||
        got.dnn_handles != want.dnn_handles + dnn) {
        print_message("%s: %ld streams, %ld events, %ld cuDNN handles alive; expected %ld, %ld, %ld\n", when,
                      got.streams, got.events, got.dnn_handles, want.streams + streams, want.events + events,
                      want.dnn_handles + dnn);
        fail();
    }
}

void expect_msg(const char *want, const char *when) {
    if (!strstr(lt_errmsg(), want)) {
        print_message("%s: message '%s' does not name '%s'\n", when, lt_errmsg(), want);
        fail();
    }
}

/* one convolution's dw through the context (on the side stream when on) */
std::vector<float> conv_dw(lt_cuda_ctx *ctx) {
    const int N = 2;
    lt_conv_geom g;
    assert_int_equal(lt_conv_geom_init(&g, 3, 5, 5, 4, 3, 3, 1, 1, 1), LT_OK);
    const size_t nx = (size_t)N * 3 * 25, ny = (size_t)N * 4 * g.ho * g.wo, nw = lt_conv2d_weight_count(&g);
    std::vector<float> hx(nx), hw(nw), hdy(ny), out(nw);
    for (size_t i = 0; i < nx; i++) hx[i] = (float)((int)(i % 7) - 3) / 4.0f;
    for (size_t i = 0; i < nw; i++) hw[i] = (float)((int)(i % 5) - 2) / 8.0f;
    for (size_t i = 0; i < ny; i++) hdy[i] = (float)((int)(i % 11) - 5) / 16.0f;
    float *x = NULL, *w = NULL, *dy = NULL, *dw = NULL;
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&x, nx * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&w, nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dy, ny * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dw, nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, x, hx.data(), nx * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, w, hw.data(), nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, dy, hdy.data(), ny * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_memset0(ctx, dw, nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_conv2d_backward(ctx, LT_LAYOUT_NCHW, &g, N, x, w, dy, NULL, dw, NULL, 0), LT_OK);
    assert_int_equal(lt_cuda_d2h(ctx, out.data(), dw, nw * sizeof(float)), LT_OK);   /* joins first */
    lt_cuda_free(ctx, x);
    lt_cuda_free(ctx, w);
    lt_cuda_free(ctx, dy);
    lt_cuda_free(ctx, dw);
    return out;
}

}  // namespace

/* lt_cuda_set_wgrad_stream(ctx, 1) failing at each step of the creation */
static void side_stream_creation_fails(void **state) {
    (void)state;
    unsetenv("LT_CUDA_WGRAD_STREAM");
    const lt_cuemu_live before = live();
    for (const step &s : side_steps) {
        lt_cuda_ctx *ctx = NULL;
        assert_int_equal(lt_cuda_create(&ctx, 0, LT_CUDA_FP32, 1), LT_OK);
        const std::vector<float> ref = conv_dw(ctx);
        const lt_cuemu_live l0 = live();
        const unsigned long long c0 = lt_cuemu_calls(s.call);
        assert_int_equal(lt_cuemu_fail_call(s.call, s.nth, s.code), 0);
        const int rc = lt_cuda_set_wgrad_stream(ctx, 1);
        lt_cuemu_fail_clear();
        assert_true(lt_cuemu_calls(s.call) >= c0 + (unsigned long long)s.nth);   /* the fault was reached */
        assert_int_not_equal(rc, LT_OK);
        expect_msg(s.what, s.call);
        assert_int_equal(lt_cuda_wgrad_stream(ctx), 0);
        expect_live(live(), l0, 0, 0, 0, s.what);
        /* the context goes on without the stream, and a retry makes it */
        const std::vector<float> off = conv_dw(ctx);
        assert_memory_equal(off.data(), ref.data(), ref.size() * sizeof(float));
        assert_int_equal(lt_cuda_set_wgrad_stream(ctx, 1), LT_OK);
        assert_int_equal(lt_cuda_wgrad_stream(ctx), 1);
        expect_live(live(), l0, 1, 2, 1, "after the retry");
        const std::vector<float> on = conv_dw(ctx);
        assert_memory_equal(on.data(), ref.data(), ref.size() * sizeof(float));
        lt_cuda_free_ctx(ctx);
        expect_live(live(), before, 0, 0, 0, "after lt_cuda_free_ctx");
    }
}

/* LT_CUDA_WGRAD_STREAM=1: lt_cuda_create makes the stream last; when that
 * fails, no context and nothing alive */
static void create_with_env_fails(void **state) {
    (void)state;
    setenv("LT_CUDA_WGRAD_STREAM", "1", 1);
    const lt_cuemu_live before = live();
    /* each call's count in a whole creation: the stream's calls are its last */
    const char *calls[] = {"cudaStreamCreateWithFlags", "cudaEventCreateWithFlags", "cudnnCreate", "cudnnSetStream"};
    unsigned long long total[4];
    {
        unsigned long long c0[4];
        for (int i = 0; i < 4; i++) c0[i] = lt_cuemu_calls(calls[i]);
        lt_cuda_ctx *ctx = NULL;
        assert_int_equal(lt_cuda_create(&ctx, 0, LT_CUDA_FP32, 1), LT_OK);
        assert_int_equal(lt_cuda_wgrad_stream(ctx), 1);
        for (int i = 0; i < 4; i++) total[i] = lt_cuemu_calls(calls[i]) - c0[i];
        lt_cuda_free_ctx(ctx);
        expect_live(live(), before, 0, 0, 0, "a whole creation, freed");
    }
    for (const step &s : side_steps) {
        int k = 0;
        while (strcmp(calls[k], s.call)) k++;
        const int nth = (int)total[k] - side_calls(s.call) + s.nth;
        assert_true(nth >= 1);
        assert_int_equal(lt_cuemu_fail_call(s.call, nth, s.code), 0);
        lt_cuda_ctx *ctx = (lt_cuda_ctx *)&ctx;   /* must come back NULL */
        const int rc = lt_cuda_create(&ctx, 0, LT_CUDA_FP32, 1);
        lt_cuemu_fail_clear();
        assert_int_not_equal(rc, LT_OK);
        assert_null(ctx);
        expect_msg(s.what, s.call);
        expect_live(live(), before, 0, 0, 0, s.what);
    }
    unsetenv("LT_CUDA_WGRAD_STREAM");
}

namespace {

enum { NB = 2, NC = 10 };

struct net {
    lt_backend *b = nullptr;
    lt_model *m = nullptr;
    int logits = 0;
    std::vector<float> x, dl;
};

void net_open(net &n) {
    const lt_shape in = {1, 1, 12, 12};
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 1, &n.b), LT_OK);
    assert_int_equal(lt_model_create_on(&n.m, in, n.b), LT_OK);
    const int feat = lt_resnet_backbone(n.m, "resnet8_cifar");
    assert_true(feat > 0);
    n.logits = lt_add_linear(n.m, "logits", "head", feat, NC, 1);
    assert_true(n.logits > 0);
    assert_int_equal(lt_model_finalize(n.m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(n.m, NB), LT_OK);
    assert_int_equal(lt_cuda_set_wgrad_stream((lt_cuda_ctx *)lt_model_device_ctx(n.m), 1), LT_OK);
    lt_rng g;
    lt_rng_init(&g, 11, 0);
    n.x.resize((size_t)NB * lt_shape_count(in));
    for (float &v : n.x) v = (float)lt_rng_normal(&g);
    n.dl.resize((size_t)NB * NC);
    for (float &v : n.dl) v = (float)lt_rng_normal(&g) / NC;
}

/* forward and the logits' gradient: what the backward needs */
void net_fwd(net &n) {
    lt_model_zero_grad(n.m);
    assert_int_equal(lt_model_forward(n.m, n.x.data(), NB, 1), LT_OK);
    assert_int_equal(lt_model_dout_from_host(n.m, n.logits, NB, n.dl.data()), LT_OK);
}

int net_bwd(net &n) { return lt_model_backward(n.m, NB, &n.logits, 1); }

std::vector<float> net_grads(net &n) {
    std::vector<float> all;
    for (int i = 0; i < lt_model_n_params(n.m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(n.m, i, &p), LT_OK);
        std::vector<float> g(p.count);
        assert_int_equal(lt_model_param_to_host(n.m, i, NULL, g.data()), LT_OK);
        all.insert(all.end(), g.begin(), g.end());
    }
    return all;
}

}  // namespace

/* A model backward with the filter-gradient stream on, its join failing,
 * a node failing first (its fork's record), and both. */
static void backward_join_fails(void **state) {
    (void)state;
    unsetenv("LT_CUDA_WGRAD_STREAM");
    const lt_cuemu_live before = live();
    net n;
    net_open(n);
    const char *rec = "cudaEventRecord";
    net_fwd(n);
    unsigned long long c0 = lt_cuemu_calls(rec);
    assert_int_equal(net_bwd(n), LT_OK);
    const int per = (int)(lt_cuemu_calls(rec) - c0);   /* the forks' records, then the join's */
    assert_true(per >= 3);
    const std::vector<float> ref = net_grads(n);

    /* the join alone: the backward reports it */
    net_fwd(n);
    assert_int_equal(lt_cuemu_fail_call(rec, per, cudaErrorLaunchFailure), 0);
    assert_int_not_equal(net_bwd(n), LT_OK);
    expect_msg("backward", "join fails");
    expect_msg("filter-gradient stream: join (record)", "join fails");
    lt_cuemu_fail_clear();
    net_fwd(n);
    assert_int_equal(net_bwd(n), LT_OK);
    std::vector<float> g = net_grads(n);
    assert_memory_equal(g.data(), ref.data(), ref.size() * sizeof(float));

    /* the second convolution's fork fails (the first one's work is queued
     * on the side stream), and the join after it: the node is reported */
    net_fwd(n);
    assert_int_equal(lt_cuemu_fail_call(rec, 2, cudaErrorLaunchFailure), 0);
    assert_int_equal(lt_cuemu_fail_call(rec, 3, cudaErrorUnknown), 0);
    const int rc = net_bwd(n);
    lt_cuemu_fail_clear();
    assert_int_not_equal(rc, LT_OK);
    expect_msg("backward of '", "fork and join fail");
    expect_msg("filter-gradient stream: fork (record)", "fork and join fail");
    if (strstr(lt_errmsg(), "join")) {
        print_message("fork and join fail: the join's failure replaced the node's: '%s'\n", lt_errmsg());
        fail();
    }
    /* the fork alone: the join runs (a third record: the first fork's
     * work does not outlive the backward), the node is reported */
    net_fwd(n);
    assert_int_equal(lt_cuemu_fail_call(rec, 2, cudaErrorLaunchFailure), 0);
    c0 = lt_cuemu_calls(rec);
    assert_int_not_equal(net_bwd(n), LT_OK);
    assert_int_equal(lt_cuemu_calls(rec) - c0, 3);
    lt_cuemu_fail_clear();
    expect_msg("filter-gradient stream: fork (record)", "fork fails");
    net_fwd(n);
    assert_int_equal(net_bwd(n), LT_OK);
    g = net_grads(n);
    assert_memory_equal(g.data(), ref.data(), ref.size() * sizeof(float));

    lt_model_free(n.m);
    lt_backend_free(n.b);
    expect_live(live(), before, 0, 0, 0, "after the model and backend are freed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(side_stream_creation_fails),
        cmocka_unit_test(create_with_env_fails),
        cmocka_unit_test(backward_join_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
