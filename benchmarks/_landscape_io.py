"""Helpers of the landscape benchmarks: load the real landscapes, table objectives, headers.

Used by ``accuracy_model_error.py``, ``verification.py`` and ``depth_scaled.py``.

* A landscape is read from ``benchmarks/data/landscapes.csv`` (``benchmarks/landscapes.py``):
  per task, the shapes with at least ``min_seeds`` finite ``val_accuracy`` values (percent).
* **Truth** of a shape = the mean over its seeds. **Noise** = 2 × the pooled standard deviation
  of repeated trainings of one shape (paper Table 1: "2 std. dev.").
* **Table objective** of repetition ``r``: the k-th training of a shape returns seed
  ``perm_r(shape)[k mod n]``, a per-shape random order of its seeds drawn with ``r``.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import torch

import optuna_shape as osh
from optuna_shape import store as st
from optuna_shape.space.shape import Shape

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RESULTS = ROOT / "results"
LANDSCAPE_CSV = DATA / "landscapes.csv"
LATENCY_CSV = RESULTS / "latency_grid_cpu_8x8.csv"


@dataclass
class Landscape:
    task: str
    seeds: dict[Shape, list[float]]
    params: dict[Shape, int]
    latency: dict[int, dict[Shape, float]] = field(default_factory=dict)  # batch -> shape -> ms

    @property
    def shapes(self) -> list[Shape]:
        return sorted(self.seeds)

    @property
    def truth(self) -> dict[Shape, float]:
        return {s: float(np.mean(v)) for s, v in self.seeds.items()}

    @property
    def n_seeds(self) -> int:
        return min(len(v) for v in self.seeds.values())

    @property
    def noise(self) -> float:
        """2 × pooled standard deviation of the repeated trainings (NaN with one seed)."""
        return self.noise_of(self.shapes)

    def noise_of(self, shapes: list[Shape]) -> float:
        """2 × pooled standard deviation of the repeated trainings of ``shapes``."""
        var = [np.var(self.seeds[s], ddof=1) for s in shapes if len(self.seeds[s]) > 1]
        return 2.0 * math.sqrt(float(np.mean(var))) if var else math.nan

    @property
    def top_half(self) -> list[Shape]:
        """The more accurate half of the shapes (by truth), where searches end up."""
        t = self.truth
        ranked = sorted(self.shapes, key=lambda s: -t[s])
        return ranked[: len(ranked) // 2]

    def space(self) -> osh.ShapeSpace:
        return osh.ShapeSpace(family="wrn", depth=sorted({s.depth for s in self.seeds}),
                              width=sorted({s.width for s in self.seeds}), in_channels=1,
                              image_size=8, num_classes=10)


def load_landscapes(min_seeds: int = 2, path: Path = LANDSCAPE_CSV) -> list[Landscape]:
    """Every WRN task whose full depth × width grid has ``min_seeds`` seeds per shape."""
    if not path.exists():
        return []
    seeds: dict[str, dict[Shape, dict[int, float]]] = {}
    params: dict[str, dict[Shape, int]] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            v = float(row["val_accuracy"])
            if not math.isfinite(v):
                continue
            s = Shape(int(row["depth"]), float(row["width"]))
            seeds.setdefault(row["task"], {}).setdefault(s, {})[int(row["seed"])] = v
            params.setdefault(row["task"], {})[s] = int(row["params"])
    out = []
    for task, table in seeds.items():
        depths = sorted({s.depth for s in table})
        widths = sorted({s.width for s in table})
        if any(d < 10 or (d - 4) % 6 for d in depths):
            continue  # not a WRN grid (the MLP tasks of search_quality.py)
        grid = [Shape(d, w) for d in depths for w in widths]
        # use only the seeds every shape has, so all shapes are averaged over the same seeds
        common = set.intersection(*(set(table.get(s, {})) for s in grid))
        if len(common) < min_seeds:
            continue
        land = Landscape(task, {s: [table[s][k] for k in sorted(common)] for s in grid},
                         params[task])
        land.latency = load_latency(grid)
        out.append(land)
    order = {"digits": 0, "digits-hard": 1}
    return sorted(out, key=lambda la: order.get(la.task, 9))


def load_latency(shapes: list[Shape], path: Path = LATENCY_CSV) -> dict[int, dict[Shape, float]]:
    """Measured latencies (ms) per batch size from ``latency_grid.py``, for batches that cover
    every shape."""
    if not path.exists():
        return {}
    table: dict[int, dict[Shape, float]] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            if row.get("status") != "ok":
                continue
            s = Shape(int(row["depth"]), float(row["width"]))
            table.setdefault(int(row["batch"]), {})[s] = float(row["median_ms"])
    return {b: {s: t[s] for s in shapes} for b, t in table.items() if all(s in t for s in shapes)}


class TableObjective:
    """A "training" returns one stored seed of the shape (see the module docstring)."""

    def __init__(self, land: Landscape, rep: int) -> None:
        self.land = land
        rng = np.random.default_rng(1000 + rep)
        self.order = {s: rng.permutation(len(v)) for s, v in land.seeds.items()}
        self.count: dict[Shape, int] = {}
        self.calls: list[Shape] = []

    def __call__(self, shape: Shape) -> float:
        k = self.count.get(shape, 0)
        self.count[shape] = k + 1
        self.calls.append(shape)
        perm = self.order[shape]
        return float(self.land.seeds[shape][perm[k % len(perm)]])


def inject_latency(study: optuna.Study, latency: dict[Shape, float], hw: str) -> None:
    """Store a latency table as the study's screening measurements on hardware ``hw``."""
    st.store_measurements(study, hw, {s: {"latency_ms": ms} for s, ms in latency.items()})


