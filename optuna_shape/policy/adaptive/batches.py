"""Batches for idle workers: after the first pick, each next one is the acquisition's best with
every earlier pick fantasised as running (kriging believer: at its posterior mean), so the
batch stays diverse; when no new shape is worth starting, a min-cost search gives idle workers
another training of a borderline shape already being trained (:func:`alongside`)."""

from __future__ import annotations

from dataclasses import replace

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy import Train
from optuna_shape.policy.adaptive import min_cost
from optuna_shape.policy.adaptive.goals import next_pick
from optuna_shape.policy.adaptive.search import MIN_COST_GOALS, Search
from optuna_shape.space.shape import Shape

__all__ = ["batch", "alongside", "cap_holds_back"]


def batch(search: Search, post: ShapePosterior, first: Train, answer: Shape | None = None
          ) -> Train:
    """``first`` and, with idle workers (``slots`` > 1), up to ``slots − 1`` more distinct
    shapes: each next pick is the acquisition's best with every earlier pick fantasised as
    running (kriging believer: its posterior mean), so the batch stays diverse; once no new
    shape is worth starting, the borderline shapes already being trained, one more training
    each (:func:`alongside`). The model is fitted once per decision; each further pick costs
    one fantasy update and one pass of the acquisition over the feasible shapes. ``answer``:
    the current answer of a min-cost goal, when known. Treats the picks as running in
    ``search`` from then on."""
    if search.slots <= 1:
        return first
    if answer is None and search.goal in MIN_COST_GOALS and search.floor is not None:
        answer = min_cost.current_answer(search, post)
    picks = list(first.shapes)
    again = set(first.alongside)
    preds = dict(first.predictions)
    while len(picks) < search.slots:
        search.add_pending(picks[-1])
        if search.budget.room() <= 0 or (search.alongside and not _room_alongside(search)):
            break
        nxt = next_pick(search, post, answer)[0]
        if nxt is None and _may_go_alongside(search):
            search.alongside = True
            nxt = next_pick(search, post, answer)[0]
        if nxt is None or not search.budget.within([nxt]):
            break
        if search.led.pending.get(nxt, 0):
            again.add(nxt)
        picks.append(nxt)
        m, sd = post.predict([nxt])
        preds[nxt] = (float(m[0]), float(sd[0]))
    if len(picks) == 1:
        return first
    return Train(tuple(picks), first.stage,
                 f"{first.reason}; and {len(picks) - 1} more for idle workers", preds,
                 frozenset(again))


def alongside(search: Search, post: ShapePosterior, answer: Shape | None) -> Train | None:
    """Workers are idle and no new shape is worth starting: one more training of a shape
    already being trained, at the same time — min-cost goals only, the acquisition's best
    among the borderline ones (P(accuracy ≥ floor) between ``1 − confidence`` and 0.99 with
    the running trainings fantasised, at most six trainings of a shape in all, each shape
    once per decision); ``None`` when none qualifies (the caller waits).

    Why: a min-cost answer is confirmed by repeated trainings of the shapes near the floor.
    With many workers the new shapes worth trying run out long before the search is sure,
    and the repeats it needs then ran one after another while most workers waited: with
    64 workers on a 133-shape grid they were idle a quarter of the search. Run side by side,
    those repeats end the search sooner; they cost trainings, and the cap keeps room for
    those that follow the running ones. The accuracy goal keeps its workers busy with new
    shapes and does not do this."""
    if not _may_go_alongside(search):
        return None
    search.alongside = True
    pick, why = next_pick(search, post, answer)
    if pick is None:
        return None
    return replace(search.train_one(post, pick, "repeat", why),
                   alongside=frozenset({pick}) if search.led.pending.get(pick, 0)
                   else frozenset())


def cap_holds_back(search: Search, post: ShapePosterior, answer: Shape | None) -> str | None:
    """Why idle workers wait although a borderline running shape would get one more training
    at the same time (:func:`alongside`): the trainings cap has no more room left than
    trainings are running. ``None`` when the cap is not what holds it back (another goal, no
    training running, room enough, or no shape qualifies). Words for the deciding worker's
    progress line: a cap sized for fewer workers leaves the rest idle (on a 133-shape grid, 64
    workers with a cap of 160 waited in the middle of the search; with 240 they were busy
    77–88 % of the time)."""
    if search.alongside or not _alongside_goal(search) or search.n_pending == 0 \
            or _room_alongside(search):
        return None
    search.alongside = True
    try:
        pick, _ = next_pick(search, post, answer)
    finally:
        search.alongside = False
    if pick is None:
        return None
    room = max(search.budget.room(), 0)
    return (f"repeats of borderline shapes alongside the running ones need more room under "
            f"the trainings cap ({room} left for {search.n_pending} running): a larger "
            "max_trainings, or a compute budget, keeps idle workers busy")


def _may_go_alongside(search: Search) -> bool:
    """A min-cost goal with a floor, trainings running, and more trainings left under the cap
    than are running: the cap is not spent on side-by-side repeats that the trainings after
    the running ones would need."""
    return not search.alongside and _alongside_goal(search) and _room_alongside(search)


def _alongside_goal(search: Search) -> bool:
    return search.goal in MIN_COST_GOALS and search.floor is not None


def _room_alongside(search: Search) -> bool:
    return 0 < search.n_pending < search.budget.room()
