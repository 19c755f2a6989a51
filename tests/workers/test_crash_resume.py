"""Every worker is SIGKILLed mid-search; starting the workers again resumes the study without
retraining any shape that had completed, and ends with the uninterrupted run's answer."""

from __future__ import annotations

import os
import signal
import time

import pytest
from optuna.trial import TrialState
from osh_worker import reference_answer
from wtools import check_no_duplicate_trainings, check_plan_trained, load, read_log

import optuna_shape as osh

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_all_workers_then_restart_resumes_without_retraining(backend, request, workers,
                                                                   tmp_path):
    url = (f"sqlite:///{tmp_path / 'study.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    log = tmp_path / "trainings.log"
    first = [workers.start("--storage", url, "--log", str(log), "--sleep", "0.8",
                           name=f"first{i}") for i in range(3)]
    deadline = time.monotonic() + 90
    while sum(e.event == "end" for e in read_log(log)) < 4:
        assert time.monotonic() < deadline, "the first workers trained nothing"
        assert all(p.poll() is None for p in first), "a worker ended before being killed"
        time.sleep(0.05)
    for p in first:  # every worker dies at once, some of them mid-training
        os.kill(p.pid, signal.SIGKILL)
    for p in first:
        p.wait(timeout=10)

    study = load(url)
    done_before = {(t.params["depth"], t.params["width"])
                   for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert done_before and not osh.is_finished(study)
    restart = time.time()

    second = [workers.start("--storage", url, "--log", str(log), "--sleep", "0.3",
                            name=f"second{i}") for i in range(3)]
    workers.wait_all(timeout=120, procs=second, url=url)
    for p in second:
        assert p.returncode == 0, workers.output(p)

    study = load(url)
    events = read_log(log)
    retrained = {(e.shape.depth, e.shape.width) for e in events
                 if e.event == "start" and e.t >= restart} & done_before
    assert not retrained, f"completed shapes trained again after the restart: {retrained}"
    check_no_duplicate_trainings(study, events, strict_ends=False)
    check_plan_trained(study)
    assert osh.is_finished(study)
    assert osh.best_shape(study) == reference_answer()

    # a third start finds the study finished and trains nothing
    n = len(read_log(log))
    p = workers.start("--storage", url, "--log", str(log), name="third")
    workers.wait_all(timeout=60, procs=[p])
    assert p.returncode == 0 and len(read_log(log)) == n


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_training_taken_but_never_started_does_not_block_the_search(backend, request, workers,
                                                                      tmp_path):
    """A worker killed between taking a queued training and its first heartbeat leaves the trial
    RUNNING with no heartbeat, which Optuna never counts as stale; its slot must not block the
    other workers forever: the trial is failed after the grace period and its shape retrained."""
    url = (f"sqlite:///{tmp_path / 'study.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    log = tmp_path / "trainings.log"
    first = workers.start("--storage", url, "--log", str(log), "--sleep", "0.5", name="first")
    deadline = time.monotonic() + 90
    study = None
    while True:  # wait until the plan is queued
        assert time.monotonic() < deadline, "the first worker queued nothing"
        assert first.poll() is None, workers.output(first)
        if any(e.event == "start" for e in read_log(log)):
            study = load(url)
            if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                break
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)
    taken = study._pop_waiting_trial_id()  # taken as Optuna's ask does; then the taker dies
    assert taken is not None
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    number = next(t.number for t in study.get_trials(deepcopy=False) if t._trial_id == taken)

    second = [workers.start("--storage", url, "--log", str(log), "--sleep", "0.3",
                            name=f"second{i}") for i in range(2)]
    workers.wait_all(timeout=120, procs=second, url=url)
    for p in second:
        assert p.returncode == 0, workers.output(p)
    study = load(url)
    assert study.trials[number].state == TrialState.FAIL
    assert osh.is_finished(study)
    assert osh.best_shape(study) == reference_answer()
