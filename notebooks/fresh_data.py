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
# # The fresh data loop
#
# ## Overview
#
# In the fresh data loop every generation trains on $n_r$ *new* real samples plus $n_s$ synthetic samples from the previous model(s).
# The paper shows (its Figure 10 and Appendix figures 30 and 31) that such a loop settles to a limit that forgets where it started ($n_{\text{ini}}$) and depends only on $n_r$, $n_s$ and $\lambda$.
# This chapter reproduces that with the Gaussian model in $d = 100$ dimensions.
# It then looks at two variants: synthetic data drawn from the $K$ most recent models, and a training set of fixed total size with a real fraction $p$.
#
# | Concept | Importance |
# |---|---|
# | [Background: loop families and synthetic sources](../background.md) | necessary |
# | [Synthetic augmentation](synthetic_augmentation.ipynb) | helpful |

# %% [markdown]
# ## Imports and parameters

# %% tags=["hide-input"]
import time

import pandas as pd

from madutils import plotting
from madutils.analysis import fresh_data_limits, run_sweep
from madutils.analysis.claims import Claim, glue_value, record_claims
from madutils.analysis.images import measurement_note
from madutils.analysis.replicates import level, replicate_note, replicate_seeds
from madutils.analysis.verdicts import FidConverges, judge
from madutils.data.distributions import GaussianDistribution
from madutils.loops.config import LoopConfig
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import fixed_step_epochs
from madutils.metrics.effective import effective_sample_size, limiting_distance
from madutils.recipes import recipe
from madutils.rng import AnalysisStream, stream

plotting.set_style()

# %% tags=["parameters"]
dim = 100  # dimension of P_r, N(0, I) (the paper: 100)
n_inis = [100, 1000]  # real samples of generation 1 (the paper: 100 and 1000)
n_real = 100  # fresh real samples per generation (the paper: 100)
n_synthetic = 900  # synthetic samples per generation (the paper: 900)
generations = 50  # generations (the paper: about 50)
lams = [1.0, 0.8]  # sampling biases (the paper: 1 and 0.8)
seeds = 100  # replicates
memory_dim = 20  # dimension for the memory experiment
memory_n_real = 1000  # fresh real samples per generation, memory experiment (the paper: 1000)
memory_n_synthetic = 10000  # synthetic samples per generation, memory experiment (the paper: 10^4)
memory_ks = [1, 2, 4, 8]  # numbers K of most recent models the synthetic data come from
memory_generations = 150  # generations of the memory experiment
memory_tail = 50  # last generations averaged for the limit
pool_dim = 20  # dimension for the real-fraction experiment
pool_sizes = [1000, 3000, 10000, 30000, 100000]  # training-set sizes n per generation
pool_fractions = [0.1, 0.3, 0.9]  # real fractions p of the training set
pool_lams = [1.0, 0.95]  # sampling biases of the real-fraction experiment
pool_generations = 80  # generations of the real-fraction experiment
pool_tail = 30  # last generations averaged for the limit
pool_seeds = 40  # replicates per cell of the real-fraction experiment
scale = "cpu"  # section of the deep-model recipes in madutils/recipes (set by madutils run)
ddpm = {}  # overrides, key by key, of the DDPM recipe at this scale (madutils/recipes/ddpm.yaml)
ddpm_n_inis = [500, 1000]  # real images of generation 1 (the paper: 2,000 and 3,000)
ddpm_fresh = 500  # fresh real images per generation, and as many synthetic (paper: 2,000)
ddpm_replicates = 3  # independent replicates of each n_ini
ddpm_equal_training = True  # every model trains for the steps of the recipe's generation 1
seed = 0  # random seed of the runs
device = "auto"  # "auto" uses a CUDA GPU when there is one, else the CPU
runs_dir = "runs"  # results store: finished runs are read back, not recomputed
output_dir = "executed"  # where figures and the claim summary go (set by madutils run)

# %% [markdown]
# ## The limit forgets the start
#
# Two starting points, $n_{\text{ini}} = 100$ (a rank-deficient first fit in 100 dimensions) and $n_{\text{ini}} = 1000$, each with and without bias.
# The runs use the exact statistics path.

