"""Early stopping: epochs saved vs answers changed, replayed on recorded learning curves.

No Optuna, no training: the pure adaptive policy (:func:`optuna_shape.policy.decide`) is looped
as in ``policy_tuning.py``, and every "training" replays a recorded learning curve of
``benchmarks/data/curves/curves.csv`` (``benchmarks/curves.py``: every shape of the grid
trained with several seeds, accuracy after every epoch). In repetition ``r`` every shape gets
its own random order of its seeds (seeded by ``r``); its k-th training replays the k-th seed of
that order (cycling) — the same for both arms, so comparisons are paired.

Arms per (landscape, scenario, repetition), same seeds:

* **full**: every training runs all ``E`` epochs (today's behaviour);
* **early stop**: after each epoch the rule of :class:`optuna_shape.ShapePruner`
  (:func:`optuna_shape.early_stopping.verdict`, with the threshold of
  :func:`~optuna_shape.early_stopping.threshold` and the completed curves of the same search as
  references) may stop the training; a stopped training becomes a censored ``Training`` in the
  evidence, exactly as the sampler's snapshot makes it, and counts as one training;
* **reference**: full trainings with another seed order (repetition ``r + 1000``): how often
  the answer changes from seed noise alone, the yardstick for "answers changed".

Truth of a shape = the mean of its recorded final accuracies; judged with ``_tables.judge``
(regret in points for the accuracy goal; for floors the *kept* rate = truth ≥ floor − noise,
noise = 2 × pooled seed std). Reported: epochs trained per search and the share saved, trainings,
the share of searches whose answer differs between the arms, regret and floor-kept for both.

Usage::

    PYTHONPATH=. python benchmarks/early_stopping.py --reps 20
    PYTHONPATH=. python benchmarks/early_stopping.py --quick      # smoke run, synthetic curves
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices; threads only fight on a shared machine

import numpy as np  # noqa: E402

ROOT = Path(__file__).absolute().parent
sys.path.insert(0, str(ROOT))

import _tables as T  # noqa: E402

import optuna_shape as osh  # noqa: E402
from optuna_shape.early_stopping import default_min_epochs, threshold, verdict  # noqa: E402
from optuna_shape.policy import (  # noqa: E402
    Evidence,
    Problem,
    Settings,
    Stop,
    Train,
    Training,
    decide,
)
from optuna_shape.shape import Shape  # noqa: E402

CURVES_CSV = ROOT / "data" / "curves" / "curves.csv"
RESULT = ROOT / "results" / "early_stopping.md"
WRN_DEPTHS = [10, 16, 22, 28, 34]
WRN_WIDTHS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
Curve = tuple[list[float], float]
OTHER_ORDER = 1000
"""Repetition offset of the reference arm: full trainings with other seed orders."""


@dataclass
class CurveLandscape:
    """Recorded curves per shape (one per seed) and the landscape of their final accuracies."""

    land: T.Landscape
    curves: dict[Shape, list[Curve]]
    epochs: int


def load_curves(path: Path = CURVES_CSV, min_seeds: int = 3) -> list[CurveLandscape]:
    """Every task of ``path`` whose full WRN grid has ``min_seeds`` finite curves per shape."""
    if not path.exists():
        return []
    table: dict[str, dict[Shape, list[Curve]]] = {}
    epochs: dict[str, int] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            if int(row["diverged"]) or not row["curve"]:
                continue
            curve = [float(x) for x in row["curve"].split(";")]
            final = float(row["val_accuracy"])
            if not math.isfinite(final) or len(curve) != int(row["epochs"]):
                continue
            s = Shape(int(row["depth"]), float(row["width"]))
            table.setdefault(row["task"], {}).setdefault(s, []).append((curve, final))
            epochs[row["task"]] = int(row["epochs"])
    out = []
    for task, curves in sorted(table.items()):
        space = osh.ShapeSpace(family="wrn", depth=WRN_DEPTHS, width=WRN_WIDTHS, in_channels=1,
                               image_size=8, num_classes=10)
        if any(len(curves.get(s, [])) < min_seeds for s in space.shapes):
            continue
        seeds = {s: np.array([f for _, f in curves[s]]) for s in space.shapes}
        land = T.Landscape(f"{task} ({epochs[task]} epochs)", "real",
                           f"benchmarks/data/curves/curves.csv task {task}", space, seeds)
        out.append(CurveLandscape(land, {s: curves[s] for s in space.shapes}, epochs[task]))
    return out


def synthetic_curves(n_seeds: int = 3, epochs: int = 6) -> CurveLandscape:
    """Smoke-test curves: ``_tables.tiny_landscape`` seeds as saturating curves."""
    land = T.tiny_landscape(n_seeds)
    curves = {}
    for s, finals in land.seeds.items():
        curves[s] = []
        for f in finals:
            c = [float(f) - 40.0 * math.exp(-0.7 * e) for e in range(epochs)]
            c[-1] = float(f)
            curves[s].append((c, float(f)))
    return CurveLandscape(land, curves, epochs)


def scenarios(land: T.Landscape) -> list[T.Scenario]:
    """Max accuracy (no limit) and min size with the floor at the 50th and 80th percentile."""
    truths = np.array(list(land.truth.values()))
    out = [T.Scenario("max acc", "accuracy")]
    for q in (0.5, 0.8):
        floor = round(float(np.quantile(truths, q)), 2)
        out.append(T.Scenario(f"min size, acc >= q{q:g} ({floor:g})", "size",
                              min_accuracy=floor))
    return out


@dataclass
class Run:
    answer: Shape | None
    status: str
    trainings: int
    stopped: int
    epochs: int


def run(cl: CurveLandscape, scen: T.Scenario, rep: int, confidence: float | None,
        settings: Settings) -> Run:
    """One search; ``confidence=None``: no early stopping (every training runs E epochs)."""
    land = cl.land
    feas = scen.feasible(land)
    sizes = {s: land.size(s) for s in feas}
    costs = dict(sizes) if scen.goal != "accuracy" else {}
    problem = Problem(tuple(feas), sizes, costs, scen.goal, scen.min_accuracy)
    rng = np.random.default_rng(10_007 * rep + 17)
    order = {s: rng.permutation(len(cl.curves[s])) for s in land.shapes}
    count: dict[Shape, int] = {}
    trainings: list[Training] = []
    refs: list[Curve] = []
    epochs = stopped = 0
    s = Settings(**{**settings.__dict__, "seed": rep})
    for _ in range(4 * len(feas) + 20):
        act = decide(problem, Evidence(tuple(trainings)), s)
        if isinstance(act, Stop):
            return Run(act.answer, act.status, len(trainings), stopped, epochs)
        assert isinstance(act, Train), act
        for shape in act.shapes:
            k = count.get(shape, 0)
            count[shape] = k + 1
            curve, final = cl.curves[shape][order[shape][k % len(order[shape])]]
            if confidence is not None:
                thr = threshold(scen.goal, scen.min_accuracy,
                                [(t.shape, t.value) for t in trainings if t.value is not None],
                                feas)
                cut = None
                for e in range(1, cl.epochs):
                    v = verdict(curve[:e], refs, cl.epochs, thr, confidence)
                    if v.stop:
                        assert v.projection is not None
                        cut = Training(shape, None, v.projection.mean, v.projection.std)
                        epochs += e
                        break
                if cut is not None:
                    trainings.append(cut)
                    stopped += 1
                    continue
            trainings.append(Training(shape, final))
            refs.append((curve, final))
            epochs += cl.epochs
    raise RuntimeError("policy did not stop")


def calibration(cl: CurveLandscape, n_refs: int = 8, draws: int = 200, seed: int = 0
                ) -> list[str]:
    """Is the projection honest? For random held-out curves and ``n_refs`` random reference
    curves of *other* shapes: per epoch, the mean absolute error of the projected final
    accuracy and the share of finals below the projection's 10 % quantile (0.10 when
    calibrated; above it the rule stops good trainings more often than it claims)."""
    from scipy.stats import t as student

    from optuna_shape.early_stopping import project

    rng = np.random.default_rng(seed)
    shapes = cl.land.shapes
    rows = ["| epoch | mean abs. error (points) | share below the 10 % quantile | "
            "mean projection std |", "|---:|---:|---:|---:|"]
    for k in range(1, cl.epochs):
        err, low, sd = [], [], []
        for _ in range(draws):
            s = shapes[rng.integers(len(shapes))]
            curve, final = cl.curves[s][rng.integers(len(cl.curves[s]))]
            others = [o for o in shapes if o != s]
            picks = rng.choice(len(others), size=n_refs, replace=False)
            refs = [cl.curves[others[i]][rng.integers(len(cl.curves[others[i]]))]
                    for i in picks]
            p = project(curve[:k], refs, cl.epochs, min_curves=n_refs)
            assert p is not None
            err.append(abs(final - p.mean))
            low.append(final < p.mean + p.scale * float(student.ppf(0.1, p.dof)))
            sd.append(p.std)
        rows.append(f"| {k} | {np.mean(err):.2f} | {np.mean(low):.2f} | {np.mean(sd):.2f} |")
    return rows


def _fmt(x: float, nd: int = 2) -> str:
    return "∞" if math.isinf(x) else f"{x:.{nd}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.9, 0.99],
                        help="pruner confidences to compare with full training (policy: 0.9)")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--quick", action="store_true",
                        help="synthetic curves, for the smoke test")
    args = parser.parse_args(argv)
    lands = [synthetic_curves()] if args.quick else load_curves()
    if not lands:
        print(f"no complete curve landscape in {CURVES_CSV}; run benchmarks/curves.py",
              file=sys.stderr)
        return 1
    settings = Settings()
    t0 = time.perf_counter()
    lines = [
        "# Early stopping: epochs saved vs answers changed", "",
        f"Command: `PYTHONPATH=. python benchmarks/early_stopping.py"
        f"{' ' + ' '.join(sys.argv[1:]) if argv is None and sys.argv[1:] else ''}`  ",
        f"Machine: {T.machine_info()}  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        "Pure replay (no Optuna, no training): the adaptive policy (default settings, confidence "
        "0.9) decides, every training replays a recorded learning curve; the *early stop* arm "
        "applies `ShapePruner`'s rule after each epoch (references = the search's own completed "
        "curves, at least 5; never before epoch max(2, ⌈0.3 E⌉)). Same seeds in both arms "
        "(paired). A stopped training counts as one training and enters the evidence censored "
        "at its projection.", "",
        "Columns: *epochs* = epochs trained per search (mean); *saved* = 1 − total epochs "
        "with early stopping / total without; *stopped* = trainings stopped early per search; "
        "*changed* = share of searches whose answer differs from the full-training arm (the "
        "*reference* row: full trainings again with another seed order and policy seed — how "
        "often the answer changes from seed noise alone); "
        "*regret* = mean points below the true optimum (accuracy goal) or mean excess cost "
        "ratio − 1 of kept answers (floors); *kept* = answer's truth ≥ floor − noise; "
        "*strict* = truth ≥ floor; *none* = no answer.", "",
    ]
    for cl in lands:
        land = cl.land
        lines += [f"## {land.name}", "",
                  f"{len(land.shapes)} shapes × {land.n_seeds()} seeds, {cl.epochs} epochs, "
                  f"truth {min(land.truth.values()):.1f}–{max(land.truth.values()):.1f} %, "
                  f"noise (2 std) {land.noise:.2f} points.", "",
                  "| scenario | arm | epochs | saved | trainings | stopped | changed | "
                  "regret (mean) | kept | strict | none |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for scen in scenarios(land):
            base = [run(cl, scen, r, None, settings) for r in range(args.reps)]
            arms = [("full", None, base),
                    ("full, other seed order (reference)", None,
                     [run(cl, scen, r + OTHER_ORDER, None, settings) for r in range(args.reps)])]
            for c in args.confidence:
                arms.append((f"early stop, confidence {c:g}", c,
                             [run(cl, scen, r, c, settings) for r in range(args.reps)]))
            total = sum(b.epochs for b in base)
            for name, _, runs in arms:
                judged = [T.judge(land, scen, x.answer) for x in runs]
                finite = [j.regret for j in judged if math.isfinite(j.regret)]
                regret = statistics.mean(finite) if finite else math.inf
                kept = strict = "—"
                if scen.goal != "accuracy":
                    kept = f"{np.mean([math.isfinite(j.regret) for j in judged]):.0%}"
                    strict = f"{np.mean([bool(j.meets_floor) for j in judged]):.0%}"
                changed = np.mean([x.answer != b.answer for x, b in zip(runs, base, strict=True)])
                saved = 1.0 - sum(x.epochs for x in runs) / total
                lines.append(
                    f"| {scen.name} | {name} | {np.mean([x.epochs for x in runs]):.1f} | "
                    f"{saved:.0%} | {np.mean([x.trainings for x in runs]):.1f} | "
                    f"{np.mean([x.stopped for x in runs]):.1f} | {changed:.0%} | "
                    f"{_fmt(regret)} | {kept} | {strict} | "
                    f"{np.mean([x.answer is None for x in runs]):.0%} |")
            print(f"[{time.perf_counter() - t0:6.0f}s] {land.name}: {scen.name}", flush=True)
        lines += ["", "Calibration of the projection (8 reference curves of other shapes, 200 "
                  "random held-out curves per epoch; the rule never stops before epoch "
                  f"{default_min_epochs(cl.epochs)}):", "", *calibration(cl), ""]
    lines += [f"{args.reps} repetitions per cell; total {time.perf_counter() - t0:.0f} s.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
