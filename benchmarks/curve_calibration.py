"""Calibration of the shared learning-curve model on recorded learning curves.

For every task of ``benchmarks/data/curves/curves.csv`` and every number of training curves
``n`` in (1, 3, 5, 10, 20), repeatedly draw ``n`` completed curves at random, fit
:class:`optuna_shape.models.learning_curves.CurveModel` to them (feature ``log10(params)``), and
forecast the final accuracy of every other curve from each prefix length ``k = 1..E−1``.
Reported per ``k``: coverage of the central 50/80/95 % predictive intervals, mean absolute
error of the mean and mean width of the 80 % interval; against the earlier projection
(:func:`project`, the package's rule before the curve model: Student-t prediction interval,
needs ≥ 5 curves), the same model without the feature, and the naive "last value" predictor.

A second section, *extrapolation in network size*, asks how far the forecast can be trusted
for a network unlike those it learned from: the model learns from 5 curves of the smaller (or
the larger) half of the networks, and the other curves are forecast from every prefix of the
first two thirds of a training (where the search stops trainings), grouped by whether the
forecast network's parameter count is within a factor of 2 of the training networks' range
(*in range*), more than twice the largest (*larger*) or under half the smallest (*smaller*).
Reported: coverage of the 80 % interval, MAE, and the share of forecasts that put the true
final accuracy beyond their 1 % upper tail (P(final ≥ truth) < 0.01: what the search's
"under a 1 % chance" stop would have stopped although the training reached it; about 0.01
when calibrated).

``digits`` (10 epochs) and ``digits-hard`` (12 epochs) are the tuning tasks; ``digits-mlp-noisy``
(20 epochs), ``cancer-mlp`` (30) and ``digits-noisy`` (16) are held out — never used to choose
the model's prior — and reported in their own section when the file holds them (a task may be
partial: whatever complete curves are there are used).

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/curve_calibration.py
    PYTHONPATH=. .venv/bin/python benchmarks/curve_calibration.py --reps 4 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices; threads only fight on a shared machine

import numpy as np  # noqa: E402
from scipy.special import stdtrit  # noqa: E402

ROOT = Path(__file__).absolute().parent
sys.path.insert(0, str(ROOT))

import _tables as T  # noqa: E402

from optuna_shape.models.learning_curves import CurveModel  # noqa: E402

CURVES_CSV = ROOT / "data" / "curves" / "curves.csv"
RESULT = ROOT / "results" / "curve_calibration.md"
COMMAND = "PYTHONPATH=. .venv/bin/python benchmarks/curve_calibration.py"
TUNING = ("digits", "digits-hard")
HELD_OUT = (*T.HELD_OUT_TASKS, "digits-noisy")  # nothing of the curve model chosen on them
N_TRAIN = (1, 3, 5, 10, 20)
LEVELS = (0.5, 0.8, 0.95)
MAX_TARGETS = 60
"""Held-out curves forecast per repetition (a random subset when more are available)."""


@dataclass
class Task:
    """The complete curves of one task."""

    name: str
    epochs: int
    curves: np.ndarray  # (n, epochs), percent
    features: np.ndarray  # log10(params)
    skipped: int = 0


@dataclass
class Cell:
    """Accumulated forecasts of one (n, k) cell."""

    covered: dict[str, list[list[bool]]] = field(default_factory=dict)
    error: dict[str, list[float]] = field(default_factory=dict)
    width: dict[str, list[float]] = field(default_factory=dict)

    def add(self, arm: str, truth: float, mean: float,
            intervals: list[tuple[float, float]] | None) -> None:
        """Record one forecast of ``arm`` (intervals at ``LEVELS``, or none)."""
        self.error.setdefault(arm, []).append(abs(mean - truth))
        if intervals is not None:
            self.covered.setdefault(arm, []).append([lo <= truth <= hi for lo, hi in intervals])
            self.width.setdefault(arm, []).append(intervals[1][1] - intervals[1][0])

    def coverage(self, arm: str) -> list[float] | None:
        """Coverage per level, or ``None`` when the arm gave no intervals."""
        rows = self.covered.get(arm)
        return list(np.mean(np.array(rows), axis=0)) if rows else None

    def mae(self, arm: str) -> float | None:
        """Mean absolute error, or ``None``."""
        vals = self.error.get(arm)
        return float(np.mean(vals)) if vals else None

    def mean_width(self, arm: str) -> float | None:
        """Mean width of the 80 % interval, or ``None``."""
        vals = self.width.get(arm)
        return float(np.mean(vals)) if vals else None


def load_tasks(path: Path = CURVES_CSV) -> dict[str, Task]:
    """Complete, finite curves per task; rows cut short by a concurrent writer are skipped."""
    rows: dict[str, list[tuple[list[float], float]]] = {}
    epochs: dict[str, int] = {}
    skipped: dict[str, int] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            task = row.get("task") or ""
            try:
                e = int(row["epochs"])
                curve = [float(v) for v in (row["curve"] or "").split(";")]
                params = float(row["params"])
            except (KeyError, TypeError, ValueError):
                skipped[task] = skipped.get(task, 0) + 1
                continue
            if len(curve) != e or not all(map(math.isfinite, curve)) or params <= 0:
                skipped[task] = skipped.get(task, 0) + 1
                continue
            epochs.setdefault(task, e)
            if e != epochs[task]:
                skipped[task] = skipped.get(task, 0) + 1
                continue
            rows.setdefault(task, []).append((curve, math.log10(params)))
    return {name: Task(name, epochs[name], np.array([c for c, _ in rs]),
                       np.array([f for _, f in rs]), skipped.get(name, 0))
            for name, rs in rows.items()}


def project(prefix: list[float], refs: list[tuple[list[float], float]], epochs: int,
            min_curves: int = 5) -> tuple[float, float, int] | None:
    """The earlier projection (the package's rule before the curve model, kept here as the
    baseline): least squares of the final accuracy on the accuracy at epoch ``k`` over the
    reference curves (slope clipped at 0), Student-t prediction interval; ``(mean, scale,
    dof)``, or ``None`` with fewer than ``min_curves`` references or ``k ≥ E``."""
    k = len(prefix)
    if k == 0 or k >= epochs:
        return None
    pairs = [(float(c[k - 1]), float(f)) for c, f in refs
             if len(c) == epochs and math.isfinite(f) and math.isfinite(c[k - 1])]
    n = len(pairs)
    if n < max(3, min_curves):
        return None
    xs, ys = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    sxx = float(np.sum((xs - xs.mean()) ** 2))
    slope = max(0.0, float(np.sum((xs - xs.mean()) * (ys - ys.mean()))) / sxx) if sxx > 0 \
        else 0.0
    resid = ys - ys.mean() - slope * (xs - xs.mean())
    s = math.sqrt(float(np.sum(resid**2)) / (n - 2))
    x = float(prefix[-1])
    lever = (x - xs.mean()) ** 2 / sxx if sxx > 0 else 0.0
    scale = max(s, 1e-9) * math.sqrt(1.0 + 1.0 / n + lever)
    return float(ys.mean() + slope * (x - xs.mean())), scale, n - 2


def _project_intervals(prefix: list[float], refs: list[tuple[list[float], float]],
                       epochs: int) -> tuple[float, list[tuple[float, float]]] | None:
    """Mean and intervals of the earlier projection, or ``None`` where it does not apply."""
    proj = project(prefix, refs, epochs)
    if proj is None:
        return None
    mean, scale, dof = proj
    out = []
    for level in LEVELS:
        half = float(stdtrit(dof, 0.5 + level / 2.0)) * scale
        out.append((mean - half, mean + half))
    return mean, out


def evaluate(task: Task, n: int, reps: int) -> dict[int, Cell]:
    """Forecast every other curve from every prefix, ``reps`` random training sets of ``n``."""
    cells = {k: Cell() for k in range(1, task.epochs)}
    total = len(task.curves)
    if total <= n:
        return cells
    for rep in range(reps):
        rng = np.random.default_rng([rep, n, task.epochs, total])
        order = rng.permutation(total)
        train, rest = order[:n], order[n:]
        if len(rest) > MAX_TARGETS:
            rest = rng.choice(rest, MAX_TARGETS, replace=False)
        curves = task.curves[train]
        with_f = CurveModel.fit(curves.tolist(), task.epochs, task.features[train].tolist())
        refs = [(list(c), float(c[-1])) for c in curves]
        for i in rest:
            curve, truth, feat = task.curves[i], float(task.curves[i, -1]), task.features[i]
            for k in range(1, task.epochs):
                prefix = curve[:k].tolist()
                cell = cells[k]
                fc = with_f.forecast(prefix, float(feat))
                cell.add("model", truth, fc.mean, fc.intervals(LEVELS))
                plain = with_f.forecast(prefix)
                cell.add("no feature", truth, plain.mean, [plain.interval(0.8)] * 3)
                cell.add("last value", truth, prefix[-1], None)
                proj = _project_intervals(prefix, refs, task.epochs)
                if proj is not None:
                    cell.add("project", truth, proj[0], proj[1])
    return cells


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _cov(cell: Cell, arm: str) -> str:
    cov = cell.coverage(arm)
    return "—" if cov is None else " / ".join(f"{c:.2f}" for c in cov)


def detail_table(task: Task, results: dict[int, dict[int, Cell]]) -> list[str]:
    """One row per (n, k)."""
    lines = ["| n | k | model cov 50/80/95 | model MAE | model w80 | no-feature MAE | "
             "no-feature cov80 | project cov 50/80/95 | project MAE | project w80 | "
             "last-value MAE |",
             "|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for n, cells in results.items():
        for k, cell in cells.items():
            plain = cell.coverage("no feature")
            lines.append(
                f"| {n} | {k} | {_cov(cell, 'model')} | {_fmt(cell.mae('model'))} | "
                f"{_fmt(cell.mean_width('model'))} | {_fmt(cell.mae('no feature'))} | "
                f"{_fmt(plain[1] if plain else None)} | {_cov(cell, 'project')} | "
                f"{_fmt(cell.mae('project'))} | {_fmt(cell.mean_width('project'))} | "
                f"{_fmt(cell.mae('last value'))} |")
    return lines


def phases(epochs: int) -> dict[str, list[int]]:
    """Early / mid / late prefix lengths: thirds of ``1..E−1``."""
    ks = list(range(1, epochs))
    a, b = math.ceil(len(ks) / 3), math.ceil(2 * len(ks) / 3)
    return {"early": ks[:a], "mid": ks[a:b], "late": ks[b:]}


def pooled(cells: dict[int, Cell], ks: list[int], arm: str) -> tuple[float | None, ...]:
    """Coverage of the 80 % interval, MAE and mean 80 % width over the prefixes ``ks``."""
    cov = [row[1] for k in ks for row in cells[k].covered.get(arm, [])]
    err = [e for k in ks for e in cells[k].error.get(arm, [])]
    wid = [w for k in ks for w in cells[k].width.get(arm, [])]
    return (float(np.mean(cov)) if cov else None, float(np.mean(err)) if err else None,
            float(np.mean(wid)) if wid else None)


def headline_table(task: Task, results: dict[int, dict[int, Cell]]) -> list[str]:
    """Coverage of the 80 % interval (and MAE) per phase and n, model vs project."""
    ph = phases(task.epochs)
    head = " | ".join(f"{p} (k {ks[0]}–{ks[-1]})" for p, ks in ph.items())
    lines = [f"| n | arm | {head} |", "|---:|---|" + "---|" * len(ph)]
    for n, cells in results.items():
        for arm in ("model", "no feature", "project"):
            vals = [pooled(cells, ks, arm) for ks in ph.values()]
            if all(v[1] is None for v in vals):
                continue
            row = " | ".join("—" if c is None else f"{c:.2f} (MAE {e:.2f}, w80 {w:.2f})"
                             for c, e, w in vals)
            lines.append(f"| {n} | {arm} | {row} |")
        vals = [pooled(cells, ks, "last value") for ks in ph.values()]
        lines.append(f"| {n} | last value | " + " | ".join(f"— (MAE {e:.2f})" for _, e, _ in vals)
                     + " |")
    return lines


def summary_rows(task: Task, results: dict[int, dict[int, Cell]],
                 label: str) -> list[str]:
    """Rows of the overview table: 80 % coverage per phase, model and project."""
    ph = phases(task.epochs)
    out = []
    for n, cells in results.items():
        model = [pooled(cells, ks, "model")[0] for ks in ph.values()]
        proj = [pooled(cells, ks, "project")[0] for ks in ph.values()]
        out.append(f"| {label} | {n} | " + " | ".join(_fmt(c) for c in model) + " | "
                   + " | ".join(_fmt(c) for c in proj) + " |")
    return out


def flags(task: Task, results: dict[int, dict[int, Cell]], low: float = 0.7,
          high: float = 0.9) -> list[str]:
    """Where the model's 80 % interval misses its level by more than 0.1, in words."""
    out = []
    for n, cells in results.items():
        for phase, ks in phases(task.epochs).items():
            cov = pooled(cells, ks, "model")[0]
            if cov is not None and cov > high:
                out.append(f"n = {n}, {phase}: {cov:.2f} (under-confident: too wide)")
            elif cov is not None and cov < low:
                out.append(f"n = {n}, {phase}: {cov:.2f} (over-confident: too narrow)")
    return out


