"""Every ``madutils`` command answers bad input with one line and exit status 2, never a traceback.

The commands run in-process through :func:`madutils.cli.main`; the work behind them (the loops,
papermill, the book build, the store's repair, a sweep file's runs) is replaced by stand-ins
where the test is about the command line only. The broken-pipe cases run ``madutils`` as a
subprocess, since they need a real pipe.
"""

import errno
import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

import madutils.book
import madutils.loops.batched
import madutils.results
import madutils.runner
import madutils.sweep_spec
from madutils import cli
from madutils.cli import main
from madutils.engine import ENV_CLUSTER, ENV_SCHEDULER, ENV_WORKERS, Engine
from madutils.errors import CodeChangedError, DamagedFileError, DiskFullError

MADUTILS = Path(sys.executable).with_name("madutils")
TINY_LOOP = ["loop", "--n-ini", "20", "--generations", "3", "--seeds", "2", "--dim", "2"]
TINY_LOOP += ["--metrics", "w2_squared", "--quiet"]


def _usage_error(argv, capsys, out: str = "") -> str:
    """The one stderr line of ``madutils ARGV``, which must exit with status 2 after printing
    ``out``."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == out
    assert "Traceback" not in captured.err
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


def _must_not_run(*args, **kwargs):
    raise AssertionError("the command ran although its input is bad")


def _disk_full(filename, code=errno.ENOSPC):
    def raise_it(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(filename))

    return raise_it


def _raise(error):
    def raise_it(*args, **kwargs):
        raise error

    return raise_it


@pytest.fixture
def stand_ins(monkeypatch):
    """Replace the work behind every command by ``_must_not_run``; return a setter."""
    targets = {
        "loop": (madutils.loops.batched, "run_loop"),
        "run": (madutils.runner, "run_notebook"),
        "book": (madutils.book, "build_book"),
        "repair": (madutils.results, "repair"),
        "sweep": (madutils.sweep_spec, "run_sweep_spec"),
    }
    for module, name in targets.values():
        monkeypatch.setattr(module, name, _must_not_run, raising=False)
    for variable in (ENV_CLUSTER, ENV_SCHEDULER, ENV_WORKERS):  # no engine from outside
        monkeypatch.delenv(variable, raising=False)

    def replace(command, function):
        module, name = targets[command]
        monkeypatch.setattr(module, name, function, raising=False)

    return replace


def _argv(command, tmp_path) -> list[str]:
    """A valid command line of ``command`` whose work is done by a stand-in (for ``sweep``,
    a sweep file of one tiny run is written first)."""
    if command == "sweep":
        spec = tmp_path / "sweep.yaml"
        spec.write_text("model: gaussian\nbase:\n  n_ini: 20\n  generations: 2\n")
        return ["sweep", str(spec), "--quiet", "--out", str(tmp_path / "runs")]
    return {
        "loop": ["loop", "--quiet", "--out", str(tmp_path / "runs")],
        "run": ["run", "fresh_data", "--out", str(tmp_path / "executed")],
        "book": ["book"],
        "repair": ["repair", str(tmp_path / "runs" / "some-run")],
    }[command]


# -- --out ------------------------------------------------------------------------------------


def _out_cases(tmp_path, monkeypatch):
    file = tmp_path / "a-file"
    file.write_text("not a directory\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(  # chmod does not stop root, who runs some test machines
        os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode)
    )
    return {
        "file": (str(file), str(file)),
        "under-a-file": (str(file / "runs"), str(file)),
        "unwritable": (str(locked), str(locked)),
        "under-an-unwritable": (str(locked / "new" / "runs"), str(locked)),
        "empty": ("", "''"),
    }


@pytest.mark.parametrize("case", ["file", "under-a-file", "unwritable", "under-an-unwritable"])
@pytest.mark.parametrize("command", ["loop", "run"])
def test_a_bad_out_is_refused_before_anything_runs(
    command, case, tmp_path, monkeypatch, capsys, stand_ins
):
    out, named = _out_cases(tmp_path, monkeypatch)[case]
    argv = [*_argv(command, tmp_path)[:-1], out]
    line = _usage_error(argv, capsys)
    assert line.startswith(f"madutils {command}: error: --out {out}")
    assert named in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "locked"]
    assert not any((tmp_path / "locked").iterdir())


@pytest.mark.parametrize("command", ["loop", "run"])
def test_an_empty_out_is_refused_instead_of_writing_into_the_working_directory(
    command, tmp_path, monkeypatch, capsys, stand_ins
):
    monkeypatch.chdir(tmp_path)
    line = _usage_error([*_argv(command, tmp_path)[:-1], ""], capsys)
    assert line.startswith(f"madutils {command}: error: --out must name a directory")
    assert "''" in line
    assert list(tmp_path.iterdir()) == []


def test_a_good_out_that_does_not_exist_yet_is_accepted(tmp_path, capsys, stand_ins):
    seen = {}

    def run_loop(config, out, *, progress):
        seen["out"] = out
        table = pd.DataFrame({"generation": [1], "metric": ["w2_squared"], "value": [0.5]})
        return types.SimpleNamespace(table=table, run_dir="RUN")

    stand_ins("loop", run_loop)
    out = tmp_path / "new" / "runs"
    assert main(["loop", "--quiet", "--out", str(out)]) == 0
    assert seen["out"] == str(out) and not out.exists()  # the loop creates it, not the check
    assert capsys.readouterr().out.strip().endswith("run directory: RUN")


# -- -p NAME VALUE of madutils run ------------------------------------------------------------


def test_bad_yaml_in_a_parameter_names_the_parameter(tmp_path, capsys, stand_ins):
    argv = ["run", "fresh_data", "-p", "lams", "[1.0,", "--out", str(tmp_path / "x")]
    line = _usage_error(argv, capsys)
    assert line.startswith("madutils run: error: parameter -p lams: '[1.0,' is not valid YAML (")
    assert not (tmp_path / "x").exists()


def test_a_value_error_of_the_parameter_parser_is_one_line(
    tmp_path, monkeypatch, capsys, stand_ins
):
    """``parse_cli_value`` raising ``ValueError`` (naming the parameter or not) is one line."""

    def parse_cli_value(text, name=None):
        raise ValueError(f"{text!r} is not a value\nof any type")

    monkeypatch.setattr(madutils.runner, "parse_cli_value", parse_cli_value)
    argv = ["run", "fresh_data", "-p", "seeds", "x", "--out", str(tmp_path / "x")]
    line = _usage_error(argv, capsys)
    assert line == "madutils run: error: -p seeds: 'x' is not a value; of any type"


# -- full disks and the store's errors --------------------------------------------------------


def _printed_first(command) -> str:
    """What ``command`` prints before its work starts (``sweep``: where the runs execute)."""
    return "engine: this process, one run after another\n" if command == "sweep" else ""


@pytest.mark.parametrize("command", ["loop", "run", "book", "repair", "sweep"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_a_full_disk_names_the_file_and_the_free_space(
    command, code, tmp_path, monkeypatch, capsys, stand_ins
):
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "runs" / "some-run" / "generations" / "00003.csv"
    stand_ins(command, _disk_full(file, code))
    line = _usage_error(_argv(command, tmp_path), capsys, _printed_first(command))
    assert line.startswith(f"madutils {command}: error: cannot write {file}: ")
    assert os.strerror(code) in line and " free there" in line


def test_a_full_disk_while_a_real_loop_writes_names_the_file(tmp_path, monkeypatch, capsys):
    """The store's first ``torch.save`` (the loop's state) fails with ``ENOSPC``."""
    import torch

    def save(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(f))

    monkeypatch.setattr(torch, "save", save)
    line = _usage_error([*TINY_LOOP, "--out", str(tmp_path)], capsys)
    assert line.startswith(f"madutils loop: error: cannot write {tmp_path}{os.sep}")
    assert " free" in line


@pytest.mark.parametrize("command", ["loop", "run", "book", "repair", "sweep"])
@pytest.mark.parametrize(
    "error",
    [
        DamagedFileError(
            "runs/x/generations/00006.csv is damaged (checksum mismatch): run "
            "'madutils repair runs/x' and rerun the same command",
            path="runs/x/generations/00006.csv",
            generation=6,
        ),
        CodeChangedError("runs/x was written by madutils 0.1.0; pass --allow-code-change"),
        DiskFullError("cannot write runs/x/state.pt: the disk is full (0 B free)"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_store_errors_are_their_message_on_one_line(
    command, error, tmp_path, monkeypatch, capsys, stand_ins
):
    monkeypatch.chdir(tmp_path)
    stand_ins(command, _raise(error))
    line = _usage_error(_argv(command, tmp_path), capsys, _printed_first(command))
    assert line == f"madutils {command}: error: {error}"


def test_other_os_errors_are_not_hidden(tmp_path, capsys, stand_ins):
    """Only a full disk or quota is the user's to fix; other OS errors keep their traceback."""
    stand_ins("loop", _raise(OSError(errno.EIO, "Input/output error", "x")))
    with pytest.raises(OSError, match="Input/output error"):
        main(_argv("loop", tmp_path))


