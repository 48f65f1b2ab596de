"""Settlement of a cleared step: market cash, utility backstop, optional curtailment, rewards.

Matched volume is paid at the mechanism's unit price. Unmatched volume does not vanish: an unmatched
sell is exported to the utility at the feed-in tariff, an unmatched buy is imported at the retail
tariff (the backstop every real P2P pilot has). With ``unmatched="curtail"`` a seller first lowers
its realised dispatch, never below its feasible floor (ramp and capacity still hold), and only the
rest goes to the feed-in tariff. A flexible load (``shed_value`` below retail) sheds its unmatched
demand instead, losing ``shed_value`` $/kWh. Reward = profit of the step = received - paid - C(E)
(- lost value of shed load).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .batching import agent_batches

UNMATCHED_MODES = ("backstop", "curtail")


@dataclass(frozen=True)
class Settlement:
    """Per-agent settlement of one step; energies in kWh at the grid connection, money in $."""

    dispatch_kw: np.ndarray  # realised DER dispatch (after curtailment)
    net_kwh: np.ndarray  # realised net position eta*E - d*dt (> 0 sold)
    market_cash: np.ndarray  # $ from matched trades (> 0 received)
    backstop_import_kwh: np.ndarray  # bought from the utility at retail
    backstop_export_kwh: np.ndarray  # sold to the utility at feed-in
    curtailed_kwh: np.ndarray  # unmatched sell volume removed by lowering dispatch
    shed_kwh: np.ndarray  # unmatched demand of flexible loads not served (lost value shed_value)
    cost: np.ndarray  # C(E) of the realised dispatch plus battery degradation
    reward: np.ndarray  # profit of the step


def settle(
    *,
    dispatch_kw: np.ndarray,
    floor_kw: np.ndarray,
    demand_kw: np.ndarray,
    eta: np.ndarray,
    cost_a: np.ndarray,
    cost_b: np.ndarray,
    dt_h: float,
    order_kwh: np.ndarray,
    sides: np.ndarray,
    matched_kwh: np.ndarray,
    unit_price: np.ndarray,
    retail_tariff: float,
    feed_in_tariff: float,
    unmatched: str = "backstop",
    shed_value: np.ndarray | None = None,
    battery_kw: np.ndarray | None = None,
    degradation_cost: np.ndarray | None = None,
    island_voll: float = np.nan,
) -> Settlement:
    """Settle ``(..., N)`` orders (one per agent) of one step or a batch of steps.

    Order arrays (``dispatch_kw``, ``order_kwh``, ``sides``, ``matched_kwh``, ``unit_price``) share
    one shape ``(..., N)``; the agent arrays (``floor_kw``, ``demand_kw``, ``eta``, costs,
    ``shed_value``) are ``(N,)`` (one market) or the same shape as the orders. ``island_voll``
    ($/kWh, default nan = a utility backstop exists): an islanded market has no backstop, so unmatched
    demand is unserved at min(shed_value, island_voll) and unmatched supply is curtailed first.
    """
    if unmatched not in UNMATCHED_MODES:
        raise ValueError(f"unmatched: expected one of {UNMATCHED_MODES}, got {unmatched!r}")
    shape = np.shape(dispatch_kw)
    n = shape[-1]

    def orders(x, dtype=np.float64):
        return np.ascontiguousarray(x, dtype=dtype).reshape(-1, n)

    sv = np.full(n, np.inf) if shed_value is None else shed_value
    deg = np.zeros(n) if degradation_cost is None else degradation_cost
    bat = np.zeros(shape) if battery_kw is None else battery_kw
    b = int(np.prod(shape[:-1], dtype=np.int64))
    agents = agent_batches([np.broadcast_to(x, (n,)) if np.ndim(x) == 0 else x
                            for x in (floor_kw, demand_kw, eta, cost_a, cost_b, sv, deg)], n, b)
    out = settle_kernel(
        orders(dispatch_kw), orders(order_kwh), orders(sides, np.int8), orders(matched_kwh), orders(unit_price),
        orders(bat), *agents, float(dt_h), float(retail_tariff), float(feed_in_tariff),
        unmatched == "curtail" or island_voll == island_voll, float(island_voll),
    )
    return Settlement(*(a.reshape(shape) for a in out))


@numba.njit(cache=True, nogil=True, inline="always")
def settle_order(p, order, side, matched, unit, battery, floor, demand, eta, cost_a, cost_b, shed_value, degradation,
                 dt_h, retail, feed_in, curtail, island_voll, out, b, i):
    """Settle one agent's order; writes the nine ``Settlement`` fields to ``out[:, b, i]``."""
    unm = order - matched
    sell = side > 0
    unm_sell = unm if sell else 0.0
    unm_buy = 0.0 if sell else unm
    curtailed = 0.0
    if curtail and unm_sell > 0.0:
        # lower dispatch by the unmatched export, never below the ramp/capacity floor
        room = max(eta * (p - floor) * dt_h, 0.0)
        curtailed = min(unm_sell, room)
        p = p - curtailed / (eta * dt_h)
        unm_sell = unm_sell - curtailed
    shed = 0.0
    lost = 0.0
    if island_voll == island_voll:  # islanded (island_voll is not nan): no utility to import from
        if unm_buy > 0.0:  # demand the market did not serve is unserved, at its value of lost load
            shed = unm_buy
            unm_buy = 0.0
            lost = min(shed_value, island_voll) * shed
    elif shed_value < retail and unm_buy > 0.0:
        # a flexible load sheds what the market did not serve when that is cheaper than retail
        shed = unm_buy
        unm_buy = 0.0
        lost = shed_value * shed
    cash = side * matched * unit
    energy = p * dt_h
    cost = (cost_a * energy + cost_b) * energy + degradation * abs(battery) * dt_h
    out[0, b, i] = p
    out[1, b, i] = (eta * p - demand - battery) * dt_h + shed
    out[2, b, i] = cash
    out[3, b, i] = unm_buy
    out[4, b, i] = unm_sell
    out[5, b, i] = curtailed
    out[6, b, i] = shed
    out[7, b, i] = cost
    out[8, b, i] = cash + feed_in * unm_sell - retail * unm_buy - cost - lost


@numba.njit(cache=True, nogil=True)
def settle_kernel(dispatch, order, sides, matched, unit, battery, floor, demand, eta, cost_a, cost_b, shed_value,
                  degradation, dt_h, retail, feed_in, curtail, island_voll=np.nan):
    """Settlement of books ``(B, N)``; agent arrays ``(Bc, N)`` with Bc = 1 (shared) or B.

    Returns the nine ``Settlement`` arrays stacked ``(9, B, N)`` in field order.
    """
    b_n, n = dispatch.shape
    shared = floor.shape[0] == 1
    out = np.empty((9, b_n, n))
    for b in range(b_n):
        c = 0 if shared else b
        for i in range(n):
            settle_order(dispatch[b, i], order[b, i], sides[b, i], matched[b, i], unit[b, i], battery[b, i],
                         floor[c, i], demand[c, i], eta[c, i], cost_a[c, i], cost_b[c, i], shed_value[c, i],
                         degradation[c, i], dt_h, retail, feed_in, curtail, island_voll, out, b, i)
    return out
