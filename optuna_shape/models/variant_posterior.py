"""A posterior over (shape, precision) candidates built on the posterior over shapes.

One training of a shape yields one accuracy per precision (the trained fp32 network, converted
after training), so the precisions of a training are not independent observations: fitting
:class:`~optuna_shape.models.posterior.ShapePosterior` on every precision's value would count one
training's seed noise several times. Instead the shape posterior is fitted on the values of the
*reference* precision only (the highest one measured, normally fp32: one observation per
training, so the noise model stays exact), and a candidate's accuracy is

    f(shape, p) = f_ref(shape) − drop(shape, p)

with ``drop`` the measured mean drop (reference − p) of that shape when it was trained. For an
untrained shape the drop is the mean of the measured drops of ``p`` over trained shapes (0 before
any), and the spread of those drops is added to the candidate's variance (and to its draws), so
a precision whose drop varies between shapes is not predicted more surely than it was measured.

Pure numpy; the methods mirror those of :class:`ShapePosterior` that the adaptive policy uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from optuna_shape.models.posterior import NoiseEstimate, ShapePosterior
from optuna_shape.space.precision import PRECISIONS
from optuna_shape.space.shape import Shape, Variant

__all__ = ["VariantPosterior", "reference_precision"]


def reference_precision(precisions: Sequence[str]) -> str:
    """The highest of ``precisions`` (canonical order): the one the shape posterior is fitted on.

    Raises:
        ValueError: no precision given.
    """
    known = [p for p in PRECISIONS if p in set(precisions)]
    if not known:
        raise ValueError(f"no known precision among {list(precisions)!r}")
    return known[0]


class VariantPosterior:
    """Posterior of the accuracy of (shape, precision) candidates (see the module docstring).

    Build it with :meth:`fit`. ``predict``, ``covariance``, ``sample``, ``noise_std`` and
    ``with_fantasies`` take :class:`~optuna_shape.space.shape.Variant` lists.

    Example:
        >>> grid = [Shape(d, w) for d in (10, 16, 22, 28) for w in (1.0, 2.0, 3.0, 4.0)]
        >>> cands = [Variant(s.depth, s.width, p) for s in grid for p in ("fp32", "int8")]
        >>> acc = {s: 95 - 3 / s.width - 20 / s.depth for s in grid[::3]}
        >>> values = {Variant(s.depth, s.width, "fp32"): [a] for s, a in acc.items()}
        >>> values |= {Variant(s.depth, s.width, "int8"): [a - 1.0] for s, a in acc.items()}
        >>> post = VariantPosterior.fit(cands, values)
        >>> mean, _ = post.predict([Variant(16, 2.0, "fp32"), Variant(16, 2.0, "int8")])
        >>> round(float(mean[0] - mean[1]), 6)
        1.0
    """

    def __init__(self, base: ShapePosterior, reference: str,
                 drops: Mapping[tuple[Shape, str], float],
                 mean_drop: Mapping[str, float], drop_var: Mapping[str, float]) -> None:
        self.base = base
        self.reference = reference
        self.drops = dict(drops)
        self.mean_drop = dict(mean_drop)
        self.drop_var = dict(drop_var)

    @classmethod
    def fit(cls, domain: Sequence[Variant],
            values: Mapping[Variant, Sequence[float]],
            partial: Mapping[Variant, Sequence[tuple[float, float]]] | None = None,
            trend: str = "paper") -> VariantPosterior:
        """Fit from the measured values of every candidate (each training of a shape lists one
        value under each of its precisions).

        Args:
            domain: the candidates (their base shapes define the input scaling).
            values: candidate → its measured accuracies, one per successful training; may hold
                candidates outside ``domain`` (e.g. a precision over a limit): their values are
                evidence too.
            partial: candidate → (forecast final accuracy, its std) of trainings stopped
                early; those of the reference precision enter the shape posterior as
                :meth:`~optuna_shape.models.posterior.ShapePosterior.with_partial` observations.
            trend: the shape posterior's trend (``ShapePosterior(trend=)``).

        Raises:
            ValueError: no value of any precision.
        """
        reference = reference_precision([v.precision for v in values])
        bases = list(dict.fromkeys(v.shape for v in domain))
        shapes: list[Shape] = []
        ys: list[float] = []
        for v, vs in values.items():
            if v.precision == reference:
                shapes += [v.shape] * len(vs)
                ys += [float(x) for x in vs]
        base = ShapePosterior(bases or list(dict.fromkeys(shapes)), trend=trend).fit(shapes, ys)
        rows = [(v.shape, m, sd) for v, ps in (partial or {}).items()
                if v.precision == reference for m, sd in ps]
        if rows:
            base = base.with_partial([r[0] for r in rows], [r[1] for r in rows],
                                      [r[2] for r in rows])
        ref_mean = {v.shape: float(np.mean(vs)) for v, vs in values.items()
                    if v.precision == reference and len(vs)}
        drops: dict[tuple[Shape, str], float] = {}
        by_precision: dict[str, list[float]] = {}
        for v, vs in values.items():
            if v.precision == reference or not len(vs) or v.shape not in ref_mean:
                continue
            d = ref_mean[v.shape] - float(np.mean(vs))
            drops[(v.shape, v.precision)] = d
            by_precision.setdefault(v.precision, []).append(d)
        mean_drop = {p: float(np.mean(ds)) for p, ds in by_precision.items()}
        # predictive variance of a new shape's drop: spread² · (1 + 1/n)
        drop_var = {p: (float(np.var(ds, ddof=1)) * (1.0 + 1.0 / len(ds)) if len(ds) > 1
                        else 0.0) for p, ds in by_precision.items()}
        return cls(base, reference, drops, mean_drop, drop_var)

    # ------------------------------------------------------------------ pieces
    def drop(self, v: Variant) -> tuple[float, float]:
        """(drop, extra variance) of candidate ``v``: its measured drop when its shape was
        trained, else the precision's mean drop and the spread of the measured drops."""
        if v.precision == self.reference:
            return 0.0, 0.0
        measured = self.drops.get((v.shape, v.precision))
        if measured is not None:
            return measured, 0.0
        return self.mean_drop.get(v.precision, 0.0), self.drop_var.get(v.precision, 0.0)

    def _drops(self, variants: Sequence[Variant]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.drop(v) for v in variants]
        return (np.array([d for d, _ in pairs], dtype=float).reshape(-1),
                np.array([e for _, e in pairs], dtype=float).reshape(-1))

    @property
    def noise_(self) -> NoiseEstimate:
        """The shape posterior's seed-noise estimate."""
        return self.base.noise_

    @property
    def unit_scale_(self) -> float:
        """The shape posterior's unit scale (1 for percent, 0.01 for fractions)."""
        return self.base.unit_scale_

    # ------------------------------------------------------------------ outputs
    def predict(self, variants: Sequence[Variant]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of each candidate's latent accuracy."""
        variants = list(variants)
        mean, std = self.base.predict([v.shape for v in variants])
        d, extra = self._drops(variants)
        return mean - d, np.sqrt(std**2 + extra)

    def covariance(self, variants: Sequence[Variant]) -> np.ndarray:
        """Posterior covariance of the candidates' latent accuracies (drops of untrained
        candidates independent)."""
        variants = list(variants)
        _, extra = self._drops(variants)
        return self.base.covariance([v.shape for v in variants]) + np.diag(extra)

    def sample(self, variants: Sequence[Variant], n_draws: int,
               rng: np.random.Generator) -> np.ndarray:
        """Joint draws ``(n_draws, len(variants))``: draws of the shapes, minus the drops (plus
        the drop spread for untrained candidates)."""
        variants = list(variants)
        bases = list(dict.fromkeys(v.shape for v in variants))
        at = {s: i for i, s in enumerate(bases)}
        draws = self.base.sample(bases, n_draws, rng)[:, [at[v.shape] for v in variants]]
        d, extra = self._drops(variants)
        out = draws - d
        if np.any(extra > 0):
            out = out + rng.standard_normal(out.shape) * np.sqrt(extra)
        return out

    def noise_std(self, variants: Sequence[Variant]) -> np.ndarray:
        """Seed-noise std of one training, at each candidate's shape."""
        return self.base.noise_std([v.shape for v in variants])

    def with_fantasies(self, variants: Sequence[Variant]) -> VariantPosterior:
        """A copy conditioned on the pending trainings listed (one entry per precision per
        training, as the evidence lists them): one fantasy per training of each shape."""
        per: Counter[tuple[Shape, str]] = Counter((v.shape, v.precision) for v in variants)
        count: dict[Shape, int] = {}
        for (s, _), k in per.items():
            count[s] = max(count.get(s, 0), k)
        shapes = [s for s, k in count.items() for _ in range(k)]
        return VariantPosterior(self.base.with_fantasies(shapes), self.reference, self.drops,
                                self.mean_drop, self.drop_var)
