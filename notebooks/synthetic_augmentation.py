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
# # The synthetic augmentation loop
#
# ## Overview
#
# Practitioners rarely throw their real data away: the synthetic augmentation loop keeps the *same* real training set in every generation and adds synthetic samples to it.
# The paper finds (its Figures 8 and 9) that this slows the degradation down but does not stop it.
# This holds whether the synthetic samples come from the last model or from a pool accumulated over all earlier models.
# This chapter compares the two synthetic sources with the fully synthetic loop, on the same axes, for several sampling biases $\lambda$.
#
# | Concept | Importance |
# |---|---|
# | [Background: loop families and synthetic sources](../background.md) | necessary |
# | [The fully synthetic loop](fully_synthetic.ipynb) | helpful |

# %% [markdown]
# ## Imports and parameters

# %%
import pandas as pd

from madutils import plotting
from madutils.analysis import generation_seconds, run_sweep
from madutils.analysis.claims import Claim, glue_value, record_claims
from madutils.analysis.images import measurement_note, sample_panels
from madutils.analysis.replicates import change, judged_lams, lam_cases, replicate_note
from madutils.analysis.verdicts import judge
from madutils.loops.config import LoopConfig
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import fixed_step_epochs
from madutils.recipes import recipe

plotting.set_style()

# %% tags=["parameters"]
dim = 10  # dimension of the Gaussian experiment
n_real = 100  # the fixed real set, used in every generation
n_synthetic = 100  # synthetic samples per generation (pool: added per generation)
generations = 100  # generations, including the first fit to real data
lams = [1.0, 0.8, 0.6]  # sampling biases to compare
seeds = 200  # replicates of the Gaussian experiment
mixture_n = 500  # real samples of the mixture experiment
mixture_generations = 100  # generations of the mixture experiment
mixture_seeds = 5  # replicates of the mixture experiment
scale = "cpu"  # section of the deep-model recipes in madutils/recipes (set by madutils run)
ddpm = {}  # overrides, key by key, of the DDPM recipe at this scale (madutils/recipes/ddpm.yaml)
ddpm_generations = 3  # generations of the DDPM loops (the paper: 10)
ddpm_lams = [1.0]  # sampling biases (the paper's Figure 9: 1, 0.8, 0.66, 0.5, the gpu set)
ddpm_replicates = 3  # independent replicates of λ 1, the strongest bias and the pool
ddpm_side_replicates = 1  # replicates of the other λ (shown, not judged)
ddpm_fixed_steps = True  # augmented loops train for the optimizer steps of the recipe's epochs
seed = 0  # random seed of the runs
device = "auto"  # "auto" uses a CUDA GPU when there is one, else the CPU
runs_dir = "runs"  # results store: finished runs are read back, not recomputed
output_dir = "executed"  # where figures and the claim summary go (set by madutils run)

# %% [markdown]
# The three loops compared, as settings of the runs, and the labels the figures give them:

# %% tags=["hide-input"]
LOOP_NAMES = {
    ("fully_synthetic", "last"): "fully synthetic",
    ("synthetic_augmentation", "last"): "augmentation, last model",
    ("synthetic_augmentation", "accumulate"): "augmentation, accumulated pool",
}


#: The loops compared, as settings of run_sweep's cases
LOOPS = [dict(family=family, synthetic_source=source) for family, source in LOOP_NAMES]


def name_loops(table):
    """Label each run by its family and synthetic source."""
    keys = zip(table["family"], table["synthetic_source"], strict=True)
    return table.assign(loop=[LOOP_NAMES[k] for k in keys])


def total_seconds(timings):
    """Seconds that all the runs of a sweep took (every phase of every generation)."""
    return float(timings.filter(like="_seconds").to_numpy().sum())


# %% [markdown]
# ## Gaussian: the fixed real set anchors the fit
#
# Each generation fits a Gaussian to the $n_r$ real samples of generation 1 plus $n_s$ synthetic samples.
# The fully synthetic loop uses the $n_s$ synthetic samples only.
# The runs use the exact statistics path.

