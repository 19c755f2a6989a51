"""Parameter counts of every built-in family: analytic == meta device == real build, and cost.

For each family (``wrn``, ``densenet``, ``mlp``) and a grid of its shapes, from tiny to several
billion parameters, the report gives the analytic count (the family's torch-free formula), the
count of a model built on PyTorch's meta device (what a family registered from a build function
alone gets) and, up to ``--real-limit`` parameters, the count of an ordinary build; and the time
of the meta build and of the real build, measured side by side in the same run. Any mismatch
makes the script exit 1.

Usage::

    PYTHONPATH=. python benchmarks/family_sizes.py            # full grid, real builds <= 300 M
    PYTHONPATH=. python benchmarks/family_sizes.py --quick    # tiny shapes (smoke test)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tables import machine_info  # noqa: E402

from optuna_shape.families import get_family  # noqa: E402
from optuna_shape.families.registry import meta_param_count  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# (family, depth, width, in_channels, num_classes); images are CIFAR/ImageNet-like, mlp tabular
GRID: list[tuple[str, int, float, int, int]] = [
    ("wrn", 10, 1.0, 3, 10), ("wrn", 28, 10.0, 3, 10), ("wrn", 40, 4.0, 3, 1000),
    ("wrn", 40, 20.0, 3, 1000), ("wrn", 40, 40.0, 3, 1000), ("wrn", 52, 50.0, 3, 1000),
    ("densenet", 100, 1.0, 3, 10), ("densenet", 250, 2.0, 3, 10),
    ("densenet", 190, 40 / 12, 3, 10), ("densenet", 190, 10.0, 3, 100),
    ("densenet", 250, 20.0, 3, 1000),
    ("mlp", 2, 1.0, 30, 2), ("mlp", 4, 16.0, 30, 2), ("mlp", 8, 64.0, 784, 10),
    ("mlp", 4, 300.0, 30, 2), ("mlp", 16, 256.0, 784, 10),
]
QUICK: list[tuple[str, int, float, int, int]] = [
    ("wrn", 10, 0.5, 1, 10), ("densenet", 16, 0.5, 1, 10), ("mlp", 2, 1.0, 13, 3),
]


def _timed(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    """Median seconds of ``fn()`` and its last result; memory is freed between runs, untimed."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        gc.collect()
    return statistics.median(times), out


def measure(family: str, depth: int, width: float, in_channels: int, num_classes: int,
            real_limit: int) -> dict[str, object]:
    """Counts and build times of one shape (``real`` is ``None`` above ``real_limit``)."""
    fam = get_family(family)
    analytic_s, analytic = _timed(lambda: fam.count(depth, width, in_channels, num_classes), 5)
    small = analytic < 10_000_000
    meta_s, meta = _timed(lambda: meta_param_count(fam.build, depth, width, in_channels,
                                                   num_classes), 5 if small else 3)
    real = real_s = None
    if analytic <= real_limit:
        def build() -> int:
            torch.manual_seed(0)
            model = fam.build(depth, width, in_channels, num_classes)
            return sum(p.numel() for p in model.parameters())

        real_s, real = _timed(build, 3 if small else 1)
    return {"family": family, "shape": (depth, width), "inputs": (in_channels, num_classes),
            "analytic": analytic, "analytic_s": analytic_s, "meta": meta, "meta_s": meta_s,
            "real": real, "real_s": real_s}


def report(rows: list[dict[str, object]], command: str, real_limit: int, took: float) -> str:
    lines = [
        "# Parameter counts of the built-in families: analytic, meta device, real build",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_info()}, torch {torch.__version__}; shared machine, so times carry "
        "tens of percent of noise  ",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; took {took:.0f} s.",
        "",
        "*analytic*: the family's formula (no torch); *meta*: parameters of the model built on "
        "PyTorch's meta device (no weight memory; what a family registered from a build "
        f"function alone is sized with); *real*: an ordinary CPU build (only up to "
        f"{real_limit:,} parameters). Times: median of 5 (meta) / 3 (real) builds below 10 M "
        "parameters, of 3 meta builds / one real build above; the real build includes weight "
        "initialisation. Below about a million parameters the meta device's fixed cost (its "
        "device context) makes it no faster than a real build; its gain grows with the size.",
        "",
        "| family | depth | width | in, classes | parameters (analytic) | meta equal | "
        "real equal | analytic ms | meta ms | real ms | real / meta |",
        "|---|---:|---:|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        depth, width = r["shape"]  # type: ignore[misc]
        cin, ncls = r["inputs"]  # type: ignore[misc]
        real_eq = "—" if r["real"] is None else ("yes" if r["real"] == r["analytic"] else
                                                  f"**NO** ({r['real']:,})")
        meta_eq = "yes" if r["meta"] == r["analytic"] else f"**NO** ({r['meta']:,})"
        real_ms = "—" if r["real_s"] is None else f"{1000 * r['real_s']:.1f}"  # type: ignore[operator]
        ratio = "—" if r["real_s"] is None else f"{r['real_s'] / r['meta_s']:.2g}×"  # type: ignore[operator]
        lines.append(
            f"| {r['family']} | {depth} | {width:g} | {cin}, {ncls} | {r['analytic']:,} | "
            f"{meta_eq} | {real_eq} | {1000 * r['analytic_s']:.3f} | "  # type: ignore[operator]
            f"{1000 * r['meta_s']:.1f} | {real_ms} | {ratio} |"  # type: ignore[operator]
        )
    big = [r for r in rows if r["analytic"] >= 1_000_000_000]  # type: ignore[operator]
    if big:
        worst = max(r["meta_s"] for r in big)  # type: ignore[type-var]
        lines += ["", f"Shapes of at least 1 billion parameters: {len(big)}, each counted on the "
                      f"meta device in at most {1000 * worst:.0f} ms (no weight memory)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="three tiny shapes (smoke test)")
    parser.add_argument("--real-limit", type=int, default=300_000_000,
                        help="largest shape (parameters) also built for real (default 300 M)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the report")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = [measure(*shape, real_limit=args.real_limit)
            for shape in (QUICK if args.quick else GRID)]
    command = "PYTHONPATH=. python benchmarks/family_sizes.py" + (" --quick" if args.quick else "")
    if args.real_limit != 300_000_000:
        command += f" --real-limit {args.real_limit}"
    text = report(rows, command, args.real_limit, time.perf_counter() - start)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "family_sizes.md").write_text(text)
    print(text)
    bad = [r for r in rows if r["meta"] != r["analytic"]
           or (r["real"] is not None and r["real"] != r["analytic"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
