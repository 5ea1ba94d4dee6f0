"""Verdict rules: how each chapter turns its measured numbers into a verdict on a claim.

Every claim of the paper that a chapter tests gets a named rule here. A rule is a small frozen
dataclass whose fields are its thresholds (the defaults are the thresholds the book uses); called
with the chapter's measured numbers it returns a :class:`Verdict`: one of ``"reproduced"``,
``"partly"``, ``"not shown at this scale"`` (the rules of replicated experiments, for an effect
within the noise) or ``"not reproduced"``, the numbers it used and the rule itself as one
plain-English sentence, written from the thresholds so that the prose a chapter glues and the
verdict it prints can never disagree. No verdict is a constant: numbers that contradict the
claim give ``"not reproduced"``.

Chapters call :func:`judge` with a name from :data:`RULES`::

    v = judge("fully_gaussian_drift", w2_first=w2_first, w2_last=w2_last)
    glue_value("fs_rule_gaussian", v.rule)
    Claim(claim=..., figure=..., result=..., verdict=v.verdict)

A different threshold is a different rule: ``dataclasses.replace(RULES[name], threshold=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from numbers import Real
from typing import ClassVar

from madutils._validation import check_choice

__all__ = [
    "OUTCOMES",
    "RULES",
    "AdmissibleGrowth",
    "ArtifactsGrow",
    "AugmentationFidGrowth",
    "AugmentationSlows",
    "CoverageFalls",
    "DriftFollowsClosedForm",
    "EndsBetter",
    "FidConverges",
    "FitDrifts",
    "FlowTails",
    "LimitForgetsStart",
    "MadTrend",
    "MemoryGain",
    "MitigatedFid",
    "MixtureModes",
    "NoiseAware",
    "OneMetricTrend",
    "PoolPlateau",
    "PrecisionHoldsRecallFalls",
    "Rule",
    "SyntheticWorth",
    "VarianceCollapse",
    "Verdict",
    "judge",
    "superiority",
]

OUTCOMES = ("reproduced", "partly", "not shown at this scale", "not reproduced")
"""The verdicts a rule can reach (the other :data:`~madutils.analysis.claims.VERDICTS` are set
by the chapter, not computed)."""


def _num(x: float) -> str:
    """A threshold as the sentence shows it (``0.01``, ``10``, ``1.5``)."""
    return f"{x:g}"


def _pct(x: float) -> str:
    """A fraction as a percentage (``0.1`` -> ``10%``)."""
    return f"{100 * x:g}%"


def _scalar(value, name: str) -> float:
    """``value`` as a float; ``ValueError`` unless it is a real number other than NaN."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy and torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
        raise ValueError(f"{name} must be a real number (not NaN); got {value!r}")
    return float(value)


def _collection(value, name: str) -> tuple[float, ...] | dict:
    """A non-empty sequence or mapping of numbers, as a tuple of floats or a dict of floats."""
    if isinstance(value, Mapping):
        out = {k: _scalar(v, f"{name}[{k!r}]") for k, v in value.items()}
    elif isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence or mapping of numbers; got {value!r}")
    else:
        out = tuple(_scalar(v, f"{name}[{i}]") for i, v in enumerate(value))
    if not out:
        raise ValueError(f"{name} must hold at least one number; got {value!r}")
    return out


def _values(x) -> tuple[float, ...]:
    return tuple(x.values()) if isinstance(x, dict) else x


def _paired(a, b, name_a: str, name_b: str) -> list[tuple[float, float]]:
    """Pair two collections: by key if both are mappings, else by position (same length)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise ValueError(f"{name_a} and {name_b} must have the same keys; got {a} and {b}")
        return [(a[k], b[k]) for k in a]
    a, b = _values(a), _values(b)
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same length; got {len(a)} and {len(b)}"
        )
    return list(zip(a, b, strict=True))


def _check_threshold(value, name: str, *, low: float = 0.0, strict: bool = False) -> None:
    value = _scalar(value, name)
    if (value <= low) if strict else (value < low):
        sign = ">" if strict else ">="
        raise ValueError(f"{name} must be {sign} {low:g}; got {value!r}")


@dataclass(frozen=True)
class Verdict:
    """What a rule concluded from a chapter's numbers.

    Attributes
    ----------
    verdict : str
        One of :data:`OUTCOMES`.
    numbers : dict
        The measured numbers the rule used, by name (floats, or tuples / dicts of floats).
    rule : str
        The rule as one sentence with its thresholds filled in, for the chapter's prose.
    evidence : str
        For the rules of replicated experiments (:class:`NoiseAware`), the effects and the
        spreads they were judged against, in a phrase; "" for the others.
    """

    verdict: str
    numbers: dict = field(default_factory=dict)
    rule: str = ""
    evidence: str = ""

    def __post_init__(self):
        check_choice(self.verdict, "verdict", OUTCOMES)


@dataclass(frozen=True)
class Rule:
    """Base of all rules: validates the numbers, decides, returns a :class:`Verdict`.

    A subclass lists the numbers it needs in ``inputs`` (real numbers) and ``collections``
    (sequences or mappings of numbers), names its thresholds as dataclass fields, and defines
    :attr:`sentence` and :meth:`decide`.
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    collections: ClassVar[tuple[str, ...]] = ()

    @property
    def scalars(self) -> tuple[str, ...]:
        """Names of the real numbers this rule takes."""
        return self.inputs

    @property
    def needs(self) -> tuple[str, ...]:
        """Names of all the numbers this rule takes."""
        return self.scalars + self.collections

    @property
    def sentence(self) -> str:
        """The rule in one sentence, thresholds filled in."""
        raise NotImplementedError

    def decide(self, **numbers) -> str:
        """The verdict for validated ``numbers`` (floats, and tuples or dicts of floats)."""
        raise NotImplementedError

    def evidence(self, **numbers) -> str:
        """The effects and spreads behind the verdict, in a phrase ("" unless replicated)."""
        return ""

    def __call__(self, **numbers) -> Verdict:
        """Judge ``numbers`` (all of :attr:`needs`, nothing else).

        Raises
        ------
        ValueError
            If a number is missing, unknown or not a real number.
        """
        missing = [n for n in self.needs if n not in numbers]
        unknown = sorted(n for n in numbers if n not in self.needs)
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown {', '.join(unknown)}")
            raise ValueError(
                f"{type(self).__name__} takes the numbers {', '.join(self.needs)}; "
                + "; ".join(problems)
            )
        checked = {n: _scalar(numbers[n], n) for n in self.scalars}
        checked |= {n: _collection(numbers[n], n) for n in self.collections}
        return Verdict(
            verdict=self.decide(**checked),
            numbers=checked,
            rule=self.sentence,
            evidence=self.evidence(**checked),
        )


