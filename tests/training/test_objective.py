"""The default objective through real Optuna studies (tiny shapes, one epoch)."""

from __future__ import annotations

import math
import pickle

import optuna
import pytest
import torch

import optuna_shape as osh
from optuna_shape import store as storage
from optuna_shape.store.attributes import significant
from optuna_shape.training import (
    ShapeObjective,
    TrainConfig,
    TrainResult,
    evaluate_precisions,
    make_objective,
    train,
)
from optuna_shape.training import objective as objective_module

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def space() -> osh.ShapeSpace:
    return osh.ShapeSpace("wrn", depth=[10, 16], width=[0.25, 0.5], in_channels=1,
                          num_classes=10, image_size=8)


def test_objective_records_attrs_and_curve(space):
    calls = []
    objective = make_objective(space, "digits", config=TrainConfig(epochs=2),
                               progress=lambda *a: calls.append(a))
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        shape = osh.Shape(trial.params["depth"], trial.params["width"])
        assert shape in space
        attrs = trial.user_attrs
        assert attrs["val_accuracy"] == significant(trial.value, 4)
        assert 0 <= attrs["test_accuracy"] <= 100
        assert attrs["epochs"] == 2 and attrs["train_seconds"] > 0
        assert attrs["params"] == space.param_count(shape)
        assert attrs["dataset"] == "digits" and attrs["select_on"] == "val"
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.intermediate_values[2] == trial.value
        assert storage.accuracy_by_precision(attrs) is None, "fp32 only: nothing new"
    assert [c[1] for c in calls] == [0, 1, 2, 0, 1, 2]
    assert math.isnan(calls[0][3]) and calls[0][2] == 2


def test_lower_precisions_are_scored_on_the_trained_network_and_re_measure_equal():
    space = osh.ShapeSpace("wrn", depth=[10], width=[0.25], in_channels=1, num_classes=10,
                           image_size=8, precision="int8,bf16,fp32")
    config = TrainConfig(epochs=2)
    objective = make_objective(space, "digits", config=config)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    attrs = trial.user_attrs
    selection = storage.accuracy_by_precision(attrs)
    test = storage.accuracy_by_precision(attrs, test=True)
    assert list(selection) == list(test) == ["fp32", "bf16", "int8"]
    assert selection["fp32"] == trial.value
    assert significant(trial.value, 4) == attrs["val_accuracy"]
    assert test["fp32"] == attrs["test_accuracy"]
    assert storage.PRECISION_ERRORS not in attrs
    # Re-measure: the same seed trains the same weights on the CPU, then convert and score.
    torch.manual_seed(objective.seed)
    model = space.build(osh.Shape(10, 0.25))
    train(model, objective.splits(), objective.config)
    again = evaluate_precisions(model, objective.splits(), space.precisions, objective.config)
    assert again["val"] == selection  # exact: the search computes with it
    assert {p: significant(a, 4) for p, a in again["test"].items()} == test  # for reading


def test_same_shape_same_value_regardless_of_order(space):
    objective = ShapeObjective(space, "digits", config=TrainConfig(epochs=1), seed=3)
    study = optuna.create_study(direction="maximize")
    for params in ({"depth": 10, "width": 0.25}, {"depth": 10, "width": 0.5},
                   {"depth": 10, "width": 0.25}):
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=3)
    values = [t.value for t in study.trials]
    assert values[0] == values[2]
    assert objective.seed == 3


def test_diverged_training_fails_trial_with_reason(space, monkeypatch):
    def diverged(*args, **kwargs):
        return TrainResult(math.nan, math.nan, "val", [], [], 0, 0.1, 1, diverged=True)

    monkeypatch.setattr(objective_module, "train", diverged)
    study = optuna.create_study(direction="maximize")
    study.optimize(make_objective(space, config=TrainConfig(epochs=1)), n_trials=1,
                   catch=(RuntimeError,))
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert "diverged: loss is NaN" in trial.user_attrs["fail_reason"]
    assert "(10" in trial.user_attrs["fail_reason"] or "(16" in trial.user_attrs["fail_reason"]


