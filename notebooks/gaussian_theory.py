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
# # Gaussian theory: the fully synthetic loop collapses
#
# ## Overview
#
# The simplest self-consuming loop fits a Gaussian to samples of the previous Gaussian, generation after generation, with no real data after the first fit.
# The paper proves (its Section 3.1 and Appendix A) that the fitted mean performs a martingale random walk and that the fitted covariance converges to zero almost surely, even without sampling bias.
# This chapter checks both facts against many simulated replicates and shows the paradox behind them: the *expected* total variance stays put at $\lambda = 1$ while almost every run collapses.
#
# | Concept | Importance |
# |---|---|
# | [Background: loops and the Gaussian facts](../background.md) | necessary |
# | Wishart distribution, martingales | helpful |
#
# In this project's indexing generation 1 is the fit to $n$ real samples, so the closed forms read
#
# $$
# \mathbb{E}\,\mathrm{tr}\,\Sigma_t = \lambda^{t-1}\,\mathrm{tr}\,\Sigma_r,
# \qquad
# \mathbb{E}\,\|\mu_t-\mu_1\|^2 = \frac{\mathrm{tr}\,\Sigma_r}{n}\sum_{\tau=1}^{t-1}\lambda^\tau .
# $$

# %% [markdown]
# ## Imports and parameters

# %%
import numpy as np
import pandas as pd
import torch

from madutils import plotting
from madutils.analysis import closed_form_trace_and_drift, gaussian_paths, run_sweep
from madutils.analysis.claims import Claim, glue_value, record_claims
from madutils.analysis.verdicts import judge
from madutils.data.distributions import GaussianDistribution
from madutils.loops.config import LoopConfig
from madutils.models import GaussianModel

plotting.set_style()

# %% tags=["parameters"]
dim = 2  # dimension d of the real distribution N(0, I_d)
n_samples = 20  # samples per generation (both n_ini and n_synthetic)
generations = 200  # generations, including the first fit to real data
lams = [1.0, 0.9, 0.7]  # sampling biases lambda to compare (1.0 means unbiased)
seeds = 2000  # independent replicates, simulated as one batch
seed = 0  # random seed of the runs
device = "auto"  # "auto" uses a CUDA GPU when there is one, else the CPU
runs_dir = "runs"  # results store: finished runs are read back, not recomputed
output_dir = "executed"  # where figures and the claim summary go (set by madutils run)

# %% [markdown]
# ## The loop by hand
#
# Before the sweeps, here is one replicate of the loop written out.
# Generation 1 fits a Gaussian to `n_samples` real samples; every later generation samples `n_samples` points from the last fit (unbiased, $\lambda = 1$) and fits a fresh model to them.
# Data are batched as `(seeds, n, d)`, here with a single seed.
# This hand-run draws from its own generator, seeded from `seed`, so it is separate from the stored runs below and changes none of their numbers.

# %%
rng = torch.Generator().manual_seed(seed)  # this hand-run's own generator
real = GaussianDistribution(dim)  # P_r = N(0, I_d), so tr Σ_r = dim
X = real.sample(n_samples, n_seeds=1, rng=rng)  # generation 1 trains on real data
rows = []
for generation in range(1, 7):
    model = GaussianModel().fit(X)  # a fresh model for every generation
    total_variance = float(torch.diagonal(model.covariance_[0]).sum())
    rows.append({"generation": generation, "tr Σ_t / tr Σ_r": total_variance / dim})
    X = model.sample(n_samples, 1.0, rng=rng)  # the next generation's data, shape (1, n, d)
pd.DataFrame(rows).set_index("generation").round(3)

# %% [markdown]
# The fitted total variance takes a random step at every refit, with nothing pulling it back to the real value.
# `run_sweep` below runs exactly this loop for {glue:text}`theory_seeds` replicates at once, with the exact statistics path described next.

# %% [markdown]
# ## Simulating the loop
#
# All replicates of a $\lambda$ run as one batch with the exact statistics path.
# Each generation draws the fitted mean from $N(\mu_{t-1}, \lambda\Sigma_{t-1}/n)$ and the scatter matrix from a Wishart distribution.
# This is the same loop in distribution as drawing $n$ points and fitting them.

# %%
base = LoopConfig(
    device=device,
    family="fully_synthetic",
    dim=dim,
    n_ini=n_samples,
    generations=generations,
    seeds=seeds,
    seed=seed,
    path="statistics",
)
sweep = run_sweep(base, runs_dir, lam=lams, progress=False)
table = sweep.table
trace_r = float(dim)  # tr of the identity covariance of P_r
theory = closed_form_trace_and_drift(lams, generations, dim=dim, n=n_samples)

# %% tags=["remove-input"]
phases = [c for c in sweep.timings.columns if c.endswith("_seconds")]
glue_value("theory_seeds", seeds)
glue_value("theory_runs", len(sweep.results))
glue_value("theory_sweep_seconds", float(sweep.timings[phases].to_numpy().sum()))