# --- Gaussian theory ------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftFollowsClosedForm(Rule):
    """The fitted mean is a martingale whose squared drift follows its closed form.

    Claim (§3.1, App. A): the squared drift ``E||mu_t - mu_1||^2`` of the fully synthetic
    Gaussian loop equals ``(tr Sigma_r / n) sum_tau lambda^tau``.

    Parameters
    ----------
    tolerance : float
        Largest relative deviation from the closed form for "reproduced".
    partly_tolerance : float
        Largest relative deviation for "partly"; beyond it the drift contradicts the closed form.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    drift_ratios : sequence or mapping of float
        For each λ (optionally each of several generations): the mean across replicates of the
        ``mean_drift`` metric in the chapter's ``table``, divided by the closed form in its
        ``theory`` frame, at an early generation (the chapter's ``early``, where the
        replicates still sample the expectation; see the variance claim).
    """

    tolerance: float = 0.1
    partly_tolerance: float = 0.25
    collections: ClassVar[tuple[str, ...]] = ("drift_ratios",)

    def __post_init__(self):
        _check_threshold(self.tolerance, "tolerance", strict=True)
        if not self.partly_tolerance >= self.tolerance:
            raise ValueError(
                f"partly_tolerance must be >= tolerance ({self.tolerance!r}); "
                f"got {self.partly_tolerance!r}"
            )

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the simulated mean squared drift of the fitted mean is within "
            f"{_pct(self.tolerance)} of its closed form for every λ; partly when every λ is "
            f"within {_pct(self.partly_tolerance)}; not reproduced otherwise"
        )

    def decide(self, drift_ratios) -> str:
        worst = max(abs(r - 1) for r in _values(drift_ratios))
        if worst <= self.tolerance:
            return "reproduced"
        return "partly" if worst <= self.partly_tolerance else "not reproduced"


@dataclass(frozen=True)
class VarianceCollapse(Rule):
    """The total variance collapses in almost every run while its expectation stays put (λ = 1).

    Claim (§3.1, App. A): ``Sigma_t -> 0`` almost surely even at λ = 1, while
    ``E tr Sigma_t = lambda^(t-1) tr Sigma_r``.

    Parameters
    ----------
    collapse_below : float
        The median ratio must fall below this for "reproduced".
    z : float
        The early mean must lie within ``z`` standard errors of 1 for "reproduced".

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    median_ratio : float
        Median over replicates of ``tr Sigma_t / tr Sigma_r`` at the last generation, λ = 1
        (the chapter's ``median_ratio``).
    early_mean, early_se : float
        Mean over replicates of that ratio at an early generation and its standard error
        (``early_mean``, ``early_se``); the closed form is 1.
    """

    collapse_below: float = 0.01
    z: float = 3.0
    inputs: ClassVar[tuple[str, ...]] = ("median_ratio", "early_mean", "early_se")

    def __post_init__(self):
        _check_threshold(self.collapse_below, "collapse_below", strict=True)
        _check_threshold(self.z, "z", strict=True)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when, at λ = 1, the median total variance at the last generation is "
            f"below {_num(self.collapse_below)} times the real one while the mean across "
            f"replicates at the early generation is within {_num(self.z)} standard errors of "
            "the closed form; partly when the median falls below the real variance but not "
            "both hold; not reproduced when the median does not fall"
        )

    def decide(self, median_ratio, early_mean, early_se) -> str:
        if median_ratio >= 1:
            return "not reproduced"
        expectation = abs(early_mean - 1) <= self.z * early_se
        return "reproduced" if median_ratio < self.collapse_below and expectation else "partly"


# --- Fully synthetic loop -------------------------------------------------------------------


@dataclass(frozen=True)
class FitDrifts(Rule):
    """A fully synthetic Gaussian fit drifts away from ``P_r`` (λ = 1).

    Parameters
    ----------
    growth : float
        Factor by which the distance must grow for "reproduced".

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    w2_first, w2_last : float
        Median squared W2 to ``P_r`` at generation 1 and at the last generation, λ = 1
        (the chapter's ``g_first``, ``g_last``).
    """

    growth: float = 2.0
    inputs: ClassVar[tuple[str, ...]] = ("w2_first", "w2_last")

    def __post_init__(self):
        _check_threshold(self.growth, "growth", low=1.0)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the median squared W2 distance to P_r at the last generation is "
            f"more than {_num(self.growth)} times that at generation 1 (λ = 1); partly when it "
            "grows by less; not reproduced when it does not grow"
        )

    def decide(self, w2_first, w2_last) -> str:
        if w2_last > self.growth * w2_first:
            return "reproduced"
        return "partly" if w2_last > w2_first else "not reproduced"


@dataclass(frozen=True)
class MixtureModes(Rule):
    """A fully synthetic mixture loses modes; recall and modal variance track it, total variance
    does not.

    Parameters
    ----------
    variance_share : float
        The total variance must change by less than this share of the modal variance's change.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    modes_first, modes_last : float
        Median modes covered at generation 1 and at the last (``values["modes_covered"]``).
    recall_first, recall_last : float
        Median recall at the same generations (``values["recall"]``).
    total_variance_change, modal_variance_change : float
        Change of the median total variance and of the average per-component variance from the
        first to the last generation, in percent (``tv_change``, ``mv_change``).
    """

    variance_share: float = 0.5
    inputs: ClassVar[tuple[str, ...]] = (
        "modes_first",
        "modes_last",
        "recall_first",
        "recall_last",
        "total_variance_change",
        "modal_variance_change",
    )

    def __post_init__(self):
        _check_threshold(self.variance_share, "variance_share", strict=True)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when modes covered and recall both fall from the first to the last "
            "generation and the total variance changes by less than "
            f"{_num(self.variance_share)} times as much as the modal variance; partly when only "
            "some of this holds; not reproduced when neither modes covered nor recall falls"
        )

    def decide(self, **x) -> str:
        modes_fall = x["modes_last"] < x["modes_first"]
        recall_falls = x["recall_last"] < x["recall_first"]
        if not (modes_fall or recall_falls):
            return "not reproduced"
        masked = abs(x["total_variance_change"]) < self.variance_share * abs(
            x["modal_variance_change"]
        )
        return "reproduced" if modes_fall and recall_falls and masked else "partly"


