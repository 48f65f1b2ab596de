"""Trainer configs from plain dicts (the ``train`` object of a run.json or a ``--config`` file)."""
from __future__ import annotations

from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def config_from_dict(cls: type[T], d: Mapping[str, Any], tuple_fields: tuple[str, ...] = ()) -> T:
    """``cls(**d)`` for a dataclass config: unknown keys are a ValueError naming them and the known
    ones; JSON lists of ``tuple_fields`` become tuples (the configs are frozen and hashable)."""
    known = set(cls.__dataclass_fields__)
    bad = sorted(set(d) - known)
    if bad:
        raise ValueError(f"{cls.__name__}: unknown option(s) {bad}; known {sorted(known)}")
    d = dict(d)
    for k in tuple_fields:
        if d.get(k) is not None:
            d[k] = tuple(d[k])
    return cls(**d)


def check_choice(field: str, value: Any, choices) -> None:
    """A config check: ValueError ``FIELD: expected one of CHOICES, got VALUE`` unless ``value`` is one of
    ``choices``."""
    if value not in choices:
        raise ValueError(f"{field}: expected one of {choices}, got {value!r}")
