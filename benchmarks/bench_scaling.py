"""How the batched envs and the clearings scale; writes benchmarks/results/scaling.json and
docs/figures/scaling.png (four panels).

Run from the repo root: ``python -m benchmarks.bench_scaling [--quick]`` (``--quick``: shorter blocks
and fewer repeats, ~40 s; writes ``scaling_quick.json`` and no figure).
(1) agent-steps/s of ``auction_v0.vector_env`` vs the number of markets E at N = 10 agents, and of
``dlmp_v0.vector_env`` (ieee33-base, N = 32) vs E;
(2) ``auction_v0.vector_env`` vs N at E = max(1, 2560 // N), so E * N stays near 2,560 agent-steps per call;
(3) microseconds of ``p2penv.market.mechanisms.uniform.clear`` on random books vs their size, beside an
n log n line through the 1,000-order point. Each timed call clears another book of a pool of 64 (8 at
100,000 orders): clearing one book over and over lets the CPU's branch predictor learn its sort, which it
can for up to ~1,000 orders, so those sizes came out ~1.6x too fast and the curve looked ~2x steeper past
1,000 orders (``uniform_clear_us_same_book`` keeps that measurement for comparison);
(4) one ``dlmp_v0`` env step (PettingZoo dicts included) vs the feeder size, on every registered dlmp
scenario's feeder (teaching4, ieee33, ieee69 and the LV feeders when pandapower is installed), with the
kept LP basis and with HiGHS every step.
Random actions generated beforehand; autoreset and infos included; medians of repeated blocks of
about 0.4 s each (0.1 s with ``--quick``) (``benchmarks.timing.median_rate``). No assertions.
The machine is shared with other jobs: its load average is recorded.
"""
from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from .timing import median_rate, parallel_stepper, quick_flag, vector_stepper, write_json
from p2penv import auction_v0, dlmp_v0, make
from p2penv.market.mechanisms import uniform
from p2penv.registry import get_spec, list_scenarios

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "results", "scaling.json")
FIG = os.path.join(HERE, "..", "docs", "figures", "scaling.png")
E_SIZES = (1, 4, 16, 64, 256, 1024, 4096)
N_SIZES = (2, 10, 100, 1000)
BOOK_SIZES = (10, 100, 1_000, 10_000, 100_000)
DLMP_E_SIZES = (1, 4, 16, 64, 256)
BOOK_POOL = 64
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


def clear_us(n_orders: int, block_s: float, repeats: int, pool: int = BOOK_POOL) -> float:
    """Median microseconds of one uniform clearing of a random book of ``n_orders`` orders, cycling
    through ``pool`` different books (``pool=1``: the same book every call)."""
    rng = np.random.default_rng(1)
    pool = pool if n_orders < 100_000 else min(pool, 8)
    books = [(rng.uniform(0, 0.4, n_orders), rng.uniform(0, 5, n_orders), rng.choice([-1, 1], n_orders))
             for _ in range(pool)]
    state = {"i": 0}

    def run(k):
        i = state["i"]
        for _ in range(k):
            uniform.clear(*books[i % pool])
            i += 1
        state["i"] = i

    return 1e6 / _calibrated(run, block_s, repeats)


def dlmp_vector_rate(e: int, block_s: float, repeats: int) -> float:
    """Agent-steps/s of ``dlmp_v0.vector_env(e)`` (ieee33-base, 32 agents) on random actions."""
    run = vector_stepper(dlmp_v0.vector_env(e, seed=0), n_acts=8)
    run(3)  # warm-up: compiled kernels, first LP bases
    return e * 32 * _calibrated(run, block_s, repeats)


