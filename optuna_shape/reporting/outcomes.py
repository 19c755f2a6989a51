"""How a search ended, in words and exit codes: the status of a stored search with its counts
(:func:`search_status`), its outcome for the command line (:func:`outcome`), the line on a
frontier search's front (:func:`front_words`) and the outcome of an answer for other limits
(:func:`limit_outcome`), which takes the same words and exit codes as a search's answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.policy.stop import SearchStatus, StopDetails, Unconfirmed
from optuna_shape.reporting.limits import FrontRow, frontier
from optuna_shape.reporting.results import (
    SearchSummary,
    effective_status,
    load_config,
    result_table,
    search_summary,
)

if TYPE_CHECKING:
    from optuna_shape.sampler.requery import LimitAnswer

__all__ = ["outcome", "search_status", "limits_text", "units_hint", "unconfirmed_words",
           "spend_more_lines", "spare_study_name",
           "front_words", "limit_outcome", "UNCONFIRMED", "FRONTIER", "NO_ANSWER", "GOAL_WORDS"]

NO_ANSWER = tuple(s for s in SearchStatus if s.no_answer)
"""Statuses of a finished search that has no complying shape."""
UNCONFIRMED = SearchStatus.UNCONFIRMED
"""The status of an answer not confirmed to meet the accuracy floor when the budget ended."""
FRONTIER = SearchStatus.FRONTIER
"""The status of a frontier search: the answer is the front, not one shape."""
GOAL_WORDS: dict[str | None, str] = {
    "accuracy": "the highest accuracy", "size": "the smallest size",
    "latency": "the lowest latency", "energy": "the lowest energy", None: "no goal",
    "frontier": "the accuracy–size front", "frontier:size": "the accuracy–size front",
    "frontier:latency": "the accuracy–latency front",
    "frontier:energy": "the accuracy–energy front"}
"""A goal in words (``None``: the whole complying set)."""


def _training_trials(study: optuna.Study) -> tuple[list[Any], list[Any]]:
    """(completed, failed) trainings of the study, as trial records (screened-out shapes,
    queued copies and the workers' stop trials excluded)."""
    from optuna_shape import store as st

    done, failed = [], []
    for t in st.all_trials(study, states=(TrialState.COMPLETE, TrialState.FAIL)):
        rec = st.decode_trial(t)
        if not (rec.is_training and rec.trained):
            continue
        if rec.value is not None and math.isfinite(rec.value):
            done.append(rec)
        else:
            failed.append((rec, t.user_attrs.get("fail_reason")))
    return done, failed


def limits_text(constraints: dict[str, Any]) -> str:
    """The limits of a search in words (``size ≤ 0.5 MB, latency ≤ 5 ms``), or ``no limits``."""
    parts = []
    for key, name, unit in (("max_size_mb", "size", "MB"), ("max_latency_ms", "latency", "ms"),
                            ("max_energy_j", "energy", "J")):
        if constraints.get(key) is not None:
            parts.append(f"{name} ≤ {constraints[key]:g} {unit}")
    return ", ".join(parts) or "no limits"


def units_hint(floor: float | None, values: Sequence[float]) -> str | None:
    """One line when an objective returns fractions (0–1) but the floor looks like percent.

    Example:
        >>> units_hint(97, [0.91, 0.95])
        'the objective returns fractions (0 to 1) but the accuracy floor is 97, which reads as \
percent: use a floor of 0.97, or return percent'
    """
    if floor is None or floor <= 1 or not values or max(values) > 1:
        return None
    return (f"the objective returns fractions (0 to 1) but the accuracy floor is {floor:g}, "
            f"which reads as percent: use a floor of {floor / 100:g}, or return percent")


def search_status(study: optuna.Study, summary: SearchSummary | None = None
                  ) -> tuple[SearchStatus | str, str]:
    """``(status, words)``: how the search stored in ``study`` ended, with counts.

    ``status`` is :func:`~optuna_shape.reporting.results.effective_status`: the stored result's
    (``answered``, ``unconfirmed``, ``complying_set``, ``no_feasible``, ``floor_not_reached``,
    ``all_failed``, ``frontier``) — or ``running`` before the search has finished.
    """
    summary = summary or search_summary(study)
    done, failed = _training_trials(study)
    status = effective_status(summary, n_done=len(done), n_failed=len(failed),
                              any_complying=lambda: any(r.complying
                                                        for r in result_table(study)))
    if status == SearchStatus.RUNNING:
        return status, (f"not finished: {len(done)} trainings done, {len(failed)} failed, "
                        f"{summary.running} running")
    cfg = load_config(study)
    cons = cfg.get("constraints") or {}
    floor = cons.get("min_accuracy")
    n = len(done) + len(failed)
    if status == SearchStatus.NO_FEASIBLE:
        words = (f"no shape fits the limits: 0 of {summary.n_space} shapes pass "
                 f"{limits_text(cons)}")
    elif status == SearchStatus.ALL_FAILED:
        reasons = sorted({str(why or "").split(":")[0] for _, why in failed} - {""})
        why = f" ({', '.join(reasons)[:120]})" if reasons else ""
        words = f"every training failed: {len(failed)} of {n} trainings failed{why}"
    elif status == SearchStatus.FLOOR_NOT_REACHED:
        values = [float(t.value) for t in done]
        best = f"best measured accuracy {max(values):.4g}" if values else "nothing measured"
        words = (f"the accuracy floor {floor:g} was not reached: {best} in {len(done)} "
                 f"trainings ({len(failed)} failed) of {summary.n_feasible} feasible shapes"
                 if floor is not None else f"no shape complies: {best}")
        hint = units_hint(floor, values)
        if hint:
            words += f"; {hint}"
    elif status == SearchStatus.COMPLYING_SET:
        words = f"{sum(1 for r in result_table(study) if r.complying)} complying shapes"
    elif status == UNCONFIRMED and summary.shape is not None:
        words = unconfirmed_words(summary)
    elif status == FRONTIER:
        front = frontier(study)
        words = (front_words(study, summary, front) if front else
                 f"no trained shape is on the front: {len(done)} trainings done, "
                 f"{len(failed)} failed")
    else:
        words = summary.reason
    return status, words


def outcome(study: optuna.Study) -> tuple[SearchStatus | str, int, str]:
    """``(status, exit code, words)`` of the search in ``study`` for the command line: 0 when
    it answered (a shape, a non-empty complying set, or a non-empty front), 4 when its answer
    is not confirmed (the budget ended first), 3 when it finished with no complying shape (or
    nothing on the front), 1 when it has not finished."""
    status, words = search_status(study)
    if status in NO_ANSWER or (status == FRONTIER and not frontier(study)):
        return status, 3, words
    if status == UNCONFIRMED:
        return status, 4, words
    if status == SearchStatus.RUNNING:
        return status, 1, (f"the search stopped before it finished ({words}); run the same "
                           "command again to resume")
    return status, 0, words


def unconfirmed_words(summary: SearchSummary) -> str:
    """One line for an unconfirmed answer: the shape, its P(accuracy ≥ floor) and what more
    compute would buy (one more training of it, and the most the search puts on one shape)."""
    assert summary.shape is not None
    s = summary.shape
    p = summary.confidence
    text = (f"depth {s.depth}, width {s.width:g} is the best-supported answer but not "
            f"confirmed: P(accuracy ≥ floor) = {p:.2f}" if p is not None else
            f"depth {s.depth}, width {s.width:g} is the best-supported answer but not confirmed")
    if summary.unconfirmed:  # the stored record, decoded when the summary was made
        text += "; " + Unconfirmed.from_json(summary.unconfirmed).more_words("it")
    return text


def spend_more_lines(study: optuna.Study, summary: SearchSummary) -> list[str]:
    """What to run to spend more on an unconfirmed answer: a line of words and the command of
    a search that starts from this study's trainings (``search --from-study``) with room for as
    many more trainings of the answer as the search puts on one shape — the trainings cap
    raised by their number and the compute budget by their predicted time (and a fifth for the
    margin a training must find left to start), each only where it would not leave that room.
    Nothing for a study made by Python code (no flags to repeat; ``osh.copy_trainings`` starts
    such a search there), when neither limit is in the way, or under a compute budget while a
    training's time is unknown."""
    info = summary.unconfirmed
    if not info or summary.shape is None or \
            not isinstance(study.user_attrs.get("training"), dict):
        return []
    more = int(info.get("more") or 1)
    flags: list[str] = []
    details = _details(study)
    cap = None if details is None else details.max_trainings
    if cap is not None and summary.trainings + more > cap:
        flags += ["--max-trainings", str(summary.trainings + more)]
    compute = summary.compute or {}
    if compute.get("budget_s") is not None:
        per = info.get("training_s")
        if per is None:
            return []
        need = float(compute.get("spent_s") or 0.0) + 1.2 * more * float(per)
        if need > float(compute["budget_s"]):
            flags += ["--budget", _budget_flag(need)]
    if not flags:
        return []
    s = summary.shape
    words = (f"more compute: room for {more} more training{'s' if more != 1 else ''} of depth "
             f"{s.depth}, width {s.width:g} in a search that starts from these trainings (with "
             f"the other flags of this search, --storage included):")
    command = ["optuna-shape search", "--from-study", study.study_name, "--study-name",
               spare_study_name(study), *flags]
    return [words, " ".join(command)]


def spare_study_name(study: optuna.Study) -> str:
    """The first of ``NAME-2``, ``NAME-3``, … that names no study in ``study``'s storage: the
    name to give a search that starts from its trainings."""
    taken = {x.study_name for x in optuna.get_all_study_summaries(
        st.storage_of(study), include_best_trial=False)}
    name = study.study_name
    return next(f"{name}-{k}" for k in range(2, len(taken) + 3) if f"{name}-{k}" not in taken)


def _budget_flag(seconds: float) -> str:
    """``seconds`` as a ``--budget`` value, rounded up: ``25s``, ``45m``, ``8.5h``."""
    if seconds < 120:
        return f"{math.ceil(seconds)}s"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)}m"
    return f"{math.ceil(seconds / 360) / 10:g}h"


