/* gpu_peak.h — the dense fp32 and TF32 peak of the GPU `make bench-gpu` runs
 * on, from a small table keyed by the device name the CUDA runtime reports
 * ("NVIDIA H200", "NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", ...), so the
 * bench can print the fraction of peak it reaches. Unlike the CPU (whose
 * peak tests/cpu_peak.c derives from /proc/cpuinfo), a GPU's peak is not
 * derivable from what the runtime says without a clock table per product,
 * so the figures are NVIDIA's data-sheet numbers, dense (the TF32 figures
 * NVIDIA prints are "with sparsity": half of them). Unknown GPUs get no
 * percentage rather than a guessed one. Tested in tests/test_gpu_peak.c. */
#ifndef LT_GPU_PEAK_H
#define LT_GPU_PEAK_H

typedef struct {
    const char *key;      /* a substring of the device name; first match in table order wins */
    const char *product;  /* the product the figures are for */
    double fp32_tflops;   /* CUDA-core fp32 (FMA = 2 flops) */
    double tf32_tflops;   /* TF32 tensor cores, dense */
} lt_gpu_peak;

/* The table entry for the device named `device_name` (any text containing
 * the runtime's name, e.g. lt_cuda_describe's "NVIDIA H200 (sm_90, ...)"),
 * or NULL when the GPU is not in the table (or the name is NULL). */
const lt_gpu_peak *lt_gpu_peak_find(const char *device_name);

/* The peak for a math mode: tf32 != 0 -> tf32_tflops, else fp32_tflops. */
double lt_gpu_peak_tflops(const lt_gpu_peak *p, int tf32);

#endif
