"""Explicit, reproducible randomness.

Every random draw in madutils goes through a ``torch.Generator`` that the caller passes in as
``rng`` (Scientific Python SPEC 7). Loops derive one independent stream per generation from a
single integer seed with :class:`numpy.random.SeedSequence`, so that generation ``t`` of a run
uses the same random numbers whether the run went straight through or was resumed after an
interruption.

All replicate seeds of a run are simulated together as one batched tensor program, so a stream
belongs to a (run seed, generation) pair, not to a single replicate: replicate ``i`` of a run with
``S`` replicates is not the same as replicate ``i`` of a run with a different ``S``.
"""

from __future__ import annotations

import enum

import numpy as np
import torch

__all__ = [
    "BatchedStream",
    "AnalysisStream",
    "ImageStream",
    "generator_from_seed_sequence",
    "stream",
]


class BatchedStream(enum.IntEnum):
    """Purposes of the batched loops' streams ``stream(seed, generation, purpose)``."""

    TRAINING_DATA = 0  # real and synthetic training samples, the accumulated pool's draws
    FIT = 1  # model fitting (EM initialisation, flow minibatches)
    EVALUATION = 2  # samples the metrics measure (generation 0: the real reference)
    SNAPSHOT = 99  # samples kept for pictures (``keep_samples``, ``sample_snapshots``)


class ImageStream(enum.IntEnum):
    """Purposes of the image loops' streams.

    Per generation: ``stream(seed, generation, purpose)`` with the first seven; once per run:
    ``stream(seed, purpose)`` with the last three. The numbering differs from
    :class:`BatchedStream` because the two kinds of loop were written apart; a run is of one
    kind, so their streams never meet, and the numbers stay as they are because every stored
    run and every number of the book depends on them.
    """

    FIT = 0  # the model's training seed
    SAMPLE = 1  # the model's samples
    LABELS = 2  # the class labels a conditional model is asked for
    MEMORY = 3  # which of the K most recent generations each synthetic image comes from, and
    # which new real and synthetic images the detector flags
    SUBSETS = 4  # the subsets the metrics draw of the features (KID, FD∞); 0: the real floor
    VERIFY = 5  # the images drawn again for those the verifier rejects (curation "verify")
    CURATE = 6  # the candidates and the choice of curation "best_of"
    SPLIT = 1_000_001  # the split of the real images into training and held-out images
    POOL = 1_000_002  # the order in which real training images are drawn
    FLOOR = 1_000_003  # the real training images measured as generation 0


class AnalysisStream(enum.IntEnum):
    """Streams of draws made outside any loop, by the analysis and the book's figures:
    ``stream(seed, 0, purpose)``, except ``stream(seed, EMBEDDING)`` for a t-SNE map's subsets."""

    EMBEDDING = 0  # the images a t-SNE map of features shows
    FLOW_REAL = 97  # Rosenbrock samples beside the flow's
    MIXTURE_REAL = 98  # grid-mixture samples beside the mixture's
    EFFECTIVE_SIZE = 7  # the real fits an effective sample size is measured against


def generator_from_seed_sequence(
    seed_sequence: np.random.SeedSequence, device: str | torch.device = "cpu"
) -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` seeded from ``seed_sequence``."""
    seed = int(seed_sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def stream(seed: int, *key: int, device: str | torch.device = "cpu") -> torch.Generator:
    """Return the independent random stream named by ``(seed, *key)``.

    Parameters
    ----------
    seed : int
        The run's seed.
    *key : int
        Integers naming the stream, for example ``(generation, purpose)``.
    device : str or torch.device
        Device the generator draws on.

    Examples
    --------
    >>> a = stream(0, 3).initial_seed()
    >>> b = stream(0, 3).initial_seed()
    >>> a == b and a != stream(0, 4).initial_seed()
    True
    """
    spawn_key = tuple(int(k) for k in key)
    return generator_from_seed_sequence(np.random.SeedSequence(seed, spawn_key=spawn_key), device)
