"""The one registry of metrics: every fact about a metric, and how to compute it, in one entry.

Each metric a results table can hold is one frozen :class:`Metric` in :data:`REGISTRY`: its
name, its definition, the label plots show, its unit, which direction is better, what it needs,
which models and real distributions it applies to, and a ``compute`` callable. The loops never
name a metric in their code: they build a :class:`MetricContext` (the fitted model, the real
reference, the synthetic samples drawn lazily, ...) and call :func:`measure` with the configured
names. Adding a metric therefore touches only :mod:`madutils.metrics`: a function computing it
(in a submodule) and its entry here.

What ``better`` means
---------------------
``"lower"`` or ``"higher"``: smaller or larger values are better. A number: the value real data
give, better is closer to it (``tail_share`` 0.01 by construction of the 99% quantile;
``density`` 1, its expectation for real samples). ``"real"``: closer to the real distribution's
own value, which depends on P_r (``cov_trace``: tr(Sigma_r), d for N(0, I_d); ``total_variance``
and ``modal_variance``: 4.02 and 0.01 for the paper's grid). ``modes_covered`` is
``"higher"``: at most the 25 real modes can be covered.

What ``needs`` means
--------------------
``"model"``: the fitted model's parameters (and the real reference samples, for
``heldout_nll``), no synthetic draws. ``"samples"``: ``n_eval`` samples drawn from the model
with the loop's lambda, compared with ``n_eval`` held-out real samples; in the image loops
these points are the feature network's features of the images, so the k-NN metrics there
compare features. ``"features"``: only defined on feature-network features of images (the
image loops). ``"images"``: the synthetic and held-out real images themselves, and what the
feature network says they show (its class predictions), in the image loops.
``"curation"``: the loop's own count of the synthetic samples it drew for those it trained on
(:mod:`madutils.curation`).

Garbage in, an error out
------------------------
The context checks what it hands to a metric once, on first use: the real reference
(``real``), the synthetic points (``synthetic``) and the model's learned tensors
(``model.mean_``, ..., through :meth:`MetricContext.fitted`; all of them before samples are
drawn or a likelihood is computed). NaN or infinite values raise ``ValueError`` naming that
input and the first bad replicate; the metric functions then check their own arguments
(finite, and positive semi-definite covariances: :func:`madutils.linalg.check_psd`).
:func:`measure` adds the metric's name to the error as a note. A degenerate but valid model (a
collapsed covariance of zeros, a rank-deficient one) is measured like any other.

Derived views (never typed twice): :data:`METRICS` (name to definition, what ``madutils
metrics`` prints), :data:`METRIC_LABELS` (name to plot label), :data:`MANIFOLD_METRICS` (the
metrics one k-NN pass computes together). :data:`DEFAULT_METRICS` is the one list of what each
model's loop records by default, checked against the registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real

import torch

from madutils.linalg import check_finite_replicates
from madutils.metrics.coverage import factor_coverage
from madutils.metrics.frechet import (
    frechet_distance,
    frechet_distance_infinity,
    gaussian_w2_squared,
)
from madutils.metrics.gaussian import covariance_trace, mean_drift
from madutils.metrics.kernel import kernel_distance
from madutils.metrics.manifold import METRIC_NAMES, ManifoldReference
from madutils.metrics.memorisation import nearest_distance_ratio
from madutils.metrics.mixture import modal_variance, modes_covered, total_variance
from madutils.metrics.spectrum import spectral_excess
from madutils.metrics.tails import marginal_wasserstein, real_quantile, tail_share

__all__ = [
    "DEFAULT_METRICS",
    "IMAGE_METRICS",
    "MANIFOLD_METRICS",
    "METRICS",
    "METRIC_LABELS",
    "NEEDS",
    "REGISTRY",
    "Metric",
    "MetricContext",
    "get_metric",
    "measure",
    "metric_label",
    "metric_names",
]

#: What a metric can need (see the module docstring).
NEEDS = ("model", "samples", "features", "images", "curation")
_DIRECTIONS = ("lower", "higher", "real")
_LOW_DIM = ("gaussian", "mixture", "flow")  # the batched loops' models
_IMAGE = ("ddpm", "wgan", "stylegan2")  # the image loops' models


class MetricContext:
    """What a metric's ``compute`` may read for one generation; everything costly is lazy.

    ``real``, ``synthetic`` and ``manifold`` may each be given as a value or as a
    zero-argument callable returning it; a callable is called at most once, on first use.
    When ``synthetic`` is not given, the synthetic samples are drawn on first use, once:
    ``model.sample(n_eval, lam, rng=make_rng())``. When ``manifold`` is not given (or gives
    ``None``), the k-NN manifold of ``real`` is built on first use with ``k`` neighbours.

    ``real``, ``synthetic`` and the model's learned tensors are checked for NaN and infinite
    values once, on first use (``ValueError`` naming the input and the first bad replicate).

    Parameters
    ----------
    model : optional
        The fitted model (batched over ``seeds`` replicates in the batched loops).
    lam : float, default 1.0
        Sampling bias the synthetic samples are drawn with.
    n_eval : int, optional
        Synthetic samples per replicate to draw.
    make_rng : callable, optional
        Returns the evaluation random stream; only called when samples are drawn.
    seeds : int, default 1
        Replicates the model holds.
    data : optional
        The real distribution P_r (:mod:`madutils.data.distributions`).
    first_mean : Tensor, optional
        Generation 1's fitted mean (Gaussian model).
    k : int, default 5
        Neighbours of the k-NN manifold, when it is built here.
    real : Tensor or callable, optional
        The real reference: ``n_eval`` held-out real samples of shape ``(n_eval, d)``, or the
        held-out images' features in the image loops.
    synthetic : Tensor or callable, optional
        The synthetic points; in the image loops, the features of the synthetic images.
    manifold : ManifoldReference or callable, optional
        The k-NN manifold of ``real``, built once per run.
    make_subset_rng : callable, optional
        Returns the random stream of the metrics that draw subsets of the points they are
        given (``kid``, ``fd_infinity``); called once per such metric.
    training : Tensor or callable, optional
        The points the model trained on (in the image loops, the features of the
        generation's training images), for ``memorisation``.
    images, real_images : Tensor or callable, optional
        The synthetic images and the held-out real images themselves, shape ``(n, c, s, s)``
        (image loops; ``spectral_excess``).
    predicted : Tensor or callable, optional
        The feature network's class of each synthetic image (image loops; ``class_coverage``).
    n_classes : int, optional
        The number of classes the feature network tells apart.
    drawn_per_kept : Tensor, optional
        Synthetic samples drawn per synthetic sample trained on this generation, shape
        ``(seeds,)`` (a loop with a curation step or a detector; 1 elsewhere).
    """

    def __init__(
        self,
        *,
        model=None,
        lam: float = 1.0,
        n_eval: int | None = None,
        make_rng: Callable[[], torch.Generator] | None = None,
        seeds: int = 1,
        data=None,
        first_mean: torch.Tensor | None = None,
        k: int = 5,
        real=None,
        synthetic=None,
        manifold=None,
        make_subset_rng: Callable[[], torch.Generator] | None = None,
        training=None,
        images=None,
        real_images=None,
        predicted=None,
        n_classes: int | None = None,
        drawn_per_kept: torch.Tensor | None = None,
    ):
        self.model = model
        self.lam = lam
        self.n_eval = n_eval
        self.make_rng = make_rng
        self.seeds = seeds
        self.data = data
        self.first_mean = first_mean
        self.k = k
        self.make_subset_rng = make_subset_rng
        self.n_classes = n_classes
        self.drawn_per_kept = drawn_per_kept
        self._sources = {
            "real": real,
            "synthetic": synthetic,
            "manifold": manifold,
            "training": training,
            "images": images,
            "real_images": real_images,
            "predicted": predicted,
        }
        self._values: dict[str, object] = {}
        self._checked: set[str] = set()  # inputs already checked for NaN / inf

    def _check_once(self, name: str, value, core_ndim: int | None):
        if name not in self._checked:
            check_finite_replicates(value, name, core_ndim=core_ndim)
            self._checked.add(name)
        return value

    def _get(self, name: str):
        if name not in self._values:
            source = self._sources[name]
            self._values[name] = source() if callable(source) else source
        return self._values[name]

    @property
    def real(self) -> torch.Tensor:
        """The real reference (samples, or features in the image loops)."""
        real = self._get("real")
        if real is None:
            raise ValueError("this metric needs real reference samples; the context has none")
        return self._check_once("real", real, core_ndim=2)

    @property
    def synthetic(self) -> torch.Tensor:
        """The synthetic points, drawn from the model on first use when not given."""
        if self._sources["synthetic"] is None and "synthetic" not in self._values:
            if self.model is None or self.n_eval is None or self.make_rng is None:
                raise ValueError(
                    "this metric needs synthetic samples; the context has neither samples nor "
                    "a model, n_eval and make_rng to draw them"
                )
            self.check_model()
            rng = self.make_rng()
            self._values["synthetic"] = self.model.sample(self.n_eval, self.lam, rng=rng)
        return self._check_once("synthetic", self._get("synthetic"), core_ndim=2)

    def fitted(self, attribute: str, core_ndim: int | None = None) -> torch.Tensor:
        """The model's learned tensor ``attribute`` (e.g. ``"mean_"``), checked on first use.

        Parameters
        ----------
        attribute : str
            The attribute's name.
        core_ndim : int, optional
            Trailing dimensions of one replicate's value (1 for ``mean_`` of shape
            ``(seeds, d)``), so that an error names the bad replicate; None names the index of
            the first bad entry.

        Returns
        -------
        Tensor
            ``model.<attribute>``, after checking that it is finite (the error names it
            ``model.<attribute>``).
        """
        if self.model is None:
            raise ValueError(
                f"this metric needs a fitted model (its {attribute}); the context has none"
            )
        value = getattr(self.model, attribute)
        return self._check_once(f"model.{attribute}", value, core_ndim)

    def check_model(self) -> None:
        """Check every learned tensor of the model (its ``_state_attributes``) for NaN / inf."""
        for attribute in getattr(self.model, "_state_attributes", ()):
            if isinstance(getattr(self.model, attribute, None), torch.Tensor):
                self.fitted(attribute)

    @property
    def training(self) -> torch.Tensor:
        """The points the model trained on."""
        training = self._get("training")
        if training is None:
            raise ValueError("this metric needs the model's training points; the context has none")
        return self._check_once("training", training, core_ndim=2)

    def image_input(self, name: str) -> torch.Tensor:
        """The images ``name`` (``"images"`` or ``"real_images"``), or the class predictions
        (``"predicted"``), of an image loop's generation."""
        value = self._get(name)
        if value is None:
            raise ValueError(
                f"this metric needs the {name.replace('_', ' ')}; the context has none"
            )
        return self._check_once(name, value, core_ndim=None)

    def subset_rng(self, metric: str) -> torch.Generator:
        """A new random stream for the subsets ``metric`` draws (from ``make_subset_rng``)."""
        if self.make_subset_rng is None:
            raise ValueError(
                f"the metric {metric!r} draws subsets; the context has no make_subset_rng"
            )
        return self.make_subset_rng()

    @property
    def drawn(self) -> bool:
        """Whether the synthetic points have been drawn (or read) yet."""
        return "synthetic" in self._values

    @property
    def manifold(self) -> ManifoldReference:
        """The k-NN manifold of :attr:`real`."""
        manifold = self._get("manifold")
        if manifold is None:
            manifold = self._values["manifold"] = ManifoldReference(self.real, k=self.k)
        return manifold

    @property
    def manifold_scores(self) -> dict[str, torch.Tensor]:
        """Precision, recall, density and coverage of :attr:`synthetic`, computed once."""
        if "manifold_scores" not in self._values:
            self._values["manifold_scores"] = self.manifold.compute(self.synthetic)
        return self._values["manifold_scores"]


