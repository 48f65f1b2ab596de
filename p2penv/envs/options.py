"""The env constructors' options, made from the config dataclasses: signature and ``help()`` text.

``auction_v0.parallel_env(**options)`` takes the fields of ``MarketConfig`` (``dlmp_v0``: ``DlmpConfig``)
as keywords. ``document`` gives such a constructor an explicit ``__signature__`` (every option with its
type and default, so ``help()``, ``inspect.signature`` and IDEs show them) and a docstring listing each
option with its unit and meaning, read from the config class itself: the comment after a field
(``dt_h: float = 1.0  # step length, hours``) or its ``name: text`` entry in the class docstring. A
renamed or added field therefore shows up without a second list to keep in step.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Callable

_FIELD_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+)$")
_DOC_ENTRY = re.compile(r"^([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*):\s+(.*)$")


def option_docs(cls: type) -> dict[str, str]:
    """Field name -> its description: the class docstring's ``name: text`` entry, else the field's comment."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(base):
            continue
        try:
            lines = inspect.getsource(base).splitlines()
        except (OSError, TypeError):  # no source (frozen, zipped): signatures still work, texts are empty
            lines = []
        for line in lines:
            m = _FIELD_COMMENT.match(line)
            if m and not m[2].startswith("type:") and m[1] in base.__dataclass_fields__:
                docs[m[1]] = m[2].strip()
        entry: list[str] = []
        for line in (inspect.getdoc(base) or "").splitlines() + [""]:
            m = _DOC_ENTRY.match(line)
            if m or not line.startswith(" "):
                if entry:
                    for name in entry[0].split(", "):
                        docs[name] = " ".join(entry[1:])
                entry = [m[1], m[2]] if m else []
            elif entry:
                entry.append(line.strip())
    return docs


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def option_parameters(cls: type) -> list[inspect.Parameter]:
    """Keyword-only parameters, one per field of the config dataclass ``cls``, with type and default."""
    hints = typing.get_type_hints(cls)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_default(f),
                              annotation=hints.get(f.name, inspect.Parameter.empty))
            for f in dataclasses.fields(cls)]


def document(fn: Callable, cls: type, summary: str, leading: tuple[inspect.Parameter, ...] = (),
             trailing: tuple[tuple[inspect.Parameter, str], ...] = (), returns=inspect.Signature.empty) -> Callable:
    """Give ``fn(**options)`` the signature ``(*leading, *, <fields of cls>, *trailing)`` and a docstring:
    ``summary`` and a list of every option with its default and description."""
    fields = option_parameters(cls)
    docs = option_docs(cls)
    params = [*leading, *fields, *(p for p, _ in trailing)]
    fn.__signature__ = inspect.Signature(params, return_annotation=returns)
    rows = [(p, docs.get(p.name, "")) for p in fields] + list(trailing)
    lines = [summary, "", f"Options (keywords; the fields of ``{cls.__name__}``, checked when the env is built, "
                          "or ``config=`` a whole one):", ""]
    for p, text in rows:
        ann = inspect.formatannotation(p.annotation) if p.annotation is not inspect.Parameter.empty else ""
        lines.append(f"    {p.name}: {ann} = {p.default!r}")
        if text:
            lines.append(f"        {text}")
    fn.__doc__ = "\n".join(lines) + "\n"
    return fn
