"""The interface every generative model of madutils follows.

A model is estimated for many independent replicates ("seeds") at once: data come as a tensor of
shape ``(n_seeds, n_samples, n_features)`` and every learned attribute carries the seed axis
first. Following scikit-learn, constructor arguments are settings only; learned state lives in
attributes with a trailing underscore that :meth:`BatchedModel.fit` sets, and :meth:`clone`
returns an unfitted copy with the same settings, which is how a loop trains each generation
from scratch.
"""

from __future__ import annotations

import inspect

import torch

__all__ = ["BatchedModel"]


class BatchedModel:
    """Base class for models fitted to many seeds at once.

    Subclasses implement :meth:`fit` and :meth:`sample` and list their learned attributes in
    ``_state_attributes`` so that :meth:`state_dict` / :meth:`load_state_dict` can save and
    restore a fitted model (used to resume interrupted loops).
    """

    _state_attributes: tuple[str, ...] = ()

    def fit(self, X: torch.Tensor, *, rng: torch.Generator | None = None) -> BatchedModel:
        """Fit one model per seed to ``X`` of shape ``(n_seeds, n_samples, n_features)``."""
        raise NotImplementedError

    def sample(self, n: int, lam: float = 1.0, *, rng: torch.Generator) -> torch.Tensor:
        """Draw ``n`` samples per seed with sampling bias ``lam``; shape ``(n_seeds, n, d)``."""
        raise NotImplementedError

    def get_params(self) -> dict:
        """Return the constructor arguments of this model."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> BatchedModel:
        """Return an unfitted model with the same settings."""
        return type(self)(**self.get_params())

    @property
    def is_fitted(self) -> bool:
        return all(hasattr(self, name) for name in self._state_attributes)

    def _check_is_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit first")

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Return the learned attributes (tensors), for saving a fitted model."""
        self._check_is_fitted()
        return {name: getattr(self, name) for name in self._state_attributes}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> BatchedModel:
        """Restore learned attributes saved by :meth:`state_dict`; return ``self``."""
        missing = set(self._state_attributes) - set(state)
        if missing:
            raise ValueError(f"state is missing the learned attributes {sorted(missing)}")
        for name in self._state_attributes:
            setattr(self, name, state[name])
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
