"""Compute time of one training epoch for every shape of a curve landscape, on the CPU.

The compute side of ``curves/curves.csv``: a benchmark that replays the recorded learning curves
at equal compute needs what one epoch of each shape costs, and the ``train_seconds`` of
``curves.csv`` were recorded under heavy, varying load (0.4–72 s for similar trainings), so they
cannot serve. This script measures it again, on its own, with the project's trainer
(:func:`optuna_shape.training.train`, default recipe, the task's data from ``landscapes.py``,
1 torch thread), and appends one row per (task, shape) to
``benchmarks/data/curves/epoch_seconds.csv``:
``task, depth, width, params, macs, epoch_seconds, reps, spread``.

How one shape is measured: ``reps`` short trainings (fresh network, seed = repetition number,
``epochs_per_rep`` epochs each); each epoch is timed from the trainer's ``on_epoch`` callback, so
an epoch is its optimiser steps **plus** the scoring on the validation split that the trainer does
after every epoch (what a training reporting to a pruner pays). The first epoch of every
repetition is dropped (set-up and allocator warm-up); a repetition's value is the mean of its
other epochs, ``epoch_seconds`` the median over the repetitions, and ``spread`` =
(max − min) / median over the repetitions (0.05 = the repetitions agree within 5 %). One
untimed warm-up training runs before the first shape (the process's first training pays
about 1.5 s of one-time set-up). ``macs`` are the analytic multiply-accumulates of one sample
(:func:`optuna_shape.measurement.flops.shape_macs`), ``params`` the exact parameter count.

Clock (``--clock``): ``cpu`` (default) times an epoch by the process's CPU time
(``time.process_time``). With one torch thread that is the wall-clock the epoch takes on an
otherwise idle core, and it stays so when other jobs share the machine, where the wall-clock
does not (on 2 shared cores at load 4, every epoch's wall-clock was about twice its CPU time,
by however much the scheduler took away). ``wall`` times by ``time.perf_counter`` (only
meaningful on a quiet machine). Either way the progress line prints the shape's wall / CPU
ratio (1.0 = the process had its core to itself).

The run is resumable (rows already in the CSV are skipped, each row is flushed when written).

Usage::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/epoch_times.py          # all 4 tasks
    PYTHONPATH=. .venv/bin/python benchmarks/epoch_times.py --quick             # smoke run
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from optuna_shape.measurement.flops import shape_macs
from optuna_shape.training import Splits, TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables  # noqa: E402  (the curve tasks)
import landscapes  # noqa: E402  (tasks, grids)

DATA = Path(__file__).resolve().parent / "data"
OUT_CSV = DATA / "curves" / "epoch_seconds.csv"
FIELDS = ["task", "depth", "width", "params", "macs", "epoch_seconds", "reps", "spread"]
TASKS = _tables.CURVE_TASKS
# MLP epochs take milliseconds, so they get more repetitions and more epochs per repetition
REPS = {"wrn": 3, "mlp": 9}
EPOCHS_PER_REP = {"wrn": 3, "mlp": 6}


def _kind(task: str) -> str:
    return "wrn" if landscapes.FAMILY[task] == "wrn" else "mlp"


def done_rows(path: Path) -> set[tuple[str, int, float]]:
    """(task, depth, width) of the rows already in ``path``."""
    if not path.exists():
        return set()
    with path.open() as fh:
        return {(r["task"], int(r["depth"]), float(r["width"])) for r in csv.DictReader(fh)}


def time_epochs(model_fn: Callable[[], nn.Module], data: Splits, epochs: int, seed: int,
                threads: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of every epoch of one training of ``epochs`` epochs (fewer
    when the training diverges: the diverged epoch is not timed)."""
    torch.manual_seed(seed)
    model = model_fn()
    stamps: list[tuple[float, float]] = []
    t0 = (time.perf_counter(), time.process_time())
    train(model, data, TrainConfig(epochs=epochs, seed=seed, threads=threads),
          on_epoch=lambda _e, _a: stamps.append((time.perf_counter(), time.process_time())))
    pairs = list(zip([t0, *stamps], stamps))
    return [b[0] - a[0] for a, b in pairs], [b[1] - a[1] for a, b in pairs]


