"""Wall time, trainings and duplicate trainings of a shape search run by 1, 2 and 4 workers,
with stalls injected.

Each worker is a real process (``tests/workers/osh_worker.py``: the ShapeSampler on a 42-shape
WRN space, size limit 6 MB, accuracy floor 97.5 %, goal "size") whose objective sleeps
``--sleep`` seconds to stand for a training and returns a deterministic accuracy. All workers of
a run share one fresh SQLite file (and one fresh PostgreSQL database when a server is available:
``OSH_TEST_POSTGRES_URL``, or a throwaway cluster started as in the tests). With ``--stalls`` a
stall injector SIGSTOPs a random worker for a random 0.05–1 s or 4.5–7 s (longer than the
heartbeat grace of 3 s, so its trial is failed as stale and retried) and SIGCONTs it, over and
over, while the search runs.

    python benchmarks/workers.py [--sleep 1.0] [--stalls] [--mode paper|adaptive] [--no-postgres]

Writes ``benchmarks/results/workers.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "workers" / "osh_worker.py"
sys.path.insert(0, str(ROOT / "tests" / "workers"))
sys.path.insert(0, str(ROOT))


def _stall(procs: list[subprocess.Popen], seed: int, stop: threading.Event,
           counts: Counter) -> None:
    """SIGSTOP a random live worker for a short or a longer-than-grace pause, then SIGCONT."""
    rng = random.Random(seed)
    stop.wait(rng.uniform(2.0, 4.0))
    while not stop.is_set():
        alive = [p for p in procs if p.poll() is None]
        if not alive:
            return
        p = rng.choice(alive)
        pause = rng.choice([rng.uniform(0.05, 1.0), rng.uniform(4.5, 7.0)])
        try:
            os.kill(p.pid, signal.SIGSTOP)
            stop.wait(pause)
        except ProcessLookupError:
            continue
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGCONT)
        counts["long" if pause > 3 else "short"] += 1
        stop.wait(rng.uniform(0.0, 1.5))


def run(url: str, n: int, sleep: float, tmp: Path, stalls: bool, mode: str) -> dict:
    log = tmp / f"log-{n}-{time.time_ns()}.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OSH_TEST_MODE=mode)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--storage", url, "--log", str(log),
                               "--sleep", str(sleep)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    stop = threading.Event()
    counts: Counter = Counter()
    injector = threading.Thread(target=_stall, args=(procs, n, stop, counts), daemon=True)
    if stalls:
        injector.start()
    try:
        outs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        stop.set()
        if stalls:
            injector.join(timeout=30)
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise RuntimeError("a worker failed:\n" + "\n".join(outs))
    events = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    starts = [e for e in events if e["event"] == "start"]
    first = min(e["t"] for e in starts)
    last = max(e["t"] for e in events)
    answer = [o.split("RESULT", 1)[1].strip() for o in outs if "RESULT" in o]
    import optuna
    from optuna.trial import TrialState

    from optuna_shape.store.backends import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="w", storage=open_storage(url, heartbeat_interval=None))
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    slots = Counter(t.system_attrs.get("osh:slot") for t in done)
    # the policy's planned repeats have their own slots (k = 2, 3, …): a duplicate is a slot
    # completed twice, or a training started for a slot another trial completed
    complete_slot = {t.system_attrs.get("osh:slot"): t.number for t in done}
    wasted = sum(1 for e in starts if complete_slot.get(
        study.trials[e["trial"]].system_attrs.get("osh:slot")) not in (None, e["trial"]))
    return {"workers": n, "wall_s": wall, "search_s": last - first, "trainings": len(starts),
            "completed": len(done), "duplicates": sum(c - 1 for c in slots.values()),
            "lost": wasted, "stalls": dict(counts),
            "stale_failed": sum(1 for t in study.trials if t.state == TrialState.FAIL),
            "per_worker": sorted(Counter(e["pid"] for e in starts).values(), reverse=True),
            "answers": sorted(set(answer))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sleep", type=float, default=1.0, help="seconds per 'training'")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--stalls", action="store_true", help="inject SIGSTOP/SIGCONT stalls")
    ap.add_argument("--mode", default="paper", choices=("paper", "adaptive"))
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "workers.md"))
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="osh-bench-")))
        backends: list[tuple[str, object]] = [("sqlite", None)]
        if not args.no_postgres:
            try:
                from conftest import _admin_engine, _throwaway_cluster

                server = os.environ.get("OSH_TEST_POSTGRES_URL") or stack.enter_context(
                    _throwaway_cluster())
                backends.append(("postgresql", server))
            except Exception as exc:  # noqa: BLE001
                print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        for backend, server in backends:
            for n in counts:
                if backend == "sqlite":
                    url = f"sqlite:///{tmp / f'w{n}.db'}"
                else:
                    import sqlalchemy

                    name = f"osh_bench_{n}_{time.time_ns() % 10**9}"
                    with _admin_engine(server).connect() as c:
                        c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
                    url = sqlalchemy.engine.make_url(server).set(database=name).render_as_string(
                        hide_password=False)
                r = run(url, n, args.sleep, tmp, args.stalls, args.mode)
                r["backend"] = backend
                rows.append(r)
                print(json.dumps(r), flush=True)
    base = {r["backend"]: r["search_s"] for r in rows if r["workers"] == 1}
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cmd = (f"nice -n 10 python benchmarks/workers.py --sleep {args.sleep:g} --mode {args.mode}"
           + (" --stalls" if args.stalls else "") + (" --no-postgres" if args.no_postgres else ""))
    lines = [
        f"# Workers: {args.mode} mode, 1/2/4 workers" + (", stalls injected" if args.stalls
                                                        else ""), "",
        f"Command: `{cmd}`  ",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()}, load average {os.getloadavg()[0]:.1f} (shared machine)  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
        "Each worker is a separate process running `optuna_shape.optimize(study, objective)` "
        f"with the same ShapeSampler (mode {args.mode!r}; 42-shape WRN space, size ≤ 6 MB, "
        "accuracy ≥ 97.5 %, goal size); a training is "
        f"`time.sleep({args.sleep:g})`. Heartbeat 1 s, grace 3 s. *wall* includes process "
        "start-up; *search* is first training start to last training end. *duplicates* = "
        "queue slots completed more than once (target 0); *lost* = trainings started for a slot "
        "that another trial completed (work thrown away, e.g. a stalled worker whose trial was "
        "failed as stale and retried); *stale-failed* = FAIL trials.",
        "",
        "| storage | workers | stalls (short/long) | wall (s) | search (s) | search speed-up "
        "| trainings | completed | duplicates | lost | stale-failed | per worker | answer |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        speed = base.get(r["backend"], r["search_s"]) / r["search_s"]
        st = r["stalls"]
        lines.append(
            f"| {r['backend']} | {r['workers']} | {st.get('short', 0)}/{st.get('long', 0)} | "
            f"{r['wall_s']:.1f} | {r['search_s']:.1f} | {speed:.2f}× | {r['trainings']} | "
            f"{r['completed']} | {r['duplicates']} | {r['lost']} | {r['stale_failed']} | "
            f"{', '.join(map(str, r['per_worker']))} | {', '.join(r['answers'])} |")
    lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
