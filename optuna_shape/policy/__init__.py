"""The search's decisions as pure functions: (problem, trainings so far) → next action.

Nothing here touches Optuna, a storage or torch. The sampler builds a :class:`Problem` once per
study (the screened design space and the goal), an :class:`Evidence` snapshot before each
decision (every training so far and those still running or queued), calls :func:`decide` and
applies the :data:`Action` it returns. Every worker of a study, in any process, that sees the same
evidence reaches the same decision.

A :class:`Stop` carries a :class:`SearchStatus` and typed :class:`StopDetails`, each with the one
codec the stored result uses (:mod:`optuna_shape.policy.stop`).

Two policies share this seam, chosen with ``ShapeSampler(policy=...)`` — the user-facing
:class:`Adaptive` and :class:`Paper` objects, each of which makes the :class:`Settings` the pure
functions read:

* ``"adaptive"`` (default) — noise-aware and sequential: a small spread initial design, then a
  goal-specific acquisition on a posterior over every feasible shape, repeats of borderline
  answers, and a stopping rule from the posterior (:mod:`optuna_shape.policy.adaptive`);
* ``"paper"`` — Shape_DNN Algorithm 1 unchanged: an interval sample sized by the modeling
  strategy, one fit, goal-ordered verification (:mod:`optuna_shape.policy.paper`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from optuna_shape.policy.modeling_strategy import SAMPLINGS, STRATEGIES
from optuna_shape.policy.stop import (
    ComputeUse,
    FailedShape,
    Measured,
    SearchStatus,
    Stop,
    StopDetails,
    StoppedEarly,
    Unconfirmed,
)
from optuna_shape.space.constraints import is_frontier
from optuna_shape.space.shape import Shape

__all__ = [
    "MODES",
    "Problem",
    "Training",
    "Evidence",
    "Settings",
    "Adaptive",
    "Paper",
    "Policy",
    "Train",
    "Wait",
    "Stop",
    "StopDetails",
    "SearchStatus",
    "Measured",
    "FailedShape",
    "StoppedEarly",
    "Unconfirmed",
    "ComputeUse",
    "Action",
    "decide",
]

MODES = ("adaptive", "paper")


@dataclass(frozen=True)
class Problem:
    """What is being searched: the feasible shapes and the goal.

    In a search over precisions the candidates are :class:`~optuna_shape.space.shape.Variant`
    (shape, precision) pairs; a policy reads only their ``depth`` and ``width`` as features, a
    training of a shape yields one :class:`Training` per precision (all ``None`` when it
    failed) and a pending shape lists all its candidates as pending.

    Attributes:
        feasible: shapes that passed screening (size, latency, energy limits), in a fixed order.
        sizes: size in MB of every feasible shape (tie-breaks, paper's order).
        costs: the goal's cost per feasible shape (MB, ms or J) for the min-cost goals
            ``"size"``, ``"latency"``, ``"energy"`` and the frontier goals; empty for
            ``"accuracy"`` and ``None`` goals.
        goal: ``"accuracy"`` (highest), ``"size"``/``"latency"``/``"energy"`` (lowest with the
            floor), ``"frontier"``/``"frontier:<cost>"`` (the accuracy–cost front:
            :mod:`optuna_shape.policy.frontier`), or ``None`` (the whole complying set).
        min_accuracy: the accuracy floor, in the objective's units, or ``None``.
        work: what a training of each shape costs relative to the others (multiply-accumulates
            per forward pass, else parameters); the cost model
            (:class:`~optuna_shape.models.compute.TrainingCost`) scales it to seconds from the
            study's own trainings. Empty: sizes stand in.
        trend: the trend the accuracy model assumes across shapes, the family's
            ``accuracy_trend`` (:data:`~optuna_shape.families.registry.ACCURACY_TRENDS`).
    """

    feasible: tuple[Shape, ...]
    sizes: Mapping[Shape, float]
    costs: Mapping[Shape, float] = field(default_factory=dict)
    goal: str | None = "accuracy"
    min_accuracy: float | None = None
    work: Mapping[Shape, float] = field(default_factory=dict)
    trend: str = "paper"


@dataclass(frozen=True)
class Training:
    """One finished training: ``value`` is the accuracy, ``None`` when it failed (exception,
    NaN, stopped as stale) or was stopped early.

    A training the search stopped before its last epoch (:class:`~optuna_shape.ShapePruner`)
    is a *partial* observation: ``value`` is ``None`` and ``projected`` / ``projected_std``
    hold its learning curve's forecast of the final accuracy — evidence about the shape with
    that extra uncertainty, not a failure.

    ``seconds`` is the compute it was charged (``None`` when unknown), ``fraction`` the share
    of a full training it ran (epochs run / planned; 1.0 when complete or unknown) and
    ``curve`` the accuracy it reported after each epoch (empty when it reported none).
    """

    shape: Shape
    value: float | None
    projected: float | None = None
    projected_std: float | None = None
    seconds: float | None = None
    fraction: float = 1.0
    curve: tuple[float, ...] = ()

    @property
    def partial(self) -> bool:
        """Stopped early with a forecast final accuracy: a partial observation (not a
        failure)."""
        return self.value is None and self.projected is not None


@dataclass(frozen=True)
class Evidence:
    """Every training so far, and the shapes being trained or queued now (one entry per
    training, so a shape being repeated appears more than once). ``lost_seconds``: compute of
    trainings lost to dead or paused workers, which are retried and are not trainings here
    but were paid for. ``workers``: the workers the search has seen, the most trials that ran
    at once in the study (a worker runs one trial at a time: a training, or a planner trial
    while it waits); the default trainings cap grows with it."""

    trainings: tuple[Training, ...] = ()
    pending: tuple[Shape, ...] = ()
    lost_seconds: float = 0.0
    workers: int = 1

    def spent_seconds(self) -> float:
        """Compute charged so far: every finished training's seconds (once per training in
        a search over precisions, where a training is listed once per precision) plus the
        lost ones'."""
        n_prec = max(1, len({getattr(t.shape, "precision", None) for t in self.trainings}))
        return sum(t.seconds or 0.0 for t in self.trainings) / n_prec + self.lost_seconds


