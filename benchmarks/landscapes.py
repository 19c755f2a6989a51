"""Real accuracy landscapes: every shape of a WRN grid trained with several seeds on the CPU.

Trains each (task, depth, width, seed) with the project's own trainer
(:func:`optuna_shape.training.train`, default recipe, fixed epochs) and appends one CSV row to
``benchmarks/data/landscapes.csv``:
``task, depth, width, seed, val_accuracy, test_accuracy, params, train_seconds, epochs,
train_size, diverged``. Accuracies are in percent.

Tasks (both from scikit-learn's bundled 8×8 digits, no download):

* ``digits``: the package's ``load_dataset("digits")`` split (60/20/20, split seed 0).
* ``digits-hard``: the same split, but the training set is cut to a stratified 400 examples
  (seed 0) and every image of every split gets fixed Gaussian pixel noise (std 0.3 in [0, 1]
  pixel units, drawn once with seed 1234) plus one fixed random 3×3 occlusion per image.
  Lower, noisier accuracies. Defined here, not in the package.

The run is resumable: rows already in the CSV are skipped, each row is flushed when written.
Work is ordered seed-major (every shape of seed 0 for both tasks, then seed 1, ...), so a partial
file is a complete single-seed landscape early on.

Usage::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/landscapes.py            # full grid
    PYTHONPATH=. .venv/bin/python benchmarks/landscapes.py --quick               # 4 shapes, 1 seed
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import optuna_shape as osh
from optuna_shape.training import TrainConfig, load_dataset, stratified_split, train
from optuna_shape.training.datasets import ImageTensorDataset, Splits

DATA = Path(__file__).resolve().parent / "data"
FIELDS = ["task", "depth", "width", "seed", "val_accuracy", "test_accuracy", "params",
          "train_seconds", "epochs", "train_size", "diverged"]
DEPTHS = [10, 16, 22, 28, 34]
WIDTHS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
EPOCHS = {"digits": 5, "digits-hard": 8}
TASKS = tuple(EPOCHS)


def _noisy(ds: ImageTensorDataset, rng: np.random.Generator, noise_std: float,
           patch: int) -> ImageTensorDataset:
    images = ds.images.numpy().astype(np.float32).copy()  # (N, 1, 8, 8) in [0, 1]
    n, _, h, w = images.shape
    images += rng.normal(0.0, noise_std, size=images.shape).astype(np.float32)
    rows = rng.integers(0, h - patch + 1, size=n)
    cols = rng.integers(0, w - patch + 1, size=n)
    for i in range(n):
        images[i, :, rows[i]:rows[i] + patch, cols[i]:cols[i] + patch] = 0.0
    return ImageTensorDataset(torch.from_numpy(images), ds.labels.clone(), mean=ds.mean,
                              std=ds.std, scale=ds.scale)


def load_task(task: str) -> Splits:
    """The splits of a benchmark task (``digits`` or ``digits-hard``), deterministic."""
    splits = load_dataset("digits", seed=0)
    if task == "digits":
        return splits
    if task != "digits-hard":
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    train_ds = splits.train
    assert isinstance(train_ds, ImageTensorDataset)
    _, keep = stratified_split(train_ds.labels.numpy(), 400 / len(train_ds), seed=0)
    rng = np.random.default_rng(1234)
    return Splits(
        train=_noisy(train_ds.subset(keep), rng, 0.3, 3),
        val=_noisy(splits.val, rng, 0.3, 3),  # type: ignore[arg-type]
        test=_noisy(splits.test, rng, 0.3, 3),  # type: ignore[arg-type]
        info=splits.info,
    )


def space() -> osh.ShapeSpace:
    return osh.ShapeSpace(family="wrn", depth=DEPTHS, width=WIDTHS, in_channels=1, image_size=8,
                          num_classes=10)


def done_rows(path: Path) -> set[tuple[str, int, float, int]]:
    if not path.exists():
        return set()
    with path.open() as fh:
        return {(r["task"], int(r["depth"]), float(r["width"]), int(r["seed"]))
                for r in csv.DictReader(fh)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per shape (0..n-1)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", type=Path, default=DATA / "landscapes.csv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="4 shapes, 1 seed, 1 epoch, to benchmarks/data/landscapes_quick.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sp = space()
    shapes = sp.shapes
    seeds = range(args.seeds)
    epochs = dict(EPOCHS)
    if args.quick:
        shapes = [osh.Shape(10, 0.25), osh.Shape(10, 1.0), osh.Shape(16, 0.5),
                  osh.Shape(16, 1.0)]
        seeds = range(1)
        epochs = {t: 1 for t in epochs}
        if args.out == DATA / "landscapes.csv":
            args.out = DATA / "landscapes_quick.csv"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = done_rows(args.out)
    new_file = not args.out.exists() or args.out.stat().st_size == 0
    data = {t: load_task(t) for t in args.tasks}
    todo = [(t, s, seed) for seed in seeds for t in args.tasks for s in shapes
            if (t, s.depth, float(s.width), seed) not in done]
    print(f"{len(done)} rows already in {args.out}; {len(todo)} trainings to go", flush=True)
    with args.out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
            fh.flush()
        t0 = time.perf_counter()
        for i, (task, shape, seed) in enumerate(todo, 1):
            torch.manual_seed(seed)
            model = sp.build(shape)
            cfg = TrainConfig(epochs=epochs[task], seed=seed, threads=args.threads)
            res = train(model, data[task], cfg)
            row = {
                "task": task, "depth": shape.depth, "width": shape.width, "seed": seed,
                "val_accuracy": f"{res.val_accuracy:.4f}",
                "test_accuracy": f"{res.test_accuracy:.4f}",
                "params": sp.param_count(shape), "train_seconds": f"{res.seconds:.2f}",
                "epochs": res.epochs, "train_size": len(data[task].train),  # type: ignore[arg-type]
                "diverged": int(res.diverged or not math.isfinite(res.val_accuracy)),
            }
            writer.writerow(row)
            fh.flush()
            print(f"[{i}/{len(todo)} {time.perf_counter() - t0:7.0f}s] {task} "
                  f"({shape.depth}, {shape.width}) seed {seed}: val {res.val_accuracy:.2f} "
                  f"test {res.test_accuracy:.2f} in {res.seconds:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
