"""Deep-model recipes: every recipe validates, overrides merge key by key, typos are errors."""

import dataclasses
import re
from pathlib import Path

import pytest

from madutils.cli import main
from madutils.loops.config import LoopConfig
from madutils.loops.image_config import ImageLoopConfig
from madutils.recipes import (
    NOTEBOOK_KEYS,
    SCALES,
    available_recipes,
    config_class,
    load_recipe,
    merge_settings,
    recipe,
    valid_keys,
)
from madutils.runner import notebook_parameters, recipe_parameters, resolve_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
RECIPES = available_recipes()


def test_the_deep_models_have_recipes():
    assert set(RECIPES) >= {"ddpm", "wgan"}


@pytest.mark.parametrize("model", RECIPES)
@pytest.mark.parametrize("scale", SCALES)
def test_every_recipe_validates(model, scale):
    settings = load_recipe(model, scale)
    assert settings
    fields = {f.name for f in dataclasses.fields(config_class(model))}
    assert set(settings) <= fields - set(NOTEBOOK_KEYS)
    config = config_class(model)(**settings)
    assert config.model == model


def test_recipe_files_are_shipped_as_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"madutils\.recipes"\s*=\s*\[\s*"\*\.yaml"\s*\]', pyproject)


def test_valid_keys_are_the_config_fields_less_the_notebooks_own():
    image_fields = {f.name for f in dataclasses.fields(ImageLoopConfig)}
    assert set(valid_keys("ddpm")) == image_fields - {"family", "lam", "seed", "device"}
    loop_fields = {f.name for f in dataclasses.fields(LoopConfig)}
    assert set(valid_keys("flow")) == loop_fields - set(NOTEBOOK_KEYS)
    assert config_class("wgan") is ImageLoopConfig and config_class("flow") is LoopConfig
    with pytest.raises(ValueError, match="no configuration for model 'vae'"):
        config_class("vae")


def test_merge_changes_only_the_keys_given():
    base = load_recipe("ddpm", "cpu")
    merged = merge_settings(base, {"epochs": 5}, name="ddpm", valid=valid_keys("ddpm"))
    assert merged["epochs"] == 5 != base["epochs"]
    assert {k: v for k, v in merged.items() if k != "epochs"} == {
        k: v for k, v in base.items() if k != "epochs"
    }
    assert merged["image_size"] == 8  # not the 28x28 default of a shallow replacement


def test_merge_adds_a_valid_key_the_base_lacks_and_leaves_its_inputs_alone():
    base = load_recipe("ddpm", "ci")
    assert "lr" not in base
    overrides = {"lr": 0.01, "channels": [4, 8]}
    merged = merge_settings(base, overrides, name="ddpm", valid=valid_keys("ddpm"))
    assert merged["lr"] == 0.01 and merged["channels"] == [4, 8]
    merged["channels"].append(16)
    assert "lr" not in base and base["channels"] == [8, 16] and overrides["channels"] == [4, 8]


def test_merge_is_recursive_for_nested_dicts():
    base = {"a": 1, "inner": {"x": 1, "y": 2}}
    merged = merge_settings(base, {"inner": {"y": 3}}, name="settings")
    assert merged == {"a": 1, "inner": {"x": 1, "y": 3}}
    assert base == {"a": 1, "inner": {"x": 1, "y": 2}}
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) z in settings\['inner'\]; valid keys: x, y"
    ):
        merge_settings(base, {"inner": {"z": 3}}, name="settings")
    with pytest.raises(ValueError, match=r"settings\['inner'\] must be a dict; got 3"):
        merge_settings(base, {"inner": 3}, name="settings")


def test_a_misspelt_key_names_the_key_the_dict_and_the_valid_keys():
    base = load_recipe("ddpm", "cpu")
    message = (
        r"unknown key\(s\) epoch in ddpm; valid keys: batch_size, candidates, channels, .*epochs, "
    )
    with pytest.raises(ValueError, match=message):
        merge_settings(base, {"epoch": 5}, name="ddpm", valid=valid_keys("ddpm"))
    with pytest.raises(ValueError, match="unknown key.*epoch in ddpm; valid keys: .*epochs"):
        recipe("ddpm", "cpu", overrides={"epoch": 5})
    with pytest.raises(ValueError, match=r"unknown key\(s\) b in d; valid keys: a$"):
        merge_settings({"a": 1}, {"b": 2}, name="d")
    with pytest.raises(ValueError, match="ddpm must be a dict of settings; got 5"):
        merge_settings(base, 5, name="ddpm")


def test_recipe_merges_overrides_and_checks_the_result():
    settings = recipe("ddpm", "gpu", overrides={"epochs": 5})
    assert settings == {**load_recipe("ddpm", "gpu"), "epochs": 5}
    assert recipe("wgan", "cpu") == load_recipe("wgan", "cpu")
    with pytest.raises(ValueError, match="unknown key.*seed in ddpm"):
        recipe("ddpm", "cpu", overrides={"seed": 1})  # the notebook's own parameter
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        recipe("ddpm", "cpu", overrides={"epochs": "five"})
    with pytest.raises(ValueError, match="the wgan settings are for model 'ddpm'"):
        recipe("wgan", "cpu", overrides={"model": "ddpm"})
    with pytest.raises(ValueError, match="no recipe 'vae'; recipes: .*ddpm"):
        recipe("vae", "cpu")
    with pytest.raises(ValueError, match="scale must be one of 'ci', 'cpu', 'gpu'"):
        recipe("ddpm", "huge")


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    return folder


