"""Hardware measurements for screening shapes: latency, energy, the hardware they ran on, and
the screening of a design space against the limits (:mod:`.screening`; MAC counts in :mod:`.flops`).
Names are imported on first use, so screening without measuring never loads torch.

Example:
    >>> import torch
    >>> from optuna_shape.measurement import hardware_key, measure_latency
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> measure_latency(net, (4, 1, 8, 8), "cpu", warmup=1, repeats=3).runs
    3
"""

from importlib import import_module

# Each name and the module that defines it: imported on first use, so that importing
# ``optuna_shape.measurement.screening`` or ``.flops`` does not load torch.
_WHERE = {
    "EnergyResult": "energy",
    "EnergyUnavailableError": "energy",
    "energy_available": "energy",
    "measure_energy": "energy",
    "measure_energy_window": "energy",
    "MeasurementError": "hardware",
    "ShapeTooLargeError": "hardware",
    "device_name": "hardware",
    "hardware_key": "hardware",
    "resolve_device": "hardware",
    "translate_out_of_memory": "hardware",
    "LatencyResult": "latency",
    "measure_latency": "latency",
}

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


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
