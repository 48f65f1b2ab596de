"""Speed of dlmp_v0 stepping (33 buses, 32 agents); writes benchmarks/results/dlmp_env.json.

Run from the repo root: ``python -m benchmarks.bench_dlmp_env [--steps 3000] [--quick]``.
Measures env steps/s (random actions in [-1, 1], episodes of 24 steps, reset() without a seed between
episodes so the HiGHS basis stays warm) for the three ieee33 scenarios, the same with the LP solved by
``scipy.optimize.linprog`` (``lp_solver="linprog"``, cold by construction), the clearing hook alone
and the dict-only floor of a 32-agent PettingZoo step. Medians of repeated blocks, no assertions.
"""
from __future__ import annotations

import argparse
import os
import platform

import highspy
import numpy as np
import scipy

from .timing import dict_only_steps_per_second, median_rate, median_us, parallel_stepper, write_json
from p2penv import dlmp_v0
from p2penv.envs.auction_core import INFO_NAMES, OBS_NAMES
from p2penv.envs.dlmp_core import DLMP_INFO_NAMES, DLMP_OBS_NAMES

OUT = os.path.join(os.path.dirname(__file__), "results", "dlmp_env.json")


def env_steps_per_second(n_steps: int, repeats: int = 5, **kw) -> float:
    run = parallel_stepper(dlmp_v0.parallel_env(max_cycles=24, seed=0, **kw), 256)
    run(100)  # warm-up (first solve builds the HiGHS model)
    return median_rate(run, n_steps, repeats)


def clear_hook_us(n: int = 1000) -> float:
    """The clearing hook alone (DLMP LP + result) on the books of random actions."""
    from p2penv.market.pipeline import actions_to_orders

    env = dlmp_v0.parallel_env(seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    books = [actions_to_orders(rng.uniform(-1, 1, (32, 2)), env.ctx, env.rules) for _ in range(n)]
    clear = env.rules.clear  # the core's batched DLMP clearing, (E=1, N) books
    books = [(b[0][None], b[2][None], b[3][None]) for b in books]
    clear(*books[0])
    return median_us(lambda b: clear(*b), books)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--quick", action="store_true", help="300 steps per block (smoke run)")
    args = ap.parse_args(argv)
    n = 300 if args.quick else args.steps
    out = {
        "case": "dlmp_v0, ieee33 (33 buses), 32 agents (one per load bus), random actions, 24-step episodes",
        "env_steps_per_s": {
            sc: env_steps_per_second(n, scenario=sc)
            for sc in ("ieee33-base", "ieee33-congested", "ieee33-undervoltage")
        },
        "env_steps_per_s_loss_fixed": env_steps_per_second(n, loss_linearisation="fixed"),
        "env_steps_per_s_linprog": env_steps_per_second(max(200, n // 10), repeats=3, lp_solver="linprog"),
        "clear_hook_median_us": clear_hook_us(),
        "dict_only_steps_per_s": dict_only_steps_per_second(32, len(OBS_NAMES) + len(DLMP_OBS_NAMES),
                                                            len(INFO_NAMES) + len(DLMP_INFO_NAMES) + 3),
        "target_steps_per_s": 2000,
        "versions": {"highspy": highspy.Highs().version(), "scipy": scipy.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_1min_at_start": os.getloadavg()[0]},
    }
    write_json(OUT, out, quick=args.quick)  # a smoke run keeps the full numbers
    return out


if __name__ == "__main__":
    main()
