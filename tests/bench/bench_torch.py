#!/usr/bin/python3
"""bench_torch.py — the PyTorch side of `make bench` (see /work/shared/specs/perf.md §3).

CIFAR ResNet-(6n+2) with option-A shortcuts (He et al. 2016 §4.2), random
N(0,1) inputs with fixed random labels, batch 128, fp32, NCHW. A training step
is zero_grad(set_to_none), forward, CrossEntropyLoss, backward and
SGD(lr 0.1, momentum 0.9, weight decay 1e-4).step(); eval is model.eval()
under no_grad. 5 warm-up steps, then `steps` timed ones.

Usage: bench_torch.py ARCH C HW THREADS STEPS
Prints one line: "torch <train step seconds, comma separated> <eval forward seconds, ...>".
Exit status 3 when torch cannot be imported (the caller then skips it)."""
import sys
import time

import os

try:
    import torch
    import torch.nn as nn
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from torch_resnet import DEPTH, ResNetCifar
except ImportError:
    sys.exit(3)


def main():
    arch, c, hw, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    n = DEPTH[arch]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    N = 128
    model = ResNetCifar(n, c)
    x = torch.randn(N, c, hw, hw)
    y = torch.randint(0, 10, (N,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    crit = nn.CrossEntropyLoss()
    model.train()
    train = []
    for s in range(5 + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        if s >= 5:
            train.append(time.perf_counter() - t0)
    model.eval()
    ev = []
    with torch.no_grad():
        for s in range(5 + steps):
            t0 = time.perf_counter()
            model(x)
            if s >= 5:
                ev.append(time.perf_counter() - t0)
    print("torch", ",".join("%.6f" % t for t in train), ",".join("%.6f" % t for t in ev))


if __name__ == "__main__":
    main()
