"""Predicted screening for the sampler, and measuring a predicted shape for real before it trains.

Screening with prediction (:func:`screen_predicted`) measures what :func:`screen_costs` asks for
(a space-filling design, then every shape whose prediction is within its uncertainty of a limit)
and stores every other shape's cost as a *predicted* record (``predicted: true``, the point
prediction plus its ``*_low`` / ``*_high`` bounds). Energy, when needed, is screened the same way
over the shapes within the latency limit.

A prediction never decides what trains: :func:`confirm_measured` measures for real every proposed
shape whose record is a prediction before it is queued (the sampler then rebuilds the feasible
set and decides again), so every trained shape — and so every answer — has real measurements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import optuna

from optuna_shape import store as st
from optuna_shape.measurement.flops import wrn_macs
from optuna_shape.measurement.screening import measure_shape
from optuna_shape.models.cost_model import screen_costs, shape_features
from optuna_shape.sampler.context import SearchContext
from optuna_shape.space.constraints import COST_FIELDS
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape

__all__ = ["screen_predicted", "confirm_measured", "cost_features"]

_EMPTY = Measurement()
_METRICS = tuple((m, COST_FIELDS[m], f"max_{COST_FIELDS[m]}") for m in ("latency", "energy"))


def cost_features(space: ShapeSpace, shapes: list[Shape]) -> Any:
    """Cost-model features of ``shapes`` of ``space`` (MACs exact for wide-ResNets; for other
    families the parameter count stands in, because counting MACs means building each
    network)."""
    macs: list[float | None] = [
        wrn_macs(s.depth, s.width, space.in_channels, space.num_classes, space.image_size)
        if space.family.name == "wrn" else None for s in shapes]
    return shape_features([space.param_count(s) for s in shapes], macs,
                          [s.depth for s in shapes], [s.width for s in shapes])


def screen_predicted(ctx: SearchContext, study: optuna.Study, hw: str, shapes: list[Shape],
                     records: dict[Shape, Measurement]) -> None:
    """Screen ``shapes`` (within the size limit) with predicted costs; ``records`` holds what
    is already stored (real measurements are reused) and is updated in place with the new
    records."""
    summaries: dict[str, dict[str, Any]] = {}
    candidates = list(shapes)
    done = 0
    for want, field_name, limit_name in _METRICS:
        if not (ctx.needs_latency if want == "latency" else ctx.needs_energy) or not candidates:
            continue
        limit = getattr(ctx.constraints, limit_name)
        known: dict[int, float | None] = {}
        for i, s in enumerate(candidates):
            rec = records.get(s, _EMPTY)
            if rec.failed:
                known[i] = None
            elif rec.cost(want) is not None and not rec.is_predicted:
                known[i] = float(rec.cost(want))

        def measure(i: int, want: str = want, field_name: str = field_name,
                    cands: list[Shape] = candidates) -> float | None:
            nonlocal done
            s = cands[i]
            rec = records.get(s, _EMPTY).updated(
                measure_shape(ctx.space, s, ctx.measurement, latency=want == "latency",
                              energy=want == "energy"))
            records[s] = rec
            st.write_measurement(study, hw, s, rec)
            done += 1
            ctx.reporter.on_screen(done, len(shapes), s, rec)
            return None if rec.failed else rec.cost(want)

        res = screen_costs(cost_features(ctx.space, candidates), measure, limit, measured=known)
        unit = field_name.rsplit("_", 1)[1]
        stem = field_name.rsplit("_", 1)[0]
        for i, (mean, low, high) in res.predicted.items():
            s = candidates[i]
            rec = records.get(s, _EMPTY).updated({
                field_name: mean, f"{stem}_low_{unit}": low, f"{stem}_high_{unit}": high,
                "predicted": True})
            records[s] = rec
            st.write_measurement(study, hw, s, rec)
        summaries[field_name] = res.summary()
        candidates = [candidates[i] for i in res.feasible]  # energy only within latency
    n_pred = sum(1 for s in shapes if records.get(s, _EMPTY).is_predicted)
    st.write_cost_screen(study, hw, st.CostScreenRecord(
        n_shapes=len(shapes), n_measured=len(shapes) - n_pred - sum(
            1 for s in shapes if s not in records), n_predicted=n_pred, metrics=summaries))


def confirm_measured(ctx: SearchContext, study: optuna.Study, shapes: Iterable[Shape],
                     measurements: Mapping[Shape, Measurement]) -> bool:
    """Measure for real each of ``shapes`` whose stored record is a prediction (replacing the
    record); return whether anything was measured (the feasible set must then be rebuilt)."""
    hw = ctx.hardware()
    todo = [s for s in dict.fromkeys(shapes) if measurements.get(s, _EMPTY).is_predicted]
    if hw is None or not todo:
        return False
    stored = st.read_measurements(st.study_attrs(study), st.hardware_hash(hw))
    for s in todo:
        if not stored.get(s, _EMPTY).is_predicted:
            continue  # another worker measured it meanwhile
        rec = measure_shape(ctx.space, s, ctx.measurement,
                            latency=ctx.needs_latency, energy=ctx.needs_energy)
        st.write_measurement(study, hw, s, rec)
    return True
