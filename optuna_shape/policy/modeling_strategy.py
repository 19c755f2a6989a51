"""How many shapes to train, and which: modeling strategies and sampling methods (paper §4.2–4.3).

Everything here is a pure function of the feasible shapes, so every worker of a study computes
the same plan.

Modeling strategies. The paper trains a share of the feasible shapes that falls as the space
grows ("time ... reduced up to 3, 4, or 5 times" for thorough, standard, optimistic) and never
fewer than the 10–26 shapes its Table 1 found necessary. We use a constant share per strategy
(1/3, 1/4, 1/5) with a minimum count (12, 10, 8), so the share is higher for small spaces and
falls to the strategy's share for large ones; a maximum count (60, 45, 30) keeps the share falling
in very large spaces, where more trainings no longer improve a 10-coefficient model.
Data points (paper → ours): thorough 33 % of 135 → 45 (33 %); standard 25 % of 180 → 45
(25 %); standard 33 % of 45 → 12 (27 %: our regularised accuracy model needs fewer); optimistic
20 % of 119 → 24 (20 %). In small spaces at most 40 % of the shapes are planned, so that
verification still leaves a saving.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

from optuna_shape.space.shape import Shape

__all__ = [
    "STRATEGIES",
    "SAMPLINGS",
    "planned_count",
    "paper_order",
    "interval_sample",
    "random_sample",
    "wider_sample",
    "choose_shapes",
]

Strategy = Literal["thorough", "standard", "optimistic"]
Sampling = Literal["interval", "random", "wider"]

STRATEGIES: dict[str, tuple[float, int, int]] = {
    "thorough": (1 / 3, 12, 60),
    "standard": (1 / 4, 10, 45),
    "optimistic": (1 / 5, 8, 30),
}
"""strategy -> (share of the feasible shapes, minimum and maximum number of shapes)."""
SAMPLINGS: tuple[str, ...] = ("interval", "random", "wider")
SMALL_SPACE_CAP = 0.4


def planned_count(n_feasible: int, strategy: str | int = "standard") -> int:
    """Number of shapes to train before modelling, for ``n_feasible`` feasible shapes.

    ``strategy`` is a strategy name or an explicit count (capped at ``n_feasible``).

    Example:
        >>> planned_count(180, "standard"), planned_count(119, "optimistic")
        (45, 24)

    Raises:
        ValueError: for an unknown strategy name or a count < 1.
    """
    if n_feasible < 0:
        raise ValueError(f"n_feasible must be >= 0, got {n_feasible!r}")
    if n_feasible == 0:
        return 0
    if isinstance(strategy, int) and not isinstance(strategy, bool):
        if strategy < 1:
            raise ValueError(f"number of shapes to train must be >= 1, got {strategy!r}")
        return min(strategy, n_feasible)
    if strategy not in STRATEGIES:
        raise ValueError(
            f"modeling strategy must be one of {', '.join(STRATEGIES)} or a positive int, "
            f"got {strategy!r}"
        )
    share, minimum, maximum = STRATEGIES[strategy]
    n = min(maximum, max(minimum, math.ceil(share * n_feasible)))
    cap = max(math.ceil(SMALL_SPACE_CAP * n_feasible), min(n_feasible, 6))
    return min(n, cap, n_feasible)


def paper_order(shapes: Sequence[Shape]) -> list[Shape]:
    """Shapes ordered lexicographically by width, then depth (the paper's sampling order)."""
    return sorted(shapes, key=lambda s: (s.width, s.depth))


def interval_sample(shapes: Sequence[Shape], m: int) -> list[Shape]:
    """``m`` evenly spaced picks from ``shapes`` in paper order, first and last included.

    Example:
        >>> ss = [Shape(d, w) for w in (1.0, 2.0) for d in (10, 16, 22)]
        >>> interval_sample(ss, 3)
        [Shape(depth=10, width=1.0), Shape(depth=22, width=1.0), Shape(depth=22, width=2.0)]
    """
    ordered = paper_order(shapes)
    n = len(ordered)
    m = min(max(m, 0), n)
    if m == 0:
        return []
    if m == 1:
        return [ordered[n // 2]]
    picks = sorted({round(i * (n - 1) / (m - 1)) for i in range(m)})
    chosen = [ordered[i] for i in picks]
    return _break_diagonal(chosen, ordered)


def _break_diagonal(chosen: list[Shape], ordered: list[Shape]) -> list[Shape]:
    """Avoid picks where depth and width move together (e.g. 8 picks from a 5-depth × 8-width
    grid land on one diagonal, (10, w1), (16, w2), …): the accuracy model then cannot tell depth
    from width. When their ranks correlate strongly, every other pick takes the mirrored depth of
    its width (same widths, spread depths)."""
    if len(chosen) < 4:
        return chosen
    depths = sorted({s.depth for s in ordered})
    widths = sorted({s.width for s in ordered})
    di = [depths.index(s.depth) for s in chosen]
    wi = [widths.index(s.width) for s in chosen]
    if len(set(di)) < 2 or len(set(wi)) < 2:
        return chosen
    mdi, mwi = sum(di) / len(di), sum(wi) / len(wi)
    cov = sum((a - mdi) * (b - mwi) for a, b in zip(di, wi, strict=True))
    var_d = sum((a - mdi) ** 2 for a in di)
    var_w = sum((b - mwi) ** 2 for b in wi)
    if abs(cov) / math.sqrt(var_d * var_w) <= 0.9:
        return chosen
    available = set(ordered)
    taken = set(chosen)
    out = list(chosen)
    for k in range(1, len(out), 2):
        s = out[k]
        mirrored = Shape(depths[len(depths) - 1 - depths.index(s.depth)], s.width)
        if mirrored in available and mirrored not in taken:
            taken.discard(s)
            taken.add(mirrored)
            out[k] = mirrored
    return paper_order(out)


def random_sample(shapes: Sequence[Shape], m: int, seed: int | None = 0) -> list[Shape]:
    """``m`` shapes drawn uniformly without replacement (seeded), returned in paper order."""
    ordered = paper_order(shapes)
    m = min(max(m, 0), len(ordered))
    return paper_order(random.Random(seed).sample(ordered, m))


def wider_sample(shapes: Sequence[Shape], m: int) -> list[Shape]:
    """The first ``m`` shapes in paper order (the paper's "wider-shape sampling")."""
    return paper_order(shapes)[: max(m, 0)]


def choose_shapes(
    shapes: Sequence[Shape], strategy: str | int = "standard", sampling: str = "interval",
    seed: int | None = 0,
) -> list[Shape]:
    """The shapes to train: :func:`planned_count` of them picked by ``sampling``.

    Raises:
        ValueError: for an unknown sampling method.
    """
    m = planned_count(len(shapes), strategy)
    if sampling == "interval":
        return interval_sample(shapes, m)
    if sampling == "random":
        return random_sample(shapes, m, seed)
    if sampling == "wider":
        return wider_sample(shapes, m)
    raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
