"""Latency of wide-ResNet shapes versus depth, width and batch size on one device.

Measures every (depth, width, batch) combination with
:func:`optuna_shape.measurement.measure_latency`
(eval mode, ``torch.inference_mode``, warm-up, median of repeated runs) and writes
``benchmarks/results/latency_grid_<device>_<input>.csv`` and ``.md``. Shapes that do not fit in
memory are recorded as ``too large`` rather than stopping the run.

Defaults: the landscape grid of ``benchmarks/landscapes.py`` (depth 10-34 step 6, width
0.25-2.0 step 0.25, 40 shapes) at batch 1, 8, 32 and 128 on the CPU with one thread (paper
Fig. 3). Also writes a plotly figure (``.html``, plotly.js from the CDN, so the file stays small)
and a summary of latency ratios against depth, width and batch.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/latency_grid.py           # 8x8 digits, CPU, 1 thread
    PYTHONPATH=. .venv/bin/python benchmarks/latency_grid.py --quick   # 2 depths x 2 widths
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
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 16, 22, 28, 34])
    parser.add_argument("--widths", type=float, nargs="+",
                        default=[0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--input-size", type=int, default=8, help="height = width of the input")
    parser.add_argument("--channels", type=int, default=1, help="input channels")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true",
                        help="depths 10 22, widths 0.5 1, batches 1 128, 5 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.depths, args.widths, args.batches, args.repeats = [10, 22], [0.5, 1.0], [1, 128], 5
    return args


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
        f"Command: `PYTHONPATH=. python benchmarks/latency_grid.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {machine()}  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Hardware: `{key}` (batch varies per row). Warm-up {args.warmup}, median of "
        f"{args.repeats} runs, eval mode under `torch.inference_mode()`. "
        f"Took {elapsed_s:.0f} s. Written by `benchmarks/latency_grid.py`. The machine is shared "
        "(2 cores, other jobs running), so single values can be a few per cent off; ratios "
        "below are from this one run.",
        "",
        *summary(rows),
        "",
        "## All measurements",
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
    plot(rows, args.out / f"{stem}.html")
    print("\n".join(summary(rows)))
    return csv_path


def machine() -> str:
    """nproc, CPU model and torch version, for the result headers."""
    import os
    import platform

    from optuna_shape.measurement.hardware import device_name

    return (f"{os.cpu_count()} CPUs ({device_name('cpu')}), {platform.system()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def _ms(rows: list[dict[str, object]]) -> dict[tuple[int, float, int], float]:
    return {(int(r["depth"]), float(r["width"]), int(r["batch"])): float(r["median_ms"])
            for r in rows if r.get("status") == "ok"}


def summary(rows: list[dict[str, object]]) -> list[str]:
    """Ratios of latency against depth, width and batch (paper Fig. 3), as markdown lines."""
    ms = _ms(rows)
    if not ms:
        return []
    depths = sorted({k[0] for k in ms})
    widths = sorted({k[1] for k in ms})
    batches = sorted({k[2] for k in ms})
    d0, d1, w0, w1 = depths[0], depths[-1], widths[0], widths[-1]
    lines = ["## Summary (ratios of median latencies, same run)", "",
             f"| batch | depth {d1} / {d0} at width {w1:g} | depth {d1} / {d0} at width {w0:g} "
             f"| width {w1:g} / {w0:g} at depth {d1} | width {w1:g} / {w0:g} at depth {d0} "
             f"| ms per sample, ({d1}, {w1:g}) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for b in batches:
        def r(a: tuple[int, float], c: tuple[int, float], b: int = b) -> str:
            x, y = ms.get((*a, b)), ms.get((*c, b))
            return f"{x / y:.2f}x" if x and y else "-"
        big = ms.get((d1, w1, b))
        lines.append(f"| {b} | {r((d1, w1), (d0, w1))} | {r((d1, w0), (d0, w0))} "
                     f"| {r((d1, w1), (d1, w0))} | {r((d0, w1), (d0, w0))} "
                     f"| {big / b if big else float('nan'):.3f} |")
    lines += ["", "Latency grows about linearly with depth; with width it grows slowly at batch 1 "
              "(per-layer overhead dominates tiny 8x8 inputs) and roughly quadratically at large "
              "batch, where the convolutions' arithmetic dominates."]
    return lines


def plot(rows: list[dict[str, object]], path: Path) -> None:
    """Latency vs width, one line per depth, one panel per batch size (plotly HTML)."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:  # pragma: no cover
        return
    ms = _ms(rows)
    if not ms:
        return
    batches = sorted({k[2] for k in ms})
    fig = make_subplots(rows=1, cols=len(batches), subplot_titles=[f"batch {b}" for b in batches])
    for j, b in enumerate(batches, 1):
        for d in sorted({k[0] for k in ms}):
            pts = sorted((w, v) for (dd, w, bb), v in ms.items() if dd == d and bb == b)
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                                     mode="lines+markers", name=f"depth {d}",
                                     legendgroup=str(d), showlegend=j == 1), row=1, col=j)
        fig.update_xaxes(title_text="width", row=1, col=j)
    fig.update_yaxes(title_text="median latency (ms)", row=1, col=1)
    fig.update_layout(title="WRN latency on this CPU (1 thread) vs depth, width, batch")
    fig.write_html(path, include_plotlyjs="cdn")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    rows = run(args)
    path = write(rows, args, time.perf_counter() - start)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
