"""Multilayer-perceptron shape arithmetic without torch: hidden units, exact parameter count.

:mod:`optuna_shape.families.mlp` builds the network; these functions live here so that sizing a
design space does not import torch.

The family is a plain MLP for feature vectors (tabular data; images are flattened): ``depth``
hidden layers of ``round(64 · width)`` units (at least 1), each a bias-free linear layer, batch
norm and ReLU, then a linear classifier. Depth counts the hidden layers (any depth >= 1); width
1 is 64 units per hidden layer.
"""

from __future__ import annotations

import math

__all__ = ["MLP_BASE_UNITS", "mlp_check_depth", "mlp_hidden_units", "mlp_param_count"]

MLP_BASE_UNITS = 64
"""Hidden units per layer at width 1."""


def mlp_check_depth(depth: int) -> int:
    """The number of hidden layers, checked.

    Raises:
        ValueError: if ``depth`` is not an integer >= 1.
    """
    if isinstance(depth, bool) or int(depth) != depth or depth < 1:
        raise ValueError(
            f"MLP depth is the number of hidden layers, an integer >= 1 (1, 2, 3, ...), "
            f"got depth={depth!r}"
        )
    return int(depth)


def mlp_hidden_units(width: float) -> int:
    """Hidden units per layer: ``round(64 · width)``, at least 1 (halves round up).

    Raises:
        ValueError: if ``width`` is not a positive finite number.
    """
    if isinstance(width, bool) or not (
        isinstance(width, (int, float)) and math.isfinite(width) and width > 0
    ):
        raise ValueError(f"width must be a positive number, got width={width!r}")
    return max(1, math.floor(MLP_BASE_UNITS * width + 0.5))


def mlp_param_count(depth: int, width: float, in_features: int, num_classes: int) -> int:
    """Exact number of parameters of ``MLP(depth, width, in_features, num_classes)``.

    Example:
        >>> mlp_param_count(2, 1.0, 30, 2)  # 30*64 + 2*64, 64*64 + 2*64, 64*2 + 2
        6402
    """
    layers = mlp_check_depth(depth)
    h = mlp_hidden_units(width)
    total = in_features * h + 2 * h  # first hidden layer (no bias) + batch norm
    total += (layers - 1) * (h * h + 2 * h)
    total += h * num_classes + num_classes
    return total
