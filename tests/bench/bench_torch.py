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

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)


class LambdaShortcut(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            self.shortcut = LambdaShortcut(planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, n, in_ch, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, inp = [], 16
        for s, planes in enumerate((16, 32, 64)):
            for b in range(n):
                layers.append(BasicBlock(inp, planes, 2 if (s > 0 and b == 0) else 1))
                inp = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def main():
    arch, c, hw, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    n = {"resnet8_cifar": 1, "resnet20_cifar": 3, "resnet32_cifar": 5, "resnet56_cifar": 9}[arch]
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
