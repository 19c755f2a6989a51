"""``ShapeSampler``: the shape search as an Optuna sampler — a thin adapter over a pure policy.

Where things are:

* :mod:`optuna_shape.policy` decides (pure: problem + trainings so far → train / wait / stop);
* :mod:`.snapshot` reads the study once per decision (trials + study attributes);
* :mod:`.planning` says what a trial does (steps 1–3 below) and plans; :mod:`.after` records a
  finished training and decides again (step 4); :mod:`.problem` builds the policy's problem
  from the screened space; :mod:`.checks` refuses a study this worker does not match;
  :mod:`.screen` and :mod:`.predicted_costs` measure; all of them read the sampler's settings
  through :class:`.context.SearchContext`;
* :mod:`.coordination` hands trainings to workers through Optuna's atomic queue;
* :mod:`.finish` stores the answer; :mod:`optuna_shape.store` owns every stored key.

How a trial runs (every worker runs the same code; nothing sleeps except a worker with nothing
to start):

1. ``study.ask()`` pops a queued (WAITING) trial — Optuna's WAITING → RUNNING transition: on
   PostgreSQL a row update under ``SELECT … FOR UPDATE`` that succeeds only if the row is still
   WAITING; on SQLite the same check is atomic only inside one locked transaction, which Python's
   sqlite3 driver does not open by itself, so :func:`optuna_shape.store.make_sqlite_atomic`
   makes every transaction ``BEGIN IMMEDIATE`` (``open_storage``, :func:`optimize` and the
   sampler's first trial apply it); the journal storage decides by log order on replay. So each
   queued training goes to exactly one worker. With eight or more trials running, the pop
   starts at a random one of the first few queued trials (:func:`optuna_shape.store.spread_pops`,
   applied by the same two), so workers asking at once do not all try the oldest one first.
   The queued trial was created in one storage call
   with its fixed params, its *slot* ``"<shape key>#<k>"`` and its stage, so what it trains is
   visible from the moment it exists.
2. The objective calls :func:`optuna_shape.suggest_shape`. A popped trial reads the study once:
   if a result is stored it ends as PRUNED (stage ``stopped``) and stops the study; if the
   *winner rule* says another trial holds its slot it ends PRUNED (stage ``duplicate``) without
   training; otherwise it trains. Two planners that queued the same shape concurrently give two
   trials with one slot: the lower number wins, and the later one always sees it because trial
   numbers follow creation order.
3. A trial ``ask`` had to create (the queue was empty) is a *planner*: it asks the policy for
   every idle worker, queues the shapes to train (only those not already pending, or those the
   policy asks to train once more alongside a running training) and takes the
   first itself — queuing the rest before it takes its own, since once it holds a slot it is no
   longer a planner and the next idle worker decides on what it sees queued — or ends PRUNED
   (stage ``plan``) when it has nothing to take. A ``Wait`` waits inside the trial (looking
   again after 0.05 s, then twice as long each time up to ``poll_interval``, proportionally
   longer with more than 16 running trials; failing trials of dead workers when the storage
   has heartbeats); a ``Stop`` stores the result (the first stored result is final) and stops.
4. ``after_trial`` of a training, once the queue is down to the look-ahead
   (:func:`.coordination.lookahead`: empty below eight running workers), decides again with the
   trial's own value and queues the next action, so one worker alternates trainings without
   planners in between and trains exactly what the policy decides on every result, and N
   workers keep getting work (the policy fantasises running shapes, so proposals are
   distinct). With many workers it fills the queue to twice the look-ahead; with heartbeats it
   first marks its own trial ``osh:planning`` and reads the study again, and decides only if
   it sees no other mark and no planner (of several finishing at once none may decide, and an
   idle worker plans instead; never two); planners that see the mark wait for it. While more
   trainings wait in the queue nothing is planned: a decision then would rest on fewer
   results. A planner waiting
   for another's decision ends (its worker's next ``ask`` takes a queued training) only once
   trainings are queued for the older waiting planners too
   (:func:`.coordination.a_queued_training_is_mine`); the others keep waiting for the decision
   rather than ending and planning again in a new trial.

A worker killed or paused at any point: before the pop nothing happened; after it, its trial is
RUNNING and holds its slot until its heartbeat stops and another worker fails it; a FAIL trial
does not count, the policy plans the slot again and the new copy wins. A paused worker whose
trial was failed meanwhile cannot complete it (Optuna refuses to tell a FAIL trial), so no slot
completes twice; :func:`optimize` carries such a worker on to its next trial.

Screening (latency / energy, measured once per study and hardware) is a queued trial with the
slot ``"screen:<hardware hash>#1"``, so one worker measures while the others wait.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from optuna_shape import store as st
from optuna_shape.measurement.screening import MeasurementSettings, needs_energy, needs_latency
from optuna_shape.policy import Adaptive, Paper, Policy, Problem, decide
from optuna_shape.sampler import after, checks, planning, screen
from optuna_shape.sampler.context import SearchContext, WorkerState
from optuna_shape.sampler.coordination import optimize
from optuna_shape.sampler.legacy import from_deprecated, policy_spelling
from optuna_shape.sampler.problem import screened_problem
from optuna_shape.sampler.problem import training_work as training_work
from optuna_shape.sampler.progress import SearchReporter
from optuna_shape.sampler.snapshot import TrialCache, read_snapshot
from optuna_shape.space.constraints import Constraints, check_goal
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.shape import Shape

__all__ = ["ShapeSampler", "optimize"]


class ShapeSampler(BaseSampler):
    """Optuna sampler that finds a network shape with few trainings.

    Args:
        space: the design space.
        constraints: size / latency / energy / accuracy limits (``None``: no limits).
        goal: ``"accuracy"`` (highest), ``"size"``, ``"latency"``, ``"energy"`` (lowest that
            meets the accuracy floor), or ``None`` for the whole complying set.
        policy: how the search decides: :class:`~optuna_shape.Adaptive` (``None``: the
            default ``Adaptive()``, a noise-aware sequential search) or
            :class:`~optuna_shape.Paper` (the paper's Algorithm 1); their fields say what
            each option means. With ``goal=None`` the adaptive search trains the modeling
            strategy's interval sample of the feasible shapes (``Adaptive(strategy=...)``,
            ``"standard"`` by default) and reads the complying set off its posterior; with a
            goal, ``Adaptive(strategy=...)`` is refused, since nothing would use it.
        seed: seed of every random choice (the policy's draws, random sampling) and of the
            independent sampler.
        measurement: how latency and energy are measured and screened —
            :class:`~optuna_shape.MeasurementSettings`: device, inference batch size,
            threads, ``target_hardware`` (reuse measurements taken on this hardware key even
            if this worker runs on other hardware; by default a worker on different hardware
            is refused) and ``screening`` (``"measure"``, ``"predict"`` or ``"auto"``).
            ``None``: the defaults (CPU, batch 1).
        reporter: receives progress events (see
            :class:`optuna_shape.sampler.progress.SearchReporter`).
        independent_sampler: sampler for parameters other than depth and width
            (default: ``RandomSampler(seed)``).
        max_attempts: failed trainings of one shape (exception, NaN) before it is given up.
        **deprecated: the keywords this constructor took before policy objects keep working,
            each call warning once (``FutureWarning``) with the new spelling: ``mode``,
            ``strategy``, ``sampling``, ``refit``, ``confidence``, ``max_trainings``,
            ``n_initial``, ``budget`` become the :class:`~optuna_shape.Adaptive` or
            :class:`~optuna_shape.Paper` that ``mode`` names; ``device``,
            ``latency_batch_size`` (``batch_size``), ``threads``, ``target_hardware``,
            ``screening`` become fields of ``measurement``; ``poll_interval`` is the
            :attr:`poll_interval` attribute. Mixing them with ``policy=`` (or the first three
            with ``measurement=``) is an error, and so is an option the chosen policy would
            ignore (``strategy``, ``sampling``, ``refit`` with the adaptive search — except
            ``strategy`` with ``goal=None`` — or ``confidence``, ``max_trainings``,
            ``n_initial``, ``budget`` with ``mode="paper"``), unless its value is the default,
            which changes nothing.

    Attributes:
        poll_interval: seconds between checks while a worker waits for others (1.0; lower
            it on the instance for fast tests).

    Example:
        >>> import optuna, optuna_shape as osh
        >>> space = osh.ShapeSpace("wrn", depth=(10, 28, 6), width=[0.5, 1, 2], in_channels=1,
        ...                        num_classes=10, image_size=8)
        >>> sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.5),
        ...                            policy=osh.Paper())
        >>> study = optuna.create_study(direction="maximize", sampler=sampler)
        >>> def objective(trial):
        ...     shape = osh.suggest_shape(trial, space)
        ...     return 90 + shape.width - 10 / shape.depth   # stand-in for a training
        >>> study.optimize(objective)            # ends by itself
        >>> osh.best_shape(study) in space
        True
    """

    def __init__(
        self,
        space: ShapeSpace,
        constraints: Constraints | None = None,
        goal: str | None = "accuracy",
        *,
        policy: Policy | None = None,
        seed: int | None = None,
        measurement: MeasurementSettings | None = None,
        reporter: SearchReporter | None = None,
        independent_sampler: BaseSampler | None = None,
        max_attempts: int = 2,
        **deprecated: Any,
    ) -> None:
        if not isinstance(space, ShapeSpace):
            raise TypeError(f"space must be an optuna_shape.ShapeSpace, got {space!r}")
        constraints = constraints if constraints is not None else Constraints()
        if not isinstance(constraints, Constraints):
            raise TypeError(f"constraints must be optuna_shape.Constraints, got {constraints!r}")
        check_goal(goal)
        legacy = "mode" in deprecated
        if deprecated:
            policy, measurement = from_deprecated(deprecated, goal, policy, measurement)
        policy = Adaptive() if policy is None else policy
        if not isinstance(policy, (Adaptive, Paper)):
            raise TypeError(f"policy must be osh.Adaptive(...) or osh.Paper(...), "
                            f"got policy={policy!r}")
        measurement = MeasurementSettings() if measurement is None else measurement
        if not isinstance(measurement, MeasurementSettings):
            raise TypeError(f"measurement must be osh.MeasurementSettings(...), "
                            f"got measurement={measurement!r}")
        if isinstance(policy, Adaptive) and policy.strategy is not None and goal is not None:
            raise ValueError(f"Adaptive(strategy=...) sizes the complying set of goal=None; the "
                             f"adaptive search for goal={goal!r} does not use it: drop it, or use "
                             f"policy=osh.Paper(strategy={policy.strategy!r})")
        if len(space.precisions) > 1 and isinstance(policy, Paper):
            need, got = (("mode='adaptive'", "mode='paper'") if legacy else
                         ("policy=osh.Adaptive()", f"policy={policy_spelling(policy)}"))
            raise ValueError(f"precision search needs {need}, got {got} with "
                             f"precisions {', '.join(space.precisions)}")
        checks.check_frontier(goal, policy, space.precisions)
        if measurement.screening == "predict" and len(space.precisions) > 1:
            raise ValueError(
                "screening='predict' covers shapes of one precision; a search over precisions "
                f"{', '.join(space.precisions)} measures every candidate: use screening='auto' "
                "or 'measure'")
        self.space = space
        self.constraints = constraints
        self.goal = goal
        self.seed = seed
        self.policy: Policy = policy
        """The search policy (:class:`~optuna_shape.Adaptive` or :class:`~optuna_shape.Paper`)."""
        self.settings = policy.to_settings(seed=seed, max_attempts=max_attempts)
        """What the policy functions read (made from :attr:`policy`; stored with the study)."""
        self.measurement = measurement
        self.poll_interval = deprecated.get("poll_interval", 1.0)
        self.reporter = reporter or SearchReporter()
        self._precisions = space.precisions if len(space.precisions) > 1 else ()
        self.precision_search = bool(self._precisions)
        """Whether the candidates are (shape, precision) pairs."""
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._needs_latency = needs_latency(constraints, goal)
        self._needs_energy = needs_energy(constraints, goal)
        self._state = WorkerState()

    def _context(self) -> SearchContext:
        """What the planning, screening and bookkeeping modules read, made from the current
        attributes (a setting changed on the instance counts at once)."""
        return SearchContext(
            space=self.space, constraints=self.constraints, goal=self.goal,
            settings=self.settings, measurement=self.measurement, precisions=self._precisions,
            needs_latency=self._needs_latency, needs_energy=self._needs_energy,
            reporter=self.reporter, poll_interval=self.poll_interval, decide=decide,
            state=self._state)

    @property
    def poll_interval(self) -> float:
        """Seconds between checks while a worker waits for others (> 0)."""
        return self._poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"poll_interval must be > 0, got poll_interval={value!r}")
        self._poll_interval = float(value)

    mode = property(lambda self: self.settings.mode, doc="``\"adaptive\"`` or ``\"paper\"``.")
    max_attempts = property(lambda self: self.settings.max_attempts,
                            doc="Failed trainings of one shape before it is given up.")
    strategy = property(lambda self: self.settings.strategy, doc="``settings.strategy``.")
    sampling = property(lambda self: self.settings.sampling, doc="``settings.sampling``.")
    refit = property(lambda self: self.settings.refit, doc="``settings.refit``.")
    screening = property(lambda self: self.measurement.screening,
                         doc="How latency and energy are screened (``measurement.screening``).")
    target_hardware = property(lambda self: self.measurement.target_hardware,
                               doc="``measurement.target_hardware``.")

    def config(self) -> dict[str, Any]:
        """The settings every worker of a study must share (stored in the study)."""
        return checks.config(self._context())

    @property
    def trial_cache(self) -> TrialCache:
        """This worker's cache of decoded finished trials (shared with its pruner)."""
        return self._state.cache

    def hardware(self) -> str | None:
        """Key of the hardware this worker measures on (``None`` when nothing is measured)."""
        return self._context().hardware()

    # ------------------------------------------------------------------ Optuna hooks -----
    def reseed_rng(self) -> None:
        """Reseed the independent sampler (the policy itself is deterministic)."""
        self._independent.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """No relative search space: shapes come from the queue."""
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Nothing to sample jointly."""
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Delegate to the independent sampler (never raises)."""
        self._independent.before_trial(study, trial)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """A queued trial's depth and width are fixed params (Optuna answers them itself);
        reaching here for them means the objective suggested them on a fresh trial without
        :func:`~optuna_shape.suggest_shape`: the trial plans (and ends, stage ``plan``).
        Other parameters go to the independent sampler."""
        if param_name in ("depth", "width") and planning.is_shape_distribution(
                self.space, param_name, param_distribution):
            shape, _ = self.resolve(study, st.trial_id(trial), trial.number)
            return shape.depth if param_name == "depth" else shape.width
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Record the accuracy constraint, then decide and queue the next action (or stop)."""
        self._independent.after_trial(study, trial, state, values)
        after.after_trial(self._context(), study, trial, state, values)

    # ------------------------------------------------------------------ the trial's role --
    def resolve(self, study: optuna.Study, trial_id: int, number: int) -> tuple[Shape, str]:
        """What trial ``number`` does: train a shape (returned with its stage), or end.

        Raises:
            optuna.TrialPruned: the trial does not train — it planned (``plan``), screened
                (``screen``), yielded its slot (``duplicate``), or the search is over
                (``stopped``); the stage and reason are in its user attributes.
            ValueError: the study contradicts this sampler's settings or hardware.
        """
        return planning.resolve(self._context(), study, trial_id, number)

    def problem(self, study: optuna.Study) -> Problem | None:
        """The screened design space of ``study`` as the policy sees it (``None`` while
        screening on this worker's hardware is not complete)."""
        return screened_problem(self._context(), study, read_snapshot(study, self._state.cache))

    def candidates(self) -> list[Shape]:
        """What the search chooses among: the space's shapes, or with several precisions every
        (shape, precision) :class:`~optuna_shape.space.shape.Variant`."""
        return self._context().candidates()

    def measure_one(self, study: optuna.Study, shape: Shape) -> dict[str, Any] | None:
        """Measurements of one shape (e.g. a hand-enqueued one), measuring it if missing."""
        return screen.measure_one(self._context(), study, shape)

    def record_trial(self, trial: optuna.Trial, shape: Shape, stage: str) -> None:
        """Write what the dashboard shows about a hand-enqueued trial and prune it if ``shape``
        breaks a limit (planned trials carry these attributes from creation).

        Raises:
            optuna.TrialPruned: the shape exceeds a size, latency or energy limit (or could not
                be measured); the reason is in the trial's ``reject_reason`` user attribute.
        """
        if stage == "user":
            screen.record_user_trial(self._context(), trial, shape)

    def __repr__(self) -> str:
        return (f"ShapeSampler(mode={self.mode!r}, goal={self.goal!r}, "
                f"constraints={json.dumps(self.constraints.to_dict())})")
