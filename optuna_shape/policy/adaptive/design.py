"""The spread design: shapes picked by greedy maximin in the scaled ``(log depth, log width)``
square — the initial design, more picks when too few shapes succeed, and a wider design for
idle workers before any result is in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optuna_shape.policy.adaptive.ledger import n_trainings
from optuna_shape.policy.adaptive.search import Search
from optuna_shape.space.shape import Shape

__all__ = ["initial_design", "extend_design", "wider_design"]


def _scaled(shapes: Sequence[Shape]) -> np.ndarray:
    arr = np.log(np.array([(s.depth, s.width) for s in shapes], dtype=float).reshape(-1, 2))
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (arr - lo) / span


def initial_design(feasible: Sequence[Shape], n: int, seed: int | None = 0,
                   exclude: Sequence[Shape] = ()) -> list[Shape]:
    """``n`` shapes spread over ``feasible`` by greedy maximin in the scaled
    ``(log depth, log width)`` square, starting nearest the centre; the order of the result is
    the order of the picks, so a longer design extends a shorter one. Shapes in ``exclude`` are
    counted as already picked (they repel) but not returned."""
    feasible = list(feasible)
    if not feasible or n <= 0:
        return []
    x = _scaled(feasible)
    rng = np.random.default_rng(0 if seed is None else seed)
    tie = rng.random(len(feasible)) * 1e-9
    index = {s: i for i, s in enumerate(feasible)}
    chosen = [index[s] for s in exclude if s in index]
    picks: list[int] = []
    if not chosen:
        centre = x.mean(axis=0)
        first = int(np.argmin(((x - centre) ** 2).sum(1) + tie))
        picks.append(first)
        chosen.append(first)
    dmin = np.min(((x[:, None, :] - x[None, chosen, :]) ** 2).sum(-1), axis=1)
    while len(picks) < min(n, len(feasible) - len(set(chosen)) + len(picks)):
        nxt = int(np.argmax(dmin + tie))
        if dmin[nxt] <= 0:
            break
        picks.append(nxt)
        dmin = np.minimum(dmin, ((x - x[nxt]) ** 2).sum(1))
    return [feasible[i] for i in picks[:n]]


def extend_design(search: Search, k: int = 1, also: Sequence[Shape] = ()) -> list[Shape]:
    """``k`` more maximin picks, away from every trained, running and given-up shape (and
    ``also``)."""
    led = search.led
    taken = [s for s in search.feasible if led.count(s) or s in led.pending
             or led.failures.get(s) or s in led.partial] + list(also)
    more = initial_design(search.feasible, k, search.settings.seed, exclude=taken)
    return [s for s in more if search.proposable(s)]


def wider_design(search: Search, k: int, proposed: Sequence[Shape]) -> list[Shape]:
    """Up to ``k`` more spread shapes for idle workers before any result is in (beside
    ``proposed``), while the design stays within half the trainings cap (the rest is for
    the acquisition) and the budget pays."""
    budget = search.budget
    room = (max(search.n_initial, budget.max_trainings // 2) - budget.n_done - budget.n_pending
            - n_trainings(list(proposed)))
    k = min(k, room)
    if k <= 0:
        return []
    more = extend_design(search, k, proposed)
    if budget.seconds is None:
        return more[:k]
    out: list[Shape] = []
    left = budget.compute_left() - sum(budget.cost_or_zero(s) for s in proposed)
    for s in more:
        if budget.tc.known and budget.fit_cost(s) <= left:
            out.append(s)
            left -= budget.cost_or_zero(s)
    return out
