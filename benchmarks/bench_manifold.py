"""Benchmark of the blocked k-NN manifold metrics against prdc (run by hand, not by the tests).

Two parts:

1. Speed and agreement: ``madutils.metrics.manifold`` versus ``prdc.compute_prdc`` on the same
   features in the same process (median of ``--repeats`` runs each), with the largest absolute
   difference of the four values. Default N = M = 10,000, D = 64, float32 and float64.
2. Scale: ours only at N = M = 50,000, D = 2,048 float32 (prdc runs out of memory there: it
   builds full N x N arrays). Each size runs in a fresh child process that reports its own
   peak resident set size (``VmHWM`` from ``/proc/self/status``), so torch's allocations are
   counted. (``ru_maxrss`` is no good here: a forked child starts with the parent's resident
   pages counted, and the parent has just run prdc on large arrays.)

The results are printed as a markdown table and written to ``benchmarks/results/manifold.md``.

Usage::

    python benchmarks/bench_manifold.py            # full run (the large part takes minutes)
    python benchmarks/bench_manifold.py --quick    # small sizes, seconds
    python benchmarks/bench_manifold.py --malloc-tuning   # keep glibc from unmapping buffers
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from madutils.metrics.manifold import (
    METRIC_NAMES,
    ManifoldReference,
    precision_recall_density_coverage,
)

RESULTS = Path(__file__).resolve().parent / "results" / "manifold.md"


def tune_malloc() -> None:
    """Keep large buffers on the glibc heap and never trim it (see toolchain-notes.md)."""
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_max = -1, -4
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**30)


def features(n: int, dim: int, seed: int, dtype: torch.dtype, scale: float = 1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator, dtype=dtype).mul_(scale)


def rss_gib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def interleaved_median_times(functions: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall time of each function, running them in turn so load hits all alike."""
    times = {name: [] for name in functions}
    results = {}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, results


def compare_with_prdc(n: int, dim: int, dtype: torch.dtype, k: int, repeats: int) -> dict:
    import prdc

    real = features(n, dim, seed=0, dtype=dtype)
    fake = features(n, dim, seed=1, dtype=dtype, scale=1.1)
    real_np, fake_np = real.numpy(), fake.numpy()

    def run_prdc():
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
            return prdc.compute_prdc(real_np, fake_np, nearest_k=k)

    precision_recall_density_coverage(real=real[:200], synthetic=fake[:200], k=k)  # warm-up
    reference = ManifoldReference(real, k=k)
    medians, results = interleaved_median_times(
        {
            "ours": lambda: precision_recall_density_coverage(real=real, synthetic=fake, k=k),
            "cached": lambda: reference.compute(fake),
            "prdc": run_prdc,
        },
        repeats,
    )
    ours_s, cached_s, prdc_s = medians["ours"], medians["cached"], medians["prdc"]
    ours, theirs = results["ours"], results["prdc"]
    diff = max(abs(float(ours[m]) - float(theirs[m])) for m in METRIC_NAMES)
    return {
        "N = M": f"{n:,}",
        "D": dim,
        "dtype": str(dtype).removeprefix("torch."),
        "ours (s)": f"{ours_s:.2f}",
        "ours, cached real (s)": f"{cached_s:.2f}",
        "prdc (s)": f"{prdc_s:.2f}",
        "speed-up": f"{prdc_s / ours_s:.1f}x",
        "max abs diff": f"{diff:.1e}",
        "same counts": "yes" if diff * k * n < 0.5 else "no",
        "values (P, R, D, C)": ", ".join(f"{float(ours[m]):.4f}" for m in METRIC_NAMES),
    }


