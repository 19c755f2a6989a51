"""optuna-shape: pick a network's depth and width under size, latency, energy and accuracy limits.

An Optuna extension implementing Shape_DNN (Mammadli, Wolf & Jannesari, "The Art of Getting Deep
Neural Networks in Shape", ACM TACO 2019): screen the design space before training, train an
interval sample of the feasible shapes, predict the rest with an inverse-polynomial accuracy
model, and verify the goal-ordered candidates until one meets the accuracy floor.

Example:
    >>> import optuna, optuna_shape as osh
    >>> space = osh.ShapeSpace("wrn", depth=(10, 22, 6), width=[0.5, 1.0], in_channels=1,
    ...                        num_classes=10, image_size=8)
    >>> space.size_mb(osh.Shape(10, 0.5)) > 0
    True
"""

from optuna_shape.accuracy_model import AccuracyModel
from optuna_shape.constraints import Constraints
from optuna_shape.design_space import ShapeSpace
from optuna_shape.families import Family, WideResNet, get_family, list_families, register_family
from optuna_shape.progress import SearchReporter
from optuna_shape.results import (
    ResultRow,
    SearchSummary,
    best_shape,
    is_finished,
    result_table,
    search_summary,
)
from optuna_shape.sampler import ShapeSampler
from optuna_shape.screening import MeasurementSettings
from optuna_shape.shape import Shape
from optuna_shape.suggest import suggest_shape

__version__ = "0.1.0"

__all__ = [
    "AccuracyModel",
    "Constraints",
    "Family",
    "MeasurementSettings",
    "ResultRow",
    "SearchReporter",
    "SearchSummary",
    "Shape",
    "ShapeSampler",
    "ShapeSpace",
    "WideResNet",
    "__version__",
    "best_shape",
    "get_family",
    "is_finished",
    "list_families",
    "register_family",
    "result_table",
    "search_summary",
    "suggest_shape",
]
