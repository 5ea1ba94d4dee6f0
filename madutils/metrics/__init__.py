"""Metrics recorded by the loops; :data:`METRICS` documents every name in one place.

Submodules hold the computations: :mod:`.frechet` (Wasserstein/Fréchet distances),
:mod:`.gaussian` (Gaussian diagnostics), :mod:`.manifold` (precision, recall, density,
coverage), :mod:`.mixture` (mode diagnostics of the 25-mode grid), :mod:`.tails` (tails and
marginals of low-dimensional samples), :mod:`.effective` (effective sample size).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_METRICS",
    "MANIFOLD_METRICS",
    "METRICS",
    "MODEL_METRICS",
    "NEEDS_SAMPLES",
    "SAMPLE_METRICS",
]

#: Every metric name that can appear in a results table, with its definition.
METRICS = {
    "w2_squared": "squared 2-Wasserstein distance between the fitted Gaussian N(mu_t, Sigma_t) "
    "and P_r, in closed form (lambda not applied)",
    "cov_trace": "tr(Sigma_t), the total variance of the fitted Gaussian",
    "mean_drift": "||mu_t - mu_1||^2, squared drift of the fitted mean from generation 1's "
    "(the martingale's starting point; 0 at generation 1)",
    "mean_error": "||mu_t - mu_r||^2, squared distance of the fitted mean from the real mean",
    "frechet": "Fréchet distance between Gaussians fitted to n_eval real and n_eval synthetic "
    "samples (synthetic drawn with lambda)",
    "fid": "image loops: Fréchet distance between Gaussians fitted to the LeNet features of "
    "n_eval synthetic images (drawn with lambda) and of the held-out real images",
    "precision": "share of n_eval synthetic samples (drawn with lambda) inside the real k-NN "
    "manifold (Kynkäänniemi et al. 2019, membership <=)",
    "recall": "share of n_eval real samples inside the synthetic k-NN manifold",
    "density": "Naeem et al. 2020 density of the synthetic samples (membership <=)",
    "coverage": "Naeem et al. 2020 coverage: share of real samples whose k-NN ball holds a "
    "synthetic sample",
    "modes_covered": "number of the 25 grid modes still covered by the synthetic samples "
    "(rule in madutils.metrics.mixture.modes_covered)",
    "modal_variance": "average per-component variance tr(Sigma_k)/d of the fitted mixture",
    "total_variance": "trace of the covariance of the synthetic samples",
    "heldout_nll": "negative log-likelihood per sample of n_eval held-out real samples under "
    "the fitted model (nats; the Rosenbrock density's entropy is about 2.49)",
    "tail_share": "share of n_eval synthetic samples whose last coordinate exceeds the 99% "
    "quantile of the held-out real samples' (about 0.01 for real data)",
    "marginal_w1": "1-Wasserstein distance between the synthetic and real marginals, "
    "averaged over coordinates (n_eval samples each)",
}

#: Metrics computed from a model's parameters, per model.
MODEL_METRICS = {
    "gaussian": ("w2_squared", "cov_trace", "mean_drift", "mean_error"),
    "mixture": ("modes_covered", "modal_variance", "total_variance"),
    "flow": ("heldout_nll",),
}

#: k-NN manifold metrics (madutils.metrics.manifold), computed together in one pass.
MANIFOLD_METRICS = ("precision", "recall", "density", "coverage")

#: Metrics computed from n_eval synthetic samples against n_eval held-out real samples.
SAMPLE_METRICS = ("frechet", *MANIFOLD_METRICS, "tail_share", "marginal_w1")

#: Every metric that needs n_eval samples drawn from the model (with lambda).
NEEDS_SAMPLES = frozenset(SAMPLE_METRICS) | {"modes_covered", "total_variance"}

DEFAULT_METRICS = {
    "gaussian": MODEL_METRICS["gaussian"],
    "mixture": ("precision", "recall", "modes_covered", "modal_variance", "total_variance"),
    "flow": ("heldout_nll", "tail_share", "marginal_w1", "precision", "recall"),
}
