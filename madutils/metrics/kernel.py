"""The kernel distance ("KID") between two sets of features (Bińkowski et al. 2018).

The squared maximum mean discrepancy with the cubic polynomial kernel
``k(x, y) = (x·y / d + 1)^3``, estimated without bias, averaged over random subsets of both
sets: the Kernel Inception Distance recipe, applied to whatever features it is given (the
LeNet features in the image loops). Unlike the Fréchet distance, its estimator is unbiased
for every sample size, so values from different ``N`` can be compared, and an estimate can be
negative when the two distributions are equal.

:func:`kernel_distance` follows the recipe of ``torch-fidelity`` and ``torchmetrics``: 100
subsets of 1,000 points of each set by default, the within-set sums without their diagonal and
the cross-set sum over all pairs. Where a set has fewer points than ``subset_size``, the
subsets have as many points as the smaller set; where both sets are that small and equally
large, every subset is the whole of both sets, so one is computed. Subsets are drawn with the
random stream given, never with torch's global one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from madutils._validation import check_positive_int, check_same_dim
from madutils.linalg import check_finite_replicates

__all__ = ["KernelDistance", "kernel_distance", "mmd_squared_unbiased", "polynomial_kernel"]

#: Subsets and subset size of the KID recipe (torch-fidelity's and torchmetrics' defaults).
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> torch.Tensor:
    """``(gamma x·y + coef)^degree`` for every pair of rows; ``gamma`` defaults to ``1/d``.

    Parameters
    ----------
    x : Tensor, shape (m, d)
    y : Tensor, shape (n, d)
    degree : int
    gamma : float, optional
    coef : float

    Returns
    -------
    Tensor, shape (m, n)
    """
    gamma = 1.0 / x.shape[-1] if gamma is None else gamma
    return (gamma * (x @ y.mT) + coef) ** degree


def mmd_squared_unbiased(
    k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor
) -> torch.Tensor:
    """The unbiased estimate of the squared MMD from the three kernel matrices.

    ``sum_{i≠j} k(x_i, x_j) / (m (m-1)) + sum_{i≠j} k(y_i, y_j) / (n (n-1))
    - 2 sum_{i,j} k(x_i, y_j) / (m n)``.

    Parameters
    ----------
    k_xx : Tensor, shape (m, m)
    k_xy : Tensor, shape (m, n)
    k_yy : Tensor, shape (n, n)

    Returns
    -------
    Tensor, a scalar
    """
    m, n = k_xx.shape[-1], k_yy.shape[-1]
    within_x = (k_xx.sum() - torch.diagonal(k_xx).sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - torch.diagonal(k_yy).sum()) / (n * (n - 1))
    return within_x + within_y - 2 * k_xy.sum() / (m * n)


@dataclass(frozen=True)
class KernelDistance:
    """What :func:`kernel_distance` returns.

    Attributes
    ----------
    mean : float
        The mean of the subsets' unbiased squared-MMD estimates: the KID.
    std : float
        Their standard deviation (0 for a single subset).
    subsets : int
        Subsets computed.
    subset_size : int
        Points of each set per subset.
    """

    mean: float
    std: float
    subsets: int
    subset_size: int


def _as_features(values, name: str) -> torch.Tensor:
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features); got {tuple(tensor.shape)}"
        )
    if tensor.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 samples; got {tensor.shape[0]}")
    check_finite_replicates(tensor, name, core_ndim=2)
    return tensor.to(torch.float64)


def kernel_distance(
    real,
    synthetic,
    *,
    rng: torch.Generator | None = None,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> KernelDistance:
    """The KID of two sets of features: unbiased squared MMD, averaged over subsets.

    Parameters
    ----------
    real : array or Tensor, shape (N, D)
        Reference features (at least 2 rows).
    synthetic : array or Tensor, shape (M, D)
        Features of generated samples (at least 2 rows).
    rng : torch.Generator, optional
        Draws the subsets (on the CPU); needed unless every subset is the whole of both sets.
    subsets : int
        Subsets to average over.
    subset_size : int
        Points of each set per subset (at most the smaller set's size).
    degree, gamma, coef
        The polynomial kernel's (:func:`polynomial_kernel`).

    Returns
    -------
    KernelDistance
        Computed in float64.

    Raises
    ------
    ValueError
        If a set has the wrong shape, fewer than 2 rows or NaN/inf values, the feature counts
        differ, or subsets must be drawn and ``rng`` is missing.
    """
    check_positive_int(subsets, "subsets")
    check_positive_int(subset_size, "subset_size")
    real = _as_features(real, "real")
    synthetic = _as_features(synthetic, "synthetic").to(real.device)
    check_same_dim(real, synthetic, "real", "synthetic")
    n_real, n_synthetic = real.shape[0], synthetic.shape[0]
    size = min(subset_size, n_real, n_synthetic)
    if size == n_real == n_synthetic:
        subsets = 1  # every subset would be the whole of both sets
    elif rng is None:
        raise ValueError(
            f"kernel_distance draws {subsets} subsets of {size} of the {n_real} real and "
            f"{n_synthetic} synthetic points: pass rng="
        )
    estimates = []
    for _ in range(subsets):
        x, y = real, synthetic
        if size < n_real:
            x = real[torch.randperm(n_real, generator=rng)[:size].to(real.device)]
        if size < n_synthetic:
            y = synthetic[torch.randperm(n_synthetic, generator=rng)[:size].to(real.device)]
        kernel = {"degree": degree, "gamma": gamma, "coef": coef}
        estimates.append(
            mmd_squared_unbiased(
                polynomial_kernel(x, x, **kernel),
                polynomial_kernel(x, y, **kernel),
                polynomial_kernel(y, y, **kernel),
            )
        )
    values = torch.stack(estimates)
    std = float(values.std()) if subsets > 1 else 0.0
    return KernelDistance(float(values.mean()), std, subsets, size)
