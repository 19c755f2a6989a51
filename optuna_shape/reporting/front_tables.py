"""The accuracy–cost front as a table: rich for the terminal (:func:`front_rich_table`,
:func:`print_front`), markdown for the dashboard note (:func:`front_markdown`), cheapest first,
each shape with its P(on front) in percent."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from optuna_shape.reporting.limits import FrontRow
from optuna_shape.reporting.text import _num, _wrap_lines

__all__ = ["front_rich_table", "front_markdown", "print_front", "front_title", "percent_text",
           "FRONT_NOTE", "COST_UNITS"]

COST_UNITS = {"size": "MB", "latency": "ms", "energy": "J"}
"""The unit of each cost a front is drawn against (latency and energy per inference batch)."""


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
