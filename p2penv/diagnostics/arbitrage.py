"""The known answer of a price-taker arbitrage scenario: the battery's optimal schedule and profit.

``arbitrage_optimum`` solves the episode's competitive horizon LP (``p2penv.market.competitive_horizon``)
of a scenario in which one battery is the only active agent (``p2penv.generators.arbitrage``) and
returns the battery's schedule, SOC path and profit; ``storage_actions`` turns that schedule into
the environment's storage actions, so the optimum can be replayed through the market.

Why the LP's optimum is the price taker's: with no demand and no DER anywhere, the community
balance of step t is ``I_t - X_t = c_t - x_t`` (import and export equal the battery's own charge
and discharge), and with ``retail_t = feed_in_t = lambda_t`` the backstop's cost
``lambda_t (I_t - X_t) = lambda_t (c_t - x_t)`` does not depend on how the net is split. The LP's
welfare is then ``sum_t lambda_t (x_t - c_t) - degradation_cost (c_t + x_t)``, which is exactly the
battery's profit in the environment (its orders never meet a counterparty and settle with the
backstop at ``lambda_t``), and its constraints are exactly the battery's physics (power limits,
SOC bounds, ``SOC_T = SOC_0`` with ``soc_end="start"``). Every policy's realised schedule is
feasible for the LP (the LP even allows charging and discharging in one step, which losses make
useless), so no policy earns more than the LP's optimum, and the optimum itself is reachable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..envs.config import MarketConfig
from ..market.competitive_horizon import competitive_horizon
from ..generators.protocol import PricedGenerator
from ..market.storage import Storage, battery_power, next_soc, soc_end_interval, storage_action, storage_interval


@dataclass(frozen=True)
class ArbitrageOptimum:
    """The battery's optimal episode: powers kW (> 0 charging), energies kWh, prices $/kWh, money $."""

    profit: float  # $ per episode: sum_t price_t (x_t - c_t) - degradation_cost (c_t + x_t)
    battery_kw: np.ndarray  # (T,) battery power at the terminals, > 0 charging, < 0 discharging
    soc_kwh: np.ndarray  # (T + 1,) SOC path under battery_kw, SOC_0 first
    price: np.ndarray  # (T,) lambda_t
    agent: int  # index of the battery agent
    storage: Storage  # its parameters (scalars)
    dt_h: float
    soc_end: str | None  # the end rule the schedule obeys (the environment's, to replay it)

    @property
    def charge_kwh(self) -> np.ndarray:
        """(T,) kWh charged at the terminals."""
        return np.maximum(self.battery_kw, 0.0) * self.dt_h

    @property
    def discharge_kwh(self) -> np.ndarray:
        """(T,) kWh discharged at the terminals."""
        return np.maximum(-self.battery_kw, 0.0) * self.dt_h

    @property
    def step_profit(self) -> np.ndarray:
        """(T,) $ of each step: price_t (x_t - c_t) - degradation_cost (c_t + x_t)."""
        c, x = self.charge_kwh, self.discharge_kwh
        return self.price * (x - c) - float(self.storage.degradation_cost) * (c + x)


def scenario_config(scenario: str | MarketConfig | Mapping[str, Any]) -> MarketConfig:
    """The ``MarketConfig`` of a registered scenario id, a config, or a mapping of its options."""
    if isinstance(scenario, MarketConfig):
        return scenario
    if isinstance(scenario, str):
        from ..registry import get_spec

        spec = get_spec(scenario)
        if spec.env != "auction_v0":
            raise ValueError(f"scenario {scenario!r}: arbitrage_optimum needs an auction_v0 scenario, got {spec.env}")
        return MarketConfig.from_kwargs(**dict(spec.config))
    return MarketConfig.from_kwargs(**dict(scenario))