def _steady(times: list[float]) -> float:
    """Mean seconds per epoch without the first epoch (the only one if there is one)."""
    return statistics.fmean(times[1:]) if len(times) > 1 else times[0]


def measure(model_fn: Callable[[], nn.Module], data: Splits, reps: int, epochs: int,
            threads: int, clock: str) -> tuple[list[float], float]:
    """Per-repetition seconds per epoch (first epoch dropped) on ``clock`` and the median
    wall / CPU ratio of the repetitions."""
    values: list[float] = []
    ratios: list[float] = []
    for rep in range(reps):
        wall, cpu = time_epochs(model_fn, data, epochs, rep, threads)
        if not wall:  # diverged in the first epoch: nothing timed
            continue
        values.append(_steady(cpu if clock == "cpu" else wall))
        ratios.append(_steady(wall) / max(_steady(cpu), 1e-9))
    return values, statistics.median(ratios) if ratios else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=landscapes.TASKS)
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per shape (default: 3 for WRN, 9 for MLP tasks)")
    parser.add_argument("--epochs-per-rep", type=int, default=None,
                        help="epochs of each timed training, the first one dropped "
                             "(default: 3 for WRN, 6 for MLP tasks)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="process CPU time (default; robust to other jobs) or wall-clock")
    parser.add_argument("--out", type=Path, default=OUT_CSV)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="2 shapes per task, 3 reps of 2 epochs, to "
                             "benchmarks/data/curves/epoch_seconds_quick.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    spaces = {t: landscapes.space(t) for t in args.tasks}
    shapes = {t: sp.shapes for t, sp in spaces.items()}
    reps = {t: args.reps or REPS[_kind(t)] for t in args.tasks}
    epochs = {t: args.epochs_per_rep or EPOCHS_PER_REP[_kind(t)] for t in args.tasks}
    if args.quick:
        shapes = {t: sp.shapes[:2] for t, sp in spaces.items()}
        reps = {t: 3 for t in args.tasks}
        epochs = {t: 2 for t in args.tasks}
        if args.out == OUT_CSV:
            args.out = DATA / "curves" / "epoch_seconds_quick.csv"
    if min(reps.values()) < 1 or min(epochs.values()) < 1:
        parser.error("--reps and --epochs-per-rep must be at least 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = done_rows(args.out)
    new_file = not args.out.exists() or args.out.stat().st_size == 0
    todo = [(t, s) for t in args.tasks for s in shapes[t]
            if (t, s.depth, float(s.width)) not in done]
    print(f"{len(done)} rows already in {args.out}; {len(todo)} shapes to time ({args.clock} "
          f"clock); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if not todo:
        return 0
    data = {t: landscapes.load_task(t) for t in {t for t, _ in todo}}
    # untimed warm-up: the first training of a process pays a one-time set-up
    first_task, first_shape = todo[0]
    time_epochs(lambda: spaces[first_task].build(first_shape), data[first_task], 2, 0,
                args.threads)
    with args.out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
            fh.flush()
        t0 = time.perf_counter()
        for i, (task, shape) in enumerate(todo, 1):
            sp = spaces[task]
            values, ratio = measure(lambda sp=sp, shape=shape: sp.build(shape), data[task],
                                    reps[task], epochs[task], args.threads, args.clock)
            if not values:
                print(f"  {task} ({shape.depth}, {shape.width}): every repetition diverged in "
                      "its first epoch; no row", flush=True)
                continue
            median = statistics.median(values)
            spread = (max(values) - min(values)) / median if median > 0 else float("nan")
            macs = shape_macs(sp, shape)
            writer.writerow({
                "task": task, "depth": shape.depth, "width": shape.width,
                "params": sp.param_count(shape), "macs": "" if macs is None else macs,
                "epoch_seconds": f"{median:.5f}", "reps": len(values),
                "spread": f"{spread:.3f}",
            })
            fh.flush()
            print(f"[{i}/{len(todo)} {time.perf_counter() - t0:6.0f}s] {task} "
                  f"({shape.depth}, {shape.width}): {median:.4f} s/epoch over {len(values)} reps, "
                  f"spread {spread:.3f}, wall/cpu {ratio:.2f}, load {os.getloadavg()[0]:.1f}",
                  flush=True)
    print(f"done; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
