"""Small members of the CNN families torch_neuron covers, written here (torchvision is not a
dependency): each uses the layers its family is known by, at test-friendly sizes."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _cbr(i, o, k=3, s=1, g=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o),
                         act())


class BasicBlock(nn.Module):                       # ResNet
    def __init__(self, i, o, s):
        super().__init__()
        self.body = nn.Sequential(_cbr(i, o, 3, s), nn.Conv2d(o, o, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(o))
        self.down = nn.Sequential(nn.Conv2d(i, o, 1, s, bias=False), nn.BatchNorm2d(o)) \
            if s != 1 or i != o else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.down(x))


class InvertedResidual(nn.Module):                 # MobileNetV2 / V3 / EfficientNet
    def __init__(self, i, o, s, act=nn.ReLU6, se=False):
        super().__init__()
        mid = i * 4
        layers = [_cbr(i, mid, 1, act=act), _cbr(mid, mid, 3, s, g=mid, act=act)]
        if se:
            layers.append(SqueezeExcite(mid))
        layers += [nn.Conv2d(mid, o, 1, bias=False), nn.BatchNorm2d(o)]
        self.body = nn.Sequential(*layers)
        self.skip = s == 1 and i == o

    def forward(self, x):
        y = self.body(x)
        return x + y if self.skip else y


class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class Fire(nn.Module):                              # SqueezeNet
    def __init__(self, i, s, e):
        super().__init__()
        self.squeeze = nn.Conv2d(i, s, 1)
        self.e1, self.e3 = nn.Conv2d(s, e, 1), nn.Conv2d(s, e, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class ShuffleUnit(nn.Module):                       # ShuffleNet V2
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.branch = nn.Sequential(_cbr(h, h, 1), _cbr(h, h, 3, g=h, act=nn.Identity),
                                    _cbr(h, h, 1))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        y = torch.cat([a, self.branch(b)], 1)
        n, c, hh, ww = y.shape
        return y.view(n, 2, c // 2, hh, ww).transpose(1, 2).reshape(n, c, hh, ww)


class DenseLayer(nn.Module):                        # DenseNet
    def __init__(self, i, g):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(i), nn.ReLU(), nn.Conv2d(i, g, 3, padding=1))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class InceptionBlock(nn.Module):                    # Inception
    def __init__(self, i):
        super().__init__()
        self.b1 = _cbr(i, 8, 1)
        self.b3 = nn.Sequential(_cbr(i, 8, 1), _cbr(8, 8, 3))
        self.bp = nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _cbr(i, 8, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.bp(x)], 1)


def _head(c, classes=10):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


def family(name: str) -> nn.Module:
    """A small network of the named family, in eval mode, with fixed random weights."""
    torch.manual_seed(0)
    stem = _cbr(3, 16, 3, 2)
    nets = {
        "resnet": lambda: nn.Sequential(stem, nn.MaxPool2d(3, 2, 1), BasicBlock(16, 16, 1),
                                        BasicBlock(16, 32, 2), _head(32)),
        "mobilenet_v2": lambda: nn.Sequential(stem, InvertedResidual(16, 16, 1),
                                              InvertedResidual(16, 24, 2), _head(24)),
        "mobilenet_v3": lambda: nn.Sequential(_cbr(3, 16, 3, 2, act=nn.Hardswish),
                                              InvertedResidual(16, 16, 1, nn.Hardswish, se=True),
                                              _head(16)),
        "efficientnet": lambda: nn.Sequential(_cbr(3, 16, 3, 2, act=nn.SiLU),
                                              InvertedResidual(16, 16, 1, nn.SiLU, se=True),
                                              _head(16)),
        "densenet": lambda: nn.Sequential(stem, DenseLayer(16, 8), DenseLayer(24, 8),
                                          nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2),
                                          _head(32)),
        "inception": lambda: nn.Sequential(stem, nn.MaxPool2d(3, 2, ceil_mode=True),
                                           InceptionBlock(16), _head(24)),
        "vgg": lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(),
                                     nn.Dropout(), nn.Linear(32, 10)),
        "squeezenet": lambda: nn.Sequential(nn.Conv2d(3, 16, 3, 2), nn.ReLU(),
                                            nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 16),
                                            nn.Conv2d(32, 10, 1), nn.ReLU(),
                                            nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        "shufflenet": lambda: nn.Sequential(stem, ShuffleUnit(16), _head(16)),
    }
    return nets[name]().eval()


FAMILIES = ("resnet", "mobilenet_v2", "mobilenet_v3", "efficientnet", "densenet", "inception",
            "vgg", "squeezenet", "shufflenet")
