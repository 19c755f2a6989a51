"""The adaptive policy: a noise-aware sequential search on a posterior over every feasible shape.

Each call refits :class:`~optuna_shape.models.posterior.ShapePosterior` (GP with an integrated Eq. 2
linear mean and a heteroscedastic seed-noise model) from every successful training and returns
one action. Choices, in order:

1. **No feasible shape** → ``Stop(status="no_feasible")``. **No goal** → the whole complying set:
   the modeling strategy's interval sample (as the paper sizes it) is trained, then
   ``Stop(status="complying_set")`` with P(accuracy ≥ floor) per shape in the details.
2. **Budget**: ``max_trainings`` (default ``max(n_initial + 3, ceil(n_feasible / 3))``, plus
   four for each worker beyond the first that the study has had at once, at most
   ``2 n_feasible``: :func:`default_max_trainings`) counts every training, repeats and
   failures included. When finished + running trainings reach it,
   the policy waits for the running ones, then stops with the best answer it can justify.
3. **Initial design**: ``n_initial`` shapes spread over the feasible grid by greedy maximin in
   the scaled ``(log depth, log width)`` square, starting from the shape nearest the centre
   (ties broken by ``seed``); all not yet trained or running are proposed at once. Under a
   compute budget a design shape whose predicted cost exceeds the compute left, or (min-cost
   goals) an equal share of the budget among the ``n_initial`` design shapes, is skipped and
   the search goes on from what is trained (it does not stop while the budget still pays for
   other shapes; the acquisition may still choose a skipped shape, its value weighed against
   its cost).
4. **Planned repeat**: once the design is trained and no shape has two successful trainings,
   the best-measured shape (min-cost goals: the cheapest one measured at or above the floor) is
   trained again, so the noise is estimated from evidence, not only from the prior.
5. **Acquisition** (one shape per call; running trainings are fantasised at their posterior mean
   — kriging believer — so parallel workers get distinct shapes):

   * ``"accuracy"``: augmented expected improvement on the latent accuracy over the best
     posterior mean of the trained shapes, ``EI · (1 − σ_n / sqrt(s² + σ_n²))`` (Huang et al.
     2006): trained shapes may be proposed again (that is how repeats happen) but lose value as
     their posterior std shrinks, and are not proposed again while P(f > that best) ≤
     ``1 − confidence`` — a shape whose only training was stopped early counts as trained, so
     a long shot stopped far below the best is not started again. With a floor, shapes are
     weighted by P(f ≥ floor). No training starts whose expected improvement is below
     :data:`~optuna_shape.policy.adaptive.accuracy.NEGLIGIBLE_GAIN` (10⁻³) noise std of its
     shape: under a compute budget the last seconds paid only for the cheapest long shots,
     worth nothing; when nothing the compute left pays for is worth a training, the search
     stops on the budget.
   * ``"size"``/``"latency"``/``"energy"``: expected saving ``p_k · log(C / cost)`` over shapes
     cheaper than the current answer (``C`` its cost; with no answer yet, twice the largest
     cost), where ``p_k`` is the probability that ``k`` more trainings make the shape an answer
     (its posterior std shrinks by ``k`` observations, its mean moves accordingly, and it must
     then clear ``floor + z_confidence · std``); ``k`` is what the budget can still spend on it:
     the trainings the cap allows, at most 6 per shape in all, and what a compute budget pays
     for. A shape near the floor is confirmed by several trainings, not one: valued by one
     training only, cheap shapes within a noise std of the floor were worth almost nothing and
     the search answered with shapes many times the smallest complying one. The horizon
     shrinks to one training as the budget runs out. A shape stuck on the floor loses value as
     it is repeated; a cheap untried shape with a fair chance keeps it. Trained shapes qualify while
     borderline (P(f ≥ floor) above ``1 − confidence``, not yet an answer), and the answer
     itself while P(f ≥ floor) < 0.99, valued by the saving lost if it were wrong. A shape
     whose only trainings were stopped early counts as trained here: its forecasts are
     evidence, so a long shot stopped below the floor is not tried again. Candidates are never
     dropped on a point prediction.
   * **Idle workers**: with ``slots`` > 1 one decision proposes a distinct training for each,
     every pick fantasised as running for the next. Min-cost goals, when no new shape is worth
     starting while trainings are running: a borderline shape already being trained (P(f ≥ floor)
     between ``1 − confidence`` and 0.99 with the running trainings fantasised, at most six
     trainings in all) gets one more training at the same time (``Train.alongside``), while
     the cap has more trainings left than are running — its repeats, which the answer needs,
     then run side by side instead of one after another while the other workers wait.

6. **Answer**, always a trained shape whose own measured mean meets the floor:
   ``"accuracy"``: the highest posterior mean (with a floor: among those with
   P(f ≥ floor) ≥ ``confidence``); min-cost goals: the cheapest with P(f ≥ floor) ≥
   ``confidence``. With a floor, a shape trained once must clear it by two noise std, otherwise
   it is repeated first: a lone lucky seed is how wrong answers were chosen before. With a
   floor, a search stops confident on a shape trained once only when the seed noise is
   measured from at least two repeat degrees of freedom; before that the answer is trained
   once more (stage ``repeat``), while it already serves as the answer cheaper shapes are
   measured against.

   **At any budget.** When the budget ends (or nothing useful is left to train) before any shape
   is confirmed, the search still answers with ``Stop(status="unconfirmed")``: among trained
   shapes that plausibly meet the floor (P(f ≥ floor) at least 0.5, or their own measured mean
   at or above it) whose P(f ≥ floor) is within 0.1 of the best-supported one's (and at least
   0.5 when one reaches it), the goal's best (min-cost: the cheapest; accuracy: the highest
   posterior mean), its ``confidence`` that probability, and the reason says what one more
   training of it would buy (the probability it would then be confirmed). On a flat, noisy
   landscape with the floor near the top the posterior pulls shapes measured above the floor
   towards their neighbours, so every trained shape could sit below 0.5 and most such
   searches ended without an answer although shapes measured above the floor often met it.
   ``floor_not_reached`` only when no trained shape has P(f ≥ floor) ≥ 0.5 or a measured mean
   at or above the floor. The budget's last training, with nothing confirmed, goes to the
   shape most likely to meet the floor (min-cost goals: the cheapest within 0.1 of that
   probability once it is at least 0.5), so a search ends with something it can stand behind.
   Min-cost goals, when such a stop has a shape confirmed to meet the floor but not confirmed
   as the cheapest (the stopping rule's probability below ``confidence``): among it and the
   cheaper trained shapes whose own mean meets the floor with P(f ≥ floor) ≥ 0.5, the one the
   stopping rule's probability (P(meets the floor and nothing cheaper does)) favours most;
   a cheaper one is answered as ``"unconfirmed"``. The goal is the cheapest complying shape:
   answering a shape many times larger as settled while the search itself believes a cheaper
   trained one is more likely the right answer was how the size goal answered shapes many
   times the smallest complying size on a flat, noisy landscape.
7. **Stopping rule**, Monte Carlo over 256 joint posterior draws (seeded): ``"accuracy"``:
   P(f(answer) ≥ max f − tol) over the plausible shapes, ``tol`` half the estimated noise std of
   the answer (one full std stopped a little early on the tuning landscapes); min-cost:
   P(answer meets the floor and no cheaper shape has f ≥ floor + tol), ``tol`` one noise std.
   Stops when this reaches ``confidence`` (after the initial design and the planned repeat) —
   at once, even with trainings still running on other workers: the answer is what users wait
   for, and idle workers do not wait for results a confident answer does not need — or at the
   budget (once the running trainings, already paid for, are in). The reason says why, how
   sure, and what the next training would buy (the largest acquisition value: expected
   improvement in accuracy units, or expected saving in log cost).

Confidence: the default 0.9 (``Settings``) is what the tuning benchmark supports
(``benchmarks/results/policy_tuning.md``): on smooth landscapes it keeps the floor in 99 % of
searches (0.8: 95 %) and 0.95 adds at most a point for 20 % more trainings; on noisy real ones
the budget binds and a higher confidence only turns answers into "floor not reached".

Failures (``value=None``) count towards ``max_attempts`` per shape; a shape that failed that
often is never proposed again. When no training has succeeded and the initial design's shapes
are all given up (or the budget is spent) the search stops with ``status="all_failed"``.

Deterministic: the same inputs give the same action (every random choice is seeded from
``settings.seed`` and the number of trainings).

The package, by what each part decides (modules of ``optuna_shape.policy.adaptive``):
``search`` (one decision's view of the evidence, its posterior, the rules every stage shares),
``ledger`` (the evidence per shape), ``budget`` (the trainings cap and the compute budget),
``design`` (the spread designs), ``answers`` (which shape may be the answer, at any budget),
``accuracy`` and ``min_cost`` (each goal's answer, stopping rule and acquisition, chosen in
``goals``), ``batches`` (picks for idle workers), ``final`` (the stops and their words) and
``stages`` (the choices above, in order).
"""

