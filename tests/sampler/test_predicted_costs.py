"""Predicted screening through the sampler: a shape is measured for real before it trains, so no
answer is over a limit, and predicted records are told apart from measured ones."""

from __future__ import annotations

import math

import optuna
import pytest

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.measurement.flops import wrn_macs
from optuna_shape.measurement.screening import AUTO_PREDICT_ABOVE, measure_shape, use_prediction
from optuna_shape.models.cost_model import initial_size, maximin_design
from optuna_shape.sampler import predicted_costs, screen

optuna.logging.set_verbosity(optuna.logging.WARNING)


def grid():
    return osh.ShapeSpace("wrn", depth=(10, 46, 6), width=(0.25, 2.0, 0.25), in_channels=1,
                          num_classes=10, image_size=8)  # 7 x 8 = 56 shapes


def rising(shape: osh.Shape) -> float:
    """Accuracy that grows with depth and width: the best shapes sit on the latency limit."""
    return 99.0 - 2.0 / shape.width - 20.0 / shape.depth


def search(space, constraints, goal="accuracy", acc=rising, **kw):
    sampler = osh.ShapeSampler(space, constraints, goal=goal, seed=0, mode="paper",
                               screening="predict", **kw)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trained: list[osh.Shape] = []

    def objective(trial):
        shape = osh.suggest_shape(trial, space)
        trained.append(shape)
        return acc(shape)

    study.optimize(objective)
    return study, trained


def test_real_measurements_predicted_screening_never_trains_or_answers_over_the_limit():
    space = grid()
    ms = osh.MeasurementSettings(batch_size=1, repeats=3, warmup=1, threads=1)
    ends = [measure_shape(space, s, ms, latency=True, energy=False)["latency_ms"]
            for s in (space.shapes[0], space.shapes[-1])]
    limit = math.sqrt(ends[0] * ends[1])  # splits the grid
    study, trained = search(space, osh.Constraints(max_latency_ms=limit), measurement=ms)
    attrs = st.study_attrs(study)
    records = st.read_measurements(attrs)
    summary = st.read_cost_screen(attrs)
    # on a busy machine timing noise can leave every shape undecided (then all are measured);
    # the deterministic tests below check that prediction happens
    assert summary is not None
    assert summary.n_measured + summary.n_predicted == len(space)
    assert len(records) == len(space)
    assert trained, "nothing trained"
    for s in trained:  # every trained shape measured for real, within the limit
        assert not st.is_predicted(records[s]) and records[s]["latency_ms"] <= limit
    best = osh.best_shape(study)
    assert best is not None and best in trained
    assert not st.is_predicted(records[best]) and records[best]["latency_ms"] <= limit
    rows = osh.result_table(study, include_all=True)
    assert all(not r.cost_predicted for r in rows if r.trained)
    assert all(r.cost_predicted == st.is_predicted(records[r.shape]) for r in rows)
    assert osh.search_summary(study).cost_screening["n_predicted"] == summary.n_predicted


def fake_latency(outlier: osh.Shape, limit: float):
    """Deterministic latency: smooth in depth and MACs, except ``outlier``, far over ``limit``
    although every other shape says it should be well within."""

    def lat_of(space, shape):
        if shape == outlier:
            return 5.0 * limit
        return 0.05 * shape.depth + 2e-6 * wrn_macs(shape.depth, shape.width, 1, 10, (8, 8))

    def fake(space, shape, settings, *, latency, energy, builder=None):
        if not latency:
            return {}
        return {"latency_ms": lat_of(space, shape), "latency_iqr_ms": 0.0, "latency_runs": 1}

    return lat_of, fake


