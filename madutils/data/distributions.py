"""The real data distributions P_r of the paper's toy experiments.

Each distribution draws ``n`` samples for each of ``n_seeds`` replicates from an explicit
``torch.Generator`` and returns a float64 tensor of shape ``(n_seeds, n, dim)``:

- :class:`GaussianDistribution`: a ``dim``-dimensional Gaussian, N(0, I) by default (E1, E6-E9);
- :class:`GridMixture`: 25 equally weighted isotropic Gaussians with means on {-2,...,2}^2 and
  variance 0.01 (E11);
- :class:`Rosenbrock`: x1 ~ N(0, 1), x2 | x1 ~ N(x1^2, 1/2), the density of the flow experiment
  (E12).
"""

from __future__ import annotations

import math

import torch

from madutils._validation import check_finite, check_positive_int, check_positive_number

__all__ = [
    "DISTRIBUTIONS",
    "GRID_MODE_STD",
    "GRID_MODE_VARIANCE",
    "GRID_SIZE",
    "GaussianDistribution",
    "GridMixture",
    "Rosenbrock",
    "grid_means",
    "make_distribution",
]

DTYPE = torch.float64

# -- the 25-mode grid: the one definition, used by GridMixture and madutils.metrics.mixture --

#: Modes per axis of the paper's grid mixture (5 x 5 = 25 modes).
GRID_SIZE = 5
#: Per-coordinate variance of each grid mode (0.01 in the paper, as far as it can be read off).
GRID_MODE_VARIANCE = 0.01
#: Per-coordinate standard deviation of each grid mode, ``sqrt(GRID_MODE_VARIANCE)`` (0.1).
GRID_MODE_STD = math.sqrt(GRID_MODE_VARIANCE)


def grid_means(grid_size: int = GRID_SIZE, spacing: float = 1.0) -> torch.Tensor:
    """Means of the grid mixture: a ``grid_size x grid_size`` square grid centred at 0.

    Per axis ``linspace(-(grid_size - 1) / 2, (grid_size - 1) / 2, grid_size) * spacing``;
    the default is the paper's {-2, -1, 0, 1, 2}^2. Modes are ordered first coordinate
    slowest (mode ``i * grid_size + j`` sits at ``(axis[i], axis[j])``).

    Parameters
    ----------
    grid_size : int, default 5
        Modes per axis.
    spacing : float, default 1.0
        Distance between neighbouring modes.

    Returns
    -------
    Tensor of float64, shape (grid_size**2, 2)
    """
    grid_size = check_positive_int(grid_size, "grid_size")
    spacing = check_positive_number(spacing, "spacing")
    half = (grid_size - 1) / 2
    axis = torch.linspace(-half, half, grid_size, dtype=DTYPE) * spacing
    first, second = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([first.reshape(-1), second.reshape(-1)], dim=1)