from __future__ import annotations

from optuna_shape.models.posterior import single_threaded_blas
from optuna_shape.policy import Action, Evidence, Problem, Settings
from optuna_shape.policy.adaptive.accuracy import STOP_TOLERANCE
from optuna_shape.policy.adaptive.answers import (
    CONFIRM_MARGIN,
    CONFIRM_NOISE_DF,
    UNCONFIRMED_MIN_P,
    UNCONFIRMED_WITHIN,
)
from optuna_shape.policy.adaptive.budget import default_max_trainings
from optuna_shape.policy.adaptive.design import initial_design
from optuna_shape.policy.adaptive.ledger import Ledger
from optuna_shape.policy.adaptive.search import (
    MAX_PLAUSIBLE,
    MAX_REPEATS,
    MIN_COST_GOALS,
    N_DRAWS,
    Search,
    with_partial,
)
from optuna_shape.policy.adaptive.stages import next_action

__all__ = [
    "decide",
    "decision",
    "default_max_trainings",
    "initial_design",
    "Search",
    "Ledger",
    "with_partial",
    "MIN_COST_GOALS",
    "MAX_REPEATS",
    "N_DRAWS",
    "MAX_PLAUSIBLE",
    "STOP_TOLERANCE",
    "CONFIRM_MARGIN",
    "CONFIRM_NOISE_DF",
    "UNCONFIRMED_MIN_P",
    "UNCONFIRMED_WITHIN",
]



def decision(problem: Problem, evidence: Evidence, settings: Settings) -> Search:
    """The adaptive policy's view of ``evidence`` (its ledger, posterior and budget), for rules
    that judge a running training (:mod:`optuna_shape.policy.fidelity`)."""
    return Search(problem, evidence, settings)


def decide(problem: Problem, evidence: Evidence, settings: Settings, slots: int = 1) -> Action:
    """The adaptive policy's next action (see the package docstring); ``slots``: idle workers,
    the caller included — up to that many distinct trainings are proposed at once."""
    with single_threaded_blas():
        return next_action(Search(problem, evidence, settings, slots))
