"""The min-cost goals (size, latency, energy) with a floor: the answer (the cheapest eligible
trained shape), the stopping rule's P(it meets the floor and nothing cheaper does), and the
acquisition — the expected saving ``p_k · log(C / cost)`` of every shape cheaper than the answer,
``p_k`` the chance that the trainings the budget can still spend on it make it an answer
(:func:`confirm_horizon`), and of the answer itself while it is not yet sure."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy.adaptive.answers import (
    Evaluation,
    cheaper_plausible,
    eligible,
    p_eligible_after,
)
from optuna_shape.policy.adaptive.search import MAX_PLAUSIBLE, MAX_REPEATS, N_DRAWS, Search
from optuna_shape.space.constraints import goal_key
from optuna_shape.space.shape import Shape

__all__ = ["answer", "current_answer", "p_cheapest", "evaluate", "pick", "acquisition",
           "confirm_horizon", "budget_answer", "reference_cost"]

_ANSWER_REPEAT_UNTIL = 0.99


def answer(search: Search, post: ShapePosterior, pf: np.ndarray) -> Shape | None:
    """The eligible trained shape first in the goal's order (the cheapest, then the better
    measured: :func:`~optuna_shape.space.constraints.goal_key`); ``pf``: P(f ≥ floor)
    of every feasible shape under ``post``."""
    tr = [s for s in search.led.values if s in search.index]
    ok = [s for s in tr if eligible(search, post, s, float(pf[search.index[s]]))]
    return min(ok, key=lambda s: goal_key(search.goal, search.led.mean(s), search.cost(s)),
               default=None)


def current_answer(search: Search, post: ShapePosterior) -> Shape | None:
    """The answer under ``post`` (the decision's fitted posterior)."""
    mean, std = post.predict(search.feasible)
    return answer(search, post, search.p_floor(mean, std))


def p_cheapest(search: Search, post: ShapePosterior, mean: np.ndarray, std: np.ndarray,
               best: Shape) -> float:
    """P(``best`` meets the floor and no cheaper shape has f ≥ floor + tol), ``tol`` one noise
    std of ``best`` (joint posterior draws)."""
    floor = search.floor
    assert floor is not None
    a = search.index[best]
    tol = float(post.noise_std([best])[0])
    ca = search.cost(best)
    p_hi = norm.sf((floor + tol - mean) / np.maximum(std, 1e-12))
    cheaper = [i for i, s in enumerate(search.feasible)
               if search.cost(s) < ca and p_hi[i] > 1e-3]
    cheaper = sorted(cheaper, key=lambda i: -p_hi[i])[:MAX_PLAUSIBLE]
    idx = [a] + cheaper
    draws = post.sample([search.feasible[i] for i in idx], N_DRAWS, search.rng())
    ok = draws[:, 0] >= floor
    if cheaper:
        ok &= np.all(draws[:, 1:] < floor + tol, axis=1)
    return float(np.mean(ok))


def budget_answer(search: Search, post: ShapePosterior, answer: Shape, prob: float
                  ) -> tuple[Shape, float]:
    """The answer of a stop without confidence (the budget spent, or nothing useful left)
    when the confirmed answer ``answer`` has P(it meets the floor and nothing cheaper does)
    = ``prob`` below the confidence: among it and the cheaper trained shapes that plausibly
    meet the floor (:func:`~optuna_shape.policy.adaptive.answers.cheaper_plausible`), the
    one the stopping rule's own probability favours most — P(meets the floor and nothing
    cheaper does), on the same posterior draws — with that probability.

    Why: for a min-cost goal the right answer is the cheapest shape that meets the floor,
    and the stopping rule measures exactly that. When the budget ends with the only
    confirmed shape much larger than a cheaper candidate, the search may itself believe the
    cheaper one is more likely the right answer; answering the larger one as settled would
    return a shape the evidence says is probably not what the user asked for. A cheaper
    shape chosen this way is returned as an *unconfirmed* answer with its P(f ≥ floor)."""
    cand = cheaper_plausible(search, post, answer)
    if not cand:
        return answer, prob
    mean, std = post.predict(search.feasible)
    best, best_p = answer, p_cheapest(search, post, mean, std, answer)
    for s in cand:
        p = p_cheapest(search, post, mean, std, s)
        if p > best_p:
            best, best_p = s, p
    return (answer, prob) if best == answer else (best, best_p)


def evaluate(search: Search, post: ShapePosterior) -> Evaluation:
    """The answer, its P(cheapest), the next pick, why, and its expected saving."""
    mean, std = post.predict(search.feasible)
    pf = search.p_floor(mean, std)
    best = answer(search, post, pf)
    prob = p_cheapest(search, post, mean, std, best) if best is not None else 0.0
    s, why, gain = pick(search, post, best)
    return Evaluation(best, prob, gain, s, why)


def pick(search: Search, post: ShapePosterior, current: Shape | None
         ) -> tuple[Shape | None, str, float]:
    """(next shape or ``None``, why, the largest expected saving); ``current``: the answer."""
    score, fpf, p_next, costs, c_ref = acquisition(search, post, current)
    gain = float(np.max(score)) if np.isfinite(score).any() else 0.0
    if not np.isfinite(score).any():
        return None, "", 0.0
    weight = search.budget.cost_weight()
    i = int(np.argmax(np.where(np.isfinite(score), score / weight, -np.inf)))
    s = search.feasible[i]
    led = search.led
    if led.pending.get(s, 0):
        why = (f"train it alongside its running training(s) (workers idle, nothing else "
               f"worth starting): P(accuracy ≥ floor) = {fpf[i]:.2f}, measured "
               f"{led.count(s)} time(s)")
    elif s == current:
        why = (f"repeat the answer: P(accuracy ≥ floor) = {fpf[i]:.2f}, "
               f"measured {led.mean(s):.4g} over {led.count(s)} training(s)")
    elif led.count(s):
        why = (f"repeat a borderline candidate: P(accuracy ≥ floor) = {fpf[i]:.2f}, "
               f"measured {led.mean(s):.4g} over {led.count(s)} training(s)")
    else:
        why = (f"expected saving {score[i]:.3g} (log cost): P(accuracy ≥ floor) = "
               f"{fpf[i]:.2f}, P(answer within the trainings left for it) = {p_next[i]:.2f}, "
               f"at {costs[i] / c_ref:.2f}× the reference cost")
    return s, why, gain


def confirm_horizon(search: Search) -> np.ndarray:
    """How many more trainings the search could still spend on each feasible shape to
    confirm it: the trainings the cap still allows (the next one included), at most
    ``MAX_REPEATS`` successful trainings per shape in all, and under a compute budget no more
    than the compute left pays for; at least one.

    Why: a shape whose accuracy sits within a noise std of the floor is confirmed only by
    several trainings, never by one. Valuing a cheap untried shape by the chance that *one*
    training confirms it gives it almost nothing whenever the noise is comparable to its
    margin over the floor, and the search then climbs to the large shapes far above the
    floor and answers with one many times the smallest complying size. Valued over the
    trainings the budget can still put on it, a cheap shape with a fair chance of meeting the
    floor keeps its value while the budget is long; the horizon shrinks to one training as
    the budget runs out, and a shape stuck on the floor still loses value as its posterior
    std shrinks."""
    budget = search.budget
    n = np.array([search.led.count(s) for s in search.feasible], dtype=float)
    k = np.minimum(float(max(budget.room(), 1)), MAX_REPEATS - n)
    if budget.seconds is not None and budget.tc.known:
        left = budget.compute_left()
        per = np.array([budget.cost_or_zero(s) for s in search.feasible])
        with np.errstate(divide="ignore", invalid="ignore"):
            pays = np.where(per > 0, np.floor(left / np.where(per > 0, per, 1.0)), k)
        k = np.minimum(k, pays)
    return np.maximum(k, 1.0)


def acquisition(search: Search, post: ShapePosterior, current: Shape | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Expected saving of every shape a training could start on now (``-inf`` for the
    others): cheaper than the answer ``current``, ``p_k · log(C / cost)`` with ``p_k`` the
    probability that the trainings of :func:`confirm_horizon` make the shape an answer (the
    adaptive policy's docstring); the answer itself while P(f ≥ floor) < 0.99. With
    P(f ≥ floor) and ``p_k`` (running trainings fantasised), the goal costs and the reference
    cost ``C``."""
    fpost, fmean, fstd = search.fantasised(post)
    fpf = search.p_floor(fmean, fstd)
    costs = np.array([search.cost(s) for s in search.feasible])
    c_ref = search.cost(current) if current is not None else 2.0 * float(costs.max())
    p_next = p_eligible_after(search, fpost, fmean, fstd, k=confirm_horizon(search))
    score = np.full(len(search.feasible), -np.inf)
    led = search.led
    for i, s in enumerate(search.feasible):
        running = led.pending.get(s, 0)
        if not search.proposable(s) or not search.budget.affordable(s) or (running and (
                not search.alongside or s in search.added
                or fpf[i] <= 1.0 - search.conf)):
            continue
        n = led.count(s) + running
        if s == current:
            if fpf[i] < _ANSWER_REPEAT_UNTIL and n < MAX_REPEATS:
                nxt = [c for c in costs if c > costs[i]]
                c_next = min(nxt) if nxt else 2.0 * float(costs.max())
                score[i] = (1.0 - fpf[i]) * math.log(c_next / costs[i])
            continue
        if costs[i] >= c_ref:
            continue
        if n >= MAX_REPEATS or (led.tried(s) and fpf[i] <= 1.0 - search.conf):
            continue  # not (again) a long shot
        if running and fpf[i] >= _ANSWER_REPEAT_UNTIL:
            continue  # settled enough: another training at the same time adds little
        score[i] = p_next[i] * math.log(c_ref / costs[i])
    return score, fpf, p_next, costs, c_ref


def reference_cost(search: Search, post: ShapePosterior) -> float:
    """The goal cost a new answer must beat: the current answer's, else twice the largest
    cost."""
    current = current_answer(search, post)
    if current is not None:
        return search.cost(current)
    return 2.0 * max(search.cost(s) for s in search.feasible)
