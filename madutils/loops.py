"""The three self-consuming loop families of the paper, batched over seeds.

Generation 1 trains a model on ``n_ini`` real samples. Every generation ``t >= 2`` trains a new
model from scratch on a training set of

=========================  ================================  ==============================
family                     real part                         synthetic part
=========================  ================================  ==============================
``fully_synthetic``        none                              ``n_synthetic`` samples
``synthetic_augmentation`` generation 1's real set (fixed)   ``n_synthetic`` samples
``fresh_data``             ``n_real`` new real samples       ``n_synthetic`` samples
=========================  ================================  ==============================

where the synthetic samples, drawn with sampling bias ``lam``, come from (``synthetic_source``)

- ``"last"``: the previous model ``G^{t-1}`` (the paper's default);
- ``"accumulate"``: a pool holding the ``n_synthetic`` samples each earlier model
  ``G^1, ..., G^{t-1}`` drew when it was trained, so the pool grows by ``n_synthetic`` per
  generation (the paper's E4);
- ``"memory"``: ``n_synthetic`` draws, each from a model picked uniformly among the ``K``
  most recent ones (the paper's appendix, E8).

For the Gaussian model, ``path="statistics"`` replaces every set of samples by its exact
sufficient statistics (:mod:`madutils.gaussian_statistics`): the same loop in distribution, at a
cost per generation that does not depend on the sample sizes.

Randomness: generation ``t`` draws from the streams ``(seed, t, purpose)`` of
:func:`madutils.rng.stream` (purpose 0: training data, 1: model fitting, 2: evaluation), so a
resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .config import LoopConfig
from .distributions import make_distribution
from .gaussian_statistics import SufficientStatistics, draw_gaussian_statistics
from .metrics import MANIFOLD_METRICS, NEEDS_SAMPLES
from .metrics.frechet import frechet_distance, gaussian_w2_squared
from .metrics.gaussian import covariance_trace, mean_drift
from .metrics.manifold import ManifoldReference
from .metrics.mixture import modal_variance, modes_covered, total_variance
from .metrics.tails import marginal_wasserstein, real_quantile, tail_share
from .models.flow import CouplingFlow
from .models.gaussian import GaussianModel
from .models.mixture import GaussianMixtureModel
from .results import COLUMNS, RunStore
from .rng import stream

__all__ = ["LoopResult", "iterate_loop", "run_loop"]

_DATA, _FIT, _EVAL = 0, 1, 2  # stream purposes within a generation
_SNAPSHOT = 99  # samples kept for pictures (as madutils.experiments.sample_snapshots draws)


@dataclass
class LoopResult:
    """What :func:`run_loop` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        Long-form results, columns ``family, model, lam, seed, generation, metric, value``.
    config : LoopConfig
        The settings with every default resolved.
    run_dir : Path or None
        The run directory, when the run was stored.
    models : list
        The most recent fitted models (the last one is generation ``T``'s).
    """

    table: pd.DataFrame
    config: LoopConfig
    run_dir: Path | None
    models: list

    def snapshots(self, generations) -> dict[int, np.ndarray]:
        """Stored samples of the first replicate (``keep_samples=True``): generation to array."""
        if self.run_dir is None:
            raise ValueError("this run was kept in memory: run it with out= and keep_samples=True")
        store = RunStore(self.run_dir, self.config.to_dict())
        return {g: store.load_snapshot(g).numpy() for g in generations}


def _table(config: LoopConfig, records: list[tuple[int, dict]]) -> pd.DataFrame:
    """Long-form table from ``(generation, {metric: values of shape (seeds,)})`` records."""
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    keys = [(generation, name) for generation, values in records for name in values]
    values = np.concatenate([v for _, values in records for v in values.values()])
    seeds = config.seeds
    table = pd.DataFrame(
        {
            "seed": np.tile(np.arange(seeds), len(keys)),
            "generation": np.repeat([g for g, _ in keys], seeds),
            "metric": np.repeat(np.array([m for _, m in keys], dtype=object), seeds),
            "value": values,
        }
    )
    table.insert(0, "family", config.family)
    table.insert(1, "model", config.model)
    table.insert(2, "lam", config.lam)
    return table


def _concat(parts):
    """Join training-set parts: sample tensors along the sample axis, or statistics."""
    if isinstance(parts[0], SufficientStatistics):
        total = parts[0]
        for part in parts[1:]:
            total = total.combine(part)
        return total
    return torch.cat(parts, dim=1)


class _Loop:
    """State and steps of one run; see :func:`run_loop`."""

    def __init__(self, config: LoopConfig, store: RunStore | None, keep_samples: bool = False):
        self.cfg = config
        self.store = store
        self.keep_samples = keep_samples
        self.device = torch.device(config.device)
        self.statistics = config.path == "statistics"
        self.data = make_distribution(config.data, config.dim)
        if config.data == "gaussian":
            self.data = self.data.to(self.device)
        self.n_keep = config.memory if config.synthetic_source == "memory" else 1
        self.models: list = []
        self.fixed_real = None
        self.pool = None  # accumulated synthetic pool: statistics or a list of tensors
        self.first_mean = None
        self._reference = None
        self.timings: list[dict] = []

    # -- building blocks -------------------------------------------------------------------
    def _new_model(self):
        cfg = self.cfg
        if cfg.model == "gaussian":
            return GaussianModel()
        if cfg.model == "flow":
            return CouplingFlow(
                n_layers=cfg.flow_layers,
                hidden=cfg.flow_hidden,
                epochs=cfg.flow_epochs,
                batch_size=cfg.flow_batch_size,
            )
        return GaussianMixtureModel(n_components=cfg.n_components)

    def _draw_real(self, n: int, rng):
        if self.statistics:
            mean = self.data.mean.expand(self.cfg.seeds, -1)
            factor = self.data.factor.expand(self.cfg.seeds, -1, -1)
            return draw_gaussian_statistics(n, mean, factor, rng=rng)
        return self.data.sample(n, n_seeds=self.cfg.seeds, rng=rng)

    def _draw_synthetic(self, model, n, rng):
        if self.statistics:
            return model.sample_statistics(n, self.cfg.lam, rng=rng)
        return model.sample(n, self.cfg.lam, rng=rng)

    def _synthetic_part(self, rng):
        cfg = self.cfg
        if cfg.synthetic_source == "accumulate":
            return self.pool if self.statistics else torch.cat(self.pool, dim=1)
        if cfg.synthetic_source == "last" or len(self.models) == 1:
            return self._draw_synthetic(self.models[-1], cfg.n_synthetic, rng)
        # memory: each synthetic sample comes from a model picked uniformly among the K last
        n_models = len(self.models)
        choice = torch.randint(
            n_models, (cfg.seeds, cfg.n_synthetic), generator=rng, device=self.device
        )
        if self.statistics:
            counts = torch.zeros(cfg.seeds, n_models, dtype=torch.float64, device=self.device)
            counts.scatter_add_(1, choice, torch.ones_like(choice, dtype=torch.float64))
            return _concat(
                [self._draw_synthetic(m, counts[:, j], rng) for j, m in enumerate(self.models)]
            )
        draws = torch.stack([self._draw_synthetic(m, cfg.n_synthetic, rng) for m in self.models])
        seeds = torch.arange(cfg.seeds, device=self.device).unsqueeze(1)
        rows = torch.arange(cfg.n_synthetic, device=self.device).unsqueeze(0)
        return draws[choice, seeds, rows]

    def training_set(self, generation: int, rng):
        """The training set of ``generation``: samples ``(seeds, n, d)`` or statistics."""
        cfg = self.cfg
        if generation == 1:
            real = self._draw_real(cfg.n_ini, rng)
            if cfg.family == "synthetic_augmentation":
                self.fixed_real = real
            return real
        parts = []
        if cfg.family == "synthetic_augmentation":
            parts.append(self.fixed_real)
        elif cfg.family == "fresh_data":
            parts.append(self._draw_real(cfg.n_real, rng))
        if cfg.n_synthetic > 0:
            parts.append(self._synthetic_part(rng))
        return _concat(parts)

    def fit(self, training_set, rng):
        model = self._new_model()
        if self.statistics:
            return model.fit_statistics(training_set)
        return model.fit(training_set, rng=rng)

    def _add_to_pool(self, model, generation: int, rng):
        if self.cfg.synthetic_source != "accumulate" or self.cfg.n_synthetic == 0:
            return
        samples = self._draw_synthetic(model, self.cfg.n_synthetic, rng)
        if self.statistics:
            self.pool = samples if self.pool is None else self.pool.combine(samples)
            return
        self.pool = (self.pool or []) + [samples]
        if self.store is not None:
            self.store.save_pool(generation, samples)

    # -- metrics -----------------------------------------------------------------------------
    def _reference_samples(self):
        if self._reference is None:
            rng = stream(self.cfg.seed, 0, _EVAL, device=self.device)
            real = self.data.sample(self.cfg.n_eval, n_seeds=1, rng=rng)[0]
            manifold = None
            if set(self.cfg.metrics) & set(MANIFOLD_METRICS):
                manifold = ManifoldReference(real, k=self.cfg.k)
            self._reference = (real, manifold)
        return self._reference

    def measure(self, model, generation: int, make_rng) -> dict[str, torch.Tensor]:
        """Every configured metric of ``model``: a dict of tensors of shape ``(seeds,)``.

        ``make_rng()`` returns the evaluation stream; it is only created when samples are drawn.
        """
        cfg = self.cfg
        names = set(cfg.metrics)
        values = {}
        if cfg.model == "gaussian":
            if generation == 1:
                self.first_mean = model.mean_.clone()
            if "w2_squared" in names:
                values["w2_squared"] = gaussian_w2_squared(
                    model.mean_, model.covariance_, self.data.mean, self.data.covariance
                )
            if "cov_trace" in names:
                values["cov_trace"] = covariance_trace(model.covariance_)
            if "mean_drift" in names:
                values["mean_drift"] = mean_drift(model.mean_, self.first_mean)
            if "mean_error" in names:
                values["mean_error"] = mean_drift(model.mean_, self.data.mean)
        elif "modal_variance" in names:
            values["modal_variance"] = modal_variance(model.covariances_)
        elif "heldout_nll" in names:
            real, _ = self._reference_samples()
            values["heldout_nll"] = -model.score(real.unsqueeze(0).expand(cfg.seeds, -1, -1))
        if names & NEEDS_SAMPLES:
            synthetic = model.sample(cfg.n_eval, cfg.lam, rng=make_rng())
            real, manifold = self._reference_samples()
            if "frechet" in names:
                values["frechet"] = frechet_distance(real, synthetic)
            if manifold is not None:
                scores = manifold.compute(synthetic)
                values.update({k: v for k, v in scores.items() if k in names})
            if "modes_covered" in names:
                values["modes_covered"] = modes_covered(
                    synthetic, self.data.means.to(self.device), self.data.std
                )
            if "total_variance" in names:
                values["total_variance"] = total_variance(synthetic)
            if "tail_share" in names:
                threshold = real_quantile(real.unsqueeze(0), 0.99)
                values["tail_share"] = tail_share(synthetic, threshold)
            if "marginal_w1" in names:
                values["marginal_w1"] = marginal_wasserstein(real.unsqueeze(0), synthetic)
        return {name: values[name] for name in cfg.metrics}

    # -- persistence -------------------------------------------------------------------------
    def state(self, generation: int) -> dict:
        return {
            "generation": generation,
            "models": [m.state_dict() for m in self.models],
            "fixed_real": self.fixed_real,
            "pool": self.pool if self.statistics else None,
            "first_mean": self.first_mean,
            "timings": list(self.timings),
        }

    def restore(self, state: dict) -> int:
        self.models = [self._new_model().load_state_dict(s) for s in state["models"]]
        self.fixed_real = state["fixed_real"]
        self.first_mean = state["first_mean"]
        self.timings = list(state.get("timings", []))
        done = state["generation"]
        if self.cfg.synthetic_source == "accumulate" and self.cfg.n_synthetic > 0:
            if self.statistics:
                self.pool = state["pool"]
            else:
                self.pool = [self.store.load_pool(t).to(self.device) for t in range(1, done + 1)]
        return done

    def _stream(self, generation: int, purpose: int) -> torch.Generator:
        return stream(self.cfg.seed, generation, purpose, device=self.device)

    def step(self, generation: int) -> dict[str, np.ndarray]:
        """Run one generation; return its metric values, one array of shape (seeds,) each."""
        start = time.perf_counter()
        data_rng = self._stream(generation, _DATA)
        fit_rng = None if self.statistics else self._stream(generation, _FIT)
        model = self.fit(self.training_set(generation, data_rng), fit_rng)
        fitted = time.perf_counter()
        self._add_to_pool(model, generation, data_rng)
        self.models = (self.models + [model])[-self.n_keep :]
        measured = self.measure(model, generation, lambda: self._stream(generation, _EVAL))
        values = {k: v.detach().to("cpu", torch.float64).numpy() for k, v in measured.items()}
        self.timings.append(
            {
                "generation": generation,
                "fit_seconds": fitted - start,
                "measure_seconds": time.perf_counter() - fitted,
            }
        )
        if self.store is not None and self.keep_samples:
            rng = self._stream(generation, _SNAPSHOT)
            self.store.save_snapshot(
                generation, model.sample(self.cfg.n_eval, self.cfg.lam, rng=rng)[0]
            )
        if self.store is not None:
            rows = _table(self.cfg, [(generation, values)])
            self.store.save_generation(generation, rows, self.state(generation))
        return values


def run_loop(
    config: LoopConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    keep_samples: bool = False,
) -> LoopResult:
    """Run (or resume) a self-consuming loop.

    Parameters
    ----------
    config : LoopConfig
        The settings; see :class:`madutils.config.LoopConfig`.
    out : str or Path, optional
        Parent directory of the run directory. When given, every finished generation is
        saved, a rerun with the same settings resumes after the last finished generation, and
        ``results.csv`` is written at the end. When ``None`` the run is kept in memory.
    progress : bool
        Show a progress bar over generations.
    keep_samples : bool
        With ``out``: also store ``n_eval`` samples of the first replicate's model of every
        generation (drawn with ``lam``), read back with :meth:`LoopResult.snapshots`.

    Returns
    -------
    LoopResult
    """
    cfg = config.resolved()
    store = RunStore.open(out, cfg.to_dict()) if out is not None else None
    loop = _Loop(cfg, store, keep_samples)
    done = 0
    previous = None
    if store is not None:
        state = store.load_state(device=cfg.device)
        if state is not None:
            done = loop.restore(state)
            previous = store.results(min(done, cfg.generations))
    desc = f"{cfg.family} {cfg.model} lam={cfg.lam:g}"
    bar = tqdm(
        range(done + 1, cfg.generations + 1),
        total=cfg.generations,
        initial=min(done, cfg.generations),
        desc=desc,
        unit="gen",
        disable=not progress,
    )
    table = _table(cfg, [(generation, loop.step(generation)) for generation in bar])
    if previous is not None:
        table = pd.concat([previous, table], ignore_index=True) if len(table) else previous
    if store is not None:
        store.write_results(table)
        timings = pd.DataFrame(
            loop.timings, columns=["generation", "fit_seconds", "measure_seconds"]
        )
        store.write_timings(timings[timings["generation"] <= cfg.generations])
    return LoopResult(
        table=table, config=cfg, run_dir=store.path if store else None, models=loop.models
    )


def iterate_loop(config: LoopConfig):
    """Run a loop in memory, yielding ``(generation, model, values)`` after each generation.

    For looking inside a run (sample snapshots, parameter paths) without storing it; the
    values are those :func:`run_loop` records, and the random streams are the same, so the
    models are those of ``run_loop(config)``.

    Yields
    ------
    generation : int
    model : BatchedModel
        The model fitted in that generation (all seeds).
    values : dict of ndarray
        Metric values of shape ``(seeds,)``.
    """
    cfg = config.resolved()
    loop = _Loop(cfg, None)
    for generation in range(1, cfg.generations + 1):
        values = loop.step(generation)
        yield generation, loop.models[-1], values
