"""Every key optuna-shape writes into an Optuna storage, and the helpers that read and write them.

All of the project's use of Optuna's storage internals (system attributes, which Optuna 5 only
exposes through ``study._storage``) is in this module. Keys are prefixed ``osh:`` so they never
clash with other samplers' data. Long JSON values are split into chunks of at most 2045 characters,
as Optuna's own samplers do, so they fit any RDB backend.

Study system attributes:
    ``osh:config``                the search configuration (space, constraints, goal, strategy…)
    ``osh:hw:<hash>``             the full hardware key measurements under ``<hash>`` were taken on
    ``osh:m:<hash>:<shape key>``  one shape's hardware measurements on that hardware
    ``osh:screened:<hash>``       screening on that hardware is complete
    ``osh:fit``                   the accuracy model's fit and the goal-ordered candidates
    ``osh:result``                the answer, once the search has finished
Trial system attributes:
    ``osh:claim``                 the shape a trial was assigned and its stage
    ``osh:screen_request``        the trial asks to screen (leader election)
Trial user attributes (shown by optuna-dashboard): see :data:`TRIAL_USER_ATTRS`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import optuna

__all__ = [
    "PREFIX",
    "CONFIG",
    "FIT",
    "RESULT",
    "CLAIM",
    "SCREEN_REQUEST",
    "hardware_hash",
    "measurement_key",
    "screened_key",
    "hardware_name_key",
    "write_study_json",
    "read_study_json",
    "read_all_study_attrs",
    "set_trial_system_attr",
    "TRIAL_USER_ATTRS",
    "trial_system_attrs",
]

PREFIX = "osh:"
CONFIG = "osh:config"
FIT = "osh:fit"
RESULT = "osh:result"
CLAIM = "osh:claim"
SCREEN_REQUEST = "osh:screen_request"
CHUNK = 2045

TRIAL_USER_ATTRS = (
    "stage",  # sample | verify | user | idle | stopped
    "depth",
    "width",
    "params",
    "size_mb",
    "latency_ms",
    "energy_j",
    "predicted_accuracy",
    "predicted_std",
    "prediction_source",
    "reject_reason",
    "fail_reason",
)
"""User attributes a trial may carry (optuna-dashboard shows these; numbers are sortable).

Constraint values are also mirrored as ``constraint_<name>`` (≤ 0 means satisfied), because
optuna-dashboard 0.21 does not show ``trial.set_constraint`` values.
"""


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


def _storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def _study_id(study: optuna.Study) -> int:
    return study._study_id


def read_all_study_attrs(study: optuna.Study) -> dict[str, Any]:
    """All study system attributes (one storage round trip)."""
    return _storage(study).get_study_system_attrs(_study_id(study))


def write_study_json(study: optuna.Study, key: str, value: Any) -> None:
    """Write a JSON-able value under ``key``, chunked when long.

    A short value is stored as is. A long one is stored as ``key:0 … key:k-1`` text chunks plus
    ``key`` = ``{"__chunks__": k}``; the chunks are written first so a reader never sees a count
    without its chunks.
    """
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    storage, sid = _storage(study), _study_id(study)
    if len(text) <= CHUNK:
        storage.set_study_system_attr(sid, key, value)
        return
    parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    for i, part in enumerate(parts):
        storage.set_study_system_attr(sid, f"{key}:{i}", part)
    storage.set_study_system_attr(sid, key, {"__chunks__": len(parts)})


def read_study_json(attrs: dict[str, Any], key: str) -> Any:
    """Read a value written by :func:`write_study_json` from a dict of study attributes.

    Returns ``None`` when the key is absent.
    """
    value = attrs.get(key)
    if isinstance(value, dict) and set(value) == {"__chunks__"}:
        parts = [attrs.get(f"{key}:{i}") for i in range(int(value["__chunks__"]))]
        if any(p is None for p in parts):
            return None
        return json.loads("".join(parts))  # type: ignore[arg-type]
    return value


def set_trial_system_attr(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    """Write a trial system attribute (``Trial.set_system_attr`` is gone in Optuna 5)."""
    _storage(study).set_trial_system_attr(trial_id, key, value)


def trial_system_attrs(trial: optuna.Trial) -> dict[str, Any]:
    """A live trial's system attributes (``Trial.system_attrs`` is gone in Optuna 5)."""
    return trial.study._storage.get_trial_system_attrs(trial._trial_id)
