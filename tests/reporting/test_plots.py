"""Plots and tables of a stored search (fast: a stand-in objective, no training)."""

from __future__ import annotations

import optuna
from rich.console import Console

import optuna_shape as osh
from optuna_shape.reporting import make_figures, print_result, result_markdown, write_plots


def stand_in(shape: osh.Shape) -> float:
    d, w = shape
    return 99.0 - 1.1 / w - 14.0 / d + 0.05 / (w * w)


def search(latency: bool) -> optuna.Study:
    space = osh.ShapeSpace("wrn", depth=(10, 28, 6), width=[0.25, 0.5, 1, 2], in_channels=1,
                           num_classes=10, image_size=8)
    cons = osh.Constraints(max_size_mb=1.0, max_latency_ms=1e4 if latency else None)
    sampler = osh.ShapeSampler(space, cons, goal="accuracy", seed=0,
                               measurement=osh.MeasurementSettings(warmup=0, repeats=1,
                                                                   threads=1))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: stand_in(osh.suggest_shape(t, space)))
    return study


def test_figures_mark_infeasible_trained_and_chosen(tmp_path):
    study = search(latency=False)
    figs = make_figures(study)
    assert set(figs) == {"grid", "accuracy_vs_params"}
    names = {tr.name for tr in figs["grid"].data}
    assert {"predicted", "infeasible", "chosen"} <= names
    assert any(n.startswith("trained (") for n in names)
    heat = figs["grid"].data[0]
    assert len(heat.z) == 4 and len(heat.z[0]) == 4
    paths = write_plots(study, tmp_path / "p")
    assert sorted(p.name for p in paths) == ["accuracy_vs_params.html", "grid.html"]


def test_latency_figures_when_latency_measured():
    study = search(latency=True)
    figs = make_figures(study)
    assert {"latency_vs_depth", "latency_vs_width"} <= set(figs)
    ys = [y for tr in figs["latency_vs_depth"].data for y in tr.y]
    assert ys and all(y > 0 for y in ys)


def test_tables_show_chosen_and_saving():
    study = search(latency=True)
    console = Console(record=True, width=140)
    rows, summary = print_result(study, console)
    text = console.export_text()
    assert "latency" in text and "★" in text and "chosen shape" in text
    assert summary.trainings < summary.n_feasible
    md = result_markdown(rows, summary)
    assert md.startswith("# optuna-shape result") and "| # |" in md


def test_plots_zoom_on_the_decision_band_and_legends_show_markers():
    study = search(latency=False)
    figs = make_figures(study)
    heat = figs["grid"].data[0]
    values = [v for row in heat.z for v in row if v is not None]
    assert heat.zmin is not None and heat.zmax is not None
    assert heat.zmin > min(values) - 1e-9 or heat.zmin >= 90  # not 0–100: the top band
    assert heat.zmax <= max(values) + 0.1 * (max(values) - heat.zmin) + 1e-9
    for tr in figs["grid"].data[1:]:
        # a marker a reader can see on the white legend: dark outline or a non-white fill
        assert tr.marker.line.color == "black" or tr.marker.color not in ("white", "#ffffff")
    lo, hi = figs["accuracy_vs_params"].layout.yaxis.range
    assert lo > 50 and hi <= 100.5  # stand-in accuracies are 80–99 %: no 0–100 axis


def test_table_with_every_column_fits_80_columns():
    from optuna_shape.reporting.results import ResultRow
    from optuna_shape.reporting.tables import result_rich_table

    rows = [ResultRow(1, 28, 1.75, 12.3456, 1000, 12.345, 0.0123, 97.12, 0.45, 97.3, True,
                      "acquire", True, True),
            ResultRow(2, 10, 0.25, 0.0229, 1000, 0.345, 1.23, 96.12, 0.05, None, False, None,
                      True, False)]
    console = Console(record=True, width=80)
    console.print(result_rich_table(rows, title="shape-cifar10: complying shapes"))
    text = console.export_text()
    assert "…" not in text  # nothing truncated
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 79
    assert "(28, 1.75) ★" in text and "0.0123" in text and "acquire" in text


def test_screened_shapes_become_pruned_trials_with_their_reason_once():
    from optuna.trial import TrialState

    from optuna_shape.reporting.dashboard import attach_to_dashboard, record_screened

    study = search(latency=False)
    before = (osh.search_summary(study), osh.result_table(study, include_all=True))
    attach_to_dashboard(study)
    screened = [t for t in study.trials if t.user_attrs.get("stage") == "screened"]
    summary = before[0]
    assert len(screened) == summary.n_space - summary.n_feasible > 0
    for t in screened:
        assert t.state == TrialState.PRUNED and set(t.params) == {"depth", "width"}
        assert t.user_attrs["reject_reason"].startswith("size ") and "> 1 MB" in \
            t.user_attrs["reject_reason"]
    assert record_screened(study) == 0  # idempotent
    assert (osh.search_summary(study), osh.result_table(study, include_all=True)) == before
