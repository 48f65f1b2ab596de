"""Speed of the batched vector envs and of SB3 training through them; writes benchmarks/results/vector.json.

Run from the repo root: ``python -m benchmarks.bench_vector [--quick]`` (``make bench`` runs every
benchmark; ``--quick`` is a ~20 s smoke version with smaller budgets, same keys).
Rates are agent-steps/s (one agent, one market step) unless named steps/s (one market step).
(a) ``auction_v0.vector_env`` E=256, N=10, random actions generated beforehand, autoreset and infos
included, and the same through ``p2penv.agents.sb3_vector.SB3VectorEnv`` (SB3 step API, per-slot infos);
(b) the single ``auction_v0`` env, 10 agents, PettingZoo dict API;
(c) ``dlmp_v0`` single env on ieee33 (32 agents) for three scenarios, and its vector env, E=8;
(d) SB3 PPO (MlpPolicy, n_steps=24, batch 8192, 4 epochs) through ``SB3VectorEnv`` (E=256, N=10), and
through the older per-env adapter (``p2penv.agents.sb3_shared.train_shared``) with a small budget;
(e) the torch vector PPO trainer (``p2penv.agents.vector_ppo``) on the same task, 1 thread and all cores, with
its time split, and its speed-up over both SB3 paths measured in this run.
Medians of repeated blocks (``benchmarks.timing``), torch on one thread, no assertions.
"""
from __future__ import annotations

import os
import platform
import time
import warnings

import numpy as np

from .timing import median_rate, parallel_stepper, quick_flag, vector_stepper, write_json
from p2penv import auction_v0, dlmp_v0

OUT = os.path.join(os.path.dirname(__file__), "results", "vector.json")
DLMP_SCENARIOS = ("ieee33-base", "ieee33-congested", "ieee33-undervoltage")


def _vector_rate(vec, steps: int, repeats: int, n_acts: int = 16) -> float:
    """Agent-steps/s of ``vec.step`` on pre-generated random actions (autoreset included)."""
    e, n = vec.num_envs, len(vec.possible_agents)
    run = vector_stepper(vec, n_acts)

    run(min(steps, 30))  # warm-up (numba kernels, HiGHS models)
    return e * n * median_rate(run, steps, repeats)


def vector_auction(e: int, n: int, steps: int, repeats: int) -> float:
    return _vector_rate(auction_v0.vector_env(e, n_prosumers=n, seed=0), steps, repeats)


def sb3_adapter_rate(e: int, n: int, steps: int, repeats: int) -> float:
    """Agent-steps/s of ``SB3VectorEnv.step`` (random actions): the adapter's cost over (a)."""
    from p2penv.agents.sb3_vector import make_sb3_vector_env

    venv = make_sb3_vector_env("auction_v0", e, seed=0, n_prosumers=n)
    acts = np.random.default_rng(0).uniform(-1, 1, (16, venv.num_envs, 2)).astype(np.float32)
    venv.reset()
    state = {"i": 0}

    def run(k):
        i = state["i"]
        for _ in range(k):
            venv.step(acts[i % 16])
            i += 1
        state["i"] = i

    run(min(steps, 30))
    return venv.num_envs * median_rate(run, steps, repeats)


def single_steps_per_second(make, steps: int, repeats: int) -> float:
    """Steps/s of one PettingZoo parallel env (dict API), random actions, reset between episodes."""
    run = parallel_stepper(make(), 64)
    run(min(steps, 100))  # warm-up
    return median_rate(run, steps, repeats)


def _set_threads() -> int:
    import torch

    torch.set_num_threads(1)
    return torch.get_num_threads()


