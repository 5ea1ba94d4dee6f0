"""Colour and unlabelled image folders (madutils.data.images): load_image_folder's new options,
read_image_folder, and unlabelled ImageSets through subset, split, resized and RealImagePool.

Every file is written by the test into tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from madutils.data.images import (
    ImageSet,
    RealImagePool,
    load_dataset,
    load_image_folder,
    read_image_folder,
)

RED, GREEN, BLUE = (200, 30, 10), (20, 180, 40), (5, 60, 220)


def write_rgb(path, colour, size=(16, 16)):
    """A constant-colour RGB image, ``size`` = (width, height)."""
    width, height = size
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[...] = colour
    Image.fromarray(array, mode="RGB").save(path)


def luma(colour):
    """PIL's "L" conversion of one RGB colour (ITU-R 601-2, rounded)."""
    return np.asarray(Image.new("RGB", (1, 1), colour).convert("L"))[0, 0]


@pytest.fixture
def colour_folder(tmp_path):
    """Three colour classes of 16x16 images: 'blue' (2), 'green' (3), 'red' (1)."""
    root = tmp_path / "colours"
    for name, colour, count in [("red", RED, 1), ("green", GREEN, 3), ("blue", BLUE, 2)]:
        (root / name).mkdir(parents=True)
        for i in range(count):
            write_rgb(root / name / f"{i}.png", colour)
    return root


@pytest.fixture
def flat_folder(tmp_path):
    """An unlabelled flat folder: 5 good images of mixed sizes, one corrupt PNG, one text file
    with an image suffix, and files that are ignored (a README, a hidden image)."""
    root = tmp_path / "faces"
    root.mkdir()
    write_rgb(root / "a.png", RED, size=(32, 32))
    write_rgb(root / "b.png", GREEN, size=(8, 8))
    write_rgb(root / "c.bmp", BLUE, size=(40, 20))  # not square: centre-cropped
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / "d.png")
    Image.fromarray(np.full((16, 16), 77, dtype=np.uint8), mode="L").save(root / "e.png")
    (root / "corrupt.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    (root / "notes.jpg").write_text("this is not an image")
    (root / "README.txt").write_text("ignored: not an image suffix")
    write_rgb(root / ".hidden.png", RED)
    return root


def load_quietly(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_image_folder(root, **kwargs)


# ------------------------------------------------------------------ colour, labelled folder


def test_colour_labelled_folder(colour_folder):
    data = load_image_folder(colour_folder, channels=3)
    assert data.images.shape == (6, 3, 16, 16)
    assert data.class_names == ("blue", "green", "red")
    assert data.labels.tolist() == [0, 0, 1, 1, 1, 2]
    assert data.labelled and data.n_classes == 3
    for label, colour in enumerate([BLUE, GREEN, RED]):
        expected = torch.tensor(colour, dtype=torch.float32) / 255
        got = data.images[data.labels == label]
        assert torch.equal(got, expected.view(1, 3, 1, 1).expand_as(got))
    assert data.class_counts().tolist() == [2, 3, 1]
    # channels=3 is grayscale=False, bit for bit
    assert torch.equal(load_image_folder(colour_folder, grayscale=False).images, data.images)


def test_grey_conversion_is_pil_luma(colour_folder):
    grey = load_image_folder(colour_folder, channels=1)
    assert grey.images.shape == (6, 1, 16, 16)
    for label, colour in enumerate([BLUE, GREEN, RED]):
        value = float(luma(colour)) / 255
        assert torch.equal(
            grey.images[grey.labels == label],
            torch.full((1,), value).expand(int((grey.labels == label).sum()), 1, 16, 16),
        )
    # 299/587/114 thousandths of R, G, B, rounded
    assert luma(RED) == round(RED[0] * 0.299 + RED[1] * 0.587 + RED[2] * 0.114)
    # the default (no channels, no grayscale) is one grey channel, as before
    assert torch.equal(load_image_folder(colour_folder).images, grey.images)


def test_grey_image_to_rgb_repeats_the_channel(tmp_path):
    Image.fromarray(np.full((8, 8), 90, dtype=np.uint8), mode="L").save(tmp_path / "g.png")
    data = load_image_folder(tmp_path, channels=3)
    assert data.images.shape == (1, 3, 8, 8)
    assert torch.equal(data.images, torch.full((1, 3, 8, 8), 90 / 255))


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128, 256])
def test_power_of_two_sizes_in_colour(colour_folder, size):
    data = load_image_folder(colour_folder, channels=3, image_size=size)
    assert data.images.shape == (6, 3, size, size)
    expected = torch.tensor(RED, dtype=torch.float32).view(3, 1, 1) / 255
    assert torch.equal(data.images[data.labels == 2][0], expected.expand(3, size, size))


# ------------------------------------------------------------------ unlabelled flat folder


