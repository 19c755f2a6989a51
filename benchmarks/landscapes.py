"""Real accuracy landscapes: every shape of a grid trained with several seeds on the CPU.

Trains each (task, depth, width, seed) with the project's own trainer
(:func:`optuna_shape.training.train`, default recipe, fixed epochs) and appends one CSV row to
``benchmarks/data/landscapes.csv``:
``task, depth, width, seed, val_accuracy, test_accuracy, params, train_seconds, epochs,
train_size, diverged``. Accuracies are in percent.

Tasks (all from scikit-learn's bundled datasets, no download). WRN tasks use the grid depth
10–34 step 6 × width 0.25–2.0 step 0.25 (40 shapes); MLP tasks use the benchmark family
``bench-mlp`` (registered with ``osh.register_family`` in ``_tables.py``: depth = hidden
layers 1–8 (linear, batch norm, ReLU), width × 64 = hidden units, width 0.25, 0.5, 0.75, 1,
1.5, 2; 48 shapes).

* ``digits`` (WRN): the package's ``load_dataset("digits")`` split (60/20/20, split seed 0).
* ``digits-hard`` (WRN): the same split, but the training set is cut to a stratified 400
  examples (seed 0) and every image of every split gets fixed Gaussian pixel noise (std 0.3 in
  [0, 1] pixel units, drawn once with seed 1234) plus one fixed random 3×3 occlusion per image.
  Lower, noisier accuracies.
* ``digits-mlp-noisy`` (MLP): the ``digits`` split as 64 features, 30 % of the training labels
  replaced by a uniformly drawn *other* class (drawn once, seed 4321); validation and test
  labels clean; 20 epochs. Label noise; a different family.
* ``digits-noisy`` (WRN): the ``digits`` split with 30 % of the training labels replaced by a
  uniformly drawn *other* class (drawn once, seed 2468); validation and test labels clean.
  Label noise on the WRN grid: large networks fit the wrong labels, so curves may peak and fall.
  Recorded for the learning-curve benchmark only (16 epochs), after every policy choice, as
  a held-out landscape; its first run chose a change to early stopping, so the compute
  benchmark counts it as a tuning landscape since (the curve model's calibration still
  holds it out).
* ``cancer-mlp`` (MLP): scikit-learn's breast-cancer data (569 × 30 features, 2 classes),
  60/20/20 stratified split (seed 0), features standardised on the training split; 30 epochs.
  A different dataset, two classes, a small validation set (114).
* ``digits-mlp-small`` (MLP): the ``digits`` split as 64 features, the training set cut to a
  stratified 300 examples (seed 0), clean labels; 20 epochs. Small data: deep or wide MLPs
  overfit. Recorded on 2026-12-07 as a fresh held-out landscape, after every policy choice
  so far (the other two held-out landscapes had informed measured-and-rejected variants).
* ``digits-small`` (WRN): the ``digits`` split with the training set cut to a stratified 300
  examples (seed 0), clean labels; 16 epochs. Small data on the WRN grid. Recorded on
  2026-12-07 as a fresh held-out WRN landscape (every other WRN landscape is a tuning one).

The tasks are defined here, not in the package. The run is resumable: rows already in the CSV
are skipped, each row is flushed when written. Work is ordered seed-major within each task
group, so a partial file is a complete landscape with fewer seeds early on.

Usage::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/landscapes.py --seeds 5   # full grids
    PYTHONPATH=. .venv/bin/python benchmarks/landscapes.py --quick                # smoke run
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
from optuna_shape.training.datasets import DatasetInfo, ImageTensorDataset, Splits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables  # noqa: E402  (registers the benchmark MLP family)

DATA = Path(__file__).resolve().parent / "data"
FIELDS = ["task", "depth", "width", "seed", "val_accuracy", "test_accuracy", "params",
          "train_seconds", "epochs", "train_size", "diverged"]
DEPTHS = [10, 16, 22, 28, 34]
WIDTHS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
MLP_DEPTHS = [1, 2, 3, 4, 5, 6, 7, 8]
MLP_WIDTHS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
EPOCHS = {"digits": 5, "digits-hard": 8, "digits-mlp-noisy": 20, "cancer-mlp": 30,
          "digits-noisy": 8, "digits-mlp-small": 20, "digits-small": 16}
FAMILY = {"digits": "wrn", "digits-hard": "wrn", "digits-mlp-noisy": _tables.MLP_FAMILY,
          "cancer-mlp": _tables.MLP_FAMILY, "digits-noisy": "wrn",
          "digits-mlp-small": _tables.MLP_FAMILY, "digits-small": "wrn"}
TASKS = tuple(EPOCHS)
CURVES_ONLY = ("digits-noisy", "digits-mlp-small", "digits-small")
"""Tasks recorded only as learning curves (``curves.py``): not trained here unless named."""
HELD_OUT = _tables.HELD_OUT_TASKS
"""Tasks added after the search policy was tuned: benchmarks report them separately."""


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


def _as_features(ds: ImageTensorDataset) -> ImageTensorDataset:
    """Images (N, C, H, W) as (N, C·H·W, 1, 1) features, one normalisation per feature."""
    x = ds.images.float().mul(ds.scale).reshape(len(ds), -1, 1, 1)
    m = float(np.mean(ds.mean))
    sd = float(np.mean(ds.std))
    n = x.shape[1]
    return ImageTensorDataset(x, ds.labels.clone(), mean=(m,) * n, std=(sd,) * n, scale=1.0)


def _flip_labels(ds: ImageTensorDataset, share: float, seed: int) -> ImageTensorDataset:
    rng = np.random.default_rng(seed)
    labels = ds.labels.numpy().copy()
    k = int(round(share * len(labels)))
    idx = rng.choice(len(labels), size=k, replace=False)
    labels[idx] = (labels[idx] + rng.integers(1, 10, size=k)) % 10  # another class, uniformly
    return ImageTensorDataset(ds.images, torch.from_numpy(labels), mean=ds.mean, std=ds.std,
                              scale=ds.scale)


def _cancer() -> Splits:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    rest, test_idx = stratified_split(y, 0.2, 0)
    rest_train, rest_val = stratified_split(y[rest], 0.25, 1)
    train_idx, val_idx = rest[rest_train], rest[rest_val]
    mean, std = x[train_idx].mean(0), x[train_idx].std(0)
    feats = torch.from_numpy(x.astype(np.float32)).reshape(len(y), -1, 1, 1)
    full = ImageTensorDataset(feats, torch.from_numpy(y), mean=tuple(mean), std=tuple(std),
                              scale=1.0)
    info = DatasetInfo("breast-cancer", x.shape[1], 2, 1, natural_images=False)
    return Splits(full.subset(train_idx), full.subset(val_idx), full.subset(test_idx), info)


def load_task(task: str) -> Splits:
    """The splits of a benchmark task (see the module docstring), deterministic."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    if task == "cancer-mlp":
        return _cancer()
    splits = load_dataset("digits", seed=0)
    if task == "digits":
        return splits
    train_ds = splits.train
    assert isinstance(train_ds, ImageTensorDataset)
    if task == "digits-noisy":
        return Splits(_flip_labels(train_ds, 0.3, 2468), splits.val, splits.test, splits.info)
    if task == "digits-mlp-noisy":
        info = DatasetInfo("digits-features", 64, 10, 1, natural_images=False)
        return Splits(_flip_labels(_as_features(train_ds), 0.3, 4321),
                      _as_features(splits.val), _as_features(splits.test),  # type: ignore[arg-type]
                      info)
    if task == "digits-mlp-small":
        info = DatasetInfo("digits-features", 64, 10, 1, natural_images=False)
        _, few = stratified_split(train_ds.labels.numpy(), 300 / len(train_ds), seed=0)
        return Splits(_as_features(train_ds.subset(few)), _as_features(splits.val),
                      _as_features(splits.test), info)  # type: ignore[arg-type]
    if task == "digits-small":
        _, few = stratified_split(train_ds.labels.numpy(), 300 / len(train_ds), seed=0)
        return Splits(train_ds.subset(few), splits.val, splits.test, splits.info)
    _, keep = stratified_split(train_ds.labels.numpy(), 400 / len(train_ds), seed=0)
    rng = np.random.default_rng(1234)
    return Splits(
        train=_noisy(train_ds.subset(keep), rng, 0.3, 3),
        val=_noisy(splits.val, rng, 0.3, 3),  # type: ignore[arg-type]
        test=_noisy(splits.test, rng, 0.3, 3),  # type: ignore[arg-type]
        info=splits.info,
    )


