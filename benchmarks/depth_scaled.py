"""Tuned shape against the fastest depth-scaled width-1 WRN of equal accuracy (paper: up to 4.22x).

For each real landscape (``benchmarks/data/landscapes.csv``), each accuracy floor (quantiles of
the true accuracies) and each batch size (1 and 128): a real ``ShapeSampler`` search
(goal = latency, ``min_accuracy`` = floor, default strategy, table objective of the landscape,
the latency table of ``latency_grid.py`` at that batch size as its screening measurements) gives
the tuned shape. The baseline is the fastest width-1 shape (depth scaled 10…34) whose *true*
(seed-mean) accuracy meets the floor — what a practitioner gets by only scaling the depth of a
standard ResNet. Both, and the true optimum (fastest shape of any width meeting the floor), are
then timed side by side in this run with ``measure_latency`` (CPU, 1 thread, eval mode, median
of repeated runs), and the speed-up = baseline ms / tuned ms is reported.

Run:  PYTHONPATH=. python benchmarks/depth_scaled.py [--quick]
Writes benchmarks/results/depth_scaled.md
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter

import numpy as np
import torch
from _landscape_io import RESULTS, Landscape, describe, header, load_landscapes, run_search

from optuna_shape.measurement import measure_latency
from optuna_shape.space.shape import Shape

SHARES = [0.8, 0.6, 0.4, 0.2]
BATCHES = [1, 128]


def floors(land: Landscape, shares: list[float]) -> list[tuple[float, float]]:
    truth = np.array(sorted(land.truth.values()))
    out = []
    for q in shares:
        f = math.floor(float(np.quantile(truth, 1 - q)) * 10) / 10
        out.append((f, float(np.mean(truth >= f))))
    return out


class Timer:
    """Measures each (shape, batch) once in this process, 1 thread."""

    def __init__(self, land: Landscape, repeats: int) -> None:
        self.space = land.space()
        self.repeats = repeats
        self.cache: dict[tuple[Shape, int], float] = {}

    def __call__(self, shape: Shape, batch: int) -> float:
        key = (shape, batch)
        if key not in self.cache:
            torch.manual_seed(0)
            model = self.space.build(shape)
            r = measure_latency(model, self.space.input_shape(batch), "cpu", warmup=5,
                                repeats=self.repeats, threads=1)
            self.cache[key] = r.median_ms
        return self.cache[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10, help="searches per (floor, batch)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per latency")
    parser.add_argument("--quick", action="store_true", help="1 rep, 2 floors, batch 1")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    reps, shares, batches = (1, [0.6, 0.2], [1]) if args.quick else (args.reps, SHARES, BATCHES)
    lands = [la for la in load_landscapes(min_seeds=2) if all(b in la.latency for b in batches)]
    lines = header("Tuned shapes vs depth-scaled width-1 WRNs of equal accuracy",
                   "depth_scaled.py")
    lines += ["Tuned = ShapeSampler answer (goal latency, floor = min accuracy; modal answer over "
              f"{reps} searches, the range of",
              "speed-ups over all searches in brackets). Baseline = fastest width-1 WRN whose true",
              "accuracy meets the floor. Oracle = fastest shape of any width whose truth meets it.",
              "Latencies measured side by side in this run (CPU, 1 thread, median of "
              f"{args.repeats} runs);",
              "speed-up = baseline ms / tuned ms. Paper: tuned ResNets up to 4.22x faster.", ""]
    if not lands:
        lines += ["No landscape with >= 2 seeds and a latency table yet: run "
                  "`benchmarks/landscapes.py` and `benchmarks/latency_grid.py`."]
    best: list[float] = []
    for land in lands:
        timer = Timer(land, args.repeats)
        truth = land.truth
        lines += [f"## {describe(land)}", "",
                  "| batch | floor (share) | tuned (truth) | baseline width 1 (truth) | tuned ms "
                  "| baseline ms | speed-up | oracle (ms, speed-up) |",
                  "|---:|---|---|---|---:|---:|---:|---|"]
        for batch in batches:
            table = land.latency[batch]
            for floor, share in floors(land, shares):
                answers = [run_search(land, "latency", floor, rep, latency_batch=batch).answer
                           for rep in range(reps)]
                w1 = [s for s in land.shapes if s.width == 1.0 and truth[s] >= floor]
                base = min(w1, key=lambda s: table[s], default=None)
                ok = [s for s in land.shapes if truth[s] >= floor]
                oracle = min(ok, key=lambda s: table[s], default=None)
                found = [a for a in answers if a is not None]
                if not found:
                    lines.append(f"| {batch} | {floor:.1f} ({share:.0%}) | none | | | | | |")
                    continue
                tuned = Counter(found).most_common(1)[0][0]
                t_ms = timer(tuned, batch)
                if base is None:
                    lines.append(f"| {batch} | {floor:.1f} ({share:.0%}) | ({tuned.depth}, "
                                 f"{tuned.width:g}) ({truth[tuned]:.2f}) "
                                 f"| no width-1 shape meets the floor | {t_ms:.2f} | | | |")
                    continue
                b_ms = timer(base, batch)
                ups = [b_ms / timer(a, batch) for a in found]
                o_ms = timer(oracle, batch) if oracle is not None else math.nan
                best.append(b_ms / t_ms)
                rng = f" [{min(ups):.2f}–{max(ups):.2f}]" if len(set(found)) > 1 else ""
                row = (f"| {batch} | {floor:.1f} ({share:.0%}) | ({tuned.depth}, {tuned.width:g}) "
                       f"({truth[tuned]:.2f}) | ({base.depth}, 1) ({truth[base]:.2f}) "
                       f"| {t_ms:.2f} | {b_ms:.2f} | {b_ms / t_ms:.2f}x{rng} "
                       f"| ({oracle.depth}, {oracle.width:g}): {o_ms:.2f}, "
                       f"{b_ms / o_ms:.2f}x |")
                lines.append(row)
                print(land.task, row, flush=True)
        lines.append("")
    if best:
        lines += ["## Summary", "",
                  f"Speed-up of the tuned shape over the depth-scaled width-1 WRN: median "
                  f"{np.median(best):.2f}x, max {max(best):.2f}x over {len(best)} "
                  "(task, batch, floor) cases (paper: up to 4.22x on GPUs).", ""]
    text = "\n".join(lines) + "\n"
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"depth_scaled{suffix}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
