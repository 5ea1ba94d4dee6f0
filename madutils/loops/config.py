"""Settings of one self-consuming loop run, validated in one place.

:class:`LoopConfig` holds every setting of a run as plain values, so it can be written to
``config.json``, hashed into a run directory name, and rebuilt from the command line. Settings
left as ``None`` take the family's default in :meth:`LoopConfig.resolved`; every invalid
value or combination raises ``ValueError`` naming the parameter and what is allowed, before
anything runs:

- each setting's own value, its type first (:func:`check_setting`, from the field's
  annotation and :data:`SETTING_CHECKS`);
- which real data each model and path can run on (:data:`DATA_FOR`, :data:`MIN_DIM`);
- the loop family's sizes, and the samples each metric needs (:func:`eval_samples_needed`);
- in :meth:`LoopConfig.resolved`, the memory the run needs
  (:mod:`madutils.loops.footprint`; ``MADUTILS_SKIP_MEMORY_CHECK=1`` skips it).

Settings a run does not use (:data:`USED_WHEN`: ``memory`` without the ``"memory"``
source, the flow's settings for another model, ...) are accepted and reset to their default
by :meth:`LoopConfig.resolved`, so they never change a run's identity.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from madutils._validation import (
    check_choice,
    check_fraction,
    check_lam,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
    check_setting_value,
    check_share,
)
from madutils.curation import REWARDS
from madutils.loops.families import (
    CURATION_CHECKS,
    FAMILIES,
    SHARED_USED_WHEN,
    SYNTHETIC_SOURCES,
    CurationSettings,
    check_family_sizes,
    family_sizes,
    reset_unused,
    setting,
    shared_setting,
)
from madutils.loops.footprint import check_footprint, loop_footprint
from madutils.metrics import DEFAULT_METRICS, MANIFOLD_METRICS, get_metric, metric_names

__all__ = [
    "CORRECTABLE",
    "CURATIONS",
    "DATA_FOR",
    "FAMILIES",
    "MODELS",
    "PATHS",
    "SETTING_CHECKS",
    "SETTING_TYPES",
    "SYNTHETIC_SOURCES",
    "USED_WHEN",
    "LoopConfig",
    "check_eval_samples",
    "check_setting",
    "eval_samples_needed",
]

MODELS = ("gaussian", "mixture", "flow")
PATHS = ("samples", "statistics")
DEVICES = ("cpu", "cuda", "auto")
DEFAULT_DATA = {"gaussian": "gaussian", "mixture": "grid_mixture", "flow": "rosenbrock"}
DATA_CHOICES = ("gaussian", "grid_mixture", "rosenbrock")
#: The real distributions each model can run on, for each path. With ``"samples"`` every
#: model learns from drawn points, of any distribution; the Gaussian's ``"statistics"`` path
#: draws the exact sufficient statistics of Gaussian samples (the mean and Cholesky factor of
#: P_r), so it needs data ``"gaussian"``. A (model, path) pair not listed does not exist.
DATA_FOR = {
    ("gaussian", "samples"): DATA_CHOICES,
    ("gaussian", "statistics"): ("gaussian",),
    ("mixture", "samples"): DATA_CHOICES,
    ("flow", "samples"): DATA_CHOICES,
}
#: The smallest dimension each model takes: a coupling layer of the flow conditions one part
#: of the coordinates on the other, so it needs two.
MIN_DIM = {"gaussian": 1, "mixture": 1, "flow": 2}
#: When a setting matters (see :func:`madutils.loops.families.unused_settings`): the setting
#: it depends on and the values for which the run reads it. Every other setting is read by
#: every run. The model settings are the constructor arguments of that model
#: (:func:`madutils.models.base.settings_for`); ``k`` is read by the k-NN manifold metrics only.
USED_WHEN = {
    **SHARED_USED_WHEN,
    "path": ("model", ("gaussian",)),
    "n_components": ("model", ("mixture",)),
    "n_layers": ("model", ("flow",)),
    "hidden": ("model", ("flow",)),
    "epochs": ("model", ("flow",)),
    "batch_size": ("model", ("flow",)),
    "k": ("metrics", MANIFOLD_METRICS),
    "n_fixed": ("family", ("fresh_data",)),
    "accumulate_real": ("family", ("fresh_data",)),
    "verifier_accuracy": ("curation", ("verify",)),
    "support_mass": ("curation", ("verify",)),
    "reward": ("curation", ("best_of",)),
}
#: The curation steps of ``LoopConfig.curation`` (:mod:`madutils.curation`).
CURATIONS = ("none", "verify", "best_of", "correct")
#: The models whose idealised correction toward P_r exists (``curation="correct"``).
CORRECTABLE = (("gaussian", "gaussian"), ("mixture", "grid_mixture"))


def eval_samples_needed(metric: str, k: int) -> int:
    """The fewest samples per set (``n_eval``) ``metric`` can be computed from.

    Parameters
    ----------
    metric : str
        A name of :data:`madutils.metrics.REGISTRY`.
    k : int
        Nearest neighbours of the k-NN manifold metrics.

    Returns
    -------
    int
        ``k + 1`` for the k-NN manifold metrics, else the registry's ``min_samples`` (2 for
        a covariance).
    """
    if metric in MANIFOLD_METRICS:
        return k + 1
    return get_metric(metric).min_samples


def check_eval_samples(metrics: Iterable[str], n_eval: int, k: int, default: str = "") -> None:
    """Refuse ``n_eval`` samples per set when one of ``metrics`` needs more.

    Parameters
    ----------
    metrics : iterable of str
        The metrics a run records.
    n_eval : int
        Samples per set of the sample-based metrics.
    k : int
        Nearest neighbours of the k-NN manifold metrics.
    default : str
        Where ``n_eval`` came from when it was not given, e.g. ``"n_ini=5"``: named in the
        message.

    Raises
    ------
    ValueError
        Naming ``n_eval`` (and ``default``), the metric and what it needs.
    """
    note = f" (n_eval was not given: it defaults to {default})" if default else ""
    for metric in metrics:
        needed = eval_samples_needed(metric, k)
        if n_eval >= needed:
            continue
        if metric in MANIFOLD_METRICS:
            raise ValueError(
                f"k must be smaller than n_eval (metric {metric!r} builds k-NN manifolds of "
                f"n_eval samples); got k={k}, n_eval={n_eval}{note}"
            )
        raise ValueError(
            f"n_eval must be at least {needed} for metric {metric!r} (computed from the n_eval "
            f"samples); got n_eval={n_eval}{note}"
        )


def _choice(allowed: tuple[str, ...]) -> Callable:
    return lambda value, name: check_choice(value, name, allowed)


def _check_metric_names(value, name: str):
    if not value:
        raise ValueError(f"{name} must name at least one metric (or be None for the defaults)")
    for metric in value:
        check_choice(metric, name, metric_names())
    return value


#: The check of each setting's own value, called with the value and the setting's name
#: (after its type check; not for ``None``). Checks of several settings together are
#: :class:`LoopConfig`'s.
SETTING_CHECKS: dict[str, Callable] = {
    "family": _choice(FAMILIES),
    "model": _choice(MODELS),
    "data": _choice(DATA_CHOICES),
    "dim": check_positive_int,
    "n_ini": check_positive_int,
    "n_real": check_nonnegative_int,
    "n_synthetic": check_nonnegative_int,
    "n_total": check_positive_int,
    "real_fraction": check_fraction,
    "generations": check_positive_int,
    "lam": check_lam,
    "synthetic_source": _choice(SYNTHETIC_SOURCES),
    "memory": check_positive_int,
    "seeds": check_positive_int,
    "seed": check_nonnegative_int,
    "path": _choice(PATHS),
    "n_components": check_positive_int,
    "n_layers": check_positive_int,
    "hidden": check_positive_int,
    "epochs": check_positive_int,
    "batch_size": check_positive_int,
    "n_fixed": check_nonnegative_int,
    "pool_budget": check_positive_int,
    "curation": _choice(CURATIONS),
    "verifier_accuracy": check_probability,
    "support_mass": check_share,
    "reward": _choice(REWARDS),
    **CURATION_CHECKS,
    "n_eval": check_positive_int,
    "k": check_positive_int,
    "metrics": _check_metric_names,
    "device": _choice(DEVICES),
    "threads": check_positive_int,
}
#: How messages name a setting whose symbol in the paper differs from its name.
_LABELS = {"memory": "memory (K)", "real_fraction": "real_fraction (p)"}


@dataclass(frozen=True)
class LoopConfig(CurationSettings):
    """Every setting of one run of a self-consuming loop.

    Generation 1 trains on ``n_ini`` real samples. Every later generation trains a new model
    from scratch on ``n_real`` real and ``n_synthetic`` synthetic samples:

    - ``fully_synthetic``: no real data (``n_real = 0``); ``n_synthetic`` defaults to ``n_ini``.
    - ``synthetic_augmentation``: the *same* ``n_ini`` real samples as generation 1 every
      generation (so ``n_real`` must equal ``n_ini``); ``n_synthetic`` defaults to ``n_ini``.
    - ``fresh_data``: ``n_real`` *new* real samples each generation, given directly or as a
      pool of ``n_total`` samples with real share ``real_fraction`` (``n_real = round(p * n)``).

    Every model runs on every real distribution (``data``) with ``path="samples"``; the
    Gaussian's ``path="statistics"`` needs Gaussian data (:data:`DATA_FOR`).

    The mitigations of :mod:`madutils.curation` act between "the previous model samples" and
    "the next model trains" (``path="samples"`` only): ``curation`` verifies, curates by
    preference or corrects the synthetic samples; ``detector_fpr`` and ``detector_fnr`` filter
    the new real and synthetic samples of every generation; ``n_fixed`` and
    ``accumulate_real`` change the real part of a fresh data loop and ``pool_budget`` caps
    every training set. A run with a curation step or a detector also records
    ``drawn_per_kept``.
    """

    family: str = shared_setting("family")
    model: str = setting(
        "gaussian",
        "generative model: 'gaussian' (fitted mean and covariance), "
        "'mixture' (EM Gaussian mixture) or 'flow' (RealNVP-style coupling "
        "flow)",
    )
    data: str | None = setting(
        None,
        "real distribution; None: 'gaussian' for model gaussian, "
        "'grid_mixture' for mixture, 'rosenbrock' for flow",
    )
    dim: int = setting(2, "dimension of Gaussian data (the 2-D distributions need 2)")
    n_ini: int = setting(100, "real samples of generation 1")
    n_real: int | None = setting(
        None, "real samples per generation t >= 2; None: the family's default"
    )
    n_synthetic: int | None = setting(
        None, "synthetic samples per generation t >= 2; None: the family's default"
    )
    n_total: int | None = setting(
        None, "fresh_data alternative to n_real and n_synthetic: training-set size per generation"
    )
    real_fraction: float | None = setting(
        None, "fresh_data, with n_total: the real share p of the training set, in (0, 1]"
    )
    generations: int = shared_setting("generations", 10)
    lam: float = setting(
        1.0, "sampling bias lambda in (0, 1]: 1.0 = unbiased, < 1.0 = less diverse, higher quality"
    )
    synthetic_source: str = shared_setting("synthetic_source")
    memory: int = shared_setting("memory")
    seeds: int = setting(1, "independent replicates, simulated together as one batch")
    seed: int = shared_setting("seed")
    path: str = setting(
        "samples",
        "gaussian: 'samples' draws points, 'statistics' draws their exact "
        "sufficient statistics (fast; needs data 'gaussian')",
    )
    n_components: int = setting(25, "mixture: number of EM components")
    n_layers: int = setting(8, "flow: coupling layers (paper: 8)")
    hidden: int = setting(64, "flow: hidden width of each coupling network (paper: 64)")
    epochs: int = setting(20, "flow: training epochs per generation (paper: 20)")
    batch_size: int = setting(256, "flow: minibatch size (paper: 256)")
    n_fixed: int = setting(
        0,
        "fresh_data: real samples of generation 1 kept in every later training set besides the "
        "fresh ones (a fixed plus fresh real set; the MAD paper's section 6)",
    )
    accumulate_real: bool = setting(
        False,
        "fresh_data: every generation trains on all the real samples seen so far (Gerstgrasser "
        "et al. 2024); with synthetic_source 'accumulate' it accumulates everything",
    )
    pool_budget: int | None = setting(
        None,
        "subsample every training set larger than this to this size, uniformly (Kazdan et al. "
        "2024: accumulation under a fixed budget); None: no limit",
    )
    curation: str = setting(
        "none",
        "curation of the synthetic samples before the next model trains on them: 'none', "
        "'verify' (a verifier of known accuracy keeps samples where the real density is high; "
        "Feng et al. 2024), 'best_of' (one of K candidates chosen by a reward; Ferbach et al. "
        "2024) or 'correct' (each sample moved toward P_r by strength gamma; Gillman et al. "
        "2024); see madutils.curation",
    )
    verifier_accuracy: float = setting(
        1.0, "curation 'verify': probability that the verifier decides right, in [0, 1]"
    )
    support_mass: float = setting(
        0.99, "curation 'verify': real probability mass of the region the verifier accepts"
    )
    candidates: int = shared_setting("candidates")
    preference: str = shared_setting("preference")
    reward: str = setting(
        "distance",
        "curation 'best_of': 'distance' (minus the squared distance to the point (1, 0, ...), "
        "its maximiser) or 'linear' (the first coordinate, no maximiser)",
    )
    reward_scale: float = shared_setting("reward_scale")
    correction: float = shared_setting("correction")
    detector_fpr: float | None = shared_setting("detector_fpr")
    detector_fnr: float | None = shared_setting("detector_fnr")
    n_eval: int | None = setting(None, "samples per seed for sample-based metrics; None: n_ini")
    k: int = shared_setting("k")
    metrics: tuple[str, ...] | None = setting(
        None, "metrics to record; None: the model's defaults (see madutils.metrics)"
    )
    device: str = shared_setting("device", "cpu")
    threads: int = shared_setting("threads")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            checked = check_setting(field.name, value)
            if checked is not value:  # a list given for a tuple
                object.__setattr__(self, field.name, checked)
        data = self.data or DEFAULT_DATA[self.model]
        self._check_data(data)
        self._check_sizes()
        self._check_curation(data)
        self._check_metrics(data)
        default = "" if self.n_eval is not None else f"n_ini={self.n_ini}"
        check_eval_samples(self._recorded_metrics(data), self.n_eval or self.n_ini, self.k, default)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but no CUDA device is available")

    def _check_data(self, data: str):
        allowed = DATA_FOR.get((self.model, self.path))
        if allowed is None:
            models = " or ".join(repr(m) for m, path in DATA_FOR if path == self.path)
            raise ValueError(f"path={self.path!r} needs model={models}; got model={self.model!r}")
        if data not in allowed:
            options = ", ".join(repr(a) for a in allowed)
            raise ValueError(
                f"data must be one of {options} for model={self.model!r} with "
                f"path={self.path!r}; got data={data!r}"
            )
        if data != "gaussian" and self.dim != 2:
            raise ValueError(
                f"dim must be 2 for data={data!r} (a 2-D distribution); got {self.dim}"
            )
        if self.dim < MIN_DIM[self.model]:
            raise ValueError(
                f"dim must be at least {MIN_DIM[self.model]} for model={self.model!r} (a "
                f"coupling layer conditions one part of the coordinates on the other); "
                f"got {self.dim}"
            )

    def _check_sizes(self):
        pooled = self.n_total is not None or self.real_fraction is not None
        if pooled:
            if self.family != "fresh_data":
                raise ValueError(
                    "n_total and real_fraction describe a fresh_data pool; "
                    f"got family={self.family!r}"
                )
            if self.n_total is None or self.real_fraction is None:
                raise ValueError("n_total and real_fraction must be given together")
            if round(self.real_fraction * self.n_total) < 1:
                raise ValueError("real_fraction * n_total must round to at least 1 real sample")
            derived = self._sizes()
            if (self.n_real, self.n_synthetic) not in ((None, None), derived):
                raise ValueError("give either n_real and n_synthetic, or n_total and real_fraction")
        n_real, n_synthetic = self._sizes()
        check_family_sizes(self.family, self.n_ini, n_real, n_synthetic)
        min_size = self.n_components if self.model == "mixture" else 2
        if self.n_ini < min_size or n_real + n_synthetic < min_size:
            raise ValueError(
                f"every training set needs at least {min_size} samples for model={self.model!r}; "
                f"got n_ini={self.n_ini}, n_real + n_synthetic={n_real + n_synthetic}"
            )

    def _check_curation(self, data: str):
        acting = [
            name
            for name, on in (
                (f"curation={self.curation!r}", self.curation != "none"),
                ("pool_budget", self.pool_budget is not None),
                ("a detector", self.detector_fpr is not None),
            )
            if on
        ]
        if acting and self.path == "statistics":
            raise ValueError(
                f"{acting[0]} acts on drawn samples and needs path='samples'; got path='statistics'"
            )
        if self.curation != "none" and self.synthetic_source == "memory":
            raise ValueError(
                f"curation={self.curation!r} takes synthetic_source 'last' or 'accumulate'; got "
                "synthetic_source='memory'"
            )
        if self.curation == "verify" and data not in ("gaussian", "grid_mixture"):
            raise ValueError(
                "curation='verify' needs data 'gaussian' or 'grid_mixture' (its verifier "
                f"knows where their density is high); got data={data!r}"
            )
        if self.curation == "correct" and (self.model, data) not in CORRECTABLE:
            pairs = ", ".join(f"model={m!r} with data={d!r}" for m, d in CORRECTABLE)
            raise ValueError(
                f"curation='correct' has an exact correction for {pairs}; got "
                f"model={self.model!r} with data={data!r}"
            )
        if self.family == "fresh_data" and self.n_fixed > self.n_ini:
            raise ValueError(
                f"n_fixed must be at most n_ini={self.n_ini} (the kept real samples are "
                f"generation 1's); got {self.n_fixed}"
            )
        min_size = self.n_components if self.model == "mixture" else 2
        if self.pool_budget is not None and self.pool_budget < min_size:
            raise ValueError(
                f"pool_budget must be at least {min_size} for model={self.model!r} (a training "
                f"set); got {self.pool_budget}"
            )
        self._check_detector(*self._sizes(), min_size)

    def _sizes(self) -> tuple[int, int]:
        if self.n_total is not None:
            n_real = round(self.real_fraction * self.n_total)
            return n_real, self.n_total - n_real
        return family_sizes(self.family, self.n_ini, self.n_real, self.n_synthetic)

    def _check_metrics(self, data: str):
        if self.metrics is None:
            return
        allowed = metric_names(self.model, data)  # the registry's metrics for this model and data
        for name in self.metrics:
            check_choice(name, "metrics", allowed)

    def _recorded_metrics(self, data: str) -> tuple[str, ...]:
        """The metrics the run records: those given, or the model's defaults defined for
        ``data``."""
        metrics = self.metrics or DEFAULT_METRICS[self.model] + (
            ("drawn_per_kept",) if self.curates else ()
        )
        return tuple(m for m in metrics if m in metric_names(self.model, data))

    def resolved(self) -> LoopConfig:
        """The settings a run uses, checked against the memory there is.

        Every ``None`` is replaced by its effective value, ``device="auto"`` by the device,
        and every setting the run does not use (:data:`USED_WHEN`) by its default, so two
        configurations that differ only in unused settings resolve equal (and share a run
        directory).

        Raises
        ------
        ValueError
            When the run would need more memory than the device has available
            (:func:`madutils.loops.footprint.check_footprint`; the environment variable
            ``MADUTILS_SKIP_MEMORY_CHECK=1`` skips this check).
        """
        n_real, n_synthetic = self._sizes()
        data = self.data or DEFAULT_DATA[self.model]
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        resolved = dataclasses.replace(
            self,
            data=data,
            n_real=n_real,
            n_synthetic=n_synthetic,
            n_eval=self.n_eval or self.n_ini,
            metrics=self._recorded_metrics(data),
            device=device,
        )
        resolved = reset_unused(resolved, USED_WHEN)
        check_footprint(loop_footprint(resolved), resolved.device)
        return resolved

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["metrics"] is not None:
            out["metrics"] = list(out["metrics"])
        return out

    @classmethod
    def from_dict(cls, values: dict) -> LoopConfig:
        values = dict(values)
        if values.get("metrics") is not None:
            values["metrics"] = tuple(values["metrics"])
        return cls(**values)


#: The type of every setting, from the annotations of :class:`LoopConfig`.
SETTING_TYPES = typing.get_type_hints(LoopConfig)


def check_setting(name: str, value, label: str | None = None):
    """Check one setting's own value, as :class:`LoopConfig` does: its type, then its range.

    Parameters
    ----------
    name : str
        A field of :class:`LoopConfig`.
    value
        The value to check.
    label : str, optional
        How the message names the setting; default: its name (``memory (K)`` for memory).

    Returns
    -------
    The value (a list given for a tuple setting comes back as a tuple).

    Raises
    ------
    ValueError
        Naming the setting, what is allowed and what was given.
    """
    label = label or _LABELS.get(name, name)
    return check_setting_value(value, label, SETTING_TYPES[name], SETTING_CHECKS.get(name))
