"""``optuna-shape report``: print the result of a stored search (also while workers run).

It only reads: it works with a read-only database account or file. ``--update-dashboard``
(re)writes the optuna-dashboard note and plots, the one thing that writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from optuna_shape.cli._common import (
    DEFAULT_STORAGE,
    STORAGE_ENV,
    CLIError,
    NoAnswer,
    Unconfirmed,
    mask,
    open_storage,
    resolve_study_name,
    secrets_of,
    storage_url,
)

__all__ = ["add_arguments", "run"]

HELP = "print the result table of a stored search; write its plots"
DESCRIPTION = ("Print the result table of a stored shape search (while workers still run: what "
               "is done so far), optionally write its plots as HTML or print JSON. It only "
               "reads the storage (a read-only database account is enough); "
               "--update-dashboard rewrites the optuna-dashboard note and plots. Exit code 3: "
               "the search finished and no shape complies; 4: it answered with a shape it "
               "could not confirm within its budget.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``report`` flags to ``p``."""
    p.add_argument("--storage", default=None,
                   help=f"Optuna storage URL (default: ${STORAGE_ENV} if set, else "
                        f"{DEFAULT_STORAGE})")
    p.add_argument("--study-name", default=None,
                   help="study to report (default: the only study in the storage)")
    p.add_argument("--all", action="store_true", dest="include_all",
                   help="list every feasible shape, not only the complying ones")
    p.add_argument("--plots", metavar="DIR", default=None, help="write the plots as HTML here")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("--no-dashboard", action="store_true",
                   help="accepted for older scripts; report never writes to the storage "
                        "unless --update-dashboard is given")
    p.add_argument("--update-dashboard", action="store_true",
                   help="also rewrite the optuna-dashboard note and plots in the storage (the "
                        "only option that writes)")


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (``file:`` URIs included), else ``None``."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    path = path.removeprefix("file:")
    if path in ("", ":memory:"):
        return None
    return Path(path)


def _check_exists(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        raise CLIError(f"no storage file {str(path)!r}; run `optuna-shape search` first "
                       "or pass --storage")
    if url.startswith("journal:") and not Path(url[len("journal:"):]).exists():
        raise CLIError(f"no journal file {url[len('journal:'):]!r}")
    if url == ":memory:":
        raise CLIError("an in-memory storage holds nothing to report; pass --storage")


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-shape report``; returns the exit code (3: finished, nothing complies; 4:
    answered, not confirmed)."""
    import optuna

    from optuna_shape.reporting.results import load_config, result_table, search_summary
    from optuna_shape.reporting.tables import make_console, outcome, print_result

    url = storage_url(args.storage)
    _check_exists(url)
    # read-only unless the dashboard views are to be rewritten
    storage = open_storage(url, heartbeat_interval=None, read_only=not args.update_dashboard)
    name = resolve_study_name(storage, args.study_name, url)
    study = optuna.load_study(study_name=name, storage=storage)
    load_config(study)  # ValueError: not an optuna-shape study
    status, code, words = outcome(study)
    if args.json:
        rows = result_table(study, include_all=args.include_all)
        s = search_summary(study)
        data = {
            "study_name": name,
            "summary": {
                "finished": s.finished, "status": status, "goal": s.goal, "reason": s.reason,
                "outcome": words,
                "shape": None if s.shape is None else [s.shape.depth, s.shape.width],
                "accuracy": s.accuracy, "n_space": s.n_space, "n_feasible": s.n_feasible,
                "n_planned": s.n_planned, "trainings": s.trainings, "running": s.running,
                "surrogate": s.surrogate, "cost_screening": s.cost_screening,
                "confidence": s.confidence, "compute": s.compute,
            },
            "rows": [r.to_dict() for r in rows],
        }
        print(mask(json.dumps(data, indent=2, default=str), secrets_of(url)))
    else:
        print_result(study, make_console(), include_all=args.include_all)
    console = make_console(stderr=args.json)
    if args.plots:
        from optuna_shape.reporting.plots import write_plots

        for path in write_plots(study, args.plots):
            console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if args.update_dashboard:
        from optuna_shape.reporting.dashboard import attach_to_dashboard

        try:
            attach_to_dashboard(study)
        except Exception as exc:  # e.g. a read-only database or account
            raise CLIError(f"cannot update the dashboard views in {mask(url)}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                           " (is the database or the account read-only?)") from exc
        console.print(f"updated the optuna-dashboard note and plots of {name!r}",
                      highlight=False, soft_wrap=True)
    if code == 3:
        raise NoAnswer(words)
    if code == 4:
        raise Unconfirmed(words)
    return 0
