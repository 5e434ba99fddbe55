/* lt_model_st.h — a model's tensors as a safetensors file under PyTorch's
 * state_dict names, so `model.load_state_dict(safetensors.torch.load_file(f))`
 * works on the torchvision-style ResNet (tests/verify_torch/torch_resnet.py).
 *
 * Names: the engine's node names already follow PyTorch's module names
 * (conv1, bn1, layer1.0.conv2, layer2.0.downsample.1, ...); the classifier
 * node "logits" is PyTorch's "fc". Every BN (a node with running_mean and
 * running_var buffers) also gets "<node>.num_batches_tracked" (I64 scalar),
 * which the engine does not keep: the caller passes the number of training
 * steps if it knows it (it affects nothing while BN momentum is 0.1), or
 * -1 to leave it out (load_state_dict then needs strict=False).
 * Plugin layers' parameters are written one-dimensional under their own
 * names. Not part of lt.h (it needs cJSON through lt_safetensors). */
#ifndef LT_MODEL_ST_H
#define LT_MODEL_ST_H

#include "lt_model.h"
#include "lt_safetensors.h"

/* "logits.weight" -> "fc.weight"; other names unchanged. */
void lt_model_torch_name(const char *engine_name, char *out, size_t cap);

enum { LT_ST_WEIGHTS = 0,   /* parameters + buffers (+ num_batches_tracked) */
       LT_ST_GRADS = 1 };   /* parameter gradients, under the parameters' names */
int lt_model_write_st(lt_model *m, const char *path, int what, int64_t num_batches_tracked,
                      const lt_st_meta *meta, int n_meta);
/* Loads every parameter and buffer of m from a safetensors file by PyTorch
 * name (shapes must match; num_batches_tracked is ignored). LT_EDATA naming
 * the path and the tensor that is missing or of another size. */
int lt_model_read_st(lt_model *m, const char *path);

#endif
