"""The flags of ``optuna-shape search`` and the checks that refuse them before anything runs.

Every flag is checked before anything is trained or written to the storage: a value that can never
work (an accuracy floor above 100 %, a size limit below the smallest shape, an empty grid) is a
usage error, a missing GPU or CUDA runtime a failure, each printed as one ``error:`` line. The
argparse types here refuse a bad value as it is parsed; :func:`check_hardware` and
:func:`check_frontier_flags` refuse what the values cannot run with together.
"""

from __future__ import annotations

import argparse

from optuna_shape.cli._common import (
    DEFAULT_STORAGE,
    STORAGE_ENV,
    CLIError,
    UsageError,
    fraction,
    non_negative_float,
    percent,
    positive_float,
    positive_int,
)
from optuna_shape.measurement.screening import AUTO_PREDICT_ABOVE, SCREENINGS

__all__ = ["add_arguments", "check_hardware", "check_frontier_flags", "DEFAULT_DEPTH",
           "DEFAULT_WIDTH", "DEFAULT_DIGITS_EPOCHS", "GOALS", "MODES", "DATASETS", "FAMILIES",
           "POLICY_FLAGS"]

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
                        "third of the feasible shapes, rounded up, at least --n-initial + 3, "
                        "plus 4 for each worker beyond the first that the study has had at "
                        "once, at most twice the feasible shapes)")
    g.add_argument("--budget", type=_budget, default=None,
                   help="adaptive: most compute, in seconds of training time summed over every "
                        "training and worker (GPU-hours with one GPU per worker), e.g. 3600, "
                        "45m, 8h, 1h30m; when it ends before any shape is confirmed to meet "
                        "the floor the search answers with the best-supported shape, marked "
                        "unconfirmed (exit 4); --max-trainings stays a cap")
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