@dataclass(frozen=True)
class Metric:
    """Every fact about one metric, and how to compute it.

    Attributes
    ----------
    name : str
        The name in results tables.
    definition : str
        What the number is (printed by ``madutils metrics``).
    label : str
        The axis or panel label plots show (matplotlib mathtext allowed).
    unit : str
        Its unit: ``"share"`` (in [0, 1]), ``"ratio"``, ``"modes"``, ``"nats/sample"``,
        ``"data units"``, ``"(data units)^2"``, ``"(feature units)^2"`` or ``"squared MMD"``.
    better : str or float
        ``"lower"``, ``"higher"``, ``"real"`` (closest to P_r's own value) or the target value
        real data give; see the module docstring.
    needs : str
        ``"model"``, ``"samples"`` or ``"features"``; see the module docstring.
    models : tuple of str
        The models whose loops may record it.
    compute : callable
        ``compute(context: MetricContext) -> Tensor`` of shape ``(seeds,)`` (or a scalar
        tensor for the single-replicate image loops).
    data : tuple of str or None
        The real distributions it is defined for (names of
        :data:`madutils.data.distributions.DISTRIBUTIONS`); ``None`` for any.
    min_samples : int
        The fewest points per set it can be computed from (2 for a covariance); the k-NN
        manifold metrics need ``k + 1`` instead, which depends on the run.
    """

    name: str
    definition: str
    label: str
    unit: str
    better: str | float
    needs: str
    models: tuple[str, ...]
    compute: Callable[[MetricContext], torch.Tensor]
    data: tuple[str, ...] | None = None
    min_samples: int = 1

    def __post_init__(self):
        for field in ("name", "definition", "label", "unit"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"Metric.{field} must be a non-empty string; got {value!r}")
        better_ok = self.better in _DIRECTIONS or (
            isinstance(self.better, Real) and not isinstance(self.better, bool)
        )
        if not better_ok:
            raise ValueError(
                f"Metric.better must be one of {_DIRECTIONS} or a target value; got {self.better!r}"
            )
        if self.needs not in NEEDS:
            raise ValueError(f"Metric.needs must be one of {NEEDS}; got {self.needs!r}")
        if not self.models or not all(isinstance(m, str) for m in self.models):
            raise ValueError(f"Metric.models must name at least one model; got {self.models!r}")
        if not callable(self.compute):
            raise ValueError(f"Metric.compute must be callable; got {self.compute!r}")

    def applies_to(self, model: str, data: str | None = None) -> bool:
        """Whether a loop of ``model`` on real distribution ``data`` may record this metric."""
        if model not in self.models:
            return False
        return data is None or self.data is None or data in self.data


