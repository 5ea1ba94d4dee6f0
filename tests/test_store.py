"""Run directories: contents, resuming after an interruption, refusing to overwrite."""

import json

import pandas as pd
import pytest

from madutils.loops import batched as loops
from madutils.loops.batched import run_loop
from madutils.loops.config import LoopConfig
from madutils.results import run_name

CONFIGS = {
    "gaussian-last": LoopConfig(family="fresh_data", n_ini=20, n_real=10, n_synthetic=10, seeds=3),
    "gaussian-accumulate": LoopConfig(
        family="synthetic_augmentation", n_ini=20, seeds=2, synthetic_source="accumulate"
    ),
    "statistics-accumulate": LoopConfig(
        family="fully_synthetic",
        n_ini=20,
        seeds=2,
        synthetic_source="accumulate",
        path="statistics",
    ),
    "gaussian-memory": LoopConfig(n_ini=20, seeds=2, synthetic_source="memory", memory=2),
    "mixture": LoopConfig(model="mixture", n_ini=60, n_components=3, seeds=2),
}


def test_run_directory_contents(tmp_path):
    result = run_loop(LoopConfig(generations=3, seeds=2, n_ini=20), tmp_path, progress=False)
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path
    config = json.loads((run_dir / "config.json").read_text())
    assert config["settings"]["n_ini"] == 20 and config["settings"]["metrics"]
    created = config["created"]["provenance"]
    assert {"code", "git_commit", "git_dirty", "python", "device"} <= set(created)
    assert {"madutils", "source", "torch", "numpy"} == set(created["code"])
    for generation in (1, 2, 3):
        manifest = json.loads((run_dir / "generations" / f"{generation:05d}.json").read_text())
        assert manifest["rows"] == 2 * len(config["settings"]["metrics"])
        assert manifest["provenance"]["code"] == created["code"]
        assert f"generations/{generation:05d}.csv" in manifest["files"]
    states = sorted(p.name for p in (run_dir / "states").iterdir())
    assert states == ["00001.pt", "00002.pt", "00003.pt"]  # small states are all kept
    assert [p.name for p in (run_dir / "history").iterdir()] == ["00001-00003.json"]
    table = pd.read_csv(run_dir / "results.csv")
    pd.testing.assert_frame_equal(table, result.table, check_dtype=False)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_interrupted_run_resumes_to_the_same_table(name, tmp_path, monkeypatch):
    config = CONFIGS[name]
    full = run_loop(
        LoopConfig(**{**config.to_dict(), "generations": 6}), tmp_path / "a", progress=False
    ).table

    original_step = loops.BatchedLoop.step

    def failing_step(self, generation):
        if generation == 4:
            raise Interrupt  # dies in the middle of generation 4
        return original_step(self, generation)

    monkeypatch.setattr(loops.BatchedLoop, "step", failing_step)
    with pytest.raises(Interrupt):
        run_loop(
            LoopConfig(**{**config.to_dict(), "generations": 6}), tmp_path / "b", progress=False
        )
    monkeypatch.setattr(loops.BatchedLoop, "step", original_step)

    calls = []
    monkeypatch.setattr(
        loops.BatchedLoop, "step", lambda self, g: calls.append(g) or original_step(self, g)
    )
    resumed = run_loop(
        LoopConfig(**{**config.to_dict(), "generations": 6}), tmp_path / "b", progress=False
    )
    assert calls == [4, 5, 6]  # only the generation in progress was lost
    pd.testing.assert_frame_equal(resumed.table, full, check_dtype=False)
    on_disk = pd.read_csv(resumed.run_dir / "results.csv")
    pd.testing.assert_frame_equal(on_disk, full, check_dtype=False)


def test_more_generations_extend_the_same_run(tmp_path):
    short = run_loop(LoopConfig(generations=3, n_ini=20, seeds=2), tmp_path, progress=False)
    longer = run_loop(LoopConfig(generations=5, n_ini=20, seeds=2), tmp_path, progress=False)
    direct = run_loop(LoopConfig(generations=5, n_ini=20, seeds=2), progress=False)
    assert short.run_dir == longer.run_dir
    pd.testing.assert_frame_equal(longer.table, direct.table, check_dtype=False)


def test_different_settings_get_different_directories(tmp_path):
    a = run_loop(LoopConfig(generations=2, lam=1.0, n_ini=20), tmp_path, progress=False)
    b = run_loop(LoopConfig(generations=2, lam=0.5, n_ini=20), tmp_path, progress=False)
    c = run_loop(LoopConfig(generations=2, lam=1.0, n_ini=20, seed=1), tmp_path, progress=False)
    assert len({a.run_dir, b.run_dir, c.run_dir}) == 3
    before = (a.run_dir / "results.csv").read_text()
    run_loop(LoopConfig(generations=2, lam=1.0, n_ini=20), tmp_path, progress=False)
    assert (a.run_dir / "results.csv").read_text() == before


def test_a_directory_with_other_settings_is_refused(tmp_path):
    config = LoopConfig(generations=2, n_ini=20)
    result = run_loop(config, tmp_path, progress=False)
    config_path = result.run_dir / "config.json"
    saved = json.loads(config_path.read_text())
    saved["settings"]["lam"] = 0.5  # the directory now claims other settings
    config_path.write_text(json.dumps(saved))
    before = (result.run_dir / "results.csv").read_text()
    with pytest.raises(FileExistsError, match="lam"):
        run_loop(config, tmp_path, progress=False)
    assert (result.run_dir / "results.csv").read_text() == before


def test_run_name_is_readable_and_ignores_generations():
    a = LoopConfig(generations=3).resolved().to_dict()
    b = LoopConfig(generations=9).resolved().to_dict()
    assert run_name(a) == run_name(b)
    assert run_name(a).startswith("fully_synthetic-gaussian-lam1-")
