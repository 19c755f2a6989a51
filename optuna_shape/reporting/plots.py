"""Plotly figures of a stored search (paper Fig. 3 and Fig. 6, and the design-space map).

* ``grid``: the depth × width grid coloured by predicted accuracy; infeasible shapes greyed out
  with their rejection, trained and verified shapes marked, the chosen shape starred. The colour
  scale spans the band where the decision is made (from the floor, or the median shape, to the
  best), so differences of a few tenths of a percent stay visible.
* ``accuracy_vs_params``: accuracy against parameter count, one line per width (paper Fig. 6);
  lines are predictions, markers real accuracies; the accuracy axis is zoomed on the same band.
* ``latency_vs_depth`` / ``latency_vs_width``: measured latency against depth (one line per
  width) and against width (one line per depth), paper Fig. 3 — only when latency was measured.
* ``front``: measured accuracy against cost (size, latency or energy; log scale) of every
  trained shape, the front's shapes joined as a staircase with their P(on front) on hover, and
  the model's mean ± 1 std of every feasible shape as error bars — for a frontier search, or
  for any study through :func:`~optuna_shape.reporting.front_plot.front_figure`
  (``make_figures(study, front_cost=...)``).

In a search over precisions a grid cell shows the shape's best candidate (the chosen one, else
the best ranked, else the most accurate) and its hover every precision's numbers; the accuracy
figure plots accuracy against model size, one line per width and precision (a lower precision
is the same network at fewer bits); the latency figures have one line per width (or depth) and
precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from optuna_shape.reporting.figure_data import (
    _accuracy_axis,
    _data,
    _mean,
    _multi,
    _reason,
    accuracy_band,
)
from optuna_shape.reporting.results import ResultRow, load_config, search_summary
from optuna_shape.space.shape import Shape, Variant

__all__ = ["make_figures", "write_plots", "PLOT_NAMES"]

PLOT_NAMES = ("grid", "accuracy_vs_params", "latency_vs_depth", "latency_vs_width", "front")


def _grid(d: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    depths, widths, rows = d["depths"], d["widths"], d["rows"]
    xs = [f"{w:g}" for w in widths]
    z, text = [], []
    infeasible_x, infeasible_y, infeasible_t = [], [], []
    for dep in depths:
        zr, tr = [], []
        for w in widths:
            s = Shape(dep, w)
            r = rows.get(s)
            val = None
            if r is not None:
                val = r.predicted if r.predicted is not None else r.real
            zr.append(val)
            if r is None and d["fit_done"]:
                reason = _reason(d, s)
                infeasible_x.append(f"{w:g}")
                infeasible_y.append(dep)
                infeasible_t.append(f"({dep}, {w:g}) infeasible: {reason}")
                tr.append(f"infeasible: {reason}")
            elif r is None:
                tr.append("not predicted yet")
            elif _multi(d):
                cands = d["candidates"][s]
                tr.append("<br>".join(
                    _hover(cands[p], f"{p}: ") if p in cands
                    else f"{p}: infeasible: {_reason(d, Variant(dep, w, p))}"
                    for p in d["precisions"]))
            else:
                tr.append(_hover(r))
        z.append(zr)
        text.append(tr)
    band = accuracy_band(d)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        x=xs, y=[str(v) for v in depths], z=z, text=text, colorscale="Viridis",
        zmin=band[0] if band else None, zmax=band[1] if band else None,
        colorbar=dict(title="predicted<br>accuracy" + ("<br>(best precision)"
                                                       if _multi(d) else "")),
        hovertemplate="depth %{y}, width %{x}<br>%{text}<extra></extra>", name="predicted"))
    if infeasible_x:
        fig.add_trace(go.Scatter(
            x=infeasible_x, y=[str(v) for v in infeasible_y], mode="markers",
            marker=dict(symbol="x", size=12, color="#9e9e9e", line=dict(width=1, color="black")),
            name="infeasible", text=infeasible_t, hovertemplate="%{text}<extra></extra>"))
    styles = {"sample": ("circle", "white"), "initial": ("circle", "white"),
              "acquire": ("square", "#4fc3f7"), "repeat": ("triangle-up", "#ffb74d"),
              "verify": ("diamond", "#ff9800"), "user": ("square", "#00bcd4")}
    for stage in sorted(set(d["stages"].values()), key=lambda x: (x not in styles, x)):
        symbol, color = styles.get(stage, ("circle", "#bdbdbd"))
        pts = [s for s, st_ in d["stages"].items() if st_ == stage]
        fig.add_trace(go.Scatter(
            x=[f"{s.width:g}" for s in pts], y=[str(s.depth) for s in pts], mode="markers",
            marker=dict(symbol=symbol, size=13, color=color, line=dict(width=2, color="black")),
            name=f"trained ({stage})",
            text=[f"({s.depth}, {s.width:g}) real {_mean(d['trained'][s]):.2f}"
                  for s in pts], hovertemplate="%{text}<extra></extra>"))
    if d["chosen"] is not None:
        c = d["chosen"]
        at = f", {c.precision}" if isinstance(c, Variant) else ""
        fig.add_trace(go.Scatter(
            x=[f"{c.width:g}"], y=[str(c.depth)], mode="markers", name=f"chosen{at}",
            marker=dict(symbol="star", size=22, color="red", line=dict(width=1, color="black")),
            hovertemplate=f"chosen ({c.depth}, {c.width:g}{at})<extra></extra>"))
    fig.update_layout(title=f"{d['name']}: predicted accuracy over the design space",
                      xaxis_title="width multiplier", yaxis_title="depth",
                      xaxis_type="category", yaxis_type="category",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def _hover(r: ResultRow, prefix: str = "") -> str:
    pred = "—" if r.predicted is None else f"{r.predicted:.2f} ± {r.std or 0:.2f}"
    real = "—" if r.real is None else f"{r.real:.2f}"
    sep = ", " if prefix else "<br>"
    return f"{prefix}predicted {pred}{sep}real {real}{sep}size {r.size_mb:.4g} MB"


_DASHES = {"fp32": "solid", "bf16": "dash", "int8": "dot"}
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]


def _accuracy_vs_params(d: dict[str, Any]) -> Any:
    if _multi(d):
        return _accuracy_vs_size(d)
    import plotly.graph_objects as go

    fig = go.Figure()
    space, rows = d["space"], d["rows"]
    for i, w in enumerate(d["widths"]):
        color = _PALETTE[i % len(_PALETTE)]
        pred = sorted((r.params or 0, r.predicted, r.depth) for s, r in rows.items()
                      if s.width == w and r.predicted is not None)
        if pred:
            fig.add_trace(go.Scatter(
                x=[p[0] for p in pred], y=[p[1] for p in pred], mode="lines",
                line=dict(color=color), name=f"width {w:g} (predicted)",
                text=[f"depth {p[2]}" for p in pred],
                hovertemplate="%{text}, %{x} params: predicted %{y:.2f}<extra></extra>"))
        real = sorted((space.param_count(s) if space else 0,
                       sum(v) / len(v), s.depth) for s, v in d["trained"].items() if s.width == w)
        if real:
            fig.add_trace(go.Scatter(
                x=[p[0] for p in real], y=[p[1] for p in real], mode="markers",
                marker=dict(color=color, size=9), name=f"width {w:g} (trained)",
                text=[f"depth {p[2]}" for p in real],
                hovertemplate="%{text}, %{x} params: real %{y:.2f}<extra></extra>"))
    fig.update_layout(title=f"{d['name']}: accuracy vs parameter count per width (paper Fig. 6)",
                      xaxis_title="parameters", yaxis_title="accuracy", xaxis_type="log")
    return _accuracy_axis(d, fig)


def _accuracy_vs_size(d: dict[str, Any]) -> Any:
    """Accuracy against model size, one line per (width, precision): the search over
    precisions' version of paper Fig. 6."""
    import plotly.graph_objects as go

    fig = go.Figure()
    space = d["space"]
    for i, w in enumerate(d["widths"]):
        color = _PALETTE[i % len(_PALETTE)]
        for p in d["precisions"]:
            pred = sorted((c[p].size_mb, c[p].predicted, s.depth)
                          for s, c in d["candidates"].items()
                          if s.width == w and p in c and c[p].predicted is not None)
            if pred:
                fig.add_trace(go.Scatter(
                    x=[q[0] for q in pred], y=[q[1] for q in pred], mode="lines",
                    line=dict(color=color, dash=_DASHES.get(p, "dashdot")),
                    legendgroup=f"{w:g}", name=f"width {w:g} {p} (predicted)",
                    text=[f"depth {q[2]}, {p}" for q in pred],
                    hovertemplate="%{text}, %{x:.4g} MB: predicted %{y:.2f}<extra></extra>"))
            real = sorted((space.size_mb(s, p) if space else 0.0, _mean(v), s.depth)
                          for (s, q), v in d["trained_at"].items() if q == p and s.width == w)
            if real:
                fig.add_trace(go.Scatter(
                    x=[q[0] for q in real], y=[q[1] for q in real], mode="markers",
                    marker=dict(color=color, size=9,
                                symbol={"fp32": "circle", "bf16": "square"}.get(p, "diamond")),
                    legendgroup=f"{w:g}", name=f"width {w:g} {p} (trained)",
                    text=[f"depth {q[2]}, {p}" for q in real],
                    hovertemplate="%{text}, %{x:.4g} MB: real %{y:.2f}<extra></extra>"))
    fig.update_layout(title=f"{d['name']}: accuracy vs model size per width and precision",
                      xaxis_title="size (MB)", yaxis_title="accuracy", xaxis_type="log")
    return _accuracy_axis(d, fig)