# ------------------------------------------------------------------------------ computations


def _mean(ctx: MetricContext) -> torch.Tensor:
    return ctx.fitted("mean_", core_ndim=1)


def _covariance(ctx: MetricContext) -> torch.Tensor:
    return ctx.fitted("covariance_", core_ndim=2)


def _w2_squared(ctx: MetricContext) -> torch.Tensor:
    data = ctx.data
    return gaussian_w2_squared(_mean(ctx), _covariance(ctx), data.mean, data.covariance)


def _cov_trace(ctx: MetricContext) -> torch.Tensor:
    return covariance_trace(_covariance(ctx))


def _mean_drift(ctx: MetricContext) -> torch.Tensor:
    if ctx.first_mean is None:
        raise ValueError(
            "mean_drift needs first_mean (generation 1's fitted mean); the context has none"
        )
    first_mean = ctx._check_once("first_mean", ctx.first_mean, core_ndim=1)
    return mean_drift(_mean(ctx), first_mean)


def _mean_error(ctx: MetricContext) -> torch.Tensor:
    return mean_drift(_mean(ctx), ctx.data.mean)


def _frechet(ctx: MetricContext) -> torch.Tensor:
    """The Fréchet distance of the context's points: samples (``frechet``) or features (FID)."""
    return frechet_distance(ctx.real, ctx.synthetic)


