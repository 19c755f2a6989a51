"""Every key optuna-shape writes into an Optuna storage, every Optuna-internal call, typed records.

This is the only module that touches Optuna's storage internals (``study._storage``, system
attributes, ``get_all_trials(deepcopy=False)``, ``create_new_trial`` with a template trial). The
sampler, the results API, the CLI, reporting and the dashboard read the records decoded here.
Keys are prefixed ``osh:`` so they never clash with other samplers' data. Long JSON values are
split into chunks of at most 2045 characters, as Optuna's own samplers do, so they fit any RDB
backend.

Study system attributes:
    ``osh:config``                the search configuration (space, constraints, goal, policy…)
    ``osh:hw:<hash>``             the full hardware key measurements under ``<hash>`` were taken on
    ``osh:m:<hash>:<shape key>``  one shape's hardware measurements on that hardware
    ``osh:screened:<hash>``       screening on that hardware is complete
    ``osh:costscreen:<hash>``     how screening on that hardware predicted costs (counts, error)
    ``osh:fit``                   the accuracy model's fit and the goal-ordered candidates
    ``osh:result``                the answer, once the search has finished (final once written)
Trial system attributes (set when the trial is created, in the same storage call, or — for a
planning trial that takes a training itself — by :func:`claim_training`):
    ``fixed_params``              Optuna's own: ``{"depth": …, "width": …}`` of a planned training
    ``osh:slot``                  ``"<shape key>#<k>"``: the k-th training of that shape, or
                                  ``"screen:<hash>#1"`` for the screening task
    ``osh:stage``                 the stage the trial was planned in
    ``osh:heartbeat``             through Optuna's gRPC proxy only: the worker's last beat
                                  (:class:`optuna_shape.store.backends.HeartbeatGrpcStorageProxy`)
Trial user attributes (shown by optuna-dashboard, numbers sortable): ``stage``, ``params``,
``size_mb``, ``latency_ms``, ``energy_j``, ``predicted_accuracy``, ``predicted_std``,
``prediction_source``, ``reject_reason`` (screening rejected the shape), ``end_reason`` (why a
trial that does not train ended: stages ``plan``, ``duplicate``, ``screen``, ``stopped``),
``fail_reason``, ``interrupted`` (Ctrl-C stopped the training: not the shape's failure),
``constraint_<name>``; in a search over precisions ``accuracy_by_precision``
and ``test_accuracy_by_precision`` (``{precision: accuracy}``, written by the objective: the
trained fp32 network evaluated after conversion to each precision of the space, in the units of
the trial's value), ``precision_errors`` (``{precision: why it could not be converted}``) and
``precision`` (the candidate the policy proposed; the training serves every precision).
Measurements of a precision other than fp32 are stored under the candidate's key
(``osh:m:<hash>:d22-w2.5-int8``); fp32 measurements keep the shape's key.
A training stopped early by :class:`~optuna_shape.ShapePruner` (PRUNED) carries ``prune_reason``,
``projected_accuracy``, ``projected_std`` and ``pruned_epoch``, and the default objective writes
``planned_epochs``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_shape.policy.stop import SearchStatus, StopDetails
from optuna_shape.space.shape import Shape, Variant

__all__ = [
    "ACCURACY_BY_PRECISION",
    "CONFIG",
    "FIT",
    "PRECISION_ERRORS",
    "RESULT",
    "SLOT",
    "STAGE",
    "TEST_ACCURACY_BY_PRECISION",
    "TRAINING_STAGES",
    "TrialRecord",
    "FitRecord",
    "ResultRecord",
    "accuracy_by_precision",
    "candidate_from_key",
    "measurement_name",
    "measurement_of",
    "hardware_hash",
    "measurement_key",
    "screened_key",
    "hardware_name_key",
    "study_attrs",
    "read_json",
    "write_json",
    "read_config",
    "write_config",
    "read_fit",
    "write_fit",
    "read_result",
    "write_result",
    "read_measurements",
    "screened_hashes",
    "write_measurement",
    "mark_screened",
    "store_measurements",
    "known_hardware",
    "is_predicted",
    "count_predicted",
    "CostScreenRecord",
    "read_cost_screen",
    "write_cost_screen",
    "all_trials",
    "curves",
    "decode_trial",
    "accuracy_by_precision",
    "create_waiting_trial",
    "trial_record",
    "set_trial_user_attrs",
    "set_trial_system_attr",
    "set_study_user_attr",
    "has_heartbeat",
    "make_sqlite_atomic",
    "rdb_engine",
    "fail_stale",
    "trial_state",
]

CONFIG = "osh:config"
FIT = "osh:fit"
RESULT = "osh:result"
SLOT = "osh:slot"
STAGE = "osh:stage"
CHUNK = 2045
ACCURACY_BY_PRECISION = "accuracy_by_precision"
"""Trial user attribute: ``{precision: accuracy}`` of the trained network at each precision."""
TEST_ACCURACY_BY_PRECISION = "test_accuracy_by_precision"
PRECISION_ERRORS = "precision_errors"

PRUNE_REASON = "prune_reason"
PROJECTED_ACCURACY = "projected_accuracy"
PROJECTED_STD = "projected_std"
PRUNED_EPOCH = "pruned_epoch"
PLANNED_EPOCHS = "planned_epochs"
TRAIN_SECONDS = "train_seconds"
"""Trial user attribute: the compute a training used, in seconds (the objective's own figure;
without it a training is charged its trial's duration)."""
INTERRUPTED = "interrupted"
"""Trial user attribute: ``True`` on a training stopped by Ctrl-C (KeyboardInterrupt); it is
retried without counting as the shape's failure."""

TRAINING_STAGES = frozenset({"initial", "acquire", "repeat", "sample", "verify", "user"})
"""Stages of trials that train a shape (the others: ``plan``, ``duplicate``, ``stopped``,
``screen``)."""


# ------------------------------------------------------------------ keys ---------------------
def hardware_hash(hardware: str) -> str:
    """Short stable hash of a hardware key (used inside attribute names)."""
    return hashlib.sha256(hardware.encode()).hexdigest()[:10]


def measurement_key(hw_hash: str, shape_key: str) -> str:
    """Study attribute holding one shape's measurements on one hardware."""
    return f"osh:m:{hw_hash}:{shape_key}"


def screened_key(hw_hash: str) -> str:
    """Study attribute marking that screening finished on one hardware."""
    return f"osh:screened:{hw_hash}"


def hardware_name_key(hw_hash: str) -> str:
    """Study attribute holding the full hardware description for ``hw_hash``."""
    return f"osh:hw:{hw_hash}"


# ------------------------------------------------------------------ study attributes ---------
def study_attrs(study: optuna.Study) -> dict[str, Any]:
    """All study system attributes (one storage round trip)."""
    return study._storage.get_study_system_attrs(study._study_id)


def write_json(study: optuna.Study, key: str, value: Any) -> None:
    """Write a JSON-able value under ``key``, chunked when long.

    A long value is stored as ``key:0 … key:k-1`` text chunks plus ``key`` =
    ``{"__chunks__": k}``; the chunks are written first so a reader never sees a count without
    its chunks.
    """
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    storage, sid = study._storage, study._study_id
    if len(text) <= CHUNK:
        storage.set_study_system_attr(sid, key, json.loads(text))
        return
    parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    for i, part in enumerate(parts):
        storage.set_study_system_attr(sid, f"{key}:{i}", part)
    storage.set_study_system_attr(sid, key, {"__chunks__": len(parts)})


def read_json(attrs: Mapping[str, Any], key: str) -> Any:
    """Read a value written by :func:`write_json` from a dict of study attributes (``None`` when
    absent or incomplete)."""
    value = attrs.get(key)
    if isinstance(value, dict) and set(value) == {"__chunks__"}:
        parts = [attrs.get(f"{key}:{i}") for i in range(int(value["__chunks__"]))]
        if any(p is None for p in parts):
            return None
        return json.loads("".join(parts))  # type: ignore[arg-type]
    return value


def read_config(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored search configuration, or ``None``."""
    return read_json(attrs, CONFIG)


def write_config(study: optuna.Study, config: Mapping[str, Any]) -> None:
    """Store the search configuration (the first worker of a study does)."""
    write_json(study, CONFIG, dict(config))


def config_difference(stored: Mapping[str, Any], mine: Mapping[str, Any], who: str) -> str:
    """``"k: study has …, <who> has …"`` for every differing key (empty when equal)."""
    mine = json.loads(json.dumps(dict(mine)))
    diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
    return "; ".join(f"{k}: study has {stored.get(k)!r}, {who} has {mine.get(k)!r}"
                     for k in diff)


def shape_from_key(key: str) -> Shape:
    """Inverse of :attr:`Shape.key` (``"d22-w2.5"`` → ``Shape(22, 2.5)``)."""
    d, w = key.split("-", 1)
    return Shape(int(d[1:]), float(w[1:]))


def candidate_from_key(key: str) -> Shape | Variant:
    """Inverse of :attr:`Shape.key` and :attr:`Variant.key` (``"d22-w2.5-int8"`` →
    ``Variant(22, 2.5, "int8")``)."""
    parts = key.split("-")
    if len(parts) == 3:
        return Variant(int(parts[0][1:]), float(parts[1][1:]), parts[2])
    return shape_from_key(key)


def measurement_name(candidate: Shape | Variant) -> str:
    """The key a candidate's measurements are stored under: the shape's key for a shape or an
    fp32 candidate (the network measured without a precision is the fp32 one), else the
    candidate's key."""
    if isinstance(candidate, Variant) and candidate.precision == "fp32":
        return candidate.shape.key
    return candidate.key


def measurement_of(measurements: Mapping[Shape | Variant, Mapping[str, Any]],
                   candidate: Shape | Variant) -> Mapping[str, Any] | None:
    """A candidate's record in the output of :func:`read_measurements` (``None`` if absent)."""
    if isinstance(candidate, Variant) and candidate.precision == "fp32":
        return measurements.get(candidate.shape)
    return measurements.get(candidate)


def _shape(pair: Any) -> Shape:
    if len(pair) == 3:  # a (shape, precision) candidate
        return Variant(int(pair[0]), float(pair[1]), str(pair[2]))  # type: ignore[return-value]
    return Shape(int(pair[0]), float(pair[1]))


def _pair(s: Shape | Variant) -> list[Any]:
    return [s.depth, s.width, s.precision] if isinstance(s, Variant) else [s.depth, s.width]


@dataclass(frozen=True)
class FitRecord:
    """The accuracy model over the feasible shapes and the goal-ordered candidates (in a search
    over precisions, :class:`~optuna_shape.space.shape.Variant` candidates, stored as
    ``[depth, width, precision]``). ``n_train`` counts the distinct trained shapes (or
    candidates) the model was fitted on, not the trainings (repeats are one shape)."""

    shapes: tuple[Shape, ...] = ()
    predicted: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    ranking: tuple[Shape, ...] = ()
    trained: tuple[Shape, ...] = ()
    method: str | None = None
    r2: float | None = None
    loo_mae: float | None = None
    n_train: int = 0
    n_feasible: int = 0
    fits: int = 1
    noise: float | None = None

    def predictions(self) -> dict[Shape, tuple[float, float]]:
        """Shape → (predicted accuracy, std)."""
        return {s: (p, sd) for s, p, sd in zip(self.shapes, self.predicted, self.std,
                                               strict=True)}

    def to_json(self) -> dict[str, Any]:
        """JSON form (shapes as ``[depth, width]`` pairs)."""
        d = asdict(self)
        for k in ("shapes", "ranking", "trained"):
            d[k] = [_pair(s) for s in getattr(self, k)]
        d["predicted"] = [round(float(x), 6) for x in self.predicted]
        d["std"] = [round(float(x), 6) for x in self.std]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FitRecord:
        """Decode :meth:`to_json` output."""
        return cls(
            shapes=tuple(_shape(p) for p in d.get("shapes", [])),
            predicted=tuple(float(x) for x in d.get("predicted", [])),
            std=tuple(float(x) for x in d.get("std", [])),
            ranking=tuple(_shape(p) for p in d.get("ranking", [])),
            trained=tuple(_shape(p) for p in d.get("trained", [])),
            method=d.get("method"), r2=d.get("r2"), loo_mae=d.get("loo_mae"),
            n_train=int(d.get("n_train", 0)), n_feasible=int(d.get("n_feasible", 0)),
            fits=int(d.get("fits", 1)), noise=d.get("noise"),
        )


def read_fit(attrs: Mapping[str, Any]) -> FitRecord | None:
    """The stored fit, or ``None`` before the first one."""
    d = read_json(attrs, FIT)
    return None if d is None else FitRecord.from_json(d)


def write_fit(study: optuna.Study, fit: FitRecord) -> None:
    """Store the fit, and a short summary as study user attributes for the dashboard."""
    write_json(study, FIT, fit.to_json())
    ranked = fit.predictions()
    set_study_user_attr(study, "surrogate", {
        "method": fit.method, "n_train": fit.n_train, "n_feasible": fit.n_feasible,
        "r2": fit.r2, "loo_mae": fit.loo_mae,
    })
    set_study_user_attr(study, "candidates_top10", [
        f"{s} pred {ranked[s][0]:.4g}±{ranked[s][1]:.2g}" for s in fit.ranking[:10]
        if s in ranked
    ])


@dataclass(frozen=True)
class ResultRecord:
    """The answer of a finished search (the policy's stop decision plus counts).

    Attributes:
        shape: the answer, or ``None`` (nothing complies, or no goal: see the complying set); a
            :class:`~optuna_shape.space.shape.Variant` in a search over precisions.
        reason: why the search stopped, in plain words.
        status: how the search ended (:class:`~optuna_shape.policy.SearchStatus`); a word this
            version does not know (stored by a later one) stays the plain ``str`` it was.
        confidence: probability the answer is right, when the policy computed one.
        details: the policy's details (posterior, noise, …) less the fit, which is stored on
            its own (:class:`~optuna_shape.policy.StopDetails`).
        goal: the search's goal.
        accuracy: mean measured accuracy of the answer.
        trainings: trainings run, repeats and failures included.
        n_feasible: shapes that passed screening.
        n_space: shapes in the design space.
        n_planned: paper mode: shapes of the sample plan.
        note: plain words when ``study.best_trial`` names another shape than the answer.
    """

    shape: Shape | Variant | None
    reason: str
    status: SearchStatus | str = SearchStatus.ANSWERED
    confidence: float | None = None
    details: StopDetails = field(default_factory=StopDetails)
    goal: str | None = None
    accuracy: float | None = None
    trainings: int = 0
    n_feasible: int = 0
    n_space: int = 0
    n_planned: int | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (the details in their own codec's, :meth:`StopDetails.to_json`)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["shape"] = None if self.shape is None else [self.shape.depth, self.shape.width]
        if isinstance(self.shape, Variant):
            d["precision"] = self.shape.precision
        d["status"] = str(self.status)
        d["details"] = self.details.to_json()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ResultRecord:
        """Decode :meth:`to_json` output."""
        shape: Shape | Variant | None = None if d.get("shape") is None else _shape(d["shape"])
        if shape is not None and d.get("precision") is not None:
            shape = Variant(shape.depth, shape.width, str(d["precision"]))
        return cls(
            shape=shape,
            reason=str(d.get("reason", "")), status=SearchStatus.decode(d.get("status")),
            confidence=d.get("confidence"),
            details=StopDetails.from_json(d.get("details") if isinstance(d.get("details"), Mapping)
                                          else None),
            goal=d.get("goal"), accuracy=d.get("accuracy"),
            trainings=int(d.get("trainings", 0)), n_feasible=int(d.get("n_feasible", 0)),
            n_space=int(d.get("n_space", 0)), n_planned=d.get("n_planned"), note=d.get("note"),
        )


def read_result(attrs: Mapping[str, Any]) -> ResultRecord | None:
    """The stored result, or ``None`` while the search runs."""
    d = read_json(attrs, RESULT)
    return None if d is None else ResultRecord.from_json(d)


def write_result(study: optuna.Study, result: ResultRecord) -> ResultRecord:
    """Store the result unless one is already stored; return the stored one (final: the first
    written wins, every worker reports it)."""
    stored = read_result(study_attrs(study))
    if stored is not None:
        return stored
    write_json(study, RESULT, result.to_json())
    answer = "none" if result.shape is None else str(result.shape)
    set_study_user_attr(study, "result", f"{answer} — {result.reason}; {result.trainings} "
                        f"trainings of {result.n_feasible} feasible shapes")
    return result


# ------------------------------------------------------------------ measurements -------------
def screened_hashes(attrs: Mapping[str, Any]) -> list[str]:
    """Hardware hashes whose screening is complete."""
    return sorted(k.split(":")[2] for k in attrs if k.startswith("osh:screened:"))


def known_hardware(attrs: Mapping[str, Any]) -> set[str]:
    """Full hardware keys that measurements in the study were taken on."""
    return {v for k, v in attrs.items() if k.startswith("osh:hw:")}


def read_measurements(attrs: Mapping[str, Any], hw_hash: str | None = None
                      ) -> dict[Shape, dict[str, Any]]:
    """Shape → measurement record on ``hw_hash`` (default: the first screened hardware); in a
    search over precisions the records of other precisions than fp32 are keyed by
    :class:`~optuna_shape.space.shape.Variant` (see :func:`measurement_of`)."""
    if hw_hash is None:
        hs = screened_hashes(attrs)
        if not hs:
            return {}
        hw_hash = hs[0]
    prefix = f"osh:m:{hw_hash}:"
    out: dict[Shape, dict[str, Any]] = {}
    for k, v in attrs.items():
        if k.startswith(prefix) and isinstance(v, dict):
            out[candidate_from_key(k[len(prefix):])] = v  # type: ignore[index]
    return out


def write_measurement(study: optuna.Study, hardware: str, shape: Shape | Variant,
                      record: Mapping[str, Any]) -> None:
    """Store one shape's (or candidate's) measurements (idempotent: equal shapes give equal
    keys)."""
    h = hardware_hash(hardware)
    study._storage.set_study_system_attr(
        study._study_id, measurement_key(h, measurement_name(shape)), dict(record))


def mark_screened(study: optuna.Study, hardware: str) -> None:
    """Record the hardware name and that screening on it is complete."""
    h = hardware_hash(hardware)
    study._storage.set_study_system_attr(study._study_id, hardware_name_key(h), hardware)
    study._storage.set_study_system_attr(study._study_id, screened_key(h), True)


def store_measurements(study: optuna.Study, hardware: str,
                       records: Mapping[Shape, Mapping[str, Any]]) -> None:
    """Store measurements taken elsewhere (e.g. a benchmark's latency table) as the study's
    complete screening on ``hardware``."""
    write_hardware_name(study, hardware)
    for shape, rec in records.items():
        write_measurement(study, hardware, shape, rec)
    mark_screened(study, hardware)


def is_predicted(record: Mapping[str, Any]) -> bool:
    """Whether a measurement record holds a predicted (not measured) latency or energy: the
    record's ``predicted`` flag, written by predicted screening; a real measurement of the shape
    replaces the whole record."""
    return bool(record.get("predicted"))


def count_predicted(attrs: Mapping[str, Any], hw_hash: str) -> int:
    """Measurement records on ``hw_hash`` that are predictions."""
    prefix = f"osh:m:{hw_hash}:"
    return sum(1 for k, v in attrs.items()
               if k.startswith(prefix) and isinstance(v, dict) and is_predicted(v))


@dataclass(frozen=True)
class CostScreenRecord:
    """How screening predicted hardware costs on one hardware.

    Attributes:
        n_shapes: shapes screened (those within the size limit).
        n_measured: shapes measured for real during screening.
        n_predicted: shapes whose cost is a prediction.
        metrics: per metric (``"latency_ms"``, ``"energy_j"``): the cost model's summary —
            ``n_measured``, ``n_predicted``, ``n_initial``, ``fits``, ``z``,
            ``heldout_median_rel_error``, ``heldout_p90_rel_error``, ``heldout_coverage``
            (leave-one-out on the measured shapes).
    """

    n_shapes: int
    n_measured: int
    n_predicted: int
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"n_shapes": self.n_shapes, "n_measured": self.n_measured,
                "n_predicted": self.n_predicted,
                "metrics": {k: dict(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CostScreenRecord:
        """Decode :meth:`to_json` output."""
        return cls(n_shapes=int(d.get("n_shapes", 0)), n_measured=int(d.get("n_measured", 0)),
                   n_predicted=int(d.get("n_predicted", 0)),
                   metrics={str(k): dict(v) for k, v in (d.get("metrics") or {}).items()})


def _cost_screen_key(hw_hash: str) -> str:
    return f"osh:costscreen:{hw_hash}"


def write_cost_screen(study: optuna.Study, hardware: str, record: CostScreenRecord) -> None:
    """Store how screening on ``hardware`` predicted costs."""
    write_json(study, _cost_screen_key(hardware_hash(hardware)), record.to_json())


def read_cost_screen(attrs: Mapping[str, Any], hw_hash: str | None = None
                     ) -> CostScreenRecord | None:
    """The stored :class:`CostScreenRecord` on ``hw_hash`` (default: the first screened
    hardware), or ``None`` when screening measured every shape."""
    if hw_hash is None:
        hs = screened_hashes(attrs)
        if not hs:
            return None
        hw_hash = hs[0]
    d = read_json(attrs, _cost_screen_key(hw_hash))
    return None if d is None else CostScreenRecord.from_json(d)


def write_hardware_name(study: optuna.Study, hardware: str) -> None:
    """Record the full hardware key (before the first measurement on it)."""
    h = hardware_hash(hardware)
    study._storage.set_study_system_attr(study._study_id, hardware_name_key(h), hardware)


# ------------------------------------------------------------------ trials -------------------
@dataclass(frozen=True)
class TrialRecord:
    """What optuna-shape knows about one trial, decoded in one place.

    Attributes:
        number: the trial number.
        trial_id: the storage's trial id.
        state: Optuna's state.
        shape: the shape it trains (params, else fixed params), or ``None``.
        slot: ``"<shape key>#<k>"`` of a planned training, ``"screen:<hash>#1"`` of the
            screening task, or ``None``.
        stage: the user attribute ``stage`` (its system attribute ``osh:stage`` before the trial
            writes one).
        value: the objective's value (COMPLETE only).
        rejected: the trial was pruned by screening (``reject_reason``) — not a training.
        trained: the objective got a shape (params are set).
        fail_reason: why a training failed, as recorded by the worker that ran it.
        accuracies: ``accuracy_by_precision`` of a training in a search over precisions.
        projected: a training stopped early (PRUNED with ``prune_reason``): its projected final
            accuracy; ``None`` otherwise.
        projected_std: the projection's standard deviation.
        epochs_saved: a training stopped early: the planned epochs it did not run (when the
            objective stored ``planned_epochs``); ``None`` otherwise.
        seconds: a finished training's compute: its ``train_seconds`` user attribute, else the
            trial's duration; ``None`` while it runs.
        fraction: the share of a full training it ran (epochs run / ``planned_epochs`` when
            both are known: a stopped or failed training), else 1.0.
        curve: the accuracy reported after epochs 1, 2, … (``trial.report``), up to the first
            missing epoch; empty when it reported none.
    """

    number: int
    trial_id: int
    state: TrialState
    shape: Shape | None
    slot: str | None
    stage: str | None
    value: float | None
    rejected: bool = False
    trained: bool = False
    fail_reason: str | None = None
    accuracies: Mapping[str, float] | None = None
    projected: float | None = None
    projected_std: float | None = None
    epochs_saved: int | None = None
    seconds: float | None = None
    fraction: float = 1.0
    curve: tuple[float, ...] = ()

    @property
    def stopped_early(self) -> bool:
        """PRUNED by :class:`~optuna_shape.ShapePruner` with a projected final accuracy."""
        return self.state == TrialState.PRUNED and self.projected is not None

    @property
    def lost(self) -> bool:
        """A FAIL training that no ``after_trial`` recorded a reason for: its worker died or
        was paused past the heartbeat grace period (the trial was failed as stale)."""
        return self.state == TrialState.FAIL and self.fail_reason is None

    @property
    def is_training(self) -> bool:
        """A planned or user training (running, queued or finished), not a yielded copy."""
        return self.shape is not None and not self.rejected and (
            self.stage in TRAINING_STAGES or (self.stage is None and self.slot is None))


def decode_trial(t: FrozenTrial) -> TrialRecord:
    """Decode a stored trial."""
    p = t.params
    shape: Shape | None = None
    trained = "depth" in p and "width" in p
    if trained:
        shape = Shape(int(p["depth"]), float(p["width"]))
    else:
        fixed = t.system_attrs.get("fixed_params") or {}
        if "depth" in fixed and "width" in fixed:
            shape = Shape(int(fixed["depth"]), float(fixed["width"]))
    stage = t.user_attrs.get("stage") or t.system_attrs.get(STAGE)
    value = t.value if t.state == TrialState.COMPLETE else None
    projected = projected_std = None
    saved: int | None = None
    if PRUNE_REASON in t.user_attrs:
        projected = _finite_or_none(t.user_attrs.get(PROJECTED_ACCURACY))
        projected_std = _finite_or_none(t.user_attrs.get(PROJECTED_STD))
        planned, ran = t.user_attrs.get(PLANNED_EPOCHS), t.user_attrs.get(PRUNED_EPOCH)
        if isinstance(planned, int) and isinstance(ran, int) and 0 <= ran <= planned:
            saved = planned - ran
    return TrialRecord(t.number, t._trial_id, t.state, shape, t.system_attrs.get(SLOT), stage,
                       value, rejected="reject_reason" in t.user_attrs, trained=trained,
                       fail_reason=t.user_attrs.get("fail_reason"),
                       accuracies=accuracy_by_precision(t.user_attrs), projected=projected,
                       projected_std=projected_std, epochs_saved=saved,
                       seconds=_charged_seconds(t), fraction=_fraction_run(t),
                       curve=epoch_curve(t.intermediate_values))


def epoch_curve(values: Mapping[int, float]) -> tuple[float, ...]:
    """The values reported at steps 1, 2, … up to the first missing step (a learning curve).

    Example:
        >>> epoch_curve({1: 50.0, 2: 70.0, 4: 90.0})
        (50.0, 70.0)
    """
    out: list[float] = []
    while len(out) + 1 in values:
        out.append(float(values[len(out) + 1]))
    return tuple(out)


def _charged_seconds(t: FrozenTrial) -> float | None:
    """A trial's compute: ``train_seconds`` if the objective stored it, else a finished trial's
    duration (both stamps come from one clock, whatever its time zone); ``None`` otherwise."""
    own = _finite_or_none(t.user_attrs.get(TRAIN_SECONDS))
    if own is not None and own >= 0:
        return own
    if not t.state.is_finished() or t.datetime_start is None or t.datetime_complete is None:
        return None
    return max(0.0, (t.datetime_complete - t.datetime_start).total_seconds())


def _fraction_run(t: FrozenTrial) -> float:
    """Epochs run / planned epochs of a training that did not complete (1.0 otherwise or when
    either is unknown)."""
    planned = t.user_attrs.get(PLANNED_EPOCHS)
    if t.state == TrialState.COMPLETE or not isinstance(planned, int) or planned <= 0:
        return 1.0
    ran = t.user_attrs.get(PRUNED_EPOCH)
    if not isinstance(ran, int):
        ran = len(t.intermediate_values)
    return min(1.0, max(ran, 1) / planned)


def accuracy_by_precision(trial_attrs: Mapping[str, Any], *, test: bool = False
                          ) -> dict[str, float] | None:
    """``{precision: accuracy}`` a trial's objective stored (in the units of the trial's value),
    or ``None`` when absent or not a mapping. Precisions whose value is missing or not a finite
    number are left out (their conversion or evaluation failed).

    Args:
        trial_attrs: the trial's user attributes.
        test: the test split's accuracies instead of the selection split's.

    Example:
        >>> accuracy_by_precision({"accuracy_by_precision": {"fp32": 97.5, "int8": 97.2}})
        {'fp32': 97.5, 'int8': 97.2}
        >>> accuracy_by_precision({"val_accuracy": 97.5}) is None
        True
    """
    value = trial_attrs.get(TEST_ACCURACY_BY_PRECISION if test else ACCURACY_BY_PRECISION)
    if not isinstance(value, Mapping):
        return None
    return {str(k): float(v) for k, v in value.items()
            if not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)}




def _finite_or_none(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def curves(study: optuna.Study) -> list[FrozenTrial]:
    """Every COMPLETE and RUNNING trial with reported intermediate values (one storage read;
    the learning curves :class:`~optuna_shape.ShapePruner` projects from)."""
    return [t for t in all_trials(study, (TrialState.COMPLETE, TrialState.RUNNING))
            if t.intermediate_values]


def all_trials(study: optuna.Study, states: Iterable[TrialState] | None = None
               ) -> list[FrozenTrial]:
    """Every trial of the study, not copied (one storage read)."""
    return study._storage.get_all_trials(
        study._study_id, deepcopy=False, states=None if states is None else tuple(states))


def frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """The current stored state of a running trial (what ``trial.should_prune()`` hands the
    study's pruner)."""
    return trial.study._storage.get_trial(trial._trial_id)


def trial_record(study: optuna.Study, trial_id: int) -> TrialRecord:
    """The current record of one trial (one storage read)."""
    return decode_trial(study._storage.get_trial(trial_id))


def trial_state(study: optuna.Study, trial_id: int) -> TrialState:
    """The current state of one trial, read from the storage."""
    return study._storage.get_trial(trial_id).state


def create_waiting_trial(
    study: optuna.Study,
    *,
    slot: str,
    stage: str,
    shape: Shape | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> int:
    """Queue a training (or the screening task) as a WAITING trial, in one storage call.

    Everything that identifies it — fixed params, slot, stage, the dashboard's user attributes —
    is part of the template, so it is visible from the moment the trial exists. Workers take it
    through Optuna's atomic WAITING → RUNNING pop in ``study.ask()``. Returns the trial id.
    """
    system: dict[str, Any] = {SLOT: slot, STAGE: stage, **dict(system_attrs or {})}
    if shape is not None:
        system["fixed_params"] = {"depth": shape.depth, "width": shape.width}
    users = {"stage": stage, **dict(user_attrs or {})}
    template = create_trial(state=TrialState.WAITING, system_attrs=system, user_attrs=users)
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def claim_training(
    study: optuna.Study,
    trial_id: int,
    *,
    slot: str,
    stage: str,
    shape: Shape,
    user_attrs: Mapping[str, Any] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Make a running trial that planned (its ``ask`` found the queue empty) the training of
    ``shape`` itself: the same slot, stage, fixed params and attributes a queued training is
    created with (:func:`create_waiting_trial`), written to the running trial. The fixed params
    are written last, so a reader that decodes the trial as a training sees its slot too."""
    storage = study._storage
    for k, v in {SLOT: slot, STAGE: stage, **dict(system_attrs or {})}.items():
        storage.set_trial_system_attr(trial_id, k, v)
    set_trial_user_attrs(study, trial_id, {"stage": stage, **dict(user_attrs or {})})
    storage.set_trial_system_attr(trial_id, "fixed_params",
                                  {"depth": shape.depth, "width": shape.width})


def set_trial_user_attrs(study: optuna.Study, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Write several trial user attributes (one commit each: Optuna has no batch call)."""
    storage = study._storage
    for k, v in attrs.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        storage.set_trial_user_attr(trial_id, k, v)


def slot_of(shape: Shape, k: int) -> str:
    """The slot of the ``k``-th training of ``shape``: ``"<shape key>#<k>"``."""
    return f"{shape.key}#{k}"


def screen_slot(hw_hash: str) -> str:
    """The slot of the screening task on one hardware."""
    return f"screen:{hw_hash}#1"


def screened_hash(slot: str) -> str | None:
    """The hardware hash of a slot made by :func:`screen_slot` (``None`` for anything else)."""
    if not slot.startswith("screen:") or not slot.endswith("#1"):
        return None
    return slot[len("screen:"):-len("#1")] or None


def slot_index(slot: str) -> int | None:
    """``k`` of a slot made by :func:`slot_of` (``None`` for anything else)."""
    tail = slot.rsplit("#", 1)[1] if "#" in slot else ""
    return int(tail) if tail.isdigit() and int(tail) >= 1 else None


def _slot_of_running(trial: optuna.Trial) -> str | None:
    study, trial_id = getattr(trial, "study", None), getattr(trial, "_trial_id", None)
    if study is None or trial_id is None:  # an optuna.trial.FixedTrial
        return None
    slot = study._storage.get_trial_system_attrs(trial_id).get(SLOT)
    return slot if isinstance(slot, str) else None


def training_index(trial: optuna.Trial) -> int:
    """``k`` of a planned training's slot ``<shape>#<k>`` (its k-th training of the shape), 1 for
    a trial without a slot (the objective's own study, a user's training, an
    ``optuna.trial.FixedTrial``)."""
    slot = _slot_of_running(trial)
    k = None if slot is None else slot_index(slot)
    return 1 if k is None else k


def training_attempt(trial: optuna.Trial) -> tuple[int, int]:
    """``(k, failures)`` of a training, its slot read once: ``k`` as :func:`training_index`,
    ``failures`` the earlier trainings of its slot that failed for a recorded reason (an
    exception, NaN, a stop by another pruner) — not the lost or interrupted ones, which are
    retried as they were. ``(1, 0)`` for a trial without a slot."""
    slot = _slot_of_running(trial)
    if slot is None:
        return 1, 0
    earlier = (decode_trial(t) for t in all_trials(trial.study,
                                                   states=(TrialState.FAIL, TrialState.PRUNED)))
    failures = sum(1 for r in earlier
                   if r.number < trial.number and r.slot == slot and r.fail_reason is not None)
    return slot_index(slot) or 1, failures


def mark_interrupted(trial: optuna.Trial) -> None:
    """Mark a running training stopped by Ctrl-C as ``interrupted`` (call it, then re-raise):
    Optuna fails the trial, and the search retries the training when it resumes instead of
    counting it as the shape's failure. A storage that went away too leaves the trial merely
    lost, which is retried the same way."""
    try:
        trial.set_user_attr(INTERRUPTED, True)
    except Exception:
        logging.getLogger("optuna_shape").debug(
            "could not mark trial %d interrupted", trial.number, exc_info=True)


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of a trial (private in Optuna; every storage call takes it)."""
    return trial._trial_id


def storage_of(study: optuna.Study) -> Any:
    """The Optuna storage a study reads and writes."""
    return study._storage


def keep_alive(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> Any:
    """A context manager that keeps the trial's heartbeat going while the sampler works after the
    objective returned (Optuna's own heartbeat stops then); a no-op without heartbeats."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial._trial_id, study._storage)


def set_trial_system_attr(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    """Write a trial system attribute (``Trial.set_system_attr`` is gone in Optuna 5)."""
    study._storage.set_trial_system_attr(trial_id, key, value)


def set_study_user_attr(study: optuna.Study, key: str, value: Any) -> None:
    """Write a study user attribute (shown by optuna-dashboard)."""
    study._storage.set_study_user_attr(study._study_id, key, value)


def rdb_engine(storage: Any) -> Any | None:
    """The SQLAlchemy engine behind an RDB storage (through Optuna's cache wrapper), or
    ``None`` for other storages."""
    backend = getattr(storage, "_backend", storage)
    return getattr(backend, "engine", None) if isinstance(
        backend, optuna.storages.RDBStorage) else None


def make_sqlite_atomic(storage: Any) -> bool:
    """Make every transaction on a SQLite file storage take the write lock when it begins.

    Python's sqlite3 driver opens a transaction only before the first write, so Optuna's
    read-check-write in ``set_trial_state_values`` (the WAITING → RUNNING pop of ``ask`` and
    the RUNNING check of ``tell``) runs its read outside any transaction: two processes can both
    read WAITING and both pop the same trial (seen with 4 workers on 2 cores). With
    ``BEGIN IMMEDIATE`` the read and the write are one serialised transaction, as on
    PostgreSQL (``SELECT … FOR UPDATE``). Idempotent; returns whether it applies (SQLite files).
    """
    engine = rdb_engine(storage)
    if engine is None or engine.dialect.name != "sqlite":
        return False
    if getattr(engine, "_osh_atomic", False):
        return True
    if engine.url.database in (None, "", ":memory:"):
        return False  # one connection in one process: nothing to race
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver issues no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine._osh_atomic = True
    engine.dispose()  # pooled connections were opened without the hooks
    return True


def has_heartbeat(study: optuna.Study) -> bool:
    """Whether the study's storage fails the trials of dead workers (RDB with heartbeats).

    ``study._storage`` of an RDB study is Optuna's ``_CachedStorage`` wrapper: Optuna's own
    helper understands it.
    """
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)


def fail_stale(study: optuna.Study, *, older_than_s: float | None = None) -> int:
    """Fail the RUNNING trials of workers that are gone; return how many trials were failed.

    The one rule for stale trials: the sampler (while it waits for other workers), the command
    line (when a search starts or resumes) and
    :func:`optuna_shape.store.backends.fail_stale_on_start` all call it.

    With heartbeats (RDB storage): Optuna's own check (no heartbeat for longer than the grace
    period), and a queued training that a worker took but never started: a worker killed
    between taking the trial and its first heartbeat leaves it RUNNING with no heartbeat, which
    Optuna never counts as stale, and its slot would block the search forever. Such a trial
    holds a slot, has no parameters yet (an objective suggests its shape at once) and no
    heartbeat row after a grace period and one beat. ``older_than_s`` is not needed: the live
    trials of other workers keep beating and are left alone.

    Without heartbeats (journal or in-memory storage) nothing tells a dead worker's trial from
    a live one: RUNNING trials that started more than ``older_than_s`` seconds ago fail (pass
    it only when no other worker runs, or a value longer than any training); with ``None``
    nothing is touched.

    A trial's age is read on the clock Optuna stamps ``datetime_start`` with (naive local
    time), so it is right on a machine outside UTC.
    """
    running = (TrialState.RUNNING,)
    before = {t._trial_id for t in study.get_trials(deepcopy=False, states=running)}
    if not before:
        return 0
    if has_heartbeat(study):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        _fail_never_started(study)
    elif older_than_s is not None:
        for t in study.get_trials(deepcopy=False, states=running):
            age = _age_s(t)
            if age is not None and age > older_than_s:
                _fail(study, t._trial_id)
    else:
        return 0
    after = {t._trial_id for t in study.get_trials(deepcopy=False, states=running)}
    return len(before - after)


def _age_s(t: FrozenTrial) -> float | None:
    """Seconds since ``t`` started (``None``: not started). Every Optuna storage hands
    ``datetime_start`` back as naive local time (stamped with ``datetime.now()``), so it is
    compared with the same clock, never with UTC; a stamp with a zone is compared in its zone."""
    import datetime

    start = t.datetime_start
    if start is None:
        return None
    return (datetime.datetime.now(start.tzinfo) - start).total_seconds()


def _fail(study: optuna.Study, trial_id: int) -> None:
    try:
        study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another worker failed (or it finished) first


def _fail_never_started(study: optuna.Study) -> None:
    backend = getattr(study._storage, "_backend", study._storage)
    if not isinstance(backend, optuna.storages.RDBStorage) or not backend.heartbeat_interval:
        return
    grace = backend.grace_period or 2 * backend.heartbeat_interval
    limit = grace + backend.heartbeat_interval
    suspects = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if not t.params and (_age_s(t) or 0.0) > limit
                and decode_trial(t).slot is not None]
    if not suspects:
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    ids = [t._trial_id for t in suspects]
    with _create_scoped_session(backend.scoped_session) as session:
        beaten = {row.trial_id for row in session.query(models.TrialHeartbeatModel)
                  .filter(models.TrialHeartbeatModel.trial_id.in_(ids)).all()}
    for trial_id in ids:
        if trial_id not in beaten:
            _fail(study, trial_id)


def is_in_memory(study: optuna.Study) -> bool:
    """Whether the study lives in this process only."""
    return isinstance(study._storage, optuna.storages.InMemoryStorage)
