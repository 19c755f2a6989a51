"""Reading a search's answer from a stored study — in any process, even while workers run."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import storage_keys as keys
from optuna_shape.design_space import ShapeSpace
from optuna_shape.shape import Shape

__all__ = ["ResultRow", "SearchSummary", "best_shape", "result_table", "search_summary",
           "is_finished", "load_config"]


@dataclass(frozen=True)
class ResultRow:
    """One feasible shape in the result table (units: MB, ms per batch, J per batch)."""

    rank: int | None
    depth: int
    width: float
    size_mb: float
    params: int | None
    latency_ms: float | None
    energy_j: float | None
    predicted: float | None
    std: float | None
    real: float | None
    trained: bool
    stage: str | None
    complying: bool
    chosen: bool

    @property
    def shape(self) -> Shape:
        """The row's shape."""
        return Shape(self.depth, self.width)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON, CSV or pandas)."""
        return asdict(self)


@dataclass(frozen=True)
class SearchSummary:
    """Where a search stands: counts, the fit quality and the answer (``None`` until done)."""

    finished: bool
    shape: Shape | None
    reason: str
    goal: str | None
    n_space: int
    n_feasible: int | None
    n_planned: int | None
    trainings: int
    running: int
    surrogate: dict[str, Any] | None
    accuracy: float | None


def load_config(study: optuna.Study) -> dict[str, Any]:
    """The shape-search configuration stored in ``study``.

    Raises:
        ValueError: the study was not made by optuna-shape.
    """
    cfg = keys.read_study_json(keys.read_all_study_attrs(study), keys.CONFIG)
    if cfg is None:
        raise ValueError(f"study {study.study_name!r} holds no optuna-shape search "
                         "(no ShapeSampler has run on it)")
    return cfg


def is_finished(study: optuna.Study) -> bool:
    """Whether the search stored in ``study`` has finished."""
    return keys.read_study_json(keys.read_all_study_attrs(study), keys.RESULT) is not None


def best_shape(study: optuna.Study) -> Shape | None:
    """The answer of a finished search: the verified best shape, or ``None`` when nothing
    complies (or the search had no goal: see :func:`result_table` for the complying set).

    Before the search has finished it returns ``None`` with a warning.
    """
    result = keys.read_study_json(keys.read_all_study_attrs(study), keys.RESULT)
    if result is None:
        warnings.warn(f"the shape search in study {study.study_name!r} has not finished yet",
                      stacklevel=2)
        return None
    if result.get("shape") is None:
        return None
    d, w = result["shape"]
    return Shape(int(d), float(w))


def _trials_by_shape(study: optuna.Study) -> tuple[dict[Shape, list], int]:
    by: dict[Shape, list] = {}
    running = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            running += 1
        p = t.params
        if "depth" in p and "width" in p:
            by.setdefault(Shape(int(p["depth"]), float(p["width"])), []).append(t)
    return by, running


def search_summary(study: optuna.Study) -> SearchSummary:
    """Counts, fit quality and the answer of the search stored in ``study``."""
    attrs = keys.read_all_study_attrs(study)
    cfg = load_config(study)
    result = keys.read_study_json(attrs, keys.RESULT)
    fit = keys.read_study_json(attrs, keys.FIT)
    by, running = _trials_by_shape(study)
    trainings = sum(1 for ts in by.values() for t in ts
                    if t.state in (TrialState.COMPLETE, TrialState.FAIL)
                    and t.user_attrs.get("stage") not in ("stopped", "idle"))
    space = cfg["space"]
    shape = None
    if result and result.get("shape"):
        shape = Shape(int(result["shape"][0]), float(result["shape"][1]))
    surrogate = None
    if fit:
        surrogate = {k: fit.get(k) for k in ("method", "n_train", "r2", "loo_mae")}
    return SearchSummary(
        finished=result is not None,
        shape=shape,
        reason=(result or {}).get("reason", "running" if running else "not finished"),
        goal=cfg.get("goal"),
        n_space=len(space["depths"]) * len(space["widths"]),
        n_feasible=(fit or {}).get("n_feasible", (result or {}).get("n_feasible")),
        n_planned=(result or {}).get("n_planned"),
        trainings=trainings,
        running=running,
        surrogate=surrogate,
        accuracy=(result or {}).get("accuracy"),
    )


def result_table(study: optuna.Study, *, include_all: bool = False) -> list[ResultRow]:
    """Every complying shape (``include_all``: every feasible shape) of the stored search.

    Rows are in goal order (rank 1 first) with predicted accuracy ± std, size, latency, energy,
    the mean real accuracy where trained, and the stage it was trained in. Before the model is
    fitted, rows list the trained shapes with their real accuracies and no prediction.
    """
    attrs = keys.read_all_study_attrs(study)
    cfg = load_config(study)
    fit = keys.read_study_json(attrs, keys.FIT)
    result = keys.read_study_json(attrs, keys.RESULT)
    space_dict = cfg["space"]
    try:
        space: ShapeSpace | None = ShapeSpace.from_dict(space_dict)
    except ValueError:  # a user family not registered in this process
        space = None
    by, _ = _trials_by_shape(study)
    hw = [k.split(":")[2] for k in attrs if k.startswith("osh:screened:")]
    meas = {}
    if hw:
        prefix = f"osh:m:{hw[0]}:"
        for k, v in attrs.items():
            if k.startswith(prefix):
                meas[k[len(prefix):]] = v
    chosen = None
    if result and result.get("shape"):
        chosen = Shape(int(result["shape"][0]), float(result["shape"][1]))

    def row(shape: Shape, rank: int | None, pred: float | None, std: float | None,
            comp: bool) -> ResultRow:
        trials = by.get(shape, [])
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        real = sum(t.value for t in done) / len(done) if done else None
        stages = [t.user_attrs.get("stage") for t in done]
        m = meas.get(shape.key, {})
        size = space.size_mb(shape) if space else float("nan")
        return ResultRow(
            rank, shape.depth, shape.width, round(size, 6),
            space.param_count(shape) if space else None,
            m.get("latency_ms"), m.get("energy_j"), pred, std, real, bool(done),
            stages[0] if stages else None, comp, shape == chosen,
        )

    rows: list[ResultRow] = []
    if fit is None:
        for shape in sorted(by):
            r = row(shape, None, None, None, False)
            if r.trained:
                rows.append(r)
        return rows
    pred = {Shape(int(d), float(w)): (p, s)
            for (d, w), p, s in zip(fit["shapes"], fit["predicted"], fit["std"], strict=True)}
    ranking = [Shape(int(d), float(w)) for d, w in fit["ranking"]]
    ranked = set(ranking)
    for i, shape in enumerate(ranking, start=1):
        p, s = pred.get(shape, (None, None))
        rows.append(row(shape, i, p, s, True))
    if include_all:
        for shape, (p, s) in pred.items():
            if shape not in ranked:
                rows.append(row(shape, None, p, s, False))
    return rows
