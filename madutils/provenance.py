"""Which code computed a result: the package's version, source, commit, and its environment.

:func:`provenance` is recorded with every generation of every stored run; its ``code`` part
(:func:`code_identity`) is what must not change within a run: the madutils version, a hash of
the package's own source files (every ``.py`` and ``.yaml`` file under ``madutils/``, so an
uncommitted edit counts), and the torch and NumPy versions whose kernels the numbers come
from. The git commit and whether the tree was dirty are recorded too, for people; they are
not compared (a commit that touches only tests or notebooks changes no result).
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

__all__ = ["code_identity", "describe_code", "provenance", "source_hash"]

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_SUFFIXES = (".py", ".yaml")


@functools.cache
def source_hash() -> str:
    """SHA-256 over the package's source files (relative path and bytes of each), as hex."""
    digest = hashlib.sha256()
    files = sorted(p for p in _PACKAGE.rglob("*") if p.suffix in _SOURCE_SUFFIXES and p.is_file())
    for path in files:
        relative = path.relative_to(_PACKAGE).as_posix()
        if "__pycache__" in relative:
            continue
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=_PACKAGE
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def _git_state() -> tuple[str | None, bool | None]:
    """The commit of the work tree holding the package, and whether the tree is dirty.

    ``(None, None)`` when the package is not inside a git work tree (an installed wheel).
    """
    top = _git("rev-parse", "--show-toplevel")
    if not top or not _PACKAGE.is_relative_to(Path(top).resolve()):
        return None, None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def code_identity() -> dict:
    """What must be the same for two generations to belong to one run (see module doc)."""
    from madutils import __version__

    return {
        "madutils": __version__,
        "source": source_hash(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def describe_code(code: dict) -> str:
    """A short human description of a :func:`code_identity`, for messages."""
    return (
        f"madutils {code.get('madutils')} (source {str(code.get('source'))[:10]}), "
        f"torch {code.get('torch')}, NumPy {code.get('numpy')}"
    )


def provenance(device: str = "cpu") -> dict:
    """Everything recorded about the code and machine that compute a generation.

    Parameters
    ----------
    device : str
        The torch device the run computes on.

    Returns
    -------
    dict
        ``code`` (:func:`code_identity`), ``git_commit``, ``git_dirty``, ``python``,
        ``platform``, ``device`` (with the GPU's name on CUDA), ``torch_threads`` and
        ``malloc_tuning``.
    """
    from madutils.allocator import tuning_state

    commit, dirty = _git_state()
    device_name = str(device)
    if device_name.startswith("cuda") and torch.cuda.is_available():
        device_name = f"{device_name} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "code": code_identity(),
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name,
        "torch_threads": torch.get_num_threads(),
        "malloc_tuning": tuning_state(),
    }
