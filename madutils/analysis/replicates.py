"""Effects across replicates: what a deep-model chapter measured and the noise it is judged by.

A deep-model experiment runs several independent replicates of the same loop (one seed each:
a new first generation, new training noise, new samples). A trend counts only where it stands
out of their spread, so every effect a chapter hands to a verdict rule
(:mod:`madutils.analysis.verdicts`) comes from here with its spread:

- :func:`level`: a metric at one generation, the median across replicates and its spread;
- :func:`change`: a metric from one generation to another, the change of the medians and the
  larger spread of the two generations;
- :func:`judged_changes`: those numbers for several metrics, as a verdict rule takes them;
- :func:`lam_cases` and :func:`replicate_seeds`: the runs of a replicated λ sweep, full
  replicates for the λ the verdicts rest on (:func:`judged_lams`), fewer for the others;
- :func:`replicate_counts` and :func:`replicate_note`: how many replicates each setting ran,
  for the page to say.

The spread of a metric at a generation is its range across the replicates, highest minus
lowest value: with three replicates, the band the figures draw (``plotting.REPLICATE_BAND``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "REPLICATE",
    "Change",
    "Level",
    "change",
    "judged_changes",
    "judged_lams",
    "lam_cases",
    "level",
    "replicate_counts",
    "replicate_note",
    "replicate_seeds",
]

#: The columns that tell replicates apart: each image run is one replicate (its ``seed``); a
#: batched run holds several (``replicate``).
REPLICATE = ["seed", "replicate"]


@dataclass(frozen=True)
class Level:
    """A metric at one generation across replicates.

    Attributes
    ----------
    median : float
        Median across replicates.
    spread : float
        Highest minus lowest value across replicates (0 for one replicate).
    replicates : int
        How many replicates (seeds) measured it.
    """

    median: float
    spread: float
    replicates: int


@dataclass(frozen=True)
class Change:
    """A metric from generation ``start`` to generation ``end`` across replicates.

    Attributes
    ----------
    first, last : float
        Medians across replicates at the two generations.
    spread : float
        The larger of the two generations' spreads (:attr:`Level.spread`).
    replicates : int
        The fewer of the two generations' replicate counts.
    """

    first: float
    last: float
    spread: float
    replicates: int

    @property
    def effect(self) -> float:
        """``last - first``: positive when the metric rose."""
        return self.last - self.first


def _select(table: pd.DataFrame, metric: str, generations: list, where: dict) -> pd.DataFrame:
    rows = table[(table["metric"] == metric) & table["generation"].isin(generations)]
    for name, value in where.items():
        if name not in rows:
            raise ValueError(f"the table has no column {name!r}; columns: {list(table.columns)}")
        rows = rows[np.isclose(rows[name], value) if _is_number(value) else rows[name] == value]
    return rows


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def level(table: pd.DataFrame, metric: str, generation, **where) -> Level:
    """A metric at one generation: median and range across the replicates (seeds).

    With a list of generations, each replicate's value is its mean over them (a limit
    reached over the last generations, say).

    Parameters
    ----------
    table : pandas.DataFrame
        A sweep's table (:func:`madutils.analysis.sweep.run_sweep`): columns ``metric,
        generation, seed, value`` and the columns named in ``where``.
    metric : str
        The metric, e.g. ``"fid"``.
    generation : int or list of int
        The generation (at least 1: generation 0 is the real-versus-real floor), or
        generations to average each replicate over.
    **where
        Column values that select the runs, e.g. ``lam=1.0, family="fully_synthetic"``.

    Raises
    ------
    ValueError
        If no run matches, or a column of ``where`` is not in the table.
    """
    generations = [generation] if np.ndim(generation) == 0 else list(generation)
    rows = _select(table, metric, generations, where)
    if rows.empty:
        raise ValueError(
            f"no {metric!r} at generation {generation} for {where or 'the whole table'}"
        )
    # one value per replicate (a run's seed, and the replicate within a batched run), its mean
    # over the generations asked for
    per_seed = rows.groupby([*REPLICATE, "generation"])["value"].mean().groupby(REPLICATE).mean()
    return Level(
        median=float(per_seed.median()),
        spread=float(per_seed.max() - per_seed.min()),
        replicates=int(per_seed.size),
    )


def change(table: pd.DataFrame, metric: str, start: int, end: int, **where) -> Change:
    """A metric from generation ``start`` to ``end`` across replicates (see :func:`level`)."""
    a, b = level(table, metric, start, **where), level(table, metric, end, **where)
    return Change(
        first=a.median,
        last=b.median,
        spread=max(a.spread, b.spread),
        replicates=min(a.replicates, b.replicates),
    )


def replicate_counts(table: pd.DataFrame, by: list[str]) -> pd.Series:
    """How many replicates ran for each combination of the ``by`` columns."""
    rows = table[table["generation"] > 0]
    pairs = rows[[*by, *REPLICATE]].drop_duplicates()
    return pairs.groupby(by).size().rename("replicates")


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The seeds of ``replicates`` independent replicates: ``seed, seed + 1, ...``."""
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise ValueError(f"replicates must be a positive int; got {replicates!r}")
    return [seed + i for i in range(replicates)]


