"""Regenerate the "DLMPs against AC-OPF" table of docs/network_model.md (issue 10, item 1).

Run from the repo root: ``python scripts/acopf_reference.py [--speed]``. For each case of
``p2penv.network.acopf.CASES`` it runs pandapower's AC-OPF (``runopp(init="pf")``) once and clears
the same case as a DLMP market with ``loss_iterations`` = 1, 2, 3, 5 and both ``loss_point``s; prints
a markdown table (max |DLMP - lam_p| over the 33 buses, worst bus, solves used, LP cost, DER dispatch).
``--speed`` adds ``dlmp_v0`` steps/s on ``ieee33-base`` for ``loss_iterations`` = 1, 2, 3 (medians).
``tests/test_dlmp_acopf.py`` recomputes the AC-OPF itself and asserts these numbers' bounds.
"""
from __future__ import annotations

import argparse
import importlib

from p2penv.network import acopf


def table() -> None:
    print("| case | loss_point | loss_iterations | solves | max \\|DLMP − λ_AC\\| ($/MWh) | worst bus "
          "| LP cost ($) | AC-OPF cost ($) | DER kW (LP) | DER kW (AC) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, mk in acopf.CASES.items():
        case = mk()
        ac = acopf.run_acopf(case)
        for lp in ("lindistflow", "distflow"):
            for c in acopf.compare(case, (1, 2, 3, 5), ac, loss_point=lp):
                der = "/".join(f"{x:.1f}" for x in c.der_kw)
                acd = "/".join(f"{x:.1f}" for x in c.ac_der_kw)
                print(f"| {name} | {lp} | {c.loss_iterations} | {c.iterations_used} | {c.max_abs_error:.3f} | "
                      f"{c.worst_bus} | {c.lp_cost:.3f} | {c.ac_cost:.3f} | {der} | {acd} |")


def steps_per_second(k: int, n: int = 2000, repeats: int = 5) -> float:
    from p2penv import dlmp_v0
    from p2penv.cli import benchmarks_package  # benchmarks/ by file path (TorchRL has a `benchmarks` too)

    timing = importlib.import_module(f"{benchmarks_package().__name__}.timing")
    run = timing.parallel_stepper(dlmp_v0.parallel_env(scenario="ieee33-base", max_cycles=24, seed=0,
                                                       loss_iterations=k), 256)
    run(100)
    return timing.median_rate(run, n, repeats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", action="store_true")
    args = ap.parse_args()
    table()
    if args.speed:
        base = None
        for k in (1, 2, 3):
            r = steps_per_second(k)
            base = base or 1e6 / r
            print(f"loss_iterations={k}: {r:.0f} steps/s, {1e6 / r:.0f} us/step (+{1e6 / r - base:.0f} us)")


if __name__ == "__main__":
    main()
