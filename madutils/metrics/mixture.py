"""Diagnostics of the 25-mode grid experiment (the paper's E11, Figures 14 and 15).

The paper's point for Gaussian mixtures in a fully synthetic loop: modes are lost one by one,
and the average per-mode variance and recall track the loss, while the total variance does not.
This module measures exactly these quantities, for many seeds at once (leading seed axis):

- :func:`modes_covered`: how many of the real modes the samples still cover;
- :func:`high_quality_share`: the share of samples close to some real mode;
- :func:`modal_variance`: the average per-component variance of a fitted mixture;
- :func:`total_variance` (from samples) and :func:`mixture_total_variance` (from parameters).

:func:`mixture_metrics` returns the three per-generation numbers a loop records under the names
of :data:`madutils.metrics.METRICS`. The grid itself (mode means and standard deviation) is
defined once, in :mod:`madutils.data.distributions`
(:func:`~madutils.data.distributions.grid_means`,
:data:`~madutils.data.distributions.GRID_MODE_STD`), for both the sampler ``GridMixture`` and
the references here; :func:`grid_mode_means` and :data:`GRID_MODE_STD` are those same objects.

Every function refuses NaN or infinite input, and covariances that are not positive
semi-definite beyond round-off (:func:`madutils.linalg.check_psd`), with a ``ValueError`` naming
the argument and the first bad seed (or seed and component).
"""

from __future__ import annotations

import torch

from madutils._validation import check_positive_number
from madutils.data.distributions import GRID_MODE_STD
from madutils.data.distributions import grid_means as grid_mode_means
from madutils.linalg import check_finite_replicates, check_psd

__all__ = [
    "GRID_MODE_STD",
    "grid_mode_means",
    "high_quality_share",
    "mixture_metrics",
    "mixture_total_variance",
    "modal_variance",
    "mode_assignments",
    "mode_counts",
    "modes_covered",
    "total_variance",
]


def mode_assignments(
    samples: torch.Tensor,
    mode_means: torch.Tensor | None = None,
    mode_std: float = GRID_MODE_STD,
    *,
    radius: float = 3.0,
) -> torch.Tensor:
    """The real mode each sample belongs to, or -1 for none.

    A sample belongs to its nearest mode mean if it lies within ``radius * mode_std`` of it
    (Euclidean distance), and to no mode otherwise. With the grid defaults (spacing 1, standard
    deviation 0.1, radius 3) the balls have radius 0.3 and do not overlap, and a sample of a
    real mode falls inside its ball with probability ``1 - exp(-radius**2 / 2) = 0.989`` (the
    chi-square distribution with two degrees of freedom).

    Parameters
    ----------
    samples : Tensor, shape (n_seeds, n_samples, d)
    mode_means : Tensor, shape (n_modes, d), optional
        Real mode means; default :func:`grid_mode_means`.
    mode_std : float, default 0.1
        Standard deviation of each real mode (per coordinate).
    radius : float, default 3.0
        Membership radius in units of ``mode_std``.

    Returns
    -------
    Tensor of int64, shape (n_seeds, n_samples)
        Index into ``mode_means``, or -1.
    """
    samples, mode_means = _check_samples_and_modes(samples, mode_means)
    mode_std = check_positive_number(mode_std, "mode_std")
    radius = check_positive_number(radius, "radius")
    distance, nearest = torch.cdist(samples, mode_means.expand(len(samples), -1, -1)).min(-1)
    return torch.where(distance <= radius * mode_std, nearest, -1)


def mode_counts(
    samples: torch.Tensor,
    mode_means: torch.Tensor | None = None,
    mode_std: float = GRID_MODE_STD,
    *,
    radius: float = 3.0,
) -> torch.Tensor:
    """Number of samples belonging to each real mode (rule of :func:`mode_assignments`).

    Returns
    -------
    Tensor of int64, shape (n_seeds, n_modes)
    """
    samples, mode_means = _check_samples_and_modes(samples, mode_means)
    assigned = mode_assignments(samples, mode_means, mode_std, radius=radius)
    n_modes = len(mode_means)
    one_hot = torch.nn.functional.one_hot(assigned + 1, n_modes + 1)  # column 0: no mode
    return one_hot.sum(1)[:, 1:]


