"""Progress events of a search. The default reporter does nothing, so callers never branch on it.

The command line passes a rich-based reporter (``optuna_shape.cli``); library users may subclass
:class:`SearchReporter` to log or display the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SearchReporter"]


class SearchReporter:
    """Receives search events. Every method is a no-op here; override what you need."""

    def on_screen(self, done: int, total: int, shape: Any, record: Mapping[str, Any]) -> None:
        """A shape was measured during screening (``done`` of ``total``)."""

    def on_screened(self, n_feasible: int, n_total: int, n_planned: int) -> None:
        """Screening finished: feasible shapes, all shapes, shapes planned for training."""

    def on_assign(self, trial_number: int, shape: Any, stage: str) -> None:
        """A trial was given a shape to train in ``stage`` ("sample", "verify" or "user")."""

    def on_compute(self, spent_s: float, budget_s: float | None) -> None:
        """Compute spent by the study's finished trainings so far (seconds of training time),
        and the compute budget (``None``: none); sent before each training starts."""

    def on_wait(self, reason: str) -> None:
        """The worker has nothing to start and waits (called on each poll)."""

    def on_fit(self, summary: dict[str, Any]) -> None:
        """The accuracy model was fitted; ``summary`` holds its fit quality and ranking."""

    def on_failed(self, trial_number: int, shape: Any, reason: str) -> None:
        """A training failed (an exception, or a NaN accuracy); the search goes on."""

    def on_stopped(self, trial_number: int, shape: Any, reason: str) -> None:
        """Early stopping ended a training before its last epoch; ``reason`` says at which
        epoch, at what accuracy, and why the rest was not worth its compute."""

    def on_done(self, result: dict[str, Any]) -> None:
        """The search finished with ``result``."""
