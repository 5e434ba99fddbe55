/* test_cuemu_step.c — issue 20's claims about the GPU training step,
 * counted on the emulated runtime (tests/cuemu/lt_cuemu_counts.h): after
 * warm-up a step is one graph launch and its batch upload, with no device
 * allocation, no wait for the device and no copy back to the host; the
 * loss and accuracy come back once, when the harness asks
 * (lt_step_epoch_stats). Also prints what an eager step costs in launches
 * (what the graph saves). ResNet-8 28x28, batch 16, SGD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_cuemu_counts.h"
#include "lt_model.h"
#include "lt_rng.h"
#include "lt_step.h"

enum { N = 16, C = 10, WARM = 3, STEPS = 5 };
static const lt_shape IN = {1, 1, 28, 28};

typedef struct {
    lt_backend *b;
    lt_model *m;
    lt_optim o;
    lt_step *s;
    float *x;
    int32_t y[N];
} rig;

static void rig_open(rig *r, int graphs) {
    memset(r, 0, sizeof *r);
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 1, &r->b), LT_OK);
    assert_int_equal(lt_model_create_on(&r->m, IN, r->b), LT_OK);
    const int feat = lt_resnet_backbone(r->m, "resnet8_cifar");
    assert_true(feat > 0);
    const int logits = lt_add_linear(r->m, "logits", "head", feat, C, 1);
    assert_true(logits > 0);
    assert_int_equal(lt_model_finalize(r->m, 7), LT_OK);
    assert_int_equal(lt_model_set_batch(r->m, N), LT_OK);
    assert_int_equal(lt_optim_init(&r->o, r->m, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    lt_step_opts so;
    lt_step_opts_default(&so);
    so.graphs = graphs;
    assert_int_equal(lt_step_create(&r->s, r->m, &r->o, logits, N, C, &so), LT_OK);
    r->x = malloc((size_t)N * lt_shape_count(IN) * sizeof(float));
    assert_non_null(r->x);
}

static void rig_steps(rig *r, int k0, int k1) {
    for (int k = k0; k < k1; k++) {
        lt_rng g;
        lt_rng_init(&g, 5, (uint64_t)k);
        for (size_t i = 0; i < (size_t)N * lt_shape_count(IN); i++) r->x[i] = (float)lt_rng_normal(&g);
        for (int i = 0; i < N; i++) r->y[i] = (int32_t)lt_rng_below(&g, C);
        assert_int_equal(lt_step_run(r->s, r->x, r->y, N, 0.05f), LT_OK);
    }
}

static void rig_close(rig *r) {
    free(r->x);
    lt_step_free(r->s);
    lt_optim_free(&r->o);
    lt_model_free(r->m);
    lt_backend_free(r->b);
}

#define D(f) ((long long)(b.f - a.f))

static void test_graph_step_traffic(void **state) {
    (void)state;
    rig r;
    rig_open(&r, 1);
    rig_steps(&r, 0, WARM);   /* eager, capture, first replay */
    lt_step_info st;
    lt_step_get_info(r.s, &st);
    assert_int_equal(st.capture_failures, 0);
    assert_int_equal(st.graphs, 1);
    lt_cuemu_counts a, b;
    lt_cuemu_counts_get(&a);
    rig_steps(&r, WARM, WARM + STEPS);
    lt_cuemu_counts_get(&b);
    print_message("note: %d graph steps: %lld graph launches, %lld eager kernels, %lld library calls, %lld mallocs, "
                  "%lld frees, %lld stream / %lld device / %lld event waits, %lld h2d, %lld d2h, %lld d2d, %lld memsets\n",
                  STEPS, D(graph_launches), D(launches), D(lib_calls), D(mallocs), D(frees), D(stream_syncs),
                  D(device_syncs), D(event_syncs), D(h2d), D(d2h), D(d2d), D(memsets));
    assert_int_equal(D(graph_launches), STEPS);
    lt_step_get_info(r.s, &st);
    assert_int_equal(st.graph_steps, WARM - 1 + STEPS);   /* all but the first, eager one */
    assert_int_equal(D(launches), 0);
    assert_int_equal(D(lib_calls), 0);
    assert_int_equal(D(mallocs) + D(frees) + D(host_allocs) + D(host_frees), 0);
    assert_int_equal(D(stream_syncs) + D(device_syncs), 0);
    assert_int_equal(D(d2h), 0);
    /* one upload a step: rows, labels and the step's learning rate cross in
     * one copy into the device staging (on the copy stream), then three
     * device copies to their buffers (on the compute stream) */
    assert_int_equal(D(h2d), STEPS);
    assert_int_equal(D(d2d), 3 * STEPS);
    /* the staging slot of two uploads ago: the only host wait */
    assert_true(D(event_syncs) <= STEPS);
    /* the epoch's numbers: one read back */
    lt_cuemu_counts_get(&a);
    double loss = 0;
    long correct = 0, seen = 0;
    assert_int_equal(lt_step_epoch_stats(r.s, &loss, &correct, &seen), LT_OK);
    lt_cuemu_counts_get(&b);
    assert_int_equal(seen, (long)N * (WARM + STEPS));
    assert_true(loss > 0);
    print_message("note: epoch stats: %lld d2h, %lld waits\n", D(d2h), D(stream_syncs) + D(device_syncs) + D(event_syncs));
    assert_true(D(d2h) >= 1 && D(d2h) <= 3);
    rig_close(&r);
}

static void test_eager_step_traffic(void **state) {
    (void)state;
    rig r;
    rig_open(&r, 0);
    rig_steps(&r, 0, 1);
    lt_cuemu_counts a, b;
    lt_cuemu_counts_get(&a);
    rig_steps(&r, 1, 1 + STEPS);
    lt_cuemu_counts_get(&b);
    print_message("note: eager step (what one graph launch replaces): %lld kernels, %lld cuDNN / cuBLAS calls, "
                  "%lld memsets, %lld d2d; %lld mallocs, %lld waits, %lld d2h\n",
                  D(launches) / STEPS, D(lib_calls) / STEPS, D(memsets) / STEPS, D(d2d) / STEPS, D(mallocs),
                  D(stream_syncs) + D(device_syncs), D(d2h));
    assert_int_equal(D(graph_launches), 0);
    assert_true(D(launches) > 0);
    /* eager too: no allocation, no wait, nothing back to the host */
    assert_int_equal(D(mallocs) + D(frees), 0);
    assert_int_equal(D(stream_syncs) + D(device_syncs), 0);
    assert_int_equal(D(d2h), 0);
    rig_close(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_step_traffic),
        cmocka_unit_test(test_eager_step_traffic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
