"""Four real worker processes on one SQLite file, paused with SIGSTOP / SIGCONT at random moments
(some pauses longer than the heartbeat grace period, so their trials are failed as stale while
they sleep). No queued training is completed twice, no shape is trained to completion twice, every
worker ends by itself without a traceback, and the answer is the single-worker one."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest
from optuna.trial import TrialState
from osh_worker import reference_answer
from wtools import check_no_duplicate_trainings, check_plan_trained, load, read_log

import optuna_shape as osh


@pytest.mark.parametrize("seed", [0, 1])
def test_random_pauses_cause_no_duplicate_training(seed, workers, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    log = tmp_path / "trainings.log"
    # trainings of 1.5 s keep the search going long enough for several pauses even on an idle
    # machine (with 0.5 s it could end after two)
    procs = [workers.start("--storage", url, "--log", str(log), "--sleep", "1.5",
                           "--heartbeat", "1", "--grace", "3") for _ in range(4)]
    rng = random.Random(seed)
    pauses = long = 0
    deadline = time.monotonic() + 150
    time.sleep(rng.uniform(2.0, 4.0))  # let them import and start
    while time.monotonic() < deadline:
        alive = [p for p in procs if p.poll() is None]
        if not alive:
            break
        victim = rng.choice(alive)
        # grace is 3 s; the first pause is always a long one, so some trial is failed as stale
        long_pause = pauses == 0 or rng.random() < 0.5
        pause = rng.uniform(4.5, 7.0) if long_pause else rng.uniform(0.05, 1.0)
        try:
            os.kill(victim.pid, signal.SIGSTOP)
            time.sleep(pause)
        finally:
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGCONT)
        pauses += 1
        long += pause > 3
        time.sleep(rng.uniform(0.0, 0.5))
    for p in procs:  # never leave a worker stopped
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
    workers.wait_all(timeout=120, url=url)
    for p in procs:
        out = workers.output(p)
        assert p.returncode == 0, out
        assert "Traceback" not in out, out
    assert pauses >= 3 and long >= 1, (pauses, long)

    study = load(url)
    events = read_log(log)
    check_no_duplicate_trainings(study, events, strict_ends=False)
    slots = Counter(t.system_attrs.get("osh:slot") for t in study.trials
                    if t.state == TrialState.COMPLETE)
    assert max(slots.values()) == 1, slots
    check_plan_trained(study)
    assert osh.is_finished(study)
    assert osh.best_shape(study) == reference_answer()
