"""Choosing the DDPM's sampler by measurement: the same trained model, several samplers.

:func:`compare_samplers` samples the same number of images with the same class labels and
noise stream from one trained :class:`~madutils.models.ConditionalDDPM` with each sampler and
step count, times the sampling and measures the images as a loop generation would be measured
(:func:`madutils.loops.images.measure`, after the same 8-bit rounding).
:func:`choose_sampler` picks the fastest setting whose every metric lies within the
real-versus-real floor's spread of a reference setting's: closer than two disjoint sets of real
images are to each other, so no metric can tell it from the reference.
``benchmarks/bench_sampler.py`` runs both on a cpu-scale model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import pandas as pd
import torch
from tqdm import tqdm

from madutils._image_checks import unit_float
from madutils.loops.images import RealImages, _quantise, measure
from madutils.rng import ImageStream, stream

__all__ = ["SAMPLER_METRICS", "choose_sampler", "compare_samplers", "floor_spread", "within_floor"]

#: The metrics a sampler setting must keep within the floor's spread of the reference.
SAMPLER_METRICS = ("fid", "kid", "precision", "recall")


def compare_samplers(
    model,
    real: RealImages,
    settings: Iterable[tuple[str, int]],
    *,
    training: torch.Tensor,
    n: int,
    lam: float,
    seed: int,
    generation: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Sample ``n`` images with each ``(sampler, steps)`` of ``settings`` and measure them.

    Every setting samples the same labels (balanced, from the stream of generation
    ``generation``'s labels) from the same noise stream, so the settings differ only in how
    they denoise. The model's own ``sampler`` and ``steps`` are restored afterwards.

    Parameters
    ----------
    model : ConditionalDDPM
        A trained model.
    real : RealImages
        The real images and feature network the metrics compare with.
    settings : iterable of (str, int)
        Samplers of :data:`madutils.models.ddpm.SAMPLERS` and their denoising steps.
    training : Tensor
        The images the model trained on (or a set holding them), for ``memorisation``.
    n : int
        Images per setting.
    lam : float
        Sampling bias.
    seed, generation : int
        The run's seed and the generation whose streams are used.
    progress : bool
        A progress bar over the settings.

    Returns
    -------
    pandas.DataFrame
        One row per setting: ``sampler, steps, seconds, images_per_second`` and the image
        metrics.
    """
    labels = model.balanced_labels(n, stream(seed, generation, ImageStream.LABELS))
    original = (model.sampler, model.steps)
    rows = []
    try:
        for sampler, steps in tqdm(list(settings), desc="samplers", disable=not progress):
            model.sampler, model.steps = sampler, steps
            rng = stream(seed, generation, ImageStream.SAMPLE, device=model.device_)
            start = time.perf_counter()
            images = model.sample(n, lam, rng=rng, labels=labels)
            seconds = time.perf_counter() - start
            values = measure(
                real,
                unit_float(_quantise(images)),
                lambda: stream(seed, generation, ImageStream.SUBSETS),
                training,
            )
            rows.append(
                {
                    "sampler": sampler,
                    "steps": steps,
                    "seconds": seconds,
                    "images_per_second": n / seconds,
                    **values,
                }
            )
    finally:
        model.sampler, model.steps = original
    return pd.DataFrame(rows)


def floor_spread(floor: pd.DataFrame, metrics: Sequence[str] = SAMPLER_METRICS) -> pd.Series:
    """The spread (highest minus lowest value) of each metric over the floor's real sets.

    Parameters
    ----------
    floor : pandas.DataFrame
        Generation-0 rows of an image run (``metric, replicate, value``: one replicate per
        disjoint set of real images).
    metrics : sequence of str

    Returns
    -------
    pandas.Series
        Metric to spread.
    """
    values = floor[floor["metric"].isin(metrics)].groupby("metric")["value"]
    spread = values.max() - values.min()
    missing = sorted(set(metrics) - set(spread.index))
    if missing:
        raise ValueError(f"the floor has no rows of the metric(s) {', '.join(missing)}")
    if values.size().min() < 2:
        raise ValueError("the floor needs at least two real sets to have a spread")
    return spread.reindex(list(metrics))


def within_floor(table: pd.DataFrame, spread: pd.Series, reference: tuple[str, int]) -> pd.Series:
    """Whether every metric of each setting is within ``spread`` of the reference setting's.

    Parameters
    ----------
    table : pandas.DataFrame
        What :func:`compare_samplers` returns, for one ``lam``.
    spread : pandas.Series
        Metric to the largest difference allowed (:func:`floor_spread`).
    reference : (str, int)
        The ``(sampler, steps)`` the others are compared with; a row of ``table``.

    Returns
    -------
    pandas.Series of bool, indexed like ``table``
    """
    is_reference = (table["sampler"] == reference[0]) & (table["steps"] == reference[1])
    if is_reference.sum() != 1:
        raise ValueError(f"table must hold the reference setting {reference} exactly once")
    ref = table[is_reference].iloc[0]
    gaps = (table[list(spread.index)] - ref[list(spread.index)]).abs()
    return (gaps <= spread).all(axis=1)


def choose_sampler(
    table: pd.DataFrame, spread: pd.Series, reference: tuple[str, int]
) -> tuple[str, int]:
    """The fastest setting within the floor's spread of the reference at every ``lam``.

    Parameters
    ----------
    table : pandas.DataFrame
        What :func:`compare_samplers` returns, with a ``lam`` column when several sampling
        biases were compared.
    spread : pandas.Series
        Metric to the largest difference allowed (:func:`floor_spread`).
    reference : (str, int)

    Returns
    -------
    (str, int)
        The chosen ``(sampler, steps)``: of the settings within the spread at every ``lam``,
        the one taking the fewest seconds in all; the reference when no other qualifies.
    """
    groups = table.groupby("lam") if "lam" in table else [(None, table)]
    ok = pd.concat([within_floor(group, spread, reference) for _, group in groups])
    qualifying = (
        table.assign(ok=ok)
        .groupby(["sampler", "steps"])
        .agg(ok=("ok", "all"), seconds=("seconds", "sum"))
    )
    best = qualifying[qualifying["ok"]].sort_values("seconds").index[0]
    return str(best[0]), int(best[1])