@dataclass(frozen=True)
class NoiseAware(Rule):
    """Base of the rules of the deep-model experiments, which run several replicates each.

    An effect counts only where it exceeds ``margin`` times its spread: the range across
    replicates (:mod:`madutils.analysis.replicates`) of the metric at the generations compared.
    Effects in the claim's direction that do not are "not shown at this scale", and so is
    every effect measured with fewer than ``min_replicates`` replicates.

    Parameters
    ----------
    margin : float
        How many times its spread an effect must exceed.
    min_replicates : int
        Fewest replicates a verdict rests on.
    """

    margin: float = 1.0
    min_replicates: int = 3

    def __post_init__(self):
        _check_threshold(self.margin, "margin")
        _check_threshold(self.min_replicates, "min_replicates", low=1)

    def beyond(self, effect: float, spread: float) -> bool:
        """Whether ``effect`` exceeds ``margin`` times ``spread`` (and is positive)."""
        return effect > 0 and effect > self.margin * spread

    def spreads(self, whose: str = "its spread") -> str:
        """``margin`` times ``whose``, as the sentences say it ("its spread", "2 times its
        spread")."""
        return whose if self.margin == 1 else f"{_num(self.margin)} times {whose}"

    @property
    def noise(self) -> str:
        """How the sentences name the test against the spread."""
        return f"by more than {self.spreads()}"

    @property
    def too_few(self) -> str:
        return f"fewer than {self.min_replicates} replicates ran"


def _signed(x: float, digits: int = 3) -> str:
    return f"{x:+.{digits}g}"


@dataclass(frozen=True)
class MadTrend(NoiseAware):
    """An image loop goes MAD: FID rises while precision and recall fall (λ = 1).

    Parameters
    ----------
    margin, min_replicates
        As :class:`NoiseAware`.
    control : bool
        Whether a real-data control's FID is part of the rule (a setting, not a threshold).

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    fid_first, fid_last, precision_first, precision_last, recall_first, recall_last : float
        Median FID, precision and recall across replicates at generation 1 and at the last
        generation (:func:`madutils.analysis.replicates.change`'s ``first`` and ``last``).
    fid_spread, precision_spread, recall_spread : float
        Their spreads (``change(...).spread``).
    replicates : float
        How many replicates measured them.
    control_fid_max : float
        Only with ``control=True``: the highest FID of the real-data control over its
        replicates and generations; the last FID must exceed it too.
    """

    control: bool = True
    inputs: ClassVar[tuple[str, ...]] = (
        "fid_first",
        "fid_last",
        "fid_spread",
        "precision_first",
        "precision_last",
        "precision_spread",
        "recall_first",
        "recall_last",
        "recall_spread",
        "replicates",
    )

    @property
    def scalars(self) -> tuple[str, ...]:
        return self.inputs + (("control_fid_max",) if self.control else ())

    @property
    def sentence(self) -> str:
        control = " and ends above the real-data control's highest FID" if self.control else ""
        return (
            "reproduced when the median FID across replicates rises from generation 1 to the "
            f"last {self.noise} (the larger range across replicates of the two generations)"
            f"{control}, and precision and recall both fall by more than "
            f"{self.spreads('their spreads')}; partly when the FID rises so but precision or "
            "recall does not fall so; not shown at this scale when the FID rises by less than "
            f"that{' or not above the control' if self.control else ''}, or {self.too_few}; not "
            "reproduced when the median FID does not rise"
        )

    def decide(self, **x) -> str:
        rise = x["fid_last"] - x["fid_first"]
        if rise <= 0:
            return "not reproduced"
        above_control = not self.control or x["fid_last"] > x["control_fid_max"]
        if x["replicates"] < self.min_replicates or not (
            self.beyond(rise, x["fid_spread"]) and above_control
        ):
            return "not shown at this scale"
        falls = self.beyond(
            x["precision_first"] - x["precision_last"], x["precision_spread"]
        ) and self.beyond(x["recall_first"] - x["recall_last"], x["recall_spread"])
        return "reproduced" if falls else "partly"

    def evidence(self, **x) -> str:
        control = f"; control FID at most {x['control_fid_max']:.3g}" if self.control else ""
        return (
            f"FID {_signed(x['fid_last'] - x['fid_first'])} (spread {x['fid_spread']:.3g}), "
            f"precision {x['precision_last'] - x['precision_first']:+.2f} "
            f"({x['precision_spread']:.2f}), recall "
            f"{x['recall_last'] - x['recall_first']:+.2f} ({x['recall_spread']:.2f})"
            f"{control}; {x['replicates']:.0f} replicates"
        )


