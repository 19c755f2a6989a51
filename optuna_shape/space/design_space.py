"""The design space: the grid of shapes (depth × width) a search may choose from (paper §4)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from optuna_shape.families.registry import Family, get_family
from optuna_shape.space.precision import BITS, DEFAULT_PRECISIONS, check_precision, parse_precisions
from optuna_shape.space.shape import Shape, as_shape

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["ShapeSpace", "parse_values", "expand_range"]

BYTES_PER_PARAM = 4  # float32

ValuesSpec = tuple[float, float, float] | Sequence[float] | str


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, Fraction)) and not isinstance(x, bool) and math.isfinite(x)


def expand_range(name: str, lo: float, hi: float, step: float) -> list[float]:
    """Values ``lo, lo + step, …`` up to and including ``hi`` (when on the grid).

    Values are computed as ``lo + i * step`` and rounded to 10 decimals, so ``(0.1, 1.0, 0.1)``
    gives exactly ``0.1 … 1.0`` with no float drift and ``hi`` is never lost to rounding.

    Raises:
        ValueError: naming ``name`` and the bad value for a non-positive step, ``lo > hi`` or a
            non-finite bound.
    """
    for label, v in (("min", lo), ("max", hi), ("step", step)):
        if not _is_number(v):
            raise ValueError(f"{name} {label} must be a finite number, got {v!r}")
    if step <= 0:
        raise ValueError(f"{name} step must be > 0, got step={step!r}")
    if lo > hi:
        raise ValueError(f"{name} min must be <= max, got min={lo!r} > max={hi!r}")
    count = int(math.floor((hi - lo) / step + 1e-9)) + 1
    if count > 1_000_000:
        raise ValueError(f"{name} range ({lo}, {hi}, {step}) has {count} values; too many")
    return [round(lo + i * step, 10) for i in range(count)]


def parse_values(name: str, spec: ValuesSpec) -> list[float]:
    """Parse a depth or width specification into a sorted list of distinct values.

    Accepts a ``(min, max, step)`` triple (inclusive of ``max``), an explicit sequence of values
    (any length other than a 3-tuple, or a list of 3), or a string: ``"10:40:6"`` for a range and
    ``"1,2,4,8"`` or ``"1/16,2/16"`` for explicit values (fractions allowed).

    Example:
        >>> parse_values("width", "0.5:2:0.5")
        [0.5, 1.0, 1.5, 2.0]
        >>> parse_values("width", [1, 2, 4, 8])
        [1.0, 2.0, 4.0, 8.0]

    Raises:
        ValueError: naming the bad value.
    """
    if isinstance(spec, str):
        text = spec.strip()
        try:
            if ":" in text:
                parts = [float(Fraction(p.strip())) for p in text.split(":")]
                if len(parts) != 3:
                    raise ValueError
                return expand_range(name, *parts)
            values = [float(Fraction(p.strip())) for p in text.split(",") if p.strip()]
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"cannot parse {name} {spec!r}: use 'min:max:step' or a comma-separated list "
                "such as '1,2,4,8'"
            ) from None
        return parse_values(name, values)
    if isinstance(spec, tuple) and len(spec) == 3:
        return expand_range(name, *spec)
    try:
        values = list(spec)
    except TypeError:
        raise ValueError(
            f"{name} must be a (min, max, step) tuple or a list of values, got {spec!r}"
        ) from None
    if not values:
        raise ValueError(f"{name} list is empty")
    out: list[float] = []
    for v in values:
        if not _is_number(v):
            raise ValueError(f"{name} values must be finite numbers, got {v!r}")
        out.append(float(v))
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise ValueError(f"{name} values must be distinct, got duplicates {dup}")
    return sorted(out)


class ShapeSpace:
    """A grid of network shapes: every (depth, width) combination of the given values.

    Args:
        family: a registered model family name (``"wrn"``) or a :class:`Family`.
        depth: ``(min, max, step)`` (max included when on the grid), a list of depths, or a string
            (``"10:40:6"``, ``"10,16,28"``). For ``"wrn"`` every depth must be ``6n + 4``.
        width: ``(min, max, step)``, a list of width multipliers, or a string (``"1/16:1:1/16"``).
        in_channels: channels of the input images; for a feature-vector family (``"mlp"``)
            the number of input features.
        num_classes: number of classes.
        image_size: input height and width (an int or ``(h, w)``), used for latency and energy;
            ``None`` for a feature-vector family, whose input is ``(batch, in_channels)``.
        bytes_per_param: bytes per parameter of the trained (``"fp32"``) network for
            :meth:`size_mb` (4 for float32); the other precisions' sizes follow from their bits.
        precision: the precisions the trained network may be deployed in: ``"fp32"`` (default,
            the network as trained), ``"bf16"``, ``"int8"``, as a tuple or ``"fp32,int8"``; see
            :func:`~optuna_shape.space.precision.parse_precisions`. Stored, in canonical order, as
            :attr:`precisions`.

    Shapes are ordered as the paper samples them: lexicographically by width, then depth.

    Example:
        >>> space = ShapeSpace("wrn", depth=(10, 22, 6), width=[0.5, 1.0], in_channels=1,
        ...                    num_classes=10, image_size=8)
        >>> len(space), space.shapes[:2]
        (6, [Shape(depth=10, width=0.5), Shape(depth=16, width=0.5)])
        >>> space.param_count(space.shapes[0]) == sum(
        ...     p.numel() for p in space.build(space.shapes[0]).parameters())
        True
    """

    def __init__(
        self,
        family: str | Family = "wrn",
        depth: ValuesSpec = (10, 40, 6),
        width: ValuesSpec = (0.25, 2.0, 0.25),
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int | tuple[int, int] | None = 32,
        bytes_per_param: int = BYTES_PER_PARAM,
        precision: str | Sequence[str] = DEFAULT_PRECISIONS,
    ) -> None:
        self.family = get_family(family)
        precisions = parse_precisions(precision)
        depths = parse_values("depth", depth)
        for d in depths:
            if d != int(d) or d < 1:
                raise ValueError(f"depth values must be positive integers, got depth={d:g}")
            self.family.validate_depth(int(d))
        widths = parse_values("width", width)
        for w in widths:
            if w <= 0:
                raise ValueError(f"width values must be > 0, got width={w:g}")
            self.family.validate_width(w)
        for label, v, low in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {label}={v!r}")
        features = self.family.input_kind == "features"
        if features and image_size is not None:
            raise ValueError(
                f"family {self.family.name!r} takes feature vectors, not images: build the "
                "ShapeSpace with in_channels=<number of features> and image_size=None, got "
                f"image_size={image_size!r}"
            )
        if not features and image_size is None:
            raise ValueError(
                f"family {self.family.name!r} takes images: give image_size (an int or (h, w)); "
                "image_size=None is for feature-vector families such as 'mlp'"
            )
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if image_size is not None and (len(image_size) != 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in image_size
        )):
            raise ValueError(f"image_size must be a positive int or (h, w), got {image_size!r}")
        if bytes_per_param not in (1, 2, 4, 8):
            raise ValueError(f"bytes_per_param must be 1, 2, 4 or 8, got {bytes_per_param!r}")
        self.depths: list[int] = [int(d) for d in depths]
        self.widths: list[float] = widths
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.image_size: tuple[int, int] | None = (
            None if image_size is None else (int(image_size[0]), int(image_size[1]))
        )
        self.bytes_per_param = bytes_per_param
        self.precisions: tuple[str, ...] = precisions
        self._shapes = [Shape(d, w) for w in self.widths for d in self.depths]
        self._index = {s: i for i, s in enumerate(self._shapes)}
        self._counts: dict[Shape, int] = {}

    # -- the grid -------------------------------------------------------------------------
    @property
    def shapes(self) -> list[Shape]:
        """All shapes of the grid, ordered by width, then depth (the paper's order)."""
        return list(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._shapes)

    def __contains__(self, shape: object) -> bool:
        try:
            return as_shape(shape) in self._index  # type: ignore[arg-type]
        except ValueError:
            return False

    def index(self, shape: Shape | tuple[int, float]) -> int:
        """Position of ``shape`` in :attr:`shapes`.

        Raises:
            ValueError: if the shape is not in this design space.
        """
        s = as_shape(shape)
        try:
            return self._index[s]
        except KeyError:
            raise ValueError(
                f"shape {s} is not in the design space (depths {self.depths}, "
                f"widths {self.widths})"
            ) from None

    # -- size -----------------------------------------------------------------------------
    def param_count(self, shape: Shape | tuple[int, float]) -> int:
        """Exact number of parameters of ``shape``, computed without building the network."""
        s = as_shape(shape)
        if s not in self._counts:
            self._counts[s] = self.family.count(s.depth, s.width, self.in_channels,
                                                self.num_classes)
        return self._counts[s]

    def size_mb(self, shape: Shape | tuple[int, float], precision: str = "fp32") -> float:
        """Model size in MB: parameters × bytes per parameter / 10⁶.

        For ``"fp32"`` the bytes per parameter are :attr:`bytes_per_param` (4 unless set
        otherwise); for another precision they are its bits / 8 (``"bf16"``: 2, ``"int8"``: 1).
        Any known precision may be asked for, not only those of :attr:`precisions`.

        Raises:
            ValueError: an unknown precision.
        """
        per_param = (self.bytes_per_param if check_precision(precision) == "fp32"
                     else BITS[precision] / 8)
        return self.param_count(shape) * per_param / 1e6

    def build(self, shape: Shape | tuple[int, float]) -> nn.Module:
        """Build the (randomly initialised) network of ``shape``."""
        s = as_shape(shape)
        return self.family.build(s.depth, s.width, self.in_channels, self.num_classes)

    def input_shape(self, batch_size: int) -> tuple[int, ...]:
        """Input tensor shape for measurements: ``(batch, channels, height, width)``, or
        ``(batch, features)`` for a feature-vector family (``image_size=None``)."""
        if self.image_size is None:
            return (int(batch_size), self.in_channels)
        return (int(batch_size), self.in_channels, *self.image_size)

    # -- identity -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description; two spaces with equal dicts hold the same shapes.

        ``"precisions"`` is present only when it is not the default ``("fp32",)``, so a space
        without precisions has the description (and :meth:`fingerprint`) it always had.
        """
        data: dict[str, Any] = {
            "family": self.family.name,
            "depths": self.depths,
            "widths": self.widths,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_size": None if self.image_size is None else list(self.image_size),
            "bytes_per_param": self.bytes_per_param,
        }
        if self.precisions != DEFAULT_PRECISIONS:
            data["precisions"] = list(self.precisions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeSpace:
        """Rebuild a space from :meth:`to_dict` (the family must be registered)."""
        return cls(
            data["family"],
            depth=list(data["depths"]),
            width=list(data["widths"]),
            in_channels=int(data["in_channels"]),
            num_classes=int(data["num_classes"]),
            image_size=(None if data["image_size"] is None
                        else tuple(data["image_size"])),  # type: ignore[arg-type]
            bytes_per_param=int(data.get("bytes_per_param", BYTES_PER_PARAM)),
            precision=tuple(data.get("precisions", DEFAULT_PRECISIONS)),
        )

    def fingerprint(self) -> str:
        """Short hash of :meth:`to_dict`."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        precisions = ("" if self.precisions == DEFAULT_PRECISIONS
                      else f", precision={self.precisions}")
        return (
            f"ShapeSpace(family={self.family.name!r}, depth={self.depths}, width={self.widths}, "
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"image_size={self.image_size}{precisions}) with {len(self)} shapes"
        )
