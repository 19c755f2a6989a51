"""The paper's Algorithm 1 as a pure decision: sample → fit → verify, without Optuna."""

from __future__ import annotations

import random

import pytest

from optuna_shape.policy import Evidence, Problem, Settings, Stop, Train, Training, Wait, decide
from optuna_shape.policy.paper import planned_shapes
from optuna_shape.space.shape import Shape

SHAPES = tuple(Shape(d, w) for w in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0) for d in (10, 16, 22, 28, 34))


def acc(s: Shape) -> float:
    return 99.2 - 1.1 / s.width - 14.0 / s.depth + 0.05 / s.width**2


def dented(s: Shape) -> float:
    """``acc`` with the largest shape (always in the interval sample) far below its trend, so
    verification has to train an untried candidate."""
    return 90.0 if s == Shape(34, 3.0) else acc(s)


def problem(goal="accuracy", floor=None, shapes=SHAPES) -> Problem:
    sizes = {s: s.depth * s.width**2 / 100 for s in shapes}
    costs = sizes if goal == "size" else {}
    return Problem(tuple(shapes), sizes, costs, goal, floor)


SETTINGS = Settings(mode="paper", strategy=8, sampling="interval", refit=True, max_attempts=2)


def run(prob: Problem, settings: Settings = SETTINGS, value=acc, fail=()) -> tuple[Stop, list]:
    """Drive the policy to its end, one training at a time."""
    trainings: list[Training] = []
    fails = dict.fromkeys(fail, 0)
    for _ in range(200):
        action = decide(prob, Evidence(tuple(trainings)), settings)
        if isinstance(action, Stop):
            return action, trainings
        assert isinstance(action, Train), action
        s = action.shapes[0]
        if s in fails and fails[s] < 5:
            fails[s] += 1
            trainings.append(Training(s, None))
        else:
            trainings.append(Training(s, value(s)))
    raise AssertionError("no stop")


def test_sample_stage_proposes_every_planned_shape_not_pending():
    prob = problem()
    plan = planned_shapes(prob, SETTINGS)
    assert len(plan) == 8
    a = decide(prob, Evidence(), SETTINGS)
    assert isinstance(a, Train) and a.stage == "sample" and list(a.shapes) == plan
    a = decide(prob, Evidence(pending=tuple(plan[:3])), SETTINGS)
    assert list(a.shapes) == plan[3:]
    a = decide(prob, Evidence(pending=tuple(plan)), SETTINGS)
    assert isinstance(a, Wait)


def test_failed_sample_is_retried_until_max_attempts():
    prob = problem()
    plan = planned_shapes(prob, SETTINGS)
    done = tuple(Training(s, dented(s)) for s in plan[1:])
    a = decide(prob, Evidence(done + (Training(plan[0], None),)), SETTINGS)
    assert isinstance(a, Train) and a.shapes == (plan[0],)
    a = decide(prob, Evidence(done + (Training(plan[0], None),) * 2), SETTINGS)
    assert isinstance(a, Train) and a.stage == "verify"


def test_verification_is_serial_and_the_answer_is_a_trained_shape():
    prob = problem()
    plan = planned_shapes(prob, SETTINGS)
    wider = Settings(mode="paper", strategy=10, sampling="wider")  # the narrowest shapes
    plan = planned_shapes(prob, wider)
    done = tuple(Training(s, acc(s)) for s in plan)
    a = decide(prob, Evidence(done), wider)
    assert isinstance(a, Train) and a.stage == "verify" and len(a.shapes) == 1
    assert a.shapes[0] in a.predictions and a.shapes[0] not in plan
    assert isinstance(decide(prob, Evidence(done, a.shapes), wider), Wait)
    stop, trainings = run(prob, wider)
    assert stop.status == "answered" and stop.answer in {t.shape for t in trainings}
    assert acc(stop.answer) >= max(acc(s) for s in SHAPES) - 0.2


@pytest.mark.parametrize("refit", [True, False])
def test_refit_counts_fits_after_missed_verifications(refit):
    prob = problem(goal="size", floor=max(acc(s) for s in SHAPES) - 0.3)
    settings = Settings(mode="paper", strategy=8, refit=refit)
    plan = set(planned_shapes(prob, settings))
    total = 0
    for seed in range(8):
        rng = random.Random(seed)
        noise = {s: rng.gauss(0, 0.4) for s in SHAPES}
        stop, trainings = run(prob, settings, value=lambda s, n=noise: acc(s) + n[s])
        missed = [t for t in trainings if t.shape not in plan and t.value < prob.min_accuracy]
        total += len(missed)
        assert stop.details["fit"]["fits"] == (1 + len(missed) if refit else 1)
        if stop.answer is not None:
            assert acc(stop.answer) + noise[stop.answer] >= prob.min_accuracy
    assert total > 0, "the scenario must miss verifications"


def test_no_feasible_no_goal_and_all_failed():
    assert decide(problem(shapes=()), Evidence(), SETTINGS).status == "no_feasible"
    stop, _ = run(problem(goal=None))
    assert stop.status == "complying_set" and stop.answer is None
    prob = problem()
    stop, _ = run(prob, fail=SHAPES)
    assert stop.status == "all_failed" and stop.answer is None


def test_decisions_are_deterministic():
    prob = problem(goal="size", floor=97.0)
    plan = planned_shapes(prob, SETTINGS)
    ev = Evidence(tuple(Training(s, acc(s)) for s in plan))
    assert decide(prob, ev, SETTINGS) == decide(prob, ev, SETTINGS)
