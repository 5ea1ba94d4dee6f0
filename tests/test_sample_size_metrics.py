"""The metrics that account for sample size: the kernel distance (KID) and FD∞.

The KID is checked against torchmetrics' (``torchmetrics.image.kid``) on the same features,
subset by subset and as a whole; FD∞ against a direct computation of its line fit, and on
Gaussian features where the answer is known: the Fréchet distance of ``N`` samples is biased
upwards by about ``c / N``, and FD∞ removes that bias.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from madutils.metrics.frechet import frechet_distance, frechet_distance_infinity
from madutils.metrics.kernel import kernel_distance, mmd_squared_unbiased, polynomial_kernel

kid = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics is the KID reference")


def _features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=gen, dtype=torch.float64) + shift


def test_one_subset_of_everything_matches_torchmetrics_poly_mmd():
    real, synthetic = _features(300, 16, 0), _features(300, 16, 1, shift=0.3, scale=0.8)
    ours = kernel_distance(real, synthetic)  # equal sizes below subset_size: one subset
    assert (ours.subsets, ours.subset_size, ours.std) == (1, 300, 0.0)
    reference = kid.poly_mmd(real, synthetic, degree=3, gamma=None, coef=1.0)
    assert ours.mean == pytest.approx(float(reference), rel=1e-10)


def test_other_kernels_match_torchmetrics_poly_mmd():
    real, synthetic = _features(120, 8, 2), _features(150, 8, 3, shift=0.5)
    x, y = real[:100], synthetic[:100]
    for degree, gamma, coef in ((2, 0.5, 0.0), (3, 0.1, 2.0), (4, None, 1.0)):
        ours = mmd_squared_unbiased(
            polynomial_kernel(x, x, degree, gamma, coef),
            polynomial_kernel(x, y, degree, gamma, coef),
            polynomial_kernel(y, y, degree, gamma, coef),
        )
        reference = kid.poly_mmd(x, y, degree=degree, gamma=gamma, coef=coef)
        assert float(ours) == pytest.approx(float(reference), rel=1e-10)


def test_subsets_average_torchmetrics_estimates_of_the_same_subsets():
    real, synthetic = _features(400, 12, 4), _features(500, 12, 5, scale=1.3)
    ours = kernel_distance(
        real, synthetic, rng=torch.Generator().manual_seed(9), subsets=7, subset_size=50
    )
    gen = torch.Generator().manual_seed(9)  # the same draws, in the same order
    estimates = []
    for _ in range(7):
        x = real[torch.randperm(400, generator=gen)[:50]]
        y = synthetic[torch.randperm(500, generator=gen)[:50]]
        estimates.append(float(kid.poly_mmd(x, y)))
    assert (ours.subsets, ours.subset_size) == (7, 50)
    assert ours.mean == pytest.approx(np.mean(estimates), rel=1e-10)
    assert ours.std == pytest.approx(np.std(estimates, ddof=1), rel=1e-8)


def test_the_kernel_distance_class_of_torchmetrics_gives_the_same_value():
    """torchmetrics' KernelInceptionDistance with an identity feature extractor."""
    real, synthetic = _features(200, 10, 6), _features(200, 10, 7, shift=0.4)

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    metric = kid.KernelInceptionDistance(feature=Identity(), subsets=1, subset_size=200)
    metric.update(real, real=True)
    metric.update(synthetic, real=False)
    mean, _ = metric.compute()
    assert kernel_distance(real, synthetic).mean == pytest.approx(float(mean), rel=1e-6)


def test_kid_is_unbiased_where_fid_is_not():
    """Equal distributions: the KID averages to zero at any N, the FID of N samples is > 0."""
    kids, fids = [], []
    for seed in range(20):
        real, synthetic = _features(100, 16, 2 * seed), _features(100, 16, 2 * seed + 1)
        kids.append(kernel_distance(real, synthetic).mean)
        fids.append(float(frechet_distance(real, synthetic)))
    spread = np.std(kids) / np.sqrt(len(kids))
    assert abs(np.mean(kids)) < 3 * spread
    assert min(kids) < 0 < max(kids)
    assert min(fids) > 0.5  # biased: about 2 d^2 / N for two sets of N points


