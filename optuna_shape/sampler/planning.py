"""A trial's role, and planning: what a popped or fresh trial does (train a queued shape, screen,
yield its slot, plan, or end), how a planner decides and queues trainings, and how the search is
finished. The steps are those of "How a trial runs" in :mod:`optuna_shape.sampler`."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, NoReturn

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.measurement.screening import candidate_size, constraint_values
from optuna_shape.policy import Problem, Stop, Train, Wait
from optuna_shape.sampler import coordination, predicted_costs, screen
from optuna_shape.sampler.checks import check_study
from optuna_shape.sampler.context import SearchContext
from optuna_shape.sampler.finish import store_answer
from optuna_shape.sampler.problem import measurements_of, screened_problem
from optuna_shape.sampler.progress import SearchReporter
from optuna_shape.sampler.snapshot import Snapshot, read_snapshot
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.shape import Shape

__all__ = ["resolve", "next_action", "enqueue", "finish", "stop_study", "is_shape_distribution"]

_logger = logging.getLogger("optuna_shape")


def is_shape_distribution(space: ShapeSpace, name: str, dist: BaseDistribution) -> bool:
    """Whether ``dist`` is the categorical distribution of ``space``'s depths (``name ==
    "depth"``) or widths that :func:`~optuna_shape.suggest_shape` suggests."""
    if not isinstance(dist, CategoricalDistribution):
        return False
    values = space.depths if name == "depth" else space.widths
    return list(dist.choices) == list(values)


def resolve(ctx: SearchContext, study: optuna.Study, trial_id: int, number: int
            ) -> tuple[Shape, str]:
    """What trial ``number`` does: train a shape (returned with its stage), or end.

    Raises:
        optuna.TrialPruned: the trial does not train — it planned (``plan``), screened
            (``screen``), yielded its slot (``duplicate``), or the search is over
            (``stopped``); the stage and reason are in its user attributes.
        ValueError: the study contradicts the sampler's settings or hardware.
    """
    claimed = ctx.state.claimed.get(trial_id)
    if claimed is not None:  # this trial planned and took a training (see _claim)
        return claimed
    snap = read_snapshot(study, ctx.state.cache)
    check_study(ctx, study, dict(snap.attrs))
    me = snap.by_number(number)
    if me is None:
        raise RuntimeError(f"trial {number} is not in the study")
    if me.state != TrialState.RUNNING:  # failed as stale while this worker was paused
        raise optuna.TrialPruned(f"trial {number} is {me.state.name}: not training it")
    if snap.result is not None:
        _end(study, trial_id, "stopped", f"search finished: {snap.result.reason}", stop=True)
    screened_hw = None if me.slot is None else st.screened_hash(me.slot)
    if screened_hw is not None:
        if not coordination.wins(snap, me) or st.screened_key(screened_hw) in snap.attrs:
            _end(study, trial_id, "duplicate", "another worker screens")
        screen.screen_space(ctx, study, snap)
        _end(study, trial_id, "screen", "measured the design space")
    if me.slot is not None:
        assert me.shape is not None
        if not coordination.wins(snap, me):
            _end(study, trial_id, "duplicate", f"slot {me.slot} is held by another trial")
        stage = me.stage or "sample"
        _report_assign(ctx, snap, number, me.shape, stage)
        return me.shape, stage
    if me.shape is not None:  # enqueued by hand
        return me.shape, "user"
    return _plan(ctx, study, trial_id, number, snap)


def _plan(ctx: SearchContext, study: optuna.Study, trial_id: int, number: int, snap: Snapshot
          ) -> tuple[Shape, str]:
    """A planner trial: decide, take the first proposed training itself and queue the rest
    (:func:`_claim`), or end (waiting inside while there is nothing to do)."""
    polls = 0
    seen, read_at = None, time.monotonic()  # the trial counts at the last whole read (unknown)
    # study.optimize failed stale trials just before this trial's ask: the waiting below
    # checks again only one check interval from now (:func:`_wait`)
    ctx.state.last_stale_check = time.monotonic()
    while True:
        if snap.result is not None:
            _end(study, trial_id, "stopped", f"search finished: {snap.result.reason}",
                 stop=True)
        problem = screened_problem(ctx, study, snap)
        if problem is None:  # screening on this hardware is not complete
            h = st.hardware_hash(ctx.hardware() or "")
            state = coordination.screen_state(snap, h)
            if state == "none":
                coordination.queue_screening(study, h)
                _end(study, trial_id, "plan", "queued the screening of the space")
            if state == "queued":
                _end(study, trial_id, "plan", "the screening task is queued")
            reason = "another worker is screening the design space"
        elif (deciding := snap.deciders()) and (st.has_heartbeat(study)
                                                or st.is_in_memory(study)):
            # a finishing training decides for every idle one (without heartbeats a dead
            # worker's mark would never go, so there each planner decides for itself)
            if coordination.a_queued_training_is_mine(snap, number, planner_decides=False):
                _end(study, trial_id, "plan", "a queued training is waiting")
            reason = f"trial {deciding[0]} decides for the idle workers"
        elif (first := snap.first_planner()) is not None and first != number and (
                st.has_heartbeat(study) or st.is_in_memory(study)):
            # one worker plans for every idle one: planners deciding at once would each
            # queue a batch for all of them, and most of it would only be yielded again
            # (without heartbeats a dead worker's planner would never be failed, so there
            # each planner decides for itself)
            if coordination.a_queued_training_is_mine(snap, number, planner_decides=True):
                _end(study, trial_id, "plan", "a queued training is waiting")
            reason = f"trial {first} plans for the idle workers"
        else:
            slots = max(1, snap.planners()) + coordination.lookahead(snap.n_running())
            snap, problem, action = next_action(ctx, study, snap, problem, slots)
            if isinstance(action, Stop):
                finish(ctx, study, snap, problem, action)
                _end(study, trial_id, "stopped", f"search finished: {action.reason}",
                     stop=True)
            if isinstance(action, Train):
                mine = _claim(ctx, study, trial_id, number, snap, problem, action)
                if mine is not None:
                    return mine
                queued = enqueue(ctx, study, snap, problem, action)
                if queued or snap.queued:
                    _end(study, trial_id, "plan",
                         f"queued {len(queued)} training(s): {action.reason}")
                reason = "the proposed shapes are being trained"
            else:
                assert isinstance(action, Wait)
                if snap.queued:
                    _end(study, trial_id, "plan", "a queued training is waiting")
                reason = action.reason
        while True:
            _wait(ctx, study, reason, polls, snap.n_running())
            polls += 1
            counts = st.trial_counts(study)
            if counts is None or counts != seen or time.monotonic() - read_at >= (
                    FULL_READ_S * max(1.0, snap.n_running() / WORKERS_PER_POLL_STEP)):
                break
        seen, read_at = counts, time.monotonic()
        snap = read_snapshot(study, ctx.state.cache)


def next_action(ctx: SearchContext, study: optuna.Study, snap: Snapshot, problem: Problem,
                slots: int = 1) -> tuple[Snapshot, Problem, Train | Wait | Stop]:
    """The policy's action for ``slots`` idle workers, after measuring for real every shape
    it would train (or answer) whose cost is only predicted; when that changed anything the
    feasible set is rebuilt and the policy decides again (each round measures at least one
    predicted shape, so this ends)."""
    while True:
        action = ctx.decide(problem, snap.evidence(ctx.precisions), ctx.settings, slots)
        if ctx.precision_search:  # every candidate was measured (no prediction)
            return snap, problem, action
        shapes = list(action.shapes) if isinstance(action, Train) else (
            [action.answer] if isinstance(action, Stop) and action.answer is not None
            else [])
        measurements = measurements_of(ctx, study)
        if not predicted_costs.confirm_measured(ctx, study, shapes, measurements):
            return snap, problem, action
        snap = dataclasses.replace(snap, attrs=st.study_attrs(study))
        rebuilt = screened_problem(ctx, study, snap)
        assert rebuilt is not None  # screening was complete, and stays so
        problem = rebuilt


WORKERS_PER_POLL_STEP = 16
"""Every look reads the whole study, and waiting workers look at once: with more running trials
than this, each waits ``running / 16`` times longer between looks, so the reads per second of
all waiting workers together stay about level as workers are added."""
STALE_CHECK_S = 5.0
"""A waiting worker fails stale trials (of workers that died) at most this often, and with
more running trials than :data:`WORKERS_PER_POLL_STEP` proportionally less often: each check
reads every running trial with its heartbeat, and 64 workers checking every 5 s from their
first look (one check each right after Optuna's own, taken before every trial) held the
first trainings back by seconds. One check per grace period among all waiting workers is
enough to free a dead worker's slot."""
FULL_READ_S = 5.0
"""Where the storage counts trials with one small query (RDB:
:func:`~optuna_shape.store.engine.trial_counts`), a waiting worker reads the whole study again
only when the counts changed since its last read, and otherwise at least this often (as many
times less often with more running trials than :data:`WORKERS_PER_POLL_STEP`, like the looks):
a trial taken from the queue, created, queued or finished changes the counts; a planner taking
its own training or a finishing training marking itself as the decider changes only
attributes, and the next event or this interval shows it."""
FIRST_POLL_S = 0.05
"""A waiting worker looks again after this many seconds, then after twice as long each time,
up to the sampler's ``poll_interval``: another worker's planning or a result usually comes
within a fraction of a second, and a training waiting for it should not idle a whole interval."""


def _wait(ctx: SearchContext, study: optuna.Study, reason: str, polls: int = 0,
          running: int = 1) -> None:
    """Sleep before looking again (``polls``: looks so far in this trial; see
    :data:`FIRST_POLL_S`; with ``running`` trials above :data:`WORKERS_PER_POLL_STEP`, every
    sleep is that many times longer), failing stale trials every :data:`STALE_CHECK_S`
    (as many times longer)."""
    ctx.reporter.on_wait(reason)
    state = ctx.state
    now = time.monotonic()
    scale = max(1.0, running / WORKERS_PER_POLL_STEP)
    if now - state.last_stale_check >= STALE_CHECK_S * scale:
        state.last_stale_check = now
        st.fail_stale(study)
    if not st.is_in_memory(study) and not st.has_heartbeat(study) and \
            now - state.last_warn >= 60.0:
        state.last_warn = now
        _logger.warning(
            "optuna-shape: waiting (%s). This storage has no heartbeat, so a trial whose "
            "worker died stays RUNNING forever: use RDBStorage(url, heartbeat_interval=10) "
            "(the CLI does), or mark dead trials failed "
            "(optuna_shape.store.backends.fail_stale_on_start).", reason)
    time.sleep(scale * min(ctx.poll_interval, FIRST_POLL_S * 2.0 ** min(polls, 30)))


def _end(study: optuna.Study, trial_id: int, stage: str, reason: str,
         stop: bool = False) -> NoReturn:
    st.set_trial_user_attrs(study, trial_id, {"stage": stage, "end_reason": reason})
    if stop:
        stop_study(study)
    raise optuna.TrialPruned(reason)


def stop_study(study: optuna.Study) -> None:
    """``study.stop()``, where there is an ``optimize`` loop to stop."""
    try:
        study.stop()
    except RuntimeError:  # ask-and-tell: nothing to stop
        pass


def _claim(ctx: SearchContext, study: optuna.Study, trial_id: int, number: int, snap: Snapshot,
           problem: Problem, action: Train) -> tuple[Shape, str] | None:
    """Let planner trial ``number`` train the first proposed shape not already pending (or
    named in ``action.alongside``) itself and queue the rest, so a worker's trial is a
    training, not a pruned planner (``None`` when every proposed shape is pending).

    The claimed slot must be the trial's alone: a copy of it queued or taken by another
    worker meanwhile (another planner proposed the same shape at the same moment) makes
    this trial yield (stage ``duplicate``). Both may yield in a close race — the policy
    then proposes the shape again — but two never train one slot: the other copy yields
    to this lower-numbered trial once it sees the claim, and this trial yields to any
    copy it sees."""
    pending = snap.pending_shapes()
    free = [c for c in action.shapes if Shape(c.depth, c.width) not in pending
            or Shape(c.depth, c.width) in action.alongside]
    if not free:
        return None
    shape = Shape(free[0].depth, free[0].width)
    slot = coordination.slot_of(shape, snap.repeat_index(shape))
    user, system = _attrs_of(ctx, study, action, shape)
    rest = tuple(c for c in action.shapes if Shape(c.depth, c.width) != shape)
    if rest:  # queued first: once this trial holds a slot it is no longer a planner, and the
        # next planner decides on what it sees queued
        enqueue(ctx, study, snap, problem, dataclasses.replace(action, shapes=rest))
    st.claim_training(study, trial_id, slot=slot, stage=action.stage, shape=shape,
                      user_attrs=user, system_attrs=system)
    after = read_snapshot(study, ctx.state.cache)
    if any(t.number != number and t.state in (TrialState.WAITING, TrialState.RUNNING,
                                              TrialState.COMPLETE)
           for t in after.same_slot(slot)):
        _end(study, trial_id, "duplicate", f"slot {slot} is held by another trial")
    ctx.state.claimed[trial_id] = (shape, action.stage)
    _report_assign(ctx, after, number, shape, action.stage)
    return shape, action.stage


def _report_assign(ctx: SearchContext, snap: Snapshot, number: int, shape: Shape,
                   stage: str) -> None:
    """Tell the reporter that trial ``number`` trains ``shape``, with the compute the study
    has spent so far (for a reporter that shows it: the sum over the study's trainings)."""
    if type(ctx.reporter).on_compute is not SearchReporter.on_compute:
        ctx.reporter.on_compute(snap.compute_spent(), ctx.settings.budget)
    ctx.reporter.on_assign(number, shape, stage)


def _attrs_of(ctx: SearchContext, study: optuna.Study, action: Train, shape: Shape
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (user, system) attributes a planned training of ``shape`` carries: size,
    measurements, constraint values and the policy's prediction."""
    from optuna_shape.store.attributes import readable_trial_attrs

    measurements = measurements_of(ctx, study)
    cand = next(c for c in action.shapes if Shape(c.depth, c.width) == shape)
    size = candidate_size(ctx.space, cand)
    m = measurements.get(cand)
    user: dict[str, Any] = {"params": ctx.space.param_count(shape),
                            "size_mb": round(size, 6)}
    if cand.precision is not None:
        user["precision"] = cand.precision
    system: dict[str, Any] = {}
    if m:
        for cost, k in (("latency", "latency_ms"), ("energy", "energy_j")):
            if m.cost(cost) is not None:
                user[k] = m.cost(cost)
    for name, value in constraint_values(ctx.constraints, size, m).items():
        system[f"constraints:{name}"] = value
        user[f"constraint_{name}"] = value
    pred = action.predictions.get(cand)
    if pred is not None:
        user.update(predicted_accuracy=float(pred[0]), predicted_std=float(pred[1]),
                    prediction_source=f"{ctx.settings.mode} policy")
    # rounded for reading and sorting in optuna-dashboard (constraints stay exact)
    return readable_trial_attrs(user, shape=shape), system


def enqueue(ctx: SearchContext, study: optuna.Study, snap: Snapshot, problem: Problem,
            action: Train) -> list[Shape]:
    """Queue a training of each shape ``action`` proposes that is not already pending, or is
    named in ``action.alongside`` (see :func:`optuna_shape.sampler.coordination.enqueue`);
    returns the shapes queued."""
    # a candidate (shape, precision) is served by training its shape once
    proposed: dict[Shape, Shape] = {}
    for c in action.shapes:
        proposed.setdefault(Shape(c.depth, c.width), c)

    return coordination.enqueue(study, snap, tuple(proposed), action.stage,
                                lambda shape: _attrs_of(ctx, study, action, shape),
                                frozenset(Shape(c.depth, c.width) for c in action.alongside))


def finish(ctx: SearchContext, study: optuna.Study, snap: Snapshot, problem: Problem,
           action: Stop) -> None:
    """Store the answer of ``action`` (the first stored result is final) and report it."""
    result = store_answer(study, action, snap, problem, ctx.n_candidates, ctx.precisions)
    fit = st.read_fit(st.study_attrs(study))
    if fit is not None:
        ctx.reporter.on_fit(fit.to_json())
    ctx.reporter.on_done(result.to_json())
