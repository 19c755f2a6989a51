"""Workers through Optuna's gRPC storage proxy: a real ``optuna-shape proxy`` process in front of
a SQLite file (and PostgreSQL), real worker processes on ``grpc://127.0.0.1:PORT``.

The package's guarantees hold through the proxy: every queued training goes to one worker (the
WAITING → RUNNING pop runs in the proxy, on the database), nothing is trained twice or lost,
the killed worker's training is failed by its heartbeat (kept in a trial attribute, since the
proxy has no heartbeats of its own) and trained again, exactly one worker screens, and the answer
is the single-worker one — also with two proxies in front of one database.
Bad ``grpc://`` URLs and proxy flags fail with one line that names the bad value.
"""

from __future__ import annotations

import socket
import time
import warnings

import optuna
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
from optuna_shape.cli import main
from optuna_shape.store import backends as storages
from optuna_shape.store.backends import has_heartbeat, open_storage

pytest.importorskip("grpc", reason="the gRPC proxy tests need grpcio (the test extra)")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _db(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_workers_through_the_proxy(backend, request, grpc_proxy, workers, tmp_path,
                                         capsys):
    """No duplicate, no lost training; every worker ends by itself with the one-worker answer;
    ``report`` reads the study through the proxy."""
    db = _db(backend, request, tmp_path)
    url = grpc_proxy.start(db)
    log = tmp_path / "trainings.log"
    for _ in range(3):
        workers.start("--storage", url, "--log", str(log), "--sleep", "0.3")
    workers.wait_all(timeout=120, url=db)
    for p in workers.procs:
        assert p.returncode == 0, workers.output(p)
        assert "RESULT" in workers.output(p)

    study = load(db)  # read from the database itself: what the proxy wrote is there
    events = read_log(log)
    check_no_duplicate_trainings(study, events)
    check_plan_trained(study)
    assert osh.is_finished(study)
    assert osh.best_shape(study) == reference_answer()
    assert len({e.pid for e in events if e.event == "end"}) >= 2  # shared work
    # every training beat through the proxy
    trained = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert all(storages.HEARTBEAT_ATTR in t.system_attrs for t in trained)

    capsys.readouterr()
    assert main(["report", "--storage", url, "--study-name", "w", "--json"]) == 0
    assert '"status": "answered"' in capsys.readouterr().out


@pytest.mark.parametrize("backend", BACKENDS)
def test_workers_through_two_proxies_share_one_study(backend, request, grpc_proxy, workers,
                                                     tmp_path):
    """Two proxies in front of one database, each serving two workers: every read and write
    goes to the database, so nothing is trained twice or lost and the answer is the one-worker
    answer."""
    db = _db(backend, request, tmp_path)
    urls = [grpc_proxy.start(db), grpc_proxy.start(db)]
    log = tmp_path / "trainings.log"
    for i in range(4):
        workers.start("--storage", urls[i % 2], "--log", str(log), "--sleep", "0.3")
    workers.wait_all(timeout=120, url=db)
    for p in workers.procs:
        assert p.returncode == 0, workers.output(p)
    study = load(db)
    events = read_log(log)
    check_no_duplicate_trainings(study, events)
    check_plan_trained(study)
    assert osh.best_shape(study) == reference_answer()
    pids = {e.pid for e in events if e.event == "end"}
    by_proxy = {i % 2 for i, p in enumerate(workers.procs) if p.pid in pids}
    assert by_proxy == {0, 1}, "both proxies' workers trained"


def test_a_worker_killed_mid_training_is_failed_through_the_proxy(grpc_proxy, workers,
                                                                  tmp_path):
    """Stale recovery without Optuna's RDB heartbeats: the survivors see the killed worker's
    beat stop, fail its trial and train the shape again; nothing else is trained twice."""
    db = f"sqlite:///{tmp_path / 'study.db'}"
    url = grpc_proxy.start(db)
    log = tmp_path / "trainings.log"
    training_s = 0.8
    procs = [workers.start("--storage", url, "--log", str(log), "--sleep", str(training_s))
             for _ in range(3)]
    victim, killed = kill_mid_training(procs, log, min_done=2, training_s=training_s)
    survivors = [p for p in procs if p is not victim]
    workers.wait_all(timeout=120, procs=survivors, url=db)
    for p in survivors:
        assert p.returncode == 0, workers.output(p)

    study = load(db)
    events = read_log(log)
    check_no_duplicate_trainings(study, events)
    check_plan_trained(study)
    assert study.trials[killed.trial].state == TrialState.FAIL
    retry = [e for e in events if e.event == "end" and e.shape == killed.shape]
    assert len(retry) == 1 and retry[0].pid != victim.pid
    assert osh.is_finished(study)
    assert osh.best_shape(study) == reference_answer()


def test_heartbeats_through_the_proxy_fail_only_silent_trials(grpc_proxy, tmp_path):
    """A trial is stale once its beat has not changed for the grace period on the checking
    worker's own clock; a trial that never beats (ask-and-tell) is never touched."""
    url = grpc_proxy.start(f"sqlite:///{tmp_path / 'hb.db'}")
    storage = open_storage(url, heartbeat_interval=1, grace_period=1)
    assert isinstance(storage, optuna.storages.GrpcStorageProxy) and has_heartbeat(storage)
    assert not has_heartbeat(open_storage(url, heartbeat_interval=None))
    study = optuna.create_study(storage=storage, study_name="hb")
    with warnings.catch_warnings():  # Optuna: heartbeats belong to study.optimize
        warnings.simplefilter("ignore", UserWarning)
        dead, alive, silent = study.ask(), study.ask(), study.ask()
    storage.record_heartbeat(dead._trial_id)
    storage.record_heartbeat(alive._trial_id)

    def fail_stale() -> int:  # Optuna's own check, as at the start of every trial
        before = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        optuna.storages.fail_stale_trials(study)
        return len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) - before

    assert fail_stale() == 0  # first sight: nothing is known to be stale yet
    for _ in range(3):
        time.sleep(0.6)
        storage.record_heartbeat(alive._trial_id)
    assert fail_stale() == 1
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states == {dead.number: TrialState.FAIL, alive.number: TrialState.RUNNING,
                      silent.number: TrialState.RUNNING}
    storage.record_heartbeat(dead._trial_id)  # a late beat of a failed trial is ignored
    storage.close()


