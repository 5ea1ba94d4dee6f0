# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How much is synthetic data worth? The effective sample size
#
# ## Overview
#
# The [fresh data loop](fresh_data.ipynb) settles at a limiting distance to $P_r$ that depends only on $n_r$, $n_s$ and $\lambda$.
# The paper turns that limit into a price (its Figures 11 and 12), the *effective sample size* $n_e$.
# It is the number of real samples whose Gaussian fit is, in expectation, as close to $P_r$ as the loop's limit.
# If $n_e / n_r \ge 1$ the synthetic data helped (the setting is *admissible*); if it is below 1, the loop would have been better off with its real data alone.
# This chapter maps $n_e/n_r$ over grids of $(n_r, n_s)$ and $(\lambda, n_s)$.
#
# | Concept | Importance |
# |---|---|
# | [Background: effective sample size](../background.md) | necessary |
# | [The fresh data loop](fresh_data.ipynb) | necessary |

# %% [markdown]
# ## Imports and parameters

# %%
import time

import numpy as np
import pandas as pd

from madutils import plotting
from madutils.analysis import effective_sample_sizes, fresh_data_limits
from madutils.analysis.claims import Claim, glue_value, record_claims
from madutils.analysis.verdicts import judge

plotting.set_style()

# %% tags=["parameters"]
dim = 20  # dimension of P_r, N(0, I) (the paper: 100)
grid_n_real = [100, 316, 1000, 3162, 10000]  # fresh real samples per generation (Fig. 11 rows)
grid_n_synthetic = [100, 316, 1000, 3162, 10000]  # synthetic samples per generation
grid_lams = [0.7, 0.85, 1.0]  # sampling biases of Fig. 11
lam_values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]  # sampling biases of Fig. 12
lam_n_real = [100, 250, 1000]  # fresh real samples per generation in Fig. 12
generations = 300  # generations simulated per cell (the loops must reach their limit)
tail = 100  # last generations averaged for the limit
seeds = 20  # replicates per cell
curve_seeds = 2000  # Monte-Carlo replicates of the real-fit curve used to convert limits into n_e
seed = 0  # random seed of the runs
device = "auto"  # "auto" uses a CUDA GPU when there is one, else the CPU
output_dir = "executed"  # where figures and the claim summary go (set by madutils run)

# %% [markdown]
# ## Over real and synthetic sample sizes
#
# Every cell is a fresh data loop with $n_{\text{ini}} = n_r$, run for all replicates and cells at once as one batch with the exact statistics path.
# Its limit is the mean squared $W_2$ distance to $P_r$ over the last generations.
# It is turned into $n_e$ by inverting the expected distance of a fit to $n$ real samples, estimated by Monte Carlo over a range of $n$.

# %%
start = time.perf_counter()  # wall-clock time of this grid, for the exercises
grid = effective_sample_sizes(
    fresh_data_limits(
        grid_n_real,
        grid_n_synthetic,
        grid_lams,
        dim=dim,
        device=device,
        generations=generations,
        tail=tail,
        seeds=seeds,
        seed=seed,
        progress=False,
    ),
    dim=dim,
    n_seeds=curve_seeds,
    seed=seed,
)
grid_seconds = time.perf_counter() - start

