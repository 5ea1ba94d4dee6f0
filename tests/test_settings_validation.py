"""Settings are refused up front, before a run directory exists or a kernel starts.

One test group per rule: which real data each model can run on; the samples per set each
metric needs; the memory a run needs (madutils.loops.footprint); settings a run does not use
resolve to their defaults (so they never change a run's hash); a value of the wrong type for
any field is a ValueError naming the field; notebook parameters that hold loop settings are
checked by the settings' own checks.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch
import yaml

from madutils.loops import footprint
from madutils.loops.batched import MODEL_CLASSES, BatchedLoop, run_loop
from madutils.loops.config import (
    DATA_CHOICES,
    DATA_FOR,
    MODELS,
    USED_WHEN,
    LoopConfig,
    check_setting,
    eval_samples_needed,
)
from madutils.loops.families import unused_settings
from madutils.loops.image_config import USED_WHEN as IMAGE_USED_WHEN
from madutils.loops.image_config import ImageLoopConfig
from madutils.metrics import REGISTRY, metric_names
from madutils.models.base import settings_for
from madutils.recipes import recipe
from madutils.results import run_name
from madutils.runner import (
    check_loop_parameters,
    find_notebook,
    notebook_parameters,
    parameter_setting,
    parse_cli_value,
    resolve_parameters,
)

#: Small enough for a few generations in well under a second per model.
TINY = dict(n_ini=60, generations=2, seeds=2, epochs=1, n_components=3, n_eval=30)
#: A valid image-loop configuration on the 8x8 digits (nothing here trains a network).
IMAGE = dict(dataset="digits", held_out=150, n_ini=60, n_eval=60, device="cpu")
#: A valid value other than the default, for every setting some runs do not use.
CHANGED = {
    "memory": 3,
    "path": "statistics",
    "n_components": 5,
    "n_layers": 2,
    "hidden": 8,
    "epochs": 3,
    "batch_size": 32,
    "k": 3,
    "data_path": "data/elsewhere",
    "channels": (8, 16),
    "layers_per_block": 2,
    "timesteps": 40,
    "ema_decay": 0.5,
    "sampler": "ddim",
    "steps": 5,
    "mixed_precision": "no",
    "latent_dim": 8,
    "width": 8,
    "n_critic": 2,
    "mapping_layers": 2,
    "max_width": 32,
    "r1_gamma": 0.5,
    "style_mixing": 0.5,
    "path_length": 2.0,
    "n_fixed": 5,
    "accumulate_real": True,
    "verifier_accuracy": 0.8,
    "support_mass": 0.9,
    "candidates": 2,
    "preference": "argmax",
    "reward": "linear",
    "reward_scale": 2.0,
    "correction": 0.3,
    "verifier_confidence": 0.5,
}


@pytest.fixture
def memory(monkeypatch):
    """21 GB of host memory, whatever the machine has."""
    monkeypatch.delenv(footprint.SKIP_VARIABLE, raising=False)
    monkeypatch.setattr(footprint, "available_memory", lambda device: (21 * 10**9, "test"))


# ------------------------------------------------------------------ 1. which data a model takes


@pytest.mark.parametrize(
    ("model", "path", "data"),
    [(model, path, data) for (model, path), allowed in DATA_FOR.items() for data in allowed],
)
def test_every_pair_the_table_allows_runs_with_every_metric(model, path, data):
    cfg = LoopConfig(model=model, path=path, data=data, metrics=metric_names(model, data), **TINY)
    table = run_loop(cfg, progress=False).table
    assert set(table.metric) == set(metric_names(model, data))
    assert table.value.notna().all()


@pytest.mark.parametrize(
    ("model", "path", "data"),
    [
        (model, path, data)
        for (model, path), allowed in DATA_FOR.items()
        for data in DATA_CHOICES
        if data not in allowed
    ],
)
def test_data_a_model_cannot_run_on_is_refused_naming_data_and_the_model(model, path, data):
    allowed = ", ".join(repr(d) for d in DATA_FOR[model, path])
    with pytest.raises(ValueError, match=rf"^data must be one of {allowed} for model='{model}'"):
        LoopConfig(model=model, path=path, data=data)


def test_only_the_gaussian_has_a_statistics_path_and_the_flow_needs_two_dimensions():
    assert {model for model, path in DATA_FOR if path == "statistics"} == {"gaussian"}
    assert {model for model, _ in DATA_FOR} == set(MODELS)
    with pytest.raises(ValueError, match="path='statistics' needs model='gaussian'"):
        LoopConfig(model="flow", path="statistics")
    with pytest.raises(ValueError, match="dim must be at least 2 for model='flow'"):
        LoopConfig(model="flow", data="gaussian", dim=1)


# ------------------------------------------------------------ 2. samples per set of the metrics


def _batched_metrics():
    data = {"gaussian": "gaussian", "mixture": "grid_mixture", "flow": "rosenbrock"}
    return [
        (model, data[model], name) for model in MODELS for name in metric_names(model, data[model])
    ]


@pytest.mark.parametrize(("model", "data", "metric"), _batched_metrics())
def test_each_metric_needs_exactly_the_samples_the_config_asks_for(model, data, metric):
    """With the fewest samples the config allows the metric is computed; with one fewer the
    config refuses, naming n_eval and the metric, and the computation itself would fail."""
    needed = eval_samples_needed(metric, k=2)
    cfg = LoopConfig(model=model, data=data, metrics=(metric,), k=2, **{**TINY, "n_eval": needed})
    assert (
        run_loop(dataclasses.replace(cfg, generations=1), progress=False).table.value.notna().all()
    )
    if needed == 1:
        return
    with pytest.raises(ValueError, match=rf"n_eval.*{metric}|{metric}.*n_eval"):
        dataclasses.replace(cfg, n_eval=needed - 1)
    resolved = dataclasses.replace(cfg.resolved(), generations=1)
    object.__setattr__(resolved, "n_eval", needed - 1)  # past the check, into the metric
    with pytest.raises(ValueError):
        BatchedLoop(resolved, None).step(1)


def test_a_too_small_n_eval_names_n_ini_when_it_defaults_to_it():
    with pytest.raises(
        ValueError, match=r"n_eval must be at least 2 for metric 'frechet'.*n_eval=1"
    ):
        LoopConfig(n_eval=1, metrics=("frechet",))
    with pytest.raises(ValueError, match=r"metric 'precision'.*defaults to n_ini=5"):
        LoopConfig(model="mixture", n_components=2, n_ini=5, metrics=("precision",))
    with pytest.raises(ValueError, match=r"at least 10 for metric 'fd_infinity'.*held_out=5"):
        ImageLoopConfig(**{**IMAGE, "n_eval": None, "held_out": 5})
    with pytest.raises(ValueError, match=r"k must be smaller than n_eval.*defaults to held_out"):
        ImageLoopConfig(**{**IMAGE, "n_eval": None, "held_out": 10, "k": 10})
    assert all(name in REGISTRY for name in ("frechet", "fid", "total_variance"))
    minimum = {n: REGISTRY[n].min_samples for n in ("frechet", "fid", "kid", "fd_infinity")}
    assert minimum == {"frechet": 2, "fid": 2, "kid": 2, "fd_infinity": 10}


# ------------------------------------------------------------------------ 3. memory up front


@pytest.mark.parametrize(
    ("settings", "driver"),
    [
        (dict(seeds=10**8), "seeds"),
        (dict(dim=100_000), "dim"),
        (dict(dim=100_000, path="statistics"), "dim"),
        (dict(n_ini=10**9), "n_ini"),
        (dict(model="mixture", n_components=10**6, n_ini=10**6), "n_components"),
        (dict(model="flow", n_ini=10**9), "n_ini"),
        (dict(synthetic_source="accumulate", n_ini=1000, generations=10**6), "generations"),
        (dict(synthetic_source="memory", memory=10**6, n_ini=1000, seeds=10), "memory"),
    ],
)
def test_a_batched_run_that_cannot_fit_is_refused_before_its_directory_exists(
    memory, tmp_path, settings, driver
):
    cfg = LoopConfig(**settings)  # the settings themselves are valid
    value = getattr(cfg, driver)
    with pytest.raises(ValueError, match=rf"^{driver}={value} needs about .* GB are available"):
        run_loop(cfg, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("settings", "driver"),
    [
        (dict(image_size=10_000), "image_size"),
        (dict(n_ini=10**9), "n_ini"),
        (dict(model="wgan", image_size=10_000), "image_size"),
        (dict(synthetic_source="accumulate", n_synthetic=1000, generations=10**6), "generations"),
        (dict(batch_size=10**6, image_size=256), "batch_size"),
    ],
)
def test_an_image_run_that_cannot_fit_is_refused_before_it_loads_anything(
    memory, tmp_path, settings, driver
):
    from madutils.loops.images import run_image_loop

    cfg = ImageLoopConfig(**{**IMAGE, **settings})
    value = getattr(cfg, driver)
    with pytest.raises(ValueError, match=rf"^{driver}={value} needs about .* are available"):
        run_image_loop(cfg, tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert not any(tmp_path.iterdir())


def test_the_memory_check_is_skipped_when_unknown_or_asked_to(monkeypatch):
    huge = LoopConfig(seeds=10**8)
    monkeypatch.setattr(footprint, "available_memory", lambda device: (10**9, "test"))
    with pytest.raises(ValueError, match="MADUTILS_SKIP_MEMORY_CHECK=1"):
        huge.resolved()
    monkeypatch.setenv(footprint.SKIP_VARIABLE, "1")
    assert huge.resolved().seeds == 10**8
    monkeypatch.setenv(footprint.SKIP_VARIABLE, "0")
    with pytest.raises(ValueError):
        huge.resolved()
    monkeypatch.setattr(footprint, "available_memory", lambda device: None)
    assert huge.resolved().seeds == 10**8


def test_the_host_memory_is_read_without_allocating():
    available = footprint.available_memory("cpu")
    assert available is None or available[0] > 0


def test_the_estimate_counts_the_dominant_tensors_with_their_dtype():
    cfg = LoopConfig(seeds=10, n_ini=1000, dim=3).resolved()
    training = next(p for p in footprint.loop_footprint(cfg) if p.what == "training samples")
    assert training.nbytes == 3 * 10 * 1000 * 3 * 8  # float64, three copies
    pooled = LoopConfig(seeds=10, n_ini=1000, synthetic_source="accumulate", generations=5)
    parts = {p.what: p for p in footprint.loop_footprint(pooled.resolved())}
    assert parts["accumulated synthetic pool"].nbytes == 10 * 5 * 1000 * 2 * 8
    statistics = LoopConfig(seeds=10, dim=50, path="statistics").resolved()
    assert [p.what for p in footprint.loop_footprint(statistics)] == ["covariances"]
    image = ImageLoopConfig(**IMAGE, synthetic_source="accumulate", generations=4).resolved()
    kept = next(
        p for p in footprint.image_loop_footprint(image) if p.what == "kept synthetic images"
    )
    assert kept.nbytes == 4 * 60 * 8 * 8  # uint8, every generation's images


def _parameters(notebook: str, scale: str) -> dict:
    path = find_notebook(notebook)
    return {**notebook_parameters(path), **resolve_parameters(path, scale)}


@pytest.mark.parametrize(("scale", "limit"), [("ci", 1e9), ("cpu", 4e9), ("gpu", 100e9)])
def test_the_books_largest_runs_fit_the_machines_their_scale_is_for(scale, limit):
    """The cpu scale fits a 2-core laptop's few GB, the gpu scale the H200's 139 GiB."""
    fully = _parameters("fully_synthetic", scale)
    augmentation = _parameters("synthetic_augmentation", scale)
    fresh = _parameters("fresh_data", scale)
    configs = [
        LoopConfig(
            model="mixture",
            family="synthetic_augmentation",
            synthetic_source="accumulate",
            n_ini=augmentation["mixture_n"],
            generations=augmentation["mixture_generations"],
            seeds=augmentation["mixture_seeds"],
            metrics=("precision", "recall", "modes_covered"),
        ),
        LoopConfig(
            model="flow",
            n_ini=fully["flow_n"],
            generations=fully["flow_generations"],
            epochs=fully["flow_epochs"],
            seeds=fully["flow_seeds"],
        ),
        LoopConfig(
            dim=fully["gaussian_dim"], n_ini=fully["gaussian_n"], seeds=fully["gaussian_seeds"]
        ),
        LoopConfig(
            family="fresh_data",
            dim=fresh["memory_dim"],
            n_ini=fresh["memory_n_real"],
            n_real=fresh["memory_n_real"],
            n_synthetic=fresh["memory_n_synthetic"],
            seeds=fresh["seeds"],
            path="statistics",
            synthetic_source="memory",
            memory=max(fresh["memory_ks"]),
        ),
    ]
    estimates = [sum(p.nbytes for p in footprint.loop_footprint(c.resolved())) for c in configs]
    for model in ("ddpm", "wgan"):
        settings = {**recipe(model, scale), "data_path": "unused"}
        for family in ("fully_synthetic", "synthetic_augmentation"):
            cfg = ImageLoopConfig(**settings, family=family, device="cpu").resolved()
            estimates.append(sum(p.nbytes for p in footprint.image_loop_footprint(cfg)))
    assert max(estimates) < limit


def test_the_stylegan2_chapters_gpu_runs_fit_the_gpu_machine(monkeypatch):
    """FFHQ-128 with config-F networks: the host's 128 GiB and the H200's 139 GiB, the images
    of the folder and the pool held as bytes (the same runs as floats would not fit)."""
    from pathlib import Path

    from madutils.analysis.stylegan2 import chapter_parameters, chapter_runs

    runs = chapter_runs(chapter_parameters("gpu", Path("notebooks")), replicates=1)
    configs = [cfg.resolved(check_memory=False) for cfg in runs]
    memory = {"cpu": (128 * 2**30, "host"), "cuda": (139 * 2**30, "H200")}
    monkeypatch.setattr(footprint, "available_memory", lambda device: memory[device])
    assert {c.synthetic_source for c in configs} == {"last", "accumulate"}
    for cfg in configs:
        parts = footprint.image_loop_footprint(cfg)
        footprint.check_footprint(parts, "cuda")  # does not raise
        as_floats = [
            dataclasses.replace(p, bytes_per_value=4) if p.what.endswith("images") else p
            for p in parts
        ]
        if cfg.synthetic_source == "accumulate":
            with pytest.raises(ValueError, match="needs about"):
                footprint.check_footprint(as_floats, "cuda")


def test_the_stylegan2_estimate_counts_its_weights_exactly():
    cfg = ImageLoopConfig(
        model="stylegan2",
        dataset="shapes",
        image_size=16,
        image_channels=3,
        width=8,
        max_width=32,
        latent_dim=16,
        mapping_layers=2,
        held_out=150,
        n_ini=60,
        device="cpu",
    ).resolved()
    from madutils.models.stylegan2 import StyleGAN2

    networks = StyleGAN2(**settings_for(StyleGAN2, cfg))._initial_networks(0)
    count = sum(p.numel() for network in networks for p in network.parameters())
    weights = next(p for p in footprint.image_loop_footprint(cfg) if p.what == "network weights")
    assert weights.nbytes == 5 * 4 * count  # five float32 copies


# ---------------------------------------------------------- 4. unused settings resolve to defaults


def test_settings_a_run_does_not_use_do_not_change_its_identity():
    assert LoopConfig(memory=3).resolved() == LoopConfig().resolved()
    assert run_name(LoopConfig(memory=3).resolved().to_dict()) == run_name(
        LoopConfig().resolved().to_dict()
    )
    assert (
        LoopConfig(model="mixture", hidden=8, k=3).resolved()
        != LoopConfig(model="mixture").resolved()
    )  # k is read by the mixture's precision and recall
    wgan = dict(IMAGE, model="wgan")
    assert ImageLoopConfig(**wgan, sampler="ddim", ema_decay=0.5).resolved() == (
        ImageLoopConfig(**wgan).resolved()
    )


def test_the_usage_tables_name_every_setting_once_with_a_changed_value():
    for cls, table in ((LoopConfig, USED_WHEN), (ImageLoopConfig, IMAGE_USED_WHEN)):
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(table) <= names and set(table) <= set(CHANGED)
        assert all(other in names for other, _ in table.values())


def _variants(cls, base: dict):
    """Every (model, source) a config class has, with the base settings."""
    models = MODELS if cls is LoopConfig else ("ddpm", "wgan")
    for model in models:
        for source in ("last", "memory"):
            yield cls(**{**base, "model": model, "synthetic_source": source})


@pytest.mark.parametrize(
    ("cls", "base", "table"),
    [(LoopConfig, dict(n_ini=60), USED_WHEN), (ImageLoopConfig, IMAGE, IMAGE_USED_WHEN)],
    ids=["LoopConfig", "ImageLoopConfig"],
)
def test_an_unused_setting_is_reset_and_a_used_one_is_kept(cls, base, table):
    for config in _variants(cls, base):
        resolved = config.resolved()
        unused = set(unused_settings(resolved, table))
        for name in table:
            try:
                changed = dataclasses.replace(config, **{name: CHANGED[name]})
            except ValueError:  # a value this run cannot take (path="statistics" of a flow)
                assert name in unused
                continue
            same = changed.resolved() == resolved
            assert same == (name in unused), (config.model, config.synthetic_source, name)


def test_every_constructor_argument_of_a_model_is_used_by_it_and_no_other():
    from madutils.loops.images import MODEL_CLASSES as IMAGE_MODEL_CLASSES

    for table, classes, base in (
        (USED_WHEN, MODEL_CLASSES, LoopConfig()),
        (IMAGE_USED_WHEN, IMAGE_MODEL_CLASSES, ImageLoopConfig(**IMAGE)),
    ):
        for model, model_class in classes.items():
            arguments = set(settings_for(model_class, base))
            for name, (other, models) in table.items():
                if other == "model" and name != "path":  # the batched loop itself reads path
                    assert (name in arguments) == (model in models), (model, name)


def test_unused_settings_change_no_result():
    """Past the normalisation (set back by hand), unused settings give the same values."""
    for model in MODELS:
        resolved = LoopConfig(model=model, **{**TINY, "generations": 3}).resolved()
        changed = dataclasses.replace(resolved)
        for name in unused_settings(resolved, USED_WHEN):
            if name != "path":  # the only path other models can take is the default
                object.__setattr__(changed, name, CHANGED[name])
        assert changed != resolved
        runs = [BatchedLoop(c, None) for c in (resolved, changed)]
        for generation in range(1, 4):
            first, second = (run.step(generation) for run in runs)
            assert first.keys() == second.keys()
            for key in first:
                torch.testing.assert_close(torch.tensor(first[key]), torch.tensor(second[key]))


# --------------------------------------------------------------- 5. wrong types name the field


def _wrong_values(annotation) -> list:
    """Values of a type ``annotation`` does not allow."""
    options = typing.get_args(annotation) or (annotation,)
    wrong = [object(), True] if bool not in options else [object()]
    wrong.append(3.5 if str in options else "3")
    return wrong


def _cases():
    for cls in (LoopConfig, ImageLoopConfig):
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            for value in _wrong_values(hints[field.name]):
                yield pytest.param(
                    cls, field.name, value, id=f"{cls.__name__}.{field.name}={value!r}"
                )


@pytest.mark.parametrize(("cls", "name", "value"), list(_cases()))
def test_every_field_given_a_wrong_type_raises_a_value_error_naming_it(cls, name, value):
    base = {} if cls is LoopConfig else IMAGE
    with pytest.raises(ValueError, match=rf"^{name}\b.* must be .*; got ") as error:
        cls(**{**base, name: value})
    assert repr(value) in str(error.value)


def test_the_two_type_errors_the_issue_names():
    with pytest.raises(
        ValueError, match=r"metrics must be a tuple of strings or None; got 'frechet'"
    ):
        LoopConfig(metrics="frechet")
    with pytest.raises(ValueError, match=r"ema_decay must be a number in \[0, 1\); got '0.5'"):
        ImageLoopConfig(ema_decay="0.5")
    assert LoopConfig(metrics=["frechet"]).metrics == ("frechet",)
    assert check_setting("metrics", ["frechet"]) == ("frechet",)
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        check_setting("seeds", "3")


# ------------------------------------------------------------------------- 6. notebook parameters


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"lams": [1.5]}, r"fresh_data.py, parameters: lams\[0\] must be in \(0, 1\].*setting lam"),
        ({"seeds": 0}, r"fresh_data.py, parameters: seeds must be a positive integer"),
        ({"memory_ks": [1, 0]}, r"memory_ks\[1\] must be a positive integer.*setting memory"),
        ({"pool_fractions": [0.5, 2.0]}, r"pool_fractions\[1\] must be in \(0, 1\]"),
        ({"device": "tpu"}, r"device must be one of"),
        ({"ddpm_n_inis": [0]}, r"ddpm_n_inis\[0\] must be a positive integer"),
    ],
)
def test_loop_parameters_are_checked_before_the_kernel_starts(monkeypatch, overrides, match):
    papermill = pytest.importorskip("papermill")
    from madutils.runner import run_notebook

    def never(*args, **kwargs):
        raise AssertionError("papermill was started")

    monkeypatch.setattr(papermill, "execute_notebook", never)
    with pytest.raises(ValueError, match=match):
        run_notebook("fresh_data", scale="ci", parameters=overrides, out="unused-out")


def test_every_notebook_parameter_maps_to_the_setting_it_holds():
    names = {
        "seeds": "seeds",
        "lams": "lam",
        "n_inis": "n_ini",
        "mixture_seeds": "seeds",
        "ddpm_lams": "lam",
        "memory_n_real": "n_real",
        "memory_ks": "memory",
        "memory_tail": None,
        "pool_sizes": "n_total",
        "ddpm_control_generations": "generations",
        "runs_dir": None,
        "output_dir": None,
        "ddpm": None,
    }
    assert {name: parameter_setting(name) for name in names} == names
    for notebook in ("effective_sample_size", "fresh_data", "fully_synthetic", "gaussian_theory"):
        path = find_notebook(notebook)
        defaults = notebook_parameters(path)
        check_loop_parameters(defaults, path.name)  # the defaults are valid settings
        for scale in ("ci", "cpu", "gpu"):
            resolve_parameters(path, scale)


def test_a_cli_value_that_is_not_yaml_names_the_parameter():
    with pytest.raises(ValueError, match=r"^parameter lams: '\[1.0,' is not valid YAML"):
        parse_cli_value("[1.0,", "lams")
    with pytest.raises(ValueError, match="is not valid YAML"):
        parse_cli_value("[1.0,")
    assert parse_cli_value("[1.0, 0.8]") == [1.0, 0.8] == yaml.safe_load("[1.0, 0.8]")