def outlier_scenario(monkeypatch, break_the_rule: bool = False):
    space = grid()
    smooth, _ = fake_latency(osh.Shape(4, 1.0), 1.0)  # no outlier: the smooth part alone
    limit = sorted(smooth(space, s) for s in space.shapes)[len(space) // 2]
    x = predicted_costs.cost_features(space, space.shapes)
    design = {space.shapes[i] for i in maximin_design(x, initial_size(len(space), x.shape[1]))}

    # the outlier: well inside the limit by the smooth part, not in the design, and the
    # cheapest shape (by the smooth part) that meets the accuracy floor set at its accuracy
    def cheapest_at_its_floor(o):
        return min((s for s in space.shapes if rising(s) >= rising(o) - 0.01),
                   key=lambda s: smooth(space, s)) == o

    outlier = next(s for s in sorted(space.shapes, key=lambda s: -smooth(space, s))
                   if s not in design and smooth(space, s) < 0.4 * limit
                   and cheapest_at_its_floor(s))
    latency, fake = fake_latency(outlier, limit)
    monkeypatch.setattr(predicted_costs, "measure_shape", fake)
    monkeypatch.setattr(screen, "measure_shape", fake)
    if break_the_rule:
        monkeypatch.setattr(predicted_costs, "confirm_measured", lambda *a, **k: False)
    cons = osh.Constraints(max_latency_ms=limit, min_accuracy=rising(outlier) - 0.01)
    study, trained = search(space, cons, goal="latency")
    return space, study, trained, outlier, latency, limit


def test_a_wrong_prediction_is_caught_before_the_shape_trains(monkeypatch):
    space, study, trained, outlier, latency, limit = outlier_scenario(monkeypatch)
    assert outlier not in trained
    assert all(latency(space, s) <= limit for s in trained)
    records = st.read_measurements(st.study_attrs(study))
    assert not st.is_predicted(records[outlier])  # measured when the search proposed it
    assert records[outlier]["latency_ms"] > limit
    best = osh.best_shape(study)
    assert best is not None and best != outlier and latency(space, best) <= limit


def test_the_scenario_fails_without_measuring_before_training(monkeypatch):
    """The same search with the measure-before-training rule switched off trains (and answers)
    the outlier: the previous test can fail."""
    space, study, trained, outlier, latency, limit = outlier_scenario(monkeypatch, True)
    assert outlier in trained and osh.best_shape(study) == outlier


def test_min_latency_goal_answers_with_a_measured_cost(monkeypatch):
    space = grid()
    _, fake = fake_latency(osh.Shape(10, 0.25), 1e9)  # no outlier in play (limit huge)
    monkeypatch.setattr(predicted_costs, "measure_shape", fake)
    monkeypatch.setattr(screen, "measure_shape", fake)
    study, trained = search(space, osh.Constraints(min_accuracy=97.0), goal="latency")
    records = st.read_measurements(st.study_attrs(study))
    assert sum(st.is_predicted(r) for r in records.values()) > 0
    best = osh.best_shape(study)
    assert best is not None and not st.is_predicted(records[best])
    assert all(not st.is_predicted(records[s]) for s in trained)
    # the table marks each predicted latency "~" and says what the mark means
    from optuna_shape.reporting.tables import PREDICTED_NOTE, markdown_table

    rows = osh.result_table(study, include_all=True)
    lines = markdown_table(rows, limit=len(rows))
    col = [c.strip() for c in lines[0].split("|")].index("latency ms")
    for r, line in zip(rows, lines[2:]):
        cell = line.split("|")[col].strip().strip("*")
        assert cell.startswith("~") == r.cost_predicted, (r, cell)
    assert any(r.cost_predicted for r in rows) and lines[-1] == f"\n{PREDICTED_NOTE}."


def test_screening_argument_is_checked_and_auto_predicts_only_large_grids():
    with pytest.raises(ValueError, match="auto, measure, predict.*screening='guess'"):
        osh.ShapeSampler(grid(), screening="guess")
    assert not use_prediction("auto", AUTO_PREDICT_ABOVE)
    assert use_prediction("auto", AUTO_PREDICT_ABOVE + 1)
    assert use_prediction("predict", 3) and not use_prediction("measure", 10**6)


def test_energy_is_screened_the_same_way_over_the_shapes_within_the_latency_limit(monkeypatch):
    """Energy (NVML, GPU only) stands in as a deterministic function of the shape here."""
    space = grid()
    lat_of, _ = fake_latency(osh.Shape(4, 1.0), 1.0)

    def energy_of(shape):
        return 1e-3 * lat_of(space, shape) * (1.0 + 0.1 * shape.width)

    def fake(space, shape, settings, *, latency, energy, builder=None):
        out = {}
        if latency:
            out.update(latency_ms=lat_of(space, shape), latency_iqr_ms=0.0, latency_runs=1)
        if energy:
            out.update(energy_j=energy_of(shape), energy_method="fake")
        return out

    monkeypatch.setattr(predicted_costs, "measure_shape", fake)
    monkeypatch.setattr(screen, "measure_shape", fake)
    lats = sorted(lat_of(space, s) for s in space.shapes)
    energies = sorted(energy_of(s) for s in space.shapes)
    cons = osh.Constraints(max_latency_ms=lats[45], max_energy_j=energies[30])
    study, trained = search(space, cons, goal="energy")
    attrs = st.study_attrs(study)
    records = st.read_measurements(attrs)
    summary = st.read_cost_screen(attrs)
    assert summary is not None and set(summary.metrics) == {"latency_ms", "energy_j"}
    assert any(st.is_predicted(r) and "energy_j" in r for r in records.values())
    for s in trained:
        assert not st.is_predicted(records[s])
        assert records[s]["energy_j"] == energy_of(s) <= cons.max_energy_j
    best = osh.best_shape(study)
    assert best is not None and energy_of(best) <= cons.max_energy_j
    from optuna_shape.reporting.tables import summary_lines

    text = " ".join(summary_lines(osh.search_summary(study)))
    assert f"{summary.n_predicted} predicted" in text and "every trained shape measured" in text
