"""Tests of the batched Gaussian mixture (madutils.models.mixture) and the grid diagnostics
(madutils.metrics.mixture), with scikit-learn's GaussianMixture as the reference EM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from madutils.metrics.mixture import (
    GRID_MODE_STD,
    grid_mode_means,
    high_quality_share,
    mixture_metrics,
    mixture_total_variance,
    modal_variance,
    mode_assignments,
    mode_counts,
    modes_covered,
    total_variance,
)
from madutils.models.base import BatchedModel
from madutils.models.mixture import GaussianMixtureModel


def grid_data(n_seeds: int, n: int, seed: int, modes=None) -> torch.Tensor:
    """Samples of the equal-weight 25-mode grid mixture (or of the listed modes only)."""
    rng = torch.Generator().manual_seed(seed)
    means = grid_mode_means()
    if modes is not None:
        means = means[list(modes)]
    index = torch.randint(len(means), (n_seeds, n), generator=rng)
    noise = torch.randn(n_seeds, n, 2, generator=rng, dtype=torch.float64)
    return means[index] + GRID_MODE_STD * noise


def known_model() -> GaussianMixtureModel:
    """A fitted-looking model with two seeds and three well separated components."""
    weights = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    means = torch.tensor(
        [[[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0]], [[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]]],
        dtype=torch.float64,
    )
    covariances = torch.tensor(
        [[[1.0, 0.5], [0.5, 1.0]], [[0.5, 0.0], [0.0, 2.0]], [[1.0, -0.3], [-0.3, 0.4]]],
        dtype=torch.float64,
    ).expand(2, -1, -1, -1)
    state = {"weights_": weights, "means_": means, "covariances_": covariances.clone()}
    return GaussianMixtureModel(n_components=3).load_state_dict(state)


# --------------------------------------------------------------------------- EM


@pytest.mark.parametrize(
    ("n_seeds", "n", "init"), [(3, 1000, "k-means++"), (3, 300, "k-means++"), (4, 500, "random")]
)
def test_em_at_least_as_good_as_sklearn_from_the_same_start(n_seeds, n, init):
    X = grid_data(n_seeds, n, seed=n)
    model = GaussianMixtureModel(n_components=25, max_iter=200, tol=1e-4, init=init)
    start = model.initial_parameters(X, rng=torch.Generator().manual_seed(1))
    model.fit(X, start=start)
    ours = model.score(X)
    assert torch.allclose(ours, model.lower_bound_)
    weights, means, covariances = (t.numpy() for t in start)
    for s in range(n_seeds):
        reference = GaussianMixture(
            n_components=25,
            covariance_type="full",
            weights_init=weights[s],
            means_init=means[s],
            precisions_init=np.linalg.inv(covariances[s]),
            reg_covar=1e-6,
            tol=1e-3,
            max_iter=200,
            init_params="random_from_data",  # overridden by the *_init arguments
            random_state=0,
        ).fit(X[s].numpy())
        assert float(ours[s]) >= reference.score(X[s].numpy()) - 1e-6
        assert int(model.n_iter_[s]) >= reference.n_iter_


def test_first_iteration_matches_sklearn_exactly():
    X = grid_data(2, 400, seed=3)
    model = GaussianMixtureModel(max_iter=1)
    start = model.initial_parameters(X, rng=torch.Generator().manual_seed(0))
    model.fit(X, start=start)
    for s in range(2):
        reference = GaussianMixture(
            n_components=25,
            covariance_type="full",
            weights_init=start[0][s].numpy(),
            means_init=start[1][s].numpy(),
            precisions_init=np.linalg.inv(start[2][s].numpy()),
            reg_covar=1e-6,
            max_iter=1,
            init_params="random_from_data",
            random_state=0,
        )
        with pytest.warns(Warning):  # scikit-learn warns that one iteration did not converge
            reference.fit(X[s].numpy())
        np.testing.assert_allclose(model.weights_[s].numpy(), reference.weights_, atol=1e-12)
        np.testing.assert_allclose(model.means_[s].numpy(), reference.means_, atol=1e-10)
        np.testing.assert_allclose(
            model.covariances_[s].numpy(), reference.covariances_, rtol=1e-8, atol=1e-12
        )


def test_batched_fit_equals_fitting_each_seed_alone():
    X = grid_data(4, 400, seed=7)
    batched = GaussianMixtureModel(tol=1e-5, init="random")  # a poor start: many iterations
    start = batched.initial_parameters(X, rng=torch.Generator().manual_seed(2))
    batched.fit(X, start=start)
    assert len(set(batched.n_iter_.tolist())) > 1  # seeds stop at different iterations
    for s in range(4):
        alone = GaussianMixtureModel(tol=1e-5, init="random").fit(
            X[s : s + 1], start=tuple(t[s : s + 1] for t in start)
        )
        assert int(alone.n_iter_[0]) == int(batched.n_iter_[s])
        for name in ("weights_", "means_", "covariances_", "lower_bound_"):
            torch.testing.assert_close(
                getattr(alone, name)[0], getattr(batched, name)[s], rtol=1e-9, atol=1e-12
            )


def test_fit_is_deterministic_given_the_generator():
    X = grid_data(3, 300, seed=11)
    first = GaussianMixtureModel().fit(X, rng=torch.Generator().manual_seed(5))
    second = GaussianMixtureModel().fit(X, rng=torch.Generator().manual_seed(5))
    other = GaussianMixtureModel().fit(X, rng=torch.Generator().manual_seed(6))
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name])
    assert not torch.equal(first.means_, other.means_)


def test_fit_records_convergence_and_valid_parameters():
    X = grid_data(3, 500, seed=12)
    model = GaussianMixtureModel().fit(X, rng=torch.Generator().manual_seed(0))
    S, K, d = 3, 25, 2
    assert model.weights_.shape == (S, K)
    assert model.means_.shape == (S, K, d)
    assert model.covariances_.shape == (S, K, d, d)
    assert model.n_iter_.dtype == torch.int64 and model.n_iter_.shape == (S,)
    assert model.converged_.dtype == torch.bool and bool(model.converged_.all())
    torch.testing.assert_close(model.weights_.sum(-1), torch.ones(S, dtype=torch.float64))
    assert bool((torch.linalg.eigvalsh(model.covariances_) > 0).all())
    assert model.weights_.dtype == torch.float64


def test_hard_assignment_initialisation():
    X = grid_data(2, 500, seed=4)
    model = GaussianMixtureModel()
    for init in ("k-means++", "random"):
        model.init = init
        weights, means, covariances = model.initial_parameters(
            X, rng=torch.Generator().manual_seed(0)
        )
        counts = weights * X.shape[1]  # one-hot responsibilities: shares of whole samples
        torch.testing.assert_close(counts, counts.round(), atol=1e-9, rtol=0)
        assert bool((covariances.diagonal(dim1=-2, dim2=-1) >= 1e-6 - 1e-12).all())
        assert means.shape == (2, 25, 2)
    # k-means++ seeding on well separated modes puts the components on the 25 modes.
    model.init = "k-means++"
    _, means, _ = model.initial_parameters(X, rng=torch.Generator().manual_seed(0))
    covered = modes_covered(means, min_share=1.0)  # each mode holds one of the 25 means
    assert covered.tolist() == [25, 25]


def test_empty_components_and_duplicate_points_give_no_nan():
    X = grid_data(2, 200, seed=5)
    model = GaussianMixtureModel(n_components=4, max_iter=20)
    weights, means, covariances = model.initial_parameters(X, rng=torch.Generator().manual_seed(0))
    means[:, 0] = 1e3  # no sample is ever responsible for this component
    model.fit(X, start=(weights, means, covariances))
    assert all(bool(torch.isfinite(t).all()) for t in model.state_dict().values())
    assert bool((model.weights_[:, 0] < 1e-12).all())
    # Three distinct points for five components: k-means++ runs out of distances.
    few = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    X = few.repeat(2, 10, 1)
    model = GaussianMixtureModel(n_components=5).fit(X, rng=torch.Generator().manual_seed(0))
    assert all(bool(torch.isfinite(t).all()) for t in model.state_dict().values())
    assert bool(torch.isfinite(model.score(X)).all())


def test_score_samples_matches_scipy():
    model = known_model()
    X = torch.randn(2, 50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = model.score_samples(3 * X)
    for s in range(2):
        density = sum(
            float(model.weights_[s, k])
            * multivariate_normal(model.means_[s, k].numpy(), model.covariances_[s, k].numpy()).pdf(
                3 * X[s].numpy()
            )
            for k in range(3)
        )
        np.testing.assert_allclose(ours[s].numpy(), np.log(density), rtol=1e-10)
    torch.testing.assert_close(model.score(3 * X), ours.mean(-1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu():
    X = grid_data(3, 500, seed=31)
    cpu = GaussianMixtureModel(init="random", max_iter=30, tol=1e-12)
    start = cpu.initial_parameters(X, rng=torch.Generator().manual_seed(0))
    cpu.fit(X, start=start)
    gpu = cpu.clone().fit(X.cuda(), start=tuple(t.cuda() for t in start))
    assert gpu.means_.device.type == "cuda"
    for name, value in cpu.state_dict().items():
        torch.testing.assert_close(gpu.state_dict()[name].cpu(), value, rtol=1e-6, atol=1e-9)
    rng = torch.Generator(device="cuda").manual_seed(0)
    gpu = GaussianMixtureModel().fit(X.cuda(), rng=rng)
    samples = gpu.sample(100, 0.5, rng=rng)
    assert samples.device.type == "cuda" and bool(torch.isfinite(samples).all())
    assert modes_covered(gpu.sample(2000, rng=rng).cpu()).tolist() == [25, 25, 25]


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("lam", [1.0, 0.5])
def test_samples_have_the_right_moments(lam):
    model = known_model()
    n = 20_000
    samples = model.sample(n, lam, rng=torch.Generator().manual_seed(3))
    assert samples.shape == (2, n, 2) and samples.dtype == torch.float64
    for s in range(2):
        labels = torch.cdist(samples[s], model.means_[s]).argmin(-1)  # components far apart
        for k in range(3):
            members = samples[s][labels == k]
            share = len(members) / n
            assert abs(share - float(model.weights_[s, k])) < 0.015
            torch.testing.assert_close(members.mean(0), model.means_[s, k], atol=0.06, rtol=0)
            covariance = torch.cov(members.T)
            torch.testing.assert_close(
                covariance, lam * model.covariances_[s, k], atol=0.1 * lam, rtol=0
            )


def test_sampling_is_deterministic_given_the_generator_state():
    model = known_model()
    rng = torch.Generator().manual_seed(9)
    state = rng.get_state()
    first = model.sample(100, rng=rng)
    rng.set_state(state)
    assert torch.equal(first, model.sample(100, rng=rng))
    assert not torch.equal(first, model.sample(100, rng=rng))


def test_smaller_lam_only_shrinks_around_the_same_components():
    model = known_model()
    full = model.sample(500, 1.0, rng=torch.Generator().manual_seed(1))
    half = model.sample(500, 0.25, rng=torch.Generator().manual_seed(1))
    # Same components and same normal draws: for one k, half - mu_k = sqrt(0.25) (full - mu_k).
    means = model.means_.unsqueeze(1)  # (S, 1, K, d)
    gap = (half.unsqueeze(2) - means) - 0.5 * (full.unsqueeze(2) - means)
    assert bool((gap.abs().amax(-1).amin(-1) < 1e-12).all())


# --------------------------------------------------------------------------- estimator protocol


def test_clone_and_state_dict_round_trip():
    X = grid_data(2, 300, seed=2)
    model = GaussianMixtureModel(n_components=10, max_iter=50, tol=1e-3, reg_covar=1e-5)
    model.fit(X, rng=torch.Generator().manual_seed(0))
    fresh = model.clone()
    assert not fresh.is_fitted
    assert fresh.get_params() == model.get_params()
    assert "n_components=10" in repr(fresh)
    restored = fresh.load_state_dict(model.state_dict())
    assert restored is fresh and fresh.is_fitted
    assert torch.equal(fresh.score_samples(X), model.score_samples(X))
    a = model.sample(50, rng=torch.Generator().manual_seed(4))
    b = fresh.sample(50, rng=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_protocol():
    """The model protocol: fit with the same rng twice, repr, y and labels refused."""
    X = grid_data(2, 200, seed=3)
    model = GaussianMixtureModel(n_components=5, max_iter=20)
    assert isinstance(model, BatchedModel) and GaussianMixtureModel.conditional is False
    assert repr(model).startswith("GaussianMixtureModel(n_components=5, max_iter=20, tol=")
    with pytest.raises(ValueError, match="unconditional.*y must be None"):
        model.fit(X, torch.zeros(2, 200), rng=torch.Generator().manual_seed(0))
    assert not model.is_fitted
    first = model.fit(X, rng=torch.Generator().manual_seed(0))
    second = model.clone().fit(X, rng=torch.Generator().manual_seed(0))
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    with pytest.raises(ValueError, match="unconditional.*labels must be None"):
        first.sample(3, rng=torch.Generator(), labels=torch.tensor([0, 1, 2]))


def test_unfitted_model_refuses_to_sample_or_score():
    model = GaussianMixtureModel()
    with pytest.raises(RuntimeError, match="not fitted"):
        model.sample(10, rng=torch.Generator())
    with pytest.raises(RuntimeError, match="not fitted"):
        model.score(grid_data(1, 30, seed=0))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("lam", [0, 0.0, 1.5, -0.5, float("nan")])
def test_bad_lam(lam):
    with pytest.raises(ValueError, match="lam"):
        known_model().sample(10, lam, rng=torch.Generator())


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 0.0}, "tol"),
        ({"tol": -1.0}, "tol"),
        ({"reg_covar": -1e-6}, "reg_covar"),
        ({"init": "kmeans"}, "init"),
        ({"n_local_trials": 0}, "n_local_trials"),
    ],
)
def test_bad_settings(params, name):
    model = GaussianMixtureModel(**params)
    assert getattr(model, name) == params[name]  # stored unchanged, checked in fit
    with pytest.raises(ValueError, match=name):
        model.fit(grid_data(1, 50, seed=0), rng=torch.Generator())


def test_bad_data():
    model = GaussianMixtureModel(n_components=5)
    rng = torch.Generator()
    X = grid_data(2, 20, seed=0)
    bad = X.clone()
    bad[1, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="X contains NaN"):
        model.fit(bad, rng=rng)
    with pytest.raises(ValueError, match="n_components=5"):
        model.fit(X[:, :4], rng=rng)
    with pytest.raises(ValueError, match="X must be 3-D"):
        model.fit(X[0], rng=rng)
    with pytest.raises(ValueError, match="rng"):
        model.fit(X)
    with pytest.raises(ValueError, match="start weights"):
        model.fit(
            X, start=(torch.ones(2, 4), torch.zeros(2, 5, 2), torch.eye(2).repeat(2, 5, 1, 1))
        )
    fitted = known_model()
    with pytest.raises(ValueError, match="n"):
        fitted.sample(0, rng=rng)
    with pytest.raises(ValueError, match="X must have shape"):
        fitted.score(X[:, :, :1])


# --------------------------------------------------------------------------- diagnostics


def test_grid_mode_means():
    means = grid_mode_means()
    assert means.shape == (25, 2) and means.dtype == torch.float64
    assert set(means[:, 0].tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    assert torch.equal(means.mean(0), torch.zeros(2, dtype=torch.float64))
    assert len({tuple(m) for m in means.tolist()}) == 25


def test_one_grid_definition_for_the_sampler_and_the_metrics():
    from madutils.data import distributions

    grid = distributions.GridMixture()
    assert torch.equal(grid.means, grid_mode_means())
    assert grid.std == GRID_MODE_STD == 0.1
    assert grid_mode_means is distributions.grid_means
    assert GRID_MODE_STD is distributions.GRID_MODE_STD
    axis = grid_mode_means(3, spacing=2.0)[:, 0].unique()
    assert axis.tolist() == [-2.0, 0.0, 2.0]
    X = grid.sample(1000, n_seeds=2, rng=torch.Generator().manual_seed(3))
    assert modes_covered(X, grid.means, grid.std).tolist() == [25, 25]


def test_real_samples_cover_all_modes():
    X = grid_data(3, 1000, seed=21)
    assert modes_covered(X).tolist() == [25, 25, 25]
    counts = mode_counts(X)
    assert counts.shape == (3, 25) and bool((counts.sum(-1) <= 1000).all())
    share = high_quality_share(X)
    expected = 1 - math.exp(-4.5)  # chi-square(2) mass inside 3 standard deviations
    assert bool(((share - expected).abs() < 0.015).all())


def test_samples_of_ten_modes_cover_ten():
    X = grid_data(2, 1000, seed=22, modes=range(0, 20, 2))
    assert modes_covered(X).tolist() == [10, 10]
    counts = mode_counts(X)
    assert bool((counts[:, 1::2] == 0).all())


def test_sparse_strays_do_not_count_as_coverage():
    X = grid_data(1, 990, seed=23, modes=range(24))
    strays = grid_mode_means()[24].expand(1, 3, 2)  # 3 samples on mode 24: 7.5% of 40
    X = torch.cat([X, strays], dim=1)
    assert modes_covered(X).tolist() == [24]
    assert modes_covered(X, min_share=0.05).tolist() == [25]


def test_mode_assignment_rule():
    means = grid_mode_means()
    samples = torch.tensor([[[0.29, 0.0], [0.31, 0.0], [2.0, -1.95]]], dtype=torch.float64)
    assigned = mode_assignments(samples, means)
    assert assigned[0, 0] == 12 and assigned[0, 1] == -1  # (0, 0) is mode 12
    assert means[assigned[0, 2]].tolist() == [2.0, -2.0]


def test_variances_of_the_real_grid():
    X = grid_data(2, 20_000, seed=24)
    # Per coordinate: variance of the uniform law on {-2, ..., 2} (2) plus 0.01 within modes.
    torch.testing.assert_close(
        total_variance(X), torch.full((2,), 4.02, dtype=X.dtype), atol=0.1, rtol=0
    )
    K = 25
    weights = torch.full((1, K), 1 / K, dtype=torch.float64)
    covariances = 0.01 * torch.eye(2, dtype=torch.float64).expand(1, K, 2, 2)
    exact = mixture_total_variance(weights, grid_mode_means().unsqueeze(0), covariances)
    torch.testing.assert_close(exact, torch.tensor([4.02], dtype=torch.float64))
    torch.testing.assert_close(
        modal_variance(covariances), torch.tensor([0.01], dtype=torch.float64)
    )


def test_modal_variance_of_a_mixture_fitted_to_real_data():
    X = grid_data(3, 2000, seed=25)
    model = GaussianMixtureModel().fit(X, rng=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        modal_variance(model.covariances_),
        torch.full((3,), 0.01, dtype=torch.float64),
        rtol=0.1,
        atol=0,
    )
    torch.testing.assert_close(
        modal_variance(model.covariances_, model.weights_),
        torch.full((3,), 0.01, dtype=torch.float64),
        rtol=0.1,
        atol=0,
    )
    by_parameters = mixture_total_variance(model.weights_, model.means_, model.covariances_)
    torch.testing.assert_close(by_parameters, total_variance(X) * 1999 / 2000, rtol=1e-5, atol=0)
    samples = model.sample(2000, rng=torch.Generator().manual_seed(1))
    metrics = mixture_metrics(samples, model.covariances_)
    assert metrics["modes_covered"].tolist() == [25, 25, 25]
    assert set(metrics) == {"modes_covered", "modal_variance", "total_variance"}


def test_modal_variance_weighting():
    covariances = torch.stack(
        [torch.eye(2, dtype=torch.float64), 3 * torch.eye(2, dtype=torch.float64)]
    ).unsqueeze(0)
    assert modal_variance(covariances).item() == pytest.approx(2.0)
    weights = torch.tensor([[3.0, 1.0]], dtype=torch.float64)  # normalised inside
    assert modal_variance(covariances, weights).item() == pytest.approx(1.5)


def test_diagnostics_bad_input():
    X = grid_data(1, 100, seed=0)
    with pytest.raises(ValueError, match="samples must be 3-D"):
        modes_covered(X[0])
    with pytest.raises(ValueError, match="min_share"):
        modes_covered(X, min_share=0.0)
    with pytest.raises(ValueError, match="mode_std"):
        modes_covered(X, mode_std=-1.0)
    with pytest.raises(ValueError, match="same number of features"):
        modes_covered(X, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="samples contains NaN"):
        total_variance(torch.full((1, 3, 2), float("nan")))
    with pytest.raises(ValueError, match="covariances"):
        modal_variance(torch.eye(2))
    with pytest.raises(ValueError, match="weights"):
        modal_variance(torch.eye(2).expand(1, 3, 2, 2), torch.ones(1, 2))
