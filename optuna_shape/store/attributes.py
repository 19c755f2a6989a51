"""Trial user attributes a person can read and sort in optuna-dashboard.

The dashboard shows user attributes as they are stored, so a float written as
``-2.075000000000003`` or ``0.699112`` is shown that way. :func:`readable_trial_attrs` rounds each
known attribute to the digits that carry meaning, caps predicted accuracies to the possible range,
keeps small standard deviations visible, shows probabilities in percent and adds ``depth`` and
``width`` as sortable columns. Whoever writes trial attributes (the sampler) passes its dict
through it.

Example:
    >>> readable_trial_attrs({"size_mb": 0.699112, "predicted_accuracy": 101.234,
    ...                       "predicted_std": 0.0004, "constraint_size": -0.300888000004,
    ...                       "p_floor": 0.8731}, shape=(16, 1.0))
    {'size_mb': 0.6991, 'predicted_accuracy': 100.0, 'predicted_std': 0.0004, \
'constraint_size': -0.3009, 'p_floor_pct': 87.3, 'depth': 16, 'width': 1.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["readable_trial_attrs", "significant"]

SIGNIFICANT = {"size_mb": 4, "latency_ms": 3, "energy_j": 3}
"""Significant digits of measured quantities (measurement noise is larger than the rest)."""


def significant(x: float, digits: int) -> float:
    """``x`` rounded to ``digits`` significant digits (``0`` and non-finite values unchanged)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def readable_trial_attrs(attrs: Mapping[str, Any], *, shape: Any = None,
                         percent: bool | None = None) -> dict[str, Any]:
    """``attrs`` with numbers rounded for reading and sorting in optuna-dashboard.

    Args:
        attrs: user attributes as the sampler would write them.
        shape: the trial's ``(depth, width)``; adds ``depth`` and ``width`` attributes.
        percent: whether accuracies are in percent; default: guessed (a value above 1.5).

    Rules: ``size_mb`` 4 significant digits, ``latency_ms`` and ``energy_j`` 3;
    ``predicted_accuracy`` 2 decimals in percent (4 as a fraction), capped to 0–100 (0–1);
    ``predicted_std`` 2 significant digits, so a small std never reads as 0; ``constraint_*``
    4 significant digits; probabilities (``p_*``, ``*_probability``) become ``…_pct`` in
    percent with 1 decimal. Other attributes are kept as they are.
    """
    out: dict[str, Any] = {}
    pred = attrs.get("predicted_accuracy")
    if percent is None:
        percent = isinstance(pred, (int, float)) and pred > 1.5
    for key, value in attrs.items():
        if not isinstance(value, float) or not math.isfinite(value):
            out[key] = value
        elif key in SIGNIFICANT:
            out[key] = significant(value, SIGNIFICANT[key])
        elif key == "predicted_accuracy":
            top = 100.0 if percent else 1.0
            out[key] = round(min(max(value, 0.0), top), 2 if percent else 4)
        elif key == "predicted_std":
            out[key] = significant(value, 2)
        elif key.startswith("constraint_"):
            out[key] = significant(value, 4)
        elif key.startswith("p_") or key.endswith("_probability"):
            out[f"{key}_pct"] = round(100.0 * min(max(value, 0.0), 1.0), 1)
        else:
            out[key] = value
    if shape is not None:
        out["depth"], out["width"] = int(shape[0]), float(shape[1])
    return out
