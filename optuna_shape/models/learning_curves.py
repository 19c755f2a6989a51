"""A learning-curve model shared across shapes: the final accuracy of a training from its prefix.

A training of ``E`` epochs reports its validation accuracy after every epoch. From the first
``k`` values (``1 ≤ k ≤ E``) of a running or stopped training, :class:`CurveModel` predicts the
training's *observed* final (epoch ``E``) accuracy — seed noise included — with a calibrated
predictive distribution, learned from the study's completed curves of every shape together.

**Model.** One Bayesian linear regression per epoch ``k``, in fractions of the scale's maximum
(``y / 100`` for percent, ``y`` for fractions; see *Units*)::

    y_E = ρ_k + (1 − ρ_k) y_k  +  α + β (y_k − c_k) + γ (f − c_f)  +  ε,   ε ~ N(0, σ_k²)

* the *offset* ``y_k + ρ_k (1 − y_k)`` is the prior belief "the curve goes on as it is, plus a
  share ``ρ_k = 0.5 (1 − k/E)`` of its remaining headroom": slope 1 on ``y_k`` late in a
  training, about 0.5 at its start, where a low early accuracy says little about the final one;
* ``α`` (the typical remaining gain the offset misses) and ``γ`` (the effect of the optional
  per-curve feature ``f``, per unit of ``f``) have normal priors centred on 0 whose standard
  deviations are the prior's remaining gain ``ρ_k h_k`` (plus the noise floor below) and a
  quarter of it (``h_k = 1 − c_k``: headroom of ``c_k``, the training curves' mean accuracy at
  epoch ``k``; ``c_f`` their mean feature); ``β``, the slope correction, has prior std
  ``ρ_k + 0.05``. All are wide early and narrow late. ``γ`` lets the model learn that large
  networks, which start slowly and overtake small ones, gain more after epoch ``k`` at the same
  ``y_k``. The feature is used in its own units, so it should be on a log scale where 1 is a
  large difference (``log10`` of the parameter count: a factor of 10); it is not standardised
  by the training curves' spread, which with a few curves of similar size would blow up the
  extrapolation to a very different network;
* ``σ_k`` has a log-normal prior (log-sd 1) with median ``0.15 ρ_k h_k`` plus a *noise floor*:
  the epoch-to-epoch jitter of the completed curves' last third (from their second
  differences), shrunk towards 0.25 points. The floor is what the curves say about the noise
  left at the end; it keeps late forecasts calibrated with only a few curves, when the
  regression itself has no residual degrees of freedom.

Given ``σ_k`` the coefficients' posterior is Gaussian in closed form; ``σ_k`` is integrated
numerically over a grid of 41 values, each weighted by its exact marginal likelihood, so the
predictive distribution is a mixture of normals (heavy-tailed like a Student-t when the curves
say little about ``σ_k``). Independent priors on the coefficients and on ``σ_k`` — rather than
the conjugate normal–inverse-gamma, whose coefficient prior scales with ``σ_k`` — keep the
prior's meaning in accuracy points, for curves nearly noise-free late in a training as for
curves far apart early. The prior alone (zero curves) gives a finite, wide forecast; one curve
fixes the typical gain ``α``; slope and feature effects are learned as curves accumulate and
the prior's weight fades. A slope on ``y_k − y_{k−1}`` was tried and left out: it did not
reduce the error on the recorded curves.

Compared with the projection the package used before (least squares on ``y_k``, Student-t
prediction interval, at least 5 curves; kept as a baseline in the benchmark), the prior makes
the model usable — and about calibrated — from one curve on, and the feature handles crossing
curves: on the recorded ``digits-hard`` curves it halves the early-epoch error
(``benchmarks/curve_calibration.py``). With many curves the two agree.

**Units.** Accuracies may be percent (0–100) or fractions (0–1); the scale is inferred from
the completed curves by :func:`optuna_shape.models.posterior.unit_scale` (fractions when every value
is within ±1.5), or from the prefix when no curve is complete. The forecast's mean is clipped
to ``[0, maximum]`` (100 or 1), so are its intervals, and :meth:`CurveForecast.prob_at_least`
treats the predictive distribution as censored at those bounds.

One module: the per-epoch regression, the model that holds one per epoch and the forecast
mixture it returns are one method, derived once above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from optuna_shape.models.posterior import unit_scale

__all__ = ["CurveForecast", "CurveModel"]

GAIN_SHARE = 0.5
"""``ρ_k = GAIN_SHARE · (1 − k/E)``: prior share of the remaining headroom still gained."""

NOISE_SHARE = 0.15
"""Prior median of ``σ_k``: this share of the prior's remaining gain, plus the noise floor."""

