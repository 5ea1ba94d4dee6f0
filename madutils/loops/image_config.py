"""Settings of one self-consuming loop of an image model, validated in one place.

:class:`ImageLoopConfig` is the image counterpart of :class:`madutils.loops.config.LoopConfig`: the
same three families and the same meaning of ``n_ini``, ``n_real``, ``n_synthetic`` and
``lam``, plus the data set, the network and its training, and the sampler. Every setting is a
plain value, so a run can be written to ``config.json``, hashed into a run directory name and
rebuilt; every invalid value raises ``ValueError`` naming the parameter and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from madutils._image_checks import resolve_device
from madutils._validation import (
    check_choice,
    check_lam,
    check_nonnegative_int,
    check_positive_int,
    check_positive_number,
)
from madutils.data.images import DATASETS
from madutils.loops.families import (
    FAMILIES,
    SYNTHETIC_SOURCES,
    check_family_sizes,
    family_sizes,
    real_samples_needed,
    setting,
    shared_setting,
)
from madutils.metrics import IMAGE_METRICS  # re-exported: the image loops' metrics
from madutils.models.ddpm import check_unet_image_size

__all__ = ["IMAGE_METRICS", "IMAGE_MODELS", "ImageLoopConfig"]

IMAGE_MODELS = ("ddpm", "wgan")
SAMPLERS = ("ddpm", "ddim")
_NATIVE_SIZE = {"mnist": 28, "digits": 8}


@dataclass(frozen=True)
class ImageLoopConfig:
    """Every setting of one run of a self-consuming loop of an image model.

    Generation 1 trains a model from scratch on ``n_ini`` real images. Every later generation
    trains a new model from scratch on ``n_real`` real and ``n_synthetic`` synthetic images
    (synthetic images carry class labels, balanced over the classes):

    - ``fully_synthetic``: only the previous model's images (``n_real = 0``);
    - ``synthetic_augmentation``: generation 1's real images again (``n_real = n_ini``) plus
      the previous model's;
    - ``fresh_data``: ``n_real`` real images never used before plus the previous model's.

    The conditional DDPM samples images for balanced class labels; the unconditional WGAN
    samples images and the feature network labels them (so class counts may drift).

    The synthetic images come from ``synthetic_source``: the previous model (``"last"``), the
    pool of every earlier model's images (``"accumulate"``) or, image by image, one of the
    ``memory`` most recent models (``"memory"``); see :mod:`madutils.loops.families`.

    Sizes default as in every loop (:func:`madutils.loops.families.family_sizes`): a fresh
    data loop needs ``n_real`` and ``n_synthetic``. The real images are split once:
    ``held_out`` of them are kept for the metrics (and to report the feature network's
    accuracy) and never trained on.
    """

    family: str = shared_setting("family")
    model: str = setting(
        "ddpm", "image model: 'ddpm' (class-conditional) or 'wgan' (unconditional WGAN-GP)"
    )
    dataset: str = setting("mnist", "real images (see madutils.data.images)")
    data_path: str | None = setting(None, "directory of the images for dataset 'idx' or 'folder'")
    image_size: int | None = setting(
        None,
        "side of the square images in pixels; None: the data set's own (28 "
        "for mnist, 8 for digits)",
    )
    held_out: int = setting(1000, "real images kept out of training, the metrics' reference")
    n_ini: int = setting(1000, "real images of generation 1")
    n_real: int | None = setting(
        None, "real images per generation t >= 2; None: the family's default"
    )
    n_synthetic: int | None = setting(
        None, "synthetic images per generation t >= 2; None: the family's default"
    )
    generations: int = shared_setting("generations", 5)
    lam: float = setting(
        1.0, "sampling bias lambda in (0, 1]; ddpm: lam = 1 / (1 + guidance weight)"
    )
    synthetic_source: str = shared_setting("synthetic_source")
    memory: int = shared_setting("memory")
    epochs: int = setting(20, "training passes over each generation's training set")
    batch_size: int = setting(128, "training batch size")
    lr: float = setting(1e-3, "learning rate (ddpm: AdamW; wgan: Adam, betas (0.5, 0.9))")
    channels: tuple[int, ...] = setting(
        (32, 64, 64), "ddpm: UNet block_out_channels, one per level"
    )
    layers_per_block: int = setting(1, "ddpm: ResNet layers per UNet block")
    timesteps: int = setting(500, "ddpm: diffusion steps T (paper: 500)")
    ema_decay: float = setting(
        0.0, "ddpm: decay of the weights' moving average, in [0, 1) (0: the last weights)"
    )
    sampler: str = setting(
        "ddpm", "ddpm: 'ddpm' (ancestral) or 'ddim' (deterministic, fewer steps)"
    )
    steps: int | None = setting(
        None, "ddpm: denoising steps; None: timesteps for sampler ddpm, 50 for ddim"
    )
    latent_dim: int = setting(64, "wgan: dimension of the latent z")
    width: int = setting(32, "wgan: base channel count of generator and critic")
    n_critic: int = setting(5, "wgan: critic steps per generator step")
    n_eval: int | None = setting(None, "synthetic images measured per generation; None: held_out")
    k: int = shared_setting("k")
    feature_epochs: int = setting(10, "training epochs of the LeNet feature network")
    seed: int = shared_setting("seed")
    device: str = shared_setting("device", "auto")
    mixed_precision: str = setting("auto", "ddpm: 'auto', 'bf16' or 'no' (see ConditionalDDPM)")

    def __post_init__(self):
        check_choice(self.family, "family", FAMILIES)
        check_choice(self.model, "model", IMAGE_MODELS)
        check_choice(self.dataset, "dataset", DATASETS)
        if self.dataset in ("idx", "folder") and not self.data_path:
            raise ValueError(f"data_path must name a directory for dataset={self.dataset!r}")
        if self.image_size is None and self.dataset not in _NATIVE_SIZE:
            raise ValueError(f"image_size must be given for dataset={self.dataset!r}")
        if self.image_size is not None:
            check_positive_int(self.image_size, "image_size")
        check_positive_int(self.held_out, "held_out")
        check_positive_int(self.n_ini, "n_ini")
        for name in ("n_real", "n_synthetic", "steps", "n_eval"):
            if getattr(self, name) is not None:
                check = check_nonnegative_int if name.startswith("n_") else check_positive_int
                check(getattr(self, name), name)
        check_positive_int(self.generations, "generations")
        check_lam(self.lam, "lam")
        check_choice(self.synthetic_source, "synthetic_source", SYNTHETIC_SOURCES)
        check_positive_int(self.memory, "memory (K)")
        if not isinstance(self.channels, tuple | list) or not self.channels:
            raise ValueError(f"channels must be a non-empty tuple of ints; got {self.channels!r}")
        object.__setattr__(self, "channels", tuple(self.channels))
        for width in self.channels:
            check_positive_int(width, "channels")
        names = ("layers_per_block", "timesteps", "epochs", "batch_size", "k")
        for name in (*names, "latent_dim", "width", "n_critic"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.feature_epochs, "feature_epochs")
        if self.model == "ddpm":
            check_unet_image_size(self.resolved_image_size, self.channels)
        elif self.resolved_image_size % 4:
            raise ValueError(
                "image_size must be divisible by 4 for model='wgan' (e.g. 8, 12, 16 or 28); "
                f"got {self.resolved_image_size}"
            )
        check_positive_number(self.lr, "lr")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be a number in [0, 1); got {self.ema_decay!r}")
        check_choice(self.sampler, "sampler", SAMPLERS)
        if self.steps is not None and self.steps > self.timesteps:
            raise ValueError(
                f"steps must be at most timesteps = {self.timesteps}; got {self.steps}"
            )
        check_nonnegative_int(self.seed, "seed")
        resolve_device(self.device)
        check_choice(self.mixed_precision, "mixed_precision", ("auto", "bf16", "no"))
        self._check_sizes()

    def _sizes(self) -> tuple[int, int]:
        return family_sizes(self.family, self.n_ini, self.n_real, self.n_synthetic)

    def _check_sizes(self) -> None:
        n_real, n_synthetic = self._sizes()
        check_family_sizes(self.family, self.n_ini, n_real, n_synthetic)
        n_eval = self.held_out if self.n_eval is None else self.n_eval
        if self.k >= min(n_eval, self.held_out):
            raise ValueError(
                f"k must be smaller than n_eval and held_out (the k-NN manifolds' sizes); got "
                f"k={self.k}, n_eval={n_eval}, held_out={self.held_out}"
            )

    @property
    def resolved_image_size(self) -> int:
        return self.image_size if self.image_size is not None else _NATIVE_SIZE[self.dataset]

    def resolved(self) -> ImageLoopConfig:
        """The same settings with every ``None`` and ``"auto"`` replaced by its value."""
        n_real, n_synthetic = self._sizes()
        steps = self.steps
        if steps is None:
            steps = self.timesteps if self.sampler == "ddpm" else min(50, self.timesteps)
        return dataclasses.replace(
            self,
            image_size=self.resolved_image_size,
            n_real=n_real,
            n_synthetic=n_synthetic,
            steps=steps,
            n_eval=self.held_out if self.n_eval is None else self.n_eval,
            device=resolve_device(self.device).type,
        )

    @property
    def real_images_needed(self) -> int:
        """Real training images the run draws (fresh data never reuses one)."""
        n_real, _ = self._sizes()
        return real_samples_needed(self.family, self.n_ini, n_real, self.generations)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["channels"] = list(out["channels"])
        return out

    @classmethod
    def from_dict(cls, values: dict) -> ImageLoopConfig:
        return cls(**values)
