"""RLlib PPO training speed (``p2penv.agents.rllib_ppo``): agent-steps/s of ``algo.train()`` iterations on a
one-step auction (``auction_v0/first_price2-v0``) and a 24-step battery (``auction_v0/arbitrage_tou-v0``), with one
env copy per sampler (the behaviour before ``auto_num_envs``) and with the default (``auto_num_envs``: up to 64).
Settings as in the learner validation: batch 4,000 agent-steps, minibatch 500, 10 epochs, lr 1e-3. The first
iteration (warm-up) is left out of the median. Writes results/rllib.json (needs the ``rllib`` extra).

    python -m benchmarks.bench_rllib [--quick]
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .timing import quick_flag, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "rllib.json")
SCENARIOS = {"auction_v0/first_price2-v0": 0.0, "auction_v0/arbitrage_tou-v0": 0.99}  # id -> gamma


def rllib_rate(sid: str, gamma: float, num_envs: int | None, iterations: int, batch: int) -> dict:
    """Median agent-steps/s of the training iterations after the first (``num_envs``: env copies per
    sampler, None for ``auto_num_envs``)."""
    from p2penv.agents.rllib_ppo import RLlibPPOConfig, train_rllib_ppo

    cfg = RLlibPPOConfig(seed=0, train_batch_size=batch, minibatch_size=min(500, batch), num_epochs=10, gamma=gamma,
                         lr=1e-3, iterations=iterations, num_envs_per_env_runner=num_envs)
    with tempfile.TemporaryDirectory(prefix="p2penv-bench-rllib-") as out:
        res = train_rllib_ppo(sid, {"seed": 0}, cfg, out_dir=out)
    per_iter = res.agent_steps / max(res.iterations, 1)
    walls = np.asarray(res.iteration_wall_s[1:] or res.iteration_wall_s, dtype=float)
    return dict(agent_steps_per_s=float(per_iter / np.median(walls)), env_copies=res.num_envs_per_env_runner,
                iteration_wall_s=[float(w) for w in res.iteration_wall_s], agent_steps=res.agent_steps)


def main(argv: list[str] | None = None) -> dict:
    q = quick_flag(argv, "one scenario, 2 small iterations per setting (smoke run)")
    iterations, batch = (2, 400) if q else (4, 4000)
    out: dict = {"settings": dict(train_batch_size=batch, minibatch_size=min(500, batch), num_epochs=10, lr=1e-3,
                                  iterations=iterations, num_env_runners=0),
                 "load_avg_1min_at_start": os.getloadavg()[0]}
    for sid, gamma in list(SCENARIOS.items())[:1 if q else None]:
        for label, n in (("one_copy", 1), ("auto", None)):
            out[f"{sid}:{label}"] = r = rllib_rate(sid, gamma, n, iterations, batch)
            print(f"{sid:32s} {label:8s} {r['env_copies']:3d} copies {r['agent_steps_per_s']:9,.0f} agent-steps/s")
    write_json(OUT, out, quick=q, echo=False)
    return out


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
