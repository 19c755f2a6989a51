"""One shape-search worker process, as a user script would be (``study.optimize(objective)``).

Run as ``python osh_worker.py --storage URL --study NAME --log FILE [...]``; tests start several
of them on one storage. The objective mimics training with ``time.sleep`` and returns a
deterministic accuracy (a smooth inverse-polynomial surface plus fixed per-shape noise), so every
process, and an in-process reference run, sees the same accuracy for a shape. Around each
"training" it appends a JSON line ``{"event": "start"|"end", "pid", "trial", "depth", "width",
"stage"}`` to ``--log`` (one ``write`` on an ``O_APPEND`` file, so lines from several processes
never interleave), which lets a test count trainings and kill a worker mid-training.

Exit status: 0 when the search ended by itself (the answer is printed as ``RESULT ...``), 2 when
the worker was refused (message printed as ``error: ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import optuna

import optuna_shape as osh
from optuna_shape.store.backends import fail_stale_on_start, open_storage

DEPTH = (10, 46, 6)
WIDTH = (0.5, 3.0, 0.5)  # 7 x 6 = 42 shapes
MAX_SIZE_MB = 6.0  # 28 feasible shapes, "standard" plans 10 of them
MIN_ACCURACY = 97.5
GOAL = "size"
MODE = os.environ.get("OSH_TEST_MODE", "paper")


def make_space() -> osh.ShapeSpace:
    return osh.ShapeSpace("wrn", depth=DEPTH, width=WIDTH, in_channels=1, num_classes=10,
                          image_size=8)


def make_sampler(max_size_mb: float = MAX_SIZE_MB, mode: str = MODE, goal: str = GOAL,
                 max_trainings: int | None = None) -> osh.ShapeSampler:
    policy = osh.Paper() if mode == "paper" else osh.Adaptive(max_trainings=max_trainings)
    floor = None if goal.startswith("frontier") else MIN_ACCURACY
    sampler = osh.ShapeSampler(
        make_space(), osh.Constraints(max_size_mb=max_size_mb, min_accuracy=floor),
        goal=goal, policy=policy, seed=0,
    )
    sampler.poll_interval = 0.3
    return sampler


def accuracy(shape: osh.Shape) -> float:
    """Deterministic "validation accuracy" (percent) of a shape."""
    d, w = shape.depth, shape.width
    smooth = 99.2 - 1.1 / w - 14.0 / d + 0.05 / (w * w) - 0.3 / (d * w) + 0.02 / w**3
    noise = random.Random(f"{d}-{w:g}").gauss(0.0, 0.05)
    return smooth + noise


def make_objective(space: osh.ShapeSpace, log: str | None, sleep: float):
    def write(event: str, trial: optuna.Trial, shape: osh.Shape) -> None:
        if log is None:
            return
        line = json.dumps({"event": event, "pid": os.getpid(), "trial": trial.number,
                           "depth": shape.depth, "width": shape.width,
                           "stage": trial.user_attrs.get("stage"), "t": time.time()}) + "\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def objective(trial: optuna.Trial) -> float:
        shape = osh.suggest_shape(trial, space)
        write("start", trial, shape)
        time.sleep(sleep)  # "training"
        value = accuracy(shape)
        write("end", trial, shape)
        return value

    return objective


def reference_answer() -> osh.Shape | None:
    """The answer of an uninterrupted single-worker run (in memory, no sleeping)."""
    sampler = make_sampler()
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(make_objective(sampler.space, None, 0.0))
    return osh.best_shape(study)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study", default="w")
    ap.add_argument("--log", default=None)
    ap.add_argument("--sleep", type=float, default=0.5)
    ap.add_argument("--heartbeat", type=int, default=1)
    ap.add_argument("--grace", type=int, default=3)
    ap.add_argument("--max-size-mb", type=float, default=MAX_SIZE_MB)
    ap.add_argument("--goal", default=GOAL, help="e.g. frontier (adaptive mode only)")
    ap.add_argument("--max-trainings", type=int, default=None)
    ap.add_argument("--plain", action="store_true",
                    help="plain study.optimize instead of optuna_shape.optimize")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no "trial failed" tracebacks
    try:
        storage = open_storage(args.storage, heartbeat_interval=args.heartbeat,
                               grace_period=args.grace)
        sampler = make_sampler(args.max_size_mb, goal=args.goal,
                               mode="adaptive" if args.goal != GOAL else MODE,
                               max_trainings=args.max_trainings)
        study = optuna.create_study(storage=storage, sampler=sampler, study_name=args.study,
                                    direction="maximize", load_if_exists=True)
        fail_stale_on_start(study)  # trials of workers that died (heartbeat storages)
        objective = make_objective(sampler.space, args.log, args.sleep)
        if args.plain:
            study.optimize(objective)
        else:
            osh.optimize(study, objective)  # carries on if a pause got its trial failed
    except ValueError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    best = osh.best_shape(study)
    print("RESULT", json.dumps(None if best is None else [best.depth, best.width]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
