"""Helpers shared by the ``optuna-shape`` commands: exit codes, errors, storage, study lookup."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import optuna

from optuna_shape.store.backends import mask_url as mask
from optuna_shape.store.backends import open_storage as _open_storage

__all__ = ["CLIError", "UsageError", "NoAnswer", "DEFAULT_STORAGE", "STORAGE_ENV",
           "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_NO_ANSWER", "EXIT_UNCONFIRMED",
           "EXIT_INTERRUPTED", "Unconfirmed",
           "storage_url", "mask", "secrets_of", "RedactingStream", "open_storage",
           "resolve_study_name", "study_names", "HEARTBEAT", "GRACE", "InterruptLatch",
           "number_type", "positive_float", "positive_int", "fraction", "non_negative_float",
           "percent"]

DEFAULT_STORAGE = "sqlite:///optuna-shape.db"
"""Storage used when neither ``--storage`` nor ``OPTUNA_STORAGE`` is given."""
STORAGE_ENV = "OPTUNA_STORAGE"
"""Environment variable read when ``--storage`` is not given (Optuna's own CLI convention), so a
URL with a password need not be typed on the command line."""
HEARTBEAT = 10
GRACE = 30

EXIT_OK = 0
"""The command answered (``search``: a chosen shape or the complying set; ``report``: printed)."""
EXIT_FAILURE = 1
"""A runtime failure, printed as one ``error: …`` line (storage, device, dataset, training…)."""
EXIT_USAGE = 2
"""A usage error: a flag value that can never work, printed as one ``error: …`` line."""
EXIT_NO_ANSWER = 3
"""The search finished and no shape complies (nothing fits the limits, the accuracy floor was
not reached, or every training failed); the reason is printed with counts."""
EXIT_UNCONFIRMED = 4
"""The budget ended before any shape was confirmed to meet the accuracy floor: the search
answers with the best-supported trained shape, not confirmed; the last line gives its
P(accuracy ≥ floor) and what one more training would buy. Distinct from 0 so that automation
never deploys an unconfirmed shape by accident."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C); the line printed says how to resume."""


class InterruptLatch:
    """Ctrl-C that library code cannot lose.

    Inside ``with InterruptLatch() as latch:`` SIGINT raises ``KeyboardInterrupt`` as Python's
    own handler does, and is remembered: :meth:`check` raises it again at the next safe point
    when code that caught everything (a C extension running Python code, a broad ``except``)
    swallowed the first one and the command would otherwise run on to the end.

    A Ctrl-C that lands while Python runs a finaliser or a weak-reference callback (the
    garbage collector, at any moment) cannot propagate: Python reports it as "Exception
    ignored in ..." with a traceback on stderr. The latch has remembered it, so inside the
    block that report is dropped (``sys.unraisablehook``) and the user sees only the one
    "interrupted" line; every other unraisable exception still goes to the previous hook.
    """

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None
        self._previous_hook: Any = None

    def __enter__(self) -> InterruptLatch:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self._previous_hook is not None:
            sys.unraisablehook = self._previous_hook
            self._previous_hook = None

    def _unraisable(self, unraisable: Any) -> None:
        if self.hit and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # remembered: check() raises it again at the next safe point
        (self._previous_hook or sys.__unraisablehook__)(unraisable)

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed inside the ``with`` block."""
        if self.hit:
            raise KeyboardInterrupt


class CLIError(Exception):
    """A failure reported as one ``error: ...`` line with exit code :data:`EXIT_FAILURE`."""

    exit_code = EXIT_FAILURE
    prefix = "error"


class UsageError(CLIError):
    """A flag value that can never work: one ``error: ...`` line, exit code :data:`EXIT_USAGE`."""

    exit_code = EXIT_USAGE


class NoAnswer(CLIError):
    """The search finished without a complying shape: exit code :data:`EXIT_NO_ANSWER`."""

    exit_code = EXIT_NO_ANSWER
    prefix = "no answer"


class Unconfirmed(CLIError):
    """The search answered without confirming its answer: exit code :data:`EXIT_UNCONFIRMED`."""

    exit_code = EXIT_UNCONFIRMED
    prefix = "unconfirmed"


def number_type(convert: type, ok: Callable[[float], bool], valid: str
                ) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)`` that must satisfy ``ok``, else one line naming the
    value and what would be valid."""
    kind = "an integer" if convert is int else "a number"

    def parse(text: str) -> Any:
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text}")
        return v

    return parse


positive_float = number_type(float, lambda v: v > 0, "> 0")
"""An argparse type: a number > 0 (limits, learning rate)."""
positive_int = number_type(int, lambda v: v >= 1, ">= 1")
"""An argparse type: an integer >= 1 (counts)."""
fraction = number_type(float, lambda v: 0 < v < 1, "between 0 and 1 (exclusive)")
"""An argparse type: a number strictly between 0 and 1 (confidence, validation share)."""
non_negative_float = number_type(float, lambda v: v >= 0, ">= 0")
"""An argparse type: a number >= 0 (momentum, weight decay)."""


