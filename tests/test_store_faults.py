"""Fault injection on the results store: every way a stored file can be bad, a changed code
between two invocations, shorter reruns, stale temporary files, a full disk and SIGKILL at
every write point. Each fault gives an error naming the file (or a warning and a rebuild, for
cache entries), and a repair that makes the rerun reproduce the uninterrupted run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

import madutils.files
import madutils.provenance
import madutils.results
from madutils.errors import CodeChangedError, DamagedFileError, DiskFullError
from madutils.files import CacheEntry, atomic_write, clean_stale_temporaries
from madutils.loops.batched import run_loop
from madutils.loops.config import LoopConfig
from madutils.results import RunStore, repair

#: The issue's example, smaller: a fresh data loop of 20-D Gaussians, 4 replicates.
FRESH = dict(family="fresh_data", dim=20, n_ini=100, n_real=50, n_synthetic=200, lam=0.8)
SEEDS = 4


def _config(generations: int, **changes) -> LoopConfig:
    return LoopConfig(**{**FRESH, "seeds": SEEDS, "generations": generations, **changes})


def _run(out: Path, generations: int, **options):
    changes = options.pop("changes", {})
    return run_loop(_config(generations, **changes), out, progress=False, **options)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 6-generation run (its table is what every repaired run must give)."""
    out = tmp_path_factory.mktemp("reference")
    return _run(out, 6).table


@pytest.fixture
def finished(tmp_path):
    """A finished 6-generation run in its own folder: (out, run_dir)."""
    out = tmp_path / "runs"
    result = _run(out, 6)
    return out, result.run_dir


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(run_dir).as_posix(): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


# -- damaged generation files ------------------------------------------------------------------
def _truncate_rows(path: Path) -> None:  # as `head -n K` does, K = half the lines
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))


def _half_line(path: Path) -> None:  # a copy taken mid-write: the first half of the bytes
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(300))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _missing(path: Path) -> None:
    path.unlink()


