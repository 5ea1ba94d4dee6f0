"""Batched linear algebra for covariance matrices that may be singular, and the checks of them.

Self-consuming loops drive covariances towards zero, and fits to fewer samples than dimensions
are rank deficient, so every routine here works for positive *semi*-definite input and never
returns NaN for it. All functions accept leading batch dimensions.

The checks are here too, so that every metric refuses garbage the same way:
:func:`check_finite_replicates` (NaN / inf, naming the bad replicate) and :func:`check_psd`
(a covariance must be finite, symmetric and positive semi-definite). :func:`psd_sqrt` and
:func:`psd_factor` run the same checks on their input, reusing the eigenvalues or the Cholesky
factor they compute anyway.

Tolerance of :func:`check_psd`
------------------------------
A covariance computed in floating point is positive semi-definite only up to round-off: a
rank-deficient sample covariance (``n <= d``, or a collapsed model) has exact zero
eigenvalues that come out as tiny negative numbers, and ``X.T @ X`` need not be exactly
symmetric. A matrix ``C`` of dtype ``t`` is accepted when

- ``max |C - C.T| <= rtol(t) * max |C| + tiny(t)`` (symmetric), and
- ``min eigenvalue >= -(rtol(t) * max |eigenvalue| + tiny(t))`` (eigenvalues of
  ``(C + C.T) / 2``),

with ``rtol(float64) = 1e6 * eps = 2.2e-10`` and ``rtol(float32) = 1e3 * eps = 1.2e-4``, the
rule of ``scipy.stats.multivariate_normal`` (``scipy.stats._multivariate._eigvalsh_to_eps``);
``float16``/``bfloat16`` get ``10 * eps`` of their own type and integer matrices the float64
rule. ``tiny(t)`` is the smallest normal number of ``t``: it only matters for covariances near
underflow (a model collapsed for many generations), whose round-off is absolute, not relative.
Both bounds are relative to the matrix's own scale, so a collapsed covariance (all zeros, or
all tiny) is accepted like any other. Sample covariances computed stably (centred data, or
pooled sufficient statistics) stay far inside them: rank-deficient float32 covariances come out
around ``-1e-6`` times their largest eigenvalue, float64 ones around ``-1e-15``. A matrix
converted from float32 to float64 keeps its float32 round-off, so check it before the
conversion (every metric here checks its arguments in the dtype it is given).
"""

from __future__ import annotations

import numpy as np
import torch

from madutils._validation import check_finite

__all__ = [
    "PSD_RTOL",
    "check_finite_replicates",
    "check_psd",
    "psd_factor",
    "psd_rtol",
    "psd_sqrt",
    "trace_sqrt_product",
]

#: Relative round-off tolerance of :func:`check_psd`, by dtype (the module docstring says why).
PSD_RTOL = {
    torch.float64: 1e6 * torch.finfo(torch.float64).eps,
    torch.float32: 1e3 * torch.finfo(torch.float32).eps,
    torch.float16: 10 * torch.finfo(torch.float16).eps,
    torch.bfloat16: 10 * torch.finfo(torch.bfloat16).eps,
}


def psd_rtol(dtype: torch.dtype) -> float:
    """Relative tolerance of :func:`check_psd` for ``dtype`` (float64's if not floating)."""
    return PSD_RTOL.get(dtype, PSD_RTOL[torch.float64])


def _tiny(dtype: torch.dtype) -> float:
    return torch.finfo(dtype if dtype in PSD_RTOL else torch.float64).tiny


# ---------------------------------------------------------------------------------- checks


def _as_checkable(data) -> torch.Tensor:
    return data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))


def _batch_shape(shape: torch.Size, core_ndim: int | None) -> torch.Size:
    """Leading (replicate) dimensions of ``shape`` when its last ``core_ndim`` are one item."""
    if core_ndim is None or len(shape) <= core_ndim:
        return torch.Size()
    return shape[: len(shape) - core_ndim]


def _first(bad: torch.Tensor) -> tuple[int, ...]:
    """Index of the first True entry of ``bad`` (``()`` for a 0-d tensor)."""
    return tuple(torch.nonzero(bad)[0].tolist()) if bad.ndim else ()


def _where(bad: torch.Tensor) -> str:
    """`` in replicate 3`` (the first True entry of a batch mask); empty without a batch."""
    if not bad.ndim:
        return ""
    first = _first(bad)
    return f" in replicate {first[0]}" if bad.ndim == 1 else f" in batch entry {first}"


def _how_many(bad: torch.Tensor, items: str) -> str:
    """``3 of 10 items`` for a batch mask; empty without a batch."""
    return f"{int(bad.sum())} of {bad.numel()} {items}" if bad.ndim else ""


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _describe_non_finite(tensor: torch.Tensor, core_ndim: int | None) -> str:
    """What is wrong and where, for a floating tensor known to hold NaN or inf (failure path)."""
    tests = (("NaN", torch.isnan), ("inf", torch.isinf))
    what = " and ".join(kind for kind, test in tests if bool(test(tensor).any()))
    batch = _batch_shape(tensor.shape, core_ndim)
    if batch:
        bad = ~torch.isfinite(tensor.reshape(*batch, -1)).all(-1)
        return f"got {what}{_where(bad)} ({_how_many(bad, 'replicates')})"
    if tensor.ndim:
        return f"got {what} at index {_first(~torch.isfinite(tensor))}"
    return f"got {what}"


