"""k-NN manifold metrics: precision, recall, density and coverage, blocked and batched in torch.

Precision and recall are those of Kynkäänniemi et al. (2019), density and coverage those of
Naeem et al. (2020). They compare a set of *real* feature vectors with a set of *synthetic*
(generated) ones through k-nearest-neighbour balls. This module works on features only: it never
sees images and never downloads a feature extractor.

Conventions (pinned; the tests check them against ``prdc`` 0.2)
----------------------------------------------------------------
* Argument order is always ``(real, synthetic)``. The metrics are not symmetric: swapping the two
  sets swaps the meaning of precision and recall (and changes density and coverage).
* Distances are Euclidean.
* ``k = 5`` by default. The radius of a point is the distance to its ``k``-th nearest neighbour
  *within its own set*, excluding the point itself, i.e. the ``(k + 1)``-th smallest distance
  counting the zero self-distance (exactly ``prdc.compute_nearest_neighbour_distances``).
  Duplicated points count as neighbours (at distance 0, up to round-off; see below).
* Membership in a ball uses ``<=`` (as in the Kynkäänniemi et al. reference implementation).
  With ``r_i`` the radius of real point ``i`` and ``s_j`` that of synthetic point ``j``:

  - precision = share of synthetic ``j`` with ``d(fake_j, real_i) <= r_i`` for some real ``i``;
  - recall = share of real ``i`` with ``d(real_i, fake_j) <= s_j`` for some synthetic ``j``;
  - density = ``1 / (k M) * sum_j sum_i 1[d(fake_j, real_i) <= r_i]`` (can exceed 1);
  - coverage = share of real ``i`` with ``min_j d(real_i, fake_j) <= r_i``.

  ``prdc`` 0.2 uses ``<`` instead. The two agree except on exact ties (a distance equal to a
  radius, e.g. duplicated points or points on a lattice), where the values here are ``>=``
  prdc's.

Computation
-----------
Distances come from the expansion ``||x||^2 + ||y||^2 - 2 x.y`` (clamped at 0), as in
scikit-learn and prdc; self-distances are set to exactly 0, so a point is always its own nearest
neighbour. Other exact duplicates get distance 0 only up to the round-off of that expansion (as
in prdc); ties are exact when the arithmetic is (e.g. small-integer features). Balls are tested
on squared distances against squared radii, which is the same test up to floating-point rounding
and saves a square root per pair. No full ``N x M`` or ``N x N`` matrix is ever built: rows
are processed in blocks (``block_size`` rows at a time; by default as many as fit a distance
block of about 128 MiB), so memory is ``O(block_size * N)`` beyond the inputs. The radii use a
blocked ``torch.topk``; all four metrics then come from one blocked pass over synthetic x real
pairs.

NaN or infinite features are refused with a ``ValueError`` naming the set (``real``,
``synthetic``, ``features``) and, for a batch, the first bad seed: a NaN distance is never
inside a ball, so the scores would otherwise look plausible.

Everything runs on the device of the input tensors, in their dtype (float32 stays float32,
float64 stays float64; float16/bfloat16 are computed in float32, integers in torch's default
dtype; two different dtypes are promoted, and :meth:`ManifoldReference.compute` uses the dtype of
the real features). NumPy arrays are accepted and converted.

Batching over seeds: ``real`` may be ``(N, D)`` or ``(S, N, D)`` and ``synthetic`` ``(M, D)`` or
``(S, M, D)``; batch dimensions broadcast (the main use is one real set against ``S`` synthetic
sets). Results have the broadcast batch shape: ``()`` for unbatched inputs, ``(S,)`` otherwise.

To evaluate many generations against the same real data, build a :class:`ManifoldReference`
once: it stores the real features and their radii, so each call only costs the synthetic radii
and the cross pass.

References
----------
Kynkäänniemi, Karras, Laine, Lehtinen, Aila (2019). Improved Precision and Recall Metric for
Assessing Generative Models. NeurIPS.
Naeem, Oh, Uh, Choi, Yoo (2020). Reliable Fidelity and Diversity Metrics for Generative Models.
ICML.
"""

from __future__ import annotations

import numpy as np
import torch

from madutils._validation import check_positive_int, check_same_dim
from madutils.linalg import check_finite_replicates

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "METRIC_NAMES",
    "ManifoldReference",
    "knn_radii",
    "precision_recall_density_coverage",
]

