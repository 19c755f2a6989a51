"""``ShapeSampler``: the shape search as an Optuna sampler — a thin adapter over a pure policy.

Where things are:

* :mod:`optuna_shape.policy` decides (pure: problem + trainings so far → train / wait / stop);
* :mod:`.snapshot` reads the study once per decision (trials + study attributes);
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
   queued training goes to exactly one worker. The queued trial was created in one storage call
   with its fixed params, its *slot* ``"<shape key>#<k>"`` and its stage, so what it trains is
   visible from the moment it exists.
2. The objective calls :func:`optuna_shape.suggest_shape`. A popped trial reads the study once:
   if a result is stored it ends as PRUNED (stage ``stopped``) and stops the study; if the
   *winner rule* says another trial holds its slot it ends PRUNED (stage ``duplicate``) without
   training; otherwise it trains. Two planners that queued the same shape concurrently give two
   trials with one slot: the lower number wins, and the later one always sees it because trial
   numbers follow creation order.
3. A trial ``ask`` had to create (the queue was empty) is a *planner*: it asks the policy, queues
   the shapes to train (only those not already pending) and ends PRUNED (stage ``plan``); the
   worker's next ``ask`` pops the queue. A ``Wait`` waits inside the trial (failing trials of
   dead workers when the storage has heartbeats); a ``Stop`` stores the result (the first
   stored result is final) and stops.
4. ``after_trial`` of a training, once the queue is empty, decides again with the trial's own
   value and queues the next action, so one worker alternates trainings without planners in
   between and trains exactly what the policy decides on every result, and N workers keep
   getting work (the policy fantasises running shapes, so proposals are distinct). While
   trainings wait in the queue nothing is planned: a decision then would rest on fewer results.

A worker killed or paused at any point: before the pop nothing happened; after it, its trial is
RUNNING and holds its slot until its heartbeat stops and another worker fails it; a FAIL trial
does not count, the policy plans the slot again and the new copy wins. A paused worker whose
trial was failed meanwhile cannot complete it (Optuna refuses to tell a FAIL trial), so no slot
completes twice; :func:`optimize` carries such a worker on to its next trial.

Screening (latency / energy, measured once per study and hardware) is a queued trial with the
slot ``"screen:<hardware hash>#1"``, so one worker measures while the others wait.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_shape import store as st
from optuna_shape.measurement.screening import (
    MeasurementSettings,
    apply_limits,
    candidate_size,
    constraint_values,
    needs_energy,
    needs_latency,
    size_screen,
)
from optuna_shape.policy import (
    Adaptive,
    Paper,
    Policy,
    Problem,
    Stop,
    Train,
    Wait,
    decide,
)
from optuna_shape.sampler import coordination, predicted_costs, screen
from optuna_shape.sampler.coordination import optimize
from optuna_shape.sampler.finish import write_result
from optuna_shape.sampler.legacy import from_deprecated, policy_spelling
from optuna_shape.sampler.progress import SearchReporter
from optuna_shape.sampler.snapshot import Snapshot, TrialCache, read_snapshot
from optuna_shape.space.constraints import Constraints, check_goal
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.shape import Shape, Variant

__all__ = ["ShapeSampler", "optimize"]

_logger = logging.getLogger("optuna_shape")


def training_work(space: ShapeSpace, candidates: Sequence[Shape]) -> dict[Shape, float]:
    """What a training of each candidate costs relative to the others: multiply-accumulates
    per forward pass for wide ResNets (analytic), parameters for other families (counting their
    MACs would build every shape on the meta device)."""
    if space.family.name == "wrn":
        from optuna_shape.measurement.flops import wrn_macs

        return {c: float(wrn_macs(c.depth, c.width, space.in_channels, space.num_classes,
                                  space.image_size)) for c in candidates}
    return {c: float(space.param_count(Shape(c.depth, c.width))) for c in candidates}


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
        self._cache = TrialCache()
        self._problems: dict[int, tuple[Problem, dict[Shape, dict[str, Any]]]] = {}
        self._n_predicted: dict[int, int] = {}  # predicted records behind a cached problem
        self._checked: set[int] = set()
        self._lock = threading.RLock()
        self._hardware: str | None = None
        self._last_stale_check = 0.0
        self._last_warn = -1e9
        self._warned_pruner = False
        self._claimed: dict[int, tuple[Shape, str]] = {}  # trial id → what its planner took

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

    # ------------------------------------------------------------------ configuration ----
    def config(self) -> dict[str, Any]:
        """The settings every worker of a study must share (stored in the study)."""
        s = self.settings
        cfg: dict[str, Any] = {
            "space": self.space.to_dict(),
            "constraints": self.constraints.to_dict(),
            "goal": self.goal,
            "mode": s.mode,
            "max_attempts": s.max_attempts,
        }
        if s.mode == "paper":
            cfg.update(strategy=s.strategy, sampling=s.sampling, refit=s.refit)
            if s.sampling == "random":
                cfg["seed"] = s.seed
        else:
            cfg.update(confidence=s.confidence, max_trainings=s.max_trainings,
                       n_initial=s.n_initial, seed=s.seed)
            if s.budget is not None:  # absent otherwise: studies made before it still load
                cfg["budget_seconds"] = s.budget
            if self.goal is None:  # the complying set is the paper's interval sample
                cfg.update(strategy=s.strategy, sampling=s.sampling)
        if self._needs_latency or self._needs_energy:
            cfg["latency_batch_size"] = self.measurement.batch_size
        return cfg

    @property
    def trial_cache(self) -> TrialCache:
        """This worker's cache of decoded finished trials (shared with its pruner)."""
        return self._cache

    def hardware(self) -> str | None:
        """Key of the hardware this worker measures on (``None`` when nothing is measured)."""
        if not (self._needs_latency or self._needs_energy):
            return None
        if self.target_hardware is not None:
            return self.target_hardware
        if self._hardware is None:
            from optuna_shape.measurement import hardware_key

            self._hardware = hardware_key(
                self.measurement.device, self.measurement.threads, self.measurement.batch_size)
        return self._hardware

    def _check_study(self, study: optuna.Study, attrs: dict[str, Any] | None = None) -> None:
        """Refuse a study whose direction or stored configuration contradicts this sampler
        (checked on every snapshot: a worker that raced the first write is caught too)."""
        sid = study._study_id
        if sid not in self._checked:
            st.make_sqlite_atomic(study._storage)  # idempotent; open_storage already does it
            if study._is_multi_objective() or study.direction != StudyDirection.MAXIMIZE:
                raise ValueError(
                    "ShapeSampler needs a single-objective study with direction='maximize' (the "
                    "objective returns accuracy), got directions "
                    f"{[d.name for d in study.directions]}")
        if attrs is None:
            attrs = st.study_attrs(study)
        stored = st.read_config(attrs)
        mine = self.config()
        if stored is None:
            st.write_config(study, mine)
            stored = st.read_config(st.study_attrs(study))
        details = st.config_difference(stored or {}, mine, "this worker")
        if details:
            raise ValueError(
                f"study {study.study_name!r} was created with a different shape search "
                f"({details}). Use the same settings to join it, or a new study name.")
        hw = self.hardware()
        if hw is not None:
            self._check_hardware(study, attrs, hw)
        self._checked.add(sid)

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
        if param_name in ("depth", "width") and self._is_shape_distribution(
                param_name, param_distribution):
            shape, _ = self.resolve(study, trial._trial_id, trial.number)
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
        self._claimed.pop(trial._trial_id, None)
        rec = st.decode_trial(trial)
        if not rec.is_training or study._study_id not in self._checked or \
                trial.user_attrs.get("reject_reason"):
            return
        value = values[0] if values else None
        from optuna.storages._heartbeat import get_heartbeat_thread

        # Optuna's heartbeat stops when the objective returns; the bookkeeping below (a fit,
        # the first one importing scikit-learn) must not let the trial look dead meanwhile.
        with get_heartbeat_thread(trial._trial_id, study._storage):
            missing = self._missing_precisions(trial, state, value)
            if missing:
                reason = (f"the objective returned a value but its trial user attribute "
                          f"'{st.ACCURACY_BY_PRECISION}' lacks {', '.join(missing)}: a search "
                          f"over precisions {', '.join(self._precisions)} needs the accuracy "
                          "of the trained network at each of them "
                          "(trial.set_user_attr(\"accuracy_by_precision\", {precision: accuracy}))")
                st.set_trial_user_attrs(study, trial._trial_id, {"fail_reason": reason})
            self._after_training(study, trial, state, value)
        if missing:
            raise ValueError(f"trial {trial.number}: {reason}")

    def _missing_precisions(self, trial: FrozenTrial, state: TrialState,
                            value: float | None) -> list[str]:
        """Precisions of the space a completed training's ``accuracy_by_precision`` lacks
        without a reason in ``precision_errors`` (none outside a search over precisions, or
        for a failed training). A precision the network could not be converted to is a failed
        candidate, not a broken objective."""
        if not self._precisions or state != TrialState.COMPLETE or value is None or \
                not math.isfinite(value):
            return []
        acc = st.accuracy_by_precision(trial.user_attrs) or {}
        errors = trial.user_attrs.get(st.PRECISION_ERRORS) or {}
        return [p for p in self._precisions if p not in acc and p not in errors]

    def _pruned_by_another_pruner(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A training the objective stopped for a pruner other than ShapePruner: it carries no
        projection, so the search counts it as a failed training; say so (a warning once)."""
        name = type(study.pruner).__name__
        reason = (f"stopped by the study's pruner {name}, which compares different shapes at "
                  "equal epochs; counted as a failed training (use "
                  "create_study(pruner=osh.ShapePruner()) to stop trainings early, or "
                  "optuna.pruners.NopPruner() not to)")
        st.set_trial_user_attrs(study, trial._trial_id, {"fail_reason": reason})
        if not self._warned_pruner:
            self._warned_pruner = True
            _logger.warning("optuna-shape: trial %d was %s", trial.number, reason)

    def _after_training(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                        value: float | None) -> None:
        try:
            if state == TrialState.FAIL and trial.user_attrs.get(st.INTERRUPTED):
                return  # stopped by Ctrl-C: lost, not failed; the resumed search decides
            if state == TrialState.COMPLETE and value is not None and math.isfinite(value):
                if self.constraints.min_accuracy is not None:
                    c = self.constraints.min_accuracy - value
                    st.set_trial_system_attr(study, trial._trial_id, "constraints:accuracy", c)
                    from optuna_shape.store.attributes import significant

                    st.set_trial_user_attrs(study, trial._trial_id,
                                            {"constraint_accuracy": significant(c, 4)})
            elif state in (TrialState.COMPLETE, TrialState.FAIL):
                reason = ("the objective raised an exception or returned "
                          f"{'a non-finite value' if value is None else repr(value)}")
                st.set_trial_user_attrs(study, trial._trial_id, {"fail_reason": reason})
            elif state == TrialState.PRUNED and st.PRUNE_REASON not in trial.user_attrs:
                self._pruned_by_another_pruner(study, trial)
            snap = read_snapshot(study, self._cache, (trial.number, state, value))
            if snap.result is not None:
                self._stop_study(study)
                return
            if snap.queued:
                # the next ask takes a queued training; the policy decides once the queue is
                # empty, on every result in by then (asked now, it would plan on fewer
                # results and queue trainings behind those already waiting)
                return
            problem = self._problem(study, snap)
            if problem is None:
                return
            if snap.planners():
                return  # a planning worker decides for every idle one, this one included
            snap, problem, action = self._decide(study, snap, problem)
            if isinstance(action, Train):
                self._enqueue(study, snap, problem, action)
            elif isinstance(action, Stop):
                if st.trial_state(study, trial._trial_id) != TrialState.RUNNING:
                    return  # failed as stale while this worker was paused: not evidence
                self._finish(study, snap, problem, action)
                self._stop_study(study)
        except Exception:  # never lose the trial's result because of bookkeeping
            _logger.exception("optuna-shape: bookkeeping after trial %d failed", trial.number)

    def _is_shape_distribution(self, name: str, dist: BaseDistribution) -> bool:
        if not isinstance(dist, CategoricalDistribution):
            return False
        values = self.space.depths if name == "depth" else self.space.widths
        return list(dist.choices) == list(values)

    # ------------------------------------------------------------------ the trial's role --
    def resolve(self, study: optuna.Study, trial_id: int, number: int) -> tuple[Shape, str]:
        """What trial ``number`` does: train a shape (returned with its stage), or end.

        Raises:
            optuna.TrialPruned: the trial does not train — it planned (``plan``), screened
                (``screen``), yielded its slot (``duplicate``), or the search is over
                (``stopped``); the stage and reason are in its user attributes.
            ValueError: the study contradicts this sampler's settings or hardware.
        """
        claimed = self._claimed.get(trial_id)
        if claimed is not None:  # this trial planned and took a training (see _claim)
            return claimed
        snap = read_snapshot(study, self._cache)
        self._check_study(study, dict(snap.attrs))
        me = snap.by_number(number)
        if me is None:
            raise RuntimeError(f"trial {number} is not in the study")
        if me.state != TrialState.RUNNING:  # failed as stale while this worker was paused
            raise optuna.TrialPruned(f"trial {number} is {me.state.name}: not training it")
        if snap.result is not None:
            self._end(study, trial_id, "stopped", f"search finished: {snap.result.reason}",
                      stop=True)
        screened_hw = None if me.slot is None else st.screened_hash(me.slot)
        if screened_hw is not None:
            if not coordination.wins(snap, me) or st.screened_key(screened_hw) in snap.attrs:
                self._end(study, trial_id, "duplicate", "another worker screens")
            self._screen(study, snap)
            self._end(study, trial_id, "screen", "measured the design space")
        if me.slot is not None:
            assert me.shape is not None
            if not coordination.wins(snap, me):
                self._end(study, trial_id, "duplicate",
                          f"slot {me.slot} is held by another trial")
            stage = me.stage or "sample"
            if type(self.reporter).on_compute is not SearchReporter.on_compute:
                # only a reporter that shows it pays for the sum over the study's trainings
                self.reporter.on_compute(snap.compute_spent(), self.settings.budget)
            self.reporter.on_assign(number, me.shape, stage)
            return me.shape, stage
        if me.shape is not None:  # enqueued by hand
            return me.shape, "user"
        return self._plan(study, trial_id, number, snap)

    def _plan(self, study: optuna.Study, trial_id: int, number: int, snap: Snapshot
              ) -> tuple[Shape, str]:
        """A planner trial: decide, take the first proposed training itself and queue the rest
        (:meth:`_claim`), or end (waiting inside while there is nothing to do)."""
        while True:
            if snap.result is not None:
                self._end(study, trial_id, "stopped", f"search finished: {snap.result.reason}",
                          stop=True)
            problem = self._problem(study, snap)
            if problem is None:  # screening on this hardware is not complete
                h = st.hardware_hash(self.hardware() or "")
                state = coordination.screen_state(snap, h)
                if state == "none":
                    coordination.queue_screening(study, h)
                    self._end(study, trial_id, "plan", "queued the screening of the space")
                if state == "queued":
                    self._end(study, trial_id, "plan", "the screening task is queued")
                reason = "another worker is screening the design space"
            elif (first := snap.first_planner()) is not None and first != number and (
                    st.has_heartbeat(study) or st.is_in_memory(study)):
                # one worker plans for every idle one: planners deciding at once would each
                # queue a batch for all of them, and most of it would only be yielded again
                # (without heartbeats a dead worker's planner would never be failed, so there
                # each planner decides for itself)
                if snap.queued:
                    self._end(study, trial_id, "plan", "a queued training is waiting")
                reason = f"trial {first} plans for the idle workers"
            else:
                snap, problem, action = self._decide(study, snap, problem,
                                                     max(1, snap.planners()))
                if isinstance(action, Stop):
                    self._finish(study, snap, problem, action)
                    self._end(study, trial_id, "stopped", f"search finished: {action.reason}",
                              stop=True)
                if isinstance(action, Train):
                    mine = self._claim(study, trial_id, number, snap, problem, action)
                    if mine is not None:
                        return mine
                    queued = self._enqueue(study, snap, problem, action)
                    if queued or snap.queued:
                        self._end(study, trial_id, "plan",
                                  f"queued {len(queued)} training(s): {action.reason}")
                    reason = "the proposed shapes are being trained"
                else:
                    assert isinstance(action, Wait)
                    if snap.queued:
                        self._end(study, trial_id, "plan", "a queued training is waiting")
                    reason = action.reason
            self._wait(study, reason)
            snap = read_snapshot(study, self._cache)

    def _decide(self, study: optuna.Study, snap: Snapshot, problem: Problem, slots: int = 1
                ) -> tuple[Snapshot, Problem, Train | Wait | Stop]:
        """The policy's action for ``slots`` idle workers, after measuring for real every shape
        it would train (or answer) whose cost is only predicted; when that changed anything the
        feasible set is rebuilt and the policy decides again (each round measures at least one
        predicted shape, so this ends)."""
        while True:
            action = decide(problem, snap.evidence(self._precisions), self.settings, slots)
            if self.precision_search:  # every candidate was measured (no prediction)
                return snap, problem, action
            shapes = list(action.shapes) if isinstance(action, Train) else (
                [action.answer] if isinstance(action, Stop) and action.answer is not None
                else [])
            _, measurements = self._problems[study._study_id]
            if not predicted_costs.confirm_measured(self, study, shapes, measurements):
                return snap, problem, action
            snap = dataclasses.replace(snap, attrs=st.study_attrs(study))
            rebuilt = self._problem(study, snap)
            assert rebuilt is not None  # screening was complete, and stays so
            problem = rebuilt

    def _wait(self, study: optuna.Study, reason: str) -> None:
        self.reporter.on_wait(reason)
        now = time.monotonic()
        if now - self._last_stale_check >= 5.0:
            self._last_stale_check = now
            st.fail_stale(study)
        if not st.is_in_memory(study) and not st.has_heartbeat(study) and \
                now - self._last_warn >= 60.0:
            self._last_warn = now
            _logger.warning(
                "optuna-shape: waiting (%s). This storage has no heartbeat, so a trial whose "
                "worker died stays RUNNING forever: use RDBStorage(url, heartbeat_interval=10) "
                "(the CLI does), or mark dead trials failed "
                "(optuna_shape.store.backends.fail_stale_on_start).", reason)
        time.sleep(self.poll_interval)

    def _end(self, study: optuna.Study, trial_id: int, stage: str, reason: str,
             stop: bool = False) -> None:
        st.set_trial_user_attrs(study, trial_id, {"stage": stage, "end_reason": reason})
        if stop:
            self._stop_study(study)
        raise optuna.TrialPruned(reason)

    @staticmethod
    def _stop_study(study: optuna.Study) -> None:
        try:
            study.stop()
        except RuntimeError:  # ask-and-tell: nothing to stop
            pass

    def _claim(self, study: optuna.Study, trial_id: int, number: int, snap: Snapshot,
               problem: Problem, action: Train) -> tuple[Shape, str] | None:
        """Let planner trial ``number`` train the first proposed shape not already pending
        itself and queue the rest, so a worker's trial is a training, not a pruned planner
        (``None`` when every proposed shape is pending).

        The claimed slot must be the trial's alone: a copy of it queued or taken by another
        worker meanwhile (another planner proposed the same shape at the same moment) makes
        this trial yield (stage ``duplicate``). Both may yield in a close race — the policy
        then proposes the shape again — but two never train one slot: the other copy yields
        to this lower-numbered trial once it sees the claim, and this trial yields to any
        copy it sees."""
        pending = snap.pending_shapes()
        free = [c for c in action.shapes if Shape(c.depth, c.width) not in pending]
        if not free:
            return None
        shape = Shape(free[0].depth, free[0].width)
        slot = coordination.slot_of(shape, snap.repeat_index(shape))
        user, system = self._attrs_of(study, action, shape)
        st.claim_training(study, trial_id, slot=slot, stage=action.stage, shape=shape,
                          user_attrs=user, system_attrs=system)
        rest = tuple(c for c in action.shapes if Shape(c.depth, c.width) != shape)
        if rest:
            self._enqueue(study, snap, problem, dataclasses.replace(action, shapes=rest))
        after = read_snapshot(study, self._cache)
        if any(t.number != number and t.state in (TrialState.WAITING, TrialState.RUNNING,
                                                  TrialState.COMPLETE)
               for t in after.same_slot(slot)):
            self._end(study, trial_id, "duplicate", f"slot {slot} is held by another trial")
        self._claimed[trial_id] = (shape, action.stage)
        self.reporter.on_assign(number, shape, action.stage)
        return shape, action.stage

    def _attrs_of(self, study: optuna.Study, action: Train, shape: Shape
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (user, system) attributes a planned training of ``shape`` carries: size,
        measurements, constraint values and the policy's prediction."""
        from optuna_shape.store.attributes import readable_trial_attrs

        _, measurements = self._problems[study._study_id]
        cand = next(c for c in action.shapes if Shape(c.depth, c.width) == shape)
        size = candidate_size(self.space, cand)
        m = measurements.get(cand)
        user: dict[str, Any] = {"params": self.space.param_count(shape),
                                "size_mb": round(size, 6)}
        if isinstance(cand, Variant):
            user["precision"] = cand.precision
        system: dict[str, Any] = {}
        if m:
            for k in ("latency_ms", "energy_j"):
                if m.get(k) is not None:
                    user[k] = m[k]
        for name, value in constraint_values(self.constraints, size, m).items():
            system[f"constraints:{name}"] = value
            user[f"constraint_{name}"] = value
        pred = action.predictions.get(cand)
        if pred is not None:
            user.update(predicted_accuracy=float(pred[0]), predicted_std=float(pred[1]),
                        prediction_source=f"{self.settings.mode} policy")
        # rounded for reading and sorting in optuna-dashboard (constraints stay exact)
        return readable_trial_attrs(user, shape=shape), system

    def _enqueue(self, study: optuna.Study, snap: Snapshot, problem: Problem,
                 action: Train) -> list[Shape]:
        # a candidate (shape, precision) is served by training its shape once
        proposed: dict[Shape, Shape] = {}
        for c in action.shapes:
            proposed.setdefault(Shape(c.depth, c.width), c)

        return coordination.enqueue(study, snap, tuple(proposed), action.stage,
                                    lambda shape: self._attrs_of(study, action, shape))

    def _finish(self, study: optuna.Study, snap: Snapshot, problem: Problem,
                action: Stop) -> None:
        result = write_result(study, action, snap, problem,
                              len(self.space) * max(1, len(self._precisions)), self._precisions)
        fit = st.read_fit(st.study_attrs(study))
        if fit is not None:
            self.reporter.on_fit(fit.to_json())
        self.reporter.on_done(result.to_json())

    # ------------------------------------------------------------------ screening --------
    def problem(self, study: optuna.Study) -> Problem | None:
        """The screened design space of ``study`` as the policy sees it (``None`` while
        screening on this worker's hardware is not complete)."""
        return self._problem(study, read_snapshot(study, self._cache))

    def _problem(self, study: optuna.Study, snap: Snapshot) -> Problem | None:
        """The screened design space (``None`` while screening on this hardware is pending)."""
        sid = study._study_id
        if sid in self._problems and not (self._n_predicted.get(sid) and st.count_predicted(
                snap.attrs, st.hardware_hash(self.hardware() or "")) != self._n_predicted[sid]):
            return self._problems[sid][0]
        space, cons = self.space, self.constraints
        passed, _ = size_screen(space, self.candidates(), cons.max_size_mb)
        measurements: dict[Shape, dict[str, Any]] = {}
        hw = self.hardware()
        if hw is not None and passed:
            self._check_hardware(study, snap.attrs, hw)
            h = st.hardware_hash(hw)
            if st.screened_key(h) not in snap.attrs:
                return None
            measurements = st.read_measurements(snap.attrs, h)
            if self._precisions:  # keyed by candidate
                measurements = {c: dict(m) for c in passed
                                if (m := st.measurement_of(measurements, c)) is not None}
            passed, _ = apply_limits(passed, measurements, cons, latency=self._needs_latency,
                                     energy=self._needs_energy)
        sizes = {s: candidate_size(space, s) for s in passed}
        metric = {"size": "size_mb", "latency": "latency_ms", "energy": "energy_j"}
        costs: dict[Shape, float] = {}
        if self.goal == "size":
            costs = dict(sizes)
        elif self.goal in metric:
            costs = {s: float(measurements[s][metric[self.goal]]) for s in passed}
        problem = Problem(tuple(passed), sizes, costs, self.goal, cons.min_accuracy,
                          training_work(space, passed))
        rebuilt = sid in self._problems
        self._problems[sid] = (problem, measurements)
        self._n_predicted[sid] = sum(1 for m in measurements.values() if st.is_predicted(m))
        if rebuilt:  # a predicted shape was measured for real: the feasible set changed
            return problem
        n_planned = 0
        if self.settings.mode == "paper":
            from optuna_shape.policy.paper import planned_shapes

            n_planned = len(planned_shapes(problem, self.settings))
        self.reporter.on_screened(len(passed), len(space) * max(1, len(self._precisions)),
                                  n_planned)
        if not passed:
            _logger.warning("optuna-shape: no shape of the design space meets the limits")
        return problem

    def candidates(self) -> list[Shape]:
        """What the search chooses among: the space's shapes, or with several precisions every
        (shape, precision) :class:`~optuna_shape.space.shape.Variant`."""
        if not self._precisions:
            return self.space.shapes
        return [Variant(s.depth, s.width, p) for s in self.space.shapes
                for p in self._precisions]

    def _check_hardware(self, study: optuna.Study, attrs: Any, hw: str) -> None:
        known = st.known_hardware(attrs)
        if known and hw not in known:
            listed = "; ".join(sorted(known))
            raise ValueError(
                f"study {study.study_name!r} holds measurements taken on other hardware "
                f"({listed}); this worker measures on {hw!r}. Latency and energy are not "
                "comparable across hardware: run this worker on the same hardware, pass "
                "target_hardware=<one of the keys above> (CLI: --target-hardware) to use those "
                "measurements knowingly, or use a new study.")

    def _screen(self, study: optuna.Study, snap: Snapshot) -> None:
        screen.screen_space(self, study, snap)

    def measure_one(self, study: optuna.Study, shape: Shape) -> dict[str, Any] | None:
        """Measurements of one shape (e.g. a hand-enqueued one), measuring it if missing."""
        return screen.measure_one(self, study, shape)

    def record_trial(self, trial: optuna.Trial, shape: Shape, stage: str) -> None:
        """Write what the dashboard shows about a hand-enqueued trial and prune it if ``shape``
        breaks a limit (planned trials carry these attributes from creation).

        Raises:
            optuna.TrialPruned: the shape exceeds a size, latency or energy limit (or could not
                be measured); the reason is in the trial's ``reject_reason`` user attribute.
        """
        if stage == "user":
            screen.record_user_trial(self, trial, shape)

    def __repr__(self) -> str:
        return (f"ShapeSampler(mode={self.mode!r}, goal={self.goal!r}, "
                f"constraints={json.dumps(self.constraints.to_dict())})")
