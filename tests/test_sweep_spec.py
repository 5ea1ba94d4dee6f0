"""Sweeps described in YAML (``madutils.sweep_spec``) and ``madutils sweep``.

A sweep file runs the table of the equivalent ``run_sweep`` call; every bad file is refused
before anything starts, in one line naming the file and the key, setting or run, with nothing
created; ``madutils sweep`` runs the example file end to end (in-process), exits 1 with one line
when runs fail (one after another, and on a local Dask cluster: the one test that starts one)
and 2 for bad input, including the engine options.
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import madutils.engine
import madutils.sweep_spec
from madutils.analysis.sweep import run_sweep
from madutils.cli import main
from madutils.loops.config import LoopConfig
from madutils.results import run_name
from madutils.sweep_spec import SPEC_KEYS, SweepSpec, load_sweep_spec, run_sweep_spec

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sweep-fresh-data.yaml"
ENGINE_VARIABLES = (madutils.engine.ENV_WORKERS, madutils.engine.ENV_SCHEDULER)
ENGINE_VARIABLES += (madutils.engine.ENV_CLUSTER,)

# tiny Gaussian runs: a fraction of a second each
TINY = """\
model: gaussian
base:
  family: fresh_data
  dim: 2
  n_ini: 20
  generations: 2
  seeds: 2
  metrics: [w2_squared]
"""
TINY_BASE = dict(
    family="fresh_data", dim=2, n_ini=20, generations=2, seeds=2, metrics=("w2_squared",)
)


@pytest.fixture(autouse=True)
def _sequential(monkeypatch):
    """No engine from the environment: every sweep here runs in this process unless told."""
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _spec_file(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _usage_error(argv, capsys) -> str:
    """The one stderr line of ``madutils ARGV``, which must exit with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


def _must_not_run(*args, **kwargs):
    raise AssertionError("the sweep ran although its input is bad")


# -- the spec runs the equivalent run_sweep call ----------------------------------------------


def test_a_spec_gives_the_table_of_the_equivalent_run_sweep_call(tmp_path):
    spec_path = _spec_file(
        tmp_path,
        TINY
        + """\
grid:
  lam: [1.0, 0.8]
  seed: [0, 1]
cases:
  - {n_real: 10, n_synthetic: 20}
  - {n_real: 20, n_synthetic: 10}
out: OUT
""".replace("OUT", str(tmp_path / "spec-runs")),
    )
    spec = load_sweep_spec(spec_path)
    sweep = run_sweep_spec(spec, progress=False)

    base = LoopConfig(**TINY_BASE, n_real=10, n_synthetic=20)
    cases = [dict(n_real=10, n_synthetic=20), dict(n_real=20, n_synthetic=10)]
    direct = run_sweep(
        base, tmp_path / "direct-runs", cases=cases, lam=[1.0, 0.8], seed=[0, 1], progress=False
    )
    pd.testing.assert_frame_equal(sweep.table, direct.table)
    assert sweep.varied == direct.varied == ["n_real", "n_synthetic", "lam", "seed"]
    assert [c.resolved() for c in spec.configs()] == [r.config for r in direct.results]
    assert len(spec.configs()) == 8
    # the table is written where the spec says by default: <out>/sweep-<stem>.csv
    assert spec.table_path == tmp_path / "spec-runs" / "sweep-spec.csv"
    written = pd.read_csv(spec.table_path)
    direct.table.to_csv(tmp_path / "direct.csv", index=False)
    pd.testing.assert_frame_equal(written, pd.read_csv(tmp_path / "direct.csv"))


def test_the_example_file_is_four_checked_runs():
    spec = load_sweep_spec(EXAMPLE)
    assert isinstance(spec, SweepSpec) and spec.model == "gaussian"
    assert isinstance(spec.base, LoopConfig) and spec.base.family == "fresh_data"
    assert spec.grid == {"lam": [1.0, 0.8]}
    assert spec.out == Path("runs/") and spec.table is None
    assert spec.table_path == Path("runs") / "sweep-sweep-fresh-data.csv"
    runs = [(c.lam, c.n_real, c.n_synthetic) for c in spec.configs()]
    assert runs == [(1.0, 50, 200), (0.8, 50, 200), (1.0, 100, 100), (0.8, 100, 100)]
    assert set(spec.base_settings) | {"model"} | set(spec.grid) | {"n_real", "n_synthetic"} >= {
        "family",
        "dim",
        "n_ini",
    }


