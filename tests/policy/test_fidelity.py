"""How far a training goes: the pure rule on synthetic learning curves."""

from __future__ import annotations

import math

import numpy as np

from optuna_shape.policy import Evidence, Problem, Settings, Training
from optuna_shape.policy.adaptive import initial_design
from optuna_shape.policy.fidelity import keep_training, min_epochs
from optuna_shape.space.shape import Shape

GRID = tuple(Shape(d, w) for d in (10, 16, 22, 28, 34) for w in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0))
SIZES = {s: s.depth * s.width**2 * 0.01 for s in GRID}
E = 10


def final(s: Shape) -> float:
    return 97.0 - 2.0 / s.width - 30.0 / s.depth


def curve(end: float, start: float = 40.0, rate: float = 0.5, n: int = E) -> tuple[float, ...]:
    return tuple(end - (end - start) * math.exp(-rate * e) for e in range(1, n + 1))


def problem(goal: str = "accuracy", floor: float | None = None) -> Problem:
    costs = dict(SIZES) if goal != "accuracy" else {}
    return Problem(GRID, dict(SIZES), costs, goal, floor, work=dict(SIZES))


def evidence(running: Shape, extra: tuple[Training, ...] = ()) -> Evidence:
    rng = np.random.default_rng(0)
    done = []
    for s in initial_design(GRID, 5):
        c = curve(final(s) + rng.normal(0, 0.3))
        done.append(Training(s, c[-1], seconds=1.0 + 10 * SIZES[s], curve=c))
    return Evidence(tuple(done) + extra, pending=(running,))


def finished(shapes: list[Shape]) -> tuple[Training, ...]:
    """Noise-free completed trainings of ``shapes``, one second each."""
    return tuple(Training(s, (c := curve(final(s)))[-1], seconds=1.0, curve=c) for s in shapes)


def fresh_shape() -> Shape:
    trained = set(initial_design(GRID, 5))
    return next(s for s in sorted(GRID, key=lambda s: SIZES[s]) if s not in trained
                and s.width == 0.5)


def test_a_hopeless_training_stops_with_its_forecast() -> None:
    s = fresh_shape()
    doomed = curve(60.0, 20.0)[:4]
    v = keep_training(problem(), evidence(s), Settings(), s, doomed, E)
    assert v.stop, v.reason
    assert v.forecast is not None and v.forecast.mean < 75.0
    # hopeless: under a 1 % chance to beat the current answer
    assert "P(it changes the answer)" in v.reason


def test_a_weak_training_yields_to_a_shape_worth_more_per_compute() -> None:
    s = fresh_shape()
    weak = curve(94.2, 40.0)  # could beat the answer (94.9) only by luck
    assert not keep_training(problem(), evidence(s), Settings(), s, weak[:2], E).stop
    v = keep_training(problem(), evidence(s), Settings(), s, weak[:3], E)
    assert v.stop, v.reason
    assert "starting another shape is worth more per compute" in v.reason
    assert v.value is not None and v.fresh is not None and 0 < v.value < v.fresh
    # a close contender goes on
    close = curve(94.5, 40.0)[:3]
    assert not keep_training(problem(), evidence(s), Settings(), s, close, E).stop


def test_a_rival_the_confident_stop_must_rule_out_goes_on() -> None:
    s = fresh_shape()
    rival = curve(94.9, 40.0)[:6]  # a 5-10 % chance to beat the answer (94.9)
    v = keep_training(problem(), evidence(s), Settings(), s, rival, E)
    assert not v.stop, v.reason
    assert "rival" in v.reason and v.forecast is not None
    assert 0.05 <= v.forecast.prob_at_least(94.9) < 0.1
    # asked for less confidence, (1 - 0.8) / 2 = 0.1: not a rival, and fresh shapes go first
    v = keep_training(problem(), evidence(s), Settings(confidence=0.8), s, rival, E)
    assert v.stop and "starting another shape is worth more per compute" in v.reason
    # under a compute budget the search ends with the budget: no rival is kept going
    v = keep_training(problem(), evidence(s), Settings(budget=1000.0), s, rival, E)
    assert "rival" not in v.reason


def test_a_promising_training_goes_on() -> None:
    s = fresh_shape()
    v = keep_training(problem(), evidence(s), Settings(), s, curve(99.5, 60.0)[:4], E)
    assert not v.stop and "likely to beat the current answer" in v.reason


