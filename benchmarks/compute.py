"""Equal compute: ShapeSampler against multi-fidelity Optuna searches on replayed learning curves.

Users pay for epochs. Every "training" here replays a recorded learning curve of
``benchmarks/data/curves/curves.csv`` (``benchmarks/curves.py``: every shape of a grid trained
with 3 seeds, validation accuracy after every epoch) and is *charged* the measured compute of
the epochs it ran: ``epoch_seconds`` of that shape from ``benchmarks/data/curves/epoch_seconds.csv``
(``benchmarks/epoch_times.py``) × epochs. Nothing trains and nothing sleeps.

**Replay objective.** In repetition ``r`` every shape gets its own random order of its seeds
(the order of ``_tables.TableObjective``: the same for every method, so comparisons are
paired); the k-th training of a shape replays the k-th seed of that order (cycling), a training
stopped early included. After epoch ``i`` (1-based) it calls ``trial.report(value_i, i)``, adds
``epoch_seconds`` to the charge, and — before the last epoch, where stopping saves nothing —
asks ``trial.should_prune()``; a stopped training sets the user attribute ``train_seconds`` to
its charge and raises ``optuna.TrialPruned``; a full training sets ``train_seconds`` and returns
its final accuracy.

**Methods** (per landscape, scenario and repetition):

1. ``ours``: ``osh.ShapeSampler(space, constraints, goal, seed=r)`` (``budget=None`` when the
   installed ShapeSampler has that keyword) with ``pruner=osh.ShapePruner()``; the objective
   uses ``osh.suggest_shape``. Its total charge **C** is the compute budget of every peer of
   the repetition.
2. ``ours-full``: the same with ``optuna.pruners.NopPruner()`` (full trainings: today's
   default) — today's compute.
3. ``tpe-hb``: ``TPESampler(seed=r)`` + ``HyperbandPruner(min_resource=1, max_resource=E,
   reduction_factor=3)``;
4. ``gp-sha``: ``GPSampler(n_startup_trials=5, seed=r)`` + ``SuccessiveHalvingPruner()``;
5. ``gp``: ``GPSampler(n_startup_trials=5, seed=r)``, full trainings (``NopPruner``);
6. ``random-hb``: ``RandomSampler(seed=r)`` + the Hyperband pruner of 3.

Peers search ordinal indices of depth and width (``suggest_int``), as
``search_quality.py`` does. Accuracy goal: intermediate and final value = accuracy (maximise).
Size goal with a floor: final value = size (minimise) with ``trial.set_constraint("acc",
floor − accuracy)`` (a stopped training: its last accuracy); intermediate values are the
penalised size (size when the accuracy so far meets the floor, else the largest size of the
grid + the shortfall), so the pruners keep the small shapes already above the floor.

**Equal compute.** A peer stops *starting* trainings once its charge reaches C; the training
that crosses C finishes (its actual compute is reported next to C). Peers run on past C, to
the largest anytime checkpoint, for the anytime curves; their answer at equal compute is read
from the trainings that started before C (a sequential search's prefix is the same run).

**A compute budget** (what a user sets; ``--budgets``, ``--no-half``). ``ours`` runs again
with ``policy=osh.Adaptive(budget=B)`` for B = each share of the exhaustive compute in
``--budgets`` (every peer judged on the trainings it finished within B: the anytime
checkpoints include every B) and for B = half of what ``ours-full`` spent in the repetition
(compared with ``ours-full``: today's quality at half the compute?).

**Where the compute goes.** ``ours`` and ``ours-full`` trainings are split by the stage the
sampler planned them in (the trial's ``osh:stage``: the spread initial design, new shapes the
acquisition chose, repeats of trained shapes, other), and by whether they were stopped early
(``compute_runs.csv`` columns ``stage_*_s`` and ``stopped_s``; a section of the report). Beside
them, *perfect stops* (``perfect_stops_s``): what the same trainings would have charged had
every first training of a shape other than the answer stopped at the first epoch early stopping
may stop it — the least a perfect forecast could spend on the trainings the search chose.

**Answer rule** (every peer; ``ours`` answers with ``osh.best_shape`` and its
``search_summary().status``): only full trainings count; accuracy goal: the shape with the
highest mean final accuracy over its full trainings; size goal: the smallest fully trained
shape whose mean final accuracy ≥ floor, else none. The same rule gives ``ours``'s
answer-so-far before its end (anytime curves).

Run:  PYTHONPATH=. nice -n 10 python benchmarks/compute.py [--reps 20] [--jobs 2] [--quick]
Writes benchmarks/results/compute.md, compute_runs.csv, compute_anytime.csv and
compute_budget_runs.csv.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices; threads only fight on a shared machine

import argparse  # noqa: E402
import csv  # noqa: E402
import inspect  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import optuna  # noqa: E402

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import _tables as T  # noqa: E402  (registers the benchmark MLP family)
import search_quality as SQ  # noqa: E402  (peer samplers, answer rule, paired comparisons)

import optuna_shape as osh  # noqa: E402
from optuna_shape.policy.fidelity import min_epochs  # noqa: E402
from optuna_shape.space.shape import Shape  # noqa: E402
from optuna_shape.store import STAGE as STAGE_KEY  # noqa: E402

CURVES_CSV = ROOT / "data" / "curves" / "curves.csv"
EPOCH_CSV = ROOT / "data" / "curves" / "epoch_seconds.csv"
TASKS = T.CURVE_TASKS
"""Curve landscapes, tuning first; ``_tables.HELD_OUT_TASKS`` are reported apart."""
METHODS = ("ours", "ours-full", "tpe-hb", "gp-sha", "gp", "random-hb")
PEERS = METHODS[2:]
LABEL = {"ours": "ours (ShapeSampler + ShapePruner)", "ours-full": "ours-full (no pruner)",
         "tpe-hb": "TPE + Hyperband", "gp-sha": "GP + SuccessiveHalving",
         "gp": "GP (full trainings)", "random-hb": "Random + Hyperband"}
CHECKPOINTS = (0.05, 0.1, 0.2, 0.4)
"""Anytime checkpoints, as fractions of the compute of training every shape once to the end."""
BUDGETS = (0.1, 0.2, 0.4)
"""Compute budgets a user gives ours (``Adaptive(budget=)``), as fractions of the same."""


# ------------------------------------------------------------------------------- the data --
@dataclass
class CurveLand:
    """Recorded curves of one task, the compute of one epoch of each shape, and the landscape of
    the final accuracies (truth = mean over seeds)."""

    task: str
    land: T.Landscape
    curves: dict[Shape, list[tuple[list[float], float]]]  # per seed: (curve, final)
    epochs: int
    epoch_s: dict[Shape, float]
    compute_source: str

    @property
    def held_out(self) -> bool:
        return self.task in T.HELD_OUT_TASKS

    @property
    def exhaustive(self) -> float:
        """Compute of training every shape once to the end."""
        return self.epochs * sum(self.epoch_s.values())


def _space(task: str) -> osh.ShapeSpace:
    import landscapes  # the task grids (imports torch: only when real data is loaded)

    return landscapes.space(task)


def read_curves(path: Path, min_seeds: int, tasks: tuple[str, ...] = TASKS
                ) -> tuple[dict[str, tuple[osh.ShapeSpace, dict, int]], list[str]]:
    """Curves per task whose whole grid has ``min_seeds`` usable curves per shape. Re-read at
    every start; a partly written file (others may be appending) gives notes, not errors."""
    notes: list[str] = []
    if not path.exists():
        return {}, [f"{path.name}: missing"]
    table: dict[str, dict[Shape, list[tuple[list[float], float]]]] = {}
    lengths: dict[str, dict[int, int]] = {}
    bad = 0
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                if int(row["diverged"]) or not row["curve"]:
                    continue
                curve = [float(x) for x in row["curve"].split(";")]
                final = float(row["val_accuracy"])
                e = int(row["epochs"])
                s = Shape(int(row["depth"]), float(row["width"]))
            except (TypeError, ValueError, KeyError, AttributeError):
                bad += 1  # e.g. a line being written right now
                continue
            if len(curve) != e or not all(map(math.isfinite, [*curve, final])):
                bad += 1
                continue
            lengths.setdefault(row["task"], {}).setdefault(e, 0)
            lengths[row["task"]][e] += 1
            table.setdefault(row["task"], {}).setdefault(s, []).append((curve, final))
    if bad:
        notes.append(f"{path.name}: {bad} unreadable or incomplete row(s) skipped")
    out = {}
    for task in tasks:
        if task not in table:
            notes.append(f"{task}: no curves yet — skipped")
            continue
        epochs = max(lengths[task], key=lambda k: lengths[task][k])
        if len(lengths[task]) > 1:
            notes.append(f"{task}: curves of several lengths {sorted(lengths[task])}; the "
                         f"{epochs}-epoch ones used")
        space = _space(task)
        curves = {s: [c for c in table[task].get(s, []) if len(c[0]) == epochs]
                  for s in space.shapes}
        short = [s for s, c in curves.items() if len(c) < min_seeds]
        if short:
            notes.append(f"{task}: incomplete ({len(space) - len(short)}/{len(space)} shapes "
                         f"have >= {min_seeds} curves) — skipped")
            continue
        out[task] = (space, curves, epochs)
    return out, notes


def read_epoch_seconds(path: Path, task: str, space: osh.ShapeSpace
                       ) -> tuple[dict[Shape, float], str, str | None]:
    """Measured seconds of one epoch per shape; where the file lacks the task's whole grid,
    seconds ∝ MACs (``optuna_shape.measurement.flops.shape_macs``), scaled by the task's measured
    rows when there are some, with a warning."""
    measured: dict[Shape, float] = {}
    per_mac: list[float] = []  # seconds per MAC of every measured row (any task)
    if path.exists():
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    v = float(row["epoch_seconds"])
                    s = Shape(int(row["depth"]), float(row["width"]))
                    m = float(row.get("macs") or "nan")
                except (TypeError, ValueError, KeyError):
                    continue
                if not (math.isfinite(v) and v > 0):
                    continue
                if row["task"] == task:
                    measured[s] = v
                elif math.isfinite(m) and m > 0:
                    per_mac.append(v / m)
    if all(s in measured for s in space.shapes):
        return {s: measured[s] for s in space.shapes}, f"measured ({path.name})", None
    from optuna_shape.measurement.flops import shape_macs

    macs = {s: float(shape_macs(space, s) or space.param_count(s)) for s in space.shapes}
    own = [measured[s] / macs[s] for s in space.shapes if s in measured]
    ratios = own or per_mac
    scale = float(np.median(ratios)) if ratios else 1e-6
    how = (f"scaled by its {len(own)} measured shapes" if own else
           f"scaled by {len(per_mac)} shapes of other tasks" if per_mac else "arbitrary unit")
    warn = (f"WARNING: {task}: {path.name} has {len(measured)}/{len(space)} of its shapes — "
            f"epoch seconds ∝ MACs ({how}); not a measured result")
    print(warn, file=sys.stderr, flush=True)
    return {s: scale * macs[s] for s in space.shapes}, f"∝ MACs (fallback, {how})", warn


def load(args: argparse.Namespace) -> tuple[list[CurveLand], list[str]]:
    if args.quick:
        return [quick_land()], ["--quick: synthetic 3 × 4 grid, epoch seconds ∝ MACs"]
    tasks = tuple(t for t in TASKS if not args.landscapes or t in args.landscapes)
    data, notes = read_curves(args.curves, args.min_seeds, tasks)
    out = []
    for task, (space, curves, epochs) in data.items():
        seeds = {s: np.array([f for _, f in curves[s]]) for s in space.shapes}
        land = T.Landscape(task, "real", f"curves.csv task {task}, {epochs} epochs", space,
                           seeds)
        sec, src, warn = read_epoch_seconds(args.epoch_seconds, task, space)
        if warn:
            notes.append(warn)
        out.append(CurveLand(task, land, curves, epochs, sec, src))
    return out, notes


def scenarios(land: T.Landscape) -> list[T.Scenario]:
    """Max accuracy (no limit) and min size with the floor at the 50th and 80th percentile."""
    truths = np.array(list(land.truth.values()))
    out = [T.Scenario("max acc", "accuracy")]
    for q in (0.5, 0.8):
        floor = round(float(np.quantile(truths, q)), 2)
        out.append(T.Scenario(f"min size, acc >= q{q:g} ({floor:g})", "size",
                              min_accuracy=floor))
    return out


def quick_land(epochs: int = 6, n_seeds: int = 3) -> CurveLand:
    """A 3 × 4 synthetic WRN grid of saturating curves (smoke runs); seconds ∝ MACs."""
    from optuna_shape.measurement.flops import shape_macs

    space = osh.ShapeSpace("wrn", depth=[10, 16, 22], width=[0.5, 1.0, 1.5, 2.0],
                           in_channels=1, num_classes=10, image_size=8)
    rng = np.random.default_rng(3)
    curves = {}
    for s in space.shapes:
        truth = 98.0 - 1.0 / s.width - 12.0 / s.depth
        curves[s] = []
        for f in truth + rng.normal(0.0, 0.3, n_seeds):
            c = [float(f) - 40.0 * math.exp(-0.7 * e) for e in range(epochs)]
            c[-1] = float(f)
            curves[s].append((c, float(f)))
    seeds = {s: np.array([f for _, f in curves[s]]) for s in space.shapes}
    land = T.Landscape("quick-synthetic", "synthetic", "smoke-test curves", space, seeds)
    sec = {s: 1e-6 * float(shape_macs(space, s)) for s in space.shapes}
    return CurveLand("quick-synthetic", land, curves, epochs, sec, "∝ MACs (synthetic)")


# -------------------------------------------------------------------------- the objective --
@dataclass
class Training:
    shape: Shape
    epochs: int  # epochs run
    final: float | None  # final accuracy of a full training; None: stopped early
    compute: float  # charged seconds
    end: float  # cumulative charge of the run after this training
    trial: int = -1  # the trial's number
    stage: str = ""  # ours: the stage the sampler planned it in (``osh:stage``)


class Replay(T.TableObjective):
    """A training replays the k-th recorded curve of its shape (``TableObjective``'s seed
    order) and charges ``epoch_seconds`` per epoch run."""

    def __init__(self, cl: CurveLand, rep: int) -> None:
        super().__init__(cl.land, rep)
        self.cl = cl
        self.charged = 0.0
        self.log: list[Training] = []

    def train(self, trial: optuna.Trial, shape: Shape,
              value: Callable[[float], float] = float) -> tuple[float | None, float]:
        """Replay one training: ``(final accuracy or None when stopped, last accuracy)``.
        ``value`` maps an accuracy to the reported intermediate value."""
        k = self._count.get(shape, 0)
        self._count[shape] = k + 1
        order = self._order[shape]
        curve, final = self.cl.curves[shape][order[k % len(order)]]
        e_max, per = self.cl.epochs, self.cl.epoch_s[shape]
        trial.set_user_attr("planned_epochs", e_max)
        charged = 0.0
        for i, acc in enumerate(curve, 1):
            trial.report(value(acc), i)
            charged += per
            if i < e_max and trial.should_prune():
                self._done(trial, Training(shape, i, None, charged, 0.0, trial.number))
                return None, acc
        self._done(trial, Training(shape, e_max, final, charged, 0.0, trial.number))
        return final, final

    def _done(self, trial: optuna.Trial, t: Training) -> None:
        self.charged += t.compute
        t.end = self.charged
        self.log.append(t)
        trial.set_user_attr("train_seconds", t.compute)


# ---------------------------------------------------------------------------- the methods --
@dataclass
class MethodRun:
    log: list[Training]
    answer: Shape | None = None  # ours: osh.best_shape; peers: filled in from the prefix
    status: str = ""
    cpu_s: float = 0.0
    extra: dict = field(default_factory=dict)


def budget_keyword() -> bool:
    """Whether the installed ShapeSampler takes a compute budget (``osh.Adaptive(budget=)``,
    or the older ``budget=`` keyword)."""
    return hasattr(osh, "Adaptive") or \
        "budget" in inspect.signature(osh.ShapeSampler.__init__).parameters


def run_ours(cl: CurveLand, scen: T.Scenario, rep: int, pruner: bool = True,
             budget: float | str | None = None) -> MethodRun:
    """ShapeSampler to its own end, with ``ShapePruner`` (``pruner=True``) or full trainings.

    ``budget`` (seconds of training compute, or a string such as ``"2h"``) is passed only when
    the installed ShapeSampler has the keyword; ``None`` there means no compute budget."""
    t0 = time.process_time()
    kw: dict = {"goal": scen.goal, "seed": rep}
    if hasattr(osh, "Adaptive"):
        kw["policy"] = osh.Adaptive(budget=budget)
    elif budget_keyword():
        kw["budget"] = budget
    elif budget is not None:
        raise TypeError("this ShapeSampler has no budget= keyword")
    space = cl.land.space
    sampler = osh.ShapeSampler(space, constraints=scen.constraints(), **kw)
    study = optuna.create_study(
        direction="maximize", sampler=sampler,
        study_name=f"ours-{'pruned' if pruner else 'full'}-{cl.task}-{scen.name}-{rep}",
        pruner=osh.ShapePruner() if pruner else optuna.pruners.NopPruner())
    rp = Replay(cl, rep)

    def objective(trial: optuna.Trial) -> float:
        shape = osh.suggest_shape(trial, space)
        final, _ = rp.train(trial, shape)
        if final is None:
            raise optuna.TrialPruned(f"training of {shape} stopped early")
        return final

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=20 * len(space) + 50)
        answer = osh.best_shape(study)
        summary = osh.search_summary(study)
    stages = {t.number: str(t.system_attrs.get(STAGE_KEY, "")) for t in study.get_trials(
        deepcopy=False)}
    for t in rp.log:
        t.stage = stages.get(t.trial, "")
    return MethodRun(rp.log, answer, str(summary.status), time.process_time() - t0,
                     {"stopped_early": summary.stopped_early, "finished": summary.finished})


def _peer(name: str, rep: int, epochs: int, constrained: bool
          ) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    def hyperband() -> optuna.pruners.BasePruner:
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                              reduction_factor=3)

    if name == "tpe-hb":
        return SQ._peer_sampler("tpe", rep, constrained), hyperband()
    if name == "gp-sha":
        return SQ._peer_sampler("gp", rep, constrained), optuna.pruners.SuccessiveHalvingPruner()
    if name == "gp":
        return SQ._peer_sampler("gp", rep, constrained), optuna.pruners.NopPruner()
    if name == "random-hb":
        return SQ._peer_sampler("random", rep, constrained), hyperband()
    raise ValueError(name)


def run_peer(cl: CurveLand, scen: T.Scenario, rep: int, name: str, horizon: float
             ) -> MethodRun:
    """A general-purpose sampler and pruner on ordinal indices until its charge ≥ ``horizon``
    (the training that crosses it finishes)."""
    t0 = time.process_time()
    land = cl.land
    depths, widths = land.space.depths, land.space.widths
    floor = scen.min_accuracy
    sampler, pruner = _peer(name, rep, cl.epochs, floor is not None)
    # a fixed study name: HyperbandPruner assigns brackets by a hash of it (reproducible runs)
    study = optuna.create_study(direction="maximize" if floor is None else "minimize",
                                sampler=sampler, pruner=pruner,
                                study_name=f"{name}-{cl.task}-{scen.name}-{rep}")
    rp = Replay(cl, rep)
    worst = max(scen.cost(land, s) for s in land.shapes) if floor is not None else 0.0

    def objective(trial: optuna.Trial) -> float:
        shape = Shape(depths[trial.suggest_int("depth_i", 0, len(depths) - 1)],
                      widths[trial.suggest_int("width_i", 0, len(widths) - 1)])
        if floor is None:
            final, _ = rp.train(trial, shape)
        else:
            cost = scen.cost(land, shape)
            final, last = rp.train(trial, shape,
                                   lambda a: cost if a >= floor else worst + (floor - a))
            trial.set_constraint("acc", floor - last)
        if final is None:
            raise optuna.TrialPruned()
        return final if floor is None else scen.cost(land, shape)

    def stop(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if rp.charged >= horizon:
            study.stop()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=50 * len(land.shapes) + 100, callbacks=[stop])
    return MethodRun(rp.log, None, "", time.process_time() - t0)


# ------------------------------------------------------------------------------- judging --
def answer_of(land: T.Landscape, scen: T.Scenario, log: list[Training]) -> Shape | None:
    """The answer rule on the full trainings of ``log``."""
    meas: dict[Shape, list[float]] = {}
    for t in log:
        if t.final is not None:
            meas.setdefault(t.shape, []).append(t.final)
    return SQ.answer_rule(land, scen, meas)


@dataclass
class Verdict:
    regret: float  # accuracy goal (no answer: best − worst truth); else nan
    kept: bool | None  # size goal: truth ≥ floor (no answer: False)
    ratio: float | None  # size goal: size / size of the smallest shape with truth ≥ floor
    right: bool


def judge(land: T.Landscape, scen: T.Scenario, answer: Shape | None) -> Verdict:
    """Accuracy goal: regret; *right* = regret ≤ one noise std. Size goal: *kept* = truth ≥
    floor; *ratio* = size / size(optimum), an answer under the floor never below 1.0; *right* =
    kept and size ≤ size of the smallest shape with truth ≥ floor + one noise std."""
    sd = SQ.std_of(land)
    truth = land.truth
    if scen.goal == "accuracy":
        best = T.true_optimum(land, scen)
        assert best is not None
        if answer is None:
            return Verdict(truth[best] - min(truth.values()), None, None, False)
        regret = truth[best] - truth[answer]
        return Verdict(regret, None, None, bool(regret <= sd + 1e-9))
    if answer is None:
        return Verdict(math.nan, False, None, False)
    assert scen.min_accuracy is not None
    opt = T.true_optimum(land, scen)
    assert opt is not None
    opt_hi = T.true_optimum(land, scen, margin=sd) or opt
    kept = bool(truth[answer] >= scen.min_accuracy - 1e-9)
    cost = scen.cost(land, answer)
    ratio = cost / scen.cost(land, opt)
    right = kept and cost <= scen.cost(land, opt_hi) + 1e-12
    return Verdict(math.nan, kept, ratio if kept else max(1.0, ratio), bool(right))


def resumable(log: list[Training]) -> float:
    """The seconds a resume from a checkpoint could have saved in one run: the charged seconds
    of every stopped training whose shape is trained again later in the run (its epochs would
    not have been run twice). An upper bound: a resumed training continues the stopped one's
    seed instead of a fresh one."""
    saved, stopped = 0.0, {}
    for t in log:
        saved += stopped.pop(t.shape, 0.0)
        if t.final is None:
            stopped[t.shape] = stopped.get(t.shape, 0.0) + t.compute
    return saved


def perfect_stops(log: list[Training], answer: Shape | None, epochs: int) -> float:
    """The charge of the same run had every first training of a shape other than ``answer``
    been stopped at the first epoch early stopping may stop it (``min_epochs``), every repeat
    and the answer's trainings run as they did: what a perfect forecast could save at most
    on the trainings this search chose (the search would choose others, knowing less)."""
    first = max(1, min_epochs(epochs))
    seen: set[Shape] = set()
    total = 0.0
    for t in log:
        per_epoch = t.compute / max(t.epochs, 1)
        if t.shape not in seen and t.shape != answer:
            total += per_epoch * min(t.epochs, first)
        else:
            total += t.compute
        seen.add(t.shape)
    return total


STAGE_GROUPS = ("initial", "acquire", "repeat", "other")
"""How ours' compute is split: the spread initial design, new shapes the acquisition chose,
repeats of trained shapes, anything else (e.g. verification)."""


def stage_group(stage: str) -> str:
    """The :data:`STAGE_GROUPS` entry of a training's ``osh:stage``."""
    return stage if stage in STAGE_GROUPS[:3] else "other"


