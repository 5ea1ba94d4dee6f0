"""Input checks shared by the image models (:mod:`.lenet`, :mod:`.ddpm`).

Images are tensors of shape ``(N, C, H, W)`` (one channel unless a model or network takes
colour, ``C = 3``): float with values in [0, 1], or uint8 pixel values, where ``k`` stands for
``k / 255`` (how image files and the loops' synthetic images hold them, at a quarter of the
memory). uint8 images stay uint8 through the checks; whoever computes on them converts a batch
at a time with :func:`unit_float`, which gives bit for bit the values a float32 copy of the
whole set would hold. Labels are integers in ``[0, n_classes)``. Every error names the parameter
and what is allowed.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch

from madutils._validation import check_choice

__all__ = [
    "POWER_OF_TWO_SIZES",
    "check_image_values",
    "check_images",
    "check_labels",
    "check_power_of_two_size",
    "resolve_device",
    "unit_float",
]

#: The image sides the colour models and data take: powers of two from 8 to 256.
POWER_OF_TWO_SIZES = tuple(2**k for k in range(3, 9))


def check_power_of_two_size(value, name: str = "image_size", context: str = "") -> int:
    """Return ``value`` as ``int`` if it is one of :data:`POWER_OF_TWO_SIZES`; raise
    ``ValueError`` naming ``name`` (followed by ``context``, e.g. " for model='stylegan2'")."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Integral)
        or value not in POWER_OF_TWO_SIZES
    ):
        sizes = ", ".join(map(str, POWER_OF_TWO_SIZES))
        raise ValueError(
            f"{name} must be a power of two from 8 to 256{context} ({sizes}); got {value!r}"
        )
    return int(value)


def check_images(images, name: str, image_size: int, channels: int = 1) -> torch.Tensor:
    """Return ``images`` (same device; float32, or uint8 pixel values as given) after checking
    that they have shape ``(N, channels, image_size, image_size)`` with ``N >= 1`` and values
    in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    expected = f"(n_images, {channels}, {image_size}, {image_size})"
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape {expected}; got shape {tuple(images.shape)}")
    if images.shape[1] != channels:
        plural = "" if channels == 1 else "s"
        raise ValueError(
            f"{name} must have {channels} channel{plural} (shape {expected}); got "
            f"{images.shape[1]} channels"
        )
    if tuple(images.shape[2:]) != (image_size, image_size):
        raise ValueError(
            f"{name} must be {image_size}x{image_size} images (shape {expected}), the "
            f"network's image_size; got {images.shape[2]}x{images.shape[3]}"
        )
    if images.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image; got 0")
    return check_image_values(images, name)


def check_image_values(images: torch.Tensor, name: str) -> torch.Tensor:
    """Return ``images`` (a float or uint8 tensor of any shape) after checking that every value
    is finite and in [0, 1]: floats as float32, uint8 pixel values unchanged (always valid)."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must hold floating-point values in [0, 1] or uint8 pixel values; got "
            f"{images.dtype}"
        )
    images = images.to(torch.float32)
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values; all entries must be finite")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must have values in [0, 1]; got values in [{low:.4g}, {high:.4g}]"
        )
    return images


def unit_float(images: torch.Tensor) -> torch.Tensor:
    """``images`` as float32 in [0, 1]: uint8 pixel values ``k`` become ``float32(k) / 255``,
    float32 images are returned as they are (no copy), other floats are cast.

    Call it on one batch at a time: the values are those of converting the whole set at once.
    """
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    return images.to(torch.float32)


def check_labels(labels, name: str, n_images: int, n_classes: int) -> torch.Tensor:
    """Return ``labels`` as an int64 tensor after checking shape, dtype and range."""
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(np.asarray(labels))
    if labels.ndim != 1 or labels.shape[0] != n_images:
        raise ValueError(
            f"{name} must have shape ({n_images},), one label per image; "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers; got {labels.dtype}")
    labels = labels.to(torch.int64)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        raise ValueError(
            f"{name} must be in [0, n_classes) = [0, {n_classes}); got values in [{low}, {high}]"
        )
    return labels


def resolve_device(device: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` as a ``torch.device``."""
    check_choice(device, "device", ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)
