"""The study snapshot: which trials are evidence, pending, or neither."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.policy import Training
from optuna_shape.sampler.snapshot import LOST_FREE, TrialCache, read_snapshot
from optuna_shape.space.shape import Shape

optuna.logging.set_verbosity(optuna.logging.WARNING)
A, B, C = Shape(10, 1.0), Shape(16, 1.0), Shape(22, 1.0)


def trial(study, shape, state, stage="sample", value=None, user=None, k=1):
    tid = st.create_waiting_trial(study, slot=f"{shape.key}#{k}", stage=stage, shape=shape,
                                  user_attrs=user or {})
    storage = study._storage
    if state == TrialState.WAITING:
        return tid
    storage.set_trial_state_values(tid, TrialState.RUNNING)
    if state != TrialState.RUNNING:
        storage.set_trial_state_values(tid, state, [value] if value is not None else None)
    return tid


def test_evidence_and_pending():
    study = optuna.create_study(direction="maximize")
    trial(study, A, TrialState.COMPLETE, value=95.0)
    trial(study, A, TrialState.FAIL, user={"fail_reason": "objective raised"}, k=2)
    trial(study, B, TrialState.RUNNING)
    trial(study, C, TrialState.WAITING)
    trial(study, C, TrialState.PRUNED, stage="duplicate")  # a yielded copy: not evidence
    trial(study, B, TrialState.PRUNED, stage="sample", user={"reject_reason": "size"}, k=2)
    ev = read_snapshot(study, TrialCache()).evidence()
    assert [(t.shape, t.value) for t in ev.trainings] == [(A, 95.0), (A, None)]
    assert all(t.seconds is not None and t.seconds >= 0 for t in ev.trainings)  # durations
    assert ev.pending == (B, C)


def test_trainings_are_charged_their_own_seconds_and_the_share_they_ran():
    study = optuna.create_study(direction="maximize")
    trial(study, A, TrialState.COMPLETE, value=95.0, user={"train_seconds": 12.5})
    trial(study, B, TrialState.PRUNED, k=1,
          user={"train_seconds": 3.0, "planned_epochs": 10, "pruned_epoch": 3,
                "prune_reason": "cannot reach", "projected_accuracy": 80.0,
                "projected_std": 2.0})
    snap = read_snapshot(study, TrialCache())
    ev = snap.evidence()
    assert [(t.seconds, t.fraction) for t in ev.trainings] == [(12.5, 1.0), (3.0, 0.3)]
    assert snap.compute_spent() == ev.spent_seconds() == 15.5


def test_trainings_lost_to_dead_workers_are_free_up_to_a_limit():
    study = optuna.create_study(direction="maximize")
    for _ in range(LOST_FREE + 1):  # no fail_reason: failed as stale, 2 s charged each
        trial(study, A, TrialState.FAIL, user={"train_seconds": 2.0})
    ev = read_snapshot(study, TrialCache()).evidence()
    assert [(t.shape, t.value) for t in ev.trainings] == [(A, None)]  # only the one beyond
    # the free ones are not trainings of the shape, but their compute was paid for
    assert ev.lost_seconds == 2.0 * LOST_FREE
    assert ev.spent_seconds() == 2.0 * (LOST_FREE + 1)


def test_override_and_cache_see_changes_of_live_trials():
    study = optuna.create_study(direction="maximize")
    tid = trial(study, A, TrialState.RUNNING)
    cache = TrialCache()
    snap = read_snapshot(study, cache, override=(0, TrialState.COMPLETE, 97.0))
    assert snap.evidence().trainings == (Training(A, 97.0),)  # running: no seconds yet
    assert read_snapshot(study, cache).evidence().pending == (A,)
    st.set_trial_user_attrs(study, tid, {"stage": "duplicate", "end_reason": "x"})
    assert read_snapshot(study, cache).evidence().pending == ()  # re-decoded on change


def test_workers_seen_is_the_most_trials_that_ran_at_once():
    study = optuna.create_study(direction="maximize")
    assert read_snapshot(study, TrialCache()).workers_seen() == 1  # nothing ran yet
    trial(study, A, TrialState.COMPLETE, value=95.0)  # one after another: one worker
    trial(study, B, TrialState.COMPLETE, value=96.0)
    trial(study, C, TrialState.WAITING)  # queued trials run on nobody
    cache = TrialCache()
    assert read_snapshot(study, cache).workers_seen() == 1
    first = trial(study, A, TrialState.RUNNING, k=2)  # three at once: two trainings and
    trial(study, B, TrialState.RUNNING, k=2)
    planner = study._storage.create_new_trial(study._study_id)  # a worker waiting to plan
    snap = read_snapshot(study, cache)
    assert snap.workers_seen() == 3 and snap.evidence().workers == 3
    for tid in (first, planner):
        study._storage.set_trial_state_values(tid, TrialState.PRUNED)
    assert read_snapshot(study, cache).workers_seen() == 3  # the history keeps the peak
    ev = read_snapshot(study, TrialCache()).evidence(precisions=("fp32", "int8"))
    assert ev.workers == 3
