"""Full-covariance Gaussian mixtures fitted by EM to many seeds at once.

This module holds :class:`GaussianMixtureModel`, the generative model of the paper's mixture
experiment (E11: a fully synthetic loop on a 25-mode grid). Every seed gets its own mixture, and
all seeds are estimated together by one batched torch program in float64: there is no Python loop
over seeds, only over EM iterations and (in the initialisation) over components. The diagnostics
of the grid experiment (modes covered, modal and total variance) live in
:mod:`madutils.metrics.mixture`; this module is about fitting, sampling and scoring only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from madutils._validation import (
    check_choice,
    check_finite,
    check_generator,
    check_lam,
    check_positive_int,
    check_positive_number,
)
from madutils.linalg import psd_factor
from madutils.models.base import BatchedModel

__all__ = ["GaussianMixtureModel"]

_INITS = ("k-means++", "random")
# Added to every component's soft count in the M-step, as scikit-learn does, so that a component
# no sample is responsible for gets a weight of about zero instead of a division by zero.
_EMPTY_COUNT = 10 * torch.finfo(torch.float64).eps
_LOG_2PI = math.log(2 * math.pi)
_LOG2_E = math.log2(math.e)
_LN_2 = math.log(2)

Parameters = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class GaussianMixtureModel(BatchedModel):
    """Gaussian mixture with full covariances, fitted by EM to each seed of a batch.

    Initialisation (:meth:`initial_parameters`), separately on each seed's data:

    1. choose ``n_components`` seed points from the data, by greedy k-means++ (``init=
       "k-means++"``: the first uniformly, each next one the best, by the k-means potential, of
       ``n_local_trials`` candidates drawn with probability proportional to the squared distance
       to the nearest seed point already chosen, as in scikit-learn's ``kmeans_plusplus``) or
       uniformly without replacement (``init="random"``);
    2. assign every sample to its nearest seed point (hard, one-hot responsibilities);
    3. run one M-step on these responsibilities: weights are the shares of samples, means and
       covariances those of each cell, with ``reg_covar`` added to the covariance diagonals.

    This is scikit-learn's hard-assignment initialisation (``init_params="kmeans"``) with the
    Lloyd iterations of k-means left out. EM then alternates E- and M-steps. A seed stops when the
    mean log-likelihood of its data changes by less than ``tol`` between two iterations (the same
    rule as scikit-learn's, which also applies one last M-step after the check), or after
    ``max_iter`` iterations; seeds that have stopped are left out of later iterations, so a batch
    costs what its slowest seeds cost, not ``max_iter`` iterations for all.

    Parameters
    ----------
    n_components : int, default 25
        Number of mixture components ``K`` per seed.
    max_iter : int, default 200
        Most EM iterations per seed.
    tol : float, default 1e-4
        Convergence threshold on the change of the mean log-likelihood per sample.
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance estimate, so that all covariances stay
        positive definite (a component on a single sample, or a collapsed loop).
    init : {"k-means++", "random"}, default "k-means++"
        How the seed points of the initialisation are chosen (see above).
    n_local_trials : int or None, default 20
        Candidates per k-means++ step; None takes scikit-learn's ``2 + floor(log(n_components))``
        (5 for 25 components). On real grid data that default left two components sharing a
        mode and another mode without one in 11% of seeds at 1,000 samples per seed and 20% at
        300 (200 seeds each), and EM did not repair it: the first generation of the grid
        experiment would start with modes already lost. With 20 candidates: none of 200 seeds
        at 1,000 samples (nor of 50 at 10,000), 1% at 300.

    Attributes
    ----------
    weights_ : Tensor, shape (n_seeds, n_components)
        Mixture weights; each row sums to one.
    means_ : Tensor, shape (n_seeds, n_components, n_features)
    covariances_ : Tensor, shape (n_seeds, n_components, n_features, n_features)
    n_iter_ : Tensor of int64, shape (n_seeds,)
        EM iterations run for each seed.
    converged_ : Tensor of bool, shape (n_seeds,)
        Whether each seed met ``tol`` within ``max_iter`` iterations.
    lower_bound_ : Tensor, shape (n_seeds,)
        Mean log-likelihood per sample of the training data under the final parameters (the
        value :meth:`score` returns for the training data; scikit-learn's ``lower_bound_`` is
        the value before its last M-step, so it can be slightly smaller).

    Notes
    -----
    All computations run in float64 on the device of the data (k-means++ ranks its candidates
    with float32 distances); the random generator passed as ``rng`` must live on the same
    device.

    Implementation: each E-step factors every covariance by Cholesky (``torch.linalg.
    cholesky_ex``, then ``solve_triangular`` for the precision and the diagonal for the log
    determinant) and writes each component's log-density as a quadratic form, linear in the
    features ``[vec(x x^T), x, 1]``; the log-densities of all samples and components are then
    one batched matrix product, normalised by log-sum-exp. The M-step's sufficient statistics are
    one more product. The data are centred per seed first, so the round-off of the expanded
    quadratic forms stays near ``eps * ||x||^2 / sigma^2`` of the centred data (about 1e-13 on
    the grid); the tests compare every estimate with scikit-learn's to 1e-8 or better. The
    features take ``n * (d * d + d + 1)`` numbers per seed: the model is meant for low
    dimension (the grid experiment has d = 2).
    """

    _state_attributes = ("weights_", "means_", "covariances_")

    def __init__(
        self,
        n_components: int = 25,
        max_iter: int = 200,
        tol: float = 1e-4,
        reg_covar: float = 1e-6,
        init: str = "k-means++",
        n_local_trials: int | None = 20,
    ) -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.init = init
        self.n_local_trials = n_local_trials

    # ------------------------------------------------------------------ validation

    def _check_params(self) -> None:
        check_positive_int(self.n_components, "n_components")
        check_positive_int(self.max_iter, "max_iter")
        check_positive_number(self.tol, "tol")
        check_positive_number(self.reg_covar, "reg_covar", allow_zero=True)
        check_choice(self.init, "init", _INITS)
        if self.n_local_trials is not None:
            check_positive_int(self.n_local_trials, "n_local_trials")

    def _check_data(self, X, name: str = "X") -> torch.Tensor:
        X = torch.as_tensor(X).to(torch.float64)
        if X.ndim != 3:
            raise ValueError(
                f"{name} must be 3-D with shape (n_seeds, n_samples, n_features); "
                f"got {X.ndim} dimensions (shape {tuple(X.shape)})"
            )
        if X.shape[0] == 0 or X.shape[2] == 0:
            raise ValueError(
                f"{name} must have at least one seed and one feature; got shape {tuple(X.shape)}"
            )
        check_finite(X, name)
        return X

    def _check_fitted_data(self, X) -> torch.Tensor:
        self._check_is_fitted()
        X = self._check_data(X)
        n_seeds, _, n_features = self.means_.shape
        if X.shape[0] != n_seeds or X.shape[2] != n_features:
            raise ValueError(
                f"X must have shape (n_seeds={n_seeds}, n_samples, n_features={n_features}) "
                f"to match the fitted model; got {tuple(X.shape)}"
            )
        if X.shape[1] == 0:
            raise ValueError("X must hold at least one sample per seed; got 0")
        return X

    # ------------------------------------------------------------------ fitting

    def initial_parameters(self, X, *, rng: torch.Generator) -> Parameters:
        """Starting point of EM for every seed (see the class docstring).

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)
        rng : torch.Generator
            Source of randomness for the choice of seed points.

        Returns
        -------
        weights : Tensor, shape (n_seeds, n_components)
        means : Tensor, shape (n_seeds, n_components, n_features)
        covariances : Tensor, shape (n_seeds, n_components, n_features, n_features)
        """
        self._check_params()
        X = self._check_data(X)
        self._check_enough_samples(X)
        check_generator(rng)
        shift = X.mean(1, keepdim=True)  # centred data: less round-off in _squared_distances
        X = X - shift
        if self.init == "k-means++":
            n_trials = self.n_local_trials
            if n_trials is None:
                n_trials = 2 + int(math.log(self.n_components))
            index = _kmeans_plusplus(X, self.n_components, n_trials, rng)
        else:
            weights = torch.ones(X.shape[:2], dtype=X.dtype, device=X.device)
            index = torch.multinomial(weights, self.n_components, replacement=False, generator=rng)
        centers = _take(X, index)  # (S, K, d)
        nearest = _squared_distances(X, centers.mT.contiguous()).argmin(-1)  # (S, n)
        resp = torch.nn.functional.one_hot(nearest, self.n_components).to(X.dtype)
        weights, means, covariances = _m_step(_Features.of(X), resp, self.reg_covar)
        return weights, means + shift, covariances

    def _check_enough_samples(self, X: torch.Tensor) -> None:
        if X.shape[1] < self.n_components:
            raise ValueError(
                f"X must hold at least n_components={self.n_components} samples per seed; "
                f"got n_samples={X.shape[1]}"
            )

    def fit(
        self,
        X,
        y=None,
        *,
        rng: torch.Generator | None = None,
        start: Parameters | None = None,
    ) -> GaussianMixtureModel:
        """Fit one mixture per seed by EM.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)
            Training data; converted to float64. Needs ``n_samples >= n_components``.
        y : None
            Must be None (the model is unconditional).
        rng : torch.Generator, optional
            Randomness of the initialisation; required unless ``start`` is given.
        start : tuple of Tensors, optional
            ``(weights, means, covariances)`` to start EM from instead of
            :meth:`initial_parameters` (shapes as its return values), for example to compare
            with another implementation from the same start.

        Returns
        -------
        self
        """
        self._check_no_y(y)
        self._check_params()
        X = self._check_data(X)
        self._check_enough_samples(X)
        if start is None:
            if rng is None:
                raise ValueError("rng must be a torch.Generator when no start is given; got None")
            start = self.initial_parameters(X, rng=rng)
        weights, means, covariances = self._check_start(X, start)

        # EM runs on data centred per seed (the mixture's mean is then near 0), which keeps the
        # round-off of the expanded quadratic forms small; the means are shifted back.
        shift = X.mean(1, keepdim=True)  # (S, 1, d)
        features = _Features.of(X - shift)
        means = means - shift
        n_seeds = X.shape[0]
        n_iter = torch.zeros(n_seeds, dtype=torch.int64, device=X.device)
        converged = torch.zeros(n_seeds, dtype=torch.bool, device=X.device)
        previous = torch.full((n_seeds,), -math.inf, dtype=X.dtype, device=X.device)
        coefficients = _coefficients(weights, means, covariances)
        active = torch.arange(n_seeds, device=X.device)
        for iteration in range(1, self.max_iter + 1):
            every = active.numel() == n_seeds
            features_a = features if every else features.seeds(active)
            log_likelihood, resp = _e_step(
                features_a, coefficients if every else coefficients[active]
            )
            w, m, c = _m_step(features_a, resp, self.reg_covar)
            weights[active], means[active], covariances[active] = w, m, c
            coefficients[active] = _coefficients(w, m, c)
            n_iter[active] = iteration
            done = (log_likelihood - previous[active]).abs() < self.tol
            previous[active] = log_likelihood
            converged[active[done]] = True
            active = active[~done]
            if active.numel() == 0:
                break

        self.weights_, self.means_, self.covariances_ = weights, means + shift, covariances
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.lower_bound_ = _log_density(features, coefficients).mean(-1)
        return self

    def _check_start(self, X: torch.Tensor, start: Parameters) -> Parameters:
        if not isinstance(start, (tuple, list)) or len(start) != 3:
            raise ValueError("start must be a tuple (weights, means, covariances)")
        S, _, d = X.shape
        K = self.n_components
        expected = {"weights": (S, K), "means": (S, K, d), "covariances": (S, K, d, d)}
        checked = []
        for (name, shape), value in zip(expected.items(), start, strict=True):
            value = torch.as_tensor(value).to(dtype=X.dtype, device=X.device)
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"start {name} must have shape {shape} for X of shape {tuple(X.shape)} "
                    f"and n_components={K}; got {tuple(value.shape)}"
                )
            check_finite(value, f"start {name}")
            checked.append(value.clone())  # EM updates the parameters in place
        return checked[0], checked[1], checked[2]

    # ------------------------------------------------------------------ using a fitted model

    def sample(
        self, n: int, lam: float = 1.0, *, rng: torch.Generator, labels=None
    ) -> torch.Tensor:
        """Draw ``n`` samples from each seed's mixture.

        Component indices are drawn first from the weights (``torch.multinomial``), then the
        standard normal draws; the sample is ``mean + sqrt(lam) * L @ z`` with
        ``L @ L.T = covariance`` of the drawn component (:func:`madutils.linalg.psd_factor`).

        Parameters
        ----------
        n : int
            Samples per seed.
        lam : float in (0, 1], default 1.0
            Sampling bias: scales every component's covariance by ``lam`` (1.0 = unbiased,
            < 1 = less diverse, samples pulled towards the component means). The paper runs
            the mixture at λ = 1 only, so λ < 1 is this project's extension.
        rng : torch.Generator
            Source of randomness, on the model's device.
        labels : None
            Must be None (the model is unconditional).

        Returns
        -------
        Tensor, shape (n_seeds, n, n_features)
        """
        self._check_no_labels(labels)
        return self.sample_components(n, lam, rng=rng)[0]

    def sample_components(
        self, n: int, lam: float = 1.0, *, rng: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`sample`'s draws together with the component each sample came from.

        The same random draws as ``sample(n, lam, rng=rng)``, so the samples are equal.

        Returns
        -------
        samples : Tensor, shape (n_seeds, n, n_features)
        components : Tensor of int64, shape (n_seeds, n)
        """
        self._check_is_fitted()
        n = check_positive_int(n, "n")
        lam = check_lam(lam)
        check_generator(rng)
        weights, means, covariances = self.weights_, self.means_, self.covariances_
        n_seeds, _, n_features = means.shape
        component = torch.multinomial(weights, n, replacement=True, generator=rng)  # (S, n)
        z = torch.randn(
            (n_seeds, n, n_features, 1), generator=rng, dtype=means.dtype, device=means.device
        )
        factor = _take(psd_factor(covariances, name="covariances_"), component)  # (S, n, d, d)
        samples = _take(means, component) + math.sqrt(lam) * (factor @ z).squeeze(-1)
        return samples, component

    def score_samples(self, X) -> torch.Tensor:
        """Log-density of each sample under its seed's mixture.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)

        Returns
        -------
        Tensor, shape (n_seeds, n_samples)
        """
        X = self._check_fitted_data(X)
        weights, means, covariances = (
            t.to(X) for t in (self.weights_, self.means_, self.covariances_)
        )
        share = weights / weights.sum(-1, keepdim=True)
        shift = (share.unsqueeze(-1) * means).sum(1, keepdim=True)  # the mixture's mean
        coefficients = _coefficients(weights, means - shift, covariances)
        return _log_density(_Features.of(X - shift), coefficients)

    def score(self, X) -> torch.Tensor:
        """Mean log-likelihood per sample, for each seed.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)

        Returns
        -------
        Tensor, shape (n_seeds,)
        """
        return self.score_samples(X).mean(-1)


