"""The names optuna-shape stores under, and the chunked JSON codec of study attributes.

Every key and attribute name of the stored schema (see :mod:`optuna_shape.store`), the builders
of per-hardware and per-candidate keys, and the study-attribute reads and writes the records
are built on: values longer than :data:`CHUNK` characters are split into chunks, as Optuna's own
samplers do, so they fit any RDB backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import optuna

from optuna_shape.space.shape import Shape, Variant

__all__ = [
    "ACCURACY_BY_PRECISION",
    "CHUNK",
    "CONFIG",
    "FIT",
    "INTERRUPTED",
    "PLANNED_EPOCHS",
    "PRECISION_ERRORS",
    "PROJECTED_ACCURACY",
    "PROJECTED_STD",
    "PRUNED_EPOCH",
    "PRUNE_REASON",
    "RESULT",
    "SLOT",
    "STAGE",
    "PLANNING",
    "TEST_ACCURACY_BY_PRECISION",
    "TRAINING_STAGES",
    "TRAIN_SECONDS",
    "candidate_from_key",
    "cost_screen_key",
    "hardware_hash",
    "hardware_name_key",
    "measurement_key",
    "measurement_name",
    "read_json",
    "screened_key",
    "set_study_user_attr",
    "shape_from_key",
    "study_attrs",
    "write_json",
]


CONFIG = "osh:config"
FIT = "osh:fit"
RESULT = "osh:result"
SLOT = "osh:slot"
STAGE = "osh:stage"
PLANNING = "osh:planning"
"""Trial system attribute: ``True`` on a finishing training whose after-trial hook decides for
the idle workers (set while its trial is still running; the others leave the decision to it)."""
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


def cost_screen_key(hw_hash: str) -> str:
    """Study attribute holding how screening on one hardware predicted costs."""
    return f"osh:costscreen:{hw_hash}"


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
    if candidate.precision == "fp32":
        return candidate.shape.key
    return candidate.key


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


def set_study_user_attr(study: optuna.Study, key: str, value: Any) -> None:
    """Write a study user attribute (shown by optuna-dashboard)."""
    study._storage.set_study_user_attr(study._study_id, key, value)
