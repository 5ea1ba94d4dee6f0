"""Deep-model recipes: the settings of each deep model at each scale, written once.

A recipe is ``madutils/recipes/<model>.yaml`` with one section per scale (``ci``, ``cpu``,
``gpu``, the scales of :mod:`madutils.runner`); each section maps settings of the model's loop
configuration to values. The image models (``ddpm``, ``wgan``, ``stylegan2``) take fields of
:class:`madutils.loops.image_config.ImageLoopConfig`; a recipe for a batched model (a name in
:data:`madutils.loops.config.MODELS`) would take fields of
:class:`madutils.loops.config.LoopConfig`.

One file per model, with the three scales in it, rather than one file per model and scale: the
point of the file is how the scales of one model differ, which reads best side by side, and a
change to a model's settings is one edit in one file. Each section is complete on its own
(nothing is inherited from another scale), because the scales also differ in what they leave at
the configuration's defaults (the ``ci`` DDPM does not set ``lr``, the ``cpu`` one does).

The fields every notebook sets itself (:data:`NOTEBOOK_KEYS`: the loop family, the sampling bias
swept by its ``*_lams`` parameter, and its ``seed`` and ``device`` parameters) may not appear in
a recipe nor in its overrides.

A notebook holds, in its ``parameters`` cell, ``scale = "cpu"`` (set by ``madutils run``) and
``ddpm = {}``: overrides of the scale's recipe, which it applies with
``recipe("ddpm", scale, overrides=ddpm)``. A notebook's parameter files and ``madutils run -p
ddpm '{"epochs": 5}'`` set overrides in the same way, merged key by key by
:func:`merge_settings`, so changing the epochs changes only the epochs.
"""

from __future__ import annotations

import copy
import dataclasses
from importlib import resources
from pathlib import Path

import yaml

__all__ = [
    "NOTEBOOK_KEYS",
    "SCALES",
    "available_recipes",
    "config_class",
    "load_recipe",
    "merge_settings",
    "recipe",
    "valid_keys",
    "validate_settings",
]

#: The scales of every recipe (and of every notebook's parameter files).
SCALES = ("ci", "cpu", "gpu")
#: Configuration fields the notebooks set themselves; not allowed in recipes or their overrides.
NOTEBOOK_KEYS = ("family", "lam", "seed", "device")


def _directory(directory: str | Path | None):
    return resources.files(__name__) if directory is None else Path(directory)


def available_recipes(directory: str | Path | None = None) -> list[str]:
    """The names of the recipes (the models that have one), sorted.

    Parameters
    ----------
    directory : str or Path, optional
        Where the recipe files are; default: this package.

    Returns
    -------
    list of str
        One name per ``<name>.yaml`` file.
    """
    folder = _directory(directory)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".yaml")
    )


def config_class(model: str) -> type:
    """The configuration class whose fields a recipe of ``model`` sets.

    Parameters
    ----------
    model : str
        An image model (:data:`madutils.loops.image_config.IMAGE_MODELS`) or a batched model
        (:data:`madutils.loops.config.MODELS`).

    Returns
    -------
    type
        :class:`~madutils.loops.image_config.ImageLoopConfig` or
        :class:`~madutils.loops.config.LoopConfig`.

    Raises
    ------
    ValueError
        If ``model`` is neither.
    """
    from madutils.loops.config import MODELS, LoopConfig
    from madutils.loops.image_config import IMAGE_MODELS, ImageLoopConfig

    if model in IMAGE_MODELS:
        return ImageLoopConfig
    if model in MODELS:
        return LoopConfig
    raise ValueError(
        f"no configuration for model {model!r}; models: "
        + ", ".join(repr(m) for m in (*IMAGE_MODELS, *MODELS))
    )


def valid_keys(model: str) -> tuple[str, ...]:
    """The settings a recipe of ``model`` and its overrides may hold, sorted.

    Parameters
    ----------
    model : str
        See :func:`config_class`.

    Returns
    -------
    tuple of str
        The fields of :func:`config_class` less :data:`NOTEBOOK_KEYS`.
    """
    fields = (f.name for f in dataclasses.fields(config_class(model)))
    return tuple(sorted(name for name in fields if name not in NOTEBOOK_KEYS))


