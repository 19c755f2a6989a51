"""Copying a study's evidence into another study: its finished trainings and its hardware
measurements, so a search for other limits starts from everything already paid for."""

from __future__ import annotations

import copy

import optuna
from optuna.trial import TrialState

from optuna_shape.store.keys import study_attrs
from optuna_shape.store.trials import all_trials, decode_trial

__all__ = ["copy_trainings"]

_MEASUREMENT_PREFIXES = ("osh:hw:", "osh:m:")
"""Study attributes copied: the hardware names and per-shape measurements. Not copied: the
configuration, the fit, the result, and the "screened" marks — the target's own search screens
its design space again, measuring only what the copied records lack."""


def copy_trainings(source: optuna.Study, target: optuna.Study) -> int:
    """Copy every finished training of ``source`` (completed, failed, or stopped early with a
    projection) with its attributes and timestamps, and the hardware measurements, into
    ``target``, which must hold no trials yet. Returns the trainings copied.

    Raises:
        ValueError: ``target`` already has trials, or its direction differs.
    """
    if target.trials:
        raise ValueError(f"study {target.study_name!r} already has {len(target.trials)} trials: "
                         "copy the trainings into a new, empty study")
    if target.directions != source.directions:
        raise ValueError(f"study {target.study_name!r} has directions "
                         f"{[d.name for d in target.directions]}, the source "
                         f"{[d.name for d in source.directions]}")
    n = 0
    for t in all_trials(source):
        rec = decode_trial(t)
        if not rec.is_training or rec.state == TrialState.RUNNING or rec.state == \
                TrialState.WAITING:
            continue
        if rec.state == TrialState.PRUNED and not rec.stopped_early:
            continue
        target.add_trial(copy.deepcopy(t))
        n += 1
    storage, sid = target._storage, target._study_id
    for key, value in study_attrs(source).items():
        if key.startswith(_MEASUREMENT_PREFIXES):
            storage.set_study_system_attr(sid, key, value)
    return n
