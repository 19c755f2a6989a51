"""A multilayer perceptron for feature vectors (tabular data), as a model family.

The architecture and the meaning of depth and width are described in
:mod:`optuna_shape.families.mlp_size`, whose :func:`mlp_param_count` gives the exact parameter
count of :class:`MLP` without building it.
"""

from __future__ import annotations

import torch
from torch import nn

from optuna_shape.families.mlp_size import mlp_check_depth, mlp_hidden_units, mlp_param_count

__all__ = ["MLP", "mlp_param_count"]


class MLP(nn.Module):
    """``depth`` hidden layers (linear, batch norm, ReLU) of ``round(64 · width)`` units.

    Inputs of more than two dimensions (images) are flattened, so an MLP with
    ``in_features = C · H · W`` also trains on image datasets.

    Args:
        depth: number of hidden layers (>= 1).
        width: hidden-unit multiplier; each hidden layer has ``round(64 · width)`` units.
        in_features: length of the input feature vector.
        num_classes: number of output classes.

    Example:
        >>> model = MLP(2, 0.5, in_features=13, num_classes=3)
        >>> model(torch.zeros(4, 13)).shape
        torch.Size([4, 3])
    """

    def __init__(self, depth: int, width: float, in_features: int, num_classes: int = 2):
        super().__init__()
        layers = mlp_check_depth(depth)
        h = mlp_hidden_units(width)
        if int(in_features) != in_features or in_features < 1:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.depth, self.width, self.hidden_units = layers, float(width), h
        blocks: list[nn.Module] = []
        c_in = int(in_features)
        for _ in range(layers):
            blocks += [nn.Linear(c_in, h, bias=False), nn.BatchNorm1d(h), nn.ReLU()]
            c_in = h
        self.hidden = nn.Sequential(*blocks)
        self.fc = nn.Linear(h, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(torch.flatten(x, 1)))