def modes_covered(
    samples: torch.Tensor,
    mode_means: torch.Tensor | None = None,
    mode_std: float = GRID_MODE_STD,
    *,
    radius: float = 3.0,
    min_share: float = 0.1,
) -> torch.Tensor:
    """Number of real modes the samples still cover, per seed.

    Rule: a sample belongs to a mode if its nearest mode mean is within ``radius`` standard
    deviations (:func:`mode_assignments`). Mode ``k`` is covered when it holds at least
    ``min_share * n_samples / n_modes`` samples, that is ``min_share`` times the number it would
    hold in expectation under the real, equally weighted mixture.

    Why ``min_share = 0.1``: a lost mode in a self-consuming loop does not vanish at once; its
    weight decays, or the component serving it drifts away and leaves a thin tail behind. Asking
    for a tenth of the expected share counts a mode as lost only once it has almost no mass
    left, yet ignores the few stray samples a neighbouring component puts there. Fluctuations
    of a fully present mode never trigger it at the sizes of the loops: with 1,000 samples a
    present mode expects 39.6 samples inside its ball and is counted lost below 4, a binomial
    probability of about 4e-14; with 250 samples (9.9 expected, lost at 0) about 4e-5. The
    rule follows the GAN mode-collapse literature on the same grid (VEEGAN, PacGAN), which
    counts samples within three standard deviations of each mode and calls a mode lost when it
    holds only a small fraction of its expected count.

    Parameters
    ----------
    samples : Tensor, shape (n_seeds, n_samples, d)
    mode_means : Tensor, shape (n_modes, d), optional
        Real mode means; default :func:`grid_mode_means` (25 modes).
    mode_std : float, default 0.1
        Standard deviation of each real mode.
    radius : float, default 3.0
        Membership radius in units of ``mode_std``.
    min_share : float, default 0.1
        Fraction of the expected count a mode must hold to count as covered; in (0, 1].

    Returns
    -------
    Tensor of int64, shape (n_seeds,)
    """
    samples, mode_means = _check_samples_and_modes(samples, mode_means)
    min_share = check_positive_number(min_share, "min_share")
    if min_share > 1:
        raise ValueError(f"min_share must be in (0, 1]; got {min_share!r}")
    counts = mode_counts(samples, mode_means, mode_std, radius=radius)
    expected = samples.shape[1] / len(mode_means)
    return (counts >= min_share * expected).sum(-1)


def high_quality_share(
    samples: torch.Tensor,
    mode_means: torch.Tensor | None = None,
    mode_std: float = GRID_MODE_STD,
    *,
    radius: float = 3.0,
) -> torch.Tensor:
    """Share of samples that belong to some real mode (within ``radius`` standard deviations).

    About 0.989 for real grid samples with the defaults; a precision-like number that falls
    when components merge and put mass between the modes.

    Returns
    -------
    Tensor of float64, shape (n_seeds,)
    """
    assigned = mode_assignments(samples, mode_means, mode_std, radius=radius)
    return (assigned >= 0).to(torch.float64).mean(-1)