# %%
common = dict(
    dim=dim,
    n_ini=n_real,
    n_synthetic=n_synthetic,
    generations=generations,
    seeds=seeds,
    seed=seed,
    path="statistics",
)
gaussian_sweep = run_sweep(
    LoopConfig(device=device, **common), runs_dir, cases=LOOPS, lam=lams, progress=False
)
gaussian = name_loops(gaussian_sweep.table)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Squared $W_2$ distance to $P_r$ and total variance of the fitted Gaussian (median and 50% band across replicates) for the fully synthetic loop and synthetic augmentation with either synthetic source. Keeping the real data bounds the damage. With $\\lambda < 1$ the fit still settles away from $P_r$.", "name": "fig-augmentation-gaussian"}, "image": {"alt": "Two panels against generation, squared W2 distance to the real Gaussian on a log scale and total variance of the fit, with one line style per loop and one colour per sampling bias."}}
fig = plotting.metric_curves(
    gaussian, ["w2_squared", "cov_trace"], style="loop", log_metrics=["w2_squared"]
)
plotting.save_figure(fig, output_dir, "augmentation_gaussian")

# %% [markdown]
# The median squared distance at the last generation, divided by its value at generation 1, for each loop and sampling bias:

# %% tags=["remove-input"]
median = (
    gaussian[gaussian.metric == "w2_squared"].groupby(["loop", "lam", "generation"]).value.median()
)
ratios = {
    (loop, lam): median[(loop, lam, generations)] / median[(loop, lam, 1)]
    for loop in LOOP_NAMES.values()
    for lam in lams
}
worst_aug = max(ratios[(loop, lam)] for loop in list(LOOP_NAMES.values())[1:] for lam in lams)
SHORT = {
    "fully synthetic": "fully",
    "augmentation, last model": "last",
    "augmentation, accumulated pool": "pool",
}
for loop, short in SHORT.items():
    glue_value(f"aug_ratio_{short}_unbiased", ratios[(loop, lams[0])])
    glue_value(f"aug_ratio_{short}_biased", ratios[(loop, lams[-1])])
glue_value("aug_lam_biased", lams[-1])
glue_value("aug_generations", generations)
glue_value("aug_gaussian_seconds", total_seconds(gaussian_sweep.timings))
glue_value("aug_gaussian_runs", len(gaussian_sweep.results))
ratio_table = pd.DataFrame(
    {f"λ = {lam:g}": [ratios[(loop, lam)] for loop in LOOP_NAMES.values()] for lam in lams},
    index=pd.Index(list(LOOP_NAMES.values()), name="loop"),
).round(2)
ratio_table

# %% [markdown]
# After {glue:text}`aug_generations` generations at $\lambda = 1$ the median squared distance of the fully synthetic loop is {glue:text}`aug_ratio_fully_unbiased:.1f` times its generation-1 value.
# With the fixed real set it is only {glue:text}`aug_ratio_last_unbiased:.2f` times that value when the synthetic data come from the last model, and {glue:text}`aug_ratio_pool_unbiased:.2f` times with the accumulated pool.
# With $\lambda$ = {glue:text}`aug_lam_biased` the augmented loops end at {glue:text}`aug_ratio_last_biased:.2f` and {glue:text}`aug_ratio_pool_biased:.2f` times their starting distance.
# The biased synthetic samples keep pulling the covariance below the real one, and the real data cannot fully undo it.
#
# ## Mixture: modes survive longer
#
# The same comparison for the 25-mode mixture at $\lambda = 1$.

# %%
mixture_common = dict(
    model="mixture",
    n_ini=mixture_n,
    generations=mixture_generations,
    seeds=mixture_seeds,
    seed=seed,
    metrics=("precision", "recall", "modes_covered"),
)
mixture = name_loops(
    run_sweep(
        LoopConfig(device=device, **mixture_common), runs_dir, cases=LOOPS, progress=False
    ).table
)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Modes covered and recall of the 25-mode mixture loop, fully synthetic versus synthetic augmentation (median and 50% band across replicates).", "name": "fig-augmentation-mixture"}, "image": {"alt": "Three panels against generation, modes covered, recall and precision of the 25-mode mixture, one colour per loop, for the fully synthetic loop and the two augmentation loops."}}
fig = plotting.metric_curves(
    mixture, ["modes_covered", "recall", "precision"], style="loop", hue="loop", height=2.8
)
plotting.save_figure(fig, output_dir, "augmentation_mixture")

