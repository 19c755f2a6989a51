"""Plain-text pieces shared by the printed results: a console that does not wrap when output is
piped, numbers in table cells, and lines wrapped by us rather than by the terminal."""

from __future__ import annotations

import math
import os
from typing import Any

from rich.console import Console

__all__ = ["make_console", "PIPE_WIDTH"]

PIPE_WIDTH = 240
"""Console width when output is not a terminal (a file, a pipe, a CI log): wide enough that no
result line wraps; rich's default of 80 columns would break table rows and long lines."""


def make_console(*, stderr: bool = False, **kwargs: Any) -> Console:
    """A rich console for the command line: the terminal's width in a terminal; when piped,
    ``$COLUMNS`` if set, else :data:`PIPE_WIDTH`, so that rows never wrap."""
    console = Console(stderr=stderr, **kwargs)
    if not console.is_terminal and "width" not in kwargs:
        try:
            width = int(os.environ.get("COLUMNS", "") or PIPE_WIDTH)
        except ValueError:
            width = PIPE_WIDTH
        console = Console(stderr=stderr, width=max(width, 80), **kwargs)
    return console


def _num(x: float | None, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return format(x, fmt)


def _wrap_lines(text: str, indent: str = "", hang: str = "", width: int = 79) -> list[str]:
    """``text`` as lines of at most ``width`` characters (wrapped by us, not by the terminal,
    so a terminal, a pipe and a log file show the same lines)."""
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent,
                         subsequent_indent=indent + hang, break_on_hyphens=False) or [indent]
