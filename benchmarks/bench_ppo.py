"""Vector-PPO speed with its validated defaults: end-to-end agent-steps/s and the time split at E = 256,
N = 10 (auction_v0), for 1 torch thread and all cores, on the machine as it is and with a second
process spinning on one core, beside the pre-validation configuration and a throughput
configuration; plus the time to solve each learner-validation task (from
docs/results/learner_validation.json). Writes results/ppo.json.

    python -m benchmarks.bench_ppo [--quick]
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import time

import numpy as np

from .timing import quick_flag, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "ppo.json")
VALIDATION = os.path.join(HERE, "..", "docs", "results", "learner_validation.json")
CONFIGS = {
    "validated_defaults": {},
    "pre_validation": dict(action_dist="gaussian", gamma=0.99, learning_rate=3e-4, epochs=4, minibatch_size=8192,
                           ent_coef=0.0, net_arch=(64, 64), action_bins=41),
    "throughput": dict(epochs=2, net_arch=(64, 64)),  # same head and schedule, fewer passes, smaller net
}


def _spin(stop):  # a busy neighbour: one core at 100 %
    x = 0
    while not stop.is_set():
        x += 1


def ppo_rate(e: int, n: int, updates: int, threads: int | None, **overrides) -> dict:
    from p2penv import auction_v0
    from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

    cfg = VectorPPOConfig(total_steps=updates * 24 * e * n, num_envs=e, seed=0, torch_threads=threads, **overrides)
    res = train_vector_ppo(lambda num_envs, seed: auction_v0.vector_env(num_envs, n_prosumers=n, seed=seed), cfg)
    return dict(agent_steps_per_s=res.steps_per_s, wall_s=res.wall_s, env_s=res.env_s, forward_s=res.forward_s,
                update_s=res.update_s, updates=updates, torch_threads=threads or "all cores")


def flops_per_agent_step(obs_dim: int, act_dim: int, cfg) -> dict:
    """Multiply-add count of one trained agent-step of the vector PPO (local critic): the rollout's actor and
    critic forward once, then ``epochs`` passes of forward + backward (~3x forward) over it. FLOPs = 2 x MACs."""
    def mlp(i, o):
        sizes = [i, *cfg.net_arch, o]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    head = act_dim * (cfg.action_bins if cfg.action_dist == "categorical" else 1)
    fwd = mlp(obs_dim, head) + mlp(obs_dim, 1)
    return dict(forward_macs=fwd, flops=2 * fwd * (1 + 3 * cfg.epochs))


def matmul_gflops(rows: int = 15_360, width: int = 128, reps: int = 50) -> float:
    """Single-thread fp32 GFLOP/s of a (rows x width) @ (width x width) product, the update's main shape."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(rows, width), torch.randn(width, width)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * rows * width * width * reps / (time.perf_counter() - t) / 1e9


def compute_bound(e: int, n: int, measured: float, target: float = 150_000) -> dict:
    """Why the validated defaults cannot reach ``target`` agent-steps/s here: FLOPs per agent-step against
    the machine's single-thread matmul rate (an upper bound on what the update can sustain)."""
    from p2penv import auction_v0
    from p2penv.agents.vector_ppo import HOURS, VectorPPOConfig, hour_columns, steps_linked

    cfg = VectorPPOConfig()
    v = auction_v0.vector_env(1, n_prosumers=n, seed=0)
    v.reset(seed=0)
    # the network input: the observation, plus the hour one-hot where the env's steps are linked (hour_onehot=None)
    extra = HOURS if steps_linked(v) and hour_columns(v) is not None else 0
    f = flops_per_agent_step(v.single_observation_space.shape[-1] + extra, v.single_action_space.shape[-1], cfg)
    f["network_inputs"] = v.single_observation_space.shape[-1] + extra
    g = matmul_gflops()
    return dict(f, matmul_gflops_1_thread=g, ceiling_agent_steps_per_s_1_thread=g * 1e9 / f["flops"],
                measured_agent_steps_per_s=measured, achieved_gflops=measured * f["flops"] / 1e9,
                target_agent_steps_per_s=target, gflops_needed_for_target=target * f["flops"] / 1e9,
                note="ceiling: every FLOP at the matmul rate, one thread; the elementwise sigmoid/log-softmax and "
                     "copies make up the gap to it")


def time_to_solve() -> dict:
    """Median wall seconds to the first passing evaluation, per (task, learner), from the validation JSON."""
    if not os.path.exists(VALIDATION):
        return {}
    d = json.load(open(VALIDATION))
    return {f"{s['task']} {s['learner']}": dict(time_to_solve_s_median=s["time_to_solve_s_median"],
                                                 passed=f"{s['passed']}/{s['seeds']}", budget=s["budget"])
            for s in d["summary"] if s.get("applicable", True)}


def main(argv: list[str] | None = None) -> dict:
    q = quick_flag(argv, "E = 32, one update each (smoke run)")
    e, n, updates = (32, 10, 1) if q else (256, 10, 4)
    load0 = os.getloadavg()[0]
    out: dict = {"E": e, "N": n, "note": "end to end: rollout (env + policy) and PPO update, the first update "
                 "(warm-up) included; *_no_added_load: the machine as it was (see load_avg_1min_at_start: other jobs "
                 "may be running), *_one_core_spinning: plus a process spinning on one core"}
    for name, over in CONFIGS.items():
        for threads in (1, None):
            out[f"{name}_threads_{threads or 'all'}_no_added_load"] = ppo_rate(e, n, updates, threads, **over)
    stop = mp.Event()
    p = mp.Process(target=_spin, args=(stop,), daemon=True)
    p.start()
    try:
        for threads in (1, None):
            out[f"validated_defaults_threads_{threads or 'all'}_one_core_spinning"] = ppo_rate(e, n, updates, threads)
    finally:
        stop.set()
        p.join(5)
    out["compute_bound"] = compute_bound(e, n, out["validated_defaults_threads_1_no_added_load"]["agent_steps_per_s"])
    out["time_to_solve"] = time_to_solve()
    out["machine"] = {"python": platform.python_version(), "numpy": np.__version__, "cores": os.cpu_count(),
                      "cpu": platform.processor() or platform.machine(), "load_avg_1min_at_start": load0}
    write_json(OUT, out, quick=q, echo=False, default=float)
    for k, v in out.items():
        if isinstance(v, dict) and "agent_steps_per_s" in v:
            print(f"{k:45s} {v['agent_steps_per_s']:>10,.0f} agent-steps/s  (update {v['update_s']:.2f} s of "
                  f"{v['wall_s']:.2f})")
    return out


if __name__ == "__main__":
    import sys

    t0 = time.perf_counter()
    main(sys.argv[1:])
