"""How the batched auction env and the clearing scale; writes benchmarks/results/scaling.json and
docs/figures/scaling.png (three panels).

Run from the repo root: ``python -m benchmarks.bench_scaling [--quick]`` (``--quick``: shorter blocks
and fewer repeats, ~15 s; writes ``scaling_quick.json`` and no figure).
(1) agent-steps/s of ``auction_v0.vector_env`` vs the number of markets E at N = 10 agents;
(2) the same vs N at E = max(1, 2560 // N), so E * N stays near 2,560 agent-steps per call;
(3) microseconds of ``p2penv.market.mechanisms.uniform.clear`` on one random book vs its size, beside
an n log n line through the 1,000-order point.
Random actions generated beforehand; autoreset and infos included; medians of repeated blocks of
about 0.4 s each (0.1 s with ``--quick``) (``benchmarks.timing.median_rate``). No assertions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from benchmarks.timing import median_rate, vector_stepper
from p2penv import auction_v0
from p2penv.market.mechanisms import uniform

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "results", "scaling.json")
FIG = os.path.join(HERE, "..", "docs", "figures", "scaling.png")
E_SIZES = (1, 4, 16, 64, 256, 1024, 4096)
N_SIZES = (2, 10, 100, 1000)
BOOK_SIZES = (10, 100, 1_000, 10_000, 100_000)
AGENT_STEPS_PER_CALL = 2560


def _calibrated(fn, block_s: float, repeats: int) -> float:
    """Median calls/s of ``fn(k)`` with k chosen so one block takes about ``block_s`` seconds."""
    fn(1)
    t0 = time.perf_counter()
    fn(3)
    per = (time.perf_counter() - t0) / 3
    k = max(3, int(block_s / max(per, 1e-9)))
    return median_rate(fn, k, repeats)


def vector_rate(e: int, n: int, block_s: float, repeats: int) -> float:
    """Agent-steps/s of ``auction_v0.vector_env(e, n_prosumers=n)`` on random actions."""
    run = vector_stepper(auction_v0.vector_env(e, n_prosumers=n, seed=0), n_acts=8)
    run(5)  # warm-up
    return e * n * _calibrated(run, block_s, repeats)


def clear_us(n_orders: int, block_s: float, repeats: int) -> float:
    """Median microseconds of one uniform clearing of a random book of ``n_orders`` orders."""
    rng = np.random.default_rng(1)
    p, q = rng.uniform(0, 0.4, n_orders), rng.uniform(0, 5, n_orders)
    s = rng.choice([-1, 1], n_orders)

    def run(k):
        for _ in range(k):
            uniform.clear(p, q, s)

    return 1e6 / _calibrated(run, block_s, repeats)


def figure(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4.2))
    ve = res["vs_E_N10"]
    x = [int(k) for k in ve]
    ax[0].loglog(x, list(ve.values()), "o-")
    ax[0].set(xlabel="markets E (N = 10)", ylabel="agent-steps / s", title="vector_env vs E")
    vn = res["vs_N"]
    x = [int(k) for k in vn]
    ax[1].loglog(x, [v["agent_steps_per_s"] for v in vn.values()], "o-")
    for xi, v in zip(x, vn.values()):
        ax[1].annotate(f"E={v['E']}", (xi, v["agent_steps_per_s"]), textcoords="offset points", xytext=(4, 6),
                       fontsize=8)
    ax[1].set(xlabel="agents N (E * N ~ 2,560)", ylabel="agent-steps / s", title="vector_env vs N")
    cu = res["uniform_clear_us"]
    x = np.array([int(k) for k in cu])
    ax[2].loglog(x, list(cu.values()), "o-", label="uniform.clear")
    ref = res["nlogn_reference_us"]
    ax[2].loglog(x, [ref[str(k)] for k in x], "--", color="gray", label="n log n (through 1,000)")
    ax[2].set(xlabel="orders in the book", ylabel="µs per clearing", title="one book: clearing time")
    ax[2].legend()
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
    m = res["machine"]
    fig.suptitle(f"auction_v0 scaling ({m['cores']} cores, Python {m['python']}, numpy {m['numpy']})", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="~15 s smoke run: shorter blocks, fewer repeats, no figure")
    args = ap.parse_args(argv if argv is not None else [])
    q = args.quick
    block_s, reps = (0.1, 3) if q else (0.4, 5)
    e_sizes, n_sizes, book_sizes = E_SIZES, N_SIZES, BOOK_SIZES
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    res: dict = {"quick": q}
    res["vs_E_N10"] = {str(e): vector_rate(e, 10, block_s, reps) for e in e_sizes}
    res["vs_N"] = {}
    for n in n_sizes:
        e = max(1, AGENT_STEPS_PER_CALL // n)
        res["vs_N"][str(n)] = {"E": e, "agent_steps_per_s": vector_rate(e, n, block_s, reps)}
    cu = {str(n): clear_us(n, block_s, reps) for n in book_sizes}
    res["uniform_clear_us"] = cu
    if "1000" in cu:
        c = cu["1000"] / (1000 * np.log(1000))
        res["nlogn_reference_us"] = {str(n): c * n * np.log(n) for n in book_sizes}
    res["note"] = ("agent-steps/s of auction_v0.vector_env on random actions (autoreset, infos included); "
                   "uniform.clear on one random book (prices U(0, 0.4), quantities U(0, 5), random sides)")
    res["machine"] = {"python": platform.python_version(), "numpy": np.__version__,
                      "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "load_avg_1min_at_start": load0}
    res["wall_s"] = time.perf_counter() - t0
    path = OUT.replace(".json", "_quick.json") if q else OUT
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(res, fh, indent=2)
    os.replace(tmp, path)
    if not q:
        figure(res, os.path.normpath(FIG))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
