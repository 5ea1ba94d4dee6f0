"""The coloured-shapes data set (:mod:`madutils.data.shapes`): rendering matches the factors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from madutils.data.images import ImageSet
from madutils.data.shapes import (
    DEFAULT_BACKGROUND,
    PALETTE,
    ShapeData,
    ShapeFactors,
    ShapeTable,
    luminance,
    make_shape_image_set,
    make_shapes,
    render_shapes,
    sample_factors,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_default_factors_have_96_combinations():
    factors = ShapeFactors()
    assert factors.factor_sizes == (3, 4, 4, 2)
    assert factors.n_combinations == 96
    names = factors.value_names("combination")
    assert len(names) == 96 and len(set(names)) == 96
    assert names[0] == "square/red/cell0/size0.5"
    assert names[factors.encode(2, 3, 3, 1)] == "triangle/yellow/cell3/size0.9"


@pytest.mark.parametrize("image_size", [8, 16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_images_have_the_documented_shape_dtype_and_range(rng, image_size, channels):
    data = make_shapes(50, rng=rng, image_size=image_size, channels=channels)
    assert isinstance(data, ShapeData) and len(data) == 50
    assert data.images.shape == (50, channels, image_size, image_size)
    assert data.images.dtype == torch.float32
    assert float(data.images.min()) >= 0.0 and float(data.images.max()) <= 1.0
    assert len(data.table) == 50


def test_the_same_seed_gives_the_same_images_and_another_seed_other_ones():
    a, b, c = (make_shapes(40, rng=_gen(seed)) for seed in (7, 7, 8))
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.table.combination, b.table.combination)
    assert not torch.equal(a.images, c.images)


def test_encode_and_decode_are_inverse():
    factors = ShapeFactors(shapes=("cross", "diamond"), colours=("cyan", "red", "white"), grid=3)
    every = np.arange(factors.n_combinations)
    codes = factors.decode(every)
    assert np.array_equal(factors.encode(*(codes[f] for f in codes)), every)
    decoded = factors.decode(torch.tensor([0, 5, factors.n_combinations - 1]))
    assert isinstance(decoded["shape"], torch.Tensor)
    assert factors.decode(factors.n_combinations - 1) == {
        "shape": 1,
        "colour": 2,
        "position": 8,
        "size": 1,
    }
    assert factors.encode(1, 2, 8, 1) == factors.n_combinations - 1
    # size is the fastest digit, shape the slowest
    assert factors.encode(0, 0, 0, 1) == 1
    assert factors.encode(1, 0, 0, 0) == 3 * 9 * 2


def test_balanced_sampling_gives_every_combination_equally_often(rng):
    factors = ShapeFactors()
    table = sample_factors(3 * 96, rng=rng, factors=factors, balanced=True)
    counts = torch.bincount(table.combination, minlength=96)
    assert torch.equal(counts, torch.full((96,), 3))
    uneven = sample_factors(100, rng=rng, balanced=True)
    counts = torch.bincount(uneven.combination, minlength=96)
    assert int(counts.min()) == 1 and int(counts.max()) == 2 and int(counts.sum()) == 100
    iid = sample_factors(3 * 96, rng=rng, balanced=False)
    assert not torch.equal(torch.bincount(iid.combination, minlength=96), torch.full((96,), 3))


def test_factor_codes_agree_with_the_combination():
    table = sample_factors(200, rng=_gen(3))
    factors = table.factors
    again = factors.encode(table.shape, table.colour, table.position, table.size)
    assert torch.equal(again, table.combination)


def _every_combination(factors: ShapeFactors, image_size: int = 32, **kwargs):
    table = ShapeTable.from_combinations(torch.arange(factors.n_combinations), factors)
    return table, render_shapes(table, image_size=image_size, **kwargs)


def test_without_jitter_the_shape_has_its_palette_colour_and_the_rest_is_background():
    factors = ShapeFactors()
    table, images = _every_combination(factors)
    for i in range(len(table)):
        pixels = images[i].reshape(3, -1).T.double()  # (pixels, 3)
        colour = torch.tensor(PALETTE[factors.colours[int(table.colour[i])]], dtype=torch.float64)
        background = torch.full((3,), DEFAULT_BACKGROUND, dtype=torch.float64)
        is_colour = (pixels - colour).abs().max(dim=1).values < 1e-6
        is_background = (pixels - background).abs().max(dim=1).values < 1e-6
        assert int(is_colour.sum()) > 0  # fully covered pixels carry the palette colour
        # every other pixel is a mix of the two (anti-aliased edges) or background
        mixed = ~(is_colour | is_background)
        t = ((pixels[mixed] - background) / (colour - background)).mean(dim=1)
        np.testing.assert_allclose(
            pixels[mixed].numpy(),
            (background + t[:, None] * (colour - background)).numpy(),
            atol=1e-6,
        )


def _shape_weight(images: torch.Tensor) -> torch.Tensor:
    """How far each pixel is from the background: (N, H, W)."""
    return (images.double() - DEFAULT_BACKGROUND).abs().sum(dim=1)


@pytest.mark.parametrize("grid", [2, 3])
def test_the_shapes_pixel_centroid_lies_in_its_position_cell(grid):
    factors = ShapeFactors(shapes=("square", "circle", "triangle", "diamond", "cross"), grid=grid)
    table = sample_factors(300, rng=_gen(grid), factors=factors, jitter=0.5)
    images = render_shapes(table, image_size=32)
    weight = _shape_weight(images)
    axis = (torch.arange(32, dtype=torch.float64) + 0.5) / 32
    total = weight.sum(dim=(1, 2))
    x = (weight * axis[None, None, :]).sum(dim=(1, 2)) / total
    y = (weight * axis[None, :, None]).sum(dim=(1, 2)) / total
    column = torch.floor(x * grid).long()
    row = torch.floor(y * grid).long()
    assert torch.equal(row * grid + column, table.position)


def test_the_large_size_covers_more_pixels_than_the_small():
    factors = ShapeFactors()
    table, images = _every_combination(factors)
    area = _shape_weight(images).sum(dim=(1, 2))
    small = area[table.size == 0]
    large = area[table.size == 1]  # the same order of the other factors
    assert bool((large > 1.5 * small).all())


def test_shapes_differ_from_each_other():
    factors = ShapeFactors(shapes=("square", "circle", "triangle", "diamond", "cross"))
    table, images = _every_combination(factors)
    by_shape = images.reshape(5, -1, *images.shape[1:])  # shape is the slowest digit
    for a in range(5):
        for b in range(a + 1, 5):
            assert float((by_shape[a] - by_shape[b]).abs().amax(dim=(1, 2, 3)).min()) > 0.3


def test_jitter_varies_images_within_a_combination_and_zero_jitter_does_not(rng):
    factors = ShapeFactors()
    same = torch.zeros(20, dtype=torch.int64)
    exact = ShapeTable.from_combinations(same, factors)
    jittered = ShapeTable.from_combinations(same, factors, jitter=0.25, rng=rng)
    exact_images = render_shapes(exact)
    jittered_images = render_shapes(jittered)
    assert float((exact_images - exact_images[0]).abs().max()) == 0.0
    assert float(jittered_images.std(dim=0).max()) > 0.01
    cell = 1 / factors.grid
    offsets = (jittered.centre - exact.centre).abs()
    assert float(offsets.max()) <= 0.25 * cell / 2 + 1e-12
    assert float((jittered.extent / exact.extent - 1).abs().max()) <= 0.125 + 1e-12


def test_grey_images_are_the_luminance_of_the_colour_images():
    factors = ShapeFactors()
    table = sample_factors(30, rng=_gen(5), factors=factors)
    colour = render_shapes(table, image_size=16)
    grey = render_shapes(table, image_size=16, channels=1)
    expected = luminance(colour.permute(0, 2, 3, 1).double()).unsqueeze(1)
    np.testing.assert_allclose(grey.double().numpy(), expected.numpy(), atol=1e-6)


def test_image_set_uses_the_combination_index_or_a_factor_as_labels(rng):
    data = make_shapes(192, rng=rng)
    images = data.to_image_set()
    assert isinstance(images, ImageSet)
    assert images.n_classes == 96 and torch.equal(images.labels, data.table.combination)
    assert torch.equal(images.class_counts(), torch.full((96,), 2))
    assert images.class_names[0] == "square/red/cell0/size0.5"
    by_colour = data.to_image_set(label="colour", name="colours")
    assert by_colour.n_classes == 4 and by_colour.class_names == ("red", "green", "blue", "yellow")
    assert by_colour.name == "colours"
    direct = make_shape_image_set(10, rng=_gen(1), label="shape", image_size=8)
    assert direct.image_shape == (3, 8, 8) and direct.n_classes == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be"),
        ({"image_size": 12}, "image_size must be a power of two"),
        ({"image_size": 512}, "image_size must be a power of two"),
        ({"image_size": 16.0}, "image_size must be a power of two"),
        ({"image_size": 8, "factors": ShapeFactors(grid=3)}, "image_size must give each"),
        ({"jitter": 0.6}, "jitter must be"),
        ({"jitter": -0.1}, "jitter must be"),
        ({"channels": 2}, "channels must be"),
        ({"background": 1.5}, "background must be"),
        ({"background": (0.1, 0.2)}, "background must be"),
        ({"supersample": 0}, "supersample must be"),
        ({"supersample": 17}, "supersample must be"),
        ({"balanced": 1}, "balanced must be"),
        ({"factors": "default"}, "factors must be"),
        (
            {"channels": 1, "factors": ShapeFactors(colours=("green", "orange"))},
            "colours: with channels=1",
        ),
    ],
)
def test_make_shapes_refuses_bad_parameters(kwargs, message):
    arguments = {"n": 10, "rng": _gen(0), **kwargs}
    with pytest.raises(ValueError, match=message):
        make_shapes(**arguments)


def test_make_shapes_needs_a_torch_generator():
    with pytest.raises(ValueError, match="rng must be a torch.Generator"):
        make_shapes(10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng must be a torch.Generator when jitter > 0"):
        ShapeTable.from_combinations([0, 1], jitter=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shapes": ()}, "shapes must be a non-empty"),
        ({"shapes": "square"}, "shapes must be a non-empty"),
        ({"shapes": ("square", "hexagon")}, "shapes must be one of"),
        ({"shapes": ("square", "square")}, "shapes must not repeat"),
        ({"colours": ("red", "teal")}, "colours must be one of"),
        ({"grid": 0}, "grid must be"),
        ({"grid": 9}, "grid must be"),
        ({"sizes": (0.9, 0.5)}, "sizes must be strictly increasing"),
        ({"sizes": (0.5, 1.5)}, r"sizes must hold numbers in \(0, 1\]"),
        ({"sizes": ()}, "sizes must be a non-empty"),
    ],
)
def test_shape_factors_refuse_bad_lists(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShapeFactors(**kwargs)


def test_codes_out_of_range_are_refused():
    factors = ShapeFactors()
    with pytest.raises(ValueError, match=r"combination must be integer codes in \[0, 96\)"):
        factors.decode(96)
    with pytest.raises(ValueError, match=r"colour must be integer codes in \[0, 4\)"):
        factors.encode(0, 4, 0, 0)
    with pytest.raises(ValueError, match="combination must be integer codes"):
        factors.decode(np.array([0.5]))
    with pytest.raises(ValueError, match="factor must be one of"):
        factors.value_names("hue")
    with pytest.raises(ValueError, match="label must be one of"):
        make_shapes(5, rng=_gen(0)).to_image_set(label="hue")
