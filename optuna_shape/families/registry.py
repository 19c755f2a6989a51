"""A small registry of model families: name -> how to build a shape and count its parameters.

A family turns a :class:`~optuna_shape.space.shape.Shape` into a ``torch.nn.Module`` and, ideally,
counts its parameters analytically so that screening by size needs no network. Users add their own
family with :func:`register_family`; when no analytic count is given, the count is taken from a
built model (exact, but slower, and cached per shape by :class:`~optuna_shape.ShapeSpace`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = [
    "ACCURACY_TRENDS",
    "INPUT_KINDS",
    "Family",
    "get_family",
    "list_families",
    "meta_param_count",
    "register_family",
]

Builder = Callable[[int, float, int, int], "nn.Module"]
"""``builder(depth, width, in_channels, num_classes) -> nn.Module``."""
Counter = Callable[[int, float, int, int], int]
"""``count(depth, width, in_channels, num_classes) -> number of parameters``."""
DepthCheck = Callable[[int], object]
"""Raises ``ValueError`` naming the depth when it is not valid for the family."""
WidthCheck = Callable[[float], object]
"""Raises ``ValueError`` naming the width when it is not valid for the family."""
INPUT_KINDS = ("image", "features")
"""What a family's networks take: ``"image"`` tensors ``(batch, channels, height, width)``, or
``"features"`` vectors ``(batch, features)`` (then ``in_channels`` is the number of features)."""
ACCURACY_TRENDS = {"paper": "Eq. 2 features", "smooth": "a quadratic in log depth and width"}
"""The trends the adaptive search's accuracy model may assume across a family's shapes, with
the words reports use for them: ``"paper"``, the inverse-polynomial terms of the Shape_DNN
paper's model (``1/w``, ``1/d``, ``1/w²``, relative to the grid's smallest width and depth: the
features the paper chose on ResNets, changing fastest at the smallest depths and widths);
``"smooth"``, a quadratic in log depth and log width (changing evenly across the grid)."""


@dataclass(frozen=True)
class Family:
    """A registered model family.

    Attributes:
        name: registry name, e.g. ``"wrn"``.
        build: ``build(depth, width, in_channels, num_classes) -> nn.Module``.
        param_count: analytic parameter count with the same arguments, or ``None`` (count a
            built model).
        check_depth: validates one depth value (e.g. WRN needs ``6n + 4``), or ``None``.
        description: one line shown in listings.
        check_width: validates one width value, or ``None`` (any positive number).
        width_meaning: what width means, e.g. ``"growth rate = round(12 · width)"``.
        input_kind: ``"image"`` (the default: ``in_channels`` are image channels) or
            ``"features"`` (``in_channels`` is the length of a feature vector, and the design
            space has no image size).
        default_depth: a small depth grid for this family (``"min:max:step"`` or a list), used
            by the command line when no ``--depth`` is given; ``None``: no default.
        default_width: likewise for the width.
        accuracy_trend: the trend the adaptive search's accuracy model assumes across shapes
            (:data:`ACCURACY_TRENDS`): ``"paper"`` (the default, every built-in family) or
            ``"smooth"``. Measured on three MLP landscapes (depths from one hidden layer, where
            the paper's ``1/d`` changes most): ``"smooth"`` answered a flat tabular one far
            better, tied on the others without a compute budget, and answered one worse
            under the tightest budgets.
    """

    name: str
    build: Builder
    param_count: Counter | None = None
    check_depth: DepthCheck | None = None
    description: str = ""
    check_width: WidthCheck | None = None
    width_meaning: str = "width multiplier"
    input_kind: str = "image"
    default_depth: str | None = None
    default_width: str | None = None
    accuracy_trend: str = "paper"

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, "
                             f"got input_kind={self.input_kind!r}")
        if self.accuracy_trend not in ACCURACY_TRENDS:
            raise ValueError(f"accuracy_trend must be one of {', '.join(ACCURACY_TRENDS)}, "
                             f"got accuracy_trend={self.accuracy_trend!r}")

    def validate_depth(self, depth: int) -> None:
        """Check one depth against the family's rule.

        Raises:
            ValueError: one line naming the family, the bad depth and what would be valid.
        """
        self._apply(self.check_depth, depth)

    def validate_width(self, width: float) -> None:
        """Check one width against the family's rule.

        Raises:
            ValueError: one line naming the family, the bad width and what would be valid.
        """
        self._apply(self.check_width, width)

    def _apply(self, rule: Callable[[Any], object] | None, value: Any) -> None:
        if rule is not None:
            try:
                rule(value)
            except ValueError as exc:
                raise ValueError(f"family {self.name!r}: {exc}") from None

    def count(self, depth: int, width: float, in_channels: int, num_classes: int) -> int:
        """Parameter count of a shape: analytic when the family has one, else from a model built
        on PyTorch's meta device (no memory for weights, so a shape of billions of parameters is
        counted in milliseconds)."""
        if self.param_count is not None:
            return int(self.param_count(depth, width, in_channels, num_classes))
        return meta_param_count(self.build, depth, width, in_channels, num_classes)


def meta_param_count(build: Builder, depth: int, width: float, in_channels: int,
                     num_classes: int) -> int:
    """Exact parameter count of ``build(...)``, built on the meta device (no weight memory).

    Falls back to an ordinary build when the builder cannot run on the meta device (for
    instance one that moves tensors to a fixed device or reads weight values).

    Raises:
        ValueError: the model has lazy (uninitialised) parameters, whose count is unknown
            before a forward pass; give the family an analytic ``param_count`` instead.
    """
    import torch

    try:
        with torch.device("meta"):
            model = build(depth, width, in_channels, num_classes)
    except Exception:  # a builder the meta device cannot run: count a real build
        model = build(depth, width, in_channels, num_classes)
    total = 0
    for name, p in model.named_parameters():
        if isinstance(p, torch.nn.parameter.UninitializedParameter):
            raise ValueError(
                f"parameter {name!r} of the model for shape ({depth}, {width}) is lazy "
                "(e.g. nn.LazyLinear), so its size is unknown before a forward pass; use "
                "non-lazy layers or register the family with param_count=…"
            )
        total += p.numel()
    return int(total)


_REGISTRY: dict[str, Family] = {}


def register_family(
    name: str,
    build: Builder,
    *,
    param_count: Counter | None = None,
    check_depth: DepthCheck | None = None,
    description: str = "",
    overwrite: bool = False,
    check_width: WidthCheck | None = None,
    width_meaning: str = "width multiplier",
    input_kind: str = "image",
    default_depth: str | None = None,
    default_width: str | None = None,
    accuracy_trend: str = "paper",
) -> Family:
    """Register a model family under ``name`` and return it.

    Only ``name`` and ``build`` are needed: without ``param_count`` the size of a shape is
    counted on a model built on PyTorch's meta device (exact, no weight memory), cached per shape
    by :class:`~optuna_shape.ShapeSpace`. The other arguments are the fields of :class:`Family`.

    Example:
        >>> import torch.nn as nn
        >>> def mlp(depth, width, in_channels, num_classes):
        ...     h = max(1, round(64 * width))
        ...     layers = [nn.Flatten(), nn.Linear(in_channels * 8 * 8, h), nn.ReLU()]  # 8×8 input
        ...     for _ in range(depth - 1):
        ...         layers += [nn.Linear(h, h), nn.ReLU()]
        ...     return nn.Sequential(*layers, nn.Linear(h, num_classes))
        >>> fam = register_family("doc-mlp", mlp, overwrite=True)

    Raises:
        ValueError: if ``name`` is taken (and ``overwrite`` is false) or is empty, or
            ``input_kind`` or ``accuracy_trend`` is unknown.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"family name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"model family {name!r} is already registered; pass overwrite=True to replace it"
        )
    if not callable(build):
        raise TypeError(f"build must be callable, got {build!r}")
    family = Family(name, build, param_count, check_depth, description, check_width,
                    width_meaning, input_kind, default_depth, default_width, accuracy_trend)
    _REGISTRY[name] = family
    return family


