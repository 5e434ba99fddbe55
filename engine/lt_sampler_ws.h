/* lt_sampler_ws.h — lt_sampler_epoch with working memory kept across calls
 * (engine-internal: the drawer's list samplers).
 *
 * Why: lt_sampler_epoch allocates its per-class member lists on every call.
 * The runner calls it between epochs, but the drawer's list samplers turn
 * their epoch over inside a training step (an extra batch that crosses into
 * the next epoch), and the training loop allocates nothing
 * (tests/test_alloc_steps.c). With a workspace the arrays are allocated on
 * the first call and grown only when n or the class count grows; the draws
 * are lt_sampler_epoch's, bit for bit. */
#ifndef LT_SAMPLER_WS_H
#define LT_SAMPLER_WS_H

#include "lt_data.h"

typedef struct lt_sampler_ws lt_sampler_ws;

int lt_sampler_ws_create(lt_sampler_ws **out);
void lt_sampler_ws_free(lt_sampler_ws *ws);   /* NULL: nothing */

/* lt_sampler_epoch (lt_data.h), its working memory in ws */
int lt_sampler_epoch_ws(lt_sampler_ws *ws, const lt_sampler_cfg *cfg, int epoch, uint64_t seed, uint64_t stream,
                        const int32_t *labels, long n, int n_classes, int32_t *out, long n_out);

#endif
