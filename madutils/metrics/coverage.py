"""Factor-combination coverage: how many of the known modes a model still produces.

On a data set with known generative factors (:mod:`madutils.data.shapes`), mode loss can be
counted instead of estimated: each generated image is assigned a factor combination (by a
classifier trained on the real images' combination labels, such as the package's feature
network), and the coverage is the share of all combinations assigned to at least
``min_count`` images. A model that has lost modes covers less than 1; a model that still
produces every mode but unevenly shows it in the histogram's entropy.

- :func:`factor_coverage`: coverage of one categorical variable (the combination index, or
  any code) with its count histogram, entropy and KL divergence from uniform;
- :func:`marginal_coverage`: the same for the combination and for each factor of a
  :class:`~madutils.data.shapes.ShapeFactors` (shape, colour, position, size).

Both can leave out predictions the classifier is unsure of: given a ``confidence`` per image
(for example the classifier's largest softmax probability), images with confidence below
``min_confidence`` are not counted, so that an unrecognisable image does not cover a mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

from madutils._validation import check_positive_int
from madutils.data.shapes import FACTOR_NAMES, ShapeFactors

__all__ = ["Coverage", "factor_coverage", "marginal_coverage"]


@dataclass(frozen=True, eq=False)
class Coverage:
    """Coverage of a categorical variable by a set of predicted codes.

    Attributes
    ----------
    share : float
        ``n_covered / n_values``: the share of the values counted at least ``min_count`` times.
    counts : ndarray of shape (n_values,), int64
        Number of counted predictions of each value.
    covered : ndarray of shape (n_values,), bool
        ``counts >= min_count``.
    min_count : int
        The threshold used.
    n_counted : int
        Predictions counted (those with confidence at least ``min_confidence``).
    n_excluded : int
        Predictions left out for low confidence.
    entropy : float
        Shannon entropy (nats) of the histogram ``counts / n_counted``; ``log(n_values)`` when
        every value is equally frequent. NaN when nothing was counted.
    kl_to_uniform : float
        ``log(n_values) - entropy``: the KL divergence (nats) of the histogram from the uniform
        distribution over the values; 0 when uniform. NaN when nothing was counted.
    """

    share: float
    counts: np.ndarray
    covered: np.ndarray
    min_count: int
    n_counted: int
    n_excluded: int
    entropy: float
    kl_to_uniform: float

    @property
    def n_values(self) -> int:
        """Number of values (combinations, or values of a factor)."""
        return len(self.counts)

    @property
    def n_covered(self) -> int:
        """Number of values counted at least ``min_count`` times."""
        return int(self.covered.sum())

    @property
    def normalised_entropy(self) -> float:
        """``entropy / log(n_values)``, in [0, 1] (1: uniform); 1 for a single value."""
        if self.n_values == 1:
            return 1.0 if self.n_counted else math.nan
        return self.entropy / math.log(self.n_values)


def _as_array(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check_codes(predicted, n_values: int, name: str) -> np.ndarray:
    codes = _as_array(predicted, name)
    if codes.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional, one code per image; got shape {codes.shape}"
        )
    if len(codes) == 0:
        raise ValueError(f"{name} must hold at least one code; got none")
    if codes.dtype == np.bool_ or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes; got dtype {codes.dtype}")
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= n_values:
        raise ValueError(f"{name} must be codes in [0, {n_values}); got codes from {low} to {high}")
    return codes.astype(np.int64)


def _check_min_confidence(min_confidence) -> float:
    if (
        isinstance(min_confidence, bool)
        or not isinstance(min_confidence, Real)
        or not 0 <= min_confidence <= 1
    ):
        raise ValueError(f"min_confidence must be a number in [0, 1]; got {min_confidence!r}")
    return float(min_confidence)


def _confident(confidence, min_confidence, n: int) -> np.ndarray:
    """Boolean mask of the predictions to count."""
    min_confidence = _check_min_confidence(min_confidence)
    if confidence is None:
        if min_confidence > 0:
            raise ValueError(
                f"min_confidence={min_confidence} needs confidence, one value per prediction; "
                "got confidence=None"
            )
        return np.ones(n, dtype=bool)
    values = _as_array(confidence, "confidence")
    if values.shape != (n,):
        raise ValueError(
            f"confidence must have shape ({n},), one value per prediction; got shape {values.shape}"
        )
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"confidence must hold numbers in [0, 1]; got dtype {values.dtype}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError(
            f"confidence must hold finite numbers in [0, 1]; got values from "
            f"{values.min():g} to {values.max():g}"
        )
    return values >= min_confidence


def _coverage(codes: np.ndarray, keep: np.ndarray, n_values: int, min_count: int) -> Coverage:
    counts = np.bincount(codes[keep], minlength=n_values).astype(np.int64)
    covered = counts >= min_count
    n_counted = int(keep.sum())
    if n_counted:
        p = counts[counts > 0] / n_counted
        entropy = float(-(p * np.log(p)).sum())
        kl = max(0.0, math.log(n_values) - entropy)
    else:
        entropy = kl = math.nan
    return Coverage(
        share=float(covered.sum()) / n_values,
        counts=counts,
        covered=covered,
        min_count=min_count,
        n_counted=n_counted,
        n_excluded=len(codes) - n_counted,
        entropy=entropy,
        kl_to_uniform=kl,
    )


def factor_coverage(
    predicted,
    n_combinations: int,
    *,
    min_count: int = 1,
    confidence=None,
    min_confidence: float = 0.0,
) -> Coverage:
    """The share of combinations (or of any codes' values) produced at least ``min_count`` times.

    Parameters
    ----------
    predicted : int array or Tensor, shape (N,)
        The combination (or other code) assigned to each generated image, in
        ``[0, n_combinations)``; ``N >= 1``.
    n_combinations : int
        Number of possible values, >= 1.
    min_count : int
        A value is covered when at least this many counted images have it; >= 1.
    confidence : float array or Tensor, shape (N,), optional
        Confidence of each prediction, in [0, 1].
    min_confidence : float
        In [0, 1]: predictions with confidence below it are not counted (0, the default,
        counts all). Above 0 it needs ``confidence``.

    Returns
    -------
    Coverage

    Raises
    ------
    ValueError
        If a code is out of range or not an integer, ``min_count`` or ``n_combinations`` is
        not a positive integer, or the confidences are malformed.

    Examples
    --------
    >>> result = factor_coverage([0, 0, 1, 5], 8)
    >>> result.share, result.counts.tolist()
    (0.375, [2, 1, 0, 0, 0, 1, 0, 0])
    """
    n_combinations = check_positive_int(n_combinations, "n_combinations")
    min_count = check_positive_int(min_count, "min_count")
    codes = _check_codes(predicted, n_combinations, "predicted")
    keep = _confident(confidence, min_confidence, len(codes))
    return _coverage(codes, keep, n_combinations, min_count)


def marginal_coverage(
    predicted,
    factors: ShapeFactors,
    *,
    min_count: int = 1,
    confidence=None,
    min_confidence: float = 0.0,
) -> dict[str, Coverage]:
    """Coverage of the combinations and of each factor's values, from predicted combinations.

    Parameters
    ----------
    predicted : int array or Tensor, shape (N,)
        Combination index assigned to each generated image, in
        ``[0, factors.n_combinations)``.
    factors : ShapeFactors
        The factor lists the combination index refers to.
    min_count, confidence, min_confidence
        As in :func:`factor_coverage`, applied to every entry.

    Returns
    -------
    dict of str to Coverage
        ``"combination"``, then ``"shape"``, ``"colour"``, ``"position"``, ``"size"``: for a
        factor, the share of its values that at least ``min_count`` counted images have (a
        colour is covered when some images of that colour are produced, whatever their other
        factors).
    """
    if not isinstance(factors, ShapeFactors):
        raise ValueError(f"factors must be a ShapeFactors; got {type(factors).__name__}")
    min_count = check_positive_int(min_count, "min_count")
    codes = _check_codes(predicted, factors.n_combinations, "predicted")
    keep = _confident(confidence, min_confidence, len(codes))
    result = {"combination": _coverage(codes, keep, factors.n_combinations, min_count)}
    decoded = factors.decode(codes)
    for factor, n_values in zip(FACTOR_NAMES, factors.factor_sizes, strict=True):
        result[factor] = _coverage(decoded[factor], keep, n_values, min_count)
    return result
