"""RealNVP-style affine coupling flows for low-dimensional data, fitted to many seeds at once.

This module holds :class:`CouplingFlow`, the normalizing flow of the paper's Rosenbrock
experiment (2-D data; 8 affine coupling layers with hidden width 64, trained for 20 epochs with
minibatches of 256 and retrained from scratch in every generation). Every seed gets its own flow,
and all seeds are trained together by one batched torch program: each weight carries the seed
axis, the layers are batched matrix products (``torch.baddbmm``) and the loss is the sum of the
seeds' mean negative log-likelihoods, so that (with Adam, whose update is elementwise) every
seed's flow follows exactly the gradient of its own loss. There is no Python loop over seeds,
only over epochs, minibatches and layers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from madutils._validation import (
    check_finite,
    check_generator,
    check_lam,
    check_positive_int,
    check_positive_number,
)
from madutils.models.base import BatchedModel

__all__ = ["CouplingFlow"]

_LOG_2PI = math.log(2 * math.pi)
# Standard deviations below this (a coordinate on which all of a seed's samples agree) are
# raised to it, so that the standardization stays finite.
_MIN_SCALE = 1e-12
# Evaluation (log_prob, sampling) runs over chunks of samples with about this many hidden
# activations each (32 MiB in float64).
_CHUNK_ELEMENTS = 2**22


class _Network(NamedTuple):
    """The conditioner networks of all coupling layers, layer axis first: (L, S, ...)."""

    weight_in: torch.Tensor  # (L, S, d, H)
    bias_in: torch.Tensor  # (L, S, H)
    weight_hidden: torch.Tensor  # (L, S, H, H)
    bias_hidden: torch.Tensor  # (L, S, H)
    weight_out: torch.Tensor  # (L, S, H, 2 d)
    bias_out: torch.Tensor  # (L, S, 2 d)


_NETWORK_ATTRIBUTES = (
    "weight_in_",
    "bias_in_",
    "weight_hidden_",
    "bias_hidden_",
    "weight_out_",
    "bias_out_",
)


class CouplingFlow(BatchedModel):
    """Affine coupling normalizing flow (RealNVP), one per seed, trained by maximum likelihood.

    The flow maps a sample ``x`` to a latent ``z`` with density N(0, I) in three stages:

    1. standardization with each seed's training mean and standard deviation per coordinate,
       ``u = (x - shift_) / scale_``;
    2. ``n_layers`` affine coupling layers. Layer ``l`` splits the coordinates into a
       conditioning half ``c`` and a transformed half: with ``h = u * mask_l`` (the conditioning
       coordinates, others zeroed), it maps ``u`` to ``u * exp(s(h)) + t(h)`` on the transformed
       coordinates and leaves the conditioning ones unchanged. The masks alternate: even layers
       condition on the first ``d // 2`` coordinates, odd layers on the rest (for d = 2,
       ``x1`` conditions ``x2`` and then ``x2`` conditions ``x1``);
    3. the result is ``z``.

    ``s`` and ``t`` come from one multilayer perceptron per layer, ``d -> hidden -> hidden ->
    2 d`` with ReLU activations. The log-scale is bounded softly, ``s = b * tanh(raw / b)`` with
    ``b = max_log_scale``, which is the identity near 0 and keeps every layer's scaling within
    ``exp(+-b)``. The density in data space is
    ``log p(x) = log N(z; 0, I) + sum_l sum(s_l) - sum(log scale_)``, which :meth:`log_prob`
    returns; :meth:`sample` inverts the layers exactly.

    Training (:meth:`fit`): fresh weights from ``rng`` (hidden layers as ``torch.nn.Linear``
    initialises them, uniform in ``+-1/sqrt(fan_in)``; output layers zero, so every layer starts
    as the identity), then ``epochs`` passes over the data in minibatches of ``batch_size``
    (the last one of a pass may be smaller), each seed reshuffled in every pass, with Adam
    minimising the mean negative log-likelihood.

    Parameters
    ----------
    n_layers : int, default 8
        Number of coupling layers (the paper: 8).
    hidden : int, default 64
        Width of the two hidden layers of each conditioner network (the paper: 64).
    epochs : int, default 20
        Passes over the training data (the paper: 20).
    batch_size : int, default 256
        Minibatch size (the paper: 256); a training set smaller than this is one batch.
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0.0
        L2 penalty of Adam (``torch.optim.Adam``'s ``weight_decay``); 0 disables it.
    max_log_scale : float, default 2.0
        Bound ``b`` of the log-scale of every coupling layer (see above).

    Attributes
    ----------
    shift_ : Tensor, shape (n_seeds, n_features), float64
        Mean of each seed's training data.
    scale_ : Tensor, shape (n_seeds, n_features), float64
        Standard deviation (unbiased) of each seed's training data per coordinate.
    weight_in_ : Tensor, shape (n_seeds, n_layers, n_features, hidden), float32
    bias_in_ : Tensor, shape (n_seeds, n_layers, hidden), float32
    weight_hidden_ : Tensor, shape (n_seeds, n_layers, hidden, hidden), float32
    bias_hidden_ : Tensor, shape (n_seeds, n_layers, hidden), float32
    weight_out_ : Tensor, shape (n_seeds, n_layers, hidden, 2 * n_features), float32
        The first ``n_features`` outputs are the raw log-scales, the others the shifts.
    bias_out_ : Tensor, shape (n_seeds, n_layers, 2 * n_features), float32
    loss_history_ : Tensor, shape (n_seeds, epochs), float32
        Mean negative log-likelihood per training sample (in data space, nats) of each seed in
        each epoch, averaged over the epoch's minibatches as they were seen, each before its
        update. Set by :meth:`fit` only: a diagnostic, not part of :meth:`state_dict`.

    Notes
    -----
    Training runs in float32 on the device of the data; ``rng`` must live on that device, and
    the global random state is never used. Given the same data and generator state, training is
    deterministic on one machine (tested on the CPU). :meth:`sample`, :meth:`log_prob`,
    :meth:`to_latent` and :meth:`from_latent` compute in float64 (with the float32 weights
    converted) and return float64, like the other models of the package, so that samples can
    join real data without a change of type.

    The networks are small, so training is bound by per-operation overhead rather than by
    arithmetic: training many seeds together costs little more than one. On a CPU shared with
    other work, ``torch.set_num_threads(1)`` can be much faster than several threads (on a
    busy two-core machine two threads were slower by one to two orders of magnitude).

    Seeds are independent in the sense that a seed's flow depends only on its own data and on
    the random numbers drawn for it; as everywhere in madutils (see :mod:`madutils.rng`), the
    random numbers a seed gets depend on how many seeds are trained together.
    """

    _state_attributes = ("shift_", "scale_", *_NETWORK_ATTRIBUTES)

    def __init__(
        self,
        n_layers: int = 8,
        hidden: int = 64,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        max_log_scale: float = 2.0,
    ) -> None:
        self.n_layers = n_layers
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_log_scale = max_log_scale

    # ------------------------------------------------------------------ validation

    def _check_params(self) -> None:
        check_positive_int(self.n_layers, "n_layers")
        check_positive_int(self.hidden, "hidden")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_number(self.lr, "lr")
        check_positive_number(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive_number(self.max_log_scale, "max_log_scale")

    @staticmethod
    def _check_data(X, name: str = "X") -> torch.Tensor:
        X = torch.as_tensor(X)
        if X.ndim != 3:
            raise ValueError(
                f"{name} must be 3-D with shape (n_seeds, n_samples, n_features); "
                f"got {X.ndim} dimensions (shape {tuple(X.shape)})"
            )
        if not (X.is_floating_point() or X.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{name} must hold real numbers; got dtype {X.dtype}")
        if X.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one seed; got shape {tuple(X.shape)}")
        check_finite(X, name)
        return X.to(torch.float64)

    def _check_fitted_data(self, X, name: str = "X") -> torch.Tensor:
        self._check_is_fitted()
        X = self._check_data(X, name)
        n_seeds, n_features = self.shift_.shape
        if X.shape[0] != n_seeds or X.shape[2] != n_features:
            raise ValueError(
                f"{name} must have shape (n_seeds={n_seeds}, n_samples, n_features={n_features}) "
                f"to match the fitted model; got {tuple(X.shape)}"
            )
        return X.to(self.shift_.device)

    @property
    def n_seeds(self) -> int:
        """Number of seeds of the fitted model."""
        self._check_is_fitted()
        return int(self.shift_.shape[0])

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, *, rng: torch.Generator | None = None) -> CouplingFlow:
        """Train one flow per seed from scratch by maximum likelihood.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)
            Training data; needs ``n_samples >= 2`` and ``n_features >= 2`` (a coupling layer
            conditions one part of the coordinates on the other).
        y : None
            Must be None (the model is unconditional).
        rng : torch.Generator
            Source of the initial weights and of the minibatch shuffles, on the data's device.

        Returns
        -------
        self
        """
        self._check_no_y(y)
        self._check_params()
        X = self._check_data(X)
        n_seeds, n_samples, n_features = X.shape
        if n_features < 2:
            raise ValueError(
                f"X must have n_features >= 2 for a coupling flow; got n_features={n_features}"
            )
        if n_samples < 2:
            raise ValueError(
                f"X must hold at least 2 samples per seed to standardize them; got {n_samples}"
            )
        check_generator(rng)

        shift = X.mean(1)
        scale = X.std(1).clamp_min(_MIN_SCALE)
        U = ((X - shift.unsqueeze(1)) / scale.unsqueeze(1)).to(torch.float32)
        log_scale_sum = scale.log().sum(-1).to(torch.float32)  # (S,)

        network = _initial_network(
            n_seeds, n_features, self.n_layers, self.hidden, X.device, rng=rng
        )
        masks = _masks(self.n_layers, n_features, torch.float32, X.device)
        parameters = list(network)
        for parameter in parameters:
            parameter.requires_grad_(True)
        optimizer = torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)

        history = torch.empty(n_seeds, self.epochs, dtype=torch.float32, device=X.device)
        batch = min(self.batch_size, n_samples)
        for epoch in range(self.epochs):
            keys = torch.rand(
                n_seeds, n_samples, dtype=torch.float64, device=X.device, generator=rng
            )
            order = keys.argsort(-1).unsqueeze(-1).expand(-1, -1, n_features)
            shuffled = U.gather(1, order)
            total = torch.zeros(n_seeds, dtype=torch.float32, device=X.device)
            for start in range(0, n_samples, batch):
                log_density = _standard_log_prob(
                    network, masks, shuffled[:, start : start + batch], self.max_log_scale
                )
                # The sum over seeds of each seed's mean: every seed's weights get exactly the
                # gradient of its own loss.
                loss = -log_density.mean(-1).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total -= log_density.detach().sum(-1)
            history[:, epoch] = total / n_samples + log_scale_sum

        self.shift_, self.scale_ = shift, scale
        for name, tensor in zip(_NETWORK_ATTRIBUTES, network, strict=True):
            setattr(self, name, tensor.detach().transpose(0, 1).contiguous())
        self.loss_history_ = history
        return self

    # ------------------------------------------------------------------ using a fitted model

    def _network(self, dtype: torch.dtype) -> _Network:
        return _Network(
            *(getattr(self, name).to(dtype).transpose(0, 1) for name in _NETWORK_ATTRIBUTES)
        )

    def _in_chunks(self, function, X: torch.Tensor) -> torch.Tensor:
        """``function(network, masks, X_chunk)`` over chunks of samples, concatenated.

        Evaluation runs in float64 without gradients; chunks of samples keep the hidden
        activations of a call to about ``_CHUNK_ELEMENTS`` numbers whatever ``n_samples`` is.
        """
        network = self._network(torch.float64)
        masks = _masks(network.weight_in.shape[0], X.shape[-1], torch.float64, X.device)
        n_seeds, hidden = network.weight_in.shape[1], network.weight_in.shape[-1]
        size = max(1, _CHUNK_ELEMENTS // (n_seeds * hidden))
        parts = [function(network, masks, chunk) for chunk in X.split(size, dim=1)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    @torch.no_grad()
    def log_prob(self, X) -> torch.Tensor:
        """Log-density (natural log) of each sample under its seed's flow, in data space.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)

        Returns
        -------
        Tensor, shape (n_seeds, n_samples), float64
        """
        X = self._check_fitted_data(X)
        U = (X - self.shift_.unsqueeze(1)) / self.scale_.unsqueeze(1)
        bound = self.max_log_scale
        log_density = self._in_chunks(
            lambda network, masks, u: _standard_log_prob(network, masks, u, bound), U
        )
        return log_density - self.scale_.log().sum(-1, keepdim=True)

    def score(self, X) -> torch.Tensor:
        """Mean log-likelihood per sample, for each seed: ``log_prob(X).mean(-1)``.

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)

        Returns
        -------
        Tensor, shape (n_seeds,), float64
        """
        return self.log_prob(X).mean(-1)

    @torch.no_grad()
    def to_latent(self, X) -> torch.Tensor:
        """Map samples to the latent space of their seed's flow (inverse of :meth:`from_latent`).

        Parameters
        ----------
        X : Tensor, shape (n_seeds, n_samples, n_features)

        Returns
        -------
        Tensor, shape (n_seeds, n_samples, n_features), float64
        """
        X = self._check_fitted_data(X)
        U = (X - self.shift_.unsqueeze(1)) / self.scale_.unsqueeze(1)
        bound = self.max_log_scale
        return self._in_chunks(lambda network, masks, u: _forward(network, masks, u, bound)[0], U)

    @torch.no_grad()
    def from_latent(self, Z) -> torch.Tensor:
        """Map latents to data space through each seed's inverse flow.

        Parameters
        ----------
        Z : Tensor, shape (n_seeds, n_samples, n_features)

        Returns
        -------
        Tensor, shape (n_seeds, n_samples, n_features), float64
        """
        Z = self._check_fitted_data(Z, "Z")
        bound = self.max_log_scale
        U = self._in_chunks(lambda network, masks, z: _inverse(network, masks, z, bound), Z)
        return self.shift_.unsqueeze(1) + self.scale_.unsqueeze(1) * U

    def sample(
        self, n: int, lam: float = 1.0, *, rng: torch.Generator, labels=None
    ) -> torch.Tensor:
        """Draw ``n`` samples from each seed's flow.

        Parameters
        ----------
        n : int
            Samples per seed.
        lam : float in (0, 1], default 1.0
            Sampling bias (the paper's λ for flows): the latent is drawn from N(0, lam * I),
            ``z = sqrt(lam) * standard normal``, and mapped through the inverse flow
            (:meth:`from_latent`). 1.0 is unbiased sampling; smaller values draw from the
            flow's high-density core.
        rng : torch.Generator
            Source of the latent draws, on the model's device.
        labels : None
            Must be None (the model is unconditional).

        Returns
        -------
        Tensor, shape (n_seeds, n, n_features), float64
        """
        self._check_no_labels(labels)
        self._check_is_fitted()
        n = check_positive_int(n, "n")
        lam = check_lam(lam)
        check_generator(rng)
        n_seeds, n_features = self.shift_.shape
        device = self.shift_.device
        z = torch.randn(n_seeds, n, n_features, dtype=torch.float64, device=device, generator=rng)
        if lam != 1.0:
            z = z * math.sqrt(lam)
        return self.from_latent(z)


# ---------------------------------------------------------------------- batched building blocks


def _masks(n_layers: int, n_features: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Conditioning masks (L, d): 1 on the coordinates layer ``l`` conditions on.

    Even layers condition on the first ``d // 2`` coordinates, odd layers on the others.
    """
    first = (torch.arange(n_features, device=device) < n_features // 2).to(dtype)
    layers = torch.arange(n_layers, device=device).remainder(2).unsqueeze(-1).to(dtype)
    return first + layers * (1 - 2 * first)


def _initial_network(
    n_seeds: int, n_features: int, n_layers: int, hidden: int, device, *, rng: torch.Generator
) -> _Network:
    """Fresh float32 weights, layer axis first; hidden layers as ``torch.nn.Linear`` does."""

    def uniform(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        values = torch.rand(shape, dtype=torch.float32, device=device, generator=rng)
        return values.mul_(2 * bound).sub_(bound)

    L, S, d, H = n_layers, n_seeds, n_features, hidden
    return _Network(
        weight_in=uniform((L, S, d, H), d),
        bias_in=uniform((L, S, H), d),
        weight_hidden=uniform((L, S, H, H), H),
        bias_hidden=uniform((L, S, H), H),
        weight_out=torch.zeros(L, S, H, 2 * d, device=device),
        bias_out=torch.zeros(L, S, 2 * d, device=device),
    )


def _conditioner(
    network: _Network, layer: int, h: torch.Tensor, transformed: torch.Tensor, bound: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-scale and shift (each (S, n, d), zero off the ``transformed`` coordinates)."""
    a = torch.baddbmm(network.bias_in[layer].unsqueeze(1), h, network.weight_in[layer]).relu()
    a = torch.baddbmm(
        network.bias_hidden[layer].unsqueeze(1), a, network.weight_hidden[layer]
    ).relu()
    out = torch.baddbmm(network.bias_out[layer].unsqueeze(1), a, network.weight_out[layer])
    raw, shift = out.chunk(2, dim=-1)
    log_scale = torch.tanh(raw / bound) * bound
    return log_scale * transformed, shift * transformed


def _forward(
    network: _Network, masks: torch.Tensor, u: torch.Tensor, bound: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (S, n, d) of standardized samples ``u`` and the log-determinants (S, n)."""
    log_det = u.new_zeros(u.shape[:2])
    for layer in range(masks.shape[0]):
        mask = masks[layer]
        log_scale, shift = _conditioner(network, layer, u * mask, 1 - mask, bound)
        u = u * log_scale.exp() + shift
        log_det = log_det + log_scale.sum(-1)
    return u, log_det


def _standard_log_prob(
    network: _Network, masks: torch.Tensor, u: torch.Tensor, bound: float
) -> torch.Tensor:
    """Log-density of standardized samples ``u`` (S, n, d): shape (S, n)."""
    z, log_det = _forward(network, masks, u, bound)
    return log_det - 0.5 * (z.square().sum(-1) + z.shape[-1] * _LOG_2PI)


def _inverse(network: _Network, masks: torch.Tensor, z: torch.Tensor, bound: float) -> torch.Tensor:
    """Map latents ``z`` (S, n, d) back to standardized samples, layer by layer in reverse."""
    for layer in reversed(range(masks.shape[0])):
        mask = masks[layer]
        log_scale, shift = _conditioner(network, layer, z * mask, 1 - mask, bound)
        z = (z - shift) * torch.exp(-log_scale)
    return z
