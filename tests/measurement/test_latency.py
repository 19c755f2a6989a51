"""Tests for optuna_shape.measurement.latency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_shape.measurement import (
    LatencyResult,
    ShapeTooLargeError,
    device_name,
    measure_latency,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))


class _Recorder(nn.Module):
    """Counts forward passes and records the mode and grad state they ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.calls = 0
        self.modes: set[bool] = set()
        self.grad: set[bool] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes.add(self.training)
        self.grad.add(torch.is_grad_enabled())
        return self.lin(x)


class _Raises(nn.Module):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


def test_latency_tiny_model_cpu() -> None:
    result = measure_latency(_tiny(), (8, 1, 8, 8), "cpu", warmup=2, repeats=7, threads=1)
    assert isinstance(result, LatencyResult)
    assert result.runs == 7
    assert result.batch_size == 8
    assert result.threads == 1
    assert result.device == "cpu"
    assert result.device_name == device_name("cpu")
    assert 0 < result.min_ms <= result.median_ms <= result.max_ms
    assert 0 <= result.iqr_ms <= result.max_ms - result.min_ms


def test_latency_default_threads_is_process_count() -> None:
    before = torch.get_num_threads()
    result = measure_latency(_tiny(), (2, 1, 8, 8), warmup=0, repeats=1)
    assert result.threads == before
    assert torch.get_num_threads() == before  # restored


def test_latency_runs_eval_inference_and_restores_mode() -> None:
    model = _Recorder()
    model.train()
    result = measure_latency(model, (3, 4), "cpu", warmup=2, repeats=5)
    assert model.calls == 2 + 5  # warm-up plus exactly one pass per timed run
    assert model.modes == {False} and model.grad == {False}
    assert model.training  # caller's mode restored
    assert result.runs == 5 and result.batch_size == 3


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB"),
        MemoryError(),
    ],
)
def test_latency_out_of_memory_is_shape_too_large(error: BaseException) -> None:
    model = _Raises(error)
    model.train()
    with pytest.raises(ShapeTooLargeError, match=r"\(64, 3, 32, 32\).*'cpu'"):
        measure_latency(model, (64, 3, 32, 32), "cpu", warmup=1, repeats=2)
    assert model.training


def test_latency_other_errors_pass_through() -> None:
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        measure_latency(_tiny(), (2, 1, 4, 4), "cpu", warmup=1, repeats=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": (0, 1, 8, 8)},
        {"input_shape": (8,)},
        {"input_shape": (2, 1.5, 8, 8)},
        {"repeats": 0},
        {"warmup": -1},
        {"threads": 0},
        {"device": "banana"},
    ],
)
def test_latency_bad_arguments(kwargs: dict) -> None:
    args = {"input_shape": (2, 1, 8, 8), **kwargs}
    with pytest.raises(ValueError):
        measure_latency(_tiny(), **args)


@pytest.mark.gpu
@needs_cuda
def test_latency_cuda_real() -> None:
    model = _tiny()
    result = measure_latency(model, (32, 1, 8, 8), "cuda", warmup=3, repeats=10)
    assert result.device.startswith("cuda:")
    assert result.device_name == torch.cuda.get_device_name(result.device)
    assert result.runs == 10 and 0 < result.min_ms <= result.median_ms <= result.max_ms
    assert next(model.parameters()).device.type == "cuda"  # moved in place, documented


@pytest.mark.gpu
@needs_cuda
def test_latency_cuda_real_out_of_memory() -> None:
    free, _ = torch.cuda.mem_get_info()
    elements = int(free // 4) + 1  # one more float32 than fits
    with pytest.raises(ShapeTooLargeError, match="cuda"):
        measure_latency(nn.Identity(), (elements, 1), "cuda", warmup=1, repeats=1)
    torch.cuda.synchronize()


def test_nothing_imports_torch_benchmark_until_latency_is_measured() -> None:
    """``torch.utils.benchmark`` prints torch's "No CUDA runtime is found" warning on a CPU-only
    machine with a CUDA build of torch: a search that measures no latency never imports it."""
    import subprocess
    import sys

    code = """
import sys
import optuna
import optuna_shape as osh
import optuna_shape.measurement as m
from optuna_shape.training import TrainConfig, make_objective

space = osh.ShapeSpace("wrn", depth=(10, 28, 6), width=(0.25, 2.0, 0.25), in_channels=1,
                       num_classes=10, image_size=8)
sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=0.5), goal="accuracy", seed=0)
study = optuna.create_study(direction="maximize", sampler=sampler)
objective = make_objective(space, "digits", config=TrainConfig(epochs=1))
m.resolve_device("cpu"), m.hardware_key("cpu", threads=1, batch_size=1)
print("torch.utils.benchmark" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]
    assert "No CUDA runtime" not in proc.stderr
