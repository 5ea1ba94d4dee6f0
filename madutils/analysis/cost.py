"""What an image loop costs: optimizer steps per generation, measured seconds per step, hours.

A paper-scale run cannot be timed on the machine that plans it, but its pieces can: how many
training batches (optimizer steps) every generation of a loop makes follows from its settings
(:func:`training_batches`), and the seconds one batch takes can be measured on the device at
hand for the same networks (:func:`seconds_per_batch`). Their product, summed over the runs of
an experiment, is the training time :func:`training_hours` estimates. Sampling and measuring
are left out: for the image models they are minutes against the hours of training. The memory
a run needs, host and device apart, is :mod:`madutils.loops.footprint`'s estimate
(:func:`memory_needed`), worked out without the machine at hand's memory check.

The estimate assumes the seconds per batch do not depend on the training set (true: every batch
has ``batch_size`` images, the last of an epoch fewer) and that nothing else runs on the device.
"""

from __future__ import annotations

import math
import time

import torch

from madutils._validation import check_positive_int, check_positive_number
from madutils.loops.families import family_sizes
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import MODEL_CLASSES, fixed_step_epochs
from madutils.models.base import settings_for

__all__ = [
    "memory_needed",
    "seconds_per_batch",
    "total_batches",
    "training_batches",
    "training_hours",
    "training_set_sizes",
]


def _config(config: ImageLoopConfig) -> ImageLoopConfig:
    if not isinstance(config, ImageLoopConfig):
        raise ValueError(f"config must be an ImageLoopConfig; got {type(config).__name__}")
    return config


def training_set_sizes(config: ImageLoopConfig) -> list[int]:
    """Images each generation of the loop trains on, generation 1 first.

    Generation 1 trains on ``n_ini`` real images; generation ``t >= 2`` on its real part (none,
    generation 1's set, or new images: :mod:`madutils.loops.families`) plus ``n_synthetic``
    images, or with ``synthetic_source="accumulate"`` the pool of ``(t - 1) n_synthetic``.
    """
    cfg = _config(config)
    n_real, n_synthetic = family_sizes(cfg.family, cfg.n_ini, cfg.n_real, cfg.n_synthetic)
    sizes = [cfg.n_ini]
    for generation in range(2, cfg.generations + 1):
        pooled = generation - 1 if cfg.synthetic_source == "accumulate" else 1
        sizes.append(n_real + pooled * n_synthetic)
    return sizes


def training_batches(config: ImageLoopConfig) -> list[int]:
    """Optimizer steps (training batches) of each generation, generation 1 first.

    ``epochs`` passes of ``ceil(size / batch_size)`` batches over each generation's training
    set (:func:`training_set_sizes`); with ``fixed_steps`` the later generations make the
    passes of :func:`~madutils.loops.images.fixed_step_epochs`, as the loop does.
    """
    cfg = _config(config)
    batches = []
    for generation, size in enumerate(training_set_sizes(cfg), start=1):
        epochs = cfg.epochs
        if cfg.fixed_steps and generation > 1:
            epochs = fixed_step_epochs(cfg.epochs, cfg.n_ini, size)
        batches.append(epochs * math.ceil(size / cfg.batch_size))
    return batches


