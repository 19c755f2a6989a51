"""The DenseNet-BC family: exact analytic size, the paper's sizes, depth/width rules, a search."""

import itertools

import optuna
import pytest
import torch

import optuna_shape as osh
from optuna_shape.families import get_family
from optuna_shape.families.densenet import DenseNet
from optuna_shape.families.densenet_size import densenet_growth_rate, densenet_param_count
from optuna_shape.families.registry import meta_param_count
from optuna_shape.training import TrainConfig, make_objective


@pytest.mark.parametrize(
    "depth,width,in_channels,num_classes",
    list(itertools.product([10, 16, 40], [1 / 12, 0.3, 0.5, 1.0, 2.0, 3.3], [1, 3], [2, 100])),
)
def test_param_count_equals_built_model(depth, width, in_channels, num_classes):
    model = DenseNet(depth, width, in_channels, num_classes)
    assert densenet_param_count(depth, width, in_channels, num_classes) == sum(
        p.numel() for p in model.parameters()
    )


@pytest.mark.parametrize("depth,growth,millions",
                         [(100, 12, 0.8), (250, 24, 15.3), (190, 40, 25.6)])
def test_sizes_match_the_densenet_paper(depth, growth, millions):
    # Huang et al. (2017), Table 2, DenseNet-BC on CIFAR-10
    n = densenet_param_count(depth, growth / 12, 3, 10)
    assert round(n / 1e6, 1) == millions


def test_registered_with_its_count_rules_and_meaning():
    fam = get_family("densenet")
    assert fam.param_count is densenet_param_count
    assert "growth rate" in fam.width_meaning and fam.input_kind == "image"
    assert fam.count(22, 1.5, 3, 10) == meta_param_count(fam.build, 22, 1.5, 3, 10)


@pytest.mark.parametrize("depth", [9, 12, 4, 23])
def test_bad_depth_is_one_clear_error(depth):
    rule = r"family 'densenet': DenseNet-BC depth must be 6n\+4 .* got depth=" + str(depth)
    with pytest.raises(ValueError, match=rule) as e:
        osh.ShapeSpace("densenet", depth=[10, depth], width=[1.0], in_channels=1,
                       num_classes=10, image_size=8)
    assert "\n" not in str(e.value)


def test_growth_rate_rounds_half_up_and_never_zero():
    assert [densenet_growth_rate(w) for w in (0.01, 0.5, 1.0, 1 / 24, 2.0)] == [1, 6, 12, 1, 24]
    with pytest.raises(ValueError, match="width"):
        densenet_growth_rate(float("nan"))


def test_forward_on_small_and_large_images():
    model = DenseNet(16, 0.5, in_channels=3, num_classes=10).eval()
    for size in (8, 32):
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_search_on_digits_runs_end_to_end():
    space = osh.ShapeSpace("densenet", depth=[10, 16], width=[0.25, 0.5], in_channels=1,
                           num_classes=10, image_size=8)
    sampler = osh.ShapeSampler(space, osh.Constraints(max_size_mb=1.0), seed=0,
                               max_trainings=2)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    objective = make_objective(space, "digits", config=TrainConfig(epochs=1, threads=1),
                               subset=200)
    study.optimize(objective)
    trained = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 1 <= len(trained) <= 2
    for t in trained:
        shape = osh.Shape(t.params["depth"], t.params["width"])
        assert t.user_attrs["params"] == space.param_count(shape)
    assert osh.best_shape(study) in space