def test_guards() -> None:
    s = fresh_shape()
    doomed = curve(60.0, 20.0)
    ev = evidence(s)
    # too early, or the last epoch
    assert not keep_training(problem(), ev, Settings(), s, doomed[:1], E).stop
    assert min_epochs(E) == 2
    assert not keep_training(problem(), ev, Settings(), s, doomed, E).stop
    # paper mode, no goal, a min-cost goal without a floor
    assert not keep_training(problem(), ev, Settings(mode="paper"), s, doomed[:4], E).stop
    assert not keep_training(problem("size"), ev, Settings(), s, doomed[:4], E).stop
    # a repeat of a trained shape runs to the end
    t = ev.trainings[0].shape
    assert not keep_training(problem(), evidence(t), Settings(), t, doomed[:4], E).stop
    # fewer than two completed curves of this length: nothing to learn the curves from
    short = Evidence(tuple(Training(tr.shape, tr.value, curve=tr.curve[:6])
                           for tr in ev.trainings), (s,))
    assert not keep_training(problem(), short, Settings(), s, doomed[:4], E).stop


def test_min_cost_goal_stops_what_cannot_become_a_cheaper_answer() -> None:
    floor = 92.0
    trained = set(initial_design(GRID, 5))
    big = max((s for s in GRID if s not in trained), key=lambda s: SIZES[s])
    ev = evidence(big)
    weak = curve(88.0, 30.0)[:4]  # forecast below the floor
    v = keep_training(problem("size", floor), ev, Settings(), big, weak, E)
    assert v.stop and "it cannot become a cheaper answer" in v.reason, v.reason
    # a cheap shape whose curve heads over the floor goes on
    cheap = fresh_shape()
    v = keep_training(problem("size", floor), evidence(cheap), Settings(), cheap,
                      curve(96.0, 50.0)[:4], E)
    assert not v.stop and "likely to meet the floor" in v.reason
    # a long shot that could still be a cheaper answer goes on: only hopeless ones stop
    v = keep_training(problem("size", floor), evidence(cheap), Settings(), cheap,
                      curve(91.5, 40.0)[:3], E)
    assert not v.stop and "it may still become a cheaper answer" in v.reason


def test_a_network_larger_than_any_finished_one_is_not_judged_by_their_curves() -> None:
    # only small networks have finished: their curves say nothing about how one 10x larger
    # learns (large networks start slowly), so its slow start does not stop it
    done = finished([s for s in GRID if SIZES[s] <= 0.1][:4])
    big = max(GRID, key=lambda s: SIZES[s])
    assert SIZES[big] > 2 * max(SIZES[t.shape] for t in done)
    slow = curve(60.0, 10.0)[:3]
    v = keep_training(problem(), Evidence(done, (big,)), Settings(), big, slow, E)
    assert not v.stop and "extrapolate" in v.reason, v.reason
    # once a network of comparable work has finished, the forecast applies and stops it
    near = max((s for s in GRID if SIZES[s] * 2 >= SIZES[big] and s != big),
               key=lambda s: SIZES[s])
    done += finished([near])
    v = keep_training(problem(), Evidence(done, (big,)), Settings(), big, slow, E)
    assert v.stop, v.reason


def test_a_network_no_cheaper_than_the_answer_stops_without_a_forecast() -> None:
    # a size goal needs no forecast to stop a shape that cannot be a cheaper answer, however
    # unlike the finished networks it is
    floor = 80.0
    done = finished([s for s in GRID if 0.05 <= SIZES[s] <= 0.2][:4])
    big = max(GRID, key=lambda s: SIZES[s])
    v = keep_training(problem("size", floor), Evidence(done, (big,)), Settings(), big,
                      curve(70.0, 10.0)[:3], E)
    assert v.stop and "not cheaper than the current answer" in v.reason, v.reason
    # a cheaper network unlike any finished one is not stopped on its forecast
    tiny = min(GRID, key=lambda s: SIZES[s])
    assert SIZES[tiny] * 2 < min(SIZES[t.shape] for t in done)
    v = keep_training(problem("size", floor), Evidence(done, (tiny,)), Settings(), tiny,
                      curve(40.0, 10.0)[:3], E)
    assert not v.stop and "extrapolate" in v.reason, v.reason


def test_under_a_tight_budget_an_unknown_network_is_judged_on_its_forecast() -> None:
    # the epochs left of a network unlike any finished one would take most of what the
    # compute budget has left: the budget cannot pay to learn how it ends
    done = finished([s for s in GRID if SIZES[s] <= 0.1][:4])
    big = max(GRID, key=lambda s: SIZES[s])
    slow = curve(60.0, 10.0)[:3]
    ev = Evidence(done, (big,))
    roomy = keep_training(problem(), ev, Settings(budget=1e6), big, slow, E)
    assert not roomy.stop and "extrapolate" in roomy.reason, roomy.reason
    tight = keep_training(problem(), ev, Settings(budget=4.5), big, slow, E)
    assert tight.stop, tight.reason
