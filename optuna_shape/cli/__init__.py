"""The ``optuna-shape`` command line: ``search`` runs or joins a shape search, ``report`` prints
the result of a stored one.

Exit codes: 0 success, 1 failure (one ``error: …`` line; ``--debug`` shows the traceback),
2 usage error (one line), 130 interrupted.

Example:
    >>> from optuna_shape.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    optuna-shape 0.1.0
    0
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from optuna_shape.cli import report, search
from optuna_shape.cli._common import CLIError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = {"search": search, "report": report}
"""Command name -> module with ``add_arguments(parser)``, ``HELP`` and ``run(args) -> int``."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


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
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.add_argument("--debug", action="store_true",
                       help="show tracebacks and Optuna's log on failures")
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``optuna-shape`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if not args.debug:
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        logging.getLogger("optuna_shape").setLevel(logging.ERROR)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # output piped into `head`
        return 0
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # one line unless --debug
        if args.debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, (CLIError, ValueError, FileNotFoundError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
