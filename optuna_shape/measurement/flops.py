"""Multiply-accumulate (MAC) count of one forward pass of a shape, a feature of the hardware-cost
model (:mod:`optuna_shape.models.cost_model`).

Counted: convolutions (output elements × input channels per group × kernel volume) and linear
layers (output elements × input features). Normalisations, activations, pooling and additions are
elementwise and left out, the usual convention for FLOP counts of convolutional networks.

Wide-ResNets are counted analytically (exact, microseconds, no torch). Any other family is counted
once per shape by running the network on PyTorch's meta device with forward hooks (shapes only,
no weights; a few tenths of a second for a large network); a network the meta device cannot run
gives ``None`` and the cost model falls back to the parameter count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from optuna_shape.families.wrn_size import wrn_blocks_per_group, wrn_channels

if TYPE_CHECKING:  # pragma: no cover
    from optuna_shape.space.design_space import ShapeSpace
    from optuna_shape.space.shape import Shape

__all__ = ["wrn_macs", "count_macs", "shape_macs"]


def _conv_out(size: int, stride: int, kernel: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def wrn_macs(depth: int, width: float, in_channels: int, num_classes: int,
             image_size: tuple[int, int]) -> int:
    """Exact MACs of one sample through ``WideResNet(depth, width, in_channels, num_classes)``
    on an ``image_size`` input (3×3 convolutions with padding 1, strides 1, 2, 2 per group, 1×1
    shortcut where channels or stride change, linear classifier)."""
    n = wrn_blocks_per_group(depth)
    h, w = (int(x) for x in image_size)
    total = h * w * 16 * in_channels * 9  # stem
    c_in = 16
    for group, c_out in enumerate(wrn_channels(width)):
        for i in range(n):
            stride = 2 if (group > 0 and i == 0) else 1
            cin = c_in if i == 0 else c_out
            ho, wo = _conv_out(h, stride, 3, 1), _conv_out(w, stride, 3, 1)
            total += ho * wo * c_out * cin * 9 + ho * wo * c_out * c_out * 9
            if cin != c_out or stride != 1:
                total += _conv_out(h, stride, 1, 0) * _conv_out(w, stride, 1, 0) * c_out * cin
            h, w = ho, wo
        c_in = c_out
    return total + c_in * num_classes


def count_macs(build: Callable[[], Any], input_shape: tuple[int, ...]) -> int | None:
    """MACs of one forward pass of ``build()`` (called under ``torch.device("meta")``) on an
    input of ``input_shape``, or ``None`` when the meta device cannot run it."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(module: Any, _inp: Any, out: Any) -> None:
        nonlocal total
        kernel = 1
        for k in module.kernel_size:
            kernel *= int(k)
        total += out.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module: Any, _inp: Any, out: Any) -> None:
        nonlocal total
        total += out.numel() * int(module.in_features)

    try:
        with torch.device("meta"):
            model = build()
            for m in model.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                    m.register_forward_hook(conv_hook)
                elif isinstance(m, nn.Linear):
                    m.register_forward_hook(linear_hook)
            model.eval()
            with torch.no_grad():
                model(torch.empty(input_shape))
    except Exception:  # a builder or forward the meta device cannot run
        return None
    return int(total)


def shape_macs(space: ShapeSpace, shape: Shape) -> int | None:
    """MACs of one sample of ``shape`` in ``space``: analytic for ``"wrn"``, else counted on the
    meta device (``None`` when that is impossible)."""
    if space.family.name == "wrn":
        return wrn_macs(shape.depth, shape.width, space.in_channels, space.num_classes,
                        space.image_size)
    return count_macs(lambda: space.build(shape), space.input_shape(1))
