"""CIFAR-10 on an NVIDIA GPU: the most accurate wide ResNet under 10 MB and 5 ms per image.

Not run in CI (it trains for hours). Needs the CIFAR-10 python batches under ``./data`` (or
``download=True`` with internet access) and a CUDA GPU::

    python examples/cifar10_gpu.py

The same search from the command line, shareable by several workers through PostgreSQL::

    optuna-shape search --dataset cifar10 --download --device cuda \\
        --depth 10:40:6 --width 1:8:1 --max-size-mb 10 --max-latency-ms 5 \\
        --epochs 30 --storage postgresql://user:pw@host/db --study-name cifar10-wrn

Design space: depth 10, 16, …, 40 × width 1 … 8 (48 shapes). Latency is measured on the GPU at
batch size 1 before any training; shapes over the limits are never trained. The default
adaptive search trains 5 spread shapes, then one shape at a time where the posterior expects the
most improvement, and stops when it is 90 % sure of the answer, or after trainings for a third of
the feasible shapes.
"""

from __future__ import annotations

import optuna

import optuna_shape as osh
from optuna_shape.training import TrainConfig, make_objective

STORAGE = "sqlite:///cifar10-shape.db"  # shared by every worker on this machine


def main() -> None:
    """Run (or resume, or join) the CIFAR-10 search and print the answer."""
    space = osh.ShapeSpace("wrn", depth=(10, 40, 6), width=(1, 8, 1), in_channels=3,
                           num_classes=10, image_size=32)
    constraints = osh.Constraints(max_size_mb=10.0, max_latency_ms=5.0)
    sampler = osh.ShapeSampler(space, constraints, goal="accuracy", seed=0,
                               measurement=osh.MeasurementSettings(device="cuda", batch_size=1))
    storage = optuna.storages.RDBStorage(STORAGE, heartbeat_interval=10, grace_period=30)
    study = optuna.create_study(study_name="cifar10-wrn", storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    # 30 epochs keep the search to hours; the paper trained 200 (TrainConfig(epochs=None)).
    config = TrainConfig(epochs=30, device="cuda", amp=True)
    objective = make_objective(space, "cifar10", config=config, data_dir="./data",
                               download=False)
    if not osh.is_finished(study):
        osh.optimize(study, objective)  # carries on if this worker was paused past the grace
    for row in osh.result_table(study)[:10]:
        print(row)
    print("chosen:", osh.best_shape(study))
    from optuna_shape.reporting import attach_to_dashboard

    attach_to_dashboard(study)
    print(f"optuna-dashboard {STORAGE}")


if __name__ == "__main__":
    main()
