"""Result tables of a stored search (rich for the terminal, markdown for the dashboard note), the
plain-words outcome of a search, and a console that does not wrap when output is piped.

One module: the tables, the outcome words and the summary lines are the parts of one printed
result (:func:`print_result`), whose words the dashboard and the progress display reuse. A
frontier search prints the front (:func:`front_rich_table`) where another prints its answer, and
an answer for other limits read from a study's trainings (:func:`limit_answer_lines`) takes the
same words and exit codes as a search's answer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState
from rich import box
from rich.console import Console
from rich.table import Table

from optuna_shape import store as st
from optuna_shape.policy.stop import SearchStatus, StopDetails
from optuna_shape.reporting.limits import FrontRow, frontier
from optuna_shape.reporting.results import (
    ResultRow,
    SearchSummary,
    effective_status,
    load_config,
    result_table,
    search_summary,
)
from optuna_shape.space.constraints import goal_cost

if TYPE_CHECKING:
    from optuna_shape.sampler.requery import LimitAnswer

__all__ = ["result_rich_table", "result_markdown", "summary_lines", "print_result",
           "make_console", "outcome", "search_status", "limits_text", "units_hint",
           "unconfirmed_words", "UNCONFIRMED", "PIPE_WIDTH", "GOAL_WORDS", "COST_UNITS",
           "front_rich_table", "front_markdown", "print_front", "front_words", "front_title",
           "percent_text", "FRONT_NOTE", "query_words", "limit_outcome", "limit_answer_lines",
           "limit_answer_dict"]

PIPE_WIDTH = 240
"""Console width when output is not a terminal (a file, a pipe, a CI log): wide enough that no
result line wraps; rich's default of 80 columns would break table rows and long lines."""

NO_ANSWER = tuple(s for s in SearchStatus if s.no_answer)
"""Statuses of a finished search that has no complying shape."""
UNCONFIRMED = SearchStatus.UNCONFIRMED
"""The status of an answer given when the budget ended before the confidence was reached."""
FRONTIER = SearchStatus.FRONTIER
"""The status of a frontier search: the answer is the front, not one shape."""
GOAL_WORDS: dict[str | None, str] = {
    "accuracy": "the highest accuracy", "size": "the smallest size",
    "latency": "the lowest latency", "energy": "the lowest energy", None: "no goal",
    "frontier": "the accuracy–size front", "frontier:size": "the accuracy–size front",
    "frontier:latency": "the accuracy–latency front",
    "frontier:energy": "the accuracy–energy front"}
"""A goal in words (``None``: the whole complying set)."""
COST_UNITS = {"size": "MB", "latency": "ms", "energy": "J"}
"""The unit of each cost a front is drawn against (latency and energy per inference batch)."""
DEFAULT_CONFIDENCE = 0.9
"""The confidence an answer must reach when the study stored none (a paper-mode study)."""


def make_console(*, stderr: bool = False, **kwargs: Any) -> Console:
    """A rich console for the command line: the terminal's width in a terminal; when piped,
    ``$COLUMNS`` if set, else :data:`PIPE_WIDTH`, so that rows never wrap."""
    console = Console(stderr=stderr, **kwargs)
    if not console.is_terminal and "width" not in kwargs:
        try:
            width = int(os.environ.get("COLUMNS", "") or PIPE_WIDTH)
        except ValueError:
            width = PIPE_WIDTH
        console = Console(stderr=stderr, width=max(width, 80), **kwargs)
    return console