# -- madutils book ----------------------------------------------------------------------------


def test_a_failed_book_build_keeps_its_quoted_lines_and_status_1(capsys, stand_ins):
    message = "book build failed: executed notebooks:\n  a.ipynb: NameError\n  b.ipynb: missing"
    stand_ins("book", _raise(RuntimeError(message)))
    assert main(["book"]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"madutils book: {message}\n"


def test_bad_book_input_exits_2_with_one_line(capsys, stand_ins):
    stand_ins("book", _raise(ValueError("not notebooks of the book: nope; the book has: a, b")))
    line = _usage_error(["book"], capsys)
    assert line == "madutils book: error: not notebooks of the book: nope; the book has: a, b"


_REFUSING_NOTEBOOK = """# %% tags=["parameters"]
width = 512
output_dir = "executed"

# %%
if width > 256:
    raise ValueError(f"width={width} needs about 300 GB of memory; 21 GB are available")
"""


def test_a_setting_a_notebook_refuses_while_it_runs_exits_2_with_its_message(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    (notebooks / "params" / "refusing").mkdir(parents=True)
    (notebooks / "refusing.py").write_text(_REFUSING_NOTEBOOK)
    (notebooks / "params" / "refusing" / "ci.yaml").write_text("{}\n")
    argv = ["run", "refusing", "--scale", "ci", "--notebooks-dir", str(notebooks)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.rstrip("\n").split("\n")[-1].split("\r")[-1]  # after papermill's progress bar
    assert line.startswith(
        "madutils run: error: refusing.py at scale ci: width=512 needs about 300 GB of memory"
    )
    assert line.endswith(
        f"(the executed notebook, with the traceback: {tmp_path}/out/refusing.ipynb)"
    )
    assert main([*argv, "--out", str(tmp_path / "ok"), "-p", "width", "128"]) == 0
    capsys.readouterr()


# -- argparse's own errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, start",
    [
        ([], "madutils: error: the following arguments are required: command"),
        (["bogus"], "madutils: error: argument command: invalid choice: 'bogus'"),
        (["run"], "madutils run: error: the following arguments are required: notebook"),
        (["run", "x", "--scale", "big"], "madutils run: error: argument --scale: invalid choice"),
        (["run", "x", "-p", "lams"], "madutils run: error: argument -p/--parameter: expected 2"),
        (["book", "--scale", "big"], "madutils book: error: argument --scale: invalid choice"),
        (["repair"], "madutils repair: error: the following arguments are required: RUN_DIR"),
        (["sweep"], "madutils sweep: error: the following arguments are required: SPEC"),
        (["sweep", "s.yaml", "--workers"], "madutils sweep: error: argument --workers: expected"),
        (["metrics", "--all"], "madutils: error: unrecognized arguments: --all"),
    ],
)
def test_argument_errors_of_every_command_are_one_line_without_usage(argv, start, capsys):
    assert _usage_error(argv, capsys).startswith(start)


# -- madutils repair --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dropped, message",
    [
        ([], "every stored generation checks out"),
        ([4], "generation 4 is removed (damaged); rerun the same command to recompute it"),
        (
            [6, 7, 8, 9, 10],
            "generations 6-10 are removed (from the last kept state before the first damaged "
            "file on); rerun the same command to recompute them",
        ),
    ],
)
def test_repair_prints_one_line_per_outcome(dropped, message, tmp_path, capsys, stand_ins):
    seen = []
    stand_ins("repair", lambda run_dir: seen.append(run_dir) or dropped)
    run_dir = str(tmp_path / "fresh_data-gaussian-lam1-0123456789")
    assert main(["repair", run_dir]) == 0
    assert seen == [run_dir]
    assert capsys.readouterr().out == f"{run_dir}: {message}\n"


def test_repair_of_something_that_is_not_a_run_directory_exits_2(tmp_path, capsys, stand_ins):
    stand_ins("repair", _raise(ValueError(f"{tmp_path} is not a run directory (no config.json)")))
    line = _usage_error(["repair", str(tmp_path)], capsys)
    assert line == f"madutils repair: error: {tmp_path} is not a run directory (no config.json)"


def test_generations_are_written_as_ranges():
    assert cli._generations([8, 6, 7, 10, 12, 13]) == "6-8, 10, 12-13"


# -- --repair and --allow-code-change of madutils loop ----------------------------------------


def _recording_loop(seen, **extra):
    def run(config, out, *, progress, **keywords):
        seen.update(config=config, out=out, progress=progress, keywords=keywords)
        table = pd.DataFrame({"generation": [1], "metric": ["fid"], "value": [1.0]})
        return types.SimpleNamespace(table=table, run_dir="RUN", **extra)

    return run


@pytest.mark.parametrize(
    "flags, keywords",
    [
        ([], {}),
        (["--repair"], {"repair": True}),
        (["--allow-code-change"], {"allow_code_change": True}),
        (["--repair", "--allow-code-change"], {"repair": True, "allow_code_change": True}),
    ],
)
@pytest.mark.parametrize("model", ["gaussian", "ddpm"])
def test_repair_and_allow_code_change_reach_the_loop_functions(
    model, flags, keywords, tmp_path, monkeypatch, capsys, stand_ins
):
    seen = {}
    if model == "ddpm":
        fake = types.ModuleType("madutils.loops.images")
        fake.run_image_loop = _recording_loop(seen, feature_accuracy=0.5)
        monkeypatch.setitem(sys.modules, "madutils.loops.images", fake)
    else:
        stand_ins("loop", _recording_loop(seen))
    argv = ["loop", "--model", model, "--device", "cpu", "--out", str(tmp_path), "--quiet"]
    assert main([*argv, *flags]) == 0
    assert seen["keywords"] == keywords and seen["out"] == str(tmp_path)
    assert seen["config"] == cli.config_from_args(argv[1:])  # neither flag is a setting
    assert capsys.readouterr().out.strip().endswith("run directory: RUN")


def test_loop_help_documents_repair_and_allow_code_change(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["loop", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--repair " in text and "madutils repair RUN_DIR" in text
    assert "--allow-code-change " in text and "written by other code" in text
    for flag in ("``--repair``", "``--allow-code-change``", "``madutils repair RUN_DIR``"):
        assert flag in cli.__doc__


# The next tests use the store's repair and the loops' ``repair`` / ``allow_code_change``
# keywords themselves (madutils.results.repair, run_loop, run_image_loop).


def _tiny_run(tmp_path, capsys, *flags) -> Path:
    assert main([*TINY_LOOP, "--out", str(tmp_path), *flags]) == 0
    return Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("run directory: "))


def _damage(run_dir: Path, generation: int) -> None:
    (run_dir / "generations" / f"{generation:05d}.csv").write_text("not,the\nrows,\x00\n")


def test_repair_removes_the_damaged_generations_and_a_rerun_recomputes_them(tmp_path, capsys):
    run_dir = _tiny_run(tmp_path, capsys)
    before = pd.read_csv(run_dir / "results.csv")
    _damage(run_dir, 2)
    assert main(["repair", str(run_dir)]) == 0
    # the state of generation 1 is kept: generations 2 and 3 are recomputed
    assert capsys.readouterr().out == (
        f"{run_dir}: generations 2-3 are removed (from the last kept state before the first "
        "damaged file on); rerun the same command to recompute them\n"
    )
    assert main(["repair", str(run_dir)]) == 0
    assert capsys.readouterr().out == f"{run_dir}: every stored generation checks out\n"
    assert _tiny_run(tmp_path, capsys) == run_dir
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "results.csv"), before)


