"""Weight initialisation shared by the built-in convolutional families."""

from __future__ import annotations

from torch import nn

__all__ = ["init_conv_net"]


def init_conv_net(model: nn.Module) -> None:
    """He (fan-out) initialisation of every convolution, unit-scale zero-shift batch norms and
    zero classifier biases, as in the wide-ResNet and DenseNet reference code."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
