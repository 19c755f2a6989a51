"""Trials: the one decoder of a stored trial, and every read and write of trials.

:func:`decode_trial` turns an Optuna trial into a :class:`TrialRecord` (its shape, slot, stage,
value, failure, early stop, charged compute, learning curve); the rest reads trials in one
storage call, queues a training as a WAITING trial (:func:`create_waiting_trial`) or makes a
running trial one (:func:`claim_training`), and writes trial attributes.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_shape.space.shape import Shape
from optuna_shape.store.keys import (
    ACCURACY_BY_PRECISION,
    PLANNED_EPOCHS,
    PLANNING,
    PROJECTED_ACCURACY,
    PROJECTED_STD,
    PRUNE_REASON,
    PRUNED_EPOCH,
    SLOT,
    STAGE,
    TEST_ACCURACY_BY_PRECISION,
    TRAIN_SECONDS,
    TRAINING_STAGES,
)

__all__ = [
    "TrialRecord",
    "accuracy_by_precision",
    "all_trials",
    "claim_training",
    "create_waiting_trial",
    "curves",
    "decode_trial",
    "epoch_curve",
    "frozen_trial",
    "set_trial_system_attr",
    "set_trial_user_attrs",
    "trial_record",
    "trial_state",
]


# ------------------------------------------------------------------ records ------------------
@dataclass(frozen=True)
class TrialRecord:
    """What optuna-shape knows about one trial, decoded in one place.

    Attributes:
        number: the trial number.
        trial_id: the storage's trial id.
        state: Optuna's state.
        shape: the shape it trains (params, else fixed params), or ``None``.
        slot: ``"<shape key>#<k>"`` of a planned training, ``"screen:<hash>#1"`` of the
            screening task, or ``None``.
        stage: the user attribute ``stage`` (its system attribute ``osh:stage`` before the trial
            writes one).
        value: the objective's value (COMPLETE only).
        rejected: the trial was pruned by screening (``reject_reason``) — not a training.
        trained: the objective got a shape (params are set).
        fail_reason: why a training failed, as recorded by the worker that ran it.
        accuracies: ``accuracy_by_precision`` of a training in a search over precisions.
        projected: a training stopped early (PRUNED with ``prune_reason``): its projected final
            accuracy; ``None`` otherwise.
        projected_std: the projection's standard deviation.
        epochs_saved: a training stopped early: the planned epochs it did not run (when the
            objective stored ``planned_epochs``); ``None`` otherwise.
        seconds: a finished training's compute: its ``train_seconds`` user attribute, else the
            trial's duration; ``None`` while it runs.
        fraction: the share of a full training it ran (epochs run / ``planned_epochs`` when
            both are known: a stopped or failed training), else 1.0.
        curve: the accuracy reported after epochs 1, 2, … (``trial.report``), up to the first
            missing epoch; empty when it reported none.
        planning: a finishing training whose after-trial hook decides for the idle workers
            (``osh:planning``).
        started: when the trial started running (seconds since the epoch, the worker's
            clock), ``None`` while it waits in the queue.
        ended: when it finished, ``None`` while it waits or runs.
    """

    number: int
    trial_id: int
    state: TrialState
    shape: Shape | None
    slot: str | None
    stage: str | None
    value: float | None
    rejected: bool = False
    trained: bool = False
    fail_reason: str | None = None
    accuracies: Mapping[str, float] | None = None
    projected: float | None = None
    projected_std: float | None = None
    epochs_saved: int | None = None
    seconds: float | None = None
    fraction: float = 1.0
    curve: tuple[float, ...] = ()
    planning: bool = False
    started: float | None = None
    ended: float | None = None

    @property
    def stopped_early(self) -> bool:
        """PRUNED by :class:`~optuna_shape.ShapePruner` with a projected final accuracy."""
        return self.state == TrialState.PRUNED and self.projected is not None

    @property
    def lost(self) -> bool:
        """A FAIL training that no ``after_trial`` recorded a reason for: its worker died or
        was paused past the heartbeat grace period (the trial was failed as stale)."""
        return self.state == TrialState.FAIL and self.fail_reason is None

    @property
    def is_training(self) -> bool:
        """A planned or user training (running, queued or finished), not a yielded copy."""
        return self.shape is not None and not self.rejected and (
            self.stage in TRAINING_STAGES or (self.stage is None and self.slot is None))


def decode_trial(t: FrozenTrial) -> TrialRecord:
    """Decode a stored trial."""
    p = t.params
    shape: Shape | None = None
    trained = "depth" in p and "width" in p
    if trained:
        shape = Shape(int(p["depth"]), float(p["width"]))
    else:
        fixed = t.system_attrs.get("fixed_params") or {}
        if "depth" in fixed and "width" in fixed:
            shape = Shape(int(fixed["depth"]), float(fixed["width"]))
    stage = t.user_attrs.get("stage") or t.system_attrs.get(STAGE)
    value = t.value if t.state == TrialState.COMPLETE else None
    projected = projected_std = None
    saved: int | None = None
    if PRUNE_REASON in t.user_attrs:
        projected = _finite_or_none(t.user_attrs.get(PROJECTED_ACCURACY))
        projected_std = _finite_or_none(t.user_attrs.get(PROJECTED_STD))
        planned, ran = t.user_attrs.get(PLANNED_EPOCHS), t.user_attrs.get(PRUNED_EPOCH)
        if isinstance(planned, int) and isinstance(ran, int) and 0 <= ran <= planned:
            saved = planned - ran
    return TrialRecord(t.number, t._trial_id, t.state, shape, t.system_attrs.get(SLOT), stage,
                       value, rejected="reject_reason" in t.user_attrs, trained=trained,
                       fail_reason=t.user_attrs.get("fail_reason"),
                       accuracies=accuracy_by_precision(t.user_attrs), projected=projected,
                       projected_std=projected_std, epochs_saved=saved,
                       seconds=_charged_seconds(t), fraction=_fraction_run(t),
                       curve=epoch_curve(t.intermediate_values),
                       planning=t.system_attrs.get(PLANNING) is True,
                       started=_timestamp(t.datetime_start),
                       ended=_timestamp(t.datetime_complete))


def _timestamp(when: datetime.datetime | None) -> float | None:
    """Seconds since the epoch of a trial's start or end, ``None`` when not set."""
    return None if when is None else when.timestamp()


