"""Accuracy filter, goal order and verification (paper Algorithm 1, last part), as pure functions.

The search runs in two stages over the feasible shapes:

1. **sample** — train the shapes the modeling strategy planned (any order, any worker);
2. **verify** — once every planned shape is resolved, fit the accuracy model, drop shapes predicted
   below the accuracy floor, order the rest by the goal, and train them one at a time in that order
   until one meets the floor. Without a goal there is no verification: the answer is the complying
   set.

:func:`next_step` decides, from a snapshot of the study's trials, what a worker should do now. It
is a pure function, so every worker of a study, in any process, reaches the same decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from optuna_shape.space.constraints import MIN_COST_GOALS, goal_key
from optuna_shape.space.shape import Shape

__all__ = [
    "Candidate",
    "PlanTrial",
    "ShapeStatus",
    "Step",
    "goal_order",
    "complying",
    "shape_status",
    "next_step",
    "passes",
]

State = Literal["complete", "running", "waiting", "fail", "pruned"]


@dataclass(frozen=True)
class Candidate:
    """A feasible shape with what is known or predicted about it.

    Attributes:
        shape: the shape.
        size_mb: model size in MB.
        latency_ms: measured latency (ms per batch) or ``None`` when not measured.
        energy_j: measured energy (J per batch) or ``None``.
        predicted: predicted accuracy.
        std: predictive standard deviation.
        real: mean real accuracy of its completed trainings, or ``None`` if untrained.
    """

    shape: Shape
    size_mb: float
    latency_ms: float | None
    energy_j: float | None
    predicted: float
    std: float
    real: float | None = None

    def metric(self, goal: str) -> float:
        """The value the goal minimises (size, latency, energy) or maximises (accuracy)."""
        value = {
            "accuracy": self.predicted,
            "size": self.size_mb,
            "latency": self.latency_ms,
            "energy": self.energy_j,
        }[goal]
        if value is None:
            raise ValueError(f"goal {goal!r} needs {goal} measurements, missing for {self.shape}")
        return value


def complying(candidates: Iterable[Candidate], min_accuracy: float | None) -> list[Candidate]:
    """Shapes expected to meet the accuracy floor: trained ones by their real accuracy,
    untrained ones by their prediction. All of them when there is no floor."""
    out = []
    for c in candidates:
        acc = c.real if c.real is not None else c.predicted
        if min_accuracy is None or acc >= min_accuracy:
            out.append(c)
    return out


def goal_order(candidates: Iterable[Candidate], goal: str) -> list[Candidate]:
    """Order candidates by the goal: accuracy highest first; size, latency, energy lowest first.

    The goal's order is :func:`~optuna_shape.space.constraints.goal_key` (ties break towards
    higher predicted accuracy; for the accuracy goal, towards smaller size), then the shape
    itself, so the order is total and the same in every process.
    """
    if goal != "accuracy" and goal not in MIN_COST_GOALS:
        raise ValueError(f"unknown goal {goal!r}")

    def key(c: Candidate) -> tuple[float, float, Shape]:
        cost = c.size_mb if goal == "accuracy" else c.metric(goal)
        return (*goal_key(goal, c.predicted, cost), c.shape)

    return sorted(candidates, key=key)


@dataclass(frozen=True)
class PlanTrial:
    """What the planner needs to know about one trial."""

    number: int
    state: State
    shape: Shape | None
    value: float | None = None
    stage: str | None = None


@dataclass
class ShapeStatus:
    """Aggregate of all trials of one shape."""

    values: list[float] = field(default_factory=list)
    active: list[int] = field(default_factory=list)  # running or waiting trial numbers
    failures: int = 0

    @property
    def mean(self) -> float | None:
        """Mean real accuracy of completed trainings, or ``None``."""
        return sum(self.values) / len(self.values) if self.values else None


def shape_status(records: Iterable[PlanTrial]) -> dict[Shape, ShapeStatus]:
    """Group trial records by shape. Failed and pruned trainings and non-finite values count as
    failures (a shape is given up after ``max_attempts`` of them)."""
    out: dict[Shape, ShapeStatus] = {}
    for r in records:
        if r.shape is None:
            continue
        st = out.setdefault(r.shape, ShapeStatus())
        if r.state == "complete":
            if r.value is not None and math.isfinite(r.value):
                st.values.append(r.value)
            else:
                st.failures += 1
        elif r.state in ("running", "waiting"):
            st.active.append(r.number)
        elif r.state in ("fail", "pruned"):
            st.failures += 1
    return out


def passes(
    accuracy: float,
    *,
    goal: str | None,
    min_accuracy: float | None,
    prediction: tuple[float, float] | None = None,
    confirm_sigmas: float = 2.0,
) -> bool:
    """Whether a trained candidate ends verification.

    It must meet the accuracy floor (paper). For the accuracy goal it must also confirm its
    prediction: a real accuracy more than ``confirm_sigmas`` predictive standard deviations below
    the predicted one means the model extrapolated wrongly there, so the search refits and goes on
    (the paper accepts the first candidate whatever it scores).
    """
    if min_accuracy is not None and accuracy < min_accuracy:
        return False
    if goal == "accuracy" and prediction is not None:
        mean, std = prediction
        if accuracy < mean - confirm_sigmas * std:
            return False
    return True


@dataclass(frozen=True)
class Step:
    """What a worker should do next.

    ``kind`` is one of:
      * ``"train"`` — train ``shape`` in ``stage`` ("sample" or "verify");
      * ``"wait"`` — nothing to start: wait for running trainings (``reason`` says which);
      * ``"fit"`` — every planned shape is resolved: fit the model and rank the candidates;
      * ``"done"`` — the search is over; ``shape`` is the answer (``None``: nothing complies,
        or no goal: the answer is the complying set) and ``reason`` says why.
    """

    kind: Literal["train", "wait", "fit", "done"]
    shape: Shape | None = None
    stage: str | None = None
    reason: str = ""


def next_step(
    plan: Sequence[Shape],
    records: Iterable[PlanTrial],
    ranking: Sequence[Shape] | None,
    *,
    goal: str | None,
    min_accuracy: float | None,
    max_attempts: int = 2,
    exclude: Iterable[Shape] = (),
    predictions: Mapping[Shape, tuple[float, float]] | None = None,
) -> Step:
    """Decide the next step of the search from the study's trials.

    Args:
        plan: the shapes the modeling strategy chose to train (sample stage).
        records: every trial of the study that concerns a shape.
        ranking: goal-ordered complying candidates once fitted, else ``None``.
        goal: optimisation goal, or ``None`` to return the complying set.
        min_accuracy: accuracy floor or ``None``.
        max_attempts: trainings of a shape that may fail before it is given up.
        exclude: shapes not to start now (e.g. claimed by a concurrent worker moments ago).
        predictions: predicted accuracy and std per shape, for :func:`passes`.
    """
    status = shape_status(records)
    excluded = set(exclude)
    empty = ShapeStatus()

    # Stage 1: sample.
    waiting_for: list[Shape] = []
    for shape in plan:
        st = status.get(shape, empty)
        if st.values or st.failures >= max_attempts:
            continue
        if st.active or shape in excluded:
            waiting_for.append(shape)
            continue
        return Step("train", shape, "sample")
    if waiting_for:
        return Step("wait", reason=f"{len(waiting_for)} planned training(s) still running")
    if ranking is None:
        return Step("fit")

    # Stage 2: verify, in goal order, one at a time.
    if goal is None:
        return Step("done", None, reason="no goal: the answer is the complying set")
    for shape in ranking:
        st = status.get(shape, empty)
        if st.values:
            acc = st.mean
            assert acc is not None
            pred = predictions.get(shape) if predictions else None
            if passes(acc, goal=goal, min_accuracy=min_accuracy, prediction=pred):
                return Step("done", shape, reason=f"verified: accuracy {acc:.4g}")
            continue  # trained and below the floor (or its prediction): next candidate
        if st.failures >= max_attempts:
            continue
        if st.active or shape in excluded:
            return Step("wait", reason=f"verification of {shape} is running")
        return Step("train", shape, "verify")
    return Step("done", None, reason="no shape meets the accuracy floor")
