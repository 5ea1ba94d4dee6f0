"""The ``madutils`` command line.

- ``madutils loop ...`` runs one loop configuration and prints the run directory;
- ``madutils run NOTEBOOK -p NAME VALUE --scale ci|cpu|gpu --out DIR`` executes a notebook;
- ``madutils book --scale cpu`` executes every notebook and builds the site;
- ``madutils metrics`` lists the metric names of the results tables.
"""

from __future__ import annotations

import argparse
import sys

from madutils.loops.config import DATA_CHOICES, DEVICES, FAMILIES, MODELS, PATHS, SYNTHETIC_SOURCES, LoopConfig
from madutils.metrics import METRICS

__all__ = ["main"]


def _loop_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "loop",
        help="run one self-consuming loop configuration",
        description="Run (or resume) one self-consuming loop and write its run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = LoopConfig()
    p.add_argument("--family", choices=FAMILIES, default=d.family, help="loop family")
    p.add_argument("--model", choices=MODELS, default=d.model, help="generative model")
    p.add_argument(
        "--data",
        choices=DATA_CHOICES,
        default=None,
        help="real distribution (default: gaussian for --model gaussian, grid_mixture for mixture)",
    )
    p.add_argument(
        "--dim", type=int, default=d.dim, help="data dimension, integer >= 1 (2 for 2-D data)"
    )
    p.add_argument(
        "--n-ini", type=int, default=d.n_ini, help="real samples of generation 1, integer >= 1"
    )
    p.add_argument(
        "--n-real",
        type=int,
        default=None,
        help="real samples per later generation, integer >= 0 (fully_synthetic: 0; "
        "synthetic_augmentation: n-ini; fresh_data: required unless --n-total)",
    )
    p.add_argument(
        "--n-synthetic",
        type=int,
        default=None,
        help="synthetic samples per later generation, integer >= 0 (default n-ini; >= 1 for "
        "fully_synthetic)",
    )
    p.add_argument(
        "--n-total", type=int, default=None, help="fresh_data: training-set size, integer >= 1"
    )
    p.add_argument(
        "--real-fraction",
        type=float,
        default=None,
        help="fresh_data: real share p of --n-total, in (0, 1]",
    )
    p.add_argument(
        "--generations", type=int, default=d.generations, help="generations, integer >= 1"
    )
    p.add_argument(
        "--lam",
        type=float,
        default=d.lam,
        help="sampling bias lambda in (0, 1]: 1 = unbiased, smaller = less diverse",
    )
    p.add_argument(
        "--synthetic-source",
        choices=SYNTHETIC_SOURCES,
        default=d.synthetic_source,
        help="where synthetic samples come from: the last model, an accumulated pool of all "
        "earlier models' samples, or the K most recent models",
    )
    p.add_argument(
        "--memory", type=int, default=d.memory, help="K for --synthetic-source memory, integer >= 1"
    )
    p.add_argument(
        "--seeds", type=int, default=d.seeds, help="replicates run together, integer >= 1"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed, integer >= 0")
    p.add_argument(
        "--path",
        choices=PATHS,
        default=d.path,
        help="gaussian only: draw samples, or draw their exact sufficient statistics (fast)",
    )
    p.add_argument(
        "--n-components", type=int, default=d.n_components, help="mixture components, integer >= 1"
    )
    p.add_argument(
        "--n-eval",
        type=int,
        default=None,
        help="samples for sample-based metrics, integer >= 1 (default n-ini)",
    )
    p.add_argument(
        "--k", type=int, default=d.k, help="nearest neighbours for precision/recall, integer >= 1"
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=sorted(METRICS),
        default=None,
        metavar="METRIC",
        help="metrics to record (default: the model's); one or more of "
        + ", ".join(sorted(METRICS)),
    )
    p.add_argument("--device", choices=DEVICES, default=d.device, help="where to compute")
    p.add_argument("--out", default="runs", help="parent directory of the run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _run_loop_command(args, parser) -> int:
    from madutils.loops.batched import run_loop

    values = {k: v for k, v in vars(args).items() if k not in ("command", "out", "quiet")}
    if values["metrics"] is not None:
        values["metrics"] = tuple(values["metrics"])
    try:
        config = LoopConfig(**values)
        result = run_loop(config, args.out, progress=not args.quiet)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    last = result.table[result.table.generation == result.table.generation.max()]
    summary = last.groupby("metric", sort=False)["value"].mean()
    print(f"generation {int(last.generation.max())}, mean over {config.seeds} seed(s):")
    for name, value in summary.items():
        print(f"  {name:>15s}  {value:.6g}")
    print(f"run directory: {result.run_dir}")
    return 0


def _run_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="execute a notebook with papermill at a scale, with parameter overrides",
        description="Execute notebooks/NOTEBOOK.py with the parameters of --scale, overridden by "
        "-p NAME VALUE (VALUE read as YAML: 3, 0.5, '[1.0, 0.8]'). Unknown names are errors.",
    )
    p.add_argument("notebook", help="a notebook name in notebooks/ (e.g. fresh_data) or a path")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override one parameter (repeatable)",
    )
    p.add_argument(
        "--scale",
        choices=("ci", "cpu", "gpu"),
        default="cpu",
        help="parameter file to start from (default: cpu)",
    )
    p.add_argument(
        "--out",
        default="executed",
        help="directory for the executed notebook, its figures and timings (default: executed)",
    )
    p.add_argument("--notebooks-dir", default="notebooks", help="where the notebook sources are")
    return p


def _run_notebook_command(args, parser) -> int:
    from madutils.runner import parse_cli_value, run_notebook

    overrides = {name: parse_cli_value(value) for name, value in args.parameter}
    try:
        result = run_notebook(
            args.notebook,
            scale=args.scale,
            parameters=overrides,
            out=args.out,
            notebooks_dir=args.notebooks_dir,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"{result.notebook} ({result.scale}) took {result.seconds:.1f} s: {result.executed}")
    return 0


def _book_command(args, parser) -> int:
    from madutils.book import build_book

    try:
        index = build_book(args.scale)
    except (ValueError, RuntimeError) as error:
        print(f"madutils book: {error}", file=sys.stderr)
        return 1
    print(f"the book is built: open {index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="madutils", description="Self-consuming generative loops (Alemohammad et al. 2024)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    loop_parser = _loop_parser(sub)
    run_parser = _run_parser(sub)
    book_parser = sub.add_parser("book", help="execute every notebook and build the site")
    book_parser.add_argument(
        "--scale",
        choices=("ci", "cpu", "gpu"),
        default="cpu",
        help="parameter files of the notebooks (default: cpu)",
    )
    sub.add_parser("metrics", help="list the metric names of the results tables")
    args = parser.parse_args(argv)
    if args.command == "loop":
        return _run_loop_command(args, loop_parser)
    if args.command == "run":
        return _run_notebook_command(args, run_parser)
    if args.command == "book":
        return _book_command(args, book_parser)
    for name, description in METRICS.items():
        print(f"{name}: {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
