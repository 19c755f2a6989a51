"""Convert a trained float32 network to a deployment precision, after training, without retraining.

:func:`convert` never changes the network it is given; it returns a converted copy.

* ``"fp32"``: nothing to convert; the network itself is returned.
* ``"bf16"``: a copy whose weights and buffers are bfloat16, wrapped so that it takes float32
  inputs (cast to bfloat16 on entry) and returns float32 outputs. Runs on CPU and CUDA.
* ``"int8"``: post-training quantisation with torch's quantised CPU kernels
  (``torch.ao.quantization``, backend :data:`torch.backends.quantized.engine`, ``x86`` on Intel
  and AMD CPUs):

  - a network with convolutions gets **static** int8 quantisation in FX graph mode: batch norms
    are folded into the convolutions, weights are int8 per channel, activations uint8 with
    scales and zero points observed on the ``calibration_batches`` (a few training batches; the
    default objective uses :data:`CALIBRATION_BATCHES`), residual additions are quantised adds;
  - a network with Linear layers but no convolutions gets **dynamic** int8 quantisation: int8
    weights, activations quantised on the fly per batch (no calibration needed).

  There are no quantised CUDA kernels: int8 on a CUDA device raises
  :class:`PrecisionUnavailableError` (a :class:`~optuna_shape.measurement.MeasurementError`, so
  screening records it as the pair's rejection). The int8 network takes and returns float32
  tensors on the CPU.

``torch.ao.quantization`` is deprecated upstream (in favour of the separate ``torchao``
package) but is still shipped and working in the torch versions this project supports; its
deprecation warnings are silenced here.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    >>> small = convert(net, "int8")
    >>> small(torch.zeros(2, 1, 8, 8)).shape, net[1].weight.dtype
    (torch.Size([2, 10]), torch.float32)
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from optuna_shape.measurement.hardware import MeasurementError, resolve_device
from optuna_shape.space.precision import check_precision, unsupported_reason

__all__ = [
    "CALIBRATION_BATCHES",
    "PrecisionUnavailableError",
    "convert",
    "random_calibration_batches",
]

CALIBRATION_BATCHES = 4
"""Batches the static int8 conversion observes to choose activation scales (the default
objective takes this many shuffled training batches, the screening this many random ones)."""

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class PrecisionUnavailableError(MeasurementError):
    """A network cannot be converted to, or run in, a precision on a device."""


class _Bfloat16Inputs(nn.Module):
    """A bfloat16 network that takes float32 inputs and gives float32 outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x.to(torch.bfloat16) if x.is_floating_point() else x)
        return out.float() if isinstance(out, torch.Tensor) else out


@contextlib.contextmanager
def _quiet_quantization() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*reduce_range.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*quant_min.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation.*",
                                category=UserWarning)
        yield


def _inputs(batch: Any) -> torch.Tensor:
    """The input tensor of a calibration batch: a tensor, or the first item of ``(x, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise ValueError(
        f"calibration batches must be input tensors or (inputs, labels) pairs, got "
        f"{type(batch).__name__}"
    )


def _cpu_copy(model: nn.Module) -> nn.Module:
    """An fp32 eval-mode copy on the CPU (the original stays where and as it is)."""
    clone = copy.deepcopy(model)
    return clone.to("cpu").float().eval()


def _static_int8(model: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    from torch.fx.proxy import TraceError

    engine = torch.backends.quantized.engine
    if engine not in ("x86", "fbgemm", "qnnpack", "onednn"):
        raise PrecisionUnavailableError(
            f"int8 needs a quantised CPU backend, but torch.backends.quantized.engine is "
            f"{engine!r} (supported here: {torch.backends.quantized.supported_engines})"
        )
    clone = _cpu_copy(model)
    example = batches[0].to("cpu", torch.float32)
    try:
        with _quiet_quantization():
            prepared = prepare_fx(clone, get_default_qconfig_mapping(engine),
                                  example_inputs=(example,))
            with torch.no_grad():
                for x in batches:
                    prepared(x.to("cpu", torch.float32))
            quantized = convert_fx(prepared).eval()
            with torch.no_grad():
                quantized(example)  # one run here: torch's one-time deprecation notice stays quiet
    except (TraceError, RuntimeError, TypeError, NotImplementedError, AttributeError) as exc:
        raise PrecisionUnavailableError(
            f"static int8 quantisation of {type(model).__name__} failed (FX graph mode needs a "
            f"symbolically traceable network): {type(exc).__name__}: {exc}"
        ) from exc
    return quantized


def _dynamic_int8(model: nn.Module) -> nn.Module:
    from torch.ao.quantization import quantize_dynamic

    with _quiet_quantization():
        return quantize_dynamic(_cpu_copy(model), {nn.Linear}, dtype=torch.qint8).eval()


def convert(
    model: nn.Module,
    precision: str,
    calibration_batches: Iterable[Any] | None = None,
    device: str = "cpu",
) -> nn.Module:
    """The network ``model`` converted to ``precision``, in eval mode, on ``device``.

    Args:
        model: a float32 network (trained, or randomly initialised for screening). Never
            modified: the result is a copy (``"fp32"`` returns ``model`` itself, unchanged).
        precision: ``"fp32"``, ``"bf16"`` or ``"int8"``.
        calibration_batches: input batches (tensors, or ``(inputs, labels)`` pairs) for static
            int8 quantisation; needed for ``"int8"`` when ``model`` has convolutions, ignored
            otherwise. A few training batches suffice (:data:`CALIBRATION_BATCHES`).
        device: where the converted network runs: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
            (``"int8"``: CPU only).

    Returns:
        The converted network; it takes and returns float32 tensors.

    Raises:
        ValueError: an unknown precision, or int8 of a convolutional network without
            calibration batches.
        PrecisionUnavailableError: int8 on a CUDA device, no quantised CPU backend, a network
            FX cannot trace, or nothing to quantise (no Linear or convolution layer).
    """
    check_precision(precision)
    reason = unsupported_reason(precision, str(device))
    if reason is not None:
        raise PrecisionUnavailableError(reason)
    if precision == "fp32":
        return model
    if precision == "bf16":
        clone = copy.deepcopy(model).eval()
        return _Bfloat16Inputs(clone.to(resolve_device(device), torch.bfloat16)).eval()
    has_conv = any(isinstance(m, _CONV_TYPES) for m in model.modules())
    if has_conv:
        batches = [] if calibration_batches is None else [_inputs(b) for b in calibration_batches]
        if not batches:
            raise ValueError(
                f"int8 conversion of {type(model).__name__} (it has convolutions) needs "
                "calibration_batches: a few input batches to observe activation ranges on"
            )
        return _static_int8(model, batches)
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise PrecisionUnavailableError(
            f"{type(model).__name__} has no Linear or convolution layer to quantise to int8"
        )
    return _dynamic_int8(model)


def random_calibration_batches(
    input_shape: tuple[int, ...], count: int = CALIBRATION_BATCHES, seed: int = 0
) -> list[torch.Tensor]:
    """``count`` standard-normal batches of ``input_shape`` (repeatable through ``seed``).

    Screening converts randomly initialised networks, whose latency does not depend on the
    activation scales, so random inputs of the right shape are enough to calibrate them.

    Example:
        >>> [tuple(b.shape) for b in random_calibration_batches((2, 1, 8, 8), count=2)]
        [(2, 1, 8, 8), (2, 1, 8, 8)]
    """
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(input_shape, generator=generator) for _ in range(count)]
