"""What a stopped search carries: its status (:class:`SearchStatus`) and its details
(:class:`StopDetails`), each with one codec.

The stored forms are the ones every earlier version wrote: a status is its plain word
(``"answered"``, …) and the details are one JSON object whose keys are the field names of
:class:`StopDetails`, a key written only when the policy reported it. Both decoders accept
anything an earlier or later version stored: an unknown status word stays a plain ``str``,
unknown detail keys are kept in :attr:`StopDetails.extra`, and a value that does not decode is
kept there too, verbatim — reading a stored result never fails on its details.

One module: the status, the detail records and :class:`StopDetails` are one stored format with
one codec, kept together so that every stored key is defined in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any

from optuna_shape.space.shape import Shape, Variant

__all__ = [
    "SearchStatus",
    "Measured",
    "FailedShape",
    "StoppedEarly",
    "Unconfirmed",
    "ComputeUse",
    "FrontPoint",
    "StopDetails",
    "Stop",
    "shape_to_json",
    "shape_from_json",
]


class SearchStatus(str, Enum):
    """How a search ended — a ``str``: a member equals, hashes, formats and serialises to JSON
    exactly as its word (``SearchStatus.ANSWERED == "answered"``, ``f"{s}"`` is the word).

    The stored form is the word (:attr:`value`); :meth:`decode` reads it back.

    Example:
        >>> SearchStatus.decode("unconfirmed") is SearchStatus.UNCONFIRMED
        True
        >>> f"{SearchStatus.NO_FEASIBLE}", SearchStatus.decode("from_the_future")
        ('no_feasible', 'from_the_future')
    """

    ANSWERED = "answered"
    """An answer confirmed to meet the accuracy floor (when there is one): the shape the goal
    asks for, with the stopping rule's probability that it is the goal's best — at least the
    study's confidence, or below it when the budget ended first (the stop's reason says so)."""
    UNCONFIRMED = "unconfirmed"
    """The budget ended before any shape was confirmed to meet the accuracy floor: the
    best-supported trained shape (or a cheaper one the evidence favours over the confirmed
    one), its confidence its P(accuracy ≥ floor). An answer confirmed to meet the floor but
    not confirmed as the goal's best is :attr:`ANSWERED`, with a confidence below the
    study's."""
    COMPLYING_SET = "complying_set"
    """No goal: the answer is the set of complying shapes."""
    NO_FEASIBLE = "no_feasible"
    """No shape passes the size / latency / energy limits."""
    FLOOR_NOT_REACHED = "floor_not_reached"
    """No trained shape meets (or plausibly meets) the accuracy floor."""
    ALL_FAILED = "all_failed"
    """Every training failed."""
    FRONTIER = "frontier"
    """The frontier goal: the trained shapes on the accuracy–cost front, each with its
    probability of being on it (:attr:`StopDetails.front`); no single answer."""
    RUNNING = "running"
    """The search has not finished (reports only; never stored as a result's status)."""

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:
        return str.__hash__(self)

    @property
    def no_answer(self) -> bool:
        """Finished without any shape and without a complying set to show."""
        return self in (SearchStatus.NO_FEASIBLE, SearchStatus.FLOOR_NOT_REACHED,
                        SearchStatus.ALL_FAILED)

    @classmethod
    def decode(cls, value: Any) -> SearchStatus | str:
        """The member for a stored word; a word this version does not know (stored by a later
        one) is kept as the plain ``str`` it was, so it is shown and compared as stored;
        ``None`` (no status stored) is :attr:`ANSWERED`, as results without one always read."""
        if value is None:
            return cls.ANSWERED
        try:
            return cls(value)
        except ValueError:
            return str(value)


# ------------------------------------------------------------------ shape keys ---------------
def shape_to_json(s: Shape | Variant) -> list[Any]:
    """A shape as stored in the details: ``[depth, width]`` or ``[depth, width, precision]``."""
    key: list[Any] = [int(s.depth), float(s.width)]
    if s.precision is not None:
        key.append(s.precision)
    return key


def shape_from_json(key: Sequence[Any]) -> Shape | Variant:
    """Inverse of :func:`shape_to_json`.

    Raises:
        ValueError, TypeError, IndexError: ``key`` is not a stored shape.
    """
    if len(key) == 3:
        return Variant(int(key[0]), float(key[1]), str(key[2]))
    if len(key) != 2:
        raise ValueError(f"a stored shape is [depth, width] or [depth, width, precision], "
                         f"got {key!r}")
    return Shape(int(key[0]), float(key[1]))


