"""Tests for the blocked k-NN manifold metrics against the prdc reference implementation."""

from __future__ import annotations

import numpy as np
import prdc
import pytest
import torch
from prdc.prdc import compute_nearest_neighbour_distances

from madutils.metrics.manifold import (
    METRIC_NAMES,
    ManifoldReference,
    knn_radii,
    precision_recall_density_coverage,
)


def _features(shape, seed, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).normal(size=shape) * scale + shift


def _as_floats(scores):
    return {name: float(scores[name]) for name in METRIC_NAMES}


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize(("n_real", "n_fake", "dim"), [(200, 300, 8), (300, 120, 8), (150, 150, 3)])
def test_matches_prdc_on_continuous_features(n_real, n_fake, dim, k):
    real = _features((n_real, dim), seed=0)
    fake = _features((n_fake, dim), seed=1, scale=1.2, shift=0.3)
    expected = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    ours = precision_recall_density_coverage(real=real, synthetic=fake, k=k)
    for name in METRIC_NAMES:
        assert ours[name].dtype == torch.float64
        assert ours[name].shape == ()
        assert float(ours[name]) == pytest.approx(float(expected[name]), abs=1e-12)


def test_knn_radii_match_prdc():
    features = _features((250, 6), seed=2)
    for k in (1, 5):
        expected = compute_nearest_neighbour_distances(features, nearest_k=k)
        ours = knn_radii(features, k=k, block_size=17)
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_ties_count_as_inside_unlike_prdc():
    # Integer points on a line: every distance is exact, so ties with radii are deterministic.
    # k = 1 and every real point is duplicated, so every real radius is exactly 0.
    real = np.array([0.0, 0.0, 5.0, 5.0, 9.0, 9.0])[:, None]
    # Synthetic radii (k = 1): r(0) = 5, r(5) = 2, r(7) = 2.
    fake = np.array([0.0, 5.0, 7.0])[:, None]
    ours = _as_floats(precision_recall_density_coverage(real=real, synthetic=fake, k=1))
    theirs = {n: float(v) for n, v in prdc.compute_prdc(real, fake, nearest_k=1).items()}
    # `<=`: fakes 0 and 5 sit in the zero-radius balls of both copies of a real point; the real
    # points 9 are at distance exactly 2 = r(7) from the fake 7; real 9 is not covered.
    assert ours == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "density": 4 / 3, "coverage": 4 / 6}, abs=1e-15
    )
    # `<`: zero-radius balls are empty and the tie at distance 2 does not count.
    assert theirs == pytest.approx(
        {"precision": 0.0, "recall": 4 / 6, "density": 0.0, "coverage": 0.0}, abs=1e-15
    )
    assert all(ours[name] >= theirs[name] for name in METRIC_NAMES)


def test_ties_on_ball_boundary():
    # Real points 0..9 (k = 1 radius 1); fakes at -1 and 10 lie exactly on a boundary.
    real = np.arange(10.0)[:, None]
    fake = np.array([-1.0, 10.0, 20.0])[:, None]
    ours = _as_floats(precision_recall_density_coverage(real=real, synthetic=fake, k=1))
    theirs = prdc.compute_prdc(real, fake, nearest_k=1)
    assert ours == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "density": 2 / 3, "coverage": 2 / 10}, abs=1e-15
    )
    assert (theirs["precision"], theirs["density"], theirs["coverage"]) == (0.0, 0.0, 0.0)


def test_identical_sets_score_one():
    real = torch.as_tensor(_features((300, 5), seed=3))
    scores = precision_recall_density_coverage(real=real, synthetic=real.clone(), k=5)
    assert float(scores["precision"]) == 1.0
    assert float(scores["recall"]) == 1.0
    assert float(scores["coverage"]) == 1.0
    assert float(scores["density"]) >= 1.0  # every point is in its own ball and k others'


def test_swapping_arguments_swaps_precision_and_recall():
    wide = _features((400, 2), seed=4)
    tight = _features((400, 2), seed=5, scale=0.05)
    forward = _as_floats(precision_recall_density_coverage(real=wide, synthetic=tight))
    backward = _as_floats(precision_recall_density_coverage(real=tight, synthetic=wide))
    # A tight cluster inside a wide cloud: faithful but not diverse.
    assert forward["precision"] > 0.95 and forward["recall"] < 0.2
    assert backward["precision"] < 0.2 and backward["recall"] > 0.95
    assert forward["coverage"] < 0.2


def test_blocked_equals_unblocked():
    real = _features((130, 7), seed=6)
    fake = _features((3, 110, 7), seed=7, scale=1.3)
    small = precision_recall_density_coverage(real=real, synthetic=fake, k=3, block_size=1)
    odd = precision_recall_density_coverage(real=real, synthetic=fake, k=3, block_size=13)
    large = precision_recall_density_coverage(real=real, synthetic=fake, k=3, block_size=10**6)
    for name in METRIC_NAMES:
        torch.testing.assert_close(small[name], large[name], rtol=0, atol=0)
        torch.testing.assert_close(odd[name], large[name], rtol=0, atol=0)


