"""Terminal progress of a search with rich: screening, trainings (stage, shape, epoch bar,
elapsed / ETA) and verification.

All terminal-progress code is here. :func:`make_reporter` returns a plain
:class:`~optuna_shape.SearchReporter` (a no-op) with ``quiet``; when the output is not a terminal
the bars are off and only one plain line per event is printed, so logs stay readable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from optuna_shape.reporting.tables import fitted_on
from optuna_shape.sampler.progress import SearchReporter

__all__ = ["RichReporter", "make_reporter"]


class RichReporter(SearchReporter):
    """A :class:`~optuna_shape.SearchReporter` that shows the search's progress with rich.

    Use it as the sampler's ``reporter`` and its :meth:`training` method as the default
    objective's ``progress`` callback. Call :meth:`close` (or use it as a context manager) when
    the search ends.

    Args:
        console: where to print (default: standard error).
        bars: show live bars; default: only when ``console`` is a terminal.

    Example:
        >>> rep = RichReporter(bars=False, console=Console(file=open("/dev/null", "w")))
        >>> rep.on_screened(30, 32, 10)
        >>> rep.close()
    """

    def __init__(self, console: Console | None = None, bars: bool | None = None) -> None:
        if console is None:
            from optuna_shape.reporting.text import make_console

            console = make_console(stderr=True)
        self.console = console
        self.bars = self.console.is_terminal if bars is None else bool(bars)
        self._progress: Progress | None = None
        self._screen_task: TaskID | None = None
        self._train_task: TaskID | None = None
        self._stage = "train"
        self._trial: int | None = None
        self._n_planned: int | None = None
        self._assigned = 0
        self._compute = ""
        self._last_wait = 0.0
        self._start = time.monotonic()

    # -- rich plumbing -------------------------------------------------------------------
    def _bars(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        return self._progress

    def _log(self, text: str) -> None:
        """Print a note above the bars, wrapped by us at 79 columns (so a terminal, a pipe and a
        log file show the same lines)."""
        from optuna_shape.reporting.text import _wrap_lines

        console = self._progress.console if self._progress is not None else self.console
        for line in _wrap_lines(text, hang="  "):
            console.print(line, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Stop the live display (safe to call twice)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sampler events ------------------------------------------------------------------
    def on_screen(self, done: int, total: int, shape: Any, record: Mapping[str, Any]) -> None:
        """Show screening progress: shapes measured of total."""
        if not self.bars:
            if done == total or done == 1:
                self._log(f"screening: measured {done}/{total} shapes")
            return
        p = self._bars()
        info = _measure_text(record)
        if self._screen_task is None:
            self._screen_task = p.add_task("screening", total=total, info=info)
        p.update(self._screen_task, completed=done, total=total,
                 info=f"{_shape(shape)} {info}")

    def on_screened(self, n_feasible: int, n_total: int, n_planned: int) -> None:
        """Report the feasible set and the sample plan."""
        self._n_planned = n_planned
        plan = f"; {n_planned} to train first" if n_planned else ""
        self._log(f"design space: {n_total} shapes, {n_feasible} feasible{plan}")

    def on_compute(self, spent_s: float, budget_s: float | None) -> None:
        """Remember the compute spent (shown with the next training; nothing before the
        first training of a search without a compute budget)."""
        from optuna_shape.models.compute import format_seconds

        if spent_s <= 0 and budget_s is None:
            self._compute = ""
            return
        self._compute = format_seconds(spent_s) + (
            f" of {format_seconds(budget_s)}" if budget_s is not None else "")

    def on_assign(self, trial_number: int, shape: Any, stage: str) -> None:
        """A trial starts training ``shape`` in ``stage``."""
        self._stage, self._trial = stage, trial_number
        if stage == "sample":
            self._assigned += 1
        label = {"sample": "sample", "verify": "verify", "user": "user"}.get(stage, stage)
        if not self.bars:
            of = f" ({self._assigned}/{self._n_planned})" if stage == "sample" and \
                self._n_planned else ""
            spent = f" (compute {self._compute})" if self._compute else ""
            self._log(f"trial {trial_number}: {label}{of} — training {_shape(shape)}{spent}")

    def on_wait(self, reason: str) -> None:
        """Other workers must finish first (shown at most every 30 s)."""
        now = time.monotonic()
        if now - self._last_wait > 30:
            self._last_wait = now
            self._log(f"waiting: {reason}")

    def on_fit(self, summary: dict[str, Any]) -> None:
        """The accuracy model was fitted."""
        r2 = summary.get("r2")
        extra = f" (R² {r2:.3f})" if isinstance(r2, (int, float)) else ""
        ranking = summary.get("ranking") or []
        top = f": best of {len(ranking)} candidates {_shape(ranking[0])}" if ranking else ""
        self._log(f"model fitted on {fitted_on(summary)}{extra}{top}")

    def on_failed(self, trial_number: int, shape: Any, reason: str) -> None:
        """One line for a failed training (no traceback)."""
        self._log(f"trial {trial_number}: {_shape(shape)} failed: {reason}")

    def on_stopped(self, trial_number: int, shape: Any, reason: str) -> None:
        """One line for a training stopped early: the epoch, the accuracy and why."""
        if self.bars:
            self._log(f"trial {trial_number}: {self._stage} {_shape(shape)} stopped {reason}")
        else:
            self._log(f"  {self._stage} {_shape(shape)}: stopped {reason}")

    def on_done(self, result: dict[str, Any]) -> None:
        """The search finished."""
        self.close()
        shape = result.get("shape")
        why = str(result.get("reason") or "").split(";")[0]
        what = _shape(shape) if shape else "no shape"
        if result.get("status") == "frontier":
            n = len((result.get("details") or {}).get("front") or ())
            what = f"front of {n} shape{'s' if n != 1 else ''}"
        self._log(f"search finished: {what} — {why}")

    # -- objective progress ----------------------------------------------------------------
    def training(self, shape: Any, epoch: int, epochs: int, accuracy: float) -> None:
        """Progress callback of :class:`~optuna_shape.training.ShapeObjective`."""
        stage = self._stage
        if not self.bars:
            if epoch == epochs and not math.isnan(accuracy):
                self._log(f"  {stage} {_shape(shape)}: {accuracy:.2f} after {epochs} epochs")
            return
        p = self._bars()
        desc = f"{stage:6s} {_shape(shape)}"
        info = "" if math.isnan(accuracy) else f"acc {accuracy:.2f}"
        if self._compute:
            info = f"{info} · compute {self._compute}".lstrip(" ·")
        if epoch == 0 or self._train_task is None:
            if self._train_task is not None:
                p.remove_task(self._train_task)
            self._train_task = p.add_task(desc, total=epochs, info=info)
        p.update(self._train_task, completed=epoch, total=epochs, description=desc, info=info)
        if epoch == epochs and not math.isnan(accuracy):
            self._log(f"trial {self._trial}: {stage} {_shape(shape)} → {accuracy:.2f}")


def _shape(shape: Any) -> str:
    try:
        return f"({int(shape[0])}, {float(shape[1]):g})"
    except (TypeError, IndexError, ValueError):
        return str(shape)


def _measure_text(record: Mapping[str, Any]) -> str:
    if record.get("error"):
        return "error"
    parts = []
    if record.get("latency_ms") is not None:
        parts.append(f"{record['latency_ms']:.3g} ms")
    if record.get("energy_j") is not None:
        parts.append(f"{record['energy_j']:.3g} J")
    return " ".join(parts)


def make_reporter(quiet: bool = False, console: Console | None = None) -> SearchReporter:
    """A :class:`RichReporter`, or the no-op :class:`~optuna_shape.SearchReporter` if ``quiet``."""
    if quiet:
        return SearchReporter()
    return RichReporter(console=console)
