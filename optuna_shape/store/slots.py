"""Slots: which training (or screening task) a queued trial is.

A planned training's trial system attribute ``osh:slot`` is ``"<shape key>#<k>"`` (the k-th
training of that shape); the screening task's is ``"screen:<hash>#1"``. Built, parsed, and read
from a running trial here (the objective asks which training it runs and how many of its slot
failed before).
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import TrialState

from optuna_shape.space.shape import Shape
from optuna_shape.store.keys import INTERRUPTED, SLOT
from optuna_shape.store.trials import all_trials, decode_trial

__all__ = [
    "mark_interrupted",
    "screen_slot",
    "screened_hash",
    "slot_index",
    "slot_of",
    "training_attempt",
    "training_index",
]


def slot_of(shape: Shape, k: int) -> str:
    """The slot of the ``k``-th training of ``shape``: ``"<shape key>#<k>"``."""
    return f"{shape.key}#{k}"


def screen_slot(hw_hash: str) -> str:
    """The slot of the screening task on one hardware."""
    return f"screen:{hw_hash}#1"


def screened_hash(slot: str) -> str | None:
    """The hardware hash of a slot made by :func:`screen_slot` (``None`` for anything else)."""
    if not slot.startswith("screen:") or not slot.endswith("#1"):
        return None
    return slot[len("screen:"):-len("#1")] or None


def slot_index(slot: str) -> int | None:
    """``k`` of a slot made by :func:`slot_of` (``None`` for anything else)."""
    tail = slot.rsplit("#", 1)[1] if "#" in slot else ""
    return int(tail) if tail.isdigit() and int(tail) >= 1 else None


def _slot_of_running(trial: optuna.Trial) -> str | None:
    """The slot of a running trial: from the record Optuna read when the trial was taken (a
    queued training carries its slot from the start, and a slot never changes), else from the
    storage (a planner trial that took a training itself got its slot later)."""
    study, trial_id = getattr(trial, "study", None), getattr(trial, "_trial_id", None)
    if study is None or trial_id is None:  # an optuna.trial.FixedTrial
        return None
    taken = getattr(trial, "_cached_frozen_trial", None)
    slot = None if taken is None else taken.system_attrs.get(SLOT)
    if not isinstance(slot, str):
        slot = study._storage.get_trial_system_attrs(trial_id).get(SLOT)
    return slot if isinstance(slot, str) else None


def training_index(trial: optuna.Trial) -> int:
    """``k`` of a planned training's slot ``<shape>#<k>`` (its k-th training of the shape), 1 for
    a trial without a slot (the objective's own study, a user's training, an
    ``optuna.trial.FixedTrial``)."""
    slot = _slot_of_running(trial)
    k = None if slot is None else slot_index(slot)
    return 1 if k is None else k


def training_attempt(trial: optuna.Trial) -> tuple[int, int]:
    """``(k, failures)`` of a training, its slot read once: ``k`` as :func:`training_index`,
    ``failures`` the earlier trainings of its slot that failed for a recorded reason (an
    exception, NaN, a stop by another pruner) — not the lost or interrupted ones, which are
    retried as they were. ``(1, 0)`` for a trial without a slot."""
    slot = _slot_of_running(trial)
    if slot is None:
        return 1, 0
    earlier = (decode_trial(t) for t in all_trials(trial.study,
                                                   states=(TrialState.FAIL, TrialState.PRUNED)))
    failures = sum(1 for r in earlier
                   if r.number < trial.number and r.slot == slot and r.fail_reason is not None)
    return slot_index(slot) or 1, failures


def mark_interrupted(trial: optuna.Trial) -> None:
    """Mark a running training stopped by Ctrl-C as ``interrupted`` (call it, then re-raise):
    Optuna fails the trial, and the search retries the training when it resumes instead of
    counting it as the shape's failure. A storage that went away too leaves the trial merely
    lost, which is retried the same way."""
    try:
        trial.set_user_attr(INTERRUPTED, True)
    except Exception:
        logging.getLogger("optuna_shape").debug(
            "could not mark trial %d interrupted", trial.number, exc_info=True)
