"""Factor-combination coverage (:mod:`madutils.metrics.coverage`): exact counts, thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from madutils.data.shapes import ShapeFactors
from madutils.metrics.coverage import Coverage, factor_coverage, marginal_coverage


def test_a_known_set_is_counted_exactly():
    result = factor_coverage([0, 0, 1, 5], 8)
    assert isinstance(result, Coverage)
    assert result.share == 3 / 8
    assert result.counts.tolist() == [2, 1, 0, 0, 0, 1, 0, 0]
    assert result.covered.tolist() == [True, True, False, False, False, True, False, False]
    assert result.n_covered == 3 and result.n_values == 8
    assert result.n_counted == 4 and result.n_excluded == 0
    p = np.array([0.5, 0.25, 0.25])
    assert result.entropy == pytest.approx(float(-(p * np.log(p)).sum()))
    assert result.kl_to_uniform == pytest.approx(math.log(8) - result.entropy)


def test_torch_and_numpy_codes_give_the_same_result():
    codes = [3, 1, 4, 1, 5, 9, 2, 6]
    a = factor_coverage(torch.tensor(codes), 10)
    b = factor_coverage(np.array(codes, dtype=np.int32), 10)
    assert a.share == b.share == 0.7
    assert np.array_equal(a.counts, b.counts)


def test_a_uniform_histogram_has_full_entropy_and_no_kl():
    result = factor_coverage(np.repeat(np.arange(6), 4), 6)
    assert result.share == 1.0
    assert result.entropy == pytest.approx(math.log(6))
    assert result.kl_to_uniform == pytest.approx(0.0, abs=1e-12)
    assert result.normalised_entropy == pytest.approx(1.0)


def test_min_count_raises_the_bar():
    codes = [0, 0, 1, 5]
    assert factor_coverage(codes, 8, min_count=2).share == 1 / 8
    assert factor_coverage(codes, 8, min_count=2).covered.tolist()[:2] == [True, False]
    assert factor_coverage(codes, 8, min_count=3).share == 0.0


def test_low_confidence_predictions_are_not_counted():
    codes = [0, 0, 1, 5]
    confidence = np.array([0.9, 0.2, 0.5, 0.95])
    result = factor_coverage(codes, 8, confidence=confidence, min_confidence=0.5)
    assert result.counts.tolist() == [1, 1, 0, 0, 0, 1, 0, 0]
    assert result.n_counted == 3 and result.n_excluded == 1
    strict = factor_coverage(codes, 8, confidence=torch.tensor(confidence), min_confidence=0.92)
    assert strict.share == 1 / 8 and strict.n_excluded == 3
    none = factor_coverage(codes, 8, confidence=confidence, min_confidence=1.0)
    assert none.share == 0.0 and none.n_counted == 0
    assert math.isnan(none.entropy) and math.isnan(none.kl_to_uniform)
    assert factor_coverage(codes, 8, confidence=confidence).n_counted == 4  # min 0: all


def test_marginal_coverage_counts_each_factor():
    factors = ShapeFactors()
    # two combinations: red squares in cell 0, both sizes; and a blue triangle in cell 3
    codes = np.array(
        [factors.encode(0, 0, 0, 0), factors.encode(0, 0, 0, 1), factors.encode(2, 2, 3, 1)]
    )
    result = marginal_coverage(codes, factors)
    assert list(result) == ["combination", "shape", "colour", "position", "size"]
    assert result["combination"].share == 3 / 96
    assert result["shape"].counts.tolist() == [2, 0, 1] and result["shape"].share == 2 / 3
    assert result["colour"].counts.tolist() == [2, 0, 1, 0] and result["colour"].share == 0.5
    assert result["position"].counts.tolist() == [2, 0, 0, 1]
    assert result["size"].share == 1.0
    confident = marginal_coverage(
        codes, factors, confidence=[1.0, 1.0, 0.1], min_confidence=0.5, min_count=1
    )
    assert confident["shape"].share == 1 / 3 and confident["size"].share == 1.0
    assert confident["combination"].n_excluded == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([0, 8], 8), {}, r"predicted must be codes in \[0, 8\)"),
        (([-1, 2], 8), {}, r"predicted must be codes in \[0, 8\)"),
        (([0.0, 1.0], 8), {}, "predicted must hold integer codes"),
        (([True, False], 8), {}, "predicted must hold integer codes"),
        (([], 8), {}, "predicted must hold at least one code"),
        (([[0, 1]], 8), {}, "predicted must be one-dimensional"),
        (([0, 1], 0), {}, "n_combinations must be a positive integer"),
        (([0, 1], 8), {"min_count": 0}, "min_count must be a positive integer"),
        (([0, 1], 8), {"min_count": 1.5}, "min_count must be a positive integer"),
        (([0, 1], 8), {"min_confidence": 0.5}, "min_confidence=0.5 needs confidence"),
        (([0, 1], 8), {"confidence": [0.5, 0.5], "min_confidence": 1.5}, "min_confidence must"),
        (([0, 1], 8), {"confidence": [0.5, 0.5], "min_confidence": -0.1}, "min_confidence must"),
        (([0, 1], 8), {"confidence": [0.5]}, r"confidence must have shape \(2,\)"),
        (([0, 1], 8), {"confidence": [0.5, 1.2]}, r"confidence must hold finite numbers"),
        (([0, 1], 8), {"confidence": [0.5, np.nan]}, r"confidence must hold finite numbers"),
    ],
)
def test_bad_inputs_are_refused(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factor_coverage(*args, **kwargs)


def test_marginal_coverage_refuses_bad_inputs():
    with pytest.raises(ValueError, match="factors must be a ShapeFactors"):
        marginal_coverage([0, 1], 96)
    with pytest.raises(ValueError, match=r"predicted must be codes in \[0, 96\)"):
        marginal_coverage([0, 96], ShapeFactors())
