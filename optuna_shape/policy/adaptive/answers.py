"""Which trained shape may be the answer: confirmed ones (:func:`eligible`), and at any budget
the best-supported one when none is confirmed (:func:`unconfirmed_answer`), with the last
training of the budget spent on the shape most likely to become that answer
(:func:`secure_pick`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.stats import norm

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy.adaptive.search import MAX_REPEATS, Search
from optuna_shape.space.shape import Shape

__all__ = ["Evaluation", "eligible", "settled", "p_eligible_after", "unconfirmed_answer",
           "cheaper_plausible", "secure_pick",
           "CONFIRM_MARGIN", "CONFIRM_NOISE_DF", "UNCONFIRMED_MIN_P", "UNCONFIRMED_WITHIN"]

CONFIRM_MARGIN = 2.0  # a single training clear of the floor by this many noise std needs no repeat
CONFIRM_NOISE_DF = 2
"""With a floor, a search stops confident on a shape trained once only when the seed noise is
measured from at least this many repeat degrees of freedom (:func:`settled`)."""
UNCONFIRMED_MIN_P = 0.5
"""An unconfirmed answer (budget spent, nothing confirmed) needs at least this P(f ≥ floor),
or its own measured mean at or above the floor (:func:`unconfirmed_answer`)."""
UNCONFIRMED_WITHIN = 0.1
"""…and a P(f ≥ floor) within this much of the best-supported trained shape's: the search
trades at most this much certainty for a cheaper (or more accurate) answer."""


class Evaluation(NamedTuple):
    """What a goal's rules say of the evidence (:mod:`~optuna_shape.policy.adaptive.accuracy`,
    :mod:`~optuna_shape.policy.adaptive.min_cost`)."""

    answer: Shape | None
    """The confirmed answer, if any."""
    prob: float
    """The stopping rule's probability for it (0 without an answer)."""
    gain: float
    """The next training's expected gain: the largest acquisition value."""
    pick: Shape | None
    """The next shape to train (``None``: nothing worth starting)."""
    why: str
    """Why that shape."""


def eligible(search: Search, post: ShapePosterior, s: Shape, p_floor: float) -> bool:
    """May ``s`` be the answer: trained, its own mean meets the floor, P(f ≥ floor) ≥
    confidence, and a single training is confirmed by a repeat unless it clears the floor
    by two noise std of ``post`` (the decision's fitted posterior; a lone lucky seed is the
    usual way a wrong answer is chosen)."""
    if search.floor is None:
        return True
    m = search.led.mean(s)
    if m < search.floor or p_floor < search.conf:
        return False
    if search.led.count(s) == 1:
        return m >= search.floor + CONFIRM_MARGIN * float(post.noise_std([s])[0])
    return True


def settled(search: Search, post: ShapePosterior, s: Shape) -> bool:
    """May the search stop confident on answer ``s``: there is no floor (no single training
    was let through on a margin), it was trained at least twice, or the seed noise that
    cleared its single training (:func:`eligible`) was measured from at least
    :data:`CONFIRM_NOISE_DF` repeat degrees of freedom (``post``: the decision's posterior).
    An unsettled answer is trained once more before the search stops; until then it still
    serves as the answer the acquisition and early stopping measure against.

    Why: the margin of two noise std is only as good as the noise estimate. After the design
    and one planned repeat, that estimate rests on one pair of trainings of one (large) shape
    plus the prior; where the seed noise is larger, or larger on small shapes, a single lucky
    training of a small shape cleared it and the search stopped confident on a shape below
    the floor (measured: 3 of 20 size searches on ``digits-hard`` with the floor at the
    median, one seed 2.4 points above the floor, the shape's true mean 2.1 below)."""
    return (search.floor is None or search.led.count(s) >= 2
            or post.noise_.repeat_df >= CONFIRM_NOISE_DF)


def p_eligible_after(search: Search, post: ShapePosterior, mean: np.ndarray,
                     std: np.ndarray, shapes: Sequence[Shape] | None = None,
                     k: np.ndarray | float = 1.0) -> np.ndarray:
    """Probability that ``k`` more trainings (default one) of each shape (default: every
    feasible one) lift its P(f ≥ floor) to the confidence: the posterior std shrinks to ``s'``
    (``k`` more noisy observations) and the mean moves by ``N(0, s² − s'²)``; eligibility needs
    mean' ≥ floor + z·s'."""
    assert search.floor is not None
    sn2 = post.noise_std(search.feasible if shapes is None else shapes) ** 2
    s2 = std**2
    s2_next = s2 * sn2 / (np.asarray(k, dtype=float) * s2 + sn2)
    move = np.sqrt(np.maximum(s2 - s2_next, 1e-300))
    z = float(norm.ppf(search.conf))
    return norm.cdf((mean - search.floor - z * np.sqrt(s2_next)) / move)


