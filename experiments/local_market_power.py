"""Local market power behind a congested line or a voltage limit: feeder Nash vs truthful, coalitions,
quantity misreports, and DLMP vs a network-unaware uniform auction audited in AC.

One order book on the 33-bus feeder (``ieee33-*`` feeder settings, LinDistFlow DLMP LP, losses linearised
at the fixed loads, lambda_0 = 0.10 $/kWh): three strategic sellers at buses 12, 14, 15 (3, 3, 2 kWh,
true costs 0.04, 0.05, 0.06 $/kWh), a buyer at bus 17 (10 kWh, value 0.30 = retail) inside the zone,
and outside it a seller at bus 20 (6 kWh at 0.07) and a buyer at bus 24 (5 kWh at 0.25), both
truthful. The same book on ``ieee33-base`` (no binding limit), ``ieee33-congested`` (line 5 -> 6,
3.5 kW of headroom) and ``ieee33-undervoltage`` (v_min 0.9156 p.u., about 4 kW at bus 17).

Profiles per feeder setting (``p2penv.diagnostics.feeder_equilibrium``):
  truthful  every order at its true cost / value (= the competitive, price-taking benchmark: the
            costs are linear, so the marginal-cost supply curve is the truthful book);
  nash      iterated exact (MILP) best response of the three sellers;
  coalition the three sellers' exact joint best response, others at the Nash profile;
  withhold  seller 0 declares more own demand (offers less) at truthful prices: best declaration;
  shade     the bus-17 buyer declares less demand against the Nash profile: best declaration.
Metrics: zonal HHI, min RSI, pivotal sellers, zonal DLMP and markup over truthful
(``local_market_power``), profits, true welfare; the same orders cleared by the uniform double
auction (``p2penv.market.mechanisms.uniform.clear``, no network) with both dispatches (fixed loads
+ matched bids - matched asks) audited by pandapower AC power flow.

    python -m p2penv.experiments.local_market_power [--quick] [--feeder-settings ieee33-congested ...]
        [--out results/local_market_power] [--resume]

The rows and the config keep the field name ``scenario(s)`` for the feeder setting (stored results); the option
``--scenarios`` is the deprecated alias of ``--feeder-settings`` (issue 19).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .checkpoints import RowCheckpoint
from .dispatch import Task, run_tasks
from .output import echo, format_table, new_figure, save_figure, save_outputs
from .study_cli import add_renamed_option, check_known, configured, overrides, run_study, study_parser

PROFILES = ("truthful", "nash", "coalition", "withhold", "shade")
SCENARIOS = ("ieee33-base", "ieee33-congested", "ieee33-undervoltage")
TABLE = ("scenario", "profile", "binding", "zone_dlmp", "markup", "hhi", "rsi_min", "n_pivotal", "seller_profit",
         "buyer17_profit", "welfare_loss", "dlmp_ac_max_overload_kva", "uniform_ac_max_overload_kva",
         "dlmp_ac_max_v_violation_pu", "uniform_ac_max_v_violation_pu", "dlmp_ac_line_viol", "dlmp_ac_v_viol",
         "uniform_ac_line_viol", "uniform_ac_v_viol")


@dataclass(frozen=True)
class LocalMarketPowerConfig:
    """The book (buses, kWh, true $/kWh, sides), which orders are strategic sellers / the shading
    buyer, and the search settings. declared: fractions of the true quantity tried by misreports."""

    scenarios: tuple[str, ...] = SCENARIOS
    profiles: tuple[str, ...] = PROFILES
    buses: tuple[int, ...] = (12, 14, 15, 17, 20, 24)
    quantities: tuple[float, ...] = (3.0, 3.0, 2.0, 10.0, 6.0, 5.0)
    true_prices: tuple[float, ...] = (0.04, 0.05, 0.06, 0.30, 0.07, 0.25)
    sides: tuple[int, ...] = (1, 1, 1, -1, 1, -1)
    sellers: tuple[int, ...] = (0, 1, 2)
    buyer: int = 3
    wholesale_price: float = 0.10
    retail: float = 0.30   # $/kWh a seller pays for energy it sold but does not have
    feed_in: float = 0.04  # $/kWh a buyer gets for energy it bought but does not need
    declared: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.5, 31), 3).tolist())
    delta: float = 1e-7
    # AC violations are counted beyond the LinDistFlow-vs-AC model error of an LP-feasible dispatch
    # (up to 0.35 kVA and 2e-5 p.u. here; see _Ac), so they flag what the dispatch itself adds
    ac_tol_kva: float = 0.5
    ac_tol_pu: float = 5e-5

    def __post_init__(self):
        check_known("profiles", self.profiles, PROFILES)
        n = len(self.buses)
        if not (len(self.quantities) == len(self.true_prices) == len(self.sides) == n):
            raise ValueError("buses/quantities/true_prices/sides: need one entry per order")


QUICK = replace(LocalMarketPowerConfig(), declared=(0.0, 0.25, 0.5, 0.65, 0.75, 1.0, 1.25))


# -- building blocks -------------------------------------------------------------------------------
def _market_and_book(cfg: LocalMarketPowerConfig, scenario: str):
    from p2penv.diagnostics.dlmp_best_response import PiecewiseLinear
    from p2penv.diagnostics.feeder_equilibrium import FeederBook
    from p2penv.generators.feeders import FEEDER_SETTINGS as SC
    from p2penv.network import loss_model_at
    from p2penv.network.dlmp import DlmpMarket

    f = SC[scenario].build_feeder()
    m = DlmpMarket(f, cfg.buses, loss_model=loss_model_at(f, use_voltages=False))
    fns = tuple(PiecewiseLinear.linear(p, q) for p, q in zip(cfg.true_prices, cfg.quantities))
    book = FeederBook(cfg.true_prices, cfg.quantities, cfg.sides, cfg.wholesale_price, f.p_load_kw, f.q_load_kvar,
                      fns)
    return f, m, book


def _true_welfare(book, lp, prices) -> float:
    """$ true welfare: declared LP welfare with every order's declared price replaced by its true
    fn (fixed loads are inelastic: their value is a constant left out)."""
    w = float(lp.welfare)
    for i, fn in enumerate(book.true_fns):
        mi = float(lp.matched[i])
        if book.sides[i] == 1:
            w += prices[i] * mi - float(fn(mi))
        elif book.sides[i] == -1:
            w += float(fn(mi)) - prices[i] * mi
    return w


def _injections(f, buses, matched, sides, dt_h=1.0):
    """(p_inj, q_inj) kW/kvar per bus: minus (fixed load + matched bids - matched asks)."""
    net = np.bincount(buses, -np.asarray(sides) * np.asarray(matched) / dt_h, minlength=f.n_bus)
    return -(f.p_load_kw + net), -f.q_load_kvar


class _Ac:
    """AC audit of a dispatch (pandapower, one net, loads updated in place like ``AcAudit``).

    Raw counts compare the AC result with the limits. LinDistFlow ignores losses and the scenarios
    leave a few kW of headroom, so the fixed loads alone already break the tight limits in AC
    (``ieee33-congested``: line 5 at 1215.8 kVA > 1193; ``ieee33-undervoltage``: V_17 = 0.9131 <
    0.9156 p.u.). The *calibrated* counts shift each limit by the AC - LinDistFlow gap at the fixed
    loads, so they count what the agents' trades add beyond the headroom the LP allows."""

    def __init__(self, f, tol_kva, tol_pu):
        import pandapower as pp

        from p2penv.network.ac_check import results, to_pandapower
        from p2penv.network.lindistflow import LossModel, RealisedNetwork

        self.pp, self.results = pp, results
        self.f, self.tol_kva, self.tol_pu = f, tol_kva, tol_pu
        self.net = to_pandapower(f, np.where(np.arange(f.n_bus) == f.root, 0.0, -1.0), np.zeros(f.n_bus))
        ac0 = self._solve(-f.p_load_kw, -f.q_load_kvar)
        lin0 = RealisedNetwork(f, f.q_load_kvar).state(f.p_load_kw, LossModel.lossless(f))
        self.s_gap = np.hypot(ac0.p_flow_kw, ac0.q_flow_kvar) - np.hypot(lin0.flows_kw, f.path @ f.q_load_kvar)
        self.v_gap = ac0.v - lin0.voltages

    def _solve(self, p_inj, q_inj):
        b = self.f.non_root  # to_pandapower made one load per non-root bus, in this order
        self.net.load["p_mw"] = -np.asarray(p_inj)[b] / 1000.0
        self.net.load["q_mvar"] = -np.asarray(q_inj)[b] / 1000.0
        self.pp.runpp(self.net, tolerance_mva=1e-10, calculate_voltage_angles=True, numba=False)
        return self.results(self.net)

    def __call__(self, p_inj, q_inj) -> dict:
        f = self.f
        ac = self._solve(p_inj, q_inj)
        s = np.hypot(ac.p_flow_kw, ac.q_flow_kvar)
        lim = f.line_limit_kva
        rated = np.isfinite(lim)
        over_l = s - (lim + self.s_gap)
        out_v = np.maximum(f.v_min + self.v_gap - ac.v, ac.v - f.v_max - self.v_gap)
        return dict(
            line_viol_raw=int(np.sum(rated & (s > lim + self.tol_kva))),
            v_viol_raw=int(np.sum((ac.v < f.v_min - self.tol_pu) | (ac.v > f.v_max + self.tol_pu))),
            line_viol=int(np.sum(rated & (over_l > self.tol_kva))),
            v_viol=int(np.sum(out_v > self.tol_pu)),
            max_overload_kva=float(np.max(over_l[rated])) if rated.any() else float("nan"),
            max_v_violation_pu=float(np.max(out_v)),
            min_v_pu=float(ac.v.min()),
            max_loading=float(np.max(s[rated] / lim[rated])) if rated.any() else float("nan"))


