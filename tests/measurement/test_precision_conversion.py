"""Post-training conversion to bf16 and int8 (optuna_shape.measurement.precision), measured on a
network trained on digits; latency and size per precision."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import Conv2d as QuantizedConv2d
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

import optuna_shape as osh
from optuna_shape.measurement.precision import (
    PrecisionUnavailableError,
    convert,
    random_calibration_batches,
)
from optuna_shape.measurement.screening import MeasurementSettings, measure_shape
from optuna_shape.space.precision import PRECISIONS
from optuna_shape.training import (
    TrainConfig,
    calibration_batches,
    evaluate,
    load_dataset,
    train,
)


@pytest.fixture(scope="module")
def trained():
    splits = load_dataset("digits")
    torch.manual_seed(0)
    model = osh.ShapeSpace("wrn", depth=[10], width=[0.5], in_channels=1, num_classes=10,
                           image_size=8).build(osh.Shape(10, 0.5))
    result = train(model, splits, TrainConfig(epochs=3, seed=0))
    return model, splits, result


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_lower_precisions_stay_close_to_fp32_and_leave_the_model_untouched(trained):
    model, splits, result = trained
    before = _state(model)
    model.train()
    calibration = calibration_batches(splits.train, TrainConfig(seed=0))
    assert len(calibration) == 4 and calibration[0].shape == (128, 1, 8, 8)
    bf16 = convert(model, "bf16")
    int8 = convert(model, "int8", calibration)
    assert model.training, "the original keeps its mode"
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    assert convert(model, "fp32") is model

    assert any(isinstance(m, QuantizedConv2d) for m in int8.modules()), "static int8 convs"
    assert next(bf16.parameters()).dtype == torch.bfloat16
    model.eval()
    x = next(iter(torch.utils.data.DataLoader(splits.val, batch_size=256)))[0]
    with torch.inference_mode():
        ref, out16, out8 = model(x), bf16(x), int8(x)
    assert out16.dtype == out8.dtype == torch.float32
    agree16 = (out16.argmax(1) == ref.argmax(1)).float().mean().item()
    agree8 = (out8.argmax(1) == ref.argmax(1)).float().mean().item()
    assert agree16 >= 0.97 and agree8 >= 0.9, (agree16, agree8)

    fp32_acc = evaluate(model, splits.val)
    assert fp32_acc == result.val_accuracy
    assert fp32_acc > 50, "the network learned something"
    for converted in (bf16, int8):
        assert abs(evaluate(converted, splits.val, amp=False) - fp32_acc) <= 5.0


def test_linear_only_networks_get_dynamic_int8_without_calibration():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    small = convert(net, "int8")
    assert sum(isinstance(m, DynamicQuantizedLinear) for m in small.modules()) == 2
    x = torch.randn(16, 1, 8, 8)
    assert torch.allclose(small(x), net(x), atol=0.05)
    assert isinstance(net[1], nn.Linear) and net[1].weight.dtype == torch.float32


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.sum() > 0 else self.conv(-x)


def test_conversion_errors_are_clear():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 10))
    with pytest.raises(ValueError, match="needs calibration_batches"):
        convert(net, "int8")
    with pytest.raises(PrecisionUnavailableError, match="CPU only"):
        convert(net, "int8", random_calibration_batches((2, 1, 8, 8)), device="cuda")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        convert(net, "fp16")
    with pytest.raises(PrecisionUnavailableError, match="symbolically traceable"):
        convert(_Branchy(), "int8", random_calibration_batches((2, 1, 8, 8)))
    with pytest.raises(PrecisionUnavailableError, match="no Linear or convolution"):
        convert(nn.Sequential(nn.ReLU()), "int8")


def test_screening_measures_latency_per_precision_and_records_cuda_int8_as_error():
    space = osh.ShapeSpace("wrn", depth=[10], width=[0.5], in_channels=1, num_classes=10,
                           image_size=8, precision=PRECISIONS)
    shape = space.shapes[0]
    settings = MeasurementSettings(warmup=1, repeats=3)
    plain = measure_shape(space, shape, settings, latency=True, energy=False)
    assert "precision" not in plain and plain["latency_ms"] > 0
    for precision in ("bf16", "int8"):
        record = measure_shape(space, shape, settings, latency=True, energy=False,
                               precision=precision)
        assert "error" not in record, record
        assert record["precision"] == precision and record["latency_ms"] > 0
        assert record["latency_runs"] == 3
    cuda = measure_shape(space, shape, MeasurementSettings(device="cuda"), latency=True,
                         energy=False, precision="int8")
    assert "CPU only" in cuda["error"] and "latency_ms" not in cuda
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        measure_shape(space, shape, settings, latency=True, energy=False, precision="int4")
