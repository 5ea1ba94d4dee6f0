"""One sweep for every kind of loop: a base configuration varied over a grid of settings.

:func:`run_sweep` runs a :class:`~madutils.loops.config.LoopConfig` (batched models) or an
:class:`~madutils.loops.image_config.ImageLoopConfig` (image models) for every combination of
the settings it is given, reads finished runs back from the results store instead of
recomputing them, and returns one tidy table: the rows of every run, with one column for every
setting that is varied (besides the columns every table has: ``family, model, lam, seed,
replicate, generation, metric, value``), so no caller has to patch a table afterwards.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from madutils.loops.config import LoopConfig
from madutils.loops.driver import LoopResult
from madutils.loops.image_config import ImageLoopConfig
from madutils.results import COLUMNS

__all__ = ["Sweep", "generation_seconds", "run_one", "run_sweep", "sweep_settings"]


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


def run_one(config, runs_dir: str | Path | None = None, *, progress: bool = False) -> LoopResult:
    """Run (or read back) one loop of either kind."""
    if isinstance(config, ImageLoopConfig):
        from madutils.loops.images import run_image_loop

        return run_image_loop(config, runs_dir, progress=progress)
    if isinstance(config, LoopConfig):
        from madutils.loops.batched import run_loop

        return run_loop(config, runs_dir, progress=progress)
    raise ValueError(
        f"config must be a LoopConfig or an ImageLoopConfig; got {type(config).__name__}"
    )


def _with_settings(frame: pd.DataFrame, settings: dict) -> pd.DataFrame:
    frame = frame.copy()
    for name, value in settings.items():
        if name in COLUMNS:
            continue  # already a column, with the run's value
        frame[name] = str(tuple(value)) if isinstance(value, list | tuple) else value
    return frame


def run_sweep(
    base,
    runs_dir: str | Path | None = None,
    *,
    cases: list[dict] | None = None,
    progress: bool = True,
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
        A progress bar over the runs (for a sweep of more than one run).
    **vary : list
        Setting name to the values it takes, e.g. ``lam=[1.0, 0.8], family=[...]``.

    Returns
    -------
    Sweep
        ``sweep.table`` holds the rows of every run with one column per varied setting that
        is not one of :data:`madutils.results.COLUMNS` (``seed`` is the run's seed,
        ``replicate`` the replicate's index within the run).
    """
    combos = sweep_settings(base, vary, cases)
    varied = list(dict.fromkeys(name for settings in combos for name in settings))
    results, tables, timings = [], [], []
    for settings in tqdm(combos, desc="runs", disable=not progress or len(combos) < 2):
        config = dataclasses.replace(base, **settings)
        result = run_one(config, runs_dir)
        results.append(result)
        labels = {name: getattr(config, name) for name in varied}
        tables.append(_with_settings(result.table, labels))
        timings.append(_with_settings(result.timings, labels))
    return Sweep(
        table=pd.concat(tables, ignore_index=True),
        timings=pd.concat(timings, ignore_index=True),
        results=results,
        varied=varied,
    )


def generation_seconds(result: LoopResult) -> float:
    """Median seconds per generation (every phase: training, sampling, measuring) of a run."""
    phases = [c for c in result.timings.columns if c.endswith("_seconds")]
    totals = result.timings[phases].sum(axis=1)
    return float(np.median(totals)) if len(totals) else float("nan")
