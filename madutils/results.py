"""The results store: one directory per run, the source of truth for everything it holds.

A run directory (its name: a readable prefix and a hash of the settings, all but
``generations``, so a rerun asking for more generations extends the run) holds

- ``config.json``: the settings and the provenance of the invocation that created the run;
  written once, never rewritten;
- ``generations/NNNNN.csv``: the rows of generation ``NNNNN``, columns :data:`COLUMNS`
  (``seed`` is the run's seed, ``replicate`` the replicate's index, ``code`` the first ten
  hex digits of the source hash of the code that computed the row);
- ``generations/NNNNN.json``: the generation's **manifest**, written atomically after every
  other file of the generation: the SHA-256 of each of its files, its row count, replicates
  and metrics, its seconds per phase, and its :func:`~madutils.provenance.provenance`
  (madutils version, source hash, git commit and dirty flag, torch, NumPy, Python, device).
  A generation is finished exactly when its manifest is there and everything in it checks;
- ``states/NNNNN.pt``: what the loop needs to continue after generation ``NNNNN``: the
  latest one always, earlier ones when they are small (:data:`SMALL_STATE_BYTES`) or their
  generation is a multiple of the loop's ``state_interval``
  (:attr:`madutils.loops.driver.Loop.state_interval`), so that a repair can go back to the
  generation before a damaged one;
- ``models/``, ``samples/``, ``pool/``: per-generation files of the loops, listed in their
  generation's manifest;
- ``history/FROM-TO.json``: one entry per invocation that added generations: which, when,
  with which code, and whether it continued a run written by other code;
- ``results.csv``, ``timings.csv``: the whole table and the seconds per generation, for
  people and other programs (madutils itself reads the per-generation files).

What the store guarantees:

- a rerun with the same settings resumes after the last finished generation; one asking
  for fewer (or as many) generations reads that prefix and writes nothing;
- every file is checked when read; a bad one is a
  :class:`~madutils.errors.DamagedFileError` that names it, and :func:`repair` (``madutils
  repair RUN_DIR``, or ``--repair``) drops its generation and every later one, so the rerun
  recomputes them;
- generations computed by other code are never silently mixed: extending or resuming with
  another :func:`~madutils.provenance.code_identity` is a
  :class:`~madutils.errors.CodeChangedError` unless ``allow_code_change=True``, which records
  the mix in the history (the rows' ``code`` column shows it);
- a directory holding other settings is refused (``FileExistsError``), never overwritten.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from madutils.errors import CodeChangedError, DamagedFileError
from madutils.files import (
    atomic_write,
    clean_stale_temporaries,
    file_digest,
    load_csv,
    load_json,
    load_torch,
)
from madutils.provenance import code_identity, describe_code, provenance, source_hash

__all__ = [
    "COLUMNS",
    "SMALL_STATE_BYTES",
    "STORE_FORMAT",
    "RunCheck",
    "RunStore",
    "atomic_write",
    "check_out",
    "code_label",
    "repair",
    "run_name",
]

#: Columns of every results table, in order.
COLUMNS = ["family", "model", "lam", "seed", "replicate", "generation", "metric", "value", "code"]
#: The per-generation files a run may store besides its rows and states: model weights,
#: sample snapshots, the accumulated pool's draws and the curated synthetic images.
FILE_KINDS = ("models", "samples", "pool", "curated")

#: Version of the run-directory layout, part of every run's name: a directory written by an
#: older layout is never resumed by newer code (2: the ``replicate`` column; 3: manifests,
#: per-generation provenance and states, the ``code`` column).
STORE_FORMAT = 3

#: A loop state of at most this many bytes is kept for every generation; larger ones only
#: every ``state_interval`` generations (and the latest).
SMALL_STATE_BYTES = 2**20

# settings that may differ between a run and its continuation
_NOT_IDENTITY = ("generations",)
_GENERATION_FILE = re.compile(r"^(\d{5})\.(csv|json|pt)$")


def code_label() -> str:
    """The ``code`` column's value for rows computed now: ten hex digits of the source hash."""
    return source_hash()[:10]


def _identity(settings: dict) -> dict:
    return {k: v for k, v in sorted(settings.items()) if k not in _NOT_IDENTITY}


