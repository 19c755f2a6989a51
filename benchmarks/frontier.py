"""Accuracy–size frontier at equal trainings: ShapeSampler(goal="frontier") against
multi-objective Optuna samplers.

The frontier goal searches the trade-off between accuracy (maximised) and one cost (model size
in MB, minimised) and returns the shapes it places on the front, each with its probability of
being on it (``osh.frontier(study)``). Every search runs on the lookup objective of
``search_quality.py`` (``_tables.TableObjective``): a landscape stores several seeds of every
shape; in repetition ``r`` the k-th training of a shape returns the k-th seed of that shape's own
random seed order for ``r`` (paired across methods). **Truth** of a shape = its seed mean; the
**true front** = the shapes of the grid that no other shape beats on truth and size (at least as
good on both, strictly better on one).

Methods, per (landscape, repetition):

* ``shape``: ``osh.ShapeSampler(space, osh.Constraints(), goal="frontier",
  policy=osh.Adaptive(max_trainings=--budget), seed=r)``, run to its own stop; its trainings
  ``B`` are its objective calls; its front = every row of ``osh.frontier(study)``. Skipped, with a
  note, while the installed package has no frontier goal.
* ``gp``: ``GPSampler(n_startup_trials=5, seed=r)``; ``tpe``: ``TPESampler(seed=r)``; ``nsga2``:
  ``NSGAIISampler(seed=r)``. Multi-objective studies (``directions=["maximize", "minimize"]``)
  returning (accuracy, size MB), on ordinal integer indices of depth and width (as
  ``search_quality.py``); exactly ``B`` trainings each (``shape``'s in that repetition, else
  ``--budget``); a re-suggested shape trains again (another seed). Front = the non-dominated
  trained shapes by observed mean accuracy and size.
* ``exhaustive``: every shape trained once, front by those values (a reference).

Measures: *normalised hypervolume* (HV of the true values of the returned shapes in (accuracy,
log10 size) space, reference point (lowest truth of the grid, log10 of 1.1 × the largest size),
divided by the HV of the true front: 1.0 = the true front found); shapes returned; their share
on the true front; the share of the true front returned; for ``shape``, calibration of
``p_front``; paired comparisons ``shape`` vs each peer over repetitions.

Run:  PYTHONPATH=. nice -n 10 python benchmarks/frontier.py [--quick] [--reps N] [--jobs N]
      [--budget B] [--landscapes ...] [--methods gp tpe nsga2]
Writes benchmarks/results/frontier.md, frontier_runs.csv and frontier_shapes.csv.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import multiprocessing as mp
import shlex
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import optuna

import optuna_shape as osh
from optuna_shape.space.shape import Shape

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables as T  # noqa: E402  (landscapes, lookup objective, the bench-mlp family)
import compute as C  # noqa: E402  (git commit, CSV cells)
import search_quality as SQ  # noqa: E402  (peer samplers, source hash, formatting)

TASKS = ("digits", "digits-hard", "cancer-mlp", "digits-mlp-noisy")
HELD_OUT = ("digits-mlp-noisy",)
"""Tasks not used to tune the frontier goal (reported in their own section)."""
PEERS = ("gp", "tpe", "nsga2")
LABEL = {"shape": "ShapeSampler (frontier)", "gp": "GP", "tpe": "TPE", "nsga2": "NSGA-II",
         "exhaustive": "exhaustive"}
TIE = 0.005
"""Tie band of the paired comparisons, in normalised hypervolume."""
BINS = ((0.9, "≥ 0.9"), (0.7, "0.7–0.9"), (0.5, "0.5–0.7"), (-math.inf, "< 0.5"))
"""Calibration bins of ``p_front``: (lower bound, label), highest first."""


def frontier_available() -> bool:
    """Whether the installed ShapeSampler has ``goal="frontier"`` and ``osh.frontier``."""
    if not hasattr(osh, "frontier"):
        return False
    try:
        osh.ShapeSampler(T.tiny_landscape().space, osh.Constraints(), goal="frontier",
                         policy=osh.Adaptive(max_trainings=2))
    except (TypeError, ValueError, NotImplementedError):
        return False
    return True


# ---------------------------------------------------------------------------------- judge --
def nondominated(points: dict[Shape, tuple[float, float]]) -> list[Shape]:
    """Shapes whose (accuracy, cost) no other point beats: accuracy ≥ and cost ≤, one strictly."""
    return [s for s, (a, c) in points.items()
            if not any(a2 >= a and c2 <= c and (a2 > a or c2 < c) for a2, c2 in points.values())]


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area that (accuracy, cost) points dominate (higher accuracy, lower cost) up to ``ref``."""
    area, best = 0.0, ref[0]
    for acc, cost in sorted(points, key=lambda p: (p[1], -p[0])):
        if acc > best and cost < ref[1]:
            area += (acc - best) * (ref[1] - cost)
            best = acc
    return area


