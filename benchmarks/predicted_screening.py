"""Predicted screening versus measuring every shape, on a grid of 2,040 wide-ResNet shapes.

Grid (default): depths 10-76 step 6 (12) × widths 0.25-1.94 step 0.01 (170), 8×8×1 inputs,
10 classes, batch 1, CPU, 1 thread, warm-up 1, median of 5 runs — every latency measured with
:func:`optuna_shape.measurement.screening.measure_shape`, the function the sampler's screening uses.

One run does, side by side:

1. **Live, timed**: predicted screening with real measurements (:func:`screen_costs` on the
   features of :mod:`optuna_shape.models.cost_model`) at the median latency of the grid as the
   limit, then measuring every shape (skipped when ``--cache`` holds the full grid: the report then
   says the exhaustive time is the cached one). Ratio = exhaustive wall time / predicted wall
   time.
2. **Replay, every limit** (5th-95th percentile of the exhaustive latencies): the predicted
   screening again, its measurements looked up in the exhaustive table, so the only difference
   from the truth is the model: shapes wrongly accepted (predicted within the limit, over it in
   the table; each re-measured three times to tell a timing spike in the table from a wrong
   prediction — still over must be 0), wrongly rejected, measured vs predicted, held-out error
   of the model (leave-one-out on its measured shapes, and against the exhaustive table on every
   shape it predicted), interval coverage.

Usage::

    PYTHONPATH=. python benchmarks/predicted_screening.py            # ~10 CPU-min first run
    PYTHONPATH=. python benchmarks/predicted_screening.py --quick    # 2 depths x 12 widths
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import optuna_shape as osh
from optuna_shape.measurement.flops import shape_macs
from optuna_shape.measurement.screening import MeasurementSettings, measure_shape
from optuna_shape.models.cost_model import Z_DEFAULT, screen_costs, shape_features

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "data" / "predicted_screening_grid.csv"
PERCENTILES = (5, 10, 25, 50, 75, 90, 95)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs=3, default=[10, 76, 6], metavar=("LO", "HI", "STEP"))
    p.add_argument("--widths", type=float, nargs=3, default=[0.25, 1.94, 0.01],
                   metavar=("LO", "HI", "STEP"))
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--z", type=float, default=Z_DEFAULT)
    p.add_argument("--cache", type=Path, default=CACHE,
                   help="CSV of the exhaustive measurement (read when it covers the grid)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: depths 10 16, widths 0.25-0.36, 2 runs, no cache")
    a = p.parse_args(argv)
    if a.quick:
        a.depths, a.widths, a.cache = [10, 16, 6], [0.25, 0.36, 0.01], None
        a.warmup, a.repeats = 0, 2
    return a


def space_of(a: argparse.Namespace) -> osh.ShapeSpace:
    return osh.ShapeSpace("wrn", depth=tuple(a.depths), width=tuple(a.widths), in_channels=1,
                          num_classes=10, image_size=8)


def features(space: osh.ShapeSpace) -> np.ndarray:
    shapes = space.shapes
    return shape_features([space.param_count(s) for s in shapes],
                          [shape_macs(space, s) for s in shapes],
                          [s.depth for s in shapes], [s.width for s in shapes])


def measurer(space: osh.ShapeSpace, settings: MeasurementSettings):  # noqa: ANN201
    def measure(i: int) -> float | None:
        rec = measure_shape(space, space.shapes[i], settings, latency=True, energy=False)
        return rec.get("latency_ms")
    return measure


def read_cache(path: Path | None, space: osh.ShapeSpace) -> tuple[dict[int, float], float] | None:
    if path is None or not path.exists():
        return None
    index = {s.key: i for i, s in enumerate(space.shapes)}
    lat: dict[int, float] = {}
    total = 0.0
    with path.open() as f:
        for row in csv.DictReader(f):
            i = index.get(osh.Shape(int(row["depth"]), float(row["width"])).key)
            if i is not None:
                lat[i] = float(row["latency_ms"])
                total += float(row["wall_s"])
    return (lat, total) if len(lat) == len(space) else None


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    space = space_of(a)
    settings = MeasurementSettings(device="cpu", batch_size=1, threads=1, warmup=a.warmup,
                                   repeats=a.repeats)
    t0 = time.perf_counter()
    x = features(space)
    t_feat = time.perf_counter() - t0
    measure = measurer(space, settings)
    load0 = os.getloadavg()

    cached = read_cache(a.cache, space)
    # the live limit: median of the cache, else of a quick probe of the design (first run)
    probe_limit = None if cached is None else float(np.median(list(cached[0].values())))
    limit_source = "median of the cached grid"
    live_rows: list[tuple[int, float, float]] = []  # (index, latency, wall_s)

    def live_measure(i: int) -> float | None:
        t = time.perf_counter()
        v = measure(i)
        live_rows.append((i, v if v is not None else math.nan, time.perf_counter() - t))
        return v

    if probe_limit is None:  # first run: the predicted screening needs a limit before the grid
        design_only = screen_costs(x, live_measure, None, z=a.z)
        probe_limit = float(np.median([v for v in design_only.measured.values() if v]))
        limit_source = "median of the initial design's measurements"
        t_live0 = time.perf_counter()
        live = screen_costs(x, live_measure, probe_limit, z=a.z,
                            measured=dict(design_only.measured))
        t_live = time.perf_counter() - t_live0 + sum(w for _, _, w in live_rows[:len(
            design_only.measured)]) + t_feat
    else:
        t_live0 = time.perf_counter()
        live = screen_costs(x, live_measure, probe_limit, z=a.z)
        t_live = time.perf_counter() - t_live0 + t_feat

    if cached is None:
        t_ex0 = time.perf_counter()
        exhaustive: dict[int, float] = {}
        walls: dict[int, float] = {}
        for i in range(len(space)):
            t = time.perf_counter()
            v = measure(i)
            walls[i] = time.perf_counter() - t
            exhaustive[i] = v if v is not None else math.nan
        t_ex = time.perf_counter() - t_ex0
        ex_source = "measured in this run, after the predicted screening"
        if a.cache is not None:
            a.cache.parent.mkdir(parents=True, exist_ok=True)
            with a.cache.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["depth", "width", "params", "macs", "latency_ms", "wall_s"])
                for i, s in enumerate(space.shapes):
                    w.writerow([s.depth, s.width, space.param_count(s), shape_macs(space, s),
                                round(exhaustive[i], 5), round(walls[i], 5)])
    else:
        exhaustive, t_ex = cached
        where = (a.cache.relative_to(HERE.parent) if a.cache.is_relative_to(HERE.parent)
                 else a.cache)
        ex_source = (f"cached in `{where}`: sum of the per-shape wall times of the run that "
                     "wrote it")
    load1 = os.getloadavg()
    truth = np.array([exhaustive[i] for i in range(len(space))])

    twice = [(v, truth[i]) for i, v, _ in live_rows
             if cached is None and not math.isnan(v) and not math.isnan(truth[i])]
    diffs = np.array([abs(a_ / b_ - 1) for a_, b_ in twice])
    noise = (float(np.median(diffs)), float(np.quantile(diffs, 0.9))) if diffs.size \
        else (None, None)

    # ---- replay at every limit --------------------------------------------------------------
    rows = []
    for pct in PERCENTILES:
        limit = float(np.nanpercentile(truth, pct))
        res = screen_costs(x, lambda i: None if math.isnan(truth[i]) else float(truth[i]),
                           limit, z=a.z)
        acc = set(res.feasible)
        wrong = [i for i in acc if truth[i] > limit]
        wrong_acc = len(wrong)
        # the table holds one measurement per shape: re-measure each wrongly accepted shape
        # three times, so a timing spike in the table is told apart from a wrong prediction
        still = sum(1 for i in wrong
                    if float(np.nanmedian([measure(i) or math.nan for _ in range(3)])) > limit)
        wrong_rej = sum(1 for i in range(len(space)) if i not in acc and truth[i] <= limit)
        pred = np.array(sorted(res.predicted))
        rel = np.abs(np.array([res.predicted[i][0] for i in pred]) / truth[pred] - 1) \
            if pred.size else np.array([])
        cover = float(np.mean([res.predicted[i][1] <= truth[i] <= res.predicted[i][2]
                               for i in pred])) if pred.size else math.nan
        s = res.summary()
        rows.append((pct, limit, len(res.measured), len(res.predicted), wrong_acc, still,
                     wrong_rej,
                     int(np.sum(truth <= limit)), s, rel, cover))

    # ---- report -------------------------------------------------------------------------------
    cmd = "PYTHONPATH=. python benchmarks/predicted_screening.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    lines = [
        "# Predicted screening vs measuring every shape", "",
        f"Command: `{cmd.strip()}`  ",
        f"Machine: {os.cpu_count()} CPUs, {platform.system()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average "
        f"{load0[0]:.2f} at start, {load1[0]:.2f} after the live part (shared machine)  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"Grid: wide-ResNet, depths {a.depths[0]}-{a.depths[1]} step {a.depths[2]} × widths "
        f"{a.widths[0]}-{a.widths[1]} step {a.widths[2]} = **{len(space)} shapes**, 8×8×1 input, "
        f"batch 1, CPU, 1 thread, warm-up {a.warmup}, median of {a.repeats} runs; interval "
        f"half-width z = {a.z:g}. Widths that round to the same channel counts are distinct "
        "shapes of the grid with equal networks.", "",
        "## Live: wall time, side by side", "",
        f"Limit: latency ≤ {probe_limit:.4g} ms ({limit_source}). Predicted screening "
        f"(features, real measurements of {len(live.measured)} shapes, {live.fits} fits): "
        f"**{t_live:.1f} s**. Measuring all {len(space)} shapes: **{t_ex:.1f} s** "
        f"({ex_source}). Ratio: **{t_ex / t_live:.1f}×** faster; "
        f"{len(live.predicted)} shapes predicted ({len(live.predicted) / len(space):.0%}).", "",
        f"Against the exhaustive table: shapes accepted by the live predicted screening but "
        f"over the limit there: {sum(1 for i in live.feasible if truth[i] > probe_limit)} "
        f"(of which predicted, not measured: "
        f"{sum(1 for i in live.feasible if i in live.predicted and truth[i] > probe_limit)}; "
        "a measured shape can differ between two measurements by timing noise).", "",
        f"Timing noise of this machine: shapes measured twice (by the live predicted "
        f"screening and by the exhaustive pass) differ by a median of {_pct(noise[0])} and a "
        f"90th percentile of {_pct(noise[1])} between the two measurements"
        + (" (exhaustive pass cached: not measured twice in this run)." if noise[0] is None
           else "."), "",
        "## Replay: every limit", "",
        "Measurements looked up in the exhaustive table (no timing noise between the two), so "
        "wrong decisions are the model's alone. *Wrongly accepted*: judged within the limit, "
        "over it in the table; *still over*: of those, how many are over the limit again when "
        "measured three more times (median) — the rest were timing spikes in the table, not "
        "wrong predictions. Held-out error: leave-one-out on the model's measured shapes "
        "(what a user without the table sees) and against the table on every predicted shape.",
        "",
        "| limit (percentile) | limit ms | feasible (truth) | measured | predicted | wrongly "
        "accepted | still over | wrongly rejected | LOO median / p90 rel. error | LOO coverage "
        "| predicted: median / p90 rel. error | predicted: interval coverage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pct, limit, n_m, n_p, wa, still, wr, n_true, s, rel, cover in rows:
        lines.append(
            f"| {pct} | {limit:.4g} | {n_true} | {n_m} | {n_p} | {wa} | **{still}** | {wr} | "
            f"{_pct(s['heldout_median_rel_error'])} / {_pct(s['heldout_p90_rel_error'])} | "
            f"{_pct(s['heldout_coverage'])} | "
            f"{_pct(float(np.median(rel)) if rel.size else None)} / "
            f"{_pct(float(np.quantile(rel, 0.9)) if rel.size else None)} | {_pct(cover)} |")
    lines += ["", "Written by `benchmarks/predicted_screening.py`.", ""]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "predicted_screening.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def _pct(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


if __name__ == "__main__":
    raise SystemExit(main())