def get_family(name: str | Family) -> Family:
    """Look up a family by name (a :class:`Family` is returned as is).

    Raises:
        ValueError: for an unknown name, listing the registered ones.
    """
    if isinstance(name, Family):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise ValueError(f"unknown model family {name!r}; registered families: {known}") from None


def list_families() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_REGISTRY)


def _build_wrn(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
    from optuna_shape.families.wrn import WideResNet

    return WideResNet(depth, width, in_channels, num_classes)


def _build_densenet(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
    from optuna_shape.families.densenet import DenseNet

    return DenseNet(depth, width, in_channels, num_classes)


def _build_mlp(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
    from optuna_shape.families.mlp import MLP

    return MLP(depth, width, in_channels, num_classes)


def _register_builtins() -> None:
    # torch-free size modules: the networks load when built
    from optuna_shape.families import densenet_size, mlp_size, wrn_size

    register_family(
        "wrn",
        _build_wrn,
        param_count=wrn_size.wrn_param_count,
        check_depth=wrn_size.wrn_blocks_per_group,
        check_width=wrn_size.wrn_channels,
        description="pre-activation wide ResNet (Zagoruyko & Komodakis), depth = 6n + 4",
        width_meaning="channels of the three groups = round(16, 32, 64 × width)",
        default_depth="10:28:6",
        default_width="0.25:2:0.25",
        overwrite=True,
    )
    register_family(
        "densenet",
        _build_densenet,
        param_count=densenet_size.densenet_param_count,
        check_depth=densenet_size.densenet_layers_per_block,
        check_width=densenet_size.densenet_growth_rate,
        description="DenseNet-BC (Huang et al.) with 3 dense blocks, depth = 6n + 4",
        width_meaning="growth rate = round(12 × width): width 1 is k = 12, width 2 is k = 24",
        default_depth="10:28:6",
        default_width="0.5:2:0.5",
        overwrite=True,
    )
    register_family(
        "mlp",
        _build_mlp,
        param_count=mlp_size.mlp_param_count,
        check_depth=mlp_size.mlp_check_depth,
        check_width=mlp_size.mlp_hidden_units,
        description="multilayer perceptron for feature vectors (tabular data), depth = hidden "
                    "layers",
        width_meaning="units per hidden layer = round(64 × width)",
        input_kind="features",
        default_depth="1:4:1",
        default_width="0.25:2:0.25",
        overwrite=True,
    )


_register_builtins()
