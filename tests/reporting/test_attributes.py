"""Trial attributes rounded for reading and sorting in optuna-dashboard."""

from __future__ import annotations

import doctest

from optuna_shape.store import attributes
from optuna_shape.store.attributes import readable_trial_attrs, significant


def test_doctest():
    assert doctest.testmod(attributes).failed == 0


def test_rounding_caps_and_percentages():
    out = readable_trial_attrs({"size_mb": 12.345678, "latency_ms": 0.0123456,
                                "energy_j": 1234.5678, "predicted_accuracy": 97.12345,
                                "predicted_std": 0.0123456, "constraint_accuracy": -2.075000000003,
                                "stage": "initial", "params": 174778,
                                "confidence_probability": 1.2}, shape=(16, 1))
    assert out["size_mb"] == 12.35 and out["latency_ms"] == 0.0123 and out["energy_j"] == 1230
    assert out["predicted_accuracy"] == 97.12 and out["predicted_std"] == 0.012
    assert out["constraint_accuracy"] == -2.075
    assert out["confidence_probability_pct"] == 100.0 and "confidence_probability" not in out
    assert out["stage"] == "initial" and out["params"] == 174778
    assert (out["depth"], out["width"]) == (16, 1.0)


def test_fraction_accuracies_stay_fractions():
    out = readable_trial_attrs({"predicted_accuracy": 1.03, "predicted_std": 0.0012})
    assert out["predicted_accuracy"] == 1.0 and out["predicted_std"] == 0.0012
    assert significant(0.0, 3) == 0.0
