"""The frontier goal through Optuna, and answers for other limits from a study's trainings."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest

import optuna_shape as osh
from optuna_shape.space.shape import Shape

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = osh.ShapeSpace("wrn", depth=[10, 16, 22, 28], width=[0.25, 0.5, 1.0, 1.5],
                       in_channels=1, num_classes=10, image_size=8)


def truth(s: Shape) -> float:
    return 80 + 4 * math.log(s.depth * s.width)


def lookup(trial: optuna.Trial) -> float:
    s = osh.suggest_shape(trial, SPACE)
    return truth(s) + 0.2 * math.sin(7 * trial.number + s.depth)  # small, fixed "seed noise"


def search(goal, max_trainings=12, constraints=None, seed=0):
    sampler = osh.ShapeSampler(SPACE, constraints or osh.Constraints(), goal,
                               policy=osh.Adaptive(max_trainings=max_trainings), seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lookup, n_trials=100)
    return study


def trainings(study):
    return sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_frontier_search_returns_trained_front_shapes_cheapest_first():
    study = search("frontier")
    summary = osh.search_summary(study)
    assert summary.finished and summary.status == osh.SearchStatus.FRONTIER
    assert trainings(study) <= 12
    rows = osh.frontier(study)
    assert rows and [r.cost for r in rows] == sorted(r.cost for r in rows)
    trained = {(t.params["depth"], t.params["width"]) for t in study.trials
               if t.state == optuna.trial.TrialState.COMPLETE}
    assert all((r.depth, r.width) in trained and r.p_front >= 0.5 and r.trainings >= 1
               for r in rows)
    assert all(r.cost == pytest.approx(SPACE.size_mb(Shape(r.depth, r.width))) for r in rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finished frontier study is no "not finished" case
        assert osh.best_shape(study) is None


def test_the_front_of_any_study_comes_from_its_trainings():
    study = search("accuracy", max_trainings=10)
    rows = osh.frontier(study)
    assert rows and all(r.cost_name == "size" for r in rows)
    best = max(rows, key=lambda r: r.accuracy)
    assert best.accuracy == max(t.value for t in study.trials if t.value is not None) or \
        best.p_front >= 0.5
    # narrowing the shapes narrows the front
    small = osh.frontier(study, constraints=osh.Constraints(max_size_mb=0.1))
    assert all(r.size_mb <= 0.1 for r in small)


def test_other_limits_are_answered_without_training():
    study = search("accuracy", max_trainings=14)
    n = len(study.trials)
    loose = osh.answer_for(study, osh.Constraints(max_size_mb=0.5), "accuracy")
    assert len(study.trials) == n  # nothing was trained or queued
    assert loose.shape is not None and SPACE.size_mb(loose.shape) <= 0.5
    assert loose.status in (osh.SearchStatus.ANSWERED, osh.SearchStatus.UNCONFIRMED)
    assert loose.trainings >= 1
    if loose.status == osh.SearchStatus.UNCONFIRMED:
        assert loose.next_trainings  # it says what would settle it
    else:
        assert loose.confidence >= 0.9 and not loose.next_trainings
    assert osh.best_shape(study, constraints=osh.Constraints(max_size_mb=0.5),
                          goal="accuracy") == loose.shape
    # the min-size goal with a floor the evidence shows to be met
    floor = sorted(t.value for t in study.trials if t.value is not None)[-3] - 2.0
    small = osh.answer_for(study, osh.Constraints(min_accuracy=floor), "size")
    assert small.shape is not None and truth(small.shape) >= floor - 1.0
    # nothing within the limits
    none = osh.answer_for(study, osh.Constraints(max_size_mb=1e-6), "accuracy")
    assert none.shape is None and none.status == osh.SearchStatus.NO_FEASIBLE


def test_an_unmeasured_limit_and_a_frontier_goal_are_refused_in_one_line():
    study = search("accuracy", max_trainings=6)
    with pytest.raises(ValueError, match="no latency measurements"):
        osh.answer_for(study, osh.Constraints(max_latency_ms=3.0), "accuracy")
    with pytest.raises(ValueError, match="osh.frontier"):
        osh.answer_for(study, osh.Constraints(), "frontier")
    with pytest.raises(ValueError, match="goal must be one of"):
        osh.answer_for(study, osh.Constraints(), "speed")


def test_frontier_goal_refuses_what_it_does_not_support():
    with pytest.raises(ValueError, match="needs policy=osh.Adaptive"):
        osh.ShapeSampler(SPACE, goal="frontier", policy=osh.Paper())
    with pytest.raises(ValueError, match="counts trainings"):
        osh.ShapeSampler(SPACE, goal="frontier", policy=osh.Adaptive(budget="1h"))


def test_an_unconfirmed_limit_is_resumed_from_the_copied_trainings(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    sampler = osh.ShapeSampler(SPACE, osh.Constraints(), "frontier",
                               policy=osh.Adaptive(max_trainings=8), seed=0)
    first = optuna.create_study(study_name="front", storage=storage, direction="maximize",
                                sampler=sampler)
    first.optimize(lookup, n_trials=50)
    limit = osh.Constraints(max_size_mb=0.3, min_accuracy=88.0)
    ans = osh.answer_for(first, limit, "size")
    assert ans.status != osh.SearchStatus.ANSWERED and ans.next_trainings
    second = optuna.create_study(study_name="front-0.3MB", storage=storage,
                                 direction="maximize")
    copied = osh.copy_trainings(first, second)
    assert copied == trainings(first) and trainings(second) == copied
    sampler2 = osh.ShapeSampler(SPACE, limit, "size", seed=0)
    resumed = optuna.load_study(study_name="front-0.3MB", storage=storage, sampler=sampler2)
    resumed.optimize(lookup, n_trials=50)
    summary = osh.search_summary(resumed)
    assert summary.finished and summary.trainings >= copied
    # the copied trainings were used: the resumed search trained fewer shapes than a fresh one
    fresh = search("size", max_trainings=None, constraints=limit)
    assert trainings(resumed) - copied < trainings(fresh)
    with pytest.raises(ValueError, match="already has"):
        osh.copy_trainings(first, resumed)
