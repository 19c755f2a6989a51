"""Floors near and above the top: what a size search spends before it answers, or says the
floor is out of reach, on replayed learning curves.

A user does not always know how accurate the family can be: a floor set above every shape's
accuracy should end with "floor not reached" once the evidence says so, not after the whole
budget; a floor at the very top is met by one shape or a few. For every curve landscape of
``compute.py`` (``benchmarks/data/curves/``) and each floor

- ``out``: the best shape's true accuracy + one noise std (``search_quality.std_of``): no shape
  meets it;
- ``top``: the best shape's true accuracy: only the best (and its equals) meet it;
- ``q95``: the 95th percentile of the shapes' true accuracies;

``ShapeSampler(goal="size", constraints=Constraints(min_accuracy=floor), seed=r)`` with
``ShapePruner`` (today's default) runs to its own end on the replay objective of ``compute.py``
(the same seed orders), ``--reps`` times. Reported per landscape and floor: the compute it
charged (median, and against the exhaustive compute of training every shape once to the end),
its trainings (median), how it ended (status counts) and *right*: for ``out``, no answer; for
``top`` and ``q95``, an answer whose true accuracy meets the floor.

Run: ``PYTHONPATH=. python benchmarks/floor_reach.py --reps 20 --jobs 2``
(``--quick``: the synthetic grid, 2 repetitions).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _tables as T  # noqa: E402
import compute as C  # noqa: E402
import search_quality as SQ  # noqa: E402
from _landscape_io import header  # noqa: E402

FLOORS = ("out", "top", "q95")

_LANDS: list[C.CurveLand] = []


def floor_of(land: T.Landscape, kind: str) -> float:
    """The floor ``kind`` (``out``, ``top`` or ``q95``) on ``land``, in its accuracy units."""
    truths = list(land.truth.values())
    if kind == "out":
        return round(max(truths) + SQ.std_of(land), 2)
    if kind == "top":
        return round(max(truths), 2)
    return round(float(np.quantile(truths, 0.95)), 2)


def _one(job: tuple[int, str, int]) -> dict:
    li, kind, rep = job
    cl = _LANDS[li]
    floor = floor_of(cl.land, kind)
    scen = T.Scenario(f"{kind} ({floor:g})", "size", min_accuracy=floor)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = C.run_ours(cl, scen, rep, pruner=True)
    if kind == "out":
        right = run.answer is None
    else:
        right = run.answer is not None and cl.land.truth[run.answer] >= floor - 1e-9
    return {"landscape": cl.task, "floor": kind, "value": floor, "rep": rep,
            "compute": sum(t.compute for t in run.log), "trainings": len(run.log),
            "status": run.status, "right": right, "exhaustive": cl.exhaustive}


def _init(args: argparse.Namespace) -> None:
    _LANDS[:] = C.load(args)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 20; quick 2)")
    ap.add_argument("--quick", action="store_true", help="the synthetic grid, 2 repetitions")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--landscapes", nargs="*", default=None, help=f"among {', '.join(C.TASKS)}")
    ap.add_argument("--min-seeds", type=int, default=3, help="curves a shape needs")
    ap.add_argument("--curves", type=Path, default=C.CURVES_CSV)
    ap.add_argument("--epoch-seconds", type=Path, default=C.EPOCH_CSV)
    ap.add_argument("--out", type=Path, default=T.RESULTS_DIR / "floor_reach.md")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 20)
    _init(args)
    jobs = [(li, k, r) for li in range(len(_LANDS)) for k in FLOORS for r in range(reps)]
    t0 = time.time()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(args,)) as ex:
            rows = list(ex.map(_one, jobs, chunksize=4))
    else:
        rows = [_one(j) for j in jobs]
    cells: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for r in rows:
        cells[(r["landscape"], r["floor"])].append(r)
    commit, dirty, pkg = C._code_state()
    lines = header("Floors near and above the top: compute until the answer", "floor_reach.py")
    lines += [f"Commit: {commit}, optuna_shape/ {'with uncommitted changes' if dirty else 'clean'}"
              f" (source hash {pkg})  ",
              f"Wall time: {(time.time() - t0) / 60:.1f} min with {args.jobs} job(s); "
              f"{reps} repetitions per cell.", "",
              "*out* = best true accuracy + one noise std (no shape meets it; right = no "
              "answer); *top* = the best true accuracy; *q95* = the 95th percentile of the "
              "true accuracies (right = an answer whose true accuracy meets the floor). "
              "Compute = charged seconds (median; and against training every shape once to "
              "the end).", "",
              "| landscape | floor | compute (s) | / exhaustive | trainings | how it ended | "
              "right |", "|---|---|---:|---:|---:|---|---:|"]
    for (land, kind), rs in cells.items():
        comp = statistics.median(r["compute"] for r in rs)
        ends = collections.Counter(r["status"] for r in rs)
        lines.append(
            f"| {land} | {kind} ({rs[0]['value']:g}) | {comp:.3g} | "
            f"{comp / rs[0]['exhaustive']:.2f} | "
            f"{statistics.median(r['trainings'] for r in rs):g} | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(ends.items()))} | "
            f"{sum(r['right'] for r in rs) / len(rs):.0%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