# %% tags=["remove-input"]
modes = mixture[mixture.metric == "modes_covered"].groupby(["loop", "generation"]).value.median()
for loop, short in SHORT.items():
    glue_value(f"aug_modes_{short}", modes[(loop, mixture_generations)])
glue_value("aug_mixture_generations", mixture_generations)
augmented = list(LOOP_NAMES.values())[1:]
slows = judge(
    "augmentation_slows",
    fully_ratio=ratios[("fully synthetic", 1.0)],
    augmented_ratios=[ratios[(loop, 1.0)] for loop in augmented],
    worst_augmented_ratio=worst_aug,
    fully_modes=modes[("fully synthetic", mixture_generations)],
    augmented_modes=[modes[(loop, mixture_generations)] for loop in augmented],
)
glue_value("aug_rule_slows", slows.rule)
glue_value("aug_verdict_slows", slows.verdict)
glue_value("aug_worst_ratio", worst_aug)

# %% [markdown]
# After {glue:text}`aug_mixture_generations` generations the fully synthetic mixture covers {glue:text}`aug_modes_fully:.0f` modes (median).
# The augmented loops cover {glue:text}`aug_modes_last:.0f` (last model) and {glue:text}`aug_modes_pool:.0f` (accumulated pool).
#
# Does the fixed real set slow the degradation without stopping it, as the paper claims?
# The Gaussian ratios at $\lambda = 1$ and the modes say whether it slows; the worst augmented ratio over all $\lambda$, {glue:text}`aug_worst_ratio:.2f`, says whether some degradation is left.
# Verdict rule: {glue:text}`aug_rule_slows`.
# Verdict: **{glue:text}`aug_verdict_slows`**.

# %% [markdown]
# ## A diffusion model on MNIST digits
#
# The paper's Figure 9 repeats the DDPM experiment of the [previous chapter](fully_synthetic.ipynb) with the generation-1 real digits kept in every training set.
# Each generation adds as many synthetic digits from the last model.
# The fully synthetic runs with the same settings are read back from the results store, not retrained.
#
# An augmented training set holds twice the digits of a fully synthetic one (the pool of the paper's E4 even more), so with the same epochs each generation would train two to three times as long.
# At the `cpu` scale every generation instead trains for the same number of optimizer steps as generation 1 (`ddpm_fixed_steps`: {glue:text}`aug_ddpm_later_epochs:.0f` passes over the augmented set where generation 1 makes {glue:text}`aug_ddpm_epochs:.0f` over its real digits); the loops then differ in what they train on, not in how long.
# The `gpu` parameter set trains every generation for the same epochs, as the paper does.

