"""Tests of the unconditional WGAN-GP (tiny seeded models, a few seconds in all).

Covers the model protocol of :mod:`madutils.models.base` as the GAN follows it (settings in
``__init__``, ``fit(X, y=None, *, rng)``, ``sample(n, lam, *, rng)`` refusing labels), the
truncation bias, saving and the checks of bad input.
"""

from __future__ import annotations

import pytest
import torch

from madutils.models.base import ImageModel
from madutils.models.wgan import WGANGP

SETTINGS = dict(
    image_size=8,
    latent_dim=8,
    width=8,
    epochs=2,
    batch_size=16,
    lr=1e-3,
    n_critic=2,
    device="cpu",
    progress=False,
)


def _data(n: int = 36) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny networks train fastest on one thread (and do not fight other processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rng(seed: int = 3) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def fitted(_one_thread) -> WGANGP:
    return WGANGP(**SETTINGS).fit(_data(), rng=_rng())


def _same_weights(a: WGANGP, b: WGANGP) -> bool:
    for net in ("generator_", "critic_"):
        ours, theirs = getattr(a, net).state_dict(), getattr(b, net).state_dict()
        if ours.keys() != theirs.keys() or not all(torch.equal(ours[k], theirs[k]) for k in ours):
            return False
    return True


def _sample(model, lam=1.0, seed=7, n=5, **kwargs):
    return model.sample(n, lam, rng=torch.Generator().manual_seed(seed), **kwargs)


def test_sample_shapes_and_range(fitted):
    for lam in (1.0, 0.5):
        out = _sample(fitted, lam=lam)
        assert out.shape == (5, 1, 8, 8)
        assert out.dtype == torch.float32 and out.device.type == "cpu"
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert WGANGP.conditional is False
    for history in (
        fitted.loss_history_,
        fitted.wasserstein_history_,
        fitted.generator_loss_history_,
    ):
        assert len(history) == SETTINGS["epochs"]
        assert all(isinstance(v, float) for v in history)
    assert not fitted.generator_.training and not fitted.critic_.training
    assert fitted.device_ == torch.device("cpu")


def test_fit_and_sample_are_deterministic(fitted):
    state = torch.random.get_rng_state()
    other = WGANGP(**SETTINGS).fit(_data(), torch.arange(36) % 3, rng=_rng())  # y is ignored
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert _same_weights(fitted, other)
    assert other.loss_history_ == fitted.loss_history_
    assert torch.equal(_sample(fitted), _sample(other))
    assert torch.equal(_sample(fitted), _sample(fitted))  # same rng seed, same images
    assert not torch.equal(_sample(fitted, seed=7), _sample(fitted, seed=8))
    different = WGANGP(**SETTINGS).fit(_data(), rng=_rng(4))
    assert different.training_seed_ != fitted.training_seed_
    assert not _same_weights(fitted, different)
    assert not torch.equal(_sample(fitted), _sample(different))


def test_fit_draws_its_seed_from_rng(fitted):
    expected = int(torch.randint(2**31 - 1, (1,), generator=_rng()))
    assert fitted.training_seed_ == expected
    rng, reference = _rng(), _rng()
    WGANGP(**{**SETTINGS, "epochs": 1}).fit(_data(), rng=rng)
    torch.randint(2**31 - 1, (1,), generator=reference)
    assert torch.equal(rng.get_state(), reference.get_state())  # one draw, nothing else


def test_protocol(fitted):
    assert isinstance(fitted, ImageModel) and WGANGP.conditional is False
    assert "seed" not in fitted.get_params()
    with pytest.raises(ValueError, match="unconditional.*labels must be None"):
        fitted.sample(3, rng=_rng(), labels=torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError):
        WGANGP(**SETTINGS, seed=0)  # the seed comes from fit's rng


def test_sample_does_not_depend_on_batch_size(fitted):
    torch.testing.assert_close(_sample(fitted, n=7, batch_size=3), _sample(fitted, n=7))


def test_lam_truncates_the_latent(fitted):
    n, lam = 6, 0.4
    z = torch.randn((n, SETTINGS["latent_dim"]), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        plain = fitted.generator_(z)
        truncated = fitted.generator_(z * lam)
    torch.testing.assert_close(_sample(fitted, lam=1.0, n=n), plain)
    torch.testing.assert_close(_sample(fitted, lam=lam, n=n), truncated)
    assert not torch.equal(_sample(fitted, lam=1.0), _sample(fitted, lam=lam))


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "gen3" / "wgan.pt")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = WGANGP.load(path)
    assert loaded.get_params() == fitted.get_params()
    for history in ("loss_history_", "wasserstein_history_", "generator_loss_history_"):
        assert getattr(loaded, history) == getattr(fitted, history), history
    assert loaded.training_seed_ == fitted.training_seed_
    assert loaded.device_ == torch.device("cpu") and not loaded.generator_.training
    assert _same_weights(loaded, fitted)
    assert torch.equal(_sample(loaded, lam=0.8), _sample(fitted, lam=0.8))
    again = WGANGP(**SETTINGS).load_state_dict(fitted.state_dict())
    assert torch.equal(_sample(again), _sample(fitted))
    assert WGANGP.load(path, progress=True).progress is True
    with pytest.raises(ValueError, match="missing"):
        WGANGP(**SETTINGS).load_state_dict({"generator": {}})


def test_clone_get_params_and_repr(fitted):
    clone = fitted.clone()
    assert not clone.is_fitted and fitted.is_fitted
    assert clone.get_params() == fitted.get_params() == SETTINGS | {"gp_weight": 10.0}
    assert repr(clone).startswith("WGANGP(image_size=8, latent_dim=8,")


def test_default_size_is_small():
    model = WGANGP(device="cpu")
    n_params = sum(
        p.numel()
        for net in (model.build_generator(), model.build_critic())
        for p in net.parameters()
    )
    assert 100_000 <= n_params <= 400_000


def test_training_moves_samples_towards_the_data():
    # Bright top half, dark bottom half: the untrained generator outputs about 0.5 everywhere.
    g = torch.Generator().manual_seed(0)
    images = torch.full((256, 1, 8, 8), 0.1)
    images[:, :, :4] = 0.9
    images = (images + 0.05 * torch.randn(images.shape, generator=g)).clamp(0.0, 1.0)
    # width 16: width 8 can stall (with the old seed argument, seeds 0-5 at width 16 all
    # separated the halves by > 0.75)
    settings = {**SETTINGS, "width": 16, "epochs": 15, "batch_size": 32}
    model = WGANGP(**settings).fit(images, rng=_rng(2))
    samples = _sample(model, n=200)
    top, bottom = float(samples[:, :, :4].mean()), float(samples[:, :, 4:].mean())
    assert top - bottom > 0.3


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"image_size": 10}, "image_size"),
        ({"image_size": 0}, "image_size"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"width": 2.5}, "width"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"n_critic": 0}, "n_critic"),
        ({"gp_weight": -1.0}, "gp_weight"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_settings(changes, match):
    with pytest.raises(ValueError, match=match):
        WGANGP(**{**SETTINGS, **changes})


def test_image_size_message_lists_examples():
    with pytest.raises(ValueError, match=r"divisible by 4.*8, 12, 16 or 28"):
        WGANGP(image_size=10)


@pytest.mark.parametrize("lam", [0, 0.0, 1.5, -0.2, float("nan")])
def test_bad_lam(fitted, lam):
    with pytest.raises(ValueError, match="lam"):
        _sample(fitted, lam=lam)


def test_bad_sampling_inputs(fitted):
    rng = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="rng"):
        fitted.sample(3, rng=0)
    with pytest.raises(ValueError, match="n must"):
        fitted.sample(0, rng=rng)
    with pytest.raises(ValueError, match="batch_size"):
        fitted.sample(3, rng=rng, batch_size=0)
    with pytest.raises(RuntimeError, match="fit"):
        WGANGP(**SETTINGS).sample(3, rng=rng)
    with pytest.raises(RuntimeError, match="fit"):
        WGANGP(**SETTINGS).state_dict()


def test_bad_training_inputs():
    images = _data(6)
    model = WGANGP(**SETTINGS)
    rng = _rng(0)
    for bad in (
        images * 2.0,
        images - 0.5,
        torch.rand(6, 1, 16, 16),
        torch.rand(6, 8, 8),
        torch.rand(6, 3, 8, 8),
    ):
        with pytest.raises(ValueError, match="X must"):
            model.fit(bad, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        model.fit(images, rng=None)
    with pytest.raises(TypeError):
        model.fit(images)  # rng is required
    assert not model.is_fitted
