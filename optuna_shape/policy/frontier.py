"""The frontier goal: the accuracy–cost trade-off, with each shape's probability of being on it.

With ``goal="frontier"`` the search does not look for one shape: it looks for every shape no
other feasible shape beats on both accuracy (higher) and cost (lower) — the front a user picks
from once the device's limit is known. The cost is the model size, latency or energy of each
feasible shape, known from screening; only accuracy is uncertain, so the front is a staircase in
(cost, accuracy) and the search's uncertainty is about which step each shape is on.

**Probability of being on the front.** Joint draws of every feasible shape's mean accuracy from
the posterior (:class:`~optuna_shape.models.posterior.ShapePosterior`); in each draw the front is
computed exactly; a shape's probability is the share of draws in which it is on it.

**What to train next.** The expected improvement of the front's area (hypervolume) in
(accuracy, log cost) that one training of a shape would bring, against the front of the trained
shapes' posterior means: a shape at log cost ``t`` with accuracy ``a ~ N(mean, std²)`` adds
``E[max(0, a − best(u))]`` at every ``u ≥ t`` up to the reference point, where ``best(u)`` is the
best trained accuracy at cost ``≤ u``. With known costs this is exact and cheap: a sum of normal
expected improvements over the staircase's steps. Cheap shapes, shapes in a gap of the staircase
and uncertain shapes near it score high; a shape well below the staircase scores nothing.
Shapes running in other workers count as trained at their posterior mean (kriging believer), so
a batch of idle workers gets distinct, useful shapes. With an accuracy floor the area is measured
from the floor, so shapes surely below it are worth nothing, and the returned front is the part
at or above it.

**When to stop.** When the front is confident — every feasible shape's probability is at most
``1 − confidence`` or, for a trained shape, at least ``confidence`` (reason ``"confident"``) —,
when the best expected improvement is below a fraction of one noise std over the cost range
(nothing left to learn that could move the front visibly: ``"exhausted"``), or at
``max_trainings`` (``"budget"``). The status is ``frontier``; the front returned is every
*trained* shape with probability ≥ 0.5, cheapest first, each with its measured mean, and the
details keep every feasible shape's probability, so a reader sees where the search is unsure.
A compute budget and precision searches are not supported with this goal (refused up front).

Everything here is a pure function of the problem, the evidence and the settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import norm

from optuna_shape.models.posterior import ShapePosterior, single_threaded_blas
from optuna_shape.policy.adaptive.budget import default_max_trainings
from optuna_shape.policy.adaptive.design import initial_design
from optuna_shape.policy.adaptive.ledger import Ledger
from optuna_shape.policy.adaptive.search import MAX_REPEATS, with_partial
from optuna_shape.policy.stop import FrontPoint, Measured, SearchStatus, StopDetails
from optuna_shape.space.shape import Shape

if TYPE_CHECKING:
    from optuna_shape.policy import Action, Evidence, Problem, Settings, Stop

__all__ = [
    "FRONT_THRESHOLD",
    "decide",
    "current_front",
    "front_mask",
    "p_on_front",
    "staircase_area",
    "expected_area_gain",
    "log_cost_scale",
]

FRONT_DRAWS = 512
FRONT_THRESHOLD = 0.5
"""A trained shape is returned on the front when its probability of being on it is at least this."""
STOP_GAIN = 0.02
"""Stop when the best expected area gain is below this many noise std times the log-cost range."""


def front_mask(costs: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Which shapes are on the front, per row of ``acc`` (shape ``(..., n)``; costs ``(n,)``).

    A shape is on the front when no other shape has a cost no higher and an accuracy no lower
    with one of the two strictly better. Among shapes of equal cost only the most accurate can
    be on it.

    Example:
        >>> front_mask(np.array([1.0, 2.0, 3.0]), np.array([90.0, 89.0, 95.0])).tolist()
        [True, False, True]
    """
    costs = np.asarray(costs, dtype=float)
    acc = np.asarray(acc, dtype=float)
    n = costs.shape[0]
    if n == 0:
        return np.zeros(acc.shape, dtype=bool)
    order = np.argsort(costs, kind="stable")
    a = acc[..., order]
    _, starts = np.unique(costs[order], return_index=True)
    group_max = np.maximum.reduceat(a, starts, axis=-1)
    running = np.maximum.accumulate(group_max, axis=-1)
    before = np.concatenate([np.full(a.shape[:-1] + (1,), -np.inf), running[..., :-1]], axis=-1)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    on = (a > before[..., group]) & (a >= group_max[..., group])
    out = np.zeros_like(on)
    out[..., order] = on
    return out


