"""The sweep engine on a real Dask LocalCluster of 2 single-threaded worker processes (no
mock): the same table as the sequential path, a worker killed mid-run, reruns that read
everything back, a run that raises, concurrent sweeps on one store, and the engine's choice."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import madutils.engine
from madutils.analysis import run_sweep
from madutils.engine import Engine, engine_environment
from madutils.errors import SweepError
from madutils.loops.config import LoopConfig
from madutils.results import RunStore, run_name

pytest.importorskip("distributed")

BASE = LoopConfig(family="fresh_data", dim=5, n_ini=40, n_real=20, n_synthetic=40, seeds=8)
GRID = dict(lam=[1.0, 0.8], seed=[0, 1])


@pytest.fixture(scope="module", autouse=True)
def _close_clusters():
    yield
    madutils.engine._close_kept()


def _grid(out, **options):
    return run_sweep(dataclasses.replace(BASE, generations=4), out, **GRID, **options)


def test_a_local_cluster_gives_the_sequential_table_row_for_row(tmp_path, capsys):
    sequential = _grid(tmp_path / "seq", progress=False)
    parallel = _grid(tmp_path / "par", workers=2, progress=True)
    pd.testing.assert_frame_equal(parallel.table, sequential.table)
    assert [r.config for r in parallel.results] == [r.config for r in sequential.results]
    out = capsys.readouterr().out
    assert "Dask dashboard: http" in out
    assert "4 run(s) on a local cluster of 2 single-threaded worker process(es): 4 computed" in out
    assert all(r.computed == 4 for r in parallel.results)


def test_a_rerun_reads_everything_back_and_submits_nothing(tmp_path, capsys):
    first = _grid(tmp_path, workers=2, progress=False)
    again = _grid(tmp_path, workers=2, progress=True)
    pd.testing.assert_frame_equal(again.table, first.table)
    assert all(r.computed == 0 for r in again.results)
    assert "0 computed, 4 read back, 0 failed" in capsys.readouterr().out


def test_a_run_that_raises_is_reported_while_the_others_finish(tmp_path):
    config = dataclasses.replace(BASE, generations=4, lam=0.8, seed=1)
    blocked = tmp_path / run_name(config.resolved().to_dict())
    blocked.mkdir(parents=True)
    other = {**config.resolved().to_dict(), "dim": 99}
    (blocked / "config.json").write_text(json.dumps({"settings": other}))
    with pytest.raises(SweepError, match=r"1 of 4 run\(s\) failed \(lam=0.8, seed=1: ") as error:
        _grid(tmp_path, workers=2, progress=False)
    ((settings, exception),) = error.value.failures
    assert settings == {"lam": 0.8, "seed": 1} and isinstance(exception, FileExistsError)
    kept = error.value.sweep
    assert len(kept.results) == 3 and len(kept.table.groupby(["lam", "seed"])) == 3
    assert all(RunStore.existing(r.run_dir).check().finished == 4 for r in kept.results)


def test_a_worker_killed_mid_run_is_retried_and_the_run_resumes(tmp_path):
    long = dataclasses.replace(BASE, generations=400, dim=10)
    reference = run_sweep(long, tmp_path / "reference", lam=[1.0, 0.8], progress=False).table
    out = tmp_path / "killed"
    outcome = {}

    def sweep():
        outcome["sweep"] = run_sweep(long, out, lam=[1.0, 0.8], workers=2, progress=False)

    thread = threading.Thread(target=sweep)
    thread.start()
    # wait until a run has finished some generations, then kill the worker computing it
    run_dir = None
    deadline = time.time() + 120
    while time.time() < deadline and run_dir is None:
        for candidate in out.glob("fresh_data-*"):
            if len(list((candidate / "generations").glob("*.json"))) >= 20:
                run_dir = candidate
        time.sleep(0.05)
    assert run_dir is not None, "no run got going"
    client, _ = madutils.engine._KEPT[("local", 2)]
    pids = client.run(os.getpid)
    processing = client.processing()
    busy = [address for address, tasks in processing.items() if tasks]
    os.kill(pids[busy[0]], signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    pd.testing.assert_frame_equal(outcome["sweep"].table, reference)
    # the killed run resumed after its last finished generation instead of starting over
    histories = [RunStore.existing(r.run_dir).history() for r in outcome["sweep"].results]
    assert any(len(h) == 2 and h[1]["generations"][0] > 1 for h in histories)


_CONCURRENT = textwrap.dedent(
    """
    import sys
    from madutils.analysis import run_sweep
    from madutils.loops.config import LoopConfig
    base = LoopConfig(**%(base)r)
    sweep = run_sweep(base, sys.argv[1], lam=[1.0, 0.8], seed=[0, 1], progress=False)
    sweep.table.to_csv(sys.argv[2], index=False)
    """
)


def test_two_sweeps_at_once_on_one_store_never_run_the_same_run_twice(tmp_path):
    base = {**BASE.to_dict(), "generations": 30}
    script = tmp_path / "sweep.py"
    script.write_text(_CONCURRENT % {"base": base})
    store = tmp_path / "store"
    children = [
        subprocess.Popen([sys.executable, str(script), str(store), str(tmp_path / f"{i}.csv")])
        for i in range(2)
    ]
    assert [child.wait(timeout=600) for child in children] == [0, 0]
    tables = [pd.read_csv(tmp_path / f"{i}.csv") for i in range(2)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    for run_dir in store.glob("fresh_data-*"):
        history = RunStore.existing(run_dir).history()
        assert [entry["generations"] for entry in history] == [[1, 30]]  # computed once


def test_the_engine_comes_from_arguments_then_the_environment(monkeypatch):
    for name in ("MADUTILS_WORKERS", "MADUTILS_SCHEDULER", "MADUTILS_CLUSTER"):
        monkeypatch.delenv(name, raising=False)
    assert Engine.from_settings().sequential
    monkeypatch.setenv("MADUTILS_WORKERS", "3")
    assert Engine.from_settings() == Engine(workers=3)
    assert Engine.from_settings(scheduler="tcp://h:8786") == Engine(scheduler="tcp://h:8786")
    monkeypatch.setenv("MADUTILS_SCHEDULER", "tcp://x:1")
    assert Engine.from_settings() == Engine(scheduler="tcp://x:1")  # a scheduler beats workers
    with engine_environment(Engine(workers=2)):
        assert os.environ["MADUTILS_WORKERS"] == "2" and "MADUTILS_SCHEDULER" not in os.environ
    assert os.environ["MADUTILS_SCHEDULER"] == "tcp://x:1"
    monkeypatch.setenv("MADUTILS_WORKERS", "many")
    monkeypatch.delenv("MADUTILS_SCHEDULER")
    with pytest.raises(ValueError, match="MADUTILS_WORKERS must be a positive integer; got 'many'"):
        Engine.from_settings()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(workers=0), "workers must be a positive integer"),
        (dict(workers=2, scheduler="tcp://h:1"), "give at most one of workers, scheduler"),
        (dict(scheduler=""), "scheduler must be a non-empty string"),
    ],
)
def test_bad_engine_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        run_sweep(BASE, None, lam=[1.0], **options)


def test_runs_kept_in_memory_also_run_on_the_cluster(tmp_path):
    config = dataclasses.replace(BASE, generations=3)
    sequential = run_sweep(config, None, lam=[1.0, 0.8], progress=False)
    parallel = run_sweep(config, None, lam=[1.0, 0.8], workers=2, progress=False)
    pd.testing.assert_frame_equal(parallel.table, sequential.table)
    assert not list(Path(tmp_path).iterdir())


def test_a_started_sweep_computes_before_its_result_is_asked_for(tmp_path):
    from madutils.analysis import start_sweep
    from madutils.analysis.sweep import is_stored

    base = dataclasses.replace(BASE, generations=4)
    here = start_sweep(base, tmp_path / "seq", **GRID, progress=False)
    assert not (tmp_path / "seq").exists()  # without a cluster nothing runs before result()
    first = start_sweep(base, tmp_path / "par", lam=[1.0], seed=[0, 1], workers=2, progress=False)
    second = start_sweep(base, tmp_path / "par", lam=[0.8], seed=[0, 1], workers=2, progress=False)
    configs = [dataclasses.replace(base, lam=lam, seed=s) for lam in (1.0, 0.8) for s in (0, 1)]
    deadline = time.monotonic() + 300
    while not all(is_stored(c, tmp_path / "par") for c in configs):
        assert time.monotonic() < deadline, "the submitted runs never finished"
        time.sleep(0.2)
    together = pd.concat([first.result().table, second.result().table], ignore_index=True)
    sequential = here.result().table
    assert first.result() is first.result()
    pd.testing.assert_frame_equal(
        together.sort_values(["lam", "seed"], ascending=[False, True], kind="stable").reset_index(
            drop=True
        ),
        sequential.sort_values(["lam", "seed"], ascending=[False, True], kind="stable").reset_index(
            drop=True
        ),
    )
    assert all(r.computed == 4 for r in first.result().results + second.result().results)


def test_two_started_sweeps_asking_for_one_run_share_its_task(tmp_path):
    from madutils.analysis import start_sweep

    base = dataclasses.replace(BASE, generations=30)
    both = [start_sweep(base, tmp_path, lam=[1.0, 0.8], workers=2, progress=False) for _ in "ab"]
    first, second = (pending.result() for pending in both)
    pd.testing.assert_frame_equal(first.table, second.table)
    for result in first.results:
        history = RunStore.existing(result.run_dir).history()
        assert [entry["generations"] for entry in history] == [[1, 30]]  # computed once
