"""The accuracy model: a linear model on inverse-polynomial features of the shape (paper §4.1).

The paper (Mammadli et al., "The Art of Getting Deep Neural Networks in Shape", Eq. 1-3) predicts
the test-set accuracy of a network of depth ``d`` and width ``w`` as ``y = v^T x + b`` with the
nine base features of Eq. 2::

    x = (1/w, 1/d, 1/w², 1/(dw), 1/d², 1/w³, 1/(w²d), 1/(wd²), 1/d³)

and fits ``v`` and ``b`` by plain least squares. Ten coefficients from about ten trained shapes is
an ill-posed problem (the features are strongly collinear and span orders of magnitude: width 1/16
gives ``1/w³ = 4096``), so :class:`AccuracyModel` keeps the paper's features and linear form but,
by default, fits them as a Bayesian linear model:

* features are standardised on the training shapes (scale-free, well conditioned);
* each coefficient has a zero-mean Gaussian prior whose precision is shared within its polynomial
  degree (three groups: ``{1/w, 1/d}``, the three second-degree and the four third-degree terms),
  so that the data decide how much curvature to allow;
* the three prior precisions and the noise precision are set by evidence maximisation
  (empirical Bayes, MacKay's fixed-point updates), deterministically and in closed form per step;
* the intercept has a flat prior.

This gives a predictive mean and a predictive standard deviation (noise included), and reduces to
the paper's least-squares solution when the data are plentiful and noise-free. Evidence
(``benchmarks/accuracy_model_paper.py``, leave-one-out MAE in accuracy points on the paper's own
real accuracies, exact refits)::

    method                          D1 (30)  D2 (23)  CIFAR-10 (13)  CIFAR-100 (10)  MNIST (12)
    "bayes" (default, by degree)     0.153    0.129       0.163          0.393         0.133
    one shared prior (BayesianRidge) 0.155    0.136       0.153          0.964         0.141
    one prior per coefficient (ARD)  0.165    0.156       0.134          0.484         0.139
    "ridge" (penalty by exact LOO)   0.172    0.123       0.203          1.573         0.115
    "ols" (the paper)                0.170    0.175       2.732          6.284         0.225

The paper's own mean |expected - real| on D1 is 0.165 points.

``method="gp"`` is the search's posterior (:class:`optuna_shape.models.posterior.ShapePosterior`): a
Gaussian process on ``(log depth, log width)`` with a Bayesian linear mean on low-order Eq. 2
terms and a heteroscedastic seed-noise model learned from repeated trainings; it stays within a
sane band of the data away from the trained shapes (no extrapolation spikes) and its std is
calibrated on noisy landscapes. It has no Eq. 2 coefficients (``coef_`` is ``None``).

Other methods: ``method="ridge"`` is ridge regression on the standardised features with the
penalty chosen by exact (closed-form) leave-one-out error; ``method="ols"`` is the paper's plain
least squares. With fewer than 11 distinct shapes OLS is under-determined: it then returns the
minimum-norm interpolant, warns (``UserWarning``), and reports ``loo_mae_ = inf`` and an infinite
predictive standard deviation. When it is determined but unstable (leave-one-out MAE more than 3x
the residual noise sd, e.g. 2.73 vs 0.11 points on CIFAR-10) it also warns. On a synthetic Eq. 2
landscape (noise sd 0.2, 180 shapes, 10 interval-sampled) OLS predictions of the untrained shapes
are off by about 50 points, the default's by about 0.13.

Data: the paper's real results (Tables 3, 4, 5) are shipped in ``optuna_shape/data/
paper_results.csv`` (see :func:`load_paper_results`). Two notes on that transcription. (1) The
paper's energy columns are headed "kJ", but the values (e.g. 671.21 for one ImageNet32x32 image
on a Tesla K20) cannot be kilojoules per inference and look millijoule-scale; the CSV column
``energy_j`` stores the numbers exactly as printed, unit unverified. (2) The paper reports two
different real accuracies for one shape in two places: D1 (46, 6.0) is 58.94 (energy goal) and
59.11 (size goal); D2 (34, 4.5) is 53.55 (energy) and 53.81 (size). :func:`paper_accuracies`
averages repeated shapes. The extra column ``batch_size`` is the batch size the paper used for
latency / energy.

One module: the four fitting methods are one estimator sharing the Eq. 2 features, their
standardisation and one prediction path, and the paper's results that the evidence above was
measured on load here with it.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError

from optuna_shape.space.shape import Shape, as_shapes

__all__ = [
    "FEATURE_NAMES",
    "METHODS",
    "AccuracyModel",
    "inverse_polynomial_features",
    "load_paper_results",
    "paper_accuracies",
]

FEATURE_NAMES: tuple[str, ...] = (
    "1/w", "1/d", "1/w^2", "1/(dw)", "1/d^2", "1/w^3", "1/(w^2 d)", "1/(w d^2)", "1/d^3",
)
"""Names of the nine base features of paper Eq. 2, in order."""

METHODS: tuple[str, ...] = ("bayes", "ridge", "ols")
"""The linear Eq. 2 fitting methods of :class:`AccuracyModel` (it also accepts ``"gp"``)."""

_DEGREE_GROUP = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
_N_FEATURES = 9
_LAMBDA_MAX = 1e10  # prior precision cap (standardised units): the coefficient is effectively 0
_ALPHA_MAX = 1e14  # noise precision cap (standardised units): noise sd 1e-7 of the y spread
_RIDGE_GRID = np.logspace(-10, 5, 151)
_OLS_UNSTABLE_RATIO = 3.0

ShapesLike = Iterable[Shape | tuple[int, float]] | np.ndarray


def _shape_array(shapes: ShapesLike) -> np.ndarray:
    """``(n, 2)`` float array of (depth, width), validated; errors name the offending shape."""
    arr: np.ndarray | None = None
    if isinstance(shapes, np.ndarray):
        arr = np.asarray(shapes, dtype=float)
    else:
        if not isinstance(shapes, Sequence):
            shapes = list(shapes)
        try:
            arr = np.asarray(shapes, dtype=float)
        except (TypeError, ValueError):
            arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != 2:
        if isinstance(shapes, np.ndarray) and shapes.size == 0:
            return np.empty((0, 2))
        arr = np.array([tuple(s) for s in as_shapes(shapes)], dtype=float).reshape(-1, 2)
    depth, width = arr[:, 0], arr[:, 1]
    bad = ~(np.isfinite(depth) & np.isfinite(width)) | (depth <= 0) | (width <= 0)
    bad |= np.isfinite(depth) & (depth != np.round(depth))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        d, w = arr[i]
        if not (math.isfinite(d) and math.isfinite(w)):
            why = "depth and width must be finite"
        elif d != round(d):
            why = "depth must be a whole number"
        elif d <= 0:
            why = "depth must be > 0"
        else:
            why = "width must be > 0"
        raise ValueError(f"invalid shape #{i} (depth={d:g}, width={w:g}): {why}")
    return arr


def inverse_polynomial_features(shapes: ShapesLike) -> np.ndarray:
    """The nine inverse-polynomial base features of paper Eq. 2 for each shape.

    Columns, in order: ``1/w, 1/d, 1/w², 1/(dw), 1/d², 1/w³, 1/(w²d), 1/(wd²), 1/d³``
    (see :data:`FEATURE_NAMES`).

    Args:
        shapes: :class:`~optuna_shape.space.shape.Shape` objects, ``(depth, width)`` pairs, or an
            ``(n, 2)`` array.

    Returns:
        A float array of shape ``(n, 9)``.

    Raises:
        ValueError: naming the first shape whose depth or width is not positive and finite, or
            whose depth is not a whole number.

    Example:
        >>> inverse_polynomial_features([(2, 4.0)])[0].tolist()
        [0.25, 0.5, 0.0625, 0.125, 0.25, 0.015625, 0.03125, 0.0625, 0.125]
    """
    arr = _shape_array(shapes)
    inv_d = 1.0 / arr[:, 0]
    inv_w = 1.0 / arr[:, 1]
    return np.column_stack(
        [
            inv_w,
            inv_d,
            inv_w**2,
            inv_d * inv_w,
            inv_d**2,
            inv_w**3,
            inv_w**2 * inv_d,
            inv_w * inv_d**2,
            inv_d**3,
        ]
    )


def _evidence_fit(
    z: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    init: tuple[float, np.ndarray] | None = None,
    max_iter: int = 300,
    tol: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, int]:
    """Evidence maximisation for ``y = z @ m + noise`` with grouped Gaussian priors.

    ``z`` is centred and ``y`` centred and scaled (the intercept is integrated out, costing one
    degree of freedom). Returns ``(mean, covariance, alpha, lambdas, n_iter)``.
    """
    n, p = z.shape
    n_groups = int(groups.max()) + 1
    ztz = z.T @ z
    zty = z.T @ y
    if init is None:
        alpha, lam = 10.0, np.ones(n_groups)
    else:
        alpha, lam = init[0], init[1].copy()
    counts = np.bincount(groups, minlength=n_groups)
    eye = np.eye(p, dtype=bool)
    prev_mean = np.zeros(p)
    prev_sd = math.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is returned)
        prec = lam[groups]
        a = alpha * ztz
        a[eye] += prec
        sigma = np.linalg.inv(a)
        mean = alpha * (sigma @ zty)
        gamma = 1.0 - prec * sigma[eye]
        resid = y - z @ mean
        g_sum = np.bincount(groups, weights=gamma, minlength=n_groups)
        m_sq = np.bincount(groups, weights=mean * mean, minlength=n_groups)
        lam = np.minimum(np.maximum(g_sum, 1e-12 * counts) / np.maximum(m_sq, 1e-300), _LAMBDA_MAX)
        rss = float(resid @ resid)
        alpha = min(max(n - 1 - float(gamma.sum()), 1e-12) / max(rss, 1e-300), _ALPHA_MAX)
        # Converged when the coefficients and the noise sd (standardised units) stop moving.
        noise_sd = alpha**-0.5
        if np.max(np.abs(mean - prev_mean)) < tol and abs(noise_sd - prev_sd) < tol:
            break
        prev_mean, prev_sd = mean, noise_sd
    prec = lam[groups]
    sigma = np.linalg.inv(alpha * ztz + np.diag(prec))
    mean = alpha * (sigma @ zty)
    return mean, sigma, alpha, lam, n_iter


class AccuracyModel(RegressorMixin, BaseEstimator):
    """Predicts the accuracy of a shape from its depth and width (paper Eq. 2-3).

    A linear model ``y = v^T x + b`` on the nine inverse-polynomial features ``x`` of paper Eq. 2.
    The default ``method="bayes"`` fits it as a Bayesian linear model on standardised features with
    one prior precision per polynomial degree, set by evidence maximisation; it stays accurate from
    about ten trained shapes on and gives a predictive standard deviation. ``"ridge"`` chooses a
    single ridge penalty by exact leave-one-out error; ``"ols"`` is the paper's plain least squares.
    Repeated trainings of one shape (duplicate shapes) are allowed.

    Args:
        method: ``"bayes"`` (default), ``"ridge"``, ``"ols"`` or ``"gp"`` (the search's
            posterior, see the module docstring).
        max_iter: maximum number of evidence-maximisation iterations (``"bayes"`` only).
        tol: convergence tolerance on the coefficients and noise sd, in units of the accuracies'
            standard deviation (``"bayes"`` only).
        trend: ``method="gp"`` only: the posterior's trend across shapes, as a model family's
            ``accuracy_trend`` (``"paper"``, the default, or ``"smooth"``); the linear methods
            are the paper's Eq. 2 and refuse another.

    Attributes:
        coef_: the nine coefficients ``v`` in the units of the raw Eq. 2 features.
        intercept_: the bias ``b``.
        n_train_: number of training points (duplicates counted).
        n_shapes_: number of distinct training shapes.
        noise_std_: estimated noise standard deviation, in accuracy units.
        r2_: coefficient of determination on the training data.
        loo_mae_: leave-one-out mean absolute error, in accuracy units, in closed form from the
            hat matrix (``e_i / (1 - h_ii)``) at the fitted hyperparameters / selected penalty,
            so slightly optimistic for ``"bayes"`` and ``"ridge"``; exact for ``"ols"``
            (``inf`` when OLS is under-determined). Leaving out one of several trainings of a
            shape leaves the others in, as in any LOO over points.
        alpha_: noise precision, ``lambdas_``: prior precision per degree group (standardised
            units, ``"bayes"``), ``ridge_penalty_``: selected penalty (``"ridge"``).

    Example:
        >>> shapes = [(d, w) for d in (10, 16, 22, 28) for w in (1.0, 2.0, 3.0, 4.0)]
        >>> accs = [95 - 3 / w - 20 / d for d, w in shapes]
        >>> model = AccuracyModel().fit(shapes, accs)
        >>> mean, std = model.predict([(40, 2.5)], return_std=True)
        >>> round(float(mean[0]), 2)
        93.3
    """

    def __init__(self, method: str = "bayes", max_iter: int = 300, tol: float = 1e-5,
                 trend: str = "paper") -> None:
        self.method = method
        self.max_iter = max_iter
        self.tol = tol
        self.trend = trend

    # ------------------------------------------------------------------ fitting
    def fit(self, shapes: ShapesLike, accuracies: Iterable[float]) -> AccuracyModel:
        """Fit the model to trained shapes and their measured accuracies.

        Args:
            shapes: the trained shapes (``Shape`` objects or ``(depth, width)`` pairs); a shape
                may appear several times (repeated trainings).
            accuracies: one accuracy per shape, in any units (fraction or percent).

        Returns:
            ``self``.

        Raises:
            ValueError: unknown method or trend, or a trend other than the paper's without
                ``method="gp"``; lengths differ; a non-finite accuracy (named with its
                index); an invalid shape; fewer than two distinct shapes.

        Example:
            >>> m = AccuracyModel(method="ridge").fit([(10, 1), (16, 2), (22, 4)], [90, 93, 95])
            >>> m.n_shapes_
            3
        """
        if self.method not in (*METHODS, "gp"):
            raise ValueError(
                f"method must be one of {', '.join(METHODS)}, gp, got {self.method!r}")
        if self.trend != "paper" and self.method != "gp":
            raise ValueError(f"trend={self.trend!r} needs method='gp' (method={self.method!r} "
                             "fits the paper's Eq. 2 features)")
        shape_arr = _shape_array(shapes)
        y = np.asarray(list(accuracies) if not isinstance(accuracies, np.ndarray) else accuracies,
                       dtype=float).ravel()
        if len(y) != len(shape_arr):
            raise ValueError(
                f"got {len(shape_arr)} shapes but {len(y)} accuracies; they must match one-to-one"
            )
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"accuracy #{i} is {float(y[i])!r} for shape "
                f"({shape_arr[i, 0]:g}, {shape_arr[i, 1]:g}); accuracies must be finite"
            )
        n_shapes = len(np.unique(shape_arr, axis=0))
        if n_shapes < 2:
            raise ValueError(f"need at least 2 distinct shapes to fit, got {n_shapes}")

        if self.method == "gp":
            return self._fit_gp(shape_arr, y, n_shapes)
        x = inverse_polynomial_features(shape_arr)
        n = len(y)
        self.x_mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale <= 0] = 1.0
        self.x_scale_ = scale
        z = (x - self.x_mean_) / scale
        self.y_mean_ = float(y.mean())
        y_scale = float(y.std())
        self.y_scale_ = y_scale if y_scale > 0 else 1.0
        yc = (y - self.y_mean_) / self.y_scale_
        self.n_train_ = n
        self.n_shapes_ = n_shapes

        if self.method == "bayes":
            coef_z, loo_err = self._fit_bayes(z, yc)
        elif self.method == "ridge":
            coef_z, loo_err = self._fit_ridge(z, yc)
        else:
            coef_z, loo_err = self._fit_ols(z, yc)

        self.coef_z_ = coef_z
        self.coef_ = coef_z * self.y_scale_ / scale
        self.intercept_ = float(self.y_mean_ - self.coef_ @ self.x_mean_)
        resid = yc - z @ coef_z
        tss = float(yc @ yc)
        rss = float(resid @ resid)
        self.r2_ = 1.0 - rss / tss if tss > 0 else (1.0 if rss == 0 else 0.0)
        self.loo_mae_ = float(np.mean(np.abs(loo_err)) * self.y_scale_)
        self.noise_std_ = float(math.sqrt(self._noise_var_z) * self.y_scale_)
        if (
            self.method == "ols"
            and math.isfinite(self.loo_mae_)
            and self.loo_mae_ > _OLS_UNSTABLE_RATIO * max(self.noise_std_, 1e-12)
        ):
            warnings.warn(
                f"OLS is unstable on these {self.n_shapes_} shapes: leave-one-out MAE "
                f"{self.loo_mae_:.3g} is more than {_OLS_UNSTABLE_RATIO:g}x the residual noise sd "
                f"{self.noise_std_:.3g}; predictions away from the trained shapes are unreliable. "
                "Use method='bayes'.",
                UserWarning,
                stacklevel=2,
            )
        return self

    def _fit_gp(self, shape_arr: np.ndarray, y: np.ndarray, n_shapes: int) -> AccuracyModel:
        from optuna_shape.models.posterior import ShapePosterior

        shapes = [Shape(int(d), float(w)) for d, w in shape_arr]
        post = ShapePosterior(shapes, trend=self.trend).fit(shapes, y)
        self.posterior_ = post
        self.coef_ = None
        self.intercept_ = None
        self.n_train_ = len(y)
        self.n_shapes_ = n_shapes
        self.noise_std_ = float(post.noise_.sigma0)
        mean, _ = post.predict(shapes)
        rss = float(np.sum((y - mean) ** 2))
        tss = float(np.sum((y - y.mean()) ** 2))
        self.r2_ = 1.0 - rss / tss if tss > 0 else (1.0 if rss == 0 else 0.0)
        self.loo_mae_ = float(np.mean(np.abs(post.loo_residuals())))
        return self

    def _fit_bayes(self, z: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        groups = _DEGREE_GROUP
        mean, sigma, alpha, lam, n_iter = _evidence_fit(
            z, yc, groups, max_iter=self.max_iter, tol=self.tol)
        self.alpha_, self.lambdas_, self.n_iter_ = alpha, lam, n_iter
        self._post_cov_z = sigma
        self._noise_var_z = 1.0 / alpha
        # Leave-one-out residuals of the linear smoother at the fitted hyperparameters:
        # e_i / (1 - h_ii), with h = diag(alpha z Sigma z^T) + 1/n (the intercept).
        n = len(yc)
        h = alpha * np.einsum("ij,jk,ik->i", z, sigma, z) + 1.0 / n
        resid = yc - z @ mean
        return mean, resid / np.maximum(1.0 - h, 1e-12)

    def _fit_ridge(self, z: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(yc)
        u, s, vt = np.linalg.svd(z, full_matrices=False)
        uty = u.T @ yc
        shrink = s**2 / (s**2 + _RIDGE_GRID[:, None])  # (grid, p)
        hat = (u**2) @ shrink.T + 1.0 / n  # (n, grid)
        fitted = u @ (shrink * uty).T  # (n, grid)
        ok = np.all(hat < 1 - 1e-10, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            loo_all = (yc[:, None] - fitted) / (1.0 - hat)
        score = np.where(ok, np.mean(loo_all**2, axis=0), np.inf)
        best = int(np.argmin(score))  # the largest penalty always has h < 1 for n >= 2
        lam = float(_RIDGE_GRID[best])
        loo = loo_all[:, best]
        self.ridge_penalty_ = lam
        coef = vt.T @ ((s / (s**2 + lam)) * uty)
        f = s**2 / (s**2 + lam)
        resid = yc - z @ coef
        dof = max(n - 1 - float(f.sum()), 1.0)
        noise = max(float(resid @ resid) / dof, 1e-14)
        self._noise_var_z = noise
        self._post_cov_z = noise * (vt.T * (1.0 / (s**2 + lam))) @ vt
        return coef, loo

    def _fit_ols(self, z: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(yc)
        u, s, vt = np.linalg.svd(z, full_matrices=False)
        rank = int(np.sum(s > s[0] * 1e-12)) if s.size and s[0] > 0 else 0
        u, s, vt = u[:, :rank], s[:rank], vt[:rank]
        coef = vt.T @ ((u.T @ yc) / s)
        resid = yc - z @ coef
        h = (u**2).sum(axis=1) + 1.0 / n
        dof = n - 1 - rank
        if rank < _N_FEATURES or dof <= 0:
            warnings.warn(
                f"OLS on {self.n_shapes_} distinct shapes is under-determined for "
                f"{_N_FEATURES + 1} coefficients (rank {rank + 1}, residual dof {dof}): returning "
                "the minimum-norm interpolant; predictions away from the trained shapes are "
                "unreliable, loo_mae_ and the predictive std are infinite. Use method='bayes'.",
                UserWarning,
                stacklevel=3,
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = np.where(h < 1 - 1e-9, resid / (1.0 - h), np.inf)
        noise = float(resid @ resid) / dof if dof > 0 else math.inf
        self._noise_var_z = noise
        if rank < _N_FEATURES or not math.isfinite(noise):
            self._post_cov_z = np.full((_N_FEATURES, _N_FEATURES), np.inf)
        else:
            self._post_cov_z = noise * (vt.T * (1.0 / s**2)) @ vt
        return coef, loo

    # --------------------------------------------------------------- predicting
    def predict(
        self, shapes: ShapesLike, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy of each shape, in the units of the training accuracies.

        Args:
            shapes: ``Shape`` objects, ``(depth, width)`` pairs or an ``(n, 2)`` array.
            return_std: also return the predictive standard deviation (parameter uncertainty and
                the estimated noise of one training run).

        Returns:
            ``mean`` (shape ``(n,)``), or ``(mean, std)`` when ``return_std`` is true.

        Raises:
            sklearn.exceptions.NotFittedError: if called before :meth:`fit`.
            ValueError: naming an invalid shape.

        Example:
            >>> m = AccuracyModel().fit([(10, 1), (16, 2), (22, 4), (28, 1)], [90, 93, 95, 92])
            >>> mean, std = m.predict([(16, 1)], return_std=True)
            >>> bool(std[0] > 0)
            True
        """
        if self.method == "gp" and hasattr(self, "posterior_"):
            mean, std = self.posterior_.predict(_shape_array(shapes))
            if not return_std:
                return mean
            noise = self.posterior_.noise_std(_shape_array(shapes))
            return mean, np.sqrt(std**2 + noise**2)
        if not hasattr(self, "coef_z_"):
            raise NotFittedError(
                "This AccuracyModel instance is not fitted yet; call fit(shapes, accuracies) "
                "before predict()."
            )
        z = (inverse_polynomial_features(shapes) - self.x_mean_) / self.x_scale_
        mean = z @ self.coef_z_ * self.y_scale_ + self.y_mean_
        if not return_std:
            return mean
        cov = self._post_cov_z
        if not np.all(np.isfinite(cov)):
            return mean, np.full(len(mean), np.inf)
        param_var = np.einsum("ij,jk,ik->i", z, cov, z)
        var = self._noise_var_z * (1.0 + 1.0 / self.n_train_) + np.maximum(param_var, 0.0)
        return mean, np.sqrt(var) * self.y_scale_


