/* lt_step_dev.h — the plain-data records the training step (lt_step.c)
 * shares with device code (engine/cuda/lt_cuda_step.cu): the loss
 * accumulators and the optimizer's rates, both living in device memory on a
 * cuda model, so a captured step reads and writes them without the host.
 *
 * Plain C, no CUDA type: included by lt_backend_impl.h (the device
 * functions' signatures) and by engine/cuda/lt_cuda.h. The layout is the
 * contract between the two sides; change both together, and bump
 * LT_CUDA_MODULE_ABI (lt_cuda_module.h), whose size checks do not see
 * these records. */
#ifndef LT_STEP_DEV_H
#define LT_STEP_DEV_H

#include <stdint.h>

/* What the asynchronous softmax cross-entropy accumulates over steps, in
 * the harness's arithmetic: loss_sum += loss * n with loss the batch mean in
 * double, correct += rows whose first maximum logit is the label. status is
 * sticky: the first failure is kept (its step, row, class, value) and later
 * steps still accumulate (their numbers are meaningless then, the caller
 * reports the failure). */
enum {
    LT_CE_ACC_OK = 0,
    LT_CE_ACC_LOGIT = 1,   /* a non-finite logit: row i, class j, val */
    LT_CE_ACC_LOSS = 2     /* a non-finite batch loss: val */
};
typedef struct {
    double loss_sum;
    double last_loss;      /* the last step's batch-mean loss */
    double val;            /* the failing value */
    int64_t correct, seen;
    int64_t steps;         /* steps accumulated (fail_step counts from 0) */
    int64_t fail_step;
    int32_t status, i, j, pad;
} lt_ce_acc;

/* The optimizer's rates on the device. The per-step part (the first three
 * members, uploaded before every step) and the fixed part (the groups'
 * factors and weight decays, uploaded when the stage's optimizer is set).
 * Group k's learning rate is lr for k = 0 and (float)((double)lr *
 * lr_mult[k]) otherwise, Adam's step size (float)((double)lr_k / bc1):
 * lt_optim_step's host arithmetic, so the kernels update bit for bit as the
 * host-rate kernels do. */
#define LT_STEP_MAX_GROUPS 16
typedef struct {
    float lr;              /* this step's base learning rate */
    float bc2_sqrt;        /* Adam: (float)sqrt(1 - beta2^t); 1 for SGD */
    double bc1;            /* Adam: 1 - beta1^t; 1 for SGD */
    double lr_mult[LT_STEP_MAX_GROUPS];
    float wd[LT_STEP_MAX_GROUPS];   /* group k's weight decay, as lt_optim_step computes it */
} lt_step_rates;

/* Bytes of the per-step part of lt_step_rates (lr, bc2_sqrt, bc1). */
#define LT_STEP_RATES_STEP_BYTES 16

#endif
