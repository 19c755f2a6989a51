"""A posterior over the accuracy of every shape, with a heteroscedastic seed-noise model.

Pure numpy/scipy; refitted from all trainings whenever the search decides.

Model (all in standardised accuracy units ``(acc - m) / s`` with ``m``, ``s`` the mean and
spread of the trained shapes' means):

* **Inputs** ``x = (log depth, log width)`` scaled to ``[0, 1]`` over a *domain* (the feasible
  grid), so one length-scale prior fits every grid.
* **Latent accuracy** ``f = h(x)ᵀβ + g(x)`` with ``g ~ GP(0, Matérn-5/2 ARD)`` and a Bayesian
  linear mean ``h(x)ᵀβ``, the family's *trend* (``trend=``, a family's ``accuracy_trend``):
  ``"paper"``, low-order inverse-polynomial terms of paper Eq. 2, ``h = (1, a, b, a²)`` with
  ``a = w_min / w`` and ``b = d_min / d`` (both in ``(0, 1]``, so bounded: no extrapolation
  spikes); ``"smooth"``, a quadratic in the scaled inputs, ``h = (1, x_d, x_w, x_d², x_w²)``
  (bounded on ``[0, 1]``; may peak inside the grid). ``β ~ N(0, B)`` is integrated out, i.e.
  ``H B Hᵀ`` is added to the kernel (Rasmussen & Williams §2.7): the trend is learned from the
  data while the predictive std includes its uncertainty.
* **Seed noise** ``σ(shape) = σ0 · exp(γ z)`` with ``z`` the standardised ``-log(d w²)`` (a
  size proxy: small networks have ``z > 0`` and may be noisier). Repeated trainings enter through
  their exact sufficient statistics: the GP sees each shape's *mean* with variance ``σ²/k``, and
  the within-shape sum of squares ``SS ~ σ² χ²_{k-1}`` adds
  ``-(k-1)/2 · log σ² - SS / (2σ²)`` to the log likelihood (the likelihood that makes the
  inverse-gamma the conjugate prior of a pooled variance). Until repeats exist, ``σ0`` is held
  near its prior (0.5 accuracy points, scaled to the objective's units) and ``γ`` near 0.25.
* **Hyperparameters** (amplitude, two length-scales, ``σ0``, ``γ``) maximise the marginal
  likelihood plus weak log-normal / normal priors (MAP), by L-BFGS-B from two starts.

Units: the objective may return fractions (0–1) or percent (0–100); when every value is within
±1.5 the values are read as fractions and the noise prior is scaled by 1/100
(:func:`unit_scale`).

Outputs: posterior mean and std of the *latent* accuracy at any shape
(:meth:`ShapePosterior.predict`), observation noise std (:meth:`ShapePosterior.noise_std`),
joint Monte Carlo draws (:meth:`ShapePosterior.sample`) and conditioning on fantasised values
(:meth:`ShapePosterior.with_fantasies`, for batch proposals).

One module: it is one class, whose fit, predictions, joint draws and conditioning on fantasised
or partial observations all work on the same factorised kernel and hyperparameters.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

from optuna_shape.families.registry import ACCURACY_TRENDS
from optuna_shape.space.shape import Shape, as_shape

__all__ = [
    "NOISE_PRIOR_POINTS", "NoiseEstimate", "ShapePosterior", "single_threaded_blas", "unit_scale",
]

NOISE_PRIOR_POINTS = 0.5
"""Prior seed-noise standard deviation, in accuracy points (percent units)."""

_GAMMA_PRIOR = (0.25, 0.35)  # mean, sd of the noise-growth exponent
_LOG_SIGMA_PRIOR_SD = 1.0
_LOG_AMP_PRIOR = (math.log(0.7), 1.0)
_LOG_LS_PRIOR = (math.log(0.35), 0.8)
_BASIS_PRIOR_SD = 2.0  # of every trend coefficient, standardised units
_SQRT5 = math.sqrt(5.0)


_CONTROLLER: list = []


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread: the matrices here are small (tens to hundreds of
    rows), and a threaded BLAS on a busy machine makes a 30 ms decision take over a second.
    A no-op when ``threadpoolctl`` (a scikit-learn dependency) is missing."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except ImportError:  # pragma: no cover
            _CONTROLLER.append(None)
    ctrl = _CONTROLLER[0]
    if ctrl is None:  # pragma: no cover
        yield
        return
    with ctrl.limit(limits=1, user_api="blas"):
        yield


def unit_scale(values: Iterable[float]) -> float:
    """``0.01`` when every value is within ±1.5 (fractions), else ``1.0`` (percent)."""
    vals = [float(v) for v in values]
    if vals and max(abs(v) for v in vals) <= 1.5:
        return 0.01
    return 1.0


@dataclass(frozen=True)
class NoiseEstimate:
    """The fitted seed-noise model, in the objective's units.

    Attributes:
        sigma0: noise std of a shape of median size (``z = 0``).
        gamma: growth exponent: ``σ(shape) = sigma0 · exp(gamma · z)``, ``z`` the standardised
            ``-log(depth · width²)`` (small networks have ``z > 0``).
        repeat_df: degrees of freedom from repeated trainings (0: the prior alone).
        prior_sigma0: the prior's ``sigma0``.
        unit_scale: 1 for percent, 0.01 for fractions.
    """

    sigma0: float
    gamma: float
    repeat_df: int
    prior_sigma0: float
    unit_scale: float

    def as_dict(self) -> dict[str, float | int]:
        """JSON-able form."""
        return {"sigma0": self.sigma0, "gamma": self.gamma, "repeat_df": self.repeat_df,
                "prior_sigma0": self.prior_sigma0, "unit_scale": self.unit_scale}


def _matern52(xa: np.ndarray, xb: np.ndarray, ls: np.ndarray, amp2: float) -> np.ndarray:
    d = (xa[:, None, :] - xb[None, :, :]) / ls
    r = np.sqrt(np.maximum((d * d).sum(-1), 0.0))
    sr = _SQRT5 * r
    return amp2 * (1.0 + sr + sr * sr / 3.0) * np.exp(-sr)


class ShapePosterior:
    """GP posterior of the latent accuracy over shapes (see the module docstring).

    Args:
        domain: the shapes that define the input scaling (normally every feasible shape).
        noise_prior: prior noise std in the objective's units; ``None``: 0.5 points scaled by
            :func:`unit_scale` of the data.
        restarts: optimiser starts for the hyperparameters (1 or 2).
        trend: the mean's basis, one of
            :data:`~optuna_shape.families.registry.ACCURACY_TRENDS` (see the module
            docstring).

    Raises:
        ValueError: an empty domain, a depth or width ≤ 0, or an unknown trend.

    Example:
        >>> grid = [Shape(d, w) for d in (10, 16, 22, 28) for w in (1.0, 2.0, 3.0, 4.0)]
        >>> data = [(s, 95 - 3 / s.width - 20 / s.depth) for s in grid[::3]]
        >>> post = ShapePosterior(grid).fit([s for s, _ in data], [v for _, v in data])
        >>> mean, std = post.predict(grid)
        >>> bool(abs(mean[5] - (95 - 3 / 2 - 20 / 16)) < 1.0)
        True
    """

    def __init__(self, domain: Sequence[Shape | tuple[int, float]],
                 noise_prior: float | None = None, restarts: int = 2,
                 trend: str = "paper") -> None:
        if trend not in ACCURACY_TRENDS:
            raise ValueError(f"trend must be one of {', '.join(ACCURACY_TRENDS)}, "
                             f"got trend={trend!r}")
        self.trend = trend
        dom = np.array([tuple(as_shape(s)) for s in domain], dtype=float).reshape(-1, 2)
        if len(dom) == 0:
            raise ValueError("the domain needs at least one shape")
        if np.any(dom <= 0):
            raise ValueError("depth and width must be > 0")
        logd = np.log(dom)
        self._lo = logd.min(axis=0)
        span = logd.max(axis=0) - self._lo
        self._span = np.where(span > 0, span, 1.0)
        self._d_min = float(dom[:, 0].min())
        self._w_min = float(dom[:, 1].min())
        zs = -np.log(dom[:, 0] * dom[:, 1] ** 2)
        self._z_mean = float(zs.mean())
        z_sd = float(zs.std())
        self._z_sd = z_sd if z_sd > 0 else 1.0
        self.noise_prior = noise_prior
        self.restarts = restarts

    # ------------------------------------------------------------------ features
    def _x(self, arr: np.ndarray) -> np.ndarray:
        return (np.log(arr) - self._lo) / self._span

    def _h(self, arr: np.ndarray) -> np.ndarray:
        if self.trend == "smooth":
            x = self._x(arr)
            return np.column_stack([np.ones(len(arr)), x[:, 0], x[:, 1], x[:, 0] ** 2,
                                    x[:, 1] ** 2])
        a = self._w_min / arr[:, 1]
        b = self._d_min / arr[:, 0]
        return np.column_stack([np.ones(len(arr)), a, b, a * a])

    def _z(self, arr: np.ndarray) -> np.ndarray:
        z = (-np.log(arr[:, 0] * arr[:, 1] ** 2) - self._z_mean) / self._z_sd
        return np.clip(z, -2.5, 2.5)

    @staticmethod
    def _arr(shapes: Iterable[Shape | tuple[int, float]] | np.ndarray) -> np.ndarray:
        if isinstance(shapes, np.ndarray) and shapes.ndim == 2 and shapes.shape[1] == 2:
            return shapes.astype(float)
        return np.array([tuple(as_shape(s)) for s in shapes], dtype=float).reshape(-1, 2)

    # ------------------------------------------------------------------ fitting
    def fit(self, shapes: Sequence[Shape | tuple[int, float]],
            values: Sequence[float]) -> ShapePosterior:
        """Fit to trainings (a shape listed several times is a repeated training).

        Raises:
            ValueError: lengths differ, no training, or a non-finite value.
        """
        shapes = [as_shape(s) for s in shapes]
        vals = np.asarray(values, dtype=float).ravel()
        if len(shapes) != len(vals):
            raise ValueError(f"got {len(shapes)} shapes but {len(vals)} values")
        if len(vals) == 0:
            raise ValueError("need at least one training to fit")
        if not np.all(np.isfinite(vals)):
            raise ValueError("values must be finite")
        groups: dict[Shape, list[float]] = {}
        for s, v in zip(shapes, vals, strict=True):
            groups.setdefault(s, []).append(float(v))
        self.shapes_ = list(groups)
        arr = self._arr(self.shapes_)
        counts = np.array([len(groups[s]) for s in self.shapes_], dtype=float)
        means = np.array([float(np.mean(groups[s])) for s in self.shapes_])
        ss = np.array([float(np.sum((np.array(groups[s]) - np.mean(groups[s])) ** 2))
                       for s in self.shapes_])
        self.unit_scale_ = unit_scale(vals)
        prior_sigma = (self.noise_prior if self.noise_prior is not None
                       else NOISE_PRIOR_POINTS * self.unit_scale_)
        self.prior_sigma0_ = float(prior_sigma)
        self.y_mean_ = float(means.mean())
        spread = float(means.std()) if len(means) > 1 else 0.0
        self.y_scale_ = max(spread, 2.0 * prior_sigma)
        y = (means - self.y_mean_) / self.y_scale_
        ss_z = ss / self.y_scale_**2
        self._X = self._x(arr)
        self._H = self._h(arr)
        self._Z = self._z(arr)
        self._counts = counts
        self._ss = ss_z
        self._y = y
        self.repeat_df_ = int(np.sum(counts - 1))
        self._log_sigma_prior = math.log(prior_sigma / self.y_scale_)
        self._B = np.eye(self._H.shape[1]) * _BASIS_PRIOR_SD**2
        with single_threaded_blas():
            theta = self._optimise()
            self._set_theta(theta)
            self._factor(self._X, self._H, self._Z, self._counts, self._y)
        return self

    def _unpack(self, theta: np.ndarray) -> tuple[float, np.ndarray, float, float]:
        return (math.exp(2 * theta[0]), np.exp(theta[1:3]), math.exp(2 * theta[3]),
                float(theta[4]))

    def _neg_log_post(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log posterior of the hyperparameters and its gradient."""
        amp2, ls, s02, gamma = self._unpack(theta)
        var_i = s02 * np.exp(2 * gamma * self._Z)
        diff = (self._X[:, None, :] - self._X[None, :, :]) / ls
        d2 = diff * diff
        r = np.sqrt(np.maximum(d2.sum(-1), 0.0))
        sr = _SQRT5 * r
        e = np.exp(-sr)
        kmat = amp2 * (1.0 + sr + sr * sr / 3.0) * e
        k = kmat + self._H @ self._B @ self._H.T
        noise_diag = var_i / self._counts
        k[np.diag_indices_from(k)] += noise_diag + 1e-8
        try:
            chol = cholesky(k, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve((chol, True), self._y, check_finite=False)
        nll = 0.5 * float(self._y @ alpha) + float(np.log(np.diag(chol)).sum())
        kinv = cho_solve((chol, True), np.eye(len(self._y)), check_finite=False)
        w = 0.5 * (kinv - np.outer(alpha, alpha))  # d nll = tr(w dK)
        grad = np.zeros(5)
        grad[0] = float(np.sum(w * (2.0 * kmat)))
        dk_common = amp2 * (5.0 / 3.0) * (1.0 + sr) * e
        grad[1] = float(np.sum(w * dk_common * d2[:, :, 0]))
        grad[2] = float(np.sum(w * dk_common * d2[:, :, 1]))
        wd = np.diag(w)
        grad[3] = float(np.sum(wd * 2.0 * noise_diag))
        grad[4] = float(np.sum(wd * 2.0 * self._Z * noise_diag))
        # within-shape scatter of repeated trainings
        rep = self._counts > 1
        if rep.any():
            km1, vr, zr = self._counts[rep] - 1, var_i[rep], self._Z[rep]
            nll += float(np.sum(0.5 * km1 * np.log(vr) + 0.5 * self._ss[rep] / vr))
            t = km1 - self._ss[rep] / vr
            grad[3] += float(np.sum(t))
            grad[4] += float(np.sum(zr * t))
        priors = [(0, *_LOG_AMP_PRIOR), (1, *_LOG_LS_PRIOR), (2, *_LOG_LS_PRIOR),
                  (3, self._log_sigma_prior, _LOG_SIGMA_PRIOR_SD), (4, *_GAMMA_PRIOR)]
        for i, mu, sd in priors:
            nll += 0.5 * ((theta[i] - mu) / sd) ** 2
            grad[i] += (theta[i] - mu) / sd**2
        return nll, grad

    def _optimise(self) -> np.ndarray:
        lsp = self._log_sigma_prior
        bounds = [(math.log(0.05), math.log(5.0)), (math.log(0.05), math.log(5.0)),
                  (math.log(0.05), math.log(5.0)), (lsp - 4.0, max(lsp + 4.0, math.log(3.0))),
                  (-0.5, 1.5)]
        starts = [np.array([_LOG_AMP_PRIOR[0], _LOG_LS_PRIOR[0], _LOG_LS_PRIOR[0], lsp,
                            _GAMMA_PRIOR[0]]),
                  np.array([math.log(0.4), math.log(0.15), math.log(0.15),
                            max(lsp, math.log(0.3)), _GAMMA_PRIOR[0]])]
        best_theta, best_val = starts[0], math.inf
        for x0 in starts[: max(1, self.restarts)]:
            x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
            res = minimize(self._neg_log_post, x0, jac=True, method="L-BFGS-B",
                           bounds=bounds, options={"maxiter": 100})
            if res.fun < best_val:
                best_theta, best_val = res.x, float(res.fun)
        return np.asarray(best_theta, dtype=float)

    def _set_theta(self, theta: np.ndarray) -> None:
        self.theta_ = theta
        self._amp2, self._ls, self._s02, self._gamma = self._unpack(theta)
        self.noise_ = NoiseEstimate(
            sigma0=math.sqrt(self._s02) * self.y_scale_, gamma=self._gamma,
            repeat_df=self.repeat_df_, prior_sigma0=self.prior_sigma0_,
            unit_scale=self.unit_scale_)
        self.length_scales_ = tuple(float(v) for v in self._ls)
        self.amplitude_ = math.sqrt(self._amp2) * self.y_scale_

    def _factor(self, X: np.ndarray, H: np.ndarray, Z: np.ndarray, counts: np.ndarray,
                y: np.ndarray) -> None:
        k = _matern52(X, X, self._ls, self._amp2) + H @ self._B @ H.T
        k[np.diag_indices_from(k)] += self._s02 * np.exp(2 * self._gamma * Z) / counts + 1e-8
        self._chol = cholesky(k, lower=True, check_finite=False)
        self._alpha = cho_solve((self._chol, True), y, check_finite=False)
        self._Xc, self._Hc = X, H

    def _prior_cross(self, arr: np.ndarray) -> np.ndarray:
        return (_matern52(self._x(arr), self._Xc, self._ls, self._amp2)
                + self._h(arr) @ self._B @ self._Hc.T)

    # ------------------------------------------------------------------ outputs
    def predict(self, shapes: Iterable[Shape | tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of the latent accuracy (no seed noise), objective units."""
        arr = self._arr(shapes)
        ks = self._prior_cross(arr)
        h = self._h(arr)
        prior_var = self._amp2 + np.einsum("ij,jk,ik->i", h, self._B, h)
        mean = ks @ self._alpha
        v = solve_triangular(self._chol, ks.T, lower=True, check_finite=False)
        var = np.maximum(prior_var - (v * v).sum(0), 1e-12)
        return mean * self.y_scale_ + self.y_mean_, np.sqrt(var) * self.y_scale_

    def covariance(self, shapes: Iterable[Shape | tuple[int, float]]) -> np.ndarray:
        """Posterior covariance matrix of the latent accuracy at ``shapes`` (objective units²)."""
        arr = self._arr(shapes)
        x, h = self._x(arr), self._h(arr)
        prior = _matern52(x, x, self._ls, self._amp2) + h @ self._B @ h.T
        v = solve_triangular(self._chol, self._prior_cross(arr).T, lower=True,
                             check_finite=False)
        return (prior - v.T @ v) * self.y_scale_**2

    def sample(self, shapes: Sequence[Shape | tuple[int, float]], n_draws: int,
               rng: np.random.Generator) -> np.ndarray:
        """Joint draws of the latent accuracy, shape ``(n_draws, len(shapes))``."""
        shapes = list(shapes)
        mean, _ = self.predict(shapes)
        cov = self.covariance(shapes)
        n = len(shapes)
        jitter = 1e-9 * max(float(np.mean(np.diag(cov))), 1e-12)
        for _ in range(6):
            try:
                chol = np.linalg.cholesky(cov + jitter * np.eye(n))
                break
            except np.linalg.LinAlgError:
                jitter *= 100.0
        else:  # pragma: no cover - numerically hopeless; fall back to independent draws
            chol = np.diag(np.sqrt(np.maximum(np.diag(cov), 0.0)))
        return mean + rng.standard_normal((n_draws, n)) @ chol.T

    def noise_std(self, shapes: Iterable[Shape | tuple[int, float]]) -> np.ndarray:
        """Seed-noise std of one training of each shape, objective units."""
        z = self._z(self._arr(shapes))
        return math.sqrt(self._s02) * np.exp(self._gamma * z) * self.y_scale_

    def loo_residuals(self) -> np.ndarray:
        """Leave-one-shape-out residuals of the trained shapes' means (objective units), in
        closed form at the fitted hyperparameters, in the order of ``shapes_``."""
        kinv = cho_solve((self._chol, True), np.eye(len(self._y)), check_finite=False)
        return self._alpha / np.diag(kinv) * self.y_scale_

    def with_fantasies(self, shapes: Sequence[Shape | tuple[int, float]]) -> ShapePosterior:
        """A copy conditioned on one extra training per listed shape, valued at the current
        posterior mean (kriging believer); hyperparameters unchanged."""
        shapes = [as_shape(s) for s in shapes]
        new = object.__new__(ShapePosterior)
        new.__dict__.update(self.__dict__)
        if not shapes:
            return new
        mean, _ = self.predict(shapes)
        arr = self._arr(shapes)
        X = np.vstack([self._Xc, self._x(arr)])
        H = np.vstack([self._Hc, self._h(arr)])
        Z = np.concatenate([self._all_z(), self._z(arr)])
        counts = np.concatenate([self._all_counts(), np.ones(len(arr))])
        y = np.concatenate([self._all_y(), (mean - self.y_mean_) / self.y_scale_])
        new._fz, new._fcounts, new._fy = Z, counts, y
        new._factor(X, H, Z, counts, y)
        return new

    def with_partial(self, shapes: Sequence[Shape | tuple[int, float]],
                     values: Sequence[float], stds: Sequence[float]) -> ShapePosterior:
        """A copy that also knows trainings stopped before their last epoch (hyperparameters
        unchanged): each is an observation of the shape's accuracy at its learning curve's
        forecast ``value`` with the forecast's variance ``std²`` added to the shape's seed-noise
        variance (two-sided: a stopped training forecast high raises the posterior as much as
        one forecast low lowers it). Entries with a non-finite value or std are left out."""
        new, shapes, vals, sds = self._pseudo_inputs(shapes, values, stds)
        if not shapes:
            return new
        keep = np.isfinite(vals) & np.isfinite(sds) & (sds >= 0)
        noise2 = self.noise_std(shapes) ** 2
        var_z = (noise2 + np.where(np.isfinite(sds), sds, 0.0) ** 2) / self.y_scale_**2
        new = self._with_pseudo(new, shapes, vals, var_z, keep)
        new.partial_ = int(keep.sum())
        return new

    def _pseudo_inputs(self, shapes: Sequence[Shape | tuple[int, float]],
                       values: Sequence[float], stds: Sequence[float]
                       ) -> tuple[ShapePosterior, list[Shape], np.ndarray, np.ndarray]:
        """A copy of this posterior and the checked inputs of a pseudo-observation update."""
        shapes = [as_shape(s) for s in shapes]
        new = object.__new__(ShapePosterior)
        new.__dict__.update(self.__dict__)
        vals = np.asarray(values, dtype=float)
        sds = np.asarray(stds, dtype=float)
        if len(vals) != len(shapes) or len(sds) != len(shapes):
            raise ValueError(f"got {len(shapes)} shapes, {len(vals)} values, {len(sds)} stds")
        return new, shapes, vals, sds

    def _with_pseudo(self, new: ShapePosterior, shapes: list[Shape], vals: np.ndarray,
                     var_z: np.ndarray, keep: np.ndarray) -> ShapePosterior:
        """``new`` refactorised with pseudo-observations ``vals[keep]`` of variance
        ``var_z[keep]`` (standardised units), as fractional repeat counts of the noise model."""
        if not keep.any():
            return new
        arr = self._arr([s for s, k in zip(shapes, keep, strict=True) if k])
        z = self._z(arr)
        var_z = np.maximum(var_z[keep], 1e-12)
        counts = self._s02 * np.exp(2 * self._gamma * z) / var_z
        X = np.vstack([self._Xc, self._x(arr)])
        H = np.vstack([self._Hc, self._h(arr)])
        Z = np.concatenate([self._all_z(), z])
        C = np.concatenate([self._all_counts(), counts])
        y = np.concatenate([self._all_y(), (vals[keep] - self.y_mean_) / self.y_scale_])
        new._fz, new._fcounts, new._fy = Z, C, y
        new._factor(X, H, Z, C, y)
        return new

    def _all_z(self) -> np.ndarray:
        return getattr(self, "_fz", self._Z)

    def _all_counts(self) -> np.ndarray:
        return getattr(self, "_fcounts", self._counts)

    def _all_y(self) -> np.ndarray:
        return getattr(self, "_fy", self._y)
