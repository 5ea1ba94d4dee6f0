"""Diagnostics of fitted Gaussian models across generations (the paper's Section 3.1)."""

from __future__ import annotations

import torch

__all__ = ["covariance_trace", "mean_drift"]


def covariance_trace(covariance: torch.Tensor) -> torch.Tensor:
    """Total variance ``tr(Sigma)`` of covariances of shape ``(..., d, d)``; shape ``(...)``."""
    return torch.diagonal(covariance, dim1=-2, dim2=-1).sum(-1)


def mean_drift(mean: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Squared distance ``||mean - reference||^2`` over the last axis; shape ``mean.shape[:-1]``."""
    return ((mean - reference) ** 2).sum(-1)
