"""ShapePruner through Optuna's pruner interface: real studies, real storage, real trainings."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

import optuna_shape as osh
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot
from optuna_shape.training import ShapeObjective, TrainConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = osh.ShapeSpace("wrn", depth=[10, 16, 22, 28], width=[0.25, 0.5, 1.0, 1.5],
                       in_channels=1, num_classes=10, image_size=8)
E = 8


def truth(shape: osh.Shape) -> float:
    return 97.0 - 2.0 / shape.width - 30.0 / shape.depth


def replay(doomed: set[osh.Shape] = frozenset()):
    """A custom objective that reports synthetic learning curves and asks should_prune()."""

    def objective(trial: optuna.Trial) -> float:
        shape = osh.suggest_shape(trial, SPACE)
        end = 50.0 if shape in doomed else truth(shape)
        trial.set_user_attr("planned_epochs", E)
        for epoch in range(1, E + 1):
            acc = end - (end - 30.0) * math.exp(-0.5 * epoch)
            trial.report(acc, epoch)
            if epoch < E and trial.should_prune():
                trial.set_user_attr("train_seconds", float(epoch))
                raise optuna.TrialPruned()
        trial.set_user_attr("train_seconds", float(E))
        return acc

    return objective


def search(pruner=None, mode="adaptive", doomed=frozenset(), **kw) -> optuna.Study:
    sampler = osh.ShapeSampler(SPACE, osh.Constraints(), goal="accuracy", seed=0, mode=mode,
                               **kw)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(replay(doomed), n_trials=60)
    return study


def test_custom_objective_trainings_that_are_not_worth_their_compute_stop() -> None:
    doomed = {osh.Shape(d, w) for d in SPACE.depths for w in SPACE.widths} - {
        osh.Shape(16, 0.5), osh.Shape(28, 1.5), osh.Shape(10, 0.25), osh.Shape(10, 1.5),
        osh.Shape(28, 0.25)}  # the design trains fully; every other shape looks hopeless
    study = search(osh.ShapePruner(), doomed=doomed, max_trainings=9)
    pruned = [t for t in study.trials if "prune_reason" in t.user_attrs]
    assert pruned, [t.user_attrs.get("stage") for t in study.trials]
    for t in pruned:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["pruned_epoch"] == len(t.intermediate_values) < E
        assert t.user_attrs["prune_reason"].startswith("after epoch ")
        assert any(w in t.user_attrs["prune_reason"] for w in
                   ("worth more per compute", "P(it changes the answer)"))
        assert t.user_attrs["projected_std"] > 0
    # a stopped training is evidence: a partial observation at the share it ran
    ev = read_snapshot(study, TrialCache()).evidence()
    partial = [tr for tr in ev.trainings if tr.partial]
    assert len(partial) == len(pruned)
    assert all(0 < tr.fraction < 1 and tr.seconds == tr.fraction * E for tr in partial)
    # the answer is always a shape measured by full trainings
    summary = osh.search_summary(study)
    assert summary.finished and summary.shape is not None
    assert any(t.state == TrialState.COMPLETE and osh.Shape(t.params["depth"],
               t.params["width"]) == summary.shape for t in study.trials)
    assert summary.stopped_early == len(pruned)
    assert summary.epochs_saved == sum(E - t.user_attrs["pruned_epoch"] for t in pruned)


def test_inert_in_paper_mode_and_with_other_samplers() -> None:
    doomed = {osh.Shape(d, w) for d in SPACE.depths for w in SPACE.widths}
    paper = search(osh.ShapePruner(), mode="paper", doomed=doomed)
    assert not [t for t in paper.trials if "prune_reason" in t.user_attrs]
    other = optuna.create_study(direction="maximize", pruner=osh.ShapePruner(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    other.optimize(replay(doomed), n_trials=4)
    assert all(t.state == TrialState.COMPLETE for t in other.trials)


def test_bad_and_deprecated_arguments() -> None:
    with pytest.raises(ValueError, match="confidence"):
        osh.ShapePruner(confidence=1.5)
    with pytest.warns(DeprecationWarning, match="no longer used"):
        osh.ShapePruner(confidence=0.9)


@pytest.mark.parametrize("early_stopping", [True, False])
def test_built_in_objective_decides_how_far_each_training_goes(early_stopping: bool) -> None:
    # a plain create_study (Optuna's MedianPruner): the built-in objective asks its own
    # ShapePruner, never the MedianPruner
    sampler = osh.ShapeSampler(SPACE, goal="accuracy", seed=0, n_initial=3, max_trainings=6)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(ShapeObjective(SPACE, "digits", config=TrainConfig(epochs=5, threads=1),
                                  subset=300, early_stopping=early_stopping), n_trials=40)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.params]
    stopped = [t for t in pruned if "prune_reason" in t.user_attrs]
    assert len(stopped) == len(pruned)  # nothing stopped by another pruner
    # with the curves of 5-epoch digits trainings some trainings are not worth finishing
    assert bool(stopped) == early_stopping
    for t in stopped:
        assert t.user_attrs["epochs"] == t.user_attrs["pruned_epoch"] < 5
        assert t.user_attrs["train_seconds"] > 0
    summary = osh.search_summary(study)
    assert summary.finished and summary.shape is not None
    assert summary.compute["spent_s"] == pytest.approx(
        sum(t.user_attrs.get("train_seconds", 0) for t in study.trials), rel=1e-6, abs=1e-2)
