"""Locks that keep two processes from working on the same run directory or cache entry.

Two sweeps started at once on one results store (or two workers of one sweep given the same
run) must never run the same run directory at the same time, and must never train the same
cache entry (the feature network, a first generation) twice into one file. :func:`file_lock`
takes an exclusive ``flock`` on a lock file beside the thing it protects; the second process
waits until the first is done, then finds the run finished (and reads it) or the cache entry
written (and loads it).

The kernel releases a ``flock`` when the process holding it exits, however it exits, so a
killed process (``kill -9``, a worker lost with its node) never leaves a lock stuck. The lock
files themselves stay (empty, a few bytes of metadata) and are reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from madutils.errors import StoreError

__all__ = ["file_lock"]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, wait: bool = True):
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Parameters
    ----------
    path : str or Path
        The lock file; its folder is created.
    wait : bool
        Wait for another holder to finish (default); otherwise raise at once.

    Raises
    ------
    StoreError
        With ``wait=False``, when another process holds the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise StoreError(f"{path} is held by another process (a run in progress)") from None
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
