"""A real search over (shape, precision) pairs: the default objective trains tiny WRNs on digits,
converts each trained network to int8, and screening measures latency per precision. The answer's
stored size, latency and accuracy must match a re-measurement."""

from __future__ import annotations

import optuna
import pytest
import torch

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.measurement.screening import MeasurementSettings, measure_shape
from optuna_shape.reporting.results import result_table
from optuna_shape.training import TrainConfig, evaluate_precisions, make_objective, train

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_precision_search_answer_matches_a_re_measurement(tmp_path):
    space = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.25, 0.5, 1.0], in_channels=1,
                           num_classes=10, image_size=8, precision=("fp32", "int8"))
    # 0.1 MB: the width-1 shapes (0.3-0.7 MB at fp32) fit only at int8
    limit = 0.1
    assert space.size_mb(osh.Shape(10, 1.0)) > limit >= space.size_mb(osh.Shape(10, 1.0), "int8")
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=limit, max_latency_ms=1e4),
                               seed=0, max_trainings=4, n_initial=3)
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                storage=f"sqlite:///{tmp_path / 'p.db'}")
    objective = make_objective(space, "digits", config=TrainConfig(epochs=2))
    study.optimize(objective, n_trials=40)

    best = osh.best_shape(study)
    assert isinstance(best, osh.Variant) and best.precision in space.precisions
    assert best.precision == "int8" and best.width == 1.0  # the widest fits only at int8
    chosen = [r for r in result_table(study) if r.chosen]
    assert len(chosen) == 1
    row = chosen[0]
    assert row.candidate == best and row.precision == best.precision
    # size: recomputed from the parameter count and the precision's bits
    assert row.size_mb == pytest.approx(space.size_mb(best.shape, best.precision), rel=1e-9)
    assert row.size_mb <= limit
    # latency: measured again on the converted network (a noisy clock on a shared machine:
    # three re-measurements bracket the stored median within a factor of three)
    again = [measure_shape(space, best.shape, MeasurementSettings(repeats=10), latency=True,
                           energy=False, precision=best.precision) for _ in range(3)]
    assert row.latency_ms is not None and all("error" not in m for m in again)
    times = [m["latency_ms"] for m in again]
    assert min(times) / 3 < row.latency_ms < max(times) * 3, (row.latency_ms, times)
    # accuracy: the same seed trains the same weights on the CPU; converted and scored again
    trained = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
               and osh.Shape(t.params["depth"], t.params["width"]) == best.shape]
    stored = [st.accuracy_by_precision(t.user_attrs)[best.precision] for t in trained]
    assert row.real == pytest.approx(sum(stored) / len(stored))
    torch.manual_seed(objective.seed)
    model = space.build(best.shape)
    train(model, objective.splits(), objective.config)
    scored = evaluate_precisions(model, objective.splits(), space.precisions, objective.config)
    assert scored["val"][best.precision] == pytest.approx(stored[0])
