"""Compute: the budget's units and the cost model of a training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_shape.models.compute import CostObservation, TrainingCost, format_seconds, parse_budget
from optuna_shape.space.shape import Shape

SHAPES = [Shape(d, w) for d in (10, 16, 22, 28) for w in (0.5, 1.0, 2.0)]
WORK = {s: s.depth * s.width**2 * 1e6 for s in SHAPES}


@pytest.mark.parametrize("text, seconds", [("3600", 3600.0), ("90s", 90.0), ("45m", 2700.0),
                                           ("8h", 28800.0), ("1.5 h", 5400.0),
                                           ("2gpu-h", 7200.0), ("1d", 86400.0), (120, 120.0),
                                           ("1h30m", 5400.0), ("2d 4h", 187200.0),
                                           (None, None)])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("bad", ["", "3x", "h", "-1", "0", "nan", True, -5, float("inf"),
                                 "1h30", "h30m", "1h 30x"])
def test_bad_budget_is_one_line_naming_the_value(bad):
    with pytest.raises(ValueError) as info:
        parse_budget(bad)
    msg = str(info.value)
    assert "\n" not in msg and repr(bad) in msg and "8h" in msg


def test_format_seconds():
    assert [format_seconds(x) for x in (5, 600, 36000)] == ["5 s", "10 min", "10 h"]


def test_cost_is_unknown_before_any_training():
    tc = TrainingCost(WORK)
    mean, std = tc.predict(SHAPES[0])
    assert math.isnan(mean) and std == math.inf and not tc.known


def test_one_training_scales_the_whole_grid_by_work():
    ref = Shape(16, 1.0)
    tc = TrainingCost(WORK, [CostObservation(ref, 10.0)])
    assert tc.predict(ref)[0] == pytest.approx(10.0, rel=0.05)
    big, small = Shape(28, 2.0), Shape(10, 0.5)
    assert tc.mean(big) > 10.0 > tc.mean(small)
    # far from the observed shape the prediction is less sure (relative spread)
    rel = {s: tc.predict(s)[1] / tc.predict(s)[0] for s in (ref, big, small)}
    assert rel[big] > rel[ref] and rel[small] > rel[ref]


def test_the_model_learns_the_exponent_and_is_calibrated():
    rng = np.random.default_rng(0)
    truth = {s: 0.02 * (WORK[s] / 1e6) ** 0.7 for s in SHAPES}  # sub-linear in work
    obs = [CostObservation(s, truth[s] * math.exp(rng.normal(0, 0.1))) for s in SHAPES[::2]]
    tc = TrainingCost(WORK, obs)
    assert 0.5 < tc.b < 0.9
    held = SHAPES[1::2]
    inside = 0
    for s in held:
        m, sd = tc.predict(s)
        inside += abs(m - truth[s]) <= 2 * sd
        assert abs(m / truth[s] - 1) < 0.3
    assert inside >= len(held) - 1


def test_a_few_trainings_of_a_slowly_growing_grid_learn_its_exponent():
    # seconds ∝ work^0.5 (fixed per-batch overheads): three or four trainings spread over the
    # grid — an initial design — already price its largest shape within a factor 1.5, and the
    # spread stays that of the jitter; the residuals were once taken about the prior slope
    # (work^1), which widened the spread and tilted the fit back towards it, pricing the
    # largest shape 2-10 times over
    truth = {s: 0.5 * (WORK[s] / 1e6) ** 0.5 for s in SHAPES}
    big = max(SHAPES, key=lambda s: WORK[s])
    spread = sorted(SHAPES, key=lambda s: WORK[s])
    for picks in (spread[::len(spread) // 2][:3], spread[1::len(spread) // 3][:4]):
        tc = TrainingCost(WORK, [CostObservation(s, truth[s]) for s in picks])
        assert tc.log_sd < 0.2
        assert 1 / 1.5 < tc.mean(big) / truth[big] < 1.5


def test_partial_and_failed_trainings():
    s = Shape(16, 1.0)
    # stopped after 3 of 10 epochs: 3 s stands for a 10 s training; a failure teaches nothing
    tc = TrainingCost(WORK, [CostObservation(s, 3.0, fraction=0.3),
                             CostObservation(Shape(28, 2.0), 500.0, informative=False)])
    assert tc.n_observations == 1
    assert tc.mean(s) == pytest.approx(10.0, rel=0.05)
