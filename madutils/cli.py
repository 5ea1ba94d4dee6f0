"""The ``madutils`` command line.

- ``madutils loop --model MODEL ...`` runs one loop configuration and prints the run directory;
- ``madutils run NOTEBOOK -p NAME VALUE --scale ci|cpu|gpu --out DIR`` executes a notebook;
- ``madutils book --scale cpu`` executes every notebook and builds the site;
- ``madutils sweep SPEC.yaml`` runs a sweep described in a YAML file (:mod:`madutils.sweep_spec`:
  the model, the settings shared by every run, a grid, cases, the results store and the table)
  and writes its table;
- ``madutils metrics`` lists the metric names of the results tables;
- ``madutils repair RUN_DIR`` verifies every stored generation of a run directory and removes
  the first damaged one and every later one (:func:`madutils.results.repair`), so that rerunning
  the run's command recomputes them.

``madutils loop`` is generated from the settings dataclasses
:class:`~madutils.loops.config.LoopConfig` and
:class:`~madutils.loops.image_config.ImageLoopConfig`: every field is one option (``n_ini`` is
``--n-ini``), its help sentence is the field's ``metadata["help"]``, its default is the field's
default, and its allowed values are the constants the config validates against
(:func:`_choices`). A field added to either dataclass is an option without touching this file.

Conversion of the values, from the field's annotation:

- ``int``, ``float``, ``str``: one value; a field with allowed values lists them in ``--help``;
- optional fields (``int | None`` ...): also accept ``none``, the field's "take the default"
  value (the same as leaving the option out);
- tuple fields (``metrics``, ``channels``): one comma-separated list, ``--channels 32,64,64``;
- ``bool`` fields: a flag pair, ``--name`` / ``--no-name``.

One command for both configs, not ``loop`` plus ``image-loop``: the model is the one choice a
user makes first, and the two configs share their loop settings (family, sizes, ``lam``,
synthetic source, seed, device), so ``madutils loop --model ddpm --family fresh_data ...``
reads like ``madutils loop --model gaussian --family fresh_data ...``. ``--model`` picks the
dataclass (gaussian, mixture, flow: ``LoopConfig``; ddpm, wgan, stylegan2:
``ImageLoopConfig``); an option of the other dataclass is a one-line error naming the option
and the model. Options that are left out are not set at all, so the dataclass's own default
applies (``--help`` shows both defaults where they differ, e.g. ``--n-ini``: 100 samples,
1000 images).

Besides the settings, ``madutils loop`` has options of the run itself (:data:`RUN_OPTIONS`):
``--out`` (the parent of the run directory), ``--quiet`` (no progress bar), ``--repair``
(verify the run directory before resuming: a damaged generation and every later one are removed
and recomputed, as ``madutils repair`` would) and ``--allow-code-change`` (continue a run
directory written by other code, another madutils version or source, torch or NumPy, instead
of refusing it; the run directory records the mix). ``--repair`` and ``--allow-code-change``
reach :func:`~madutils.loops.batched.run_loop` and
:func:`~madutils.loops.images.run_image_loop` as ``repair=True`` and
``allow_code_change=True``; left out, they are not passed at all.

``madutils sweep SPEC.yaml [--out DIR] [--quiet] [--allow-code-change]`` reads and checks the
sweep file (every run's settings are built and resolved before anything starts, see
:func:`madutils.sweep_spec.load_sweep_spec`), prints the engine (``engine: ...``), runs the sweep
through :func:`madutils.analysis.sweep.run_sweep` (its progress bar on stderr; ``--quiet``: none)
and prints the table's path (``table: ...``, written atomically) and a one-line summary (runs,
varied settings, rows, generations, metrics). ``--out DIR`` replaces the file's ``out`` (and so
the default table's folder); ``--allow-code-change`` continues stored runs written by other
code. Runs that fail are exit status 1 with one line on stderr, not a usage error: on a cluster
a :class:`madutils.errors.SweepError` (``madutils sweep: 1 of 4 run(s) failed (...); the other
runs finished and are kept``), one after another the first failing run's ``FileExistsError``
(a run directory holding other settings: ``madutils sweep: a run failed: ...``).

Where runs execute (:class:`madutils.engine.Engine`): ``madutils sweep``, ``madutils run`` and
``madutils book`` take at most one of ``--workers N`` (a local Dask cluster of ``N``
single-threaded worker processes; ``N`` a positive integer), ``--scheduler ADDR`` (an existing
Dask scheduler, ``tcp://host:8786``) and ``--cluster FILE`` (a job-queue cluster described by a
YAML file, :mod:`madutils.clusters`; the file is read and checked before anything runs). Given
two, argparse refuses them as not allowed together. ``madutils sweep`` passes the engine to
``run_sweep``; ``run`` and ``book`` pass ``engine=Engine(...)`` to
:func:`madutils.runner.run_notebook` and :func:`madutils.book.build_book`, which hand it to every
``run_sweep`` of the notebooks through the kernels' environment (:meth:`Engine.environment`).
Without an option, ``run`` and ``book`` pass ``engine=None`` (the kernels inherit the
environment as it is), and ``sweep`` takes the environment variables ``MADUTILS_CLUSTER``,
``MADUTILS_SCHEDULER``, ``MADUTILS_WORKERS`` (:meth:`Engine.from_settings`), else runs one run
after another here.

Bad input exits with status 2 and one line on stderr, ``madutils COMMAND: error: ...`` (no
usage block, no traceback), in every command:

- argparse rejects a value, or a config's validation raises ``ValueError``;
- ``--out`` (of ``loop``, ``run`` and ``sweep``, and a sweep file's ``out``) is empty, a file,
  or a directory that cannot be written (or created): refused before anything runs, naming
  ``--out`` (or the file's key) and the path;
- a sweep file that is missing, not valid YAML, not a mapping, has an unknown key, an unknown
  setting, an empty or non-list grid value, empty ``cases`` or an invalid run, naming the file
  and the key or the run; a bad engine option (``--workers 0``, two of them, a bad cluster file
  or a bad ``MADUTILS_*`` variable);
- a ``-p NAME VALUE`` of ``madutils run`` whose value is not valid YAML, naming the parameter;
- a :class:`madutils.errors.StoreError` (a damaged file, a run written by other code, a full
  disk: :class:`~madutils.errors.DiskFullError`), whose message is written for the user;
- an ``OSError`` of a full disk or an exceeded quota (``ENOSPC``, ``EDQUOT``) from anywhere
  else, naming the file and the free space left on its file system.

``madutils book`` keeps its own line for a failed build (``madutils book: book build failed:
...``, the offending lines quoted, exit status 1). Output piped into a command that stops
reading (``madutils metrics | head -1``) ends quietly with status 1, as the Python
documentation recommends ("Note on SIGPIPE"). Abbreviated option names are refused, so that a
new field can never change what an abbreviation means.

The settings dataclasses (and torch) are imported only by the ``loop`` command, so
``madutils --help`` stays fast; the image loop (:mod:`madutils.loops.images`, diffusers) is
imported only when an image loop runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import sys
import types
import typing
from pathlib import Path

__all__ = ["LoopOption", "config_from_args", "loop_options", "main"]

LOOP_PROG = "madutils loop"
#: Options of ``madutils loop`` that are not settings of the run.
RUN_OPTIONS = ("out", "quiet", "repair", "allow_code_change")
#: Run options passed to the loop functions as keyword arguments, and only when given.
LOOP_KEYWORDS = ("repair", "allow_code_change")
#: ``errno`` values of a write that failed for want of space.
DISK_FULL = tuple(
    code for code in (getattr(errno, "ENOSPC", None), getattr(errno, "EDQUOT", None)) if code
)
#: Values of ``ImageLoopConfig.mixed_precision`` (validated there; a test keeps the two equal).
MIXED_PRECISION = ("auto", "bf16", "no")
#: The environment variables that choose an engine when no engine option is given
#: (:mod:`madutils.engine`; a test keeps them equal).
_ENV = ("MADUTILS_CLUSTER", "MADUTILS_SCHEDULER", "MADUTILS_WORKERS")
ENGINE_VARIABLES = ", ".join(_ENV)


def _one_line(message: str) -> str:
    """``message`` on one line: its non-blank lines joined by ``"; "``."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _refuse(prog: str, message: str) -> typing.NoReturn:
    """Print ``PROG: error: MESSAGE`` (one line) on stderr and exit with status 2."""
    sys.stderr.write(f"{prog}: error: {_one_line(message)}\n")
    raise SystemExit(2)


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``PROG: error: MESSAGE``, exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        _refuse(self.prog, message)


