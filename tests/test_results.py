"""Reading a stored search: the result rows."""

from __future__ import annotations

import optuna

import optuna_shape as osh
from optuna_shape import storage as st
from optuna_shape.results import result_table

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_predicted_accuracies_are_reported_within_0_to_100_percent():
    """The accuracy model is unbounded (a mean of 100.52 near the top); a row never shows an
    accuracy above 100 % or below 0."""
    space = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.5, 1.0], in_channels=1,
                           num_classes=10, image_size=8)
    shapes = tuple(space.shapes)
    study = optuna.create_study(direction="maximize")
    st.write_config(study, {"space": space.to_dict(), "goal": "accuracy"})
    st.write_fit(study, st.FitRecord(
        shapes=shapes, predicted=(100.52, 99.3, 42.0, -0.4), std=(0.86, 0.5, 1.0, 0.7),
        ranking=shapes[:2], method="bayes", n_feasible=len(shapes)))
    rows = {r.shape: r for r in result_table(study, include_all=True)}
    assert [(rows[s].predicted, rows[s].std) for s in shapes] == [
        (100.0, 0.86), (99.3, 0.5), (42.0, 1.0), (0.0, 0.7)]
    assert [rows[s].rank for s in shapes] == [1, 2, None, None]
