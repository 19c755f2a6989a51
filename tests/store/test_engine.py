"""The storage engine: an atomic queue pop on SQLite, and stale trials judged on the right clock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from optuna_shape import store as st

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[2]


POP = """
import json, sys, optuna
sys.path.insert(0, {root!r})
from optuna_shape import store as st
optuna.logging.set_verbosity(optuna.logging.ERROR)
if sys.argv[1].startswith("sqlite"):
    s = optuna.storages.RDBStorage(sys.argv[1],
                                   engine_kwargs={{"connect_args": {{"timeout": 60}}}})
    st.make_sqlite_atomic(s)
else:
    from optuna.storages.journal import JournalFileBackend
    s = optuna.storages.JournalStorage(JournalFileBackend(sys.argv[1]))
study = optuna.load_study(study_name="p", storage=s)
got = []
while (tid := study._pop_waiting_trial_id()) is not None:
    got.append(tid)
print(json.dumps(got))
"""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_queue_pop_is_atomic_across_processes(kind, tmp_path):
    """Optuna's WAITING → RUNNING pop reads outside a transaction with Python's sqlite3 driver:
    measured 34 of 300 queued trials popped twice by 4 processes. With the storage's
    ``BEGIN IMMEDIATE`` every trial goes to exactly one process. The journal storage decides by
    log order (measured: 0 of 150 twice)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'pop.db'}"
        storage: object = url
    else:
        from optuna.storages.journal import JournalFileBackend

        url = str(tmp_path / "pop.log")
        storage = optuna.storages.JournalStorage(JournalFileBackend(url))
    study = optuna.create_study(study_name="p", storage=storage)
    for _ in range(80):
        study._storage.create_new_trial(study._study_id,
                                        template_trial=create_trial(state=TrialState.WAITING))
    script = tmp_path / "pop.py"
    script.write_text(POP.format(root=str(ROOT)))
    procs = [subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    popped = Counter()
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0
        popped.update(json.loads(out))
    assert len(popped) == 80 and max(popped.values()) == 1, popped


def test_make_sqlite_atomic_applies_to_sqlite_files_only(tmp_path):
    s = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'a.db'}")
    assert st.make_sqlite_atomic(s) and st.make_sqlite_atomic(s)  # idempotent
    assert not st.make_sqlite_atomic(optuna.storages.InMemoryStorage())
    study = optuna.create_study(storage=s)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert len(study.trials) == 3


@pytest.fixture(params=["EST5", "JST-9"], ids=["utc-5h", "utc+9h"])
def far_from_utc(request, monkeypatch):
    """The process's local time zone set five hours behind or nine ahead of UTC (POSIX ``TZ``
    strings, no time-zone database needed), restored afterwards."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    assert time.localtime().tm_gmtoff != 0, "the time zone did not take effect"
    yield request.param
    monkeypatch.undo()
    time.tzset()


def test_a_stale_trials_age_does_not_depend_on_the_time_zone(far_from_utc, tmp_path):
    """Optuna stamps ``datetime_start`` with naive local time: a trial started a moment ago is
    a moment old on a machine outside UTC too (not the UTC offset old, nor negative)."""
    from optuna_shape.store.backends import fail_stale_on_start, open_storage

    journal = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}"),
                                  study_name="j")
    memory = optuna.create_study()
    for study in (journal, memory):
        study.ask()
    assert fail_stale_on_start(journal, older_than_s=3600) == 0  # seconds old, not hours
    assert st.fail_stale(memory, older_than_s=3600) == 0
    time.sleep(0.05)
    assert fail_stale_on_start(journal, older_than_s=0.01) == 1
    assert st.fail_stale(memory, older_than_s=0.01) == 1
    assert journal.trials[0].state == memory.trials[0].state == TrialState.FAIL
    assert st.fail_stale(memory) == 0  # no heartbeat and no age: nothing to judge by


def test_a_training_whose_first_heartbeat_never_came_is_failed(tmp_path):
    """A worker killed after suggesting its shape but before its heartbeat thread's first write
    (seen on a busy SQLite file: the survivors waited forever) leaves a RUNNING training with
    parameters and no heartbeat row: it is failed after a grace period and one beat. One that
    has beaten is left to Optuna's own rule."""
    import datetime

    from optuna.distributions import FloatDistribution

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}",
                                         heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s")
    old = datetime.datetime.now() - datetime.timedelta(seconds=30)
    ids = []
    for k in (1, 2):
        t = create_trial(state=TrialState.RUNNING, params={"width": 0.5},
                         distributions={"width": FloatDistribution(0.25, 3.0)},
                         system_attrs={st.SLOT: f"d10-w0.5#{k}"})
        t.datetime_start = old
        ids.append(storage.create_new_trial(study._study_id, template_trial=t))
    storage.record_heartbeat(ids[1])  # beating now: alive
    assert st.fail_stale(study) == 1
    assert [storage.get_trial(i).state for i in ids] == [TrialState.FAIL, TrialState.RUNNING]


def test_trial_counts_are_unknown_without_an_rdb(tmp_path):
    """In memory and in a journal there is no cheap count: callers read the study."""
    assert st.trial_counts(optuna.create_study()) is None
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    assert st.trial_counts(optuna.create_study(storage=journal)) is None