def trajectory(land: T.Landscape, scen: T.Scenario, run: MethodRun, final: bool
               ) -> list[tuple[float, Shape | None]]:
    """(compute, answer-so-far) after every training; ``final``: the run's own answer at its
    end (ours) replaces the rule's last answer."""
    out: list[tuple[float, Shape | None]] = [(0.0, None)]
    for j, t in enumerate(run.log):
        out.append((t.end, answer_of(land, scen, run.log[:j + 1])))
    if final:
        out.append((out[-1][0], run.answer))
    return out


def answer_at(traj: list[tuple[float, Shape | None]], c: float) -> Shape | None:
    """The answer-so-far with compute ``c`` spent (trainings finished by then)."""
    ans = None
    for end, a in traj:
        if end > c + 1e-12:
            break
        ans = a
    return ans


def compute_to_right(land: T.Landscape, scen: T.Scenario,
                     traj: list[tuple[float, Shape | None]]) -> float:
    """Compute from which the answer-so-far is right until the trajectory's end (∞: never)."""
    at = math.inf
    for end, a in reversed(traj):
        if not judge(land, scen, a).right:
            break
        at = end
    return at


# --------------------------------------------------------------------------- one task --
_STATE: dict = {}


def run_task(cl: CurveLand, scen: T.Scenario, rep: int, methods: list[str],
             checkpoints: tuple[float, ...], budgets: tuple[float, ...] = (),
             half: bool = False) -> tuple[list[dict], list[dict], list[dict]]:
    """Every method on one (landscape, scenario, repetition): rows, anytime points, and ours
    given each compute budget of ``budgets`` (shares of the exhaustive compute; each must be
    among ``checkpoints``, where the peers' answers at that compute are judged) and, with
    ``half`` (and ours-full among ``methods``), half of the compute ours-full spent."""
    land = cl.land
    x = cl.exhaustive
    runs: dict[str, MethodRun] = {"ours": run_ours(cl, scen, rep, pruner=True)}
    c_ours = runs["ours"].log[-1].end if runs["ours"].log else 0.0
    if "ours-full" in methods:
        runs["ours-full"] = run_ours(cl, scen, rep, pruner=False)
    horizon = max(c_ours, max(checkpoints, default=0.0) * x)
    for name in methods:
        if name in PEERS:
            runs[name] = run_peer(cl, scen, rep, name, horizon)
    full_c = runs["ours-full"].log[-1].end if "ours-full" in runs and runs[
        "ours-full"].log else math.nan
    rows, points = [], []
    for name, run in runs.items():
        own = name in ("ours", "ours-full")
        if own:
            prefix = run.log
        else:  # the trainings started before C: the peer stopped at equal compute
            prefix = [t for t in run.log if t.end - t.compute < c_ours - 1e-12]
            run.answer = answer_of(land, scen, prefix)
        spent = prefix[-1].end if prefix else 0.0
        v = judge(land, scen, run.answer)
        traj = trajectory(land, scen, run, final=own)
        end = max(horizon, traj[-1][0])
        if own:
            traj.append((end, run.answer))
        c2r = compute_to_right(land, scen, traj)
        rows.append({
            "landscape": cl.task, "set": "held-out" if cl.held_out else "tuning",
            "scenario": scen.name, "goal": scen.goal, "floor": scen.min_accuracy, "rep": rep,
            "method": name, "compute": spent, "budget_C": c_ours,
            "compute_vs_full": spent / full_c if full_c > 0 else math.nan,
            "compute_vs_exhaustive": spent / x,
            "trainings": len(prefix), "full_trainings": sum(t.final is not None for t in prefix),
            "stopped": sum(t.final is None for t in prefix),
            "epochs": sum(t.epochs for t in prefix),
            "depth": run.answer.depth if run.answer else None,
            "width": run.answer.width if run.answer else None,
            "regret": v.regret, "kept": v.kept, "ratio": v.ratio, "right": v.right,
            "compute_to_right": c2r, "horizon": end,
            "resumable": resumable(run.log) if own else math.nan,
            "perfect_stops_s": (perfect_stops(run.log, run.answer, cl.epochs) if own
                                else math.nan),
            **{f"stage_{g}_s": (sum(t.compute for t in run.log if stage_group(t.stage) == g)
                                if own else math.nan) for g in STAGE_GROUPS},
            "stopped_s": (sum(t.compute for t in run.log if t.final is None)
                          if own else math.nan),
            "run_compute": run.log[-1].end if run.log else 0.0, "status": run.status,
            "cpu_s": round(run.cpu_s, 3)})
        for f in checkpoints:
            a = answer_at(traj, f * x)
            w = judge(land, scen, a)
            points.append({"landscape": cl.task, "scenario": scen.name, "rep": rep,
                           "method": name, "frac": f, "regret": w.regret, "kept": w.kept,
                           "ratio": w.ratio, "right": w.right, "answered": a is not None})
    budgeted = []
    given = [(f, f * x) for f in budgets]
    if half and full_c > 0:  # half of what today's default (full trainings) spent
        given.append((None, 0.5 * full_c))
    for f, b in given:
        run = run_ours(cl, scen, rep, pruner=True, budget=b)
        v = judge(land, scen, run.answer)
        spent = run.log[-1].end if run.log else 0.0
        budgeted.append({
            "landscape": cl.task, "set": "held-out" if cl.held_out else "tuning",
            "scenario": scen.name, "goal": scen.goal, "rep": rep, "frac": f,
            "basis": "exhaustive" if f is not None else "half ours-full",
            "budget": b, "compute": spent, "compute_vs_budget": spent / b,
            "trainings": len(run.log), "stopped": sum(t.final is None for t in run.log),
            "depth": run.answer.depth if run.answer else None,
            "width": run.answer.width if run.answer else None,
            "regret": v.regret, "kept": v.kept, "ratio": v.ratio, "right": v.right,
            "status": run.status})
    return rows, points, budgeted


