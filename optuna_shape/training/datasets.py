"""Datasets for the default objective: digits, MNIST, CIFAR-10/100, ImageNet 32×32 and tabular sets.

Every dataset is held in memory as one image tensor plus one label tensor
(:class:`ImageTensorDataset`); normalisation and augmentation (random crop with 4-pixel padding and
horizontal flips for natural images) are applied to whole batches of tensors, on the training
device, by :func:`optuna_shape.training.train`. No PIL, no per-sample Python work, so even the tiny
digits set trains at full speed. The datasets are still ordinary :class:`torch.utils.data.Dataset`
objects (``dataset[i] -> (image, label)``), so they also work with a ``DataLoader``.

Datasets and where their data comes from:

=================  ===================================================  ===================
name               source                                               splits
=================  ===================================================  ===================
``digits``         scikit-learn's bundled 8×8 digits (no download)      60/20/20 stratified
``mnist``          torchvision, ``<data_dir>/MNIST/raw``                 val from train
``cifar10``        torchvision, ``<data_dir>/cifar-10-batches-py``       val from train
``cifar100``       torchvision, ``<data_dir>/cifar-100-python``          val from train
``imagenet32``     the user's downloaded batch files (Chrabaszcz et     official val = test
                   al.)
``breast_cancer``  scikit-learn's bundled breast cancer (30 features)   60/20/20 stratified
``wine``           scikit-learn's bundled wine recognition (13          60/20/20 stratified
                   features)
``iris``           scikit-learn's bundled iris (4 features)             60/20/20 stratified
=================  ===================================================  ===================

The tabular sets hold feature vectors ``(N, features)``, standardised per feature with the mean
and standard deviation of the training split only; they are never augmented. Their
:class:`DatasetInfo` has ``image_size=None`` and ``in_channels`` = the number of features, the
input of a feature-vector family such as ``"mlp"`` (:meth:`DatasetInfo.space_inputs`).

MNIST and CIFAR are fetched by torchvision when ``download=True`` (``--download`` on the command
line) and read from its on-disk format otherwise. The validation split is always carved out of the
training set with a seeded, stratified draw, so the test set is never used for selection unless the
trainer is told to (``TrainConfig(select_on="test")`` reproduces the paper).

One module: the dataset names, their default epochs and normalisation constants, the on-disk
readers and the branches of :func:`load_dataset` all enumerate the same eight datasets, so adding
one is one edit here.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "DATASETS",
    "DEFAULT_EPOCHS",
    "DatasetInfo",
    "ImageTensorDataset",
    "Splits",
    "TABULAR_DATASETS",
    "default_epochs",
    "load_dataset",
    "stratified_split",
]

TABULAR_DATASETS: tuple[str, ...] = ("breast_cancer", "wine", "iris")
"""The bundled tabular datasets (feature vectors, no download)."""
DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10", "cifar100", "imagenet32",
                             *TABULAR_DATASETS)
"""Names accepted by :func:`load_dataset`."""

DEFAULT_EPOCHS: dict[str, int] = {
    "digits": 10,
    "mnist": 30,
    "cifar10": 200,
    "cifar100": 200,
    "imagenet32": 40,
    "breast_cancer": 30,
    "wine": 60,
    "iris": 60,
}
"""Epochs used when ``TrainConfig.epochs`` is ``None``.