# %% mystnb={"figure": {"caption": "Effective sample size $n_e/n_r$ of the fresh data loop over $(n_r, n_s)$ for three values of $\\lambda$ (blue: synthetic data helped, red: it hurt; dots: admissible, $n_e/n_r \\ge 1$). The paper's Figure 11.", "name": "fig-ess-grid"}, "image": {"alt": "Three heat maps of the effective sample size ratio over real and synthetic sample sizes, one per lambda, blue where synthetic data helped and red where they hurt, with dots on admissible cells."}}
fig = plotting.phase_diagram(grid, x="n_synthetic", y="n_real", col="lam")
plotting.save_figure(fig, output_dir, "ess_grid")
# %% tags=["remove-input"]
unbiased = grid[grid.lam == 1.0]
biased = grid[grid.lam == min(grid_lams)]
best_unbiased = float(unbiased.ratio.max())
admissible_unbiased = float(unbiased.admissible.mean())
worst_biased = float(biased.ratio.min())
largest_admissible = {
    int(n_r): (int(g[g.admissible].n_synthetic.max()) if g.admissible.any() else 0)
    for n_r, g in biased.groupby("n_real")
}
admissible_sizes = [v for v in largest_admissible.values() if v > 0]
admissible_growth = admissible_sizes[-1] / admissible_sizes[0] if admissible_sizes else 1.0
n_real_growth = max(grid_n_real) / min(grid_n_real)
glue_value("ess_best_unbiased", best_unbiased)
glue_value("ess_admissible_unbiased_pct", 100 * admissible_unbiased)
glue_value("ess_worst_biased", worst_biased)
glue_value("ess_biased_lam", min(grid_lams))
glue_value("ess_max_drift_pct", 100 * float(grid["drift"].abs().max()))
v_worth = judge("ess_synthetic_worth", best_unbiased=best_unbiased, worst_biased=worst_biased)
v_growth = judge(
    "ess_admissible_growth", admissible_growth=admissible_growth, n_real_growth=n_real_growth
)
glue_value("ess_rule_synthetic_worth", v_worth.rule)
glue_value("ess_verdict_synthetic_worth", v_worth.verdict)
glue_value("ess_rule_admissible_growth", v_growth.rule)
glue_value("ess_verdict_admissible_growth", v_growth.verdict)
pd.DataFrame(
    {
        "n_r": list(largest_admissible),
        f"largest admissible n_s at λ = {min(grid_lams)}": [
            v if v > 0 else "none" for v in largest_admissible.values()
        ],
    }
).set_index("n_r")

# %% [markdown]
# At $\lambda = 1$, {glue:text}`ess_admissible_unbiased_pct:.0f`% of the cells are admissible, and synthetic data are worth up to {glue:text}`ess_best_unbiased:.2f` times the fresh real data.
# With $\lambda$ = {glue:text}`ess_biased_lam` the picture flips as soon as the synthetic part dominates: the worst cell keeps only {glue:text}`ess_worst_biased:.2f` of its real data's worth.
# Verdict rule: {glue:text}`ess_rule_synthetic_worth`.
# Verdict: **{glue:text}`ess_verdict_synthetic_worth`**.
#
# The table above lists the largest admissible $n_s$ for each $n_r$ at that bias.
# It does not grow in proportion to $n_r$.
# This is the paper's warning that more real data does not license proportionally more biased synthetic data.
# Verdict rule: {glue:text}`ess_rule_admissible_growth`.
# Verdict: **{glue:text}`ess_verdict_admissible_growth`**.
#
# The loops were run long enough that the mean over the first and second halves of the averaging window differ by at most {glue:text}`ess_max_drift_pct:.1f`%.
#
# ## Over the bias and the synthetic sample size

# %%
start = time.perf_counter()
lam_grid = effective_sample_sizes(
    fresh_data_limits(
        lam_n_real,
        grid_n_synthetic,
        lam_values,
        dim=dim,
        device=device,
        generations=generations,
        tail=tail,
        seeds=seeds,
        seed=seed + 1,
        progress=False,
    ),
    dim=dim,
    n_seeds=curve_seeds,
    seed=seed,
)
lam_grid_seconds = time.perf_counter() - start

