"""The paper's Algorithm 1 (Shape_DNN) as a pure decision: sample → fit → verify.

1. **sample** — train the shapes the modeling strategy plans (``strategy``, ``sampling``): all of
   them at once, so several workers share the stage; a failed training is retried until
   ``max_attempts`` failures.
2. **fit** — once every planned shape is resolved, fit the accuracy model on the completed
   trainings, drop shapes predicted below the floor and order the rest by the goal.
3. **verify** — train the candidates one at a time in that order until one meets the floor (for
   the accuracy goal it must also confirm its prediction within two predictive std). With
   ``refit`` the model is refitted on every completed training after each failed verification
   (the paper keeps its first model: ``refit=False``). Without a goal the answer is the complying
   set.

The fit is recomputed from the evidence at every decision (a replay of the verifications in trial
order), so any worker that sees the same trainings makes the same decision; fits are memoised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from optuna_shape.policy import Action, Evidence, Problem, Settings, Stop, Train, Wait
from optuna_shape.policy.modeling_strategy import choose_shapes
from optuna_shape.policy.stop import SearchStatus, StopDetails
from optuna_shape.policy.verification import (
    Candidate,
    PlanTrial,
    complying,
    goal_order,
    next_step,
    passes,
    shape_status,
)
from optuna_shape.space.shape import Shape

__all__ = ["decide", "planned_shapes", "fit_summary"]


def planned_shapes(problem: Problem, settings: Settings) -> list[Shape]:
    """The sample stage's shapes (modeling strategy × sampling method over the feasible set)."""
    return list(_plan(tuple(problem.feasible), settings.strategy, settings.sampling,
                      settings.seed))


@lru_cache(maxsize=16)
def _plan(feasible: tuple[Shape, ...], strategy: str | int, sampling: str,
          seed: int | None) -> tuple[Shape, ...]:
    return tuple(choose_shapes(list(feasible), strategy, sampling, seed))


def _records(evidence: Evidence) -> list[PlanTrial]:
    out = [PlanTrial(i, "complete" if t.value is not None else "fail", t.shape, t.value)
           for i, t in enumerate(evidence.trainings)]
    n = len(out)
    out += [PlanTrial(n + j, "running", s) for j, s in enumerate(evidence.pending)]
    return out


@lru_cache(maxsize=128)
def _predict(trained: tuple[tuple[Shape, float], ...], feasible: tuple[Shape, ...]
             ) -> tuple[tuple[float, ...], tuple[float, ...], str, float | None, float | None]:
    from optuna_shape.models.accuracy_model import AccuracyModel

    shapes = [s for s, _ in trained]
    model = AccuracyModel().fit(shapes, [v for _, v in trained])
    pred, std = model.predict(list(feasible), return_std=True)
    return (tuple(float(p) for p in pred), tuple(float(s) for s in std),
            str(getattr(model, "method", type(model).__name__)),
            _finite(getattr(model, "r2_", None)), _finite(getattr(model, "loo_mae_", None)))


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _means(trainings: Sequence[tuple[Shape, float]], space: set[Shape]) -> dict[Shape, float]:
    acc: dict[Shape, list[float]] = {}
    for s, v in trainings:
        if s in space:
            acc.setdefault(s, []).append(v)
    return {s: sum(vs) / len(vs) for s, vs in acc.items()}


def fit_summary(problem: Problem, trained: Mapping[Shape, float], fits: int = 1
                ) -> dict[str, Any]:
    """Fit the accuracy model on ``trained`` (shape → mean accuracy) and rank the feasible
    shapes: the JSON form of the stored fit (shapes, predicted, std, goal-ordered ranking)."""
    feasible = tuple(problem.feasible)
    summary: dict[str, Any] = {
        "n_train": len(trained), "n_feasible": len(feasible),
        "trained": [[s.depth, s.width] for s in sorted(trained)], "fits": fits,
    }
    cands: list[Candidate] = []
    lat = problem.costs if problem.goal == "latency" else {}
    en = problem.costs if problem.goal == "energy" else {}
    if len(trained) >= 2 and feasible:
        items = tuple(sorted(trained.items()))
        pred, std, method, r2, loo = _predict(items, feasible)
        for s, p, sd in zip(feasible, pred, std, strict=True):
            cands.append(Candidate(s, problem.sizes[s], lat.get(s), en.get(s), p, sd,
                                   trained.get(s)))
        summary.update(method=method, r2=r2, loo_mae=loo)
    elif len(trained) == 1 and feasible:
        (s, acc), = trained.items()
        if s in problem.sizes:
            cands.append(Candidate(s, problem.sizes[s], lat.get(s), en.get(s), acc, 0.0, acc))
        summary["method"] = "single training (no model)"
    ok = complying(cands, problem.min_accuracy)
    ranked = goal_order(ok, problem.goal or "accuracy")
    summary["shapes"] = [[c.shape.depth, c.shape.width] for c in cands]
    summary["predicted"] = [round(c.predicted, 6) for c in cands]
    summary["std"] = [round(c.std, 6) for c in cands]
    summary["ranking"] = [[c.shape.depth, c.shape.width] for c in ranked]
    return summary


