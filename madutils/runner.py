"""Execute a jupytext notebook with papermill at a named scale: ``madutils run``.

Notebooks live in ``notebooks/`` as jupytext ``py:percent`` files. Each has one cell tagged
``parameters`` holding plain literals, and three parameter files
``notebooks/params/<name>/{ci,cpu,gpu}.yaml``:

- ``ci``: seconds; what the tests run;
- ``cpu``: the book's default, sized to show the paper's result on a 2-core machine;
- ``gpu``: the paper's sizes.

:func:`run_notebook` reads the notebook, checks every parameter name and value type against the
``parameters`` cell (papermill itself only warns about unknown names), executes it with
papermill and writes the executed ``.ipynb`` to the output directory, together with a
``timings.json`` entry. Every notebook also receives ``output_dir``, where it writes its
figures and its claim summary (see :mod:`madutils.analysis.claims`). Loop results go to the
results store (the notebook's ``runs_dir``), so re-executing a notebook after a finished run does
not recompute the loops.

Parameters that hold loop settings are checked with the settings' own checks before anything
runs (:func:`check_loop_parameters`): ``seeds``, ``dim``, ``generations``, ... are the settings
of the same names, ``lams`` (a list) holds values of ``lam``, ``mixture_seeds`` (an experiment's
prefix) is ``seeds``, and :data:`PARAMETER_SETTINGS` names the others (``memory_ks``: values of
``memory``). A value a loop would refuse is refused here, naming the notebook and the
parameter, instead of inside the kernel.

The deep models' settings are recipes (:mod:`madutils.recipes`): a ``parameters`` cell holds
``scale = "cpu"``, which the runner sets to the scale it runs at, and a dict parameter named
after a recipe (``ddpm = {}``) holds overrides of that recipe at that scale. Dict parameters
are merged key by key: the notebook's default, then the parameter file's dict, then the
``parameters`` given here, so ``{"ddpm": {"epochs": 5}}`` changes only the epochs. A key that
is not a setting of the model, or a value the model's configuration rejects, is an error
before anything runs. A setting the package refuses only once the notebook runs (a run whose
memory estimate does not fit, a data folder that is missing) ends the run with that one
message as a ``ValueError`` (``madutils run``: exit status 2), not papermill's traceback,
which stays in the executed notebook.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from madutils._validation import allows_tuple, check_choice
from madutils.engine import engine_environment
from madutils.locks import file_lock
from madutils.recipes import SCALES, available_recipes, merge_settings, recipe, valid_keys
from madutils.results import atomic_write

__all__ = [
    "PARAMETER_SETTINGS",
    "SCALES",
    "check_loop_parameters",
    "find_notebook",
    "load_parameter_file",
    "notebook_parameters",
    "parameter_setting",
    "parse_cli_value",
    "resolve_parameters",
    "run_notebook",
]

#: Parameters every notebook has and the runner sets.
RESERVED = ("output_dir",)
#: Parameters the runner sets where a notebook has them: neither a parameter file nor an
#: override may set them.
RUNNER_SET = (*RESERVED, "scale")
#: Notebook parameters that hold values of a loop setting without being named after it (nor
#: after its plural, with or without an experiment's prefix: see :func:`parameter_setting`).
PARAMETER_SETTINGS = {
    "memory_ks": "memory",  # the numbers K of most recent models (not k, the neighbours)
    "pool_sizes": "n_total",
    "pool_fractions": "real_fraction",
    "lam_values": "lam",
    "ddpm_fresh": "n_real",  # fresh real images per generation, and as many synthetic
    "n_samples": "n_ini",  # gaussian_theory: both n_ini and n_synthetic
    "gaussian_n": "n_ini",
    "mixture_n": "n_ini",
    "flow_n": "n_ini",
}


def find_notebook(notebook: str | Path, notebooks_dir: str | Path = "notebooks") -> Path:
    """Resolve a notebook given as a path or as a bare name in ``notebooks_dir``."""
    candidates = [
        Path(notebook),
        Path(notebooks_dir) / notebook,
        Path(notebooks_dir) / f"{notebook}.py",
    ]
    for path in candidates:
        if path.is_file() and path.suffix == ".py":
            return path
    available = sorted(p.stem for p in Path(notebooks_dir).glob("*.py"))
    raise ValueError(
        f"notebook {str(notebook)!r} not found; available in {notebooks_dir}/: "
        + (", ".join(available) or "none")
    )


def _read(path: Path):
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def _parameters_cell(notebook, path: Path):
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path} must have exactly one cell tagged 'parameters'; has {len(cells)}")
    return cells[0]


def notebook_parameters(path: str | Path) -> dict:
    """The parameters of a notebook and their default values, from its ``parameters`` cell."""
    path = Path(path)
    cell = _parameters_cell(_read(path), path)
    out = {}
    for node in ast.parse(cell.source).body:
        if not (isinstance(node, ast.Assign | ast.AnnAssign)):
            raise ValueError(f"{path}: the parameters cell may only hold assignments of literals")
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not isinstance(target, ast.Name):
            raise ValueError(f"{path}: parameters must be plain names")
        out[target.id] = ast.literal_eval(node.value)
    return out


def parameter_file(path: str | Path, scale: str) -> Path:
    """``notebooks/params/<name>/<scale>.yaml`` for the notebook at ``path``."""
    check_choice(scale, "scale", SCALES)
    path = Path(path)
    return path.parent / "params" / path.stem / f"{scale}.yaml"


def load_parameter_file(path: str | Path, scale: str) -> dict:
    """The parameter values a scale sets for the notebook at ``path`` (may be empty)."""
    file = parameter_file(path, scale)
    if not file.exists():
        raise ValueError(f"no {scale!r} parameter file for {Path(path).name}: expected {file}")
    return yaml.safe_load(file.read_text()) or {}


def _check_values(values: dict, defaults: dict, source: str) -> dict:
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ValueError(
            f"{source}: unknown parameter(s) {', '.join(unknown)}; valid names: "
            + ", ".join(sorted(defaults))
        )
    for name, value in values.items():
        default = defaults[name]
        expected = type(default)
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if isinstance(value, bool) != isinstance(default, bool) or not ok:
            raise ValueError(
                f"{source}: parameter {name} must be of type {expected.__name__} "
                f"(default {default!r}); got {value!r}"
            )
    return values


def _setting_checks() -> list:
    """``(setting types, check_setting)`` of each settings class, batched loops first."""
    from madutils.loops import config, image_config

    return [(module.SETTING_TYPES, module.check_setting) for module in (config, image_config)]


def parameter_setting(name: str) -> str | None:
    """The loop setting a notebook parameter holds values of; ``None`` for any other.

    In this order: :data:`PARAMETER_SETTINGS`; a field of
    :class:`~madutils.loops.config.LoopConfig` or
    :class:`~madutils.loops.image_config.ImageLoopConfig` of the same name (``seeds``) or, with
    a trailing ``s``, a list of its values (``lams``, ``n_inis``); both again after dropping
    leading words that name an experiment (``mixture_seeds``, ``ddpm_lams``,
    ``memory_n_real``).

    Parameters
    ----------
    name : str
        A notebook parameter.

    Returns
    -------
    str or None
    """
    if name in PARAMETER_SETTINGS:
        return PARAMETER_SETTINGS[name]
    settings = set().union(*(names for names, _ in _setting_checks()))
    words = name.split("_")
    for start in range(len(words)):
        candidate = "_".join(words[start:])
        if candidate in settings:
            return candidate
        if candidate.endswith("s") and candidate[:-1] in settings:
            return candidate[:-1]
    return None


def check_loop_parameters(values: dict, source: str) -> None:
    """Check every parameter that holds a loop setting with that setting's own check.

    Each parameter of :func:`parameter_setting` is checked by the ``check_setting`` of every
    settings class that has the setting (:func:`madutils.loops.config.check_setting`,
    :func:`madutils.loops.image_config.check_setting`); a list parameter of a single-valued
    setting (``lams``), value by value.

    Parameters
    ----------
    values : dict
        Parameter names and values (dicts, the recipes' overrides, are checked by the recipes).
    source : str
        Where the values come from (the notebook and the parameter file, or the overrides).

    Raises
    ------
    ValueError
        Naming ``source``, the parameter and what the setting allows.
    """
    checks = _setting_checks()
    for name, value in values.items():
        setting = parameter_setting(name)
        if setting is None or isinstance(value, dict):
            continue
        for types, check_setting in checks:
            if setting not in types:
                continue
            single = isinstance(value, list) and not allows_tuple(types[setting])
            items = (
                [(f"{name}[{i}]", v) for i, v in enumerate(value)] if single else [(name, value)]
            )
            try:
                for label, item in items:
                    check_setting(setting, item, label=label)
            except ValueError as error:
                note = "" if name == setting else f" ({name} holds values of the setting {setting})"
                raise ValueError(f"{source}: {error}{note}") from None


def recipe_parameters(defaults: dict) -> list[str]:
    """The parameters that hold overrides of a recipe: dicts named after one, sorted.

    Parameters
    ----------
    defaults : dict
        A notebook's parameters and their defaults (:func:`notebook_parameters`).

    Returns
    -------
    list of str
    """
    recipes = set(available_recipes())
    return sorted(n for n, v in defaults.items() if n in recipes and isinstance(v, dict))


def _merge_dicts(values: dict, defaults: dict, merged: dict, source: str) -> dict:
    """``merged`` with the dict parameters of ``values`` merged in key by key."""
    out = dict(merged)
    recipes = set(recipe_parameters(defaults))
    for name, value in values.items():
        if not isinstance(defaults[name], dict):
            out[name] = value
            continue
        valid = valid_keys(name) if name in recipes else None
        base = out.get(name, defaults[name])
        try:
            out[name] = merge_settings(base, value, name=name, valid=valid)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
    return out


def resolve_parameters(path: str | Path, scale: str, parameters: dict | None = None) -> dict:
    """The values :func:`run_notebook` gives the notebook at ``path``, checked.

    The scale's parameter file is applied first, then ``parameters``; dict parameters are
    merged key by key into the notebook's default (see the module docstring). Nothing runs.

    Parameters
    ----------
    path : str or Path
        A jupytext notebook with a ``parameters`` cell.
    scale : {"ci", "cpu", "gpu"}
        Which parameter file to start from, and which section of the recipes.
    parameters : dict, optional
        Overrides; each name must be a parameter of the notebook and keep its type.

    Returns
    -------
    dict
        The values set (``scale`` included where the notebook has it; not ``output_dir``).

    Raises
    ------
    ValueError
        If a name or a type is wrong, a parameter the runner sets is given, a key of a dict
        parameter is not one of its valid keys (the message lists them), or a recipe's merged
        settings are invalid.
    """
    check_choice(scale, "scale", SCALES)
    path = Path(path)
    defaults = notebook_parameters(path)
    missing = [name for name in RESERVED if name not in defaults]
    if missing:
        raise ValueError(f"{path} lacks the parameter(s) {', '.join(missing)} every notebook has")
    recipes = recipe_parameters(defaults)
    if recipes and "scale" not in defaults:
        raise ValueError(
            f"{path}: parameter(s) {', '.join(recipes)} override recipes, so the notebook needs "
            "a parameter scale"
        )
    source = str(parameter_file(path, scale))
    file_values = _check_values(load_parameter_file(path, scale), defaults, source)
    overrides = _check_values(dict(parameters or {}), defaults, "parameters")
    for where, given in ((source, file_values), ("parameters", overrides)):
        runner_set = sorted(set(given) & set(RUNNER_SET))
        if runner_set:
            raise ValueError(
                f"{where}: parameter(s) {', '.join(runner_set)} are set by the runner "
                "(use out and scale)"
            )
    check_loop_parameters(file_values, f"{path.name}, {source}")
    check_loop_parameters(overrides, f"{path.name}, parameters")
    values = _merge_dicts(file_values, defaults, {}, source)
    values = _merge_dicts(overrides, defaults, values, "parameters")
    for name in recipes:
        try:
            recipe(name, scale, overrides=values.get(name, defaults[name]))
        except ValueError as error:
            raise ValueError(f"{path.name} at scale {scale}, {name}: {error}") from None
    if "scale" in defaults:
        values["scale"] = scale
    return values


def parse_cli_value(text: str, name: str | None = None):
    """A ``-p NAME VALUE`` value read as YAML (``3`` int, ``0.5`` float, ``[1, 2]`` list).

    Parameters
    ----------
    text : str
        The value as typed.
    name : str, optional
        The parameter's name, for the message.

    Raises
    ------
    ValueError
        When ``text`` is not valid YAML, naming the parameter (where given) and the problem.
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        what = f"parameter {name}" if name else "a -p value"
        raise ValueError(
            f"{what}: {text!r} is not valid YAML ({problem}); e.g. 3, 0.5, [1.0, 0.8] or "
            "'{epochs: 5}'"
        ) from None


@dataclass
class NotebookRun:
    """Where :func:`run_notebook` wrote its output and how long it took."""

    notebook: str
    scale: str
    executed: Path
    seconds: float
    parameters: dict


#: Exceptions that, raised inside a notebook, mean bad input (the package's convention): the
#: run ends with their message as a ``ValueError`` instead of papermill's traceback.
_INPUT_ERRORS = ("ValueError", "FileNotFoundError", "FileExistsError", "NotADirectoryError")


def run_notebook(
    notebook: str | Path,
    *,
    scale: str = "cpu",
    parameters: dict | None = None,
    out: str | Path = "executed",
    notebooks_dir: str | Path = "notebooks",
    progress: bool = True,
    engine=None,
) -> NotebookRun:
    """Execute a notebook with the parameters of ``scale`` plus ``parameters``.

    Parameters
    ----------
    notebook : str or Path
        Path of a jupytext ``.py`` notebook, or its name in ``notebooks_dir``.
    scale : {"ci", "cpu", "gpu"}
        Which parameter file to start from.
    parameters : dict, optional
        Overrides; each name must be a parameter of the notebook and keep its type. A dict
        is merged key by key into the parameter file's (``{"ddpm": {"epochs": 5}}`` changes
        only the epochs of the ``ddpm`` recipe); see :func:`resolve_parameters`.
    out : str or Path
        Directory for the executed notebook (``<name>.ipynb``), its figures and
        ``timings.json``.
    engine : madutils.engine.Engine, optional
        Where the notebook's sweeps run: it reaches every ``run_sweep`` of the notebook
        through the kernel's environment (:func:`madutils.engine.engine_environment`), so no
        chapter threads it by hand. ``None``: the environment as it is.

    Returns
    -------
    NotebookRun

    Raises
    ------
    ValueError
        A bad parameter, or bad input the notebook's code refused (``ValueError``,
        ``FileNotFoundError``, ... raised in a cell: :data:`_INPUT_ERRORS`), with its message.
    """
    import papermill

    path = find_notebook(notebook, notebooks_dir)
    values = resolve_parameters(path, scale, parameters)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    values = {**values, "output_dir": _display_path(out)}
    executed = out / f"{path.stem}.ipynb"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    start = time.perf_counter()
    with engine_environment(engine):
        try:
            papermill.execute_notebook(
                _read(path),
                str(executed),
                parameters=values,
                kernel_name="python3",
                language="python",
                progress_bar=progress,
                cwd=str(Path.cwd()),
            )
        except papermill.PapermillExecutionError as error:
            if error.ename not in _INPUT_ERRORS:
                raise
            # a setting the package refused inside the notebook (a run that cannot fit, a
            # missing data folder): one line naming it, the traceback stays in the notebook
            raise ValueError(
                f"{path.name} at scale {scale}: {error.evalue} (the executed notebook, with "
                f"the traceback: {_display_path(executed)})"
            ) from None
    seconds = time.perf_counter() - start
    _record_timing(out, path.stem, scale, seconds, values, started)
    return NotebookRun(path.stem, scale, executed, seconds, values)


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it (shown on the page)."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _record_timing(
    out: Path, name: str, scale: str, seconds: float, values: dict, started: str
) -> None:
    """Add the notebook's entry to ``<out>/timings.json`` (under a lock: chapters may finish
    at the same time, in threads or processes)."""
    import torch

    file = out / "timings.json"
    with file_lock(out / ".timings.lock"):
        timings = json.loads(file.read_text()) if file.exists() else {}
        timings[name] = _timing_entry(scale, seconds, values, started, torch.cuda.is_available())
        text = json.dumps(timings, indent=2, sort_keys=True) + "\n"
        atomic_write(file, lambda tmp: Path(tmp).write_text(text))


def _timing_entry(scale: str, seconds: float, values: dict, started: str, cuda: bool) -> dict:
    return {
        "scale": scale,
        "seconds": round(seconds, 1),
        "parameters": {k: v for k, v in values.items() if k not in RUNNER_SET},
        "device": "cuda" if cuda else "cpu",
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
