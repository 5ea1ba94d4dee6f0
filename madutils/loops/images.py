"""The image way of running a loop: one replicate of an image model, with its feature network.

:func:`run_image_loop` runs the loop of :class:`~madutils.loops.image_config.ImageLoopConfig`
(the families and synthetic sources of :mod:`madutils.loops.families`; resume, progress,
timings and the results table of :func:`madutils.loops.driver.drive`):

1. The real images are loaded, resized, and split once into a training part and ``held_out``
   images that no generative model ever sees. A LeNet feature network
   (:class:`~madutils.metrics.features.FeatureNetwork`, cached on disk) is trained on the training
   part; its held-out accuracy is recorded.
2. Generation 1 trains a model from scratch on ``n_ini`` real images drawn (class-balanced)
   from the training part. Its weights depend only on the real images, the model settings and
   the seed, so they are cached under ``<out>/first_generation/`` and shared by every run
   that starts the same way (all ``lam`` values, all three families, every curation). Its
   samples depend on those weights, ``lam``, the sampler and the seed only, so they are cached
   beside the weights and shared too (every curation step and every family at one ``lam``).
3. Every generation samples ``max(n_synthetic, n_eval)`` images with the sampling bias
   ``lam``: the conditional DDPM for class labels balanced over the classes, the
   unconditional WGAN-GP freely, its images then labelled by the feature network. The first
   ``n_eval`` are measured; the first ``n_synthetic`` are what the synthetic source draws
   from: the last generation's (``"last"``), every earlier generation's (``"accumulate"``)
   or, image by image, one of the ``memory`` most recent generations' (``"memory"``).
4. With a curation step (``curation``, after :mod:`madutils.curation`), the first
   ``n_synthetic`` images are verified, curated by best of K or corrected by an expert before
   the synthetic source keeps them (:meth:`ImageLoop._curated`); a detector screens the new
   real and synthetic images of every training set (:meth:`ImageLoop._screen`). The metrics
   always measure the model's own samples.

Metrics (:data:`~madutils.loops.image_config.IMAGE_METRICS`): Fréchet distance ("FID") of
feature-network features, the same extrapolated to infinitely many samples (FD∞), the kernel
distance (KID, unbiased at any sample size), memorisation (the distance of the synthetic images
to the generation's training images, relative to that of held-out real images), k-NN
precision, recall, density and coverage, always against the held-out real images, and two
measures of the images themselves: the excess of high-frequency spectral energy over the real
images' (grid artifacts) and the share of classes the feature network still finds. Generation 0
holds the same metrics for disjoint sets of ``n_eval`` real training images each (up to
:data:`FLOOR_SETS`, its replicates): the real-versus-real floor a perfect model would reach with
this many samples, and its spread.

Storage (when ``out`` is given): the :class:`~madutils.results.RunStore` files plus, per
generation, ``models/NNNNN.pt`` (weights) and ``samples/NNNNN.pt`` (the images as uint8 and
their labels). Synthetic images are quantised to 8 bits before they are measured or reused, as
saved images would be, so a resumed run continues exactly where an uninterrupted one would.
Images read from a folder stay 8-bit in memory, the real ones and the synthetic ones alike
(70,000 colour images of 128x128 take 3.4 GB instead of 13.8 GB); every model, the feature
network and the metrics convert them batch by batch to the floats they stand for.
A curated run also stores ``curated/NNNNN.pt``, the images the next model trains on.
``timings.csv`` records seconds spent training, sampling (and curating) and measuring per
generation.

Randomness: generation ``t`` uses the streams ``(seed, t, purpose)`` of
:func:`madutils.rng.stream`; the real-image split, the pool order and the floor use streams of
their own (the purposes of :class:`madutils.rng.ImageStream`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from madutils._image_checks import unit_float
from madutils.curation import MAX_VERIFY_ROUNDS, best_of, classifier_accepts, detect_and_filter
from madutils.data.images import (
    ImageSet,
    RealImagePool,
    check_enough_real_images,
    load_dataset,
    load_idx_mnist,
)
from madutils.files import CacheEntry
from madutils.loops.driver import Loop, LoopResult, drive, metric_rows, stored_run, torch_threads
from madutils.loops.families import TrainingSetRecipe
from madutils.loops.image_config import ImageLoopConfig
from madutils.metrics import IMAGE_METRICS, MetricContext
from madutils.metrics import measure as measure_metrics
from madutils.metrics.features import FeatureNetwork, FunctionFeatures
from madutils.metrics.manifold import ManifoldReference
from madutils.models.base import settings_for
from madutils.models.ddpm import ConditionalDDPM
from madutils.models.stylegan2 import StyleGAN2
from madutils.models.wgan import WGANGP
from madutils.provenance import source_hash
from madutils.results import RunStore
from madutils.rng import ImageStream, stream

#: The model class of each ``ImageLoopConfig.model``; built from the settings of the same names.
MODEL_CLASSES = {"ddpm": ConditionalDDPM, "wgan": WGANGP, "stylegan2": StyleGAN2}

__all__ = [
    "FLOOR_SETS",
    "ImageLoopResult",
    "ImageRun",
    "RealImages",
    "measure",
    "load_real_images",
    "prepare_real_images",
    "run_image_loop",
]


def fixed_step_epochs(epochs: int, n_ini: int, n_training: int) -> int:
    """Passes over ``n_training`` images that make the optimizer steps of ``epochs`` passes over
    ``n_ini`` (at least one): what a generation trains for with ``fixed_steps``."""
    return max(1, round(epochs * n_ini / n_training))


def load_feature_function(path: str) -> Callable:
    """The function ``"module:function"`` names (``ImageLoopConfig.features``).

    Raises
    ------
    ValueError
        When the module cannot be imported or has no callable of that name.
    """
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"features: cannot import the module {module_name!r} ({err})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"features: the module {module_name!r} has no function {name!r}")
    return function


@dataclass
class RealImages:
    """The real images of a run, split once, with the feature network trained on them (or the
    user's feature function, which cannot classify)."""

    train: ImageSet
    held_out: ImageSet
    features: FeatureNetwork | FunctionFeatures
    reference: ManifoldReference  # k-NN manifold of the held-out features
    reference_features: torch.Tensor

    @property
    def classifies(self) -> bool:
        """Whether the features come with a classifier of the data set's classes (not the
        user's feature function)."""
        return not isinstance(self.features, FunctionFeatures)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The image metrics these features allow (``class_coverage`` needs a classifier)."""
        if self.classifies:
            return IMAGE_METRICS
        return tuple(name for name in IMAGE_METRICS if name != "class_coverage")

    def labels_of(self, images: torch.Tensor) -> torch.Tensor | None:
        """The feature network's classes of ``images`` (None without a classifier)."""
        return self.features.predict(images) if self.classifies else None


#: Real images prepared most recently, by their settings: a sweep, its sample panels and its
#: feature maps share one copy instead of reloading the data and recomputing features.
_PREPARED: dict[str, RealImages] = {}
_KEEP_PREPARED = 2


def _real_images_key(cfg: ImageLoopConfig, cache_dir) -> str:
    names = (
        "dataset",
        "data_path",
        "image_size",
        "image_channels",
        "held_out",
        "seed",
        "feature_epochs",
        "k",
    )
    key = {name: getattr(cfg, name) for name in names}
    key.update(device=cfg.device, cache_dir=None if cache_dir is None else str(cache_dir))
    return json.dumps(key, sort_keys=True)


def prepare_real_images(
    config: ImageLoopConfig, *, cache_dir=None, progress: bool = False
) -> RealImages:
    """The real images of ``config`` split once, with its feature network (see
    :func:`load_real_images`); the two most recently prepared sets are kept in memory and
    returned again for the same data settings."""
    cfg = config.resolved()
    key = _real_images_key(cfg, cache_dir)
    if key not in _PREPARED:
        _PREPARED[key] = load_real_images(cfg, cache_dir=cache_dir, progress=progress)
        while len(_PREPARED) > _KEEP_PREPARED:
            del _PREPARED[next(iter(_PREPARED))]
    return _PREPARED[key]


def load_real_images(
    config: ImageLoopConfig, *, cache_dir=None, progress: bool = False
) -> RealImages:
    """Load and split the real images of ``config`` and fit (or load) its feature network.

    For ``dataset="idx"`` (full MNIST) the training and test files are pooled before the
    split, so ``held_out=10000`` gives 60,000 training images as in the paper. The split is
    class-stratified and depends only on the data set, the image size,
    ``held_out`` and ``seed``, so every run with these settings measures against the same
    held-out images with the same feature network.
    """
    cfg = config.resolved()
    if cfg.dataset == "idx":  # full MNIST: training and test files together, split below
        parts = [load_idx_mnist(cfg.data_path, split) for split in ("train", "test")]
        data = ImageSet(
            torch.cat([p.images for p in parts]),
            torch.cat([p.labels for p in parts]),
            n_classes=parts[0].n_classes,
            name=parts[0].name,
        )
    elif cfg.dataset == "shapes":  # rendered at the size asked for
        data = load_dataset("shapes", image_size=cfg.image_size, channels=cfg.image_channels)
    elif cfg.dataset == "folder":
        data = load_dataset(  # centre-cropped and resized by PIL (Lanczos) as they are read,
            "folder",  # and kept as their bytes: a quarter of the memory, the same values
            path=cfg.data_path,
            channels=cfg.image_channels,
            image_size=cfg.image_size,
            dtype="uint8",
        )
    else:
        data = load_dataset(cfg.dataset)
    if not data.labelled and cfg.features == "lenet":
        raise ValueError(
            f"data_path {cfg.data_path!r} is a flat folder (no class sub-folders), and the LeNet "
            "feature network trains on class labels: pass features='module:function' (your "
            "feature function) or put the images in one sub-folder per class"
        )
    if cfg.image_size != data.images.shape[-1]:
        data = data.resized(cfg.image_size)
    if cfg.held_out >= len(data):
        raise ValueError(
            f"held_out must be smaller than the {len(data)} images of dataset={cfg.dataset!r}; "
            f"got {cfg.held_out}"
        )
    held_out, train = data.split(cfg.held_out / len(data), rng=stream(cfg.seed, ImageStream.SPLIT))
    if cfg.features != "lenet":
        network = FunctionFeatures(load_feature_function(cfg.features), cfg.features)
    else:
        network = FeatureNetwork(
            image_size=cfg.image_size,
            n_classes=data.n_classes,
            in_channels=cfg.image_channels,
            epochs=cfg.feature_epochs,
            seed=cfg.seed,
            cache_dir=cache_dir,
            device=cfg.device,
            progress=progress,
        )
        network.fit(train.images, train.labels, held_out.images, held_out.labels)
    reference_features = network.features(held_out.images)
    reference = ManifoldReference(reference_features, k=cfg.k)
    return RealImages(train, held_out, network, reference, reference_features)


#: At most this many disjoint sets of real training images form the real-versus-real floor
#: (generation 0), as many as the training images hold ``n_eval`` each.
FLOOR_SETS = 5


def measure(
    real: RealImages,
    images: torch.Tensor,
    make_subset_rng: Callable[[], torch.Generator],
    training: torch.Tensor,
    predicted: torch.Tensor | None = None,
) -> dict[str, float]:
    """The image metrics (:data:`madutils.metrics.IMAGE_METRICS`) of ``images``.

    The feature network's features of ``images`` are compared with those of the held-out real
    images (and their k-NN manifold, built once): each value is its
    :data:`madutils.metrics.REGISTRY` entry's ``compute`` on one
    :class:`~madutils.metrics.MetricContext` whose real and synthetic points are features.
    ``make_subset_rng`` returns the stream of the subsets KID and FD∞ draw (a new one for each);
    ``training`` holds the images the model trained on (for ``memorisation``; their features
    are computed only if it is measured). The images themselves go to ``spectral_excess``
    (against the held-out real images) and, classified by the feature network, to
    ``class_coverage``; ``predicted`` holds those classes when they are already known (the
    labels of an unconditional model's samples), so they are not predicted twice.
    """
    context = MetricContext(
        real=real.reference_features,
        synthetic=real.features.features(images),
        manifold=real.reference,
        k=real.reference.k,
        make_subset_rng=make_subset_rng,
        training=lambda: real.features.features(training),
        images=images,
        real_images=lambda: real.held_out.images,
        predicted=predicted if predicted is not None else lambda: real.labels_of(images),
        n_classes=real.train.n_classes,
    )
    return {name: float(v) for name, v in measure_metrics(real.metrics, context).items()}


def _quantise(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def _check_samples(n_samples: int) -> Callable[[dict], None]:
    """A check of cached samples: ``n_samples`` uint8 images."""

    def check(content: dict) -> None:
        images = content["images"]
        if images.dtype != torch.uint8 or len(images) != n_samples:
            raise ValueError(f"expected {n_samples} uint8 images")

    return check


@dataclass
class ImageLoopResult(LoopResult):
    """What :func:`run_image_loop` returns: a :class:`~madutils.loops.driver.LoopResult`
    (generation 0 of its table is the real-data floor; its timings have ``fit_seconds,
    sample_seconds, measure_seconds``) plus

    Attributes
    ----------
    feature_accuracy : float
        Held-out accuracy of the feature network.
    """

    feature_accuracy: float = float("nan")

    def run(self) -> ImageRun:
        """Open the stored run to read its samples and models."""
        if self.run_dir is None:
            raise ValueError("this run was kept in memory: run it with out= to keep samples")
        return ImageRun(self.run_dir)


class ImageRun:
    """Read access to a stored image run: per-generation samples and models, each checked
    against its generation's manifest when read."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.store = RunStore.existing(self.path)
        self.config = ImageLoopConfig.from_dict(self.store.settings)

    @property
    def generations(self) -> list[int]:
        """The finished generations whose samples are stored."""
        return [
            g
            for g in range(1, self.store.check().finished + 1)
            if self.store.file_path("samples", g).exists()
        ]

    def stored_samples(self, generation: int) -> dict:
        """The file of generation ``generation``'s samples: ``images`` (uint8), ``labels``,
        ``n_classes``."""
        return self.store.load_file("samples", generation, weights_only=True)

    def samples(self, generation: int) -> ImageSet:
        """The images generation ``generation`` sampled (float32 in [0, 1]) and their labels."""
        state = self.stored_samples(generation)
        n_classes = state["n_classes"]
        return ImageSet(
            unit_float(state["images"]),
            state["labels"],
            n_classes=None if n_classes is None else int(n_classes),
        )

    def model(self, generation: int):
        """The model trained in generation ``generation``."""
        self.store.load_file("models", generation, weights_only=True)  # checked first
        return MODEL_CLASSES[self.config.model].load(
            self.store.file_path("models", generation), progress=False
        )


class ImageLoop(Loop):
    """State and steps of one run of an image model; see :func:`run_image_loop`."""

    timing_columns = ("fit_seconds", "sample_seconds", "measure_seconds")

    def __init__(self, cfg: ImageLoopConfig, store: RunStore | None, real: RealImages, progress):
        super().__init__(cfg, store)
        if MODEL_CLASSES[cfg.model].conditional and not real.train.labelled:
            raise ValueError(
                f"model={cfg.model!r} is class-conditional, and the images of "
                f"data_path {cfg.data_path!r} have no classes: use an unconditional model "
                "('wgan', 'stylegan2') or one sub-folder of images per class"
            )
        self.real = real
        self.progress = progress
        self.pool = RealImagePool(real.train, rng=stream(cfg.seed, ImageStream.POOL))
        check_enough_real_images(
            self.pool, cfg.n_ini, cfg.n_real if cfg.family == "fresh_data" else 0, cfg.generations
        )
        if cfg.n_eval >= len(real.train):
            raise ValueError(
                f"n_eval must be smaller than the {len(real.train)} real training images of "
                f"dataset={cfg.dataset!r} (the floor compares sets of n_eval of them with the "
                f"others); got n_eval={cfg.n_eval}"
            )
        # each generation's first n_synthetic images (uint8, labels), the most recent last;
        # "last" keeps one generation, "memory" K, "accumulate" all
        self.synthetic: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.n_keep = {"last": 1, "memory": cfg.memory, "accumulate": None}[cfg.synthetic_source]
        self.training_set = TrainingSetRecipe(
            cfg.family,
            cfg.n_ini,
            cfg.n_real,
            cfg.n_synthetic,
            draw_real=lambda n, rng: self.pool.draw(n),
            synthetic_part=self._synthetic_part,
            join=self._join,
            screen=self._screen if cfg.detector_fpr is not None else None,
        )
        self._expert: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._first_weights: CacheEntry | None = None  # generation 1's weights, once trained

    @property
    def replicates(self) -> int:
        return 1

    # -- models --------------------------------------------------------------------------------
    def new_model(self):
        """An untrained model of this run, built from the settings of the same names."""
        model_class = MODEL_CLASSES[self.cfg.model]
        settings = settings_for(model_class, self.cfg)
        if model_class.conditional:
            settings["n_classes"] = self.real.train.n_classes
        return model_class(**settings, progress=self.progress)

    def _first_generation_cache(self, model, real: ImageSet, rng) -> CacheEntry | None:
        """The cache entry of generation 1's weights (None without a store); they depend on
        the model settings, the real images trained on and the training stream only."""
        if self.store is None:
            return None
        params = model.get_params()
        # what the weights depend on: not where they are computed, nor how they are sampled
        ignored = ("device", "progress", "sampler", "steps")
        identity = {k: v for k, v in params.items() if k not in ignored}
        if "channels" in identity:
            identity["channels"] = list(identity["channels"])
        identity["training_stream"] = rng.initial_seed()
        identity["code"] = source_hash()  # weights of other code are never reused
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
        digest.update(real.images.numpy().tobytes())
        if real.labels is not None:
            digest.update(real.labels.numpy().tobytes())
        name = f"{self.cfg.model}-{digest.hexdigest()[:16]}.pt"
        return CacheEntry(self.store.path.parent / "first_generation" / name)

    def _first_samples_cache(self, model, n_samples: int, streams) -> CacheEntry | None:
        """The cache entry of generation 1's samples, beside its weights' entry (None without
        one): they depend on the weights and on how they are drawn, nothing else."""
        if self._first_weights is None:
            return None
        params = model.get_params()
        identity = {
            "weights": self._first_weights.path.name,
            "lam": self.cfg.lam,
            "n_samples": n_samples,
            "streams": [rng.initial_seed() for rng in streams],
            "device": str(model.device_),
            **{k: params[k] for k in ("sampler", "steps") if k in params},
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return CacheEntry(self._first_weights.path.with_name(f"samples-{digest}.pt"))

    def _sample(self, model, generation: int, n_samples: int):
        """The ``n_samples`` images (uint8) a generation measures and keeps, and their labels
        (:meth:`_draw`, for balanced classes on a conditional model). Generation 1's images are
        read from the cache when a run that starts alike drew them."""
        cfg = self.cfg
        rng = stream(cfg.seed, generation, ImageStream.SAMPLE, device=model.device_)
        labels_rng = stream(cfg.seed, generation, ImageStream.LABELS)
        labels = model.balanced_labels(n_samples, labels_rng) if model.conditional else None
        cache = None
        if generation == 1:
            cache = self._first_samples_cache(model, n_samples, (rng, labels_rng))
        if cache is None:
            return self._draw(model, n_samples, labels, rng)
        with cache.lock():  # another run drawing the same samples: wait, then load
            stored = cache.load(weights_only=True, check=_check_samples(n_samples))
            if stored is None:
                images, labels = self._draw(model, n_samples, labels, rng)
                cache.save(lambda tmp: torch.save({"images": images}, tmp))
                return images, labels
        images = stored["images"]
        if not model.conditional:  # the feature network labels what an unconditional model draws
            labels = self.real.labels_of(unit_float(images))
        return images, labels

    def fit(self, generation: int, training: ImageSet):
        model = self.new_model()
        if generation > 1 and self.cfg.fixed_steps:
            model.epochs = fixed_step_epochs(self.cfg.epochs, self.cfg.n_ini, len(training.images))
        rng = stream(self.cfg.seed, generation, ImageStream.FIT)
        cache = self._first_generation_cache(model, training, rng) if generation == 1 else None
        self._first_weights = cache
        if cache is None:
            return model.fit(training.images, training.labels, rng=rng)
        with cache.lock():  # another run training the same first generation: wait, then load
            if cache.load(check=lambda state: model.load_state_dict(state)) is not None:
                return model
            model.fit(training.images, training.labels, rng=rng)
            cache.save(lambda tmp: model.save(tmp))
        return model

    # -- training sets ---------------------------------------------------------------------------
    def _join(self, parts: list[ImageSet]) -> ImageSet:
        if len({p.images.dtype for p in parts}) > 1:  # float real images: join as floats
            parts = [p.as_float() for p in parts]
        images = torch.cat([p.images for p in parts])
        if any(p.labels is None for p in parts):  # unlabelled data, or samples no one labels
            return ImageSet(images, None)
        labels = torch.cat([p.labels for p in parts])
        return ImageSet(images, labels, n_classes=self.real.train.n_classes)

    def _as_set(self, quantised: torch.Tensor, labels: torch.Tensor | None) -> ImageSet:
        # kept as bytes when the real images are (image folders), else as the floats they
        # stand for, which the float real images are joined with
        if self.real.train.images.dtype != torch.uint8:
            quantised = unit_float(quantised)
        if labels is None:
            return ImageSet(quantised, None)
        return ImageSet(quantised, labels, n_classes=self.real.train.n_classes)

    def _synthetic_part(self, rng) -> ImageSet:
        cfg = self.cfg
        if cfg.synthetic_source == "accumulate":
            return self._join([self._as_set(*kept) for kept in self.synthetic])
        if cfg.synthetic_source == "last" or len(self.synthetic) == 1:
            return self._as_set(*self.synthetic[-1])
        # memory: image i comes from a generation picked uniformly among the K most recent;
        # a generation asked for c images gives its first c
        choice = torch.randint(len(self.synthetic), (cfg.n_synthetic,), generator=rng)
        rank = torch.zeros_like(choice)
        for j in range(len(self.synthetic)):
            members = choice == j
            rank[members] = torch.arange(int(members.sum()))
        picks = list(zip(choice, rank, strict=True))
        images = torch.stack([self.synthetic[j][0][r] for j, r in picks])
        if any(kept[1] is None for kept in self.synthetic):
            return self._as_set(images, None)
        labels = torch.stack([self.synthetic[j][1][r] for j, r in picks])
        return self._as_set(images, labels)

    def _keep_synthetic(self, quantised: torch.Tensor, labels: torch.Tensor | None) -> None:
        n = self.cfg.n_synthetic
        self.synthetic.append((quantised[:n], None if labels is None else labels[:n]))
        if self.n_keep is not None:
            self.synthetic = self.synthetic[-self.n_keep :]

    # -- curation (madutils.curation) ----------------------------------------------------------
    def _draw(self, model, n: int, labels: torch.Tensor | None, rng):
        """``n`` more images of ``model`` (uint8) and their labels: for the classes ``labels``
        (a conditional model) or drawn freely and labelled by the feature network."""
        if model.conditional:
            return _quantise(model.sample(n, self.cfg.lam, rng=rng, labels=labels)), labels
        images = _quantise(model.sample(n, self.cfg.lam, rng=rng))
        return images, self.real.labels_of(unit_float(images))

    def _curated(self, model, quantised, labels, generation: int):
        """The ``n_synthetic`` images the next model trains on, their labels, and the images
        drawn for each one kept (1 without curation)."""
        n = self.cfg.n_synthetic
        images, labels = quantised[:n], None if labels is None else labels[:n]
        if n == 0:
            return images, labels, 1.0
        if self.cfg.curation == "verify":
            return self._verified(model, images, labels, generation)
        if self.cfg.curation == "best_of":
            return self._best_of(model, images, labels, generation)
        if self.cfg.curation == "correct":
            return self._corrected(images, labels), labels, 1.0
        return images, labels, 1.0

    def _verified(self, model, images, labels, generation: int):
        """The images after verification (Feng et al. 2024), their labels, and the images drawn
        per image kept.

        The verifier is the feature network: an image passes when its most probable class has
        probability at least ``verifier_confidence`` and, for a conditional model, is the label
        it was asked for (an unconditional model's image is labelled with that class). A
        rejected image is drawn again (for the same label), from the stream
        ``(seed, generation, VERIFY)``, for at most :data:`~madutils.curation.MAX_VERIFY_ROUNDS`
        rounds (after which the last draw stays).
        """
        cfg = self.cfg
        n = len(images)
        images, wanted = images.clone(), labels.clone()
        rng = stream(cfg.seed, generation, ImageStream.VERIFY, device=model.device_)
        pending = torch.arange(n)
        drawn = n
        for round_ in range(MAX_VERIFY_ROUNDS):
            probabilities = self.real.features.probabilities(unit_float(images[pending]))
            asked = wanted[pending] if model.conditional else None
            passed, predicted = classifier_accepts(probabilities, cfg.verifier_confidence, asked)
            if not model.conditional:  # an unconditional model's image keeps the class found
                wanted[pending] = predicted
            pending = pending[~passed]
            if len(pending) == 0 or round_ == MAX_VERIFY_ROUNDS - 1:
                break
            images[pending] = self._draw(model, len(pending), wanted[pending], rng)[0]
            drawn += len(pending)
        return images, wanted, drawn / n

    def _best_of(self, model, images, labels, generation: int):
        """One of ``candidates`` images kept per image (Ferbach et al. 2024), their labels, and
        ``candidates`` (the images drawn per image kept).

        The first candidate of each image is the image itself; the other ``K - 1`` are drawn
        for the same label (a conditional model) or freely, from the stream ``(seed,
        generation, CURATE)``. The reward of a candidate is ``reward_scale * log p(y | x)``,
        the feature network's log-probability of the class ``y`` it was asked for (an
        unconditional model's: of its most probable class); one is kept by
        :func:`madutils.curation.best_of` with the rule ``preference`` (Bradley-Terry: with
        probability proportional to ``p(y | x) ** reward_scale``). The loop's reward is maximal
        for the digits the network is surest of, so curation alone drives it toward them.
        """
        cfg = self.cfg
        n, k = len(images), cfg.candidates
        rng = stream(cfg.seed, generation, ImageStream.CURATE, device=model.device_)
        candidates, candidate_labels = [images], [labels]
        for _ in range(k - 1):
            drawn, drawn_labels = self._draw(model, n, labels, rng)
            candidates.append(drawn)
            candidate_labels.append(drawn_labels)
        rewards = torch.stack(
            [
                self._log_confidence(c, c_labels if model.conditional else None)
                for c, c_labels in zip(candidates, candidate_labels, strict=True)
            ],
            dim=1,
        )
        # best_of picks among the candidates' indices, which then pick images and labels
        index = torch.arange(k, dtype=torch.float64).expand(1, n, k).unsqueeze(-1)
        choice = best_of(index, cfg.reward_scale * rewards[None], rule=cfg.preference, rng=rng)
        choice = choice[0, :, 0].long()
        rows = torch.arange(n)
        kept = torch.stack(candidates, dim=1)[rows, choice]
        kept_labels = torch.stack(candidate_labels, dim=1)[rows, choice]
        return kept, kept_labels, float(k)

    def _log_confidence(self, images, labels) -> torch.Tensor:
        """The feature network's log-probability of the class ``labels`` of each image (of its
        most probable class without labels), as float64."""
        probabilities = self.real.features.probabilities(unit_float(images)).to(torch.float64)
        if labels is None:
            chosen = probabilities.max(dim=1).values
        else:
            chosen = probabilities.gather(1, labels.to(torch.long).unsqueeze(1)).squeeze(1)
        return chosen.clamp_min(torch.finfo(torch.float64).tiny).log()

    def _corrected(self, images, labels) -> torch.Tensor:
        """The images moved toward the real data by an expert (Gillman et al. 2024).

        The expert is the simplest one this data set has: the real training images (never the
        held-out ones the metrics use). Each synthetic image ``x`` becomes
        ``(1 - gamma) x + gamma r``, pixel by pixel, with ``r`` the real training image of the
        same class (of any class without labels) nearest to ``x`` in the feature network's
        features; at ``gamma = 1`` the next model trains on real images (a nearest one may
        repeat). Deterministic: no random draw.
        """
        real_features, real_labels = self._expert_reference()
        features = self.real.features.features(unit_float(images)).to(real_features)
        nearest = torch.empty(len(images), dtype=torch.long)
        groups = (
            [(torch.arange(len(images)), torch.arange(len(real_features)))]
            if labels is None or real_labels is None
            else [
                (torch.nonzero(labels == c).squeeze(1), torch.nonzero(real_labels == c).squeeze(1))
                for c in labels.unique()
            ]
        )
        for rows, candidates in groups:
            if len(candidates) == 0:
                raise ValueError(f"no real training image has the class of image {int(rows[0])}")
            for chunk in rows.split(1024):
                distances = torch.cdist(features[chunk], real_features[candidates])
                nearest[chunk] = candidates[distances.argmin(dim=1)]
        real_images = unit_float(self.real.train.images[nearest])
        gamma = self.cfg.correction
        return _quantise((1.0 - gamma) * unit_float(images) + gamma * real_images)

    def _expert_reference(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The features and labels of the real training images, computed once per run."""
        if self._expert is None:
            train = self.real.train
            self._expert = (self.real.features.features(train.images), train.labels)
        return self._expert

    def _screen(self, fresh, synthetic, rng):
        """The detector: :func:`madutils.curation.detect_and_filter` on the images' indices,
        which keeps a random share ``1 - detector_fpr`` of the new real images and
        ``detector_fnr`` of the synthetic ones (drawn from the training set's stream)."""

        def indices(part):
            n = 0 if part is None else len(part)
            return torch.arange(n, dtype=torch.float64).reshape(1, n, 1)

        def kept(part, index):
            return None if part is None else part.subset(index[0, :, 0].long())

        real, synthetic_kept = detect_and_filter(
            indices(fresh),
            indices(synthetic),
            fpr=self.cfg.detector_fpr,
            fnr=self.cfg.detector_fnr,
            rng=rng,
        )
        return kept(fresh, real), kept(synthetic, synthetic_kept)

    # -- one generation ------------------------------------------------------------------------
    def step(self, generation: int) -> dict[str, np.ndarray]:
        cfg = self.cfg
        training = self.training_set(generation, stream(cfg.seed, generation, ImageStream.MEMORY))
        start = time.perf_counter()
        model = self.fit(generation, training)
        fitted = time.perf_counter()
        n_samples = max(cfg.n_synthetic, cfg.n_eval)
        n_classes = self.real.train.n_classes
        quantised, labels = self._sample(model, generation, n_samples)
        # the curation's draws count as sampling
        kept, kept_labels, drawn_per_kept = self._curated(model, quantised, labels, generation)
        self._keep_synthetic(kept, kept_labels)
        if self.store is not None and cfg.curation != "none" and cfg.n_synthetic > 0:
            content = {"images": kept, "labels": kept_labels}
            self.written.append(self.store.save_file("curated", generation, content))
        sampled = time.perf_counter()
        values = measure(
            self.real,
            unit_float(quantised[: cfg.n_eval]),
            lambda: stream(cfg.seed, generation, ImageStream.SUBSETS),
            training.images,
            # the classes an unconditional model's samples were labelled with above
            predicted=None if model.conditional or labels is None else labels[: cfg.n_eval],
        )
        if cfg.curates and cfg.n_synthetic > 0:
            # images drawn per synthetic image the next model trains on, after the detector
            _, trained_on = cfg.detected_sizes(0, cfg.n_synthetic)
            values["drawn_per_kept"] = (
                drawn_per_kept * cfg.n_synthetic / trained_on if trained_on else float("nan")
            )
        self.record_time(
            generation,
            fit_seconds=fitted - start,
            sample_seconds=sampled - fitted,
            measure_seconds=time.perf_counter() - sampled,
        )
        if self.store is not None:
            self.written.append(model.save(self.store.file_path("models", generation)))
            classes = None if labels is None else n_classes
            content = {"images": quantised, "labels": labels, "n_classes": classes}
            self.written.append(self.store.save_file("samples", generation, content))
        return {name: np.array([value]) for name, value in values.items()}

    def leading_rows(self) -> pd.DataFrame:
        """Generation 0, the real-versus-real floor: the metrics of disjoint sets of ``n_eval``
        real training images each (up to :data:`FLOOR_SETS`; replicate ``i`` is set ``i``),
        what a perfect model would score with this many samples, and how much that varies.

        For ``memorisation``, set ``i`` stands in for a model's samples and the next set (the
        training images outside the set, when there is one set) for its training set: real
        images are no copies of other real images."""
        cfg, train = self.cfg, self.real.train
        n_floor = cfg.n_eval  # smaller than len(train), checked when the loop is built
        sets = min(FLOOR_SETS, len(train) // n_floor)
        order = torch.randperm(len(train), generator=stream(cfg.seed, ImageStream.FLOOR))
        chunks = [order[i * n_floor : (i + 1) * n_floor] for i in range(sets)]
        others = [chunks[(i + 1) % sets] if sets > 1 else order[n_floor:] for i in range(sets)]
        measured = [
            measure(
                self.real,
                train.images[chunks[i]],
                lambda i=i: stream(cfg.seed, 0, ImageStream.SUBSETS, i),
                train.images[others[i]],
            )
            for i in range(sets)
        ]
        values = {name: np.array([m[name] for m in measured]) for name in measured[0]}
        return metric_rows(cfg, [(0, values)], replicates=sets)

    # -- resuming ------------------------------------------------------------------------------
    def state(self, generation: int) -> dict:
        return {
            "generation": generation,
            "pool_drawn": self.pool.n_drawn,
        }

    def restore(self, state: dict) -> int:
        generation = int(state["generation"])
        self.training_set.first_real = self.pool.draw(self.cfg.n_ini)
        if state["pool_drawn"] > self.cfg.n_ini:
            self.pool.draw(state["pool_drawn"] - self.cfg.n_ini)
        first = 1 if self.n_keep is None else max(1, generation - self.n_keep + 1)
        kind = "curated" if self.cfg.curation != "none" and self.cfg.n_synthetic else "samples"
        for kept in range(first, generation + 1):
            # uint8 as sampled: no round trip through floats
            stored = self.store.load_file(kind, kept, weights_only=True)
            self._keep_synthetic(stored["images"], stored["labels"])
        return generation


def run_image_loop(
    config: ImageLoopConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    cache_dir=None,
    allow_code_change: bool = False,
    repair: bool = False,
) -> ImageLoopResult:
    """Run (or resume) a self-consuming loop of an image model.

    Parameters
    ----------
    config : ImageLoopConfig
        The settings.
    out : str or Path, optional
        Parent directory of the run directory. When given, every finished generation is saved
        (rows, weights, samples), a rerun with the same settings resumes after the last
        finished generation (asking for more generations extends the run), and a directory
        holding other settings is refused. When ``None`` nothing is written.
    progress : bool
        Progress bars over generations and over each model's training epochs.
    cache_dir : str or Path, optional
        Where the feature network's weights are cached (default: ``$MADUTILS_CACHE`` or
        ``~/.cache/madutils``).
    allow_code_change : bool
        With ``out``: continue a run whose stored generations other code computed (the run's
        history records the mix, the rows' ``code`` column shows it); refused otherwise.
    repair : bool
        With ``out``: first drop the stored generations from the first damaged one on (see
        :func:`madutils.results.repair`), so that this run recomputes them.

    Returns
    -------
    ImageLoopResult
    """
    if not isinstance(config, ImageLoopConfig):
        raise ValueError(f"config must be an ImageLoopConfig; got {type(config).__name__}")
    cfg = config.resolved()
    with stored_run(out, cfg, repair=repair) as store, torch_threads(cfg.threads):
        real = prepare_real_images(cfg, cache_dir=cache_dir, progress=progress)
        loop = ImageLoop(cfg, store, real, progress)
        table, timings = drive(loop, progress=progress, allow_code_change=allow_code_change)
    return ImageLoopResult(
        table=table,
        timings=timings,
        config=cfg,
        run_dir=store.path if store is not None else None,
        computed=loop.computed,
        feature_accuracy=float(real.features.held_out_accuracy_),
    )