def _pairs(summary: Mapping[str, Any], key: str) -> list[Shape]:
    return [Shape(int(d), float(w)) for d, w in summary[key]]


def _preds(summary: Mapping[str, Any]) -> dict[Shape, tuple[float, float]]:
    return {s: (p, sd) for s, p, sd in zip(_pairs(summary, "shapes"), summary["predicted"],
                                           summary["std"], strict=True)}


def decide(problem: Problem, evidence: Evidence, settings: Settings) -> Action:
    """The next action of Algorithm 1 (see the module docstring)."""
    if not problem.feasible:
        return Stop(None, "no shape of the design space meets the limits",
                    status=SearchStatus.NO_FEASIBLE)
    plan = planned_shapes(problem, settings)
    records = _records(evidence)
    status = shape_status(records)
    attempts = settings.max_attempts

    # Stage 1: sample (every planned shape not resolved and not being trained).
    todo, running = [], []
    for s in plan:
        st = status.get(s)
        if st is not None and (st.values or st.failures >= attempts):
            continue
        (running if st is not None and st.active else todo).append(s)
    if todo:
        return Train(tuple(todo), "sample",
                     reason=f"{len(todo)} planned shape(s) of {len(plan)} to train")
    if running:
        return Wait(f"{len(running)} planned training(s) still running")

    # Stage 2: fit on the sample (replaying the verifications done since), then verify.
    feasible = set(problem.feasible)
    done = [(t.shape, t.value) for t in evidence.trainings if t.value is not None
            and math.isfinite(t.value)]
    # trainings in trial order; the sample stage is resolved at the last planned shape's end
    resolved_at = -1
    seen: dict[Shape, int] = {}
    for i, t in enumerate(evidence.trainings):
        if t.shape in plan:
            resolved_at = i
        seen[t.shape] = seen.get(t.shape, 0) + 1
    completed: list[tuple[int, Shape, float]] = [
        (i, t.shape, t.value) for i, t in enumerate(evidence.trainings)
        if t.value is not None and math.isfinite(t.value)]
    base = [(s, v) for i, s, v in completed if i <= resolved_at]
    fits = 1
    summary = fit_summary(problem, _means(base, feasible), fits)
    at_verification: dict[Shape, tuple[float, float]] = {}
    for i, s, v in completed:
        if i <= resolved_at or s in at_verification:
            continue
        pred = _preds(summary).get(s)
        if pred is not None:
            at_verification[s] = pred
        mean = _means([(x, y) for j, x, y in completed if j <= i], feasible).get(s, v)
        if not passes(mean, goal=problem.goal, min_accuracy=problem.min_accuracy,
                      prediction=pred) and settings.refit:
            fits += 1
            summary = fit_summary(problem, _means([(x, y) for j, x, y in completed if j <= i],
                                                  feasible), fits)
    details = StopDetails(fit=summary, n_planned=len(plan))
    if problem.goal is None:
        return Stop(None, "no goal: the answer is the complying set",
                    status=SearchStatus.COMPLYING_SET, details=details)
    predictions = {**_preds(summary), **at_verification}
    step = next_step(plan, records, _pairs(summary, "ranking"), goal=problem.goal,
                     min_accuracy=problem.min_accuracy, max_attempts=attempts,
                     predictions=predictions)
    if step.kind == "train":
        assert step.shape is not None
        pred = predictions.get(step.shape)
        return Train((step.shape,), "verify", reason=f"best untried candidate {step.shape}",
                     predictions={step.shape: pred} if pred else {})
    if step.kind == "wait":
        return Wait(step.reason)
    if step.shape is not None:
        return Stop(step.shape, step.reason, status=SearchStatus.ANSWERED, details=details)
    ended = SearchStatus.ALL_FAILED if not done else SearchStatus.FLOOR_NOT_REACHED
    return Stop(None, step.reason, status=ended, details=details)
