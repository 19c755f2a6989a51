"""The accuracy goal: the answer (the highest posterior mean among eligible trained shapes), the
stopping rule's P(the answer is within noise of the best feasible shape), and the acquisition —
augmented expected improvement over the best trained posterior mean, weighted by P(f ≥ floor)
and divided by the cost weight."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from optuna_shape.models.compute import format_seconds
from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy.adaptive.answers import Evaluation, eligible
from optuna_shape.policy.adaptive.search import MAX_PLAUSIBLE, MAX_REPEATS, N_DRAWS, Search
from optuna_shape.space.constraints import goal_key
from optuna_shape.space.shape import Shape

__all__ = ["answer", "evaluate", "pick", "acquisition", "fresh_values", "plausible", "p_optimal",
           "STOP_TOLERANCE", "NEGLIGIBLE_GAIN", "priced_out"]

STOP_TOLERANCE = 0.5  # accuracy goal: "optimal within" this many noise std of the answer

NEGLIGIBLE_GAIN = 1e-3
"""A training is started only when its expected improvement is at least this many seed-noise
std of its shape: below it, the training is not expected to move the answer by anything a user
could see.

Why: under a compute budget the last seconds pay only for the cheapest shapes, and those were
worth nothing — long shots measured points below the best, their expected improvement 0 or
4·10⁻⁵ points against a noise std of 0.49 — yet the search trained them, the first in the grid's
order among equal zeros (on a replayed ``digits`` grid with 10 % of the exhaustive compute,
7 of 8 traced searches ended on a repeat of its worst shape, 94.2 against the best 98.7). With
many workers the running trainings, fantasised at their posterior mean, leave the rest of the grid
worth as little; an idle worker now waits for a result instead: in the policy replay of
``benchmarks/many_workers.py`` 64 workers trained 104 times instead of 131 and answered sooner
(32× one worker's speed instead of 28×), with answers as good as one worker's in 10 of 10.
One worker without a budget never came near it on the recorded landscapes."""


def answer(search: Search, post: ShapePosterior, mean: np.ndarray, pf: np.ndarray
           ) -> Shape | None:
    """The eligible trained shape first in the goal's order: the highest posterior mean, then
    the smaller (:func:`~optuna_shape.space.constraints.goal_key`)."""
    tr = [s for s in search.led.values if s in search.index]
    ok = [s for s in tr if eligible(search, post, s, float(pf[search.index[s]]))]
    return min(ok, key=lambda s: goal_key("accuracy", mean[search.index[s]], search.cost(s)),
               default=None)


def evaluate(search: Search, post: ShapePosterior) -> Evaluation:
    """The answer, its P(optimal), the next pick, why, and its expected improvement."""
    mean, std = post.predict(search.feasible)
    pf = search.p_floor(mean, std)
    best = answer(search, post, mean, pf)
    prob = p_optimal(search, post, mean, std, best) if best is not None else 0.0
    s, why, gain = pick(search, post)
    return Evaluation(best, prob, gain, s, why)


def pick(search: Search, post: ShapePosterior) -> tuple[Shape | None, str, float]:
    """(next shape or ``None``, why, the largest expected improvement); ``None`` also when no
    shape a training could start on now is expected to improve by :data:`NEGLIGIBLE_GAIN`."""
    ei, fmean, fstd, best = acquisition(search, post)
    gain = float(np.max(ei))
    ok = search.startable(MAX_REPEATS) & _worth(search, post, ei)
    if not ok.any():
        return None, "", gain
    weight = search.budget.cost_weight()
    i = int(np.argmax(np.where(ok, ei / weight, -np.inf)))
    why = (f"expected improvement {ei[i]:.3g} (posterior {fmean[i]:.4g} ± {fstd[i]:.2g}, "
           f"best trained {best:.4g})" + _per_compute(search, i, weight))
    return search.feasible[i], why, gain


def priced_out(search: Search, post: ShapePosterior) -> bool:
    """Under a compute budget, when no training is worth starting now: whether a shape still
    is worth one (expected improvement at least :data:`NEGLIGIBLE_GAIN` noise std) — the
    compute left pays for none of those, so it is the budget that ends the search."""
    if search.budget.seconds is None:
        return False
    return bool(np.any(_worth(search, post, acquisition(search, post)[0])))


def _worth(search: Search, post: ShapePosterior, ei: np.ndarray) -> np.ndarray:
    """Which feasible shapes' expected improvement ``ei`` is worth a training."""
    return ei >= NEGLIGIBLE_GAIN * post.noise_std(search.feasible)


def acquisition(search: Search, post: ShapePosterior
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Augmented expected improvement of every feasible shape over the best posterior mean
    of the trained and running shapes (running ones fantasised), weighted by P(f ≥ floor);
    with the fantasised mean, std and that best. A shape already tried (trained, or only
    stopped early: its forecasts are evidence too) is worth 0 while P(f > best) ≤
    1 − confidence: a replayed search started a narrow shape again after its first training
    was stopped far below the best, and spent one of the cap's trainings on it."""
    fpost, fmean, fstd = search.fantasised(post)
    trained = [search.index[s] for s in search.led.values if s in search.index]
    trained += [search.index[s] for s in search.led.pending if s in search.index]
    best = float(np.max(fmean[trained])) if trained else float(np.max(fmean))
    sn = post.noise_std(search.feasible)
    z = (fmean - best) / fstd
    ei = fstd * (z * norm.cdf(z) + norm.pdf(z))
    ei *= 1.0 - sn / np.sqrt(fstd**2 + sn**2)
    ei *= search.p_floor(fmean, fstd)
    tried = np.array([search.led.tried(s) for s in search.feasible])
    ei[tried & (norm.cdf(z) <= 1.0 - search.conf)] = 0.0  # not again a long shot
    return ei, fmean, fstd, best


def fresh_values(search: Search, post: ShapePosterior) -> np.ndarray:
    """The accuracy acquisition of every shape a training could start on now (``nan``
    for the others)."""
    ei = acquisition(search, post)[0]
    return np.where(search.startable(MAX_REPEATS), ei, np.nan)


def _per_compute(search: Search, i: int, weight: np.ndarray) -> str:
    """Words for the cost weighting of a pick (empty when costs are unknown)."""
    tc = search.budget.tc
    if not tc.known or weight[i] == 1.0:
        return ""
    return (f", per compute: {format_seconds(tc.mean(search.feasible[i]))} predicted "
            "per training")


def plausible(mean: np.ndarray, std: np.ndarray, a: int) -> list[int]:
    """Indices of the shapes that may be better than shape ``a`` (at most
    :data:`~optuna_shape.policy.adaptive.search.MAX_PLAUSIBLE` besides it)."""
    ucb = mean + 3.0 * std
    cand = np.flatnonzero(ucb >= mean[a] - 3.0 * std[a])
    cand = cand[np.argsort(-ucb[cand])][:MAX_PLAUSIBLE]
    return sorted(set(cand.tolist()) | {a})


def p_optimal(search: Search, post: ShapePosterior, mean: np.ndarray, std: np.ndarray,
              best: Shape) -> float:
    """P(f(best) ≥ max f − tol) over the plausible shapes, ``tol`` half the noise std of
    ``best`` (joint posterior draws)."""
    idx = plausible(mean, std, search.index[best])
    draws = post.sample([search.feasible[i] for i in idx], N_DRAWS, search.rng())
    a = idx.index(search.index[best])
    tol = STOP_TOLERANCE * float(post.noise_std([best])[0])
    return float(np.mean(draws[:, a] >= draws.max(axis=1) - tol))
