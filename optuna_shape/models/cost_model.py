"""Predicted hardware cost: screen a large grid by measuring a designed subset and predicting the
rest, measuring for real every shape whose prediction is within its uncertainty of a limit.

Pure numpy; the caller supplies a ``measure(index) -> value | None`` function.

Features (:func:`shape_features`, the one place they are made): log parameters, log MACs (the
parameter count when MACs are unknown), log depth, log width, and ``log2 bits`` when a precision
is given (a grid with one precision has a constant column, which is dropped). Columns are
standardised over the grid.

Model (:class:`CostModel`): Bayesian ridge regression of the *log* cost on the features
(linear terms; all quadratic terms and pairwise products once at least twice as many shapes are
measured as there are quadratic terms). Prior ``β ~ N(0, σ²/λ)`` on every coefficient but the
intercept, ``λ = 1e-3`` (standardised features), noise ``σ²`` = residual sum of squares over the
residual degrees of freedom ``n - tr(H)``. Predictive std of a new log cost:
``σ · sqrt(1 + xᵀ(XᵀX + λI)⁻¹x)``, multiplied by a *calibration* factor ``c ≥ 1`` from the
held-out (leave-one-out, closed form ``eᵢ / (1 - hᵢᵢ)``) residuals of the measured shapes: ``c``
makes the 90th percentile of the LOO residuals in std units equal to the normal 90th percentile
(1.645), so a model whose errors have heavier tails than it believes gets wider intervals.

Decision (:func:`side_of_limit`): with ``z`` (default 3: a one-sided miss probability of 0.13 %
per shape under the calibrated Gaussian), a shape is *within* a limit when
``exp(mean + z·sd) ≤ limit``, *over* when ``exp(mean - z·sd) > limit``, *undecided* otherwise.

Sequential screening (:func:`screen_costs`): measure a space-filling design of ``n0`` shapes
(:func:`initial_size`, :func:`maximin_design`); then repeatedly fit, measure the undecided shapes
with the widest intervals (up to 8 at a time) and refit, until no shape is undecided. Without a
limit (a min-cost goal only) the design is measured and every other cost is predicted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Z_DEFAULT",
    "RIDGE",
    "BATCH",
    "shape_features",
    "initial_size",
    "maximin_design",
    "CostModel",
    "fit_cost_model",
    "side_of_limit",
    "CostScreen",
    "screen_costs",
]

Z_DEFAULT = 3.0
"""Interval half-width in predictive stds (one-sided miss probability 0.13 %)."""
RIDGE = 1e-3
"""Prior precision ratio λ of the coefficients (standardised features)."""
BATCH = 8
"""Most undecided shapes measured between two refits."""
_CAL_QUANTILE, _CAL_Z = 0.9, 1.6448536269514722


def shape_features(
    params: Sequence[float],
    macs: Sequence[float | None],
    depths: Sequence[float],
    widths: Sequence[float],
    bits: Sequence[float] | None = None,
) -> np.ndarray:
    """Feature matrix ``(n, k)`` of shapes: log params, log MACs, log depth, log width and, when
    given, log2 bits (a precision axis). A missing MAC count is replaced by the parameter count.
    Constant columns are dropped; the others are standardised over the given shapes."""
    p = np.asarray(params, dtype=float)
    m = np.array([pp if mm is None else mm for pp, mm in zip(p, macs, strict=True)],
                 dtype=float)
    cols = [np.log(np.maximum(p, 1.0)), np.log(np.maximum(m, 1.0)),
            np.log(np.asarray(depths, dtype=float)), np.log(np.asarray(widths, dtype=float))]
    if bits is not None:
        cols.append(np.log2(np.asarray(bits, dtype=float)))
    x = np.column_stack(cols)
    sd = x.std(axis=0)
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0))
    x = x[:, keep]
    return (x - x.mean(axis=0)) / sd[keep]


def initial_size(n_shapes: int, n_features: int) -> int:
    """Shapes of the initial design: ``max(3·(k + 1), ⌈2·√N⌉)``, at most ``N`` (all of a small
    grid). With 4 features: 15 shapes up to N = 56, 91 of 2,040."""
    return min(n_shapes, max(3 * (n_features + 1), math.ceil(2 * math.sqrt(n_shapes))))


def maximin_design(x: np.ndarray, n: int) -> list[int]:
    """``n`` row indices of ``x`` spread over its range: the two ends of the first principal
    direction (e.g. the cheapest and the most expensive shape), then greedily the row farthest
    from every chosen one (farthest-point / maximin design). Deterministic."""
    total = x.shape[0]
    if n >= total:
        return list(range(total))
    if n <= 0:
        return []
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[0]
    chosen = [int(np.argmin(proj))]
    if n > 1:
        chosen.append(int(np.argmax(proj)))
    dist = np.min(np.stack([((x - x[i]) ** 2).sum(axis=1) for i in chosen]), axis=0)
    while len(chosen) < n:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((x - x[i]) ** 2).sum(axis=1))
    return chosen


def _basis(x: np.ndarray, quadratic: bool) -> np.ndarray:
    cols = [np.ones((x.shape[0], 1)), x]
    if quadratic:
        k = x.shape[1]
        cols += [(x[:, i] * x[:, j])[:, None] for i in range(k) for j in range(i, k)]
    return np.hstack(cols)


def _n_quadratic(k: int) -> int:
    return 1 + k + k * (k + 1) // 2


@dataclass(frozen=True)
class CostModel:
    """A fitted log-cost model (see the module docstring).

    Attributes:
        quadratic: whether quadratic terms are used.
        coef: coefficients of the basis.
        a_inv: ``(XᵀX + λI)⁻¹`` of the basis.
        sigma: residual std of log cost.
        calibration: factor ``c ≥ 1`` applied to predictive stds.
        loo_log_errors: held-out (leave-one-out) errors of the measured shapes' log costs.
        loo_z: those errors in calibrated predictive stds.
    """

    quadratic: bool
    coef: np.ndarray
    a_inv: np.ndarray
    sigma: float
    calibration: float
    loo_log_errors: np.ndarray = field(repr=False)
    loo_z: np.ndarray = field(repr=False)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and (calibrated) std of the log cost at feature rows ``x``."""
        b = _basis(np.atleast_2d(x), self.quadratic)
        mean = b @ self.coef
        var = 1.0 + np.einsum("ij,jk,ik->i", b, self.a_inv, b)
        return mean, self.calibration * self.sigma * np.sqrt(var)

    def heldout_relative_errors(self) -> np.ndarray:
        """|measured / leave-one-out prediction − 1| of the measured shapes."""
        return np.abs(np.expm1(self.loo_log_errors))

    def heldout_coverage(self, z: float) -> float:
        """Fraction of measured shapes whose leave-one-out interval ``mean ± z·sd`` holds the
        measurement."""
        return float(np.mean(np.abs(self.loo_z) <= z)) if self.loo_z.size else float("nan")