def _kid(ctx: MetricContext) -> torch.Tensor:
    distance = kernel_distance(ctx.real, ctx.synthetic, rng=ctx.subset_rng("kid"))
    return torch.tensor(distance.mean, dtype=torch.float64)


def _fd_infinity(ctx: MetricContext) -> torch.Tensor:
    extrapolation = frechet_distance_infinity(
        ctx.real, ctx.synthetic, rng=ctx.subset_rng("fd_infinity")
    )
    return torch.tensor(extrapolation.value, dtype=torch.float64)


def _memorisation(ctx: MetricContext) -> torch.Tensor:
    return nearest_distance_ratio(ctx.synthetic, ctx.real, ctx.training)


def _spectral_excess(ctx: MetricContext) -> torch.Tensor:
    excess = spectral_excess(ctx.image_input("images"), ctx.image_input("real_images"))
    return torch.as_tensor(excess, dtype=torch.float64)


#: A class counts as covered when the feature network assigns it to at least this share of
#: the images a uniform use of the classes would give it.
CLASS_COVERAGE_SHARE = 0.2


def _class_coverage(ctx: MetricContext) -> torch.Tensor:
    predicted = ctx.image_input("predicted")
    if predicted.is_floating_point():
        if not bool((predicted == predicted.round()).all()):
            raise ValueError("predicted must hold class indices (whole numbers)")
        predicted = predicted.long()
    if ctx.n_classes is None:
        raise ValueError("class_coverage needs n_classes; the context has none")
    min_count = max(1, math.floor(CLASS_COVERAGE_SHARE * len(predicted) / ctx.n_classes))
    found = factor_coverage(predicted, ctx.n_classes, min_count=min_count)
    return torch.tensor(found.share, dtype=torch.float64)


