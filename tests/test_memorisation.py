"""Memorisation (:mod:`madutils.metrics.memorisation`): copies give 0, new images about 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from madutils.metrics.memorisation import nearest_distance_ratio, nearest_distances


def _points(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_nearest_distances_match_scikit_learn_in_any_block_size():
    points, reference = _points(300, 7, 0), _points(200, 7, 1)
    expected = NearestNeighbors(n_neighbors=1).fit(reference.numpy()).kneighbors(points.numpy())
    for block_size in (1, 64, 1024):
        ours = nearest_distances(points, reference, block_size=block_size)
        np.testing.assert_allclose(ours.numpy(), expected[0][:, 0], rtol=1e-10)


def test_copies_of_the_training_set_give_zero_and_new_samples_about_one():
    training, real = _points(2000, 8, 2), _points(1000, 8, 3)
    copies = training[:500]
    assert float(nearest_distance_ratio(copies, real, training)) == 0.0
    fresh = _points(1000, 8, 4)  # the same distribution, never trained on
    assert float(nearest_distance_ratio(fresh, real, training)) == pytest.approx(1.0, abs=0.05)
    near_copies = copies + 0.01 * _points(500, 8, 5)
    assert float(nearest_distance_ratio(near_copies, real, training)) < 0.05
    spread_out = 3.0 * fresh  # off the data: farther than real images are
    assert float(nearest_distance_ratio(spread_out, real, training)) > 2.0


def test_memorisation_refuses_bad_input():
    training, real = _points(50, 4, 6), _points(40, 4, 7)
    with pytest.raises(ValueError, match="in it"):
        nearest_distance_ratio(real, training[:30], training)  # "held-out" images trained on
    bad = real.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match="^synthetic"):
        nearest_distance_ratio(bad, real, training)
    with pytest.raises(ValueError, match="^real"):
        nearest_distance_ratio(real, bad, training)
    with pytest.raises(ValueError, match="same number of features"):
        nearest_distance_ratio(_points(10, 5, 8), real, training)
    with pytest.raises(ValueError, match="at least one sample"):
        nearest_distances(real[:0], training)
