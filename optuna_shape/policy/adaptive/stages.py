"""The adaptive policy's choices in order (the package docstring): no feasible shape, no goal,
no floor, nothing succeeded yet, the budget, the initial design, the planned repeat, the
stopping rule, the last training of the budget, and the acquisition."""

from __future__ import annotations

from dataclasses import replace

from optuna_shape.policy import Action, Stop, Train, Wait
from optuna_shape.policy.adaptive import accuracy
from optuna_shape.policy.adaptive.answers import secure_pick, settled
from optuna_shape.policy.adaptive.batches import alongside, batch, cap_holds_back
from optuna_shape.policy.adaptive.design import extend_design, initial_design, wider_design
from optuna_shape.policy.adaptive.final import details, final
from optuna_shape.policy.adaptive.goals import evaluate
from optuna_shape.policy.adaptive.search import MIN_COST_GOALS, Search
from optuna_shape.policy.stop import SearchStatus, StopDetails
from optuna_shape.space.constraints import goal_key
from optuna_shape.space.shape import Shape

__all__ = ["next_action"]


def next_action(search: Search) -> Action:
    """The adaptive policy's next action for ``search`` (the package docstring)."""
    led, budget = search.led, search.budget
    if not search.feasible:
        return Stop(None, "no shape passes the size/latency/energy limits",
                    SearchStatus.NO_FEASIBLE,
                    details=StopDetails(reason_code="no_feasible", max_trainings=0))
    if search.goal is None:
        return complying_set(search)
    if search.goal in MIN_COST_GOALS and search.floor is None:
        return cheapest_without_floor(search)
    n_success = sum(len(v) for v in led.values.values())
    if n_success == 0:
        return no_success_yet(search)
    if search.n_pending == 0 and (budget.room() <= 0 or search.compute_out()):
        return final(search, "budget")
    design = initial_design(search.feasible, search.n_initial, search.settings.seed)
    todo = [s for s in design if not led.tried(s) and s not in led.pending
            and search.proposable(s)]
    if todo:
        if search.goal in MIN_COST_GOALS:
            todo = [s for s in todo if budget.design_share(s, search.n_initial)]
        fits = budget.within(todo)
        if budget.seconds is not None and not budget.tc.known:
            if search.n_pending:
                return Wait("the first training prices the others under the budget")
            fits = fits[:1]  # one training first: it prices every other shape
        if fits:
            fits += wider_design(search, search.slots - len(fits), fits)
            return Train(tuple(fits), "initial",
                         f"spread initial design ({len(design)} shapes)")
        if budget.room() <= 0:
            return search.wait_or(final(search, "budget"))
        # the design shapes left cost more than the compute left (or, min-cost goals, than
        # their share of the budget): the model goes on from what is trained, on the shapes
        # the budget still pays for
    post = search.fit()
    if search.spent_out():
        return search.wait_or(final(search, "budget", post))
    distinct = {(s.depth, s.width) for s in led.values if s in search.index}
    if len(distinct) < min(2, search.n_shapes):
        extra = budget.within(extend_design(search))
        if extra:
            return Train((extra[0],), "initial", "spread design: too few successful shapes")
    if not any(len(v) >= 2 for v in led.values.values()) and not any(
            led.count(s) >= 1 for s in led.pending):
        rep = planned_repeat(search)
        if rep is not None and budget.affordable(rep):
            return batch(search, post, search.train_one(
                post, rep, "repeat", "planned repeat of the best-measured shape: seed "
                "noise from evidence"))
    evaluation = evaluate(search, post)
    answer, prob, gain, pick, why = evaluation
    if answer is not None and prob >= search.conf:
        if settled(search, post, answer) or not (
                search.proposable(answer) and budget.affordable(answer)):
            return final(search, "confident", post, evaluation)
        if answer not in led.pending:
            return batch(search, post, search.train_one(
                post, answer, "repeat", f"confirm the answer: trained once, the seed noise "
                f"measured from {post.noise_.repeat_df} repeat(s)"), answer)
        # its repeat is running: the acquisition goes on meanwhile
    if answer is None and search.floor is not None:
        secure = secure_pick(search, post)
        if secure is not None and search.last_training(secure[0]):
            stage = "repeat" if led.count(secure[0]) > 0 else "acquire"
            return batch(search, post, search.train_one(post, secure[0], stage, secure[1]))
    if pick is None:
        if search.n_pending:
            more = alongside(search, post, answer)
            if more is not None:
                return batch(search, post, more, answer)
            held = cap_holds_back(search, post, answer)
            return Wait("no useful shape to start until a running training finishes"
                        + (f"; {held}" if held else ""))
        out = search.goal == "accuracy" and accuracy.priced_out(search, post)
        return final(search, "budget" if out else "exhausted", post, evaluation)
    stage = "repeat" if led.count(pick) > 0 else "acquire"
    return batch(search, post, search.train_one(post, pick, stage, why), answer)


