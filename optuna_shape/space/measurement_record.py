"""One shape's hardware measurement record (:class:`Measurement`) and its codec.

The stored form is the JSON object every earlier version wrote under ``osh:m:<hash>:<key>``:
``latency_ms``, ``latency_iqr_ms``, ``latency_runs``, ``energy_j``, ``energy_method``, ``error``,
``precision`` (a precision other than fp32), and from predicted screening ``predicted`` with the
point prediction's bounds ``latency_low_ms`` / ``latency_high_ms`` / ``energy_low_j`` /
``energy_high_j``; a key is written only when it was set. The decoder accepts anything any
version stored: unknown keys, and values that do not decode, are kept verbatim in
:attr:`Measurement.extra` and written back, and the stored key order is kept, so a record read
and written again is byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from optuna_shape.space.constraints import COST_FIELDS

__all__ = ["Measurement"]


def _of(*kinds: type) -> Callable[[Any], Any]:
    """A decoder keeping a stored value of one of ``kinds`` as stored (an int stays an int) and
    refusing anything else (a bool is no number)."""
    def check(value: Any) -> Any:
        if isinstance(value, bool) and bool not in kinds:
            raise TypeError(f"expected {kinds}, got {value!r}")
        if not isinstance(value, kinds):
            raise TypeError(f"expected {kinds}, got {value!r}")
        return value

    return check


_number = _of(int, float)
_text = _of(str)


@dataclass(frozen=True, eq=False)
class Measurement(Mapping[str, Any]):
    """One candidate's hardware measurements (or, from predicted screening, predictions); every
    field is optional (``None``: not in the record).

    It is also a read-only mapping over its JSON form (:meth:`to_json`), so
    ``record["latency_ms"]`` and ``record.get("error")`` read as they did when records were
    dicts. A record is never changed: :meth:`updated` builds the record a dict ``update`` would
    have given.

    Attributes:
        precision: the precision the network was converted to (only when not ``"fp32"``).
        latency_ms: median latency of one batch, in milliseconds (a point prediction when
            :attr:`predicted`).
        latency_low_ms: predicted screening: the lower bound of the latency prediction.
        latency_high_ms: predicted screening: the upper bound of the latency prediction.
        latency_iqr_ms: interquartile range of the timed runs.
        latency_runs: timed runs.
        energy_j: energy of one batch, in joules (a point prediction when :attr:`predicted`).
        energy_low_j: predicted screening: the lower bound of the energy prediction.
        energy_high_j: predicted screening: the upper bound of the energy prediction.
        energy_method: how energy was measured (``"counter"``, ``"power_sampling"``).
        error: why the shape could not be measured.
        predicted: whether a latency or energy is a prediction (predicted screening).
        extra: keys this version does not know, or whose value did not decode, verbatim.
        order: the stored key order (kept so a record decoded and encoded again is
            byte-identical); keys not in it follow in field order, then :attr:`extra`'s.
    """

    precision: str | None = None
    latency_ms: float | None = None
    latency_low_ms: float | None = None
    latency_high_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_runs: int | None = None
    energy_j: float | None = None
    energy_low_j: float | None = None
    energy_high_j: float | None = None
    energy_method: str | None = None
    error: str | None = None
    predicted: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = field(default=(), repr=False)

    def cost(self, name: str) -> float | None:
        """The measured (or predicted) value of cost ``name`` (``"latency"`` or ``"energy"``).

        Raises:
            KeyError: ``name`` is no measured cost.
        """
        if name not in ("latency", "energy"):
            raise KeyError(name)
        return getattr(self, COST_FIELDS[name])

    @property
    def is_predicted(self) -> bool:
        """Whether a latency or energy in the record is a prediction (a true ``predicted``
        key, as every version read it)."""
        return bool(self._json.get("predicted"))

    @property
    def failed(self) -> bool:
        """Whether the record holds an error (a non-empty ``error`` key, as every version read
        it; the reason is ``str(record["error"])``)."""
        return bool(self._json.get("error"))

    @cached_property
    def _json(self) -> dict[str, Any]:
        present: dict[str, Any] = {}
        for f in fields(self):
            if f.name not in ("extra", "order") and getattr(self, f.name) is not None:
                present[f.name] = getattr(self, f.name)
        for k, v in self.extra.items():
            present.setdefault(k, v)
        out = {k: present[k] for k in self.order if k in present}
        for k, v in present.items():
            out.setdefault(k, v)
        return out

    def to_json(self) -> dict[str, Any]:
        """The stored form: each set field and :attr:`extra` key under its name, in the stored
        :attr:`order`. Inverse of :meth:`from_json`."""
        return dict(self._json)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Measurement:
        """Decode a stored record (any version's): missing keys are ``None``; unknown keys, and
        values that do not decode (``null`` included), are kept in :attr:`extra`. Never raises
        on a mapping."""
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        d = d or {}
        for k, v in d.items():
            decode = _DECODE.get(k)
            if decode is None or v is None:
                extra[k] = v
                continue
            try:
                values[k] = decode(v)
            except (TypeError, ValueError):
                extra[k] = v
        return cls(**values, extra=extra, order=tuple(d))

    @classmethod
    def of(cls, record: Mapping[str, Any] | None) -> Measurement:
        """``record`` as a :class:`Measurement` (itself when it is one; a mapping is decoded)."""
        return record if isinstance(record, Measurement) else cls.from_json(record)

    def updated(self, other: Mapping[str, Any]) -> Measurement:
        """The record a dict ``update`` with ``other``'s JSON form would give: ``other``'s keys
        replace this record's in place, new keys follow."""
        if isinstance(other, Measurement):
            other = other._json
        return Measurement.from_json({**self._json, **other})

    # a read-only mapping over the JSON form; equal to any mapping with the same JSON form
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._json == (other._json if isinstance(other, Measurement) else dict(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __contains__(self, key: object) -> bool:
        return key in self._json


_DECODE: dict[str, Callable[[Any], Any]] = {
    "precision": _text, "latency_ms": _number, "latency_low_ms": _number,
    "latency_high_ms": _number, "latency_iqr_ms": _number, "latency_runs": _of(int),
    "energy_j": _number, "energy_low_j": _number, "energy_high_j": _number,
    "energy_method": _text, "error": _text, "predicted": _of(bool),
}
"""How each stored key of :class:`Measurement` decodes (one entry per field but ``extra`` and
``order``)."""
