"""ShapePruner through Optuna's pruner interface: real studies, real storage, real trainings."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

import optuna_shape as osh
from optuna_shape import storage as st
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot
from optuna_shape.training import ShapeObjective, TrainConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = osh.ShapeSpace("wrn", depth=[10, 16, 22], width=[0.25, 0.5, 0.75], in_channels=1,
                       num_classes=10, image_size=8)
DISTS = {"depth": optuna.distributions.CategoricalDistribution(SPACE.depths),
         "width": optuna.distributions.CategoricalDistribution(SPACE.widths)}


def _curve(final: float, start: float, epochs: int = 6) -> list[float]:
    return [final - (final - start) * math.exp(-0.6 * e) for e in range(epochs)]


def table_study(mode: str = "adaptive", goal: str = "size", floor: float | None = 96.0,
                pruner: osh.ShapePruner | None = None) -> optuna.Study:
    """A study with a ShapeSampler configuration and five completed 6-epoch curves."""
    study = optuna.create_study(direction="maximize",
                                pruner=pruner or osh.ShapePruner(min_curves=5))
    sampler = osh.ShapeSampler(SPACE, osh.Constraints(min_accuracy=floor), goal=goal, mode=mode)
    st.write_config(study, sampler.config())
    for i, (d, w) in enumerate([(10, 0.25), (10, 0.5), (16, 0.5), (22, 0.75), (16, 0.75)]):
        final = 90.0 + 1.5 * i
        c = _curve(final, final - 45.0)
        c[-1] += 0.6 * (-1) ** i  # seed noise of the final accuracy
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, value=c[-1], params={"depth": d, "width": w},
            distributions=DISTS, intermediate_values=dict(enumerate(c, 1)),
            user_attrs={"stage": "user"}))
    return study


def running(study: optuna.Study, curve: list[float]) -> tuple[optuna.Trial, list[bool]]:
    trial = study.ask(fixed_distributions=DISTS)
    decisions = []
    for epoch, acc in enumerate(curve, 1):
        trial.report(acc, epoch)
        decisions.append(trial.should_prune())
        if decisions[-1]:
            break
    return trial, decisions


def test_doomed_training_is_stopped_with_its_reason_and_projection() -> None:
    study = table_study()
    trial, decisions = running(study, _curve(80.0, 35.0))
    assert decisions == [False, True]  # never before epoch max(2, ceil(0.3 * 6)) = 2
    attrs = study._storage.get_trial(trial._trial_id).user_attrs
    assert attrs["prune_reason"].startswith("cannot reach the floor: after epoch 2 of 6")
    assert attrs["pruned_epoch"] == 2
    assert attrs["projected_accuracy"] < 90.0 and attrs["projected_std"] > 0
    trial.set_user_attr(st.PLANNED_EPOCHS, 6)
    study.tell(trial, state=TrialState.PRUNED)
    rec = st.decode_trial(study.trials[-1])
    assert rec.stopped_early and rec.projected == attrs["projected_accuracy"]
    assert rec.epochs_saved == 4
    # mid-search, a stopped training counts as a training
    summary = osh.search_summary(study)
    assert not summary.finished
    assert (summary.trainings, summary.stopped_early, summary.epochs_saved) == (6, 1, 4)


def test_promising_training_runs_to_the_end() -> None:
    _, decisions = running(table_study(), _curve(100.0, 55.0))  # ends at 97.8 > 96
    assert decisions == [False] * 6


def test_inert_in_paper_mode_without_config_and_after_the_result() -> None:
    doomed = _curve(80.0, 35.0)
    assert not any(running(table_study(mode="paper"), doomed)[1])
    bare = optuna.create_study(direction="maximize", pruner=osh.ShapePruner())
    assert not any(running(bare, doomed)[1])
    done = table_study()
    st.write_result(done, st.ResultRecord(None, "over"))
    assert not any(running(done, doomed)[1])


def test_accuracy_goal_threshold_is_the_best_measured_accuracy() -> None:
    # best measured ≈ 94.4 (the last reference): a curve ending at 87.8 cannot beat it, one
    # ending at 95.8 can
    study = table_study(goal="accuracy", floor=None)
    assert any(running(study, _curve(90.0, 45.0))[1])
    assert not any(running(table_study(goal="accuracy", floor=None), _curve(98.0, 53.0))[1])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="confidence"):
        osh.ShapePruner(confidence=1.5)
    with pytest.raises(ValueError, match="min_epochs"):
        osh.ShapePruner(min_epochs=0)
    with pytest.raises(ValueError, match="min_curves"):
        osh.ShapePruner(min_curves=2)


def test_real_search_on_digits_prunes_a_hopeless_floor_into_censored_evidence() -> None:
    sampler = osh.ShapeSampler(SPACE, osh.Constraints(min_accuracy=99.9), goal="size",
                               n_initial=3, max_trainings=6)
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                pruner=osh.ShapePruner(min_curves=3))
    study.optimize(ShapeObjective(SPACE, "digits", config=TrainConfig(epochs=5, threads=1)),
                   n_trials=30)
    pruned = [t for t in study.trials if "prune_reason" in t.user_attrs]
    assert pruned, [t.user_attrs for t in study.trials]
    for t in pruned:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["epochs"] == t.user_attrs["pruned_epoch"] < 5
        assert len(t.intermediate_values) == t.user_attrs["epochs"]
    evidence = read_snapshot(study, TrialCache()).evidence()
    censored = [tr for tr in evidence.trainings if tr.censored]
    assert len(censored) == len(pruned)
    assert all(tr.value is not None or tr.censored for tr in evidence.trainings)
    assert {tr.projected for tr in censored} == {t.user_attrs["projected_accuracy"]
                                                 for t in pruned}
    summary = osh.search_summary(study)
    assert summary.finished and summary.shape is None and summary.status == "floor_not_reached"
    # the summary, the printed lines and the dashboard note say what early stopping did
    assert summary.stopped_early == len(pruned)
    assert summary.epochs_saved == sum(5 - t.user_attrs["pruned_epoch"] for t in pruned)
    from optuna_shape.reporting.dashboard import note_markdown
    from optuna_shape.reporting.tables import summary_lines

    line = (f"early stopping: {len(pruned)} of {summary.trainings} trainings stopped, "
            f"{summary.epochs_saved} epochs saved")
    assert line in summary_lines(summary, wrap=False)
    assert "`prune_reason`" in note_markdown(study)
