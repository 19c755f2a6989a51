"""Finishing a search: the stored result (final once written) and the dashboard summary."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.families.registry import ACCURACY_TRENDS
from optuna_shape.policy import Problem, Stop, StopDetails
from optuna_shape.policy.stop import shape_to_json
from optuna_shape.sampler.snapshot import Snapshot
from optuna_shape.space.constraints import MIN_COST_GOALS, goal_key
from optuna_shape.space.shape import Shape, Variant

__all__ = ["store_answer", "best_trial_note"]


def best_trial_note(snapshot: Snapshot, answer: Shape | Variant | None) -> str | None:
    """Plain words when ``study.best_trial`` (the single highest value) names another shape
    than the answer of an accuracy search, ``None`` when they agree or nothing completed."""
    if answer is not None and answer.precision is not None:
        if answer.precision != "fp32":
            return (f"study.best_trial holds the fp32 accuracy of a training; the answer "
                    f"{answer} is a shape at {answer.precision}, chosen by the search's rule "
                    "over (shape, precision) candidates")
        answer = answer.shape
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


def _fit_from_posterior(details: StopDetails, problem: Problem,
                        answer: Shape | Variant | None) -> dict[str, Any] | None:
    """The stored fit of a policy that reports a posterior (``shapes``, ``posterior_mean``,
    ``posterior_std``): candidates whose posterior mean meets the floor, in goal order, the
    answer first."""
    if details.shapes is None or details.posterior_mean is None or details.posterior_std is None:
        return None
    shapes = list(details.shapes)
    mean = [float(x) for x in details.posterior_mean]
    std = [float(x) for x in details.posterior_std]
    floor = problem.min_accuracy
    ok = [i for i in range(len(shapes)) if floor is None or mean[i] >= floor]
    goal = problem.goal if problem.goal in MIN_COST_GOALS else "accuracy"
    costs = (problem.costs or problem.sizes) if goal != "accuracy" else problem.sizes
    ok.sort(key=lambda i: (*goal_key(goal, mean[i], costs.get(shapes[i], math.inf)), shapes[i]))
    ranking = [shapes[i] for i in ok]
    if answer is not None:
        ranking = [answer, *[s for s in ranking if s != answer]]
    measured = [shape_to_json(m.shape) for m in details.measured or () if m.mean is not None]
    noise = details.noise or {}
    return {
        "shapes": [shape_to_json(s) for s in shapes], "predicted": mean, "std": std,
        "ranking": [shape_to_json(s) for s in ranking], "trained": measured,
        "method": f"posterior (GP on {ACCURACY_TRENDS[problem.trend]})",
        "n_train": len(measured),
        "n_feasible": len(problem.feasible), "fits": int(details.trainings or 1),
        "noise": noise.get("sigma0"),
    }


def store_answer(study: optuna.Study, stop: Stop, snapshot: Snapshot, problem: Problem | None,
                 n_space: int, precisions: tuple[str, ...] = ()) -> st.ResultRecord:
    """Store the result of ``stop`` (unless one is stored: the first wins) and its fit; return
    the stored result (``precisions``: those of a search over several; the answer's accuracy is
    then its precision's)."""
    if snapshot.result is not None:
        return snapshot.result
    evidence = snapshot.evidence()
    per_candidate = snapshot.evidence(precisions) if precisions else evidence
    values = [t.value for t in per_candidate.trainings
              if t.shape == stop.answer and t.value is not None]
    fit = stop.details.fit
    result = st.ResultRecord(
        shape=stop.answer, reason=stop.reason, status=stop.status, confidence=stop.confidence,
        details=stop.details.without_fit(), goal=None if problem is None else problem.goal,
        accuracy=sum(values) / len(values) if values else None,
        trainings=len(evidence.trainings),
        n_feasible=0 if problem is None else len(problem.feasible), n_space=n_space,
        n_planned=stop.details.n_planned,
        note=best_trial_note(snapshot, stop.answer) if stop.answer is not None and problem
        is not None and problem.goal == "accuracy" else None,
    )
    if fit is None and problem is not None:
        fit = _fit_from_posterior(stop.details, problem, stop.answer)
    if fit is not None and {"shapes", "predicted", "std", "ranking"} <= set(fit):
        st.write_fit(study, st.FitRecord.from_json(fit))
    return st.write_result(study, result)
