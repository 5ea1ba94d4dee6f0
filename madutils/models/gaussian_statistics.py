"""Sufficient statistics of Gaussian samples and their exact sampling distribution.

A Gaussian fit needs only the count, the sample mean and the scatter matrix of its training
set. For ``m`` i.i.d. draws from N(mu, C) these are independent, with

    mean ~ N(mu, C / m),        scatter ~ Wishart(m - 1, C),

so a loop that only needs fitted parameters can draw them directly, at a cost that does not
grow with ``m`` (the "statistics" path, as opposed to the "samples" path that draws every
point). The Wishart matrix is drawn with the Bartlett decomposition, extended to the singular
case ``m - 1 < d`` (an upper-triangular factor whose rows beyond ``m - 1`` are zero), so fits
to fewer samples than dimensions come out exactly as rank deficient as they should. Training
sets built from several sources (fixed real data, fresh real data, samples of several models)
combine exactly with :meth:`SufficientStatistics.combine`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SufficientStatistics", "draw_gaussian_statistics"]


@dataclass
class SufficientStatistics:
    """Count, mean and scatter of a batch of sample sets.

    Attributes
    ----------
    count : Tensor, shape (n_seeds,)
        Number of samples (float64; may differ between seeds).
    mean : Tensor, shape (n_seeds, d)
        Sample mean (zeros for an empty set).
    scatter : Tensor, shape (n_seeds, d, d)
        ``sum_i (x_i - mean)(x_i - mean)^T``.
    """

    count: torch.Tensor
    mean: torch.Tensor
    scatter: torch.Tensor

    @classmethod
    def from_samples(cls, X: torch.Tensor) -> SufficientStatistics:
        """Statistics of samples ``X`` of shape ``(n_seeds, n, d)``."""
        mean = X.mean(dim=1)
        centred = X - mean.unsqueeze(1)
        count = torch.full((X.shape[0],), float(X.shape[1]), dtype=X.dtype, device=X.device)
        return cls(count, mean, centred.mT @ centred)

    @classmethod
    def empty(cls, n_seeds: int, dim: int, *, device=None, dtype=torch.float64):
        """Statistics of an empty set (the neutral element of :meth:`combine`)."""
        return cls(
            torch.zeros(n_seeds, dtype=dtype, device=device),
            torch.zeros(n_seeds, dim, dtype=dtype, device=device),
            torch.zeros(n_seeds, dim, dim, dtype=dtype, device=device),
        )

    def combine(self, other: SufficientStatistics) -> SufficientStatistics:
        """Statistics of the union of the two sample sets (exact pooled formula)."""
        total = self.count + other.count
        safe_total = total.clamp_min(1)
        w_self = (self.count / safe_total).unsqueeze(-1)
        mean = w_self * self.mean + (1 - w_self) * other.mean
        diff = (self.mean - other.mean).unsqueeze(-1)
        cross = (self.count * other.count / safe_total).view(-1, 1, 1) * (diff @ diff.mT)
        return SufficientStatistics(total, mean, self.scatter + other.scatter + cross)

    def covariance(self) -> torch.Tensor:
        """Unbiased covariance ``scatter / (count - 1)``; needs ``count >= 2`` for every seed."""
        if bool((self.count < 2).any()):
            raise ValueError("a covariance needs at least 2 samples per seed")
        return self.scatter / (self.count - 1).view(-1, 1, 1)


def _bartlett_root(df, normals: torch.Tensor, factor: torch.Tensor, rng: torch.Generator):
    """``B`` with ``B @ B.mT ~ Wishart(df, L L^T)`` per seed, by the Bartlett decomposition.

    ``df`` is an int or a tensor of shape (S,) (non-negative, may be < d: rows of the
    triangular factor at or beyond ``df`` are zero, the singular Wishart). ``normals`` holds
    the ``d (d - 1) / 2`` standard normals per seed for the strictly upper triangle.
    """
    n_seeds, dim = factor.shape[0], factor.shape[-1]
    upper = torch.triu_indices(dim, dim, offset=1, device=factor.device)
    if isinstance(df, int) and df >= dim:  # full rank, same df for every seed: fewest ops
        half_dof = torch.tensor([(df - i) / 2 for i in range(dim)], dtype=factor.dtype)
        chi = torch._standard_gamma(half_dof.to(factor.device).expand(n_seeds, dim), generator=rng)
        triangle = torch.zeros_like(factor)
        triangle.diagonal(dim1=-2, dim2=-1).copy_(chi.mul_(2).sqrt_())
        triangle[:, upper[0], upper[1]] = normals
        return factor @ triangle.mT
    rows = torch.arange(dim, device=factor.device, dtype=factor.dtype)
    dof = (df - rows) if isinstance(df, int) else (df.unsqueeze(-1) - rows)
    active = dof > 0
    gamma = torch._standard_gamma((0.5 * dof.clamp_min(1.0)).expand(n_seeds, dim), generator=rng)
    diagonal = (2.0 * gamma).sqrt() * active
    triangle = torch.diag_embed(diagonal)
    row_active = active.expand(n_seeds, dim)[:, upper[0]]
    triangle[:, upper[0], upper[1]] = normals * row_active
    return factor @ triangle.mT


def draw_gaussian_statistics(
    count, mean: torch.Tensor, factor: torch.Tensor, *, rng: torch.Generator
) -> SufficientStatistics:
    """Draw the statistics of ``count`` i.i.d. samples from N(mean, factor @ factor.mT).

    Parameters
    ----------
    count : int or Tensor of shape (n_seeds,)
        Number of samples per seed (0 gives empty statistics for that seed).
    mean : Tensor, shape (n_seeds, d)
    factor : Tensor, shape (n_seeds, d, d)
        Any ``L`` with ``L @ L.mT`` the covariance (it may be singular).
    rng : torch.Generator

    Returns
    -------
    SufficientStatistics
        Distributed exactly as :meth:`SufficientStatistics.from_samples` of such samples.
    """
    n_seeds, dim = mean.shape
    normals = torch.randn(
        n_seeds, dim + dim * (dim - 1) // 2, dtype=mean.dtype, device=mean.device, generator=rng
    )
    z, upper = normals[:, :dim], normals[:, dim:]
    if isinstance(count, int):  # the common case: the same size for every seed
        if count < 1:
            return SufficientStatistics.empty(n_seeds, dim, device=mean.device, dtype=mean.dtype)
        sample_mean = mean + (factor @ z.unsqueeze(-1)).squeeze(-1) * count**-0.5
        root = _bartlett_root(count - 1, upper, factor, rng)
        counts = torch.full((n_seeds,), float(count), dtype=mean.dtype, device=mean.device)
        return SufficientStatistics(counts, sample_mean, root @ root.mT)
    counts = count.to(dtype=mean.dtype, device=mean.device)
    present = counts > 0
    scale = counts.clamp_min(1).rsqrt() * present
    sample_mean = (mean + (factor @ z.unsqueeze(-1)).squeeze(-1) * scale.unsqueeze(-1)) * (
        present.unsqueeze(-1)
    )
    root = _bartlett_root((counts - 1).clamp_min(0), upper, factor, rng)
    return SufficientStatistics(counts.clone(), sample_mean, root @ root.mT)