def _num(x: float | None, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return format(x, fmt)


def _pred(row: ResultRow) -> str:
    if row.predicted is None:
        return "—"
    if row.std is None:
        return _num(row.predicted, ".2f")
    return f"{row.predicted:.2f} ± {row.std:.2f}"


def _columns(rows: Sequence[ResultRow]) -> list[tuple[str, str]]:
    cols = [("rank", "#"), ("shape", "shape (depth, width)")]
    if any(r.precision is not None for r in rows):
        cols.append(("precision", "precision"))
    cols += [("pred", "predicted ± std"), ("real", "real"), ("size", "size MB")]
    if any(r.latency_ms is not None for r in rows):
        cols.append(("lat", "latency ms"))
    if any(r.energy_j is not None for r in rows):
        cols.append(("energy", "energy J"))
    cols.append(("stage", "trained in"))
    return cols


_TERMINAL_HEADERS = {"shape": "shape\n(depth, width)", "pred": "predicted\n± std",
                     "size": "size\nMB", "lat": "latency\nms", "energy": "energy\nJ",
                     "stage": "trained\nin"}


def _cells(row: ResultRow, cols: list[tuple[str, str]]) -> list[str]:
    value = {
        "rank": "" if row.rank is None else str(row.rank),
        "shape": f"({row.depth}, {row.width:g})" + (" ★" if row.chosen else ""),
        "precision": row.precision or "",
        "pred": _pred(row),
        "real": _num(row.real, ".2f"),
        "size": _num(row.size_mb, ".4f"),
        "lat": _cost(row, row.latency_ms),
        "energy": _cost(row, row.energy_j),
        "stage": row.stage or ("" if not row.trained else "?"),
    }
    return [value[k] for k, _ in cols]


PREDICTED_MARK = "~"
PREDICTED_NOTE = ("~ latency/energy predicted by the hardware-cost model, not measured "
                  "(every trained shape is measured)")


def _cost(row: ResultRow, value: float | None) -> str:
    """A latency or energy cell; a predicted (not measured) cost is marked ``~``."""
    text = _num(value, ".3g")
    return PREDICTED_MARK + text if row.cost_predicted and value is not None else text


def result_rich_table(rows: Sequence[ResultRow], title: str | None = None) -> Table:
    """A rich table of result rows (the chosen shape is starred and bold).

    Units sit on a second header line and cells never wrap, so the table of a search with
    latency and energy limits fits 80 columns.
    """
    cols = _columns(rows)
    caption = PREDICTED_NOTE if any(r.cost_predicted for r in rows) else None
    table = Table(title=title, caption=caption, show_lines=False, header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  title_justify="left", caption_justify="left")
    for key, _ in cols:
        table.add_column(_TERMINAL_HEADERS.get(key, dict(cols)[key]), no_wrap=True,
                         justify="left" if key in ("shape", "precision", "stage") else "right")
    for r in rows:
        table.add_row(*_cells(r, cols), style="bold green" if r.chosen else None)
    return table


def result_markdown(rows: Sequence[ResultRow], summary: SearchSummary | None = None,
                    limit: int = 50) -> str:
    """The result table (and summary lines) as markdown."""
    lines: list[str] = ["# optuna-shape result", ""]
    if summary is not None:
        lines += [f"- {line}" for line in summary_lines(summary, rows)] + [""]
    lines += markdown_table(rows, limit)
    return "\n".join(lines) + "\n"


def markdown_table(rows: Sequence[ResultRow], limit: int = 50) -> list[str]:
    """The result rows as markdown table lines (the chosen row in bold)."""
    cols = _columns(rows)
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in list(rows)[:limit]:
        cells = [c.replace("|", "\\|") for c in _cells(r, cols)]
        if r.chosen:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > limit:
        lines.append(f"\n… {len(rows) - limit} more rows (`optuna-shape report --all`).")
    if any(r.cost_predicted for r in rows):
        lines.append(f"\n{PREDICTED_NOTE}.")
    return lines


# -------------------------------------------------------------------- outcome ---------------
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
    """One line for an unconfirmed answer: the shape, its P(accuracy ≥ floor) and what one
    more training of it would buy."""
    assert summary.shape is not None
    s = summary.shape
    p = summary.confidence
    text = (f"depth {s.depth}, width {s.width:g} is the best-supported answer but not "
            f"confirmed: P(accuracy ≥ floor) = {p:.2f}" if p is not None else
            f"depth {s.depth}, width {s.width:g} is the best-supported answer but not confirmed")
    nxt = (summary.unconfirmed or {}).get("p_confirm_next")
    if nxt is not None:
        text += f"; one more training of it would confirm it with probability {nxt:.2f}"
    return text


# -------------------------------------------------------------------- summary ---------------
def summary_lines(summary: SearchSummary, rows: Sequence[ResultRow] = (),
                  study: optuna.Study | None = None, *, wrap: bool = True) -> list[str]:
    """Plain-text lines, each short enough for 80 columns (``wrap=False``: one line per item):
    the answer and why, predicted vs real accuracy, trainings vs feasible shapes, trainings
    stopped early, hardware costs predicted, the accuracy model's fit."""
    out: list[str] = []

    def _wrap(text: str, indent: str = "", hang: str = "") -> list[str]:
        return _wrap_lines(text, indent, hang) if wrap else [indent + text]

    if summary.finished:
        if summary.shape is not None:
            chosen = next((r for r in rows if r.chosen), None)
            precision = getattr(summary.shape, "precision", None)
            out.append(f"chosen shape: depth {summary.shape.depth}, width "
                       f"{summary.shape.width:g}"
                       + (f", precision {precision}" if precision else "")
                       + (f" ({chosen.size_mb:.4g} MB)" if chosen is not None else ""))
            if chosen is not None:
                text = f"  accuracy: real {_num(chosen.real, '.2f')}, predicted {_pred(chosen)}"
                out.append(text)
                measured = []
                if chosen.latency_ms is not None:
                    measured.append(f"latency {chosen.latency_ms:.3g} ms")
                if chosen.energy_j is not None:
                    measured.append(f"energy {chosen.energy_j:.3g} J")
                if measured:
                    out.append("  " + ", ".join(measured))
            elif summary.accuracy is not None:
                out.append(f"  accuracy: real {summary.accuracy:.2f}")
            out += _wrap(f"why: {summary.reason}", indent="  ", hang="       ")
            if summary.status == UNCONFIRMED:
                out += _wrap(f"not confirmed: {unconfirmed_words(summary)}", indent="  ",
                             hang="    ")
        elif summary.status == FRONTIER:
            if study is not None:
                front = frontier(study)
                out += _wrap(front_words(study, summary, front) if front
                             else "no answer: " + search_status(study, summary)[1], hang="  ")
                out += _wrap(f"why: {summary.reason}", indent="  ", hang="       ")
            else:
                out += _wrap(f"front: {summary.reason}", hang="  ")
        elif study is not None:
            status, words = search_status(study, summary)
            out += _wrap(("no goal: " if status == SearchStatus.COMPLYING_SET
                          else "no answer: ") + words,
                         hang="  ")
        elif summary.goal is None:
            out.append(f"no goal: {sum(1 for r in rows if r.complying)} complying shapes")
        else:
            out.append(f"no answer: {summary.reason}")
    else:
        out.append(f"search not finished ({summary.reason}); {summary.running} trial(s) running")
    feas = summary.n_feasible
    if feas:
        # training every feasible shape once (in a search over precisions one training serves
        # every precision of its shape)
        n_all = summary.n_feasible_shapes or feas
        if summary.trainings and summary.trainings < n_all:
            saving = f"{n_all / summary.trainings:.1f}× fewer than training all"
        else:
            saving = "no fewer than training all"
        what = (f"{feas} feasible shapes" if summary.n_feasible_shapes is None else
                f"{feas} feasible (shape, precision) candidates of {n_all} shapes")
        out += _wrap(f"saving: {summary.trainings} trainings for {what} "
                     f"(of {summary.n_space}): {saving}", hang="  ")
    else:
        out.append(f"trainings so far: {summary.trainings} (design space: {summary.n_space})")
    compute = summary.compute or {}
    if compute.get("spent_s"):
        out += _wrap(compute_words(compute), hang="  ")
    if summary.stopped_early:
        out += _wrap(f"early stopping: {summary.stopped_early} of {summary.trainings} trainings "
                     f"stopped, {summary.epochs_saved} epochs saved", hang="  ")
    cost = getattr(summary, "cost_screening", None)
    if cost:
        err = [f"{k.split('_')[0]} model held-out error median "
               f"{100 * m['heldout_median_rel_error']:.1f}%, 90th pct "
               f"{100 * m['heldout_p90_rel_error']:.1f}%"
               for k, m in cost.get("metrics", {}).items()
               if m.get("heldout_median_rel_error") is not None]
        out += _wrap(f"hardware costs: {cost['n_measured']} shapes measured, "
                     f"{cost['n_predicted']} predicted" + (f" ({'; '.join(err)})" if err else "")
                     + "; every trained shape measured", hang="  ")
    if summary.surrogate and summary.surrogate.get("method"):
        s = summary.surrogate
        extra = ", ".join(f"{k} {v:.3g}" for k, v in (("R²", s.get("r2")),
                                                       ("LOO MAE", s.get("loo_mae")))
                          if isinstance(v, (int, float)))
        out += _wrap(f"accuracy model: {s['method']} on {fitted_on(s)}"
                     + (f" ({extra})" if extra else ""), hang="  ")
    return out


def compute_words(compute: Mapping[str, Any]) -> str:
    """``compute: 12 min of 1 h budget; training every feasible shape to the end ≈ 2.1 h (10.5×
    more)`` from a summary's ``compute``."""
    from optuna_shape.models.compute import format_seconds

    spent = float(compute["spent_s"])
    text = f"compute: {format_seconds(spent)} of training"
    if compute.get("budget_s"):
        text = f"compute: {format_seconds(spent)} of {format_seconds(compute['budget_s'])} budget"
    every = compute.get("all_feasible_s")
    if every:
        text += (f"; training every feasible shape to the end ≈ {format_seconds(every)} "
                 f"({every / spent:.1f}× more)" if spent > 0 else "")
    return text


def fitted_on(fit: Mapping[str, Any]) -> str:
    """What an accuracy model was fitted on, from its stored summary (``n_train``,
    ``trained``): "N trained shapes", or in a search over precisions "N trained (shape,
    precision) candidates" (a repeat training is one shape either way)."""
    variants = any(len(c) == 3 for c in fit.get("trained") or ())
    return f"{fit.get('n_train')} trained " + (
        "(shape, precision) candidates" if variants else "shapes")


def _wrap_lines(text: str, indent: str = "", hang: str = "", width: int = 79) -> list[str]:
    """``text`` as lines of at most ``width`` characters (wrapped by us, not by the terminal,
    so a terminal, a pipe and a log file show the same lines)."""
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent,
                         subsequent_indent=indent + hang, break_on_hyphens=False) or [indent]


