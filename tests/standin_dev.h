/* standin_dev.h — a host-memory stand-in for a CUDA device, for tests that
 * check the engine's device plumbing (device models, lt_step) on any
 * machine: lt_dev_ops whose "device" memory is host memory and whose layers
 * run the CPU layers.
 *
 * The CPU convolution needs scratch, which a device model does not plan for
 * built-in layers (cuDNN brings its own workspace): the stand-in lends its
 * own (standin_scratch_for). A test that needs more (tests/test_step.c
 * records the calls made while a CUDA graph is captured) starts from
 * standin_ops_init and replaces entries. */
#ifndef LT_TEST_STANDIN_DEV_H
#define LT_TEST_STANDIN_DEV_H

#include "lt_backend_impl.h"
#include "lt_model_impl.h"

/* Fills ops with the plain stand-in: alloc (64-byte aligned, as the CPU
 * kernels' aligned loads need), free, memset0, h2d / d2h / d2d, sync,
 * ctx_free, sgd_step (lt_sgd_step), every built-in layer kind run by
 * standin_layer, and the fused BN / sum -> ReLU pairs a device table offers
 * (the CPU layers' fusion, or the two layers in turn). The rest is zero. */
void standin_ops_init(lt_dev_ops *ops);
/* A cuda-kind backend named "cuda:fake" on ops (ops must outlive it);
 * lt_backend_free() it. Fails the test when out of memory. */
lt_backend *standin_backend(const lt_dev_ops *ops);
/* Node nd's CPU forward (bwd = 0) or backward on n rows, with the lent
 * scratch in place of the model's. */
int standin_layer(lt_model *m, lt_node *nd, int n, int bwd);
/* Lends scratch enough for every layer of m at batch N (replacing any
 * earlier loan); standin_scratch_free() returns it. */
void standin_scratch_for(const lt_model *m, int N);
void standin_scratch_free(void);

#endif