#: Target size of one block of pairwise distances when ``block_size`` is None (128 MiB).
DEFAULT_BLOCK_BYTES = 128 * 2**20

# Elements per chunk when checking inputs for NaN / inf (bounds the temporaries to ~100 MiB).
_FINITE_CHECK_ELEMENTS = 2**23

#: Keys of the dictionaries returned by the metric functions, in this order.
METRIC_NAMES = ("precision", "recall", "density", "coverage")


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def _as_tensor(data, name: str, device: torch.device | None = None) -> torch.Tensor:
    """Convert ``data`` to a floating tensor of shape (N, D) or (S, N, D); validate it."""
    if isinstance(data, torch.Tensor):
        tensor = data
    else:
        tensor = torch.as_tensor(np.asarray(data), device=device)
    if tensor.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (n_samples, n_features) or "
            f"(n_seeds, n_samples, n_features); got shape {tuple(tensor.shape)}"
        )
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    elif tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.to(torch.float32)
    # In chunks of rows: torch.isfinite builds temporaries several times the input's size.
    chunk = max(1, _FINITE_CHECK_ELEMENTS // max(1, tensor.shape[-1]))
    check_finite_replicates(tensor, name, core_ndim=2, chunk_rows=chunk)
    return tensor


def _as_pair(real, synthetic) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert both sets to tensors on one device with one dtype; check their shapes."""
    device = None
    for data in (real, synthetic):
        if isinstance(data, torch.Tensor):
            device = data.device
            break
    real_t = _as_tensor(real, "real", device)
    synthetic_t = _as_tensor(synthetic, "synthetic", device)
    if real_t.device != synthetic_t.device:
        raise ValueError(
            f"real and synthetic must be on the same device; got {real_t.device} and "
            f"{synthetic_t.device}"
        )
    check_same_dim(real_t, synthetic_t, "real", "synthetic")
    _broadcast_batch(real_t, synthetic_t)
    dtype = torch.promote_types(real_t.dtype, synthetic_t.dtype)
    return real_t.to(dtype), synthetic_t.to(dtype)


def _broadcast_batch(real: torch.Tensor, synthetic: torch.Tensor) -> tuple[int, ...]:
    """Broadcast batch shape of two (…, n, D) tensors; ``ValueError`` if incompatible."""
    try:
        return tuple(torch.broadcast_shapes(real.shape[:-2], synthetic.shape[:-2]))
    except RuntimeError:
        raise ValueError(
            "the batch (seed) dimensions of real and synthetic must be equal or one of them "
            f"absent or 1; got real shape {tuple(real.shape)} and synthetic shape "
            f"{tuple(synthetic.shape)}"
        ) from None


def _check_k(k, n_samples: int, what: str, symbol: str) -> int:
    k = check_positive_int(k, "k")
    if k >= n_samples:
        raise ValueError(
            f"k must be smaller than the number of {what} ({symbol}={n_samples}); got k={k}"
        )
    return k


def _check_block_size(block_size) -> int | None:
    if block_size is None:
        return None
    return check_positive_int(block_size, "block_size")


def _rows_per_block(
    block_size: int | None, n_rows: int, n_cols: int, n_batch: int, dtype: torch.dtype
) -> int:
    """Rows per block: ``block_size`` if given, else what fits ``DEFAULT_BLOCK_BYTES``."""
    if block_size is None:
        itemsize = torch.empty((), dtype=dtype).element_size()
        block_size = max(1, DEFAULT_BLOCK_BYTES // (n_batch * n_cols * itemsize))
    return max(1, min(block_size, n_rows))


# ---------------------------------------------------------------------------------------------
# Blocked squared distances
# ---------------------------------------------------------------------------------------------


def _sq_dists_into(
    out: torch.Tensor,
    x: torch.Tensor,
    x_sq: torch.Tensor,
    y: torch.Tensor,
    y_sq: torch.Tensor,
) -> torch.Tensor:
    """Squared distances between rows of ``x`` (Sx, b, D) and ``y`` (Sy, n, D) into ``out``.

    ``Sx`` and ``Sy`` are equal or one of them is 1; ``out`` is contiguous with shape
    (S, b, n). ``x_sq`` (Sx, b) and ``y_sq`` (Sy, n) are the squared norms.

    The result is *not* clamped at 0: round-off can leave tiny negative values. Callers only
    compare them with non-negative squared radii or take order statistics, which commute with
    clamping, so they clamp the few values they keep instead of the whole block.
    """
    n_batch, rows, cols = out.shape
    if y.shape[0] == 1:
        # One shared y: a single large GEMM over all batch entries of x.
        flat = out.view(n_batch * rows, cols)
        x_flat = x.expand(n_batch, rows, x.shape[-1]).reshape(n_batch * rows, -1)
        torch.addmm(y_sq[0].unsqueeze(0), x_flat, y[0].mT, alpha=-2.0, out=flat)
    else:
        x_b = x.expand(n_batch, rows, x.shape[-1])
        torch.baddbmm(y_sq.unsqueeze(-2), x_b, y.mT, alpha=-2.0, out=out)
    return out.add_(x_sq.unsqueeze(-1))


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("...i,...i->...", x, x)


def _knn_radii_sq(features: torch.Tensor, k: int, block_size: int | None) -> torch.Tensor:
    """Squared k-NN radii of (S, N, D) features; returns (S, N). Inputs already validated."""
    n_batch, n, _ = features.shape
    sq = _sq_norms(features)
    rows = _rows_per_block(block_size, n, n, n_batch, features.dtype)
    buffer = torch.empty(n_batch * rows * n, dtype=features.dtype, device=features.device)
    radii_sq = torch.empty((n_batch, n), dtype=features.dtype, device=features.device)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = buffer[: n_batch * (stop - start) * n].view(n_batch, stop - start, n)
        _sq_dists_into(block, features[:, start:stop], sq[:, start:stop], features, sq)
        # A point is its own nearest neighbour at distance exactly 0 (round-off may say > 0).
        torch.diagonal(block, offset=start, dim1=-2, dim2=-1).zero_()
        nearest = torch.topk(block, k + 1, dim=-1, largest=False, sorted=False).values
        radii_sq[:, start:stop] = nearest.amax(dim=-1).clamp_(min=0)
    return radii_sq


def knn_radii(features, k: int = 5, block_size: int | None = None) -> torch.Tensor:
    """Distance from each point to its ``k``-th nearest neighbour in the same set.

    The point itself is excluded (it is the 0-th neighbour at distance 0), so this is the
    ``(k + 1)``-th smallest distance counting the self-distance, as in prdc. Computed in blocks
    of rows with ``torch.topk``; memory beyond the input is ``O(block_size * N)``.

    Parameters
    ----------
    features : Tensor or ndarray, shape (N, D) or (S, N, D)
        Feature vectors; with a leading dimension, each of the ``S`` sets is treated
        separately.
    k : int, default 5
        Number of the neighbour, ``1 <= k < N``.
    block_size : int or None, default None
        Rows per block; None picks a block of about ``DEFAULT_BLOCK_BYTES`` of distances.

    Returns
    -------
    Tensor, shape (N,) or (S, N)
        Euclidean k-NN radii, on the device and in the dtype of ``features``.
    """
    tensor = _as_tensor(features, "features")
    k = _check_k(k, tensor.shape[-2], "samples", "N")
    block_size = _check_block_size(block_size)
    batched = tensor.ndim == 3
    radii = _knn_radii_sq(tensor if batched else tensor.unsqueeze(0), k, block_size).sqrt_()
    return radii if batched else radii[0]


# ---------------------------------------------------------------------------------------------
# The cross pass
# ---------------------------------------------------------------------------------------------


def _cross_metrics(
    real: torch.Tensor,
    real_sq: torch.Tensor,
    real_radii_sq: torch.Tensor,
    synthetic: torch.Tensor,
    synthetic_radii_sq: torch.Tensor,
    k: int,
    block_size: int | None,
) -> dict[str, torch.Tensor]:
    """All four metrics in one blocked pass over synthetic x real pairs.

    ``real`` is (Sr, N, D), ``synthetic`` (Sf, M, D), radii (Sr, N) and (Sf, M); returns
    tensors of shape (S,) with ``S = max(Sr, Sf)``.
    """
    n_batch = max(real.shape[0], synthetic.shape[0])
    n_real, m_fake = real.shape[1], synthetic.shape[1]
    dtype, device = real.dtype, real.device
    synthetic_sq = _sq_norms(synthetic)
    rows = _rows_per_block(block_size, m_fake, n_real, n_batch, dtype)

    dist_buffer = torch.empty(n_batch * rows * n_real, dtype=dtype, device=device)
    mask_buffer = torch.empty(n_batch * rows * n_real, dtype=torch.bool, device=device)
    real_radii_row = real_radii_sq.unsqueeze(-2)  # (Sr, 1, N)

    # Row counts are summed in floating point (exact: float32 holds integers up to 2**24).
    count_dtype = dtype if n_real < 2**24 else torch.float64
    in_real_ball = torch.zeros(n_batch, dtype=torch.int64, device=device)  # for precision
    ball_count = torch.zeros(n_batch, dtype=torch.int64, device=device)  # for density
    recalled = torch.zeros((n_batch, n_real), dtype=torch.bool, device=device)
    nearest_fake = torch.full((n_batch, n_real), torch.inf, dtype=dtype, device=device)

    for start in range(0, m_fake, rows):
        stop = min(start + rows, m_fake)
        size = n_batch * (stop - start) * n_real
        dist = dist_buffer[:size].view(n_batch, stop - start, n_real)
        mask = mask_buffer[:size].view(n_batch, stop - start, n_real)
        _sq_dists_into(dist, synthetic[:, start:stop], synthetic_sq[:, start:stop], real, real_sq)
        # Coverage: running (squared, unclamped) distance from each real point to its nearest
        # synthetic point; negative round-off compares with the radii exactly as 0 would.
        torch.minimum(nearest_fake, dist.amin(dim=-2), out=nearest_fake)
        # Recall: real i inside the k-NN ball of some synthetic j of this block.
        torch.le(dist, synthetic_radii_sq[:, start:stop].unsqueeze(-1), out=mask)
        recalled |= mask.any(dim=-2)
        # Precision and density: synthetic j inside the k-NN ball of real i. The comparison
        # overwrites the distances with 1.0 / 0.0 in place (float row sums are much faster
        # than bool ones on the CPU, and exact for counts below 2**24).
        per_fake = dist.le_(real_radii_row).sum(dim=-1, dtype=count_dtype).long()  # (S, b)
        ball_count += per_fake.sum(dim=-1)
        in_real_ball += (per_fake > 0).sum(dim=-1)

    covered = nearest_fake <= real_radii_sq
    return {
        "precision": in_real_ball.to(dtype) / m_fake,
        "recall": recalled.sum(dim=-1).to(dtype) / n_real,
        "density": ball_count.to(dtype) / (k * m_fake),
        "coverage": covered.sum(dim=-1).to(dtype) / n_real,
    }


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


class ManifoldReference:
    """Real features with their k-NN radii, cached to score many synthetic sets.

    Build it once per real data set; :meth:`compute` then only needs the synthetic radii and
    one pass over synthetic x real pairs, so the real radii are not recomputed each generation.

    Parameters
    ----------
    real : Tensor or ndarray, shape (N, D) or (S, N, D)
        Real feature vectors (one set, or one per seed). Kept by reference, on its device and
        in its dtype (see the module docstring for dtype handling).
    k : int, default 5
        Neighbour used for the radii, ``1 <= k < N``; each synthetic set must have more than
        ``k`` samples too.
    block_size : int or None, default None
        Rows per block for all blocked passes; None picks blocks of about
        ``DEFAULT_BLOCK_BYTES`` of distances.

    Attributes
    ----------
    real : Tensor, shape (N, D) or (S, N, D)
        The real features as a tensor.
    radii : Tensor, shape (N,) or (S, N)
        Distance from each real point to its ``k``-th nearest real neighbour.
    k : int
    block_size : int or None

    Examples
    --------
    >>> import torch
    >>> reference = ManifoldReference(torch.randn(1000, 16), k=5)
    >>> generations = [torch.randn(800, 16), 0.5 * torch.randn(3, 800, 16)]
    >>> scores = [reference.compute(synthetic) for synthetic in generations]
    >>> scores[1]["precision"].shape
    torch.Size([3])
    """

    def __init__(self, real, *, k: int = 5, block_size: int | None = None) -> None:
        real_t = _as_tensor(real, "real")
        self._setup(real_t, _check_k(k, real_t.shape[-2], "real samples", "N"), block_size)

    @classmethod
    def _from_validated(cls, real: torch.Tensor, k: int, block_size: int | None):
        reference = cls.__new__(cls)
        reference._setup(real, k, block_size)
        return reference

    def _setup(self, real: torch.Tensor, k: int, block_size: int | None) -> None:
        self.real = real
        self.k = k
        self.block_size = _check_block_size(block_size)
        self._real3 = real if real.ndim == 3 else real.unsqueeze(0)
        self._real_sq = _sq_norms(self._real3)
        self._radii_sq = _knn_radii_sq(self._real3, k, self.block_size)
        radii = self._radii_sq.sqrt()
        self.radii = radii if real.ndim == 3 else radii[0]

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.real.shape)
        return (
            f"ManifoldReference(real={shape} {self.real.dtype} on {self.real.device}, "
            f"k={self.k}, block_size={self.block_size})"
        )

    def compute(self, synthetic) -> dict[str, torch.Tensor]:
        """Precision, recall, density and coverage of ``synthetic`` against the real set.

        Parameters
        ----------
        synthetic : Tensor or ndarray, shape (M, D) or (S, M, D)
            Synthetic feature vectors; converted to the device and dtype of the real
            features. A batch dimension broadcasts against that of the real features.

        Returns
        -------
        dict of str to Tensor
            Keys ``"precision"``, ``"recall"``, ``"density"``, ``"coverage"``; each value has
            the broadcast batch shape (``()`` if neither input has a batch dimension).
        """
        synthetic_t = _as_tensor(synthetic, "synthetic", self.real.device)
        if synthetic_t.device != self.real.device:
            raise ValueError(
                f"synthetic must be on the device of the real features ({self.real.device}); "
                f"got {synthetic_t.device}"
            )
        check_same_dim(self.real, synthetic_t, "real", "synthetic")
        _broadcast_batch(self.real, synthetic_t)
        _check_k(self.k, synthetic_t.shape[-2], "synthetic samples", "M")
        return self._compute(synthetic_t.to(self.real.dtype))

    def _compute(self, synthetic: torch.Tensor) -> dict[str, torch.Tensor]:
        """The metrics for a validated synthetic tensor of the reference's device and dtype."""
        batch_shape = _broadcast_batch(self.real, synthetic)
        synthetic3 = synthetic if synthetic.ndim == 3 else synthetic.unsqueeze(0)
        synthetic_radii_sq = _knn_radii_sq(synthetic3, self.k, self.block_size)
        metrics = _cross_metrics(
            self._real3,
            self._real_sq,
            self._radii_sq,
            synthetic3,
            synthetic_radii_sq,
            self.k,
            self.block_size,
        )
        return {name: metrics[name].reshape(batch_shape) for name in METRIC_NAMES}


def precision_recall_density_coverage(
    real, synthetic, *, k: int = 5, block_size: int | None = None
) -> dict[str, torch.Tensor]:
    """Precision, recall (Kynkäänniemi et al.), density and coverage (Naeem et al.).

    The order is ``(real, synthetic)``; swapping the two sets swaps the meaning of precision
    (fidelity of synthetic samples) and recall (how much of the real data is reached). Balls
    use ``<=`` (prdc 0.2 uses ``<``; they differ only on exact ties). To score many synthetic
    sets against the same real set, use :class:`ManifoldReference`, which computes the real
    radii once.

    Parameters
    ----------
    real : Tensor or ndarray, shape (N, D) or (S, N, D)
        Real feature vectors.
    synthetic : Tensor or ndarray, shape (M, D) or (S, M, D)
        Synthetic feature vectors. Batch dimensions of the two inputs broadcast.
    k : int, default 5
        Neighbour used for the radii; ``1 <= k < N`` and ``k < M``.
    block_size : int or None, default None
        Rows per block; None picks blocks of about ``DEFAULT_BLOCK_BYTES`` of distances.
        It changes memory and speed, never the result.

    Returns
    -------
    dict of str to Tensor
        Keys ``"precision"``, ``"recall"``, ``"density"``, ``"coverage"``, each of the
        broadcast batch shape (``()`` for unbatched inputs, ``(S,)`` otherwise), in the
        compute dtype and on the device of the inputs.

    Examples
    --------
    >>> import torch
    >>> real = torch.randn(500, 8, dtype=torch.float64)
    >>> scores = precision_recall_density_coverage(real=real, synthetic=real, k=5)
    >>> float(scores["precision"]), float(scores["recall"]), float(scores["coverage"])
    (1.0, 1.0, 1.0)
    """
    real_t, synthetic_t = _as_pair(real, synthetic)
    k = _check_k(k, real_t.shape[-2], "real samples", "N")
    _check_k(k, synthetic_t.shape[-2], "synthetic samples", "M")
    block_size = _check_block_size(block_size)
    return ManifoldReference._from_validated(real_t, k, block_size)._compute(synthetic_t)
