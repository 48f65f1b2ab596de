"""Equilibrium sets of the market-power study's stage games (issue 18, items 1 and 2).

For each setting of ``p2penv.experiments.market_power`` and N sellers (seed 0's market; the stage game
is the same every step and every seed): every pure equilibrium of the grid game
(``p2penv.diagnostics.equilibrium_set.pure_equilibria``) with the range of its clearing prices,
markups, welfare ($/step) and profits ($/step per seller), and a symmetric mixed equilibrium
(``p2penv.diagnostics.mixed``: regret matching+ then the indifference polish on the multiset table)
with its certificate (expected NashConv on the grid, $/step) and its expected price (Monte Carlo over
``mc`` profiles drawn from it). Grids: the study grid (``nash.action_grid()``, 21 prices x 11 dispatch
levels) for N <= 3; a coarser one for N = 5 (``COARSE``: the study grid's 2.8e10 books are out of
reach), and for every N the all-equal profiles of the study grid (an inner bound of the pure set).
IBR's point and its exact NashConv are read from ``docs/results/market_power.json`` when present and
labelled by ``equilibrium_set.label_profile``.

An existing ``--out`` file keeps the cells this run does not compute (e.g. ``--settings elastic-uniform`` adds
that setting's cells to ``docs/results/equilibrium_sets.json``).

    python -m p2penv.experiments.equilibrium_sets [--ns 2 3 5] [--settings ...] [--out results/equilibrium_sets.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from p2penv.diagnostics.equilibrium_set import label_profile, pure_equilibria, symmetric_pure_equilibria
from p2penv.diagnostics.grid_game import GridGame, price_dispatch_grid, symmetric_table
from p2penv.diagnostics.mixed import symmetric_mixed_equilibrium, two_player_equilibrium
from p2penv.diagnostics.nash import action_grid

from .market_power import SETTINGS, MarketPowerConfig, env_fns
from .output import echo

# N = 5: the buyers' value steps and the cap as asks, 6 dispatch levels: 48 actions, 12M books
COARSE_PRICES = (0.06, 0.10, 0.14, 0.18, 0.22, 0.26, 0.30, 0.40)
COARSE_DISPATCH = (-1.0, -0.6, -0.2, 0.2, 0.6, 1.0)
STUDY_MAX_N = 3
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "market_power.json"


def market(setting: str, n: int):
    """(env after reset, competitive joint action (N, 2) float64, competitive price $/kWh) of a cell."""
    from p2penv.agents.baselines import competitive_joint_action

    single, _ = env_fns(MarketPowerConfig(), setting, n)
    env = single(0)()
    env.reset(seed=0)
    base, lam = competitive_joint_action(env.ctx, env.config)
    return env, base.astype(np.float64), float(lam)


def expected_price(game: GridGame, mixture: np.ndarray, draws: int, seed: int = 0) -> tuple[float, float]:
    """(mean clearing price, mean price the sellers receive per matched kWh) $/kWh over ``draws``
    profiles sampled i.i.d. from a symmetric mixture (pay-as-bid: the clearing price is the uniform
    reference price the env reports; the sellers are paid their asks)."""
    rng = np.random.default_rng(seed)
    prof = rng.choice(game.k, size=(draws, game.n), p=mixture / mixture.sum())
    out = game.outcome(prof)
    pl = list(game.players)
    sold = out.clearing.matched[:, pl] * (out.sides[:, pl] > 0)
    paid = (sold * out.clearing.unit_price[:, pl]).sum()
    return float(np.mean(out.clearing.clearing_price)), float(paid / max(sold.sum(), 1e-300))


def cell(setting: str, n: int, *, mc: int = 20_000, rm_iterations: int = 3000, milp_seconds: float = 60.0) -> dict:
    env, base, lam = market(setting, n)
    study = action_grid()
    coarse = n > STUDY_MAX_N
    grid = price_dispatch_grid(COARSE_PRICES, COARSE_DISPATCH, env.rules) if coarse else study
    g = GridGame(env.ctx, env.rules, base, tuple(range(n)), grid)
    t0 = time.perf_counter()
    tab = symmetric_table(g)
    eq = pure_equilibria(g, competitive_price=lam, table=tab)
    t_pure = time.perf_counter() - t0
    t0 = time.perf_counter()
    # two players: the exact MILP (HiGHS may stall on very degenerate games: then as for n > 2);
    # more: regret matching+ and the polish, certified on the grid
    mix = None
    if n == 2:
        try:
            mix = two_player_equilibrium(g, time_limit=milp_seconds)
        except RuntimeError:
            mix = None
    if mix is None:
        mix = symmetric_mixed_equilibrium(tab, iterations=rm_iterations)
    t_mix = time.perf_counter() - t0
    inner = symmetric_pure_equilibria(GridGame(env.ctx, env.rules, base, tuple(range(n)), study), competitive_price=lam)
    e_price, e_seller = expected_price(g, mix.strategies[0], mc)
    out = dict(setting=setting, N=n, competitive_price=lam, grid="coarse" if coarse else "study", grid_actions=g.k,
               pure=dict(count=eq.count, profiles_checked=eq.profiles_checked, books=eq.books, seconds=t_pure,
                         price=eq.range("price"), markup_rel=eq.range("markup_rel"), welfare=eq.range("welfare"),
                         profit=eq.range("profit"), prices=sorted({round(float(p), 6) for p in eq.price})),
               all_equal_study_grid=dict(count=inner.count, price=inner.range("price"),
                                         markup_rel=inner.range("markup_rel")),
               mixed=dict(method=mix.method, nash_conv=mix.nash_conv, profit=float(mix.payoff[0]),
                          support=int(mix.support(0).size), expected_price=e_price,
                          expected_markup_rel=(e_price - lam) / lam, expected_seller_price=e_seller,
                          seconds=t_mix))
    return out


def ibr_rows() -> dict:
    """(setting, N) -> IBR's row of the committed market-power study (mean over seeds), if any."""
    if not RESULTS.exists():
        return {}
    d = json.loads(RESULTS.read_text())
    return {(r["setting"], r["N"]): r for r in d["summary"] if r["method"] == "nash"}


