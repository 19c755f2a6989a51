"""Batches for idle workers: after the first pick, each next one is the acquisition's best with
every earlier pick fantasised as running (kriging believer: at its posterior mean), so the
batch stays diverse."""

from __future__ import annotations

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy import Train
from optuna_shape.policy.adaptive import min_cost
from optuna_shape.policy.adaptive.goals import next_pick
from optuna_shape.policy.adaptive.search import MIN_COST_GOALS, Search
from optuna_shape.space.shape import Shape

__all__ = ["batch"]


def batch(search: Search, post: ShapePosterior, first: Train, answer: Shape | None = None
          ) -> Train:
    """``first`` and, with idle workers (``slots`` > 1), up to ``slots − 1`` more distinct
    shapes: each next pick is the acquisition's best with every earlier pick fantasised as
    running (kriging believer: its posterior mean), so the batch stays diverse. The model is
    fitted once per decision; each further pick costs one fantasy update and one pass of
    the acquisition over the feasible shapes. ``answer``: the current answer of a min-cost
    goal, when known. Treats the picks as running in ``search`` from then on."""
    if search.slots <= 1:
        return first
    if answer is None and search.goal in MIN_COST_GOALS and search.floor is not None:
        answer = min_cost.current_answer(search, post)
    picks = list(first.shapes)
    preds = dict(first.predictions)
    while len(picks) < search.slots:
        search.add_pending(picks[-1])
        if search.budget.room() <= 0:
            break
        nxt = next_pick(search, post, answer)[0]
        if nxt is None or not search.budget.within([nxt]):
            break
        picks.append(nxt)
        m, sd = post.predict([nxt])
        preds[nxt] = (float(m[0]), float(sd[0]))
    if len(picks) == 1:
        return first
    return Train(tuple(picks), first.stage,
                 f"{first.reason}; and {len(picks) - 1} more for idle workers", preds)
