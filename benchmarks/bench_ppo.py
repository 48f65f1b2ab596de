"""Vector-PPO speed with its validated defaults: end-to-end agent-steps/s and the time split at E = 256,
N = 10 (auction_v0). The defaults (bf16 hidden layers where the CPU has native bf16, every core with
passively waiting OpenMP threads) beside one thread, fp32, spinning OpenMP threads, a compiled loss, the
pre-validation configuration and a throughput configuration; each on the machine as it is and with a
second process spinning on one core. Each measurement runs in a fresh process (the OpenMP wait policy is
fixed when torch loads). Plus the time to solve each learner-validation task (from
docs/results/learner_validation.json). Writes results/ppo.json.

    python -m benchmarks.bench_ppo [--quick]
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time

import numpy as np

from .timing import quick_flag, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "ppo.json")
VALIDATION = os.path.join(HERE, "..", "docs", "results", "learner_validation.json")
PRE_VALIDATION = dict(action_dist="gaussian", gamma=0.99, learning_rate=3e-4, epochs=4, minibatch_size=8192,
                      ent_coef=0.0, net_arch=(64, 64), action_bins=41, precision="fp32", critic="local")
# name: (VectorPPOConfig overrides, OMP_WAIT_POLICY, updates factor)
CONFIGS = {
    "validated_defaults": ({}, None, 1),  # torch_threads="auto", precision="auto", critic="auto" (MAPPO here)
    "validated_defaults_local_critic": (dict(critic="local"), None, 1),  # shared PPO
    "validated_defaults_1_thread": (dict(torch_threads=1), None, 1),
    "validated_defaults_fp32_1_thread": (dict(torch_threads=1, precision="fp32"), None, 1),  # before bf16
    "validated_defaults_spinning_omp_all_cores": (dict(torch_threads="all"), "ACTIVE", 1),
    "validated_defaults_compiled": (dict(compile=True), None, 8),  # a longer run: the compile is paid once
    "pre_validation": (dict(PRE_VALIDATION, torch_threads=1), None, 1),
    "throughput": (dict(epochs=2, net_arch=(64, 64)), None, 1),  # fewer passes, smaller net: not validated
}
LOADED = ("validated_defaults", "validated_defaults_1_thread", "validated_defaults_spinning_omp_all_cores")


def _spin(stop):  # a busy neighbour: one core at 100 %
    x = 0
    while not stop.is_set():
        x += 1


def ppo_rate(e: int, n: int, updates: int, threads, **overrides) -> dict:
    """One training run of ``updates`` PPO updates in this process; ``threads``: ``torch_threads`` ("all": every
    core, whatever the wait policy)."""
    from p2penv import auction_v0
    from p2penv.agents.torch_threads import available_cores
    from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo

    if threads == "all":
        threads = available_cores()
    cfg = VectorPPOConfig(total_steps=updates * 24 * e * n, num_envs=e, seed=0, torch_threads=threads, **overrides)
    cfg = dataclasses.replace(cfg, eval_every=1)  # the evaluator only stamps the time after each update
    res = train_vector_ppo(lambda num_envs, seed: auction_v0.vector_env(num_envs, n_prosumers=n, seed=seed), cfg,
                           evaluator=lambda policy: {"t": time.perf_counter()})
    import torch

    # after the first update (warm-up; a compiled loss compiles there): agent-steps over wall seconds
    c = res.curve
    steady = (float("nan") if len(c) < 2 else (c[-1]["agent_steps"] - c[0]["agent_steps"]) / (c[-1]["t"] - c[0]["t"]))
    return dict(agent_steps_per_s=res.steps_per_s, agent_steps_per_s_after_first_update=steady, wall_s=res.wall_s,
                env_s=res.env_s, forward_s=res.forward_s, update_s=res.update_s, updates=res.updates,
                torch_threads=torch.get_num_threads(), precision=res.precision, compile=cfg.compile,
                critic=res.policy.config.critic)


def ppo_rate_fresh(e: int, n: int, updates: int, wait_policy: str | None, overrides: dict) -> dict:
    """``ppo_rate`` in a fresh Python process (``OMP_WAIT_POLICY=wait_policy`` where given, else p2penv's)."""
    pkg = __package__ or "benchmarks"
    threads = overrides.pop("torch_threads", "auto")
    code = (f"import json, {pkg}.bench_ppo as b; print(json.dumps(b.ppo_rate({e}, {n}, {updates}, {threads!r}, "
            f"**{overrides!r})))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("OMP_WAIT_POLICY", None)
    if wait_policy is not None:
        env["OMP_WAIT_POLICY"] = wait_policy
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["omp_wait_policy"] = wait_policy or "PASSIVE (set by p2penv.agents)"
    return r


def flops_per_agent_step(obs_dim: int, act_dim: int, cfg, state_dim: int = 0, n_agents: int = 1) -> dict:
    """Multiply-add count of one trained agent-step of the vector PPO: the rollout's actor and critic forward
    once, then ``epochs`` passes of forward + backward (~3x forward) over it. FLOPs = 2 x MACs. A central
    critic (``state_dim`` > 0) computes its first layer once per market, for its ``n_agents``."""
    def mlp(i, o):
        sizes = [i, *cfg.net_arch, o]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    head = act_dim * (cfg.action_bins if cfg.action_dist == "categorical" else 1)
    critic = mlp(obs_dim, 1) if not state_dim else mlp(0, 1) + state_dim * cfg.net_arch[0] / n_agents
    fwd = mlp(obs_dim, head) + critic
    return dict(forward_macs=fwd, flops=2 * fwd * (1 + 3 * cfg.epochs))


def matmul_gflops(rows: int = 15_360, width: int = 128, reps: int = 50, dtype: str = "float32") -> float:
    """Single-thread GFLOP/s of a (rows x width) @ (width x width) product, the update's main shape."""
    import torch

    torch.set_num_threads(1)
    dt = getattr(torch, dtype)
    a, b = torch.randn(rows, width, dtype=dt), torch.randn(width, width, dtype=dt)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * rows * width * width * reps / (time.perf_counter() - t) / 1e9


def compute_bound(e: int, n: int, measured: dict[str, float], target: float = 150_000) -> dict:
    """FLOPs per agent-step of the validated defaults against this machine's single-thread matmul rates in fp32
    and bf16: the ceiling if every FLOP ran at the matmul rate (``measured``: name -> agent-steps/s)."""
    from p2penv import auction_v0
    from p2penv.agents.vector_ppo import HOURS, VectorPPOConfig, hour_columns, resolve_critic, steps_linked

    cfg = VectorPPOConfig()
    v = auction_v0.vector_env(1, n_prosumers=n, seed=0)
    v.reset(seed=0)
    central = resolve_critic(cfg.critic, cfg.mode, v) == "central"
    # the network input: the observation, plus the hour one-hot where the env's steps are linked (hour_onehot=None)
    extra = HOURS if steps_linked(v) and hour_columns(v) is not None else 0
    state_dim = v.state().shape[1] + extra if central else 0
    f = flops_per_agent_step(v.single_observation_space.shape[-1] + extra, v.single_action_space.shape[-1], cfg,
                             state_dim, n)
    f["network_inputs"] = v.single_observation_space.shape[-1] + extra
    f["critic"] = "central" if central else "local"
    out = dict(f, target_agent_steps_per_s=target, gflops_needed_for_target=target * f["flops"] / 1e9,
               measured_agent_steps_per_s=measured,
               note="ceiling: every FLOP at the matmul rate, one thread; the elementwise sigmoid/log-softmax "
                    "passes and copies make up the gap to it")
    for dt in ("float32", "bfloat16"):
        g = matmul_gflops(dtype=dt)
        out[f"matmul_gflops_1_thread_{dt}"] = g
        out[f"ceiling_agent_steps_per_s_1_thread_{dt}"] = g * 1e9 / f["flops"]
    return out


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
                 "(warm-up, and a compiled run's compilation) included; each run in a fresh process; "
                 "*_no_added_load: the machine as it was (see load_avg_1min_at_start: other jobs may be running), "
                 "*_one_core_spinning: plus a process spinning on one core"}
    configs = {k: v for k, v in CONFIGS.items() if not (q and v[0].get("compile"))}  # --quick: no compilation
    for name, (over, policy, factor) in configs.items():
        out[f"{name}_no_added_load"] = ppo_rate_fresh(e, n, updates * factor, policy, dict(over))
    stop = mp.Event()
    p = mp.Process(target=_spin, args=(stop,), daemon=True)
    p.start()
    try:
        for name in LOADED:
            over, policy, factor = CONFIGS[name]
            out[f"{name}_one_core_spinning"] = ppo_rate_fresh(e, n, updates * factor, policy, dict(over))
    finally:
        stop.set()
        p.join(5)
    out["compute_bound"] = compute_bound(e, n, {k: v["agent_steps_per_s"] for k, v in out.items()
                                                if isinstance(v, dict) and "agent_steps_per_s" in v})
    out["time_to_solve"] = time_to_solve()
    out["machine"] = {"python": platform.python_version(), "numpy": np.__version__, "cores": os.cpu_count(),
                      "cpu": platform.processor() or platform.machine(), "load_avg_1min_at_start": load0}
    write_json(OUT, out, quick=q, echo=False, default=float)
    for k, v in out.items():
        if isinstance(v, dict) and "agent_steps_per_s" in v:
            print(f"{k:55s} {v['agent_steps_per_s']:>10,.0f} agent-steps/s, after the first update "
                  f"{v['agent_steps_per_s_after_first_update']:>10,.0f}  (update {v['update_s']:.2f} s of "
                  f"{v['wall_s']:.2f}; {v['torch_threads']} threads, {v['precision']}, {v['critic']} critic)")
    return out


if __name__ == "__main__":
    t0 = time.perf_counter()
    main(sys.argv[1:])
