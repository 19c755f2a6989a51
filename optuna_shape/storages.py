"""Opening Optuna storages for shape searches shared by several workers.

``open_storage`` turns a URL into a storage with the settings a multi-worker search needs:

* ``None`` or ``":memory:"`` — in-memory (one process; returns ``None`` so Optuna creates it);
* ``sqlite:///path.db`` — RDB storage with heartbeats and a generous lock timeout, so several
  processes on one machine can share the file; every transaction takes the write lock when it
  begins (``BEGIN IMMEDIATE``), which makes Optuna's queue pop atomic across processes (with
  the driver's default, two processes can pop the same queued trial);
* ``postgresql://user:pw@host/db`` (or any SQLAlchemy URL) — RDB storage with heartbeats, the
  engine for workers on several machines;
* ``journal:path`` or a path ending in ``.log`` / ``.journal`` — Optuna's journal file storage,
  for shared file systems without a database. It has **no heartbeats**: a killed worker's trial
  stays RUNNING, and the other workers wait for it (logging a warning once a minute). Recovery is
  explicit: once every worker is stopped, restart with
  ``fail_stale_on_start(study, older_than_s=0)`` (or a value longer than any training while other
  workers still run), which marks such trials failed so their shapes are trained again.

``postgresql://`` URLs use psycopg2 when it is installed, else psycopg 3 (the driver the
``postgres`` extra installs): the URL is rewritten to ``postgresql+psycopg://``.

Bad URLs give a one-line ``ValueError`` naming the URL (password masked) and what to check.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import random
import re
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_shape.storage import fail_stale, make_sqlite_atomic

__all__ = ["open_storage", "fail_stale_on_start", "mask_url", "has_heartbeat", "resolve_driver"]


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def resolve_driver(url: str) -> str:
    """``url`` with a PostgreSQL driver SQLAlchemy can load.

    A bare ``postgresql://`` means psycopg2 to SQLAlchemy; when only psycopg 3 is installed (as by
    ``pip install "optuna-shape[postgres]"``) it is rewritten to ``postgresql+psycopg://``.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    import importlib.util

    rest = url.split("://", 1)[1]
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql://" + rest
    if importlib.util.find_spec("psycopg") is not None:
        return "postgresql+psycopg://" + rest
    return "postgresql://" + rest


def _journal_path(url: str) -> str | None:
    if url.startswith("journal:"):
        return url[len("journal:"):].removeprefix("//")
    if "://" not in url and url.endswith((".log", ".journal")):
        return url
    return None


def open_storage(
    url: str | None,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = None,
) -> optuna.storages.BaseStorage | None:
    """Open the storage named by ``url`` (see the module docstring for the forms).

    Args:
        url: storage URL, or ``None`` / ``":memory:"`` for in-memory.
        heartbeat_interval: seconds between heartbeats of running trials (RDB only); a trial
            whose worker stopped beating for ``grace_period`` seconds is failed and its shape
            trained again. ``None`` disables heartbeats.
        grace_period: defaults to 3 × ``heartbeat_interval``.

    Raises:
        ValueError: an unknown scheme, a missing database driver, an unreachable server, or a
            SQLite file in a directory that does not exist.
    """
    if url is None or url in (":memory:", "memory", ""):
        return None
    if not isinstance(url, str):
        raise ValueError(f"storage must be a URL string, got {url!r}")
    shown = mask_url(url)
    path = _journal_path(url)
    if path is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"cannot open storage {shown!r}: directory {folder!r} does not exist")
        return JournalStorage(JournalFileBackend(path))
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        raise ValueError(
            f"cannot open storage {shown!r}: expected a URL such as sqlite:///study.db, "
            "postgresql://user:password@host/db or journal:study.log"
        )
    engine_kwargs: dict[str, Any] = {}
    if scheme.startswith("sqlite"):
        file = url.split(":///", 1)[1] if ":///" in url else ""
        if file and file != ":memory:":
            folder = os.path.dirname(os.path.abspath(file))
            if not os.path.isdir(folder):
                raise ValueError(
                    f"cannot open storage {shown!r}: directory {folder!r} does not exist"
                )
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif scheme.startswith(("postgresql", "postgres")):
        if importlib.util.find_spec("psycopg2") is None and \
                importlib.util.find_spec("psycopg") is None:
            raise ValueError(
                f"cannot open storage {shown!r}: no PostgreSQL driver installed "
                "(pip install 'optuna-shape[postgres]' or psycopg2-binary)"
            )
        url = resolve_driver(url)
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    if heartbeat_interval is not None and grace_period is None:
        grace_period = 3 * heartbeat_interval
    try:
        return _rdb_storage(url, engine_kwargs, heartbeat_interval,
                            grace_period if heartbeat_interval is not None else None)
    except ModuleNotFoundError as exc:
        hint = " (pip install 'optuna-shape[postgres]')" if "psycopg" in str(exc) else ""
        raise ValueError(
            f"cannot open storage {shown!r}: database driver missing: {exc.name}{hint}"
        ) from None
    except Exception as exc:  # SQLAlchemy / driver errors: one clear line, no traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(url, shown)
        if "://" in shown:  # SQLAlchemy may echo the URL (with the password) in its message
            first = mask_url(first)
        raise ValueError(
            f"cannot open storage {shown!r}: {type(exc).__name__}: {first[:300]}. Check the "
            "scheme, host, port, database name and credentials, and that the server is running."
        ) from None


_SCHEMA_RACE = ("unique constraint", "duplicate key", "already exists", "database is locked")


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], heartbeat_interval: int | None,
                 grace_period: int | None) -> optuna.storages.RDBStorage:
    """``RDBStorage(...)``, retried when workers started together race to create the schema.

    Several processes opening a *new* database at once all try to create Optuna's tables and
    its ``alembic_version`` row; the losers fail with ``UNIQUE constraint failed:
    alembic_version.version_num`` (SQLite) or ``duplicate key`` / ``already exists``
    (PostgreSQL). The schema is complete once the winner commits, so opening again succeeds.
    """
    import warnings

    delay = 0.2
    for attempt in range(8):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                )
            make_sqlite_atomic(storage)  # Optuna's queue pop is not atomic on plain SQLite
            return storage
        except Exception as exc:
            text = str(exc).lower()
            if attempt == 7 or not any(m in text for m in _SCHEMA_RACE):
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def has_heartbeat(storage: Any) -> bool:
    """Whether ``storage`` fails the trials of dead workers by itself (RDB with heartbeats)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    # ``study._storage`` wraps an RDBStorage in Optuna's _CachedStorage: ask Optuna's helper.
    return is_heartbeat_enabled(storage)


def fail_stale_on_start(study: optuna.Study, *, older_than_s: float | None = None) -> int:
    """Mark the trials of workers that died as failed, so a restarted search retrains them.

    With heartbeats, Optuna's own stale check is run (other workers' live trials keep beating and
    are left alone). Without heartbeats (journal storage), RUNNING trials that started more than
    ``older_than_s`` seconds ago are failed — pass it only when no other worker is running, or a
    value larger than any training takes. Returns the number of trials failed.
    """
    storage = study._storage
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if has_heartbeat(storage):
        fail_stale(study)
    elif older_than_s is not None:
        now = datetime.datetime.now(datetime.timezone.utc)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            start = t.datetime_start
            if start is None:
                continue
            if start.tzinfo is None:
                start = start.replace(tzinfo=datetime.timezone.utc)
            if (now - start).total_seconds() > older_than_s:
                storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return len(before - after)
