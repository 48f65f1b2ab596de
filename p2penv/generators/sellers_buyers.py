"""Sellers-and-buyers market: the scenario of the market-power experiments.

``SellerBuyerMarket``: ``n_sellers`` identical dispatchable units (no own demand) and
``n_buyers`` pure consumers with flat demand (inelastic, or flexible loads with values of lost load
spread over an interval: elastic), so the stage game is the same every step. Total
capacity is ``capacity_ratio`` x total demand and seller i's cost is ``a0 * N E^2 + b E``, so the
*aggregate* competitive supply curve, the competitive price and the welfare optimum do not depend
on N: only the number of sellers it is split among does (the textbook market-power comparison).

The env factories of this market (``seller_buyer_env_fn``, ``seller_buyer_vector_fn``) are in
``p2penv.seller_buyer``: a generator module does not import the env that consumes it.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from p2penv.market.prosumer import Fleet


@dataclass(frozen=True)
class SellerBuyerMarket:
    """Generator (see module doc): sellers first (``prosumer_0..``), then buyers. kW, $/kWh."""

    n_sellers: int
    capacity_ratio: float = 1.5  # total seller capacity / total demand
    demand_kw: float = 2.0  # per buyer
    a0: float = 0.005  # $/kWh^2 aggregate cost curvature (seller: a0 * n_sellers)
    b: float = 0.08  # $/kWh linear cost
    # None: inelastic buyers (always import at retail). (lo, hi): flexible loads whose values of lost
    # load are spread evenly over [lo, hi] $/kWh: a stepped, price-elastic demand curve.
    buyer_values: tuple[float, float] | None = None

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        ns = self.n_sellers
        nb = n - ns
        if ns < 1 or nb < 1:
            raise ValueError(f"n_sellers: need 1 <= n_sellers < n_prosumers, got {ns} of {n}")
        total_d = nb * self.demand_kw
        cap = self.capacity_ratio * total_d / ns
        sellers = np.arange(n) < ns
        demand = np.tile(np.where(sellers, 0.0, self.demand_kw), (horizon, 1))
        pmax = np.tile(np.where(sellers, cap, 0.0), (horizon, 1))
        ramp = np.where(sellers, cap, 1.0)
        cost_a = np.where(sellers, self.a0 * ns, 0.01)
        cost_b = np.where(sellers, self.b, 0.0)
        shed = np.full(n, np.inf)
        if self.buyer_values is not None:
            shed[ns:] = np.linspace(self.buyer_values[0], self.buyer_values[1], nb)
        f = Fleet(demand, pmax, ramp, np.ones(n), cost_a, cost_b, np.zeros(n), np.arange(1, n + 1),
                  tuple(f"prosumer_{i}" for i in range(n)), shed)
        f.validate()
        return f


def sellers(n: int) -> list[str]:
    """Agent names of the ``n`` sellers (the learners)."""
    return [f"prosumer_{i}" for i in range(n)]
