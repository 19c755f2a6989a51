"""Tests for optuna_shape.measurement.energy with a fake NVML and a fake clock.

No NVIDIA driver exists on the build machines, so the NVML library and the clock are replaced
by fakes and the expected energies are exact arithmetic (dyadic times, integer millijoules). The
real path is checked by the tests marked ``gpu`` on a machine with an NVIDIA GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
from torch import nn

from optuna_shape.measurement import (
    EnergyResult,
    EnergyUnavailableError,
    MeasurementError,
    energy_available,
    measure_energy,
    measure_energy_window,
)
from optuna_shape.measurement.energy import _integrate_power, _nvml_handle, _power_stable

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class FakeClock:
    """A clock that only moves when the fake GPU runs a batch; checks sync before each read."""

    def __init__(self, start: float = 10.0) -> None:
        self.now = start
        self.synced = False
        self.reads = 0

    def sync(self) -> None:
        self.synced = True

    def __call__(self) -> float:
        assert self.synced, "clock read without synchronising the GPU first"
        self.synced = False
        self.reads += 1
        return self.now


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's name
    pass


class FakeNVML:
    """The parts of pynvml measurement uses. Power and energy are functions of fake time."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported

    def __init__(
        self,
        clock: FakeClock,
        power_w: Callable[[float], float] = lambda t: 200.0,
        counter: bool = True,
        uuids: tuple[str, ...] = ("GPU-aaaa", "GPU-bbbb"),
    ) -> None:
        self.clock, self.power_w, self.counter, self.uuids = clock, power_w, counter, uuids
        self.energy_reads = 0

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names below
        pass

    def nvmlShutdown(self) -> None:  # noqa: N802
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        if not 0 <= i < len(self.uuids):
            raise NVMLError("invalid argument")
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:  # noqa: N802
        return self.uuids.index(uuid)

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return self.uuids[handle]

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return "Fake GPU 80GB"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        if not self.counter:
            raise NVMLError_NotSupported("Not Supported")
        self.energy_reads += 1
        # 1 000 000 mJ already counted, then 200 W (200 000 mJ/s) from t = 0.
        return 1_000_000 + int(200_000 * self.clock.now)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return int(round(self.power_w(self.clock.now) * 1000))  # milliwatts


def _gpu(clock: FakeClock, seconds_per_batch: float) -> Callable[[], None]:
    batches = []

    def run_batch() -> None:
        batches.append(1)
        clock.now += seconds_per_batch

    run_batch.batches = batches  # type: ignore[attr-defined]
    return run_batch


def test_counter_path_exact() -> None:
    clock = FakeClock(start=10.0)
    nvml = FakeNVML(clock)
    run_batch = _gpu(clock, 0.25)
    result = measure_energy_window(
        run_batch, nvml=nvml, handle=0, sync=clock.sync, clock=clock, min_window_s=1.0
    )
    assert isinstance(result, EnergyResult)
    assert result.method == "energy_counter"
    assert result.batches == 4 == len(run_batch.batches)  # type: ignore[attr-defined]
    assert result.window_s == 1.0
    # (end - start mJ) / 1000 / batches = (3_200_000 - 3_000_000) / 1000 / 4
    assert result.joules_per_batch == 50.0
    assert result.mean_power_w == 200.0
    assert result.device_name == "Fake GPU 80GB"


def test_counter_path_window_rounds_up_to_whole_batches() -> None:
    clock = FakeClock(start=0.0)
    result = measure_energy_window(
        _gpu(clock, 0.375),
        nvml=FakeNVML(clock),
        handle=0,
        sync=clock.sync,
        clock=clock,
        min_window_s=1.0,
        device_name="named",
    )
    assert result.batches == 3 and result.window_s == 1.125
    assert result.joules_per_batch == 225_000 / 1000 / 3  # 200 W * 1.125 s / 3
    assert result.device_name == "named"


def test_power_sampling_path_exact() -> None:
    # Power ramps from 100 W to 300 W over the first 2 s, then holds; the window starts once the
    # ramp is over, so the integral is exactly 300 W * window.
    clock = FakeClock(start=0.0)
    nvml = FakeNVML(clock, power_w=lambda t: min(300.0, 100.0 + 100.0 * t), counter=False)
    result = measure_energy_window(
        _gpu(clock, 0.25),
        nvml=nvml,
        handle=1,
        sync=clock.sync,
        clock=clock,
        min_window_s=1.0,
        sample_interval_s=None,
        stable_window_s=0.5,
        stable_rel_tol=0.001,
    )
    assert result.method == "power_sampling"
    assert result.batches == 4
    assert result.window_s == 1.0
    assert result.joules_per_batch == 75.0
    assert result.mean_power_w == 300.0


def test_power_sampling_waits_for_stability() -> None:
    clock = FakeClock(start=0.0)
    nvml = FakeNVML(clock, power_w=lambda t: min(300.0, 100.0 + 100.0 * t), counter=False)
    run_batch = _gpu(clock, 0.25)
    measure_energy_window(
        run_batch,
        nvml=nvml,
        handle=0,
        sync=clock.sync,
        clock=clock,
        min_window_s=1.0,
        sample_interval_s=None,
        stable_window_s=0.5,
        stable_rel_tol=0.001,
    )
    # samples every 0.25 s; stable once both windows (now-1, now-0.5] and (now-0.5, now] hold only
    # samples from t >= 2 s, where the ramp has ended: now = 2.75 s, i.e. 11 batches, then 4 more
    assert len(run_batch.batches) == 11 + 4  # type: ignore[attr-defined]


