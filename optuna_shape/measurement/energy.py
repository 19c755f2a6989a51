"""Energy per inference batch on NVIDIA GPUs through NVML.

Two methods, chosen per device:

* ``"energy_counter"`` (Volta and newer): difference NVML's total-energy counter
  (``nvmlDeviceGetTotalEnergyConsumption``, millijoules) over a window of at least
  ``min_window_s`` seconds of back-to-back forward passes. The counter updates about every
  100 ms, hence the one-second default window.
* ``"power_sampling"`` (the paper's method, where the counter raises ``NVMLError_NotSupported``):
  sample ``nvmlDeviceGetPowerUsage`` (milliwatts) in a background thread while forward passes
  run, wait until the power has stabilised, then integrate the samples over a window
  (trapezoid rule).

The GPU is synchronised before every clock read that bounds a window. Without a CUDA device, without
``pynvml`` (package ``nvidia-ml-py``) or when NVML cannot start, :class:`EnergyUnavailableError`
is raised; nothing is ever estimated. The NVML module and the clock are injectable so tests can
use fakes and exact arithmetic.

One module: :func:`measure_energy` opens the NVML session (module and device handle) that both
window methods and the power sampler read, and closes it; the tests drive that whole path through
one injected fake NVML.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from optuna_shape.measurement.hardware import (
    MeasurementError,
    resolve_device,
    translate_out_of_memory,
)

__all__ = [
    "EnergyResult",
    "EnergyUnavailableError",
    "energy_available",
    "measure_energy",
    "measure_energy_window",
]

Clock = Callable[[], float]

_FIX = (
    "Energy limits and the energy goal need an NVIDIA GPU with its driver and NVML: run on such "
    "a machine, install NVML's Python binding with `pip install nvidia-ml-py`, and measure with "
    "`--device cuda` (device='cuda'); or drop the energy limit/goal."
)


class EnergyUnavailableError(MeasurementError):
    """Energy cannot be measured here (no CUDA device, no ``pynvml``, or NVML failed)."""


@dataclass(frozen=True)
class EnergyResult:
    """Energy of one inference batch, measured over a window of repeated batches.

    Attributes:
        joules_per_batch: Energy of one forward pass of one batch, in joules.
        batches: Forward passes run inside the measurement window.
        window_s: Length of the measurement window, in seconds.
        method: ``"energy_counter"`` or ``"power_sampling"`` (see the module docs).
        device_name: GPU name as NVML reports it, e.g. ``"NVIDIA H100 80GB HBM3"``.
        mean_power_w: Mean board power over the window, in watts.
    """

    joules_per_batch: float
    batches: int
    window_s: float
    method: Literal["energy_counter", "power_sampling"]
    device_name: str
    mean_power_w: float


# --------------------------------------------------------------------------------------------
# NVML access


def _nvml_error_types(nvml: Any) -> tuple[type[BaseException], ...]:
    error = getattr(nvml, "NVMLError", None)
    return (error,) if isinstance(error, type) else ()


def _is_not_supported(nvml: Any, exc: BaseException) -> bool:
    not_supported = getattr(nvml, "NVMLError_NotSupported", None)
    return isinstance(not_supported, type) and isinstance(exc, not_supported)


def _start_nvml(nvml: Any | None) -> Any:
    """Import (unless given) and initialise NVML, or raise :class:`EnergyUnavailableError`."""
    if nvml is None:
        try:
            import pynvml as nvml  # noqa: PLC0415 - optional dependency, imported on use
        except ImportError as exc:
            raise EnergyUnavailableError(f"pynvml is not installed ({exc}). {_FIX}") from exc
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        raise EnergyUnavailableError(f"NVML could not start ({exc}). {_FIX}") from exc
    return nvml


def _stop_nvml(nvml: Any) -> None:
    with contextlib.suppress(Exception):
        nvml.nvmlShutdown()


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _normalise_uuid(uuid: str) -> str:
    uuid = uuid.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if uuid.startswith(prefix):
            return uuid[len(prefix) :]
    return uuid


def _nvml_handle(nvml: Any, cuda_index: int, uuid: str | None, visible_devices: str | None) -> Any:
    """The NVML handle of torch's CUDA device ``cuda_index``.

    NVML numbers all physical GPUs and ignores ``CUDA_VISIBLE_DEVICES``, torch numbers only the
    visible ones. Matching is by UUID where torch gives one; otherwise the index is translated
    through ``CUDA_VISIBLE_DEVICES`` (integers or UUIDs); otherwise the index is used as is.
    """
    if uuid:
        wanted = _normalise_uuid(uuid)
        for i in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            if _normalise_uuid(_as_str(nvml.nvmlDeviceGetUUID(handle))) == wanted:
                return handle
    if visible_devices is not None and visible_devices.strip():
        entries = [e.strip() for e in visible_devices.split(",") if e.strip()]
        if cuda_index < len(entries):
            entry = entries[cuda_index]
            if entry.isdigit():
                return nvml.nvmlDeviceGetHandleByIndex(int(entry))
            return nvml.nvmlDeviceGetHandleByUUID(entry)
    return nvml.nvmlDeviceGetHandleByIndex(cuda_index)


def _torch_uuid(dev: torch.device) -> str | None:
    uuid = getattr(torch.cuda.get_device_properties(dev), "uuid", None)
    return None if uuid is None else _as_str(uuid)


def _open_device(device: str | torch.device, nvml: Any | None) -> tuple[torch.device, Any, Any]:
    """Resolve a CUDA device and start NVML on it: ``(device, nvml, handle)``.

    The caller must call :func:`_stop_nvml` on the returned module.
    """
    try:
        dev = resolve_device(device)
    except ValueError as exc:
        raise EnergyUnavailableError(f"{exc}. {_FIX}") from exc
    if dev.type != "cuda":
        raise EnergyUnavailableError(
            f"energy can only be measured on a CUDA device, got device {str(dev)!r}. {_FIX}"
        )
    nvml = _start_nvml(nvml)
    try:
        handle = _nvml_handle(
            nvml, dev.index or 0, _torch_uuid(dev), os.environ.get("CUDA_VISIBLE_DEVICES")
        )
    except Exception as exc:
        _stop_nvml(nvml)
        raise EnergyUnavailableError(
            f"NVML has no handle for CUDA device {str(dev)!r} ({exc}). {_FIX}"
        ) from exc
    return dev, nvml, handle


def _nvml_name(nvml: Any, handle: Any, fallback: str) -> str:
    try:
        return _as_str(nvml.nvmlDeviceGetName(handle))
    except Exception:
        return fallback


def energy_available(
    device: str | torch.device = "cuda", *, nvml: Any | None = None
) -> tuple[bool, str]:
    """Whether energy can be measured on ``device``, and why (not).

    Args:
        device: The device energy would be measured on.
        nvml: An NVML module to use instead of ``pynvml`` (tests).

    Returns:
        ``(True, description)`` naming the GPU and the method that will be used, or
        ``(False, reason)`` with the reason and how to fix it.

    Example:
        >>> ok, reason = energy_available("cpu")
        >>> ok
        False
    """
    try:
        dev, nvml, handle = _open_device(device, nvml)
    except EnergyUnavailableError as exc:
        return False, str(exc)
    try:
        name = _nvml_name(nvml, handle, str(dev))
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            method = "energy_counter"
        except Exception as exc:
            if not _is_not_supported(nvml, exc):
                return False, f"NVML cannot read energy on {name} ({exc}). {_FIX}"
            try:
                nvml.nvmlDeviceGetPowerUsage(handle)
            except Exception as exc2:
                return False, f"NVML can read neither energy nor power on {name} ({exc2})."
            method = "power_sampling"
        return True, f"energy measurable on {dev} ({name}) by {method}"
    finally:
        _stop_nvml(nvml)


# --------------------------------------------------------------------------------------------
# Windows


def _integrate_power(samples: list[tuple[float, float]], t0: float, t1: float) -> float:
    """Energy in joules over ``[t0, t1]`` from ``(time_s, power_w)`` samples (trapezoid rule).

    Power is taken as piecewise linear between samples, linearly interpolated at the window
    edges and held constant beyond the first/last sample.
    """
    if t1 < t0:
        raise ValueError(f"window end {t1} is before its start {t0}")
    if not samples:
        raise MeasurementError("no power samples were taken in the measurement window")
    ordered = sorted(samples, key=lambda s: s[0])
    ts = np.array([s[0] for s in ordered], dtype=float)
    ws = np.array([s[1] for s in ordered], dtype=float)
    inside = (ts > t0) & (ts < t1)
    xs = np.concatenate(([t0], ts[inside], [t1]))
    ys = np.concatenate(([np.interp(t0, ts, ws)], ws[inside], [np.interp(t1, ts, ws)]))
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))


def _power_stable(
    samples: list[tuple[float, float]], now: float, window_s: float, rel_tol: float
) -> bool:
    """Whether mean power over ``(now - w, now]`` is within ``rel_tol`` of that over the window
    before it. False until the samples reach back at least two windows."""
    if not samples or min(t for t, _ in samples) > now - 2 * window_s:
        return False
    recent = [w for t, w in samples if now - window_s < t <= now]
    before = [w for t, w in samples if now - 2 * window_s < t <= now - window_s]
    if not recent or not before:
        return False
    m_recent, m_before = float(np.mean(recent)), float(np.mean(before))
    return abs(m_recent - m_before) <= rel_tol * max(abs(m_before), 1e-12)


class _PowerSampler:
    """Records ``(clock(), watts)`` samples, from the caller and from an optional thread."""

    def __init__(self, nvml: Any, handle: Any, clock: Clock, interval_s: float | None) -> None:
        self._nvml, self._handle, self._clock = nvml, handle, clock
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.samples: list[tuple[float, float]] = []

    def sample(self) -> float:
        with self._lock:
            t = self._clock()
            watts = self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            self.samples.append((t, watts))
        return t

    def snapshot(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self.samples)

    def _run(self) -> None:
        assert self._interval_s is not None
        while not self._stop.wait(self._interval_s):
            try:
                self.sample()
            except Exception as exc:  # surfaced by stop()
                self._error = exc
                return

    def __enter__(self) -> _PowerSampler:
        if self._interval_s is not None:
            self._thread = threading.Thread(
                target=self._run, name="optuna-shape-power-sampler", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise MeasurementError(f"NVML power sampling failed: {self._error}")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def measure_energy_window(
    run_batch: Callable[[], object],
    *,
    nvml: Any,
    handle: Any,
    sync: Callable[[], None] = lambda: None,
    clock: Clock = time.perf_counter,
    min_window_s: float = 1.0,
    device_name: str = "",
    sample_interval_s: float | None = 0.02,
    stable_window_s: float = 0.5,
    stable_rel_tol: float = 0.02,
    max_stabilise_s: float = 30.0,
) -> EnergyResult:
    """Measure the energy of ``run_batch`` on an NVML device already opened by the caller.

    This is the device-independent core of :func:`measure_energy`: it only calls
    ``run_batch``, ``sync``, ``clock`` and NVML, so tests can drive it with fakes.
    ``sync`` is called before every clock read that bounds a window or a sample taken from
    this thread.

    Args:
        run_batch: Runs one inference batch (asynchronously is fine).
        nvml: The NVML module (``pynvml`` or a fake), already initialised.
        handle: The NVML device handle.
        sync: Waits for the device to finish queued work (``torch.cuda.synchronize``).
        clock: Monotonic clock in seconds.
        min_window_s: Minimum length of the measurement window, in seconds.
        device_name: Name to put in the result (defaults to NVML's name for the handle).
        sample_interval_s: Power-sampling period of the background thread, in seconds; ``None``
            samples only between batches (deterministic; for tests).
        stable_window_s: Power is stable when the mean over the last ``stable_window_s`` seconds
            is within ``stable_rel_tol`` of the mean over the window before it.
        stable_rel_tol: Relative tolerance of that comparison.
        max_stabilise_s: Give up waiting for stability after this many seconds (with a warning)
            and measure anyway.

    Returns:
        The :class:`EnergyResult`.

    Raises:
        MeasurementError: NVML failed while reading.

    Example:
        >>> # with pynvml initialised and h = pynvml.nvmlDeviceGetHandleByIndex(0):
        >>> # measure_energy_window(lambda: model(x), nvml=pynvml, handle=h,
        >>> #                       sync=torch.cuda.synchronize).joules_per_batch
    """
    _check_positive("min_window_s", min_window_s)
    _check_positive("stable_window_s", stable_window_s)
    _check_positive("max_stabilise_s", max_stabilise_s)
    if sample_interval_s is not None:
        _check_positive("sample_interval_s", sample_interval_s)
    name = device_name or _nvml_name(nvml, handle, "unknown NVIDIA GPU")
    nvml_errors = _nvml_error_types(nvml)

    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        counter = True
    except Exception as exc:
        if not _is_not_supported(nvml, exc):
            raise MeasurementError(f"NVML failed reading the energy counter: {exc}") from exc
        counter = False

    try:
        if counter:
            return _counter_window(run_batch, nvml, handle, sync, clock, min_window_s, name)
        return _sampling_window(
            run_batch,
            nvml,
            handle,
            sync,
            clock,
            min_window_s,
            name,
            sample_interval_s,
            stable_window_s,
            stable_rel_tol,
            max_stabilise_s,
        )
    except nvml_errors as exc:
        raise MeasurementError(f"NVML failed during energy measurement: {exc}") from exc


def _counter_window(
    run_batch: Callable[[], object],
    nvml: Any,
    handle: Any,
    sync: Callable[[], None],
    clock: Clock,
    min_window_s: float,
    name: str,
) -> EnergyResult:
    sync()
    t0 = clock()
    e0_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    batches, t1 = _batches_over(run_batch, sync, clock, t0, min_window_s)
    e1_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    return _result((e1_mj - e0_mj) / 1000.0, batches, t1 - t0, "energy_counter", name)


def _batches_over(run_batch: Callable[[], object], sync: Callable[[], None],
                  clock: Callable[[], float], t0: float, min_window_s: float
                  ) -> tuple[int, float]:
    """Run whole batches from ``t0`` until ``min_window_s`` has passed: (batches, end time)."""
    batches = 0
    while True:
        run_batch()
        batches += 1
        sync()
        t1 = clock()
        if t1 - t0 >= min_window_s:
            return batches, t1


def _result(joules: float, batches: int, window_s: float, method: str, name: str
            ) -> EnergyResult:
    return EnergyResult(
        joules_per_batch=joules / batches,
        batches=batches,
        window_s=window_s,
        method=method,
        device_name=name,
        mean_power_w=joules / window_s,
    )


def _sampling_window(
    run_batch: Callable[[], object],
    nvml: Any,
    handle: Any,
    sync: Callable[[], None],
    clock: Clock,
    min_window_s: float,
    name: str,
    sample_interval_s: float | None,
    stable_window_s: float,
    stable_rel_tol: float,
    max_stabilise_s: float,
) -> EnergyResult:
    with _PowerSampler(nvml, handle, clock, sample_interval_s) as sampler:
        sync()
        start = sampler.sample()
        while True:  # run until the power draw has settled
            run_batch()
            sync()
            now = sampler.sample()
            if _power_stable(sampler.snapshot(), now, stable_window_s, stable_rel_tol):
                break
            if now - start >= max_stabilise_s:
                warnings.warn(
                    f"GPU power did not stabilise within {max_stabilise_s} s "
                    f"(relative tolerance {stable_rel_tol}); measuring energy anyway",
                    RuntimeWarning,
                    stacklevel=4,
                )
                break
        t0 = now
        batches, t1 = _batches_over(run_batch, sync, sampler.sample, t0, min_window_s)
    joules = _integrate_power(sampler.snapshot(), t0, t1)
    return _result(joules, batches, t1 - t0, "power_sampling", name)


def measure_energy(
    model: torch.nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cuda",
    *,
    min_window_s: float = 1.0,
    warmup: int = 3,
    nvml: Any | None = None,
    clock: Clock = time.perf_counter,
    sample_interval_s: float | None = 0.02,
    stable_window_s: float = 0.5,
    stable_rel_tol: float = 0.02,
    max_stabilise_s: float = 30.0,
) -> EnergyResult:
    """Measure the energy of one inference batch of ``model`` on an NVIDIA GPU.

    The model is moved to ``device`` in place and stays there; its train/eval mode is restored
    afterwards. It runs in eval mode under :func:`torch.inference_mode` on random input of
    ``input_shape``; ``warmup`` batches run first, then :func:`measure_energy_window` measures.

    Args:
        model: The network (randomly initialised is fine).
        input_shape: ``(batch, channels, height, width)``.
        device: A CUDA device: ``"cuda"`` or ``"cuda:N"``.
        min_window_s: Minimum measurement window in seconds (the energy counter ticks about
            every 100 ms, so keep it around a second or more).
        warmup: Untimed batches before measuring.
        nvml: An NVML module to use instead of ``pynvml`` (tests).
        clock: Monotonic clock in seconds (tests).
        sample_interval_s: See :func:`measure_energy_window`.
        stable_window_s: See :func:`measure_energy_window`.
        stable_rel_tol: See :func:`measure_energy_window`.
        max_stabilise_s: See :func:`measure_energy_window`.

    Returns:
        The :class:`EnergyResult`; ``joules_per_batch`` is the energy of one batch.

    Raises:
        EnergyUnavailableError: No CUDA device, no ``pynvml``, or NVML cannot start / find the
            device. The message says how to fix it.
        ShapeTooLargeError: The model or its activations do not fit in GPU memory.
        MeasurementError: NVML failed while measuring.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        >>> ok, reason = energy_available("cuda")
        >>> result = measure_energy(net, (128, 1, 8, 8), "cuda") if ok else None
    """
    shape = tuple(input_shape)
    if len(shape) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(
            "input_shape must be a tuple of positive ints (batch, channels, ...), "
            f"got {input_shape!r}"
        )
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    dev, nvml, handle = _open_device(device, nvml)
    was_training = model.training
    try:
        name = _nvml_name(nvml, handle, torch.cuda.get_device_name(dev))
        with translate_out_of_memory(shape, dev), torch.cuda.device(dev):
            model.to(dev)
            model.eval()
            with torch.inference_mode():
                x = torch.randn(shape, device=dev)

                def run_batch() -> None:
                    model(x)

                def sync() -> None:
                    torch.cuda.synchronize(dev)

                for _ in range(warmup):
                    run_batch()
                sync()
                return measure_energy_window(
                    run_batch,
                    nvml=nvml,
                    handle=handle,
                    sync=sync,
                    clock=clock,
                    min_window_s=min_window_s,
                    device_name=name,
                    sample_interval_s=sample_interval_s,
                    stable_window_s=stable_window_s,
                    stable_rel_tol=stable_rel_tol,
                    max_stabilise_s=max_stabilise_s,
                )
    finally:
        model.train(was_training)
        _stop_nvml(nvml)
