"""The shape of a network: its depth and its width multiplier."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["Candidate", "Shape", "Variant", "as_shape", "as_shapes"]


@runtime_checkable
class Candidate(Protocol):
    """What a search chooses among: a :class:`Shape`, or a :class:`Variant` (a shape at one
    deployment precision). Code that handles both reads these, never the concrete type:
    ``precision`` is ``None`` for a shape (trained and deployed as is) and :attr:`shape` is the
    network that is trained.

    Example:
        >>> [(c.shape, c.precision) for c in (Shape(16, 0.5), Variant(16, 0.5, "int8"))]
        [(Shape(depth=16, width=0.5), None), (Shape(depth=16, width=0.5), 'int8')]
    """

    @property
    def depth(self) -> int: ...

    @property
    def width(self) -> float: ...

    @property
    def precision(self) -> str | None: ...

    @property
    def shape(self) -> Shape: ...

    @property
    def key(self) -> str: ...


class Shape(NamedTuple):
    """A network shape: ``depth`` (number of layers, an int) and ``width`` (a multiplier).

    Shapes are plain named tuples, so ``Shape(22, 2.5) == (22, 2.5)`` and they can be used as
    dictionary keys. Ordering is lexicographic by depth, then width; the paper's sampling order
    (by width, then depth) is given by :func:`optuna_shape.policy.modeling_strategy.paper_order`.

    Example:
        >>> Shape(depth=16, width=0.5)
        Shape(depth=16, width=0.5)
    """

    depth: int
    width: float

    def __str__(self) -> str:
        return f"({self.depth}, {self.width:g})"

    @property
    def key(self) -> str:
        """A stable text key, used in storage attribute names: ``"d22-w2.5"``."""
        return f"d{self.depth}-w{self.width:g}"

    @property
    def precision(self) -> None:
        """A shape carries no deployment precision (a :class:`Variant` does)."""
        return None

    @property
    def shape(self) -> Shape:
        """The shape itself (the network that is trained), as :attr:`Variant.shape`."""
        return self


class Variant(NamedTuple):
    """A candidate of a search over precisions: a shape deployed at one precision.

    It has ``depth`` and ``width`` like a :class:`Shape` (so a policy's features and every
    report read it the same way); :attr:`shape` is the network that is trained, once for all
    its precisions.

    Example:
        >>> v = Variant(22, 2.5, "int8")
        >>> str(v), v.key, v.shape
        ('(22, 2.5, int8)', 'd22-w2.5-int8', Shape(depth=22, width=2.5))
    """

    depth: int
    width: float
    precision: str

    def __str__(self) -> str:
        return f"({self.depth}, {self.width:g}, {self.precision})"

    @property
    def shape(self) -> Shape:
        """The base shape (the network that is trained)."""
        return Shape(self.depth, self.width)

    @property
    def key(self) -> str:
        """A stable text key, used in storage attribute names: ``"d22-w2.5-int8"``."""
        return f"d{self.depth}-w{self.width:g}-{self.precision}"


def as_shape(value: Shape | tuple[int, float] | Iterable[float]) -> Shape:
    """Convert a ``Shape`` or a ``(depth, width)`` pair into a :class:`Shape` (a
    :class:`Variant` gives its base shape).

    Raises:
        ValueError: if ``value`` is not a pair, or depth is not a whole number.
    """
    if isinstance(value, Shape):
        return value
    if isinstance(value, Variant):
        return value.shape
    try:
        depth, width = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"a shape is a (depth, width) pair, got {value!r}") from None
    if float(depth) != int(depth):
        raise ValueError(f"depth must be a whole number, got {depth!r} in {value!r}")
    return Shape(int(depth), float(width))


def as_shapes(values: Iterable[Shape | tuple[int, float]]) -> list[Shape]:
    """Convert an iterable of shapes or ``(depth, width)`` pairs into a list of :class:`Shape`."""
    return [as_shape(v) for v in values]
