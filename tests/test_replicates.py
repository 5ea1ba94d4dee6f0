"""Effects across replicates: medians, ranges and counts from a sweep's table."""

import numpy as np
import pandas as pd
import pytest

from madutils.analysis.replicates import (
    change,
    judged_changes,
    judged_lams,
    lam_cases,
    level,
    replicate_counts,
    replicate_note,
    replicate_seeds,
)


def _table(values: dict, *, metric="fid", batched=False) -> pd.DataFrame:
    """Rows of a sweep table: ``values[(lam, generation)]`` is one value per replicate."""
    rows = []
    for (lam, generation), per_replicate in values.items():
        for i, value in enumerate(per_replicate):
            seed, replicate = (0, i) if batched else (10 + i, 0)
            rows.append(
                dict(
                    lam=lam,
                    seed=seed,
                    replicate=replicate,
                    generation=generation,
                    metric=metric,
                    value=value,
                )
            )
    return pd.DataFrame(rows)


def test_level_is_median_and_range_across_seeds():
    table = _table({(1.0, 1): [3.0, 1.0, 2.0], (0.5, 1): [9.0, 7.0, 8.0]})
    found = level(table, "fid", 1, lam=1.0)
    assert (found.median, found.spread, found.replicates) == (2.0, 2.0, 3)
    assert level(table, "fid", 1, lam=0.5).median == 8.0


def test_level_of_a_batched_run_uses_its_replicates():
    table = _table({(1.0, 1): [1.0, 5.0, 2.0, 4.0]}, batched=True)
    found = level(table, "fid", 1, lam=1.0)
    assert (found.median, found.spread, found.replicates) == (3.0, 4.0, 4)


def test_level_over_generations_averages_each_replicate_first():
    table = _table({(1.0, 4): [10.0, 20.0, 30.0], (1.0, 5): [12.0, 2.0, 30.0]})
    found = level(table, "fid", [4, 5], lam=1.0)
    # replicate means 11, 11, 30: median 11, range 19
    assert (found.median, found.spread) == (11.0, 19.0)


def test_change_takes_the_larger_spread():
    table = _table({(1.0, 1): [1.0, 2.0, 3.0], (1.0, 5): [10.0, 16.0, 12.0]})
    found = change(table, "fid", 1, 5, lam=1.0)
    assert (found.first, found.last, found.effect) == (2.0, 12.0, 10.0)
    assert found.spread == 6.0 and found.replicates == 3


def test_level_refuses_what_is_not_there():
    table = _table({(1.0, 1): [1.0, 2.0]})
    with pytest.raises(ValueError, match="no 'fid' at generation 3"):
        level(table, "fid", 3, lam=1.0)
    with pytest.raises(ValueError, match="no 'kid' at generation 1"):
        level(table, "kid", 1)
    with pytest.raises(ValueError, match="no column 'n_ini'"):
        level(table, "fid", 1, n_ini=1000)


def test_floats_match_despite_rounding():
    table = _table({(0.66, 1): [1.0, 2.0, 3.0]})
    table["lam"] = table["lam"] + 1e-12
    assert level(table, "fid", 1, lam=0.66).replicates == 3


def test_replicate_counts_ignore_the_floor():
    table = pd.concat(
        [
            _table({(1.0, 1): [1.0, 2.0, 3.0], (0.8, 1): [1.0]}),
            _table({(1.0, 0): [0.1] * 5}, batched=True),  # the floor's disjoint real sets
        ]
    )
    counts = replicate_counts(table, ["lam"])
    assert counts.to_dict() == {0.8: 1, 1.0: 3}
    assert np.issubdtype(counts.dtype, np.integer)


def test_lam_cases_give_the_judged_lams_full_replicates():
    cases = lam_cases([1.0, 0.8, 0.66, 0.5], seed=4, replicates=3, side_replicates=1, family="f")
    by_lam = {}
    for case in cases:
        assert case["family"] == "f"
        by_lam.setdefault(case["lam"], []).append(case["seed"])
    assert by_lam == {1.0: [4, 5, 6], 0.8: [4], 0.66: [4], 0.5: [4, 5, 6]}
    assert judged_lams([0.8, 0.5]) == [0.5]
    assert judged_lams([0.5, 1.0, 0.8]) == [1.0, 0.5]
    assert len(lam_cases([1.0, 0.5], seed=0, replicates=2)) == 4
    with pytest.raises(ValueError, match="replicates must be a positive int; got 0"):
        replicate_seeds(0, 0)
    with pytest.raises(ValueError, match="lams must hold at least one"):
        judged_lams([])


def test_judged_changes_are_what_the_rules_take():
    table = pd.concat(
        [
            _table({(1.0, 1): [10.0, 12.0, 11.0], (1.0, 3): [30.0, 20.0, 40.0]}),
            _table({(1.0, 1): [0.9, 0.8, 0.85], (1.0, 3): [0.5, 0.4, 0.45]}, metric="recall"),
        ]
    )
    numbers = judged_changes(table, ["fid", "recall"], 1, 3, lam=1.0)
    assert numbers == pytest.approx(
        dict(
            fid_first=11.0,
            fid_last=30.0,
            fid_spread=20.0,
            recall_first=0.85,
            recall_last=0.45,
            recall_spread=0.1,
            replicates=3,
        )
    )


def test_replicate_note_names_counts_and_the_unjudged():
    table = _table({(1.0, 1): [1.0, 2.0, 3.0], (0.8, 1): [1.0], (0.5, 1): [1.0, 2.0, 3.0]})
    note = replicate_note(table, "lam", "λ", judged=[1.0, 0.5])
    assert note.startswith("Replicates (independent seeds) per setting: λ = 0.5, 1: 3 replicates; ")
    assert "λ = 0.8: 1 replicate." in note
    assert "The verdicts rest on λ = 1, 0.5; λ = 0.8 are shown, not judged." in note
    assert "not judged" not in replicate_note(table, "lam", "λ")
