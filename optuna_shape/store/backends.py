"""Opening Optuna storages for shape searches shared by several workers.

``open_storage`` turns a URL into a storage with the settings a multi-worker search needs:

* ``None`` or ``":memory:"`` — in-memory (one process; returns ``None`` so Optuna creates it);
* ``sqlite:///path.db`` — RDB storage with heartbeats and a generous lock timeout, so several
  processes on one machine can share the file; every transaction takes the write lock when it
  begins (``BEGIN IMMEDIATE``), which makes Optuna's queue pop atomic across processes (with
  the driver's default, two processes can pop the same queued trial);
* ``postgresql://user:pw@host/db`` (or any SQLAlchemy URL) — RDB storage with heartbeats, the
  engine for workers on several machines;
* both RDB storages read trials from plain rows instead of Optuna's ORM objects, and insert a
  new trial's attributes in one statement per table
  (:class:`~optuna_shape.store.lean_rdb.LeanRDBStorage`: the same trials for less than half
  the CPU; those reads are a busy storage's largest cost);
* ``journal:path`` or a path ending in ``.log`` / ``.journal`` — Optuna's journal file storage,
  for shared file systems without a database. It has **no heartbeats**: a killed worker's trial
  stays RUNNING, and the other workers wait for it (logging a warning once a minute). Recovery is
  explicit: once every worker is stopped, restart with
  ``fail_stale_on_start(study, older_than_s=0)`` (or a value longer than any training while other
  workers still run), which marks such trials failed so their shapes are trained again.
* ``grpc://host:port`` — Optuna's :class:`~optuna.storages.GrpcStorageProxy`, a client of a gRPC
  storage proxy (``optuna-shape proxy``, or :func:`optuna.storages.run_grpc_proxy_server`) that
  serves the database to many workers over one connection pool. Needs ``grpcio`` and
  ``protobuf`` (``pip install "optuna-shape[grpc]"``). Optuna's proxy has no heartbeats of its
  own, so workers keep theirs in a trial system attribute (``osh:heartbeat``) through the proxy:
  a trial whose value stops changing for ``grace_period`` seconds, as watched by another
  worker, is failed (see :class:`HeartbeatGrpcStorageProxy`). The proxy runs the queue pop on
  the database, so a proxy serving a SQLite file must be given the storage ``open_storage``
  returns for it (``optuna-shape proxy`` does): over Optuna's plain SQLite storage two clients
  can pop the same queued trial.

``postgresql://`` URLs use psycopg2 when it is installed, else psycopg 3 (the driver the
``postgres`` extra installs): the URL is rewritten to ``postgresql+psycopg://``.

Bad URLs give a one-line ``ValueError`` naming the URL (password masked) and what to check.

One module, a little over 400 lines: every backend above is opened through the one URL
dispatch of ``open_storage``, and much of the length is the list above and the gRPC heartbeat
proxy.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import random
import re
import sys
import threading
import time
import warnings
from typing import Any

import optuna
from optuna.storages import GrpcStorageProxy  # grpcio is imported on first use only
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

from optuna_shape.store.engine import (
    exception_chain,
    fail_stale,
    has_heartbeat,
    make_sqlite_atomic,
)
from optuna_shape.store.keys import SLOT

__all__ = ["open_storage", "fail_stale_on_start", "mask_url", "has_heartbeat", "resolve_driver",
           "grpc_address", "grpc_proxy_problem", "lost_grpc_proxy", "HeartbeatGrpcStorageProxy"]

_URL_PASSWORD = re.compile(r"(://[^:/@\n]*:)(?:(?!://)[^@\n])*@")
"""``scheme://user:PASSWORD@``: the password runs up to the ``@``, as SQLAlchemy parses it (it may
hold ``/`` or spaces), but not past the end of the line or into another URL's ``://``; the user
may be empty."""


def mask_url(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (a URL, or a message that may quote URLs) with every URL password
    (``scheme://user:PASSWORD@``) and every given secret replaced by ``***``.

    Example:
        >>> mask_url("cannot open postgresql://osh:p/w d@db:5432/s; try redis://:pw@h")
        'cannot open postgresql://osh:***@db:5432/s; try redis://:***@h'
        >>> mask_url("grpc://h:13000 is a proxy; use postgresql://USER:PW@HOST/DB")
        'grpc://h:13000 is a proxy; use postgresql://USER:***@HOST/DB'
        >>> mask_url("failed for hunter22", ("hunter22",))
        'failed for ***'
    """
    text = _URL_PASSWORD.sub(r"\1***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


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
        heartbeat_interval: seconds between heartbeats of running trials (RDB, and ``grpc://``
            in a trial attribute); a trial whose worker stopped beating for ``grace_period``
            seconds is failed and its shape trained again. ``None`` disables heartbeats.
        grace_period: defaults to 3 × ``heartbeat_interval``.

    Raises:
        ValueError: an unknown scheme, a missing database driver, an unreachable server, a
            SQLite file in a directory that does not exist, a ``grpc://`` URL without a valid
            host and port, or grpcio / protobuf not installed.
    """
    if url is None or url in (":memory:", "memory", ""):
        return None
    if not isinstance(url, str):
        raise ValueError(f"storage must be a URL string, got {url!r}")
    shown = mask_url(url)
    if url.startswith("grpc://"):
        if heartbeat_interval is not None and grace_period is None:
            grace_period = 3 * heartbeat_interval
        return _grpc_storage(url, shown, heartbeat_interval, grace_period)
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
            "postgresql://user:password@host/db, grpc://host:13000 or journal:study.log"
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


GRPC_CONNECT_TIMEOUT_S = 30.0
"""Seconds :func:`open_storage` waits for the gRPC proxy of a ``grpc://`` URL to answer."""
HEARTBEAT_ATTR = "osh:heartbeat"
"""Trial system attribute a worker behind a gRPC proxy refreshes every heartbeat interval."""
_GRPC_FORM = "expected grpc://HOST:PORT with PORT 1-65535, e.g. grpc://localhost:13000"

_logger = logging.getLogger("optuna_shape")


def grpc_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ``grpc://HOST:PORT`` URL (an IPv6 host keeps its brackets).

    Raises:
        ValueError: one line naming the bad part of the URL and the valid form.
    """
    shown = mask_url(url)
    rest = url[len("grpc://"):] if url.startswith("grpc://") else ""
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(netloc):]
    if not url.startswith("grpc://"):
        problem = "not a grpc:// URL"
    elif "@" in netloc:
        problem = "a gRPC proxy URL takes no user or password"
    elif tail not in ("", "/"):
        problem = f"unexpected {tail!r} after the port"
    elif not netloc:
        problem = "no host"
    else:
        host, colon, port_text = netloc.rpartition(":")
        if not colon or not port_text or netloc.endswith("]"):
            problem = "no port"
        elif not host or host == "[]":
            problem = "no host"
        elif not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            problem = f"bad port {port_text!r}"
        else:
            return host, int(port_text)
    raise ValueError(f"cannot open storage {shown!r}: {problem}; {_GRPC_FORM}")


def lost_grpc_proxy(exc: BaseException, url: str | None) -> str | None:
    """One line for a command whose gRPC storage proxy stopped answering, or ``None``.

    Looks for a ``grpc.RpcError`` in ``exc`` and its causes and contexts: Optuna's trial loop
    turns the proxy's failure, raised while it records a trial, into an unrelated
    ``UnboundLocalError`` (its clean-up reads a variable the failed call never set). The line
    names the proxy (``url``, masked) and the gRPC status, and says how to resume: the study's
    finished trainings are in the database behind the proxy."""
    grpc = sys.modules.get("grpc")
    if grpc is None or url is None or not url.startswith("grpc://"):
        return None
    for cur in exception_chain(exc):
        if isinstance(cur, grpc.RpcError):
            code = cur.code() if callable(getattr(cur, "code", None)) else None
            status = getattr(code, "name", None) or "no status"
            return (f"the gRPC storage proxy at {mask_url(url)} stopped answering ({status}); "
                    "the study's finished trainings are safe in the database behind it: start "
                    "the proxy again (optuna-shape proxy --storage DATABASE) and run this "
                    "command again to resume")
    return None


def grpc_proxy_problem() -> str | None:
    """Why Optuna's gRPC storage proxy cannot run here, in one line (``None`` when it loads):
    grpcio or protobuf missing, or too old for the code Optuna generated."""
    try:
        from optuna.storages._grpc.auto_generated import api_pb2_grpc  # noqa: F401
    except ModuleNotFoundError:
        return 'the gRPC storage proxy needs grpcio and protobuf: pip install "optuna-shape[grpc]"'
    except Exception as exc:  # grpcio / protobuf older than Optuna's generated code needs
        text = " ".join(str(exc).split())[:200]
        return (f"Optuna's gRPC proxy does not load ({text}); "
                'pip install --upgrade "optuna-shape[grpc]"')
    return None


def _grpc_storage(url: str, shown: str, heartbeat_interval: int | None,
                  grace_period: int | None) -> optuna.storages.BaseStorage:
    """A :class:`HeartbeatGrpcStorageProxy` for ``grpc://host:port``, once the proxy answers."""
    host, port = grpc_address(url)
    try:
        missing = [name for name in ("grpc", "google.protobuf")
                   if importlib.util.find_spec(name) is None]
    except ModuleNotFoundError:  # find_spec("google.protobuf") without any google package
        missing = ["google.protobuf"]
    if missing:
        raise ValueError(
            f"cannot open storage {shown!r}: the gRPC storage proxy needs grpcio and protobuf: "
            'pip install "optuna-shape[grpc]"')
    try:
        with warnings.catch_warnings():  # the proxy is "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = HeartbeatGrpcStorageProxy(host=host, port=port,
                                                heartbeat_interval=heartbeat_interval,
                                                grace_period=grace_period)
    except ValueError:
        raise
    except Exception as exc:  # grpcio / protobuf older than Optuna's generated code needs
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"cannot open storage {shown!r}: Optuna's gRPC client does not load "
            f"({type(exc).__name__}: {first[:200]}); "
            'pip install --upgrade "optuna-shape[grpc]"') from None
    try:
        storage.wait_server_ready(timeout=GRPC_CONNECT_TIMEOUT_S)
    except ConnectionError:
        storage.close()
        raise ValueError(
            f"cannot open storage {shown!r}: no gRPC storage proxy answered at {host}:{port} "
            f"within {GRPC_CONNECT_TIMEOUT_S:g} s; start one in front of the database "
            f"(optuna-shape proxy --storage URL --port {port}) and check the host, port and "
            "firewall") from None
    return storage


