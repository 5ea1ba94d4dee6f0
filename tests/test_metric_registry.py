"""Tests of the one metric registry (madutils.metrics.registry) and of the loops' dispatch.

The loops compute every metric through its registry entry; these tests check the entries'
facts, that plots and the CLI read them, that a new entry needs no edit outside
``madutils.metrics``, and that the values a loop records are exactly those of the metric
functions applied directly (same samples, same random streams).
"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from madutils import plotting  # noqa: E402
from madutils.data.distributions import DISTRIBUTIONS, make_distribution  # noqa: E402
from madutils.loops import image_config  # noqa: E402
from madutils.loops.batched import iterate_loop, run_loop  # noqa: E402
from madutils.loops.config import MODELS, LoopConfig  # noqa: E402
from madutils.metrics import (  # noqa: E402
    DEFAULT_METRICS,
    IMAGE_METRICS,
    MANIFOLD_METRICS,
    METRIC_LABELS,
    METRICS,
    NEEDS,
    REGISTRY,
    Metric,
    MetricContext,
    measure,
    metric_label,
    metric_names,
)
from madutils.metrics.frechet import (  # noqa: E402
    frechet_distance,
    frechet_distance_infinity,
    gaussian_w2_squared,
)
from madutils.metrics.gaussian import covariance_trace, mean_drift  # noqa: E402
from madutils.metrics.kernel import kernel_distance  # noqa: E402
from madutils.metrics.manifold import METRIC_NAMES, ManifoldReference  # noqa: E402
from madutils.metrics.memorisation import nearest_distance_ratio  # noqa: E402
from madutils.metrics.mixture import modal_variance, modes_covered, total_variance  # noqa: E402
from madutils.metrics.tails import marginal_wasserstein, real_quantile, tail_share  # noqa: E402
from madutils.rng import BatchedStream, stream  # noqa: E402

ALL_MODELS = set(MODELS) | set(image_config.IMAGE_MODELS)
SAMPLE_BASED = ("frechet", *MANIFOLD_METRICS, "tail_share", "marginal_w1")


# --------------------------------------------------------------------------- the entries


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_entry_has_all_facts(name):
    metric = REGISTRY[name]
    assert isinstance(metric, Metric) and metric.name == name
    for field in ("definition", "label", "unit"):
        assert isinstance(getattr(metric, field), str) and getattr(metric, field).strip()
    assert metric.better in ("lower", "higher", "real") or isinstance(metric.better, float)
    assert metric.needs in NEEDS
    assert metric.models and set(metric.models) <= ALL_MODELS
    assert metric.data is None or set(metric.data) <= set(DISTRIBUTIONS)
    assert callable(metric.compute)
    with pytest.raises(dataclasses.FrozenInstanceError):
        metric.label = "changed"


def test_views_and_defaults_come_from_the_registry():
    assert list(METRICS) == list(REGISTRY) == list(metric_names())
    assert all(METRICS[n] == REGISTRY[n].definition for n in REGISTRY)
    assert all(METRIC_LABELS[n] == REGISTRY[n].label for n in REGISTRY)
    assert set(DEFAULT_METRICS) == ALL_MODELS
    for model, names in DEFAULT_METRICS.items():
        assert all(REGISTRY[n].applies_to(model) for n in names)
    assert image_config.IMAGE_METRICS is IMAGE_METRICS
    assert tuple(MANIFOLD_METRICS) == tuple(METRIC_NAMES)
    features = {"fid", "kid", "fd_infinity", "memorisation"}
    assert {n for n, m in REGISTRY.items() if m.needs == "features"} == features
    # what a loop configuration accepts is what applies to its model and data
    assert "modes_covered" in metric_names("mixture", "grid_mixture")
    assert "modes_covered" not in metric_names("mixture", "rosenbrock")
    assert "fid" not in metric_names("gaussian") and "fid" in metric_names("ddpm")


def test_bad_entries_are_refused():
    good = REGISTRY["cov_trace"]
    for change, match in [
        (dict(better="closer"), "better"),
        (dict(needs="pictures"), "needs"),
        (dict(models=()), "models"),
        (dict(label=""), "label"),
        (dict(compute=None), "compute"),
    ]:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(good, **change)
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        measure(["nope"], MetricContext())


def test_plot_labels_come_from_the_registry(monkeypatch):
    assert all(plotting.METRIC_LABELS[n] == REGISTRY[n].label for n in REGISTRY)
    relabelled = dataclasses.replace(REGISTRY["cov_trace"], label="a new label")
    monkeypatch.setitem(REGISTRY, "cov_trace", relabelled)
    assert plotting.METRIC_LABELS["cov_trace"] == "a new label"
    assert metric_label("cov_trace") == "a new label" and metric_label("other") == "other"
    table = pd.DataFrame(
        {
            "family": "fully_synthetic",
            "lam": 1.0,
            "generation": [1, 2, 1, 2],
            "metric": ["cov_trace"] * 2 + ["w2_squared"] * 2,
            "value": [1.0, 2.0, 0.1, 0.2],
        }
    )
    figure = plotting.metric_curves(table)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["a new label", REGISTRY["w2_squared"].label]
    matplotlib.pyplot.close(figure)


# --------------------------------------------------------------------------- dispatch


class _CountingModel:
    """A stand-in model whose samples are drawn from ``rng``; counts its draws."""

    def __init__(self):
        self.draws = 0
        self.covariance_ = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)

    def sample(self, n, lam, *, rng):
        self.draws += 1
        return lam * torch.randn(3, n, 2, generator=rng, dtype=torch.float64)


def _context(model, rng_calls):
    def make_rng():
        rng_calls.append(1)
        return torch.Generator().manual_seed(5)

    real = torch.randn(40, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    return MetricContext(
        model=model, lam=0.5, n_eval=40, make_rng=make_rng, seeds=3, k=5, real=real
    ), real


def test_samples_are_drawn_once_and_only_when_read():
    model, calls = _CountingModel(), []
    context, _ = _context(model, calls)
    assert measure(["cov_trace"], context)["cov_trace"].tolist() == [2.0, 2.0, 2.0]
    assert model.draws == 0 and calls == [] and not context.drawn
    values = measure(SAMPLE_BASED, context)
    assert list(values) == list(SAMPLE_BASED)
    assert model.draws == 1 and calls == [1] and context.drawn


def test_context_values_equal_the_metric_functions():
    model, calls = _CountingModel(), []
    context, real = _context(model, calls)
    values = measure(SAMPLE_BASED, context)
    synthetic = 0.5 * torch.randn(
        3, 40, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    assert torch.equal(values["frechet"], frechet_distance(real, synthetic))
    scores = ManifoldReference(real, k=5).compute(synthetic)
    for name in MANIFOLD_METRICS:
        assert torch.equal(values[name], scores[name])
    threshold = real_quantile(real.unsqueeze(0), 0.99)
    assert torch.equal(values["tail_share"], tail_share(synthetic, threshold))
    assert torch.equal(values["marginal_w1"], marginal_wasserstein(real.unsqueeze(0), synthetic))


def test_a_new_registry_entry_is_computed_by_the_loop(monkeypatch):
    fake = Metric(
        name="synthetic_mean",
        definition="mean of every coordinate of the n_eval synthetic samples",
        label="synthetic mean",
        unit="data units",
        better=0.0,
        needs="samples",
        models=("gaussian",),
        compute=lambda ctx: ctx.synthetic.mean(dim=(1, 2)),
    )
    monkeypatch.setitem(REGISTRY, fake.name, fake)
    assert METRICS["synthetic_mean"] == fake.definition
    assert plotting.METRIC_LABELS["synthetic_mean"] == "synthetic mean"
    cfg = LoopConfig(
        n_ini=30, generations=3, seeds=2, seed=3, lam=0.7, metrics=("cov_trace", "synthetic_mean")
    )
    table = run_loop(cfg, progress=False).table
    assert list(dict.fromkeys(table.metric)) == ["cov_trace", "synthetic_mean"]
    for generation, model, values in iterate_loop(cfg):
        rng = stream(cfg.seed, generation, BatchedStream.EVALUATION)
        expected = model.sample(30, 0.7, rng=rng).mean(dim=(1, 2)).numpy()
        assert np.array_equal(values["synthetic_mean"], expected)
        rows = table[(table.generation == generation) & (table.metric == "synthetic_mean")]
        assert np.array_equal(rows.value.to_numpy(), expected)


# --------------------------------------------------------------------------- loop identities


def _direct(cfg, generation, model):
    """Real reference and synthetic samples exactly as the loop draws them."""
    data = make_distribution(cfg.data, cfg.dim)
    real = data.sample(cfg.n_eval, n_seeds=1, rng=stream(cfg.seed, 0, BatchedStream.EVALUATION))[0]
    rng = stream(cfg.seed, generation, BatchedStream.EVALUATION)
    return data, real, model.sample(cfg.n_eval, cfg.lam, rng=rng)


def _check_sample_metrics(values, cfg, real, synthetic):
    expected = {
        "frechet": frechet_distance(real, synthetic),
        **ManifoldReference(real, k=cfg.k).compute(synthetic),
        "tail_share": tail_share(synthetic, real_quantile(real.unsqueeze(0), 0.99)),
        "marginal_w1": marginal_wasserstein(real.unsqueeze(0), synthetic),
    }
    for name in set(values) & set(expected):
        assert np.array_equal(values[name], expected[name].numpy()), name


def test_gaussian_loop_values_equal_the_direct_functions():
    metrics = ("mean_error", "w2_squared", *SAMPLE_BASED, "cov_trace", "mean_drift")
    cfg = LoopConfig(n_ini=40, generations=3, seeds=3, seed=2, lam=0.8, metrics=metrics)
    cfg = cfg.resolved()
    first_mean = None
    for generation, model, values in iterate_loop(cfg):
        assert tuple(values) == metrics
        data, real, synthetic = _direct(cfg, generation, model)
        first_mean = model.mean_.clone() if generation == 1 else first_mean
        w2 = gaussian_w2_squared(model.mean_, model.covariance_, data.mean, data.covariance)
        assert np.array_equal(values["w2_squared"], w2.numpy())
        assert np.array_equal(values["cov_trace"], covariance_trace(model.covariance_).numpy())
        assert np.array_equal(values["mean_error"], mean_drift(model.mean_, data.mean).numpy())
        assert np.array_equal(values["mean_drift"], mean_drift(model.mean_, first_mean).numpy())
        if generation == 1:  # closed form: no drift yet
            assert np.array_equal(values["mean_drift"], np.zeros(3))
        _check_sample_metrics(values, cfg, real, synthetic)


def test_mixture_loop_values_equal_the_direct_functions():
    metrics = ("total_variance", "precision", "modes_covered", "frechet", "modal_variance")
    cfg = LoopConfig(
        model="mixture",
        n_ini=150,
        n_components=25,
        generations=2,
        seeds=2,
        seed=5,
        lam=0.9,
        metrics=metrics,
    ).resolved()
    for generation, model, values in iterate_loop(cfg):
        assert tuple(values) == metrics
        data, real, synthetic = _direct(cfg, generation, model)
        covered = modes_covered(synthetic, data.means, data.std)
        assert np.array_equal(values["modes_covered"], covered.numpy())
        assert np.array_equal(values["modal_variance"], modal_variance(model.covariances_).numpy())
        assert np.array_equal(values["total_variance"], total_variance(synthetic).numpy())
        _check_sample_metrics(values, cfg, real, synthetic)


def test_flow_loop_values_equal_the_direct_functions():
    metrics = ("tail_share", "heldout_nll", "marginal_w1", "recall")
    cfg = LoopConfig(
        model="flow",
        n_ini=48,
        generations=2,
        seeds=2,
        seed=7,
        lam=0.7,
        n_layers=2,
        hidden=8,
        epochs=1,
        batch_size=32,
        metrics=metrics,
    ).resolved()
    for generation, model, values in iterate_loop(cfg):
        assert tuple(values) == metrics
        _, real, synthetic = _direct(cfg, generation, model)
        nll = -model.score(real.unsqueeze(0).expand(2, -1, -1))
        assert np.array_equal(values["heldout_nll"], nll.detach().numpy())
        _check_sample_metrics(values, cfg, real, synthetic)


# --------------------------------------------------------------------------- image metrics


class _PooledFeatures:
    """A feature network stand-in: the features of an 8x8 image are its eight 4x2 block
    means, and its class is the brightest block."""

    def features(self, images):
        return torch.nn.functional.avg_pool2d(images, (4, 2)).flatten(1)

    def predict(self, images):
        return self.features(images).argmax(1)


def test_image_measure_on_feature_tensors():
    from madutils.data.images import ImageSet
    from madutils.loops.images import RealImages
    from madutils.loops.images import measure as image_measure
    from madutils.metrics.coverage import factor_coverage
    from madutils.metrics.spectrum import spectral_excess

    gen = torch.Generator().manual_seed(11)
    network = _PooledFeatures()
    held_out_images = torch.rand(60, 1, 8, 8, generator=gen)
    images = (0.8 * torch.rand(50, 1, 8, 8, generator=gen) + 0.1).clamp(0, 1)
    reference_features, synthetic = network.features(held_out_images), network.features(images)
    reference = ManifoldReference(reference_features, k=5)
    held_out = ImageSet(held_out_images, network.predict(held_out_images), n_classes=8)
    real = RealImages(held_out, held_out, network, reference, reference_features)
    subsets = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    training_images = images[:20] + 0.001  # as if the model had trained on near-copies
    values = image_measure(real, images, subsets, training_images)
    training = network.features(training_images)
    assert values["spectral_excess"] == pytest.approx(
        float(spectral_excess(images, held_out_images)), rel=1e-12
    )
    # 50 images of 8 classes: a class counts from floor(0.2 * 50 / 8) = 1 image on
    assert values["class_coverage"] == factor_coverage(network.predict(images), 8).share
    assert tuple(values) == IMAGE_METRICS
    assert values["fid"] == float(frechet_distance(reference_features, synthetic))
    kid = kernel_distance(reference_features, synthetic, rng=subsets())
    assert values["kid"] == pytest.approx(kid.mean, rel=1e-12)
    fd_infinity = frechet_distance_infinity(reference_features, synthetic, rng=subsets())
    assert values["fd_infinity"] == pytest.approx(fd_infinity.value, rel=1e-12)
    scores = reference.compute(synthetic)
    assert all(values[name] == float(scores[name]) for name in MANIFOLD_METRICS)
    assert values["memorisation"] == pytest.approx(
        float(nearest_distance_ratio(synthetic, reference_features, training)), rel=1e-12
    )
    again = image_measure(real, held_out_images, subsets, training_images)
    assert again["fid"] == pytest.approx(0.0, abs=1e-9)
