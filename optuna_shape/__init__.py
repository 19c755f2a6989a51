"""optuna-shape: pick a network's depth and width under size, latency, energy and accuracy limits.

An Optuna extension built on Shape_DNN (Mammadli, Wolf & Jannesari, "The Art of Getting Deep
Neural Networks in Shape", ACM TACO 2019): screen the design space before training, then search
the feasible shapes with few trainings — a noise-aware sequential search by default
(``policy=osh.Adaptive()``), or the paper's sample → fit → verify (``policy=osh.Paper()``).

Names are imported on first use, so ``import optuna_shape`` loads neither torch nor
scikit-learn.

Example:
    >>> import optuna, optuna_shape as osh
    >>> space = osh.ShapeSpace("wrn", depth=(10, 22, 6), width=[0.5, 1.0], in_channels=1,
    ...                        num_classes=10, image_size=8)
    >>> space.size_mb(osh.Shape(10, 0.5)) > 0
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AccuracyModel": "optuna_shape.models.accuracy_model",
    "Constraints": "optuna_shape.space.constraints",
    "ShapeSpace": "optuna_shape.space.design_space",
    "Family": "optuna_shape.families",
    "WideResNet": "optuna_shape.families",
    "get_family": "optuna_shape.families",
    "list_families": "optuna_shape.families",
    "register_family": "optuna_shape.families",
    "SearchReporter": "optuna_shape.sampler.progress",
    "ResultRow": "optuna_shape.reporting.results",
    "SearchSummary": "optuna_shape.reporting.results",
    "best_shape": "optuna_shape.reporting.results",
    "answer_for": "optuna_shape.reporting.limits",
    "frontier": "optuna_shape.reporting.limits",
    "FrontRow": "optuna_shape.reporting.limits",
    "LimitAnswer": "optuna_shape.sampler.requery",
    "is_finished": "optuna_shape.reporting.results",
    "result_table": "optuna_shape.reporting.results",
    "search_summary": "optuna_shape.reporting.results",
    "ShapePruner": "optuna_shape.sampler.pruner",
    "Adaptive": "optuna_shape.policy",
    "Paper": "optuna_shape.policy",
    "SearchStatus": "optuna_shape.policy",
    "ShapeSampler": "optuna_shape.sampler",
    "optimize": "optuna_shape.sampler",
    "MeasurementSettings": "optuna_shape.measurement.screening",
    "Shape": "optuna_shape.space.shape",
    "Variant": "optuna_shape.space.shape",
    "training_index": "optuna_shape.store",
    "copy_trainings": "optuna_shape.store",
    "suggest_shape": "optuna_shape.sampler.suggest",
}

__all__ = [
    "AccuracyModel",
    "Adaptive",
    "Constraints",
    "Family",
    "FrontRow",
    "LimitAnswer",
    "MeasurementSettings",
    "Paper",
    "ResultRow",
    "SearchReporter",
    "SearchStatus",
    "SearchSummary",
    "Shape",
    "ShapePruner",
    "ShapeSampler",
    "ShapeSpace",
    "Variant",
    "WideResNet",
    "__version__",
    "answer_for",
    "best_shape",
    "copy_trainings",
    "frontier",
    "get_family",
    "is_finished",
    "list_families",
    "optimize",
    "register_family",
    "result_table",
    "search_summary",
    "suggest_shape",
    "training_index",
]

if TYPE_CHECKING:
    from optuna_shape.families import (
        Family,
        WideResNet,
        get_family,
        list_families,
        register_family,
    )
    from optuna_shape.measurement.screening import MeasurementSettings
    from optuna_shape.models.accuracy_model import AccuracyModel
    from optuna_shape.policy import Adaptive, Paper, SearchStatus
    from optuna_shape.reporting.limits import FrontRow, answer_for, frontier
    from optuna_shape.reporting.results import (
        ResultRow,
        SearchSummary,
        best_shape,
        is_finished,
        result_table,
        search_summary,
    )
    from optuna_shape.sampler import ShapeSampler, optimize
    from optuna_shape.sampler.progress import SearchReporter
    from optuna_shape.sampler.pruner import ShapePruner
    from optuna_shape.sampler.requery import LimitAnswer
    from optuna_shape.sampler.suggest import suggest_shape
    from optuna_shape.space.constraints import Constraints
    from optuna_shape.space.design_space import ShapeSpace
    from optuna_shape.space.shape import Shape, Variant
    from optuna_shape.store import copy_trainings, training_index


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optuna_shape' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
