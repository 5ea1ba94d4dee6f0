"""The seed-batched way of running a loop: many replicates of a small model as one tensor program.

:func:`run_loop` runs the loop of a :class:`~madutils.loops.config.LoopConfig` for the
Gaussian, the Gaussian mixture and the coupling flow, all ``seeds`` replicates at once: data
come as tensors of shape ``(seeds, n, d)`` and every model is batched over the first axis. The
families and synthetic sources are those of :mod:`madutils.loops.families`; resume, progress,
timings and the results table are :func:`madutils.loops.driver.drive`'s.

For the Gaussian model, ``path="statistics"`` replaces every set of samples by its exact
sufficient statistics (:mod:`madutils.models.gaussian_statistics`): the same loop in
distribution, at a cost per generation that does not depend on the sample sizes.

Randomness: generation ``t`` draws from the streams ``(seed, t, purpose)`` of
:func:`madutils.rng.stream` with the purposes of :class:`madutils.rng.BatchedStream`, so a
resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from madutils.curation import (
    MAX_VERIFY_ROUNDS,
    best_of,
    detect_and_filter,
    distance_reward,
    gaussian_correction,
    in_support,
    keep_accepted,
    linear_reward,
    mixture_correction,
    random_subset,
    verify,
)
from madutils.data.distributions import make_distribution
from madutils.loops.config import LoopConfig
from madutils.loops.driver import Loop, LoopResult, drive, stored_run, torch_threads
from madutils.loops.families import TrainingSetRecipe
from madutils.metrics import MANIFOLD_METRICS, MetricContext
from madutils.metrics import measure as measure_metrics
from madutils.metrics.manifold import ManifoldReference
from madutils.models.base import settings_for
from madutils.models.flow import CouplingFlow
from madutils.models.gaussian import GaussianModel
from madutils.models.gaussian_statistics import SufficientStatistics, draw_gaussian_statistics
from madutils.models.mixture import GaussianMixtureModel
from madutils.results import RunStore
from madutils.rng import BatchedStream, stream

__all__ = ["MODEL_CLASSES", "BatchedLoop", "BatchedLoopResult", "iterate_loop", "run_loop"]

#: The model class of each ``LoopConfig.model``; built from the settings of the same names.
MODEL_CLASSES = {
    "gaussian": GaussianModel,
    "mixture": GaussianMixtureModel,
    "flow": CouplingFlow,
}


@dataclass
class BatchedLoopResult(LoopResult):
    """What :func:`run_loop` returns: a :class:`~madutils.loops.driver.LoopResult` plus

    Attributes
    ----------
    models : list
        The most recent fitted models (the last one is generation ``T``'s), batched over the
        replicates.
    """

    models: list = field(default_factory=list)

    def snapshots(self, generations) -> dict[int, np.ndarray]:
        """Stored samples of the first replicate (``keep_samples=True``): generation to array."""
        if self.run_dir is None:
            raise ValueError("this run was kept in memory: run it with out= and keep_samples=True")
        store = RunStore(self.run_dir, self.config.to_dict())
        missing = [g for g in generations if not store.file_path("samples", g).exists()]
        if missing:
            raise FileNotFoundError(
                f"{store.file_path('samples', missing[0])} does not exist: run the loop with "
                "keep_samples=True to keep samples"
            )
        return {g: store.load_file("samples", g, weights_only=True).numpy() for g in generations}


def _concat(parts):
    """Join training-set parts: sample tensors along the sample axis, or statistics."""
    if isinstance(parts[0], SufficientStatistics):
        total = parts[0]
        for part in parts[1:]:
            total = total.combine(part)
        return total
    return torch.cat(parts, dim=1)


class BatchedLoop(Loop):
    """State and steps of one run of a batched model; see :func:`run_loop`."""

    # a state holds the last models of every replicate (for a Gaussian in d = 100, 8 MB per
    # 100 replicates): keep a large one every ten generations besides the latest
    state_interval = 10

    def __init__(self, config: LoopConfig, store: RunStore | None, keep_samples: bool = False):
        super().__init__(config, store)
        self.keep_samples = keep_samples
        self.device = torch.device(config.device)
        self.statistics = config.path == "statistics"
        self.data = make_distribution(config.data, config.dim)
        if config.data == "gaussian":
            self.data = self.data.to(self.device)
        self.n_keep = config.memory if config.synthetic_source == "memory" else 1
        self.models: list = []
        self.pool = None  # accumulated synthetic pool: statistics or a list of tensors
        self.first_mean = None
        self._reference = None
        self.training_set = TrainingSetRecipe(
            config.family,
            config.n_ini,
            config.n_real,
            config.n_synthetic,
            draw_real=self._draw_real,
            synthetic_part=self._synthetic_part,
            join=_concat,
            n_fixed=config.n_fixed,
            accumulate_real=config.accumulate_real,
            screen=self._screen if config.detector_fpr is not None else None,
            budget=config.pool_budget,
            head=lambda part, n: part[:, :n],
            subsample=random_subset,
        )
        if config.curation == "best_of":
            unit = torch.zeros(config.dim, dtype=torch.float64)
            unit[0] = 1.0
            if config.reward == "linear":
                self.reward = linear_reward(config.reward_scale * unit)
            else:
                self.reward = distance_reward(unit, config.reward_scale)
        # synthetic samples drawn and kept in this generation (drawn_per_kept)
        self._drawn = torch.zeros(config.seeds, dtype=torch.float64)
        self._kept = 0

    @property
    def replicates(self) -> int:
        return self.cfg.seeds

    # -- building blocks -------------------------------------------------------------------
    def _new_model(self):
        model_class = MODEL_CLASSES[self.cfg.model]
        return model_class(**settings_for(model_class, self.cfg))

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

    # -- curation (madutils.curation) --------------------------------------------------------
    def _draw_curated(self, model, n: int, rng) -> torch.Tensor:
        """``n`` synthetic samples (or their statistics) of ``model`` after the configured
        curation step (none on the statistics path); counts the samples drawn for them."""
        cfg = self.cfg
        if cfg.curation == "verify":
            samples, drawn = self._verified(model, n, rng)
        elif cfg.curation == "best_of":
            candidates = self._draw_synthetic(model, n * cfg.candidates, rng)
            candidates = candidates.reshape(cfg.seeds, n, cfg.candidates, -1)
            samples = best_of(candidates, self.reward(candidates), rule=cfg.preference, rng=rng)
            drawn = n * cfg.candidates
        elif cfg.curation == "correct":
            samples, drawn = self._corrected(model, n, rng), n
        else:
            samples, drawn = self._draw_synthetic(model, n, rng), n
        self._drawn = self._drawn + torch.as_tensor(drawn, dtype=torch.float64).cpu()
        self._kept += n
        return samples

    def _verified(self, model, n: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidates drawn ``n`` at a time until every replicate has ``n`` the verifier
        accepted (or :data:`MAX_VERIFY_ROUNDS` rounds); the first ``n`` accepted ones."""
        cfg = self.cfg
        batches, decisions = [], []
        for _ in range(MAX_VERIFY_ROUNDS):
            batch = self._draw_synthetic(model, n, rng)
            truth = in_support(self.data, batch, cfg.support_mass)
            batches.append(batch)
            decisions.append(verify(truth, cfg.verifier_accuracy, rng=rng))
            if bool((torch.cat(decisions, dim=1).sum(dim=1) >= n).all()):
                break
        kept, drawn, _ = keep_accepted(torch.cat(batches, dim=1), torch.cat(decisions, dim=1), n)
        return kept, drawn

    def _corrected(self, model, n: int, rng) -> torch.Tensor:
        """``n`` samples moved toward P_r by the idealised correction of strength gamma."""
        cfg = self.cfg
        if cfg.model == "gaussian":
            samples = model.sample(n, cfg.lam, rng=rng)
            covariance = cfg.lam * model.covariance_
            return gaussian_correction(samples, model.mean_, covariance, self.data, cfg.correction)
        samples, components = model.sample_components(n, cfg.lam, rng=rng)
        covariances = cfg.lam * model.covariances_
        return mixture_correction(
            samples, components, model.means_, covariances, self.data, cfg.correction
        )

    def _screen(self, fresh, synthetic, rng):
        """The detector: drop the flagged share of the new real and synthetic samples."""
        cfg = self.cfg
        empty = torch.zeros(cfg.seeds, 0, cfg.dim, dtype=torch.float64, device=self.device)
        real, kept = detect_and_filter(
            empty if fresh is None else fresh,
            empty if synthetic is None else synthetic,
            fpr=cfg.detector_fpr,
            fnr=cfg.detector_fnr,
            rng=rng,
        )
        if synthetic is not None:
            self._kept = self._kept - synthetic.shape[1] + kept.shape[1]
        return (None if fresh is None else real), (None if synthetic is None else kept)

    def _drawn_per_kept(self) -> torch.Tensor:
        if self._kept == 0:
            value = 1.0 if not bool(self._drawn.any()) else float("nan")
            return torch.full((self.cfg.seeds,), value, dtype=torch.float64)
        return self._drawn / self._kept

    def _synthetic_part(self, rng):
        cfg = self.cfg
        if cfg.synthetic_source == "accumulate":
            return self.pool if self.statistics else torch.cat(self.pool, dim=1)
        if cfg.synthetic_source == "last" or len(self.models) == 1:
            return self._draw_curated(self.models[-1], cfg.n_synthetic, rng)
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

    def fit(self, training_set, rng):
        model = self._new_model()
        if self.statistics:
            return model.fit_statistics(training_set)
        return model.fit(training_set, rng=rng)

    def _add_to_pool(self, model, generation: int, rng):
        if self.cfg.synthetic_source != "accumulate" or self.cfg.n_synthetic == 0:
            return
        samples = self._draw_curated(model, self.cfg.n_synthetic, rng)
        if self.statistics:
            self.pool = samples if self.pool is None else self.pool.combine(samples)
            return
        self.pool = (self.pool or []) + [samples]
        if self.store is not None:
            self.written.append(self.store.save_file("pool", generation, samples.cpu()))

    # -- metrics -----------------------------------------------------------------------------
    def _reference_samples(self):
        if self._reference is None:
            rng = stream(self.cfg.seed, 0, BatchedStream.EVALUATION, device=self.device)
            real = self.data.sample(self.cfg.n_eval, n_seeds=1, rng=rng)[0]
            manifold = None
            if set(self.cfg.metrics) & set(MANIFOLD_METRICS):
                manifold = ManifoldReference(real, k=self.cfg.k)
            self._reference = (real, manifold)
        return self._reference

    def measure(self, model, generation: int, make_rng) -> dict[str, torch.Tensor]:
        """Every configured metric of ``model``: a dict of tensors of shape ``(seeds,)``.

        Each value is its :data:`madutils.metrics.REGISTRY` entry's ``compute`` on one
        :class:`~madutils.metrics.MetricContext`, in the configured order. ``make_rng()``
        returns the evaluation stream; it is only created when a metric reads the synthetic
        samples, which are then drawn once: ``model.sample(n_eval, lam, rng=make_rng())``.
        The real reference samples (and their k-NN manifold) are drawn once per run.
        """
        cfg = self.cfg
        if cfg.model == "gaussian" and generation == 1:
            self.first_mean = model.mean_.clone()
        context = MetricContext(
            model=model,
            lam=cfg.lam,
            n_eval=cfg.n_eval,
            make_rng=make_rng,
            seeds=cfg.seeds,
            data=self.data,
            first_mean=self.first_mean,
            k=cfg.k,
            real=lambda: self._reference_samples()[0],
            manifold=lambda: self._reference_samples()[1],
            drawn_per_kept=self._drawn_per_kept(),
        )
        return measure_metrics(cfg.metrics, context)

    # -- persistence -------------------------------------------------------------------------
    def state(self, generation: int) -> dict:
        return {
            "generation": generation,
            "models": [m.state_dict() for m in self.models],
            "fixed_real": self._fixed_real(),
            "real_seen": self.training_set.real_seen,
            "pool": self.pool if self.statistics else None,
            "first_mean": self.first_mean,
        }

    def restore(self, state: dict) -> int:
        self.models = [self._new_model().load_state_dict(s) for s in state["models"]]
        self.training_set.first_real = state["fixed_real"]
        self.training_set.real_seen = state.get("real_seen", [])
        self.first_mean = state["first_mean"]
        done = state["generation"]
        if self.cfg.synthetic_source == "accumulate" and self.cfg.n_synthetic > 0:
            if self.statistics:
                self.pool = state["pool"]
            else:
                self.pool = [
                    self.store.load_file("pool", t, weights_only=True).to(self.device)
                    for t in range(1, done + 1)
                ]
        return done

    def _fixed_real(self):
        """Generation 1's real set, kept for the loops that train on it again: synthetic
        augmentation, and fresh data with ``n_fixed`` kept samples."""
        if self.cfg.family == "synthetic_augmentation" or self.training_set.n_fixed:
            return self.training_set.first_real
        return None

    def _stream(self, generation: int, purpose: BatchedStream) -> torch.Generator:
        return stream(self.cfg.seed, generation, purpose, device=self.device)

    def step(self, generation: int) -> dict[str, np.ndarray]:
        """Run one generation; return its metric values, one array of shape (seeds,) each."""
        start = time.perf_counter()
        self._drawn, self._kept = torch.zeros_like(self._drawn), 0
        data_rng = self._stream(generation, BatchedStream.TRAINING_DATA)
        fit_rng = None if self.statistics else self._stream(generation, BatchedStream.FIT)
        model = self.fit(self.training_set(generation, data_rng), fit_rng)
        fitted = time.perf_counter()
        self._add_to_pool(model, generation, data_rng)
        self.models = (self.models + [model])[-self.n_keep :]
        measured = self.measure(
            model, generation, lambda: self._stream(generation, BatchedStream.EVALUATION)
        )
        values = {k: v.detach().to("cpu", torch.float64).numpy() for k, v in measured.items()}
        self.record_time(
            generation, fit_seconds=fitted - start, measure_seconds=time.perf_counter() - fitted
        )
        if self.store is not None and self.keep_samples:
            rng = self._stream(generation, BatchedStream.SNAPSHOT)
            samples = model.sample(self.cfg.n_eval, self.cfg.lam, rng=rng)[0]
            self.written.append(self.store.save_file("samples", generation, samples.cpu()))
        return values


def run_loop(
    config: LoopConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    keep_samples: bool = False,
    allow_code_change: bool = False,
    repair: bool = False,
) -> LoopResult:
    """Run (or resume) a self-consuming loop.

    Parameters
    ----------
    config : LoopConfig
        The settings; see :class:`madutils.loops.config.LoopConfig`.
    out : str or Path, optional
        Parent directory of the run directory. When given, every finished generation is
        saved, a rerun with the same settings resumes after the last finished generation, and
        ``results.csv`` is written at the end. When ``None`` the run is kept in memory.
    progress : bool
        Show a progress bar over generations.
    keep_samples : bool
        With ``out``: also store ``n_eval`` samples of the first replicate's model of every
        generation (drawn with ``lam``), read back with :meth:`LoopResult.snapshots`.
    allow_code_change : bool
        With ``out``: continue a run whose stored generations other code computed (the run's
        history records the mix, the rows' ``code`` column shows it); refused otherwise.
    repair : bool
        With ``out``: first drop the stored generations from the first damaged one on (see
        :func:`madutils.results.repair`), so that this run recomputes them.

    Returns
    -------
    BatchedLoopResult
    """
    cfg = config.resolved()
    with stored_run(out, cfg, repair=repair) as store, torch_threads(cfg.threads):
        loop = BatchedLoop(cfg, store, keep_samples)
        table, timings = drive(loop, progress=progress, allow_code_change=allow_code_change)
    return BatchedLoopResult(
        table=table,
        timings=timings,
        config=cfg,
        run_dir=store.path if store else None,
        computed=loop.computed,
        models=loop.models,
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
    loop = BatchedLoop(cfg, None)
    for generation in range(1, cfg.generations + 1):
        with torch_threads(cfg.threads):  # as run_loop computes
            values = loop.step(generation)
        yield generation, loop.models[-1], values
