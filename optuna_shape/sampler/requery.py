"""Answers for another limit or goal from the trainings already in a study — no new training.

A search's trainings are evidence about every shape, not only about the limit it was run for.
:func:`answer_from_evidence` builds the problem of new limits and a goal from what the study
stored (its design space, the hardware measurements screening took, every training), and asks
the same adaptive policy that runs searches for its answer with no training left to spend: the
answer is confirmed when the evidence already suffices, unconfirmed (with its probability)
when it does not, and the policy's next proposals say what more training would settle it.
:func:`front_from_evidence` does the same for the accuracy–cost front.

Limits can only narrow what screening measured: a shape the search never screened (over its
own size limit, or on hardware without a latency measurement) is left out and said so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import optuna

from optuna_shape import store as st
from optuna_shape.measurement.screening import (
    apply_limits,
    candidate_size,
    needs_energy,
    needs_latency,
    size_screen,
)
from optuna_shape.policy import Evidence, Problem, Settings, Stop, Train, decide
from optuna_shape.policy.stop import FrontPoint, SearchStatus
from optuna_shape.sampler.problem import training_work
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot
from optuna_shape.space.constraints import Constraints, check_goal, goal_cost
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape

__all__ = ["LimitAnswer", "answer_from_evidence", "front_from_evidence"]


@dataclass(frozen=True)
class LimitAnswer:
    """What the study's trainings say about other limits and a goal.

    Attributes:
        shape: the answer (a trained shape), or ``None``.
        status: ``answered`` (the evidence confirms it: its probability reaches the study's
            confidence), ``unconfirmed`` (the best-supported shape, not yet that sure),
            ``floor_not_reached``, ``no_feasible``, ``complying_set`` (no goal).
        confidence: the policy's probability for the answer (see ``status``), when computed.
        reason: plain words: what decided it (the answer, its measurements and probability,
            the seed noise).
        trainings: trainings of shapes within the limits that the answer rests on.
        next_trainings: what the search would train next to settle it (empty: nothing more
            is needed, or nothing more would help).
        notes: what the evidence could not cover (shapes never screened).
    """

    shape: Shape | None
    status: SearchStatus | str
    confidence: float | None
    reason: str
    trainings: int
    next_trainings: tuple[Shape, ...] = ()
    notes: tuple[str, ...] = ()


def _space_and_measurements(study: optuna.Study) -> tuple[ShapeSpace, dict[str, Any],
                                                           dict[Shape, Measurement]]:
    attrs = st.study_attrs(study)
    cfg = st.read_config(attrs)
    if cfg is None:
        raise ValueError(f"study {study.study_name!r} holds no optuna-shape search "
                         "(no ShapeSampler has run on it)")
    space = ShapeSpace.from_dict(cfg["space"])
    if len(space.precisions) > 1:
        raise ValueError("answers for other limits cover searches of one precision; this "
                         f"study searched {', '.join(space.precisions)}")
    return space, cfg, st.read_measurements(attrs)


def stored_problem(study: optuna.Study, constraints: Constraints, goal: str | None
                   ) -> tuple[Problem, tuple[str, ...]]:
    """The problem of ``constraints`` and ``goal`` over the shapes the study screened, and
    notes on what it leaves out."""
    space, cfg, measured = _space_and_measurements(study)
    searched = Constraints.from_dict(cfg.get("constraints"))
    passed, _ = size_screen(space, space.shapes, constraints.max_size_mb)
    notes: list[str] = []
    lat, en = needs_latency(constraints, goal), needs_energy(constraints, goal)
    if lat or en:
        missing = [s for s in passed if s not in measured]
        if len(missing) == len(passed) and passed:
            what = "latency" if lat else "energy"
            raise ValueError(f"the study has no {what} measurements (its search had no {what} "
                             f"limit or goal): search again with one to answer this")
        if missing:
            notes.append(f"{len(missing)} shape(s) within the size limit were never screened "
                         f"(over the search's limits "
                         f"{', '.join(searched.active()) or 'none'}): left out")
        passed, _ = apply_limits([s for s in passed if s in measured], measured, constraints,
                                 latency=lat, energy=en)
    sizes = {s: candidate_size(space, s) for s in passed}
    cost = goal_cost(goal)
    costs: dict[Shape, float] = {}
    if cost == "size":
        costs = dict(sizes)
    elif cost is not None:
        costs = {s: float(measured[s].cost(cost)) for s in passed}  # type: ignore[arg-type]
    return (Problem(tuple(passed), sizes, costs, goal, constraints.min_accuracy,
                    training_work(space, passed), space.family.accuracy_trend), tuple(notes))


def _settings(cfg: dict[str, Any]) -> Settings:
    """The adaptive policy's settings of the study (defaults for a paper-mode study)."""
    return Settings(confidence=float(cfg.get("confidence", 0.9)),
                    n_initial=int(cfg.get("n_initial", 5)), seed=cfg.get("seed", 0),
                    max_attempts=int(cfg.get("max_attempts", 2)))


