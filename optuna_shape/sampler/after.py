"""After a training ends: record why it failed or was stopped and the accuracy constraint, then
decide again with its value and queue the next action (or store the answer and stop) — step 4
of "How a trial runs" in :mod:`optuna_shape.sampler`."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_shape import store as st
from optuna_shape.policy import Stop, Train
from optuna_shape.sampler import coordination
from optuna_shape.sampler.context import SearchContext
from optuna_shape.sampler.planning import enqueue, finish, next_action, stop_study
from optuna_shape.sampler.problem import screened_problem
from optuna_shape.sampler.snapshot import Snapshot, read_snapshot

__all__ = ["after_trial", "missing_precisions"]

_logger = logging.getLogger("optuna_shape")


def after_trial(ctx: SearchContext, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                values: Sequence[float] | None) -> None:
    """Record the accuracy constraint, then decide and queue the next action (or stop).

    Raises:
        ValueError: a completed training of a search over precisions lacks the accuracy at one
            of them (the reason is stored as the trial's ``fail_reason`` first).
    """
    ctx.state.claimed.pop(st.trial_id(trial), None)
    rec = st.decode_trial(trial)
    if not rec.is_training or st.study_id(study) not in ctx.state.checked or \
            trial.user_attrs.get("reject_reason"):
        return
    value = values[0] if values else None
    # Optuna's heartbeat stops when the objective returns; the bookkeeping below (a fit,
    # the first one importing scikit-learn) must not let the trial look dead meanwhile.
    with st.keep_alive(study, trial):
        missing = missing_precisions(ctx.precisions, trial, state, value)
        if missing:
            reason = (f"the objective returned a value but its trial user attribute "
                      f"'{st.ACCURACY_BY_PRECISION}' lacks {', '.join(missing)}: a search "
                      f"over precisions {', '.join(ctx.precisions)} needs the accuracy "
                      "of the trained network at each of them "
                      "(trial.set_user_attr(\"accuracy_by_precision\", {precision: accuracy}))")
            st.set_trial_user_attrs(study, st.trial_id(trial), {"fail_reason": reason})
        if state == TrialState.PRUNED and trial.user_attrs.get(st.PRUNE_REASON):
            ctx.reporter.on_stopped(trial.number, rec.shape,
                                    str(trial.user_attrs[st.PRUNE_REASON]))
        _after_training(ctx, study, trial, state, value)
    if missing:
        raise ValueError(f"trial {trial.number}: {reason}")


def missing_precisions(precisions: Sequence[str], trial: FrozenTrial, state: TrialState,
                       value: float | None) -> list[str]:
    """Which of ``precisions`` (the searched precisions) a completed training's
    ``accuracy_by_precision`` lacks without a reason in ``precision_errors`` (none outside a
    search over precisions, or for a failed training). A precision the network could not be
    converted to is a failed candidate, not a broken objective."""
    if not precisions or state != TrialState.COMPLETE or value is None or \
            not math.isfinite(value):
        return []
    acc = st.accuracy_by_precision(trial.user_attrs) or {}
    errors = trial.user_attrs.get(st.PRECISION_ERRORS) or {}
    return [p for p in precisions if p not in acc and p not in errors]


def _should_decide(snap: Snapshot, coordinated: bool) -> bool:
    """Whether a finishing training's hook decides for the idle workers: the queue is down to
    the look-ahead (empty with few workers: the next ``ask`` takes a queued training, and the
    policy decides on every result in by then) and no planning worker or, where a dead
    worker's trial is failed (``coordinated``), other finishing training is deciding (each
    decides for every idle worker)."""
    return not _queue_full(snap) and not snap.planners() and not (
        coordinated and snap.deciders())


def _queue_full(snap: Snapshot) -> bool:
    return snap.n_queued() > coordination.lookahead(snap.n_running())


def _pruned_by_another_pruner(ctx: SearchContext, study: optuna.Study,
                              trial: FrozenTrial) -> None:
    """A training the objective stopped for a pruner other than ShapePruner: it carries no
    projection, so the search counts it as a failed training; say so (a warning once)."""
    name = type(study.pruner).__name__
    reason = (f"stopped by the study's pruner {name}, which compares different shapes at "
              "equal epochs; counted as a failed training (use "
              "create_study(pruner=osh.ShapePruner()) to stop trainings early, or "
              "optuna.pruners.NopPruner() not to)")
    st.set_trial_user_attrs(study, st.trial_id(trial), {"fail_reason": reason})
    if not ctx.state.warned_pruner:
        ctx.state.warned_pruner = True
        _logger.warning("optuna-shape: trial %d was %s", trial.number, reason)


def _after_training(ctx: SearchContext, study: optuna.Study, trial: FrozenTrial,
                    state: TrialState, value: float | None) -> None:
    trial_id = st.trial_id(trial)
    try:
        if state == TrialState.FAIL and trial.user_attrs.get(st.INTERRUPTED):
            return  # stopped by Ctrl-C: lost, not failed; the resumed search decides
        if state == TrialState.COMPLETE and value is not None and math.isfinite(value):
            if ctx.constraints.min_accuracy is not None:
                c = ctx.constraints.min_accuracy - value
                st.set_trial_system_attr(study, trial_id, "constraints:accuracy", c)
                from optuna_shape.store.attributes import significant

                st.set_trial_user_attrs(study, trial_id,
                                        {"constraint_accuracy": significant(c, 4)})
        elif state in (TrialState.COMPLETE, TrialState.FAIL):
            reason = ("the objective raised an exception or returned "
                      f"{'a non-finite value' if value is None else repr(value)}")
            st.set_trial_user_attrs(study, trial_id, {"fail_reason": reason})
        elif state == TrialState.PRUNED and st.PRUNE_REASON not in trial.user_attrs:
            _pruned_by_another_pruner(ctx, study, trial)
        me = (trial.number, state, value)
        snap = read_snapshot(study, ctx.state.cache, me)
        if snap.result is not None:
            stop_study(study)
            return
        # with heartbeats (or in one process) a decider that died is failed as stale; on the
        # journal storage it would hold everyone back, so each worker decides for itself
        coordinated = st.has_heartbeat(study) or st.is_in_memory(study)
        if not _should_decide(snap, coordinated):
            return
        problem = screened_problem(ctx, study, snap)
        if problem is None:
            return
        if coordinated and snap.n_running():
            # others may be deciding: mark this trial, read again, and decide only if no other
            # finishing training is marked and no idle worker is planning. Each marks before
            # it reads, so of two that overlap at least the later reader sees the other; a
            # planner that began before the read is seen and decides itself (it waits for
            # this mark only until this trial ends). "The lowest number decides" let two
            # decide at once (the higher one read before the lower one marked), and a
            # planner that read before the mark decided beside this trial: each sees room
            # for the last trainings of the cap, and the cap was passed by one.
            st.set_trial_system_attr(study, trial_id, st.PLANNING, True)
            snap = read_snapshot(study, ctx.state.cache, me)
            if snap.result is not None or _queue_full(snap) or snap.deciders() or \
                    snap.planners():
                return
        ahead = coordination.lookahead(snap.n_running())
        slots = 1 + snap.planners() + 2 * ahead - snap.n_queued()
        snap, problem, action = next_action(ctx, study, snap, problem, max(1, slots))
        if isinstance(action, Train):
            enqueue(ctx, study, snap, problem, action)
        elif isinstance(action, Stop):
            if st.trial_state(study, trial_id) != TrialState.RUNNING:
                return  # failed as stale while this worker was paused: not evidence
            finish(ctx, study, snap, problem, action)
            stop_study(study)
    except optuna.exceptions.UpdateFinishedTrialError:
        # failed as stale while this worker was paused (between Optuna's look at the trial
        # and these writes): not evidence, and the worker says so in its own line
        return
    except Exception:  # never lose the trial's result because of bookkeeping
        _logger.exception("optuna-shape: bookkeeping after trial %d failed", trial.number)
