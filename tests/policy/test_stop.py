"""What a stop carries: the status enum and the details dataclass, each with one codec, and the
stored forms earlier versions wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest

import optuna_shape as osh
from optuna_shape.policy import (
    ComputeUse,
    Evidence,
    Measured,
    Problem,
    SearchStatus,
    Settings,
    Stop,
    StopDetails,
    StoppedEarly,
    Train,
    Training,
    Unconfirmed,
    decide,
)
from optuna_shape.space.shape import Shape, Variant

# The words every version so far has stored (and the reports' "running").
WORDS = ["answered", "unconfirmed", "complying_set", "no_feasible", "floor_not_reached",
         "all_failed", "frontier", "running"]

# ``details`` of results stored by the code before StopDetails existed (taken from real runs of
# the adaptive policy on a 6-shape grid, stored by ``write_result``; key order as stored).
OLD_UNCONFIRMED = (
    '{"answer_probability":0.6858211780746934,"compute":{"all_feasible_s":61.169,"budget_s":60.0,'
    '"cost_observations":4,"spent_s":9.375},"confidence_rule":0.9,"expected_gain":'
    '0.8048600857006573,"failed":[],"max_trainings":4,"measured":[{"count":2,"mean":'
    '94.35450898405549,"shape":[16,1.0]},{"count":1,"mean":89.08069860504946,"shape":[22,0.5]}],'
    '"noise":{"gamma":0.16424951690071346,"prior_sigma0":0.5,"repeat_df":1,"sigma0":'
    '1.0267739762901682,"unit_scale":1.0},"noise_std":[1.3038048472612782,0.9681882955117496,'
    '1.1786673614654446,0.8752628478638207,1.1007782871666472,0.81742344786255],"p_floor":'
    '[0.35898824707904,0.7016071029735172,0.054834418511968054,0.6858211780746934,'
    '8.819069808180495e-06,0.35924391667458666],"posterior_mean":[93.4625811372157,'
    '95.45081821540504,90.93577983681381,94.29531808167548,89.47499022941876,93.27487597528042],'
    '"posterior_std":[1.4880169396778766,2.7424206224236376,1.9155166389528486,0.610111191596671,'
    '1.054076619189566,2.0115485194744855],"reason_code":"budget","shapes":[[10,0.5],[10,1.0],'
    '[16,0.5],[16,1.0],[22,0.5],[22,1.0]],"stopped_early":[{"projected":[94.0],"shape":[10,0.5]}],'
    '"trainings":4,"unconfirmed":{"p_confirm_next":0.1605860077635688,"p_floor":'
    '0.6858211780746934}}')
OLD_COMPLYING = (
    '{"complying":[],"compute":{"all_feasible_s":29.636,"budget_s":null,"cost_observations":3,'
    '"spent_s":8.22},"expected_gain":null,"failed":[{"count":1,"shape":[10,1.0]}],'
    '"max_trainings":4,"measured":[{"count":1,"mean":90.12573022109339,"shape":[10,0.5]}],'
    '"noise":{"gamma":0.22156731958528647,"prior_sigma0":0.5,"repeat_df":0,"sigma0":'
    '0.43487759371852613,"unit_scale":1.0},"noise_std":[0.6,0.4],"p_floor":[3.9e-07,0.039],'
    '"posterior_mean":[90.3,90.2],"posterior_std":[0.54,1.58],"reason_code":"complying_set",'
    '"shapes":[[10,0.5],[10,1.0]],"trainings":4}')
OLD_SHORT = '{"max_trainings":12,"reason_code":"all_failed","trainings":7}'
OLD_PAPER = '{"n_planned":4}'


def _stored(text: str) -> str:
    """The stored text form (as ``storage.write_json`` writes it)."""
    return json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)


# ------------------------------------------------------------------ SearchStatus -------------
def test_status_members_are_the_stored_words():
    assert [s.value for s in SearchStatus] == WORDS
    assert osh.SearchStatus is SearchStatus
    for word in WORDS:
        member = SearchStatus(word)
        assert member == word and word == member and isinstance(member, str)
        assert str(member) == f"{member}" == format(member) == f"{member:>1}" == word
        assert hash(member) == hash(word) and {word: 1}[member] == 1 and member in {word}
        assert json.dumps(member) == json.dumps(word)
        assert json.dumps({member: [member]}) == json.dumps({word: [word]})
        assert SearchStatus.decode(json.loads(json.dumps(member))) is member


def test_no_answer_statuses():
    assert {s for s in SearchStatus if s.no_answer} == {
        "no_feasible", "floor_not_reached", "all_failed"}


def test_unknown_stored_status_stays_the_plain_word():
    status = SearchStatus.decode("paused_by_a_later_version")
    assert type(status) is str and status == "paused_by_a_later_version"
    assert SearchStatus.decode(None) is SearchStatus.ANSWERED  # a result without one


def test_stop_takes_a_status_word_and_refuses_an_unknown_one():
    stop = Stop(None, "why", "floor_not_reached")
    assert stop.status is SearchStatus.FLOOR_NOT_REACHED
    assert Stop(None, "why").status is SearchStatus.ANSWERED
    with pytest.raises(ValueError):
        Stop(None, "why", "nearly")


# ------------------------------------------------------------------ StopDetails --------------
@pytest.mark.parametrize("text", [OLD_UNCONFIRMED, OLD_COMPLYING, OLD_SHORT, OLD_PAPER, "{}"])
def test_old_stored_details_decode_typed_and_encode_back_byte_for_byte(text):
    details = StopDetails.from_json(json.loads(text))
    assert details.extra == {}
    assert _stored(json.dumps(details.to_json())) == _stored(text)
    assert StopDetails.from_json(details.to_json()) == details
    assert dict(details) == json.loads(text)  # the mapping view reads as the stored dict


def test_old_unconfirmed_details_read_as_typed_fields():
    d = StopDetails.from_json(json.loads(OLD_UNCONFIRMED))
    assert d.reason_code == "budget" and d.max_trainings == 4 and d.trainings == 4
    assert d.shapes is not None and d.shapes[3] == Shape(16, 1.0)
    assert d.measured == (Measured(Shape(16, 1.0), 94.35450898405549, 2),
                          Measured(Shape(22, 0.5), 89.08069860504946, 1))
    assert d.failed == ()
    assert d.stopped_early == (StoppedEarly(Shape(10, 0.5), (94.0,)),)
    assert d.unconfirmed == Unconfirmed(0.6858211780746934, 0.1605860077635688)
    assert d.compute == ComputeUse(9.375, 60.0, 61.169, 4)
    assert d.noise is not None and d.noise["sigma0"] == 1.0267739762901682
    assert d.answer_probability == d.unconfirmed.p_floor and d.confidence_rule == 0.9
    assert d.fit is None and d.n_planned is None and d.complying is None


def test_what_more_compute_buys_round_trips_and_reads_in_compute():
    u = Unconfirmed(0.57, 0.03, training_s=1.214, more=4, p_confirm_more=0.19)
    assert Unconfirmed.from_json(json.loads(json.dumps(u.to_json()))) == u
    assert u.more_words("(10, 2)") == ("one more training of (10, 2) (≈ 1.21 s) would confirm "
                                       "it with probability 0.03; 4 more (≈ 4.86 s) with "
                                       "probability 0.19")
    hours = Unconfirmed(0.6, 0.2, training_s=5400.0, more=3, p_confirm_more=0.5)
    assert "(≈ 90 min)" in hours.more_words("it") and "3 more (≈ 4.5 h)" in hours.more_words("it")
    old = Unconfirmed(0.6858211780746934, 0.1605860077635688)  # stored before the rest
    assert old.to_json() == {"p_floor": 0.6858211780746934, "p_confirm_next": 0.1605860077635688}
    assert old.more_words("it") == "one more training of it would confirm it with probability 0.16"


def test_expected_gain_null_is_kept_with_the_posterior_report():
    d = StopDetails.from_json(json.loads(OLD_COMPLYING))
    assert d.expected_gain is None and d.complying == ()
    assert "expected_gain" in d.to_json() and d.to_json()["expected_gain"] is None
    assert "expected_gain" not in StopDetails(reason_code="no_floor").to_json()


def test_every_field_has_one_decoder():
    from dataclasses import fields

    from optuna_shape.policy import stop

    assert list(stop._DECODE) == [f.name for f in fields(StopDetails) if f.name != "extra"]


def test_missing_extra_and_undecodable_keys_never_fail():
    stored = {"reason_code": "budget", "shapes": [[10, 0.5, "int8"]], "from_the_future": [1],
              "measured": "not a list of records", "trainings": None}
    d = StopDetails.from_json(stored)
    assert d.reason_code == "budget" and d.shapes == (Variant(10, 0.5, "int8"),)
    assert d.measured is None and d.trainings is None and d.posterior_mean is None
    assert d.extra == {"from_the_future": [1], "measured": "not a list of records"}
    back = d.to_json()
    assert back["from_the_future"] == [1] and back["measured"] == "not a list of records"
    assert StopDetails.from_json(None) == StopDetails() == {}


def test_measured_without_count_keeps_its_form():
    stored = {"measured": [{"shape": [10, 1.0], "mean": 95.1}]}
    d = StopDetails.from_json(stored)
    assert d.measured == (Measured(Shape(10, 1.0), 95.1),) and d.to_json() == stored


def test_integers_stay_integers():
    stored = {"expected_gain": 0, "compute": {"spent_s": 12, "budget_s": None,
                                              "all_feasible_s": 40, "cost_observations": 3}}
    assert json.dumps(StopDetails.from_json(stored).to_json()) == json.dumps(stored)


def test_mapping_view_and_without_fit():
    d = StopDetails(reason_code="no_floor", max_trainings=3, fit={"ranking": [[10, 1.0]]},
                    n_planned=2)
    assert d["reason_code"] == "no_floor" and d.get("trainings") is None and "fit" in d
    assert list(d) == ["reason_code", "max_trainings", "fit", "n_planned"]
    assert d.without_fit().fit is None and "fit" not in d.without_fit()
    assert Stop(None, "why", details={"reason_code": "no_floor"}).details == StopDetails(
        reason_code="no_floor")


# ------------------------------------------------------------------ the policies' stops ------
GRID = tuple(Shape(d, w) for d in (10, 16, 22, 28) for w in (0.5, 1.0, 2.0))
SIZES = {s: s.depth * s.width**2 * 0.01 for s in GRID}


def _surface(s: Shape) -> float:
    return 97.0 - 2.0 / s.width - 30.0 / s.depth


def _run(prob: Problem, sett: Settings, seed: int = 0, fail=frozenset()) -> Stop:
    rng = np.random.default_rng(seed)
    trainings: list[Training] = []
    for _ in range(200):
        act = decide(prob, Evidence(tuple(trainings)), sett)
        if isinstance(act, Stop):
            return act
        assert isinstance(act, Train)
        for s in act.shapes:
            value = None if s in fail else _surface(s) + rng.normal(0, 0.7)
            if s == GRID[0] and not any(t.shape == s for t in trainings):
                trainings.append(Training(s, None, 93.0, 1.0))  # stopped early
            else:
                trainings.append(Training(s, value, seconds=1.0 + SIZES[s]))
    raise AssertionError("no stop")


def _stops() -> list[Stop]:
    size = dict(SIZES)
    out = [_run(Problem(GRID, size, size, "size", floor), Settings(max_trainings=n), seed)
           for floor, n, seed in ((94.0, 5, 0), (94.5, 5, 2), (95.5, 6, 1), (99.0, 5, 0))]
    out += [_run(Problem(GRID, size, {}, "accuracy", None), Settings()),
            _run(Problem(GRID, size, {}, None, 93.0), Settings(max_trainings=5)),
            _run(Problem(GRID, size, size, "size", None), Settings()),
            _run(Problem(GRID, size, {}, "accuracy", None), Settings(), fail=frozenset(GRID)),
            _run(Problem((), {}, {}, "accuracy", None), Settings()),
            _run(Problem(GRID, size, {}, "accuracy", None), Settings(mode="paper", strategy=4)),
            _run(Problem(GRID, size, {}, None, None), Settings(mode="paper", strategy=4))]
    return out


def test_every_stop_of_both_policies_is_typed_and_round_trips():
    stops = _stops()
    assert {s.status for s in stops} >= {SearchStatus.ANSWERED, SearchStatus.UNCONFIRMED,
                                         SearchStatus.COMPLYING_SET, SearchStatus.ALL_FAILED,
                                         SearchStatus.NO_FEASIBLE}
    for stop in stops:
        assert type(stop.status) is SearchStatus and isinstance(stop.details, StopDetails)
        text = json.dumps(stop.details.to_json())
        again = StopDetails.from_json(json.loads(text))
        assert again == stop.details and json.dumps(again.to_json()) == text
        assert again.extra == {}
        if stop.status == SearchStatus.UNCONFIRMED:
            assert stop.details.unconfirmed is not None
            assert stop.details.unconfirmed.p_floor == stop.confidence
        if stop.details.reason_code is None:  # the paper policy
            assert stop.status == SearchStatus.NO_FEASIBLE or stop.details.fit is not None