STALE_LOOKS_PER_GRACE = 8
"""A gRPC worker reads the running trials for its stale check at most this many times per grace
period (a dead worker's trial is failed at most grace / 8 later than with a look per trial)."""


def _decode_once_cache(stub: Any) -> Any:
    """Optuna's gRPC client cache, decoding a trial again only when its bytes changed.

    Every read of the study sends every unfinished trial again with all its attributes; decoding
    them (a JSON parse per attribute) was a third of a gRPC worker's CPU time with 16 workers. A
    trial whose wire bytes equal those of the last read is the cached trial unchanged."""
    from optuna.storages._grpc import client as grpc_client
    from optuna.storages._grpc import servicer
    from optuna.storages._grpc.auto_generated import api_pb2

    class DecodeOnceCache(grpc_client.GrpcClientCache):
        def __init__(self, stub: Any) -> None:
            super().__init__(stub)
            self._wire: dict[int, bytes] = {}  # unfinished trials' last bytes, by trial id

        def _read_trials_from_remote_storage(self, study_id: int) -> None:
            if study_id not in self.studies:
                self.studies[study_id] = grpc_client.GrpcClientCacheEntry()
            study = self.studies[study_id]
            req = api_pb2.GetTrialsRequest(study_id=study_id,
                                           included_trial_ids=study.unfinished_trial_ids,
                                           trial_id_greater_than=study.last_finished_trial_id)
            try:
                res = self.grpc_client.GetTrials(req)
            except grpc_client.grpc.RpcError as e:
                if e.code() == grpc_client.grpc.StatusCode.NOT_FOUND:
                    self.studies.pop(study_id, None)
                    raise KeyError from e
                raise
            for proto in res.trials:
                wire = proto.SerializeToString(deterministic=True)
                known = study.trials.get(proto.number)
                if known is not None and self._wire.get(proto.trial_id) == wire:
                    continue
                trial = servicer._from_proto_trial(proto)
                if trial.state.is_finished():
                    self._wire.pop(proto.trial_id, None)
                else:
                    self._wire[proto.trial_id] = wire
                self._add_trial_to_cache(study_id, trial)

        def delete_study_cache(self, study_id: int) -> None:
            super().delete_study_cache(study_id)
            self._wire.clear()

    return DecodeOnceCache(stub)


