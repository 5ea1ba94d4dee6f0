"""The Gaussian model, its exact statistics path, and the distance metrics."""

import numpy as np
import pytest
import scipy.linalg
import torch

from madutils.data.distributions import GaussianDistribution, GridMixture, Rosenbrock
from madutils.metrics.frechet import frechet_distance, gaussian_w2_squared
from madutils.models.base import BatchedModel
from madutils.models.gaussian import GaussianModel
from madutils.models.gaussian_statistics import SufficientStatistics


def _model(mean, cov, n_seeds):
    d = len(mean)
    return GaussianModel().load_state_dict(
        {
            "mean_": torch.as_tensor(mean, dtype=torch.float64).expand(n_seeds, d).clone(),
            "covariance_": torch.as_tensor(cov, dtype=torch.float64).expand(n_seeds, d, d).clone(),
        }
    )


def test_fit_matches_numpy(rng):
    X = torch.randn(3, 50, 4, generator=rng, dtype=torch.float64)
    model = GaussianModel().fit(X)
    for s in range(3):
        np.testing.assert_allclose(model.mean_[s], X[s].mean(0))
        np.testing.assert_allclose(model.covariance_[s], np.cov(X[s].numpy(), rowvar=False))


def test_sample_covariance_scaled_by_lam(rng):
    cov = [[2.0, 0.5], [0.5, 1.0]]
    model = _model([1.0, -1.0], cov, 2)
    X = model.sample(200_000, lam=0.5, rng=rng)
    np.testing.assert_allclose(X.mean(1), [[1, -1]] * 2, atol=0.01)
    empirical = torch.stack([torch.cov(x.T) for x in X])
    np.testing.assert_allclose(empirical, 0.5 * torch.tensor(cov).expand(2, 2, 2), atol=0.02)


@pytest.mark.parametrize("n,d", [(5, 3), (3, 6), (40, 4)])  # includes the singular n - 1 < d
def test_statistics_path_matches_samples_path(n, d, rng):
    """Moments of fitted mean and covariance agree between the two paths (many seeds)."""
    seeds = 40_000
    cov = torch.diag(torch.linspace(0.5, 2.0, d, dtype=torch.float64))
    model = _model(torch.zeros(d), cov, seeds)
    explicit = SufficientStatistics.from_samples(model.sample(n, lam=0.7, rng=rng))
    fast = model.sample_statistics(n, lam=0.7, rng=rng)
    for stats in (explicit, fast):
        c = stats.covariance()
        expected = 0.7 * cov
        # E[cov] = lam Sigma, Var[cov_ii] = 2 (lam Sigma_ii)^2/(n-1), Var[mean_i] = lam Sigma_ii/n
        se = (2 * torch.diagonal(expected) ** 2 / (n - 1) / seeds).sqrt()
        assert (torch.diagonal(c.mean(0)) - torch.diagonal(expected)).abs().le(5 * se).all()
        np.testing.assert_allclose(
            torch.diagonal(c.var(0)), 2 * torch.diagonal(expected) ** 2 / (n - 1), rtol=0.06
        )
        np.testing.assert_allclose(stats.mean.var(0), torch.diagonal(expected) / n, rtol=0.05)
        assert torch.linalg.matrix_rank(c[:20]).max() == min(n - 1, d)


def test_statistics_combine_equals_pooled_samples(rng):
    a = torch.randn(2, 7, 3, generator=rng, dtype=torch.float64)
    b = torch.randn(2, 11, 3, generator=rng, dtype=torch.float64) + 2
    pooled = SufficientStatistics.from_samples(torch.cat([a, b], 1))
    combined = SufficientStatistics.from_samples(a).combine(SufficientStatistics.from_samples(b))
    empty = SufficientStatistics.empty(2, 3)
    for stats in (combined, empty.combine(combined), combined.combine(empty)):
        np.testing.assert_allclose(stats.count, pooled.count)
        np.testing.assert_allclose(stats.mean, pooled.mean)
        np.testing.assert_allclose(stats.scatter, pooled.scatter, atol=1e-12)


def test_collapsed_model_samples_stay_finite(rng):
    model = _model([0.0, 0.0, 0.0], torch.zeros(3, 3), 2)
    assert torch.isfinite(model.sample(10, rng=rng)).all()
    assert torch.isfinite(model.sample_statistics(10, rng=rng).scatter).all()


