"""Verdict rules: supporting numbers reproduce, contradicting numbers do not, thresholds show."""

import dataclasses

import numpy as np
import pytest

from madutils.analysis.verdicts import OUTCOMES, RULES, MadTrend, Verdict, judge

# For every rule: numbers that support its claim, numbers in between (None where the rule has
# no "partly"), numbers that contradict the claim, the threshold values its sentence must
# state, and one threshold change (field, value, numbers, verdict before, verdict after).
CASES = {
    "theory_mean_drift": dict(
        support={"drift_ratios": {1.0: 1.02, 0.9: 0.97, 0.7: 1.05}},
        partly={"drift_ratios": [1.15, 1.0]},
        contradict={"drift_ratios": [0.5, 1.0]},
        stated=["10%", "25%"],
        change=("tolerance", 0.2, {"drift_ratios": [1.15, 1.0]}, "partly", "reproduced"),
    ),
    "theory_variance_collapse": dict(
        support={"median_ratio": 5e-5, "early_mean": 1.01, "early_se": 0.02},
        partly={"median_ratio": 0.2, "early_mean": 1.0, "early_se": 0.02},
        contradict={"median_ratio": 1.3, "early_mean": 1.0, "early_se": 0.02},
        stated=["0.01", "3 standard errors"],
        change=(
            "collapse_below",
            0.5,
            {"median_ratio": 0.2, "early_mean": 1.0, "early_se": 0.02},
            "partly",
            "reproduced",
        ),
    ),
    "fully_gaussian_drift": dict(
        support={"w2_first": 0.3, "w2_last": 10.0},
        partly={"w2_first": 0.3, "w2_last": 0.45},
        contradict={"w2_first": 0.3, "w2_last": 0.2},
        stated=["2 times"],
        change=("growth", 1.2, {"w2_first": 0.3, "w2_last": 0.45}, "partly", "reproduced"),
    ),
    "fully_mixture_modes": dict(
        support=dict(
            modes_first=25,
            modes_last=18,
            recall_first=0.9,
            recall_last=0.6,
            total_variance_change=-10.0,
            modal_variance_change=-60.0,
        ),
        partly=dict(
            modes_first=25,
            modes_last=18,
            recall_first=0.9,
            recall_last=0.6,
            total_variance_change=-50.0,
            modal_variance_change=-60.0,
        ),
        contradict=dict(
            modes_first=25,
            modes_last=25,
            recall_first=0.9,
            recall_last=0.92,
            total_variance_change=-1.0,
            modal_variance_change=-2.0,
        ),
        stated=["0.5 times"],
        change=(
            "variance_share",
            1.0,
            dict(
                modes_first=25,
                modes_last=18,
                recall_first=0.9,
                recall_last=0.6,
                total_variance_change=-50.0,
                modal_variance_change=-60.0,
            ),
            "partly",
            "reproduced",
        ),
    ),
    "fully_ddpm": dict(
        support=dict(
            fid_first=10.0,
            fid_last=30.0,
            control_fid_max=12.0,
            precision_first=0.8,
            precision_last=0.7,
            recall_first=0.7,
            recall_last=0.4,
        ),
        partly=dict(
            fid_first=10.0,
            fid_last=30.0,
            control_fid_max=12.0,
            precision_first=0.8,
            precision_last=0.85,
            recall_first=0.7,
            recall_last=0.4,
        ),
        # the FID rises above generation 1's but stays within the control's spread
        contradict=dict(
            fid_first=10.0,
            fid_last=11.0,
            control_fid_max=12.0,
            precision_first=0.8,
            precision_last=0.7,
            recall_first=0.7,
            recall_last=0.4,
        ),
        stated=["control"],
        change=(
            "fid_margin",
            5.0,
            dict(
                fid_first=10.0,
                fid_last=15.0,
                control_fid_max=12.0,
                precision_first=0.8,
                precision_last=0.7,
                recall_first=0.7,
                recall_last=0.4,
            ),
            "reproduced",
            "not reproduced",
        ),
    ),
    "fully_ddpm_bias": dict(
        support=dict(precision_first=0.8, precision_last=0.78, recall_first=0.7, recall_last=0.2),
        partly=dict(precision_first=0.8, precision_last=0.6, recall_first=0.7, recall_last=0.2),
        contradict=dict(
            precision_first=0.8, precision_last=0.9, recall_first=0.7, recall_last=0.75
        ),
        stated=["0.05"],
        change=(
            "precision_tolerance",
            0.25,
            dict(precision_first=0.8, precision_last=0.6, recall_first=0.7, recall_last=0.2),
            "partly",
            "reproduced",
        ),
    ),
    "fully_flow_tails": dict(
        support=dict(
            tail_first=0.01,
            tail_last=0.004,
            biased_tail_last=0.002,
            w1_last=0.1,
            biased_w1_last=0.3,
        ),
        partly=dict(
            tail_first=0.01,
            tail_last=0.004,
            biased_tail_last=0.002,
            w1_last=0.1,
            biased_w1_last=0.05,
        ),
        contradict=dict(
            tail_first=0.01, tail_last=0.012, biased_tail_last=0.02, w1_last=0.1, biased_w1_last=0.3
        ),
        stated=["99%", "quantile is below 1 "],
        change=(
            "tail_fraction",
            0.5,
            dict(
                tail_first=0.01,
                tail_last=0.006,
                biased_tail_last=0.002,
                w1_last=0.1,
                biased_w1_last=0.3,
            ),
            "reproduced",
            "partly",
        ),
    ),
    "fully_wgan": dict(
        support=dict(
            fid_first=10.0,
            fid_last=30.0,
            precision_first=0.8,
            precision_last=0.7,
            recall_first=0.7,
            recall_last=0.4,
        ),
        partly=dict(
            fid_first=10.0,
            fid_last=30.0,
            precision_first=0.8,
            precision_last=0.7,
            recall_first=0.7,
            recall_last=0.75,
        ),
        contradict=dict(
            fid_first=10.0,
            fid_last=9.0,
            precision_first=0.8,
            precision_last=0.7,
            recall_first=0.7,
            recall_last=0.4,
        ),
        stated=["generation 1's FID"],
        change=(
            "fid_margin",
            2.5,
            dict(
                fid_first=10.0,
                fid_last=12.0,
                precision_first=0.8,
                precision_last=0.7,
                recall_first=0.7,
                recall_last=0.4,
            ),
            "reproduced",
            "not reproduced",
        ),
    ),
    "augmentation_slows": dict(
        support=dict(
            fully_ratio=30.0,
            augmented_ratios=[1.3, 1.2],
            worst_augmented_ratio=2.5,
            fully_modes=18,
            augmented_modes=[25, 25],
        ),
        partly=dict(
            fully_ratio=30.0,
            augmented_ratios=[0.9, 0.8],
            worst_augmented_ratio=0.95,
            fully_modes=18,
            augmented_modes=[25, 25],
        ),
        contradict=dict(
            fully_ratio=30.0,
            augmented_ratios=[35.0, 1.2],
            worst_augmented_ratio=35.0,
            fully_modes=18,
            augmented_modes=[25, 25],
        ),
        stated=["above 1;"],
        change=(
            "degrades_above",
            3.0,
            dict(
                fully_ratio=30.0,
                augmented_ratios=[1.3, 1.2],
                worst_augmented_ratio=2.5,
                fully_modes=18,
                augmented_modes=[25, 25],
            ),
            "reproduced",
            "partly",
        ),
    ),
    "augmentation_ddpm": dict(
        support=dict(augmented_growth=[2.0, 5.0], fully_growth=[10.0, 20.0]),
        partly=None,
        contradict=dict(augmented_growth=[12.0, 5.0], fully_growth=[10.0, 20.0]),
        stated=["for every λ"],
        change=(
            "margin",
            4.0,
            dict(augmented_growth=[8.0, 5.0], fully_growth=[10.0, 20.0]),
            "reproduced",
            "not reproduced",
        ),
    ),
    "fresh_limit": dict(
        support=dict(limit_gap=0.02, start_first=50.0, start_last=3.0),
        partly=dict(limit_gap=0.3, start_first=50.0, start_last=3.0),
        contradict=dict(limit_gap=0.3, start_first=3.1, start_last=3.0),
        stated=["10%"],
        change=(
            "tolerance",
            0.5,
            dict(limit_gap=0.3, start_first=50.0, start_last=3.0),
            "partly",
            "reproduced",
        ),
    ),
    "fresh_memory": dict(
        support=dict(ks=[1, 2, 4, 8], ratios=[1.0, 1.5, 1.9, 2.2]),
        partly=dict(ks=[1, 2, 4, 8], ratios=[1.0, 1.5, 1.4, 2.2]),
        contradict=dict(ks=[1, 2, 4, 8], ratios=[1.0, 0.9, 0.8, 0.7]),
        stated=["the smallest"],
        change=(
            "min_gain",
            0.35,
            dict(ks=[1, 2, 4, 8], ratios=[1.0, 1.5, 1.9, 2.2]),
            "reproduced",
            "partly",
        ),
    ),
    "fresh_pool": dict(
        support=dict(slowdown=2.0, gain_unbiased=100.0, gain_biased=3.0),
        partly=dict(slowdown=2.0, gain_unbiased=100.0, gain_biased=50.0),
        contradict=dict(slowdown=0.9, gain_unbiased=100.0, gain_biased=120.0),
        stated=["exceeds 1 at every n", "more than 10 times smaller"],
        change=(
            "plateau_factor",
            1.5,
            dict(slowdown=2.0, gain_unbiased=100.0, gain_biased=50.0),
            "partly",
            "reproduced",
        ),
    ),
    "fresh_ddpm_limit": dict(
        support=dict(limit_gap=0.2),
        partly=dict(limit_gap=0.7),
        contradict=dict(limit_gap=1.3),
        stated=["50%", "100%"],
        change=("reproduced_below", 0.8, dict(limit_gap=0.7), "partly", "reproduced"),
    ),
    "ess_synthetic_worth": dict(
        support=dict(best_unbiased=1.4, worst_biased=0.3),
        partly=dict(best_unbiased=0.95, worst_biased=0.3),
        contradict=dict(best_unbiased=0.9, worst_biased=1.1),
        stated=["above 1", "below 1"],
        change=(
            "helps_above",
            1.5,
            dict(best_unbiased=1.4, worst_biased=0.3),
            "reproduced",
            "partly",
        ),
    ),
    "ess_admissible_growth": dict(
        support=dict(admissible_growth=1.0, n_real_growth=100.0),
        partly=dict(admissible_growth=30.0, n_real_growth=100.0),
        contradict=dict(admissible_growth=100.0, n_real_growth=100.0),
        stated=["more than 10 times smaller"],
        change=(
            "factor",
            2.0,
            dict(admissible_growth=30.0, n_real_growth=100.0),
            "partly",
            "reproduced",
        ),
    ),
}