def epoch_curve(values: Mapping[int, float]) -> tuple[float, ...]:
    """The values reported at steps 1, 2, … up to the first missing step (a learning curve).

    Example:
        >>> epoch_curve({1: 50.0, 2: 70.0, 4: 90.0})
        (50.0, 70.0)
    """
    out: list[float] = []
    while len(out) + 1 in values:
        out.append(float(values[len(out) + 1]))
    return tuple(out)


def _charged_seconds(t: FrozenTrial) -> float | None:
    """A trial's compute: ``train_seconds`` if the objective stored it, else a finished trial's
    duration (both stamps come from one clock, whatever its time zone); ``None`` otherwise."""
    own = _finite_or_none(t.user_attrs.get(TRAIN_SECONDS))
    if own is not None and own >= 0:
        return own
    if not t.state.is_finished() or t.datetime_start is None or t.datetime_complete is None:
        return None
    return max(0.0, (t.datetime_complete - t.datetime_start).total_seconds())


def _fraction_run(t: FrozenTrial) -> float:
    """Epochs run / planned epochs of a training that did not complete (1.0 otherwise or when
    either is unknown)."""
    planned = t.user_attrs.get(PLANNED_EPOCHS)
    if t.state == TrialState.COMPLETE or not isinstance(planned, int) or planned <= 0:
        return 1.0
    ran = t.user_attrs.get(PRUNED_EPOCH)
    if not isinstance(ran, int):
        ran = len(t.intermediate_values)
    return min(1.0, max(ran, 1) / planned)


def accuracy_by_precision(trial_attrs: Mapping[str, Any], *, test: bool = False
                          ) -> dict[str, float] | None:
    """``{precision: accuracy}`` a trial's objective stored (in the units of the trial's value),
    or ``None`` when absent or not a mapping. Precisions whose value is missing or not a finite
    number are left out (their conversion or evaluation failed).

    Args:
        trial_attrs: the trial's user attributes.
        test: the test split's accuracies instead of the selection split's.

    Example:
        >>> accuracy_by_precision({"accuracy_by_precision": {"fp32": 97.5, "int8": 97.2}})
        {'fp32': 97.5, 'int8': 97.2}
        >>> accuracy_by_precision({"val_accuracy": 97.5}) is None
        True
    """
    value = trial_attrs.get(TEST_ACCURACY_BY_PRECISION if test else ACCURACY_BY_PRECISION)
    if not isinstance(value, Mapping):
        return None
    return {str(k): float(v) for k, v in value.items()
            if not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)}