def test_objective_is_picklable_and_dataset_cached(space):
    objective = make_objective(space, config=TrainConfig(epochs=1))
    clone = pickle.loads(pickle.dumps(objective))
    assert clone.config == objective.config and clone.space.shapes == space.shapes
    assert clone.splits() is objective.splits()


def test_space_must_match_dataset():
    space = osh.ShapeSpace("wrn", depth=[10], width=[0.25], in_channels=3, num_classes=10)
    objective = make_objective(space, config=TrainConfig(epochs=1))
    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="in_channels=3.*in_channels=1"):
        study.optimize(objective, n_trials=1)


def test_ctrl_c_under_plain_study_optimize_is_retried_not_failed(tmp_path):
    """The built-in objective marks a training stopped by Ctrl-C interrupted itself, so a plain
    ``study.optimize`` (not ``osh.optimize``) resumes it without counting a failure."""
    small = osh.ShapeSpace("wrn", depth=[10], width=[0.25, 0.5], in_channels=1,
                           num_classes=10, image_size=8)
    url = f"sqlite:///{tmp_path / 's.db'}"

    def stop_after_first_epoch(shape, epoch, epochs, accuracy):
        if epoch == 1:
            raise KeyboardInterrupt

    def study_and_objective(progress):
        sampler = osh.ShapeSampler(small, osh.Constraints(min_accuracy=10.0), goal="size",
                                   mode="paper", strategy=1, max_attempts=1)
        study = optuna.create_study(storage=url, study_name="s", load_if_exists=True,
                                    direction="maximize", sampler=sampler)
        return study, ShapeObjective(small, "digits", config=TrainConfig(epochs=2),
                                     subset=120, progress=progress)

    study, objective = study_and_objective(stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective)
    stopped = [t for t in study.trials if t.user_attrs.get(storage.INTERRUPTED)]
    assert len(stopped) == 1 and stopped[0].state == optuna.trial.TrialState.FAIL
    assert "fail_reason" not in stopped[0].user_attrs

    study, objective = study_and_objective(None)
    study.optimize(objective)
    assert osh.is_finished(study)
    assert not any(t.user_attrs.get("fail_reason") for t in study.trials)
    slot = stopped[0].system_attrs["osh:slot"]
    assert [t.state for t in study.trials if t.system_attrs.get("osh:slot") == slot] == [
        optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


class _AlwaysStop(osh.ShapePruner):
    def prune(self, study, trial):
        return True


def test_only_a_shape_pruner_stops_the_built_in_objective(space):
    """Optuna's pruners (the default MedianPruner among them) compare different shapes at equal
    epochs: the built-in objective reports every epoch but asks only a ShapePruner."""
    objective = make_objective(space, config=TrainConfig(epochs=2), subset=120)
    other = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    other.optimize(objective, n_trials=1)
    assert other.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert sorted(other.trials[0].intermediate_values) == [1, 2]
    shape_pruned = optuna.create_study(direction="maximize", pruner=_AlwaysStop())
    shape_pruned.optimize(objective, n_trials=1)
    assert shape_pruned.trials[0].state == optuna.trial.TrialState.PRUNED
    assert shape_pruned.trials[0].user_attrs["epochs"] == 1


def test_a_repeat_training_of_the_search_uses_its_own_seed():
    """The k-th training of a shape (slot ``<shape>#k``) is seeded with seed + k − 1, so the
    search's repeats measure seed-to-seed noise; the split stays the base seed's."""
    small = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.25, 0.5, 1], in_channels=1,
                           num_classes=10, image_size=8)
    sampler = osh.ShapeSampler(small, osh.Constraints(min_accuracy=50.0), goal="size",
                               n_initial=3, max_trainings=5)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    objective = ShapeObjective(small, "digits", config=TrainConfig(epochs=1), subset=150, seed=3)
    study.optimize(objective, n_trials=30)
    seeds = {t.system_attrs[storage.SLOT]: t.user_attrs["seed"] for t in study.trials
             if t.state == optuna.trial.TrialState.COMPLETE and storage.SLOT in t.system_attrs}
    assert any(slot.endswith("#2") for slot in seeds), seeds
    assert all(seed == 3 + int(slot.rsplit("#", 1)[1]) - 1 for slot, seed in seeds.items())
    assert objective.seed == 3


