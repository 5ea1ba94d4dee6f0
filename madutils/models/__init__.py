"""Generative models fitted to many seeds at once (see :mod:`madutils.models.base`)."""

from .base import BatchedModel
from .gaussian import GaussianModel
from .mixture import GaussianMixtureModel

__all__ = ["BatchedModel", "GaussianMixtureModel", "GaussianModel"]
