"""Compute: what a training costs, in seconds of training time, and the budget in those units.

**The unit.** A search's compute budget is in *seconds of training time summed over every
training* (every worker): with one GPU per worker that is GPU-seconds, so ``budget="8h"`` is
eight GPU-hours whether one worker trains for eight hours or sixteen workers for thirty minutes.
Wall-clock training time is what users pay for and what the study measures without help; it
needs no reference shape and stays meaningful when the family or the data change. A training is
charged the ``train_seconds`` user attribute its objective stored (the built-in objective does;
a custom objective may store its own figure, e.g. wall time × GPUs for a multi-GPU training),
else its trial's duration. Full, partial (stopped early), repeated and failed trainings all
charge what they used; screening (latency and energy measurements) is not training and is not
charged.

**The cost model** (:class:`TrainingCost`) predicts the seconds of a *full* training of every
feasible shape from the study's own trainings: ``log(seconds) = a + b · log(work)`` where
``work`` is what the family knows of a shape's cost (multiply-accumulates per forward pass when
countable, else parameters), fitted by Bayesian linear regression with the prior ``b ~ N(1,
0.35²)`` (time proportional to work) so that one training already gives a whole-grid estimate,
and a log-normal predictive spread from the residuals about the fit (at least 15 %, the
run-to-run jitter of a GPU epoch), wider beyond the work of every trained shape (there the slope
is as unsure as its prior). A training stopped after ``k`` of ``E`` epochs counts as
``seconds · E / k`` of a full one when both are known; a failed training charges its seconds but
teaches the model nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optuna_shape.space.shape import Shape

__all__ = ["parse_budget", "format_seconds", "TrainingCost", "CostObservation"]

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0,
          "gpu-h": 3600.0, "gpuh": 3600.0, "d": 86400.0}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_SECONDS = re.compile(rf"^\s*{_NUMBER}\s*$")
_PART = re.compile(rf"\s*{_NUMBER}\s*([a-zA-Z-]+)")
_AMOUNTS = re.compile(rf"^(?:\s*{_NUMBER}\s*[a-zA-Z-]+)+\s*$")
SLOPE_PRIOR = (1.0, 0.35)
"""Prior mean and std of the exponent ``b`` in ``seconds ∝ work^b``."""
MIN_LOG_SPREAD = 0.15
"""Smallest predictive std of ``log(seconds)``: epoch times jitter by about this much."""


def parse_budget(value: str | float | int | None) -> float | None:
    """A compute budget in seconds of training time, from a number of seconds or a string with
    a unit, or several: ``"3600"``, ``"90s"``, ``"45m"``, ``"8h"``, ``"8gpu-h"``, ``"2d"``,
    ``"1h30m"``, ``"2d 4h"``; ``None`` stays ``None`` (no compute budget).

    Raises:
        ValueError: not a positive, finite amount in known units (one line naming the value).

    Example:
        >>> parse_budget("8h"), parse_budget("45m"), parse_budget(120), parse_budget("1h30m")
        (28800.0, 2700.0, 120.0, 5400.0)
    """
    if value is None:
        return None
    valid = ("a positive number of seconds, or a number with a unit: s, m, h (GPU-hours with "
             "one GPU per worker), d — e.g. 3600, 45m, 8h, 1h30m")
    if isinstance(value, bool):
        raise ValueError(f"budget must be {valid}; got budget={value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value)
        bare = _SECONDS.match(text)
        parts = ([(bare.group(1), "s")] if bare else  # a number alone: seconds
                 [(n, u.lower()) for n, u in _PART.findall(text)] if _AMOUNTS.match(text)
                 else [])  # one amount or several, each with its unit: 8h, 1h30m
        if not parts or any(unit not in _UNITS for _, unit in parts):
            raise ValueError(f"budget must be {valid}; got budget={value!r}")
        seconds = sum(float(n) * _UNITS[unit] for n, unit in parts)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"budget must be {valid}; got budget={value!r}")
    return seconds


def format_seconds(seconds: float) -> str:
    """Seconds as a person reads them: ``42 s``, ``12.5 min``, ``3.2 h``.

    Example:
        >>> format_seconds(42), format_seconds(750), format_seconds(11520)
        ('42 s', '12.5 min', '3.2 h')
    """
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


@dataclass(frozen=True)
class CostObservation:
    """What one finished training says about the cost of its shape: ``seconds`` charged,
    ``fraction`` of a full training it ran (``epochs run / planned epochs``; 1.0 when unknown
    or complete) and whether it teaches the cost model (``False`` for failures)."""

    shape: Shape
    seconds: float
    fraction: float = 1.0
    informative: bool = True


class TrainingCost:
    """Predicted seconds of a full training of every shape (see the module docstring)."""

    def __init__(self, work: Mapping[Shape, float],
                 observations: Sequence[CostObservation] = ()) -> None:
        self.work = {s: max(float(w), 1e-12) for s, w in work.items()}
        rows = [(o.shape, o.seconds / o.fraction) for o in observations
                if o.informative and o.seconds > 0 and 0 < o.fraction <= 1
                and math.isfinite(o.seconds) and self._work_of(o.shape) is not None]
        self.n_observations = len(rows)
        self._fit([(math.log(self._work_of(s) or 1.0), math.log(t)) for s, t in rows])

    def _work_of(self, shape: Shape) -> float | None:
        w = self.work.get(shape)
        if w is None:
            w = self.work.get(Shape(shape.depth, shape.width))
        return w

    def _fit(self, xy: list[tuple[float, float]]) -> None:
        self.known = bool(xy)
        if not xy:
            self.a, self.b, self.log_sd = 0.0, SLOPE_PRIOR[0], math.inf
            return
        x = np.array([p[0] for p in xy])
        y = np.array([p[1] for p in xy])
        xc = float(np.mean(x))
        b0, sb = SLOPE_PRIOR
        sxx = float(np.sum((x - xc) ** 2))
        sxy = float(np.sum((x - xc) * (y - np.mean(y))))
        self.a = float(np.mean(y))
        self._xc, self._n = xc, len(xy)
        self._x_range = (float(np.min(x)), float(np.max(x)))
        # posterior of b with the intercept at the centred mean (flat prior on it), and the
        # residual scale about that fit (the jitter until a few points pool it): the two are
        # fitted together, so a grid whose seconds grow more slowly than its work (fixed
        # per-batch overheads) widens neither the spread nor the cost of its largest shapes
        sigma = MIN_LOG_SPREAD
        for _ in range(4 if len(xy) >= 3 else 1):
            prec = 1.0 / sb**2 + sxx / sigma**2
            self.b = (b0 / sb**2 + sxy / sigma**2) / prec
            self._b_var = 1.0 / prec
            if len(xy) < 3:
                break
            resid = y - (self.a + self.b * (x - xc))
            sigma = max(MIN_LOG_SPREAD, float(np.sqrt(np.sum(resid**2) / (len(xy) - 1))))
        self.log_sd = sigma

    def predict(self, shape: Shape) -> tuple[float, float]:
        """``(mean, std)`` of the seconds of one full training of ``shape``; ``(nan, inf)``
        while no training has been observed (the scale is unknown) or the shape's work is."""
        w = self._work_of(shape)
        if not self.known or w is None:
            return math.nan, math.inf
        x = math.log(w)
        dx = x - self._xc
        mu = self.a + self.b * dx
        var = self.log_sd**2 * (1.0 + 1.0 / self._n) + self._b_var * dx * dx
        # beyond the work of every trained shape the power law is an extrapolation: a grid
        # whose seconds are an overhead plus a part proportional to the work has a slope
        # that grows with the work, so there the slope is as unsure as the prior says
        out = max(0.0, x - self._x_range[1], self._x_range[0] - x)
        var += (SLOPE_PRIOR[1] * out) ** 2
        mean = math.exp(mu + var / 2.0)
        std = mean * math.sqrt(math.expm1(var))
        return mean, std

    def mean(self, shape: Shape) -> float:
        """The predicted mean seconds of a full training of ``shape`` (``nan`` when unknown)."""
        return self.predict(shape)[0]
