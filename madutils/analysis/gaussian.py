"""Gaussian loops looked at closely: parameter paths, sample snapshots and whole fresh-data grids.

The notebooks stay thin: each figure's data comes from one call here.

- :func:`closed_form_trace_and_drift`: the expected total variance and squared mean drift of
  the fully synthetic Gaussian loop (the paper's Section 3.1), for the book and the tests;
- :func:`gaussian_paths`: the fitted means and covariance traces of every generation (E1).
- :func:`sample_snapshots`: samples of chosen generations, for scatter plots.
- :func:`fresh_data_limits`: limiting distances of many fresh-data Gaussian loops, all cells
  of an (n_real, n_synthetic, lambda) grid simulated as one batch with the exact statistics
  path; :func:`effective_sample_sizes` turns them into n_e / n_r (E6b, E8's Gaussian analogue).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from madutils._validation import check_positive_int
from madutils.data.distributions import GaussianDistribution
from madutils.linalg import psd_factor
from madutils.loops.batched import iterate_loop
from madutils.loops.config import LoopConfig
from madutils.metrics.effective import effective_sample_size
from madutils.models.gaussian_statistics import draw_gaussian_statistics
from madutils.rng import BatchedStream, stream

__all__ = [
    "closed_form_trace_and_drift",
    "effective_sample_sizes",
    "fresh_data_limits",
    "gaussian_paths",
    "sample_snapshots",
]


def closed_form_trace_and_drift(
    lams, generations: int, *, dim: int, n: int, trace_real: float | None = None
) -> pd.DataFrame:
    r"""Expected total variance and squared mean drift of the fully synthetic Gaussian loop.

    With generation 1 the fit to ``n`` real samples of ``P_r`` (total variance
    ``tr Sigma_r``, ``dim`` by default: the identity) and every later generation a fit to ``n``
    samples of the previous Gaussian with covariance scaled by ``lam``,

    .. math::

        E\,\mathrm{tr}\,\Sigma_t = \lambda^{t-1}\,\mathrm{tr}\,\Sigma_r, \qquad
        E\,\|\mu_t - \mu_1\|^2 = \frac{\mathrm{tr}\,\Sigma_r}{n}
        \sum_{\tau=1}^{t-1} \lambda^\tau .

    Returns
    -------
    pandas.DataFrame
        Columns ``lam, generation, cov_trace, mean_drift`` for generations ``1..generations``.
    """
    generations = check_positive_int(generations, "generations")
    dim = check_positive_int(dim, "dim")
    n = check_positive_int(n, "n")
    trace_real = float(dim) if trace_real is None else float(trace_real)
    t = np.arange(1, generations + 1)
    frames = []
    for lam in np.atleast_1d(lams):
        lam = float(lam)
        powers = lam ** np.arange(1, generations)  # lambda^1 .. lambda^(T-1)
        drift_sums = np.concatenate([[0.0], np.cumsum(powers)])
        frames.append(
            pd.DataFrame(
                {
                    "lam": lam,
                    "generation": t,
                    "cov_trace": trace_real * lam ** (t - 1),
                    "mean_drift": trace_real / n * drift_sums,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def gaussian_paths(config: LoopConfig) -> dict[str, np.ndarray]:
    """Fitted means and covariance traces of every generation of a Gaussian loop.

    Returns
    -------
    dict
        ``"mean"``: shape (generations, seeds, dim); ``"trace"``: shape (generations, seeds).
    """
    if config.model != "gaussian":
        raise ValueError(f"gaussian_paths needs model='gaussian'; got {config.model!r}")
    means, traces = [], []
    for _, model, _ in iterate_loop(config):
        means.append(model.mean_.cpu().numpy())
        traces.append(torch.diagonal(model.covariance_, dim1=-2, dim2=-1).sum(-1).cpu().numpy())
    return {"mean": np.stack(means), "trace": np.stack(traces)}


def sample_snapshots(
    config: LoopConfig, generations, *, n: int = 1000, seed_index: int = 0
) -> dict[int, np.ndarray]:
    """Samples (drawn with the loop's lambda) of the models of the chosen generations.

    Parameters
    ----------
    config : LoopConfig
    generations : iterable of int
        Generations to show (each between 1 and ``config.generations``).
    n : int
        Samples per snapshot.
    seed_index : int
        Which replicate to show.

    Returns
    -------
    dict
        Generation to an array of shape ``(n, dim)``.
    """
    wanted = sorted(set(int(g) for g in generations))
    if not wanted or wanted[0] < 1 or wanted[-1] > config.generations:
        raise ValueError(f"generations must lie in 1..{config.generations}; got {wanted}")
    if not 0 <= seed_index < config.seeds:
        raise ValueError(f"seed_index must be in 0..{config.seeds - 1}; got {seed_index}")
    out = {}
    for generation, model, _ in iterate_loop(dataclasses.replace(config, generations=wanted[-1])):
        if generation in wanted:
            device = config.resolved().device
            rng = stream(config.seed, generation, BatchedStream.SNAPSHOT, device=device)
            out[generation] = model.sample(n, config.lam, rng=rng)[seed_index].cpu().numpy()
    return out


def _grid(n_real, n_synthetic, lam, cells=None) -> pd.DataFrame:
    if cells is None:
        product = itertools.product(
            np.atleast_1d(n_real), np.atleast_1d(n_synthetic), np.atleast_1d(lam)
        )
        cells = pd.DataFrame(list(product), columns=["n_real", "n_synthetic", "lam"])
    else:
        missing = {"n_real", "n_synthetic", "lam"} - set(cells.columns)
        if missing:
            raise ValueError(
                f"cells must have the columns n_real, n_synthetic, lam; missing {missing}"
            )
        cells = cells.reset_index(drop=True).copy()
    for name in ("n_real", "n_synthetic"):
        if (cells[name] < 0).any() or (cells[name] % 1 != 0).any():
            raise ValueError(f"{name} must hold non-negative integers")
    if (cells.n_real < 1).any():
        raise ValueError("n_real must be >= 1 in every cell")
    if ((cells.lam <= 0) | (cells.lam > 1)).any():
        raise ValueError("lam must lie in (0, 1] in every cell")
    return cells.astype({"n_real": int, "n_synthetic": int, "lam": float})


def fresh_data_limits(
    n_real=None,
    n_synthetic=None,
    lam=None,
    *,
    cells: pd.DataFrame | None = None,
    dim: int,
    generations: int,
    tail: int,
    seeds: int,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Limiting squared W2 of fresh-data Gaussian loops over a grid of settings.

    Every cell of the grid ``n_real x n_synthetic x lam`` (or every row of ``cells``, a table
    with those three columns and any others, which are kept) is the loop of
    :func:`madutils.loops.batched.run_loop` with ``family="fresh_data"``, ``n_ini = n_real``,
    ``synthetic_source="last"``, ``path="statistics"`` and P_r = N(0, I_dim); all cells and seeds
    are simulated together as one batch (per-row sample counts and lambda). The limit is the
    mean of W2^2 over the seeds and the last ``tail`` generations.

    Returns
    -------
    pandas.DataFrame
        One row per cell: ``n_real, n_synthetic, lam, limit, limit_se, drift`` where
        ``limit_se`` is the standard error across seeds and ``drift`` the relative difference
        between the two halves of the tail window (near 0 once the loop has converged).
    """
    dim = check_positive_int(dim, "dim")
    generations = check_positive_int(generations, "generations")
    tail = check_positive_int(tail, "tail")
    seeds = check_positive_int(seeds, "seeds")
    if tail > generations:
        raise ValueError(f"tail must be at most generations ({generations}); got {tail}")
    cells = _grid(n_real, n_synthetic, lam, cells)
    if (cells.n_real + cells.n_synthetic < 2).any():
        raise ValueError("every cell needs n_real + n_synthetic >= 2")
    rows = len(cells) * seeds
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    per_row = lambda column: torch.as_tensor(  # noqa: E731
        np.repeat(cells[column].to_numpy(), seeds), dtype=torch.float64, device=dev
    )
    n_r, n_s, lam_rows = per_row("n_real"), per_row("n_synthetic"), per_row("lam")
    zero_mean = torch.zeros(rows, dim, dtype=torch.float64, device=dev)
    identity = torch.eye(dim, dtype=torch.float64, device=dev).expand(rows, dim, dim)
    history = torch.empty(tail, rows, dtype=torch.float64)
    mean = cov = None
    for generation in tqdm(range(1, generations + 1), desc="fresh-data grid", disable=not progress):
        rng = stream(seed, generation, BatchedStream.TRAINING_DATA, device=dev)
        stats = draw_gaussian_statistics(n_r, zero_mean, identity, rng=rng)
        if generation > 1:
            factor = psd_factor(cov) * lam_rows.sqrt().view(-1, 1, 1)
            stats = stats.combine(draw_gaussian_statistics(n_s, mean, factor, rng=rng))
        mean, cov = stats.mean, stats.covariance()
        if generation > generations - tail:
            eig = torch.linalg.eigvalsh(cov).clamp_min(0)
            w2 = (mean**2).sum(-1) + ((eig.sqrt() - 1) ** 2).sum(-1)
            history[generation - (generations - tail) - 1] = w2.cpu()
    per_seed = history.mean(0).view(len(cells), seeds)
    half = tail // 2
    first = history[:half].mean(0).view(len(cells), seeds).mean(1) if half else per_seed.mean(1)
    second = history[half:].mean(0).view(len(cells), seeds).mean(1)
    cells["limit"] = per_seed.mean(1).numpy()
    cells["limit_se"] = (per_seed.std(1) / seeds**0.5).numpy()
    cells["drift"] = ((second - first) / second).numpy()
    return cells


def effective_sample_sizes(
    limits: pd.DataFrame, *, dim: int, n_seeds: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Add ``ratio = n_e / n_real`` to a table of :func:`fresh_data_limits`."""
    out = limits.copy()
    out["ratio"] = np.nan
    rng = torch.Generator().manual_seed(seed)
    distribution = GaussianDistribution(dim)
    for n_real, group in out.groupby("n_real"):
        out.loc[group.index, "ratio"] = effective_sample_size(
            group["limit"].to_numpy(), int(n_real), distribution, n_seeds=n_seeds, rng=rng
        )
    out["admissible"] = out["ratio"] >= 1
    return out
