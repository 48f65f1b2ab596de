"""Episode summary of an auction_v0 (or any env with the same infos layout, e.g. dlmp_v0) episode.

**Infos layout** (per step, as returned by ``env.step``): ``infos[agent]`` holds the float fields of
``p2penv.envs.fields.INFO_FIELDS`` (prices $/kWh, energies kWh, powers kW, money $):
bid_price, dispatch_kw, net_kwh (> 0 sold), side (+1 sell, -1 buy, 0 none), order_kwh, matched_kwh,
unit_price, market_cash (> 0 received), backstop_import_kwh, backstop_export_kwh, curtailed_kwh,
cost, feasible_lo_kw, feasible_hi_kw, ramp_violation_kw, clip_price, clip_dispatch; optionally
``nash_gain`` ($, added by the wrapper ``p2penv.diagnostics.nash_infos.NashConvInfos``); and ``"market"``, one
dict shared by all agents: t, clearing_price ($/kWh), volume_kwh, welfare (declared $), operator_surplus ($),
optionally nash_conv ($, the same wrapper). ``stack_infos`` turns a list of such dicts into (T, N) / (T,) arrays.

**Summary decisions** (``summarize_episode``):

* Profit per agent: the env's rewards when given (exact), else market_cash + feed_in x backstop
  export - retail x backstop import - cost from the tariffs (the same settlement formula), else nan.
* Realised welfare = total profit + operator surplus (money inside the community cancels; fixed
  demand has no utility term), comparable with ``competitive_equilibrium(...).welfare``.
* Market power, with the functions of ``market_power.py``, volume-weighted over steps like
  ``aggregate_episode``: HHI of sellers' matched kWh; Lerner indices against a reference price P_t
  = the step's clearing price (or, if missing / nan, the volume-weighted unit price of sellers) and
  the sellers' true marginal costs (optional (T, N) input); markup of P_t over an optional
  competitive benchmark price (T,); welfare loss against optional benchmark welfare (T,).
* Fairness (``fairness.episode_fairness``): Jain's index needs non-negative values, and profits
  are mostly negative (households buy energy), so fairness is measured on each agent's **gain over
  the backstop-only outcome** with the same dispatch: a seller gains matched x (unit_price -
  feed_in), a buyer matched x (retail - unit_price). This is the saving the P2P market creates;
  it is >= 0 whenever prices lie within [feed_in, retail] and Jain is nan when some agent's total
  gain is negative (e.g. a bid above retail). Needs both tariffs.
* NashConv: mean over steps of sum_i nash_gain_i, when the infos carry ``nash_gain``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..envs.auction_core import INFO_NAMES
from ..market.competitive import competitive_equilibrium
from ..market.prosumer import marginal_cost
from .fairness import FairnessSummary, episode_fairness
from .market_power import hhi, lerner_mean, lerner_weighted, price_markup, welfare_loss

MARKET_FIELDS = ("clearing_price", "volume_kwh", "welfare", "operator_surplus")


def _ro(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def stack_infos(infos: list[dict], agents=None) -> dict[str, np.ndarray]:
    """Per-step infos -> {field: (T, N) array} for the agent fields (plus ``nash_gain`` when every
    step has it) and {field: (T,) array} for the market fields (nan where a step lacks one).
    ``agents``: column order (default: the first step's key order)."""
    if not infos:
        raise ValueError("infos: need at least one step")
    names = list(agents) if agents is not None else list(infos[0])
    out: dict[str, np.ndarray] = {}
    fields = list(INFO_NAMES) + (["nash_gain"] if all("nash_gain" in st[names[0]] for st in infos) else [])
    for t, st in enumerate(infos):
        missing = [a for a in names if a not in st]
        if missing:
            raise ValueError(f"infos[{t}]: no entry for agent(s) {missing}")
    for f in fields:
        try:
            out[f] = np.array([[st[a][f] for a in names] for st in infos], dtype=np.float64)
        except KeyError:
            raise ValueError(f"infos: field {f!r} missing (expected the INFO_FIELDS layout)") from None
    for f in MARKET_FIELDS + ("nash_conv",):
        out[f] = np.array([float(st[names[0]].get("market", {}).get(f, np.nan)) for st in infos])
    return out


@dataclass(frozen=True)
class EpisodeSummary:
    """Per-episode totals ($, kWh) and aggregates; (N,) arrays follow ``agents``; nan = not computable
    from the inputs given (see the module docstring for each rule).

    agents, steps:            agent names, number of steps T.
    volume_kwh:               traded energy (sum of the market volume).
    declared_welfare:         sum of the mechanism's declared gains from trade ($).
    operator_surplus:         sum of the operator's surplus ($).
    profit:                   (N,) $ per agent; total_profit its sum.
    realised_welfare:         total_profit + operator_surplus ($).
    market_gain:              (N,) $ gain over the backstop-only outcome (fairness input).
    market_cash, cost:        (N,) $ from matched trades (> 0 received) / DER cost.
    sold_kwh, bought_kwh:     (N,) matched energy as seller / buyer.
    backstop_import_kwh, backstop_export_kwh, curtailed_kwh, shed_kwh: (N,) kWh.
    clip_price_count, clip_dispatch_count: (step, agent) pairs whose action component was clipped.
    ramp_violation_count, ramp_violation_kw: (step, agent) pairs with an unavoidable ramp
                              violation, and their kW sum.
    hhi, max_hhi:             volume-weighted mean / max over steps of the sellers' HHI (fraction).
    lerner_weighted, lerner_mean: volume-weighted means of the share-weighted / unweighted Lerner.
    markup, markup_rel:       volume-weighted mean markup of P_t over the benchmark ($/kWh, ratio).
    welfare_loss, welfare_loss_rel: benchmark welfare - realised welfare ($), and / benchmark.
    fairness:                 ``FairnessSummary`` of the per-step market gains (None w/o tariffs).
    nash_conv_mean:           mean stage-game NashConv ($ per step); nash_gain_mean (N,) per agent.
    """

    agents: tuple
    steps: int
    volume_kwh: float
    declared_welfare: float
    operator_surplus: float
    profit: np.ndarray
    total_profit: float
    realised_welfare: float
    market_gain: np.ndarray
    market_cash: np.ndarray
    cost: np.ndarray
    sold_kwh: np.ndarray
    bought_kwh: np.ndarray
    backstop_import_kwh: np.ndarray
    backstop_export_kwh: np.ndarray
    curtailed_kwh: np.ndarray
    shed_kwh: np.ndarray
    clip_price_count: int
    clip_dispatch_count: int
    ramp_violation_count: int
    ramp_violation_kw: float
    hhi: float
    max_hhi: float
    lerner_weighted: float
    lerner_mean: float
    markup: float
    markup_rel: float
    welfare_loss: float
    welfare_loss_rel: float
    fairness: FairnessSummary | None
    nash_conv_mean: float
    nash_gain_mean: np.ndarray


def _vw(x: np.ndarray, w: np.ndarray) -> float:
    """Volume-weighted mean over steps with a finite value and positive volume (nan if none)."""
    ok = np.isfinite(x) & (w > 0)
    return float((x[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")


def _opt(x, shape, name) -> np.ndarray | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    return a


def summarize_episode(infos: list[dict], rewards: list[dict] | None = None, *, retail_tariff: float | None = None,
                      feed_in_tariff: float | None = None, marginal_costs=None, benchmark_price=None,
                      benchmark_welfare=None, shed_value=None) -> EpisodeSummary:
    """Summarise one episode from its per-step ``infos`` (list of env.step infos dicts).

    rewards: optional per-step rewards dicts (env.step's second output); retail_tariff,
    feed_in_tariff: $/kWh backstop tariffs (``env.config``); marginal_costs: optional (T, N) true
    marginal cost of each agent at the grid ($/kWh; see ``true_marginal_costs``); benchmark_price,
    benchmark_welfare: optional (T,) competitive price ($/kWh) and welfare ($) per step (see
    ``competitive_benchmarks``); shed_value: optional (N,) value of lost load of flexible loads
    ($/kWh, ``env.fleet.shed_values``), needed for tariff-based profits when loads shed.
    """
    agents = tuple(infos[0]) if infos else ()
    s = stack_infos(infos, agents)
    T, N = s["side"].shape
    tariffs = retail_tariff is not None and feed_in_tariff is not None
    if (retail_tariff is None) != (feed_in_tariff is None):
        raise ValueError("retail_tariff / feed_in_tariff: give both or neither")
    sv = np.full(N, np.inf) if shed_value is None else np.asarray(shed_value, dtype=np.float64)
    shed = s["shed_kwh"] if "shed_kwh" in s else np.zeros((T, N))
    if rewards is not None:
        if len(rewards) != T:
            raise ValueError(f"rewards: {len(rewards)} steps, infos have {T}")
        r = np.array([[float(st[a]) for a in agents] for st in rewards])
    elif tariffs:
        if np.any(shed > 0) and shed_value is None:
            raise ValueError("shed_value: flexible loads shed demand in these infos; pass env.fleet.shed_values")
        lost = np.where(shed > 0, sv, 0.0) * shed
        r = s["market_cash"] + feed_in_tariff * s["backstop_export_kwh"] - retail_tariff * s["backstop_import_kwh"] \
            - s["cost"] - lost
    else:
        r = np.full((T, N), np.nan)
    sell, buy = s["side"] > 0, s["side"] < 0
    m, up = s["matched_kwh"], s["unit_price"]
    sold = np.where(sell, m, 0.0)
    surplus = float(np.nansum(s["operator_surplus"]))
    vol = s["volume_kwh"] if np.all(np.isfinite(s["volume_kwh"])) else sold.sum(1)

    # reference price P_t: clearing price, else the volume-weighted price sellers received
    seller_vw = np.divide((sold * up).sum(1), sold.sum(1), out=np.full(T, np.nan), where=sold.sum(1) > 0)
    price = np.where(np.isfinite(s["clearing_price"]), s["clearing_price"], seller_vw)
    h = hhi(sold)
    mc = _opt(marginal_costs, (T, N), "marginal_costs")
    lw = lerner_weighted(price, mc, sold) if mc is not None else np.full(T, np.nan)
    lm = lerner_mean(price, mc, sold) if mc is not None else np.full(T, np.nan)
    # steps without sales carry no weight; lerner_weighted sums nan shares to 0 there, mask them
    lw = np.where(sold.sum(1) > 0, lw, np.nan)
    bp = _opt(benchmark_price, (T,), "benchmark_price")
    mk, mkr = price_markup(price, bp) if bp is not None else (np.full(T, np.nan), np.full(T, np.nan))
    bw = _opt(benchmark_welfare, (T,), "benchmark_welfare")
    realised_t = r.sum(1) + np.nan_to_num(s["operator_surplus"])
    if bw is not None:
        wl = float(welfare_loss(realised_t.sum(), bw.sum())[0])
        wlr = wl / bw.sum() if bw.sum() > 0 else float("nan")
    else:
        wl = wlr = float("nan")

    if tariffs:
        buy_value = np.minimum(retail_tariff, sv)  # a flexible load values market energy at its lost value
        gain = np.where(sell, m * (up - feed_in_tariff), np.where(buy, m * (buy_value - up), 0.0))
        fair = episode_fairness(gain)
    else:
        gain, fair = np.full((T, N), np.nan), None
    if "nash_gain" in s:
        ng = s["nash_gain"]
        nc_mean, ng_mean = float(ng.sum(1).mean()), ng.mean(0)
    else:
        nc_mean, ng_mean = float("nan"), np.full(N, np.nan)
    prof = r.sum(0)
    return EpisodeSummary(
        agents=agents, steps=T, volume_kwh=float(vol.sum()), declared_welfare=float(np.nansum(s["welfare"])),
        operator_surplus=surplus, profit=_ro(prof), total_profit=float(prof.sum()),
        realised_welfare=float(prof.sum() + surplus), market_gain=_ro(gain.sum(0)),
        market_cash=_ro(s["market_cash"].sum(0)), cost=_ro(s["cost"].sum(0)), sold_kwh=_ro(sold.sum(0)),
        bought_kwh=_ro(np.where(buy, m, 0.0).sum(0)), backstop_import_kwh=_ro(s["backstop_import_kwh"].sum(0)),
        backstop_export_kwh=_ro(s["backstop_export_kwh"].sum(0)), curtailed_kwh=_ro(s["curtailed_kwh"].sum(0)), shed_kwh=_ro(shed.sum(0)),
        clip_price_count=int((s["clip_price"] > 0).sum()), clip_dispatch_count=int((s["clip_dispatch"] > 0).sum()),
        ramp_violation_count=int((s["ramp_violation_kw"] > 0).sum()),
        ramp_violation_kw=float(s["ramp_violation_kw"].sum()),
        hhi=_vw(h, vol), max_hhi=float(np.nanmax(h)) if np.any(np.isfinite(h)) else float("nan"),
        lerner_weighted=_vw(lw, vol), lerner_mean=_vw(lm, vol), markup=_vw(mk, vol), markup_rel=_vw(mkr, vol),
        welfare_loss=wl, welfare_loss_rel=float(wlr), fairness=fair, nash_conv_mean=nc_mean,
        nash_gain_mean=_ro(ng_mean),
    )


def true_marginal_costs(infos: list[dict], fleet, dt_h: float) -> np.ndarray:
    """(T, N) true marginal cost at the grid ($/kWh) of each agent at its realised dispatch:
    C'(E) / eta = (2 a E + b) / eta with E = dispatch dt (``fleet``: the env's ``Fleet``)."""
    s = stack_infos(infos)
    return marginal_cost(s["dispatch_kw"], fleet.cost_a, fleet.cost_b, dt_h) / fleet.eta


def competitive_benchmarks(infos: list[dict], fleet, *, retail_tariff: float, feed_in_tariff: float,
                           dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """(T,) competitive price ($/kWh) and welfare ($) per step: ``competitive_equilibrium`` over the
    step's feasible dispatch intervals (from the infos, i.e. given the realised previous dispatch)
    and its fixed demand (recovered as eta dispatch dt - net_kwh), with the grid backstop."""
    s = stack_infos(infos)
    shed = s["shed_kwh"] if "shed_kwh" in s else 0.0
    demand = fleet.eta * s["dispatch_kw"] * dt_h - s["net_kwh"] + shed
    sv = fleet.shed_values
    flex = np.minimum(sv, retail_tariff) < retail_tariff  # flexible loads: demand steps at their value
    out = [competitive_equilibrium(fleet.cost_a, fleet.cost_b, s["feasible_lo_kw"][t] * dt_h,
                                   s["feasible_hi_kw"][t] * dt_h, fleet.eta,
                                   fixed_demand_kwh=float(demand[t][~flex].sum()), flex_kwh=demand[t][flex],
                                   flex_value=sv[flex], retail_price=retail_tariff, feed_in_price=feed_in_tariff)
           for t in range(demand.shape[0])]
    return np.array([o.price for o in out]), np.array([o.welfare for o in out])
