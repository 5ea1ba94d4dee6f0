"""Files that are written atomically, checked when read, and named in every error.

Everything madutils keeps on disk (a run's rows, states, samples and models; the feature
network's weights; the first generation shared by the runs of a sweep) goes through this
module:

- :func:`atomic_write` writes to a temporary file beside the target and renames it over the
  target, so a reader sees the old file or the new one, never half of one; a full file system
  is a :class:`~madutils.errors.DiskFullError` naming the file and the free space;
- :func:`file_digest` is the checksum a manifest keeps (SHA-256 of the bytes);
- :func:`load_torch`, :func:`load_json` and :func:`load_csv` read a file and turn every way it
  can be bad (missing, empty, truncated, garbage) into a
  :class:`~madutils.errors.DamagedFileError` whose message names the file;
- :func:`clean_stale_temporaries` removes the temporary files a killed writer left behind,
  never those of a writer that is still running;
- :class:`CacheEntry` is a cached file with a checksum beside it (``NAME.sha256``): a bad or
  unchecked entry is reported with a warning naming it and rebuilt; :meth:`CacheEntry.lock`
  keeps two processes from building the same entry at once.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from madutils.errors import DamagedFileError, DiskFullError

__all__ = [
    "CacheEntry",
    "atomic_write",
    "clean_stale_temporaries",
    "file_digest",
    "free_space",
    "human_bytes",
    "load_csv",
    "load_json",
    "load_torch",
]

_TMP_SUFFIX = ".tmp"
# a temporary file of a writer on another host is stale after this long (its pid means nothing)
_FOREIGN_STALE_SECONDS = 24 * 3600


def _tmp_prefix(path: Path) -> str:
    # the writer's host and pid are in the name, so a stale file can be told from a live one
    return f".{path.name}~{socket.gethostname()}~{os.getpid()}~"


def human_bytes(n_bytes: int) -> str:
    """A number of bytes for people: ``0 B``, ``512 kB``, ``3.2 GB`` (powers of 1000)."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"


def free_space(path) -> str:
    """The free space of the file system that holds ``path`` (or would hold it), for people:
    ``"3.2 GB"``, or ``"unknown space"``."""
    path = Path(os.fsdecode(path) if path else ".").absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return human_bytes(shutil.disk_usage(candidate).free)
            except OSError:
                break
    return "unknown space"


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Write a file atomically: ``write(tmp_path)``, then rename the temporary file over it.

    Parameters
    ----------
    path : str or Path
        The file; missing parent folders are created.
    write : callable
        Called with the temporary file's path (a ``str``); must write the whole content.

    Returns
    -------
    Path

    Raises
    ------
    DiskFullError
        When the file system is full (or over quota); the message names the file and the
        free space. The target is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX)
        os.close(fd)
    except OSError as error:
        _raise_if_full(error, path)
        raise
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        # torch.save reports a full disk as RuntimeError ("unexpected pos ...")
        _raise_if_full(error, path)
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _raise_if_full(error: BaseException, path: Path) -> None:
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full and isinstance(error, RuntimeError):
        # torch's writer loses the errno; ask the file system whether it is full
        try:
            full = shutil.disk_usage(path.parent).free < 2**20
        except OSError:
            full = False
    if full:
        raise DiskFullError(
            f"cannot write {path}: the file system is full ({free_space(path)} free); "
            "free some space and rerun (finished generations are kept)"
        ) from None


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _damaged(path: Path, what: str, generation: int | None = None) -> DamagedFileError:
    return DamagedFileError(f"{path} {what}", path=path, generation=generation)


def _check_present(path: Path, generation: int | None) -> None:
    if not path.exists():
        raise _damaged(path, "is missing", generation)
    if path.stat().st_size == 0:
        raise _damaged(path, "is empty", generation)


def load_torch(
    path: str | os.PathLike,
    *,
    weights_only: bool = True,
    map_location="cpu",
    generation: int | None = None,
):
    """``torch.load`` a file; a missing, empty, truncated or garbage file is a
    :class:`~madutils.errors.DamagedFileError` naming it."""
    path = Path(path)
    _check_present(path, generation)
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as error:  # torch raises RuntimeError, pickle errors, EOFError, ...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _damaged(path, f"cannot be read ({reason[:120]})", generation) from None


