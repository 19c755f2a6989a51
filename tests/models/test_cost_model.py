"""The hardware-cost model: features, design, fit and intervals, decision rule, screening."""

from __future__ import annotations

import math

import numpy as np
import pytest

import optuna_shape as osh
from optuna_shape.measurement.flops import count_macs, wrn_macs
from optuna_shape.models import cost_model as cm


def wrn_grid(depth=(10, 46, 6), width=(0.25, 2.0, 0.05)):
    space = osh.ShapeSpace("wrn", depth=depth, width=width, in_channels=1, num_classes=10,
                           image_size=8)
    shapes = space.shapes
    macs = [wrn_macs(s.depth, s.width, 1, 10, space.image_size) for s in shapes]
    x = cm.shape_features([space.param_count(s) for s in shapes], macs,
                          [s.depth for s in shapes], [s.width for s in shapes])
    return space, shapes, macs, x


def latency_of(shape, macs: float) -> float:
    """A deterministic latency (ms) the model cannot fit exactly: per-layer overhead, arithmetic,
    and a ripple that depends on the channel count (like a kernel switching at some sizes)."""
    ripple = 1.0 + 0.06 * math.sin(3.0 * shape.width * 16)
    return (0.05 * shape.depth + 2e-6 * macs ** 0.95) * ripple


def test_wrn_macs_match_a_hooked_forward_pass():
    pytest.importorskip("torch")
    space = osh.ShapeSpace("wrn", depth=[10, 22], width=[0.3, 1.0, 1.7], in_channels=3,
                           num_classes=7, image_size=(9, 7))
    for s in space.shapes:
        assert wrn_macs(s.depth, s.width, 3, 7, space.image_size) == count_macs(
            lambda s=s: space.build(s), space.input_shape(1))


def test_features_are_standardised_and_a_constant_column_is_dropped():
    x = cm.shape_features([100, 200, 400], [None, 1000, 4000], [10, 16, 22], [1, 1, 1])
    assert x.shape == (3, 3)  # the constant width column is gone
    assert np.allclose(x.mean(axis=0), 0) and np.allclose(x.std(axis=0), 1)
    with_bits = cm.shape_features([100, 200, 400, 800], [1, 2, 3, 4], [10, 16, 22, 28],
                                  [1, 2, 1, 2], bits=[8, 8, 16, 32])
    assert with_bits.shape == (4, 5)


def test_maximin_design_spreads_and_holds_both_ends():
    _, shapes, macs, x = wrn_grid()
    design = cm.maximin_design(x, 20)
    assert len(set(design)) == 20 and design == cm.maximin_design(x, 20)
    cheapest, dearest = int(np.argmin(macs)), int(np.argmax(macs))
    assert {cheapest, dearest} <= set(design)
    assert cm.maximin_design(x, len(shapes) + 5) == list(range(len(shapes)))
    assert cm.initial_size(2040, 4) == 91 and cm.initial_size(10, 4) == 10


def test_fit_recovers_a_log_linear_cost_and_its_intervals_cover():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 0.5 + x @ np.array([0.8, -0.3, 0.1]) + rng.normal(scale=0.05, size=200)
    model = cm.fit_cost_model(x[:60], y[:60])
    mean, sd = model.predict(x[60:])
    assert model.sigma == pytest.approx(0.05, rel=0.3)
    assert np.mean(np.abs(mean - y[60:]) <= 2 * sd) >= 0.9  # held out
    assert np.median(model.heldout_relative_errors()) < 0.06
    assert 0.8 <= model.heldout_coverage(1.645) <= 1.0
    with pytest.raises(ValueError, match="at least 3"):
        cm.fit_cost_model(x[:2], y[:2])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_calibrated_intervals_hold_nine_in_ten_held_out_errors(seed):
    """Heteroscedastic, heavy-tailed errors: whatever the residual std says, the calibrated
    90 % leave-one-out intervals hold at least 90 % of the held-out errors."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, 2))
    noise = rng.standard_t(2.5, size=80) * 0.05 * np.exp(1.5 * np.abs(x[:, 0]))
    model = cm.fit_cost_model(x, x @ np.array([1.0, 0.5]) + noise)
    assert model.calibration >= 1.0
    assert model.heldout_coverage(1.6448536269514722) >= 0.9


def test_decision_rule_uses_the_bounds_not_the_mean():
    mean = np.log(np.array([5.0, 9.0, 11.0, 20.0]))
    sd = np.array([0.01, 0.1, 0.1, 0.01])
    # 9 ± 3σ crosses 10, 11 ± 3σ crosses 10: both undecided although their means are decided
    assert cm.side_of_limit(mean, sd, 10.0, z=3.0).tolist() == [-1, 0, 0, 1]
    assert cm.side_of_limit(mean, sd, 10.0, z=0.5).tolist() == [-1, -1, 1, 1]


@pytest.mark.parametrize("pct", [10, 50, 90])
def test_screening_never_accepts_a_shape_over_the_limit(pct):
    _, shapes, macs, x = wrn_grid()
    truth = np.array([latency_of(s, m) for s, m in zip(shapes, macs, strict=True)])
    limit = float(np.percentile(truth, pct))
    calls: list[int] = []

    def measure(i: int) -> float:
        calls.append(i)
        return float(truth[i])

    res = cm.screen_costs(x, measure, limit)
    assert len(calls) == len(set(calls)) == len(res.measured)
    assert len(res.predicted) > len(shapes) / 3, "screening measured almost everything"
    assert set(res.measured) | set(res.predicted) == set(range(len(shapes)))
    accepted = set(res.feasible)
    assert not [i for i in accepted if truth[i] > limit]  # no shape over the limit
    for _, low, high in res.predicted.values():  # every prediction is decided
        assert high <= limit or low > limit
    s = res.summary()
    assert s["n_measured"] + s["n_predicted"] == len(shapes)
    assert s["heldout_median_rel_error"] < 0.1


def test_without_a_limit_only_the_design_is_measured():
    _, shapes, macs, x = wrn_grid()
    res = cm.screen_costs(x, lambda i: latency_of(shapes[i], macs[i]), None)
    assert len(res.measured) == cm.initial_size(len(shapes), x.shape[1])
    assert len(res.feasible) == len(shapes) and res.fits == 1


def test_failed_measurements_are_infeasible_and_bad_arguments_are_named():
    _, shapes, macs, x = wrn_grid(depth=[10, 16], width=(0.25, 1.0, 0.25))
    res = cm.screen_costs(x, lambda i: None if i == 0 else latency_of(shapes[i], macs[i]), 1e9)
    assert res.measured[0] is None and 0 not in res.feasible
    with pytest.raises(ValueError, match="limit=-1"):
        cm.screen_costs(x, lambda i: 1.0, -1)
    with pytest.raises(ValueError, match="z=0"):
        cm.screen_costs(x, lambda i: 1.0, 1.0, z=0)
