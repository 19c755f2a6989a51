"""The goal's rules, chosen by the goal: :mod:`~optuna_shape.policy.adaptive.accuracy` for
``"accuracy"``, :mod:`~optuna_shape.policy.adaptive.min_cost` for the min-cost goals."""

from __future__ import annotations

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy.adaptive import accuracy, min_cost
from optuna_shape.policy.adaptive.answers import Evaluation
from optuna_shape.policy.adaptive.search import Search
from optuna_shape.space.shape import Shape

__all__ = ["evaluate", "next_pick"]


def evaluate(search: Search, post: ShapePosterior) -> Evaluation:
    """(answer, its confidence, expected gain of the next training, next shape, why)."""
    if search.goal == "accuracy":
        return accuracy.evaluate(search, post)
    return min_cost.evaluate(search, post)


def next_pick(search: Search, post: ShapePosterior, answer: Shape | None
              ) -> tuple[Shape | None, str]:
    """The acquisition's next shape given the running trainings (``None``: nothing worth
    starting), with why."""
    if search.goal == "accuracy":
        return accuracy.pick(search, post)[:2]
    return min_cost.pick(search, post, answer)[:2]
