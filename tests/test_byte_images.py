"""Images held as their 8-bit pixel values: the same numbers as float32 copies, everywhere.

Image folders stay uint8 in the image loops (a quarter of the memory: FFHQ at 128x128 and the
accumulated pool of the paper's E4 fit only so); every consumer converts a batch at a time.
These tests check that nothing a run computes depends on which of the two it was given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import madutils.loops.images as image_loops
from madutils._image_checks import check_images, unit_float
from madutils.data.images import ImageSet, _bytes_to_float, load_image_folder
from madutils.loops.image_config import ImageLoopConfig
from madutils.metrics.features import FeatureNetwork, FunctionFeatures
from madutils.metrics.spectrum import power_spectrum, spectral_excess
from madutils.models.ddpm import ConditionalDDPM
from madutils.models.stylegan2 import StyleGAN2
from madutils.models.wgan import WGANGP


def _bytes(n=40, channels=1, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8))


def test_bytes_become_the_floats_a_whole_set_conversion_gives():
    pixels = _bytes(300, 3)
    whole = _bytes_to_float(pixels.numpy())
    assert torch.equal(torch.cat([unit_float(b) for b in pixels.split(7)]), whole)
    assert torch.equal(whole, pixels.to(torch.float32) / 255.0)
    floats = torch.rand(4, 1, 8, 8)
    assert unit_float(floats) is floats  # float32 passes through, no copy
    assert check_images(pixels, "X", 8, 3).dtype == torch.uint8  # checked, not converted
    with pytest.raises(
        ValueError, match="X must hold floating-point values in \\[0, 1\\] or uint8"
    ):
        check_images(pixels.to(torch.int16), "X", 8, 3)


def test_an_image_set_of_bytes():
    pixels = _bytes(30, 3, 16)
    labels = torch.arange(30) % 3
    data = ImageSet(pixels, labels, n_classes=3)
    assert data.images.dtype == torch.uint8
    assert torch.equal(data.floats(), pixels.float() / 255.0)
    floats = data.as_float()
    assert floats.images.dtype == torch.float32
    assert floats.as_float() is floats
    first, second = data.split(0.5, rng=torch.Generator().manual_seed(1))
    assert first.images.dtype == torch.uint8 and len(first) + len(second) == 30
    assert torch.equal(data.resized(8).images, floats.resized(8).images)
    with pytest.raises(ValueError, match="torch.float32 \\(values in \\[0, 1\\]\\) or torch.uint8"):
        ImageSet(pixels.to(torch.float64), labels, n_classes=3)


def test_a_folder_read_as_bytes_holds_the_floats_values(tmp_path):
    rng = np.random.default_rng(2)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    floats = load_image_folder(tmp_path, channels=3, image_size=8)
    pixels = load_image_folder(tmp_path, channels=3, image_size=8, dtype="uint8")
    assert pixels.images.dtype == torch.uint8 and pixels.labels is None
    assert torch.equal(pixels.floats(), floats.images)
    with pytest.raises(ValueError, match="dtype must be one of 'float32', 'uint8'"):
        load_image_folder(tmp_path, channels=3, image_size=8, dtype="float16")
    with pytest.raises(ValueError, match="dtype='uint8' keeps the decoded bytes, and size="):
        load_image_folder(tmp_path, channels=3, size=8, dtype="uint8")


def _weights(model) -> list[torch.Tensor]:
    return [v for network in model._networks for v in getattr(model, network).state_dict().values()]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ConditionalDDPM(
            image_size=8, n_classes=2, channels=(8, 16), epochs=2, timesteps=10, progress=False
        ),
        lambda: WGANGP(
            image_size=8, epochs=2, batch_size=16, width=8, latent_dim=8, progress=False
        ),
        lambda: StyleGAN2(
            image_size=8,
            image_channels=3,
            epochs=2,
            batch_size=16,
            width=8,
            max_width=16,
            latent_dim=8,
            mapping_layers=1,
            progress=False,
        ),
    ],
    ids=["ddpm", "wgan", "stylegan2"],
)
def test_a_model_trained_on_bytes_is_the_model_trained_on_their_floats(make):
    model = make()
    channels = getattr(model, "image_channels", 1)
    pixels = _bytes(40, channels)
    labels = torch.arange(40) % 2
    on_bytes = make().fit(pixels, labels, rng=torch.Generator().manual_seed(3))
    on_floats = make().fit(unit_float(pixels), labels, rng=torch.Generator().manual_seed(3))
    for a, b in zip(_weights(on_bytes), _weights(on_floats), strict=True):
        assert torch.equal(a, b)


def test_the_feature_network_and_the_spectra_read_bytes_as_their_floats(tmp_path):
    pixels = _bytes(120, 3, 8, seed=4)
    labels = torch.arange(120) % 2
    floats = unit_float(pixels)
    network = FeatureNetwork(
        image_size=8, n_classes=2, in_channels=3, epochs=1, cache_dir=tmp_path, progress=False
    )
    network.fit(pixels[:80], labels[:80], pixels[80:], labels[80:])
    twin = FeatureNetwork(
        image_size=8, n_classes=2, in_channels=3, epochs=1, cache_dir=tmp_path / "b", progress=False
    )
    twin.fit(floats[:80], labels[:80], floats[80:], labels[80:])
    assert torch.equal(network.features(pixels), twin.features(floats))
    assert torch.equal(network.predict(pixels), twin.predict(floats))
    seen = []
    function = FunctionFeatures(lambda x: seen.append(x.dtype) or x.mean(dim=(2, 3)), "means")
    assert torch.equal(function.features(pixels), function.features(floats))
    assert set(seen) == {torch.float32}  # the user's function is given floats in [0, 1]
    assert torch.equal(power_spectrum(pixels), power_spectrum(floats))
    excess = spectral_excess(pixels[:60], pixels[60:])
    assert float(excess) == float(spectral_excess(floats[:60], floats[60:]))


def _labelled_colour_folder(root, per_class=130, size=8):
    rng = np.random.default_rng(5)
    for c, channel in enumerate((0, 2)):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            pixels[..., channel] += 150
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


def test_a_loop_on_a_folder_keeps_bytes_and_computes_what_floats_give(tmp_path, monkeypatch):
    folder = _labelled_colour_folder(tmp_path / "folder")
    config = ImageLoopConfig(
        model="stylegan2",
        dataset="folder",
        data_path=str(folder),
        image_size=8,
        image_channels=3,
        family="synthetic_augmentation",
        synthetic_source="accumulate",
        held_out=60,
        n_ini=80,
        n_eval=40,
        generations=3,
        epochs=1,
        batch_size=16,
        latent_dim=8,
        mapping_layers=1,
        width=8,
        max_width=16,
        feature_epochs=1,
        device="cpu",
    )
    trained_on = []
    fit = StyleGAN2.fit
    monkeypatch.setattr(
        StyleGAN2,
        "fit",
        lambda self, X, y=None, *, rng: trained_on.append(X.dtype) or fit(self, X, y, rng=rng),
    )
    monkeypatch.setattr(image_loops, "_PREPARED", {})
    on_bytes = image_loops.run_image_loop(config, None, progress=False, cache_dir=tmp_path / "c")
    real = image_loops.prepare_real_images(config, cache_dir=tmp_path / "c")
    assert real.train.images.dtype == torch.uint8
    assert trained_on == [torch.uint8] * 3  # the real images and the pool, all as bytes

    load = image_loops.load_dataset
    monkeypatch.setattr(image_loops, "load_dataset", lambda *a, **k: load(*a, **k).as_float())
    monkeypatch.setattr(image_loops, "_PREPARED", {})
    trained_on.clear()
    on_floats = image_loops.run_image_loop(config, None, progress=False, cache_dir=tmp_path / "d")
    assert trained_on == [torch.float32] * 3
    columns = ["generation", "replicate", "metric"]
    a, b = (r.table.sort_values(columns).reset_index(drop=True) for r in (on_bytes, on_floats))
    assert a[columns].equals(b[columns])
    assert np.array_equal(a["value"].to_numpy(), b["value"].to_numpy(), equal_nan=True)
