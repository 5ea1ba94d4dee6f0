"""Power spectra (:mod:`madutils.metrics.spectrum`): normalisation, profiles, grid artifacts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from madutils.data.shapes import make_shapes
from madutils.metrics.spectrum import (
    high_frequency_share,
    power_spectrum,
    radial_frequency,
    radial_profile,
    spectral_excess,
    spectral_profiles,
)

SIZE = 16


def _shapes(seed: int, n: int = 512, size: int = SIZE) -> torch.Tensor:
    return make_shapes(n, rng=torch.Generator().manual_seed(seed), image_size=size).images


def _checkerboard(size: int = SIZE) -> torch.Tensor:
    i = torch.arange(size)
    return (-1.0) ** (i[:, None] + i[None, :])


def _cosine(size: int, fy: int, fx: int) -> torch.Tensor:
    i = torch.arange(size, dtype=torch.float64)
    return torch.cos(2 * math.pi * (fy * i[:, None] + fx * i[None, :]) / size)


def test_the_spectrum_sums_to_the_pixel_variance_parseval():
    images = torch.rand(10, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    spectrum = power_spectrum(images)
    assert spectrum.shape == (SIZE, SIZE) and spectrum.dtype == torch.float64
    variance = images.double().var(dim=(-2, -1), unbiased=False).mean()
    assert float(spectrum.sum()) == pytest.approx(float(variance), rel=1e-10)
    assert float(spectrum[SIZE // 2, SIZE // 2]) == pytest.approx(0.0, abs=1e-20)
    hann = power_spectrum(images, window="hann")  # Parseval on average, not exactly
    assert float(hann.sum()) == pytest.approx(float(variance), rel=0.2)


def test_a_large_set_is_transformed_in_blocks_with_the_same_result():
    images = torch.rand(100, 1, 256, 256, generator=torch.Generator().manual_seed(1))
    whole = power_spectrum(images)  # more than one block of images
    parts = (64 * power_spectrum(images[:64]) + 36 * power_spectrum(images[64:])) / 100
    assert torch.allclose(whole, parts, rtol=1e-10, atol=0)


def test_a_constant_image_has_no_spectrum_after_mean_subtraction():
    constant = torch.full((2, 1, 8, 8), 0.7)
    assert float(power_spectrum(constant).abs().max()) < 1e-25
    assert float(radial_profile(power_spectrum(constant)).abs().max()) < 1e-25
    with pytest.raises(ValueError, match="no spectral energy"):
        high_frequency_share(constant)


@pytest.mark.parametrize(("fy", "fx"), [(0, 3), (4, 0), (3, 4)])
def test_a_cosine_puts_its_energy_at_its_radius(fy, fx):
    size = 32
    image = _cosine(size, fy, fx).reshape(1, 1, size, size)
    spectrum = power_spectrum(image)
    centre = size // 2
    peaks = {(centre + fy, centre + fx), (centre - fy, centre - fx)}
    found = {tuple(int(v) for v in idx) for idx in torch.nonzero(spectrum > 1e-12)}
    assert found == peaks
    assert float(spectrum.sum()) == pytest.approx(0.5)  # the variance of a cosine
    profile = radial_profile(spectrum)
    assert profile.shape == (size // 2 + 1,)
    radius = math.hypot(fy, fx)
    assert int(torch.argmax(profile)) == round(radius)
    assert float(profile.sum() - profile[round(radius)]) == pytest.approx(0.0, abs=1e-12)


def test_radial_profile_bins_are_whole_circles_and_corners_are_optional():
    spectrum = torch.ones(SIZE, SIZE)
    assert torch.allclose(radial_profile(spectrum), torch.ones(SIZE // 2 + 1, dtype=torch.float64))
    with_corners = radial_profile(spectrum, corners=True)
    assert len(with_corners) == round(math.hypot(SIZE // 2, SIZE // 2)) + 1
    assert float(radial_frequency(SIZE)[SIZE // 2, SIZE // 2]) == 0.0


def test_a_checkerboard_raises_the_high_frequency_share_and_the_excess():
    real = _shapes(1)
    clean = _shapes(2)  # a second, independent draw of the same distribution
    artifacts = clean + 0.05 * _checkerboard()
    real_share = float(high_frequency_share(real))
    assert 0.0 < real_share < 0.5
    assert float(high_frequency_share(artifacts)) > 1.5 * real_share
    assert float(spectral_excess(clean, real)) == pytest.approx(1.0, abs=0.05)
    assert float(spectral_excess(artifacts, real)) > 1.5
    hann = float(spectral_excess(artifacts, real, window="hann"))
    assert hann > 1.5
    assert float(spectral_excess(clean, real, window="hann")) == pytest.approx(1.0, abs=0.05)


def test_blurred_images_have_less_high_frequency_energy():
    real, clean = _shapes(1), _shapes(2)
    kernel = torch.ones(3, 1, 3, 3) / 9
    padded = torch.nn.functional.pad(clean, (1, 1, 1, 1), mode="circular")
    blurred = torch.nn.functional.conv2d(padded, kernel, groups=3)
    assert float(spectral_excess(blurred, real)) < 0.5


def test_spectral_profiles_show_the_checkerboard_at_the_corner_radius():
    real, clean = _shapes(1, n=256), _shapes(2, n=256)
    profiles = spectral_profiles(clean + 0.05 * _checkerboard(), real)
    corner = round(math.hypot(SIZE // 2, SIZE // 2))
    assert profiles.radius.tolist() == list(range(1, corner + 1))
    assert float(profiles.log_ratio[-1]) > 3.0
    assert float(profiles.log_ratio[:-3].abs().max()) < 0.2
    plain = spectral_profiles(clean, real, corners=False)
    assert plain.radius.tolist() == list(range(1, SIZE // 2 + 1))
    np.testing.assert_allclose(
        plain.log_ratio.numpy(), np.log(plain.synthetic.numpy() / plain.real.numpy())
    )


def test_numpy_and_grey_images_are_accepted():
    grey = np.random.default_rng(0).random((4, 1, 8, 8))
    assert power_spectrum(grey).shape == (8, 8)
    assert 0.0 < float(high_frequency_share(grey, cutoff=0.3)) < 1.0


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(4, 8, 8), "images must have shape"),
        (torch.zeros(4, 2, 8, 8), "images must have 1 or 3 channels"),
        (torch.zeros(4, 3, 8, 6), "images must be square"),
        (torch.zeros(0, 3, 8, 8), "images must hold at least one image"),
        (torch.full((2, 1, 8, 8), float("nan")), "images contains NaN"),
    ],
)
def test_malformed_images_are_refused(images, message):
    with pytest.raises(ValueError, match=message):
        power_spectrum(images)


def test_bad_parameters_are_refused():
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for cutoff in (0, 1, 1.5, -0.2, True):
        with pytest.raises(ValueError, match=r"cutoff must be a number in \(0, 1\)"):
            high_frequency_share(images, cutoff=cutoff)
    with pytest.raises(ValueError, match="window must be one of"):
        power_spectrum(images, window="hamming")
    with pytest.raises(ValueError, match="same channels and size"):
        spectral_excess(images, torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="same channels and size"):
        spectral_profiles(images, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="spectrum must be a square 2-D array"):
        radial_profile(torch.ones(4, 5))
    with pytest.raises(ValueError, match="real_images have no spectral energy"):
        spectral_excess(images, torch.ones(2, 1, 8, 8))
