"""Numeric precisions a network can be deployed at, and their storage cost (no torch here).

A search over several precisions treats each (shape, precision) pair as a candidate: the size
comes from the bits per parameter, latency and energy are measured on the converted network,
and the accuracy of a lower precision is that of the trained fp32 network after post-training
conversion.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PRECISIONS", "BITS", "parse_precisions", "bytes_per_param"]

PRECISIONS = ("fp32", "bf16", "int8")
"""Supported precisions, highest first (the canonical order)."""

BITS = {"fp32": 32, "bf16": 16, "int8": 8}
"""Bits per parameter of each precision."""


def parse_precisions(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Precisions from ``"fp32,int8"`` or an iterable of names, distinct, in canonical order.

    Example:
        >>> parse_precisions("int8, fp32")
        ('fp32', 'int8')

    Raises:
        ValueError: an unknown name, a repeated one, or none at all.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {item!r}")
        name = item.strip().lower()
        if name not in BITS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {item!r}")
        if name in names:
            raise ValueError(f"precision {name!r} is listed twice in {spec!r}")
        names.append(name)
    if not names:
        raise ValueError(f"give at least one precision of {', '.join(PRECISIONS)}, got {spec!r}")
    return tuple(p for p in PRECISIONS if p in names)


def bytes_per_param(precision: str) -> float:
    """Bytes per parameter of ``precision`` (``BITS[precision] / 8``).

    Raises:
        ValueError: an unknown precision.
    """
    if precision not in BITS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {precision!r}")
    return BITS[precision] / 8
