"""Tests of the batched affine coupling flow (madutils.models.flow)."""

from __future__ import annotations

import math

import pytest
import torch

from madutils.data.distributions import Rosenbrock
from madutils.models.base import BatchedModel, GenerativeModel
from madutils.models.flow import CouplingFlow
from madutils.models.gaussian import GaussianModel

# Small settings: every fit below takes well under a second on one CPU core.
SMALL = {"n_layers": 4, "hidden": 16, "epochs": 2, "batch_size": 128}
STANDARD_GAUSSIAN_LOG_DENSITY = -math.log(2 * math.pi) - 1.0  # mean log N(x; 0, I_2), about -2.84


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module on one thread: the flows here are tiny, and on a busy two-core machine
    two threads made the fits up to ten times slower (threads waiting for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rosenbrock(n_seeds: int, n: int, seed: int) -> torch.Tensor:
    return Rosenbrock().sample(n, n_seeds=n_seeds, rng=torch.Generator().manual_seed(seed))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def fitted_rosenbrock() -> CouplingFlow:
    """A flow per seed fitted to Rosenbrock samples, long enough to learn the parabola."""
    X = rosenbrock(2, 4000, seed=0)
    model = CouplingFlow(n_layers=6, hidden=32, epochs=6, batch_size=128, lr=3e-3)
    return model.fit(X, rng=gen(1))


@pytest.fixture(scope="module")
def small_fit() -> CouplingFlow:
    return CouplingFlow(**SMALL).fit(rosenbrock(3, 500, seed=2), rng=gen(3))


# --------------------------------------------------------------------------- shapes and state


def test_shapes_and_dtypes(small_fit):
    model = small_fit
    assert model.n_seeds == 3
    assert model.loss_history_.shape == (3, SMALL["epochs"])
    assert torch.isfinite(model.loss_history_).all()
    L, H = SMALL["n_layers"], SMALL["hidden"]
    expected = {
        "shift_": (3, 2),
        "scale_": (3, 2),
        "weight_in_": (3, L, 2, H),
        "bias_in_": (3, L, H),
        "weight_hidden_": (3, L, H, H),
        "bias_hidden_": (3, L, H),
        "weight_out_": (3, L, H, 4),
        "bias_out_": (3, L, 4),
    }
    state = model.state_dict()
    assert set(state) == set(expected)
    for name, shape in expected.items():
        assert tuple(state[name].shape) == shape, name
    samples = model.sample(7, rng=gen(0))
    assert samples.shape == (3, 7, 2)
    assert samples.dtype == torch.float64
    log_density = model.log_prob(rosenbrock(3, 11, seed=5))
    assert log_density.shape == (3, 11)
    assert log_density.dtype == torch.float64
    assert torch.isfinite(log_density).all()
    assert model.score(rosenbrock(3, 11, seed=5)).shape == (3,)


def test_three_features_and_latent_round_trip():
    X = torch.randn(2, 300, 3, generator=gen(0), dtype=torch.float64) * torch.tensor([1, 3, 0.5])
    model = CouplingFlow(n_layers=3, hidden=8, epochs=2, batch_size=64).fit(X, rng=gen(1))
    assert model.sample(5, rng=gen(2)).shape == (2, 5, 3)
    Z = model.to_latent(X)
    assert Z.shape == X.shape
    torch.testing.assert_close(model.from_latent(Z), X, rtol=0, atol=1e-10)


def test_latent_round_trip_and_change_of_variables(fitted_rosenbrock):
    model = fitted_rosenbrock
    X = rosenbrock(2, 1000, seed=7)
    Z = model.to_latent(X)
    torch.testing.assert_close(model.from_latent(Z), X, rtol=0, atol=1e-10)
    # log p(x) = log N(z; 0, I) + log |det dz/dx|; check the determinant by finite differences.
    x = X[:, :5]
    eps = 1e-6
    columns = []
    for j in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[j] = eps
        columns.append((model.to_latent(x + step) - model.to_latent(x - step)) / (2 * eps))
    jacobian = torch.stack(columns, dim=-1)  # (S, 5, d_z, d_x)
    z = model.to_latent(x)
    expected = -0.5 * z.square().sum(-1) - math.log(2 * math.pi) + jacobian.det().abs().log()
    torch.testing.assert_close(model.log_prob(x), expected, rtol=0, atol=1e-5)


def test_density_integrates_to_one(fitted_rosenbrock):
    h = 0.05
    x1 = torch.arange(-6, 6, h, dtype=torch.float64) + h / 2
    x2 = torch.arange(-5, 20, h, dtype=torch.float64) + h / 2
    grid = torch.cartesian_prod(x1, x2).expand(2, -1, -1)
    mass = fitted_rosenbrock.log_prob(grid).exp().sum(-1) * h * h
    torch.testing.assert_close(mass, torch.ones(2, dtype=torch.float64), rtol=0, atol=0.02)


def test_state_dict_round_trip_samples_identically(small_fit):
    restored = small_fit.clone().load_state_dict(small_fit.state_dict())
    assert restored.get_params() == small_fit.get_params()
    assert torch.equal(restored.sample(50, 0.7, rng=gen(4)), small_fit.sample(50, 0.7, rng=gen(4)))
    X = rosenbrock(3, 20, seed=6)
    assert torch.equal(restored.log_prob(X), small_fit.log_prob(X))


def test_clone_is_unfitted_with_same_settings(small_fit):
    clone = small_fit.clone()
    assert not clone.is_fitted
    assert clone.get_params() == {**SMALL, "lr": 1e-3, "weight_decay": 0.0, "max_log_scale": 2.0}
    with pytest.raises(RuntimeError, match="not fitted"):
        clone.sample(3, rng=gen(0))


def test_protocol(small_fit):
    """The model protocol: settings, repr, fitted state, y and labels refused."""
    assert isinstance(small_fit, BatchedModel) and isinstance(small_fit, GenerativeModel)
    assert CouplingFlow.conditional is False and small_fit.is_fitted
    assert repr(small_fit.clone()).startswith(f"CouplingFlow(n_layers={SMALL['n_layers']},")
    X = rosenbrock(3, 20, seed=6)
    with pytest.raises(ValueError, match="unconditional.*y must be None"):
        CouplingFlow(**SMALL).fit(X, torch.zeros(3, 20), rng=gen(0))
    with pytest.raises(ValueError, match="unconditional.*labels must be None"):
        small_fit.sample(3, rng=gen(0), labels=torch.tensor([0, 1, 2]))
    assert torch.equal(
        small_fit.sample(5, rng=gen(1), labels=None), small_fit.sample(5, rng=gen(1))
    )


# --------------------------------------------------------------------------- randomness


def test_fit_and_sample_are_deterministic_and_leave_global_rng_alone():
    X = rosenbrock(2, 300, seed=0)
    before = torch.random.get_rng_state()
    a = CouplingFlow(**SMALL).fit(X, rng=gen(9))
    b = CouplingFlow(**SMALL).fit(X, rng=gen(9))
    assert torch.equal(torch.random.get_rng_state(), before)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert torch.equal(a.loss_history_, b.loss_history_)
    assert torch.equal(a.sample(40, rng=gen(1)), b.sample(40, rng=gen(1)))
    assert not torch.equal(a.sample(40, rng=gen(1)), a.sample(40, rng=gen(2)))
    c = CouplingFlow(**SMALL).fit(X, rng=gen(10))
    assert not torch.equal(a.weight_in_, c.weight_in_)


def test_seeds_are_trained_independently():
    """A seed's flow depends on its own data only; equal data in different seeds still get
    different random initialisations and shuffles."""
    X = rosenbrock(3, 300, seed=0)
    other = X.clone()
    other[1:] = rosenbrock(2, 300, seed=1) * 3 + 1
    a = CouplingFlow(**SMALL).fit(X, rng=gen(5))
    b = CouplingFlow(**SMALL).fit(other, rng=gen(5))
    for name, tensor in a.state_dict().items():
        torch.testing.assert_close(tensor[0], b.state_dict()[name][0], rtol=0, atol=0, msg=name)
        assert not torch.equal(tensor[1], b.state_dict()[name][1]), name
    torch.testing.assert_close(a.loss_history_[0], b.loss_history_[0], rtol=0, atol=0)

    same = X[:1].expand(3, -1, -1)
    c = CouplingFlow(**SMALL).fit(same, rng=gen(5))
    assert torch.equal(c.shift_[0], c.shift_[1])
    assert not torch.equal(c.weight_in_[0], c.weight_in_[1])
    assert not torch.equal(c.weight_out_[0], c.weight_out_[1])


# --------------------------------------------------------------------------- what it learns


def test_gaussian_data_give_the_gaussian_likelihood():
    X = torch.randn(2, 2000, 2, generator=gen(0), dtype=torch.float64)
    held_out = torch.randn(2, 4000, 2, generator=gen(1), dtype=torch.float64)
    model = CouplingFlow(**SMALL).fit(X, rng=gen(2))
    score = model.score(held_out)
    assert (score - STANDARD_GAUSSIAN_LOG_DENSITY).abs().max() < 0.15, score


def test_rosenbrock_fit_beats_a_gaussian_and_reproduces_the_mean(fitted_rosenbrock):
    model = fitted_rosenbrock
    held_out = rosenbrock(2, 5000, seed=11)
    flow_nll = -model.score(held_out)
    gaussian = GaussianModel().fit(rosenbrock(2, 4000, seed=0))
    diff = held_out - gaussian.mean_.unsqueeze(1)
    precision = torch.linalg.inv(gaussian.covariance_)
    mahalanobis = torch.einsum("sni,sij,snj->sn", diff, precision, diff)
    gaussian_nll = (
        0.5 * mahalanobis.mean(-1)
        + math.log(2 * math.pi)
        + 0.5 * torch.logdet(gaussian.covariance_)
    )
    # True entropy 2.49 nats; the Gaussian fit has about 3.30.
    assert (flow_nll < gaussian_nll - 0.4).all(), (flow_nll, gaussian_nll)
    assert (flow_nll < 2.75).all(), flow_nll
    history = model.loss_history_
    assert (history[:, -1] < history[:, 0]).all()
    samples = model.sample(20000, rng=gen(12))
    mean = samples.mean(1)
    assert (mean[:, 0].abs() < 0.1).all(), mean
    assert ((mean[:, 1] - 1).abs() < 0.15).all(), mean


def test_sampling_bias_shrinks_the_spread(fitted_rosenbrock):
    model = fitted_rosenbrock
    full = model.sample(5000, 1.0, rng=gen(3))
    biased = model.sample(5000, 0.3, rng=gen(3))
    assert not torch.equal(full, biased)
    assert (biased.var(1) < 0.8 * full.var(1)).all()
    # The biased samples come from the flow's high-density core.
    assert (model.score(biased) > model.score(full)).all()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("n_layers", 0),
        ("hidden", 2.5),
        ("epochs", 0),
        ("batch_size", -1),
        ("lr", 0.0),
        ("weight_decay", -1.0),
        ("max_log_scale", float("inf")),
    ],
)
def test_bad_settings_are_rejected(setting, value):
    model = CouplingFlow(**{setting: value})
    with pytest.raises(ValueError, match=setting):
        model.fit(rosenbrock(1, 20, seed=0), rng=gen(0))


@pytest.mark.parametrize("lam", [0, 0.0, -0.5, 1.5, float("nan")])
def test_bad_lam_is_rejected(small_fit, lam):
    with pytest.raises(ValueError, match="lam"):
        small_fit.sample(5, lam, rng=gen(0))


def test_bad_data_are_rejected(small_fit):
    model = CouplingFlow(**SMALL)
    with pytest.raises(ValueError, match="X must be 3-D"):
        model.fit(torch.zeros(20, 2), rng=gen(0))
    with pytest.raises(ValueError, match="n_features >= 2"):
        model.fit(torch.zeros(1, 20, 1), rng=gen(0))
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.fit(torch.zeros(1, 1, 2), rng=gen(0))
    bad = rosenbrock(1, 20, seed=0)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="X contains NaN"):
        model.fit(bad, rng=gen(0))
    with pytest.raises(ValueError, match="rng must be a torch.Generator"):
        model.fit(rosenbrock(1, 20, seed=0), rng=None)
    with pytest.raises(ValueError, match="n_seeds=3"):
        small_fit.log_prob(rosenbrock(2, 20, seed=0))
    with pytest.raises(ValueError, match="X must be 3-D"):
        small_fit.log_prob(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        small_fit.sample(0, rng=gen(0))