@dataclass(frozen=True)
class PrecisionHoldsRecallFalls(NoiseAware):
    """With sampling bias an image loop keeps precision while recall collapses.

    Parameters
    ----------
    precision_tolerance : float
        How far precision may fall, beyond its spread, and still count as kept.
    margin, min_replicates
        As :class:`NoiseAware`.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    precision_first, precision_last, recall_first, recall_last : float
        Median precision and recall across replicates at generation 1 and at the last
        generation, at the strongest bias.
    precision_spread, recall_spread : float
        Their spreads (:func:`madutils.analysis.replicates.change`).
    replicates : float
        How many replicates measured them.
    """

    precision_tolerance: float = 0.05
    inputs: ClassVar[tuple[str, ...]] = (
        "precision_first",
        "precision_last",
        "precision_spread",
        "recall_first",
        "recall_last",
        "recall_spread",
        "replicates",
    )

    def __post_init__(self):
        super().__post_init__()
        _check_threshold(self.precision_tolerance, "precision_tolerance")

    @property
    def sentence(self) -> str:
        return (
            "reproduced when, at the strongest bias, the median recall across replicates falls "
            f"from the first to the last generation {self.noise} while precision falls by at "
            f"most {_num(self.precision_tolerance)} plus {self.spreads()}; "
            "partly when recall falls so and precision falls by more; not shown at "
            f"this scale when recall falls by less than its spread, or {self.too_few}; not "
            "reproduced when recall does not fall"
        )

    def decide(self, **x) -> str:
        fall = x["recall_first"] - x["recall_last"]
        if fall <= 0:
            return "not reproduced"
        if x["replicates"] < self.min_replicates or not self.beyond(fall, x["recall_spread"]):
            return "not shown at this scale"
        allowed = self.precision_tolerance + self.margin * x["precision_spread"]
        holds = x["precision_first"] - x["precision_last"] <= allowed
        return "reproduced" if holds else "partly"

    def evidence(self, **x) -> str:
        return (
            f"recall {x['recall_last'] - x['recall_first']:+.2f} (spread "
            f"{x['recall_spread']:.2f}), precision "
            f"{x['precision_last'] - x['precision_first']:+.2f} "
            f"({x['precision_spread']:.2f}); {x['replicates']:.0f} replicates"
        )


@dataclass(frozen=True)
class FlowTails(NoiseAware):
    """A fully synthetic flow loses the tails, faster with sampling bias.

    Parameters
    ----------
    tail_fraction : float
        The tails count as lost when the last tail share is below this fraction of the first
        by more than its spread.
    margin, min_replicates
        As :class:`NoiseAware`.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    tail_first, tail_last, tail_spread : float
        Median share of samples beyond the real 99% quantile of ``x2`` across replicates at
        generation 1 and at the last generation, λ = 1, and its spread.
    biased_tail_last : float
        The same share at the last generation with the smallest λ.
    w1_last, biased_w1_last : float
        Median marginal W1 distance at the last generation, λ = 1 and smallest λ.
    w1_spread : float
        The larger spread of those two.
    replicates : float
        How many replicates measured them.
    """

    tail_fraction: float = 1.0
    inputs: ClassVar[tuple[str, ...]] = (
        "tail_first",
        "tail_last",
        "tail_spread",
        "biased_tail_last",
        "w1_last",
        "biased_w1_last",
        "w1_spread",
        "replicates",
    )

    def __post_init__(self):
        super().__post_init__()
        _check_threshold(self.tail_fraction, "tail_fraction", strict=True)

    @property
    def sentence(self) -> str:
        share = "" if self.tail_fraction == 1 else f"{_num(self.tail_fraction)} times "
        return (
            "reproduced when, at λ = 1, the median share of samples beyond the real 99% "
            f"quantile at the last generation is below {share}the first generation's "
            f"{self.noise} and, with the smallest λ, the last tail share is "
            f"no larger and the marginal W1 distance larger than at λ = 1 {self.noise}; partly "
            "when one of the two holds; not shown at this scale when both point the claim's "
            f"way within the spread, or {self.too_few}; not reproduced when neither points "
            "that way"
        )

    def decide(self, **x) -> str:
        lost_by = self.tail_fraction * x["tail_first"] - x["tail_last"]
        w1_by = x["biased_w1_last"] - x["w1_last"]
        narrower = x["biased_tail_last"] <= x["tail_last"]
        if lost_by <= 0 and not (narrower and w1_by > 0):
            return "not reproduced"
        if x["replicates"] < self.min_replicates:
            return "not shown at this scale"
        lost = self.beyond(lost_by, x["tail_spread"])
        faster = narrower and self.beyond(w1_by, x["w1_spread"])
        if lost and faster:
            return "reproduced"
        return "partly" if lost or faster else "not shown at this scale"

    def evidence(self, **x) -> str:
        return (
            f"tail share {_signed(x['tail_last'] - x['tail_first'], 2)} (spread "
            f"{x['tail_spread']:.2g}); W1 with the smallest λ "
            f"{_signed(x['biased_w1_last'] - x['w1_last'], 2)} ({x['w1_spread']:.2g}); "
            f"{x['replicates']:.0f} replicates"
        )


# --- Synthetic augmentation -----------------------------------------------------------------


@dataclass(frozen=True)
class AugmentationSlows(Rule):
    """A fixed real set slows the degradation of the fully synthetic loop but does not stop it.

    Parameters
    ----------
    degrades_above : float
        Degradation counts as still present when the worst augmented ratio exceeds this.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    fully_ratio : float
        Median squared W2 at the last generation over that at generation 1, fully synthetic
        Gaussian loop, λ = 1 (``ratios[("fully synthetic", 1.0)]``).
    augmented_ratios : sequence of float
        The same ratio for each augmented loop (last model, accumulated pool), λ = 1.
    worst_augmented_ratio : float
        The largest ratio over the augmented loops and all λ (``worst_aug``).
    fully_modes : float
        Median modes covered by the fully synthetic mixture at its last generation
        (``modes[("fully synthetic", mixture_generations)]``).
    augmented_modes : sequence of float
        The same for each augmented mixture loop.
    """

    degrades_above: float = 1.0
    inputs: ClassVar[tuple[str, ...]] = ("fully_ratio", "worst_augmented_ratio", "fully_modes")
    collections: ClassVar[tuple[str, ...]] = ("augmented_ratios", "augmented_modes")

    def __post_init__(self):
        _check_threshold(self.degrades_above, "degrades_above", strict=True)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when, at λ = 1, every augmented Gaussian loop ends with a smaller "
            "last-to-first W2² ratio than the fully synthetic loop and every augmented mixture "
            "keeps at least as many modes, while the worst augmented ratio over all λ is still "
            f"above {_num(self.degrades_above)}; partly when augmentation slows the loop but no "
            "augmented ratio exceeds that; not reproduced when augmentation does not slow it"
        )

    def decide(
        self, fully_ratio, worst_augmented_ratio, fully_modes, augmented_ratios, augmented_modes
    ) -> str:
        slows = all(r < fully_ratio for r in _values(augmented_ratios)) and all(
            m >= fully_modes for m in _values(augmented_modes)
        )
        if not slows:
            return "not reproduced"
        return "reproduced" if worst_augmented_ratio > self.degrades_above else "partly"


