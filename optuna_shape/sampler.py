"""``ShapeSampler``: the Shape_DNN search (paper Algorithm 1) as an Optuna sampler.

How it maps onto Optuna:

* The objective calls :func:`optuna_shape.suggest_shape` (or suggests ``"depth"`` and ``"width"``
  itself with the space's choices). At that moment the sampler *assigns* the trial a shape: the
  next planned shape of the sample stage, or the next verification candidate. The assignment is
  a trial system attribute (``osh:claim``); ``suggest_categorical`` then returns the claimed
  values through :meth:`ShapeSampler.sample_independent`. Objectives that never suggest a shape
  see an ordinary Optuna sampler (``independent_sampler``), which is how Optuna's own sampler test
  suite exercises it.
* All decisions are recomputed from the study's storage on every assignment (like Optuna's
  ``GridSampler``), so any number of processes that build the same sampler share one plan, and a
  restarted process continues it. Hardware measurements, the fitted model and the answer are study
  system attributes (:mod:`optuna_shape.storage_keys`).
* Claims are race-free in practice without a database lock: a worker writes its claim, waits
  ``claim_delay`` seconds, re-reads, and backs off if a lower-numbered trial claimed the same
  shape. Screening is done by one elected worker (lowest trial number among those asking) while
  the others wait; a worker that dies is replaced at the next election.
* A worker with nothing to start waits inside its trial (failing stale trials of dead workers
  while it waits, when the storage has heartbeats). When the search is over, every worker calls
  ``study.stop()`` and ends its current trial as PRUNED with stage ``stopped``, so
  ``study.optimize(objective)`` with no trial count ends by itself.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_shape import storage_keys as keys
from optuna_shape.constraints import Constraints, check_goal
from optuna_shape.design_space import ShapeSpace
from optuna_shape.modeling_strategy import SAMPLINGS, STRATEGIES, choose_shapes
from optuna_shape.progress import SearchReporter
from optuna_shape.screening import (
    MeasurementSettings,
    apply_limits,
    constraint_values,
    measure_shape,
    needs_energy,
    needs_latency,
    size_screen,
)
from optuna_shape.shape import Shape
from optuna_shape.verification import (
    Candidate,
    Step,
    TrialRecord,
    complying,
    goal_order,
    next_step,
    passes,
    shape_status,
)

__all__ = ["ShapeSampler", "SearchContext"]

_logger = logging.getLogger("optuna_shape")

_STATE = {
    TrialState.COMPLETE: "complete",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
    TrialState.FAIL: "fail",
    TrialState.PRUNED: "pruned",
}


@dataclass
class SearchContext:
    """The screened design space of one study (immutable once screening is complete)."""

    feasible: list[Shape]
    rejects: dict[Shape, str]
    measurements: dict[Shape, dict[str, Any]]
    plan: list[Shape]
    hardware: str | None = None
    sizes: dict[Shape, float] = field(default_factory=dict)


class ShapeSampler(BaseSampler):
    """Optuna sampler that finds a network shape with the Shape_DNN method.

    Args:
        space: the design space.
        constraints: size / latency / energy / accuracy limits (``None``: no limits).
        goal: ``"accuracy"`` (highest), ``"size"``, ``"latency"``, ``"energy"`` (lowest), or
            ``None`` to return the whole complying set without verification.
        strategy: modeling strategy ``"thorough"``, ``"standard"``, ``"optimistic"``, or the
            number of shapes to train before modelling.
        sampling: how the planned shapes are picked: ``"interval"``, ``"random"``, ``"wider"``.
        seed: seed for random sampling and for the independent sampler.
        device: where latency and energy are measured (``"cpu"``, ``"cuda"``, ``"cuda:N"``).
        latency_batch_size: inference batch size for latency and energy.
        threads: CPU threads for latency (default: the process's torch thread count).
        independent_sampler: sampler for parameters other than depth and width
            (default: ``RandomSampler(seed)``).
        max_attempts: trainings of one shape that may fail (exception, NaN) before it is given up.
        claim_delay: seconds between writing a claim and checking it (default 0 for in-memory
            storage, 0.3 s otherwise).
        poll_interval: seconds between checks while waiting for other workers.
        target_hardware: reuse measurements taken on this hardware key even if this worker runs
            on other hardware (by default a worker on different hardware is refused).
        reporter: receives progress events (see :class:`optuna_shape.progress.SearchReporter`).
        measurement: full :class:`~optuna_shape.screening.MeasurementSettings` (overrides
            ``device``, ``latency_batch_size`` and ``threads``).
        refit: refit the accuracy model each time a verified shape fails verification (misses
            the accuracy floor or, for the accuracy goal, falls more than two predictive standard
            deviations below its prediction), so the next candidate is chosen with that evidence
            (the paper keeps its first model; ``False`` reproduces it).

    Example:
        >>> import optuna, optuna_shape as osh
        >>> space = osh.ShapeSpace("wrn", depth=(10, 28, 6), width=[0.5, 1, 2], in_channels=1,
        ...                        num_classes=10, image_size=8)
        >>> sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.5), goal="accuracy")
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
        strategy: str | int = "standard",
        sampling: str = "interval",
        seed: int | None = None,
        *,
        device: str = "cpu",
        latency_batch_size: int = 1,
        threads: int | None = None,
        independent_sampler: BaseSampler | None = None,
        max_attempts: int = 2,
        claim_delay: float | None = None,
        poll_interval: float = 1.0,
        target_hardware: str | None = None,
        reporter: SearchReporter | None = None,
        measurement: MeasurementSettings | None = None,
        refit: bool = True,
    ) -> None:
        if not isinstance(space, ShapeSpace):
            raise TypeError(f"space must be an optuna_shape.ShapeSpace, got {space!r}")
        constraints = constraints if constraints is not None else Constraints()
        if not isinstance(constraints, Constraints):
            raise TypeError(f"constraints must be optuna_shape.Constraints, got {constraints!r}")
        check_goal(goal)
        if not (isinstance(strategy, int) and not isinstance(strategy, bool) and strategy >= 1) \
                and strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)} or a positive int, "
                f"got strategy={strategy!r}"
            )
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, "
                             f"got sampling={sampling!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
        if claim_delay is not None and not (claim_delay >= 0):
            raise ValueError(f"claim_delay must be >= 0, got {claim_delay!r}")
        if not (poll_interval > 0):
            raise ValueError(f"poll_interval must be > 0, got {poll_interval!r}")
        self.space = space
        self.constraints = constraints
        self.goal = goal
        self.strategy = strategy
        self.sampling = sampling
        self.seed = seed
        self.measurement = measurement or MeasurementSettings(
            device=device, batch_size=latency_batch_size, threads=threads
        )
        self.max_attempts = max_attempts
        self.claim_delay = claim_delay
        self.poll_interval = float(poll_interval)
        self.target_hardware = target_hardware
        self.refit = bool(refit)
        self.reporter = reporter or SearchReporter()
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._needs_latency = needs_latency(constraints, goal)
        self._needs_energy = needs_energy(constraints, goal)
        self._contexts: dict[int, SearchContext] = {}
        self._checked: set[int] = set()
        self._lock = threading.RLock()
        self._hardware: str | None = None
        self._last_stale_check = 0.0
        self._finished: dict[int, dict[int, TrialRecord | None]] = {}
        self._provisional: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------ configuration ----
    def config(self) -> dict[str, Any]:
        """The settings every worker of a study must share (stored in the study)."""
        cfg: dict[str, Any] = {
            "space": self.space.to_dict(),
            "constraints": self.constraints.to_dict(),
            "goal": self.goal,
            "strategy": self.strategy,
            "sampling": self.sampling,
            "max_attempts": self.max_attempts,
            "refit": self.refit,
        }
        if self.sampling == "random":
            cfg["seed"] = self.seed
        if self._needs_latency or self._needs_energy:
            cfg["latency_batch_size"] = self.measurement.batch_size
        return cfg

    def hardware(self) -> str | None:
        """Key of the hardware this worker measures on (``None`` when nothing is measured)."""
        if not (self._needs_latency or self._needs_energy):
            return None
        if self.target_hardware is not None:
            return self.target_hardware
        if self._hardware is None:
            from optuna_shape.measurement import hardware_key

            self._hardware = hardware_key(
                self.measurement.device, self.measurement.threads, self.measurement.batch_size
            )
        return self._hardware

    def _check_study(self, study: optuna.Study) -> None:
        """Refuse a study whose direction or stored configuration contradicts this sampler."""
        sid = study._study_id
        if sid in self._checked:
            return
        if study._is_multi_objective() or study.direction != StudyDirection.MAXIMIZE:
            raise ValueError(
                "ShapeSampler needs a single-objective study with direction='maximize' (the "
                f"objective returns accuracy), got directions {[d.name for d in study.directions]}"
            )
        mine = self.config()
        stored = keys.read_study_json(keys.read_all_study_attrs(study), keys.CONFIG)
        if stored is None:
            keys.write_study_json(study, keys.CONFIG, mine)
            self._sleep_claim(study)
            stored = keys.read_study_json(keys.read_all_study_attrs(study), keys.CONFIG)
        mine_norm = json.loads(json.dumps(mine))
        if stored != mine_norm:
            diff = sorted(k for k in set(stored) | set(mine_norm)
                          if stored.get(k) != mine_norm.get(k))
            details = "; ".join(
                f"{k}: study has {stored.get(k)!r}, this worker has {mine_norm.get(k)!r}"
                for k in diff
            )
            raise ValueError(
                f"study {study.study_name!r} was created with a different shape search "
                f"({details}). Use the same settings to join it, or a new study name."
            )
        self._checked.add(sid)

    # ------------------------------------------------------------------ Optuna hooks -----
    def reseed_rng(self) -> None:
        """Reseed the independent sampler (the plan itself is deterministic)."""
        self._independent.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """No relative search space: shapes are assigned when the objective asks for one."""
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Nothing to sample jointly (see :meth:`sample_independent`)."""
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
        """Return the assigned depth or width; other parameters go to the independent sampler."""
        if param_name in ("depth", "width") and self._is_shape_distribution(
            param_name, param_distribution
        ):
            claim = trial.system_attrs.get(keys.CLAIM)
            if not claim:
                shape, _stage = self.assign(study, trial._trial_id, trial.number)
                claim = {"shape": [shape.depth, shape.width]}
            value = claim["shape"][0] if param_name == "depth" else claim["shape"][1]
            return int(value) if param_name == "depth" else float(value)
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Record the accuracy constraint, fit the model when sampling ends, stop when done."""
        self._independent.after_trial(study, trial, state, values)
        shape = self._trial_shape(trial)
        if shape is None or study._study_id not in self._checked:
            return  # not a shape trial of a search this process has joined
        storage = study._storage
        value = values[0] if values else None
        if state == TrialState.COMPLETE and value is not None and math.isfinite(value):
            if self.constraints.min_accuracy is not None:
                c = self.constraints.min_accuracy - value
                attrs = trial.system_attrs
                if "constraints:accuracy" not in attrs:
                    storage.set_trial_system_attr(trial._trial_id, "constraints:accuracy", c)
                storage.set_trial_user_attr(trial._trial_id, "constraint_accuracy", c)
        elif state == TrialState.COMPLETE:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason",
                                        f"objective returned {value!r}")
        if shape not in self.space:
            return
        try:
            ctx = self._contexts.get(study._study_id)
            if ctx is None:
                return
            override = TrialRecord(
                trial.number, _STATE.get(state, "fail"), shape,
                value if state == TrialState.COMPLETE else None,
            )
            self._advance(study, ctx, override)
        except Exception:  # never lose the trial's result because of bookkeeping
            _logger.exception("optuna-shape: bookkeeping after trial %d failed", trial.number)

    def _is_shape_distribution(self, name: str, dist: BaseDistribution) -> bool:
        if not isinstance(dist, CategoricalDistribution):
            return False
        values = self.space.depths if name == "depth" else self.space.widths
        return list(dist.choices) == list(values)

    # ------------------------------------------------------------------ assignment -------
    def assign(self, study: optuna.Study, trial_id: int, number: int) -> tuple[Shape, str]:
        """Give trial ``number`` a shape to train, waiting while other workers must finish first.

        Returns:
            ``(shape, stage)`` with stage ``"sample"`` or ``"verify"``.

        Raises:
            optuna.TrialPruned: the search is over (the study is stopped) or the worker should
                yield to a queued retry.
            ValueError: the study contradicts this sampler's settings.
        """
        self._check_study(study)
        ctx = self.context(study, trial_id, number)
        exclude: set[Shape] = set()
        while True:
            records, waiting_queue = self._records(study, exclude_number=number)
            step = self._step(study, ctx, records, exclude)
            if step.kind == "fit":
                self._fit(study, ctx, records)
                continue
            if step.kind == "done":
                self._finish(study, ctx, step, records)
                self._end_trial(study, trial_id, "stopped", f"search finished: {step.reason}")
            if step.kind == "wait":
                if waiting_queue:
                    self._end_trial(study, trial_id, "idle",
                                    "yielding to a queued trial (a retry) so it can run")
                self.reporter.on_wait(step.reason)
                self._fail_stale(study)
                self._warn_if_no_heartbeat(study, step.reason)
                time.sleep(self.poll_interval)
                exclude.clear()
                continue
            assert step.shape is not None and step.stage is not None
            if self._claim(study, trial_id, number, step.shape, step.stage):
                self.reporter.on_assign(number, step.shape, step.stage)
                return step.shape, step.stage
            exclude.add(step.shape)

    def _end_trial(self, study: optuna.Study, trial_id: int, stage: str, reason: str) -> None:
        storage = study._storage
        storage.set_trial_user_attr(trial_id, "stage", stage)
        storage.set_trial_user_attr(trial_id, "reject_reason", reason)
        if stage == "stopped":
            try:
                study.stop()
            except RuntimeError:  # ask-and-tell: nothing to stop
                pass
        raise optuna.TrialPruned(reason)

    def _claim(self, study: optuna.Study, trial_id: int, number: int, shape: Shape,
               stage: str) -> bool:
        claim = {"shape": [shape.depth, shape.width], "stage": stage}
        with self._lock:
            keys.set_trial_system_attr(study, trial_id, keys.CLAIM, claim)
            self._sleep_claim(study)
            for t in study._storage.get_all_trials(
                study._study_id, deepcopy=False,
                states=(TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE),
            ):
                if t.number == number or self._trial_shape(t) != shape:
                    continue
                if t.state == TrialState.COMPLETE:
                    continue  # a finished training of it is fine (verification re-checks it)
                other = t.system_attrs.get(keys.CLAIM)
                if other is None or t.number < number or t.state == TrialState.WAITING:
                    keys.set_trial_system_attr(study, trial_id, keys.CLAIM, None)
                    return False
        return True

    def _sleep_claim(self, study: optuna.Study) -> None:
        delay = self.claim_delay
        if delay is None:
            delay = 0.0 if isinstance(study._storage, optuna.storages.InMemoryStorage) else 0.3
        if delay > 0:
            time.sleep(delay)

    def _warn_if_no_heartbeat(self, study: optuna.Study, reason: str) -> None:
        """A worker that died leaves its trial RUNNING forever unless the storage has heartbeats:
        say so (once a minute) instead of waiting silently."""
        storage = study._storage
        if isinstance(storage, optuna.storages.InMemoryStorage):
            return
        if _heartbeat_enabled(storage):
            return
        now = time.monotonic()
        if now - getattr(self, "_last_warn", -1e9) < 60.0:
            return
        self._last_warn = now
        _logger.warning(
            "optuna-shape: waiting (%s). This storage has no heartbeat, so a trial whose worker "
            "died stays RUNNING forever: use RDBStorage(url, heartbeat_interval=10) (the CLI "
            "does), or mark dead trials failed (optuna_shape.storages.fail_stale_on_start).",
            reason,
        )

    def _fail_stale(self, study: optuna.Study) -> None:
        now = time.monotonic()
        if now - self._last_stale_check < 5.0:
            return
        self._last_stale_check = now
        if _heartbeat_enabled(study._storage):
            optuna.storages.fail_stale_trials(study)

    # ------------------------------------------------------------------ study snapshot ---
    def _trial_shape(self, trial: FrozenTrial) -> Shape | None:
        """The shape a trial trains: its params, fixed params, or its claim."""
        params = trial.params
        if "depth" in params and "width" in params:
            return Shape(int(params["depth"]), float(params["width"]))
        fixed = trial.system_attrs.get("fixed_params") or {}
        if "depth" in fixed and "width" in fixed:
            return Shape(int(fixed["depth"]), float(fixed["width"]))
        claim = trial.system_attrs.get(keys.CLAIM)
        if claim and trial.state in (TrialState.RUNNING, TrialState.WAITING):
            return Shape(int(claim["shape"][0]), float(claim["shape"][1]))
        return None

    def _records(
        self, study: optuna.Study, exclude_number: int | None = None
    ) -> tuple[list[TrialRecord], bool]:
        """Snapshot of the trials that concern a shape, and whether any trial is queued.

        Finished trials never change, so their records are cached per study.
        """
        records: list[TrialRecord] = []
        queue = False
        cache = self._finished.setdefault(study._study_id, {})
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if t.number == exclude_number:
                continue
            if t.number in cache:
                rec = cache[t.number]
            else:
                rec = None
                shape = self._trial_shape(t)
                if shape is not None:
                    value = t.value if t.state == TrialState.COMPLETE else None
                    claim = t.system_attrs.get(keys.CLAIM) or {}
                    rec = TrialRecord(t.number, _STATE[t.state], shape, value,
                                      claim.get("stage"))
                if t.state.is_finished():
                    cache[t.number] = rec
            if t.state == TrialState.WAITING:
                queue = True
            if rec is not None:
                records.append(rec)
        return records, queue

    def _ranking(self, study: optuna.Study) -> list[Shape] | None:
        fit = keys.read_study_json(keys.read_all_study_attrs(study), keys.FIT)
        if fit is None:
            return None
        return [Shape(int(d), float(w)) for d, w in fit["ranking"]]

    def _step(self, study: optuna.Study, ctx: SearchContext, records: list[TrialRecord],
              exclude: set[Shape]) -> Step:
        attrs = keys.read_all_study_attrs(study)
        result = keys.read_study_json(attrs, keys.RESULT)
        if result is not None:  # finished: the stored answer is final
            shape = None if result["shape"] is None else Shape(int(result["shape"][0]),
                                                                float(result["shape"][1]))
            return Step("done", shape, reason=result.get("reason", "finished"))
        fit = keys.read_study_json(attrs, keys.FIT)
        if fit is not None and self.refit and self._missed_since(fit, records):
            self._fit(study, ctx, records, force=True)
            fit = keys.read_study_json(keys.read_all_study_attrs(study), keys.FIT)
        ranking = None if fit is None else [Shape(int(d), float(w)) for d, w in fit["ranking"]]
        return next_step(
            ctx.plan, records, ranking, goal=self.goal,
            min_accuracy=self.constraints.min_accuracy, max_attempts=self.max_attempts,
            exclude=exclude, predictions=_predictions(fit),
        )

    def _missed_since(self, fit: dict[str, Any], records: list[TrialRecord]) -> bool:
        """Whether a training completed since the fit and failed verification (missed the
        accuracy floor or, for the accuracy goal, fell far below its prediction)."""
        known = {Shape(int(d), float(w)) for d, w in fit.get("trained", [])}
        preds = _predictions(fit)
        for shape, st in shape_status(records).items():
            if st.values and shape not in known and shape in self.space:
                mean = st.mean
                if mean is not None and not passes(
                    mean, goal=self.goal, min_accuracy=self.constraints.min_accuracy,
                    prediction=preds.get(shape),
                ):
                    return True
        return False

    def _advance(self, study: optuna.Study, ctx: SearchContext,
                 override: TrialRecord | None = None) -> None:
        """After a trial: fit when the sample stage is complete; finish when verified."""
        records, _ = self._records(study, exclude_number=override.number if override else None)
        if override is not None:
            records.append(override)
        step = self._step(study, ctx, records, set())
        if step.kind == "fit":
            self._fit(study, ctx, records)
            step = self._step(study, ctx, records, set())
        if step.kind == "done":
            self._finish(study, ctx, step, records)
            try:
                study.stop()
            except RuntimeError:
                pass

    # ------------------------------------------------------------------ screening --------
    def context(self, study: optuna.Study, trial_id: int | None = None,
                number: int | None = None) -> SearchContext:
        """Screen the design space (once per study, shared through storage) and plan."""
        sid = study._study_id
        if sid in self._contexts:
            return self._contexts[sid]
        space, cons = self.space, self.constraints
        passed, rejects = size_screen(space, space.shapes, cons.max_size_mb)
        measurements: dict[Shape, dict[str, Any]] = {}
        hw = self.hardware()
        if hw is not None and passed:
            measurements = self._screen(study, hw, passed, trial_id, number)
            passed, more = apply_limits(passed, measurements, cons,
                                        latency=self._needs_latency, energy=self._needs_energy)
            rejects.update(more)
        plan = choose_shapes(passed, self.strategy, self.sampling, self.seed)
        ctx = SearchContext(passed, rejects, measurements, plan, hw,
                            {s: space.size_mb(s) for s in space.shapes})
        self._contexts[sid] = ctx
        self.reporter.on_screened(len(passed), len(space), len(plan))
        if not passed:
            _logger.warning("optuna-shape: no shape of the design space meets the limits")
        return ctx

    def _screen(self, study: optuna.Study, hw: str, shapes: list[Shape],
                trial_id: int | None, number: int | None) -> dict[Shape, dict[str, Any]]:
        h = keys.hardware_hash(hw)
        attrs = keys.read_all_study_attrs(study)
        if keys.screened_key(h) not in attrs:
            self._check_hardware(study, attrs, hw)
            if trial_id is None or number is None:
                raise RuntimeError("screening is not complete and this call cannot screen")
            keys.set_trial_system_attr(study, trial_id, keys.SCREEN_REQUEST, True)
            self._sleep_claim(study)
            while True:
                attrs = keys.read_all_study_attrs(study)
                if keys.screened_key(h) in attrs:
                    break
                asking = [t.number for t in study._storage.get_all_trials(
                    study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
                    if t.system_attrs.get(keys.SCREEN_REQUEST)]
                if not asking or min(asking) >= number:
                    self._measure_all(study, hw, shapes, attrs)
                    attrs = keys.read_all_study_attrs(study)
                    break
                self.reporter.on_wait("another worker is screening the design space")
                self._fail_stale(study)
                time.sleep(self.poll_interval)
        else:
            self._check_hardware(study, attrs, hw)
        out: dict[Shape, dict[str, Any]] = {}
        for s in shapes:
            rec = attrs.get(keys.measurement_key(h, s.key))
            if rec is not None:
                out[s] = rec
        return out

    def _check_hardware(self, study: optuna.Study, attrs: dict[str, Any], hw: str) -> None:
        known = {v for k, v in attrs.items() if k.startswith("osh:hw:")}
        if known and hw not in known:
            listed = "; ".join(sorted(known))
            raise ValueError(
                f"study {study.study_name!r} holds measurements taken on other hardware "
                f"({listed}); this worker measures on {hw!r}. Latency and energy are not "
                "comparable across hardware: run this worker on the same hardware, pass "
                "target_hardware=<one of the keys above> (CLI: --target-hardware) to use those "
                "measurements knowingly, or use a new study."
            )

    def _measure_all(self, study: optuna.Study, hw: str, shapes: list[Shape],
                     attrs: dict[str, Any]) -> None:
        """Measure every shape still missing (latency for all, then energy for survivors)."""
        h = keys.hardware_hash(hw)
        storage, sid = study._storage, study._study_id
        storage.set_study_system_attr(sid, keys.hardware_name_key(h), hw)
        records: dict[Shape, dict[str, Any]] = {}
        for s in shapes:
            rec = attrs.get(keys.measurement_key(h, s.key))
            if rec is not None:
                records[s] = dict(rec)
        total = len(shapes) * (int(self._needs_latency) + int(self._needs_energy))
        done = 0
        for want in ("latency", "energy"):
            if want == "latency" and not self._needs_latency:
                continue
            if want == "energy" and not self._needs_energy:
                continue
            field_name = "latency_ms" if want == "latency" else "energy_j"
            for s in shapes:
                rec = records.setdefault(s, {})
                done += 1
                if field_name in rec or rec.get("error"):
                    continue
                if want == "energy" and self._needs_latency:
                    ok, _ = apply_limits([s], {s: rec}, self.constraints, latency=True,
                                         energy=False)
                    if not ok:
                        continue  # already rejected by latency: no energy run (paper order)
                rec.update(measure_shape(self.space, s, self.measurement,
                                         latency=want == "latency", energy=want == "energy"))
                storage.set_study_system_attr(sid, keys.measurement_key(h, s.key), rec)
                self.reporter.on_screen(done, total, s, rec)
        storage.set_study_system_attr(sid, keys.screened_key(h), True)

    def measure_one(self, study: optuna.Study, shape: Shape) -> dict[str, Any] | None:
        """Measurements of one shape (e.g. a user-enqueued one), measuring it if missing."""
        hw = self.hardware()
        if hw is None:
            return None
        h = keys.hardware_hash(hw)
        attrs = keys.read_all_study_attrs(study)
        self._check_hardware(study, attrs, hw)
        rec = attrs.get(keys.measurement_key(h, shape.key))
        if rec is None:
            study._storage.set_study_system_attr(study._study_id, keys.hardware_name_key(h), hw)
            rec = measure_shape(self.space, shape, self.measurement,
                                latency=self._needs_latency, energy=self._needs_energy)
            study._storage.set_study_system_attr(
                study._study_id, keys.measurement_key(h, shape.key), rec)
        return rec

    # ------------------------------------------------------------------ modelling --------
    def _fit(self, study: optuna.Study, ctx: SearchContext, records: list[TrialRecord],
             force: bool = False) -> None:
        """Fit the accuracy model on every completed training and rank the candidates.

        The first fit happens when the sample stage is complete; with ``refit`` the model is
        fitted again (``force``) whenever a verified shape misses the accuracy floor.
        """
        from optuna_shape.accuracy_model import AccuracyModel

        with self._lock:
            if not force and self._ranking(study) is not None:
                return
            status = shape_status(records)
            trained = {s: st.mean for s, st in status.items() if st.values and s in self.space}
            feasible = ctx.feasible
            summary: dict[str, Any] = {
                "n_train": len(trained),
                "n_feasible": len(feasible),
                "trained": [[s.depth, s.width] for s in sorted(trained)],
                "fits": 1 + int((keys.read_study_json(keys.read_all_study_attrs(study),
                                                      keys.FIT) or {}).get("fits", 0)),
            }
            cands: list[Candidate] = []
            if len(trained) >= 2 and feasible:
                shapes = sorted(trained)
                model = AccuracyModel().fit(shapes, [trained[s] for s in shapes])
                pred, std = model.predict(feasible, return_std=True)
                for s, p, sd in zip(feasible, pred, std, strict=True):
                    m = ctx.measurements.get(s, {})
                    cands.append(Candidate(s, ctx.sizes[s], m.get("latency_ms"),
                                           m.get("energy_j"), float(p), float(sd),
                                           trained.get(s)))
                summary.update(
                    method=getattr(model, "method", type(model).__name__),
                    r2=_finite(getattr(model, "r2_", None)),
                    loo_mae=_finite(getattr(model, "loo_mae_", None)),
                )
            elif len(trained) == 1 and feasible:
                (s, acc), = trained.items()
                m = ctx.measurements.get(s, {})
                if s in feasible:
                    cands.append(Candidate(s, ctx.sizes[s], m.get("latency_ms"),
                                           m.get("energy_j"), acc, 0.0, acc))
                summary["method"] = "single training (no model)"
            ok = complying(cands, self.constraints.min_accuracy)
            ranked = goal_order(ok, self.goal) if self.goal else goal_order(ok, "accuracy")
            summary["shapes"] = [[c.shape.depth, c.shape.width] for c in cands]
            summary["predicted"] = [round(c.predicted, 6) for c in cands]
            summary["std"] = [round(c.std, 6) for c in cands]
            summary["ranking"] = [[c.shape.depth, c.shape.width] for c in ranked]
            keys.write_study_json(study, keys.FIT, summary)
            study._storage.set_study_user_attr(study._study_id, "surrogate", {
                k: summary.get(k) for k in ("method", "n_train", "n_feasible", "r2", "loo_mae")
            })
            study._storage.set_study_user_attr(
                study._study_id, "candidates_top10",
                [f"{c.shape} pred {c.predicted:.4g}±{c.std:.2g}" for c in ranked[:10]],
            )
            self.reporter.on_fit(summary)

    def predict(self, study: optuna.Study, shape: Shape) -> tuple[float, float, str] | None:
        """Predicted accuracy and std of ``shape``: from the stored fit, or a provisional fit on
        the trainings completed so far (at least 3). ``None`` when nothing can be predicted."""
        fit = keys.read_study_json(keys.read_all_study_attrs(study), keys.FIT)
        if fit is not None:
            for (d, w), p, sd in zip(fit["shapes"], fit["predicted"], fit["std"], strict=True):
                if Shape(int(d), float(w)) == shape:
                    return p, sd, f"model fitted on {fit['n_train']} trainings"
        records, _ = self._records(study)
        status = shape_status(records)
        trained = {s: st.mean for s, st in status.items() if st.values and s in self.space}
        if len(trained) < 3:
            return None
        from optuna_shape.accuracy_model import AccuracyModel

        shapes = sorted(trained)
        key = (study._study_id, tuple(shapes), tuple(trained[s] for s in shapes))
        if self._provisional is None or self._provisional[0] != key:
            model = AccuracyModel().fit(shapes, [trained[s] for s in shapes])
            self._provisional = (key, model)
        model = self._provisional[1]
        p, sd = model.predict([shape], return_std=True)
        return float(p[0]), float(sd[0]), f"provisional model on {len(trained)} trainings"

    def _finish(self, study: optuna.Study, ctx: SearchContext, step: Step,
                records: list[TrialRecord]) -> None:
        attrs = keys.read_all_study_attrs(study)
        if keys.read_study_json(attrs, keys.RESULT) is not None:
            return
        status = shape_status(records)
        trainings = sum(len(st.values) + st.failures for st in status.values())
        shape = step.shape
        result: dict[str, Any] = {
            "shape": None if shape is None else [shape.depth, shape.width],
            "reason": step.reason,
            "goal": self.goal,
            "accuracy": None if shape is None else status[shape].mean,
            "trainings": trainings,
            "n_feasible": len(ctx.feasible),
            "n_space": len(self.space),
            "n_planned": len(ctx.plan),
        }
        keys.write_study_json(study, keys.RESULT, result)
        study._storage.set_study_user_attr(
            study._study_id, "result",
            f"{shape if shape is not None else 'none'} — {step.reason}; "
            f"{trainings} trainings of {len(ctx.feasible)} feasible shapes",
        )
        self.reporter.on_done(result)

    # ------------------------------------------------------------------ per-trial record -
    def record_trial(self, trial: optuna.Trial, shape: Shape) -> None:
        """Write what the dashboard shows about a trial, and prune it if ``shape`` breaks a limit.

        Called by :func:`optuna_shape.suggest_shape` after the shape is known.

        Raises:
            optuna.TrialPruned: the shape exceeds a size, latency or energy limit (or could not
                be measured); the reason is in the trial's ``reject_reason`` user attribute.
        """
        study = trial.study
        self._check_study(study)
        claim = keys.trial_system_attrs(trial).get(keys.CLAIM) or {}
        stage = claim.get("stage") or "user"
        size = self.space.size_mb(shape)
        trial.set_user_attr("stage", stage)
        trial.set_user_attr("params", self.space.param_count(shape))
        trial.set_user_attr("size_mb", round(size, 6))
        ctx = self._contexts.get(study._study_id)
        reason: str | None = None
        measurement: dict[str, Any] | None = None
        if ctx is not None and shape in ctx.measurements:
            measurement = ctx.measurements[shape]
        if shape not in self.space:
            reason = f"shape {shape} is not in the design space"
        elif self.constraints.max_size_mb is not None and size > self.constraints.max_size_mb:
            reason = f"size {size:.4g} MB > {self.constraints.max_size_mb:g} MB"
        elif measurement is None and self.hardware() is not None:
            measurement = self.measure_one(study, shape)
        if measurement:
            if measurement.get("latency_ms") is not None:
                trial.set_user_attr("latency_ms", measurement["latency_ms"])
            if measurement.get("energy_j") is not None:
                trial.set_user_attr("energy_j", measurement["energy_j"])
        for name, value in constraint_values(self.constraints, size, measurement).items():
            trial.set_constraint(name, value)
            trial.set_user_attr(f"constraint_{name}", value)
        if reason is None and measurement is not None and shape in self.space:
            ok, rej = apply_limits([shape], {shape: measurement}, self.constraints,
                                   latency=self._needs_latency, energy=self._needs_energy)
            if not ok:
                reason = rej[shape]
        if reason is not None:
            trial.set_user_attr("reject_reason", reason)
            raise optuna.TrialPruned(f"shape {shape} rejected before training: {reason}")
        if stage == "user":
            self.reporter.on_assign(trial.number, shape, stage)
        try:
            pred = self.predict(study, shape)
        except Exception:  # a prediction is informative only
            pred = None
        if pred is not None:
            trial.set_user_attr("predicted_accuracy", round(pred[0], 6))
            trial.set_user_attr("predicted_std", round(pred[1], 6))
            trial.set_user_attr("prediction_source", pred[2])


def _heartbeat_enabled(storage: Any) -> bool:
    """Whether ``storage`` has heartbeats (so trials of dead workers can be failed).

    Fix: ``study._storage`` of an RDB study is Optuna's ``_CachedStorage`` wrapper, not an
    ``RDBStorage``, so an ``isinstance(storage, RDBStorage)`` test was always false: waiting
    workers never failed the trial of a SIGKILLed worker and waited for it forever. Optuna's own
    helper understands the wrapper.
    """
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def _predictions(fit: dict[str, Any] | None) -> dict[Shape, tuple[float, float]]:
    if not fit:
        return {}
    return {
        Shape(int(d), float(w)): (float(p), float(sd))
        for (d, w), p, sd in zip(fit["shapes"], fit["predicted"], fit["std"], strict=True)
    }


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
