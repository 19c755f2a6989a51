"""The adaptive policy under a compute budget: trainings charge seconds, the search starts only
what the budget pays for, and cheap shapes that teach as much go first."""

from __future__ import annotations

import numpy as np

from optuna_shape.policy import Evidence, Problem, Settings, Stop, Train, Training, Wait, decide
from optuna_shape.policy.adaptive import initial_design
from optuna_shape.space.shape import Shape

GRID = tuple(Shape(d, w) for d in (10, 16, 22, 28, 34) for w in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0))
SIZES = {s: s.depth * s.width**2 * 0.01 for s in GRID}


def surface(s: Shape) -> float:
    return 97.0 - 2.0 / s.width - 30.0 / s.depth


def problem(goal: str | None = "accuracy", floor: float | None = None) -> Problem:
    costs = dict(SIZES) if goal in ("size", "latency", "energy") else {}
    return Problem(GRID, dict(SIZES), costs, goal, floor, work=dict(SIZES))


def seconds(s: Shape) -> float:
    return 2.0 + 40.0 * SIZES[s]  # a training's cost grows with the network


def run(sett: Settings, goal: str = "accuracy", floor: float | None = None, seed: int = 0,
        truth=surface) -> tuple[Stop, list[Training]]:
    prob = problem(goal, floor)
    rng = np.random.default_rng(seed)
    done: list[Training] = []
    for _ in range(200):
        act = decide(prob, Evidence(tuple(done)), sett)
        if isinstance(act, Stop):
            return act, done
        assert isinstance(act, Train), act
        for s in act.shapes:
            done.append(Training(s, truth(s) + rng.normal(0, 0.5),
                                 seconds=seconds(s) * float(np.exp(rng.normal(0, 0.1)))))
    raise AssertionError("no stop")


def test_compute_budget_bounds_the_search_and_says_so():
    every = sum(seconds(s) for s in GRID)
    budget = 0.15 * every
    for seed in range(3):
        stop, done = run(Settings(budget=budget, confidence=0.99), seed=seed)
        spent = sum(t.seconds for t in done)
        assert spent <= 1.1 * budget  # only what the predicted cost says fits is started
        if stop.details["reason_code"] == "budget":
            assert "compute budget of" in stop.reason
        c = stop.details["compute"]
        assert c["budget_s"] == round(budget, 3) and c["spent_s"] == round(spent, 3)
        assert 0.5 * every < c["all_feasible_s"] < 2.0 * every


def test_cheap_shapes_that_teach_as_much_go_first():
    # a flat landscape: every shape is worth about as much, so cost decides
    def flat(s: Shape) -> float:
        return 95.0 + 0.05 * s.width

    costs = {}
    for label, sett in (("aware", Settings(budget=1e9, max_trainings=14, confidence=0.999)),
                        ("blind", Settings(max_trainings=14, confidence=0.999))):
        per = []
        for seed in range(3):
            _, done = run(sett, seed=seed, truth=flat)
            per += [t.seconds for t in done[6:]]  # after the design and its repeat
        costs[label] = float(np.mean(per))
    # with costs known the acquisition divides by cost^α: a huge budget keeps α ≈ 1
    assert costs["aware"] < 0.7 * costs["blind"], costs


def _predicted(done: tuple[Training, ...], s: Shape) -> float:
    """The cost model's seconds of a full training of ``s`` after ``done``."""
    from optuna_shape.models.compute import CostObservation, TrainingCost

    return TrainingCost(SIZES, [CostObservation(t.shape, t.seconds, 1.0) for t in done]).mean(s)


def test_running_trainings_are_committed_at_their_predicted_cost():
    prob = problem("accuracy")
    # a flat landscape: any shape is worth a training, so only the compute decides
    done = tuple(Training(s, 95.0 - 0.3 * (-1) ** i, seconds=seconds(s))
                 for i, s in enumerate(initial_design(GRID, 5)))
    spent = sum(t.seconds for t in done)
    big = max(GRID, key=seconds)
    cheapest = min(_predicted(done, s) for s in GRID)
    # what is left pays for nothing once the running big shape is counted: wait, then stop
    sett = Settings(budget=spent + _predicted(done, big) + 0.5 * cheapest)
    act = decide(prob, Evidence(done, pending=(big,)), sett)
    assert isinstance(act, Wait)
    # with one and a half of the cheapest shape's cost left beside it, that shape starts
    sett = Settings(budget=spent + _predicted(done, big) + 1.5 * cheapest)
    assert isinstance(decide(prob, Evidence(done, pending=(big,)), sett), Train)


