"""The results store: one directory per run, resumable, never overwritten by other settings.

A run directory holds

- ``config.json``: every setting, plus the madutils, torch, NumPy and Python versions and the
  git commit of the working tree when there is one;
- ``results.csv``: the long-form table, one row per (replicate, generation, metric), with the
  columns :data:`COLUMNS` (``seed`` is the run's seed, ``replicate`` the replicate's index);
- ``generations/NNNNN.csv``: the rows of each finished generation, written atomically;
- ``state.pt``: what the loop needs to continue after the last finished generation;
- ``timings.csv``: seconds each generation spent fitting (and sampling) and measuring;
- ``pool/NNNNN.pt``: samples a generation added to an accumulated synthetic pool;
- ``samples/NNNNN.pt``: ``n_eval`` samples of one replicate's model per generation, for
  pictures, when the loop runs with ``keep_samples=True``.

The directory name is derived from a hash of the settings (all but ``generations``, so a rerun
asking for more generations extends the run). A rerun with the same settings resumes after the
last finished generation; a directory whose ``config.json`` holds other settings is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["COLUMNS", "STORE_FORMAT", "RunStore", "atomic_write", "run_name"]

#: Columns of every results table, in order.
COLUMNS = ["family", "model", "lam", "seed", "replicate", "generation", "metric", "value"]

#: Version of the run-directory layout, part of every run's name: a directory written by an
#: older layout is never resumed by newer code (2: the ``replicate`` column).
STORE_FORMAT = 2

# settings that may differ between a run and its continuation
_NOT_IDENTITY = ("generations",)


def atomic_write(path: Path, write) -> None:
    """Write a file atomically: ``write(tmp_path)`` then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _identity(settings: dict) -> dict:
    return {k: v for k, v in sorted(settings.items()) if k not in _NOT_IDENTITY}


def run_name(settings: dict) -> str:
    """Directory name of a run: readable prefix plus a hash of its identifying settings."""
    named = {"store_format": STORE_FORMAT, **_identity(settings)}
    digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()
    return f"{settings['family']}-{settings['model']}-lam{settings['lam']:g}-{digest[:10]}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _environment() -> dict:
    from madutils import __version__
    from madutils.allocator import tuning_state

    return {
        "madutils": __version__,
        "malloc_tuning": tuning_state(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }


class RunStore:
    """A run directory: settings, per-generation rows, loop state.

    Use :meth:`open` to create or reopen the directory for some settings.
    """

    def __init__(self, path: Path, settings: dict):
        self.path = Path(path)
        self.settings = settings

    @classmethod
    def open(cls, out: str | os.PathLike, settings: dict) -> RunStore:
        """Create the run directory for ``settings`` under ``out``, or reopen it to resume.

        Raises
        ------
        FileExistsError
            If the directory exists with different settings (its results are never replaced).
        """
        path = Path(out) / run_name(settings)
        config_path = path / "config.json"
        if config_path.exists():
            saved = json.loads(config_path.read_text())
            if _identity(saved["settings"]) != _identity(settings):
                changed = sorted(
                    k
                    for k in set(saved["settings"]) | set(settings)
                    if k not in _NOT_IDENTITY and saved["settings"].get(k) != settings.get(k)
                )
                raise FileExistsError(
                    f"{path} holds a run with other settings ({', '.join(changed)} differ); "
                    "its results are left untouched: choose another output directory"
                )
        store = cls(path, settings)
        store._write_config()
        return store

    def _write_config(self) -> None:
        content = {"settings": self.settings, "environment": _environment()}
        text = json.dumps(content, indent=2, sort_keys=True) + "\n"
        atomic_write(self.path / "config.json", lambda tmp: Path(tmp).write_text(text))

    # -- per-generation rows and state ---------------------------------------------------------
    def _rows_path(self, generation: int) -> Path:
        return self.path / "generations" / f"{generation:05d}.csv"

    def save_generation(self, generation: int, rows: pd.DataFrame, state: dict) -> None:
        """Record a finished generation: its rows first, then the state that marks it done."""
        atomic_write(self._rows_path(generation), lambda tmp: rows.to_csv(tmp, index=False))
        atomic_write(self.path / "state.pt", lambda tmp: torch.save(state, tmp))

    def load_state(self, device: str = "cpu") -> dict | None:
        """The state after the last finished generation, or ``None`` for a new run."""
        path = self.path / "state.pt"
        if not path.exists():
            return None
        return torch.load(path, map_location=device, weights_only=False)

    def save_pool(self, generation: int, samples: torch.Tensor) -> None:
        """Keep the synthetic samples a generation added to an accumulated pool."""
        path = self.path / "pool" / f"{generation:05d}.pt"
        atomic_write(path, lambda tmp: torch.save(samples.cpu(), tmp))

    def load_pool(self, generation: int) -> torch.Tensor:
        return torch.load(self.path / "pool" / f"{generation:05d}.pt", weights_only=True)

    def save_snapshot(self, generation: int, samples: torch.Tensor) -> None:
        """Keep samples of one generation's model for pictures (``samples/NNNNN.pt``)."""
        path = self.path / "samples" / f"{generation:05d}.pt"
        atomic_write(path, lambda tmp: torch.save(samples.cpu(), tmp))

    def load_snapshot(self, generation: int) -> torch.Tensor:
        path = self.path / "samples" / f"{generation:05d}.pt"
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: run the loop with keep_samples=True to keep samples"
            )
        return torch.load(path, weights_only=True)

    def results(self, up_to: int) -> pd.DataFrame:
        """Rows of generations ``1..up_to`` as one long-form table."""
        frames = [pd.read_csv(self._rows_path(t)) for t in range(1, up_to + 1)]
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        return pd.concat(frames, ignore_index=True)[COLUMNS]

    def write_timings(self, timings: pd.DataFrame) -> Path:
        """Write ``timings.csv`` (seconds per generation) atomically; return its path."""
        path = self.path / "timings.csv"
        atomic_write(path, lambda tmp: timings.to_csv(tmp, index=False))
        return path

    def write_results(self, table: pd.DataFrame) -> Path:
        """Write ``results.csv`` atomically; return its path."""
        path = self.path / "results.csv"
        atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
        return path
