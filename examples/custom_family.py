"""Plug your own model family into optuna-shape: a small CNN whose depth and width are free.

``osh.register_family`` maps a name to ``build(depth, width, in_channels, num_classes)`` (and
optionally an analytic parameter count; without one, the count is taken from a built model).
The search, the screening and the accuracy model are the same as for wide ResNets::

    python examples/custom_family.py

``OSH_EPOCHS`` (default 4) and ``OSH_SUBSET`` shrink it for tests.
"""

from __future__ import annotations

import os

import optuna
from torch import nn

import optuna_shape as osh
from optuna_shape.training import TrainConfig, make_objective


def small_cnn(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
    """``depth`` 3×3 conv layers of ``round(16 × width)`` channels, global pooling, a linear head.

    Example:
        >>> small_cnn(2, 1.0, 1, 10)(__import__("torch").zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    channels = max(1, round(16 * width))
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(depth):
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
        c = channels
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(channels, num_classes))


def cnn_params(depth: int, width: float, in_channels: int, num_classes: int) -> int:
    """Analytic parameter count of :func:`small_cnn` (screening by size needs no network)."""
    ch = max(1, round(16 * width))
    convs = (in_channels * 9 * ch + ch) + (depth - 1) * (ch * 9 * ch + ch)
    return convs + depth * 2 * ch + ch * num_classes + num_classes


def main() -> osh.Shape | None:
    """Search the CNN family on digits for the most accurate shape under 0.05 MB."""
    epochs = int(os.environ.get("OSH_EPOCHS", "4"))
    subset = int(os.environ["OSH_SUBSET"]) if os.environ.get("OSH_SUBSET") else None
    osh.register_family("small-cnn", small_cnn, param_count=cnn_params,
                        description="plain CNN: depth conv layers of 16*width channels",
                        overwrite=True)
    space = osh.ShapeSpace("small-cnn", depth=(1, 4, 1), width=[0.25, 0.5, 1.0, 1.5],
                           in_channels=1, num_classes=10, image_size=8)
    shape = space.shapes[-1]
    assert space.param_count(shape) == sum(p.numel() for p in space.build(shape).parameters())

    policy = osh.Adaptive(max_trainings=int(os.environ.get("OSH_MAX_TRAININGS", 8)))
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.05), goal="accuracy",
                               policy=policy, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(make_objective(space, "digits", config=TrainConfig(epochs=epochs, lr=0.05),
                                  subset=subset))
    best = osh.best_shape(study)
    s = osh.search_summary(study)
    print(f"chosen shape: {best} — {s.trainings} trainings of {s.n_feasible} feasible shapes")
    return best


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
