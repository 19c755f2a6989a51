"""``ShapePruner``: Optuna's pruner interface for stopping doomed trainings of a shape search.

The rule itself is pure (:mod:`optuna_shape.early_stopping`); this module reads what it needs
from the study (through :mod:`optuna_shape.storage`) and records why it stopped a training.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from optuna_shape import storage as st
from optuna_shape.early_stopping import MIN_CURVES, threshold, verdict

__all__ = ["ShapePruner"]


class ShapePruner(BasePruner):
    """Stop a training whose learning curve shows it cannot reach the floor (or beat the answer).

    Use it with a :class:`~optuna_shape.ShapeSampler` study whose objective reports the
    selection accuracy after every epoch (``trial.report(accuracy, epoch)``) and asks
    ``trial.should_prune()`` — the default objective (``ShapeObjective``) does both. After epoch
    ``k`` of ``E`` the final accuracy is projected from the study's completed ``E``-epoch curves
    and the training is stopped when P(final ≥ threshold) < ``1 − confidence``
    (:func:`optuna_shape.early_stopping.verdict`): the threshold is the accuracy floor for the
    goals ``"size"``, ``"latency"``, ``"energy"`` (and no goal), and for ``"accuracy"`` the
    current answer's accuracy: the highest posterior mean of a trained shape (at least the
    floor).

    A stopped trial ends PRUNED with user attributes ``prune_reason``, ``projected_accuracy``,
    ``projected_std`` and ``pruned_epoch``; the sampler reads it as a *censored* training (the
    shape's accuracy is probably below the projection), not as a failure.

    The pruner never stops a training of a ``mode="paper"`` search (the paper's algorithm
    verifies every candidate with a full training), of a study without a ``ShapeSampler``
    configuration, or after the search has stopped.

    Args:
        confidence: how sure the curve must make the pruner that the training cannot reach the
            threshold, in (0, 1); ``None`` (default) uses the search's ``confidence``.
        min_epochs: first epoch at which a training may be stopped; ``None``: ``max(2,
            ceil(0.3 E))``.
        min_curves: completed curves of the same length needed before anything is stopped
            (at least 3).

    Raises:
        ValueError: on a bad argument, naming it.

    Example:
        >>> import optuna, optuna_shape as osh
        >>> space = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.5, 1.0], in_channels=1,
        ...                        num_classes=10, image_size=8)
        >>> study = optuna.create_study(direction="maximize", pruner=osh.ShapePruner(),
        ...     sampler=osh.ShapeSampler(space, osh.Constraints(min_accuracy=95.0), goal="size"))
    """

    def __init__(self, confidence: float | None = None, *, min_epochs: int | None = None,
                 min_curves: int = MIN_CURVES) -> None:
        if confidence is not None and (isinstance(confidence, bool) or not isinstance(
                confidence, (int, float)) or not 0 < confidence < 1):
            raise ValueError(f"confidence must be a probability strictly between 0 and 1 or "
                             f"None, got confidence={confidence!r}")
        if min_epochs is not None and (isinstance(min_epochs, bool) or not isinstance(
                min_epochs, int) or min_epochs < 1):
            raise ValueError(f"min_epochs must be a positive int or None, got "
                             f"min_epochs={min_epochs!r}")
        if isinstance(min_curves, bool) or not isinstance(min_curves, int) or min_curves < 3:
            raise ValueError(f"min_curves must be an int >= 3, got min_curves={min_curves!r}")
        self.confidence = confidence
        self.min_epochs = min_epochs
        self.min_curves = min_curves
        self._cache: dict[tuple[int, tuple], float | None] = {}

    def _threshold(self, study: optuna.Study, config: dict[str, Any],
                   measured: list[tuple[Any, float]]) -> float | None:
        """:func:`~optuna_shape.early_stopping.threshold` of the study's goal, floor and
        trainings (accuracy goal: from the posterior over the design space), cached until a
        training finishes."""
        goal = config.get("goal")
        floor = (config.get("constraints") or {}).get("min_accuracy")
        if goal != "accuracy":
            return threshold(goal, floor, measured)
        key = (study._study_id, tuple(sorted((tuple(s), v) for s, v in measured)))
        if key not in self._cache:
            from optuna_shape.design_space import ShapeSpace

            try:
                domain = ShapeSpace.from_dict(config["space"]).shapes
            except (KeyError, TypeError, ValueError):
                domain = None
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = threshold(goal, floor, measured, domain)
        return self._cache[key]

    def __repr__(self) -> str:
        return (f"ShapePruner(confidence={self.confidence!r}, min_epochs={self.min_epochs!r}, "
                f"min_curves={self.min_curves!r})")

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether to stop ``trial`` now (Optuna calls this from ``trial.should_prune()``)."""
        step = trial.last_step
        if step is None:
            return False
        attrs = st.study_attrs(study)
        config = st.read_config(attrs)
        if config is None or config.get("mode") != "adaptive" or st.read_result(attrs):
            return False
        me = st.decode_trial(trial)
        if not me.is_training:
            return False
        partial = _curve(trial.intermediate_values, step)
        if partial is None:
            return False
        others = [t for t in st.curves(study) if t.number != trial.number]
        references, measured = [], []
        for t in others:
            if t.state != TrialState.COMPLETE or t.value is None or not math.isfinite(t.value):
                continue
            rec = st.decode_trial(t)
            if not rec.is_training:
                continue
            measured.append((rec.shape, float(t.value)))
            curve = _curve(t.intermediate_values, t.last_step)
            if curve is not None:
                references.append((curve, float(t.value)))
        epochs = _planned_epochs(trial, references)
        if epochs is None:
            return False
        goal = config.get("goal")
        confidence = self.confidence if self.confidence is not None else float(
            config.get("confidence", 0.9))
        v = verdict(partial, references, epochs, self._threshold(study, config, measured),
                    confidence, min_epochs=self.min_epochs, min_curves=self.min_curves)
        if not v.stop:
            return False
        assert v.projection is not None
        what = "reach the floor" if goal != "accuracy" else "beat the current answer"
        st.set_trial_user_attrs(study, trial._trial_id, {
            st.PRUNE_REASON: f"cannot {what}: {v.reason}",
            st.PROJECTED_ACCURACY: round(v.projection.mean, 6),
            st.PROJECTED_STD: round(v.projection.std, 6),
            st.PRUNED_EPOCH: step,
        })
        return True


def _curve(values: dict[int, float], last: int | None) -> list[float] | None:
    """Accuracies at steps 1..last, or ``None`` when a step is missing (not an epoch curve)."""
    if last is None or last < 1 or any(k not in values for k in range(1, last + 1)):
        return None
    return [float(values[k]) for k in range(1, last + 1)]


def _planned_epochs(trial: FrozenTrial, references: list[tuple[list[float], Any]]
                    ) -> int | None:
    """The trial's planned epochs (user attribute ``planned_epochs``), else the most common
    length of the completed curves."""
    planned = trial.user_attrs.get(st.PLANNED_EPOCHS)
    if isinstance(planned, int) and not isinstance(planned, bool) and planned > 0:
        return planned
    if not references:
        return None
    return Counter(len(c) for c, _ in references).most_common(1)[0][0]
