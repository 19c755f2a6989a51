"""Screening for the sampler: measuring the design space once per study and hardware (the
worker that takes the queued screening trial runs :func:`screen_space`), measuring a
hand-enqueued shape, and the per-trial record of a hand-enqueued training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from optuna_shape import store as st
from optuna_shape.measurement.screening import (
    apply_limits,
    constraint_values,
    measure_shape,
    size_screen,
    use_prediction,
)
from optuna_shape.sampler.checks import check_hardware
from optuna_shape.sampler.context import SearchContext
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape

if TYPE_CHECKING:
    from optuna_shape.sampler.snapshot import Snapshot

__all__ = ["screen_space", "measure_one", "record_user_trial"]


def screen_space(ctx: SearchContext, study: optuna.Study, snap: Snapshot) -> None:
    """Measure every size-feasible shape still missing (latency for all, then energy for
    those within the latency limit), then mark the hardware screened. In a search over
    precisions every size-feasible (shape, precision) candidate is measured, converted to its
    precision. With predicted screening (``measurement.screening``; shapes of one precision only),
    measure a designed subset and every shape near a limit and predict the rest
    (:mod:`optuna_shape.sampler.predicted_costs`)."""
    hw = ctx.hardware()
    assert hw is not None
    check_hardware(study, snap.attrs, hw)
    st.write_hardware_name(study, hw)
    shapes, _ = size_screen(ctx.space, ctx.candidates(), ctx.constraints.max_size_mb)
    stored = st.read_measurements(snap.attrs, st.hardware_hash(hw))
    records: dict[Shape, Measurement] = dict(stored)
    if ctx.precision_search:  # keyed by candidate
        records = {c: st.measurement_of(stored, c) or Measurement() for c in shapes}
    missing = sum(1 for s in shapes if not records.get(s) or records[s].is_predicted)
    if not ctx.precision_search and use_prediction(ctx.measurement.screening, missing):
        from optuna_shape.sampler.predicted_costs import screen_predicted

        screen_predicted(ctx, study, hw, shapes, records)
        st.mark_screened(study, hw)
        return
    total = len(shapes) * (int(ctx.needs_latency) + int(ctx.needs_energy))
    done = 0
    for want in ("latency", "energy"):
        if (want == "latency" and not ctx.needs_latency) or \
                (want == "energy" and not ctx.needs_energy):
            continue
        for s in shapes:
            rec = records.setdefault(s, Measurement())
            done += 1
            if (rec.cost(want) is not None and not rec.is_predicted) or rec.failed:
                continue
            if rec.is_predicted:
                # measured for real now: no predicted value stays in the record
                rec = records[s] = Measurement()
            if want == "energy" and ctx.needs_latency:
                ok, _ = apply_limits([s], {s: rec}, ctx.constraints, latency=True,
                                     energy=False)
                if not ok:
                    continue  # rejected by latency: no energy run (paper order)
            at = {} if s.precision is None else {"precision": s.precision}
            rec = records[s] = rec.updated(measure_shape(
                ctx.space, s.shape, ctx.measurement, latency=want == "latency",
                energy=want == "energy", **at))
            st.write_measurement(study, hw, s, rec)
            ctx.reporter.on_screen(done, total, s, rec)
    st.mark_screened(study, hw)

def measure_one(ctx: SearchContext, study: optuna.Study, shape: Shape
                ) -> Measurement | None:
    """Measurements of one shape (e.g. a hand-enqueued one), measuring it if missing."""
    hw = ctx.hardware()
    if hw is None:
        return None
    attrs = st.study_attrs(study)
    check_hardware(study, attrs, hw)
    rec = st.read_measurements(attrs, st.hardware_hash(hw)).get(shape)
    if rec is None or rec.is_predicted:  # a prediction is no measurement
        st.write_hardware_name(study, hw)
        rec = Measurement.of(measure_shape(ctx.space, shape, ctx.measurement,
                                           latency=ctx.needs_latency, energy=ctx.needs_energy))
        st.write_measurement(study, hw, shape, rec)
    return rec

# ------------------------------------------------------------------ per-trial record -
def record_user_trial(ctx: SearchContext, trial: optuna.Trial, shape: Shape) -> None:
    """Write what the dashboard shows about a hand-enqueued trial, and prune it if
    ``shape`` breaks a limit (planned trials carry these attributes from creation).

    Raises:
        optuna.TrialPruned: the shape exceeds a size, latency or energy limit (or could not
            be measured); the reason is in the trial's ``reject_reason`` user attribute.
    """
    study = trial.study
    # over several precisions a training serves each: the smallest is what must fit
    size = min(ctx.space.size_mb(shape, p) for p in ctx.space.precisions)
    attrs: dict[str, Any] = {"stage": "user", "params": ctx.space.param_count(shape),
                             "size_mb": round(size, 6)}
    reason: str | None = None
    measurement: Measurement | None = None
    if shape not in ctx.space:
        reason = f"shape {shape} is not in the design space"
    elif ctx.constraints.max_size_mb is not None and size > ctx.constraints.max_size_mb:
        reason = f"size {size:.4g} MB > {ctx.constraints.max_size_mb:g} MB"
    elif ctx.hardware() is not None:
        measurement = measure_one(ctx, study, shape)
    if measurement:
        for cost, k in (("latency", "latency_ms"), ("energy", "energy_j")):
            if measurement.cost(cost) is not None:
                attrs[k] = measurement.cost(cost)
    for name, value in constraint_values(ctx.constraints, size, measurement).items():
        trial.set_constraint(name, value)
        attrs[f"constraint_{name}"] = value
    if reason is None and measurement is not None and shape in ctx.space:
        ok, rej = apply_limits([shape], {shape: measurement}, ctx.constraints,
                               latency=ctx.needs_latency, energy=ctx.needs_energy)
        if not ok:
            reason = rej[shape]
    if reason is not None:
        attrs["reject_reason"] = reason
    st.set_trial_user_attrs(study, st.trial_id(trial), attrs)
    if reason is not None:
        raise optuna.TrialPruned(f"shape {shape} rejected before training: {reason}")
    ctx.reporter.on_assign(trial.number, shape, "user")
