"""Numeric precisions a trained network can be deployed in, and what each costs in size.

A precision is the number format of a network's weights at inference time: ``"fp32"`` (as
trained), ``"bf16"`` (bfloat16, 16 bits) or ``"int8"`` (8-bit integers after post-training
quantisation). Size follows from the bits per parameter; latency and accuracy of a precision are
measured on the converted network (:mod:`optuna_shape.measurement.precision`), never by training
again.

This module is pure Python: it imports neither torch nor Optuna.

Example:
    >>> parse_precisions("int8,fp32")
    ('fp32', 'int8')
    >>> bytes_per_param("bf16")
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BITS",
    "DEFAULT_PRECISIONS",
    "PRECISIONS",
    "bytes_per_param",
    "check_precision",
    "parse_precisions",
    "unsupported_reason",
]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
"""Every precision, in canonical order (most bits first)."""

BITS: dict[str, int] = {"fp32": 32, "bf16": 16, "int8": 8}
"""Bits per parameter of each precision."""

DEFAULT_PRECISIONS: tuple[str, ...] = ("fp32",)
"""The precisions of a search that does not ask for any: the trained network as it is."""


def check_precision(precision: object) -> str:
    """``precision`` itself when it is a known precision name.

    Raises:
        ValueError: naming the bad value and the valid names.

    Example:
        >>> check_precision("int4")
        Traceback (most recent call last):
        ...
        ValueError: unknown precision 'int4'; valid precisions are fp32, bf16, int8
    """
    if not isinstance(precision, str) or precision not in BITS:
        raise ValueError(
            f"unknown precision {precision!r}; valid precisions are {', '.join(PRECISIONS)}"
        )
    return precision


def parse_precisions(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Parse ``"fp32,bf16,int8"`` or a sequence of names into a tuple in canonical order.

    Names are case-sensitive and stripped of spaces; the result is ordered fp32, bf16, int8
    whatever the input order.

    Raises:
        ValueError: an empty spec, an unknown name (the message names it and lists the valid
            ones) or a name given twice.

    Example:
        >>> parse_precisions(["int8", "fp32"])
        ('fp32', 'int8')
        >>> parse_precisions("fp32,fp32")
        Traceback (most recent call last):
        ...
        ValueError: precision 'fp32' given twice in 'fp32,fp32'; give each precision once
    """
    if isinstance(spec, str):
        names = [p.strip() for p in spec.split(",")]
        if names == [""]:
            names = []
    else:
        try:
            names = [p.strip() if isinstance(p, str) else p for p in spec]
        except TypeError:
            raise ValueError(
                f"precisions must be a comma-separated string or a list of names such as "
                f"{', '.join(PRECISIONS)}; got {spec!r}"
            ) from None
    if not names:
        raise ValueError(
            f"no precision given in {spec!r}; name one or more of {', '.join(PRECISIONS)}"
        )
    for name in names:
        check_precision(name)
    for name in names:
        if names.count(name) > 1:
            raise ValueError(
                f"precision {name!r} given twice in {spec!r}; give each precision once"
            )
    return tuple(p for p in PRECISIONS if p in names)


def bytes_per_param(precision: str) -> float:
    """Bytes one parameter takes in ``precision`` (bits / 8).

    Raises:
        ValueError: an unknown precision.
    """
    return BITS[check_precision(precision)] / 8


def unsupported_reason(precision: str, device: str) -> str | None:
    """Why ``precision`` cannot be run on ``device`` (``None`` when it can).

    int8 networks run on torch's quantised CPU kernels only; there are none for CUDA.

    Example:
        >>> unsupported_reason("int8", "cuda:0")
        "int8 inference runs on the CPU only (torch's quantised kernels); use device='cpu'"
        >>> unsupported_reason("bf16", "cuda") is None
        True
    """
    check_precision(precision)
    if precision == "int8" and not device.startswith("cpu"):
        return "int8 inference runs on the CPU only (torch's quantised kernels); use device='cpu'"
    return None
