"""Looking at image loops: sweeps over settings, sample panels and t-SNE maps of features.

The notebooks call these to turn stored runs (:func:`madutils.loops.images.run_image_loop`)
into tables and arrays that :mod:`madutils.plotting` draws.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from madutils.rng import stream
from madutils.loops.images import ImageLoopResult, ImageRun, prepare_real_images, run_image_loop
from madutils.loops.image_config import ImageLoopConfig

__all__ = ["feature_embedding", "run_image_sweep", "sample_panels", "sweep_table"]


def run_image_sweep(
    base: ImageLoopConfig, runs_dir=None, *, progress: bool = False, **vary
) -> list[ImageLoopResult]:
    """Run ``base`` for every combination of the settings in ``vary`` (lists of values).

    Finished runs in ``runs_dir`` are read back, unfinished ones resumed. Each result's
    table gets one extra column per varied setting it does not already have.
    """
    fields = {f.name for f in dataclasses.fields(ImageLoopConfig)}
    unknown = sorted(set(vary) - fields)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; valid: {sorted(fields)}")
    names = list(vary)
    results = []
    combos = list(itertools.product(*(vary[n] for n in names)))
    for combo in tqdm(combos, desc="runs", disable=not progress or len(combos) < 2):
        settings = dict(zip(names, combo, strict=True))
        config = dataclasses.replace(base, **settings)
        result = run_image_loop(config, runs_dir, progress=progress)
        for name, value in settings.items():
            if name not in result.table.columns:
                result.table[name] = value
        results.append(result)
    return results


def sweep_table(results: list[ImageLoopResult]) -> pd.DataFrame:
    """The long-form tables of several runs as one table."""
    return pd.concat([r.table for r in results], ignore_index=True)


def sample_panels(
    result: ImageLoopResult, generations, *, per_class: int = 8
) -> dict[int, torch.Tensor]:
    """Stored samples of some generations, ``per_class`` images of each class in class order.

    Returns
    -------
    dict
        Generation to a tensor of shape ``(n_classes * per_class, 1, H, W)``: class 0's
        images first; generation 0 holds real training images for comparison.
    """
    run = ImageRun(result.run_dir) if not isinstance(result, ImageRun) else result
    real = prepare_real_images(run.config)
    panels = {}
    for generation in generations:
        data = real.train if generation == 0 else run.samples(generation)
        chosen = []
        for c in range(data.n_classes):
            members = torch.nonzero(data.labels == c).squeeze(1)[:per_class]
            chosen.append(data.images[members])
        panels[generation] = torch.cat(chosen)
    return panels


def feature_embedding(
    results: dict[str, ImageLoopResult],
    generations,
    *,
    n_per_set: int = 300,
    seed: int = 0,
    perplexity: float = 30.0,
) -> pd.DataFrame:
    """A joint 2-D t-SNE map of the feature-network features of real and synthetic images.

    Parameters
    ----------
    results : dict
        Name (for example ``"lambda = 1"``) to a stored run; all runs must share the data
        settings, so they share the held-out images and the feature network.
    generations : list of int
        Generations whose samples are mapped.
    n_per_set : int
        Images drawn at random from the held-out real set and from each (run, generation).
    seed : int
        Seeds the subsets and t-SNE.

    Returns
    -------
    pandas.DataFrame
        Columns ``x, y, label, run, generation`` (``run`` is ``"real"`` and ``generation``
        0 for the held-out real images).
    """
    from sklearn.manifold import TSNE

    runs = {name: ImageRun(r.run_dir) for name, r in results.items()}
    real = prepare_real_images(next(iter(runs.values())).config)
    rng = stream(seed, 0)
    pieces, meta = [], []

    def add(images, labels, run_name, generation):
        pick = torch.randperm(len(images), generator=rng)[:n_per_set]
        pieces.append(real.features.features(images[pick]))
        meta.append(
            pd.DataFrame({"label": labels[pick].numpy(), "run": run_name, "generation": generation})
        )

    add(real.held_out.images, real.held_out.labels, "real", 0)
    for name, run in runs.items():
        for generation in generations:
            samples = run.samples(generation)
            add(samples.images, samples.labels, name, generation)
    features = torch.cat(pieces).double().numpy()
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (len(features) - 1) / 3),
        init="pca",
        random_state=seed,
    )
    xy = tsne.fit_transform(features)
    frame = pd.concat(meta, ignore_index=True)
    frame.insert(0, "x", xy[:, 0])
    frame.insert(1, "y", xy[:, 1])
    frame["label"] = frame["label"].astype(np.int64)
    return frame
