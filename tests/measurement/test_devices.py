"""One device rule: every entry point accepts the same device strings and refuses the same ones,
with one line naming the value and the valid forms."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest
import torch

import optuna_shape as osh
from optuna_shape.cli._common import CLIError, UsageError
from optuna_shape.cli.search import check_hardware
from optuna_shape.measurement import resolve_device
from optuna_shape.measurement.screening import MeasurementSettings
from optuna_shape.training import TrainConfig

FORMS = "cpu, cuda, cuda:N or mps"
GOOD = ["cpu", "cuda", "cuda:0", "cuda:3", "mps"]
BAD = ["", "gpu", "tpu", "banana", "CUDA", " cpu", "cpu:0", "mps:0", "cuda:", "cuda:x",
       "cuda:-1", "cuda:0:1", "meta"]


def _space() -> osh.ShapeSpace:
    return osh.ShapeSpace("wrn", depth=[10], width=[0.25], in_channels=1, num_classes=10,
                          image_size=8)


def _cli(device: str) -> None:
    check_hardware(argparse.Namespace(device=device, max_energy_j=None, goal="accuracy"))


ENTRY_POINTS: dict[str, Callable[[str], object]] = {
    "resolve_device": resolve_device,
    "TrainConfig": lambda d: TrainConfig(device=d),
    "MeasurementSettings": lambda d: MeasurementSettings(device=d),
    "ShapeSampler": lambda d: osh.ShapeSampler(
        _space(), measurement=osh.MeasurementSettings(device=d)),
    "optuna-shape search --device": _cli,
}


def _available(device: str) -> bool:
    kind, _, index = device.partition(":")
    if kind == "cuda":
        return torch.cuda.is_available() and int(index or 0) < torch.cuda.device_count()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return True


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("device", GOOD)
def test_every_entry_point_accepts_the_documented_devices(entry: str, device: str) -> None:
    try:
        ENTRY_POINTS[entry](device)
    except (ValueError, CLIError) as exc:
        # only resolve_device and the command line ask whether the device is here
        assert entry in ("resolve_device", "optuna-shape search --device"), exc
        assert not isinstance(exc, UsageError) and "is not a device" not in str(exc), exc
        assert not _available(device), exc
        assert device.partition(":")[0] in str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("device", BAD)
def test_every_entry_point_refuses_the_same_spellings_in_one_line(entry: str,
                                                                  device: str) -> None:
    expected = UsageError if entry.startswith("optuna-shape") else ValueError
    with pytest.raises(expected) as info:
        ENTRY_POINTS[entry](device)
    message = str(info.value)
    assert "\n" not in message
    assert f"{device!r} is not a device: use {FORMS}" in message


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_missing_here_is_its_own_clear_error() -> None:
    with pytest.raises(ValueError, match="'mps'.*is_available"):
        resolve_device("mps")
    with pytest.raises(CLIError, match="--device mps: Apple's MPS backend is not available") \
            as info:
        _cli("mps")
    assert not isinstance(info.value, UsageError)


def test_torch_devices_of_other_types_are_refused_alike() -> None:
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match=f"'meta' is not a device: use {FORMS}"):
        resolve_device(torch.device("meta"))
    with pytest.raises(ValueError, match=f"3 is not a device: use {FORMS}"):
        resolve_device(3)  # type: ignore[arg-type]