def space(task: str = "digits") -> osh.ShapeSpace:
    """The grid of a task: WRN 40 shapes on 8×8 digits, or the 48-shape MLP grid."""
    if FAMILY[task] == "wrn":
        return osh.ShapeSpace(family="wrn", depth=DEPTHS, width=WIDTHS, in_channels=1,
                              image_size=8, num_classes=10)
    in_ch, classes = (30, 2) if task == "cancer-mlp" else (64, 10)
    return osh.ShapeSpace(family=_tables.MLP_FAMILY, depth=MLP_DEPTHS, width=MLP_WIDTHS,
                          in_channels=in_ch, image_size=1, num_classes=classes)


def done_rows(path: Path) -> set[tuple[str, int, float, int]]:
    """(task, depth, width, seed) of the rows already in ``path``."""
    if not path.exists():
        return set()
    with path.open() as fh:
        return {(r["task"], int(r["depth"]), float(r["width"]), int(r["seed"]))
                for r in csv.DictReader(fh)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per shape (0..n-1)")
    parser.add_argument("--only-seeds", nargs="+", type=int, default=None,
                        help="train only these seeds (e.g. a second process on another core)")
    parser.add_argument("--reverse", action="store_true",
                        help="work from the end of the list (a second process meets the first)")
    parser.add_argument("--tasks", nargs="+",
                        default=[t for t in TASKS if t not in CURVES_ONLY], choices=TASKS)
    parser.add_argument("--out", type=Path, default=DATA / "landscapes.csv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="2 shapes per task, 1 seed, 1 epoch, to "
                             "benchmarks/data/landscapes_quick.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    spaces = {t: space(t) for t in args.tasks}
    shapes = {t: sp.shapes for t, sp in spaces.items()}
    seeds = args.only_seeds if args.only_seeds is not None else range(args.seeds)
    epochs = dict(EPOCHS)
    if args.quick:
        shapes = {t: sp.shapes[:2] for t, sp in spaces.items()}
        seeds = range(1)
        epochs = {t: 1 for t in epochs}
        if args.out == DATA / "landscapes.csv":
            args.out = DATA / "landscapes_quick.csv"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = done_rows(args.out)
    new_file = not args.out.exists() or args.out.stat().st_size == 0
    data = {t: load_task(t) for t in args.tasks}
    # cheap MLP tasks first, then seed-major (a partial file is a complete landscape early on)
    todo = [(t, s, seed) for seed in seeds for t in args.tasks for s in shapes[t]
            if (t, s.depth, float(s.width), seed) not in done]
    todo.sort(key=lambda x: (FAMILY[x[0]] == "wrn", x[2]))
    if args.reverse:
        todo.reverse()
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
