"""``optuna-shape search``: run, resume or join a shape search and print its result.

Every worker builds the same :class:`~optuna_shape.ShapeSampler` from the flags; the study (in
``--storage``, a SQLite file ``optuna-shape.db`` in the current directory by default) holds the
shared plan, so running the same command again resumes and running it in several terminals
shares the work. A finished study is not optimised again: its result is reprinted.

The flags and the checks that refuse them are in :mod:`~optuna_shape.cli.search_args`, the checks
of the study a worker joins (and of ``--from-study``) in :mod:`~optuna_shape.cli.search_study`;
this module builds the sampler and the objective from the checked flags and runs the search.
"""

from __future__ import annotations

import argparse
from typing import Any

from optuna_shape.cli._common import (
    DEFAULT_STORAGE,
    GRACE,
    HEARTBEAT,
    STORAGE_ENV,
    CLIError,
    InterruptLatch,
    NoAnswer,
    Unconfirmed,
    UsageError,
    mask,
    open_storage,
    secrets_of,
    storage_url,
)
from optuna_shape.cli.search_args import (
    DEFAULT_DIGITS_EPOCHS,
    POLICY_FLAGS,
    add_arguments,
    check_frontier_flags,
    check_hardware,
)
from optuna_shape.cli.search_study import _check_study, _copy_from, _source_study

__all__ = ["add_arguments", "run", "build"]

HELP = ("run (or resume, or join) a shape search and print the chosen shape (or the "
        "accuracy–cost front)")
DESCRIPTION = __doc__.split("\n\n")[0] if __doc__ else HELP


class TrainingFailed(Exception):
    """A training failed (diverged, out of memory): the trial is FAIL and the search goes on."""


def _train_config(args: argparse.Namespace) -> Any:
    from optuna_shape.training import TrainConfig

    epochs = args.epochs
    if epochs is None and args.dataset == "digits":
        epochs = DEFAULT_DIGITS_EPOCHS
    return TrainConfig(
        epochs=epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        nesterov=args.nesterov, weight_decay=args.weight_decay,
        lr_milestones=args.lr_milestones, lr_gamma=args.lr_gamma, device=args.device,
        amp=args.amp, seed=args.seed, select_on=args.select_on, threads=args.threads,
    )


def _policy(args: argparse.Namespace, goal: str | None) -> Any:
    """The search policy the flags describe: :class:`~optuna_shape.Paper` with ``--mode paper``
    (``--strategy``, ``--sampling``), else :class:`~optuna_shape.Adaptive` with the adaptive
    flags given (and ``--strategy``, which sizes its complying set, with ``--goal none``).

    Raises:
        UsageError: an adaptive-search flag with ``--mode paper``, or a paper flag the adaptive
            search would ignore (``--sampling``; ``--strategy`` with a goal).
        ValueError: a value the policy refuses.
    """
    import optuna_shape as osh

    given = {name: getattr(args, name) for name in POLICY_FLAGS
             if getattr(args, name, None) is not None}
    strategy, sampling = getattr(args, "strategy", None), getattr(args, "sampling", None)
    if getattr(args, "mode", None) == "paper":
        if given:
            raise UsageError(f"{POLICY_FLAGS[next(iter(given))]} works with the adaptive search "
                             "only (the paper's algorithm trains a fixed plan); drop it or use "
                             "--mode adaptive")
        return osh.Paper(strategy=strategy or "standard", sampling=sampling or "interval")
    if sampling is not None or (strategy is not None and goal is not None):
        flag = "--sampling" if sampling is not None else "--strategy"
        raise UsageError(f"{flag} works with --mode paper only (the adaptive search picks its "
                         "own shapes; --strategy also sizes its complying set with --goal "
                         "none): drop it or add --mode paper")
    return osh.Adaptive(**given, strategy=strategy if goal is None else None)


