"""``python -m optuna_shape`` runs the ``optuna-shape`` command line."""

import sys

from optuna_shape.cli import main

if __name__ == "__main__":
    sys.exit(main())
