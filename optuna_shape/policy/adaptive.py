"""The adaptive policy: a noise-aware sequential search on a posterior over every feasible shape.

Each call refits :class:`~optuna_shape.models.posterior.ShapePosterior` (GP with an integrated Eq. 2
linear mean and a heteroscedastic seed-noise model) from every successful training and returns
one action. Choices, in order:

1. **No feasible shape** → ``Stop(status="no_feasible")``. **No goal** → the whole complying set:
   the modeling strategy's interval sample (as the paper sizes it) is trained, then
   ``Stop(status="complying_set")`` with P(accuracy ≥ floor) per shape in the details.
2. **Budget**: ``max_trainings`` (default ``max(n_initial + 3, ceil(n_feasible / 3))``) counts
   every training, repeats and failures included. When finished + running trainings reach it,
   the policy waits for the running ones, then stops with the best answer it can justify.
3. **Initial design**: ``n_initial`` shapes spread over the feasible grid by greedy maximin in
   the scaled ``(log depth, log width)`` square, starting from the shape nearest the centre
   (ties broken by ``seed``); all not yet trained or running are proposed at once.
4. **Planned repeat**: once the design is trained and no shape has two successful trainings,
   the best-measured shape (min-cost goals: the cheapest one measured at or above the floor) is
   trained again, so the noise is estimated from evidence, not only from the prior.
5. **Acquisition** (one shape per call; running trainings are fantasised at their posterior mean
   — kriging believer — so parallel workers get distinct shapes):

   * ``"accuracy"``: augmented expected improvement on the latent accuracy over the best
     posterior mean of the trained shapes, ``EI · (1 − σ_n / sqrt(s² + σ_n²))`` (Huang et al.
     2006): trained shapes may be proposed again (that is how repeats happen) but lose value as
     their posterior std shrinks. With a floor, shapes are weighted by P(f ≥ floor).
   * ``"size"``/``"latency"``/``"energy"``: expected saving ``p₁ · log(C / cost)`` over shapes
     cheaper than the current answer (``C`` its cost; with no answer yet, twice the largest
     cost), where ``p₁`` is the probability that one more training makes the shape an answer
     (its posterior std shrinks by one observation, its mean moves accordingly, and it must then
     clear ``floor + z_confidence · std``). A shape stuck on the floor loses value as it is
     repeated; a cheap untried shape with a fair chance keeps it. Trained shapes qualify while
     borderline (P(f ≥ floor) above ``1 − confidence``, not yet an answer), and the answer
     itself while P(f ≥ floor) < 0.99, valued by the saving lost if it were wrong. Candidates
     are never dropped on a point prediction.

6. **Answer**, always a trained shape whose own measured mean meets the floor:
   ``"accuracy"``: the highest posterior mean (with a floor: among those with
   P(f ≥ floor) ≥ ``confidence``); min-cost goals: the cheapest with P(f ≥ floor) ≥
   ``confidence``. With a floor, a shape trained once must clear it by two noise std, otherwise
   it is repeated first: a lone lucky seed is how wrong answers were chosen before.

   **At any budget.** When the budget ends (or nothing useful is left to train) before any shape
   is confirmed, the search still answers with ``Stop(status="unconfirmed")``: among trained
   shapes whose P(f ≥ floor) is at least 0.5 and within 0.1 of the best-supported one's, the
   goal's best (min-cost: the cheapest; accuracy: the highest posterior mean), its
   ``confidence`` that probability, and the reason says what one more training of it would buy
   (the probability it would then be confirmed). ``floor_not_reached`` only when no trained
   shape has P(f ≥ floor) ≥ 0.5. The budget's last training, with nothing confirmed, goes to the
   shape most likely to meet the floor (min-cost goals: the cheapest within 0.1 of that
   probability once it is at least 0.5), so a search ends with something it can stand behind.
7. **Stopping rule**, Monte Carlo over 256 joint posterior draws (seeded): ``"accuracy"``:
   P(f(answer) ≥ max f − tol) over the plausible shapes, ``tol`` half the estimated noise std of
   the answer (one full std stopped a little early on the tuning landscapes); min-cost:
   P(answer meets the floor and no cheaper shape has f ≥ floor + tol), ``tol`` one noise std.
   Stops when this reaches ``confidence`` (after the initial design and the planned repeat), or
   at the budget. The reason says why, how sure, and what the next training would buy (the
   largest acquisition value: expected improvement in accuracy units, or expected saving in log
   cost).

Confidence: the default 0.9 (``Settings``) is what the tuning benchmark supports
(``benchmarks/results/policy_tuning.md``): on smooth landscapes it keeps the floor in 99 % of
searches (0.8: 95 %) and 0.95 adds at most a point for 20 % more trainings; on noisy real ones
the budget binds and a higher confidence only turns answers into "floor not reached".

Failures (``value=None``) count towards ``max_attempts`` per shape; a shape that failed that
often is never proposed again. When no training has succeeded and the initial design's shapes
are all given up (or the budget is spent) the search stops with ``status="all_failed"``.

Deterministic: the same inputs give the same action (every random choice is seeded from
``settings.seed`` and the number of trainings).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import norm

from optuna_shape.models.compute import CostObservation, TrainingCost, format_seconds
from optuna_shape.models.posterior import ShapePosterior, single_threaded_blas
from optuna_shape.models.variant_posterior import VariantPosterior
from optuna_shape.policy import Action, Evidence, Problem, Settings, Stop, Train, Wait
from optuna_shape.policy.stop import (
    ComputeUse,
    FailedShape,
    Measured,
    SearchStatus,
    StopDetails,
    StoppedEarly,
    Unconfirmed,
)
from optuna_shape.space.shape import Shape, Variant

__all__ = ["decide", "default_max_trainings", "initial_design"]

MIN_COST_GOALS = ("size", "latency", "energy")
N_DRAWS = 256
MAX_PLAUSIBLE = 200
STOP_TOLERANCE = 0.5  # accuracy goal: "optimal within" this many noise std of the answer
CONFIRM_MARGIN = 2.0  # a single training clear of the floor by this many noise std needs no repeat
MAX_REPEATS = 6  # most successful trainings of one shape the acquisition asks for
_ANSWER_REPEAT_UNTIL = 0.99
UNCONFIRMED_MIN_P = 0.5
"""An unconfirmed answer (budget spent, nothing confirmed) needs at least this P(f ≥ floor)."""
UNCONFIRMED_WITHIN = 0.1
"""…and a P(f ≥ floor) within this much of the best-supported trained shape's: the search
trades at most this much certainty for a cheaper (or more accurate) answer."""


def default_max_trainings(n_feasible: int, n_initial: int) -> int:
    """``max(n_initial + 3, ceil(n_feasible / 3))``, at most ``2 n_feasible``."""
    return min(max(n_initial + 3, math.ceil(n_feasible / 3)), max(2 * n_feasible, 1))


def _scaled(shapes: Sequence[Shape]) -> np.ndarray:
    arr = np.log(np.array([(s.depth, s.width) for s in shapes], dtype=float).reshape(-1, 2))
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (arr - lo) / span


def initial_design(feasible: Sequence[Shape], n: int, seed: int | None = 0,
                   exclude: Sequence[Shape] = ()) -> list[Shape]:
    """``n`` shapes spread over ``feasible`` by greedy maximin in the scaled
    ``(log depth, log width)`` square, starting nearest the centre; the order of the result is
    the order of the picks, so a longer design extends a shorter one. Shapes in ``exclude`` are
    counted as already picked (they repel) but not returned."""
    feasible = list(feasible)
    if not feasible or n <= 0:
        return []
    x = _scaled(feasible)
    rng = np.random.default_rng(0 if seed is None else seed)
    tie = rng.random(len(feasible)) * 1e-9
    index = {s: i for i, s in enumerate(feasible)}
    chosen = [index[s] for s in exclude if s in index]
    picks: list[int] = []
    if not chosen:
        centre = x.mean(axis=0)
        first = int(np.argmin(((x - centre) ** 2).sum(1) + tie))
        picks.append(first)
        chosen.append(first)
    dmin = np.min(((x[:, None, :] - x[None, chosen, :]) ** 2).sum(-1), axis=1)
    while len(picks) < min(n, len(feasible) - len(set(chosen)) + len(picks)):
        nxt = int(np.argmax(dmin + tie))
        if dmin[nxt] <= 0:
            break
        picks.append(nxt)
        dmin = np.minimum(dmin, ((x - x[nxt]) ** 2).sum(1))
    return [feasible[i] for i in picks[:n]]


@dataclass
class _Ledger:
    """What the trainings so far say, per shape."""

    values: dict[Shape, list[float]] = field(default_factory=dict)
    failures: dict[Shape, int] = field(default_factory=dict)
    pending: dict[Shape, int] = field(default_factory=dict)
    partial: dict[Shape, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def of(cls, evidence: Evidence) -> _Ledger:
        led = cls()
        for t in evidence.trainings:
            if t.partial:
                assert t.projected is not None
                sd = t.projected_std if t.projected_std is not None else math.nan
                led.partial.setdefault(t.shape, []).append((float(t.projected), float(sd)))
            elif t.value is None or not math.isfinite(float(t.value)):
                led.failures[t.shape] = led.failures.get(t.shape, 0) + 1
            else:
                led.values.setdefault(t.shape, []).append(float(t.value))
        for s in evidence.pending:
            led.pending[s] = led.pending.get(s, 0) + 1
        return led

    def count(self, s: Shape) -> int:
        return len(self.values.get(s, ()))

    def mean(self, s: Shape) -> float:
        return float(np.mean(self.values[s]))

    def given_up(self, s: Shape, max_attempts: int) -> bool:
        return self.count(s) == 0 and self.failures.get(s, 0) >= max_attempts


def _with_partial(post: ShapePosterior,
                  partial: dict[Shape, list[tuple[float, float]]]) -> ShapePosterior:
    """The posterior told about trainings stopped before their last epoch: each is an
    observation at its learning curve's forecast of the final accuracy, with the forecast's
    variance on top of the seed noise (:meth:`ShapePosterior.with_partial`). A stopped training
    counts as one training towards ``max_trainings`` (a compute budget charges what it used),
    is never the answer (it has no measured final accuracy), and its shape stays proposable:
    the acquisition may still ask for a full training of it."""
    rows = [(s, m, sd) for s, ps in partial.items() for m, sd in ps]
    if not rows:
        return post
    return post.with_partial([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _rng(settings: Settings, evidence: Evidence) -> np.random.Generator:
    return np.random.default_rng([0 if settings.seed is None else int(settings.seed) & 0xFFFFFFFF,
                                  len(evidence.trainings), len(evidence.pending)])


def _n_trainings(items: Sequence[Shape]) -> int:
    """Trainings behind evidence entries: one per entry for shapes; for (shape, precision)
    candidates a training lists one entry per precision, so the count per precision."""
    per = Counter(getattr(s, "precision", None) for s in items)
    return max(per.values(), default=0)


def decision(problem: Problem, evidence: Evidence, settings: Settings) -> _Decision:
    """The adaptive policy's view of ``evidence`` (its ledger, posterior, acquisitions and
    budget), for rules that judge a running training (:mod:`optuna_shape.policy.fidelity`)."""
    return _Decision(problem, evidence, settings)


def decide(problem: Problem, evidence: Evidence, settings: Settings, slots: int = 1) -> Action:
    """The adaptive policy's next action (see the module docstring); ``slots``: idle workers,
    the caller included — up to that many distinct trainings are proposed at once."""
    with single_threaded_blas():
        return _Decision(problem, evidence, settings, slots).run()


class _Decision:
    def __init__(self, problem: Problem, evidence: Evidence, settings: Settings,
                 slots: int = 1) -> None:
        self.p, self.e, self.s = problem, evidence, settings
        self.slots = max(1, int(slots))
        self.feasible = list(problem.feasible)
        self.index = {s: i for i, s in enumerate(self.feasible)}
        self.led = _Ledger.of(evidence)
        self.variants = any(isinstance(s, Variant) for s in self.feasible)
        self.n_done = _n_trainings([t.shape for t in evidence.trainings])
        self.n_pending = _n_trainings(evidence.pending)
        self.conf = float(settings.confidence)
        self.floor = problem.min_accuracy
        n_init = max(1, int(settings.n_initial))
        self.n_shapes = len({(s.depth, s.width) for s in self.feasible})
        self.n_initial = min(n_init, self.n_shapes)
        self.budget = settings.budget
        if settings.max_trainings is not None:
            self.max_tr = settings.max_trainings
        elif self.budget is not None:  # compute bounds the search; trainings only as a cap
            self.max_tr = max(2 * self.n_shapes, 1)
        else:
            self.max_tr = default_max_trainings(self.n_shapes, n_init)
        self.goal = problem.goal
        if self.goal is not None and self.goal not in ("accuracy", *MIN_COST_GOALS):
            raise ValueError(f"unknown goal {self.goal!r}")
        self._compute_init()

    # --------------------------------------------------------------- compute
    def _compute_init(self) -> None:
        """The cost model from the trainings' charged seconds, the compute spent and committed
        (running trainings at their predicted cost)."""
        n_prec = max(1, len({getattr(s, "precision", None) for s in self.feasible}))
        work = self.p.work or self.p.sizes
        obs = [CostObservation(t.shape, float(t.seconds), t.fraction,
                               informative=t.value is not None or t.partial)
               for t in self.e.trainings if t.seconds is not None]
        self.tc = TrainingCost(work, obs)
        unknown = sum(self._cost_or_zero(t.shape) for t in self.e.trainings
                      if t.seconds is None) / n_prec  # charged at its predicted cost
        spent = self.e.spent_seconds() + unknown
        self.spent = spent
        self.committed = spent + sum(self._cost_or_zero(s) for s in self.e.pending) / n_prec
        costs = [c for s in self.feasible if math.isfinite(c := self.tc.mean(s))]
        self.cost_ref = float(np.median(costs)) if costs else math.nan
        self.all_feasible_s = (sum(self.tc.mean(s) for s in self._distinct_shapes())
                               if self.tc.known else None)

    def _distinct_shapes(self) -> list[Shape]:
        seen: dict[tuple[int, float], Shape] = {}
        for s in self.feasible:
            seen.setdefault((s.depth, s.width), s)
        return list(seen.values())

    def _cost_or_zero(self, s: Shape) -> float:
        c = self.tc.mean(s)
        return c if math.isfinite(c) else 0.0

    def compute_left(self) -> float:
        """Seconds of the compute budget not yet spent or committed (inf without a budget)."""
        return math.inf if self.budget is None else self.budget - self.committed

    def affordable(self, s: Shape) -> bool:
        """Whether a full training of ``s`` fits in the compute left (always, without a
        compute budget; before any cost is known, while anything is left)."""
        if self.budget is None:
            return True
        left = self.compute_left()
        if not self.tc.known:
            return left > 0
        return self.tc.mean(s) <= left

    def compute_out(self) -> bool:
        """The compute budget cannot pay for another training of any proposable shape."""
        if self.budget is None:
            return False
        return not any(self.affordable(s) for s in self.feasible if self.proposable(s))

    def cost_weight(self) -> np.ndarray:
        """Divisor of each feasible shape's acquisition value: its predicted training cost
        relative to the median, to the power ``α`` = the share of the compute budget still
        left (cost cooling: cheap shapes that teach as much go first, and the cost matters
        less as the budget runs out). All ones without a compute budget — the budget is then
        in trainings, each costing one — and while no training's cost is known."""
        alpha = self.alpha()
        return np.array([self.relative_cost(s) for s in self.feasible]) ** alpha

    def alpha(self) -> float:
        """The cost-cooling exponent: the share of the compute budget still left (1 without
        one: costs are then in trainings)."""
        if self.budget is None:
            return 1.0
        return min(1.0, max(0.0, self.compute_left() / self.budget))

    def relative_cost(self, s: Shape) -> float:
        """A full training of ``s`` in the budget's unit, relative to the median feasible
        shape's: predicted seconds under a compute budget, else 1 (a training); 1 while
        unknown."""
        if self.budget is None or not self.tc.known or not math.isfinite(self.cost_ref) \
                or self.cost_ref <= 0:
            return 1.0
        rel = self.tc.mean(s) / self.cost_ref
        return rel if math.isfinite(rel) and rel > 0 else 1.0

    def compute_details(self) -> dict:
        """Compute spent, the budget and the predicted compute of training every feasible
        shape once to the end (seconds; ``None`` where unknown)."""
        return {"spent_s": round(self.spent, 3),
                "budget_s": None if self.budget is None else round(self.budget, 3),
                "all_feasible_s": (None if self.all_feasible_s is None
                                   else round(self.all_feasible_s, 3)),
                "cost_observations": self.tc.n_observations}

    # --------------------------------------------------------------- helpers
    def cost(self, s: Shape) -> float:
        c = self.p.costs.get(s) if self.p.costs else None
        if c is None:
            c = self.p.sizes.get(s, float(s.depth) * float(s.width) ** 2)
        return float(c)

    def proposable(self, s: Shape) -> bool:
        return s in self.index and not self.led.given_up(s, self.s.max_attempts)

    def trained(self) -> list[Shape]:
        return [s for s in self.led.values if s in self.index] + [
            s for s in self.led.values if s not in self.index]

    def budget_room(self) -> int:
        """Trainings the cap still allows (a stopped training counts as one: the cap bounds
        trainings, a compute budget bounds what they cost)."""
        return self.max_tr - self.n_done - self.n_pending

    def within_budget(self, shapes: Sequence[Shape]) -> list[Shape]:
        """The longest prefix of ``shapes`` that the trainings cap and the compute left pay
        for (a shape that does not fit is skipped; cheaper ones after it may still fit)."""
        out: list[Shape] = []
        left = self.compute_left()
        for s in shapes:
            if len(out) >= self.budget_room():
                break
            c = self._cost_or_zero(s) if self.budget is not None else 0.0
            if self.budget is not None and (left <= 0 or (self.tc.known and c > left)):
                continue
            out.append(s)
            left -= c
        return out

    def spent_out(self) -> bool:
        """No further training may start: the trainings cap or the compute budget is spent."""
        return self.budget_room() <= 0 or self.compute_out()

    def wait_or(self, action: Stop) -> Action:
        if self.n_pending:
            return Wait(f"{self.n_pending} running training(s) must finish before the search "
                        f"can stop ({action.reason})")
        return action

    # --------------------------------------------------------------- main
    def run(self) -> Action:
        if not self.feasible:
            return Stop(None, "no shape passes the size/latency/energy limits",
                        SearchStatus.NO_FEASIBLE,
                        details=StopDetails(reason_code="no_feasible", max_trainings=0))
        if self.goal is None:
            return self.complying_set()
        if self.goal in MIN_COST_GOALS and self.floor is None:
            return self.cheapest_without_floor()
        n_success = sum(len(v) for v in self.led.values.values())
        if n_success == 0:
            return self.no_success_yet()
        if self.n_pending == 0 and (self.budget_room() <= 0 or self.compute_out()):
            return self.final("budget")
        design = initial_design(self.feasible, self.n_initial, self.s.seed)
        todo = [s for s in design if self.led.count(s) == 0 and s not in self.led.pending
                and s not in self.led.partial and self.proposable(s)]
        if todo:
            fits = self.within_budget(todo)
            if self.budget is not None and not self.tc.known:
                if self.n_pending:
                    return Wait("the first training prices the others under the budget")
                fits = fits[:1]  # one training first: it prices every other shape
            if not fits:
                return self.wait_or(self.final("budget"))
            fits += self.wider_design(self.slots - len(fits), fits)
            return Train(tuple(fits), "initial",
                         f"spread initial design ({len(design)} shapes)")
        post = self.fit()
        if self.spent_out():
            return self.wait_or(self.final("budget", post))
        distinct = {(s.depth, s.width) for s in self.led.values if s in self.index}
        if len(distinct) < min(2, self.n_shapes):
            extra = self.within_budget(self.extend_design())
            if extra:
                return Train((extra[0],), "initial", "spread design: too few successful shapes")
        if not any(len(v) >= 2 for v in self.led.values.values()) and not any(
                self.led.count(s) >= 1 for s in self.led.pending):
            rep = self.planned_repeat()
            if rep is not None and self.affordable(rep):
                return self.batch(post, self.train_one(
                    post, rep, "repeat", "planned repeat of the best-measured shape: seed "
                    "noise from evidence"))
        evaluation = self.evaluate(post)
        answer, prob, gain, pick, why = evaluation
        if answer is not None and prob >= self.conf:
            return self.wait_or(self.final("confident", post, evaluation))
        if answer is None and self.floor is not None:
            secure = self.secure_pick(post)
            if secure is not None and self.last_training(secure[0]):
                stage = "repeat" if self.led.count(secure[0]) > 0 else "acquire"
                return self.batch(post, self.train_one(post, secure[0], stage, secure[1]))
        if pick is None:
            if self.n_pending:
                return Wait("no useful shape to start until a running training finishes")
            return self.final("exhausted", post, evaluation)
        stage = "repeat" if self.led.count(pick) > 0 else "acquire"
        return self.batch(post, self.train_one(post, pick, stage, why), answer)

    # --------------------------------------------------------------- stages
    def no_success_yet(self) -> Action:
        given_up = len({(s.depth, s.width) for s in self.feasible
                        if self.led.given_up(s, self.s.max_attempts)})
        if (given_up >= self.n_initial or given_up >= self.n_shapes
                or self.budget_room() <= 0 or (self.compute_out() and not self.n_pending)):
            if self.n_pending:
                return Wait("every training so far failed; waiting for the running ones")
            return Stop(None, f"every training failed ({self.n_done} trainings, {given_up} "
                        f"shapes given up after {self.s.max_attempts} attempts)",
                        SearchStatus.ALL_FAILED,
                        details=StopDetails(reason_code="all_failed", max_trainings=self.max_tr,
                                            trainings=self.n_done))
        if self.budget_room() <= 0:
            return Wait("waiting for running trainings")
        design = initial_design(self.feasible, self.n_initial, self.s.seed)
        todo = [s for s in design if s not in self.led.pending and s not in self.led.partial
                and self.proposable(s)]
        lost = sum(1 for s in design if not self.proposable(s))
        if lost:
            todo += [s for s in self.extend_design(lost) if s not in self.led.pending]
        todo = self.within_budget(todo)
        if self.budget is not None and not self.tc.known:
            # with a compute budget, one training first: it prices every other shape
            todo = todo[:0] if self.n_pending else todo[:1]
        elif len(todo) < self.slots:
            todo += self.wider_design(self.slots - len(todo), todo)
        if not todo:
            return Wait("the initial design is being trained")
        return Train(tuple(todo), "initial", f"spread initial design ({len(design)} shapes)")

    def extend_design(self, k: int = 1, also: Sequence[Shape] = ()) -> list[Shape]:
        """More maximin picks, away from every trained, running and given-up shape (and
        ``also``)."""
        taken = [s for s in self.feasible if self.led.count(s) or s in self.led.pending
                 or self.led.failures.get(s) or s in self.led.partial] + list(also)
        more = initial_design(self.feasible, k, self.s.seed, exclude=taken)
        return [s for s in more if self.proposable(s)]

    def wider_design(self, k: int, proposed: Sequence[Shape]) -> list[Shape]:
        """Up to ``k`` more spread shapes for idle workers before any result is in (beside
        ``proposed``), while the design stays within half the trainings cap (the rest is for
        the acquisition) and the budget pays."""
        room = (max(self.n_initial, self.max_tr // 2) - self.n_done - self.n_pending
                - _n_trainings(list(proposed)))
        k = min(k, room)
        if k <= 0:
            return []
        more = self.extend_design(k, proposed)
        if self.budget is None:
            return more[:k]
        out: list[Shape] = []
        left = self.compute_left() - sum(self._cost_or_zero(s) for s in proposed)
        for s in more:
            c = self._cost_or_zero(s)
            if self.tc.known and c <= left:
                out.append(s)
                left -= c
        return out

    # --------------------------------------------------------------- batches
    def batch(self, post: ShapePosterior, first: Train, answer: Shape | None = None) -> Train:
        """``first`` and, with idle workers (``slots`` > 1), up to ``slots − 1`` more distinct
        shapes: each next pick is the acquisition's best with every earlier pick fantasised as
        running (kriging believer: its posterior mean), so the batch stays diverse. The model is
        fitted once per decision; each further pick costs one fantasy update and one pass of
        the acquisition over the feasible shapes."""
        if self.slots <= 1:
            return first
        if answer is None and self.goal in MIN_COST_GOALS and self.floor is not None:
            mean, std = post.predict(self.feasible)
            answer = self.answer_min_cost(self._p_floor(mean, std))
        picks = list(first.shapes)
        preds = dict(first.predictions)
        while len(picks) < self.slots:
            self._add_pending(picks[-1])
            if self.budget_room() <= 0:
                break
            nxt = self.next_pick(post, answer)[0]
            if nxt is None or not self.within_budget([nxt]):
                break
            picks.append(nxt)
            m, sd = post.predict([nxt])
            preds[nxt] = (float(m[0]), float(sd[0]))
        if len(picks) == 1:
            return first
        return Train(tuple(picks), first.stage,
                     f"{first.reason}; and {len(picks) - 1} more for idle workers", preds)

    def _add_pending(self, s: Shape) -> None:
        """Treat ``s`` as running from now on in this decision (every precision of its shape
        in a search over precisions: one training serves them all)."""
        same = [v for v in self.feasible if (v.depth, v.width) == (s.depth, s.width)] \
            if self.variants else [s]
        self.e = replace(self.e, pending=tuple(self.e.pending) + tuple(same))
        for v in same:
            self.led.pending[v] = self.led.pending.get(v, 0) + 1
        self.n_pending = _n_trainings(self.e.pending)
        self.committed += self._cost_or_zero(s)

    def planned_repeat(self) -> Shape | None:
        tr = [s for s in self.led.values if s in self.index and s not in self.led.pending]
        if not tr:
            return None
        if self.goal in MIN_COST_GOALS and self.floor is not None:
            ok = [s for s in tr if self.led.mean(s) >= self.floor]
            if ok:
                return min(ok, key=lambda s: (self.cost(s), -self.led.mean(s)))
        return max(tr, key=lambda s: self.led.mean(s))

    def cheapest_without_floor(self) -> Action:
        cheapest = min(self.feasible, key=lambda s: (self.cost(s), s))
        if self.led.count(cheapest):
            return self.wait_or(Stop(cheapest, "no accuracy floor: the cheapest feasible shape "
                                     "is the answer", SearchStatus.ANSWERED, 1.0,
                                     StopDetails(reason_code="no_floor",
                                                 max_trainings=self.max_tr)))
        if cheapest in self.led.pending:
            return Wait("training the cheapest feasible shape")
        if not self.proposable(cheapest):
            return Stop(None, "the cheapest feasible shape failed every attempt",
                        SearchStatus.ALL_FAILED,
                        details=StopDetails(reason_code="all_failed", max_trainings=self.max_tr))
        return Train((cheapest,), "initial", "no accuracy floor: train the cheapest shape")

    def complying_set(self) -> Action:
        from optuna_shape.policy.modeling_strategy import choose_shapes

        plan = choose_shapes(self.feasible, self.s.strategy, "interval", self.s.seed)
        plan = plan[: max(1, self.max_tr if self.s.max_trainings is not None else len(plan))]
        todo = [s for s in plan if self.led.count(s) == 0 and s not in self.led.pending
                and self.proposable(s) and self.affordable(s)]
        if todo and self.n_done + self.n_pending < max(self.max_tr, len(plan)):
            return Train(tuple(todo), "initial", f"complying set: {len(plan)} spread shapes")
        if self.n_pending:
            return Wait("the complying set's shapes are being trained")
        if not self.led.values:
            return Stop(None, "every training failed", SearchStatus.ALL_FAILED,
                        details=StopDetails(reason_code="all_failed", max_trainings=self.max_tr))
        post = self.fit()
        details = self.details(post, "complying_set", None)
        if self.floor is not None:
            assert details.p_floor is not None
            details = replace(details, complying=tuple(
                s for s, pv in zip(self.feasible, details.p_floor, strict=True)
                if pv >= self.conf))
        return Stop(None, f"complying set from {self.n_done} trainings",
                    SearchStatus.COMPLYING_SET, None, details)

    # --------------------------------------------------------------- model
    def fit(self) -> ShapePosterior:
        if self.variants:
            self._post = VariantPosterior.fit(self.feasible, self.led.values,
                                              self.led.partial)
            return self._post  # type: ignore[return-value]
        shapes, values = [], []
        for s, vs in self.led.values.items():
            shapes += [s] * len(vs)
            values += vs
        self._post = _with_partial(ShapePosterior(self.feasible).fit(shapes, values),
                                   self.led.partial)
        return self._post

    def train_one(self, post: ShapePosterior, s: Shape, stage: str, why: str) -> Train:
        m, sd = post.predict([s])
        return Train((s,), stage, why, {s: (float(m[0]), float(sd[0]))})

    def eligible(self, s: Shape, p_floor: float) -> bool:
        """May ``s`` be the answer: trained, its own mean meets the floor, P(f ≥ floor) ≥
        confidence, and a single training is confirmed by a repeat unless it clears the floor
        by two noise std (a lone lucky seed is the usual way a wrong answer is chosen)."""
        if self.floor is None:
            return True
        m = self.led.mean(s)
        if m < self.floor or p_floor < self.conf:
            return False
        if self.led.count(s) == 1:
            return m >= self.floor + CONFIRM_MARGIN * self._noise_at(s)
        return True

    def _noise_at(self, s: Shape) -> float:
        return float(self._post.noise_std([s])[0])

    def evaluate(self, post: ShapePosterior
                 ) -> tuple[Shape | None, float, float, Shape | None, str]:
        """(answer, its confidence, expected gain of the next training, next shape, why)."""
        if self.goal == "accuracy":
            return self.evaluate_accuracy(post)
        return self.evaluate_min_cost(post)

    def _p_floor(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        if self.floor is None:
            return np.ones_like(mean)
        return norm.sf((self.floor - mean) / np.maximum(std, 1e-12))

    def answer_accuracy(self, mean: np.ndarray, pf: np.ndarray) -> Shape | None:
        tr = [s for s in self.led.values if s in self.index]
        ok = [s for s in tr if self.eligible(s, float(pf[self.index[s]]))]
        return max(ok, key=lambda s: (mean[self.index[s]], -self.cost(s)), default=None)

    def evaluate_accuracy(self, post: ShapePosterior
                          ) -> tuple[Shape | None, float, float, Shape | None, str]:
        mean, std = post.predict(self.feasible)
        pf = self._p_floor(mean, std)
        answer = self.answer_accuracy(mean, pf)
        prob = self.p_optimal(post, mean, std, answer) if answer is not None else 0.0
        s, why, gain = self._pick_accuracy(post)
        return answer, prob, gain, s, why

    def next_pick(self, post: ShapePosterior, answer: Shape | None
                  ) -> tuple[Shape | None, str]:
        """The acquisition's next shape given the running trainings (``None``: nothing worth
        starting), with why."""
        if self.goal == "accuracy":
            return self._pick_accuracy(post)[:2]
        return self._pick_min_cost(post, answer)[:2]

    def _pick_accuracy(self, post: ShapePosterior) -> tuple[Shape | None, str, float]:
        """(next shape or ``None``, why, the largest expected improvement)."""
        ei, fmean, fstd, best = self._accuracy_acquisition(post)
        gain = float(np.max(ei))
        ok = self._startable(MAX_REPEATS)
        if not ok.any():
            return None, "", gain
        weight = self.cost_weight()
        i = int(np.argmax(np.where(ok, ei / weight, -np.inf)))
        why = (f"expected improvement {ei[i]:.3g} (posterior {fmean[i]:.4g} ± {fstd[i]:.2g}, "
               f"best trained {best:.4g})" + self._per_compute(i, weight))
        return self.feasible[i], why, gain

    def _startable(self, max_repeats: int) -> np.ndarray:
        """Which feasible shapes a new training may start on now."""
        return np.array([self.proposable(s) and s not in self.led.pending
                         and self.led.count(s) < max_repeats and self.affordable(s)
                         for s in self.feasible])

    def _fantasised(self, post: ShapePosterior) -> tuple[ShapePosterior, np.ndarray, np.ndarray]:
        """The posterior with running trainings fantasised at its mean, and its mean and std
        over the feasible shapes."""
        fpost = post.with_fantasies(list(self.e.pending)) if self.n_pending else post
        fmean, fstd = fpost.predict(self.feasible)
        return fpost, fmean, fstd

    def _accuracy_acquisition(self, post: ShapePosterior
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Augmented expected improvement of every feasible shape over the best posterior mean
        of the trained and running shapes (running ones fantasised), weighted by P(f ≥ floor);
        with the fantasised mean, std and that best."""
        fpost, fmean, fstd = self._fantasised(post)
        trained = [self.index[s] for s in self.led.values if s in self.index]
        trained += [self.index[s] for s in self.led.pending if s in self.index]
        best = float(np.max(fmean[trained])) if trained else float(np.max(fmean))
        sn = post.noise_std(self.feasible)
        z = (fmean - best) / fstd
        ei = fstd * (z * norm.cdf(z) + norm.pdf(z))
        ei *= 1.0 - sn / np.sqrt(fstd**2 + sn**2)
        ei *= self._p_floor(fmean, fstd)
        return ei, fmean, fstd, best

    def fresh_accuracy_values(self, post: ShapePosterior) -> np.ndarray:
        """The accuracy acquisition of every shape a training could start on now (``nan``
        for the others)."""
        ei = self._accuracy_acquisition(post)[0]
        return np.where(self._startable(MAX_REPEATS), ei, np.nan)

    def _per_compute(self, i: int, weight: np.ndarray) -> str:
        """Words for the cost weighting of a pick (empty when costs are unknown)."""
        if not self.tc.known or weight[i] == 1.0:
            return ""
        return (f", per compute: {format_seconds(self.tc.mean(self.feasible[i]))} predicted "
                "per training")

    def plausible(self, mean: np.ndarray, std: np.ndarray, answer: Shape) -> list[int]:
        a = self.index[answer]
        ucb = mean + 3.0 * std
        cand = np.flatnonzero(ucb >= mean[a] - 3.0 * std[a])
        cand = cand[np.argsort(-ucb[cand])][:MAX_PLAUSIBLE]
        return sorted(set(cand.tolist()) | {a})

    def p_optimal(self, post: ShapePosterior, mean: np.ndarray, std: np.ndarray,
                  answer: Shape) -> float:
        idx = self.plausible(mean, std, answer)
        draws = post.sample([self.feasible[i] for i in idx], N_DRAWS, _rng(self.s, self.e))
        a = idx.index(self.index[answer])
        tol = STOP_TOLERANCE * float(post.noise_std([answer])[0])
        return float(np.mean(draws[:, a] >= draws.max(axis=1) - tol))

    def answer_min_cost(self, pf: np.ndarray) -> Shape | None:
        tr = [s for s in self.led.values if s in self.index]
        ok = [s for s in tr if self.eligible(s, float(pf[self.index[s]]))]
        return min(ok, key=lambda s: (self.cost(s), -self.led.mean(s)), default=None)

    def p_cheapest(self, post: ShapePosterior, mean: np.ndarray, std: np.ndarray,
                   answer: Shape) -> float:
        assert self.floor is not None
        a = self.index[answer]
        tol = float(post.noise_std([answer])[0])
        ca = self.cost(answer)
        p_hi = norm.sf((self.floor + tol - mean) / np.maximum(std, 1e-12))
        cheaper = [i for i, s in enumerate(self.feasible) if self.cost(s) < ca and p_hi[i] > 1e-3]
        cheaper = sorted(cheaper, key=lambda i: -p_hi[i])[:MAX_PLAUSIBLE]
        idx = [a] + cheaper
        draws = post.sample([self.feasible[i] for i in idx], N_DRAWS, _rng(self.s, self.e))
        ok = draws[:, 0] >= self.floor
        if cheaper:
            ok &= np.all(draws[:, 1:] < self.floor + tol, axis=1)
        return float(np.mean(ok))

    def evaluate_min_cost(self, post: ShapePosterior
                          ) -> tuple[Shape | None, float, float, Shape | None, str]:
        mean, std = post.predict(self.feasible)
        pf = self._p_floor(mean, std)
        answer = self.answer_min_cost(pf)
        prob = self.p_cheapest(post, mean, std, answer) if answer is not None else 0.0
        s, why, gain = self._pick_min_cost(post, answer)
        return answer, prob, gain, s, why

    def _pick_min_cost(self, post: ShapePosterior, answer: Shape | None
                       ) -> tuple[Shape | None, str, float]:
        """(next shape or ``None``, why, the largest expected saving)."""
        score, fpf, p_next, costs, c_ref = self._min_cost_acquisition(post, answer)
        gain = float(np.max(score)) if np.isfinite(score).any() else 0.0
        if not np.isfinite(score).any():
            return None, "", 0.0
        weight = self.cost_weight()
        i = int(np.argmax(np.where(np.isfinite(score), score / weight, -np.inf)))
        s = self.feasible[i]
        if s == answer:
            why = (f"repeat the answer: P(accuracy ≥ floor) = {fpf[i]:.2f}, "
                   f"measured {self.led.mean(s):.4g} over {self.led.count(s)} training(s)")
        elif self.led.count(s):
            why = (f"repeat a borderline candidate: P(accuracy ≥ floor) = {fpf[i]:.2f}, "
                   f"measured {self.led.mean(s):.4g} over {self.led.count(s)} training(s)")
        else:
            why = (f"expected saving {score[i]:.3g} (log cost): P(accuracy ≥ floor) = "
                   f"{fpf[i]:.2f}, P(answer after one training) = {p_next[i]:.2f}, at "
                   f"{costs[i] / c_ref:.2f}× the reference cost")
        return s, why, gain

    def _min_cost_acquisition(self, post: ShapePosterior, answer: Shape | None
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """Expected saving of every shape a training could start on now (``-inf`` for the
        others): cheaper than the answer, ``p₁ · log(C / cost)`` (module docstring); the answer
        itself while P(f ≥ floor) < 0.99. With P(f ≥ floor) and ``p₁`` (running trainings
        fantasised), the goal costs and the reference cost ``C``."""
        fpost, fmean, fstd = self._fantasised(post)
        fpf = self._p_floor(fmean, fstd)
        costs = np.array([self.cost(s) for s in self.feasible])
        c_ref = self.cost(answer) if answer is not None else 2.0 * float(costs.max())
        p_next = self._p_eligible_after_one(fpost, fmean, fstd)
        score = np.full(len(self.feasible), -np.inf)
        for i, s in enumerate(self.feasible):
            if not self.proposable(s) or s in self.led.pending or not self.affordable(s):
                continue
            n = self.led.count(s)
            if s == answer:
                if fpf[i] < _ANSWER_REPEAT_UNTIL and n < MAX_REPEATS:
                    nxt = [c for c in costs if c > costs[i]]
                    c_next = min(nxt) if nxt else 2.0 * float(costs.max())
                    score[i] = (1.0 - fpf[i]) * math.log(c_next / costs[i])
                continue
            if costs[i] >= c_ref:
                continue
            if n > 0 and (fpf[i] <= 1.0 - self.conf or n >= MAX_REPEATS):
                continue
            score[i] = p_next[i] * math.log(c_ref / costs[i])
        return score, fpf, p_next, costs, c_ref

    def reference_cost(self, post: ShapePosterior) -> float:
        """The goal cost a new answer must beat: the current answer's (min-cost goals), else
        twice the largest cost."""
        mean, std = post.predict(self.feasible)
        answer = self.answer_min_cost(self._p_floor(mean, std))
        if answer is not None:
            return self.cost(answer)
        return 2.0 * max(self.cost(s) for s in self.feasible)

    def _p_eligible_after_one(self, post: ShapePosterior, mean: np.ndarray,
                              std: np.ndarray, shapes: Sequence[Shape] | None = None
                              ) -> np.ndarray:
        """Probability that one more training of each shape (default: every feasible one) lifts
        its P(f ≥ floor) to the confidence: the posterior std shrinks to ``s'`` (one more noisy
        observation) and the mean moves by ``N(0, s² − s'²)``; eligibility needs
        mean' ≥ floor + z·s'."""
        assert self.floor is not None
        sn2 = post.noise_std(self.feasible if shapes is None else shapes) ** 2
        s2 = std**2
        s2_next = s2 * sn2 / (s2 + sn2)
        move = np.sqrt(np.maximum(s2 - s2_next, 1e-300))
        z = float(norm.ppf(self.conf))
        return norm.cdf((mean - self.floor - z * np.sqrt(s2_next)) / move)

    # --------------------------------------------------------------- any budget
    def unconfirmed_answer(self, post: ShapePosterior) -> Shape | None:
        """The best-supported trained shape when none is confirmed (see :data:`UNCONFIRMED_MIN_P`):
        among trained shapes whose P(f ≥ floor) is at least ``UNCONFIRMED_MIN_P`` and within
        ``UNCONFIRMED_WITHIN`` of the highest such probability, the goal's best — min-cost goals:
        the cheapest (then the more probable); accuracy: the highest posterior mean."""
        if self.floor is None:
            return None
        tr = [s for s in self.led.values if s in self.index]
        if not tr:
            return None
        mean, std = post.predict(tr)
        pf = {s: float(p) for s, p in zip(tr, self._p_floor(mean, std), strict=True)}
        top = max(pf.values())
        ok = [s for s in tr if pf[s] >= max(UNCONFIRMED_MIN_P, top - UNCONFIRMED_WITHIN)]
        if not ok:
            return None
        if self.goal == "accuracy":
            pm = dict(zip(tr, mean, strict=True))
            return max(ok, key=lambda s: (pm[s], pf[s], -self.cost(s)))
        return min(ok, key=lambda s: (self.cost(s), -pf[s]))

    def last_training(self, s: Shape) -> bool:
        """Whether a training of ``s`` is the last the budget pays for: one training left
        under the cap, or the compute left after it pays for no other proposable shape."""
        if self.budget_room() == 1:
            return True
        if self.budget is None or not self.tc.known:
            return False
        left = self.compute_left() - self.tc.mean(s)
        return not any(self.tc.mean(o) <= left for o in self.feasible
                       if o != s and self.proposable(o) and o not in self.led.pending)

    def secure_pick(self, post: ShapePosterior) -> tuple[Shape, str] | None:
        """The last training of the budget when nothing is confirmed yet: the shape most likely
        to meet the floor (running trainings fantasised), or — once that probability is at least
        ``UNCONFIRMED_MIN_P`` — a cheaper one within ``UNCONFIRMED_WITHIN`` of it (min-cost
        goals), so the search ends with an answer the evidence supports rather than a cheaper
        long shot."""
        fpost = post.with_fantasies(list(self.e.pending)) if self.n_pending else post
        cand = [s for s in self.feasible if self.proposable(s) and s not in self.led.pending
                and self.led.count(s) < MAX_REPEATS and self.affordable(s)]
        if not cand:
            return None
        mean, std = fpost.predict(cand)
        pf = dict(zip(cand, self._p_floor(mean, std), strict=True))
        top = max(pf.values())
        if top < 1.0 - self.conf:
            return None
        near = [s for s in cand
                if pf[s] >= max(top - UNCONFIRMED_WITHIN, min(top, UNCONFIRMED_MIN_P))]
        if self.goal == "accuracy":
            pick = max(near, key=lambda s: (pf[s], -self.cost(s)))
        else:
            pick = min(near, key=lambda s: (self.cost(s), -pf[s]))
        return pick, (f"last training of the budget, nothing confirmed yet: the best-supported "
                      f"shape, P(accuracy ≥ floor) = {pf[pick]:.2f}")

    def unconfirmed(self, answer: Shape, post: ShapePosterior, words: str, noise_words: str,
                    details: StopDetails) -> Stop:
        """The ``"unconfirmed"`` stop: an answer the evidence supports but does not confirm, with
        its P(f ≥ floor) and what one more training of it would buy."""
        assert self.floor is not None
        mean, std = post.predict([answer])
        p = float(self._p_floor(mean, std)[0])
        p_next = float(self._p_eligible_after_one(post, mean, std, [answer])[0])
        details = replace(details, answer_probability=p,
                          unconfirmed=Unconfirmed(p_floor=p, p_confirm_next=p_next))
        m = self.led.mean(answer)
        what = (f"no shape is confirmed at P ≥ {self.conf:g}; best-supported answer {answer} "
                f"measured {m:.4g} over {self.led.count(answer)} training(s), "
                f"P(accuracy ≥ {self.floor:g}) = {p:.2f} (not confirmed)")
        more = (f"one more training of {answer} would confirm it with probability "
                f"{p_next:.2f}")
        return Stop(answer, f"stopped: {words}; {what}; {noise_words}; {more}",
                    SearchStatus.UNCONFIRMED, p, details)

    # --------------------------------------------------------------- results
    def details(self, post: ShapePosterior | None, code: str, gain: float | None
                ) -> StopDetails:
        """The stop's details: posterior mean/std (and P(f ≥ floor) with a floor) per feasible
        shape in ``problem.feasible`` order, measured mean and count per trained shape, the
        noise estimate, the reason code, the next training's expected gain, the budget."""
        posterior: dict = {}
        if post is not None:
            mean, std = post.predict(self.feasible)
            posterior = {
                "posterior_mean": tuple(float(v) for v in mean),
                "posterior_std": tuple(float(v) for v in std),
                "p_floor": None if self.floor is None
                else tuple(float(v) for v in self._p_floor(mean, std)),
                "noise": post.noise_.as_dict(),
                "noise_std": tuple(float(v) for v in post.noise_std(self.feasible)),
            }
        return StopDetails(
            reason_code=code, max_trainings=self.max_tr, trainings=self.n_done,
            expected_gain=gain, shapes=tuple(self.feasible),
            compute=ComputeUse(**self.compute_details()),
            measured=tuple(Measured(s, self.led.mean(s), self.led.count(s))
                           for s in self.led.values),
            failed=tuple(FailedShape(s, c) for s, c in self.led.failures.items()),
            stopped_early=tuple(StoppedEarly(s, tuple(m for m, _ in ps))
                                for s, ps in self.led.partial.items()) or None,
            **posterior)

    def spent_words(self) -> str:
        """What ran out: the trainings cap, or the compute budget (with what was used)."""
        if self.budget is not None and self.n_done < self.max_tr:
            return (f"compute budget of {format_seconds(self.budget)} spent "
                    f"({format_seconds(self.spent)} used by {self.n_done} trainings)")
        return f"budget of {self.max_tr} trainings spent"

    def final(self, code: str, post: ShapePosterior | None = None,
              evaluation: tuple | None = None) -> Stop:
        if post is None:
            post = self.fit()
        answer, prob, gain, _, _ = evaluation if evaluation is not None else self.evaluate(post)
        details = self.details(post, code, gain)
        unit = "points" if post.unit_scale_ == 1.0 else "(fraction)"
        noise = post.noise_
        spent = self.spent_words()
        words = {"confident": f"confident (P = {prob:.2f} ≥ {self.conf:g})",
                 "budget": f"{spent} (P = {prob:.2f} "
                           f"{'≥' if prob >= self.conf else '<'} {self.conf:g})",
                 "exhausted": f"no useful training left (P = {prob:.2f})"}[code]
        next_gain = (f"next training's expected improvement {gain:.3g} {unit}"
                     if self.goal == "accuracy" else
                     f"next training's expected saving {gain:.3g} (log cost)")
        noise_words = f"seed noise std ≈ {noise.sigma0:.3g} {unit} (median-size shape)"
        if answer is None:
            fallback = self.unconfirmed_answer(post) if code != "confident" else None
            details = replace(details, confidence_rule=self.conf)
            if fallback is not None:
                plain = spent if code == "budget" else "no useful training left"
                return self.unconfirmed(fallback, post, plain, noise_words, details)
            status = SearchStatus.FLOOR_NOT_REACHED
            what = (f"no trained shape reaches accuracy ≥ {self.floor:g} with P ≥ "
                    f"{self.conf:g} and a measured mean at or above it, nor plausibly meets "
                    f"it (P ≥ {UNCONFIRMED_MIN_P:g})")
            return Stop(None, f"stopped: {words}; {what}; {noise_words}; {next_gain}",
                        status, None, details)
        m = self.led.mean(answer)
        what = (f"answer {answer} measured {m:.4g} over {self.led.count(answer)} training(s)")
        if self.goal == "accuracy":
            sure = f"P(within noise of the best feasible shape) = {prob:.2f}"
        else:
            sure = f"P(meets the floor and nothing cheaper does) = {prob:.2f}"
        details = replace(details, answer_probability=prob)
        return Stop(answer, f"stopped: {words}; {what}; {sure}; {noise_words}; {next_gain}",
                    SearchStatus.ANSWERED, prob, details)
