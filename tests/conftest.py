"""Fixtures shared by the whole suite: a real PostgreSQL server and a fresh database per test.

With ``OSH_TEST_POSTGRES_URL`` set (``.ci/run`` sets it) that server is used; otherwise a
throwaway PostgreSQL cluster is started here (``initdb`` / ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` or ``PATH``; as root the server runs as the ``postgres`` user, since
PostgreSQL refuses root) and stopped at the end of the session. The tests are skipped, with the
reason, only when neither is possible.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


# ------------------------------------------------------------------------------ PostgreSQL ---
def _pg_bin() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    if user is None:
        return cmd
    import shlex

    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(cmd)]


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[str]:
    """Start a PostgreSQL cluster on a free loopback port; yield its URL."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found; install "
                           "postgresql-15 or set OSH_TEST_POSTGRES_URL")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to run the "
                               "server as; set OSH_TEST_POSTGRES_URL") from None
        user = "postgres"
    tmp = tempfile.mkdtemp(prefix="osh-pg-")
    if user is not None:
        shutil.chown(tmp, user=user)
    data = os.path.join(tmp, "data")
    port = _free_port()
    initdb = [os.path.join(bin_dir, "initdb"), "-D", data, "-U", "postgres", "-A", "trust"]
    pg_ctl = os.path.join(bin_dir, "pg_ctl")
    started = False
    try:
        r = subprocess.run(_as_user(initdb, user), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {(r.stderr or r.stdout).strip()[-300:]}")
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=200"
        start = [pg_ctl, "-D", data, "-l", os.path.join(tmp, "log"), "-w", "-t", "60",
                 "-o", opts, "start"]
        r = subprocess.run(_as_user(start, user), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            log = Path(tmp, "log").read_text() if Path(tmp, "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {(r.stderr or r.stdout or log)[-300:]}")
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(_as_user([pg_ctl, "-D", data, "-m", "immediate", "stop"], user),
                           capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server (a database on it the tests may create databases from)."""
    url = os.environ.get("OSH_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        cm = _throwaway_cluster()
        url = cm.__enter__()
    except Exception as exc:  # noqa: BLE001 - any reason becomes the skip reason
        pytest.skip(f"PostgreSQL tests need OSH_TEST_POSTGRES_URL or a startable server: {exc}")
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


def _admin_engine(url: str):  # noqa: ANN202
    import sqlalchemy

    from optuna_shape.store.backends import resolve_driver

    return sqlalchemy.create_engine(resolve_driver(url), isolation_level="AUTOCOMMIT",
                                    poolclass=sqlalchemy.pool.NullPool)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    import sqlalchemy

    name = f"osh_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(postgres_server)
    try:
        with engine.connect() as c:
            c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"cannot create a database on {postgres_server}: {exc}")
    url = sqlalchemy.engine.make_url(postgres_server).set(database=name)
    yield url.render_as_string(hide_password=False)
    with contextlib.suppress(Exception), engine.connect() as c:
        c.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
