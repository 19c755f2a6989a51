"""Wide-ResNet shape arithmetic without torch: blocks per group, channels, exact parameter count.

:mod:`optuna_shape.families.wrn` re-exports these next to the network itself; they live here so
that sizing a design space does not import torch.
"""

from __future__ import annotations

import math

__all__ = ["wrn_channels", "wrn_param_count", "wrn_blocks_per_group"]


def wrn_blocks_per_group(depth: int) -> int:
    """Blocks per group ``n`` for a WRN of ``depth = 6n + 4`` conv layers.

    Raises:
        ValueError: if ``depth`` is not of the form ``6n + 4`` with ``n >= 1``.
    """
    if isinstance(depth, bool) or int(depth) != depth or depth < 10 or (depth - 4) % 6:
        raise ValueError(
            f"wide-ResNet depth must be 6n+4 with n >= 1 (10, 16, 22, ...), got depth={depth!r}"
        )
    return (int(depth) - 4) // 6


def wrn_channels(width: float) -> tuple[int, int, int]:
    """Channels of the three groups for width multiplier ``width``: round(16w, 32w, 64w), ≥ 1.

    Halves round up (``floor(x + 0.5)``), so the count never depends on banker's rounding.
    """
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a positive number, got width={width!r}")
    return tuple(max(1, math.floor(base * width + 0.5)) for base in (16, 32, 64))  # type: ignore[return-value]


def wrn_param_count(depth: int, width: float, in_channels: int, num_classes: int) -> int:
    """Exact number of parameters of ``WideResNet(depth, width, in_channels, num_classes)``.

    Example:
        >>> from optuna_shape.families.wrn import WideResNet
        >>> wrn_param_count(16, 1.0, 3, 10) == sum(
        ...     p.numel() for p in WideResNet(16, 1.0, 3, 10).parameters())
        True
    """
    n = wrn_blocks_per_group(depth)
    channels = wrn_channels(width)
    total = 9 * in_channels * 16  # stem conv, no bias
    c_in = 16
    for group, c_out in enumerate(channels):
        # first block: c_in -> c_out, stride 2 in groups 2 and 3, 1x1 shortcut when either changes
        total += 2 * c_in + 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out
        if c_in != c_out or group > 0:
            total += c_in * c_out
        # the other n - 1 blocks: c_out -> c_out, identity shortcut
        total += (n - 1) * (4 * c_out + 18 * c_out * c_out)
        c_in = c_out
    total += 2 * c_in  # final batch norm
    total += c_in * num_classes + num_classes  # classifier
    return total