def test_exactly_one_worker_screens_through_the_proxy(grpc_proxy, tmp_path, monkeypatch):
    """The screening task queued twice (two planners raced) and popped by two workers, each with
    its own gRPC client: the winner rule lets one measure; every shape is measured once."""
    import threading
    from collections import Counter

    import optuna_shape.sampler.screen as screen
    from optuna_shape import store as st
    from optuna_shape.sampler import coordination

    measured: Counter = Counter()
    lock = threading.Lock()

    def fake_measure(space_, shape, settings, *, latency, energy, builder=None):
        with lock:
            measured[shape] += 1
        time.sleep(0.02)
        return {"latency_ms": 1.0 + shape.depth / 100 + shape.width}

    monkeypatch.setattr(screen, "measure_shape", fake_measure)
    url = grpc_proxy.start(f"sqlite:///{tmp_path / 'scr.db'}")
    space = osh.ShapeSpace("wrn", depth=[10, 16, 22], width=[0.5, 1.0], in_channels=1,
                           num_classes=10, image_size=8)

    def study_of_a_worker() -> optuna.Study:
        sampler = osh.ShapeSampler(
            space, constraints=osh.Constraints(max_latency_ms=2.5), seed=0, policy=osh.Paper(),
            measurement=osh.MeasurementSettings(target_hardware="test-hw"))
        sampler.poll_interval = 0.05
        return optuna.create_study(direction="maximize", sampler=sampler, study_name="scr",
                                   load_if_exists=True,
                                   storage=open_storage(url, heartbeat_interval=1))

    study = study_of_a_worker()
    h = st.hardware_hash("test-hw")
    coordination.queue_screening(study, h)
    coordination.queue_screening(study, h)
    barrier = threading.Barrier(2)

    def worker() -> None:
        mine = study_of_a_worker()
        barrier.wait()
        osh.optimize(mine, lambda t: 99.0 - 1.0 / osh.suggest_shape(t, space).width)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(measured) == set(space.shapes) and max(measured.values()) == 1, measured
    stages = Counter(t.user_attrs.get("stage") for t in study.get_trials(deepcopy=False)
                     if (t.system_attrs.get(st.SLOT) or "").startswith("screen:"))
    assert stages == Counter({"screen": 1, "duplicate": 1})
    assert osh.is_finished(study)


# ------------------------------------------------------------------ bad URLs and flags ---
@pytest.mark.parametrize("url, needle", [
    ("grpc://127.0.0.1", "no port"),
    ("grpc://127.0.0.1:", "no port"),
    ("grpc://127.0.0.1:http", "bad port 'http'"),
    ("grpc://127.0.0.1:70000", "bad port '70000'"),
    ("grpc://:13000", "no host"),
    ("grpc://127.0.0.1:13000/study", "unexpected '/study'"),
])
def test_a_bad_grpc_url_is_one_line_naming_the_value(url, needle):
    with pytest.raises(ValueError) as err:
        open_storage(url)
    msg = str(err.value)
    assert "\n" not in msg and needle in msg and repr(url) in msg
    assert "grpc://HOST:PORT" in msg and "1-65535" in msg


