"""The store package: its front re-exports every submodule's names, and no submodule imports
the front (so importing any one of them first works, without an import cycle)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from optuna_shape import store as st

STORE = Path(st.__file__).resolve().parent
SUBMODULES = ["keys", "records", "measurements", "trials", "slots", "engine"]


@pytest.mark.parametrize("name", SUBMODULES)
def test_every_name_of_a_submodule_is_the_same_object_on_the_front(name):
    module = importlib.import_module(f"optuna_shape.store.{name}")
    for attr in module.__all__:
        assert getattr(st, attr) is getattr(module, attr), attr
        assert attr in st.__all__, attr


@pytest.mark.parametrize("path", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_no_submodule_imports_the_package_front(path):
    if path.name == "__init__.py":
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "optuna_shape":
            assert all(a.name != "store" for a in node.names), path.name
        if isinstance(node, ast.ImportFrom) and node.module == "optuna_shape.store":
            raise AssertionError(f"{path.name} imports from the package front")


@pytest.mark.parametrize("name", [*SUBMODULES, "backends", "attributes"])
def test_each_submodule_imports_first_on_its_own(name):
    code = f"import optuna_shape.store.{name}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
