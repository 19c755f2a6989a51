"""``suggest_shape``: the one call an objective makes to get the shape it should train."""

from __future__ import annotations

import optuna

from optuna_shape import store as st
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.shape import Shape

__all__ = ["suggest_shape"]


def suggest_shape(trial: optuna.Trial, space: ShapeSpace | None = None) -> Shape:
    """Suggest the shape this trial trains; records params ``"depth"`` and ``"width"``.

    With a :class:`~optuna_shape.ShapeSampler`, the shape is the one the search queued for this
    trial, and the call also acts as the pruning callback of screening: a shape that breaks a
    size, latency or energy limit (for instance one enqueued by hand) ends the trial as PRUNED
    before any training, with the reason in its ``reject_reason`` user attribute. A trial that
    does not train ends as PRUNED with its ``stage`` user attribute saying why: ``plan`` (it
    queued the next trainings), ``duplicate`` (another trial holds its slot), ``screen``, or
    ``stopped`` (the search is over; the study is stopped too).

    With any other sampler (TPE, random, grid, …), or on an ``optuna.trial.FixedTrial``, it is
    a plain pair of categorical suggestions, so the same objective can be used to compare
    samplers or be tried on one shape.

    Args:
        trial: the Optuna trial.
        space: the design space; defaults to the ShapeSampler's. It must equal the sampler's.

    Raises:
        ValueError: ``space`` differs from the sampler's, or no space is known.
        optuna.TrialPruned: see above.
    """
    from optuna_shape.sampler import ShapeSampler

    sampler = getattr(getattr(trial, "study", None), "sampler", None)  # FixedTrial: none
    osh = sampler if isinstance(sampler, ShapeSampler) else None
    if space is None:
        if osh is None:
            raise ValueError("suggest_shape needs a space when the study's sampler is not a "
                             "ShapeSampler")
        space = osh.space
    elif osh is not None and space != osh.space:
        raise ValueError(
            f"suggest_shape got a different design space than the study's ShapeSampler: "
            f"{space!r} vs {osh.space!r}"
        )
    stage = None
    if osh is not None:
        _, stage = osh.resolve(trial.study, st.trial_id(trial), trial.number)
    depth = trial.suggest_categorical("depth", space.depths)
    width = trial.suggest_categorical("width", space.widths)
    shape = Shape(int(depth), float(width))
    if osh is not None:
        assert stage is not None
        osh.record_trial(trial, shape, stage)
    else:
        trial.set_user_attr("params", space.param_count(shape))
        trial.set_user_attr("size_mb", round(space.size_mb(shape), 6))
    return shape
