"""Curation steps between "the previous model samples" and "the next model trains".

Papers written since the MAD paper propose ways to keep a self-consuming loop healthy by
acting on the synthetic samples before the next model trains on them. This module holds each
proposal as a batched tensor operation on samples of shape ``(seeds, n, dim)`` (every replicate
of a batched loop at once), so that the loops can offer them as options and the book can
compare them on the same models and metrics:

- **Verification** (Feng et al. 2024, "Beyond Model Collapse: Scaling Up with Synthesized Data
  Requires Verification"): a verifier accepts or rejects each synthetic sample and only
  accepted ones are trained on. For the toy models the truth is the real density
  (:func:`in_support`: inside the region of highest real density that holds ``mass`` of the
  probability), and the verifier is right with probability ``accuracy`` (:func:`verify`);
  :func:`keep_accepted` keeps the first ``n`` accepted samples of each replicate and counts how
  many were drawn for them.
- **Curation by preference** (Ferbach et al. 2024, "Self-Consuming Generative Models with Curated
  Data Provably Optimize Human Preferences"): of ``K`` candidates one is kept, the best under a
  reward (``rule="argmax"``) or one drawn by the Bradley-Terry (Luce) choice model,
  ``P(i) = exp(r_i) / sum_j exp(r_j)`` (``rule="bradley_terry"``, the paper's model of human
  choice): :func:`best_of`.
- **Self-correction** (Gillman et al. 2024, "Self-Correcting Self-Consuming Loops"): each sample
  moves toward the real distribution by a correction of strength ``gamma``. For a Gaussian the
  idealised correction is exact: the optimal transport map ``T`` from the model's sampling
  distribution to the real one, ``x' = x + gamma (T(x) - x)`` (:func:`gaussian_correction`),
  which at ``gamma = 1`` gives samples distributed exactly as the real data; for the grid
  mixture each fitted component moves toward the real mode nearest it
  (:func:`mixture_correction`).
- **Detect and filter** (the MAD paper's section 6: a detector or watermark that keeps the
  synthetic share small): a detector with false-positive rate ``fpr`` (real samples flagged as
  synthetic) and false-negative rate ``fnr`` (synthetic samples missed) removes what it flags
  (:func:`detect_and_filter`), which moves a fresh-data loop from ``(n_r, n_s)`` to
  ``(n_r (1 - fpr), n_s fnr)`` in the paper's phase diagram (Figures 11-12).

Every random choice comes from the ``rng`` passed in. Every bad option (``accuracy``, ``tau``,
``gamma`` or a rate outside [0, 1], ``K < 1``) is refused with a message that names it.
"""

from __future__ import annotations

import math

import torch
from scipy.stats import chi2

from madutils._validation import (
    check_choice,
    check_generator,
    check_positive_int,
    check_positive_number,
    check_probability,
    check_share,
)
from madutils.data.distributions import GaussianDistribution, GridMixture
from madutils.linalg import psd_sqrt

__all__ = [
    "BEST_OF_RULES",
    "MAX_VERIFY_ROUNDS",
    "REWARDS",
    "best_of",
    "classifier_accepts",
    "detect_and_filter",
    "distance_reward",
    "gaussian_correction",
    "in_support",
    "keep_accepted",
    "kept_count",
    "linear_reward",
    "mixture_correction",
    "random_subset",
    "verify",
]

#: A loop draws at most this many rounds of ``n`` candidates for ``n`` verified samples; a
#: replicate with fewer accepted ones repeats them (:func:`keep_accepted`).
MAX_VERIFY_ROUNDS = 20
#: The rewards of a loop's best-of-K curation: ``scale * x_1`` (:func:`linear_reward`, no
#: maximiser: a curated loop runs off along it) or ``-scale ||x - e_1||^2``
#: (:func:`distance_reward`, maximised at the point ``e_1``).
REWARDS = ("distance", "linear")
#: How :func:`best_of` picks one of ``K`` candidates.
BEST_OF_RULES = ("argmax", "bradley_terry")


def _check_samples(samples, name: str = "samples") -> torch.Tensor:
    if not isinstance(samples, torch.Tensor) or samples.ndim != 3:
        shape = tuple(samples.shape) if hasattr(samples, "shape") else type(samples).__name__
        raise ValueError(f"{name} must be a tensor of shape (seeds, n, dim); got {shape}")
    return samples


