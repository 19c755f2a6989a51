"""Helpers shared by the ``optuna-shape`` commands: storage, errors, study lookup."""

from __future__ import annotations

from typing import Any

import optuna

__all__ = ["CLIError", "DEFAULT_STORAGE", "open_storage", "resolve_study_name", "HEARTBEAT",
           "GRACE"]

DEFAULT_STORAGE = "sqlite:///optuna-shape.db"
"""Storage used when ``--storage`` is not given: a SQLite file in the current directory."""
HEARTBEAT = 10
GRACE = 30


class CLIError(Exception):
    """A failure reported as one ``error: ...`` line with exit code 1."""


def open_storage(url: str | None, *, heartbeat_interval: int = HEARTBEAT,
                 grace_period: int = GRACE) -> Any:
    """Open an Optuna storage from a URL (see :func:`optuna_shape.storages.open_storage`).

    ``None`` or ``":memory:"`` gives in-memory storage, ``sqlite:///…`` and ``postgresql://…``
    an RDB storage with heartbeats, ``journal:<path>`` a journal file (no heartbeats).

    Raises:
        CLIError: the URL is not usable, with the reason.
    """
    try:
        from optuna_shape.storages import open_storage as _open
    except ImportError:  # pragma: no cover - fallback while storages.py is not there
        _open = _fallback_open
    try:
        return _open(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    except CLIError:
        raise
    except Exception as exc:  # bad URL, missing driver, unreachable server
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"cannot open storage {url!r}: {msg}") from exc


def _fallback_open(url: str | None, *, heartbeat_interval: int, grace_period: int) -> Any:
    if url is None or url == ":memory:":
        return None
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(url[len("journal:"):]))
    if "://" not in url:
        raise CLIError(f"cannot open storage {url!r}: expected sqlite:///FILE, "
                       "postgresql://USER:PW@HOST/DB, journal:PATH or :memory:")
    return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval,
                                      grace_period=grace_period)


def study_names(storage: Any) -> list[str]:
    """Names of the studies in ``storage``."""
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def resolve_study_name(storage: Any, name: str | None, url: str | None) -> str:
    """The study to report on: ``name``, or the only study in the storage.

    Raises:
        CLIError: no such study, no study at all, or several studies and no name.
    """
    names = study_names(storage)
    if name is not None:
        if name not in names:
            listed = ", ".join(names) or "none"
            raise CLIError(f"no study named {name!r} in {url}; studies there: {listed}")
        return name
    if not names:
        raise CLIError(f"storage {url} holds no study; run `optuna-shape search` first")
    if len(names) > 1:
        raise CLIError(f"storage {url} holds several studies ({', '.join(names)}); "
                       "pick one with --study-name")
    return names[0]
