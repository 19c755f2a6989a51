"""The default training recipe: SGD with Nesterov momentum and a step schedule.

:func:`train` trains a network on the training split of :class:`~optuna_shape.training.Splits`
and returns a :class:`TrainResult` with accuracies in percent (0–100, as in the paper). The recipe
is the wide-ResNet one of Zagoruyko & Komodakis: SGD, Nesterov momentum 0.9, learning rate 0.1,
weight decay 5·10⁻⁴, batch 128, learning rate × 0.2 at 30 %, 60 % and 80 % of the epochs. Every
value is a field of :class:`TrainConfig`.

Selection and reporting: the network is scored after every epoch on the *selection* split
(``select_on="val"``, the default, or ``"test"``, which reproduces the paper's use of the test
set);
the reported accuracies are those after the **last** epoch (no early stopping, no picking of the
best epoch, so the score does not overfit the selection split); the best epoch is recorded for
information only.

Repeatability: on the CPU the same model initialisation, data and ``seed`` give the same result
(the seed drives ``torch.manual_seed``, the shuffling and the augmentation). On a GPU results vary
slightly between runs because cuDNN kernels are not deterministic.

A training whose loss becomes NaN or infinite stops at once and reports NaN accuracies with
``diverged=True``; it never hangs.

One module: the training loop, the scoring and the int8 calibration batches share one batch
iterator (the in-memory fast path, the training's seeded shuffling and augmentation), and
:class:`TrainConfig` drives all three.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from optuna_shape.training.datasets import ImageTensorDataset, Splits, default_epochs

__all__ = ["TrainConfig", "TrainResult", "calibration_batches", "evaluate", "evaluate_precisions",
           "train"]

_RESIDENT_LIMIT_BYTES = 2 * 1024**3  # datasets up to this size are moved to the GPU once


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of the default training recipe.

    Attributes:
        epochs: number of epochs; ``None`` uses the dataset's default
            (:data:`~optuna_shape.training.DEFAULT_EPOCHS`: 10 for digits, 200 for CIFAR, …).
        batch_size: training batch size.
        lr: initial learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 weight decay.
        lr_milestones: fractions of ``epochs`` after which the learning rate is multiplied by
            ``lr_gamma`` (each rounded to a whole epoch, at least 1).
        lr_gamma: learning-rate factor at each milestone.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        amp: mixed precision (float16 autocast + gradient scaling); ``None``: on for CUDA only.
            Needs a CUDA device.
        seed: seed of the training randomness (shuffling, augmentation, ``torch.manual_seed``).
        select_on: split scored after every epoch and returned as the selection accuracy:
            ``"val"`` (default) or ``"test"`` (what the paper did).
        num_workers: ``DataLoader`` workers, only for datasets that are not in-memory
            :class:`~optuna_shape.training.ImageTensorDataset` objects.
        threads: CPU threads for the training (``torch.set_num_threads``), restored afterwards;
            ``None`` keeps the current setting.
        eval_batch_size: batch size for scoring.

    Raises:
        ValueError: on a bad value, naming the field and the value.

    Example:
        >>> TrainConfig(epochs=10, lr=0.05).lr
        0.05
        >>> TrainConfig(lr=-1)
        Traceback (most recent call last):
        ...
        ValueError: lr must be a finite number > 0, got lr=-1
    """

    epochs: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_milestones: tuple[float, ...] = (0.3, 0.6, 0.8)
    lr_gamma: float = 0.2
    device: str = "cpu"
    amp: bool | None = None
    seed: int = 0
    select_on: Literal["val", "test"] = "val"
    num_workers: int = 0
    threads: int | None = None
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"{name} must be {rule}, got {name}={getattr(self, name)!r}")

        if self.epochs is not None and (not _is_int(self.epochs) or self.epochs < 1):
            raise bad("epochs", "a positive int or None")
        for name in ("batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise bad(name, "a positive int")
        if not _is_real(self.lr) or self.lr <= 0:
            raise bad("lr", "a finite number > 0")
        if not _is_real(self.momentum) or not 0 <= self.momentum < 1:
            raise bad("momentum", "a number in [0, 1)")
        if not isinstance(self.nesterov, bool):
            raise bad("nesterov", "True or False")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "a finite number >= 0")
        try:
            milestones = tuple(self.lr_milestones)
        except TypeError:
            raise bad("lr_milestones", "a sequence of fractions in (0, 1]") from None
        if not all(_is_real(m) and 0 < m <= 1 for m in milestones) or list(milestones) != sorted(
            milestones
        ):
            raise bad("lr_milestones", "increasing fractions of the epochs in (0, 1]")
        object.__setattr__(self, "lr_milestones", tuple(float(m) for m in milestones))
        if not _is_real(self.lr_gamma) or self.lr_gamma <= 0:
            raise bad("lr_gamma", "a finite number > 0")
        if isinstance(self.device, torch.device):
            object.__setattr__(self, "device", str(self.device))
        from optuna_shape.measurement.hardware import check_device

        check_device(self.device)
        if self.amp is not None and not isinstance(self.amp, bool):
            raise bad("amp", "True, False or None")
        if not _is_int(self.seed):
            raise bad("seed", "an int")
        if self.select_on not in ("val", "test"):
            raise bad("select_on", "'val' or 'test'")
        if not _is_int(self.num_workers) or self.num_workers < 0:
            raise bad("num_workers", "an int >= 0")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise bad("threads", "a positive int or None")

    def epochs_for(self, dataset: str) -> int:
        """``epochs``, or the default for ``dataset`` when ``epochs`` is ``None``.

        Example:
            >>> TrainConfig().epochs_for("digits"), TrainConfig(epochs=3).epochs_for("digits")
            (10, 3)
        """
        return self.epochs if self.epochs is not None else default_epochs(dataset)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for study user attributes)."""
        data = asdict(self)
        data["lr_milestones"] = list(self.lr_milestones)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        data = dict(data or {})
        if "lr_milestones" in data:
            data["lr_milestones"] = tuple(data["lr_milestones"])
        return cls(**data)


@dataclass
class TrainResult:
    """Outcome of one training. Accuracies are in percent (0–100).

    Attributes:
        val_accuracy: validation accuracy after the last epoch (NaN if the training diverged).
        test_accuracy: test accuracy after the last epoch (NaN if diverged or no test split).
        select_on: which of the two is the selection accuracy (``"val"`` or ``"test"``).
        curve: selection accuracy after each epoch (its length is the number of epochs run).
        losses: mean training loss of each epoch.
        best_epoch: 1-based epoch with the highest selection accuracy (information only; the
            reported accuracies are from the last epoch), 0 if no epoch finished.
        seconds: wall-clock seconds of the training and scoring.
        epochs: epochs run (fewer than asked only when the training diverged).
        diverged: the loss became NaN or infinite.

    Example:
        >>> TrainResult(97.5, 96.0, "val", [90.0, 97.5], [0.5, 0.1], 2, 1.2, 2).accuracy
        97.5
    """

    val_accuracy: float
    test_accuracy: float
    select_on: str
    curve: list[float]
    losses: list[float]
    best_epoch: int
    seconds: float
    epochs: int
    diverged: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """The selection accuracy: ``val_accuracy`` or ``test_accuracy`` per ``select_on``."""
        return self.test_accuracy if self.select_on == "test" else self.val_accuracy

    @property
    def best_accuracy(self) -> float:
        """Highest selection accuracy over the epochs (NaN when none)."""
        return max(self.curve) if self.curve else math.nan


@contextlib.contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolve_device(device: str) -> torch.device:
    from optuna_shape.measurement.hardware import resolve_device

    return resolve_device(device)


class _Batches:
    """Iterates over (x, y) batches of a dataset on a device, shuffled or in order."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        device: torch.device,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        num_workers: int = 0,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.generator = generator
        self.size = len(dataset)  # type: ignore[arg-type]
        self.fast = isinstance(dataset, ImageTensorDataset)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        if self.fast:
            assert isinstance(dataset, ImageTensorDataset)
            images, labels = dataset.images, dataset.labels
            if device.type != "cpu" and images.nbytes <= _RESIDENT_LIMIT_BYTES:
                images, labels = images.to(device), labels.to(device)
            elif device.type == "cuda":
                images = images.pin_memory()
            self.images, self.labels = images, labels
            self.loader = None
        else:
            self.loader = DataLoader(
                dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                num_workers=num_workers, pin_memory=device.type == "cuda",
            )

    def __len__(self) -> int:
        n = self.size // self.batch_size + (self.size % self.batch_size > 0)
        if self.shuffle and self.size % self.batch_size == 1 and self.size > 1:
            n -= 1  # a last batch of one example breaks batch norm in training mode
        return n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.loader is not None:
            for i, (x, y) in enumerate(self.loader):
                if i >= len(self):
                    break
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            return
        dataset = self.dataset
        assert isinstance(dataset, ImageTensorDataset)
        if self.shuffle:
            order = torch.randperm(self.size, generator=self.generator)
        else:
            order = torch.arange(self.size)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield dataset.batch(idx, device=self.device, generator=self.generator,
                                images=self.images, labels=self.labels)