def _row(cfg, scenario, profile, f, m, book, prices, quantities, truth_lp, ac, extra=None) -> dict:
    from p2penv.diagnostics.feeder_equilibrium import book_profits
    from p2penv.diagnostics.local_market_power import local_market_power
    from p2penv.market.mechanisms import uniform

    u, lp = book_profits(m, book, prices, quantities)
    cap = np.where(book.sides == 1, quantities, 0.0)
    lmp = local_market_power(lp, f, cfg.buses, cap, competitive_dlmp=truth_lp.dlmp)
    z = lmp.zones[0] if lmp.zones else None
    sel = list(cfg.sellers)
    w = _true_welfare(book, lp, np.asarray(prices, dtype=np.float64))
    un = uniform.clear(prices, quantities, book.sides)
    buses = np.asarray(cfg.buses)
    d_ac = ac(*_injections(f, buses, lp.matched, book.sides))
    u_ac = ac(*_injections(f, buses, un.matched, book.sides))
    zone_buses = z.buses if z is not None else np.array([cfg.buses[cfg.buyer]])
    row = dict(
        scenario=scenario, profile=profile,
        binding=("none" if z is None else f"{z.kind} {z.index}"),
        offers=" ".join(f"{x:.4f}" for x in np.asarray(prices)[sel]),
        declared_kwh=" ".join(f"{x:g}" for x in np.asarray(quantities)),
        zone_dlmp=float(z.dlmp) if z is not None else float(lp.dlmp[cfg.buses[cfg.buyer]]),
        markup=float(z.markup) if z is not None else float(lp.dlmp[cfg.buses[cfg.buyer]]
                                                           - truth_lp.dlmp[cfg.buses[cfg.buyer]]),
        hhi=float(z.hhi) if z is not None else float("nan"),
        rsi_min=float(np.min(z.rsi)) if z is not None and z.rsi.size else float("nan"),
        n_pivotal=int(z.pivotal.sum()) if z is not None else 0,
        seller_profit=float(np.nansum(u[sel])),
        **{f"profit_{i}": float(u[i]) for i in range(book.n)},
        buyer17_profit=float(u[cfg.buyer]), welfare=w,
        dlmp_buyer=float(lp.dlmp[cfg.buses[cfg.buyer]]), zone_buses=" ".join(map(str, zone_buses)),
        uniform_price=float(un.clearing_price),
        uniform_matched=" ".join(f"{x:g}" for x in np.round(un.matched, 4)),
        dlmp_matched=" ".join(f"{x:g}" for x in np.round(lp.matched, 4)),
        **{f"dlmp_ac_{k}": v for k, v in d_ac.items()}, **{f"uniform_ac_{k}": v for k, v in u_ac.items()},
    )
    row.update(extra or {})
    return row


