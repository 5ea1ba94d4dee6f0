"""Batched linear algebra for covariance matrices that may be singular.

Self-consuming loops drive covariances towards zero, and fits to fewer samples than dimensions
are rank deficient, so every routine here works for positive *semi*-definite input and never
returns NaN for it. All functions accept leading batch dimensions.
"""

from __future__ import annotations

import torch

__all__ = ["psd_factor", "psd_sqrt", "trace_sqrt_product"]


def psd_sqrt(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of positive semi-definite matrices.

    Negative eigenvalues from round-off are clipped to zero.

    Parameters
    ----------
    cov : Tensor, shape (..., d, d)

    Returns
    -------
    Tensor, shape (..., d, d)
        ``R`` symmetric with ``R @ R = cov`` (up to round-off).
    """
    sym = 0.5 * (cov + cov.mT)
    eigenvalues, eigenvectors = torch.linalg.eigh(sym)
    root = eigenvalues.clamp_min(0).sqrt()
    return (eigenvectors * root.unsqueeze(-2)) @ eigenvectors.mT


def psd_factor(cov: torch.Tensor) -> torch.Tensor:
    """A factor ``L`` with ``L @ L.mT = cov`` for positive semi-definite matrices.

    Uses the Cholesky factor where it exists and the symmetric square root for the batch
    entries where it fails (singular or numerically indefinite covariances), so it is as fast
    as Cholesky in the common case and still correct for collapsed models.

    Parameters
    ----------
    cov : Tensor, shape (..., d, d)

    Returns
    -------
    Tensor, shape (..., d, d)
    """
    factor, info = torch.linalg.cholesky_ex(cov)
    failed = info != 0
    if bool(failed.any()):
        factor = factor.clone()
        factor[failed] = psd_sqrt(cov[failed])
    return factor


def trace_sqrt_product(factor_a: torch.Tensor, factor_b: torch.Tensor) -> torch.Tensor:
    """``tr((A B)^{1/2})`` for PSD ``A = Fa.mT @ Fa`` and ``B = Fb.mT @ Fb``.

    The eigenvalues of ``A B`` are the squared singular values of ``Fa @ Fb.mT``, so the trace
    of the square root is that matrix's nuclear norm: real, non-negative and finite even when
    ``A`` or ``B`` is singular. ``Fa`` may be a symmetric square root of ``A`` (shape
    ``(..., d, d)``) or centred data scaled by ``1/sqrt(n - 1)`` (shape ``(..., n, d)``), which is
    cheaper when ``n < d``.

    Parameters
    ----------
    factor_a : Tensor, shape (..., m, d)
    factor_b : Tensor, shape (..., p, d)

    Returns
    -------
    Tensor, shape (...)
    """
    return torch.linalg.svdvals(factor_a @ factor_b.mT).sum(-1)