def _disk_full_message(error: OSError) -> str:
    """One line for a write that failed because the disk (or the quota) is full."""
    from madutils.files import free_space

    name = os.fsdecode(error.filename) if error.filename else "a file"
    return (
        f"cannot write {name}: {os.strerror(error.errno)} ({free_space(error.filename)} free "
        "there); free some space and rerun the same command"
    )


@contextlib.contextmanager
def _command_errors(prog: str, usage: tuple[type[BaseException], ...] = ()):
    """Turn the errors a user can act on into one line ``PROG: error: ...`` and exit status 2.

    Parameters
    ----------
    prog : str
        The command, ``madutils loop``.
    usage : tuple of exception types
        The exceptions that mean bad input to this command (``ValueError``); their message is
        the line.

    Notes
    -----
    Every command also refuses :class:`madutils.errors.StoreError` (damaged files, runs
    written by other code, :class:`~madutils.errors.DiskFullError`) with its message, and any
    ``OSError`` of a full disk or an exceeded quota with the file and the free space.
    """
    from madutils.errors import StoreError

    try:
        yield
    except StoreError as error:
        _refuse(prog, str(error))
    except usage as error:
        _refuse(prog, str(error))
    except OSError as error:
        if error.errno in DISK_FULL:
            _refuse(prog, _disk_full_message(error))
        raise


