"""Run every benchmark script in this folder (``make bench``, ``p2penv bench``); each writes its JSON to results/.

``p2penv bench [--quick] [--only vector scaling ...] [--out DIR] [--list]`` from any folder, or
``python -m benchmarks.run_all ...`` from the repository root. ``--quick`` passes ``--quick`` to the
scripts whose ``main(argv)`` takes arguments (bench_vector, bench_scaling, bench_dlmp_env; their smoke
runs write ``*_quick.json`` and leave the full results alone) and skips the others; ``--only`` runs the
named ones (``vector`` or ``bench_vector``); ``--out DIR`` writes the JSON files (and bench_scaling's
figure) there instead of ``results/`` and ``docs/figures/``.
Scripts include bench_vector (batched vector envs, SB3 through ``p2penv.agents.sb3_vector``) and
bench_scaling (vector env vs E and N, clearing vs book size; ``docs/figures/scaling.png``).

The scripts import each other relatively (``from .timing import ...``), never as ``benchmarks``: TorchRL
installs a top-level ``benchmarks`` package of its own, so ``p2penv bench`` loads this folder by its
file path under the name ``p2penv_benchmarks`` (``p2penv.cli.benchmarks_package``).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    """The benchmark scripts of this folder (``bench_*.py``), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules([HERE]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="p2penv bench")
    ap.add_argument("--quick", action="store_true", help="smoke runs of the scripts that have one")
    ap.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    ap.add_argument("--out", help="folder for the JSON files (default: results/ next to the scripts)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    todo = names()
    if args.list:
        print("\n".join(todo))
        return 0
    if args.only:
        want = {w if w.startswith("bench_") else f"bench_{w}" for w in args.only}
        unknown = sorted(want - set(todo))
        if unknown:
            ap.error(f"--only: unknown benchmark(s) {unknown}; known {todo}")
        todo = [n for n in todo if n in want]
    for name in todo:
        mod = importlib.import_module(f"{__package__}.{name}")
        takes_argv = bool(inspect.signature(mod.main).parameters)
        if args.quick and not takes_argv:
            print(f"== {name}: skipped (no --quick mode)", flush=True)
            continue
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            for attr in ("OUT", "FIG"):  # where each script writes, redirected
                if hasattr(mod, attr):
                    setattr(mod, attr, os.path.join(args.out, os.path.basename(getattr(mod, attr))))
        print(f"== {name}", flush=True)
        saved = sys.argv
        sys.argv = [f"{__package__}.{name}"]  # scripts that parse sys.argv must not see run_all's options
        try:
            if takes_argv:
                mod.main(["--quick"] if args.quick else [])
            else:
                mod.main()
        finally:
            sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
