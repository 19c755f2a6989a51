"""One decision's view of the search: the problem, the evidence per shape, the settings and the
budget, with the posterior fitted to them and the few rules every stage shares."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.stats import norm

from optuna_shape.models.posterior import ShapePosterior
from optuna_shape.models.variant_posterior import VariantPosterior
from optuna_shape.policy import Action, Evidence, Problem, Settings, Stop, Train, Wait
from optuna_shape.policy.adaptive.budget import Budget
from optuna_shape.policy.adaptive.ledger import Ledger
from optuna_shape.space.constraints import MIN_COST_GOALS
from optuna_shape.space.shape import Shape

__all__ = ["Search", "MIN_COST_GOALS", "MAX_REPEATS", "N_DRAWS", "MAX_PLAUSIBLE", "with_partial"]

MAX_REPEATS = 6  # most successful trainings of one shape the acquisition asks for
N_DRAWS = 256  # joint posterior draws of the stopping rule
MAX_PLAUSIBLE = 200  # most shapes in the stopping rule's draws beside the answer


def with_partial(post: ShapePosterior,
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


class Search:
    """The adaptive policy's view of ``evidence`` for one decision.

    Attributes:
        problem, evidence, settings: the decision's inputs (``evidence`` gains the picks of a
            batch as running trainings while the batch is chosen: :meth:`add_pending`).
        slots: idle workers, the caller included.
        feasible: the feasible shapes, in the problem's order; ``index`` their positions.
        led: the evidence per shape (:class:`~optuna_shape.policy.adaptive.ledger.Ledger`).
        variants: the candidates are (shape, precision) pairs.
        conf: the confidence an answer must reach; ``floor`` the accuracy floor or ``None``.
        goal: the goal; ``n_shapes`` distinct (depth, width) shapes; ``n_initial`` the size
            of the initial design.
        budget: the trainings cap and the compute budget
            (:class:`~optuna_shape.policy.adaptive.budget.Budget`).
        alongside: whether a shape already being trained may get one more training at the
            same time (min-cost goals, workers idle with nothing else worth starting:
            :func:`~optuna_shape.policy.adaptive.batches.alongside`); ``added`` the shapes
            this decision has proposed so far (each at most once).

    Raises:
        ValueError: an unknown goal.
    """

    def __init__(self, problem: Problem, evidence: Evidence, settings: Settings,
                 slots: int = 1) -> None:
        self.problem, self.evidence, self.settings = problem, evidence, settings
        self.slots = max(1, int(slots))
        self.feasible = list(problem.feasible)
        self.index = {s: i for i, s in enumerate(self.feasible)}
        self.led = Ledger.of(evidence)
        self.variants = any(s.precision is not None for s in self.feasible)
        self.conf = float(settings.confidence)
        self.floor = problem.min_accuracy
        self.n_shapes = len({(s.depth, s.width) for s in self.feasible})
        self.n_initial = min(max(1, int(settings.n_initial)), self.n_shapes)
        self.goal = problem.goal
        if self.goal is not None and self.goal not in ("accuracy", *MIN_COST_GOALS):
            raise ValueError(f"unknown goal {self.goal!r}")
        self.budget = Budget(problem, evidence, settings, self.feasible, self.n_shapes)
        self.alongside = False
        self.added: set[Shape] = set()

    @property
    def n_done(self) -> int:
        """Trainings finished (a stopped training counts as one)."""
        return self.budget.n_done

    @property
    def n_pending(self) -> int:
        """Trainings running or queued."""
        return self.budget.n_pending

    def cost(self, s: Shape) -> float:
        """The goal's cost of ``s`` (its size when the problem has no goal costs)."""
        c = self.problem.costs.get(s) if self.problem.costs else None
        if c is None:
            c = self.problem.sizes.get(s, float(s.depth) * float(s.width) ** 2)
        return float(c)

    def proposable(self, s: Shape) -> bool:
        """``s`` is feasible and not given up after ``max_attempts`` failures."""
        return s in self.index and not self.led.given_up(s, self.settings.max_attempts)

    def startable(self, max_repeats: int) -> np.ndarray:
        """Which feasible shapes a new training may start on now."""
        return np.array([self.proposable(s) and s not in self.led.pending
                         and self.led.count(s) < max_repeats and self.budget.affordable(s)
                         for s in self.feasible])

    def compute_out(self) -> bool:
        """The compute budget cannot pay for another training of any proposable shape."""
        return self.budget.compute_out(s for s in self.feasible if self.proposable(s))

    def spent_out(self) -> bool:
        """No further training may start: the trainings cap or the compute budget is spent."""
        return self.budget.room() <= 0 or self.compute_out()

    def last_training(self, s: Shape) -> bool:
        """Whether a training of ``s`` is the last the budget pays for: one training left
        under the cap, or the compute left after it pays for no other proposable shape."""
        return self.budget.is_last(s, (o for o in self.feasible if o != s and self.proposable(o)
                                       and o not in self.led.pending))

    def p_floor(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """P(f ≥ floor) of each posterior mean and std (ones without a floor)."""
        if self.floor is None:
            return np.ones_like(mean)
        return norm.sf((self.floor - mean) / np.maximum(std, 1e-12))

    def rng(self) -> np.random.Generator:
        """The decision's random stream: seeded from the seed and the number of trainings."""
        seed = self.settings.seed
        return np.random.default_rng([0 if seed is None else int(seed) & 0xFFFFFFFF,
                                      len(self.evidence.trainings), len(self.evidence.pending)])

    # --------------------------------------------------------------- model
    def fit(self) -> ShapePosterior:
        """The posterior from every successful training (and the stopped ones' forecasts)."""
        if self.variants:
            return VariantPosterior.fit(self.feasible, self.led.values,  # type: ignore[return-value]
                                        self.led.partial, trend=self.problem.trend)
        shapes, values = [], []
        for s, vs in self.led.values.items():
            shapes += [s] * len(vs)
            values += vs
        post = ShapePosterior(self.feasible, trend=self.problem.trend).fit(shapes, values)
        return with_partial(post, self.led.partial)

    def fantasised(self, post: ShapePosterior) -> tuple[ShapePosterior, np.ndarray, np.ndarray]:
        """The posterior with running trainings fantasised at its mean, and its mean and std
        over the feasible shapes."""
        fpost = post.with_fantasies(list(self.evidence.pending)) if self.n_pending else post
        fmean, fstd = fpost.predict(self.feasible)
        return fpost, fmean, fstd

    # --------------------------------------------------------------- actions
    def train_one(self, post: ShapePosterior, s: Shape, stage: str, why: str) -> Train:
        """Train ``s``, with its posterior mean and std."""
        m, sd = post.predict([s])
        return Train((s,), stage, why, {s: (float(m[0]), float(sd[0]))})

    def wait_or(self, action: Stop) -> Action:
        """``action``, or wait while trainings are running."""
        if self.n_pending:
            return Wait(f"{self.n_pending} running training(s) must finish before the search "
                        f"can stop ({action.reason})")
        return action

    def add_pending(self, s: Shape) -> None:
        """Treat ``s`` as running from now on in this decision (every precision of its shape
        in a search over precisions: one training serves them all)."""
        same = [v for v in self.feasible if (v.depth, v.width) == (s.depth, s.width)] \
            if self.variants else [s]
        self.added.update(same)
        self.evidence = replace(self.evidence, pending=tuple(self.evidence.pending) + tuple(same))
        for v in same:
            self.led.pending[v] = self.led.pending.get(v, 0) + 1
        self.budget.commit(s, self.evidence.pending)
