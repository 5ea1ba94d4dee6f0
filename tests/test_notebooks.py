"""Notebooks: parameter files match their notebooks, and every notebook runs at the ci scale."""

import json
from pathlib import Path

import nbformat
import pytest

from madutils.recipes import recipe
from madutils.runner import (
    RUNNER_SET,
    SCALES,
    _check_values,
    load_parameter_file,
    notebook_parameters,
    parameter_file,
    recipe_parameters,
    resolve_parameters,
    run_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
LOOP_CHAPTERS = {
    "gaussian_theory",
    "fully_synthetic",
    "synthetic_augmentation",
    "stylegan2",
    "fresh_data",
    "effective_sample_size",
}


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= LOOP_CHAPTERS | {
        "paper_vs_reproduction",
        "reproducibility",
    }


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("scale", SCALES)
def test_parameter_files_name_only_parameters(notebook, scale):
    defaults = notebook_parameters(notebook)
    assert "output_dir" in defaults
    values = load_parameter_file(notebook, scale)
    _check_values(values, defaults, str(parameter_file(notebook, scale)))  # raises if wrong
    assert not set(values) & set(RUNNER_SET)
    resolved = resolve_parameters(notebook, scale)  # also checks the dicts' keys and recipes
    for name in recipe_parameters(defaults):
        assert recipe(name, scale, overrides=resolved.get(name, defaults[name]))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_ci_scale(notebook, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    overrides = {}
    if "runs_dir" in notebook_parameters(notebook):
        overrides["runs_dir"] = str(tmp_path / "runs")
    out = tmp_path / "executed"
    if notebook.stem in ("paper_vs_reproduction", "reproducibility"):
        # these read what the loop chapters wrote; give them one chapter's output
        run_notebook(
            "gaussian_theory",
            scale="ci",
            out=out,
            progress=False,
            parameters={"runs_dir": str(tmp_path / "runs")},
        )
    result = run_notebook(notebook, scale="ci", out=out, parameters=overrides, progress=False)
    executed = nbformat.read(result.executed, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    timings = json.loads((out / "timings.json").read_text())
    assert timings[notebook.stem]["scale"] == "ci"
    if notebook.stem in LOOP_CHAPTERS:
        claims = json.loads((out / "claims" / f"{notebook.stem}.json").read_text())
        assert claims and all(c["verdict"] for c in claims)
        assert list((out / "figures").glob("*.png"))
        glued = [
            c
            for c in executed.cells
            for o in c.get("outputs", [])
            if "application/papermill.record/text/plain" in o.get("data", {})
            or o.get("metadata", {}).get("scrapbook")
        ]
        assert glued or "glue" not in notebook.read_text()


def test_runner_rejects_bad_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ValueError, match="unknown parameter.*bogus.*valid names: .*dim"):
        run_notebook("fresh_data", scale="ci", parameters={"bogus": 1}, out=tmp_path)
    with pytest.raises(ValueError, match="parameter lams must be of type list"):
        run_notebook("fresh_data", scale="ci", parameters={"lams": 0.5}, out=tmp_path)
    with pytest.raises(ValueError, match="parameter seeds must be of type int"):
        run_notebook("fresh_data", scale="ci", parameters={"seeds": "many"}, out=tmp_path)
    with pytest.raises(ValueError, match="set by the runner"):
        run_notebook("fresh_data", scale="ci", parameters={"output_dir": "x"}, out=tmp_path)
    with pytest.raises(ValueError, match="scale are set by the runner"):
        run_notebook("fresh_data", scale="ci", parameters={"scale": "gpu"}, out=tmp_path)
    with pytest.raises(ValueError, match="unknown key.*epoch in ddpm; valid keys: .*epochs"):
        run_notebook("fresh_data", scale="ci", parameters={"ddpm": {"epoch": 5}}, out=tmp_path)
    with pytest.raises(ValueError, match="scale must be one of 'ci', 'cpu', 'gpu'"):
        run_notebook("fresh_data", scale="huge", out=tmp_path)
    with pytest.raises(ValueError, match="notebook 'nope' not found; available in .*fresh_data"):
        run_notebook("nope", out=tmp_path)