# %% [markdown]
# ## The mean wanders
#
# Each replicate's fitted mean takes a random step every generation, centred on where it stands: a martingale.
# Nothing pulls it back to the real mean.

# %% mystnb={"figure": {"caption": "Fitted means of eight replicates across all generations at $\\lambda = 1$ (dots: last generation). Each path is a martingale random walk that never returns to the real mean.", "name": "fig-theory-mean-paths"}, "image": {"alt": "Eight two-dimensional random-walk paths of the fitted mean starting near the origin and wandering away from it, each ending in a dot."}}
paths = gaussian_paths(LoopConfig(**{**base.to_dict(), "seeds": 8, "lam": 1.0}))
fig = plotting.mean_paths(paths["mean"][:, :, :2], lam=1.0)
plotting.save_figure(fig, output_dir, "theory_mean_paths")
# %% mystnb={"figure": {"caption": "Squared drift of the fitted mean from generation 1: simulated mean (solid) and median (dotted) across replicates, closed form (dashed). The drift grows linearly at $\\lambda = 1$ and saturates for $\\lambda < 1$.", "name": "fig-theory-drift"}, "image": {"alt": "Squared drift of the fitted mean against generation for each lambda: simulated mean, median and closed-form curves, rising linearly for lambda 1 and levelling off for smaller lambda."}}
fig = plotting.trace_vs_theory(table, theory.rename(columns={"mean_drift": "value"}), "mean_drift")
plotting.save_figure(fig, output_dir, "theory_drift")
# %% tags=["remove-input"]
early = min(10, generations)
simulated_drift = (
    table[(table.metric == "mean_drift") & (table.generation == early)].groupby("lam").value.mean()
)
closed_drift = theory[theory.generation == early].set_index("lam").mean_drift
drift_ratios = {lam: float(simulated_drift[lam] / closed_drift[lam]) for lam in lams}
v_drift = judge("theory_mean_drift", drift_ratios=drift_ratios)
glue_value("theory_early", early)
glue_value("theory_rule_mean_drift", v_drift.rule)
glue_value("theory_verdict_mean_drift", v_drift.verdict)
pd.DataFrame(
    {
        "λ": lams,
        "simulated mean drift": [simulated_drift[lam] for lam in lams],
        "closed form": [closed_drift[lam] for lam in lams],
        "ratio": list(drift_ratios.values()),
    }
).set_index("λ").round(3)

# %% [markdown]
# The table compares, at generation {glue:text}`theory_early`, the mean squared drift across replicates with its closed form.
# Verdict rule: {glue:text}`theory_rule_mean_drift`.
# Verdict: **{glue:text}`theory_verdict_mean_drift`**.

# %% [markdown]
# ## The variance collapses, its expectation does not
#
# The closed form says that at $\lambda = 1$ the expected total variance never changes.
# The simulated mean follows it for a while, but the median falls steadily: a few replicates keep large covariances and carry the mean, while almost all others shrink towards zero.
# Eventually even the sample mean of the replicates falls below the closed form, because the rare replicates that would hold it up are too rare to appear among a finite number of seeds.

