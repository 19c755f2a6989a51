"""Many workers on one study: 1, 4, 16 and 64 worker processes on PostgreSQL and through
Optuna's gRPC storage proxy — utilization, speed-up, planning time, storage round trips,
duplicate and lost trainings, and whether the answer is as good as one worker's (issue 19).

    PYTHONPATH=. nice -n 10 python benchmarks/many_workers.py [--workers 1,4,16,64]
        [--goals size,accuracy] [--reps 1] [--sleep 3] [--storage postgresql,grpc] [--pauses]
        [--kill] [--cut 0.5] [--min-trainings 40] [--heartbeat 5] [--replay-reps 10]
        [--replay-only] [--quick] [--code worktree|HEAD|live] [--keep-tmp]
        [--out benchmarks/results/many_workers.md]
    PYTHONPATH=. python benchmarks/many_workers.py --report-from STDOUT_OF_A_RUN [--out FILE]

A full run takes about 25 minutes on the shared two-core machine (one process run per cell);
``--quick`` is a one-minute smoke run (1 and 4 workers, 0.3 s trainings, 12-training searches;
its report goes to the temporary directory unless ``--out`` says otherwise).

**The problem.** A 144-shape WRN grid (depth 10-76 step 6 × width 0.25-3 step 0.25, 8×8×1
inputs, size ≤ 25 MB: 133 feasible shapes; size-only limits, so nothing measures latency). A
"training" is a lookup: a deterministic smooth accuracy landscape (interior optimum, flat top)
plus Gaussian noise (std ``--noise``, 0.5 points) seeded by (repetition seed, shape, k) where k
is the training's repeat index (``osh.training_index``), so the k-th training of a shape returns
the same value whichever worker runs it and in whatever order; the training sleeps ``--sleep``
seconds (3 s). Two searches: goal ``size`` with the floor at the 60th percentile of the feasible
truths (confidence 0.99) and goal ``accuracy`` (confidence 0.95), both with ``max_trainings``
160 so that they end by their own stopping rule: one worker needs 27-78 trainings, and many
workers spend more (their decisions miss the results still running); with the earlier cap of
80 the size goal's searches with 16 and 64 workers ended on the cap before confirming the
smallest shape (``--max-trainings 80`` runs that). How long a one-worker search runs depends
a lot on the seed, so the process runs use, per goal, the first seeds whose one-worker search —
replayed first, in a second — trains at least ``--min-trainings`` (40) times.

**Workers.** Each is a separate ``python`` process (this file, ``worker`` sub-command): it opens
the storage with ``optuna_shape.store.backends.open_storage`` (heartbeat ``--heartbeat`` s, grace
3×), wraps the storage object the study will use (Optuna's cache in front of an RDB storage, or the
gRPC client) so that every call of an ``optuna.storages.BaseStorage`` method is counted and
timed, builds the same adaptive ``ShapeSampler`` (``policy=osh.Adaptive(...)`` when the package
has it, else the older keywords), ``optuna.load_study(storage=wrapped)``, waits at a start
barrier (so that 64 processes importing on two cores do not count as idle time), then runs
``osh.optimize(study, objective)`` (``study.optimize`` that carries on when a paused worker's
trial was failed as stale). It writes one JSON line per event to its own log: trial enter /
training start / training end / trial exit, the sampler's after-trial hook, each policy
decision (``optuna_shape.sampler.decide`` wrapped when it exists), the answer being stored
(``SearchReporter.on_done``) and, at exit, its storage call counts. The counting wrapper
patches the instance's methods instead of proxying the object: a proxy object would not be an
``RDBStorage`` / ``BaseHeartbeat``, so Optuna would drop its cache and the heartbeats and the
sampler would behave differently from a user's.

**Storage.** A throwaway PostgreSQL 15 server started here (``initdb`` / ``pg_ctl`` from
``/usr/lib/postgresql/*/bin``, as the ``postgres`` user when run as root, ``max_connections``
sized for the largest worker count), one fresh database per run, stopped at the end. ``grpc``:
the same database behind ``optuna.storages.run_grpc_proxy_server`` in a separate process (one
per run; Optuna's cache in front of the RDB storage, ``--proxy-threads`` threads); workers use
``grpc://127.0.0.1:PORT``. Skipped, with a note, when ``open_storage`` does not accept
``grpc://`` URLs. One-worker runs (the reference) run on the first storage only. A run of N ≥ 2
workers without an answer ``--cut`` (0.5) × the one-worker time to answer after the release is
stopped there (SIGTERM: each worker writes its counts and leaves) and reported as such: its
speed-up is below 1 / cut, which is all a baseline needs, and a full run stays near 25 min.

**Injection** (worker counts ≥ 2 only; the one-worker reference is clean): ``--pauses`` SIGSTOPs
a random worker for 1-4 s, or one time in three for longer than the heartbeat grace (its trial is
then failed as stale and trained again), and SIGCONTs it, over and over; ``--kill`` SIGKILLs one
worker in the middle of a training once 10 trainings have started.

**Replay** (``--replay-reps``, default 10 repetitions per goal, about a minute of CPU): the same
problem with ``optuna_shape.policy.decide`` called directly by simulated workers — N trainings
in flight, durations ``sleep × U(0.5, 1.5)`` so results arrive in random order, the sampler's
queue rules (a finished worker plans only when the queue is down to the look-ahead —
``coordination.lookahead`` of the other running workers, empty below eight — and then fills it
to twice that; on every result one decision is made for all idle workers, ``slots`` = their
number, plus the look-ahead to fill, when ``decide`` takes it; at most 16 queued, or one per
worker when more), zero planning or storage time — giving the answer quality over many
repetitions and the utilization the policy alone allows. It runs clean and with pauses + a
killed worker (or with what ``--pauses`` / ``--kill`` ask for). The one-worker replay makes
exactly the decisions of a real worker (same trainings and answer as the process run on the
same seed).

Every child process (workers, proxies) is started in its own session and killed when the run
ends, on error and on Ctrl-C / SIGTERM; workers also exit by themselves when this process dies;
the PostgreSQL server is stopped in a ``finally``.

Writes ``--out`` (``benchmarks/results/many_workers.md``): command, date, commit and whether
``optuna_shape/`` had uncommitted changes, machine, the tables and how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import hashlib
import heapq
import itertools
import json
import math
import os
import platform
import pwd
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "many_workers.md"

# ------------------------------------------------------------------------------ the problem ---
DEPTH = (10, 76, 6)  # 12 depths
WIDTH = (0.25, 3.0, 0.25)  # 12 widths: 144 shapes
MAX_SIZE_MB = 25.0  # 133 feasible
NOISE_STD = 0.5
GOALS: dict[str, dict[str, Any]] = {
    # floor_q: the floor is this percentile of the feasible shapes' true accuracies
    "size": {"confidence": 0.99, "max_trainings": 160, "floor_q": 60.0},
    "accuracy": {"confidence": 0.95, "max_trainings": 160, "floor_q": None},
}
QUEUE_CAP = 16  # optuna_shape.sampler.coordination.QUEUE_CAP (read from the package when there)
KILL_AFTER = 10  # --kill: SIGKILL a training worker once this many trainings have started
STUDY = "mw"


SCALED_CAP = False  # the queue may hold one training per running trial beyond QUEUE_CAP


def LOOKAHEAD(workers: int) -> int:  # noqa: N802 (coordination.lookahead, when the package has it)
    """Trainings the sampler keeps queued ahead with ``workers`` running trials (none before
    the look-ahead existed)."""
    return 0


def truth(depth: int, width: float) -> float:
    """True (noise-free) accuracy in percent: a smooth surface with an interior optimum of about
    94.2 near depth 40-52, width 1.5, and a flat top where many shapes are within noise."""
    x = math.log(depth) - math.log(40.0)
    y = math.log(width) - math.log(1.5)
    return (94.0 - 1.5 * x * x - 1.2 * y * y - 0.8 * x * y
            + 0.25 * math.sin(2.1 * math.log(depth)) * math.cos(1.7 * math.log(width)))


def observed(seed: int, depth: int, width: float, k: int, noise: float) -> float:
    """The k-th training's accuracy of a shape in repetition ``seed`` (same in every worker)."""
    return truth(depth, width) + random.Random(f"{seed}:{depth}:{width:g}:{k}").gauss(0.0, noise)


def grid() -> list[tuple[int, float]]:
    d0, d1, ds = DEPTH
    w0, w1, ws = WIDTH
    depths = list(range(d0, d1 + 1, ds))
    widths = [round(w0 + i * ws, 6) for i in range(int(round((w1 - w0) / ws)) + 1)]
    return [(d, w) for d in depths for w in widths]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default)."""
    v = sorted(values)
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


# ------------------------------------------------------------------------------ processes ----
_CHILDREN: list[subprocess.Popen] = []
_CHILDREN_LOCK = threading.Lock()


def spawn(cmd: list[str], out: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a child in its own session (Ctrl-C reaches only this process, which kills it)."""
    with open(out, "w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, cwd=str(out.parent))
    with _CHILDREN_LOCK:
        _CHILDREN.append(p)
    return p


def kill_children(procs: list[subprocess.Popen] | None = None) -> None:
    """SIGCONT (a paused child cannot die otherwise on some kernels) and SIGKILL, then reap."""
    with _CHILDREN_LOCK:
        targets = list(_CHILDREN if procs is None else procs)
    for p in targets:
        if p.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, sig)
    for p in targets:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
    with _CHILDREN_LOCK:
        for p in targets:
            if p.poll() is not None and p in _CHILDREN:
                _CHILDREN.remove(p)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ------------------------------------------------------------------------------ PostgreSQL ---
def _pg_bin() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    return cmd if user is None else ["su", user, "-s", "/bin/sh", "-c", shlex.join(cmd)]


