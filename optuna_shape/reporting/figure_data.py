"""What the figures are drawn from: one read of a study (trained, rejected and predicted shapes,
measurements, limits) and the small helpers every figure shares (the accuracy axis's band and
floor line, why a shape is where it is). Plotly is not imported here."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.reporting.results import ResultRow, load_config, result_table, search_summary
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.shape import Shape, Variant

__all__ = ["accuracy_band"]


def _data(study: optuna.Study) -> dict[str, Any]:
    cfg = load_config(study)
    try:
        space: ShapeSpace | None = ShapeSpace.from_dict(cfg["space"])
    except ValueError:  # a user family not registered in this process
        space = None
    depths = [int(d) for d in cfg["space"]["depths"]]
    widths = [float(w) for w in cfg["space"]["widths"]]
    precisions = [str(p) for p in cfg["space"].get("precisions") or ("fp32",)]
    candidates: dict[Shape, dict[str, ResultRow]] = defaultdict(dict)
    for r in result_table(study, include_all=True):
        candidates[r.shape][r.precision or "fp32"] = r
    rows = {s: _representative(list(c.values())) for s, c in candidates.items()}
    summary = search_summary(study)
    meas = st.read_measurements(st.study_attrs(study))
    trained: dict[Shape, list[float]] = defaultdict(list)
    trained_at: dict[tuple[Shape, str], list[float]] = defaultdict(list)
    stages: dict[Shape, str] = {}
    rejected: dict[Shape, str] = {}
    for t in st.all_trials(study):
        rec = st.decode_trial(t)
        if rec.shape is None:
            continue
        if rec.rejected and t.state == TrialState.PRUNED:
            rejected[rec.shape] = str(t.user_attrs.get("reject_reason"))
        elif rec.is_training and rec.trained and t.state == TrialState.COMPLETE \
                and rec.value is not None and math.isfinite(rec.value):
            trained[rec.shape].append(float(rec.value))
            stages.setdefault(rec.shape, str(rec.stage or "?"))
            for p, acc in (rec.accuracies or {"fp32": float(rec.value)}).items():
                trained_at[(rec.shape, p)].append(float(acc))
    cons = cfg.get("constraints") or {}
    fit_done = any(r.predicted is not None for r in rows.values())
    return dict(space=space, depths=depths, widths=widths, precisions=precisions, rows=rows,
                candidates=candidates, meas=meas, trained=trained, trained_at=trained_at,
                stages=stages, rejected=rejected, cons=cons, chosen=summary.shape,
                fit_done=fit_done, name=study.study_name)


def _representative(rows: list[ResultRow]) -> ResultRow:
    """The candidate a grid cell shows for its shape: the chosen one, else the best ranked,
    else the most accurate (predicted, else measured)."""
    def key(r: ResultRow) -> tuple[bool, bool, float, float]:
        acc = r.predicted if r.predicted is not None else r.real
        return (not r.chosen, r.rank is None, r.rank if r.rank is not None else 0.0,
                -(acc if acc is not None and math.isfinite(acc) else -math.inf))
    return min(rows, key=key)


def _multi(d: dict[str, Any]) -> bool:
    """Whether the search is over more than one precision."""
    return len(d["precisions"]) > 1


def accuracy_band(d: dict[str, Any]) -> tuple[float, float] | None:
    """The accuracy range worth looking at: from the floor (or the median of the predicted and
    measured accuracies, whichever is lower) to the best, with a small margin; ``None`` when
    nothing is known yet. Predictions above 100 are capped when accuracies are in percent."""
    values = [v for r in d["rows"].values() for v in (r.predicted, r.real)
              if v is not None and math.isfinite(v)]
    values += [v for vs in d["trained"].values() for v in vs]
    if not values:
        return None
    values.sort()
    percent = values[-1] > 1.5
    top = min(values[-1], 100.0 if percent else 1.0)
    low = values[len(values) // 2]
    floor = d["cons"].get("min_accuracy")
    if floor is not None and floor < top:
        low = min(low, floor)
    if top - low < 1e-9:
        low = top - (1.0 if percent else 0.01)
    margin = 0.05 * (top - low)
    return low - margin, top + margin


def _reason(d: dict[str, Any], s: Shape | Variant) -> str:
    """Why screening rejected a shape (in a search over precisions: each precision's reason)
    or a candidate."""
    if s in d["rejected"]:
        return d["rejected"][s]
    if _multi(d) and not isinstance(s, Variant):
        return "; ".join(f"{p}: {_reason(d, Variant(s.depth, s.width, p))}"
                         for p in d["precisions"])
    cons, space = d["cons"], d["space"]
    precision = s.precision if isinstance(s, Variant) else "fp32"
    if cons.get("max_size_mb") is not None and space is not None:
        size = space.size_mb(Shape(s.depth, s.width), precision)
        if size > cons["max_size_mb"]:
            return f"size {size:.4g} MB > {cons['max_size_mb']:g} MB"
    m = st.measurement_of(d["meas"], s) or {}
    if m.get("error"):
        return str(m["error"])
    if cons.get("max_latency_ms") is not None and m.get("latency_ms") is not None \
            and m["latency_ms"] > cons["max_latency_ms"]:
        return f"latency {m['latency_ms']:.4g} ms > {cons['max_latency_ms']:g} ms"
    if cons.get("max_energy_j") is not None and m.get("energy_j") is not None \
            and m["energy_j"] > cons["max_energy_j"]:
        return f"energy {m['energy_j']:.4g} J > {cons['max_energy_j']:g} J"
    return "infeasible"


def _accuracy_axis(d: dict[str, Any], fig: Any) -> Any:
    """Zoom the accuracy axis on the decision band and draw the floor."""
    band = accuracy_band(d)
    if band is not None:
        fig.update_yaxes(range=list(band))
    floor = d["cons"].get("min_accuracy")
    if floor is not None:
        fig.add_hline(y=floor, line_dash="dash", line_color="red",
                      annotation_text=f"floor {floor:g}")
    return fig


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
