"""Wide residual networks (Zagoruyko & Komodakis, 2016), the family the paper tunes.

A WRN of depth ``d = 6n + 4`` has a 3×3 stem convolution with 16 channels, three groups of ``n``
pre-activation basic blocks with ``16w``, ``32w`` and ``64w`` channels (strides 1, 2, 2), a final
batch norm + ReLU, global average pooling and a linear classifier. A block whose input and output
channels or stride differ has a 1×1 shortcut convolution. Convolutions carry no bias.

:func:`wrn_param_count` gives the exact parameter count of :class:`WideResNet` analytically,
without building it (paper §3.5: size is linear in depth and quadratic in width).
"""

from __future__ import annotations

import torch
from torch import nn

from optuna_shape.families.initialization import init_conv_net
from optuna_shape.families.wrn_size import wrn_blocks_per_group, wrn_channels, wrn_param_count

__all__ = ["WideResNet", "wrn_channels", "wrn_param_count", "wrn_blocks_per_group"]


class _BasicBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3×3-BN-ReLU-conv3×3 plus shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if c_in != c_out or stride != 1:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class WideResNet(nn.Module):
    """A pre-activation wide ResNet of the given shape.

    Args:
        depth: number of conv layers, ``6n + 4`` (10, 16, 22, ...).
        width: width multiplier; group channels are ``round(16w), round(32w), round(64w)``.
        in_channels: channels of the input images (1 for digits/MNIST, 3 for CIFAR).
        num_classes: number of output classes.

    Example:
        >>> model = WideResNet(10, 0.5, in_channels=1, num_classes=10)
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, depth: int, width: float, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        n = wrn_blocks_per_group(depth)
        channels = wrn_channels(width)
        if int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.depth, self.width = int(depth), float(width)
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        c_in = 16
        for group, c_out in enumerate(channels):
            for i in range(n):
                stride = 2 if (group > 0 and i == 0) else 1
                blocks.append(_BasicBlock(c_in if i == 0 else c_out, c_out, stride))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c_in)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_conv_net(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = torch.relu(self.bn(out))
        return self.fc(torch.flatten(self.pool(out), 1))
