"""Real learning curves: every shape of a grid trained with several seeds, accuracy per epoch.

The sibling of ``landscapes.py`` for early stopping: it trains each (task, depth, width, seed)
with the project's own trainer (:func:`optuna_shape.training.train`, default recipe, fixed
epochs, the same tasks and grids as ``landscapes.py``) and appends one CSV row to
``benchmarks/data/curves/curves.csv`` (a subfolder, so the landscape loaders, which read
``benchmarks/data/*.csv``, never mix these 10-epoch trainings into the 5-epoch landscapes):
``task, depth, width, seed, epochs, val_accuracy, curve, params, train_seconds, diverged``,
where ``curve`` is the selection (validation) accuracy after every epoch, ``;``-joined, in
percent, and ``val_accuracy`` its last value (what a full training reports). The learning-rate
schedule depends on the total number of epochs, so a curve is that of a training of exactly
``epochs`` epochs, as the pruner sees it during a search.

The run is resumable (rows already in the CSV are skipped, each row is flushed when written)
and ordered seed-major, so a partial file is a complete landscape with fewer seeds. Resuming
with a different number of epochs than the rows already recorded for a task is refused (the
skip test does not look at ``epochs``, so it would otherwise mix two training lengths in one
landscape silently).

Tasks: ``digits`` (10 epochs), ``digits-hard`` (12) and ``digits-noisy`` (16) for tuning;
``digits-mlp-noisy`` (20 epochs, the MLP grid), ``cancer-mlp`` (30), ``digits-mlp-small``
(20) and ``digits-small`` (16, the WRN grid) are the **held-out** curve landscapes, not to be
used for tuning
(``landscapes.HELD_OUT``). ``train_seconds`` is the wall-clock of the whole training under
whatever load the machine had; for compute per epoch use ``curves/epoch_seconds.csv``
(``benchmarks/epoch_times.py``).

Usage::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/curves.py --seeds 3   # digits, 10 epochs
    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/curves.py --seeds 3 --tasks digits-mlp-noisy
    PYTHONPATH=. .venv/bin/python benchmarks/curves.py --quick                # smoke run
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import torch

from optuna_shape.training import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables  # noqa: E402  (the curve tasks)
import landscapes  # noqa: E402  (tasks, grids)

DATA = Path(__file__).resolve().parent / "data"
CURVES_CSV = DATA / "curves" / "curves.csv"
FIELDS = ["task", "depth", "width", "seed", "epochs", "val_accuracy", "curve", "params",
          "train_seconds", "diverged"]
EPOCHS = _tables.CURVE_EPOCHS


def recorded_epochs(path: Path) -> dict[str, set[int]]:
    """The ``epochs`` values of the rows already in ``path``, per task."""
    out: dict[str, set[int]] = {}
    if not path.exists():
        return out
    with path.open() as fh:
        for r in csv.DictReader(fh):
            out.setdefault(r["task"], set()).add(int(r["epochs"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per shape (0..n-1)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed (record seeds first..n-1; two processes "
                             "with their own --out can share the work)")
    parser.add_argument("--tasks", nargs="+", default=["digits"], choices=landscapes.TASKS)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every task (default: per task, digits 10)")
    parser.add_argument("--out", type=Path, default=CURVES_CSV)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="2 shapes, 1 seed, 2 epochs, to "
                             "benchmarks/data/curves/curves_quick.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    spaces = {t: landscapes.space(t) for t in args.tasks}
    shapes = {t: sp.shapes for t, sp in spaces.items()}
    seeds = range(args.first_seed, args.seeds)
    epochs = {t: args.epochs or EPOCHS[t] for t in args.tasks}
    if args.quick:
        shapes = {t: sp.shapes[:2] for t, sp in spaces.items()}
        seeds = range(1)
        epochs = {t: 2 for t in args.tasks}
        if args.out == CURVES_CSV:
            args.out = DATA / "curves" / "curves_quick.csv"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = landscapes.done_rows(args.out)
    recorded = recorded_epochs(args.out)
    clash = [t for t in args.tasks if recorded.get(t, {epochs[t]}) != {epochs[t]}]
    if clash:
        parser.error("; ".join(f"{t}: {args.out} holds {sorted(recorded[t])} epochs, asked "
                               f"{epochs[t]}" for t in clash) + " (use another --out)")
    held_out = [t for t in args.tasks if t in landscapes.HELD_OUT]
    if held_out:
        print(f"held-out task(s) {', '.join(held_out)}: not for tuning", flush=True)
    new_file = not args.out.exists() or args.out.stat().st_size == 0
    data = {t: landscapes.load_task(t) for t in args.tasks}
    todo = [(t, s, seed) for seed in seeds for t in args.tasks for s in shapes[t]
            if (t, s.depth, float(s.width), seed) not in done]
    print(f"{len(done)} rows already in {args.out}; {len(todo)} trainings to go", flush=True)
    with args.out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
            fh.flush()
        t0 = time.perf_counter()
        for i, (task, shape, seed) in enumerate(todo, 1):
            sp = spaces[task]
            torch.manual_seed(seed)
            model = sp.build(shape)
            res = train(model, data[task], TrainConfig(epochs=epochs[task], seed=seed,
                                                       threads=args.threads))
            diverged = res.diverged or not math.isfinite(res.val_accuracy)
            writer.writerow({
                "task": task, "depth": shape.depth, "width": shape.width, "seed": seed,
                "epochs": epochs[task], "val_accuracy": f"{res.val_accuracy:.4f}",
                "curve": ";".join(f"{a:.4f}" for a in res.curve),
                "params": sp.param_count(shape), "train_seconds": f"{res.seconds:.2f}",
                "diverged": int(diverged),
            })
            fh.flush()
            print(f"[{i}/{len(todo)} {time.perf_counter() - t0:7.0f}s] {task} "
                  f"({shape.depth}, {shape.width}) seed {seed}: "
                  f"{' '.join(f'{a:.0f}' for a in res.curve)} in {res.seconds:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