def percent(text: str) -> float:
    """An argparse type: an accuracy floor in percent, 0 to 100; a value in (0, 1] is refused as
    a likely fraction, with the percent to pass instead."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(
            f"{text} is not a percentage: the floor is read in percent, 0 to 100 "
            "(the built-in trainer reports accuracy in percent)")
    if 0 < v <= 1:
        raise argparse.ArgumentTypeError(
            f"{text} looks like a fraction, but the floor is read in percent (0 to 100): for "
            f"{v * 100:g} % pass --min-accuracy {v * 100:g}")
    return v


def storage_url(flag: str | None) -> str:
    """The storage URL to use: ``--storage``, else ``$OPTUNA_STORAGE``, else the default file."""
    if flag:
        return flag
    env = os.environ.get(STORAGE_ENV, "").strip()
    return env or DEFAULT_STORAGE


def secrets_of(url: str | None) -> tuple[str, ...]:
    """The password of a storage URL, as written and decoded (empty when it has none).

    Passwords shorter than 4 characters are masked only inside URLs, so that common words in
    other output are not replaced.
    """
    if not url or "://" not in url:
        return ()
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if not password:
        return ()
    found = {password, unquote(password)}
    return tuple(sorted((p for p in found if len(p) >= 4), key=len, reverse=True))


class RedactingStream(io.TextIOBase):
    """A text stream that masks storage passwords before writing to ``stream``.

    ``optuna-shape`` puts one around standard output and error while a command runs, so no
    message, progress line, log record or JSON document can carry the password of the storage
    URL (``--storage`` or ``OPTUNA_STORAGE``).
    """

    def __init__(self, stream: Any, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:  # type: ignore[override]
        """Write ``text`` with passwords masked; returns ``len(text)``."""
        self._stream.write(mask(text, self._secrets))
        return len(text)

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self._stream.flush()

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal (rich asks)."""
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        """The wrapped stream's file descriptor (rich reads the terminal size from it)."""
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The wrapped stream's encoding."""
        return getattr(self._stream, "encoding", "utf-8") or "utf-8"

    def writable(self) -> bool:
        """Always ``True``."""
        return True


def sqlite_read_only_url(url: str) -> str | None:
    """``sqlite:///PATH`` (or a ``sqlite:///file:PATH?…`` URI) as a read-only SQLite URI, so
    that nothing can be written through it; ``None`` for other URLs."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///"):]
    path, _, query = rest.partition("?")
    path = path.removeprefix("file:")
    if path in ("", ":memory:"):
        return None
    params = [p for p in query.split("&") if p and not p.startswith(("mode=", "uri="))]
    return f"sqlite:///file:{path}?" + "&".join([*params, "mode=ro", "uri=true"])


def open_storage(url: str | None, *, heartbeat_interval: int | None = HEARTBEAT,
                 grace_period: int | None = GRACE, read_only: bool = False) -> Any:
    """Open an Optuna storage from a URL (see :func:`optuna_shape.store.backends.open_storage`).

    ``None`` or ``":memory:"`` gives in-memory storage, ``sqlite:///…`` and ``postgresql://…``
    an RDB storage (with heartbeats unless ``heartbeat_interval`` is ``None``), ``journal:<path>``
    a journal file (no heartbeats).

    ``read_only`` opens a SQLite file read-only (no schema creation, no writes possible); other
    storages are opened as usual and simply not written to.

    Raises:
        CLIError: the URL is not usable, with the reason (password masked).
    """
    ro = sqlite_read_only_url(url) if read_only and url else None
    if ro is None and url and url.startswith("sqlite:///file:"):
        ro = url  # a SQLite URI: opened as given (its own mode= decides)
    try:
        if ro is not None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(ro, skip_table_creation=read_only)
        return _open_storage(url, heartbeat_interval=heartbeat_interval,
                             grace_period=grace_period if heartbeat_interval is not None else None)
    except CLIError:
        raise
    except Exception as exc:  # bad URL, missing driver, unreachable server
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shown = mask(url or "")
        if not msg.startswith("cannot open storage"):
            msg = f"cannot open storage {shown!r}: {msg}"
        raise CLIError(mask(msg, secrets_of(url))) from exc


def study_names(storage: Any) -> list[str]:
    """Names of the studies in ``storage``."""
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def resolve_study_name(storage: Any, name: str | None, url: str | None) -> str:
    """The study to report on: ``name``, or the only study in the storage.

    Raises:
        CLIError: no such study, no study at all, or several studies and no name.
    """
    names = study_names(storage)
    shown = mask(url or ":memory:")
    if name is not None:
        if name not in names:
            listed = ", ".join(names) or "none"
            raise CLIError(f"no study named {name!r} in {shown}; studies there: {listed}")
        return name
    if not names:
        raise CLIError(f"storage {shown} holds no study; run `optuna-shape search` first")
    if len(names) > 1:
        raise CLIError(f"storage {shown} holds several studies ({', '.join(names)}); "
                       "pick one with --study-name")
    return names[0]
