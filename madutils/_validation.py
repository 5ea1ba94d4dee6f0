"""Input checks shared by the whole package.

Every public entry point validates its arguments here, so that bad input fails early with a
message that names the parameter, the allowed values and what was given. Nothing in this module
fixes input silently.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
import torch

__all__ = [
    "allows_tuple",
    "check_choice",
    "check_decay",
    "check_finite",
    "check_fraction",
    "check_generator",
    "check_lam",
    "check_nonnegative_int",
    "check_positive_number",
    "check_positive_int",
    "check_same_dim",
    "check_setting_value",
    "check_type",
    "describe_type",
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


def check_probability(value, name: str) -> float:
    """Validate a probability, which must lie in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability, a number in [0, 1]; got {value!r}")
    return float(value)


def check_share(value, name: str) -> float:
    """Validate a share of probability strictly between 0 and 1 (a region's real mass)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < value < 1.0:
        raise ValueError(
            f"{name} must be a number in (0, 1), a share of probability; got {value!r}"
        )
    return float(value)


def check_decay(value, name: str) -> float:
    """Validate a decay rate, which must lie in [0, 1) (0: no averaging)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


# -- types, from a dataclass field's annotation ---------------------------------------------------

_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "True or False"}
_PLURAL_WORDS = {str: "strings", int: "integers", float: "numbers", bool: "booleans"}


def _alternatives(annotation) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _tuple_element(annotation):
    """``X`` for ``tuple[X, ...]``; ``None`` for any other annotation."""
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def allows_tuple(annotation) -> bool:
    """Whether an annotation allows a tuple (``tuple[int, ...]``, ``tuple[str, ...] | None``)."""
    return any(_tuple_element(option) is not None for option in _alternatives(annotation))


def describe_type(annotation) -> str:
    """The values an annotation allows, in words: ``int | None`` is "an integer or None"."""
    words = []
    for option in _alternatives(annotation):
        element = _tuple_element(option)
        if option is type(None):
            words.append("None")
        elif element is not None:
            words.append(f"a tuple of {_PLURAL_WORDS.get(element, element.__name__)}")
        else:
            words.append(_TYPE_WORDS.get(option, getattr(option, "__name__", str(option))))
    return " or ".join(words)


def _is_instance(value, annotation) -> bool:
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, Real) and not isinstance(value, bool)
    element = _tuple_element(annotation)
    if element is not None:
        return isinstance(value, tuple | list) and all(_is_instance(v, element) for v in value)
    return isinstance(value, annotation)


def check_type(value, name: str, annotation):
    """Return ``value`` if it has a type ``annotation`` allows; raise ``ValueError`` otherwise.

    The annotations of the settings dataclasses: ``str``, ``int`` (not ``bool``), ``float``
    (any real number but ``bool``), ``bool``, ``tuple[X, ...]`` (a tuple or a list of ``X``,
    returned as a tuple) and unions of these with ``None``. A string is never taken for a
    tuple of its characters.

    Raises
    ------
    ValueError
        Naming ``name``, the allowed types (:func:`describe_type`) and the value given.
    """
    for option in _alternatives(annotation):
        if _is_instance(value, option):
            return tuple(value) if _tuple_element(option) is not None else value
    raise ValueError(
        f"{name} must be {describe_type(annotation)}; got {value!r} ({type(value).__name__})"
    )


def check_setting_value(value, name: str, annotation, check=None):
    """Check a setting: its type (:func:`check_type`), then its range with ``check``.

    Parameters
    ----------
    value
        The value given.
    name : str
        How messages name the setting.
    annotation
        The setting's type annotation.
    check : callable, optional
        ``check(value, name)``, raising ``ValueError`` for a value out of range (not called
        for ``None``).

    Returns
    -------
    The value (a list given for a tuple comes back as a tuple).

    Raises
    ------
    ValueError
        Naming the setting, what is allowed and what was given. For a value of the wrong type
        of a required single-valued setting, ``check``'s own message where it has one (it says
        more precisely what is allowed: "a positive integer (>= 1)").
    """
    try:
        value = check_type(value, name, annotation)
    except ValueError:
        single = _tuple_element(annotation) is None and len(_alternatives(annotation)) == 1
        if check is not None and single:
            check(value, name)  # raises its own message for most wrongly typed values
        raise
    if value is not None and check is not None:
        check(value, name)
    return value


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
