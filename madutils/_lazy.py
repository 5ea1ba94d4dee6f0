"""Lazy package exports: a name is imported from its submodule the first time it is used.

The packages whose submodules load heavy libraries (diffusers for the image models) export
their names this way, so ``from madutils.loops import LoopConfig`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``package``: ``name`` comes from
    ``package.<where[name]>``."""

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
