"""The loop families and the synthetic sources: what each generation trains on, once for all.

Generation 1 trains a model on ``n_ini`` real samples. Every generation ``t >= 2`` trains a new
model from scratch on a real part and a synthetic part:

=========================  ================================  ==============================
family                     real part                         synthetic part
=========================  ================================  ==============================
``fully_synthetic``        none                              ``n_synthetic`` samples
``synthetic_augmentation`` generation 1's real set (fixed)   ``n_synthetic`` samples
``fresh_data``             ``n_real`` new real samples       ``n_synthetic`` samples
=========================  ================================  ==============================

The synthetic samples, drawn with sampling bias ``lam``, come from (``synthetic_source``)

- ``"last"``: the previous model ``G^{t-1}`` (the paper's default);
- ``"accumulate"``: a pool holding the ``n_synthetic`` samples each earlier model
  ``G^1, ..., G^{t-1}`` drew, so the pool grows by ``n_synthetic`` per generation (the
  paper's E4);
- ``"memory"``: ``n_synthetic`` draws, each from a model picked uniformly among the ``K``
  most recent ones (the paper's appendix, E8).

Both kinds of loop (:mod:`madutils.loops.batched` and :mod:`madutils.loops.images`) take
their default sizes from :func:`family_sizes`, check them with :func:`check_family_sizes`, and
build every training set with :class:`TrainingSetRecipe`, so a family means the same for a
Gaussian and for a DDPM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from madutils._validation import (
    check_choice,
    check_positive_int,
    check_positive_number,
    check_probability,
)
from madutils.curation import BEST_OF_RULES, kept_count

__all__ = [
    "CURATION_CHECKS",
    "CurationSettings",
    "FAMILIES",
    "SHARED_SETTINGS",
    "SHARED_USED_WHEN",
    "SYNTHETIC_SOURCES",
    "TrainingSetRecipe",
    "check_family_sizes",
    "family_sizes",
    "reset_unused",
    "setting",
    "shared_setting",
    "unused_settings",
]

FAMILIES = ("fully_synthetic", "synthetic_augmentation", "fresh_data")
SYNTHETIC_SOURCES = ("last", "accumulate", "memory")

#: The settings every loop has, with their default (``...``: each loop kind sets its own) and
#: the help text ``madutils loop --help`` shows, written once for both settings classes.
SHARED_SETTINGS = {
    "family": (
        "fully_synthetic",
        "loop family: which real and synthetic data each generation trains on",
    ),
    "generations": (..., "generations to run, including generation 1"),
    "synthetic_source": (
        "last",
        "where synthetic data come from: the 'last' model, an 'accumulate'd pool of every "
        "earlier model's data, or one of the 'memory' K most recent models",
    ),
    "memory": (
        1,
        "K: synthetic data drawn uniformly from the K most recent models "
        "(synthetic_source 'memory')",
    ),
    "k": (5, "nearest neighbours for precision, recall, density, coverage (paper: 5)"),
    "seed": (0, "the run's random seed"),
    "device": (..., "where to compute: 'cpu', 'cuda' or 'auto' (CUDA when available)"),
    "threads": (
        1,
        "torch threads of the run on the CPU; the numbers depend on it (1 gives the same "
        "numbers on every machine; a sweep uses more cores through more workers)",
    ),
    # the mitigations of madutils.curation that both kinds of loop offer
    "candidates": (4, "curation 'best_of': candidates K drawn per sample kept"),
    "preference": (
        "bradley_terry",
        "curation 'best_of': 'bradley_terry' (candidate i kept with probability "
        "exp(r_i) / sum exp(r_j)) or 'argmax' (the highest reward)",
    ),
    "reward_scale": (1.0, "curation 'best_of': the reward's scale (> 0)"),
    "correction": (
        0.5,
        "curation 'correct': strength gamma in [0, 1] of the correction toward the real data "
        "(0: none, 1: all the way; see madutils.curation)",
    ),
    "detector_fpr": (
        None,
        "detect and filter: share of new real samples a detector wrongly flags as synthetic and "
        "drops, in [0, 1]; None (with detector_fnr None): no detector",
    ),
    "detector_fnr": (
        None,
        "detect and filter: share of synthetic samples the detector misses, in [0, 1]",
    ),
}

#: The checks of the shared curation settings' own values (both settings classes add them to
#: their ``SETTING_CHECKS``).
CURATION_CHECKS = {
    "candidates": check_positive_int,
    "preference": lambda value, name: check_choice(value, name, BEST_OF_RULES),
    "reward_scale": check_positive_number,
    "correction": check_probability,
    "detector_fpr": check_probability,
    "detector_fnr": check_probability,
}


#: When a setting every loop has matters (the form of ``used_when`` in :func:`unused_settings`):
#: the number K of recent models is only read by the ``"memory"`` synthetic source, the
#: curation settings only by their curation step.
SHARED_USED_WHEN = {
    "memory": ("synthetic_source", ("memory",)),
    "candidates": ("curation", ("best_of",)),
    "preference": ("curation", ("best_of",)),
    "reward_scale": ("curation", ("best_of",)),
    "correction": ("curation", ("correct",)),
}


class CurationSettings:
    """What both settings classes know about their mitigations (a mixin of
    :class:`~madutils.loops.config.LoopConfig` and
    :class:`~madutils.loops.image_config.ImageLoopConfig`, which have the fields ``curation``,
    ``family``, ``n_ini``, ``synthetic_source``, ``detector_fpr`` and ``detector_fnr``)."""

    @property
    def curates(self) -> bool:
        """Whether the run changes what the next model trains on beyond the loop family: a
        curation step or a detector (then it records ``drawn_per_kept``)."""
        return self.curation != "none" or self.detector_fpr is not None

    def detected_sizes(self, n_real: int, n_synthetic: int) -> tuple[int, int]:
        """The new real and synthetic samples of a generation left once the detector has
        filtered them (:func:`madutils.curation.detect_and_filter`); the sizes themselves
        without one."""
        if self.detector_fpr is None:
            return n_real, n_synthetic
        return (
            kept_count(n_real, 1.0 - self.detector_fpr),
            kept_count(n_synthetic, self.detector_fnr),
        )

    def _check_detector(self, n_real: int, n_synthetic: int, min_size: int) -> None:
        """The detector's rules, the same in every loop: its two error rates come together; it
        screens each generation's new samples, which a pool of every earlier generation's
        samples (``synthetic_source="accumulate"``) does not have; and it leaves a training
        set of at least ``min_size`` samples of the family's ``n_real`` and ``n_synthetic``.

        Raises
        ------
        ValueError
            Naming the settings.
        """
        if (self.detector_fpr is None) != (self.detector_fnr is None):
            raise ValueError(
                "detector_fpr and detector_fnr must be given together (a detector's two error "
                f"rates) or both be None; got detector_fpr={self.detector_fpr!r}, "
                f"detector_fnr={self.detector_fnr!r}"
            )
        if self.detector_fpr is None:
            return
        if self.synthetic_source == "accumulate":
            raise ValueError(
                "a detector (detector_fpr, detector_fnr) screens each generation's new samples "
                "and takes synthetic_source 'last' or 'memory'; got synthetic_source='accumulate'"
            )
        n_real, n_synthetic = self.detected_sizes(n_real, n_synthetic)
        if self.family == "synthetic_augmentation":
            n_real = self.n_ini  # generation 1's real set is not screened again
        if n_real + n_synthetic < min_size:
            raise ValueError(
                f"the detector leaves {n_real} real and {n_synthetic} synthetic samples per "
                f"generation, fewer than the {min_size} a training set of model="
                f"{self.model!r} needs: lower detector_fpr or raise detector_fnr"
            )


def unused_settings(config, used_when: dict) -> list[str]:
    """The settings of ``config`` its run never reads, by the table ``used_when``.

    Parameters
    ----------
    config : dataclass instance
        Resolved settings (:meth:`~madutils.loops.config.LoopConfig.resolved`).
    used_when : dict
        Setting name to ``(other, values)``: the setting is used when the setting ``other``
        is one of ``values`` (or, for a tuple-valued ``other`` such as ``metrics``, holds one
        of them). A setting not in the table is used by every run.

    Returns
    -------
    list of str
        In the order of ``used_when``.
    """
    unused = []
    for name, (other, values) in used_when.items():
        value = getattr(config, other)
        used = bool(set(value) & set(values)) if isinstance(value, tuple) else value in values
        if not used:
            unused.append(name)
    return unused


def reset_unused(config, used_when: dict):
    """``config`` with every setting its run does not use (:func:`unused_settings`) reset to
    the field's default, so that settings a run ignores never change its identity (the hash
    of its run directory)."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    changes = {
        name: defaults[name]
        for name in unused_settings(config, used_when)
        if getattr(config, name) != defaults[name]
    }
    return dataclasses.replace(config, **changes) if changes else config


