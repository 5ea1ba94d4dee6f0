"""Settings of one self-consuming loop run, validated in one place.

:class:`LoopConfig` holds every setting of a run as plain values, so it can be written to
``config.json``, hashed into a run directory name, and rebuilt from the command line. Settings
left as ``None`` take the family's default in :meth:`LoopConfig.resolved`; every invalid
combination raises ``ValueError`` naming the parameter and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from madutils._validation import (
    check_choice,
    check_fraction,
    check_lam,
    check_nonnegative_int,
    check_positive_int,
)
from madutils.loops.families import (
    FAMILIES,
    SYNTHETIC_SOURCES,
    check_family_sizes,
    family_sizes,
    setting,
    shared_setting,
)
from madutils.metrics import DEFAULT_METRICS, MANIFOLD_METRICS, metric_names

__all__ = ["FAMILIES", "MODELS", "PATHS", "SYNTHETIC_SOURCES", "LoopConfig"]

MODELS = ("gaussian", "mixture", "flow")
PATHS = ("samples", "statistics")
DEVICES = ("cpu", "cuda", "auto")
DEFAULT_DATA = {"gaussian": "gaussian", "mixture": "grid_mixture", "flow": "rosenbrock"}
DATA_CHOICES = ("gaussian", "grid_mixture", "rosenbrock")


@dataclass(frozen=True)
class LoopConfig:
    """Every setting of one run of a self-consuming loop.

    Generation 1 trains on ``n_ini`` real samples. Every later generation trains a new model
    from scratch on ``n_real`` real and ``n_synthetic`` synthetic samples:

    - ``fully_synthetic``: no real data (``n_real = 0``); ``n_synthetic`` defaults to ``n_ini``.
    - ``synthetic_augmentation``: the *same* ``n_ini`` real samples as generation 1 every
      generation (so ``n_real`` must equal ``n_ini``); ``n_synthetic`` defaults to ``n_ini``.
    - ``fresh_data``: ``n_real`` *new* real samples each generation, given directly or as a
      pool of ``n_total`` samples with real share ``real_fraction`` (``n_real = round(p * n)``).
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
        "sufficient statistics (fast)",
    )
    n_components: int = setting(25, "mixture: number of EM components")
    n_layers: int = setting(8, "flow: coupling layers (paper: 8)")
    hidden: int = setting(64, "flow: hidden width of each coupling network (paper: 64)")
    epochs: int = setting(20, "flow: training epochs per generation (paper: 20)")
    batch_size: int = setting(256, "flow: minibatch size (paper: 256)")
    n_eval: int | None = setting(None, "samples per seed for sample-based metrics; None: n_ini")
    k: int = shared_setting("k")
    metrics: tuple[str, ...] | None = setting(
        None, "metrics to record; None: the model's defaults (see madutils.metrics)"
    )
    device: str = shared_setting("device", "cpu")

    def __post_init__(self):
        check_choice(self.family, "family", FAMILIES)
        check_choice(self.model, "model", MODELS)
        if self.data is not None:
            check_choice(self.data, "data", DATA_CHOICES)
        check_choice(self.synthetic_source, "synthetic_source", SYNTHETIC_SOURCES)
        check_choice(self.path, "path", PATHS)
        check_choice(self.device, "device", DEVICES)
        check_positive_int(self.dim, "dim")
        check_positive_int(self.n_ini, "n_ini")
        check_positive_int(self.generations, "generations")
        check_lam(self.lam, "lam")
        check_positive_int(self.memory, "memory (K)")
        check_positive_int(self.seeds, "seeds")
        check_nonnegative_int(self.seed, "seed")
        check_positive_int(self.n_components, "n_components")
        for name in ("n_layers", "hidden", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.k, "k")
        if self.n_eval is not None:
            check_positive_int(self.n_eval, "n_eval")
        if self.n_real is not None:
            check_nonnegative_int(self.n_real, "n_real")
        if self.n_synthetic is not None:
            check_nonnegative_int(self.n_synthetic, "n_synthetic")
        if self.path == "statistics" and self.model != "gaussian":
            raise ValueError(f"path='statistics' needs model='gaussian'; got model={self.model!r}")
        data = self.data or DEFAULT_DATA[self.model]
        if data != "gaussian" and self.dim != 2:
            raise ValueError(
                f"dim must be 2 for data={data!r} (a 2-D distribution); got {self.dim}"
            )
        self._check_sizes()
        self._check_metrics(data)
        metrics = self.metrics or DEFAULT_METRICS[self.model]
        n_eval = self.n_eval or self.n_ini
        if set(metrics) & set(MANIFOLD_METRICS) and self.k >= n_eval:
            raise ValueError(
                f"k must be smaller than n_eval (the samples per k-NN manifold); got k={self.k}, "
                f"n_eval={n_eval}"
            )
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but no CUDA device is available")

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
            check_positive_int(self.n_total, "n_total")
            check_fraction(self.real_fraction, "real_fraction (p)")
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

    def _sizes(self) -> tuple[int, int]:
        if self.n_total is not None:
            n_real = round(self.real_fraction * self.n_total)
            return n_real, self.n_total - n_real
        return family_sizes(self.family, self.n_ini, self.n_real, self.n_synthetic)

    def _check_metrics(self, data: str):
        if self.metrics is None:
            return
        allowed = metric_names(self.model, data)  # the registry's metrics for this model and data
        if not self.metrics:
            raise ValueError("metrics must name at least one metric (or be None for the defaults)")
        for name in self.metrics:
            check_choice(name, "metrics", allowed)

    def resolved(self) -> LoopConfig:
        """The same settings with every ``None`` replaced by its effective value."""
        n_real, n_synthetic = self._sizes()
        data = self.data or DEFAULT_DATA[self.model]
        metrics = self.metrics or DEFAULT_METRICS[self.model]
        metrics = [m for m in metrics if m in metric_names(self.model, data)]
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return dataclasses.replace(
            self,
            data=data,
            n_real=n_real,
            n_synthetic=n_synthetic,
            n_eval=self.n_eval or self.n_ini,
            metrics=tuple(metrics),
            device=device,
        )

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
