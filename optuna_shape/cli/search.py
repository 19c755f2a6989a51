"""``optuna-shape search``: run, resume or join a shape search and print its result.

Every worker builds the same :class:`~optuna_shape.ShapeSampler` from the flags; the study (in
``--storage``, a SQLite file ``optuna-shape.db`` in the current directory by default) holds the
shared plan, so running the same command again resumes and running it in several terminals
shares the work. A finished study is not optimised again: its result is reprinted.

Every flag is checked before anything is trained or written to the storage: a value that can never
work (an accuracy floor above 100 %, a size limit below the smallest shape, an empty grid) is a
usage error, a missing GPU or CUDA runtime a failure, each printed as one ``error:`` line.

One module: the flags, the checks that refuse a bad combination before anything runs, and the
build and run that read the checked flags are the one ``search`` command; a flag and the checks
that name it change together.
"""

from __future__ import annotations

import argparse
import json
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
    fraction,
    mask,
    non_negative_float,
    open_storage,
    percent,
    positive_float,
    positive_int,
    secrets_of,
    storage_url,
)
from optuna_shape.measurement.screening import AUTO_PREDICT_ABOVE, SCREENINGS

__all__ = ["add_arguments", "run", "DEFAULT_DEPTH", "DEFAULT_WIDTH", "DEFAULT_DIGITS_EPOCHS",
           "FAMILIES"]

HELP = ("run (or resume, or join) a shape search and print the chosen shape (or the "
        "accuracy–cost front)")
DESCRIPTION = __doc__.split("\n\n")[0] if __doc__ else HELP

DEFAULT_DEPTH = "10:28:6"
"""Default depths of ``wrn``: 10, 16, 22, 28 (wide ResNets need depth = 6n + 4). Every built-in
family has its own default grid (:attr:`optuna_shape.Family.default_depth`)."""
DEFAULT_WIDTH = "0.25:2:0.25"
"""Default widths of ``wrn``: 0.25 … 2 in steps of 0.25 (with the depths: 32 shapes)."""
DEFAULT_DIGITS_EPOCHS = 5
"""Epochs per training on ``digits`` when ``--epochs`` is not given (a few minutes in all on
two CPU cores); other datasets use :data:`optuna_shape.training.DEFAULT_EPOCHS`."""
GOALS = ("accuracy", "size", "latency", "energy", "frontier", "frontier:latency",
         "frontier:energy", "none")
"""``--goal`` values: one shape (highest accuracy, lowest cost), the accuracy–cost front (over
size, latency or energy), or the whole complying set (``none``)."""
MODES = ("adaptive", "paper")
DATASETS = ("digits", "mnist", "cifar10", "cifar100", "imagenet32", "breast_cancer", "wine",
            "iris")
"""The built-in datasets (:data:`optuna_shape.training.DATASETS`, repeated here so that
``--help``, usage errors and ``report`` do not wait for torch to import)."""
FAMILIES = ("wrn", "densenet", "mlp")
"""The built-in model families (:func:`optuna_shape.list_families` before any user family)."""
POLICY_FLAGS = {"confidence": "--confidence", "max_trainings": "--max-trainings",
                "n_initial": "--n-initial", "budget": "--budget"}
"""Adaptive-search flags: fields of :class:`~optuna_shape.Adaptive`, set only when given."""


class TrainingFailed(Exception):
    """A training failed (diverged, out of memory): the trial is FAIL and the search goes on."""


def _values(name: str):  # noqa: ANN202 - argparse type factory
    def parse(text: str) -> str:
        from optuna_shape.space.design_space import parse_values

        try:
            parse_values(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def _precisions(text: str) -> str:
    from optuna_shape.space.precision import parse_precisions

    try:
        parse_precisions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _budget(text: str) -> float:
    from optuna_shape.models.compute import parse_budget

    try:
        seconds = parse_budget(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("budget must be", "must be", 1)
                                         .split("; got")[0] + f", got {text!r}") from None
    assert seconds is not None
    return seconds


def _strategy(text: str) -> str | int:
    from optuna_shape.policy.modeling_strategy import STRATEGIES

    if text in STRATEGIES:
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(STRATEGIES)} or a number of shapes, got {text!r}"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"number of shapes must be >= 1, got {n}")
    return n


