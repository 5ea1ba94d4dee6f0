"""Diagnostics of fitted Gaussian models across generations (the paper's Section 3.1).

Both refuse NaN or infinite input, and :func:`covariance_trace` a covariance that is not
positive semi-definite beyond round-off (:func:`madutils.linalg.check_psd`; zero, the outcome
of a collapsed loop, is accepted), with a ``ValueError`` naming the argument and the first bad
replicate.
"""

from __future__ import annotations

import torch

from madutils.linalg import check_finite_replicates, check_psd

__all__ = ["covariance_trace", "mean_drift"]


def covariance_trace(covariance: torch.Tensor) -> torch.Tensor:
    """Total variance ``tr(Sigma)`` of covariances of shape ``(..., d, d)``; shape ``(...)``.

    ``covariance`` must be finite, symmetric and positive semi-definite up to round-off.
    """
    check_psd(covariance, "covariance")
    return torch.diagonal(covariance, dim1=-2, dim2=-1).sum(-1)


def mean_drift(mean: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Squared distance ``||mean - reference||^2`` over the last axis; shape ``mean.shape[:-1]``.

    Both must be finite.
    """
    check_finite_replicates(mean, "mean", core_ndim=1)
    check_finite_replicates(reference, "reference", core_ndim=1)
    return ((mean - reference) ** 2).sum(-1)