NOISE_FLOOR_POINTS = 0.25
"""Prior noise floor in accuracy points (percent units): the change still expected between the
last epoch but one and the last, before any curve is complete; half the seed noise that
:mod:`optuna_shape.models.posterior` assumes between whole trainings."""

FLOOR_PRIOR_COUNT = 4
"""Weight of :data:`NOISE_FLOOR_POINTS` against the curves' own jitter, in second differences."""

NOISE_LOG_SD = 1.0
"""Standard deviation of ``log σ_k`` under its prior."""

FEATURE_SHARE = 0.25
"""Prior std of the feature effect ``γ`` per unit of the feature: this share of the prior's
remaining gain."""

SLOPE_PRIOR_FLOOR = 0.05
"""Prior std of the slope correction ``β`` at the last epoch (``ρ_k + floor`` before)."""

_GRID = np.linspace(-4.0, 4.0, 41)  # log σ_k grid, in prior standard deviations
_MIN_HEADROOM = 0.02  # fraction of the maximum: the prior never assumes a saturated curve
_WEIGHT_CUTOFF = 1e-9  # mixture components lighter than this are dropped
_MAX_STEPS = 100  # quantile search: Newton converges in a few steps, bisection in 50
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class CurveForecast:
    """The predicted final accuracy of a training from the first ``epoch`` epochs of its curve.

    Attributes:
        mean: predicted final accuracy, in the objective's units, clipped to ``[0, upper]``.
        std: predictive standard deviation of the observed final accuracy (seed noise
            included); 0 when the whole curve was seen.
        epoch: ``k``, epochs seen.
        n_curves: completed curves the model learned from.
        upper: the scale's maximum (100 for percent, 1 for fractions).
        weights: mixture weights of the predictive distribution (sum 1).
        means: mixture component means (objective units, not clipped).
        stds: mixture component standard deviations (objective units).

    Without ``weights``, ``means`` and ``stds`` the predictive distribution is the normal
    ``N(mean, std²)``.
    """

    mean: float
    std: float
    epoch: int
    n_curves: int
    upper: float = 100.0
    weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    means: np.ndarray | None = field(default=None, repr=False, compare=False)
    stds: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Default the mixture to the single normal ``N(mean, std²)``."""
        if self.weights is None or self.means is None or self.stds is None:
            object.__setattr__(self, "weights", np.ones(1))
            object.__setattr__(self, "means", np.array([float(self.mean)]))
            object.__setattr__(self, "stds", np.array([float(self.std)]))

    def cdf(self, value: float) -> float:
        """``P(final ≤ value)`` of the uncensored predictive mixture."""
        if self.std == 0.0:
            return 1.0 if value >= self.mean else 0.0
        return float(np.dot(self.weights, ndtr((value - self.means) / self.stds)))

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (``0 < q < 1``), clipped to ``[0, upper]``."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile level must be strictly between 0 and 1, got {q!r}")
        return float(self._quantiles(np.array([q]))[0])

    def interval(self, level: float) -> tuple[float, float]:
        """Central predictive interval holding the final accuracy with probability ``level``.

        Example:
            >>> f = CurveModel.fit([], epochs=10).forecast([40.0, 60.0])
            >>> lo, hi = f.interval(0.8)
            >>> 0.0 <= lo < f.mean < hi <= 100.0
            True
        """
        return self.intervals([level])[0]

    def intervals(self, levels: Sequence[float]) -> list[tuple[float, float]]:
        """:meth:`interval` for several levels at once (one root search for all)."""
        for level in levels:
            if not 0.0 < level < 1.0:
                raise ValueError(f"interval level must be strictly between 0 and 1, "
                                 f"got {level!r}")
        half = np.asarray(levels, dtype=float) / 2.0
        q = self._quantiles(np.concatenate([0.5 - half, 0.5 + half]))
        n = len(half)
        return [(float(q[i]), float(q[n + i])) for i in range(n)]

    def prob_at_least(self, threshold: float) -> float:
        """``P(final ≥ threshold)``, the distribution censored at ``0`` and ``upper``."""
        if self.std == 0.0:
            return 1.0 if self.mean >= threshold else 0.0
        if threshold > self.upper:
            return 0.0
        if threshold <= 0.0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - self.cdf(threshold)))

    def _quantiles(self, qs: np.ndarray) -> np.ndarray:
        """Quantiles of the mixture by safeguarded Newton steps (all levels at once), clipped
        to the scale: a step leaving the bracket known to hold the root is a bisection."""
        if self.std == 0.0:
            return np.full(len(qs), self.mean)
        lo = np.full(len(qs), float(np.min(self.means - 9.0 * self.stds)))
        hi = np.full(len(qs), float(np.max(self.means + 9.0 * self.stds)))
        x = np.clip(float(self.weights @ self.means) + self.std * ndtri(qs), lo, hi)
        tol = 1e-7 * self.std
        for _ in range(_MAX_STEPS):
            z = (x[:, None] - self.means) / self.stds
            gap = ndtr(z) @ self.weights - qs
            density = (np.exp(-0.5 * z * z) / self.stds) @ self.weights / _SQRT_2PI
            lo = np.where(gap < 0, x, lo)
            hi = np.where(gap < 0, hi, x)
            step = np.where(density > 0, gap / np.maximum(density, 1e-300), np.inf)
            new = x - step
            new = np.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
            done = np.all(np.abs(new - x) <= tol)
            x = new
            if done:
                break
        return np.clip(x, 0.0, self.upper)


@dataclass(frozen=True)
class _EpochFit:
    """Posterior of the epoch-``k`` regression (fractions of the maximum)."""

    rho: float
    center_y: float
    center_f: float
    use_feature: bool
    sigma: np.ndarray  # (G,) noise std per grid point
    weights: np.ndarray  # (G,) posterior weights
    coef_mean: np.ndarray  # (G, p)
    coef_cov: np.ndarray  # (G, p, p)

    def predict(self, y: float, f: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Component means and stds of ``y_E`` for a curve at ``y`` (and feature ``f``)."""
        x = [1.0, y - self.center_y]
        if self.use_feature:
            x.append(0.0 if f is None else f - self.center_f)
        xv = np.asarray(x)
        mean = self.rho + (1.0 - self.rho) * y + self.coef_mean @ xv
        var = np.einsum("i,gij,j->g", xv, self.coef_cov, xv) + self.sigma**2
        return mean, np.sqrt(var)