def test_a_base_that_is_a_run_on_its_own_is_the_base(tmp_path):
    spec = load_sweep_spec(
        _spec_file(tmp_path, TINY + "  n_real: 5\n  n_synthetic: 5\ngrid:\n  lam: [1.0]\n")
    )
    assert spec.base == LoopConfig(**TINY_BASE, n_real=5, n_synthetic=5)
    assert spec.cases is None and spec.configs() == [spec.base]


def test_a_case_leaving_out_a_setting_takes_the_base_value_not_another_case(tmp_path):
    """Case 2 gives a pool (n_total, real_fraction) where case 1 gives n_real and n_synthetic;
    the base alone is no run (fresh data without sizes): the first run's settings stand in for
    it, and case 2 must not inherit case 1's n_real."""
    spec = load_sweep_spec(
        _spec_file(
            tmp_path,
            TINY
            + """\
  synthetic_source: accumulate
cases:
  - {n_real: 10, n_synthetic: 20}
  - {n_total: 30, real_fraction: 0.5, synthetic_source: last}
""",
        )
    )
    first, second = spec.configs()
    assert (first.n_real, first.n_synthetic, first.n_total) == (10, 20, None)
    assert (second.n_real, second.n_synthetic, second.n_total) == (None, None, 30)
    assert (first.synthetic_source, second.synthetic_source) == ("accumulate", "last")
    assert spec.cases == [
        {"n_real": 10, "n_synthetic": 20},
        {"n_total": 30, "real_fraction": 0.5, "synthetic_source": "last"},
    ]


def test_a_case_leaving_out_the_model_takes_the_top_level_model(tmp_path):
    """LoopConfig's default model is gaussian; the file's model is flow."""
    spec = load_sweep_spec(
        _spec_file(
            tmp_path,
            "model: flow\nbase:\n  generations: 2\n  epochs: 1\n"
            "cases:\n  - {model: gaussian, metrics: [w2_squared]}\n  - {n_ini: 30}\n",
        )
    )
    assert [(c.model, c.n_ini) for c in spec.configs()] == [("gaussian", 100), ("flow", 30)]
    assert spec.base.model == "flow"


def test_an_explicit_table_and_a_redirected_out(tmp_path):
    spec = load_sweep_spec(
        _spec_file(tmp_path, TINY + "  n_real: 5\n  n_synthetic: 5\ntable: here/t.csv\n")
    )
    assert spec.table_path == Path("here/t.csv")
    moved = dataclasses.replace(load_sweep_spec(EXAMPLE), out=tmp_path / "elsewhere")
    assert moved.table_path == tmp_path / "elsewhere" / "sweep-sweep-fresh-data.csv"


# -- refusals, before anything starts ---------------------------------------------------------

