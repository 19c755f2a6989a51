"""Hardware measurements of the candidates, and how screening on each hardware went.

Study system attributes ``osh:hw:<hash>`` (the full hardware key), ``osh:m:<hash>:<key>`` (one
candidate's measurements), ``osh:screened:<hash>`` (screening complete) and
``osh:costscreen:<hash>`` (:class:`CostScreenRecord`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.shape import Shape, Variant
from optuna_shape.store.keys import (
    candidate_from_key,
    cost_screen_key,
    hardware_hash,
    hardware_name_key,
    measurement_key,
    measurement_name,
    read_json,
    screened_key,
    write_json,
)

__all__ = [
    "CostScreenRecord",
    "count_predicted",
    "is_predicted",
    "known_hardware",
    "mark_screened",
    "measurement_of",
    "read_cost_screen",
    "read_measurements",
    "screened_hashes",
    "store_measurements",
    "write_cost_screen",
    "write_hardware_name",
    "write_measurement",
]


def screened_hashes(attrs: Mapping[str, Any]) -> list[str]:
    """Hardware hashes whose screening is complete."""
    return sorted(k.split(":")[2] for k in attrs if k.startswith("osh:screened:"))


def known_hardware(attrs: Mapping[str, Any]) -> set[str]:
    """Full hardware keys that measurements in the study were taken on."""
    return {v for k, v in attrs.items() if k.startswith("osh:hw:")}


def read_measurements(attrs: Mapping[str, Any], hw_hash: str | None = None
                      ) -> dict[Shape, Measurement]:
    """Shape → measurement record (:class:`~optuna_shape.space.measurement_record.Measurement`)
    on ``hw_hash`` (default: the first screened hardware); in a search over precisions the
    records of other precisions than fp32 are keyed by :class:`~optuna_shape.space.shape.Variant`
    (see :func:`measurement_of`)."""
    if hw_hash is None:
        hs = screened_hashes(attrs)
        if not hs:
            return {}
        hw_hash = hs[0]
    prefix = f"osh:m:{hw_hash}:"
    out: dict[Shape, Measurement] = {}
    for k, v in attrs.items():
        if k.startswith(prefix) and isinstance(v, dict):
            key = candidate_from_key(k[len(prefix):])
            out[key] = Measurement.from_json(v)  # type: ignore[index]
    return out


def measurement_of(measurements: Mapping[Shape | Variant, Measurement],
                   candidate: Shape | Variant) -> Measurement | None:
    """A candidate's record in the output of :func:`read_measurements` (``None`` if absent)."""
    if candidate.precision == "fp32":
        return measurements.get(candidate.shape)
    return measurements.get(candidate)


def write_hardware_name(study: optuna.Study, hardware: str) -> None:
    """Record the full hardware key (before the first measurement on it)."""
    h = hardware_hash(hardware)
    study._storage.set_study_system_attr(study._study_id, hardware_name_key(h), hardware)


def write_measurement(study: optuna.Study, hardware: str, shape: Shape | Variant,
                      record: Measurement | Mapping[str, Any]) -> None:
    """Store one shape's (or candidate's) measurements, a :class:`Measurement` or its JSON
    form (idempotent: equal shapes give equal keys)."""
    h = hardware_hash(hardware)
    study._storage.set_study_system_attr(
        study._study_id, measurement_key(h, measurement_name(shape)),
        Measurement.of(record).to_json())


def mark_screened(study: optuna.Study, hardware: str) -> None:
    """Record the hardware name and that screening on it is complete."""
    h = hardware_hash(hardware)
    study._storage.set_study_system_attr(study._study_id, hardware_name_key(h), hardware)
    study._storage.set_study_system_attr(study._study_id, screened_key(h), True)


def store_measurements(study: optuna.Study, hardware: str,
                       records: Mapping[Shape, Measurement | Mapping[str, Any]]) -> None:
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


def write_cost_screen(study: optuna.Study, hardware: str, record: CostScreenRecord) -> None:
    """Store how screening on ``hardware`` predicted costs."""
    write_json(study, cost_screen_key(hardware_hash(hardware)), record.to_json())


def read_cost_screen(attrs: Mapping[str, Any], hw_hash: str | None = None
                     ) -> CostScreenRecord | None:
    """The stored :class:`CostScreenRecord` on ``hw_hash`` (default: the first screened
    hardware), or ``None`` when screening measured every shape."""
    if hw_hash is None:
        hs = screened_hashes(attrs)
        if not hs:
            return None
        hw_hash = hs[0]
    d = read_json(attrs, cost_screen_key(hw_hash))
    return None if d is None else CostScreenRecord.from_json(d)
