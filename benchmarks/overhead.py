"""The ShapeSampler's own cost per trial next to Optuna's RandomSampler, and import time.

Per trial we time ``study.ask()`` + ``osh.suggest_shape`` + ``study.tell`` — everything except
the objective, which returns a table value instantly — for a 1,000-shape grid grown to 500
trainings (paper mode, strategy = 500: the sample stage keeps the queue full, so every trial pops
a queued training, reads the study once before training and once in ``after_trial``, and asks
the policy). *RandomSampler* runs the same loop (``suggest_shape`` on its categorical depth and
width) on a new study in the *same* storage in the same run: the cost any sampler pays for
ask/tell there. Wall and process-CPU time, median of the 20 trials around each checkpoint;
storages: in memory, SQLite (through ``open_storage``), PostgreSQL when ``--postgres URL`` or
``OSH_TEST_POSTGRES_URL`` is given (or ``--start-postgres`` starts a throwaway cluster as the
tests do).

Import time: ``import optuna`` versus ``import optuna_shape`` + ``optuna_shape.ShapeSampler``
(what a user script touches), each in 7 fresh interpreters, median.

Run:  nice -n 10 python benchmarks/overhead.py [--quick] [--trials 500] [--postgres URL]
Writes benchmarks/results/overhead.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import optuna_shape as osh  # noqa: E402
from optuna_shape.sampler.coordination import QUEUE_CAP  # noqa: E402
from optuna_shape.store.backends import open_storage  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def make_space(n: int) -> osh.ShapeSpace:
    nd, nw = {100: (10, 10), 1_000: (20, 50)}[n]
    return osh.ShapeSpace("wrn", depth=[10 + 6 * i for i in range(nd)],
                          width=[0.25 * (i + 1) for i in range(nw)], in_channels=3,
                          num_classes=10, image_size=32)


def accuracy(shape: osh.Shape) -> float:
    d, w = shape
    return 96.0 - 2.0 / w - 30.0 / d + 0.3 / (w * w)


def loop(study: optuna.Study, space: osh.ShapeSpace, n: int) -> list[tuple[float, float, str]]:
    """(wall s, cpu s, stage) of each trial of ``n`` trials, objective excluded."""
    out = []
    while len([x for x in out if x[2] not in ("plan", "duplicate", "stopped")]) < n:
        t0, c0 = time.perf_counter(), time.process_time()
        trial = study.ask()
        try:
            shape = osh.suggest_shape(trial, space)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            stage = study._storage.get_trial(trial._trial_id).user_attrs.get("stage", "?")
            out.append((time.perf_counter() - t0, time.process_time() - c0, stage))
            if stage == "stopped":
                break
            continue
        t1, c1 = time.perf_counter(), time.process_time()
        value = accuracy(shape)
        t2, c2 = time.perf_counter(), time.process_time()
        study.tell(trial, value)
        t3, c3 = time.perf_counter(), time.process_time()
        out.append(((t1 - t0) + (t3 - t2), (c1 - c0) + (c3 - c2), "train"))
    return out


def window(xs: list[float], at: int, half: int = 10) -> float:
    lo, hi = max(0, at - half), min(len(xs), at + half)
    return statistics.median(xs[lo:hi]) * 1e3 if xs[lo:hi] else float("nan")


def measure(storage_url: str | None, n_shapes: int, n_trials: int, tag: str) -> dict:
    storage = open_storage(storage_url, heartbeat_interval=None) if storage_url else None
    space = make_space(n_shapes)
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=1e9), goal="accuracy",
                               mode="paper", strategy=n_trials, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage,
                                study_name=f"shape-{tag}")
    shape = loop(study, space, n_trials)
    ref_study = optuna.create_study(direction="maximize", storage=storage,
                                    sampler=optuna.samplers.RandomSampler(seed=0),
                                    study_name=f"random-{tag}")
    ref = loop(ref_study, space, n_trials)
    train = [x for x in shape if x[2] == "train"]
    return {"plan": [x for x in shape if x[2] == "plan"], "train": train, "ref": ref,
            "n_trials": len(study.trials)}


def import_times(runs: int = 7) -> tuple[float, float]:
    def one(code: str) -> float:
        best = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
            best.append(time.perf_counter() - t0)
        return statistics.median(best)

    base = one("pass")
    return (one("import optuna") - base,
            one("import optuna_shape; optuna_shape.ShapeSampler; optuna_shape.suggest_shape")
            - base)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="100 shapes, 60 trials (smoke run)")
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--postgres", default=os.environ.get("OSH_TEST_POSTGRES_URL"))
    ap.add_argument("--start-postgres", action="store_true",
                    help="start a throwaway PostgreSQL cluster (as the tests do)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    n_shapes, n_trials = (100, 60) if args.quick else (1_000, args.trials)
    checkpoints = [c for c in (10, 100, 250, 500) if c < n_trials] + [n_trials]
    t_start = time.time()
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="osh-overhead-")))
        pg = args.postgres
        if pg is None and args.start_postgres:
            sys.path.insert(0, str(ROOT / "tests" / "workers"))
            from conftest import _throwaway_cluster

            pg = stack.enter_context(_throwaway_cluster())
        kinds: list[tuple[str, str | None]] = [("memory", None),
                                               ("sqlite", f"sqlite:///{tmp / 'o.db'}")]
        if pg:
            kinds.append(("postgresql", pg))
        for kind, url in kinds:
            res = measure(url, n_shapes, n_trials, f"{kind}-{time.time_ns()}")
            rows.append((kind, res))
            w = [x[0] for x in res["train"]]
            r = [x[0] for x in res["ref"]]
            print(f"[{time.time() - t_start:5.0f}s] {kind}: shape {window(w, len(w) - 10):.2f} "
                  f"ms, random {window(r, len(r) - 10):.2f} ms per trial", flush=True)
    imp_optuna, imp_osh = import_times(3 if args.quick else 7)
    cmd = "nice -n 10 python benchmarks/overhead.py" + (" --quick" if args.quick else "") + (
        " --start-postgres" if args.start_postgres else "")
    lines = [
        "# ShapeSampler overhead per trial, next to RandomSampler on the same storage", "",
        f"Command: `{cmd}`  ",
        f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, optuna "
        f"{optuna.__version__}; load average {os.getloadavg()[0]:.1f} (shared machine: "
        "single numbers carry tens of percent of noise)  ",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; took "
        f"{(time.time() - t_start) / 60:.1f} min.", "",
        f"{n_shapes:,}-shape grid, {n_trials} trainings (paper mode, strategy = {n_trials}: "
        "every training is planned up front; the queue holds at most "
        f"{QUEUE_CAP} and is refilled when it drains). Per trial: `ask` + `suggest_shape` + "
        "`tell`, objective excluded; median of the 20 trials around each checkpoint (trials "
        "in storage). *ratio* = ShapeSampler / RandomSampler at the last checkpoint. The "
        "planner trial (the first: it queues the first trainings, one storage call each) is "
        "listed apart.", "",
        "| grid | storage | sampler | " + " | ".join(f"trial {c}" for c in checkpoints)
        + f" | CPU ms at {checkpoints[-1]} | ratio (wall / CPU) | planner trial |",
        "|---:|---|---|" + "---:|" * len(checkpoints) + "---:|---:|---:|",
    ]
    for kind, res in rows:
        for name, xs in (("ShapeSampler", res["train"]), ("RandomSampler", res["ref"])):
            wall = [x[0] for x in xs]
            cpu = [x[1] for x in xs]
            cells = [f"{window(wall, min(c, len(wall) - 1)):.2f}" for c in checkpoints]
            last = len(wall) - 10
            extra = "" if name == "RandomSampler" else (
                f"{window(wall, last) / window([x[0] for x in res['ref']], last):.2f}× / "
                f"{window(cpu, last) / window([x[1] for x in res['ref']], last):.2f}×")
            plan = "" if name == "RandomSampler" else (
                f"{sum(x[0] for x in res['plan']) * 1e3:.0f} ms" if res["plan"] else "—")
            lines.append(f"| {n_shapes} | {kind} | {name} | " + " | ".join(cells)
                         + f" | {window(cpu, last):.2f} | {extra} | {plan} |")
    lines += [
        "", f"Import time (median of fresh interpreters, interpreter start subtracted): "
        f"`import optuna` {imp_optuna * 1e3:.0f} ms; `import optuna_shape` + "
        f"`ShapeSampler` + `suggest_shape` {imp_osh * 1e3:.0f} ms "
        f"({imp_osh / imp_optuna:.2f}× optuna; torch and scikit-learn are not loaded).", "",
        "Targets: in memory ≤ 5 ms CPU per trial; on SQLite ≤ 2× RandomSampler's own cost.", "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