def scenario_rows(cfg: LocalMarketPowerConfig, scenario: str, done=lambda p: False):
    """Yield the rows of one scenario (profiles not ``done``)."""
    from p2penv.diagnostics.feeder_equilibrium import (
        coalition_best_response,
        demand_misreport,
        feeder_iterated_best_response,
    )

    f, m, book = _market_and_book(cfg, scenario)
    q = book.quantities
    truth_lp = m.clear(book.prices, q, book.sides, book.wholesale_price, book.p_load_kw, book.q_load_kvar)
    ac = _Ac(f, cfg.ac_tol_kva, cfg.ac_tol_pu)
    nash = None
    t0 = time.perf_counter()
    if any(not done(p) for p in ("nash", "coalition", "shade")):
        nash = feeder_iterated_best_response(m, book, cfg.sellers, delta=cfg.delta)
    for p in cfg.profiles:
        if done(p):
            continue
        t = time.perf_counter()
        if p == "truthful":
            yield _row(cfg, scenario, p, f, m, book, book.prices, q, truth_lp, ac)
        elif p == "nash":
            yield _row(cfg, scenario, p, f, m, book, nash.prices, q, truth_lp, ac, dict(
                nash_conv=nash.nash_conv, nash_conv_sup=nash.nash_conv_sup, iterations=nash.iterations,
                converged=nash.converged, wall_s=time.perf_counter() - t0))
        elif p == "coalition":
            c = coalition_best_response(m, book, cfg.sellers, nash.prices, delta=cfg.delta)
            pr = nash.prices.copy()
            pr[list(cfg.sellers)] = c.recleared_prices
            yield _row(cfg, scenario, p, f, m, book, pr, q, truth_lp, ac, dict(
                coalition_gain=c.recleared_profit - float(nash.profits.sum()), coalition_milp_profit=c.profit,
                wall_s=time.perf_counter() - t))
        elif p in ("withhold", "shade"):
            agent = cfg.sellers[0] if p == "withhold" else cfg.buyer
            prices = book.prices if p == "withhold" else nash.prices
            beyond = cfg.retail if p == "withhold" else cfg.feed_in
            r = demand_misreport(m, book, agent, np.asarray(cfg.declared) * q[agent], beyond_price=beyond,
                                 prices=prices)
            qq = q.copy()
            qq[agent] = r.best_declared_kwh
            # the row's profits use the book's true fn on [0, Q]: fine for declarations <= Q (the best here)
            yield _row(cfg, scenario, p, f, m, book, prices, qq, truth_lp, ac, dict(
                misreport_agent=agent, misreport_declared_kwh=r.best_declared_kwh, misreport_gain=r.best_gain,
                wall_s=time.perf_counter() - t))


