"""``ShapePruner``: Optuna's pruner interface for deciding how far each training of a shape
search goes.

The rule itself is pure (:func:`optuna_shape.policy.fidelity.keep_training`); this module reads
what it needs from the study (the sampler's screened problem and the study snapshot) and
records why it stopped a training.
"""

from __future__ import annotations

import warnings
from collections import Counter

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from optuna_shape import store as st
from optuna_shape.policy.fidelity import Fidelity, keep_training

__all__ = ["ShapePruner"]


class ShapePruner(BasePruner):
    """Stop a training once the rest of it is worth less than its compute.

    Use it with a :class:`~optuna_shape.ShapeSampler` study whose objective reports the
    selection accuracy after every epoch (``trial.report(accuracy, epoch)``) and asks
    ``trial.should_prune()``; the built-in objective does both and consults a ``ShapePruner``
    of its own when the study has another pruner. After epoch ``k`` of ``E`` a learning-curve
    model shared across shapes forecasts the final accuracy, and the training goes on while
    the value of its remaining epochs per unit of compute is at least that of starting another
    shape, or while it may still change the answer enough to stand in the way of a confident
    stop (:mod:`optuna_shape.policy.fidelity`).

    A stopped trial ends PRUNED with user attributes ``prune_reason``, ``projected_accuracy``,
    ``projected_std`` and ``pruned_epoch``; the sampler takes its forecast as an observation of
    the shape with the forecast's extra uncertainty, and counts it as one training towards
    ``max_trainings`` (a compute budget charges only the epochs it ran). It is never the
    answer: an answer is always measured by full trainings.

    The pruner stops nothing in a ``mode="paper"`` search, in a search over precisions, in a
    study whose sampler is not a :class:`~optuna_shape.ShapeSampler`, or after the search has
    stopped.

    Args:
        confidence: no longer used (the rule compares value per compute); accepted with a
            ``DeprecationWarning`` so that existing code keeps working.

    Raises:
        ValueError: on a bad argument, naming it.

    Example:
        >>> import optuna, optuna_shape as osh
        >>> space = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.5, 1.0], in_channels=1,
        ...                        num_classes=10, image_size=8)
        >>> study = optuna.create_study(direction="maximize", pruner=osh.ShapePruner(),
        ...     sampler=osh.ShapeSampler(space, osh.Constraints(min_accuracy=95.0), goal="size"))
    """

    def __init__(self, confidence: float | None = None) -> None:
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or \
                    not 0 < confidence < 1:
                raise ValueError(f"confidence must be a probability strictly between 0 and 1 "
                                 f"or None, got confidence={confidence!r}")
            warnings.warn("ShapePruner(confidence=...) is no longer used: a training goes on "
                          "while its remaining epochs are worth their compute",
                          DeprecationWarning, stacklevel=2)
        self.last: Fidelity | None = None
        """The verdict of the latest :meth:`prune` call that judged a training."""

    def __repr__(self) -> str:
        return "ShapePruner()"

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether to stop ``trial`` now (Optuna calls this from ``trial.should_prune()``)."""
        from optuna_shape.sampler import ShapeSampler
        from optuna_shape.sampler.snapshot import read_snapshot

        sampler = study.sampler
        step = trial.last_step
        if not isinstance(sampler, ShapeSampler) or step is None or \
                sampler.settings.mode != "adaptive" or sampler.precision_search:
            return False
        me = st.decode_trial(trial)
        if not me.is_training or me.shape is None or len(me.curve) != step:
            return False
        snap = read_snapshot(study, sampler.trial_cache)
        if snap.result is not None:
            return False
        problem = sampler.problem(study)
        if problem is None:
            return False
        evidence = snap.evidence()
        epochs = _planned_epochs(trial, [t.curve for t in evidence.trainings if t.curve])
        if epochs is None:
            return False
        v = keep_training(problem, evidence, sampler.settings, me.shape, me.curve, epochs)
        self.last = v
        if not v.stop:
            return False
        assert v.forecast is not None
        st.set_trial_user_attrs(study, st.trial_id(trial), {
            st.PRUNE_REASON: v.reason,
            st.PROJECTED_ACCURACY: round(v.forecast.mean, 6),
            st.PROJECTED_STD: round(v.forecast.std, 6),
            st.PRUNED_EPOCH: step,
        })
        return True


def _planned_epochs(trial: FrozenTrial, curves: list[tuple[float, ...]]) -> int | None:
    """The trial's planned epochs (user attribute ``planned_epochs``), else the most common
    length of the finished curves."""
    planned = trial.user_attrs.get(st.PLANNED_EPOCHS)
    if isinstance(planned, int) and not isinstance(planned, bool) and planned > 0:
        return planned
    if not curves:
        return None
    return Counter(len(c) for c in curves).most_common(1)[0][0]
