"""The study as one decision sees it: every trial and the study attributes, read once.

A :class:`Snapshot` is taken once per decision (two storage reads: all trials, all study system
attributes). Finished trials never change, so their decoded records are cached per study in
:class:`TrialCache`; only running and waiting trials are decoded again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.policy import Evidence, Training
from optuna_shape.space.shape import Shape, Variant

__all__ = ["Snapshot", "TrialCache", "read_snapshot"]

_LIVE = (TrialState.WAITING, TrialState.RUNNING)
LOST_FREE = 3
"""Trainings of one shape lost to a dead or paused worker that do not count as its failures
(beyond that they do, so a shape that kills its worker every time is eventually given up)."""


@dataclass
class TrialCache:
    """Decoded records of finished trials, per study id (a worker-local cache)."""

    finished: dict[int, dict[int, st.TrialRecord]] = field(default_factory=dict)
    live: dict[int, dict[int, tuple[tuple[int, ...], st.TrialRecord]]] = field(
        default_factory=dict)

    def records(self, study: optuna.Study) -> list[st.TrialRecord]:
        """Every trial of ``study`` decoded (one storage read).

        A queued or running trial is decoded again only when its state or the number of its
        params or attributes changed (what the record holds can change no other way)."""
        cache = self.finished.setdefault(st.study_id(study), {})
        live = self.live.setdefault(st.study_id(study), {})
        out: list[st.TrialRecord] = []
        for t in st.all_trials(study):
            rec = cache.get(t.number)
            if rec is None:
                if t.state.is_finished():
                    rec = cache[t.number] = st.decode_trial(t)
                    live.pop(t.number, None)
                else:
                    sig = (t.state.value, len(t.params), len(t.user_attrs), len(t.system_attrs))
                    hit = live.get(t.number)
                    if hit is not None and hit[0] == sig:
                        rec = hit[1]
                    else:
                        rec = st.decode_trial(t)
                        live[t.number] = (sig, rec)
            out.append(rec)
        return out


@dataclass(frozen=True)
class Snapshot:
    """Trials and study attributes at one moment.

    Attributes:
        trials: every trial, in number order.
        attrs: the study system attributes.
        result: the stored result (final), or ``None``.
    """

    trials: tuple[st.TrialRecord, ...]
    attrs: Mapping[str, Any]
    result: st.ResultRecord | None

    def by_number(self, number: int) -> st.TrialRecord | None:
        """The record of trial ``number``."""
        if 0 <= number < len(self.trials) and self.trials[number].number == number:
            return self.trials[number]
        for t in self.trials:
            if t.number == number:
                return t
        return None

    @property
    def queued(self) -> bool:
        """Whether a trial waits in Optuna's queue (the next ``ask`` pops it)."""
        return any(t.state == TrialState.WAITING for t in self.trials)

    def n_queued(self) -> int:
        """Trials waiting in Optuna's queue."""
        return sum(1 for t in self.trials if t.state == TrialState.WAITING)

    def n_running(self) -> int:
        """Running trials: workers training, planning or waiting (a dead worker's trial until
        it is failed as stale)."""
        return sum(1 for t in self.trials if t.state == TrialState.RUNNING)

    def trainings(self) -> list[st.TrialRecord]:
        """Every training (planned or user, in any state), in trial order."""
        return [t for t in self.trials if t.is_training]

    def evidence(self, precisions: tuple[str, ...] = ()) -> Evidence:
        """Finished trainings (value ``None`` when failed) and the pending ones.

        With ``precisions`` (a search over more than one), every training is listed once per
        precision as a :class:`~optuna_shape.space.shape.Variant` with the trial's
        ``accuracy_by_precision`` entry (a precision it lacks — its conversion failed — is a
        failed training of that candidate), and a pending training makes each of its
        candidates pending.
        """
        done, pending, lost_s = self._evidence_with_numbers()
        workers = self.workers_seen()
        if len(precisions) <= 1:
            return Evidence(tuple(tr for _, tr in done), tuple(pending), lost_s, workers)
        by_number = {t.number: t for t in self.trials}
        out: list[Training] = []
        for number, t in done:
            acc = (by_number[number].accuracies or {}) if t.value is not None else {}
            for p in precisions:
                v = Variant(t.shape.depth, t.shape.width, p)
                if t.partial:  # stopped early: the fp32 forecast stands for every precision
                    out.append(replace(t, shape=v))
                else:
                    out.append(replace(t, shape=v, value=acc.get(p)))
        return Evidence(tuple(out), tuple(Variant(s.depth, s.width, p)
                                          for s in pending for p in precisions), lost_s, workers)

    def _evidence_with_numbers(self
                               ) -> tuple[list[tuple[int, Training]], list[Shape], float]:
        done: list[tuple[int, Training]] = []
        pending: list[Shape] = []
        lost: dict[Shape, int] = {}
        lost_s = 0.0
        for t in self.trials:
            if not t.is_training:
                continue
            assert t.shape is not None
            if t.lost:
                lost[t.shape] = lost.get(t.shape, 0) + 1
                if lost[t.shape] <= LOST_FREE:
                    lost_s += t.seconds or 0.0
                    continue  # not the shape's fault: retried without counting
            cost = {"seconds": t.seconds, "fraction": t.fraction, "curve": t.curve}
            if t.state in _LIVE:
                pending.append(t.shape)
            elif t.state == TrialState.COMPLETE:
                ok = t.value is not None and math.isfinite(t.value)
                done.append((t.number, Training(t.shape, t.value if ok else None, **cost)))
            elif t.stopped_early:  # ShapePruner: a partial observation at its forecast
                done.append((t.number, Training(t.shape, None, t.projected, t.projected_std,
                                                **cost)))
            else:  # FAIL (exception, NaN, stale) or PRUNED by the objective otherwise
                done.append((t.number, Training(t.shape, None, **cost)))
        return done, pending, lost_s

    def workers_seen(self) -> int:
        """The most trials that have run at once (at least 1): each worker runs one trial at
        a time — a training, or a planner trial while it plans or waits —, so this is the
        number of workers the search has had at once, read from the trials' start and end
        times (a running trial counts until now). Each worker's trials follow one another on
        its own clock, so clocks that differ between machines cannot raise it above the
        workers there were."""
        events: list[tuple[float, int]] = []
        for t in self.trials:
            if t.started is None:
                continue
            events.append((t.started, 1))
            if t.ended is not None:
                events.append((max(t.ended, t.started), -1))
        events.sort()  # at one instant an end (-1) comes before a start (+1)
        peak = running = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        return max(1, peak)

    def compute_spent(self) -> float:
        """Seconds charged to the finished trainings (see :mod:`optuna_shape.models.compute`)."""
        return self.evidence().spent_seconds()

    def pending_shapes(self) -> set[Shape]:
        """Shapes queued or being trained."""
        return {t.shape for t in self.trials
                if t.is_training and t.state in _LIVE and t.shape is not None}

    def repeat_index(self, shape: Shape) -> int:
        """The next training's repeat index of ``shape``: its non-failed trainings + 1."""
        n = sum(1 for t in self.trials if t.is_training and t.shape == shape
                and (t.state in _LIVE or t.state == TrialState.COMPLETE))
        return n + 1

    def _planner_numbers(self) -> list[int]:
        return [t.number for t in self.trials if t.state == TrialState.RUNNING
                and t.slot is None and t.shape is None and not t.rejected]

    def planners(self) -> int:
        """Running trials that train nothing yet: workers whose ``ask`` found the queue empty
        and are planning or waiting for something to start (idle workers)."""
        return len(self._planner_numbers())

    def deciders(self) -> list[int]:
        """Numbers of running trainings whose after-trial hook decides for the idle workers
        (marked ``planning``)."""
        return [t.number for t in self.trials if t.state == TrialState.RUNNING and t.planning]

    def planner_rank(self, number: int) -> int:
        """How many planner trials are older than planner trial ``number``: the idle workers
        ahead of it for the trainings queued for them (each takes one before it does)."""
        return sum(1 for n in self._planner_numbers() if n < number)

    def first_planner(self) -> int | None:
        """The number of the oldest running planner trial (the one that decides for every idle
        worker), ``None`` when no worker is planning."""
        return min(self._planner_numbers(), default=None)

    def same_slot(self, slot: str) -> list[st.TrialRecord]:
        """Every trial carrying ``slot``."""
        return [t for t in self.trials if t.slot == slot]


def read_snapshot(study: optuna.Study, cache: TrialCache,
                  override: tuple[int, TrialState, float | None] | None = None) -> Snapshot:
    """Read the study once.

    Args:
        override: ``(number, state, value)`` of the calling trial when it is about to finish
            (in ``after_trial`` its final state is not written yet).
    """
    trials = cache.records(study)
    if override is not None:
        number, state, value = override
        trials = [t if t.number != number else replace(
            t, state=state, value=value if state == TrialState.COMPLETE else None,
            fail_reason=t.fail_reason if state != TrialState.FAIL else t.fail_reason or "failed")
            for t in trials]
    attrs = st.study_attrs(study)
    return Snapshot(tuple(trials), attrs, st.read_result(attrs))