@torch.inference_mode()
def _score(model: nn.Module, batches: _Batches, amp: bool) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=batches.device)
    total = 0
    for x, y in batches:
        with torch.autocast(batches.device.type, dtype=torch.float16, enabled=amp):
            logits = model(x)
        correct += (logits.argmax(dim=1) == y).sum()
        total += int(y.shape[0])
    if total == 0:
        return math.nan
    return 100.0 * int(correct) / total


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: str = "cpu",
    batch_size: int = 1024,
    amp: bool | None = None,
) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` in percent (0–100).

    Example:
        >>> from optuna_shape.training import load_dataset
        >>> from optuna_shape.families import WideResNet
        >>> splits = load_dataset("digits")
        >>> 0.0 <= evaluate(WideResNet(10, 0.25, 1, 10), splits.val) <= 100.0
        True
    """
    dev = _resolve_device(device)
    use_amp = dev.type == "cuda" if amp is None else amp
    model.to(dev)
    batches = _Batches(dataset, batch_size, dev, shuffle=False, generator=None)
    return _score(model, batches, use_amp)


def calibration_batches(
    dataset: Dataset, config: TrainConfig | None = None, count: int | None = None
) -> list[torch.Tensor]:
    """The first ``count`` shuffled training batches' inputs, on the CPU, for int8 calibration.

    The batches are drawn as the training draws them (``config.batch_size`` examples, shuffled
    and augmented with a generator seeded by ``config.seed``), so they are the same every call.
    ``count`` defaults to :data:`~optuna_shape.measurement.precision.CALIBRATION_BATCHES`.
    """
    from optuna_shape.measurement.precision import CALIBRATION_BATCHES

    config = TrainConfig() if config is None else config
    count = CALIBRATION_BATCHES if count is None else count
    batches = _Batches(dataset, config.batch_size, torch.device("cpu"), shuffle=True,
                       generator=torch.Generator().manual_seed(config.seed),
                       num_workers=config.num_workers)
    out: list[torch.Tensor] = []
    for x, _ in batches:
        if len(out) >= count:
            break
        out.append(x)
    return out


def evaluate_precisions(
    model: nn.Module,
    splits: Splits,
    precisions: str | Sequence[str],
    config: TrainConfig | None = None,
) -> dict[str, dict[str, float]]:
    """Accuracy (percent) of a trained network converted to each precision, on val and test.

    Each precision is reached from the trained float32 ``model`` by post-training conversion
    (:func:`optuna_shape.measurement.precision.convert`), never by training again; ``model``
    itself is not changed (it is only put in eval mode). ``"fp32"`` is scored as the training
    scores it (``config.device``, ``config.amp``), so on the CPU it equals the training's last
    score; ``"bf16"`` runs on ``config.device`` without autocast; ``"int8"`` runs on the CPU
    (torch has no quantised CUDA kernels) after static quantisation calibrated on
    :func:`calibration_batches` of the training split.

    Returns:
        ``{"val": {precision: accuracy}, "test": {precision: accuracy}}``, ``"test"`` only when
        ``splits.test`` exists; precisions in canonical order.

    Raises:
        ValueError: a bad precision name.
        PrecisionUnavailableError: the network cannot be converted to a precision.

    Example:
        >>> from optuna_shape.training import load_dataset
        >>> from optuna_shape.families import WideResNet
        >>> scores = evaluate_precisions(WideResNet(10, 0.25, 1, 10), load_dataset("digits"),
        ...                              "fp32,int8")
        >>> sorted(scores), list(scores["val"])
        (['test', 'val'], ['fp32', 'int8'])
    """
    from optuna_shape.measurement.precision import convert
    from optuna_shape.space.precision import parse_precisions, unsupported_reason

    config = TrainConfig() if config is None else config
    wanted = parse_precisions(precisions)
    datasets = {"val": splits.val, "test": splits.test}
    out: dict[str, dict[str, float]] = {k: {} for k, v in datasets.items() if v is not None}
    with _num_threads(config.threads):
        calibration = calibration_batches(splits.train, config) if "int8" in wanted else None
        for precision in wanted:
            device = "cpu" if unsupported_reason(precision, config.device) else config.device
            converted = convert(model, precision, calibration, device=device)
            amp = config.amp if precision == "fp32" else False
            for name in out:
                out[name][precision] = evaluate(converted, datasets[name],  # type: ignore[arg-type]
                                                device=device, batch_size=config.eval_batch_size,
                                                amp=amp)
            del converted
    return out


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train(
    model: nn.Module,
    splits: Splits,
    config: TrainConfig | None = None,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``splits.train`` and score it.

    Args:
        model: the network (e.g. ``space.build(shape)``); moved to ``config.device``. Seed its
            initialisation yourself (``torch.manual_seed``) before building it for repeatable
            results.
        splits: the data, from :func:`~optuna_shape.training.load_dataset` or your own
            :class:`~optuna_shape.training.Splits` (any ``Dataset`` of ``(image, label)`` works;
            in-memory :class:`~optuna_shape.training.ImageTensorDataset` ones are fastest).
        config: the recipe; default :class:`TrainConfig()`.
        on_epoch: called as ``on_epoch(epoch, accuracy)`` after every finished epoch (``epoch``
            counts from 1; ``accuracy`` is the selection accuracy in percent). Use it for
            ``trial.report`` or a progress bar. Not called for a diverged epoch.
        on_batch: called as ``on_batch(epoch, step, steps)`` after every optimiser step
            (``step`` counts from 1 to ``steps``).

    Returns:
        A :class:`TrainResult`; NaN accuracies and ``diverged=True`` if the loss became NaN/inf.

    Raises:
        ValueError: bad device, ``amp=True`` without CUDA, an empty training split, or
            ``select_on="test"`` without a test split.

    Example:
        >>> from optuna_shape.training import load_dataset
        >>> from optuna_shape.families import WideResNet
        >>> _ = torch.manual_seed(0)
        >>> result = train(WideResNet(10, 0.25, 1, 10), load_dataset("digits"),
        ...                TrainConfig(epochs=1))
        >>> len(result.curve), 0.0 <= result.val_accuracy <= 100.0
        (1, True)
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = _resolve_device(config.device)
    amp = device.type == "cuda" if config.amp is None else config.amp
    if amp and device.type != "cuda":
        raise ValueError(f"amp=True needs a CUDA device, got device={config.device!r}")
    if config.select_on == "test" and splits.test is None:
        raise ValueError("select_on='test' but the splits have no test set")
    if len(splits.train) == 0:  # type: ignore[arg-type]
        raise ValueError("the training split is empty")
    epochs = config.epochs_for(splits.info.name)

    start = time.perf_counter()
    with _num_threads(config.threads):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        model.to(device)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum,
            nesterov=config.nesterov, weight_decay=config.weight_decay,
        )
        milestones = [max(1, round(f * epochs)) for f in config.lr_milestones]
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, config.lr_gamma)
        scaler = torch.amp.GradScaler(device.type, enabled=amp)
        train_batches = _Batches(splits.train, config.batch_size, device, shuffle=True,
                                 generator=generator, num_workers=config.num_workers)
        eval_sets = {"val": splits.val, "test": splits.test}
        select = _Batches(eval_sets[config.select_on], config.eval_batch_size, device,  # type: ignore[arg-type]
                          shuffle=False, generator=None, num_workers=config.num_workers)
        steps = len(train_batches)
        check_each_step = device.type == "cpu" and not amp
        curve: list[float] = []
        losses: list[float] = []
        diverged = False
        for epoch in range(1, epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=device)
            bad = torch.zeros((), dtype=torch.long, device=device)
            for step, (x, y) in enumerate(train_batches, start=1):
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                value = loss.detach().float()
                finite = torch.isfinite(value)
                if check_each_step and not bool(finite):
                    bad += 1
                    break
                loss_sum += torch.where(finite, value, torch.zeros_like(value))
                bad += (~finite).long()
                if on_batch is not None:
                    on_batch(epoch, step, steps)
            scheduler.step()
            n_bad = int(bad)
            # Without AMP any non-finite loss is divergence; with AMP the gradient scaler skips
            # overflowing steps, so only an epoch of nothing but overflows (or NaN weights) counts.
            if (n_bad > 0 and not amp) or (amp and n_bad >= steps) or not _params_finite(model):
                diverged = True
                break
            losses.append(float(loss_sum) / max(1, steps - n_bad))
            accuracy = _score(model, select, amp)
            curve.append(accuracy)
            if on_epoch is not None:
                on_epoch(epoch, accuracy)

        if diverged:
            val_acc = test_acc = math.nan
        else:
            other = "test" if config.select_on == "val" else "val"
            accs = {config.select_on: curve[-1], other: math.nan}
            if eval_sets[other] is not None:
                accs[other] = _score(
                    model,
                    _Batches(eval_sets[other], config.eval_batch_size, device,  # type: ignore[arg-type]
                             shuffle=False, generator=None, num_workers=config.num_workers),
                    amp,
                )
            val_acc, test_acc = accs["val"], accs["test"]
    seconds = time.perf_counter() - start
    best_epoch = 1 + max(range(len(curve)), key=curve.__getitem__) if curve else 0
    return TrainResult(
        val_accuracy=val_acc,
        test_accuracy=test_acc,
        select_on=config.select_on,
        curve=curve,
        losses=losses,
        best_epoch=best_epoch,
        seconds=seconds,
        epochs=len(curve) + (1 if diverged else 0),
        diverged=diverged,
        extra={"device": str(device), "amp": amp, "lr_milestones_epochs": milestones},
    )
