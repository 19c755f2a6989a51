"""The default Optuna objective: suggest a shape, build it, train it, return its accuracy.

:class:`ShapeObjective` is what ``optuna-shape search`` optimises. Per trial it

1. calls :func:`optuna_shape.suggest_shape` (records params ``depth`` and ``width``),
2. seeds ``torch`` with the base seed and builds ``space.build(shape)``,
3. trains with :func:`~optuna_shape.training.train`, calling ``trial.report(accuracy, epoch)``
   after every epoch (learning curves in optuna-dashboard) and asking a
   :class:`~optuna_shape.ShapePruner` whether the rest of the training is worth its compute —
   the study's own when it has one, else one of the objective's (``early_stopping=False``
   trains every shape to the end): when it says stop, the training stops and the trial ends
   PRUNED (``optuna.TrialPruned``) with user attribute ``epochs`` = epochs run. Other pruners
   are not asked — Optuna's default ``MedianPruner`` among them: they compare different shapes
   at equal epochs, so they would stop the small shapes a size goal looks for,
4. stores user attributes ``val_accuracy``, ``test_accuracy``, ``train_seconds``, ``epochs``,
   ``params``, ``best_epoch``, ``dataset`` and ``select_on``, and returns the selection accuracy
   in percent (validation by default, test with ``TrainConfig(select_on="test")``),
5. when the space has precisions other than fp32 (``ShapeSpace(precision=...)``), converts the
   trained fp32 network to each of them after training (never retraining; int8 calibrated on
   a few training batches, see :func:`~optuna_shape.training.evaluate_precisions`) and stores
   ``accuracy_by_precision`` and, with a test split, ``test_accuracy_by_precision``: dicts
   ``{precision: accuracy in percent}`` whose ``"fp32"`` entries are the trained network's
   own accuracies (the returned value for the selection split). A precision the network cannot
   be converted to is left out and its reason stored in ``precision_errors``. The trial's value
   stays the fp32 selection accuracy.

The accuracies stored only for reading (``val_accuracy``, ``test_accuracy`` and
``test_accuracy_by_precision``) are rounded to :data:`READABLE_DIGITS` significant digits, as
the search's own attributes are; what the search computes with — the returned value, the
reported learning curve and ``accuracy_by_precision`` — is stored exactly.

The data split always uses the base seed (``seed``). The model's initialisation and the training
use it too for a shape's first training, and ``seed + k − 1`` for its k-th (the search's slot
``<shape>#<k>``; stored as user attribute ``seed``): a result depends on neither the trial
order nor the worker that trains it (on the CPU the same training gives the same number), and
a repeat the search asks for measures seed-to-seed noise instead of reproducing the first
training's number. A retry after a failed attempt at the same training adds
:data:`RETRY_SEED_STRIDE` per earlier failure (a diverged training would diverge again); a
retry after a lost or interrupted one keeps the seed.

A diverged training (NaN/inf loss) stores ``fail_reason`` and raises ``RuntimeError``, so the
trial is FAIL and the study goes on. A training stopped by Ctrl-C stores
``interrupted`` before the interrupt goes on: the search retries it when it resumes instead of
counting it as the shape's failure. The dataset is loaded once per process and cached.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import torch

from optuna_shape.store import (
    PLANNED_EPOCHS,
    TRAIN_SECONDS,
    frozen_trial,
    mark_interrupted,
    training_attempt,
)
from optuna_shape.training.datasets import Splits, load_dataset
from optuna_shape.training.trainer import TrainConfig, TrainResult, evaluate_precisions, train

if TYPE_CHECKING:  # pragma: no cover
    from optuna_shape.sampler.pruner import ShapePruner
    from optuna_shape.space.design_space import ShapeSpace
    from optuna_shape.space.shape import Shape

__all__ = ["ProgressCallback", "ShapeObjective", "cached_dataset", "make_objective"]

READABLE_DIGITS = 4
"""Significant digits of the accuracies stored for reading (``val_accuracy``, ``test_accuracy``,
``test_accuracy_by_precision``): 59.05, as optuna-dashboard shows ``size_mb`` and the
constraints."""

ProgressCallback = Callable[["Shape", int, int, float], None]
"""``progress(shape, epoch, epochs, accuracy)``: called with ``epoch=0`` and NaN accuracy when a
training starts, then after every epoch (``epoch`` from 1 to ``epochs``, accuracy in percent)."""

_CACHE: dict[tuple[Any, ...], Splits] = {}
_CACHE_LOCK = threading.Lock()


def cached_dataset(
    name: str,
    *,
    data_dir: str | Path = "./data",
    download: bool = False,
    seed: int = 0,
    val_fraction: float | None = None,
    subset: int | None = None,
) -> Splits:
    """:func:`~optuna_shape.training.load_dataset`, loaded once per process per argument set.

    Example:
        >>> cached_dataset("digits") is cached_dataset("digits")
        True
    """
    key = (name.lower() if isinstance(name, str) else name, str(Path(data_dir).expanduser()),
           seed, val_fraction, subset)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_dataset(name, data_dir=data_dir, download=download, seed=seed,
                                       val_fraction=val_fraction, subset=subset)
        return _CACHE[key]


RETRY_SEED_STRIDE = 1000
"""Added to the seed for each earlier failed attempt at the same training, so a retry after a
diverged training starts from another initialisation (repeats use offsets below it)."""


def _shape_pruner(trial: optuna.Trial, own: ShapePruner | None) -> ShapePruner | None:
    """The :class:`~optuna_shape.ShapePruner` that decides how far the trial's training goes:
    the study's, else ``own`` (``None``: every training runs to the end). A fixed trial has
    no study and is never stopped."""
    from optuna_shape.sampler.pruner import ShapePruner

    study = getattr(trial, "study", None)
    if study is None or own is None:
        return None
    pruner = getattr(study, "pruner", None)
    return pruner if isinstance(pruner, ShapePruner) else own


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text
                                               or "can't allocate memory" in text)


class ShapeObjective:
    """Picklable Optuna objective that trains the suggested shape on a dataset.

    Args:
        space: the :class:`~optuna_shape.ShapeSpace`; its ``in_channels`` and ``num_classes``
            must match the dataset (for a feature-vector family such as ``"mlp"``,
            ``in_channels`` is the number of features, images flattened:
            :meth:`~optuna_shape.training.DatasetInfo.space_inputs`).
        dataset: dataset name for :func:`~optuna_shape.training.load_dataset` (``"digits"``,
            ``"mnist"``, ``"cifar10"``, ``"cifar100"``, ``"imagenet32"``, or a tabular set:
            ``"breast_cancer"``, ``"wine"``, ``"iris"``).
        config: training recipe; default ``TrainConfig()`` (dataset's default epochs, CPU).
        data_dir: where the dataset files are (not used for digits).
        download: let torchvision download MNIST / CIFAR.
        seed: base seed (overrides ``config.seed``; ``None`` uses ``config.seed``): the data
            split of every trial, the initialisation and training of a shape's first training;
            its k-th training uses ``seed + k − 1``.
        progress: optional :data:`ProgressCallback` (e.g. a rich progress bar).
        subset: cap every split at this many examples (quick runs).
        val_fraction: validation share, see :func:`~optuna_shape.training.load_dataset`.
        early_stopping: let the search decide how far each training goes (a
            :class:`~optuna_shape.ShapePruner`, the study's or the objective's own); ``False``:
            every training runs all its epochs.

    Raises:
        ValueError: at the first call, when the space's channels or classes do not match the
            dataset.

    Example:
        >>> import optuna, optuna_shape as osh
        >>> space = osh.ShapeSpace("wrn", depth=[10], width=[0.25], in_channels=1,
        ...                        num_classes=10, image_size=8)
        >>> objective = ShapeObjective(space, "digits", config=TrainConfig(epochs=1))
        >>> study = optuna.create_study(direction="maximize")
        >>> study.optimize(objective, n_trials=1)
        >>> sorted(study.trials[0].params)
        ['depth', 'width']
    """

    def __init__(
        self,
        space: ShapeSpace,
        dataset: str = "digits",
        *,
        config: TrainConfig | None = None,
        data_dir: str | Path = "./data",
        download: bool = False,
        seed: int | None = 0,
        progress: ProgressCallback | None = None,
        subset: int | None = None,
        val_fraction: float | None = None,
        early_stopping: bool = True,
    ) -> None:
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if seed is not None:
            config = config.replace(seed=seed)
        self.space = space
        self.dataset = dataset
        self.config = config
        self.data_dir = data_dir
        self.download = download
        self.progress = progress
        self.subset = subset
        self.val_fraction = val_fraction
        self.early_stopping = bool(early_stopping)

    def __getstate__(self) -> dict[str, Any]:
        # The space travels as its JSON-able description (its family is looked up by name in the
        # registry on the other side), so objectives pickle even when a family's builder is a
        # local function.
        state = dict(self.__dict__)
        to_dict = getattr(self.space, "to_dict", None)
        if to_dict is not None:
            state["space"] = ("ShapeSpace.to_dict", to_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        space = state.get("space")
        if isinstance(space, tuple) and len(space) == 2 and space[0] == "ShapeSpace.to_dict":
            from optuna_shape.space.design_space import ShapeSpace

            state = {**state, "space": ShapeSpace.from_dict(space[1])}
        self.__dict__.update(state)

    @property
    def seed(self) -> int:
        """The base seed: the data split, and a shape's first training."""
        return self.config.seed

    def splits(self) -> Splits:
        """The dataset (cached per process), checked against the design space."""
        splits = cached_dataset(self.dataset, data_dir=self.data_dir, download=self.download,
                                seed=self.config.seed, val_fraction=self.val_fraction,
                                subset=self.subset)
        info = splits.info
        wanted = info.space_inputs(self.space.family)  # ValueError: tabular data, image family
        for label in ("in_channels", "num_classes"):
            mine, theirs = getattr(self.space, label), wanted[label]
            if mine != theirs:
                raise ValueError(
                    f"the design space has {label}={mine} but dataset {info.name!r} needs "
                    f"{label}={theirs} for family {self.space.family.name!r}; build the "
                    f"ShapeSpace with {label}={theirs}"
                )
        return splits

    def __call__(self, trial: optuna.Trial) -> float:
        """Train the shape the trial suggests; return its selection accuracy in percent.

        Raises:
            RuntimeError: the training diverged (loss NaN/inf) or ran out of memory; the reason
                is stored first as user attribute ``fail_reason``.
        """
        from optuna_shape import suggest_shape

        splits = self.splits()
        shape = suggest_shape(trial, self.space)
        config = self.config
        # a repeat measures seed-to-seed noise, a retry after a failure must not fail the same way
        k, failures = training_attempt(trial)
        seed = config.seed + k - 1 + RETRY_SEED_STRIDE * failures
        if seed != config.seed:
            config = config.replace(seed=seed)
        epochs = config.epochs_for(splits.info.name)
        torch.manual_seed(config.seed)
        model = self.space.build(shape)
        params = int(sum(p.numel() for p in model.parameters()))
        trial.set_user_attr("seed", config.seed)
        trial.set_user_attr("params", params)
        trial.set_user_attr("dataset", splits.info.name)
        trial.set_user_attr("select_on", config.select_on)
        trial.set_user_attr(PLANNED_EPOCHS, epochs)

        progress = self.progress
        from optuna_shape.sampler.pruner import ShapePruner

        pruner = _shape_pruner(trial, ShapePruner() if self.early_stopping else None)

        def on_epoch(epoch: int, accuracy: float) -> None:
            trial.report(accuracy, epoch)
            if progress is not None:
                progress(shape, epoch, epochs, accuracy)
            if pruner is not None and epoch < epochs and \
                    pruner.prune(trial.study, frozen_trial(trial)):
                trial.set_user_attr("epochs", epoch)
                trial.set_user_attr(TRAIN_SECONDS, round(time.perf_counter() - started, 3))
                raise optuna.TrialPruned(f"training of shape {shape} stopped after epoch "
                                         f"{epoch} of {epochs}")

        if progress is not None:
            progress(shape, 0, epochs, math.nan)
        started = time.perf_counter()
        try:
            result = train(model, splits, config, on_epoch=on_epoch)
        except KeyboardInterrupt:  # retried on resume, also under a plain study.optimize
            mark_interrupted(trial)
            raise
        except Exception as exc:
            del model
            if _is_oom(exc):
                reason = f"training of shape {shape} ran out of memory on {config.device}"
                trial.set_user_attr("fail_reason", reason)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise RuntimeError(reason) from None
            raise
        trial.set_user_attr(TRAIN_SECONDS, round(result.seconds, 3))
        trial.set_user_attr("epochs", result.epochs)
        if result.diverged or math.isnan(result.accuracy):
            del model
            reason = f"training of shape {shape} diverged: loss is NaN"
            trial.set_user_attr("fail_reason", reason)
            raise RuntimeError(reason)
        from optuna_shape.store.attributes import significant

        trial.set_user_attr("val_accuracy", significant(result.val_accuracy, READABLE_DIGITS))
        if not math.isnan(result.test_accuracy):
            trial.set_user_attr("test_accuracy",
                                significant(result.test_accuracy, READABLE_DIGITS))
        trial.set_user_attr("best_epoch", result.best_epoch)
        lower = [p for p in getattr(self.space, "precisions", ("fp32",)) if p != "fp32"]
        if lower:
            self._store_precision_accuracies(trial, model, splits, result, lower)
        del model
        return result.accuracy

    def _store_precision_accuracies(self, trial: optuna.Trial, model: torch.nn.Module,
                                    splits: Splits, result: TrainResult,
                                    precisions: list[str]) -> None:
        """Score the trained network converted to each lower precision; store the dicts."""
        from optuna_shape import store as storage
        from optuna_shape.measurement.precision import PrecisionUnavailableError
        from optuna_shape.store.attributes import significant

        config = self.config
        selection: dict[str, float] = {"fp32": result.accuracy}
        test: dict[str, float] | None = (None if math.isnan(result.test_accuracy)
                                         else {"fp32": result.test_accuracy})
        errors: dict[str, str] = {}
        for precision in precisions:
            try:
                scores = evaluate_precisions(model, splits, [precision], config)
            except PrecisionUnavailableError as exc:
                errors[precision] = str(exc)[:500]
                continue
            selection[precision] = scores[config.select_on][precision]
            if test is not None and "test" in scores:
                test[precision] = scores["test"][precision]
        trial.set_user_attr(storage.ACCURACY_BY_PRECISION, selection)
        if test is not None:
            trial.set_user_attr(storage.TEST_ACCURACY_BY_PRECISION, {
                p: significant(a, READABLE_DIGITS) for p, a in test.items()})
        if errors:
            trial.set_user_attr(storage.PRECISION_ERRORS, errors)


def make_objective(
    space: ShapeSpace,
    dataset: str = "digits",
    *,
    config: TrainConfig | None = None,
    data_dir: str | Path = "./data",
    download: bool = False,
    seed: int | None = 0,
    progress: ProgressCallback | None = None,
    subset: int | None = None,
    val_fraction: float | None = None,
    early_stopping: bool = True,
) -> ShapeObjective:
    """Build the default objective (a :class:`ShapeObjective`); arguments as there.

    Example:
        >>> import optuna_shape as osh
        >>> space = osh.ShapeSpace("wrn", depth=[10, 16], width=[0.5, 1.0], in_channels=1,
        ...                        num_classes=10, image_size=8)
        >>> objective = make_objective(space, "digits", config=TrainConfig(epochs=10))
        >>> objective.seed
        0
    """
    return ShapeObjective(space, dataset, config=config, data_dir=data_dir, download=download,
                          seed=seed, progress=progress, subset=subset, val_fraction=val_fraction,
                          early_stopping=early_stopping)
