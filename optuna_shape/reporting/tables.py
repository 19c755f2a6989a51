"""Result tables of a stored search (rich for the terminal, markdown for the dashboard note)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from rich.console import Console
from rich.table import Table

from optuna_shape.results import ResultRow, SearchSummary, result_table, search_summary

__all__ = ["result_rich_table", "result_markdown", "summary_lines", "print_result"]


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
    cols = [("rank", "#"), ("shape", "shape (depth, width)"), ("pred", "predicted ± std"),
            ("real", "real"), ("size", "size MB")]
    if any(r.latency_ms is not None for r in rows):
        cols.append(("lat", "latency ms"))
    if any(r.energy_j is not None for r in rows):
        cols.append(("energy", "energy J"))
    cols.append(("stage", "trained in"))
    return cols


def _cells(row: ResultRow, cols: list[tuple[str, str]]) -> list[str]:
    value = {
        "rank": "" if row.rank is None else str(row.rank),
        "shape": f"({row.depth}, {row.width:g})" + (" ★" if row.chosen else ""),
        "pred": _pred(row),
        "real": _num(row.real, ".2f"),
        "size": _num(row.size_mb, ".4f"),
        "lat": _num(row.latency_ms, ".3f"),
        "energy": _num(row.energy_j, ".4g"),
        "stage": row.stage or ("" if not row.trained else "?"),
    }
    return [value[k] for k, _ in cols]


def result_rich_table(rows: Sequence[ResultRow], title: str | None = None) -> Table:
    """A rich table of result rows (the chosen shape is starred and bold)."""
    cols = _columns(rows)
    table = Table(title=title, show_lines=False, header_style="bold")
    for key, header in cols:
        table.add_column(header, justify="left" if key in ("shape", "stage") else "right")
    for r in rows:
        table.add_row(*_cells(r, cols), style="bold green" if r.chosen else None)
    return table


def result_markdown(rows: Sequence[ResultRow], summary: SearchSummary | None = None,
                    limit: int = 50) -> str:
    """The result table (and summary lines) as markdown, for the optuna-dashboard note."""
    lines: list[str] = ["# optuna-shape result", ""]
    if summary is not None:
        lines += [f"- {line}" for line in summary_lines(summary, rows)] + [""]
    cols = _columns(rows)
    lines.append("| " + " | ".join(h for _, h in cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in list(rows)[:limit]:
        cells = [c.replace("|", "\\|") for c in _cells(r, cols)]
        if r.chosen:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > limit:
        lines.append(f"\n… {len(rows) - limit} more rows (`optuna-shape report --all`).")
    return "\n".join(lines) + "\n"


def summary_lines(summary: SearchSummary, rows: Sequence[ResultRow] = ()) -> list[str]:
    """Plain-text lines: the answer, predicted vs real accuracy, trainings vs feasible shapes."""
    out: list[str] = []
    if summary.finished:
        if summary.shape is not None:
            chosen = next((r for r in rows if r.chosen), None)
            text = f"chosen shape: depth {summary.shape.depth}, width {summary.shape.width:g}"
            if chosen is not None:
                text += (f" — predicted {_pred(chosen)}, real {_num(chosen.real, '.2f')}"
                         f", size {chosen.size_mb:.4g} MB")
                if chosen.latency_ms is not None:
                    text += f", latency {chosen.latency_ms:.3g} ms"
                if chosen.energy_j is not None:
                    text += f", energy {chosen.energy_j:.3g} J"
            elif summary.accuracy is not None:
                text += f" — real accuracy {summary.accuracy:.2f}"
            out.append(text)
        elif summary.goal is None:
            out.append(f"no goal: {sum(1 for r in rows if r.complying)} complying shapes")
        else:
            out.append(f"no shape complies ({summary.reason})")
        out.append(f"reason: {summary.reason}")
    else:
        out.append(f"search not finished ({summary.reason}); {summary.running} trial(s) running")
    feas = summary.n_feasible
    if feas:
        speed = feas / summary.trainings if summary.trainings else float("inf")
        out.append(f"saving: {summary.trainings} trainings for {feas} feasible shapes "
                   f"(of {summary.n_space} in the space) — {speed:.1f}× fewer than training "
                   "every feasible shape")
    else:
        out.append(f"trainings so far: {summary.trainings} (design space: {summary.n_space})")
    if summary.surrogate and summary.surrogate.get("method"):
        s = summary.surrogate
        extra = ", ".join(f"{k} {v:.3g}" for k, v in (("R²", s.get("r2")),
                                                       ("LOO MAE", s.get("loo_mae")))
                          if isinstance(v, (int, float)))
        out.append(f"accuracy model: {s['method']} on {s.get('n_train')} trainings"
                   + (f" ({extra})" if extra else ""))
    return out


def print_result(study: optuna.Study, console: Console | None = None, *,
                 include_all: bool = False) -> tuple[list[ResultRow], SearchSummary]:
    """Print the result table and summary of the search in ``study``; return them."""
    console = console or Console()
    rows = result_table(study, include_all=include_all)
    summary = search_summary(study)
    what = "feasible" if include_all else "complying"
    if not summary.finished and rows and all(r.predicted is None for r in rows):
        what = "trained so far"
    title = f"{study.study_name}: {what} shapes"
    if rows:
        console.print(result_rich_table(rows, title=title))
    else:
        console.print(f"{title}: none yet")
    for line in summary_lines(summary, rows):
        console.print(line, highlight=False)
    return rows, summary
