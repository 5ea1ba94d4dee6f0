"""Memorisation: are the synthetic images copies of the images the model trained on?

:func:`nearest_distance_ratio` compares, in feature space, how far each synthetic image is
from its nearest training image with how far each held-out real image is from its nearest
training image: the ratio of the two medians. A model that copies its training set gives
a ratio near 0; a model that draws new images from the same distribution, about 1 (as new
real images would); images off the data's manifold, more than 1. In the image loops the
training set is the generation's own training set (for the fully synthetic loop, the previous
generation's samples), so the ratio says whether collapse onto "prototypes" is copying.

Distances are Euclidean, computed in float64, ``block_size`` rows at a time (no full
``N x M`` matrix).
"""

from __future__ import annotations

import numpy as np
import torch

from madutils._validation import check_same_dim
from madutils.linalg import check_finite_replicates

__all__ = ["nearest_distance_ratio", "nearest_distances"]


def _as_points(values, name: str) -> torch.Tensor:
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if tensor.ndim != 2 or tensor.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features) with at least one sample; got "
            f"{tuple(tensor.shape)}"
        )
    check_finite_replicates(tensor, name, core_ndim=2)
    return tensor.to(torch.float64)


def nearest_distances(
    points, reference, *, block_size: int = 1024, names: tuple[str, str] = ("points", "reference")
) -> torch.Tensor:
    """The Euclidean distance of each point to its nearest point of ``reference``.

    Parameters
    ----------
    points : array or Tensor, shape (N, D)
    reference : array or Tensor, shape (M, D)
    block_size : int
        Rows of ``points`` per block.
    names : (str, str)
        What error messages call the two sets.

    Returns
    -------
    Tensor, shape (N,), float64
    """
    points = _as_points(points, names[0])
    reference = _as_points(reference, names[1]).to(points.device)
    check_same_dim(points, reference, *names)
    blocks = [
        torch.cdist(points[start : start + block_size], reference).min(dim=1).values
        for start in range(0, points.shape[0], block_size)
    ]
    return torch.cat(blocks)


def nearest_distance_ratio(synthetic, real, training) -> torch.Tensor:
    """Median distance of synthetic points to the training set over that of real points.

    Parameters
    ----------
    synthetic : array or Tensor, shape (N, D)
        Features of generated images.
    real : array or Tensor, shape (M, D)
        Features of held-out real images (never trained on).
    training : array or Tensor, shape (T, D)
        Features of the images the model trained on.

    Returns
    -------
    Tensor, a float64 scalar
        ``median_i min_t ||s_i - x_t|| / median_j min_t ||r_j - x_t||``: near 0 for copies,
        about 1 for new images of the training set's distribution.

    Raises
    ------
    ValueError
        If a set is malformed or not finite, or the real points' median distance is 0 (the
        "held-out" images are in the training set).
    """
    real_distance = nearest_distances(real, training, names=("real", "training")).median()
    if float(real_distance) == 0.0:
        raise ValueError(
            "real: the median distance of the held-out real points to the training set is 0 "
            "(they are in it); the ratio needs real points the model never saw"
        )
    synthetic_distance = nearest_distances(synthetic, training, names=("synthetic", "training"))
    return synthetic_distance.median() / real_distance