NAMES = sorted(CASES)


def test_every_rule_has_a_case():
    assert sorted(RULES) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_supporting_numbers_reproduce(name):
    verdict = judge(name, **CASES[name]["support"])
    assert verdict.verdict == "reproduced"
    assert set(verdict.numbers) == set(CASES[name]["support"])
    assert verdict.rule == RULES[name].sentence


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n]["partly"] is not None])
def test_numbers_in_between_are_partly(name):
    assert judge(name, **CASES[name]["partly"]).verdict == "partly"


@pytest.mark.parametrize("name", NAMES)
def test_contradicting_numbers_are_not_reproduced(name):
    assert judge(name, **CASES[name]["contradict"]).verdict == "not reproduced"


@pytest.mark.parametrize("name", NAMES)
def test_sentence_states_the_rule_and_its_thresholds(name):
    sentence = RULES[name].sentence
    assert sentence.startswith("reproduced when")
    assert "; not reproduced " in sentence
    assert ("; partly when " in sentence) == (CASES[name]["partly"] is not None)
    for text in CASES[name]["stated"]:
        assert text in sentence


@pytest.mark.parametrize("name", NAMES)
def test_changed_threshold_changes_sentence_and_verdict(name):
    field, value, numbers, before, after = CASES[name]["change"]
    rule = RULES[name]
    changed = dataclasses.replace(rule, **{field: value})
    assert rule(**numbers).verdict == before
    assert changed(**numbers).verdict == after
    assert changed.sentence != rule.sentence
    assert f"{value:g}" in changed.sentence or f"{100 * value:g}%" in changed.sentence
    assert changed(**numbers).rule == changed.sentence


