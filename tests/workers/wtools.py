"""Helpers shared by the multi-process tests: the training log, the plan, the study checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

import optuna_shape as osh
from optuna_shape.store.backends import open_storage


@dataclass(frozen=True)
class Event:
    event: str
    pid: int
    trial: int
    shape: osh.Shape
    stage: str | None
    t: float


def read_log(path: Path) -> list[Event]:
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        out.append(Event(d["event"], d["pid"], d["trial"], osh.Shape(d["depth"], d["width"]),
                         d.get("stage"), d["t"]))
    return out


def in_training(events: list[Event]) -> dict[int, Event]:
    """pid -> the start event of the training it is in now (a start without its end)."""
    ended = {(e.pid, e.trial) for e in events if e.event == "end"}
    now: dict[int, Event] = {}
    for e in events:
        if e.event == "start" and (e.pid, e.trial) not in ended:
            now[e.pid] = e
    return now


def kill_mid_training(procs: list[subprocess.Popen], log: Path, *, min_done: int = 1,
                      training_s: float, margin_s: float = 0.3,
                      timeout: float = 90.0) -> tuple[subprocess.Popen, Event]:
    """SIGKILL the first of ``procs`` seen inside a training once ``min_done`` trainings ended.

    Only a training that started less than ``training_s - margin_s`` seconds ago is a target:
    workers started together train in step, and one about to end could write its end between
    the reading of the log and the kill (its shape would then be trained to the end twice).
    """
    alive = {p.pid: p for p in procs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_log(log)
        if sum(e.event == "end" for e in events) >= min_done:
            for pid, start in in_training(events).items():
                p = alive.get(pid)
                young = time.time() - start.t < training_s - margin_s
                if p is not None and p.poll() is None and young:
                    os.kill(pid, signal.SIGKILL)
                    p.wait(timeout=10)
                    return p, start
        time.sleep(0.02)
    raise AssertionError(f"no worker was seen mid-training within {timeout} s")


def planned_shapes() -> list[osh.Shape]:
    from osh_worker import make_sampler

    from optuna_shape.policy.paper import planned_shapes as plan

    sampler = make_sampler(mode="paper")
    study = optuna.create_study(direction="maximize", sampler=sampler)
    problem = sampler.problem(study)
    assert problem is not None
    return plan(problem, sampler.settings)


def load(url: str, name: str = "w") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))


def check_no_duplicate_trainings(study: optuna.Study, events: list[Event], *,
                                 strict_ends: bool = True) -> None:
    """No shape completed twice; a shape started twice only after its earlier trial failed.

    ``strict_ends``: no training ran to its end twice either (false when a worker may have been
    killed between the end of its training and the recording of the result: that trial failed
    and was retried).
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    done = Counter((t.params["depth"], t.params["width"]) for t in trials.values()
                   if t.state == TrialState.COMPLETE)
    twice = {s: n for s, n in done.items() if n > 1}
    assert not twice, f"shapes completed more than once: {twice}"
    ends = Counter(e.shape for e in events if e.event == "end")
    if strict_ends:
        assert all(n == 1 for n in ends.values()), f"shapes trained to the end twice: {ends}"
    starts: dict[osh.Shape, list[Event]] = {}
    for e in events:
        if e.event == "start":
            starts.setdefault(e.shape, []).append(e)
    for shape, ss in starts.items():
        for e in sorted(ss, key=lambda e: e.trial)[:-1]:
            state = trials[e.trial].state
            assert state == TrialState.FAIL, (
                f"{shape} was started again although its trial {e.trial} is {state.name}")
    running = [t.number for t in trials.values() if t.state == TrialState.RUNNING]
    assert not running, f"trials left RUNNING: {running}"


def check_plan_trained(study: optuna.Study) -> None:
    done = {osh.Shape(t.params["depth"], t.params["width"])
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    missing = [s for s in planned_shapes() if s not in done]
    assert not missing, f"planned shapes never trained: {missing}"
