#!/usr/bin/python3
"""verify_torch.py DIR — the PyTorch side of `make verify-torch`.

Loads the files tests/verify_torch/verify_torch.c wrote into DIR into the
PyTorch CIFAR ResNet (tests/torch_resnet.py, shared with bench_torch.py: 3x3
conv 16 + BN + ReLU, three stages of BasicBlocks, 16/32/64 channels, stride 2
at the start of stages 2 and 3, option-A shortcuts x[:, :, ::2, ::2] zero-
padded by planes/4 channels on each side, BN eps 1e-5 momentum 0.1, global
average pool, Linear 64 -> 10; module names torchvision-style: conv1, bn1,
layer1.0.conv1, ..., fc), runs the same batch, and compares the logits, the
loss, every parameter gradient and (train mode) the updated BN running
statistics, and (eval mode) the engine's fused inference logits.

ReLU kinks: where a float64 pre-activation is within KINK (1e-5 of the
layer's largest) of zero, float32 rounding decides which side of the kink
either framework lands on, and one element landing on the other side moves
a whole BN layer's gradients by ~1e-2 (seen: ResNet-32 train, one element of
layer3.4.bn1 at -9.4e-7 in float64, +1.5e-6 in the engine). There the
reference takes the engine's side (the engine writes every ReLU's output);
the count is printed. Elsewhere the reference is plain F.relu.

Criterion per tensor: max|engine - torch| <= RTOL * max|torch| + ATOL
(a relative error against the tensor's scale: element-wise relative errors
of values near zero say nothing about float32 summation order). Printed per
tensor: max abs error, that error relative to max|torch|, and the largest
element-wise relative error among elements with |torch| >= 1e-3 max|torch|.
Exit 0 all within tolerance, 1 a mismatch, 3 torch cannot be imported."""
import json
import struct
import sys

import os

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from torch_resnet import DEPTH, ResNetCifar
except ImportError:
    print("verify-torch: skipped: python3-torch not installed (make bench-deps)")
    sys.exit(3)

RTOL = 1e-4      # float32, different summation order (Winograd, BLAS, double BN sums)
ATOL = 1e-7      # tensors that are exactly zero in both


def load_st(path):
    """A safetensors file as {name: tensor} (F32 / I64 only), without the
    safetensors package (not in Debian's python3-torch dependencies)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        b0, b1 = e["data_offsets"]
        dt = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
        buf = bytearray(data[base + b0:base + b1])
        t = torch.frombuffer(buf, dtype=dt) if len(buf) else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


KINK = 1e-5     # |pre-activation| <= KINK * max|pre-activation| of the layer: "at the kink"


class KinkReLU(nn.Module):
    """ReLU that, where the float64 pre-activation is within KINK of 0 (so
    float32 rounding decides the side), takes the engine's side (its ReLU
    output > 0). Elsewhere it is F.relu. The gradient is the chosen mask."""

    def __init__(self, name):
        super().__init__()
        self.name, self.engine, self.adopted = name, None, 0

    def forward(self, x):
        mask = x > 0
        if self.engine is not None:
            near = x.abs() <= KINK * x.abs().max()
            eng = self.engine.reshape(x.shape) > 0
            self.adopted += int((near & (eng != mask)).sum())
            mask = torch.where(near, eng, mask)
        return x * mask


class Report:
    def __init__(self, case):
        self.case, self.bad, self.worst = case, [], ("", 0.0, 0.0)

    def cmp(self, name, ours, ref):
        ours, ref = ours.double().reshape(ref.shape), ref.double()
        err = (ours - ref).abs()
        scale = ref.abs().max().item() if ref.numel() else 0.0
        mx = err.max().item() if err.numel() else 0.0
        rel = mx / scale if scale > 0 else (0.0 if mx == 0 else float("inf"))
        big = ref.abs() >= 1e-3 * scale
        erel = (err[big] / ref.abs()[big]).max().item() if scale > 0 and big.any() else 0.0
        ok = mx <= RTOL * scale + ATOL
        if name.startswith("grad.") and rel >= self.worst[2]:
            self.worst = (name, mx, rel)
        if not ok or name in ("logits", "loss", "logits_infer"):
            print("  %-4s %-40s max abs %.3e  rel %.3e  max elem rel %.3e" % ("ok" if ok else "BAD", name, mx, rel, erel))
        if not ok:
            self.bad.append(name)


def run_case(d, arch, mode):
    case = "%s_%s" % (arch, mode)
    w = load_st("%s/%s.weights.safetensors" % (d, case))
    io = load_st("%s/%s.io.safetensors" % (d, case))
    out = load_st("%s/%s.out.safetensors" % (d, case))
    torch.manual_seed(0)
    model = ResNetCifar(DEPTH[arch], io["x"].shape[1], out["logits"].shape[1], relu=KinkReLU).double()
    # Strict: every state_dict key (num_batches_tracked included) must be in
    # the file and nothing else, and shapes must agree.
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in w.items()}, strict=True)
    # The reference runs in float64: the tolerance then bounds the engine's
    # float32 error alone, not the sum of two float32 errors.
    model.train(mode == "train")
    relus = [mod for mod in model.modules() if isinstance(mod, KinkReLU)]
    for mod in relus:
        mod.engine = out["relu." + mod.name]
    x = io["x"].double()
    logits = model(x)
    loss = F.cross_entropy(logits, io["y"])
    loss.backward()
    r = Report(case)
    print("%s:" % case)
    r.cmp("logits", out["logits"], logits.detach())
    r.cmp("loss", out["loss"], loss.detach())
    if mode == "eval":
        r.cmp("logits_infer", out["logits_infer"], logits.detach())
    n_grad = 0
    for name, p in model.named_parameters():
        r.cmp("grad." + name, out["grad." + name], p.grad)
        n_grad += 1
    n_buf = 0
    if mode == "train":
        for name, b in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                continue
            r.cmp("buf." + name, out["buf." + name], b)
            n_buf += 1
    print("  %d gradients, %d running stats compared; worst gradient %s: max abs %.3e, rel %.3e; "
          "ReLU kink ties given the engine's side: %d" %
          (n_grad, n_buf, r.worst[0], r.worst[1], r.worst[2], sum(mod.adopted for mod in relus)))
    return r.bad


def main():
    d = sys.argv[1]
    archs = sys.argv[2:] or ["resnet8_cifar", "resnet32_cifar"]
    torch.set_num_threads(2)
    print("verify-torch: torch %s, tolerance max|err| <= %g * max|ref| + %g per tensor" % (torch.__version__, RTOL, ATOL))
    bad = []
    for arch in archs:
        for mode in ("train", "eval"):
            bad += ["%s_%s:%s" % (arch, mode, b) for b in run_case(d, arch, mode)]
    if bad:
        print("verify-torch: FAILED: %d tensors beyond tolerance: %s" % (len(bad), " ".join(bad[:20])))
        return 1
    print("verify-torch: ok (%s; train and eval)" % ", ".join(archs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