def test_flat_folder_is_unlabelled_and_skips_unreadable_files_with_a_warning(flat_folder):
    with pytest.warns(UserWarning) as caught:
        data = load_image_folder(flat_folder, channels=3, image_size=16)
    messages = [str(w.message) for w in caught]
    assert any("corrupt.png" in m for m in messages)
    assert any("notes.jpg" in m for m in messages)
    assert not any("README" in m or "hidden" in m for m in messages)
    assert data.labels is None and data.n_classes is None and not data.labelled
    assert data.class_names is None
    assert data.images.shape == (5, 3, 16, 16)
    assert data.name == "faces"
    assert "unlabelled" in repr(data) and "n=5" in repr(data)
    # constant images stay exactly their colour through crop and resize (up or down)
    for index, colour in enumerate([RED, GREEN, BLUE]):
        expected = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1) / 255
        assert torch.equal(data.images[index], expected.expand(3, 16, 16)), colour
    assert torch.equal(data.images[4], torch.full((3, 16, 16), 77 / 255))


@pytest.mark.parametrize("resample", ["lanczos", "bicubic", "bilinear", "box", "nearest"])
def test_every_filter_keeps_a_constant_image(flat_folder, resample):
    data = load_quietly(flat_folder, channels=3, image_size=8, resample=resample)
    assert data.images.shape == (5, 3, 8, 8)
    expected = torch.tensor(RED, dtype=torch.float32).view(3, 1, 1) / 255
    assert torch.equal(data.images[0], expected.expand(3, 8, 8))


def test_resize_filter_on_a_known_image(tmp_path):
    """Box filter, shrinking by 2: each output pixel is the mean of a 2x2 block; a non-square
    image is first cut to its centred square."""
    array = np.zeros((4, 8), dtype=np.uint8)  # 4 high, 8 wide
    array[:, 2:6] = np.array([[0, 100, 40, 60], [200, 20, 80, 120], [4, 8, 12, 16], [0, 0, 0, 0]])
    Image.fromarray(array, mode="L").save(tmp_path / "x.png")
    data = load_image_folder(tmp_path, image_size=2, resample="box")
    expected = np.array([[(0 + 100 + 200 + 20) / 4, (40 + 60 + 80 + 120) / 4], [3, 7]])
    assert data.images.shape == (1, 1, 2, 2)
    assert torch.equal(data.images[0, 0], torch.tensor(expected / 255, dtype=torch.float32))


def test_on_error_raise_names_the_file(flat_folder):
    with pytest.raises(ValueError, match=r"cannot read image '.*corrupt\.png'"):
        load_image_folder(flat_folder, channels=3, image_size=16, on_error="raise")
    (flat_folder / "corrupt.png").unlink()
    with pytest.raises(ValueError, match=r"cannot read image '.*notes\.jpg'"):
        load_image_folder(flat_folder, channels=3, image_size=16, on_error="raise")


def test_mixed_sizes_without_resize_are_refused(flat_folder):
    with pytest.raises(ValueError, match=r"differ in size: .*a\.png.* 32x32 .*b\.png.* 8x8"):
        load_quietly(flat_folder, channels=3)


def test_max_images_and_read_image_folder(flat_folder):
    data = load_quietly(flat_folder, channels=3, image_size=8, max_images=3)
    assert data.images.shape == (3, 3, 8, 8)
    with pytest.warns(UserWarning, match="corrupt.png"), pytest.warns(UserWarning, match="notes"):
        raw = read_image_folder(flat_folder, channels=3, image_size=8)
    assert raw.pixels.dtype == np.uint8 and raw.pixels.shape == (5, 3, 8, 8)
    assert raw.labels is None and raw.class_names is None
    assert [f.name for f in raw.files] == ["a.png", "b.png", "c.bmp", "d.png", "e.png"]
    assert sorted(f.name for f in raw.skipped) == ["corrupt.png", "notes.jpg"]
    # load_image_folder is read_image_folder / 255, bit for bit
    full = load_quietly(flat_folder, channels=3, image_size=8)
    assert torch.equal(full.images, torch.from_numpy(raw.pixels.astype(np.float32) / 255.0))


def test_unlabelled_option_reads_sub_folders_recursively(tmp_path):
    for part in ("00000", "01000"):
        (tmp_path / part).mkdir()
        for i in range(2):
            write_rgb(tmp_path / part / f"{part}_{i}.png", GREEN, size=(8, 8))
    labelled = load_image_folder(tmp_path, channels=3)
    assert labelled.labelled and labelled.class_names == ("00000", "01000")
    data = load_image_folder(tmp_path, channels=3, unlabelled=True, max_images=3)
    assert not data.labelled and len(data) == 3
    raw = read_image_folder(tmp_path, channels=3, unlabelled=True)
    assert [f.name for f in raw.files] == [
        "00000_0.png",
        "00000_1.png",
        "01000_0.png",
        "01000_1.png",
    ]


