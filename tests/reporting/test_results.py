"""Reading a stored search: the result rows."""

from __future__ import annotations

import json

import optuna
import pytest

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.models.compute import parse_budget
from optuna_shape.reporting.outcomes import spend_more_lines
from optuna_shape.reporting.results import SearchSummary, effective_status, result_table
from optuna_shape.space.shape import Shape

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


# ------------------------------------------------------------------ results stored earlier ----
# A result as the code before typed stop details stored it (a real run of the adaptive policy
# that ended unconfirmed), in its stored text form.
OLD_RESULT = (
    '{"accuracy":null,"confidence":0.6858211780746934,"details":{"answer_probability":'
    '0.6858211780746934,"compute":{"all_feasible_s":61.169,"budget_s":60.0,"cost_observations":4,'
    '"spent_s":9.375},"confidence_rule":0.9,"expected_gain":0.8048600857006573,"failed":[],'
    '"max_trainings":4,"measured":[{"count":2,"mean":94.35450898405549,"shape":[16,1.0]},'
    '{"count":1,"mean":89.08069860504946,"shape":[22,0.5]}],"noise":{"gamma":0.16424951690071346,'
    '"prior_sigma0":0.5,"repeat_df":1,"sigma0":1.0267739762901682,"unit_scale":1.0},"noise_std":'
    '[1.3038048472612782,0.9681882955117496,1.1786673614654446,0.8752628478638207,'
    '1.1007782871666472,0.81742344786255],"p_floor":[0.35898824707904,0.7016071029735172,'
    '0.054834418511968054,0.6858211780746934,8.819069808180495e-06,0.35924391667458666],'
    '"posterior_mean":[93.4625811372157,95.45081821540504,90.93577983681381,94.29531808167548,'
    '89.47499022941876,93.27487597528042],"posterior_std":[1.4880169396778766,2.7424206224236376,'
    '1.9155166389528486,0.610111191596671,1.054076619189566,2.0115485194744855],"reason_code":'
    '"budget","shapes":[[10,0.5],[10,1.0],[16,0.5],[16,1.0],[22,0.5],[22,1.0]],"stopped_early":'
    '[{"projected":[94.0],"shape":[10,0.5]}],"trainings":4,"unconfirmed":{"p_confirm_next":'
    '0.1605860077635688,"p_floor":0.6858211780746934}},"goal":"size","n_feasible":6,'
    '"n_planned":null,"n_space":6,"note":null,"reason":"stopped: budget of 4 trainings spent; no '
    'shape is confirmed at P ≥ 0.9; best-supported answer (16, 1) measured 94.35 over 2 '
    'training(s), P(accuracy ≥ 94) = 0.69 (not confirmed); seed noise std ≈ 1.03 points '
    '(median-size shape); one more training of (16, 1) would confirm it with probability '
    '0.16","shape":[16,1.0],"status":"unconfirmed","trainings":0}')


def _old_study(result: dict) -> optuna.Study:
    space = osh.ShapeSpace("wrn", depth=[10, 16, 22], width=[0.5, 1.0], in_channels=1,
                           num_classes=10, image_size=8)
    study = optuna.create_study(direction="maximize")
    st.write_config(study, {"space": space.to_dict(), "goal": "size",
                            "constraints": {"min_accuracy": 94.0}, "budget_seconds": 60.0})
    st.write_json(study, st.RESULT, result)
    return study


def test_a_result_stored_before_typed_details_loads_typed_and_unchanged():
    from optuna_shape.reporting.outcomes import outcome

    study = _old_study(json.loads(OLD_RESULT))
    record = st.read_result(st.study_attrs(study))
    assert record is not None and record.status is osh.SearchStatus.UNCONFIRMED
    assert record.details.unconfirmed is not None
    assert record.details.unconfirmed.p_confirm_next == 0.1605860077635688
    assert record.details.measured is not None
    assert record.details.measured[0].shape == osh.Shape(16, 1.0)
    assert record.details["reason_code"] == "budget"  # the mapping view of the old dict
    # the typed record writes back exactly what was stored
    assert json.dumps(record.to_json(), separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False) == OLD_RESULT
    summary = osh.search_summary(study)
    assert summary.status == "unconfirmed" and summary.status is osh.SearchStatus.UNCONFIRMED
    assert summary.unconfirmed == {"p_floor": 0.6858211780746934,
                                   "p_confirm_next": 0.1605860077635688}
    assert summary.compute == {"spent_s": 0.0, "budget_s": 60.0, "all_feasible_s": 61.169}
    assert osh.best_shape(study) == osh.Shape(16, 1.0)
    status, code, words = outcome(study)
    assert (status, code) == ("unconfirmed", 4)
    assert "one more training of it would confirm it with probability 0.16" in words


