/* lt_step.h — one whole training step of a model with softmax
 * cross-entropy as an engine object: upload the batch, forward (train
 * mode), the loss and its gradient, backward, the optimizer step, and the
 * loss / accuracy bookkeeping the harness prints per epoch.
 *
 * Why an object: on a cuda model the step runs on the model's stream
 * without waiting for the host (the batch through pinned staging into fixed
 * device buffers, the loss and the count of correct predictions
 * accumulated on the device, the learning rate read from device memory),
 * so it can be captured once as a CUDA graph and replayed every iteration
 * (one launch instead of hundreds). The host reads the accumulators once
 * per epoch or progress print (lt_step_epoch_stats).
 *
 * On a cpu model lt_step_run is exactly the harness's per-iteration
 * sequence with lt_softmax_ce (forward, zero_grad, loss, backward,
 * lt_optim_step, argmax count), bit for bit (tests/test_step.c).
 *
 * CUDA graphs (a cuda model, opts.graphs = 1): the first full batch (n = N)
 * after the step is made, or after anything the graph depends on changed
 * (the model's or optimizer's buffers moved, the batch was re-planned, a
 * node's eval mode or freezing changed, the group factors changed, the
 * context's workspace grew), runs eagerly: cuDNN chooses its algorithms
 * and the workspaces grow there. The next full batch is captured and every
 * full batch after it replays the graph; the upload happens before the
 * launch. A partial batch (n < N) always runs eagerly. What a capture
 * cannot hold makes it fail (a host copy or a wait inside the step: the
 * learned-scale cosine layer reads its scale on the host in backward; an
 * allocation): the step then runs eagerly from then on, with a one-line
 * notice in lt_step_info and capture_failures counted — never a crash. A
 * model with host layers (lt_model_n_host_nodes) is never captured: every
 * step is eager, and the notice says so from the start. 
 *
 * Not for the host: a cpu model reports a non-finite loss from lt_step_run
 * (LT_ENUM, as the harness always did); a cuda model finds it on the device
 * and lt_step_epoch_stats reports it (the step and the value), since
 * checking every step would wait for the device every step. Labels are
 * checked on the host before anything runs (LT_EINVAL). */
#ifndef LT_STEP_H
#define LT_STEP_H

#include "lt_model.h"

typedef struct lt_step lt_step;

typedef struct {
    int graphs;   /* cuda: 1 = capture the full-batch step as a CUDA graph (default), 0 = every step eager */
} lt_step_opts;

void lt_step_opts_default(lt_step_opts *o);
/* The defaults changed by the environment: LT_CUDA_GRAPH=0 turns graphs off
 * (benchmarks: graph against eager; tests). The only reader of it. */
void lt_step_opts_from_env(lt_step_opts *o);

/* A step for model m (finalized) and its optimizer o, the loss on node
 * `logits` (C outputs per row), at most N rows per step (the batch is
 * planned for N here when it is not). o must stay alive and unchanged in
 * kind while the step lives; its group factors may change (the step
 * notices). opts NULL = lt_step_opts_default. */
int lt_step_create(lt_step **s, lt_model *m, lt_optim *o, int logits, int N, int C, const lt_step_opts *opts);
/* One step on rows x [n x in_shape] with labels y [n] (host memory, may be
 * reused at return), learning rate lr. LT_EINVAL for n outside [1, N] or a
 * label outside [0, C), before anything runs. */
int lt_step_run(lt_step *s, const float *x, const int32_t *y, int n, float lr);
/* Sum of loss * rows, rows whose first maximum logit is the label, and rows,
 * over the steps since the last reset. On a cuda model this waits for the
 * device (once) and reports a non-finite logit or loss any of those steps
 * met (LT_ENUM naming the step; the sums are filled anyway). */
int lt_step_epoch_stats(lt_step *s, double *loss_sum, long *correct, long *seen);
int lt_step_reset_stats(lt_step *s);

typedef struct {
    long steps;              /* lt_step_run calls that ran */
    long eager_steps, graph_steps;
    long captures;           /* graphs captured (a recapture after a change counts again) */
    long capture_failures;
    int graphs;              /* 1 while graphs are in use (cuda, enabled, not failed) */
    char notice[400];        /* the last capture failure, or why graphs are off from the start; one line ("" if none) */
} lt_step_info;
void lt_step_get_info(const lt_step *s, lt_step_info *out);

void lt_step_free(lt_step *s);   /* NULL is fine; waits for the device */

#endif
