"""Fréchet (2-Wasserstein) distances between Gaussians.

- :func:`gaussian_w2_squared`: closed-form squared 2-Wasserstein distance between two Gaussians
  given by their parameters; the Gaussian experiments report it between the fitted model and P_r.
- :func:`frechet_distance`: the same quantity between Gaussians fitted to two sample sets (the
  "FID" recipe, applied to whatever features it is given).

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

import numpy as np
import torch

from madutils._validation import check_same_dim
from madutils.linalg import check_finite_replicates, psd_sqrt, trace_sqrt_product

__all__ = ["frechet_distance", "gaussian_w2_squared"]


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
    real = torch.as_tensor(np.asarray(real) if not isinstance(real, torch.Tensor) else real)
    synthetic = torch.as_tensor(
        np.asarray(synthetic) if not isinstance(synthetic, torch.Tensor) else synthetic
    )
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