``digits``: WRN-10 width 1 reaches about 98 % validation accuracy in about 4 s on two CPU
cores. CIFAR: the 200 epochs of Zagoruyko & Komodakis. ImageNet 32×32: the paper's 40 epochs for
design space D2 (the paper also used ``lr=0.01`` there). Tabular sets: the same recipe (SGD
0.1, batch 128) on an MLP; these sets are tiny (60 % of 569, 178 and 150 examples gives 3, 1 and 1
steps per epoch), so they get more epochs.
"""

_NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet32": ((0.4811, 0.4575, 0.4078), (0.2605, 0.2533, 0.2683)),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a trainer need to know about a dataset.

    Attributes:
        name: dataset name (one of :data:`DATASETS` for the built-in ones).
        in_channels: image channels (1 for digits and MNIST, 3 for CIFAR and ImageNet 32×32);
            for a tabular dataset, the number of features.
        num_classes: number of classes.
        image_size: height (= width) of the images in pixels; ``None`` for a tabular dataset.
        natural_images: whether the images are natural photos (then training uses random crops
            with 4-pixel padding and horizontal flips).

    Example:
        >>> info = load_dataset("digits").info
        >>> info.in_channels, info.num_classes, info.image_size
        (1, 10, 8)
    """

    name: str
    in_channels: int
    num_classes: int
    image_size: int | None
    natural_images: bool

    @property
    def tabular(self) -> bool:
        """Whether the examples are feature vectors rather than images."""
        return self.image_size is None

    @property
    def num_features(self) -> int:
        """Length of one example as a flat vector: features, or channels × height × width."""
        if self.image_size is None:
            return self.in_channels
        return self.in_channels * self.image_size * self.image_size

    def space_inputs(self, family: str | Any) -> dict[str, Any]:
        """``in_channels``, ``num_classes`` and ``image_size`` of a design space of ``family``
        on this dataset: image families get the images' geometry; feature-vector families
        (``"mlp"``) get ``in_channels`` = the number of features (images flattened) and
        ``image_size=None``.

        Example:
            >>> info = DatasetInfo("digits", 1, 10, 8, natural_images=False)
            >>> info.space_inputs("mlp")
            {'in_channels': 64, 'num_classes': 10, 'image_size': None}

        Raises:
            ValueError: an image family (``"wrn"``, ``"densenet"``) on a tabular dataset.
        """
        from optuna_shape.families import get_family

        fam = get_family(family)
        if fam.input_kind == "features":
            return {"in_channels": self.num_features, "num_classes": self.num_classes,
                    "image_size": None}
        if self.image_size is None:
            raise ValueError(
                f"dataset {self.name!r} is tabular ({self.in_channels} features) but family "
                f"{fam.name!r} takes images; use a feature-vector family such as mlp"
            )
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "image_size": self.image_size}