def _check_out(prog: str, out: str, flag: str = "--out") -> None:
    """Refuse (exit status 2) an output directory that is empty, a file, or not writable.

    ``out`` need not exist: then its nearest existing parent must be a directory that can be
    written, so that it can be created. Nothing is created here.
    """
    if not out.strip():
        _refuse(prog, f"{flag} must name a directory (it is created when missing); got {out!r}")
    path = Path(out)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    where = f"{flag} {out}" if existing == path else f"{flag} {out}: {existing}"
    if not existing.is_dir():
        _refuse(prog, f"{where} is not a directory; give a directory to write into")
    if not os.access(existing, os.W_OK | os.X_OK):
        _refuse(prog, f"{where} is a directory that cannot be written; give a writable one")


def _positive_int(text: str) -> int:
    """An ``argparse`` type: a positive integer (``--workers 2``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _add_engine_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--workers N | --scheduler ADDR | --cluster FILE`` (at most one): where runs execute."""
    group = parser.add_argument_group(
        f"where {what} execute (at most one)",
        f"Without one, the environment variables {ENGINE_VARIABLES} decide, and without those "
        "the runs execute one after another in this process.",
    ).add_mutually_exclusive_group()
    group.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="a local Dask cluster of N single-threaded worker processes",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="the existing Dask cluster of this scheduler (tcp://host:8786)",
    )
    group.add_argument(
        "--cluster",
        metavar="FILE",
        help="a job-queue cluster (SLURM, PBS, LSF, SGE, HTCondor) described by this YAML file "
        "(examples/cluster-slurm.yaml)",
    )


def _engine(args: argparse.Namespace, *, environment: bool = False):
    """The :class:`~madutils.engine.Engine` of the engine options, checked up front.

    ``None`` when no option is given (and ``environment`` is false); with ``environment``, the
    environment variables decide then (:meth:`Engine.from_settings`). A cluster file is read
    here, so that a bad one is refused before anything runs. ``ValueError`` names the option
    (or the variable) and the value.
    """
    from madutils.engine import Engine

    given = {name: getattr(args, name) for name in ("workers", "scheduler", "cluster")}
    if all(value is None for value in given.values()) and not environment:
        return None
    try:
        engine = Engine.from_settings(**given)
    except ValueError as error:
        named = [f"--{name} {value!r}" for name, value in given.items() if value is not None]
        if not named:  # the environment's engine
            named = [f"{name}={os.environ[name]!r}" for name in _ENV if os.environ.get(name)]
        raise ValueError(f"{', '.join(named)}: {error}") from None
    if engine.cluster is not None:
        from madutils.clusters import load_cluster_spec

        load_cluster_spec(engine.cluster)
    return engine


def _kinds() -> tuple[tuple[type, tuple[str, ...]], ...]:
    """The settings dataclasses of ``madutils loop``, each with the models it runs."""
    from madutils.loops.config import MODELS, LoopConfig
    from madutils.loops.image_config import IMAGE_MODELS, ImageLoopConfig

    return ((LoopConfig, MODELS), (ImageLoopConfig, IMAGE_MODELS))


