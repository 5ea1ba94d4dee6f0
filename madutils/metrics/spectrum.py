"""The 2-D power spectrum of images, and how much of it sits at high spatial frequencies.

Generator artifacts on a pixel grid, such as the cross-hatching of StyleGAN images in the
paper's fully synthetic loop, are periodic patterns of a few pixels' period: energy at high
spatial frequencies that real images do not have. This module measures it:

- :func:`power_spectrum`: the mean power spectrum of a set of images;
- :func:`radial_profile`: its azimuthal average against the radial frequency;
- :func:`high_frequency_share`: the share of the spectral energy above a cutoff frequency;
- :func:`spectral_excess`: that share for synthetic images over the share for real images
  (1: like the real images; above 1: excess high-frequency energy, such as grid artifacts;
  below 1: too smooth, such as blur);
- :func:`spectral_profiles`: the two radial profiles and their log ratio, for plots.

Definitions. Each channel of each image has its own mean subtracted, and its discrete Fourier
transform ``X[k]`` is normalised so that the spectrum ``P[k] = |X[k]|^2 / S^4`` (``S`` the side
in pixels) sums over the ``S x S`` frequencies to the mean squared deviation of the pixels from
their mean (Parseval's identity): the pixel variance. The power spectrum of a set is the mean
of ``P`` over channels and images, ``fftshift``-ed so that the zero frequency sits at index
``(S // 2, S // 2)``. The radial frequency of ``k = (k_y, k_x)`` (integers from ``-S // 2`` to
``(S - 1) // 2``) is ``|k|`` in cycles per image; the Nyquist frequency is ``S / 2``.

Windowing. None by default: the transform treats each image as periodic, which suits images on
a plain background (their borders match) and represents a one-pixel checkerboard exactly, at
the Nyquist frequency. ``window="hann"`` multiplies each mean-subtracted channel by a separable
Hann window first (periodic form, ``sin^2(pi n / S)``), divided by the root mean square of the
window so that Parseval's identity holds on average; it suppresses the spurious high
frequencies of borders that do not match, at the cost of weighting the image's centre more.
Use the same window for the images compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

from madutils._image_checks import unit_float
from madutils._validation import check_choice

__all__ = [
    "DEFAULT_CUTOFF",
    "WINDOWS",
    "SpectralProfiles",
    "high_frequency_share",
    "power_spectrum",
    "radial_frequency",
    "radial_profile",
    "spectral_excess",
    "spectral_profiles",
]

#: The windows :func:`power_spectrum` can apply.
WINDOWS = ("none", "hann")
#: Default cutoff of :func:`high_frequency_share`, as a fraction of the Nyquist frequency.
DEFAULT_CUTOFF = 0.5
_CHUNK_ELEMENTS = 2**22  # pixels transformed at once


def _as_images(images, name: str) -> torch.Tensor:
    """Images of shape (n, c, s, s), c in {1, 3}, as a finite float64 tensor (uint8 pixel values
    as the float32 values they stand for, so that bytes and their float copy agree exactly)."""
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    expected = "(n_images, channels, size, size) with channels 1 or 3"
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape {expected}; got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels (shape {expected}); got {c}")
    if h != w:
        raise ValueError(f"{name} must be square images (shape {expected}); got {h}x{w}")
    if h < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels; got {h}x{w}")
    if n < 1:
        raise ValueError(f"{name} must hold at least one image; got 0")
    if images.is_complex() or images.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers; got {images.dtype}")
    if images.dtype == torch.uint8:  # 8-bit pixel values k: the float32 k / 255 they stand for
        return unit_float(images).to(torch.float64)
    images = images.to(torch.float64)
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values; all entries must be finite")
    return images


def _check_cutoff(cutoff) -> float:
    if isinstance(cutoff, bool) or not isinstance(cutoff, Real) or not 0 < cutoff < 1:
        raise ValueError(
            f"cutoff must be a number in (0, 1), a fraction of the Nyquist frequency; "
            f"got {cutoff!r}"
        )
    return float(cutoff)


def _hann(size: int) -> torch.Tensor:
    """Separable periodic 2-D Hann window, scaled to a mean square of 1."""
    line = torch.sin(math.pi * torch.arange(size, dtype=torch.float64) / size) ** 2
    window = line[:, None] * line[None, :]
    return window / window.square().mean().sqrt()


def power_spectrum(images, *, window: str = "none") -> torch.Tensor:
    """The mean 2-D power spectrum of a set of images.

    Parameters
    ----------
    images : array or Tensor, shape (N, C, S, S)
        ``C`` is 1 or 3. Values need not be in [0, 1].
    window : {"none", "hann"}
        Window applied to each mean-subtracted channel (see the module docstring).

    Returns
    -------
    Tensor, shape (S, S), float64, on the CPU
        ``|FFT|^2 / S^4`` of each channel after subtracting its mean (and applying the
        window), averaged over channels and images, zero frequency at ``(S // 2, S // 2)``.
        Without a window it sums to the mean pixel variance of the channels and its
        zero-frequency entry is 0; with the Hann window both hold only approximately.
    """
    images = _as_images(images, "images")
    check_choice(window, "window", WINDOWS)
    n, channels, size = images.shape[0], images.shape[1], images.shape[-1]
    taper = _hann(size).to(images.device) if window == "hann" else None
    total = torch.zeros(size, size, dtype=torch.float64, device=images.device)
    chunk = max(1, _CHUNK_ELEMENTS // (channels * size * size))
    for start in range(0, n, chunk):
        block = images[start : start + chunk]
        centred = block - block.mean(dim=(-2, -1), keepdim=True)
        if taper is not None:
            centred = centred * taper
        total += torch.fft.fft2(centred).abs().square_().sum(dim=(0, 1))
    power = total / (n * channels * size**4)
    return torch.fft.fftshift(power).cpu()


def radial_frequency(size: int) -> torch.Tensor:
    """Radial frequency ``|k|`` (cycles per image) of each entry of a shifted ``size x size``
    spectrum; float64, shape ``(size, size)``."""
    k = torch.arange(size, dtype=torch.float64) - size // 2
    return torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)


def _as_spectrum(spectrum) -> torch.Tensor:
    if not isinstance(spectrum, torch.Tensor):
        spectrum = torch.as_tensor(np.asarray(spectrum))
    if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1] or spectrum.shape[0] < 2:
        raise ValueError(
            "spectrum must be a square 2-D array of shape (S, S), S >= 2, as power_spectrum "
            f"returns; got shape {tuple(spectrum.shape)}"
        )
    if spectrum.is_complex() or spectrum.dtype == torch.bool:
        raise ValueError(f"spectrum must hold real numbers; got {spectrum.dtype}")
    spectrum = spectrum.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(spectrum).all()):
        raise ValueError("spectrum contains NaN or infinite values; all entries must be finite")
    return spectrum


def radial_profile(spectrum, *, corners: bool = False) -> torch.Tensor:
    """The azimuthal average of a shifted power spectrum, by integer radial frequency.

    Parameters
    ----------
    spectrum : array or Tensor, shape (S, S)
        A spectrum with its zero frequency at ``(S // 2, S // 2)``, as :func:`power_spectrum`
        returns.

    corners : bool
        False (default): radii up to the Nyquist frequency ``S // 2``, the corners of the
        spectrum beyond it (``|k| >= S // 2 + 0.5``) left out, so that every radius is averaged
        over a whole circle. True: radii up to the largest, ``round(|(S // 2, S // 2)|)``
        (about ``0.71 S``), the outer ones averaged over the corners only; a one-pixel
        checkerboard, at ``k = (S / 2, S / 2)``, shows only then.

    Returns
    -------
    Tensor, shape (S // 2 + 1,) (or more with ``corners``), float64
        Entry ``r`` is the mean of the spectrum over the frequencies whose radial frequency
        rounds to ``r`` (``r - 0.5 <= |k| < r + 0.5``), for ``r = 0, 1, ...``.
    """
    spectrum = _as_spectrum(spectrum)
    if not isinstance(corners, bool):
        raise ValueError(f"corners must be True or False; got {corners!r}")
    size = spectrum.shape[0]
    bins = torch.floor(radial_frequency(size) + 0.5).to(torch.int64).reshape(-1)
    n_bins = int(bins.max()) + 1 if corners else size // 2 + 1
    keep = bins < n_bins
    sums = torch.bincount(bins[keep], weights=spectrum.reshape(-1)[keep], minlength=n_bins)
    counts = torch.bincount(bins[keep], minlength=n_bins)
    return sums / counts


def _share_of(spectrum: torch.Tensor, cutoff: float, name: str) -> torch.Tensor:
    size = spectrum.shape[0]
    total = spectrum.sum()
    if float(total) <= 0.0:
        raise ValueError(
            f"{name} have no spectral energy (every channel is constant), so no share of it "
            "can be measured"
        )
    high = radial_frequency(size) > cutoff * size / 2
    return spectrum[high].sum() / total


def high_frequency_share(images, cutoff: float = DEFAULT_CUTOFF, *, window: str = "none"):
    """The share of the spectral energy above ``cutoff`` times the Nyquist frequency.

    Parameters
    ----------
    images : array or Tensor, shape (N, C, S, S)
        ``C`` is 1 or 3.
    cutoff : float
        In (0, 1): the energy at radial frequencies ``|k| > cutoff * S / 2`` counts as high
        (the corners beyond the Nyquist frequency included).
    window : {"none", "hann"}
        As in :func:`power_spectrum`.

    Returns
    -------
    Tensor, a float64 scalar in [0, 1]
        Energy above the cutoff over all energy, both of the mean spectrum of the set.

    Raises
    ------
    ValueError
        For malformed images, a cutoff outside (0, 1), or images without any variation.
    """
    cutoff = _check_cutoff(cutoff)
    return _share_of(power_spectrum(images, window=window), cutoff, "images")


def spectral_excess(
    images, real_images, cutoff: float = DEFAULT_CUTOFF, *, window: str = "none"
) -> torch.Tensor:
    """High-frequency share of synthetic images over that of real images.

    Parameters
    ----------
    images : array or Tensor, shape (N, C, S, S)
        The synthetic images.
    real_images : array or Tensor, shape (M, C, S, S)
        Real images of the same channels and size.
    cutoff : float
        In (0, 1), as in :func:`high_frequency_share`.
    window : {"none", "hann"}
        As in :func:`power_spectrum`, for both sets.

    Returns
    -------
    Tensor, a float64 scalar >= 0
        ``high_frequency_share(images) / high_frequency_share(real_images)``: 1 for images
        like the real ones, above 1 for excess high-frequency energy (grid artifacts, noise),
        below 1 for too little (blur). A ratio, so that 2 means twice the real share whatever
        the share itself; take its log for a symmetric scale.

    Raises
    ------
    ValueError
        For malformed images, different channels or sizes, or real images whose share is 0.
    """
    cutoff = _check_cutoff(cutoff)
    synthetic, real = _pair(images, real_images)
    real_share = _share_of(power_spectrum(real, window=window), cutoff, "real_images")
    if float(real_share) == 0.0:
        raise ValueError(
            "real_images have no spectral energy above the cutoff, so the ratio is undefined; "
            "use a lower cutoff"
        )
    return _share_of(power_spectrum(synthetic, window=window), cutoff, "images") / real_share


def _pair(images, real_images) -> tuple[torch.Tensor, torch.Tensor]:
    synthetic = _as_images(images, "images")
    real = _as_images(real_images, "real_images")
    if synthetic.shape[1:] != real.shape[1:]:
        raise ValueError(
            "images and real_images must have the same channels and size; got images of "
            f"shape {tuple(synthetic.shape[1:])} and real_images of shape {tuple(real.shape[1:])}"
        )
    return synthetic, real


@dataclass(frozen=True)
class SpectralProfiles:
    """Radial power profiles of synthetic and real images, for plots.

    Attributes
    ----------
    radius : Tensor of shape (R,), int64
        Radial frequencies 1, ..., R (cycles per image; the zero frequency, empty after
        mean subtraction, is left out): ``R = S // 2`` (the Nyquist frequency), or the largest
        radius, about ``0.71 S``, with ``corners``.
    synthetic, real : Tensor of shape (R,), float64
        :func:`radial_profile` of each set's :func:`power_spectrum` at those radii.
    log_ratio : Tensor of shape (R,), float64
        ``log(synthetic / real)`` (natural log): 0 where the synthetic images have the real
        images' power, positive where they have more; ``-inf`` where the synthetic power is 0.
    """

    radius: torch.Tensor
    synthetic: torch.Tensor
    real: torch.Tensor
    log_ratio: torch.Tensor


def spectral_profiles(
    images, real_images, *, window: str = "none", corners: bool = True
) -> SpectralProfiles:
    """Radial profiles of synthetic and real images and their log ratio.

    Parameters
    ----------
    images : array or Tensor, shape (N, C, S, S)
        The synthetic images.
    real_images : array or Tensor, shape (M, C, S, S)
        Real images of the same channels and size.
    window : {"none", "hann"}
        As in :func:`power_spectrum`.
    corners : bool
        As in :func:`radial_profile`; True (default) here, so that the radii beyond the
        Nyquist frequency, where a one-pixel checkerboard puts its energy, are shown too.

    Returns
    -------
    SpectralProfiles

    Raises
    ------
    ValueError
        For malformed images, different channels or sizes, or real images with no power at
        some radius.
    """
    synthetic, real = _pair(images, real_images)
    synthetic_profile = radial_profile(power_spectrum(synthetic, window=window), corners=corners)[
        1:
    ]
    real_profile = radial_profile(power_spectrum(real, window=window), corners=corners)[1:]
    if bool((real_profile <= 0).any()):
        empty = int(torch.nonzero(real_profile <= 0)[0, 0]) + 1
        raise ValueError(
            f"real_images have no power at radial frequency {empty}, so the log ratio is "
            "undefined there"
        )
    radius = torch.arange(1, len(real_profile) + 1, dtype=torch.int64)
    log_ratio = torch.log(synthetic_profile) - torch.log(real_profile)
    return SpectralProfiles(radius, synthetic_profile, real_profile, log_ratio)