class ImageTensorDataset(Dataset):
    """Images and labels held as tensors, with normalisation and optional augmentation.

    Images are stored as ``uint8`` (or float) ``(N, C, H, W)``; feature vectors (tabular data) as
    float ``(N, F)``, normalised per feature and never augmented; ``scale`` turns them into [0, 1]
    (``1/255`` for ``uint8``). :meth:`batch` returns a normalised float batch, randomly augmented
    when ``augment`` is set; :func:`optuna_shape.training.train` uses it directly (fast path).

    Args:
        images: ``(N, C, H, W)`` tensor, or ``(N, F)`` feature vectors.
        labels: ``(N,)`` integer tensor of class indices.
        mean: per-channel (per-feature) mean of the [0, 1]-scaled images, subtracted before
            dividing by ``std``.
        std: per-channel standard deviation.
        scale: factor that maps stored values to [0, 1]; default ``1/255`` for ``uint8`` and 1
            otherwise.
        crop_padding: random-crop padding in pixels for augmentation (0 = no crop).
        flip: random horizontal flips for augmentation.
        augment: whether :meth:`batch` and ``__getitem__`` augment (training split only).

    Attributes:
        indices: for a split made by :meth:`subset`, the positions of its examples in the source
            data (the training file, or the test file), else ``None``.

    Example:
        >>> ds = ImageTensorDataset(torch.zeros(4, 1, 8, 8, dtype=torch.uint8),
        ...                         torch.tensor([0, 1, 2, 3]), mean=(0.5,), std=(0.25,))
        >>> x, y = ds[1]
        >>> tuple(x.shape), int(y), float(x[0, 0, 0])
        ((1, 8, 8), 1, -2.0)
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        scale: float | None = None,
        crop_padding: int = 0,
        flip: bool = False,
        augment: bool = False,
    ) -> None:
        if images.ndim not in (2, 4):
            raise ValueError(
                f"images must be (N, C, H, W) or feature vectors (N, F), got shape "
                f"{tuple(images.shape)}"
            )
        if images.ndim == 2 and (crop_padding or flip or augment):
            raise ValueError("feature vectors (N, F) cannot be augmented: use crop_padding=0, "
                             "flip=False, augment=False")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must be (N,) with N={images.shape[0]}, got shape {tuple(labels.shape)}"
            )
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"mean and std need {channels} values (one per channel), got {mean!r}, {std!r}"
            )
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding!r}")
        self.images = images
        self.labels = labels.long()
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if scale is None:
            scale = 1.0 / 255.0 if images.dtype == torch.uint8 else 1.0
        self.scale = float(scale)
        self.crop_padding = int(crop_padding)
        self.flip = bool(flip)
        self.augment = bool(augment)
        self.indices: torch.Tensor | None = None
        """Positions of the examples in the source data (train file or test file), if a subset."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch(torch.tensor([index]))
        return x[0], y[0]

    @property
    def num_classes(self) -> int:
        """``max(label) + 1`` of the stored labels."""
        return int(self.labels.max()) + 1 if len(self) else 0

    def subset(self, indices: torch.Tensor | np.ndarray | Sequence[int]) -> ImageTensorDataset:
        """A dataset with only the given examples (same normalisation and augmentation)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        part = ImageTensorDataset(
            self.images[idx], self.labels[idx], mean=self.mean, std=self.std, scale=self.scale,
            crop_padding=self.crop_padding, flip=self.flip, augment=self.augment,
        )
        part.indices = idx if self.indices is None else self.indices[idx]
        return part

    def batch(
        self,
        indices: torch.Tensor,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        images: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (and, for a training split, augmented) batch of the given examples.

        Args:
            indices: example indices (a CPU ``long`` tensor).
            device: where the batch goes; default: where the images are.
            generator: CPU generator for the augmentation's random draws (repeatability).
            images: the stored images, possibly already moved to ``device`` (used by the trainer
                to keep a small dataset resident on the GPU); default :attr:`images`.
            labels: likewise for the labels.

        Returns:
            ``(x, y)``: float32 images ``(B, C, H, W)`` (or features ``(B, F)``) and ``long``
            labels ``(B,)`` on ``device``.
        """
        src = self.images if images is None else images
        lab = self.labels if labels is None else labels
        idx = indices.to(src.device)
        x = src[idx]
        y = lab[indices.to(lab.device)]
        if device is not None:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
        x = x.float().mul_(self.scale)
        if self.augment:
            x = self._augment(x, generator)
        view = (1, -1) + (1,) * (x.ndim - 2)
        mean = torch.tensor(self.mean, device=x.device).view(view)
        std = torch.tensor(self.std, device=x.device).view(view)
        return (x - mean) / std, y

    def _augment(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n, _, h, w = x.shape
        p = self.crop_padding
        if p > 0:
            # Zero padding in [0, 1] space (black), as torchvision's RandomCrop(padding=p) does.
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=generator).to(x.device)
            rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (n, h)
            cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (n, w)
            batch = torch.arange(n, device=x.device).view(n, 1, 1)
            x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
            x = x.permute(0, 3, 1, 2).contiguous()
        if self.flip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
            x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        return x


@dataclass
class Splits:
    """The train, validation and test splits of a dataset, and what it is.

    Attributes:
        train: training split (augmented when the images are natural).
        val: validation split, carved from the training data; used for selection by default.
        test: test split; ``None`` when there is none.
        info: the :class:`DatasetInfo`.

    Example:
        >>> splits = load_dataset("digits")
        >>> len(splits.train), len(splits.val), len(splits.test)
        (1078, 360, 359)
    """

    train: Dataset
    val: Dataset
    test: Dataset | None
    info: DatasetInfo

    def sizes(self) -> dict[str, int]:
        """Number of examples per split: ``{"train": …, "val": …, "test": …}``."""
        return {
            "train": len(self.train),  # type: ignore[arg-type]
            "val": len(self.val),  # type: ignore[arg-type]
            "test": 0 if self.test is None else len(self.test),  # type: ignore[arg-type]
        }


