"""Tests of the compact StyleGAN2 (tiny seeded models, a few seconds in all).

Covers its pieces against direct computations (truncation in W space, the modulated
convolution with demodulation, the R1 penalty, the minibatch standard deviation), the model
protocol of :mod:`madutils.models.base` as it follows it (``fit(X, y=None, *, rng)``,
``sample(n, lam, *, rng)``, determinism, global random state, saving with ``w_avg``) and the
checks of bad input.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from madutils.models.base import ImageModel
from madutils.models.stylegan2 import (
    StyleGAN2,
    minibatch_stddev,
    modulated_conv2d,
    path_lengths,
    r1_penalty,
    truncate,
)

SETTINGS = dict(
    image_size=8,
    image_channels=1,
    latent_dim=8,
    mapping_layers=2,
    width=8,
    max_width=16,
    epochs=2,
    batch_size=16,
    r1_every=2,
    path_length=1.0,
    pl_every=2,
    device="cpu",
    progress=False,
)


def _data(n: int = 32, channels: int = 1, size: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, channels, size, size, generator=g)


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
def fitted(_one_thread) -> StyleGAN2:
    return StyleGAN2(**SETTINGS).fit(_data(), rng=_rng())


def _same_weights(a: StyleGAN2, b: StyleGAN2) -> bool:
    for net in ("generator_", "discriminator_"):
        ours, theirs = getattr(a, net).state_dict(), getattr(b, net).state_dict()
        if ours.keys() != theirs.keys() or not all(torch.equal(ours[k], theirs[k]) for k in ours):
            return False
    return True


def _sample(model, lam=1.0, seed=7, n=5, **kwargs):
    return model.sample(n, lam, rng=torch.Generator().manual_seed(seed), **kwargs)


# -- pieces ---------------------------------------------------------------------------------


def test_truncate():
    g = torch.Generator().manual_seed(0)
    w, w_avg = torch.randn(5, 8, generator=g), torch.randn(8, generator=g)
    assert torch.equal(truncate(w, w_avg, 1.0), w)
    torch.testing.assert_close(truncate(w, w_avg, 1e-12), w_avg.expand(5, 8), rtol=0.0, atol=1e-10)
    torch.testing.assert_close(truncate(w, w_avg, 0.5), (w + w_avg) / 2)


def test_sample_follows_the_manual_path(fitted):
    n, g = 6, fitted.generator_
    for lam in (1.0, 0.6):
        rng = _rng(7)
        z = torch.randn((n, SETTINGS["latent_dim"]), generator=rng)
        noise = [torch.randn(s, generator=rng) for s in g.noise_shapes(n)]
        with torch.no_grad():
            w = g.map(z)
            if lam != 1.0:
                w = fitted.w_avg_ + lam * (w - fitted.w_avg_)
            expected = ((g(w, noise) + 1.0) / 2.0).clamp(0.0, 1.0)
        torch.testing.assert_close(_sample(fitted, lam=lam, n=n), expected)
    assert not torch.equal(_sample(fitted, lam=1.0), _sample(fitted, lam=0.6))


def test_small_lam_gives_the_average_w_image(fitted):
    # lam -> 0: every latent maps to w_avg_, so the images differ only by their noise inputs
    plain, truncated = _sample(fitted, n=20), _sample(fitted, lam=1e-6, n=20)
    assert float(truncated.std(0).mean()) < float(plain.std(0).mean())


def _reference_modulated_conv(x, weight, styles, demodulate):
    out = []
    for xi, si in zip(x.double(), styles.double(), strict=True):
        w = weight.double() * si[None, :, None, None]
        if demodulate:
            for o in range(w.shape[0]):
                w[o] = w[o] / math.sqrt(float((w[o] ** 2).sum()) + 1e-8)
        out.append(F.conv2d(xi[None], w, padding=weight.shape[-1] // 2))
    return torch.cat(out).float()


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_modulated_conv_matches_per_sample_reference(demodulate, k):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, 5, generator=g)
    weight = torch.randn(6, 4, k, k, generator=g)
    styles = torch.rand(3, 4, generator=g) + 0.5
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate)
    assert out.shape == (3, 6, 5, 5)
    torch.testing.assert_close(out, _reference_modulated_conv(x, weight, styles, demodulate))


def test_demodulation_gives_unit_variance():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 16, 64, 64, generator=g)
    weight = torch.randn(5, 16, 3, 3, generator=g) * 7.0  # any scale: demodulation removes it
    styles = torch.rand(2, 16, generator=g) * 3.0 + 0.1
    out = modulated_conv2d(x, weight, styles)[:, :, 1:-1, 1:-1]  # interior: no zero padding
    variance = out.var(dim=(2, 3))
    assert variance.shape == (2, 5)
    torch.testing.assert_close(variance, torch.ones(2, 5), rtol=0.0, atol=0.15)
    undemodulated = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1]
    assert float(undemodulated.var(dim=(2, 3)).min()) > 10.0


def test_r1_penalty_analytic():
    g = torch.Generator().manual_seed(3)
    a, x = torch.rand(1, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)

    def quadratic(images):  # D(x) = sum a x^2, so grad D = 2 a x
        return (a * images**2).sum(dim=(1, 2, 3))

    expected = (2 * a * x).square().flatten(1).sum(1).mean()
    torch.testing.assert_close(r1_penalty(quadratic, x), expected)


def test_r1_penalty_matches_finite_differences():
    model = StyleGAN2(**SETTINGS)
    disc = model.build_discriminator().double()
    x = torch.rand(2, 1, 8, 8, generator=_rng(0), dtype=torch.float64) * 2 - 1
    penalty = r1_penalty(disc, x)
    grad, h = torch.zeros_like(x), 1e-6
    with torch.no_grad():
        for i in range(x.numel()):
            step = torch.zeros(x.numel(), dtype=x.dtype)
            step[i] = h
            step = step.view_as(x)
            grad.view(-1)[i] = (disc(x + step).sum() - disc(x - step).sum()) / (2 * h)
    expected = grad.square().flatten(1).sum(1).mean()
    torch.testing.assert_close(penalty, expected, rtol=1e-6, atol=1e-9)
    penalty.backward()  # differentiable for the weights (create_graph)
    assert disc.from_rgb.weight.grad is not None and disc.fc.weight.grad is not None
    assert disc.out.bias.grad is None  # the score's bias does not change its input gradient


def test_path_lengths_match_the_jacobian():
    g = StyleGAN2(**SETTINGS).build_generator().double()
    for layer in g.convs:  # noise strengths start at 0; make the noise inputs count
        layer.noise_strength.data.fill_(0.3)
    rng = _rng(1)
    ws = torch.randn(2, g.num_ws, 8, generator=rng, dtype=torch.float64).requires_grad_(True)
    noise = [torch.randn(s, generator=rng, dtype=torch.float64) for s in g.noise_shapes(2)]
    y = torch.randn(2, 1, 8, 8, generator=rng, dtype=torch.float64) / 8
    jacobian = torch.autograd.functional.jacobian(lambda w: g(w, noise), ws)
    grad = torch.einsum("nchw,nchwmkl->mkl", y, jacobian)  # J^T y, per image
    expected = grad.square().sum(2).mean(1).sqrt()
    torch.testing.assert_close(path_lengths(g, ws, noise, y), expected)


def _reference_stddev(chunk):
    return float(torch.sqrt(chunk.var(dim=0, unbiased=False) + 1e-8).mean())


@pytest.mark.parametrize(("n", "groups"), [(8, [4, 4]), (9, [4, 5]), (6, [6]), (3, [3]), (1, [1])])
def test_minibatch_stddev_groups(n, groups):
    x = torch.randn(n, 3, 4, 4, generator=_rng(n))
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (n, 4, 4, 4)
    assert torch.equal(out[:, :3], x)
    start = 0
    for size in groups:
        stat = out[start : start + size, 3]
        expected = _reference_stddev(x[start : start + size])
        torch.testing.assert_close(stat, torch.full_like(stat, expected))
        start += size


def test_discriminator_takes_any_batch_size():
    disc = StyleGAN2(**SETTINGS).build_discriminator()
    for n in (1, 5, 7):
        assert disc(torch.rand(n, 1, 8, 8) * 2 - 1).shape == (n,)


def test_generator_layout():
    g = StyleGAN2(**{**SETTINGS, "image_size": 16}).build_generator()
    assert g.num_ws == 6  # 5 modulated 3x3 convolutions and the last toRGB
    assert g.noise_shapes(2) == [(2, 1, 4, 4), (2, 1, 8, 8), (2, 1, 8, 8)] + [(2, 1, 16, 16)] * 2
    assert "w_avg" in g.state_dict() and not any(p is g.w_avg for p in g.parameters())


# -- the model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "size", "changes"),
    [
        (1, 8, {}),
        (3, 8, {"style_mixing": 1.0}),
        (1, 16, {"r1_gamma": 0.0, "path_length": 0.0, "epochs": 1}),
        (3, 16, {"epochs": 1, "mbstd_group_size": 3}),
        (1, 8, {"path_length": 2.0, "pl_every": 1, "style_mixing": 0.5}),
        (3, 8, {"path_length": 0.0}),
    ],
)
def test_fit_then_sample(channels, size, changes):
    settings = {**SETTINGS, "image_size": size, "image_channels": channels, **changes}
    model = StyleGAN2(**settings).fit(_data(24, channels, size), rng=_rng())
    for lam in (1.0, 0.5):
        out = _sample(model, lam=lam)
        assert out.shape == (5, channels, size, size)
        assert out.dtype == torch.float32 and out.device.type == "cpu"
        assert bool(torch.isfinite(out).all())
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    for history in (
        model.d_loss_history_,
        model.g_loss_history_,
        model.r1_history_,
        model.pl_history_,
    ):
        assert len(history) == settings["epochs"]
        assert all(isinstance(v, float) for v in history)
    assert all(math.isnan(v) for v in model.r1_history_) == (settings.get("r1_gamma") == 0.0)
    regularised = settings.get("path_length", 0.0) > 0
    assert all(math.isfinite(v) for v in model.pl_history_) == regularised
    assert bool(model.generator_.pl_mean > 0) == regularised
    assert model.w_avg_.shape == (SETTINGS["latent_dim"],)
    assert bool(torch.isfinite(model.w_avg_).all()) and bool(model.w_avg_.abs().sum() > 0)
    assert not model.generator_.training and not model.discriminator_.training


def test_fit_and_sample_are_deterministic(fitted):
    state = torch.random.get_rng_state()
    other = StyleGAN2(**SETTINGS).fit(_data(), torch.arange(32) % 3, rng=_rng())  # y ignored
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert _same_weights(fitted, other)  # w_avg included: it is in the state_dict
    assert other.d_loss_history_ == fitted.d_loss_history_
    assert other.pl_history_ == fitted.pl_history_
    assert torch.equal(_sample(fitted), _sample(other))
    assert torch.equal(_sample(fitted), _sample(fitted))
    assert not torch.equal(_sample(fitted, seed=7), _sample(fitted, seed=8))
    different = StyleGAN2(**SETTINGS).fit(_data(), rng=_rng(4))
    assert different.training_seed_ != fitted.training_seed_
    assert not _same_weights(fitted, different)
    assert not torch.equal(_sample(fitted), _sample(different))


def test_fit_draws_its_seed_from_rng(fitted):
    assert fitted.training_seed_ == int(torch.randint(2**31 - 1, (1,), generator=_rng()))
    rng, reference = _rng(), _rng()
    StyleGAN2(**{**SETTINGS, "epochs": 1}).fit(_data(), rng=rng)
    torch.randint(2**31 - 1, (1,), generator=reference)
    assert torch.equal(rng.get_state(), reference.get_state())  # one draw, nothing else


def test_sample_draws_only_from_rng(fitted):
    state, rng, reference = torch.random.get_rng_state(), _rng(5), _rng(5)
    fitted.sample(4, 0.7, rng=rng)
    assert torch.equal(torch.random.get_rng_state(), state)
    n_draws = 4 * SETTINGS["latent_dim"] + sum(
        math.prod(s) for s in fitted.generator_.noise_shapes(4)
    )
    torch.randn(n_draws, generator=reference)
    assert torch.equal(rng.get_state(), reference.get_state())


def test_sample_does_not_depend_on_batch_size(fitted):
    torch.testing.assert_close(_sample(fitted, n=7, batch_size=3), _sample(fitted, n=7))


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "gen2" / "stylegan2.pt")
    loaded = StyleGAN2.load(path)
    assert loaded.get_params() == fitted.get_params()
    assert torch.equal(loaded.w_avg_, fitted.w_avg_) and bool(fitted.w_avg_.abs().sum() > 0)
    pl_mean = fitted.generator_.pl_mean
    assert torch.equal(loaded.generator_.pl_mean, pl_mean) and bool(pl_mean > 0)
    for history in ("d_loss_history_", "g_loss_history_", "r1_history_", "pl_history_"):
        assert getattr(loaded, history) == getattr(fitted, history), history  # no NaN here
    assert loaded.training_seed_ == fitted.training_seed_
    assert not loaded.generator_.training and _same_weights(loaded, fitted)
    assert torch.equal(_sample(loaded, lam=0.8), _sample(fitted, lam=0.8))
    again = StyleGAN2(**SETTINGS).load_state_dict(fitted.state_dict())
    assert torch.equal(again.w_avg_, fitted.w_avg_)
    assert torch.equal(_sample(again, lam=0.5), _sample(fitted, lam=0.5))


def test_protocol_clone_and_repr(fitted):
    assert isinstance(fitted, ImageModel) and StyleGAN2.conditional is False
    with pytest.raises(ValueError, match="unconditional.*labels must be None"):
        fitted.sample(3, rng=_rng(), labels=torch.tensor([0, 1, 2]))
    clone = fitted.clone()
    assert not clone.is_fitted and fitted.is_fitted
    assert clone.get_params() == fitted.get_params()
    assert repr(clone).startswith("StyleGAN2(image_size=8, image_channels=1, latent_dim=8,")


def test_training_moves_samples_towards_the_data():
    # Bright top half, dark bottom half: the untrained generator's images are not
    g = torch.Generator().manual_seed(0)
    images = torch.full((256, 1, 8, 8), 0.1)
    images[:, :, :4] = 0.9
    images = (images + 0.05 * torch.randn(images.shape, generator=g)).clamp(0.0, 1.0)
    settings = {**SETTINGS, "latent_dim": 16, "width": 16, "max_width": 32, "epochs": 15}
    model = StyleGAN2(**{**settings, "batch_size": 32, "path_length": 0.0}).fit(images, rng=_rng(1))
    samples, truncated = _sample(model, n=200), _sample(model, lam=0.3, n=200)
    top, bottom = float(samples[:, :, :4].mean()), float(samples[:, :, 4:].mean())
    assert top - bottom > 0.3
    assert float(truncated.std(0).mean()) < float(samples.std(0).mean())  # less diverse


def test_the_sampling_generator_is_the_average_of_the_trained_weights():
    settings = {**SETTINGS, "path_length": 0.0}
    plain = StyleGAN2(**settings, ema_images=0).fit(_data(), rng=_rng())
    frozen = StyleGAN2(**settings, ema_images=10**12, ema_rampup=0.0).fit(_data(), rng=_rng())
    default = StyleGAN2(**settings).fit(_data(), rng=_rng())
    # the average only watches: training (the discriminator, the buffers) is the same
    for model in (frozen, default):
        for name, value in plain.discriminator_.state_dict().items():
            assert torch.equal(model.discriminator_.state_dict()[name], value)
        torch.testing.assert_close(model.w_avg_, plain.w_avg_, rtol=0, atol=0)
    # an average that hardly moves keeps the initial weights; without one, the trained weights
    initial, _ = StyleGAN2(**settings)._initial_networks(plain.training_seed_)
    start = dict(initial.named_parameters())
    for name, value in frozen.generator_.named_parameters():
        torch.testing.assert_close(value, start[name], rtol=0, atol=1e-6)
    moved = [
        not torch.allclose(value, start[name])
        for name, value in plain.generator_.named_parameters()
    ]
    assert any(moved)
    # the default lies in between: not the trained weights, not the initial ones
    trained = dict(plain.generator_.named_parameters())
    assert any(
        not torch.equal(value, trained[name])
        for name, value in default.generator_.named_parameters()
    )


def test_default_size():
    model = StyleGAN2(device="cpu")
    n_params = sum(p.numel() for net in model._build_networks() for p in net.parameters())
    assert 500_000 <= n_params <= 2_000_000


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"image_size": 12}, "image_size.*power of two"),
        ({"image_size": 4}, "image_size"),
        ({"image_size": 512}, "image_size"),
        ({"image_size": 8.0}, "image_size"),
        ({"image_channels": 2}, "image_channels"),
        ({"image_channels": True}, "image_channels"),
        ({"image_channels": 1.0}, "image_channels"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"mapping_layers": 0}, "mapping_layers"),
        ({"width": 2.5}, "width"),
        ({"max_width": 0}, "max_width"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"r1_gamma": -1.0}, "r1_gamma"),
        ({"r1_gamma": float("nan")}, "r1_gamma"),
        ({"r1_every": 0}, "r1_every"),
        ({"w_avg_beta": 1.0}, "w_avg_beta"),
        ({"style_mixing": 1.5}, "style_mixing"),
        ({"style_mixing": -0.1}, "style_mixing"),
        ({"path_length": -1.0}, "path_length"),
        ({"pl_every": 0}, "pl_every"),
        ({"mapping_lr_mult": 0.0}, "mapping_lr_mult"),
        ({"ema_images": -1}, "ema_images"),
        ({"ema_images": 2.5}, "ema_images"),
        ({"ema_rampup": -0.1}, "ema_rampup"),
        ({"mbstd_group_size": 0}, "mbstd_group_size"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_settings(changes, match):
    with pytest.raises(ValueError, match=match):
        StyleGAN2(**{**SETTINGS, **changes})


@pytest.mark.parametrize("lam", [0, 0.0, 1.5, -0.2, float("nan")])
def test_bad_lam(fitted, lam):
    with pytest.raises(ValueError, match="lam"):
        _sample(fitted, lam=lam)


def test_bad_inputs(fitted):
    model = StyleGAN2(**SETTINGS)
    for bad in (_data(4) * 2.0, _data(4, size=16), _data(4, channels=3), torch.rand(4, 8, 8)):
        with pytest.raises(ValueError, match="X must"):
            model.fit(bad, rng=_rng())
    with pytest.raises(ValueError, match="rng"):
        model.fit(_data(4), rng=None)
    assert not model.is_fitted
    with pytest.raises(RuntimeError, match="fit"):
        model.sample(3, rng=_rng())
    with pytest.raises(ValueError, match="rng"):
        fitted.sample(3, rng=0)
    with pytest.raises(ValueError, match="batch_size"):
        fitted.sample(3, rng=_rng(), batch_size=0)
