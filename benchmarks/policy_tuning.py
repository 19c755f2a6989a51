"""Fast simulator of the adaptive policy: decide() → table "training" → repeat until Stop.

No Optuna, no sampler, no storage: the pure policy is looped directly on a table objective
(``benchmarks/_tables.py``: the k-th training of a shape returns the k-th of its stored seeds in
a per-repetition random order, cycling). Used to tune and check the policy on the *tuning*
landscapes only: the real ``digits`` and ``digits-hard`` tasks, the paper-derived ``paper-D1`` /
``paper-C`` and the synthetic inverse-polynomial one. Other real tasks in ``benchmarks/data``
are held out on purpose and never loaded here.

Scenarios per landscape: max accuracy (no limit; size ≤ median size), min size with the floor at
the 0.5 / 0.7 / 0.9 quantiles of the true accuracies. Baselines at *equal trainings* (the number
the policy used in that repetition, repeats included): random search (distinct shapes, answer =
best observed / cheapest observed at or above the floor) and, with ``--gp``, Optuna's
``GPSampler(n_startup_trials=5)`` on ordinal depth/width indices (size limit and floor through
``set_constraint``, as a user would write it; its per-training answers are cached in
``benchmarks/results/policy_tuning_gp_cache.json``).

Usage::

    PYTHONPATH=. nice -n 10 python benchmarks/policy_tuning.py --reps 20 --gp
"""

from __future__ import annotations

import argparse
import json
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
if str(ROOT.parent) not in sys.path:
    sys.path.insert(0, str(ROOT.parent))

from benchmarks import _tables as T  # noqa: E402
from optuna_shape.policy import (  # noqa: E402
    Evidence,
    Problem,
    Settings,
    Stop,
    Train,
    Training,
    Wait,
    decide,
)
from optuna_shape.space.shape import Shape  # noqa: E402

TUNING_REAL = ("real-digits", "real-digits-hard")
GP_CACHE = Path(__file__).resolve().parent / "results" / "policy_tuning_gp_cache.json"


def tuning_landscapes(names: list[str] | None = None) -> list[T.Landscape]:
    """The tuning landscapes (held-out real tasks are filtered out by name)."""
    real, _ = T.load_real_landscapes()
    lands = [la for la in real if la.name in TUNING_REAL]
    lands += [T.paper_landscape("D1"), T.paper_landscape("C"), T.synthetic_landscape()]
    if names:
        lands = [la for la in lands if la.name in names]
    return lands


def scenarios(land: T.Landscape) -> list[T.Scenario]:
    """Max accuracy (no limit, size ≤ median) and min size at three floors."""
    sizes = sorted(land.size(s) for s in land.shapes)
    limit = float(np.median(sizes))
    truths = np.array(list(land.truth.values()))
    out = [T.Scenario("max acc", "accuracy"),
           T.Scenario(f"max acc, size <= {limit:.3g} MB", "accuracy", max_size_mb=limit)]
    for q in (0.5, 0.7, 0.9):
        floor = round(float(np.quantile(truths, q)), 2)
        out.append(T.Scenario(f"min size, acc >= q{q:g} ({floor:g})", "size", min_accuracy=floor))
    return out


@dataclass
class PolicyRun:
    answer: Shape | None
    trainings: int
    repeats: int
    status: str
    confidence: float | None
    code: str
    seconds: float


def run_policy(land: T.Landscape, scen: T.Scenario, rep: int, settings: Settings,
               scale: float = 1.0) -> PolicyRun:
    """One simulated search (``scale=0.01`` feeds accuracies as fractions)."""
    feas = scen.feasible(land)
    sizes = {s: land.size(s) for s in feas}
    costs = dict(sizes) if scen.goal != "accuracy" else {}
    floor = scen.min_accuracy * scale if scen.min_accuracy is not None else None
    problem = Problem(tuple(feas), sizes, costs, scen.goal, floor)
    obj = T.TableObjective(land, rep)
    trainings: list[Training] = []
    t0 = time.perf_counter()
    s = Settings(**{**settings.__dict__, "seed": rep})
    for _ in range(4 * len(feas) + 20):
        act = decide(problem, Evidence(tuple(trainings)), s)
        if isinstance(act, Stop):
            seen: set[Shape] = set()
            reps = 0
            for t in trainings:
                reps += t.shape in seen
                seen.add(t.shape)
            return PolicyRun(act.answer, len(trainings), reps, act.status, act.confidence,
                             str(act.details.get("reason_code")), time.perf_counter() - t0)
        if isinstance(act, Wait):  # impossible without pending trainings
            raise RuntimeError(f"unexpected Wait: {act.reason}")
        assert isinstance(act, Train)
        for shape in act.shapes:
            trainings.append(Training(shape, obj(shape) * scale))
    raise RuntimeError("policy did not stop")


