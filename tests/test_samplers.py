"""Choosing the DDPM's sampler by measurement (:mod:`madutils.analysis.samplers`)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from madutils.analysis.samplers import (
    SAMPLER_METRICS,
    choose_sampler,
    compare_samplers,
    floor_spread,
    within_floor,
)
from madutils.data.images import ImageSet
from madutils.loops.images import RealImages
from madutils.metrics import IMAGE_METRICS
from madutils.metrics.manifold import ManifoldReference
from madutils.models import ConditionalDDPM


def _row(lam, sampler, steps, seconds, fid, kid=0.01, precision=0.8, recall=0.7):
    return dict(
        lam=lam,
        sampler=sampler,
        steps=steps,
        seconds=seconds,
        images_per_second=1000 / seconds,
        fid=fid,
        kid=kid,
        precision=precision,
        recall=recall,
    )


SPREAD = pd.Series({"fid": 1.0, "kid": 0.005, "precision": 0.02, "recall": 0.02})


def test_the_fastest_setting_within_the_spread_at_every_lambda_is_chosen():
    table = pd.DataFrame(
        [
            _row(1.0, "ddpm", 500, 50.0, fid=10.0),
            _row(1.0, "dpm_solver", 20, 2.0, fid=10.5),
            _row(1.0, "dpm_solver", 10, 1.0, fid=10.9),
            _row(0.5, "ddpm", 500, 90.0, fid=8.0),
            _row(0.5, "dpm_solver", 20, 4.0, fid=8.8),
            _row(0.5, "dpm_solver", 10, 2.0, fid=9.5),  # 1.5 from the reference: outside
        ]
    )
    ok = within_floor(table[table.lam == 0.5], SPREAD, ("ddpm", 500))
    assert ok.tolist() == [True, True, False]
    assert choose_sampler(table, SPREAD, ("ddpm", 500)) == ("dpm_solver", 20)


def test_every_metric_counts_and_the_reference_is_the_fallback():
    table = pd.DataFrame(
        [
            _row(1.0, "ddpm", 500, 50.0, fid=10.0, recall=0.70),
            _row(1.0, "dpm_solver", 10, 1.0, fid=10.0, recall=0.60),  # recall too far
        ]
    )
    assert within_floor(table, SPREAD, ("ddpm", 500)).tolist() == [True, False]
    assert choose_sampler(table, SPREAD, ("ddpm", 500)) == ("ddpm", 500)
    with pytest.raises(ValueError, match="reference setting"):
        choose_sampler(table, SPREAD, ("ddim", 50))


def test_floor_spread_is_the_range_over_the_real_sets():
    floor = pd.DataFrame(
        [
            {"metric": m, "replicate": r, "value": v}
            for m in SAMPLER_METRICS
            for r, v in enumerate([1.0, 3.0, 2.0])
        ]
    )
    assert floor_spread(floor).tolist() == [2.0] * len(SAMPLER_METRICS)
    with pytest.raises(ValueError, match="at least two real sets"):
        floor_spread(floor[floor.replicate == 0])
    with pytest.raises(ValueError, match="kid"):
        floor_spread(floor[floor.metric != "kid"])


class _Flatten:
    """A feature network stand-in: the flattened pixels are the features, and the class is
    the brightest of three thirds of them."""

    def features(self, images):
        return images.flatten(1)

    def predict(self, images):
        return torch.stack([part.sum(1) for part in images.flatten(1).chunk(3, 1)], 1).argmax(1)


def test_compare_samplers_measures_each_setting_on_the_same_labels():
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.rand(24, 1, 8, 8, generator=gen), torch.arange(24) % 3
    model = ConditionalDDPM(
        image_size=8,
        n_classes=3,
        channels=(8, 16),
        timesteps=10,
        sampler="ddim",
        steps=3,
        epochs=1,
        device="cpu",
        mixed_precision="no",
        progress=False,
    ).fit(images, labels, rng=torch.Generator().manual_seed(1))
    reference = torch.rand(12, 1, 8, 8, generator=gen).flatten(1)  # held-out: not trained on
    held_out = ImageSet(reference.reshape(12, 1, 8, 8), torch.arange(12) % 3, n_classes=3)
    train = ImageSet(images, labels, n_classes=3)
    real = RealImages(train, held_out, _Flatten(), ManifoldReference(reference, k=3), reference)
    settings = [("ddim", 3), ("dpm_solver", 3), ("ddpm", 10)]
    table = compare_samplers(
        model, real, settings, training=images, n=12, lam=1.0, seed=0, progress=False
    )
    assert list(zip(table.sampler, table.steps, strict=True)) == settings
    assert set(IMAGE_METRICS) <= set(table.columns)
    assert (table.images_per_second > 0).all() and table[list(IMAGE_METRICS)].notna().all().all()
    assert (model.sampler, model.steps) == ("ddim", 3)  # restored
    again = compare_samplers(
        model, real, settings[:1], training=images, n=12, lam=1.0, seed=0, progress=False
    )
    assert again.fid[0] == table.fid[0]  # same labels, same noise
