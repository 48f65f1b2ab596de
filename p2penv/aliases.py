"""Deprecated older names of renamed public objects: one module-level ``__getattr__`` for every module.

A module that renamed a public object keeps the old name working, with a ``DeprecationWarning`` that
points at the caller's line (``from module import old`` included)::

    __getattr__ = deprecated_aliases(__name__, {"stage_nash_gap": "stage_nash_conv"}, globals())

The old name returns the new object itself. The names and their meanings: docs/glossary.md. This
module imports nothing from the package, so every layer may use it.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

SINCE = "0.1.0 (issue 19)"  # when the current aliases were deprecated


def deprecated_aliases(module: str, renamed: Mapping[str, str], namespace: Mapping[str, Any],
                       since: str = SINCE) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``renamed`` (old name -> new name) from ``namespace`` (the
    module's ``globals()``) with a ``DeprecationWarning``; any other name raises AttributeError."""
    renamed = dict(renamed)

    def __getattr__(name: str) -> Any:
        if name in renamed:
            new = renamed[name]
            warnings.warn(f"{module}.{name} is deprecated since {since}: use {new}, the same object "
                          "(docs/glossary.md)", DeprecationWarning, stacklevel=2)
            return namespace[new]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