@dataclass
class SearchRun:
    answer: Shape | None
    trainings: int
    sample_trainings: int
    verify_values: list[float]  # observed accuracies of the verify-stage trainings, in order
    verify_shapes: list[Shape]


def run_search(land: Landscape, goal: str, floor: float | None, rep: int,
               latency_batch: int = 1, strategy: str = "standard") -> SearchRun:
    """One real ShapeSampler search (in-memory storage) on the table objective."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = TableObjective(land, rep)
    hw = f"table-latency-b{latency_batch}" if goal == "latency" else None
    space = land.space()
    sampler = osh.ShapeSampler(space, osh.Constraints(min_accuracy=floor), goal=goal,
                               strategy=strategy, sampling="interval", seed=rep,
                               target_hardware=hw)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if hw is not None:
        inject_latency(study, land.latency[latency_batch], hw)
    study.optimize(lambda t: table(osh.suggest_shape(t, space)),
                   n_trials=2 * len(land.shapes) + 10)
    sample = 0
    vals: list[float] = []
    vshapes: list[Shape] = []
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        stage = t.user_attrs.get("stage")
        if stage == "verify":
            vals.append(float(t.value))
            vshapes.append(Shape(int(t.params["depth"]), float(t.params["width"])))
        elif stage == "sample":
            sample += 1
    return SearchRun(osh.best_shape(study), len(table.calls), sample, vals, vshapes)


def machine() -> str:
    """nproc, CPU model, torch version."""
    from optuna_shape.measurement.hardware import device_name

    return (f"{os.cpu_count()} CPUs ({device_name('cpu')}), {platform.system()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"optuna {optuna.__version__}")


def header(title: str, script: str) -> list[str]:
    args = " ".join(sys.argv[1:])
    return [f"# {title}", "",
            f"Command: `PYTHONPATH=. python benchmarks/{script}{' ' + args if args else ''}`  ",
            f"Machine: {machine()}  ",
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]


def describe(land: Landscape) -> str:
    t = land.truth
    return (f"`{land.task}`: {len(land.shapes)} shapes × {land.n_seeds} seeds, truth "
            f"{min(t.values()):.1f}–{max(t.values()):.1f} %, noise (2 std) {land.noise:.2f} points "
            f"(all shapes), {land.noise_of(land.top_half):.2f} (more accurate half)")
