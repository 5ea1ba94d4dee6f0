"""Benchmark: seconds per training batch of the StyleGAN2 recipes, and the gpu set's hours.

For each scale of ``madutils/recipes/stylegan2.yaml`` that the device at hand can run in
reasonable time, :func:`madutils.analysis.cost.seconds_per_batch` trains the recipe's networks
from scratch on random images and times their batches (one torch thread on the CPU, as a book
worker runs). The ``gpu`` recipe (config-F-sized networks at 128x128) is timed only on a CUDA
device unless ``--gpu-on-cpu`` asks for it (one batch on the CPU took over 200 s). With a
measurement of the gpu networks on a GPU, the hours of one replicate of the StyleGAN2 chapter's
three gpu loops follow (:func:`madutils.analysis.cost.training_hours`).

The table goes to ``benchmarks/results/stylegan2.md``, the numbers to
``benchmarks/results/stylegan2.json`` (``gpu_seconds_per_batch``: what the StyleGAN2 chapter
turns into GPU-hours). Run ``python benchmarks/bench_stylegan2.py`` (a minute on the CPU);
nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _common import RESULTS, write_table

from madutils.analysis.cost import seconds_per_batch, training_batches, training_hours
from madutils.analysis.stylegan2 import chapter_parameters, chapter_runs
from madutils.loops.image_config import ImageLoopConfig
from madutils.recipes import recipe


def gpu_loops() -> list[ImageLoopConfig]:
    """The StyleGAN2 chapter's loops at its gpu scale, one replicate."""
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    return chapter_runs(chapter_parameters("gpu", notebooks), replicates=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-on-cpu", action="store_true", help="time the gpu recipe on a CPU")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(1)
    device = "cuda" if cuda else "cpu"
    scales = ["ci", "cpu"] + (["gpu"] if cuda or args.gpu_on_cpu else [])
    measured = {}
    record = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "seconds_per_batch": measured,
    }
    rows = []
    for scale in scales:
        config = ImageLoopConfig(
            **recipe("stylegan2", scale), family="fully_synthetic", device=device
        )
        heavy = scale == "gpu" and not cuda
        seconds = seconds_per_batch(config, batches=1 if heavy else 16, warmup=1)
        batches = training_batches(config)[0]
        measured[scale] = seconds
        rows.append(
            [
                scale,
                config.resolved_image_size,
                config.batch_size,
                f"{seconds:.4f}",
                f"{batches:,}",
                f"{seconds * batches / 60:.1f}",
            ]
        )
    if cuda:  # the gpu networks timed on a GPU: what the chapter turns into GPU-hours
        record["gpu_seconds_per_batch"] = measured["gpu"]
        record["gpu_hours_per_replicate"] = training_hours(gpu_loops(), measured["gpu"])
    notes = (
        f"Device: {record['device']}. One generation's training is the batches of one "
        "fully synthetic generation times the seconds per batch."
    )
    if "gpu_hours_per_replicate" in record:
        notes += (
            f" One replicate of the chapter's three gpu loops: "
            f"{record['gpu_hours_per_replicate']:,.0f} GPU-hours."
        )
    write_table(
        "stylegan2",
        "StyleGAN2: seconds per training batch of each recipe",
        ["scale", "size", "batch", "s / batch", "batches / generation", "minutes / generation"],
        rows,
        notes,
    )
    (RESULTS / "stylegan2.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
