"""Coordination between workers on Optuna's one atomic primitive: the WAITING → RUNNING pop.

Rules (each has a test that fails when it is broken):

* **Slots.** A training is queued as a WAITING trial created in one storage call with its fixed
  params, its slot ``"<shape key>#<k>"`` (``k`` = the shape's non-failed trainings, complete or
  pending, + 1 at planning time) and its stage (:func:`enqueue`).
* **Winner.** A popped trial with a slot trains unless another trial of the same slot with a
  *lower number* is WAITING, RUNNING or COMPLETE, or any trial of the slot is COMPLETE; then it
  yields (PRUNED, stage ``duplicate``) (:func:`wins`). Trial numbers are assigned by the storage
  in creation order, so the later copy's read, taken after it was popped, always sees the earlier
  one; the earlier one needs no read to win. FAIL trials (stale, crashed) do not count, so the
  policy plans the slot again and the new copy wins.
* **Screening** is one WAITING trial with the slot ``"screen:<hardware hash>#1"``: the same
  winner rule makes exactly one worker measure; the others wait for the ``screened`` mark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape import store as st
from optuna_shape.sampler.snapshot import Snapshot
from optuna_shape.space.shape import Shape
from optuna_shape.store import screen_slot, slot_of

__all__ = ["slot_of", "screen_slot", "wins", "a_queued_training_is_mine", "enqueue",
           "screen_state", "optimize", "lookahead", "WORKERS_PER_QUEUED_AHEAD"]

_logger = logging.getLogger("optuna_shape")

QUEUE_CAP = 16
"""Most trials waiting in the queue at once, or as many as there are running trials when more
(one training for each worker, with many workers). Every ``ask`` and every snapshot reads the
waiting trials from the storage, so a long queue makes each trial slower on RDB storages
(measured with 500 queued: ~1.4 s per trial on SQLite, ~2 s on PostgreSQL, falling to 0.37 s /
0.15 s as the queue drained); the policy proposes the rest again once the queue has drained."""


WORKERS_PER_QUEUED_AHEAD = 8
"""With many workers, one training per this many running workers is kept queued ahead
(:func:`lookahead`)."""


def lookahead(workers: int) -> int:
    """Trainings kept queued beyond the one the finishing worker takes, with ``workers``
    running trials (trainings and idle workers): one per :data:`WORKERS_PER_QUEUED_AHEAD`.

    With fewer workers none is: the policy decides only once the queue is empty, on every
    result in by then. With many, results arrive faster than one decision takes, and a worker
    that finds the queue empty waits for another's planning; a short queue ahead lets it start
    at once, on decisions that miss at most the few results that came in while it waited.

    Example:
        >>> lookahead(1), lookahead(4), lookahead(16), lookahead(64)
        (0, 0, 2, 8)
    """
    return max(0, workers) // WORKERS_PER_QUEUED_AHEAD


def a_queued_training_is_mine(snapshot: Snapshot, number: int, planner_decides: bool) -> bool:
    """Whether planner trial ``number``, waiting for another's decision, ends so that its
    worker's next ``ask`` takes a queued training: only when there are queued trainings for
    the idle workers ahead of it too — the older planners, less the oldest one when it is the
    one deciding (``planner_decides``; it takes its own training). The others wait for the
    decision under way instead of ending and planning again in a new trial.

    Example: with 3 planners and 1 training queued while a finishing training decides, the
    oldest planner ends and takes it; the other two wait for the decision."""
    ahead = snapshot.planner_rank(number) - (1 if planner_decides else 0)
    return snapshot.n_queued() > ahead


def wins(snapshot: Snapshot, me: st.TrialRecord) -> bool:
    """Whether trial ``me`` (popped, with a slot) may run: the winner rule above."""
    assert me.slot is not None
    for t in snapshot.same_slot(me.slot):
        if t.number == me.number:
            continue
        if t.state == TrialState.COMPLETE:
            return False
        if t.number < me.number and t.state in (TrialState.WAITING, TrialState.RUNNING):
            return False
    return True


def enqueue(
    study: optuna.Study,
    snapshot: Snapshot,
    shapes: tuple[Shape, ...],
    stage: str,
    attrs_of: Callable[[Shape], tuple[dict[str, Any], dict[str, Any]]],
    alongside: frozenset[Shape] = frozenset(),
) -> list[Shape]:
    """Queue a training of each shape not already pending, or pending and in ``alongside``
    (one more training of it at the same time, in the next slot; at most :data:`QUEUE_CAP`
    waiting at once, or the number of running trials when more); returns the shapes queued.

    ``attrs_of(shape)`` gives the (user, system) attributes the trial is created with.
    """
    pending = snapshot.pending_shapes()
    room = max(QUEUE_CAP, snapshot.n_running()) - snapshot.n_queued()
    queued: list[Shape] = []
    for shape in dict.fromkeys(shapes):
        if shape in pending and shape not in alongside:
            continue
        if len(queued) >= room:
            break  # the policy proposes the rest again once the queue has drained
        user, system = attrs_of(shape)
        _create(study, slot_of(shape, snapshot.repeat_index(shape)), stage, shape, user, system)
        queued.append(shape)
    return queued


def _create(study: optuna.Study, slot: str, stage: str, shape: Shape | None,
            user: Mapping[str, Any], system: Mapping[str, Any]) -> int:
    return st.create_waiting_trial(study, slot=slot, stage=stage, shape=shape,
                                   user_attrs=user, system_attrs=system)


def screen_state(snapshot: Snapshot, hw_hash: str) -> str:
    """``"done"`` (screened), ``"queued"`` (a screening trial waits), ``"running"`` or
    ``"none"`` (nobody screens: queue one)."""
    if st.screened_key(hw_hash) in snapshot.attrs:
        return "done"
    live = [t for t in snapshot.same_slot(screen_slot(hw_hash))
            if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    if any(t.state == TrialState.RUNNING for t in live):
        return "running"
    return "queued" if live else "none"


def queue_screening(study: optuna.Study, hw_hash: str) -> None:
    """Queue the screening task (a duplicate queued concurrently yields by the winner rule)."""
    _create(study, screen_slot(hw_hash), "screen", None, {}, {})


def _lost_to_staleness(exc: BaseException) -> bool:
    """Whether ``exc`` is Optuna refusing to record a trial another worker failed as stale:
    ``ValueError: Cannot tell a FAIL trial`` (failed before ``tell``) or
    ``UpdateFinishedTrialError`` (failed during ``tell``) — in ``study.optimize`` both surface
    as Optuna's own ``AssertionError: Should not reach.`` raised while handling them."""
    return any(isinstance(e, optuna.exceptions.UpdateFinishedTrialError) or (
        isinstance(e, ValueError) and str(e).startswith("Cannot tell a FAIL"))
        for e in st.exception_chain(exc))