CORRUPTIONS = {
    "truncated": _truncate_rows,
    "half line": _half_line,
    "garbage": _garbage,
    "empty": _empty,
    "missing": _missing,
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("name", ["generations/00004.csv", "generations/00004.json"])
def test_a_damaged_generation_is_named_and_repaired(finished, reference, name, corruption):
    out, run_dir = finished
    CORRUPTIONS[corruption](run_dir / name)
    with pytest.raises(DamagedFileError, match=r"00004\.(csv|json).*madutils repair") as error:
        _run(out, 6)
    assert error.value.generation == 4
    assert len(str(error.value).splitlines()) == 1
    # the good prefix is still read, without any error or write
    before = _snapshot(run_dir)
    pd.testing.assert_frame_equal(_run(out, 3).table, reference[reference.generation <= 3])
    assert _snapshot(run_dir) == before
    # the repair drops generation 4 and every later one; the rerun recomputes them
    assert repair(run_dir) == [4, 5, 6]
    assert not (run_dir / "results.csv").exists()
    pd.testing.assert_frame_equal(_run(out, 6).table, reference)


def test_rows_are_checked_beyond_the_checksum(finished):
    """Rows rewritten with a matching checksum (edited by hand) are still checked."""
    out, run_dir = finished
    rows = run_dir / "generations" / "00005.csv"
    _truncate_rows(rows)
    manifest_path = run_dir / "generations" / "00005.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["generations/00005.csv"] = madutils.files.file_digest(rows)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DamagedFileError, match=r"00005\.csv has \d+ rows; its manifest recorded"):
        RunStore.existing(run_dir).results(6)


@pytest.mark.parametrize("corruption", ["garbage", "empty", "missing", "half line"])
def test_a_damaged_state_is_named_and_repaired(finished, reference, corruption):
    out, run_dir = finished
    CORRUPTIONS[corruption](run_dir / "states" / "00006.pt")
    # reading what is stored needs no state
    pd.testing.assert_frame_equal(_run(out, 6).table, reference)
    with pytest.raises(DamagedFileError, match=r"states/00006\.pt.*madutils repair"):
        _run(out, 8)
    assert repair(run_dir) == [6]  # the state of generation 5 is kept: only 6 is redone
    longer = _run(out, 8).table
    pd.testing.assert_frame_equal(longer[longer.generation <= 6], reference)


@pytest.mark.parametrize("corruption", ["garbage", "empty", "missing"])
def test_a_damaged_pool_file_is_named(tmp_path, corruption):
    changes = dict(family="synthetic_augmentation", n_real=None, synthetic_source="accumulate")
    out = tmp_path / "runs"
    run_dir = _run(out, 4, changes=changes).run_dir
    CORRUPTIONS[corruption](run_dir / "pool" / "00002.pt")
    with pytest.raises(DamagedFileError, match=r"pool/00002\.pt"):
        _run(out, 5, changes=changes)
    assert repair(run_dir) == [2, 3, 4]
    assert len(_run(out, 5, changes=changes).table.generation.unique()) == 5


@pytest.mark.parametrize("corruption", ["garbage", "empty", "half line"])
def test_damaged_samples_are_named_when_read(tmp_path, corruption):
    result = run_loop(_config(3), tmp_path, progress=False, keep_samples=True)
    CORRUPTIONS[corruption](result.run_dir / "samples" / "00002.pt")
    with pytest.raises(DamagedFileError, match=r"samples/00002\.pt"):
        result.snapshots([1, 2])
    assert result.snapshots([1])[1].shape == (FRESH["n_ini"], FRESH["dim"])


@pytest.mark.parametrize("corruption", ["garbage", "empty", "missing", "half line"])
def test_a_damaged_config_is_named_and_rewritten_by_repair(finished, reference, corruption):
    out, run_dir = finished
    CORRUPTIONS[corruption](run_dir / "config.json")
    if corruption == "missing":  # a directory without config.json is a new run: it resumes
        pd.testing.assert_frame_equal(_run(out, 6).table, reference)
        return
    with pytest.raises(DamagedFileError, match=r"config\.json"):
        _run(out, 6)
    with pytest.raises(DamagedFileError, match="--repair"):
        repair(run_dir)
    pd.testing.assert_frame_equal(_run(out, 6, repair=True).table, reference)
    assert json.loads((run_dir / "config.json").read_text())["settings"]["dim"] == 20


def test_repair_of_a_sound_run_drops_nothing(finished):
    out, run_dir = finished
    before = _snapshot(run_dir)
    assert repair(run_dir) == []
    assert _snapshot(run_dir) == before


def test_repair_refuses_what_is_not_a_run_directory(tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        repair(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        repair(tmp_path / "nowhere")


def test_large_states_are_kept_every_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(madutils.results, "SMALL_STATE_BYTES", 0)
    run_dir = _run(tmp_path, 12).run_dir
    assert sorted(p.name for p in (run_dir / "states").iterdir()) == ["00010.pt", "00012.pt"]
    (run_dir / "generations" / "00012.csv").write_text("garbage\n")
    assert repair(run_dir) == [11, 12]  # back to the kept state of generation 10


# -- code changes ------------------------------------------------------------------------------
@pytest.fixture
def other_code(monkeypatch):
    """Make this process look like another version of the package (another source hash)."""

    def switch():
        fake = "f" * 64
        monkeypatch.setattr(madutils.provenance, "source_hash", lambda: fake)
        monkeypatch.setattr(madutils.results, "source_hash", lambda: fake)
        return fake

    return switch


def test_extending_with_other_code_is_refused(finished, other_code, reference):
    out, run_dir = finished
    recorded = json.loads((run_dir / "config.json").read_text())["created"]["provenance"]
    before = _snapshot(run_dir)
    other_code()
    with pytest.raises(CodeChangedError) as error:
        _run(out, 10)
    message = str(error.value)
    assert "generations 1-6" in message and "--allow-code-change" in message
    assert recorded["code"]["source"][:10] in message and "ffffffffff" in message
    assert _snapshot(run_dir) == before  # nothing written
    # a shorter or equal rerun reads the stored generations (they are one code's results)
    pd.testing.assert_frame_equal(_run(out, 6).table, reference)


def test_allow_code_change_records_the_mix(finished, other_code):
    out, run_dir = finished
    old = json.loads((run_dir / "generations" / "00006.json").read_text())["provenance"]["code"]
    fake = other_code()
    table = _run(out, 8, allow_code_change=True).table
    codes = table.groupby("generation")["code"].unique()
    assert all(list(codes[g]) == [old["source"][:10]] for g in range(1, 7))
    assert all(list(codes[g]) == [fake[:10]] for g in (7, 8))
    history = RunStore.existing(run_dir).history()
    assert [entry["generations"] for entry in history] == [[1, 6], [7, 8]]
    assert history[0]["code_changed_from"] is None
    assert history[1]["code_changed_from"] == old
    assert history[1]["provenance"]["code"]["source"] == fake
    manifest = json.loads((run_dir / "generations" / "00008.json").read_text())
    assert manifest["provenance"]["code"]["source"] == fake


def test_provenance_names_the_code_and_machine(finished):
    _, run_dir = finished
    manifest = json.loads((run_dir / "generations" / "00003.json").read_text())
    recorded = manifest["provenance"]
    assert recorded["code"] == madutils.provenance.code_identity()
    assert recorded["code"]["source"] == madutils.provenance.source_hash()
    assert recorded["device"] == "cpu"
    assert recorded["git_dirty"] in (True, False, None)
    assert set(manifest["seconds"]) == {"fit_seconds", "measure_seconds"}


# -- shorter reruns, concurrent shrink and extend ----------------------------------------------
def test_a_shorter_rerun_reads_the_prefix_and_writes_nothing(finished, reference):
    out, run_dir = finished
    before = _snapshot(run_dir)
    short = _run(out, 4)
    pd.testing.assert_frame_equal(short.table, reference[reference.generation <= 4])
    assert list(short.timings.generation) == [1, 2, 3, 4]
    assert _snapshot(run_dir) == before
    assert len(pd.read_csv(run_dir / "results.csv")) == len(reference)


def test_the_settings_are_written_once(finished):
    out, run_dir = finished
    config = (run_dir / "config.json").read_bytes()
    _run(out, 8)
    _run(out, 3)
    assert (run_dir / "config.json").read_bytes() == config
    assert json.loads(config)["settings"]["generations"] == 6  # as first asked, never rewritten


# -- temporary files, full disks ---------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporary_files_are_removed_when_a_run_opens(finished):
    out, run_dir = finished
    host = os.uname().nodename
    dead = run_dir / "states" / f".00006.pt~{host}~{_dead_pid()}~x1.tmp"
    alive = run_dir / "generations" / f".00007.csv~{host}~{os.getpid()}~x2.tmp"
    old_style = run_dir / ".state.pt.ab12cd.tmp"
    fresh_old_style = run_dir / ".results.csv.ef34gh.tmp"
    for path in (dead, alive, old_style, fresh_old_style):
        path.write_text("partial")
    long_ago = time.time() - 2 * 24 * 3600
    os.utime(old_style, (long_ago, long_ago))
    _run(out, 6)
    assert not dead.exists() and not old_style.exists()
    assert alive.exists() and fresh_old_style.exists()  # a live writer's file is left alone
    assert clean_stale_temporaries(run_dir) == []


def test_a_full_disk_names_the_file_and_keeps_finished_generations(tmp_path, monkeypatch):
    original = torch.save
    calls = []

    def full_at_generation_3(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_at_generation_3)
    with pytest.raises(
        DiskFullError,
        match=r"cannot write .*states/00003\.pt: the file system is full \([\d.]+ [kMGT]?B free\)",
    ) as e:
        _run(tmp_path, 5)
    assert isinstance(e.value, OSError)
    monkeypatch.setattr(torch, "save", original)
    (run_dir,) = tmp_path.glob("fresh_data-*")
    assert not list(run_dir.rglob("*.tmp"))  # no partial file left
    assert RunStore.existing(run_dir).check().finished == 2
    assert len(_run(tmp_path, 5).table.generation.unique()) == 5


def test_a_torch_write_error_on_a_full_disk_is_a_disk_full_error(tmp_path, monkeypatch):
    # torch's zip writer loses the errno: "unexpected pos 169920 vs 169808"
    monkeypatch.setattr(madutils.files.shutil, "disk_usage", lambda p: SimpleNamespace(free=0))

    def failing(tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 1 vs 2")

    with pytest.raises(DiskFullError, match="file system is full"):
        atomic_write(tmp_path / "x.pt", failing)


# -- cache entries -----------------------------------------------------------------------------
@pytest.mark.parametrize("corruption", ["garbage", "empty", "half line", "checksum missing"])
def test_a_bad_cache_entry_is_rebuilt_with_a_warning(tmp_path, corruption):
    entry = CacheEntry(tmp_path / "weights.pt")
    entry.save(lambda tmp: torch.save({"w": torch.arange(1000.0)}, tmp))
    assert entry.load()["w"].sum() == 499500.0
    if corruption == "checksum missing":
        entry.checksum_path.unlink()
    else:
        CORRUPTIONS[corruption](entry.path)
    with pytest.warns(RuntimeWarning, match=r"cache entry .*weights\.pt .* rebuilt"):
        assert entry.load() is None
    assert not entry.path.exists() and not entry.checksum_path.exists()


def test_a_cache_entry_with_unexpected_content_is_rebuilt(tmp_path):
    entry = CacheEntry(tmp_path / "weights.pt")
    entry.save(lambda tmp: torch.save({"other": 1}, tmp))
    with pytest.warns(RuntimeWarning, match="does not hold what was expected"):
        assert entry.load(check=lambda content: content["w"]) is None


# -- SIGKILL at every write point --------------------------------------------------------------
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import madutils.files as files
    from madutils.loops.batched import run_loop
    from madutils.loops.config import LoopConfig

    target, count = int(sys.argv[2]), [0]
    original = files.atomic_write

    def killing_write(path, write):
        count[0] += 1
        if count[0] == target:  # die half-way: the temporary file written, not renamed
            def half(tmp):
                write(tmp)
                os.kill(os.getpid(), signal.SIGKILL)
            return original(path, half)
        return original(path, write)

    files.atomic_write = killing_write
    import madutils.results
    madutils.results.atomic_write = killing_write
    config = LoopConfig(**{**%(fresh)r, "seeds": %(seeds)d, "generations": 2})
    run_loop(config, sys.argv[1], progress=False)
    print("no kill", count[0])
    """
)


def test_sigkill_at_every_write_point_loses_only_the_generation_in_progress(tmp_path):
    reference = _run(tmp_path / "reference", 2).table
    script = tmp_path / "killer.py"
    script.write_text(_KILLER % {"fresh": FRESH, "seeds": SEEDS})
    # config, history, then per generation: rows, state, manifest; then the two summaries
    writes = 2 + 2 * 3 + 2
    for target in range(1, writes + 1):
        out = tmp_path / f"killed-{target}"
        done = subprocess.run(
            [sys.executable, str(script), str(out), str(target)], capture_output=True, text=True
        )
        assert done.returncode == -signal.SIGKILL, (target, done.stdout, done.stderr[-500:])
        resumed = _run(out, 2).table
        pd.testing.assert_frame_equal(resumed, reference, check_dtype=False)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "whole"), str(writes + 1)],
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["no", "kill", str(writes)]  # the count of write points
