"""Early stopping of doomed trainings: the pure rule behind :class:`~optuna_shape.ShapePruner`.

A training reports its selection accuracy after every epoch. After epoch ``k`` of ``E`` the rule
asks how likely its final (epoch ``E``) accuracy is to reach a *threshold*, and stops the
training when that probability is below ``1 − confidence``.

**Projection.** The final accuracy is projected from the accuracy at epoch ``k`` by a linear
regression over the *reference curves*: the completed ``E``-epoch trainings of the same study
(any shape), each contributing ``(accuracy at epoch k, final accuracy)``. With ``n`` references,
slope ``b`` (least squares, clipped at 0: a higher early accuracy never predicts a lower final
one), residual std ``s`` (``n − 2`` degrees of freedom), the projected final accuracy of a curve
at ``x`` after ``k`` epochs is Student-t distributed with

    mean = ȳ + b (x − x̄),   scale = s · sqrt(1 + 1/n + (x − x̄)² / Sxx),   dof = n − 2,

the classical prediction interval. The references' final accuracies include their seed noise, so
the projection is of an *observed* final accuracy, noise included. Regressing (rather than adding
the mean gain ``final − accuracy at k``) matters early in a training: after one epoch a curve at
30 % can still end at 95 %, the regression then has a slope near 0 and a wide interval, and
nothing is stopped; later the slope approaches 1 and the interval narrows.

**Guards** (documented defaults, all arguments):

* no projection with fewer than ``min_curves`` (default 5, the adaptive policy's initial design)
  reference curves of the same length: before that the study knows too little about its
  curves, and nothing is stopped;
* never before ``min_epochs`` (default ``max(2, ceil(0.3 · E))``: the first learning-rate step of
  the default recipe) nor at the last epoch (nothing left to save);
* a non-finite accuracy in the partial curve stops nothing (divergence is the trainer's job).

**Threshold** (:func:`threshold`): with the goals ``"size"``, ``"latency"``, ``"energy"`` or no
goal, the accuracy floor (nothing is stopped without one); with the goal ``"accuracy"``, the
current answer's accuracy ("cannot beat the current answer"): the highest posterior mean of a
trained shape when the design space is given (the adaptive policy's answer rule; the highest
*measured* mean would chase the luckiest seed and stop good trainings), else the highest measured
mean; at least the floor when there is one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from optuna_shape.shape import Shape

__all__ = [
    "MIN_CURVES",
    "Projection",
    "Verdict",
    "default_min_epochs",
    "project",
    "threshold",
    "verdict",
]

MIN_CURVES = 5
"""Fewest completed reference curves before any training is stopped."""

MIN_EPOCH_FRACTION = 0.3
"""Never stop before this share of the epochs (at least 2 epochs)."""


def default_min_epochs(epochs: int) -> int:
    """``max(2, ceil(0.3 · epochs))``: the first epoch at which a training may be stopped.

    Example:
        >>> default_min_epochs(10), default_min_epochs(200)
        (3, 60)
    """
    return max(2, math.ceil(MIN_EPOCH_FRACTION * epochs))


@dataclass(frozen=True)
class Projection:
    """The projected final accuracy of a partial curve (Student-t, see the module docstring).

    Attributes:
        mean: projected final accuracy.
        scale: scale of the Student-t prediction (its std is ``scale · sqrt(dof / (dof − 2))``).
        dof: degrees of freedom (``n_curves − 2``).
        n_curves: reference curves used.
        epoch: the epoch the projection was made after.
    """

    mean: float
    scale: float
    dof: int
    n_curves: int
    epoch: int

    @property
    def std(self) -> float:
        """Standard deviation of the prediction (the scale when ``dof ≤ 2``)."""
        return self.scale * math.sqrt(self.dof / (self.dof - 2)) if self.dof > 2 else self.scale

    def p_reach(self, value: float) -> float:
        """Probability that the final accuracy is at least ``value``."""
        from scipy.stats import t

        return float(t.sf((value - self.mean) / self.scale, self.dof))


def project(partial: Sequence[float], references: Iterable[tuple[Sequence[float], float]],
            epochs: int, *, min_curves: int = MIN_CURVES) -> Projection | None:
    """Project the final accuracy of a training from its curve so far.

    Args:
        partial: selection accuracy after epochs 1..k (``k = len(partial)``).
        references: ``(curve, final accuracy)`` of completed trainings; only curves of exactly
            ``epochs`` epochs are used.
        epochs: the planned number of epochs ``E``.
        min_curves: fewest usable references (at least 3).

    Returns:
        The projection, or ``None`` with too few references, an empty or non-finite partial
        curve, or ``k ≥ E``.
    """
    k = len(partial)
    if k == 0 or k >= epochs or not all(math.isfinite(a) for a in partial):
        return None
    xs, ys = [], []
    for curve, final in references:
        if len(curve) != epochs or not math.isfinite(final) or not math.isfinite(curve[k - 1]):
            continue
        xs.append(float(curve[k - 1]))
        ys.append(float(final))
    n = len(xs)
    if n < max(3, min_curves):
        return None
    x_bar, y_bar = sum(xs) / n, sum(ys) / n
    sxx = sum((x - x_bar) ** 2 for x in xs)
    sxy = sum((x - x_bar) * (y - y_bar) for x, y in zip(xs, ys, strict=True))
    slope = max(0.0, sxy / sxx) if sxx > 0 else 0.0
    resid = [y - y_bar - slope * (x - x_bar) for x, y in zip(xs, ys, strict=True)]
    s = math.sqrt(sum(r * r for r in resid) / (n - 2))
    x = float(partial[-1])
    lever = (x - x_bar) ** 2 / sxx if sxx > 0 else 0.0
    scale = max(s, 1e-9) * math.sqrt(1.0 + 1.0 / n + lever)
    return Projection(y_bar + slope * (x - x_bar), scale, n - 2, n, k)


@dataclass(frozen=True)
class Verdict:
    """Whether to stop a training now, and why.

    Attributes:
        stop: stop the training.
        reason: plain words (also when not stopping: why not).
        projection: the projection, when one was made.
        threshold: the accuracy the training had to be able to reach.
        probability: P(final accuracy ≥ threshold), when computed.
    """

    stop: bool
    reason: str
    projection: Projection | None = None
    threshold: float | None = None
    probability: float | None = None


def verdict(partial: Sequence[float], references: Iterable[tuple[Sequence[float], float]],
            epochs: int, threshold: float | None, confidence: float, *,
            min_epochs: int | None = None, min_curves: int = MIN_CURVES) -> Verdict:
    """Stop when P(final accuracy ≥ ``threshold``) < ``1 − confidence`` (module docstring).

    Example:
        >>> refs = [([50 + i, 70 + i, 80 + i, 85 + i, 90 + i], 90.0 + i) for i in range(6)]
        >>> verdict([20, 30, 35], refs, 5, threshold=88.0, confidence=0.9).stop
        True
        >>> verdict([53, 73, 83], refs, 5, threshold=88.0, confidence=0.9).stop
        False
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    k = len(partial)
    first = default_min_epochs(epochs) if min_epochs is None else min_epochs
    if threshold is None or not math.isfinite(threshold):
        return Verdict(False, "no threshold (no floor, nothing measured yet)")
    if k < first:
        return Verdict(False, f"epoch {k} < {first}: too early to stop", threshold=threshold)
    if k >= epochs:
        return Verdict(False, "last epoch: nothing left to save", threshold=threshold)
    proj = project(partial, references, epochs, min_curves=min_curves)
    if proj is None:
        return Verdict(False, f"fewer than {max(3, min_curves)} completed {epochs}-epoch "
                       "curves to project from", threshold=threshold)
    p = proj.p_reach(threshold)
    words = (f"after epoch {k} of {epochs} at {partial[-1]:.4g}: projected final "
             f"{proj.mean:.4g} ± {proj.std:.2g} from {proj.n_curves} curves, "
             f"P(≥ {threshold:.4g}) = {p:.3f}")
    if p < 1.0 - confidence:
        return Verdict(True, f"{words} < {1.0 - confidence:.3g}", proj, threshold, p)
    return Verdict(False, words, proj, threshold, p)


