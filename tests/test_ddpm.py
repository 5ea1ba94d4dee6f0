"""Tests of the class-conditional DDPM (tiny seeded models, a few seconds in all).

Covers the model protocol of :mod:`madutils.models.base` as the DDPM follows it (settings in
``__init__``, ``fit(X, y, *, rng)``, ``sample(n, lam, *, rng, labels=None)``), guidance, saving
and the checks of bad input.
"""

from __future__ import annotations

import pytest
import torch

from madutils.models.base import ImageModel
from madutils.models.ddpm import ConditionalDDPM, guided_noise

N_CLASSES = 3
SETTINGS = dict(
    image_size=8,
    n_classes=N_CLASSES,
    channels=(8, 16),
    timesteps=20,
    sampler="ddim",
    steps=4,
    epochs=2,
    batch_size=16,
    lr=1e-3,
    device="cpu",
    mixed_precision="no",
    progress=False,
)


def _data(n: int = 36):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 8, 8, generator=g)
    labels = torch.arange(n) % N_CLASSES
    return images, labels


def _rng(seed: int = 3) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fit(seed: int = 3, **changes) -> ConditionalDDPM:
    return ConditionalDDPM(**{**SETTINGS, **changes}).fit(*_data(), rng=_rng(seed))


@pytest.fixture(scope="module")
def fitted() -> ConditionalDDPM:
    return _fit()


LABELS = torch.tensor([0, 1, 2, 2, 1])


def _sample(model, lam=1.0, seed=7, labels=LABELS):
    return model.sample(len(labels), lam, rng=_rng(seed), labels=labels)


def _with(model, **changes) -> ConditionalDDPM:
    """The fitted ``model`` with other settings (sampler, steps), weights shared."""
    return ConditionalDDPM(**{**model.get_params(), **changes}).load_state_dict(model.state_dict())


def _same_weights(a: ConditionalDDPM, b: ConditionalDDPM) -> bool:
    ours, theirs = a.model_.state_dict(), b.model_.state_dict()
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_sample_shapes_and_range(fitted):
    for sampler in ("ddim", "ddpm"):
        out = _sample(_with(fitted, sampler=sampler), lam=0.5)
        assert out.shape == (5, 1, 8, 8)
        assert out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert len(fitted.loss_history_) == SETTINGS["epochs"]


def test_protocol(fitted):
    assert isinstance(fitted, ImageModel) and ConditionalDDPM.conditional is True
    assert fitted.get_params() == {
        **SETTINGS,
        "layers_per_block": 1,
        "cond_dropout": 0.1,
        "ema_decay": 0.0,
        "warm_start": False,
    }
    assert "seed" not in fitted.get_params()
    clone = fitted.clone()
    assert fitted.is_fitted and not clone.is_fitted
    assert clone.get_params() == fitted.get_params()
    assert repr(clone).startswith("ConditionalDDPM(image_size=8, n_classes=3, channels=(8, 16),")
    assert "timesteps=20" in repr(clone) and "sampler='ddim', steps=4" in repr(clone)
    expected = int(torch.randint(2**31 - 1, (1,), generator=_rng(3)))
    assert fitted.training_seed_ == expected
    assert fitted.device_ == torch.device("cpu") and not fitted.model_.training


def test_sample_steps_default():
    assert ConditionalDDPM(**{**SETTINGS, "sampler": "ddpm", "steps": None}).sample_steps == 20
    assert ConditionalDDPM(**{**SETTINGS, "sampler": "ddim", "steps": None}).sample_steps == 20
    assert ConditionalDDPM(timesteps=500, sampler="ddim", device="cpu").sample_steps == 50
    assert ConditionalDDPM(timesteps=500, sampler="ddpm", device="cpu").sample_steps == 500
    assert ConditionalDDPM(**SETTINGS).sample_steps == 4
    assert ConditionalDDPM(timesteps=500, sampler="dpm_solver", device="cpu").sample_steps == 20
    assert (
        ConditionalDDPM(**{**SETTINGS, "sampler": "dpm_solver", "steps": None}).sample_steps == 20
    )


