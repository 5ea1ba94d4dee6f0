"""The loop families: training-set composition, reproducibility and the paper's analytic facts."""

import numpy as np
import pandas as pd
import pytest
import torch

from madutils.analysis.gaussian import closed_form_trace_and_drift
from madutils.loops.batched import BatchedLoop, run_loop
from madutils.loops.config import LoopConfig
from madutils.models.gaussian import GaussianModel
from madutils.rng import stream


def _sets(config, generations):
    """The training set of each generation, stepping the loop by hand."""
    loop = BatchedLoop(config.resolved(), None)
    sets = []
    for t in range(1, generations + 1):
        data = loop.training_set(t, stream(config.seed, t, 0))
        sets.append(data)
        model = loop.fit(data, stream(config.seed, t, 1))
        loop._add_to_pool(model, t, stream(config.seed, t, 0))
        loop.models = (loop.models + [model])[-loop.n_keep :]
    return sets


def test_fully_synthetic_has_no_real_data():
    sets = _sets(LoopConfig(family="fully_synthetic", n_ini=30, n_synthetic=20, seeds=2), 4)
    assert [s.shape[1] for s in sets] == [30, 20, 20, 20]
    real = sets[0]
    for s in sets[1:]:
        assert not torch.isin(s, real).any()


def test_synthetic_augmentation_real_set_is_fixed():
    sets = _sets(LoopConfig(family="synthetic_augmentation", n_ini=30, n_synthetic=20, seeds=2), 4)
    assert [s.shape[1] for s in sets] == [30, 50, 50, 50]
    for s in sets[1:]:
        assert torch.equal(s[:, :30], sets[0])
    assert not torch.equal(sets[1][:, 30:], sets[2][:, 30:])


def test_fresh_data_real_set_is_new_every_generation():
    sets = _sets(LoopConfig(family="fresh_data", n_ini=30, n_real=15, n_synthetic=20, seeds=2), 4)
    assert [s.shape[1] for s in sets] == [30, 35, 35, 35]
    reals = [sets[0]] + [s[:, :15] for s in sets[1:]]
    for i in range(len(reals)):
        for j in range(i):
            assert not torch.isin(reals[i], reals[j]).any()


def test_fresh_data_pool_with_real_fraction():
    config = LoopConfig(family="fresh_data", n_ini=40, n_total=40, real_fraction=0.25, seeds=2)
    assert (config.resolved().n_real, config.resolved().n_synthetic) == (10, 30)
    sets = _sets(config, 3)
    assert [s.shape[1] for s in sets] == [40, 40, 40]


def test_accumulated_pool_grows_and_keeps_earlier_samples():
    config = LoopConfig(
        family="synthetic_augmentation",
        n_ini=30,
        n_synthetic=20,
        seeds=2,
        synthetic_source="accumulate",
    )
    sets = _sets(config, 5)
    assert [s.shape[1] for s in sets] == [30, 50, 70, 90, 110]
    for previous, current in zip(sets[1:], sets[2:], strict=False):
        assert torch.equal(current[:, : previous.shape[1]], previous)  # pool only appended to


def test_statistics_path_counts_follow_the_same_composition():
    for source, expected in [("last", [30, 50, 50, 50]), ("accumulate", [30, 50, 70, 90])]:
        config = LoopConfig(
            family="synthetic_augmentation",
            n_ini=30,
            n_synthetic=20,
            seeds=3,
            synthetic_source=source,
            path="statistics",
        )
        counts = [s.count.tolist() for s in _sets(config, 4)]
        assert counts == [[c] * 3 for c in expected]


def _tagged_model(tag, n_seeds=4, d=2):
    """A Gaussian whose samples are all close to ``tag``, to see where samples came from."""
    return GaussianModel().load_state_dict(
        {
            "mean_": torch.full((n_seeds, d), float(tag), dtype=torch.float64),
            "covariance_": 1e-8 * torch.eye(d, dtype=torch.float64).expand(n_seeds, d, d),
        }
    )


@pytest.mark.parametrize("path", ["samples", "statistics"])
def test_memory_draws_only_from_the_k_most_recent_models(path):
    config = LoopConfig(
        family="fully_synthetic",
        n_ini=20,
        n_synthetic=3000,
        seeds=4,
        synthetic_source="memory",
        memory=3,
        path=path,
    )
    loop = BatchedLoop(config.resolved(), None)
    for tag in range(1, 7):  # six models, tags 100..600; keep the last three
        loop.models = (loop.models + [_tagged_model(100 * tag)])[-loop.n_keep :]
    part = loop._synthetic_part(stream(0, 7, 0))
    if path == "samples":
        tags = (part / 100).round().unique().tolist()
        assert sorted(tags) == [4.0, 5.0, 6.0]
        shares = (
            torch.stack([(part[..., 0] / 100).round() == t for t in tags]).double().mean((1, 2))
        )
        np.testing.assert_allclose(shares, 1 / 3, atol=0.02)
    else:
        assert part.count.tolist() == [3000.0] * 4
        np.testing.assert_allclose(part.mean, 500.0, atol=10)  # uniform over 400, 500, 600