def test_folder_option_errors(tmp_path, colour_folder):
    with pytest.raises(ValueError, match="channels must be 1 .* or 3"):
        load_image_folder(colour_folder, channels=2)
    with pytest.raises(ValueError, match="grayscale=True contradicts channels=3"):
        load_image_folder(colour_folder, channels=3, grayscale=True)
    with pytest.raises(ValueError, match="not both"):
        load_image_folder(colour_folder, size=8, image_size=8)
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        load_image_folder(colour_folder, image_size=0)
    with pytest.raises(ValueError, match="resample must be one of"):
        load_image_folder(colour_folder, image_size=8, resample="cubic")
    with pytest.raises(ValueError, match="on_error must be one of 'skip', 'raise'"):
        load_image_folder(colour_folder, on_error="ignore")
    with pytest.raises(ValueError, match="max_images is for unlabelled folders"):
        load_image_folder(colour_folder, max_images=2)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"no readable image in '.*bad'"):
        load_quietly(tmp_path / "bad")


def test_load_dataset_passes_the_new_options(flat_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset("folder", path=flat_folder, channels=3, image_size=8)
    assert data.images.shape == (5, 3, 8, 8) and not data.labelled


# ------------------------------------------------------------------- one channel unchanged


def test_one_channel_labelled_loading_is_unchanged(tmp_path):
    """The old options give exactly the old result (float32 of the bytes / 255.0, stretched
    with torch bilinear for size=)."""
    rng = np.random.default_rng(1)
    arrays = {}
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        arrays[name] = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
        Image.fromarray(arrays[name], mode="RGB").save(tmp_path / name / "0.png")
    data = load_image_folder(tmp_path)
    expected = np.stack(
        [
            np.asarray(Image.fromarray(arrays[n]).convert("L"), dtype=np.float32) / 255.0
            for n in ("x", "y")
        ]
    )[:, None]
    assert data.images.dtype == torch.float32 and data.labels.tolist() == [0, 1]
    assert torch.equal(data.images, torch.from_numpy(expected))
    resized = load_image_folder(tmp_path, size=4)
    old = torch.nn.functional.interpolate(
        torch.from_numpy(expected), size=(4, 4), mode="bilinear", antialias=True
    ).clamp(0, 1)
    assert torch.equal(resized.images, old)


# ------------------------------------------------------------------------ unlabelled sets


def unlabelled_set(n: int = 20) -> ImageSet:
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 4, 4) / n
    return ImageSet(images.contiguous(), None, name="plain")


def test_unlabelled_imageset_methods():
    data = unlabelled_set()
    assert len(data) == 20 and data.image_shape == (3, 4, 4)
    assert repr(data) == "ImageSet(name='plain', n=20, image_shape=(3, 4, 4), unlabelled)"
    part = data.subset([3, 1, 3])
    assert part.labels is None and part.images[:, 0, 0, 0].mul(20).round().tolist() == [3, 1, 3]
    assert data.resized(8).images.shape == (20, 3, 8, 8) and data.resized(8).labels is None
    with pytest.raises(ValueError, match="class_counts needs a labelled set"):
        data.class_counts()


def test_unlabelled_split_is_a_plain_random_split():
    data = unlabelled_set()
    first, second = data.split(0.25, rng=torch.Generator().manual_seed(3))
    ids = lambda s: s.images[:, 0, 0, 0].mul(20).round().long()  # noqa: E731
    assert len(first) == 5 and len(second) == 15
    assert first.labels is None and second.labels is None
    assert sorted(torch.cat([ids(first), ids(second)]).tolist()) == list(range(20))
    # the same permutation a one-class labelled set would be split by
    again, _ = data.split(0.25, rng=torch.Generator().manual_seed(3))
    assert torch.equal(ids(again), ids(first))
    one_class = ImageSet(data.images, torch.zeros(20, dtype=torch.int64), 1)
    labelled_first, _ = one_class.split(0.25, rng=torch.Generator().manual_seed(3))
    assert torch.equal(ids(labelled_first), ids(first))
    assert torch.equal(
        ids(first), torch.randperm(20, generator=torch.Generator().manual_seed(3))[:5]
    )


def test_unlabelled_pool_draws_iid_without_replacement():
    pool = RealImagePool(unlabelled_set(), rng=torch.Generator().manual_seed(0))
    assert not pool.balanced
    draws = [pool.draw(5) for _ in range(4)]
    ids = torch.cat([d.images[:, 0, 0, 0].mul(20).round().long() for d in draws])
    assert sorted(ids.tolist()) == list(range(20))
    assert all(d.labels is None for d in draws)
    assert torch.equal(ids, torch.randperm(20, generator=torch.Generator().manual_seed(0)))


def test_imageset_rejects_bad_unlabelled_and_channel_values():
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="n_classes must be None for an unlabelled set"):
        ImageSet(images, None, 3)
    with pytest.raises(ValueError, match="class_names must be None"):
        ImageSet(images, None, class_names=("a",))
    with pytest.raises(ValueError, match="1 .grey. or 3 .RGB. channels"):
        ImageSet(torch.rand(4, 2, 8, 8), None)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        ImageSet(images * 2, None)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        ImageSet(images, torch.zeros(4, dtype=torch.int64))