class HeartbeatGrpcStorageProxy(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's :class:`~optuna.storages.GrpcStorageProxy` with heartbeats, which Optuna's proxy
    lacks (its heartbeats are a feature of the RDB storage, not of the gRPC protocol).

    ``study.optimize`` beats every ``heartbeat_interval`` seconds while a trial runs, as it does
    on an RDB storage; a beat writes the worker's clock into the trial system attribute
    :data:`HEARTBEAT_ATTR` through the proxy. A RUNNING trial is stale when its beat has not
    changed during ``grace_period`` seconds of the *checking* worker's own clock (so the clocks
    of different machines never need to agree); so is a queued training taken but never started
    (it has a slot, no parameters and no beat) — the case the RDB path handles in
    :func:`optuna_shape.store.fail_stale`. A worker thus sees a dead worker's trial as stale
    only after watching it for ``grace_period`` seconds: Optuna checks at the start of every
    trial, and a waiting optuna-shape worker every few seconds.

    Only trials that beat (or hold a slot) are ever failed: trials of ``study.ask()`` scripts,
    which never beat, are left alone, as on an RDB storage.
    """

    def __init__(self, *, host: str = "localhost", port: int = 13000,
                 heartbeat_interval: int | None = None, grace_period: int | None = None) -> None:
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ValueError("The value of `heartbeat_interval` should be a positive integer.")
        if grace_period is not None and grace_period <= 0:
            raise ValueError("The value of `grace_period` should be a positive integer.")
        super().__init__(host=host, port=port)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self._seen: dict[int, tuple[Any, float]] = {}
        self._seen_lock = threading.Lock()
        self._stale_read = -math.inf

    def _setup(self) -> None:
        super()._setup()
        self._cache = _decode_once_cache(self._stub)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_seen_lock", None)
        state["_seen"] = {}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._seen_lock = threading.Lock()

    def record_heartbeat(self, trial_id: int) -> None:
        """Refresh the trial's beat (never raises: a failed beat must not end the beating)."""
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            pass  # finished, or failed as stale meanwhile: nothing to keep alive
        except Exception as exc:  # proxy briefly unreachable: the next beat tries again
            _logger.debug("heartbeat of trial %d not recorded: %s", trial_id, exc)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        now = time.monotonic()
        with self._seen_lock:
            # Optuna checks at the start of every trial: a look a fraction of the grace period
            # after the last one cannot find anything new, and each reads every running trial
            if now - self._stale_read < grace / STALE_LOOKS_PER_GRACE:
                return []
            self._stale_read = now
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        stale: list[int] = []
        with self._seen_lock:
            for t in running:
                beat = t.system_attrs.get(HEARTBEAT_ATTR)
                if beat is None and (t.params or SLOT not in t.system_attrs):
                    continue  # never beats (ask-and-tell) or is being suggested: not ours
                seen = self._seen.get(t._trial_id)
                if seen is None or seen[0] != beat:
                    self._seen[t._trial_id] = (beat, now)
                elif now - seen[1] > grace:
                    stale.append(t._trial_id)
            ids = {t._trial_id for t in running}
            for trial_id in [i for i in self._seen if i not in ids]:
                del self._seen[trial_id]
        return stale

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between beats (``None``: no heartbeats)."""
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> None:
        """No callback: optuna-shape plans a failed training again by itself."""
        return None


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

    from optuna_shape.store.lean_rdb import LeanRDBStorage

    delay = 0.2
    for attempt in range(8):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = LeanRDBStorage(
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


def fail_stale_on_start(study: optuna.Study, *, older_than_s: float | None = None) -> int:
    """Mark the trials of workers that died as failed, so a restarted search retrains them.

    With heartbeats, Optuna's own stale check is run (other workers' live trials keep beating and
    are left alone), with trainings taken but never started. Without heartbeats (journal
    storage), RUNNING trials that started more than ``older_than_s`` seconds ago are failed —
    pass it only when no other worker is running, or a value larger than any training takes.
    Returns the number of trials failed. The rule is :func:`optuna_shape.store.fail_stale`.
    """
    return fail_stale(study, older_than_s=older_than_s)