def _finite_or_none(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


# ------------------------------------------------------------------ reads --------------------
def curves(study: optuna.Study) -> list[FrozenTrial]:
    """Every COMPLETE and RUNNING trial with reported intermediate values (one storage read;
    the learning curves :class:`~optuna_shape.ShapePruner` projects from)."""
    return [t for t in all_trials(study, (TrialState.COMPLETE, TrialState.RUNNING))
            if t.intermediate_values]


def all_trials(study: optuna.Study, states: Iterable[TrialState] | None = None
               ) -> list[FrozenTrial]:
    """Every trial of the study, not copied (one storage read)."""
    return study._storage.get_all_trials(
        study._study_id, deepcopy=False, states=None if states is None else tuple(states))


def frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """The current stored state of a running trial (what ``trial.should_prune()`` hands the
    study's pruner)."""
    return trial.study._storage.get_trial(trial._trial_id)


def trial_record(study: optuna.Study, trial_id: int) -> TrialRecord:
    """The current record of one trial (one storage read)."""
    return decode_trial(study._storage.get_trial(trial_id))


def trial_state(study: optuna.Study, trial_id: int) -> TrialState:
    """The current state of one trial, read from the storage."""
    return study._storage.get_trial(trial_id).state


# ------------------------------------------------------------------ writes -------------------
def create_waiting_trial(
    study: optuna.Study,
    *,
    slot: str,
    stage: str,
    shape: Shape | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> int:
    """Queue a training (or the screening task) as a WAITING trial, in one storage call.

    Everything that identifies it — fixed params, slot, stage, the dashboard's user attributes —
    is part of the template, so it is visible from the moment the trial exists. Workers take it
    through Optuna's atomic WAITING → RUNNING pop in ``study.ask()``. Returns the trial id.
    """
    system: dict[str, Any] = {SLOT: slot, STAGE: stage, **dict(system_attrs or {})}
    if shape is not None:
        system["fixed_params"] = {"depth": shape.depth, "width": shape.width}
    users = {"stage": stage, **dict(user_attrs or {})}
    template = create_trial(state=TrialState.WAITING, system_attrs=system, user_attrs=users)
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def claim_training(
    study: optuna.Study,
    trial_id: int,
    *,
    slot: str,
    stage: str,
    shape: Shape,
    user_attrs: Mapping[str, Any] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Make a running trial that planned (its ``ask`` found the queue empty) the training of
    ``shape`` itself: the same slot, stage, fixed params and attributes a queued training is
    created with (:func:`create_waiting_trial`), written to the running trial.

    Optuna has no batch write, so other workers may read the trial between these writes; at
    every one of them it reads as an idle worker (nothing written yet) or as a pending
    training of ``shape``: the fixed params and the stage first, the slot after them. Written
    slot first, it read as neither for a few writes, and a finishing training that decided in
    that moment saw room for one more training than the cap had left and queued it."""
    storage = study._storage
    storage.set_trial_system_attr(trial_id, "fixed_params",
                                  {"depth": shape.depth, "width": shape.width})
    for k, v in {STAGE: stage, SLOT: slot, **dict(system_attrs or {})}.items():
        storage.set_trial_system_attr(trial_id, k, v)
    set_trial_user_attrs(study, trial_id, {"stage": stage, **dict(user_attrs or {})})


def set_trial_user_attrs(study: optuna.Study, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Write several trial user attributes (one commit each: Optuna has no batch call)."""
    storage = study._storage
    for k, v in attrs.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        storage.set_trial_user_attr(trial_id, k, v)


def set_trial_system_attr(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    """Write a trial system attribute (``Trial.set_system_attr`` is gone in Optuna 5)."""
    study._storage.set_trial_system_attr(trial_id, key, value)