def modal_variance(covariances: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Average per-component variance of a fitted mixture, ``trace(Sigma_k) / d`` averaged.

    Without ``weights`` every component counts the same (the paper's "average per-mode
    variance"; 0.01 for a mixture that has recovered the real grid). With ``weights`` the
    average is weighted, ``sum_k w_k trace(Sigma_k) / d``: the within-component part of the total
    variance in the law of total variance, which ignores components that hold almost no mass.

    Parameters
    ----------
    covariances : Tensor, shape (n_seeds, n_components, d, d)
        Finite, symmetric positive semi-definite (up to round-off).
    weights : Tensor, shape (n_seeds, n_components), optional
        Mixture weights (normalised here to sum to one per seed).

    Returns
    -------
    Tensor, shape (n_seeds,)
    """
    covariances = _check_covariances(covariances)
    per_component = covariances.diagonal(dim1=-2, dim2=-1).mean(-1)  # (S, K)
    if weights is None:
        return per_component.mean(-1)
    weights = _check_weights(weights, covariances.shape[:2])
    return (weights * per_component).sum(-1) / weights.sum(-1)


def total_variance(samples: torch.Tensor) -> torch.Tensor:
    """Trace of the sample covariance (denominator ``n - 1``), per seed.

    For the real grid mixture this is ``2 * (2 + 0.01) = 4.02``: per coordinate, the variance of
    the uniform distribution on {-2, ..., 2} (2) plus the within-mode variance (0.01).

    Parameters
    ----------
    samples : Tensor, shape (n_seeds, n_samples, d)
        Needs ``n_samples >= 2``.

    Returns
    -------
    Tensor, shape (n_seeds,)
    """
    samples = _check_samples(samples)
    if samples.shape[1] < 2:
        raise ValueError(f"samples must hold at least 2 samples per seed; got {samples.shape[1]}")
    return samples.var(dim=1, correction=1).sum(-1)


def mixture_total_variance(
    weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor
) -> torch.Tensor:
    """Trace of the covariance of a mixture, from its parameters, per seed.

    ``trace(sum_k w_k (Sigma_k + mu_k mu_k^T) - mu mu^T)`` with ``mu = sum_k w_k mu_k``, computed
    as ``sum_k w_k trace(Sigma_k) + sum_k w_k ||mu_k - mu||^2`` (no cancellation).

    Parameters
    ----------
    weights : Tensor, shape (n_seeds, n_components)
        Normalised here to sum to one per seed.
    means : Tensor, shape (n_seeds, n_components, d)
    covariances : Tensor, shape (n_seeds, n_components, d, d)
        Finite, symmetric positive semi-definite (up to round-off).

    Returns
    -------
    Tensor, shape (n_seeds,)
    """
    covariances = _check_covariances(covariances)
    weights = _check_weights(weights, covariances.shape[:2])
    means = torch.as_tensor(means).to(covariances)
    if means.shape != covariances.shape[:-1]:
        raise ValueError(
            f"means must have shape {tuple(covariances.shape[:-1])} to match covariances; "
            f"got {tuple(means.shape)}"
        )
    check_finite_replicates(means, "means", core_ndim=2)
    weights = weights / weights.sum(-1, keepdim=True)
    overall = (weights.unsqueeze(-1) * means).sum(1, keepdim=True)
    within = (weights * covariances.diagonal(dim1=-2, dim2=-1).sum(-1)).sum(-1)
    between = (weights * (means - overall).square().sum(-1)).sum(-1)
    return within + between


def mixture_metrics(
    samples: torch.Tensor,
    covariances: torch.Tensor,
    *,
    mode_means: torch.Tensor | None = None,
    mode_std: float = GRID_MODE_STD,
) -> dict[str, torch.Tensor]:
    """The per-generation numbers of the grid experiment, under the names of ``METRICS``.

    Parameters
    ----------
    samples : Tensor, shape (n_seeds, n_samples, 2)
        Synthetic samples of the fitted mixture (drawn with the loop's λ).
    covariances : Tensor, shape (n_seeds, n_components, 2, 2)
        The fitted mixture's ``covariances_``.
    mode_means, mode_std
        The real modes; default the paper's grid.

    Returns
    -------
    dict
        ``"modes_covered"`` (:func:`modes_covered`, int64), ``"modal_variance"``
        (:func:`modal_variance`, unweighted) and ``"total_variance"`` (:func:`total_variance` of
        the samples), each a tensor of shape (n_seeds,).
    """
    return {
        "modes_covered": modes_covered(samples, mode_means, mode_std),
        "modal_variance": modal_variance(covariances),
        "total_variance": total_variance(samples),
    }


# ---------------------------------------------------------------------- validation helpers


def _check_samples(samples) -> torch.Tensor:
    samples = torch.as_tensor(samples)
    if not samples.is_floating_point():
        samples = samples.to(torch.float64)
    if samples.ndim != 3:
        raise ValueError(
            "samples must be 3-D with shape (n_seeds, n_samples, n_features); "
            f"got {samples.ndim} dimensions (shape {tuple(samples.shape)})"
        )
    if samples.shape[1] == 0:
        raise ValueError("samples must hold at least one sample per seed; got 0")
    check_finite_replicates(samples, "samples", core_ndim=2)
    return samples


def _check_samples_and_modes(samples, mode_means) -> tuple[torch.Tensor, torch.Tensor]:
    samples = _check_samples(samples)
    if mode_means is None:
        mode_means = grid_mode_means()
    mode_means = torch.as_tensor(mode_means).to(samples)
    if mode_means.ndim != 2 or mode_means.shape[0] == 0:
        raise ValueError(
            "mode_means must be 2-D with shape (n_modes, n_features) and n_modes >= 1; "
            f"got shape {tuple(mode_means.shape)}"
        )
    if mode_means.shape[1] != samples.shape[2]:
        raise ValueError(
            "samples and mode_means must have the same number of features (last dimension); "
            f"got {samples.shape[2]} and {mode_means.shape[1]}"
        )
    check_finite_replicates(mode_means, "mode_means")
    return samples, mode_means


def _check_covariances(covariances) -> torch.Tensor:
    covariances = torch.as_tensor(covariances)
    if not covariances.is_floating_point():
        covariances = covariances.to(torch.float64)
    if covariances.ndim != 4 or covariances.shape[-1] != covariances.shape[-2]:
        raise ValueError(
            "covariances must have shape (n_seeds, n_components, d, d); "
            f"got {tuple(covariances.shape)}"
        )
    check_psd(covariances, "covariances")
    return covariances


def _check_weights(weights, shape: torch.Size) -> torch.Tensor:
    weights = torch.as_tensor(weights)
    weights = weights.to(torch.float64) if not weights.is_floating_point() else weights
    if weights.shape != shape:
        raise ValueError(
            f"weights must have shape {tuple(shape)} (n_seeds, n_components); "
            f"got {tuple(weights.shape)}"
        )
    check_finite_replicates(weights, "weights", core_ndim=1)
    if bool((weights < 0).any()) or bool((weights.sum(-1) <= 0).any()):
        raise ValueError("weights must be non-negative with a positive sum for every seed")
    return weights
