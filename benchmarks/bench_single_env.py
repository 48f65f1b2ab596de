"""Steps/s of the single PettingZoo ``auction_v0`` env by info level; writes benchmarks/results/single_env.json.

Run: ``python -m benchmarks.bench_single_env [--quick]`` (``p2penv bench --only single_env``).

What is timed: ``env.step`` on a dict of float32 actions (64 pre-drawn random joint actions in turn) and
``env.reset()`` whenever the episode ends, so the per-episode scenario draw is in the figure. Two episode
lengths: the default ``max_cycles=24`` (a reset every 24 steps, what training sees) and ``max_cycles=10_000``
(the step alone, as ``bench_auction``'s ``env_steps_per_s``). Each figure is the best (and the median) of
``repeats`` blocks of ``steps`` steps, wall clock (``time.perf_counter``) and CPU time of this process
(``time.process_time``, less sensitive to other jobs on a shared machine); the 1-minute load average at the
start and end is recorded beside them. Beside the env: the dict-only floor of a PettingZoo step of the same
size (``timing.dict_only_steps_per_second``: the five dicts and nothing else), with the full and the lean
info dicts. No assertions: the targets are read off the JSON (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from .timing import dict_only_steps_per_second, write_json
from p2penv import auction_v0
from p2penv.envs.auction_core import INFO_NAMES, OBS_NAMES
from p2penv.envs.fields import LEAN_INFO_NAMES

OUT = os.path.join(os.path.dirname(__file__), "results", "single_env.json")
N_AGENTS = 10


def steps_per_second(info_level: str, max_cycles: int, steps: int, repeats: int, n_agents: int = N_AGENTS) -> dict:
    """Best and median steps/s (wall clock and CPU time) of ``repeats`` blocks of ``steps`` env steps."""
    env = auction_v0.parallel_env(n_prosumers=n_agents, max_cycles=max_cycles, seed=0, info_level=info_level)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [{a: rng.uniform(-1, 1, 2).astype(np.float32) for a in env.possible_agents} for _ in range(64)]

    def run(k: int) -> None:
        for i in range(k):
            if not env.agents:
                env.reset()
            env.step(acts[i & 63])

    run(min(steps, 500))  # warm-up (compiled kernels are loaded from numba's cache on first use)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run(steps)
        wall.append(steps / (time.perf_counter() - t0))
        cpu.append(steps / (time.process_time() - c0))
    return {"wall_best": max(wall), "wall_median": float(np.median(wall)), "cpu_best": max(cpu),
            "cpu_median": float(np.median(cpu)), "wall_all": wall}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="bench_single_env")
    ap.add_argument("--quick", action="store_true", help="a smoke run (few short blocks; single_env_quick.json)")
    args = ap.parse_args(argv)
    steps, repeats = (300, 2) if args.quick else (4000, 9)
    load0 = os.getloadavg()[0]
    res: dict = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "numpy": np.__version__, "cores": os.cpu_count()},
        "n_agents": N_AGENTS, "steps_per_block": steps, "repeats": repeats,
        "note": "best of the repeats is the figure to read (other jobs share the machine); cpu_* is CPU time "
                "of this process",
    }
    for max_cycles in (24, 10_000):
        res[f"max_cycles_{max_cycles}"] = {level: steps_per_second(level, max_cycles, steps, repeats)
                                           for level in ("lean", "full")}
    res["dict_only_steps_per_s"] = {
        "full": dict_only_steps_per_second(N_AGENTS, len(OBS_NAMES), len(INFO_NAMES) + 1),
        "lean": dict_only_steps_per_second(N_AGENTS, len(OBS_NAMES), len(LEAN_INFO_NAMES) + 1)}
    res["load_average_1min"] = {"start": load0, "end": os.getloadavg()[0]}
    write_json(OUT, res, quick=args.quick)
    return res


if __name__ == "__main__":
    main()