def _noise_floor(curves: np.ndarray) -> float:
    """The noise added to the prior of ``σ_k`` (fractions): :data:`NOISE_FLOOR_POINTS`, updated
    by the epoch-to-epoch jitter of the completed curves' last third.

    Second differences ``y_{j+1} − 2 y_j + y_{j−1}`` of a curve with independent per-epoch noise
    ``σ_e`` and a flat trend have variance ``6 σ_e²``; ``y_E − y_k`` then carries ``2 σ_e²``.
    The prior counts as :data:`FLOOR_PRIOR_COUNT` such differences.
    """
    prior = NOISE_FLOOR_POINTS / 100.0
    n, epochs = curves.shape
    if n == 0 or epochs < 3:
        return prior
    tail = curves[:, -max(3, math.ceil(epochs / 3)):]
    second = np.diff(tail, n=2, axis=1).ravel()
    estimate = 2.0 * float(np.mean(second**2)) / 6.0
    m = second.size
    return math.sqrt((FLOOR_PRIOR_COUNT * prior**2 + m * estimate) / (FLOOR_PRIOR_COUNT + m))


def _prior_scales(rho: float, headroom: float, floor: float,
                  p: int) -> tuple[np.ndarray, float]:
    """Prior variances of ``(α, β[, γ])`` and the prior median of ``σ_k`` (``floor``: the noise
    floor of :func:`_noise_floor`)."""
    gain = rho * headroom
    sd = [gain + floor, rho + SLOPE_PRIOR_FLOOR]
    if p == 3:
        sd.append(FEATURE_SHARE * gain + 1e-6)
    return np.square(sd), NOISE_SHARE * gain + floor


