"""Four real worker processes on one SQLite file / PostgreSQL database; one is SIGKILLed while
it trains. No shape is trained twice (except the retry of the killed training), every planned
shape is trained, every survivor ends by itself, and the answer is the single-worker one."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from optuna.trial import TrialState
from osh_worker import reference_answer
from wtools import (
    check_no_duplicate_trainings,
    check_plan_trained,
    kill_mid_training,
    load,
    read_log,
)

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.policy.adaptive import default_max_trainings
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot


def _url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_four_workers_one_killed_mid_training(backend, request, workers, tmp_path):
    url = _url(backend, request, tmp_path)
    log = tmp_path / "trainings.log"
    training_s = 0.8
    procs = [workers.start("--storage", url, "--log", str(log), "--sleep", str(training_s))
             for _ in range(4)]
    victim, killed = kill_mid_training(procs, log, min_done=2, training_s=training_s)
    survivors = [p for p in procs if p is not victim]
    t0 = time.monotonic()
    workers.wait_all(timeout=120, procs=survivors, url=url)
    for p in survivors:
        assert p.returncode == 0, workers.output(p)
        assert "RESULT" in workers.output(p)

    study = load(url)
    events = read_log(log)
    check_no_duplicate_trainings(study, events)
    check_plan_trained(study)
    # the killed training was failed (heartbeat) and its shape trained again by a survivor
    assert study.trials[killed.trial].state == TrialState.FAIL
    retry = [e for e in events if e.event == "end" and e.shape == killed.shape]
    assert len(retry) == 1 and retry[0].pid != victim.pid
    # several workers did the work
    assert len({e.pid for e in events if e.event == "end"}) >= 2
    assert osh.best_shape(study) == reference_answer()
    assert osh.is_finished(study)
    # survivors did not wait long after the end (no worker idles forever)
    assert time.monotonic() - t0 < 120


def test_workers_never_train_a_shape_twice_without_faults(workers, tmp_path):
    """No kill: every training is unique, and all four workers end by themselves."""
    url = f"sqlite:///{tmp_path / 'clean.db'}"
    log = tmp_path / "trainings.log"
    for _ in range(4):
        workers.start("--storage", url, "--log", str(log), "--sleep", "0.4")
    workers.wait_all(timeout=120, url=url)
    assert all(p.returncode == 0 for p in workers.procs)
    study = load(url)
    events = read_log(log)
    check_no_duplicate_trainings(study, events)
    starts = Counter(e.shape for e in events if e.event == "start")
    assert max(starts.values()) == 1
    check_plan_trained(study)
    assert osh.best_shape(study) == reference_answer()
    stages = Counter(t.user_attrs.get("stage") for t in study.trials)
    assert stages["stopped"] >= 1  # workers ended by themselves
    assert set(stages) <= {"sample", "verify", "stopped", "plan", "duplicate"}


def test_three_workers_search_the_front_without_training_a_slot_twice(workers, tmp_path):
    """The frontier goal with real processes: batches of distinct trainings, the cap kept,
    every worker ends by itself, and the front holds only trained shapes."""
    url = f"sqlite:///{tmp_path / 'front.db'}"
    log = tmp_path / "trainings.log"
    for _ in range(3):
        workers.start("--storage", url, "--log", str(log), "--sleep", "0.3",
                      "--goal", "frontier", "--max-trainings", "12")
    workers.wait_all(timeout=120, url=url)
    assert all(p.returncode == 0 for p in workers.procs), [workers.output(p)
                                                          for p in workers.procs]
    study = load(url)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    slots = Counter(t.system_attrs.get("osh:slot") for t in done)
    assert max(slots.values()) == 1, slots  # no training slot trained twice
    assert 1 <= len(done) <= 12
    assert osh.search_summary(study).status == osh.SearchStatus.FRONTIER
    rows = osh.frontier(study)
    trained = {(t.params["depth"], t.params["width"]) for t in done}
    assert rows and all((r.depth, r.width) in trained and r.p_front >= 0.5 for r in rows)
    assert len({e.pid for e in read_log(log) if e.event == "end"}) >= 2



def test_adaptive_workers_grow_the_default_trainings_cap(workers, tmp_path, monkeypatch):
    """Four adaptive worker processes with the default cap: the search's cap counts the workers
    the study had at once (one worker's, on these 28 feasible shapes, is 10)."""
    monkeypatch.setenv("OSH_TEST_MODE", "adaptive")
    url = f"sqlite:///{tmp_path / 'cap.db'}"
    for _ in range(4):  # trainings of 1 s: one worker alone would take 10 s or more
        workers.start("--storage", url, "--sleep", "1.0")
    workers.wait_all(timeout=120, url=url)
    assert all(p.returncode == 0 for p in workers.procs), workers.output(workers.procs[0])
    study = load(url)
    seen = read_snapshot(study, TrialCache()).workers_seen()
    assert 2 <= seen <= 4  # four processes, and more than one trial ran at a time
    result = st.read_result(st.study_attrs(study))
    assert result is not None and result.details.max_trainings is not None
    one = default_max_trainings(28, 5)
    assert one == 10
    assert one < result.details.max_trainings <= default_max_trainings(28, 5, seen)