def _choices() -> dict[str, tuple[str, ...]]:
    """Allowed values of the fields that have them, by field name (for either dataclass)."""
    from madutils.curation import BEST_OF_RULES, REWARDS
    from madutils.data.images import DATASETS
    from madutils.loops.config import (
        CURATIONS,
        DATA_CHOICES,
        DEVICES,
        FAMILIES,
        MODELS,
        PATHS,
        SYNTHETIC_SOURCES,
    )
    from madutils.loops.image_config import IMAGE_MODELS, SAMPLERS
    from madutils.metrics import METRICS

    return {
        "family": FAMILIES,
        "model": MODELS + IMAGE_MODELS,
        "data": DATA_CHOICES,
        "dataset": DATASETS,
        "synthetic_source": SYNTHETIC_SOURCES,
        "path": PATHS,
        "metrics": tuple(sorted(METRICS)),
        "sampler": SAMPLERS,
        "device": DEVICES,
        "mixed_precision": MIXED_PRECISION,
        "curation": CURATIONS,  # the image loops take 'none' and 'verify' (their config says so)
        "preference": BEST_OF_RULES,
        "reward": REWARDS,
    }


@dataclasses.dataclass
class LoopOption:
    """One option of ``madutils loop``: a field name shared by one or both settings dataclasses.

    Attributes
    ----------
    name : str
        The field name (``n_ini``); the option is ``--n-ini``.
    kind : str
        ``"single"``, ``"list"`` (a tuple field, comma-separated) or ``"flag"`` (a bool field).
    element : type
        The type of one value: ``int``, ``float``, ``str`` or ``bool``.
    optional : bool
        Whether the annotation allows ``None`` (then ``none`` is accepted).
    choices : tuple of str or None
        The allowed values of one element, or ``None`` for any value of ``element``.
    fields : dict
        ``{dataclass: dataclasses.Field}`` for every dataclass that has this field.
    """

    name: str
    kind: str
    element: type
    optional: bool
    choices: tuple[str, ...] | None
    fields: dict = dataclasses.field(default_factory=dict)

    @property
    def flag(self) -> str:
        """The option string, ``--`` and the field name with ``-`` for ``_``."""
        return "--" + self.name.replace("_", "-")

    def convert(self, text: str):
        """The field value of the command-line string ``text``.

        Raises
        ------
        argparse.ArgumentTypeError
            When ``text`` is no value of the field; the message says what is allowed.
        """
        if self.optional and text.strip().lower() == "none":
            return None
        if self.kind == "list":
            items = [item.strip() for item in text.split(",")]
            if not all(items):
                raise argparse.ArgumentTypeError(
                    f"expected a comma-separated list of {self._describe()}; got {text!r}"
                )
            return tuple(self._convert_one(item) for item in items)
        return self._convert_one(text)

    def _convert_one(self, text: str):
        if self.choices is not None:
            if text not in self.choices:
                raise argparse.ArgumentTypeError(
                    f"invalid choice: {text!r} (choose from {', '.join(self.choices)}"
                    + (", none)" if self.optional else ")")
                )
            return text
        try:
            return self.element(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self._describe()}; got {text!r}") from None

    def _describe(self) -> str:
        plural = "s" if self.kind == "list" else ""
        names = {int: f"integer{plural}", float: f"number{plural}", str: f"string{plural}"}
        text = names.get(self.element, self.element.__name__)
        if self.kind == "single" and self.element in (int, float):
            text = f"an {text}" if self.element is int else f"a {text}"
        return text + (" or none" if self.optional else "")

    @property
    def metavar(self) -> str | None:
        """How the value is written in ``--help``."""
        if self.kind == "flag":
            return None
        if self.choices is not None and self.kind == "single":
            values = (*self.choices, "none") if self.optional else self.choices
            return "{" + ",".join(values) + "}"
        one = {int: "INT", float: "FLOAT", str: "STR"}[self.element]
        if self.choices is not None:
            one = self.name.rstrip("s").upper()
        text = f"{one}[,{one}...]" if self.kind == "list" else one
        return f"{text}|none" if self.optional else text

    def help(self, kinds) -> str:
        """The help sentence: the field's help, its default(s), and the allowed list values."""
        parts = []
        for cls, models in kinds:
            if cls in self.fields:
                field = self.fields[cls]
                parts.append((", ".join(models), field.metadata["help"], _show(field.default)))
        if self.name == "model":  # left out, --model takes the first dataclass's default
            text = " | ".join(f"{models}: {text}" for models, text, _ in parts)
            text += f" (default: {parts[0][2]})"
        elif len(parts) == 1 or len({(text, default) for _, text, default in parts}) == 1:
            text = f"{parts[0][1]} (default: {parts[0][2]})"
        elif len({text for _, text, _ in parts}) == 1:
            defaults = "; ".join(f"{default} for {models}" for models, _, default in parts)
            text = f"{parts[0][1]} (default: {defaults})"
        else:
            text = " | ".join(
                f"{models}: {text} (default: {default})" for models, text, default in parts
            )
        if self.kind == "list" and self.choices is not None:
            text += f"; comma-separated, each one of {', '.join(self.choices)}"
        elif self.kind == "list":
            text += "; comma-separated"
        return text.replace("%", "%%")