# ------------------------------------------------------------------------------ verification


def in_support(data, samples: torch.Tensor, mass: float = 0.99) -> torch.Tensor:
    """Whether each sample lies where the real density is high: inside the smallest region that
    holds ``mass`` of the real probability.

    Parameters
    ----------
    data : GaussianDistribution or GridMixture
        The real distribution. For a Gaussian the region is the ellipsoid of Mahalanobis
        distances up to the ``mass`` quantile of the chi-square distribution with ``dim``
        degrees of freedom (exact). For the grid mixture it is the union of each mode's such
        disc, which is the mixture's region while the modes barely overlap (the default grid:
        modes 1 apart with standard deviation 0.1).
    samples : Tensor, shape (seeds, n, dim)
    mass : float in (0, 1)

    Returns
    -------
    Tensor of bool, shape (seeds, n)
    """
    samples = _check_samples(samples)
    mass = check_share(mass, "mass")
    if isinstance(data, GaussianDistribution):
        radius2 = float(chi2.ppf(mass, data.dim))
        centred = samples - data.mean.to(samples)
        whitened = torch.linalg.solve_triangular(
            data.factor.to(samples), centred.transpose(-1, -2), upper=False
        )
        return whitened.square().sum(dim=-2) <= radius2
    if isinstance(data, GridMixture):
        radius2 = float(chi2.ppf(mass, 2)) * data.variance
        distances = torch.cdist(samples, data.means.to(samples).expand(samples.shape[0], -1, -1))
        return distances.square().min(dim=-1).values <= radius2
    raise ValueError(
        f"data must be a GaussianDistribution or a GridMixture to define a support; got "
        f"{type(data).__name__}"
    )


def verify(truth: torch.Tensor, accuracy: float, *, rng: torch.Generator) -> torch.Tensor:
    """A verifier's decisions: each is ``truth`` with probability ``accuracy``, its opposite
    otherwise (independently per sample).

    Parameters
    ----------
    truth : Tensor of bool
        Whether each sample should be accepted (:func:`in_support`).
    accuracy : float in [0, 1]
        1 accepts exactly the good samples; 0.5 decides by a coin flip.
    rng : torch.Generator

    Returns
    -------
    Tensor of bool, the shape of ``truth``: accepted.
    """
    accuracy = check_probability(accuracy, "accuracy")
    check_generator(rng)
    if accuracy == 1.0:
        return truth.clone()
    wrong = torch.rand(truth.shape, generator=rng, device=rng.device).to(truth.device) >= accuracy
    return truth ^ wrong


