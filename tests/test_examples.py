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
    assert "FutureWarning" not in proc.stderr, proc.stderr[-2000:]  # a deprecated keyword


def test_cifar_example_is_importable():
    src = (ROOT / "examples" / "cifar10_gpu.py").read_text()
    compile(src, "cifar10_gpu.py", "exec")


# ------------------------------------------------------------------ the cluster recipe ---
CLUSTER = ROOT / "examples" / "cluster"


def _logical_lines(text: str) -> list[str]:
    """Shell text with backslash-continued lines joined and comments dropped."""
    import re

    text = re.sub(r"\\\n\s*", " ", text)
    return [line.split(" #", 1)[0] for line in text.splitlines()
            if not line.lstrip().startswith("#")]


def _check_optuna_shape_commands(text: str) -> int:
    """Every ``optuna-shape COMMAND --flag`` in ``text`` names a flag the command has; returns
    how many commands were checked."""
    import shlex

    from optuna_shape.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    seen = 0
    for line in _logical_lines(text):
        words = shlex.split(line, posix=True) if "optuna-shape" in line else []
        for i, word in enumerate(words[:-1]):
            if word != "optuna-shape" or words[i + 1] not in sub:
                continue
            options = {o for a in sub[words[i + 1]]._actions for o in a.option_strings}
            for arg in words[i + 2:]:
                if arg.startswith("--"):
                    assert arg.split("=", 1)[0] in options, (words[i + 1], arg, line)
            seen += 1
    return seen


@pytest.mark.parametrize("script", sorted(p.name for p in CLUSTER.glob("*")
                                          if p.suffix in (".sh", ".sbatch")))
def test_cluster_shell_scripts_parse_and_use_real_flags(script):
    path = CLUSTER / script
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = path.read_text()
    assert text.startswith("#!/bin/bash\n")
    if script.endswith(".sbatch"):
        assert _check_optuna_shape_commands(text) == 1


def test_kubernetes_manifest_parses_and_uses_real_flags():
    yaml = pytest.importorskip("yaml")
    docs = [d for d in yaml.safe_load_all((CLUSTER / "kubernetes.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "Job"}
    job = kinds["Job"]["spec"]
    assert job["parallelism"] >= 2 and "completions" not in job  # a work-queue Job
    pod = job["template"]["spec"]
    worker = pod["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e.get("value") for e in worker["env"]}
    service = kinds["Service"]["metadata"]["name"]
    port = kinds["Service"]["spec"]["ports"][0]["port"]
    assert env["OPTUNA_STORAGE"] == f"grpc://{service}:{port}"
    script = worker["args"][0]
    proc = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert _check_optuna_shape_commands(script) == 1
    proxy = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert _check_optuna_shape_commands(" ".join(proxy["command"])) == 1
    assert str(port) in proxy["command"]
    wait = pod["initContainers"][0]["command"]
    assert wait[:2] == ["python", "-c"]
    compile(wait[2], "wait-for-proxy", "exec")
