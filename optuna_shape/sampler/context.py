"""What the sampler's modules read: the sampler's settings, and what one worker remembers.

:class:`SearchContext` is made by :class:`~optuna_shape.ShapeSampler` from its attributes at
every hook (so a setting changed on the instance, such as ``poll_interval``, takes effect at
once); the modules that plan, screen and record trials take it instead of the sampler.
:class:`WorkerState` is the one mutable part: caches and clocks of this worker, shared by every
context the same sampler makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from optuna_shape.measurement.screening import MeasurementSettings
from optuna_shape.policy import Action, Evidence, Problem, Settings
from optuna_shape.sampler.progress import SearchReporter
from optuna_shape.sampler.snapshot import TrialCache
from optuna_shape.space.constraints import Constraints
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape, Variant

__all__ = ["SearchContext", "WorkerState"]

Decide = Callable[[Problem, Evidence, Settings, int], Action]
"""The policy's decision: (problem, evidence, settings, idle worker slots) → action."""


@dataclass
class WorkerState:
    """What one worker remembers between hooks (never shared between workers).

    Attributes:
        cache: decoded finished trials, per study (shared with the worker's pruner).
        problems: per study id, the screened problem and the measurements it was built from.
        n_predicted: per study id, the predicted cost records behind the cached problem.
        checked: ids of the studies whose direction and configuration were checked.
        claimed: trial id → the (shape, stage) its planner took to train itself.
        hardware: the hardware key, once computed.
        last_stale_check: when this worker last failed stale trials (``time.monotonic``).
        last_warn: when this worker last warned about a storage without heartbeats.
        warned_pruner: whether the warning about another pruner was given.
    """

    cache: TrialCache = field(default_factory=TrialCache)
    problems: dict[int, tuple[Problem, dict[Shape, Measurement]]] = field(
        default_factory=dict)
    n_predicted: dict[int, int] = field(default_factory=dict)
    checked: set[int] = field(default_factory=set)
    claimed: dict[int, tuple[Shape, str]] = field(default_factory=dict)
    hardware: str | None = None
    last_stale_check: float = 0.0
    last_warn: float = -1e9
    warned_pruner: bool = False


@dataclass(frozen=True)
class SearchContext:
    """The sampler's settings as the planning, screening and bookkeeping code reads them.

    Attributes:
        space: the design space.
        constraints: the limits.
        goal: the search goal (``None``: the whole complying set).
        settings: what the policy functions read.
        measurement: how latency and energy are measured and screened.
        precisions: the precisions searched over (empty for a search of one precision).
        needs_latency: whether latency is measured (a latency limit or goal).
        needs_energy: whether energy is measured (an energy limit or goal).
        reporter: receives progress events.
        poll_interval: seconds between checks while a worker waits for others.
        decide: the policy's decision function.
        state: this worker's caches and clocks.
    """

    space: ShapeSpace
    constraints: Constraints
    goal: str | None
    settings: Settings
    measurement: MeasurementSettings
    precisions: tuple[str, ...]
    needs_latency: bool
    needs_energy: bool
    reporter: SearchReporter
    poll_interval: float
    decide: Decide
    state: WorkerState

    @property
    def precision_search(self) -> bool:
        """Whether the candidates are (shape, precision) pairs."""
        return bool(self.precisions)

    @property
    def n_candidates(self) -> int:
        """How many candidates the search chooses among (before any screening)."""
        return len(self.space) * max(1, len(self.precisions))

    def candidates(self) -> list[Shape]:
        """What the search chooses among: the space's shapes, or with several precisions every
        (shape, precision) :class:`~optuna_shape.space.shape.Variant`."""
        if not self.precisions:
            return self.space.shapes
        return [Variant(s.depth, s.width, p) for s in self.space.shapes
                for p in self.precisions]

    def hardware(self) -> str | None:
        """Key of the hardware this worker measures on (``None`` when nothing is measured)."""
        if not (self.needs_latency or self.needs_energy):
            return None
        if self.measurement.target_hardware is not None:
            return self.measurement.target_hardware
        if self.state.hardware is None:
            from optuna_shape.measurement import hardware_key

            self.state.hardware = hardware_key(
                self.measurement.device, self.measurement.threads, self.measurement.batch_size)
        return self.state.hardware
