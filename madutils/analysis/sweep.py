"""One sweep for every kind of loop: a base configuration varied over a grid of settings.

:func:`run_sweep` runs a :class:`~madutils.loops.config.LoopConfig` (batched models) or an
:class:`~madutils.loops.image_config.ImageLoopConfig` (image models) for every combination of
the settings it is given, reads finished runs back from the results store instead of
recomputing them, and returns one tidy table: the rows of every run, with one column for every
setting that is varied (besides the columns every table has: ``family, model, lam, seed,
replicate, generation, metric, value, code``), so no caller has to patch a table afterwards.

Where the runs execute is the :class:`~madutils.engine.Engine`'s choice: one after another in
this process (the default), or one Dask task per run on a local cluster of single-threaded
workers, an existing scheduler or a job queue (``workers=``, ``scheduler=``, ``cluster=``, or
their environment variables). On a cluster, runs already finished in the store are read back
here and never submitted, results come back as each run finishes, a run that raises is
reported at the end while every other run finishes and is kept (:class:`SweepError`), and a
worker lost in the middle of a run has its task retried elsewhere, where the run resumes after
its last finished generation. The table is the sequential path's, row for row.
:func:`start_sweep` submits the runs and returns at once, for a caller that has other work
to do meanwhile; its :class:`PendingSweep` collects them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from madutils.engine import Engine, engine_client
from madutils.errors import SweepError
from madutils.loops.config import LoopConfig
from madutils.loops.driver import LoopResult
from madutils.loops.image_config import ImageLoopConfig
from madutils.results import COLUMNS, RunStore, run_name

__all__ = [
    "PendingSweep",
    "Sweep",
    "SweepError",
    "generation_seconds",
    "is_stored",
    "run_one",
    "run_sweep",
    "start_sweep",
    "sweep_settings",
]


@dataclass
class Sweep:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        The rows of every run: :data:`madutils.results.COLUMNS` plus one column per varied
        setting.
    timings : pandas.DataFrame
        Seconds per generation of every run, with the same setting columns.
    results : list of LoopResult
        The runs, in the order of the grid (the first setting varies slowest).
    varied : list of str
        The varied settings.
    """

    table: pd.DataFrame
    timings: pd.DataFrame
    results: list[LoopResult]
    varied: list[str]

    def result(self, **settings) -> LoopResult:
        """The one run whose settings have these values, e.g. ``sweep.result(lam=0.5)``."""
        matches = [
            r
            for r in self.results
            if all(
                getattr(r.config, k) == _setting_value(k, v, r.config) for k, v in settings.items()
            )
        ]
        if len(matches) != 1:
            raise ValueError(
                f"{len(matches)} runs of this sweep have the settings {settings}; "
                f"the sweep varies {self.varied}"
            )
        return matches[0]


def _setting_value(name: str, value, config):
    current = getattr(config, name)
    return tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value


def sweep_settings(base, vary: dict, cases: list[dict] | None = None) -> list[dict]:
    """The settings of every run of a sweep, checked: one dict per run.

    Every case (a dict of settings; one empty case when ``cases`` is None) is crossed with the
    grid of ``vary`` (setting name to a list of values).

    Raises
    ------
    ValueError
        For a setting the configuration does not have (the message lists the valid ones), a
        value of ``vary`` that is not a list of values, or a setting both in a case and in
        ``vary``.
    """
    fields = {f.name for f in dataclasses.fields(type(base))}
    cases = [{}] if cases is None else [dict(case) for case in cases]
    if not cases:
        raise ValueError("cases must hold at least one dict of settings (or be None)")
    named = set(vary).union(*cases)
    unknown = sorted(named - fields)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; valid: {sorted(fields)}")
    for name, values in vary.items():
        if isinstance(values, str) or not hasattr(values, "__iter__"):
            raise ValueError(f"{name} must be a list of values to sweep over; got {values!r}")
    both = sorted(set(vary) & set().union(*cases))
    if both:
        raise ValueError(f"setting(s) {both} are given both in cases and as a sweep")
    names = list(vary)
    grid = [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(list(vary[n]) for n in names))
    ]
    return [{**case, **point} for case in cases for point in grid]


def run_one(
    config,
    runs_dir: str | Path | None = None,
    *,
    progress: bool = False,
    allow_code_change: bool = False,
    keep_samples: bool = False,
) -> LoopResult:
    """Run (or read back) one loop of either kind.

    ``keep_samples`` is :func:`madutils.loops.run_loop`'s (batched loops; image loops always
    store their samples).
    """
    if isinstance(config, ImageLoopConfig):
        from madutils.loops.images import run_image_loop

        return run_image_loop(
            config, runs_dir, progress=progress, allow_code_change=allow_code_change
        )
    if isinstance(config, LoopConfig):
        from madutils.loops.batched import run_loop

        return run_loop(
            config,
            runs_dir,
            progress=progress,
            allow_code_change=allow_code_change,
            keep_samples=keep_samples,
        )
    raise ValueError(
        f"config must be a LoopConfig or an ImageLoopConfig; got {type(config).__name__}"
    )


