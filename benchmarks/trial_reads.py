"""How much CPU a study read and a queued training cost: Optuna's ORM against
``LeanRDBStorage``'s plain rows.

Optuna's cache in front of an RDB storage re-reads every unfinished trial (and the new ones) at
each read of the study; through the gRPC proxy that read was the proxy's largest cost. This
builds one study like a 16-worker search's — 150 finished trials (COMPLETE / PRUNED) and 20
unfinished (16 RUNNING, 4 WAITING), each with the two shape params, six system and six user
attributes, a learning curve on every third — on a SQLite file and on a throwaway PostgreSQL
server, and times, in interleaved rounds on one process's CPU clock:

* the cache's read (``_get_trials`` of the unfinished and newer trials) by Optuna's
  ``RDBStorage`` and by ``LeanRDBStorage``;
* a whole read of the study (all 170 trials) by each;
* ``get_all_trials`` through Optuna's cache over each (what a worker and the proxy call);
* queueing one training: ``create_new_trial`` with the template the search queues a training
  with (a WAITING trial, its slot, stage, fixed params and the dashboard's attributes: 5 system
  and 10 user attributes), in a second study of the same database.

Every read, and every trial created, is first checked equal, field for field, between the two.

    PYTHONPATH=. python benchmarks/trial_reads.py [--reps 600] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from many_workers import machine, new_database, postgres_cluster  # noqa: E402

from optuna_shape.store.backends import resolve_driver  # noqa: E402
from optuna_shape.store.lean_rdb import LeanRDBStorage  # noqa: E402

DEPTH = CategoricalDistribution(list(range(10, 77, 6)))
WIDTH = CategoricalDistribution([0.25 * k for k in range(1, 13)])


def build(storage: optuna.storages.BaseStorage) -> int:
    """The study described in the module docstring; returns its id."""
    rng = random.Random(0)
    sid = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "reads")
    unfinished = sorted(rng.sample(range(130, 169), 20))
    waiting = set(unfinished[::5])
    for i in range(170):
        if i in waiting:
            storage.create_new_trial(sid, template_trial=create_trial(
                state=TrialState.WAITING, system_attrs={"fixed_params": {"depth": 34, "width": 1.0},
                                                        "osh:slot": f"d34w1#{i}"}))
            continue
        tid = storage.create_new_trial(sid)
        storage.set_trial_param(tid, "depth", float(rng.randrange(12)), DEPTH)
        storage.set_trial_param(tid, "width", float(rng.randrange(12)), WIDTH)
        for k, v in {"osh:slot": f"d{i}#1", "osh:stage": "sample", "osh:worker": i % 16,
                     "osh:lr": 0.001 * (1 + i % 7), "osh:shape": {"d": i % 12, "w": i % 5},
                     "osh:seed": 1000 + i}.items():
            storage.set_trial_system_attr(tid, k, v)
        for k, v in {"loss": rng.random(), "acc": rng.random(), "params": rng.random() * 5e7,
                     "host": f"node{i % 4}", "epochs": 10 + i % 5,
                     "train_seconds": rng.random() * 900}.items():
            storage.set_trial_user_attr(tid, k, v)
        if i % 3 == 0:
            for step in range(1, rng.randrange(3, 7)):
                storage.set_trial_intermediate_value(tid, step, 50 + 40 * rng.random())
        if i not in unfinished:
            if i % 5 == 4:
                storage.set_trial_state_values(tid, TrialState.PRUNED)
            else:
                storage.set_trial_state_values(tid, TrialState.COMPLETE, [90 + rng.random()])
    return sid


QUEUED = create_trial(
    state=TrialState.WAITING,
    system_attrs={"fixed_params": {"depth": 52, "width": 0.25}, "osh:slot": "d52-w0.25#1",
                  "osh:stage": "acquire", "constraints:accuracy": 3.776940377293613,
                  "constraints:size": -24.804632},
    user_attrs={"stage": "acquire", "depth": 52, "width": 0.25, "params": 48842,
                "size_mb": 0.1954, "predicted_accuracy": 89.9, "predicted_std": 0.21,
                "prediction_source": "adaptive policy", "constraint_accuracy": 3.777,
                "constraint_size": -24.8})
"""A queued training as the search creates it (copied from a 16-worker search's study)."""


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def check_equal(xs: list, ys: list) -> None:
    assert [t._trial_id for t in xs] == [t._trial_id for t in ys]
    for x, y in zip(xs, ys):
        assert all(_same(vars(x)[k], vars(y)[k]) for k in vars(x)), x.number


def measure(url: str, reps: int) -> tuple[dict[str, float], int]:
    """Median CPU ms per call of each read on one database; and the trials a cache read got."""
    orm = optuna.storages.RDBStorage(url)
    sid = build(orm)
    lean = LeanRDBStorage(url)
    orm_cache, lean_cache = optuna.storages.get_storage(orm), optuna.storages.get_storage(lean)
    orm_cache.get_all_trials(sid, deepcopy=False)
    lean_cache.get_all_trials(sid, deepcopy=False)
    info = orm_cache._studies[sid]
    inc, gt = set(info.unfinished_trial_ids), info.last_finished_trial_id
    cases = {
        "cache read, Optuna's ORM": lambda: orm._get_trials(sid, None, inc, gt),
        "cache read, plain rows": lambda: lean._get_trials(sid, None, inc, gt),
        "whole study, Optuna's ORM": lambda: orm._get_trials(sid, None, set(), -1),
        "whole study, plain rows": lambda: lean._get_trials(sid, None, set(), -1),
        "get_all_trials through the cache, ORM": lambda: orm_cache.get_all_trials(
            sid, deepcopy=False),
        "get_all_trials through the cache, plain rows": lambda: lean_cache.get_all_trials(
            sid, deepcopy=False),
    }
    queue = orm.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "queue")

    cases["queue a training, Optuna's ORM"] = lambda: orm.create_new_trial(
        queue, template_trial=QUEUED)
    cases["queue a training, plain rows"] = lambda: lean.create_new_trial(
        queue, template_trial=QUEUED)
    names = list(cases)
    for i in range(0, len(names), 2):
        x, y = cases[names[i + 1]](), cases[names[i]]()
        if isinstance(x, int):  # two new trials: equal but for their id and number
            x, y = [orm.get_trial(x)], [orm.get_trial(y)]
            for t in x + y:
                t._trial_id, t.number = 0, 0
        check_equal(x, y)
    for f in cases.values():
        for _ in range(10):
            f()
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(10):  # interleaved rounds: drift spreads over every case alike
        for k, f in cases.items():
            gc.collect()
            for _ in range(max(1, reps // 10)):
                t0 = time.process_time()
                f()
                cpu[k].append(time.process_time() - t0)
    n_read = len(cases[names[0]]())
    orm.engine.dispose()
    lean.engine.dispose()
    return {k: statistics.median(v) * 1e3 for k, v in cpu.items()}, n_read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=600, help="timed calls per read and database")
    ap.add_argument("--out", default=None, help="write the report here (markdown)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite file"] = measure(f"sqlite:///{tmp}/reads.db", args.reps)
    with postgres_cluster(20) as server:
        results["PostgreSQL"] = measure(resolve_driver(new_database(server, "reads")),
                                        args.reps)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    lines = [
        "# Study reads and queued trainings: Optuna's ORM against plain rows "
        "(`LeanRDBStorage`)", "",
        f"Command: `PYTHONPATH=. python benchmarks/trial_reads.py --reps {args.reps}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC; code: commit {commit}  ",
        f"Machine: {machine()}", "",
        "Study: 170 trials, 150 finished and 20 unfinished (module docstring). Every read, and "
        "every trial created, was checked equal, field for field, between the two before "
        "timing; each timed creation adds a trial to a second study. Median CPU "
        f"milliseconds per call of this process over {args.reps} calls in ten interleaved "
        "rounds (the database server's CPU is not counted).", "",
        "| database | call | ORM (ms) | plain rows (ms) | plain / ORM |",
        "|---|---|---:|---:|---:|",
    ]
    for db, (med, n_read) in results.items():
        for what, label in (("cache read", f"the cache's read ({n_read} trials)"),
                            ("whole study", "the whole study (170 trials)"),
                            ("get_all_trials through the cache",
                             "`get_all_trials` through Optuna's cache"),
                            ("queue a training", "queue a training (15 attributes)")):
            orm_ms = med[f"{what}, Optuna's ORM" if what != "get_all_trials through the cache"
                         else f"{what}, ORM"]
            lean_ms = med[f"{what}, plain rows"]
            lines.append(f"| {db} | {label} | {orm_ms:.2f} | {lean_ms:.2f} | "
                         f"{lean_ms / orm_ms:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