GOOD_SIZES = "  n_real: 10\n  n_synthetic: 10\n"
REFUSALS = {
    "bad YAML": ("model: [gaussian\n", "is not valid YAML at line"),
    "a key given twice": (TINY + "grid:\n  lam: [1.0]\n  lam: [0.8]\n", "'lam' is given twice"),
    "a list": ("- model\n- base\n", "must be a mapping with the keys model, base, grid"),
    "an empty file": ("", "got an empty file"),
    "an unknown key": (
        TINY + GOOD_SIZES + "grids:\n  lam: [1.0]\n",
        "unknown key(s) 'grids'; valid keys: " + ", ".join(SPEC_KEYS),
    ),
    "no model": ("base:\n  dim: 2\n", "missing key 'model'"),
    "an unknown model": (
        "model: vae\n",
        "model must be one of gaussian, mixture, flow, ddpm, wgan",
    ),
    "an unknown base setting": (
        TINY + "  lamda: 0.5\n",
        "base: unknown setting(s) 'lamda' of model gaussian (LoopConfig); valid: family, model,",
    ),
    "an image setting for the gaussian": (
        TINY + "  dataset: digits\n",
        "base: unknown setting(s) 'dataset' of model gaussian (LoopConfig)",
    ),
    "a batched setting for the ddpm": (
        "model: ddpm\nbase:\n  dim: 3\n",
        "base: unknown setting(s) 'dim' of model ddpm (ImageLoopConfig); valid: family, model,",
    ),
    "an unknown grid setting": (
        TINY + GOOD_SIZES + "grid:\n  lamda: [1.0]\n",
        "grid: unknown setting(s) 'lamda' of model gaussian",
    ),
    "an unknown case setting": (
        TINY + "cases:\n  - {n_real: 5, n_synthetic: 5}\n  - {n_reals: 5}\n",
        "cases[1]: unknown setting(s) 'n_reals' of model gaussian",
    ),
    "the model in base": (TINY + "  model: mixture\n", "base: model is the top-level key"),
    "an empty grid list": (
        TINY + GOOD_SIZES + "grid:\n  lam: []\n",
        "grid: lam is an empty list: give at least one value",
    ),
    "a grid value that is not a list": (
        TINY + GOOD_SIZES + "grid:\n  lam: 0.5\n",
        "grid: lam must be a list of values to sweep over (e.g. lam: [0.5]); got 0.5",
    ),
    "a grid that is not a mapping": (
        TINY + GOOD_SIZES + "grid: [lam]\n",
        "grid must be a mapping of settings (name: value); got list",
    ),
    "an empty cases list": (TINY + GOOD_SIZES + "cases: []\n", "cases is an empty list"),
    "cases that are not a list": (
        TINY + GOOD_SIZES + "cases: {n_real: 5}\n",
        "cases must be a list of mappings of settings; got dict",
    ),
    "a case that is not a mapping": (
        TINY + GOOD_SIZES + "cases:\n  - n_real\n",
        "cases[0] must be a mapping of settings (name: value); got 'n_real'",
    ),
    "a grid value out of range": (
        TINY + GOOD_SIZES + "grid:\n  lam: [1.0, 1.5]\n",
        "grid: lam[1]: lam must be in (0, 1]",
    ),
    "a base value of the wrong type": (TINY + "  n_eval: two\n", "base: n_eval: n_eval must be"),
    "a case value of the wrong type": (
        TINY + "cases:\n  - {n_real: ten, n_synthetic: 5}\n",
        "cases[0]: n_real: n_real must be",
    ),
    "a setting in base and grid": (
        TINY + GOOD_SIZES + "grid:\n  dim: [2, 3]\n",
        "dim given both in base and in grid",
    ),
    "a setting in grid and a case": (
        TINY + "grid:\n  n_real: [5]\ncases:\n  - {n_real: 5, n_synthetic: 5}\n",
        "setting(s) ['n_real'] are given both in cases and as a sweep",
    ),
    "an invalid combination of a case": (
        TINY + "cases:\n  - {n_real: 10, n_synthetic: 20}\n  - {n_real: 10}\n",
        "the run n_real=10 (cases[1]) is not valid: a fresh_data loop needs n_real and",
    ),
    "an invalid combination of the grid": (
        TINY.replace("dim: 2", "dim: 3") + GOOD_SIZES + "grid:\n  model: [gaussian, mixture]\n",
        "the run model='mixture' is not valid: dim must be 2",
    ),
    "a run that needs more memory than there is": (
        "model: gaussian\ngrid:\n  seeds: [2, 1000000000000]\n",
        "the run seeds=1000000000000 is not valid: ",
    ),
    "two grid points that are one run": (
        TINY + GOOD_SIZES + "grid:\n  memory: [1, 2]\n",
        "the runs memory=1 and memory=2 are one run (fresh_data-gaussian-lam1-",
    ),
    "an out that is not a path": (TINY + GOOD_SIZES + "out: 3\n", "out must be a path; got 3"),
    "an out that is a file": (TINY + GOOD_SIZES + "out: spec.yaml\n", "out spec.yaml is a file"),
    "a table that is a directory": (
        TINY + GOOD_SIZES + "table: .\n",
        "table . is a directory; give a file name",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_bad_spec_is_refused_in_one_line_naming_the_file_and_nothing_is_created(
    case, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    text, expected = REFUSALS[case]
    path = _spec_file(tmp_path, text)
    with pytest.raises(ValueError) as error:
        load_sweep_spec(path)
    message = str(error.value)
    assert message.startswith(f"sweep file {path}")
    assert expected in message, message
    assert "\n" not in message
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"sweep file .*nope\.yaml does not exist$"):
        load_sweep_spec(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="is a directory, not a YAML file"):
        load_sweep_spec(tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- madutils sweep ---------------------------------------------------------------------------


def test_madutils_sweep_runs_the_example_file_and_a_rerun_reads_it_back(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["sweep", str(EXAMPLE), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    table = out / "sweep-sweep-fresh-data.csv"
    assert captured.out.splitlines() == [
        "engine: this process, one run after another",
        f"table: {table}",
        "4 run(s) of model gaussian varying n_real, n_synthetic, lam: 1600 rows, "
        "generations 1-10, metrics w2_squared, cov_trace",
    ]
    assert "runs: 100%" in captured.err  # run_sweep's progress bar
    first = pd.read_csv(table)
    assert len(first) == 1600 and set(first.columns) >= {"lam", "n_real", "n_synthetic"}
    assert len(list(out.glob("fresh_data-gaussian-*"))) == 4

    assert main(["sweep", str(EXAMPLE), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: no progress bar
    pd.testing.assert_frame_equal(pd.read_csv(table), first)


def _failing_spec(tmp_path) -> tuple[Path, Path]:
    """A two-run spec whose second run's directory already holds a run of other settings."""
    out = tmp_path / "runs"
    path = _spec_file(tmp_path, TINY + GOOD_SIZES + f"grid:\n  lam: [1.0, 0.8]\nout: {out}\n")
    failing = load_sweep_spec(path).configs()[1].resolved()
    run_dir = out / run_name(failing.to_dict())
    run_dir.mkdir(parents=True)
    other = {**failing.to_dict(), "dim": 3}
    (run_dir / "config.json").write_text(json.dumps({"settings": other}))
    return path, run_dir


def test_a_failed_run_one_after_another_is_exit_1_with_one_line(tmp_path, capsys):
    path, run_dir = _failing_spec(tmp_path)
    assert main(["sweep", str(path), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith(f"madutils sweep: a run failed: {run_dir} holds a run with ")
    assert "(dim differ)" in captured.err
    assert captured.out == "engine: this process, one run after another\n"
    assert not (tmp_path / "runs" / "sweep-spec.csv").exists()


def test_failed_runs_on_a_local_cluster_are_a_sweep_error_exit_1(tmp_path, capsys):
    """The one test that starts a Dask cluster (2 worker processes): the other run finishes."""
    path, run_dir = _failing_spec(tmp_path)
    try:
        assert main(["sweep", str(path), "--workers", "2", "--quiet"]) == 1
    finally:
        madutils.engine._close_kept()
    captured = capsys.readouterr()
    assert captured.out.startswith(
        "engine: a local cluster of 2 single-threaded worker process(es)\n"
    )
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith("madutils sweep: 1 of 2 run(s) failed (lam=0.8: FileExistsError: ")
    assert line.endswith("the other runs finished and are kept")
    finished = [p for p in (tmp_path / "runs").glob("fresh_data-*") if p != run_dir]
    assert len(finished) == 1 and (finished[0] / "results.csv").exists()
    assert not (tmp_path / "runs" / "sweep-spec.csv").exists()


@pytest.fixture
def no_sweep(monkeypatch):
    monkeypatch.setattr(madutils.sweep_spec, "run_sweep_spec", _must_not_run)


def test_a_bad_spec_from_the_command_line_is_exit_2_with_one_line(tmp_path, capsys, no_sweep):
    path = _spec_file(tmp_path, TINY + GOOD_SIZES + "grid:\n  lam: []\n")
    line = _usage_error(["sweep", str(path)], capsys)
    assert line == (
        f"madutils sweep: error: sweep file {path}: grid: lam is an empty list: give at least "
        "one value (a sweep over no values has no runs)"
    )
    line = _usage_error(["sweep", str(tmp_path / "nope.yaml")], capsys)
    assert line == f"madutils sweep: error: sweep file {tmp_path / 'nope.yaml'} does not exist"
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--workers", "0"], "argument --workers: expected a positive integer; got '0'"),
        (["--workers", "two"], "argument --workers: expected a positive integer; got 'two'"),
        (["--workers", "-1"], "argument --workers: expected a positive integer; got '-1'"),
        (
            ["--workers", "2", "--scheduler", "tcp://h:8786"],
            "argument --scheduler: not allowed with argument --workers",
        ),
        (
            ["--scheduler", "tcp://h:8786", "--cluster", "c.yaml"],
            "argument --cluster: not allowed with argument --scheduler",
        ),
        (["--scheduler", " "], "--scheduler ' ': scheduler must be a non-empty string"),
        (["--cluster", "CLUSTER"], "cluster file CLUSTER does not exist"),
        (["--out", "SPEC"], "--out SPEC is not a directory"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_engine_options_and_out_are_exit_2(options, expected, tmp_path, capsys, no_sweep):
    path = _spec_file(tmp_path, TINY + GOOD_SIZES)
    missing = str(tmp_path / "missing-cluster.yaml")
    replace = {"CLUSTER": missing, "SPEC": str(path)}
    options = [replace.get(option, option) for option in options]
    expected = expected.replace("CLUSTER", missing).replace("SPEC", str(path))
    line = _usage_error(["sweep", str(path), *options], capsys)
    assert line.startswith("madutils sweep: error: ") or line.startswith("madutils: error: ")
    assert expected in line, line
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]


def test_a_bad_engine_variable_is_exit_2_naming_it(tmp_path, monkeypatch, capsys, no_sweep):
    path = _spec_file(tmp_path, TINY + GOOD_SIZES)
    monkeypatch.setenv(madutils.engine.ENV_WORKERS, "zero")
    line = _usage_error(["sweep", str(path)], capsys)
    assert line == (
        "madutils sweep: error: MADUTILS_WORKERS='zero': MADUTILS_WORKERS must be a positive "
        "integer; got 'zero'"
    )


def test_an_out_of_the_file_that_cannot_be_written_is_exit_2(
    tmp_path, monkeypatch, capsys, no_sweep
):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(  # chmod does not stop root, who runs some test machines
        os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode)
    )
    path = _spec_file(tmp_path, TINY + GOOD_SIZES + f"out: {locked / 'runs'}\n")
    line = _usage_error(["sweep", str(path)], capsys)
    assert line == (
        f"madutils sweep: error: out of {path}: {locked / 'runs'}: {locked} is a directory that "
        "cannot be written; give a writable one"
    )
    assert not any(locked.iterdir())


def test_the_engine_options_reach_run_sweep_spec(tmp_path, monkeypatch, capsys):
    seen = {}

    def record(spec, **options):
        seen.update(spec=spec, options=options)
        raise SystemExit(0)  # stop before the summary: nothing ran

    monkeypatch.setattr(madutils.sweep_spec, "run_sweep_spec", record)
    path = _spec_file(tmp_path, TINY + GOOD_SIZES)
    cluster = str(REPO / "examples" / "cluster-slurm.yaml")
    for options, engine in [
        ([], dict(workers=None, scheduler=None, cluster=None)),
        (["--workers", "3"], dict(workers=3, scheduler=None, cluster=None)),
        (
            ["--scheduler", "tcp://h:8786"],
            dict(workers=None, scheduler="tcp://h:8786", cluster=None),
        ),
        (["--cluster", cluster], dict(workers=None, scheduler=None, cluster=cluster)),
    ]:
        with pytest.raises(SystemExit):
            main(["sweep", str(path), "--quiet", "--allow-code-change", *options])
        assert seen["options"] == {**engine, "allow_code_change": True, "progress": False}
        assert seen["spec"].out == Path("runs")
    described = madutils.engine.Engine(cluster=cluster).describe()
    assert capsys.readouterr().out.splitlines()[-1] == f"engine: {described}"


def test_sweep_help_and_the_module_documentation_describe_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in (
        "SPEC",
        "--workers N",
        "--scheduler ADDR",
        "--cluster FILE",
        "--out DIR",
        "--quiet",
        "--allow-code-change",
        "examples/sweep-fresh-data.yaml",
        "Exit status 0",
        "MADUTILS_WORKERS",
    ):
        assert words in text, words
    for key in SPEC_KEYS:
        assert f"{key} (" in text, key
    doc = madutils.cli.__doc__
    for words in ("``madutils sweep SPEC.yaml", "``--workers N``", "``--scheduler ADDR``"):
        assert words in doc, words
