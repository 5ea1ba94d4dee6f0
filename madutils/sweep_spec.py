"""Sweeps described in a YAML file: grids outside the book, run by ``madutils sweep SPEC.yaml``.

A sweep file names the model, the settings shared by every run, a grid of settings crossed
with each other and, optionally, cases (combinations that are not a grid, each crossed with the
grid); :func:`run_sweep_spec` runs it through :func:`madutils.analysis.sweep.run_sweep` and
writes the sweep's table. ``examples/sweep-fresh-data.yaml``::

    model: gaussian             # picks the settings: gaussian, mixture, flow (LoopConfig),
                                # ddpm, wgan, stylegan2 (ImageLoopConfig)
    base:                       # settings shared by every run (any field of the settings)
      family: fresh_data
      dim: 10
    grid:                       # settings crossed with each other: each a list of values
      lam: [1.0, 0.8]
    cases:                      # optional: combinations that are not a grid, each crossed
      - {n_real: 50, n_synthetic: 200}     # with the grid
      - {n_real: 100, n_synthetic: 100}
    out: runs/                  # the results store (default: runs/ of the working directory)
    table: sweep.csv            # optional; default: <out>/sweep-<the file's stem>.csv

Relative paths (``out``, ``table``) are relative to the working directory, as on the command
line. A setting may be given in ``base`` and in some cases (the case's value wins for its runs),
but not in ``base`` and in ``grid`` (the base's value would never be used) nor in ``grid`` and
in a case. The grid and the cases may vary the model among those of one settings class
(``model: [gaussian, mixture]``); the top-level ``model`` is then the runs' model wherever
they do not set it. ``base`` need not be a valid run on its own: a fresh-data base whose
``n_real`` and ``n_synthetic`` come from the cases is fine, as long as every run is valid.

:func:`load_sweep_spec` refuses a bad file before anything starts (nothing is created), with a
one-line ``ValueError`` naming the file and the key, setting or run: a missing or unreadable
file, invalid YAML (or a key given twice), a file that is not a mapping, an unknown top-level
key, an unknown model, a setting the model's settings do not have (the message lists the valid
ones), a value of the wrong type or out of range (naming the key: ``grid: lam[1]``), a grid
value that is not a list or an empty one, empty ``cases``, a setting in two places, and every
invalid run: each run's settings are built and resolved up front
(:meth:`~madutils.loops.config.LoopConfig.resolved`, which includes the memory check), so a bad
combination is refused naming its settings, as are two grid points that are one run (they
differ only in settings that run does not use).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["SPEC_KEYS", "SweepSpec", "load_sweep_spec", "run_sweep_spec"]

#: The top-level keys of a sweep file.
SPEC_KEYS = ("model", "base", "grid", "cases", "out", "table")
#: The results store when the file has no ``out``.
DEFAULT_OUT = "runs"


@dataclass(frozen=True)
class SweepSpec:
    """A sweep read from a YAML file by :func:`load_sweep_spec`, every run checked.

    Attributes
    ----------
    model : str
        The model (``gaussian``, ``mixture``, ``flow``, ``ddpm``, ``wgan``, ``stylegan2``).
    base : LoopConfig or ImageLoopConfig
        The settings shared by every run. When the file's ``base`` is not a valid run on its own
        (a fresh-data base whose sizes come from the cases), this is the first run's settings;
        every run sets every setting in which the two differ (:meth:`sweep_cases`).
    grid : dict
        Setting name to the list of values it takes, in the file's order (the first varies
        slowest).
    cases : list of dict or None
        The file's cases, as written; ``None`` without ``cases``.
    out : pathlib.Path
        The results store.
    table : pathlib.Path or None
        Where the sweep's table is written; ``None``: :attr:`table_path`'s default.
    source : pathlib.Path or None
        The file the sweep was read from (it names the default table).
    base_settings : dict
        The file's ``base``, as written.
    """

    model: str
    base: object
    grid: dict
    cases: list[dict] | None = None
    out: Path = Path(DEFAULT_OUT)
    table: Path | None = None
    source: Path | None = None
    base_settings: dict = dataclasses.field(default_factory=dict)

    @property
    def table_path(self) -> Path:
        """The table's file: ``table``, or ``<out>/sweep-<the file's stem>.csv``."""
        if self.table is not None:
            return Path(self.table)
        stem = self.source.stem if self.source is not None else "spec"
        return Path(self.out) / f"sweep-{stem}.csv"

    def sweep_cases(self) -> list[dict] | None:
        """The cases as :func:`~madutils.analysis.sweep.run_sweep` gets them.

        Every case names every setting any case names (a setting a case leaves out takes the
        file's ``base`` value, or the settings' default), so that
        ``dataclasses.replace(self.base, **case, **grid point)`` is exactly the run the file
        describes, whatever :attr:`base` holds.
        """
        if self.cases is None:
            return None
        names = list(dict.fromkeys(name for case in self.cases for name in case))
        shared = {
            **{
                f.name: f.default
                for f in dataclasses.fields(self.base)
                if f.default is not dataclasses.MISSING
            },
            **self.base_settings,
            "model": self.model,
        }
        return [{name: case.get(name, shared[name]) for name in names} for case in self.cases]

    def run_settings(self) -> list[dict]:
        """The settings of every run (a case's, then the grid point's), in the sweep's order."""
        from madutils.analysis.sweep import sweep_settings

        return sweep_settings(self.base, self.grid, self.sweep_cases())

    def configs(self) -> list:
        """Every run's settings, in the sweep's order (cases vary slowest, then the grid)."""
        return [dataclasses.replace(self.base, **settings) for settings in self.run_settings()]