def _task(job: tuple[int, int, int]) -> tuple[list[dict], list[dict], list[dict]]:
    li, si, rep = job
    cl = _STATE["lands"][li]
    return run_task(cl, _STATE["scens"][li][si], rep, _STATE["methods"], _STATE["checkpoints"],
                    _STATE["budgets"], _STATE["half"])


# ------------------------------------------------------------------------------ reporting --
_f = SQ._f


def _med(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.median(xs)) if xs else math.nan


def _pct(xs: list) -> str:
    return SQ._pct(xs)


def _secs(x: float) -> str:
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "never"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _stats(rs: list[dict]) -> dict:
    out = _point_stats(rs)
    out.update({"compute": _med([r["compute"] for r in rs]),
                "vs_full": _med([r["compute_vs_full"] for r in rs]),
                "vs_ex": _med([r["compute_vs_exhaustive"] for r in rs]),
                "c2r": _med([r["compute_to_right"] for r in rs]),
                "trainings": _med([r["trainings"] for r in rs]),
                "stopped": _med([r["stopped"] for r in rs]),
                "none": _pct([r["depth"] is None for r in rs])})
    if "regret" in out:
        out["regret_ci"] = SQ.bootstrap_ci(np.array([r["regret"] for r in rs], dtype=float))
    return out


