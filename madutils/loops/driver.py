"""The one loop driver: resume, progress, timings, rows and the results table of every loop.

A loop kind (:class:`~madutils.loops.batched.BatchedLoop`, many replicates of a small model as
one tensor program; :class:`~madutils.loops.images.ImageLoop`, one replicate of an image model)
subclasses :class:`Loop` and says how one generation runs and what it must keep to resume;
:func:`drive` does everything else the same way for both:

1. reopen the run directory and restore the state after the last finished generation;
2. run the remaining generations under a progress bar, each one recorded as soon as it is done
   (its rows first, then the state that marks it finished, both written atomically);
3. return the long-form table of generations ``1..generations`` (with any rows the loop puts
   before them, such as the image loops' real-data floor) and the seconds per generation, and
   write them to ``results.csv`` and ``timings.csv``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from madutils.results import COLUMNS, RunStore

__all__ = ["Loop", "LoopResult", "drive", "metric_rows"]


def metric_rows(config, records: list[tuple[int, dict]], replicates: int) -> pd.DataFrame:
    """Long-form rows from ``(generation, {metric: values of shape (replicates,)})`` records.

    Columns :data:`madutils.results.COLUMNS`: ``seed`` is the run's seed and ``replicate`` the
    index of the replicate within the run.
    """
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    keys = [(generation, name) for generation, values in records for name in values]
    values = np.concatenate(
        [np.asarray(v, dtype=np.float64).reshape(-1) for _, vals in records for v in vals.values()]
    )
    table = pd.DataFrame(
        {
            "replicate": np.tile(np.arange(replicates), len(keys)),
            "generation": np.repeat([g for g, _ in keys], replicates),
            "metric": np.repeat(np.array([m for _, m in keys], dtype=object), replicates),
            "value": values,
        }
    )
    table.insert(0, "family", config.family)
    table.insert(1, "model", config.model)
    table.insert(2, "lam", config.lam)
    table.insert(3, "seed", config.seed)
    return table


class Loop(ABC):
    """The state and steps of one run of a loop; :func:`drive` runs it.

    Parameters
    ----------
    config
        The resolved settings (``family``, ``model``, ``lam``, ``seed``, ``generations``).
    store : RunStore or None
        The run directory, or ``None`` for a run kept in memory.
    """

    #: Columns of ``timings.csv`` besides ``generation``: seconds per phase of a generation.
    timing_columns: tuple[str, ...] = ("fit_seconds", "measure_seconds")

    def __init__(self, config, store: RunStore | None):
        self.cfg = config
        self.store = store
        self.timings: list[dict] = []

    @property
    @abstractmethod
    def replicates(self) -> int:
        """Independent replicates the run simulates."""

    @abstractmethod
    def step(self, generation: int) -> dict[str, np.ndarray]:
        """Run one generation (storing its artifacts when there is a store); return its metric
        values, one array of shape ``(replicates,)`` per metric."""

    @abstractmethod
    def state(self, generation: int) -> dict:
        """What the loop needs to continue after ``generation``."""

    @abstractmethod
    def restore(self, state: dict) -> int:
        """Continue from a saved state; return the last finished generation."""

    def leading_rows(self) -> pd.DataFrame | None:
        """Rows put before generation 1 in the table (none by default)."""
        return None

    def record_time(self, generation: int, **seconds: float) -> None:
        """Keep the seconds ``generation`` spent in each phase (:attr:`timing_columns`)."""
        self.timings.append({"generation": generation, **seconds})

    def timings_table(self) -> pd.DataFrame:
        """Seconds per generation ``1..generations``."""
        frame = pd.DataFrame(self.timings, columns=["generation", *self.timing_columns])
        return frame[frame["generation"] <= self.cfg.generations].reset_index(drop=True)


@dataclass
class LoopResult:
    """What a loop run returns.

    Attributes
    ----------
    table : pandas.DataFrame
        Long-form results, columns :data:`madutils.results.COLUMNS`.
    timings : pandas.DataFrame
        Seconds per generation (``generation`` and one column per phase).
    config
        The settings with every default resolved.
    run_dir : Path or None
        The run directory, when the run was stored.
    """

    table: pd.DataFrame
    timings: pd.DataFrame
    config: object
    run_dir: Path | None


def drive(loop: Loop, *, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run (or resume) ``loop`` up to its ``generations``; return ``(table, timings)``.

    With a store, every finished generation is recorded as it ends, a rerun resumes after the
    last finished one, and ``results.csv`` / ``timings.csv`` are written at the end.
    """
    cfg, store = loop.cfg, loop.store
    done = 0
    previous = None
    if store is not None:
        state = store.load_state(device=getattr(cfg, "device", "cpu"))
        if state is not None:
            done = loop.restore(state)
            previous = store.results(min(done, cfg.generations))
    bar = tqdm(
        range(done + 1, cfg.generations + 1),
        total=cfg.generations,
        initial=min(done, cfg.generations),
        desc=f"{cfg.family} {cfg.model} lam={cfg.lam:g}",
        unit="gen",
        disable=not progress,
    )
    records = []
    for generation in bar:
        values = loop.step(generation)
        records.append((generation, values))
        if store is not None:
            rows = metric_rows(cfg, [(generation, values)], loop.replicates)
            store.save_generation(generation, rows, loop.state(generation))
    parts = [
        part
        for part in (loop.leading_rows(), previous, metric_rows(cfg, records, loop.replicates))
        if part is not None and len(part)
    ]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    timings = loop.timings_table()
    if store is not None:
        store.write_results(table)
        store.write_timings(timings)
    return table, timings