def dlmp_step_us(scenario_id: str, block_s: float, repeats: int) -> dict:
    """One env step of a dlmp scenario (random actions, 24-step episodes), kept basis and HiGHS every step."""
    import warnings

    out = {}
    for name, reuse in (("kept_basis", True), ("highs_every_step", False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overloaded-feeder warnings of some scenarios
            env = make(scenario_id, seed=0, lp_reuse_basis=reuse)
        run = parallel_stepper(env, 32, dtype=np.float64)
        run(10)
        out[f"{name}_us"] = 1e6 / _calibrated(run, block_s, repeats)
        out["buses"], out["agents"] = env.feeder.n_bus, len(env.possible_agents)
        out["lp_rows"], out["lp_cols"] = env.market.n_row, env.market.n_col
        if reuse:
            out["cached_share"] = env.market.basis_cache.stats.cached_share
    return out


def dlmp_feeders() -> list[str]:
    """One registered dlmp scenario per feeder (its base-load one where registered), those that build here."""
    from p2penv.generators.feeders import FEEDER_SETTINGS

    best: dict[str, tuple[bool, str]] = {}
    for sid in list_scenarios("dlmp_v0"):
        key = get_spec(sid).config.get("scenario", "ieee33-base")
        feeder = FEEDER_SETTINGS[key].feeder
        base = key.endswith("-base") or key == feeder
        if feeder not in best or (base and not best[feeder][0]):
            best[feeder] = (base, sid)
    out = []
    for _, sid in best.values():
        try:
            make(sid)
        except ImportError:  # the LV feeders need pandapower
            continue
        out.append(sid)
    return out


def figure(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(12, 8.4))
    ax = ax.ravel()
    ve = res["vs_E_N10"]
    ax[0].loglog([int(k) for k in ve], list(ve.values()), "o-", label="auction_v0 (N = 10)")
    dv = res.get("dlmp_vs_E_N32", {})
    if dv:
        ax[0].loglog([int(k) for k in dv], [v["agent_steps_per_s"] for v in dv.values()], "s-",
                     label="dlmp_v0 ieee33 (N = 32)")
    ax[0].set(xlabel="markets E", ylabel="agent-steps / s", title="vector envs vs E")
    ax[0].legend()
    vn = res["vs_N"]
    x = [int(k) for k in vn]
    ax[1].loglog(x, [v["agent_steps_per_s"] for v in vn.values()], "o-")
    for xi, v in zip(x, vn.values()):
        ax[1].annotate(f"E={v['E']}", (xi, v["agent_steps_per_s"]), textcoords="offset points", xytext=(4, 6),
                       fontsize=8)
    ax[1].set(xlabel="agents N (E * N ~ 2,560)", ylabel="agent-steps / s", title="auction_v0 vector env vs N")
    cu = res["uniform_clear_us"]
    x = np.array([int(k) for k in cu])
    ax[2].loglog(x, list(cu.values()), "o-", label=f"uniform.clear, {BOOK_POOL} books in turn")
    same = res.get("uniform_clear_us_same_book")
    if same:
        ax[2].loglog(x, [same[str(k)] for k in x], "x:", color="tab:red", label="one book over and over")
    ref = res["nlogn_reference_us"]
    ax[2].loglog(x, [ref[str(k)] for k in x], "--", color="gray", label="n log n (through 1,000)")
    ax[2].set(xlabel="orders in the book", ylabel="µs per clearing", title="one book: clearing time")
    ax[2].legend(fontsize=8)
    fs = res.get("dlmp_step_vs_feeder", {})
    if fs:
        rows = sorted(fs.items(), key=lambda kv: kv[1]["buses"])
        b = [v["buses"] for _, v in rows]
        ax[3].loglog(b, [v["kept_basis_us"] for _, v in rows], "o-", label="kept LP basis")
        ax[3].loglog(b, [v["highs_every_step_us"] for _, v in rows], "s--", label="HiGHS every step")
        for (sid, v) in rows:
            ax[3].annotate(f"{sid.split('/')[1][:-3]} ({v['agents']} ag.)", (v["buses"], v["kept_basis_us"]),
                           textcoords="offset points", xytext=(4, -12), fontsize=7)
        ax[3].set(xlabel="feeder buses", ylabel="µs per env step (dicts included)", title="dlmp_v0 step vs feeder size")
        ax[3].legend(fontsize=8)
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
    m = res["machine"]
    fig.suptitle(f"scaling ({m['cores']} shared cores, load ~{m['load_avg_1min_at_start']:.1f}, Python {m['python']}, "
                 f"numpy {m['numpy']})", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    q = quick_flag(argv, "~40 s smoke run: shorter blocks, fewer repeats, no figure")
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
    res["dlmp_vs_E_N32"] = {}
    for e in DLMP_E_SIZES:
        rate = dlmp_vector_rate(e, block_s, reps)
        res["dlmp_vs_E_N32"][str(e)] = {"agent_steps_per_s": rate, "feeder_steps_per_s": rate / 32}
    cu = {str(n): clear_us(n, block_s, reps) for n in book_sizes}
    res["uniform_clear_us"] = cu
    res["uniform_clear_us_same_book"] = {str(n): clear_us(n, block_s, reps, pool=1) for n in book_sizes}
    if "1000" in cu:
        c = cu["1000"] / (1000 * np.log(1000))
        res["nlogn_reference_us"] = {str(n): c * n * np.log(n) for n in book_sizes}
        res["ns_per_n_log_n"] = {k: 1e3 * v / (int(k) * np.log(int(k))) for k, v in cu.items()}
    res["dlmp_step_vs_feeder"] = {sid: dlmp_step_us(sid, block_s, reps) for sid in dlmp_feeders()}
    res["note"] = ("agent-steps/s of auction_v0.vector_env and dlmp_v0.vector_env on random actions (autoreset, "
                   "infos included); uniform.clear on random books (prices U(0, 0.4), quantities U(0, 5), random "
                   f"sides), {BOOK_POOL} different books in turn (8 at 100,000 orders), and the same book over and "
                   "over (_same_book: the branch predictor learns the sort up to ~1,000 orders); dlmp_v0 env step "
                   "(32-agent dicts included) per registered feeder, kept LP basis vs HiGHS every step")
    res["machine"] = {"python": platform.python_version(), "numpy": np.__version__,
                      "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "shared": "2-core development machine shared with other engineers' jobs",
                      "load_avg_1min_at_start": load0, "load_avg_1min_at_end": os.getloadavg()[0]}
    res["wall_s"] = time.perf_counter() - t0
    write_json(OUT, res, quick=q, echo=False)
    if not q:
        figure(res, os.path.normpath(FIG))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