def _details(study: optuna.Study) -> StopDetails | None:
    result = st.read_result(st.study_attrs(study))
    return None if result is None else result.details


def front_words(study: optuna.Study, summary: SearchSummary,
                front: Sequence[FrontRow]) -> str:
    """One line on a frontier search's front: its shapes, whether it is confident (and why
    not), and the trainings it used."""
    d = _details(study)
    code = None if d is None else d.reason_code
    n = (f"front of {len(front)} shape{'s' if len(front) != 1 else ''} from "
         f"{summary.trainings} trainings")
    rule = None if d is None else d.confidence_rule
    if code == "confident":
        sure = f" (P ≥ {rule:g} or ≤ {1 - rule:g})" if rule is not None else ""
        return f"{n}; confident: every shape is surely on it or surely off it{sure}"
    if code == "budget":
        cap = d.max_trainings if d is not None and d.max_trainings else summary.trainings
        return f"{n}; not confident: the budget of {cap} trainings ended first"
    if code == "exhausted":
        return f"{n}; not confident, but no training left is expected to move it visibly"
    return n


def _p_text(p: float, needed: float) -> str:
    """A probability against the confidence it must reach, with enough digits that one just
    below it does not print as equal (``0.898`` below 0.9, not ``0.90``)."""
    for digits in (2, 3, 4):
        text = f"{p:.{digits}f}"
        if (float(text) >= needed) == (p >= needed):
            return text
    return f"{p:.4f}"


