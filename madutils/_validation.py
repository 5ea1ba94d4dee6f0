"""Input checks shared by the whole package.

Every public entry point validates its arguments here, so that bad input fails early with a
message that names the parameter, the allowed values and what was given. Nothing in this module
fixes input silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
import torch

__all__ = [
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_generator",
    "check_lam",
    "check_nonnegative_int",
    "check_positive_number",
    "check_positive_int",
    "check_same_dim",
]


def check_choice(value: str, name: str, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; raise ``ValueError`` otherwise."""
    allowed = tuple(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as ``int`` if it is an integer >= 1; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value!r}")
    return int(value)


def check_nonnegative_int(value, name: str) -> int:
    """Return ``value`` as ``int`` if it is an integer >= 0; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (>= 0); got {value!r}")
    return int(value)


def check_generator(rng, name: str = "rng") -> torch.Generator:
    """Return ``rng`` if it is a ``torch.Generator``; raise ``ValueError`` otherwise."""
    if not isinstance(rng, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator; got {type(rng).__name__}")
    return rng


def check_positive_number(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as ``float`` if it is a finite number > 0 (>= 0 with ``allow_zero``)."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    return float(value)


def _check_unit_interval(value, name: str, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number in (0, 1]{meaning}; got {value!r}")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1]{meaning}; got {value!r}")
    return float(value)


def check_lam(value, name: str = "lam") -> float:
    """Validate a sampling-bias parameter lambda: it must lie in (0, 1]; 1 means unbiased."""
    return _check_unit_interval(value, name, " (1 = unbiased sampling, smaller = less diverse)")


def check_fraction(value, name: str) -> float:
    """Validate a fraction that must lie in (0, 1]."""
    return _check_unit_interval(value, name, "")


def check_finite(data, name: str):
    """Raise ``ValueError`` if the array or tensor ``data`` holds NaN or infinite values."""
    if isinstance(data, torch.Tensor):
        ok = bool(torch.isfinite(data).all()) if data.is_floating_point() else True
    else:
        arr = np.asarray(data)
        ok = bool(np.isfinite(arr).all()) if np.issubdtype(arr.dtype, np.floating) else True
    if not ok:
        raise ValueError(f"{name} contains NaN or infinite values; all entries must be finite")
    return data


def check_same_dim(a, b, name_a: str, name_b: str) -> int:
    """Check that two sample sets have the same feature dimension (last axis); return it."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of features (last dimension); "
            f"got {a.shape[-1]} and {b.shape[-1]}"
        )
    return int(a.shape[-1])