@dataclass(frozen=True)
class Truth:
    """The true front of a landscape and its hypervolume (the normaliser)."""

    front: frozenset[Shape]
    ref: tuple[float, float]  # (lowest truth of the grid, log10(1.1 × largest size))
    hv: float


def _point(land: T.Landscape, s: Shape) -> tuple[float, float]:
    return land.truth[s], math.log10(land.size(s))


def truth_of(land: T.Landscape) -> Truth:
    """True front (non-dominated by seed means and size over the grid) and its hypervolume."""
    pts = {s: _point(land, s) for s in land.shapes}
    ref = (min(land.truth.values()), math.log10(1.1 * max(land.size(s) for s in land.shapes)))
    front = nondominated(pts)
    return Truth(frozenset(front), ref, hypervolume([pts[s] for s in front], ref))


def normalised_hv(land: T.Landscape, truth: Truth, shapes: list[Shape]) -> float:
    """HV of the true values of ``shapes`` / HV of the true front (1.0 = the true front)."""
    return hypervolume([_point(land, s) for s in shapes], truth.ref) / truth.hv


def observed_front(land: T.Landscape, calls: list[tuple[Shape, float]]) -> dict[Shape, float]:
    """The non-dominated trained shapes by observed mean accuracy and size → observed mean."""
    meas: dict[Shape, list[float]] = defaultdict(list)
    for s, v in calls:
        meas[s].append(v)
    means = {s: float(np.mean(v)) for s, v in meas.items()}
    return {s: means[s] for s in nondominated({s: (m, land.size(s)) for s, m in means.items()})}


# -------------------------------------------------------------------------------- methods --
@dataclass
class Found:
    """A method's returned front, its trainings and CPU time."""

    shapes: list[Shape]
    observed: list[float]
    p_front: list[float | None]
    calls: list[tuple[Shape, float]]
    cpu_s: float
    requery: list[dict] = field(default_factory=list)


def _snap(land: T.Landscape, depth: int, width: float) -> Shape:
    return Shape(int(depth), min(land.space.widths, key=lambda w: abs(w - float(width))))


def run_ours(land: T.Landscape, rep: int, budget: int) -> Found:
    """ShapeSampler's frontier goal to its own stop (at most ``budget`` trainings)."""
    t0 = time.process_time()
    table = T.TableObjective(land, rep)
    sampler = osh.ShapeSampler(land.space, osh.Constraints(), goal="frontier",
                               policy=osh.Adaptive(max_trainings=budget), seed=rep)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_trials only guards a search that never stops
        study.optimize(lambda t: table(osh.suggest_shape(t, land.space)),
                       n_trials=20 * budget + 100)
        rows = osh.frontier(study)
    return Found([_snap(land, r.depth, r.width) for r in rows],
                 [float(r.accuracy) for r in rows], [float(r.p_front) for r in rows],
                 list(table.calls), time.process_time() - t0, requery(land, rep, study, table))


def limits_of(land: T.Landscape) -> list[T.Scenario]:
    """The limits re-asked of a frontier study: the highest accuracy under size limits at the
    25th, 50th and 75th percentile of the grid's sizes and with no limit; the smallest shape
    with accuracy at the 50th and 70th percentile of the true accuracies."""
    sizes = [land.size(s) for s in land.shapes]
    truths = list(land.truth.values())
    out = [T.Scenario(f"max acc, size <= q{q}", "accuracy",
                      max_size_mb=float(np.quantile(sizes, q / 100))) for q in (25, 50, 75)]
    out.append(T.Scenario("max acc, no limit", "accuracy"))
    out += [T.Scenario(f"min size, acc >= q{q}", "size",
                       min_accuracy=round(float(np.quantile(truths, q / 100)), 2))
            for q in (50, 70)]
    return out


