"""The posterior surrogate: calibrated, no extrapolation spikes, noise from repeats, units."""

from __future__ import annotations

import time

import numpy as np
import pytest

from optuna_shape.models.posterior import ShapePosterior, unit_scale
from optuna_shape.space.shape import Shape

GRID = [Shape(d, w) for d in (10, 16, 22, 28, 34, 40) for w in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)]


def surface(s: Shape) -> float:
    return 97.0 - 2.0 / s.width - 30.0 / s.depth


def test_unit_scale() -> None:
    assert unit_scale([0.91, 0.97, 1.0]) == 0.01
    assert unit_scale([91.0, 97.0]) == 1.0


def test_no_extrapolation_spike_on_ten_points() -> None:
    rng = np.random.default_rng(0)
    for rep in range(5):
        idx = rng.choice(len(GRID), 10, replace=False)
        shapes = [GRID[i] for i in idx]
        vals = [surface(s) + rng.normal(0, 0.5) for s in shapes]
        post = ShapePosterior(GRID).fit(shapes, vals)
        mean, std = post.predict(GRID)
        lo, hi = min(vals), max(vals)
        span = hi - lo
        assert mean.max() <= hi + 0.5 * span + 1.0, rep
        assert mean.min() >= lo - 1.0 * span - 1.0, rep
        assert np.all(std > 0) and np.all(std < 5 * span)


def test_interpolates_a_smooth_surface_with_honest_std() -> None:
    rng = np.random.default_rng(1)
    shapes = GRID[::3]
    vals = [surface(s) + rng.normal(0, 0.2) for s in shapes]
    post = ShapePosterior(GRID).fit(shapes, vals)
    mean, std = post.predict(GRID)
    truth = np.array([surface(s) for s in GRID])
    z = (truth - mean) / std
    assert np.mean(np.abs(truth - mean)) < 1.0
    assert np.mean(np.abs(z) > 3) < 0.1


def test_noise_from_repeats_and_growth_for_small_networks() -> None:
    rng = np.random.default_rng(2)
    shapes, vals = [], []
    for s in GRID:
        sd = 3.0 if s.width <= 0.5 else 0.4
        for _ in range(3):
            shapes.append(s)
            vals.append(surface(s) + rng.normal(0, sd))
    post = ShapePosterior(GRID).fit(shapes, vals)
    assert post.noise_.repeat_df == 2 * len(GRID)
    assert post.noise_.gamma > 0.3
    small, big = post.noise_std([Shape(10, 0.25), Shape(40, 3.0)])
    assert small > 2 * big
    assert 0.1 < big < 1.2


def test_prior_noise_without_repeats_scales_with_units() -> None:
    shapes = GRID[::4]
    pct = [surface(s) for s in shapes]
    p1 = ShapePosterior(GRID).fit(shapes, pct)
    p2 = ShapePosterior(GRID).fit(shapes, [v / 100 for v in pct])
    assert p1.noise_.prior_sigma0 == 0.5 and p2.noise_.prior_sigma0 == pytest.approx(0.005)
    m1, s1 = p1.predict(GRID)
    m2, s2 = p2.predict(GRID)
    np.testing.assert_allclose(m1, 100 * m2, atol=0.05)
    np.testing.assert_allclose(s1, 100 * s2, rtol=0.05, atol=0.01)


def test_fantasies_and_draws() -> None:
    shapes = GRID[::5]
    post = ShapePosterior(GRID).fit(shapes, [surface(s) for s in shapes])
    target = Shape(40, 0.5)
    _, before = post.predict([target])
    fant = post.with_fantasies([target])
    m_after, after = fant.predict([target])
    assert after[0] < before[0]
    assert m_after[0] == pytest.approx(post.predict([target])[0][0], abs=1e-6)
    d1 = post.sample(GRID, 64, np.random.default_rng(3))
    d2 = post.sample(GRID, 64, np.random.default_rng(3))
    assert d1.shape == (64, len(GRID))
    np.testing.assert_array_equal(d1, d2)
    mean, std = post.predict(GRID)
    assert np.all(np.abs(d1.mean(0) - mean) < 4 * std / np.sqrt(64) + 1e-6)


def test_fast_enough() -> None:
    grid = [Shape(d, float(w)) for d in range(10, 110, 3) for w in np.arange(0.25, 8.0, 0.25)]
    rng = np.random.default_rng(4)
    idx = rng.choice(len(grid), 50, replace=False)
    shapes = [grid[i] for i in idx] + [grid[i] for i in idx[:10]]
    vals = [surface(s) + rng.normal(0, 0.5) for s in shapes]
    t0 = time.perf_counter()
    post = ShapePosterior(grid).fit(shapes, vals)
    post.predict(grid)
    assert time.perf_counter() - t0 < 2.0  # typically ~0.03 s; generous on a shared machine


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        ShapePosterior([])
    with pytest.raises(ValueError):
        ShapePosterior(GRID).fit([GRID[0]], [1.0, 2.0])
    with pytest.raises(ValueError):
        ShapePosterior(GRID).fit([GRID[0]], [float("nan")])


