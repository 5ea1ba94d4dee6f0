"""Tests of the class-conditional DDPM (tiny seeded models, a few seconds in all)."""

from __future__ import annotations

import pytest
import torch

from madutils.models.ddpm import ConditionalDDPM, guided_noise

N_CLASSES = 3
SETTINGS = dict(
    image_size=8,
    n_classes=N_CLASSES,
    channels=(8, 16),
    num_train_timesteps=20,
    epochs=2,
    batch_size=16,
    lr=1e-3,
    seed=3,
    device="cpu",
    mixed_precision="no",
    progress=False,
)


def _data(n: int = 36):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 8, 8, generator=g)
    labels = torch.arange(n) % N_CLASSES
    return images, labels


@pytest.fixture(scope="module")
def fitted() -> ConditionalDDPM:
    return ConditionalDDPM(**SETTINGS).fit(*_data())


def _sample(model, lam=1.0, seed=7, sampler="ddim", steps=4):
    labels = torch.tensor([0, 1, 2, 2, 1])
    rng = torch.Generator().manual_seed(seed)
    return model.sample(labels, lam, rng=rng, sampler=sampler, steps=steps)


def test_sample_shapes_and_range(fitted):
    for sampler in ("ddim", "ddpm"):
        out = _sample(fitted, lam=0.5, sampler=sampler, steps=4)
        assert out.shape == (5, 1, 8, 8)
        assert out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert len(fitted.loss_history_) == SETTINGS["epochs"]


def test_fit_and_sample_are_deterministic(fitted):
    state = torch.random.get_rng_state()
    other = ConditionalDDPM(**SETTINGS).fit(*_data())
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    for (k, a), (_, b) in zip(
        fitted.model_.state_dict().items(), other.model_.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert torch.equal(_sample(fitted, sampler="ddpm"), _sample(other, sampler="ddpm"))
    assert not torch.equal(_sample(fitted, seed=7), _sample(fitted, seed=8))
    different = ConditionalDDPM(**{**SETTINGS, "seed": 4}).fit(*_data())
    assert not torch.equal(
        next(iter(fitted.model_.parameters())), next(iter(different.model_.parameters()))
    )


def test_lam_one_is_plain_conditional_prediction(fitted):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([5, 5, 10, 19])
    labels = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        plain = fitted.model_(x, t, class_labels=labels).sample
        assert torch.equal(guided_noise(fitted.model_, x, t, labels, 1.0), plain)
        guided = guided_noise(fitted.model_, x, t, labels, 0.5)
        uncond = fitted.model_(x, t, class_labels=torch.full_like(labels, N_CLASSES)).sample
    assert not torch.allclose(guided, plain)
    # lam = 0.5 means w = 1: eps = 2 eps_cond - eps_uncond
    torch.testing.assert_close(guided, 2 * plain - uncond, atol=1e-5, rtol=1e-4)
    assert not torch.equal(_sample(fitted, lam=1.0), _sample(fitted, lam=0.66))


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "gen3" / "ddpm.pt")
    loaded = ConditionalDDPM.load(path)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.loss_history_ == fitted.loss_history_
    assert torch.equal(_sample(loaded, lam=0.8), _sample(fitted, lam=0.8))
    again = ConditionalDDPM(**SETTINGS).load_state_dict(fitted.state_dict())
    assert torch.equal(_sample(again, sampler="ddpm"), _sample(fitted, sampler="ddpm"))


def test_clone_and_warm_start(fitted):
    clone = fitted.clone()
    assert not clone.is_fitted and clone.get_params() == fitted.get_params()
    warm = ConditionalDDPM(**{**SETTINGS, "warm_start": True, "epochs": 1})
    warm.load_state_dict(fitted.state_dict()).fit(*_data())
    assert len(warm.loss_history_) == SETTINGS["epochs"] + 1


def test_moving_average_of_weights(fitted):
    averaged = ConditionalDDPM(**{**SETTINGS, "ema_decay": 0.9}).fit(*_data())
    again = ConditionalDDPM(**{**SETTINGS, "ema_decay": 0.9}).fit(*_data())
    last, mean = fitted.model_.state_dict(), averaged.model_.state_dict()
    assert any(not torch.equal(last[k], mean[k]) for k in last)
    assert all(torch.equal(mean[k], again.model_.state_dict()[k]) for k in mean)
    assert averaged.loss_history_ == fitted.loss_history_  # the same training trajectory


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"image_size": 9}, "image_size"),
        ({"image_size": 10, "channels": (8, 8, 8)}, "image_size"),
        ({"n_classes": 0}, "n_classes"),
        ({"channels": ()}, "channels"),
        ({"cond_dropout": 1.0}, "cond_dropout"),
        ({"mixed_precision": "fp16"}, "mixed_precision"),
        ({"device": "tpu"}, "device"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"ema_decay": -0.1}, "ema_decay"),
    ],
)
def test_bad_settings(changes, match):
    with pytest.raises(ValueError, match=match):
        ConditionalDDPM(**{**SETTINGS, **changes})


@pytest.mark.parametrize("lam", [0, 0.0, 1.5, -0.2, float("nan")])
def test_bad_lam(fitted, lam):
    with pytest.raises(ValueError, match="lam"):
        _sample(fitted, lam=lam)
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="lam"):
        guided_noise(fitted.model_, x, torch.tensor([1]), torch.tensor([0]), lam)


def test_bad_sampling_inputs(fitted):
    rng = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="labels"):
        fitted.sample(torch.tensor([0, N_CLASSES]), rng=rng)
    with pytest.raises(ValueError, match="labels"):
        fitted.sample(torch.tensor([-1]), rng=rng)
    with pytest.raises(ValueError, match="sampler"):
        fitted.sample(torch.tensor([0]), rng=rng, sampler="euler")
    with pytest.raises(ValueError, match="steps"):
        fitted.sample(torch.tensor([0]), rng=rng, steps=SETTINGS["num_train_timesteps"] + 1)
    with pytest.raises(RuntimeError, match="fit"):
        ConditionalDDPM(**SETTINGS).sample(torch.tensor([0]), rng=rng)


def test_bad_training_inputs():
    images, labels = _data(6)
    model = ConditionalDDPM(**SETTINGS)
    with pytest.raises(ValueError, match="images"):
        model.fit(images * 2.0, labels)
    with pytest.raises(ValueError, match="images"):
        model.fit(images - 0.5, labels)
    with pytest.raises(ValueError, match="images"):
        model.fit(torch.rand(6, 1, 16, 16), labels)
    with pytest.raises(ValueError, match="labels"):
        model.fit(images, labels + N_CLASSES)
    with pytest.raises(ValueError, match="labels"):
        model.fit(images, labels[:3])
