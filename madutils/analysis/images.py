"""Looking at image loops: sample panels, power spectra and t-SNE maps of their features.

The notebooks call these to turn stored runs (:func:`madutils.loops.images.run_image_loop`)
into tables and arrays that :mod:`madutils.plotting` draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from madutils._image_checks import unit_float
from madutils.curation import classifier_accepts
from madutils.loops.images import ImageLoopResult, ImageRun, RealImages, prepare_real_images
from madutils.metrics.spectrum import power_spectrum, spectral_profiles
from madutils.rng import AnalysisStream, stream

__all__ = [
    "feature_embedding",
    "first_samples",
    "generation_spectra",
    "mean_power_spectra",
    "measurement_note",
    "sample_panels",
    "verifier_acceptance",
]


def measurement_note(result: ImageLoopResult) -> str:
    """One sentence for a page: how many images each metric of an image run compared.

    Parameters
    ----------
    result : ImageLoopResult
        A run of :func:`~madutils.loops.images.run_image_loop`.

    Returns
    -------
    str
        The synthetic images measured per generation, the held-out real reference, and the
        real-versus-real floor (generation 0: how many disjoint sets of how many real images).
    """
    cfg = result.config.resolved()
    floor_sets = result.table.loc[result.table["generation"] == 0, "replicate"].nunique()
    sets = f"{floor_sets} disjoint sets" if floor_sets != 1 else "one set"
    return (
        f"Every metric compares the LeNet features of {cfg.n_eval:,} synthetic images per "
        f"generation with those of the {cfg.held_out:,} held-out real images; the grey band "
        f"is the real-versus-real floor, the range over {sets} of {cfg.n_eval:,} real training "
        "images measured the same way (generation 0)."
    )


#: Rows of a sample panel of images without classes.
UNLABELLED_ROWS = 8


def sample_panels(
    result: ImageLoopResult, generations, *, per_class: int = 8, real: RealImages | None = None
) -> dict[int, torch.Tensor]:
    """Stored samples of some generations, ``per_class`` images of each class in class order.

    ``real`` (the run's :class:`~madutils.loops.images.RealImages`) is reused when given;
    otherwise it comes from :func:`~madutils.loops.images.prepare_real_images`, which keeps
    the most recently prepared real images in memory.

    Returns
    -------
    dict
        Generation to a tensor of shape ``(n_classes * per_class, C, H, W)``: class 0's
        images first (without classes: the first ``UNLABELLED_ROWS * per_class`` images);
        generation 0 holds real training images for comparison.
    """
    run = ImageRun(result.run_dir) if not isinstance(result, ImageRun) else result
    real = real if real is not None else prepare_real_images(run.config)
    panels = {}
    for generation in generations:
        data = real.train if generation == 0 else run.samples(generation)
        if not data.labelled:  # no classes to order by: the first images
            panels[generation] = unit_float(data.images[: UNLABELLED_ROWS * per_class])
            continue
        chosen = []
        for c in range(data.n_classes):
            members = torch.nonzero(data.labels == c).squeeze(1)[:per_class]
            chosen.append(unit_float(data.images[members]))
        panels[generation] = torch.cat(chosen)
    return panels


def _run(result) -> ImageRun:
    return result if isinstance(result, ImageRun) else ImageRun(result.run_dir)


def first_samples(
    result: ImageLoopResult, generations, n: int, *, real: RealImages | None = None
) -> dict[int, torch.Tensor]:
    """The first ``n`` stored images of some generations, in the order they were sampled.

    For data sets with many classes (the 96 factor combinations of the coloured shapes), where
    one row per class (:func:`sample_panels`) would not fit a page.

    Parameters
    ----------
    result : ImageLoopResult or ImageRun
        A stored run.
    generations : iterable of int
        Generation 0 gives the first ``n`` real training images.
    n : int
        Images per generation.
    real : RealImages, optional
        The run's real images, reused when given.

    Returns
    -------
    dict
        Generation to a tensor of shape ``(n, C, H, W)`` in [0, 1].
    """
    run = _run(result)
    real = real if real is not None else prepare_real_images(run.config)
    return {
        g: unit_float((real.train if g == 0 else run.samples(g)).images[:n]) for g in generations
    }


def generation_spectra(
    results, generations, *, real: RealImages | None = None, **columns
) -> pd.DataFrame:
    """Radial power spectra of each generation's stored samples, against the real images'.

    The spectrum of a set is :func:`madutils.metrics.spectrum.power_spectrum` averaged over
    its images and channels, then over the frequencies of each integer radius
    (:func:`~madutils.metrics.spectrum.spectral_profiles`, the corners beyond the Nyquist
    frequency included); the reference is the run's held-out real images, the ones every metric
    compares with.

    Parameters
    ----------
    results : ImageLoopResult, ImageRun, or a list of them
        Stored runs of one data set (replicates, say); each generation's spectrum is the mean
        over the runs' samples.
    generations : iterable of int
        Generations at least 1.
    real : RealImages, optional
        The runs' real images, reused when given.
    **columns
        Constant columns added to the table (``loop="fully synthetic"``, say).

    Returns
    -------
    pandas.DataFrame
        One row per generation and radius: ``generation``, ``radius`` (cycles per image),
        ``power`` (synthetic), ``real_power`` and ``log_ratio`` (``log(power / real_power)``:
        0 where the samples have the real images' energy, above 0 where they have more), plus
        ``columns``.
    """
    runs = [_run(r) for r in (results if isinstance(results, list | tuple) else [results])]
    if not runs:
        raise ValueError("results must hold at least one run")
    real = real if real is not None else prepare_real_images(runs[0].config)
    rows = []
    for generation in generations:
        images = torch.cat([run.samples(generation).images for run in runs])
        profiles = spectral_profiles(images, real.held_out.images)
        for radius, power, real_power, log_ratio in zip(
            profiles.radius.tolist(),
            profiles.synthetic.tolist(),
            profiles.real.tolist(),
            profiles.log_ratio.tolist(),
            strict=True,
        ):
            rows.append(
                dict(
                    generation=generation,
                    radius=radius,
                    power=power,
                    real_power=real_power,
                    log_ratio=log_ratio,
                )
            )
    return pd.DataFrame(rows).assign(**columns)


def mean_power_spectra(
    result: ImageLoopResult, generations, *, real: RealImages | None = None
) -> dict[int, np.ndarray]:
    """The 2-D power spectrum of each generation's stored samples, averaged over the images.

    Parameters
    ----------
    result : ImageLoopResult or ImageRun
        A stored run.
    generations : iterable of int
        Generation 0 gives the spectrum of the held-out real images.
    real : RealImages, optional
        The run's real images, reused when given.

    Returns
    -------
    dict
        Generation to an array ``(S, S)``: :func:`madutils.metrics.spectrum.power_spectrum`,
        the zero frequency at the centre.
    """
    run = _run(result)
    real = real if real is not None else prepare_real_images(run.config)
    return {
        g: power_spectrum(real.held_out.images if g == 0 else run.samples(g).images).numpy()
        for g in generations
    }


def feature_embedding(
    results: dict[str, ImageLoopResult],
    generations,
    *,
    n_per_set: int = 300,
    seed: int = 0,
    perplexity: float = 30.0,
    real: RealImages | None = None,
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
    real : RealImages, optional
        The runs' real images and feature network, reused when given.

    Returns
    -------
    pandas.DataFrame
        Columns ``x, y, label, run, generation`` (``run`` is ``"real"`` and ``generation``
        0 for the held-out real images).
    """
    from sklearn.manifold import TSNE

    runs = {name: ImageRun(r.run_dir) for name, r in results.items()}
    if real is None:
        real = prepare_real_images(next(iter(runs.values())).config)
    rng = stream(seed, AnalysisStream.EMBEDDING)
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


def verifier_acceptance(real: RealImages, confidences) -> pd.DataFrame:
    """How much of the real held-out data the image loops' verifier accepts at each threshold.

    The verifier of ``curation="verify"`` (:func:`madutils.curation.classifier_accepts` on the
    feature network's probabilities, each image checked against its own class) is applied to
    real images the network never trained on: what it rejects there is what it would reject
    in a perfect model's samples.

    Parameters
    ----------
    real : RealImages
        The run's real images and feature network
        (:func:`~madutils.loops.images.prepare_real_images`).
    confidences : iterable of float in [0, 1]
        Thresholds tau.

    Returns
    -------
    DataFrame
        One row per threshold (index ``tau``): the share accepted of each class (columns
        ``0, 1, ...``) and of all held-out images (column ``"all"``).

    Raises
    ------
    ValueError
        If the features cannot classify (a user's feature function), the images have no
        classes, or a threshold is not in [0, 1].
    """
    if not real.classifies:
        raise ValueError(
            "the verifier needs a feature network that classifies; these features do not"
        )
    held_out = real.held_out
    if held_out.labels is None:
        raise ValueError("the verifier checks each image's class; these images have no classes")
    probabilities = real.features.probabilities(unit_float(held_out.images))
    labels = held_out.labels.long()
    classes = range(probabilities.shape[1])
    rows = {}
    for tau in confidences:
        accepted, _ = classifier_accepts(probabilities, tau, labels)
        shares = {c: float(accepted[labels == c].float().mean()) for c in classes}
        rows[float(tau)] = {**shares, "all": float(accepted.float().mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("tau")
