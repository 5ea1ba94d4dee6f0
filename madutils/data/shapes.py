"""Coloured shapes with known generative factors: a procedural colour image set.

The paper's colour experiment trains StyleGAN2 on FFHQ, which a CPU cannot do. This module
draws a small stand-in that a 16x16 or 32x32 model can learn: one coloured shape on a plain
background per image, rendered here (nothing is downloaded), with every image's generative
factors known. Mode loss can then be measured exactly, as the share of factor combinations a
model still produces (:mod:`madutils.metrics.coverage`), instead of through a feature space.

Factors (:class:`ShapeFactors`; the defaults give 3 x 4 x 4 x 2 = 96 combinations):

- ``shape``: from :data:`SHAPES` (square, circle, triangle, diamond, cross); default square,
  circle, triangle;
- ``colour``: names from :data:`PALETTE`, a fixed palette of clearly distinct RGB colours;
  default red, green, blue, yellow;
- ``position``: the cell of a coarse ``grid x grid`` grid holding the shape's centre, numbered
  row by row from the top left (cell ``row * grid + column``); default ``grid=2``, 4 cells;
- ``size``: the side of the shape's bounding box as a fraction of a cell's side; default
  ``(0.5, 0.9)``, small and large.

The background is not a factor: every image has the same plain background, dark grey
(:data:`DEFAULT_BACKGROUND`) unless ``background`` says otherwise.

The combination index is mixed radix with the shape slowest and the size fastest:
``((shape * n_colours + colour) * n_positions + position) * n_sizes + size``
(:meth:`ShapeFactors.encode`, :meth:`ShapeFactors.decode`).

Jitter. With ``jitter=0`` the set holds only ``n_combinations`` distinct images, and a GAN
could learn it by memorising 96 points; real data have a continuous spread within each mode,
and a self-consuming loop loses that spread as well as whole modes. So by default every image
is jittered a little (:data:`DEFAULT_JITTER`, 0.25), within limits that keep every factor
unambiguous: with ``jitter = j`` in [0, 0.5],

- the centre moves by ``U(-j, j) * cell / 2`` along each axis (at most a quarter of a cell, so
  the centre, and the shape's pixel centroid, stay inside their cell);
- the size is multiplied by ``1 + U(-j, j) / 2`` (at most +-25%: the default small and large
  sizes never meet);
- each RGB channel of the colour moves by ``U(-j, j) * 0.2`` (at most +-0.1), clipped to
  [0, 1].

At 16x16 pixels the default moves a shape by up to one pixel, its size by up to 6% and its
colour by up to 0.05 per channel.

Rendering is anti-aliased: each pixel is split into ``supersample x supersample`` sub-pixels,
a sub-pixel is inside the shape or not (tested at its centre), and a pixel's coverage is the
share of its sub-pixels inside (a box filter). A pixel is ``background * (1 - coverage) +
colour * coverage``. With ``channels=1`` both colours are replaced by their luminance
``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601); the colours chosen must then differ from each
other and from the background by at least :data:`MIN_GREY_GAP` in luminance, or the grey
images would merge colours. The default palette is chosen so that red, blue, green and yellow
do (luminance 0.32, 0.51, 0.61, 0.88 on a background of 0.15).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F

from madutils._image_checks import check_power_of_two_size
from madutils._validation import (
    check_choice,
    check_generator,
    check_positive_int,
)
from madutils.data.images import ImageSet

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_JITTER",
    "FACTOR_NAMES",
    "LABELS",
    "MAX_JITTER",
    "MIN_GREY_GAP",
    "PALETTE",
    "SHAPES",
    "ShapeData",
    "ShapeFactors",
    "ShapeTable",
    "luminance",
    "make_shape_image_set",
    "make_shapes",
    "render_shapes",
    "sample_factors",
]

#: Every shape the renderer draws.
SHAPES = ("square", "circle", "triangle", "diamond", "cross")
#: The fixed palette: colour name to RGB in [0, 1].
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "green": (0.20, 0.90, 0.20),
    "blue": (0.25, 0.55, 1.00),
    "yellow": (1.00, 0.95, 0.20),
    "magenta": (0.90, 0.20, 0.90),
    "cyan": (0.10, 0.90, 0.90),
    "orange": (1.00, 0.55, 0.00),
    "white": (0.95, 0.95, 0.95),
}
#: The factors, in the order of the combination index (slowest first).
FACTOR_NAMES = ("shape", "colour", "position", "size")
#: What :meth:`ShapeData.to_image_set` can use as labels.
LABELS = ("combination", *FACTOR_NAMES)
#: Default plain background, dark grey (the same on all three channels).
DEFAULT_BACKGROUND = 0.15
#: Default jitter (see the module docstring).
DEFAULT_JITTER = 0.25
#: Largest jitter allowed; beyond it neighbouring sizes could meet.
MAX_JITTER = 0.5
#: Least luminance difference between the colours (and the background) of grey images.
MIN_GREY_GAP = 0.05
_MIN_CELL_PIXELS = 4
_MAX_SUPERSAMPLE = 16
_CHUNK_ELEMENTS = 2**22  # sub-pixels rendered at once
_LUMA = (0.299, 0.587, 0.114)


def luminance(rgb) -> torch.Tensor:
    """ITU-R BT.601 luminance ``0.299 R + 0.587 G + 0.114 B`` of RGB values (last axis 3)."""
    rgb = torch.as_tensor(rgb, dtype=torch.float64)
    return rgb @ torch.tensor(_LUMA, dtype=torch.float64)


def _check_names(values, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(
            f"{name} must be a non-empty sequence of names from {', '.join(allowed)}; "
            f"got {values!r}"
        )
    for value in values:
        check_choice(value, name, allowed)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a name; got {tuple(values)!r}")
    return tuple(values)


@dataclass(frozen=True)
class ShapeFactors:
    """The factor lists of a shapes data set, and its combination index.

    Parameters
    ----------
    shapes : sequence of str
        Shapes, from :data:`SHAPES`, no repeats.
    colours : sequence of str
        Colour names, from :data:`PALETTE`, no repeats.
    grid : int
        Cells per side of the position grid, 1 to 8 (``grid**2`` positions).
    sizes : sequence of float
        Bounding-box sides as fractions of a cell's side, in (0, 1], strictly increasing.

    Notes
    -----
    The combination index runs over ``n_combinations`` values, shape slowest and size fastest
    (see the module docstring).
    """

    shapes: tuple[str, ...] = ("square", "circle", "triangle")
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")
    grid: int = 2
    sizes: tuple[float, ...] = (0.5, 0.9)

    def __post_init__(self):
        object.__setattr__(self, "shapes", _check_names(self.shapes, "shapes", SHAPES))
        object.__setattr__(self, "colours", _check_names(self.colours, "colours", tuple(PALETTE)))
        grid = check_positive_int(self.grid, "grid")
        if grid > 8:
            raise ValueError(f"grid must be an integer from 1 to 8 (cells per side); got {grid}")
        object.__setattr__(self, "grid", grid)
        sizes = self.sizes
        if isinstance(sizes, str) or not isinstance(sizes, Sequence) or len(sizes) == 0:
            raise ValueError(
                f"sizes must be a non-empty sequence of numbers in (0, 1]; got {sizes!r}"
            )
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, Real) or not 0 < size <= 1:
                raise ValueError(
                    f"sizes must hold numbers in (0, 1] (fractions of a cell's side); got "
                    f"{size!r} in {tuple(sizes)!r}"
                )
        sizes = tuple(float(s) for s in sizes)
        if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
            raise ValueError(f"sizes must be strictly increasing; got {sizes!r}")
        object.__setattr__(self, "sizes", sizes)

    @property
    def n_shapes(self) -> int:
        """Number of shapes."""
        return len(self.shapes)

    @property
    def n_colours(self) -> int:
        """Number of colours."""
        return len(self.colours)

    @property
    def n_positions(self) -> int:
        """Number of grid cells, ``grid**2``."""
        return self.grid**2

    @property
    def n_sizes(self) -> int:
        """Number of sizes."""
        return len(self.sizes)

    @property
    def factor_sizes(self) -> tuple[int, int, int, int]:
        """Number of values of each factor, in the order of :data:`FACTOR_NAMES`."""
        return self.n_shapes, self.n_colours, self.n_positions, self.n_sizes

    @property
    def n_combinations(self) -> int:
        """Number of factor combinations (the product of :attr:`factor_sizes`)."""
        return math.prod(self.factor_sizes)

    def n_values(self, factor: str) -> int:
        """Number of values of ``factor`` (one of :data:`FACTOR_NAMES` or ``"combination"``)."""
        check_choice(factor, "factor", LABELS)
        if factor == "combination":
            return self.n_combinations
        return self.factor_sizes[FACTOR_NAMES.index(factor)]

    def value_names(self, factor: str) -> tuple[str, ...]:
        """Names of the values of ``factor``, for plots and ``ImageSet.class_names``.

        Positions are ``"cell<k>"``, sizes ``"size<fraction>"``, combinations
        ``"<shape>/<colour>/cell<k>/size<fraction>"``.
        """
        check_choice(factor, "factor", LABELS)
        if factor == "shape":
            return self.shapes
        if factor == "colour":
            return self.colours
        if factor == "position":
            return tuple(f"cell{k}" for k in range(self.n_positions))
        if factor == "size":
            return tuple(f"size{s:g}" for s in self.sizes)
        parts = [self.value_names(f) for f in FACTOR_NAMES]
        return tuple(
            "/".join(parts[i][code] for i, code in enumerate(codes))
            for codes in np.ndindex(*self.factor_sizes)
        )

    def encode(self, shape, colour, position, size):
        """The combination index of factor codes (integers or integer arrays/tensors).

        Returns an ``int`` for integer codes, else an int64 array or tensor (a tensor when
        any input is one) of the broadcast shape.

        Raises
        ------
        ValueError
            If a code is not an integer in ``[0, n_values(factor))``.
        """
        codes = [
            _check_codes(value, factor, n)
            for value, factor, n in zip(
                (shape, colour, position, size), FACTOR_NAMES, self.factor_sizes, strict=True
            )
        ]
        index = codes[0]
        for code, n in zip(codes[1:], self.factor_sizes[1:], strict=True):
            index = index * n + code
        return _like(index, (shape, colour, position, size))

    def decode(self, combination) -> dict[str, object]:
        """Factor codes of combination indices (an integer, or an integer array or tensor).

        Returns
        -------
        dict
            ``{"shape": ..., "colour": ..., "position": ..., "size": ...}``, each an ``int``
            for an integer input, else an int64 array or tensor of the input's shape.
        """
        rest = _check_codes(combination, "combination", self.n_combinations)
        codes = {}
        for factor, n in zip(FACTOR_NAMES[::-1], self.factor_sizes[::-1], strict=True):
            codes[factor] = _like(rest % n, (combination,))
            rest = rest // n
        return {factor: codes[factor] for factor in FACTOR_NAMES}


def _check_codes(values, name: str, n: int) -> np.ndarray:
    """Integer codes in ``[0, n)`` as an int64 array (0-d for a scalar)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be integer codes in [0, {n}); got dtype {array.dtype}")
    if array.size and (int(array.min()) < 0 or int(array.max()) >= n):
        raise ValueError(
            f"{name} must be integer codes in [0, {n}); got codes from {int(array.min())} to "
            f"{int(array.max())}"
        )
    return array.astype(np.int64)