def _kinds() -> dict[str, type]:
    """The settings dataclass of each model."""
    from madutils.loops.config import MODELS, LoopConfig
    from madutils.loops.image_config import IMAGE_MODELS, ImageLoopConfig

    return {**dict.fromkeys(MODELS, LoopConfig), **dict.fromkeys(IMAGE_MODELS, ImageLoopConfig)}


def _setting_check(cls):
    """The one-setting check of a settings dataclass (``check_setting`` of its module)."""
    from madutils.loops import config, image_config

    if cls is image_config.ImageLoopConfig:
        return image_config.check_setting
    return config.check_setting


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the safe loader's own error follows
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _describe(settings: dict) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in settings.items()) or "of the base"


def _type_name(value) -> str:
    return "nothing" if value is None else type(value).__name__


def _read(file: Path) -> dict:
    """The file's mapping; ``ValueError`` for a missing, unreadable or non-mapping file."""
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise ValueError(f"sweep file {file} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"sweep file {file} is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ValueError(f"sweep file {file} cannot be read: {reason}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"sweep file {file} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ValueError(
            f"sweep file {file} must be a mapping with the keys {', '.join(SPEC_KEYS)}; got {got}"
        )
    unknown = [key for key in data if key not in SPEC_KEYS]
    if unknown:
        raise ValueError(
            f"sweep file {file}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(SPEC_KEYS)}"
        )
    return data


def _path(file: Path, data: dict, key: str, default: str | None) -> Path | None:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"sweep file {file}: {key} must be a path; got {value!r}")
    return Path(value)


def _check_names(file: Path, where: str, names, cls, model: str) -> None:
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(
            f"sweep file {file}: {where}: unknown setting(s) {', '.join(map(repr, unknown))} "
            f"of model {model} ({cls.__name__}); valid: {', '.join(valid)}"
        )


def _check_value(file: Path, where: str, check, name: str, value):
    try:
        return check(name, value)
    except ValueError as error:
        raise ValueError(f"sweep file {file}: {where}: {error}") from None


def _mapping(file: Path, data: dict, key: str) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"sweep file {file}: {key} must be a mapping of settings (name: value); "
            f"got {_type_name(value)}"
        )
    return value


def _sections(file: Path, data: dict, model: str, cls) -> tuple[dict, dict, list | None]:
    """The file's base, grid and cases, each setting and value checked on its own."""
    check = _setting_check(cls)
    base = _mapping(file, data, "base")
    _check_names(file, "base", base, cls, model)
    if "model" in base:
        raise ValueError(
            f"sweep file {file}: base: model is the top-level key 'model'; remove it from base"
        )
    for name, value in base.items():
        _check_value(file, f"base: {name}", check, name, value)
    grid = _mapping(file, data, "grid")
    _check_names(file, "grid", grid, cls, model)
    for name, values in grid.items():
        if not isinstance(values, list):
            raise ValueError(
                f"sweep file {file}: grid: {name} must be a list of values to sweep over "
                f"(e.g. {name}: [{values!r}]); got {values!r}"
            )
        if not values:
            raise ValueError(
                f"sweep file {file}: grid: {name} is an empty list: give at least one value "
                "(a sweep over no values has no runs)"
            )
        for i, value in enumerate(values):
            _check_value(file, f"grid: {name}[{i}]", check, name, value)
    both = [name for name in grid if name in base]
    if both:
        raise ValueError(
            f"sweep file {file}: {', '.join(both)} given both in base and in grid (the base's "
            "value would never be used); give it in one of them"
        )
    cases = data.get("cases")
    if "cases" in data:
        if not isinstance(cases, list):
            raise ValueError(
                f"sweep file {file}: cases must be a list of mappings of settings; "
                f"got {_type_name(cases)}"
            )
        if not cases:
            raise ValueError(
                f"sweep file {file}: cases is an empty list: give at least one case, or "
                "remove the key for a plain grid"
            )
        for i, case in enumerate(cases):
            if not isinstance(case, dict):
                raise ValueError(
                    f"sweep file {file}: cases[{i}] must be a mapping of settings "
                    f"(name: value); got {case!r}"
                )
            _check_names(file, f"cases[{i}]", case, cls, model)
            for name, value in case.items():
                _check_value(file, f"cases[{i}]: {name}", check, name, value)
    return base, grid, cases


