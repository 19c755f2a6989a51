"""The terminal progress of a real search (a table objective on a SQLite file): one plain line
per event, the study's compute with every training — also with the first training of a worker
that joins or resumes a study."""

from __future__ import annotations

import io

import optuna
from rich.console import Console

import optuna_shape as osh
from optuna_shape.reporting.rich_progress import RichReporter

SPACE = osh.ShapeSpace(family="mlp", depth=[1, 2, 3], width=[0.5, 1.0], in_channels=4,
                       num_classes=3, image_size=None)


def _objective(trial: optuna.Trial) -> float:
    shape = osh.suggest_shape(trial, SPACE)
    trial.set_user_attr("train_seconds", 1.0 + shape.depth)  # the compute it charges
    return 90.0 + shape.depth + shape.width


def _search(url: str, budget: float | None, n_trials: int) -> list[str]:
    """Lines a worker prints for ``n_trials`` trials of study ``s`` (made or resumed)."""
    out = io.StringIO()
    reporter = RichReporter(console=Console(file=out, width=79), bars=False)
    sampler = osh.ShapeSampler(SPACE, osh.Constraints(), goal="accuracy",
                               policy=osh.Adaptive(budget=budget), seed=0, reporter=reporter)
    study = optuna.create_study(study_name="s", storage=url, load_if_exists=True,
                                direction="maximize", sampler=sampler)
    study.optimize(_objective, n_trials=n_trials)
    reporter.close()
    return [line for line in out.getvalue().splitlines() if line.startswith("trial ")]


def test_every_training_line_shows_the_study_compute_against_the_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first = _search(url, 100.0, 3)
    assert first[0].endswith("(compute 0 s of 100 s)"), first
    assert all("s of 100 s)" in line for line in first)
    resumed = _search(url, 100.0, 1)  # a new worker: it has seen no training of its own
    assert len(resumed) == 1 and "(compute 0 s" not in resumed[0], resumed
    assert resumed[0].endswith(" s of 100 s)"), resumed


def test_without_a_budget_the_first_training_shows_no_compute(tmp_path):
    lines = _search(f"sqlite:///{tmp_path / 'p.db'}", None, 2)
    assert "(compute" not in lines[0], lines
    assert lines[1].endswith(" s)") and "(compute " in lines[1], lines