def _milestones(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = (-1.0,)
    if not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated fractions of the epochs between 0 and 1 such as "
            f"0.3,0.6,0.8, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``search`` flags to ``p``."""
    g = p.add_argument_group("task")
    g.add_argument("--dataset", default="digits", choices=DATASETS,
                   help="dataset; digits and the tabular sets breast_cancer, wine and iris are "
                        "bundled, the others are read from --data-dir")
    g.add_argument("--data-dir", default="./data", help="folder of the dataset files")
    g.add_argument("--download", action="store_true",
                   help="let torchvision download MNIST / CIFAR (needs internet)")
    g.add_argument("--subset", type=positive_int, default=None,
                   help="cap every split at N examples (quick runs)")
    g.add_argument("--val-fraction", type=fraction, default=None,
                   help="validation share (default: 0.2 of digits, 0.1 of the training set)")
    g = p.add_argument_group("design space")
    g.add_argument("--family", default="wrn", choices=FAMILIES,
                   help="model family: wrn (wide ResNet) and densenet (DenseNet-BC) for images, "
                        "mlp for feature vectors (tabular sets; images are flattened)")
    g.add_argument("--depth", type=_values("depth"), default=None,
                   help="depths: 'min:max:step' or a list '10,16,22' (default per family: "
                        "wrn and densenet 10:28:6, mlp 1:4:1)")
    g.add_argument("--width", type=_values("width"), default=None,
                   help="widths: 'min:max:step' or a list '0.5,1,2' (fractions like 1/16 ok; "
                        "default per family: wrn 0.25:2:0.25, densenet 0.5:2:0.5, "
                        "mlp 0.25:2:0.25)")
    g.add_argument("--precision", type=_precisions, default="fp32",
                   help="precisions to deploy at: fp32, bf16, int8 or a list 'fp32,int8'; with "
                        "several the search is over (shape, precision) pairs")
    g = p.add_argument_group("limits and goal")
    g.add_argument("--max-size-mb", type=positive_float, default=None,
                   help="size limit in MB (float32 parameters × 4 bytes / 10^6)")
    g.add_argument("--max-latency-ms", type=positive_float, default=None,
                   help="latency limit (ms per batch of --latency-batch-size on --device)")
    g.add_argument("--max-energy-j", type=positive_float, default=None,
                   help="energy limit (J per batch; NVIDIA GPU with NVML)")
    g.add_argument("--min-accuracy", type=percent, default=None,
                   help="accuracy floor in percent, 0 to 100 (97 means 97 %%)")
    g.add_argument("--goal", choices=GOALS, default="accuracy",
                   help="what to optimise: accuracy (highest), size / latency / energy (lowest "
                        "meeting --min-accuracy), frontier (the accuracy–size front to pick "
                        "from; frontier:latency, frontier:energy against that cost), none (the "
                        "whole complying set)")
    g = p.add_argument_group("method")
    g.add_argument("--mode", choices=MODES, default=None,
                   help="search policy: adaptive (noise-aware, sequential; the default) or paper "
                        "(Shape_DNN's sample, fit, verify)")
    g.add_argument("--confidence", type=fraction, default=None,
                   help="adaptive: how sure the answer must be before the search stops "
                        "(0 to 1; default 0.9)")
    g.add_argument("--max-trainings", type=positive_int, default=None,
                   help="adaptive: most trainings, repeats and failures included (default: a "
                        "third of the feasible shapes, rounded up, at least --n-initial + 3)")
    g.add_argument("--budget", type=_budget, default=None,
                   help="adaptive: most compute, in seconds of training time summed over every "
                        "training and worker (GPU-hours with one GPU per worker), e.g. 3600, "
                        "45m, 8h; when it ends before the confidence is reached the search "
                        "answers with the best-supported shape, marked unconfirmed (exit 4); "
                        "--max-trainings stays a cap")
    g.add_argument("--n-initial", type=positive_int, default=None,
                   help="adaptive: shapes trained first, spread over the space (default 5)")
    g.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None,
                   help="adaptive: the search decides how far each training goes, stopping "
                        "one once its remaining epochs are worth less than starting another "
                        "shape (on by default; --no-early-stopping trains every shape to the "
                        "end); resuming a study keeps the setting it was made with")
    g.add_argument("--strategy", type=_strategy, default=None,
                   help="paper (and the adaptive search with --goal none): modeling strategy "
                        "thorough, standard (default), optimistic, or a number of shapes to "
                        "train")
    g.add_argument("--sampling", choices=("interval", "random", "wider"), default=None,
                   help="paper: how the shapes to train are picked (default interval)")
    g.add_argument("--latency-batch-size", type=positive_int, default=1,
                   help="inference batch size for latency and energy")
    g.add_argument("--device", default="cpu",
                   help="device for training and measurements: cpu, cuda, cuda:N or mps")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for training and latency (default: torch's)")
    g.add_argument("--target-hardware", default=None,
                   help="reuse measurements stored under this hardware key")
    g.add_argument("--screening", choices=SCREENINGS, default="auto",
                   help="latency/energy screening: measure every shape, predict (measure a "
                        "designed subset and every shape near a limit, predict the rest; a "
                        "shape is measured before it trains), or auto (predict above "
                        f"{AUTO_PREDICT_ABOVE} shapes to measure; default)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=None,
                   help=f"epochs per training (default: {DEFAULT_DIGITS_EPOCHS} for digits, the "
                        "dataset's default otherwise: 30 MNIST, 200 CIFAR, 40 ImageNet32, "
                        "30 breast_cancer, 60 wine and iris)")
    g.add_argument("--batch-size", type=positive_int, default=128,
                   help="training batch size (examples per SGD step)")
    g.add_argument("--lr", type=positive_float, default=0.1, help="initial SGD learning rate")
    g.add_argument("--momentum", type=non_negative_float, default=0.9, help="SGD momentum")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True,
                   help="Nesterov momentum")
    g.add_argument("--weight-decay", type=non_negative_float, default=5e-4,
                   help="L2 weight decay of SGD")
    g.add_argument("--lr-milestones", type=_milestones, default=(0.3, 0.6, 0.8),
                   help="fractions of the epochs where the learning rate is multiplied by "
                        "--lr-gamma")
    g.add_argument("--lr-gamma", type=positive_float, default=0.2,
                   help="factor applied to the learning rate at each milestone")
    g.add_argument("--select-on", choices=("val", "test"), default="val",
                   help="split that scores a shape ('test' reproduces the paper)")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (default: on for CUDA)")
    g = p.add_argument_group("study")
    g.add_argument("--storage", default=None,
                   help=f"Optuna storage URL: sqlite:///FILE, postgresql://USER:PW@HOST/DB, "
                        f"journal:PATH, grpc://HOST:PORT (an `optuna-shape proxy`) or :memory: "
                        f"(default: ${STORAGE_ENV} if set, else "
                        f"{DEFAULT_STORAGE}; put a URL with a password in ${STORAGE_ENV})")
    g.add_argument("--study-name", default=None,
                   help="study to create, resume or join (default: shape-<dataset>)")
    g.add_argument("--from-study", default=None, metavar="NAME",
                   help="start a new study from the finished trainings and measurements of "
                        "study NAME in the same storage (searched with the same design space "
                        "and training flags), so a search for other limits or another goal "
                        "trains only what that evidence still lacks; --max-trainings counts "
                        "the copied trainings; a study that already has trials resumes as it is")
    g.add_argument("--seed", type=int, default=0, help="seed of data split, init and training")
    g.add_argument("--quiet", action="store_true", help="no progress output")
    g.add_argument("--no-dashboard", action="store_true",
                   help="do not attach the note and plots for optuna-dashboard")


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


