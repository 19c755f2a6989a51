"""Wall time, trainings and duplicate trainings of a shape search run by 1, 2 and 4 workers.

Each worker is a real process (``tests/workers/osh_worker.py``: the ShapeSampler on a 42-shape
WRN space, size limit 6 MB, accuracy floor 97.5 %, goal "size") whose objective sleeps
``--sleep`` seconds to stand for a training and returns a deterministic accuracy. All workers of
a run share one fresh SQLite file (and one fresh PostgreSQL database when a server is available:
``OSH_TEST_POSTGRES_URL``, or a throwaway cluster started as in the tests).

    python benchmarks/workers.py [--sleep 2.0] [--no-postgres]

Writes ``benchmarks/results/workers.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "workers" / "osh_worker.py"
sys.path.insert(0, str(ROOT / "tests" / "workers"))
sys.path.insert(0, str(ROOT))


def run(url: str, n: int, sleep: float, tmp: Path) -> dict:
    log = tmp / f"log-{n}-{time.time_ns()}.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--storage", url, "--log", str(log),
                               "--sleep", str(sleep)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise RuntimeError("a worker failed:\n" + "\n".join(outs))
    events = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    starts = [e for e in events if e["event"] == "start"]
    ends = Counter((e["depth"], e["width"]) for e in events if e["event"] == "end")
    first = min(e["t"] for e in starts)
    last = max(e["t"] for e in events)
    answer = [o.split("RESULT", 1)[1].strip() for o in outs if "RESULT" in o]
    return {"workers": n, "wall_s": wall, "search_s": last - first, "trainings": len(starts),
            "duplicates": sum(c - 1 for c in ends.values()),
            "per_worker": sorted(Counter(e["pid"] for e in starts).values(), reverse=True),
            "answers": sorted(set(answer))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sleep", type=float, default=2.0, help="seconds per 'training'")
    ap.add_argument("--workers", default="1,2,4")
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
                r = run(url, n, args.sleep, tmp)
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
    lines = [
        "# Workers: wall time, trainings and duplicates for 1, 2 and 4 workers", "",
        f"Command: `python benchmarks/workers.py --sleep {args.sleep:g}`  ",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()}  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
        "Each worker is a separate process running `study.optimize(objective)` with the same "
        "ShapeSampler (42-shape WRN space, size ≤ 6 MB, accuracy ≥ 97.5 %, goal size: 10 planned "
        f"shapes, then verification); a training is `time.sleep({args.sleep:g})`. "
        "*wall* includes process start-up (importing torch, ~5 s of CPU per process on this "
        "machine); *search* is first training start to last training end. "
        "*duplicates* = trainings of a shape that had already been trained to completion.", "",
        "| storage | workers | wall (s) | search (s) | search speed-up | trainings | "
        "duplicates | trainings per worker | answer |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        speed = base.get(r["backend"], r["search_s"]) / r["search_s"]
        lines.append(
            f"| {r['backend']} | {r['workers']} | {r['wall_s']:.1f} | {r['search_s']:.1f} | "
            f"{speed:.2f}× | {r['trainings']} | {r['duplicates']} | "
            f"{', '.join(map(str, r['per_worker']))} | {', '.join(r['answers'])} |")
    lines += ["", "The sample stage parallelises (10 planned shapes); verification trains one "
              "candidate at a time by design (paper Algorithm 1), so its trainings do not speed "
              "up with more workers; the other workers wait inside their trial and end when the "
              "answer is verified.", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