def print_result(study: optuna.Study, console: Console | None = None, *,
                 include_all: bool = False) -> tuple[list[ResultRow], SearchSummary]:
    """Print the result table and summary of the search in ``study``; return them."""
    console = console or make_console()
    rows = result_table(study, include_all=include_all)
    summary = search_summary(study)
    what = "feasible" if include_all else "complying"
    if not summary.finished and rows and all(r.predicted is None for r in rows):
        what = "trained so far"
    title = f"{study.study_name}: {what} shapes"
    front_search = summary.finished and summary.status == FRONTIER
    if front_search and not include_all:
        pass  # the front is the result: the table of every shape only with --all
    elif rows:
        console.print(result_rich_table(rows, title=title))
    else:
        console.print(f"{title}: none yet" if not summary.finished else f"{title}: none",
                      highlight=False)
    if front_search:
        front = frontier(study)
        cost = goal_cost(summary.goal) or "size"
        print_front(front, console, front_title(study.study_name, cost))
    for line in summary_lines(summary, rows, study):
        console.print(line, highlight=False, soft_wrap=not console.is_terminal)
    return rows, summary


# -------------------------------------------------------------------- the front -------------
def percent_text(p: float) -> str:
    """A probability in percent for a table: ``72.7 %``; just under 1 reads ``> 99.9 %``, never
    ``100.0 %``.

    Example:
        >>> percent_text(0.7266), percent_text(0.9996), percent_text(1.0)
        ('72.7 %', '> 99.9 %', '100.0 %')
    """
    v = 100.0 * p
    if 99.95 <= v < 100.0:
        return "> 99.9 %"
    return f"{v:.1f} %"


