"""Views of a search in optuna-dashboard: a markdown note with the result table and the plots.

:func:`attach_to_dashboard` is idempotent: the figures are saved under fixed graph-object ids
(``osh-grid``, ``osh-accuracy-vs-params``, …), so calling it again replaces them, and the note is
rewritten only when its text changed. ``optuna-shape search`` calls it at the end of a search and
``optuna-shape report`` calls it again (the latest state wins).
"""

from __future__ import annotations

import optuna

from optuna_shape.results import result_table, search_summary

__all__ = ["attach_to_dashboard", "GRAPH_IDS"]

GRAPH_IDS = {
    "grid": "osh-grid",
    "accuracy_vs_params": "osh-accuracy-vs-params",
    "latency_vs_depth": "osh-latency-vs-depth",
    "latency_vs_width": "osh-latency-vs-width",
}


def attach_to_dashboard(study: optuna.Study) -> list[str]:
    """Save the result note and the plotly figures of ``study`` for optuna-dashboard.

    Example:
        ``attach_to_dashboard(study)`` then ``optuna-dashboard sqlite:///optuna-shape.db``
        shows the note and the figures on the study page.

    Returns:
        The graph-object ids saved.

    Raises:
        ValueError: the study holds no optuna-shape search.
    """
    from optuna_dashboard import save_note, save_plotly_graph_object
    from optuna_dashboard._note import get_note

    from optuna_shape.reporting.plots import make_figures
    from optuna_shape.reporting.tables import result_markdown

    rows = result_table(study)
    body = result_markdown(rows, search_summary(study))
    body += ("\nPlots: see the graphs below (grid of predicted accuracy, accuracy vs parameters"
             ", latency when measured). Trial user attributes: `stage`, `size_mb`, "
             "`latency_ms`, `energy_j`, `predicted_accuracy`, `reject_reason`.\n")
    try:
        current = get_note(study)
    except Exception:  # an unreadable or absent note: just write ours
        current = None
    if current != body:
        save_note(study, body)
    saved = []
    for name, fig in make_figures(study).items():
        saved.append(save_plotly_graph_object(study, fig, graph_object_id=GRAPH_IDS[name]))
    return saved