def test_power_sampling_gives_up_after_timeout_with_warning() -> None:
    clock = FakeClock(start=0.0)
    nvml = FakeNVML(clock, power_w=lambda t: 100.0 + 100.0 * t, counter=False)  # never stable
    with pytest.warns(RuntimeWarning, match="did not stabilise"):
        result = measure_energy_window(
            _gpu(clock, 0.5),
            nvml=nvml,
            handle=0,
            sync=clock.sync,
            clock=clock,
            min_window_s=1.0,
            sample_interval_s=None,
            stable_rel_tol=1e-6,
            max_stabilise_s=2.0,
        )
    # window [2, 3] s of a linear ramp: exact trapezoid = (300 + 400) / 2 W * 1 s over 2 batches
    assert result.joules_per_batch == 175.0


def test_power_sampling_with_background_thread_real_clock() -> None:
    # Constant power: the integral is exact whatever the sampling times.
    class Const(FakeNVML):
        def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
            return 250_000

    clock = FakeClock()
    nvml = Const(clock, counter=False)
    result = measure_energy_window(
        lambda: time.sleep(0.005),
        nvml=nvml,
        handle=0,
        clock=time.perf_counter,
        min_window_s=0.05,
        sample_interval_s=0.002,
        stable_window_s=0.01,
    )
    assert result.method == "power_sampling"
    assert result.window_s >= 0.05
    assert result.mean_power_w == pytest.approx(250.0, rel=1e-12)
    assert result.joules_per_batch == pytest.approx(250.0 * result.window_s / result.batches)


def test_nvml_failure_during_measurement_is_measurement_error() -> None:
    clock = FakeClock()

    class Broken(FakeNVML):
        def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
            raise NVMLError("GPU is lost")

    with pytest.raises(MeasurementError, match="GPU is lost"):
        measure_energy_window(
            _gpu(clock, 0.25), nvml=Broken(clock), handle=0, sync=clock.sync, clock=clock
        )


def test_integrate_power_trapezoid() -> None:
    samples = [(0.0, 100.0), (1.0, 200.0), (3.0, 200.0), (4.0, 0.0)]
    assert _integrate_power(samples, 0.0, 4.0) == 150.0 + 400.0 + 100.0
    # edges interpolated: [0.5, 3.5] -> 150..200 over 0.5 s, 200 over 2 s, 200..100 over 0.5 s
    assert _integrate_power(samples, 0.5, 3.5) == 87.5 + 400.0 + 75.0
    # beyond the samples power is held constant
    assert _integrate_power([(1.0, 10.0)], 0.0, 2.0) == 20.0
    with pytest.raises(MeasurementError):
        _integrate_power([], 0.0, 1.0)


def test_power_stable() -> None:
    flat = [(t / 10, 100.0) for t in range(11)]
    assert _power_stable(flat, 1.0, 0.5, 0.01)
    assert not _power_stable(flat, 1.0, 0.6, 0.01)  # samples do not reach back two windows
    ramp = [(t / 10, 100.0 + 10.0 * t) for t in range(11)]
    assert not _power_stable(ramp, 1.0, 0.5, 0.01)


def test_nvml_handle_mapping() -> None:
    nvml = FakeNVML(FakeClock(), uuids=("GPU-aaaa", "GPU-bbbb", "GPU-cccc"))
    # by UUID (torch reports it without the "GPU-" prefix)
    assert _nvml_handle(nvml, 0, "cccc", None) == 2
    assert _nvml_handle(nvml, 0, "GPU-BBBB", "0") == 1
    # unknown UUID: through CUDA_VISIBLE_DEVICES, indices or UUIDs
    assert _nvml_handle(nvml, 1, "zzzz", "2,0") == 0
    assert _nvml_handle(nvml, 0, None, "GPU-bbbb,GPU-aaaa") == 1
    # otherwise the index itself
    assert _nvml_handle(nvml, 1, None, None) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_no_gpu_raises_helpful_error(device: str) -> None:
    nvml = FakeNVML(FakeClock())
    with pytest.raises(EnergyUnavailableError) as info:
        measure_energy(nn.Linear(4, 2), (2, 4), device, nvml=nvml)
    message = str(info.value)
    assert "NVIDIA GPU" in message and "nvidia-ml-py" in message and "--device cuda" in message
    ok, reason = energy_available(device, nvml=nvml)
    assert not ok and "NVIDIA GPU" in reason


def test_missing_pynvml_or_nvml_init_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from optuna_shape.measurement import energy

    class NoDriver(FakeNVML):
        def nvmlInit(self) -> None:  # noqa: N802
            raise NVMLError("Driver Not Loaded")

    with pytest.raises(EnergyUnavailableError, match="Driver Not Loaded.*nvidia-ml-py"):
        energy._start_nvml(NoDriver(FakeClock()))

    import builtins

    real_import = builtins.__import__

    def no_pynvml(name: str, *args: object, **kwargs: object) -> object:
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    with pytest.raises(EnergyUnavailableError, match="pynvml is not installed.*nvidia-ml-py"):
        energy._start_nvml(None)


def test_bad_window_arguments() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="min_window_s"):
        measure_energy_window(_gpu(clock, 0.25), nvml=FakeNVML(clock), handle=0, min_window_s=0)


@pytest.mark.gpu
@needs_cuda
def test_energy_real_gpu() -> None:
    ok, reason = energy_available("cuda")
    if not ok:
        pytest.skip(reason)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3))
    result = measure_energy(model, (64, 3, 32, 32), "cuda", min_window_s=1.0)
    assert result.method in ("energy_counter", "power_sampling")
    assert result.window_s >= 1.0 and result.batches >= 1
    assert result.joules_per_batch > 0 and 1.0 < result.mean_power_w < 2000.0
    assert result.device_name