def front_title(study_name: str, cost: str) -> str:
    """The title of a front table: ``<study>: accuracy–latency front, cheapest first``."""
    return f"{study_name}: accuracy–{cost} front, cheapest first"


FRONT_NOTE = ("P(on front): the probability that no feasible shape is both cheaper and more "
              "accurate; the trained shapes with P ≥ 50 % are listed, each with its measured "
              "accuracy")
"""How to read a front table (the line under it)."""


def _front_columns(rows: Sequence[FrontRow]) -> list[tuple[str, str]]:
    cost = rows[0].cost_name if rows else "size"
    cols = [("depth", "depth"), ("width", "width")]
    if cost != "size":
        cols.append(("cost", f"{cost} {COST_UNITS.get(cost, '')}".strip()))
    return cols + [("size", "size MB"), ("acc", "accuracy"), ("n", "trainings"),
                   ("p", "P(on front)")]


def _front_cells(row: FrontRow, cols: list[tuple[str, str]]) -> list[str]:
    value = {"depth": str(row.depth), "width": f"{row.width:g}", "cost": _num(row.cost, ".3g"),
             "size": _num(row.size_mb, ".4f"), "acc": _num(row.accuracy, ".2f"),
             "n": str(row.trainings), "p": percent_text(row.p_front)}
    return [value[k] for k, _ in cols]


