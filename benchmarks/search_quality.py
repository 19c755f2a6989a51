"""Search quality at equal trainings: ShapeSampler against the strongest Optuna configurations.

Every search goes through the public API on a *lookup objective*: a landscape stores several
seeds (repeated trainings) of every shape; in repetition ``r`` each shape gets its own random
seed order and its k-th training returns the k-th seed of that order (cycling), the same for every
method (paired comparisons). **Truth** of a shape = its seed mean; **noise std** = the pooled
seed standard deviation of the landscape.

Methods, per (landscape, scenario, repetition):

* ``shape``: ``osh.ShapeSampler`` with its defaults (the adaptive search when the installed
  package has ``mode=``), run to its own stopping rule; its *trainings* ``B`` are the objective
  calls (= COMPLETE trials that trained a shape). ``--confidence`` adds runs at other
  confidence levels (a sweep to choose the default from data).
* ``paper``: ``ShapeSampler(mode="paper")`` (Algorithm 1 of the paper), at its own trainings.
* ``gp``: ``GPSampler(n_startup_trials=5, seed=r)``; ``tpe``: ``TPESampler(seed=r)``;
  ``botorch``: optuna-integration's ``BoTorchSampler(n_startup_trials=5, constraints_func=…)``
  (only when installed: ``pip install -e .[bench]``); ``random``: ``RandomSampler(seed=r)``.
  All on ordinal integer indices of depth and width (``suggest_int`` over index ranges); the floor
  goes in as ``trial.set_constraint("acc", floor - acc)`` (min-cost scenarios minimise the cost);
  a shape over the size limit is not trained (constraint ``size`` > 0, value = lowest accuracy seen
  so far, not counted as a training). A re-suggested shape is trained again (another seed).
  Each peer gets exactly ``B`` trainings; its answer is the best *observed mean* among trained
  shapes (min-cost: the cheapest trained shape whose observed mean meets the floor). Peers run on
  past ``B`` (GP, BoTorch: ``--curve-factor × B``; TPE, Random: 2 × B) for the
  regret-versus-trainings curves.
* ``exhaustive``: every feasible shape trained once, the same answer rule (reference).

Run:  PYTHONPATH=. python benchmarks/search_quality.py [--quick] [--reps N] [--jobs N]
      [--landscapes ...] [--confidence 0.8 0.95 ...] [--cache DIR [--report-only]]
Writes benchmarks/results/search_quality.md, search_quality_runs.csv and
search_quality_curves.csv.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import inspect
import json
import math
import multiprocessing as mp
import shlex
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import optuna

import optuna_shape as osh
from optuna_shape.space.shape import Shape

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables as T  # noqa: E402

VERSION = 3  # bump when a change makes cached cells stale
PEERS = ("gp", "tpe", "botorch", "random")
LABEL = {"shape": "ShapeSampler", "paper": "paper mode", "gp": "GP", "tpe": "TPE",
         "botorch": "BoTorch", "random": "Random", "exhaustive": "exhaustive"}
NOT_TRAININGS = {"plan", "duplicate", "stopped", "idle"}
"""Trial ``stage`` attributes of ShapeSampler trials that did not train a shape."""
TIE = 0.25
"""Tie band of the paired comparisons, in noise std (accuracy goals) — 0.05 for cost ratios."""
TIE_RATIO = 0.05


def package_hash() -> str:
    """Short hash of the installed optuna_shape sources (which code produced a row)."""
    root = Path(osh.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def new_api() -> bool:
    """Whether the installed ShapeSampler has the adaptive search (``policy=`` objects, or the
    older ``mode=`` keyword)."""
    return policy_objects() or "mode" in inspect.signature(osh.ShapeSampler.__init__).parameters


def policy_objects() -> bool:
    """Whether the installed package chooses the policy with ``osh.Adaptive`` / ``osh.Paper``."""
    return hasattr(osh, "Adaptive")


def botorch_available() -> bool:
    try:
        import optuna_integration  # noqa: F401
        from optuna_integration import BoTorchSampler  # noqa: F401
    except Exception:  # noqa: BLE001  (ImportError or a broken optional dependency)
        return False
    return True


# ------------------------------------------------------------------------------ scenarios --
def scenarios(land: T.Landscape, quantiles: tuple[float, ...]) -> list[T.Scenario]:
    """Max accuracy (no limit; size ≤ median size), min size with a floor at each truth
    quantile, min latency with the middle floor where latencies exist."""
    sizes = sorted(land.size(s) for s in land.shapes)
    limit = float(np.median(sizes))
    truths = np.array([land.truth[s] for s in land.shapes])
    out = [T.Scenario("max acc", "accuracy"),
           T.Scenario(f"max acc, size <= {limit:.3g} MB", "accuracy", max_size_mb=limit)]
    floors = [round(float(np.quantile(truths, q)), 2) for q in quantiles]
    for q, f in zip(quantiles, floors, strict=True):
        out.append(T.Scenario(f"min size, acc >= {f:g} (q{round(100 * q)})", "size",
                              min_accuracy=f))
    if land.latency is not None and floors:
        q, f = quantiles[len(quantiles) // 2], floors[len(floors) // 2]
        out.append(T.Scenario(f"min latency, acc >= {f:g} (q{round(100 * q)})", "latency",
                              min_accuracy=f))
    return out


# ---------------------------------------------------------------------------------- judge --
def std_of(land: T.Landscape) -> float:
    """Pooled seed std (``land.noise`` is 2 std)."""
    return land.noise / 2.0


def optimum(land: T.Landscape, scen: T.Scenario, margin: float = 0.0) -> Shape | None:
    return T.true_optimum(land, scen, margin)


@dataclass
class Judged:
    regret: float  # accuracy goals: points below the optimum (inf: no answer); else nan
    success: bool  # within noise of the optimum
    kept: bool | None = None  # min-cost: truth >= floor - std
    strict: bool | None = None  # min-cost: truth >= floor
    ratio: float | None = None  # min-cost: cost / cost of the true cheapest complying shape


def judge(land: T.Landscape, scen: T.Scenario, answer: Shape | None) -> Judged:
    """Accuracy goals: regret = truth(optimum) − truth(answer), success = regret ≤ std.
    Min-cost goals: kept = truth ≥ floor − std; strict = truth ≥ floor; ratio = cost / cost of
    the cheapest shape with truth ≥ floor; success = kept and cost ≤ cost of the cheapest shape
    with truth ≥ floor + std."""
    sd = std_of(land)
    if scen.goal == "accuracy":
        if answer is None:
            return Judged(math.inf, False)
        best = optimum(land, scen)
        assert best is not None
        regret = land.truth[best] - land.truth[answer]
        return Judged(regret, regret <= sd + 1e-9)
    if answer is None:
        return Judged(math.nan, False, False, False, None)
    assert scen.min_accuracy is not None
    opt = optimum(land, scen)
    opt_hi = optimum(land, scen, margin=sd) or opt
    assert opt is not None and opt_hi is not None
    truth = land.truth[answer]
    kept = truth >= scen.min_accuracy - sd - 1e-9
    cost = scen.cost(land, answer)
    return Judged(math.nan, bool(kept and cost <= scen.cost(land, opt_hi) + 1e-12), bool(kept),
                  bool(truth >= scen.min_accuracy - 1e-9), cost / scen.cost(land, opt))


def answer_rule(land: T.Landscape, scen: T.Scenario,
                meas: dict[Shape, list[float]]) -> Shape | None:
    """Best observed mean (min-cost: cheapest trained shape whose observed mean meets the
    floor)."""
    means = {s: float(np.mean(v)) for s, v in meas.items()}
    if scen.goal == "accuracy":
        return max(means, key=lambda s: (means[s], -land.size(s)), default=None)
    ok = [s for s, m in means.items() if m >= (scen.min_accuracy or -math.inf)]
    return min(ok, key=lambda s: (scen.cost(land, s), -means[s]), default=None)


def curve(land: T.Landscape, scen: T.Scenario,
          calls: list[tuple[Shape, float]]) -> list[tuple[float, bool]]:
    """(loss, success) of the answer rule after each training; loss = regret (accuracy goals)
    or the cost ratio when the floor is kept, else inf (min-cost goals)."""
    meas: dict[Shape, list[float]] = {}
    out = []
    for s, v in calls:
        meas.setdefault(s, []).append(v)
        j = judge(land, scen, answer_rule(land, scen, meas))
        out.append((loss_of(scen, j), j.success))
    return out


def loss_of(scen: T.Scenario, j: Judged) -> float:
    if scen.goal == "accuracy":
        return j.regret
    return j.ratio if j.kept and j.ratio is not None else math.inf


# -------------------------------------------------------------------------------- methods --
def _inject_latency(study: optuna.Study, land: T.Landscape, hw: str) -> None:
    """Store the landscape's latencies as the study's screening measurements on ``hw``."""
    assert land.latency is not None
    try:
        from optuna_shape import store as st

        st.store_measurements(study, hw, {s: {"latency_ms": ms} for s, ms in land.latency.items()})
        return
    except (ImportError, AttributeError):  # before the storage module existed
        pass
    from optuna_shape import storage_keys as keys  # type: ignore[attr-defined]

    h = keys.hardware_hash(hw)
    storage, sid = study._storage, study._study_id
    storage.set_study_system_attr(sid, keys.hardware_name_key(h), hw)
    for s, ms in land.latency.items():
        storage.set_study_system_attr(sid, keys.measurement_key(h, s.key), {"latency_ms": ms})
    storage.set_study_system_attr(sid, keys.screened_key(h), True)


@dataclass
class SearchOut:
    answer: Shape | None
    calls: list[tuple[Shape, float]]
    completed_trainings: int  # COMPLETE trials whose stage trained a shape (cross-check)
    seconds: float


def run_shape(land: T.Landscape, scen: T.Scenario, rep: int, mode: str | None,
              confidence: float | None) -> SearchOut:
    """One ShapeSampler search to its own end (in-memory storage)."""
    t0 = time.process_time()
    table = T.TableObjective(land, rep)
    hw = "table-latency" if scen.goal == "latency" else None
    kw: dict = {"goal": scen.goal, "seed": rep}
    if policy_objects():
        kw["measurement"] = osh.MeasurementSettings(target_hardware=hw)
        kw["policy"] = (osh.Paper() if mode == "paper" else
                        osh.Adaptive() if confidence is None else
                        osh.Adaptive(confidence=confidence))
    else:
        kw["target_hardware"] = hw
        if new_api():
            if mode is not None:
                kw["mode"] = mode
            if confidence is not None:
                kw["confidence"] = confidence
    sampler = osh.ShapeSampler(land.space, scen.constraints(), **kw)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if hw is not None:
        _inject_latency(study, land, hw)
    study.optimize(lambda t: table(osh.suggest_shape(t, land.space)),
                   n_trials=3 * len(land.shapes) + 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answer = osh.best_shape(study)
    done = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
               and t.user_attrs.get("stage") not in NOT_TRAININGS)
    return SearchOut(answer, list(table.calls), done, time.process_time() - t0)


def _peer_sampler(name: str, rep: int, constrained: bool) -> optuna.samplers.BaseSampler:
    if name == "gp":
        return optuna.samplers.GPSampler(n_startup_trials=5, seed=rep)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=rep)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=rep)
    if name == "botorch":
        from optuna_integration import BoTorchSampler

        def cons(t: optuna.trial.FrozenTrial) -> list[float]:
            return list(t.constraints.values())

        return BoTorchSampler(n_startup_trials=5, seed=rep,
                              constraints_func=cons if constrained else None)
    raise ValueError(name)


def run_peer(land: T.Landscape, scen: T.Scenario, rep: int, name: str,
             trainings: int) -> SearchOut:
    """A general-purpose Optuna sampler on ordinal indices, to ``trainings`` trainings."""
    t0 = time.process_time()
    table = T.TableObjective(land, rep)
    depths, widths = land.space.depths, land.space.widths
    constrained = scen.max_size_mb is not None or scen.min_accuracy is not None
    direction = "maximize" if scen.goal == "accuracy" else "minimize"
    study = optuna.create_study(direction=direction,
                                sampler=_peer_sampler(name, rep, constrained))
    lowest: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        shape = Shape(depths[trial.suggest_int("depth_i", 0, len(depths) - 1)],
                      widths[trial.suggest_int("width_i", 0, len(widths) - 1)])
        if scen.max_size_mb is not None:
            over = land.size(shape) - scen.max_size_mb
            trial.set_constraint("size", over)
            if over > 0:  # known before training: not trained, not counted
                return min(lowest) if lowest else math.nan
        acc = table(shape)
        lowest.append(acc)
        if scen.min_accuracy is not None:
            trial.set_constraint("acc", scen.min_accuracy - acc)
            return scen.cost(land, shape)
        return acc

    def stop(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if len(table.calls) >= trainings:
            study.stop()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=20 * trainings + 50, callbacks=[stop])
    return SearchOut(None, list(table.calls), len(table.calls), time.process_time() - t0)


# ------------------------------------------------------------------------------- one task --
@dataclass
class Run:
    landscape: str
    scenario: str
    rep: int
    method: str  # shape, shape@0.9, paper, gp, tpe, botorch, random, exhaustive
    trainings: int
    n_feasible: int
    depth: int | None
    width: float | None
    regret: float
    success: bool
    kept: bool | None
    strict: bool | None
    ratio: float | None
    hit: int | None  # trainings after which the answer rule first was within noise (None: never)
    cpu_s: float
    pkg: str = ""  # hash of the optuna_shape sources that ran


_STATE: dict = {}


def _task(job: tuple[str, int, int]) -> tuple[list[dict], dict[str, list]]:
    lname, si, rep = job
    land = _STATE["lands"][lname]
    scen = _STATE["scens"][lname][si]
    cache: Path | None = _STATE["cache"]
    key = None
    if cache is not None:
        key = hashlib.sha256(json.dumps([
            VERSION, lname, [[s.depth, s.width, np.round(land.seeds[s], 5).tolist()]
                             for s in land.shapes], repr(scen), rep, _STATE["methods"],
            _STATE["confidences"], _STATE["curve_factor"], _STATE["sampler_tag"], _STATE["pkg"],
            _STATE["botorch_reps"] if rep >= (_STATE["botorch_reps"] or 0) else None]
        ).encode()).hexdigest()[:20]
        path = cache / f"{key}.json"
        if path.exists():
            data = json.loads(path.read_text())
            return data["runs"], data["curves"]
    if _STATE.get("report_only"):
        return [], {}
    runs, curves = run_task(land, scen, rep, _STATE["methods"], _STATE["confidences"],
                            _STATE["curve_factor"], _STATE["botorch_reps"])
    for r in runs:
        r["pkg"] = _STATE["pkg"]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{key}.json").write_text(json.dumps({"runs": runs, "curves": curves}))
    return runs, curves


def run_task(land: T.Landscape, scen: T.Scenario, rep: int, methods: list[str],
             confidences: list[float], curve_factor: float,
             botorch_reps: int | None = None) -> tuple[list[dict], dict[str, list]]:
    """Every method on one (landscape, scenario, repetition); rows as dicts, curves per method
    as lists of [loss, success] after each training."""
    nf = len(scen.feasible(land))
    runs: list[dict] = []
    curves: dict[str, list] = {}

    def add(method: str, answer: Shape | None, calls: list[tuple[Shape, float]], cpu: float,
            trainings: int | None = None) -> None:
        j = judge(land, scen, answer)
        c = curve(land, scen, calls)
        hit = next((k + 1 for k, (_, ok) in enumerate(c) if ok), None)
        runs.append(asdict(Run(
            land.name, scen.name, rep, method, len(calls) if trainings is None else trainings,
            nf, answer.depth if answer else None, answer.width if answer else None, j.regret,
            j.success, j.kept, j.strict, j.ratio, hit, round(cpu, 3))))
        curves[method] = [[round(x, 5) if math.isfinite(x) else None, ok] for x, ok in c]

    own = run_shape(land, scen, rep, None, None)
    budget = max(1, len(own.calls))
    add("shape", own.answer, own.calls, own.seconds)
    budgets = [budget]
    for conf in confidences:
        o = run_shape(land, scen, rep, None, conf)
        add(f"shape@{conf:g}", o.answer, o.calls, o.seconds)
        budgets.append(len(o.calls))
    if "paper" in methods and new_api():
        o = run_shape(land, scen, rep, "paper", None)
        add("paper", o.answer, o.calls, o.seconds)
    table = T.TableObjective(land, rep)
    feas = scen.feasible(land)
    ex_calls = [(s, table.first_value(s)) for s in feas]
    add("exhaustive", answer_rule(land, scen, {s: [v] for s, v in ex_calls}), ex_calls, 0.0)
    for name in methods:
        if name not in PEERS or (name == "botorch" and botorch_reps is not None
                                 and rep >= botorch_reps):
            continue
        # the cheap peers always run on to 2 × B for the curves; GP and BoTorch to curve_factor
        factor = curve_factor if name in ("gp", "botorch") else max(curve_factor, 2.0)
        o = run_peer(land, scen, rep, name, max(max(budgets), math.ceil(factor * budget)))
        calls = o.calls
        meas: dict[Shape, list[float]] = {}
        for s, v in calls[:budget]:
            meas.setdefault(s, []).append(v)
        j_answer = answer_rule(land, scen, meas)
        add(name, j_answer, calls, o.seconds, trainings=min(budget, len(calls)))
        for conf, b in zip(confidences, budgets[1:], strict=True):  # at each sweep budget
            m2: dict[Shape, list[float]] = {}
            for s, v in calls[:b]:
                m2.setdefault(s, []).append(v)
            j = judge(land, scen, answer_rule(land, scen, m2))
            runs.append(asdict(Run(land.name, scen.name, rep, f"{name}@{conf:g}",
                                   min(b, len(calls)), nf, None, None, j.regret, j.success,
                                   j.kept, j.strict, j.ratio, None, 0.0)))
    return runs, curves


# ------------------------------------------------------------------------------ reporting --
def _mean(xs: list[float]) -> float:
    a = np.array(xs, dtype=float)
    return float(np.mean(a)) if len(a) else math.nan


def _med(xs: list[float]) -> float:
    a = np.array(xs, dtype=float)
    return float(np.median(a)) if len(a) else math.nan


def _f(x: float | None, d: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "∞"
    return f"{x:.{d}f}"


def _pct(xs: list) -> str:
    xs = [x for x in xs if x is not None]
    return f"{100 * np.mean(xs):.0f} %" if xs else "—"


def bootstrap_ci(d: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    if len(d) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = rng.choice(d, size=(n, len(d)), replace=True).mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired(scen: T.Scenario, land: T.Landscape, a: list[dict], b: list[dict]) -> dict:
    """Paired comparison of method a against b over repetitions (lower loss is better).

    Accuracy goals: loss = regret, tie when |difference| ≤ TIE × noise std. Min-cost goals:
    a run that misses the floor (truth < floor − std) loses to one that keeps it; both kept:
    cost ratios compared, tie within TIE_RATIO; the CI is of the mean ratio difference over
    repetitions where both kept the floor."""
    by_b = {r["rep"]: r for r in b}
    w = t = lo = 0
    diffs = []
    band = TIE * std_of(land) if scen.goal == "accuracy" else TIE_RATIO
    for ra in a:
        rb = by_b.get(ra["rep"])
        if rb is None:
            continue
        if scen.goal == "accuracy":
            x, y = ra["regret"], rb["regret"]
        else:
            if ra["kept"] != rb["kept"]:
                w, lo = (w + 1, lo) if ra["kept"] else (w, lo + 1)
                continue
            if not ra["kept"]:
                t += 1
                continue
            x, y = ra["ratio"], rb["ratio"]
        diffs.append(x - y)
        if abs(x - y) <= band:
            t += 1
        elif x < y:
            w += 1
        else:
            lo += 1
    d = np.array(diffs, dtype=float)
    d = d[np.isfinite(d)]
    ci = bootstrap_ci(d)
    return {"w": w, "t": t, "l": lo, "mean": float(d.mean()) if len(d) else math.nan,
            "ci": ci}


def _cell_stats(land: T.Landscape, scen: T.Scenario, rs: list[dict]) -> dict:
    tr = [r["trainings"] for r in rs]
    out = {"n": len(rs), "trainings": _med(tr), "share": _med([x / r["n_feasible"] for x, r in
                                                                zip(tr, rs, strict=True)]),
           "success": _pct([r["success"] for r in rs]),
           "hit": _med([r["hit"] if r["hit"] is not None else math.inf for r in rs])}
    if scen.goal == "accuracy":
        reg = [r["regret"] for r in rs]
        out.update(mean=_mean(reg), median=_med(reg))
    else:
        ratios = [r["ratio"] for r in rs if r["ratio"] is not None]
        kept_ratios = [r["ratio"] for r in rs if r["kept"]]
        out.update(kept=_pct([r["kept"] for r in rs]), strict=_pct([r["strict"] for r in rs]),
                   none=_pct([r["depth"] is None for r in rs]),
                   kept_f=float(np.mean([bool(r["kept"]) for r in rs])),
                   strict_f=float(np.mean([bool(r["strict"]) for r in rs])),
                   ratio_mean=_mean(ratios), ratio_med=_med(ratios),
                   ratio_kept=_mean(kept_ratios))
    return out


def summarise(all_runs: list[dict], lands: dict[str, T.Landscape],
              scens: dict[str, list[T.Scenario]], args: argparse.Namespace, command: str,
              elapsed: float, notes: list[str]) -> str:
    by: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in all_runs:
        by[(r["landscape"], r["scenario"], r["method"])].append(r)
    methods = ["shape"] + [m for m in ("paper", *PEERS, "exhaustive")
                           if any(k[2] == m for k in by)]
    lines = [
        "# Search quality at equal trainings: ShapeSampler vs GP, TPE, BoTorch, Random",
        "",
        f"Command: `{command}`  ",
        f"Machine: {T.machine_info()}  ",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {args.reps} repetitions per "
        f"cell (asked); {elapsed / 60:.1f} min wall with {args.jobs} jobs. Written by "
        "`benchmarks/search_quality.py`.",
        "",
        f"ShapeSampler: {_STATE['sampler_tag']}.",
        "",
    ]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += [
        "## Definitions",
        "",
        "- A *training* returns one stored seed of the shape (per-repetition, per-shape seed "
        "order, identical for every method of a repetition). *Truth* = seed mean; *std* = "
        "pooled seed standard deviation of the landscape.",
        "- Every peer gets exactly the trainings ShapeSampler used in that repetition (B) and the "
        "same answer rule on its measurements: highest observed mean among trained shapes "
        "(min-cost: cheapest trained shape whose observed mean meets the floor). ShapeSampler "
        "answers with `osh.best_shape`. Paper mode runs to its own end (its own trainings).",
        "- Accuracy goals: *regret* = truth(true optimum) − truth(answer), accuracy points; "
        "*success* = regret ≤ std.",
        "- Min-cost goals: *kept* = truth(answer) ≥ floor − std; *strict* = truth(answer) ≥ "
        "floor (a search with *no answer* counts as neither); *ratio* = cost(answer) / "
        "cost(cheapest shape with truth ≥ floor) (over runs with an answer); *success* = "
        "kept and cost ≤ cost of the cheapest shape with truth ≥ floor + std.",
        "- *to noise*: median number of trainings after which the method's answer rule was first "
        "within noise (success), over the trainings it ran (peers: up to "
        f"{args.curve_factor:g} × B for GP and BoTorch, {max(args.curve_factor, 2):g} × B for "
        "TPE and Random; ShapeSampler and paper mode: the same answer rule on their own "
        "trainings up to their stop; ∞ = not reached in at least half the runs).",
        f"- Paired comparisons: wins/ties/losses of ShapeSampler over repetitions; tie band "
        f"{TIE:g} std (accuracy) or {TIE_RATIO:g} in cost ratio; a run missing the floor (by "
        "more than one std) loses to one keeping it; Δ = mean difference (ShapeSampler − "
        "peer; negative favours ShapeSampler) with a 95 % bootstrap CI.",
        "",
        "## Landscapes",
        "",
        "| landscape | set | source | shapes | seeds | truth range | noise std | description |",
        "|---|---|---|---:|---:|---|---:|---|",
    ]
    for land in lands.values():
        t = list(land.truth.values())
        lines.append(
            f"| {land.name} | {'held-out' if _held_out(land) else 'tuning'} | {land.source} | "
            f"{len(land.shapes)} | {land.n_seeds()} | {min(t):.1f}–{max(t):.1f} | "
            f"{std_of(land):.2f} | {land.description}; latency: "
            f"{land.latency_source or 'none'} |")
    lines.append("")
    targets: dict[str, list] = defaultdict(list)
    for section, held in (("Tuning landscapes", False), ("Held-out landscapes", True)):
        group = [la for la in lands.values() if _held_out(la) == held]
        if not group:
            continue
        lines += [f"## {section}", ""]
        if held:
            lines += ["Added after the search policy was tuned; not used to tune it.", ""]
        for land in group:
            lines += [f"### {land.name}", ""]
            for scen in scens[land.name]:
                cell = {m: by.get((land.name, scen.name, m), []) for m in (*methods, *PEERS)}
                if not cell["shape"]:
                    continue
                nf = cell["shape"][0]["n_feasible"]
                opt = optimum(land, scen)
                lines += [f"#### {scen.name}", "",
                          f"{nf} feasible shapes; true optimum {tuple(opt) if opt else None} "
                          f"(truth {land.truth[opt]:.2f}); std {std_of(land):.2f}.", ""]
                if scen.goal == "accuracy":
                    lines += ["| method | trainings | / exhaustive | regret mean | regret median "
                              "| success | to noise |", "|---|---:|---:|---:|---:|---:|---:|"]
                else:
                    lines += ["| method | trainings | / exhaustive | kept | strict | no answer | "
                              "ratio mean | ratio median | success | to noise |",
                              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
                stats = {}
                for m in methods:
                    if not cell[m]:
                        continue
                    s = stats[m] = _cell_stats(land, scen, cell[m])
                    head = (f"| {LABEL[m]} | {s['trainings']:.0f} | {s['share']:.2f} | ")
                    if scen.goal == "accuracy":
                        lines.append(head + f"{_f(s['mean'])} | {_f(s['median'])} | "
                                     f"{s['success']} | {_f(s['hit'], 0)} |")
                    else:
                        lines.append(head + f"{s['kept']} | {s['strict']} | {s['none']} | "
                                     f"{_f(s['ratio_mean'])} | {_f(s['ratio_med'])} | "
                                     f"{s['success']} | {_f(s['hit'], 0)} |")
                lines.append("")
                comp = []
                for peer in ("gp", "tpe"):
                    if cell.get(peer):
                        p = paired(scen, land, cell["shape"], cell[peer])
                        comp.append(f"vs {LABEL[peer]}: {p['w']}/{p['t']}/{p['l']} (W/T/L), "
                                    f"Δ {_f(p['mean'])} [{_f(p['ci'][0])}, {_f(p['ci'][1])}]")
                if comp:
                    lines += ["Paired, ShapeSampler " + "; ".join(comp) + ".", ""]
                targets[land.name].append((scen, stats, nf))
    lines += _targets(targets, lands, by)
    sweep = sorted({r["method"] for r in all_runs if r["method"].startswith("shape@")})
    if sweep:
        lines += _sweep(sweep, all_runs, lands, scens)
    return "\n".join(lines) + "\n"


def _held_out(land: T.Landscape) -> bool:
    return land.name.removeprefix("real-") in T.HELD_OUT_TASKS


def _targets(targets: dict[str, list], lands: dict[str, T.Landscape],
             by: dict[tuple[str, str, str], list[dict]]) -> list[str]:
    lines = ["## Targets", "",
             "(a) accuracy goals: ShapeSampler's mean and median regret ≤ the better of TPE and "
             "GP (per cell); (b) min-cost goals: kept ≥ 95 % at the default confidence with mean "
             "cost ratio ≤ TPE's and GP's; (c) trainings ≤ 1/3 of exhaustive where ≥ 40 shapes "
             "are feasible.", "",
             "| landscape | set | scenario | (a)/(b) | detail | (c) trainings / exhaustive |",
             "|---|---|---|---|---|---|"]
    for lname, cells in targets.items():
        land = lands[lname]
        for scen, st, nf in cells:
            s = st["shape"]
            peers = [p for p in ("gp", "tpe") if p in st]
            if scen.goal == "accuracy":
                bm = min((st[p]["mean"] for p in peers), default=math.nan)
                bmed = min((st[p]["median"] for p in peers), default=math.nan)
                ok = s["mean"] <= bm + 1e-9 and s["median"] <= bmed + 1e-9
                lower = s["mean"] < bm - 1e-9
                verdict = ("met" + (" (lower)" if lower else " (tie)")) if ok else "**missed**"
                detail = (f"mean {_f(s['mean'])} vs best peer {_f(bm)} (by "
                          f"{_f(s['mean'] - bm)}); median {_f(s['median'])} vs {_f(bmed)}")
            else:
                br = min((st[p]["ratio_mean"] for p in peers), default=math.nan)
                ok_k = s["kept_f"] >= 0.95
                ok_r = s["ratio_mean"] <= br + 1e-9
                verdict = "met" if ok_k and ok_r else "**missed**"
                pk = ", ".join(f"{LABEL[p]} {st[p]['kept']}" for p in peers)
                detail = (f"kept {s['kept']} (need 95 %; {pk}), strict {s['strict']}, no answer "
                          f"{s['none']}; ratio {_f(s['ratio_mean'])} vs best peer {_f(br)}")
            share = s["share"]
            c = ("n/a (" + f"{nf} feasible; {share:.2f})" if nf < 40 else
                 ("met" if share <= 1 / 3 + 1e-9 else "**missed**") + f" ({share:.2f})")
            lines.append(f"| {lname} | {'held-out' if _held_out(land) else 'tuning'} | "
                         f"{scen.name} | {verdict} | {detail} | {c} |")
    lines.append("")
    return lines


def _sweep(sweep: list[str], all_runs: list[dict], lands: dict[str, T.Landscape],
           scens: dict[str, list[T.Scenario]]) -> list[str]:
    lines = ["## Confidence sweep (min-cost scenarios, all landscapes pooled; and per set)", "",
             "Peers are read at each confidence's own trainings (same answer rule).", "",
             "| set | method | runs | trainings (median) | kept | strict | ratio mean | GP kept "
             "/ ratio | TPE kept / ratio |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
    goal = {(ln, s.name): s.goal for ln, ss in scens.items() for s in ss}
    for held in (False, True, None):
        for m in ["shape", *sweep]:
            rs = [r for r in all_runs if r["method"] == m and goal[(r["landscape"],
                  r["scenario"])] != "accuracy" and (held is None or _held_out(
                      lands[r["landscape"]]) == held)]
            if not rs:
                continue
            suffix = m.removeprefix("shape")
            peer = {}
            for p in ("gp", "tpe"):
                ps = [r for r in all_runs if r["method"] == p + suffix and goal[(
                    r["landscape"], r["scenario"])] != "accuracy" and (held is None or _held_out(
                        lands[r["landscape"]]) == held)]
                ratios = [r["ratio"] for r in ps if r["ratio"] is not None]
                peer[p] = f"{_pct([r['kept'] for r in ps])} / {_f(_mean(ratios))}"
            ratios = [r["ratio"] for r in rs if r["ratio"] is not None]
            name = "held-out" if held else "tuning" if held is False else "all"
            lines.append(
                f"| {name} | {m if m != 'shape' else 'shape (default)'} | {len(rs)} | "
                f"{_med([r['trainings'] for r in rs]):.0f} | {_pct([r['kept'] for r in rs])} | "
                f"{_pct([r['strict'] for r in rs])} | {_f(_mean(ratios))} | {peer['gp']} | "
                f"{peer['tpe']} |")
    lines += ["", "Accuracy goals at each confidence (mean regret, all landscapes):", "",
              "| method | runs | trainings (median) | regret mean | regret median |",
              "|---|---:|---:|---:|---:|"]
    for m in ["shape", *sweep]:
        rs = [r for r in all_runs if r["method"] == m
              and goal[(r["landscape"], r["scenario"])] == "accuracy"]
        if rs:
            reg = [r["regret"] for r in rs]
            lines.append(f"| {m} | {len(rs)} | {_med([r['trainings'] for r in rs]):.0f} | "
                         f"{_f(_mean(reg))} | {_f(_med(reg))} |")
    lines.append("")
    return lines


# ----------------------------------------------------------------------------------- main --
def load_lands(args: argparse.Namespace) -> tuple[list[T.Landscape], list[str]]:
    if args.quick:
        return [T.tiny_landscape(n_seeds=5)], []
    real, notes = T.load_real_landscapes(min_seeds=args.min_seeds)
    lands = real + [T.paper_landscape("D1"), T.synthetic_landscape()]
    if args.landscapes:
        names = set(args.landscapes)
        lands = [la for la in lands if la.name in names or la.name.removeprefix("real-")
                 in names]
    return lands, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny synthetic landscape, 2 repetitions, no GP (a smoke run)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per cell (default 20)")
    ap.add_argument("--table-reps", type=int, default=None,
                    help="repetitions on the paper-derived and synthetic landscapes (default: "
                         "--reps)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--landscapes", nargs="*", default=None, help="names to run (default all)")
    ap.add_argument("--methods", nargs="*", default=None,
                    help=f"among paper {' '.join(PEERS)} (default: all available)")
    ap.add_argument("--confidence", nargs="*", type=float, default=[],
                    help="also run ShapeSampler at these confidence levels (a sweep)")
    ap.add_argument("--quantiles", nargs="*", type=float, default=[0.5, 0.8],
                    help="truth quantiles of the min-cost floors")
    ap.add_argument("--curve-factor", type=float, default=1.0,
                    help="GP and BoTorch run on to this × ShapeSampler's trainings (regret "
                         "curves); TPE and Random to at least 2×")
    ap.add_argument("--botorch-reps", type=int, default=None,
                    help="run BoTorch only in the first N repetitions (it is ~8× slower than GP)")
    ap.add_argument("--min-seeds", type=int, default=5, help="seeds a real landscape needs")
    ap.add_argument("--out", type=Path, default=T.RESULTS_DIR, help="output directory")
    ap.add_argument("--suffix", default="", help="suffix for the output file names")
    ap.add_argument("--cache", type=Path, default=None,
                    help="directory caching finished tasks (resume an interrupted run)")
    ap.add_argument("--report-only", action="store_true",
                    help="with --cache: report the cached tasks only, run nothing")
    ap.add_argument("--note", action="append", default=[],
                    help="a line for the report's notes (e.g. which commit ran)")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:  # one thread per process: GP's torch is much slower on a shared machine otherwise
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    notes: list[str] = list(args.note)
    lands, lnotes = load_lands(args)
    notes += lnotes
    args.reps = args.reps or (2 if args.quick else 20)
    methods = list(args.methods) if args.methods is not None else (
        ["paper", "tpe", "random"] if args.quick else ["paper", *PEERS])
    if "botorch" in methods and not botorch_available():
        methods.remove("botorch")
        notes.append("BoTorch not run: optuna-integration/botorch are not installed "
                     "(`pip install -e .[bench]`).")
    if not new_api():
        methods = [m for m in methods if m != "paper"]
        notes.append("The installed ShapeSampler has no `mode=` (no adaptive search yet): "
                     "`ShapeSampler` rows are today's default (the paper's Algorithm 1).")
    if args.quick:
        args.quantiles = [0.75]
    scens = {la.name: scenarios(la, tuple(args.quantiles)) for la in lands}
    sig = str(inspect.signature(osh.ShapeSampler.__init__))
    _STATE.update(lands={la.name: la for la in lands}, scens=scens, cache=args.cache,
                  methods=methods, confidences=list(args.confidence),
                  curve_factor=args.curve_factor, botorch_reps=args.botorch_reps,
                  report_only=args.report_only, pkg=package_hash(),
                  sampler_tag=("adaptive default (mode=)" if new_api() else
                               "paper behaviour (no mode= yet)") + " — signature hash "
                  + hashlib.sha256(sig.encode()).hexdigest()[:8])
    # repetition-major: an interrupted run (see --cache, --report-only) has fewer repetitions of
    # every cell rather than missing cells
    reps_of = {la.name: args.reps if la.source == "real" or args.table_reps is None
               else args.table_reps for la in lands}
    jobs = [(la.name, i, r) for r in range(args.reps) for la in lands
            for i in range(len(scens[la.name])) if r < reps_of[la.name]]
    t0 = time.time()
    all_runs: list[dict] = []
    curves: dict[tuple[str, str, str], list[list]] = defaultdict(list)
    done = 0

    def collect(job: tuple[str, int, int], out: tuple[list[dict], dict[str, list]]) -> None:
        nonlocal done
        runs, cv = out
        all_runs.extend(runs)
        scen = scens[job[0]][job[1]]
        for m, c in cv.items():
            curves[(job[0], scen.name, m)].append(c)
        done += 1
        if done % max(1, len(jobs) // 20) == 0 or done == len(jobs):
            print(f"[{time.time() - t0:6.0f}s] {done}/{len(jobs)} tasks", flush=True)

    if args.jobs > 1:
        with mp.get_context("fork").Pool(args.jobs) as pool:
            for job, out in zip(jobs, pool.imap(_task, jobs, chunksize=1), strict=True):
                collect(job, out)
    else:
        for job in jobs:
            collect(job, _task(job))
    elapsed = time.time() - t0
    pk = sorted({r.get("pkg", "") for r in all_runs})
    notes.append(f"optuna_shape source hash(es) of the rows: {', '.join(pk) or 'none'}"
                 + (" — MIXED: cached rows from other code versions" if len(pk) > 1 else ""))
    reps_done = defaultdict(set)
    for r in all_runs:
        reps_done[(r["landscape"], r["scenario"])].add(r["rep"])
    short = {k: len(v) for k, v in reps_done.items() if len(v) < args.reps}
    if short or args.report_only or args.table_reps:
        notes.append(f"repetitions per cell: {min(map(len, reps_done.values()), default=0)}–"
                     f"{max(map(len, reps_done.values()), default=0)} (of {args.reps} asked)")
    args.out.mkdir(parents=True, exist_ok=True)
    write_csvs(args.out, args.suffix, all_runs, curves)
    command = "PYTHONPATH=. python benchmarks/search_quality.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])).rstrip()
    md = summarise(all_runs, {la.name: la for la in lands}, scens, args, command.strip(),
                   elapsed, notes)
    (args.out / f"search_quality{args.suffix}.md").write_text(md)
    print(f"wrote {args.out / f'search_quality{args.suffix}.md'} in {elapsed:.0f} s")
    return 0


def write_csvs(out: Path, suffix: str, all_runs: list[dict],
               curves: dict[tuple[str, str, str], list[list]]) -> None:
    fields = list(Run.__dataclass_fields__)
    with (out / f"search_quality_runs{suffix}.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in all_runs:
            w.writerow({k: ("" if r[k] is None else round(r[k], 6) if isinstance(r[k], float)
                            else r[k]) for k in fields})
    with (out / f"search_quality_curves{suffix}.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["landscape", "scenario", "method", "trainings", "median_loss",
                    "success_rate", "runs"])
        for (ln, sn, m), runs in sorted(curves.items()):
            n = max((len(c) for c in runs), default=0)
            for k in range(n):
                at = [c[k] for c in runs if len(c) > k]
                loss = [math.inf if x is None else x for x, _ in at]
                w.writerow([ln, sn, m, k + 1, _f(_med(loss), 4), round(float(np.mean(
                    [ok for _, ok in at])), 4), len(at)])


if __name__ == "__main__":
    raise SystemExit(main())
