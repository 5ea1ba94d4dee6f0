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
# # Reproducibility
#
# ## Overview
#
# Everything in this book is produced by the commands below from the code in the repository; nothing is downloaded at run time.
# This page records how this build was made: the scale of every chapter, the machine, how long each notebook took, and how to rerun at the paper's sizes.
#
# ## Scales
#
# Every notebook has three parameter files in `notebooks/params/<chapter>/`:
#
# - `ci`: seconds; what the tests run;
# - `cpu`: the default of the book, sized to show the paper's result on a 2-core machine;
# - `gpu`: the paper's sizes where the paper states them.
#
# Rerun one chapter with `madutils run <chapter> --scale gpu --out book/executed`, or the whole book with `madutils book --scale gpu`.
# Any parameter can be changed on the command line: `madutils run fresh_data -p seeds 1000`.
#
# ## Seeds
#
# Every run's random numbers derive from its `seed` parameter: generation $t$ of a run draws from independent streams named by (seed, $t$, purpose), made with NumPy's `SeedSequence`, so a run resumed after an interruption gives the same results as an uninterrupted one.
# All replicates of a run are simulated together as one batch.
# Loop results are stored in `runs/` under a name derived from all their settings; rebuilding the book reads finished runs back instead of recomputing them.

# %% tags=["hide-input"]
import json
import os
import platform
from pathlib import Path

import pandas as pd
import torch
import yaml
from IPython.display import HTML

import madutils
from madutils.allocator import tuning_state
from madutils.analysis.claims import glue_value
from madutils.recipes import available_recipes, load_recipe

# %% tags=["parameters"]
notebooks_dir = "notebooks"  # where the notebook sources and their parameter files are
output_dir = "executed"  # where the executed notebooks and timings.json are (set by madutils run)
runs_dir = "runs"  # results store of the chapters, read for the deep models' cost per generation
benchmarks_dir = "benchmarks/results"  # measured benchmark results (the sampler's choice)

# %% [markdown]
# ## This build

# %% tags=["hide-input"]
timings_file = Path(output_dir) / "timings.json"
timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
rows = [
    {
        "notebook": name,
        "scale": t["scale"],
        "seconds": t["seconds"],
        "device": t["device"],
        "started": t.get("started", ""),
        "finished": t["finished"],
    }
    for name, t in timings.items()
    if name != "reproducibility"
]
runs = pd.DataFrame(rows, columns=["notebook", "scale", "seconds", "device", "started", "finished"])
total_minutes = runs.seconds.sum() / 60
# chapters of one part of the book execute side by side on a cluster: the wall time is the
# span from the first start to the last finish, the sum counts every chapter's own time
started = pd.to_datetime(runs.started.where(runs.started != ""), errors="coerce")
finished = pd.to_datetime(runs.finished, errors="coerce")
wall_minutes = (
    (finished.max() - started.min()).total_seconds() / 60
    if started.notna().all()
    else total_minutes
)
glue_value("repro_total_minutes", total_minutes)
glue_value("repro_wall_minutes", wall_minutes)
machine = {
    "madutils": madutils.__version__,
    "torch": torch.__version__,
    "Python": platform.python_version(),
    "CPU cores": os.cpu_count(),
    "CUDA device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    "glibc allocator tuning": tuning_state(),
}
HTML(pd.Series(machine, name="value").to_frame().to_html())

# %% [markdown]
# Executing the chapters took {glue:text}`repro_wall_minutes:.1f` minutes from the first start to the last finish; their own times add up to {glue:text}`repro_total_minutes:.1f` minutes, more where chapters of one part ran side by side on a cluster (`madutils book --workers N`):

# %% tags=["hide-input"]
HTML(runs.to_html(index=False))

# %% [markdown]
# ## Cost per generation of the deep models
#
# Every stored run records the seconds each generation spent training, sampling and measuring (its `timings.csv`); the medians per run of the deep models (the flow's training includes its sampling):

# %% tags=["hide-input"]
cost_rows = []
for timing_file in sorted(Path(runs_dir).glob("*/timings.csv")):
    settings = json.loads((timing_file.parent / "config.json").read_text())["settings"]
    seconds = pd.read_csv(timing_file)
    if seconds.empty or settings["model"] not in ("ddpm", "wgan", "flow"):
        continue
    size = settings.get("image_size")
    cost_rows.append(
        {
            "run": timing_file.parent.name,
            "model": settings["model"],
            "data": f"{size}×{size} images"
            if size
            else f"{settings['data']}, {settings['seeds']} seeds",
            "training set": settings["n_ini"],
            "device": settings["device"],
            "generations": len(seconds),
            "train s": seconds.fit_seconds.median(),
            "sample s": seconds["sample_seconds"].median() if "sample_seconds" in seconds else None,
            "measure s": seconds.measure_seconds.median(),
        }
    )
cost = pd.DataFrame(cost_rows)
HTML(
    cost.round(2).to_html(index=False) if len(cost) else "<p>No deep-model runs in this build.</p>"
)

