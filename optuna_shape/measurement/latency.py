"""Inference latency of a network at a fixed batch size on a device.

The model is put in eval mode and run under :func:`torch.inference_mode` on a random input;
after warm-up runs, each timed run is one forward pass timed by :class:`torch.utils.benchmark.Timer`
(which synchronises the GPU around every clock read) with the process's thread count. The result
is the median over the runs, with its spread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from optuna_shape.measurement.hardware import (
    device_name as _device_name,
)
from optuna_shape.measurement.hardware import (
    resolve_device,
    translate_out_of_memory,
)

if TYPE_CHECKING:
    from torch.utils import benchmark

__all__ = ["LatencyResult", "measure_latency"]


@dataclass(frozen=True)
class LatencyResult:
    """The latency of one inference batch.

    Attributes:
        median_ms: Median time of one forward pass of one batch, in milliseconds.
        iqr_ms: Interquartile range (75th - 25th percentile) of the runs, in milliseconds.
        min_ms: Fastest run, in milliseconds.
        max_ms: Slowest run, in milliseconds.
        runs: Number of timed runs (warm-up runs excluded).
        batch_size: Inference batch size (first dimension of the input).
        threads: CPU threads torch used (``torch.get_num_threads`` semantics).
        device: The device measured on, e.g. ``"cpu"`` or ``"cuda:0"``.
        device_name: Hardware name, e.g. the CPU model or ``"NVIDIA H100 80GB HBM3"``.
    """

    median_ms: float
    iqr_ms: float
    min_ms: float
    max_ms: float
    runs: int
    batch_size: int
    threads: int
    device: str
    device_name: str


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(
            "input_shape must be a tuple of positive ints (batch, channels, ...), "
            f"got {input_shape!r}"
        )
    return shape


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def _time_one_run(timer: benchmark.Timer) -> float:
    """Seconds for one run of the timer's statement, without the warm-up ``Timer.timeit`` adds."""
    time_once = getattr(timer, "_timeit", None)
    if time_once is not None:
        return float(time_once(1))
    return float(timer.timeit(1).raw_times[0])  # pragma: no cover - older/newer torch


def measure_latency(
    model: torch.nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    *,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
) -> LatencyResult:
    """Measure the median latency of one forward pass of a batch.

    The model is moved to ``device`` **in place** (``nn.Module.to``) and stays there; its
    train/eval mode is restored afterwards. The input is random normal data of ``input_shape``
    (float32). Out-of-memory errors anywhere in the measurement become
    :class:`~optuna_shape.measurement.ShapeTooLargeError`.

    Args:
        model: The network to time (randomly initialised is fine).
        input_shape: ``(batch, channels, height, width)``; ``batch`` is the batch size.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (see :func:`resolve_device`).
        warmup: Untimed forward passes before timing (the device is synchronised after them).
        repeats: Timed forward passes; the result is their median.
        threads: CPU threads for torch during timing; ``None`` means the process's current
            :func:`torch.get_num_threads` (``torch.utils.benchmark`` alone would use 1).

    Returns:
        The :class:`LatencyResult`.

    Raises:
        ValueError: Bad arguments or an unavailable device.
        ShapeTooLargeError: The model or its activations do not fit in memory.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        >>> result = measure_latency(net, (8, 1, 8, 8), "cpu", warmup=1, repeats=3)
        >>> result.runs, result.batch_size
        (3, 8)
    """
    # imported here, not with the module: importing it makes a CUDA build of torch on a machine
    # without CUDA print "No CUDA runtime is found", and most searches measure no latency
    from torch.utils import benchmark
    from torch.utils.benchmark.utils.common import set_torch_threads

    shape = _check_shape(input_shape)
    _check_count("warmup", warmup, 0)
    _check_count("repeats", repeats, 1)
    if threads is not None:
        _check_count("threads", threads, 1)
    dev = resolve_device(device)
    num_threads = threads if threads is not None else torch.get_num_threads()
    name = _device_name(dev)

    was_training = model.training
    device_context = torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()
    try:
        with translate_out_of_memory(shape, dev), device_context:
            model.to(dev)
            model.eval()
            with torch.inference_mode():
                x = torch.randn(shape, device=dev)
                timer = benchmark.Timer(
                    stmt="model(x)",
                    globals={"model": model, "x": x},
                    num_threads=num_threads,
                    label="optuna-shape latency",
                )
                with set_torch_threads(num_threads):
                    for _ in range(warmup):
                        model(x)
                    _synchronize(dev)
                    times_s = [_time_one_run(timer) for _ in range(repeats)]
                del x, timer
    finally:
        model.train(was_training)

    times_ms = np.asarray(times_s, dtype=float) * 1e3
    q25, q50, q75 = np.percentile(times_ms, [25.0, 50.0, 75.0])
    return LatencyResult(
        median_ms=float(q50),
        iqr_ms=float(q75 - q25),
        min_ms=float(times_ms.min()),
        max_ms=float(times_ms.max()),
        runs=len(times_ms),
        batch_size=shape[0],
        threads=num_threads,
        device=str(dev),
        device_name=name,
    )
