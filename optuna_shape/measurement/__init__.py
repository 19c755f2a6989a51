"""Hardware measurements for screening shapes: latency, energy, and the hardware they ran on.

Example:
    >>> import torch
    >>> from optuna_shape.measurement import hardware_key, measure_latency
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> measure_latency(net, (4, 1, 8, 8), "cpu", warmup=1, repeats=3).runs
    3
"""

from optuna_shape.measurement.energy import (
    EnergyResult,
    EnergyUnavailableError,
    energy_available,
    measure_energy,
    measure_energy_window,
)
from optuna_shape.measurement.hardware import (
    MeasurementError,
    ShapeTooLargeError,
    device_name,
    hardware_key,
    resolve_device,
    translate_out_of_memory,
)
from optuna_shape.measurement.latency import LatencyResult, measure_latency

__all__ = [
    "EnergyResult",
    "EnergyUnavailableError",
    "LatencyResult",
    "MeasurementError",
    "ShapeTooLargeError",
    "device_name",
    "energy_available",
    "hardware_key",
    "measure_energy",
    "measure_energy_window",
    "measure_latency",
    "resolve_device",
    "translate_out_of_memory",
]