def test_same_seed_same_table_different_seed_different_table():
    kwargs = dict(family="fresh_data", n_ini=20, n_real=10, n_synthetic=10, seeds=3, generations=4)
    for path in ("samples", "statistics"):
        a = run_loop(LoopConfig(seed=7, path=path, **kwargs), progress=False).table
        b = run_loop(LoopConfig(seed=7, path=path, **kwargs), progress=False).table
        c = run_loop(LoopConfig(seed=8, path=path, **kwargs), progress=False).table
        pd.testing.assert_frame_equal(a, b)
        assert not np.allclose(a.value, c.value)
    mixture = dict(model="mixture", n_ini=100, seeds=2, generations=2, n_components=4)
    a = run_loop(LoopConfig(seed=1, **mixture), progress=False).table
    b = run_loop(LoopConfig(seed=1, **mixture), progress=False).table
    pd.testing.assert_frame_equal(a, b)


def test_table_has_every_generation_seed_and_metric():
    result = run_loop(LoopConfig(seeds=3, generations=5, n_ini=20), progress=False)
    table = result.table
    assert list(table.columns) == [
        "family",
        "model",
        "lam",
        "seed",
        "replicate",
        "generation",
        "metric",
        "value",
        "code",
    ]
    assert len(table) == 3 * 5 * 4
    assert (table.seed == 0).all()
    assert sorted(table.replicate.unique()) == [0, 1, 2]
    assert sorted(table.generation.unique()) == [1, 2, 3, 4, 5]
    first = table[(table.generation == 1) & (table.metric == "mean_drift")]
    assert (first.value == 0).all()


def _moment_check(values, expected, n_sigma=4.5):
    mean, se = values.mean(), values.std(ddof=1) / np.sqrt(len(values))
    assert abs(mean - expected) < n_sigma * se + 1e-12, (mean, expected, se)


@pytest.mark.parametrize("lam", [1.0, 0.7])
@pytest.mark.parametrize("path", ["statistics", "samples"])
def test_analytic_trace_and_drift_of_the_fully_synthetic_gaussian_loop(lam, path):
    """E tr(Sigma_t) = lam^(t-1) tr(Sigma_r) and E||mu_t - mu_1||^2 = tr(Sigma_r)/n sum lam^tau."""
    d, n, generations = 3, 12, 8
    seeds = 20_000 if path == "statistics" else 5_000
    table = run_loop(
        LoopConfig(dim=d, n_ini=n, generations=generations, lam=lam, seeds=seeds, path=path),
        progress=False,
    ).table
    theory = closed_form_trace_and_drift([lam], generations, dim=d, n=n).set_index("generation")
    for t in (2, 5, generations):
        at = table[table.generation == t]
        traces = at[at.metric == "cov_trace"].value.to_numpy()
        drifts = at[at.metric == "mean_drift"].value.to_numpy()
        _moment_check(traces, theory.cov_trace[t])
        _moment_check(drifts, theory.mean_drift[t])


def test_closed_forms_match_their_sums():
    theory = closed_form_trace_and_drift([1.0, 0.5], 4, dim=3, n=6).set_index(["lam", "generation"])
    assert theory.cov_trace[(0.5, 1)] == 3 and theory.cov_trace[(0.5, 3)] == 3 * 0.25
    assert theory.mean_drift[(1.0, 1)] == 0 and theory.mean_drift[(1.0, 4)] == 3 / 6 * 3
    assert theory.mean_drift[(0.5, 3)] == 3 / 6 * (0.5 + 0.25)


def test_median_of_trace_collapses_even_without_bias():
    table = run_loop(
        LoopConfig(dim=2, n_ini=10, generations=60, lam=1.0, seeds=4000, path="statistics"),
        progress=False,
    ).table
    traces = table[table.metric == "cov_trace"].pivot(
        index="replicate", columns="generation", values="value"
    )
    medians = traces.median()
    assert medians[60] < 0.1 * medians[1]
    assert medians.diff().iloc[1:].lt(0).mean() > 0.8  # falling nearly every generation
    # E tr(Sigma_t) stays at tr(Sigma_r) = 2 (checked above for small t) through a heavy tail:
    # most runs have collapsed, a few carry the mean
    assert (traces[60] < 0.2).mean() > 0.5
    assert traces[60].max() > 10


def test_statistics_and_samples_paths_agree_in_distribution():
    kwargs = dict(
        family="fresh_data",
        dim=4,
        n_ini=30,
        n_real=10,
        n_synthetic=30,
        lam=0.8,
        generations=6,
        seeds=6000,
        synthetic_source="memory",
        memory=2,
    )
    tables = [
        run_loop(LoopConfig(path=p, **kwargs), progress=False).table
        for p in ("samples", "statistics")
    ]
    for metric in ("w2_squared", "cov_trace", "mean_error"):
        a, b = (t[(t.generation == 6) & (t.metric == metric)].value.to_numpy() for t in tables)
        se = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4.5 * se, metric


def test_model_settings_are_named_as_the_models_arguments():
    """A setting documented for one model ("flow: ...") is that model's argument, by name."""
    import dataclasses
    import inspect

    from madutils.loops.batched import MODEL_CLASSES
    from madutils.loops.image_config import ImageLoopConfig
    from madutils.loops.images import MODEL_CLASSES as IMAGE_MODEL_CLASSES

    checked = 0
    for settings_class, classes in (
        (LoopConfig, MODEL_CLASSES),
        (ImageLoopConfig, IMAGE_MODEL_CLASSES),
    ):
        for field in dataclasses.fields(settings_class):
            owner = field.metadata["help"].split(":")[0]
            if owner in classes and field.name != "path":  # path: how the loop runs, not a model
                arguments = inspect.signature(classes[owner].__init__).parameters
                assert field.name in arguments, (settings_class.__name__, field.name, owner)
                checked += 1
    assert checked >= 12  # flow's 4, ddpm's and wgan's
