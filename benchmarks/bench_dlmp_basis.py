"""DLMP clearing with the kept optimal basis (``p2penv.network.basis_cache``) against HiGHS every step;
writes benchmarks/results/dlmp_basis.json.

Run from the repository root: ``python -m benchmarks.bench_dlmp_basis [--quick]``.
(1) Share of LP solves served from the kept basis (as it was, or after compiled dual simplex pivots from
it) on every registered dlmp scenario (random actions in
[-1, 1], 24-step episodes, ``reset()`` without a seed between episodes, as a trainer steps), and the
same with a third of the actions saturated at +-1 (prices repeat at the floor and cap: more ties).
(2) ``dlmp_v0`` single env (ieee33-base, 32 agents) and ``dlmp_v0.vector_env(64)``: steps/s with the
kept basis and with ``lp_reuse_basis=False`` (HiGHS every step, same results), blocks interleaved in
one run so both see the same machine load; ``loss_iterations`` 1 (the target), 2 and 3 with the kept
basis, and the cost of each further iteration in microseconds per feeder-step; the same pair on
ieee33-congested (where the line binds on about half the steps and the basis changes with it).
(3) The vector PPO trainer on ``dlmp_v0/congested-v0`` (E = 64, 32 agents): its time split (env stepping,
policy forward, update).
Each figure: min / median / max over repeated blocks, wall clock and the process's CPU time. The
development machine has 2 cores shared with other jobs: wall-clock rates move with its load (recorded
at start and end); the CPU-time rate is what one otherwise idle core would give.
"""
from __future__ import annotations

import os
import platform
import time
import warnings

import highspy
import numpy as np

from .timing import parallel_stepper, quick_flag, vector_stepper, write_json
from p2penv import dlmp_v0, make
from p2penv.registry import list_scenarios

OUT = os.path.join(os.path.dirname(__file__), "results", "dlmp_basis.json")
TARGETS = {"single_steps_per_s": 2000, "vector64_feeder_steps_per_s": 5000}


