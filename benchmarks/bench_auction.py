"""Speed of auction_v0 stepping and of the clearing function alone; writes benchmarks/results/auction.json.

Run: ``python -m benchmarks.bench_auction`` (``make bench`` runs every benchmark).
Timings are medians of repeated blocks with ``time.perf_counter``; no assertions, numbers only.
"""
from __future__ import annotations

import os
import platform

import numpy as np

from .timing import dict_only_steps_per_second, median_rate, parallel_stepper, write_json
from p2penv import auction_v0
from p2penv.envs.auction_core import INFO_NAMES, OBS_NAMES
from p2penv.market.mechanisms import pay_as_bid, uniform

OUT = os.path.join(os.path.dirname(__file__), "results", "auction.json")


def env_steps_per_second(n_agents: int, n_steps: int = 3000) -> float:
    run = parallel_stepper(auction_v0.parallel_env(n_prosumers=n_agents, max_cycles=10_000, seed=0), 64)
    run(200)  # warm-up
    return median_rate(run, n_steps)


def clear_us(n_orders: int, mech, batch: int = 1) -> float:
    rng = np.random.default_rng(1)
    shape = (batch, n_orders) if batch > 1 else (n_orders,)
    p, q = rng.uniform(0, 0.4, shape), rng.uniform(0, 5, shape)
    s = rng.choice([-1, 1], shape)
    reps = max(5, int(20000 / n_orders))

    def run(k):
        for _ in range(k):
            mech(p, q, s)

    run(3)
    return 1e6 / median_rate(run, reps)


def batched_pipeline_markets_per_second(n_agents: int = 10, batch: int = 1000) -> float:
    """Markets stepped per second when many joint actions go through ``run_step`` at once
    (how the diagnostics evaluate deviations, and how a vectorised trainer could step)."""
    from p2penv.market.pipeline import run_step

    env = auction_v0.parallel_env(n_prosumers=n_agents, seed=0)
    env.reset(seed=0)
    acts = np.random.default_rng(0).uniform(-1, 1, (batch, n_agents, 2))
    return batch * median_rate(lambda k: [run_step(acts, env.ctx, env.rules) for _ in range(k)], 5)


def main() -> dict:
    res = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "numpy": np.__version__},
        "env_steps_per_s": {str(n): env_steps_per_second(n) for n in (10, 100)},
        "dict_only_steps_per_s": {str(n): dict_only_steps_per_second(n, len(OBS_NAMES), len(INFO_NAMES) + 1)
                                  for n in (10, 100)},
        "uniform_clear_us": {str(n): clear_us(n, uniform.clear) for n in (10, 100, 1000, 10_000)},
        "pay_as_bid_clear_us": {str(n): clear_us(n, pay_as_bid.clear) for n in (10, 100, 1000, 10_000)},
        "uniform_clear_batch_1000x10_us": clear_us(10, uniform.clear, batch=1000),
        "batched_pipeline_markets_per_s_10_agents": batched_pipeline_markets_per_second(10, 1000),
    }
    write_json(OUT, res)
    return res


if __name__ == "__main__":
    main()
