"""Verdict rules: supporting numbers reproduce, contradicting numbers do not, thresholds show."""

import dataclasses

import numpy as np
import pytest

from madutils.analysis.verdicts import OUTCOMES, RULES, MadTrend, NoiseAware, Verdict, judge

# The numbers of the replicated (noise-aware) rules: effects well beyond their spreads.
_MAD = dict(
    fid_first=10.0,
    fid_last=30.0,
    fid_spread=4.0,
    precision_first=0.8,
    precision_last=0.7,
    precision_spread=0.03,
    recall_first=0.7,
    recall_last=0.4,
    recall_spread=0.05,
    replicates=3,
)
_BIAS = dict(
    precision_first=0.8,
    precision_last=0.78,
    precision_spread=0.02,
    recall_first=0.7,
    recall_last=0.2,
    recall_spread=0.1,
    replicates=3,
)
_FLOW = dict(
    tail_first=0.01,
    tail_last=0.004,
    tail_spread=0.001,
    biased_tail_last=0.002,
    w1_last=0.1,
    biased_w1_last=0.3,
    w1_spread=0.05,
    replicates=4,
)
_AUG = dict(augmented_growth=[2.0, 5.0], fully_growth=[10.0, 20.0], spread=[3.0, 3.0], replicates=3)
_EXCESS = dict(
    spectral_excess_first=0.9,
    spectral_excess_last=1.6,
    spectral_excess_spread=0.2,
    replicates=3,
)
_COVERAGE = dict(
    class_coverage_first=0.9, class_coverage_last=0.5, class_coverage_spread=0.1, replicates=3
)
_POOL = dict(augmented_growth=[3.0], fully_growth=[12.0], spread=[2.0], replicates=3)
_LIMIT = dict(limit_small=10.0, limit_big=11.0, limit_spread=2.0, replicates=3)