def is_stored(config, runs_dir: str | Path | None) -> bool:
    """Whether ``runs_dir`` holds every generation ``config`` asks for, all checking."""
    if runs_dir is None:
        return False
    resolved = config.resolved()
    path = Path(runs_dir) / run_name(resolved.to_dict())
    if not (path / "config.json").exists():
        return False
    return RunStore(path, resolved.to_dict()).check().finished >= resolved.generations


def _run_task(config, runs_dir, options: dict) -> LoopResult:
    """One run of a sweep as a Dask task (it computes with its own ``threads`` setting);
    ``options`` are :func:`run_one`'s keywords."""
    return run_one(config, runs_dir, **options)


def _needs_gpu(config) -> bool:
    return str(getattr(config, "device", "cpu")).startswith("cuda")


def _describe(settings: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items()) or "the base settings"


def _with_settings(frame: pd.DataFrame, settings: dict) -> pd.DataFrame:
    frame = frame.copy()
    for name, value in settings.items():
        if name in COLUMNS:
            continue  # already a column, with the run's value
        frame[name] = str(tuple(value)) if isinstance(value, list | tuple) else value
    return frame


def start_sweep(
    base,
    runs_dir: str | Path | None = None,
    *,
    cases: list[dict] | None = None,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    allow_code_change: bool = False,
    keep_samples: bool = False,
    **vary,
) -> PendingSweep:
    """Submit the runs of a sweep and return at once; :meth:`PendingSweep.result` waits.

    The settings are :func:`run_sweep`'s, and ``start_sweep(...).result()`` is
    ``run_sweep(...)``. On a cluster the runs that are not in the store yet are submitted
    now, so they compute while the caller does other work (a chapter starts its long runs
    first and looks at them last); without a cluster nothing runs before ``result()``.

    Returns
    -------
    PendingSweep
        Its ``result()`` returns the :class:`Sweep` (and raises :class:`SweepError` as
        :func:`run_sweep` does). A job-queue cluster started for the sweep is closed by
        ``result()``.
    """
    combos = sweep_settings(base, vary, cases)
    configs = [dataclasses.replace(base, **settings) for settings in combos]
    engine = Engine.from_settings(workers, scheduler, cluster)
    options = {"allow_code_change": allow_code_change, "keep_samples": keep_samples}
    if engine.sequential:

        def run_here() -> Sweep:
            bar = tqdm(configs, desc="runs", disable=not progress or len(configs) < 2)
            results = [run_one(c, runs_dir, **options) for c in bar]
            return _assemble(combos, configs, results)

        return PendingSweep(run_here)
    return PendingSweep(_submit_to_cluster(engine, configs, combos, runs_dir, progress, options))


def run_sweep(
    base,
    runs_dir: str | Path | None = None,
    *,
    cases: list[dict] | None = None,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    allow_code_change: bool = False,
    keep_samples: bool = False,
    **vary,
) -> Sweep:
    """Run ``base`` for every combination of the settings in ``vary`` (and every case).

    Parameters
    ----------
    base : LoopConfig or ImageLoopConfig
        Settings shared by all runs.
    runs_dir : str or Path, optional
        Results store; finished runs are read back instead of recomputed, unfinished ones
        resumed.
    cases : list of dict, optional
        Combinations of settings that are not a grid, e.g.
        ``[dict(family="fully_synthetic"), dict(family="synthetic_augmentation",
        synthetic_source="accumulate")]``; each is crossed with the grid of ``vary``.
    progress : bool
        A progress bar over the runs (for a sweep of more than one run), and on a cluster
        the dashboard address and a summary at the end.
    workers : int, optional
        Run on a local Dask cluster of this many single-threaded worker processes.
    scheduler : str, optional
        Run on the existing Dask cluster of this scheduler (``"tcp://host:8786"``).
    cluster : str, optional
        Run on a job-queue cluster described by this YAML file (:mod:`madutils.clusters`).
        Without ``workers``, ``scheduler`` and ``cluster`` the environment variables of
        :mod:`madutils.engine` decide, and without those the runs execute here, one after
        another.
    allow_code_change : bool
        Continue stored runs computed by other code (see :func:`madutils.loops.run_loop`).
    keep_samples : bool
        With ``runs_dir``: batched loops also store samples of every generation, for
        :meth:`~madutils.loops.batched.BatchedLoopResult.snapshots` (image loops always do).
    **vary : list
        Setting name to the values it takes, e.g. ``lam=[1.0, 0.8], family=[...]``.

    Returns
    -------
    Sweep
        ``sweep.table`` holds the rows of every run with one column per varied setting that
        is not one of :data:`madutils.results.COLUMNS` (``seed`` is the run's seed,
        ``replicate`` the replicate's index within the run).

    Raises
    ------
    SweepError
        On a cluster, when runs raised: after every other run finished, with each failed
        run's settings and error (``error.sweep`` holds the runs that finished).

    See Also
    --------
    start_sweep : the same, submitted now and collected later.
    """
    return start_sweep(
        base,
        runs_dir,
        cases=cases,
        progress=progress,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
        allow_code_change=allow_code_change,
        keep_samples=keep_samples,
        **vary,
    ).result()


