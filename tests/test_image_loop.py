"""Tests of the image loops: tiny DDPMs on the 8x8 scikit-learn digits, a few seconds each."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch

from madutils.loops.image_config import IMAGE_METRICS, ImageLoopConfig
from madutils.loops.images import ImageRun, run_image_loop

TINY = dict(
    dataset="digits",
    held_out=150,
    n_ini=60,
    n_eval=60,
    generations=3,
    channels=(8, 16),
    timesteps=10,
    steps=3,
    epochs=1,
    batch_size=32,
    feature_epochs=1,
    device="cpu",
    mixed_precision="no",
)


#: A fresh data loop's two sizes (it has no defaults for them).
FRESH = dict(family="fresh_data", n_real=60, n_synthetic=60)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _run(tmp_path, cache, **changes):
    config = ImageLoopConfig(**{**TINY, **changes})
    return run_image_loop(config, tmp_path / "runs", progress=False, cache_dir=cache)


def _values(table):
    return table.sort_values(["generation", "metric"])["value"].to_numpy()


@pytest.mark.parametrize("family", ["fully_synthetic", "synthetic_augmentation", "fresh_data"])
def test_every_family_runs_and_stores_each_generation(tmp_path, cache, family):
    sizes = dict(n_real=60, n_synthetic=60) if family == "fresh_data" else {}
    result = _run(tmp_path, cache, family=family, lam=0.8, **sizes)
    table = result.table
    assert sorted(table.generation.unique()) == [0, 1, 2, 3]
    assert set(table.metric) == set(IMAGE_METRICS)
    assert (table.family == family).all() and (table.lam == 0.8).all()
    run = ImageRun(result.run_dir)
    assert run.generations == [1, 2, 3]
    samples = run.samples(2)
    assert samples.images.shape == (60, 1, 8, 8)
    assert torch.bincount(samples.labels, minlength=10).tolist() == [6] * 10  # balanced
    assert run.model(3).is_fitted
    assert len(result.timings) == 3
    assert json.loads((result.run_dir / "config.json").read_text())["settings"]["sampler"]


def test_real_data_floor_is_better_than_an_untrained_model(tmp_path, cache):
    table = _run(tmp_path, cache, generations=1).table
    fid = table[table.metric == "fid"].groupby("generation").value.median()
    recall = table[table.metric == "recall"].groupby("generation").value.median()
    assert fid[0] < fid[1]
    assert recall[0] > recall[1]


def test_the_floor_is_several_disjoint_real_sets(tmp_path, cache):
    from madutils.loops.images import FLOOR_SETS

    table = _run(tmp_path, cache, generations=1).table
    floor = table[table.generation == 0]
    # 1,797 digits less 150 held out hold 27 sets of n_eval = 60: the first FLOOR_SETS
    assert sorted(floor.replicate.unique()) == list(range(FLOOR_SETS))
    assert len(floor) == FLOOR_SETS * len(IMAGE_METRICS)
    fid = floor[floor.metric == "fid"].value
    assert fid.nunique() == FLOOR_SETS  # different real images, different values
    assert set(table[table.generation > 0].replicate) == {0}
    # memorisation: a real set against another real set is no copy (about 1)
    floor_copies = floor[floor.metric == "memorisation"].value
    assert ((floor_copies > 0.5) & (floor_copies < 2.0)).all()
    later = table[(table.generation > 0) & (table.metric == "memorisation")].value
    assert (later > 0).all() and later.notna().all()
    # a floor of fewer sets where the training images run short
    few = _run(tmp_path / "few", cache, generations=1, n_eval=600, n_ini=60).table
    assert few[few.generation == 0].replicate.nunique() == 2  # 1,647 images: two sets of 600
    with pytest.raises(ValueError, match="n_eval must be smaller than the 1647 real training"):
        _run(tmp_path / "all", cache, generations=1, n_eval=1647, n_ini=60)


def test_resume_reproduces_an_uninterrupted_run(tmp_path, cache):
    in_memory = run_image_loop(
        ImageLoopConfig(**{**TINY, **FRESH, "generations": 4}),
        None,
        progress=False,
        cache_dir=cache,
    )
    _run(tmp_path, cache, **FRESH, generations=2)
    resumed = _run(tmp_path, cache, **FRESH, generations=4)
    assert resumed.run_dir is not None
    torch.testing.assert_close(
        torch.tensor(_values(resumed.table)), torch.tensor(_values(in_memory.table))
    )


def test_first_generation_is_shared_between_lams_and_families(tmp_path, cache):
    first = _run(tmp_path, cache, lam=1.0, generations=1)
    other = _run(tmp_path, cache, lam=0.5, family="synthetic_augmentation", generations=1)
    assert len(list((tmp_path / "runs" / "first_generation").glob("ddpm-*.pt"))) == 1
    weights = [ImageRun(r.run_dir).model(1).model_.state_dict() for r in (first, other)]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name])
    assert other.timings.fit_seconds[0] < first.timings.fit_seconds[0]


def test_first_generation_samples_are_shared_at_one_lam(tmp_path, cache):
    alone = run_image_loop(ImageLoopConfig(**TINY), None, progress=False, cache_dir=cache)
    first = _run(tmp_path, cache)
    # the same first generation, curated and fed to another family: its samples are read back
    changes = dict(family="synthetic_augmentation", curation="best_of", candidates=2)
    other = _run(tmp_path, cache, **changes)
    cached = list((tmp_path / "runs" / "first_generation").glob("samples-*.pt"))
    assert len(cached) == 1
    samples = [ImageRun(r.run_dir).samples(1) for r in (first, other)]
    assert torch.equal(samples[0].images, samples[1].images)
    assert torch.equal(samples[0].labels, samples[1].labels)
    # and they are the samples a run without a store draws: the cache changes no number
    rows = [
        r.table[(r.table.generation == 1) & r.table.metric.isin(IMAGE_METRICS)]
        for r in (alone, first, other)
    ]
    for shared in rows[1:]:
        torch.testing.assert_close(torch.tensor(_values(shared)), torch.tensor(_values(rows[0])))
    # generation 2 differs (other training sets), and another lam draws other samples
    assert not torch.equal(
        ImageRun(first.run_dir).samples(2).images, ImageRun(other.run_dir).samples(2).images
    )
    _run(tmp_path, cache, lam=0.5, generations=1)
    assert len(list((tmp_path / "runs" / "first_generation").glob("samples-*.pt"))) == 2


def test_other_settings_never_overwrite_a_run(tmp_path, cache):
    result = _run(tmp_path, cache, generations=1)
    settings = json.loads((result.run_dir / "config.json").read_text())["settings"]
    settings["epochs"] = 7
    (result.run_dir / "config.json").write_text(json.dumps({"settings": settings}))
    with pytest.raises(FileExistsError, match="epochs"):
        _run(tmp_path, cache, generations=1)


def test_running_out_of_fresh_real_images_is_a_clear_error(tmp_path, cache):
    with pytest.raises(ValueError, match=r"needs 1660 real images .* but only 1647"):
        _run(tmp_path, cache, **{**FRESH, "n_real": 200}, n_ini=60, generations=9)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"family": "both"}, "family"),
        ({"model": "vae"}, "model"),
        ({"dataset": "cifar"}, "dataset"),
        ({"dataset": "idx"}, "data_path"),
        ({"lam": 0.0}, "lam"),
        ({"lam": 1.2}, "lam"),
        ({"sampler": "euler"}, "sampler"),
        ({"steps": 20}, "steps"),
        ({"family": "fully_synthetic", "n_real": 5}, "n_real"),
        ({"family": "synthetic_augmentation", "n_real": 5}, "n_real"),
        ({"k": 60}, "k"),
        ({"channels": ()}, "channels"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_settings_name_the_parameter(changes, message):
    with pytest.raises(ValueError, match=message):
        ImageLoopConfig(**{**TINY, **changes})


def test_image_size_the_unet_cannot_take_is_refused():
    with pytest.raises(ValueError, match=r"image_size must be divisible by .* = 4"):
        ImageLoopConfig(**{**TINY, "image_size": 10, "channels": (8, 16, 16)})


def test_resolved_settings_are_plain_values():
    cfg = ImageLoopConfig(**TINY).resolved()
    assert cfg.image_size == 8 and cfg.n_real == 0 and cfg.n_synthetic == 60
    assert cfg.device == "cpu"
    again = ImageLoopConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert dataclasses.replace(cfg, sampler="ddpm").resolved().steps == 3
    assert isinstance(pd.DataFrame([cfg.to_dict()]), pd.DataFrame)


def test_full_mnist_from_idx_files_pools_train_and_test(tmp_path, cache):
    from test_image_data import write_idx

    from madutils.data.images import load_sklearn_digits

    digits = load_sklearn_digits()
    pixels = (digits.images[:, 0] * 255).round().to(torch.uint8).numpy()
    labels = digits.labels.to(torch.uint8).numpy()
    write_idx(tmp_path, "train", pixels[:1200], labels[:1200], gz=True)
    write_idx(tmp_path, "t10k", pixels[1200:], labels[1200:], gz=False)
    config = ImageLoopConfig(
        **{**TINY, "dataset": "idx", "data_path": str(tmp_path), "image_size": 8, "held_out": 597}
    )
    result = run_image_loop(
        dataclasses.replace(config, generations=1), None, progress=False, cache_dir=cache
    )
    assert set(result.table.generation) == {0, 1}
    from madutils.loops.images import prepare_real_images

    real = prepare_real_images(config, cache_dir=cache)
    assert len(real.train) == 1200 and len(real.held_out) == 597


def test_sample_panels_and_feature_map(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("MADUTILS_CACHE", str(cache))
    from madutils import plotting
    from madutils.analysis import feature_embedding, run_sweep, sample_panels

    sweep = run_sweep(
        ImageLoopConfig(**{**TINY, "generations": 2}), tmp_path / "runs", lam=[1.0, 0.5]
    )
    runs = sweep.results
    assert set(sweep.table.lam) == {1.0, 0.5}
    assert set(sweep.table[sweep.table.generation > 0].replicate) == {0}
    assert [r.config.lam for r in runs] == [1.0, 0.5]
    assert (runs[1].table.lam == 0.5).all()
    panels = sample_panels(runs[0], [0, 2], per_class=3)
    assert panels[2].shape == (30, 1, 8, 8)
    stored = ImageRun(runs[0].run_dir).samples(2)
    first_of_class_1 = stored.images[stored.labels == 1][0]
    assert torch.equal(panels[2][3], first_of_class_1)  # class order, 3 per class
    frame = feature_embedding({"a": runs[0], "b": runs[1]}, [1, 2], n_per_set=40)
    assert len(frame) == 40 * 5
    assert set(frame.run) == {"real", "a", "b"}
    fig = plotting.embedding_scatter(frame)
    assert len(fig.axes) == 4
    fig = plotting.image_panels(panels, per_row=3)
    assert len(fig.axes[0].images) == 1
    with pytest.raises(ValueError, match="unknown setting"):
        run_sweep(ImageLoopConfig(**TINY), None, lamda=[1.0])


def test_wgan_loop_labels_its_samples_with_the_feature_network(tmp_path, cache):
    changes = dict(model="wgan", width=8, latent_dim=8, lam=0.7, **FRESH)
    in_memory = run_image_loop(
        ImageLoopConfig(**{**TINY, **changes, "generations": 3}),
        None,
        progress=False,
        cache_dir=cache,
    )
    _run(tmp_path, cache, **changes, generations=2)
    resumed = _run(tmp_path, cache, **changes, generations=3)
    torch.testing.assert_close(
        torch.tensor(_values(resumed.table)), torch.tensor(_values(in_memory.table))
    )
    run = ImageRun(resumed.run_dir)
    samples = run.samples(3)
    assert samples.images.shape == (60, 1, 8, 8)
    from madutils.loops.images import prepare_real_images

    real = prepare_real_images(run.config, cache_dir=cache)
    assert torch.equal(samples.labels, real.features.predict(samples.images))
    assert type(run.model(1)).__name__ == "WGANGP"
    with pytest.raises(ValueError, match="divisible by 4"):
        ImageLoopConfig(**{**TINY, **changes, "image_size": 10})


def test_fresh_data_needs_both_sizes_as_in_every_loop():
    from madutils.loops.config import LoopConfig

    for config, sizes in ((ImageLoopConfig, TINY), (LoopConfig, {"n_ini": 20})):
        with pytest.raises(ValueError, match="needs n_real and n_synthetic"):
            config(**{**sizes, "family": "fresh_data"})


@pytest.mark.parametrize("source", ["accumulate", "memory"])
def test_synthetic_sources_of_image_loops_resume_exactly(tmp_path, cache, source):
    changes = dict(synthetic_source=source, memory=2, n_synthetic=30, generations=4)
    in_memory = run_image_loop(
        ImageLoopConfig(**{**TINY, **changes}), None, progress=False, cache_dir=cache
    )
    last = run_image_loop(
        ImageLoopConfig(**{**TINY, **changes, "synthetic_source": "last"}),
        None,
        progress=False,
        cache_dir=cache,
    )
    _run(tmp_path, cache, **{**changes, "generations": 2})
    resumed = _run(tmp_path, cache, **changes)
    torch.testing.assert_close(
        torch.tensor(_values(resumed.table)), torch.tensor(_values(in_memory.table))
    )
    # generations 1 and 2 train alike; from generation 3 the source makes a difference
    early = in_memory.table.generation <= 2
    pd.testing.assert_frame_equal(
        in_memory.table[early].drop(columns=[]).reset_index(drop=True),
        last.table[early].reset_index(drop=True),
    )
    assert not (
        in_memory.table[~early].value.to_numpy() == last.table[~early].value.to_numpy()
    ).all()


def test_accumulated_pool_grows_by_n_synthetic_per_generation(cache):
    from madutils.loops.images import ImageLoop, prepare_real_images

    config = ImageLoopConfig(
        **{**TINY, "synthetic_source": "accumulate", "n_synthetic": 20, "generations": 3}
    ).resolved()
    sizes = []
    loop = ImageLoop(config, None, prepare_real_images(config, cache_dir=cache), progress=False)
    original = loop.training_set.synthetic_part
    loop.training_set.synthetic_part = lambda rng: (
        sizes.append(len(original(rng).labels)) or (original(rng))
    )
    for generation in (1, 2, 3):
        loop.step(generation)
    assert sizes == [20, 40]


def test_memory_source_draws_from_the_k_most_recent_generations(cache):
    from madutils.loops.images import ImageLoop, prepare_real_images

    config = ImageLoopConfig(
        **{**TINY, "synthetic_source": "memory", "memory": 2, "n_synthetic": 40}
    ).resolved()
    loop = ImageLoop(config, None, prepare_real_images(config, cache_dir=cache), progress=False)
    for generation in (1, 2, 3):
        loop.step(generation)
    assert len(loop.synthetic) == 2  # only the K = 2 most recent generations are kept
    part = loop._synthetic_part(torch.Generator().manual_seed(0))
    kept = [torch.as_tensor(images) for images, _ in loop.synthetic]
    quantised = (part.images * 255).round().to(torch.uint8)
    from_each = [
        sum(bool((image == k).all(dim=(1, 2, 3)).any()) for image in quantised) for k in kept
    ]
    assert len(part.labels) == 40 and all(n > 5 for n in from_each)


def test_fixed_steps_gives_larger_training_sets_fewer_epochs(tmp_path, cache):
    from madutils.loops.images import fixed_step_epochs

    assert fixed_step_epochs(45, 1000, 2000) == 22  # 22.5 rounds to even
    assert fixed_step_epochs(45, 1000, 3000) == 15
    assert fixed_step_epochs(1, 60, 1000) == 1  # never fewer than one pass
    augmented = _run(tmp_path, cache, family="synthetic_augmentation", epochs=4, fixed_steps=True)
    run = ImageRun(augmented.run_dir)
    # generation 1 trains on n_ini = 60 images, later ones on 60 real + 60 synthetic
    assert [run.model(g).epochs for g in (1, 2, 3)] == [4, 2, 2]
    plain = _run(tmp_path, cache, family="synthetic_augmentation", epochs=4)
    assert [ImageRun(plain.run_dir).model(g).epochs for g in (1, 2)] == [4, 4]
    # generation 1 is the same model either way (it is read from the first-generation cache)
    first = augmented.table[augmented.table.generation == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        first, plain.table[plain.table.generation == 1].reset_index(drop=True)
    )
    pool = _run(
        tmp_path,
        cache,
        family="synthetic_augmentation",
        synthetic_source="accumulate",
        epochs=6,
        fixed_steps=True,
    )
    # the pool holds 60 then 120 synthetic images: 6 * 60 / 120 = 3 and 6 * 60 / 180 = 2
    assert [ImageRun(pool.run_dir).model(g).epochs for g in (1, 2, 3)] == [6, 3, 2]
