"""Capacity-constrained pay-as-bid duopoly (Bertrand-Edgeworth): the closed-form mixed equilibrium that
validates ``mixed`` (issue 18, item 2), built as an auction_v0 market.

Two sellers of capacity k kWh each at constant cost c $/kWh sell into inelastic demand theta kWh
(k < theta < 2k) bid at the cap P (the buyers' retail backstop); the feed-in tariff is c, so unsold
output is neutral. The lower ask sells k at its ask, the higher one the residual theta - k at its
own ask (pay-as-bid); equal asks share pro rata. No pure equilibrium exists: at any common price one
seller gains by undercutting, and from low prices the residual demand at P pays more. The symmetric
mixed equilibrium (Kreps & Scheinkman 1983; Deneckere & Kovenock 1996 for this residual rule):
each seller is indifferent over its support, so with F the rival's ask CDF

    (p - c) [k (1 - F(p)) + (theta - k) F(p)] = (P - c)(theta - k)
    F(p) = [k (p - c) - (P - c)(theta - k)] / [(p - c)(2k - theta)]   on [p_lo, P],
    p_lo = c + (P - c)(theta - k) / k,   expected profit (P - c)(theta - k) $ per step per seller,

no atom (F(P) = 1). Defaults (issue 18): k = 3 kWh, c = 0.05, theta = 4 kWh, P = 0.30 $/kWh:
p_lo = 0.1333 $/kWh, profit 0.25 $/step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid_game import GridGame, price_dispatch_grid

# $/kWh^2 (per seller: x 2): a fleet's quadratic cost must be > 0; at the fixed full dispatch it
# lowers every profit by the constant 2 * 1e-12 * k^2 = 1.8e-11 $, far below any tolerance used here
QUADRATIC_COST = 1e-12


@dataclass(frozen=True)
class BertrandEdgeworth:
    """The duopoly of the module docstring; kWh per 1 h step, $/kWh."""

    capacity_kwh: float = 3.0  # k, per seller
    cost: float = 0.05  # c, $/kWh, also the feed-in tariff
    demand_kwh: float = 4.0  # theta, inelastic, bid at the cap
    cap: float = 0.30  # P, $/kWh: price cap = retail tariff

    def __post_init__(self):
        k, th = self.capacity_kwh, self.demand_kwh
        if not k < th < 2 * k:
            raise ValueError(f"demand_kwh: need capacity < demand < 2 capacity, got {th} and {k}")
        if not 0 <= self.cost < self.cap:
            raise ValueError(f"cost: need 0 <= cost < cap, got {self.cost} and {self.cap}")

    @property
    def support_low(self) -> float:
        """p_lo $/kWh, the lowest ask of the equilibrium support."""
        k, c, th, P = self.capacity_kwh, self.cost, self.demand_kwh, self.cap
        return c + (P - c) * (th - k) / k

    @property
    def profit(self) -> float:
        """Equilibrium expected profit $/step per seller: (P - c)(theta - k)."""
        return (self.cap - self.cost) * (self.demand_kwh - self.capacity_kwh)

    def cdf(self, p) -> np.ndarray:
        """Equilibrium ask CDF F(p): 0 below p_lo, 1 from P on."""
        k, c, th, P = self.capacity_kwh, self.cost, self.demand_kwh, self.cap
        x = np.asarray(p, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (k * (x - c) - (P - c) * (th - k)) / ((x - c) * (2 * k - th))
        return np.where(x < self.support_low, 0.0, np.where(x >= P, 1.0, f))

    def env(self, seed: int = 0):
        """auction_v0 env of the market: ``SellerBuyerMarket`` with 2 sellers (cost c, capacity k) and
        2 inelastic buyers of theta/2 kW, pay-as-bid, price cap = retail = P, feed-in = c; reset."""
        from p2penv import auction_v0
        from p2penv.generators.sellers_buyers import SellerBuyerMarket

        gen = SellerBuyerMarket(2, capacity_ratio=2 * self.capacity_kwh / self.demand_kwh,
                                demand_kw=self.demand_kwh / 2, a0=QUADRATIC_COST, b=self.cost, buyer_values=None)
        env = auction_v0.parallel_env(n_prosumers=4, generator=gen, seed=seed, mechanism="pay_as_bid",
                                      max_cycles=1, price_floor=0.0, price_cap=self.cap,
                                      retail_tariff=self.cap, feed_in_tariff=self.cost)
        env.reset(seed=seed)
        return env

    def game(self, prices) -> GridGame:
        """The sellers' grid game over asks ``prices`` ($/kWh), each dispatching its capacity; buyers
        bid their reservation value (retail = P, the competitive baseline's bid)."""
        from p2penv.market.competitive import competitive_joint_action

        env = self.env()
        base, _ = competitive_joint_action(env.ctx, env.config)
        grid = price_dispatch_grid(prices, [1.0], env.rules)
        return GridGame(env.ctx, env.rules, base.astype(np.float64), (0, 1), grid)