def _front_order(rows: Sequence[FrontRow]) -> list[FrontRow]:
    return sorted(rows, key=lambda r: (r.cost, -r.accuracy, r.depth, r.width))


def front_rich_table(rows: Sequence[FrontRow], title: str | None = None) -> Table:
    """A rich table of the accuracy–cost front, one row per shape, cheapest first: depth,
    width, cost (latency or energy, with its unit; the size column when the cost is size),
    size, measured accuracy and its trainings, P(on front) in percent (:data:`FRONT_NOTE`
    says how to read it)."""
    cols = _front_columns(rows)
    table = Table(title=title, show_lines=False, header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  title_justify="left", caption_justify="left")
    for _, header in cols:
        table.add_column(header, no_wrap=True, justify="right")
    for r in _front_order(rows):
        table.add_row(*_front_cells(r, cols))
    return table


def print_front(rows: Sequence[FrontRow], console: Console, title: str) -> None:
    """Print the front table (``title: none`` when empty) and how to read it."""
    if not rows:
        console.print(f"{title}: none", highlight=False)
        return
    console.print(front_rich_table(rows, title=title))
    for line in _wrap_lines(FRONT_NOTE):
        console.print(line, highlight=False, soft_wrap=not console.is_terminal)


def front_markdown(rows: Sequence[FrontRow]) -> list[str]:
    """The front as markdown table lines, cheapest first (with :data:`FRONT_NOTE`)."""
    cols = _front_columns(rows)
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in _front_order(rows):
        lines.append("| " + " | ".join(_front_cells(r, cols)) + " |")
    return lines + ["", f"{FRONT_NOTE}."]


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


# -------------------------------------------------------------------- other limits ----------
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


def _p_text(p: float, needed: float) -> str:
    """A probability against the confidence it must reach, with enough digits that one just
    below it does not print as equal (``0.898`` below 0.9, not ``0.90``)."""
    for digits in (2, 3, 4):
        text = f"{p:.{digits}f}"
        if (float(text) >= needed) == (p >= needed):
            return text
    return f"{p:.4f}"


def _confidence_needed(study: optuna.Study) -> float:
    return float(load_config(study).get("confidence") or DEFAULT_CONFIDENCE)


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
    and goal in words (:func:`query_words`), named when there is no shape."""
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
