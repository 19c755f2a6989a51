"""How far each training goes: after every epoch, continue only while the rest of the training
is worth its compute.

A pure function of the search's problem, its evidence and a running training's learning curve
so far (:func:`keep_training`); :class:`~optuna_shape.ShapePruner` applies it inside
``trial.should_prune()``.

**The forecast.** :class:`~optuna_shape.models.learning_curves.CurveModel`, fitted on every
completed curve of the study with the same planned number of epochs ``E`` (all shapes together,
with the shapes' training work as a feature, so that large networks that start slowly are not judged
like small ones), forecasts the training's final accuracy ``F`` from its first ``k`` epochs
with a calibrated spread.

**The rule** (adaptive policy, accuracy goal or a floor).

* Accuracy goal: the value of the remaining epochs is the expected improvement of ``F`` over
  the current answer's accuracy (the highest posterior mean of a trained shape), weighted by
  P(F ≥ floor) with a floor. That value per unit of the budget still to spend on it
  (``(E − k) / E`` of a training; under a compute budget, times the shape's predicted training
  cost) is compared with the best value per unit of budget of starting a training now — the
  acquisition the policy would use, over every shape it could start, each per its cost (under
  a compute budget costs are raised to the power ``α``, the share of the budget still left,
  as the acquisition does). The training continues while its value per compute is at least
  the best fresh one, and stops once it has less than a 1 % chance to beat the current answer.
  Without a compute budget it is compared with a fresh start only once its chance to
  change the answer is below ``(1 − confidence) / 2`` (0.05 at the default 0.9): a training
  stopped with a larger chance stays, through its forecast's spread, a rival that the
  stopping rule's P(the answer is within noise of the best) cannot rule out, so the search
  trains more shapes to become confident and meets more lucky single trainings on the way.
  On a replayed noisy-label WRN grid whose curves peak and fall (``benchmarks/compute.py``,
  ``digits-noisy``), stopping such rivals after 5 of 16 epochs doubled the accuracy goal's
  regret against full trainings (0.56 against 0.24 points) for 0.74 of their compute. Under
  a compute budget the search ends when the budget does, seldom confident, and the epochs
  a rival keeps are taken from the trainings left: there it yields to a better use of its
  compute as before (kept going there too, half the compute of full trainings answered
  0.12 points worse on the held-out ``digits-mlp-noisy``).
* Size, latency, energy goals: a training stops only when it cannot become a cheaper answer:
  less than a 1 % chance that ``F`` meets the floor, or a shape no cheaper than the current
  answer. On the tuning landscapes (``benchmarks/compute.py``, floors inside the seed noise),
  stopping these trainings for value per compute as well saved a third of the compute but kept
  the floor in 65 % of searches instead of 80 %.

A stopped training is not wasted: its forecast enters the posterior as an observation with the
forecast's variance added to the seed noise; it counts as one training towards
``max_trainings``, and under a compute budget it charges only the epochs it ran.

**Guards.** Nothing is stopped before ``max(2, ⌈0.2 E⌉)`` epochs or at the last one, before
:data:`MIN_CURVES` completed curves of length ``E`` exist, in ``mode="paper"``, without a goal
(or a min-cost goal without a floor), with the frontier goal (each shape on the front is
returned with its measured accuracy), while no training has succeeded, when the shape already
has a full training (a repeat: its purpose is a full measurement), or while the forecast says
the training will more likely than not beat the current answer (accuracy) or meet the floor
(min-cost goals). Nor is a training stopped on its forecast while no completed curve is of a
network within a factor of 2 of the shape's training work: the forecast would extrapolate how
a much larger or smaller network learns (large networks start slowly). On the recorded curves
(``benchmarks/curve_calibration.py``) such forecasts are off by 1.3–4 times the error in
range, and put the true final beyond their 1 % upper tail up to 4–5 times as often; in a
traced ``digits`` search under a compute budget, the largest network, 52.5 % after 2 of 10
epochs, was forecast 89.5 ± 2.3 from nine curves of smaller networks and stopped as hopeless
(its mean final accuracy is 98.2). A min-cost shape no cheaper than the current answer still
stops: that needs no forecast. Under a compute budget, a training whose remaining epochs would
take more than half of the budget left is judged on its forecast all the same (on ``digits``
with 10 % of the exhaustive compute, finishing the largest design shape took most of the budget
and cost answers). The answer is always a shape measured by full trainings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from optuna_shape.models.learning_curves import CurveForecast, CurveModel
from optuna_shape.policy import Evidence, Problem, Settings
from optuna_shape.space.constraints import MIN_COST_GOALS, is_frontier
from optuna_shape.space.shape import Shape

__all__ = ["Fidelity", "keep_training", "min_epochs", "MIN_CURVES"]

MIN_CURVES = 2
"""Completed curves of the same length needed before any training is stopped."""
MIN_EPOCH_FRACTION = 0.2
MATTERS_AT_LEAST = 0.01
"""A training whose forecast gives it less than this chance to beat the current answer
(accuracy) or meet the floor (min-cost goals) stops even when nothing else is worth starting."""
EXTRAPOLATION_DECADES = math.log10(2.0)
"""A training is not stopped on its forecast while its shape's training work is more than this
many decades (a factor of 2) beyond that of every shape with a completed curve."""


def min_epochs(epochs: int) -> int:
    """``max(2, ⌈0.2 E⌉)``: the first epoch after which a training may be stopped.

    Example:
        >>> min_epochs(10), min_epochs(100)
        (2, 20)
    """
    return max(2, math.ceil(MIN_EPOCH_FRACTION * epochs))


@dataclass(frozen=True)
class Fidelity:
    """A verdict on a running training.

    Attributes:
        stop: stop it now.
        reason: plain words (also when it continues).
        forecast: the learning curve's forecast of its final accuracy, when one was made.
        value: value per compute of the remaining epochs, when computed.
        fresh: the best value per compute of starting something else, when computed.
    """

    stop: bool
    reason: str
    forecast: CurveForecast | None = None
    value: float | None = None
    fresh: float | None = None


def _ei(mean: np.ndarray | float, std: np.ndarray | float, best: float) -> np.ndarray:
    std = np.maximum(np.asarray(std, dtype=float), 1e-12)
    z = (np.asarray(mean, dtype=float) - best) / std
    return std * (z * norm.cdf(z) + norm.pdf(z))


def keep_training(problem: Problem, evidence: Evidence, settings: Settings, shape: Shape,
                  prefix: Sequence[float], epochs: int) -> Fidelity:
    """Whether the running training of ``shape`` (``prefix``: its accuracy after each epoch so
    far; ``epochs``: its planned epochs) should go on (module docstring). ``evidence`` lists the
    finished trainings (with their curves) and the pending ones, this one included."""
    from optuna_shape.models.posterior import single_threaded_blas

    with single_threaded_blas():
        return _keep_training(problem, evidence, settings, shape, list(prefix), epochs)


def _keep_training(problem: Problem, evidence: Evidence, settings: Settings, shape: Shape,
                   prefix: list[float], epochs: int) -> Fidelity:
    from optuna_shape.policy.adaptive import decision
    from optuna_shape.policy.adaptive.accuracy import fresh_values
    from optuna_shape.policy.adaptive.min_cost import reference_cost

    k = len(prefix)
    if settings.mode != "adaptive" or problem.goal is None or (
            problem.goal in MIN_COST_GOALS and problem.min_accuracy is None):
        return Fidelity(False, "no accuracy goal or floor: every training runs to the end")
    if is_frontier(problem.goal):
        return Fidelity(False, "frontier goal: every shape on the front needs a full "
                               "measurement, so every training runs to the end")
    if k >= epochs:
        return Fidelity(False, "last epoch: nothing left to save")
    if k < min_epochs(epochs):
        return Fidelity(False, f"epoch {k} < {min_epochs(epochs)}: too early to judge")
    if not all(math.isfinite(v) for v in prefix):
        return Fidelity(False, "a non-finite accuracy (the trainer handles divergence)")
    d = decision(problem, evidence, settings)
    if shape in d.led.values:
        return Fidelity(False, "a repeat of a trained shape runs to the end")
    curves = [t for t in evidence.trainings
              if t.value is not None and not t.partial and len(t.curve) == epochs]
    if len(curves) < MIN_CURVES:
        return Fidelity(False, f"fewer than {MIN_CURVES} completed {epochs}-epoch curves")
    if not d.led.values:
        return Fidelity(False, "no training has succeeded yet")
    work = problem.work or problem.sizes

    def feature(s: Shape) -> float:
        w = work.get(s)
        return math.log10(w) if w is not None and w > 0 else math.nan

    f = feature(shape)
    feats = [feature(t.shape) for t in curves]
    seen = [x for x in feats if math.isfinite(x)]
    extrapolates = math.isfinite(f) and bool(seen) and not (
        min(seen) - EXTRAPOLATION_DECADES <= f <= max(seen) + EXTRAPOLATION_DECADES)
    if extrapolates and d.budget.seconds is not None:
        # under a compute budget, epochs that would take more than half of what is left are
        # judged on the forecast all the same: the budget cannot pay to learn the network
        rest = d.budget.cost_or_zero(shape) * (epochs - k) / epochs
        extrapolates = rest <= 0.5 * (d.budget.compute_left() + rest)
    unseen = (f": no completed curve of a network within {10 ** EXTRAPOLATION_DECADES:g}× its "
              "training work, so the forecast would extrapolate how such a network learns")
    model = CurveModel.fit([t.curve for t in curves], epochs, feats)
    fc = model.forecast(prefix, f if math.isfinite(f) else None)
    post = d.fit()
    floor = problem.min_accuracy
    p_floor = 1.0 if floor is None else fc.prob_at_least(floor)
    words = (f"after epoch {k} of {epochs} at {prefix[-1]:.4g}: forecast final "
             f"{fc.mean:.4g} ± {fc.std:.2g} from {model.n_curves} curves")
    if problem.goal != "accuracy":
        if p_floor >= 0.5:
            return Fidelity(False, f"{words}: likely to meet the floor {floor:g}", fc)
        cheaper = d.cost(shape) < reference_cost(d, post)
        p_matters = p_floor if cheaper else 0.0
        what = (f"P(≥ floor {floor:g}) = {p_floor:.3f}" if cheaper else
                "not cheaper than the current answer")
        if cheaper and extrapolates:
            return Fidelity(False, f"{words}; {what}{unseen}", fc)
        if p_matters < MATTERS_AT_LEAST:
            return Fidelity(True, f"{words}; {what}: it cannot become a cheaper answer "
                            f"(P < {MATTERS_AT_LEAST:g})", fc)
        return Fidelity(False, f"{words}; {what}: it may still become a cheaper answer", fc)
    mean, _ = post.predict(d.feasible)
    best = float(np.max(mean[[d.index[s] for s in d.led.values if s in d.index]]))
    p_beat = fc.prob_at_least(best) * p_floor
    if fc.prob_at_least(best) >= 0.5 and p_floor >= 0.5:
        return Fidelity(False, f"{words}: likely to beat the current answer {best:.4g}", fc)
    value = float(_ei(fc.mean, fc.std, best)) * p_floor
    what = f"expected improvement {value:.3g} over {best:.4g}"
    if extrapolates:
        return Fidelity(False, f"{words}; {what}{unseen}", fc, value)
    if p_beat < MATTERS_AT_LEAST:
        return Fidelity(True, f"{words}; {what}: P(it changes the answer) = {p_beat:.3f} < "
                        f"{MATTERS_AT_LEAST:g}", fc, value)
    rival = (1.0 - d.conf) / 2.0
    if p_beat >= rival and d.budget.seconds is None:
        return Fidelity(False, f"{words}; {what}: P(it changes the answer) = {p_beat:.3f} ≥ "
                        f"{rival:.3g}: stopped now it would stay a rival that the confident stop "
                        "must still rule out", fc, value)
    left = (epochs - k) / epochs
    per_now = value / max(d.budget.relative_cost(shape) * left, 1e-12) ** d.budget.alpha()
    fresh = fresh_values(d, post)
    ok = np.isfinite(fresh)
    best_fresh = float(np.max(fresh[ok] / d.budget.cost_weight()[ok])) if ok.any() else 0.0
    if per_now >= best_fresh:
        return Fidelity(False, f"{words}; {what}: worth its remaining compute "
                        f"({per_now:.3g} ≥ {best_fresh:.3g} for starting another shape)",
                        fc, per_now, best_fresh)
    return Fidelity(True, f"{words}; {what}: starting another shape is worth more per compute "
                    f"({best_fresh:.3g} > {per_now:.3g})", fc, per_now, best_fresh)