def no_success_yet(search: Search) -> Action:
    """No training has succeeded: train the initial design (more spread shapes in place of
    given-up ones), or stop when every shape tried failed."""
    led, budget, max_attempts = search.led, search.budget, search.settings.max_attempts
    given_up = len({(s.depth, s.width) for s in search.feasible
                    if led.given_up(s, max_attempts)})
    if (given_up >= search.n_initial or given_up >= search.n_shapes
            or budget.room() <= 0 or (search.compute_out() and not search.n_pending)):
        if search.n_pending:
            return Wait("every training so far failed; waiting for the running ones")
        return Stop(None, f"every training failed ({search.n_done} trainings, {given_up} "
                    f"shapes given up after {max_attempts} attempts)",
                    SearchStatus.ALL_FAILED,
                    details=StopDetails(reason_code="all_failed",
                                        max_trainings=budget.max_trainings,
                                        trainings=search.n_done))
    if budget.room() <= 0:
        return Wait("waiting for running trainings")
    design = initial_design(search.feasible, search.n_initial, search.settings.seed)
    todo = [s for s in design if s not in led.pending and s not in led.partial
            and search.proposable(s)]
    lost = sum(1 for s in design if not search.proposable(s))
    if lost:
        todo += [s for s in extend_design(search, lost) if s not in led.pending]
    todo = budget.within(todo)
    if budget.seconds is not None and not budget.tc.known:
        # with a compute budget, one training first: it prices every other shape
        todo = todo[:0] if search.n_pending else todo[:1]
    elif len(todo) < search.slots:
        todo += wider_design(search, search.slots - len(todo), todo)
    if not todo:
        return Wait("the initial design is being trained")
    return Train(tuple(todo), "initial", f"spread initial design ({len(design)} shapes)")


def planned_repeat(search: Search) -> Shape | None:
    """The shape trained again once the design is in, so the noise is estimated from evidence:
    the best-measured one (min-cost goals: the cheapest measured at or above the floor)."""
    led = search.led
    tr = [s for s in led.values if s in search.index and s not in led.pending]
    if not tr:
        return None
    if search.goal in MIN_COST_GOALS and search.floor is not None:
        floor = search.floor
        ok = [s for s in tr if led.mean(s) >= floor]
        if ok:
            return min(ok, key=lambda s: goal_key(search.goal, led.mean(s), search.cost(s)))
    return max(tr, key=lambda s: led.mean(s))


def cheapest_without_floor(search: Search) -> Action:
    """A min-cost goal without a floor: the cheapest feasible shape, once trained."""
    max_trainings = search.budget.max_trainings
    cheapest = min(search.feasible, key=lambda s: (search.cost(s), s))
    if search.led.count(cheapest):
        return search.wait_or(Stop(cheapest, "no accuracy floor: the cheapest feasible shape "
                                   "is the answer", SearchStatus.ANSWERED, 1.0,
                                   StopDetails(reason_code="no_floor",
                                               max_trainings=max_trainings)))
    if cheapest in search.led.pending:
        return Wait("training the cheapest feasible shape")
    if not search.proposable(cheapest):
        return Stop(None, "the cheapest feasible shape failed every attempt",
                    SearchStatus.ALL_FAILED,
                    details=StopDetails(reason_code="all_failed", max_trainings=max_trainings))
    return Train((cheapest,), "initial", "no accuracy floor: train the cheapest shape")


def complying_set(search: Search) -> Action:
    """No goal: train the modeling strategy's interval sample, then stop with P(f ≥ floor)
    per shape (and the shapes that meet the floor with the confidence)."""
    from optuna_shape.policy.modeling_strategy import choose_shapes

    sett, led, max_trainings = search.settings, search.led, search.budget.max_trainings
    plan = choose_shapes(search.feasible, sett.strategy, "interval", sett.seed)
    plan = plan[: max(1, max_trainings if sett.max_trainings is not None else len(plan))]
    todo = [s for s in plan if led.count(s) == 0 and s not in led.pending
            and search.proposable(s) and search.budget.affordable(s)]
    if todo and search.n_done + search.n_pending < max(max_trainings, len(plan)):
        return Train(tuple(todo), "initial", f"complying set: {len(plan)} spread shapes")
    if search.n_pending:
        return Wait("the complying set's shapes are being trained")
    if not led.values:
        return Stop(None, "every training failed", SearchStatus.ALL_FAILED,
                    details=StopDetails(reason_code="all_failed", max_trainings=max_trainings))
    post = search.fit()
    stop_details = details(search, post, "complying_set", None)
    if search.floor is not None:
        assert stop_details.p_floor is not None
        stop_details = replace(stop_details, complying=tuple(
            s for s, pv in zip(search.feasible, stop_details.p_floor, strict=True)
            if pv >= search.conf))
    return Stop(None, f"complying set from {search.n_done} trainings",
                SearchStatus.COMPLYING_SET, None, stop_details)