def test_repair_refuses_a_directory_that_is_not_a_run_directory(tmp_path, capsys):
    line = _usage_error(["repair", str(tmp_path)], capsys)
    assert line.startswith("madutils repair: error: ") and str(tmp_path) in line


def test_loop_repair_recomputes_a_damaged_generation(tmp_path, capsys):
    run_dir = _tiny_run(tmp_path, capsys)
    before = pd.read_csv(run_dir / "results.csv")
    _damage(run_dir, 2)
    assert _tiny_run(tmp_path, capsys, "--repair") == run_dir
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "results.csv"), before)


def test_loop_allow_code_change_extends_a_run_written_by_other_code(tmp_path, monkeypatch, capsys):
    """Another torch version is other code: refused in one line, continued with the flag."""
    import torch

    run_dir = _tiny_run(tmp_path, capsys, "--generations", "2")
    monkeypatch.setattr(torch, "__version__", "0.0.0+other")
    line = _usage_error([*TINY_LOOP, "--out", str(tmp_path)], capsys)
    assert line.startswith("madutils loop: error: ") and str(run_dir) in line
    assert _tiny_run(tmp_path, capsys, "--allow-code-change") == run_dir
    table = pd.read_csv(run_dir / "results.csv")
    assert sorted(set(table.generation)) == [1, 2, 3]