def run(ns=(2, 3, 5), settings=tuple(SETTINGS), out: str | Path | None = None, **kw) -> list[dict]:
    ibr = ibr_rows()
    rows = []
    for st in settings:
        for n in ns:
            r = cell(st, n, **kw)
            if (st, n) in ibr:
                row = ibr[(st, n)]
                # the study's own label (every seed's NashConv, market_power.nash_label) where it has one
                lab = label_profile(row.get("nash_conv_max", row["nash_conv"]))
                r["ibr"] = dict(price=row["price"], markup_rel=row["markup_rel"], nash_conv=lab.nash_conv,
                                label=row.get("label", lab.label))
            rows.append(r)
            p, m = r["pure"], r["mixed"]
            ib = r.get("ibr", {})
            echo(f"{st} N={n} [{r['grid']} grid, {r['grid_actions']} actions]: {p['count']} pure equilibria, "
                 f"price {p['price'][0]:.4f}..{p['price'][1]:.4f}, markup {p['markup_rel'][0]:.3f}..{p['markup_rel'][1]:.3f}"
                 f" ({p['books']:,} books, {p['seconds']:.0f} s); mixed ({m['method']}): NashConv {m['nash_conv']:.2g}, "
                 f"profit {m['profit']:.4f}, E[price] {m['expected_price']:.4f}, E[seller price] "
                 f"{m['expected_seller_price']:.4f}; IBR: "
                 + (f"price {ib['price']:.4f}, NashConv {ib['nash_conv']:.3g} -> {ib['label']!r}" if ib else "n/a"))
    if out is not None:
        from p2penv.agents.checkpoint import atomic_write_json

        # cells of an existing file that this run did not compute are kept (same grids only), in setting order
        keep = []
        if Path(out).exists():
            old = json.loads(Path(out).read_text())
            if old.get("coarse_prices") == list(COARSE_PRICES) and old.get("coarse_dispatch") == list(COARSE_DISPATCH):
                done = {(r["setting"], r["N"]) for r in rows}
                keep = [r for r in old.get("rows", []) if (r["setting"], r["N"]) not in done]
        order = list(SETTINGS)
        merged = sorted(keep + rows, key=lambda r: (order.index(r["setting"]) if r["setting"] in order else 99, r["N"]))
        atomic_write_json(Path(out), dict(rows=merged, coarse_prices=COARSE_PRICES, coarse_dispatch=COARSE_DISPATCH))
    return rows


def main(argv=None, prog: str | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--ns", type=int, nargs="*", default=[2, 3, 5])
    ap.add_argument("--settings", nargs="*", choices=tuple(SETTINGS), default=list(SETTINGS))
    ap.add_argument("--out", default="results/equilibrium_sets.json")
    a = ap.parse_args(argv)
    return run(tuple(a.ns), tuple(a.settings), a.out)


if __name__ == "__main__":
    main()
