"""Precision names, bits and sizes; the design space's precisions and identity."""

import pytest

from optuna_shape import Shape, ShapeSpace
from optuna_shape.space.precision import (
    BITS,
    PRECISIONS,
    bytes_per_param,
    parse_precisions,
    unsupported_reason,
)


def test_parse_gives_canonical_order_from_strings_and_sequences():
    assert parse_precisions("int8,fp32") == ("fp32", "int8")
    assert parse_precisions(" bf16 , int8,fp32 ") == PRECISIONS
    assert parse_precisions(["int8", "bf16"]) == ("bf16", "int8")
    assert parse_precisions(("fp32",)) == ("fp32",)


@pytest.mark.parametrize(("spec", "message"), [
    ("fp32,int4", "unknown precision 'int4'; valid precisions are fp32, bf16, int8"),
    (["FP32"], "unknown precision 'FP32'"),
    ([8], "unknown precision 8"),
    ("int8,int8", "precision 'int8' given twice"),
    ("", "no precision given"),
    ([], "no precision given"),
    (5, "precisions must be a comma-separated string or a list"),
])
def test_bad_precisions_raise_one_clear_error(spec, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_precisions(spec)


def test_bits_and_bytes_per_param():
    assert BITS == {"fp32": 32, "bf16": 16, "int8": 8}
    assert [bytes_per_param(p) for p in PRECISIONS] == [4.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        bytes_per_param("fp8")


def test_int8_runs_on_cpu_only():
    assert unsupported_reason("int8", "cpu") is None
    assert "CPU only" in unsupported_reason("int8", "cuda:1")
    assert unsupported_reason("bf16", "cuda") is None and unsupported_reason("fp32", "cuda") is None


def _space(**kw):
    return ShapeSpace("wrn", depth=[10, 16], width=[0.5, 1.0], in_channels=1, num_classes=10,
                      image_size=8, **kw)


def test_space_stores_parsed_precisions_and_sizes_follow_the_bits():
    space = _space(precision="int8,fp32,bf16")
    assert space.precisions == ("fp32", "bf16", "int8")
    assert _space().precisions == ("fp32",)
    shape = Shape(16, 1.0)
    n = space.param_count(shape)
    assert space.size_mb(shape) == space.size_mb(shape, "fp32") == n * 4 / 1e6
    assert space.size_mb(shape, "bf16") == n * 2 / 1e6
    assert space.size_mb(shape, "int8") == n / 1e6
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        space.size_mb(shape, "int4")
    with pytest.raises(ValueError, match="unknown precision 'fp64'"):
        _space(precision=("fp32", "fp64"))


def test_bytes_per_param_applies_to_fp32_only():
    space = _space(bytes_per_param=2, precision=PRECISIONS)
    shape = Shape(10, 0.5)
    n = space.param_count(shape)
    assert space.size_mb(shape) == n * 2 / 1e6
    assert space.size_mb(shape, "int8") == n / 1e6


def test_default_precision_keeps_the_space_identity():
    plain = _space()
    assert "precisions" not in plain.to_dict()
    assert plain.fingerprint() == _space(precision="fp32").fingerprint()
    # This space's fingerprint before precisions existed: stored studies keep their identity.
    assert plain.fingerprint() == "2fca0ae642ee"
    lower = _space(precision="fp32,int8")
    assert lower.to_dict()["precisions"] == ["fp32", "int8"]
    assert lower.fingerprint() != plain.fingerprint() and lower != plain
    assert ShapeSpace.from_dict(lower.to_dict()) == lower
    assert "precision=('fp32', 'int8')" in repr(lower) and "precision" not in repr(plain)
