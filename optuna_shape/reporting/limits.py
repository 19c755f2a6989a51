"""Beyond the limit a search ran for: the accuracy–cost front of a study and answers for other
limits and goals, both from the trainings already in the study (no training runs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import optuna

from optuna_shape import store as st
from optuna_shape.reporting.results import load_config
from optuna_shape.space.constraints import Constraints
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.shape import Shape

if TYPE_CHECKING:
    from optuna_shape.sampler.requery import LimitAnswer

__all__ = ["FrontRow", "answer_for", "frontier"]


def answer_for(study: optuna.Study, constraints: Constraints,
               goal: str | None = "accuracy") -> LimitAnswer:
    """Answer other limits and a goal from the trainings already in ``study`` (no training):
    the answer with its status and probability, the trainings it rests on, and — when the
    evidence does not settle it — the shapes a search would train next.

    Example::

        a = osh.answer_for(study, osh.Constraints(max_latency_ms=3, min_accuracy=97), "size")
        a.shape, a.status, a.confidence, a.next_trainings

    Raises:
        ValueError: a bad or frontier goal, or limits the study has no measurements for.
    """
    from optuna_shape.sampler.requery import answer_from_evidence

    return answer_from_evidence(study, constraints, goal)


@dataclass(frozen=True)
class FrontRow:
    """One shape of the accuracy–cost front: its measured accuracy (mean of ``trainings`` full
    trainings), its cost (``cost_name``: ``"size"`` MB, ``"latency"`` ms, ``"energy"`` J), its
    size and its probability of being on the front (no feasible shape both cheaper and more
    accurate)."""

    depth: int
    width: float
    p_front: float
    accuracy: float
    trainings: int
    cost: float
    cost_name: str
    size_mb: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able)."""
        return asdict(self)


def frontier(study: optuna.Study, *, cost: str | None = None,
             constraints: Constraints | None = None) -> list[FrontRow]:
    """The accuracy–cost front of the study, cheapest first: every trained shape whose
    probability of being on the front is at least 0.5, with that probability.

    A finished ``goal="frontier"`` search returns the front it stored. Any other study (or
    another ``cost``, or ``constraints`` narrowing the shapes) gets the front of its trainings
    computed now from the same evidence — a search for one limit already says much about the
    trade-off.
    """
    from optuna_shape.space.constraints import goal_cost, is_frontier

    cfg = load_config(study)
    searched = cfg.get("goal")
    cost = cost or goal_cost(searched) or "size"
    result = st.read_result(st.study_attrs(study))
    details = None if result is None else result.details
    if (constraints is None and is_frontier(searched) and goal_cost(searched) == cost
            and details is not None and details.front is not None):
        points = details.front
    else:
        from optuna_shape.sampler.requery import front_from_evidence

        points = front_from_evidence(study, cost, constraints)
    space = ShapeSpace.from_dict(cfg["space"])
    return [FrontRow(q.shape.depth, q.shape.width, q.p_front, q.mean, q.count, q.cost, cost,
                     space.size_mb(Shape(q.shape.depth, q.shape.width))) for q in points]