def _latency(d: dict[str, Any], against: str) -> Any | None:
    import plotly.graph_objects as go

    meas = {s: m["latency_ms"] for s, m in d["meas"].items() if m.get("latency_ms") is not None}
    if not meas:
        return None
    multi = _multi(d)

    def precision(c: Shape | Variant) -> str:
        return c.precision if isinstance(c, Variant) else "fp32"

    fig = go.Figure()
    lines = ([("width", w) for w in d["widths"]] if against == "depth"
             else [("depth", dep) for dep in d["depths"]])
    for axis, fixed in lines:
        for p in d["precisions"]:
            pts = sorted((c.depth if against == "depth" else c.width, v)
                         for c, v in meas.items()
                         if getattr(c, axis) == fixed and precision(c) == p)
            if pts:
                fig.add_trace(go.Scatter(
                    x=[q[0] for q in pts], y=[q[1] for q in pts], mode="lines+markers",
                    line=dict(dash=_DASHES.get(p, "dashdot")) if multi else None,
                    name=f"{axis} {fixed:g}" + (f" {p}" if multi else "")))
    xlabel = "depth" if against == "depth" else "width multiplier"
    limit = d["cons"].get("max_latency_ms")
    if limit is not None:
        fig.add_hline(y=limit, line_dash="dash", line_color="red",
                      annotation_text=f"limit {limit:g} ms")
    fig.update_layout(title=f"{d['name']}: latency vs {against} (paper Fig. 3)",
                      xaxis_title=xlabel, yaxis_title="latency (ms per batch)")
    return fig


