"""Fixtures for the multi-process tests: worker processes and gRPC proxies (the PostgreSQL
server and its per-test databases are in ``tests/conftest.py``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ workers ------
class Workers:
    """Worker processes (``osh_worker.py``) of one test, killed if still alive at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, name: str | None = None) -> subprocess.Popen:
        n = len(self.procs)
        out = open(self.tmp / f"{name or f'worker{n}'}.out", "w")  # noqa: SIM115
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        p = subprocess.Popen([sys.executable, str(HERE / "osh_worker.py"), *args],
                             stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.tmp)
        p.out_path = out.name  # type: ignore[attr-defined]
        out.close()
        self.procs.append(p)
        return p

    def output(self, p: subprocess.Popen) -> str:
        return Path(p.out_path).read_text()  # type: ignore[attr-defined]

    def wait_all(self, timeout: float, procs: list[subprocess.Popen] | None = None,
                 url: str | None = None) -> None:
        """Wait for every process to exit by itself; fail if any hangs, with their output, the
        Python stacks of the hung ones (when ``py-spy`` is installed) and, given the storage
        ``url``, every trial's state."""
        deadline = time.monotonic() + timeout
        for p in procs or self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stacks = "\n".join(_stack(q) for q in self.procs if q.poll() is None)
                for q in self.procs:
                    if q.poll() is None:
                        q.kill()
                outs = "\n".join(f"--- pid {q.pid}:\n{self.output(q)[-2000:]}"
                                 for q in self.procs)
                trials = _trial_states(url) if url else ""
                pytest.fail(f"worker {p.pid} did not exit within {timeout:.0f} s\n{outs}\n"
                            f"{stacks}\n{trials}")

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def _stack(p: subprocess.Popen) -> str:
    """The Python stacks of a live process, by ``py-spy dump`` when it is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(spy):
        return f"--- pid {p.pid}: (install py-spy to see where it hangs)"
    try:
        out = subprocess.run([spy, "dump", "--pid", str(p.pid)], capture_output=True, text=True,
                             timeout=30)
        return f"--- stacks of pid {p.pid}:\n{out.stdout}{out.stderr}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"--- pid {p.pid}: py-spy failed: {exc}"


def _trial_states(url: str) -> str:
    """One line per trial of the study ``w``: number, state, params, stage, slot."""
    import optuna

    try:
        study = optuna.load_study(study_name="w", storage=url)
        lines = [f"#{t.number} {t.state.name} {t.params} stage={t.user_attrs.get('stage')} "
                 f"sys={ {k: v for k, v in t.system_attrs.items() if 'osh' in k} }"
                 for t in study.get_trials(deepcopy=False)]
        return "--- trials:\n" + "\n".join(lines)
    except Exception as exc:  # a diagnosis must not hide the failure
        return f"--- trials could not be read: {exc}"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    try:
        yield w
    finally:
        w.cleanup()


# ------------------------------------------------------------------------------ gRPC proxy ---
class GrpcProxies:
    """``optuna-shape proxy`` processes of one test (stopped at teardown)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, storage_url: str, *, ready_timeout: float = 60.0) -> str:
        """Start a proxy in front of ``storage_url`` on a free loopback port; return its
        ``grpc://127.0.0.1:PORT`` URL once it answers. A port taken between choosing it and
        binding it (another process won the race) is retried on another port."""
        pytest.importorskip("grpc", reason="the gRPC proxy tests need grpcio (the test extra)")
        from optuna.storages import GrpcStorageProxy

        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""))
        last = ""
        for _attempt in range(3):
            port = _free_port()
            log = self.tmp / f"proxy{len(self.procs)}.out"
            with open(log, "w") as out:
                p = subprocess.Popen(
                    [sys.executable, "-m", "optuna_shape", "proxy", "--storage", storage_url,
                     "--host", "127.0.0.1", "--port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.tmp)
            p.out_path = str(log)  # type: ignore[attr-defined]
            self.procs.append(p)
            client = GrpcStorageProxy(host="127.0.0.1", port=port)
            deadline = time.monotonic() + ready_timeout
            try:
                while p.poll() is None and time.monotonic() < deadline:
                    try:
                        client.wait_server_ready(timeout=0.5)
                        return f"grpc://127.0.0.1:{port}"
                    except ConnectionError:
                        continue
            finally:
                client.close()
            last = log.read_text()
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
                pytest.fail(f"the gRPC proxy did not answer within {ready_timeout:.0f} s:\n"
                            f"{last[-2000:]}")
            if "cannot listen" not in last:
                break  # failed for another reason than the port: do not retry
        pytest.fail(f"the gRPC proxy did not start:\n{last[-2000:]}")

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)


@pytest.fixture
def grpc_proxy(tmp_path: Path) -> Iterator[GrpcProxies]:
    """Starts real ``optuna-shape proxy`` processes: ``grpc_proxy.start(db_url)`` returns the
    ``grpc://`` URL workers use."""
    proxies = GrpcProxies(tmp_path)
    try:
        yield proxies
    finally:
        proxies.cleanup()
