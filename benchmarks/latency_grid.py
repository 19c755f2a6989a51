"""Latency of wide-ResNet shapes versus depth, width and batch size on one device.

Measures every (depth, width, batch) combination with
:func:`optuna_shape.measurement.measure_latency`
(eval mode, ``torch.inference_mode``, warm-up, median of repeated runs) and writes
``benchmarks/results/latency_grid_<device>_<input>.csv`` and ``.md``. Shapes that do not fit in
memory are recorded as ``too large`` rather than stopping the run.

Usage::

    .venv/bin/python benchmarks/latency_grid.py                        # 8x8 digits, CPU
    .venv/bin/python benchmarks/latency_grid.py --input-size 32 --channels 3 \\
        --depths 10 16 22 28 --widths 1 2 4 --batches 1 128 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from optuna_shape.families.wrn import WideResNet
from optuna_shape.measurement import (
    ShapeTooLargeError,
    hardware_key,
    measure_latency,
    resolve_device,
)

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = [
    "depth",
    "width",
    "batch",
    "params",
    "median_ms",
    "iqr_ms",
    "min_ms",
    "max_ms",
    "runs",
    "threads",
    "device",
    "device_name",
    "status",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 16, 22, 28])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--input-size", type=int, default=8, help="height = width of the input")
    parser.add_argument("--channels", type=int, default=1, help="input channels")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's count")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    """Measure the grid; one row per (depth, width, batch)."""
    torch.manual_seed(0)
    dev = resolve_device(args.device)
    rows: list[dict[str, object]] = []
    for depth in args.depths:
        for width in args.widths:
            model = WideResNet(depth, width, args.channels, args.classes)
            params = sum(p.numel() for p in model.parameters())
            for batch in args.batches:
                shape = (batch, args.channels, args.input_size, args.input_size)
                row: dict[str, object] = {
                    "depth": depth,
                    "width": width,
                    "batch": batch,
                    "params": params,
                    "device": str(dev),
                }
                try:
                    r = measure_latency(
                        model,
                        shape,
                        dev,
                        warmup=args.warmup,
                        repeats=args.repeats,
                        threads=args.threads,
                    )
                except ShapeTooLargeError as exc:
                    row["status"] = f"too large: {exc}"
                else:
                    row.update(
                        median_ms=round(r.median_ms, 4),
                        iqr_ms=round(r.iqr_ms, 4),
                        min_ms=round(r.min_ms, 4),
                        max_ms=round(r.max_ms, 4),
                        runs=r.runs,
                        threads=r.threads,
                        device_name=r.device_name,
                        status="ok",
                    )
                rows.append(row)
                print(
                    f"depth={depth:3d} width={width:5g} batch={batch:4d} params={params:>10,d} "
                    f"median={row.get('median_ms', '-')} ms iqr={row.get('iqr_ms', '-')} ms",
                    flush=True,
                )
    return rows


def write(rows: list[dict[str, object]], args: argparse.Namespace, elapsed_s: float) -> Path:
    """Write the CSV and the markdown table; returns the CSV path."""
    args.out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(args.device)
    stem = f"latency_grid_{dev.type}_{args.input_size}x{args.input_size}"
    csv_path = args.out / f"{stem}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    key = hardware_key(dev, args.threads, batch_size=1).rsplit("|batch=", 1)[0]
    lines = [
        f"# Latency grid ({args.input_size}x{args.input_size}x{args.channels} input, "
        f"{args.classes} classes)",
        "",
        f"Hardware: `{key}` (batch varies per row). Warm-up {args.warmup}, median of "
        f"{args.repeats} runs, eval mode under `torch.inference_mode()`. "
        f"Took {elapsed_s:.0f} s. Written by `benchmarks/latency_grid.py`.",
        "",
        "| depth | width | batch | params | median ms | IQR ms | min ms | max ms | ms / sample |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.get("status") != "ok":
            lines.append(
                f"| {row['depth']} | {row['width']:g} | {row['batch']} | {row['params']:,} "
                f"| too large | | | | |"
            )
            continue
        per_sample = float(row["median_ms"]) / int(row["batch"])
        lines.append(
            f"| {row['depth']} | {row['width']:g} | {row['batch']} | {row['params']:,} "
            f"| {row['median_ms']:.3f} | {row['iqr_ms']:.3f} | {row['min_ms']:.3f} "
            f"| {row['max_ms']:.3f} | {per_sample:.4f} |"
        )
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    rows = run(args)
    path = write(rows, args, time.perf_counter() - start)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
