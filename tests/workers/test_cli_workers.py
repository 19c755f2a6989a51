"""The judged scenario through the command line: three `optuna-shape search` processes on one
storage, one SIGKILLed mid-search; the survivors finish, no shape is trained to completion twice,
and `optuna-shape report` prints the answer. Tiny trainings (1 epoch on a digits subset)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from conftest import ROOT
from optuna.trial import TrialState

import optuna_shape as osh

FLAGS = ["--depth", "10,16,22", "--width", "0.25,0.5,1", "--epochs", "1", "--subset", "400",
         "--quiet", "--no-dashboard", "--study-name", "judged"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "optuna_shape", *args]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _output_or_state(p: subprocess.Popen, url: str, timeout: float = 240) -> str:
    """A survivor's output once it ends; if it does not end in time, fail with its output
    and every trial's state and planning attributes (what it may be waiting for)."""
    try:
        return p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0]
        trials = optuna.load_study(study_name="judged", storage=url).trials
        state = [(t.number, t.state.name, t.params, t.user_attrs.get("stage"),
                  {k: v for k, v in t.system_attrs.items()
                   if k in ("osh:slot", "osh:stage", "osh:planning", "fixed_params")})
                 for t in trials]
        raise AssertionError(f"a survivor did not end in {timeout} s; its output:\n{out}\n"
                             f"trials: {state}") from None


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_three_cli_workers_one_killed(backend, request, tmp_path):
    if not (ROOT / "optuna_shape" / "cli" / "search.py").exists():
        pytest.skip("the CLI is not there yet")
    url = (f"sqlite:///{tmp_path / 'cli.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    procs = [subprocess.Popen(_cli("search", "--storage", url, *FLAGS), cwd=tmp_path,
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(3)]
    try:
        # kill one worker once the search is under way (a training has completed)
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "no training completed"
            try:
                study = optuna.load_study(study_name="judged", storage=url)
                if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                    break
            except KeyError:
                pass
            time.sleep(0.3)
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=10)
        outs = [_output_or_state(p, url) for p in procs[1:]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs[1:], outs):
        assert p.returncode == 0, out
    study = optuna.load_study(study_name="judged", storage=url)
    # the adaptive search repeats some shapes on purpose, each repeat in its own queue slot
    # ("<shape>#<k>"): no slot may complete twice
    done = Counter(t.system_attrs.get("osh:slot") or t.number
                   for t in study.get_trials(states=(TrialState.COMPLETE,)))
    assert done and max(done.values()) == 1, done
    # The killed worker's own trial may still read RUNNING: the survivors can finish before its
    # heartbeat grace period (30 s) runs out, and a confident stop does not wait for a training
    # it does not need. Only that trial may be left, and it holds no result.
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert len(running) <= 1 and all(t.value is None for t in running), running
    best = osh.best_shape(study)
    assert osh.is_finished(study) and best is not None
    completed = [t.params for t in study.trials if t.state == TrialState.COMPLETE]
    assert {"depth": best.depth, "width": best.width} in completed  # the answer was trained
    rep = subprocess.run(_cli("report", "--storage", url, "--study-name", "judged",
                              "--no-dashboard"), env=_env(), cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert str(best.depth) in rep.stdout and f"{best.width:g}" in rep.stdout
