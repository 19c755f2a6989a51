"""Size, CPU latency and accuracy of trained wide-ResNet shapes in fp32, bf16 and int8.

Every shape is trained once on digits (fp32, the default recipe, seed 0); the trained network is
then converted to each precision after training (:func:`optuna_shape.measurement.precision.convert`:
bf16 cast; int8 static post-training quantisation calibrated on 4 training batches) and

* its size is the analytic one of the design space (parameters × bits / 8) next to the bytes of
  its saved ``state_dict`` (``torch.save``),
* its latency is measured with :func:`optuna_shape.measurement.measure_latency` on the CPU with
  one thread at each batch size; the three precisions of a shape are timed back to back, in
  rounds whose order rotates, and the median over rounds is kept,
* its accuracy is scored on the validation and test splits
  (:func:`optuna_shape.training.evaluate_precisions`).

Usage::

    PYTHONPATH=. python benchmarks/precision.py              # 6 shapes, 6 epochs, batch 1 and 32
    PYTHONPATH=. python benchmarks/precision.py --widths 0.5 1   # the committed table (4 shapes)
    PYTHONPATH=. python benchmarks/precision.py --quick      # 1 shape, 1 epoch (smoke test)
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch

import optuna_shape as osh
from optuna_shape.measurement import measure_latency
from optuna_shape.measurement.hardware import device_name
from optuna_shape.measurement.precision import convert
from optuna_shape.space.precision import PRECISIONS
from optuna_shape.training import (
    TrainConfig,
    calibration_batches,
    evaluate_precisions,
    load_dataset,
    train,
)

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 16])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rotating rounds per shape/batch")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="1 shape, 1 epoch, batch 1")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.depths, args.widths, args.epochs = [10], [0.25], 1
        args.batches, args.repeats, args.rounds = [1], 3, 1
    return args


def saved_mb(model: torch.nn.Module) -> float:
    """Bytes of ``torch.save(model.state_dict())`` / 10⁶."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def latencies(models: dict[str, torch.nn.Module], space: osh.ShapeSpace, batch: int,
              repeats: int, rounds: int) -> dict[str, float]:
    """Median latency (ms) per precision, timed back to back in rotating rounds."""
    names = list(models)
    runs: dict[str, list[float]] = {p: [] for p in names}
    for r in range(rounds):
        for p in names[r % len(names):] + names[: r % len(names)]:
            result = measure_latency(models[p], space.input_shape(batch), "cpu", warmup=3,
                                     repeats=repeats, threads=1)
            runs[p].append(result.median_ms)
    return {p: sorted(v)[len(v) // 2] for p, v in runs.items()}


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    splits = load_dataset("digits")
    space = osh.ShapeSpace("wrn", depth=args.depths, width=args.widths, in_channels=1,
                           num_classes=10, image_size=8, precision=PRECISIONS)
    config = TrainConfig(epochs=args.epochs, seed=0)
    rows: list[dict[str, object]] = []
    for shape in space.shapes:
        torch.manual_seed(config.seed)
        model = space.build(shape)
        start = time.perf_counter()
        train(model, splits, config)
        train_s = time.perf_counter() - start
        scores = evaluate_precisions(model, splits, PRECISIONS, config)
        calibration = calibration_batches(splits.train, config)
        models = {p: convert(model, p, calibration) for p in PRECISIONS}
        lat = {b: latencies(models, space, b, args.repeats, args.rounds) for b in args.batches}
        for p in PRECISIONS:
            rows.append({
                "shape": str(shape), "params": space.param_count(shape), "precision": p,
                "size_mb": space.size_mb(shape, p), "saved_mb": saved_mb(models[p]),
                "val": scores["val"][p], "test": scores["test"][p],
                **{f"ms_b{b}": lat[b][p] for b in args.batches},
                "train_s": train_s,
            })
        print(f"{shape}: " + ", ".join(
            f"{p} val {scores['val'][p]:.1f} b1 {lat[args.batches[0]][p]:.3f} ms"
            for p in PRECISIONS), flush=True)
    return rows


def write(rows: list[dict[str, object]], args: argparse.Namespace, seconds: float) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("precision_quick.md" if args.quick else "precision.md")
    shown = [a for i, a in enumerate(args.argv)
             if a != "--out" and (i == 0 or args.argv[i - 1] != "--out")]
    command = " ".join(["PYTHONPATH=. python benchmarks/precision.py", *shown])
    import platform

    batch_cols = " | ".join(f"ms b{b} | × fp32 b{b}" for b in args.batches)
    lines = [
        "# Precision: size, CPU latency and accuracy of trained WRN shapes (digits)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {device_name('cpu')}, torch {torch.__version__}, Python "
        f"{platform.python_version()}, quantised engine `{torch.backends.quantized.engine}`; "
        f"latency on the CPU with 1 thread; {args.epochs} epochs per shape (seed 0); "
        f"{args.rounds} rotating rounds × {args.repeats} timed runs per latency. Took "
        f"{seconds:.0f} s. The machine was shared (2 cores, other jobs running): single "
        "latencies carry noise; the three precisions of a shape were timed back to back.",
        "",
        "Size MB = parameters × bits / 8 / 10⁶ (what the search uses); saved MB = bytes of "
        "`torch.save(state_dict)` of the converted network (int8 adds per-channel scales and "
        "keeps biases and the batch norms that could not be folded in float32). Accuracy in "
        "percent; Δ = converted − fp32 on the same trained weights.",
        "",
        f"| shape | params | precision | size MB | saved MB | val % | Δ val | test % | Δ test "
        f"| {batch_cols} |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(args.batches),
    ]
    base = {r["shape"]: r for r in rows if r["precision"] == "fp32"}
    for r in rows:
        b = base[r["shape"]]
        cells = " | ".join(
            f"{r[f'ms_b{n}']:.3f} | {r[f'ms_b{n}'] / b[f'ms_b{n}']:.2f}x" for n in args.batches)
        lines.append(
            f"| {r['shape']} | {r['params']:,} | {r['precision']} | {r['size_mb']:.4f} "
            f"| {r['saved_mb']:.4f} | {r['val']:.2f} | {r['val'] - b['val']:+.2f} "
            f"| {r['test']:.2f} | {r['test'] - b['test']:+.2f} | {cells} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    rows = run(args)
    path = write(rows, args, time.perf_counter() - start)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