def check_hardware(args: argparse.Namespace) -> None:
    """Refuse a device or an energy limit this machine cannot serve (before any storage write).

    Raises:
        UsageError: ``--device`` is not a device name.
        CLIError: no CUDA runtime or GPU for ``--device cuda``, no NVIDIA GPU with NVML for an
            energy limit or goal.
    """
    from optuna_shape.measurement.hardware import check_device

    device = args.device
    try:
        check_device(device, "--device")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    kind, _, index = device.partition(":")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CLIError(f"--device {device}: no CUDA GPU is usable here (torch "
                           f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                           "use --device cpu or a machine with an NVIDIA GPU and CUDA torch")
        n = torch.cuda.device_count()
        if index and int(index) >= n:
            raise CLIError(f"--device {device}: this machine has {n} CUDA device(s), "
                           f"cuda:0 to cuda:{n - 1}")
    if kind == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise CLIError("--device mps: Apple's MPS backend is not available here; "
                           "use --device cpu")
    if args.max_energy_j is not None or _goal_cost(args.goal) == "energy":
        what = (f"--max-energy-j {args.max_energy_j:g}" if args.max_energy_j is not None
                else f"--goal {args.goal}")
        if kind != "cuda":
            raise CLIError(f"{what} needs energy measured on an NVIDIA GPU (NVML), but "
                           f"--device is {device}: pass --device cuda on a machine with one, "
                           + ("or drop the energy limit" if args.max_energy_j is not None
                              else "or pick another --goal"))
        from optuna_shape.measurement.energy import energy_available

        ok, why = energy_available(device)
        if not ok:
            raise CLIError(f"{what}: energy cannot be measured on {device}: {why}")