def test_sentences_from_the_defaults():
    assert RULES["theory_variance_collapse"].sentence == (
        "reproduced when, at λ = 1, the median total variance at the last generation is below "
        "0.01 times the real one while the mean across replicates at the early generation is "
        "within 3 standard errors of the closed form; partly when the median falls below the "
        "real variance but not both hold; not reproduced when the median does not fall"
    )
    assert "more than 0 above" not in RULES["fully_ddpm"].sentence
    assert "is above both" in RULES["fully_ddpm"].sentence


def test_variance_collapse_needs_the_expectation_too():
    numbers = {"median_ratio": 5e-5, "early_mean": 0.5, "early_se": 0.01}
    assert judge("theory_variance_collapse", **numbers).verdict == "partly"


def test_augmentation_slows_needs_the_modes_too():
    numbers = dict(CASES["augmentation_slows"]["support"], augmented_modes=[25, 12])
    assert judge("augmentation_slows", **numbers).verdict == "not reproduced"


def test_fresh_memory_flat_memory_is_not_reproduced():
    verdict = judge("fresh_memory", ks=[1, 2, 4, 8], ratios=[1.0, 1.2, 1.1, 1.0])
    assert verdict.verdict == "not reproduced"


def test_numbers_are_recorded_as_floats():
    verdict = judge(
        "augmentation_ddpm",
        augmented_growth={1.0: np.float32(2.0), 0.5: 5},
        fully_growth={0.5: 20.0, 1.0: np.float64(10.0)},
    )
    assert verdict.verdict == "reproduced"
    assert verdict.numbers == {
        "augmented_growth": {1.0: 2.0, 0.5: 5.0},
        "fully_growth": {0.5: 20.0, 1.0: 10.0},
    }
    assert all(type(v) is float for v in verdict.numbers["augmented_growth"].values())
    # paired by key, not by position: swap the fully synthetic growths and the verdict changes
    swapped = judge(
        "augmentation_ddpm",
        augmented_growth={1.0: 12.0, 0.5: 5.0},
        fully_growth={0.5: 10.0, 1.0: 20.0},
    )
    assert swapped.verdict == "reproduced"
    assert (
        judge(
            "augmentation_ddpm",
            augmented_growth={1.0: 12.0, 0.5: 5.0},
            fully_growth={1.0: 10.0, 0.5: 20.0},
        ).verdict
        == "not reproduced"
    )
    scalar = judge("fresh_ddpm_limit", limit_gap=np.array(0.2))
    assert scalar.numbers == {"limit_gap": 0.2} and type(scalar.numbers["limit_gap"]) is float


