"""The ``optuna-shape`` command line: ``search`` runs or joins a shape search, ``report`` prints
the result of a stored one, ``proxy`` serves a study database to many workers over gRPC.

Exit codes: 0 answered, 1 runtime failure (one ``error: …`` line; ``--debug`` shows the
traceback), 2 usage error (one line), 3 searched but no shape complies (the reason, with counts),
4 answered but not confirmed (the budget ended first; the line gives the answer's probability),
130 interrupted (the line says how to resume).

Example:
    >>> from optuna_shape.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    optuna-shape 0.1.0
    0
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence

from optuna_shape.cli import proxy, report, search
from optuna_shape.cli._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    STORAGE_ENV,
    CLIError,
    RedactingStream,
    mask,
    secrets_of,
    storage_url,
)
from optuna_shape.store.backends import lost_grpc_proxy

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = {"search": search, "report": report, "proxy": proxy}
"""Command name -> module with ``add_arguments(parser)``, ``HELP`` and ``run(args) -> int``."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {mask(message)} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it is unset (``None``), off, or already in the help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False \
                or action.default == argparse.SUPPRESS or not action.option_strings:
            return text
        default = action.default
        if isinstance(default, tuple):
            return text + " (default: " + ",".join(f"{v:g}" for v in default) + ")"
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``optuna-shape`` with every command."""
    from optuna_shape import __version__

    parser = _Parser(
        prog="optuna-shape",
        description="Find a neural network's depth and width under size, latency, energy and "
                    "accuracy limits with the fewest trainings (Shape_DNN on Optuna).",
    )
    parser.add_argument("--version", action="version", version=f"optuna-shape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP,
                           description=module.DESCRIPTION.replace("``", ""),
                           formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.add_argument("--debug", action="store_true",
                       help="show tracebacks and Optuna's log on failures")
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``optuna-shape`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Exit codes: see :mod:`optuna_shape.cli._common` (``EXIT_*``) and the README's table.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if not args.debug:
        _quiet_libraries()
    url = storage_url(getattr(args, "storage", None))
    secrets = secrets_of(url)
    out, err = sys.stdout, sys.stderr
    if secrets or _has_password(argv):
        sys.stdout, sys.stderr = RedactingStream(out, secrets), RedactingStream(err, secrets)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # output piped into `head`
        return EXIT_OK
    except KeyboardInterrupt:
        print(_interrupted(args, argv), file=sys.stderr)
        _interrupt_handled()
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line unless --debug
        if args.debug:
            raise
        prefix = getattr(exc, "prefix", "error")
        line = lost_grpc_proxy(exc, url) or _one_line(exc)
        print(mask(f"{prefix}: {line}", secrets), file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_FAILURE)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = out, err


def _interrupt_handled() -> None:
    """Tell CPython the Ctrl-C was handled, so the process exits with status 130.

    A KeyboardInterrupt raised while a C extension runs Python code through ``PyRun_String``
    (torch does, during its lazy imports) sets CPython's "unhandled KeyboardInterrupt" flag even
    though this function caught the exception; at exit CPython then kills itself with SIGINT
    instead of returning the status. Running an empty statement through the same C path clears
    the flag.
    """
    try:
        import ctypes

        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    except (ImportError, AttributeError, OSError):  # not CPython: nothing to clear
        pass


def _has_password(argv: Sequence[str]) -> bool:
    return any(mask(a) != a for a in argv)


def _quiet_libraries() -> None:
    """Only what concerns the user: Optuna's log (its per-trial failure warnings carry
    tracebacks; ``search`` prints its own one-line failure notes), its experimental warnings and
    torch's "No CUDA runtime is found" line on CPU-only machines are silenced."""
    import warnings

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    logging.getLogger("optuna_shape").setLevel(logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _interrupted(args: argparse.Namespace, argv: Sequence[str]) -> str:
    """The one line printed on Ctrl-C: how to resume (the exact command, password masked)."""
    if args.command != "search":
        return "interrupted"
    command = mask(shlex.join(["optuna-shape", *argv]))
    line = f"interrupted; the finished trainings are kept. Resume with: {command}"
    if _has_password(argv):
        line += (f" (with the real password; or export {STORAGE_ENV}=URL and drop --storage "
                 "so it is never printed)")
    return line


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, (CLIError, ValueError, FileNotFoundError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
