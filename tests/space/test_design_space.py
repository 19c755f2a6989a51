"""ShapeSpace: grids from ranges or lists, exact size, clear errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optuna_shape import Shape, ShapeSpace
from optuna_shape.space.design_space import expand_range, parse_values


def test_paper_design_spaces_have_the_paper_sizes():
    # Paper Table 2 (its max bounds are exclusive; ours are inclusive, so we give the last value).
    assert len(ShapeSpace(depth=(10, 58, 6), width="1/16:15/16:1/16", in_channels=1)) == 135
    assert len(ShapeSpace(depth=(10, 58, 6), width=(1, 5, 1))) == 45
    assert len(ShapeSpace(depth=(10, 58, 6), width=(1, 5.75, 0.25))) == 180
    assert len(ShapeSpace(depth=(16, 52, 6), width=(2, 10, 0.5), num_classes=1000)) == 119


def test_shapes_are_in_paper_order_width_then_depth():
    space = ShapeSpace(depth=[10, 16], width=[2, 1])
    assert space.shapes == [Shape(10, 1.0), Shape(16, 1.0), Shape(10, 2.0), Shape(16, 2.0)]


def test_spec_example_and_size():
    space = ShapeSpace(family="wrn", depth=(10, 40, 6), width=(0.25, 2.0, 0.25),
                       in_channels=1, num_classes=10)
    assert space.depths == [10, 16, 22, 28, 34, 40]
    assert space.widths == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    s = space.shapes[5]
    model = space.build(s)
    assert space.param_count(s) == sum(p.numel() for p in model.parameters())
    assert space.size_mb(s) == space.param_count(s) * 4 / 1e6
    assert (16, 0.25) in space and (16, 0.3) not in space and "x" not in space


def test_fractional_ranges_have_no_float_drift():
    assert expand_range("width", 0.1, 1.0, 0.1)[-1] == 1.0
    assert len(expand_range("width", 2, 10.5, 0.5)) == 18


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(depth=(10, 40, 0)), "depth step must be > 0, got step=0"),
        (dict(depth=(10, 40, -6)), "step=-6"),
        (dict(depth=(40, 10, 6)), "min=40 > max=10"),
        (dict(depth=(12, 40, 6)), "depth=12"),
        (dict(depth=[10, 16.5]), "16.5"),
        (dict(width=(0, 1, 0.5)), "got width=0$"),
        (dict(depth=[0, 10]), "positive integers, got depth=0$"),
        (dict(width=[-1, 1]), "width=-1"),
        (dict(width=[]), "width list is empty"),
        (dict(width=[1, 1]), "duplicates"),
        (dict(width="a,b"), "cannot parse width"),
        (dict(width=(1, float("nan"), 1)), "max must be a finite number"),
        (dict(in_channels=0), "in_channels=0"),
        (dict(num_classes=1), "num_classes=1"),
        (dict(image_size=0), "image_size"),
        (dict(family="nope"), "unknown model family 'nope'"),
    ],
)
def test_bad_specs_name_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShapeSpace(**kwargs)


def test_string_specs():
    assert parse_values("depth", "10:22:6") == [10, 16, 22]
    assert parse_values("width", "1,2,4,8") == [1, 2, 4, 8]
    assert parse_values("width", "1/16, 2/16") == [0.0625, 0.125]


def test_round_trip_and_fingerprint():
    space = ShapeSpace(depth=[10, 16], width=[0.5, 1.0], in_channels=1, image_size=8)
    again = ShapeSpace.from_dict(space.to_dict())
    assert again == space and again.fingerprint() == space.fingerprint()
    other = ShapeSpace(depth=[10, 16], width=[0.5, 1.0], in_channels=3, image_size=8)
    assert other != space


def test_index_of_a_foreign_shape_is_a_clear_error():
    space = ShapeSpace(depth=[10], width=[1.0])
    with pytest.raises(ValueError, match="not in the design space"):
        space.index((16, 1.0))


@given(
    lo=st.integers(min_value=0, max_value=20),
    n=st.integers(min_value=1, max_value=12),
    step_16ths=st.integers(min_value=1, max_value=32),
)
def test_ranges_include_both_ends_and_keep_step(lo, n, step_16ths):
    step = step_16ths / 16
    start = lo / 4 + step
    hi = start + (n - 1) * step
    values = expand_range("width", start, hi, step)
    assert len(values) == n
    assert values[0] == pytest.approx(start) and values[-1] == pytest.approx(hi)
    assert all(b > a for a, b in zip(values, values[1:]))
    space = ShapeSpace(depth=[10, 16], width=(start, hi, step))
    assert len(space) == 2 * n


@given(st.lists(st.floats(min_value=0.01, max_value=50, allow_nan=False), min_size=1,
                max_size=10, unique=True))
def test_explicit_width_lists_are_sorted_and_kept(widths):
    space = ShapeSpace(depth=[10], width=widths)
    assert space.widths == sorted(float(w) for w in widths)
