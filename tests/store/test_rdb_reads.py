"""Trials read from plain rows are the trials Optuna's ORM reads, field for field."""

from __future__ import annotations

import math

import optuna
import pytest
import sqlalchemy
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from optuna_shape.store import rdb_reads
from optuna_shape.store.backends import open_storage, resolve_driver
from optuna_shape.store.rdb_reads import LeanRDBStorage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fill(storage: optuna.storages.BaseStorage) -> int:
    """A study with every kind of trial: each state, params of each distribution, one and two
    values (infinite ones too), attributes of every JSON type, curves with gaps, inf and NaN."""
    sid = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "zoo")
    dists = {"depth": CategoricalDistribution([10, 16, 22]),
             "width": CategoricalDistribution([0.5, 1.0, "wide", None]),
             "lr": FloatDistribution(1e-4, 1e-1, log=True),
             "epochs": IntDistribution(1, 64, step=3)}
    for i in range(23):
        if i % 7 == 3:  # queued, as a planned training is
            tid = storage.create_new_trial(sid, template_trial=create_trial(
                state=TrialState.WAITING, system_attrs={"osh:slot": f"d{i}#1",
                                                        "fixed_params": {"depth": 16}},
                user_attrs={"stage": "sample"}))
            continue
        tid = storage.create_new_trial(sid)
        for name, dist in list(dists.items())[: 1 + i % 4]:
            value = {"depth": [10, 16, 22][i % 3], "width": [0.5, 1.0, "wide", None][i % 4],
                     "lr": 10 ** (-1 - (i % 3)), "epochs": 1 + 3 * (i % 5)}[name]
            storage.set_trial_param(tid, name, dist.to_internal_repr(value), dist)
        storage.set_trial_system_attr(tid, "osh:slot", f"d{i}#{1 + i % 2}")
        storage.set_trial_system_attr(tid, "nested", {"a": [1, 2.5, None], "b": {"c": "x"}})
        storage.set_trial_user_attr(tid, "size_mb", 1.25 * i)
        storage.set_trial_user_attr(tid, "flag", bool(i % 2))
        storage.set_trial_user_attr(tid, "text", f"é{i}")
        for step in range(1, 1 + i % 5):
            if step != 3:
                storage.set_trial_intermediate_value(tid, step, 50.0 + step)
        if i == 4:
            storage.set_trial_intermediate_value(tid, 9, float("inf"))
            storage.set_trial_intermediate_value(tid, 10, float("nan"))
            storage.set_trial_intermediate_value(tid, 11, float("-inf"))
        state = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING,
                 TrialState.COMPLETE][i % 5]
        if state == TrialState.COMPLETE:
            storage.set_trial_state_values(tid, state, [float("inf") if i == 10 else 90.0 + i])
        elif state != TrialState.RUNNING:
            storage.set_trial_state_values(tid, state)
    return sid


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _assert_same(lean: list[FrozenTrial], orm: list[FrozenTrial]) -> None:
    assert [t._trial_id for t in lean] == [t._trial_id for t in orm]
    for x, y in zip(lean, orm):
        assert vars(x).keys() == vars(y).keys()
        for field in vars(x):
            assert _same(vars(x)[field], vars(y)[field]), (x.number, field)


@pytest.fixture(autouse=True)
def _local_time_is_not_utc(monkeypatch):
    """Trials' times are stored in UTC and handed out in local time: make the two differ."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _check(url: str) -> None:
    lean = open_storage(url, heartbeat_interval=None)
    assert isinstance(lean, LeanRDBStorage)
    sid = _fill(lean)
    orm = optuna.storages.RDBStorage(resolve_driver(url))
    every = orm._get_trials(sid, None, set(), -1)
    assert len(every) == 23
    ids = [t._trial_id for t in every]
    unfinished = {t._trial_id for t in every if not t.state.is_finished()}
    reads = [(None, set(), -1), (None, unfinished, ids[15]), (None, set(), ids[10]),
             ((TrialState.WAITING,), set(), -1),
             ((TrialState.COMPLETE, TrialState.RUNNING), unfinished, ids[5]),
             (None, unfinished, ids[-1])]  # what Optuna's cache reads once all are seen
    for states, included, greater in reads:
        _assert_same(lean._get_trials(sid, states, included, greater),
                     orm._get_trials(sid, states, included, greater))
    for tid in ids:
        _assert_same([lean.get_trial(tid)], [orm.get_trial(tid)])
    cached = optuna.storages.get_storage(lean)  # what a worker and the proxy read through
    _assert_same(cached.get_all_trials(sid), orm.get_all_trials(sid))
    with pytest.raises(KeyError):
        lean.get_trial(max(ids) + 100)
    with pytest.raises(KeyError):
        lean._get_trials(sid + 100, None, set(), -1)
    empty = lean.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "empty")
    assert lean._get_trials(empty, None, set(), -1) == []


def test_sqlite_reads_equal_optunas(tmp_path):
    _check(f"sqlite:///{tmp_path / 'zoo.db'}")


def test_postgres_reads_equal_optunas(postgres_url):
    _check(postgres_url)


def test_many_trials_are_read_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(rdb_reads, "_CHUNK", 4)  # 23 trials: six chunks of ids
    _check(f"sqlite:///{tmp_path / 'zoo.db'}")


def test_reads_inside_optunas_transactions_do_not_wait_for_their_own_lock(tmp_path):
    """Optuna reads a trial, and could read trials, inside its own transaction (writing to a
    finished trial reads it for the error message). On a SQLite file every transaction holds
    the write lock, so such a read made from another connection would wait out the lock
    timeout (60 s) for the lock its own thread holds: it must be made in the transaction."""
    import time

    from optuna.storages._rdb.storage import _create_scoped_session

    lean = open_storage(f"sqlite:///{tmp_path / 'zoo.db'}", heartbeat_interval=None)
    sid = _fill(lean)
    finished = next(t for t in lean._get_trials(sid, None, set(), -1) if t.state.is_finished())
    start = time.monotonic()
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        lean.set_trial_user_attr(finished._trial_id, "late", 1)
    with _create_scoped_session(lean.scoped_session) as session:
        session.execute(sqlalchemy.text("SELECT 1"))  # a transaction of Optuna's is open
        assert len(lean._get_trials(sid, None, set(), -1)) == 23
    assert time.monotonic() - start < 5


def test_a_failing_read_is_optunas(tmp_path, monkeypatch):
    lean = open_storage(f"sqlite:///{tmp_path / 'zoo.db'}", heartbeat_interval=None)
    sid = _fill(lean)

    def broken(*a: object, **k: object) -> list[FrozenTrial]:
        raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("too many SQL variables"))

    monkeypatch.setattr(rdb_reads, "read_trials", broken)
    assert len(lean._get_trials(sid, None, set(), -1)) == 23
