"""The examples run end to end with tiny settings (environment variables shrink them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["quickstart_digits.py", "custom_family.py"])
def test_example_runs(script, tmp_path):
    env = dict(os.environ, OSH_EPOCHS="1", OSH_SUBSET="150", OSH_MAX_TRAININGS="6",
               OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "chosen shape:" in proc.stdout


def test_cifar_example_is_importable():
    src = (ROOT / "examples" / "cifar10_gpu.py").read_text()
    compile(src, "cifar10_gpu.py", "exec")
