"""The class-conditional DDPM of the paper's MNIST experiments, with classifier-free guidance.

Alemohammad et al. (2024) train a class-conditional denoising diffusion model (T = 500 steps,
10% condition dropout) on MNIST and bias its sampling with classifier-free guidance of weight
``w``; the sampling bias is ``lam = 1 / (1 + w)``, so ``lam = 1`` is plain conditional sampling
(``w = 0``) and smaller ``lam`` means stronger guidance: higher quality, less diversity.

Following diffusers, the pieces are kept apart:

- the network is a diffusers ``UNet2DModel`` with ``n_classes + 1`` class embeddings, the last
  one (index ``n_classes``) being the "null" class used for condition dropout and for the
  unconditional branch of guidance;
- the noise schedule is a diffusers ``DDPMScheduler`` (or, built from the same config for fast
  sampling, a ``DDIMScheduler`` or DPM-Solver++'s ``DPMSolverMultistepScheduler``);
- :func:`guided_noise` is the guided noise prediction, and :meth:`ConditionalDDPM.sample` writes
  the denoising loop out explicitly.

Protocol (:mod:`madutils.models.base`, shared with every model of the package): settings in
``__init__`` (the sampler and its number of steps included), ``fit(X, y, *, rng) -> self`` with
``y`` the class labels, ``sample(n, lam, *, rng, labels=None)``, learned state in attributes with
a trailing underscore, and :meth:`ConditionalDDPM.clone` for an unfitted copy for the next
generation. Unlike the toy models of :mod:`madutils.models`, it is not batched over seeds: one
model per replicate. Saving, the device handling and the seeded initialisation live in
:class:`~madutils.models.base.ImageModel`.

What this module is not about: data loading (:mod:`madutils.data.images`), features and metrics
(:mod:`madutils.metrics.features`, :mod:`madutils.metrics`) or the self-consuming loops.

Global state: :meth:`ConditionalDDPM.fit` draws one training seed from its ``rng``
(``int(torch.randint(2**31 - 1, (1,), generator=rng))``, kept as ``training_seed_``); the random
initialisation runs inside ``torch.random.fork_rng`` seeded with it, so the caller's global torch
random state is left as it was, and batches, noise, timesteps and condition dropout draw from a
private ``torch.Generator`` seeded with it. Sampling draws only from the ``rng`` the caller
passes. The number of torch threads is left to the caller.
"""

from __future__ import annotations

import contextlib
import functools
from numbers import Real

import torch
import torch.nn.functional as F
from tqdm import tqdm

from madutils._image_checks import check_labels as _check_labels
from madutils._image_checks import unit_float
from madutils._validation import check_choice, check_lam, check_positive_int
from madutils.models.base import ImageModel

__all__ = [
    "MIXED_PRECISION",
    "SAMPLERS",
    "SAMPLER_NAMES",
    "ConditionalDDPM",
    "default_steps",
    "guided_noise",
]

#: How :meth:`ConditionalDDPM.sample` denoises: ancestral DDPM sampling, deterministic DDIM
#: (eta = 0), DPM-Solver++ (multistep, second order; Lu et al. 2022), which solves the
#: probability-flow ODE, or its stochastic variant SDE-DPM-Solver++, which solves the reverse
#: SDE as ancestral sampling does.
SAMPLERS = ("ddpm", "ddim", "dpm_solver", "dpm_solver_sde")
#: How a page names each sampler.
SAMPLER_NAMES = {
    "ddpm": "ancestral DDPM sampling",
    "ddim": "deterministic DDIM sampling",
    "dpm_solver": "DPM-Solver++ (second order)",
    "dpm_solver_sde": "SDE-DPM-Solver++ (stochastic, second order)",
}
MIXED_PRECISION = ("auto", "bf16", "no")
#: diffusers' ``algorithm_type`` of the two DPM-Solver++ samplers.
_DPM_SOLVER_ALGORITHMS = {"dpm_solver": "dpmsolver++", "dpm_solver_sde": "sde-dpmsolver++"}
#: Denoising steps of each sampler when ``steps`` is None (at most ``timesteps``); None: all.
DEFAULT_STEPS = {"ddpm": None, "ddim": 50, "dpm_solver": 20, "dpm_solver_sde": 20}