def _manifold_score(name: str) -> Callable[[MetricContext], torch.Tensor]:
    def compute(ctx: MetricContext) -> torch.Tensor:
        return ctx.manifold_scores[name]

    compute.__name__ = compute.__qualname__ = f"_{name}"
    return compute


def _modes_covered(ctx: MetricContext) -> torch.Tensor:
    synthetic = ctx.synthetic
    return modes_covered(synthetic, ctx.data.means.to(synthetic.device), ctx.data.std)


def _modal_variance(ctx: MetricContext) -> torch.Tensor:
    return modal_variance(ctx.fitted("covariances_", core_ndim=3))


def _total_variance(ctx: MetricContext) -> torch.Tensor:
    return total_variance(ctx.synthetic)


def _heldout_nll(ctx: MetricContext) -> torch.Tensor:
    real = ctx.real
    ctx.check_model()
    return -ctx.model.score(real.unsqueeze(0).expand(ctx.seeds, -1, -1))


def _tail_share(ctx: MetricContext) -> torch.Tensor:
    return tail_share(ctx.synthetic, real_quantile(ctx.real.unsqueeze(0), 0.99))


def _marginal_w1(ctx: MetricContext) -> torch.Tensor:
    return marginal_wasserstein(ctx.real.unsqueeze(0), ctx.synthetic)


def _drawn_per_kept(ctx: MetricContext) -> torch.Tensor:
    if ctx.drawn_per_kept is None:
        return torch.ones(ctx.seeds, dtype=torch.float64)
    return ctx.drawn_per_kept.to(torch.float64)


# ------------------------------------------------------------------------------ the registry

