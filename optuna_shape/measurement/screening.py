"""Screening before training: size → latency → energy (paper Algorithm 1, §4).

Size is analytic and needs no network. Latency and energy are measured on the randomly
initialised network, and only when a limit or the goal needs them (as in the paper: no latency
limit or goal, no latency runs). Energy is measured only for shapes that passed the latency limit.

The functions here are pure or measure one shape; storing measurements in the study so that every
worker shares them is the sampler's job.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna_shape.space.constraints import COST_FIELDS, Constraints, goal_cost
from optuna_shape.space.design_space import ShapeSpace
from optuna_shape.space.measurement_record import Measurement
from optuna_shape.space.precision import check_precision
from optuna_shape.space.shape import Shape, Variant

__all__ = [
    "MeasurementSettings",
    "needs_latency",
    "needs_energy",
    "candidate_size",
    "size_screen",
    "measure_shape",
    "apply_limits",
    "constraint_values",
    "SCREENINGS",
    "AUTO_PREDICT_ABOVE",
    "check_screening",
    "use_prediction",
]

SCREENINGS = ("auto", "measure", "predict")
"""How screening gets latency and energy: ``"measure"`` every shape, ``"predict"`` (measure a
designed subset and every shape near a limit, predict the rest:
:mod:`optuna_shape.models.cost_model`), ``"auto"``: predict when more than
:data:`AUTO_PREDICT_ABOVE` shapes need measuring."""
AUTO_PREDICT_ABOVE = 500
"""``"auto"`` screening predicts above this many shapes to measure (after the size limit): at
about 0.1-0.5 s per CPU measurement, measuring 500 shapes takes minutes, and a cost model needs
on the order of a hundred measurements to predict well."""


@dataclass(frozen=True)
class MeasurementSettings:
    """How hardware metrics are measured.

    Attributes:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` — the deployment target.
        batch_size: inference batch size for latency and energy.
        threads: CPU threads for latency (``None``: the process's ``torch.get_num_threads()``).
        warmup: warm-up runs before timing.
        repeats: timed runs; the median is kept.
        energy_window_s: minimum NVML measurement window in seconds.
        target_hardware: reuse the measurements a study holds under this hardware key even if
            this worker runs on other hardware (``None``: measure here, and refuse a study
            measured on other hardware).
        screening: how latency and energy are screened (one of :data:`SCREENINGS`):
            ``"measure"`` every shape within the size limit; ``"predict"``: measure a designed
            subset and every shape whose predicted cost is within its uncertainty of a limit,
            predict the rest (:mod:`optuna_shape.models.cost_model`); ``"auto"`` (default): predict
            when more than :data:`AUTO_PREDICT_ABOVE` shapes need measuring. Either way a
            shape is measured for real before it trains, so no answer's limit or cost rests
            on a prediction. A search over several precisions measures every candidate
            (``"auto"`` measures; ``"predict"`` is refused).
    """

    device: str = "cpu"
    batch_size: int = 1
    threads: int | None = None
    warmup: int = 3
    repeats: int = 10
    energy_window_s: float = 1.0
    target_hardware: str | None = None
    screening: str = "auto"

    def __post_init__(self) -> None:
        for name in ("batch_size", "warmup", "repeats"):
            v = getattr(self, name)
            low = 0 if name == "warmup" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {name}={v!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        check_screening(self.screening)
        if self.target_hardware is not None and not isinstance(self.target_hardware, str):
            raise ValueError(f"target_hardware must be a hardware key (a string) or None, "
                             f"got target_hardware={self.target_hardware!r}")
        if self.device != "cpu":  # the default needs neither the check nor its torch import
            from optuna_shape.measurement.hardware import check_device

            check_device(self.device)


def needs_latency(constraints: Constraints, goal: str | None) -> bool:
    """Whether latency must be measured: a latency limit, or a goal that minimises latency or
    trades accuracy against it."""
    return constraints.max_latency_ms is not None or goal_cost(goal) == "latency"


def needs_energy(constraints: Constraints, goal: str | None) -> bool:
    """Whether energy must be measured: an energy limit, or a goal that minimises energy or
    trades accuracy against it."""
    return constraints.max_energy_j is not None or goal_cost(goal) == "energy"


def candidate_size(space: ShapeSpace, candidate: Shape | Variant) -> float:
    """Size in MB of a shape (at fp32) or of a (shape, precision) candidate."""
    return space.size_mb(candidate.shape, candidate.precision or "fp32")


def check_screening(screening: object) -> str:
    """Validate a screening mode (one of :data:`SCREENINGS`).

    Raises:
        ValueError: naming the bad value and the valid ones.
    """
    if screening not in SCREENINGS:
        raise ValueError(f"screening must be one of {', '.join(SCREENINGS)}, "
                         f"got screening={screening!r}")
    return str(screening)


def use_prediction(screening: str, n_to_measure: int) -> bool:
    """Whether screening predicts costs: ``"predict"``, or ``"auto"`` with more than
    :data:`AUTO_PREDICT_ABOVE` shapes to measure."""
    return screening == "predict" or (screening == "auto" and n_to_measure > AUTO_PREDICT_ABOVE)


def size_screen(
    space: ShapeSpace, shapes: Sequence[Shape], max_size_mb: float | None
) -> tuple[list[Shape], dict[Shape, str]]:
    """Split shapes into those within the size limit and rejected ones with their reason."""
    passed: list[Shape] = []
    rejects: dict[Shape, str] = {}
    for s in shapes:
        size = candidate_size(space, s)
        if max_size_mb is not None and size > max_size_mb:
            rejects[s] = f"size {size:.4g} MB > {max_size_mb:g} MB"
        else:
            passed.append(s)
    return passed, rejects


def measure_shape(
    space: ShapeSpace,
    shape: Shape,
    settings: MeasurementSettings,
    *,
    latency: bool,
    energy: bool,
    builder: Callable[[Shape], Any] | None = None,
    precision: str = "fp32",
) -> Measurement:
    """Measure one shape's latency and/or energy on the randomly initialised network.

    With a ``precision`` other than ``"fp32"`` the network is first converted to it
    (:func:`optuna_shape.measurement.precision.convert`) and the converted network is measured;
    int8's static quantisation is calibrated on
    :data:`~optuna_shape.measurement.precision.CALIBRATION_BATCHES` random normal batches of the
    input shape (activation scales do not change the latency of a random network).

    Returns the record (:class:`~optuna_shape.space.measurement_record.Measurement`):
    ``latency_ms``, ``latency_iqr_ms``, ``latency_runs``, ``energy_j``, ``energy_method``, or
    ``error`` (a shape too large to build or run, or a precision the device cannot run — int8 on
    CUDA — is recorded as an error, never raised); plus ``precision`` when it is not ``"fp32"``.

    Raises:
        EnergyUnavailableError: energy was asked for but no NVML device is available.
    """
    from optuna_shape.measurement import (
        EnergyUnavailableError,
        MeasurementError,
        measure_energy,
        measure_latency,
    )

    values: dict[str, Any] = {}
    if precision != "fp32":
        check_precision(precision)
        values["precision"] = precision
    model = None
    try:
        model = (builder or space.build)(shape)
        input_shape = space.input_shape(settings.batch_size)
        if precision != "fp32":
            from optuna_shape.measurement.precision import convert, random_calibration_batches

            model = convert(model, precision, random_calibration_batches(input_shape),
                            device=settings.device)
        if latency:
            lat = measure_latency(
                model, input_shape, settings.device, warmup=settings.warmup,
                repeats=settings.repeats, threads=settings.threads,
            )
            values.update(latency_ms=lat.median_ms, latency_iqr_ms=lat.iqr_ms,
                          latency_runs=lat.runs)
        if energy:
            en = measure_energy(model, input_shape, settings.device,
                                min_window_s=settings.energy_window_s)
            values.update(energy_j=en.joules_per_batch, energy_method=en.method)
    except EnergyUnavailableError:
        raise
    except (MeasurementError, MemoryError, RuntimeError) as exc:
        values["error"] = f"could not be measured: {type(exc).__name__}: {exc}"[:500]
    finally:
        del model
        gc.collect()
        _empty_cuda_cache(settings.device)
    return Measurement(**values, order=tuple(values))


def _empty_cuda_cache(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def apply_limits(
    shapes: Sequence[Shape],
    measurements: Mapping[Shape, Measurement | Mapping[str, Any]],
    constraints: Constraints,
    *,
    latency: bool,
    energy: bool,
) -> tuple[list[Shape], dict[Shape, str]]:
    """Apply the latency then energy limits to measured shapes.

    A shape whose needed measurement is missing or failed is rejected with the reason. A
    predicted record (predicted screening) holds the point prediction; screening predicts only
    shapes clearly within or clearly over a limit, so the point prediction is on the same side.
    """
    feasible: list[Shape] = []
    rejects: dict[Shape, str] = {}
    checked = [c for c, on in (("latency", latency), ("energy", energy)) if on]
    for s in shapes:
        m = Measurement.of(measurements.get(s))
        reason = str(m["error"]) if m.failed else None
        for cost in checked:
            if reason is not None:
                break
            value = m.cost(cost)
            limit = getattr(constraints, f"max_{COST_FIELDS[cost]}")
            if value is None:
                reason = f"{cost} not measured"
            elif limit is not None and value > limit:
                reason = (f"{'predicted ' if m.is_predicted else ''}{cost} {value:.4g} "
                          f"{_UNIT[cost]} > {limit:g} {_UNIT[cost]}")
        if reason is None:
            feasible.append(s)
        else:
            rejects[s] = reason
    return feasible, rejects


_UNIT = {"latency": "ms", "energy": "J"}


def constraint_values(
    constraints: Constraints, size_mb: float,
    measurement: Measurement | Mapping[str, Any] | None
) -> dict[str, float]:
    """Optuna-style constraint values (≤ 0 is satisfied) for the limits that can be evaluated."""
    out: dict[str, float] = {}
    m = Measurement.of(measurement)
    if constraints.max_size_mb is not None:
        out["size"] = size_mb - constraints.max_size_mb
    for cost in ("latency", "energy"):
        limit = getattr(constraints, f"max_{COST_FIELDS[cost]}")
        value = m.cost(cost)
        if limit is not None and value is not None:
            out[cost] = float(value) - limit
    return out
