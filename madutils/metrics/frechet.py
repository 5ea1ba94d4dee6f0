"""Fréchet (2-Wasserstein) distances between Gaussians.

- :func:`gaussian_w2_squared`: closed-form squared 2-Wasserstein distance between two Gaussians
  given by their parameters; the Gaussian experiments report it between the fitted model and P_r.
- :func:`frechet_distance`: the same quantity between Gaussians fitted to two sample sets (the
  "FID" recipe, applied to whatever features it is given).
- :func:`frechet_distance_infinity`: the Fréchet distance extrapolated to infinitely many
  synthetic samples (FD∞, Chong & Forsyth 2020). The Fréchet distance of ``N`` samples is
  biased upwards by about ``c / N``, with a ``c`` that depends on the model, so two models (or
  two generations) compared at one ``N`` can rank wrongly; FD∞ fits ``FD_N = FD∞ + c / N`` over
  several ``N`` and reports the intercept.

Both compute ``tr((A B)^{1/2})`` as a nuclear norm (:func:`madutils.linalg.trace_sqrt_product`),
so they stay real, finite and non-negative when a covariance is singular (a collapsed
generation) or when there are fewer samples than features, where ``scipy.linalg.sqrtm`` returns
complex values or fails.

Both refuse garbage rather than return a plausible number: NaN or infinite input, and a
covariance that is not positive semi-definite beyond round-off
(:func:`madutils.linalg.check_psd`; a zero or rank-deficient covariance is accepted), raise
``ValueError`` naming the argument and the bad replicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from madutils._validation import check_same_dim
from madutils.linalg import check_finite_replicates, psd_sqrt, trace_sqrt_product

__all__ = [
    "FrechetExtrapolation",
    "frechet_distance",
    "frechet_distance_infinity",
    "gaussian_w2_squared",
]

#: Sample sizes FD∞ fits: evenly spaced from a fifth of the synthetic set to all of it.
FD_INFINITY_POINTS = 15
FD_INFINITY_SMALLEST = 0.2


def gaussian_w2_squared(
    mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor
) -> torch.Tensor:
    """Squared 2-Wasserstein distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    ``||mean_a - mean_b||^2 + tr(cov_a) + tr(cov_b) - 2 tr((cov_a cov_b)^{1/2})``.

    Parameters
    ----------
    mean_a, mean_b : Tensor, shape (..., d)
        Finite.
    cov_a, cov_b : Tensor, shape (..., d, d)
        Finite, symmetric and positive semi-definite up to round-off (the tolerance of
        :func:`madutils.linalg.check_psd`); zero or singular is fine. Leading dimensions
        broadcast.

    Returns
    -------
    Tensor, shape (...)

    Raises
    ------
    ValueError
        If an argument holds NaN or inf, a covariance is not a square matrix of the means'
        dimension, or is not symmetric positive semi-definite; the message names the argument
        and, for a batch, the first bad replicate.
    """
    for name, mean in (("mean_a", mean_a), ("mean_b", mean_b)):
        check_finite_replicates(mean, name, core_ndim=1)
    for name, cov, mean in (("cov_a", cov_a, mean_a), ("cov_b", cov_b, mean_b)):
        if mean.ndim < 1:
            raise ValueError(f"mean_{name[-1]} must have shape (..., d); got a scalar")
        if cov.ndim < 2 or cov.shape[-2:] != (mean.shape[-1], mean.shape[-1]):
            raise ValueError(
                f"{name} must have shape (..., d, d) with d = {mean.shape[-1]}, the dimension "
                f"of its mean; got {tuple(cov.shape)}"
            )
    # psd_sqrt checks each covariance (finite, symmetric, PSD) with the eigenvalues it computes
    cross = trace_sqrt_product(psd_sqrt(cov_a, name="cov_a"), psd_sqrt(cov_b, name="cov_b"))
    traces = torch.diagonal(cov_a, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(
        cov_b, dim1=-2, dim2=-1
    ).sum(-1)
    distance = ((mean_a - mean_b) ** 2).sum(-1) + traces - 2 * cross
    return distance.clamp_min(0)


def _mean_cov_factor(X: torch.Tensor, name: str):
    n = X.shape[-2]
    mean = X.mean(-2)
    centred = (X - mean.unsqueeze(-2)) / (n - 1) ** 0.5
    cov = centred.mT @ centred
    # the centred data is a factor of the covariance; cheaper than a d x d root when n <= d.
    # The covariance of finite data is PSD: psd_sqrt's check only guards against round-off.
    factor = centred if n <= X.shape[-1] else psd_sqrt(cov, name=f"the covariance of {name}")
    return mean, cov, factor


def _as_tensor(values) -> torch.Tensor:
    return values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))


def frechet_distance(real, synthetic) -> torch.Tensor:
    """Fréchet distance between Gaussians fitted to two sets of features.

    Parameters
    ----------
    real : array or Tensor, shape (..., N, D)
        Reference features (at least 2 rows).
    synthetic : array or Tensor, shape (..., M, D)
        Features of generated samples (at least 2 rows). Leading dimensions broadcast, so one
        real set can be compared with many synthetic sets at once.

    Returns
    -------
    Tensor, shape (...)
        Squared 2-Wasserstein distance between N(mean_r, cov_r) and N(mean_s, cov_s) with
        unbiased covariances; symmetric in its arguments, computed in float64.

    Raises
    ------
    ValueError
        If a set has the wrong shape, fewer than 2 rows, or NaN or infinite values (the message
        names the set and, for a batch, the first bad replicate).
    """
    real, synthetic = _as_tensor(real), _as_tensor(synthetic)
    for name, X in (("real", real), ("synthetic", synthetic)):
        if X.ndim < 2:
            raise ValueError(
                f"{name} must have shape (..., n_samples, n_features); got {tuple(X.shape)}"
            )
        if X.shape[-2] < 2:
            raise ValueError(f"{name} must hold at least 2 samples; got {X.shape[-2]}")
        check_finite_replicates(X, name, core_ndim=2)
    check_same_dim(real, synthetic, "real", "synthetic")
    mean_r, cov_r, factor_r = _mean_cov_factor(real.to(torch.float64), "real")
    mean_s, cov_s, factor_s = _mean_cov_factor(
        synthetic.to(device=real.device, dtype=torch.float64), "synthetic"
    )
    traces = torch.diagonal(cov_r, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(
        cov_s, dim1=-2, dim2=-1
    ).sum(-1)
    cross = trace_sqrt_product(factor_r, factor_s)
    return (((mean_r - mean_s) ** 2).sum(-1) + traces - 2 * cross).clamp_min(0)


@dataclass(frozen=True)
class FrechetExtrapolation:
    """What :func:`frechet_distance_infinity` returns.

    Attributes
    ----------
    value : float
        FD∞: the intercept of the least-squares line of the Fréchet distances against ``1/N``.
    slope : float
        The fitted ``c`` of ``FD_N = FD∞ + c / N``.
    sizes : tuple of int
        The synthetic sample sizes ``N``.
    distances : tuple of float
        The Fréchet distance of the first ``N`` points of one random order of the synthetic
        set, for each ``N``.
    """

    value: float
    slope: float
    sizes: tuple[int, ...]
    distances: tuple[float, ...]


def frechet_distance_infinity(
    real, synthetic, *, rng: torch.Generator, sizes=None
) -> FrechetExtrapolation:
    """The Fréchet distance extrapolated to infinitely many synthetic samples (FD∞).

    As Chong & Forsyth (2020) compute FID∞: the real set's Gaussian is fitted once to all of
    it; the synthetic set is put in one random order and the Fréchet distance of its first
    ``N`` points is computed for each size ``N``; a least-squares line through
    ``(1/N, FD_N)`` gives FD∞ as its value at ``1/N = 0``.

    Parameters
    ----------
    real : array or Tensor, shape (N_r, D)
        Reference features (at least 2 rows).
    synthetic : array or Tensor, shape (M, D)
        Features of generated samples.
    rng : torch.Generator
        Draws the order of the synthetic points (on the CPU).
    sizes : sequence of int, optional
        The sample sizes, each from 2 to ``M``, at least two different ones. Default:
        :data:`FD_INFINITY_POINTS` sizes evenly spaced from ``FD_INFINITY_SMALLEST * M`` to
        ``M`` (fewer where ``M`` is small; ``M`` must be at least 10).

    Returns
    -------
    FrechetExtrapolation

    Raises
    ------
    ValueError
        As :func:`frechet_distance`, and for sizes out of range or fewer than two of them.
    """
    real, synthetic = _as_tensor(real), _as_tensor(synthetic)
    if synthetic.ndim != 2:
        raise ValueError(
            f"synthetic must have shape (n_samples, n_features); got {tuple(synthetic.shape)}"
        )
    total = synthetic.shape[0]
    if sizes is None:
        if total < 10:
            raise ValueError(f"FD∞ needs at least 10 synthetic samples; got {total}")
        grid = np.linspace(FD_INFINITY_SMALLEST * total, total, FD_INFINITY_POINTS)
        sizes = sorted({int(round(n)) for n in grid})
    sizes = tuple(int(n) for n in sizes)
    bad = [n for n in sizes if not 2 <= n <= total]
    if bad or len(set(sizes)) < 2:
        raise ValueError(
            f"sizes must hold at least two different sample sizes from 2 to {total}, the "
            f"synthetic points; got {list(sizes)}"
        )
    order = torch.randperm(total, generator=rng).to(synthetic.device)
    shuffled = synthetic[order]
    distances = tuple(float(frechet_distance(real, shuffled[:n])) for n in sizes)
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, dtype=float), distances, 1)
    return FrechetExtrapolation(float(intercept), float(slope), sizes, distances)