def _show(value) -> str:
    """A default value as it is written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _option_shape(cls, name: str, hint) -> tuple[str, type, bool]:
    """``(kind, element type, optional)`` of a field's type annotation."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"{cls.__name__}.{name}: cannot make an option of {hint!r}")
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis or args[0] not in (int, float, str):
            raise TypeError(f"{cls.__name__}.{name}: cannot make an option of {hint!r}")
        return "list", args[0], optional
    if hint is bool:
        return "flag", bool, optional
    if hint not in (int, float, str):
        raise TypeError(f"{cls.__name__}.{name}: cannot make an option of {hint!r}")
    return "single", hint, optional


def loop_options() -> dict[str, LoopOption]:
    """The options of ``madutils loop``, one per field of the settings dataclasses.

    Returns
    -------
    dict
        ``{field name: LoopOption}`` in field order (``LoopConfig``'s, then the fields only
        ``ImageLoopConfig`` has). A field of both dataclasses is one option.

    Raises
    ------
    TypeError
        When two dataclasses give one field name different types, or a type has no option.
    """
    choices = _choices()
    options: dict[str, LoopOption] = {}
    for cls, _ in _kinds():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in RUN_OPTIONS:
                raise TypeError(f"{cls.__name__}.{field.name} clashes with --{field.name}")
            kind, element, optional = _option_shape(cls, field.name, hints[field.name])
            option = options.get(field.name)
            if option is None:
                option = options[field.name] = LoopOption(
                    field.name, kind, element, optional, choices.get(field.name)
                )
            elif (option.kind, option.element, option.optional) != (kind, element, optional):
                raise TypeError(f"{field.name} has different types in the settings dataclasses")
            option.fields[cls] = field
    return options


