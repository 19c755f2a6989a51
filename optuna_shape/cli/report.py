"""``optuna-shape report``: print the result of a stored search (also while workers run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from optuna_shape.cli._common import DEFAULT_STORAGE, CLIError, open_storage, resolve_study_name

__all__ = ["add_arguments", "run"]

HELP = "print the result table of a stored search; write its plots"
DESCRIPTION = ("Print the result table of a stored shape search (while workers still run: what "
               "is done so far), optionally write its plots as HTML or print JSON.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``report`` flags to ``p``."""
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    p.add_argument("--study-name", default=None,
                   help="study to report (default: the only study in the storage)")
    p.add_argument("--all", action="store_true", dest="include_all",
                   help="list every feasible shape, not only the complying ones")
    p.add_argument("--plots", metavar="DIR", default=None, help="write the plots as HTML here")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("--no-dashboard", action="store_true",
                   help="do not refresh the note and plots for optuna-dashboard")


def _check_exists(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if str(path) not in ("", ":memory:") and not path.exists():
            raise CLIError(f"no storage file {str(path)!r}; run `optuna-shape search` first "
                           "or pass --storage")
    if url.startswith("journal:") and not Path(url[len("journal:"):]).exists():
        raise CLIError(f"no journal file {url[len('journal:'):]!r}")
    if url == ":memory:":
        raise CLIError("an in-memory storage holds nothing to report; pass --storage")


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-shape report``."""
    import optuna
    from rich.console import Console

    from optuna_shape.results import load_config, result_table, search_summary

    _check_exists(args.storage)
    storage = open_storage(args.storage)
    name = resolve_study_name(storage, args.study_name, args.storage)
    study = optuna.load_study(study_name=name, storage=storage)
    load_config(study)  # ValueError: not an optuna-shape study
    if args.json:
        rows = result_table(study, include_all=args.include_all)
        s = search_summary(study)
        data = {
            "study_name": name,
            "summary": {
                "finished": s.finished, "goal": s.goal, "reason": s.reason,
                "shape": None if s.shape is None else [s.shape.depth, s.shape.width],
                "accuracy": s.accuracy, "n_space": s.n_space, "n_feasible": s.n_feasible,
                "n_planned": s.n_planned, "trainings": s.trainings, "running": s.running,
                "surrogate": s.surrogate,
            },
            "rows": [r.to_dict() for r in rows],
        }
        print(json.dumps(data, indent=2, default=str))
    else:
        from optuna_shape.reporting.tables import print_result

        print_result(study, Console(), include_all=args.include_all)
    console = Console(stderr=args.json)
    if args.plots:
        from optuna_shape.reporting.plots import write_plots

        for path in write_plots(study, args.plots):
            console.print(f"wrote {path}", highlight=False)
    if not args.no_dashboard:
        try:
            from optuna_shape.reporting.dashboard import attach_to_dashboard

            attach_to_dashboard(study)
        except Exception as exc:  # reporting must not fail because of the dashboard view
            console.print(f"warning: could not attach the dashboard views: {exc}",
                          highlight=False)
    return 0