@dataclass(frozen=True)
class AugmentationFidGrowth(NoiseAware):
    """A DDPM loop with synthetic augmentation degrades more slowly than the fully synthetic one.

    Parameters
    ----------
    margin, min_replicates
        As :class:`NoiseAware`.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    augmented_growth, fully_growth : sequence or mapping of float
        Median FID across replicates at the last generation minus that at generation 1, for
        each λ judged, with augmentation and fully synthetic; paired by position, or by key
        when both are mappings.
    spread : sequence or mapping of float
        For each λ, the largest range across replicates of the FID at either generation in
        either loop.
    replicates : float
        The fewest replicates any of them ran.
    """

    inputs: ClassVar[tuple[str, ...]] = ("replicates",)
    collections: ClassVar[tuple[str, ...]] = ("augmented_growth", "fully_growth", "spread")

    @property
    def sentence(self) -> str:
        return (
            "reproduced when, for every λ judged, the median FID growth from generation 1 to "
            "the last with augmentation stays below the fully synthetic loop's "
            f"by more than {self.spreads('the spread')} (the largest range across "
            "replicates of either loop's FID at either generation); not shown at this scale "
            f"when it stays below by less, or {self.too_few}; not reproduced otherwise"
        )

    @staticmethod
    def _per_lam(augmented_growth, fully_growth, spread) -> list[tuple]:
        """``(λ or None, augmented, fully, spread)`` for each λ, paired as :func:`_paired`
        pairs (λ is None for sequences)."""
        growths = _paired(augmented_growth, fully_growth, "augmented_growth", "fully_growth")
        spreads = _paired(augmented_growth, spread, "augmented_growth", "spread")
        lams = (
            list(augmented_growth) if isinstance(augmented_growth, dict) else [None] * len(growths)
        )
        return [(lam, a, f, s) for lam, (a, f), (_, s) in zip(lams, growths, spreads, strict=True)]

    def decide(self, replicates, augmented_growth, fully_growth, spread) -> str:
        rows = self._per_lam(augmented_growth, fully_growth, spread)
        if not all(f > a for _, a, f, _ in rows):
            return "not reproduced"
        if replicates < self.min_replicates:
            return "not shown at this scale"
        slower = all(self.beyond(f - a, s) for _, a, f, s in rows)
        return "reproduced" if slower else "not shown at this scale"

    def evidence(self, replicates, augmented_growth, fully_growth, spread) -> str:
        joined = "; ".join(
            ("" if lam is None else f"λ = {lam:g}: ")
            + f"{_signed(a)} vs {_signed(f)} (spread {s:.3g})"
            for lam, a, f, s in self._per_lam(augmented_growth, fully_growth, spread)
        )
        return f"FID growth, augmented vs fully synthetic: {joined}; {replicates:.0f} replicates"


# --- StyleGAN2 (E3, E4) ---------------------------------------------------------------------


@dataclass(frozen=True)
class OneMetricTrend(NoiseAware):
    """Base of the rules on one metric's change from generation 1 to the last, across
    replicates: ``{metric}_first``, ``{metric}_last``, ``{metric}_spread`` and ``replicates``
    (:func:`madutils.analysis.replicates.judged_changes` with that one metric).

    A subclass names the ``metric``, how the sentences call it (``label``), whether the claim
    is that it ``rises`` or falls, and may overrule "reproduced" with "partly" (:meth:`strong`).
    """

    metric: ClassVar[str] = ""
    label: ClassVar[str] = ""
    rises: ClassVar[bool] = True

    @classmethod
    def _inputs(cls, metric: str) -> tuple[str, ...]:
        return (f"{metric}_first", f"{metric}_last", f"{metric}_spread", "replicates")

    def _ends(self, x) -> tuple[float, float, float]:
        m = self.metric
        return x[f"{m}_first"], x[f"{m}_last"], x[f"{m}_spread"]

    def strong(self, **x) -> bool:
        """Whether an effect beyond the noise is the whole claim ("reproduced"), not part."""
        return True

    def decide(self, **x) -> str:
        first, last, spread = self._ends(x)
        effect = last - first if self.rises else first - last
        if effect <= 0:
            return "not reproduced"
        if x["replicates"] < self.min_replicates or not self.beyond(effect, spread):
            return "not shown at this scale"
        return "reproduced" if self.strong(**x) else "partly"

    def evidence(self, **x) -> str:
        first, last, spread = self._ends(x)
        return (
            f"{self.label} {first:.2f} → {last:.2f} (spread {spread:.2f}); "
            f"{x['replicates']:.0f} replicates"
        )


@dataclass(frozen=True)
class ArtifactsGrow(OneMetricTrend):
    """Grid artifacts grow over the generations of an image loop (the paper's Figure 1).

    The measure is the spectral excess (:func:`madutils.metrics.spectrum.spectral_excess`): the
    share of spectral energy at high spatial frequencies of the synthetic images over that of
    the real images, 1 for images like the real ones. The numbers: ``spectral_excess_first``,
    ``spectral_excess_last``, ``spectral_excess_spread`` (medians and spread across replicates)
    and ``replicates``.

    Parameters
    ----------
    margin, min_replicates
        As :class:`NoiseAware`.
    """

    metric: ClassVar[str] = "spectral_excess"
    label: ClassVar[str] = "spectral excess"
    inputs: ClassVar[tuple[str, ...]] = OneMetricTrend._inputs("spectral_excess")

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the median spectral excess across replicates (high-frequency "
            "energy share over the real images') rises from generation 1 to the last "
            f"{self.noise} and ends above 1 (more high-frequency energy than the real "
            "images); partly when it rises so but ends at or below 1 (less blur, no excess); "
            f"not shown at this scale when it rises by less, or {self.too_few}; not reproduced "
            "when it does not rise"
        )

    def strong(self, **x) -> bool:
        return x["spectral_excess_last"] > 1.0


