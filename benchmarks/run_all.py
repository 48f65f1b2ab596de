"""Run every benchmark script in this folder (``make bench``); each writes its JSON to results/.

``python -m benchmarks.run_all [--quick] [--only vector scaling ...]``: ``--quick`` passes ``--quick`` to
the scripts whose ``main(argv)`` takes arguments (bench_vector, bench_scaling, bench_dlmp_env; their
smoke runs write ``*_quick.json`` and leave the full results alone) and skips the others; ``--only``
runs the named ones (``vector`` or ``bench_vector``).
Scripts include bench_vector (batched vector envs, SB3 through ``p2penv.agents.sb3_vector``) and
bench_scaling (vector env vs E and N, clearing vs book size; ``docs/figures/scaling.png``).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys


def main(argv: list[str] | None = None) -> int:
    import benchmarks

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smoke runs of the scripts that have one")
    ap.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    args = ap.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if args.only:
        want = {w if w.startswith("bench_") else f"bench_{w}" for w in args.only}
        unknown = sorted(want - set(names))
        if unknown:
            ap.error(f"--only: unknown benchmark(s) {unknown}; known {names}")
        names = [n for n in names if n in want]
    for name in names:
        mod = importlib.import_module(f"benchmarks.{name}")
        takes_argv = bool(inspect.signature(mod.main).parameters)
        if args.quick and not takes_argv:
            print(f"== {name}: skipped (no --quick mode)", flush=True)
            continue
        print(f"== {name}", flush=True)
        saved = sys.argv
        sys.argv = [f"benchmarks.{name}"]  # scripts that parse sys.argv must not see run_all's options
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