_SQUARED = "(data units)^2"
_ENTRIES = (
    Metric(
        "w2_squared",
        "squared 2-Wasserstein distance between the fitted Gaussian N(mu_t, Sigma_t) "
        "and P_r, in closed form (lambda not applied)",
        r"$W_2^2$ to $P_r$",
        _SQUARED,
        "lower",
        "model",
        ("gaussian",),
        _w2_squared,
        data=("gaussian",),
    ),
    Metric(
        "cov_trace",
        "tr(Sigma_t), the total variance of the fitted Gaussian",
        r"tr $\Sigma_t$",
        _SQUARED,
        "real",
        "model",
        ("gaussian",),
        _cov_trace,
    ),
    Metric(
        "mean_drift",
        "||mu_t - mu_1||^2, squared drift of the fitted mean from generation 1's "
        "(the martingale's starting point; 0 at generation 1)",
        r"$\|\mu_t-\mu_1\|^2$",
        _SQUARED,
        "lower",
        "model",
        ("gaussian",),
        _mean_drift,
    ),
    Metric(
        "mean_error",
        "||mu_t - mu_r||^2, squared distance of the fitted mean from the real mean",
        r"$\|\mu_t-\mu_r\|^2$",
        _SQUARED,
        "lower",
        "model",
        ("gaussian",),
        _mean_error,
        data=("gaussian",),
    ),
    Metric(
        "frechet",
        "Fréchet distance between Gaussians fitted to n_eval real and n_eval synthetic "
        "samples (synthetic drawn with lambda)",
        "Fréchet distance",
        _SQUARED,
        "lower",
        "samples",
        _LOW_DIM,
        _frechet,
        min_samples=2,
    ),
    Metric(
        "fid",
        "image loops: Fréchet distance between Gaussians fitted to the LeNet features of "
        "n_eval synthetic images (drawn with lambda) and of the held-out real images",
        "FID (LeNet features)",
        "(feature units)^2",
        "lower",
        "features",
        _IMAGE,
        _frechet,
        min_samples=2,
    ),
    Metric(
        "kid",
        "image loops: kernel distance (KID; Bińkowski et al. 2018) between the LeNet "
        "features of n_eval synthetic images and of the held-out real images: unbiased "
        "squared MMD with the kernel (x.y/d + 1)^3, mean over 100 subsets of at most 1,000 "
        "(one subset of all when both sets are that small)",
        "KID (LeNet features)",
        "squared MMD",
        "lower",
        "features",
        _IMAGE,
        _kid,
        min_samples=2,
    ),
    Metric(
        "fd_infinity",
        "image loops: FID extrapolated to infinitely many synthetic images (FD∞; Chong & "
        "Forsyth 2020): intercept of the line through the FIDs of 15 nested subsets of the "
        "n_eval synthetic images, from a fifth of them to all, against 1/N",
        "FD$_\\infty$ (LeNet features)",
        "(feature units)^2",
        "lower",
        "features",
        _IMAGE,
        _fd_infinity,
        min_samples=10,
    ),
    Metric(
        "memorisation",
        "image loops: median distance of the n_eval synthetic images to their nearest image "
        "of the generation's training set, over that of the held-out real images (LeNet "
        "features); near 0: copies of the training set, about 1: new images",
        "distance to training set (synthetic / real)",
        "ratio",
        1.0,
        "features",
        _IMAGE,
        _memorisation,
    ),
    Metric(
        "spectral_excess",
        "image loops: share of the spectral energy of the n_eval synthetic images above half "
        "the Nyquist frequency, over that of the held-out real images (2-D power spectrum "
        "averaged over images; madutils.metrics.spectrum); 1: like real images, above 1: grid "
        "artifacts or noise, below 1: blur",
        "high-frequency energy (synthetic / real)",
        "ratio",
        1.0,
        "images",
        _IMAGE,
        _spectral_excess,
    ),
    Metric(
        "class_coverage",
        "image loops: share of the data set's classes (digits; for the coloured shapes, "
        "factor combinations) that the feature network assigns to at least "
        f"{CLASS_COVERAGE_SHARE:g} of the n_eval / n_classes images a uniform use would give "
        "each (at least one); below 1: modes lost",
        "classes covered (share)",
        "share",
        "higher",
        "images",
        _IMAGE,
        _class_coverage,
    ),
    Metric(
        "precision",
        "share of n_eval synthetic samples (drawn with lambda) inside the real k-NN "
        "manifold (Kynkäänniemi et al. 2019, membership <=)",
        "precision",
        "share",
        "higher",
        "samples",
        _LOW_DIM + _IMAGE,
        _manifold_score("precision"),
    ),
    Metric(
        "recall",
        "share of n_eval real samples inside the synthetic k-NN manifold",
        "recall",
        "share",
        "higher",
        "samples",
        _LOW_DIM + _IMAGE,
        _manifold_score("recall"),
    ),
    Metric(
        "density",
        "Naeem et al. 2020 density of the synthetic samples (membership <=)",
        "density",
        "ratio",
        1.0,
        "samples",
        _LOW_DIM + _IMAGE,
        _manifold_score("density"),
    ),
    Metric(
        "coverage",
        "Naeem et al. 2020 coverage: share of real samples whose k-NN ball holds a "
        "synthetic sample",
        "coverage",
        "share",
        "higher",
        "samples",
        _LOW_DIM + _IMAGE,
        _manifold_score("coverage"),
    ),
    Metric(
        "drawn_per_kept",
        "synthetic samples drawn per synthetic sample the next model trains on (1 without "
        "curation; the cost of verification, best-of-K curation and detect-and-filter); "
        "generation 1 trains on real data only and counts 1",
        "drawn per kept",
        "ratio",
        "lower",
        "curation",
        _LOW_DIM + ("ddpm",),
        _drawn_per_kept,
    ),
    Metric(
        "modes_covered",
        "number of the 25 grid modes still covered by the synthetic samples "
        "(rule in madutils.metrics.mixture.modes_covered)",
        "modes covered",
        "modes",
        "higher",
        "samples",
        ("mixture",),
        _modes_covered,
        data=("grid_mixture",),
    ),
    Metric(
        "modal_variance",
        "average per-component variance tr(Sigma_k)/d of the fitted mixture",
        "modal variance",
        _SQUARED,
        "real",
        "model",
        ("mixture",),
        _modal_variance,
    ),
    Metric(
        "total_variance",
        "trace of the covariance of the synthetic samples",
        "total variance",
        _SQUARED,
        "real",
        "samples",
        ("mixture",),
        _total_variance,
        min_samples=2,
    ),
    Metric(
        "heldout_nll",
        "negative log-likelihood per sample of n_eval held-out real samples under "
        "the fitted model (nats; the Rosenbrock density's entropy is about 2.49)",
        "held-out NLL (nats)",
        "nats/sample",
        "lower",
        "model",
        ("flow",),
        _heldout_nll,
    ),
    Metric(
        "tail_share",
        "share of n_eval synthetic samples whose last coordinate exceeds the 99% "
        "quantile of the held-out real samples' (about 0.01 for real data)",
        "share beyond real 99% of $x_2$",
        "share",
        0.01,
        "samples",
        _LOW_DIM,
        _tail_share,
    ),
    Metric(
        "marginal_w1",
        "1-Wasserstein distance between the synthetic and real marginals, "
        "averaged over coordinates (n_eval samples each)",
        "marginal $W_1$",
        "data units",
        "lower",
        "samples",
        _LOW_DIM,
        _marginal_w1,
    ),
)