def stratified_split(
    labels: np.ndarray | Sequence[int], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into ``(rest, held_out)`` with ``fraction`` of every class held out.

    Deterministic for a given ``seed``. The held-out part has ``round(fraction × N)`` examples,
    shared among the classes in proportion to their sizes (largest remainders get the leftover
    ones, so even tiny classes add up right). Both index arrays are sorted.

    Example:
        >>> rest, held = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
        >>> len(rest), len(held)
        (6, 2)
    """
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    target = int(round(fraction * len(labels)))
    exact = fraction * counts
    take = np.floor(exact).astype(np.int64)
    leftover = target - int(take.sum())
    if leftover > 0:
        tiebreak = rng.random(len(classes))
        order = np.lexsort((tiebreak, -(exact - take)))  # largest remainder first
        take[order[:leftover]] += 1
    held: list[np.ndarray] = []
    for cls, k in zip(classes, take, strict=True):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        held.append(members[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


# -- loaders --------------------------------------------------------------------------------------


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]  # (N, 1, 8, 8) in [0, 1]
    return images, bunch.target.astype(np.int64)


def _tabular(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
              "iris": datasets.load_iris}[name]
    bunch = loader()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def _missing(name: str, path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"{name} not found at {path}: pass download=True (command line: --download) to fetch it "
        "with torchvision, or point data_dir at a folder that already holds it"
    )


def _download(name: str, root: Path) -> None:
    import torchvision

    cls = {
        "mnist": torchvision.datasets.MNIST,
        "cifar10": torchvision.datasets.CIFAR10,
        "cifar100": torchvision.datasets.CIFAR100,
    }[name]
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types
        raise RuntimeError(
            f"downloading {name} into {root} failed ({type(exc).__name__}: {exc}); check the "
            f"internet connection, or copy the files there by hand and use download=False"
        ) from exc


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _mnist(root: Path, download: bool) -> tuple[np.ndarray, ...]:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = root / "MNIST" / "raw"
    missing = [raw / f for f in _MNIST_FILES.values() if not (raw / f).is_file()]
    if missing and download:
        _download("mnist", root)
        missing = [p for p in missing if not p.is_file()]
    if missing:
        raise _missing("MNIST", missing[0])
    arrays = {}
    for key, filename in _MNIST_FILES.items():
        reader = read_image_file if key.endswith("images") else read_label_file
        arrays[key] = reader(str(raw / filename)).numpy()
    return (
        arrays["train_images"][:, None], arrays["train_labels"].astype(np.int64),
        arrays["test_images"][:, None], arrays["test_labels"].astype(np.int64),
    )


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        data = pickle.load(fh, encoding="latin1")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _cifar(name: str, root: Path, download: bool) -> tuple[np.ndarray, ...]:
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        train_files = [f"data_batch_{i}" for i in range(1, 6)]
        test_files, label_key = ["test_batch"], "labels"
    else:
        folder = root / "cifar-100-python"
        train_files, test_files, label_key = ["train"], ["test"], "fine_labels"
    missing = [folder / f for f in train_files + test_files if not (folder / f).is_file()]
    if missing and download:
        _download(name, root)
        missing = [p for p in missing if not p.is_file()]
    if missing:
        raise _missing(name.upper().replace("CIFAR", "CIFAR-"), missing[0])

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_unpickle(folder / f) for f in files]
        images = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts])
        labels = np.concatenate([np.asarray(p[label_key], dtype=np.int64) for p in parts])
        return images.reshape(-1, 3, 32, 32), labels

    return (*read(train_files), *read(test_files))


_IMAGENET32_HELP = (
    "download the 'Imagenet32_train' and 'Imagenet32_val' pickled batch files (Chrabaszcz et al., "
    "2017, https://image-net.org/download-images.php, 'Downsampled ImageNet 32x32') and unpack "
    "train_data_batch_1 … train_data_batch_10 and val_data into data_dir (or into "
    "data_dir/Imagenet32_train and data_dir/Imagenet32_val)"
)


def _find_batch(root: Path, name: str) -> Path | None:
    sub = ("Imagenet32_train", "Imagenet32_val")
    folders = [root, root / "imagenet32"] + [base / s for base in (root, root / "imagenet32")
                                             for s in sub]
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.npz", folder / f"{name}.pkl"):
            if candidate.is_file():
                return candidate
    return None


def _read_imagenet32_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as npz:
            data, labels = npz["data"], npz["labels"]
    else:
        batch = _unpickle(path)
        data, labels = batch["data"], batch["labels"]
    data = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(labels, dtype=np.int64) - 1  # labels are 1-indexed in the files


def _imagenet32(root: Path) -> tuple[np.ndarray, ...]:
    train_parts, found = [], []
    for i in range(1, 11):
        path = _find_batch(root, f"train_data_batch_{i}")
        if path is None:
            raise FileNotFoundError(
                f"ImageNet 32x32 training file {root / f'train_data_batch_{i}'} not found: "
                + _IMAGENET32_HELP
            )
        found.append(path)
    val_path = _find_batch(root, "val_data")
    if val_path is None:
        raise FileNotFoundError(
            f"ImageNet 32x32 validation file {root / 'val_data'} not found: " + _IMAGENET32_HELP
        )
    for path in found:
        train_parts.append(_read_imagenet32_batch(path))
    train_x = np.concatenate([p[0] for p in train_parts])
    train_y = np.concatenate([p[1] for p in train_parts])
    test_x, test_y = _read_imagenet32_batch(val_path)
    return train_x, train_y, test_x, test_y


def _cap(indices: np.ndarray, subset: int | None, seed: int) -> np.ndarray:
    if subset is None or len(indices) <= subset:
        return indices
    rng = np.random.default_rng(seed + 1)
    return np.sort(rng.choice(indices, size=subset, replace=False))


def load_dataset(
    name: str,
    *,
    data_dir: str | Path = "./data",
    download: bool = False,
    val_fraction: float | None = None,
    seed: int = 0,
    subset: int | None = None,
    augment: bool = True,
) -> Splits:
    """Load a dataset into memory and split it into train, validation and test sets.

    Args:
        name: ``"digits"``, ``"mnist"``, ``"cifar10"``, ``"cifar100"``, ``"imagenet32"``, or a
            bundled tabular set: ``"breast_cancer"``, ``"wine"``, ``"iris"``.
        data_dir: folder holding (or receiving) the torchvision data and the ImageNet 32×32 batch
            files; not used for ``digits`` and the tabular sets.
        download: let torchvision download MNIST / CIFAR when missing (needs internet).
        val_fraction: share of the training data held out for validation, stratified by class.
            Default ``None``: 0.1 of the training set; for ``digits`` and the tabular sets (which
            have no official test set) the data is split 60/20/20 into train/val/test, so
            ``val_fraction`` is then the validation share of the whole set (default 0.2; the
            test share stays 0.2).
        seed: seed of the validation (and digits test) split and of ``subset``'s draw. The split
            does not depend on anything else, so every trial of a study sees the same split.
        subset: if set, every split is capped at this many examples (a seeded random draw);
            for quick experiments.
        augment: random crop (4-pixel padding) + horizontal flips on the training split of
            natural-image datasets (CIFAR, ImageNet 32×32). MNIST and digits are never augmented.

    Returns:
        :class:`Splits` of :class:`ImageTensorDataset` objects and the :class:`DatasetInfo`.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid ones) or a bad argument.
        FileNotFoundError: data missing on disk; the message names the path and how to get it
            (``download=True`` / ``--download`` for torchvision datasets).

    Example:
        >>> splits = load_dataset("digits", seed=0)
        >>> x, y = splits.train[0]
        >>> tuple(x.shape), splits.info.num_classes
        ((1, 8, 8), 10)
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    name = name.lower()
    if val_fraction is not None and (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, (int, float))
        or not 0.0 < val_fraction < 1.0
        or (_bundled(name) and val_fraction >= 0.8)
    ):
        raise ValueError(f"val_fraction must be in (0, 1), got val_fraction={val_fraction!r}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int)
                               or subset < 1):
        raise ValueError(f"subset must be a positive int or None, got subset={subset!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got seed={seed!r}")
    root = Path(data_dir).expanduser()

    if _bundled(name):
        images, labels = _digits() if name == "digits" else _tabular(name)
        rest, test_idx = stratified_split(labels, 0.2, seed)
        val_share = 0.2 if val_fraction is None else float(val_fraction)
        rest_train, rest_val = stratified_split(labels[rest], val_share / 0.8, seed + 1)
        train_idx, val_idx = rest[rest_train], rest[rest_val]
        if name == "digits":
            mean: Any = (float(images[train_idx].mean()),)
            std: Any = (float(images[train_idx].std()),)
            info = DatasetInfo("digits", 1, 10, 8, natural_images=False)
        else:  # standardise each feature with the training split's statistics only
            mean = images[train_idx].mean(axis=0).astype(np.float64)
            std = images[train_idx].std(axis=0).astype(np.float64)
            std[std == 0] = 1.0
            info = DatasetInfo(name, int(images.shape[1]), int(labels.max()) + 1, None,
                               natural_images=False)
        full = ImageTensorDataset(torch.from_numpy(images), torch.from_numpy(labels),
                                  mean=tuple(mean), std=tuple(std), scale=1.0)
        test_full = full
    else:
        if name == "mnist":
            train_x, train_y, test_x, test_y = _mnist(root, download)
        elif name in ("cifar10", "cifar100"):
            train_x, train_y, test_x, test_y = _cifar(name, root, download)
        else:
            train_x, train_y, test_x, test_y = _imagenet32(root)
        fraction = 0.1 if val_fraction is None else float(val_fraction)
        train_idx, val_idx = stratified_split(train_y, fraction, seed)
        mean, std = _NORMALISATION[name]
        natural = name != "mnist"
        full = ImageTensorDataset(torch.from_numpy(np.ascontiguousarray(train_x)),
                                  torch.from_numpy(train_y), mean=mean, std=std)
        test_full = ImageTensorDataset(torch.from_numpy(np.ascontiguousarray(test_x)),
                                       torch.from_numpy(test_y), mean=mean, std=std)
        test_idx = np.arange(len(test_y))
        num_classes = {"mnist": 10, "cifar10": 10, "cifar100": 100, "imagenet32": 1000}[name]
        info = DatasetInfo(name, int(train_x.shape[1]), num_classes, int(train_x.shape[-1]),
                           natural_images=natural)

    train = full.subset(_cap(train_idx, subset, seed))
    if info.natural_images and augment:
        train.crop_padding, train.flip, train.augment = 4, True, True
    val = full.subset(_cap(val_idx, subset, seed))
    test = test_full.subset(_cap(test_idx, subset, seed))
    return Splits(train=train, val=val, test=test, info=info)


def _bundled(name: str) -> bool:
    """Datasets shipped with scikit-learn, split 60/20/20 (no official test set)."""
    return name == "digits" or name in TABULAR_DATASETS


def default_epochs(name: str) -> int:
    """Default number of training epochs for a dataset (see :data:`DEFAULT_EPOCHS`)."""
    return DEFAULT_EPOCHS.get(name, 30)
