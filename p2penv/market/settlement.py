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

import numpy as np

from .prosumer import energy_cost

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
    cost: np.ndarray  # C(E) of the realised dispatch
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
) -> Settlement:
    """Settle one step for N agents with one order each (arrays of shape (N,))."""
    unm = order_kwh - matched_kwh
    sell = sides > 0
    unm_sell = np.where(sell, unm, 0.0)
    unm_buy = np.where(sell, 0.0, unm)
    if unmatched == "curtail":
        # Lower dispatch by the unmatched export, but never below the ramp/capacity floor.
        room_kwh = eta * (dispatch_kw - floor_kw) * dt_h
        curtailed = np.minimum(unm_sell, np.maximum(room_kwh, 0.0))
        dispatch_kw = dispatch_kw - curtailed / (eta * dt_h)
        unm_sell = unm_sell - curtailed
    elif unmatched == "backstop":
        curtailed = np.zeros_like(unm_sell)
    else:
        raise ValueError(f"unmatched: expected one of {UNMATCHED_MODES}, got {unmatched!r}")
    if shed_value is not None:
        # a flexible load sheds what the market did not serve when that is cheaper than retail
        shed = np.where(shed_value < retail_tariff, unm_buy, 0.0)
        unm_buy = unm_buy - shed
        lost = np.where(shed > 0, shed_value, 0.0) * shed
    else:
        shed = np.zeros_like(unm_buy)
        lost = 0.0
    cash = sides * matched_kwh * unit_price
    cost = energy_cost(dispatch_kw, cost_a, cost_b, dt_h)
    reward = cash + feed_in_tariff * unm_sell - retail_tariff * unm_buy - cost - lost
    net = (eta * dispatch_kw - demand_kw) * dt_h + shed
    return Settlement(dispatch_kw, net, cash, unm_buy, unm_sell, curtailed, shed, cost, reward)
