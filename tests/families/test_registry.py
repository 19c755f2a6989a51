"""Parameter counts of user families: built on the meta device, equal to a real build."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_shape.families.registry import (
    Family,
    get_family,
    meta_param_count,
    register_family,
)


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


def test_user_family_from_a_build_function_alone_runs_a_search_end_to_end() -> None:
    import optuna

    import optuna_shape as osh
    from optuna_shape.training import TrainConfig, make_objective

    def tiny_cnn(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
        c = max(1, round(8 * width))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c, c, 3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(c, num_classes))

    fam = register_family("test-tiny-cnn", tiny_cnn, overwrite=True)
    assert fam.param_count is None  # sized on the meta device
    space = osh.ShapeSpace("test-tiny-cnn", depth=[1, 2], width=[0.5, 1.0], in_channels=1,
                           num_classes=10, image_size=8)
    counts = {s: space.param_count(s) for s in space.shapes}
    assert counts == {s: sum(p.numel() for p in space.build(s).parameters())
                      for s in space.shapes}
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=1.0), seed=0, max_trainings=2)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(make_objective(space, "digits", config=TrainConfig(epochs=1, threads=1),
                                  subset=200))
    trained = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert trained and all(
        t.user_attrs["params"] == counts[osh.Shape(t.params["depth"], t.params["width"])]
        for t in trained
    )
    assert osh.best_shape(study) in space


def test_shape_space_caches_the_count_per_shape() -> None:
    import optuna_shape as osh

    built: list[tuple[int, float]] = []

    def counted(depth: int, width: float, in_channels: int, num_classes: int) -> nn.Module:
        built.append((depth, width))
        return _mlp(depth, width, in_channels, num_classes)

    register_family("test-counted", counted, overwrite=True)
    space = osh.ShapeSpace("test-counted", depth=[1, 2], width=[1.0], in_channels=1,
                           num_classes=10, image_size=8)
    for _ in range(3):
        for s in space.shapes:
            space.size_mb(s)
    assert sorted(built) == [(1, 1.0), (2, 1.0)]


def test_family_width_rule_and_meaning_are_checked_before_anything_is_built() -> None:
    import optuna_shape as osh

    def even_only(width: float) -> None:
        if round(8 * width) % 2:
            raise ValueError(f"8 × width must be even, got width={width!r}")

    register_family("test-even", _mlp, check_width=even_only, width_meaning="8 × width units",
                    overwrite=True)
    assert get_family("test-even").width_meaning == "8 × width units"
    with pytest.raises(ValueError, match=r"family 'test-even': 8 × width must be even, got "
                                         r"width=0\.375"):
        osh.ShapeSpace("test-even", depth=[1], width=[0.25, 0.375], in_channels=1,
                       num_classes=10, image_size=8)
    with pytest.raises(ValueError, match="input_kind must be one of image, features"):
        register_family("test-bad-kind", _mlp, input_kind="tokens")


def test_accuracy_trend_of_a_family_is_checked_and_the_built_ins_keep_the_paper_s() -> None:
    for name in ("wrn", "densenet", "mlp"):
        assert get_family(name).accuracy_trend == "paper"
    assert register_family("test-trend", _mlp, overwrite=True).accuracy_trend == "paper"
    fam = register_family("test-trend", _mlp, accuracy_trend="smooth", overwrite=True)
    assert fam.accuracy_trend == "smooth"
    with pytest.raises(ValueError, match="accuracy_trend must be one of paper, smooth, got "
                                         "accuracy_trend='cubic'"):
        register_family("test-bad-trend", _mlp, accuracy_trend="cubic")
    with pytest.raises(ValueError, match="unknown model family 'test-bad-trend'"):
        get_family("test-bad-trend")  # refused before anything is registered
    with pytest.raises(ValueError, match="accuracy_trend must be one of paper, smooth"):
        Family("test-direct", _mlp, accuracy_trend="cubic")  # built without the registry too