def test_batched_synthetic_against_shared_real_equals_separate_calls():
    real = torch.as_tensor(_features((120, 4), seed=8))
    fake = torch.as_tensor(_features((4, 90, 4), seed=9, scale=0.8))
    batched = precision_recall_density_coverage(real=real, synthetic=fake, k=5, block_size=31)
    for name in METRIC_NAMES:
        assert batched[name].shape == (4,)
    for s in range(4):
        single = precision_recall_density_coverage(real=real, synthetic=fake[s], k=5)
        for name in METRIC_NAMES:
            assert float(batched[name][s]) == float(single[name])


@pytest.mark.parametrize("fake_batched", [True, False])
def test_batched_real(fake_batched):
    real = torch.as_tensor(_features((3, 100, 4), seed=10))
    fake_shape = (3, 80, 4) if fake_batched else (80, 4)
    fake = torch.as_tensor(_features(fake_shape, seed=11, scale=1.5))
    batched = precision_recall_density_coverage(real=real, synthetic=fake, k=2, block_size=29)
    for s in range(3):
        fake_s = fake[s] if fake_batched else fake
        expected = prdc.compute_prdc(real[s].numpy(), fake_s.numpy(), nearest_k=2)
        for name in METRIC_NAMES:
            assert float(batched[name][s]) == pytest.approx(float(expected[name]), abs=1e-12)


def test_reference_matches_function_and_caches_radii():
    real = _features((150, 6), seed=12)
    reference = ManifoldReference(real, k=4, block_size=40)
    np.testing.assert_allclose(
        reference.radii.numpy(), compute_nearest_neighbour_distances(real, 4), rtol=1e-12
    )
    radii_before = reference.radii.clone()
    for seed in (13, 14):
        fake = _features((140, 6), seed=seed, scale=0.9)
        cached = reference.compute(fake)
        direct = precision_recall_density_coverage(real=real, synthetic=fake, k=4)
        assert _as_floats(cached) == _as_floats(direct)
    torch.testing.assert_close(reference.radii, radii_before, rtol=0, atol=0)


def test_float32_stays_float32_and_agrees_with_float64():
    real = _features((200, 8), seed=15)
    fake = _features((220, 8), seed=16, scale=1.1)
    f32 = precision_recall_density_coverage(
        real=torch.as_tensor(real, dtype=torch.float32), synthetic=fake.astype(np.float32)
    )
    f64 = precision_recall_density_coverage(real=real, synthetic=fake)
    for name in METRIC_NAMES:
        assert f32[name].dtype == torch.float32
        assert float(f32[name]) == pytest.approx(float(f64[name]), abs=1e-6)
    assert knn_radii(torch.ones(10, 3, dtype=torch.float32), k=2).dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    real = torch.as_tensor(_features((300, 16), seed=17))
    fake = torch.as_tensor(_features((2, 250, 16), seed=18, scale=1.2))
    cpu = precision_recall_density_coverage(real=real, synthetic=fake)
    gpu = precision_recall_density_coverage(real=real.cuda(), synthetic=fake.cuda())
    for name in METRIC_NAMES:
        assert gpu[name].device.type == "cuda"
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], rtol=0, atol=1e-12)


_REAL = np.zeros((10, 3)) + np.arange(10.0)[:, None]
_FAKE = np.zeros((8, 3)) + np.arange(8.0)[:, None] + 0.5


@pytest.mark.parametrize(
    ("real", "fake", "kwargs", "match"),
    [
        (_REAL, _FAKE, {"k": 10}, r"k must be smaller than the number of real samples \(N=10\)"),
        (_REAL, _FAKE, {"k": 8}, r"k must be smaller than the number of synthetic samples \(M=8\)"),
        (_REAL, _FAKE, {"k": 0}, r"k must be a positive integer"),
        (_REAL, _FAKE, {"k": 2.5}, r"k must be a positive integer"),
        (np.where(np.eye(10, 3) > 0, np.nan, _REAL), _FAKE, {}, r"real contains NaN or infinite"),
        (_REAL, np.where(np.eye(8, 3) > 0, np.inf, _FAKE), {}, r"synthetic contains NaN or inf"),
        (_REAL, _FAKE[:, :2], {}, r"real and synthetic must have the same number of features"),
        (_REAL[:, 0], _FAKE, {}, r"real must have shape \(n_samples, n_features\)"),
        (_REAL, _FAKE[None, None], {}, r"synthetic must have shape \(n_samples, n_features\)"),
        (_REAL[None].repeat(2, 0), _FAKE[None].repeat(3, 0), {}, r"batch \(seed\) dimensions"),
        (_REAL, _FAKE, {"k": 2, "block_size": 0}, r"block_size must be a positive integer"),
    ],
)
def test_bad_input_raises(real, fake, kwargs, match):
    with pytest.raises(ValueError, match=match):
        precision_recall_density_coverage(real, fake, **kwargs)


def test_bad_input_raises_in_reference_and_radii():
    with pytest.raises(ValueError, match=r"k must be smaller than the number of real samples"):
        ManifoldReference(_REAL, k=10)
    reference = ManifoldReference(_REAL, k=8)
    with pytest.raises(ValueError, match=r"number of synthetic samples \(M=8\)"):
        reference.compute(_FAKE)
    with pytest.raises(ValueError, match=r"k must be smaller than the number of samples"):
        knn_radii(_REAL, k=10)
