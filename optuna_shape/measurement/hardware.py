"""Devices, their names, the hardware key measurements are filed under, and measurement errors.

Measurements of latency and energy only mean something on the hardware and setting they were
taken on. :func:`hardware_key` turns that into one stable, human-readable string, so a
worker on different hardware never silently reuses another machine's numbers.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = [
    "DEVICE_FORMS",
    "DEVICE_TYPES",
    "MeasurementError",
    "ShapeTooLargeError",
    "check_device",
    "device_name",
    "hardware_key",
    "resolve_device",
]

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The device types optuna-shape trains and measures on."""
DEVICE_FORMS = "cpu, cuda, cuda:N or mps"
"""The device strings :func:`check_device` accepts, as its error message names them."""


class MeasurementError(RuntimeError):
    """A hardware measurement (latency, energy) could not be taken."""


class ShapeTooLargeError(MeasurementError):
    """The shape does not fit in memory on the measuring device.

    Screening records this as a rejection of the shape rather than crashing the study.
    """


def check_device(device: object, what: str = "device") -> str:
    """``device`` if it is a device string optuna-shape accepts, else a one-line error.

    The one spelling rule for devices: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (``N`` a GPU index)
    or ``"mps"``, exactly. The command line, :class:`~optuna_shape.training.TrainConfig`,
    :class:`~optuna_shape.measurement.screening.MeasurementSettings` (so
    :class:`~optuna_shape.ShapeSampler`) and :func:`resolve_device` all apply it; whether the
    device is present on this machine is :func:`resolve_device`'s question.

    Args:
        device: The value to check.
        what: How the value is named in the error, e.g. ``"--device"``.

    Returns:
        ``device`` unchanged.

    Raises:
        ValueError: ``"<what> <value> is not a device: use cpu, cuda, cuda:N or mps"``.

    Example:
        >>> check_device("cuda:1")
        'cuda:1'
    """
    if isinstance(device, str):
        kind, colon, index = device.partition(":")
        if kind in DEVICE_TYPES and (
            not colon or (kind == "cuda" and index.isascii() and index.isdigit())
        ):
            return device
    raise ValueError(f"{what} {device!r} is not a device: use {DEVICE_FORMS}")


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a device string into a concrete :class:`torch.device`, checking that it exists.

    ``"cuda"`` resolves to the current CUDA device (``cuda:0`` unless changed), so the result
    always carries an index for CUDA.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a :class:`torch.device`.

    Returns:
        The resolved device.

    Raises:
        ValueError: Not a device (:func:`check_device`; a :class:`torch.device` of another
            type), or the device is not present on this machine.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        check_device(device.type)
        dev = device
    else:
        dev = torch.device(check_device(device))
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(
                f"device {str(dev)!r} requested but torch.backends.mps.is_available() is False"
            )
        return torch.device("mps")
    # CUDA
    if not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but torch.cuda.is_available() is False")
    index = torch.cuda.current_device() if dev.index is None else dev.index
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        raise ValueError(
            f"device {str(device)!r} requested but only {count} CUDA device(s) are visible"
        )
    return torch.device("cuda", index)


def _cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str | torch.device) -> str:
    """The human-readable name of a device's hardware.

    The CPU model (``/proc/cpuinfo``'s ``model name``, else :func:`platform.processor`) for the
    CPU; :func:`torch.cuda.get_device_name` for a CUDA device.

    Args:
        device: Anything :func:`resolve_device` accepts.

    Returns:
        For example ``"Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"`` or
        ``"NVIDIA H100 80GB HBM3"``.

    Example:
        >>> isinstance(device_name("cpu"), str)
        True
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return _cpu_name()


def hardware_key(device: str | torch.device, threads: int | None, batch_size: int) -> str:
    """A stable key naming the hardware and setting a measurement was taken with.

    Two measurements may be shared only when their keys are equal. The key holds the device type,
    the device name, the CPU thread count (CPU only: on a GPU it does not change the kernel that
    runs), the batch size and the torch version (which includes its CUDA build). Any ``|`` in a
    name is replaced so the key splits cleanly on ``|``.

    Args:
        device: Anything :func:`resolve_device` accepts.
        threads: CPU threads used for the measurement; ``None`` means
            :func:`torch.get_num_threads`.
        batch_size: The inference batch size.

    Returns:
        For example ``"cpu|Intel(R) Xeon(R) ...|threads=2|batch=128|torch=2.14.1"`` or
        ``"cuda|NVIDIA H100 80GB HBM3|batch=1|torch=2.14.1+cu130"``.

    Raises:
        ValueError: Bad device, thread count or batch size.

    Example:
        >>> hardware_key("cpu", threads=2, batch_size=128).startswith("cpu|")
        True
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    dev = resolve_device(device)
    name = device_name(dev).replace("|", "/")
    parts = [dev.type, name]
    if dev.type == "cpu":
        parts.append(f"threads={threads if threads is not None else torch.get_num_threads()}")
    parts += [f"batch={batch_size}", f"torch={torch.__version__}"]
    return "|".join(parts)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, RuntimeError):
        message = str(exc).lower()
        return "out of memory" in message or "can't allocate memory" in message
    return False


@contextlib.contextmanager
def translate_out_of_memory(
    input_shape: tuple[int, ...], device: str | torch.device
) -> Iterator[None]:
    """Re-raise out-of-memory errors inside the block as :class:`ShapeTooLargeError`.

    Catches :class:`torch.cuda.OutOfMemoryError`, :class:`MemoryError` and ``RuntimeError``s whose
    message says ``out of memory`` / ``can't allocate memory`` (CPU allocator). The original
    exception is dropped (its text is kept in the message) so the tensors its traceback holds are
    freed, then the CUDA cache is emptied, so screening can go on with the next shape.

    Args:
        input_shape: The input shape being measured, named in the message.
        device: The device being measured on, named in the message.

    Raises:
        ShapeTooLargeError: The block ran out of memory.

    Example:
        >>> with translate_out_of_memory((128, 3, 32, 32), "cpu"):
        ...     pass
    """
    message = None
    try:
        yield
    except Exception as exc:
        if not _is_out_of_memory(exc):
            raise
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        message = (
            f"shape too large: out of memory measuring input shape {tuple(input_shape)} on "
            f"device {str(device)!r} ({type(exc).__name__}: {first_line[:300]})"
        )
    if message is not None:
        # The except block has ended, so the traceback (and the tensors it references) is gone.
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise ShapeTooLargeError(message)
