"""The default trainer on digits with tiny wide ResNets (1–2 epochs, a second or two each)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from optuna_shape.families import WideResNet
from optuna_shape.training import (
    DatasetInfo,
    Splits,
    TrainConfig,
    TrainResult,
    evaluate,
    evaluate_precisions,
    load_dataset,
    train,
)


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_dataset("digits")


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return WideResNet(10, 0.25, in_channels=1, num_classes=10)


def test_train_digits_two_epochs(digits):
    epochs_seen, batches = [], []
    result = train(_tiny(), digits, TrainConfig(epochs=2),
                   on_epoch=lambda e, a: epochs_seen.append((e, a)),
                   on_batch=lambda e, s, n: batches.append((e, s, n)))
    assert isinstance(result, TrainResult)
    assert 0 <= result.val_accuracy <= 100 and 0 <= result.test_accuracy <= 100
    assert result.accuracy == result.val_accuracy == result.curve[-1]
    assert len(result.curve) == len(result.losses) == result.epochs == 2
    assert [e for e, _ in epochs_seen] == [1, 2] and [a for _, a in epochs_seen] == result.curve
    steps = math.ceil(len(digits.train) / 128)
    assert batches[-1] == (2, steps, steps) and len(batches) == 2 * steps
    assert result.best_epoch in (1, 2) and not result.diverged
    assert result.val_accuracy > 20  # learns something in two epochs
    assert result.extra["lr_milestones_epochs"] == [1, 1, 2]


def test_same_seed_same_result(digits):
    config = TrainConfig(epochs=1, seed=7)
    a = train(_tiny(), digits, config)
    b = train(_tiny(), digits, config)
    assert a.curve == b.curve and a.losses == b.losses and a.test_accuracy == b.test_accuracy


def test_select_on_test(digits):
    result = train(_tiny(), digits, TrainConfig(epochs=1, select_on="test"))
    assert result.accuracy == result.test_accuracy == result.curve[-1]
    assert 0 <= result.val_accuracy <= 100


class _NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


def test_nan_loss_stops_and_returns_nan(digits):
    seen = []
    result = train(_NaNModel(), digits, TrainConfig(epochs=50),
                   on_epoch=lambda e, a: seen.append(e))
    assert result.diverged and math.isnan(result.val_accuracy) and math.isnan(result.test_accuracy)
    assert math.isnan(result.accuracy) and result.epochs == 1 and seen == []


def test_huge_learning_rate_diverges(digits):
    result = train(_tiny(), digits, TrainConfig(epochs=3, lr=1e6))
    assert result.diverged and math.isnan(result.accuracy)


def test_plain_tensor_datasets_work():
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
    splits = Splits(TensorDataset(x, y), TensorDataset(x[:16], y[:16]), None,
                    DatasetInfo("mine", 1, 3, 8, natural_images=False))
    result = train(WideResNet(10, 0.25, 1, 3), splits, TrainConfig(epochs=1, batch_size=16))
    assert len(result.curve) == 1 and math.isnan(result.test_accuracy)
    with pytest.raises(ValueError, match="no test set"):
        train(WideResNet(10, 0.25, 1, 3), splits, TrainConfig(epochs=1, select_on="test"))


def test_evaluate_in_percent(digits):
    assert 0 <= evaluate(_tiny(), digits.val) <= 100


def test_evaluate_precisions_is_repeatable_and_scores_fp32_as_training_does(digits):
    model = _tiny()
    config = TrainConfig(epochs=1)
    result = train(model, digits, config)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    first = evaluate_precisions(model, digits, "int8,bf16,fp32", config)
    second = evaluate_precisions(model, digits, ["fp32", "bf16", "int8"], config)
    assert first == second
    assert list(first) == ["val", "test"] and list(first["val"]) == ["fp32", "bf16", "int8"]
    assert first["val"]["fp32"] == result.val_accuracy
    assert first["test"]["fp32"] == result.test_accuracy
    assert all(0 <= a <= 100 for scores in first.values() for a in scores.values())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    no_test = Splits(digits.train, digits.val, None, digits.info)
    assert list(evaluate_precisions(model, no_test, "int8", config)) == ["val"]
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        evaluate_precisions(model, digits, "int4", config)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"lr": float("nan")}, "lr=nan"),
        ({"momentum": 1.5}, "momentum=1.5"),
        ({"momentum": 0.0}, "nesterov=True needs momentum > 0"),
        ({"weight_decay": -1}, "weight_decay=-1"),
        ({"lr_milestones": (0.6, 0.3)}, r"lr_milestones=\(0.6, 0.3\)"),
        ({"lr_milestones": (0.5, 2.0)}, "lr_milestones"),
        ({"lr_gamma": 0}, "lr_gamma=0"),
        ({"device": "banana"}, "device 'banana' is not a device: use cpu, cuda, cuda:N or mps"),
        ({"amp": "yes"}, "amp='yes'"),
        ({"select_on": "train"}, "select_on='train'"),
        ({"num_workers": -1}, "num_workers=-1"),
        ({"threads": 0}, "threads=0"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_amp_needs_cuda(digits):
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        train(_tiny(), digits, TrainConfig(epochs=1, amp=True))


def test_config_round_trip_and_default_epochs():
    config = TrainConfig(epochs=3, lr_milestones=[0.5])
    assert config.lr_milestones == (0.5,)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig().epochs_for("digits") == 10
    assert TrainConfig().epochs_for("cifar10") == 200


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp(digits):  # pragma: no cover - run on a GPU machine
    result = train(_tiny(), digits, TrainConfig(epochs=2, device="cuda"))
    assert result.extra["amp"] is True and 0 <= result.val_accuracy <= 100
