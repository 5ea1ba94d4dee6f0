"""The exceptions madutils raises for problems a user can act on.

Every one of them carries a message that names the file or the parameter and says what to do;
the command line prints that message on one line and exits with status 2 (no traceback).

- ``ValueError`` (Python's own): a bad setting or argument; the message names the parameter
  and what is allowed.
- :class:`StoreError` and its subclasses: a run directory, or a cache file, that cannot be
  used as it is.
"""

from __future__ import annotations

__all__ = ["CodeChangedError", "DamagedFileError", "DiskFullError", "StoreError", "SweepError"]


class StoreError(RuntimeError):
    """A run directory or a cache entry that cannot be used as it is."""


class DamagedFileError(StoreError):
    """A stored file is missing, truncated, garbage, or does not match its checksum.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    generation : int or None
        The first generation whose files are bad, when the file belongs to one
        (``madutils repair`` drops that generation and every later one).
    """

    def __init__(self, message: str, path=None, generation: int | None = None):
        super().__init__(message)
        self.path = path
        self.generation = generation


class CodeChangedError(StoreError):
    """A run would be resumed or extended by code other than the code that wrote it."""


class DiskFullError(StoreError, OSError):
    """A file could not be written because its file system is full."""


class SweepError(RuntimeError):
    """Runs of a sweep raised; every other run finished and is kept.

    Attributes
    ----------
    failures : list of (dict, BaseException)
        The settings of each failed run and its error.
    sweep : madutils.analysis.sweep.Sweep
        The runs that finished.
    """

    def __init__(self, message: str, failures=(), sweep=None):
        super().__init__(message)
        self.failures = list(failures)
        self.sweep = sweep
