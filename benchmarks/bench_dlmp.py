"""Time DLMP clearing on the 33-bus feeder with 32 agents (one order per load bus).

Compares the warm-started highspy re-solve of ``DlmpMarket`` (``reuse_basis=False``: HiGHS every solve)
with the kept basis (the default: certified, dual simplex pivots, HiGHS when both fail) and scipy
``linprog(method='highs')`` on the same LP. Writes median microseconds per solve to
benchmarks/results/dlmp.json. The random books and loads here change the LP more than an env step does.
Run from the repo root: python -m benchmarks.bench_dlmp [--n 500]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import highspy
import numpy as np
import scipy

from .timing import median_us, write_json
from p2penv.network import ieee33
from p2penv.network.dlmp import DlmpMarket

OUT = str(Path(__file__).parent / "results" / "dlmp.json")


def _books(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    # Prices around the 0.12 $/kWh wholesale price, 0-100 kWh per step, everyone active.
    return [(rng.uniform(0.05, 0.3, 32), rng.uniform(0, 100, 32), rng.choice([-1, 1], 32)) for _ in range(n)]


def main() -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    f = ieee33()
    lam = 0.12
    load = f.p_load_kw * np.random.default_rng(1).uniform(0.5, 1.2, (args.n, 33))
    books = _books(args.n)
    m = DlmpMarket(f, f.non_root, reuse_basis=False)
    m.clear(*books[0], lam, f.p_load_kw, f.q_load_kvar)  # first solve builds the HiGHS model
    items = list(zip(books, load))
    kept = DlmpMarket(f, f.non_root)
    kept.clear(*books[0], lam, f.p_load_kw, f.q_load_kvar)
    kept_clear = median_us(lambda it: kept.clear(*it[0], lam, it[1], f.q_load_kvar), items)
    kept_drift = median_us(lambda it: kept.clear(*books[0], lam, f.p_load_kw * (1 + 0.01 * np.sin(it[1][1])),
                                                 f.q_load_kvar), items)
    kept_stats = kept.basis_cache.stats
    warm = median_us(lambda it: m.clear(*it[0], lam, it[1], f.q_load_kvar), items)
    # Same-book re-solve with a 1 % load change: the typical env step with a nearby basis.
    drift = median_us(lambda it: m.clear(*books[0], lam, f.p_load_kw * (1 + 0.01 * np.sin(it[1][1])),
                                          f.q_load_kvar), items)

    def solver_only(it):
        m._prepare(*it[0], lam, it[1], f.q_load_kvar)
        t0 = time.perf_counter()
        m._solve_highs()
        return time.perf_counter() - t0

    run_only = float(np.median([solver_only(it) for it in items]) * 1e6)
    cold = median_us(lambda it: DlmpMarket(f, f.non_root).clear(*it[0], lam, it[1], f.q_load_kvar),
                      items[: max(20, args.n // 10)])
    lp = median_us(lambda it: m.clear(*it[0], lam, it[1], f.q_load_kvar, solver="linprog"),
                    items[: max(20, args.n // 5)])
    out = {
        "case": "ieee33, 32 agents (one per load bus), losses linearised at base load, no line ratings, "
                "v in [0.90, 1.10]",
        "n_solves": args.n,
        "median_us": {
            "kept_basis_clear": kept_clear,
            "kept_basis_clear_same_book_load_drift": kept_drift,
            "highspy_warm_clear": warm,
            "highspy_warm_clear_same_book_load_drift": drift,
            "highspy_warm_solve_only": run_only,
            "highspy_cold_build_and_clear": cold,
            "scipy_linprog_clear": lp,
        },
        "kept_basis_answers": {"solves": kept_stats.solves, "cached": kept_stats.cached, "pivoted": kept_stats.pivoted,
                               "highs_warm": kept_stats.highs_warm, "cold_ties": kept_stats.cold_ties},
        "lp_size": {"cols": m.n_col, "rows": m.n_row},
        "versions": {"highspy": highspy.Highs().version(), "scipy": scipy.__version__,
                     "python": platform.python_version()},
        "machine": platform.processor() or platform.machine(),
        "load_avg_1min": os.getloadavg()[0],
        "note": "2-core development machine shared with other engineers' jobs",
    }
    path = write_json(OUT, out, echo=False)
    for k, v in out["median_us"].items():
        print(f"{k:45s} {v:10.1f} us")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
