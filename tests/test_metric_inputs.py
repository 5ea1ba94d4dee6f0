"""Metrics refuse garbage: NaN, inf and covariances that are not positive semi-definite.

Every metric of the registry is fed NaN and inf through each input its context holds (the real
reference, the synthetic points, each learned tensor of the model); it must either raise a
``ValueError`` that names that input, or not read it (same value as with clean input). The
covariance check (:func:`madutils.linalg.check_psd`) is tested on every function that takes a
covariance, on its documented tolerance, and on what must stay accepted: collapsed (zero),
rank-deficient and round-off-negative covariances, as real loops produce them.
"""

from __future__ import annotations

import copy
import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from madutils.data.distributions import GaussianDistribution, GridMixture, Rosenbrock
from madutils.linalg import (
    PSD_RTOL,
    check_finite_replicates,
    check_psd,
    psd_factor,
    psd_rtol,
    psd_sqrt,
)
from madutils.loops import LoopConfig, run_loop
from madutils.metrics import REGISTRY, MetricContext, measure, metric_names
from madutils.metrics import manifold as manifold_module
from madutils.metrics.effective import effective_sample_size, limiting_distance
from madutils.metrics.frechet import frechet_distance, gaussian_w2_squared
from madutils.metrics.gaussian import covariance_trace, mean_drift
from madutils.metrics.manifold import (
    ManifoldReference,
    knn_radii,
    precision_recall_density_coverage,
)
from madutils.metrics.mixture import (
    high_quality_share,
    mixture_metrics,
    mixture_total_variance,
    modal_variance,
    modes_covered,
    total_variance,
)
from madutils.metrics.tails import marginal_wasserstein, real_quantile, tail_share
from madutils.models.flow import CouplingFlow
from madutils.models.gaussian import GaussianModel
from madutils.models.mixture import GaussianMixtureModel

NAN, INF = float("nan"), float("inf")
NOT_FINITE = "contains NaN or infinite values"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------- valid contexts, per model


def _gaussian_inputs():
    data = GaussianDistribution(3)
    model = GaussianModel().fit(data.sample(40, n_seeds=3, rng=_gen(1)))
    return dict(
        model=model,
        data=data,
        first_mean=model.mean_.clone() + 0.1,
        real=data.sample(40, rng=_gen(2))[0],
        synthetic=model.sample(40, rng=_gen(3)),
        seeds=3,
    )


def _mixture_inputs():
    data = GridMixture()
    means = data.means.to(torch.float64).expand(3, -1, -1).clone()
    model = GaussianMixtureModel(n_components=len(means[0])).load_state_dict(
        {
            "weights_": torch.full((3, 25), 1 / 25, dtype=torch.float64),
            "means_": means,
            "covariances_": 0.01 * torch.eye(2, dtype=torch.float64).expand(3, 25, 2, 2).clone(),
        }
    )
    return dict(
        model=model,
        data=data,
        real=data.sample(60, rng=_gen(4))[0],
        synthetic=model.sample(60, rng=_gen(5)),
        seeds=3,
    )


def _flow_inputs():
    data = Rosenbrock()
    model = CouplingFlow(n_layers=2, hidden=8, epochs=1, batch_size=32)
    model.fit(data.sample(48, n_seeds=2, rng=_gen(6)), rng=_gen(7))
    return dict(
        model=model,
        data=data,
        real=data.sample(40, rng=_gen(8))[0],
        synthetic=model.sample(40, rng=_gen(9)).detach(),
        seeds=2,
    )


def _feature_inputs():
    """The image loops: real and synthetic points are features, there is no model; the images
    themselves and the feature network's classes of them (as float codes, so that a NaN can
    poison them)."""
    return dict(
        real=torch.randn(40, 6, generator=_gen(10)),
        synthetic=torch.randn(40, 6, generator=_gen(11)) * 1.2,
        training=torch.randn(40, 6, generator=_gen(14)),
        images=torch.rand(40, 3, 8, 8, generator=_gen(15)),
        real_images=torch.rand(40, 3, 8, 8, generator=_gen(16)),
        predicted=torch.randint(0, 4, (40,), generator=_gen(17)).to(torch.float32),
        n_classes=4,
        seeds=1,
    )


