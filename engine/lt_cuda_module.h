/* lt_cuda_module.h — the contract between the engine and the CUDA module
 * build/libltcuda.so (loaded on demand by lt_backend_dl.c; the idea of
 * ggml's GGML_BACKEND_DL).
 *
 * The module exports one function, LT_CUDA_MODULE_ENTRY. The engine calls
 * it with the ABI it was built with and a zeroed backend object; the module
 * checks the ABI against its own and fills the object's cuda part (device
 * functions, context, math mode, deterministic flag, "cuda:N").
 *
 * The module's code uses the engine's structs (lt_backend, lt_dev_ops, the
 * model and node layouts) directly, so a module built from other engine
 * sources than the program would read fields at the wrong offsets. The ABI
 * is therefore a version number, bumped by hand when a field's meaning
 * changes, plus the sizes of those structs, which change by themselves when
 * a field is added or removed. Any difference: the module refuses with
 * LT_ENOTBUILT ("stale ... rebuild it: make cuda"). */
#ifndef LT_CUDA_MODULE_H
#define LT_CUDA_MODULE_H

#include "lt_backend_impl.h"

#define LT_CUDA_MODULE_ABI 4   /* 2: lt_dev_layer's fused BN / sum -> ReLU entries; 3: NHWC (layout_convert, lt_dev_layer.nhwc, the model's layout); 4: lt_dev_ops.join */
#define LT_CUDA_MODULE_ENTRY "lt_cuda_module_entry"

typedef struct {
    uint32_t version;            /* LT_CUDA_MODULE_ABI */
    uint32_t backend_size, dev_ops_size, model_size, node_size, layer_kinds, dev_layer_size;
} lt_cuda_module_abi;

/* This compilation unit's ABI (the engine's, or the module's). */
static inline lt_cuda_module_abi lt_cuda_module_abi_here(void) {
    lt_cuda_module_abi a = {LT_CUDA_MODULE_ABI, (uint32_t)sizeof(lt_backend), (uint32_t)sizeof(lt_dev_ops),
                            (uint32_t)sizeof(lt_model), (uint32_t)sizeof(lt_node), (uint32_t)LT_LK_COUNT,
                            (uint32_t)sizeof(lt_dev_layer)};
    return a;
}

/* The entry point: LT_OK with *out filled; LT_ENOTBUILT when *abi is not the
 * module's; lt_backend_cuda_create's errors otherwise (LT_EDEVICE "no CUDA
 * device: ...", LT_EINVAL, LT_ENOMEM), *out untouched then. */
typedef int (*lt_cuda_module_entry_fn)(const lt_cuda_module_abi *abi, int device, lt_cuda_math math,
                                       int deterministic, lt_backend *out);
int lt_cuda_module_entry(const lt_cuda_module_abi *abi, int device, lt_cuda_math math, int deterministic,
                         lt_backend *out);

#endif