def check_finite_replicates(
    data, name: str, *, core_ndim: int | None = None, chunk_rows: int | None = None
):
    """Raise ``ValueError`` if ``data`` holds NaN or infinite values, naming the bad replicate.

    The test is :func:`madutils._validation.check_finite` (one ``isfinite`` pass); only when it
    fails is the input searched again to say where (which replicate, as an index along the
    leading dimensions, and how many) and what (NaN, inf). No loop over replicates.

    Parameters
    ----------
    data : Tensor or array
    name : str
        The argument's name, which the message starts with.
    core_ndim : int, optional
        Number of trailing dimensions that make one item (2 for sample sets ``(n, d)`` and
        covariances ``(d, d)``, 1 for means ``(d,)``); the dimensions before them are
        replicates. None, or an input without leading dimensions, reports the index of the
        first non-finite entry instead.
    chunk_rows : int, optional
        Check the rows of a tensor (along its last dimension) this many at a time, which
        bounds the temporaries ``isfinite`` builds for very large inputs.

    Returns
    -------
    data
        Unchanged.

    Examples
    --------
    >>> samples = torch.zeros(4, 10, 2)
    >>> samples[2, 5, 1] = float("nan")
    >>> check_finite_replicates(samples, "samples", core_ndim=2)
    Traceback (most recent call last):
    ...
    ValueError: samples contains NaN or infinite values; ...; got NaN in replicate 2 (1 of 4 ...
    """
    try:
        if chunk_rows is None or not isinstance(data, torch.Tensor) or data.ndim == 0:
            check_finite(data, name)
        else:
            for part in data.reshape(-1, data.shape[-1]).split(max(1, int(chunk_rows))):
                check_finite(part, name)
    except ValueError as err:
        where = _describe_non_finite(_as_checkable(data), core_ndim)
        raise ValueError(f"{err}; {where}") from None
    return data


def _check_square(cov: torch.Tensor, name: str) -> None:
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(
            f"{name} must be a covariance matrix of shape (..., d, d); got shape {tuple(cov.shape)}"
        )


def _check_symmetric(cov: torch.Tensor, name: str) -> None:
    rtol, tiny = psd_rtol(cov.dtype), _tiny(cov.dtype)
    asymmetry = (cov - cov.mT).abs().amax(dim=(-2, -1))
    allowed = rtol * cov.abs().amax(dim=(-2, -1)) + tiny
    bad = asymmetry > allowed
    if bool(bad.any()):
        at = _first(bad)
        count = f"; got {_how_many(bad, 'matrices')} beyond it" if bad.ndim else ""
        raise ValueError(
            f"{name} is not symmetric: the largest |{name} - {name}.T| is "
            f"{float(asymmetry[at]):.6g}{_where(bad)} (tolerance {float(allowed[at]):.3g}: "
            f"{rtol:.3g} times its largest absolute entry, the round-off allowance for "
            f"{_dtype_name(cov.dtype)}; see madutils.linalg){count}"
        )


def _check_eigenvalues(
    eigenvalues: torch.Tensor, dtype: torch.dtype, name: str, rows_of: torch.Tensor | None = None
) -> None:
    """Refuse eigenvalues ``(..., d)`` below the round-off tolerance for matrices of ``dtype``.

    With ``rows_of`` (a boolean batch mask), ``eigenvalues`` has one row per True entry of it,
    in order (what ``cov[rows_of]`` selects), and the message gives indices into the full
    batch.
    """
    rtol, tiny = psd_rtol(dtype), _tiny(dtype)
    smallest = eigenvalues.amin(-1)
    largest = eigenvalues.abs().amax(-1)
    allowed = rtol * largest + tiny
    bad = smallest < -allowed
    if not bool(bad.any()):
        return
    at = _first(bad)
    if rows_of is not None:
        full = torch.zeros_like(rows_of)
        full[rows_of] = bad
        bad = full
    count = f"; got {_how_many(bad, 'matrices')} beyond it" if bad.ndim else ""
    raise ValueError(
        f"{name} is not positive semi-definite: its smallest eigenvalue is "
        f"{float(smallest[at]):.6g}{_where(bad)} (tolerance {-float(allowed[at]):.3g}: "
        f"{rtol:.3g} times its largest absolute eigenvalue {float(largest[at]):.6g}, the "
        f"round-off allowance for {_dtype_name(dtype)}; see madutils.linalg){count}"
    )