def merge_settings(base: dict, overrides: dict | None, *, name: str, valid=None) -> dict:
    """``base`` with ``overrides`` merged in key by key (recursively for nested dicts).

    Parameters
    ----------
    base : dict
        The settings overridden; not modified.
    overrides : dict or None
        New values. A key whose value is a dict in ``base`` takes a dict, which is merged into
        it the same way; any other key replaces its value.
    name : str
        What ``base`` is, for the error messages (e.g. ``"ddpm"``).
    valid : iterable of str, optional
        The keys ``overrides`` may hold; default: the keys of ``base``. Keys of nested dicts
        must be keys of the nested dict in ``base``.

    Returns
    -------
    dict
        A new dict; ``base`` and ``overrides`` are not modified.

    Raises
    ------
    ValueError
        If ``overrides`` is not a dict, holds a key not in ``valid`` (the message names the
        key, ``name`` and the valid keys), or gives a non-dict to a nested dict.
    """
    out = copy.deepcopy(base)
    if overrides is None:
        return out
    if not isinstance(overrides, dict):
        raise ValueError(f"{name} must be a dict of settings; got {overrides!r}")
    valid = sorted(base if valid is None else valid)
    unknown = sorted(str(key) for key in overrides if key not in valid)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in {name}; valid keys: " + ", ".join(valid)
        )
    for key, value in overrides.items():
        if isinstance(out.get(key), dict):
            if not isinstance(value, dict):
                raise ValueError(f"{name}[{key!r}] must be a dict; got {value!r}")
            out[key] = merge_settings(out[key], value, name=f"{name}[{key!r}]")
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_settings(model: str, settings: dict) -> dict:
    """Check ``settings`` as keyword arguments of ``model``'s configuration.

    The configuration is built with its defaults for everything else (the notebooks' own
    fields, :data:`NOTEBOOK_KEYS`, included), so a wrong value fails here, before any run.

    Parameters
    ----------
    model : str
        See :func:`config_class`.
    settings : dict
        Fields of the configuration; none of :data:`NOTEBOOK_KEYS`.

    Returns
    -------
    dict
        ``settings``, unchanged.

    Raises
    ------
    ValueError
        If a key is not in :func:`valid_keys` (the message lists them), if the settings are
        of another model (``model`` set to something else than ``model``), or if the
        configuration rejects a value.
    """
    merge_settings({}, settings, name=model, valid=valid_keys(model))
    cls = config_class(model)
    config = cls(**settings)
    if getattr(config, "model", model) != model:
        raise ValueError(
            f"the {model} settings are for model {config.model!r}; set model: {model!r}"
        )
    return settings


def load_recipe(model: str, scale: str, *, directory: str | Path | None = None) -> dict:
    """The settings of ``model`` at ``scale``, from ``<directory>/<model>.yaml``.

    Parameters
    ----------
    model : str
        A name of :func:`available_recipes`.
    scale : {"ci", "cpu", "gpu"}
        The section of the recipe.
    directory : str or Path, optional
        Where the recipe files are; default: this package.

    Returns
    -------
    dict
        A new dict of configuration fields (see :func:`validate_settings`).

    Raises
    ------
    ValueError
        If there is no such recipe, the file does not have exactly the sections ``ci``,
        ``cpu`` and ``gpu``, or the section is not valid settings of ``model``.
    """
    from madutils._validation import check_choice

    check_choice(scale, "scale", SCALES)
    names = available_recipes(directory)
    if model not in names:
        raise ValueError(f"no recipe {model!r}; recipes: " + (", ".join(names) or "none"))
    file = _directory(directory) / f"{model}.yaml"
    sections = yaml.safe_load(file.read_text()) or {}
    if not isinstance(sections, dict) or sorted(sections) != sorted(SCALES):
        found = sorted(sections) if isinstance(sections, dict) else sections
        raise ValueError(f"recipe {model}.yaml must have the sections ci, cpu, gpu; has {found}")
    settings = sections[scale] or {}
    try:
        validate_settings(model, settings)
    except ValueError as error:
        raise ValueError(f"recipe {model}.yaml, section {scale}: {error}") from None
    return copy.deepcopy(settings)


def recipe(
    model: str, scale: str, overrides: dict | None = None, *, directory: str | Path | None = None
) -> dict:
    """The recipe of ``model`` at ``scale`` with ``overrides`` merged in key by key.

    This is what a notebook calls: ``recipe("ddpm", scale, overrides=ddpm)``.

    Parameters
    ----------
    model : str
        A name of :func:`available_recipes`.
    scale : {"ci", "cpu", "gpu"}
        The section of the recipe.
    overrides : dict, optional
        Settings replacing or adding to the recipe's; keys from :func:`valid_keys`.
    directory : str or Path, optional
        Where the recipe files are; default: this package.

    Returns
    -------
    dict
        Keyword arguments for :func:`config_class` (less :data:`NOTEBOOK_KEYS`).

    Raises
    ------
    ValueError
        If a key of ``overrides`` is not a valid key (the message lists the valid keys), or
        the merged settings are not valid (see :func:`validate_settings`).
    """
    base = load_recipe(model, scale, directory=directory)
    settings = merge_settings(base, overrides, name=model, valid=valid_keys(model))
    return validate_settings(model, settings)