def test_the_objective_runs_on_a_fixed_trial(space):
    """``optuna.trial.FixedTrial`` tries an objective on one shape without a study."""
    trial = optuna.trial.FixedTrial({"depth": 10, "width": 0.25})
    value = make_objective(space, config=TrainConfig(epochs=1), subset=120)(trial)
    assert 0.0 <= value <= 100.0
    assert osh.training_index(trial) == 1
    assert trial.user_attrs["seed"] == 0 and trial.user_attrs["epochs"] == 1


def test_a_retry_after_a_diverged_training_starts_from_another_seed(monkeypatch):
    """A retry of the same training after a failure adds RETRY_SEED_STRIDE to the seed (the same
    seed would diverge again on the CPU); the retry then completes."""
    small = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.25, 0.5, 1], in_channels=1,
                           num_classes=10, image_size=8)
    doomed = small.param_count(osh.Shape(10, 0.25))  # the smallest: the size goal needs it
    real_train = objective_module.train

    def diverges_at_the_base_seed(model, splits, config, **kw):
        if config.seed == 3 and sum(p.numel() for p in model.parameters()) == doomed:
            return TrainResult(math.nan, math.nan, "val", [], [], 0, 0.1, 1, diverged=True)
        return real_train(model, splits, config, **kw)

    monkeypatch.setattr(objective_module, "train", diverges_at_the_base_seed)
    sampler = osh.ShapeSampler(small, osh.Constraints(min_accuracy=10.0), goal="size",
                               n_initial=6, max_trainings=8)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    objective = ShapeObjective(small, "digits", config=TrainConfig(epochs=1), subset=150, seed=3)
    study.optimize(objective, n_trials=40, catch=(RuntimeError,))
    slot = [t for t in study.trials if t.system_attrs.get(storage.SLOT) == "d10-w0.25#1"]
    assert [t.state for t in slot] == [optuna.trial.TrialState.FAIL,
                                       optuna.trial.TrialState.COMPLETE]
    assert [t.user_attrs["seed"] for t in slot] == [3, 3 + objective_module.RETRY_SEED_STRIDE]


def test_every_accuracy_stored_for_reading_is_rounded_the_search_data_stay_exact(monkeypatch):
    space = osh.ShapeSpace("wrn", depth=[10], width=[0.25], in_channels=1, num_classes=10,
                           image_size=8, precision="int8,fp32")

    def trained(*args, **kwargs):
        return TrainResult(28.055555555555557, 59.05292479108635, "val", [28.055555555555557],
                           [0.5], 1, 0.1234567, 1)

    def scores(model, splits, precisions, config):
        return {"val": {p: 27.77777777777778 for p in precisions},
                "test": {p: 58.774373259052924 for p in precisions}}

    monkeypatch.setattr(objective_module, "train", trained)
    monkeypatch.setattr(objective_module, "evaluate_precisions", scores)
    study = optuna.create_study(direction="maximize")
    study.optimize(make_objective(space, config=TrainConfig(epochs=1), early_stopping=False),
                   n_trials=1)
    trial = study.trials[0]
    attrs = dict(trial.user_attrs)
    assert attrs["val_accuracy"] == 28.06 and attrs["test_accuracy"] == 59.05
    assert attrs[storage.TEST_ACCURACY_BY_PRECISION] == {"fp32": 59.05, "int8": 58.77}
    # what the search computes with is exact: the value and the selection split's accuracies
    assert trial.value == 28.055555555555557
    exact = attrs.pop(storage.ACCURACY_BY_PRECISION)
    assert exact == {"fp32": 28.055555555555557, "int8": 27.77777777777778}
    floats = [v for a in attrs.values() for v in (a.values() if isinstance(a, dict) else [a])
              if isinstance(v, float)]
    assert floats and all(len(repr(v).partition(".")[2]) <= 6 for v in floats), attrs