# %% mystnb={"figure": {"caption": "Total variance tr $\\Sigma_t$ across generations: simulated mean (solid) and median (dotted) across replicates, closed form $\\lambda^{t-1}$ tr $\\Sigma_r$ (dashed), log scale.", "name": "fig-theory-trace"}, "image": {"alt": "Total variance against generation on a log scale for each lambda: the mean stays near the closed form for a while, while the median falls steadily below it."}}
fig = plotting.trace_vs_theory(
    table, theory.rename(columns={"cov_trace": "value"}), "cov_trace", log=True
)
plotting.save_figure(fig, output_dir, "theory_trace")
# %% mystnb={"figure": {"caption": "Distribution of $\\log_{10}$ tr $\\Sigma_t$ across replicates at $\\lambda = 1$ for a few generations: the bulk moves steadily to zero variance while the spread grows.", "name": "fig-theory-trace-distribution"}, "image": {"alt": "Histograms of the log total variance across replicates at a few generations, moving to the left and widening as the generations pass."}}
shown = sorted({1, generations // 10, generations // 2, generations})
fig = plotting.trace_distribution(table, shown, lam=1.0)
plotting.save_figure(fig, output_dir, "theory_trace_distribution")
# %% tags=["remove-input"]
traces = table[(table.metric == "cov_trace") & (table.lam == 1.0)].pivot(
    index="replicate", columns="generation", values="value"
)
median_ratio = float(traces[generations].median() / trace_r)
collapsed_share = float((traces[generations] < 0.01 * trace_r).mean())
mean_ratio = float(traces[generations].mean() / trace_r)
early_mean = float(traces[early].mean() / trace_r)
early_se = float(traces[early].std() / np.sqrt(seeds) / trace_r)
glue_value("theory_generations", generations)
glue_value("theory_median_ratio", median_ratio)
glue_value("theory_collapsed_pct", 100 * collapsed_share)
glue_value("theory_mean_ratio", mean_ratio)
glue_value("theory_early_mean", early_mean)
glue_value("theory_early_se", early_se)
v_collapse = judge(
    "theory_variance_collapse",
    median_ratio=median_ratio,
    early_mean=early_mean,
    early_se=early_se,
)
glue_value("theory_rule_variance_collapse", v_collapse.rule)
glue_value("theory_verdict_variance_collapse", v_collapse.verdict)

# %% [markdown]
# At $\lambda = 1$, after {glue:text}`theory_generations` generations the median total variance is {glue:text}`theory_median_ratio:.2e` times that of $P_r$.
# By then {glue:text}`theory_collapsed_pct:.1f`% of the replicates have less than 1% of the real variance left.
# At generation {glue:text}`theory_early` the mean across replicates is still {glue:text}`theory_early_mean:.3f` times the real variance (standard error {glue:text}`theory_early_se:.3f`), as the closed form says.
# At the last generation it is {glue:text}`theory_mean_ratio:.3f`, because the replicates that carry the expectation have become too rare to sample.
# Verdict rule: {glue:text}`theory_rule_variance_collapse`.
# Verdict: **{glue:text}`theory_verdict_variance_collapse`**.

# %% tags=["remove-input"]
record_claims(
    output_dir,
    "gaussian_theory",
    [
        Claim.judged(
            claim="The fitted mean of the fully synthetic Gaussian loop is a martingale and its squared drift grows as (tr Σ/n) Σ λ^τ.",
            figure="§3.1, App. A",
            result=(
                f"simulated over closed-form mean squared drift at generation {early}: "
                + ", ".join(f"λ = {lam}: {r:.3f}" for lam, r in drift_ratios.items())
                + f" ({seeds} replicates, n = {n_samples}, d = {dim})"
            ),
            verdict=v_drift,
        ),
        Claim.judged(
            claim="Σ_t → 0 almost surely even at λ = 1, while E tr Σ_t = λ^(t−1) tr Σ_r.",
            figure="§3.1, App. A",
            result=(
                f"λ = 1, generation {generations}: median tr Σ_t / tr Σ_r = {median_ratio:.2e}, "
                f"{collapsed_share:.0%} of replicates below 1%; mean at generation {early} = "
                f"{early_mean:.3f} ± {early_se:.3f} (closed form 1)"
            ),
            verdict=v_collapse,
        ),
    ],
)

# %% [markdown]
# ## Exercises
#
# 1. Predict how the collapse changes when each generation has twice as many samples. Then rerun this chapter with `madutils run gaussian_theory -p n_samples 40` and compare the median curve.
#    The rerun computes {glue:text}`theory_runs` new runs, one per $\lambda$, because the store keys runs by their settings; the runs of this page stay in the store.
#    The runs of this page took {glue:text}`theory_sweep_seconds:.1f` s in total when they were computed (their stored timings).
#    Expect about as long: the statistics path draws the statistics of a fit directly, so its cost does not grow with $n$.
#    The eight mean paths of {numref}`fig-theory-mean-paths` are always recomputed (they are not stored).
#
# :::{admonition} Solution
# :class: dropdown
# The collapse slows down roughly in proportion to $n$.
# Each generation multiplies $\det\Sigma$ by a product of independent $\chi^2_{n-i}/(n-1)$ variables, whose logarithm has expectation close to $-i/(n-1)$.
# So $\log\det\Sigma_t$ drifts down by about $d(d+1)/(2(n-1))$ per generation: doubling $n$ roughly halves the speed of the median's fall.
# :::
#
# 2. With $\lambda = 0.9$, where does the expected squared drift of the mean settle? Check against the dashed line in {numref}`fig-theory-drift`.
#
# :::{admonition} Solution
# :class: dropdown
# $\frac{\mathrm{tr}\,\Sigma_r}{n}\sum_{\tau\ge1}\lambda^\tau = \frac{\mathrm{tr}\,\Sigma_r}{n}\frac{\lambda}{1-\lambda}$, which is $9\,\mathrm{tr}\,\Sigma_r/n$ for $\lambda = 0.9$: with the default $d = 2$ and $n = 20$, 0.9.
# :::
#
# ## Summary
#
# In this chapter we:
# - simulated the fully synthetic Gaussian loop for many replicates with the exact statistics path;
# - saw the fitted mean wander as a martingale, with the squared drift matching its closed form;
# - saw the total variance collapse in almost every replicate even without sampling bias, while its expectation stays at the real value.
#
# **What's next:** the [fully synthetic loop](fully_synthetic.ipynb) with a model that has modes to lose.
