"""The shared learning-curve model: calibrated forecasts of the final accuracy from a prefix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_shape.models.learning_curves import CurveForecast, CurveModel

EPOCHS = 20
PHASES = {"early": 3, "mid": 10, "late": 17}


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` crossing curves (percent) and their feature (log10 of a parameter count).

    Large networks learn slowly but reach a higher asymptote, so their curves start below
    and end above those of small networks; every epoch adds seed noise.
    """
    feature = rng.uniform(4.0, 6.5, n)
    asymptote = 80.0 + 5.0 * (feature - 4.0) + rng.normal(0.0, 1.5, n)
    rate = 0.9 - 0.3 * (feature - 4.0)
    t = np.arange(1, EPOCHS + 1)
    mean = asymptote[:, None] - (asymptote[:, None] - 10.0) * np.exp(-rate[:, None] * t)
    return np.clip(mean + rng.normal(0.0, 0.7, (n, EPOCHS)), 0.0, 100.0), feature


def coverage(n_train: int, reps: int, level: float = 0.8) -> dict[str, float]:
    """Share of held-out finals inside the central ``level`` interval, per phase."""
    hits: dict[str, list[bool]] = {p: [] for p in PHASES}
    for rep in range(reps):
        rng = np.random.default_rng(100 + rep)
        curves, feats = synthetic(n_train + 25, rng)
        model = CurveModel.fit(curves[:n_train].tolist(), EPOCHS, feats[:n_train].tolist())
        for curve, feat in zip(curves[n_train:], feats[n_train:]):
            for phase, k in PHASES.items():
                lo, hi = model.forecast(curve[:k].tolist(), float(feat)).interval(level)
                hits[phase].append(lo <= curve[-1] <= hi)
    return {p: float(np.mean(h)) for p, h in hits.items()}


@pytest.mark.parametrize(("n_train", "reps"), [(3, 16), (20, 4)])
def test_80_percent_intervals_are_calibrated_on_held_out_curves(n_train: int, reps: int) -> None:
    cov = coverage(n_train, reps)
    for phase, c in cov.items():
        assert 0.65 <= c <= 0.95, (phase, cov)


def test_full_prefix_returns_the_last_value_with_zero_std() -> None:
    curves, feats = synthetic(5, np.random.default_rng(0))
    model = CurveModel.fit(curves.tolist(), EPOCHS, feats.tolist())
    f = model.forecast(curves[2].tolist(), float(feats[2]))
    assert f.mean == curves[2, -1] and f.std == 0.0 and f.epoch == EPOCHS
    assert f.interval(0.9) == (curves[2, -1], curves[2, -1])
    assert f.prob_at_least(curves[2, -1]) == 1.0
    assert f.prob_at_least(curves[2, -1] + 0.01) == 0.0


def test_percent_and_fraction_give_the_same_forecast_up_to_scale() -> None:
    curves, feats = synthetic(6, np.random.default_rng(1))
    prefix = curves[0, :4]
    pct = CurveModel.fit(curves[1:].tolist(), EPOCHS, feats[1:].tolist())
    frac = CurveModel.fit((curves[1:] / 100).tolist(), EPOCHS, feats[1:].tolist())
    a = pct.forecast(prefix.tolist(), float(feats[0]))
    b = frac.forecast((prefix / 100).tolist(), float(feats[0]))
    assert b.mean == pytest.approx(a.mean / 100, rel=1e-9)
    assert b.std == pytest.approx(a.std / 100, rel=1e-9)
    assert np.allclose(np.array(b.interval(0.8)), np.array(a.interval(0.8)) / 100, rtol=1e-6)
    assert b.prob_at_least(0.9) == pytest.approx(a.prob_at_least(90.0), abs=1e-9)
    # with no completed curve the prefix alone sets the scale
    a0 = CurveModel.fit([], EPOCHS).forecast(prefix.tolist())
    b0 = CurveModel.fit([], EPOCHS).forecast((prefix / 100).tolist())
    assert b0.mean == pytest.approx(a0.mean / 100) and b0.std == pytest.approx(a0.std / 100)


def test_zero_curves_give_a_finite_wide_forecast_that_covers_the_truth() -> None:
    model = CurveModel.fit([], EPOCHS)
    assert model.n_curves == 0
    curves, _ = synthetic(40, np.random.default_rng(2))
    hits, stds = [], []
    for curve in curves:
        f = model.forecast(curve[:3].tolist())
        lo, hi = f.interval(0.8)
        assert math.isfinite(f.std) and 0.0 <= lo <= f.mean <= hi <= 100.0
        hits.append(lo <= curve[-1] <= hi)
        stds.append(f.std)
    assert np.mean(hits) >= 0.8
    assert np.mean(stds) > 5.0  # wide: the prior knows nothing of this task
    late = model.forecast(curves[0, :19].tolist())
    assert math.isfinite(late.std) and 0.0 < late.std < np.mean(stds)


