"""The early-stopping rule: project the final accuracy from the study's curves, stop the doomed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_shape.early_stopping import (
    default_min_epochs,
    project,
    threshold,
    verdict,
)
from optuna_shape.shape import Shape

EPOCHS = 10


def curve(final: float, start: float, rate: float = 0.5) -> list[float]:
    """A saturating learning curve from ``start`` to ``final`` over EPOCHS epochs."""
    return [final - (final - start) * math.exp(-rate * (e - 1)) for e in range(1, EPOCHS + 1)]


def references(n: int = 8, seed: int = 0) -> list[tuple[list[float], float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        final = float(rng.uniform(88.0, 98.0))
        c = curve(final, final - 40.0 + float(rng.normal(0, 2)))
        c = [a + float(rng.normal(0, 0.4)) for a in c]
        out.append((c, c[-1]))
    return out


def test_a_doomed_curve_is_stopped_and_a_promising_one_is_not() -> None:
    refs = references()
    doomed = curve(70.0, 30.0)[:4]
    promising = curve(97.0, 57.0)[:4]
    v = verdict(doomed, refs, EPOCHS, threshold=95.0, confidence=0.9)
    assert v.stop and v.probability is not None and v.probability < 0.1
    assert v.projection is not None and v.projection.mean < 85.0
    assert "epoch 4 of 10" in v.reason
    w = verdict(promising, refs, EPOCHS, threshold=95.0, confidence=0.9)
    assert not w.stop and w.probability is not None and w.probability > 0.1


def test_projection_follows_the_references() -> None:
    refs = references(12)
    for final in (89.0, 93.0, 97.0):
        p = project(curve(final, final - 40.0)[:6], refs, EPOCHS)
        assert p is not None and abs(p.mean - final) < 2.0 and p.std < 3.0
        assert p.dof == 10 and p.n_curves == 12 and p.epoch == 6


def test_early_epochs_that_do_not_predict_give_a_wide_projection() -> None:
    # after epoch 1 the accuracy says nothing about the final one (slope ~ 0): no stopping
    rng = np.random.default_rng(1)
    refs = []
    for _ in range(8):
        final = float(rng.uniform(94.0, 97.0))
        c = curve(final, float(rng.uniform(20.0, 80.0)))
        refs.append((c, final))
    v = verdict([25.0, 60.0], refs, EPOCHS, threshold=95.0, confidence=0.9, min_epochs=1)
    assert not v.stop and v.probability is not None and v.probability > 0.2


def test_never_before_the_minimum_epochs_nor_at_the_last() -> None:
    refs = references()
    hopeless = curve(40.0, 10.0)
    assert default_min_epochs(EPOCHS) == 3
    for k in (1, 2):
        v = verdict(hopeless[:k], refs, EPOCHS, threshold=95.0, confidence=0.9)
        assert not v.stop and "too early" in v.reason
    assert verdict(hopeless[:3], refs, EPOCHS, threshold=95.0, confidence=0.9).stop
    assert not verdict(hopeless, refs, EPOCHS, threshold=95.0, confidence=0.9).stop
    assert not verdict(hopeless[:5], refs, EPOCHS, 95.0, 0.9, min_epochs=6).stop


def test_no_stopping_without_enough_reference_curves() -> None:
    hopeless = curve(40.0, 10.0)[:5]
    refs = references(8)
    assert not verdict(hopeless, refs[:4], EPOCHS, 95.0, 0.9).stop
    assert verdict(hopeless, refs[:5], EPOCHS, 95.0, 0.9).stop
    assert not verdict(hopeless, refs[:5], EPOCHS, 95.0, 0.9, min_curves=6).stop
    # curves of another length are no references
    short = [(c[:8], c[7]) for c, _ in refs]
    v = verdict(hopeless, short, EPOCHS, 95.0, 0.9)
    assert not v.stop and "fewer than 5" in v.reason


def test_no_threshold_no_stopping_and_bad_confidence() -> None:
    refs = references()
    assert not verdict(curve(40.0, 10.0)[:5], refs, EPOCHS, None, 0.9).stop
    assert not verdict([math.nan] * 5, refs, EPOCHS, 95.0, 0.9).stop
    with pytest.raises(ValueError, match="confidence"):
        verdict([50.0] * 5, refs, EPOCHS, 95.0, 1.0)


def test_higher_confidence_stops_less() -> None:
    refs = references()
    borderline = curve(92.5, 52.5)[:4]
    stops = [verdict(borderline, refs, EPOCHS, 95.0, c).stop for c in (0.5, 0.9, 0.999)]
    assert stops == sorted(stops, reverse=True) and stops[0] and not stops[-1]


def test_threshold_per_goal() -> None:
    a, b, c = Shape(10, 1.0), Shape(16, 1.0), Shape(22, 1.0)
    measured = [(a, 96.0), (a, 94.0), (b, 95.5), (c, math.nan)]
    assert threshold("size", 90.0, measured) == 90.0
    assert threshold("latency", None, measured) is None
    assert threshold(None, 91.0, measured) == 91.0
    assert threshold("accuracy", None, measured) == 95.5
    assert threshold("accuracy", 97.0, measured) == 97.0
    assert threshold("accuracy", None, []) is None


def test_accuracy_threshold_from_the_posterior_does_not_chase_a_lucky_seed() -> None:
    grid = [Shape(d, w) for d in (10, 16, 22, 28) for w in (0.5, 1.0, 1.5, 2.0)]
    rng = np.random.default_rng(0)
    measured = [(s, 95.0 + rng.normal(0, 0.3)) for s in grid for _ in range(2)]
    lucky = grid[5]
    measured.append((lucky, 99.0))  # one lucky seed, 4 points above its neighbours
    raw = threshold("accuracy", None, measured)
    post = threshold("accuracy", None, measured, domain=grid)
    assert raw is not None and post is not None
    assert raw > 96.0 and 95.0 < post < raw - 0.5