def _fit_seconds(cfg: ImageLoopConfig, batches: int, seed: int) -> float:
    # cfg is not resolved: its memory check is about the data, which are not read here
    model_class = MODEL_CLASSES[cfg.model]
    size, channels = cfg.resolved_image_size, cfg.resolved_image_channels
    settings = settings_for(model_class, cfg) | {"epochs": 1, "image_size": size}
    if "image_channels" in settings:
        settings["image_channels"] = channels
    if model_class.conditional:
        settings["n_classes"] = 10
    model = model_class(**settings, progress=False)
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand((batches * cfg.batch_size, channels, size, size), generator=rng)
    labels = torch.randint(0, 10, (len(images),), generator=rng)
    start = time.perf_counter()
    model.fit(images, labels if model_class.conditional else None, rng=rng)
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def seconds_per_batch(
    config: ImageLoopConfig, *, batches: int = 16, warmup: int = 2, seed: int = 0
) -> float:
    """Measured seconds of one training batch of the loop's model, on its device.

    Three trainings from scratch on random images: one of ``warmup`` batches, not timed (the
    process's first calls are slow), then one of ``warmup`` and one of ``warmup + batches``
    batches; the difference of the last two times over ``batches`` is the time of a batch,
    without the set-up both share (building the networks). A step of the measured model is a
    step of the loop's: the same networks, batch size, regularisers and device. The default 16
    batches hold one lazy R1 step of the StyleGAN2 (every 16), as its training does.

    Parameters
    ----------
    config : ImageLoopConfig
        The loop whose model is timed (its data are not read).
    batches, warmup : int
        Batches timed, and batches before them.
    seed : int
        Seed of the random images and of the training.

    Returns
    -------
    float
        Seconds per batch (at least 0).
    """
    cfg = _config(config)
    batches, warmup = check_positive_int(batches, "batches"), check_positive_int(warmup, "warmup")
    _fit_seconds(cfg, warmup, seed)
    short = _fit_seconds(cfg, warmup, seed)
    long = _fit_seconds(cfg, warmup + batches, seed)
    return max(long - short, 0.0) / batches


#: Settings that do not change generation 1 of an image loop: runs differing only in these share
#: their first model (the loops' first-generation cache).
_LATER_GENERATIONS = (
    "family",
    "lam",
    "synthetic_source",
    "memory",
    "n_real",
    "n_synthetic",
    "generations",
    "fixed_steps",
)


def _first_generation_key(config: ImageLoopConfig) -> tuple:
    settings = config.to_dict()
    return tuple(sorted((k, repr(v)) for k, v in settings.items() if k not in _LATER_GENERATIONS))


def total_batches(configs) -> int:
    """Training batches of some runs together, a shared first generation counted once.

    Every generation of every run is counted (nothing is taken to be stored already), except
    that runs which share their first generation (the same settings and seed but for the loop
    family, the sampling bias and the later generations' sizes) train it once, as the loops do.

    Parameters
    ----------
    configs : ImageLoopConfig or iterable of them
        The runs.
    """
    runs = [configs] if isinstance(configs, ImageLoopConfig) else list(configs)
    firsts, batches = set(), 0
    for run in runs:
        per_generation = training_batches(run)
        key = _first_generation_key(run)
        batches += sum(per_generation[1:]) + (0 if key in firsts else per_generation[0])
        firsts.add(key)
    return batches


def training_hours(configs, seconds: float) -> float:
    """Hours of training of some runs at ``seconds`` per batch: one device, one run at a time
    (:func:`total_batches` batches).

    Parameters
    ----------
    configs : ImageLoopConfig or iterable of them
        The runs.
    seconds : float
        Seconds per training batch (:func:`seconds_per_batch`).
    """
    seconds = check_positive_number(seconds, "seconds", allow_zero=True)
    return total_batches(configs) * seconds / 3600


def memory_needed(configs) -> dict[str, float]:
    """The most memory any of the runs needs, in bytes: ``{"host": ..., "device": ...}``.

    Each run's tensors at its peak (:func:`madutils.loops.footprint.image_loop_footprint`,
    the settings resolved without this machine's memory check); ``"device"`` holds what a
    GPU run keeps on the GPU, ``"host"`` the rest.

    Parameters
    ----------
    configs : sequence of ImageLoopConfig
    """
    from madutils.loops.footprint import image_loop_footprint

    needed = {"host": 0.0, "device": 0.0}
    for config in configs:
        parts = image_loop_footprint(_config(config).resolved(check_memory=False))
        needed["host"] = max(needed["host"], sum(p.nbytes for p in parts if not p.on_device))
        needed["device"] = max(needed["device"], sum(p.nbytes for p in parts if p.on_device))
    return needed
