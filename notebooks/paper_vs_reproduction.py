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
# # The paper vs this reproduction
#
# ## Overview
#
# One row per claim of the paper: the claim, where the paper shows it, what this reproduction measured, a verdict and the rule that reached it.
# The numbers come from the executed chapters of this build, not typed by hand.
# The verdicts *reproduced*, *partly*, *not shown at this scale* and *not reproduced* are computed: each chapter hands its measured numbers to a named rule (`madutils.analysis.verdicts`), whose thresholds the last column states.
# The deep-model experiments run several independent replicates; for them the column "Effect (spread)" gives the effect each verdict was judged on and, in brackets, its spread: the range across replicates.
# An effect that points the claim's way but does not exceed its spread is *not shown at this scale*.
# *GPU-only* marks a claim that needs hardware or data this build does not have.

# %% tags=["remove-input"]
from IPython.display import HTML

from madutils.analysis.claims import glue_value, load_claims

# %% tags=["parameters"]
output_dir = "executed"  # where the chapters wrote their claim summaries (set by madutils run)

# %% tags=["hide-input"]
CHAPTERS = [
    "gaussian_theory",
    "fully_synthetic",
    "synthetic_augmentation",
    "stylegan2",
    "fresh_data",
    "effective_sample_size",
]
claims = load_claims(output_dir, CHAPTERS)
counts = claims.verdict.value_counts()
glue_value("claims_total", len(claims))
glue_value("claims_reproduced", int(counts.get("reproduced", 0)))
glue_value("claims_not_shown", int(counts.get("not shown at this scale", 0)))
glue_value("claims_replicated", int((claims.evidence != "").sum()))

# %% [markdown]
# Of the {glue:text}`claims_total` claims listed, {glue:text}`claims_reproduced` are reproduced by this build.
# {glue:text}`claims_replicated` of them were judged against the spread across replicates; {glue:text}`claims_not_shown` are not shown at this scale.

# %% tags=["hide-input"]
columns = ["Claim", "Figure", "Result", "Effect (spread)", "Verdict", "Rule", "Chapter"]
table = claims.rename(columns=str.capitalize).rename(columns={"Evidence": "Effect (spread)"})
table = table[columns]
HTML(table.to_html(index=False, escape=True, classes="claims-table"))

# %% [markdown]
# ## Beyond the paper
#
# The mitigations proposed since the MAD paper, each judged on the same loops, models and seeds in [Keeping the loop healthy](mitigations.ipynb): the claim of its paper, what this build measured, and a verdict computed by the rule in the last column.

# %% tags=["hide-input"]
beyond = load_claims(output_dir, ["mitigations"])
beyond_table = beyond.rename(columns=str.capitalize).rename(columns={"Evidence": "Effect (spread)"})
HTML(beyond_table[columns].to_html(index=False, escape=True, classes="claims-table"))

# %% [markdown]
# ## How to read the verdicts
#
# The Gaussian, mixture and effective-sample-size experiments are exact at CPU scale, so their verdicts rest on the same kind of evidence as the paper's (the sizes that differ from the paper's are stated in each row).
# The deep image models need far more compute than a 2-core machine offers at the paper's sizes.
# Their rows come from reduced runs (small digits, small networks, few generations; each chapter says what was scaled down and shows a real-data control), so a "reproduced" there means the paper's trend appears at that scale, not that the paper's numbers are matched; the `gpu` parameter sets run the paper's sizes.
# Each of their verdicts rests on at least three independent replicates (new seeds: a new first model, new training noise, new samples).
# A trend counts only where the change of the median exceeds the range the replicates span, so a loop that went MAD is not confused with a model that trained badly once.
# The paper itself shows single runs without error bars.
