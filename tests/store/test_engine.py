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
if sys.argv[2] == "spread":
    st.spread_pops(study)
got = []
while (tid := study._pop_waiting_trial_id()) is not None:
    got.append(tid)
print(json.dumps(got))
"""


@pytest.mark.parametrize("spread", ["fifo", "spread"])
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_queue_pop_is_atomic_across_processes(kind, spread, tmp_path):
    """Optuna's WAITING → RUNNING pop reads outside a transaction with Python's sqlite3 driver:
    measured 34 of 300 queued trials popped twice by 4 processes. With the storage's
    ``BEGIN IMMEDIATE`` every trial goes to exactly one process. The journal storage decides by
    log order (measured: 0 of 150 twice). The same with pops spread over the first queued
    trials (40 trials running, and more as they are popped: each pop starts at one of the
    first six or more)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'pop.db'}"
        storage: object = url
    else:
        from optuna.storages.journal import JournalFileBackend

        url = str(tmp_path / "pop.log")
        storage = optuna.storages.JournalStorage(JournalFileBackend(url))
    study = optuna.create_study(study_name="p", storage=storage)
    for _ in range(40 if spread == "spread" else 0):
        study._storage.create_new_trial(study._study_id)  # RUNNING
    for _ in range(80):
        study._storage.create_new_trial(study._study_id,
                                        template_trial=create_trial(state=TrialState.WAITING))
    script = tmp_path / "pop.py"
    script.write_text(POP.format(root=str(ROOT)))
    procs = [subprocess.Popen([sys.executable, str(script), url, spread],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
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


def _queue(running: int, waiting: int) -> optuna.Study:
    study = optuna.create_study()
    for _ in range(running):
        study._storage.create_new_trial(study._study_id)  # RUNNING
    for _ in range(waiting):
        study.enqueue_trial({}, skip_if_exists=False)
    st.spread_pops(study)
    return study


def _first_pop(running: int, waiting: int) -> int:
    """The queue position of the trial a worker's first ``ask`` takes."""
    study = _queue(running, waiting)
    return study.ask().number - running


def test_with_few_workers_running_the_pop_is_first_in_first_out():
    """Seven other workers training: each ask (its trial told before the next, as a worker's)
    takes the oldest queued trial."""
    study = _queue(running=7, waiting=5)
    numbers = []
    for _ in range(7):
        trial = study.ask()
        numbers.append(trial.number)
        study.tell(trial, 1.0)
    assert numbers == [7, 8, 9, 10, 11, 12, 13]  # then new ones


def test_the_trials_running_decide_how_far_a_pop_may_start(monkeypatch):
    """With eight trials running (the asking worker's own finished), the first two queued
    trials are candidates: over many pops both are taken first, never the third."""
    import random

    from optuna_shape.store import engine

    monkeypatch.setattr(engine, "_POP_RANDOM", random.Random(1))
    firsts = {_first_pop(8, 5) for _ in range(60)}
    assert firsts == {0, 1}


def test_with_many_workers_running_pops_start_at_one_of_the_first_queued(monkeypatch):
    import random

    from optuna_shape.store import engine

    monkeypatch.setattr(engine, "_POP_RANDOM", random.Random(0))
    # 40 running: 1 + 40 // 8 = 6 positions
    assert {_first_pop(40, 10) for _ in range(60)} == set(range(6))
    assert {_first_pop(40, 3) for _ in range(30)} == {0, 1, 2}  # never past the queue
    assert {_first_pop(40, 1) for _ in range(5)} == {0}


def test_a_spread_pop_goes_round_the_queue_past_trials_others_took(monkeypatch):
    """Every queued trial but the first was taken by other workers since the read: the pop
    tries them from its random start, round the queue, and takes the first one; with none left
    it returns None, and ``ask`` creates a new trial."""
    from optuna_shape.store import engine

    study = _queue(running=40, waiting=6)  # queued: trials 40-45
    storage = study._storage
    set_state = storage.set_trial_state_values
    tries: list[int] = []

    def others_were_first(trial_id: int, state: TrialState, values: object = None) -> bool:
        tries.append(storage.get_trial(trial_id).number)
        if tries[-1] != 40:
            return False
        return set_state(trial_id, state, values)

    monkeypatch.setattr(storage, "set_trial_state_values", others_were_first)
    monkeypatch.setattr(engine._POP_RANDOM, "randrange", lambda k: 3)
    assert study.ask().number == 40
    assert tries == [43, 44, 45, 40]
    tries.clear()
    assert study.ask().number == 46  # every other queued trial taken: a new trial
    assert sorted(tries) == [41, 42, 43, 44, 45]
