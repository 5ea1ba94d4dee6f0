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


def _bartlett_wishart(df: torch.Tensor, factor: torch.Tensor, rng: torch.Generator):
    """Draw Wishart(df, L L^T) for each seed; ``df`` (S,) non-negative, may be < d."""
    n_seeds, dim = factor.shape[0], factor.shape[-1]
    rows = torch.arange(dim, device=factor.device, dtype=factor.dtype)
    dof = df.unsqueeze(-1) - rows  # chi-square degrees of freedom of the diagonal
    active = dof > 0  # rows at or beyond df are zero: the singular Wishart
    gamma = torch._standard_gamma(0.5 * dof.clamp_min(1.0), generator=rng)
    diagonal = torch.where(active, (2.0 * gamma).sqrt(), torch.zeros_like(dof))
    upper = torch.randn(
        n_seeds, dim, dim, dtype=factor.dtype, device=factor.device, generator=rng
    ).triu(diagonal=1)
    upper = upper * active.unsqueeze(-1)
    triangle = upper + torch.diag_embed(diagonal)
    root = factor @ triangle.mT
    return root @ root.mT


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
    count = torch.as_tensor(count, dtype=mean.dtype, device=mean.device).expand(n_seeds)
    z = torch.randn(n_seeds, dim, 1, dtype=mean.dtype, device=mean.device, generator=rng)
    scale = torch.where(count > 0, count.clamp_min(1).rsqrt(), torch.zeros_like(count))
    sample_mean = torch.where(
        (count > 0).unsqueeze(-1),
        mean + scale.unsqueeze(-1) * (factor @ z).squeeze(-1),
        torch.zeros_like(mean),
    )
    scatter = _bartlett_wishart((count - 1).clamp_min(0), factor, rng)
    return SufficientStatistics(count.clone(), sample_mean, scatter)