def test_judge_rejects_unknown_rules_and_wrong_numbers():
    with pytest.raises(ValueError, match="rule_name must be one of .*'fresh_pool'.*got 'bogus'"):
        judge("bogus", limit_gap=0.1)
    with pytest.raises(ValueError, match="takes the numbers slowdown, gain_unbiased.*missing"):
        judge("fresh_pool", slowdown=2.0, gain_unbiased=10.0)
    with pytest.raises(ValueError, match="unknown gap"):
        judge("fresh_ddpm_limit", limit_gap=0.2, gap=0.3)
    with pytest.raises(ValueError, match="missing limit_gap; unknown gap"):
        judge("fresh_ddpm_limit", gap=0.3)
    with pytest.raises(ValueError, match="unknown control_fid_max"):
        judge("fully_wgan", **CASES["fully_ddpm"]["support"])
    with pytest.raises(ValueError, match="missing control_fid_max"):
        judge("fully_ddpm", **CASES["fully_wgan"]["support"])
    with pytest.raises(ValueError, match="limit_gap must be a real number"):
        judge("fresh_ddpm_limit", limit_gap=float("nan"))
    with pytest.raises(ValueError, match="limit_gap must be a real number"):
        judge("fresh_ddpm_limit", limit_gap="0.2")
    with pytest.raises(ValueError, match="limit_gap must be a real number"):
        judge("fresh_ddpm_limit", limit_gap=True)
    with pytest.raises(ValueError, match="drift_ratios must be a sequence or mapping"):
        judge("theory_mean_drift", drift_ratios=1.0)
    with pytest.raises(ValueError, match="drift_ratios must hold at least one number"):
        judge("theory_mean_drift", drift_ratios=[])
    with pytest.raises(ValueError, match=r"drift_ratios\[1\] must be a real number"):
        judge("theory_mean_drift", drift_ratios=[1.0, None])
    with pytest.raises(ValueError, match="must have the same length; got 1 and 2"):
        judge("augmentation_ddpm", augmented_growth=[1.0], fully_growth=[2.0, 3.0])
    with pytest.raises(ValueError, match="must have the same keys"):
        judge("augmentation_ddpm", augmented_growth={1.0: 1.0}, fully_growth={0.5: 2.0})
    with pytest.raises(ValueError, match="ks must hold at least two increasing values"):
        judge("fresh_memory", ks=[1, 1, 4], ratios=[1.0, 1.5, 1.9])


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="tolerance must be > 0"):
        dataclasses.replace(RULES["fresh_limit"], tolerance=0.0)
    with pytest.raises(ValueError, match="partly_below must be >= reproduced_below"):
        dataclasses.replace(RULES["fresh_ddpm_limit"], partly_below=0.3)
    with pytest.raises(ValueError, match="partly_tolerance must be >= tolerance"):
        dataclasses.replace(RULES["theory_mean_drift"], partly_tolerance=0.05)
    with pytest.raises(ValueError, match="growth must be >= 1"):
        dataclasses.replace(RULES["fully_gaussian_drift"], growth=0.5)
    with pytest.raises(ValueError, match="fid_margin must be >= 0"):
        MadTrend(fid_margin=-1.0)


