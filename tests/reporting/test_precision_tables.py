"""Result table, summary and dashboard note of a search over (shape, precision) pairs."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

import optuna_shape as osh
from optuna_shape.reporting.dashboard import attach_to_dashboard, note_markdown
from optuna_shape.reporting.tables import markdown_table, summary_lines

optuna.logging.set_verbosity(optuna.logging.WARNING)
DROP = {"fp32": 0.0, "int8": 0.4}


def _search(precision):
    space = osh.ShapeSpace("wrn", depth=(10, 28, 6), width=(0.5, 2.0, 0.5), in_channels=1,
                           num_classes=10, image_size=8, precision=precision)
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.5), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial):
        s = osh.suggest_shape(trial, space)
        acc = 99.0 - 1.1 / s.width - 14.0 / s.depth
        trial.set_user_attr("accuracy_by_precision", {p: acc - DROP[p] for p in space.precisions})
        return acc

    study.optimize(objective, n_trials=60)
    return study, space


@pytest.fixture(scope="module")
def pairs():
    return _search(("fp32", "int8"))


def test_table_has_a_precision_column_with_each_rows_numbers(pairs):
    study, space = pairs
    rows = osh.result_table(study, include_all=True)
    header = markdown_table(rows)[0]
    assert "| precision |" in header
    for r in rows:
        assert r.precision in ("fp32", "int8")
        assert r.size_mb == pytest.approx(space.size_mb(r.shape, r.precision), abs=1e-6)
    best = osh.best_shape(study)
    line = next(x for x in summary_lines(osh.search_summary(study), rows)
                if x.startswith("chosen shape"))
    assert f"precision {best.precision}" in line


def test_summary_counts_candidates_and_compares_trainings_with_shapes(pairs):
    """One training serves every precision of its shape: "training all" means every feasible
    shape once, not every (shape, precision) candidate."""
    study, _ = pairs
    summary = osh.search_summary(study)
    rows = osh.result_table(study, include_all=True)
    shapes = {(r.depth, r.width) for r in rows}
    assert summary.n_feasible == len(rows) > len(shapes) == summary.n_feasible_shapes
    lines = summary_lines(summary, wrap=False)
    saving = next(x for x in lines if x.startswith("saving:"))
    assert (f"for {len(rows)} feasible (shape, precision) candidates of {len(shapes)} shapes"
            in saving)
    n_all, n = len(shapes), summary.trainings
    assert saving.endswith(f"{n_all / n:.1f}× fewer than training all" if n < n_all
                           else "no fewer than training all")
    model = next(x for x in lines if x.startswith("accuracy model:"))
    assert model.endswith("trained (shape, precision) candidates")
    single = summary_lines(osh.search_summary(_search(("fp32",))[0]), wrap=False)
    assert any(x.startswith("saving:") and " feasible shapes (of " in x for x in single)
    one = summary_lines(replace(summary, trainings=1), wrap=False)
    assert any(x.startswith("saving: 1 training for ") for x in one)


def test_dashboard_note_names_the_precision(pairs):
    study, _ = pairs
    best = osh.best_shape(study)
    note = note_markdown(study)
    assert note.startswith(f"# Answer: depth {best.depth}, width {best.width:g}, precision "
                           f"{best.precision}")
    assert "accuracy_by_precision" in note
    attach_to_dashboard(study)  # plots and notes of a pairs search do not fail


def test_single_precision_table_has_no_precision_column():
    study, _ = _search(("fp32",))
    rows = osh.result_table(study)
    assert "precision" not in markdown_table(rows)[0]
    assert all("precision" not in r.to_dict() for r in rows)
    assert "precision" not in note_markdown(study).split("## Reading")[0]


def test_figures_show_every_precision_and_the_chosen_one(pairs):
    from optuna_shape import store as st
    from optuna_shape.reporting.plots import make_figures
    from optuna_shape.space.shape import Shape, Variant

    study, space = pairs
    best = osh.best_shape(study)
    figs = make_figures(study)
    grid = figs["grid"]
    heat = grid.data[0]
    cells = {(int(y), float(x)): (z, t) for y, zr, tr in zip(heat.y, heat.z, heat.text)
             for x, z, t in zip(heat.x, zr, tr)}
    z, text = cells[(best.depth, best.width)]
    chosen = next(r for r in osh.result_table(study) if r.chosen)
    assert z == chosen.predicted  # the cell shows the chosen candidate, not another precision
    assert "int8: predicted" in text
    assert "fp32: predicted" in text or "fp32: infeasible: size" in text
    assert any("fp32: predicted" in t and "int8: predicted" in t for _, t in cells.values())
    assert any(tr.name == f"chosen, {best.precision}" for tr in grid.data)

    acc = figs["accuracy_vs_params"]
    assert "model size" in acc.layout.title.text
    names = {tr.name for tr in acc.data}
    assert {"width 0.5 fp32 (predicted)", "width 0.5 int8 (predicted)"} <= names
    int8 = next(tr for tr in acc.data if tr.name == "width 0.5 int8 (trained)")
    fp32 = next(tr for tr in acc.data if tr.name == "width 0.5 fp32 (trained)")
    assert min(fp32.x) == pytest.approx(space.size_mb(Shape(10, 0.5)))  # x is the model size
    assert min(int8.x) == pytest.approx(space.size_mb(Shape(10, 0.5), "int8"))

    # latency lines are per precision: an fp32 and an int8 measurement never share a line
    hw = "cpu-test"
    st.write_hardware_name(study, hw)
    st.mark_screened(study, hw)
    for depth, ms in ((10, 1.0), (16, 2.0)):
        st.write_measurement(study, hw, Shape(depth, 0.5), {"latency_ms": ms})
        st.write_measurement(study, hw, Variant(depth, 0.5, "int8"), {"latency_ms": ms / 3})
    by_depth = {tr.name: list(tr.y) for tr in make_figures(study)["latency_vs_depth"].data}
    assert by_depth == {"width 0.5 fp32": [1.0, 2.0], "width 0.5 int8": [1 / 3, 2 / 3]}


def test_shapes_rejected_at_every_precision_become_screened_trials():
    from optuna_shape.reporting.dashboard import record_screened

    study, space = _search(("fp32", "int8"))
    feasible = {r.shape for r in osh.result_table(study, include_all=True)}
    expected = {s for s in space.shapes if s not in feasible}
    assert expected and record_screened(study) == len(expected)
    screened = {(t.params["depth"], t.params["width"]): t.user_attrs["reject_reason"]
                for t in study.trials if t.user_attrs.get("stage") == "screened"}
    assert set(screened) == {(s.depth, s.width) for s in expected}
    for reason in screened.values():
        assert reason.startswith("fp32: size") and "; int8: size" in reason
    assert record_screened(study) == 0  # once


def test_what_the_model_was_fitted_on_counts_one_as_one():
    from optuna_shape.reporting.tables import fitted_on

    assert fitted_on({"n_train": 1, "trained": [[16, 1.0]]}) == "1 trained shape"
    assert fitted_on({"n_train": 3, "trained": [[16, 1.0]] * 3}) == "3 trained shapes"
    assert fitted_on({"n_train": 1, "trained": [[16, 1.0, "int8"]]}) == \
        "1 trained (shape, precision) candidate"
    assert fitted_on({"n_train": 2, "trained": [[16, 1.0, "int8"]] * 2}) == \
        "2 trained (shape, precision) candidates"