def _space(args: argparse.Namespace, info: Any) -> Any:
    """The design space of the flags, checked: a usage error names the bad value."""
    import optuna_shape as osh

    try:
        family = osh.get_family(args.family)
        depth = family.default_depth if args.depth is None else args.depth
        width = family.default_width if args.width is None else args.width
        for flag, value in (("--depth", depth), ("--width", width)):
            if value is None:
                raise ValueError(f"family {family.name!r} has no default grid; give {flag}")
        try:
            inputs = info.space_inputs(family)
        except ValueError as exc:
            raise ValueError(f"--family {family.name} does not fit --dataset {info.name}: "
                             f"{exc}") from None
        space = osh.ShapeSpace(family, depth=depth, width=width, **inputs,
                               precision=getattr(args, "precision", "fp32"))
    except (ValueError, KeyError) as exc:
        raise UsageError(" ".join(str(exc).strip("'\"").split())) from None
    if len(space.precisions) > 1 and getattr(args, "mode", None) == "paper":
        raise UsageError(f"--precision {args.precision} needs --mode adaptive (the paper's "
                         "method searches shapes only)")
    if not space.shapes:
        raise UsageError(f"the design space --depth {depth} × --width {width} is "
                         "empty; give at least one depth and one width")
    if args.max_size_mb is not None:
        low = space.precisions[-1]  # the fewest bits per parameter
        smallest = min(space.shapes, key=lambda s: space.size_mb(s, low))
        size = space.size_mb(smallest, low)
        if size > args.max_size_mb:
            raise UsageError(
                f"--max-size-mb {args.max_size_mb:g} MB is below the smallest shape of the "
                f"design space, ({smallest.depth}, {smallest.width:g}) at {size:.4g} MB: no shape "
                f"can fit; raise the limit to at least {size:.4g} or add smaller depths/widths")
    return space


def build(args: argparse.Namespace, reporter: Any = None) -> tuple[Any, Any, dict[str, Any]]:
    """Build the sampler and the objective from the flags (the same in every worker).

    Nothing is trained and nothing is written to a storage here.

    Returns:
        ``(sampler, objective, training)`` where ``training`` describes the training setup
        (stored in the study so that workers with different settings are refused).

    Raises:
        UsageError: a flag value that can never work (bad family or range, a size limit below
            the smallest shape).
    """
    import optuna_shape as osh
    from optuna_shape.space.constraints import is_frontier
    from optuna_shape.training import cached_dataset, make_objective

    check_frontier_flags(args)
    if getattr(args, "early_stopping", None) and is_frontier(args.goal):
        raise UsageError(f"--early-stopping does not work with --goal {args.goal}: the front "
                         "is drawn from trainings run to the end; drop it")
    if getattr(args, "early_stopping", None) and args.mode == "paper":
        raise UsageError("--early-stopping works with the adaptive search only (the paper's "
                         "algorithm verifies every candidate with a full training); drop it or "
                         "use --mode adaptive")
    early_stopping = getattr(args, "early_stopping", None)
    if early_stopping is None:  # a study made before keeps its own setting (see run)
        early_stopping = args.mode != "paper" and not is_frontier(args.goal)
    config = _train_config(args)
    splits = cached_dataset(args.dataset, data_dir=args.data_dir, download=args.download,
                            seed=args.seed, val_fraction=args.val_fraction, subset=args.subset)
    info = splits.info
    space = _space(args, info)
    constraints = osh.Constraints(max_size_mb=args.max_size_mb,
                                  max_latency_ms=args.max_latency_ms,
                                  max_energy_j=args.max_energy_j,
                                  min_accuracy=args.min_accuracy)
    goal = None if args.goal == "none" else args.goal
    try:
        measurement = osh.MeasurementSettings(
            device=args.device, batch_size=args.latency_batch_size, threads=args.threads,
            target_hardware=args.target_hardware, screening=args.screening)
        sampler = osh.ShapeSampler(space, constraints, goal, policy=_policy(args, goal),
                                   seed=args.seed, measurement=measurement, reporter=reporter)
    except ValueError as exc:  # an option the search cannot work with
        raise UsageError(" ".join(str(exc).split())) from None
    progress = getattr(reporter, "training", None)
    objective = make_objective(space, args.dataset, config=config, data_dir=args.data_dir,
                               download=args.download, seed=args.seed, progress=progress,
                               subset=args.subset, val_fraction=args.val_fraction,
                               early_stopping=early_stopping)
    training = {"dataset": args.dataset, "subset": args.subset,
                "val_fraction": args.val_fraction,
                "early_stopping": early_stopping,
                "config": {k: v for k, v in config.to_dict().items()
                           if k not in ("device", "threads", "num_workers", "amp",
                                        "eval_batch_size")}}
    return sampler, objective, training