def arbitrage_optimum(scenario: str | MarketConfig | Mapping[str, Any], *, seed: int = 0) -> ArbitrageOptimum:
    """The optimal schedule and profit of the one battery of a price-taker scenario.

    ``scenario``: a scenario id (e.g. ``"auction_v0/arbitrage_tou-v0"``), a ``MarketConfig`` or its
    options. ``seed``: the episode whose fleet is used (the arbitrage scenarios draw nothing, so any).
    The end rule is the generator's ``soc_end`` ("start" in the arbitrage scenarios), as in the env.
    ValueError unless exactly one agent has a battery, every other agent is inert (no demand, no DER)
    and the generator's ``prices`` buy and sell at one price per step.
    """
    cfg = scenario_config(scenario)
    gen, t_n, dt = cfg.generator, cfg.max_cycles, float(cfg.dt_h)
    fleet = gen(cfg.n_prosumers, t_n, dt, cfg.start_hour, np.random.default_rng(seed))
    if fleet.storage is None or not isinstance(gen, PricedGenerator):
        raise ValueError("arbitrage_optimum: the generator needs batteries and a prices() series")
    prices = gen.prices(t_n, dt, cfg.start_hour)
    if not np.array_equal(prices.retail, prices.feed_in):
        raise ValueError("arbitrage_optimum: a price taker needs retail == feed_in at every step")
    bat = np.flatnonzero(fleet.storage.capacity_kwh > 0)
    active = (fleet.demand_kw.max(0) > 0) | (fleet.p_max_kw.max(0) > 0)
    if bat.size != 1 or active.any():
        raise ValueError("arbitrage_optimum: needs exactly one battery and no demand or DER anywhere "
                         f"(batteries at {bat.tolist()}, active agents at {np.flatnonzero(active).tolist()})")
    i = int(bat[0])
    soc_end = getattr(gen, "soc_end", None)
    out = competitive_horizon(fleet, dt, prices.retail, prices.feed_in, soc_end=soc_end)
    st = fleet.storage.env(i)
    # the LP's net power; simultaneous charge and discharge is strictly worse with losses, so it
    # only appears as solver residue (~1e-10 kWh) and the net is the schedule the battery can play
    b = (out.charge_kwh[:, i] - out.discharge_kwh[:, i]) / dt
    soc = [float(st.soc0_kwh)]
    for t in range(t_n):
        soc.append(float(next_soc(soc[-1], b[t], st, dt)))
    opt = ArbitrageOptimum(0.0, b, np.array(soc), np.asarray(prices.retail, dtype=float), i, st, dt, soc_end)
    profit = float(opt.step_profit.sum())
    if abs(profit - out.welfare) > 1e-6:
        raise RuntimeError(f"arbitrage_optimum: schedule profit {profit} differs from the LP welfare {out.welfare}")
    return ArbitrageOptimum(profit, b, opt.soc_kwh, opt.price, i, st, dt, soc_end)


def storage_actions(opt: ArbitrageOptimum) -> np.ndarray:
    """(T,) storage actions u2 in [-1, 1] that replay ``opt.battery_kw`` in the environment.

    Walks the environment's own battery interval along the replayed path (``storage_interval``,
    narrowed by ``soc_end_interval`` like the env) and inverts ``battery_power`` on it; where the
    LP's power lies a solver residue outside the interval it is played at the interval's end, and
    in the last step of ``soc_end="start"`` the interval is the one power that lands on SOC_0.
    """
    st, dt, t_n = opt.storage, opt.dt_h, opt.battery_kw.shape[0]
    s = float(st.soc0_kwh)
    u = np.empty(t_n)
    for t in range(t_n):
        cmax, dmax = storage_interval(s, st, dt)
        if opt.soc_end == "start":
            cmax, dmax = soc_end_interval(s, st.soc0_kwh, cmax, dmax, st, dt, t_n - t - 1)
        u[t] = storage_action(opt.battery_kw[t], cmax, dmax)
        s = float(next_soc(s, battery_power(u[t], cmax, dmax), st, dt))
    return u


def replay_actions(opt: ArbitrageOptimum, n_prosumers: int) -> np.ndarray:
    """(T, N, 3) joint actions that replay the optimum: the battery agent plays ``storage_actions``,
    everyone (price and dispatch components included) plays 0, which is idle for inert agents."""
    acts = np.zeros((opt.battery_kw.shape[0], n_prosumers, 3))
    acts[:, opt.agent, 2] = storage_actions(opt)
    return acts