def judged_lams(lams) -> list[float]:
    """The sampling biases a chapter's verdicts rest on: λ = 1 (when run) and the smallest."""
    lams = [float(lam) for lam in lams]
    if not lams:
        raise ValueError("lams must hold at least one sampling bias")
    return sorted({lam for lam in lams if lam == 1.0} | {min(lams)}, reverse=True)


def lam_cases(
    lams, seed: int, replicates: int, side_replicates: int | None = None, **settings
) -> list[dict]:
    """Sweep cases (:func:`madutils.analysis.sweep.run_sweep`'s ``cases``) for a λ sweep.

    The λ values the verdicts rest on (:func:`judged_lams`) run ``replicates`` replicates, the
    others ``side_replicates`` (default: as many), each with ``settings`` added.
    """
    side = replicates if side_replicates is None else side_replicates
    judged = judged_lams(lams)
    return [
        {**settings, "lam": lam, "seed": s}
        for lam in lams
        for s in replicate_seeds(seed, replicates if float(lam) in judged else side)
    ]


def judged_changes(table: pd.DataFrame, metrics, start: int, end: int, **where) -> dict:
    """The numbers a replicated verdict rule takes for the change of each metric.

    Returns
    -------
    dict
        ``{metric}_first``, ``{metric}_last`` and ``{metric}_spread`` for every metric (see
        :func:`change`), and ``replicates``, the fewest replicates any of them had.
    """
    numbers, counts = {}, []
    for metric in metrics:
        found = change(table, metric, start, end, **where)
        numbers |= {
            f"{metric}_first": found.first,
            f"{metric}_last": found.last,
            f"{metric}_spread": found.spread,
        }
        counts.append(found.replicates)
    return numbers | {"replicates": min(counts)}


def replicate_note(table: pd.DataFrame, by: str, label: str, *, judged=None) -> str:
    """One sentence for a page: how many replicates each setting ran, and which are judged.

    Parameters
    ----------
    table : pandas.DataFrame
        A sweep's table.
    by : str
        The column the settings differ in (``"lam"``, ``"n_ini"``).
    label : str
        How the sentence names that setting (``"λ"``, ``"n_ini"``).
    judged : list, optional
        The values the verdicts rest on; the sentence says the others are shown only.
    """
    counts = replicate_counts(table, [by])
    groups: dict[int, list] = {}
    for value, n in counts.items():
        groups.setdefault(int(n), []).append(value)
    parts = [
        f"{label} = {', '.join(f'{v:g}' if _is_number(v) else str(v) for v in values)}: "
        f"{n} replicate{'s' if n != 1 else ''}"
        for n, values in sorted(groups.items(), reverse=True)
    ]
    sentence = "Replicates (independent seeds) per setting: " + "; ".join(parts) + "."
    if judged is not None:
        shown = [v for v in counts.index if not any(np.isclose(v, j) for j in judged)]
        if shown:
            rest = ", ".join(f"{v:g}" for v in judged)
            listed = ", ".join(f"{v:g}" for v in shown)
            sentence += (
                f" The verdicts rest on {label} = {rest}; {label} = {listed} are shown, not judged."
            )
    return sentence + " Lines are medians, bands the range across replicates."
