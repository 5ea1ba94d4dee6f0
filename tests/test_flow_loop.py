"""The normalizing flow in the loops, and the tail metrics it is judged by."""

from __future__ import annotations

import pytest
import torch

from madutils.data.distributions import Rosenbrock
from madutils.loops.batched import run_loop
from madutils.loops.config import LoopConfig
from madutils.metrics.tails import marginal_wasserstein, real_quantile, tail_share

TINY_FLOW = dict(
    model="flow",
    n_ini=400,
    n_eval=400,
    generations=3,
    seeds=2,
    epochs=2,
    hidden=16,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tail_share_of_real_samples_is_the_quantile_complement(rng):
    real = Rosenbrock().sample(20000, n_seeds=2, rng=rng)
    threshold = real_quantile(real[:, :10000], 0.99)
    share = tail_share(real[:, 10000:], threshold)
    assert share.shape == (2,)
    assert torch.all((share > 0.006) & (share < 0.014))
    shrunk = real[:, 10000:] * torch.tensor([1.0, 0.7], dtype=real.dtype)
    assert torch.all(tail_share(shrunk, threshold) < 0.004)


def test_marginal_wasserstein_of_a_shift_is_the_shift(rng):
    real = Rosenbrock().sample(500, n_seeds=1, rng=rng)
    shifted = real + torch.tensor([0.5, 0.0], dtype=real.dtype)
    torch.testing.assert_close(
        marginal_wasserstein(real, shifted), torch.tensor([0.25], dtype=real.dtype)
    )
    assert float(marginal_wasserstein(real, real)) == 0.0
    with pytest.raises(ValueError, match="same number of samples"):
        marginal_wasserstein(real, real[:, :10])
    with pytest.raises(ValueError, match="real must be a tensor of shape"):
        marginal_wasserstein(real[0], real)


def test_flow_loop_records_likelihood_and_tails_and_resumes(tmp_path):
    config = LoopConfig(**TINY_FLOW, lam=0.75)
    assert config.resolved().data == "rosenbrock"
    in_memory = run_loop(config, None, progress=False).table
    assert set(in_memory.metric) == {
        "heldout_nll",
        "tail_share",
        "marginal_w1",
        "precision",
        "recall",
    }
    run_loop(
        LoopConfig(**{**TINY_FLOW, "generations": 2}, lam=0.75),
        tmp_path,
        progress=False,
    )
    resumed = run_loop(config, tmp_path, progress=False).table
    key = ["replicate", "generation", "metric"]
    a = in_memory.sort_values(key).value.to_numpy()
    b = resumed.sort_values(key).value.to_numpy()
    assert (a == b).all()


def test_sampling_bias_loses_the_tails_faster():
    tables = {
        lam: run_loop(LoopConfig(**TINY_FLOW, lam=lam), None, progress=False).table
        for lam in (1.0, 0.5)
    }
    last = {
        (lam, metric): t[(t.metric == metric) & (t.generation == 3)].value.mean()
        for lam, t in tables.items()
        for metric in ("tail_share", "marginal_w1")
    }
    assert last[(0.5, "tail_share")] <= last[(1.0, "tail_share")]
    assert last[(0.5, "tail_share")] < 0.005
    assert last[(0.5, "marginal_w1")] > last[(1.0, "marginal_w1")]


@pytest.mark.parametrize("name", ["n_layers", "hidden", "epochs", "batch_size"])
def test_bad_flow_settings_name_the_parameter(name):
    with pytest.raises(ValueError, match=name):
        LoopConfig(model="flow", **{name: 0})


def test_kept_samples_are_the_snapshots_of_the_same_models(tmp_path):
    from madutils.analysis import sample_snapshots

    config = LoopConfig(**TINY_FLOW, lam=0.75)
    result = run_loop(config, tmp_path, progress=False, keep_samples=True)
    kept = result.snapshots([1, 3])
    recomputed = sample_snapshots(config, [1, 3], n=config.n_eval)
    for generation in (1, 3):
        assert kept[generation].shape == (400, 2)
        assert (kept[generation] == recomputed[generation]).all()
    with pytest.raises(FileNotFoundError, match="keep_samples"):
        run_loop(LoopConfig(**TINY_FLOW, lam=0.5), tmp_path, progress=False).snapshots([1])


def test_stored_runs_record_seconds_per_generation(tmp_path):
    result = run_loop(LoopConfig(**TINY_FLOW), tmp_path, progress=False)
    import pandas as pd

    timings = pd.read_csv(result.run_dir / "timings.csv")
    assert list(timings.generation) == [1, 2, 3]
    assert (timings.fit_seconds > 0).all() and (timings.measure_seconds > 0).all()