def setting(default, help: str):
    """A field of a settings dataclass: its default and its help text (``--help``)."""
    return dataclasses.field(default=default, metadata={"help": help})


def shared_setting(name: str, default=...):
    """The field of a setting every loop has (:data:`SHARED_SETTINGS`); ``default`` only
    where each loop kind sets its own."""
    shared_default, help = SHARED_SETTINGS[name]
    if (default is ...) == (shared_default is ...):
        raise TypeError(f"{name}: give a default exactly when SHARED_SETTINGS has none")
    return setting(shared_default if default is ... else default, help)


def family_sizes(
    family: str, n_ini: int, n_real: int | None, n_synthetic: int | None
) -> tuple[int, int]:
    """The real and synthetic sample counts of every generation ``t >= 2``.

    ``None`` takes the family's default: ``n_synthetic = n_ini`` in the fully synthetic and
    synthetic augmentation loops, ``n_real = 0`` in the fully synthetic loop and ``n_ini`` in
    the synthetic augmentation loop (its real set is generation 1's). A fresh data loop has
    no default: its two sizes are the experiment.

    Raises
    ------
    ValueError
        For a fresh data loop without ``n_real`` or ``n_synthetic``.
    """
    if family == "fresh_data":
        if n_real is None or n_synthetic is None:
            raise ValueError(
                "a fresh_data loop needs n_real and n_synthetic (the new real and the "
                "synthetic samples of every generation t >= 2)"
            )
        return n_real, n_synthetic
    default_real = 0 if family == "fully_synthetic" else n_ini
    return (
        default_real if n_real is None else n_real,
        n_ini if n_synthetic is None else n_synthetic,
    )