@contextlib.contextmanager
def postgres_cluster(max_connections: int) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port (as in tests/workers/conftest.py,
    with ``max_connections`` for many workers); yields its URL, stops and deletes it after."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    user: str | None = None
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")  # KeyError: no user to run the server as
        user = "postgres"
    tmp = tempfile.mkdtemp(prefix="osh-mw-pg-")
    if user is not None:
        shutil.chown(tmp, user=user)
    data = os.path.join(tmp, "data")
    port = _free_port()
    pg_ctl = os.path.join(bin_dir, "pg_ctl")
    started = False
    try:
        r = subprocess.run(_as_user([os.path.join(bin_dir, "initdb"), "-D", data, "-U",
                                     "postgres", "-A", "trust"], user),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {(r.stderr or r.stdout).strip()[-300:]}")
        opts = (f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 "
                f"-c max_connections={max_connections} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off")
        r = subprocess.run(_as_user([pg_ctl, "-D", data, "-l", os.path.join(tmp, "log"), "-w",
                                     "-t", "60", "-o", opts, "start"], user),
                           capture_output=True, text=True, timeout=120)
        started = True  # pg_ctl may fail after the server started: always try to stop it
        if r.returncode != 0:
            log = Path(tmp, "log").read_text() if Path(tmp, "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {(r.stderr or r.stdout or log)[-300:]}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(_as_user([pg_ctl, "-D", data, "-m", "immediate", "stop"], user),
                           capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _admin(url: str, sql: str) -> list[Any]:
    import sqlalchemy

    from optuna_shape.store.backends import resolve_driver

    engine = sqlalchemy.create_engine(resolve_driver(url), isolation_level="AUTOCOMMIT",
                                      poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as c:
            res = c.execute(sqlalchemy.text(sql))
            return list(res) if res.returns_rows else []
    finally:
        engine.dispose()


def new_database(server: str, name: str) -> str:
    import sqlalchemy

    _admin(server, f'CREATE DATABASE "{name}"')
    return sqlalchemy.engine.make_url(server).set(database=name).render_as_string(
        hide_password=False)


# ------------------------------------------------------------------------------ storage calls -
_LOCAL_ONLY = {"remove_session", "check_trial_is_updatable", "get_heartbeat_interval",
               "get_heartbeat_stale_trial_callback"}
_RDB_PRIVATE = ("_get_trials", "_create_new_trial", "_set_trial_param", "_get_best_trial_id",
                "_get_stale_trial_ids")


def storage_methods(private: bool = False) -> list[str]:
    """Names of the storage methods that talk to the storage: ``BaseStorage``'s public ones and
    the heartbeat ones (with ``private``, also those Optuna's cache calls on an RDB storage)."""
    from optuna.storages import BaseStorage

    names = [n for n, v in vars(BaseStorage).items()
             if callable(v) and not n.startswith("_") and n not in _LOCAL_ONLY]
    names += ["record_heartbeat", "_get_stale_trial_ids"]
    if private:
        names += list(_RDB_PRIVATE)
    return sorted(set(names))


class CallCounter:
    """Counts and times the calls of chosen methods of one object (outermost calls only: a
    method calling another counted one counts once), split by thread: the main thread (the
    search) and the others (Optuna's heartbeat thread)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.bg_calls: Counter[str] = Counter()
        self.seconds = 0.0
        self.bg_seconds = 0.0
        self.method_seconds: Counter[str] = Counter()
        self.lost_pops = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    def wrap(self, obj: Any, names: list[str]) -> None:
        for name in names:
            fn = getattr(obj, name, None)
            if callable(fn):
                setattr(obj, name, self._counted(name, fn))

    def _counted(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        local, main = self._local, threading.main_thread()

        def call(*args: Any, **kwargs: Any) -> Any:
            if getattr(local, "depth", 0):
                return fn(*args, **kwargs)
            local.depth = 1
            t0 = time.perf_counter()
            result: Any = None
            try:
                result = fn(*args, **kwargs)
                return result
            finally:
                dt = time.perf_counter() - t0
                local.depth = 0
                with self._lock:
                    if threading.current_thread() is main:
                        self.calls[name] += 1
                        self.seconds += dt
                        self.method_seconds[name] += dt
                        if name == "set_trial_state_values" and result is False:
                            self.lost_pops += 1  # Optuna's pop found the trial taken
                    else:
                        self.bg_calls[name] += 1
                        self.bg_seconds += dt

        return call

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.bg_calls.clear()
            self.seconds = self.bg_seconds = 0.0
            self.method_seconds.clear()
            self.lost_pops = 0

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls), "bg_calls": dict(self.bg_calls),
                    "seconds": round(self.seconds, 4), "bg_seconds": round(self.bg_seconds, 4),
                    "method_seconds": {k: round(v, 4) for k, v in self.method_seconds.items()},
                    "lost_pops": self.lost_pops}


# ------------------------------------------------------------------------------ worker -------
class EventLog:
    """JSON lines on an O_APPEND file, one ``write`` per line."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def write(self, **event: Any) -> None:
        event.setdefault("t", time.time())
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self.fd, line)


def _exit_with_parent() -> None:
    """Leave (without cleanup) when the benchmark driver that started this worker is gone."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def policy_api(osh: Any) -> str:
    import inspect

    params = inspect.signature(osh.ShapeSampler.__init__).parameters
    return "policy" if hasattr(osh, "Adaptive") and "policy" in params else "keywords"


def make_sampler(osh: Any, cfg: dict[str, Any], reporter: Any = None,
                 cls: type | None = None) -> Any:
    """The study's ShapeSampler through the public API: ``policy=osh.Adaptive(...)`` when the
    package has it, else the keywords ``confidence`` / ``max_trainings`` / ``n_initial``."""
    space = osh.ShapeSpace("wrn", depth=tuple(cfg["depth"]), width=tuple(cfg["width"]),
                           in_channels=1, num_classes=10, image_size=8)
    cons = osh.Constraints(max_size_mb=cfg["max_size_mb"], min_accuracy=cfg["floor"])
    pol = {"confidence": cfg["confidence"], "max_trainings": cfg["max_trainings"],
           "n_initial": cfg["n_initial"]}
    kw: dict[str, Any] = ({"policy": osh.Adaptive(**pol)} if policy_api(osh) == "policy"
                          else {"mode": "adaptive", **pol})
    if reporter is not None:
        kw["reporter"] = reporter
    sampler = (cls or osh.ShapeSampler)(space, cons, goal=cfg["goal"], seed=cfg["seed"], **kw)
    if cfg.get("poll_interval"):
        sampler.poll_interval = float(cfg["poll_interval"])
    return sampler


def worker_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="many_workers.py worker")
    ap.add_argument("--storage", required=True)
    ap.add_argument("--config", required=True, help="JSON: the problem and the search settings")
    ap.add_argument("--log", required=True)
    ap.add_argument("--go", required=True, help="start once this file exists")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    _exit_with_parent()
    cfg = json.loads(args.config)
    log = EventLog(args.log)
    import optuna

    import optuna_shape as osh
    import optuna_shape.sampler as sampler_module
    from optuna_shape.store.backends import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    hb = cfg["heartbeat"]
    storage = open_storage(args.storage, heartbeat_interval=hb, grace_period=3 * hb)
    top = optuna.storages.get_storage(storage)  # Optuna's cache in front of an RDB storage
    calls = CallCounter()
    calls.wrap(top, storage_methods())
    backend: CallCounter | None = None
    if top is not storage:  # the RDB storage under the cache: one transaction per call
        backend = CallCounter()
        backend.wrap(storage, storage_methods(private=True))

    class Reporter(osh.SearchReporter):
        polls = 0
        waited = 0.0  # seconds slept in planner trials (every poll's real sleep)

        def on_wait(self, reason: str) -> None:
            Reporter.polls += 1

        def on_done(self, result: dict[str, Any]) -> None:
            log.write(ev="done", answer=result.get("shape"), status=str(result.get("status")))

    class TimedSampler(osh.ShapeSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            start = time.time()
            try:
                super().after_trial(study, trial, state, values)
            finally:
                log.write(ev="after", n=trial.number, t0=start, dt=time.time() - start)

    reporter = Reporter()
    sampler = make_sampler(osh, cfg, reporter, TimedSampler)
    decide = getattr(sampler_module, "decide", None)
    if callable(decide):  # time every policy decision of this worker

        def timed_decide(*a: Any, **k: Any) -> Any:
            start = time.time()
            action = decide(*a, **k)
            slots = a[3] if len(a) > 3 else k.get("slots", 1)
            log.write(ev="decide", t0=start, dt=time.time() - start,
                      action=type(action).__name__, shapes=len(getattr(action, "shapes", ())),
                      slots=slots, pending=len(getattr(a[1], "pending", ())))
            return action

        sampler_module.decide = timed_decide
    planning = sys.modules.get("optuna_shape.sampler.planning")
    wait = getattr(planning, "_wait", None)
    if callable(wait):  # the real seconds a planner trial sleeps between looks

        def timed_wait(*a: Any, **k: Any) -> None:
            start = time.perf_counter()
            try:
                wait(*a, **k)
            finally:
                Reporter.waited += time.perf_counter() - start

        planning._wait = timed_wait  # type: ignore[union-attr]
    study = optuna.load_study(study_name=cfg["study"], storage=top, sampler=sampler)
    space = sampler.space
    with contextlib.suppress(ImportError):  # the first decision's imports, before the barrier
        import optuna_shape.models.posterior  # noqa: F401
        import optuna_shape.policy.adaptive  # noqa: F401
    log.write(ev="ready", pid=os.getpid(), startup_s=round(time.perf_counter() - t0, 3))
    while not os.path.exists(args.go):
        time.sleep(0.05)
    calls.reset()
    if backend is not None:
        backend.reset()
    log.write(ev="go", cpu_s=round(time.process_time(), 3))
    seed, noise, sleep = cfg["seed"], cfg["noise"], cfg["sleep"]
    asked = [0.0]
    ask = study.ask

    def timed_ask(*a: Any, **k: Any) -> Any:  # Optuna's optimize loop calls study.ask()
        start = time.perf_counter()
        try:
            return ask(*a, **k)
        finally:
            asked[0] = time.perf_counter() - start

    study.ask = timed_ask  # type: ignore[method-assign]

    def exit_record() -> bytes:
        return (json.dumps({"ev": "exit", "t": time.time(), "polls": Reporter.polls,
                            "cpu_s": round(time.process_time(), 3),
                            "storage": calls.to_json(),
                            "backend": None if backend is None else backend.to_json()},
                           separators=(",", ":")) + "\n").encode()

    def stopped(signum: int, frame: Any) -> None:
        """The driver stopped the run (--cut): leave the counts, then go."""
        os.write(log.fd, exit_record())  # one write on an O_APPEND file, no lock
        os._exit(0)

    signal.signal(signal.SIGTERM, stopped)

    def objective(trial: optuna.Trial) -> float:
        rec: dict[str, Any] = {"ev": "trial", "n": trial.number, "enter": time.time(),
                               "ask_s": asked[0]}
        polls, waited = Reporter.polls, Reporter.waited
        try:
            shape = osh.suggest_shape(trial, space)
            k = osh.training_index(trial)
            start = time.time()
            log.write(ev="start", n=trial.number, t=start, shape=[shape.depth, shape.width], k=k)
            time.sleep(sleep)  # the "training"
            rec.update(kind="train", start=start, end=time.time(),
                       shape=[shape.depth, shape.width], k=k)
            return observed(seed, shape.depth, shape.width, k, noise)
        except optuna.TrialPruned as exc:
            rec.update(kind="pruned", reason=str(exc)[:160])
            raise
        except BaseException as exc:
            rec.update(kind="error", reason=repr(exc)[:300])
            raise
        finally:
            rec.update(exit=time.time(), polls=Reporter.polls - polls,
                       waited=round(Reporter.waited - waited, 4))
            log.write(**rec)

    prof = None
    if os.environ.get("OSH_MW_PROFILE"):  # where the search thread's CPU goes (diagnosis)
        import cProfile

        prof = cProfile.Profile(time.process_time)
        prof.enable()
    osh.optimize(study, objective)
    if prof is not None:
        prof.disable()
        prof.dump_stats(f"{args.log}.prof")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.write(log.fd, exit_record())
    return 0


def proxy_main(argv: list[str]) -> int:
    """Optuna's gRPC proxy in front of the PostgreSQL database (with the storage calls that
    reach the database counted and written to ``--counts`` when stopped by SIGTERM)."""
    ap = argparse.ArgumentParser(prog="many_workers.py proxy")
    ap.add_argument("--storage", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=10)
    ap.add_argument("--counts", required=True)
    args = ap.parse_args(argv)
    _exit_with_parent()
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    import optuna
    from optuna.storages import run_grpc_proxy_server

    from optuna_shape.store.backends import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(args.storage, heartbeat_interval=None)  # workers beat via the proxy
    counter = CallCounter()
    counter.wrap(storage, storage_methods(private=True))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    server = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # the server `optuna-shape proxy` runs, where the package has its own
                from optuna_shape.store.grpc_server import make_server
            except ImportError:
                run_grpc_proxy_server(optuna.storages.get_storage(storage), host="127.0.0.1",
                                      port=args.port,
                                      thread_pool=ThreadPoolExecutor(args.threads))
            else:
                server = make_server(storage, "127.0.0.1", args.port,
                                     ThreadPoolExecutor(args.threads))
                server.start()
                server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        c = counter.to_json()  # the server's threads are not the main thread: all "bg"
        if server is not None:
            c["database_reads"] = server.service.database_reads
        c["cpu_s"] = round(time.process_time(), 3)  # the proxy process, all its threads
        Path(args.counts).write_text(json.dumps(c))
    return 0


# ------------------------------------------------------------------------------ driver -------
@dataclass
class Context:
    args: argparse.Namespace
    tmp: Path
    code_dir: Path | None
    server: str | None
    grpc_note: str | None = None
    grpc_ok: bool | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    counter: int = 0
    ref_time: dict[tuple[str, int], float] = field(default_factory=dict)
    skipped: dict[str, dict[int, int]] = field(default_factory=dict)


def max_trainings_of(args: argparse.Namespace, goal: str) -> int | None:
    """The search's ``max_trainings``: ``--max-trainings`` (0: ``None``, the package's default),
    else the goal's."""
    if args.max_trainings == 0:
        return None
    return args.max_trainings or GOALS[goal]["max_trainings"]