def load_json(path: str | os.PathLike, *, generation: int | None = None):
    """Read a JSON file; a missing, empty or malformed file is a
    :class:`~madutils.errors.DamagedFileError` naming it."""
    path = Path(path)
    _check_present(path, generation)
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged(path, f"is not valid JSON ({error})", generation) from None


def load_csv(path: str | os.PathLike, *, generation: int | None = None) -> pd.DataFrame:
    """Read a CSV file; a missing, empty or unparsable file is a
    :class:`~madutils.errors.DamagedFileError` naming it."""
    path = Path(path)
    _check_present(path, generation)
    try:
        return pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        reason = str(error).strip().splitlines()[0]
        raise _damaged(path, f"is not a readable table ({reason})", generation) from None


def _writer(name: str) -> tuple[str, int] | None:
    """The host and pid a temporary file's name records, or ``None`` for a foreign name."""
    parts = name.removesuffix(_TMP_SUFFIX).rsplit("~", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _is_stale(path: Path, now: float) -> bool:
    writer = _writer(path.name)
    if writer is None:  # made by an older version: judged by age
        return now - path.stat().st_mtime > _FOREIGN_STALE_SECONDS
    host, pid = writer
    if host != socket.gethostname():
        return now - path.stat().st_mtime > _FOREIGN_STALE_SECONDS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of killed writers under ``folder``; return them.

    A temporary file is stale when the process that made it (on this host) no longer runs,
    or, for a writer on another host (or a file of an older version), when it is older than
    a day. Files of running writers (a concurrent identical run) are left alone.
    """
    removed = []
    now = time.time()
    for path in Path(folder).rglob(f".*{_TMP_SUFFIX}"):
        try:
            if _is_stale(path, now):
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # its writer renamed or removed it meanwhile
    return removed


class CacheEntry:
    """A cached file with its checksum beside it (``NAME.sha256``).

    :meth:`load` returns the content only when the checksum matches and the file reads;
    otherwise it warns, naming the file and what is wrong, removes the entry and returns
    ``None`` so the caller rebuilds it. :meth:`save` writes the file, then its checksum
    (both atomically), so a crash between the two leaves an entry that is rebuilt.

    Parameters
    ----------
    path : str or Path
        The cached file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checksum_path = self.path.with_name(self.path.name + ".sha256")

    def load(self, *, check=None, **load_options):
        """The cached content, or ``None`` (with a warning when an entry was there but bad).

        Parameters
        ----------
        check : callable, optional
            Called with the loaded content; raise ``KeyError``, ``ValueError`` or
            ``TypeError`` when it is not what the caller expects.
        **load_options
            Passed to :func:`load_torch`.
        """
        if not self.path.exists():
            return None
        problem = None
        if not self.checksum_path.exists():
            problem = f"has no checksum file {self.checksum_path.name}"
        elif self.checksum_path.read_text().strip() != file_digest(self.path):
            problem = "does not match its checksum"
        else:
            try:
                content = load_torch(self.path, **load_options)
                if check is not None:
                    check(content)
                return content
            except DamagedFileError as error:
                problem = str(error).removeprefix(str(self.path)).strip()
            except (KeyError, ValueError, TypeError, RuntimeError) as error:
                problem = f"does not hold what was expected ({error})"
        warnings.warn(
            f"cache entry {self.path} {problem}: it is removed and rebuilt",
            RuntimeWarning,
            stacklevel=2,
        )
        self.remove()
        return None

    def save(self, write) -> Path:
        """Write the entry with ``write(tmp_path)``, then its checksum."""
        atomic_write(self.path, write)
        digest = file_digest(self.path)
        atomic_write(self.checksum_path, lambda tmp: Path(tmp).write_text(digest + "\n"))
        return self.path

    def lock(self):
        """A context manager holding the entry's lock (``NAME.lock``): check, build and save
        inside it, and a second process waits, then loads what the first one saved."""
        from madutils.locks import file_lock

        return file_lock(self.path.with_name(self.path.name + ".lock"))

    def remove(self) -> None:
        """Delete the file and its checksum (whichever exists)."""
        for path in (self.checksum_path, self.path):
            path.unlink(missing_ok=True)