def ppo_vector(e: int, n: int, rollouts: int) -> dict:
    """PPO through SB3VectorEnv: agent-steps/s of ``learn`` (rollouts + updates)."""
    from stable_baselines3 import PPO

    from p2penv.agents.sb3_vector import make_sb3_vector_env

    venv = make_sb3_vector_env("auction_v0", e, seed=0, n_prosumers=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 8192 does not divide n_steps * slots: SB3 warns, still fine
        model = PPO("MlpPolicy", venv, n_steps=24, batch_size=8192, n_epochs=4, seed=0, device="cpu", verbose=0)
    steps = rollouts * 24 * venv.num_envs
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    return {"agent_steps_per_s": model.num_timesteps / wall, "agent_steps": int(model.num_timesteps),
            "wall_s": wall, "E": e, "N": n, "slots": venv.num_envs, "rollouts": rollouts,
            "config": "MlpPolicy (64, 64), n_steps=24, batch_size=8192, n_epochs=4"}


def ppo_shared(n_copies: int, n: int, rollouts: int) -> dict:
    """PPO through the older per-env adapter (agents.sb3_shared / vec_adapter.MarketVecEnv)."""
    from p2penv.agents.sb3_shared import SB3Config, train_shared

    slots = n_copies * n
    batch = min(8192, 24 * slots)
    cfg = SB3Config(algo="ppo", total_steps=rollouts * 24 * slots, n_copies=n_copies, seed=0, n_steps=24,
                    batch_size=batch, n_epochs=4, net_arch=(64, 64), torch_threads=1)
    res = train_shared(lambda: auction_v0.parallel_env(n_prosumers=n, seed=0), cfg)
    return {"agent_steps_per_s": res.steps_per_s, "agent_steps": res.num_timesteps, "wall_s": res.wall_s,
            "copies": n_copies, "N": n, "slots": slots, "rollouts": rollouts,
            "config": f"MlpPolicy (64, 64), n_steps=24, batch_size={batch}, n_epochs=4"}


def ppo_torch_vector(e: int, n: int, updates: int, threads: int | None) -> dict:
    """The vector PPO trainer (``p2penv.agents.vector_ppo``, default 64x64 nets, 4 epochs, minibatches
    >= 8,192): end-to-end agent-steps/s and the time split (env, policy forward, update)."""
    from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

    cfg = VectorPPOConfig(total_steps=updates * 24 * e * n, num_envs=e, seed=0, torch_threads=threads)
    res = train_vector_ppo(lambda num_envs, seed: auction_v0.vector_env(num_envs, n_prosumers=n, seed=seed), cfg)
    return {"agent_steps_per_s": res.steps_per_s, "agent_steps": res.num_timesteps, "wall_s": res.wall_s,
            "env_s": res.env_s, "forward_s": res.forward_s, "update_s": res.update_s, "E": e, "N": n,
            "updates": updates, "torch_threads": threads or "all cores"}


def main(argv: list[str] | None = None) -> dict:
    q = quick_flag(argv, "~20 s smoke run with small budgets")
    reps = 3 if q else 7
    load0 = os.getloadavg()[0]
    t_start = time.perf_counter()
    threads = _set_threads()
    out: dict = {"quick": q}
    out["vector_auction_agent_steps_per_s"] = {
        "E256_N10": vector_auction(256, 10, 24 if q else 96, reps),
        "note": "auction_v0.vector_env, random actions generated beforehand, autoreset (SAME_STEP) and "
                "infos included",
    }
    out["sb3_vector_env_agent_steps_per_s"] = {
        "E256_N10": sb3_adapter_rate(256, 10, 24 if q else 96, reps),
        "note": "SB3VectorEnv.step (SB3 API, per-slot info dicts), random actions",
    }
    single = single_steps_per_second(lambda: auction_v0.parallel_env(n_prosumers=10, seed=0),
                                     500 if q else 3000, reps)
    out["single_auction_N10"] = {"steps_per_s": single, "agent_steps_per_s": 10 * single,
                                 "note": "auction_v0.parallel_env, PettingZoo dict API, 24-step episodes"}
    d_steps = 100 if q else 1000
    dl = {sc: single_steps_per_second(lambda sc=sc: dlmp_v0.parallel_env(scenario=sc, seed=0), d_steps, reps)
          for sc in DLMP_SCENARIOS}
    out["dlmp_single_ieee33_steps_per_s"] = dl
    out["dlmp_single_ieee33_agent_steps_per_s"] = {k: 32 * v for k, v in dl.items()}
    out["dlmp_vector_ieee33_base_E8_agent_steps_per_s"] = _vector_rate(
        dlmp_v0.vector_env(8, scenario="ieee33-base", seed=0), 24 if q else 120, reps)
    # storage overhead: the storage community against the same 10 agents with plain PV instead of batteries
    from p2penv.generators import HouseholdMix
    from p2penv.registry import STORAGE_COMMUNITY

    plain = HouseholdMix(kinds=tuple("pv_household" if k == "pv_battery" else k for k in STORAGE_COMMUNITY.kinds))
    rates = {}
    for name, gen in (("storage", STORAGE_COMMUNITY), ("no_storage", plain)):
        rates[f"single_{name}_steps_per_s"] = single_steps_per_second(
            lambda gen=gen: auction_v0.parallel_env(n_prosumers=10, generator=gen, seed=0), 500 if q else 3000, reps)
        rates[f"vector_E256_{name}_agent_steps_per_s"] = _vector_rate(
            auction_v0.vector_env(256, n_prosumers=10, generator=gen, seed=0), 24 if q else 96, reps)
    rates["single_step_time_overhead"] = rates["single_no_storage_steps_per_s"] / rates["single_storage_steps_per_s"] - 1
    rates["vector_step_time_overhead"] = (rates["vector_E256_no_storage_agent_steps_per_s"]
                                          / rates["vector_E256_storage_agent_steps_per_s"] - 1)
    out["storage_overhead"] = rates
    e_ppo = 64 if q else 256
    out["ppo_sb3_vector_env"] = ppo_vector(e_ppo, 10, 1 if q else 3)
    out["ppo_sb3_shared_old_adapter"] = ppo_shared(2 if q else 8, 10, 1 if q else 3)
    out["ppo_torch_vector_1thread"] = ppo_torch_vector(e_ppo, 10, 2 if q else 8, 1)
    out["ppo_torch_vector_all_threads"] = ppo_torch_vector(e_ppo, 10, 2 if q else 8, None)
    _set_threads()
    best = max(out["ppo_torch_vector_1thread"]["agent_steps_per_s"],
               out["ppo_torch_vector_all_threads"]["agent_steps_per_s"])
    out["ppo_speedup_vs_sb3"] = {
        "vs_sb3_vector_env": best / out["ppo_sb3_vector_env"]["agent_steps_per_s"],
        "vs_sb3_old_adapter": best / out["ppo_sb3_shared_old_adapter"]["agent_steps_per_s"],
    }
    out["machine"] = {"python": platform.python_version(), "numpy": np.__version__,
                      "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "torch_threads": threads, "load_avg_1min_at_start": load0}
    out["wall_s"] = time.perf_counter() - t_start
    write_json(OUT, out, quick=q)
    return out


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