# ---------------------------------------------------------------------- batched building blocks


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[s, index[s, j]]`` for every seed ``s``: (S, m, ...), (S, n) -> (S, n, ...)."""
    seeds = torch.arange(values.shape[0], device=values.device).unsqueeze(-1)
    return values[seeds, index]


def _squared_distances(points: torch.Tensor, X_columns: torch.Tensor) -> torch.Tensor:
    """Squared distances between points (S, m, d) and samples ``X_columns`` (S, d, n).

    ``||p||^2 + ||x||^2 - 2 p.x``, shape (S, m, n). The cross term is accumulated one feature
    at a time by broadcasting, which for the low dimensions of this model was 2-3 times faster
    on the CPU than a batched matrix product with an inner dimension of 2. Round-off, relative
    to the squared norms (so centre the data), can make values slightly negative; it only
    perturbs the sampling weights of k-means++ and near-ties of the nearest-seed assignment.
    """
    points = -2 * points
    cross = points[..., 0:1] * X_columns[:, None, 0]
    for feature in range(1, points.shape[-1]):
        cross.addcmul_(points[..., feature : feature + 1], X_columns[:, None, feature])
    cross.add_(0.25 * points.square().sum(-1, keepdim=True))
    return cross.add_(X_columns.square().sum(-2, keepdim=True))


def _kmeans_plusplus(
    X: torch.Tensor, n_centers: int, n_trials: int, rng: torch.Generator
) -> torch.Tensor:
    """Greedy k-means++ for every seed at once: indices (S, n_centers) of the seed points.

    Distances in float32: they only weigh the random choice of candidates and rank them, and
    this halves the memory traffic of the (S, n_trials, n) distance tables.
    """
    n_seeds, n_samples, _ = X.shape
    X = X.to(torch.float32)
    X_columns = X.mT.contiguous()
    uniform = torch.ones((n_seeds, n_samples), dtype=X.dtype, device=X.device)
    chosen = torch.empty((n_seeds, n_centers), dtype=torch.int64, device=X.device)
    chosen[:, :1] = torch.multinomial(uniform, 1, generator=rng)
    closest = _squared_distances(_take(X, chosen[:, :1]), X_columns).squeeze(1).clamp_min_(0)
    seeds = torch.arange(n_seeds, device=X.device)
    for c in range(1, n_centers):
        # Where every sample already coincides with a seed point, draw uniformly.
        exhausted = closest.sum(-1, keepdim=True) <= 0
        probs = torch.where(exhausted, uniform, closest)
        candidates = torch.multinomial(probs, n_trials, replacement=True, generator=rng)
        trial = _squared_distances(_take(X, candidates), X_columns)  # (S, T, n)
        torch.minimum(trial, closest.unsqueeze(1), out=trial)  # closest after adding a candidate
        best = trial.sum(-1).argmin(-1)  # (S,): the candidate that lowers the potential most
        closest = trial[seeds, best].clamp_min_(0)
        chosen[:, c] = candidates[seeds, best]
    return chosen


class _Features(NamedTuple):
    """``[vec(x x^T), x, 1]`` for every sample, in both layouts (each contiguous).

    Every quantity of EM is linear in these features: the (base-2) log-density of component
    ``k`` is ``rows @ coefficients[:, :, k]`` and the M-step's sufficient statistics are
    ``columns @ resp``, so E- and M-steps are each one batched matrix product instead of
    ``n_components`` small ones (both layouts are kept because products with a transposed view
    were several times slower). Memory grows as ``n * d**2``: meant for low dimension (the grid
    experiment has d = 2).
    """

    rows: torch.Tensor  # (S, n, d * d + d + 1)
    columns: torch.Tensor  # (S, d * d + d + 1, n)

    @classmethod
    def of(cls, X: torch.Tensor) -> _Features:
        n_seeds, n_samples, d = X.shape
        outer = (X.unsqueeze(-1) * X.unsqueeze(-2)).reshape(n_seeds, n_samples, d * d)
        rows = torch.cat([outer, X, X.new_ones(n_seeds, n_samples, 1)], dim=-1)
        return cls(rows, rows.mT.contiguous())

    def seeds(self, index: torch.Tensor) -> _Features:
        return _Features(self.rows[index], self.columns[index])


def _m_step(features: _Features, resp: torch.Tensor, reg_covar: float) -> Parameters:
    """Weights, means and covariances from responsibilities ``resp`` of shape (S, n, K).

    The same estimates as scikit-learn's ``_estimate_gaussian_parameters`` (soft counts plus
    ``10 * eps``), from the sufficient statistics ``resp.T @ features``.
    """
    d = math.isqrt(features.rows.shape[-1] - 1)  # d * d + d + 1 features; isqrt rounds to d
    statistics = (features.columns @ resp).mT  # (S, K, d * d + d + 1)
    soft_counts = statistics[..., -1]
    counts = soft_counts + _EMPTY_COUNT  # (S, K)
    means = statistics[..., d * d : d * d + d] / counts.unsqueeze(-1)
    second = statistics[..., : d * d].unflatten(-1, (d, d)) / counts[..., None, None]
    # sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / counts_k, expanded; exact algebra, also when the
    # soft count is about zero (empty component: covariance = reg_covar * I).
    outer_means = means.unsqueeze(-1) * means.unsqueeze(-2)
    covariances = second - outer_means * (2 - soft_counts / counts)[..., None, None]
    covariances.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
    weights = counts / counts.sum(-1, keepdim=True)
    return weights, means, covariances


def _coefficients(
    weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor
) -> torch.Tensor:
    """Coefficients ``c`` with ``log2(w_k N(x; mu_k, Sigma_k)) = features(x) @ c[:, k]``.

    From the Cholesky factor ``L`` of each covariance: precision ``L^{-T} L^{-1}`` (triangular
    solve) and ``log det Sigma = 2 sum log diag L``. In base 2 so that the E-step can use
    ``exp2``, which torch computes about twice as fast as ``exp`` for float64 on the CPU; the
    factor ``log2(e)`` is applied once here, not to every sample. Shape (S, d * d + d + 1, K).
    """
    cholesky, info = torch.linalg.cholesky_ex(covariances)
    if bool((info != 0).any()):
        raise ValueError(
            "a component covariance is not positive definite (it collapsed onto too few "
            "distinct samples); increase reg_covar or use fewer n_components"
        )
    d = covariances.shape[-1]
    eye = torch.eye(d, dtype=covariances.dtype, device=covariances.device)
    inverse_factor = torch.linalg.solve_triangular(cholesky, eye.expand_as(cholesky), upper=False)
    precision = inverse_factor.mT @ inverse_factor  # (S, K, d, d)
    precision_mean = (precision @ means.unsqueeze(-1)).squeeze(-1)  # (S, K, d)
    log_det = cholesky.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # log sqrt det Sigma
    constant = weights.log() - log_det - 0.5 * d * _LOG_2PI - 0.5 * (means * precision_mean).sum(-1)
    quadratic = -0.5 * precision.flatten(-2)
    natural = torch.cat([quadratic, precision_mean, constant.unsqueeze(-1)], dim=-1)
    return (natural * _LOG2_E).mT.contiguous()


def _log_density(features: _Features, coefficients: torch.Tensor) -> torch.Tensor:
    """Log-density (natural log) of the mixture at every sample, shape (S, n)."""
    log2_prob = features.rows @ coefficients  # (S, n, K)
    peak = log2_prob.amax(-1, keepdim=True)
    total = log2_prob.sub_(peak).exp2_().sum(-1, keepdim=True)
    return ((peak + total.log2()) * _LN_2).squeeze(-1)


def _e_step(features: _Features, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean log-likelihood (S,) and responsibilities (S, n, K) under the current parameters."""
    log2_prob = features.rows @ coefficients  # (S, n, K)
    peak = log2_prob.amax(-1, keepdim=True)
    resp = log2_prob.sub_(peak).exp2_()  # in place: one (S, n, K) buffer for the whole step
    total = resp.sum(-1, keepdim=True)
    log_density = (peak + total.log2()) * _LN_2
    return log_density.squeeze(-1).mean(-1), resp.div_(total)
