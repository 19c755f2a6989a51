"""Result table, summary and dashboard note of a search over (shape, precision) pairs."""

from __future__ import annotations

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
