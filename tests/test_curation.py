"""The curation steps of madutils.curation on tiny data with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from madutils.curation import (
    best_of,
    classifier_accepts,
    detect_and_filter,
    gaussian_correction,
    in_support,
    keep_accepted,
    linear_reward,
    verify,
)
from madutils.data.distributions import GaussianDistribution, GridMixture


def _rng(seed=0):
    return torch.Generator().manual_seed(seed)


def test_the_support_holds_its_mass_of_the_real_distribution():
    real = GaussianDistribution(4, mean=torch.ones(4), covariance=torch.diag(torch.arange(1.0, 5)))
    inside = in_support(real, real.sample(200_000, rng=_rng()), mass=0.9)
    assert inside.shape == (1, 200_000)
    assert float(inside.double().mean()) == pytest.approx(0.9, abs=0.003)
    mixture = GridMixture()
    modes = mixture.means.unsqueeze(0)
    between = (modes[:, :-1] + modes[:, 1:]) / 2  # neighbours along the grid's rows
    assert bool(in_support(mixture, modes).all())
    assert not bool(in_support(mixture, between[:, (between[0, :, 1] % 1).abs() > 0.25]).any())


def test_a_verifier_of_accuracy_one_keeps_exactly_the_in_support_samples():
    real = GaussianDistribution(2)
    wide = GaussianDistribution(2, covariance=4 * torch.eye(2))
    samples = wide.sample(400, n_seeds=3, rng=_rng(1))
    truth = in_support(real, samples)
    accepted = verify(truth, 1.0, rng=_rng(2))
    assert torch.equal(accepted, truth)
    n = int(truth.sum(dim=1).min())
    kept, drawn, complete = keep_accepted(samples, accepted, n)
    assert bool(complete.all())
    for seed in range(3):
        positions = torch.nonzero(truth[seed]).squeeze(1)
        assert torch.equal(kept[seed], samples[seed, positions[:n]])  # in draw order
        assert int(drawn[seed]) == int(positions[n - 1]) + 1
    assert bool(in_support(real, kept).all())


def test_a_verifier_errs_at_its_rate_and_a_short_replicate_is_flagged():
    truth = torch.rand((4, 50_000), generator=_rng(3)) < 0.5
    accepted = verify(truth, 0.8, rng=_rng(4))
    assert float((accepted != truth).double().mean()) == pytest.approx(0.2, abs=0.005)
    samples = torch.arange(6.0).reshape(1, 6, 1)
    accepted = torch.tensor([[False, True, False, False, True, False]])
    kept, drawn, complete = keep_accepted(samples, accepted, 3)
    assert kept.flatten().tolist() == [1.0, 4.0, 1.0] and drawn.tolist() == [6]
    assert complete.tolist() == [False]


def test_a_classifier_verifier_needs_the_asked_class_with_enough_confidence():
    probabilities = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5], [0.1, 0.9]])
    accepted, predicted = classifier_accepts(probabilities, 0.6, torch.tensor([0, 0, 0, 1]))
    # right class and sure enough; sure of the wrong class; not sure; right and sure
    assert accepted.tolist() == [True, False, False, True]
    assert predicted.tolist() == [0, 1, 0, 1]
    # without labels, any class it is sure enough of passes
    assert classifier_accepts(probabilities, 0.6)[0].tolist() == [True, True, False, True]
    # the threshold is inclusive: 1 keeps only certain images, 0 every right one
    assert classifier_accepts(probabilities, 0.9)[0].tolist() == [False, False, False, True]
    assert classifier_accepts(probabilities, 0.0)[0].tolist() == [True, True, True, True]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: classifier_accepts(torch.ones(2, 2) / 2, 1.5), "confidence must be"),
        (lambda: classifier_accepts(torch.ones(2, 2) / 2, -0.1), "confidence must be"),
        (lambda: classifier_accepts(torch.ones(4) / 4, 0.5), "shape \\(N, n_classes\\)"),
    ],
)
def test_a_classifier_verifier_refuses_bad_input_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("k", "expected"), [(1, 0.0), (2, 1 / math.sqrt(math.pi)), (3, 1.5 / math.sqrt(math.pi))]
)
def test_best_of_k_under_a_linear_reward_shifts_the_mean_by_the_expected_maximum(k, expected):
    """The best of K standard normals has mean 0, 1/sqrt(pi), 3/(2 sqrt(pi)) for K = 1, 2, 3."""
    direction = torch.tensor([0.6, 0.8])  # a unit vector
    candidates = torch.randn((1, 200_000, k, 2), generator=_rng(5), dtype=torch.float64)
    kept = best_of(candidates, linear_reward(direction)(candidates))
    along = kept @ direction.double()
    across = kept @ torch.tensor([-0.8, 0.6], dtype=torch.float64)
    assert float(along.mean()) == pytest.approx(expected, abs=0.006)
    assert float(across.mean()) == pytest.approx(0.0, abs=0.006)


def test_bradley_terry_choice_tilts_toward_the_reward():
    """With many candidates the Luce choice samples the tilted density exp(beta x) N(0, 1), whose
    mean is beta; one candidate is kept as it is."""
    candidates = torch.randn((1, 20_000, 64, 1), generator=_rng(6), dtype=torch.float64)
    rewards = 0.5 * candidates[..., 0]
    kept = best_of(candidates, rewards, rule="bradley_terry", rng=_rng(7))
    assert float(kept.mean()) == pytest.approx(0.5, abs=0.02)
    single = candidates[:, :, :1]
    assert torch.equal(
        best_of(single, rewards[:, :, :1], rule="bradley_terry", rng=_rng()), single[:, :, 0]
    )


def _exact_moments(mean, covariance, n, rng):
    """Samples whose empirical mean and (1/n) covariance are exactly ``mean`` and ``covariance``."""
    z = torch.randn((n, len(mean)), generator=rng, dtype=torch.float64)
    z = z - z.mean(dim=0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / n)).T
    return mean + z @ torch.linalg.cholesky(covariance).T


def _moments(x):
    mean = x.mean(dim=0)
    return mean, (x - mean).T @ (x - mean) / len(x)


def test_a_correction_of_strength_one_returns_the_real_moments():
    real = GaussianDistribution(
        3,
        mean=torch.tensor([1.0, -2.0, 0.5]),
        covariance=torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]]),
    )
    model_mean = torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64)
    model_cov = torch.tensor(
        [[0.5, -0.1, 0.0], [-0.1, 0.3, 0.0], [0.0, 0.0, 0.1]], dtype=torch.float64
    )
    samples = _exact_moments(model_mean, model_cov, 500, _rng(8)).unsqueeze(0)
    corrected = gaussian_correction(samples, model_mean[None], model_cov[None], real, 1.0)
    mean, cov = _moments(corrected[0])
    assert torch.allclose(mean, real.mean, atol=1e-10) and torch.allclose(
        cov, real.covariance, atol=1e-10
    )
    assert torch.equal(
        gaussian_correction(samples, model_mean[None], model_cov[None], real, 0.0), samples
    )
    half = gaussian_correction(samples, model_mean[None], model_cov[None], real, 0.5)
    assert torch.allclose(_moments(half[0])[0], (model_mean + real.mean) / 2, atol=1e-10)


def test_the_detector_keeps_the_shares_it_misses():
    real = torch.arange(100.0).reshape(1, 100, 1).expand(2, -1, -1)
    synthetic = -torch.arange(1.0, 201.0).reshape(1, 200, 1).expand(2, -1, -1)
    kept_real, kept_synthetic = detect_and_filter(real, synthetic, fpr=0.1, fnr=0.25, rng=_rng(9))
    assert kept_real.shape == (2, 90, 1) and kept_synthetic.shape == (2, 50, 1)
    for seed in range(2):
        assert set(kept_real[seed].flatten().tolist()) <= set(real[seed].flatten().tolist())
        assert len(set(kept_synthetic[seed].flatten().tolist())) == 50
    everything = detect_and_filter(real, synthetic, fpr=0.0, fnr=1.0, rng=_rng())
    assert torch.equal(everything[0], real) and torch.equal(everything[1], synthetic)
    assert detect_and_filter(real, synthetic, fpr=1.0, fnr=0.0, rng=_rng())[1].shape == (2, 0, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: verify(torch.ones(3, dtype=torch.bool), 1.5, rng=_rng()),
            "accuracy must be a probability",
        ),
        (
            lambda: best_of(torch.zeros(1, 2, 0, 2), torch.zeros(1, 2, 0)),
            "K must be a positive integer",
        ),
        (
            lambda: gaussian_correction(
                torch.zeros(1, 2, 2),
                torch.zeros(1, 2),
                torch.eye(2)[None],
                GaussianDistribution(2),
                -0.1,
            ),
            "gamma must be a probability",
        ),
        (
            lambda: detect_and_filter(
                torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), fpr=2, fnr=0.1, rng=_rng()
            ),
            "fpr must be a probability",
        ),
        (
            lambda: detect_and_filter(
                torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), fpr=0.1, fnr=-1, rng=_rng()
            ),
            "fnr must be a probability",
        ),
        (
            lambda: best_of(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2), rule="softmax"),
            "rule must be one of 'argmax', 'bradley_terry'",
        ),
        (
            lambda: in_support(GaussianDistribution(2), torch.zeros(1, 2, 2), mass=1.0),
            "mass must be a number in \\(0, 1\\)",
        ),
    ],
)
def test_bad_options_are_refused_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
