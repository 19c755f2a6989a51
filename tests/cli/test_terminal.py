"""``optuna-shape search`` stays readable in a terminal 80 and 200 columns wide and when piped:
the result lines are the same in all three (nothing wrapped), no line is wider than the terminal,
table rows stay whole, and a pipe gets no colour codes."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["search", "--depth", "10,16", "--width", "0.25,0.5", "--epochs", "1", "--subset", "120",
        "--max-trainings", "3", "--threads", "1", "--max-latency-ms", "10000",
        "--no-dashboard", "--study-name", "term"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
SHAPE = re.compile(r"\(\d+, [0-9.]+\)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OPTUNA_STORAGE", "COLUMNS", "LINES"):
        env.pop(k, None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TERM"] = "xterm-256color"
    return env


def run_in_pty(cwd: Path, columns: int) -> tuple[int, str]:
    """Run the search with a pseudo-terminal of ``columns`` columns as stdout and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "optuna_shape", *ARGS], cwd=cwd, env=_env(),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def screen_lines(raw: str) -> list[str]:
    """What stays on screen, by a minimal terminal: text, ``\\r``, ``\\n``, cursor up
    (``ESC[nA``), erase line (``ESC[2K``); colours and other escapes are dropped."""
    lines: list[list[str]] = [[]]
    row = col = 0
    pos = 0
    token = re.compile(r"\x1b\[([\d;?]*)([A-Za-z])|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\r|\n")
    for m in token.finditer(raw + "\x1b[0m"):
        for ch in raw[pos:m.start()]:
            line = lines[row]
            line.extend(" " * (col - len(line) + 1) if col >= len(line) else "")
            line[col] = ch
            col += 1
        pos = m.end()
        text = m.group(0)
        if text == "\r":
            col = 0
        elif text == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append([])
        elif m.group(2) == "A":
            row = max(0, row - int(m.group(1) or 1))
        elif m.group(2) == "K":
            lines[row] = lines[row][:col] if m.group(1) in ("", "0") else []
    return ["".join(x).rstrip() for x in lines]


def normalised(lines: list[str]) -> list[str]:
    """Lines with numbers replaced (latency is measured anew in each run)."""
    return [" ".join(re.sub(r"\d+(\.\d+)?", "N", x).split()) for x in lines]


def result_section(lines: list[str]) -> list[str]:
    """From the result table's title to the end, without the storage-path lines."""
    start = next(i for i, x in enumerate(lines) if x.startswith("term: complying shapes"))
    return [x for x in lines[start:] if x and not x.startswith(("inspect it:", "reprint it:"))]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, tuple[int, str]]:
    out = {}
    for cols in (80, 200):
        cwd = tmp_path_factory.mktemp(f"pty{cols}")
        out[f"pty{cols}"] = run_in_pty(cwd, cols)
    cwd = tmp_path_factory.mktemp("piped")
    proc = subprocess.run([sys.executable, "-m", "optuna_shape", *ARGS], cwd=cwd, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    out["piped"] = (proc.returncode, proc.stdout)
    return out


def test_every_mode_answers_without_traceback(outputs):
    for name, (rc, text) in outputs.items():
        assert rc == 0, (name, text[-2000:])
        assert "Traceback" not in text and "CUDA runtime" not in text, name


def test_result_lines_identical_at_80_200_columns_and_piped(outputs):
    sections = {name: result_section(screen_lines(text)) for name, (_, text) in outputs.items()}
    norm = {k: normalised(v) for k, v in sections.items()}
    assert norm["pty80"] == norm["pty200"] == norm["piped"], sections
    sec = sections["piped"]
    assert any(x.startswith("chosen shape: depth") for x in sec)
    rule = next(i for i, x in enumerate(sec) if x.strip().startswith("─"))
    rows = sec[rule + 1:next(i for i, x in enumerate(sec) if x.startswith("chosen shape"))]
    assert len(rows) == 4 and all(len(SHAPE.findall(x)) == 1 for x in rows), rows
    # one row per line, columns aligned: shapes start, sizes end at the same column
    assert len({SHAPE.search(x).start() for x in rows}) == 1, rows
    assert len({re.search(r"\d\.\d{4}", x).end() for x in rows}) == 1, rows


def test_no_line_wider_than_the_terminal(outputs):
    for cols in (80, 200):
        for line in screen_lines(outputs[f"pty{cols}"][1]):
            if line.startswith(("inspect it:", "reprint it:")):
                continue  # a command to copy: kept whole, the terminal may fold it
            assert len(line) <= cols, (cols, line)


def test_pipe_gets_plain_text_and_whole_lines(outputs):
    _, text = outputs["piped"]
    assert "\x1b" not in text
    lines = text.splitlines()
    reprint = [x for x in lines if x.startswith("reprint it:")]
    assert reprint == ["reprint it: optuna-shape report --study-name term"]
    assert any(x.startswith("design space: 4 shapes") for x in lines)
