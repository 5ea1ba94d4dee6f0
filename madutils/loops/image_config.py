"""Settings of one self-consuming loop of an image model, validated in one place.

:class:`ImageLoopConfig` is the image counterpart of :class:`madutils.loops.config.LoopConfig`: the
same three families and the same meaning of ``n_ini``, ``n_real``, ``n_synthetic`` and
``lam``, plus the data set, the network and its training, and the sampler. Every setting is a
plain value, so a run can be written to ``config.json``, hashed into a run directory name and
rebuilt; every invalid value raises ``ValueError`` naming the parameter and what is allowed,
its type first (:func:`check_setting`, from the field's annotation and
:data:`SETTING_CHECKS`). :meth:`ImageLoopConfig.resolved` also refuses a run that would not fit
in memory (:mod:`madutils.loops.footprint`; ``MADUTILS_SKIP_MEMORY_CHECK=1`` skips this), and
resets the settings the run does not use (:data:`USED_WHEN`: the DDPM's for a WGAN and the
other way round, ``memory`` without the ``"memory"`` source, ``data_path`` for a data set that
has no files) to their defaults, so they never change a run's identity.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass

from madutils._image_checks import check_power_of_two_size, resolve_device
from madutils._validation import (
    check_choice,
    check_decay,
    check_lam,
    check_nonnegative_int,
    check_positive_int,
    check_positive_number,
    check_probability,
    check_setting_value,
)
from madutils.data.images import DATASETS
from madutils.loops.config import check_eval_samples
from madutils.loops.families import (
    CURATION_CHECKS,
    FAMILIES,
    SHARED_USED_WHEN,
    SYNTHETIC_SOURCES,
    CurationSettings,
    check_family_sizes,
    family_sizes,
    real_samples_needed,
    reset_unused,
    setting,
    shared_setting,
)
from madutils.loops.footprint import check_footprint, image_loop_footprint
from madutils.metrics import IMAGE_METRICS  # re-exported: the image loops' metrics
from madutils.models.ddpm import SAMPLERS, check_unet_image_size, default_steps

__all__ = [
    "IMAGE_METRICS",
    "IMAGE_MODELS",
    "SETTING_CHECKS",
    "SETTING_TYPES",
    "USED_WHEN",
    "ImageLoopConfig",
    "check_setting",
]

IMAGE_MODELS = ("ddpm", "wgan", "stylegan2")
MIXED_PRECISION = ("auto", "bf16", "no")
_NATIVE_SIZE = {"mnist": 28, "digits": 8, "shapes": 16}
#: Channels of each data set's images when ``image_channels`` is None; a folder is read grey
#: unless asked for colour.
_NATIVE_CHANNELS = {"mnist": 1, "digits": 1, "idx": 1, "folder": 1, "shapes": 3}
#: Data sets whose images are grey only (``image_channels=3`` is refused).
_GREY_DATASETS = ("mnist", "digits", "idx")
#: Models that take colour images.
_COLOUR_MODELS = ("stylegan2",)
#: Data sets read from files at ``data_path`` (the others ship with their packages).
FILE_DATASETS = ("idx", "folder")
_DDPM = ("ddpm",)
_WGAN = ("wgan",)
_STYLEGAN = ("stylegan2",)
_GANS = ("wgan", "stylegan2")
#: When a setting matters (see :func:`madutils.loops.families.unused_settings`): the setting
#: it depends on and the values for which the run reads it. Every other setting is read by
#: every run. The model settings are the constructor arguments of that model only
#: (:func:`madutils.models.base.settings_for`).
USED_WHEN = {
    **SHARED_USED_WHEN,
    "data_path": ("dataset", FILE_DATASETS),
    "channels": ("model", _DDPM),
    "layers_per_block": ("model", _DDPM),
    "timesteps": ("model", _DDPM),
    "ema_decay": ("model", _DDPM),
    "sampler": ("model", _DDPM),
    "steps": ("model", _DDPM),
    "mixed_precision": ("model", _DDPM),
    "latent_dim": ("model", _GANS),
    "width": ("model", _GANS),
    "n_critic": ("model", _WGAN),
    "mapping_layers": ("model", _STYLEGAN),
    "max_width": ("model", _STYLEGAN),
    "r1_gamma": ("model", _STYLEGAN),
    "style_mixing": ("model", _STYLEGAN),
    "path_length": ("model", _STYLEGAN),
    "verifier_confidence": ("curation", ("verify",)),
}
#: The curation steps of the image loops (``ImageLoopConfig.curation``; see
#: :class:`madutils.loops.images.ImageLoop`).
IMAGE_CURATIONS = ("none", "verify", "best_of", "correct")
#: The curation steps whose judge is the feature network's classifier (``features="lenet"``).
_CLASSIFIED_CURATIONS = ("verify", "best_of")


def _choice(allowed: tuple[str, ...]) -> Callable:
    return lambda value, name: check_choice(value, name, allowed)


def _check_channels(value, name: str):
    if not value:
        raise ValueError(f"{name} must be a non-empty tuple of ints; got {value!r}")
    for width in value:
        check_positive_int(width, name)
    return value


def _check_features(value: str, name: str) -> str:
    module, _, function = value.partition(":") if isinstance(value, str) else ("", "", "")
    if value != "lenet" and not (module and function and ":" not in function):
        raise ValueError(
            f"{name} must be 'lenet' or 'module:function' (an importable function from images "
            f"to features, e.g. 'mypackage.features:inception'); got {value!r}"
        )
    return value


def _nonnegative_number(value, name: str) -> float:
    return check_positive_number(value, name, allow_zero=True)


def _check_device(value, name: str):
    return resolve_device(value)  # "cpu", "cuda" (when there is one) or "auto"


#: The check of each setting's own value, called with the value and the setting's name
#: (after its type check; not for ``None``). Checks of several settings together are
#: :class:`ImageLoopConfig`'s.
SETTING_CHECKS: dict[str, Callable] = {
    "family": _choice(FAMILIES),
    "model": _choice(IMAGE_MODELS),
    "dataset": _choice(DATASETS),
    "image_size": check_positive_int,
    "image_channels": lambda value, name: check_choice(value, name, (1, 3)),
    "held_out": check_positive_int,
    "n_ini": check_positive_int,
    "n_real": check_nonnegative_int,
    "n_synthetic": check_nonnegative_int,
    "generations": check_positive_int,
    "lam": check_lam,
    "synthetic_source": _choice(SYNTHETIC_SOURCES),
    "memory": check_positive_int,
    "epochs": check_positive_int,
    "batch_size": check_positive_int,
    "lr": check_positive_number,
    "channels": _check_channels,
    "layers_per_block": check_positive_int,
    "timesteps": check_positive_int,
    "ema_decay": check_decay,
    "sampler": _choice(SAMPLERS),
    "steps": check_positive_int,
    "latent_dim": check_positive_int,
    "width": check_positive_int,
    "n_critic": check_positive_int,
    "mapping_layers": check_positive_int,
    "max_width": check_positive_int,
    "r1_gamma": _nonnegative_number,
    "style_mixing": check_probability,
    "path_length": _nonnegative_number,
    "n_eval": check_nonnegative_int,
    "k": check_positive_int,
    "feature_epochs": check_positive_int,
    "features": _check_features,
    "seed": check_nonnegative_int,
    "device": _check_device,
    "threads": check_positive_int,
    "mixed_precision": _choice(MIXED_PRECISION),
    "curation": _choice(IMAGE_CURATIONS),
    "verifier_confidence": check_probability,
    **CURATION_CHECKS,
}
#: How messages name a setting whose symbol in the paper differs from its name.
_LABELS = {"memory": "memory (K)"}


@dataclass(frozen=True)
class ImageLoopConfig(CurationSettings):
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

    The mitigations of :mod:`madutils.curation` act on the synthetic images before the next
    model trains on them (``curation``: verify, best of K, or an expert's correction, each
    judged by the LeNet feature network; see :class:`madutils.loops.images.ImageLoop`), and a
    detector (``detector_fpr``, ``detector_fnr``) filters the new real and synthetic images
    of every generation; a run with either records ``drawn_per_kept``.

    Sizes default as in every loop (:func:`madutils.loops.families.family_sizes`): a fresh
    data loop needs ``n_real`` and ``n_synthetic``. The real images are split once:
    ``held_out`` of them are kept for the metrics (and to report the feature network's
    accuracy) and never trained on.
    """

    family: str = shared_setting("family")
    model: str = setting(
        "ddpm",
        "image model: 'ddpm' (class-conditional), 'wgan' (unconditional WGAN-GP) or "
        "'stylegan2' (unconditional StyleGAN2, grey or colour)",
    )
    dataset: str = setting(
        "mnist", "real images (see madutils.data.images; 'shapes': coloured shapes)"
    )
    data_path: str | None = setting(None, "directory of the images for dataset 'idx' or 'folder'")
    image_size: int | None = setting(
        None,
        "side of the square images in pixels; None: the data set's own (28 "
        "for mnist, 8 for digits)",
    )
    image_channels: int | None = setting(
        None,
        "channels of the real images, 1 (grey) or 3 (colour); None: the data set's own (3 for "
        "shapes, 1 for the others; a folder is read grey unless 3 is asked for)",
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
    fixed_steps: bool = setting(
        False,
        "train every generation for the optimizer steps of `epochs` passes over n_ini images: "
        "a larger training set (augmentation, a pool) gets proportionally fewer passes",
    )
    batch_size: int = setting(128, "training batch size")
    lr: float = setting(
        1e-3,
        "learning rate (ddpm: AdamW; wgan: Adam, betas (0.5, 0.9); stylegan2: Adam, betas "
        "(0, 0.99))",
    )
    channels: tuple[int, ...] = setting(
        (32, 64, 64), "ddpm: UNet block_out_channels, one per level"
    )
    layers_per_block: int = setting(1, "ddpm: ResNet layers per UNet block")
    timesteps: int = setting(500, "ddpm: diffusion steps T (paper: 500)")
    ema_decay: float = setting(
        0.0, "ddpm: decay of the weights' moving average, in [0, 1) (0: the last weights)"
    )
    sampler: str = setting(
        "ddpm",
        "ddpm: 'ddpm' (ancestral), 'ddim' (deterministic, fewer steps), 'dpm_solver' "
        "(DPM-Solver++, fewer still) or 'dpm_solver_sde' (its stochastic variant)",
    )
    steps: int | None = setting(
        None, "ddpm: denoising steps; None: timesteps for ddpm, 50 for ddim, 20 for the dpm_solvers"
    )
    latent_dim: int = setting(64, "wgan, stylegan2: dimension of the latent z (and of w)")
    width: int = setting(
        32, "wgan, stylegan2: base channel count of generator and critic (discriminator)"
    )
    n_critic: int = setting(5, "wgan: critic steps per generator step")
    mapping_layers: int = setting(8, "stylegan2: dense layers of the mapping network z -> w")
    max_width: int = setting(128, "stylegan2: most channels at any resolution")
    r1_gamma: float = setting(1.0, "stylegan2: weight gamma of the R1 penalty (0: off)")
    style_mixing: float = setting(
        0.0, "stylegan2: probability of mixing two latents in a batch, in [0, 1]"
    )
    path_length: float = setting(
        0.0, "stylegan2: weight of the path-length regularisation (0: off)"
    )
    n_eval: int | None = setting(None, "synthetic images measured per generation; None: held_out")
    k: int = shared_setting("k")
    feature_epochs: int = setting(10, "training epochs of the LeNet feature network")
    features: str = setting(
        "lenet",
        "feature space of the metrics: 'lenet' (a LeNet trained here on the data set's "
        "classes) or 'module:function', your function from images (n, c, s, s) in [0, 1] to "
        "features (n, d), imported by that path (needed for a folder without classes)",
    )
    seed: int = shared_setting("seed")
    device: str = shared_setting("device", "auto")
    threads: int = shared_setting("threads")
    mixed_precision: str = setting("auto", "ddpm: 'auto', 'bf16' or 'no' (see ConditionalDDPM)")
    curation: str = setting(
        "none",
        "curation of the synthetic images before the next model trains on them: 'none', "
        "'verify' (the feature network must find the class asked for, or any class for an "
        "unconditional model, with confidence at least verifier_confidence, else the image is "
        "drawn again; Feng et al. 2024), 'best_of' (of K candidates, one kept by the reward "
        "reward_scale * log p(class | image) of the feature network; Ferbach et al. 2024) or "
        "'correct' (an expert moves each image a share gamma of the way to the real training "
        "image of its class nearest it in feature space; Gillman et al. 2024)",
    )
    verifier_confidence: float = setting(
        0.9, "curation 'verify': the smallest confidence tau in [0, 1] the verifier accepts"
    )
    candidates: int = shared_setting("candidates")
    preference: str = shared_setting("preference")
    reward_scale: float = shared_setting("reward_scale")
    correction: float = shared_setting("correction")
    detector_fpr: float | None = shared_setting("detector_fpr")
    detector_fnr: float | None = shared_setting("detector_fnr")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            checked = check_setting(field.name, value)
            if checked is not value:  # a list given for a tuple
                object.__setattr__(self, field.name, checked)
        if self.dataset in FILE_DATASETS and not self.data_path:
            raise ValueError(f"data_path must name a directory for dataset={self.dataset!r}")
        if self.image_size is None and self.dataset not in _NATIVE_SIZE:
            raise ValueError(f"image_size must be given for dataset={self.dataset!r}")
        self._check_channels()
        if self.model == "ddpm":
            check_unet_image_size(self.resolved_image_size, self.channels)
        elif self.model == "stylegan2":
            check_power_of_two_size(self.resolved_image_size, context=" for model='stylegan2'")
        elif self.resolved_image_size % 4:
            raise ValueError(
                "image_size must be divisible by 4 for model='wgan' (e.g. 8, 12, 16 or 28); "
                f"got {self.resolved_image_size}"
            )
        if self.steps is not None and self.steps > self.timesteps:
            raise ValueError(
                f"steps must be at most timesteps = {self.timesteps}; got {self.steps}"
            )
        self._check_sizes()
        self._check_curation()

    def _check_curation(self) -> None:
        if self.curation in _CLASSIFIED_CURATIONS and self.features != "lenet":
            raise ValueError(
                f"curation={self.curation!r} needs features 'lenet' (its judge is the feature "
                f"network's classifier); got features={self.features!r}"
            )
        self._check_detector(*self._sizes(), min_size=1)

    def _check_channels(self) -> None:
        channels = self.resolved_image_channels
        if channels == 3 and self.dataset in _GREY_DATASETS:
            raise ValueError(
                f"image_channels must be 1 for dataset={self.dataset!r} (grey images); got 3"
            )
        if channels == 3 and self.model not in _COLOUR_MODELS:
            raise ValueError(
                f"model={self.model!r} takes grey images only; dataset={self.dataset!r} with "
                f"image_channels=3 needs model 'stylegan2' (or image_channels=1)"
            )

    def _sizes(self) -> tuple[int, int]:
        return family_sizes(self.family, self.n_ini, self.n_real, self.n_synthetic)

    def _check_sizes(self) -> None:
        n_real, n_synthetic = self._sizes()
        check_family_sizes(self.family, self.n_ini, n_real, n_synthetic)
        n_eval = self.held_out if self.n_eval is None else self.n_eval
        default = "" if self.n_eval is not None else f"held_out={self.held_out}"
        check_eval_samples(IMAGE_METRICS, n_eval, self.k, default)
        if self.k >= self.held_out:
            raise ValueError(
                "k must be smaller than held_out (the k-NN manifold of the held-out real "
                f"images); got k={self.k}, held_out={self.held_out}"
            )

    @property
    def resolved_image_size(self) -> int:
        return self.image_size if self.image_size is not None else _NATIVE_SIZE[self.dataset]

    @property
    def resolved_image_channels(self) -> int:
        if self.image_channels is not None:
            return self.image_channels
        return _NATIVE_CHANNELS[self.dataset]

    def resolved(self, *, check_memory: bool = True) -> ImageLoopConfig:
        """The settings a run uses, checked against the memory there is.

        Every ``None`` and ``"auto"`` is replaced by its value, and every setting the run does
        not use (:data:`USED_WHEN`) by its default, so two configurations that differ only in
        unused settings resolve equal (and share a run directory).

        Parameters
        ----------
        check_memory : bool, default True
            False: leave out the memory check (to estimate a run meant for another machine,
            as :func:`madutils.analysis.cost.memory_needed` does).

        Raises
        ------
        ValueError
            When the run would need more memory than there is available
            (:func:`madutils.loops.footprint.check_footprint`; the environment variable
            ``MADUTILS_SKIP_MEMORY_CHECK=1`` skips this check).
        """
        n_real, n_synthetic = self._sizes()
        steps = default_steps(self.sampler, self.timesteps) if self.steps is None else self.steps
        resolved = dataclasses.replace(
            self,
            image_size=self.resolved_image_size,
            image_channels=self.resolved_image_channels,
            n_real=n_real,
            n_synthetic=n_synthetic,
            steps=steps,
            n_eval=self.held_out if self.n_eval is None else self.n_eval,
            device=resolve_device(self.device).type,
        )
        resolved = reset_unused(resolved, USED_WHEN)
        if check_memory:
            check_footprint(image_loop_footprint(resolved), resolved.device)
        return resolved

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


#: The type of every setting, from the annotations of :class:`ImageLoopConfig`.
SETTING_TYPES = typing.get_type_hints(ImageLoopConfig)


def check_setting(name: str, value, label: str | None = None):
    """Check one setting's own value, as :class:`ImageLoopConfig` does: its type, then its
    range.

    Parameters
    ----------
    name : str
        A field of :class:`ImageLoopConfig`.
    value
        The value to check.
    label : str, optional
        How the message names the setting; default: its name (``memory (K)`` for memory).

    Returns
    -------
    The value (a list given for a tuple setting comes back as a tuple).

    Raises
    ------
    ValueError
        Naming the setting, what is allowed and what was given.
    """
    label = label or _LABELS.get(name, name)
    return check_setting_value(value, label, SETTING_TYPES[name], SETTING_CHECKS.get(name))
