"""The MLP family: exact analytic size, depth/width rules, feature-vector spaces, a search."""

import itertools

import pytest
import torch

import optuna_shape as osh
from optuna_shape.cli import main
from optuna_shape.families import get_family
from optuna_shape.families.mlp import MLP
from optuna_shape.families.mlp_size import mlp_hidden_units, mlp_param_count
from optuna_shape.families.registry import meta_param_count


@pytest.mark.parametrize(
    "depth,width,in_features,num_classes",
    list(itertools.product([1, 2, 5], [1 / 64, 0.3, 1.0, 2.5], [4, 30, 64], [2, 3, 10])),
)
def test_param_count_equals_built_model(depth, width, in_features, num_classes):
    model = MLP(depth, width, in_features, num_classes)
    assert mlp_param_count(depth, width, in_features, num_classes) == sum(
        p.numel() for p in model.parameters()
    )


def test_registered_as_a_feature_vector_family():
    fam = get_family("mlp")
    assert fam.input_kind == "features" and "64" in fam.width_meaning
    assert fam.count(3, 1.5, 13, 3) == meta_param_count(fam.build, 3, 1.5, 13, 3)


def test_images_are_flattened():
    model = MLP(2, 0.5, in_features=64, num_classes=10).eval()
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize("depth", [0, 1.5])
def test_bad_depth_is_one_clear_error(depth):
    with pytest.raises(ValueError, match="family 'mlp': MLP depth is the number of hidden layers"):
        get_family("mlp").validate_depth(depth)


def test_width_rule_and_rounding():
    assert [mlp_hidden_units(w) for w in (0.001, 0.25, 1.0, 1 / 128)] == [1, 16, 64, 1]
    with pytest.raises(ValueError, match="family 'mlp': width must be a positive number"):
        get_family("mlp").validate_width(float("inf"))


def test_space_takes_features_not_images():
    space = osh.ShapeSpace("mlp", depth=[1, 2], width=[0.5], in_channels=13, num_classes=3,
                           image_size=None)
    assert space.input_shape(8) == (8, 13)
    assert osh.ShapeSpace.from_dict(space.to_dict()) == space
    with pytest.raises(ValueError, match="feature vectors.*image_size=None"):
        osh.ShapeSpace("mlp", depth=[1], width=[1.0], in_channels=13, num_classes=3)
    with pytest.raises(ValueError, match="family 'wrn' takes images"):
        osh.ShapeSpace("wrn", depth=[10], width=[1.0], in_channels=13, num_classes=3,
                       image_size=None)


def test_cli_search_on_a_tabular_dataset_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["search", "--family", "mlp", "--dataset", "wine", "--depth", "1,2",
               "--width", "0.25,0.5", "--epochs", "5", "--max-trainings", "2", "--threads", "1",
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "chosen shape: depth" in out