def _like(array: np.ndarray, inputs) -> object:
    """``array`` as an ``int`` (all inputs scalars), a tensor (any input one) or an array."""
    if any(isinstance(v, torch.Tensor) for v in inputs):
        return torch.from_numpy(np.ascontiguousarray(array))
    if all(isinstance(v, Integral) for v in inputs):
        return int(array)
    return array


def _check_jitter(jitter) -> float:
    if isinstance(jitter, bool) or not isinstance(jitter, Real) or not 0 <= jitter <= MAX_JITTER:
        raise ValueError(
            f"jitter must be a number in [0, {MAX_JITTER}] (0: no jitter; see "
            f"madutils.data.shapes); got {jitter!r}"
        )
    return float(jitter)


def _check_factors(factors) -> ShapeFactors:
    if factors is None:
        return ShapeFactors()
    if not isinstance(factors, ShapeFactors):
        raise ValueError(f"factors must be a ShapeFactors or None; got {type(factors).__name__}")
    return factors


@dataclass(frozen=True, eq=False)
class ShapeTable:
    """The factors of a set of shape images: codes and the jittered continuous values.

    Parameters
    ----------
    factors : ShapeFactors
        The factor lists the codes refer to.
    combination : Tensor of shape (N,), int64
        Combination index of each image; the per-factor codes are derived from it.
    centre : Tensor of shape (N, 2), float64
        Centre ``(x, y)`` of each shape's bounding box, in image units ([0, 1], ``x`` to the
        right, ``y`` down).
    extent : Tensor of shape (N,), float64
        Side of each shape's bounding box, in image units.
    rgb : Tensor of shape (N, 3), float64
        Colour of each shape, in [0, 1].

    Attributes
    ----------
    shape, colour, position, size : Tensor of shape (N,), int64
        The per-factor codes of :attr:`combination`.
    """

    factors: ShapeFactors
    combination: torch.Tensor
    centre: torch.Tensor
    extent: torch.Tensor
    rgb: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.factors, ShapeFactors):
            raise ValueError(f"factors must be a ShapeFactors; got {type(self.factors).__name__}")
        combination = torch.as_tensor(self.combination)
        if combination.dim() != 1 or len(combination) == 0:
            raise ValueError(
                f"combination must have shape (N,) with N >= 1; got {tuple(combination.shape)}"
            )
        combination = torch.from_numpy(
            _check_codes(combination, "combination", self.factors.n_combinations)
        )
        n = len(combination)
        centre = torch.as_tensor(self.centre, dtype=torch.float64)
        extent = torch.as_tensor(self.extent, dtype=torch.float64)
        rgb = torch.as_tensor(self.rgb, dtype=torch.float64)
        for name, value, shape in (
            ("centre", centre, (n, 2)),
            ("extent", extent, (n,)),
            ("rgb", rgb, (n, 3)),
        ):
            if tuple(value.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
        if bool((extent <= 0).any()):
            raise ValueError("extent must be positive")
        if bool((rgb < 0).any() or (rgb > 1).any()):
            raise ValueError("rgb must have values in [0, 1]")
        object.__setattr__(self, "combination", combination)
        object.__setattr__(self, "centre", centre)
        object.__setattr__(self, "extent", extent)
        object.__setattr__(self, "rgb", rgb)
        for factor, codes in self.factors.decode(combination).items():
            object.__setattr__(self, factor, codes)

    def __len__(self) -> int:
        return len(self.combination)

    def codes(self, factor: str) -> torch.Tensor:
        """The codes of ``factor``, one of :data:`LABELS` (``"combination"`` or a factor)."""
        check_choice(factor, "factor", LABELS)
        return getattr(self, factor)

    @classmethod
    def from_combinations(
        cls,
        combinations,
        factors: ShapeFactors | None = None,
        *,
        jitter: float = 0.0,
        rng: torch.Generator | None = None,
    ) -> ShapeTable:
        """The table of the given combinations, jittered as the module docstring says.

        Parameters
        ----------
        combinations : int array or Tensor of shape (N,)
            Combination indices, in ``[0, factors.n_combinations)``.
        factors : ShapeFactors, optional
            Defaults to ``ShapeFactors()``.
        jitter : float
            In [0, 0.5]; 0 (default) puts every shape exactly at its cell's centre with its
            nominal size and palette colour.
        rng : torch.Generator, optional
            Source of the jitter; needed when ``jitter > 0``, unused otherwise.
        """
        factors = _check_factors(factors)
        jitter = _check_jitter(jitter)
        combination = torch.as_tensor(
            _check_codes(combinations, "combinations", factors.n_combinations)
        )
        if combination.dim() != 1 or len(combination) == 0:
            raise ValueError(
                f"combinations must have shape (N,) with N >= 1; got {tuple(combination.shape)}"
            )
        codes = factors.decode(combination)
        n = len(combination)
        cell = 1.0 / factors.grid
        row, column = codes["position"] // factors.grid, codes["position"] % factors.grid
        centre = torch.stack([column, row], dim=1).to(torch.float64).add_(0.5).mul_(cell)
        sizes = torch.tensor(factors.sizes, dtype=torch.float64)
        extent = sizes[codes["size"]] * cell
        palette = torch.tensor([PALETTE[c] for c in factors.colours], dtype=torch.float64)
        rgb = palette[codes["colour"]]
        if jitter > 0:
            if rng is None:
                raise ValueError("rng must be a torch.Generator when jitter > 0; got None")
            rng = check_generator(rng)
            noise = torch.rand(n, 6, dtype=torch.float64, generator=rng, device=rng.device)
            noise = (2 * noise.cpu() - 1) * jitter  # U(-jitter, jitter)
            centre = centre + noise[:, :2] * (cell / 2)
            extent = extent * (1 + noise[:, 2] / 2)
            rgb = (rgb + noise[:, 3:] * 0.2).clamp_(0.0, 1.0)
        return cls(factors, combination, centre, extent, rgb)


def sample_factors(
    n: int,
    *,
    rng: torch.Generator,
    factors: ShapeFactors | None = None,
    balanced: bool = True,
    jitter: float = DEFAULT_JITTER,
) -> ShapeTable:
    """Draw the factors of ``n`` shape images.

    Parameters
    ----------
    n : int
        Number of images, >= 1.
    rng : torch.Generator
        Source of the combinations and the jitter.
    factors : ShapeFactors, optional
        Defaults to ``ShapeFactors()`` (96 combinations).
    balanced : bool
        True (default): every combination ``n // K`` or ``n // K + 1`` times (``K`` the number
        of combinations; exactly equally often when ``K`` divides ``n``; the combinations that
        get one more are drawn at random), in a random order. False: combinations drawn
        independently and uniformly.
    jitter : float
        In [0, 0.5]; see the module docstring.

    Returns
    -------
    ShapeTable
    """
    n = check_positive_int(n, "n")
    rng = check_generator(rng)
    factors = _check_factors(factors)
    if not isinstance(balanced, bool):
        raise ValueError(f"balanced must be True or False; got {balanced!r}")
    jitter = _check_jitter(jitter)
    k = factors.n_combinations
    device = rng.device
    if balanced:
        extra = torch.randperm(k, generator=rng, device=device).cpu()[: n % k]
        combination = torch.cat([torch.arange(k).repeat(n // k), extra])
        combination = combination[torch.randperm(n, generator=rng, device=device).cpu()]
    else:
        combination = torch.randint(0, k, (n,), generator=rng, device=device).cpu()
    return ShapeTable.from_combinations(combination, factors, jitter=jitter, rng=rng)


def _inside(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether points ``(u, v)`` (in half-extents from the centre, ``v`` down) are inside."""
    au, av = u.abs(), v.abs()
    if shape == "square":
        return (au <= 1) & (av <= 1)
    if shape == "circle":
        return u * u + v * v <= 1
    if shape == "triangle":  # apex at the top middle, base along the bottom edge
        return (v <= 1) & (au <= (v + 1) / 2)
    if shape == "diamond":
        return au + av <= 1
    if shape == "cross":  # a plus sign with arms a third of the bounding box wide
        return ((au <= 1) & (av <= 1 / 3)) | ((au <= 1 / 3) & (av <= 1))
    raise AssertionError(shape)  # pragma: no cover - factors are validated


def _check_background(background) -> tuple[float, float, float]:
    if isinstance(background, Real) and not isinstance(background, bool):
        values = (background,) * 3
    elif isinstance(background, Sequence) and not isinstance(background, str):
        values = tuple(background)
    else:
        values = ()
    if len(values) != 3 or not all(
        isinstance(v, Real) and not isinstance(v, bool) and 0 <= v <= 1 for v in values
    ):
        raise ValueError(
            f"background must be a grey level in [0, 1] or an (R, G, B) triple of values in "
            f"[0, 1]; got {background!r}"
        )
    return tuple(float(v) for v in values)


def _check_image_size(image_size, factors: ShapeFactors) -> int:
    image_size = check_power_of_two_size(image_size)
    if image_size < _MIN_CELL_PIXELS * factors.grid:
        raise ValueError(
            f"image_size must give each grid cell at least {_MIN_CELL_PIXELS} pixels: "
            f"image_size={image_size} with grid={factors.grid} gives "
            f"{image_size / factors.grid:g}; use a larger image_size or a smaller grid"
        )
    return image_size


def render_shapes(
    table: ShapeTable,
    *,
    image_size: int = 16,
    channels: int = 3,
    background=DEFAULT_BACKGROUND,
    supersample: int = 4,
) -> torch.Tensor:
    """Render the images a :class:`ShapeTable` describes (deterministic, no randomness).

    Parameters
    ----------
    table : ShapeTable
        The factors of each image.
    image_size : int
        Side in pixels, a power of two from 8 to 256, with at least 4 pixels per grid cell.
    channels : {3, 1}
        RGB, or grey (luminance, see the module docstring).
    background : float or (float, float, float)
        Grey level or RGB colour of the background, in [0, 1].
    supersample : int
        Sub-pixels per pixel side for the anti-aliasing box filter, 1 (none) to 16.

    Returns
    -------
    Tensor of shape (N, channels, image_size, image_size), float32, values in [0, 1]

    Raises
    ------
    ValueError
        For a bad parameter, or, with ``channels=1``, colours (or a colour and the
        background) less than :data:`MIN_GREY_GAP` apart in luminance.
    """
    if not isinstance(table, ShapeTable):
        raise ValueError(f"table must be a ShapeTable; got {type(table).__name__}")
    factors = table.factors
    image_size = _check_image_size(image_size, factors)
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 3 (RGB) or 1 (grey); got {channels!r}")
    back = torch.tensor(_check_background(background), dtype=torch.float64)
    supersample = check_positive_int(supersample, "supersample")
    if supersample > _MAX_SUPERSAMPLE:
        raise ValueError(
            f"supersample must be an integer from 1 to {_MAX_SUPERSAMPLE}; got {supersample}"
        )
    rgb = table.rgb
    if channels == 1:
        _check_grey_gaps(factors, back)
        back, rgb = luminance(back).reshape(1), luminance(rgb).unsqueeze(1)

    fine = image_size * supersample
    coords = (torch.arange(fine, dtype=torch.float64) + 0.5) / fine
    chunk = max(1, _CHUNK_ELEMENTS // (fine * fine))
    n = len(table)
    coverage = torch.empty(n, 1, image_size, image_size, dtype=torch.float32)
    half = table.extent / 2
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        h = half[rows, None, None]
        u = (coords[None, None, :] - table.centre[rows, 0, None, None]) / h
        v = (coords[None, :, None] - table.centre[rows, 1, None, None]) / h
        mask = torch.zeros(len(u), fine, fine, dtype=torch.bool)
        shape_codes = table.shape[rows]
        for code, shape in enumerate(factors.shapes):
            members = torch.nonzero(shape_codes == code).squeeze(1)
            if len(members):
                mask[members] = _inside(shape, u[members], v[members])
        pooled = F.avg_pool2d(mask.to(torch.float32).unsqueeze(1), supersample)
        coverage[rows] = pooled
    alpha = coverage.to(torch.float64)
    images = back[None, :, None, None] * (1 - alpha) + rgb[:, :, None, None] * alpha
    return images.clamp_(0.0, 1.0).to(torch.float32).contiguous()


def _check_grey_gaps(factors: ShapeFactors, back: torch.Tensor) -> None:
    names = ("background", *factors.colours)
    levels = luminance(torch.stack([back, *(torch.tensor(PALETTE[c]) for c in factors.colours)]))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            gap = abs(float(levels[i] - levels[j]))
            if gap < MIN_GREY_GAP:
                raise ValueError(
                    f"colours: with channels=1, {names[i]} and {names[j]} have luminance "
                    f"{float(levels[i]):.3f} and {float(levels[j]):.3f}, less than "
                    f"{MIN_GREY_GAP} apart, so grey images could not tell them apart; choose "
                    "other colours or background, or use channels=3"
                )


@dataclass(frozen=True, eq=False, repr=False)
class ShapeData:
    """Rendered shape images with their factor table.

    Attributes
    ----------
    images : Tensor of shape (N, C, S, S), float32, values in [0, 1]
    table : ShapeTable
        The factors of each image, in the same order.
    """

    images: torch.Tensor
    table: ShapeTable

    @property
    def factors(self) -> ShapeFactors:
        """The factor lists."""
        return self.table.factors

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return (
            f"ShapeData(n={len(self)}, image_shape={tuple(self.images.shape[1:])}, "
            f"n_combinations={self.factors.n_combinations})"
        )

    def to_image_set(self, *, label: str = "combination", name: str = "shapes") -> ImageSet:
        """The images as an :class:`~madutils.data.images.ImageSet`.

        Parameters
        ----------
        label : {"combination", "shape", "colour", "position", "size"}
            What becomes the class label: the combination index (default; ``n_classes`` is
            then ``n_combinations``, so class-conditional models and a feature network trained
            on the labels see every mode), or one factor's codes.
        name : str
            The set's name.
        """
        check_choice(label, "label", LABELS)
        return ImageSet(
            self.images,
            self.table.codes(label).clone(),
            self.factors.n_values(label),
            str(name),
            self.factors.value_names(label),
        )


def make_shapes(
    n: int,
    *,
    rng: torch.Generator,
    image_size: int = 16,
    factors: ShapeFactors | None = None,
    balanced: bool = True,
    jitter: float = DEFAULT_JITTER,
    channels: int = 3,
    background=DEFAULT_BACKGROUND,
    supersample: int = 4,
) -> ShapeData:
    """Draw and render ``n`` shape images.

    :func:`sample_factors` then :func:`render_shapes`; see them for the parameters. The same
    generator state gives the same images.

    Returns
    -------
    ShapeData
        ``images`` of shape ``(n, channels, image_size, image_size)`` and their ``table``.
    """
    n = check_positive_int(n, "n")
    factors = _check_factors(factors)
    _check_image_size(image_size, factors)  # fail before drawing
    table = sample_factors(n, rng=rng, factors=factors, balanced=balanced, jitter=jitter)
    images = render_shapes(
        table,
        image_size=image_size,
        channels=channels,
        background=background,
        supersample=supersample,
    )
    return ShapeData(images, table)


def make_shape_image_set(
    n: int, *, rng: torch.Generator, label: str = "combination", name: str = "shapes", **kwargs
) -> ImageSet:
    """:func:`make_shapes` as an ImageSet (:meth:`ShapeData.to_image_set`).

    ``kwargs`` go to :func:`make_shapes`.
    """
    check_choice(label, "label", LABELS)
    return make_shapes(n, rng=rng, **kwargs).to_image_set(label=label, name=name)
