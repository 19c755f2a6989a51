"""Views of a search in optuna-dashboard: a markdown note with the result table and the plots.

:func:`attach_to_dashboard` is idempotent: the figures are saved under fixed graph-object ids
(``osh-grid``, ``osh-accuracy-vs-params``, …), so calling it again replaces them, and the note is
rewritten only when its text changed. ``optuna-shape search`` calls it at the end of a search and
``optuna-shape report --update-dashboard`` calls it again (the latest state wins).
"""

from __future__ import annotations

import optuna

from optuna_shape.policy.stop import SearchStatus
from optuna_shape.reporting.results import ResultRow, load_config, result_table, search_summary

__all__ = ["attach_to_dashboard", "note_markdown", "record_screened", "GRAPH_IDS"]

GRAPH_IDS = {
    "grid": "osh-grid",
    "accuracy_vs_params": "osh-accuracy-vs-params",
    "latency_vs_depth": "osh-latency-vs-depth",
    "latency_vs_width": "osh-latency-vs-width",
    "front": "osh-front",
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

    record_screened(study)
    rows = result_table(study)
    body = note_markdown(study, rows)
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


def record_screened(study: optuna.Study) -> int:
    """Add one PRUNED trial per shape screening rejected, so the dashboard lists it with its
    reason: params ``depth`` and ``width``, user attributes ``stage`` = ``"screened"``,
    ``reject_reason``, ``size_mb`` and the measured ``latency_ms`` / ``energy_j`` (fp32). In a
    search over precisions a shape is listed when every precision of it was rejected, its
    reason naming each precision's.

    Only for a finished search whose feasible set is known; shapes that already have such a
    trial are skipped, so calling it again adds nothing. These trials are not trainings: the
    results, the plots and the search ignore them. Returns the number of trials added.
    """
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from optuna_shape import store as st
    from optuna_shape.reporting.plots import _data, _reason
    from optuna_shape.space.design_space import ShapeSpace

    summary = search_summary(study)
    if not summary.finished or summary.n_feasible is None:
        return 0
    cfg = load_config(study)
    try:
        space = ShapeSpace.from_dict(cfg["space"])
    except ValueError:  # a user family not registered in this process
        return 0
    rows = result_table(study, include_all=True)
    if len(rows) != summary.n_feasible:
        return 0  # the feasible set is not fully known (no model was fitted)
    feasible = {r.shape for r in rows}  # a shape feasible at any of its precisions
    screened = [s for s in space.shapes if s not in feasible]
    done = set()
    for t in st.all_trials(study, states=(TrialState.PRUNED,)):
        rec = st.decode_trial(t)
        if rec.rejected and rec.shape is not None:
            done.add(rec.shape)
    todo = [s for s in screened if s not in done]
    if not todo:
        return 0
    d = _data(study)
    dists = {"depth": CategoricalDistribution(list(space.depths)),
             "width": CategoricalDistribution(list(space.widths))}
    for shape in todo:
        attrs = {"stage": "screened", "reject_reason": _reason(d, shape),
                 "size_mb": round(space.size_mb(shape), 4)}
        m = d["meas"].get(shape) or {}
        for key in ("latency_ms", "energy_j"):
            if m.get(key) is not None:
                attrs[key] = round(float(m[key]), 4)
        study.add_trial(create_trial(state=TrialState.PRUNED,
                                     params={"depth": shape.depth, "width": shape.width},
                                     distributions=dists, user_attrs=attrs))
    return len(todo)


def note_markdown(study: optuna.Study, rows: list[ResultRow] | None = None) -> str:
    """The study note: the answer and why it was chosen first, then the table and how to read
    the trials. For a frontier search the front (cheapest first, each shape's P(on front)) takes
    the answer's place."""
    from optuna_shape.reporting.front_tables import front_markdown
    from optuna_shape.reporting.limits import frontier
    from optuna_shape.reporting.outcomes import (
        FRONTIER,
        GOAL_WORDS,
        UNCONFIRMED,
        front_words,
        limits_text,
        search_status,
        unconfirmed_words,
    )
    from optuna_shape.reporting.tables import _pred, markdown_table, summary_lines

    rows = result_table(study) if rows is None else rows
    summary = search_summary(study)
    cons = load_config(study).get("constraints") or {}
    floor = cons.get("min_accuracy")
    task = (f"Goal: {GOAL_WORDS.get(summary.goal, summary.goal)}; limits: {limits_text(cons)}"
            + (f"; accuracy floor {floor:g}" if floor is not None else "") + ".")
    lines: list[str] = []
    chosen = next((r for r in rows if r.chosen), None)
    front = (frontier(study) if summary.finished and summary.status == FRONTIER else None)
    if front is not None:
        cost = front[0].cost_name if front else "size"
        lines += [f"# The accuracy–{cost} front: {len(front)} shape"
                  f"{'s' if len(front) != 1 else ''} to pick from", "", task, ""]
        words = (front_words(study, summary, front) if front
                 else search_status(study, summary)[1])
        lines.append(f"**{words[0].upper() + words[1:]}.** **Why:** {summary.reason}.")
    elif summary.finished and summary.shape is not None:
        sh = summary.shape
        precision = getattr(sh, "precision", None)
        lines.append(f"# Answer: depth {sh.depth}, width {sh.width:g}"
                     + (f", precision {precision}" if precision else ""))
        lines.append("")
        lines.append(task)
        lines.append("")
        why = [f"**Why:** {summary.reason}."]
        if chosen is not None:
            why.append(f"Measured accuracy {chosen.real:.2f}" if chosen.real is not None
                       else "Not measured")
            why[-1] += f" (predicted {_pred(chosen)}), size {chosen.size_mb:.4g} MB"
            if chosen.latency_ms is not None:
                why[-1] += f", latency {chosen.latency_ms:.3g} ms"
            if chosen.energy_j is not None:
                why[-1] += f", energy {chosen.energy_j:.3g} J"
            n_comply = sum(1 for r in rows if r.complying)
            why[-1] += (f"; rank {chosen.rank} of {n_comply} complying shapes."
                        if chosen.rank is not None and n_comply > 1 else ".")
        if summary.status == UNCONFIRMED:
            why.append(f"**Not confirmed** (the budget ended first): "
                       f"{unconfirmed_words(summary)}.")
        elif summary.confidence is not None:
            why.append(f"Confidence {100 * summary.confidence:.0f} %.")
        lines.append(" ".join(why))
    elif summary.finished:
        status, words = search_status(study, summary)
        head = "Complying shapes" if status == SearchStatus.COMPLYING_SET else "No answer"
        lines += [f"# {head}", "", task, "", f"**Why:** {words}."]
    else:
        _, words = search_status(study, summary)
        lines += ["# Search running", "", task, "", f"{words}."]
    lines.append("")
    rest = [x for x in summary_lines(summary, rows, wrap=False)
            if not x.startswith(("chosen shape", "  ", "front: "))]
    lines += [f"- {x}" for x in rest]
    if front is not None:
        lines += ["", "## The front (cheapest first)", ""]
        lines += front_markdown(front) if front else ["none"]
    else:
        lines += ["", "## Complying shapes (best first)", ""]
        lines += markdown_table(rows) if rows else ["none"]
    lines += ["", "## Reading the trials", "",
              "Each trial's parameters are its `depth` and `width`; its user attributes "
              "(sortable) are `stage` (why it was trained), `size_mb`, `latency_ms` and "
              "`energy_j` (when measured), `predicted_accuracy` and `predicted_std` (the "
              "model's view before training) and `constraint_<name>` (≤ 0 is satisfied). "
              "Shapes a limit rejected are pruned trials with `stage` `screened` and their "
              "`reject_reason`. "
              + ("Trainings the search stopped early are pruned trials with their "
                 "`prune_reason`, `pruned_epoch` and the learning curve's forecast of their "
                 "final accuracy (`projected_accuracy` ± `projected_std`); the search takes each "
                 "forecast as a noisier observation of its shape and counts the share of the "
                 "epochs it ran, never as the answer. "
                 if summary.stopped_early else "")
              + ("The compute budget is seconds of training time summed over every training "
                 "and worker (each training's `train_seconds`, else its duration): with one "
                 "GPU per worker, GPU-hours (a budget of 8 h is 8 GPU-hours). "
                 if (summary.compute or {}).get("budget_s") else "")
              + ("A training serves every precision: its `accuracy_by_precision` holds the "
                 "trained network's accuracy at each, `precision` the candidate proposed; "
                 "table rows are (shape, precision) candidates. "
                 if any(r.precision is not None for r in rows) else "")
              + "The study page shows the predicted accuracy over the design space (infeasible "
              "shapes marked with their reason) and accuracy against parameters"
              + ("; and the front: accuracy against cost of every trained shape, the front's "
                 "shapes marked with their P(on front), and the model's mean ± 1 std of every "
                 "feasible shape." if front is not None else ".")]
    return "\n".join(lines) + "\n"
