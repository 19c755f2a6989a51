"""Reading a search's answer from a stored study — in any process, even while workers run."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.policy.stop import SearchStatus
from optuna_shape.space.constraints import Constraints
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape, Variant

__all__ = ["ResultRow", "SearchSummary", "best_shape", "result_table", "search_summary",
           "is_finished", "load_config", "effective_status"]

_SAME = object()
"""``best_shape``'s default goal: the goal the study searched for."""


@dataclass(frozen=True)
class ResultRow:
    """One feasible shape in the result table (units: MB, ms per batch, J per batch;
    ``cost_predicted``: latency or energy is a prediction of predicted screening, not a
    measurement — never so for a trained shape).

    In a search over precisions a row is one (shape, precision) candidate: ``precision`` names
    it, and size, latency, energy and accuracies are that precision's."""

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
    precision: str | None = None
    cost_predicted: bool = False

    @property
    def shape(self) -> Shape:
        """The row's shape."""
        return Shape(self.depth, self.width)

    @property
    def candidate(self) -> Shape | Variant:
        """The row's shape, or its (shape, precision) :class:`Variant` in a search over
        precisions."""
        if self.precision is None:
            return self.shape
        return Variant(self.depth, self.width, self.precision)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON, CSV or pandas); ``precision`` only in a search over
        precisions."""
        d = asdict(self)
        if self.precision is None:
            d.pop("precision")
        return d


@dataclass(frozen=True)
class SearchSummary:
    """Where a search stands: counts, the fit quality and the answer (``None`` until done).

    ``status`` is the stored stop status (a :class:`~optuna_shape.policy.SearchStatus`, equal
    to its word: ``"answered"``, ``"unconfirmed"``, ``"complying_set"``, ``"no_feasible"``,
    ``"floor_not_reached"``, ``"all_failed"``; ``None`` until the search has finished; a word
    stored by a later version stays a plain ``str``; :func:`effective_status` is what reports
    show), ``confidence`` how sure the search is of its answer (when computed; for
    ``"unconfirmed"`` its P(accuracy ≥ floor)),
    ``unconfirmed`` for an unconfirmed answer ``{"p_floor", "p_confirm_next"}`` (the probability
    one more training of it confirms it) with, when known, ``"training_s"`` (the predicted
    seconds of that training), ``"more"`` and ``"p_confirm_more"`` (the probability that that
    many more trainings, the most the search puts on one shape, confirm it), ``note`` plain
    words when ``study.best_trial`` names another shape than the answer. ``stopped_early``
    counts the trainings early stopping ended (each is one of ``trainings``) and
    ``epochs_saved`` the planned epochs they did not run. In a search over precisions
    ``n_feasible`` counts (shape, precision) candidates and ``n_feasible_shapes`` the distinct
    shapes among them (one training serves every precision of a shape; ``None`` in a search of
    one precision).
    """

    finished: bool
    shape: Shape | Variant | None
    reason: str
    goal: str | None
    n_space: int
    n_feasible: int | None
    n_planned: int | None
    trainings: int
    running: int
    surrogate: dict[str, Any] | None
    accuracy: float | None
    status: SearchStatus | str | None = None
    confidence: float | None = None
    note: str | None = None
    cost_screening: dict[str, Any] | None = None
    stopped_early: int = 0
    epochs_saved: int = 0
    n_feasible_shapes: int | None = None
    unconfirmed: dict[str, Any] | None = None
    compute: dict[str, Any] | None = None
    """Compute in seconds of training time: ``spent_s`` (every training charged so far),
    ``budget_s`` (``None``: no compute budget) and ``all_feasible_s`` (the predicted compute of
    training every feasible shape once to the end; ``None`` until the search has finished)."""


def load_config(study: optuna.Study) -> dict[str, Any]:
    """The shape-search configuration stored in ``study``.

    Raises:
        ValueError: the study was not made by optuna-shape.
    """
    cfg = st.read_config(st.study_attrs(study))
    if cfg is None:
        raise ValueError(f"study {study.study_name!r} holds no optuna-shape search "
                         "(no ShapeSampler has run on it)")
    return cfg


def is_finished(study: optuna.Study) -> bool:
    """Whether the search stored in ``study`` has finished."""
    return st.read_result(st.study_attrs(study)) is not None


def best_shape(study: optuna.Study, *, constraints: Constraints | None = None,
               goal: Any = _SAME) -> Shape | Variant | None:
    """The answer of a finished search: the verified best shape, or ``None`` when nothing
    complies (or the search had no goal: see :func:`result_table` for the complying set; or it
    searched the frontier: see :func:`frontier`).

    When the budget ended before any shape was confirmed, it is the best-supported trained
    shape, and :func:`search_summary` says so (``status == "unconfirmed"``, ``confidence`` its
    P(accuracy ≥ floor)); it is ``None`` only when no trained shape plausibly meets the floor.

    Before the search has finished it returns ``None`` with a warning.

    With ``constraints`` or ``goal``, it answers those limits and that goal from the trainings
    already in the study instead, with no training (``osh.answer_for`` says how sure that
    answer is and what more training would settle it).
    """
    if constraints is not None or goal is not _SAME:
        from optuna_shape.sampler.requery import answer_from_evidence

        cfg = load_config(study)
        if constraints is None:
            constraints = Constraints.from_dict(cfg.get("constraints"))
        return answer_from_evidence(study, constraints,
                                    cfg.get("goal") if goal is _SAME else goal).shape
    result = st.read_result(st.study_attrs(study))
    if result is None:
        warnings.warn(f"the shape search in study {study.study_name!r} has not finished yet",
                      stacklevel=2)
        return None
    return result.shape


def _trials_by_shape(study: optuna.Study) -> tuple[dict[Shape, list[st.TrialRecord]], int]:
    """Trainings that got their shape, by shape; and the number of trainings running."""
    by: dict[Shape, list[st.TrialRecord]] = {}
    running = 0
    for t in map(st.decode_trial, st.all_trials(study)):
        if not (t.is_training and t.trained):
            continue
        if t.state == TrialState.RUNNING:
            running += 1
        assert t.shape is not None
        by.setdefault(t.shape, []).append(t)
    return by, running


def search_summary(study: optuna.Study) -> SearchSummary:
    """Counts, fit quality and the answer of the search stored in ``study``."""
    attrs = st.study_attrs(study)
    cfg = load_config(study)
    result = st.read_result(attrs)
    fit = st.read_fit(attrs)
    by, running = _trials_by_shape(study)
    cost = st.read_cost_screen(attrs)
    from optuna_shape.sampler.snapshot import TrialCache, read_snapshot

    details = None if result is None else result.details
    stored = None if details is None else details.compute
    unconfirmed = None if details is None else details.unconfirmed
    compute = {"spent_s": round(read_snapshot(study, TrialCache()).compute_spent(), 3),
               "budget_s": cfg.get("budget_seconds"),
               "all_feasible_s": None if stored is None else stored.all_feasible_s}
    trainings = sum(1 for ts in by.values() for t in ts
                    if t.state in (TrialState.COMPLETE, TrialState.FAIL) or t.stopped_early)
    stopped = [t for ts in by.values() for t in ts if t.stopped_early]
    if result is not None:
        trainings = max(trainings, result.trainings)
    space = cfg["space"]
    surrogate = None
    if fit:
        surrogate = {"method": fit.method, "n_train": fit.n_train, "r2": fit.r2,
                     "loo_mae": fit.loo_mae, "trained": [list(c) for c in fit.trained]}
    n_feasible = result.n_feasible if result is not None else (fit.n_feasible if fit else None)
    return SearchSummary(
        finished=result is not None,
        shape=None if result is None else result.shape,
        reason=result.reason if result is not None else (
            "running" if running else "not finished"),
        goal=cfg.get("goal"),
        n_space=(len(space["depths"]) * len(space["widths"])
                 * max(1, len(space.get("precisions", ())))),
        n_feasible=n_feasible,
        n_planned=None if result is None else result.n_planned,
        trainings=trainings,
        running=running,
        surrogate=surrogate,
        accuracy=None if result is None else result.accuracy,
        status=None if result is None else result.status,
        confidence=None if result is None else result.confidence,
        note=None if result is None else result.note,
        cost_screening=None if cost is None else cost.to_json(),
        stopped_early=len(stopped),
        epochs_saved=sum(t.epochs_saved or 0 for t in stopped),
        unconfirmed=None if unconfirmed is None else unconfirmed.to_json(),
        compute=compute,
        n_feasible_shapes=(len({(c.depth, c.width) for c in fit.shapes})
                           if fit and any(c.precision is not None for c in fit.shapes) else None),
    )


def effective_status(summary: SearchSummary, *, n_done: int, n_failed: int,
                     any_complying: Callable[[], bool]) -> SearchStatus | str:
    """How the search ended, as every report states it: :attr:`SearchStatus.RUNNING` before it
    has finished, else the stored status — derived from the summary and the trainings for a
    result stored without one — except that a complying set with no complying shape reads as
    no answer (``floor_not_reached`` when a training completed, ``all_failed`` when all
    failed, ``no_feasible`` when none ran).

    ``n_done`` / ``n_failed``: completed and failed trainings; ``any_complying``: whether the
    result table has a complying shape (called only for a complying set).

    Example:
        >>> s = SearchSummary(True, None, "", None, 4, 4, None, 2, 0, None, None,
        ...                   status=SearchStatus.COMPLYING_SET)
        >>> effective_status(s, n_done=2, n_failed=0, any_complying=lambda: False)
        <SearchStatus.FLOOR_NOT_REACHED: 'floor_not_reached'>
    """
    if not summary.finished:
        return SearchStatus.RUNNING
    status = summary.status
    if not status:
        if summary.shape is not None:
            status = SearchStatus.ANSWERED
        elif summary.n_feasible == 0:
            status = SearchStatus.NO_FEASIBLE
        elif not n_done and n_failed:
            status = SearchStatus.ALL_FAILED
        elif summary.goal is None:
            status = SearchStatus.COMPLYING_SET
        else:
            status = SearchStatus.FLOOR_NOT_REACHED
    if status == SearchStatus.COMPLYING_SET and not any_complying():
        status = (SearchStatus.FLOOR_NOT_REACHED if n_done else
                  SearchStatus.ALL_FAILED if n_failed else SearchStatus.NO_FEASIBLE)
    return status


def result_table(study: optuna.Study, *, include_all: bool = False) -> list[ResultRow]:
    """Every complying shape (``include_all``: every feasible shape) of the stored search.

    Rows are in goal order (rank 1 first) with predicted accuracy ± std, size, latency, energy,
    the mean real accuracy where trained, and the stage it was trained in. Before the model is
    fitted, rows list the trained shapes with their real accuracies and no prediction.

    Predicted accuracies are clipped to the percent range, 0 to 100, for reporting (every
    table, plot and dashboard view reads these rows): the accuracy model itself is unbounded,
    so near the top its mean can pass 100 (the search decides on the model's own numbers). The
    std is the model's, unchanged.
    """
    attrs = st.study_attrs(study)
    cfg = load_config(study)
    fit = st.read_fit(attrs)
    result = st.read_result(attrs)
    space_dict = cfg["space"]
    try:
        space: ShapeSpace | None = ShapeSpace.from_dict(space_dict)
    except ValueError:  # a user family not registered in this process
        space = None
    by, _ = _trials_by_shape(study)
    meas = st.read_measurements(attrs)
    chosen = None if result is None else result.shape

    def row(shape: Shape | Variant, rank: int | None, pred: float | None, std: float | None,
            comp: bool) -> ResultRow:
        precision = shape.precision
        base = Shape(shape.depth, shape.width)
        trials = by.get(base, [])
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        values = [t.value for t in done]
        if precision is not None:
            done = [t for t in done if t.accuracies and precision in t.accuracies]
            values = [t.accuracies[precision] for t in done]  # type: ignore[index]
        real = sum(values) / len(values) if values else None
        stages = [t.stage for t in done]
        m = st.measurement_of(meas, shape) or Measurement()
        size = (space.size_mb(base, precision or "fp32") if space else float("nan"))
        if pred is not None:
            pred = min(max(pred, 0.0), 100.0)
        return ResultRow(
            rank, shape.depth, shape.width, round(size, 6),
            space.param_count(base) if space else None,
            m.latency_ms, m.energy_j, pred, std, real, bool(done),
            stages[0] if stages else None, comp, shape == chosen, precision, m.is_predicted,
        )

    rows: list[ResultRow] = []
    if fit is None:
        if chosen is not None:
            rows.append(row(chosen, 1, None, None, True))
        precisions = space_dict.get("precisions") or ()
        trained = [Variant(b.depth, b.width, p) for b in sorted(by) for p in precisions
                   ] if precisions else sorted(by)
        for shape in trained:
            r = row(shape, None, None, None, False)
            if r.trained and shape != chosen:
                rows.append(r)
        return rows
    pred = fit.predictions()
    ranking = list(fit.ranking)
    if chosen is not None and (not ranking or ranking[0] != chosen):
        if chosen in ranking:
            ranking.remove(chosen)
        ranking.insert(0, chosen)  # rank 1 is the stored answer
    ranked = set(ranking)
    for i, shape in enumerate(ranking, start=1):
        p, s = pred.get(shape, (None, None))
        rows.append(row(shape, i, p, s, True))
    if include_all:
        for shape, (p, s) in pred.items():
            if shape not in ranked:
                rows.append(row(shape, None, p, s, False))
    return rows