_FACTORIES = {
    "gaussian": _gaussian_inputs,
    "mixture": _mixture_inputs,
    "flow": _flow_inputs,
    "ddpm": _feature_inputs,
    "wgan": _feature_inputs,
    "stylegan2": _feature_inputs,
}


@pytest.fixture(scope="module")
def inputs():
    cache = {}

    def get(model: str) -> dict:
        assert model in _FACTORIES, f"no valid test context for model {model!r}: add one here"
        if model not in cache:
            cache[model] = _FACTORIES[model]()
        return cache[model]

    return get


def _context(ingredients: dict) -> MetricContext:
    return MetricContext(
        lam=1.0,
        n_eval=40,
        make_rng=lambda: _gen(12),
        make_subset_rng=lambda: _gen(13),
        k=5,
        **ingredients,
    )


def _slots(ingredients: dict) -> list[str]:
    """The inputs a metric may read: context values and the model's floating tensors."""
    names = ("real", "synthetic", "first_mean", "training", "images", "real_images", "predicted")
    slots = [name for name in names if name in ingredients]
    model = ingredients.get("model")
    for attribute in getattr(model, "_state_attributes", ()):
        value = getattr(model, attribute)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            slots.append(f"model.{attribute}")
    return slots


def _batched(value: torch.Tensor) -> bool:
    """Whether ``value`` has replicates first: (seeds, n, d) samples, (seeds, d) means, ..."""
    return value.ndim >= 3 or (value.ndim == 2 and value.shape[0] <= 3)


def _poisoned(value: torch.Tensor, bad: float) -> torch.Tensor:
    """A copy with one bad entry: in replicate 1 of batched values, row 3 of a sample set."""
    value = value.detach().clone()
    if _batched(value):
        value[1].view(-1)[0] = bad
    elif value.ndim == 1:  # one code per image
        value[3] = bad
    else:
        value[3, 0] = bad
    return value


def _value(ingredients: dict, slot: str) -> torch.Tensor:
    if slot.startswith("model."):
        return getattr(ingredients["model"], slot.removeprefix("model."))
    return ingredients[slot]


def _poison(ingredients: dict, slot: str, bad: float) -> dict:
    poisoned = dict(ingredients)
    if slot.startswith("model."):
        attribute = slot.removeprefix("model.")
        poisoned["model"] = model = copy.deepcopy(ingredients["model"])
        setattr(model, attribute, _poisoned(getattr(model, attribute), bad))
    else:
        poisoned[slot] = _poisoned(ingredients[slot], bad)
    return poisoned


@pytest.mark.parametrize("bad", [NAN, INF], ids=["nan", "inf"])
@pytest.mark.parametrize("name", metric_names())
def test_every_metric_refuses_non_finite_input_naming_it(name, bad, inputs):
    """Poisoning one input either raises naming it, or leaves the value alone (not read)."""
    metric = REGISTRY[name]
    ingredients = inputs(metric.models[0])
    clean = metric.compute(_context(ingredients))
    assert bool(torch.isfinite(torch.as_tensor(clean, dtype=torch.float64)).all())
    kind = "NaN" if bad != bad else "inf"
    refused = []
    for slot in _slots(ingredients):
        context = _context(_poison(ingredients, slot, bad))
        try:
            value = metric.compute(context)
        except ValueError as err:
            message = str(err)
            assert re.match(rf"{re.escape(slot)} {NOT_FINITE}", message), (slot, message)
            assert f"got {kind}" in message, message
            if _batched(_value(ingredients, slot)):  # the replicate, or the entry's index
                assert re.search(r"in replicate 1\b|at index \(1, ", message), message
            elif _value(ingredients, slot).ndim == 1:
                assert message.endswith(f"got {kind} at index (3,)"), message
            else:
                assert message.endswith(f"got {kind} at index (3, 0)"), message
            refused.append(slot)
        else:
            assert torch.equal(value, clean), f"{name} read the poisoned {slot} silently"
    if metric.needs == "curation":  # the loop's own count: it reads no model or sample input
        assert not refused
        return
    assert refused, f"{name} refused none of its poisoned inputs {_slots(ingredients)}"