def test_kernel_distance_refuses_bad_input():
    real = _features(50, 4, 8)
    with pytest.raises(ValueError, match="pass rng="):
        kernel_distance(real, _features(60, 4, 9))
    with pytest.raises(ValueError, match="same number of features"):
        kernel_distance(real, _features(50, 5, 9))
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_distance(real, real[:1])
    bad = real.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="synthetic"):
        kernel_distance(real, bad)
    with pytest.raises(ValueError, match="subsets"):
        kernel_distance(real, real, subsets=0)


def test_fd_infinity_is_the_intercept_of_the_fids_of_nested_subsets():
    real, synthetic = _features(500, 6, 10), _features(300, 6, 11, shift=0.2)
    result = frechet_distance_infinity(
        real, synthetic, rng=torch.Generator().manual_seed(3), sizes=[60, 120, 180, 300]
    )
    order = torch.randperm(300, generator=torch.Generator().manual_seed(3))
    distances = [float(frechet_distance(real, synthetic[order[:n]])) for n in (60, 120, 180, 300)]
    assert result.distances == pytest.approx(distances, rel=1e-12)
    inverse = 1.0 / np.array([60, 120, 180, 300])
    slope, intercept = np.linalg.lstsq(
        np.column_stack([inverse, np.ones(4)]), np.array(distances), rcond=None
    )[0]
    assert (result.value, result.slope) == pytest.approx((intercept, slope), rel=1e-9)


def test_default_sizes_span_a_fifth_of_the_set_to_all_of_it():
    real, synthetic = _features(200, 3, 12), _features(1000, 3, 13)
    result = frechet_distance_infinity(real, synthetic, rng=torch.Generator().manual_seed(0))
    assert result.sizes[0] == 200 and result.sizes[-1] == 1000 and len(result.sizes) == 15
    assert list(result.sizes) == sorted(set(result.sizes))


@pytest.mark.parametrize("scale", [1.0, 1.2, 0.8])
def test_fd_infinity_removes_the_small_sample_bias_on_gaussians(scale):
    """Real N(0, I) (many samples), synthetic N(0, scale^2 I): the truth is d (1 - scale)^2.

    The FID of 2,000 synthetic samples is biased upwards, by an amount that depends on the
    model (here about 0.11 to 0.19 for the three scales: equal true distances for 0.8 and 1.2
    would rank apart); FD∞ lands on the truth within its noise.
    """
    d = 32
    truth = d * (1 - scale) ** 2
    real = _features(100_000, d, 14)
    values, largest = [], []
    for seed in range(10):
        synthetic = _features(2000, d, 100 + seed, scale=scale)
        result = frechet_distance_infinity(real, synthetic, rng=torch.Generator().manual_seed(seed))
        values.append(result.value)
        largest.append(result.distances[-1])  # the FID of all 2000 samples
    bias_fd = np.mean(largest) - truth
    bias_infinity = np.mean(values) - truth
    assert bias_fd > 0.08
    assert abs(bias_infinity) < 0.25 * bias_fd


def test_fd_infinity_refuses_bad_sizes():
    real, synthetic = _features(50, 3, 15), _features(40, 3, 16)
    rng = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="sizes must hold"):
        frechet_distance_infinity(real, synthetic, rng=rng, sizes=[10, 50])
    with pytest.raises(ValueError, match="sizes must hold"):
        frechet_distance_infinity(real, synthetic, rng=rng, sizes=[20, 20])
    with pytest.raises(ValueError, match="at least 10"):
        frechet_distance_infinity(real, synthetic[:9], rng=rng)