def _cap_words(cap: int | None) -> str:
    return "the package's default (None)" if cap is None else str(cap)


def problem_config(args: argparse.Namespace, goal: str, seed: int) -> dict[str, Any]:
    g = GOALS[goal]
    feasible = feasible_shapes()
    floor = None
    if g["floor_q"] is not None:
        floor = round(percentile([truth(d, w) for d, w in feasible], g["floor_q"]), 2)
    return {"study": STUDY, "goal": goal, "floor": floor,
            "confidence": args.confidence or g["confidence"],
            "max_trainings": max_trainings_of(args, goal),
            "n_initial": args.n_initial, "seed": seed, "sleep": args.sleep, "noise": args.noise,
            "heartbeat": args.heartbeat, "poll_interval": args.poll_interval,
            "depth": list(DEPTH), "width": list(WIDTH), "max_size_mb": MAX_SIZE_MB}


_FEASIBLE: list[tuple[int, float]] | None = None
_SIZES: dict[tuple[int, float], float] = {}


def feasible_shapes() -> list[tuple[int, float]]:
    global _FEASIBLE
    if _FEASIBLE is None:
        import optuna_shape as osh

        space = osh.ShapeSpace("wrn", depth=DEPTH, width=WIDTH, in_channels=1, num_classes=10,
                               image_size=8)
        for s in space.shapes:
            _SIZES[(s.depth, float(s.width))] = space.size_mb(s)
        _FEASIBLE = [k for k, v in _SIZES.items() if v <= MAX_SIZE_MB]
    return _FEASIBLE


def size_of(shape: tuple[int, float]) -> float:
    feasible_shapes()
    return _SIZES[(int(shape[0]), float(shape[1]))]


def worker_env(ctx: Context) -> dict[str, str]:
    paths = [str(ctx.code_dir)] if ctx.code_dir is not None else [str(ROOT)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]))
    return env


