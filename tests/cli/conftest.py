"""Fixtures of the command-line tests: a clean environment and a PostgreSQL server whose URL
carries a password (to check that no output ever shows it)."""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

SECRET = "Shh-s3cret-PW"
"""The password put into PostgreSQL URLs by these tests (ignored by a trust-auth server)."""


@pytest.fixture(autouse=True)
def _no_storage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their storage; a user's ``OPTUNA_STORAGE`` must not leak in."""
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A password-bearing PostgreSQL URL: ``OSH_TEST_POSTGRES_URL`` (``.ci/run``), else a
    throwaway trust-auth cluster on loopback (the password is then ignored by the server)."""
    url = os.environ.get("OSH_TEST_POSTGRES_URL")
    if url:
        yield _with_password(url, SECRET)
        return
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    bin_dir = next((d for d in bins if os.access(os.path.join(d, "initdb"), os.X_OK)), None)
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries and no OSH_TEST_POSTGRES_URL")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a 'postgres' user to run the server as")
        user = "postgres"

    def as_user(cmd: list[str]) -> list[str]:
        return cmd if user is None else ["su", user, "-s", "/bin/sh", "-c", shlex.join(cmd)]

    tmp = tempfile.mkdtemp(prefix="osh-cli-pg-")
    if user:
        shutil.chown(tmp, user=user)
    data, port = os.path.join(tmp, "data"), _free_port()
    pg_ctl = os.path.join(bin_dir, "pg_ctl")
    started = False
    try:
        r = subprocess.run(as_user([os.path.join(bin_dir, "initdb"), "-D", data, "-U",
                                    "postgres", "-A", "trust"]),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.skip(f"initdb failed: {r.stderr[-200:]}")
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1"
        r = subprocess.run(as_user([pg_ctl, "-D", data, "-l", os.path.join(tmp, "log"), "-w",
                                    "-o", opts, "start"]),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.skip(f"pg_ctl start failed: {r.stderr[-200:]}")
        started = True
        yield f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(as_user([pg_ctl, "-D", data, "-m", "immediate", "stop"]),
                           capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