def _search(land: T.Landscape, scen: T.Scenario, rep: int, table: T.TableObjective,
            study: optuna.Study | None = None, extra: int | None = None) -> tuple[Any, int]:
    """The default search for ``scen`` alone (its answer, its trainings); with ``study``, a
    search resumed from that study's trainings (copied into a new study) with at most
    ``extra`` trainings more, continuing ``table``'s seeds."""
    policy = None
    new = optuna.create_study(direction="maximize")
    copied = 0
    if study is not None:
        copied = osh.copy_trainings(study, new)
        policy = osh.Adaptive(max_trainings=copied + max(1, extra or 1))
    new.sampler = osh.ShapeSampler(land.space, scen.constraints(), scen.goal, policy=policy,
                                   seed=rep)
    before = len(table.calls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new.optimize(lambda t: table(osh.suggest_shape(t, land.space)), n_trials=400)
        return osh.best_shape(new), len(table.calls) - before


def requery(land: T.Landscape, rep: int, study: optuna.Study,
            table: T.TableObjective) -> list[dict]:
    """Each limit of :func:`limits_of` answered from the frontier study (no training); by a
    fresh default search for that limit alone (same seeds); and, when the answer is not
    confirmed, by resuming from the frontier study's trainings with at most as many trainings
    more as the fresh search used (continuing the frontier search's seeds): right (as
    ``search_quality`` judges), confirmed, trainings."""
    rows = []
    for scen in limits_of(land):
        a = osh.answer_for(study, scen.constraints(), scen.goal)
        ans = None if a.shape is None else _snap(land, a.shape.depth, a.shape.width)
        f_ans, f_n = _search(land, scen, rep, T.TableObjective(land, rep))
        row = {"landscape": land.name, "rep": rep, "limit": scen.name,
               "status": str(a.status), "right": T.judge(land, scen, ans).success,
               "next": len(a.next_trainings),
               "fresh_right": T.judge(land, scen, f_ans).success, "fresh_trainings": f_n,
               "resumed_right": None, "resumed_trainings": None}
        if a.status != osh.SearchStatus.ANSWERED:
            r_ans, r_n = _search(land, scen, rep, copy.deepcopy(table), study, f_n)
            row.update(resumed_right=T.judge(land, scen, r_ans).success, resumed_trainings=r_n)
        rows.append(row)
    return rows


def _sampler(name: str, rep: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=rep)
    return SQ._peer_sampler(name, rep, constrained=False)


def run_peer(land: T.Landscape, rep: int, name: str, trainings: int) -> Found:
    """A multi-objective Optuna sampler on ordinal indices, exactly ``trainings`` trainings."""
    t0 = time.process_time()
    table = T.TableObjective(land, rep)
    depths, widths = land.space.depths, land.space.widths
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler(name, rep))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        shape = Shape(depths[trial.suggest_int("depth_i", 0, len(depths) - 1)],
                      widths[trial.suggest_int("width_i", 0, len(widths) - 1)])
        return table(shape), land.size(shape)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental multi-objective GP
        study.optimize(objective, n_trials=trainings)
    front = observed_front(land, table.calls)
    return Found(list(front), list(front.values()), [None] * len(front), list(table.calls),
                 time.process_time() - t0)


def run_exhaustive(land: T.Landscape, rep: int) -> Found:
    """Every shape trained once (its first seed of the repetition), observed front."""
    table = T.TableObjective(land, rep)
    front = observed_front(land, [(s, table.first_value(s)) for s in land.shapes])
    return Found(list(front), list(front.values()), [None] * len(front),
                 [(s, 0.0) for s in land.shapes], 0.0)


# ------------------------------------------------------------------------------- one task --
@dataclass
class Run:
    landscape: str
    rep: int
    method: str  # shape, gp, tpe, nsga2, exhaustive
    trainings: int
    returned: int
    on_front: int  # returned shapes on the true front
    true_front: int  # shapes on the true front
    hv: float  # normalised hypervolume of the true values of the returned shapes
    cpu_s: float
    front: str  # returned shapes, "depth:width" separated by spaces
    pkg: str = ""  # hash of the optuna_shape sources that ran


_STATE: dict = {}


