"""Image loops on colour and unlabelled data: a tiny StyleGAN2 on the coloured shapes, a folder
of colour images without classes measured with a feature function of the user's, and the
settings that do not go together refused."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from madutils.loops.image_config import IMAGE_METRICS, ImageLoopConfig
from madutils.loops.images import ImageRun, prepare_real_images, run_image_loop

SHAPES = dict(
    model="stylegan2",
    dataset="shapes",
    image_size=8,
    held_out=120,
    n_ini=64,
    n_eval=60,
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


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _values(table):
    return table.sort_values(["generation", "replicate", "metric"])["value"].to_numpy()


def test_a_stylegan2_loop_on_the_shapes_resumes_exactly(tmp_path, cache):
    changes = dict(lam=0.7, family="synthetic_augmentation", synthetic_source="accumulate")
    config = ImageLoopConfig(**SHAPES, **changes)
    assert config.resolved().image_channels == 3  # the shapes are colour
    in_memory = run_image_loop(config, None, progress=False, cache_dir=cache)
    short = ImageLoopConfig(**{**SHAPES, **changes, "generations": 2})
    run_image_loop(short, tmp_path / "runs", progress=False, cache_dir=cache)
    resumed = run_image_loop(config, tmp_path / "runs", progress=False, cache_dir=cache)
    assert resumed.computed == 1  # only generation 3 was trained
    torch.testing.assert_close(
        torch.tensor(_values(resumed.table)), torch.tensor(_values(in_memory.table))
    )
    assert set(resumed.table.metric) == set(IMAGE_METRICS)
    run = ImageRun(resumed.run_dir)
    samples = run.samples(3)
    assert samples.images.shape[1:] == (3, 8, 8)
    assert type(run.model(2)).__name__ == "StyleGAN2"
    real = prepare_real_images(run.config, cache_dir=cache)
    assert real.features.in_channels == 3 and real.train.n_classes == 96
    assert torch.equal(samples.labels, real.features.predict(samples.images))


def test_the_floor_of_the_image_measures_is_near_their_real_values(tmp_path, cache):
    config = ImageLoopConfig(**{**SHAPES, "generations": 1})
    table = run_image_loop(config, None, progress=False, cache_dir=cache).table
    floor = table[table.generation == 0].groupby("metric").value.median()
    assert abs(floor["spectral_excess"] - 1.0) < 0.1  # real sets against real images
    assert 0.0 < floor["class_coverage"] <= 1.0


def test_the_image_measures_of_the_registry():
    from madutils.metrics import MetricContext
    from madutils.metrics.registry import measure
    from madutils.metrics.spectrum import spectral_excess

    images = torch.rand(20, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    real = torch.rand(30, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    context = MetricContext(
        images=images, real_images=real, predicted=torch.tensor([0, 0, 1, 5]), n_classes=8
    )
    values = measure(["spectral_excess", "class_coverage"], context)
    assert float(values["spectral_excess"]) == pytest.approx(float(spectral_excess(images, real)))
    assert float(values["class_coverage"]) == 3 / 8  # classes 0, 1 and 5 of 8
    # 80 images of 8 classes: a class counts from floor(0.2 * 80 / 8) = 2 images on
    predicted = torch.tensor([0] * 40 + [1] * 30 + [2] * 9 + [3])
    context = MetricContext(predicted=predicted, n_classes=8)
    assert float(measure(["class_coverage"], context)["class_coverage"]) == 3 / 8
    with pytest.raises(ValueError, match="needs the real images"):
        measure(["spectral_excess"], MetricContext(images=images))


_FEATURES = textwrap.dedent(
    """
    import torch

    def mean_colours(images):
        # a feature function of a user's: the mean colour of each quarter of the image
        n, c, s, _ = images.shape
        quarters = images.reshape(n, c, 2, s // 2, 2, s // 2).mean(dim=(3, 5))
        return quarters.reshape(n, -1)
    """
)


def _flat_colour_folder(path, n=260, size=8):
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[..., i % 3] = 200
        pixels[: size // 2, : size // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"{i:05d}.png")
    return path


def test_an_unlabelled_colour_folder_runs_with_a_feature_function(tmp_path, cache, monkeypatch):
    (tmp_path / "user_features.py").write_text(_FEATURES)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _flat_colour_folder(tmp_path / "faces")
    settings = {
        **SHAPES,
        "dataset": "folder",
        "data_path": str(folder),
        "image_channels": 3,
        "held_out": 60,
        "n_ini": 80,
        "n_eval": 40,
        "generations": 2,
    }
    with pytest.raises(ValueError, match="flat folder .*features='module:function'"):
        run_image_loop(ImageLoopConfig(**settings), None, progress=False, cache_dir=cache)
    config = ImageLoopConfig(**settings, features="user_features:mean_colours")
    result = run_image_loop(config, tmp_path / "runs", progress=False, cache_dir=cache)
    assert set(result.table.metric) == set(IMAGE_METRICS) - {"class_coverage"}
    samples = ImageRun(result.run_dir).samples(2)
    assert samples.labels is None and samples.images.shape[1:] == (3, 8, 8)
    from madutils import plotting
    from madutils.analysis.images import UNLABELLED_ROWS, sample_panels

    panels = sample_panels(result, [0, 2], per_class=2)
    assert {g: tuple(p.shape) for g, p in panels.items()} == {
        g: (2 * UNLABELLED_ROWS, 3, 8, 8) for g in (0, 2)
    }
    figure = plotting.image_panels(panels, per_row=2)
    shown = figure.axes[0].images[0].get_array()
    assert shown.shape == (8 * 9 - 1, 2 * 9 - 1, 3)  # colour, white one-pixel gaps
    assert np.allclose(shown[8, :], 1.0) and np.allclose(
        shown[:8, :8], panels[0][0].permute(1, 2, 0)
    )
    ddpm = ImageLoopConfig(
        **{**settings, "model": "ddpm", "image_channels": 1, "channels": (8, 16)},
        features="user_features:mean_colours",
    )
    with pytest.raises(ValueError, match="class-conditional"):
        run_image_loop(ddpm, None, progress=False, cache_dir=cache)
    sys.modules.pop("user_features", None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(dataset="mnist", image_channels=3, image_size=8), "image_channels must be 1 for"),
        (dict(model="ddpm"), "model='ddpm' takes grey images only"),
        (dict(model="wgan"), "model='wgan' takes grey images only"),
        (dict(image_size=12), "power of two from 8 to 256 for model='stylegan2'"),
        (dict(image_channels=2), "image_channels must be one of 1, 3"),
        (dict(style_mixing=1.5), "style_mixing must be a probability"),
        (dict(r1_gamma=-1.0), "r1_gamma must be a finite number >= 0"),
        (dict(features="torchvision"), "features must be 'lenet' or 'module:function'"),
    ],
)
def test_settings_that_do_not_go_together_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        ImageLoopConfig(**{**SHAPES, **changes})


def test_a_feature_function_that_cannot_be_imported_is_named(cache):
    config = ImageLoopConfig(**SHAPES, features="no_such_module_here:f")
    with pytest.raises(ValueError, match="cannot import the module 'no_such_module_here'"):
        run_image_loop(config, None, progress=False, cache_dir=cache)


def test_grey_shapes_train_a_grey_stylegan2(cache):
    config = ImageLoopConfig(**{**SHAPES, "generations": 1, "image_channels": 1})
    result = run_image_loop(config, None, progress=False, cache_dir=cache)
    assert set(result.table.generation) == {0, 1}


def test_spectra_and_first_samples_of_a_stored_run(tmp_path, cache):
    from madutils import plotting
    from madutils.analysis.images import first_samples, generation_spectra, mean_power_spectra
    from madutils.metrics.spectrum import power_spectrum, radial_profile

    config = ImageLoopConfig(**{**SHAPES, "generations": 2})
    result = run_image_loop(config, tmp_path / "runs", progress=False, cache_dir=cache)
    run = ImageRun(result.run_dir)
    real = prepare_real_images(run.config, cache_dir=cache)

    firsts = first_samples(result, [0, 2], 5, real=real)
    assert torch.equal(firsts[0], real.train.images[:5])
    assert torch.equal(firsts[2], run.samples(2).images[:5])

    spectra = mean_power_spectra(run, [0, 1], real=real)
    torch.testing.assert_close(
        torch.from_numpy(spectra[0]), power_spectrum(real.held_out.images), check_dtype=False
    )
    assert spectra[1].shape == (8, 8)

    table = generation_spectra([run, run], [1, 2], real=real, loop="fully")
    assert set(table.generation) == {1, 2} and set(table.loop) == {"fully"}
    one = table[table.generation == 2].sort_values("radius")
    # the same run twice averages to that run's own spectrum
    profile = radial_profile(power_spectrum(run.samples(2).images), corners=True)[1:]
    np.testing.assert_allclose(one.power.to_numpy(), profile.numpy(), rtol=1e-6)
    np.testing.assert_allclose(one.log_ratio, np.log(one.power / one.real_power), rtol=1e-9)

    fig = plotting.radial_spectra(table, col="loop")
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3  # two generations and the zero line
    fig = plotting.zoom_and_spectra(
        {g: firsts[g][0] for g in (0, 2)}, mean_power_spectra(run, [0, 2])
    )
    assert len(fig.axes) == 5  # two images, two spectra, the colour bar