def test_every_model_of_the_registry_has_a_test_context():
    models = {model for metric in REGISTRY.values() for model in metric.models}
    assert models <= set(_FACTORIES)


# ------------------------------------------------------------------ the four cases of issue 11


def test_tail_share_of_nan_samples_is_refused():
    samples = torch.full((2, 10, 2), NAN, dtype=torch.float64)
    with pytest.raises(ValueError) as caught:
        tail_share(samples, torch.zeros(2, dtype=torch.float64))
    assert str(caught.value).startswith(f"samples {NOT_FINITE}")
    assert "got NaN in replicate 0 (2 of 2 replicates)" in str(caught.value)
    with pytest.raises(ValueError, match=f"threshold {NOT_FINITE}"):
        tail_share(torch.zeros(2, 10, 2), torch.tensor([0.0, NAN]))
    with pytest.raises(ValueError, match=f"real {NOT_FINITE}"):
        real_quantile(torch.full((1, 10, 2), INF))


def test_marginal_wasserstein_of_nan_is_refused():
    clean = torch.zeros(3, 10, 2, dtype=torch.float64)
    bad = clean.clone()
    bad[2, 4, 1] = NAN
    with pytest.raises(ValueError, match=rf"^synthetic {NOT_FINITE}.*got NaN in replicate 2"):
        marginal_wasserstein(clean[:1], bad)
    with pytest.raises(ValueError, match=rf"^real {NOT_FINITE}.*got NaN in replicate 0"):
        marginal_wasserstein(bad[2:], clean)


def test_gaussian_w2_squared_with_a_nan_mean_is_refused():
    eye = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=rf"^mean_a {NOT_FINITE}.*got NaN at index \(0,\)"):
        gaussian_w2_squared(torch.tensor([NAN, 0.0]), eye, torch.zeros(2), eye)
    with pytest.raises(ValueError, match=rf"^mean_b {NOT_FINITE}.*got inf in replicate 1"):
        gaussian_w2_squared(torch.zeros(2), eye, torch.tensor([[0.0, 0], [0, INF]]), eye)


def test_gaussian_w2_squared_with_a_negative_covariance_is_refused():
    eye = torch.eye(2, dtype=torch.float64)
    zeros = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError) as caught:
        gaussian_w2_squared(zeros, eye, zeros, -eye)
    message = str(caught.value)
    assert message.startswith(
        "cov_b is not positive semi-definite: its smallest eigenvalue is -1 (tolerance -2.22e-10"
    ), message
    assert "float64" in message and "madutils.linalg" in message
    with pytest.raises(ValueError, match="^cov_a is not positive semi-definite"):
        gaussian_w2_squared(zeros, -eye, zeros, eye)


# ------------------------------------------------------ every function taking a covariance

_MEAN = torch.zeros(4, dtype=torch.float64)
_EYE = torch.eye(4, dtype=torch.float64)
_SAMPLES = torch.zeros(1, 10, 2, dtype=torch.float64)


def _like(covariance: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(covariance.dtype) for t in tensors)


def _gaussian_context(covariance: torch.Tensor) -> MetricContext:
    model = GaussianModel()
    model.mean_, model.covariance_ = torch.zeros(1, 4, dtype=covariance.dtype), covariance[None]
    return MetricContext(
        model=model,
        data=GaussianDistribution(4),
        real=torch.randn(20, 4, generator=_gen(13), dtype=torch.float64),
        n_eval=20,
        make_rng=lambda: _gen(14),
        seeds=1,
    )


