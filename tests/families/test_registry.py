"""Parameter counts of user families: built on the meta device, equal to a real build."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_shape.families.registry import get_family, meta_param_count, register_family


def _mlp(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
    h = max(1, round(64 * width))
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(in_channels * 64, h), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(h, h), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(h, num_classes))


@pytest.mark.parametrize("depth,width", [(1, 0.5), (3, 1.0), (6, 2.5)])
def test_meta_count_equals_real_build(depth: int, width: float) -> None:
    real = sum(p.numel() for p in _mlp(depth, width, 1, 10).parameters())
    assert meta_param_count(_mlp, depth, width, 1, 10) == real


def test_wrn_analytic_count_equals_meta_count() -> None:
    wrn = get_family("wrn")
    for depth, width in [(10, 0.25), (16, 1.0), (28, 2.5)]:
        assert wrn.count(depth, width, 3, 100) == meta_param_count(wrn.build, depth, width, 3, 100)


def test_huge_user_shape_is_counted_without_allocating_weights() -> None:
    devices: list[str] = []

    def recording(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
        model = _mlp(depth, width, in_channels, num_classes)
        devices.append(next(model.parameters()).device.type)
        return model

    fam = register_family("test-huge-mlp", recording, overwrite=True)
    n = fam.count(4, 300.0, 1, 10)  # 19,200 units: ≈ 1.1 billion parameters
    h = 19200
    assert n == (64 * h + h) + 3 * (h * h + h) + (h * 10 + 10)
    assert n > 1_000_000_000
    assert devices == ["meta"]  # built once, with no memory for its 4.4 GB of weights


def test_lazy_layers_are_refused_with_a_clear_message() -> None:
    def lazy(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    with pytest.raises(ValueError, match="lazy"):
        meta_param_count(lazy, 1, 1.0, 1, 10)


def test_builder_that_cannot_run_on_meta_falls_back_to_a_real_build() -> None:
    def reads_weights(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
        m = nn.Linear(4, num_classes)
        assert torch.isfinite(m.weight).all().item()  # meta tensors have no values
        return m

    assert meta_param_count(reads_weights, 1, 1.0, 1, 10) == 4 * 10 + 10
