"""What the generators' configs share: the checks of their ``__post_init__`` (each returns the error lines to
collect, [] when the value is fine) and the ImportError of a generator whose optional extra is missing."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def kinds_errors(kinds: Sequence[str], known: Sequence[str]) -> list[str]:
    """``kinds`` must be non-empty and name only ``known`` agent kinds."""
    if kinds and all(k in known for k in kinds):
        return []
    return [f"kinds: need known kinds {known}, got {kinds!r}"]


def integer_errors(name: str, value, low: int, *, none_ok: bool = False) -> list[str]:
    """``value`` (the field ``name``) must be an integer >= ``low``, or None when ``none_ok``."""
    if (none_ok and value is None) or (isinstance(value, (int, np.integer)) and value >= low):
        return []
    return [f"{name}: must be {'None or ' if none_ok else ''}an integer >= {low}, got {value!r}"]


def missing_extra(module: str, what: str, extra: str) -> ImportError:
    """The ImportError of ``module`` when its optional ``what`` is not installed (``pip install extra``)."""
    return ImportError(f"{module} needs the optional {what}: pip install {extra}")