class GaussianDistribution:
    """A multivariate Gaussian N(mean, covariance).

    Parameters
    ----------
    dim : int
        Dimension; used when ``mean`` and ``covariance`` are not given.
    mean : Tensor of shape (dim,), optional
        Defaults to zeros.
    covariance : Tensor of shape (dim, dim), optional
        Symmetric positive definite; defaults to the identity.
    """

    def __init__(self, dim: int = 2, mean=None, covariance=None):
        dim = check_positive_int(dim, "dim")
        self.mean = (
            torch.zeros(dim, dtype=DTYPE) if mean is None else torch.as_tensor(mean, dtype=DTYPE)
        )
        self.covariance = (
            torch.eye(dim, dtype=DTYPE)
            if covariance is None
            else torch.as_tensor(covariance, dtype=DTYPE)
        )
        self.dim = int(self.mean.shape[0])
        if self.covariance.shape != (self.dim, self.dim):
            raise ValueError(
                f"covariance must have shape ({self.dim}, {self.dim}) to match mean; "
                f"got {tuple(self.covariance.shape)}"
            )
        check_finite(self.mean, "mean")
        check_finite(self.covariance, "covariance")
        factor, info = torch.linalg.cholesky_ex(self.covariance)
        if int(info) != 0 or not torch.allclose(self.covariance, self.covariance.T):
            raise ValueError("covariance must be symmetric positive definite")
        self.factor = factor

    def to(self, device) -> GaussianDistribution:
        """Return the same distribution with its parameters on ``device``."""
        moved = GaussianDistribution(self.dim, self.mean, self.covariance)
        moved.mean, moved.covariance, moved.factor = (
            t.to(device) for t in (self.mean, self.covariance, self.factor)
        )
        return moved

    def sample(self, n: int, *, n_seeds: int = 1, rng: torch.Generator) -> torch.Tensor:
        """Draw ``n`` samples per seed; returns shape ``(n_seeds, n, dim)``."""
        n = check_positive_int(n, "n")
        n_seeds = check_positive_int(n_seeds, "n_seeds")
        z = torch.randn(n_seeds, n, self.dim, dtype=DTYPE, device=rng.device, generator=rng)
        return self.mean.to(rng.device) + z @ self.factor.to(rng.device).T


class GridMixture:
    """Equal-weight mixture of isotropic Gaussians centred on a square grid (the paper's E11).

    Parameters
    ----------
    grid_size : int
        Modes per axis; the means are :func:`grid_means` ``(grid_size)``, {-2, -1, 0, 1, 2}^2
        for the default 5 (25 modes).
    variance : float
        Per-coordinate variance of each mode (default :data:`GRID_MODE_VARIANCE`, 0.01).
    """

    dim = 2

    def __init__(self, grid_size: int = GRID_SIZE, variance: float = GRID_MODE_VARIANCE):
        self.grid_size = check_positive_int(grid_size, "grid_size")
        self.variance = check_positive_number(variance, "variance")
        self.means = grid_means(self.grid_size)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def sample(self, n: int, *, n_seeds: int = 1, rng: torch.Generator) -> torch.Tensor:
        """Draw ``n`` samples per seed; returns shape ``(n_seeds, n, 2)``."""
        n = check_positive_int(n, "n")
        n_seeds = check_positive_int(n_seeds, "n_seeds")
        device = rng.device
        modes = torch.randint(len(self.means), (n_seeds, n), device=device, generator=rng)
        z = torch.randn(n_seeds, n, 2, dtype=DTYPE, device=device, generator=rng)
        return self.means.to(device)[modes] + self.std * z


class Rosenbrock:
    """The 2-D Rosenbrock density: x1 ~ N(0, 1), x2 | x1 ~ N(x1^2, 1/2) (the paper's E12)."""

    dim = 2
    conditional_variance = 0.5

    def sample(self, n: int, *, n_seeds: int = 1, rng: torch.Generator) -> torch.Tensor:
        """Draw ``n`` samples per seed; returns shape ``(n_seeds, n, 2)``."""
        n = check_positive_int(n, "n")
        n_seeds = check_positive_int(n_seeds, "n_seeds")
        z = torch.randn(n_seeds, n, 2, dtype=DTYPE, device=rng.device, generator=rng)
        x1 = z[..., 0]
        x2 = x1**2 + math.sqrt(self.conditional_variance) * z[..., 1]
        return torch.stack([x1, x2], dim=-1)


DISTRIBUTIONS = ("gaussian", "grid_mixture", "rosenbrock")


def make_distribution(name: str, dim: int = 2):
    """Build a real distribution by name: one of :data:`DISTRIBUTIONS`."""
    from madutils._validation import check_choice

    check_choice(name, "data", DISTRIBUTIONS)
    if name == "gaussian":
        return GaussianDistribution(dim)
    if dim != 2:
        raise ValueError(f"dim must be 2 for data={name!r} (a 2-D distribution); got {dim}")
    return GridMixture() if name == "grid_mixture" else Rosenbrock()