def _scaled_eigenvalues(sym: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of symmetric ``sym`` (..., d, d) for the check, in float64.

    Each matrix is first scaled by a power of two (exact) so that its largest entry is about
    1: ``eigvalsh`` can fail to converge on matrices of tiny norm (collapsed float32
    covariances), and float64 holds every input dtype exactly. The result is scaled back.
    """
    sym = sym.to(torch.float64)
    _, exponent = torch.frexp(sym.abs().amax(dim=(-2, -1), keepdim=True))
    exponent = exponent.clamp(-1000, 1000)
    return torch.ldexp(torch.linalg.eigvalsh(torch.ldexp(sym, -exponent)), exponent[..., 0])


def check_psd(cov, name: str):
    """Raise ``ValueError`` unless ``cov`` holds finite, symmetric, PSD matrices.

    The tolerance, relative to each matrix's own scale, is in the module docstring; an all-zero
    (collapsed) or rank-deficient covariance is accepted. A batch is checked in one
    ``isfinite`` pass and one batched ``eigvalsh``; the message names the first bad replicate.

    Parameters
    ----------
    cov : Tensor or array, shape (..., d, d)
        Covariance matrices; leading dimensions are replicates (seeds, components).
    name : str
        The argument's name, which the message starts with.

    Returns
    -------
    cov
        Unchanged.

    Examples
    --------
    >>> check_psd(torch.zeros(3, 2, 2), "cov").shape
    torch.Size([3, 2, 2])
    >>> check_psd(-torch.eye(2), "cov_b")
    Traceback (most recent call last):
    ...
    ValueError: cov_b is not positive semi-definite: its smallest eigenvalue is -1 ...
    """
    tensor = _as_checkable(cov)
    _check_square(tensor, name)
    check_finite_replicates(tensor, name, core_ndim=2)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    _check_symmetric(tensor, name)
    _check_eigenvalues(_scaled_eigenvalues(0.5 * (tensor + tensor.mT)), tensor.dtype, name)
    return cov


# ---------------------------------------------------------------------------------- routines


def _sqrt_with_eigenvalues(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sym = 0.5 * (cov + cov.mT)
    eigenvalues, eigenvectors = torch.linalg.eigh(sym)
    root = eigenvalues.clamp_min(0).sqrt()
    return (eigenvectors * root.unsqueeze(-2)) @ eigenvectors.mT, eigenvalues


def psd_sqrt(cov: torch.Tensor, *, name: str = "cov") -> torch.Tensor:
    """Symmetric square root of positive semi-definite matrices.

    Negative eigenvalues from round-off are clipped to zero. The input is checked like
    :func:`check_psd` (finite, symmetric, PSD within the round-off tolerance), with the
    eigenvalues the square root computes anyway.

    Parameters
    ----------
    cov : Tensor, shape (..., d, d)
    name : str, default "cov"
        The argument's name in error messages.

    Returns
    -------
    Tensor, shape (..., d, d)
        ``R`` symmetric with ``R @ R = cov`` (up to round-off).
    """
    _check_square(cov, name)
    check_finite_replicates(cov, name, core_ndim=2)
    _check_symmetric(cov, name)
    root, eigenvalues = _sqrt_with_eigenvalues(cov)
    _check_eigenvalues(eigenvalues, cov.dtype, name)
    return root


def psd_factor(cov: torch.Tensor, *, name: str = "cov") -> torch.Tensor:
    """A factor ``L`` with ``L @ L.mT = cov`` for positive semi-definite matrices.

    Uses the Cholesky factor where it exists and the symmetric square root for the batch
    entries where it fails (singular or numerically indefinite covariances), so it is as fast
    as Cholesky in the common case and still correct for collapsed models. The input is
    checked like :func:`check_psd`: a successful Cholesky factorisation proves a matrix
    positive definite, and the eigenvalues of the square root check the others.

    Parameters
    ----------
    cov : Tensor, shape (..., d, d)
    name : str, default "cov"
        The argument's name in error messages.

    Returns
    -------
    Tensor, shape (..., d, d)
    """
    _check_square(cov, name)
    check_finite_replicates(cov, name, core_ndim=2)
    _check_symmetric(cov, name)
    factor, info = torch.linalg.cholesky_ex(cov)
    failed = info != 0
    if bool(failed.any()):
        factor = factor.clone()
        root, eigenvalues = _sqrt_with_eigenvalues(cov[failed])
        _check_eigenvalues(eigenvalues, cov.dtype, name, rows_of=failed)
        factor[failed] = root
    return factor


def trace_sqrt_product(factor_a: torch.Tensor, factor_b: torch.Tensor) -> torch.Tensor:
    """``tr((A B)^{1/2})`` for PSD ``A = Fa.mT @ Fa`` and ``B = Fb.mT @ Fb``.

    The eigenvalues of ``A B`` are the squared singular values of ``Fa @ Fb.mT``, so the trace
    of the square root is that matrix's nuclear norm: real, non-negative and finite even when
    ``A`` or ``B`` is singular. ``Fa`` may be a symmetric square root of ``A`` (shape
    ``(..., d, d)``) or centred data scaled by ``1/sqrt(n - 1)`` (shape ``(..., n, d)``), which is
    cheaper when ``n < d``. Any real factor gives a PSD product, so only the callers' checks of
    the covariances or data the factors come from apply.

    Parameters
    ----------
    factor_a : Tensor, shape (..., m, d)
    factor_b : Tensor, shape (..., p, d)

    Returns
    -------
    Tensor, shape (...)
    """
    return torch.linalg.svdvals(factor_a @ factor_b.mT).sum(-1)