def test_a_status_word_this_version_does_not_know_loads_as_the_plain_word():
    from optuna_shape.reporting.outcomes import outcome

    stored = {**json.loads(OLD_RESULT), "status": "paused_by_a_later_version"}
    study = _old_study(stored)
    summary = osh.search_summary(study)
    assert type(summary.status) is str and summary.status == "paused_by_a_later_version"
    assert outcome(study) == ("paused_by_a_later_version", 0, summary.reason)
    assert st.read_result(st.study_attrs(study)).to_json()["status"] == stored["status"]


def _summary(**kw) -> SearchSummary:
    base = dict(finished=True, shape=None, reason="", goal="size", n_space=6, n_feasible=6,
                n_planned=None, trainings=3, running=0, surrogate=None, accuracy=None)
    return SearchSummary(**{**base, **kw})


def test_effective_status_is_the_one_rule_reports_read():
    S = osh.SearchStatus
    never = lambda: pytest.fail("complying rows read for a status other than complying_set")  # noqa: E731
    assert effective_status(_summary(finished=False), n_done=1, n_failed=0,
                            any_complying=never) is S.RUNNING
    assert effective_status(_summary(status=S.UNCONFIRMED, shape=osh.Shape(10, 1.0)),
                            n_done=1, n_failed=0, any_complying=never) is S.UNCONFIRMED
    # results stored without a status: derived from the summary and the trainings
    derived = [({"shape": osh.Shape(10, 1.0)}, 1, 0, S.ANSWERED),
               ({"n_feasible": 0}, 0, 0, S.NO_FEASIBLE),
               ({}, 0, 2, S.ALL_FAILED),
               ({}, 2, 1, S.FLOOR_NOT_REACHED)]
    for kw, done, failed, want in derived:
        assert effective_status(_summary(status=None, **kw), n_done=done, n_failed=failed,
                                any_complying=never) is want
    assert effective_status(_summary(status=None, goal=None), n_done=2, n_failed=0,
                            any_complying=lambda: True) is S.COMPLYING_SET
    # a complying set with nothing complying reads as no answer
    empty = _summary(status=S.COMPLYING_SET, goal=None)
    for done, failed, want in ((2, 0, S.FLOOR_NOT_REACHED), (0, 2, S.ALL_FAILED),
                               (0, 0, S.NO_FEASIBLE)):
        assert effective_status(empty, n_done=done, n_failed=failed,
                                any_complying=lambda: False) is want


def _unconfirmed_summary(spent_s: float, budget_s: float | None, training_s: float | None
                         ) -> SearchSummary:
    return SearchSummary(
        finished=True, shape=Shape(10, 2.0), reason="", goal="size", n_space=32, n_feasible=32,
        n_planned=None, trainings=12, running=0, surrogate=None, accuracy=97.5,
        status="unconfirmed", confidence=0.65,
        unconfirmed={"p_floor": 0.65, "p_confirm_next": 0.19, "training_s": training_s,
                     "more": 5, "p_confirm_more": 0.42},
        compute={"spent_s": spent_s, "budget_s": budget_s, "all_feasible_s": 52.0})


def test_spend_more_raises_the_budget_that_is_in_the_way(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="b15", storage=url)
    optuna.create_study(study_name="b15-2", storage=url)  # taken: the next free name is used
    assert spend_more_lines(study, _unconfirmed_summary(14.5, 15.0, 1.71)) == []  # by Python
    study.set_user_attr("training", {"epochs": 5})  # made by the command line
    words, command = spend_more_lines(study, _unconfirmed_summary(14.5, 15.0, 1.71))
    assert words.startswith("more compute: room for 5 more trainings of depth 10, width 2 ")
    # 14.5 s spent + 1.2 × 5 × 1.71 s = 24.8 s, rounded up in a unit --budget reads
    assert command == "optuna-shape search --from-study b15 --study-name b15-3 --budget 25s"
    hours = spend_more_lines(study, _unconfirmed_summary(7000.0, 7200.0, 1000.0))[1]
    assert hours.endswith("--budget 3.7h") and parse_budget("3.7h") >= 7000 + 6000
    # the budget was not what stopped it, or a training's time is unknown: no command
    assert spend_more_lines(study, _unconfirmed_summary(14.5, 100.0, 1.71)) == []
    assert spend_more_lines(study, _unconfirmed_summary(14.5, 15.0, None)) == []