def test_one_curve_already_narrows_the_forecast() -> None:
    curves, _ = synthetic(2, np.random.default_rng(3))
    prefix = curves[1, :10].tolist()
    none, one = CurveModel.fit([], EPOCHS), CurveModel.fit(curves[:1].tolist(), EPOCHS)
    assert one.n_curves == 1 and one.forecast(prefix).std < none.forecast(prefix).std


def test_the_feature_helps_on_crossing_curves() -> None:
    err_with, err_without = [], []
    for rep in range(4):
        curves, feats = synthetic(60, np.random.default_rng(200 + rep))
        model = CurveModel.fit(curves[:20].tolist(), EPOCHS, feats[:20].tolist())
        plain = CurveModel.fit(curves[:20].tolist(), EPOCHS)
        for curve, feat in zip(curves[20:], feats[20:]):
            for k in (PHASES["early"], PHASES["mid"]):
                truth = curve[-1]
                err_with.append(abs(model.forecast(curve[:k].tolist(), float(feat)).mean - truth))
                err_without.append(abs(plain.forecast(curve[:k].tolist(), float(feat)).mean
                                       - truth))
    # the final accuracy's own spread (asymptote and seed noise) is about 1.3 points
    assert np.mean(err_with) < 0.75 * np.mean(err_without)


def test_mean_and_interval_stay_within_the_scale() -> None:
    curves = [[0.5, 0.9, 0.99, 0.995, 1.0], [0.6, 0.95, 0.99, 1.0, 1.0]]
    f = CurveModel.fit(curves, 5).forecast([0.9, 0.999, 1.0])
    lo, hi = f.interval(0.95)
    assert 0.0 <= lo <= f.mean <= hi <= 1.0
    assert f.prob_at_least(1.0001) == 0.0 and f.prob_at_least(0.0) == 1.0


def test_prob_at_least_matches_the_interval() -> None:
    curves, feats = synthetic(10, np.random.default_rng(4))
    f = CurveModel.fit(curves[1:].tolist(), EPOCHS).forecast(curves[0, :5].tolist())
    lo, hi = f.interval(0.8)
    assert f.prob_at_least(lo) == pytest.approx(0.9, abs=1e-6)
    assert f.prob_at_least(hi) == pytest.approx(0.1, abs=1e-6)


def test_curves_of_another_length_or_non_finite_are_ignored() -> None:
    good = [[50.0, 70.0, 80.0], [40.0, 60.0, 75.0]]
    model = CurveModel.fit(good + [[50.0, 60.0], [50.0, math.nan, 80.0]], 3)
    assert model.n_curves == 2
    model = CurveModel.fit(good, 3, features=[4.0, math.inf])
    assert model.n_curves == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m.forecast([]), r"prefix must hold 1 to 3 .* got 0"),
    (lambda m: m.forecast([1.0, 2.0, 3.0, 4.0]), r"prefix must hold 1 to 3 .* got 4"),
    (lambda m: m.forecast([1.0, math.nan]), r"prefix values must be finite, got nan at epoch 2"),
    (lambda m: m.forecast([50.0], feature=math.nan), r"feature must be finite .* got nan"),
    (lambda m: m.forecast([50.0]).interval(1.5), r"strictly between 0 and 1, got 1.5"),
    (lambda m: CurveModel.fit([], 0), r"epochs must be an integer >= 1, got 0"),
    (lambda m: CurveModel.fit([[1.0]], 1, features=[1.0, 2.0]),
     r"one value per curve \(1 curves\), got 2"),
])
def test_bad_input_raises_a_one_line_value_error(call, message: str) -> None:
    model = CurveModel.fit([[50.0, 70.0, 80.0]], 3)
    with pytest.raises(ValueError, match=message) as info:
        call(model)
    assert "\n" not in str(info.value)


def test_forecast_is_a_frozen_record() -> None:
    f = CurveModel.fit([], 4).forecast([30.0])
    assert isinstance(f, CurveForecast) and f.epoch == 1 and f.n_curves == 0
    with pytest.raises(AttributeError):
        f.mean = 1.0  # type: ignore[misc]