def threshold(goal: str | None, floor: float | None,
              measured: Iterable[tuple[Shape, float]],
              domain: Sequence[Shape] | None = None) -> float | None:
    """The accuracy a training must be able to reach (module docstring).

    Args:
        goal: the search goal.
        floor: the accuracy floor, or ``None``.
        measured: ``(shape, accuracy)`` of every successful training so far.
        domain: accuracy goal: with the design space's shapes, the current answer's accuracy is
            the highest *posterior mean* of a trained shape
            (:class:`~optuna_shape.posterior.ShapePosterior` fitted to ``measured``, as the
            adaptive policy picks its answer), which does not chase the luckiest seed; without
            it, the highest measured mean.

    Example:
        >>> a, b = Shape(10, 1.0), Shape(16, 1.0)
        >>> threshold("size", 95.0, [(a, 97.0)]), threshold("accuracy", None, [(a, 97.0),
        ...     (a, 95.0), (b, 95.5)])
        (95.0, 96.0)
    """
    if goal != "accuracy":
        return floor
    groups: dict[Shape, list[float]] = {}
    for shape, value in measured:
        if value is not None and math.isfinite(value):
            groups.setdefault(shape, []).append(float(value))
    if not groups:
        return floor
    if domain is not None and len(groups) >= 2:
        from optuna_shape.posterior import ShapePosterior

        shapes = [s for s, vs in groups.items() for _ in vs]
        values = [v for vs in groups.values() for v in vs]
        mean, _ = ShapePosterior(list(domain) + [s for s in groups if s not in set(domain)]
                                 ).fit(shapes, values).predict(list(groups))
        best = float(max(mean))
    else:
        best = max(sum(v) / len(v) for v in groups.values())
    return best if floor is None else max(best, floor)