def classifier_accepts(
    probabilities: torch.Tensor, confidence: float, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decisions of a classifier used as a verifier (the image loops' ``"verify"``).

    An image passes when its most probable class has probability at least ``confidence`` and,
    given ``labels``, is its label (the class a conditional model was asked for).

    Parameters
    ----------
    probabilities : Tensor, shape (N, n_classes)
        The classifier's class probabilities of each image.
    confidence : float in [0, 1]
        The verifier's threshold tau.
    labels : int Tensor, shape (N,), optional
        The class each image should show.

    Returns
    -------
    accepted : Tensor of bool, shape (N,)
    predicted : int64 Tensor, shape (N,)
        The most probable class of each image.
    """
    confidence = check_probability(confidence, "confidence")
    if probabilities.ndim != 2:
        raise ValueError(
            f"probabilities must have shape (N, n_classes); got shape {tuple(probabilities.shape)}"
        )
    top, predicted = probabilities.max(dim=1)
    accepted = top >= confidence
    if labels is not None:
        accepted &= predicted == labels.to(predicted.device)
    return accepted, predicted


def keep_accepted(
    samples: torch.Tensor, accepted: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` accepted samples of each replicate, in the order they were drawn.

    Parameters
    ----------
    samples : Tensor, shape (seeds, m, dim)
        Candidates, in the order drawn.
    accepted : Tensor of bool, shape (seeds, m)
    n : int
        Samples to keep per replicate.

    Returns
    -------
    kept : Tensor, shape (seeds, n, dim)
        A replicate with fewer than ``n`` accepted samples repeats its accepted ones (or, with
        none, keeps its first candidates); ``complete`` says which.
    drawn : Tensor of int64, shape (seeds,)
        Candidates drawn up to and including the ``n``-th accepted one (``m`` where there are
        fewer): the cost of the kept samples.
    complete : Tensor of bool, shape (seeds,)
        Whether the replicate had ``n`` accepted samples.
    """
    samples = _check_samples(samples)
    n = check_positive_int(n, "n")
    seeds, m, _ = samples.shape
    if accepted.shape != (seeds, m) or accepted.dtype != torch.bool:
        raise ValueError(
            f"accepted must be a bool tensor of shape {(seeds, m)}; got "
            f"{accepted.dtype} {tuple(accepted.shape)}"
        )
    count = accepted.sum(dim=1)
    complete = count >= n
    # positions of the accepted candidates first, in draw order (stable), then the others
    order = torch.sort((~accepted).to(torch.int8), dim=1, stable=True).indices
    rank = torch.arange(n, device=samples.device).expand(seeds, n)
    usable = count.clamp(min=1).unsqueeze(1)
    pick = torch.where(count.unsqueeze(1) > 0, rank % usable, rank % m)
    index = order.gather(1, pick)
    kept = samples.gather(1, index.unsqueeze(-1).expand(-1, -1, samples.shape[-1]))
    nth = order[:, n - 1] if n <= m else torch.full((seeds,), m - 1, device=samples.device)
    drawn = torch.where(complete, nth + 1, torch.full_like(nth, m))
    return kept, drawn.to(torch.int64), complete


# ----------------------------------------------------------------------- curation by preference


def linear_reward(direction) -> callable:
    """The reward ``r(x) = direction . x`` (a preference for one direction of the data space).

    Parameters
    ----------
    direction : array or Tensor, shape (dim,)

    Returns
    -------
    callable
        ``reward(samples)`` of shape ``(..., dim)`` returning shape ``(...)``.
    """
    direction = torch.as_tensor(direction, dtype=torch.float64)
    if direction.ndim != 1 or not bool(torch.isfinite(direction).all()):
        raise ValueError("direction must be a finite vector of shape (dim,)")

    def reward(samples: torch.Tensor) -> torch.Tensor:
        return samples @ direction.to(samples)

    return reward


def distance_reward(target, scale: float = 1.0) -> callable:
    """The reward ``r(x) = -scale ||x - target||^2``: a preference for one point, its maximiser.

    Parameters
    ----------
    target : array or Tensor, shape (dim,)
    scale : float > 0

    Returns
    -------
    callable
        ``reward(samples)`` of shape ``(..., dim)`` returning shape ``(...)``.
    """
    target = torch.as_tensor(target, dtype=torch.float64)
    if target.ndim != 1 or not bool(torch.isfinite(target).all()):
        raise ValueError("target must be a finite vector of shape (dim,)")
    scale = check_positive_number(scale, "scale")

    def reward(samples: torch.Tensor) -> torch.Tensor:
        return -scale * (samples - target.to(samples)).square().sum(dim=-1)

    return reward


def best_of(
    candidates: torch.Tensor, rewards: torch.Tensor, *, rule: str = "argmax", rng=None
) -> torch.Tensor:
    """One sample kept out of every ``K`` candidates, by their rewards.

    Parameters
    ----------
    candidates : Tensor, shape (seeds, n, K, dim)
        ``K`` candidates for each of the ``n`` samples to keep.
    rewards : Tensor, shape (seeds, n, K)
    rule : {"argmax", "bradley_terry"}
        ``"argmax"``: the candidate with the highest reward (the first of equals);
        ``"bradley_terry"``: candidate ``i`` with probability ``exp(r_i) / sum_j exp(r_j)``.
    rng : torch.Generator, optional
        Needed by ``"bradley_terry"``.

    Returns
    -------
    Tensor, shape (seeds, n, dim)
    """
    rule = check_choice(rule, "rule", BEST_OF_RULES)
    if candidates.ndim != 4 or rewards.shape != candidates.shape[:3]:
        raise ValueError(
            "candidates must have shape (seeds, n, K, dim) and rewards (seeds, n, K); got "
            f"{tuple(candidates.shape)} and {tuple(rewards.shape)}"
        )
    check_positive_int(candidates.shape[2], "K")
    if rule == "argmax":
        choice = rewards.argmax(dim=2)
    else:
        check_generator(rng)
        probabilities = torch.softmax(rewards.to(torch.float64), dim=2)
        flat = probabilities.reshape(-1, probabilities.shape[2]).to(rng.device)
        choice = torch.multinomial(flat, 1, generator=rng).reshape(rewards.shape[:2])
        choice = choice.to(candidates.device)
    index = choice[..., None, None].expand(-1, -1, 1, candidates.shape[-1])
    return candidates.gather(2, index).squeeze(2)


# --------------------------------------------------------------------------- self-correction


def gaussian_correction(
    samples: torch.Tensor,
    model_mean: torch.Tensor,
    model_covariance: torch.Tensor,
    real: GaussianDistribution,
    gamma: float,
) -> torch.Tensor:
    """Move samples of ``N(model_mean, model_covariance)`` toward the real Gaussian.

    ``x' = x + gamma (T(x) - x)`` with ``T`` the optimal transport map between the two
    Gaussians, ``T(x) = m_r + A (x - m)``, ``A = S^(-1/2) (S^(1/2) S_r S^(1/2))^(1/2) S^(-1/2)``
    (``S`` the model's covariance): ``gamma = 0`` leaves the samples as they are, ``gamma = 1``
    makes them exactly ``N(m_r, S_r)``-distributed (for a full-rank ``S``), and in between the
    samples lie on the straight paths from the model to the truth (the displacement
    interpolation). The "idealised expert" of Gillman et al., which knows the truth.

    Parameters
    ----------
    samples : Tensor, shape (seeds, n, dim)
        Drawn from the model's sampling distribution (with sampling bias ``lam``, the
        covariance is ``lam`` times the fitted one: pass that).
    model_mean : Tensor, shape (seeds, dim)
    model_covariance : Tensor, shape (seeds, dim, dim)
    real : GaussianDistribution
    gamma : float in [0, 1]

    Returns
    -------
    Tensor, shape (seeds, n, dim)
    """
    samples = _check_samples(samples)
    gamma = check_probability(gamma, "gamma")
    if gamma == 0.0:
        return samples.clone()
    device = samples.device
    transport = _transport_matrix(model_covariance.to(device), real.covariance.to(device))
    points = samples.to(torch.float64)
    centred = points - model_mean.to(device, torch.float64).unsqueeze(1)
    mapped = real.mean.to(device) + centred @ transport.transpose(-1, -2)
    return (points + gamma * (mapped - points)).to(samples.dtype)


def _transport_matrix(covariance: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``A`` of the optimal transport map ``x -> m_t + A (x - m)`` from ``N(m, covariance)``
    to ``N(m_t, target)``, batched over the leading axes; a collapsed direction of
    ``covariance`` is left where it is (pseudo-inverse)."""
    covariance = covariance.to(torch.float64)
    root = psd_sqrt(covariance, name="model_covariance")
    inverse_root = torch.linalg.pinv(root, hermitian=True)
    middle = psd_sqrt(root @ target.to(root) @ root, name="model_covariance")
    return inverse_root @ middle @ inverse_root


def mixture_correction(
    samples: torch.Tensor,
    components: torch.Tensor,
    model_means: torch.Tensor,
    model_covariances: torch.Tensor,
    real: GridMixture,
    gamma: float,
) -> torch.Tensor:
    """Move samples of a fitted Gaussian mixture toward the real grid mixture's modes.

    Each fitted component ``j`` is matched to the real mode nearest its mean, ``m_k``, and its
    samples move along the optimal transport map from ``N(mu_j, Sigma_j)`` to that mode's
    Gaussian ``N(m_k, sigma^2 I)``: ``x' = x + gamma (T_j(x) - x)``. At ``gamma = 1`` every
    component draws exactly from a real mode, so what is off inside a mode is repaired; the
    weights of the components are not, so a mode no component sits near stays lost (the
    limit of a correction that fixes samples one by one). The idealised expert of Gillman et
    al. for a mixture, which knows the true modes.

    Parameters
    ----------
    samples : Tensor, shape (seeds, n, dim)
    components : Tensor of int64, shape (seeds, n)
        The fitted component each sample was drawn from
        (:meth:`madutils.models.mixture.GaussianMixtureModel.sample_components`).
    model_means : Tensor, shape (seeds, n_components, dim)
    model_covariances : Tensor, shape (seeds, n_components, dim, dim)
        The covariances the samples were drawn with (``lam`` times the fitted ones).
    real : GridMixture
    gamma : float in [0, 1]

    Returns
    -------
    Tensor, shape (seeds, n, dim)
    """
    samples = _check_samples(samples)
    gamma = check_probability(gamma, "gamma")
    if components.shape != samples.shape[:2]:
        raise ValueError(
            f"components must have shape {tuple(samples.shape[:2])}, one per sample; got "
            f"{tuple(components.shape)}"
        )
    if gamma == 0.0:
        return samples.clone()
    device = samples.device
    means = model_means.to(device, torch.float64)
    modes = real.means.to(device, torch.float64)
    nearest = torch.cdist(means, modes.expand(means.shape[0], -1, -1)).argmin(dim=-1)
    target = real.variance * torch.eye(samples.shape[-1], dtype=torch.float64, device=device)
    transport = _transport_matrix(model_covariances.to(device), target)  # (seeds, C, d, d)
    seeds = torch.arange(samples.shape[0], device=device).unsqueeze(1)
    points = samples.to(torch.float64)
    centred = (points - means[seeds, components]).unsqueeze(-1)
    mapped = modes[nearest[seeds, components]] + (transport[seeds, components] @ centred).squeeze(
        -1
    )
    return (points + gamma * (mapped - points)).to(samples.dtype)


# --------------------------------------------------------------------------- detect and filter


def kept_count(n: int, share: float) -> int:
    """The samples of ``n`` a detector keeps when it keeps a share ``share`` of them:
    ``round(n * share)``, halves rounded up."""
    return int(math.floor(n * share + 0.5))


def detect_and_filter(
    real: torch.Tensor,
    synthetic: torch.Tensor,
    *,
    fpr: float,
    fnr: float,
    rng: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove what a detector flags as synthetic from a training set.

    The detector flags a share ``fpr`` of the real samples (false positives) and a share
    ``1 - fnr`` of the synthetic ones (``fnr``: the synthetic samples it misses); flagged
    samples are dropped. The shares are applied exactly (``round(n_r (1 - fpr))`` real and
    ``round(n_s fnr)`` synthetic samples stay, picked at random), so every replicate keeps the
    same counts and the loop sits at ``(n_r (1 - fpr), n_s fnr)`` of the phase diagram.

    Parameters
    ----------
    real : Tensor, shape (seeds, n_r, dim)
    synthetic : Tensor, shape (seeds, n_s, dim)
    fpr, fnr : float in [0, 1]
    rng : torch.Generator

    Returns
    -------
    (real, synthetic) : the samples kept, shapes (seeds, n_r', dim) and (seeds, n_s', dim)
        ``n_r'`` or ``n_s'`` may be 0.
    """
    real, synthetic = _check_samples(real, "real"), _check_samples(synthetic, "synthetic")
    fpr, fnr = check_probability(fpr, "fpr"), check_probability(fnr, "fnr")
    check_generator(rng)

    return (
        random_subset(real, kept_count(real.shape[1], 1.0 - fpr), rng),
        random_subset(synthetic, kept_count(synthetic.shape[1], fnr), rng),
    )


def random_subset(part: torch.Tensor, n: int, rng: torch.Generator) -> torch.Tensor:
    """A uniform random subset of ``n`` samples of each replicate, in their original order.

    Parameters
    ----------
    part : Tensor, shape (seeds, m, dim)
    n : int
        Samples to keep per replicate; ``part`` itself (nothing drawn) when ``n >= m``.
    rng : torch.Generator
        Draws one uniform key per sample.

    Returns
    -------
    Tensor, shape (seeds, min(n, m), dim)
    """
    seeds, m, dim = part.shape
    if n >= m:
        return part
    keys = torch.rand((seeds, m), generator=rng, device=rng.device).to(part.device)
    index = keys.argsort(dim=1)[:, :n].sort(dim=1).values
    return part.gather(1, index.unsqueeze(-1).expand(-1, -1, dim))
