"""The catalogue of mitigations (madutils.analysis.mitigations): each entry's loop settings,
the pairs its claim compares, and the summaries the chapter's table is made of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from madutils.analysis.mitigations import (
    MITIGATIONS,
    PLAIN,
    comparison_table,
    final_values,
    image_settings,
    judged_pair,
    mitigated_config,
    mitigation_cases,
    tail_means,
)
from madutils.loops.config import LoopConfig
from madutils.loops.image_config import ImageLoopConfig

PLAIN_LOOP = LoopConfig(family="fully_synthetic", n_ini=200, dim=3, generations=4, seeds=2)


def test_every_mitigation_builds_a_valid_loop_that_changes_only_its_own_settings():
    cases = mitigation_cases(PLAIN_LOOP)
    assert list(cases) == [PLAIN, *(m.name for m in MITIGATIONS)]
    assert cases[PLAIN] == {}
    for mitigation in MITIGATIONS:
        config = mitigated_config(PLAIN_LOOP, mitigation.name)
        for key, value in mitigation.settings.items():
            assert getattr(config, key) == value
        for key, share in mitigation.shares.items():
            assert getattr(config, key) == max(1, round(share * PLAIN_LOOP.n_ini))
        config.resolved()  # a loop that runs
    fixed = mitigated_config(PLAIN_LOOP, "fixed plus fresh real")
    assert (fixed.n_fixed, fixed.n_real, fixed.n_synthetic) == (100, 20, 200)
    assert mitigated_config(PLAIN_LOOP, "accumulate, fixed budget").pool_budget == 200


def test_a_mitigation_is_applied_to_the_fully_synthetic_loop_only_and_by_a_known_name():
    with pytest.raises(ValueError, match="plain must be a fully_synthetic loop"):
        mitigated_config(LoopConfig(family="synthetic_augmentation"), "verify")
    with pytest.raises(ValueError, match="mitigation must be one of 'accumulate'"):
        mitigated_config(PLAIN_LOOP, "prayer")


def test_a_claim_of_harm_puts_the_loop_it_is_compared_with_first():
    assert judged_pair("verify") == ("verify", PLAIN)
    assert judged_pair("best of 4, alone") == (PLAIN, "best of 4, alone")
    assert judged_pair("best of 4, with real data") == (
        "best of 4, with real data",
        "best of 4, alone",
    )


def _table(values_by_generation: dict[int, list[float]], metric="fid") -> pd.DataFrame:
    rows = [
        {"seed": 0, "replicate": r, "generation": g, "metric": metric, "value": v}
        for g, values in values_by_generation.items()
        for r, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_tail_means_average_each_replicate_over_the_last_generations():
    table = _table({1: [1.0, 2.0], 2: [3.0, 5.0], 3: [5.0, 9.0]})
    np.testing.assert_allclose(final_values(table, "fid"), [5.0, 9.0])
    np.testing.assert_allclose(tail_means(table, "fid", 2), [4.0, 7.0])
    with pytest.raises(ValueError, match="tail must be between 1 and the 3 generations"):
        tail_means(table, "fid", 4)
    with pytest.raises(ValueError, match="no rows of metric 'recall'"):
        tail_means(table, "recall", 1)


def test_the_comparison_table_holds_last_medians_and_the_cost_of_curation():
    plain = _table({1: [1.0, 3.0], 2: [10.0, 20.0]})
    verified = pd.concat(
        [
            _table({1: [1.0, 3.0], 2: [4.0, 6.0]}),
            _table({1: [2.0, 2.0], 2: [3.0, 5.0]}, metric="drawn_per_kept"),
        ]
    )
    frame = comparison_table(
        {(PLAIN, "DDPM"): plain, ("verify", "DDPM"): verified}, {"DDPM": ["fid"]}
    )
    fid = [c for c in frame.columns if c[1] != "drawn per kept"][0]
    assert frame.loc[PLAIN, fid] == 15.0 and frame.loc["verify", fid] == 5.0
    assert frame.loc[PLAIN, ("DDPM", "drawn per kept")] == 1.0
    assert frame.loc["verify", ("DDPM", "drawn per kept")] == 4.0  # generations after the first


def test_curation_mitigations_have_an_image_loop_form_with_the_same_settings():
    base = dict(dataset="digits", device="cpu")
    for name in ("best of 4, alone", "self-correct, gamma 0.5", "accumulate"):
        settings = image_settings(name)
        config = ImageLoopConfig(**base, **settings)
        assert all(getattr(config, key) == value for key, value in settings.items())
    with pytest.raises(ValueError, match="'verify' has no image-loop form .*verifier_accuracy"):
        image_settings("verify")
    with pytest.raises(ValueError, match="no image-loop form .*n_fixed"):
        image_settings("fixed plus fresh real")
    with pytest.raises(ValueError, match="no image-loop form .*pool_budget"):
        image_settings("accumulate, fixed budget")
