"""DenseNet-BC shape arithmetic without torch: layers per block, growth rate, exact parameter count.

:mod:`optuna_shape.families.densenet` builds the network; these functions live here so that
sizing a design space does not import torch.

The family is DenseNet-BC (Huang et al., 2017, the CIFAR variant): a 3×3 stem convolution with
``2k`` channels, three dense blocks of ``n`` bottleneck layers (BN-ReLU-conv1×1 to ``4k`` channels,
BN-ReLU-conv3×3 to ``k`` channels, output concatenated to the input), a transition between
blocks (BN-ReLU-conv1×1 halving the channels, rounded down, then 2×2 average pooling), a final
batch norm + ReLU, global average pooling and a linear classifier. Convolutions carry no bias.

Depth counts the layers with weights, as in the paper: ``3 · 2n`` convolutions in the blocks, the
stem, two transitions and the classifier, so ``depth = 6n + 4`` (10, 16, 22, … ; 100 is the
paper's DenseNet-BC-100). Width is a multiplier of the growth rate: ``k = round(12 · width)``
(at least 1), so width 1 is the paper's ``k = 12`` and width 2 its ``k = 24``.
"""

from __future__ import annotations

import math

__all__ = [
    "DENSENET_BASE_GROWTH",
    "densenet_growth_rate",
    "densenet_layers_per_block",
    "densenet_param_count",
]

DENSENET_BASE_GROWTH = 12
"""Growth rate at width 1 (DenseNet-BC with ``k = 12``)."""


def densenet_layers_per_block(depth: int) -> int:
    """Bottleneck layers per dense block ``n`` for a DenseNet-BC of ``depth = 6n + 4``.

    Raises:
        ValueError: if ``depth`` is not of the form ``6n + 4`` with ``n >= 1``.
    """
    if isinstance(depth, bool) or int(depth) != depth or depth < 10 or (depth - 4) % 6:
        raise ValueError(
            "DenseNet-BC depth must be 6n+4 with n >= 1 (10, 16, 22, ..., 100), "
            f"got depth={depth!r}"
        )
    return (int(depth) - 4) // 6


def densenet_growth_rate(width: float) -> int:
    """Growth rate ``k = round(12 · width)``, at least 1 (halves round up).

    Raises:
        ValueError: if ``width`` is not a positive finite number.
    """
    if isinstance(width, bool) or not (
        isinstance(width, (int, float)) and math.isfinite(width) and width > 0
    ):
        raise ValueError(f"width must be a positive number, got width={width!r}")
    return max(1, math.floor(DENSENET_BASE_GROWTH * width + 0.5))


def densenet_param_count(depth: int, width: float, in_channels: int, num_classes: int) -> int:
    """Exact number of parameters of ``DenseNet(depth, width, in_channels, num_classes)``.

    Example:
        >>> densenet_param_count(100, 1.0, 3, 10)  # DenseNet-BC-100, k = 12: the paper's 0.8 M
        769162
    """
    n = densenet_layers_per_block(depth)
    k = densenet_growth_rate(width)
    c = 2 * k
    total = 9 * in_channels * c  # stem conv, no bias
    for block in range(3):
        for _ in range(n):
            total += 2 * c + c * 4 * k  # BN, conv1x1 c -> 4k
            total += 2 * 4 * k + 9 * 4 * k * k  # BN, conv3x3 4k -> k
            c += k
        if block < 2:  # transition: BN, conv1x1 c -> c // 2
            total += 2 * c + c * (c // 2)
            c //= 2
    total += 2 * c  # final batch norm
    total += c * num_classes + num_classes  # classifier
    return total