def run_name(settings: dict) -> str:
    """Directory name of a run: readable prefix plus a hash of its identifying settings."""
    named = {"store_format": STORE_FORMAT, **_identity(settings)}
    digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()
    return f"{settings['family']}-{settings['model']}-lam{settings['lam']:g}-{digest[:10]}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, content: dict) -> None:
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


@dataclass
class RunCheck:
    """What :meth:`RunStore.check` found.

    Attributes
    ----------
    finished : int
        The last generation of the run's good prefix: generations ``1..finished`` all have a
        manifest whose files check.
    resumable : int
        The last generation ``<= finished`` whose state is kept and checks (0: start from
        scratch).
    damaged : DamagedFileError or None
        The first problem after the good prefix (its ``generation`` is ``finished + 1``),
        or ``None``.
    stored : int
        The highest generation with a manifest (finished or not).
    """

    finished: int
    resumable: int
    damaged: DamagedFileError | None
    stored: int

    @property
    def sound(self) -> bool:
        """Whether the run can continue after its last finished generation as it is."""
        return self.damaged is None and self.resumable == self.finished


class RunStore:
    """A run directory: settings, per-generation rows, files and states, all checked.

    Use :meth:`open` to create or reopen the directory for some settings, or
    :meth:`existing` to read one.
    """

    def __init__(self, path: Path, settings: dict):
        self.path = Path(path)
        self.settings = settings

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, out: str | os.PathLike, settings: dict, *, repair: bool = False) -> RunStore:
        """Create the run directory for ``settings`` under ``out``, or reopen it to resume.

        Parameters
        ----------
        out : str or Path
            The folder that holds run directories.
        settings : dict
            The run's resolved settings.
        repair : bool
            Rewrite a damaged ``config.json`` from ``settings`` (the directory's name is their
            hash, so they are the run's settings).

        Raises
        ------
        ValueError
            If ``out`` is empty or names a file.
        FileExistsError
            If the directory exists with different settings (its results are never replaced).
        DamagedFileError
            If ``config.json`` cannot be read (and ``repair`` is false).
        """
        check_out(out)
        path = Path(out) / run_name(settings)
        store = cls(path, settings)
        config_path = path / "config.json"
        if path.is_dir():
            clean_stale_temporaries(path)
        if config_path.exists():
            try:
                saved = store._read_config()
            except DamagedFileError:
                if not repair:
                    raise
                saved = None
            if saved is not None:
                _check_same_settings(path, saved["settings"], settings)
                return store
        store._write_config()
        return store

    @classmethod
    def existing(cls, path: str | os.PathLike) -> RunStore:
        """Open a run directory to read it (its settings come from its ``config.json``)."""
        path = Path(path)
        if not (path / "config.json").exists():
            raise ValueError(f"{path} is not a run directory (it has no config.json)")
        store = cls(path, {})
        store.settings = store._read_config()["settings"]
        return store

    def _read_config(self) -> dict:
        config_path = self.path / "config.json"
        saved = load_json(config_path)
        if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
            raise DamagedFileError(
                f"{config_path} holds no settings: rerun the loop with --repair to rewrite it",
                path=config_path,
            )
        return saved

    def _write_config(self) -> None:
        content = {
            "store_format": STORE_FORMAT,
            "settings": self.settings,
            "created": {"time": _now(), "provenance": provenance(self._device())},
        }
        _write_json(self.path / "config.json", content)

    def _device(self) -> str:
        return str(self.settings.get("device", "cpu"))

    # -- paths ---------------------------------------------------------------------------------
    def rows_path(self, generation: int) -> Path:
        return self.path / "generations" / f"{generation:05d}.csv"

    def manifest_path(self, generation: int) -> Path:
        return self.path / "generations" / f"{generation:05d}.json"

    def state_path(self, generation: int) -> Path:
        return self.path / "states" / f"{generation:05d}.pt"

    def file_path(self, kind: str, generation: int) -> Path:
        """``<run>/<kind>/NNNNN.pt`` (kinds: :data:`FILE_KINDS`)."""
        return self.path / kind / f"{generation:05d}.pt"

    def _relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.path.resolve()).as_posix()

    # -- checking ------------------------------------------------------------------------------
    def manifest(self, generation: int) -> dict:
        """The manifest of a generation (:class:`DamagedFileError` when missing or bad)."""
        path = self.manifest_path(generation)
        content = load_json(path, generation=generation)
        required = ("generation", "files", "rows", "replicates", "metrics", "provenance")
        if not isinstance(content, dict) or any(k not in content for k in required):
            raise DamagedFileError(f"{path} is not a manifest", path=path, generation=generation)
        return content

    def _check_files(self, generation: int, manifest: dict) -> None:
        for relative, digest in manifest["files"].items():
            path = self.path / relative
            if not path.exists():
                raise DamagedFileError(f"{path} is missing", path=path, generation=generation)
            if file_digest(path) != digest:
                raise DamagedFileError(
                    f"{path} does not match the checksum its manifest recorded "
                    "(truncated, changed or copied while being written)",
                    path=path,
                    generation=generation,
                )

    def stored_generations(self) -> list[int]:
        """Generations with a manifest file, in order (finished or damaged)."""
        folder = self.path / "generations"
        if not folder.is_dir():
            return []
        return sorted(
            int(m.group(1))
            for p in folder.iterdir()
            if (m := _GENERATION_FILE.match(p.name)) and m.group(2) == "json"
        )

    def check(self) -> RunCheck:
        """Verify every stored generation, in order; see :class:`RunCheck`."""
        stored = self.stored_generations()
        last = max(stored, default=0)
        finished, damaged = 0, None
        for generation in range(1, last + 1):
            try:
                self._check_files(generation, self.manifest(generation))
            except DamagedFileError as error:
                damaged = error
                break
            finished = generation
        resumable = next((g for g in range(finished, 0, -1) if self._state_checks(g)), 0)
        return RunCheck(finished=finished, resumable=resumable, damaged=damaged, stored=last)

    def _state_checks(self, generation: int) -> bool:
        path = self.state_path(generation)
        if not path.exists():
            return False
        recorded = self.manifest(generation).get("state", {})
        return recorded.get(self._relative(path)) == file_digest(path)

    def damaged_error(self, check: RunCheck) -> DamagedFileError:
        """The error for a damaged run, with the way out in its message."""
        error = check.damaged or DamagedFileError(
            f"{self.state_path(check.finished)} (the loop state after generation "
            f"{check.finished}) is missing or damaged",
            path=self.state_path(check.finished),
            generation=check.finished,
        )
        dropped = _span(check.resumable + 1, max(check.stored, check.finished))
        return DamagedFileError(
            f"{error}; run `madutils repair {self.path}` (or rerun with --repair) to drop "
            f"generation(s) {dropped} so that the rerun recomputes them",
            path=error.path,
            generation=error.generation,
        )

    # -- code versions -------------------------------------------------------------------------
    def check_code(self, check: RunCheck, *, allow_code_change: bool) -> dict | None:
        """Refuse to add generations computed by other code than the stored ones.

        Returns the stored code identity when it differs and ``allow_code_change`` is true,
        ``None`` when the code is the same (or the run is new).

        Raises
        ------
        CodeChangedError
            When the code differs and ``allow_code_change`` is false.
        """
        if check.finished == 0:
            return None
        stored = self.manifest(check.finished)["provenance"]["code"]
        current = code_identity()
        if stored == current:
            return None
        if allow_code_change:
            return stored
        raise CodeChangedError(
            f"{self.path} holds generations 1-{check.finished} computed by {describe_code(stored)}"
            f"; this is {describe_code(current)}: continuing would mix the two. Use a new "
            "output folder (--out), or pass --allow-code-change (allow_code_change=True) to "
            "continue and record the mix"
        )

    def record_invocation(self, first: int, last: int, code_changed_from: dict | None) -> None:
        """Append an entry to the history: generations ``first..last`` are being added."""
        entry = {
            "generations": [first, last],
            "started": _now(),
            "provenance": provenance(self._device()),
            "code_changed_from": code_changed_from,
        }
        _write_json(self.path / "history" / f"{first:05d}-{last:05d}.json", entry)

    def history(self) -> list[dict]:
        """Every invocation that added generations, oldest first."""
        folder = self.path / "history"
        entries = [load_json(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        return sorted(entries, key=lambda e: (e["started"], e["generations"]))

    # -- writing -------------------------------------------------------------------------------
    def save_generation(
        self,
        generation: int,
        rows: pd.DataFrame,
        state: dict,
        *,
        files: list[Path] = (),
        seconds: dict | None = None,
        state_interval: int = 1,
    ) -> None:
        """Record a finished generation: rows, state, then the manifest that marks it done.

        Parameters
        ----------
        generation : int
        rows : DataFrame
            Its rows, columns :data:`COLUMNS`.
        state : dict
            What the loop needs to continue after it.
        files : list of Path
            The other files the generation wrote (models, samples, pool), already on disk.
        seconds : dict
            Seconds per phase (``fit_seconds``, ...).
        state_interval : int
            The previous generation's state is kept when its generation is a multiple of
            this or it is small (:data:`SMALL_STATE_BYTES`); otherwise it is removed once
            this generation is recorded.
        """
        rows_path = self.rows_path(generation)
        atomic_write(rows_path, lambda tmp: rows[COLUMNS].to_csv(tmp, index=False))
        state_path = self.state_path(generation)
        atomic_write(state_path, lambda tmp: torch.save(state, tmp))
        paths = [rows_path, *files]
        manifest = {
            "generation": generation,
            "rows": len(rows),
            "replicates": int(rows["replicate"].nunique()),
            "metrics": list(dict.fromkeys(rows["metric"])),
            "seconds": dict(seconds or {}),
            "finished": _now(),
            "provenance": provenance(self._device()),
            "files": {self._relative(p): file_digest(p) for p in paths},
            "state": {self._relative(state_path): file_digest(state_path)},
        }
        _write_json(self.manifest_path(generation), manifest)
        previous = self.state_path(generation - 1)
        large = previous.exists() and previous.stat().st_size > SMALL_STATE_BYTES
        if large and (generation - 1) % state_interval:
            previous.unlink(missing_ok=True)

    def save_file(self, kind: str, generation: int, content) -> Path:
        """Write a generation's ``models``/``samples``/``pool`` file (``torch.save``,
        atomically); return its path, to be listed in the generation's manifest."""
        return atomic_write(self.file_path(kind, generation), lambda tmp: torch.save(content, tmp))

    def write_summary(self, table: pd.DataFrame, timings: pd.DataFrame) -> None:
        """Write ``results.csv`` and ``timings.csv`` atomically."""
        atomic_write(self.path / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
        atomic_write(self.path / "timings.csv", lambda tmp: timings.to_csv(tmp, index=False))

    # -- reading -------------------------------------------------------------------------------
    def load_state(self, generation: int, device: str = "cpu") -> dict:
        """The loop state after ``generation`` (checked against its manifest)."""
        path = self.state_path(generation)
        if not self._state_checks(generation):
            raise DamagedFileError(
                f"{path} is missing or does not match the checksum its manifest recorded",
                path=path,
                generation=generation,
            )
        return load_torch(path, weights_only=False, map_location=device, generation=generation)

    def _check_file(self, generation: int, path: Path, manifest: dict | None = None) -> None:
        """Check one file of a generation against the checksum its manifest recorded."""
        manifest = self.manifest(generation) if manifest is None else manifest
        relative = self._relative(path)
        if relative not in manifest["files"]:
            raise DamagedFileError(
                f"{path} is not listed in {self.manifest_path(generation)}",
                path=path,
                generation=generation,
            )
        self._check_files(generation, {"files": {relative: manifest["files"][relative]}})

    def load_file(self, kind: str, generation: int, **load_options):
        """A generation's ``models``/``samples``/``pool`` file, checked, then loaded."""
        path = self.file_path(kind, generation)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        self._check_file(generation, path)
        return load_torch(path, generation=generation, **load_options)

    def rows(self, generation: int) -> pd.DataFrame:
        """The rows of one finished generation, checked against its manifest."""
        path = self.rows_path(generation)
        manifest = self.manifest(generation)
        self._check_file(generation, path, manifest)
        frame = load_csv(path, generation=generation)
        problem = _row_problem(frame, generation, manifest)
        if problem:
            raise DamagedFileError(f"{path} {problem}", path=path, generation=generation)
        return frame

    def results(self, up_to: int) -> pd.DataFrame:
        """Rows of generations ``1..up_to`` as one long-form table."""
        frames = [self.rows(t) for t in range(1, up_to + 1)]
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        return pd.concat(frames, ignore_index=True)[COLUMNS]

    def timings(self, up_to: int) -> list[dict]:
        """Seconds per phase of generations ``1..up_to``, from their manifests."""
        return [
            {"generation": t, **self.manifest(t).get("seconds", {})} for t in range(1, up_to + 1)
        ]

    # -- repairing -----------------------------------------------------------------------------
    def repair(self) -> list[int]:
        """Drop the first damaged generation and every later one; return the dropped ones.

        When the state of the generation before the damage is not kept, the generations
        since the last kept state are dropped too (the loop must continue from a state).
        Nothing is dropped from a run whose stored generations all check. ``results.csv``
        and ``timings.csv`` are removed with any dropped generation (the rerun writes them).
        """
        clean_stale_temporaries(self.path)
        check = self.check()
        # files of generations after the last manifest (a crash before it was written)
        orphans = self._generation_numbers() - set(range(1, check.stored + 1))
        if check.sound:
            for generation in sorted(orphans):
                self._remove_generation(generation)
            return []
        dropped = list(range(check.resumable + 1, max(check.stored, check.finished) + 1))
        for generation in sorted(set(dropped) | orphans, reverse=True):
            self._remove_generation(generation)
        for name in ("results.csv", "timings.csv"):
            (self.path / name).unlink(missing_ok=True)
        return dropped

    def _generation_numbers(self) -> set[int]:
        numbers = set()
        for kind in ("generations", "states", *FILE_KINDS):
            folder = self.path / kind
            names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
            numbers |= {int(m.group(1)) for n in names if (m := _GENERATION_FILE.match(n))}
        return numbers

    def _remove_generation(self, generation: int) -> None:
        # the manifest first: a crash part-way leaves an unfinished generation, not a bad one
        self.manifest_path(generation).unlink(missing_ok=True)
        self.rows_path(generation).unlink(missing_ok=True)
        self.state_path(generation).unlink(missing_ok=True)
        for kind in FILE_KINDS:
            self.file_path(kind, generation).unlink(missing_ok=True)


def _row_problem(frame: pd.DataFrame, generation: int, manifest: dict) -> str | None:
    """What is wrong with a generation's rows, or ``None``."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        return f"lacks the column(s) {', '.join(missing)}"
    if len(frame) != manifest["rows"]:
        return f"has {len(frame)} rows; its manifest recorded {manifest['rows']}"
    expected = manifest["replicates"] * len(manifest["metrics"])
    if len(frame) != expected:
        return (
            f"has {len(frame)} rows; {manifest['replicates']} replicates × "
            f"{len(manifest['metrics'])} metrics make {expected}"
        )
    keys = ["family", "model", "lam", "seed", "replicate", "generation", "metric", "code"]
    if frame[keys].isna().any().any():
        return "has rows with empty key columns"
    if not (frame["generation"] == generation).all():
        return f"has rows of other generations than {generation}"
    if set(frame["metric"]) != set(manifest["metrics"]):
        return "holds other metrics than its manifest recorded"
    return None


def _span(first: int, last: int) -> str:
    return str(first) if first >= last else f"{first}-{last}"


def check_out(out) -> None:
    """Refuse an ``out`` that cannot hold run directories (empty, or a file)."""
    if str(out) == "":
        raise ValueError("out must name a folder for the run directories; got ''")
    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"out must be a folder for the run directories; {out} is a file")


def _check_same_settings(path: Path, saved: dict, settings: dict) -> None:
    if _identity(saved) == _identity(settings):
        return
    changed = sorted(
        k
        for k in set(saved) | set(settings)
        if k not in _NOT_IDENTITY and saved.get(k) != settings.get(k)
    )
    raise FileExistsError(
        f"{path} holds a run with other settings ({', '.join(changed)} differ); "
        "its results are left untouched: choose another output directory"
    )


def repair(run_dir: str | os.PathLike) -> list[int]:
    """Check a run directory and drop its first damaged generation and every later one.

    Parameters
    ----------
    run_dir : str or Path
        A run directory (holding ``config.json``).

    Returns
    -------
    list of int
        The generations removed (empty when every stored generation checks); rerunning the
        same command recomputes them.

    Raises
    ------
    ValueError
        If ``run_dir`` is not a run directory.
    DamagedFileError
        If its ``config.json`` is damaged (rerun the loop with ``--repair``: the settings
        of the command rewrite it).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"{path} is not a run directory (no such folder)")
    try:
        store = RunStore.existing(path)
    except DamagedFileError as error:
        raise DamagedFileError(
            f"{error}; rerun the loop command that made the run with --repair to rewrite it",
            path=error.path,
        ) from None
    return store.repair()