def make_figures(study: optuna.Study, *, front_cost: str | None = None) -> dict[str, Any]:
    """Plotly figures of the search stored in ``study``, by name (see :data:`PLOT_NAMES`).

    The latency figures are present only when latency was measured; the ``front`` figure (see
    :func:`~optuna_shape.reporting.front_plot.front_figure`) for a finished frontier search, or
    for any study with ``front_cost`` (``"size"``, ``"latency"``, ``"energy"``).

    Raises:
        ValueError: the study holds no optuna-shape search.
    """
    from optuna_shape.reporting.front_plot import _COST_AXIS, _front_figure
    from optuna_shape.space.constraints import goal_cost, is_frontier

    d = _data(study)
    figs: dict[str, Any] = {"grid": _grid(d), "accuracy_vs_params": _accuracy_vs_params(d)}
    for against in ("depth", "width"):
        fig = _latency(d, against)
        if fig is not None:
            figs[f"latency_vs_{against}"] = fig
    goal = load_config(study).get("goal")
    if front_cost is None and is_frontier(goal) and search_summary(study).finished:
        front_cost = goal_cost(goal)
    if front_cost is not None:
        if front_cost not in _COST_AXIS:
            raise ValueError(f"front_cost must be size, latency or energy, got {front_cost!r}")
        figs["front"] = _front_figure(d, study, front_cost)
    return figs


def write_plots(study: optuna.Study, directory: str | Path, *,
                front_cost: str | None = None) -> list[Path]:
    """Write every figure of :func:`make_figures` (``front_cost``: see there) as a
    self-contained HTML file.

    Files are named ``<plot>.html`` inside ``directory`` (created if missing); plotly.js is
    embedded so the files open offline.

    Returns:
        The paths written.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in make_figures(study, front_cost=front_cost).items():
        path = out / f"{name}.html"
        fig.write_html(str(path), include_plotlyjs=True, full_html=True)
        paths.append(path)
    return paths