def load_paper_results() -> list[dict[str, Any]]:
    """The paper's result rows (Tables 3, 4 and 5) from the bundled CSV.

    Numbers are converted to ``int`` / ``float``; cells the paper leaves as ``-`` are ``None``.

    Example:
        >>> rows = load_paper_results()
        >>> sum(r["space"] == "D1" for r in rows)
        39
    """
    text = resources.files("optuna_shape").joinpath("data/paper_results.csv").read_text()
    rows = []
    ints = {"table", "depth", "batch_size"}
    floats = {"width", "acc_expected", "acc_real", "latency_ms", "energy_j", "size_mb"}
    for raw in csv.DictReader(text.splitlines()):
        row: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ints:
                row[key] = int(value) if value else None
            elif key in floats:
                row[key] = float(value) if value else None
            else:
                row[key] = value
        rows.append(row)
    return rows


def paper_accuracies(
    dataset: str | None = None, space: str | None = None
) -> tuple[list[Shape], np.ndarray]:
    """Distinct shapes and their real accuracies from the paper, selected by dataset and/or space.

    A shape reported in several rows gets the mean of its real accuracies (the paper repeats most
    shapes with the same value; two shapes differ, see the module docstring).

    Args:
        dataset: ``"MNIST"``, ``"CIFAR-10"``, ``"CIFAR-100"`` or ``"ImageNet32x32"``.
        space: ``"A"``, ``"B"``, ``"C"``, ``"D1"`` or ``"D2"``.

    Example:
        >>> shapes, acc = paper_accuracies(space="D1")
        >>> len(shapes), len(paper_accuracies(space="D2")[0])
        (30, 23)
    """
    groups: dict[Shape, list[float]] = {}
    for row in load_paper_results():
        if dataset is not None and row["dataset"] != dataset:
            continue
        if space is not None and row["space"] != space:
            continue
        if row["acc_real"] is None:
            continue
        groups.setdefault(Shape(row["depth"], row["width"]), []).append(row["acc_real"])
    if not groups:
        raise ValueError(f"no paper results for dataset={dataset!r}, space={space!r}")
    shapes = list(groups)
    return shapes, np.array([float(np.mean(v)) for v in groups.values()])
