"""Effective sample size of a fresh-data loop (the paper's Figures 11 and 12).

A fresh-data loop that trains on ``n_real`` new real samples plus ``n_synthetic`` synthetic
samples each generation settles at a limiting distance to P_r. Its effective sample size
``n_e`` is the number of *real* samples whose Gaussian fit has the same expected distance.
``n_e / n_real >= 1`` means the synthetic data helped ("admissible"), ``< 1`` that it hurt.

The expected distance of a fit to ``n`` real samples, ``E W2^2(N(mu_n, Sigma_n), P_r)``, has no
closed form; :func:`real_fit_distance` estimates it by Monte Carlo with the exact sufficient
statistics (no samples drawn), and :func:`effective_sample_size` inverts that decreasing curve
by interpolation in log-log coordinates.

NaN or infinite input is refused with a ``ValueError`` naming it (``distance``, the results
``table``; the Gaussian statistics go through the checks of
:func:`~madutils.metrics.frechet.gaussian_w2_squared`).
"""

from __future__ import annotations

import numpy as np
import torch

from madutils._validation import check_positive_int
from madutils.data.distributions import GaussianDistribution
from madutils.metrics.frechet import gaussian_w2_squared
from madutils.models.gaussian_statistics import draw_gaussian_statistics

__all__ = ["effective_sample_size", "limiting_distance", "real_fit_distance"]


def real_fit_distance(
    n_values, distribution: GaussianDistribution, *, n_seeds: int = 1000, rng: torch.Generator
) -> np.ndarray:
    """Monte-Carlo estimate of ``E W2^2`` between P_r and a Gaussian fitted to ``n`` real samples.

    Parameters
    ----------
    n_values : sequence of int
        Training-set sizes, each >= 2.
    distribution : GaussianDistribution
        The real distribution P_r.
    n_seeds : int
        Monte-Carlo replicates per size.
    rng : torch.Generator

    Returns
    -------
    ndarray, shape (len(n_values),)
    """
    n_seeds = check_positive_int(n_seeds, "n_seeds")
    dist = distribution.to(rng.device)
    mean = dist.mean.expand(n_seeds, -1)
    factor = dist.factor.expand(n_seeds, -1, -1)
    out = []
    for n in n_values:
        if int(n) < 2:
            raise ValueError(f"n_values must all be >= 2 (a covariance needs 2 samples); got {n}")
        stats = draw_gaussian_statistics(int(n), mean, factor, rng=rng)
        distance = gaussian_w2_squared(stats.mean, stats.covariance(), dist.mean, dist.covariance)
        out.append(float(distance.mean()))
    return np.asarray(out)


def effective_sample_size(
    distance,
    n_real: int,
    distribution: GaussianDistribution,
    *,
    n_grid=None,
    n_seeds: int = 1000,
    rng: torch.Generator,
) -> np.ndarray:
    """Ratio ``n_e / n_real`` for limiting distances of fresh-data loops.

    Parameters
    ----------
    distance : float or array
        Limiting ``E W2^2`` of one or more loops (mean over seeds of the last generations).
    n_real : int
        Fresh real samples per generation of those loops.
    distribution : GaussianDistribution
        The real distribution P_r.
    n_grid : sequence of int, optional
        Sizes at which the real-fit curve is estimated; default 40 log-spaced sizes from
        ``max(2, n_real // 100)`` to ``1000 * n_real``. Beyond the grid the curve is extended
        with the slope of its end segments (the curve is close to a power law there).
    n_seeds : int
        Monte-Carlo replicates per grid point.
    rng : torch.Generator

    Returns
    -------
    ndarray
        ``n_e / n_real`` with the shape of ``distance``.
    """
    n_real = check_positive_int(n_real, "n_real")
    distance = np.asarray(distance, dtype=float)
    if np.any(distance <= 0) or not np.all(np.isfinite(distance)):
        bad = distance[~(np.isfinite(distance) & (distance > 0))]
        raise ValueError(
            f"distance must be positive and finite; got {bad.size} of {distance.size} values "
            f"that are not, e.g. {float(bad.flat[0])}"
        )
    if n_grid is None:
        low = max(2, n_real // 100)
        n_grid = np.unique(np.geomspace(low, 1000 * n_real, 40).round().astype(int))
    n_grid = np.asarray(n_grid)
    curve = real_fit_distance(n_grid, distribution, n_seeds=n_seeds, rng=rng)
    # the curve decreases in n; interpolate log n against log distance
    log_n, log_d = np.log(n_grid), np.log(curve)
    order = np.argsort(log_d)
    log_target = np.log(distance)
    log_ne = np.interp(log_target, log_d[order], log_n[order])
    slope_hi = (log_n[-1] - log_n[-2]) / (log_d[-1] - log_d[-2])  # small distances, large n
    slope_lo = (log_n[1] - log_n[0]) / (log_d[1] - log_d[0])
    below = log_target < log_d[-1]
    above = log_target > log_d[0]
    log_ne = np.where(below, log_n[-1] + slope_hi * (log_target - log_d[-1]), log_ne)
    log_ne = np.where(above, log_n[0] + slope_lo * (log_target - log_d[0]), log_ne)
    return np.exp(log_ne) / n_real


def limiting_distance(table, *, metric: str = "w2_squared", tail: int = 10) -> float:
    """Mean of ``metric`` over all seeds and the last ``tail`` generations of a results table."""
    tail = check_positive_int(tail, "tail")
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValueError(
            f"metric {metric!r} is not in the table; it has {sorted(set(table['metric']))}"
        )
    last = rows["generation"].max()
    if last < tail:
        raise ValueError(f"tail must be at most the number of generations ({last}); got {tail}")
    values = rows.loc[rows["generation"] > last - tail, "value"].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(
            f"table contains NaN or infinite values of metric {metric!r} in its last {tail} "
            f"generations; got {int((~np.isfinite(values)).sum())} of {values.size}"
        )
    return float(rows.loc[rows["generation"] > last - tail, "value"].mean())
