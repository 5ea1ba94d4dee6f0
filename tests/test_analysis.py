"""The analysis layer: sweeps, Gaussian closed forms and grids, claims, and the plots they feed."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from madutils import plotting  # noqa: E402
from madutils.analysis import (  # noqa: E402
    effective_sample_sizes,
    fresh_data_limits,
    gaussian_paths,
    run_sweep,
    sample_snapshots,
)
from madutils.analysis.claims import Claim, load_claims, record_claims  # noqa: E402
from madutils.loops.batched import run_loop  # noqa: E402
from madutils.loops.config import LoopConfig  # noqa: E402
from madutils.metrics import METRICS  # noqa: E402
from madutils.metrics.effective import limiting_distance  # noqa: E402


def test_batched_grid_matches_run_loop_in_distribution():
    """One cell of the batched engine is the fresh_data loop of run_loop."""
    kwargs = dict(dim=4, generations=30, seeds=3000)
    cell = fresh_data_limits([20], [60], [0.8], tail=10, progress=False, **kwargs)
    table = run_loop(
        LoopConfig(
            family="fresh_data",
            n_ini=20,
            n_real=20,
            n_synthetic=60,
            lam=0.8,
            path="statistics",
            metrics=("w2_squared",),
            **kwargs,
        ),
        progress=False,
    ).table
    per_seed = table[table.generation > 20].groupby("replicate").value.mean()
    reference, se = per_seed.mean(), per_seed.std() / np.sqrt(len(per_seed))
    assert abs(cell.limit.iloc[0] - reference) < 4 * np.hypot(se, cell.limit_se.iloc[0])
    assert limiting_distance(table, tail=10) == pytest.approx(reference)


def test_grid_cells_and_validation():
    cells = fresh_data_limits(
        [10, 20], [0, 30], [1.0, 0.5], dim=2, generations=4, tail=2, seeds=3, progress=False
    )
    assert len(cells) == 8 and {"limit", "limit_se", "drift"} <= set(cells.columns)
    ratios = effective_sample_sizes(cells, dim=2, n_seeds=200)
    assert ratios.ratio.gt(0).all() and ratios.admissible.dtype == bool
    with pytest.raises(ValueError, match="lam must lie in"):
        fresh_data_limits([10], [5], [1.5], dim=2, generations=3, tail=1, seeds=2)
    with pytest.raises(ValueError, match="tail must be at most generations"):
        fresh_data_limits([10], [5], [1.0], dim=2, generations=3, tail=5, seeds=2)
    with pytest.raises(ValueError, match="n_real must be >= 1"):
        fresh_data_limits([0], [5], [1.0], dim=2, generations=3, tail=1, seeds=2)


def test_paths_and_snapshots_follow_the_loop():
    config = LoopConfig(dim=2, n_ini=30, generations=5, seeds=3)
    paths = gaussian_paths(config)
    final = run_loop(config, progress=False).models[-1]
    np.testing.assert_allclose(paths["mean"][-1], final.mean_.numpy())
    assert paths["mean"].shape == (5, 3, 2) and paths["trace"].shape == (5, 3)
    snaps = sample_snapshots(config, [1, 5], n=50)
    assert sorted(snaps) == [1, 5] and snaps[5].shape == (50, 2)
    with pytest.raises(ValueError, match="generations must lie in 1..5"):
        sample_snapshots(config, [6])


def test_sweep_labels_varied_settings(tmp_path):
    sweep = run_sweep(
        LoopConfig(n_ini=20, generations=2, seeds=2),
        tmp_path,
        progress=False,
        lam=[1.0, 0.5],
        synthetic_source=["last", "accumulate"],
    )
    table = sweep.table
    assert set(table.lam) == {1.0, 0.5} and set(table.synthetic_source) == {"last", "accumulate"}
    assert len(sweep.results) == 4 and sweep.result(lam=0.5, synthetic_source="last")
    assert set(sweep.timings.synthetic_source) == {"last", "accumulate"}
    with pytest.raises(ValueError, match="unknown setting"):
        run_sweep(LoopConfig(), lamda=[1.0])
    with pytest.raises(ValueError, match="must be a list"):
        run_sweep(LoopConfig(), lam=1.0)


def test_sweep_cases_are_crossed_with_the_grid():
    cases = [
        dict(family="fully_synthetic"),
        dict(family="synthetic_augmentation", synthetic_source="accumulate"),
    ]
    sweep = run_sweep(
        LoopConfig(n_ini=20, generations=2), None, cases=cases, lam=[1.0, 0.5], progress=False
    )
    runs = sweep.table.groupby(["family", "synthetic_source", "lam"]).size()
    assert len(runs) == 4 and set(sweep.varied) == {"family", "synthetic_source", "lam"}
    # a setting a case leaves at its default is still labelled with its value
    fully = sweep.table[sweep.table.family == "fully_synthetic"]
    assert set(fully.synthetic_source) == {"last"}
    with pytest.raises(ValueError, match="both in cases and as a sweep"):
        run_sweep(LoopConfig(), None, cases=[dict(lam=0.5)], lam=[1.0])
    with pytest.raises(ValueError, match="both in cases and as a sweep"):
        run_sweep(LoopConfig(), None, cases=[{}, dict(lam=0.5)], lam=[1.0])
    with pytest.raises(ValueError, match="unknown setting"):
        run_sweep(LoopConfig(), None, cases=[dict(lamda=0.5)])


def test_sweep_keeps_run_seed_and_replicate_apart():
    sweep = run_sweep(
        LoopConfig(n_ini=20, generations=2, seeds=3), None, progress=False, seed=[0, 1]
    )
    table = sweep.table
    assert set(table.seed) == {0, 1} and set(table.replicate) == {0, 1, 2}
    keys = table[["seed", "replicate", "generation", "metric"]]
    assert not keys.duplicated().any()
    first = table[table.seed == 0].value.to_numpy()
    second = table[table.seed == 1].value.to_numpy()
    assert not np.allclose(first, second)  # two run seeds: two different runs


def test_claims_round_trip_and_verdicts(tmp_path):
    from madutils.analysis.verdicts import judge

    limits = dict(limit_small=10.0, limit_spread=2.0, replicates=3)
    partly = judge("fresh_ddpm_limit", **limits, limit_big=17.0)
    reproduced = judge("fresh_ddpm_limit", **limits, limit_big=11.0)
    record_claims(tmp_path, "b", [Claim.judged("c2", "Fig. 2", "r2", partly)])
    record_claims(tmp_path, "a", [Claim.judged("c1", "Fig. 1", "r1", reproduced)])
    record_claims(tmp_path, "c", [Claim("c3", "Fig. 3", "needs a GPU", "GPU-only")])
    table = load_claims(tmp_path, ["a", "b", "c"])
    assert table.chapter.tolist() == ["a", "b", "c"]
    assert table.verdict.tolist() == ["reproduced", "partly", "GPU-only"]
    assert table.rule.tolist() == [reproduced.rule, partly.rule, ""] and partly.rule
    assert table.evidence.tolist() == [reproduced.evidence, partly.evidence, ""]
    assert "3 replicates" in partly.evidence
    with pytest.raises(ValueError, match="verdict must be one of"):
        Claim("c", "f", "r", "sort of", rule="a rule")
    with pytest.raises(ValueError, match="needs the rule"):
        Claim("c", "f", "r", "reproduced")  # a typed verdict without its rule


def test_figure_records_count_replicate_bands(tmp_path):
    rows = [
        dict(generation=g, metric="fid", value=g + 0.1 * s, lam=lam, seed=s, family="f")
        for g in (1, 2, 3)
        for lam, seeds in ((1.0, 3), (0.5, 1))
        for s in range(seeds)
    ]
    floor = [dict(generation=0, metric="fid", value=0.1 * i, lam=1.0, seed=0) for i in range(3)]
    table = pd.DataFrame(rows + [dict(r, family="f") for r in floor])
    fig = plotting.metric_curves(table, ["fid"], floor=True, errorbar=plotting.REPLICATE_BAND)
    plotting.save_figure(fig, tmp_path, "curves")
    assert (tmp_path / "figures" / "curves.png").is_file()
    record = json.loads((tmp_path / "figures" / "curves.json").read_text())
    assert record == plotting.figure_record(fig)
    # a band for λ = 1 (three replicates), none for λ = 0.5 (one) nor for the floor's span
    assert record["panels"] == [{"title": "FID (LeNet features)", "lines": 4, "bands": 1}]
    single = plotting.metric_curves(table[table.seed == 0], ["fid"], floor=True)
    assert plotting.figure_record(single)["panels"][0]["bands"] == 0


def test_every_metric_has_a_label_and_plots_draw():
    assert set(plotting.METRIC_LABELS) == set(METRICS)
    table = run_loop(LoopConfig(n_ini=20, generations=3, seeds=4), progress=False).table
    plotting.set_style()
    fig = plotting.metric_curves(table, ["w2_squared", "cov_trace"], log_metrics=["cov_trace"])
    assert len(fig.axes) == 2
    cells = pd.DataFrame(
        {
            "n_real": [10, 10, 100, 100],
            "n_synthetic": [10, 100] * 2,
            "lam": 1.0,
            "ratio": [0.5, 1.2, 2.0, 0.9],
        }
    )
    fig = plotting.phase_diagram(cells, x="n_synthetic", y="n_real")
    assert fig.axes
