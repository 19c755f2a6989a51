"""What the search may still spend: the trainings cap and the compute budget.

Every training counts towards the cap (``max_trainings``: repeats, failures and stopped trainings
included). Under a compute budget (seconds of training time) a training is charged what it
used; running ones are committed at their predicted cost
(:class:`~optuna_shape.models.compute.TrainingCost`, fitted from the trainings' charged seconds),
and the acquisition divides each shape's value by its predicted cost relative to the median, to
the power ``α`` = the share of the budget still left (cost cooling).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from optuna_shape.models.compute import CostObservation, TrainingCost, format_seconds
from optuna_shape.policy import Evidence, Problem, Settings
from optuna_shape.policy.adaptive.ledger import n_trainings
from optuna_shape.space.shape import Shape

__all__ = ["Budget", "default_max_trainings", "TRAININGS_PER_WORKER"]


TRAININGS_PER_WORKER = 4
"""Trainings the default cap adds for each worker beyond the first."""


def default_max_trainings(n_feasible: int, n_initial: int, workers: int = 1) -> int:
    """``max(n_initial + 3, ceil(n_feasible / 3))`` plus :data:`TRAININGS_PER_WORKER` for each
    worker beyond the first, at most ``2 n_feasible``.

    Why the workers: a decision made while others train cannot use their results, so ``N``
    workers train more than one worker does before they are as sure of the answer (in the
    policy replay of ``benchmarks/many_workers.py``, 16 workers about 1.5–2.4 times one
    worker's trainings, 64 workers about 3–4 times); with one worker's cap they end at it,
    unconfirmed, while most of them wait.

    Example:
        >>> default_max_trainings(133, 5), default_max_trainings(133, 5, workers=16)
        (45, 105)
        >>> default_max_trainings(12, 5, workers=64)
        24
    """
    base = max(n_initial + 3, math.ceil(n_feasible / 3))
    return min(base + TRAININGS_PER_WORKER * max(0, workers - 1), max(2 * n_feasible, 1))


def _distinct_shapes(feasible: Sequence[Shape]) -> list[Shape]:
    """One candidate per (depth, width): a training of a shape serves all its precisions."""
    seen: dict[tuple[int, float], Shape] = {}
    for s in feasible:
        seen.setdefault((s.depth, s.width), s)
    return list(seen.values())


class Budget:
    """The trainings cap and the compute budget of one decision, with what is used of each.

    Attributes:
        feasible: the feasible shapes, in the problem's order.
        seconds: the compute budget in seconds of training time (``None``: none).
        max_trainings: the trainings cap.
        n_done: trainings finished (a stopped training counts as one).
        n_pending: trainings running or queued (one per shape over precisions).
        tc: the cost model, from the trainings' charged seconds.
        spent: compute charged so far (trainings of unknown cost at their predicted cost).
        committed: ``spent`` plus the running trainings at their predicted cost.
        cost_ref: the median predicted cost of a feasible shape (``nan`` while unknown).
        all_feasible_s: the predicted compute of training every feasible shape once.
    """

    def __init__(self, problem: Problem, evidence: Evidence, settings: Settings,
                 feasible: list[Shape], n_shapes: int) -> None:
        self.feasible = feasible
        self.seconds = settings.budget
        if settings.max_trainings is not None:
            self.max_trainings = settings.max_trainings
        elif self.seconds is not None:  # compute bounds the search; trainings only as a cap
            self.max_trainings = max(2 * n_shapes, 1)
        else:
            self.max_trainings = default_max_trainings(
                n_shapes, max(1, int(settings.n_initial)), evidence.workers)
        self.n_done = n_trainings([t.shape for t in evidence.trainings])
        self.n_pending = n_trainings(evidence.pending)
        n_prec = max(1, len({getattr(s, "precision", None) for s in feasible}))
        work = problem.work or problem.sizes
        obs = [CostObservation(t.shape, float(t.seconds), t.fraction,
                               informative=t.value is not None or t.partial)
               for t in evidence.trainings if t.seconds is not None]
        self.tc = TrainingCost(work, obs)
        unknown = sum(self.cost_or_zero(t.shape) for t in evidence.trainings
                      if t.seconds is None) / n_prec  # charged at its predicted cost
        spent = evidence.spent_seconds() + unknown
        self.spent = spent
        self.committed = spent + sum(self.cost_or_zero(s) for s in evidence.pending) / n_prec
        costs = [c for s in feasible if math.isfinite(c := self.tc.mean(s))]
        self.cost_ref = float(np.median(costs)) if costs else math.nan
        self.all_feasible_s = (sum(self.tc.mean(s) for s in _distinct_shapes(feasible))
                               if self.tc.known else None)

    def cost_or_zero(self, s: Shape) -> float:
        """The predicted seconds of a full training of ``s``, 0 while unknown."""
        c = self.tc.mean(s)
        return c if math.isfinite(c) else 0.0

    def fit_cost(self, s: Shape) -> float:
        """What a full training of ``s`` must find left to start: its predicted seconds plus
        one predictive std (0 while unknown).

        Why: a training that does not fit the budget cannot be stopped for it — it runs to
        its end and overruns. The cost model is a power law in the shapes' work, and a grid
        whose seconds are an overhead plus a part proportional to the work bends away from
        it: fitted on small shapes only, it priced the test grid's largest at 50 s (131 s
        measured), and a search that started it on that mean overran its budget by half."""
        mean, std = self.tc.predict(s)
        return mean + std if math.isfinite(mean) and math.isfinite(std) else 0.0

    def commit(self, s: Shape, pending: Sequence[Shape]) -> None:
        """Count a training of ``s`` as running from now on (``pending``: every evidence entry
        running now, ``s``'s included)."""
        self.n_pending = n_trainings(pending)
        self.committed += self.cost_or_zero(s)

    # --------------------------------------------------------------- the trainings cap
    def room(self) -> int:
        """Trainings the cap still allows (a stopped training counts as one: the cap bounds
        trainings, a compute budget bounds what they cost)."""
        return self.max_trainings - self.n_done - self.n_pending

    def within(self, shapes: Sequence[Shape]) -> list[Shape]:
        """The longest prefix of ``shapes`` that the trainings cap and the compute left pay
        for (a shape that does not fit is skipped; cheaper ones after it may still fit)."""
        out: list[Shape] = []
        left = self.compute_left()
        for s in shapes:
            if len(out) >= self.room():
                break
            c = self.fit_cost(s) if self.seconds is not None else 0.0
            if self.seconds is not None and (left <= 0 or (self.tc.known and c > left)):
                continue
            out.append(s)
            left -= self.cost_or_zero(s) if self.seconds is not None else 0.0
        return out

    # --------------------------------------------------------------- the compute budget
    def compute_left(self) -> float:
        """Seconds of the compute budget not yet spent or committed (inf without a budget)."""
        return math.inf if self.seconds is None else self.seconds - self.committed

    def affordable(self, s: Shape) -> bool:
        """Whether a full training of ``s`` fits in the compute left (:meth:`fit_cost`;
        always, without a compute budget; before any cost is known, while anything is
        left)."""
        if self.seconds is None:
            return True
        left = self.compute_left()
        if not self.tc.known:
            return left > 0
        return self.fit_cost(s) <= left

    def design_share(self, s: Shape, n_design: int) -> bool:
        """Whether an initial-design training of ``s`` costs at most an equal share of the
        compute budget among the ``n_design`` design shapes (always without a compute budget
        or while costs are unknown). Applied to the min-cost goals' design.

        Why: the design spreads over the grid's corners, and its largest corner can cost
        more than the rest of the design together; under a tight budget that one training
        took most of it (on a replayed ``digits`` grid, 16 s of a 22 s budget), leaving a
        handful of trainings for a size search, which kept its floor in 20 % of searches
        instead of 65 %. A shape over its share is left to the acquisition, which weighs its
        value against its cost. Not for the accuracy goal: there the expensive corner is
        often the answer (``digits-hard``'s best shape is its widest: with the share applied
        to it, searches given half the compute of full trainings answered 1.0–2.8 points below
        the best in 8 of 20, mean regret 0.92; without it 0.03)."""
        if self.seconds is None or not self.tc.known:
            return True
        return self.tc.mean(s) <= self.seconds / max(1, n_design)

    def compute_out(self, candidates: Iterable[Shape]) -> bool:
        """The compute budget cannot pay for another training of any of ``candidates`` (the
        proposable shapes)."""
        if self.seconds is None:
            return False
        return not any(self.affordable(s) for s in candidates)

    def is_last(self, s: Shape, others: Iterable[Shape]) -> bool:
        """Whether a training of ``s`` is the last the budget pays for: one training left
        under the cap, or the compute left after it pays for none of ``others`` (the other
        shapes a training could start on)."""
        if self.room() == 1:
            return True
        if self.seconds is None or not self.tc.known:
            return False
        left = self.compute_left() - self.tc.mean(s)
        return not any(self.fit_cost(o) <= left for o in others)

    def cost_weight(self) -> np.ndarray:
        """Divisor of each feasible shape's acquisition value: its predicted training cost
        relative to the median, to the power ``α`` = the share of the compute budget still
        left (cost cooling: cheap shapes that teach as much go first, and the cost matters
        less as the budget runs out). All ones without a compute budget — the budget is then
        in trainings, each costing one — and while no training's cost is known."""
        alpha = self.alpha()
        return np.array([self.relative_cost(s) for s in self.feasible]) ** alpha

    def alpha(self) -> float:
        """The cost-cooling exponent: the share of the compute budget still left (1 without
        one: costs are then in trainings)."""
        if self.seconds is None:
            return 1.0
        return min(1.0, max(0.0, self.compute_left() / self.seconds))

    def relative_cost(self, s: Shape) -> float:
        """A full training of ``s`` in the budget's unit, relative to the median feasible
        shape's: predicted seconds under a compute budget, else 1 (a training); 1 while
        unknown."""
        if self.seconds is None or not self.tc.known or not math.isfinite(self.cost_ref) \
                or self.cost_ref <= 0:
            return 1.0
        rel = self.tc.mean(s) / self.cost_ref
        return rel if math.isfinite(rel) and rel > 0 else 1.0

    # --------------------------------------------------------------- reports
    def details(self) -> dict:
        """Compute spent, the budget and the predicted compute of training every feasible
        shape once to the end (seconds; ``None`` where unknown)."""
        return {"spent_s": round(self.spent, 3),
                "budget_s": None if self.seconds is None else round(self.seconds, 3),
                "all_feasible_s": (None if self.all_feasible_s is None
                                   else round(self.all_feasible_s, 3)),
                "cost_observations": self.tc.n_observations}

    def spent_words(self) -> str:
        """What ran out: the trainings cap, or the compute budget (with what was used)."""
        if self.seconds is not None and self.n_done < self.max_trainings:
            left = self.seconds - self.spent
            rest = (f"; the {format_seconds(left)} left pays for no training worth starting"
                    if left > 0 else "")
            return (f"compute budget of {format_seconds(self.seconds)} spent "
                    f"({format_seconds(self.spent)} used by {self.n_done} "
                    f"training{'s' if self.n_done != 1 else ''}{rest})")
        return f"budget of {self.max_trainings} trainings spent"
