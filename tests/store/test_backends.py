"""Storage backends: the one password masker, and the probe of Optuna's gRPC proxy server."""

from __future__ import annotations

import doctest
import sys
import types

import pytest

from optuna_shape.cli import _common, main
from optuna_shape.store import backends
from optuna_shape.store.backends import grpc_proxy_problem, mask_url

GENERATED = "optuna.storages._grpc.auto_generated"


def test_mask_url_doctest():
    assert doctest.testmod(backends).failed == 0


@pytest.mark.parametrize("text, masked", [
    ("postgresql://u:p%40ss@h:5/db", "postgresql://u:***@h:5/db"),
    ("x postgresql://osh:p%40ss-w0rd@db.example:5432/s y",
     "x postgresql://osh:***@db.example:5432/s y"),
    ("sqlite:///a.db", "sqlite:///a.db"),
    ("grpc://localhost:13000", "grpc://localhost:13000"),
    ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),  # SQLAlchemy: '/' in a password
    ("postgresql://u:pa ss@h/db", "postgresql://u:***@h/db"),
    ("redis://:secret@h:6379", "redis://:***@h:6379"),  # no user
    ("'://u:pw@h'", "'://u:***@h'"),  # no scheme
    ("a://u:p1@h and b://v:p2@k", "a://u:***@h and b://v:***@k"),
    ("postgresql://u:***@h/db", "postgresql://u:***@h/db"),  # masking twice changes nothing
    ("at http://localhost:8080\nmail a@b", "at http://localhost:8080\nmail a@b"),  # one line
    ("--storage grpc://127.0.0.1:13000 is a gRPC proxy itself; serve a database: --storage "
     "sqlite:///FILE or postgresql://USER:PW@HOST/DB",  # not into the next URL
     "--storage grpc://127.0.0.1:13000 is a gRPC proxy itself; serve a database: --storage "
     "sqlite:///FILE or postgresql://USER:***@HOST/DB"),
])
def test_mask_url_masks_every_url_password(text, masked):
    assert mask_url(text) == masked


def test_mask_url_masks_given_secrets_and_the_cli_uses_it():
    assert mask_url("failed for p@ss-w0rd", ("p@ss-w0rd",)) == "failed for ***"
    assert mask_url("failed for abc", ("",)) == "failed for abc"
    assert _common.mask is mask_url


def test_grpc_proxy_problem_is_none_when_the_server_loads():
    pytest.importorskip("grpc")
    assert grpc_proxy_problem() is None


def test_grpc_proxy_problem_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, GENERATED, None)  # as without grpcio
    assert grpc_proxy_problem() == (
        'the gRPC storage proxy needs grpcio and protobuf: pip install "optuna-shape[grpc]"')


class _TooOld(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        raise TypeError("Descriptors cannot be\n created directly.")


def test_grpc_proxy_problem_of_too_old_a_protobuf_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, GENERATED, _TooOld(GENERATED))
    problem = grpc_proxy_problem()
    assert problem == ("Optuna's gRPC proxy does not load (Descriptors cannot be created "
                       'directly.); pip install --upgrade "optuna-shape[grpc]"')


def test_the_proxy_command_refuses_with_the_probes_line(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    monkeypatch.setitem(sys.modules, GENERATED, None)
    assert main(["proxy", "--storage", f"sqlite:///{tmp_path / 'p.db'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {grpc_proxy_problem()}"]
