"""Tests for optuna_shape.measurement.hardware (device resolution, names, hardware keys, OOM)."""

from __future__ import annotations

import pytest
import torch

from optuna_shape.measurement import (
    MeasurementError,
    ShapeTooLargeError,
    device_name,
    hardware_key,
    resolve_device,
    translate_out_of_memory,
)

# The lead's pyproject declares the markers `gpu` (needs CUDA) and `slow`.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_resolve_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu0", "", "cuda:x", "banana"])
def test_resolve_unknown_string(bad: str) -> None:
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


def test_resolve_unsupported_type() -> None:
    with pytest.raises(ValueError, match="'meta' is not a device: use cpu, cuda, cuda:N or mps"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_resolve_cuda_without_gpu() -> None:
    with pytest.raises(ValueError, match=r"torch\.cuda\.is_available\(\) is False"):
        resolve_device("cuda")


def test_device_name_cpu() -> None:
    name = device_name("cpu")
    assert isinstance(name, str) and name


def test_hardware_key_cpu() -> None:
    key = hardware_key("cpu", threads=2, batch_size=128)
    parts = key.split("|")
    assert parts[0] == "cpu"
    assert parts[1] == device_name("cpu").replace("|", "/")
    assert parts[2:] == ["threads=2", "batch=128", f"torch={torch.__version__}"]
    assert key == hardware_key("cpu", threads=2, batch_size=128)  # stable
    assert key != hardware_key("cpu", threads=1, batch_size=128)
    assert key != hardware_key("cpu", threads=2, batch_size=1)


def test_hardware_key_default_threads() -> None:
    key = hardware_key("cpu", threads=None, batch_size=1)
    assert f"|threads={torch.get_num_threads()}|" in key


@pytest.mark.parametrize(
    ("threads", "batch"), [(0, 1), (2, 0), (None, -1), (1.5, 1), (True, 1), (1, 2.0)]
)
def test_hardware_key_bad_values(threads: object, batch: object) -> None:
    with pytest.raises(ValueError):
        hardware_key("cpu", threads=threads, batch_size=batch)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"),
        RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried"),
        MemoryError(),
    ],
)
def test_translate_out_of_memory(error: BaseException) -> None:
    with pytest.raises(ShapeTooLargeError) as info:
        with translate_out_of_memory((128, 3, 32, 32), "cuda:0"):
            raise error
    message = str(info.value)
    assert "(128, 3, 32, 32)" in message and "'cuda:0'" in message
    assert isinstance(info.value, MeasurementError)
    assert info.value.__cause__ is None  # dropped so the tensors it held are freed


def test_translate_out_of_memory_leaves_other_errors() -> None:
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with translate_out_of_memory((1, 3, 8, 8), "cpu"):
            raise RuntimeError("shape mismatch")
    with pytest.raises(KeyError):
        with translate_out_of_memory((1, 3, 8, 8), "cpu"):
            raise KeyError("x")


@pytest.mark.gpu
@needs_cuda
def test_cuda_key_and_name_on_gpu() -> None:
    dev = resolve_device("cuda")
    assert dev.type == "cuda" and dev.index is not None
    name = device_name(dev)
    assert name == torch.cuda.get_device_name(dev)
    key = hardware_key("cuda", threads=4, batch_size=1)
    assert key == f"cuda|{name.replace('|', '/')}|batch=1|torch={torch.__version__}"
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
