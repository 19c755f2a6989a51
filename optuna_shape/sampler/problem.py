"""The policy's :class:`~optuna_shape.policy.Problem` built from the study: the candidates that
pass the size limit and, once this hardware is screened, the latency and energy limits, with the
goal's cost of each. Built once per study and worker, and again when a shape whose cost was only
predicted has been measured for real."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import optuna

from optuna_shape import store as st
from optuna_shape.measurement.screening import apply_limits, candidate_size, size_screen
from optuna_shape.policy import Problem
from optuna_shape.sampler.checks import check_hardware
from optuna_shape.sampler.context import SearchContext
from optuna_shape.sampler.snapshot import Snapshot
from optuna_shape.space.constraints import goal_cost
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape

__all__ = ["training_work", "screened_problem", "measurements_of"]

_logger = logging.getLogger("optuna_shape")


def training_work(space: ShapeSpace, candidates: Sequence[Shape]) -> dict[Shape, float]:
    """What a training of each candidate costs relative to the others: multiply-accumulates
    per forward pass for wide ResNets (analytic), parameters for other families (counting their
    MACs would build every shape on the meta device)."""
    if space.family.name == "wrn":
        from optuna_shape.measurement.flops import wrn_macs

        return {c: float(wrn_macs(c.depth, c.width, space.in_channels, space.num_classes,
                                  space.image_size)) for c in candidates}
    return {c: float(space.param_count(Shape(c.depth, c.width))) for c in candidates}


def measurements_of(ctx: SearchContext, study: optuna.Study) -> dict[Shape, Measurement]:
    """The measurements the study's cached problem was built from (after
    :func:`screened_problem` returned one)."""
    return ctx.state.problems[st.study_id(study)][1]


def screened_problem(ctx: SearchContext, study: optuna.Study, snap: Snapshot) -> Problem | None:
    """The screened design space (``None`` while screening on this hardware is pending)."""
    state = ctx.state
    sid = st.study_id(study)
    if sid in state.problems and not (state.n_predicted.get(sid) and st.count_predicted(
            snap.attrs, st.hardware_hash(ctx.hardware() or "")) != state.n_predicted[sid]):
        return state.problems[sid][0]
    space, cons = ctx.space, ctx.constraints
    passed, _ = size_screen(space, ctx.candidates(), cons.max_size_mb)
    measurements: dict[Shape, Measurement] = {}
    hw = ctx.hardware()
    if hw is not None and passed:
        check_hardware(study, snap.attrs, hw)
        h = st.hardware_hash(hw)
        if st.screened_key(h) not in snap.attrs:
            return None
        measurements = st.read_measurements(snap.attrs, h)
        if ctx.precisions:  # keyed by candidate
            measurements = {c: m for c in passed
                            if (m := st.measurement_of(measurements, c)) is not None}
        passed, _ = apply_limits(passed, measurements, cons, latency=ctx.needs_latency,
                                 energy=ctx.needs_energy)
    sizes = {s: candidate_size(space, s) for s in passed}
    costs: dict[Shape, float] = {}
    cost = goal_cost(ctx.goal)
    if cost == "size":
        costs = dict(sizes)
    elif cost is not None:
        costs = {s: float(measurements[s].cost(cost)) for s in passed}  # type: ignore[arg-type]
    problem = Problem(tuple(passed), sizes, costs, ctx.goal, cons.min_accuracy,
                      training_work(space, passed), space.family.accuracy_trend)
    rebuilt = sid in state.problems
    state.problems[sid] = (problem, measurements)
    state.n_predicted[sid] = sum(1 for m in measurements.values() if m.is_predicted)
    if rebuilt:  # a predicted shape was measured for real: the feasible set changed
        return problem
    n_planned = 0
    if ctx.settings.mode == "paper":
        from optuna_shape.policy.paper import planned_shapes

        n_planned = len(planned_shapes(problem, ctx.settings))
    ctx.reporter.on_screened(len(passed), ctx.n_candidates, n_planned)
    if not passed:
        _logger.warning("optuna-shape: no shape of the design space meets the limits")
    return problem
