"""Hard limits on a shape (paper Algorithm 1 inputs) and the optimisation goal."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Constraints", "Goal", "GOALS", "MIN_COST_GOALS", "FRONTIER_GOALS", "COST_FIELDS",
           "check_goal", "goal_key", "goal_cost", "is_frontier"]

Goal = Literal["accuracy", "size", "latency", "energy", "frontier", "frontier:size",
               "frontier:latency", "frontier:energy"]
MIN_COST_GOALS: tuple[str, ...] = ("size", "latency", "energy")
"""The goals that look for the cheapest shape meeting the accuracy floor."""
FRONTIER_GOALS: tuple[str, ...] = ("frontier", "frontier:size", "frontier:latency",
                                   "frontier:energy")
"""The accuracy–cost trade-off: ``"frontier"`` is over model size, ``"frontier:<cost>"`` over
the cost named."""
GOALS: tuple[str, ...] = ("accuracy", *MIN_COST_GOALS, *FRONTIER_GOALS)


COST_FIELDS: dict[str, str] = {"size": "size_mb", "latency": "latency_ms", "energy": "energy_j"}
"""Each cost's field in a measurement record and in trial user attributes (its unit in the
name); the limit on it is ``Constraints.max_<field>``."""


def is_frontier(goal: str | None) -> bool:
    """Whether ``goal`` asks for the accuracy–cost front."""
    return goal in FRONTIER_GOALS


def goal_cost(goal: str | None) -> str | None:
    """The cost a goal minimises or trades accuracy against: ``"size"``, ``"latency"``,
    ``"energy"``, or ``None`` (the accuracy goal, no goal).

    Example:
        >>> goal_cost("latency"), goal_cost("frontier"), goal_cost("frontier:energy")
        ('latency', 'size', 'energy')
    """
    if goal in MIN_COST_GOALS:
        return goal
    if goal in FRONTIER_GOALS:
        return goal.partition(":")[2] or "size"
    return None


def goal_key(goal: str, accuracy: float, cost: float) -> tuple[float, float]:
    """A shape's place in the goal's order, as a sort key (the smallest comes first):
    ``"accuracy"`` — the highest accuracy first, then the lowest cost (its size, for this goal);
    ``"size"``, ``"latency"``, ``"energy"`` — the lowest cost first, then the highest accuracy.
    Callers that need a total order add their own last tie-break (the shape).

    Raises:
        ValueError: an unknown goal.

    Example:
        >>> goal_key("accuracy", 95.0, 2.0), goal_key("size", 95.0, 2.0)
        ((-95.0, 2.0), (2.0, -95.0))
    """
    if goal == "accuracy":
        return (-accuracy, cost)
    if goal in MIN_COST_GOALS:
        return (cost, -accuracy)
    raise ValueError(f"unknown goal {goal!r}")


@dataclass(frozen=True)
class Constraints:
    """Limits a complying shape must meet. ``None`` means no limit.

    Attributes:
        max_size_mb: model size limit in MB (float32 parameters × 4 / 10⁶).
        max_latency_ms: inference latency limit in milliseconds for one batch of the sampler's
            latency batch size on its device.
        max_energy_j: energy limit in joules per inference batch (NVIDIA GPU with NVML only).
        min_accuracy: accuracy floor, in the units the objective returns (fraction or percent).

    Example:
        >>> Constraints(max_size_mb=2.0, min_accuracy=95.0).active()
        ['size', 'accuracy']
    """

    max_size_mb: float | None = None
    max_latency_ms: float | None = None
    max_energy_j: float | None = None
    min_accuracy: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_size_mb", "max_latency_ms", "max_energy_j"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value > 0
            ):
                raise ValueError(f"{name} must be a positive finite number or None, "
                                 f"got {name}={value!r}")
        acc = self.min_accuracy
        if acc is not None and (
            isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc)
        ):
            raise ValueError(f"min_accuracy must be a finite number or None, got {acc!r}")

    def active(self) -> list[str]:
        """Names of the limits that are set, in screening order (size, latency, energy,
        accuracy)."""
        names = []
        for key, attr in (("size", "max_size_mb"), ("latency", "max_latency_ms"),
                          ("energy", "max_energy_j"), ("accuracy", "min_accuracy")):
            if getattr(self, attr) is not None:
                names.append(key)
        return names

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Constraints:
        """Inverse of :meth:`to_dict`."""
        return cls(**(data or {}))


def check_goal(goal: str | None) -> str | None:
    """Validate an optimisation goal name (``None`` = return the whole complying set).

    Raises:
        ValueError: naming the bad goal and the valid ones.
    """
    if goal is None or goal in GOALS:
        return goal
    raise ValueError(f"goal must be one of {', '.join(GOALS)} or None, got goal={goal!r}")