# %% [markdown]
# The first generation of a run trains on real data only, so runs that start alike share it (it is cached under `runs/first_generation/`); its training time is counted once. Its samples are cached beside it and shared by the runs that also sample it alike (the same λ), whatever their family or curation step.
#
# ## Full MNIST for the `gpu` scale
#
# The `gpu` parameter sets train on all 70,000 MNIST digits at 28×28 (60,000 for training, 10,000 held out for the metrics), which no package ships.
# Put the four standard IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, gzipped or not) in `data/mnist/` before `madutils book --scale gpu`, or point the `ddpm` parameter's `data_path` elsewhere; a folder with one sub-folder of images per class works too (`"dataset": "folder"`).

# %% [markdown]
# ## The DDPM's sampler, chosen by measurement
#
# `benchmarks/bench_sampler.py` trains one cpu-scale DDPM and draws the same images (same labels, same noise) from it with ancestral sampling at 500, 100 and 50 steps and with DPM-Solver++ and its stochastic variant SDE-DPM-Solver++ at 25, 20 and 10 steps.
# Each setting qualifies when every metric (FID, KID, precision, recall) lies within the real-versus-real floor's spread of the 500-step reference, at $\lambda = 1$ and $\lambda = 0.5$: closer to it than two disjoint sets of real digits are to each other.
# The fastest qualifying setting is the choice.

# %% tags=["hide-input"]
sampler_file = Path(benchmarks_dir) / "sampler.json"
if sampler_file.exists():
    sampler_record = json.loads(sampler_file.read_text())
    chosen = sampler_record["chosen"]
    samplers = pd.DataFrame(sampler_record["rows"])
    reference_rate = samplers[
        (samplers.sampler == sampler_record["reference"]["sampler"])
        & (samplers.steps == sampler_record["reference"]["steps"])
    ].set_index("lam")["images_per_second"]
    samplers["speed-up"] = samplers.images_per_second / samplers.lam.map(reference_rate)
    ddpm_cpu = load_recipe("ddpm", "cpu")
    in_book = samplers[
        (samplers.sampler == ddpm_cpu["sampler"]) & (samplers.steps == ddpm_cpu["steps"])
    ]
    seconds = samplers.assign(setting=list(zip(samplers.sampler, samplers.steps, strict=True)))
    seconds = seconds.groupby("setting").seconds.sum()
    book_setting = (ddpm_cpu["sampler"], ddpm_cpu["steps"])
    sampler_text = (
        f"By this rule the choice is {chosen['sampler']} with {chosen['steps']} steps (floor "
        f"spread over {sampler_record['floor_sets']} real sets of "
        f"{sampler_record['n_images']:,} images: FID {sampler_record['floor_spread']['fid']:.2f}, "
        f"KID {sampler_record['floor_spread']['kid']:.3f}, recall "
        f"{sampler_record['floor_spread']['recall']:.3f}). The cpu recipe samples with "
        f"{book_setting[0]} and {book_setting[1]} steps, "
        + (
            "a setting the benchmark did not measure"
            if not len(in_book)
            else "which the rule also accepts"
            if in_book.within_floor.all()
            else "outside that spread at some lambda"
        )
        + f": sampling the {sampler_record['n_images']:,} images at both lambdas took "
        f"{seconds.get(book_setting, float('nan')):.0f} s with the recipe's setting and "
        f"{seconds[(chosen['sampler'], chosen['steps'])]:.0f} s with the choice."
    )
    shown = samplers[
        ["lam", "sampler", "steps", "images_per_second", "speed-up"]
        + ["fid", "kid", "precision", "recall", "within_floor"]
    ]
    display_table = HTML(shown.round(4).to_html(index=False))
else:
    sampler_text = f"No sampler measurement in this checkout ({sampler_file} is missing)."
    display_table = HTML("")
glue_value("repro_sampler_choice", sampler_text)
display_table

# %% [markdown]
# {glue:text}`repro_sampler_choice`

# %% [markdown]
# ## Parameters of each scale
#
# The values each scale sets (anything not listed keeps the default in the notebook's `parameters` cell):

# %% tags=["hide-input"]
scales = []
for chapter in runs.notebook:
    folder = Path(notebooks_dir) / "params" / chapter
    for scale in ("ci", "cpu", "gpu"):
        file = folder / f"{scale}.yaml"
        values = yaml.safe_load(file.read_text()) if file.exists() else {}
        scales.append(
            {
                "chapter": chapter,
                "scale": scale,
                "settings": ", ".join(f"{k} = {v}" for k, v in (values or {}).items()),
            }
        )
HTML(pd.DataFrame(scales).to_html(index=False))

# %% [markdown]
# ## Deep-model recipes
#
# The deep models' settings live once per model and scale in `madutils/recipes/<model>.yaml`; a chapter's parameter files and `-p ddpm '{"epochs": 5}'` change single keys of them (anything not listed keeps the default of `ImageLoopConfig`):

# %% tags=["hide-input"]
recipe_rows = [
    {
        "model": model,
        "scale": scale,
        "settings": ", ".join(f"{k} = {v}" for k, v in load_recipe(model, scale).items()),
    }
    for model in available_recipes()
    for scale in ("ci", "cpu", "gpu")
]
HTML(pd.DataFrame(recipe_rows).to_html(index=False))

# %% [markdown]
# ## Commands
#
# ```bash
# make book    # install, execute every notebook at the cpu scale, build _build/html
# make test    # the test suite
# madutils book --scale gpu   # the paper's sizes, on a machine with a GPU
# ```