def _fit_epoch(yk: np.ndarray, ye: np.ndarray, feats: np.ndarray | None, k: int, epochs: int,
               floor: float, query_y: float | None = None) -> _EpochFit:
    """Posterior of the epoch-``k`` regression over the ``σ_k`` grid (closed form per point)."""
    n = len(yk)
    rho = GAIN_SHARE * (1.0 - k / epochs)
    center_y = float(np.mean(yk)) if n else float(query_y if query_y is not None else 0.5)
    use_feature = feats is not None
    center_f = float(np.mean(feats)) if use_feature and n else 0.0
    cols = [np.ones(n), yk - center_y]
    if use_feature:
        cols.append(feats - center_f)
    x = np.column_stack(cols) if n else np.zeros((0, len(cols)))
    p = x.shape[1]
    headroom = max(_MIN_HEADROOM, 1.0 - center_y)
    prior_var, sigma0 = _prior_scales(rho, headroom, floor, p)
    sigma = sigma0 * np.exp(NOISE_LOG_SD * _GRID)
    target = ye - rho - (1.0 - rho) * yk
    s2 = sigma[:, None, None] ** 2
    precision = (x.T @ x)[None] / s2 + np.diag(1.0 / prior_var)[None]
    cov = np.linalg.inv(precision)
    xt = x.T @ target
    mean = np.einsum("gij,j->gi", cov, xt) / s2[:, :, 0]
    # log N(target; 0, X Λ Xᵀ + σ² I) through the p × p identities (matrix determinant lemma)
    _, logdet_prec = np.linalg.slogdet(precision)
    logdet = logdet_prec + np.sum(np.log(prior_var)) + n * np.log(sigma**2)
    quad = float(target @ target) / sigma**2 - np.einsum("gi,i->g", mean, xt) / sigma**2
    log_ml = -0.5 * (logdet + quad)
    log_w = log_ml - 0.5 * _GRID**2
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    keep = w > _WEIGHT_CUTOFF
    return _EpochFit(rho, center_y, center_f, use_feature, sigma[keep],
                     w[keep] / w[keep].sum(), mean[keep], cov[keep])


