"""The one loop driver: resume, progress, timings, rows and the results table of every loop.

A loop kind (:class:`~madutils.loops.batched.BatchedLoop`, many replicates of a small model as
one tensor program; :class:`~madutils.loops.images.ImageLoop`, one replicate of an image model)
subclasses :class:`Loop` and says how one generation runs and what it must keep to resume;
:func:`drive` does everything else the same way for both:

1. check the run directory (:meth:`~madutils.results.RunStore.check`): every stored
   generation's files against its manifest;
2. when the stored generations already cover the ones asked for, read them and write
   nothing; otherwise refuse damaged files and other code (see :mod:`madutils.results`),
   record the invocation in the run's history and restore the state after the last
   finished generation;
3. run the remaining generations under a progress bar, each one recorded as soon as it is
   done (its rows, its files, its state, then the manifest that marks it finished);
4. return the long-form table of generations ``1..generations`` (with any rows the loop puts
   before them, such as the image loops' real-data floor) and the seconds per generation,
   and write them to ``results.csv`` and ``timings.csv`` when generations were added.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from madutils.locks import file_lock
from madutils.results import COLUMNS, RunStore, check_out, code_label, run_name

__all__ = ["Loop", "LoopResult", "drive", "metric_rows", "stored_run", "torch_threads"]


def metric_rows(config, records: list[tuple[int, dict]], replicates: int) -> pd.DataFrame:
    """Long-form rows from ``(generation, {metric: values of shape (replicates,)})`` records.

    Columns :data:`madutils.results.COLUMNS`: ``seed`` is the run's seed, ``replicate`` the
    index of the replicate within the run and ``code`` the code computing the rows (now).
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
    table["code"] = code_label()
    return table


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the ``with`` block with ``threads`` torch threads (the number before is restored).

    A run's numbers depend on its thread count (the reductions of a matrix product or a
    convolution are split by thread), so a run always computes with its own ``threads``
    setting, in this process or on a worker, whatever the machine's core count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def stored_run(out, config, *, repair: bool = False):
    """The run directory of ``config`` under ``out``, held exclusively for the ``with`` block.

    Yields ``None`` for a run kept in memory (``out`` is ``None``). Another process asking
    for the same run directory (a second sweep on the same store) waits until this one is
    done (:func:`madutils.locks.file_lock`; a killed holder releases it). With ``repair``, a
    damaged ``config.json`` is rewritten from the settings and the stored generations from
    the first damaged one on are dropped (:meth:`RunStore.repair`).
    """
    if out is None:
        yield None
        return
    settings = config.to_dict()
    check_out(out)
    with file_lock(Path(out) / ".locks" / f"{run_name(settings)}.lock"):
        store = RunStore.open(out, settings, repair=repair)
        if repair:
            store.repair()
        yield store


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
    #: A large state after generation ``g`` is kept only when ``g`` is a multiple of this
    #: (small ones, and the latest, always are): a repair goes back to the last kept state.
    state_interval: int = 1

    def __init__(self, config, store: RunStore | None):
        self.cfg = config
        self.store = store
        self.timings: list[dict] = []
        #: files the current generation wrote besides its rows and state (for its manifest)
        self.written: list[Path] = []
        #: generations :func:`drive` computed (not read back)
        self.computed = 0

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
    computed : int
        Generations this call computed (0: everything was read back from the store).
    """

    table: pd.DataFrame
    timings: pd.DataFrame
    config: object
    run_dir: Path | None
    computed: int = 0


def drive(
    loop: Loop, *, progress: bool = True, allow_code_change: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run (or resume, or read back) ``loop`` up to its ``generations``.

    Parameters
    ----------
    loop : Loop
    progress : bool
        A progress bar over generations.
    allow_code_change : bool
        Continue a stored run whose finished generations were computed by other code (the
        history records the mix; the rows' ``code`` column shows it).

    Returns
    -------
    table, timings : DataFrame

    Raises
    ------
    DamagedFileError
        When a stored file the run needs does not check (``madutils repair`` is the way out).
    CodeChangedError
        When generations would be added by other code than the stored ones' and
        ``allow_code_change`` is false.
    """
    cfg, store = loop.cfg, loop.store
    wanted = cfg.generations
    done, previous = 0, None
    if store is not None:
        check = store.check()
        if check.finished >= wanted:  # everything asked for is stored: read, write nothing
            loop.timings = store.timings(wanted)
            return _table(loop, store.results(wanted), None), loop.timings_table()
        if not check.sound:
            raise store.damaged_error(check)
        changed_from = store.check_code(check, allow_code_change=allow_code_change)
        store.record_invocation(check.finished + 1, wanted, changed_from)
        if check.finished:
            done = loop.restore(store.load_state(check.finished, getattr(cfg, "device", "cpu")))
            previous = store.results(done)
            loop.timings = store.timings(done)
    bar = tqdm(
        range(done + 1, wanted + 1),
        total=wanted,
        initial=done,
        desc=f"{cfg.family} {cfg.model} lam={cfg.lam:g}",
        unit="gen",
        disable=not progress,
    )
    records = []
    for generation in bar:
        loop.written = []
        values = loop.step(generation)
        records.append((generation, values))
        loop.computed += 1
        if store is not None:
            rows = metric_rows(cfg, [(generation, values)], loop.replicates)
            seconds = next(
                (
                    {k: v for k, v in t.items() if k != "generation"}
                    for t in loop.timings
                    if t["generation"] == generation
                ),
                {},
            )
            store.save_generation(
                generation,
                rows,
                loop.state(generation),
                files=loop.written,
                seconds=seconds,
                state_interval=loop.state_interval,
            )
    table = _table(loop, previous, metric_rows(cfg, records, loop.replicates))
    timings = loop.timings_table()
    if store is not None:
        store.write_summary(table, timings)
    return table, timings


def _table(loop: Loop, stored: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame:
    parts = [p for p in (loop.leading_rows(), stored, new) if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
