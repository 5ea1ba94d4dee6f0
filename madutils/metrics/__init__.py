"""Every metric the loops record, and the one registry of their facts (:mod:`.registry`).

:data:`REGISTRY` holds one :class:`Metric` per name (definition, plot label, unit, which
direction is better, what it needs, the models it applies to, and its ``compute``);
:func:`measure` computes configured names from a :class:`MetricContext`. :data:`METRICS` (name
to definition) and :data:`METRIC_LABELS` (name to plot label) are views of the registry.

Submodules hold the computations: :mod:`.frechet` (Wasserstein/Fréchet distances, the one
home of the "FID", and FD∞), :mod:`.kernel` (the kernel distance, "KID"), :mod:`.features`
(the LeNet feature network of the image metrics),
:mod:`.gaussian` (Gaussian diagnostics), :mod:`.manifold` (precision, recall, density,
coverage), :mod:`.mixture` (mode diagnostics of the 25-mode grid), :mod:`.tails` (tails and
marginals of low-dimensional samples), :mod:`.effective` (effective sample size).
"""

from __future__ import annotations

from madutils.metrics.registry import (
    DEFAULT_METRICS,
    IMAGE_METRICS,
    MANIFOLD_METRICS,
    METRIC_LABELS,
    METRICS,
    NEEDS,
    REGISTRY,
    Metric,
    MetricContext,
    get_metric,
    measure,
    metric_label,
    metric_names,
)

__all__ = [
    "DEFAULT_METRICS",
    "IMAGE_METRICS",
    "MANIFOLD_METRICS",
    "METRICS",
    "METRIC_LABELS",
    "NEEDS",
    "REGISTRY",
    "Metric",
    "MetricContext",
    "get_metric",
    "measure",
    "metric_label",
    "metric_names",
]
