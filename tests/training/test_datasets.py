"""Dataset loaders: digits (bundled) and torchvision / ImageNet32 formats on tiny fake files."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from optuna_shape.training import (
    DATASETS,
    ImageTensorDataset,
    Splits,
    load_dataset,
    stratified_split,
)


def _indices(ds) -> set[int]:
    return set(ds.indices.tolist())


def test_digits_shapes_and_disjoint_splits():
    splits = load_dataset("digits", seed=0)
    assert isinstance(splits, Splits)
    assert splits.info.name == "digits"
    assert (splits.info.in_channels, splits.info.num_classes, splits.info.image_size) == (1, 10, 8)
    assert splits.info.natural_images is False
    sizes = splits.sizes()
    assert sum(sizes.values()) == 1797
    assert 0.55 < sizes["train"] / 1797 < 0.65 and 0.15 < sizes["test"] / 1797 < 0.25
    tr, va, te = _indices(splits.train), _indices(splits.val), _indices(splits.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    x, y = splits.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and 0 <= int(y) < 10
    xb, yb = splits.train.batch(torch.arange(len(splits.train)))
    assert abs(float(xb.mean())) < 1e-3 and abs(float(xb.std()) - 1) < 1e-2  # normalised
    assert set(splits.val.labels.tolist()) == set(range(10))  # stratified
    assert not splits.train.augment  # digits are never flipped or cropped


def test_digits_split_is_deterministic_and_seeded():
    a, b = load_dataset("digits", seed=3), load_dataset("digits", seed=3)
    assert torch.equal(a.val.indices, b.val.indices)
    assert torch.equal(a.train.images, b.train.images)
    c = load_dataset("digits", seed=4)
    assert not torch.equal(a.val.indices, c.val.indices)


def test_digits_subset_and_val_fraction():
    splits = load_dataset("digits", subset=50)
    assert all(n == 50 for n in splits.sizes().values())
    splits = load_dataset("digits", val_fraction=0.1)
    assert 170 < len(splits.val) < 190


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'.*digits.*cifar10.*imagenet32"):
        load_dataset("svhn")


@pytest.mark.parametrize("kwargs", [{"val_fraction": 1.5}, {"subset": 0}, {"seed": "x"}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load_dataset("digits", **kwargs)


def test_stratified_split():
    labels = np.repeat(np.arange(3), 10)
    rest, held = stratified_split(labels, 0.2, seed=0)
    assert len(held) == 6 and len(rest) == 24
    assert np.bincount(labels[held]).tolist() == [2, 2, 2]
    assert not set(rest) & set(held)
    rest, held = stratified_split(np.arange(40) % 10, 0.1, seed=0)  # 4 per class, 0.4 each
    assert len(held) == 4 and len(set((np.arange(40) % 10)[held])) == 4


def test_random_crop_is_a_shifted_window_and_flip():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    ds = ImageTensorDataset(images, torch.tensor([0, 1]), mean=(0.0,), std=(1.0,),
                            crop_padding=1, flip=False, augment=True)
    x, _ = ds.batch(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    for i in range(2):
        windows = [padded[i, :, r : r + 4, c : c + 4] for r in range(3) for c in range(3)]
        assert any(torch.equal(x[i], w) for w in windows)
    ds = ImageTensorDataset(images, torch.tensor([0, 1]), mean=(0.0,), std=(1.0,), flip=True,
                            augment=True)
    seen = set()
    for seed in range(20):
        x, _ = ds.batch(torch.tensor([0]), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(x[0], images[0]) or torch.equal(x[0], images[0].flip(2))
        seen.add(torch.equal(x[0], images[0]))
    assert seen == {True, False}


# -- torchvision on-disk formats, written by the test ------------------------------------------


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, n_train: int = 40, n_test: int = 20) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx_images(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx_labels(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    _write_idx_images(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx_labels(raw / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)


def test_mnist_from_raw_files(tmp_path):
    _fake_mnist(tmp_path)
    splits = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert (splits.info.in_channels, splits.info.num_classes, splits.info.image_size) == (1, 10, 28)
    assert splits.sizes() == {"train": 36, "val": 4, "test": 20}
    assert not splits.train.augment  # no flips for digits
    x, y = splits.test[3]
    assert x.shape == (1, 28, 28) and int(y) == 3
    assert not _indices(splits.train) & _indices(splits.val)


def test_mnist_missing_says_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"download=True.*--download"):
        load_dataset("mnist", data_dir=tmp_path)


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def _fake_cifar10(root: Path, per_batch: int = 10, n_test: int = 10) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _pickle(folder / f"data_batch_{i}", {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": list(range(per_batch)),
        })
    _pickle(folder / "test_batch", {
        "data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
        "labels": [9 - i % 10 for i in range(n_test)],
    })
    _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def test_cifar10_from_pickles(tmp_path):
    _fake_cifar10(tmp_path)
    splits = load_dataset("cifar10", data_dir=tmp_path)
    info = splits.info
    assert (info.in_channels, info.num_classes, info.image_size, info.natural_images) == (
        3, 10, 32, True)
    assert splits.sizes() == {"train": 45, "val": 5, "test": 10}
    assert splits.train.augment and splits.train.crop_padding == 4 and splits.train.flip
    assert not splits.val.augment and not splits.test.augment
    x, y = splits.train.batch(torch.arange(8), generator=torch.Generator().manual_seed(0))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,)
    assert int(splits.test.labels[0]) == 9
    assert not load_dataset("cifar10", data_dir=tmp_path, augment=False).train.augment


def test_cifar100_from_pickles(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("test", 20)):
        _pickle(folder / split, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                 "fine_labels": [i % 100 for i in range(n)]})
    splits = load_dataset("cifar100", data_dir=tmp_path, val_fraction=0.5)
    assert splits.info.num_classes == 100
    assert splits.sizes() == {"train": 100, "val": 100, "test": 20}


def test_cifar_missing_says_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*download=True"):
        load_dataset("cifar10", data_dir=tmp_path)


def _fake_imagenet32(root: Path, per_batch: int = 4, n_val: int = 6) -> None:
    rng = np.random.default_rng(0)
    for i in range(1, 11):
        _pickle(root / f"train_data_batch_{i}", {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": [1 + (i * per_batch + j) % 1000 for j in range(per_batch)],  # 1-indexed
            "mean": np.zeros(3072),
        })
    _pickle(root / "val_data", {"data": rng.integers(0, 256, (n_val, 3072), dtype=np.uint8),
                                "labels": [1000, 1, 2, 3, 4, 5]})


def test_imagenet32_from_batch_files(tmp_path):
    _fake_imagenet32(tmp_path)
    splits = load_dataset("imagenet32", data_dir=tmp_path, val_fraction=0.5)
    info = splits.info
    assert (info.in_channels, info.num_classes, info.image_size) == (3, 1000, 32)
    assert len(splits.train) + len(splits.val) == 40
    assert splits.test.labels.tolist() == [999, 0, 1, 2, 3, 4]  # official val set = test set
    assert splits.train.augment


def test_imagenet32_missing_file_names_path(tmp_path):
    _fake_imagenet32(tmp_path)
    (tmp_path / "train_data_batch_7").unlink()
    with pytest.raises(FileNotFoundError, match="train_data_batch_7.*Imagenet32_train"):
        load_dataset("imagenet32", data_dir=tmp_path)
    (tmp_path / "other").mkdir()
    _fake_imagenet32(tmp_path / "other")
    (tmp_path / "other" / "val_data").unlink()
    with pytest.raises(FileNotFoundError, match="val_data"):
        load_dataset("imagenet32", data_dir=tmp_path / "other")


def test_names_constant():
    assert DATASETS == ("digits", "mnist", "cifar10", "cifar100", "imagenet32", "breast_cancer",
                        "wine", "iris")


@pytest.mark.parametrize("name,features,classes", [("breast_cancer", 30, 2), ("wine", 13, 3),
                                                    ("iris", 4, 3)])
def test_tabular_sets_are_standardised_on_the_training_split_only(name, features, classes):
    splits = load_dataset(name, seed=0)
    info = splits.info
    assert (info.in_channels, info.num_classes, info.image_size) == (features, classes, None)
    assert info.tabular and info.num_features == features
    sizes = splits.sizes()
    total = sum(sizes.values())
    assert abs(sizes["test"] - 0.2 * total) <= 1 and abs(sizes["val"] - 0.2 * total) <= 1
    x, y = splits.train.batch(torch.arange(sizes["train"]))
    assert x.shape == (sizes["train"], features)
    assert torch.allclose(x.mean(0), torch.zeros(features), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(features), atol=1e-3)
    xv, _ = splits.val.batch(torch.arange(sizes["val"]))
    assert not torch.allclose(xv.mean(0), torch.zeros(features), atol=1e-4)  # val not refit
    # stratified: every class in every split, in proportion
    for part in (splits.train, splits.val, splits.test):
        assert set(part.labels.tolist()) == set(range(classes))
    seen = torch.cat([splits.train.indices, splits.val.indices, splits.test.indices])
    assert len(set(seen.tolist())) == total


def test_space_inputs_match_the_family():
    tab = load_dataset("wine").info
    assert tab.space_inputs("mlp") == {"in_channels": 13, "num_classes": 3, "image_size": None}
    with pytest.raises(ValueError, match="dataset 'wine' is tabular .*family 'wrn' takes images"):
        tab.space_inputs("wrn")
    digits = load_dataset("digits").info
    assert digits.space_inputs("densenet") == {"in_channels": 1, "num_classes": 10,
                                                "image_size": 8}
    assert digits.space_inputs("mlp")["in_channels"] == 64


def test_feature_vectors_cannot_be_augmented():
    with pytest.raises(ValueError, match="cannot be augmented"):
        ImageTensorDataset(torch.zeros(4, 3), torch.zeros(4), mean=(0, 0, 0), std=(1, 1, 1),
                           augment=True)
