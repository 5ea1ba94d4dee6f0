"""Benchmark: which sampler the DDPM should use, chosen by measurement on one trained model.

One cpu-scale DDPM generation is trained (the loop chapters' ``cpu`` recipe, generation 1 of
the fully synthetic loop, with the recipe's own ``threads``). From that one model, 1,000
images with the same labels and noise stream are drawn with ancestral DDPM sampling at 500, 100
and 50 steps and with DPM-Solver++ and its stochastic variant SDE-DPM-Solver++ at 25, 20 and 10
steps, at lambda = 1 and with the strongest guidance the chapters run (lambda = 0.5); each set
is timed and measured as a loop generation is (FID, KID, precision, recall against the
held-out real images).

The choice (:func:`madutils.analysis.samplers.choose_sampler`): the fastest setting whose every
metric, at both lambdas, lies within the real-versus-real floor's spread (highest minus lowest
value over the disjoint real sets of generation 0) of the 500-step reference. The table goes
to ``benchmarks/results/sampler.md``, the numbers and the choice to
``benchmarks/results/sampler.json`` (the reproducibility page reads it).

Run ``python benchmarks/bench_sampler.py`` (about 6 minutes on 2 cores) or ``--quick``
(a 5-epoch model, 200 images: seconds, for trying the script). Nothing else may run on the
machine meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile

import pandas as pd
from _common import RESULTS, write_table

from madutils.analysis.samplers import (
    SAMPLER_METRICS,
    choose_sampler,
    compare_samplers,
    floor_spread,
    within_floor,
)
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import ImageRun, prepare_real_images, run_image_loop
from madutils.recipes import recipe

SETTINGS = (
    ("ddpm", 500),
    ("ddpm", 100),
    ("ddpm", 50),
    ("dpm_solver", 25),
    ("dpm_solver", 20),
    ("dpm_solver", 10),
    ("dpm_solver_sde", 25),
    ("dpm_solver_sde", 20),
    ("dpm_solver_sde", 10),
)
REFERENCE = ("ddpm", 500)
LAMS = (1.0, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 5-epoch model, 200 images")
    args = parser.parse_args()
    config = ImageLoopConfig(
        **{**recipe("ddpm", "cpu"), "generations": 1, "family": "fully_synthetic"}
    )
    if args.quick:
        config = dataclasses.replace(config, epochs=5, held_out=200)
    cfg = config.resolved()
    with tempfile.TemporaryDirectory() as scratch:
        result = run_image_loop(cfg, scratch, progress=True)
        model = ImageRun(result.run_dir).model(1)
    real = prepare_real_images(cfg)
    floor = result.table[result.table["generation"] == 0]
    spread = floor_spread(floor)
    tables = []
    for lam in LAMS:
        table = compare_samplers(
            model,
            real,
            SETTINGS,
            training=real.train.images,  # holds generation 1's training images
            n=cfg.n_eval,
            lam=lam,
            seed=cfg.seed,
        )
        table.insert(0, "lam", lam)
        table["within_floor"] = within_floor(table, spread, REFERENCE)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    chosen = choose_sampler(table, spread, REFERENCE)
    reference_rate = table[
        (table.sampler == REFERENCE[0]) & (table.steps == REFERENCE[1])
    ].set_index("lam")["images_per_second"]
    rows = [
        [
            f"{row['lam']:g}",
            row["sampler"],
            row["steps"],
            f"{row['images_per_second']:.1f}",
            f"{row['images_per_second'] / reference_rate[row['lam']]:.1f}x",
            *(f"{row[m]:.4f}" if m == "kid" else f"{row[m]:.3f}" for m in SAMPLER_METRICS),
            "yes" if row["within_floor"] else "no",
        ]
        for _, row in table.iterrows()
    ]
    floor_text = ", ".join(f"{m} {spread[m]:.4g}" for m in SAMPLER_METRICS)
    write_table(
        "sampler",
        "DDPM samplers on one trained cpu-scale model: speed and metrics",
        [
            "lambda",
            "sampler",
            "steps",
            "images/s",
            "vs ddpm 500",
            *SAMPLER_METRICS,
            "within floor of ddpm 500",
        ],
        rows,
        notes=(
            f"{cfg.n_eval:,} images per setting, the same labels and noise stream; metrics "
            f"against {cfg.held_out:,} held-out real images. Real-versus-real floor spread "
            f"({floor['replicate'].nunique()} disjoint real sets): {floor_text}. Chosen: "
            f"**{chosen[0]} with {chosen[1]} steps**, the fastest setting within the floor's "
            "spread of ancestral sampling with 500 steps at every lambda"
            + (" (--quick: a 5-epoch model)" if args.quick else "")
            + "."
        ),
    )
    record = {
        "chosen": {"sampler": chosen[0], "steps": chosen[1]},
        "reference": {"sampler": REFERENCE[0], "steps": REFERENCE[1]},
        "floor_spread": {m: float(spread[m]) for m in SAMPLER_METRICS},
        "floor_sets": int(floor["replicate"].nunique()),
        "n_images": int(cfg.n_eval),
        "quick": bool(args.quick),
        "rows": json.loads(table.to_json(orient="records")),
    }
    (RESULTS / "sampler.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