def _loop_parser(prog: str = LOOP_PROG) -> argparse.ArgumentParser:
    """The parser of ``madutils loop``, generated from :func:`loop_options`."""
    kinds = _kinds()
    parser = _OneLineParser(
        prog=prog,
        usage=f"{prog} [--model MODEL] [OPTION ...]",
        description="Run (or resume) one self-consuming loop and write its run directory. "
        "--model picks the settings: gaussian, mixture and flow run the seed-batched loop "
        "(LoopConfig), ddpm, wgan and stylegan2 an image loop (ImageLoopConfig). An option left "
        "out takes the default of the model's settings; 'none' sets an optional value to its "
        "default.",
        allow_abbrev=False,
    )
    groups = {
        len(kinds): parser.add_argument_group("settings of every model"),
        **{
            i: parser.add_argument_group(f"settings of --model {', '.join(models)} only")
            for i, (_, models) in enumerate(kinds)
        },
    }
    for option in loop_options().values():
        owners = [i for i, (cls, _) in enumerate(kinds) if cls in option.fields]
        group = groups[len(kinds) if len(owners) == len(kinds) else owners[0]]
        kwargs = dict(dest=option.name, default=argparse.SUPPRESS, help=option.help(kinds))
        if option.kind == "flag":
            group.add_argument(option.flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            group.add_argument(option.flag, type=option.convert, metavar=option.metavar, **kwargs)
    run = parser.add_argument_group("the run (not settings)")
    run.add_argument(
        "--out",
        default="runs",
        help="parent directory of the run directory; created when missing (default: runs)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--repair",
        action="store_true",
        help="before resuming, verify every stored generation of the run directory and remove "
        "the first damaged one and every later one, so that they are recomputed (what "
        "'madutils repair RUN_DIR' does)",
    )
    run.add_argument(
        "--allow-code-change",
        action="store_true",
        help="continue a run directory written by other code (another madutils version or "
        "source, torch or NumPy) instead of refusing it; the run directory records the mix",
    )
    return parser


def _config_from_namespace(args: argparse.Namespace):
    """The settings of the parsed options; ``ValueError`` names a bad option or setting."""
    values = {k: v for k, v in vars(args).items() if k not in RUN_OPTIONS}
    kinds = _kinds()
    model = values.get("model", _default_model(kinds))
    cls = next(cls for cls, models in kinds if model in models)
    names = {field.name for field in dataclasses.fields(cls)}
    foreign = [name for name in values if name not in names]
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        owners = ", ".join(m for c, ms in kinds if c is not cls for m in ms)
        verb = "is not an option" if len(foreign) == 1 else "are not options"
        raise ValueError(f"{flags} {verb} of --model {model} (only of --model {owners})")
    return cls(**values)


def _default_model(kinds) -> str:
    """The model when ``--model`` is left out: the first dataclass's default."""
    cls = kinds[0][0]
    return next(f.default for f in dataclasses.fields(cls) if f.name == "model")


def _parse_loop(argv: list[str]):
    parser = _loop_parser()
    args = parser.parse_args(argv)
    try:
        config = _config_from_namespace(args)
    except ValueError as error:
        parser.error(str(error))
    return config, args, parser


def config_from_args(argv: list[str]):
    """The settings that ``madutils loop ARGV`` would run, without running anything.

    Parameters
    ----------
    argv : list of str
        The arguments after ``loop``, e.g. ``["--model", "flow", "--n-layers", "4"]``
        (the run options, :data:`RUN_OPTIONS`, are accepted and ignored).

    Returns
    -------
    LoopConfig or ImageLoopConfig
        ``LoopConfig`` for ``--model`` gaussian, mixture or flow (the default, gaussian),
        ``ImageLoopConfig`` for ddpm, wgan or stylegan2.

    Raises
    ------
    SystemExit
        With status 2 after one line ``madutils loop: error: ...`` on stderr, for a bad value,
        an option of the other model's settings, or settings the dataclass rejects.
    """
    return _parse_loop(argv)[0]


def _loop_command(argv: list[str]) -> int:
    config, args, parser = _parse_loop(argv)
    _check_out(parser.prog, args.out)
    from madutils.loops.config import LoopConfig

    # given only when set, so that the loop functions' own defaults apply otherwise
    keywords = {name: True for name in LOOP_KEYWORDS if getattr(args, name)}
    with _command_errors(parser.prog, (ValueError, FileExistsError)):
        if isinstance(config, LoopConfig):
            from madutils.loops.batched import run_loop

            result = run_loop(config, args.out, progress=not args.quiet, **keywords)
            replicates = f"mean over {config.seeds} seed(s)"
        else:
            from madutils.loops.images import run_image_loop

            result = run_image_loop(config, args.out, progress=not args.quiet, **keywords)
            replicates = f"seed {config.seed}, feature accuracy {result.feature_accuracy:.4f}"
    last = result.table[result.table.generation == result.table.generation.max()]
    summary = last.groupby("metric", sort=False)["value"].mean()
    print(f"generation {int(last.generation.max())}, {replicates}:")
    for name, value in summary.items():
        print(f"  {name:>15s}  {value:.6g}")
    print(f"run directory: {result.run_dir}")
    return 0


def _run_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="execute a notebook with papermill at a scale, with parameter overrides",
        description="Execute notebooks/NOTEBOOK.py with the parameters of --scale, overridden by "
        "-p NAME VALUE (VALUE read as YAML: 3, 0.5, '[1.0, 0.8]'). Unknown names are errors.",
    )
    p.add_argument("notebook", help="a notebook name in notebooks/ (e.g. fresh_data) or a path")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override one parameter (repeatable)",
    )
    p.add_argument(
        "--scale",
        choices=("ci", "cpu", "gpu"),
        default="cpu",
        help="parameter file to start from (default: cpu)",
    )
    p.add_argument(
        "--out",
        default="executed",
        help="directory for the executed notebook, its figures and timings (default: executed)",
    )
    p.add_argument("--notebooks-dir", default="notebooks", help="where the notebook sources are")
    _add_engine_options(p, "the notebook's sweeps")
    return p