# -- where runs execute: --workers, --scheduler, --cluster of madutils run and book -----------

CLUSTER_FILE = str(Path(__file__).resolve().parents[1] / "examples" / "cluster-slurm.yaml")


def _recording(command, seen):
    """A stand-in for ``run_notebook`` or ``build_book`` that records its keyword arguments."""

    def run_notebook(notebook, **keywords):
        seen.update(keywords)
        return types.SimpleNamespace(notebook=notebook, scale="cpu", seconds=1.0, executed="X")

    def build_book(scale, **keywords):
        seen.update(keywords)
        return "INDEX"

    return {"run": run_notebook, "book": build_book}[command]


@pytest.mark.parametrize(
    "options, engine",
    [
        ([], None),
        (["--workers", "3"], Engine(workers=3)),
        (["--scheduler", "tcp://h:8786"], Engine(scheduler="tcp://h:8786")),
        (["--cluster", CLUSTER_FILE], Engine(cluster=CLUSTER_FILE)),
    ],
    ids=["none", "workers", "scheduler", "cluster"],
)
@pytest.mark.parametrize("command", ["run", "book"])
def test_engine_options_reach_run_notebook_and_build_book(
    command, options, engine, tmp_path, capsys, stand_ins
):
    seen = {}
    stand_ins(command, _recording(command, seen))
    assert main([*_argv(command, tmp_path), *options]) == 0
    assert seen["engine"] == engine
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--workers", "0"], "argument --workers: expected a positive integer; got '0'"),
        (["--workers", "2.5"], "argument --workers: expected a positive integer; got '2.5'"),
        (
            ["--workers", "2", "--cluster", "c.yaml"],
            "argument --cluster: not allowed with argument --workers",
        ),
        (
            ["--cluster", "c.yaml", "--scheduler", "tcp://h:8786"],
            "argument --scheduler: not allowed with argument --cluster",
        ),
        (["--scheduler", ""], "--scheduler '': scheduler must be a non-empty string"),
        (["--cluster", "MISSING"], "cluster file MISSING does not exist"),
    ],
)
@pytest.mark.parametrize("command", ["run", "book"])
def test_bad_engine_options_of_run_and_book_exit_2(
    command, options, expected, tmp_path, capsys, stand_ins
):
    missing = str(tmp_path / "missing.yaml")
    options = [missing if option == "MISSING" else option for option in options]
    line = _usage_error([*_argv(command, tmp_path), *options], capsys)
    assert line.startswith(f"madutils {command}: error: ")
    assert expected.replace("MISSING", missing) in line, line


