"""P2P on a feeder: a bilateral market settled MLF-scaled, loss-charged or with a network fee, against dlmp_v0.

The same 32 households (``HouseholdMix``, one per load bus of the 33-bus feeder, seeded alike) trade
for 24 h under truthful, price-taking bidding (``agents.baselines.TruthfulAgent``; no learning) in two
markets on the same feeder and fixed load (the ``dlmp_v0`` feeder settings ``ieee33-base``, ``-congested``,
``-undervoltage``):

* **bilateral**: ``auction_v0`` (uniform price, network-blind clearing), its book decomposed into
  bilateral trades by price priority (``market.bilateral``) and settled on the feeder
  (``network.p2p_settlement.settle_on_feeder``, MLFs at each step's realised LinDistFlow point) under
  each option: ``mlf_scaled``, ``loss_charged`` (loss price lambda_0) and ``network_fee`` (electrical
  distance, mean ``fee`` $/kWh). The settlement is ex post: with fixed (truthful) bids it moves money
  and backstop volumes, not the dispatch, so the three options share one physical outcome.
* **dlmp**: ``dlmp_v0``, the network-aware LP (losses, line and voltage limits) prices every bus.

Metrics per episode (same for both markets, LinDistFlow with losses linearised at the realised point):
system cost $ = generation cost + value of shed load + lambda_0 x substation import (fixed loads
included: welfare = - system cost up to a constant), losses kWh, steps with a line or voltage
violation, the largest overload kW and voltage violation p.u. Bilateral only: traded kWh, trades, the
trades' first-order loss kWh (sum T (MLF_j - MLF_i)), DSO receipts $, MLF shortfall kWh and its
backstop $ (mlf_scaled), fees $. With pandapower, S6 on the AC power flow for real books: the busiest
step of each seed on the first feeder setting, every trade at once, full vs MLF-scaled delivery
(``s6_real_books``; ``--no-ac`` skips it).

    python -m p2penv.experiments.p2p_feeder [--quick] [--seeds 0 1 2] [--feeder-settings ieee33-congested ...]
        [--out results/p2p_feeder] [--docs]

The rows and the config keep the field name ``scenario(s)`` for the feeder setting (stored results); the option
``--scenarios`` is the deprecated alias of ``--feeder-settings`` (issue 19).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .metrics import mean_ci
from .output import echo, format_table, save_outputs
from .study_cli import add_renamed_option, configured, overrides, study_parser

OPTIONS = ("mlf_scaled", "loss_charged", "network_fee")
METRICS = ("system_cost", "delta_system_cost", "losses_kwh", "import_kwh", "violated_steps", "max_overload_kw", "max_voltage_violation_pu",
           "traded_kwh", "n_trades", "trade_loss_kwh", "dso_cash", "shortfall_kwh", "shortfall_pos_kwh", "shortfall_neg_kwh",
           "backstop_cost", "fees")


@dataclass(frozen=True)
class P2PFeederConfig:
    scenarios: tuple[str, ...] = ("ieee33-base", "ieee33-congested", "ieee33-undervoltage")
    seeds: tuple[int, ...] = (0, 1, 2)
    max_cycles: int = 24
    fee: float = 0.02  # $/kWh, mean network fee over agent pairs (network_fee option)
    fee_kind: str = "distance"  # network_fee_matrix kind
    matching: str = "price_priority"


QUICK = P2PFeederConfig(scenarios=("ieee33-congested",), seeds=(0,), max_cycles=4)


def _cores(cfg: P2PFeederConfig, scenario: str):
    """The auction and DLMP cores (one market per seed, seeded ``seeds[0] + e``) on one population."""
    from p2penv.envs.auction_core import AuctionCore
    from p2penv.envs.config import MarketConfig
    from p2penv.envs.dlmp_config import DlmpConfig
    from p2penv.envs.dlmp_core import DlmpCore

    e = len(cfg.seeds)
    dc = DlmpConfig(scenario=scenario, max_cycles=cfg.max_cycles, seed=cfg.seeds[0])
    ac = MarketConfig(n_prosumers=dc.n_prosumers, max_cycles=cfg.max_cycles, seed=cfg.seeds[0])
    return AuctionCore(ac, e), DlmpCore(dc, e), dc


def _rollout(core):
    """Truthful episode of every market of ``core``: the list of (StepOutcome, fleet) per step."""
    from p2penv.agents.baselines import TruthfulAgent

    agent = TruthfulAgent(core.config)
    core.reset()
    steps = []
    while not core.done:
        obs = core.observe()
        e, n, f = obs.shape
        act = agent.act_batch(obs.reshape(e * n, f)).reshape(e, n, -1).astype(np.float64)
        core.step(act)
        steps.append(core.last_outcome)
    return steps


def _physical(out, fleet, grid, buses, p_fixed, lam, dt):
    """(E,) system cost $, and the realised network (losses at the realised point) of one step."""
    from p2penv.network.lindistflow import LossModel

    st = out.settlement
    net_load = -st.net_kwh / dt
    first = grid.states(net_load, buses, p_fixed, [LossModel.lossless(grid.feeder)] * len(net_load))
    states = grid.states(net_load, buses, p_fixed, grid.loss_models(first))
    value = np.broadcast_to(fleet.shed_values, st.shed_kwh.shape)
    shed = st.shed_kwh * np.where(st.shed_kwh > 0, value, 0.0)  # value inf where nothing can be shed
    cost = st.cost.sum(1) + shed.sum(1) + lam * states.import_kw * dt
    return cost, states


def run_scenario(cfg: P2PFeederConfig, scenario: str) -> list[dict]:
    """Rows (market, seed) of one feeder setting."""
    from p2penv.network.lindistflow import RealisedNetwork
    from p2penv.network.p2p_settlement import backstop_adjustment, network_fee_matrix, settle_on_feeder

    auction, dlmp, dc = _cores(cfg, scenario)
    feeder, buses, lam, dt = dlmp.feeder, dlmp.buses, dc.lam, dc.dt_h
    p_fixed, q_fixed = dlmp.p_fixed_kw, dlmp.q_fixed_kvar
    grid = RealisedNetwork(feeder, q_fixed)
    fee = network_fee_matrix(feeder, buses, cfg.fee, cfg.fee_kind)
    e = len(cfg.seeds)
    acc = {m: {k: np.zeros(e) for k in METRICS if k != "delta_system_cost"} for m in ("dlmp", *OPTIONS)}
    for market, core in (("dlmp", dlmp), ("bilateral", auction)):
        steps = _rollout(core)
        for out in steps:
            cost, states = _physical(out, core.fleet, grid, buses, p_fixed, lam, dt)
            phys = dict(system_cost=cost, losses_kwh=states.losses_kw * dt, import_kwh=states.import_kw * dt,
                        violated_steps=states.violated.astype(float))
            names = ("dlmp",) if market == "dlmp" else OPTIONS
            for name in names:
                a = acc[name]
                for k, v in phys.items():
                    a[k] += v
                a["max_overload_kw"] = np.maximum(a["max_overload_kw"], states.overload_kw.max(1))
                a["max_voltage_violation_pu"] = np.maximum(a["max_voltage_violation_pu"],
                                                           states.voltage_violation_pu.max(1))
            if market == "dlmp":
                continue
            c, st = out.clearing, out.settlement
            for name in OPTIONS:
                r = settle_on_feeder(feeder, buses, out.bid_price, c.matched, c.sides, c.unit_price, -st.net_kwh / dt,
                                     name, p_fixed_kw=p_fixed, q_fixed_kvar=q_fixed, matching=cfg.matching,
                                     loss_price=lam, fee_per_kwh=fee, operator_surplus=c.operator_surplus)
                s, a = r.settlement, acc[name]
                assert np.all(np.abs(s.budget_residual) <= 1e-9 * (1 + s.trades_kwh.sum()))  # budget balance
                a["traded_kwh"] += s.trades_kwh.sum((1, 2))
                a["n_trades"] += (s.trades_kwh > 0).sum((1, 2))
                a["trade_loss_kwh"] += s.loss_total_kwh
                a["dso_cash"] += s.dso_cash
                a["fees"] += s.fee.sum((1, 2))
                a["shortfall_kwh"] += s.shortfall_kwh.sum(1)
                a["shortfall_pos_kwh"] += np.maximum(s.shortfall_kwh, 0.0).sum(1)
                a["shortfall_neg_kwh"] += np.minimum(s.shortfall_kwh, 0.0).sum(1)
                if name == "mlf_scaled":
                    a["backstop_cost"] += backstop_adjustment(s.shortfall_kwh, st.backstop_import_kwh,
                                                              auction.config.retail_tariff,
                                                              auction.config.feed_in_tariff)[0].sum(1)
    rows = []
    for name, a in acc.items():
        for i, seed in enumerate(cfg.seeds):
            row = dict(scenario=scenario, market="dlmp" if name == "dlmp" else "bilateral",
                       settlement="dlmp" if name == "dlmp" else name, seed=seed)
            row.update({k: float(v[i]) for k, v in a.items()})
            if name == "dlmp":
                for k in METRICS[METRICS.index("traded_kwh"):]:
                    row[k] = float("nan")
            rows.append(row)
    base = {r["seed"]: r["system_cost"] for r in rows if r["market"] == "dlmp"}
    for r in rows:  # $ above dlmp_v0 on the same seed (the fixed loads' energy cancels)
        r["delta_system_cost"] = r["system_cost"] - base[r["seed"]]
    return rows


def s6_real_books(cfg: P2PFeederConfig, scenario: str) -> list[dict] | None:
    """S6 on the AC power flow for real books: the busiest step of each seed's bilateral market on
    ``scenario``, every trade at once (``network.p2p_trades.check_settlement_ac``), with the LinDistFlow
    and the DistFlow MLFs of the realised point; kW. None without pandapower."""
    import importlib.util

    if importlib.util.find_spec("pandapower") is None:
        return None
    from p2penv.network.p2p_settlement import settle_on_feeder
    from p2penv.network.p2p_trades import check_settlement_ac

    auction, dlmp, dc = _cores(cfg, scenario)
    f, buses, dt = dlmp.feeder, dlmp.buses, dc.dt_h
    steps = _rollout(auction)
    out = []
    for e, seed in enumerate(cfg.seeds):
        k = int(np.argmax([o.clearing.volume[e] for o in steps]))
        o = steps[k]
        c, st = o.clearing, o.settlement
        row = dict(scenario=scenario, seed=seed, step=k)
        for point in ("lindistflow", "distflow"):
            r = settle_on_feeder(f, buses, o.bid_price[e], c.matched[e], c.sides[e], c.unit_price[e],
                                 -st.net_kwh[e] / dt, "mlf_scaled", p_fixed_kw=dlmp.p_fixed_kw,
                                 q_fixed_kvar=dlmp.q_fixed_kvar, mlf_point=point)
            t = r.settlement.trades_kwh[0] / dt  # kW
            # the operating point without the trades: the realised injections minus the trades' own
            p_inj = -r.network.net_load_kw[0] + np.bincount(buses, t.sum(0) - t.sum(1), minlength=f.n_bus)
            ac = check_settlement_ac(f, buses, t, r.mlf[0], p_inj, -dlmp.q_fixed_kvar)
            row.update({"traded_kw": float(t.sum()), f"{point}_loss_first_order_kw": ac.loss_first_order_kw,
                        "d_import_unscaled_kw": ac.d_import_unscaled_kw,
                        f"{point}_d_import_scaled_kw": ac.d_import_scaled_kw})
        out.append(row)
    return out


def summarise_rows(rows: list[dict]) -> list[dict]:
    """Mean and 95 % t half-width over seeds per (scenario, settlement)."""
    out = []
    keys = dict.fromkeys((r["scenario"], r["settlement"]) for r in rows)
    for sc, se in keys:
        rs = [r for r in rows if r["scenario"] == sc and r["settlement"] == se]
        row = dict(scenario=sc, settlement=se, n=len(rs))
        for k in METRICS:
            row[k], row[k + "_ci"] = mean_ci([r[k] for r in rs])
        out.append(row)
    return out


def run(cfg: P2PFeederConfig, out_dir: str | Path | None = None, docs: bool = False, ac_check: bool = True) -> dict:
    """Rows per (scenario, settlement, seed), their summary and, with pandapower and ``ac_check``, the S6
    check of real books (``s6_real_books``); written to ``out_dir`` / docs/results when asked."""
    t0 = time.perf_counter()
    rows = [r for sc in cfg.scenarios for r in run_scenario(cfg, sc)]
    summary = summarise_rows(rows)
    s6 = s6_real_books(cfg, cfg.scenarios[0]) if ac_check else None
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0)
    if out_dir is not None:
        save_outputs(Path(out_dir), "p2p_feeder", rows, summary, meta, s6_ac=s6)
    if docs:
        from p2penv.agents.checkpoint import atomic_write_json

        atomic_write_json(Path("docs/results/p2p_feeder.json"), dict(meta=meta, runs=rows, summary=summary, s6_ac=s6))
    echo(format_table(summary, ("scenario", "settlement", "delta_system_cost", "losses_kwh", "violated_steps",
                                "max_overload_kw", "max_voltage_violation_pu", "traded_kwh", "trade_loss_kwh",
                                "dso_cash")))
    if s6:
        echo(format_table(s6, tuple(s6[0]), ci=False))
    return dict(rows=rows, summary=summary, meta=meta, s6_ac=s6)


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/p2p_feeder", quick="one feeder setting, one seed, 4 steps", resume=None,
                      docs="also write docs/results/p2p_feeder.json", ray=None)
    ap.add_argument("--seeds", type=int, nargs="*")
    add_renamed_option(ap, "--feeder-settings", "--scenarios", dest="scenarios", nargs="*",
                       help="dlmp_v0 feeder settings (p2penv.generators.feeders)")
    ap.add_argument("--no-ac", action="store_true", help="skip the S6 check of real books on the AC power flow")
    a = ap.parse_args(argv)
    cfg = configured(ap, QUICK if a.quick else P2PFeederConfig(), **overrides(a, "seeds", "scenarios"))
    return run(cfg, a.out, docs=a.docs, ac_check=not a.no_ac)


if __name__ == "__main__":
    main()