def start_proxy(ctx: Context, pg_url: str, run_dir: Path, index: int = 0
                ) -> tuple[subprocess.Popen, str, Path]:
    import warnings

    from optuna.storages import GrpcStorageProxy

    last = ""
    for _ in range(3):
        port = _free_port()
        counts = run_dir / f"proxy{index}_counts.json"
        out = run_dir / f"proxy{index}.out"
        p = spawn([sys.executable, str(SCRIPT), "proxy", "--storage", pg_url,
                   "--port", str(port), "--threads", str(ctx.args.proxy_threads),
                   "--counts", str(counts)], out, worker_env(ctx))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = GrpcStorageProxy(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 90
        try:
            while p.poll() is None and time.monotonic() < deadline:
                try:
                    client.wait_server_ready(timeout=1.0)
                    return p, f"grpc://127.0.0.1:{port}", counts
                except ConnectionError:
                    continue
        finally:
            client.close()
        last = out.read_text()[-2000:]
        kill_children([p])
    raise RuntimeError(f"the gRPC proxy did not start:\n{last}")


def stop_proxy(p: subprocess.Popen, counts: Path) -> dict[str, Any] | None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_children([p])
    kill_children([p])
    with contextlib.suppress(OSError, ValueError):
        return json.loads(counts.read_text())
    return None


class LogTail:
    """Reads the workers' logs as they grow (the driver's view of live trainings)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.offsets = [0] * len(paths)
        self.events: list[list[dict[str, Any]]] = [[] for _ in paths]
        self._lock = threading.Lock()

    def poll(self) -> None:
        with self._lock:
            for i, path in enumerate(self.paths):
                try:
                    with open(path, "rb") as fh:
                        fh.seek(self.offsets[i])
                        data = fh.read()
                except FileNotFoundError:
                    continue
                end = data.rfind(b"\n")
                if end < 0:
                    continue
                self.offsets[i] += end + 1
                for line in data[:end].splitlines():
                    with contextlib.suppress(ValueError):
                        self.events[i].append(json.loads(line))

    def first(self, ev: str) -> float | None:
        with self._lock:
            return min((e["t"] for evs in self.events for e in evs if e.get("ev") == ev),
                       default=None)

    def count(self, ev: str) -> int:
        with self._lock:
            return sum(1 for evs in self.events for e in evs if e.get("ev") == ev)

    def training_now(self) -> list[int]:
        """Workers whose last training started and has not ended."""
        with self._lock:
            out = []
            for i, evs in enumerate(self.events):
                open_n = {e["n"] for e in evs if e.get("ev") == "start"} - {
                    e["n"] for e in evs if e.get("ev") == "trial"}
                if open_n:
                    out.append(i)
            return out


def _inject(procs: list[subprocess.Popen], tail: LogTail, stop: threading.Event,
            pauses: bool, kill: bool, grace: float, seed: int, record: dict[str, Any]) -> None:
    """Pause random workers (SIGSTOP/SIGCONT) and kill one mid-training (SIGKILL)."""
    rng = random.Random(seed)
    next_pause = time.monotonic() + rng.uniform(2.0, 4.0)
    while not stop.wait(0.2):
        tail.poll()
        if kill and record["killed"] is None and tail.count("start") >= KILL_AFTER:
            busy = [i for i in tail.training_now() if procs[i].poll() is None]
            if busy:
                i = rng.choice(busy)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(procs[i].pid, signal.SIGKILL)
                record["killed"] = {"worker": i, "t": time.time()}
        if pauses and time.monotonic() >= next_pause:
            alive = [p for p in procs if p.poll() is None]
            if not alive:
                return
            p = rng.choice(alive)
            long = rng.random() < 1 / 3
            pause = grace + rng.uniform(2.0, 4.0) if long else rng.uniform(1.0, 4.0)
            try:
                os.kill(p.pid, signal.SIGSTOP)
                stop.wait(pause)
            except ProcessLookupError:
                continue
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGCONT)
            record["pauses"].append(round(pause, 2))
            next_pause = time.monotonic() + rng.uniform(1.0, 3.0)


def check_grpc(ctx: Context, url: str) -> bool:
    """Whether ``open_storage`` accepts ``grpc://`` URLs (decided once, with a proxy up)."""
    if ctx.grpc_ok is None:
        from optuna_shape.store.backends import open_storage

        try:
            s = open_storage(url, heartbeat_interval=None)
        except ValueError as exc:
            ctx.grpc_ok = False
            ctx.grpc_note = (f"gRPC runs skipped: optuna_shape.store.backends.open_storage "
                             f"does not accept grpc:// URLs in this code ({exc})")
        else:
            ctx.grpc_ok = True
            with contextlib.suppress(Exception):
                s.close()  # type: ignore[union-attr]
    return bool(ctx.grpc_ok)


def run_once(ctx: Context, goal: str, seed: int, storage: str, n: int) -> dict[str, Any] | None:
    """One search by ``n`` worker processes; returns its measured row (``None``: skipped)."""
    import optuna

    from optuna_shape.store.backends import open_storage

    args = ctx.args
    ctx.counter += 1
    run_dir = ctx.tmp / f"run{ctx.counter:03d}-{goal}-{storage}-{n}-s{seed}"
    run_dir.mkdir()
    cfg = problem_config(args, goal, seed)
    assert ctx.server is not None
    pg_url = new_database(ctx.server, f"osh_mw_{ctx.counter}_{time.time_ns() % 10**9}")
    with warnings_off():
        optuna.create_study(study_name=STUDY, storage=open_storage(pg_url,
                                                                   heartbeat_interval=None),
                            direction="maximize")
    inject = n >= 2 and (args.pauses or args.kill)
    record: dict[str, Any] = {"killed": None, "pauses": []}
    proxies: list[tuple[subprocess.Popen, str, Path]] = []
    procs: list[subprocess.Popen] = []
    stop = threading.Event()
    injector: threading.Thread | None = None
    t_launch = time.time()
    try:
        urls = [pg_url]
        if storage == "grpc":
            for k in range(max(1, args.proxies)):
                proxies.append(start_proxy(ctx, pg_url, run_dir, k))
            urls = [px[1] for px in proxies]
            if not check_grpc(ctx, urls[0]):
                return None
        logs = [run_dir / f"w{i:02d}.jsonl" for i in range(n)]
        go = run_dir / "go"
        env = worker_env(ctx)
        for i in range(n):
            procs.append(spawn([sys.executable, str(SCRIPT), "worker",
                                "--storage", urls[i % len(urls)], "--config",
                                json.dumps(cfg), "--log", str(logs[i]), "--go", str(go)],
                               run_dir / f"w{i:02d}.out", env))
        tail = LogTail(logs)
        deadline = time.monotonic() + args.startup_timeout
        while tail.count("ready") < n:
            dead = [p for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                i = procs.index(dead[0]) if dead else 0
                out = (run_dir / f"w{i:02d}.out").read_text()[-3000:]
                raise RuntimeError(f"worker {i} did not get ready "
                                   f"({'exited' if dead else 'timeout'}):\n{out}")
            time.sleep(0.2)
            tail.poll()
        t_ready = time.time()
        go.touch()
        t_go = time.time()
        if inject:
            injector = threading.Thread(
                target=_inject, args=(procs, tail, stop, args.pauses, args.kill,
                                      3.0 * args.heartbeat, seed * 1000 + n, record),
                daemon=True)
            injector.start()
        deadline = time.monotonic() + args.run_timeout
        timed_out = False
        ref = ctx.ref_time.get((goal, seed)) if n > 1 and args.cut > 0 else None
        last_poll = 0.0
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                timed_out = True
                break
            if ref is not None and time.monotonic() - last_poll > 1.0:
                last_poll = time.monotonic()
                tail.poll()
                if tail.count("done") == 0 and time.time() - t_go > args.cut * ref:
                    timed_out = True  # slower than --cut × one worker's time: stop here
                    break
            time.sleep(0.2)
        stop.set()
        if injector is not None:
            injector.join(timeout=30)
        t_end = time.time()
        if timed_out:  # SIGTERM first: a worker then writes its storage counts and leaves
            for p in procs:
                if p.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGCONT)
                        p.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                for p in procs:
                    p.wait(timeout=max(0.1, t_end + 10 - time.time()))
        kill_children(procs)
        proxy_counts = _merged([stop_proxy(px[0], px[2]) for px in proxies])
        proxies = []
        tail.poll()
        failed = [i for i, p in enumerate(procs) if p.returncode not in (0, -signal.SIGKILL)
                  and not (record["killed"] and record["killed"]["worker"] == i)]
        errors = {i: (run_dir / f"w{i:02d}.out").read_text()[-1500:] for i in failed}
        row = analyse(ctx, cfg, pg_url, tail.events, storage, n, seed, goal,
                      t_end if timed_out else None)
        row.update(wall_s=t_end - t_launch, startup_s=t_ready - t_launch,
                   go_to_exit_s=t_end - t_go, timed_out=timed_out, injected=bool(inject),
                   killed=record["killed"] is not None, pauses=record["pauses"],
                   worker_errors=errors, proxy=proxy_counts)
        return row
    finally:
        stop.set()
        kill_children(procs)
        for px in proxies:
            stop_proxy(px[0], px[2])
        if not args.keep_tmp:
            for f in run_dir.glob("*.jsonl"):
                with contextlib.suppress(OSError):
                    f.unlink()


def _merged(counts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The proxies' counts summed (one proxy: its own; ``None`` without any)."""
    got = [c for c in counts if c is not None]
    if not got:
        return None
    if len(got) == 1:
        return got[0]
    out: dict[str, Any] = {}
    for c in got:
        for k, v in c.items():
            if isinstance(v, dict):
                d = out.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            elif isinstance(v, (int, float)):
                out[k] = out.get(k, 0) + v
    return out


@contextlib.contextmanager
def warnings_off() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


NON_TRAINING = {"plan", "duplicate", "stopped", "screen"}


def analyse(ctx: Context, cfg: dict[str, Any], pg_url: str, events: list[list[dict[str, Any]]],
            storage: str, n: int, seed: int, goal: str,
            t_limit: float | None = None) -> dict[str, Any]:
    """The run's measures from the stored study and the workers' logs (``t_limit``: the run
    was stopped then, before an answer: the window ends there)."""
    import optuna
    from optuna.trial import TrialState

    import optuna_shape as osh
    from optuna_shape.store.backends import open_storage

    with warnings_off():
        study = optuna.load_study(study_name=STUDY,
                                  storage=open_storage(pg_url, heartbeat_interval=None))
        trials = study.get_trials(deepcopy=False)
        best = osh.best_shape(study) if osh.is_finished(study) else None
        try:
            status = osh.search_summary(study).status
        except Exception as exc:  # noqa: BLE001 - a report must not die on a summary
            status = f"summary failed: {type(exc).__name__}"
    # ---- trainings, duplicates, lost (stored attrs: the slot, the stage, the reasons)
    trainings = [t for t in trials if "depth" in t.params and "width" in t.params
                 and t.user_attrs.get("stage") not in NON_TRAINING
                 and "reject_reason" not in t.user_attrs]
    lost = [t for t in trainings if t.state == TrialState.FAIL
            and t.user_attrs.get("fail_reason") is None]
    stuck = [t for t in trials if t.state == TrialState.RUNNING]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    by_slot: dict[str, list[Any]] = {}
    for t in trainings:
        by_slot.setdefault(str(t.system_attrs.get("osh:slot")), []).append(t)
    dup = sum(max(0, sum(1 for t in ts if t not in lost) - 1) for ts in by_slot.values())
    twice = sum(max(0, sum(1 for t in ts if t.state == TrialState.COMPLETE) - 1)
                for ts in by_slot.values())
    yielded = sum(1 for t in trials if t.user_attrs.get("stage") == "duplicate")
    planners = sum(1 for t in trials if t.user_attrs.get("stage") == "plan")
    completed = sum(1 for t in trainings if t.state == TrialState.COMPLETE)
    # ---- time, from the workers' logs
    ev_all = [e for evs in events for e in evs]
    tr_ev = [e for e in ev_all if e.get("ev") == "trial"]
    starts = [e for e in ev_all if e.get("ev") == "start"]
    done = [e["t"] for e in ev_all if e.get("ev") == "done"]
    go = [e["t"] for e in ev_all if e.get("ev") == "go"]
    # the window starts at the first training (at the release when none started at all)
    t_first = min((e["t"] for e in starts), default=min(go, default=math.nan))
    ended = {(i, e["n"]) for i, evs in enumerate(events) for e in evs if e.get("ev") == "trial"}
    if done:
        t_answer = min(done)
    elif t_limit is not None:  # stopped at the time limit without an answer
        t_answer = t_limit
    else:  # no on_done seen: the last training's end
        t_answer = max((e["end"] for e in tr_ev if e.get("kind") == "train"), default=math.nan)
    span = t_answer - t_first
    if not span > 0:
        span = math.nan

    def clip(a: float, b: float) -> float:
        return max(0.0, min(b, t_answer) - max(a, t_first))

    train_s = wait_s = before_s = planner_s = after_s = ask_s = 0.0
    for i, evs in enumerate(events):
        for e in evs:
            if e.get("ev") == "trial":
                ask_s += clip(e["enter"] - e.get("ask_s", 0.0), e["enter"])
                whole = clip(e["enter"], e["exit"])
                # the real sleeps where recorded (older code: a poll interval per look)
                slept = e.get("waited", e.get("polls", 0) * (cfg["poll_interval"] or 1.0))
                dur = max(e["exit"] - e["enter"], 1e-9)
                w = min(slept * whole / dur, whole)
                wait_s += w
                if e.get("kind") == "train":
                    train_s += clip(e["start"], e["end"])
                    before_s += clip(e["enter"], e["start"]) + clip(e["end"], e["exit"]) - w
                else:
                    planner_s += whole - w
            elif e.get("ev") == "after":
                after_s += clip(e["t0"], e["t0"] + e["dt"])
            elif e.get("ev") == "start" and (i, e["n"]) not in ended:
                last = max((x["t"] for x in evs), default=e["t"])  # killed mid-training
                train_s += clip(e["t"], max(last, e["t"]))
    total = n * span
    between_s = total - train_s - wait_s - before_s - planner_s - after_s - ask_s
    phases = idle_phases(events, n, t_first, t_answer)
    decides = [e for e in ev_all if e.get("ev") == "decide"]
    exits = [e for e in ev_all if e.get("ev") == "exit"]
    calls = sum(sum(e["storage"]["calls"].values()) for e in exits)
    bg_calls = sum(sum(e["storage"]["bg_calls"].values()) for e in exits)
    storage_s = sum(e["storage"]["seconds"] for e in exits)
    lived = 0.0  # worker seconds from the release to the exit record, for the storage share
    worker_cpu = 0.0  # the workers' CPU seconds over the same span
    for evs in events:
        g = next((e for e in evs if e.get("ev") == "go"), None)
        x = next((e for e in evs if e.get("ev") == "exit"), None)
        if g is not None and x is not None:
            lived += x["t"] - g["t"]
            worker_cpu += x.get("cpu_s", 0.0) - g.get("cpu_s", 0.0)
    backend_calls = sum(sum(e["backend"]["calls"].values()) + sum(e["backend"]["bg_calls"]
                                                                   .values())
                        for e in exits if e.get("backend"))
    method_calls: Counter[str] = Counter()
    method_s: Counter[str] = Counter()
    for e in exits:
        method_calls.update(e["storage"]["calls"])
        method_calls.update(e["storage"]["bg_calls"])
        method_s.update(e["storage"].get("method_seconds", {}))
    ntr = max(len(trainings), 1)
    in_flight = sum(1 for e in tr_ev if e.get("kind") == "train" and e["start"] < t_answer
                    < e["end"])
    after_answer = sum(1 for e in starts if e["t"] > t_answer)
    answer = None if best is None else [best.depth, float(best.width)]
    return {
        "goal": goal, "storage": storage, "workers": n, "seed": seed, "floor": cfg["floor"],
        "heartbeat": cfg["heartbeat"],
        "trainings": len(trainings), "completed": completed, "dup": dup, "twice": twice,
        "yielded": yielded, "planner_trials": planners, "lost": len(lost), "stuck": len(stuck),
        "waiting_at_end": len(waiting), "in_flight_at_answer": in_flight,
        "started_after_answer": after_answer, "answer": answer, "status": status,
        "stored_answer": bool(done),
        "true_acc": None if answer is None else truth(answer[0], answer[1]),
        "size_mb": None if answer is None else size_of((answer[0], answer[1])),
        "t_first_start_after_go_s": t_first - min(go) if go and starts else math.nan,
        "time_to_answer_s": span, "utilization": train_s / total if total > 0 else math.nan,
        "share": {k: v / total if total > 0 else math.nan for k, v in (
            ("train", train_s), ("wait", wait_s), ("planner", planner_s),
            ("before_after_training", before_s), ("after_trial", after_s), ("ask", ask_s),
            ("between", between_s))},
        "idle_phases": {k: (v / total if total > 0 else math.nan, d)
                        for k, (v, d) in phases.items()},
        "lost_pops_per_training": sum(e["storage"].get("lost_pops", 0) for e in exits) / ntr,
        "plan_s_per_training": (total - train_s - wait_s) / ntr if total > 0 else math.nan,
        "decide_s_per_training": sum(e["dt"] for e in decides) / ntr,
        "decisions": len(decides),
        "train_decisions": sum(1 for e in decides if e["action"] == "Train"),
        "shapes_per_train_decision": (
            sum(e["shapes"] for e in decides if e["action"] == "Train")
            / max(1, sum(1 for e in decides if e["action"] == "Train"))),
        "calls_per_training": calls / ntr, "heartbeat_calls_per_training": bg_calls / ntr,
        "backend_per_training": backend_calls / ntr if backend_calls else None,
        "storage_s_per_training": storage_s / ntr,
        "storage_share": storage_s / lived if lived > 0 else math.nan,
        "top_methods": dict(method_calls.most_common(6)),
        "top_method_s": {k: round(v / ntr, 4) for k, v in method_s.most_common(4)},
        "exited": len(exits),
        "worker_cpu_s": round(worker_cpu, 3),
    }


def idle_phases(events: list[list[dict[str, Any]]], n: int, t_first: float, t_answer: float
                ) -> dict[str, tuple[float, float]]:
    """Idle worker-seconds (N × the phase's length − seconds inside trainings) and the
    phase's length, in three phases of the window: *start*, from the first training's start
    until every worker has started one; *end*, from the last training started before the
    answer until the answer; *middle*, between them. A training whose worker was killed
    counts until the worker's last event, as in the utilization."""
    spans: list[tuple[float, float]] = []
    firsts: list[float] = []
    for evs in events:
        ended = {e["n"] for e in evs if e.get("ev") == "trial"}
        spans += [(e["start"], e["end"]) for e in evs
                  if e.get("ev") == "trial" and e.get("kind") == "train"]
        last = max((e["t"] for e in evs if "t" in e), default=math.nan)
        spans += [(e["t"], max(last, e["t"])) for e in evs  # killed mid-training
                  if e.get("ev") == "start" and e["n"] not in ended]
        starts = [e["t"] for e in evs if e.get("ev") == "start"]
        if starts:
            firsts.append(min(starts))
    if not spans or not t_answer > t_first:
        return {k: (math.nan, math.nan) for k in ("start", "middle", "end")}
    t_tail = max([a for a, _ in spans if a <= t_answer], default=t_answer)
    t_ramp = min(max(firsts) if len(firsts) >= n else t_tail, t_tail)

    def idle(a: float, b: float) -> tuple[float, float]:
        if not b > a:
            return 0.0, 0.0
        busy = sum(max(0.0, min(e, b) - max(s, a)) for s, e in spans)
        return n * (b - a) - busy, b - a

    return {"start": idle(t_first, t_ramp), "middle": idle(t_ramp, t_tail),
            "end": idle(t_tail, t_answer)}


# ------------------------------------------------------------------------------ agreement ----
def agrees(goal: str, floor: float | None, ans: list[float] | None, ref: list[float] | None,
           noise: float, strict: bool = False) -> bool | None:
    """Whether an N-worker answer is as good as the one-worker answer ``ref`` on the truth,
    within the goal's tolerance: the same shape; size goal: true accuracy ≥ floor and size ≤
    the reference's or ≤ the smallest shape whose truth is ≥ floor + one noise std (the
    search's own tolerance: shapes cheaper than that are within one noise std of the floor,
    where no search can tell them apart from the floor with confidence); accuracy goal: true
    accuracy within one noise std of the reference's (or better). ``strict``: size ≤ the
    reference's, without the tolerance."""
    if ans is not None and ref is not None and tuple(ans) == tuple(ref):
        return True
    if ref is None:
        return ans is None or (goal == "size" and truth(int(ans[0]), ans[1]) >= (floor or 0))
    if ans is None:
        return False
    acc = truth(int(ans[0]), ans[1])
    if goal == "size":
        bound = size_of((ref[0], ref[1]))
        if not strict and floor is not None:
            bound = max(bound, min((size_of(s) for s in feasible_shapes()
                                    if truth(s[0], s[1]) >= floor + noise), default=bound))
        return acc >= (floor or -math.inf) and size_of((ans[0], ans[1])) <= bound + 1e-12
    return acc >= truth(int(ref[0]), ref[1]) - noise


# ------------------------------------------------------------------------------ replay -------
@dataclass
class _SimTrial:
    shape: Any
    k: int
    state: str = "queued"  # queued, running, done, lost
    value: float | None = None
    start: float = math.nan
    end: float = math.nan


def replay_search(problem: Any, settings: Any, cfg: dict[str, Any], n: int, seed: int,
                  pauses: bool, kill: bool, grace: float) -> dict[str, Any]:
    """One search by ``n`` simulated workers calling ``optuna_shape.policy.decide`` directly,
    with the sampler's queue rules, random training durations and no planning time."""
    import inspect

    from optuna_shape.policy import Evidence, Stop, Train, decide
    from optuna_shape.policy import Training as PolicyTraining

    use_slots = "slots" in inspect.signature(decide).parameters
    # every simulated worker runs a trial from the release on (a training or a planner trial),
    # so the workers the search has seen are all n of them (a package whose evidence does not
    # count workers gets none)
    seen = {"workers": n} if "workers" in inspect.signature(Evidence).parameters else {}
    rng = random.Random(f"replay:{seed}:{n}:{pauses}:{kill}")
    sleep = cfg["sleep"]
    trials: list[_SimTrial] = []
    queue: deque[int] = deque()
    idle: list[int] = list(range(n))
    alive = set(range(n))
    heap: list[tuple[float, int, str, int, int]] = []  # (time, seq, kind, worker, trial)
    seq = 0
    t = 0.0
    cache: dict[Any, Any] = {}
    decisions = 0
    stop: Any = None
    t_stop = math.nan
    killed = False
    n_pauses = 0

    def push(at: float, kind: str, w: int, i: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (at, seq, kind, w, i))

    def act(slots: int) -> Any:
        nonlocal decisions
        ev = Evidence(tuple(PolicyTraining(tr.shape, tr.value) for tr in trials
                            if tr.state == "done"),
                      tuple(tr.shape for tr in trials if tr.state in ("queued", "running")),
                      **seen)
        key = (ev.trainings, ev.pending, slots if use_slots else 1)
        if key not in cache:
            decisions += 1
            cache[key] = decide(problem, ev, settings, slots) if use_slots else decide(
                problem, ev, settings)
        return cache[key]

    def enqueue(action: Any) -> None:
        pending = {tr.shape for tr in trials if tr.state in ("queued", "running")}
        again = getattr(action, "alongside", frozenset())  # one more training at the same time
        for s in dict.fromkeys(action.shapes):
            if s in pending and s not in again:
                continue
            if len(queue) >= (max(QUEUE_CAP, len(alive)) if SCALED_CAP else QUEUE_CAP):
                break
            k = 1 + sum(1 for tr in trials if tr.shape == s and tr.state != "lost")
            trials.append(_SimTrial(s, k))
            queue.append(len(trials) - 1)
            pending.add(s)

    def start(w: int, i: int) -> None:
        nonlocal killed, n_pauses
        tr = trials[i]
        tr.state, tr.start = "running", t
        dur = sleep * rng.uniform(0.5, 1.5)
        if kill and not killed and n >= 2 and sum(1 for x in trials if x.start == x.start) \
                >= KILL_AFTER:
            killed = True  # this worker dies mid-training; its trial is failed after the grace
            alive.discard(w)
            push(t + dur / 2 + grace, "lost", w, i)
            return
        if pauses and n >= 2 and rng.random() < 0.15:
            n_pauses += 1
            pause = grace + rng.uniform(2.0, 4.0) if rng.random() < 1 / 3 else rng.uniform(
                1.0, 4.0)
            if pause > grace:  # failed as stale while paused; the result is refused later
                push(t + dur / 2 + grace, "lost", -1, i)
                push(t + dur + pause, "refused", w, i)
                return
            dur += pause
        push(t + dur, "end", w, i)

    while stop is None:
        rng.shuffle(idle)
        still: list[int] = []
        for pos, w in enumerate(idle):
            if stop is not None:
                still.append(w)
                continue
            if queue:
                start(w, queue.popleft())
                continue
            # idle now: this worker, those after it and those that found nothing to start
            action = act(len(idle) - pos + len(still) + LOOKAHEAD(len(alive)))
            if isinstance(action, Stop):
                stop, t_stop = action, t
            elif isinstance(action, Train):
                enqueue(action)
                if queue:
                    start(w, queue.popleft())
                    continue
            still.append(w)
        idle = [w for w in still if w in alive]
        if stop is not None:
            break
        if not heap:
            return {"error": "every worker waits and nothing runs"}
        t, _, kind, w, i = heapq.heappop(heap)
        tr = trials[i]
        if kind == "lost":
            if tr.state == "running":
                tr.state, tr.end = "lost", t
            continue
        if kind == "refused":
            idle.append(w)
            continue
        tr.state, tr.end = "done", t
        tr.value = observed(seed, tr.shape.depth, float(tr.shape.width), tr.k, cfg["noise"])
        ahead = LOOKAHEAD(len(alive) - 1)  # the finishing worker's hook counts the others
        if len(queue) <= ahead:  # the after-trial hook plans once the queue is that short
            action = act(1 + len(idle) + 2 * ahead - len(queue))
            if isinstance(action, Stop):
                stop, t_stop = action, t
            elif isinstance(action, Train):
                enqueue(action)
        idle.append(w)
    started = [tr for tr in trials if tr.start == tr.start]
    busy = sum(max(0.0, min(tr.end if tr.end == tr.end else t_stop, t_stop) - tr.start)
               for tr in started)
    ans = stop.answer
    return {"trainings": len(started), "time": t_stop,
            "utilization": busy / (n * t_stop) if t_stop > 0 else math.nan,
            "answer": None if ans is None else [ans.depth, float(ans.width)],
            "status": stop.status, "decisions": decisions, "pauses": n_pauses,
            "killed": killed}


def replay_one_worker(args: argparse.Namespace, goal: str, seed: int) -> int:
    """Trainings of a one-worker search (replayed: the same decisions as a real worker)."""
    import optuna

    import optuna_shape as osh

    cfg = problem_config(args, goal, seed)
    with warnings_off():
        sampler = make_sampler(osh, cfg)
        problem = sampler.problem(optuna.create_study(direction="maximize", sampler=sampler))
    return replay_search(problem, sampler.settings, cfg, 1, seed, False, False, 1.0)[
        "trainings"]


def pick_seeds(args: argparse.Namespace, goal: str) -> tuple[list[int], dict[int, int]]:
    """The first ``--reps`` seeds from 0 whose one-worker search trains at least
    ``--min-trainings`` times (and the seeds skipped, with their trainings)."""
    seeds: list[int] = []
    skipped: dict[int, int] = {}
    seed = 0
    while len(seeds) < args.reps and seed < 200:
        n = replay_one_worker(args, goal, seed) if args.min_trainings else 0
        if n >= args.min_trainings:
            seeds.append(seed)
        else:
            skipped[seed] = n
        seed += 1
    return seeds, skipped


def _faults(pauses: bool, kill: bool) -> str:
    return " + ".join(x for x, on in (("pauses", pauses), ("a killed worker", kill)) if on) \
        or "none"


def replay_faults(args: argparse.Namespace) -> list[tuple[bool, bool]]:
    """Fault modes the replay runs: those asked for, else none and pauses + a killed worker."""
    if args.pauses or args.kill:
        return [(args.pauses, args.kill)]
    return [(False, False), (True, True)]


def run_replay(ctx: Context) -> list[dict[str, Any]]:
    import optuna

    import optuna_shape as osh

    args = ctx.args
    rows: list[dict[str, Any]] = []
    for goal in args.goals:
        for rep in range(args.replay_reps):
            seed = 100 + rep
            cfg = problem_config(args, goal, seed)
            with warnings_off():
                sampler = make_sampler(osh, cfg)
                study = optuna.create_study(direction="maximize", sampler=sampler)
                problem = sampler.problem(study)
            ref = replay_search(problem, sampler.settings, cfg, 1, seed, False, False, 1.0)
            ref.update(goal=goal, workers=1, seed=seed, floor=cfg["floor"], faults="none",
                       extra=0, speedup=1.0)
            rows.append(ref)
            print(json.dumps({"replay": ref}, default=str), flush=True)
            for (pauses, kill), n in itertools.product(
                    replay_faults(args), sorted(set(args.workers) - {1})):
                t0 = time.perf_counter()
                r = replay_search(problem, sampler.settings, cfg, n, seed, pauses, kill,
                                  3.0 * args.heartbeat)
                r.update(goal=goal, workers=n, seed=seed, floor=cfg["floor"],
                         cpu_s=time.perf_counter() - t0, faults=_faults(pauses, kill))
                if "error" not in r and ref is not None and "error" not in ref:
                    r["extra"] = r["trainings"] - ref["trainings"]
                    r["speedup"] = ref["time"] / r["time"] if r["time"] > 0 else math.nan
                    r["agrees"] = agrees(goal, cfg["floor"], r["answer"], ref["answer"],
                                         args.noise)
                    r["agrees_strict"] = agrees(goal, cfg["floor"], r["answer"],
                                                ref["answer"], args.noise, strict=True)
                    r["same"] = r["answer"] == ref["answer"]
                rows.append(r)
                print(json.dumps({"replay": r}, default=str), flush=True)
    return rows


# ------------------------------------------------------------------------------ report -------
def _phases(r: dict[str, Any]) -> str:
    """``start / middle / end`` idle shares with each phase's length (older logs: —)."""
    ph = r.get("idle_phases")
    if not ph:
        return "—"
    return " / ".join(f"{_pct(ph[k][0])} ({_f(ph[k][1], '.1f')})"
                      for k in ("start", "middle", "end"))


def _f(x: Any, fmt: str = ".2f", none: str = "—") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return none
    return format(x, fmt)


def _pct(x: Any) -> str:
    return _f(None if x is None else 100 * x, ".1f") + (" %" if x is not None
                                                       and math.isfinite(x) else "")


def _shape(a: list[float] | None) -> str:
    return "none" if a is None else f"({int(a[0])}, {a[1]:g})"


def git_state(code: str) -> tuple[str, str]:
    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "optuna_shape")
    n = len(dirty.splitlines())
    if code == "HEAD":
        state = ("the committed code of HEAD (git archive)" + (
            f"; the working tree's {n} uncommitted files in `optuna_shape/` (other engineers' "
            "work in progress) were not used" if n else ""))
    elif n:
        state = (f"**`optuna_shape/` had uncommitted changes** ({n} files, other engineers' work "
                 "in progress) and they were used")
    else:
        state = "`optuna_shape/` had no uncommitted changes"
    return head, state


def tree_hash(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*.py")):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    return f"{os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()}"


def versions() -> str:
    import importlib.metadata as md

    out = [f"Python {platform.python_version()}"]
    for pkg in ("optuna", "sqlalchemy", "psycopg", "grpcio", "protobuf", "numpy", "scipy"):
        with contextlib.suppress(md.PackageNotFoundError):
            out.append(f"{pkg} {md.version(pkg)}")
    return ", ".join(out)


def write_report(ctx: Context, replay: list[dict[str, Any]], started: datetime.datetime,
                 wall: float, load: tuple[float, float], pg_version: str) -> str:
    args = ctx.args
    runs = ctx.runs
    head, state = args.git
    refs = {(r["goal"], r["seed"]): r for r in runs if r["workers"] == 1}
    for r in runs:
        ref = refs.get((r["goal"], r["seed"]))
        if ref is not None:
            r["extra"] = r["trainings"] - ref["trainings"]
            r["speedup"] = ref["time_to_answer_s"] / r["time_to_answer_s"]
            r["agrees"] = agrees(r["goal"], r["floor"], r["answer"], ref["answer"],
                                 args.noise) if r["stored_answer"] else None  # stopped: no answer
            r["same"] = r["answer"] == ref["answer"]
    floors = {g: problem_config(args, g, 0)["floor"] for g in args.goals}
    lines = [
        "# Many workers on one study: 1-64 worker processes, PostgreSQL and the gRPC proxy",
        "",
        f"Command: `{args.command}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC, {wall / 60:.1f} min wall  ",
        f"Code: commit {head}; {state} (package source hash {ctx.args.code_hash}); "
        f"ShapeSampler built with {ctx.args.api}  ",
        f"Machine: {machine()}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the "
        "end (shared with other engineers' tests)  ",
        f"Software: {versions()}; PostgreSQL {pg_version}",
        "",
        f"Problem: WRN grid depth {DEPTH[0]}-{DEPTH[1]} step {DEPTH[2]} × width {WIDTH[0]:g}-"
        f"{WIDTH[1]:g} step {WIDTH[2]:g} ({len(grid())} shapes), size ≤ {MAX_SIZE_MB:g} MB "
        f"({len(feasible_shapes())} feasible); lookup trainings of `time.sleep({args.sleep:g})`"
        f" returning a smooth synthetic accuracy + N(0, {args.noise:g}²) noise seeded by "
        "(seed, shape, k). Searches: "
        + "; ".join(
            f"goal `{g}`" + (f" with floor {floors[g]}" if floors[g] is not None else "")
            + f", confidence {args.confidence or GOALS[g]['confidence']}, max_trainings "
            f"{_cap_words(max_trainings_of(args, g))}" for g in args.goals)
        + f", n_initial {args.n_initial}, sampler poll interval "
        f"{args.poll_interval or 'default (1 s)'}; heartbeat {args.heartbeat:g} s, grace "
        f"{3 * args.heartbeat:g} s; gRPC proxy threads {args.proxy_threads}"
        + (f", {args.proxies} gRPC proxies (workers joined round robin)"
           if args.proxies > 1 else "") + ". Injection: "
        + (", ".join(x for x, on in (("random pauses", args.pauses), ("one killed worker",
                                                                        args.kill)) if on)
           or "none") + ".",
        "",
    ]
    if ctx.grpc_note:
        lines += [f"**Note:** {ctx.grpc_note}.", ""]
    if runs:
        seeds = {g: sorted({r["seed"] for r in runs if r["goal"] == g}) for g in args.goals}
        lines += [
            f"**Repetitions and seeds:** {args.reps} process run(s) per cell, to keep a full run "
            "near 25 minutes (a one-worker search of 40-60 trainings × 3 s alone takes 2-3 "
            "min, and 64 processes take a minute to start on two cores); answer quality over "
            "≥ 10 repetitions is in the replay section (§5). "
            + (f"Issue 19 asks for searches of ≥ {args.min_trainings} trainings: the process "
               "runs use, per goal, the first seeds whose one-worker search (replayed first: "
               "the replay makes a real worker's decisions) trains at least "
               f"{args.min_trainings} times — " if args.min_trainings else "Seeds: ")
            + "; ".join(f"{g}: seed(s) {', '.join(map(str, seeds[g])) or 'none'}"
                        + (" (skipped: " + ", ".join(f"{k} → {v} trainings" for k, v in
                                                      ctx.skipped.get(g, {}).items()) + ")"
                           if ctx.skipped.get(g) else "") for g in args.goals)
            + ". The one-worker search's length varies a lot with the seed (see §5).", ""]
    if runs:
        lines += [
            "## 1. Time: utilization, speed-up, planning, storage", "",
            "| goal | storage | N | seed | trainings | extra vs 1 | time to answer (s) | "
            "speed-up | utilization | planning s / training | decide s / training | "
            "decisions (Train, shapes each) | storage calls / training (+ heartbeat) | "
            "round trips / training | storage s / training |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
        ]
        for r in runs:
            rt = r["backend_per_training"] if r["storage"] != "grpc" else (
                r["calls_per_training"] + r["heartbeat_calls_per_training"])
            cut = "" if r["stored_answer"] else ">"  # stopped at --run-timeout
            lines.append(
                f"| {r['goal']} | {r['storage']} | {r['workers']} | {r['seed']} | "
                f"{r['trainings']} | {_f(r.get('extra'), '+d')} | "
                f"{cut}{_f(r['time_to_answer_s'], '.1f')} | {'<' if cut else ''}"
                f"{_f(r.get('speedup'))}× | "
                f"{_pct(r['utilization'])} | {_f(r['plan_s_per_training'], '.3f')} | "
                f"{_f(r['decide_s_per_training'], '.3f')} | {r['decisions']} "
                f"({r['train_decisions']}, {_f(r['shapes_per_train_decision'], '.1f')}) | "
                f"{_f(r['calls_per_training'], '.1f')} "
                f"(+{_f(r['heartbeat_calls_per_training'], '.1f')}) | {_f(rt, '.1f')} | "
                f"{_f(r['storage_s_per_training'], '.3f')} |")
        lines += [
            "", "## 2. Where the workers' time went (share of N × time to answer)", "",
            "| goal | storage | N | training | waiting in planner trials | planner trials "
            "(deciding, storage) | in a training trial outside the training | after-trial "
            "hook | in `study.ask()` | rest (tell, between trials) | in storage calls, any "
            "phase (release → exit) | pops lost / training | release → first training (s) | "
            "idle at the start / middle / end (phase s) | "
            "top storage methods (calls) | storage s / training by method (search thread) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
        ]
        for r in runs:
            s = r["share"]
            top = ", ".join(f"{k} {v}" for k, v in list(r["top_methods"].items())[:4])
            top_s = ", ".join(f"{k} {v:.3f}" for k, v in r.get("top_method_s", {}).items()) \
                or "—"
            lines.append(
                f"| {r['goal']} | {r['storage']} | {r['workers']} | {_pct(s['train'])} | "
                f"{_pct(s['wait'])} | {_pct(s['planner'])} | "
                f"{_pct(s['before_after_training'])} | {_pct(s['after_trial'])} | "
                f"{_pct(s['ask'])} | {_pct(s['between'])} | {_pct(r.get('storage_share'))} | "
                f"{_f(r['lost_pops_per_training'], '.1f')} | "
                f"{_f(r['t_first_start_after_go_s'], '.1f')} | {_phases(r)} | {top} | "
                f"{top_s} |")
        lines += [
            "", "## 3. Correctness and the answer", "",
            "| goal | storage | N | seed | injected | completed | duplicates | slot completed "
            "twice | yielded copies | lost | stuck RUNNING | left queued | in flight at the "
            "answer | answer | status | true accuracy | size (MB) | as good as 1 worker |",
            "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
        ]
        for r in runs:
            inj = "—"
            if r["injected"]:
                inj = (f"{len(r['pauses'])} pauses "
                       f"({sum(1 for p in r['pauses'] if p > 3 * args.heartbeat)} > grace)"
                       + (", 1 killed" if r["killed"] else ""))
            ag = r.get("agrees")
            agree = "reference" if r["workers"] == 1 else (
                _unjudged(r) if ag is None else ("same shape" if r.get("same") else (
                    "yes (within tolerance)" if ag else "**no**")))
            err = f" ({len(r['worker_errors'])} worker errors)" if r["worker_errors"] else ""
            stuck = str(r["stuck"]) if r["stored_answer"] else f"— ({r['stuck']} running when " \
                "stopped)"
            lines.append(
                f"| {r['goal']} | {r['storage']} | {r['workers']} | {r['seed']} | {inj} | "
                f"{r['completed']} | {r['dup']} | {r['twice']} | {r['yielded']} | {r['lost']} | "
                f"{stuck} | {r['waiting_at_end']} | {r['in_flight_at_answer']} | "
                f"{_shape(r['answer'])} | "
                f"{r['status'] if r['stored_answer'] else 'no answer: stopped'}{err} | "
                f"{_f(r['true_acc'])} | "
                f"{_f(r['size_mb'], '.2f')} | {agree} |")
        grpc_rows = [r for r in runs if r.get("proxy")]
        if grpc_rows:
            lines += ["", "Through the gRPC proxy, database transactions the proxy made per "
                      "training: " + ", ".join(
                          f"{r['goal']} N={r['workers']}: "
                          f"{sum(r['proxy']['bg_calls'].values()) / max(1, r['trainings']):.1f}"
                          for r in grpc_rows) + "."]
        cpu_rows = [r for r in runs if r.get("worker_cpu_s") is not None and r["workers"] > 1]
        proxy_words = "proxy" if ctx.args.proxies <= 1 else f"{ctx.args.proxies} proxies"
        if cpu_rows:
            lines += ["", "CPU seconds from the release to the last exit (this machine has 2 "
                      "cores): " + "; ".join(
                          f"{r['goal']}/{r['storage']} N={r['workers']} seed {r['seed']}: "
                          f"workers {r['worker_cpu_s']:.1f} s in all"
                          + (f", {proxy_words} {r['proxy']['cpu_s']:.1f} s (start included)"
                             if r.get("proxy") and r["proxy"].get("cpu_s") is not None
                             else "")
                          + f", over {r['go_to_exit_s']:.1f} s"
                          for r in cpu_rows) + "."]
        errs = [r for r in runs if r["worker_errors"]]
        for r in errs:
            for i, text in r["worker_errors"].items():
                tail = " ".join(text.strip().splitlines()[-3:])[:400]
                lines += ["", f"Worker error ({r['goal']}, {r['storage']}, N={r['workers']}, "
                          f"worker {i}): `{tail}`"]
        lines += ["", _targets(runs), ""]
    if replay:
        lines += _replay_section(ctx, replay)
    lines += _how_to_read(ctx)
    return "\n".join(lines) + "\n"


def _unjudged(r: dict[str, Any]) -> str:
    """Why a run's answer is not compared with one worker's."""
    return "— (stopped)" if not r.get("stored_answer") else "— (no one-worker run)"


def _injected_losses(r: dict[str, Any]) -> int:
    """Most trainings the injection can lose: the killed one and one per long pause."""
    grace = 3.0 * r["heartbeat"]
    return int(bool(r.get("killed"))) + sum(1 for p in r.get("pauses", ()) if p > grace)


def _targets(runs: list[dict[str, Any]]) -> str:
    out = ["## 4. Issue 19's targets on these runs", "",
           "| target | measured | met |", "|---|---|---|"]

    def cell(name: str, rows: list[dict[str, Any]], fn: Callable[[dict[str, Any]], Any],
             ok: Callable[[dict[str, Any]], bool]) -> None:
        if rows:
            out.append(f"| {name} | " + "; ".join(
                f"{r['goal']}/{r['storage']}" + (f"/{r['workers']}" if len({x["workers"] for x in
                                                                          rows}) > 1 else "")
                + f": {fn(r)}" for r in rows) + " | "
                + ("yes" if all(ok(r) for r in rows) else "**no**") + " |")

    def at(n: int) -> list[dict[str, Any]]:
        return [r for r in runs if r["workers"] == n]

    cell("16 workers: utilization ≥ 85 %", at(16), lambda r: _pct(r["utilization"]),
         lambda r: r["utilization"] >= 0.85)
    cell("16 workers: time to answer ≤ 1/6 of one worker's (speed-up ≥ 6×)", at(16),
         lambda r: f"{_f(r.get('speedup'))}×", lambda r: (r.get("speedup") or 0) >= 6)
    cell("64 workers: utilization ≥ 70 %", at(64), lambda r: _pct(r["utilization"]),
         lambda r: r["utilization"] >= 0.70)
    cell("4 workers: speed-up ≥ 3.3×", at(4), lambda r: f"{_f(r.get('speedup'))}×",
         lambda r: (r.get("speedup") or 0) >= 3.3)
    many = [r for r in runs if r["workers"] > 1]
    cell("0 duplicate and 0 lost trainings (lost: beyond the killed worker's and those paused "
         "past the grace, which are retried)", many,
         lambda r: f"{r['dup']} dup, {r['lost']} lost ({_injected_losses(r)} injected)"
                   + (f", {r['stuck']} stuck" if r["stored_answer"] else ", stopped"),
         lambda r: r["dup"] == 0 and r["lost"] <= _injected_losses(r)
         and (r["stuck"] == 0 or not r["stored_answer"]))
    cell("answer as good as one worker's (runs stopped without an answer not judged)", many,
         lambda r: {True: "yes", False: "no"}.get(r.get("agrees"), _unjudged(r)),
         lambda r: r.get("agrees") is not False)
    return "\n".join(out)


def _replay_section(ctx: Context, replay: list[dict[str, Any]]) -> list[str]:
    args = ctx.args
    grace = 3 * args.heartbeat
    lines = [
        "## 5. Replay: the policy alone, many repetitions", "",
        f"`optuna_shape.policy.decide` called by {', '.join(map(str, sorted(set(args.workers))))}"
        f" simulated workers, {args.replay_reps} repetitions (seeds 100-"
        f"{99 + args.replay_reps}) per goal; trainings last {args.sleep:g} s × U(0.5, 1.5), "
        "planning and storage take no time. *faults* (N ≥ 2; the one-worker reference is "
        "clean): *pauses* — 15 % of trainings are paused 1-4 s, or one time in three for the "
        f"grace ({grace:g} s) + 2-4 s, after which the training is lost and the shape planned "
        f"again; *a killed worker* — the worker of the {KILL_AFTER}th training dies halfway "
        "through it (lost after the grace). *Policy utilization* is the utilization the "
        "decisions alone allow.", "",
        "| goal | faults | N | reps | trainings (mean, min-max) | extra vs 1 (mean) | policy "
        "utilization (mean) | speed-up (mean) | same shape | as good as 1 worker | statuses |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in sorted(replay, key=lambda r: (args.goals.index(r["goal"]), r["faults"] != "none",
                                           r["faults"], r["workers"])):
        groups.setdefault((r["goal"], r["faults"], r["workers"]), []).append(r)
    for (goal, faults, n), rs in groups.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            lines.append(f"| {goal} | {faults} | {n} | {len(rs)} | error: {rs[0]['error']} "
                         "| | | | | | |")
            continue
        tr = [r["trainings"] for r in ok]

        def mean(key: str, rows: list[dict[str, Any]] = ok) -> float:
            v = [r[key] for r in rows if r.get(key) is not None]
            return sum(v) / len(v) if v else math.nan

        ag = [r for r in ok if r.get("agrees") is not None]
        st = Counter(r["status"] for r in ok)
        lines.append(
            f"| {goal} | {faults} | {n} | {len(ok)} | {mean('trainings'):.1f} "
            f"({min(tr)}-{max(tr)}) | "
            f"{_f(mean('extra'), '+.1f')} | {_pct(mean('utilization'))} | "
            f"{_f(mean('speedup'))}× | "
            + ("reference | reference" if n == 1 else
               f"{sum(1 for r in ag if r['same'])}/{len(ag)} | "
               f"{sum(1 for r in ag if r['agrees'])}/{len(ag)} (strict "
               f"{sum(1 for r in ag if r.get('agrees_strict'))})")
            + f" | {', '.join(f'{k} {v}' for k, v in st.items())} |")
    lines.append("")
    return lines


def _how_to_read(ctx: Context) -> list[str]:
    hb = ctx.args.heartbeat
    return [
        "## How to read", "",
        "- *N*: worker processes, all started before the search and released together at a "
        "start barrier, so process start-up (imports on two shared cores) is not idle time.",
        "- *time to answer*: from the first training's start to the moment a worker stored the "
        "answer (`SearchReporter.on_done`). *speed-up*: one worker's time to answer (same goal "
        "and seed, on PostgreSQL) / this run's.",
        f"- *stopped* / *>* / *<*: a run of N ≥ 2 workers without an answer after "
        f"{ctx.args.cut:g} × one worker's time to answer (counted from the release) is "
        "stopped there (`--cut`), to keep a full run near 25 minutes: its time to answer is "
        "longer than shown and its speed-up lower; its other measures cover the time it ran.",
        "- *utilization*: seconds inside trainings (the sleep), clipped to that window, / "
        "(N × time to answer). 100 % means no worker was ever doing anything but training.",
        "- *planning s / training*: (N × time to answer − training − waiting in planner trials) "
        "/ trainings: the seconds workers spent in `study.ask()`, `suggest_shape`, "
        "`study.tell` and the sampler's after-trial hook per training, outside the training "
        "and outside the planner's sleeps (on this machine it includes waiting for a CPU: N "
        "processes share two cores). *decide s / training*: the part spent inside the policy's "
        "`decide` (timed in every worker). *decisions*: all `decide` calls (Train, the mean "
        "number of shapes each Train proposed).",
        "- *idle at the start / middle / end*: the workers' idle time (N × the phase's "
        "length − seconds inside trainings) as a share of N × time to answer, with the "
        "phase's length in seconds: *start* from the first training's start until every "
        "worker has started one (the first batch being queued and taken), *end* from the "
        "last training started before the answer until the answer (the search waiting for "
        "results its stop needs), *middle* between them (the per-training overhead and "
        "the policy's waits).",
        "- *waiting in planner trials*: a worker whose `ask` found the queue empty plans; when "
        "the policy says Wait (nothing more to start until results arrive), or another "
        "worker is deciding for it, it sleeps in the planner trial and looks again (after "
        "0.05 s, doubling up to the poll interval, longer with many running trials): the "
        "seconds of those sleeps, measured. This is the idle time the policy and the "
        "one-planner rule cause; *planner trials (deciding, storage)* is the rest of a planner "
        "trial's time.",
        "- *storage calls / training*: calls of `optuna.storages.BaseStorage` methods on the "
        "storage object the study uses (Optuna's cache for PostgreSQL, the gRPC client), from "
        "the search's thread; + the heartbeat thread's. *round trips / training*: PostgreSQL: "
        "calls that reach the RDB storage under Optuna's cache (each one database transaction); "
        "gRPC: every client call (each one RPC). *storage s / training*: seconds the search's "
        "thread spent in storage calls.",
        "- *duplicates*: for each slot (`osh:slot` = `<shape>#<k>`, the k-th planned training "
        "of a shape), trainings beyond the first that were not lost — a shape trained more "
        "times than the search planned. *slot completed twice*: two COMPLETE trainings of one "
        "slot. *yielded copies*: trials that popped a slot already held and ended without "
        "training (stage `duplicate`; harmless).",
        f"- *lost*: trainings that ended FAIL without a recorded reason (their worker was "
        f"killed or paused longer than the {3 * hb:g} s heartbeat grace; the shape is planned "
        "again); *stuck RUNNING*: trials still RUNNING when every worker had exited (target "
        "0); *left queued*: WAITING trials nobody took (harmless).",
        "- *in flight at the answer*: trainings still running when the answer was stored "
        "(compute spent after the decision). *extra vs 1*: trainings minus one worker's on the "
        "same goal and seed (the extra compute many workers spend).",
        "- *as good as 1 worker*: the same shape as the one-worker answer, or, on the truth, "
        "within the goal's tolerance: size goal — true accuracy ≥ the floor and size ≤ the "
        "one-worker answer's or ≤ that of the smallest shape whose truth is ≥ floor + one "
        "noise std (the search's own tolerance: cheaper shapes are within one noise std of the "
        "floor, where no search tells them from it with confidence); accuracy goal — true "
        f"accuracy ≥ the one-worker answer's − one noise std ({ctx.args.noise:g}). *strict* "
        "(replay): the size goal without that tolerance (size ≤ the one-worker answer's).",
        "- Wall-clock numbers on this shared two-core machine carry tens of per cent of noise; "
        "with 64 processes the CPU itself is contended, which planning and storage times "
        "include.",
        "",
    ]


# ------------------------------------------------------------------------------ main ---------
def snapshot_code(mode: str, tmp: Path) -> Path | None:
    """A frozen copy of the package for this run (other engineers edit the working tree)."""
    if mode == "live":
        return None
    dest = tmp / "code"
    dest.mkdir()
    if mode == "HEAD":
        arch = subprocess.run(["git", "archive", "HEAD", "optuna_shape"], cwd=ROOT,
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    else:
        shutil.copytree(ROOT / "optuna_shape", dest / "optuna_shape",
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest)], check=False)
    return dest


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default=None,
                    help="worker counts, 1 is the reference (1,4,16,64; --quick: 1,4)")
    ap.add_argument("--goals", default="size,accuracy")
    ap.add_argument("--reps", type=int, default=None,
                    help="process runs per cell: the first such seeds (1 keeps a full run "
                         "near 25 min)")
    ap.add_argument("--sleep", type=float, default=None,
                    help="seconds per 'training' (3; --quick: 0.3)")
    ap.add_argument("--storage", default="postgresql,grpc")
    ap.add_argument("--pauses", action="store_true", help="SIGSTOP/SIGCONT random workers")
    ap.add_argument("--kill", action="store_true", help="SIGKILL one worker mid-training")
    ap.add_argument("--replay-reps", type=int, default=None,
                    help="pure-policy replay repetitions per goal (10; --quick: 2; 0: none)")
    ap.add_argument("--replay-only", action="store_true", help="only the replay (no processes)")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--min-trainings", type=int, default=None,
                    help="process runs use the first seeds whose one-worker search (replayed "
                         "first, in about a second) trains at least this often (40; --quick: 0)")
    ap.add_argument("--noise", type=float, default=NOISE_STD)
    ap.add_argument("--confidence", type=float, default=None, help="override both goals'")
    ap.add_argument("--max-trainings", type=int, default=None,
                    help="override both goals' (0: the package's default cap, which grows "
                         "with the workers)")
    ap.add_argument("--n-initial", type=int, default=5)
    ap.add_argument("--heartbeat", type=int, default=5, help="seconds; grace = 3 ×")
    ap.add_argument("--poll-interval", type=float, default=None,
                    help="sampler poll interval (default: the package's)")
    ap.add_argument("--proxy-threads", type=int, default=10)
    ap.add_argument("--proxies", type=int, default=1,
                    help="gRPC proxies in front of the database, each worker joined to one "
                         "(round robin)")
    ap.add_argument("--code", choices=("worktree", "HEAD", "live"), default="worktree",
                    help="package code: a snapshot of the working tree (default), the committed "
                         "HEAD, or the live working tree")
    ap.add_argument("--startup-timeout", type=float, default=600.0)
    ap.add_argument("--run-timeout", type=float, default=900.0,
                    help="seconds after which any run is stopped")
    ap.add_argument("--cut", type=float, default=None,
                    help="stop a run of N ≥ 2 workers that has no answer after this fraction of "
                         "one worker's time to answer (reported as '> that', speed-up < "
                         "1/cut); 0: never (0.5; --quick: 0)")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--out", default=None,
                    help=f"report file ({DEFAULT_OUT.relative_to(ROOT)}; --quick: "
                         "many_workers_quick.md in the temporary directory)")
    args = ap.parse_args(argv)
    quick = {"workers": "1,4", "sleep": 0.3, "max_trainings": 12, "replay_reps": 2, "reps": 1,
             "min_trainings": 0, "cut": 0.0}
    full = {"workers": "1,4,16,64", "sleep": 3.0, "max_trainings": None, "replay_reps": 10,
            "reps": 1, "min_trainings": 40, "cut": 0.5}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.out is None:  # a smoke run never overwrites the committed report
        args.out = str(Path(tempfile.gettempdir()) / "many_workers_quick.md") if args.quick \
            else str(DEFAULT_OUT)
    args.workers = [int(x) for x in str(args.workers).split(",") if x.strip()]
    args.goals = [g.strip() for g in args.goals.split(",") if g.strip()]
    args.storage = [s.strip() for s in args.storage.split(",") if s.strip()]
    for g in args.goals:
        if g not in GOALS:
            ap.error(f"--goals: unknown goal {g!r} (size, accuracy)")
    for s in args.storage:
        if s not in ("postgresql", "grpc"):
            ap.error(f"--storage: unknown storage {s!r} (postgresql, grpc)")
    nice = os.nice(0)
    args.command = (f"PYTHONPATH=. {f'nice -n {nice} ' if nice else ''}python "
                    f"benchmarks/many_workers.py {shlex.join(argv)}").rstrip()
    return args


