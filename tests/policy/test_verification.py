"""Goal order, accuracy filter and the stage machine (pure functions)."""

import pytest

from optuna_shape import Shape
from optuna_shape.policy.verification import (
    Candidate,
    PlanTrial,
    complying,
    goal_order,
    next_step,
)
from optuna_shape.space.constraints import goal_key

A, B, C, D = Shape(10, 1.0), Shape(16, 1.0), Shape(10, 2.0), Shape(16, 2.0)


def cand(shape, size, pred, lat=None, energy=None, real=None):
    return Candidate(shape, size, lat, energy, pred, 0.1, real)


def test_goal_order():
    cs = [cand(A, 1.0, 90, 3.0, 5.0), cand(B, 2.0, 92, 2.0, 7.0), cand(C, 3.0, 91, 1.0, 6.0)]
    assert [c.shape for c in goal_order(cs, "accuracy")] == [B, C, A]
    assert [c.shape for c in goal_order(cs, "size")] == [A, B, C]
    assert [c.shape for c in goal_order(cs, "latency")] == [C, B, A]
    assert [c.shape for c in goal_order(cs, "energy")] == [A, C, B]
    with pytest.raises(ValueError, match="needs latency"):
        goal_order([cand(A, 1.0, 90)], "latency")
    with pytest.raises(ValueError, match="unknown goal 'speed'"):
        goal_order([], "speed")


def test_goal_order_ties_break_on_accuracy_then_size_then_shape():
    # the one goal order (goal_key): equal cost → higher accuracy; equal accuracy → smaller
    cs = [cand(D, 2.0, 90), cand(C, 2.0, 91), cand(B, 1.0, 91), cand(A, 1.0, 91)]
    assert [c.shape for c in goal_order(cs, "size")] == [A, B, C, D]
    assert [c.shape for c in goal_order(cs, "accuracy")] == [A, B, C, D]
    assert goal_key("size", 91.0, 1.0) < goal_key("size", 90.0, 1.0) < goal_key("size", 99.0, 2.0)
    assert goal_key("accuracy", 91.0, 2.0) < goal_key("accuracy", 90.0, 1.0)
    with pytest.raises(ValueError, match="unknown goal"):
        goal_key("speed", 90.0, 1.0)


def test_complying_uses_real_accuracy_when_trained():
    cs = [cand(A, 1, 95.0, real=93.0), cand(B, 1, 93.0), cand(C, 1, 95.5)]
    assert [c.shape for c in complying(cs, 94.0)] == [C]
    assert len(complying(cs, None)) == 3


def rec(n, state, shape, value=None):
    return PlanTrial(n, state, shape, value)


def test_sample_stage_trains_plan_then_waits_then_fits():
    plan = [A, B]
    assert next_step(plan, [], None, goal="accuracy", min_accuracy=None).shape == A
    step = next_step(plan, [rec(0, "running", A)], None, goal="accuracy", min_accuracy=None)
    assert (step.kind, step.shape, step.stage) == ("train", B, "sample")
    step = next_step(plan, [rec(0, "running", A), rec(1, "complete", B, 90.0)], None,
                     goal="accuracy", min_accuracy=None)
    assert step.kind == "wait"
    step = next_step(plan, [rec(0, "complete", A, 91.0), rec(1, "complete", B, 90.0)], None,
                     goal="accuracy", min_accuracy=None)
    assert step.kind == "fit"


def test_failed_training_is_retried_then_given_up():
    plan = [A]
    recs = [rec(0, "fail", A)]
    assert next_step(plan, recs, None, goal="size", min_accuracy=None, max_attempts=2).shape == A
    recs.append(rec(1, "complete", A, float("nan")))
    assert next_step(plan, recs, None, goal="size", min_accuracy=None,
                     max_attempts=2).kind == "fit"


def test_verification_in_order_until_one_passes():
    done = [rec(0, "complete", A, 90.0), rec(1, "complete", B, 91.0)]
    ranking = [C, D]
    step = next_step([A, B], done, ranking, goal="size", min_accuracy=92.0)
    assert (step.kind, step.shape, step.stage) == ("train", C, "verify")
    running = done + [rec(2, "running", C)]
    assert next_step([A, B], running, ranking, goal="size", min_accuracy=92.0).kind == "wait"
    missed = done + [rec(2, "complete", C, 91.5)]
    assert next_step([A, B], missed, ranking, goal="size", min_accuracy=92.0).shape == D
    ok = missed + [rec(3, "complete", D, 92.5)]
    step = next_step([A, B], ok, ranking, goal="size", min_accuracy=92.0)
    assert (step.kind, step.shape) == ("done", D)


def test_verification_exhausted_and_no_goal():
    done = [rec(0, "complete", A, 90.0)]
    step = next_step([A], done + [rec(1, "complete", C, 80.0)], [C], goal="size",
                     min_accuracy=92.0)
    assert step.kind == "done" and step.shape is None
    step = next_step([A], done, [A, C], goal=None, min_accuracy=None)
    assert step.kind == "done" and step.shape is None and "complying set" in step.reason


def test_an_already_trained_candidate_is_not_retrained():
    done = [rec(0, "complete", A, 95.0), rec(1, "complete", B, 91.0)]
    step = next_step([A, B], done, [A, C], goal="accuracy", min_accuracy=94.0)
    assert (step.kind, step.shape) == ("done", A)


def test_exclude_skips_shapes_claimed_concurrently():
    step = next_step([A, B], [], None, goal="size", min_accuracy=None, exclude=[A])
    assert step.shape == B
    step = next_step([A], [], None, goal="size", min_accuracy=None, exclude=[A])
    assert step.kind == "wait"


def test_accuracy_goal_needs_the_prediction_confirmed():
    from optuna_shape.policy.verification import passes

    assert passes(95.0, goal="accuracy", min_accuracy=None, prediction=(96.0, 1.0))
    assert not passes(93.0, goal="accuracy", min_accuracy=None, prediction=(101.3, 2.5))
    # floors decide for the other goals, as in the paper
    assert passes(93.0, goal="size", min_accuracy=92.0, prediction=(101.3, 2.5))
    assert not passes(91.0, goal="size", min_accuracy=92.0)
    done = [rec(0, "complete", A, 98.0), rec(1, "complete", C, 93.9)]
    preds = {C: (101.3, 2.5), A: (98.0, 0.5)}
    step = next_step([A], done, [C, A], goal="accuracy", min_accuracy=None, predictions=preds)
    assert (step.kind, step.shape) == ("done", A)
