"""The command line and the error messages for bad settings."""

import numpy as np
import pandas as pd
import pytest
import torch

from madutils.cli import main
from madutils.data.distributions import GaussianDistribution
from madutils.loops.batched import run_loop
from madutils.loops.config import LoopConfig
from madutils.metrics.effective import effective_sample_size, limiting_distance


def test_loop_command_runs_and_prints_the_run_directory(tmp_path, capsys):
    argv = [
        "loop",
        "--family",
        "fresh_data",
        "--model",
        "gaussian",
        "--dim",
        "5",
        "--n-ini",
        "100",
        "--n-real",
        "100",
        "--n-synthetic",
        "900",
        "--generations",
        "4",
        "--lam",
        "0.8",
        "--seeds",
        "10",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    run_dir = out.strip().splitlines()[-1].removeprefix("run directory: ")
    table = pd.read_csv(f"{run_dir}/results.csv")
    assert len(table) == 10 * 4 * 4 and set(table.lam) == {0.8}
    assert "w2_squared" in out


def test_help_lists_allowed_values(capsys):
    with pytest.raises(SystemExit):
        main(["loop", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for allowed in (
        "fully_synthetic,synthetic_augmentation,fresh_data",
        "gaussian,mixture,flow,ddpm,wgan",
        "last,accumulate,memory",
        "samples,statistics",
        "(0, 1]",
    ):
        assert allowed in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--family", "bogus"], "invalid choice: 'bogus'"),
        (["--lam", "1.5"], "lam must be in (0, 1]"),
        (["--generations", "0"], "generations must be a positive integer"),
        (["--synthetic-source", "memory", "--memory", "0"], "memory (K) must be a positive"),
        (["--n-layers", "x"], "argument --n-layers: expected an integer"),
        (["--model", "ddpm", "--path", "statistics"], "--path is not an option of --model ddpm"),
    ],
)
def test_loop_command_reports_bad_input(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["loop", "--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("madutils loop: error: ")


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(lam=0.0), r"lam must be in \(0, 1\]"),
        (dict(lam=1.01), r"lam must be in \(0, 1\]"),
        (dict(lam=float("nan")), "lam must be a number"),
        (dict(n_ini=0), "n_ini must be a positive integer"),
        (dict(generations=-3), "generations must be a positive integer"),
        (dict(seeds=0), "seeds must be a positive integer"),
        (dict(family="fresh_data", n_real=-1, n_synthetic=5), "n_real must be a non-negative"),
        (dict(family="fresh_data", n_real=0, n_synthetic=5), "n_real must be >= 1"),
        (dict(family="fresh_data", n_real=5), "needs n_real and n_synthetic"),
        (dict(n_synthetic=0), "n_synthetic must be >= 1 in a fully_synthetic loop"),
        (dict(n_real=5), "n_real must be 0 in a fully_synthetic loop"),
        (dict(family="synthetic_augmentation", n_real=7), "n_real must equal n_ini"),
        (dict(family="fully_sythetic"), "family must be one of 'fully_synthetic'"),
        (dict(model="vae"), "model must be one of 'gaussian', 'mixture'"),
        (dict(synthetic_source="all"), "synthetic_source must be one of 'last', 'accumulate'"),
        (dict(synthetic_source="memory", memory=0), r"memory \(K\) must be a positive integer"),
        (
            dict(family="fresh_data", n_total=100, real_fraction=0.0),
            r"real_fraction \(p\) must be in \(0, 1\]",
        ),
        (
            dict(family="fresh_data", n_total=100, real_fraction=1.5),
            r"real_fraction \(p\) must be in \(0, 1\]",
        ),
        (dict(family="fresh_data", n_total=100), "must be given together"),
        (dict(n_total=100, real_fraction=0.5), "describe a fresh_data pool"),
        (dict(path="statistics", model="mixture"), "path='statistics' needs model='gaussian'"),
        (dict(model="mixture", dim=3), "dim must be 2"),
        (dict(model="mixture", n_ini=10), "at least 25 samples"),
        (dict(model="mixture", n_ini=100, k=100), "k must be smaller than n_eval"),
        (dict(metrics=("fid",)), "metrics must be one of"),
        (
            dict(model="mixture", data="rosenbrock", metrics=("modes_covered",)),
            "metrics must be one of",
        ),
        (dict(device="tpu"), "device must be one of 'cpu', 'cuda', 'auto'"),
    ],
)
def test_bad_settings_name_the_parameter(settings, match):
    with pytest.raises(ValueError, match=match):
        LoopConfig(**settings)


def test_effective_sample_size_of_a_purely_real_loop_is_one():
    """With no synthetic data, the fresh-data loop is a fit to n_real real samples: n_e = n_r."""
    n_real, dim = 50, 10
    table = run_loop(
        LoopConfig(
            family="fresh_data",
            dim=dim,
            n_ini=n_real,
            n_real=n_real,
            n_synthetic=0,
            generations=5,
            seeds=2000,
            path="statistics",
        ),
        progress=False,
    ).table
    limit = limiting_distance(table, tail=5)
    ratio = effective_sample_size(
        limit, n_real, GaussianDistribution(dim), n_seeds=2000, rng=torch.Generator().manual_seed(0)
    )
    assert ratio == pytest.approx(1.0, abs=0.05)


def test_effective_sample_size_orders_loops_by_their_limit():
    """More synthetic data at lam = 1 helps a little; a strong bias hurts (the paper's Fig. 11)."""
    common = dict(
        family="fresh_data",
        dim=10,
        n_ini=50,
        n_real=50,
        generations=60,
        seeds=400,
        path="statistics",
    )
    rng = torch.Generator().manual_seed(0)
    ratios = {}
    for n_synthetic, lam in ((0, 1.0), (50, 1.0), (500, 0.7)):
        table = run_loop(
            LoopConfig(n_synthetic=n_synthetic, lam=lam, **common), progress=False
        ).table
        limit = limiting_distance(table, tail=20)
        ratios[(n_synthetic, lam)] = float(
            effective_sample_size(limit, 50, GaussianDistribution(10), n_seeds=1000, rng=rng)
        )
    assert ratios[(50, 1.0)] > ratios[(0, 1.0)] * 1.05
    assert ratios[(500, 0.7)] < 0.5


def test_effective_sample_size_rejects_bad_distances():
    with pytest.raises(ValueError, match="distance must be positive"):
        effective_sample_size(np.array([0.0]), 10, GaussianDistribution(2), rng=torch.Generator())
