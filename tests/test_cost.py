"""What an image loop costs: training-set sizes and batches per generation, measured seconds per
batch, and hours with shared first generations counted once."""

from __future__ import annotations

import math

import pytest

from madutils.analysis.cost import (
    memory_needed,
    seconds_per_batch,
    total_batches,
    training_batches,
    training_hours,
    training_set_sizes,
)
from madutils.loops.image_config import ImageLoopConfig

TINY = dict(
    model="stylegan2",
    dataset="shapes",
    image_size=8,
    held_out=50,
    n_ini=100,
    generations=4,
    epochs=3,
    batch_size=32,
    latent_dim=8,
    mapping_layers=1,
    width=8,
    max_width=16,
    device="cpu",
)


def test_training_set_sizes_follow_the_family_and_the_source():
    fully = ImageLoopConfig(**TINY, family="fully_synthetic")
    assert training_set_sizes(fully) == [100, 100, 100, 100]
    augmented = ImageLoopConfig(**TINY, family="synthetic_augmentation")
    assert training_set_sizes(augmented) == [100, 200, 200, 200]
    pool = ImageLoopConfig(**TINY, family="synthetic_augmentation", synthetic_source="accumulate")
    assert training_set_sizes(pool) == [100, 200, 300, 400]  # real + (t - 1) models' samples
    fresh = ImageLoopConfig(**TINY, family="fresh_data", n_real=30, n_synthetic=70)
    assert training_set_sizes(fresh) == [100, 100, 100, 100]
    fully_pool = ImageLoopConfig(**TINY, family="fully_synthetic", synthetic_source="accumulate")
    assert training_set_sizes(fully_pool) == [100, 100, 200, 300]


def test_training_batches_count_epochs_of_batches_and_fixed_steps():
    pool = dict(TINY, family="synthetic_augmentation", synthetic_source="accumulate")
    plain = ImageLoopConfig(**pool)
    assert training_batches(plain) == [3 * math.ceil(n / 32) for n in (100, 200, 300, 400)]
    fixed = ImageLoopConfig(**pool, fixed_steps=True)
    # generation t makes round(3 * 100 / size) passes: 2, 1, 1 (at least one)
    assert training_batches(fixed) == [12, 2 * 7, 1 * 10, 1 * 13]


def test_training_hours_count_a_shared_first_generation_once():
    fully = ImageLoopConfig(**TINY, family="fully_synthetic")
    biased = ImageLoopConfig(**{**TINY, "generations": 2}, family="fully_synthetic", lam=0.7)
    other_seed = ImageLoopConfig(**TINY, family="fully_synthetic", seed=1)
    per_batch = 3600.0  # one hour per batch: the hours are the batches
    assert training_hours(fully, per_batch) == sum(training_batches(fully)) == 48
    assert total_batches([fully, biased]) == 60
    assert training_hours([fully, biased], per_batch) == 48 + 12  # biased: generation 2 only
    assert training_hours([fully, other_seed], per_batch) == 96  # its own first generation
    with pytest.raises(ValueError, match="seconds must be a finite number >= 0"):
        training_hours(fully, -1.0)


def test_seconds_per_batch_is_measured_and_checks_its_arguments():
    config = ImageLoopConfig(**TINY, family="fully_synthetic")
    seconds = seconds_per_batch(config, batches=2, warmup=1)
    assert 0.0 <= seconds < 60.0
    with pytest.raises(ValueError, match="batches must be a positive integer"):
        seconds_per_batch(config, batches=0)
    with pytest.raises(ValueError, match="warmup must be a positive integer"):
        seconds_per_batch(config, warmup=1.5)
    with pytest.raises(ValueError, match="config must be an ImageLoopConfig"):
        training_batches({"model": "stylegan2"})


def test_the_chapter_runs_every_loop_of_every_replicate():
    from madutils.analysis.stylegan2 import POOL_LOOP, chapter_cases, loop_name

    cases = chapter_cases([1.0, 0.7], 9, 5, 7, seed=3, replicates=2, pool_fixed_steps=True)
    assert [(c["family"], c["lam"], c["generations"], c["seed"]) for c in cases] == [
        ("fully_synthetic", 1.0, 9, 3),
        ("fully_synthetic", 1.0, 9, 4),
        ("fully_synthetic", 0.7, 5, 3),
        ("fully_synthetic", 0.7, 5, 4),
        ("synthetic_augmentation", 1.0, 7, 3),
        ("synthetic_augmentation", 1.0, 7, 4),
    ]
    assert all(c["synthetic_source"] == "accumulate" and c["fixed_steps"] for c in cases[4:])
    assert len(chapter_cases([1.0], 2, 2, 0, seed=0, replicates=3)) == 3  # no pool
    assert loop_name("synthetic_augmentation", "accumulate", 1.0) == POOL_LOOP
    assert loop_name("fully_synthetic", "last", 0.7) == "fully synthetic, λ = 0.7"


def test_memory_needed_is_the_largest_runs_estimate_host_and_device_apart(monkeypatch):
    from madutils.loops import footprint

    small = ImageLoopConfig(**TINY)
    pooled = ImageLoopConfig(
        **{**TINY, "family": "synthetic_augmentation"}, synthetic_source="accumulate"
    )
    needed = memory_needed([small, pooled])
    parts = footprint.image_loop_footprint(pooled.resolved())
    assert needed == {
        "host": sum(p.nbytes for p in parts if not p.on_device),
        "device": sum(p.nbytes for p in parts if p.on_device),
    }
    assert needed["host"] > memory_needed([small])["host"]
    # a run for another machine is estimated, not refused by this one's memory
    monkeypatch.delenv(footprint.SKIP_VARIABLE, raising=False)
    monkeypatch.setattr(footprint, "available_memory", lambda device: (1000, "test"))
    with pytest.raises(ValueError, match="needs about"):
        pooled.resolved()
    assert memory_needed([pooled]) == needed