def _mixture_context(covariance: torch.Tensor) -> MetricContext:
    model = GaussianMixtureModel(n_components=1).load_state_dict(
        {
            "weights_": torch.ones(1, 1, dtype=covariance.dtype),
            "means_": torch.zeros(1, 1, 4, dtype=covariance.dtype),
            "covariances_": covariance[None, None],
        }
    )
    return MetricContext(model=model, seeds=1)


#: Function of one (d, d) covariance (d = 4), the name its errors give; the "registry" ones
#: measure a model holding the covariance, and name NaN after the model's attribute.
COVARIANCE_TAKERS = {
    "check_psd": (lambda c: check_psd(c, "cov"), "cov"),
    "psd_sqrt": (psd_sqrt, "cov"),
    "psd_factor": (psd_factor, "cov"),
    "gaussian_w2_squared(cov_a)": (
        lambda c: gaussian_w2_squared(*_like(c, _MEAN), c, *_like(c, _MEAN, _EYE)),
        "cov_a",
    ),
    "gaussian_w2_squared(cov_b)": (
        lambda c: gaussian_w2_squared(*_like(c, _MEAN, _EYE, _MEAN), c),
        "cov_b",
    ),
    "covariance_trace": (covariance_trace, "covariance"),
    "modal_variance": (lambda c: modal_variance(c[None, None]), "covariances"),
    "mixture_total_variance": (
        lambda c: mixture_total_variance(
            torch.ones(1, 1), torch.zeros(1, 1, 4, dtype=c.dtype), c[None, None]
        ),
        "covariances",
    ),
    "mixture_metrics": (lambda c: mixture_metrics(_SAMPLES, c[None, None]), "covariances"),
    "registry w2_squared": (lambda c: measure(["w2_squared"], _gaussian_context(c)), "cov_a"),
    "registry cov_trace": (lambda c: measure(["cov_trace"], _gaussian_context(c)), "covariance"),
    "registry modal_variance": (
        lambda c: measure(["modal_variance"], _mixture_context(c)),
        "covariances",
    ),
    # drawing the synthetic samples factors the model's covariance (madutils.linalg.psd_factor)
    "registry frechet, drawn samples": (
        lambda c: measure(["frechet"], _gaussian_context(c)),
        "covariance_",
    ),
}

_INDEFINITE = torch.tensor(  # eigenvalues 3, -1, 1, 1: a positive trace, as plausible as any
    [[1.0, 2.0, 0, 0], [2.0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]], dtype=torch.float64
)


_NON_FINITE_NAMES = {
    "registry w2_squared": "model.covariance_",
    "registry cov_trace": "model.covariance_",
    "registry modal_variance": "model.covariances_",
    "registry frechet, drawn samples": "model.covariance_",
}
# The models hold float64 parameters: the registry takers are tested in float64 only.
_TAKERS_AND_DTYPES = [
    pytest.param(taker, dtype, id=f"{taker}-{str(dtype).removeprefix('torch.')}")
    for taker in COVARIANCE_TAKERS
    for dtype in (torch.float64, torch.float32)
    if dtype == torch.float64 or not taker.startswith("registry")
]


@pytest.mark.parametrize(("taker", "dtype"), _TAKERS_AND_DTYPES)
def test_non_psd_covariances_are_refused(taker, dtype):
    function, name = COVARIANCE_TAKERS[taker]
    with pytest.raises(ValueError) as caught:
        function(_INDEFINITE.to(dtype))
    message = str(caught.value)
    assert message.startswith(
        f"{name} is not positive semi-definite: its smallest eigenvalue is -1"
    ), message
    assert str(dtype).removeprefix("torch.") in message


