"""Atomic file output (temp file in the same folder, then ``os.replace``) and small run-state I/O.

A crash mid-write leaves either the old file or the new one, never a truncated file, so a run can
always be resumed from its last checkpoint.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results should read like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def _jsonable(x: Any):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (tuple, set)):
        return list(x)
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def atomic_write_json(path: str | Path, obj: Any, sort_keys: bool = True) -> Path:
    """JSON (numpy scalars/arrays converted, NaN written as NaN) written atomically; ``sort_keys=False``
    keeps the dicts' insertion order (e.g. the column order of result rows)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable, sort_keys=sort_keys))


def atomic_save_with(path: str | Path, save: Callable[[io.BytesIO], None]) -> Path:
    """Run ``save(buffer)`` (e.g. ``model.save``) into memory, then write the bytes atomically."""
    buf = io.BytesIO()
    save(buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_savefig(fig, path: str | Path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | Path) -> Any:
    with open(path) as f:
        return json.load(f)
