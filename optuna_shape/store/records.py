"""The search's own records: its configuration, the accuracy model's fit and the answer.

Each is one study system attribute (``osh:config``, ``osh:fit``, ``osh:result``) written as
chunked JSON (:func:`optuna_shape.store.keys.write_json`); the fit and the answer also leave a
short summary in study user attributes for optuna-dashboard.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import optuna

from optuna_shape.policy.stop import SearchStatus, StopDetails
from optuna_shape.space.shape import Shape, Variant
from optuna_shape.store.keys import (
    CONFIG,
    FIT,
    RESULT,
    read_json,
    set_study_user_attr,
    study_attrs,
    write_json,
)

__all__ = [
    "FitRecord",
    "ResultRecord",
    "config_difference",
    "read_config",
    "read_fit",
    "read_result",
    "write_config",
    "write_fit",
    "write_result",
]


def read_config(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored search configuration, or ``None``."""
    return read_json(attrs, CONFIG)


def write_config(study: optuna.Study, config: Mapping[str, Any]) -> None:
    """Store the search configuration (the first worker of a study does)."""
    write_json(study, CONFIG, dict(config))


def config_difference(stored: Mapping[str, Any], mine: Mapping[str, Any], *,
                      theirs: str = "study has", ours: str = "this worker has",
                      nested: bool = False) -> str:
    """``"k: <theirs> …, <ours> …"`` for every differing key, ``"; "``-joined (empty when
    equal); ``mine`` is compared in its JSON form, as stored. With ``nested``, a key whose two
    values are both mappings is compared one level down (``"space.depths: …"``).

    Example:
        >>> config_difference({"goal": "size", "seed": 0}, {"goal": "accuracy", "seed": 0})
        "goal: study has 'size', this worker has 'accuracy'"
    """
    mine = json.loads(json.dumps(dict(mine)))
    out: list[str] = []
    for k in sorted(set(stored) | set(mine)):
        a, b = stored.get(k), mine.get(k)
        if a == b:
            continue
        if nested and isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"{k}.{kk}: {theirs} {a.get(kk)!r}, {ours} {b.get(kk)!r}"
                    for kk in sorted(set(a) | set(b)) if a.get(kk) != b.get(kk)]
        else:
            out.append(f"{k}: {theirs} {a!r}, {ours} {b!r}")
    return "; ".join(out)


def _shape(pair: Any) -> Shape:
    if len(pair) == 3:  # a (shape, precision) candidate
        return Variant(int(pair[0]), float(pair[1]), str(pair[2]))  # type: ignore[return-value]
    return Shape(int(pair[0]), float(pair[1]))


def _pair(s: Shape | Variant) -> list[Any]:
    return [s.depth, s.width] if s.precision is None else [s.depth, s.width, s.precision]


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
        if self.shape is not None and self.shape.precision is not None:
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
