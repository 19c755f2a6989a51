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

from optuna_shape.store import lean_rdb
from optuna_shape.store.backends import open_storage, resolve_driver
from optuna_shape.store.lean_rdb import LeanRDBStorage

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
    monkeypatch.setattr(lean_rdb, "_CHUNK", 4)  # 23 trials: six chunks of ids
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

    monkeypatch.setattr(lean_rdb, "read_trials", broken)
    assert len(lean._get_trials(sid, None, set(), -1)) == 23


def _templates() -> list[FrozenTrial]:
    """Trials as optuna-shape creates them: a queued training (attributes only), a copied
    training (params, value, curve, attributes), a copied failure and a bare queued trial."""
    attrs = {"stage": "acquire", "params": 123456, "size_mb": 0.47, "predicted_std": None,
             "flag": True, "text": "é", "nested": {"a": [1, 2.5, None]}}
    depth = CategoricalDistribution([10, 16, 22])
    return [
        create_trial(state=TrialState.WAITING, user_attrs=attrs,
                     system_attrs={"osh:slot": "d16-w1#2", "osh:stage": "acquire",
                                   "fixed_params": {"depth": 16, "width": 1.0}}),
        create_trial(state=TrialState.COMPLETE, value=97.5, params={"depth": 22},
                     distributions={"depth": depth}, intermediate_values={1: 80.0, 2: 90.5},
                     user_attrs={"train_seconds": 3.25}, system_attrs={"osh:slot": "d22#1"}),
        create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "out of memory"}),
        create_trial(state=TrialState.WAITING),
    ]


def _created(storage: optuna.storages.RDBStorage, url: str, templates: list[FrozenTrial],
             name: str) -> tuple[list[FrozenTrial], int]:
    """``templates`` created in a new study: the trials as Optuna's ORM reads them back, and
    the SQL statements the creations ran."""
    sid = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], name)
    statements = [0]

    def count(*args: object) -> None:
        statements[0] += 1

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", count)
    try:
        returned = [storage._create_new_trial(sid, template_trial=t) for t in templates]
    finally:
        sqlalchemy.event.remove(storage.engine, "before_cursor_execute", count)
    stored = optuna.storages.RDBStorage(url)._get_trials(sid, None, set(), -1)  # Optuna's read
    def fields(t: FrozenTrial) -> tuple:
        return (t.number, t.state, t.values, t.params, t.user_attrs, t.system_attrs,
                t.intermediate_values)

    assert [fields(t) for t in returned] == [fields(t) for t in stored]  # handed back = stored
    return stored, statements[0]


def _check_created(url: str, other: str) -> None:
    lean = open_storage(url, heartbeat_interval=None)
    assert isinstance(lean, LeanRDBStorage)
    templates = _templates()
    lean_trials, lean_statements = _created(lean, resolve_driver(url), templates, "lean")
    orm_url = resolve_driver(other)
    orm_trials, orm_statements = _created(optuna.storages.RDBStorage(orm_url), orm_url,
                                          templates, "orm")
    for t in lean_trials + orm_trials:  # one database may hold both studies
        t._trial_id = t.number
    _assert_same(lean_trials, orm_trials)
    # Optuna's: a query and an upsert per attribute; the lean one: one insert per table and trial
    n_attrs = sum(len(t.user_attrs) + len(t.system_attrs) for t in templates)
    assert lean_statements <= orm_statements - n_attrs, (lean_statements, orm_statements)


def test_sqlite_created_trials_equal_optunas(tmp_path):
    _check_created(f"sqlite:///{tmp_path / 'lean.db'}", f"sqlite:///{tmp_path / 'orm.db'}")


def test_postgres_created_trials_equal_optunas(postgres_url):
    _check_created(postgres_url, postgres_url)
