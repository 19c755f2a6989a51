"""A search over (shape, precision) candidates through study.optimize (fast objectives)."""

from __future__ import annotations

import random

import optuna
import pytest

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.reporting.results import result_table
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot
from optuna_shape.space.shape import Variant

optuna.logging.set_verbosity(optuna.logging.WARNING)

DROP = {"fp32": 0.0, "bf16": 0.05, "int8": 0.4}


def space(precision=("fp32", "int8")):
    return osh.ShapeSpace("wrn", depth=(10, 40, 6), width=(0.5, 3.0, 0.5), in_channels=1,
                          num_classes=10, image_size=8, precision=precision)


def landscape(shape: osh.Shape) -> float:
    d, w = shape.depth, shape.width
    return 99.2 - 1.1 / w - 14.0 / d + 0.05 / (w * w)


def objective_for(sp, noise=0.05, fail=frozenset(), attr=True, seed=0):
    rng = random.Random(seed)

    def objective(trial):
        shape = osh.suggest_shape(trial, sp)
        if shape in fail:
            raise RuntimeError("training diverged")
        acc = landscape(shape) + rng.gauss(0, noise)
        if attr:  # the contract for a user objective in a search over precisions
            trial.set_user_attr("accuracy_by_precision",
                                {p: acc - DROP[p] for p in sp.precisions})
        return acc

    return objective


def test_precision_search_answers_a_candidate_whose_stored_numbers_match(tmp_path):
    sp = space()
    limit = 1.0  # MB: the most accurate shapes fit only at int8
    sampler = osh.ShapeSampler(sp, osh.Constraints(max_size_mb=limit), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                storage=f"sqlite:///{tmp_path / 'p.db'}")
    study.optimize(objective_for(sp), n_trials=120)
    best = osh.best_shape(study)
    assert isinstance(best, Variant) and best.precision in sp.precisions
    size = sp.size_mb(best.shape, best.precision)
    assert size <= limit
    fp32_fits = [s for s in sp.shapes if sp.size_mb(s) <= limit]
    assert best.precision == "int8" and sp.size_mb(best.shape) > limit
    assert landscape(best.shape) - DROP["int8"] > max(landscape(s) for s in fp32_fits)
    # stored accuracy = mean of the candidate's measured accuracies over its trainings
    result = st.read_result(st.study_attrs(study))
    assert result is not None and result.shape == best
    runs = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and osh.Shape(t.params["depth"], t.params["width"]) == best.shape]
    measured = [t.user_attrs["accuracy_by_precision"][best.precision] for t in runs]
    assert result.accuracy == pytest.approx(sum(measured) / len(measured))
    # trainings are of shapes, each serving both precisions; one slot per shape training
    trained = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.trainings == len(trained)
    assert result.n_space == 2 * len(sp)
    assert len({t.system_attrs.get("osh:slot") for t in trained}) == len(trained)
    # the table's chosen row is the candidate: its precision, size and accuracy
    rows = result_table(study, include_all=True)
    chosen = [r for r in rows if r.chosen]
    assert len(chosen) == 1 and chosen[0].candidate == best and chosen[0].rank == 1
    assert chosen[0].size_mb == pytest.approx(size, abs=1e-6)
    assert chosen[0].real == pytest.approx(result.accuracy)
    assert "precision" in chosen[0].to_dict()
    assert {r.precision for r in rows} == {"fp32", "int8"}


def test_failed_training_fails_every_candidate_of_its_shape():
    sp = space()
    bad = frozenset(sp.shapes)
    sampler = osh.ShapeSampler(sp, seed=0, max_attempts=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective_for(sp, fail=bad), n_trials=40, catch=(RuntimeError,))
    ev = read_snapshot(study, TrialCache()).evidence(sp.precisions)
    assert ev.trainings and all(t.value is None for t in ev.trainings)
    n_failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    assert len(ev.trainings) == 2 * n_failed
    result = st.read_result(st.study_attrs(study))
    assert result is not None and result.status == "all_failed"
    assert result.trainings == n_failed


def test_missing_accuracy_by_precision_is_a_clear_error():
    sp = space()
    study = optuna.create_study(direction="maximize", sampler=osh.ShapeSampler(sp, seed=0))
    with pytest.raises(ValueError, match="accuracy_by_precision.*lacks fp32, int8"):
        study.optimize(objective_for(sp, attr=False), n_trials=10)
    failed = [t for t in study.trials if "fail_reason" in t.user_attrs]
    assert len(failed) == 1 and "accuracy_by_precision" in failed[0].user_attrs["fail_reason"]
    ev = read_snapshot(study, TrialCache()).evidence(sp.precisions)
    assert [t.value for t in ev.trainings] == [None, None]


def test_paper_mode_refuses_several_precisions():
    with pytest.raises(ValueError, match="precision search needs mode='adaptive'"):
        osh.ShapeSampler(space(), mode="paper")


def test_latency_is_measured_per_precision(monkeypatch):
    """Screening measures each (shape, precision) candidate converted to its precision and
    stores it under the candidate's key (fp32 under the shape's key)."""
    from optuna_shape.sampler import screen

    calls = []

    def fake_measure(sp, shape, settings, *, latency, energy, builder=None,
                     precision="fp32"):
        calls.append((shape, precision))
        scale = {"fp32": 1.0, "bf16": 0.7, "int8": 0.4}[precision]
        return {"latency_ms": round(shape.depth * shape.width * scale * 0.1, 6)}

    monkeypatch.setattr(screen, "measure_shape", fake_measure)
    sp = space(("fp32", "bf16", "int8"))
    limit = 4.0
    sampler = osh.ShapeSampler(sp, osh.Constraints(max_latency_ms=limit), goal="latency",
                               seed=0, target_hardware="test-hw")
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective_for(sp), n_trials=3)
    assert sorted(calls) == sorted((s, p) for s in sp.shapes for p in sp.precisions)
    attrs = st.study_attrs(study)
    meas = st.read_measurements(attrs)
    assert Variant(40, 3.0, "int8") in meas and osh.Shape(40, 3.0) in meas
    problem = sampler.problem(study)
    assert problem is not None
    expected = {Variant(s.depth, s.width, p) for s in sp.shapes for p in sp.precisions
                if s.depth * s.width * {"fp32": 1.0, "bf16": 0.7, "int8": 0.4}[p] * 0.1
                <= limit}
    assert set(problem.feasible) == expected
    v = Variant(22, 1.5, "bf16")
    assert problem.costs[v] == pytest.approx(22 * 1.5 * 0.7 * 0.1)
    assert problem.sizes[v] == pytest.approx(sp.size_mb(v.shape, "bf16"))
