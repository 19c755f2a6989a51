"""Quick start: find the most accurate wide ResNet under 0.5 MB on the bundled digits data.

Runs on the CPU in about a minute or two::

    python examples/quickstart_digits.py

Environment variables shrink it further (used by the tests): ``OSH_EPOCHS`` (default 3),
``OSH_SUBSET`` (cap every split, default: all data), ``OSH_MAX_TRAININGS`` (default: a third of
the feasible shapes).
"""

from __future__ import annotations

import os

import optuna

import optuna_shape as osh
from optuna_shape.training import TrainConfig, make_objective


def main() -> osh.Shape | None:
    """Run the search and print the chosen shape and the complying shapes."""
    epochs = int(os.environ.get("OSH_EPOCHS", "3"))
    subset = int(os.environ["OSH_SUBSET"]) if os.environ.get("OSH_SUBSET") else None
    budget = os.environ.get("OSH_MAX_TRAININGS")
    max_trainings = int(budget) if budget else None

    # 8x8 grey images, 10 classes: 4 depths x 8 widths = 32 shapes
    space = osh.ShapeSpace("wrn", depth=(10, 28, 6), width=(0.25, 2.0, 0.25),
                           in_channels=1, num_classes=10, image_size=8)
    constraints = osh.Constraints(max_size_mb=0.5)        # accuracy is in percent
    policy = osh.Adaptive(max_trainings=max_trainings)   # osh.Paper(): Algorithm 1
    sampler = osh.ShapeSampler(space, constraints, goal="accuracy", policy=policy, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    # the default trainer; any objective that calls osh.suggest_shape(trial, space) works
    objective = make_objective(space, "digits", config=TrainConfig(epochs=epochs),
                               subset=subset)
    osh.optimize(study, objective)      # ends by itself: confident, or max_trainings reached

    best = osh.best_shape(study)
    summary = osh.search_summary(study)
    print(f"chosen shape: {best} ({summary.reason})")
    print(f"{summary.trainings} trainings for {summary.n_feasible} feasible shapes")
    for row in osh.result_table(study)[:5]:
        real = "—" if row.real is None else f"{row.real:.2f}"
        print(f"  #{row.rank} {row.shape}  predicted {row.predicted:.2f} ± {row.std:.2f}  "
              f"real {real}  {row.size_mb:.3f} MB")
    return best


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
