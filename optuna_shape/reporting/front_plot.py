"""The accuracy–cost front as a plotly figure (:func:`front_figure`; the ``front`` figure of
:func:`~optuna_shape.reporting.plots.make_figures`): measured accuracy against cost (size,
latency or energy; log scale) of every trained shape, the front's shapes joined as a staircase
with their P(on front) on hover, and the model's mean ± 1 std of every feasible shape as error
bars. Plotly is imported only when a figure is made.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from optuna_shape import store as st
from optuna_shape.reporting.figure_data import _accuracy_axis, _data, _mean
from optuna_shape.reporting.results import load_config
from optuna_shape.space.shape import Shape

__all__ = ["front_figure"]

_COST_METRIC = {"latency": "latency_ms", "energy": "energy_j"}
_COST_AXIS = {"size": "size (MB)", "latency": "latency (ms per batch)",
              "energy": "energy (J per batch)"}


def _cost_of(d: dict[str, Any], shape: Shape, cost: str) -> float | None:
    """A shape's cost: its size from the space, its latency or energy as screening stored it."""
    if cost == "size":
        return d["space"].size_mb(shape) if d["space"] is not None else None
    m = st.measurement_of(d["meas"], shape) or {}
    value = m.get(_COST_METRIC[cost])
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _front_figure(d: dict[str, Any], study: optuna.Study, cost: str) -> Any:
    import plotly.graph_objects as go

    from optuna_shape.reporting.front_tables import COST_UNITS, percent_text
    from optuna_shape.reporting.limits import frontier

    unit = COST_UNITS[cost]
    front = frontier(study, cost=cost)
    fig = go.Figure()
    details = st.read_result(st.study_attrs(study))
    details = None if details is None else details.details
    if details is not None and details.shapes and details.posterior_mean \
            and details.posterior_std:
        band = []
        for s, m, sd in zip(details.shapes, details.posterior_mean, details.posterior_std,
                            strict=False):
            c = _cost_of(d, Shape(s.depth, s.width), cost)
            if c is not None and c > 0:
                band.append((c, m, sd, s))
        band.sort(key=lambda q: q[0])
        if band:
            fig.add_trace(go.Scatter(
                x=[q[0] for q in band], y=[q[1] for q in band], mode="markers",
                marker=dict(color="#9e9e9e", size=6),
                error_y=dict(type="data", array=[q[2] for q in band], color="#bdbdbd",
                             thickness=1.5, width=3),
                name="model: mean ± 1 std (every feasible shape)",
                text=[f"({q[3].depth}, {q[3].width:g}): {q[1]:.2f} ± {q[2]:.2f} predicted"
                      for q in band],
                hovertemplate=f"%{{text}}<br>{cost} %{{x:.4g}} {unit}<extra></extra>"))
    on = {(r.depth, r.width) for r in front}
    pts = []
    for s, values in d["trained"].items():
        c = _cost_of(d, s, cost)
        if c is not None and c > 0 and (s.depth, s.width) not in on:
            pts.append((c, _mean(values), len(values), s))
    if pts:
        fig.add_trace(go.Scatter(
            x=[q[0] for q in pts], y=[q[1] for q in pts], mode="markers",
            marker=dict(color="#4fc3f7", size=10, line=dict(width=1, color="black")),
            name="trained",
            text=[f"({q[3].depth}, {q[3].width:g}): accuracy {q[1]:.2f} ({q[2]} training"
                  f"{'s' if q[2] != 1 else ''})" for q in pts],
            hovertemplate=f"%{{text}}<br>{cost} %{{x:.4g}} {unit}<extra></extra>"))
    if front:
        rows = sorted(front, key=lambda r: (r.cost, -r.accuracy))
        fig.add_trace(go.Scatter(
            x=[r.cost for r in rows], y=[r.accuracy for r in rows], mode="lines+markers",
            line=dict(shape="hv", color="red", width=2),
            marker=dict(symbol="star", size=16, color="red", line=dict(width=1, color="black")),
            name="on the front (P ≥ 50 %)",
            text=[f"({r.depth}, {r.width:g}): accuracy {r.accuracy:.2f} ({r.trainings} training"
                  f"{'s' if r.trainings != 1 else ''}), P(on front) {percent_text(r.p_front)}"
                  for r in rows],
            hovertemplate=f"%{{text}}<br>{cost} %{{x:.4g}} {unit}<extra></extra>"))
    fig.update_layout(title=f"{d['name']}: the accuracy–{cost} front",
                      xaxis_title=_COST_AXIS[cost], yaxis_title="accuracy", xaxis_type="log",
                      legend=dict(orientation="h", y=-0.2))
    return _accuracy_axis(d, fig)


def front_figure(study: optuna.Study, cost: str | None = None) -> Any:
    """The accuracy–cost front of any study as a plotly figure: measured accuracy against
    ``cost`` (``"size"``, ``"latency"`` or ``"energy"``; default: the cost the study's goal
    names, else size) on a log axis, for every trained shape; the front's shapes
    (:func:`~optuna_shape.frontier`) joined as a staircase, with their P(on front) on hover;
    and, when the stored result has them (a finished adaptive search), the model's mean ± 1 std
    of every feasible shape as error bars.

    Raises:
        ValueError: the study holds no optuna-shape search, or no measurements of ``cost``.
    """
    from optuna_shape.space.constraints import goal_cost

    cost = cost or goal_cost(load_config(study).get("goal")) or "size"
    if cost not in _COST_AXIS:
        raise ValueError(f"cost must be size, latency or energy, got {cost!r}")
    return _front_figure(_data(study), study, cost)