def test_verdict_checks_its_outcome():
    assert OUTCOMES == ("reproduced", "partly", "not reproduced")
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict(verdict="GPU-only")


# The rules that replaced a verdict computed inline: for the same numbers they reach the same
# verdict as the chapter's old expression, except that "not reproduced" is now possible where
# the old rule said "partly" for numbers that contradict the claim.
DRAWS = 500


def _draws(n, seed):
    return np.random.default_rng(seed).uniform(0, 1, size=(DRAWS, n))


def test_mixture_rule_keeps_the_old_verdict():
    for row in _draws(6, seed=6):
        m0, m1 = 25 * row[0], 25 * row[1]
        r0, r1 = row[2], row[3]
        tv, mv = 200 * row[4] - 100, 200 * row[5] - 100
        old = "reproduced" if m1 < m0 and r1 < r0 and abs(tv) < abs(mv) / 2 else "partly"
        new = judge(
            "fully_mixture_modes",
            modes_first=m0,
            modes_last=m1,
            recall_first=r0,
            recall_last=r1,
            total_variance_change=tv,
            modal_variance_change=mv,
        ).verdict
        assert new == old or (old == "partly" and new == "not reproduced" and m1 >= m0 and r1 >= r0)


def test_image_rules_keep_the_old_verdicts():
    for row in _draws(7, seed=7):
        f0, f1, ctrl = 30 * row[:3]
        p0, p1, r0, r1 = row[3:]
        fid_rises = f1 > max(f0, ctrl)
        pr_fall = p1 < p0 and r1 < r0
        old = (
            "reproduced" if fid_rises and pr_fall else ("partly" if fid_rises else "not reproduced")
        )
        numbers = dict(
            fid_first=f0,
            fid_last=f1,
            precision_first=p0,
            precision_last=p1,
            recall_first=r0,
            recall_last=r1,
        )
        assert judge("fully_ddpm", control_fid_max=ctrl, **numbers).verdict == old
        wgan_rises = f1 > f0
        old_wgan = (
            "reproduced"
            if wgan_rises and pr_fall
            else ("partly" if wgan_rises else "not reproduced")
        )
        assert judge("fully_wgan", **numbers).verdict == old_wgan
        recall = r1 < r0
        holds = p1 >= p0 - 0.05
        old_bias = "reproduced" if recall and holds else ("partly" if recall else "not reproduced")
        bias = dict(precision_first=p0, precision_last=p1, recall_first=r0, recall_last=r1)
        assert judge("fully_ddpm_bias", **bias).verdict == old_bias


