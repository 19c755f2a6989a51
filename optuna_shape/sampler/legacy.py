"""The keywords ``ShapeSampler`` took before policy objects, translated to ``policy=`` and
``measurement=`` with one ``FutureWarning`` per call that names the new spelling."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from optuna_shape.measurement.screening import MeasurementSettings
from optuna_shape.policy import MODES, Adaptive, Paper, Policy

__all__ = ["from_deprecated", "policy_spelling"]

_POLICY_KEYWORDS: dict[str, Any] = {
    "mode": "adaptive", "strategy": "standard", "sampling": "interval", "refit": True,
    "confidence": 0.9, "max_trainings": None, "n_initial": 5, "budget": None}
"""Keywords ``ShapeSampler`` took before policy objects, now fields of :class:`Adaptive` or
:class:`Paper`, each with the value that changes nothing."""
_PAPER_ONLY = ("strategy", "sampling", "refit")
_ADAPTIVE_ONLY = ("confidence", "max_trainings", "n_initial", "budget")
_MEASUREMENT_KEYWORDS = {"device": "device", "latency_batch_size": "batch_size",
                         "threads": "threads", "target_hardware": "target_hardware",
                         "screening": "screening"}
"""Keywords ``ShapeSampler`` took before, now fields of :class:`MeasurementSettings`."""


def _spell(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


def _legacy_policy(given: dict[str, Any], goal: str | None) -> Policy:
    """The policy object the old keywords describe; an option the chosen policy would ignore
    is refused unless its value changes nothing (so old code that spelled out a default keeps
    working)."""
    mode = given.get("mode", "adaptive")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got mode={mode!r}")
    get = {k: given.get(k, v) for k, v in _POLICY_KEYWORDS.items()}
    if mode == "paper":
        for k in _ADAPTIVE_ONLY:
            if k in given and given[k] != _POLICY_KEYWORDS[k]:
                raise ValueError(f"{k} needs mode='adaptive' (the paper's Algorithm 1 trains a "
                                 f"fixed plan; osh.Paper has no {k}), got mode='paper' with "
                                 f"{k}={given[k]!r}")
        return Paper(strategy=get["strategy"], sampling=get["sampling"],
                     refit=bool(get["refit"]))
    for k in _PAPER_ONLY:
        if k in given and given[k] != _POLICY_KEYWORDS[k] and not (k == "strategy" and
                                                                   goal is None):
            need, why, more = {
                "strategy": ("mode='paper' or goal=None", "uses it only to size the complying "
                             "set of goal=None", f" and goal={goal!r}"),
                "sampling": ("mode='paper'", "always takes an interval sample", ""),
                "refit": ("mode='paper'", "refits its posterior after every training", ""),
            }[k]
            raise ValueError(f"{k} needs {need} (the adaptive search {why}), got "
                             f"mode='adaptive' with {k}={given[k]!r}{more}")
    return Adaptive(confidence=get["confidence"], n_initial=get["n_initial"],
                    max_trainings=get["max_trainings"], budget=get["budget"],
                    strategy=given.get("strategy") if goal is None else None)


def policy_spelling(policy: Policy, given: dict[str, Any] | None = None) -> str:
    """``osh.Paper(strategy=6)``: the policy with its non-default fields (a budget as
    ``given`` spelled it: ``"8h"``, not seconds)."""
    given = given or {}
    fields = {f.name: given[f.name] if f.name == "budget" else getattr(policy, f.name)
              for f in dataclasses.fields(policy) if getattr(policy, f.name) != f.default}
    return f"osh.{type(policy).__name__}({_spell(fields)})"


def from_deprecated(
    old: dict[str, Any], goal: str | None, policy: Policy | None,
    measurement: MeasurementSettings | None,
) -> tuple[Policy | None, MeasurementSettings | None]:
    """Translate the keywords ``ShapeSampler`` took before policy objects (one
    ``FutureWarning`` per call, naming the new spelling); ``poll_interval`` stays in ``old``.

    Raises:
        TypeError: a keyword ``ShapeSampler`` never had.
        ValueError: an old keyword mixed with the object that replaces it, or an option the
            chosen policy would ignore.
    """
    for k in old:
        if k not in _POLICY_KEYWORDS and k not in _MEASUREMENT_KEYWORDS and k != "poll_interval":
            raise TypeError(f"ShapeSampler.__init__() got an unexpected keyword argument {k!r}")
    new: list[str] = []
    given = {k: v for k, v in old.items() if k in _POLICY_KEYWORDS}
    if given:
        if policy is not None:
            raise ValueError(f"policy= replaces {', '.join(given)}: give one or the other, got "
                             f"policy={policy!r} with {_spell(given)}")
        policy = _legacy_policy(given, goal)
        new.append(f"policy={policy_spelling(policy, given)}")
    moved = {_MEASUREMENT_KEYWORDS[k]: v for k, v in old.items() if k in _MEASUREMENT_KEYWORDS}
    if moved:
        clash = [k for k in ("device", "latency_batch_size", "threads") if k in old]
        if measurement is not None and clash:
            raise ValueError(f"measurement= replaces {', '.join(clash)}: give one or the other, "
                             f"got measurement={measurement!r} with "
                             f"{_spell({k: old[k] for k in clash})}")
        measurement = dataclasses.replace(measurement or MeasurementSettings(), **moved)
        new.append(f"measurement=osh.MeasurementSettings({_spell(moved)})")
    if "poll_interval" in old:
        new.append(f"sampler.poll_interval = {old['poll_interval']!r} after construction")
    warnings.warn(f"ShapeSampler({_spell(old)}) is deprecated: use {'; '.join(new)}",
                  FutureWarning, stacklevel=3)
    return policy, measurement
