"""The generative models of madutils and the one protocol they share (:mod:`madutils.models.base`).

Models fitted to many replicates at once: :class:`GaussianModel`, :class:`GaussianMixtureModel`
and :class:`CouplingFlow`; image models, one network per replicate: :class:`ConditionalDDPM`
:class:`WGANGP` and :class:`StyleGAN2` (imported lazily: they load diffusers and the networks'
code).
"""

from __future__ import annotations

from madutils._lazy import lazy_exports
from madutils.models.base import BatchedModel, GenerativeModel, ImageModel
from madutils.models.flow import CouplingFlow
from madutils.models.gaussian import GaussianModel
from madutils.models.mixture import GaussianMixtureModel

__all__ = [
    "BatchedModel",
    "ConditionalDDPM",
    "CouplingFlow",
    "GaussianMixtureModel",
    "GaussianModel",
    "GenerativeModel",
    "ImageModel",
    "StyleGAN2",
    "WGANGP",
]

_IMAGE_MODELS = {
    "ConditionalDDPM": "ddpm",
    "WGANGP": "wgan",
    "StyleGAN2": "stylegan2",
}  # name: its submodule


__getattr__ = lazy_exports(__name__, _IMAGE_MODELS)