# %% mystnb={"figure": {"caption": "Fresh data loop, $d = 100$, $n_r = 100$, $n_s = 900$: squared $W_2$ to $P_r$ (median and 50% band across replicates) for two initial sample sizes and two values of $\\lambda$. The paper's Figure 10 (left).", "name": "fig-fresh-limit"}, "image": {"alt": "Line plot on a logarithmic vertical axis of the median squared W2 distance to P_r against the generation, coloured by lambda and styled by initial sample size, the two sizes starting far apart at generation 1."}}
limit_sweep = run_sweep(
    LoopConfig(
        device=device,
        family="fresh_data",
        dim=dim,
        n_real=n_real,
        n_synthetic=n_synthetic,
        generations=generations,
        seeds=seeds,
        seed=seed,
        path="statistics",
    ),
    runs_dir,
    n_ini=n_inis,
    lam=lams,
    progress=False,
)
table = limit_sweep.table
table["n_ini"] = table["n_ini"].astype(str)
fig = plotting.metric_curves(
    table, ["w2_squared"], style="n_ini", log_metrics=["w2_squared"], height=3.4
)
plotting.save_figure(fig, output_dir, "fresh_limit")

# %% tags=["remove-input"]
tail = max(1, generations // 5)
limits = {
    (n_ini, lam): limiting_distance(
        table[(table.n_ini == str(n_ini)) & (table.lam == lam)], tail=tail
    )
    for n_ini in n_inis
    for lam in lams
}
starts = table[table.generation == 1].groupby("n_ini").value.median()
for i, n_ini in enumerate((n_inis[0], n_inis[-1])):
    which = ("first", "last")[i]
    glue_value(f"fresh_n_ini_{which}", n_ini)
    glue_value(f"fresh_start_{which}", starts[str(n_ini)])
    for j, lam in enumerate((lams[0], lams[-1])):
        glue_value(f"fresh_limit_{which}_{('lam1', 'lam2')[j]}", limits[(n_ini, lam)])
glue_value("fresh_lam1", lams[0])
glue_value("fresh_lam2", lams[-1])
gap = max(abs(limits[(n_inis[0], lam)] / limits[(n_inis[-1], lam)] - 1) for lam in lams)
glue_value("fresh_gap_pct", 100 * gap)
glue_value("fresh_tail", tail)
limit_verdict = judge(
    "fresh_limit",
    limit_gap=gap,
    start_first=starts[str(n_inis[0])],
    start_last=starts[str(n_inis[-1])],
)
glue_value("fresh_rule_limit", limit_verdict.rule)
glue_value("fresh_verdict_limit", limit_verdict.verdict)
glue_value("fresh_generations", generations)
glue_value("fresh_limit_runs", len(limit_sweep.results))
glue_value("fresh_seeds", seeds)
limit_seconds = float(limit_sweep.timings.filter(like="_seconds").sum().sum())

# %% [markdown]
# The two starting points are far apart.
# At generation 1, $W_2^2$ = {glue:text}`fresh_start_first:.1f` with $n_{\text{ini}}$ = {glue:text}`fresh_n_ini_first` and {glue:text}`fresh_start_last:.1f` with {glue:text}`fresh_n_ini_last`.
# Over the last {glue:text}`fresh_tail` generations the loops settle at {glue:text}`fresh_limit_first_lam1:.2f` and {glue:text}`fresh_limit_last_lam1:.2f` at $\lambda$ = {glue:text}`fresh_lam1`.
# At $\lambda$ = {glue:text}`fresh_lam2` they settle at {glue:text}`fresh_limit_first_lam2:.2f` and {glue:text}`fresh_limit_last_lam2:.2f`.
# The limits reached from the two starts differ by at most {glue:text}`fresh_gap_pct:.1f`% (relative to the limit from the larger $n_{\text{ini}}$).
# The bias costs accuracy: the biased loop's limit is higher, because its synthetic samples keep underestimating the covariance.
#
# Verdict rule: {glue:text}`fresh_rule_limit`.
# Verdict at this scale: {glue:text}`fresh_verdict_limit`.
#
# ## Synthetic data from the $K$ most recent models
#
# Drawing each synthetic sample uniformly from the $K$ most recent models (the paper's Appendix, Figure 30) averages out the errors of individual generations.
# We measure the effect as an effective sample size.
# It is the number $n_e$ of real samples whose fit is as close to $P_r$ as the loop's limit (see the [effective sample size chapter](effective_sample_size.ipynb)).

# %%
memory = run_sweep(
    LoopConfig(
        device=device,
        family="fresh_data",
        dim=memory_dim,
        n_ini=memory_n_real,
        n_real=memory_n_real,
        n_synthetic=memory_n_synthetic,
        generations=memory_generations,
        seeds=seeds,
        seed=seed,
        path="statistics",
        synthetic_source="memory",
    ),
    runs_dir,
    memory=memory_ks,
    progress=False,
).table
rows = []
for k in memory_ks:
    limit = limiting_distance(memory[memory.memory == k], tail=memory_tail)
    ratio = effective_sample_size(
        limit,
        memory_n_real,
        GaussianDistribution(memory_dim),
        rng=stream(seed, 0, AnalysisStream.EFFECTIVE_SIZE),
    )
    rows.append({"K": k, "limit": limit, "ratio": float(ratio)})
memory_summary = pd.DataFrame(rows)
memory_summary.rename(
    columns={"K": "models K", "limit": "limiting W₂²", "ratio": "n_e / n_r"}
).round(3).set_index("models K")

# %% mystnb={"figure": {"caption": "Effective sample size $n_e/n_r$ of the fresh data loop when each synthetic sample comes from one of the $K$ most recent models ($n_r = 10^3$, $n_s = 10^4$, $\\lambda = 1$): more memory helps, with diminishing returns. The paper's Figure 30.", "name": "fig-fresh-memory"}, "image": {"alt": "Line plot of the effective sample size ratio n_e over n_r against the number K of most recent models used, on a base-2 logarithmic horizontal axis, with a dashed horizontal line at n_e equal to n_r."}}
fig = plotting.memory_curve(memory_summary)
plotting.save_figure(fig, output_dir, "fresh_memory")

# %% tags=["remove-input"]
memory_verdict = judge("fresh_memory", ks=memory_summary.K, ratios=memory_summary.ratio)
ratio_1 = memory_summary.ratio.iloc[0]
ratio_k = memory_summary.ratio.iloc[-1]
glue_value("fresh_memory_ratio_first", ratio_1)
glue_value("fresh_memory_ratio_last", ratio_k)
glue_value("fresh_memory_k_last", memory_ks[-1])
glue_value("fresh_rule_memory", memory_verdict.rule)
glue_value("fresh_verdict_memory", memory_verdict.verdict)

# %% [markdown]
# With $K = 1$ the loop is worth {glue:text}`fresh_memory_ratio_first:.2f` times its fresh real data.
# With $K$ = {glue:text}`fresh_memory_k_last` it is worth {glue:text}`fresh_memory_ratio_last:.2f` times.
#
# Verdict rule: {glue:text}`fresh_rule_memory`.
# Verdict at this scale: {glue:text}`fresh_verdict_memory`.
#
# ## A training set of fixed size with real fraction $p$
#
# Now every generation trains on $n$ samples of which a fraction $p$ is fresh real data (the paper's Figure 31).
# More data per generation helps only as long as the synthetic part is unbiased.

# %% tags=["remove-cell"]
pool_started = time.perf_counter()

# %% mystnb={"figure": {"caption": "Limiting squared $W_2$ to $P_r$ against the training-set size $n$ per generation, for real fractions $p$ and two values of $\\lambda$. Smaller $p$ slows the improvement; with $\\lambda < 1$ the limit stops improving. The paper's Figure 31.", "name": "fig-fresh-pool"}, "image": {"alt": "Two panels, one per lambda, each plotting on logarithmic axes the limiting squared W2 distance to P_r against the training-set size n, with one line per real fraction p."}}
pool_cells = pd.DataFrame(
    [
        {"n": n, "p": p, "lam": lam, "n_real": round(p * n), "n_synthetic": n - round(p * n)}
        for n in pool_sizes
        for p in pool_fractions
        for lam in pool_lams
    ]
)
pool = fresh_data_limits(
    device=device,
    cells=pool_cells,
    dim=pool_dim,
    generations=pool_generations,
    tail=pool_tail,
    seeds=pool_seeds,
    seed=seed,
    progress=False,
)
fig = plotting.limit_curves(pool, x="n", hue="p", col="lam")
plotting.save_figure(fig, output_dir, "fresh_pool")

# %% tags=["remove-input"]
pool_seconds = time.perf_counter() - pool_started
by = pool.set_index(["lam", "p", "n"])["limit"]
small_p, big_p = min(pool_fractions), max(pool_fractions)
unbiased, biased = max(pool_lams), min(pool_lams)
slowdown = min(by[(unbiased, small_p, n)] / by[(unbiased, big_p, n)] for n in pool_sizes)
gain_unbiased = by[(unbiased, small_p, pool_sizes[0])] / by[(unbiased, small_p, pool_sizes[-1])]
gain_biased = by[(biased, small_p, pool_sizes[0])] / by[(biased, small_p, pool_sizes[-1])]
pool_verdict = judge(
    "fresh_pool", slowdown=slowdown, gain_unbiased=gain_unbiased, gain_biased=gain_biased
)
glue_value("pool_slowdown", slowdown)
glue_value("pool_gain_unbiased", gain_unbiased)
glue_value("pool_gain_biased", gain_biased)
glue_value("pool_n_first", pool_sizes[0])
glue_value("pool_n_last", pool_sizes[-1])
glue_value("pool_p_small", small_p)
glue_value("pool_p_big", big_p)
glue_value("pool_lam_biased", biased)
glue_value("fresh_rule_pool", pool_verdict.rule)
glue_value("fresh_verdict_pool", pool_verdict.verdict)

# %% [markdown]
# At $\lambda = 1$ every size $n$ gives a limit at least {glue:text}`pool_slowdown:.1f` times higher with $p$ = {glue:text}`pool_p_small` than with $p$ = {glue:text}`pool_p_big`.
# Less real data per generation slows the progress, though the unbiased limit still falls with $n$.
# From $n$ = {glue:text}`pool_n_first` to {glue:text}`pool_n_last` with $p$ = {glue:text}`pool_p_small` it falls by a factor {glue:text}`pool_gain_unbiased:.0f`.
# With $\lambda$ = {glue:text}`pool_lam_biased` the same increase of $n$ divides the limit only by {glue:text}`pool_gain_biased:.1f`: the biased loop plateaus.
#
# Verdict rule: {glue:text}`fresh_rule_pool`.
# Verdict at this scale: {glue:text}`fresh_verdict_pool`.

# %% [markdown]
# ## A diffusion model on MNIST digits
#
# The paper's Figure 10 (right) runs the fresh data loop with the DDPM of the [fully synthetic chapter](fully_synthetic.ipynb).
# Every generation trains on $n_r$ MNIST digits never used before plus as many synthetic digits of the previous model ($n_r = n_s$).
# The loop starts from two sizes of the first real set.
# Real digits are drawn without replacement across generations.
# A run that would need more than the data set holds stops before training, with an error that says how many it needs.
# At the `cpu` scale every model, whatever its training set, trains for the optimizer steps of the recipe's generation 1 (`ddpm_equal_training`: {glue:text}`fresh_ddpm_epochs_text`), so that the two loops differ in where they start, not in how long their models train; with a fixed number of passes instead, the smaller sets' models are undertrained and the loop measures that.

# %%
ddpm_settings = recipe("ddpm", scale, overrides=ddpm)
ddpm_base = ImageLoopConfig(
    **ddpm_settings,
    family="fresh_data",
    n_real=ddpm_fresh,
    n_synthetic=ddpm_fresh,
    fixed_steps=ddpm_equal_training,
    seed=seed,
    device=device,
)


def training_epochs(n_ini):
    """Passes over the first real set that make the optimizer steps of the recipe's
    generation 1 (the recipe's passes, without equal training)."""
    if not ddpm_equal_training:
        return ddpm_base.epochs
    return fixed_step_epochs(ddpm_base.epochs, ddpm_settings["n_ini"], n_ini)


ddpm_sweep = run_sweep(
    ddpm_base,
    runs_dir,
    cases=[
        dict(n_ini=n, epochs=training_epochs(n), seed=s)
        for n in ddpm_n_inis
        for s in replicate_seeds(seed, ddpm_replicates)
    ],
    progress=False,
)
glue_value(
    "fresh_ddpm_epochs_text",
    ", ".join(f"{training_epochs(n)} passes over {n:,} first real images" for n in ddpm_n_inis)
    + f" and {ddpm_base.epochs * ddpm_settings['n_ini']:,} images shown per later generation",
)
ddpm_runs, ddpm_table = ddpm_sweep.results, ddpm_sweep.table
ddpm_last = ddpm_base.generations

# %% mystnb={"figure": {"caption": "Fresh data DDPM loop on MNIST digits ($n_r = n_s$, $\\lambda = 1$): FID, KID, precision and recall per generation for two sizes $n_{ini}$ of the first real set, median and range across replicates; generation 0 is real data, the grey band the real-versus-real floor.", "name": "fig-fresh-ddpm"}, "image": {"alt": "Four panels showing FID, KID, precision and recall against the generation, each with one line per size n_ini of the first real set and a grey band for the real-versus-real floor."}}
fig = plotting.metric_curves(
    ddpm_table,
    ["fid", "kid", "precision", "recall"],
    hue="n_ini",
    height=2.8,
    floor=True,
    errorbar=plotting.REPLICATE_BAND,
)
plotting.save_figure(fig, output_dir, "fresh_data_ddpm")

# %% tags=["remove-input"]
fid = ddpm_table[ddpm_table.metric == "fid"].groupby(["n_ini", "generation"]).value.median()
small, big = min(ddpm_n_inis), max(ddpm_n_inis)
ddpm_tail = [g for g in range(max(2, ddpm_last - 1), ddpm_last + 1)]  # the last two generations
ddpm_limits = {n: level(ddpm_table, "fid", ddpm_tail, n_ini=n) for n in (small, big)}
limit_small, limit_big = ddpm_limits[small].median, ddpm_limits[big].median
limit_gap = FidConverges.gap(limit_small, limit_big)
ddpm_verdict = judge(
    "fresh_ddpm_limit",
    limit_small=limit_small,
    limit_big=limit_big,
    limit_spread=max(found.spread for found in ddpm_limits.values()),
    replicates=min(found.replicates for found in ddpm_limits.values()),
)
glue_value("fresh_ddpm_small_first", fid[(small, 1)])
glue_value("fresh_ddpm_big_first", fid[(big, 1)])
glue_value("fresh_ddpm_small_limit", limit_small)
glue_value("fresh_ddpm_big_limit", limit_big)
glue_value("fresh_ddpm_limit_gap", 100 * limit_gap)
glue_value("fresh_ddpm_generations", ddpm_last)
glue_value("fresh_ddpm_counts", measurement_note(ddpm_runs[0]))
glue_value("fresh_rule_ddpm", ddpm_verdict.rule)
glue_value("fresh_verdict_ddpm", ddpm_verdict.verdict)
glue_value("fresh_evidence_ddpm", ddpm_verdict.evidence)
glue_value("fresh_ddpm_replicates", replicate_note(ddpm_table, "n_ini", "n_ini"))

# %% tags=["hide-input"]
fid.unstack(0).round(2).rename(columns=lambda n: f"FID, n_ini = {n}").rename_axis(
    index="generation", columns=None
)

# %% [markdown]
# At generation 1 the FID is {glue:text}`fresh_ddpm_small_first:.1f` with the smaller first set and {glue:text}`fresh_ddpm_big_first:.1f` with the larger.
# Averaged over the last two of {glue:text}`fresh_ddpm_generations` generations it is {glue:text}`fresh_ddpm_small_limit:.1f` and {glue:text}`fresh_ddpm_big_limit:.1f` ({glue:text}`fresh_ddpm_limit_gap:.0f`% apart; medians across replicates).
# {glue:text}`fresh_ddpm_replicates`
# {glue:text}`fresh_ddpm_counts`
# Both loops move from their first model towards a level set by $n_r$ and $n_s$.
# That level is worse than generation 1's model, which trained on more real images than any later generation sees.
# It is also far from the fully synthetic loop's runaway.
#
# Verdict rule: {glue:text}`fresh_rule_ddpm`.
# Measured: {glue:text}`fresh_evidence_ddpm`.
# Verdict at this scale: **{glue:text}`fresh_verdict_ddpm`**.
#
# The replicates say how far apart two runs with the same settings end: a gap between the two limits smaller than that range is one this scale cannot tell from noise.
# The `gpu` parameter set runs the paper's sizes and 15 generations.
# The paper's point is the one the Gaussian loop above shows exactly.
# Once the first real set has been replaced by fresh data, where the loop started matters less and less: the limit is set by $n_r$, $n_s$ and $\lambda$, not by $n_{ini}$.

# %% tags=["remove-input"]
record_claims(
    output_dir,
    "fresh_data",
    [
        Claim.judged(
            claim="With fresh data each generation the loop converges to a limit that does not depend on n_ini.",
            figure="Fig. 10 (left)",
            result=(
                f"d = {dim}, n_r = {n_real}, n_s = {n_synthetic}: limit W2² {limits[(n_inis[0], 1.0)]:.2f} vs "
                f"{limits[(n_inis[-1], 1.0)]:.2f} (λ = 1) and {limits[(n_inis[0], lams[-1])]:.2f} vs "
                f"{limits[(n_inis[-1], lams[-1])]:.2f} (λ = {lams[-1]:g}) for n_ini = {n_inis[0]} vs {n_inis[-1]}"
            ),
            verdict=limit_verdict,
        ),
        Claim.judged(
            claim="Drawing synthetic data from the K most recent models raises the effective sample size, with diminishing returns.",
            figure="Fig. 30",
            result=", ".join(
                f"K = {r.K}: n_e/n_r = {r.ratio:.2f}" for r in memory_summary.itertuples()
            )
            + f" (d = {memory_dim}; the paper's dimension is not stated)",
            verdict=memory_verdict,
        ),
        Claim.judged(
            claim="With a pool of size n and real fraction p, smaller p slows the improvement with n and any λ < 1 plateaus.",
            figure="Fig. 31",
            result=(
                f"λ = 1: limit with p = {small_p} ≥ {slowdown:.1f}× that with p = {big_p} at every n; "
                f"n = {pool_sizes[0]} → {pool_sizes[-1]} divides the limit by {gain_unbiased:.0f} at λ = 1 "
                f"but by {gain_biased:.1f} at λ = {biased} (p = {small_p}, d = {pool_dim})"
            ),
            verdict=pool_verdict,
        ),
        Claim.judged(
            claim="A fresh data DDPM loop on MNIST converges to the same FID whatever n_ini.",
            figure="E7, Fig. 10 (right)",
            result=(
                f"n_r = n_s = {ddpm_fresh}, n_ini = {small} vs {big}: FID {fid[(small, 1)]:.1f} vs "
                f"{fid[(big, 1)]:.1f} at generation 1, {limit_small:.1f} vs {limit_big:.1f} averaged "
                f"over generations {ddpm_tail[0]}–{ddpm_tail[-1]} ({100 * limit_gap:.0f}% apart)"
            ),
            verdict=ddpm_verdict,
        ),
    ],
)

# %% tags=["remove-input"]
glue_value("fresh_limit_seconds", limit_seconds)
glue_value("fresh_pool_seconds", pool_seconds)
glue_value("fresh_rerun_seconds", limit_seconds + pool_seconds)

# %% [markdown]
# ## Exercises
#
# Each exercise reruns the whole chapter with one parameter changed.
# The {glue:text}`fresh_limit_runs` runs of the first figure ({glue:text}`fresh_seeds` replicates each) have new settings, so they are recomputed.
# The pool grid is not stored and is recomputed on every execution.
# The memory and DDPM runs do not use the parameter `n_synthetic`, so after a first execution of the chapter they are read back from the results store.
# On the machine that built this page, the first figure's runs took {glue:text}`fresh_limit_seconds:.0f` s (their stored timings) and the pool grid {glue:text}`fresh_pool_seconds:.0f` s.
# Expect a rerun to take about {glue:text}`fresh_rerun_seconds:.0f` s, plus the kernel's start-up; the statistics path costs the same whatever $n_s$.
#
# 1. Predict the limit with no synthetic data at all, then check with `madutils run fresh_data -p n_synthetic 0`.
#
# :::{admonition} Solution
# :class: dropdown
# Each generation is then an independent fit to $n_r$ real samples.
# So the curve is flat from generation 2 on, at the expected distance of a 100-sample fit in 100 dimensions.
# Both values of $\lambda$ coincide, since there are no synthetic data to bias.
# :::
#
# 2. Is more synthetic data always better at $\lambda = 1$? Try `-p n_synthetic 9900`.
#
# :::{admonition} Solution
# :class: dropdown
# At $\lambda = 1$ the limit keeps improving slowly as $n_s$ grows, but the loop needs many more generations to get there.
# Each generation replaces only a fraction $n_r/(n_r+n_s)$ of the information, so with {glue:text}`fresh_generations` generations the curves have not converged.
# With $\lambda < 1$ a large $n_s$ makes the limit worse: see the next chapter.
# :::
#
# ## Summary
#
# In this chapter we:
# - ran the fresh data loop from two starting points and saw it converge to the same limit, worse with sampling bias;
# - drew synthetic data from the $K$ most recent models and measured the gain as an effective sample size;
# - varied the size and real fraction of the training set and saw the biased loops plateau.
#
# **What's next:** the [effective sample size](effective_sample_size.ipynb) over whole grids of $n_r$, $n_s$ and $\lambda$.
