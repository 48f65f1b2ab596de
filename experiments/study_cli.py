"""The command line every study shares, parsed one way: ``--quick``, ``--out``, ``--resume``, ``--docs`` and
``--ray``, the study's config fields overridden from its options, and a bad checkpoint or config ending in one
line ``PROG: error: ...`` with exit status 2 (``p2penv experiment NAME`` runs these ``main`` functions).

    ap = study_parser(__doc__, prog, "results/market_power", docs="also write docs/results/market_power.json")
    ap.add_argument("--seeds", type=int, nargs="*")
    a = ap.parse_args(argv)
    cfg = configured(ap, QUICK if a.quick else MarketPowerConfig(), **overrides(a, "seeds"))
    return run_study(ap, run, cfg, a.out, resume=a.resume, ray=a.ray, docs=a.docs)

An option that was renamed keeps its old name as a hidden alias (``add_renamed_option``): same dest, not in
the help, a ``FutureWarning`` when used (shown on the command line, where ``DeprecationWarning`` is not).
"""
from __future__ import annotations

import argparse
import warnings
from dataclasses import replace
from typing import Any, Callable

from .checkpoints import CheckpointError
from .dispatch import add_ray_option

RESUME_HELP = "reuse the rows checkpointed in --out by an interrupted run"


def study_parser(doc: str, prog: str | None, out: str, *, quick: str = "tiny budget (seconds)",
                 resume: str | None = RESUME_HELP, docs: str | None = None, ray: str | None = "rows",
                 **parser_options: Any) -> argparse.ArgumentParser:
    """Parser with the shared options: ``--quick`` (help ``quick``), ``--out`` (default ``out``), ``--resume``
    (unless ``resume`` is None), ``--docs`` (when ``docs`` gives its help) and ``--ray`` (``ray`` names the unit
    each Ray task computes; None: no Ray option). The description is the first line of ``doc``."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0], **parser_options)
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--out", default=out, help="output folder (CSV, JSON, figures, row checkpoints)")
    if resume is not None:
        ap.add_argument("--resume", action="store_true", help=resume)
    if docs is not None:
        ap.add_argument("--docs", action="store_true", help=docs)
    if ray is not None:
        add_ray_option(ap, ray)
    return ap


def overrides(args: argparse.Namespace, *names: str) -> dict:
    """Config fields given on the command line, by option dest: lists become tuples; unset options (None, an
    empty list, False) are left out."""
    out = {}
    for name in names:
        v = getattr(args, name)
        if v is None or v is False or (isinstance(v, list) and not v):
            continue
        out[name] = tuple(v) if isinstance(v, list) else v
    return out


def check_known(field: str, values, known) -> None:
    """A config's ``__post_init__`` check of a tuple of names (methods, settings, ...): ValueError
    ``FIELD: unknown [...]; known (...)`` when ``values`` holds names outside ``known``."""
    bad = [v for v in values if v not in known]
    if bad:
        raise ValueError(f"{field}: unknown {bad}; known {tuple(known)}")


class _DeprecatedAlias(argparse.Action):
    """The old name of a renamed option: stores its values as the new name does, with a ``FutureWarning`` (the
    deprecation category Python shows to end users by default; ``DeprecationWarning`` is hidden on the command
    line)."""

    def __init__(self, option_strings, dest, new_option: str, **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new_option = new_option

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn(f"{parser.prog}: {option_string} is deprecated since 0.1.0 (issue 19): use {self.new_option}",
                      FutureWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_renamed_option(ap: argparse.ArgumentParser, new: str, old: str, *, dest: str, **kwargs: Any) -> None:
    """The option ``new`` (``kwargs``: nargs, choices, help, ...) storing into ``dest``, and ``old``, its name
    before, as a hidden deprecated alias: the same ``dest`` and values, ``help=argparse.SUPPRESS``, a
    ``FutureWarning`` when given (``--scenarios`` -> ``--feeder-settings``, issue 19)."""
    ap.add_argument(new, dest=dest, **kwargs)
    ap.add_argument(old, dest=dest, action=_DeprecatedAlias, new_option=new, help=argparse.SUPPRESS,
                    **{k: v for k, v in kwargs.items() if k != "help"})


def check_seeds(seeds) -> None:
    """A config's ``__post_init__`` check that it runs at least one seed (ValueError naming ``seeds``)."""
    if not seeds:
        raise ValueError("seeds: need at least one seed")


def configured(ap: argparse.ArgumentParser, base: Any, **over: Any) -> Any:
    """``dataclasses.replace(base, **over)``; a field the config rejects ends in one line naming it."""
    try:
        return replace(base, **over) if over else base
    except ValueError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


def run_study(ap: argparse.ArgumentParser, run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``run(*args, **kwargs)``; a checkpoint that cannot be resumed ends in one line naming its file."""
    try:
        return run(*args, **kwargs)
    except CheckpointError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")
