"""The frontier goal's pure rules: front membership, staircase area, expected gain, decisions."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from optuna_shape.policy import Evidence, Problem, Settings, Stop, Train, Training, Wait
from optuna_shape.policy import frontier as F
from optuna_shape.policy.stop import FrontPoint, SearchStatus, StopDetails
from optuna_shape.space.shape import Shape

SHAPES = [Shape(d, w) for d in (10, 16, 22, 28, 34) for w in (0.25, 0.5, 1.0, 1.5, 2.0)]
SIZE = {s: s.depth * s.width**2 for s in SHAPES}


def truth(s: Shape) -> float:
    return 80 + 4 * np.log(s.depth * s.width) - (s.width > 1.2) * s.depth / 8


def brute_front(costs, acc):
    n = len(costs)
    return [not any((costs[j] <= costs[i] and acc[j] >= acc[i]
                     and (costs[j] < costs[i] or acc[j] > acc[i])) for j in range(n) if j != i)
            for i in range(n)]


def test_front_mask_matches_the_definition_on_random_points_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        costs = rng.integers(0, 4, n).astype(float)  # many equal costs
        acc = rng.integers(0, 4, n).astype(float)  # and equal accuracies
        got = F.front_mask(costs, acc).tolist()
        want = brute_front(costs.tolist(), acc.tolist())
        # equal cost and equal accuracy: both are "not dominated"; the mask keeps both too
        assert got == want, (costs, acc)


def test_front_mask_works_per_draw():
    costs = np.array([1.0, 2.0, 3.0])
    draws = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert F.front_mask(costs, draws).tolist() == [[True, True, True], [True, False, False]]


def test_staircase_area_is_the_dominated_area():
    assert F.staircase_area([0.0, 0.5], [1.0, 2.0], 1.0, 0.0) == pytest.approx(1.5)
    # a dominated point adds nothing; a point beyond the reference adds nothing
    assert F.staircase_area([0.0, 0.5, 0.6, 1.2], [1.0, 2.0, 1.5, 9.0], 1.0, 0.0) == \
        pytest.approx(1.5)
    assert F.staircase_area([], [], 1.0, 0.0) == 0.0


def test_expected_gain_agrees_with_monte_carlo_area_increase():
    rng = np.random.default_rng(0)
    tf, af = np.array([0.1, 0.4, 0.8]), np.array([1.0, 1.5, 2.2])
    base = F.staircase_area(tf, af, 1.1, 0.5)
    for t0, m, s in [(0.0, 1.2, 0.3), (0.5, 1.6, 0.5), (0.9, 1.0, 0.2), (0.3, 1.45, 0.05)]:
        draws = rng.normal(m, s, 20000)
        mc = np.mean([F.staircase_area(np.append(tf, t0), np.append(af, a), 1.1, 0.5) - base
                      for a in draws])
        got = F.expected_area_gain(np.array([t0]), np.array([m]), np.array([s]), tf, af,
                                   1.1, 0.5)[0]
        assert got == pytest.approx(mc, abs=0.01 + 0.03 * mc)


def run_search(max_trainings=20, seed=0, slots=1, noise=0.5):
    problem = Problem(feasible=tuple(SHAPES), sizes=SIZE, costs=SIZE, goal="frontier")
    settings = Settings(max_trainings=max_trainings, seed=seed)
    rng = np.random.default_rng(seed)
    done: list[Training] = []
    trained: list[Shape] = []
    for _ in range(3 * max_trainings):
        action = F.decide(problem, Evidence(tuple(done)), settings, slots)
        if not isinstance(action, Train):
            return action, trained
        for s in action.shapes[:slots]:
            done.append(Training(s, float(truth(s) + rng.normal(0, noise))))
            trained.append(s)
    raise AssertionError("the search did not stop")


def test_search_stops_within_its_trainings_and_returns_trained_front_shapes():
    stop, trained = run_search(max_trainings=20)
    assert isinstance(stop, Stop) and stop.answer is None
    assert len(trained) <= 20
    front = [d for d in stop.details.front]
    assert front and all(q.shape in trained and q.p_front >= F.FRONT_THRESHOLD for q in front)
    assert [q.cost for q in front] == sorted(q.cost for q in front)
    true = F.front_mask(np.array([SIZE[s] for s in SHAPES]),
                        np.array([truth(s) for s in SHAPES]))
    on_true = {s for s, m in zip(SHAPES, true, strict=True) if m}
    # most of what is returned is on the true front, and the cheapest shape is found
    assert sum(q.shape in on_true for q in front) >= 0.7 * len(front)
    assert min(SHAPES, key=SIZE.get) in {q.shape for q in front}
    assert stop.status == SearchStatus.FRONTIER


def test_the_front_area_beats_random_trainings_of_the_same_number():
    t, t_ref = F.log_cost_scale([SIZE[s] for s in SHAPES])
    idx = {s: i for i, s in enumerate(SHAPES)}
    a_ref = min(truth(s) for s in SHAPES)

    def area(shapes):
        shapes = set(shapes)
        return F.staircase_area([t[idx[s]] for s in shapes], [truth(s) for s in shapes],
                                t_ref, a_ref)

    ours, rand = [], []
    for seed in range(4):
        stop, trained = run_search(max_trainings=14, seed=seed)
        ours.append(area(q.shape for q in stop.details.front))
        pick = np.random.default_rng(seed).choice(len(SHAPES), len(set(trained)), replace=False)
        rand.append(area(SHAPES[i] for i in pick))
    assert np.mean(ours) > np.mean(rand)


def test_a_batch_proposes_distinct_shapes_and_pending_shapes_are_not_proposed_again():
    problem = Problem(feasible=tuple(SHAPES), sizes=SIZE, costs=SIZE, goal="frontier")
    settings = Settings(max_trainings=30)
    done = tuple(Training(s, float(truth(s))) for s in SHAPES[::4])
    action = F.decide(problem, Evidence(done), settings, slots=4)
    assert isinstance(action, Train) and len(set(action.shapes)) == len(action.shapes) == 4
    again = F.decide(problem, Evidence(done, pending=action.shapes), settings, slots=4)
    assert isinstance(again, Train) and not set(again.shapes) & set(action.shapes)


def test_decisions_are_deterministic_and_wait_for_running_trainings_at_the_end():
    a, _ = run_search(max_trainings=12, seed=5)
    b, _ = run_search(max_trainings=12, seed=5)
    assert a.details == b.details
    problem = Problem(feasible=tuple(SHAPES), sizes=SIZE, costs=SIZE, goal="frontier")
    done = tuple(Training(s, float(truth(s))) for s in SHAPES[:11])
    action = F.decide(problem, Evidence(done, pending=(SHAPES[20],)),
                      Settings(max_trainings=12))
    assert isinstance(action, Wait)


def test_all_failed_and_no_feasible():
    problem = Problem(feasible=tuple(SHAPES[:3]), sizes=SIZE, costs=SIZE, goal="frontier")
    failed = tuple(Training(s, None) for s, _ in itertools.product(SHAPES[:3], range(2)))
    stop = F.decide(problem, Evidence(failed), Settings(max_trainings=10))
    assert isinstance(stop, Stop) and stop.status == SearchStatus.ALL_FAILED
    empty = Problem(feasible=(), sizes={}, costs={}, goal="frontier")
    assert F.decide(empty, Evidence(), Settings()).status == SearchStatus.NO_FEASIBLE


def test_front_points_and_probabilities_round_trip_through_the_stored_details():
    stop, _ = run_search(max_trainings=10)
    assert stop.status == SearchStatus.FRONTIER and stop.details.front
    again = StopDetails.from_json(json.loads(json.dumps(stop.details.to_json())))
    assert again.front == stop.details.front and again.p_front == stop.details.p_front
    assert not again.extra
    assert FrontPoint.from_json(FrontPoint(Shape(16, 0.5), 0.9312, 97.25, 2, 1.75).to_json()) \
        == FrontPoint(Shape(16, 0.5), 0.9312, 97.25, 2, 1.75)


def test_with_a_floor_the_front_is_above_it():
    floor = float(np.median([truth(s) for s in SHAPES]))
    problem = Problem(feasible=tuple(SHAPES), sizes=SIZE, costs=SIZE, goal="frontier",
                      min_accuracy=floor)
    rng = np.random.default_rng(1)
    done: list[Training] = []
    for _ in range(60):
        action = F.decide(problem, Evidence(tuple(done)), Settings(max_trainings=16))
        if not isinstance(action, Train):
            break
        s = action.shapes[0]
        done.append(Training(s, float(truth(s) + rng.normal(0, 0.5))))
    assert isinstance(action, Stop) and action.details.front
    assert all(q.mean >= floor for q in action.details.front)


def test_early_stopping_lets_every_frontier_training_run_to_the_end():
    from optuna_shape.policy.fidelity import keep_training

    problem = Problem(feasible=tuple(SHAPES), sizes=SIZE, costs=SIZE, goal="frontier")
    curve = tuple(float(60 + 3 * k) for k in range(10))
    done = tuple(Training(s, curve[-1], curve=curve) for s in SHAPES[:8])
    verdict = keep_training(problem, Evidence(done, pending=(SHAPES[9],)), Settings(),
                            SHAPES[9], [10.0, 11.0, 12.0], 10)
    assert not verdict.stop and "frontier" in verdict.reason