def _probability_name(reason: str) -> str:
    """The probability an answer's reason names (``P(within noise of the best feasible
    shape)``), else plain ``P``."""
    import re

    m = re.search(r"(P\([^()]*\)) = [0-9.]+", reason)
    return m.group(1) if m else "P"


def _shapes_text(shapes: Sequence[Any]) -> str:
    return ", ".join(f"({s.depth}, {s.width:g})" for s in shapes)


def limit_outcome(answer: LimitAnswer, needed: float, query: str | None = None
                  ) -> tuple[int, str]:
    """``(exit code, words)`` of an answer for other limits, as a search's: 0 confirmed, 4 not
    confirmed (with its probability and what more training would settle it), 3 no shape.

    ``needed``: the confidence the study's search asked of an answer; ``query``: the limits
    and goal in words (:func:`~optuna_shape.reporting.limits_text.query_words`), named when
    there is no shape."""
    s = answer.shape
    if s is None or answer.status in NO_ANSWER:
        return 3, answer.reason + (f" ({query})" if query else "")
    p = answer.confidence
    name = _probability_name(answer.reason)
    if answer.status == UNCONFIRMED:
        text = (f"depth {s.depth}, width {s.width:g} is the best-supported answer but not "
                "confirmed" + (f": {name} = {_p_text(p, needed)} < {needed:g}"
                               if p is not None else ""))
        if answer.next_trainings:
            text += f"; more training would settle it: {_shapes_text(answer.next_trainings)}"
        return 4, text
    return 0, (f"depth {s.depth}, width {s.width:g}, confirmed"
               + (f": {name} = {_p_text(p, needed)} ≥ {needed:g}" if p is not None else ""))