EXTRAPOLATION_FACTOR = 2.0
"""A forecast network counts as *in range* within this factor of the training networks'
parameter counts (the search does not stop a training outside it)."""
EXTRAPOLATION_TRAIN = 5
"""Curves the model learns from in the extrapolation section."""


def extrapolation(task: Task, reps: int) -> dict[str, list[tuple[bool, float, bool]]]:
    """Forecasts of networks inside and outside the training networks' size range: per group,
    ``(truth inside the 80 % interval, absolute error, P(final ≥ truth) < 0.01)`` for every
    prefix of the first two thirds of a training (module docstring)."""
    out: dict[str, list[tuple[bool, float, bool]]] = {"in range": [], "larger": [],
                                                      "smaller": []}
    margin = math.log10(EXTRAPOLATION_FACTOR)
    median = float(np.median(task.features))
    ks = [k for k in range(1, task.epochs) if k <= 2 * task.epochs // 3]
    for rep in range(reps):
        for half in ("smaller", "larger"):
            rng = np.random.default_rng([rep, 0 if half == "smaller" else 1, task.epochs])
            pool = np.flatnonzero(task.features <= median if half == "smaller"
                                  else task.features >= median)
            if len(pool) < EXTRAPOLATION_TRAIN:
                continue
            train = rng.choice(pool, EXTRAPOLATION_TRAIN, replace=False)
            model = CurveModel.fit(task.curves[train].tolist(), task.epochs,
                                   task.features[train].tolist())
            lo, hi = task.features[train].min(), task.features[train].max()
            rest = np.setdiff1d(np.arange(len(task.curves)), train)
            if len(rest) > MAX_TARGETS:
                rest = rng.choice(rest, MAX_TARGETS, replace=False)
            for i in rest:
                f, truth = float(task.features[i]), float(task.curves[i, -1])
                group = ("in range" if lo - margin <= f <= hi + margin
                         else "larger" if f > hi else "smaller")
                for k in ks:
                    fc = model.forecast(task.curves[i, :k].tolist(), f)
                    a, b = fc.interval(0.8)
                    out[group].append((a <= truth <= b, abs(fc.mean - truth),
                                       fc.prob_at_least(truth) < 0.01))
    return out


def extrapolation_rows(task: Task, label: str, reps: int) -> list[str]:
    """Rows of the extrapolation table for one task."""
    groups = extrapolation(task, reps)
    cells = []
    for rows in groups.values():
        if not rows:
            cells.append("—")
            continue
        cov, err, tail = (float(np.mean([r[j] for r in rows])) for j in range(3))
        cells.append(f"{cov:.2f} / {err:.2f} / {tail:.3f} ({len(rows)})")
    return [f"| {label} | " + " | ".join(cells) + " |"]


def task_section(task: Task, reps: int) -> tuple[list[str], dict[int, dict[int, Cell]]]:
    """Markdown section of one task."""
    results = {n: evaluate(task, n, reps) for n in N_TRAIN if n < len(task.curves)}
    finals = task.curves[:, -1]
    lines = [f"## {task.name} ({task.epochs} epochs)", "",
             f"{len(task.curves)} complete curves ({task.skipped} rows skipped), final accuracy "
             f"{finals.min():.1f}–{finals.max():.1f} %, log10(params) "
             f"{task.features.min():.2f}–{task.features.max():.2f}; {reps} repetitions per n, "
             f"up to {MAX_TARGETS} held-out curves each.", "",
             "Coverage of the 80 % interval per phase (MAE and mean 80 % width in points):", ""]
    lines += headline_table(task, results)
    off = flags(task, results)
    lines += ["", "80 % coverage outside 0.70–0.90 (model, pooled per phase): "
              + ("; ".join(off) if off else "none") + "."]
    lines += ["", "<details><summary>Per epoch</summary>", ""]
    lines += detail_table(task, results)
    lines += ["", "</details>", ""]
    return lines, results


def write_report(sections: list[list[str]], overview: list[str], missing: list[str], out: Path,
                 reps: int, seconds: float, extrap: list[str] = ()) -> None:
    """The markdown file."""
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    lines = ["# Learning-curve model: calibration on recorded curves", "",
             f"Command: `{COMMAND}`  ", f"Date: {date}  ", f"Machine: {T.machine_info()}  ",
             f"Runtime: {seconds:.0f} s, {reps} repetitions per (task, n).", "",
             HOW_TO_READ, "",
             "## Overview: coverage of the 80 % interval", "",
             "| task | n | model early | model mid | model late | project early | "
             "project mid | project late |",
             "|---|---:|---:|---:|---:|---:|---:|---:|", *overview, ""]
    for sec in sections:
        lines += sec
    if extrap:
        lines += ["## Extrapolation in network size", "",
                  f"The model learns from {EXTRAPOLATION_TRAIN} curves of the smaller or the "
                  "larger half of the networks (by parameter count; both, in turn, per "
                  "repetition); every other curve is forecast from each prefix of the first two "
                  "thirds of a training. *in range*: the network's parameter count is within a "
                  f"factor of {EXTRAPOLATION_FACTOR:g} of the training networks' range; "
                  f"*larger* / *smaller*: beyond it. Cells: 80 % coverage / MAE (points) / "
                  "share with P(final ≥ truth) < 0.01 (forecasts).", "",
                  "| task | in range | larger | smaller |", "|---|---|---|---|", *extrap, ""]
    if missing:
        lines += ["## Held out", "", f"Not in the curves file when this ran: "
                  f"{', '.join(missing)}.", ""]
    lines += ["## Conclusions", "", CONCLUSIONS, ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


HOW_TO_READ = (
    "**How to read.** *n* = completed training curves the model learned from (drawn at random "
    "from all shapes and seeds of the task), *k* = epochs seen of the curve being forecast; "
    "every other curve of the task (up to 60 per repetition) is forecast from each k. "
    "*cov 50/80/95* = share of the true final accuracies inside the central 50/80/95 % "
    "predictive interval: a calibrated model hits the level (0.80 for the 80 % interval; "
    "higher = under-confident, wide intervals; lower = over-confident). *MAE* = mean absolute "
    "error of the predicted mean, *w80* = mean width of the 80 % interval, in accuracy points. "
    "*model* = `CurveModel` with feature log10(params); *no feature* = the same model without "
    "it (its cov column is the 80 % interval); *project* = the earlier projection "
    "(`project`, the package's rule before the curve model, only from 5 curves); "
    "*last value* = predict the final accuracy "
    "by the accuracy at epoch k (no interval). Early / mid / late = the first, second and last "
    "third of k = 1..E−1, pooled.")

CONCLUSIONS = "\n".join([
    "Written from the tuning tasks (16 repetitions); the held-out section, when present, was "
    "not looked at when the model was chosen — judge it by its own flags line.",
    "",
    "- **Calibrated from 3 curves on.** The 80 % interval covers 0.77–0.88 of the finals in "
    "every phase with n ≥ 3 (0.79–0.88 with n = 3, 0.81–0.86 with n = 20). Where today's "
    "projection applies (n ≥ 5) the two are about equally calibrated (within a few points); "
    "below 5 curves the projection says nothing.",
    "- **One curve: under-confident.** With n = 1 the mid and late 80 % intervals cover "
    "0.92–0.97 (too wide: the slope and noise are the prior's). Early on digits the 50 % "
    "interval covers only 0.20–0.30 and the 80 % one swings from 0.99 (k = 1) to 0.67 "
    "(k = 3): one curve cannot tell how the final depends on the early accuracy.",
    "- **Tails.** With few curves the 95 % interval is too wide (0.95–1.00 with n = 3); with "
    "many curves on digits the 50 % interval is too wide (0.51–0.67 with n = 20) and the 95 % "
    "one slightly too narrow in the middle epochs (0.91–0.93): the residuals are "
    "heavier-tailed than normal (a few unstable width-0.25 networks). The projection has the "
    "same pattern.",
    "- **Early digits slightly under-confident** (0.85–0.89 at k = 1 with n ≥ 10); late "
    "digits-hard with n = 3 too (0.86–0.92 at k ≥ 7: the noise floor from 3 curves is "
    "cautious).",
    "- **The feature pays on crossing curves.** On digits-hard (large networks start slowly "
    "and overtake) log10(params) cuts the early error from 7.3 to 4.0 points and the 80 % "
    "width from 24 to 13 points with n = 20 (4.9 vs 7.7 with n = 5); on digits, where the "
    "final accuracy hardly depends on size given the early curve, it changes little "
    "(0.93 vs 1.02).",
    "- **Last value** is useless early (18–37 points off) and the best point forecast in the "
    "last third of digits (MAE 0.13–0.14 vs the model's 0.16–0.24; 0.16–0.17 from 5 curves "
    "on): most curves do not move after the "
    "last learning-rate step, so the median change is 0 while the model (like the projection) "
    "predicts the mean change. For a stop rule, which needs P(final ≥ threshold), calibration "
    "matters more than this gap of a few hundredths of a point.",
    "- **Networks unlike the training curves' (extrapolation in size).** Learning from the "
    "smaller or the larger half of the networks, forecasts of a network more than twice as "
    "large or under half as large as any of them are off by 1.3–4 times the error in range "
    "on four of five tasks (not on cancer-mlp, whose curves hardly depend on size), their 80 % "
    "interval covers 0.37–0.52 where it covers 0.73–0.79 in range on digits-hard (smaller) "
    "and digits-mlp-noisy (both sides), and they put the true final beyond their 1 % upper "
    "tail 4–5 times as often as forecasts in range for smaller networks on the noisy-label "
    "tasks (0.045–0.066 against 0.011–0.014) and twice as often for larger ones on digits-hard "
    "(0.020 against 0.009). That tail is what the search's \"under a 1 % chance\" stop relies "
    "on; the search therefore does not stop a training on its forecast until a network within "
    "a factor of 2 of its training work has completed its curve.",
])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=16, help="random training sets per (task, n)")
    ap.add_argument("--tasks", nargs="*", default=None, help="restrict to these tasks")
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--csv", type=Path, default=CURVES_CSV, help="the recorded curves")
    args = ap.parse_args(argv)
    start = time.time()
    tasks = load_tasks(args.csv)
    wanted = args.tasks or [*TUNING, *HELD_OUT]
    sections, overview, missing, extrap = [], [], [], []
    for name in wanted:
        if name not in tasks:
            missing.append(name)
            continue
        lines, results = task_section(tasks[name], args.reps)
        label = name
        if name in HELD_OUT:
            lines[0] = lines[0].replace("## ", "## Held out: ", 1)
            lines[1:1] = ["", "Held out: nothing in the model was chosen on this task. The "
                          "file may still be growing; these are the complete curves it held "
                          "when this ran."]
            label = f"{name} (held out)"
        sections.append(lines)
        overview += summary_rows(tasks[name], results, label)
        extrap += extrapolation_rows(tasks[name], label, args.reps)
        print(f"{name}: {time.time() - start:.0f} s", file=sys.stderr)
    write_report(sections, overview, [m for m in missing if m in HELD_OUT], args.out,
                 args.reps, time.time() - start, extrap)
    print(f"wrote {args.out} in {time.time() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