@pytest.mark.parametrize("taker", list(COVARIANCE_TAKERS))
def test_non_symmetric_and_non_finite_covariances_are_refused(taker):
    function, name = COVARIANCE_TAKERS[taker]
    skewed = _EYE.clone()
    skewed[0, 1] = 0.5
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} is not symmetric: .* is 0\.5 "):
        function(skewed)
    broken = _EYE.clone()
    broken[2, 2] = NAN
    name = _NON_FINITE_NAMES.get(taker, name)
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} {NOT_FINITE}"):
        function(broken)


def _rank_one(dtype: torch.dtype) -> torch.Tensor:
    """A sample covariance of 2 points in 4-D whose computed smallest eigenvalue is < 0."""
    for seed in range(100):
        x = torch.randn(2, 4, generator=_gen(seed), dtype=torch.float64).to(dtype)
        centred = x - x.mean(0)
        cov = centred.T @ centred
        if float(torch.linalg.eigvalsh(cov)[0]) < 0:
            return cov
    raise AssertionError("no rank-deficient covariance with a negative round-off eigenvalue")


@pytest.mark.parametrize(("taker", "dtype"), _TAKERS_AND_DTYPES)
def test_collapsed_and_rank_deficient_covariances_are_accepted(taker, dtype):
    function, _ = COVARIANCE_TAKERS[taker]
    for covariance in (torch.zeros(4, 4, dtype=dtype), _rank_one(dtype)):
        result = function(covariance)
        values = result.values() if isinstance(result, dict) else [result]
        assert all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in values), taker


def test_collapsed_and_rank_deficient_covariances_give_the_closed_forms():
    zeros = torch.zeros(4, 4, dtype=torch.float64)
    assert float(gaussian_w2_squared(_MEAN, zeros, _MEAN, _EYE)) == pytest.approx(4.0)
    assert float(covariance_trace(zeros)) == 0.0
    assert torch.equal(psd_factor(zeros), zeros) and torch.equal(psd_sqrt(zeros), zeros)
    v = torch.tensor([3.0, 0.0, 4.0, 0.0], dtype=torch.float64)
    rank_one = torch.outer(v, v)  # |v| = 5: W2^2 to N(0, I) = 25 + 4 - 2 * 5
    assert float(gaussian_w2_squared(_MEAN, rank_one, _MEAN, _EYE)) == pytest.approx(19.0)
    factor = psd_factor(rank_one)
    torch.testing.assert_close(factor @ factor.mT, rank_one)


