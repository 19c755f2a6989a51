"""Result tables of a stored search (rich for the terminal, markdown for the dashboard note) and
the summary lines under them: the parts of one printed result (:func:`print_result`), whose
words the dashboard and the progress display reuse. A frontier search prints the front
(:mod:`~optuna_shape.reporting.front_tables`) where another prints its answer; how a search
ended, in words and exit codes, is in :mod:`~optuna_shape.reporting.outcomes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from rich import box
from rich.console import Console
from rich.table import Table

from optuna_shape.policy.stop import SearchStatus
from optuna_shape.reporting.front_tables import front_title, print_front
from optuna_shape.reporting.limits import frontier
from optuna_shape.reporting.outcomes import (
    FRONTIER,
    UNCONFIRMED,
    front_words,
    search_status,
    spend_more_lines,
    unconfirmed_words,
)
from optuna_shape.reporting.results import ResultRow, SearchSummary, result_table, search_summary
from optuna_shape.reporting.text import _num, _wrap_lines, make_console
from optuna_shape.space.constraints import goal_cost

__all__ = ["result_rich_table", "result_markdown", "markdown_table", "summary_lines",
           "print_result", "compute_words", "fitted_on", "PREDICTED_NOTE"]


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
                if study is not None:
                    more = spend_more_lines(study, summary)
                    if more:  # the command on a line of its own, never wrapped: copy it
                        out += _wrap(more[0], indent="  ", hang="    ") + [f"    {more[1]}"]
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
        n = summary.trainings
        out += _wrap(f"saving: {n} training{'s' if n != 1 else ''} for {what} "
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
    n = fit.get("n_train")
    what = "(shape, precision) candidate" if variants else "shape"
    return f"{n} trained {what}{'' if n == 1 else 's'}"


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