def test_distributions_shapes_and_moments(rng):
    X = GaussianDistribution(3).sample(1000, n_seeds=2, rng=rng)
    assert X.shape == (2, 1000, 3) and X.dtype == torch.float64
    grid = GridMixture()
    Y = grid.sample(50_000, rng=rng)[0]
    assert grid.means.shape == (25, 2)
    assert set(grid.means.unique().tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    np.testing.assert_allclose(Y.var(0), [2.01, 2.01], rtol=0.03)  # grid variance 2 + 0.01
    Z = Rosenbrock().sample(200_000, rng=rng)[0]
    np.testing.assert_allclose(Z[:, 0].var(), 1.0, rtol=0.02)
    residual = Z[:, 1] - Z[:, 0] ** 2
    np.testing.assert_allclose([residual.mean(), residual.var()], [0, 0.5], atol=0.01)


def _scipy_frechet(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)


def test_frechet_matches_scipy_sqrtm_reference():
    gen = np.random.default_rng(0)
    for d in (2, 8, 32):
        a = gen.normal(size=(400, d))
        b = gen.normal(size=(300, d)) @ gen.normal(size=(d, d)) * 0.3 + 0.5
        assert float(frechet_distance(a, b)) == pytest.approx(_scipy_frechet(a, b), rel=1e-8)
        assert float(frechet_distance(b, a)) == pytest.approx(float(frechet_distance(a, b)))


def test_frechet_finite_when_singular_or_fewer_samples_than_features():
    gen = np.random.default_rng(1)
    a = gen.normal(size=(10, 64))
    b = gen.normal(size=(12, 64))
    value = float(frechet_distance(a, b))
    assert np.isfinite(value) and value > 0
    # a collapsed synthetic set: every sample identical
    collapsed = np.ones((50, 5))
    real = gen.normal(size=(500, 5))
    value = float(frechet_distance(real, collapsed))
    expected = ((real.mean(0) - 1) ** 2).sum() + np.trace(np.cov(real, rowvar=False))
    assert value == pytest.approx(expected, rel=1e-10)
    assert float(frechet_distance(real, real)) == pytest.approx(0, abs=1e-9)


def test_frechet_broadcasts_one_real_set_over_seeds(rng):
    real = torch.randn(100, 3, generator=rng, dtype=torch.float64)
    synthetic = torch.randn(4, 80, 3, generator=rng, dtype=torch.float64)
    batched = frechet_distance(real, synthetic)
    assert batched.shape == (4,)
    for s in range(4):
        assert float(batched[s]) == pytest.approx(float(frechet_distance(real, synthetic[s])))


def test_gaussian_w2_closed_form():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    value = gaussian_w2_squared(
        torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[1.0]])
    )
    assert float(value) == pytest.approx(4 + 1)
    # commuting (diagonal) covariances: sum of (sqrt a_i - sqrt b_i)^2
    a, b = torch.tensor([1.0, 4.0, 0.0]), torch.tensor([9.0, 1.0, 1.0])
    value = gaussian_w2_squared(torch.zeros(3), torch.diag(a), torch.zeros(3), torch.diag(b))
    assert float(value) == pytest.approx(float(((a.sqrt() - b.sqrt()) ** 2).sum()))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: frechet_distance(np.ones((5, 3)), np.ones((5, 4))), "same number of features"),
        (lambda: frechet_distance([[np.nan, 1], [1, 2]], np.ones((5, 2))), "real contains NaN"),
        (lambda: frechet_distance(np.ones((5, 2)), [[np.inf, 1], [1, 2]]), "synthetic contains"),
        (lambda: frechet_distance(np.ones((1, 2)), np.ones((5, 2))), "at least 2 samples"),
        (lambda: GaussianModel().fit(torch.tensor([[[0.0, np.nan], [1, 1]]])), "X contains NaN"),
        (lambda: GaussianModel().fit(torch.zeros(2, 1, 3)), "at least 2 samples"),
        (lambda: _model([0.0], [[1.0]], 1).sample(5, lam=0, rng=torch.Generator()), "lam must"),
        (lambda: _model([0.0], [[1.0]], 1).sample(5, lam=1.2, rng=torch.Generator()), "lam must"),
        (lambda: _model([0.0], [[1.0]], 1).sample(0, rng=torch.Generator()), "n must"),
        (lambda: GaussianDistribution(0), "dim must"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unfitted_model_refuses_to_sample():
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianModel().sample(3, rng=torch.Generator())


def test_protocol(rng):
    """The model protocol: settings, clone, repr, fitted state, y and labels refused."""
    model = GaussianModel()
    assert isinstance(model, BatchedModel) and GaussianModel.conditional is False
    assert model.get_params() == {} and repr(model) == "GaussianModel()"
    assert not model.is_fitted
    X = torch.randn(2, 30, 3, generator=rng, dtype=torch.float64)
    with pytest.raises(ValueError, match="unconditional.*y must be None"):
        model.fit(X, torch.zeros(2, 30))
    first = model.fit(X, rng=torch.Generator().manual_seed(0))
    assert first is model and model.is_fitted and not model.clone().is_fitted
    second = GaussianModel().fit(X, rng=torch.Generator().manual_seed(0))
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="unconditional.*labels must be None"):
        model.sample(4, rng=rng, labels=torch.zeros(4))
