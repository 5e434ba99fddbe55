/* gpu_peak.c — the GPU peak table of gpu_peak.h.
 *
 * Sources (NVIDIA data sheets; TF32 halved from the "with sparsity" figure):
 *   H100 SXM5 ("NVIDIA H100 80GB HBM3"): FP32 67 TFLOPS, TF32 989 sparse
 *     -> 495 dense (NVIDIA H100 Tensor Core GPU data sheet, 2023).
 *   H100 PCIe: FP32 51, TF32 756 sparse -> 378 dense (same sheet).
 *   H100 NVL: FP32 60, TF32 835 sparse -> 417.5 dense (same sheet).
 *   H200 SXM ("NVIDIA H200"): FP32 67, TF32 989 sparse -> 495 dense (NVIDIA
 *     H200 Tensor Core GPU data sheet, 2024: the H100 SXM's compute with
 *     141 GB HBM3e).
 *   H200 NVL: FP32 60, TF32 835 sparse -> 417.5 dense (same sheet).
 * Entries with a longer key come first: "H100 PCIe" must win over "H100". */
#include "gpu_peak.h"

#include <stddef.h>
#include <string.h>

static const lt_gpu_peak TABLE[] = {
    {"H200 NVL", "NVIDIA H200 NVL", 60.0, 417.5},
    {"H200", "NVIDIA H200 SXM", 67.0, 495.0},
    {"H100 NVL", "NVIDIA H100 NVL", 60.0, 417.5},
    {"H100 PCIe", "NVIDIA H100 PCIe", 51.0, 378.0},
    {"H100", "NVIDIA H100 SXM5", 67.0, 495.0},
};

const lt_gpu_peak *lt_gpu_peak_find(const char *device_name) {
    if (!device_name) return NULL;
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
        if (strstr(device_name, TABLE[i].key)) return &TABLE[i];
    return NULL;
}

double lt_gpu_peak_tflops(const lt_gpu_peak *p, int tf32) {
    if (!p) return 0.0;
    return tf32 ? p->tf32_tflops : p->fp32_tflops;
}