def _trial_shape(trial: Any) -> tuple[Any, Any]:
    p = trial.params
    return p.get("depth"), p.get("width")


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-shape search``; returns the exit code (0 answered — a shape, the complying
    set or the front —, 4 answered but not confirmed, 3 nothing complies or nothing on the
    front)."""
    import optuna

    import optuna_shape as osh
    from optuna_shape.reporting.outcomes import outcome
    from optuna_shape.reporting.rich_progress import make_reporter
    from optuna_shape.reporting.tables import print_result
    from optuna_shape.reporting.text import make_console

    url = storage_url(args.storage)
    shown = mask(url)
    check_hardware(args)
    console = make_console()
    reporter = make_reporter(args.quiet)
    study_name = args.study_name or f"shape-{args.dataset}"
    sampler, objective, training = build(args, reporter)
    storage = open_storage(None if url == ":memory:" else url,
                           heartbeat_interval=HEARTBEAT, grace_period=GRACE)
    source = None  # --from-study: checked before the new study exists
    if getattr(args, "from_study", None) is not None:
        source = _source_study(args.from_study, study_name, storage, url, sampler, training)
    # the built-in objective asks a ShapePruner of its own (early stopping) and no other pruner
    study = optuna.create_study(storage=storage, sampler=sampler, study_name=study_name,
                                direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get("training")
    if getattr(args, "early_stopping", None) is None and isinstance(stored, dict):
        # not given: resume with the study's own setting (off for studies made before it)
        training["early_stopping"] = objective.early_stopping = bool(
            stored.get("early_stopping", False))
    _check_study(study, sampler, training)
    if source is not None:
        _copy_from(source, study, None if args.quiet else console)
    try:
        if osh.is_finished(study):
            if not args.quiet:
                console.print(f"study {study_name!r} has already finished; its result:",
                              highlight=False)
        else:
            from optuna_shape.store import fail_stale

            fail_stale(study)  # trials of workers that died (nothing without heartbeats)

            latch = InterruptLatch()

            def guarded(trial: optuna.Trial) -> float:
                latch.check()
                try:
                    value = objective(trial)
                except RuntimeError as exc:
                    from optuna_shape.measurement import MeasurementError

                    if isinstance(exc, MeasurementError):
                        raise
                    reporter.on_failed(trial.number, _trial_shape(trial),
                                       " ".join(str(exc).split()) or type(exc).__name__)
                    raise TrainingFailed(str(exc)) from exc
                if value is None or value != value:  # NaN: Optuna fails the trial
                    reporter.on_failed(trial.number, _trial_shape(trial),
                                       "the accuracy is NaN (training diverged?)")
                return value

            # every epoch is a point where a Ctrl-C swallowed by library code is raised again
            report_epoch = getattr(objective, "progress", None)

            def checked(*progress: Any) -> None:
                latch.check()
                if report_epoch is not None:
                    report_epoch(*progress)

            if hasattr(objective, "progress"):  # the built-in objective
                objective.progress = checked
            # carries on when this worker's trial was failed as stale while it was paused
            from optuna_shape import optimize

            with latch:
                optimize(study, guarded, catch=(TrainingFailed,), gc_after_trial=True)
                latch.check()
    finally:
        close = getattr(reporter, "close", None)
        if close is not None:
            close()
    print_result(study, console)
    if not args.no_dashboard:
        try:
            from optuna_shape.reporting.dashboard import attach_to_dashboard

            attach_to_dashboard(study)
        except Exception as exc:  # the result is printed; the dashboard view is a bonus
            console.print(mask(f"warning: could not attach the dashboard views: {exc}",
                               secrets_of(url)), highlight=False)
        if url.startswith("grpc://"):
            console.print("inspect it: optuna-dashboard with the database URL the proxy "
                          "serves (optuna-dashboard cannot read through the proxy)",
                          highlight=False, soft_wrap=True)
        elif url != ":memory:" and not url.startswith("journal:"):
            line = f"inspect it: optuna-dashboard {shown}"
            if shown != url:
                line += f'  (password hidden; with it in ${STORAGE_ENV}: ' \
                        f'optuna-dashboard "${STORAGE_ENV}")'
            console.print(line, highlight=False, soft_wrap=True)
    if not args.quiet and url != ":memory:":
        report = "optuna-shape report"
        if args.storage and url != DEFAULT_STORAGE:
            report += f" --storage {shown}"
        console.print(f"reprint it: {report} --study-name {study_name}", highlight=False,
                      soft_wrap=True)
    status, code, line = outcome(study)
    if code == 3:
        raise NoAnswer(line)
    if code == 4:
        raise Unconfirmed(line)
    if code != 0:
        raise CLIError(line)
    return 0
