"""A compact unconditional StyleGAN2 (Karras et al., 2020) for small square images.

The paper (Alemohammad et al., 2024) trains StyleGAN2 in its self-consuming loops on FFHQ;
this module is a small, readable re-implementation of the StyleGAN2 architecture and objective
("Analyzing and Improving the Image Quality of StyleGAN", config F), written for this package
on plain PyTorch (no custom CUDA ops):

- mapping network: ``z ~ N(0, I)`` is pixel-normalised, then ``mapping_layers`` dense layers
  with leaky ReLU map it to ``w`` (learning rate of the mapping scaled by ``mapping_lr_mult``);
- synthesis network: a learned constant 4x4 input, then per resolution two 3x3 *modulated*
  convolutions with weight demodulation (:func:`modulated_conv2d`), each followed by per-pixel
  noise with a learned per-channel strength, a bias and leaky ReLU (gain sqrt(2)); "skip"
  outputs: a toRGB layer (modulated 1x1, no demodulation) per resolution whose images are
  upsampled and summed. Feature maps and images are upsampled bilinearly (StyleGAN2 uses a
  transposed convolution and a [1, 3, 3, 1] blur; bilinear interpolation is the simple
  low-pass near-equivalent, and needs no custom op);
- discriminator: "residual" architecture, fromRGB, per resolution two 3x3 convolutions and a
  2x2 average-pool downsample with a 1x1 residual skip, the sum scaled by 1/sqrt(2); then the
  minibatch standard-deviation layer (:func:`minibatch_stddev`), a 3x3 convolution and two
  dense layers to one score;
- every weight uses the equalised learning rate (weights drawn from N(0, 1), scaled at run
  time by ``1 / sqrt(fan_in)``);
- loss: the non-saturating logistic loss, ``softplus(-D(G(z)))`` for the generator and
  ``softplus(D(G(z))) + softplus(-D(x))`` for the discriminator, and the R1 penalty
  ``r1_gamma / 2 * ||grad_x D(x)||^2`` on real images (:func:`r1_penalty`), applied lazily:
  every ``r1_every`` discriminator steps, multiplied by ``r1_every`` (the lazy-regularisation
  scaling), added to that step's loss; optional style mixing with probability
  ``style_mixing``, and optional path-length regularisation (weight ``path_length``, 0 = off):
  every ``pl_every`` generator steps, on half a batch, ``(|J_w^T y| - a)^2`` with
  ``y ~ N(0, I) / sqrt(H W)`` image-shaped and ``a`` the running mean of the lengths (decay
  0.01), times ``pl_every`` (:func:`path_lengths`). Adam with betas (0, 0.99), as StyleGAN2;
  one discriminator step, then one generator step, per batch of real images;
- the generator that samples is StyleGAN2's ``G_ema``: after every generator step a moving
  average of the trained generator's weights takes a step towards them, with a half-life of
  ``ema_images`` images shown (StyleGAN2: 10,000), capped by StyleGAN2-ADA's ramp-up at
  ``ema_rampup`` times the images shown so far (ADA: 0.05), so that short trainings average
  only their recent weights; its buffers (``w_avg``, ``pl_mean``) are the trained
  generator's. ``ema_images = 0`` samples from the trained generator itself.

Images: the data in [0, 1] are trained on as ``2 x - 1``; the generator's output, unbounded as
in StyleGAN2 (no tanh), is mapped back by ``(y + 1) / 2`` and clamped to [0, 1].

Sampling bias: :meth:`StyleGAN2.sample` uses the truncation trick in W space,
``w' = w_avg + lam (w - w_avg)`` (:func:`truncate`), with ``w_avg`` the running mean of the
mapping outputs kept during training (decay ``w_avg_beta``, StyleGAN2's ``w_avg``), a buffer
of the generator saved and loaded with it; ``lam = 1`` is plain sampling.

:class:`StyleGAN2` follows the protocol of :mod:`madutils.models.base`, like
:class:`~madutils.models.wgan.WGANGP`: settings in ``__init__``, ``fit(X, y=None, *, rng) ->
self``, ``sample(n, lam, *, rng)``, saving and the seeded initialisation in
:class:`~madutils.models.base.ImageModel`. It is unconditional (``conditional = False``).
Its images have ``image_channels`` channels (1 or 3), so :meth:`StyleGAN2.fit` checks them
itself. (The setting is not called ``channels``: in the image loops' settings that name is the
DDPM's channel schedule.)

Global state: :meth:`StyleGAN2.fit` draws one training seed from its ``rng`` (kept as
``training_seed_``); the initialisation runs inside ``torch.random.fork_rng`` seeded with it,
and batches, latents, noise inputs and mixing draws come from a private ``torch.Generator``
seeded with it, so the caller's global torch random state is left as it was. Sampling draws
latents and noise inputs only from the ``rng`` the caller passes.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from madutils._image_checks import (
    check_images,
    check_power_of_two_size,
    resolve_device,
    unit_float,
)
from madutils._validation import (
    check_decay,
    check_nonnegative_int,
    check_positive_int,
    check_positive_number,
    check_probability,
)
from madutils.models.base import ImageModel, draw_training_seed

__all__ = [
    "StyleGAN2",
    "minibatch_stddev",
    "modulated_conv2d",
    "path_lengths",
    "r1_penalty",
    "truncate",
]

_ADAM_BETAS = (0.0, 0.99)  # StyleGAN2
_SLOPE = 0.2  # leaky ReLU slope
_ACT_GAIN = math.sqrt(2.0)  # keeps the leaky ReLU's output at about unit variance
_PL_DECAY = 0.01  # StyleGAN2: decay of the running mean of the path lengths


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


def truncate(w: torch.Tensor, w_avg: torch.Tensor, lam: float) -> torch.Tensor:
    """The truncation trick in W space: ``w_avg + lam (w - w_avg)``.

    Parameters
    ----------
    w : torch.Tensor, shape (..., w_dim)
    w_avg : torch.Tensor, shape (w_dim,)
    lam : float in (0, 1]
        1 returns ``w`` itself (unchanged, exactly); towards 0 the result tends to ``w_avg``.

    Returns
    -------
    torch.Tensor, the shape of ``w``.
    """
    if lam == 1.0:
        return w
    return w_avg + lam * (w - w_avg)


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True
) -> torch.Tensor:
    """StyleGAN2's modulated convolution, one grouped convolution for the whole batch.

    The weight is scaled per sample and input channel, ``w'_ijk = s_i w_ijk``; with
    ``demodulate`` each output channel's weight is then divided by its norm,
    ``w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + 1e-8)``, so that unit-variance inputs give
    unit-variance outputs. Padding keeps the size ("same").

    Parameters
    ----------
    x : torch.Tensor, shape (N, C_in, H, W)
    weight : torch.Tensor, shape (C_out, C_in, k, k), k odd
    styles : torch.Tensor, shape (N, C_in)
    demodulate : bool, default True

    Returns
    -------
    torch.Tensor, shape (N, C_out, H, W)
    """
    n, c_in, h, wd = x.shape
    c_out, _, k, _ = weight.shape
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]  # (N, C_out, C_in, k, k)
    if demodulate:
        w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    out = F.conv2d(
        x.reshape(1, n * c_in, h, wd), w.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n
    )
    return out.reshape(n, c_out, h, wd)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the minibatch standard deviation as one more feature map.

    The batch is split into consecutive groups of ``group_size`` samples; a remainder
    smaller than ``group_size`` joins the last group (so any batch size works; a batch
    smaller than ``group_size`` is one group). Per group, the standard deviation of each
    feature over the group's samples is averaged over channels and pixels, and the scalar is
    appended as a constant map to every sample of the group.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C, H, W)
    group_size : int, default 4

    Returns
    -------
    torch.Tensor, shape (N, C + 1, H, W)
    """
    n = x.shape[0]
    groups = max(n // group_size, 1)
    sizes = [group_size] * (groups - 1) + [n - group_size * (groups - 1)]
    stats = []
    for chunk in torch.split(x, sizes):
        std = (chunk.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        stats.append(std.expand(chunk.shape[0], 1, *x.shape[2:]))
    return torch.cat([x, torch.cat(stats)], dim=1)


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1: mean over the batch of ``||grad_x sum D(x)||^2`` per image, at the real images.

    Built with ``create_graph=True`` so that it can be differentiated for the weights.
    """
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def path_lengths(generator: nn.Module, ws: torch.Tensor, noise, y: torch.Tensor) -> torch.Tensor:
    """Per image, ``|J_w^T y|`` with ``J_w`` the Jacobian of its image for its styles.

    As StyleGAN2: the gradient of ``sum(G(ws) * y)`` for ``ws`` (N, num_ws, w_dim), squared,
    summed over ``w_dim``, averaged over the layers, square root. Built with
    ``create_graph=True``.

    Parameters
    ----------
    generator : torch.nn.Module
        The synthesis, ``generator(ws, noise) -> images``.
    ws : torch.Tensor, shape (N, num_ws, w_dim)
        Styles in the graph of the weights (or requiring gradients).
    noise : list of torch.Tensor
        The noise inputs.
    y : torch.Tensor, the shape of the images
        The random image-space direction (StyleGAN2: ``N(0, I) / sqrt(H W)``).

    Returns
    -------
    torch.Tensor, shape (N,)
    """
    (grad,) = torch.autograd.grad((generator(ws, noise) * y).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()


# ---------------------------------------------------------------------------------------------
# Layers (equalised learning rate: N(0, 1) weights scaled by 1 / sqrt(fan_in) at run time)
# ---------------------------------------------------------------------------------------------


class _Dense(nn.Module):
    def __init__(self, n_in, n_out, *, act=False, bias_init=0.0, lr_mult=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mult)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init) / lr_mult))
        self.weight_gain, self.lr_mult, self.act = lr_mult / math.sqrt(n_in), lr_mult, act

    def forward(self, x):
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mult)
        return F.leaky_relu(x, _SLOPE) * _ACT_GAIN if self.act else x


class _Conv(nn.Module):
    def __init__(self, c_in, c_out, k, *, act=True, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.weight_gain, self.act = 1.0 / math.sqrt(c_in * k * k), act

    def forward(self, x):
        x = F.conv2d(
            x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2
        )
        return F.leaky_relu(x, _SLOPE) * _ACT_GAIN if self.act else x


class _StyledConv(nn.Module):
    """Modulated 3x3 convolution + noise (learned per-channel strength) + bias + leaky ReLU."""

    def __init__(self, c_in, c_out, w_dim):
        super().__init__()
        self.affine = _Dense(w_dim, c_in, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros(c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x, w, noise):
        x = modulated_conv2d(x, self.weight, self.affine(w))
        x = x + self.noise_strength.view(1, -1, 1, 1) * noise
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), _SLOPE) * _ACT_GAIN


class _ToRGB(nn.Module):
    """Modulated 1x1 convolution without demodulation, plus bias, no activation."""

    def __init__(self, c_in, channels, w_dim):
        super().__init__()
        self.affine = _Dense(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1.0 / math.sqrt(c_in)

    def forward(self, x, w):
        rgb = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return rgb + self.bias.view(1, -1, 1, 1)


def _widths(image_size: int, width: int, max_width: int) -> dict[int, int]:
    """Channels per resolution: ``width`` at ``image_size``, doubling per halving, capped."""
    return {4 * 2**i: min(max_width, width * image_size // (4 * 2**i)) for i in range(7)}


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


class _Generator(nn.Module):
    """Mapping ``z -> w`` (:meth:`map`) and synthesis ``(w, noise) -> images`` (``forward``).

    The layers take ``num_ws`` styles in order: one per modulated 3x3 convolution, plus one
    for the last toRGB; each other toRGB shares the style of the convolution after it, as in
    StyleGAN2. The buffer ``w_avg`` is the running mean of the mapping outputs.
    """

    def __init__(self, image_size, channels, latent_dim, mapping_layers, width, max_width, lr_mult):
        super().__init__()
        c = _widths(image_size, width, max_width)
        self.resolutions = [4 * 2**i for i in range(int(math.log2(image_size)) - 1)]
        self.num_ws = 2 * len(self.resolutions)
        self.mapping = nn.Sequential(
            *(
                _Dense(latent_dim, latent_dim, act=True, lr_mult=lr_mult)
                for _ in range(mapping_layers)
            )
        )
        self.register_buffer("w_avg", torch.zeros(latent_dim))
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean of the path lengths
        self.const = nn.Parameter(torch.randn(c[4], 4, 4))
        self.convs, self.to_rgb = nn.ModuleList(), nn.ModuleList()
        for i, res in enumerate(self.resolutions):
            if i:
                self.convs.append(_StyledConv(c[res // 2], c[res], latent_dim))
            self.convs.append(_StyledConv(c[res], c[res], latent_dim))
            self.to_rgb.append(_ToRGB(c[res], channels, latent_dim))

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``z`` (N, latent_dim) -> ``w`` (N, latent_dim); pixel norm first."""
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.mapping(z)

    def noise_shapes(self, n: int) -> list[tuple[int, ...]]:
        """Shapes of the per-pixel noise inputs of ``n`` images, one per 3x3 convolution."""
        return [
            (n, 1, res, res) for i, res in enumerate(self.resolutions) for _ in range(min(i + 1, 2))
        ]

    def forward(self, ws: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        """Styles ``ws`` (N, num_ws, w_dim), or (N, w_dim) for all layers -> images in [-1, 1]."""
        if ws.ndim == 2:
            ws = ws.unsqueeze(1).expand(-1, self.num_ws, -1)
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        image, layer = None, 0
        for i, to_rgb in enumerate(self.to_rgb):
            if i:  # upsample, then the first 3x3 convolution of this resolution
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
                x = self.convs[layer](x, ws[:, layer], noise[layer])
                layer += 1
            x = self.convs[layer](x, ws[:, layer], noise[layer])
            layer += 1
            rgb = to_rgb(x, ws[:, layer])
            image = rgb if image is None else image + rgb
        return image


class _DBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv0, self.conv1 = _Conv(c_in, c_in, 3), _Conv(c_in, c_out, 3)
        self.skip = _Conv(c_in, c_out, 1, act=False, bias=False)

    def forward(self, x):
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (x + skip) / math.sqrt(2.0)


class _Discriminator(nn.Module):
    """Images (N, channels, s, s) in [-1, 1] -> scores (N,)."""

    def __init__(self, image_size, channels, width, max_width, group_size):
        super().__init__()
        c = _widths(image_size, width, max_width)
        self.from_rgb = _Conv(channels, c[image_size], 1)
        sizes = [image_size // 2**i for i in range(int(math.log2(image_size)) - 2)]
        self.blocks = nn.Sequential(*(_DBlock(c[s], c[s // 2]) for s in sizes))
        self.group_size = group_size
        self.conv = _Conv(c[4] + 1, c[4], 3)
        self.fc = _Dense(c[4] * 16, c[4], act=True)
        self.out = _Dense(c[4], 1)

    def forward(self, x):
        x = self.blocks(self.from_rgb(x))
        x = self.conv(minibatch_stddev(x, self.group_size))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class StyleGAN2(ImageModel):
    """Unconditional StyleGAN2 with truncation in W space (one model, one seed).

    Parameters
    ----------
    image_size : int, default 32
        Height and width of the square images: a power of two from 8 to 256.
    image_channels : {1, 3}, default 1
        Channels of the images (1: grey, 3: colour).
    latent_dim : int, default 128
        Dimension of ``z`` and of ``w`` (StyleGAN2: 512).
    mapping_layers : int, default 8
        Dense layers of the mapping network (StyleGAN2: 8; toy sizes need fewer).
    width : int, default 32
        Channels at the full resolution; they double at each halving of the resolution, up to
        ``max_width`` (StyleGAN2: ``min(32768 / resolution, 512)``), in both networks.
    max_width : int, default 128
        Cap of the channels per resolution.
    epochs : int, default 20
        Passes over the training images; one discriminator and one generator step per batch.
    batch_size : int, default 32
        Real images per discriminator step, latents per step.
    lr : float, default 2e-3
        Adam learning rate of both networks, betas (0, 0.99) (StyleGAN2: 0.002).
    r1_gamma : float, default 1.0
        R1 weight ``gamma`` (>= 0; 0 turns R1 off): the penalty is ``gamma / 2`` times
        :func:`r1_penalty`. StyleGAN2 used 10 on FFHQ at 1024x1024; small images want less
        (StyleGAN2-ADA's heuristic: ``0.0002 image_size^2 / batch_size``).
    r1_every : int, default 16
        Lazy regularisation: R1 on every ``r1_every``-th discriminator step, times
        ``r1_every``.
    w_avg_beta : float in [0, 1), default 0.995
        Decay of the running mean ``w_avg`` of the mapping outputs (the truncation centre).
    style_mixing : float in [0, 1], default 0.0
        Probability that a generator batch mixes two latents at a random layer (StyleGAN2:
        0.9); 0 turns mixing off.
    path_length : float, default 0.0
        Weight of the path-length regularisation (>= 0; StyleGAN2: 2; 0 turns it off).
    pl_every : int, default 4
        Lazy regularisation: path-length penalty every ``pl_every``-th generator step, times
        ``pl_every``.
    mapping_lr_mult : float, default 0.01
        Learning-rate multiplier of the mapping network (StyleGAN2: 0.01).
    ema_images : int, default 10000
        Half-life, in images shown, of the moving average of the generator's weights that
        samples (StyleGAN2's ``G_ema``: 10,000); 0 turns the average off.
    ema_rampup : float, default 0.05
        The half-life is at most this share of the images shown so far (StyleGAN2-ADA's
        ramp-up, 0.05); 0 turns the cap off.
    mbstd_group_size : int, default 4
        Group size of the minibatch standard-deviation layer (:func:`minibatch_stddev`).
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train and sample.
    progress : bool, default True
        Show a tqdm progress bar over epochs while training.

    Attributes
    ----------
    generator_ : torch.nn.Module
        The generator that samples: the moving average of the trained generator's weights
        (``ema_images``; the trained weights themselves with ``ema_images = 0``), with its
        mapping and synthesis and the buffers ``w_avg`` and ``pl_mean`` (the running mean of
        the path lengths), in eval mode.
    discriminator_ : torch.nn.Module
        The trained discriminator, in eval mode.
    w_avg_ : torch.Tensor, shape (latent_dim,)
        The running mean of ``w`` (the generator's buffer ``w_avg``), saved with it.
    d_loss_history_, g_loss_history_ : list of float
        Mean discriminator loss (logistic, without R1) and generator loss of each epoch.
    r1_history_ : list of float
        Mean R1 penalty :func:`r1_penalty` of the epoch's regularisation steps (NaN for an
        epoch without one).
    pl_history_ : list of float
        Mean path length :func:`path_lengths` of the epoch's path-length steps (NaN for an
        epoch without one, and always with ``path_length = 0``).
    training_seed_ : int
        The seed :meth:`fit` drew from its ``rng``.
    device_ : torch.device
        The resolved device.
    """

    conditional = False
    _networks = ("generator_", "discriminator_")
    _histories = ("d_loss_history_", "g_loss_history_", "r1_history_", "pl_history_")

    def __init__(
        self,
        image_size: int = 32,
        image_channels: int = 1,
        latent_dim: int = 128,
        mapping_layers: int = 8,
        width: int = 32,
        max_width: int = 128,
        epochs: int = 20,
        batch_size: int = 32,
        lr: float = 2e-3,
        r1_gamma: float = 1.0,
        r1_every: int = 16,
        w_avg_beta: float = 0.995,
        style_mixing: float = 0.0,
        path_length: float = 0.0,
        pl_every: int = 4,
        mapping_lr_mult: float = 0.01,
        ema_images: int = 10_000,
        ema_rampup: float = 0.05,
        mbstd_group_size: int = 4,
        device: str = "auto",
        progress: bool = True,
    ):
        self.image_channels = image_channels
        self.latent_dim = latent_dim
        self.mapping_layers = mapping_layers
        self.width = width
        self.max_width = max_width
        self.r1_gamma = r1_gamma
        self.r1_every = r1_every
        self.w_avg_beta = w_avg_beta
        self.style_mixing = style_mixing
        self.path_length = path_length
        self.pl_every = pl_every
        self.mapping_lr_mult = mapping_lr_mult
        self.ema_images = ema_images
        self.ema_rampup = ema_rampup
        self.mbstd_group_size = mbstd_group_size
        super().__init__(image_size, epochs, batch_size, lr, device, progress)

    @property
    def w_avg_(self) -> torch.Tensor:
        """The running mean of ``w`` learned in training (the truncation centre)."""
        return self.generator_.w_avg

    # -- pieces --------------------------------------------------------------------------------

    def build_generator(self) -> nn.Module:
        """Return a freshly initialised generator for these settings (global RNG)."""
        return _Generator(
            self.image_size,
            self.image_channels,
            self.latent_dim,
            self.mapping_layers,
            self.width,
            self.max_width,
            self.mapping_lr_mult,
        )

    def build_discriminator(self) -> nn.Module:
        """Return a freshly initialised discriminator for these settings (global RNG)."""
        return _Discriminator(
            self.image_size, self.image_channels, self.width, self.max_width, self.mbstd_group_size
        )

    def _build_networks(self) -> tuple[nn.Module, nn.Module]:
        return self.build_generator(), self.build_discriminator()

    # -- settings ------------------------------------------------------------------------------

    def _check_settings(self) -> None:
        check_power_of_two_size(self.image_size)
        channels = self.image_channels
        if (
            isinstance(channels, bool)
            or not isinstance(channels, Integral)
            or channels not in (1, 3)
        ):
            raise ValueError(
                f"image_channels must be 1 (grey) or 3 (colour); got {self.image_channels!r}"
            )
        check_positive_int(self.latent_dim, "latent_dim")
        check_positive_int(self.mapping_layers, "mapping_layers")
        check_positive_int(self.width, "width")
        check_positive_int(self.max_width, "max_width")
        check_positive_number(self.r1_gamma, "r1_gamma", allow_zero=True)
        check_positive_int(self.r1_every, "r1_every")
        check_decay(self.w_avg_beta, "w_avg_beta")
        check_probability(self.style_mixing, "style_mixing")
        check_positive_number(self.path_length, "path_length", allow_zero=True)
        check_positive_int(self.pl_every, "pl_every")
        check_positive_number(self.mapping_lr_mult, "mapping_lr_mult")
        check_nonnegative_int(self.ema_images, "ema_images")
        check_positive_number(self.ema_rampup, "ema_rampup", allow_zero=True)
        check_positive_int(self.mbstd_group_size, "mbstd_group_size")

    # -- training ------------------------------------------------------------------------------

    def fit(self, X, y=None, *, rng: torch.Generator) -> StyleGAN2:
        """Train from scratch on images ``X``; ``y`` is ignored (the model is unconditional).

        As :meth:`ImageModel.fit`, but the images have ``image_channels`` channels.

        Parameters
        ----------
        X : tensor or array, shape (N, image_channels, image_size, image_size)
            Training images: floats in [0, 1], or uint8 pixel values converted batch by batch.
        y : ignored
        rng : torch.Generator
            A CPU generator; the training seed is drawn from it (one draw).

        Returns
        -------
        StyleGAN2
            ``self``, fitted.
        """
        self._validate()
        images = check_images(X, "X", self.image_size, self.image_channels)
        seed = draw_training_seed(rng)
        device = resolve_device(self.device)
        networks, histories = self._train(images, None, seed, device)
        self._set_state(seed, device, networks, histories)
        return self

    def _styles(self, generator, n, gen, device):
        """``ws`` (n, num_ws, w_dim) of fresh latents (two mixed at a random layer with
        probability ``style_mixing``) and the noise inputs of ``n`` images, drawn from ``gen``.
        """
        z = torch.randn((n, self.latent_dim), generator=gen).to(device)
        ws = generator.map(z).unsqueeze(1).repeat(1, generator.num_ws, 1)
        if float(torch.rand((), generator=gen)) < self.style_mixing:
            cut = int(torch.randint(1, generator.num_ws, (1,), generator=gen))
            z2 = torch.randn((n, self.latent_dim), generator=gen).to(device)
            ws[:, cut:] = generator.map(z2).unsqueeze(1)
        noise = [torch.randn(s, generator=gen).to(device) for s in generator.noise_shapes(n)]
        return ws, noise

    def _train(self, images, labels, seed, device):
        generator, discriminator = (net.to(device) for net in self._initial_networks(seed))
        gen = torch.Generator().manual_seed(seed)
        opt_g = torch.optim.Adam(generator.parameters(), lr=self.lr, betas=_ADAM_BETAS)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=self.lr, betas=_ADAM_BETAS)
        reals = images.to(device)  # float32 or uint8 pixels, converted batch by batch
        n, size = reals.shape[0], self.image_size
        histories = d_history, g_history, r1_history, pl_history = [], [], [], []
        step = shown = 0
        average = copy.deepcopy(generator).requires_grad_(False) if self.ema_images else None

        epochs = tqdm(range(self.epochs), desc="StyleGAN2", disable=not self.progress)
        for _ in epochs:
            order = torch.randperm(n, generator=gen)
            totals = {"d": [], "g": [], "r1": [], "pl": []}
            for start in range(0, n, self.batch_size):
                real = unit_float(reals[order[start : start + self.batch_size].to(device)])
                real = real * 2.0 - 1.0
                b = real.shape[0]

                # discriminator: logistic loss; lazy R1 every r1_every steps, times r1_every
                with torch.no_grad():
                    fake = generator(*self._styles(generator, b, gen, device))
                scores = discriminator(torch.cat([real, fake]))
                loss_d = F.softplus(-scores[:b]).mean() + F.softplus(scores[b:]).mean()
                total = loss_d
                if self.r1_gamma > 0 and step % self.r1_every == 0:
                    r1 = r1_penalty(discriminator, real)
                    total = total + (self.r1_gamma / 2) * r1 * self.r1_every
                    totals["r1"].append(float(r1.detach()))
                opt_d.zero_grad(set_to_none=True)
                total.backward()
                opt_d.step()

                # generator: non-saturating loss; w_avg follows the mapping outputs; lazy
                # path-length penalty on half a batch every pl_every steps, times pl_every
                discriminator.requires_grad_(False)
                ws, noise = self._styles(generator, b, gen, device)
                with torch.no_grad():
                    generator.w_avg.copy_(ws[:, 0].mean(0).lerp(generator.w_avg, self.w_avg_beta))
                loss_g = F.softplus(-discriminator(generator(ws, noise))).mean()
                total = loss_g
                if self.path_length > 0 and step % self.pl_every == 0:
                    ws, noise = self._styles(generator, max(b // 2, 1), gen, device)
                    y = torch.randn((ws.shape[0], self.image_channels, size, size), generator=gen)
                    lengths = path_lengths(generator, ws, noise, y.to(device) / size)
                    with torch.no_grad():
                        generator.pl_mean.copy_(generator.pl_mean.lerp(lengths.mean(), _PL_DECAY))
                    penalty = (lengths - generator.pl_mean).square().mean()
                    total = total + self.path_length * penalty * self.pl_every
                    totals["pl"].append(float(lengths.detach().mean()))
                opt_g.zero_grad(set_to_none=True)
                total.backward()
                opt_g.step()
                discriminator.requires_grad_(True)
                shown += b
                if average is not None:
                    self._update_average(average, generator, b, shown)

                totals["d"].append(float(loss_d.detach()))
                totals["g"].append(float(loss_g.detach()))
                step += 1
            for history, values in zip(histories, totals.values(), strict=True):
                history.append(sum(values) / len(values) if values else float("nan"))
            epochs.set_postfix(d=f"{d_history[-1]:.3f}", g=f"{g_history[-1]:.3f}")
        if average is not None:
            for kept, trained in zip(average.buffers(), generator.buffers(), strict=True):
                kept.copy_(trained)  # w_avg and pl_mean follow the trained generator
            generator = average
        return (generator, discriminator), histories

    def _update_average(self, average, generator, batch: int, shown: int) -> None:
        """One step of the weights' moving average after a generator step of ``batch`` images,
        ``shown`` images into training (StyleGAN2's ``G_ema`` with ADA's ramp-up)."""
        half_life = float(self.ema_images)
        if self.ema_rampup > 0:
            half_life = min(half_life, shown * self.ema_rampup)
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        with torch.no_grad():
            for kept, trained in zip(average.parameters(), generator.parameters(), strict=True):
                kept.lerp_(trained, 1.0 - beta)

    # -- sampling ------------------------------------------------------------------------------
    # ``sample(n, lam, *, rng, labels=None, batch_size=256)`` (ImageModel.sample) refuses labels.
    # All n latents are drawn from rng first, then every noise input of all n images (in layer
    # order), on rng's device, so the images do not depend on batch_size; w is truncated
    # towards w_avg_ with lam (the same w for every layer: no mixing when sampling).

    def _generate(self, n, lam, rng, labels, batch_size):
        g = self.generator_
        z = torch.randn((n, self.latent_dim), generator=rng, device=rng.device)
        noise = [torch.randn(s, generator=rng, device=rng.device) for s in g.noise_shapes(n)]
        out = []
        for i in range(0, n, batch_size):
            w = truncate(g.map(z[i : i + batch_size].to(self.device_)), g.w_avg, lam)
            chunk = [x[i : i + batch_size].to(self.device_) for x in noise]
            images = (g(w, chunk) + 1.0) / 2.0
            out.append(images.clamp(0.0, 1.0).float().cpu())
        return torch.cat(out)
