"""Presenting a search: rich tables and progress, plotly figures, optuna-dashboard views.

Plotly and optuna-dashboard are imported only when a figure or a dashboard view is made.
"""

from optuna_shape.reporting.rich_progress import RichReporter, make_reporter
from optuna_shape.reporting.tables import (
    print_result,
    result_markdown,
    result_rich_table,
    summary_lines,
)

__all__ = [
    "RichReporter",
    "make_reporter",
    "print_result",
    "result_markdown",
    "result_rich_table",
    "summary_lines",
    "attach_to_dashboard",
    "make_figures",
    "write_plots",
]


def __getattr__(name: str):  # lazy: plotly / optuna-dashboard only when asked for
    if name in ("make_figures", "write_plots"):
        from optuna_shape.reporting import plots

        return getattr(plots, name)
    if name == "attach_to_dashboard":
        from optuna_shape.reporting.dashboard import attach_to_dashboard

        return attach_to_dashboard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
