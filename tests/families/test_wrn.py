"""The WRN family: exact analytic size, the paper's Table 4 sizes, forward passes."""

import itertools

import pytest
import torch

from optuna_shape.families import WideResNet, get_family, list_families, register_family
from optuna_shape.families.wrn import wrn_channels, wrn_param_count


@pytest.mark.parametrize(
    "depth,width,in_channels,num_classes",
    list(itertools.product([10, 16, 28], [1 / 16, 0.25, 0.5, 1.0, 2.5, 3.3], [1, 3],
                           [2, 10, 1000])),
)
def test_param_count_equals_built_model(depth, width, in_channels, num_classes):
    model = WideResNet(depth, width, in_channels, num_classes)
    assert wrn_param_count(depth, width, in_channels, num_classes) == sum(
        p.numel() for p in model.parameters()
    )


# Paper Table 4/5, ImageNet32x32 (3 input channels, 1000 classes), size in MB.
PAPER_SIZES = [
    ((52, 3.5), 38.0), ((46, 4.0), 43.2), ((52, 4.0), 49.4), ((46, 4.5), 54.5),
    ((52, 4.5), 62.3), ((52, 5.0), 76.8), ((34, 7.0), 92.8), ((46, 6.0), 96.3),
    ((46, 6.5), 112.9), ((40, 8.0), 145.6), ((40, 8.5), 164.3), ((46, 9.0), 215.4),
    ((46, 9.5), 239.8), ((34, 3.0), 17.5), ((40, 3.0), 21.0), ((22, 4.5), 23.0),
    ((34, 3.5), 23.7), ((52, 3.0), 28.0), ((34, 4.0), 30.8), ((40, 4.0), 37.0),
    ((34, 4.5), 38.8), ((28, 5.5), 45.9), ((28, 6.0), 54.4),
]


@pytest.mark.parametrize("shape,size_mb", PAPER_SIZES)
def test_sizes_match_paper_table4_within_one_percent(shape, size_mb):
    ours = wrn_param_count(*shape, 3, 1000) * 4 / 1e6
    assert abs(ours - size_mb) / size_mb < 0.01


@pytest.mark.parametrize("width", [1 / 16, 0.5, 1.0, 2.0])
def test_forward_pass_on_small_and_large_inputs(width):
    model = WideResNet(10, width, in_channels=1, num_classes=10).eval()
    for size in (8, 28, 32):
        out = model(torch.randn(2, 1, size, size))
        assert out.shape == (2, 10)
        assert torch.isfinite(out).all()


def test_channels_round_half_up_and_never_zero():
    assert wrn_channels(1 / 64) == (1, 1, 1)
    assert wrn_channels(1 / 32) == (1, 1, 2)
    assert wrn_channels(2.5) == (40, 80, 160)


@pytest.mark.parametrize("depth", [9, 12, 0, -2, 10.5, True])
def test_bad_depth_is_named(depth):
    with pytest.raises(ValueError, match="6n\\+4"):
        wrn_param_count(depth, 1.0, 3, 10)


@pytest.mark.parametrize("width", [0, -1.0, float("nan"), float("inf")])
def test_bad_width_is_named(width):
    with pytest.raises(ValueError, match="width"):
        WideResNet(10, width, 3, 10)


def test_registry_lists_refuses_duplicates_and_unknown_names():
    assert "wrn" in list_families()
    with pytest.raises(ValueError, match="already registered"):
        register_family("wrn", lambda d, w, c, k: None)
    with pytest.raises(ValueError, match="registered families: .*wrn"):
        get_family("resnet-9000")


def test_user_family_without_analytic_count_counts_a_built_model():
    def mlp(depth, width, in_channels, num_classes):
        h = max(1, round(32 * width))
        layers = [torch.nn.Flatten(), torch.nn.Linear(in_channels * 64, h), torch.nn.ReLU()]
        for _ in range(depth - 1):
            layers += [torch.nn.Linear(h, h), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers, torch.nn.Linear(h, num_classes))

    fam = register_family("test-mlp", mlp, overwrite=True)
    n = fam.count(2, 1.0, 1, 10)
    assert n == (64 * 32 + 32) + (32 * 32 + 32) + (32 * 10 + 10)