# %%
ddpm_settings = {**recipe("ddpm", scale, overrides=ddpm), "generations": ddpm_generations}
ddpm_base = ImageLoopConfig(**ddpm_settings, seed=seed, device=device)
ddpm_judged = judged_lams(ddpm_lams)
augmented = dict(family="synthetic_augmentation", fixed_steps=ddpm_fixed_steps)
# the augmented loops and the pool first: the fully synthetic loops, last, are the DDPM chapter's;
# on a cluster the two chapters share each of those runs (one task), read back once finished
ddpm_cases = [
    *lam_cases(ddpm_lams, seed, ddpm_replicates, ddpm_side_replicates, **augmented),
    *lam_cases([1.0], seed, ddpm_replicates, **augmented, synthetic_source="accumulate"),
    *lam_cases(ddpm_lams, seed, ddpm_replicates, ddpm_side_replicates, family="fully_synthetic"),
]
ddpm_sweep = run_sweep(ddpm_base, runs_dir, cases=ddpm_cases, progress=False)
ddpm_runs = ddpm_sweep.results
ddpm_table = name_loops(ddpm_sweep.table)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "DDPM on MNIST digits: FID, KID, precision and recall per generation, median and range across replicates, for the fully synthetic loop, synthetic augmentation with the same real digits in every generation and the last model's digits, and augmentation with the pool of every earlier model's digits (the paper's E4, λ = 1). Generation 0 is real data, the grey band the real-versus-real floor.", "name": "fig-augmentation-ddpm"}, "image": {"alt": "Four panels against generation, FID, KID, precision and recall of the DDPM, one colour per sampling bias, one line style per loop (fully synthetic, augmentation with the last model, augmentation with the accumulated pool) and a grey band for the real-versus-real floor."}}
fig = plotting.metric_curves(
    ddpm_table,
    ["fid", "kid", "precision", "recall"],
    style="loop",
    height=2.8,
    floor=True,
    errorbar=plotting.REPLICATE_BAND,
)
plotting.save_figure(fig, output_dir, "synthetic_augmentation_ddpm")

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Samples at the last generation of one replicate, one digit class per row: fully synthetic (left) and synthetic augmentation with the last model (right), for λ = 1 and the strongest bias when one is run, and, last, augmentation with the accumulated pool.", "name": "fig-augmentation-ddpm-samples"}, "image": {"alt": "Grids of generated digits at the last generation, one digit class per row, with the fully synthetic loop in the left column and synthetic augmentation in the right column, one row of grids per sampling bias."}}
panels, titles = {}, {}
for run in ddpm_runs:
    c = run.config
    if c.seed != seed or c.lam not in ddpm_judged:
        continue  # one replicate of each loop the verdicts rest on
    key = (c.lam, c.family, c.synthetic_source)
    panels[key] = sample_panels(run, [ddpm_generations])[ddpm_generations]
    titles[key] = f"{LOOP_NAMES[(c.family, c.synthetic_source)]}, λ = {c.lam:g}"
fig = plotting.image_panels(panels, per_row=8, titles=titles, ncols=2)
plotting.save_figure(fig, output_dir, "synthetic_augmentation_ddpm_samples")

# %% [markdown]
# The growth of the median FID from generation 1 to the last generation, for each loop and sampling bias:

# %% tags=["remove-input"]
FULLY, AUGMENTED, POOL = LOOP_NAMES.values()
growth = {  # median FID change from generation 1 to the last, across replicates
    (loop, lam): change(ddpm_table, "fid", 1, ddpm_generations, loop=loop, lam=lam)
    for loop, lams in ((FULLY, ddpm_lams), (AUGMENTED, ddpm_lams), (POOL, [1.0]))
    for lam in lams
}
fid_growth = {key: found.effect for key, found in growth.items()}


def growth_numbers(loop, lams):
    """What the rule compares: the growth of ``loop`` and of the fully synthetic loop."""
    return dict(
        augmented_growth={lam: growth[(loop, lam)].effect for lam in lams},
        fully_growth={lam: growth[(FULLY, lam)].effect for lam in lams},
        spread={lam: max(growth[(loop, lam)].spread, growth[(FULLY, lam)].spread) for lam in lams},
        replicates=min(growth[(k, lam)].replicates for k in (loop, FULLY) for lam in lams),
    )


slower = judge("augmentation_ddpm", **growth_numbers(AUGMENTED, ddpm_judged))
pool_slower = judge("augmentation_ddpm_pool", **growth_numbers(POOL, [1.0]))
for (loop, lam), value in fid_growth.items():
    short = {FULLY: "fully", AUGMENTED: "aug", POOL: "pool"}[loop]
    if lam == 1.0:
        glue_value(f"aug_ddpm_{short}_unbiased_growth", value)