@dataclass(frozen=True)
class CoverageFalls(OneMetricTrend):
    """A loop loses modes: the share of the data's classes its samples still cover falls.

    The measure is the class coverage (the registry's ``class_coverage``, through
    :mod:`madutils.metrics.coverage`): the share of classes (for the coloured shapes, factor
    combinations) to which the feature network assigns enough of the model's samples. The
    numbers: ``class_coverage_first``, ``class_coverage_last``, ``class_coverage_spread`` and
    ``replicates``.

    Parameters
    ----------
    margin, min_replicates
        As :class:`NoiseAware`.
    """

    metric: ClassVar[str] = "class_coverage"
    label: ClassVar[str] = "class coverage"
    rises: ClassVar[bool] = False
    inputs: ClassVar[tuple[str, ...]] = OneMetricTrend._inputs("class_coverage")

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the median class coverage across replicates (the share of the "
            "data's classes the samples still cover) falls from generation 1 to the last "
            f"{self.noise}; not shown at this scale when it falls by less, or {self.too_few}; "
            "not reproduced when it does not fall"
        )


# --- Fresh data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitForgetsStart(Rule):
    """The fresh data loop converges to a limit that does not depend on ``n_ini``.

    Parameters
    ----------
    tolerance : float
        Largest relative difference of the limits for "reproduced".

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    limit_gap : float
        Largest relative difference, over λ, between the limits reached from the smallest and
        the largest ``n_ini`` (the chapter's ``gap``).
    start_first, start_last : float
        Median squared W2 at generation 1 for the smallest and the largest ``n_ini``
        (``starts``, as glued in ``fresh_start_first`` / ``fresh_start_last``).
    """

    tolerance: float = 0.1
    inputs: ClassVar[tuple[str, ...]] = ("limit_gap", "start_first", "start_last")

    def __post_init__(self):
        _check_threshold(self.tolerance, "tolerance", strict=True)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the limits reached from the two n_ini differ by less than "
            f"{_pct(self.tolerance)} for every λ; partly when they differ by more but by less "
            "than the starting distances do; not reproduced when they are no closer than the "
            "starts"
        )

    def decide(self, limit_gap, start_first, start_last) -> str:
        if limit_gap < self.tolerance:
            return "reproduced"
        start_gap = abs(start_first / start_last - 1) if start_last else math.inf
        return "partly" if limit_gap < start_gap else "not reproduced"


@dataclass(frozen=True)
class MemoryGain(Rule):
    """Synthetic data from the ``K`` most recent models raise ``n_e/n_r``, with diminishing
    returns.

    Parameters
    ----------
    min_gain : float
        Each larger ``K`` must raise ``n_e/n_r`` by more than this.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    ks : sequence of float
        The memories ``K``, increasing (``memory_summary.K``).
    ratios : sequence of float
        ``n_e/n_r`` for each ``K`` (``memory_summary.ratio``).
    """

    min_gain: float = 0.0
    collections: ClassVar[tuple[str, ...]] = ("ks", "ratios")

    def __post_init__(self):
        _check_threshold(self.min_gain, "min_gain")

    @property
    def sentence(self) -> str:
        by = "" if self.min_gain == 0 else f" by more than {_num(self.min_gain)}"
        return (
            f"reproduced when every larger K raises n_e/n_r{by} and the gain per added model "
            "shrinks from step to step; partly when the largest K still beats the smallest but "
            "not both hold; not reproduced when the largest K does no better than the smallest"
        )

    def decide(self, ks, ratios) -> str:
        pairs = _paired(ks, ratios, "ks", "ratios")
        if len(pairs) < 2 or any(b[0] <= a[0] for a, b in pairwise(pairs)):
            raise ValueError(f"ks must hold at least two increasing values; got {ks}")
        steps = [(b[1] - a[1], b[0] - a[0]) for a, b in pairwise(pairs)]
        if pairs[-1][1] <= pairs[0][1]:
            return "not reproduced"
        increasing = all(gain > self.min_gain for gain, _ in steps)
        per_model = [gain / dk for gain, dk in steps]
        diminishing = all(b < a for a, b in pairwise(per_model))
        return "reproduced" if increasing and diminishing else "partly"


@dataclass(frozen=True)
class PoolPlateau(Rule):
    """With a pool of size ``n`` and real fraction ``p``, smaller ``p`` slows the improvement and
    any λ < 1 plateaus.

    Parameters
    ----------
    slowdown_above : float
        The slowdown must exceed this at every ``n``.
    plateau_factor : float
        The biased gain must be this many times smaller than the unbiased one.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    slowdown : float
        Smallest, over ``n``, ratio of the λ = 1 limit with the smallest ``p`` to that with the
        largest ``p`` (the chapter's ``slowdown``).
    gain_unbiased, gain_biased : float
        Limit at the smallest ``n`` over that at the largest, smallest ``p``, at λ = 1 and at
        the smallest λ (``gain_unbiased``, ``gain_biased``).
    """

    slowdown_above: float = 1.0
    plateau_factor: float = 10.0
    inputs: ClassVar[tuple[str, ...]] = ("slowdown", "gain_unbiased", "gain_biased")

    def __post_init__(self):
        _check_threshold(self.slowdown_above, "slowdown_above", strict=True)
        _check_threshold(self.plateau_factor, "plateau_factor", low=1.0)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when, at λ = 1, the ratio of the limit with the smallest p to that with "
            f"the largest p exceeds {_num(self.slowdown_above)} at every n, and the "
            "factor by which growing n divides the limit is more than "
            f"{_num(self.plateau_factor)} times smaller at the smallest λ than at λ = 1; partly "
            "when only some of this holds; not reproduced when that ratio does not exceed "
            f"{_num(self.slowdown_above)} somewhere and growing n divides the biased limit by "
            "at least as much as the unbiased one"
        )

    def decide(self, slowdown, gain_unbiased, gain_biased) -> str:
        slows = slowdown > self.slowdown_above
        if slows and gain_biased < gain_unbiased / self.plateau_factor:
            return "reproduced"
        if not slows and gain_biased >= gain_unbiased:
            return "not reproduced"
        return "partly"


