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

import numpy as np
import torch

__all__ = ["generator_from_seed_sequence", "stream"]


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
    return generator_from_seed_sequence(np.random.SeedSequence(seed, spawn_key=key), device)