def _of(kind: Any) -> Callable[[Any], Any]:
    """A decoder that keeps a stored value of ``kind`` as stored (an int stays an int, so it
    is written back the same) and refuses anything else (a bool is no number)."""
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise TypeError(f"expected {kind}, got {value!r}")
        return value

    return check


def _each(decode: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    return lambda values: tuple(decode(v) for v in values)


_number = _of((int, float))


# ------------------------------------------------------------------ parts --------------------
@dataclass(frozen=True)
class Measured:
    """A trained shape's measured mean accuracy over its ``count`` successful trainings."""

    shape: Shape | Variant
    mean: float | None
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (``count`` only when known)."""
        out: dict[str, Any] = {"shape": shape_to_json(self.shape), "mean": self.mean}
        if self.count is not None:
            out["count"] = self.count
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Measured:
        """Decode :meth:`to_json` output."""
        mean = d.get("mean")
        return cls(shape_from_json(d["shape"]), None if mean is None else _number(mean),
                   None if d.get("count") is None else int(d["count"]))


@dataclass(frozen=True)
class FailedShape:
    """A shape and how many of its trainings failed."""

    shape: Shape | Variant
    count: int

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"shape": shape_to_json(self.shape), "count": self.count}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FailedShape:
        """Decode :meth:`to_json` output."""
        return cls(shape_from_json(d["shape"]), int(d["count"]))


@dataclass(frozen=True)
class StoppedEarly:
    """A shape whose trainings were stopped early, with each one's projected final accuracy."""

    shape: Shape | Variant
    projected: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"shape": shape_to_json(self.shape), "projected": list(self.projected)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StoppedEarly:
        """Decode :meth:`to_json` output."""
        return cls(shape_from_json(d["shape"]), _each(_number)(d["projected"]))


@dataclass(frozen=True)
class Unconfirmed:
    """An unconfirmed answer's P(accuracy ≥ floor) and what more compute would buy: the
    probability that one more training of it confirms it, and (``more`` > 1) that ``more``
    more trainings — up to the most the search puts on one shape — do; ``training_s``: the
    predicted seconds of one training of it (``None``: unknown). Fields after the first two
    are ``None`` in results stored before they existed."""

    p_floor: float
    p_confirm_next: float
    training_s: float | None = None
    more: int | None = None
    p_confirm_more: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (the later fields only when known)."""
        out: dict[str, Any] = {"p_floor": self.p_floor, "p_confirm_next": self.p_confirm_next}
        for key in ("training_s", "more", "p_confirm_more"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Unconfirmed:
        """Decode :meth:`to_json` output."""
        def opt(key: str, decode: Callable[[Any], Any] = _number) -> Any:
            return None if d.get(key) is None else decode(d[key])

        return cls(_number(d["p_floor"]), _number(d["p_confirm_next"]), opt("training_s"),
                   opt("more", _of(int)), opt("p_confirm_more"))

    def more_words(self, what: str) -> str:
        """What more compute would buy, in words: ``one more training of {what} (≈ 1.2 s)
        would confirm it with probability 0.03; 4 more (≈ 4.8 s) with probability 0.19``."""
        from optuna_shape.models.compute import format_seconds

        def cost(n: int) -> str:
            return "" if self.training_s is None else f" (≈ {format_seconds(n * self.training_s)})"

        text = (f"one more training of {what}{cost(1)} would confirm it with probability "
                f"{self.p_confirm_next:.2f}")
        if self.more is not None and self.more > 1 and self.p_confirm_more is not None:
            text += f"; {self.more} more{cost(self.more)} with probability " \
                    f"{self.p_confirm_more:.2f}"
        return text


@dataclass(frozen=True)
class ComputeUse:
    """Compute in seconds of training time when the search stopped: spent, the budget
    (``None``: none), the predicted compute of training every feasible shape once
    (``None``: unknown) and the trainings the cost model learnt from."""

    spent_s: float
    budget_s: float | None
    all_feasible_s: float | None
    cost_observations: int

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"spent_s": self.spent_s, "budget_s": self.budget_s,
                "all_feasible_s": self.all_feasible_s,
                "cost_observations": self.cost_observations}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ComputeUse:
        """Decode :meth:`to_json` output."""
        budget, every = d.get("budget_s"), d.get("all_feasible_s")
        return cls(_number(d["spent_s"]), None if budget is None else _number(budget),
                   None if every is None else _number(every), int(d["cost_observations"]))


@dataclass(frozen=True)
class FrontPoint:
    """One shape of a returned accuracy–cost front.

    Attributes:
        shape: the shape (always trained).
        p_front: probability that no feasible shape is both cheaper and more accurate.
        mean: its measured mean accuracy over full trainings, objective units.
        count: its full trainings.
        cost: its cost in the front's metric (MB, ms or J).
    """

    shape: Shape
    p_front: float
    mean: float
    count: int
    cost: float

    def to_json(self) -> dict[str, Any]:
        """JSON form (the probability rounded for reading)."""
        return {"shape": shape_to_json(self.shape), "p_front": round(float(self.p_front), 4),
                "mean": self.mean, "count": self.count, "cost": self.cost}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FrontPoint:
        """Decode :meth:`to_json` output."""
        return cls(shape_from_json(d["shape"]), _number(d["p_front"]), _number(d["mean"]),
                   _of(int)(d["count"]), _number(d["cost"]))


_DECODE: dict[str, Callable[[Any], Any]] = {
    "reason_code": _of(str), "max_trainings": _of(int), "trainings": _of(int),
    "expected_gain": _number, "shapes": _each(shape_from_json), "compute": ComputeUse.from_json,
    "posterior_mean": _each(_number), "posterior_std": _each(_number),
    "p_floor": _each(_number), "noise": lambda v: dict(_of(Mapping)(v)),
    "noise_std": _each(_number), "measured": _each(Measured.from_json),
    "failed": _each(FailedShape.from_json), "stopped_early": _each(StoppedEarly.from_json),
    "complying": _each(shape_from_json), "confidence_rule": _number,
    "answer_probability": _number, "unconfirmed": Unconfirmed.from_json,
    "fit": lambda v: dict(_of(Mapping)(v)), "n_planned": _of(int),
    "front": _each(FrontPoint.from_json), "p_front": _each(_number),
}
"""How each stored key of :class:`StopDetails` decodes (one entry per field but ``extra``)."""


def _encode(value: Any) -> Any:
    if isinstance(value, (Shape, Variant)):
        return shape_to_json(value)
    if isinstance(value, tuple):
        return [_encode(x) for x in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Mapping):
        return dict(value)
    return value


# ------------------------------------------------------------------ details ------------------
@dataclass(frozen=True, eq=False)
class StopDetails(Mapping[str, Any]):
    """Everything a stop reports besides its answer, status and confidence; every field is
    optional (``None``: not reported) and the adaptive and paper policies each fill their own.

    It is also a read-only mapping over its JSON form (:meth:`to_json`), so
    ``stop.details["reason_code"]`` and ``stop.details.get("compute")`` read as they did when the
    details were a dict (values in their JSON form: shapes as ``[depth, width]`` lists).

    Attributes:
        reason_code: adaptive: why it stopped — ``"confident"``, ``"budget"``, ``"exhausted"``,
            ``"no_floor"``, ``"complying_set"``, ``"no_feasible"``, ``"all_failed"``.
        max_trainings: adaptive: the trainings cap of the search.
        trainings: adaptive: trainings finished when it stopped.
        expected_gain: adaptive: the next training's expected improvement (accuracy) or saving
            (log cost), ``None`` when not computed; part of the posterior report, so it is
            written (possibly ``null``) whenever ``shapes`` is.
        shapes: adaptive: the feasible shapes, in the problem's order — the order of every
            per-shape list below.
        compute: adaptive: the compute spent, the budget and the predicted cost of all.
        posterior_mean: adaptive: the posterior mean accuracy per shape.
        posterior_std: adaptive: the posterior std per shape.
        p_floor: adaptive with a floor: P(accuracy ≥ floor) per shape.
        noise: adaptive: the posterior's seed-noise estimate in its own JSON form
            (``sigma0``, ``gamma``, ``repeat_df``, ``prior_sigma0``, ``unit_scale``).
        noise_std: adaptive: the seed-noise std per shape.
        measured: adaptive: every trained shape's measured mean and count.
        failed: adaptive: every shape with failed trainings.
        stopped_early: adaptive: shapes with trainings stopped early and their projections.
        complying: adaptive, no goal with a floor: the shapes confidently meeting the floor.
        confidence_rule: adaptive: the confidence the answer had to reach, when none reached it.
        answer_probability: adaptive: the answer's probability (the stop's confidence).
        unconfirmed: adaptive: an unconfirmed answer's probabilities.
        fit: paper: the fitted accuracy model in the stored fit's JSON form (shapes,
            predicted, std, ranking, …); it is stored as the study's fit, not in the result.
        n_planned: paper: the shapes of the sample plan.
        front: frontier goal: the trained shapes on the front, cheapest first.
        p_front: frontier goal: P(on the front) per shape.
        extra: keys this version does not know, or whose value did not decode, verbatim.
    """

    reason_code: str | None = None
    max_trainings: int | None = None
    trainings: int | None = None
    expected_gain: float | None = None
    shapes: tuple[Shape | Variant, ...] | None = None
    compute: ComputeUse | None = None
    posterior_mean: tuple[float, ...] | None = None
    posterior_std: tuple[float, ...] | None = None
    p_floor: tuple[float, ...] | None = None
    noise: Mapping[str, float] | None = None
    noise_std: tuple[float, ...] | None = None
    measured: tuple[Measured, ...] | None = None
    failed: tuple[FailedShape, ...] | None = None
    stopped_early: tuple[StoppedEarly, ...] | None = None
    complying: tuple[Shape | Variant, ...] | None = None
    confidence_rule: float | None = None
    answer_probability: float | None = None
    unconfirmed: Unconfirmed | None = None
    fit: Mapping[str, Any] | None = None
    n_planned: int | None = None
    front: tuple[FrontPoint, ...] | None = None
    p_front: tuple[float, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stored form: a reported field under its name, in field order, then
        :attr:`extra`. Inverse of :meth:`from_json`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and not (f.name == "expected_gain" and self.shapes is not None):
                continue
            out[f.name] = _encode(value)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> StopDetails:
        """Decode stored details (any version's): missing keys are ``None``; unknown keys, and
        values that do not decode, are kept in :attr:`extra`. Never raises on a mapping."""
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in (d or {}).items():
            if k not in _DECODE:
                extra[k] = v
                continue
            if v is None:
                continue
            try:
                values[k] = _DECODE[k](v)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                extra[k] = v
        return cls(**values, extra=extra)

    def without_fit(self) -> StopDetails:
        """These details less :attr:`fit` (the result keeps the rest; the fit is stored on its
        own)."""
        return replace(self, fit=None)

    # a read-only mapping over the JSON form; equal to any mapping with the same JSON form
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_json() == (other.to_json() if isinstance(other, StopDetails)
                                     else dict(other))
        return NotImplemented

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


@dataclass(frozen=True)
class Stop:
    """The search is over.

    Attributes:
        answer: the chosen shape (always a trained one), or ``None`` (nothing complies, or no goal).
        reason: plain words: why it stopped (``"confident"``, ``"budget"``, …) and what it found.
        status: how it ended (:class:`SearchStatus`; a known word given as a ``str`` is
            converted): ``ANSWERED``, ``UNCONFIRMED`` (the budget ended before any shape was
            confirmed to meet the floor: the best-supported trained shape, ``confidence`` its
            P(accuracy ≥ floor)), ``COMPLYING_SET`` (no goal), ``NO_FEASIBLE``,
            ``FLOOR_NOT_REACHED``, ``ALL_FAILED``.
        confidence: probability the answer is right (see :class:`~optuna_shape.policy.Settings`),
            when computed.
        details: everything a report shows (:class:`StopDetails`: posterior per shape, noise
            estimate, next training's expected gain, …); a mapping given instead is decoded
            with :meth:`StopDetails.from_json`.

    Raises:
        ValueError: ``status`` is not a :class:`SearchStatus` word.
    """

    answer: Shape | Variant | None
    reason: str
    status: SearchStatus = SearchStatus.ANSWERED
    confidence: float | None = None
    details: StopDetails = field(default_factory=StopDetails)

    def __post_init__(self) -> None:
        if not isinstance(self.status, SearchStatus):
            object.__setattr__(self, "status", SearchStatus(self.status))
        if not isinstance(self.details, StopDetails):
            object.__setattr__(self, "details", StopDetails.from_json(self.details))