def _goal_cost(goal: str | None) -> str | None:
    """The cost ``--goal`` minimises or trades accuracy against (``None``: accuracy, none)."""
    from optuna_shape.space.constraints import goal_cost

    return goal_cost(None if goal == "none" else goal)


def check_frontier_flags(args: argparse.Namespace) -> None:
    """Refuse, in flag words, what the frontier goal cannot run with: the paper's method, a
    compute budget, several precisions.

    Raises:
        UsageError: naming the flag and what would work.
    """
    from optuna_shape.space.constraints import is_frontier

    goal = getattr(args, "goal", None)
    if not is_frontier(goal):
        return
    if getattr(args, "mode", None) == "paper":
        raise UsageError(f"--goal {goal} needs --mode adaptive (the paper's method answers one "
                         "limit at a time): drop --mode paper")
    if getattr(args, "budget", None) is not None:
        raise UsageError(f"--goal {goal} counts trainings: use --max-trainings instead of "
                         "--budget")
    precision = getattr(args, "precision", "fp32")
    if "," in str(precision):
        raise UsageError(f"--goal {goal} searches one precision, got --precision {precision}: "
                         "give one (fp32, bf16 or int8)")


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


def _check_study(study: Any, sampler: Any, training: dict[str, Any]) -> None:
    """Refuse to join a study made with other settings (before any trial starts)."""
    from optuna_shape.reporting.results import load_config

    try:
        stored = load_config(study)
    except ValueError:
        stored = None
    if stored is not None:
        mine = json.loads(json.dumps(sampler.config()))
        diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        if diff:
            details = "; ".join(f"{k}: study has {stored.get(k)!r}, these flags give "
                                f"{mine.get(k)!r}" for k in diff)
            raise CLIError(f"study {study.study_name!r} was created with other settings "
                           f"({details}); use the same flags or another --study-name")
    old = study.user_attrs.get("training")
    if isinstance(old, dict):
        old = {"early_stopping": False, **old}  # studies stored before the setting existed
    mine_t = json.loads(json.dumps(training))
    if old is None:
        if stored is None and study.trials:
            raise CLIError(f"study {study.study_name!r} exists but holds no optuna-shape "
                           "search; use another --study-name")
        study.set_user_attr("training", mine_t)
    elif old != mine_t:
        diff = sorted(k for k in set(old) | set(mine_t) if old.get(k) != mine_t.get(k))
        details = "; ".join(f"{k}: study has {old.get(k)!r}, these flags give {mine_t.get(k)!r}"
                            for k in diff)
        raise CLIError(f"study {study.study_name!r} was trained with other settings "
                       f"({details}); use the same flags or another --study-name")