def test_flow_rule_keeps_the_old_verdict():
    for row in _draws(5, seed=5):
        t0, t1, tb, w1, wb = row
        lost = t1 < t0
        faster = tb <= t1 and wb > w1
        old = (
            "reproduced" if lost and faster else ("partly" if lost or faster else "not reproduced")
        )
        new = judge(
            "fully_flow_tails",
            tail_first=t0,
            tail_last=t1,
            biased_tail_last=tb,
            w1_last=w1,
            biased_w1_last=wb,
        ).verdict
        assert new == old


def test_fresh_and_ess_rules_keep_the_old_verdicts():
    for row in _draws(8, seed=8):
        aug, fully = 20 * row[0:2] - 5, 20 * row[2:4] - 5
        old = "reproduced" if all(aug < fully) else "not reproduced"
        assert judge("augmentation_ddpm", augmented_growth=aug, fully_growth=fully).verdict == old
        ratios = np.cumsum(row[4:8] - 0.2)
        ks = [1, 2, 4, 8]
        steps = np.diff(ratios)
        per_model = steps / np.diff(ks)
        old = "reproduced" if (steps > 0).all() and (np.diff(per_model) < 0).all() else "partly"
        new = judge("fresh_memory", ks=ks, ratios=ratios).verdict
        assert new == old or (
            old == "partly" and new == "not reproduced" and ratios[-1] <= ratios[0]
        )
        slowdown, gain_u, gain_b = 2 * row[0], 100 * row[1], 100 * row[2]
        old = "reproduced" if slowdown > 1 and gain_b < gain_u / 10 else "partly"
        new = judge(
            "fresh_pool", slowdown=slowdown, gain_unbiased=gain_u, gain_biased=gain_b
        ).verdict
        assert new == old or (old == "partly" and new == "not reproduced")
        gap = 1.5 * row[3]
        old = "reproduced" if gap < 0.5 else ("partly" if gap < 1 else "not reproduced")
        assert judge("fresh_ddpm_limit", limit_gap=gap).verdict == old
        growth, n_real_growth = 120 * row[4], 100.0
        old = "reproduced" if growth < n_real_growth / 10 else "partly"
        new = judge(
            "ess_admissible_growth", admissible_growth=growth, n_real_growth=n_real_growth
        ).verdict
        assert new == old or (old == "partly" and new == "not reproduced" and growth >= 100)
