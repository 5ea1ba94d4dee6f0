"""The self-consuming loops: families, synthetic sources, one driver, two ways of running it.

- :mod:`.families`: the three loop families and the synthetic sources, their default sizes
  and their size rules, once for every model;
- :mod:`.config`: :class:`LoopConfig`, the settings of a loop of the batched models
  (Gaussian, mixture, flow), many replicates at once;
- :mod:`.image_config`: :class:`ImageLoopConfig`, the settings of a loop of an image model
  (conditional DDPM, WGAN-GP), one replicate;
- :mod:`.driver`: resume, progress, timings and the results table, shared by both;
- :mod:`.batched`: :func:`run_loop`, the seed-batched tensor loop (with the exact statistics
  path of the Gaussian);
- :mod:`.images`: :func:`run_image_loop`, one replicate of an image model with its feature
  network and first-generation cache.

The names below are imported lazily, so ``from madutils.loops import LoopConfig`` does not
import the image models (and diffusers).
"""

from __future__ import annotations

from madutils._lazy import lazy_exports

__all__ = [
    "BatchedLoopResult",
    "ImageLoopConfig",
    "LoopConfig",
    "LoopResult",
    "ImageLoopResult",
    "iterate_loop",
    "run_image_loop",
    "run_loop",
]

_WHERE = {
    "LoopConfig": "config",
    "ImageLoopConfig": "image_config",
    "LoopResult": "driver",
    "BatchedLoopResult": "batched",
    "iterate_loop": "batched",
    "run_loop": "batched",
    "ImageLoopResult": "images",
    "run_image_loop": "images",
}


__getattr__ = lazy_exports(__name__, _WHERE)
