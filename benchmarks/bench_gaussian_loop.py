"""Fully synthetic Gaussian loop: batched madutils paths against a per-seed NumPy loop.

The NumPy loop is how peer code runs the experiment: one seed at a time, each generation
fitting the sample mean and covariance, factorising it with Cholesky and drawing the next
training set. madutils runs all seeds as one batched program, either drawing the samples
("samples" path) or drawing their exact sufficient statistics ("statistics" path).

Run: ``python benchmarks/bench_gaussian_loop.py [--quick]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import best_of, write_table

from madutils.loops.batched import run_loop
from madutils.loops.config import LoopConfig


def numpy_per_seed(seeds: int, dim: int, n: int, generations: int, lam: float = 1.0):
    traces = np.empty((seeds, generations))
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, dim))
        for t in range(generations):
            mean = X.mean(0)
            cov = np.cov(X, rowvar=False)
            traces[seed, t] = np.trace(cov)
            try:
                factor = np.linalg.cholesky(lam * cov)
            except np.linalg.LinAlgError:  # a collapsed covariance
                w, v = np.linalg.eigh(lam * cov)
                factor = v * np.sqrt(np.clip(w, 0, None))
            X = mean + rng.standard_normal((n, dim)) @ factor.T
    return traces


def madutils_loop(path, seeds, dim, n, generations, family="fully_synthetic", n_real=None):
    config = LoopConfig(
        family=family,
        dim=dim,
        n_ini=n,
        n_real=n_real,
        n_synthetic=n if n_real is None else n - n_real,
        generations=generations,
        seeds=seeds,
        path=path,
        metrics=("cov_trace",),
    )
    return run_loop(config, progress=False).table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    seeds, dim, n, gens = (100, 2, 100, 20) if args.quick else (1000, 2, 100, 100)
    reps = 1 if args.quick else 3
    t_numpy = best_of(lambda: numpy_per_seed(seeds, dim, n, gens), reps)
    t_samples = best_of(lambda: madutils_loop("samples", seeds, dim, n, gens), reps)
    t_stats = best_of(lambda: madutils_loop("statistics", seeds, dim, n, gens), reps)
    # sanity: the three agree on E tr(Sigma_t) = tr(Sigma_r) = dim at the last generation
    check = [
        numpy_per_seed(seeds, dim, n, gens)[:, -1].mean(),
        *(
            madutils_loop(p, seeds, dim, n, gens).query(f"generation == {gens}").value.mean()
            for p in ("samples", "statistics")
        ),
    ]
    rows = [
        ["NumPy, one seed at a time", f"{t_numpy:.3f}", "1.0", f"{check[0]:.3f}"],
        [
            "madutils samples path (batched)",
            f"{t_samples:.3f}",
            f"{t_numpy / t_samples:.1f}",
            f"{check[1]:.3f}",
        ],
        [
            "madutils statistics path (batched)",
            f"{t_stats:.3f}",
            f"{t_numpy / t_stats:.1f}",
            f"{check[2]:.3f}",
        ],
    ]
    write_table(
        "gaussian_loop" + ("_quick" if args.quick else ""),
        f"Fully synthetic Gaussian loop: {seeds} seeds, d = {dim}, n = {n}, {gens} generations",
        [
            "implementation",
            "seconds (median)",
            "speed-up vs NumPy",
            f"mean tr(Sigma_{gens}) (expect {dim})",
        ],
        rows,
        notes="madutils timings include its per-generation bookkeeping (results table rows).",
    )

    seeds, dim, n, gens = (10, 100, 2000, 5) if args.quick else (100, 100, 10_000, 50)
    t_samples = best_of(
        lambda: madutils_loop("samples", seeds, dim, n, gens, "fresh_data", n // 2), 1
    )
    t_stats = best_of(
        lambda: madutils_loop("statistics", seeds, dim, n, gens, "fresh_data", n // 2), 1
    )
    write_table(
        "gaussian_fast_path" + ("_quick" if args.quick else ""),
        f"Fresh-data Gaussian loop: {seeds} seeds, d = {dim}, n = {n} per generation "
        f"({n // 2} real + {n // 2} synthetic), {gens} generations",
        ["path", "seconds", "speed-up"],
        [
            ["samples", f"{t_samples:.2f}", "1.0"],
            ["statistics", f"{t_stats:.2f}", f"{t_samples / t_stats:.1f}"],
        ],
    )


if __name__ == "__main__":
    main()
