"""What the trainings so far say, per shape: measured values, failures, running and stopped
trainings, and how many trainings a list of evidence entries stands for."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from optuna_shape.policy import Evidence
from optuna_shape.space.shape import Shape

__all__ = ["Ledger", "n_trainings"]


@dataclass
class Ledger:
    """What the trainings so far say, per shape.

    Attributes:
        values: the final accuracy of every successful training.
        failures: how many trainings failed.
        pending: how many trainings are running or queued.
        partial: every training stopped early, as (forecast final accuracy, its std).
    """

    values: dict[Shape, list[float]] = field(default_factory=dict)
    failures: dict[Shape, int] = field(default_factory=dict)
    pending: dict[Shape, int] = field(default_factory=dict)
    partial: dict[Shape, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def of(cls, evidence: Evidence) -> Ledger:
        """The ledger of ``evidence``."""
        led = cls()
        for t in evidence.trainings:
            if t.partial:
                assert t.projected is not None
                sd = t.projected_std if t.projected_std is not None else math.nan
                led.partial.setdefault(t.shape, []).append((float(t.projected), float(sd)))
            elif t.value is None or not math.isfinite(float(t.value)):
                led.failures[t.shape] = led.failures.get(t.shape, 0) + 1
            else:
                led.values.setdefault(t.shape, []).append(float(t.value))
        for s in evidence.pending:
            led.pending[s] = led.pending.get(s, 0) + 1
        return led

    def count(self, s: Shape) -> int:
        """Successful trainings of ``s``."""
        return len(self.values.get(s, ()))

    def tried(self, s: Shape) -> bool:
        """``s`` has a successful training or one stopped early: evidence either way (a stopped
        training's forecast is in the posterior)."""
        return self.count(s) > 0 or s in self.partial

    def mean(self, s: Shape) -> float:
        """The measured mean accuracy of ``s`` (trained shapes only)."""
        return float(np.mean(self.values[s]))

    def given_up(self, s: Shape, max_attempts: int) -> bool:
        """``s`` failed ``max_attempts`` times and never succeeded: it is not proposed again."""
        return self.count(s) == 0 and self.failures.get(s, 0) >= max_attempts


def n_trainings(items: Sequence[Shape]) -> int:
    """Trainings behind evidence entries: one per entry for shapes; for (shape, precision)
    candidates a training lists one entry per precision, so the count per precision."""
    per = Counter(getattr(s, "precision", None) for s in items)
    return max(per.values(), default=0)