def _parameter_value(name: str, text: str):
    """The value of ``-p NAME TEXT`` (YAML); ``ValueError`` names the parameter."""
    from madutils.runner import parse_cli_value

    try:
        return parse_cli_value(text, f"-p {name}")
    except ValueError as error:
        message = str(error)
        raise ValueError(message if name in message else f"-p {name}: {message}") from None


def _run_notebook_command(args, parser) -> int:
    from madutils.runner import run_notebook

    with _command_errors(parser.prog, (ValueError,)):
        overrides = {name: _parameter_value(name, value) for name, value in args.parameter}
        _check_out(parser.prog, args.out)
        result = run_notebook(
            args.notebook,
            scale=args.scale,
            parameters=overrides,
            out=args.out,
            notebooks_dir=args.notebooks_dir,
            engine=_engine(args),
        )
    print(f"{result.notebook} ({result.scale}) took {result.seconds:.1f} s: {result.executed}")
    return 0


def _book_command(args, parser) -> int:
    from madutils.book import build_book
    from madutils.errors import StoreError

    with _command_errors(parser.prog, (ValueError,)):
        engine = _engine(args)
        try:
            index = build_book(args.scale, engine=engine, chapters_at_once=args.chapters_at_once)
        except RuntimeError as error:
            if isinstance(error, StoreError):
                raise
            print(f"{parser.prog}: {error}", file=sys.stderr)  # a failed build, quoted
            return 1
    print(f"the book is built: open {index}")
    return 0


SWEEP_DESCRIPTION = (
    "Run every run of the sweep file SPEC (YAML) and write the sweep's table. Its keys: model "
    "(gaussian, mixture, flow, ddpm, wgan, stylegan2: picks the settings), base (settings shared "
    "by every run: any setting of 'madutils loop --model MODEL --help'), grid (settings crossed "
    "with each other, each a list of values), cases (optional: a list of combinations that are "
    "not a grid, each crossed with the grid), out (the results store; default: runs) and table "
    "(optional; default: OUT/sweep-<SPEC's stem>.csv). Every run is checked before anything "
    "starts; finished runs are read back from the store, unfinished ones resumed. Example: "
    "examples/sweep-fresh-data.yaml. Exit status 0 when every run finished, 1 when runs failed "
    "(on a cluster every other run finishes and is kept; one after another, the first failure "
    "stops the sweep), 2 for bad input."
)


def _sweep_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sweep",
        help="run a sweep described in a YAML file (a grid of settings, and cases)",
        description=SWEEP_DESCRIPTION,
    )
    p.add_argument("spec", metavar="SPEC", help="the sweep file (YAML)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="the results store, instead of the file's out (created when missing); the "
        "default table follows it",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--allow-code-change",
        action="store_true",
        help="continue stored runs written by other code (another madutils version or source, "
        "torch or NumPy) instead of refusing them; each run directory records the mix",
    )
    _add_engine_options(p, "the runs")
    return p


def _sweep_summary(spec, sweep) -> str:
    """One line about a finished sweep: its runs, what they vary, its rows."""
    runs = len(sweep.results)
    varied = ", ".join(sweep.varied) or "nothing (one run)"
    generations = int(sweep.table.generation.max()) if len(sweep.table) else 0
    metrics = ", ".join(dict.fromkeys(sweep.table.metric)) if len(sweep.table) else "none"
    return (
        f"{runs} run(s) of model {spec.model} varying {varied}: {len(sweep.table)} rows, "
        f"generations 1-{generations}, metrics {metrics}"
    )


