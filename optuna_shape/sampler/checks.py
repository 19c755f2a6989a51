"""What a worker checks before it joins a study: the study's direction, the configuration stored
with it (every worker must share it) and the hardware its measurements were taken on."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.study import StudyDirection

from optuna_shape import store as st
from optuna_shape.sampler.context import SearchContext
from optuna_shape.space.constraints import is_frontier

__all__ = ["config", "check_study", "check_hardware", "check_frontier"]


def check_frontier(goal: str | None, policy: Any, precisions: tuple[str, ...]) -> None:
    """The frontier goal runs on the adaptive policy, counts trainings (no compute budget) and
    searches one precision.

    Raises:
        ValueError: naming what is not supported with the goal and what would be.
    """
    if not is_frontier(goal):
        return
    if getattr(policy, "mode", None) != "adaptive":
        raise ValueError(f"goal={goal!r} needs policy=osh.Adaptive(...), got policy={policy!r}")
    if policy.budget is not None:
        raise ValueError(f"goal={goal!r} counts trainings: use Adaptive(max_trainings=...) "
                         f"instead of budget={policy.budget!r}")
    if len(precisions) > 1:
        raise ValueError(f"goal={goal!r} searches one precision, got precisions "
                         f"{', '.join(precisions)}: use ShapeSpace(precision='fp32') (or one "
                         f"other)")


def config(ctx: SearchContext) -> dict[str, Any]:
    """The settings every worker of a study must share (stored in the study)."""
    s = ctx.settings
    cfg: dict[str, Any] = {
        "space": ctx.space.to_dict(),
        "constraints": ctx.constraints.to_dict(),
        "goal": ctx.goal,
        "mode": s.mode,
        "max_attempts": s.max_attempts,
    }
    if s.mode == "paper":
        cfg.update(strategy=s.strategy, sampling=s.sampling, refit=s.refit)
        if s.sampling == "random":
            cfg["seed"] = s.seed
    else:
        cfg.update(confidence=s.confidence, max_trainings=s.max_trainings,
                   n_initial=s.n_initial, seed=s.seed)
        if s.budget is not None:  # absent otherwise: studies made before it still load
            cfg["budget_seconds"] = s.budget
        trend = ctx.space.family.accuracy_trend
        if trend != "paper":  # the default is absent: studies made before it still load
            cfg["accuracy_trend"] = trend  # a family registered alike by every worker
        if ctx.goal is None:  # the complying set is the paper's interval sample
            cfg.update(strategy=s.strategy, sampling=s.sampling)
    if ctx.needs_latency or ctx.needs_energy:
        cfg["latency_batch_size"] = ctx.measurement.batch_size
    return cfg


def check_study(ctx: SearchContext, study: optuna.Study,
                attrs: dict[str, Any] | None = None) -> None:
    """Refuse a study whose direction or stored configuration contradicts this worker's
    :func:`config` (stored when the study has none yet). Checked on every snapshot: a worker
    that raced the first write is caught too."""
    sid = st.study_id(study)
    if sid not in ctx.state.checked:
        st.make_sqlite_atomic(st.storage_of(study))  # idempotent; open_storage already does it
        st.spread_pops(study)  # idempotent; optuna_shape.optimize already does it
        if len(study.directions) > 1 or study.direction != StudyDirection.MAXIMIZE:
            raise ValueError(
                "ShapeSampler needs a single-objective study with direction='maximize' (the "
                "objective returns accuracy), got directions "
                f"{[d.name for d in study.directions]}")
    if attrs is None:
        attrs = st.study_attrs(study)
    stored = st.read_config(attrs)
    mine = config(ctx)
    if stored is None:
        st.write_config(study, mine)
        stored = st.read_config(st.study_attrs(study))
    details = st.config_difference(stored or {}, mine)
    if details:
        raise ValueError(
            f"study {study.study_name!r} was created with a different shape search "
            f"({details}). Use the same settings to join it, or a new study name.")
    hw = ctx.hardware()
    if hw is not None:
        check_hardware(study, attrs, hw)
    ctx.state.checked.add(sid)


def check_hardware(study: optuna.Study, attrs: Any, hw: str) -> None:
    """Refuse measurements of ``study`` taken on hardware other than ``hw``."""
    known = st.known_hardware(attrs)
    if known and hw not in known:
        listed = "; ".join(sorted(known))
        raise ValueError(
            f"study {study.study_name!r} holds measurements taken on other hardware "
            f"({listed}); this worker measures on {hw!r}. Latency and energy are not "
            "comparable across hardware: run this worker on the same hardware, pass "
            "target_hardware=<one of the keys above> (CLI: --target-hardware) to use those "
            "measurements knowingly, or use a new study.")