def run_task(land: T.Landscape, rep: int, methods: list[str], budget: int,
             ours: bool) -> tuple[list[dict], list[dict], list[dict]]:
    """Every method on one (landscape, repetition): run rows, returned-shape rows and the
    re-queried limits' rows."""
    truth = truth_of(land)
    runs: list[dict] = []
    shapes: list[dict] = []
    limits: list[dict] = []

    def add(method: str, f: Found) -> None:
        runs.append(asdict(Run(
            land.name, rep, method, len(f.calls), len(f.shapes),
            sum(s in truth.front for s in f.shapes), len(truth.front),
            normalised_hv(land, truth, f.shapes), round(f.cpu_s, 3),
            " ".join(f"{s.depth}:{s.width:g}" for s in f.shapes), _STATE.get("pkg", ""))))
        for s, obs, p in zip(f.shapes, f.observed, f.p_front, strict=True):
            shapes.append({"landscape": land.name, "rep": rep, "method": method,
                           "depth": s.depth, "width": s.width, "p_front": p, "observed": obs,
                           "truth": land.truth[s], "size_mb": land.size(s),
                           "on_true_front": s in truth.front})

    b = budget
    if ours:
        f = run_ours(land, rep, budget)
        add("shape", f)
        limits = f.requery
        b = max(1, len(f.calls))
    for name in methods:
        add(name, run_peer(land, rep, name, b))
    add("exhaustive", run_exhaustive(land, rep))
    return runs, shapes, limits


def _task(job: tuple[str, int]) -> tuple[list[dict], list[dict], list[dict]]:
    lname, rep = job
    return run_task(_STATE["lands"][lname], rep, _STATE["methods"], _STATE["budget"],
                    _STATE["ours"])


# ------------------------------------------------------------------------------ reporting --
_f = SQ._f