def test_run_notebook_and_build_book_take_an_engine():
    """The contract the command line relies on: ``engine=`` of both, ``None`` by default."""
    for function in (madutils.runner.run_notebook, madutils.book.build_book):
        parameter = inspect.signature(function).parameters["engine"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None
    inspect.signature(madutils.runner.run_notebook).bind("fresh_data", engine=Engine(workers=2))
    inspect.signature(madutils.book.build_book).bind("ci", engine=Engine(workers=2))


@pytest.mark.parametrize("command", ["run", "book", "sweep"])
def test_help_of_run_book_and_sweep_documents_the_engine_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--workers N", "--scheduler ADDR", "--cluster FILE", "MADUTILS_WORKERS"):
        assert words in text, (command, words)
    for flag in ("``--workers N``", "``--scheduler ADDR``", "``--cluster FILE``"):
        assert flag in cli.__doc__


def test_the_engine_variables_named_in_help_are_the_engines():
    assert cli._ENV == (ENV_CLUSTER, ENV_SCHEDULER, ENV_WORKERS)


# -- output into a closed pipe ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["metrics"], [*TINY_LOOP, "--out", "OUT"]], ids=["metrics", "loop"]
)
def test_output_into_a_closed_pipe_ends_quietly(argv, tmp_path):
    """``madutils metrics | head -1``: the reader is gone before anything is written."""
    argv = [str(tmp_path / "runs") if arg == "OUT" else arg for arg in argv]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(MADUTILS), *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 1
