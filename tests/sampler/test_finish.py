"""Finishing: the stored result, its fit, and the note when study.best_trial differs."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.policy import Problem, SearchStatus, Stop, StopDetails
from optuna_shape.sampler.finish import store_answer
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot
from optuna_shape.space.shape import Shape

optuna.logging.set_verbosity(optuna.logging.WARNING)
A, B = Shape(10, 1.0), Shape(16, 1.0)


def _study_with(values):
    study = optuna.create_study(direction="maximize")
    for k, (shape, v) in enumerate(values, start=1):
        tid = st.create_waiting_trial(study, slot=f"{shape.key}#{k}", stage="initial",
                                      shape=shape)
        study._storage.set_trial_state_values(tid, TrialState.RUNNING)
        study._storage.set_trial_state_values(tid, TrialState.COMPLETE, [v])
    return study


def test_note_when_best_trial_is_one_lucky_training_and_posterior_fit():
    study = _study_with([(A, 95.0), (A, 95.2), (B, 96.0)])  # B: one lucky seed
    problem = Problem((A, B), {A: 0.1, B: 0.2}, {}, "accuracy", None)
    details = {"shapes": [[10, 1.0], [16, 1.0]], "posterior_mean": [95.3, 95.0],
               "posterior_std": [0.1, 0.4], "measured": [{"shape": [10, 1.0], "mean": 95.1}]}
    stop = Stop(A, "confident", "answered", 0.93, details)
    result = store_answer(study, stop, read_snapshot(study, TrialCache()), problem, 2)
    assert result.shape == A and result.accuracy == 95.1 and result.trainings == 3
    assert "best_trial is trial 2, shape (16, 1)" in result.note
    fit = st.read_fit(st.study_attrs(study))
    assert fit.ranking[0] == A and fit.predictions()[B] == (95.0, 0.4)
    st.write_json(study, st.CONFIG, {"space": {"depths": [10, 16], "widths": [1.0]}, "goal":
                                     "accuracy"})
    summary = osh.search_summary(study)
    assert summary.note == result.note and summary.confidence == 0.93
    assert summary.status == "answered"


def test_no_note_for_min_cost_goals():
    study = _study_with([(A, 95.0), (B, 96.0)])
    problem = Problem((A, B), {A: 0.1, B: 0.2}, {A: 0.1, B: 0.2}, "size", 94.0)
    result = store_answer(study, Stop(A, "cheapest"), read_snapshot(study, TrialCache()),
                          problem, 2)
    assert result.note is None


def test_paper_stop_stores_its_fit_apart_and_typed_details_in_the_result():
    study = _study_with([(A, 95.0), (B, 96.0)])
    problem = Problem((A, B), {A: 0.1, B: 0.2}, {}, "accuracy", None)
    fit = {"n_train": 2, "n_feasible": 2, "trained": [[10, 1.0], [16, 1.0]], "fits": 1,
           "method": "bayes", "shapes": [[10, 1.0], [16, 1.0]], "predicted": [95.0, 96.0],
           "std": [0.1, 0.1], "ranking": [[16, 1.0], [10, 1.0]]}
    stop = Stop(B, "verified: accuracy 96", SearchStatus.ANSWERED,
                details=StopDetails(fit=fit, n_planned=2))
    result = store_answer(study, stop, read_snapshot(study, TrialCache()), problem, 2)
    assert result.details == StopDetails(n_planned=2) and result.n_planned == 2
    attrs = st.study_attrs(study)
    assert st.read_json(attrs, st.RESULT)["details"] == {"n_planned": 2}  # as stored before
    assert st.read_result(attrs) == result
    assert st.read_fit(attrs).ranking == (B, A)
