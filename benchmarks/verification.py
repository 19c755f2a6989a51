"""Verification: how often the first verified shape meets the accuracy floor, and its cost.

Real ``ShapeSampler`` searches (``study.optimize``, in-memory storage, default strategy
``standard`` with interval sampling) on the real landscapes of ``benchmarks/data/landscapes.csv``
used as a table objective: a training of a shape returns one of its stored seeds (a different
random seed order per repetition), the truth is the seed mean. Goals: smallest size, lowest
latency (measured CPU batch-1 latencies from ``latency_grid.py``, stored in the study as its
screening measurements) and highest accuracy, each under a sweep of accuracy floors set at
quantiles of the true accuracies (the share of shapes whose truth meets the floor is given).

Reported per (task, goal, floor), over the repetitions:

* **first passes**: the first shape verification turned to met the floor on its (observed)
  training — no second verification training (paper: 67 % ImageNet32 D1, 88 % D2);
* **extra trainings**: verification-stage trainings (mean, max) on top of the planned ones;
* **truly meets**: the answer's true (seed-mean) accuracy meets the floor;
* **optimal**: the answer is the true optimum (cheapest shape whose truth meets the floor;
  for the accuracy goal: the most accurate shape), and the median goal ratio answer / optimum.

Run:  PYTHONPATH=. python benchmarks/verification.py [--quick]
Writes benchmarks/results/verification.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
from _landscape_io import RESULTS, Landscape, describe, header, load_landscapes, run_search

from optuna_shape.space.shape import Shape

SHARES = [0.8, 0.6, 0.4, 0.2, 0.1]  # share of shapes whose truth meets the floor


def floors(land: Landscape, shares: list[float]) -> list[tuple[float, float]]:
    """(floor, share) pairs; the floor is rounded down to 0.1 points."""
    truth = np.array(sorted(land.truth.values()))
    out = []
    for q in shares:
        f = math.floor(float(np.quantile(truth, 1 - q)) * 10) / 10
        out.append((f, float(np.mean(truth >= f))))
    return out


def cost(land: Landscape, goal: str, s: Shape) -> float:
    if goal == "size":
        return float(land.params[s])
    if goal == "latency":
        return land.latency[1][s]
    return -land.truth[s]


def optimum(land: Landscape, goal: str, floor: float) -> Shape | None:
    ok = [s for s in land.shapes if land.truth[s] >= floor]
    return min(ok, key=lambda s: cost(land, goal, s), default=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 reps, 2 floors, size goal only")
    args = parser.parse_args(argv)
    reps, shares = (2, [0.6, 0.2]) if args.quick else (args.reps, SHARES)
    lands = load_landscapes(min_seeds=2)
    lines = header("Verification: first-verified success and extra trainings", "verification.py")
    lines += ["Real ShapeSampler searches (standard / interval) on the real landscapes as table",
              "objectives; " + f"{reps} repetitions per row (different seed draw each). "
              "'share' = fraction of",
              "shapes whose true accuracy meets the floor. Paper: the first verified shape met the",
              "floor in 67 % (ImageNet32x32 D1) and 88 % (D2) of searches.", ""]
    if not lands:
        lines += ["No landscape with >= 2 seeds per shape yet: run `benchmarks/landscapes.py`."]
    overall = []
    t0 = time.perf_counter()
    for land in lands:
        goals = ["size", "accuracy"] if args.quick else ["size", "latency", "accuracy"]
        if 1 not in land.latency:
            goals = [g for g in goals if g != "latency"]
        if args.quick:
            goals = ["size"]
        lines += [f"## {describe(land)}", "",
                  "| goal | floor (share) | trainings (planned + verify) | first passes "
                  "| extra trainings mean / max | truly meets floor | optimal | goal ratio "
                  "(median / max) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for goal in goals:
            for floor, share in floors(land, shares):
                opt = optimum(land, goal, floor)
                first, extra, truly, optimal, ratios, total, planned = [], [], [], [], [], [], []
                for rep in range(reps):
                    run = run_search(land, goal, floor, rep)
                    vals = run.verify_values
                    first.append(run.answer is not None and (not vals or vals[0] >= floor))
                    extra.append(len(vals))
                    total.append(run.trainings)
                    planned.append(run.sample_trainings)
                    a = run.answer
                    truly.append(a is not None and land.truth[a] >= floor)
                    optimal.append(a is not None and a == opt)
                    if a is not None and opt is not None:
                        if goal == "accuracy":
                            ratios.append(land.truth[opt] - land.truth[a])
                        else:
                            ratios.append(cost(land, goal, a) / cost(land, goal, opt))
                overall.append((land.task, goal, np.mean(first), np.mean(extra), max(extra)))
                unit = " pts below" if goal == "accuracy" else "x"
                rt = (f"{np.median(ratios):.2f}{unit} / {max(ratios):.2f}{unit}" if ratios
                      else "-")
                row = (f"| {goal} | {floor:.1f} ({share:.0%}) | {np.mean(total):.1f} "
                       f"({np.mean(planned):.0f} + {np.mean(extra):.1f}) | {np.mean(first):.0%} "
                       f"| {np.mean(extra):.1f} / {max(extra)} | {np.mean(truly):.0%} "
                       f"| {np.mean(optimal):.0%} | {rt} |")
                lines.append(row)
                print(land.task, row, f"[{time.perf_counter() - t0:.0f}s]", flush=True)
        lines.append("")
    if overall:
        lines += ["## Summary", "",
                  "| task | goal | first passes (mean over floors) | extra trainings mean "
                  "| max |", "|---|---|---:|---:|---:|"]
        keys = sorted({(t, g) for t, g, *_ in overall}, key=lambda k: (k[0], k[1]))
        for t, g in keys:
            rows = [r for r in overall if r[0] == t and r[1] == g]
            lines.append(f"| {t} | {g} | {np.mean([r[2] for r in rows]):.0%} "
                         f"| {np.mean([r[3] for r in rows]):.2f} | {max(r[4] for r in rows)} |")
        allf = np.mean([r[2] for r in overall])
        lines += ["", f"All searches: the first verified shape met the floor in {allf:.0%} "
                  "(paper: 67 % D1, 88 % D2).", ""]
    text = "\n".join(lines) + "\n"
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"verification{suffix}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