@dataclass(frozen=True)
class FidConverges(NoiseAware):
    """A fresh data image loop converges to the same FID whatever ``n_ini``.

    Parameters
    ----------
    reproduced_below, partly_below : float
        Largest relative gap for "reproduced" and for "partly".
    margin, min_replicates
        As :class:`NoiseAware`; for "reproduced" the gap must also be within ``margin``
        times the spread.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    limit_small, limit_big : float
        Median across replicates of each replicate's FID averaged over the last generations,
        started from the smaller and the larger ``n_ini``.
    limit_spread : float
        The larger range across replicates of those two limits.
    replicates : float
        The fewer replicates of the two.
    """

    reproduced_below: float = 0.5
    partly_below: float = 1.0
    inputs: ClassVar[tuple[str, ...]] = ("limit_small", "limit_big", "limit_spread", "replicates")

    def __post_init__(self):
        super().__post_init__()
        _check_threshold(self.reproduced_below, "reproduced_below", strict=True)
        if not self.partly_below >= self.reproduced_below:
            raise ValueError(
                f"partly_below must be >= reproduced_below ({self.reproduced_below!r}); "
                f"got {self.partly_below!r}"
            )

    @staticmethod
    def gap(limit_small: float, limit_big: float) -> float:
        """The relative gap: the difference of the limits over their mean."""
        return abs(limit_small - limit_big) / (0.5 * abs(limit_small + limit_big))

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the median FIDs the two n_ini reach over the last generations "
            f"differ by less than {_pct(self.reproduced_below)} of their mean and by no more "
            f"than {self.spreads('their spread')} (the larger range across replicates); partly "
            f"when by less than {_pct(self.partly_below)}; not shown at this scale when "
            f"{self.too_few}; not reproduced otherwise"
        )

    def decide(self, limit_small, limit_big, limit_spread, replicates) -> str:
        if replicates < self.min_replicates:
            return "not shown at this scale"
        gap = self.gap(limit_small, limit_big)
        within = abs(limit_small - limit_big) <= self.margin * limit_spread
        if gap < self.reproduced_below and within:
            return "reproduced"
        return "partly" if gap < self.partly_below else "not reproduced"

    def evidence(self, limit_small, limit_big, limit_spread, replicates) -> str:
        return (
            f"limits differ by {abs(limit_small - limit_big):.3g} "
            f"({100 * self.gap(limit_small, limit_big):.0f}%), spread {limit_spread:.3g}; "
            f"{replicates:.0f} replicates"
        )


# --- Effective sample size ------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticWorth(Rule):
    """Unbiased synthetic data can raise ``n_e/n_r``; too much biased synthetic data lowers it.

    Parameters
    ----------
    helps_above : float
        Unbiased synthetic data count as helping when the best ratio exceeds this.
    hurts_below : float
        Biased synthetic data count as hurting when the worst ratio is below this.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    best_unbiased : float
        Largest ``n_e/n_r`` over the ``(n_r, n_s)`` grid at λ = 1 (``best_unbiased``).
    worst_biased : float
        Smallest ``n_e/n_r`` over the grid at the smallest λ (``worst_biased``).
    """

    helps_above: float = 1.0
    hurts_below: float = 1.0
    inputs: ClassVar[tuple[str, ...]] = ("best_unbiased", "worst_biased")

    def __post_init__(self):
        _check_threshold(self.helps_above, "helps_above", strict=True)
        _check_threshold(self.hurts_below, "hurts_below", strict=True)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the best n_e/n_r at λ = 1 is above "
            f"{_num(self.helps_above)} and the worst at the smallest λ is below "
            f"{_num(self.hurts_below)}; partly when only one holds; not reproduced when neither"
        )

    def decide(self, best_unbiased, worst_biased) -> str:
        helps = best_unbiased > self.helps_above
        hurts = worst_biased < self.hurts_below
        if helps and hurts:
            return "reproduced"
        return "partly" if helps or hurts else "not reproduced"


@dataclass(frozen=True)
class AdmissibleGrowth(Rule):
    """The admissible amount of biased synthetic data does not grow with ``n_r``.

    Parameters
    ----------
    factor : float
        The admissible ``n_s`` must grow this many times less than ``n_r`` for "reproduced".

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    admissible_growth : float
        Largest admissible ``n_s`` at the largest ``n_r`` with any, over that at the smallest,
        at the smallest λ (``admissible_growth``; 1 when no cell is admissible).
    n_real_growth : float
        Largest ``n_r`` of the grid over the smallest (``n_real_growth``).
    """

    factor: float = 10.0
    inputs: ClassVar[tuple[str, ...]] = ("admissible_growth", "n_real_growth")

    def __post_init__(self):
        _check_threshold(self.factor, "factor", low=1.0)

    @property
    def sentence(self) -> str:
        return (
            "reproduced when, at the smallest λ, the largest admissible n_s grows across the grid "
            f"by a factor more than {_num(self.factor)} times smaller than n_r's; partly when it "
            "grows by a smaller factor than n_r but not that much smaller; not reproduced when "
            "it grows at least as much as n_r"
        )

    def decide(self, admissible_growth, n_real_growth) -> str:
        if admissible_growth < n_real_growth / self.factor:
            return "reproduced"
        return "partly" if admissible_growth < n_real_growth else "not reproduced"


# --- Beyond the paper: mitigations ---------------------------------------------------------


def superiority(winner, loser, better: str) -> float:
    """The probability that a replicate of ``winner`` ends better than one of ``loser``.

    Over every pair of one replicate of each (ties count one half): the common-language effect
    size of the Mann-Whitney test, 1 when every replicate of ``winner`` beats every one of
    ``loser``, 0.5 when the two cannot be told apart.

    Parameters
    ----------
    winner, loser : sequence of float
        The replicates' values of one metric at the generation compared.
    better : {"lower", "higher"}
        Which direction of the metric is better.
    """
    check_choice(better, "better", ("lower", "higher"))
    sign = 1.0 if better == "higher" else -1.0
    wins = sum(1.0 if sign * (a - b) > 0 else 0.5 if a == b else 0.0 for a in winner for b in loser)
    return wins / (len(winner) * len(loser))