class CurveModel:
    """Predict a training's final accuracy from its first epochs (module docstring).

    Build with :meth:`fit`; the per-epoch posteriors are computed on first use and cached.

    Example:
        >>> import math
        >>> curves = [[a - (a - 20) * math.exp(-0.6 * e) for e in range(1, 11)]
        ...           for a in (90.0, 92.0, 95.0)]
        >>> model = CurveModel.fit(curves, epochs=10)
        >>> f = model.forecast(curves[1][:5])
        >>> model.n_curves, f.epoch, abs(f.mean - curves[1][-1]) < 3 * f.std + 1.0
        (3, 5, True)
    """

    def __init__(self, curves: np.ndarray, features: np.ndarray | None, epochs: int,
                 upper: float | None) -> None:
        """Use :meth:`fit`; ``curves`` are ``(n, epochs)`` fractions of ``upper``."""
        self._curves = curves
        self._features = features
        self._epochs = epochs
        self._upper = upper
        self._cache: dict[tuple[int, bool], _EpochFit] = {}
        self._floor = _noise_floor(curves)

    @classmethod
    def fit(cls, curves: Sequence[Sequence[float]], epochs: int,
            features: Sequence[float] | None = None) -> CurveModel:
        """Learn from completed curves.

        Args:
            curves: completed curves; only those of exactly ``epochs`` finite values are used.
            epochs: ``E``, the planned number of epochs (at least 1).
            features: optional, one float per curve (e.g. ``log10`` of the parameter count);
                curves with a non-finite feature are ignored.

        Raises:
            ValueError: ``epochs < 1`` or ``features`` not one value per curve.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        curves = list(curves)
        if features is not None and len(features) != len(curves):
            raise ValueError(f"features must hold one value per curve ({len(curves)} curves), "
                             f"got {len(features)} values")
        kept, feats = [], []
        for i, c in enumerate(curves):
            row = np.asarray(c, dtype=float).ravel()
            if len(row) != epochs or not np.all(np.isfinite(row)):
                continue
            if features is not None and not math.isfinite(float(features[i])):
                continue
            kept.append(row)
            feats.append(float(features[i]) if features is not None else 0.0)
        data = np.array(kept, dtype=float).reshape(len(kept), int(epochs))
        upper = 100.0 * unit_scale(data.ravel()) if len(kept) else None
        scaled = data / upper if upper else data
        return cls(scaled, np.array(feats) if features is not None else None, int(epochs),
                   upper)

    @property
    def n_curves(self) -> int:
        """Completed curves the model learned from."""
        return len(self._curves)

    @property
    def epochs(self) -> int:
        """``E``, the number of epochs of a complete curve."""
        return self._epochs

    def forecast(self, prefix: Sequence[float], feature: float | None = None) -> CurveForecast:
        """Predict the final accuracy of a training from its first ``len(prefix)`` epochs.

        Args:
            prefix: validation accuracy after epochs ``1..k`` (``1 ≤ k ≤ E``), finite.
            feature: the curve's feature; ignored when the model was fitted without features,
                and the feature-free regression is used when it is ``None``.

        Returns:
            The forecast; with the whole curve (``k = E``) its last value with std 0.

        Raises:
            ValueError: empty prefix, one longer than ``epochs``, or a non-finite value.
        """
        values = np.asarray(prefix, dtype=float).ravel()
        k = len(values)
        if not 1 <= k <= self._epochs:
            raise ValueError(f"prefix must hold 1 to {self._epochs} accuracies (the epochs "
                             f"seen), got {k}")
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            first = int(bad[0])
            raise ValueError(f"prefix values must be finite, got {float(values[first])!r} at "
                             f"epoch {first + 1}")
        if feature is not None and not math.isfinite(float(feature)):
            raise ValueError(f"feature must be finite or None, got {feature!r}")
        upper = self._upper or 100.0 * unit_scale(values)
        last = float(values[-1])
        if k == self._epochs:
            return CurveForecast(min(max(last, 0.0), upper), 0.0, k, self.n_curves, upper,
                                 np.ones(1), np.array([last]), np.zeros(1))
        use_feature = self._features is not None and feature is not None
        y = last / upper
        fit = self._epoch_fit(k, use_feature, y)
        means, stds = fit.predict(y, feature)
        means, stds = means * upper, stds * upper
        mean = float(fit.weights @ means)
        var = float(fit.weights @ (stds**2 + (means - mean) ** 2))
        return CurveForecast(min(max(mean, 0.0), upper), math.sqrt(var), k, self.n_curves,
                             upper, fit.weights, means, stds)

    def _epoch_fit(self, k: int, use_feature: bool, query_y: float) -> _EpochFit:
        """The cached epoch-``k`` posterior (recomputed per query when no curve is known)."""
        floor = self._floor
        feats = self._features if use_feature else None
        if self.n_curves == 0:
            return _fit_epoch(np.zeros(0), np.zeros(0), feats, k, self._epochs, floor,
                              query_y)
        key = (k, use_feature)
        if key not in self._cache:
            self._cache[key] = _fit_epoch(self._curves[:, k - 1], self._curves[:, -1], feats,
                                          k, self._epochs, floor)
        return self._cache[key]