def optimize(study: optuna.Study, func: Callable[[optuna.Trial], Any], **kwargs: Any) -> None:
    """``study.optimize(func, **kwargs)`` that survives this worker's trial being failed as stale.

    A worker paused for longer than the storage's heartbeat grace period (swap, SIGSTOP, a long
    GC) finds its trial failed by another worker when it resumes; Optuna then refuses to record
    the result (``ValueError: Cannot tell a FAIL trial``) and ``study.optimize`` raises. The
    shape was planned again meanwhile, so nothing is lost: this wrapper logs one line and goes on
    with the next trial. ``n_trials`` counts every trial started here, the lost one included.
    On a SQLite file storage opened from a plain URL it also makes the queue pop atomic before
    the first trial (:func:`optuna_shape.store.make_sqlite_atomic`; ``ShapeSampler`` does it
    at its first trial, ``optuna_shape.store.backends.open_storage`` when opening), and with
    many workers running it spreads their pops over the first few queued trials
    (:func:`optuna_shape.store.spread_pops`; ``ShapeSampler`` installs it at its first trial).
    (A trial failed *during* ``tell`` surfaces as ``UpdateFinishedTrialError``; it is handled
    the same way.) Trials are counted as their objective begins, not by a callback: with any
    callback Optuna reads each finished trial back from the storage to hand it over, one
    storage call (through the gRPC proxy, a wait for its next read of the study) per trial
    that a search without callbacks does not need.
    A training stopped by Ctrl-C is marked ``interrupted`` before the interrupt goes on: it is
    retried when the search resumes and does not count as the shape's failure.
    """
    st.make_sqlite_atomic(st.storage_of(study))  # before the first pop (open_storage does it too)
    st.spread_pops(study)  # many workers asking at once spread over the first queued trials
    n_trials = kwargs.pop("n_trials", None)
    started = [0]  # trials whose objective began here (a lost one too)
    callbacks = list(kwargs.pop("callbacks", None) or []) or None  # None: no read-back

    def marked(trial: optuna.Trial) -> Any:
        started[0] += 1
        try:
            return func(trial)
        except KeyboardInterrupt:
            st.mark_interrupted(trial)
            raise

    while True:
        left = None if n_trials is None else n_trials - started[0]
        if left is not None and left <= 0:
            return
        try:
            study.optimize(marked, n_trials=left, callbacks=callbacks, **kwargs)
            return
        except (ValueError, AssertionError, optuna.exceptions.UpdateFinishedTrialError) as exc:
            if not _lost_to_staleness(exc):
                raise
            _logger.warning("optuna-shape: this worker's trial was failed as stale while the "
                            "worker was paused; its shape is trained again. Continuing.")