def log_cost_scale(costs: Sequence[float]) -> tuple[np.ndarray, float]:
    """Costs as positions in [0, 1] of the log-cost range and the reference position (a tenth
    of the range beyond the most expensive shape, so that shape's step has a width)."""
    c = np.log(np.maximum(np.asarray(costs, dtype=float), 1e-12))
    lo, hi = float(c.min()), float(c.max())
    span = hi - lo if hi > lo else 1.0
    return (c - lo) / span, 1.1 if hi > lo else 1.0 + 0.1


def staircase_area(t: Sequence[float], acc: Sequence[float], t_ref: float, a_ref: float
                   ) -> float:
    """Area of the region dominated by points ``(t, acc)`` (lower ``t`` and higher ``acc`` are
    better) above ``a_ref`` and left of ``t_ref``: the 2-D hypervolume.

    Example:
        >>> staircase_area([0.0, 0.5], [1.0, 2.0], 1.0, 0.0)
        1.5
    """
    pts = sorted((float(x), float(y)) for x, y in zip(t, acc, strict=True)
                 if x < t_ref and y > a_ref)
    area, best = 0.0, a_ref
    for i, (x, y) in enumerate(pts):
        best = max(best, y)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else t_ref
        area += (nxt - x) * (best - a_ref)
    return area


