"""Tail and marginal diagnostics for low-dimensional samples, batched over seeds.

The normalizing-flow experiment (E12) loses the tails of the Rosenbrock density first; these
two numbers show it without a picture:

- :func:`tail_share`: the share of samples beyond a high quantile of the real distribution
  (by construction about ``1 - q`` for real samples);
- :func:`marginal_wasserstein`: the 1-Wasserstein distance between the real and synthetic
  marginals, averaged over coordinates.

NaN or infinite samples are refused (``ValueError`` naming the argument and the first bad
seed): a NaN compares as "not beyond" and sorts last, so both numbers would otherwise look
plausible.
"""

from __future__ import annotations

import torch

from madutils._validation import check_fraction
from madutils.linalg import check_finite_replicates

__all__ = ["marginal_wasserstein", "real_quantile", "tail_share"]


def _check_samples(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise ValueError(f"{name} must be a tensor of shape (n_seeds, n, d); got {x!r:.60}")
    return check_finite_replicates(x, name, core_ndim=2)


def real_quantile(real: torch.Tensor, q: float = 0.99, coordinate: int = -1) -> torch.Tensor:
    """The ``q`` quantile of one coordinate of real samples ``(n_seeds, n, d)``; (n_seeds,)."""
    real = _check_samples(real, "real")
    q = check_fraction(q, "q")
    return torch.quantile(real[..., coordinate], q, dim=-1)


def tail_share(samples: torch.Tensor, threshold: torch.Tensor, coordinate: int = -1):
    """Share of ``samples`` ``(n_seeds, n, d)`` whose coordinate exceeds ``threshold``.

    ``threshold`` has shape ``(n_seeds,)`` or is a scalar, typically :func:`real_quantile`.
    Returns shape ``(n_seeds,)``. ``samples`` and ``threshold`` must be finite.
    """
    samples = _check_samples(samples, "samples")
    threshold = torch.as_tensor(threshold, dtype=samples.dtype, device=samples.device)
    check_finite_replicates(threshold, "threshold")
    beyond = samples[..., coordinate] > threshold.reshape(-1, 1)
    return beyond.double().mean(dim=-1)


def marginal_wasserstein(real: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
    """Mean over coordinates of the 1-D W1 distance between marginals; shape ``(n_seeds,)``.

    Both sets must hold the same number of samples per seed, so W1 is the mean absolute
    difference of the sorted values. ``real`` may have one seed (shared reference). Both must
    be finite.
    """
    real = _check_samples(real, "real")
    synthetic = _check_samples(synthetic, "synthetic")
    if real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(
            "real and synthetic must hold the same number of samples of the same dimension; "
            f"got {tuple(real.shape)} and {tuple(synthetic.shape)}"
        )
    a = torch.sort(real.to(synthetic.dtype), dim=1).values
    b = torch.sort(synthetic, dim=1).values
    return (a - b).abs().mean(dim=1).mean(dim=-1)