def check_family_sizes(family: str, n_ini: int, n_real: int, n_synthetic: int) -> None:
    """The size rules of the loop families.

    Fully synthetic: no real data, at least one synthetic sample; synthetic augmentation:
    generation 1's real set again (``n_real == n_ini``); fresh data: at least one new real
    sample per generation.
    """
    if family == "fully_synthetic":
        if n_real != 0:
            raise ValueError(f"n_real must be 0 in a fully_synthetic loop; got {n_real}")
        if n_synthetic < 1:
            raise ValueError(
                "n_synthetic must be >= 1 in a fully_synthetic loop (its only training data)"
            )
    elif family == "synthetic_augmentation":
        if n_real != n_ini:
            raise ValueError(
                "n_real must equal n_ini in a synthetic_augmentation loop (its real set is "
                f"generation 1's, fixed); got n_real={n_real}, n_ini={n_ini}"
            )
    elif n_real < 1:
        raise ValueError(f"n_real must be >= 1 in a fresh_data loop; got {n_real}")


def real_samples_needed(family: str, n_ini: int, n_real: int, generations: int) -> int:
    """Real training samples a run draws in all (fresh data never reuses one)."""
    if family == "fresh_data":
        return n_ini + n_real * (generations - 1)
    return n_ini


class TrainingSetRecipe:
    """Builds the training set of every generation from a loop's own pieces.

    A loop hands over how to draw ``n`` real samples, how to draw the synthetic part and how
    to join parts; this class decides, for the family, which parts a generation gets. It keeps
    generation 1's real set for the synthetic augmentation loop.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    n_ini, n_real, n_synthetic : int
        The resolved sizes (:func:`family_sizes`).
    draw_real : callable
        ``draw_real(n, rng)``: ``n`` real samples not used before (fresh data) or the first
        ``n_ini`` (generation 1).
    synthetic_part : callable
        ``synthetic_part(rng)``: the ``n_synthetic`` synthetic samples of this generation, from
        the loop's synthetic source.
    join : callable
        ``join(parts)``: one training set from a list of parts.
    n_fixed : int, default 0
        Fresh data: generation 1's first ``n_fixed`` real samples stay in every training set
        besides the fresh ones (``head(first_real, n_fixed)``).
    accumulate_real : bool, default False
        Fresh data: every training set holds all the real samples drawn so far (generation
        1's and every later generation's fresh ones that passed the detector).
    screen : callable, optional
        ``screen(fresh_real, synthetic, rng) -> (fresh_real, synthetic)``: a detector that
        drops what it flags from the new parts of a generation ``t >= 2`` (either may be
        ``None``: the family has no fresh real part, or no synthetic samples).
    budget : int, optional
        A training set larger than ``budget`` is cut to ``subsample(training_set, budget,
        rng)``, every generation.
    head, subsample : callable, optional
        How to take a part's first ``n`` samples and a uniform random subset of ``n`` samples
        of a training set (needed with ``n_fixed`` and ``budget``).
    """

    def __init__(
        self,
        family: str,
        n_ini: int,
        n_real: int,
        n_synthetic: int,
        *,
        draw_real: Callable[[int, Any], Any],
        synthetic_part: Callable[[Any], Any],
        join: Callable[[list], Any],
        n_fixed: int = 0,
        accumulate_real: bool = False,
        screen: Callable | None = None,
        budget: int | None = None,
        head: Callable | None = None,
        subsample: Callable | None = None,
    ):
        self.family = family
        self.n_ini = n_ini
        self.n_real = n_real
        self.n_synthetic = n_synthetic
        self.draw_real = draw_real
        self.synthetic_part = synthetic_part
        self.join = join
        self.n_fixed = n_fixed if family == "fresh_data" else 0
        self.accumulate_real = accumulate_real and family == "fresh_data"
        self.screen = screen
        self.budget = budget
        self.head = head
        self.subsample = subsample
        self.first_real = None
        #: The real parts every later training set holds (accumulate_real): what to save to
        #: resume.
        self.real_seen: list = []

    def __call__(self, generation: int, rng=None):
        """The training set of ``generation``; ``rng`` is passed to the drawing functions."""
        if generation == 1:
            self.first_real = self.draw_real(self.n_ini, rng)
            self.real_seen = [self.first_real] if self.accumulate_real else []
            return self._within_budget(self.first_real, rng)
        real = []
        fresh = synthetic = None
        if self.family == "synthetic_augmentation":
            real.append(self.first_real)
        elif self.family == "fresh_data":
            fresh = self.draw_real(self.n_real, rng)
        if self.n_synthetic > 0:
            synthetic = self.synthetic_part(rng)
        if self.screen is not None:
            fresh, synthetic = self.screen(fresh, synthetic, rng)
        if self.accumulate_real:
            self.real_seen = self.real_seen + [fresh]
            real = list(self.real_seen)
        elif fresh is not None:
            real = ([self.head(self.first_real, self.n_fixed)] if self.n_fixed else []) + [fresh]
        parts = real + ([] if synthetic is None else [synthetic])
        return self._within_budget(self.join(parts), rng)

    def _within_budget(self, training_set, rng):
        if self.budget is None:
            return training_set
        return self.subsample(training_set, self.budget, rng)