def default_steps(sampler: str, timesteps: int) -> int:
    """The denoising steps ``sampler`` takes when ``steps`` is not given (:data:`DEFAULT_STEPS`).

    Parameters
    ----------
    sampler : {"ddpm", "ddim", "dpm_solver", "dpm_solver_sde"}
    timesteps : int
        Diffusion steps T.

    Returns
    -------
    int
    """
    check_choice(sampler, "sampler", SAMPLERS)
    steps = DEFAULT_STEPS[sampler]
    return timesteps if steps is None else min(steps, timesteps)


# ---------------------------------------------------------------------------------------------
# Guidance
# ---------------------------------------------------------------------------------------------


def guided_noise(
    model, x: torch.Tensor, t: torch.Tensor | int, labels: torch.Tensor, lam: float
) -> torch.Tensor:
    """Classifier-free guided noise prediction.

    Parameters
    ----------
    model : diffusers.UNet2DModel
        A class-conditional UNet whose last class embedding (``num_class_embeds - 1``) is the
        null (unconditional) class.
    x : torch.Tensor, shape (N, C, H, W)
        Noisy images at timestep ``t``.
    t : torch.Tensor or int
        Timestep(s).
    labels : torch.Tensor, shape (N,)
        Class labels, int64.
    lam : float in (0, 1]
        Sampling bias ``lam = 1 / (1 + w)`` for guidance weight ``w``: 1 = plain conditional
        sampling (the unconditional pass is skipped), smaller = stronger guidance, higher
        quality, less diversity.

    Returns
    -------
    torch.Tensor, shape (N, C, H, W)
        ``eps_cond + w (eps_cond - eps_uncond)`` with ``w = 1 / lam - 1``.
    """
    lam = check_lam(lam)
    if lam == 1.0:
        return model(x, t, class_labels=labels).sample
    w = 1.0 / lam - 1.0
    null = torch.full_like(labels, model.config.num_class_embeds - 1)
    if isinstance(t, torch.Tensor) and t.ndim > 0:
        t = torch.cat([t, t])
    eps = model(torch.cat([x, x]), t, class_labels=torch.cat([labels, null])).sample
    eps_cond, eps_uncond = eps.chunk(2)
    return eps_cond + w * (eps_cond - eps_uncond)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@functools.cache
def _cpu_has_amx_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def _use_bf16(mixed_precision: str, device: torch.device) -> bool:
    if mixed_precision == "no":
        return False
    if mixed_precision == "bf16":
        return True  # asked for explicitly: honour it even where it is slow
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return _cpu_has_amx_bf16()


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _check_channels(channels) -> tuple[int, ...]:
    try:
        channels = tuple(channels)
    except TypeError:
        raise ValueError(
            f"channels must be a sequence of positive integers (block_out_channels); "
            f"got {channels!r}"
        ) from None
    if not channels:
        raise ValueError("channels must hold at least one positive integer; got ()")
    return tuple(check_positive_int(c, "channels entries") for c in channels)


def _norm_groups(channels: tuple[int, ...]) -> int:
    """Largest group count <= 32 that divides every block's channel count."""
    for groups in (32, 16, 8, 4, 2, 1):
        if all(c % groups == 0 for c in channels):
            return groups
    return 1