def test_dpm_solver_denoises_every_batch_from_its_own_start(fitted):
    """The multistep solver keeps its last steps' outputs: each batch must start afresh."""
    model = _with(fitted, sampler="dpm_solver", steps=5)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    out = model.sample(7, 1.0, rng=_rng(7), labels=labels, batch_size=3)
    assert out.shape == (7, 1, 8, 8) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, model.sample(7, 1.0, rng=_rng(7), labels=labels, batch_size=3))
    # the second batch equals a sample of its own, drawn from the same noise
    rng = _rng(7)
    torch.randn((3, 1, 8, 8), generator=rng)  # the first batch's starting noise
    alone = model.sample(3, 1.0, rng=rng, labels=labels[3:6], batch_size=3)
    assert torch.allclose(out[3:6], alone, atol=1e-6)
    guided = model.sample(7, 0.5, rng=_rng(7), labels=labels, batch_size=3)
    assert guided.shape == out.shape and not torch.equal(guided, out)


def test_sde_dpm_solver_draws_its_noise_from_rng(fitted):
    model = _with(fitted, sampler="dpm_solver_sde", steps=5)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    out = model.sample(7, 1.0, rng=_rng(7), labels=labels, batch_size=3)
    assert out.shape == (7, 1, 8, 8) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, model.sample(7, 1.0, rng=_rng(7), labels=labels, batch_size=3))
    assert not torch.equal(out, model.sample(7, 1.0, rng=_rng(8), labels=labels, batch_size=3))
    ode = _with(fitted, sampler="dpm_solver", steps=5)
    assert not torch.equal(out, ode.sample(7, 1.0, rng=_rng(7), labels=labels, batch_size=3))


def test_fit_and_sample_are_deterministic(fitted):
    state = torch.random.get_rng_state()
    other = _fit()
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert _same_weights(fitted, other)
    assert other.loss_history_ == fitted.loss_history_
    ancestral = {"sampler": "ddpm", "steps": None}
    assert torch.equal(_sample(_with(fitted, **ancestral)), _sample(_with(other, **ancestral)))
    assert not torch.equal(_sample(fitted, seed=7), _sample(fitted, seed=8))
    different = _fit(seed=4)
    assert different.training_seed_ != fitted.training_seed_
    assert not _same_weights(fitted, different)


def test_fit_draws_one_seed_from_rng(fitted):
    """fit(rng) trains as the old fit did with seed = randint(2**31 - 1) drawn from rng."""
    rng = _rng(3)
    ConditionalDDPM(**SETTINGS).fit(*_data(), rng=rng)
    reference = _rng(3)
    torch.randint(2**31 - 1, (1,), generator=reference)
    assert torch.equal(rng.get_state(), reference.get_state())  # one draw, nothing else


def test_sample_without_labels_draws_balanced_labels_first(fitted):
    n = 7
    rng = _rng(9)
    order = torch.randperm(n, generator=rng)
    labels = (torch.arange(n) % N_CLASSES)[order]
    expected = fitted.sample(n, 0.8, rng=rng, labels=labels)
    assert torch.equal(fitted.sample(n, 0.8, rng=_rng(9)), expected)
    assert torch.equal(fitted.balanced_labels(n, _rng(9)), labels)
    assert torch.bincount(fitted.balanced_labels(9, _rng(0))).tolist() == [3, 3, 3]


def test_sampler_and_steps_are_settings(fitted):
    four, two = _with(fitted, steps=4), _with(fitted, steps=2)
    assert torch.equal(_sample(fitted), _sample(four))
    assert not torch.equal(_sample(fitted), _sample(two))
    assert not torch.equal(_sample(fitted), _sample(_with(fitted, sampler="ddpm")))


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
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = ConditionalDDPM.load(path)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.loss_history_ == fitted.loss_history_
    assert loaded.training_seed_ == fitted.training_seed_
    assert _same_weights(loaded, fitted)
    assert torch.equal(_sample(loaded, lam=0.8), _sample(fitted, lam=0.8))
    again = ConditionalDDPM(**SETTINGS).load_state_dict(fitted.state_dict())
    assert torch.equal(_sample(again), _sample(fitted))
    assert ConditionalDDPM.load(path, progress=True, steps=2).get_params()["steps"] == 2
    with pytest.raises(ValueError, match="missing"):
        ConditionalDDPM(**SETTINGS).load_state_dict({"model": {}})