# For every rule: numbers that support its claim, numbers in between (None where the rule has
# no "partly"), numbers that contradict the claim, the threshold values its sentence must
# state, and one threshold change (field, value, numbers, verdict before, verdict after);
# the replicated rules also numbers whose effect is within the spread ("not_shown").
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
        support=dict(_MAD, control_fid_max=12.0),
        partly=dict(_MAD, control_fid_max=12.0, recall_last=0.68),
        # the FID falls
        contradict=dict(_MAD, control_fid_max=12.0, fid_last=9.0),
        not_shown=dict(_MAD, control_fid_max=12.0, fid_spread=25.0),
        stated=["control", "spread"],
        change=(
            "margin",
            6.0,
            dict(_MAD, control_fid_max=12.0),
            "reproduced",
            "not shown at this scale",
        ),
    ),
    "fully_ddpm_bias": dict(
        support=dict(_BIAS),
        partly=dict(_BIAS, precision_last=0.6),
        contradict=dict(_BIAS, recall_last=0.75),
        not_shown=dict(_BIAS, recall_spread=0.6),
        stated=["0.05", "spread"],
        change=(
            "precision_tolerance",
            0.25,
            dict(_BIAS, precision_last=0.6),
            "partly",
            "reproduced",
        ),
    ),
    "fully_flow_tails": dict(
        support=dict(_FLOW),
        partly=dict(_FLOW, biased_w1_last=0.05),
        contradict=dict(_FLOW, tail_last=0.012, biased_tail_last=0.02, biased_w1_last=0.05),
        not_shown=dict(_FLOW, tail_spread=0.01, w1_spread=0.5),
        stated=["99%", "quantile at the last generation is below the first"],
        change=("tail_fraction", 0.5, dict(_FLOW, tail_last=0.006), "reproduced", "partly"),
    ),
    "fully_wgan": dict(
        support=dict(_MAD),
        partly=dict(_MAD, recall_last=0.75),
        contradict=dict(_MAD, fid_last=9.0),
        not_shown=dict(_MAD, replicates=2),
        stated=["generation 1 to the last"],
        change=("margin", 5.0, dict(_MAD), "reproduced", "not shown at this scale"),
    ),
    "stylegan2_mad": dict(
        support=dict(_MAD),
        partly=dict(_MAD, precision_last=0.79),
        contradict=dict(_MAD, fid_last=10.0),
        not_shown=dict(_MAD, fid_spread=25.0),
        stated=["generation 1 to the last"],
        change=("margin", 6.0, dict(_MAD), "reproduced", "not shown at this scale"),
    ),
    "stylegan2_bias": dict(
        support=dict(_BIAS),
        partly=dict(_BIAS, precision_last=0.5),
        contradict=dict(_BIAS, recall_last=0.75),
        not_shown=dict(_BIAS, recall_spread=0.6),
        stated=["0.05"],
        change=("margin", 6.0, dict(_BIAS), "reproduced", "not shown at this scale"),
    ),
    "stylegan2_artifacts": dict(
        support=dict(_EXCESS),
        # grows beyond its spread but ends below the real images' share: less blur, no excess
        partly=dict(_EXCESS, spectral_excess_first=0.3, spectral_excess_last=0.8),
        contradict=dict(_EXCESS, spectral_excess_last=0.85),
        not_shown=dict(_EXCESS, spectral_excess_spread=0.9),
        stated=["ends above 1"],
        change=("margin", 4.0, dict(_EXCESS), "reproduced", "not shown at this scale"),
    ),
    "stylegan2_modes": dict(
        support=dict(_COVERAGE),
        partly=None,
        contradict=dict(_COVERAGE, class_coverage_last=0.95),
        not_shown=dict(_COVERAGE, class_coverage_spread=0.5),
        stated=["share of the data's classes"],
        change=("margin", 5.0, dict(_COVERAGE), "reproduced", "not shown at this scale"),
    ),
    "stylegan2_pool": dict(
        support=dict(_POOL),
        partly=None,
        contradict=dict(_POOL, augmented_growth=[13.0]),
        not_shown=dict(_POOL, spread=[10.0]),
        stated=["for every λ"],
        change=("margin", 5.0, dict(_POOL), "reproduced", "not shown at this scale"),
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
        support=dict(_AUG),
        partly=None,
        contradict=dict(_AUG, augmented_growth=[12.0, 5.0]),
        not_shown=dict(_AUG, spread=[9.0, 3.0]),
        stated=["for every λ", "spread"],
        change=("margin", 3.0, dict(_AUG), "reproduced", "not shown at this scale"),
    ),
    "augmentation_ddpm_pool": dict(
        support=dict(
            augmented_growth={1.0: 3.0}, fully_growth={1.0: 12.0}, spread={1.0: 2.0}, replicates=3
        ),
        partly=None,
        contradict=dict(
            augmented_growth={1.0: 13.0}, fully_growth={1.0: 12.0}, spread={1.0: 2.0}, replicates=3
        ),
        not_shown=dict(
            augmented_growth={1.0: 8.0}, fully_growth={1.0: 12.0}, spread={1.0: 6.0}, replicates=3
        ),
        stated=["for every λ"],
        change=(
            "margin",
            5.0,
            dict(
                augmented_growth={1.0: 3.0},
                fully_growth={1.0: 12.0},
                spread={1.0: 2.0},
                replicates=3,
            ),
            "reproduced",
            "not shown at this scale",
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
        support=dict(_LIMIT),
        partly=dict(_LIMIT, limit_big=13.0),  # 26% apart, beyond the spread
        contradict=dict(_LIMIT, limit_big=30.0),
        not_shown=dict(_LIMIT, replicates=1),
        stated=["50%", "100%", "spread"],
        change=(
            "reproduced_below",
            0.8,
            dict(_LIMIT, limit_big=18.0, limit_spread=10.0),
            "partly",
            "reproduced",
        ),
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
    "mitigation_gaussian": dict(
        support=dict(winner=[0.1, 0.2, 0.3], loser=[1.0, 2.0, 3.0]),
        partly=dict(winner=[0.1, 0.5, 2.5], loser=[1.0, 2.0, 3.0]),  # 7 of 9 pairs
        contradict=dict(winner=[1.0, 2.0, 3.0], loser=[0.1, 0.2, 0.3]),
        stated=["lower value", "90%", "60%"],
        change=(
            "strong",
            0.7,
            dict(winner=[0.1, 0.5, 2.5], loser=[1.0, 2.0, 3.0]),
            "partly",
            "reproduced",
        ),
    ),
    "mitigation_mixture": dict(
        support=dict(winner=[20.0, 21.0, 22.0], loser=[5.0, 6.0, 7.0]),
        partly=dict(winner=[6.5, 10.0, 12.0], loser=[5.0, 6.0, 7.0]),  # 8 of 9 pairs
        contradict=dict(winner=[5.0, 6.0, 6.0], loser=[6.0, 7.0, 8.0]),
        stated=["higher value", "90%"],
        change=(
            "strong",
            0.85,
            dict(winner=[6.5, 10.0, 12.0], loser=[5.0, 6.0, 7.0]),
            "partly",
            "reproduced",
        ),
    ),
    "mitigation_ddpm": dict(
        support=dict(
            plain_last=40.0,
            mitigated_last=20.0,
            plain_spread=5.0,
            mitigated_spread=6.0,
            replicates=3,
        ),  # fmt: skip
        partly=None,
        contradict=dict(
            plain_last=20.0,
            mitigated_last=40.0,
            plain_spread=5.0,
            mitigated_spread=6.0,
            replicates=3,
        ),  # fmt: skip
        not_shown=dict(
            plain_last=40.0,
            mitigated_last=37.0,
            plain_spread=5.0,
            mitigated_spread=6.0,
            replicates=3,
        ),  # fmt: skip
        stated=["median FID", "spreads"],
        change=(
            "margin",
            5.0,
            dict(
                plain_last=40.0,
                mitigated_last=20.0,
                plain_spread=5.0,
                mitigated_spread=6.0,
                replicates=3,
            ),  # fmt: skip
            "reproduced",
            "not shown at this scale",
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
    assert RULES["fully_ddpm_bias"].sentence == (
        "reproduced when, at the strongest bias, the median recall across replicates falls "
        "from the first to the last generation by more than its spread while precision falls "
        "by at most 0.05 plus its spread; partly when recall falls so and precision falls by "
        "more; not shown at this scale when recall falls by less than its spread, or fewer "
        "than 3 replicates ran; not reproduced when recall does not fall"
    )
    assert "1 times" not in RULES["fully_ddpm"].sentence
    assert "precision and recall both fall by more than their spreads" in (
        RULES["fully_ddpm"].sentence
    )


NOISY = sorted(n for n in CASES if "not_shown" in CASES[n])


def test_replicated_rules_are_the_deep_model_ones():
    assert NOISY == [
        "augmentation_ddpm",
        "augmentation_ddpm_pool",
        "fresh_ddpm_limit",
        "fully_ddpm",
        "fully_ddpm_bias",
        "fully_flow_tails",
        "fully_wgan",
        "mitigation_ddpm",
        "stylegan2_artifacts",
        "stylegan2_bias",
        "stylegan2_mad",
        "stylegan2_modes",
        "stylegan2_pool",
    ]
    assert all(isinstance(RULES[n], NoiseAware) for n in NOISY)
    assert not any(isinstance(RULES[n], NoiseAware) for n in set(CASES) - set(NOISY))


@pytest.mark.parametrize("name", NOISY)
def test_effects_within_the_spread_are_not_shown(name):
    verdict = judge(name, **CASES[name]["not_shown"])
    assert verdict.verdict == "not shown at this scale"
    assert "not shown at this scale when" in RULES[name].sentence
    assert "replicates" in verdict.evidence


@pytest.mark.parametrize("name", NOISY)
def test_too_few_replicates_are_not_shown(name):
    numbers = dict(CASES[name]["support"], replicates=2)
    assert judge(name, **numbers).verdict == "not shown at this scale"
    fewer = dataclasses.replace(RULES[name], min_replicates=2)
    assert fewer(**numbers).verdict == "reproduced"
    assert "fewer than 2 replicates" in fewer.sentence


def _scaled(value, factor):
    if isinstance(value, dict):
        return {k: v * factor for k, v in value.items()}
    return np.multiply(value, factor).tolist()


@pytest.mark.parametrize("name", NOISY)
def test_a_larger_spread_needs_a_larger_effect(name):
    """Scaling every spread up far enough turns "reproduced" into "not shown"."""
    numbers = dict(CASES[name]["support"])
    assert judge(name, **numbers).verdict == "reproduced"
    spreads = [k for k in numbers if k.endswith("spread")]
    assert spreads
    for factor in (0.0, 0.5) if name != "fresh_ddpm_limit" else ():
        scaled = {k: (_scaled(v, factor) if k in spreads else v) for k, v in numbers.items()}
        assert judge(name, **scaled).verdict == "reproduced"
    if name != "fresh_ddpm_limit":  # there a larger spread makes the limits indistinguishable
        scaled = {k: (_scaled(v, 100) if k in spreads else v) for k, v in numbers.items()}
        assert judge(name, **scaled).verdict == "not shown at this scale"
    else:
        tight = dict(numbers, limit_spread=0.5)  # limits 1.0 apart, spread 0.5: distinguishable
        assert judge(name, **tight).verdict == "partly"


def test_evidence_states_effect_and_spread():
    verdict = judge("fully_ddpm", **CASES["fully_ddpm"]["support"])
    assert verdict.evidence == (
        "FID +20 (spread 4), precision -0.10 (0.03), recall -0.30 (0.05); control FID at most "
        "12; 3 replicates"
    )
    assert judge("fully_gaussian_drift", w2_first=0.3, w2_last=10.0).evidence == ""
    growth = judge("augmentation_ddpm", **CASES["augmentation_ddpm"]["support"]).evidence
    assert growth.startswith("FID growth, augmented vs fully synthetic: +2 vs +10 (spread 3)")


def test_superiority_counts_pairs_and_ties():
    from madutils.analysis.verdicts import superiority

    assert superiority([1.0, 2.0], [3.0, 4.0], "lower") == 1.0
    assert superiority([1.0, 2.0], [3.0, 4.0], "higher") == 0.0
    assert superiority([1.0, 3.0], [3.0, 2.0], "lower") == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    verdict = judge("mitigation_gaussian", winner=[0.1, 0.5, 2.5], loser=[1.0, 2.0, 3.0])
    assert verdict.evidence == "ends lower in 78% of 3 x 3 pairs of replicates"


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
    spread = {1.0: 1.0, 0.5: 1.0}
    verdict = judge(
        "augmentation_ddpm",
        augmented_growth={1.0: np.float32(2.0), 0.5: 5},
        fully_growth={0.5: 20.0, 1.0: np.float64(10.0)},
        spread=spread,
        replicates=np.int64(3),
    )
    assert verdict.verdict == "reproduced"
    assert verdict.numbers == {
        "augmented_growth": {1.0: 2.0, 0.5: 5.0},
        "fully_growth": {0.5: 20.0, 1.0: 10.0},
        "spread": spread,
        "replicates": 3.0,
    }
    assert all(type(v) is float for v in verdict.numbers["augmented_growth"].values())
    # paired by key, not by position: swap the fully synthetic growths and the verdict changes
    swapped = judge(
        "augmentation_ddpm",
        augmented_growth={1.0: 12.0, 0.5: 5.0},
        fully_growth={0.5: 10.0, 1.0: 20.0},
        spread=spread,
        replicates=3,
    )
    assert swapped.verdict == "reproduced"
    assert (
        judge(
            "augmentation_ddpm",
            augmented_growth={1.0: 12.0, 0.5: 5.0},
            fully_growth={1.0: 10.0, 0.5: 20.0},
            spread=spread,
            replicates=3,
        ).verdict
        == "not reproduced"
    )
    scalar = judge("fully_gaussian_drift", w2_first=np.array(0.3), w2_last=np.float32(10.0))
    assert scalar.numbers == {"w2_first": 0.3, "w2_last": 10.0}
    assert type(scalar.numbers["w2_first"]) is float


def test_judge_rejects_unknown_rules_and_wrong_numbers():
    with pytest.raises(ValueError, match="rule_name must be one of .*'fresh_pool'.*got 'bogus'"):
        judge("bogus", limit_gap=0.1)
    limit = CASES["fresh_ddpm_limit"]["support"]
    with pytest.raises(ValueError, match="takes the numbers slowdown, gain_unbiased.*missing"):
        judge("fresh_pool", slowdown=2.0, gain_unbiased=10.0)
    with pytest.raises(ValueError, match="unknown gap"):
        judge("fresh_ddpm_limit", **limit, gap=0.3)
    with pytest.raises(ValueError, match="missing limit_small; unknown gap"):
        without_small = {k: v for k, v in limit.items() if k != "limit_small"}
        judge("fresh_ddpm_limit", **without_small, gap=0.3)
    with pytest.raises(ValueError, match="unknown control_fid_max"):
        judge("fully_wgan", **CASES["fully_ddpm"]["support"])
    with pytest.raises(ValueError, match="missing control_fid_max"):
        judge("fully_ddpm", **CASES["fully_wgan"]["support"])
    for bad in (float("nan"), "0.2", True):
        with pytest.raises(ValueError, match="limit_small must be a real number"):
            judge("fresh_ddpm_limit", **dict(limit, limit_small=bad))
    with pytest.raises(ValueError, match="drift_ratios must be a sequence or mapping"):
        judge("theory_mean_drift", drift_ratios=1.0)
    with pytest.raises(ValueError, match="drift_ratios must hold at least one number"):
        judge("theory_mean_drift", drift_ratios=[])
    with pytest.raises(ValueError, match=r"drift_ratios\[1\] must be a real number"):
        judge("theory_mean_drift", drift_ratios=[1.0, None])
    with pytest.raises(ValueError, match="must have the same length; got 1 and 2"):
        judge(
            "augmentation_ddpm",
            augmented_growth=[1.0],
            fully_growth=[2.0, 3.0],
            spread=[1.0],
            replicates=3,
        )
    with pytest.raises(ValueError, match="must have the same keys"):
        judge(
            "augmentation_ddpm",
            augmented_growth={1.0: 1.0},
            fully_growth={0.5: 2.0},
            spread={1.0: 1.0},
            replicates=3,
        )
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
    with pytest.raises(ValueError, match="margin must be >= 0"):
        MadTrend(margin=-1.0)
    with pytest.raises(ValueError, match="min_replicates must be >= 1"):
        MadTrend(min_replicates=0)


def test_verdict_checks_its_outcome():
    assert OUTCOMES == ("reproduced", "partly", "not shown at this scale", "not reproduced")
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


# The replicated rules with every spread 0 and enough replicates are the old single-replicate
# rules, except that an effect the old rule called "not reproduced" only because it stayed
# within the control's band is now "not shown at this scale".
ZERO = dict(fid_spread=0.0, precision_spread=0.0, recall_spread=0.0, replicates=3)


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
            **ZERO,
        )
        new = judge("fully_ddpm", control_fid_max=ctrl, **numbers).verdict
        within_control = f0 < f1 <= ctrl
        assert new == old or (within_control and new == "not shown at this scale")
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
        bias = dict(
            precision_first=p0,
            precision_last=p1,
            recall_first=r0,
            recall_last=r1,
            precision_spread=0.0,
            recall_spread=0.0,
            replicates=3,
        )
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
            tail_spread=0.0,
            biased_tail_last=tb,
            w1_last=w1,
            biased_w1_last=wb,
            w1_spread=0.0,
            replicates=4,
        ).verdict
        assert new == old


def test_fresh_and_ess_rules_keep_the_old_verdicts():
    for row in _draws(8, seed=8):
        aug, fully = 20 * row[0:2] - 5, 20 * row[2:4] - 5
        old = "reproduced" if all(aug < fully) else "not reproduced"
        zero = dict(spread=[0.0, 0.0], replicates=3)
        assert (
            judge("augmentation_ddpm", augmented_growth=aug, fully_growth=fully, **zero).verdict
            == old
        )
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
        # limits 10 and b, their relative gap |10 - b| / mean; a spread as wide as the gap
        # leaves the old verdict (which knew no spread)
        big = 10 + 30 * row[3]
        gap = (big - 10) / ((big + 10) / 2)
        old = "reproduced" if gap < 0.5 else ("partly" if gap < 1 else "not reproduced")
        limits = dict(limit_small=10.0, limit_big=big, limit_spread=big - 10, replicates=3)
        assert judge("fresh_ddpm_limit", **limits).verdict == old
        growth, n_real_growth = 120 * row[4], 100.0
        old = "reproduced" if growth < n_real_growth / 10 else "partly"
        new = judge(
            "ess_admissible_growth", admissible_growth=growth, n_real_growth=n_real_growth
        ).verdict
        assert new == old or (old == "partly" and new == "not reproduced" and growth >= 100)
