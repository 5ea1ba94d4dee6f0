"""Fault injection on the image loops' stored files: models, samples, the first generation
shared by a sweep, and the feature network's cache (tiny DDPMs on the 8x8 digits)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch
from test_image_loop import TINY

from madutils.errors import DamagedFileError
from madutils.files import file_digest
from madutils.loops import images
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import ImageRun, run_image_loop
from madutils.results import repair


def _run(tmp_path, generations=3, **options):
    config = ImageLoopConfig(**{**TINY, "generations": generations})
    return run_image_loop(
        config, tmp_path / "runs", progress=False, cache_dir=tmp_path / "cache", **options
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("reference")).table


def _garbage(path):
    path.write_bytes(os.urandom(200))


def _half(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


@pytest.mark.parametrize("damage", [_garbage, _half, lambda p: p.write_bytes(b"")])
def test_a_damaged_model_file_is_named_when_read(tmp_path, damage):
    result = _run(tmp_path, generations=2)
    damage(result.run_dir / "models" / "00002.pt")
    run = ImageRun(result.run_dir)
    assert run.model(1).is_fitted
    with pytest.raises(DamagedFileError, match=r"models/00002\.pt"):
        run.model(2)


def test_damaged_samples_stop_a_resume_and_repair_recomputes_them(tmp_path, reference):
    run_dir = _run(tmp_path, generations=2).run_dir
    _half(run_dir / "samples" / "00002.pt")
    with pytest.raises(DamagedFileError, match=r"samples/00002\.pt.*madutils repair"):
        _run(tmp_path, generations=3)
    with pytest.raises(DamagedFileError, match=r"samples/00002\.pt"):
        ImageRun(run_dir).samples(2)
    assert repair(run_dir) == [2]
    pd.testing.assert_frame_equal(_run(tmp_path, generations=3).table, reference)


def test_a_bad_first_generation_cache_is_rebuilt_with_a_warning(tmp_path, reference):
    first = _run(tmp_path, generations=1)
    (cached,) = (tmp_path / "runs" / "first_generation").glob("ddpm-*.pt")
    _garbage(cached)
    other = ImageLoopConfig(**{**TINY, "generations": 3, "lam": 0.5})  # shares generation 1
    with pytest.warns(RuntimeWarning, match=rf"cache entry .*{cached.name} .*rebuilt"):
        rebuilt = run_image_loop(
            other, tmp_path / "runs", progress=False, cache_dir=tmp_path / "cache"
        )
    # retrained, not loaded from the garbage: the same weights as the first run's
    weights = [ImageRun(r.run_dir).model(1).state_dict() for r in (first, rebuilt)]
    networks = [k for k, v in weights[0].items() if k != "params" and isinstance(v, dict)]
    assert networks
    for name in networks:
        a, b = weights[0][name], weights[1][name]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert cached.with_name(cached.name + ".sha256").exists()


def test_a_bad_feature_network_cache_is_rebuilt_with_a_warning(tmp_path, reference):
    _run(tmp_path / "a", generations=1)
    (cached,) = (tmp_path / "a" / "cache").glob("lenet-*.pt")
    _half(cached)
    images._PREPARED.clear()  # the prepared real images are kept in memory: read the cache
    with pytest.warns(RuntimeWarning, match=rf"cache entry .*{cached.name}"):
        table = _run(tmp_path / "a", generations=3).table  # another run, same cache
    pd.testing.assert_frame_equal(table, reference)


def _cached_samples(tmp_path):
    (cached,) = (tmp_path / "runs" / "first_generation").glob("samples-*.pt")
    return cached


def _redraw_after_damage(tmp_path, first, message):
    """Run a loop that shares ``first``'s generation 1 and check that it warns with
    ``message`` and draws the first run's samples again instead of reading the bad entry."""
    other = ImageLoopConfig(**{**TINY, "generations": 1, "family": "synthetic_augmentation"})
    with pytest.warns(RuntimeWarning, match=message):
        redrawn = run_image_loop(
            other, tmp_path / "runs", progress=False, cache_dir=tmp_path / "cache"
        )
    samples = [ImageRun(r.run_dir).samples(1) for r in (first, redrawn)]
    assert torch.equal(samples[0].images, samples[1].images)
    assert torch.equal(samples[0].labels, samples[1].labels)


@pytest.mark.parametrize("damage", [_garbage, _half])
def test_damaged_first_generation_samples_are_drawn_again_with_a_warning(tmp_path, damage):
    first = _run(tmp_path, generations=1)
    cached = _cached_samples(tmp_path)
    damage(cached)
    _redraw_after_damage(tmp_path, first, rf"cache entry .*{cached.name} .*rebuilt")
    assert cached.with_name(cached.name + ".sha256").exists()


def test_cached_samples_of_another_size_are_refused_and_drawn_again(tmp_path):
    first = _run(tmp_path, generations=1)
    cached = _cached_samples(tmp_path)
    content = torch.load(cached)
    torch.save({"images": content["images"][:5]}, cached)
    cached.with_name(cached.name + ".sha256").write_text(file_digest(cached) + "\n")
    _redraw_after_damage(tmp_path, first, r"does not hold what was expected")