def test_load_reads_files_of_the_old_api(fitted, tmp_path):
    """Files written with a ``seed`` and ``num_train_timesteps`` setting still load."""
    state = fitted.state_dict()
    params = {k: v for k, v in state["params"].items() if k not in ("timesteps", "sampler")}
    params.pop("steps")
    old = {
        "params": {**params, "num_train_timesteps": 20, "seed": 17},
        "model": state["model"],
        "loss_history": state["loss_history"],
    }
    torch.save(old, tmp_path / "old.pt")
    loaded = ConditionalDDPM.load(tmp_path / "old.pt", sampler="ddim", steps=4)
    assert loaded.training_seed_ == 17 and loaded.timesteps == 20
    assert torch.equal(_sample(loaded), _sample(fitted))


def test_clone_and_warm_start(fitted):
    clone = fitted.clone()
    assert not clone.is_fitted and clone.get_params() == fitted.get_params()
    warm = ConditionalDDPM(**{**SETTINGS, "warm_start": True, "epochs": 1})
    warm.load_state_dict(fitted.state_dict()).fit(*_data(), rng=_rng(5))
    assert len(warm.loss_history_) == SETTINGS["epochs"] + 1


def test_moving_average_of_weights(fitted):
    averaged = _fit(ema_decay=0.9)
    again = _fit(ema_decay=0.9)
    assert not _same_weights(fitted, averaged)
    assert _same_weights(averaged, again)
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
        ({"sampler": "euler"}, "sampler"),
        ({"steps": 0}, "steps"),
        ({"steps": 21}, "steps"),
        ({"timesteps": 0}, "timesteps"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
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
    rng = _rng(0)
    with pytest.raises(ValueError, match="labels"):
        fitted.sample(2, rng=rng, labels=torch.tensor([0, N_CLASSES]))
    with pytest.raises(ValueError, match="labels"):
        fitted.sample(1, rng=rng, labels=torch.tensor([-1]))
    with pytest.raises(ValueError, match="labels must have shape"):
        fitted.sample(2, rng=rng, labels=torch.zeros(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"n must equal len\(labels\).*n=3 and 2 labels"):
        fitted.sample(3, rng=rng, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n must"):
        fitted.sample(0, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        fitted.sample(2, rng=0)
    with pytest.raises(ValueError, match="batch_size"):
        fitted.sample(2, rng=rng, batch_size=0)
    with pytest.raises(TypeError):
        fitted.sample(2, rng=rng, sampler="ddim")  # a setting now, not a sample argument
    with pytest.raises(RuntimeError, match="fit"):
        ConditionalDDPM(**SETTINGS).sample(1, rng=rng)
    with pytest.raises(RuntimeError, match="fit"):
        ConditionalDDPM(**SETTINGS).state_dict()


def test_bad_training_inputs():
    images, labels = _data(6)
    model = ConditionalDDPM(**SETTINGS)
    rng = _rng(0)
    with pytest.raises(ValueError, match="X must"):
        model.fit(images * 2.0, labels, rng=rng)
    with pytest.raises(ValueError, match="X must"):
        model.fit(images - 0.5, labels, rng=rng)
    with pytest.raises(ValueError, match="X must"):
        model.fit(torch.rand(6, 1, 16, 16), labels, rng=rng)
    with pytest.raises(ValueError, match="y must"):
        model.fit(images, labels + N_CLASSES, rng=rng)
    with pytest.raises(ValueError, match="y must"):
        model.fit(images, labels[:3], rng=rng)
    with pytest.raises(ValueError, match="y must hold the class label.*got None"):
        model.fit(images, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        model.fit(images, labels, rng=3)
    with pytest.raises(TypeError):
        model.fit(images, labels)  # rng is required
    with pytest.raises(TypeError):
        ConditionalDDPM(**SETTINGS, seed=0)  # the seed comes from fit's rng
    assert not model.is_fitted