@dataclass(frozen=True)
class Settings:
    """How a policy decides (shared by every worker of a study; stored with its configuration).

    Attributes:
        mode: ``"adaptive"`` or ``"paper"``.
        confidence: adaptive: probability the answer must reach — of meeting the floor (min-cost
            goals) and of being the optimum within tolerance (stopping rule).
        max_trainings: adaptive: most trainings (repeats and failures included); ``None``: a third
            of the feasible shapes (at least the initial design plus three), plus four for
            each worker the search has had at once beyond the first (``Evidence.workers``).
        n_initial: adaptive: shapes in the spread initial design.
        strategy: paper, and adaptive with no goal (it sizes the complying set's sample):
            modeling strategy (``"thorough"``, ``"standard"``, ``"optimistic"``) or the number
            of shapes to sample.
        sampling: paper: ``"interval"``, ``"random"`` or ``"wider"`` (adaptive: always
            ``"interval"``).
        refit: paper: refit the model after each failed verification.
        max_attempts: failed trainings of one shape before it is given up.
        seed: seed of every random choice (random sampling, Monte Carlo draws).
        budget: adaptive: most compute, in seconds of training time summed over every training
            (:mod:`optuna_shape.models.compute`); ``None``: only ``max_trainings`` bounds it.
    """

    mode: str = "adaptive"
    confidence: float = 0.9
    max_trainings: int | None = None
    n_initial: int = 5
    strategy: str | int = "standard"
    sampling: str = "interval"
    refit: bool = True
    max_attempts: int = 2
    seed: int | None = 0
    budget: float | None = None