strongest = min(ddpm_lams)
glue_value(
    "aug_ddpm_biased_growth",
    f"With the strongest bias, λ = {strongest:g}, the growth is "
    f"{fid_growth[(FULLY, strongest)]:.1f} and {fid_growth[(AUGMENTED, strongest)]:.1f}."
    if strongest < 1.0
    else "This scale runs λ = 1 only; the `gpu` parameter set adds the paper's biased loops.",
)
glue_value("aug_ddpm_generations", ddpm_generations)
glue_value("aug_ddpm_epochs", ddpm_base.epochs)
glue_value(
    "aug_ddpm_later_epochs",
    fixed_step_epochs(ddpm_base.epochs, ddpm_base.n_ini, 2 * ddpm_base.n_ini)
    if ddpm_fixed_steps
    else ddpm_base.epochs,
)
glue_value("aug_ddpm_counts", measurement_note(ddpm_runs[-1]))
glue_value(
    "aug_ddpm_replicates",
    replicate_note(ddpm_table[ddpm_table.loop != POOL], "lam", "λ", judged=ddpm_judged),
)
glue_value("aug_ddpm_pool_replicates", growth[(POOL, 1.0)].replicates)
glue_value("aug_rule_ddpm", slower.rule)
glue_value("aug_verdict_ddpm", slower.verdict)
glue_value("aug_evidence_ddpm", slower.evidence)
glue_value("aug_rule_ddpm_pool", pool_slower.rule)
glue_value("aug_verdict_ddpm_pool", pool_slower.verdict)
glue_value("aug_evidence_ddpm_pool", pool_slower.evidence)
more_generations = 2 * ddpm_generations
glue_value("aug_ex_ddpm_generations", more_generations)
glue_value("aug_ex_ddpm_runs", len(ddpm_runs))
glue_value(
    "aug_ex_ddpm_minutes",
    sum(generation_seconds(run) for run in ddpm_runs) * (more_generations - ddpm_generations) / 60,
)
growth_table = (
    pd.DataFrame(
        [
            {
                "loop": loop,
                "λ": lam,
                "FID growth (median)": found.effect,
                "range across replicates": found.spread,
                "replicates": found.replicates,
            }
            for (loop, lam), found in growth.items()
        ]
    )
    .set_index(["loop", "λ"])
    .round(3)
)
growth_table

# %% [markdown]
# Between generation 1 and generation {glue:text}`aug_ddpm_generations` the median FID of the unbiased loop grows by {glue:text}`aug_ddpm_fully_unbiased_growth:.1f` without real data and by {glue:text}`aug_ddpm_aug_unbiased_growth:.1f` with the real digits kept.
# {glue:text}`aug_ddpm_biased_growth`
# {glue:text}`aug_ddpm_replicates`
# {glue:text}`aug_ddpm_counts`
#
# Does the fixed real set slow the decline, as in the paper?
# Verdict rule: {glue:text}`aug_rule_ddpm`.
# Measured: {glue:text}`aug_evidence_ddpm`.
# Verdict: **{glue:text}`aug_verdict_ddpm`**.
#
# The paper's E4 trains StyleGAN2 on the real faces plus every earlier model's samples, a pool that grows each generation.
# Here the same loop runs with the DDPM at $\lambda = 1$ ({glue:text}`aug_ddpm_pool_replicates:.0f` replicates): its FID grows by {glue:text}`aug_ddpm_pool_unbiased_growth:.1f`.
# Does the pool slow the decline against the fully synthetic loop, as the paper finds?
# Verdict rule: {glue:text}`aug_rule_ddpm_pool`.
# Measured: {glue:text}`aug_evidence_ddpm_pool`.
# Verdict: **{glue:text}`aug_verdict_ddpm_pool`**.
# Whether the real set stops the decline takes more generations than the `cpu` scale runs (the paper sees FID still rising after 10).

