"""From runs to tables, figures and claims: what the book's chapters call.

- :mod:`.sweep`: :func:`run_sweep`, one loop varied over a grid of settings, one tidy table
  (:func:`start_sweep`: submitted now, collected later);
- :mod:`.gaussian`: Gaussian loops looked at closely (paths, snapshots, fresh-data limits and
  effective sample sizes of whole grids);
- :mod:`.images`: sample panels and t-SNE maps of image runs;
- :mod:`.claims`: the paper's claims, their verdict rules and the numbers glued into the prose.

The names below are imported lazily (the image helpers import diffusers).
"""

from __future__ import annotations

from madutils._lazy import lazy_exports

__all__ = [
    "closed_form_trace_and_drift",
    "effective_sample_sizes",
    "feature_embedding",
    "fresh_data_limits",
    "gaussian_paths",
    "generation_seconds",
    "run_sweep",
    "sample_panels",
    "sample_snapshots",
    "start_sweep",
]

_WHERE = {
    "closed_form_trace_and_drift": "gaussian",
    "effective_sample_sizes": "gaussian",
    "fresh_data_limits": "gaussian",
    "gaussian_paths": "gaussian",
    "sample_snapshots": "gaussian",
    "run_sweep": "sweep",
    "start_sweep": "sweep",
    "generation_seconds": "sweep",
    "feature_embedding": "images",
    "sample_panels": "images",
}


__getattr__ = lazy_exports(__name__, _WHERE)