def profile_rows(cfg: LocalMarketPowerConfig, scenario: str, profiles: tuple[str, ...]) -> list[dict]:
    """The rows of ``profiles`` of one scenario (one task: they share the scenario's Nash profile)."""
    return list(scenario_rows(cfg, scenario, done=lambda p: p not in profiles))


def run(cfg: LocalMarketPowerConfig, out_dir: str | Path | None = None, resume: bool = False, ray=None) -> dict:
    """Run every (scenario, profile) row, checkpointed; writes CSV/JSON, a markdown table and a
    figure to ``out_dir`` when given; returns rows and meta. ``ray``: None, "local" or a cluster
    address: one Ray task per scenario (``p2penv.experiments.dispatch``)."""
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    ck = RowCheckpoint(out, "local_market_power", asdict(cfg), resume, total=len(cfg.scenarios) * len(cfg.profiles))
    tasks = []
    for sc in cfg.scenarios:
        todo = tuple(p for p in cfg.profiles if ck.find(scenario=sc, profile=p) is None)
        if todo:
            tasks.append(Task(profile_rows, (cfg, sc, todo), tuple(dict(scenario=sc, profile=p) for p in todo), sc))
    run_tasks(tasks, ck, ray)
    rows = [ck.find(scenario=sc, profile=p) for sc in cfg.scenarios for p in cfg.profiles]
    truth = {r["scenario"]: r["welfare"] for r in rows if r["profile"] == "truthful"}
    for r in rows:
        r["welfare_loss"] = truth.get(r["scenario"], np.nan) - r["welfare"]
    meta = dict(config=asdict(cfg), wall_s=time.perf_counter() - t0, resumed_rows=ck.reused)
    table = format_table(rows, TABLE, ci=False)
    if out is not None:
        save_outputs(out, "local_market_power", rows, [], meta)
        from p2penv.agents.checkpoint import atomic_write_text

        atomic_write_text(out / "local_market_power.md", markdown_table(rows))
        plot(rows, cfg, out / "local_market_power.png")
    echo(table)
    return dict(rows=rows, meta=meta)


def markdown_table(rows: list[dict]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "nan" if not np.isfinite(v) else ("0" if abs(v) < 5e-7 else f"{v:.4g}")
        return str(v)

    cols = TABLE + ("offers",)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], cfg: LocalMarketPowerConfig, path: Path) -> Path:
    keys = (("zone_dlmp", "zonal DLMP $/kWh"), ("seller_profit", "zone sellers' profit $"),
            ("uniform_ac_max_loading", "AC loading of the rated line, uniform"))
    fig, axes = new_figure(len(keys), 4.2, 3.3)
    x = np.arange(len(cfg.profiles))
    wd = 0.8 / max(len(cfg.scenarios), 1)
    for ax, (k, title) in zip(axes, keys):
        for j, sc in enumerate(cfg.scenarios):
            ys = [next((r[k] for r in rows if r["scenario"] == sc and r["profile"] == p), np.nan) for p in cfg.profiles]
            ax.bar(x + (j - (len(cfg.scenarios) - 1) / 2) * wd, ys, wd, label=sc)
        ax.set_xticks(x, cfg.profiles, rotation=30, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=6)
    return save_figure(fig, path)


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/local_market_power", quick="coarse misreport grid (seconds)",
                      ray="feeder settings")
    add_renamed_option(ap, "--feeder-settings", "--scenarios", dest="scenarios", nargs="*", choices=SCENARIOS,
                       help="feeder settings (p2penv.generators.feeders)")
    a = ap.parse_args(argv)
    cfg = configured(ap, QUICK if a.quick else LocalMarketPowerConfig(), **overrides(a, "scenarios"))
    return run_study(ap, run, cfg, a.out, resume=a.resume, ray=a.ray)


if __name__ == "__main__":
    main()