def _steps(t: np.ndarray, acc: np.ndarray, t_ref: float, a_ref: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """The staircase of points ``(t, acc)``: step edges (sorted, ending at ``t_ref``) and the
    best accuracy on each step (``a_ref`` left of the first point)."""
    edges = np.unique(np.concatenate([t[t < t_ref], [t_ref]]))
    best = np.full(len(edges), a_ref)
    for x, y in zip(t, acc, strict=True):
        best[edges >= x] = np.maximum(best[edges >= x], y)
    return edges, best


def expected_area_gain(t_new: np.ndarray, mean: np.ndarray, std: np.ndarray,
                       t_front: np.ndarray, a_front: np.ndarray, t_ref: float, a_ref: float
                       ) -> np.ndarray:
    """Expected increase of the staircase area if a point at ``t_new`` with accuracy
    ``N(mean, std²)`` joined the points ``(t_front, a_front)`` — one value per new point."""
    edges, best = _steps(np.asarray(t_front, float), np.asarray(a_front, float), t_ref, a_ref)
    gains = np.zeros(len(t_new))
    for i, (t0, m, s) in enumerate(zip(t_new, mean, std, strict=True)):
        if t0 >= t_ref:
            continue
        # segments [u_k, u_{k+1}) with u_0 = t0, on which best is constant
        cuts = np.concatenate([[t0], edges[edges > t0]])
        widths = np.diff(cuts)
        # best on [cuts[k], cuts[k+1]): the step at or left of cuts[k]
        idx = np.searchsorted(edges, cuts[:-1], side="right") - 1
        b = np.where(idx >= 0, best[np.maximum(idx, 0)], a_ref)
        s = max(float(s), 1e-12)
        z = (m - b) / s
        ei = (m - b) * norm.cdf(z) + s * norm.pdf(z)
        gains[i] = float(np.sum(widths * ei))
    return gains


def p_on_front(post: ShapePosterior, shapes: Sequence[Shape], costs: np.ndarray,
               rng: np.random.Generator, n_draws: int = FRONT_DRAWS) -> np.ndarray:
    """Each shape's probability of being on the front of ``shapes``, from joint posterior draws
    of their mean accuracies."""
    if not shapes:
        return np.zeros(0)
    draws = post.sample(list(shapes), n_draws, rng)
    return front_mask(np.asarray(costs, float), draws).mean(axis=0)


def pick(post: ShapePosterior, feasible: Sequence[Shape], costs: np.ndarray,
         trained: dict[Shape, float], startable: np.ndarray, a_ref: float, k: int
         ) -> tuple[list[Shape], float]:
    """Up to ``k`` distinct shapes to train next, by expected area gain with the earlier picks
    believed at their posterior mean; and the first pick's gain (0 when nothing is startable)."""
    t, t_ref = log_cost_scale(costs)
    index = {s: i for i, s in enumerate(feasible)}
    front = dict(trained)
    ok = startable.copy()
    picks: list[Shape] = []
    first_gain = 0.0
    for _ in range(k):
        if not ok.any():
            break
        mean, std = post.predict(feasible)
        tf = np.array([t[index[s]] for s in front])
        af = np.array([front[s] for s in front])
        gain = expected_area_gain(t, mean, std, tf, af, t_ref, a_ref)
        gain = np.where(ok, gain, -np.inf)
        i = int(np.argmax(gain))
        if not picks:
            first_gain = float(gain[i])
        picks.append(feasible[i])
        ok[i] = False
        front[feasible[i]] = float(mean[i])
        post = post.with_fantasies([feasible[i]])
    return picks, first_gain


def stop_gain(noise: float) -> float:
    """The expected area gain below which the front cannot move visibly."""
    return STOP_GAIN * max(noise, 1e-12)


def confident(p: np.ndarray, trained: np.ndarray, conf: float) -> bool:
    """Every shape is surely off the front, or trained and surely on it."""
    return bool(np.all((p <= 1.0 - conf) | (trained & (p >= conf))))


def draws_rng(seed: int | None, n_trainings: int, n_pending: int) -> np.random.Generator:
    """The random stream of one decision (the same for every worker seeing the same study)."""
    return np.random.default_rng([0 if seed is None else int(seed) & 0xFFFFFFFF,
                                  n_trainings, n_pending, 7])


def reference_accuracy(floor: float | None, values: Sequence[float]) -> float:
    """The accuracy the front's area is measured from: the floor when there is one (the front
    below the floor is of no interest), else the lowest trained accuracy."""
    if floor is not None and math.isfinite(floor):
        return float(floor)
    return float(min(values)) if values else 0.0


def decide(problem: Problem, evidence: Evidence, settings: Settings, slots: int = 1) -> Action:
    """The frontier goal's next action; pure and deterministic for equal inputs."""
    with single_threaded_blas():
        return _Frontier(problem, evidence, settings, slots).run()


def current_front(problem: Problem, evidence: Evidence, settings: Settings
                  ) -> tuple[FrontPoint, ...]:
    """The front of the trained shapes now (see :meth:`_Frontier.front`), from ``evidence``."""
    with single_threaded_blas():
        f = _Frontier(problem, evidence, settings, 1)
        if not any(f.led.values.get(s) for s in f.feasible):
            return ()
        return tuple(f.front(f.p_front(f.fit())))


class _Frontier:
    """One decision of the frontier search (see the module docstring)."""

    def __init__(self, problem: Problem, evidence: Evidence, settings: Settings,
                 slots: int) -> None:
        self.p, self.e, self.s = problem, evidence, settings
        self.slots = max(1, int(slots))
        self.feasible = list(problem.feasible)
        self.index = {s: i for i, s in enumerate(self.feasible)}
        self.costs = np.array([float(problem.costs[s]) for s in self.feasible])
        self.led = Ledger.of(evidence)
        self.n_done = len(evidence.trainings)
        self.n_pending = len(evidence.pending)
        self.conf = float(settings.confidence)
        self.floor = problem.min_accuracy
        self.n_initial = min(max(1, int(settings.n_initial)), len(self.feasible))
        self.max_tr = (settings.max_trainings if settings.max_trainings is not None
                       else default_max_trainings(len(self.feasible), settings.n_initial,
                                                  evidence.workers))

    def room(self) -> int:
        return self.max_tr - self.n_done - self.n_pending

    def usable(self, s: Shape) -> bool:
        return (not self.led.given_up(s, self.s.max_attempts)
                and self.led.count(s) < MAX_REPEATS)

    def run(self) -> Action:
        from optuna_shape.policy import Stop, Train, Wait

        if not self.feasible:
            return Stop(None, "no shape passes the size/latency/energy limits",
                        SearchStatus.NO_FEASIBLE,
                        details=StopDetails(reason_code="no_feasible", max_trainings=0))
        n_success = sum(len(v) for v in self.led.values.values())
        if self.room() <= 0 or (n_success == 0 and self._all_failed()):
            if self.n_pending:
                return Wait("waiting for running trainings")
            if n_success == 0:
                return Stop(None, f"every training failed ({self.n_done} trainings)",
                            SearchStatus.ALL_FAILED,
                            details=StopDetails(reason_code="all_failed",
                                                max_trainings=self.max_tr,
                                                trainings=self.n_done))
            return self.final("budget")
        design = initial_design(self.feasible, self.n_initial, self.s.seed)
        todo = [s for s in design if not self.led.tried(s) and s not in self.led.pending
                and self.usable(s)]
        if todo or n_success == 0:
            if not todo:
                return Wait("the initial design is being trained")
            return Train(tuple(todo[:self.room()]), "initial",
                         f"spread initial design ({len(design)} shapes)")
        post = self.fit()
        p = self.p_front(post)
        trained = np.array([self.led.count(s) > 0 for s in self.feasible])
        if confident(p, trained, self.conf):
            return self.wait_or(self.final("confident", post, p))
        believed = dict(self._trained_means())
        pending = [s for s in self.led.pending if s in self.index]
        if pending:
            mean, _ = post.predict(pending)
            believed.update({s: float(m) for s, m in zip(pending, mean, strict=True)})
            post = post.with_fantasies(pending)
        startable = np.array([self.usable(s) and s not in self.led.pending
                              for s in self.feasible])
        picks, gain = pick(post, self.feasible, self.costs, believed, startable,
                           self._a_ref(), min(self.slots, self.room()))
        noise = float(np.median(post.noise_std(self.feasible)))
        if not picks or gain < stop_gain(noise):
            if self.n_pending:
                return Wait("no useful shape to start until a running training finishes")
            return self.final("exhausted", self.fit(), p)
        m, sd = post.predict(picks[:1])
        stage = "repeat" if self.led.count(picks[0]) > 0 else "acquire"
        return Train(tuple(picks), stage,
                     f"expected front-area gain {gain:.3g} (noise std {noise:.3g})",
                     {picks[0]: (float(m[0]), float(sd[0]))})

    def _all_failed(self) -> bool:
        given_up = sum(1 for s in self.feasible if self.led.given_up(s, self.s.max_attempts))
        return given_up >= self.n_initial or given_up >= len(self.feasible)

    def _trained_means(self) -> dict[Shape, float]:
        return {s: self.led.mean(s) for s in self.led.values if s in self.index}

    def _a_ref(self) -> float:
        return reference_accuracy(self.floor, list(self._trained_means().values()))

    def fit(self) -> ShapePosterior:
        shapes, values = [], []
        for s, vs in self.led.values.items():
            shapes += [s] * len(vs)
            values += vs
        return with_partial(ShapePosterior(self.feasible, trend=self.p.trend).fit(shapes, values),
                            self.led.partial)

    def p_front(self, post: ShapePosterior) -> np.ndarray:
        rng = draws_rng(self.s.seed, self.n_done, self.n_pending)
        return p_on_front(post, self.feasible, self.costs, rng)

    def wait_or(self, action: Stop) -> Action:
        from optuna_shape.policy import Wait

        if self.n_pending:
            return Wait(f"{self.n_pending} running training(s) must finish before the search "
                        f"can stop ({action.reason})")
        return action

    def front(self, p: np.ndarray) -> list[FrontPoint]:
        """Trained shapes with P(on the front) ≥ :data:`FRONT_THRESHOLD` (and, with an accuracy
        floor, a measured mean at or above it), cheapest first."""
        pts = [FrontPoint(s, round(float(p[i]), 4), self.led.mean(s), self.led.count(s),
                          float(self.costs[i]))
               for s, i in self.index.items()
               if self.led.count(s) > 0 and p[i] >= FRONT_THRESHOLD
               and (self.floor is None or self.led.mean(s) >= self.floor)]
        return sorted(pts, key=lambda q: (q.cost, -q.mean))

    def final(self, code: str, post: ShapePosterior | None = None,
              p: np.ndarray | None = None) -> Stop:
        from optuna_shape.policy import Stop

        post = post if post is not None else self.fit()
        p = p if p is not None else self.p_front(post)
        trained = np.array([self.led.count(s) > 0 for s in self.feasible])
        sure = confident(p, trained, self.conf)
        front = self.front(p)
        mean, std = post.predict(self.feasible)
        spent = f"budget of {self.max_tr} trainings spent"
        words = {"confident": "the front is confident",
                 "budget": spent, "exhausted": "no training left that could move the front"
                 }[code]
        unsure = int(np.sum((p > 1.0 - self.conf) & ~(trained & (p >= self.conf))))
        sure_words = ("every shape's place is sure" if sure else
                      f"{unsure} shape(s) with 1 − {self.conf:g} < P(on the front) and not "
                      f"trained with P ≥ {self.conf:g}")
        details = StopDetails(
            reason_code=code, max_trainings=self.max_tr, trainings=self.n_done,
            shapes=tuple(self.feasible),
            posterior_mean=tuple(float(v) for v in mean),
            posterior_std=tuple(float(v) for v in std),
            noise=post.noise_.as_dict(),
            noise_std=tuple(float(v) for v in post.noise_std(self.feasible)),
            measured=tuple(Measured(s, self.led.mean(s), self.led.count(s))
                           for s in self.led.values),
            confidence_rule=self.conf,
            front=tuple(front), p_front=tuple(round(float(v), 4) for v in p))
        return Stop(None, f"stopped: {words}; {len(front)} shape(s) on the front; "
                    f"{sure_words}", SearchStatus.FRONTIER, None, details)