#: Every metric, by name, in the order ``madutils metrics`` lists them.
REGISTRY: dict[str, Metric] = {metric.name: metric for metric in _ENTRIES}

#: The metrics of every image generation, on feature-network features against held-out
#: real images, in table order.
IMAGE_METRICS = (
    "fid",
    "kid",
    "fd_infinity",
    "memorisation",
    "precision",
    "recall",
    "density",
    "coverage",
    "spectral_excess",
    "class_coverage",
)

#: What each model's loop records when no metrics are configured, in table order.
DEFAULT_METRICS = {
    "gaussian": ("w2_squared", "cov_trace", "mean_drift", "mean_error"),
    "mixture": ("precision", "recall", "modes_covered", "modal_variance", "total_variance"),
    "flow": ("heldout_nll", "tail_share", "marginal_w1", "precision", "recall"),
    "ddpm": IMAGE_METRICS,
    "wgan": IMAGE_METRICS,
    "stylegan2": IMAGE_METRICS,
}

#: The k-NN manifold metrics (:mod:`madutils.metrics.manifold`), computed together in one pass.
MANIFOLD_METRICS = METRIC_NAMES


class _FieldView(Mapping):
    """A read-only, live view of one field of :data:`REGISTRY`: name to that field's value."""

    def __init__(self, field: str):
        self._field = field

    def __getitem__(self, name: str):
        return getattr(REGISTRY[name], self._field)

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._field!r}: {dict(self)!r})"


#: Every metric name that can appear in a results table, with its definition (a view).
METRICS: Mapping[str, str] = _FieldView("definition")
#: The label plots show for each metric (a view).
METRIC_LABELS: Mapping[str, str] = _FieldView("label")


def get_metric(name: str) -> Metric:
    """The registry entry of ``name``; ``ValueError`` naming the known metrics otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(repr(n) for n in REGISTRY)
        raise ValueError(f"unknown metric {name!r}; known metrics: {known}") from None


def metric_label(name: str) -> str:
    """The plot label of ``name`` (the name itself for a column that is not a metric)."""
    return REGISTRY[name].label if name in REGISTRY else name


def metric_names(model: str | None = None, data: str | None = None) -> tuple[str, ...]:
    """Registered metric names, in registry order, optionally only those that apply.

    Parameters
    ----------
    model : str, optional
        Only metrics a loop of this model may record.
    data : str, optional
        With ``model``: only metrics defined for this real distribution.

    Returns
    -------
    tuple of str
    """
    if model is None:
        return tuple(REGISTRY)
    return tuple(name for name, metric in REGISTRY.items() if metric.applies_to(model, data))


def measure(names: Iterable[str], context: MetricContext) -> dict[str, torch.Tensor]:
    """Compute the metrics ``names`` from ``context``, in the order given.

    Each value is its entry's ``compute(context)``; the context draws the synthetic samples at
    most once, and only if some metric reads them. A ``ValueError`` of a metric (garbage
    input: NaN, inf, a covariance that is not positive semi-definite) gets a note naming the
    metric.

    Parameters
    ----------
    names : iterable of str
        Registered metric names.
    context : MetricContext

    Returns
    -------
    dict of str to Tensor
    """
    metrics = [get_metric(name) for name in names]
    values = {}
    for metric in metrics:
        try:
            values[metric.name] = metric.compute(context)
        except ValueError as err:
            if hasattr(err, "add_note"):  # Python >= 3.11
                err.add_note(f"(while computing the metric {metric.name!r})")
            raise
    return values


def _check_defaults() -> None:
    for model, names in DEFAULT_METRICS.items():
        for name in names:
            if not get_metric(name).applies_to(model):
                raise ValueError(f"default metric {name!r} does not apply to model {model!r}")
    for name in MANIFOLD_METRICS:
        get_metric(name)


_check_defaults()