# %% mystnb={"figure": {"caption": "Effective sample size $n_e/n_r$ over $(\\lambda, n_s)$ for three values of $n_r$ (dots: admissible). Only mild biases with modest amounts of synthetic data are admissible. The paper's Figure 12.", "name": "fig-ess-lambda"}, "image": {"alt": "Three heat maps of the effective sample size ratio over the sampling bias and the synthetic sample size, one per number of real samples, with dots on the few admissible cells at mild bias."}}
fig = plotting.phase_diagram(lam_grid, x="n_synthetic", y="lam", col="n_real", log_y=False)
plotting.save_figure(fig, output_dir, "ess_lambda")
# %% tags=["remove-input"]
strongest = {
    int(n_r): float(g[g.admissible].lam.min()) if g.admissible.any() else np.nan
    for n_r, g in lam_grid.groupby("n_real")
}
glue_value("ess_strongest_bias", min(v for v in strongest.values() if not np.isnan(v)))
glue_value("ess_grid_seconds", grid_seconds)
glue_value("ess_lam_grid_seconds", lam_grid_seconds)
glue_value("ess_total_seconds", grid_seconds + lam_grid_seconds)
pd.DataFrame(
    {
        "n_r": list(strongest),
        "strongest admissible λ": ["none" if np.isnan(v) else v for v in strongest.values()],
    }
).set_index("n_r")

# %% [markdown]
# The strongest bias that is still admissible somewhere in the grid is $\lambda$ = {glue:text}`ess_strongest_bias:.1f`; below it, synthetic data hurt for every $n_s$.

# %% tags=["remove-input"]
record_claims(
    output_dir,
    "effective_sample_size",
    [
        Claim.judged(
            claim="Modest amounts of unbiased synthetic data raise the effective sample size; too much synthetic data hurts when λ < 1.",
            figure="Fig. 11",
            result=(
                f"d = {dim} (paper 100): max n_e/n_r at λ = 1 is {best_unbiased:.2f}, "
                f"{admissible_unbiased:.0%} of cells admissible; min n_e/n_r at λ = {min(grid_lams)} is {worst_biased:.2f}"
            ),
            verdict=v_worth,
        ),
        Claim.judged(
            claim="The admissible amount of biased synthetic data does not grow with n_r.",
            figure="Figs. 11, 12",
            result="largest admissible n_s at λ = {}: {}".format(
                min(grid_lams), ", ".join(f"n_r = {k}: {v}" for k, v in largest_admissible.items())
            ),
            verdict=v_growth,
        ),
    ],
)

# %% [markdown]
# ## Exercises
#
# 1. What should $n_e/n_r$ be in a cell with $n_s = 0$? Add 0 to `grid_n_synthetic` (`madutils run effective_sample_size -p grid_n_synthetic "[0, 100, 1000]"`) and check.
#    This chapter keeps no results store, so a rerun recomputes both grids from scratch.
#    When this page was built, the first grid took {glue:text}`ess_grid_seconds:.1f` s and the second {glue:text}`ess_lam_grid_seconds:.1f` s (measured on the machine that built it).
#    A grid's cost grows roughly with its number of cells, so expect a time of the same order.
#
# :::{admonition} Solution
# :class: dropdown
# Exactly 1 up to Monte-Carlo error: every generation is then a fit to $n_r$ fresh real samples, which is the definition of $n_e = n_r$. (The tests check this.)
# :::
#
# 2. Does the map depend on the dimension? Rerun with `-p dim 100` (the paper's setting).
#    This too recomputes both grids; it is slower than the {glue:text}`ess_total_seconds:.1f` s of this page, because every generation works with larger matrices.
#
# :::{admonition} Solution
# :class: dropdown
# The qualitative picture is the same, but the boundaries move.
# In higher dimension a fit needs more samples before its covariance error is small, so the same $n_r$ and $n_s$ sit in a different part of the curve.
# The gain from unbiased synthetic data and the harm from biased data both change in size.
# :::
#
# ## Summary
#
# In this chapter we:
# - turned the limiting distance of each fresh data loop into an effective sample size;
# - mapped where synthetic data help ($n_e/n_r \ge 1$) over real and synthetic sample sizes and over the sampling bias;
# - saw that unbiased synthetic data help modestly, while biased synthetic data quickly hurt.
#
# **What's next:** the [paper vs this reproduction](paper_vs_reproduction.ipynb) table.