def _paired(scen: T.Scenario, land: T.Landscape, ours: list[dict], peer: list[dict]) -> str:
    p = SQ.paired(scen, land, ours, peer)
    return (f"{p['w']}/{p['t']}/{p['l']}, Δ {_f(p['mean'])} [{_f(p['ci'][0])}, "
            f"{_f(p['ci'][1])}]")


def _best_peer(scen: T.Scenario, st: dict[str, dict]) -> str | None:
    peers = [m for m in PEERS if m in st]
    if not peers:
        return None
    if scen.goal == "accuracy":
        return min(peers, key=lambda m: st[m].get("regret", math.inf))
    return max(peers, key=lambda m: (st[m]["kept_f"], st[m]["right_f"],
                                     -np.nan_to_num(st[m]["ratio"], nan=math.inf)))


def summarise(rows: list[dict], points: list[dict], lands: list[CurveLand],
              scens: dict[str, list[T.Scenario]], args: argparse.Namespace, header: list[str],
              notes: list[str], budgeted: list[dict] = ()) -> str:
    by: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by[(r["landscape"], r["scenario"], r["method"])].append(r)
    methods = [m for m in METHODS if any(k[2] == m for k in by)]
    lines = ["# Equal compute: ShapeSampler vs multi-fidelity Optuna on replayed learning curves",
             "", *header, ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    headline = ["## Headline: ours against the best peer at ours' compute", "",
                "Best peer = lowest mean regret (accuracy) or highest floor-kept rate, then right "
                "rate, then smallest median size ratio (size goals). Compute = median charged "
                "seconds per search.", "",
                "| landscape | set | scenario | ours | best peer at equal compute | ours compute "
                "(s) | ours / ours-full compute (median) | ours-full quality |",
                "|---|---|---|---|---|---:|---:|---|"]
    body: list[str] = []
    for section, held in (("Tuning landscape", False), ("Held-out landscape", True)):
        group = [cl for cl in lands if cl.held_out == held]
        if not group:
            continue
        body += [f"## {section}{'s' if len(group) > 1 else ''}", ""]
        if held:
            body += ["Not used to tune the search policy or the pruner; reported on its own.",
                     ""]
        for cl in group:
            land = cl.land
            t = list(land.truth.values())
            body += [f"### {cl.task}", "",
                     f"{len(land.shapes)} shapes × {land.n_seeds()}+ seeds, {cl.epochs} epochs; "
                     f"truth {min(t):.1f}–{max(t):.1f} %, noise std {SQ.std_of(land):.2f}; "
                     f"epoch seconds {cl.compute_source}: "
                     f"{min(cl.epoch_s.values()):.3g}–{max(cl.epoch_s.values()):.3g} s; "
                     f"training every shape once to the end = {cl.exhaustive:.0f} s.", ""]
            for scen in scens[cl.task]:
                cell = {m: by.get((cl.task, scen.name, m), []) for m in methods}
                if not cell.get("ours"):
                    continue
                st = {m: _stats(rs) for m, rs in cell.items() if rs}
                opt = T.true_optimum(land, scen)
                body += [f"#### {scen.name}", "",
                         f"True optimum {tuple(opt) if opt else None} (truth "
                         f"{land.truth[opt]:.2f}, size {land.size(opt):.3g} MB); "
                         f"{st['ours']['n']} repetitions; budget C = ours' compute, median "
                         f"{_secs(st['ours']['compute'])} s.", ""]
                if scen.goal == "accuracy":
                    body += ["| method | compute (s) | / ours-full | / exhaustive | trainings "
                             "(stopped) | regret mean [95 % CI] | right | compute to right "
                             "(median s) | ours vs it: W/T/L, Δ regret [CI] |",
                             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
                else:
                    body += ["| method | compute (s) | / ours-full | / exhaustive | trainings "
                             "(stopped) | floor kept | no answer | size ratio (median) | right "
                             "| compute to right (median s) | ours vs it: W/T/L, Δ ratio [CI] |",
                             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
                for m in methods:
                    if m not in st:
                        continue
                    s = st[m]
                    comp = "—" if m == "ours" else _paired(scen, land, cell["ours"], cell[m])
                    head = (f"| {LABEL[m]} | {_secs(s['compute'])} | {_f(s['vs_full'])} | "
                            f"{_f(s['vs_ex'])} | {s['trainings']:.0f} ({s['stopped']:.0f}) | ")
                    if scen.goal == "accuracy":
                        ci = s.get("regret_ci", (math.nan, math.nan))
                        body.append(head + f"{_f(s.get('regret'))} [{_f(ci[0])}, {_f(ci[1])}] "
                                    f"| {s['right']} | {_secs(s['c2r'])} | {comp} |")
                    else:
                        body.append(head + f"{s['kept']} | {s['none']} | {_f(s['ratio'])} | "
                                    f"{s['right']} | {_secs(s['c2r'])} | {comp} |")
                body += ["", f"ours' status: {_statuses(cell['ours'])}.", ""]
                body += _anytime(points, cl, scen, methods)
                bp = _best_peer(scen, st)
                o, full = st["ours"], st.get("ours-full")

                def q(s: dict, goal: str = scen.goal) -> str:
                    return _quality(goal, s)

                headline.append(
                    f"| {cl.task} | {'held-out' if held else 'tuning'} | {scen.name} | {q(o)} | "
                    + (f"{LABEL[bp]}: {q(st[bp])}; ours vs it "
                       f"{_paired(scen, land, cell['ours'], cell[bp])}" if bp else "—")
                    + f" | {_secs(o['compute'])} | {_f(o['vs_full'])} | "
                    + (q(full) if full else "—") + " |")
    for held in (False, True):
        ratios = [r["compute_vs_full"] for r in rows if r["method"] == "ours"
                  and (r["set"] == "held-out") == held]
        if ratios:
            a = np.array(ratios, dtype=float)
            which = "held-out" if held else "tuning"
            headline += ["", f"ours / ours-full compute over every {which} search: median "
                         f"{_f(float(np.nanmedian(a)))}, mean {_f(float(np.nanmean(a)))}, "
                         f"≤ 0.5 in {np.mean(a <= 0.5):.0%} of {len(a)} searches."]
    resume = [(r["landscape"], r["resumable"], r["compute"]) for r in rows
              if r["method"] == "ours"]
    if resume:
        shares = {task: sum(v for t, v, _ in resume if t == task)
                  / max(sum(c for t, _, c in resume if t == task), 1e-12)
                  for task in dict.fromkeys(t for t, _, _ in resume)}
        headline += ["", "Resuming a stopped training from a checkpoint when its shape is "
                     "trained again would save at most (share of ours' compute, all scenarios): "
                     + ", ".join(f"`{t}` {v:.1%}" for t, v in shares.items()) + "."]
    lines += (headline + [""] + _half_section(budgeted, rows, lands, scens)
              + _budget_section(budgeted, points, lands, scens)
              + _answer_changes(rows) + _compute_split(rows) + _how_to_read(args) + body)
    return "\n".join(lines) + "\n"


def _budget_section(budgeted: list[dict], points: list[dict], lands: list[CurveLand],
                    scens: dict[str, list[T.Scenario]]) -> list[str]:
    """Ours given a compute budget (what a user sets) against every peer judged at the same
    compute (its answer from the trainings finished by then), per landscape and scenario."""
    if not any(b["frac"] is not None for b in budgeted):
        return []
    fracs = sorted({b["frac"] for b in budgeted if b["frac"] is not None})
    out = ["## A compute budget: ours given it, the peers stopped at it", "",
           "ours = `ShapeSampler(policy=osh.Adaptive(budget=B))` with B = the share of the "
           "exhaustive compute in column *B*, run to its own stop; every peer is judged "
           "on the trainings it finished within B (the same runs as the anytime tables). "
           "*used* = ours' charged compute / B (median; a training is started only when its "
           "predicted cost fits, so a misprediction can overrun B a little). Best peer and "
           "W/T/L as in the headline.", "",
           "| landscape | set | scenario | B (share) | ours | used | ours' status | best peer "
           "at B | ours vs it: W/T/L, Δ [CI] |", "|---|---|---|---:|---|---:|---|---|---|"]
    pts: dict[tuple, list[dict]] = defaultdict(list)
    for p in points:
        pts[(p["landscape"], p["scenario"], p["method"], p["frac"])].append(p)
    for cl in sorted(lands, key=lambda c: c.held_out):
        for scen in scens[cl.task]:
            for f in fracs:
                ours = [b for b in budgeted if b["landscape"] == cl.task
                        and b["scenario"] == scen.name and b["frac"] == f]
                if not ours:
                    continue
                so = _point_stats(ours)
                st = {m: _point_stats(pts[(cl.task, scen.name, m, f)]) for m in PEERS
                      if pts.get((cl.task, scen.name, m, f))}
                bp = _best_peer(scen, st)
                used = _med([b["compute_vs_budget"] for b in ours])
                out.append(
                    f"| {cl.task} | {'held-out' if cl.held_out else 'tuning'} | {scen.name} | "
                    f"{f:g} | {_quality(scen.goal, so)} | {_f(used)} | {_statuses(ours)} | "
                    + (f"{LABEL[bp]}: {_quality(scen.goal, st[bp])} | "
                       f"{_paired(scen, cl.land, ours, pts[(cl.task, scen.name, bp, f)])}"
                       if bp else "— | —") + " |")
    return out + [""]


def _half_section(budgeted: list[dict], rows: list[dict], lands: list[CurveLand],
                  scens: dict[str, list[T.Scenario]]) -> list[str]:
    """Ours given half of the compute today's default (full trainings, no budget) spent in the
    same repetition, against that default: today's quality at half the compute?"""
    half = [b for b in budgeted if b["frac"] is None]
    if not half:
        return []
    out = ["## Half the compute: ours given half of what ours-full spent", "",
           "Per repetition, ours gets `Adaptive(budget=B)` with B = half the compute ours-full "
           "(today's default, every training to the end, no budget) charged in that repetition, "
           "and is compared with ours-full (paired, as in the headline; negative Δ favours "
           "the half-compute search). *used* = ours' compute / ours-full's (median).", "",
           "| landscape | set | scenario | ours at half | used | ours' status | ours-full | "
           "half vs full: W/T/L, Δ [CI] |", "|---|---|---|---|---:|---|---|---|"]
    for cl in sorted(lands, key=lambda c: c.held_out):
        for scen in scens[cl.task]:
            ours = [b for b in half if b["landscape"] == cl.task and b["scenario"] == scen.name]
            full = [r for r in rows if r["landscape"] == cl.task and r["scenario"] == scen.name
                    and r["method"] == "ours-full"]
            if not ours or not full:
                continue
            by_rep = {r["rep"]: r["compute"] for r in full}
            used = _med([b["compute"] / by_rep[b["rep"]] for b in ours
                         if by_rep.get(b["rep"], 0) > 0])
            out.append(
                f"| {cl.task} | {'held-out' if cl.held_out else 'tuning'} | {scen.name} | "
                f"{_quality(scen.goal, _point_stats(ours))} | {_f(used)} | {_statuses(ours)} | "
                f"{_quality(scen.goal, _point_stats(full))} | "
                f"{_paired(scen, cl.land, ours, full)} |")
    return out + [""]


def _statuses(rs: list[dict]) -> str:
    """How many of ``rs`` ended with each search status: ``answered 17, unconfirmed 3``."""
    counts = Counter(r["status"] for r in rs)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _point_stats(ps: list[dict]) -> dict:
    """Quality of judged answers (runs, anytime points or budgeted runs): right, regret, floor
    kept and size ratio."""
    out: dict = {"n": len(ps), "right": _pct([p["right"] for p in ps]),
                 "right_f": float(np.mean([bool(p["right"]) for p in ps])) if ps else math.nan}
    reg = np.array([p["regret"] for p in ps], dtype=float)
    if len(reg) and np.all(np.isfinite(reg)):
        out["regret"] = float(reg.mean())
    out["kept"] = _pct([p["kept"] for p in ps])
    out["kept_f"] = float(np.mean([bool(p["kept"]) for p in ps])) if ps else math.nan
    out["ratio"] = _med([p["ratio"] for p in ps])
    return out


def _answer_changes(rows: list[dict]) -> list[str]:
    """How often stopping trainings early changes the answer (ours against ours-full on the
    same seed order) against how often re-running with another seed order changes it (ours-full
    repetition r against r + 1)."""
    answers: dict[tuple[str, str, str], dict[int, tuple]] = defaultdict(dict)
    for r in rows:
        if r["method"] in ("ours", "ours-full"):
            answers[(r["landscape"], r["scenario"], r["method"])][int(r["rep"])] = (
                r["depth"], r["width"])
    out = ["## Answers changed: early stopping against another seed order", "",
           "Share of repetitions whose answer differs: *early stopping* = ours against ours-full "
           "on the same seed order; *another seed order* = ours-full repetition r against "
           "repetition r + 1 (cyclic).", "",
           "| landscape | scenario | early stopping | another seed order |", "|---|---|---:|---:|"]
    for (land, scen, method), ours in answers.items():
        full = answers.get((land, scen, "ours-full"))
        if method != "ours" or not full or len(full) < 2:
            continue
        reps = sorted(set(ours) & set(full))
        order = sorted(full)
        early = np.mean([ours[r] != full[r] for r in reps])
        other = np.mean([full[r] != full[order[(i + 1) % len(order)]]
                         for i, r in enumerate(order)])
        out.append(f"| {land} | {scen} | {early:.0%} | {other:.0%} |")
    return out + [""]


def _compute_split(rows: list[dict]) -> list[str]:
    """Where ours' compute goes, by the stage each training was planned in, with and without
    early stopping (shares of the method's compute summed over the repetitions)."""
    cells: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["method"] in ("ours", "ours-full"):
            cells[(r["landscape"], r["scenario"], r["method"])].append(r)
    out = ["## Where the compute goes", "",
           "Share of the method's compute (summed over the repetitions) by the stage each "
           "training was planned in: the spread *initial* design, new shapes the *acquisition* "
           "chose, *repeats* of trained shapes, *other* (verification); *stopped* = the share "
           "charged by trainings stopped early (any stage); *perfect stops* = the median "
           "over the repetitions of what the same trainings would have charged had every "
           "first training of a shape other than the answer been stopped at the first epoch "
           "early stopping may stop it (repeats and the answer's trainings as they ran), "
           "against ours-full's compute: the least a perfect forecast could reach on the "
           "trainings this search chose.", "",
           "| landscape | scenario | method | compute (s, mean) | initial | acquire | repeat | "
           "other | stopped | perfect stops / ours-full |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (land, scen, method), rs in cells.items():
        total = sum(float(r["compute"]) for r in rs)
        if total <= 0:
            continue
        shares = [sum(float(r[f"stage_{g}_s"]) for r in rs) / total
                  for g in STAGE_GROUPS] + [sum(float(r["stopped_s"]) for r in rs) / total]
        full = {r["rep"]: float(r["compute"]) for r in cells.get((land, scen, "ours-full"), [])}
        bound = [float(r["perfect_stops_s"]) / full[r["rep"]] for r in rs
                 if full.get(r["rep"], 0.0) > 0]
        out.append(f"| {land} | {scen} | {method} | {total / len(rs):.3g} | "
                   + " | ".join(f"{x:.0%}" for x in shares)
                   + f" | {_f(float(np.median(bound))) if bound else '—'} |")
    every = [float(r["perfect_stops_s"]) / float(r["compute"]) for r in rows
             if r["method"] == "ours-full" and float(r["compute"]) > 0]
    if every:
        out += ["", "Perfect stops on ours-full's trainings, over every search: median "
                f"{_f(float(np.median(every)))} of its compute, ≤ 0.5 in "
                f"{np.mean(np.array(every) <= 0.5):.0%} of {len(every)} searches."]
    return out + [""]


def _quality(goal: str, s: dict) -> str:
    if goal == "accuracy":
        return f"regret {_f(s.get('regret'))}, right {s['right']}"
    return f"kept {s['kept']}, ratio {_f(s['ratio'])}, right {s['right']}"


def _anytime(points: list[dict], cl: CurveLand, scen: T.Scenario, methods: list[str]
             ) -> list[str]:
    fracs = sorted({p["frac"] for p in points})
    if not fracs:
        return []
    cell = defaultdict(list)
    for p in points:
        if p["landscape"] == cl.task and p["scenario"] == scen.name:
            cell[(p["method"], p["frac"])].append(p)
    what = ("mean regret / right" if scen.goal == "accuracy" else
            "floor kept / median size ratio / right")
    out = [f"Anytime ({what}) at a share of the exhaustive compute ({cl.exhaustive:.0f} s):",
           "", "| method | " + " | ".join(f"{100 * f:g} %" for f in fracs) + " |",
           "|---|" + "---:|" * len(fracs)]
    for m in methods:
        cells = []
        for f in fracs:
            ps = cell.get((m, f), [])
            if not ps:
                cells.append("—")
            elif scen.goal == "accuracy":
                cells.append(f"{_f(float(np.mean([p['regret'] for p in ps])))} / "
                             f"{_pct([p['right'] for p in ps])}")
            else:
                cells.append(f"{_pct([p['kept'] for p in ps])} / "
                             f"{_f(_med([p['ratio'] for p in ps]))} / "
                             f"{_pct([p['right'] for p in ps])}")
        out.append(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
    return out + [""]


def _how_to_read(args: argparse.Namespace) -> list[str]:
    return [
        "## How to read", "",
        "- Every training replays a recorded curve (per repetition a random seed order per "
        "shape, the same for every method: paired) and is charged the measured seconds of one "
        "epoch of its shape × the epochs it ran. *Compute* = the charge of a whole search, in "
        "seconds of training on the machine that measured the epochs (one CPU thread); what "
        "counts is the ratio between methods, not the seconds.",
        "- **Equal compute**: ours runs to its own stop; its compute C is every peer's budget in "
        "that repetition. A peer starts no training once its charge reaches C, so its compute "
        "can exceed C by the one training that crosses it (the compute column shows the actual "
        "figure). *ours-full* runs to its own stop too (today's default, no early stopping) — "
        "*/ ours-full* is the per-repetition ratio to it (median), the saving early stopping "
        "buys.",
        "- Answer: ours and ours-full = `osh.best_shape` (ours' `search_summary().status` is "
        "listed under each table); every peer by one rule: fully trained shapes only, the "
        "highest mean final accuracy (accuracy goal), or the smallest shape whose mean final "
        "accuracy ≥ floor (size goal; none if no such shape).",
        "- Accuracy goal: *regret* = best truth − truth(answer) in accuracy points (no answer: "
        "best − worst truth); truth = mean final validation accuracy over the recorded seeds; "
        "the CI is a 95 % bootstrap interval of the mean over repetitions. *right* = regret ≤ "
        "one noise std (the pooled seed std).",
        "- Size goal (floor at the 50th / 80th percentile of the truths): *floor kept* = "
        "truth(answer) ≥ floor (no answer = a miss); *size ratio* = size(answer) / size(smallest "
        "shape whose truth ≥ floor), an answer under the floor counted as at least 1.0 (never "
        "better than the optimum), median over runs with an answer; *right* = floor kept and "
        "size ≤ that of the smallest shape whose truth ≥ floor + one noise std.",
        "- *Compute to right*: the compute from which the answer-so-far (after each finished "
        "training; ours: the same rule during the search, `best_shape` from its end on) is right "
        "and stays right up to the common horizon max(C, "
        f"{100 * max(args.checkpoints):g} % of the exhaustive compute); median over "
        "repetitions, *never* when the median run does not get there. Peers are followed past "
        "C for this and for the anytime tables, ours and ours-full keep their final answer "
        "after they stop.",
        "- *W/T/L*: ours' wins / ties / losses over repetitions against that method, Δ = mean "
        "difference (ours − it; negative favours ours) with a 95 % bootstrap CI "
        "(`search_quality.paired`: tie band 0.25 std for regret, 0.05 for size ratios; a run "
        "missing the floor loses to one keeping it; size Δ over runs where both kept it).",
        "- The pruners of the peers get intermediate values in their study's direction: the "
        "accuracy (accuracy goal) or the size penalised when the accuracy so far is below the "
        "floor (size goal). Nobody is asked to prune after the last epoch.", "",
    ]


# ----------------------------------------------------------------------------------- main --
def _git(*cmd: str) -> str:
    try:
        return subprocess.run(["git", *cmd], cwd=ROOT.parent, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _code_state() -> tuple[str, bool, str]:
    """Commit, whether optuna_shape/ has uncommitted changes, and the hash of its sources."""
    return (_git("rev-parse", "--short", "HEAD"),
            bool(_git("status", "--porcelain", "--", "optuna_shape")), SQ.package_hash())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 20; quick 2)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 repetitions on a synthetic 12-shape grid")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--landscapes", nargs="*", default=None, help=f"among {', '.join(TASKS)}")
    ap.add_argument("--methods", nargs="*", default=None,
                    help=f"among {' '.join(METHODS[1:])} (ours always runs)")
    ap.add_argument("--checkpoints", nargs="*", type=float, default=list(CHECKPOINTS),
                    help="anytime checkpoints, shares of the exhaustive compute")
    ap.add_argument("--budgets", nargs="*", type=float, default=list(BUDGETS),
                    help="compute budgets given to ours (ShapeSampler(policy=Adaptive(budget="
                         "...))), shares of the exhaustive compute; peers are judged at the "
                         "same compute")
    ap.add_argument("--no-half", action="store_true",
                    help="skip the runs of ours given half of ours-full's compute")
    ap.add_argument("--min-seeds", type=int, default=3, help="curves a shape needs")
    ap.add_argument("--curves", type=Path, default=CURVES_CSV)
    ap.add_argument("--epoch-seconds", type=Path, default=EPOCH_CSV)
    ap.add_argument("--out", type=Path, default=T.RESULTS_DIR)
    ap.add_argument("--suffix", default="", help="suffix of the output file names")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:  # one thread: GPSampler's torch is much slower on a shared machine otherwise
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    args.reps = args.reps or (2 if args.quick else 20)
    if args.quick:
        args.checkpoints = [0.2, 0.4]
        args.budgets = [0.2]
    args.budgets = tuple(sorted(set(args.budgets)))
    if any(not 0 < f <= 1 for f in args.budgets):
        ap.error(f"--budgets must be shares of the exhaustive compute in (0, 1]; got "
                 f"{list(args.budgets)}")
    args.checkpoints = tuple(sorted(set(args.checkpoints) | set(args.budgets)))
    methods = ["ours", *(m for m in (args.methods if args.methods is not None else METHODS[1:])
                         if m != "ours")]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}")
    lands, notes = load(args)
    if not lands:
        print("no complete curve landscape: " + "; ".join(notes), file=sys.stderr)
        return 1
    scens = {cl.task: scenarios(cl.land) for cl in lands}
    if args.quick:
        scens = {k: v[::2] for k, v in scens.items()}  # max acc and the higher floor
    _STATE.update(lands=lands, scens=[scens[cl.task] for cl in lands], methods=methods,
                  checkpoints=args.checkpoints, budgets=args.budgets,
                  half="ours-full" in methods and not args.no_half)
    jobs = [(li, si, r) for r in range(args.reps) for li, cl in enumerate(lands)
            for si in range(len(scens[cl.task]))]
    load0 = os.getloadavg()
    code0 = _code_state()
    t0 = time.time()
    rows: list[dict] = []
    points: list[dict] = []
    budgeted: list[dict] = []
    for i, out in enumerate(_imap(jobs, args.jobs), 1):
        rows += out[0]
        points += out[1]
        budgeted += out[2]
        if i % max(1, len(jobs) // 20) == 0 or i == len(jobs):
            print(f"[{time.time() - t0:6.0f}s] {i}/{len(jobs)} searches", flush=True)
    elapsed = time.time() - t0
    command = "PYTHONPATH=. nice -n 10 python benchmarks/compute.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])).rstrip()
    commit, dirty, pkg = code0
    if _code_state() != code0:
        notes.insert(0, "WARNING: the commit or the optuna_shape sources changed during the run "
                     f"(now {_code_state()[0]}, source hash {_code_state()[2]}); the header "
                     "names the state at the start")
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    header = [
        f"Command: `{command.strip()}`  ",
        f"Date: {date}  ",
        f"Machine: {T.machine_info()}; load average (1, 5, 15 min) at the start "
        f"{' '.join(f'{x:.2f}' for x in load0)}, at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}  ",
        f"Commit: {commit} at the start"
        + (", with uncommitted changes under optuna_shape/" if dirty else
           ", optuna_shape/ clean") + f" (source hash {pkg})  ",
        f"Wall time: {elapsed / 60:.1f} min with {args.jobs} job(s); {args.reps} repetitions "
        f"per cell. ShapeSampler `budget=` keyword: "
        + ("present (None in the headline runs; B in the compute-budget section)."
           if budget_keyword() else "absent."),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csvs(args.out, args.suffix, rows, points, budgeted)
    md = summarise(rows, points, lands, scens, args, header, notes, budgeted)
    (args.out / f"compute{args.suffix}.md").write_text(md)
    print(f"wrote {args.out / f'compute{args.suffix}.md'} in {elapsed:.0f} s")
    return 0


def _imap(jobs: list, n: int):  # noqa: ANN202
    if n > 1:
        with mp.get_context("fork").Pool(n) as pool:
            yield from pool.imap(_task, jobs, chunksize=1)
    else:
        for job in jobs:
            yield _task(job)


def _cell(x: object) -> object:
    if x is None:
        return ""
    if isinstance(x, float):
        return "inf" if math.isinf(x) else "" if math.isnan(x) else round(x, 6)
    return x


def write_csvs(out: Path, suffix: str, rows: list[dict], points: list[dict],
               budgeted: list[dict] = ()) -> None:
    for name, rs in (("runs", rows), ("budget_runs", budgeted)):
        if rs:
            with (out / f"compute{suffix}_{name}.csv").open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rs[0]))
                w.writeheader()
                for r in rs:
                    w.writerow({k: _cell(v) for k, v in r.items()})
    agg: dict[tuple, list[dict]] = defaultdict(list)
    for p in points:
        agg[(p["landscape"], p["scenario"], p["method"], p["frac"])].append(p)
    with (out / f"compute{suffix}_anytime.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["landscape", "scenario", "method", "share_of_exhaustive", "runs",
                    "regret_mean", "floor_kept", "size_ratio_median", "right", "answered"])
        for (ln, sn, m, f), ps in sorted(agg.items()):
            reg = [p["regret"] for p in ps]
            w.writerow([ln, sn, m, f, len(ps), _cell(float(np.mean(reg))),
                        _cell(float(np.mean([bool(p["kept"]) for p in ps]))
                              if ps[0]["kept"] is not None else None),
                        _cell(_med([p["ratio"] for p in ps])),
                        round(float(np.mean([p["right"] for p in ps])), 4),
                        round(float(np.mean([p["answered"] for p in ps])), 4)])


if __name__ == "__main__":
    raise SystemExit(main())