def test_a_bad_grpc_url_fails_the_worker_and_the_cli_with_one_line(workers, tmp_path, capsys):
    p = workers.start("--storage", "grpc://127.0.0.1:notaport", name="bad")
    workers.wait_all(timeout=60, procs=[p])
    out = workers.output(p).strip()
    assert p.returncode == 2 and len(out.splitlines()) == 1, out
    assert out.startswith("error: cannot open storage 'grpc://127.0.0.1:notaport': bad port")

    assert main(["report", "--storage", "grpc://127.0.0.1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no port" in err and "grpc://HOST:PORT" in err, err


def test_no_proxy_answering_is_one_line(monkeypatch):
    monkeypatch.setattr(storages, "GRPC_CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError) as err:
        open_storage(f"grpc://127.0.0.1:{port}")
    msg = str(err.value)
    assert "\n" not in msg and f"no gRPC storage proxy answered at 127.0.0.1:{port}" in msg
    assert "optuna-shape proxy" in msg


def test_a_proxy_that_dies_mid_search_is_one_line(grpc_proxy, tmp_path):
    """A real search through a real proxy that is killed while a training runs: the search
    ends with one line naming the proxy and its gRPC status (Optuna's trial loop turned it
    into an unrelated UnboundLocalError before), exit status 1."""
    import os
    import subprocess
    import sys

    url = grpc_proxy.start(f"sqlite:///{tmp_path / 'study.db'}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "optuna_shape", "search", "--storage", url, "--depth", "10,16",
         "--width", "0.25,0.5,1", "--epochs", "30", "--subset", "300", "--max-trainings", "3",
         "--threads", "1", "--no-dashboard"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline and "training" not in seen:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert "training" in seen, seen
        grpc_proxy.procs[-1].kill()
        grpc_proxy.procs[-1].wait(timeout=10)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, seen + err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert lines and lines[-1].startswith(f"error: the gRPC storage proxy at {url} stopped "
                                          "answering ("), err
    assert "run this command again to resume" in lines[-1]
    assert "UnboundLocalError" not in err and "Traceback" not in err


def test_the_lost_proxy_line_reads_the_cause_chain():
    """The gRPC error is found behind the exception Optuna raised instead; nothing else, and
    no storage but a gRPC proxy, is reported as a lost proxy."""
    import grpc

    from optuna_shape.store.backends import lost_grpc_proxy

    class Unavailable(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

    try:
        try:
            raise Unavailable()
        except Unavailable:
            raise UnboundLocalError("cannot access local variable 'updated_state'") from None
    except UnboundLocalError as exc:
        hidden = exc
    assert hidden.__cause__ is None and isinstance(hidden.__context__, Unavailable)
    line = lost_grpc_proxy(hidden, "grpc://127.0.0.1:1")
    assert line is not None and "grpc://127.0.0.1:1 stopped answering (UNAVAILABLE)" in line
    assert lost_grpc_proxy(hidden, "sqlite:///x.db") is None
    assert lost_grpc_proxy(ValueError("no"), "grpc://127.0.0.1:1") is None


def test_without_grpcio_the_line_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "grpc" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ValueError) as err:
        open_storage("grpc://127.0.0.1:13000")
    msg = str(err.value)
    assert "\n" not in msg and 'pip install "optuna-shape[grpc]"' in msg


def _never_serve(*args: object, **kwargs: object) -> None:
    """Stands in for the blocking server in the proxy's refusal tests: reaching it fails."""
    raise AssertionError("the proxy started serving")


@pytest.mark.parametrize("argv, needle", [
    (["--storage", "journal:study.log"], "does not serve journal"),
    (["--storage", "grpc://127.0.0.1:13000"], "is a gRPC proxy itself"),
    (["--storage", ":memory:"], "in-memory"),
    (["--port", "0"], "--port 0"),
    (["--threads", "0"], "--threads 0"),
])
def test_proxy_flags_that_cannot_work_are_usage_errors(argv, needle, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(optuna.storages, "run_grpc_proxy_server", _never_serve)
    assert main(["proxy", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_proxy_on_a_taken_port_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(optuna.storages, "run_grpc_proxy_server", _never_serve)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = main(["proxy", "--storage", f"sqlite:///{tmp_path / 'p.db'}",
                     "--host", "127.0.0.1", "--port", str(port)])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot listen on 127.0.0.1:{port}" in err, err
