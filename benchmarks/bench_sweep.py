"""Benchmark: a sweep run sequentially (one process, 2 torch threads) against a local Dask
cluster of 2 single-threaded worker processes, alone and with one background process busy on
a core.

Two grids, each measured in the four conditions side by side in one run, and one run of each
alone with one thread, which bounds what two workers can gain:

1. cpu-scale DDPM generations: the loop chapters' ``cpu`` recipe, one generation each, for
   two seeds (two independent runs; the feature network is cached beforehand so that every
   condition times the same work);
2. 25-mode mixture runs as the fully synthetic chapter runs them (EM per generation), for two
   seeds.

The background process is a pure-Python busy loop (``while True: pass``), the kind of load a
person's other work puts on a laptop: it holds one core. The sequential path computes with 2
torch threads (``threads=2``), the cluster's runs with 1 (``threads=1``); the numbers of the
two differ slightly for the DDPM, whose reductions depend on the thread count.

Run ``python benchmarks/bench_sweep.py`` (about 16 minutes on 2 cores) or ``--quick``.
Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_table

import madutils.engine
from madutils.analysis import run_sweep
from madutils.loops.config import LoopConfig
from madutils.loops.image_config import ImageLoopConfig
from madutils.loops.images import prepare_real_images
from madutils.recipes import recipe


def grids(quick: bool) -> dict:
    ddpm = ImageLoopConfig(**{**recipe("ddpm", "cpu"), "generations": 1, "device": "cpu"})
    mixture = LoopConfig(
        model="mixture",
        family="fully_synthetic",
        n_ini=500,
        generations=40,
        seeds=10,
        metrics=("precision", "recall", "modes_covered", "modal_variance", "total_variance"),
    )
    if quick:
        ddpm = dataclasses.replace(ddpm, epochs=5, steps=20)
        mixture = dataclasses.replace(mixture, generations=8)
    return {"cpu-scale DDPM generation": ddpm, "25-mode mixture run": mixture}


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _time(base, workers: int | None, out: Path, seeds=(0, 1), threads: int | None = None) -> float:
    threads = threads or (2 if workers is None else 1)
    config = dataclasses.replace(base, threads=threads)
    start = time.perf_counter()
    sweep = run_sweep(config, out, seed=list(seeds), workers=workers, progress=False)
    seconds = time.perf_counter() - start
    assert all(r.computed == r.config.generations for r in sweep.results)  # nothing read back
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (seconds)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MADUTILS_CACHE"] = str(Path(scratch) / "cache")
        for name, base in grids(args.quick).items():
            if isinstance(base, ImageLoopConfig):  # the feature network, trained once
                prepare_real_images(base.resolved(), progress=False)
            # start the local cluster before timing (its start-up is a one-off per process)
            run_sweep(
                dataclasses.replace(base, generations=1, threads=1),
                None,
                seed=[9],
                workers=2,
                progress=False,
            )
            seconds = {}
            for background in (False, True):
                for workers in (None, 2):
                    busy = _busy() if background else None
                    try:
                        out = Path(scratch) / f"{name}-{background}-{workers}"
                        seconds[background, workers] = _time(base, workers, out)
                    finally:
                        if busy is not None:
                            busy.kill()
                            busy.wait()
            # one run alone with one thread: what each worker would take without a neighbour
            one_thread = _time(base, None, Path(scratch) / f"{name}-one", seeds=(0,), threads=1)
            alone, loaded = seconds[False, None], seconds[True, None]
            ceiling = alone / one_thread  # both runs side by side, each as fast as alone
            rows.append(
                [
                    name,
                    f"{alone:.1f}",
                    f"{seconds[False, 2]:.1f}",
                    f"{alone / seconds[False, 2]:.2f}x",
                    f"{loaded:.1f}",
                    f"{seconds[True, 2]:.1f}",
                    f"{loaded / seconds[True, 2]:.2f}x",
                    f"{seconds[True, 2] / seconds[False, 2]:.2f}x",
                    f"{one_thread:.1f}",
                    f"{ceiling:.2f}x",
                ]
            )
    madutils.engine._close_kept()
    write_table(
        "sweep",
        "A sweep of two runs: sequential (2 torch threads) vs a 2-worker local cluster",
        [
            "grid",
            "sequential s",
            "2 workers s",
            "speed-up",
            "sequential + busy core s",
            "2 workers + busy core s",
            "speed-up",
            "2 workers: busy / alone",
            "1 run, 1 thread, alone s",
            "ideal speed-up",
        ],
        rows,
        notes=(
            "Each number is one sweep of two independent runs (seeds 0 and 1), measured side by "
            "side in one run of `benchmarks/bench_sweep.py`"
            + (" --quick" if args.quick else "")
            + "; 'busy core' means one other process spinning on a core meanwhile. 'Ideal "
            "speed-up' is what two workers would reach if each ran as fast as one "
            "single-threaded run alone: sequential seconds / (1 run, 1 thread, alone); the "
            "cluster's shortfall from it is what two processes sharing "
            "the machine's memory and caches cost."
        ),
    )


if __name__ == "__main__":
    main()