@dataclass(frozen=True)
class EndsBetter(Rule):
    """One loop ends better than another on a metric, replicate against replicate.

    The rule of the mitigations measured exactly on the toy models with many replicates: the
    claim "mitigation M keeps the loop healthier than the plain loop" is the claim that a
    replicate of the mitigated loop ends better than one of the plain loop
    (:func:`superiority`); a claim that a step makes a loop worse swaps the two.

    Parameters
    ----------
    better : {"lower", "higher"}
        Which direction of the metric is better (a setting of the rule, not a threshold).
    strong : float
        Superiority for "reproduced".
    weak : float
        Superiority for "partly"; at or below 0.5 the claim is "not reproduced".

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    winner, loser : sequence of float
        The metric at the last generation, one value per replicate, of the loop the claim says
        ends better and of the one it says ends worse.
    """

    better: str = "lower"
    strong: float = 0.9
    weak: float = 0.6
    collections: ClassVar[tuple[str, ...]] = ("winner", "loser")

    def __post_init__(self):
        check_choice(self.better, "better", ("lower", "higher"))
        if not 0.5 < self.weak <= self.strong <= 1.0:
            raise ValueError(
                f"weak and strong must satisfy 0.5 < weak <= strong <= 1; got weak={self.weak!r}, "
                f"strong={self.strong!r}"
            )

    @property
    def sentence(self) -> str:
        side = "lower" if self.better == "lower" else "higher"
        return (
            f"reproduced when a replicate of the loop the claim favours ends with a {side} value "
            f"than one of the other loop in at least {_pct(self.strong)} of all pairs of "
            f"replicates; partly when in more than {_pct(self.weak)}; not reproduced otherwise"
        )

    def decide(self, winner, loser) -> str:
        share = superiority(_values(winner), _values(loser), self.better)
        if share >= self.strong:
            return "reproduced"
        return "partly" if share > self.weak else "not reproduced"

    def evidence(self, winner, loser) -> str:
        share = superiority(_values(winner), _values(loser), self.better)
        return (
            f"ends {self.better} in {100 * share:.0f}% of {len(winner)} x {len(loser)} pairs of "
            "replicates"
        )


@dataclass(frozen=True)
class MitigatedFid(NoiseAware):
    """A mitigated image loop ends with a lower FID than the loop it is compared with (the
    plain loop, or the loop a claim of harm favours), beyond the noise.

    Parameters
    ----------
    margin, min_replicates
        As :class:`NoiseAware`.

    Notes
    -----
    The numbers the rule takes, as keyword arguments of its call or of :func:`judge`:

    plain_last, mitigated_last : float
        Median FID across replicates at the last generation of the plain and of the mitigated
        loop (:func:`madutils.analysis.replicates.level`).
    plain_spread, mitigated_spread : float
        Their spreads.
    replicates : float
        The fewest replicates either loop ran.
    """

    inputs: ClassVar[tuple[str, ...]] = (
        "plain_last",
        "mitigated_last",
        "plain_spread",
        "mitigated_spread",
        "replicates",
    )

    @property
    def sentence(self) -> str:
        return (
            "reproduced when the mitigated loop's median FID at the last generation is below "
            f"the plain loop's {self.noise}, the larger of the two loops' spreads; not shown "
            "at this scale when the difference, either way, is within it or "
            f"{self.too_few}; not reproduced when the mitigated loop ends higher {self.noise}"
        )

    def decide(self, plain_last, mitigated_last, plain_spread, mitigated_spread, replicates):
        spread = max(plain_spread, mitigated_spread)
        if replicates < self.min_replicates:
            return "not shown at this scale"
        if self.beyond(plain_last - mitigated_last, spread):
            return "reproduced"
        if self.beyond(mitigated_last - plain_last, spread):
            return "not reproduced"
        return "not shown at this scale"

    def evidence(self, plain_last, mitigated_last, plain_spread, mitigated_spread, replicates):
        return (
            f"FID {_signed(mitigated_last - plain_last)} against the loop it is compared with "
            "(spread "
            f"{max(plain_spread, mitigated_spread):.3g}); {replicates:.0f} replicates"
        )


# --- Registry -------------------------------------------------------------------------------

RULES: dict[str, Rule] = {
    "theory_mean_drift": DriftFollowsClosedForm(),
    "theory_variance_collapse": VarianceCollapse(),
    "fully_gaussian_drift": FitDrifts(),
    "fully_mixture_modes": MixtureModes(),
    "fully_ddpm": MadTrend(control=True),
    "fully_ddpm_bias": PrecisionHoldsRecallFalls(),
    "fully_flow_tails": FlowTails(),
    "fully_wgan": MadTrend(control=False),
    "augmentation_slows": AugmentationSlows(),
    "augmentation_ddpm": AugmentationFidGrowth(),
    "augmentation_ddpm_pool": AugmentationFidGrowth(),
    "stylegan2_mad": MadTrend(control=False),
    "stylegan2_artifacts": ArtifactsGrow(),
    "stylegan2_modes": CoverageFalls(),
    "stylegan2_bias": PrecisionHoldsRecallFalls(),
    "stylegan2_pool": AugmentationFidGrowth(),
    "fresh_limit": LimitForgetsStart(),
    "fresh_memory": MemoryGain(),
    "fresh_pool": PoolPlateau(),
    "fresh_ddpm_limit": FidConverges(),
    "ess_synthetic_worth": SyntheticWorth(),
    "ess_admissible_growth": AdmissibleGrowth(),
    "mitigation_gaussian": EndsBetter(better="lower"),
    "mitigation_mixture": EndsBetter(better="higher"),
    "mitigation_ddpm": MitigatedFid(),
}
"""Every claim's rule, by name, with the book's thresholds."""


def judge(rule_name: str, **numbers) -> Verdict:
    """Judge a chapter's measured ``numbers`` with the rule ``RULES[rule_name]``.

    Parameters
    ----------
    rule_name : str
        A key of :data:`RULES`.
    **numbers
        Exactly the numbers the rule takes (see its ``needs`` and docstring).

    Returns
    -------
    Verdict
        The verdict, the numbers used and the rule's sentence.

    Raises
    ------
    ValueError
        If ``rule_name`` is unknown, or a number is missing, unknown or not a number.
    """
    check_choice(rule_name, "rule_name", RULES)
    return RULES[rule_name](**numbers)