def test_confirm_horizon_counts_only_the_trainings_the_compute_left_pays_for():
    from optuna_shape.policy.adaptive import Search
    from optuna_shape.policy.adaptive.min_cost import confirm_horizon

    done = tuple(Training(s, surface(s), seconds=seconds(s)) for s in initial_design(GRID, 5))
    spent = sum(t.seconds for t in done)
    cheap, big = min(GRID, key=seconds), max(GRID, key=seconds)
    search = Search(problem("size", 95.0), Evidence(done),
                    Settings(budget=spent + 2.5 * _predicted(done, big)))
    k = dict(zip(search.feasible, confirm_horizon(search), strict=True))
    left = search.budget.compute_left()
    assert k[big] == min(search.budget.room(), left // search.budget.cost_or_zero(big)) == 2
    assert k[cheap] > k[big]


def test_a_design_shape_the_compute_left_cannot_pay_for_does_not_end_the_search():
    # the initial design is trained but for its costliest shape, which costs more than the
    # compute left: the search goes on with the shapes the budget still pays for, and says
    # nothing of a spent budget while most of it is unused
    design = initial_design(GRID, 5)
    big = max(design, key=seconds)
    done = tuple(Training(s, surface(s), seconds=seconds(s)) for s in design if s != big)
    spent = sum(t.seconds for t in done)
    sett = Settings(budget=spent + 0.5 * seconds(big))
    for goal, floor in (("accuracy", None), ("size", 95.0)):
        act = decide(problem(goal, floor), Evidence(done), sett)
        assert isinstance(act, Train), act
        assert big not in act.shapes
        assert all(seconds(s) < 0.5 * seconds(big) for s in act.shapes)


def test_a_size_search_leaves_a_design_corner_over_its_share_of_the_budget_to_the_acquisition():
    # the first training prices the grid; the design's costliest corner costs more than an
    # equal share of the budget among the design's shapes (and less than what is left): a
    # size search starts the rest of the design without it, an accuracy search (whose widest
    # corner is often its answer) starts it too
    design = initial_design(GRID, 5)
    first = design[0]
    done = (Training(first, surface(first), seconds=seconds(first)),)
    big = max(design, key=lambda s: _predicted(done, s))
    budget = 4.0 * _predicted(done, big)  # share = budget / 5 < the corner's cost < left
    for goal, floor, has_big in (("size", 95.0, False), ("accuracy", None, True)):
        act = decide(problem(goal, floor), Evidence(done), Settings(budget=budget))
        assert isinstance(act, Train) and act.stage == "initial", act
        assert (big in act.shapes) is has_big, (goal, act.shapes)
        assert set(act.shapes) - {big} == set(design[1:]) - {big}


def test_the_compute_left_is_not_spent_on_a_training_worth_nothing():
    # the grid's best region is trained and its noise measured; the compute left pays only
    # for the cheapest shapes, far below the best (their expected improvement ~ 0): the search
    # stops on the budget instead of training one of them, and says what is left
    design = initial_design(GRID, 5)
    rng = np.random.default_rng(3)
    good = [Shape(34, 3.0), Shape(28, 3.0), Shape(34, 2.0)]
    done = tuple(Training(s, surface(s) + rng.normal(0, 0.5), seconds=seconds(s))
                 for s in (*design, *good, *good))
    spent = sum(t.seconds for t in done)
    cheap = sorted(GRID, key=seconds)
    assert all(surface(s) < surface(good[0]) - 5.0 for s in cheap[:2])
    sett = Settings(budget=spent + 0.5 * (seconds(cheap[1]) + seconds(cheap[2])))
    act = decide(problem(), Evidence(done), sett)
    assert isinstance(act, Stop), act
    assert act.details["reason_code"] == "budget"
    assert "left pays for no training worth starting" in act.reason


def test_a_first_training_over_the_budget_ends_the_search_and_says_one_training():
    first = initial_design(GRID, 5)[0]
    done = (Training(first, surface(first), seconds=3.0 * seconds(first)),)
    act = decide(problem(), Evidence(done), Settings(budget=2.0 * seconds(first)))
    assert isinstance(act, Stop) and act.details["reason_code"] == "budget", act
    assert "used by 1 training)" in act.reason
