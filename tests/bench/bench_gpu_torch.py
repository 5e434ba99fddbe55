#!/usr/bin/env python3
"""bench_gpu_torch.py — the PyTorch side of `make bench-gpu` (tests/bench/bench_gpu.c).

The engine's models in PyTorch eager (tests/torch_resnet.py): CIFAR
ResNet-8/32 with option-A shortcuts (NCHW), ResNet-50 torchvision v1.5
(channels_last, as PyTorch recommends for convolutions on tensor cores).
A training step is: upload the host batch (pinned, non_blocking, as a
DataLoader with pin_memory=True does), zero_grad(set_to_none),
forward, CrossEntropyLoss, backward, SGD(lr 1e-3, momentum 0.9, weight
decay 5e-4).step(); eval is model.eval() under no_grad with the same
upload. cudnn.benchmark on (it picks algorithms in the warm-up), cudnn
deterministic off. Math mode per run: fp32 sets
torch.backends.cuda.matmul.fp32_precision = torch.backends.cudnn.conv.
fp32_precision = "ieee", tf32 sets both "tf32" (PyTorch >= 2.9; older ones:
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 =
False / True).

Timing as bench_gpu.c: W warm-up steps, one timed step for the count that
fills --seconds (at least 5), then that many steps between two
torch.cuda.synchronize() calls. img/s = steps x batch / seconds.
LT_BENCH_PROFILE=1: one more training step after the count step inside
the profiler's range (torch.cuda.profiler.start / stop), as bench_gpu.c
does, for `ncu --profile-from-start off` (tests/gpu/train.sh).

Usage: bench_gpu_torch.py [--seconds S] [--warmup W] [--modes fp32,tf32]
                          [--device cuda|cpu] ARCH:C:HW:BATCH:CLASSES ...
Prints "torch-info <versions and device>" once, then per (model, mode):
  "torch <arch> <mode> train <img/s> eval <img/s> steps <train steps> <eval steps>".
--device cpu only checks the script where there is no GPU (no numbers to compare).
Exit 3: torch cannot be imported; 4: no CUDA device; 2: usage."""
import argparse
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.exit(3)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_resnet import BOTTLENECK_BLOCKS, DEPTH, ResNetCifar, ResNetImageNet  # noqa: E402

MIN_STEPS, MAX_STEPS = 5, 5000


def build(arch, c, classes):
    if arch in DEPTH:
        return ResNetCifar(DEPTH[arch], c, classes), False
    if arch in BOTTLENECK_BLOCKS:
        return ResNetImageNet(arch, c, classes), True
    raise SystemExit("bench_gpu_torch.py: unknown architecture %s" % arch)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step, dev, warm, secs, batch, profile=False):
    for _ in range(warm):
        step()
    sync(dev)
    t0 = time.perf_counter()
    step()
    sync(dev)
    t1 = time.perf_counter() - t0
    if profile and dev.type == "cuda":
        # one more step inside the profiler's range (cudaProfilerStart /
        # Stop), as bench_gpu.c does with LT_BENCH_PROFILE=1, for
        # `ncu --profile-from-start off` (tests/gpu/train.sh)
        torch.cuda.profiler.start()
        step()
        sync(dev)
        torch.cuda.profiler.stop()
        print("torch-profile: one training step in the profiler's range", flush=True)
    n = max(MIN_STEPS, min(MAX_STEPS, int(math.ceil(secs / t1)) if t1 > 0 else MAX_STEPS))
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(dev)
    dt = time.perf_counter() - t0
    return n * batch / dt, n


def new_math_api():
    # PyTorch 2.9 added fp32_precision ("ieee" / "tf32") and deprecated allow_tf32
    # (torch 1.x's matmul object raises AssertionError for unknown names)
    try:
        return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv")
    except (AssertionError, AttributeError):
        return False


def set_math(tf32):
    """TF32 tensor cores in matrix products and cuDNN convolutions, or IEEE fp32."""
    if new_math_api():
        torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if tf32 else "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def bench(spec, mode, dev, warm, secs):
    arch, c, hw, batch, classes = spec.split(":")
    c, hw, batch, classes = int(c), int(hw), int(batch), int(classes)
    set_math(mode == "tf32")
    torch.manual_seed(0)
    model, channels_last = build(arch, c, classes)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(dev, memory_format=fmt)
    x_host = torch.randn(batch, c, hw, hw).contiguous(memory_format=fmt)
    y_host = torch.randint(0, classes, (batch,))
    # pinned host batches and asynchronous copies, as a DataLoader with
    # pin_memory=True feeds a training loop (and as ltbench stages its batch)
    pinned = dev.type == "cuda"
    if pinned:
        x_host, y_host = x_host.pin_memory(), y_host.pin_memory()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()

    def train_step():
        x = x_host.to(dev, non_blocking=pinned)
        y = y_host.to(dev, non_blocking=pinned)
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()

    def eval_step():
        with torch.no_grad():
            model(x_host.to(dev, non_blocking=pinned))

    model.train()
    tr, ntr = time_steps(train_step, dev, warm, secs, batch, os.environ.get("LT_BENCH_PROFILE") == "1")
    model.eval()
    ev, nev = time_steps(eval_step, dev, warm, secs, batch)
    print("torch %s %s train %.3f eval %.3f steps %d %d" % (arch, mode, tr, ev, ntr, nev), flush=True)
    del model, opt, x_host, y_host
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description="PyTorch side of make bench-gpu")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--modes", default="fp32,tf32")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("specs", nargs="+", metavar="ARCH:C:HW:BATCH:CLASSES")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    if any(m not in ("fp32", "tf32") for m in modes) or a.seconds <= 0 or a.warmup < 1:
        ap.error("modes are fp32 and tf32; seconds > 0; warmup >= 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu_torch.py: torch %s sees no CUDA device" % torch.__version__, flush=True)
        sys.exit(4)
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = False
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    cudnn = torch.backends.cudnn.version() if dev.type == "cuda" else None
    print("torch-info torch %s, CUDA %s, cuDNN %s, device %s, eager, math mode via %s" %
          (torch.__version__, torch.version.cuda, cudnn, name,
           "fp32_precision" if new_math_api() else "allow_tf32"), flush=True)
    for spec in a.specs:
        for mode in modes:
            bench(spec, mode, dev, a.warmup, a.seconds)


if __name__ == "__main__":
    main()
