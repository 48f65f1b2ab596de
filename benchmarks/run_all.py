"""Run every benchmark script in this folder (``make bench``); each writes its JSON to results/."""
from __future__ import annotations

import importlib
import pkgutil
import sys


def main() -> int:
    import benchmarks

    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