def random_answers(land: T.Landscape, scen: T.Scenario, rep: int, k: int) -> Shape | None:
    """Random search over distinct feasible shapes, answer after ``k`` trainings."""
    feas = scen.feasible(land)
    rng = np.random.default_rng(77 + rep)
    order = [feas[i] for i in rng.permutation(len(feas))][:k]
    obj = T.TableObjective(land, rep)
    observed = {s: obj(s) for s in order}
    return _answer(land, scen, observed)


def _answer(land: T.Landscape, scen: T.Scenario, observed: dict[Shape, float]) -> Shape | None:
    if scen.goal == "accuracy":
        return max(observed, key=lambda s: (observed[s], -land.size(s)), default=None)
    ok = [s for s, v in observed.items() if v >= (scen.min_accuracy or -math.inf)]
    return min(ok, key=lambda s: (scen.cost(land, s), -observed[s]), default=None)


def gp_answers(land: T.Landscape, scen: T.Scenario, rep: int, budget: int) -> list[Shape | None]:
    """GPSampler(n_startup_trials=5) on ordinal indices; the answer after each training."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = T.TableObjective(land, rep)
    observed: dict[Shape, float] = {}
    answers: list[Shape | None] = []
    floor = scen.min_accuracy
    direction = "maximize" if scen.goal == "accuracy" else "minimize"
    sampler = optuna.samplers.GPSampler(seed=rep, n_startup_trials=5,
                                        constraints_func=lambda t: t.user_attrs["c"])
    study = optuna.create_study(direction=direction, sampler=sampler)
    depths, widths = land.space.depths, land.space.widths
    lowest = [min(float(v.min()) for v in land.seeds.values())]

    def objective(trial: optuna.Trial) -> float:
        shape = Shape(depths[trial.suggest_int("depth_i", 0, len(depths) - 1)],
                      widths[trial.suggest_int("width_i", 0, len(widths) - 1)])
        cons: list[float] = []
        if scen.max_size_mb is not None:
            over = land.size(shape) - scen.max_size_mb
            cons.append(over)
            if over > 0:  # rejected before training, at no cost
                trial.set_user_attr("c", cons)
                return lowest[0]
        if shape in observed:
            acc = observed[shape]  # re-suggested: cached, not retrained
        else:
            acc = table(shape)
            observed[shape] = acc
            lowest[0] = min(observed.values())
            answers.append(_answer(land, scen, observed))
        if floor is not None:
            cons.append(floor - acc)
            trial.set_user_attr("c", cons)
            return math.log(scen.cost(land, shape))
        trial.set_user_attr("c", cons or [0.0])
        return acc

    def stop(study: optuna.Study, trial: object) -> None:
        if len(observed) >= budget:
            study.stop()

    study.optimize(objective, n_trials=3 * budget + 10, callbacks=[stop])
    return answers


def fill_gp(args: argparse.Namespace) -> int:
    """Run GPSampler for every cell and repetition not yet in the cache."""
    import warnings

    import torch

    from optuna_shape.policy.adaptive import default_max_trainings

    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(1)
    for land in tuning_landscapes(args.landscapes):
        for scen in scenarios(land):
            budget = default_max_trainings(len(scen.feasible(land)), 5)
            for rep in range(args.first_rep, args.reps):
                cache = _load_cache()
                key = f"{land.name}|{scen.name}|{rep}|{budget}"
                if key in cache:
                    continue
                t0 = time.perf_counter()
                ans = gp_answers(land, scen, rep, budget)
                cache = _load_cache()
                cache[key] = [list(a) if a is not None else None for a in ans]
                GP_CACHE.write_text(json.dumps(cache))
                print(f"{key}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def _load_cache() -> dict[str, list]:
    if GP_CACHE.exists():
        return json.loads(GP_CACHE.read_text())
    return {}


def _fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def summarise(land: T.Landscape, scen: T.Scenario, judged: dict[str, list[T.Outcome]],
              trainings: list[int], repeats: list[int]) -> list[str]:
    """Markdown rows for one cell."""
    rows = []
    nf = len(scen.feasible(land))
    for method, outs in judged.items():
        n = len(outs)
        if n == 0:
            continue
        if scen.goal == "accuracy":
            reg = [o.regret for o in outs]
            cell = (f"regret mean {_fmt(statistics.mean(reg))}, median "
                    f"{_fmt(statistics.median(reg))}, within noise {sum(o.success for o in outs)}"
                    f"/{n}")
        else:
            kept = sum(bool(o.meets_floor) for o in outs)
            kept_noise = sum(math.isfinite(o.regret) for o in outs)
            ratios = [o.ratio for o in outs if o.ratio is not None]
            ratio_all = [o.ratio if o.ratio is not None else math.inf for o in outs]
            cell = (f"floor kept {kept}/{n} (within noise {kept_noise}/{n}), cost ratio median "
                    f"{_fmt(statistics.median(ratio_all))}, mean over answered "
                    f"{_fmt(statistics.mean(ratios) if ratios else math.nan)}, "
                    f"no answer {n - len(ratios)}")
        extra = ""
        if method == "adaptive":
            extra = (f" · trainings mean {statistics.mean(trainings):.1f} (max {max(trainings)}, "
                     f"grid {nf}), repeats mean {statistics.mean(repeats):.1f}")
        rows.append(f"| {land.name} | {scen.name} | {method} | {cell}{extra} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--gp", action="store_true", help="compare with GPSampler (cached)")
    ap.add_argument("--confidence", type=float, default=None)
    ap.add_argument("--landscapes", nargs="*", default=None)
    ap.add_argument("--fill-gp", action="store_true",
                    help="only fill the GPSampler cache (no policy runs)")
    ap.add_argument("--goals", nargs="*", default=None, help="only these goals")
    ap.add_argument("--first-rep", type=int, default=0)
    ap.add_argument("--fraction", action="store_true", help="feed accuracies as fractions")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "policy_tuning.md")
    args = ap.parse_args(argv)
    if args.gp:
        import torch

        torch.set_num_threads(1)
    if args.fill_gp:
        return fill_gp(args)
    settings = Settings() if args.confidence is None else Settings(confidence=args.confidence)
    cache = _load_cache() if args.gp else {}
    lines = ["# Adaptive policy: simulated searches on the tuning landscapes", "",
             f"Command: `PYTHONPATH=. nice -n 10 python benchmarks/policy_tuning.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             f"Settings: confidence {settings.confidence}, n_initial {settings.n_initial}, "
             f"max_trainings default (max(n_initial + 3, ceil(grid / 3)))", "",
             "Baselines at equal trainings (the policy's count in the same repetition, repeats "
             "included); regret in accuracy points vs the true (seed-mean) optimum; floor kept = "
             "answer's true accuracy ≥ floor; within noise = ≥ floor − 2 std; cost ratio = "
             "size(answer) / size(true smallest complying shape), no answer = ∞.", "",
             "| landscape | scenario | method | result |", "|---|---|---|---|"]
    totals: dict[str, list] = {}
    t_start = time.perf_counter()
    decision_seconds: list[float] = []
    for land in tuning_landscapes(args.landscapes):
        for scen in scenarios(land):
            if args.goals and scen.goal not in args.goals:
                continue
            judged: dict[str, list[T.Outcome]] = {"adaptive": [], "random": []}
            if args.gp:
                judged["gp"] = []
            trainings, repeats = [], []
            for rep in range(args.reps):
                run = run_policy(land, scen, rep, settings, 0.01 if args.fraction else 1.0)
                decision_seconds.append(run.seconds / max(run.trainings, 1))
                trainings.append(run.trainings)
                repeats.append(run.repeats)
                judged["adaptive"].append(T.judge(land, scen, run.answer))
                judged["random"].append(
                    T.judge(land, scen, random_answers(land, scen, rep, run.trainings)))
                if args.gp:
                    from optuna_shape.policy.adaptive import default_max_trainings

                    budget = default_max_trainings(len(scen.feasible(land)), 5)
                    key = f"{land.name}|{scen.name}|{rep}|{budget}"
                    if key not in cache:  # fill with --fill-gp first
                        continue
                    ans = cache[key]
                    k = min(run.trainings, len(ans))
                    a = ans[k - 1] if k else None
                    judged["gp"].append(T.judge(land, scen, Shape(int(a[0]), float(a[1]))
                                                if a is not None else None))
                    judged.setdefault("adaptive (same reps as gp)", []).append(
                        judged["adaptive"][-1])
            rows = summarise(land, scen, judged, trainings, repeats)
            lines += rows
            print("\n".join(rows), flush=True)
            for m, outs in judged.items():
                totals.setdefault(f"{scen.goal}|{m}", []).extend(outs)
            totals.setdefault(f"{scen.goal}|trainings_share", []).extend(
                t / len(scen.feasible(land)) for t in trainings)
    lines += ["", "## Totals", ""]
    for key, outs in totals.items():
        goal, method = key.split("|")
        if method == "trainings_share":
            lines.append(f"- {goal}: trainings / grid mean {statistics.mean(outs):.3f}, "
                         f"max {max(outs):.3f}")
        elif goal == "accuracy":
            reg = [o.regret for o in outs]
            lines.append(f"- {goal} {method}: regret mean {statistics.mean(reg):.3f}, median "
                         f"{statistics.median(reg):.3f}")
        else:
            kept = sum(bool(o.meets_floor) for o in outs)
            kept_noise = sum(math.isfinite(o.regret) for o in outs)
            ratio = [o.ratio if o.ratio is not None and math.isfinite(o.regret) else math.inf
                     for o in outs]
            lines.append(f"- {goal} {method}: floor kept {kept}/{len(outs)} "
                         f"({100 * kept / len(outs):.0f} %), within noise {kept_noise}, "
                         f"cost ratio median {statistics.median(ratio):.3g} (∞ = no/failed "
                         "answer)")
    per_decision = 1000 * statistics.median(decision_seconds)
    lines += ["", f"Policy time per decision: median {per_decision:.0f} ms; whole run "
              f"{time.perf_counter() - t_start:.0f} s."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-12:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