SCRIPT = Path(__file__).resolve()
"""The file workers and proxies run (a frozen copy during a run: this file may be edited)."""


def report_from(log: str, out: str | None) -> int:
    """Write the report again from a run's standard output (its JSON lines), e.g. after the
    report's layout changed: ``many_workers.py --report-from LOG [--out FILE]``."""
    rows: list[dict[str, Any]] = []
    replay: list[dict[str, Any]] = []
    meta: dict[str, Any] | None = None
    for line in Path(log).read_text().splitlines():
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "meta" in d:
            meta = d["meta"]
        elif "replay" in d:
            replay.append(d["replay"])
        elif "goal" in d and "storage" in d:
            rows.append(d)
    if meta is None:
        raise SystemExit(f"{log}: no meta line (an interrupted run cannot be reported)")
    args = argparse.Namespace(**meta["args"])
    args.git = tuple(args.git)
    ctx = Context(args, Path("."), None, None, grpc_note=meta["grpc_note"], runs=rows,
                  skipped={g: {int(k): v for k, v in d.items()}
                           for g, d in meta["skipped"].items()})
    text = write_report(ctx, replay, datetime.datetime.fromisoformat(meta["started"]),
                        meta["wall"], tuple(meta["load"]), meta["pg_version"])
    Path(out or args.out).write_text(text)
    print(text)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    if argv[:1] == ["proxy"]:
        return proxy_main(argv[1:])
    if argv[:1] == ["--report-from"]:
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        return report_from(argv[1], out)
    args = parse(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT: even if inherited
        signal.signal(sig, _raise_interrupt)  # as ignored (started in the background)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    replay: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="osh-mw-"))
        if not args.keep_tmp:
            stack.callback(shutil.rmtree, tmp, True)
        else:
            print(f"keeping {tmp}", file=sys.stderr)
        stack.callback(kill_children)
        args.git = git_state(args.code)  # when the code is frozen (HEAD may move meanwhile)
        code_dir = snapshot_code(args.code, tmp)
        globals()["SCRIPT"] = Path(shutil.copy(SCRIPT, tmp / "many_workers.py"))
        if code_dir is not None:
            sys.path.insert(0, str(code_dir))
        args.code_hash = tree_hash(code_dir or ROOT / "optuna_shape") if code_dir else \
            tree_hash(ROOT / "optuna_shape")
        import optuna

        import optuna_shape as osh

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        with contextlib.suppress(ImportError):
            from optuna_shape.sampler import coordination

            globals()["QUEUE_CAP"] = getattr(coordination, "QUEUE_CAP", QUEUE_CAP)
            globals()["LOOKAHEAD"] = getattr(coordination, "lookahead", LOOKAHEAD)
            globals()["SCALED_CAP"] = hasattr(coordination, "lookahead")
        args.api = ("`policy=osh.Adaptive(confidence, max_trainings, n_initial)`"
                    if policy_api(osh) == "policy" else
                    "the keywords `confidence`, `max_trainings`, `n_initial` (no osh.Adaptive)")
        print(f"code: {code_dir or ROOT} ({osh.__file__}), {args.api}", file=sys.stderr)
        ctx = Context(args, tmp, code_dir, None)
        pg_version = "—"
        if not args.replay_only and args.workers:
            ctx.server = stack.enter_context(postgres_cluster(max(100, 4 * max(args.workers)
                                                                  + 60)))
            pg_version = str(_admin(ctx.server, "SHOW server_version")[0][0])
            for goal in args.goals:
                seeds, skipped = pick_seeds(args, goal)
                ctx.skipped[goal] = skipped
                for rep in seeds:
                    for storage in args.storage:
                        for n in args.workers:
                            if n == 1 and storage != args.storage[0]:
                                continue  # the one-worker reference runs on the first storage
                            if storage == "grpc" and ctx.grpc_ok is False:
                                continue
                            t_run = time.perf_counter()
                            print(f"run: goal {goal}, seed {rep}, {storage}, {n} workers ...",
                                  file=sys.stderr, flush=True)
                            row = run_once(ctx, goal, rep, storage, n)
                            if row is None:
                                print(f"skipped: {ctx.grpc_note}", file=sys.stderr)
                                continue
                            ctx.runs.append(row)
                            if n == 1 and row["stored_answer"]:
                                ctx.ref_time[(goal, rep)] = row["time_to_answer_s"]
                            print(json.dumps(row, default=str), flush=True)
                            print(f"  {time.perf_counter() - t_run:.0f} s wall: "
                                  f"{row['trainings']} trainings, time to answer "
                                  f"{row['time_to_answer_s']:.1f} s, utilization "
                                  f"{100 * row['utilization']:.1f} %, answer "
                                  f"{row['answer']}", file=sys.stderr, flush=True)
        if args.replay_reps > 0:
            print("replay ...", file=sys.stderr, flush=True)
            replay = run_replay(ctx)
        wall, load = time.perf_counter() - t0, (load0, os.getloadavg()[0])
        text = write_report(ctx, replay, started, wall, load, pg_version)
        meta = {"args": vars(args), "grpc_note": ctx.grpc_note, "skipped": ctx.skipped,
                "started": started.isoformat(), "wall": wall, "load": load,
                "pg_version": pg_version}
        print(json.dumps({"meta": meta}, default=str), flush=True)  # for --report-from
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}): the child processes and the PostgreSQL server "
              "were stopped; no report written", file=sys.stderr)
        sys.exit(130)
