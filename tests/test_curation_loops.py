"""The mitigations as loop options: curation steps, data mixing and the detector inside a run.

Each option is checked where the answer is known: what the next model trains on (captured
from the loop's fit), the cost the loop records, the exact resume, and the refusal of bad
options with a message that names them.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from madutils.cli import main
from madutils.curation import in_support, mixture_correction
from madutils.data.distributions import GridMixture
from madutils.loops import batched as loops
from madutils.loops.batched import BatchedLoop, run_loop
from madutils.loops.config import LoopConfig
from madutils.loops.families import TrainingSetRecipe
from madutils.models.mixture import GaussianMixtureModel


def _training_sets(config: LoopConfig, monkeypatch) -> tuple[dict, object]:
    """Run ``config`` in memory; return the training set of every generation and the result."""
    seen = {}
    original = BatchedLoop.fit

    def capture(self, training_set, rng):
        seen[len(seen) + 1] = training_set.clone()
        return original(self, training_set, rng)

    monkeypatch.setattr(BatchedLoop, "fit", capture)
    result = run_loop(config, progress=False)
    return seen, result


def _values(table, metric: str, generation: int) -> torch.Tensor:
    rows = table[(table.metric == metric) & (table.generation == generation)]
    return torch.tensor(rows.sort_values("replicate").value.to_numpy())


# ------------------------------------------------------------------------------ verification


def test_a_verifier_of_accuracy_one_trains_only_on_in_support_samples(monkeypatch):
    config = LoopConfig(
        n_ini=40, generations=3, seeds=6, curation="verify", support_mass=0.8, verifier_accuracy=1.0
    )
    sets, result = _training_sets(config, monkeypatch)
    data = BatchedLoop(config.resolved(), None).data
    assert not bool(in_support(data, sets[1], 0.8).all())  # generation 1: real, unscreened
    for generation in (2, 3):
        assert sets[generation].shape == (6, 40, 2)
        assert bool(in_support(data, sets[generation], 0.8).all())
    table = result.table
    assert torch.equal(_values(table, "drawn_per_kept", 1), torch.ones(6, dtype=torch.float64))
    cost = _values(table, "drawn_per_kept", 2)
    assert bool((cost > 1).all()) and bool((cost < 3).all())  # about 1 / 0.8 accepted
    assert cost.dtype == torch.float64 and bool((cost * 40 == cost.mul(40).round()).all())


def test_a_coin_flip_verifier_lets_outside_samples_through(monkeypatch):
    config = LoopConfig(
        n_ini=200,
        generations=2,
        seeds=4,
        curation="verify",
        support_mass=0.5,
        verifier_accuracy=0.5,
    )
    sets, _ = _training_sets(config, monkeypatch)
    data = BatchedLoop(config.resolved(), None).data
    outside = 1.0 - float(in_support(data, sets[2], 0.5).double().mean())
    assert 0.3 < outside < 0.7


# ----------------------------------------------------------------------- curation by preference


def test_best_of_two_under_a_linear_reward_shifts_the_training_mean_by_the_expected_maximum(
    monkeypatch,
):
    """The larger of two N(m, s^2) draws has mean m + s / sqrt(pi)."""
    config = LoopConfig(
        dim=1, n_ini=30, generations=2, seeds=3000, curation="best_of", candidates=2,
        preference="argmax", reward="linear",
    )  # fmt: skip
    sets, _ = _training_sets(config, monkeypatch)
    first = sets[1][..., 0]
    mean, scale = first.mean(dim=1), first.var(dim=1, correction=0).sqrt()
    shift = (sets[2][..., 0].mean(dim=1) - mean) / scale
    assert float(shift.mean()) == pytest.approx(1 / math.sqrt(math.pi), abs=0.02)


def test_a_curated_loop_collapses_onto_the_reward_maximiser_unless_real_data_is_mixed_in():
    """Ferbach et al.: curation alone drives the loop toward the reward's maximiser, here the
    point e_1 at squared distance 1 from the real mean; the fixed real set of synthetic
    augmentation keeps its spread."""
    common = dict(dim=2, n_ini=50, generations=8, seeds=40, curation="best_of", candidates=4)
    alone = run_loop(LoopConfig(**common), progress=False).table
    mixed = run_loop(LoopConfig(family="synthetic_augmentation", **common), progress=False).table
    spread = {
        name: _values(t, "cov_trace", 8).median()
        for name, t in (("alone", alone), ("mixed", mixed))
    }
    assert spread["alone"] < 0.2 * _values(alone, "cov_trace", 1).median()
    assert spread["mixed"] > 0.5 * _values(mixed, "cov_trace", 1).median()
    assert 0.5 < _values(alone, "mean_error", 8).median() < 1.5
    assert torch.equal(_values(alone, "drawn_per_kept", 8), torch.full((40,), 4.0).double())


# --------------------------------------------------------------------------- self-correction


def test_a_full_correction_keeps_the_fully_synthetic_gaussian_where_fresh_data_would():
    """With gamma = 1 every synthetic set is distributed as P_r: W2^2 stays at generation 1's
    level, where the uncorrected loop drifts away."""
    common = dict(dim=3, n_ini=20, generations=8, seeds=400)
    corrected = run_loop(LoopConfig(curation="correct", correction=1.0, **common), progress=False)
    plain = run_loop(LoopConfig(**common), progress=False)
    first = _values(corrected.table, "w2_squared", 1).mean()
    assert _values(corrected.table, "w2_squared", 8).mean() == pytest.approx(float(first), rel=0.2)
    assert _values(plain.table, "w2_squared", 8).mean() > 3 * first


def _exact(mean, covariance, n, generator):
    z = torch.randn((n, len(mean)), generator=generator, dtype=torch.float64)
    z = z - z.mean(dim=0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / n)).T
    return mean + z @ torch.linalg.cholesky(covariance).T


def test_a_full_mixture_correction_draws_each_component_from_its_nearest_mode():
    real = GridMixture()
    means = real.means[[0, 7, 24]] + torch.tensor([[0.2, -0.1], [0.05, 0.3], [-0.25, 0.0]])
    covariances = torch.stack(
        [torch.tensor([[0.05, 0.01], [0.01, 0.02]]), torch.eye(2) * 0.2, torch.eye(2) * 0.001]
    ).double()
    generator = torch.Generator().manual_seed(0)
    parts = [_exact(m, c, 300, generator) for m, c in zip(means, covariances, strict=True)]
    samples = torch.cat(parts).unsqueeze(0)
    components = torch.arange(3).repeat_interleave(300).unsqueeze(0)
    moved = mixture_correction(samples, components, means[None], covariances[None], real, 1.0)
    for j, mode in enumerate((0, 7, 24)):
        part = moved[0, components[0] == j]
        centred = part - part.mean(dim=0)
        assert torch.allclose(part.mean(dim=0), real.means[mode].double(), atol=1e-10)
        assert torch.allclose(centred.T @ centred / 300, real.variance * torch.eye(2).double())
    assert torch.equal(
        mixture_correction(samples, components, means[None], covariances[None], real, 0.0), samples
    )


def test_the_mixture_samples_come_with_the_components_they_were_drawn_from():
    X = GridMixture().sample(200, n_seeds=2, rng=torch.Generator().manual_seed(1))
    model = GaussianMixtureModel(n_components=25).fit(X, rng=torch.Generator().manual_seed(2))
    plain = model.sample(50, 0.7, rng=torch.Generator().manual_seed(3))
    samples, components = model.sample_components(50, 0.7, rng=torch.Generator().manual_seed(3))
    assert torch.equal(plain, samples) and components.shape == (2, 50)
    nearest = torch.cdist(samples, model.means_).argmin(dim=-1)
    assert float((nearest == components).double().mean()) > 0.6


# --------------------------------------------------------------------------- data mixing


def _labelled(value):
    """A stand-in real or synthetic part: ``n`` samples holding ``value`` (one replicate)."""
    return lambda n, rng=None: torch.full((1, n, 1), float(value))


def _composition(training_set) -> dict[float, int]:
    values, counts = torch.unique(training_set[0, :, 0], return_counts=True)
    return {float(v): int(c) for v, c in zip(values, counts, strict=True)}


def test_the_accumulated_pool_holds_every_real_and_synthetic_part_seen():
    drawn = iter(range(1, 100))
    recipe = TrainingSetRecipe(
        "fresh_data", 10, 4, 3,
        draw_real=lambda n, rng: torch.full((1, n, 1), float(next(drawn))),
        synthetic_part=lambda rng: torch.full((1, 3 * generation - 3, 1), -1.0),
        join=lambda parts: torch.cat(parts, dim=1),
        accumulate_real=True,
    )  # fmt: skip
    for generation in range(1, 5):
        composition = _composition(recipe(generation))
        assert composition.pop(-1.0, 0) == 3 * (generation - 1)
        assert composition == {1.0: 10, **{float(g): 4 for g in range(2, generation + 1)}}


def test_a_fixed_real_set_stays_beside_the_fresh_one_and_the_budget_caps_the_set():
    drawn = iter(range(1, 100))
    recipe = TrainingSetRecipe(
        "fresh_data", 10, 4, 6,
        draw_real=lambda n, rng: torch.arange(n, dtype=torch.float64).reshape(1, n, 1)
        + 100 * next(drawn),
        synthetic_part=lambda rng: torch.full((1, 6, 1), -1.0),
        join=lambda parts: torch.cat(parts, dim=1),
        n_fixed=3,
        budget=8,
        head=lambda part, n: part[:, :n],
        subsample=lambda part, n, rng: part[:, :n],
    )  # fmt: skip
    assert recipe(1)[0, :, 0].tolist() == [100.0 + i for i in range(8)]  # 10 cut to 8
    second = recipe(2)[0, :, 0].tolist()
    assert second == [100.0, 101.0, 102.0, 200.0, 201.0, 202.0, 203.0, -1.0]


def test_accumulating_everything_under_a_budget_trains_on_a_constant_size(monkeypatch):
    config = LoopConfig(
        family="fresh_data", n_ini=30, n_real=10, n_synthetic=20, generations=4, seeds=2,
        synthetic_source="accumulate", accumulate_real=True,
    )  # fmt: skip
    sets, _ = _training_sets(config, monkeypatch)
    assert [sets[g].shape[1] for g in range(1, 5)] == [30, 60, 90, 120]
    budget = LoopConfig(**{**config.to_dict(), "pool_budget": 50})
    sets, _ = _training_sets(budget, monkeypatch)
    assert [sets[g].shape[1] for g in range(1, 5)] == [30, 50, 50, 50]
    assert all(bool(torch.isfinite(s).all()) for s in sets.values())


def test_the_detector_keeps_its_shares_and_counts_what_was_drawn_per_kept(monkeypatch):
    config = LoopConfig(
        family="fresh_data", n_ini=40, n_real=20, n_synthetic=40, generations=3, seeds=2,
        detector_fpr=0.25, detector_fnr=0.5,
    )  # fmt: skip
    sets, result = _training_sets(config, monkeypatch)
    assert [sets[g].shape[1] for g in (1, 2, 3)] == [40, 15 + 20, 15 + 20]
    cost = _values(result.table, "drawn_per_kept", 2)
    assert torch.equal(cost, torch.full((2,), 2.0, dtype=torch.float64))


# ------------------------------------------------------------------------------- resume


class Interrupt(Exception):
    pass


CURATED = {
    "verify": LoopConfig(n_ini=30, seeds=2, curation="verify", verifier_accuracy=0.9),
    "best_of": LoopConfig(n_ini=30, seeds=2, curation="best_of", candidates=3),
    "correct-mixture": LoopConfig(
        model="mixture", n_ini=60, n_components=4, seeds=2, curation="correct", correction=0.5
    ),
    "everything": LoopConfig(
        family="fresh_data",
        n_ini=20,
        n_real=10,
        n_synthetic=10,
        seeds=2,
        n_fixed=5,
        accumulate_real=True,
        synthetic_source="accumulate",
        pool_budget=40,
    ),  # fmt: skip
    "detector": LoopConfig(
        family="fresh_data",
        n_ini=20,
        n_real=10,
        n_synthetic=10,
        seeds=2,
        n_fixed=5,
        detector_fpr=0.1,
        detector_fnr=0.3,
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(CURATED))
def test_an_interrupted_curated_run_resumes_to_the_same_table(name, tmp_path, monkeypatch):
    config = LoopConfig(**{**CURATED[name].to_dict(), "generations": 5})
    full = run_loop(config, tmp_path / "a", progress=False).table
    original = loops.BatchedLoop.step

    def failing(self, generation):
        if generation == 4:
            raise Interrupt
        return original(self, generation)

    monkeypatch.setattr(loops.BatchedLoop, "step", failing)
    with pytest.raises(Interrupt):
        run_loop(config, tmp_path / "b", progress=False)
    monkeypatch.setattr(loops.BatchedLoop, "step", original)
    resumed = run_loop(config, tmp_path / "b", progress=False).table
    assert resumed.drop(columns="code").equals(full.drop(columns="code"))


def test_options_a_run_does_not_use_do_not_change_its_identity():
    plain = LoopConfig(n_ini=30).resolved()
    assert LoopConfig(n_ini=30, verifier_accuracy=0.3, candidates=9).resolved() == plain
    assert LoopConfig(n_ini=30, n_fixed=5, accumulate_real=True).resolved() == plain
    assert "drawn_per_kept" not in plain.metrics
    assert "drawn_per_kept" in LoopConfig(n_ini=30, curation="verify").resolved().metrics


# ------------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(curation="verify", verifier_accuracy=1.5), "verifier_accuracy must be a probability"),
        (
            dict(curation="verify", verifier_accuracy=-0.1),
            "verifier_accuracy must be a probability",
        ),
        (dict(curation="verify", support_mass=1.0), r"support_mass must be a number in \(0, 1\)"),
        (dict(curation="best_of", candidates=0), "candidates must be a positive integer"),
        (dict(curation="best_of", preference="max"), "preference must be one of"),
        (dict(curation="best_of", reward_scale=-1.0), "reward_scale must be a finite number > 0"),
        (dict(curation="correct", correction=1.5), "correction must be a probability"),
        (dict(curation="correct", correction=-0.5), "correction must be a probability"),
        (dict(detector_fpr=1.2, detector_fnr=0.1), "detector_fpr must be a probability"),
        (dict(detector_fpr=0.1, detector_fnr=-1.0), "detector_fnr must be a probability"),
        (dict(detector_fpr=0.1), "detector_fpr and detector_fnr must be given together"),
        (dict(detector_fpr=0.0, detector_fnr=0.0), "the detector leaves 0 real and 0 synthetic"),
        (dict(curation="sieve"), "curation must be one of 'none', 'verify'"),
        (dict(curation="verify", path="statistics"), "needs path='samples'"),
        (dict(pool_budget=1), "pool_budget must be at least 2"),
        (dict(pool_budget=0), "pool_budget must be a positive integer"),
        (dict(curation="correct", model="flow"), "curation='correct' has an exact correction"),
        (dict(curation="verify", data="rosenbrock"), "curation='verify' needs data 'gaussian'"),
        (
            dict(curation="best_of", synthetic_source="memory", memory=2),
            "takes synthetic_source 'last' or 'accumulate'",
        ),
        (
            dict(synthetic_source="accumulate", detector_fpr=0.1, detector_fnr=0.5),
            "takes synthetic_source 'last' or 'memory'",
        ),
        (
            dict(family="fresh_data", n_real=10, n_synthetic=10, n_fixed=200),
            "n_fixed must be at most n_ini=100",
        ),
    ],
)
def test_bad_curation_options_are_refused_naming_them(settings, match):
    with pytest.raises(ValueError, match=match):
        LoopConfig(**settings)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--curation", "verify", "--verifier-accuracy", "1.5"], "verifier_accuracy must be"),
        (["--curation", "best_of", "--candidates", "0"], "candidates must be a positive"),
        (["--curation", "correct", "--correction", "2"], "correction must be a probability"),
        (["--detector-fpr", "0.1", "--detector-fnr", "7"], "detector_fnr must be a probability"),
    ],
)
def test_the_command_line_refuses_bad_curation_options_in_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["loop", "--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---------------------------------------------------------------------------- image loops

TINY_DDPM = dict(
    dataset="digits", held_out=150, n_ini=60, n_eval=60, generations=3, channels=(8, 16),
    timesteps=10, steps=3, epochs=1, batch_size=32, feature_epochs=1, device="cpu",
    mixed_precision="no",
)  # fmt: skip


def _stand_in_probabilities(self, images, batch_size=1024):
    """A verifier with a known rule (the tiny networks of a test classify noise): the class of
    an image is its count of bright pixels modulo 10, with confidence 0.8 (0.2 for odd
    classes), so a stricter tau rejects the odd ones whatever the label."""
    bright = (images.float() > (127.5 if images.dtype == torch.uint8 else 0.5)).flatten(1).sum(1)
    classes = bright % 10
    probabilities = torch.full((len(images), 10), 0.0)
    probabilities[torch.arange(len(images)), classes] = torch.where(classes % 2 == 0, 0.8, 0.2)
    return probabilities


def _passes(images, labels, tau):
    confidence, predicted = _stand_in_probabilities(None, images).max(dim=1)
    return (predicted == labels) & (confidence >= tau)


def test_the_verifier_acceptance_of_real_digits_follows_its_rule_class_by_class(monkeypatch):
    from madutils.analysis.images import verifier_acceptance

    real = _bare_image_loop(monkeypatch).real
    images, labels = real.held_out.images, real.held_out.labels
    table = verifier_acceptance(real, [0.1, 0.5, 0.9])
    assert list(table.index) == [0.1, 0.5, 0.9] and list(table.columns) == [*range(10), "all"]
    for tau in (0.1, 0.5):
        passed = _passes(images, labels, tau)
        assert table.loc[tau, "all"] == pytest.approx(passed.float().mean().item())
        for c in range(10):
            share = passed[labels == c].float().mean().item()
            assert table.loc[tau, c] == pytest.approx(share)
    # the stand-in is sure (0.8) of even classes only, and of nothing at 0.9
    assert (table.loc[0.5, [1, 3, 5, 7, 9]] == 0).all() and (table.loc[0.9] == 0).all()
    assert table.loc[0.1, "all"] > table.loc[0.5, "all"] > 0
    with pytest.raises(ValueError, match="confidence must be"):
        verifier_acceptance(real, [1.5])


def test_the_ddpm_verifier_keeps_images_of_the_asked_class_and_resumes_exactly(
    tmp_path, monkeypatch
):
    from madutils.loops.image_config import ImageLoopConfig
    from madutils.loops.images import ImageRun, run_image_loop
    from madutils.metrics.features import FeatureNetwork

    monkeypatch.setattr(FeatureNetwork, "probabilities", _stand_in_probabilities)
    cache = tmp_path / "cache"
    config = ImageLoopConfig(**TINY_DDPM, curation="verify", verifier_confidence=0.5)
    in_memory = run_image_loop(config, None, progress=False, cache_dir=cache)
    table = in_memory.table
    cost = table[table.metric == "drawn_per_kept"].sort_values("generation").value
    assert len(cost) == 3 and bool((cost > 1).all())
    short = dataclasses.replace(config, generations=2)
    run_image_loop(short, tmp_path / "runs", progress=False, cache_dir=cache)
    resumed = run_image_loop(config, tmp_path / "runs", progress=False, cache_dir=cache)
    ordered = ["generation", "metric"]
    torch.testing.assert_close(
        torch.tensor(resumed.table.sort_values(ordered).value.to_numpy()),
        torch.tensor(table.sort_values(ordered).value.to_numpy()),
    )
    run = ImageRun(resumed.run_dir)
    for generation in (1, 2, 3):
        verified = torch.load(
            resumed.run_dir / "curated" / f"{generation:05d}.pt", weights_only=True
        )
        raw = run.samples(generation)
        labels = verified["labels"]
        assert torch.equal(labels, raw.labels[:60])  # the classes asked for stay
        kept = _passes(verified["images"], labels, 0.5)
        even = labels % 2 == 0  # an odd class never passes: its images are drawn to the end
        assert float(kept[even].double().mean()) > 0.8 and not bool(kept[~even].any())
        assert float(_passes(raw.images[:60], labels, 0.5).double().mean()) < 0.2
        assert float(cost.iloc[generation - 1]) > 1 + 0.5 * 19  # odd slots: every round


class _CountingModel:
    """A stand-in generator whose every draw is known: the ``i``-th image it ever draws has
    ``i % 64`` bright pixels (so the stand-in verifier's class of it is ``i % 64 % 10``)."""

    device_ = torch.device("cpu")

    def __init__(self, conditional: bool):
        self.conditional = conditional
        self.drawn = 0

    def sample(self, n, lam, *, rng, labels=None):
        bright = (torch.arange(self.drawn, self.drawn + n) % 64)[:, None]
        self.drawn += n
        images = (torch.arange(64)[None, :] < bright).float()
        return images.reshape(n, 1, 8, 8)


def _bare_image_loop(monkeypatch, **settings):
    """An ImageLoop of the tiny digits settings, its real images and feature network loaded,
    with the stand-in verifier's probabilities."""
    from madutils.loops.image_config import ImageLoopConfig
    from madutils.loops.images import ImageLoop, prepare_real_images
    from madutils.metrics.features import FeatureNetwork

    monkeypatch.setattr(FeatureNetwork, "probabilities", _stand_in_probabilities)
    config = ImageLoopConfig(**TINY_DDPM, **settings).resolved()
    return ImageLoop(config, None, prepare_real_images(config), progress=False)


def _log_p(images, labels):
    probabilities = _stand_in_probabilities(None, images).to(torch.float64)
    return probabilities[torch.arange(len(images)), labels].clamp_min(1e-300).log()


def test_best_of_k_keeps_the_candidate_the_feature_network_is_surest_of(monkeypatch):
    from madutils.loops.images import _quantise

    loop = _bare_image_loop(monkeypatch, curation="best_of", candidates=3, preference="argmax")
    model = _CountingModel(conditional=True)
    n = 60
    labels = torch.arange(n) % 10
    first = _quantise(model.sample(n, 1.0, rng=None))
    kept, kept_labels, cost = loop._best_of(model, first, labels, generation=2)
    assert cost == 3.0 and torch.equal(kept_labels, labels)
    # the candidates were the images 0..59, 60..119 and 120..179 the model drew
    redrawn = _CountingModel(conditional=True)
    candidates = torch.stack([_quantise(redrawn.sample(n, 1.0, rng=None)) for _ in range(3)], 1)
    rewards = torch.stack([_log_p(candidates[:, j], labels) for j in range(3)], dim=1)
    expected = candidates[torch.arange(n), rewards.argmax(dim=1)]
    assert torch.equal(kept, expected)
    assert bool((_log_p(kept, labels) >= rewards.max(dim=1).values).all())


def test_bradley_terry_keeps_a_candidate_with_probability_proportional_to_its_confidence(
    monkeypatch,
):
    """Two candidates for class 4, the first at p(4 | x) = 0.8 and the second at 0.2: the rule
    keeps the first with probability 0.8 / (0.8 + 0.2) at reward_scale 1 and
    0.8^2 / (0.8^2 + 0.2^2) at 2."""
    from madutils.metrics.features import FeatureNetwork

    loop = _bare_image_loop(monkeypatch, curation="best_of", candidates=2)

    def two_levels(self, images, batch_size=1024):  # p(4 | x) = 0.8 if pixel 0 is bright
        p4 = torch.where(images.flatten(1)[:, 0] > 0.5, 0.8, 0.2)
        probabilities = torch.zeros(len(images), 10)
        probabilities[:, 4], probabilities[:, 5] = p4, 1 - p4
        return probabilities

    monkeypatch.setattr(FeatureNetwork, "probabilities", two_levels)
    n = 4000
    first = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    first.view(n, -1)[:, 0] = 255
    second = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    monkeypatch.setattr(loop, "_draw", lambda model, m, labels, rng: (second[:m], labels))
    for scale, share in ((1.0, 0.8), (2.0, 0.64 / 0.68)):
        loop.cfg = dataclasses.replace(loop.cfg, reward_scale=scale)
        kept, _, _ = loop._best_of(_CountingModel(True), first, torch.full((n,), 4), 1)
        first_kept = float((kept.view(n, -1)[:, 0] == 255).double().mean())
        assert abs(first_kept - share) < 4 * math.sqrt(share * (1 - share) / n)


def test_a_full_expert_correction_trains_on_the_nearest_real_image_of_the_class(monkeypatch):
    loop = _bare_image_loop(monkeypatch, curation="correct", correction=1.0)
    model = _CountingModel(conditional=True)
    from madutils.loops.images import _quantise

    images = _quantise(model.sample(40, 1.0, rng=None))
    labels = torch.arange(40) % 10
    corrected, kept_labels, cost = loop._curated(model, images, labels, generation=2)
    assert cost == 1.0 and torch.equal(kept_labels, labels)
    train = loop.real.train
    real = _quantise(train.images)
    real_features = loop.real.features.features(train.images)
    features = loop.real.features.features(images.float() / 255)
    for i in range(40):
        same_class = torch.nonzero(train.labels == labels[i]).squeeze(1)
        nearest = same_class[torch.cdist(features[i : i + 1], real_features[same_class]).argmin()]
        assert torch.equal(corrected[i], real[nearest])
    loop.cfg = dataclasses.replace(loop.cfg, correction=0.0)
    unchanged, _, _ = loop._curated(model, images, labels, generation=2)
    assert torch.equal(unchanged, images)
    loop.cfg = dataclasses.replace(loop.cfg, correction=0.5)
    half, _, _ = loop._curated(model, images, labels, generation=2)
    assert (half.float() - (images.float() + corrected.float()) / 2).abs().max() <= 0.5 + 1e-4


def test_the_unconditional_verifier_keeps_confident_images_with_their_predicted_class(
    monkeypatch,
):
    loop = _bare_image_loop(monkeypatch, curation="verify", verifier_confidence=0.5)
    from madutils.loops.images import _quantise

    model = _CountingModel(conditional=False)
    images = _quantise(model.sample(60, 1.0, rng=None))
    labels = loop.real.labels_of(images.float() / 255)
    kept, kept_labels, cost = loop._verified(model, images, labels, generation=2)
    confidence, predicted = _stand_in_probabilities(None, kept).max(dim=1)
    assert bool((confidence >= 0.5).all()) and torch.equal(kept_labels, predicted)
    assert cost == model.drawn / 60 and cost > 1


def test_the_image_detector_keeps_its_shares_of_new_real_and_synthetic_images(monkeypatch):
    from madutils.loops.image_config import ImageLoopConfig
    from madutils.loops.images import ImageLoop, run_image_loop

    sizes = []
    original = ImageLoop.fit

    def recording(self, generation, training):
        sizes.append(len(training.images))
        return original(self, generation, training)

    monkeypatch.setattr(ImageLoop, "fit", recording)
    config = ImageLoopConfig(
        **{**TINY_DDPM, "n_eval": 40}, family="fresh_data", n_real=20, n_synthetic=40,
        detector_fpr=0.25, detector_fnr=0.5,
    )  # fmt: skip
    table = run_image_loop(config, None, progress=False).table
    assert sizes == [60, 15 + 20, 15 + 20]
    cost = table[table.metric == "drawn_per_kept"].sort_values("generation").value
    assert cost.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "settings",
    [
        dict(curation="best_of", candidates=2),
        dict(curation="correct", correction=0.5),
        dict(family="fresh_data", n_real=30, n_synthetic=60, detector_fpr=0.2, detector_fnr=0.5),
    ],
    ids=["best_of", "correct", "detector"],
)
def test_a_curated_image_run_resumes_exactly(settings, tmp_path, monkeypatch):
    from madutils.loops.image_config import ImageLoopConfig
    from madutils.loops.images import run_image_loop
    from madutils.metrics.features import FeatureNetwork

    monkeypatch.setattr(FeatureNetwork, "probabilities", _stand_in_probabilities)
    cache = tmp_path / "cache"
    config = ImageLoopConfig(**TINY_DDPM, **settings)
    table = run_image_loop(config, None, progress=False, cache_dir=cache).table
    short = dataclasses.replace(config, generations=2)
    run_image_loop(short, tmp_path / "runs", progress=False, cache_dir=cache)
    resumed = run_image_loop(config, tmp_path / "runs", progress=False, cache_dir=cache).table
    ordered = ["generation", "metric", "replicate"]
    torch.testing.assert_close(
        torch.tensor(resumed.sort_values(ordered).value.to_numpy()),
        torch.tensor(table.sort_values(ordered).value.to_numpy()),
        equal_nan=True,
    )
    assert "drawn_per_kept" in set(table.metric)


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(curation="verify", verifier_confidence=1.5), "verifier_confidence must be a prob"),
        (dict(curation="best_of", candidates=0), "candidates must be a positive integer"),
        (dict(curation="best_of", reward_scale=0.0), "reward_scale must be a finite number > 0"),
        (dict(curation="correct", correction=-0.1), "correction must be a probability"),
        (dict(detector_fpr=0.1, detector_fnr=1.5), "detector_fnr must be a probability"),
        (dict(detector_fpr=0.1), "detector_fpr and detector_fnr must be given together"),
        (
            dict(detector_fpr=0.5, detector_fnr=0.0),
            "the detector leaves 0 real and 0 synthetic samples .* fewer than the 1",
        ),
        (
            dict(synthetic_source="accumulate", detector_fpr=0.1, detector_fnr=0.5),
            "takes synthetic_source 'last' or 'memory'",
        ),
        (dict(curation="best_of", features="mod:fn"), "curation='best_of' needs features 'lenet'"),
        (dict(curation="sieve"), "curation must be one of 'none', 'verify', 'best_of', 'correct'"),
    ],
)
def test_bad_image_curation_options_are_refused_naming_them(settings, match):
    from madutils.loops.image_config import ImageLoopConfig

    with pytest.raises(ValueError, match=match):
        ImageLoopConfig(**TINY_DDPM, **settings)


def test_image_curation_options_a_run_does_not_use_do_not_change_its_identity():
    from madutils.loops.image_config import ImageLoopConfig

    plain = ImageLoopConfig(**TINY_DDPM).resolved()
    unused = dict(candidates=9, correction=0.1, verifier_confidence=0.2, reward_scale=3.0)
    assert ImageLoopConfig(**TINY_DDPM, **unused).resolved() == plain
    assert not plain.curates
    assert ImageLoopConfig(**TINY_DDPM, detector_fpr=0.1, detector_fnr=0.5).curates


def test_the_command_line_refuses_a_bad_image_curation_option_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["loop", "--model", "ddpm", "--out", str(tmp_path), "--candidates", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "candidates must be a positive" in err and err.count("\n") == 1
