"""torch_resnet.py — the engine's CIFAR ResNet (engine/lt_resnet.c) in PyTorch,
shared by tests/bench/bench_torch.py (timing) and
tests/verify_torch/verify_torch.py (parity).

ResNet-(6n+2) of He et al. 2016 §4.2: 3x3 conv 16 + BN + ReLU, three stages
of n BasicBlocks with 16/32/64 channels, stride 2 at the start of stages 2
and 3, option-A shortcuts x[:, :, ::2, ::2] zero-padded by planes/4 channels
on each side, BN eps 1e-5 momentum 0.1, global average pool, Linear 64 ->
classes. Module names are torchvision-style (conv1, bn1, layer1.0.conv1,
..., fc), the names `ltbench export --format safetensors` writes.

`relu` makes each ReLU from its module name: nn.ReLU by default; the parity
check passes one that can take the engine's side at float32 kinks.
The caller imports torch first (and exits 3 when it cannot)."""
import torch.nn as nn
import torch.nn.functional as F

DEPTH = {"resnet8_cifar": 1, "resnet20_cifar": 3, "resnet32_cifar": 5, "resnet56_cifar": 9}


def plain_relu(name):
    return nn.ReLU()


class LambdaShortcut(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride, name, relu=plain_relu):
        super().__init__()
        self.relu1, self.relu2 = relu(name + ".relu1"), relu(name + ".relu2")
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            self.shortcut = LambdaShortcut(planes)

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, n, in_ch, classes=10, relu=plain_relu):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = relu("relu")
        inp = 16
        for s, planes in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(inp, planes, 2 if (s > 0 and b == 0) else 1,
                                         "layer%d.%d" % (s + 1, b), relu))
                inp = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck (engine/lt_resnet.c `bottleneck`): 1x1,
    3x3 with the stride, 1x1 to planes*4; projection 1x1 conv + BN where the
    shape changes."""
    expansion = 4

    def __init__(self, inp, planes, stride):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        sc = x if self.downsample is None else self.downsample(x)
        return self.relu(out + sc)


# blocks per stage of the ImageNet-style bottleneck ResNets (lt_resnet.c ARCHS)
BOTTLENECK_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}


class ResNetImageNet(nn.Module):
    """ResNet-50/101/152 as torchvision builds them (and lt_resnet.c: 7x7/2
    stem + BN + ReLU + 3x3/2 max pool, four bottleneck stages of 64..512
    planes, global average pool, Linear 2048 -> classes). Written out here
    so the bench needs torch only, not torchvision."""

    def __init__(self, arch, in_ch=3, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = 64
        for s, n in enumerate(BOTTLENECK_BLOCKS[arch]):
            planes = 64 << s
            blocks = []
            for b in range(n):
                blocks.append(Bottleneck(inp, planes, 2 if (s > 0 and b == 0) else 1))
                inp = planes * Bottleneck.expansion
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.fc = nn.Linear(inp, classes)

    def forward(self, x):
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)