def hit_shares(steps: int, saturate: float) -> dict:
    """Per registered dlmp scenario: share of solves from the kept basis as it was, after compiled dual
    simplex pivots from it, from HiGHS warm-started and from the cold re-solve at ties."""
    out = {}
    for sid in list_scenarios("dlmp_v0"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = make(sid, seed=0)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            if not env.agents:
                env.reset()
            a = rng.uniform(-1, 1, (len(env.agents), 2))
            sat = rng.random(a.shape) < saturate
            a[sat] = np.sign(a[sat])
            env.step(dict(zip(env.agents, a)))
        st = env.market.basis_cache.stats
        out[sid] = {"cached_share": st.cached_share, "pivoted_share": st.pivoted / st.solves,
                    "without_highs_share": st.without_highs_share, "highs_warm_share": st.highs_warm / st.solves,
                    "cold_tie_share": st.cold_ties / st.solves, "numerical": st.numerical, "solves": st.solves,
                    "buses": env.feeder.n_bus, "agents": len(env.possible_agents)}
    return out


def _single(**kw):
    return parallel_stepper(dlmp_v0.parallel_env(max_cycles=24, seed=0, **kw), 256), 1


def _vector(e, **kw):
    return vector_stepper(dlmp_v0.vector_env(e, seed=0, **kw), 16), e


def interleaved(makers: dict, block_steps: dict, repeats: int) -> dict:
    """Rates (feeder-steps/s) of several configurations, their blocks interleaved round-robin."""
    runs = {}
    for name, make_run in makers.items():
        run, width = make_run()
        run(max(2, block_steps[name] // 5))  # warm-up: compiled kernels, HiGHS models, first bases
        runs[name] = (run, width)
    wall = {n: [] for n in runs}
    cpu = {n: [] for n in runs}
    for _ in range(repeats):
        for name, (run, width) in runs.items():
            k = block_steps[name]
            t0, c0 = time.perf_counter(), time.process_time()
            run(k)
            t1, c1 = time.perf_counter(), time.process_time()
            wall[name].append(k * width / (t1 - t0))
            cpu[name].append(k * width / max(c1 - c0, 1e-9))
    stats = lambda v: {"min": float(np.min(v)), "median": float(np.median(v)), "max": float(np.max(v))}  # noqa: E731
    return {n: {"wall": stats(wall[n]), "cpu": stats(cpu[n])} for n in runs}


def iteration_cost(rates: dict, prefix: str) -> dict:
    """Microseconds per feeder-step that each loss iteration after the first adds (median wall and cpu)."""
    out = {}
    for k in (2, 3):
        a, b = rates.get(f"{prefix}_iter{k - 1}") or rates[f"{prefix}_cached"], rates[f"{prefix}_iter{k}"]
        out[f"iteration_{k}_us"] = {c: 1e6 / b[c]["median"] - 1e6 / a[c]["median"] for c in ("wall", "cpu")}
    return out


def loss_iterations_used(k: int, steps: int = 96) -> float:
    """Mean LP solves per step that ``loss_iterations=k`` uses (the iteration stops once converged)."""
    env = dlmp_v0.parallel_env(max_cycles=24, seed=0, loss_iterations=k)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    used = []
    for _ in range(steps):
        if not env.agents:
            env.reset()
        env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
        used.append(env.last_lp.loss_iterations)
    return float(np.mean(used))


def ppo_congested(e: int, updates: int) -> dict:
    """The vector PPO trainer (``p2penv.agents.vector_ppo``, shared 64x64 policy, 4 epochs, one torch
    thread) on ``dlmp_v0/congested-v0``: agent-steps/s end to end and its time split."""
    try:
        from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo
    except ImportError as err:  # the train extra (torch) is not installed
        return {"skipped": str(err)}
    from p2penv import make_vector

    warm = make_vector("dlmp_v0/congested-v0", 2, seed=0)  # compiled kernels loaded before the clock starts
    warm.reset(seed=0)
    for _ in range(3):
        warm.step(np.zeros(warm.action_space.shape))
    cfg = VectorPPOConfig(total_steps=updates * 24 * e * 32, num_envs=e, seed=0, epochs=4, torch_threads=1)
    res = train_vector_ppo(lambda num_envs, seed: make_vector("dlmp_v0/congested-v0", num_envs, seed=seed), cfg)
    return {"agent_steps_per_s": res.steps_per_s, "agent_steps": res.num_timesteps, "wall_s": res.wall_s,
            "env_s": res.env_s, "forward_s": res.forward_s, "update_s": res.update_s,
            "env_share": res.env_s / res.wall_s, "E": e, "N": 32, "updates": updates,
            "config": "VectorPPOConfig defaults (shared, categorical 41 bins, 64x64) with epochs=4, torch_threads=1"}


def main(argv: list[str] | None = None) -> dict:
    q = quick_flag(argv, "~30 s smoke run: short blocks, few repeats")
    reps = 3 if q else 7
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    out: dict = {"quick": q}
    out["cache_hit_shares"] = {
        "random_actions": hit_shares(96 if q else 480, 0.0),
        "a_third_saturated": hit_shares(96 if q else 480, 1 / 3),
        "note": "share of LP solves per answer: kept basis certified as it was (cached), after compiled dual "
                "simplex pivots from it (pivoted; without_highs = both), HiGHS warm start (its basis then kept), "
                "cold re-solve at a tie (the tie-break); random actions, 24-step episodes, reset() without a seed "
                "between episodes (reset(seed) rebuilds the LPs cold)",
    }
    single_block, vec_block = (150, 6) if q else (600, 24)
    makers = {
        "single_cached": lambda: _single(),
        "single_highs_every_step": lambda: _single(lp_reuse_basis=False),
        "single_iter2": lambda: _single(loss_iterations=2),
        "single_iter3": lambda: _single(loss_iterations=3),
    }
    single = interleaved(makers, {k: single_block for k in makers}, reps)
    congested = interleaved({"single_congested_cached": lambda: _single(scenario="ieee33-congested"),
                             "single_congested_highs_every_step": lambda: _single(scenario="ieee33-congested",
                                                                                  lp_reuse_basis=False),
                             "vector64_congested_cached": lambda: _vector(64, scenario="ieee33-congested"),
                             "vector64_congested_highs_every_step": lambda: _vector(64, scenario="ieee33-congested",
                                                                                    lp_reuse_basis=False)},
                            {"single_congested_cached": single_block, "single_congested_highs_every_step": single_block,
                             "vector64_congested_cached": vec_block,
                             "vector64_congested_highs_every_step": max(2, vec_block // 4)}, reps)
    makers = {
        "vector64_cached": lambda: _vector(64),
        "vector64_highs_every_step": lambda: _vector(64, lp_reuse_basis=False),
        "vector64_iter2": lambda: _vector(64, loss_iterations=2),
        "vector64_iter3": lambda: _vector(64, loss_iterations=3),
    }
    vector = interleaved(makers, {"vector64_cached": vec_block, "vector64_highs_every_step": max(2, vec_block // 4),
                                  "vector64_iter2": vec_block // 2, "vector64_iter3": vec_block // 2}, reps)
    out["single_ieee33_base_steps_per_s"] = single
    out["vector64_ieee33_base_feeder_steps_per_s"] = vector
    out["ieee33_congested_steps_per_s"] = congested
    out["loss_iteration_cost"] = {"single": iteration_cost(single, "single"),
                                  "vector64": iteration_cost(vector, "vector64"),
                                  "mean_solves_per_step": {k: loss_iterations_used(k) for k in (1, 2, 3)}}
    out["ppo_congested_v0"] = ppo_congested(64, 2 if q else 6)
    out["targets"] = {
        "single_steps_per_s": {"target": TARGETS["single_steps_per_s"],
                               "median_wall": single["single_cached"]["wall"]["median"],
                               "median_cpu": single["single_cached"]["cpu"]["median"]},
        "vector64_feeder_steps_per_s": {"target": TARGETS["vector64_feeder_steps_per_s"],
                                        "median_wall": vector["vector64_cached"]["wall"]["median"],
                                        "median_cpu": vector["vector64_cached"]["cpu"]["median"]},
    }
    out["note"] = ("dlmp_v0 defaults: ieee33-base, 32 agents (one per load bus), loss_linearisation='previous', "
                   "loss_iterations=1 unless named, random actions in [-1, 1], 24-step episodes with autoreset; "
                   "rates are env steps/s (single) and feeder-steps/s (vector: E x steps/s; x 32 for agent-steps); "
                   "'highs_every_step' = lp_reuse_basis=False (HiGHS warm-started every step, same results); "
                   "min/median/max over interleaved blocks; wall clock and process CPU time")
    out["machine"] = {"python": platform.python_version(), "numpy": np.__version__,
                      "highspy": highspy.Highs().version(),
                      "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "shared": "2-core development machine shared with other engineers' jobs; wall-clock rates "
                                "depend on their load",
                      "load_avg_at_start": list(load0), "load_avg_at_end": list(os.getloadavg())}
    out["wall_s"] = time.perf_counter() - t_start
    write_json(OUT, out, quick=q)
    return out


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