def ci90(d: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap 90 % interval of the mean (nan with fewer than 2 values)."""
    if len(d) < 2:
        return math.nan, math.nan
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate sample (all equal) is fine here
        ci = stats.bootstrap((d,), np.mean, confidence_level=0.9, method="percentile",
                             n_resamples=2000, rng=np.random.default_rng(0)).confidence_interval
    return float(ci.low), float(ci.high)


def paired(ours: list[dict], peer: list[dict]) -> dict:
    """Wins/ties/losses of ``ours`` over (landscape, repetition) pairs by normalised HV (tie
    within ``TIE``), mean difference (ours − peer) and its bootstrap 90 % interval."""
    by = {(r["landscape"], r["rep"]): r["hv"] for r in peer}
    d = np.array([r["hv"] - by[(r["landscape"], r["rep"])] for r in ours
                  if (r["landscape"], r["rep"]) in by], dtype=float)
    w, lo = int((d > TIE).sum()), int((d < -TIE).sum())
    return {"w": w, "t": len(d) - w - lo, "l": lo,
            "mean": float(d.mean()) if len(d) else math.nan, "ci": ci90(d)}


def _paired_line(by: dict[str, list[dict]]) -> list[str]:
    if not by.get("shape"):
        return []
    comp = []
    for peer in PEERS:
        if by.get(peer):
            p = paired(by["shape"], by[peer])
            comp.append(f"vs {LABEL[peer]}: {p['w']}/{p['t']}/{p['l']} (W/T/L), Δ HV "
                        f"{_f(p['mean'], 3)} [{_f(p['ci'][0], 3)}, {_f(p['ci'][1], 3)}]")
    return ["Paired, ShapeSampler " + "; ".join(comp) + ".", ""] if comp else []


def _method_table(by: dict[str, list[dict]]) -> list[str]:
    lines = ["| method | trainings (median) | HV mean | HV median | HV min | shapes returned "
             "(mean) | on true front | true front returned | CPU s (mean) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in ("shape", *PEERS, "exhaustive"):
        rs = by.get(m)
        if not rs:
            continue
        hv = [r["hv"] for r in rs]
        ret = sum(r["returned"] for r in rs)
        prec = sum(r["on_front"] for r in rs) / ret if ret else math.nan
        rec = SQ._mean([r["on_front"] / r["true_front"] for r in rs])
        lines.append(f"| {LABEL[m]} | {SQ._med([r['trainings'] for r in rs]):.0f} | "
                     f"{_f(SQ._mean(hv), 3)} | {_f(SQ._med(hv), 3)} | {_f(min(hv), 3)} | "
                     f"{_f(SQ._mean([r['returned'] for r in rs]), 1)} | "
                     f"{_f(100 * prec, 0)} % | {_f(100 * rec, 0)} % | "
                     f"{_f(SQ._mean([r['cpu_s'] for r in rs]), 2)} |")
    return lines + [""]


def _calibration(shape_rows: list[dict], held: dict[str, bool]) -> list[str]:
    lines = ["## Calibration of p_front (ShapeSampler)", ""]
    ours = [r for r in shape_rows if r["method"] == "shape"]
    if not ours:
        return lines + ["Not measured: ShapeSampler has no frontier goal yet.", ""]
    lines += ["Every returned row of every repetition, binned by its `p_front`; *on true front* "
              "= the share of those shapes that are on the true front (calibrated: about the "
              "bin's mean p_front).", "",
              "| set | p_front | rows | mean p_front | on true front |", "|---|---|---:|---:|---:|"]
    for name, keep in (("tuning", False), ("held out", True), ("all", None)):
        rows = [r for r in ours if keep is None or held[r["landscape"]] == keep]
        for (lo, label), hi in zip(BINS, (math.inf, *(b for b, _ in BINS[:-1])), strict=True):
            sel = [r for r in rows if lo <= r["p_front"] < hi]
            if sel:
                lines.append(f"| {name} | {label} | {len(sel)} | "
                             f"{SQ._mean([r['p_front'] for r in sel]):.2f} | "
                             f"{SQ._pct([r['on_true_front'] for r in sel])} |")
    return lines + [""]


def summarise(runs: list[dict], shape_rows: list[dict], lands: list[T.Landscape],
              header: list[str], notes: list[str]) -> str:
    """The markdown report."""
    held = {la.name: la.name.removeprefix("real-") in HELD_OUT for la in lands}
    by: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by[r["landscape"]][r["method"]].append(r)
    lines = header + [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += [
        "## How to read", "",
        "Each landscape is a grid of shapes with several stored trainings (seeds) per shape; "
        "a search sees one seed per training. *HV* scores the shapes a method returns as its "
        "front by their **true** accuracy (the mean over all seeds) and size: 1.00 = as good "
        "as the true front of the whole grid, lower = parts of the trade-off missing or "
        "returned shapes worse than believed. Peers get exactly the trainings ShapeSampler "
        "used in the same repetition (same seeds), so a row compares searches at equal cost; "
        "*exhaustive* trains every shape once (its HV < 1 is the price of one noisy seed per "
        "shape). *On true front* is the share of returned shapes that truly are on it (a "
        "method returning many shapes is not rewarded by HV for the wrong ones, but is "
        "penalised here); *true front returned* is the share of the true front found. "
        f"Paired W/T/L counts repetitions where ShapeSampler's HV is higher / within {TIE:g} / "
        "lower; Δ > 0 favours ShapeSampler. Calibration: among shapes returned with p_front ≥ "
        "0.9, about 90 % or more should be on the true front.", "",
        "## Definitions", "",
        "- *Truth* = the seed mean of a shape; *true front* = the shapes no other grid shape "
        "beats on truth and size (≥ on accuracy, ≤ on size, one strictly).",
        "- *HV* = hypervolume of (truth, log10 size) of the returned shapes (maximise accuracy, "
        "minimise size), reference point (lowest truth of the grid, log10(1.1 × largest "
        "size)), divided by the hypervolume of the true front.",
        "- A peer's front = its non-dominated trained shapes by observed mean accuracy and size; "
        "ShapeSampler's = every row of `osh.frontier(study)`.",
        "", "## Landscapes", "",
        "| landscape | set | shapes | seeds | noise std | true front | truth range | size range "
        "(MB) | description |", "|---|---|---:|---:|---:|---:|---|---|---|"]
    for la in lands:
        t, sz = list(la.truth.values()), [la.size(s) for s in la.shapes]
        lines.append(f"| {la.name} | {'held out' if held[la.name] else 'tuning'} | "
                     f"{len(la.shapes)} | {la.n_seeds()} | {SQ.std_of(la):.2f} | "
                     f"{len(truth_of(la).front)} | {min(t):.1f}–{max(t):.1f} | "
                     f"{min(sz):.3g}–{max(sz):.3g} | {la.description} |")
    lines.append("")
    for title, keep in (("Tuning landscapes", False), ("Held out from tuning", True)):
        group = [la for la in lands if held[la.name] == keep]
        if not group:
            continue
        lines += [f"## {title}", ""]
        if keep:
            lines += ["Not used to tune the frontier goal.", ""]
        for la in group:
            lines += [f"### {la.name}", ""] + _method_table(by[la.name]) + _paired_line(
                by[la.name])
        if len(group) > 1 and any(by[la.name].get("shape") for la in group):
            pooled: dict[str, list[dict]] = defaultdict(list)
            for la in group:
                for m, rs in by[la.name].items():
                    pooled[m] += rs
            lines += ["Pooled over these landscapes:", ""] + _paired_line(pooled)
    return "\n".join(lines + _calibration(shape_rows, held))


def _pct(rows: list[dict], key: str) -> str:
    return f"{100 * sum(bool(r[key]) for r in rows) / len(rows):.0f} %" if rows else "–"


def _limits(rows: list[dict], lands: list[T.Landscape]) -> str:
    """The re-queried limits' section: answered right from the frontier study with zero
    trainings, confirmed, vs a fresh default search for the limit alone."""
    if not rows:
        return ""
    held = {la.name: la.name.removeprefix("real-") in HELD_OUT for la in lands}
    out = ["", "## Other limits from the same study", "",
           "After each frontier search, six limits (the highest accuracy under size limits at "
           "the 25th / 50th / 75th percentile of the grid's sizes and with none; the smallest "
           "shape with accuracy ≥ the 50th / 70th percentile of the true accuracies) are "
           "answered with `osh.answer_for(study, constraints, goal)` — **zero extra "
           "trainings** — and, for comparison, by a fresh default search for that limit alone "
           "(same seeds). *Right* as `search_quality.py` judges it: within the landscape's noise "
           "of the true optimum (min size: meets the floor within noise and no larger than the "
           "smallest shape clearly above it). *Confirmed*: the evidence reaches the search's "
           "confidence (status `answered`); the others are `unconfirmed` and name the trainings "
           "that would settle them. *Resumed*: each unconfirmed limit searched again from the "
           "frontier study's trainings (`osh.copy_trainings` into a new study, the default "
           "search for the limit, continuing the same seeds) with at most as many trainings "
           "more as the fresh search used.", "",
           "| landscape | set | limits asked | right, zero trainings | confirmed | right when "
           "confirmed | unconfirmed naming next trainings | fresh search right | fresh search "
           "trainings (median) | resumed right | resumed: trainings more (median) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["landscape"]].append(r)
    for name, rs in [*by.items(), ("all", rows)]:
        conf = [r for r in rs if r["status"] == "answered"]
        unc = [r for r in rs if r["status"] != "answered"]
        kind = "held out" if held.get(name) else ("" if name == "all" else "tuning")
        out.append(f"| {name} | {kind} "
                   f"| {len(rs)} | {_pct(rs, 'right')} | {100 * len(conf) / len(rs):.0f} % | "
                   f"{_pct(conf, 'right')} | {_pct(unc, 'next')} | {_pct(rs, 'fresh_right')} | "
                   f"{np.median([r['fresh_trainings'] for r in rs]):.0f} | "
                   f"{_pct(unc, 'resumed_right')} | "
                   + (f"{np.median([r['resumed_trainings'] for r in unc]):.0f} |" if unc
                      else "– |"))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------- main --
def load_lands(args: argparse.Namespace) -> tuple[list[T.Landscape], list[str]]:
    """The quick landscape, or the real landscapes of ``TASKS`` (``--landscapes`` filters)."""
    if args.quick:
        return [T.tiny_landscape(n_seeds=5)], []
    real, notes = T.load_real_landscapes(min_seeds=args.min_seeds)
    lands = [la for la in real if la.name.removeprefix("real-") in TASKS]
    lands.sort(key=lambda la: TASKS.index(la.name.removeprefix("real-")))
    if args.landscapes:
        lands = [la for la in lands if la.name in args.landscapes
                 or la.name.removeprefix("real-") in args.landscapes]
    return lands, notes


def write_csvs(out: Path, suffix: str, runs: list[dict], shape_rows: list[dict],
               limit_rows: list[dict]) -> None:
    """``frontier_runs.csv`` (one row per method run), ``frontier_shapes.csv`` (one row per
    returned shape) and ``frontier_limits.csv`` (one row per re-queried limit)."""
    for name, rows, fields in (("runs", runs, list(Run.__dataclass_fields__)),
                               ("shapes", shape_rows, list(shape_rows[0]) if shape_rows else []),
                               ("limits", limit_rows, list(limit_rows[0]) if limit_rows else [])):
        with (out / f"frontier{suffix}_{name}.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow({k: C._cell(v) for k, v in r.items()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: tiny synthetic landscape, 2 repetitions, budget 10")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 10; quick 2)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--budget", type=int, default=None,
                    help="ShapeSampler's max_trainings, and the peers' trainings while it has no "
                         "frontier goal (default 20; quick 10)")
    ap.add_argument("--landscapes", nargs="*", default=None, help=f"among {', '.join(TASKS)}")
    ap.add_argument("--methods", nargs="*", default=None, choices=PEERS,
                    help="peers to run (default all; ShapeSampler and exhaustive always run)")
    ap.add_argument("--min-seeds", type=int, default=5, help="seeds a real landscape needs")
    ap.add_argument("--out", type=Path, default=T.RESULTS_DIR, help="output directory")
    ap.add_argument("--suffix", default="", help="suffix of the output file names")
    ap.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:  # one thread per process: GP's torch is much slower on a shared machine otherwise
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    args.reps = args.reps or (2 if args.quick else 10)
    args.budget = args.budget or (10 if args.quick else 20)
    lands, notes = load_lands(args)
    notes = list(args.note) + notes
    methods = list(args.methods) if args.methods is not None else list(PEERS)
    ours = frontier_available()
    if ours:
        notes.append(f"ShapeSampler: `Adaptive(max_trainings={args.budget})`; every peer gets "
                     "the trainings it used in the same repetition.")
    else:
        print("ShapeSampler has no frontier goal yet", flush=True)
        notes.append(f"ShapeSampler has no frontier goal yet: peers only, each at B = "
                     f"{args.budget} trainings per repetition (`--budget`).")
    if "nsga2" in methods:
        notes.append("NSGA-II runs with its default population of 50: at B < 50 trainings its "
                     "whole search is its first, random generation.")
    _STATE.update(lands={la.name: la for la in lands}, methods=methods, budget=args.budget,
                  ours=ours, pkg=SQ.package_hash())
    jobs = [(la.name, r) for r in range(args.reps) for la in lands]
    t0 = time.time()
    runs: list[dict] = []
    shape_rows: list[dict] = []
    limit_rows: list[dict] = []
    pool = mp.get_context("fork").Pool(args.jobs) if args.jobs > 1 else None
    results = pool.imap(_task, jobs, chunksize=1) if pool else map(_task, jobs)
    for k, (rs, ss, ls) in enumerate(results, 1):
        runs += rs
        shape_rows += ss
        limit_rows += ls
        if k % max(1, len(jobs) // 10) == 0 or k == len(jobs):
            print(f"[{time.time() - t0:6.0f}s] {k}/{len(jobs)} tasks", flush=True)
    if pool:
        pool.close()
        pool.join()
    elapsed = time.time() - t0
    command = ("PYTHONPATH=. python benchmarks/frontier.py " + shlex.join(
        argv if argv is not None else sys.argv[1:])).strip()
    header = [
        "# Accuracy–size frontier at equal trainings: ShapeSampler(goal=\"frontier\") vs GP, "
        "TPE, NSGA-II", "",
        f"Command: `{command}`  ",
        f"Commit: {C._git('rev-parse', '--short', 'HEAD') or '?'} (optuna_shape source hash "
        f"{_STATE['pkg']})  ",
        f"Machine: {T.machine_info()}  ",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {args.reps} repetitions; "
        f"{elapsed / 60:.1f} min wall with {args.jobs} jobs. Written by "
        "`benchmarks/frontier.py`.", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csvs(args.out, args.suffix, runs, shape_rows, limit_rows)
    md = summarise(runs, shape_rows, lands, header, notes) + _limits(limit_rows, lands)
    path = args.out / f"frontier{args.suffix}.md"
    path.write_text(md)
    print(f"wrote {path} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
