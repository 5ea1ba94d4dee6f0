"""Colour feature networks and user-supplied feature functions (madutils.metrics.features).

Tiny colour "shapes" data sets made here (a square or a cross, in red or blue: four classes,
one per factor combination), a few epochs on the CPU. The one-channel checks pin the cache key
settings of the classic LeNet to what they were before colour input was added.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from madutils.data.images import ImageSet, load_sklearn_digits
from madutils.metrics import features as lenet
from madutils.metrics.features import (
    FeatureNetwork,
    FunctionFeatures,
    LeNet,
    train_feature_network,
)
from madutils.metrics.frechet import frechet_distance

SMALL = dict(feature_dim=16, epochs=3, batch_size=16, lr=3e-3, progress=False, device="cpu")


def colour_shapes(n: int = 160, size: int = 16, seed: int = 0) -> ImageSet:
    """Squares and crosses in red or blue on black, with noise; label = shape * 2 + colour."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = 0.1 * torch.rand(n, 3, size, size, generator=rng)
    q = size // 4
    for i, label in enumerate(labels.tolist()):
        shape, colour = divmod(label, 2)
        channel = 0 if colour == 0 else 2
        if shape == 0:
            images[i, channel, q : size - q, q : size - q] = 0.9
        else:
            images[i, channel, size // 2 - 1 : size // 2 + 1, :] = 0.9
            images[i, channel, :, size // 2 - 1 : size // 2 + 1] = 0.9
    return ImageSet(images, labels, 4, "shapes", ("red-square", "blue-square", "red-x", "blue-x"))


# ------------------------------------------------------------------ the architecture


@pytest.mark.parametrize(
    "size, depth, side",
    [(8, 2, 2), (16, 2, 4), (32, 2, 8), (64, 3, 8), (128, 4, 8), (256, 5, 8)],
)
def test_colour_lenet_at_power_of_two_sizes(size, depth, side):
    model = LeNet(image_size=size, n_classes=4, feature_dim=8, in_channels=3)
    assert model.depth == depth
    width = 16 if depth == 2 else 32
    assert model.hidden[0].in_features == width * side * side
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    assert model(x).shape == (2, 4)
    assert model.features(x).shape == (2, 8)


@pytest.mark.parametrize("size", [8, 16, 28, 64, 256])
def test_one_channel_lenet_is_the_classic_layout(size):
    """One channel keeps two stages at every size: same layers, same parameter shapes, so the
    same initial weights from the same seed."""
    model = LeNet(image_size=size, n_classes=10, feature_dim=32)
    assert model.depth == 2 and model.in_channels == 1
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    side = size // 4
    assert shapes == {
        "conv.0.weight": (6, 1, 5, 5),
        "conv.0.bias": (6,),
        "conv.3.weight": (16, 6, 5, 5),
        "conv.3.bias": (16,),
        "hidden.0.weight": (120, 16 * side * side),
        "hidden.0.bias": (120,),
        "hidden.2.weight": (32, 120),
        "hidden.2.bias": (32,),
        "head.weight": (10, 32),
        "head.bias": (10,),
    }


def test_architecture_errors():
    with pytest.raises(ValueError, match="^in_channels must be 1 .grey. or 3 .RGB."):
        LeNet(in_channels=2)
    with pytest.raises(ValueError, match="^in_channels"):
        FeatureNetwork(in_channels=True)
    with pytest.raises(ValueError, match="^depth must be at least 2"):
        FeatureNetwork(depth=1)
    with pytest.raises(ValueError, match=r"^image_size must be at least 2\*\*depth = 16"):
        FeatureNetwork(image_size=8, depth=4)
    with pytest.raises(ValueError, match="^image_size must be at least 4"):
        FeatureNetwork(image_size=2, in_channels=3)


# ------------------------------------------------------------------ the cache key


# Computed with the code before colour input was added (madutils/metrics/features.py at
# source digest 20cf4d39...): the key of FeatureNetwork(image_size=8, feature_dim=32,
# epochs=2) on scikit-learn's digits 0:600 (training) and 600:900 (held out).
_OLD_SOURCE = "20cf4d3962387ec0d7f9737d1c97ab17cbd4324edaec9427b8703f8fa8d350c0"
_OLD_KEY = "16fc1e88e560f363c2e98284eaf213323799f6a360821496e4bb2033642aa142"
_OLD_SETTINGS = {
    "image_size": 8,
    "n_classes": 10,
    "feature_dim": 32,
    "epochs": 2,
    "batch_size": 64,
    "lr": 0.001,
    "seed": 0,
}


def test_one_channel_cache_key_is_unchanged_but_for_the_source_digest(monkeypatch):
    digits = load_sklearn_digits()
    arrays = (digits.images[:600], digits.labels[:600], digits.images[600:900])
    arrays += (digits.labels[600:900],)
    network = FeatureNetwork(image_size=8, feature_dim=32, epochs=2, progress=False)
    assert network._settings() == _OLD_SETTINGS  # no in_channels or depth entry
    # explicit defaults are the same network
    assert FeatureNetwork(8, 10, 32, 2, in_channels=1, depth=2)._settings() == _OLD_SETTINGS
    # the key formula is the old one: with the old module source, the old key
    monkeypatch.setattr(lenet, "_SOURCE", _OLD_SOURCE)
    assert network._cache_key(*arrays) == _OLD_KEY
    digest = hashlib.sha256()
    identity = {"recipe": 1, "source": _OLD_SOURCE, **_OLD_SETTINGS}
    digest.update(json.dumps(identity, sort_keys=True).encode())
    for array in arrays:
        lenet._hash_tensor(digest, array)
    assert digest.hexdigest() == _OLD_KEY


def test_colour_and_deeper_networks_have_their_own_keys():
    colour = FeatureNetwork(image_size=64, n_classes=4, in_channels=3)._settings()
    assert colour["in_channels"] == 3 and colour["depth"] == 3
    deeper = FeatureNetwork(image_size=64, depth=3)._settings()
    assert deeper["in_channels"] == 1 and deeper["depth"] == 3
    x = (torch.zeros(2, 1, 16, 16), torch.zeros(2, dtype=torch.int64))
    grey = FeatureNetwork(image_size=16)._cache_key(*x)
    assert FeatureNetwork(image_size=16, depth=3)._cache_key(*x) != grey


# ------------------------------------------------------------------ training in colour


def test_colour_feature_network_trains_and_gives_features(tmp_path):
    data = colour_shapes()
    train, held = data.subset(range(120)), data.subset(range(120, 160))
    network = FeatureNetwork(image_size=16, n_classes=4, in_channels=3, cache_dir=tmp_path, **SMALL)
    network.fit(train.images, train.labels, held.images, held.labels)
    assert network.model_.in_channels == 3 and not network.from_cache_
    features = network.features(held.images)
    assert features.shape == (40, 16) and features.dtype == torch.float32
    assert (features >= 0).all()
    assert network.predict(held.images).shape == (40,)
    assert network.held_out_accuracy_ > 0.5  # four easy classes, chance is 0.25
    again = FeatureNetwork(image_size=16, n_classes=4, in_channels=3, cache_dir=tmp_path, **SMALL)
    again.fit(train.images, train.labels, held.images, held.labels)
    assert again.from_cache_ and torch.equal(again.features(held.images), features)
    with pytest.raises(ValueError, match=r"^images must have 3 channels .*got 1 channels"):
        network.features(held.images[:, :1])
    with pytest.raises(ValueError, match=r"^images must be 16x16 images"):
        network.features(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"^images must have values in \[0, 1\]"):
        network.features(held.images * 3)


def test_train_feature_network_on_any_labelled_image_set(tmp_path):
    data = colour_shapes(n=80, size=32)
    network = train_feature_network(data, cache_dir=tmp_path, **{**SMALL, "epochs": 1})
    assert network.in_channels == 3 and network.image_size == 32 and network.n_classes == 4
    assert len(network.held_out_images_) == 16 and network.train_size_ == 64
    assert torch.bincount(network.held_out_labels_).tolist() == [4, 4, 4, 4]  # stratified
    assert network.features(network.held_out_images_).shape == (16, 16)
    unlabelled = ImageSet(data.images, None)
    with pytest.raises(ValueError, match="^data must be labelled .*FunctionFeatures"):
        train_feature_network(unlabelled, cache_dir=tmp_path)


# ------------------------------------------------------------------ user feature functions


def test_function_features_calls_the_function_in_batches():
    calls = []

    def mean_colour(images):
        calls.append(images.shape[0])
        return images.mean(dim=(2, 3))  # (n, c)

    extractor = FunctionFeatures(mean_colour, "mean-colour", feature_dim=3, batch_size=4)
    images = colour_shapes(n=10).images
    features = extractor.features(images)
    assert calls == [4, 4, 2]
    assert torch.equal(features, images.mean(dim=(2, 3)))
    assert extractor.feature_dim_ == 3 and "mean-colour" in repr(extractor)
    assert extractor.fit(images) is extractor
    # numpy output is accepted, and its features work with the metrics
    as_numpy = FunctionFeatures(lambda x: x.flatten(1).numpy()[:, :5].astype(np.float64), "np")
    assert as_numpy.features(images, batch_size=3).dtype == torch.float32
    assert as_numpy.feature_dim_ == 5
    fd = frechet_distance(features.double(), extractor.features(images).double())
    assert abs(float(fd)) < 1e-6
    with pytest.raises(ValueError, match="cannot predict classes"):
        extractor.predict(images)
    with pytest.raises(ValueError, match="cannot predict classes"):
        extractor.accuracy(images, torch.zeros(10, dtype=torch.int64))


def test_function_features_checks():
    with pytest.raises(ValueError, match="^fn must be callable"):
        FunctionFeatures(3, "x")
    with pytest.raises(ValueError, match="^name must be a non-empty string"):
        FunctionFeatures(lambda x: x, "")
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(
        ValueError, match=r"shape \(n_images, d\) = \(4, d\); got shape \(4, 3, 8, 8\)"
    ):
        FunctionFeatures(lambda x: x, "identity").features(images)
    with pytest.raises(ValueError, match="must return 7 features per image"):
        FunctionFeatures(lambda x: x.flatten(1), "flat", feature_dim=7).features(images)
    with pytest.raises(ValueError, match="NaN or infinite"):
        FunctionFeatures(lambda x: x.flatten(1) / 0, "inf").features(images)
    with pytest.raises(ValueError, match=r"^images must have values in \[0, 1\]"):
        FunctionFeatures(lambda x: x.flatten(1), "flat").features(images - 1)
    with pytest.raises(ValueError, match=r"^images must have shape \(n_images, C, H, W\)"):
        FunctionFeatures(lambda x: x.flatten(1), "flat").features(images[0])
