"""The adaptive policy, on synthetic landscapes without Optuna."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scipy.stats import norm

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.policy import Evidence, Problem, Settings, Stop, Train, Training, Wait, decide
from optuna_shape.policy.adaptive import decision, default_max_trainings, initial_design
from optuna_shape.policy.adaptive.batches import cap_holds_back
from optuna_shape.policy.adaptive.budget import TRAININGS_PER_WORKER
from optuna_shape.policy.adaptive.goals import evaluate
from optuna_shape.space.shape import Shape

GRID = tuple(Shape(d, w) for d in (10, 16, 22, 28, 34) for w in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0))
SIZES = {s: s.depth * s.width**2 * 0.01 for s in GRID}


def surface(s: Shape) -> float:
    return 97.0 - 2.0 / s.width - 30.0 / s.depth


def problem(goal: str | None = "accuracy", floor: float | None = None,
            shapes: tuple[Shape, ...] = GRID) -> Problem:
    costs = {s: SIZES[s] for s in shapes} if goal in ("size", "latency", "energy") else {}
    return Problem(shapes, {s: SIZES[s] for s in shapes}, costs, goal, floor)


def simulate(prob: Problem, sett: Settings, noise: float = 0.5, seed: int = 0,
             scale: float = 1.0, fail: set[Shape] = frozenset()
             ) -> tuple[Stop, list[Training], list[object]]:
    rng = np.random.default_rng(seed)
    trainings: list[Training] = []
    actions: list[object] = []
    for _ in range(200):
        act = decide(prob, Evidence(tuple(trainings)), sett)
        actions.append(act)
        if isinstance(act, Stop):
            return act, trainings, actions
        assert isinstance(act, Train), act
        for s in act.shapes:
            v = None if s in fail else (surface(s) + rng.normal(0, noise)) * scale
            trainings.append(Training(s, v))
    raise AssertionError("no stop")


def test_no_feasible() -> None:
    act = decide(problem(shapes=()), Evidence(), Settings())
    assert isinstance(act, Stop) and act.status == "no_feasible" and act.answer is None


def test_initial_design_is_spread_and_deterministic() -> None:
    act = decide(problem(), Evidence(), Settings())
    assert isinstance(act, Train) and act.stage == "initial"
    assert len(act.shapes) == 5 and len(set(act.shapes)) == 5
    assert act.shapes == decide(problem(), Evidence(), Settings()).shapes
    depths = {s.depth for s in act.shapes}
    widths = {s.width for s in act.shapes}
    assert {10, 34} <= depths and {0.25, 3.0} <= widths
    assert initial_design(GRID, 7)[:5] == initial_design(GRID, 5)


def test_initial_design_skips_pending_and_trained() -> None:
    design = initial_design(GRID, 5)
    ev = Evidence((Training(design[0], 90.0),), pending=(design[1],))
    act = decide(problem(), ev, Settings())
    assert isinstance(act, Train) and set(act.shapes) == set(design[2:])


def test_accuracy_search_stops_and_answers_a_trained_shape() -> None:
    stop, trainings, actions = simulate(problem(), Settings())
    assert stop.status == "answered"
    assert stop.answer in {t.shape for t in trainings}
    assert len(trainings) <= default_max_trainings(len(GRID), 5)
    stages = [a.stage for a in actions if isinstance(a, Train)]
    assert stages[0] == "initial" and stages[1] == "repeat"
    best = max(GRID, key=surface)
    assert surface(best) - surface(stop.answer) < 1.0
    json.dumps(stop.details.to_json())
    d = stop.details
    assert len(d["posterior_mean"]) == len(GRID) == len(d["posterior_std"])
    for key in ("noise", "reason_code", "expected_gain", "max_trainings", "measured"):
        assert key in d
    assert "P =" in stop.reason


def test_confident_stop_fires_before_the_budget_on_an_easy_landscape() -> None:
    stop, trainings, _ = simulate(problem(), Settings(max_trainings=30), noise=0.05)
    assert stop.details["reason_code"] == "confident"
    assert stop.confidence is not None and stop.confidence >= 0.9
    assert len(trainings) < 30


def test_budget_stop_and_wait_with_pending() -> None:
    sett = Settings(max_trainings=7)
    stop, trainings, _ = simulate(problem("size", 95.0), sett, noise=1.0)
    assert len(trainings) <= 7
    assert stop.details["max_trainings"] == 7
    # the reason compares P with the confidence (P = 0.34 here)
    assert stop.details["reason_code"] == "budget" and stop.confidence < 0.9
    assert f"budget of 7 trainings spent (P = {stop.confidence:.2f} < 0.9)" in stop.reason
    # pending trainings that reach the budget: wait for them, do not stop
    design = initial_design(GRID, 5)
    ev = Evidence(tuple(Training(s, surface(s)) for s in design), pending=(GRID[3], GRID[4]))
    assert isinstance(decide(problem("size", 95.0), ev, sett), Wait)


@pytest.mark.parametrize("floor", [93.0, 94.5, 95.5])
def test_min_size_answer_meets_floor_on_its_own_measurements(floor: float) -> None:
    sett = Settings()
    for seed in range(3):
        stop, trainings, _ = simulate(problem("size", floor), sett, noise=0.5, seed=seed)
        if stop.answer is None:
            assert stop.status == "floor_not_reached"
            continue
        if stop.status == "unconfirmed":
            assert 0.5 <= stop.confidence < sett.confidence
            continue
        own = [t.value for t in trainings if t.shape == stop.answer]
        assert np.mean(own) >= floor
        assert stop.details["answer_probability"] == stop.confidence


def test_repeats_happen_near_the_floor() -> None:
    floor = surface(Shape(22, 1.0)) + 0.05  # a borderline shape sits on the floor
    repeats = 0
    for seed in range(3):
        _, trainings, _ = simulate(problem("size", floor), Settings(), noise=0.6, seed=seed)
        counts: dict[Shape, int] = {}
        for t in trainings:
            counts[t.shape] = counts.get(t.shape, 0) + 1
        near = [s for s, c in counts.items() if c >= 2 and abs(surface(s) - floor) < 1.5]
        repeats += len(near)
    assert repeats >= 3


def test_pending_shapes_give_distinct_proposals() -> None:
    design = initial_design(GRID, 5)
    trainings = tuple(Training(s, surface(s)) for s in design) + (Training(design[0], 95.0),)
    pending: list[Shape] = []
    for _ in range(4):
        act = decide(problem(), Evidence(trainings, tuple(pending)), Settings())
        assert isinstance(act, Train) and len(act.shapes) == 1
        assert act.shapes[0] not in pending
        assert act.predictions and act.shapes[0] in act.predictions
        pending.append(act.shapes[0])
    assert len(set(pending)) == 4


def test_failures_count_towards_max_attempts() -> None:
    bad = initial_design(GRID, 5)[0]
    stop, trainings, _ = simulate(problem(), Settings(), fail={bad})
    assert sum(t.shape == bad for t in trainings) == 2
    assert stop.status == "answered" and stop.answer != bad


def test_all_failed() -> None:
    stop, trainings, _ = simulate(problem(), Settings(), fail=set(GRID))
    assert stop.status == "all_failed" and stop.answer is None
    assert len(trainings) <= default_max_trainings(len(GRID), 5)


@pytest.mark.parametrize("goal,floor", [("accuracy", None), ("size", 94.5)])
def test_fraction_and_percent_units_decide_alike(goal: str, floor: float | None) -> None:
    s1, t1, _ = simulate(problem(goal, floor), Settings(), seed=5)
    s2, t2, _ = simulate(problem(goal, floor / 100 if floor else None), Settings(), seed=5,
                         scale=0.01)
    assert s1.answer == s2.answer
    assert [t.shape for t in t1][:8] == [t.shape for t in t2][:8]
    assert s2.details["noise"]["unit_scale"] == 0.01


def test_no_goal_gives_the_complying_set() -> None:
    stop, trainings, _ = simulate(problem(None, 94.0), Settings())
    assert stop.status == "complying_set" and stop.answer is None
    assert len(stop.details["p_floor"]) == len(GRID)


def test_min_cost_without_floor_trains_the_cheapest() -> None:
    stop, trainings, _ = simulate(problem("size", None), Settings())
    assert stop.answer == min(GRID, key=lambda s: SIZES[s]) and len(trainings) == 1


def test_deterministic() -> None:
    design = initial_design(GRID, 5)
    ev = Evidence(tuple(Training(s, surface(s)) for s in design) + (Training(design[1], 90.0),))
    a = decide(problem("size", 95.0), ev, Settings(seed=3))
    b = decide(problem("size", 95.0), ev, Settings(seed=3))
    assert a == b


@st.composite
def evidences(draw: st.DrawFn) -> tuple[Evidence, float]:
    floor = draw(st.floats(88.0, 96.0))
    n = draw(st.integers(5, 14))
    idx = draw(st.lists(st.integers(0, len(GRID) - 1), min_size=n, max_size=n))
    noise = draw(st.lists(st.floats(-1.5, 1.5), min_size=n, max_size=n))
    trainings = tuple(Training(GRID[i], surface(GRID[i]) + e) for i, e in zip(idx, noise))
    return Evidence(trainings), floor


def _check_answer(prob: Problem, ev: Evidence, act: object, conf: float) -> None:
    if not isinstance(act, Stop) or act.answer is None:
        return
    own = [t.value for t in ev.trainings if t.shape == act.answer and t.value is not None]
    assert own, "the answer must be a trained shape"
    shapes = [t.shape for t in ev.trainings]
    post = ShapePosterior(prob.feasible).fit(shapes, [t.value for t in ev.trainings])
    m, s = post.predict([act.answer])
    p = 0.5 * math.erfc((prob.min_accuracy - m[0]) / s[0] / math.sqrt(2))
    if act.status == "unconfirmed":  # the budget ended first: plausible, said to be unsure
        assert p >= 0.5 - 1e-9 or np.mean(own) >= prob.min_accuracy
        assert act.confidence == pytest.approx(p)
        return
    assert np.mean(own) >= prob.min_accuracy
    assert p >= conf - 1e-9
    if len(own) == 1:  # a lone training near the floor must be confirmed by a repeat
        assert own[0] >= prob.min_accuracy + 2.0 * post.noise_std([act.answer])[0] - 1e-9


def test_a_lone_lucky_training_near_the_floor_is_repeated_not_answered() -> None:
    floor = 94.0
    cheap = Shape(16, 1.0)  # truth 93.1: one lucky seed reads 94.3
    design = initial_design(GRID, 5)
    trainings = [Training(s, surface(s)) for s in design]
    for s in design[:3]:  # repeats with seed scatter of about 0.6 points
        trainings += [Training(s, surface(s) + 0.6), Training(s, surface(s) - 0.6)]
    trainings += [Training(s, surface(s)) for s in GRID if s.width >= 1.5 and s.depth >= 22]
    trainings.append(Training(cheap, 94.3))
    ev = Evidence(tuple(trainings))
    act = decide(problem("size", floor), ev, Settings(max_trainings=40))
    # the search goes on: the lucky shape is no answer; what it trains next is the
    # acquisition's call (a cheaper untried shape with a fair chance may come before a repeat)
    assert isinstance(act, Train)
    stop = decide(problem("size", floor), ev, Settings(max_trainings=len(trainings)))
    assert isinstance(stop, Stop) and stop.answer is not None and stop.answer != cheap
    assert stop.answer in {t.shape for t in trainings}


def test_a_single_training_answer_is_confirmed_while_the_noise_is_barely_measured() -> None:
    """One repeat pair that happened to agree (noise barely measured) lets a single lucky
    training of the cheapest shape clear the two-noise-std margin: the search trains it once
    more before it stops confident on it; with the noise measured from two repeat pairs it
    stops."""
    floor = 92.5
    shapes = tuple(s for s in GRID if s.width >= 1.0)
    cheap = min(shapes, key=lambda s: SIZES[s])  # truth 92.0: one lucky seed reads 94.5
    design = [s for s in initial_design(shapes, 5) if s != cheap]
    big = max(design, key=surface)
    trainings = [Training(s, surface(s)) for s in design]
    trainings += [Training(big, surface(big) + 0.05), Training(cheap, 94.5)]
    prob, sett = problem("size", floor, shapes), Settings(max_trainings=40)
    act = decide(prob, Evidence(tuple(trainings)), sett)
    assert isinstance(act, Train) and act.shapes[0] == cheap and act.stage == "repeat"
    assert "confirm the answer" in act.reason
    # while its repeat runs, the search does not stop on it
    act = decide(prob, Evidence(tuple(trainings), (cheap,)), sett)
    assert not (isinstance(act, Stop) and act.answer == cheap)
    # the noise measured from two repeat pairs: the single training may stand
    other = next(s for s in design if s != big)
    measured = trainings + [Training(other, surface(other))]
    stop = decide(prob, Evidence(tuple(measured)), sett)
    assert isinstance(stop, Stop) and stop.answer == cheap and stop.status == "answered"


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidences(), st.sampled_from(["size", "accuracy"]), st.sampled_from([0.8, 0.9, 0.95]))
def test_property_answer_is_trained_meets_floor_and_is_probable(
        ev_floor: tuple[Evidence, float], goal: str, conf: float) -> None:
    ev, floor = ev_floor
    prob = problem(goal, floor)
    # a budget equal to the evidence forces a Stop with the best justified answer
    sett = Settings(confidence=conf, max_trainings=len(ev.trainings))
    act = decide(prob, ev, sett)
    assert isinstance(act, Stop)
    _check_answer(prob, ev, act, conf)


@pytest.mark.parametrize("goal,floor", [("accuracy", None), ("size", 94.5)])
def test_four_workers_finish_with_distinct_work(goal: str, floor: float | None) -> None:
    """Four asynchronous workers: each asks for work when free; trainings finish in random
    order. No shape is run twice at the same time, and the search ends with an answer."""
    prob = problem(goal, floor)
    rng = np.random.default_rng(7)
    done: list[Training] = []
    running: list[Shape] = []
    queue: list[Shape] = []
    rounds = 0
    while rounds < 300:
        rounds += 1
        while len(running) < 4:
            if not queue:
                act = decide(prob, Evidence(tuple(done), tuple(running)), Settings())
                if isinstance(act, Stop):  # with trainings running only when confident
                    assert not running or act.details.reason_code == "confident"
                    assert act.status == "answered" and act.answer in {t.shape for t in done}
                    return
                if isinstance(act, Wait):
                    break
                queue.extend(act.shapes)
            s = queue.pop(0)
            assert s not in running
            running.append(s)
        if running:
            s = running.pop(int(rng.integers(len(running))))
            done.append(Training(s, surface(s) + rng.normal(0, 0.5)))
    raise AssertionError("no stop")


@pytest.mark.parametrize("goal,floor", [("accuracy", None), ("size", 94.5)])
def test_a_confident_answer_stops_without_waiting_for_running_trainings(
        goal: str, floor: float | None) -> None:
    """Idle workers do not wait for the last trainings once the answer is confident (the
    answer is the time users wait for); a budget stop still waits (see above)."""
    sett = Settings(max_trainings=len(GRID))
    stop, trainings, _ = simulate(problem(goal, floor), sett)
    assert stop.details.reason_code == "confident"
    running = tuple(s for s in GRID if s not in {t.shape for t in trainings})[:3]
    assert stop.confidence is not None  # (below: a margin for the Monte Carlo draws)
    sure = Settings(max_trainings=len(GRID), confidence=stop.confidence - 0.1)
    act = decide(problem(goal, floor), Evidence(tuple(trainings), running), sure)
    assert isinstance(act, Stop) and act.details.reason_code == "confident"
    assert act.answer == stop.answer


def test_stopped_trainings_are_evidence_not_failures_nor_answers() -> None:
    design = initial_design(GRID, 5)
    trainings = [Training(s, surface(s)) for s in design]
    trainings.append(Training(design[0], surface(design[0])))
    target = next(s for s in (Shape(34, 3.0), Shape(28, 3.0)) if s not in design)
    i = list(GRID).index(target)
    stopped = [Training(target, None, surface(target) - 8.0, 1.0)] * 3
    assert stopped[0].partial and not Training(target, None).partial
    base = Evidence(tuple(trainings))
    ev = Evidence(tuple(trainings + stopped))
    without = decide(problem(), base, Settings(max_trainings=len(base.trainings)))
    final = decide(problem(), ev, Settings(max_trainings=len(ev.trainings), max_attempts=2))
    assert isinstance(without, Stop) and isinstance(final, Stop)
    assert final.answer != target  # never the answer: it has no measured accuracy
    assert final.details["posterior_mean"][i] < without.details["posterior_mean"][i] - 1.0
    assert final.details["stopped_early"] == [{"shape": [target.depth, target.width],
                                               "projected": [surface(target) - 8.0] * 3}]
    # three stops with max_attempts 2: not failures, so not given up (it may be trained later)
    assert final.details["failed"] == []


def test_a_stopped_training_forecast_high_raises_the_posterior() -> None:
    # two-sided: a forecast above the posterior is evidence too (it was only a bound before)
    design = initial_design(GRID, 5)
    trainings = [Training(s, surface(s)) for s in design]
    trainings.append(Training(design[0], surface(design[0])))
    target = next(s for s in (Shape(34, 3.0), Shape(28, 3.0)) if s not in design)
    i = list(GRID).index(target)
    stopped = [Training(target, None, surface(target) + 3.0, 0.5, fraction=0.4)] * 2
    base = Evidence(tuple(trainings))
    ev = Evidence(tuple(trainings + stopped))
    without = decide(problem(), base, Settings(max_trainings=len(base.trainings)))
    final = decide(problem(), ev, Settings(max_trainings=len(ev.trainings)))
    assert isinstance(without, Stop) and isinstance(final, Stop)
    assert final.details["posterior_mean"][i] > without.details["posterior_mean"][i] + 1.0


def test_a_stopped_design_shape_is_not_proposed_again_as_initial() -> None:
    design = initial_design(GRID, 5)
    ev = Evidence((Training(design[0], 90.0), Training(design[1], None, 70.0, 2.0)))
    act = decide(problem(), ev, Settings())
    assert isinstance(act, Train) and act.stage == "initial"
    assert set(act.shapes) == set(design[2:])


# ------------------------------------------------------------------ an answer at any budget ----
def _budget_stops(floor: float, budget: int, seeds: range, noise: float = 1.0) -> list:
    return [simulate(problem("size", floor), Settings(max_trainings=budget), noise=noise,
                     seed=seed) for seed in seeds]


def test_budget_end_answers_with_the_best_supported_shape() -> None:
    runs = _budget_stops(95.0, 8, range(8))
    unconfirmed = [(stop, tr) for stop, tr, _ in runs if stop.status == "unconfirmed"]
    assert unconfirmed, [stop.status for stop, _, _ in runs]
    for stop, trainings in unconfirmed:
        assert stop.answer in {t.shape for t in trainings}  # always a trained shape
        assert stop.details["reason_code"] == "budget"
        own = np.mean([t.value for t in trainings if t.shape == stop.answer])
        assert 0.5 <= stop.confidence <= 1.0 or (0.0 <= stop.confidence < 0.5 and own >= 95.0)
        if "more likely right answer" not in stop.reason:  # nothing confirmed at all
            assert stop.confidence < 0.9
        info = stop.details["unconfirmed"]
        assert info["p_floor"] == stop.confidence == stop.details["answer_probability"]
        assert 0.0 <= info["p_confirm_next"] <= 1.0
        assert "not confirmed" in stop.reason and "one more training of" in stop.reason
        more = 6 - sum(t.shape == stop.answer for t in trainings)  # the most on one shape
        if more > 1:  # more trainings confirm it more often than one
            assert info["more"] == more
            assert info["p_confirm_next"] <= info["p_confirm_more"] <= 1.0
            assert f"; {more} more with probability {info['p_confirm_more']:.2f}" in stop.reason
        assert "budget of 8 trainings spent;" in stop.reason


@pytest.mark.parametrize("measured, status", [(96.1, "unconfirmed"),
                                               (95.9, "floor_not_reached")])
def test_a_shape_measured_above_the_floor_is_a_plausible_answer(measured: float,
                                                                status: str) -> None:
    # every shape's surface is below the floor 96; one shape, measured once above it, is
    # pulled below P = 0.5 by its neighbours: its own measurement still makes it a plausible
    # answer at the budget's end (answered unconfirmed, with its low probability); measured
    # below the floor, nothing plausibly meets it
    floor, odd = 96.0, Shape(16, 1.0)
    trainings = [Training(s, surface(s)) for s in GRID if s != odd]
    trainings.append(Training(odd, measured))
    stop = decide(problem("size", floor), Evidence(tuple(trainings)),
                  Settings(max_trainings=len(trainings)))
    assert isinstance(stop, Stop) and stop.status == status
    if status == "unconfirmed":
        assert stop.answer == odd and stop.confidence < 0.5
        assert f"P(accuracy ≥ {floor:g}) = {stop.confidence:.2f} (not confirmed)" in stop.reason
    else:
        assert stop.answer is None and "or a measured mean at or above it" in stop.reason


def test_budget_stop_answers_the_cheaper_shape_the_stopping_rule_favours() -> None:
    # the budget ends with a large shape confirmed to meet the floor but not as the cheapest:
    # a cheaper trained shape that the stopping rule's own probability favours is answered
    # instead, unconfirmed (answering the large one as settled hid the likelier right answer)
    from optuna_shape.policy.adaptive import Search, min_cost

    floor = 95.0
    moved = [(stop, tr) for stop, tr, _ in _budget_stops(floor, 8, range(8))
             if "more likely right answer" in stop.reason]
    assert moved
    for stop, trainings in moved:
        assert stop.status == "unconfirmed" and stop.answer in {t.shape for t in trainings}
        own = [t.value for t in trainings if t.shape == stop.answer]
        assert np.mean(own) >= floor and stop.confidence >= 0.5
        assert stop.details["answer_probability"] == stop.confidence
        search = Search(problem("size", floor), Evidence(tuple(trainings)),
                        Settings(max_trainings=8))
        post = search.fit()
        confirmed = min_cost.current_answer(search, post)
        assert confirmed is not None and search.cost(stop.answer) < search.cost(confirmed)
        mean, std = post.predict(search.feasible)
        p_new = min_cost.p_cheapest(search, post, mean, std, stop.answer)
        assert p_new > min_cost.p_cheapest(search, post, mean, std, confirmed)
        assert f"{confirmed} meets the floor" in stop.reason


def test_no_answer_only_when_nothing_plausibly_meets_the_floor() -> None:
    for stop, _, _ in _budget_stops(99.0, 7, range(3)):  # far above every shape
        assert stop.status == "floor_not_reached" and stop.answer is None
        assert "nor plausibly meets it" in stop.reason


def test_last_training_of_the_budget_goes_to_the_best_supported_shape() -> None:
    # after the design and its repeat, nothing is confirmed: the one training left must go to
    # a shape that plausibly meets the floor, not to a cheap long shot
    floor = 95.0
    design = initial_design(GRID, 5)
    rng = np.random.default_rng(0)
    trainings = [Training(s, surface(s) + rng.normal(0, 1.0)) for s in design]
    trainings.append(Training(design[0], surface(design[0]) + rng.normal(0, 1.0)))
    act = decide(problem("size", floor), Evidence(tuple(trainings)), Settings(max_trainings=7))
    assert isinstance(act, Train) and len(act.shapes) == 1
    assert act.reason.startswith("last training of the budget")
    post = ShapePosterior(GRID).fit([t.shape for t in trainings], [t.value for t in trainings])
    mean, std = post.predict(GRID)
    p = dict(zip(GRID, norm.sf((floor - mean) / std)))
    assert p[act.shapes[0]] >= max(p.values()) - 0.1 - 1e-9


# ------------------------------------------------- min-cost acquisition: the confirming horizon
def _design_evidence() -> Evidence:
    """A spread design and one repeat of its largest corner, seed noise 0.6."""
    rng = np.random.default_rng(0)
    design = [Shape(22, 1.0), Shape(10, 0.25), Shape(34, 0.25), Shape(10, 3.0), Shape(34, 3.0),
              Shape(34, 3.0)]
    return Evidence(tuple(Training(s, surface(s) + rng.normal(0, 0.6)) for s in design))


def _near_floor_search(max_trainings: int | None = None):  # noqa: ANN202
    from optuna_shape.policy.adaptive import Search

    floor = 95.0  # cheap shapes sit within a noise std of it, the largest well above it
    search = Search(problem("size", floor), _design_evidence(),
                    Settings(max_trainings=max_trainings))
    return search, search.fit()


def test_p_eligible_grows_with_the_trainings_spent_on_a_shape() -> None:
    from optuna_shape.policy.adaptive.answers import p_eligible_after

    search, post = _near_floor_search()
    mean, std = post.predict(search.feasible)
    one = p_eligible_after(search, post, mean, std)
    assert np.allclose(one, p_eligible_after(search, post, mean, std, k=1.0))
    five = p_eligible_after(search, post, mean, std, k=5.0)
    pf = search.p_floor(mean, std)
    # more trainings confirm more often, and never beyond the chance of meeting the floor
    assert np.all(five >= one - 1e-12) and np.all(five <= pf + 1e-12)
    near = (mean < search.floor + 0.5) & (mean > search.floor - 0.5)
    assert near.any() and np.all(five[near] > one[near])


def test_confirm_horizon_is_what_the_budget_can_still_spend_on_a_shape() -> None:
    from optuna_shape.policy.adaptive import MAX_REPEATS
    from optuna_shape.policy.adaptive.min_cost import confirm_horizon

    search, _ = _near_floor_search()
    k = dict(zip(search.feasible, confirm_horizon(search), strict=True))
    room = search.budget.room()
    assert k[Shape(16, 1.0)] == min(room, MAX_REPEATS)  # untried
    assert k[Shape(34, 3.0)] == min(room, MAX_REPEATS - 2)  # trained twice
    tight, _ = _near_floor_search(max_trainings=7)  # one training left: one training's chance
    assert np.all(confirm_horizon(tight) == 1.0)


def test_long_budget_values_a_cheap_shape_near_the_floor_over_one_training() -> None:
    # a cheap shape within a noise std of the floor is confirmed by several trainings, not one:
    # valued over what the budget can still spend on it, it is picked before a larger shape
    # whose one-training chance is higher (valued by one training, the search climbed to the
    # large shapes and answered many times the smallest complying size)
    from optuna_shape.policy.adaptive import min_cost

    search, post = _near_floor_search()
    current = min_cost.current_answer(search, post)
    assert current is not None
    pick, _, _ = min_cost.pick(search, post, current)
    orig = min_cost.confirm_horizon
    try:
        min_cost.confirm_horizon = lambda s: np.ones(len(s.feasible))  # one training's chance
        one, _, _ = min_cost.pick(search, post, current)
    finally:
        min_cost.confirm_horizon = orig
    assert pick is not None and one is not None
    assert search.cost(pick) < search.cost(one), (pick, one)


def test_a_long_shot_stopped_early_is_not_tried_again() -> None:
    # an untried cheap shape far below the floor is still a long shot worth a training; once a
    # training of it was stopped early on a forecast far below the floor, that is evidence like
    # a full training and the shape is not tried again (a replayed search tried one such
    # shape three times, each stopped after 3 of 10 epochs and counted against the cap)
    from optuna_shape.policy.adaptive import Search, min_cost

    search, post = _near_floor_search()
    current = min_cost.current_answer(search, post)
    long_shot = Shape(16, 0.25)
    i = search.feasible.index(long_shot)
    assert search.cost(long_shot) < search.cost(current)
    score, fpf, _, _, _ = min_cost.acquisition(search, post, current)
    assert np.isfinite(score[i])  # untried: a long shot
    stopped = Training(long_shot, None, surface(long_shot) - 1.0, 0.8, fraction=0.3)
    ev = Evidence(search.evidence.trainings + (stopped,))
    after = Search(search.problem, ev, search.settings)
    post2 = after.fit()
    current2 = min_cost.current_answer(after, post2)
    score2, fpf2, _, _, _ = min_cost.acquisition(after, post2, current2)
    assert fpf2[i] <= 1.0 - after.conf
    assert score2[i] == -np.inf


def test_an_accuracy_search_does_not_try_again_a_shape_stopped_far_below_the_best() -> None:
    # the same rule for the accuracy goal: a replayed search started a narrow shape again after
    # its first training had been stopped on a forecast 2.2 points (1.4 std) under the best,
    # and the second was stopped too, one of the trainings cap's slots spent on nothing
    from optuna_shape.policy.adaptive import Search, accuracy

    ev = _design_evidence()
    search = Search(problem(), ev, Settings())
    long_shot = Shape(16, 0.25)
    i = search.feasible.index(long_shot)
    ei, _, _, _ = accuracy.acquisition(search, search.fit())
    assert ei[i] > 0.0  # untried: a long shot
    stopped = Training(long_shot, None, surface(long_shot) - 1.0, 0.8, fraction=0.3)
    after = Search(search.problem, Evidence(ev.trainings + (stopped,)), search.settings)
    ei2, fmean, fstd, best = accuracy.acquisition(after, after.fit())
    assert norm.sf((best - fmean[i]) / fstd[i]) <= 1.0 - after.conf
    assert ei2[i] == 0.0
    assert np.count_nonzero(ei2) > len(after.feasible) // 2  # untried shapes keep their value


# ---------------------------------------------------------------- batches for idle workers
def _after_design(goal: str = "accuracy", floor: float | None = None) -> tuple[Problem, Evidence]:
    prob = problem(goal, floor)
    rng = np.random.default_rng(3)
    design = initial_design(GRID, 5)
    ev = tuple(Training(s, surface(s) + rng.normal(0, 0.5)) for s in design)
    ev += (Training(design[0], surface(design[0]) + rng.normal(0, 0.5)),)
    return prob, Evidence(ev)


@pytest.mark.parametrize(("goal", "floor"), [("accuracy", None), ("size", 94.0)])
def test_idle_workers_get_a_diverse_batch_in_one_decision(goal: str, floor: float | None
                                                          ) -> None:
    prob, ev = _after_design(goal, floor)
    one = decide(prob, ev, Settings(), slots=1)
    four = decide(prob, ev, Settings(), slots=4)
    assert isinstance(one, Train) and isinstance(four, Train)
    assert len(one.shapes) == 1 and len(four.shapes) == 4
    assert four.shapes[0] == one.shapes[0]  # the first pick is what one worker would train
    assert len(set(four.shapes)) == 4  # each next pick sees the earlier ones as running
    assert set(four.predictions) == set(four.shapes)
    assert decide(prob, ev, Settings(), slots=4).shapes == four.shapes  # deterministic


def test_a_batch_never_exceeds_the_trainings_cap() -> None:
    prob, ev = _after_design()
    act = decide(prob, ev, Settings(max_trainings=len(ev.trainings) + 2), slots=8)
    assert isinstance(act, Train) and len(act.shapes) == 2


def test_idle_workers_widen_the_initial_design_up_to_half_the_cap() -> None:
    sett = Settings(max_trainings=16)
    act = decide(problem(), Evidence(), sett, slots=12)
    assert isinstance(act, Train) and act.stage == "initial"
    assert len(act.shapes) == 8 and len(set(act.shapes)) == 8  # max(n_initial, 16 // 2)
    assert list(act.shapes[:5]) == initial_design(GRID, 5)  # the one-worker design first
    # the design is being trained and idle workers ask again: more spread shapes, same cap
    ev = Evidence(pending=act.shapes[:5])
    more = decide(problem(), ev, sett, slots=6)
    assert isinstance(more, Train) and len(more.shapes) == 3
    assert not set(more.shapes) & set(act.shapes[:5])
    assert isinstance(decide(problem(), Evidence(pending=act.shapes), sett, slots=6), Wait)


def _async_search(n: int, goal: str, floor: float | None, seed: int, max_trainings: int
                  ) -> list[tuple[Evidence, int, object]]:
    """``n`` workers; trainings finish one at a time (oldest first) and the idle workers get
    one decision; returns every (evidence, idle workers, action) until the stop."""
    from optuna_shape.policy.adaptive.search import MAX_REPEATS

    rng = np.random.default_rng(seed)
    prob, sett = problem(goal, floor), Settings(max_trainings=max_trainings)
    done: list[Training] = []
    running: list[Shape] = []
    seen: list[tuple[Evidence, int, object]] = []
    for _ in range(400):
        idle = n - len(running)
        if idle:
            ev = Evidence(tuple(done), tuple(running))
            act = decide(prob, ev, sett, slots=idle)
            seen.append((ev, idle, act))
            if isinstance(act, Stop):
                return seen
            if isinstance(act, Train):
                for s in act.shapes:
                    if len(running) < n and (s not in running or s in act.alongside):
                        running.append(s)
                        assert sum(t.shape == s for t in done) + running.count(s) <= MAX_REPEATS
        s = running.pop(0)
        done.append(Training(s, surface(s) + rng.normal(0, 0.5)))
    raise AssertionError("no stop")


def test_idle_workers_train_a_borderline_running_shape_alongside_only_when_nothing_else_is_worth_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from optuna_shape.policy.adaptive import batches

    prob, sett = problem("size", 94.0), Settings(max_trainings=80)
    found = 0
    for seed in range(4):
        for ev, idle, act in _async_search(16, "size", 94.0, seed, 80):
            if not isinstance(act, Train) or not act.alongside:
                continue
            found += 1
            assert act.alongside <= set(ev.pending) and act.alongside <= set(act.shapes)
            assert len(act.shapes) == len(set(act.shapes)) <= idle  # each shape once
            with monkeypatch.context() as m:  # the same decision without the rule
                m.setattr(batches, "_may_go_alongside", lambda search: False)
                before = decide(prob, ev, sett, slots=idle)
            if isinstance(before, Wait):
                assert set(act.shapes) == act.alongside
            else:  # it only extends a batch that had run out of new shapes
                assert isinstance(before, Train) and not before.alongside
                assert act.shapes[:len(before.shapes)] == before.shapes
                assert set(act.shapes[len(before.shapes):]) == act.alongside
    assert found >= 20


def test_trainings_alongside_leave_the_cap_room_for_what_follows_the_running_ones() -> None:
    found = 0
    for seed in range(4):
        for ev, _, act in _async_search(12, "size", 94.0, seed, 40):
            if isinstance(act, Train) and act.alongside:
                found += 1
                assert len(ev.pending) < 40 - len(ev.trainings) - len(ev.pending)
    assert found >= 1


def test_waiting_workers_are_told_when_the_cap_holds_back_side_by_side_repeats() -> None:
    prob = problem("size", 94.0)
    told = 0
    for seed in range(4):
        for ev, idle, act in _async_search(12, "size", 94.0, seed, 40):
            if not isinstance(act, Wait):
                continue
            room = 40 - len(ev.trainings) - len(ev.pending)
            if "trainings cap" not in act.reason:
                continue
            told += 1
            assert len(ev.pending) >= room, act.reason  # the cap, not a lack of candidates
            assert f"({max(room, 0)} left for {len(ev.pending)} running)" in act.reason
            # with room under the cap the same moment gives the idle workers trainings
            assert isinstance(decide(prob, ev, Settings(max_trainings=400), slots=idle), Train)
            # and, asked directly, the room is what the reason names: none with room enough
            for cap, held in ((40, True), (400, False)):
                search = decision(prob, ev, Settings(max_trainings=cap))
                post = search.fit()
                why = cap_holds_back(search, post, evaluate(search, post).answer)
                assert (why is not None) == held and not search.alongside, why
    assert told >= 1


def test_the_default_trainings_cap_grows_with_the_workers_seen() -> None:
    # one worker's cap on this grid: max(5 + 3, ceil(30 / 3)) = 10 trainings
    rng = np.random.default_rng(0)
    trainings = tuple(Training(s, surface(s) + rng.normal(0, 2.0))
                      for s in (GRID[0], GRID[7], GRID[14], GRID[21], GRID[29]) * 2)
    base, per = default_max_trainings(len(GRID), 5), TRAININGS_PER_WORKER
    assert base == 10 and default_max_trainings(len(GRID), 5, workers=4) == 10 + 3 * per
    assert default_max_trainings(len(GRID), 5, workers=64) == 2 * len(GRID)  # at most 2 n
    one = decide(problem(), Evidence(trainings), Settings())
    assert isinstance(one, Stop) and one.details["reason_code"] == "budget"
    assert one.details["max_trainings"] == base
    four = decision(problem(), Evidence(trainings, workers=4), Settings())
    assert four.budget.max_trainings == base + 3 * per
    assert not isinstance(decide(problem(), Evidence(trainings, workers=4), Settings()), Stop)
    # a cap the user set stays as set, and a compute budget keeps its own cap
    assert decision(problem(), Evidence(trainings, workers=4),
                    Settings(max_trainings=10)).budget.max_trainings == 10
    assert decision(problem(), Evidence(trainings, workers=4),
                    Settings(budget=1e6)).budget.max_trainings == 2 * len(GRID)


def test_the_posterior_of_a_decision_has_the_problem_s_trend() -> None:
    from optuna_shape.policy.adaptive import Search

    for trend in ("paper", "smooth"):
        prob = dataclasses.replace(problem(), trend=trend)
        assert Search(prob, _design_evidence(), Settings()).fit().trend == trend
