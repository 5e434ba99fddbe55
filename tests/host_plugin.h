/* host_plugin.h — a test plugin layer without CUDA code, for the tests of a
 * device model's host layers (engine/lt_model_host.c): it reaches every
 * buffer a layer can (its inputs, one or two; its output, saved floats of
 * both kinds, two parameters, two buffers, the shared scratch, the batch's
 * labels), so a host mirror missed or copied the wrong way changes a
 * number.
 *
 * For input x0 (and x1 when it has two inputs; the same node twice is
 * allowed), per channel c with mean m_c of x0 over the batch's positions:
 *   y = w_c x0 + b_c (1 + 0.001 m_c) [+ x1] [+ 0.01 label_n in a training
 *       forward given labels]
 * A training forward (not in eval mode) moves the buffer `run` halfway to
 * m; every forward adds 1 to the buffer `calls`. Backward (m_c and the
 * labels constants of the gradient): dx0 = w dy, dx1 = dy, dw = sum dy x0
 * (x0 from the saved floats), db = sum dy (1 + 0.001 m_c) (m_c from the
 * saved fixed part). Flags: LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y, so a
 * ReLU after it works in place over its output. */
#ifndef LT_TEST_HOST_PLUGIN_H
#define LT_TEST_HOST_PLUGIN_H

#include "lt_model.h"

/* Adds the layer on in0 (and in1; -1: none); its index or a negative status. */
int hp_add(lt_model *m, const char *name, int in0, int in1);
/* A ReLU without CUDA code whose backward reads its output:
 * LT_LAYER_IN_PLACE | LT_LAYER_SETS_DX (in place after a layer with
 * LT_LAYER_BWD_NO_Y that feeds nothing else). */
int hp_add_relu(lt_model *m, const char *name, int in);
/* A test's predicate: 1 when p lies in device memory. Set, every pointer
 * the layer's forward and backward get (inputs, output, gradients,
 * parameters, buffers, saved floats, scratch, labels) is checked with it
 * and hp_device_pointers() counts those it called device memory: a host
 * layer must see host mirrors only. NULL: no check. */
void hp_set_device_check(int (*is_device)(const void *p));
long hp_device_pointers(void);
/* 1: the layer's next forwards fail (LT_EINVAL, "host plugin: told to fail") */
void hp_set_fail(int fail);
/* The table with forward_cuda set and backward_cuda not (a device model
 * must fail its backward, naming the layer); the forward_cuda is never
 * meant to run on a real device: it is the CPU forward. */
int hp_add_cuda_fwd_only(lt_model *m, const char *name, int in0);

#endif