def _evidence_within(study: optuna.Study, feasible: tuple[Shape, ...]) -> Evidence:
    ev = read_snapshot(study, TrialCache()).evidence()
    keep = set(feasible)
    return Evidence(tuple(t for t in ev.trainings if t.shape in keep),
                    tuple(s for s in ev.pending if s in keep))


def answer_from_evidence(study: optuna.Study, constraints: Constraints,
                         goal: str | None = "accuracy") -> LimitAnswer:
    """Answer ``constraints`` and ``goal`` from the study's trainings (no training runs).

    Raises:
        ValueError: a bad goal, a frontier goal (see :func:`front_from_evidence`), a study
            without a search, or limits the study has no measurements for.
    """
    check_goal(goal)
    if goal is not None and goal.startswith("frontier"):
        raise ValueError(f"goal={goal!r} has no single answer: use osh.frontier(study)")
    if not isinstance(constraints, Constraints):
        raise TypeError(f"constraints must be optuna_shape.Constraints, got {constraints!r}")
    problem, notes = stored_problem(study, constraints, goal)
    _, cfg, _ = _space_and_measurements(study)
    evidence = _evidence_within(study, problem.feasible)
    n = sum(1 for t in evidence.trainings if t.value is not None and math.isfinite(t.value))
    settings = _settings(cfg)
    if not problem.feasible:
        return LimitAnswer(None, SearchStatus.NO_FEASIBLE, None,
                           "no screened shape meets these limits", 0, (), notes)
    if n == 0:
        nxt = decide(problem, evidence, settings)
        return LimitAnswer(None, SearchStatus.FLOOR_NOT_REACHED, None,
                           "no shape within these limits has been trained", 0,
                           nxt.shapes if isinstance(nxt, Train) else (), notes)
    spent = replace(settings, max_trainings=len(evidence.trainings))
    stop = decide(problem, Evidence(evidence.trainings), spent)
    assert isinstance(stop, Stop), stop
    status = stop.status
    settled = status == SearchStatus.ANSWERED and (stop.confidence or 0.0) >= settings.confidence
    if status == SearchStatus.ANSWERED and not settled:
        status = SearchStatus.UNCONFIRMED  # the search would go on: not sure enough yet
    room = replace(settings, max_trainings=len(evidence.trainings) + len(problem.feasible))
    more = decide(problem, Evidence(evidence.trainings), room) if not settled else None
    needed = more.shapes if isinstance(more, Train) else ()
    reason = stop.reason
    if reason.startswith("stopped: ") and "; " in reason:  # no budget was spent: say what decided
        reason = reason.split("; ", 1)[1]
    return LimitAnswer(stop.answer if isinstance(stop.answer, Shape) else None, status,
                       stop.confidence, reason, n, tuple(needed), notes)


def front_from_evidence(study: optuna.Study, cost: str = "size",
                        constraints: Constraints | None = None) -> tuple[FrontPoint, ...]:
    """The accuracy–``cost`` front of the study's trained shapes (within ``constraints``),
    each with its probability of being on it, from the study's trainings."""
    from optuna_shape.policy.frontier import current_front

    goal = "frontier" if cost == "size" else f"frontier:{cost}"
    check_goal(goal)
    problem, _ = stored_problem(study, constraints or Constraints(), goal)
    _, cfg, _ = _space_and_measurements(study)
    evidence = _evidence_within(study, problem.feasible)
    return current_front(problem, Evidence(evidence.trainings), _settings(cfg))
