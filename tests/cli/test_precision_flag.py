"""``optuna-shape search --precision``: bad values are one ``error:`` line, exit 2."""

from __future__ import annotations

import argparse

import pytest

from optuna_shape.cli import main
from optuna_shape.cli.search import _space


@pytest.mark.parametrize("value", ["fp16", "fp32,fp32", ""])
def test_bad_precision_is_one_error_line_exit_2(capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--precision", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "--precision" in err[0]
    assert repr(value) in err[0] or value in err[0]


def test_several_precisions_refuse_paper_mode(capsys, tmp_path):
    code = main(["search", "--precision", "fp32,int8", "--mode", "paper",
                 "--storage", f"sqlite:///{tmp_path / 'x.db'}"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mode adaptive" in err[0] and "fp32,int8" in err[0]
    assert not (tmp_path / "x.db").exists()


def test_precision_flag_makes_a_space_over_pairs():
    from optuna_shape.training.datasets import DatasetInfo

    info = DatasetInfo("digits", in_channels=1, num_classes=10, image_size=8,
                       natural_images=False)
    args = argparse.Namespace(family="wrn", depth="10,16", width="0.5,1", precision="int8,fp32",
                              mode=None, max_size_mb=0.03)  # only int8 fits
    space = _space(args, info)
    assert space.precisions == ("fp32", "int8")
    args.max_size_mb = 0.001  # below even the int8 size of the smallest shape
    from optuna_shape.cli._common import UsageError

    with pytest.raises(UsageError, match="smallest shape"):
        _space(args, info)