def test_a_typo_in_a_recipe_file_fails(tmp_path):
    good = "ci: {epochs: 1}\ncpu: {epochs: 2}\ngpu: {epochs: 3}\n"
    folder = _write(tmp_path / "recipes", "ddpm", good)
    assert load_recipe("ddpm", "cpu", directory=folder) == {"epochs": 2}
    _write(folder, "ddpm", good.replace("cpu: {epochs", "cpu: {epoch"))
    with pytest.raises(ValueError, match=r"ddpm.yaml, section cpu: unknown key\(s\) epoch in ddpm"):
        load_recipe("ddpm", "cpu", directory=folder)
    _write(folder, "ddpm", "ci: {}\ncpu: {}\n")
    with pytest.raises(ValueError, match="must have the sections ci, cpu, gpu; has"):
        load_recipe("ddpm", "ci", directory=folder)
    _write(folder, "ddpm", good.replace("cpu: {epochs: 2}", "cpu: {family: fresh_data}"))
    with pytest.raises(ValueError, match="section cpu: unknown key.*family in ddpm"):
        load_recipe("ddpm", "cpu", directory=folder)
    _write(folder, "ddpm", good.replace("gpu: {epochs: 3}", "gpu: {sampler: ancestral}"))
    with pytest.raises(ValueError, match="section gpu: sampler must be one of"):
        load_recipe("ddpm", "gpu", directory=folder)


def test_a_batched_model_recipe_takes_loop_config_fields(tmp_path):
    folder = _write(
        tmp_path / "recipes",
        "flow",
        "ci: {model: flow, data: rosenbrock, epochs: 2}\ncpu: {model: flow}\ngpu: {}\n",
    )
    assert recipe("flow", "ci", {"seeds": 3}, directory=folder)["epochs"] == 2
    with pytest.raises(ValueError, match="unknown key.*channels in flow; valid keys: .*epochs"):
        recipe("flow", "ci", {"channels": [8]}, directory=folder)


# --- the notebooks and the runner -------------------------------------------------------------


def _recipe_notebooks():
    return [p for p in NOTEBOOKS if recipe_parameters(notebook_parameters(p))]


def test_some_notebooks_read_recipes():
    assert {p.stem for p in _recipe_notebooks()} == {
        "fully_synthetic",
        "synthetic_augmentation",
        "stylegan2",
        "fresh_data",
        "mitigations",
    }


@pytest.mark.parametrize("notebook", _recipe_notebooks(), ids=lambda p: p.stem)
def test_a_notebook_holds_overrides_and_applies_its_recipes(notebook):
    defaults = notebook_parameters(notebook)
    assert defaults["scale"] == "cpu"
    source = notebook.read_text()
    for name in recipe_parameters(defaults):
        assert defaults[name] == {}, f"{name} holds overrides of its recipe, none by default"
        assert f'recipe("{name}", scale, overrides={name})' in source


@pytest.mark.parametrize("notebook", _recipe_notebooks(), ids=lambda p: p.stem)
@pytest.mark.parametrize("scale", SCALES)
def test_parameter_files_override_recipes_key_by_key(notebook, scale):
    values = resolve_parameters(notebook, scale, {})
    assert values["scale"] == scale
    for name in recipe_parameters(notebook_parameters(notebook)):
        overrides = values.get(name, {})
        settings = recipe(name, scale, overrides=overrides)
        assert settings == {**load_recipe(name, scale), **overrides}


def test_runner_merges_a_dict_override_into_the_parameter_file_and_the_recipe():
    notebook = ROOT / "notebooks" / "fresh_data.py"
    assert resolve_parameters(notebook, "gpu", {})["ddpm"] == {"generations": 15}
    values = resolve_parameters(notebook, "gpu", {"ddpm": {"epochs": 5}})
    assert values["ddpm"] == {"generations": 15, "epochs": 5}
    settings = recipe("ddpm", "gpu", overrides=values["ddpm"])
    assert settings == {**load_recipe("ddpm", "gpu"), "generations": 15, "epochs": 5}
    assert settings["image_size"] == 28


def test_runner_rejects_a_misspelt_key_and_a_bad_value_before_running():
    notebook = ROOT / "notebooks" / "fully_synthetic.py"
    with pytest.raises(
        ValueError, match=r"^parameters: unknown key\(s\) epoch in ddpm; valid keys"
    ):
        resolve_parameters(notebook, "cpu", {"ddpm": {"epoch": 5}})
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) latent in wgan; valid keys: .*latent_dim"
    ):
        resolve_parameters(notebook, "ci", {"wgan": {"latent": 5}})
    with pytest.raises(ValueError, match="fully_synthetic.py at scale ci, ddpm: epochs must be"):
        resolve_parameters(notebook, "ci", {"ddpm": {"epochs": 0}})
    with pytest.raises(ValueError, match="parameter ddpm must be of type dict"):
        resolve_parameters(notebook, "ci", {"ddpm": 5})
    with pytest.raises(ValueError, match=r"parameters: parameter\(s\) scale are set by the runner"):
        resolve_parameters(notebook, "ci", {"scale": "gpu"})


def test_cli_misspelt_key_is_a_one_line_error_with_exit_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "executed"
    argv = ["run", "fully_synthetic", "--scale", "ci", "--out", str(out), "-p", "ddpm"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, '{"epoch": 5}'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"madutils run: error: parameters: unknown key\(s\) epoch in ddpm; valid keys: .*epochs.*",
        last,
    )
    assert not out.exists()  # nothing ran
