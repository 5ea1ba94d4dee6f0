"""A small unconditional Wasserstein GAN with gradient penalty for one-channel square images.

The paper (Alemohammad et al., 2024) studies self-consuming loops with several generative
model families; this module adds a GAN for the MNIST-style experiments: a DCGAN-like
generator and critic trained with the WGAN-GP objective of Gulrajani et al. (2017),

- critic loss ``E[D(G(z))] - E[D(x)] + gp_weight * E[(||grad D(x_hat)||_2 - 1)^2]`` with
  ``x_hat`` a random interpolate between a real and a generated image, ``n_critic`` critic
  steps per generator step;
- generator loss ``-E[D(G(z))]``.

The generator maps a latent ``z ~ N(0, I)`` through a linear layer to ``2 width`` feature maps
of size ``image_size / 4``, then two transposed-convolution upsampling stages (BatchNorm and
ReLU) and a final convolution with a sigmoid, so images are in [0, 1] as the data are. The
critic has two stride-2 convolutions with LeakyReLU and no normalisation (BatchNorm would break
the per-sample gradient penalty), then a linear layer to one score.

Sampling bias: :meth:`WGANGP.sample` truncates the latent towards its mean,
``z' = lam * z`` with ``z ~ N(0, I)`` and ``lam`` in (0, 1] (the "truncation trick" of
BigGAN/StyleGAN with ``psi = lam``): ``lam = 1`` is plain sampling, smaller ``lam`` gives
images closer to the generator's "average" image, of higher typical quality and less
diversity. This is the GAN form of the paper's sampling bias ``lam``;
the paper ran its WGAN experiments only with plain sampling, ``lam = 1``, and ``lam < 1`` is
this project's extension.

:class:`WGANGP` follows the protocol of :mod:`madutils.models.base`, shared with every model of
the package: settings in ``__init__``, ``fit(X, y=None, *, rng) -> self``, ``sample(n, lam, *,
rng)``, learned state in attributes with a trailing underscore and :meth:`WGANGP.clone` for an
unfitted copy. Saving, the device handling and the seeded initialisation live in
:class:`~madutils.models.base.ImageModel`. The model is unconditional (``conditional = False``):
``fit`` ignores ``y``, :meth:`WGANGP.sample` refuses labels, and the loop labels the samples
itself.

Global state: :meth:`WGANGP.fit` draws one training seed from its ``rng``
(``int(torch.randint(2**31 - 1, (1,), generator=rng))``, kept as ``training_seed_``); the random
initialisation runs inside ``torch.random.fork_rng`` seeded with it, so the caller's global torch
random state is left as it was, and batches, latents and interpolation weights draw from a
private ``torch.Generator`` seeded with it. Sampling draws only from the ``rng`` the caller
passes. The number of torch threads is left to the caller.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from madutils._image_checks import unit_float
from madutils._validation import check_positive_int, check_positive_number
from madutils.models.base import ImageModel

__all__ = ["WGANGP"]

_ADAM_BETAS = (0.5, 0.9)  # Gulrajani et al. (2017), DCGAN-like models
_LEAKY_SLOPE = 0.2


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_image_size(value) -> int:
    value = check_positive_int(value, "image_size")
    if value % 4:
        raise ValueError(
            f"image_size must be divisible by 4 (the generator doubles a (image_size / 4)-sized "
            f"map twice and the critic halves the image twice), e.g. 8, 12, 16 or 28; "
            f"got {value}"
        )
    return value


def _gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps):
    """Mean of ``(||grad_x D(x_hat)||_2 - 1)^2`` over ``x_hat = eps real + (1 - eps) fake``."""
    x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


class _Generator(nn.Module):
    """Latent (N, latent_dim) -> images (N, 1, s, s) in [0, 1]."""

    def __init__(self, image_size: int, latent_dim: int, width: int):
        super().__init__()
        self.base = image_size // 4
        self.channels = 2 * width
        self.project = nn.Linear(latent_dim, self.channels * self.base * self.base)
        self.body = nn.Sequential(
            nn.BatchNorm2d(self.channels),
            nn.ReLU(),
            nn.ConvTranspose2d(self.channels, width, 4, stride=2, padding=1),  # s/4 -> s/2
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1),  # s/2 -> s
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.channels, self.base, self.base)
        return self.body(x)


class _Critic(nn.Module):
    """Images (N, 1, s, s) -> scores (N,); no normalisation layers (gradient penalty)."""

    def __init__(self, image_size: int, width: int):
        super().__init__()
        base = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1),  # s -> s/2
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # s/2 -> s/4
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.Flatten(),
            nn.Linear(2 * width * base * base, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class WGANGP(ImageModel):
    """Unconditional DCGAN-like Wasserstein GAN with gradient penalty (one model, one seed).

    Parameters
    ----------
    image_size : int, default 28
        Height and width of the (square, one-channel) images; must be divisible by 4.
    latent_dim : int, default 64
        Dimension of the Gaussian latent ``z``.
    width : int, default 32
        Base channel count: the generator starts from ``2 width`` maps and upsamples through
        ``width`` channels; the critic has ``width`` then ``2 width`` channels. About 0.29M
        parameters in all at ``width = 32``, ``image_size = 28``.
    epochs : int, default 20
        Passes of the critic over the training images in :meth:`fit`: one critic step per
        batch, one generator step after every ``n_critic`` critic steps (counted across
        epochs), so an epoch has about ``ceil(N / batch_size) / n_critic`` generator steps.
    batch_size : int, default 64
        Real images per critic step; also the number of latents per generator step.
    lr : float, default 2e-4
        Adam learning rate of both networks (betas (0.5, 0.9), as Gulrajani et al.).
    n_critic : int, default 5
        Critic steps per generator step.
    gp_weight : float, default 10.0
        Weight of the gradient penalty (> 0).
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train and sample.
    progress : bool, default True
        Show a tqdm progress bar over epochs while training.

    Attributes
    ----------
    generator_ : torch.nn.Module
        The trained generator, in eval mode (BatchNorm uses its running statistics), on
        ``device_``.
    critic_ : torch.nn.Module
        The trained critic, in eval mode, on ``device_``.
    device_ : torch.device
        The resolved device.
    loss_history_ : list of float
        Mean critic loss (gradient penalty included) of each epoch.
    wasserstein_history_ : list of float
        Mean critic estimate of the Wasserstein distance, ``E[D(x)] - E[D(G(z))]`` on the
        critic's batches, of each epoch.
    generator_loss_history_ : list of float
        Mean generator loss ``-E[D(G(z))]`` of each epoch (NaN for an epoch without a
        generator step).
    training_seed_ : int
        The seed :meth:`fit` drew from its ``rng``.
    """

    conditional = False  # sample(n) draws unlabelled images; the loop labels them
    _networks = ("generator_", "critic_")
    _histories = ("loss_history_", "wasserstein_history_", "generator_loss_history_")
    _sample_batch_size = 1024

    def __init__(
        self,
        image_size: int = 28,
        latent_dim: int = 64,
        width: int = 32,
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 2e-4,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        device: str = "auto",
        progress: bool = True,
    ):
        self.latent_dim = latent_dim
        self.width = width
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        super().__init__(image_size, epochs, batch_size, lr, device, progress)

    # -- pieces --------------------------------------------------------------------------------

    def build_generator(self) -> nn.Module:
        """Return a freshly initialised generator for these settings (global RNG)."""
        return _Generator(_check_image_size(self.image_size), self.latent_dim, self.width)

    def build_critic(self) -> nn.Module:
        """Return a freshly initialised critic for these settings (global RNG)."""
        return _Critic(_check_image_size(self.image_size), self.width)

    def _build_networks(self) -> tuple[nn.Module, nn.Module]:
        return self.build_generator(), self.build_critic()

    # -- settings ------------------------------------------------------------------------------

    def _check_settings(self) -> None:
        _check_image_size(self.image_size)
        check_positive_int(self.latent_dim, "latent_dim")
        check_positive_int(self.width, "width")
        check_positive_int(self.n_critic, "n_critic")
        check_positive_number(self.gp_weight, "gp_weight")

    # -- training ------------------------------------------------------------------------------
    # ``fit(X, y=None, *, rng)`` (ImageModel.fit) checks X, ignores y, draws the training seed
    # from rng and calls _train: the WGAN-GP objective, n_critic critic steps per generator step.

    def _train(self, images, labels, seed, device):
        generator, critic = self._initial_networks(seed)
        generator, critic = generator.to(device), critic.to(device)
        gen = torch.Generator().manual_seed(seed)
        opt_g = torch.optim.Adam(generator.parameters(), lr=self.lr, betas=_ADAM_BETAS)
        opt_c = torch.optim.Adam(critic.parameters(), lr=self.lr, betas=_ADAM_BETAS)
        x_all = images.to(device)  # float32 or uint8 pixels, converted batch by batch
        n = x_all.shape[0]
        critic_params = list(critic.parameters())
        history, w_history, g_history = [], [], []
        steps = 0

        generator.train()
        critic.train()
        epochs = tqdm(range(self.epochs), desc="WGAN-GP", disable=not self.progress)
        for _ in epochs:
            order = torch.randperm(n, generator=gen)
            c_total, w_total, c_count = 0.0, 0.0, 0
            g_total, g_count = 0.0, 0
            for start in range(0, n, self.batch_size):
                real = unit_float(x_all[order[start : start + self.batch_size].to(device)])
                b = real.shape[0]
                z = torch.randn((b, self.latent_dim), generator=gen).to(device)
                eps = torch.rand((b, 1, 1, 1), generator=gen).to(device)
                with torch.no_grad():
                    fake = generator(z)
                scores = critic(torch.cat([real, fake]))
                w_estimate = scores[:b].mean() - scores[b:].mean()
                penalty = _gradient_penalty(critic, real, fake, eps)
                loss_c = -w_estimate + self.gp_weight * penalty
                opt_c.zero_grad(set_to_none=True)
                loss_c.backward()
                opt_c.step()
                c_total += float(loss_c.detach()) * b
                w_total += float(w_estimate.detach()) * b
                c_count += b
                steps += 1

                if steps % self.n_critic == 0:
                    z = torch.randn((self.batch_size, self.latent_dim), generator=gen).to(device)
                    for p in critic_params:
                        p.requires_grad_(False)
                    loss_g = -critic(generator(z)).mean()
                    opt_g.zero_grad(set_to_none=True)
                    loss_g.backward()
                    opt_g.step()
                    for p in critic_params:
                        p.requires_grad_(True)
                    g_total += float(loss_g.detach())
                    g_count += 1
            history.append(c_total / c_count)
            w_history.append(w_total / c_count)
            g_history.append(g_total / g_count if g_count else float("nan"))
            epochs.set_postfix(
                critic=f"{history[-1]:.3f}", W=f"{w_history[-1]:.3f}", gen=f"{g_history[-1]:.3f}"
            )
        return (generator, critic), (history, w_history, g_history)

    # -- sampling ------------------------------------------------------------------------------
    # ``sample(n, lam, *, rng, labels=None, batch_size=1024)`` (ImageModel.sample) refuses
    # labels; all n latents are drawn from rng at once, on its device, and truncated,
    # z' = lam * z, so the images do not depend on batch_size.

    def _generate(self, n, lam, rng, labels, batch_size):
        z = torch.randn((n, self.latent_dim), generator=rng, device=rng.device) * lam
        out = []
        for chunk in z.split(batch_size):
            images = self.generator_(chunk.to(self.device_))
            out.append(images.clamp(0.0, 1.0).float().cpu())
        return torch.cat(out)
