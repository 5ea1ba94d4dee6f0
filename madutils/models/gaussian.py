"""The multivariate Gaussian generative model of the paper's analytic experiments.

``fit`` estimates the sample mean and the unbiased sample covariance; ``sample`` draws from
N(mean, lam * covariance), the paper's sampling bias for Gaussians. Besides this explicit path,
the model can be fitted from
:class:`~madutils.models.gaussian_statistics.SufficientStatistics` and can draw the statistics
of ``n`` of its samples exactly without drawing them (see
:mod:`madutils.models.gaussian_statistics`), which is what makes long loops with large ``n``
cheap.
"""

from __future__ import annotations

import torch

from madutils._validation import check_finite, check_lam, check_positive_int
from madutils.linalg import psd_factor
from madutils.models.base import BatchedModel
from madutils.models.gaussian_statistics import SufficientStatistics, draw_gaussian_statistics

__all__ = ["GaussianModel"]


class GaussianModel(BatchedModel):
    """Gaussian fitted by sample mean and unbiased covariance, one per seed.

    The model has no settings. Learned attributes: ``mean_`` of shape ``(n_seeds, d)`` and
    ``covariance_`` of shape ``(n_seeds, d, d)`` (float64).

    Sampling bias: ``sample(n, lam)`` draws from N(mean_, lam * covariance_);
    ``lam = 1.0`` is unbiased, ``lam < 1`` less diverse (the paper's lambda for Gaussians).
    """

    _state_attributes = ("mean_", "covariance_")

    def __init__(self):
        pass

    def fit(self, X: torch.Tensor, y=None, *, rng: torch.Generator | None = None) -> GaussianModel:
        """Fit the sample mean and unbiased covariance of each seed.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n, d)
            Training data, ``n >= 2``.
        y : None
            Must be None (the model is unconditional).
        rng : torch.Generator, optional
            Unused (the fit draws no random numbers); accepted for the common protocol.

        Returns
        -------
        GaussianModel
            ``self``, fitted.
        """
        self._check_no_y(y)
        if X.ndim != 3:
            raise ValueError(
                f"X must have shape (n_seeds, n_samples, n_features); got {tuple(X.shape)}"
            )
        if X.shape[1] < 2:
            raise ValueError(
                f"X must hold at least 2 samples per seed to fit a covariance; got {X.shape[1]}"
            )
        check_finite(X, "X")
        return self.fit_statistics(SufficientStatistics.from_samples(X.to(torch.float64)))

    def fit_statistics(self, statistics: SufficientStatistics) -> GaussianModel:
        """Fit from the sufficient statistics of a training set (the exact fast path)."""
        self.mean_ = statistics.mean.clone()
        self.covariance_ = statistics.covariance()
        return self

    @property
    def n_seeds(self) -> int:
        self._check_is_fitted()
        return int(self.mean_.shape[0])

    def _factor(self, lam: float) -> torch.Tensor:
        factor = psd_factor(self.covariance_, name="covariance_")
        return factor if lam == 1.0 else factor * lam**0.5

    def sample(
        self, n: int, lam: float = 1.0, *, rng: torch.Generator, labels=None
    ) -> torch.Tensor:
        """Draw ``n`` samples per seed from N(mean_, lam * covariance_).

        Parameters
        ----------
        n : int
            Samples per seed.
        lam : float in (0, 1], default 1.0
            Sampling bias: scales the covariance.
        rng : torch.Generator
            Source of the normal draws.
        labels : None
            Must be None (the model is unconditional).

        Returns
        -------
        Tensor, shape (n_seeds, n, d)
        """
        self._check_no_labels(labels)
        self._check_is_fitted()
        n = check_positive_int(n, "n")
        lam = check_lam(lam)
        factor = self._factor(lam)
        z = torch.randn(
            *self.mean_.shape[:1],
            n,
            self.mean_.shape[1],
            dtype=factor.dtype,
            device=factor.device,
            generator=rng,
        )
        return self.mean_.unsqueeze(1) + z @ factor.mT

    def sample_statistics(
        self, n, lam: float = 1.0, *, rng: torch.Generator
    ) -> SufficientStatistics:
        """Draw the sufficient statistics of ``n`` samples without drawing the samples.

        Parameters
        ----------
        n : int or Tensor of shape (n_seeds,)
            Number of samples per seed (may differ between seeds; 0 allowed in a tensor).
        lam : float
            Sampling bias, as in :meth:`sample`.
        rng : torch.Generator
        """
        self._check_is_fitted()
        if not isinstance(n, torch.Tensor):
            n = check_positive_int(n, "n")
        lam = check_lam(lam)
        return draw_gaussian_statistics(n, self.mean_, self._factor(lam), rng=rng)