def unconfirmed_answer(search: Search, post: ShapePosterior) -> Shape | None:
    """The best-supported trained shape when none is confirmed.

    The candidates are the trained shapes that plausibly meet the floor: P(f ≥ floor) at
    least :data:`UNCONFIRMED_MIN_P`, or their own measured mean at or above the floor. Among
    them, those whose P(f ≥ floor) is within :data:`UNCONFIRMED_WITHIN` of the highest
    candidate's (and at least ``UNCONFIRMED_MIN_P`` whenever some candidate reaches it), the
    goal's best — min-cost goals: the cheapest (then the more probable); accuracy: the highest
    posterior mean. ``None`` when no trained shape plausibly meets the floor.

    Why the measured mean: on a flat, noisy landscape with the floor near the top, the
    posterior pulls a shape measured above the floor towards its neighbours, and every
    trained shape can sit below P = 0.5 although some were measured above the floor. The
    search then ended with no answer in most such searches while the shapes it had measured
    above the floor often met it. Such a shape is answered unconfirmed, with its (low)
    probability."""
    if search.floor is None:
        return None
    led = search.led
    tr = [s for s in led.values if s in search.index]
    if not tr:
        return None
    mean, std = post.predict(tr)
    pf = {s: float(p) for s, p in zip(tr, search.p_floor(mean, std), strict=True)}
    cand = [s for s in tr if pf[s] >= UNCONFIRMED_MIN_P or led.mean(s) >= search.floor]
    if not cand:
        return None
    top = max(pf[s] for s in cand)
    ok = [s for s in cand
          if pf[s] >= max(min(top, UNCONFIRMED_MIN_P), top - UNCONFIRMED_WITHIN)]
    if search.goal == "accuracy":
        pm = dict(zip(tr, mean, strict=True))
        return max(ok, key=lambda s: (pm[s], pf[s], -search.cost(s)))
    return min(ok, key=lambda s: (search.cost(s), -pf[s]))


def cheaper_plausible(search: Search, post: ShapePosterior, answer: Shape) -> list[Shape]:
    """The trained shapes cheaper than ``answer`` that plausibly meet the floor: their own
    measured mean meets it and their P(f ≥ floor) is at least ``UNCONFIRMED_MIN_P``
    (cheapest first; none without a floor or for the accuracy goal)."""
    if search.floor is None or search.goal == "accuracy":
        return []
    led = search.led
    ca = search.cost(answer)
    tr = [s for s in led.values if s in search.index and s != answer
          and search.cost(s) < ca and led.mean(s) >= search.floor]
    if not tr:
        return []
    mean, std = post.predict(tr)
    pf = dict(zip(tr, search.p_floor(mean, std), strict=True))
    return sorted((s for s in tr if pf[s] >= UNCONFIRMED_MIN_P),
                  key=lambda s: (search.cost(s), -pf[s]))


def secure_pick(search: Search, post: ShapePosterior) -> tuple[Shape, str] | None:
    """The last training of the budget when nothing is confirmed yet: the shape most likely
    to meet the floor (running trainings fantasised), or — once that probability is at least
    ``UNCONFIRMED_MIN_P`` — a cheaper one within ``UNCONFIRMED_WITHIN`` of it (min-cost
    goals), so the search ends with an answer the evidence supports rather than a cheaper
    long shot."""
    led = search.led
    fpost = post.with_fantasies(list(search.evidence.pending)) if search.n_pending else post
    cand = [s for s in search.feasible if search.proposable(s) and s not in led.pending
            and led.count(s) < MAX_REPEATS and search.budget.affordable(s)]
    if not cand:
        return None
    mean, std = fpost.predict(cand)
    pf = dict(zip(cand, search.p_floor(mean, std), strict=True))
    top = max(pf.values())
    if top < 1.0 - search.conf:
        return None
    near = [s for s in cand
            if pf[s] >= max(top - UNCONFIRMED_WITHIN, min(top, UNCONFIRMED_MIN_P))]
    if search.goal == "accuracy":
        pick = max(near, key=lambda s: (pf[s], -search.cost(s)))
    else:
        pick = min(near, key=lambda s: (search.cost(s), -pf[s]))
    return pick, (f"last training of the budget, nothing confirmed yet: the best-supported "
                  f"shape, P(accuracy ≥ floor) = {pf[pick]:.2f}")
