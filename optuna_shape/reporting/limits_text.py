"""An answer for other limits read from a study's trainings, in words: the limits and goal asked
(:func:`query_words`), the answer as plain-text lines (:func:`limit_answer_lines`) and as a
JSON-able dict (:func:`limit_answer_dict`); its exit code and outcome words are
:func:`~optuna_shape.reporting.outcomes.limit_outcome`'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from optuna_shape.reporting.outcomes import (
    GOAL_WORDS,
    _p_text,
    _probability_name,
    _shapes_text,
    _training_trials,
    limit_outcome,
    limits_text,
)
from optuna_shape.reporting.results import load_config, result_table, search_summary
from optuna_shape.reporting.text import _wrap_lines

if TYPE_CHECKING:
    from optuna_shape.sampler.requery import LimitAnswer

__all__ = ["query_words", "limit_answer_lines", "limit_answer_dict", "RESUME_WORDS",
           "RESUME_HOW"]

DEFAULT_CONFIDENCE = 0.9
"""The confidence an answer must reach when the study stored none (a paper-mode study)."""


def query_words(constraints: Mapping[str, Any], goal: str | None) -> str:
    """Limits and goal in words: ``size ≤ 1 MB, accuracy ≥ 90; goal: the highest accuracy``."""
    parts = [] if not any(constraints.get(k) is not None for k in
                          ("max_size_mb", "max_latency_ms", "max_energy_j")) else \
        [limits_text(constraints)]
    if constraints.get("min_accuracy") is not None:
        parts.append(f"accuracy ≥ {constraints['min_accuracy']:g}")
    return (", ".join(parts) or "no limits") + f"; goal: {GOAL_WORDS.get(goal, goal)}"


RESUME_WORDS = "resume the search with these limits to settle it"
"""How more training settles an answer for other limits: a search for them that starts from the
study's trainings."""
RESUME_HOW = ("osh.copy_trainings(study, new_study) puts this study's trainings into a new "
              "study to search these limits on")
"""How to start that search in Python."""



def _confidence_needed(study: optuna.Study) -> float:
    return float(load_config(study).get("confidence") or DEFAULT_CONFIDENCE)


def _measured(study: optuna.Study, depth: int, width: float) -> tuple[float | None, int]:
    """The mean of a shape's completed trainings and their number."""
    done, _ = _training_trials(study)
    values = [float(t.value) for t in done
              if t.shape is not None and (t.shape.depth, t.shape.width) == (depth, width)]
    return (sum(values) / len(values) if values else None), len(values)


def limit_answer_dict(study: optuna.Study, answer: LimitAnswer,
                      constraints: Mapping[str, Any], goal: str | None) -> dict[str, Any]:
    """An answer for other limits as a JSON-able dict: the limits and goal asked, the shape
    (``[depth, width]`` or ``None``) with its measured accuracy, trainings, size, latency and
    energy, the status, its probability and the confidence needed, the trainings it rests on,
    the shapes more training would need (``next_trainings``), notes, and the outcome words."""
    needed = _confidence_needed(study)
    code, words = limit_outcome(answer, needed, query_words(constraints, goal))
    s = answer.shape
    acc, n = (None, 0) if s is None else _measured(study, s.depth, s.width)
    row = None
    if s is not None:
        row = next((r for r in result_table(study, include_all=True)
                    if (r.depth, r.width) == (s.depth, s.width)), None)
    return {
        "study_name": study.study_name,
        "limits": {k: v for k, v in constraints.items() if v is not None},
        "goal": goal,
        "shape": None if s is None else [s.depth, s.width],
        "status": str(answer.status),
        "confirmed": code == 0,
        "confidence": answer.confidence,
        "confidence_needed": needed,
        "accuracy": acc,
        "accuracy_trainings": n,
        "size_mb": None if row is None else row.size_mb,
        "latency_ms": None if row is None else row.latency_ms,
        "energy_j": None if row is None else row.energy_j,
        "reason": answer.reason,
        "trainings": answer.trainings,
        "next_trainings": [[t.depth, t.width] for t in answer.next_trainings],
        "notes": list(answer.notes),
        "outcome": words,
    }


def limit_answer_lines(study: optuna.Study, answer: LimitAnswer,
                       constraints: Mapping[str, Any], goal: str | None, *,
                       resume: Sequence[str] = (), wrap: bool = True) -> list[str]:
    """Plain-text lines for an answer for other limits: what was asked, the answer with its
    measured accuracy, confirmed or not (with its probability), the trainings it rests on and,
    when not confirmed, what more training would settle it — followed by the ``resume`` lines
    (how to run that search: a command, kept on one line each) when given."""
    d = limit_answer_dict(study, answer, constraints, goal)

    def _wrap(text: str, indent: str = "", hang: str = "  ") -> list[str]:
        return _wrap_lines(text, indent, hang) if wrap else [indent + text]

    total = search_summary(study).trainings
    out = _wrap(f"{study.study_name}: {query_words(constraints, goal)} — answered from the "
                f"study's {total} trainings, no new training")
    s = answer.shape
    if s is None:
        out += _wrap(f"answer: none — {answer.reason}")
    else:
        acc = d["accuracy"]
        n = d["accuracy_trainings"]
        costs = [f"size {d['size_mb']:.4g} MB"] if d["size_mb"] is not None else []
        if d["latency_ms"] is not None:
            costs.append(f"latency {d['latency_ms']:.3g} ms")
        if d["energy_j"] is not None:
            costs.append(f"energy {d['energy_j']:.3g} J")
        measured = (f"measured accuracy {acc:.2f} ({n} training{'s' if n != 1 else ''})"
                    if acc is not None else "not measured")
        out += _wrap(f"answer: depth {s.depth}, width {s.width:g} — {measured}"
                     + (f"; {', '.join(costs)}" if costs else ""))
        p, needed = answer.confidence, d["confidence_needed"]
        name = _probability_name(answer.reason)
        if d["confirmed"]:
            status = "confirmed" + (f": {name} = {_p_text(p, needed)} ≥ {needed:g}"
                                    if p is not None else "")
        else:
            status = "not confirmed" + (f": {name} = {_p_text(p, needed)}, below the study's "
                                        f"confidence {needed:g}" if p is not None else "")
        out += _wrap(f"status: {status}")
        out += _wrap(f"why: {answer.reason}", indent="  ", hang="     ")
    out += _wrap(f"rests on: {answer.trainings} training{'s' if answer.trainings != 1 else ''} "
                 "of shapes within these limits")
    if answer.next_trainings and not d["confirmed"]:
        out += _wrap("what more training would settle it: "
                     f"{_shapes_text(answer.next_trainings)}; {RESUME_WORDS}"
                     + (":" if resume else f" ({RESUME_HOW})"))
        out += [f"  {line}" for line in resume]
    for note in answer.notes:
        out += _wrap(f"note: {note}")
    return out
