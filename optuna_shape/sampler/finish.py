"""Finishing a search: the stored result (final once written) and the dashboard summary."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import storage as st
from optuna_shape.policy import Problem, Stop
from optuna_shape.sampler.snapshot import Snapshot
from optuna_shape.shape import Shape

__all__ = ["write_result", "best_trial_note"]


def best_trial_note(snapshot: Snapshot, answer: Shape | None) -> str | None:
    """Plain words when ``study.best_trial`` (the single highest value) names another shape
    than the answer, ``None`` when they agree or nothing completed."""
    best: st.TrialRecord | None = None
    for t in snapshot.trials:
        if t.state == TrialState.COMPLETE and t.shape is not None and t.value is not None \
                and math.isfinite(t.value) and (best is None or t.value > (best.value or 0)):
            best = t
    if best is None or best.shape == answer:
        return None
    if answer is None:
        return (f"study.best_trial is trial {best.number}, shape {best.shape} "
                f"(accuracy {best.value:.4g}); the search names no single shape")
    return (f"study.best_trial is trial {best.number}, shape {best.shape} with one training at "
            f"{best.value:.4g}; the answer {answer} is chosen by the search's rule "
            "(the goal, the accuracy floor and all measurements), not by the single highest "
            "value")


def write_result(study: optuna.Study, stop: Stop, snapshot: Snapshot, problem: Problem | None,
                 n_space: int) -> st.ResultRecord:
    """Store the result of ``stop`` (unless one is stored: the first wins) and its fit; return
    the stored result."""
    if snapshot.result is not None:
        return snapshot.result
    evidence = snapshot.evidence()
    values = [t.value for t in evidence.trainings
              if t.shape == stop.answer and t.value is not None]
    details: dict[str, Any] = dict(stop.details)
    fit = details.pop("fit", None)
    result = st.ResultRecord(
        shape=stop.answer, reason=stop.reason, status=stop.status, confidence=stop.confidence,
        details=details, goal=None if problem is None else problem.goal,
        accuracy=sum(values) / len(values) if values else None,
        trainings=len(evidence.trainings),
        n_feasible=0 if problem is None else len(problem.feasible), n_space=n_space,
        n_planned=details.get("n_planned"), note=best_trial_note(snapshot, stop.answer),
    )
    if isinstance(fit, dict) and {"shapes", "predicted", "std", "ranking"} <= set(fit):
        st.write_fit(study, st.FitRecord.from_json(fit))
    return st.write_result(study, result)