def child(n: int, dim: int, k: int, threads: int, malloc: bool) -> None:
    """Run one large evaluation and print time and peak RSS as JSON (in a fresh process)."""
    if malloc:
        tune_malloc()
    torch.set_num_threads(threads)
    real = features(n, dim, seed=0, dtype=torch.float32)
    fake = features(n, dim, seed=1, dtype=torch.float32)  # same distribution, new draw
    inputs_gib = rss_gib("VmRSS")
    start = time.perf_counter()
    scores = precision_recall_density_coverage(real=real, synthetic=fake, k=k)
    seconds = time.perf_counter() - start
    peak_gib = rss_gib("VmHWM")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_gib": peak_gib,
                "inputs_gib": inputs_gib,
                "values": [float(scores[m]) for m in METRIC_NAMES],
            }
        )
    )


def large(n: int, dim: int, k: int, threads: int, malloc: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(n), str(dim)]
    command += ["--k", str(k), "--threads", str(threads)] + (["--malloc-tuning"] * malloc)
    wall = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - wall
    result = json.loads(output.strip().splitlines()[-1])
    return {
        "N = M": f"{n:,}",
        "D": dim,
        "dtype": "float32",
        "ours (s)": f"{result['seconds']:.1f}",
        "peak RSS (GiB)": f"{result['peak_gib']:.2f}",
        "RSS after inputs (GiB)": f"{result['inputs_gib']:.2f}",
        "child wall (s)": f"{wall:.1f}",
        "values (P, R, D, C)": ", ".join(f"{v:.4f}" for v in result["values"]),
    }


def markdown_table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2],
        help="torch thread counts to compare (default 2); the large part uses the first",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--k", type=int, default=5, help="neighbour for the radii")
    parser.add_argument("--skip-large", action="store_true", help="skip the ours-only part")
    parser.add_argument("--malloc-tuning", action="store_true", help="glibc: no mmap, no trim")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(*args.child, k=args.k, threads=args.threads[0], malloc=args.malloc_tuning)
        return
    if args.malloc_tuning:
        tune_malloc()

    compare_sizes = [(2_000, 64)] if args.quick else [(10_000, 64)]
    large_sizes = [(10_000, 512)] if args.quick else [(50_000, 2_048)]
    load_start = os.getloadavg()[0]

    compare_rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for n, dim in compare_sizes:
            for dtype in (torch.float32, torch.float64):
                row = {"threads": threads}
                row.update(compare_with_prdc(n, dim, dtype, args.k, args.repeats))
                compare_rows.append(row)
    large_rows = (
        []
        if args.skip_large
        else [large(n, dim, args.k, args.threads[0], args.malloc_tuning) for n, dim in large_sizes]
    )

    load_end = os.getloadavg()[0]
    cpu = platform.processor() or platform.machine()
    report = [
        "# Manifold metrics: blocked torch versus prdc",
        "",
        f"torch {torch.__version__}, torch threads {args.threads} (large part: {args.threads[0]}), "
        f"{os.cpu_count()} CPUs ({cpu}), "
        f"k = {args.k}, median of {args.repeats} runs, glibc malloc tuning: "
        f"{'on' if args.malloc_tuning else 'off'}, load average {load_start:.2f} at start, "
        f"{load_end:.2f} at end"
        f"{', quick mode' if args.quick else ''}.",
        "",
        "## Speed and agreement with prdc 0.2",
        "",
        markdown_table(compare_rows),
        "",
        "'ours, cached real' is `ManifoldReference.compute` with the real radii already computed "
        "(the per-generation cost in a loop). Differences, if any, come from distances rounded "
        "differently next to a radius (prdc computes float32 distances in float64); float32 "
        "results are float32 fractions, hence differences of about 1e-8 with identical counts. "
        "prdc's threads are its own (scikit-learn `n_jobs=8`, NumPy's BLAS), not `threads`.",
    ]
    if large_rows:
        report += [
            "",
            "## Scale (ours only; prdc builds full N x N arrays and runs out of memory)",
            "",
            markdown_table(large_rows),
            "",
            "Peak RSS is the child process's `VmHWM` (high-water mark), inputs included; "
            "'RSS after inputs' is the resident size once both N x D float32 sets exist. "
            "Here the synthetic set is a second draw from the real distribution.",
        ]
    text = "\n".join(report) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
