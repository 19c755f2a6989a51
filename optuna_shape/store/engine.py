"""The storage behind a study: Optuna's private handles, the SQLite lock, trial counts,
heartbeats, stale trials.

Optuna keeps a study's storage and a trial's id private; the sampler reaches them through
:func:`storage_of`, :func:`trial_id` and :func:`keep_alive`. :func:`make_sqlite_atomic` makes
Optuna's queue pop atomic on SQLite files, :func:`spread_pops` keeps many workers from all
popping the same queued trial, :func:`trial_counts` is the cheap look of a waiting worker, and
:func:`fail_stale` is the one rule for the RUNNING trials of workers that are gone.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_shape.store.trials import decode_trial

__all__ = [
    "exception_chain",
    "fail_stale",
    "has_heartbeat",
    "is_in_memory",
    "keep_alive",
    "make_sqlite_atomic",
    "rdb_engine",
    "spread_pops",
    "storage_of",
    "trial_counts",
    "trial_id",
]


# ------------------------------------------------------------------ handles ------------------
def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of a trial (private in Optuna; every storage call takes it)."""
    return trial._trial_id


def storage_of(study: optuna.Study) -> Any:
    """The Optuna storage a study reads and writes."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage id of a study (private in Optuna; caches key on it)."""
    return study._study_id


def keep_alive(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> Any:
    """A context manager that keeps the trial's heartbeat going while the sampler works after the
    objective returned (Optuna's own heartbeat stops then); a no-op without heartbeats."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial._trial_id, study._storage)


def is_in_memory(study: optuna.Study) -> bool:
    """Whether the study lives in this process only."""
    return isinstance(study._storage, optuna.storages.InMemoryStorage)


# ------------------------------------------------------------------ engine -------------------
def _rdb(storage: Any) -> optuna.storages.RDBStorage | None:
    """The RDB storage itself (under Optuna's cache wrapper), or ``None`` for other storages."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def rdb_engine(storage: Any) -> Any | None:
    """The SQLAlchemy engine behind an RDB storage (through Optuna's cache wrapper), or
    ``None`` for other storages."""
    backend = _rdb(storage)
    return None if backend is None else getattr(backend, "engine", None)


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


POPS_SPREAD_PER_RUNNING = 8
"""With many workers, a queue pop starts at a random one of the first ``1 + running // this``
queued trials (:func:`spread_pops`)."""

_POP_RANDOM = random.Random()  # not the user's global random state: seeding that changes nothing


def spread_pops(study: optuna.Study) -> None:
    """Make ``study.ask()``'s queue pop, with many trials running, start at a random one of the
    first few queued trials instead of always at the first. Idempotent.

    Optuna's pop reads the queued trials and tries to take them in order, one storage
    transaction per try, until one is still WAITING. When many workers ask at once — a round of
    trainings ending together, 64 workers starting — they all try the first queued trial, the
    losers all the second, and so on: with ``m`` workers asking, about ``m²/2`` tries, each a
    row lock on the database (measured with 64 workers: 2–19 lost tries per training). Starting
    each worker at a random one of the first ``k = 1 + running // POPS_SPREAD_PER_RUNNING``
    (and going round) spreads them over ``k`` trials. The queue keeps its order within ``k``
    positions (it is a decision's trainings, best first, plus a short look-ahead), and with few
    workers running — one, or fewer than :data:`POPS_SPREAD_PER_RUNNING` — the pop is Optuna's
    first-in, first-out one, so a one-worker search trains in the same order as before. The
    trials counted as running come from the same read of the study as the queued ones.
    """
    if getattr(study, "_osh_spread_pops", False):
        return
    storage, sid = study._storage, study._study_id

    def pop() -> int | None:
        trials = storage.get_all_trials(sid, deepcopy=False,
                                        states=(TrialState.WAITING, TrialState.RUNNING))
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        if not waiting:
            return None
        k = min(len(waiting), 1 + (len(trials) - len(waiting)) // POPS_SPREAD_PER_RUNNING)
        start = _POP_RANDOM.randrange(k) if k > 1 else 0
        for t in waiting[start:] + waiting[:start]:
            try:  # as Optuna's pop: False or an error when another worker took it first
                if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                    return t._trial_id
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    study._pop_waiting_trial_id = pop  # Optuna's ask() pops through this method
    study._osh_spread_pops = True


def trial_counts(study: optuna.Study) -> tuple[tuple[str, int], ...] | None:
    """How many trials of ``study`` are in each state, read with one small query: a marker
    that changes whenever a trial is created, queued, taken from the queue or finished
    (finished counts and the total only grow, so no two such events cancel out). ``None``
    where there is no such query (storages other than RDB) or it failed: read the study.

    Why: a worker waiting for work looks at the study every poll, and a whole read re-reads
    every running and queued trial with its attributes (24 ms of CPU in the worker at 64
    running trials on PostgreSQL, and the server's share besides); this query costs 0.3 ms.
    """
    backend = _rdb(study._storage)
    if backend is None:
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func

    try:
        with _create_scoped_session(backend.scoped_session) as session:
            rows = (session.query(models.TrialModel.state, func.count(models.TrialModel.trial_id))
                    .filter(models.TrialModel.study_id == study._study_id)
                    .group_by(models.TrialModel.state).all())
    except Exception:  # noqa: BLE001 - the whole read that follows reports a real failure
        return None
    return tuple(sorted((str(getattr(state, "name", state)), int(n)) for state, n in rows))


# ------------------------------------------------------------------ stale trials -------------
def has_heartbeat(study_or_storage: optuna.Study | Any) -> bool:
    """Whether a study's storage (or the storage given) fails the trials of dead workers by
    itself (RDB with heartbeats, or the gRPC proxy's heartbeats).

    ``study._storage`` of an RDB study is Optuna's ``_CachedStorage`` wrapper: Optuna's own
    helper understands it.
    """
    from optuna.storages._heartbeat import is_heartbeat_enabled

    storage = (study_or_storage._storage if isinstance(study_or_storage, optuna.Study)
               else study_or_storage)
    return is_heartbeat_enabled(storage)


def fail_stale(study: optuna.Study, *, older_than_s: float | None = None) -> int:
    """Fail the RUNNING trials of workers that are gone; return how many trials were failed.

    The one rule for stale trials: the sampler (while it waits for other workers), the command
    line (when a search starts or resumes) and
    :func:`optuna_shape.store.backends.fail_stale_on_start` all call it.

    With heartbeats (RDB storage): Optuna's own check (no heartbeat for longer than the grace
    period), and a queued training whose first heartbeat never came: a worker killed between
    taking the trial and its heartbeat thread's first write leaves it RUNNING with no heartbeat
    row, which Optuna never counts as stale, and its slot would block the search forever. The
    thread writes while the training starts, so on a busy SQLite file the worker may already
    have suggested the shape (the trial has parameters) when it dies. Such a trial holds a slot
    and has no heartbeat row after a grace period and one beat — a live worker writes one at
    once and every interval. ``older_than_s`` is not needed: the live trials of other workers
    keep beating and are left alone.

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
    backend = _rdb(study._storage)
    if backend is None or not backend.heartbeat_interval:
        return
    grace = backend.grace_period or 2 * backend.heartbeat_interval
    limit = grace + backend.heartbeat_interval
    suspects = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if (_age_s(t) or 0.0) > limit
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


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or while handling, and so on (each once).

    Optuna's trial loop replaces an error raised while it records a trial with one of its own
    (``AssertionError: Should not reach.``, an ``UnboundLocalError`` from its clean-up): the
    storage's real error is further down this chain."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__