class PendingSweep:
    """The runs of a sweep that :func:`start_sweep` submitted; :meth:`result` collects them."""

    def __init__(self, collect: Callable[[], Sweep]) -> None:
        self._collect = collect
        self._sweep: Sweep | None = None

    def result(self) -> Sweep:
        """Wait for every run and return the :class:`Sweep` (the same object when called
        again)."""
        if self._sweep is None:
            self._sweep = self._collect()
        return self._sweep

    def __repr__(self) -> str:
        state = "collected" if self._sweep is not None else "pending"
        return f"PendingSweep({state})"


def _assemble(combos: list[dict], configs: list, results: list) -> Sweep:
    varied = list(dict.fromkeys(name for settings in combos for name in settings))
    kept = [(c, r) for c, r in zip(configs, results, strict=True) if r is not None]
    tables = [_with_settings(r.table, {n: getattr(c, n) for n in varied}) for c, r in kept]
    timings = [_with_settings(r.timings, {n: getattr(c, n) for n in varied}) for c, r in kept]
    return Sweep(
        table=pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS),
        timings=pd.concat(timings, ignore_index=True) if timings else pd.DataFrame(),
        results=[r for _, r in kept],
        varied=varied,
    )


def _submit_to_cluster(engine, configs, combos, runs_dir, progress, options: dict):
    """Submit every run not in the store as one Dask task; return the function that reads
    the stored ones back, waits for the others and gives the :class:`Sweep` (grid order)."""
    start = time.perf_counter()
    stored = [i for i, c in enumerate(configs) if is_stored(c, runs_dir)]
    pending = sorted(set(range(len(configs))) - set(stored))
    connection = contextlib.ExitStack()
    futures = {}
    if pending:
        client = connection.enter_context(
            engine_client(engine, n_runs=len(pending), announce=progress)
        )
        store = None if runs_dir is None else str(Path(runs_dir).resolve())
        for i in pending:
            future = client.submit(
                _run_task,
                configs[i],
                store,
                options,
                key=_task_key(configs[i], store, options),
                resources={"GPU": 1} if _needs_gpu(configs[i]) else None,
                pure=False,
            )
            futures[future] = i

    def collect() -> Sweep:
        from distributed import as_completed

        results: list = [None] * len(configs)
        failures = []
        with connection:
            for i in stored:
                results[i] = run_one(configs[i], runs_dir, **options)
            bar = tqdm(total=len(configs), initial=len(stored), desc="runs", disable=not progress)
            for future in as_completed(futures):
                i = futures[future]
                if future.status == "error":
                    failures.append((combos[i], future.exception()))
                else:
                    results[i] = future.result()
                bar.update()
            bar.close()
        futures.clear()  # the scheduler may forget the tasks
        if progress:
            done = len(pending) - len(failures)
            print(
                f"{len(configs)} run(s) on {engine.describe()}: {done} computed, {len(stored)} "
                f"read back, {len(failures)} failed; {time.perf_counter() - start:.1f} s"
            )
        sweep = _assemble(combos, configs, results)
        if failures:
            lines = "; ".join(
                f"{_describe(s)}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                for s, e in failures
            )
            raise SweepError(
                f"{len(failures)} of {len(configs)} run(s) failed ({lines}); the other runs "
                "finished and are kept",
                failures=failures,
                sweep=sweep,
            )
        return sweep

    return collect


def _task_key(config, store: str | None, options: dict) -> str:
    """The Dask key of a run: readable (the run's name) and the same for the same run, store
    and options, so that two sweeps on one cluster that both ask for a run (two chapters of
    the book) share one task instead of one computing while the other waits for its lock."""
    where = json.dumps([store, sorted(options.items())])
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    return f"{run_name(config.resolved().to_dict())}-{digest}"


def generation_seconds(result: LoopResult) -> float:
    """Median seconds per generation (every phase: training, sampling, measuring) of a run."""
    phases = [c for c in result.timings.columns if c.endswith("_seconds")]
    totals = result.timings[phases].sum(axis=1)
    return float(np.median(totals)) if len(totals) else float("nan")
