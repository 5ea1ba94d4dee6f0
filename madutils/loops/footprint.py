"""The memory a run needs, estimated from its settings before anything is allocated.

A run whose tensors do not fit fails deep inside torch with an allocator traceback, after
seconds or minutes of work; :func:`check_footprint` refuses it up front instead, with a message
that names the setting driving the estimate, the estimate and the memory available. The
settings' ``resolved()`` methods call it, so a run is refused before its run directory exists.

The estimate adds up the dominant tensors of a run at its peak, each counted with the dtype the
code uses (the batched loops compute in float64, the flow trains in float32, images are
float32, except an image folder's, which stay uint8 like the kept synthetic images) and with the
number of copies that live at once;
small tensors (metric values, the real reference, the feature network) are left out. It is
meant to be right within a small factor, not to the byte: it refuses runs that cannot fit,
not runs that might be tight.

- :func:`loop_footprint` (:class:`~madutils.loops.config.LoopConfig`): the training set
  ``seeds x n x dim`` and its copies, the accumulated pool, the synthetic draws, and per
  model the Gaussian's ``seeds x dim x dim`` covariances (the only tensors of the
  ``"statistics"`` path), the mixture's EM features and ``seeds x n x n_components``
  responsibilities, the flow's per-batch activations and weights.
- :func:`image_loop_footprint` (:class:`~madutils.loops.image_config.ImageLoopConfig`): the
  real images, each generation's training and sampled images, the kept synthetic images
  (all generations' for ``synthetic_source="accumulate"``), all in host memory, the training
  set again on the device for the GANs (which index it there), and the network's training
  activations and weights, on the device. The StyleGAN2's weights are counted exactly, from
  its networks built on PyTorch's ``meta`` device (no memory); its activations from the
  channels of each resolution.

The memory available is ``MemAvailable`` of ``/proc/meminfo`` (or :mod:`psutil` where there is
no ``/proc``) for the host, and the free memory of the GPU for ``device="cuda"``; where it
cannot be known the check is skipped. Setting the environment variable
``MADUTILS_SKIP_MEMORY_CHECK=1`` skips it too, for users who know better (swap, memory freed
by then, an estimate too pessimistic for their case).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from madutils.curation import MAX_VERIFY_ROUNDS
from madutils.data.images import SHAPES_SIZE
from madutils.metrics.manifold import METRIC_NAMES as MANIFOLD_METRICS

__all__ = [
    "SKIP_VARIABLE",
    "Factor",
    "Tensors",
    "available_memory",
    "check_footprint",
    "image_loop_footprint",
    "loop_footprint",
]

#: The environment variable that, set to anything but ``""`` or ``"0"``, skips the check.
SKIP_VARIABLE = "MADUTILS_SKIP_MEMORY_CHECK"

_FLOAT64, _FLOAT32, _INT64, _UINT8 = 8, 4, 8, 1
#: Images of each data set as :mod:`madutils.data.images` loads them (``idx``: MNIST's training
#: and test files together) and their native side; ``folder`` sets are not known in advance.
_DATASET_IMAGES = {"mnist": 5000, "digits": 1797, "idx": 70000, "shapes": SHAPES_SIZE}
#: (The shapes are rendered at the run's size, so they have none.)
_NATIVE_SIZE = {"mnist": 28, "digits": 8, "idx": 28}
#: Images the image models generate at once (ImageModel._sample_batch_size, WGANGP's own).
_SAMPLE_BATCH = {"ddpm": 256, "wgan": 1024, "stylegan2": 256}


@dataclass(frozen=True)
class Factor:
    """One dimension of a tensor: its size and the setting that sets it.

    Attributes
    ----------
    label : str
        How the formula writes it: ``"seeds"``, ``"dim"``, ``"(n_real + n_synthetic)"``.
    value : int
        Its size.
    setting : str
        The setting to lower to make it smaller (the largest term, for a sum of settings).
    setting_value
        That setting's value, for the message.
    reference : float
        A typical size (from the settings' defaults), to tell which factor is unusually large.
    power : int
        How often the factor appears (``dim x dim``: 2).
    """

    label: str
    value: int
    setting: str
    setting_value: object
    reference: float
    power: int = 1

    @property
    def growth(self) -> float:
        """How far above its typical size the factor is, to the power it appears with."""
        return (max(self.value, 1) / max(self.reference, 1)) ** self.power


@dataclass(frozen=True)
class Tensors:
    """A family of tensors a run holds at its peak: ``copies x prod(factors)`` values.

    Attributes
    ----------
    what : str
        What they are, for the message ("training samples").
    factors : tuple of Factor
    bytes_per_value : int
        8 for float64 and int64, 4 for float32, 1 for uint8.
    copies : float
        How many tensors of this shape live at once.
    on_device : bool
        On the run's device (``False``: always in host memory, like the image loops' images).
    """

    what: str
    factors: tuple[Factor, ...]
    bytes_per_value: int
    copies: float = 1.0
    on_device: bool = True

    @property
    def nbytes(self) -> float:
        """The estimate, in bytes."""
        values = math.prod(f.value**f.power for f in self.factors)
        return self.copies * self.bytes_per_value * values

    @property
    def formula(self) -> str:
        """``copies x factor x ... dtype``, as the message writes it."""
        dtype = {8: "float64", 4: "float32", 1: "uint8"}[self.bytes_per_value]
        terms = [f.label if f.power == 1 else f"{f.label}^{f.power}" for f in self.factors]
        copies = "" if self.copies == 1 else f"{self.copies:g} x "
        return f"{copies}{' x '.join(terms)} {dtype}"

    @property
    def driver(self) -> Factor:
        """The factor furthest above its typical size."""
        return max(self.factors, key=lambda f: f.growth)


def _defaults(cfg) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cfg)}


def _factor(cfg, name: str, power: int = 1) -> Factor:
    """The factor of setting ``name`` (a size whose default is ``None`` is compared with
    ``n_ini``'s default)."""
    reference = _defaults(cfg)[name]
    if not isinstance(reference, int) or isinstance(reference, bool):
        reference = _defaults(cfg)["n_ini"]
    value = getattr(cfg, name)
    return Factor(name, int(value), name, value, reference, power)


def _fixed(label: str, value: int, like: Factor) -> Factor:
    """A factor no setting changes (growth 1), blamed on ``like``'s setting."""
    return Factor(label, value, like.setting, like.setting_value, value)


def _largest(cfg, *names: str) -> str:
    """The setting among ``names`` furthest above its default."""
    return max(names, key=lambda name: _factor(cfg, name).growth)


def _training_size(cfg) -> Factor:
    """The largest training set: ``n_ini``, or ``n_real`` plus the synthetic part (which, for
    the accumulated pool, holds ``generations - 1`` generations' draws at the last one)."""
    if cfg.synthetic_source == "accumulate":
        synthetic = (cfg.generations - 1) * cfg.n_synthetic
        synthetic_label = "((generations - 1) x n_synthetic)"
        terms = ("generations", "n_synthetic")
    else:
        synthetic, synthetic_label, terms = cfg.n_synthetic, "n_synthetic", ("n_synthetic",)
    # the batched loops' mitigations: a fixed real set beside the fresh one, all real data kept
    real = cfg.n_real + (getattr(cfg, "n_fixed", 0) if cfg.family == "fresh_data" else 0)
    if cfg.family == "fresh_data" and getattr(cfg, "accumulate_real", False):
        real = cfg.n_ini + (cfg.generations - 1) * cfg.n_real
    size = real + synthetic
    if cfg.n_ini >= size:
        return _factor(cfg, "n_ini")
    label = f"(n_real + {synthetic_label})" if cfg.n_real else synthetic_label
    setting = "n_real" if cfg.n_real >= synthetic else _largest(cfg, *terms)
    reference = _defaults(cfg)["n_ini"]
    return Factor(label, size, setting, getattr(cfg, setting), reference)


def _kept_models(cfg) -> int:
    return cfg.memory if cfg.synthetic_source == "memory" else 1


def _per_model(cfg, extra: int) -> Factor:
    """``extra`` tensors plus one per kept model (``memory`` of them for the memory source)."""
    if cfg.synthetic_source == "memory":
        return Factor(f"(memory + {extra})", cfg.memory + extra, "memory", cfg.memory, extra + 1)
    return Factor(str(extra + 1), extra + 1, "memory", cfg.memory, extra + 1)


def loop_footprint(cfg) -> list[Tensors]:
    """The dominant tensors of a batched loop run (see the module docstring).

    Parameters
    ----------
    cfg : LoopConfig
        Resolved settings (sizes and ``n_eval`` filled in).

    Returns
    -------
    list of Tensors
    """
    seeds, dim, dim2 = _factor(cfg, "seeds"), _factor(cfg, "dim"), _factor(cfg, "dim", power=2)
    kept = _kept_models(cfg)
    if cfg.path == "statistics":
        # per seed and model: the scatter of each part, the Bartlett triangle and its product,
        # the Cholesky factor and the covariance of the fit
        return [Tensors("covariances", (_per_model(cfg, 8), seeds, dim2), _FLOAT64)]
    n = _training_size(cfg)
    # the synthetic part of a generation and the metrics' samples are drawn one after the other
    draw = _factor(cfg, "n_eval" if cfg.n_eval > cfg.n_synthetic else "n_synthetic")
    # the training set's parts, the joined set and a centred (or standardized) copy
    parts = [Tensors("training samples", (seeds, n, dim), _FLOAT64, 3)]
    if cfg.synthetic_source == "accumulate" and cfg.n_synthetic > 0:
        setting = _largest(cfg, "generations", "n_synthetic")
        pool = Factor(
            "generations x n_synthetic",
            cfg.generations * cfg.n_synthetic,
            setting,
            getattr(cfg, setting),
            _defaults(cfg)["n_ini"],
        )
        parts.append(Tensors("accumulated synthetic pool", (seeds, pool, dim), _FLOAT64))
    if kept > 1:  # one draw of every kept model, stacked, then the picked samples
        synthetic = _factor(cfg, "n_synthetic")
        draws = (_per_model(cfg, 1), seeds, synthetic, dim)
        parts.append(Tensors("synthetic draws", draws, _FLOAT64))
    parts.append(Tensors("sampled points", (seeds, draw, dim), _FLOAT64, 2))
    if cfg.curation in ("verify", "best_of"):  # the candidates of one curated draw
        rounds = cfg.candidates if cfg.curation == "best_of" else MAX_VERIFY_ROUNDS
        setting = "candidates" if cfg.curation == "best_of" else "n_synthetic"
        candidates = Factor(
            f"{rounds} x n_synthetic", rounds * cfg.n_synthetic, setting, getattr(cfg, setting), 1
        )
        parts.append(Tensors("curation candidates", (seeds, candidates, dim), _FLOAT64, 2))
    if set(cfg.metrics) & set(MANIFOLD_METRICS):
        # pairwise distances in blocks of 128 MiB, but at least one row per seed
        n_eval = _factor(cfg, "n_eval")
        parts.append(Tensors("k-NN distance blocks", (_fixed("2^24", 2**24, n_eval),), _FLOAT64, 2))
        parts.append(Tensors("k-NN distance rows", (seeds, n_eval), _FLOAT64, 2))
    if cfg.model == "gaussian":
        # every kept model's covariance, the fit's scatter, Cholesky factors, the W2 products
        parts.append(Tensors("covariances", (_per_model(cfg, 6), seeds, dim2), _FLOAT64))
    elif cfg.model == "mixture":
        parts += _mixture_footprint(cfg, seeds, n, dim2, draw)
    else:
        parts += _flow_footprint(cfg, seeds, n, dim)
    return parts


def _mixture_footprint(cfg, seeds, n, dim2, draw) -> list[Tensors]:
    components = _factor(cfg, "n_components")
    trials = _fixed("trials", 2 + int(math.log(cfg.n_components)), components)
    features = Factor("(dim^2 + dim + 1)", cfg.dim**2 + cfg.dim + 1, "dim", cfg.dim, 2**2 + 2 + 1)
    return [
        # [x x^T, x, 1] per sample in two layouts, and both again for the seeds still iterating
        Tensors("EM features", (seeds, n, features), _FLOAT64, 4),
        # the first assignment's distances and one-hot table, then the E-step's buffer
        Tensors("responsibilities", (seeds, n, components), _FLOAT64, 3),
        Tensors("k-means++ distances", (seeds, trials, n), _FLOAT32),
        # every kept model's covariances; Cholesky factors, precisions and coefficients of EM
        Tensors("component parameters", (_per_model(cfg, 4), seeds, components, dim2), _FLOAT64),
        # sampling takes each drawn component's Cholesky factor, one per sample
        Tensors("per-sample factors", (seeds, draw, dim2), _FLOAT64),
    ]


def _flow_footprint(cfg, seeds, n, dim) -> list[Tensors]:
    batch = _factor(cfg, "batch_size") if cfg.batch_size <= n.value else n
    layers, hidden_factor = _factor(cfg, "n_layers"), _factor(cfg, "hidden")
    hidden = _defaults(cfg)["hidden"]
    width = Factor(
        "(3 hidden + 8 dim)", 3 * cfg.hidden + 8 * cfg.dim, "hidden", cfg.hidden, 3 * hidden
    )
    weights = Factor(
        "(hidden^2 + 3 dim hidden)",
        cfg.hidden**2 + 3 * cfg.dim * cfg.hidden + 2 * cfg.hidden + 2 * cfg.dim,
        "hidden",
        cfg.hidden,
        hidden**2,
    )
    return [
        # the float32 standardized set and its shuffled copy (the float64 set is counted above)
        Tensors("standardized training samples", (seeds, n, dim), _FLOAT32, 2),
        Tensors("shuffle keys and order", (seeds, n), _INT64, 2),
        Tensors("training activations", (seeds, batch, layers, width), _FLOAT32),
        # weights, gradients, Adam's two moments, and every kept model's weights
        Tensors("network weights", (_per_model(cfg, 4), seeds, layers, weights), _FLOAT32),
        # log-densities and samples are evaluated in chunks of 2**22 hidden values (float64)
        Tensors("evaluation chunks", (_fixed("2^22", 2**22, hidden_factor),), _FLOAT64, 4),
    ]


def _ddpm_activations(channels, layers_per_block: int) -> tuple[float, float, int]:
    """Per pixel of the input: values a training step of the UNet keeps for its backward pass,
    values its sampling keeps alive, and its weights (rough counts, within a small factor)."""
    blocks = 3 * layers_per_block + 2  # down blocks, up blocks (one layer more), skips
    levels = list(enumerate(channels))
    training = sum(8 * c * blocks / 4**i for i, c in levels)  # ~8 saved maps per ResNet layer
    # the skip connections of the down path, and a few maps at full resolution, for the
    # conditional and the unconditional batch of classifier-free guidance
    sampling = 2 * (sum(c * (layers_per_block + 1) / 4**i for i, c in levels) + 3 * channels[0])
    weights = sum(18 * blocks * c * c for c in channels)  # two 3x3 convolutions per layer
    return training, sampling, weights


def image_loop_footprint(cfg) -> list[Tensors]:
    """The dominant tensors of an image loop run (see the module docstring).

    Parameters
    ----------
    cfg : ImageLoopConfig
        Resolved settings (``image_size``, the sizes, ``steps`` and ``n_eval`` filled in).

    Returns
    -------
    list of Tensors
    """
    native = _NATIVE_SIZE.get(cfg.dataset, cfg.image_size)
    # values per image: image_size^2 pixels of image_channels channels
    pixels = Factor(
        "image_channels x image_size^2",
        cfg.image_channels * cfg.image_size**2,
        "image_size",
        cfg.image_size,
        native * native,
    )
    n_images = _DATASET_IMAGES.get(cfg.dataset)
    if n_images is None:  # an image folder: at least the images the run draws
        n_images = cfg.held_out + cfg.real_images_needed
        real = Factor("(held_out + real images drawn)", n_images, "n_ini", cfg.n_ini, n_images)
    else:
        real = _fixed(f"{n_images} {cfg.dataset} images", n_images, pixels)
    n = _training_size(cfg)
    sampled = _factor(cfg, "n_eval" if cfg.n_eval > cfg.n_synthetic else "n_synthetic")
    synthetic = _factor(cfg, "n_synthetic")
    # an image folder's pixels stay bytes (madutils.loops.images), the other sets are floats
    stored = _UINT8 if cfg.dataset == "folder" else _FLOAT32
    if cfg.synthetic_source == "accumulate":
        kept = (_factor(cfg, "generations"), synthetic, pixels)
    elif cfg.synthetic_source == "memory":
        kept = (_factor(cfg, "memory"), synthetic, pixels)
    else:
        kept = (synthetic, pixels)
    parts = [
        # the loaded set and its training / held-out split
        Tensors("real images", (real, pixels), stored, 2, on_device=False),
        Tensors("training images", (n, pixels), stored, 2, on_device=False),
        # the model's float output, then its 8-bit rounding
        Tensors("sampled images", (sampled, pixels), _FLOAT32, on_device=False),
        Tensors("rounded samples", (sampled, pixels), _UINT8, on_device=False),
        Tensors("kept synthetic images", kept, _UINT8, on_device=False),
    ]
    if cfg.curation == "best_of":  # every candidate of every kept image, then the choice
        parts.append(
            Tensors(
                "best-of candidates",
                (_factor(cfg, "candidates"), synthetic, pixels),
                _UINT8,
                on_device=False,
            )
        )
    if cfg.model != "ddpm":  # the GANs move their training set to the device once
        parts.append(Tensors("training images on the device", (n, pixels), stored))
    if cfg.image_size != native:
        original = _fixed(f"{native}^2 pixels", native * native, pixels)
        parts.append(
            Tensors("real images before resizing", (real, original), _FLOAT32, on_device=False)
        )
    defaults = _defaults(cfg)
    if cfg.model == "stylegan2":
        return parts + _stylegan2_footprint(cfg)
    if cfg.model == "ddpm":
        training, sampling, weights = _ddpm_activations(cfg.channels, cfg.layers_per_block)
        typical, _, _ = _ddpm_activations(defaults["channels"], defaults["layers_per_block"])
        width = ("channels", cfg.channels)
        copies = 5 if cfg.ema_decay > 0 else 4  # weights, gradients, Adam's moments, EMA
    else:
        # generator maps at every resolution, the critic's on real, fake and interpolated
        # batches with the gradient penalty's double backward
        training, sampling, typical = 12 * cfg.width, 3 * cfg.width, 12 * defaults["width"]
        base = (cfg.image_size // 4) ** 2
        weights = 64 * cfg.width**2 + 2 * cfg.width * base * (cfg.latent_dim + 1)
        width = ("width", cfg.width)
        copies = 4  # weights, gradients, Adam's moments
    per_pixel = Factor("activations per pixel", math.ceil(training), *width, typical)
    batch = _factor(cfg, "batch_size")
    sample_batch = _fixed(f"{_SAMPLE_BATCH[cfg.model]} images", _SAMPLE_BATCH[cfg.model], pixels)
    sample_per_pixel = Factor("activations per pixel", math.ceil(sampling), *width, typical)
    parts += [
        Tensors("training activations", (batch, pixels, per_pixel), _FLOAT32),
        Tensors("sampling activations", (sample_batch, pixels, sample_per_pixel), _FLOAT32),
        Tensors("network weights", (Factor("weights", weights, *width, 1),), _FLOAT32, copies),
    ]
    return parts


def _stylegan2_channel_pixels(cfg) -> tuple[int, int]:
    """Sum and maximum over the networks' resolutions of ``channels x resolution^2``: the
    values of one image's feature maps at every resolution, and at the largest."""
    from madutils.models.stylegan2 import _widths

    widths = _widths(cfg.image_size, cfg.width, cfg.max_width)
    sizes = [r for r in widths if r <= cfg.image_size]
    per_resolution = [widths[r] * r * r for r in sizes]
    return sum(per_resolution), max(per_resolution)


def _stylegan2_weights(cfg) -> int:
    """Parameters of the generator and the discriminator, counted on the ``meta`` device."""
    import torch

    from madutils.models.base import settings_for
    from madutils.models.stylegan2 import StyleGAN2

    model = StyleGAN2(**settings_for(StyleGAN2, cfg))
    with torch.device("meta"):
        networks = model._build_networks()
    return sum(p.numel() for network in networks for p in network.parameters())


def _stylegan2_footprint(cfg) -> list[Tensors]:
    total, largest = _stylegan2_channel_pixels(cfg)
    defaults = dataclasses.replace(
        cfg, width=_defaults(cfg)["width"], max_width=_defaults(cfg)["max_width"]
    )
    typical_total, typical_largest = _stylegan2_channel_pixels(defaults)
    # per image, about six saved maps per modulated convolution of the generator (two per
    # resolution) and four per convolution of the discriminator, which sees the real and the
    # fake batch and differentiates twice for R1: about 28 maps of every resolution
    training = Factor(
        "28 x feature-map values per image", 28 * total, "width", cfg.width, 28 * typical_total
    )
    # sampling keeps a few maps of one resolution at a time
    sampling = Factor(
        "3 x largest feature map per image", 3 * largest, "width", cfg.width, 3 * typical_largest
    )
    weights = Factor("weights", _stylegan2_weights(cfg), "width", cfg.width, 1)
    sample_batch = Factor(
        "256 images", _SAMPLE_BATCH["stylegan2"], "width", cfg.width, _SAMPLE_BATCH["stylegan2"]
    )
    return [
        Tensors("training activations", (_factor(cfg, "batch_size"), training), _FLOAT32),
        Tensors("sampling activations", (sample_batch, sampling), _FLOAT32),
        # weights, gradients and Adam's two moments of both networks, the generator's average
        Tensors("network weights", (weights,), _FLOAT32, 5),
    ]


# ----------------------------------------------------------------------------- memory available


def _host_memory() -> tuple[int, str] | None:
    meminfo = Path("/proc/meminfo")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "host memory (MemAvailable)"
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available), "host memory (available)"


def available_memory(device: str) -> tuple[int, str] | None:
    """The bytes free for a run on ``device`` and where they are; ``None`` when unknown.

    Parameters
    ----------
    device : str
        ``"cpu"`` (host memory: ``MemAvailable`` of ``/proc/meminfo``, else
        :mod:`psutil`'s available memory) or ``"cuda"`` / ``"cuda:N"`` (the GPU's free
        memory, plus what this process's caching allocator holds unused).

    Returns
    -------
    (int, str) or None
    """
    if not device.startswith("cuda"):
        return _host_memory()
    import torch

    if not torch.cuda.is_available():
        return None
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    free, _ = torch.cuda.mem_get_info(index)
    free += torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    return int(free), f"free memory of {torch.cuda.get_device_name(index)}"


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def check_footprint(parts: list[Tensors], device: str) -> None:
    """Refuse a run whose tensors (:func:`loop_footprint`, :func:`image_loop_footprint`) do
    not fit in the memory available (:func:`available_memory`).

    The tensors on the device are compared with the device's memory, the others with the
    host's (on ``device="cpu"`` all of them with the host's). Skipped where the memory
    available is unknown, and when the environment variable :data:`SKIP_VARIABLE`
    (``MADUTILS_SKIP_MEMORY_CHECK``) is set to anything but ``""`` or ``"0"``. Arithmetic and
    one read of ``/proc/meminfo``: it allocates nothing.

    Raises
    ------
    ValueError
        Naming the setting that drives the largest part of the estimate, the estimate and
        the memory available, e.g. ``seeds=100000000 needs about 480 GB of memory, 480 GB of
        it for the training samples (3 x seeds x n_ini x dim float64); 21 GB are available
        (host memory (MemAvailable)): lower seeds``.
    """
    if os.environ.get(SKIP_VARIABLE, "") not in ("", "0"):
        return
    if device.startswith("cuda"):
        groups = {
            device: [p for p in parts if p.on_device],
            "cpu": [p for p in parts if not p.on_device],
        }
    else:
        groups = {"cpu": list(parts)}
    for where, group in groups.items():
        if not group:
            continue
        total = sum(p.nbytes for p in group)
        available = available_memory(where)
        if available is None or total <= available[0]:
            continue
        largest = max(group, key=lambda p: p.nbytes)
        driver = largest.driver
        raise ValueError(
            f"{driver.setting}={driver.setting_value!r} needs about {_size(total)} of memory, "
            f"{_size(largest.nbytes)} of it for the {largest.what} ({largest.formula}); "
            f"{_size(available[0])} are available ({available[1]}): lower {driver.setting} "
            f"(or set {SKIP_VARIABLE}=1 to skip this check)"
        )