def _sweep_command(args, parser) -> int:
    from madutils.errors import SweepError
    from madutils.sweep_spec import load_sweep_spec, run_sweep_spec

    prog = parser.prog
    with _command_errors(prog, (ValueError,)):
        spec = load_sweep_spec(args.spec)
        if args.out is not None:
            _check_out(prog, args.out)
            spec = dataclasses.replace(spec, out=Path(args.out))
        else:
            _check_out(prog, str(spec.out), flag=f"out of {args.spec}:")
        if spec.table is not None:
            _check_out(prog, str(spec.table_path.parent), flag=f"table of {args.spec}: folder")
        engine = _engine(args, environment=True)
    print(f"engine: {engine.describe()}", flush=True)
    with _command_errors(prog, (ValueError,)):
        try:
            sweep = run_sweep_spec(
                spec,
                workers=engine.workers,
                scheduler=engine.scheduler,
                cluster=engine.cluster,
                allow_code_change=args.allow_code_change,
                progress=not args.quiet,
            )
        except SweepError as error:  # on a cluster: the other runs finished
            print(f"{prog}: {_one_line(str(error))}", file=sys.stderr)
            return 1
        except FileExistsError as error:  # one after another: the first failed run stops it
            print(f"{prog}: a run failed: {_one_line(str(error))}", file=sys.stderr)
            return 1
    print(f"table: {spec.table_path}")
    print(_sweep_summary(spec, sweep))
    return 0


def _generations(numbers: list[int]) -> str:
    """``[6, 7, 8, 10]`` as ``"6-8, 10"``."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def _repair_command(args, parser) -> int:
    from madutils.results import repair

    with _command_errors(parser.prog, (ValueError,)):
        dropped = list(repair(args.run_dir))
    if not dropped:
        print(f"{args.run_dir}: every stored generation checks out")
    elif len(dropped) == 1:
        print(
            f"{args.run_dir}: generation {dropped[0]} is removed (damaged); "
            "rerun the same command to recompute it"
        )
    else:
        print(
            f"{args.run_dir}: generations {_generations(dropped)} are removed (from the last "
            "kept state before the first damaged file on); "
            "rerun the same command to recompute them"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``madutils`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0, 1 for a failed book build, failed runs of a sweep or output into
        a closed pipe (bad input raises ``SystemExit`` with status 2 instead, after one line on
        stderr).
    """
    try:
        try:
            return _main(sys.argv[1:] if argv is None else list(argv))
        finally:
            sys.stdout.flush()  # a closed pipe raises here, inside the try, not at exit
    except BrokenPipeError:
        # the reader stopped (``madutils metrics | head -1``): end quietly, and point stdout at
        # devnull so that Python's own flush at exit does not fail again ("Note on SIGPIPE")
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: list[str]) -> int:
    parser = _OneLineParser(
        prog="madutils", description="Self-consuming generative loops (Alemohammad et al. 2024)."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    # ``loop``'s options are generated (and parsed) only when it runs: see _loop_parser.
    sub.add_parser(
        "loop",
        help="run one self-consuming loop configuration (madutils loop --help lists its options)",
        add_help=False,
    )
    run_parser = _run_parser(sub)
    book_parser = sub.add_parser("book", help="execute every notebook and build the site")
    book_parser.add_argument(
        "--scale",
        choices=("ci", "cpu", "gpu"),
        default="cpu",
        help="parameter files of the notebooks (default: cpu)",
    )
    _add_engine_options(book_parser, "the notebooks' sweeps")
    book_parser.add_argument(
        "--chapters-at-once",
        type=_positive_int,
        default=None,
        metavar="N",
        help="chapters of one part of the book executing at the same time (default: all of "
        "them when runs go to a cluster, one otherwise)",
    )
    sweep_parser = _sweep_parser(sub)
    sub.add_parser("metrics", help="list the metric names of the results tables")
    repair_parser = sub.add_parser(
        "repair",
        help="verify a run directory and remove its damaged generations",
        description="Verify every stored generation of RUN_DIR and remove the files of the "
        "first damaged generation and of every later one; rerunning the run's command then "
        "recomputes them. Exit status 0 when it ran, 2 when RUN_DIR is not a run directory.",
    )
    repair_parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    args, rest = parser.parse_known_args(argv)
    if args.command == "loop":
        return _loop_command(argv[argv.index("loop") + 1 :])
    if rest:
        parser.parse_args(argv)  # the usual "unrecognized arguments" error
    if args.command == "run":
        return _run_notebook_command(args, run_parser)
    if args.command == "book":
        return _book_command(args, book_parser)
    if args.command == "sweep":
        return _sweep_command(args, sweep_parser)
    if args.command == "repair":
        return _repair_command(args, repair_parser)
    from madutils.metrics import METRICS

    for name, description in METRICS.items():
        print(f"{name}: {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