def fit_cost_model(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> CostModel:
    """Fit :class:`CostModel` on feature rows ``x`` and log costs ``y`` (at least 3 rows).

    Raises:
        ValueError: fewer than 3 rows, or non-finite costs.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    if len(y) < 3 or x.shape[0] != len(y):
        raise ValueError(f"a cost model needs at least 3 measured shapes, got {len(y)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("measured log costs must be finite")
    quadratic = len(y) >= 2 * _n_quadratic(x.shape[1])
    b = _basis(x, quadratic)
    penalty = np.full(b.shape[1], ridge * len(y))
    penalty[0] = 1e-9
    a_inv = np.linalg.inv(b.T @ b + np.diag(penalty))
    coef = a_inv @ b.T @ y
    h = np.einsum("ij,jk,ik->i", b, a_inv, b)
    resid = y - b @ coef
    dof = max(len(y) - float(h.sum()), 1.0)
    sigma = max(math.sqrt(float(resid @ resid) / dof), 1e-6)
    one_minus_h = np.maximum(1.0 - h, 1e-9)
    loo = resid / one_minus_h
    z_loo = loo / (sigma * np.sqrt(1.0 + h / one_minus_h))
    q = float(np.quantile(np.abs(z_loo), _CAL_QUANTILE))
    calibration = max(1.0, q / _CAL_Z)
    return CostModel(quadratic, coef, a_inv, sigma, calibration, loo, z_loo / calibration)


def side_of_limit(mean: np.ndarray, sd: np.ndarray, limit: float, z: float = Z_DEFAULT
                  ) -> np.ndarray:
    """Per shape ``+1`` clearly over ``limit`` (lower bound above it), ``-1`` clearly within
    (upper bound at or under it), ``0`` undecided — all on log costs ``mean ± z·sd``."""
    log_limit = math.log(limit)
    out = np.zeros(len(mean), dtype=int)
    out[mean + z * sd <= log_limit] = -1
    out[mean - z * sd > log_limit] = 1
    return out


@dataclass(frozen=True)
class CostScreen:
    """Outcome of :func:`screen_costs` for ``N`` shapes.

    Attributes:
        measured: index → measured cost (``None``: the measurement failed).
        predicted: index → (predicted cost ``exp(mean)``, lower, upper bound) of every shape
            not measured.
        feasible: indices within the limit (measured, or upper bound within it); every index
            when there is no limit (failed measurements excluded).
        model: the last fitted model (``None`` when every shape was measured).
        n_initial: size of the initial design.
        fits: model fits made.
        z: interval half-width in stds.
    """

    measured: dict[int, float | None]
    predicted: dict[int, tuple[float, float, float]]
    feasible: tuple[int, ...]
    model: CostModel | None
    n_initial: int
    fits: int
    z: float

    def summary(self) -> dict[str, float | int | None]:
        """Counts and the held-out error of the last model (JSON-able)."""
        rel = (self.model.heldout_relative_errors() if self.model is not None
               else np.array([]))
        return {
            "n_measured": len(self.measured), "n_predicted": len(self.predicted),
            "n_initial": self.n_initial, "fits": self.fits, "z": self.z,
            "heldout_median_rel_error": float(np.median(rel)) if rel.size else None,
            "heldout_p90_rel_error": float(np.quantile(rel, 0.9)) if rel.size else None,
            "heldout_coverage": (self.model.heldout_coverage(self.z)
                                 if self.model is not None else None),
        }


def screen_costs(
    x: np.ndarray,
    measure: Callable[[int], float | None],
    limit: float | None,
    *,
    z: float = Z_DEFAULT,
    n_initial: int | None = None,
    measured: dict[int, float | None] | None = None,
) -> CostScreen:
    """Screen the shapes of feature rows ``x`` against ``limit`` (``None``: predict only).

    ``measure(i)`` measures shape ``i`` for real (a positive cost, or ``None`` when it cannot
    be measured). ``measured`` holds costs already known (they count towards the design).
    Every shape left unmeasured is decided by the model with margin ``z``; every undecided one
    is measured. Falls back to measuring everything when fewer than 3 measurements succeed.

    Raises:
        ValueError: ``limit`` or ``z`` not positive, or a measured cost not positive.
    """
    if limit is not None and not (limit > 0 and math.isfinite(limit)):
        raise ValueError(f"limit must be a positive number or None, got limit={limit!r}")
    if not (z > 0 and math.isfinite(z)):
        raise ValueError(f"z must be a positive number, got z={z!r}")
    n = x.shape[0]
    known: dict[int, float | None] = dict(measured or {})

    def take(i: int) -> None:
        if i not in known:
            v = measure(i)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ValueError(f"measured cost of shape {i} must be positive, got {v!r}")
            known[i] = v

    n0 = initial_size(n, x.shape[1]) if n_initial is None else min(n, n_initial)
    for i in maximin_design(x, n0):
        take(i)
    model: CostModel | None = None
    fits = 0
    while True:
        rest = np.array([i for i in range(n) if i not in known], dtype=int)
        if rest.size == 0:
            break
        ok = [i for i, v in known.items() if v is not None]
        if len(ok) < 3:  # nothing to learn from: measure the rest
            for i in rest:
                take(int(i))
            continue
        model = fit_cost_model(x[ok], np.log([known[i] for i in ok]))  # type: ignore[misc]
        fits += 1
        if limit is None:
            break
        mean, sd = model.predict(x[rest])
        undecided = np.flatnonzero(side_of_limit(mean, sd, limit, z) == 0)
        if undecided.size == 0:
            break
        widest = undecided[np.argsort(-sd[undecided], kind="stable")][:BATCH]
        for j in widest:
            take(int(rest[j]))
    predicted: dict[int, tuple[float, float, float]] = {}
    rest = np.array([i for i in range(n) if i not in known], dtype=int)
    if rest.size:
        assert model is not None
        mean, sd = model.predict(x[rest])
        for i, m, s in zip(rest, mean, sd, strict=True):
            predicted[int(i)] = (math.exp(m), math.exp(m - z * s), math.exp(m + z * s))
    feasible = [i for i in range(n) if (
        (i in known and known[i] is not None and (limit is None or known[i] <= limit))  # type: ignore[operator]
        or (i in predicted and (limit is None or predicted[i][2] <= limit)))]
    return CostScreen(known, predicted, tuple(feasible), model, n0, fits, z)