def check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    """Refuse anything but an integer ``>= low`` (or ``None`` when allowed), naming the value.

    Raises:
        ValueError: one line, e.g. ``n_initial must be an integer >= 2, got n_initial=1``.
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        more = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= {low}{more}, got {name}={value!r}")


def _check_strategy(strategy: Any) -> None:
    if not (isinstance(strategy, int) and not isinstance(strategy, bool) and strategy >= 1) \
            and strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)} or a positive "
                         f"int, got strategy={strategy!r}")


@dataclass(frozen=True, kw_only=True)
class Adaptive:
    """The adaptive search (the default policy): noise-aware and sequential — a small spread
    initial design, then a goal-specific acquisition on a posterior over every feasible shape,
    repeats of borderline answers, and a stop once the posterior is sure enough
    (:mod:`optuna_shape.policy.adaptive`).

    Attributes:
        confidence: probability the answer must reach before the search stops, in (0, 1): of
            meeting the accuracy floor (size, latency and energy goals) and of being the
            optimum within noise (stopping rule).
        n_initial: shapes of the spread initial design (>= 2).
        max_trainings: most trainings, repeats and failures included (``None``: a third of the
            feasible shapes, at least ``n_initial + 3``, plus four for each worker beyond the
            first that the study has had at once, at most twice the feasible shapes; with a
            ``budget``, twice the feasible shapes, a cap only).
        budget: most compute, in seconds of training time summed over every training and
            worker — GPU-seconds with one GPU per worker — given as a number of seconds or a
            string with a unit (``"45m"``, ``"8h"``) and kept in seconds; ``None``: no compute
            budget. A training is charged its ``train_seconds`` user attribute (the built-in
            objective stores it), else its trial's duration; a shape's cost is predicted from
            the study's own trainings (:mod:`optuna_shape.models.compute`), and a training is
            started only when its predicted cost fits what is left. When the budget ends before
            the confidence is reached, the search answers with the best-supported shape, marked
            unconfirmed.
        strategy: ``goal=None`` only (the whole complying set): the modeling strategy that
            sizes the spread interval sample trained before the complying set is read off the
            posterior — ``"thorough"``, ``"standard"``, ``"optimistic"`` or a number of shapes;
            ``None`` means ``"standard"``. The search with a goal has no use for it, so
            :class:`~optuna_shape.ShapeSampler` refuses it there.

    Example:
        >>> Adaptive(confidence=0.95, budget="8h").budget
        28800.0
    """

    mode: ClassVar[str] = "adaptive"

    confidence: float = 0.9
    n_initial: int = 5
    max_trainings: int | None = None
    budget: float | str | None = None
    strategy: str | int | None = None

    def __post_init__(self) -> None:
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 1:
            raise ValueError(f"confidence must be a probability strictly between 0 and 1, "
                             f"got confidence={c!r}")
        check_int("max_trainings", self.max_trainings, 1, allow_none=True)
        check_int("n_initial", self.n_initial, 2)
        if self.strategy is not None:
            _check_strategy(self.strategy)
        from optuna_shape.models.compute import parse_budget

        object.__setattr__(self, "budget", parse_budget(self.budget))

    def to_settings(self, *, seed: int | None, max_attempts: int) -> Settings:
        """The :class:`Settings` the policy functions read (``seed=None`` is seed 0).

        Raises:
            ValueError: ``max_attempts`` is not an integer >= 1.
        """
        check_int("max_attempts", max_attempts, 1)
        return Settings(mode="adaptive", confidence=float(self.confidence),
                        max_trainings=self.max_trainings, n_initial=self.n_initial,
                        strategy="standard" if self.strategy is None else self.strategy,
                        max_attempts=max_attempts, seed=0 if seed is None else seed,
                        budget=self.budget)  # type: ignore[arg-type]  # seconds by now


@dataclass(frozen=True, kw_only=True)
class Paper:
    """Shape_DNN's Algorithm 1, unchanged, so that the paper's results can be reproduced: train
    a sample of the feasible shapes sized by the modeling strategy, fit one accuracy model,
    then verify the best predicted shapes in goal order (:mod:`optuna_shape.policy.paper`).

    Attributes:
        strategy: modeling strategy — ``"thorough"``, ``"standard"``, ``"optimistic"`` — or
            the number of shapes to train before modelling.
        sampling: how the trained shapes are picked from the feasible ones: ``"interval"``
            (evenly over the shapes ordered by width, then depth), ``"random"`` or
            ``"wider"``.
        refit: refit the accuracy model after each failed verification (``False`` keeps the
            first model, as the paper does).

    Example:
        >>> Paper(strategy=6, sampling="random")
        Paper(strategy=6, sampling='random', refit=True)
    """

    mode: ClassVar[str] = "paper"

    strategy: str | int = "standard"
    sampling: str = "interval"
    refit: bool = True

    def __post_init__(self) -> None:
        _check_strategy(self.strategy)
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, "
                             f"got sampling={self.sampling!r}")
        if not isinstance(self.refit, bool):
            raise ValueError(f"refit must be True or False, got refit={self.refit!r}")

    def to_settings(self, *, seed: int | None, max_attempts: int) -> Settings:
        """The :class:`Settings` the policy functions read (``seed=None`` is seed 0).

        Raises:
            ValueError: ``max_attempts`` is not an integer >= 1.
        """
        check_int("max_attempts", max_attempts, 1)
        return Settings(mode="paper", strategy=self.strategy, sampling=self.sampling,
                        refit=self.refit, max_attempts=max_attempts,
                        seed=0 if seed is None else seed)


Policy = Adaptive | Paper
"""A search policy: :class:`Adaptive` (the default) or :class:`Paper`."""


@dataclass(frozen=True)
class Train:
    """Train these shapes (distinct; a trained shape listed again is a repeat training).

    ``stage`` names why (``"initial"``, ``"acquire"``, ``"repeat"`` for adaptive; ``"sample"``,
    ``"verify"`` for paper); ``predictions`` holds the posterior mean and std of each listed shape
    when a model exists. ``alongside``: listed shapes that are already being trained and get
    one more training at the same time (idle workers, nothing else worth starting); every
    other listed shape that is already being trained is skipped.
    """

    shapes: tuple[Shape, ...]
    stage: str
    reason: str = ""
    predictions: Mapping[Shape, tuple[float, float]] = field(default_factory=dict)
    alongside: frozenset[Shape] = frozenset()


@dataclass(frozen=True)
class Wait:
    """Nothing to start until a running training finishes."""

    reason: str


Action = Train | Wait | Stop


def decide(problem: Problem, evidence: Evidence, settings: Settings, slots: int = 1) -> Action:
    """The next action of the search; pure and deterministic for equal inputs.

    ``slots``: how many workers are idle now (the caller among them). The adaptive policy then
    proposes up to that many distinct trainings in one decision (the paper's Algorithm 1
    proposes its whole plan regardless)."""
    if settings.mode == "paper":
        from optuna_shape.policy.paper import decide as paper_decide

        return paper_decide(problem, evidence, settings)
    if settings.mode == "adaptive" and is_frontier(problem.goal):
        from optuna_shape.policy.frontier import decide as frontier_decide

        return frontier_decide(problem, evidence, settings, slots)
    if settings.mode == "adaptive":
        from optuna_shape.policy.adaptive import decide as adaptive_decide

        return adaptive_decide(problem, evidence, settings, slots)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got mode={settings.mode!r}")