def test_accuracy_model_gp_method_keeps_the_sklearn_api() -> None:
    from optuna_shape.models.accuracy_model import AccuracyModel

    rng = np.random.default_rng(5)
    shapes = GRID[::3] + GRID[:2]
    acc = [surface(s) + rng.normal(0, 0.3) for s in shapes]
    model = AccuracyModel(method="gp").fit(shapes, acc)
    mean, std = model.predict(GRID, return_std=True)
    assert mean.shape == std.shape == (len(GRID),)
    truth = np.array([surface(s) for s in GRID])
    assert np.mean(np.abs(mean - truth)) < 1.0
    assert np.all(std > 0)
    assert model.coef_ is None and model.n_shapes_ == len(set(shapes))
    assert 0 < model.loo_mae_ < 3 and model.r2_ > 0.8
    np.testing.assert_allclose(model.predict(np.array([tuple(s) for s in GRID])), mean)


def test_accuracy_model_gp_method_takes_a_family_s_trend() -> None:
    from optuna_shape.models.accuracy_model import AccuracyModel

    shapes = GRID[::3] + GRID[:2]
    acc = [surface(s) for s in shapes]
    assert AccuracyModel(method="gp").fit(shapes, acc).posterior_.trend == "paper"
    model = AccuracyModel(method="gp", trend="smooth").fit(shapes, acc)
    assert model.posterior_.trend == "smooth" and model.get_params()["trend"] == "smooth"
    with pytest.raises(ValueError, match="trend='smooth' needs method='gp' "
                                         r"\(method='bayes' fits the paper's Eq. 2"):
        AccuracyModel(trend="smooth").fit(shapes, acc)
    with pytest.raises(ValueError, match="trend must be one of paper, smooth, got "
                                         "trend='cubic'"):
        AccuracyModel(method="gp", trend="cubic").fit(shapes, acc)


def test_a_stopped_training_is_a_noisier_observation_either_way() -> None:
    shapes = GRID[::3]
    post = ShapePosterior(GRID).fit(shapes, [surface(s) for s in shapes])
    target = GRID[7]  # not trained
    mean, std = post.predict([target, GRID[8]])
    low = post.with_partial([target], [float(mean[0]) - 5.0], [0.5])
    m2, s2 = low.predict([target, GRID[8]])
    assert m2[0] < mean[0] - 2.0 and s2[0] < std[0]
    assert m2[1] <= mean[1] + 1e-9  # a neighbour moves down too (correlated)
    assert low.partial_ == 1
    high = post.with_partial([target], [float(mean[0]) + 5.0], [0.5])
    assert high.predict([target])[0][0] > mean[0] + 2.0  # two-sided: a high forecast raises it
    vague = post.with_partial([target], [float(mean[0]) - 5.0], [50.0])
    assert mean[0] - 0.5 < vague.predict([target])[0][0] < mean[0]
    # a forecast counts less than a finished training of the same value
    full = post.fit([*shapes, target], [*(surface(s) for s in shapes), float(mean[0]) - 5.0])
    assert full.predict([target])[0][0] < m2[0]
    # fantasies on top keep the partial evidence
    both = low.with_fantasies([GRID[20]])
    assert abs(both.predict([target])[0][0] - m2[0]) < 0.5


def test_each_trend_predicts_untrained_shapes_of_its_own_form_best() -> None:
    """The trend is the model's basis: on a surface quadratic in log depth and log width the
    ``"smooth"`` trend predicts untrained shapes better than the paper's inverse-polynomial
    one, and on an inverse-polynomial surface the other way round (8 noisy trainings of a
    36-shape grid of shallow networks, mean absolute error over 10 draws)."""
    grid = [Shape(d, w) for d in (1, 2, 3, 4, 6, 8) for w in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)]
    lo, span = np.log([1.0, 0.25]), np.log([8.0, 12.0])

    def quadratic(s: Shape) -> float:
        x = (np.log([s.depth, s.width]) - lo) / span
        return float(95.0 + 2.0 * x[0] - 3.0 * x[0] ** 2 + 2.5 * x[1] - 1.5 * x[1] ** 2)

    def inverse(s: Shape) -> float:
        return 97.0 - 2.0 / s.width - 3.0 / s.depth

    rng = np.random.default_rng(0)
    for surf, better in ((quadratic, "smooth"), (inverse, "paper")):
        err = {"paper": 0.0, "smooth": 0.0}
        for _ in range(10):
            trained = [grid[i] for i in rng.choice(len(grid), 8, replace=False)]
            vals = [surf(s) + rng.normal(0.0, 0.1) for s in trained]
            rest = [s for s in grid if s not in trained]
            truth = np.array([surf(s) for s in rest])
            for trend in err:
                post = ShapePosterior(grid, trend=trend).fit(trained, vals)
                assert post.trend == trend
                assert post.with_fantasies(rest[:1]).trend == trend  # copies keep it
                err[trend] += float(np.mean(np.abs(post.predict(rest)[0] - truth)))
        worse = "paper" if better == "smooth" else "smooth"
        assert err[better] < 0.8 * err[worse], (surf.__name__, err)


def test_an_unknown_trend_is_named() -> None:
    with pytest.raises(ValueError, match="trend must be one of paper, smooth, got "
                                         "trend='linear'"):
        ShapePosterior(GRID, trend="linear")