def check_unet_image_size(value, channels) -> int:
    """Check that the UNet with ``channels`` (one entry per level) can take ``value`` pixels."""
    value = check_positive_int(value, "image_size")
    factor = 2 ** (len(channels) - 1)
    if value % factor:
        raise ValueError(
            f"image_size must be divisible by 2**(len(channels) - 1) = {factor} (the UNet halves "
            f"the image {len(channels) - 1} times); got {value}"
        )
    return value


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class ConditionalDDPM(ImageModel):
    """Class-conditional DDPM with classifier-free guidance (one model, not batched over seeds).

    Parameters
    ----------
    image_size : int, default 28
        Height and width of the (square, one-channel) images; must be divisible by
        ``2 ** (len(channels) - 1)``.
    n_classes : int, default 10
        Number of classes; class index ``n_classes`` is the null (unconditional) class.
    channels : tuple of int, default (32, 64, 64)
        ``block_out_channels`` of the UNet, one entry per resolution level.
    layers_per_block : int, default 1
        ResNet layers per UNet block.
    timesteps : int, default 500
        Diffusion steps T (the paper uses 500; tests use fewer for speed).
    cond_dropout : float in [0, 1), default 0.1
        Probability that a training label is replaced by the null class.
    sampler : {"ddpm", "ddim", "dpm_solver", "dpm_solver_sde"}, default "ddpm"
        How :meth:`sample` denoises: ancestral DDPM sampling, deterministic DDIM (eta = 0),
        DPM-Solver++ or SDE-DPM-Solver++ (diffusers' ``DPMSolverMultistepScheduler``, second
        order, ``algorithm_type`` ``"dpmsolver++"`` or ``"sde-dpmsolver++"``).
    steps : int, optional
        Denoising steps of :meth:`sample`, at most ``timesteps``; None: ``timesteps`` for
        DDPM, ``min(50, timesteps)`` for DDIM, ``min(20, timesteps)`` for both DPM-Solver++
        (see :attr:`sample_steps`).
    epochs : int, default 20
        Passes over the training images in :meth:`fit`.
    batch_size : int, default 128
        Training batch size.
    lr : float, default 1e-3
        AdamW learning rate.
    ema_decay : float in [0, 1), default 0.0
        Decay of an exponential moving average of the weights, updated after every optimizer
        step; the averaged weights become the fitted model. 0 keeps the last weights. Short
        trainings sample cleaner images with a decay of about 0.99.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train and sample.
    mixed_precision : {"auto", "bf16", "no"}, default "auto"
        ``"auto"``: bf16 autocast on CUDA devices that support it and on CPUs with AMX
        (``amx_bf16`` in ``/proc/cpuinfo``), float32 elsewhere.
    warm_start : bool, default False
        If True and the model is already fitted, :meth:`fit` continues training from the
        current weights (fine-tuning) instead of starting from a fresh initialisation.
    progress : bool, default True
        Show tqdm progress bars: over epochs while training, over denoising steps while
        sampling.

    Attributes
    ----------
    model_ : diffusers.UNet2DModel
        The trained network, in eval mode, on ``device_``.
    device_ : torch.device
        The resolved device.
    loss_history_ : list of float
        Mean training loss of each epoch (of all calls to :meth:`fit` since the last fresh
        start).
    training_seed_ : int
        The seed the last :meth:`fit` drew from its ``rng``.
    """

    #: The model is class-conditional: it samples one image per label.
    conditional = True
    _networks = ("model_",)
    _histories = ("loss_history_",)
    _renamed_params = {"num_train_timesteps": "timesteps"}

    def __init__(
        self,
        image_size: int = 28,
        n_classes: int = 10,
        channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        timesteps: int = 500,
        cond_dropout: float = 0.1,
        sampler: str = "ddpm",
        steps: int | None = None,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        ema_decay: float = 0.0,
        device: str = "auto",
        mixed_precision: str = "auto",
        warm_start: bool = False,
        progress: bool = True,
    ):
        self.n_classes = n_classes
        self.channels = channels
        self.layers_per_block = layers_per_block
        self.timesteps = timesteps
        self.cond_dropout = cond_dropout
        self.sampler = sampler
        self.steps = steps
        self.ema_decay = ema_decay
        self.mixed_precision = mixed_precision
        self.warm_start = warm_start
        super().__init__(image_size, epochs, batch_size, lr, device, progress)

    # -- settings ------------------------------------------------------------------------------

    @property
    def sample_steps(self) -> int:
        """Denoising steps of :meth:`sample`: ``steps``, or its default for ``sampler``."""
        if self.steps is not None:
            return int(self.steps)
        return default_steps(self.sampler, self.timesteps)

    def _check_settings(self) -> None:
        channels = _check_channels(self.channels)
        check_unet_image_size(self.image_size, channels)
        check_positive_int(self.n_classes, "n_classes")
        check_positive_int(self.layers_per_block, "layers_per_block")
        check_positive_int(self.timesteps, "timesteps")
        c = self.cond_dropout
        if isinstance(c, bool) or not isinstance(c, Real) or not 0.0 <= c < 1.0:
            raise ValueError(f"cond_dropout must be a number in [0, 1); got {c!r}")
        e = self.ema_decay
        if isinstance(e, bool) or not isinstance(e, Real) or not 0.0 <= e < 1.0:
            raise ValueError(f"ema_decay must be a number in [0, 1); got {e!r}")
        check_choice(self.sampler, "sampler", SAMPLERS)
        if self.steps is not None:
            steps = check_positive_int(self.steps, "steps")
            if steps > self.timesteps:
                raise ValueError(
                    f"steps must be at most timesteps = {self.timesteps} (or None); got {steps}"
                )
        check_choice(self.mixed_precision, "mixed_precision", MIXED_PRECISION)
        if not isinstance(self.warm_start, bool):
            raise ValueError(f"warm_start must be True or False; got {self.warm_start!r}")

    # -- pieces --------------------------------------------------------------------------------

    def build_unet(self):
        """Return a freshly initialised ``UNet2DModel`` for these settings (global RNG)."""
        from diffusers import UNet2DModel

        channels = _check_channels(self.channels)
        n_levels = len(channels)
        # Plain ResNet blocks at the high resolutions, self-attention at the lowest one
        # (7x7 for 28x28 images with three levels).
        down = ("DownBlock2D",) * (n_levels - 1) + ("AttnDownBlock2D",)
        up = ("AttnUpBlock2D",) + ("UpBlock2D",) * (n_levels - 1)
        return UNet2DModel(
            sample_size=self.image_size,
            in_channels=1,
            out_channels=1,
            block_out_channels=channels,
            layers_per_block=self.layers_per_block,
            down_block_types=down,
            up_block_types=up,
            norm_num_groups=_norm_groups(channels),
            attention_head_dim=min(8, channels[-1]),
            num_class_embeds=self.n_classes + 1,  # last index: the null class
        )

    def _build_networks(self) -> tuple:
        return (self.build_unet(),)

    def scheduler(self, sampler: str | None = None):
        """Return the noise scheduler for ``sampler`` (default: the ``sampler`` setting).

        Parameters
        ----------
        sampler : {"ddpm", "ddim", "dpm_solver", "dpm_solver_sde"}, optional
            ``"ddpm"``: a ``DDPMScheduler`` with ``timesteps`` steps; ``"ddim"``: a
            ``DDIMScheduler`` from its config; ``"dpm_solver"`` / ``"dpm_solver_sde"``: a
            ``DPMSolverMultistepScheduler`` from its config (DPM-Solver++ / SDE-DPM-Solver++,
            second order).

        Returns
        -------
        diffusers.DDPMScheduler, diffusers.DDIMScheduler or diffusers.DPMSolverMultistepScheduler
        """
        from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

        sampler = self.sampler if sampler is None else sampler
        check_choice(sampler, "sampler", SAMPLERS)
        ddpm = DDPMScheduler(num_train_timesteps=self.timesteps)
        if sampler == "ddim":
            return DDIMScheduler.from_config(ddpm.config)
        if sampler in _DPM_SOLVER_ALGORITHMS:
            return DPMSolverMultistepScheduler.from_config(
                ddpm.config, algorithm_type=_DPM_SOLVER_ALGORITHMS[sampler], solver_order=2
            )
        return ddpm

    def balanced_labels(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """Return ``n`` class labels as balanced as possible, in random order.

        Parameters
        ----------
        n : int
            Number of labels.
        rng : torch.Generator
            Draws the order (one ``torch.randperm`` on its device).

        Returns
        -------
        torch.Tensor, shape (n,), int64, on the CPU
            ``(arange(n) % n_classes)`` permuted.
        """
        order = torch.randperm(n, generator=rng, device=rng.device).cpu()
        return (torch.arange(n) % self.n_classes)[order]

    # -- training ------------------------------------------------------------------------------
    # ``fit(X, y, *, rng)`` (ImageModel.fit) checks X, checks y here, draws the training seed
    # from rng and calls _train: epsilon-prediction MSE loss on images scaled to [-1, 1], each
    # label replaced by the null class with probability cond_dropout.

    def _check_y(self, y, n_images: int) -> torch.Tensor:
        if y is None:
            raise ValueError(
                "y must hold the class label of every image of X (ConditionalDDPM is "
                "class-conditional); got None"
            )
        return _check_labels(y, "y", n_images, self.n_classes)

    def _train(self, images, labels, seed, device):
        bf16 = _use_bf16(self.mixed_precision, device)
        if self.warm_start and self.is_fitted:
            model = self.model_.to(device)
            history = list(self.loss_history_)
        else:
            (model,) = self._initial_networks(seed)
            model = model.to(device)
            history = []

        scheduler = self.scheduler("ddpm")
        gen = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.lr)
        x_all = images  # float32 or uint8 pixels, converted batch by batch
        n = x_all.shape[0]
        null = self.n_classes

        average = None
        if self.ema_decay > 0:
            average = [p.detach().clone() for p in model.parameters()]
        model.train()
        epochs = tqdm(range(self.epochs), desc="DDPM", disable=not self.progress)
        for _ in epochs:
            order = torch.randperm(n, generator=gen)
            total, count = 0.0, 0
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                x0, y = unit_float(x_all[idx]) * 2.0 - 1.0, labels[idx]
                noise = torch.randn(x0.shape, generator=gen)
                t = torch.randint(0, self.timesteps, (x0.shape[0],), generator=gen)
                drop = torch.rand(x0.shape[0], generator=gen) < self.cond_dropout
                y = torch.where(drop, torch.full_like(y, null), y)
                x0, y, noise, t = x0.to(device), y.to(device), noise.to(device), t.to(device)
                noisy = scheduler.add_noise(x0, noise, t)
                with _autocast(device, bf16):
                    pred = model(noisy, t, class_labels=y).sample
                loss = F.mse_loss(pred.float(), noise)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if average is not None:
                    torch._foreach_lerp_(average, list(model.parameters()), 1.0 - self.ema_decay)
                total += float(loss.detach()) * x0.shape[0]
                count += x0.shape[0]
            history.append(total / count)
            epochs.set_postfix(loss=f"{history[-1]:.4f}")

        if average is not None:
            with torch.no_grad():
                for parameter, value in zip(model.parameters(), average, strict=True):
                    parameter.copy_(value)
        return (model,), (history,)

    # -- sampling ------------------------------------------------------------------------------
    # ``sample(n, lam, *, rng, labels=None, batch_size=256)`` (ImageModel.sample): one image per
    # label with the sampler and steps settings; without labels, balanced ones are drawn from
    # rng before any noise. lam = 1 / (1 + w) for guidance weight w (guided_noise).

    def _sampling_labels(self, n: int, labels, rng: torch.Generator) -> torch.Tensor:
        if labels is None:
            return self.balanced_labels(n, rng)
        return _check_sampling_labels(labels, n, self.n_classes)

    def _generate(self, n, lam, rng, labels, batch_size):
        device = self.device_
        bf16 = _use_bf16(self.mixed_precision, device)
        model = self.model_
        scheduler = self.scheduler()
        shape = (1, self.image_size, self.image_size)
        out = []
        n_batches = -(-n // batch_size)
        bar = tqdm(
            total=n_batches * self.sample_steps,
            desc="sampling",
            unit="step",
            disable=not self.progress,
            leave=False,
        )
        for start in range(0, n, batch_size):
            y = labels[start : start + batch_size]
            x = torch.randn((y.shape[0], *shape), generator=rng, device=rng.device)
            x, y = x.to(device), y.to(device)
            # per batch: a multistep solver keeps the model outputs of its last steps
            scheduler.set_timesteps(self.sample_steps, device=device)
            for t in scheduler.timesteps:
                with _autocast(device, bf16):
                    eps = guided_noise(model, x, t, y, lam)
                x = scheduler.step(eps.float(), t, x, generator=rng).prev_sample
                bar.update()
            out.append(((x + 1.0) / 2.0).clamp(0.0, 1.0).float().cpu())
        bar.close()
        return torch.cat(out)


def _check_sampling_labels(labels, n: int, n_classes: int) -> torch.Tensor:
    """``labels`` as int64 after checking that it holds ``n`` classes in [0, n_classes)."""
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"labels must have shape (n,), one class per image; got shape {tuple(labels.shape)}"
        )
    if labels.shape[0] != n:
        raise ValueError(
            f"n must equal len(labels) (one image per label); got n={n} and "
            f"{labels.shape[0]} labels"
        )
    return _check_labels(labels, "labels", n, n_classes)