# ------------------------------------------------------------------------- the tolerance


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("check", ["check_psd", "psd_sqrt", "psd_factor"])
def test_the_tolerance_is_relative_and_per_dtype(check, dtype):
    function = COVARIANCE_TAKERS[check][0]
    rtol = psd_rtol(dtype)
    assert (
        rtol == PSD_RTOL[dtype]
        and rtol == {torch.float64: 1e6, torch.float32: 1e3}[dtype] * torch.finfo(dtype).eps
    )
    for scale in (1e-30, 1.0, 1e30):
        inside = torch.diag(torch.tensor([1.0, -0.5 * rtol], dtype=dtype)) * scale
        function(inside)
        beyond = torch.diag(torch.tensor([1.0, -2 * rtol], dtype=dtype)) * scale
        with pytest.raises(ValueError, match="^cov is not positive semi-definite"):
            function(beyond)
        skew = torch.tensor([[1.0, 0.5 * rtol], [0.0, 1.0]], dtype=dtype) * scale
        function(skew)
        with pytest.raises(ValueError, match="^cov is not symmetric"):
            function(torch.tensor([[1.0, 2 * rtol], [0.0, 1.0]], dtype=dtype) * scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_round_off_of_real_covariances_is_accepted(dtype):
    """Sample covariances of many kinds, batched: n < d, n >> d, collapsed, anisotropic."""
    gen = _gen(15)
    for n, d in [(3, 50), (10, 100), (200, 20), (5000, 2)]:
        x = torch.randn(4, n, d, generator=gen, dtype=torch.float64)
        for data in (x, x * torch.logspace(-4, 3, d, dtype=torch.float64), x[:, :1] + 1e-9 * x):
            data = data.to(dtype)
            centred = (data - data.mean(1, keepdim=True)) / (n - 1) ** 0.5
            for cov in (centred.mT @ centred, torch.stack([torch.cov(s.T) for s in data])):
                check_psd(cov, "cov")
                covariance_trace(cov)
                if dtype == torch.float64:  # float32 eigh may fail to converge on collapsed
                    psd_factor(cov)  # covariances of tiny norm (before any check)


def test_covariances_near_underflow_are_accepted():
    v = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    subnormal = torch.outer(v, v) * 1e-310  # a model collapsed for very many generations
    check_psd(subnormal, "cov")
    assert float(covariance_trace(subnormal)) > 0
    psd_factor(subnormal)
    # a collapsed float32 covariance of tiny norm, on which float32 eigvalsh can fail to converge
    x = torch.randn(4, 3, 50, generator=_gen(0), dtype=torch.float64)
    tiny = torch.stack([torch.cov(s.T) for s in (x[:, :1] + 1e-9 * x).to(torch.float32)])
    check_psd(tiny, "cov")
    covariance_trace(tiny)


# -------------------------------------------------------------------- the bad replicate


def test_the_bad_replicate_is_named():
    samples = torch.zeros(5, 10, 2)
    samples[3, 4, 1] = NAN
    with pytest.raises(ValueError, match=r"got NaN in replicate 3 \(1 of 5 replicates\)$"):
        check_finite_replicates(samples, "samples", core_ndim=2)
    with pytest.raises(ValueError, match=r"^samples .*got NaN in replicate 3"):
        total_variance(samples)
    with pytest.raises(ValueError, match=r"^samples .*got NaN in replicate 3"):
        high_quality_share(samples)
    with pytest.raises(ValueError, match=r"^synthetic .*got NaN in replicate 3"):
        frechet_distance(torch.zeros(10, 2), samples)

    covariances = torch.eye(3, dtype=torch.float64).repeat(5, 1, 1)
    covariances[0] = 0.0  # collapsed: fine, but its Cholesky fails like the bad one's
    covariances[3] = -torch.eye(3)
    for function in (lambda c: check_psd(c, "cov"), psd_sqrt, psd_factor, covariance_trace):
        with pytest.raises(ValueError) as caught:
            function(covariances)
        assert re.search(
            r"eigenvalue is -1 in replicate 3 \(.*\); got 1 of 5 matrices", str(caught.value)
        )
    with pytest.raises(ValueError, match="^cov_a is not positive .* in replicate 3"):
        gaussian_w2_squared(torch.zeros(5, 3), covariances, torch.zeros(3), torch.eye(3))

    components = torch.eye(2, dtype=torch.float64).repeat(2, 3, 1, 1)
    components[1, 2] = torch.tensor([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match=r"^covariances is not positive .* batch entry \(1, 2\)"):
        modal_variance(components)
    with pytest.raises(ValueError, match=r"^cov is not positive .* batch entry \(1, 2\)"):
        psd_factor(components)
    components[1, 2] = torch.tensor([[1.0, INF], [INF, 1.0]])
    with pytest.raises(
        ValueError, match=r"^covariances contains .* got inf in batch entry \(1, 2\)"
    ):
        modal_variance(components)


def test_the_manifold_metrics_name_the_bad_replicate_in_every_chunk(monkeypatch):
    monkeypatch.setattr(manifold_module, "_FINITE_CHECK_ELEMENTS", 4)  # 2 rows per chunk
    real = torch.randn(20, 2, generator=_gen(16))
    synthetic = torch.randn(3, 20, 2, generator=_gen(17))
    synthetic[2, 19, 0] = INF
    with pytest.raises(ValueError, match=rf"^synthetic {NOT_FINITE}.*got inf in replicate 2"):
        precision_recall_density_coverage(real, synthetic)
    with pytest.raises(ValueError, match=rf"^synthetic {NOT_FINITE}.*replicate 2"):
        ManifoldReference(real).compute(synthetic)
    with pytest.raises(ValueError, match=rf"^features {NOT_FINITE}.*replicate 2"):
        knn_radii(synthetic)
    with pytest.raises(ValueError, match=rf"^real {NOT_FINITE}.*got inf at index \(19, 0\)"):
        ManifoldReference(synthetic[2])


# ---------------------------------------------------------- degenerate loops stay measurable


def test_collapsed_and_rank_deficient_models_are_measured():
    zeros = torch.zeros(4, 4, dtype=torch.float64)
    collapsed = measure(["w2_squared", "cov_trace"], _gaussian_context(zeros))
    assert float(collapsed["cov_trace"]) == 0.0
    assert float(collapsed["w2_squared"]) == pytest.approx(4.0)
    data = GaussianDistribution(4)
    model = GaussianModel().fit(data.sample(2, n_seeds=3, rng=_gen(18)))  # rank 1 in 4-D
    context = MetricContext(
        model=model,
        data=data,
        first_mean=model.mean_,
        real=data.sample(20, rng=_gen(19))[0],
        n_eval=20,
        make_rng=lambda: _gen(20),
        seeds=3,
    )
    values = measure(["w2_squared", "cov_trace", "mean_drift", "frechet", "precision"], context)
    assert all(bool(torch.isfinite(v).all()) for v in values.values())


def test_a_collapsing_loop_is_measured_to_the_end():
    table = run_loop(
        LoopConfig(
            family="fully_synthetic",
            model="gaussian",
            dim=3,
            n_ini=3,
            generations=40,
            seeds=4,
            lam=0.3,
            n_eval=20,
            metrics=("w2_squared", "cov_trace", "frechet"),
        ),
        progress=False,
    ).table
    assert np.isfinite(table["value"]).all()
    last = table[(table.generation == 40) & (table.metric == "cov_trace")]
    assert (last["value"] < 1e-20).all()  # collapsed, and still measured


# ------------------------------------------------------------------ the rest of the package


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")
def test_measure_names_the_metric_in_a_note():
    context = _gaussian_context(torch.eye(4, dtype=torch.float64))
    context.model.mean_ = torch.tensor([[NAN, 0, 0, 0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=rf"^model\.mean_ {NOT_FINITE}.*replicate 0") as caught:
        measure(["cov_trace", "w2_squared"], context)
    assert caught.value.__notes__ == ["(while computing the metric 'w2_squared')"]


def test_mean_drift_and_modes_covered_refuse_non_finite_input():
    with pytest.raises(ValueError, match=rf"^reference {NOT_FINITE}"):
        mean_drift(torch.zeros(2, 3), torch.tensor([0.0, INF, 0.0]))
    with pytest.raises(ValueError, match=rf"^mode_means {NOT_FINITE}"):
        modes_covered(torch.zeros(1, 5, 2), torch.tensor([[0.0, NAN]]))
    with pytest.raises(ValueError, match=rf"^means {NOT_FINITE}.*replicate 0"):
        mixture_total_variance(
            torch.ones(1, 1), torch.full((1, 1, 2), NAN), torch.eye(2).expand(1, 1, 2, 2)
        )


def test_effective_sample_size_and_limiting_distance_refuse_non_finite_input():
    distribution = GaussianDistribution(2)
    with pytest.raises(ValueError, match=r"^distance must be positive and finite; got 1 of 2"):
        effective_sample_size(np.array([1.0, np.nan]), 10, distribution, rng=_gen(21))
    table = pd.DataFrame(
        {"metric": "w2_squared", "generation": [1, 2, 3], "value": [1.0, np.inf, 2.0]}
    )
    with pytest.raises(ValueError, match=r"^table contains NaN or infinite values .* got 1 of 2"):
        limiting_distance(table, tail=2)
    assert limiting_distance(table, tail=1) == 2.0
