"""DenseNet-BC (Huang et al., 2017) for images, as a model family of depth × growth rate.

The architecture and the meaning of depth and width are described in
:mod:`optuna_shape.families.densenet_size`, whose :func:`densenet_param_count` gives the exact
parameter count of :class:`DenseNet` without building it.
"""

from __future__ import annotations

import torch
from torch import nn

from optuna_shape.families.densenet_size import (
    densenet_growth_rate,
    densenet_layers_per_block,
    densenet_param_count,
)
from optuna_shape.families.initialization import init_conv_net

__all__ = ["DenseNet", "densenet_param_count"]


class _Bottleneck(nn.Module):
    """BN-ReLU-conv1×1 (4k) - BN-ReLU-conv3×3 (k), output concatenated to the input."""

    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class _Transition(nn.Module):
    """BN-ReLU-conv1×1 halving the channels, then 2×2 average pooling (floor mode)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(torch.relu(self.bn(x)))
        if min(out.shape[-2:]) >= 2:  # tiny inputs (8×8 digits) keep at least 1×1
            out = nn.functional.avg_pool2d(out, 2)
        return out


class DenseNet(nn.Module):
    """A DenseNet-BC of the given shape.

    Args:
        depth: layers with weights, ``6n + 4`` (10, 16, 22, …, 100).
        width: growth-rate multiplier; the growth rate is ``round(12 · width)``, at least 1.
        in_channels: channels of the input images.
        num_classes: number of output classes.

    Example:
        >>> model = DenseNet(10, 0.5, in_channels=1, num_classes=10)
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, depth: int, width: float, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        n = densenet_layers_per_block(depth)
        k = densenet_growth_rate(width)
        if int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.depth, self.width, self.growth_rate = int(depth), float(width), k
        c = 2 * k
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for block in range(3):
            for _ in range(n):
                stages.append(_Bottleneck(c, k))
                c += k
            if block < 2:
                stages.append(_Transition(c, c // 2))
                c //= 2
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        init_conv_net(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(self.stem(x))
        out = torch.relu(self.bn(out))
        return self.fc(torch.flatten(self.pool(out), 1))
