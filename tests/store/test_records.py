"""Typed records round-trip through the storage, long values chunked; a queued trial decodes."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.space.shape import Shape

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_records_round_trip_and_long_values_are_chunked():
    study = optuna.create_study()
    shapes = tuple(Shape(10 + 6 * i, 0.5 * (1 + i % 4)) for i in range(300))
    fit = st.FitRecord(shapes=shapes, predicted=tuple(90.0 + i / 7 for i in range(300)),
                       std=(0.5,) * 300, ranking=shapes[:50], trained=shapes[:10],
                       method="bayes", r2=0.9, n_train=10, n_feasible=300, fits=2)
    st.write_fit(study, fit)
    attrs = st.study_attrs(study)
    assert any(k.startswith(st.FIT + ":") for k in attrs)  # chunked
    assert all(len(v) <= st.CHUNK for k, v in attrs.items() if k.startswith(st.FIT + ":"))
    back = st.read_fit(attrs)
    assert back.shapes == shapes and back.ranking == shapes[:50] and back.fits == 2
    result = st.ResultRecord(Shape(16, 1.0), "verified", confidence=0.95, trainings=12)
    assert st.write_result(study, result) == result
    other = st.ResultRecord(Shape(22, 2.0), "late writer")
    assert st.write_result(study, other) == result  # the first stored result is final
    assert st.read_result(st.study_attrs(study)) == result


def test_decode_trial_of_a_queued_training():
    study = optuna.create_study()
    st.create_waiting_trial(study, slot="d16-w1#1", stage="sample", shape=Shape(16, 1.0),
                            user_attrs={"size_mb": 0.2})
    rec = st.decode_trial(study.trials[0])
    assert (rec.shape, rec.slot, rec.stage, rec.state) == (Shape(16, 1.0), "d16-w1#1", "sample",
                                                           TrialState.WAITING)
    assert rec.is_training and not rec.trained and not rec.rejected