def _differences(theirs: dict[str, Any], mine: dict[str, Any], name: str) -> str:
    """``key: 'name' has X, these flags give Y`` for each differing key (one level into nested
    settings: ``config.epochs``)."""
    out = []
    for k in sorted(set(theirs) | set(mine)):
        a, b = theirs.get(k), mine.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k}.{kk}: {name!r} has {a.get(kk)!r}, these flags give {b.get(kk)!r}"
                    for kk in sorted(set(a) | set(b)) if a.get(kk) != b.get(kk)]
        else:
            out.append(f"{k}: {name!r} has {a!r}, these flags give {b!r}")
    return "; ".join(out)


def _source_study(name: str, study_name: str, storage: Any, url: str, sampler: Any,
                  training: dict[str, Any]) -> Any:
    """The study ``--from-study`` names, checked before the new study is created: an
    optuna-shape search made by ``optuna-shape search`` with the same design space and training
    settings (early stopping aside: it does not change the trainings' recipe).

    Raises:
        UsageError: ``name`` is the study being searched.
        CLIError: no such study, not an optuna-shape search, made by Python code (no training
            settings stored), or searched with another design space or training settings.
    """
    import optuna

    from optuna_shape.cli._common import resolve_study_name
    from optuna_shape.reporting.results import load_config

    if name == study_name:
        raise UsageError(f"--from-study {name} names the study being searched: give the new "
                         "study another --study-name")
    resolve_study_name(storage, name, url)  # CLIError naming the studies there
    source = optuna.load_study(study_name=name, storage=storage)
    try:
        cfg = load_config(source)
    except ValueError as exc:
        raise CLIError(f"--from-study {name}: {exc}") from None
    mine = json.loads(json.dumps(sampler.config()))
    if cfg.get("space") != mine.get("space"):
        raise CLIError(f"--from-study {name}: that study searched another design space "
                       f"({_differences(cfg['space'], mine['space'], name)}); give the same "
                       "--family, --depth, --width and --precision")
    theirs = source.user_attrs.get("training")
    if not isinstance(theirs, dict):
        raise CLIError(f"--from-study {name}: that study was not made by `optuna-shape search` "
                       "(no training settings stored), so its trainings may not match these; "
                       "copy them in Python with osh.copy_trainings(source, target)")
    # the recipe must match; whether a search stops trainings early does not change them
    theirs = {k: v for k, v in theirs.items() if k != "early_stopping"}
    mine_t = {k: v for k, v in json.loads(json.dumps(training)).items()
              if k != "early_stopping"}
    if theirs != mine_t:
        raise CLIError(f"--from-study {name}: its trainings used other settings "
                       f"({_differences(theirs, mine_t, name)}); give the same training flags")
    return source


def _copy_from(source: Any, study: Any, console: Any) -> int:
    """Copy the finished trainings and measurements of ``source`` into ``study`` when it has
    no trials yet (a study that has some — copied by an earlier run or another worker —
    resumes as it is); returns the trainings copied."""
    import optuna_shape as osh

    if study.trials:
        return 0
    try:
        n = osh.copy_trainings(source, study)
    except ValueError:  # another worker copied them first
        return 0
    if console is not None:
        console.print(f"started from {n} trainings of study {source.study_name!r} "
                      "(--max-trainings counts them)", highlight=False, soft_wrap=True)
    return n


def _trial_shape(trial: Any) -> tuple[Any, Any]:
    p = trial.params
    return p.get("depth"), p.get("width")


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-shape search``; returns the exit code (0 answered — a shape, the complying
    set or the front —, 4 answered but not confirmed, 3 nothing complies or nothing on the
    front)."""
    import optuna

    import optuna_shape as osh
    from optuna_shape.reporting.rich_progress import make_reporter
    from optuna_shape.reporting.tables import make_console, outcome, print_result

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
