#!/usr/bin/env python3
"""tests/gpu/ncu_summary.py NCU_CSV [TOP] -- one profiled step's kernels, summed.

NCU_CSV: the log of `ncu --profile-from-start off --metrics
gpu__time_duration.sum --csv --page raw --log-file NCU_CSV bench_gpu ...`
with LT_BENCH_PROFILE=1 (tests/bench/bench_gpu.c: one training step in the
profiler's range; tests/gpu/train.sh runs it). ncu runs the kernels one at a
time, so the sum is the step's kernel time without launch gaps or overlap.
Also reads the same for bench_gpu_torch.py (PyTorch's side: one step in
torch.cuda.profiler's range). Prints the total, the share by kind,
approximately, by name (cuDNN / cuBLAS or gemm / ltbench's own kernels /
PyTorch's own / other) and the TOP (25) kernel names by time. Standard
library only."""
import collections
import csv
import sys

UNITS = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6}


def kind(name):
    n = name.lower()
    if n.startswith("k_") or "lt_cuda" in n:
        return "ltbench's own"
    if n.startswith("at::") or "at::native" in n:
        return "PyTorch's own"
    if "cudnn" in n or "conv" in n or "wgrad" in n or "dgrad" in n or "winograd" in n or "fft" in n or "implicit" in n:
        return "cuDNN"
    if "gemm" in n or "cublas" in n:
        return "cuBLAS / gemm"
    return "other"


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: ncu_summary.py NCU_CSV [TOP]")
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(sys.argv[1], newline="") as f:
        lines = [l for l in f if not l.startswith("==")]
    rows = list(csv.reader(lines))
    hi = next((i for i, r in enumerate(rows) if "Kernel Name" in r and "gpu__time_duration.sum" in r), None)
    if hi is None:
        sys.exit("ncu_summary.py: %s: no header with 'Kernel Name' and 'gpu__time_duration.sum'" % sys.argv[1])
    hdr = rows[hi]
    ki, ti = hdr.index("Kernel Name"), hdr.index("gpu__time_duration.sum")
    scale = 1e-3   # ncu's default unit for durations: nanoseconds
    per = collections.defaultdict(lambda: [0, 0.0])
    for r in rows[hi + 1:]:
        if len(r) <= max(ki, ti):
            continue
        v = r[ti].replace(",", "")
        if v in UNITS:
            scale = UNITS[v]
            continue
        try:
            us = float(v) * scale
        except ValueError:
            continue
        name = r[ki].split("(")[0].strip()
        if name.startswith("void "):   # demangled templates: "void k<...>(...)"
            name = name[5:]
        name = name[:100] or r[ki][:100]
        per[name][0] += 1
        per[name][1] += us
    total = sum(t for _, t in per.values())
    n = sum(c for c, _ in per.values())
    if not n:
        sys.exit("ncu_summary.py: %s: no kernel rows (was the step inside the profiler's range?)" % sys.argv[1])
    print("ncu-summary: %d kernels, %.1f us of kernel time in the profiled step" % (n, total))
    kinds = collections.defaultdict(lambda: [0, 0.0])
    for name, (c, t) in per.items():
        kinds[kind(name)][0] += c
        kinds[kind(name)][1] += t
    for k, (c, t) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print("ncu-summary: %-16s %5d kernels %10.1f us %5.1f%%" % (k, c, t, 100 * t / total))
    for name, (c, t) in sorted(per.items(), key=lambda kv: -kv[1][1])[:top]:
        print("ncu-summary:   %5d x %9.1f us %5.1f%%  %s" % (c, t, 100 * t / total, name))


if __name__ == "__main__":
    main()