def _build(cls, model: str, settings: dict):
    """The run's settings (``settings`` may vary the model) and their resolved form."""
    config = cls(**{"model": model, **settings})
    return config, config.resolved()


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (see the module documentation for its keys).

    Parameters
    ----------
    path : str or pathlib.Path
        The YAML file, e.g. ``examples/sweep-fresh-data.yaml``.

    Returns
    -------
    SweepSpec
        Every run checked: its settings built and resolved (the memory check included).

    Raises
    ------
    ValueError
        One line naming the file and the key, setting or run, for every problem of the
        module documentation's list; nothing is created.
    """
    from madutils.analysis.sweep import sweep_settings
    from madutils.results import run_name

    file = Path(path)
    data = _read(file)
    kinds = _kinds()
    if "model" not in data:
        raise ValueError(
            f"sweep file {file}: missing key 'model' (one of {', '.join(kinds)}): it picks the "
            "settings of the runs"
        )
    model = data["model"]
    if model not in kinds:
        raise ValueError(
            f"sweep file {file}: model must be one of {', '.join(kinds)}; got {model!r}"
        )
    cls = kinds[model]
    out = _path(file, data, "out", DEFAULT_OUT)
    table = _path(file, data, "table", None)
    if out.exists() and not out.is_dir():
        raise ValueError(f"sweep file {file}: out {out} is a file; give a directory")
    if table is not None and table.is_dir():
        raise ValueError(f"sweep file {file}: table {table} is a directory; give a file name")
    base, grid, cases = _sections(file, data, model, cls)

    try:
        candidate = cls(model=model, **base)
    except ValueError:
        candidate = None  # not a run on its own: the runs say whether the file is bad
    try:
        runs = sweep_settings(cls(model=model) if candidate is None else candidate, grid, cases)
    except ValueError as error:
        raise ValueError(f"sweep file {file}: {error}") from None
    points = math.prod(len(values) for values in grid.values())
    configs, seen = [], {}
    for i, settings in enumerate(runs):
        try:
            config, resolved = _build(cls, model, {**base, **settings})
        except ValueError as error:
            message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            case = "" if cases is None else f" (cases[{i // points}])"
            run = f"the run {_describe(settings)}{case}" if settings else "base (the one run)"
            raise ValueError(f"sweep file {file}: {run} is not valid: {message}") from None
        name = run_name(resolved.to_dict())
        if name in seen:
            raise ValueError(
                f"sweep file {file}: the runs {_describe(seen[name])} and {_describe(settings)} "
                f"are one run ({name}): they differ only in settings that run does not use"
            )
        seen[name] = settings
        configs.append(config)
    return SweepSpec(
        model=model,
        base=configs[0] if candidate is None else candidate,
        grid=dict(grid),
        cases=None if cases is None else [dict(case) for case in cases],
        out=out,
        table=table,
        source=file,
        base_settings=dict(base),
    )


def run_sweep_spec(
    spec: SweepSpec,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    allow_code_change: bool = False,
    progress: bool = True,
):
    """Run a sweep file's sweep and write its table.

    Parameters
    ----------
    spec : SweepSpec
        From :func:`load_sweep_spec` (``dataclasses.replace(spec, out=...)`` redirects it).
    workers, scheduler, cluster : optional
        Where the runs execute, as for :func:`~madutils.analysis.sweep.run_sweep` (at most
        one; none: the environment variables of :mod:`madutils.engine`, else this process).
    allow_code_change : bool
        Continue stored runs computed by other code.
    progress : bool
        ``run_sweep``'s progress bar (and, on a cluster, its summary line).

    Returns
    -------
    Sweep
        ``sweep.table`` is also written, atomically, to :attr:`SweepSpec.table_path` (CSV).

    Raises
    ------
    SweepError
        On a cluster, when runs failed (every other run finished and is kept in the store;
        no table is written).
    """
    from madutils.analysis.sweep import run_sweep
    from madutils.files import atomic_write

    sweep = run_sweep(
        spec.base,
        spec.out,
        cases=spec.sweep_cases(),
        progress=progress,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
        allow_code_change=allow_code_change,
        **spec.grid,
    )
    atomic_write(spec.table_path, lambda tmp: sweep.table.to_csv(tmp, index=False))
    return sweep
