"""The generative models of madutils and the one protocol they share (:mod:`madutils.models.base`).

Toy models fitted to many seeds at once: :class:`GaussianModel`, :class:`GaussianMixtureModel`
and :class:`~madutils.models.flow.CouplingFlow`; image models, one network per replicate:
:class:`~madutils.models.ddpm.ConditionalDDPM` and :class:`~madutils.models.wgan.WGANGP`
(import them from their modules, which load the networks' libraries).
"""

from madutils.models.base import BatchedModel, GenerativeModel, ImageModel
from madutils.models.gaussian import GaussianModel
from madutils.models.mixture import GaussianMixtureModel

__all__ = [
    "BatchedModel",
    "GaussianMixtureModel",
    "GaussianModel",
    "GenerativeModel",
    "ImageModel",
]
