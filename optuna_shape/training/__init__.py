"""Training and data for the default objective: datasets, the WRN recipe, the Optuna objective.

Example:
    >>> from optuna_shape.training import TrainConfig, load_dataset, train
    >>> splits = load_dataset("digits")
    >>> splits.info.num_classes
    10
"""

from optuna_shape.training.datasets import (
    DATASETS,
    DEFAULT_EPOCHS,
    TABULAR_DATASETS,
    DatasetInfo,
    ImageTensorDataset,
    Splits,
    default_epochs,
    load_dataset,
    stratified_split,
)
from optuna_shape.training.objective import (
    ProgressCallback,
    ShapeObjective,
    cached_dataset,
    make_objective,
)
from optuna_shape.training.trainer import (
    TrainConfig,
    TrainResult,
    calibration_batches,
    evaluate,
    evaluate_precisions,
    train,
)

__all__ = [
    "DATASETS",
    "DEFAULT_EPOCHS",
    "DatasetInfo",
    "ImageTensorDataset",
    "ProgressCallback",
    "ShapeObjective",
    "Splits",
    "TABULAR_DATASETS",
    "TrainConfig",
    "TrainResult",
    "cached_dataset",
    "calibration_batches",
    "default_epochs",
    "evaluate",
    "evaluate_precisions",
    "load_dataset",
    "make_objective",
    "stratified_split",
    "train",
]
