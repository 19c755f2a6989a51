"""``optuna-shape report``: print the result of a stored search (also while workers run).

It only reads: it works with a read-only database account or file. ``--update-dashboard``
(re)writes the optuna-dashboard note and plots, the one thing that writes.

With limit flags (``--max-size-mb``, ``--max-latency-ms``, ``--max-energy-j``,
``--min-accuracy``) or ``--goal`` it answers those limits from the study's trainings, with no
training (:func:`optuna_shape.answer_for`), and exits as a search would (0 confirmed, 4 not
confirmed, 3 no shape); with ``--frontier`` it prints the accuracy–cost front of any study
(:func:`optuna_shape.frontier`).

One module, a little over 400 lines: the flags, their checks and the three things ``report``
prints (the stored result, an answer for other limits, the front) share the same flags and are
the one command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from optuna_shape.cli._common import (
    DEFAULT_STORAGE,
    STORAGE_ENV,
    CLIError,
    NoAnswer,
    Unconfirmed,
    UsageError,
    mask,
    open_storage,
    percent,
    positive_float,
    resolve_study_name,
    secrets_of,
    storage_url,
)

__all__ = ["add_arguments", "run"]

HELP = ("print the result table of a stored search; answer other limits from its trainings; "
        "print its accuracy–cost front; write its plots")
DESCRIPTION = ("Print the result table of a stored shape search (while workers still run: what "
               "is done so far), optionally write its plots as HTML or print JSON. With limit "
               "flags or --goal, answer those limits from the study's trainings instead (no "
               "training); with --frontier, print its accuracy–cost front. It only "
               "reads the storage (a read-only database account is enough); "
               "--update-dashboard rewrites the optuna-dashboard note and plots. Exit code 3: "
               "the search finished and no shape complies (or nothing answers the limits, or "
               "nothing is on the front); 4: it answered with a shape it could not confirm "
               "(within its budget, or from the trainings there are).")
REQUERY_GOALS = ("accuracy", "size", "latency", "energy")
"""``--goal`` values of ``report``: the goals with one answer."""
LIMIT_FLAGS = {"max_size_mb": "--max-size-mb", "max_latency_ms": "--max-latency-ms",
               "max_energy_j": "--max-energy-j", "min_accuracy": "--min-accuracy"}
"""The limit flags of ``report``, by :class:`~optuna_shape.Constraints` field."""
COSTS = ("size", "latency", "energy")
"""``--cost`` values: what the front trades accuracy against."""


def _requery_goal(text: str) -> str:
    """An argparse type: a goal with one answer; the front and the complying set are named
    with what to use instead."""
    if text in REQUERY_GOALS:
        return text
    valid = ", ".join(REQUERY_GOALS)
    if text.startswith("frontier"):
        cost = text.partition(":")[2] or "size"
        raise argparse.ArgumentTypeError(
            f"{text!r} has no single answer: print the front with --frontier"
            + (f" --cost {cost}" if cost != "size" else "")
            + f"; --goal takes {valid}")
    if text == "none":
        raise argparse.ArgumentTypeError(
            f"'none' (the whole complying set) needs its own search; --goal takes {valid}")
    raise argparse.ArgumentTypeError(f"invalid goal {text!r}; --goal takes {valid}")


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
    g = p.add_argument_group(
        "other limits, from the study's trainings (no training)",
        "Any of these answers the limits given (only those: the study's own limits are not "
        "added) and the goal from the trainings already in the study: the shape, confirmed "
        "or not with its probability, the trainings it rests on, and what more training "
        "would settle it. Exit 0 confirmed, 4 not confirmed, 3 no shape. A limit is answered "
        "over the shapes the search screened: latency and energy need the study to have "
        "measured them.")
    g.add_argument("--max-size-mb", type=positive_float, default=None,
                   help="size limit in MB")
    g.add_argument("--max-latency-ms", type=positive_float, default=None,
                   help="latency limit in ms per batch (as the study measured it)")
    g.add_argument("--max-energy-j", type=positive_float, default=None,
                   help="energy limit in J per batch (as the study measured it)")
    g.add_argument("--min-accuracy", type=percent, default=None,
                   help="accuracy floor in percent, 0 to 100")
    g.add_argument("--goal", type=_requery_goal, default=None, metavar="GOAL",
                   help="accuracy (highest), size / latency / energy (lowest meeting "
                        "--min-accuracy); default: the study's goal, else accuracy when a "
                        "size, latency or energy limit is given, else the lowest cost "
                        "(the front's cost for a frontier study, else size); alone, it "
                        "answers the study's own limits")
    g = p.add_argument_group("the accuracy–cost front")
    g.add_argument("--frontier", action="store_true",
                   help="print the front of any study: the trained shapes no feasible shape "
                        "beats on both accuracy and cost, cheapest first, each with its "
                        "P(on front); the size, latency and energy limit flags narrow it")
    g.add_argument("--cost", choices=COSTS, default=None,
                   help="the front's cost (default: the one the study's goal names, else "
                        "size); with --plots, front.html plots it")


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


def _limits(args: argparse.Namespace) -> dict[str, float]:
    """The limit flags given, by :class:`~optuna_shape.Constraints` field."""
    return {k: getattr(args, k) for k in LIMIT_FLAGS if getattr(args, k, None) is not None}


def check_flags(args: argparse.Namespace) -> None:
    """Refuse a combination of ``report`` flags that cannot work, before the storage is opened.

    Raises:
        UsageError: one line naming the flags and what would work.
    """
    limits = _limits(args)
    requery = bool(limits) or args.goal is not None
    if args.cost is not None and not args.frontier:
        raise UsageError(f"--cost {args.cost} is the cost of the front: add --frontier, or drop "
                         "--cost")
    if args.frontier and args.goal is not None:
        raise UsageError(f"--goal {args.goal} picks one shape and --frontier prints the whole "
                         "front: drop one of them")
    if args.frontier and args.min_accuracy is not None:
        raise UsageError(f"--min-accuracy {args.min_accuracy:g} does not narrow the front (it "
                         "lists every accuracy it trades off); pick from the front, or ask for "
                         "one shape with --min-accuracy and --goal instead of --frontier")
    if args.include_all and (requery or args.frontier):
        what = "--frontier" if args.frontier else \
            next(LIMIT_FLAGS[k] for k in LIMIT_FLAGS if k in limits) if limits else "--goal"
        raise UsageError(f"--all lists every feasible shape of the result table; it does not "
                         f"apply with {what}: drop --all")


def _default_goal(study_goal: str | None, limits: dict[str, float]) -> str:
    """The goal of an answer for other limits when ``--goal`` is not given: the study's own
    when it has one answer; else the highest accuracy when a size, latency or energy limit is
    given; else (only a floor) the lowest cost — the front's cost for a frontier study, else
    size.

    Example:
        >>> _default_goal("frontier:latency", {"min_accuracy": 90.0})
        'latency'
        >>> _default_goal("frontier", {"max_latency_ms": 3.0})
        'accuracy'
    """
    from optuna_shape.space.constraints import goal_cost

    if study_goal in REQUERY_GOALS:
        return study_goal
    if any(k != "min_accuracy" for k in limits):
        return "accuracy"
    return goal_cost(study_goal) or "size"


def _bad_query(exc: ValueError, args: argparse.Namespace, limits: dict[str, float]) -> UsageError:
    """A limit or cost the study cannot answer, as one usage line naming the flag."""
    text = " ".join(str(exc).split())
    flag = None
    for what, key in (("latency", "max_latency_ms"), ("energy", "max_energy_j")):
        if f"no {what} measurements" in text:
            if key in limits:
                flag = f"{LIMIT_FLAGS[key]} {limits[key]:g}"
            elif getattr(args, "cost", None) == what:
                flag = f"--cost {what}"
            elif args.goal == what:
                flag = f"--goal {what}"
    return UsageError(f"{flag}: {text}" if flag else f"cannot answer from this study: {text}")


def _requery(args: argparse.Namespace, study: Any, url: str) -> tuple[int, str]:
    """Answer the limit flags and ``--goal`` from the study's trainings; print the answer (or
    its JSON) and return ``(exit code, words)``."""
    import optuna_shape as osh
    from optuna_shape.reporting.limits_text import (
        _confidence_needed,
        limit_answer_dict,
        limit_answer_lines,
        query_words,
    )
    from optuna_shape.reporting.outcomes import limit_outcome
    from optuna_shape.reporting.results import load_config
    from optuna_shape.reporting.text import make_console

    limits = _limits(args)
    cfg = load_config(study)
    if limits:
        cons = osh.Constraints(**limits)
    else:
        cons = osh.Constraints.from_dict(cfg.get("constraints"))
    goal = args.goal or _default_goal(cfg.get("goal"), limits)
    try:
        answer = osh.answer_for(study, cons, goal)
    except ValueError as exc:
        raise _bad_query(exc, args, limits) from None
    asked = cons.to_dict()
    code, words = limit_outcome(answer, _confidence_needed(study), query_words(asked, goal))
    resume = _resume_hint(args, study, asked, goal)
    if args.json:
        data = limit_answer_dict(study, answer, asked, goal)
        data["resume"] = resume[0] if resume and answer.next_trainings \
            and not data["confirmed"] else None
        print(mask(json.dumps(data, indent=2, default=str), secrets_of(url)))
    else:
        console = make_console()
        for line in limit_answer_lines(study, answer, asked, goal, resume=resume):
            console.print(mask(line, secrets_of(url)), highlight=False,
                          soft_wrap=not console.is_terminal)
    return code, words


def _resume_hint(args: argparse.Namespace, study: Any, asked: dict[str, Any],
                 goal: str) -> tuple[str, ...]:
    """How to train what would settle an answer: the command of a search with these limits in
    a new study that starts from this study's trainings (``search --from-study``), and what to
    add to it; nothing for a study made by Python code (no training flags to repeat)."""
    from optuna_shape.reporting.results import search_summary

    name = study.study_name
    if not isinstance(study.user_attrs.get("training"), dict):  # made by Python code
        return ()
    limits = {k: v for k, v in asked.items() if v is not None}
    flags = [f"{LIMIT_FLAGS[k]} {v:g}" for k, v in limits.items()]
    tag = {"max_size_mb": "mb", "max_latency_ms": "ms", "max_energy_j": "j",
           "min_accuracy": "acc"}
    new = "-".join([name, *(f"{v:g}{tag[k]}" for k, v in limits.items()), goal])
    n = search_summary(study).trainings
    storage = f" --storage {mask(args.storage)}" if args.storage else ""
    command = " ".join(["optuna-shape search" + storage, "--from-study", name, "--study-name",
                        new, *flags, "--goal", goal, "--max-trainings", str(n + 5)])
    return (command, f"(with the other flags study {name!r} was searched with; --max-trainings "
                     f"counts its {n} copied trainings)")


def _front(args: argparse.Namespace, study: Any, url: str) -> tuple[int, str]:
    """Print the accuracy–cost front of the study (or its JSON); return ``(exit code,
    words)``."""
    import optuna_shape as osh
    from optuna_shape.reporting.front_tables import front_title, print_front
    from optuna_shape.reporting.limits_text import query_words
    from optuna_shape.reporting.outcomes import FRONTIER, GOAL_WORDS, front_words
    from optuna_shape.reporting.results import load_config, search_summary
    from optuna_shape.reporting.text import make_console
    from optuna_shape.space.constraints import goal_cost, is_frontier

    limits = _limits(args)
    cfg = load_config(study)
    cost = args.cost or goal_cost(cfg.get("goal")) or "size"
    try:
        rows = osh.frontier(study, cost=cost,
                            constraints=osh.Constraints(**limits) if limits else None)
    except ValueError as exc:
        raise _bad_query(exc, args, limits) from None
    summary = search_summary(study)
    stored = (not limits and is_frontier(cfg.get("goal")) and goal_cost(cfg.get("goal")) == cost
              and summary.finished and summary.status == FRONTIER)
    if stored:
        words = front_words(study, summary, rows)
    else:
        within = f" within {query_words(limits, None).split(';')[0]}" if limits else ""
        words = (f"front of {len(rows)} shape{'s' if len(rows) != 1 else ''}{within} from "
                 f"the study's {summary.trainings} trainings (the study's goal: "
                 f"{GOAL_WORDS.get(cfg.get('goal'), cfg.get('goal'))})")
    if not rows:
        words = (f"no trained shape is on the accuracy–{cost} front"
                 + (" within these limits" if limits else "")
                 + f" ({summary.trainings} trainings in the study)")
    if args.json:
        data = {"study_name": study.study_name, "cost": cost, "limits": limits,
                "stored": stored, "outcome": words, "front": [r.as_dict() for r in rows]}
        print(mask(json.dumps(data, indent=2, default=str), secrets_of(url)))
    else:
        console = make_console()
        print_front(rows, console, front_title(study.study_name, cost))
        console.print(words, highlight=False, soft_wrap=not console.is_terminal)
    return (0 if rows else 3), words


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-shape report``; returns the exit code (3: finished, nothing complies, or
    nothing answers the limits asked, or nothing on the front; 4: answered, not confirmed)."""
    import optuna

    from optuna_shape.policy.stop import SearchStatus
    from optuna_shape.reporting.outcomes import outcome
    from optuna_shape.reporting.results import load_config, result_table, search_summary
    from optuna_shape.reporting.tables import print_result
    from optuna_shape.reporting.text import make_console

    check_flags(args)
    url = storage_url(args.storage)
    _check_exists(url)
    # read-only unless the dashboard views are to be rewritten
    storage = open_storage(url, heartbeat_interval=None, read_only=not args.update_dashboard)
    name = resolve_study_name(storage, args.study_name, url)
    study = optuna.load_study(study_name=name, storage=storage)
    load_config(study)  # ValueError: not an optuna-shape study
    if args.frontier or _limits(args) or args.goal is not None:
        code, words = (_front if args.frontier else _requery)(args, study, url)
        _side_outputs(args, study, url, name)
        return _exit(code, words)
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
        if s.finished and status == SearchStatus.FRONTIER:
            from optuna_shape.reporting.limits import frontier

            data["front"] = [r.as_dict() for r in frontier(study)]
        print(mask(json.dumps(data, indent=2, default=str), secrets_of(url)))
    else:
        print_result(study, make_console(), include_all=args.include_all)
    _side_outputs(args, study, url, name)
    return _exit(code, words)


def _exit(code: int, words: str) -> int:
    """0, or the exception whose exit code and last line say why not (3: no answer, 4: not
    confirmed)."""
    if code == 3:
        raise NoAnswer(words)
    if code == 4:
        raise Unconfirmed(words)
    return 0


def _side_outputs(args: argparse.Namespace, study: Any, url: str, name: str) -> None:
    """``--plots`` and ``--update-dashboard`` (their lines on stderr with ``--json``)."""
    from optuna_shape.reporting.text import make_console

    console = make_console(stderr=args.json)
    if args.plots:
        from optuna_shape.reporting.plots import write_plots

        front_cost = args.cost
        if args.frontier and front_cost is None:  # the front printed: its cost
            from optuna_shape.reporting.results import load_config
            from optuna_shape.space.constraints import goal_cost

            front_cost = goal_cost(load_config(study).get("goal")) or "size"
        for path in write_plots(study, args.plots, front_cost=front_cost):
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