# %% tags=["remove-input"]
record_claims(
    output_dir,
    "synthetic_augmentation",
    [
        Claim.judged(
            claim="A fixed real set in every generation slows degradation compared with the fully synthetic loop but does not stop it.",
            figure="Figs. 8, 9",
            result=(
                f"Gaussian d = {dim}: W2² ratio last/first generation at λ = 1 — fully synthetic "
                f"{ratios[('fully synthetic', 1.0)]:.1f}, augmentation (last model) "
                f"{ratios[('augmentation, last model', 1.0)]:.2f}, (pool) "
                f"{ratios[('augmentation, accumulated pool', 1.0)]:.2f}; up to {worst_aug:.2f} with λ < 1. "
                f"Mixture modes after {mixture_generations} generations: fully synthetic "
                f"{modes[('fully synthetic', mixture_generations)]:.0f}, augmentation "
                f"{modes[('augmentation, last model', mixture_generations)]:.0f}"
            ),
            verdict=slows,
        ),
        Claim.judged(
            claim="DDPM with synthetic augmentation degrades more slowly than the fully synthetic loop (the paper: FID still rises for every λ, more slowly).",
            figure="E5, Figs. 9, 16",
            result=(
                "median FID growth over "
                f"{ddpm_generations} generations, augmentation vs fully synthetic: "
                + ", ".join(
                    f"λ = {lam:g}: {fid_growth[(AUGMENTED, lam)]:+.1f} vs "
                    f"{fid_growth[(FULLY, lam)]:+.1f}"
                    for lam in ddpm_lams
                )
                + f" (judged: λ = {', '.join(f'{lam:g}' for lam in ddpm_judged)})"
            ),
            verdict=slower,
        ),
        Claim.judged(
            claim="Synthetic augmentation with the accumulated pool of every earlier model's samples degrades more slowly than the fully synthetic loop (E4, shown on FFHQ in the paper; here with the DDPM).",
            figure="E4, Figs. 8, 28, 29",
            result=(
                f"median FID growth over {ddpm_generations} generations at λ = 1: pool "
                f"{fid_growth[(POOL, 1.0)]:+.1f}, fully synthetic {fid_growth[(FULLY, 1.0)]:+.1f}, "
                f"last model {fid_growth[(AUGMENTED, 1.0)]:+.1f}"
            ),
            verdict=pool_slower,
        ),
    ],
)

# %% [markdown]
# ## Exercises
#
# 1. With $\lambda < 1$, where should the fitted covariance of the augmented Gaussian loop settle? Predict, then look at the total-variance panel of {numref}`fig-augmentation-gaussian`.
#
# :::{admonition} Solution
# :class: dropdown
# At a fixed point the pooled covariance satisfies, in expectation, $\Sigma^\* \approx \frac{n_r\Sigma_{\text{real}} + n_s\lambda\Sigma^\*}{n_r+n_s}$ (ignoring the between-group term).
# So $\Sigma^\* \approx \frac{n_r}{n_r + n_s(1-\lambda)}\Sigma_{\text{real}}$.
# With $n_r = n_s$ and $\lambda = 0.6$ that is about $0.71\,\Sigma_{\text{real}}$, a permanent loss of diversity.
# :::
#
# 2. Rerun with ten times more synthetic data, `madutils run synthetic_augmentation -p n_synthetic 1000`. What happens to the plateau?
#    The rerun computes the {glue:text}`aug_gaussian_runs` Gaussian runs anew; the mixture and DDPM runs do not depend on `n_synthetic` and are read back from the results store.
#    The statistics path does not draw the samples, so its cost does not grow with $n_s$.
#    The Gaussian runs of this page took {glue:text}`aug_gaussian_seconds:.0f` seconds in all (their stored timings), so expect about as long.
#
# :::{admonition} Solution
# :class: dropdown
# The real data's weight in each fit falls from one half to one eleventh, so the loop behaves more like the fully synthetic one.
# The plateau rises and, with $\lambda < 1$, the covariance settles much lower (about $n_r / (n_r + n_s(1-\lambda))$ of the real one).
# :::
#
# 3. Does the FID of the augmented DDPM loop keep rising? Double the generations, `-p ddpm_generations` {glue:text}`aug_ex_ddpm_generations`, and look at {numref}`fig-augmentation-ddpm` again.
#    A run asking for more generations extends the stored run, so only the new generations of the {glue:text}`aug_ex_ddpm_runs` DDPM runs are trained; the Gaussian and mixture runs are read back.
#    At the stored seconds per generation of these runs that takes about {glue:text}`aug_ex_ddpm_minutes:.0f` minutes.
#
# :::{admonition} Solution
# :class: dropdown
# Expect the augmented FID to keep rising, more slowly than the fully synthetic one, as in the paper's Figure 9 (still rising after 10 generations).
# Check the verdict of the DDPM claim above on the longer runs: the rule compares the growth from generation 1 to the last one.
# :::
#
# ## Summary
#
# In this chapter we:
# - kept the real training set in every generation and added synthetic samples from the last model or from an accumulated pool;
# - saw the fixed real data bound the drift of the Gaussian and keep the mixture's modes alive for longer;
# - saw that with sampling bias the loop still settles away from the real distribution.
#
# **What's next:** the [fresh data loop](fresh_data.ipynb), where new real data arrive every generation.
