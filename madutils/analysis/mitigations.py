"""The mitigations proposed since the MAD paper, as runs of this project's loops.

One :class:`Mitigation` per proposal: where it comes from, what its paper claims, the loop it
was proposed for, and the settings that turn this project's plain loop (the fully synthetic
loop at λ = 1, which goes MAD) into the mitigated one. The chapter "Keeping the loop healthy"
runs every entry of :data:`MITIGATIONS` on the Gaussian and the 25-mode mixture with the same
sizes and seeds as the plain loop, so each figure and the closing table compare like with like.

- :func:`mitigated_config`: the :class:`~madutils.loops.config.LoopConfig` of one mitigation,
  and :func:`mitigation_cases`: the settings every loop of the comparison changes;
- :func:`image_settings`: the same mitigation's settings for an image loop
  (:class:`~madutils.loops.image_config.ImageLoopConfig`), where it has an image form;
- :func:`judged_pair`: which two loops a mitigation's claim compares;
- :func:`final_values`: the last generation's value of a metric, one per replicate, and
  :func:`tail_means`: its mean over the last generations;
- :func:`comparison_table`: mitigation by model, the medians at the last generation and the
  samples drawn per sample kept.

The curation steps themselves are :mod:`madutils.curation`; the loop options that apply them
are documented on :class:`~madutils.loops.config.LoopConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from madutils.loops.config import LoopConfig
from madutils.loops.image_config import ImageLoopConfig
from madutils.metrics import METRIC_LABELS

__all__ = [
    "MITIGATIONS",
    "PLAIN",
    "Mitigation",
    "comparison_table",
    "final_values",
    "image_settings",
    "judged_pair",
    "mitigated_config",
    "mitigation_cases",
    "tail_means",
]

#: The name of the plain, unmitigated loop in the chapter's tables and figures.
PLAIN = "plain loop"


@dataclass(frozen=True)
class Mitigation:
    """One mitigation: its source, its claim and the loop settings that apply it.

    Attributes
    ----------
    name : str
        The label of its runs in tables and figures.
    source : str
        Authors, year and title of the paper that proposed it.
    cite : str
        Its key in ``book/references.bib``.
    claim : str
        What the paper claims, in a sentence.
    proposed_for : str
        The models and loop the paper studied it on.
    settings : dict
        Changes to the plain fully synthetic loop (:class:`~madutils.loops.config.LoopConfig`
        fields); sizes given as a share of ``n_ini`` are under ``shares``.
    shares : dict
        Size settings as a share of ``n_ini`` (``{"pool_budget": 1.0}``), rounded.
    worse : bool
        Whether the claim is that this step makes the loop *worse* than the loop it is compared
        with (curation by preference alone drives it toward the reward's maximisers).
    compared_with : str
        The loop the claim compares it with: :data:`PLAIN`, or another mitigation's name.
    """

    name: str
    source: str
    cite: str
    claim: str
    proposed_for: str
    settings: dict = field(default_factory=dict)
    shares: dict = field(default_factory=dict)
    worse: bool = False
    compared_with: str = PLAIN


MITIGATIONS: tuple[Mitigation, ...] = (
    Mitigation(
        "accumulate",
        "Gerstgrasser et al. 2024, Is Model Collapse Inevitable?",
        "gerstgrasser2024accumulate",
        "keeping the real data and every earlier generation's synthetic data, instead of "
        "replacing them, keeps the error bounded",
        "linear regression, Gaussian fits, language models, diffusion models",
        {"family": "synthetic_augmentation", "synthetic_source": "accumulate"},
    ),
    Mitigation(
        "accumulate, fixed budget",
        "Kazdan et al. 2024, Collapse or Thrive?",
        "kazdan2024collapse",
        "accumulating under a fixed training-set size still degrades, but more slowly than "
        "replacing",
        "multivariate Gaussians, kernel density estimators, language models",
        {"family": "synthetic_augmentation", "synthetic_source": "accumulate"},
        {"pool_budget": 1.0},
    ),
    Mitigation(
        "fixed plus fresh real",
        "Alemohammad et al. 2024 (the MAD paper), section 6",
        "alemohammad2024mad",
        "enough fresh real data each generation, beside a fixed real set, keeps the loop from "
        "going MAD",
        "the fresh data loop of the MAD paper",
        {"family": "fresh_data"},
        {"n_fixed": 0.5, "n_real": 0.1, "n_synthetic": 1.0},
    ),
    Mitigation(
        "verify",
        "Feng et al. 2024, Beyond Model Collapse: Scaling Up with Synthesized Data Requires "
        "Verification",
        "feng2024verification",
        "training only on synthetic samples a verifier accepts prevents collapse, the more so "
        "the better the verifier",
        "linear classifiers, transformers on arithmetic and news summaries",
        {"curation": "verify", "verifier_accuracy": 1.0},
    ),
    Mitigation(
        "verify, 75% accurate",
        "Feng et al. 2024, Beyond Model Collapse: Scaling Up with Synthesized Data Requires "
        "Verification",
        "feng2024verification",
        "a verifier that errs still helps",
        "linear classifiers, transformers on arithmetic and news summaries",
        {"curation": "verify", "verifier_accuracy": 0.75},
    ),
    Mitigation(
        "best of 4, alone",
        "Ferbach et al. 2024, Self-Consuming Generative Models with Curated Data Provably "
        "Optimize Human Preferences",
        "ferbach2024curated",
        "curating the synthetic data by a reward drives the loop toward the reward's "
        "maximisers: away from the real distribution",
        "Gaussian mixtures and diffusion models with a Bradley-Terry preference",
        {"curation": "best_of", "candidates": 4, "preference": "bradley_terry"},
        worse=True,
    ),
    Mitigation(
        "best of 4, with real data",
        "Ferbach et al. 2024, Self-Consuming Generative Models with Curated Data Provably "
        "Optimize Human Preferences",
        "ferbach2024curated",
        "mixing real data into every generation keeps a curated loop close to the real "
        "distribution",
        "Gaussian mixtures and diffusion models with a Bradley-Terry preference",
        {
            "family": "synthetic_augmentation",
            "curation": "best_of",
            "candidates": 4,
            "preference": "bradley_terry",
        },
        compared_with="best of 4, alone",
    ),
    Mitigation(
        "self-correct, gamma 0.5",
        "Gillman et al. 2024, Self-Correcting Self-Consuming Loops for Generative Model Training",
        "gillman2024selfcorrecting",
        "moving each synthetic sample toward the real distribution (an expert's correction) "
        "stabilises the loop, the more so the stronger the correction",
        "human-motion diffusion models corrected by a physics simulator",
        {"curation": "correct", "correction": 0.5},
    ),
    Mitigation(
        "self-correct, gamma 0.1",
        "Gillman et al. 2024, Self-Correcting Self-Consuming Loops for Generative Model Training",
        "gillman2024selfcorrecting",
        "a weak correction still helps",
        "human-motion diffusion models corrected by a physics simulator",
        {"curation": "correct", "correction": 0.1},
    ),
)


def _by_name(name: str) -> Mitigation:
    for mitigation in MITIGATIONS:
        if mitigation.name == name:
            return mitigation
    names = ", ".join(repr(m.name) for m in MITIGATIONS)
    raise ValueError(f"mitigation must be one of {names}; got {name!r}")


def mitigated_config(plain: LoopConfig, name: str) -> LoopConfig:
    """The settings of ``plain`` (a fully synthetic loop) with the mitigation ``name``.

    Parameters
    ----------
    plain : LoopConfig
        The plain loop: family ``fully_synthetic``; its ``n_ini`` sets the shared sizes.
    name : str
        A :attr:`Mitigation.name` of :data:`MITIGATIONS`, or :data:`PLAIN`.

    Returns
    -------
    LoopConfig
    """
    if plain.family != "fully_synthetic":
        raise ValueError(
            f"plain must be a fully_synthetic loop (the loop that goes MAD); got "
            f"family={plain.family!r}"
        )
    if name == PLAIN:
        return plain
    mitigation = _by_name(name)
    sizes = {key: max(1, round(share * plain.n_ini)) for key, share in mitigation.shares.items()}
    changes = {**mitigation.settings, **sizes}
    if changes.get("family") == "synthetic_augmentation":
        changes.setdefault("n_synthetic", plain.n_ini)
    return dataclasses.replace(plain, **{"n_real": None, "n_synthetic": None, **changes})


def mitigation_cases(plain: LoopConfig) -> dict[str, dict]:
    """The settings each loop of the comparison changes in ``plain``: :data:`PLAIN` first,
    then every mitigation, for :func:`madutils.analysis.run_sweep`'s ``cases``."""
    base = plain.to_dict()
    cases = {}
    for name in (PLAIN, *(m.name for m in MITIGATIONS)):
        settings = mitigated_config(plain, name).to_dict()
        cases[name] = {k: v for k, v in settings.items() if v != base[k]}
    return cases


def image_settings(name: str) -> dict:
    """The settings of the mitigation ``name`` as an image loop takes them: its
    :attr:`Mitigation.settings`, when every one of them is a field of
    :class:`~madutils.loops.image_config.ImageLoopConfig` (the image loops' curation steps
    have the same names; their verifier and reward are the feature network's, see
    :class:`~madutils.loops.images.ImageLoop`).

    Raises
    ------
    ValueError
        For a mitigation with a setting the image loops do not have, or sizes given as shares.
    """
    mitigation = _by_name(name)
    fields = {f.name for f in dataclasses.fields(ImageLoopConfig)}
    missing = sorted((set(mitigation.settings) | set(mitigation.shares)) - fields)
    if missing:
        raise ValueError(
            f"the mitigation {name!r} has no image-loop form (ImageLoopConfig has no "
            f"{', '.join(missing)})"
        )
    if mitigation.shares:
        raise ValueError(
            f"the mitigation {name!r} sets sizes as shares of n_ini "
            f"({', '.join(sorted(mitigation.shares))}): give the image loop's sizes directly"
        )
    return dict(mitigation.settings)


def judged_pair(name: str) -> tuple[str, str]:
    """The loops a mitigation's claim compares: ``(favoured, other)`` (the claim says the first
    ends better)."""
    mitigation = _by_name(name)
    pair = (name, mitigation.compared_with)
    return pair[::-1] if mitigation.worse else pair


def final_values(table: pd.DataFrame, metric: str) -> np.ndarray:
    """The metric at the table's last generation, one value per replicate (seed, replicate)."""
    return tail_means(table, metric, 1)


def tail_means(table: pd.DataFrame, metric: str, tail: int) -> np.ndarray:
    """Each replicate's mean of ``metric`` over the table's last ``tail`` generations: the
    limit a loop has reached (one value per replicate, ordered by seed and replicate)."""
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValueError(f"the table has no rows of metric {metric!r}")
    last = rows["generation"].max()
    if not 1 <= tail <= last:
        raise ValueError(f"tail must be between 1 and the {last} generations run; got {tail}")
    kept = rows[rows["generation"] > last - tail]
    return kept.groupby(["seed", "replicate"])["value"].mean().to_numpy(dtype=float)


def comparison_table(tables: dict[tuple[str, str], pd.DataFrame], metrics: dict) -> pd.DataFrame:
    """Mitigation by model: the median of each metric at the last generation, and the cost.

    Parameters
    ----------
    tables : dict
        ``(mitigation, model label) -> results table`` of one run (or several, concatenated).
    metrics : dict
        Model label to the metrics its columns show.

    Returns
    -------
    DataFrame
        Index: mitigation; columns: ``(model label, metric label)``, plus ``(model label,
        "drawn per kept")``, the median over replicates and generations after the first of
        ``drawn_per_kept`` (1 where nothing was curated).
    """
    rows: dict = {}
    for (mitigation, model), table in tables.items():
        row = rows.setdefault(mitigation, {})
        for metric in metrics[model]:
            row[(model, METRIC_LABELS.get(metric, metric))] = float(
                np.median(final_values(table, metric))
            )
        cost = table[(table["metric"] == "drawn_per_kept") & (table["generation"] > 1)]
        row[(model, "drawn per kept")] = float(cost["value"].median()) if len(cost) else 1.0
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame.rename_axis("mitigation")
