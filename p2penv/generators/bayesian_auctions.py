"""Bayesian auctions with closed-form Bayes-Nash equilibria, as ``auction_v0`` stage games.

The learner-validation scenarios: every bidder's private type (a buyer's value v or a seller's
cost c, $/kWh) is drawn i.i.d. U[0, 1] each step and observed by that agent only; a learner should
recover the Bayes-Nash equilibrium (BNE) bid function (``p2penv.diagnostics.bayes_nash``).

* ``SingleUnitAuction(n_buyers)``: ``prosumer_0`` offers one unit (1 kWh) at cost 0 and does not
  learn; ``prosumer_1..n`` each want it at value v_i. With ``mechanism="pay_as_bid"`` this is the
  first-price sealed-bid auction: the highest bid wins and pays its own bid (BNE b(v) = (n-1)/n v).
* ``BilateralTrade()``: ``prosumer_0`` sells one unit at cost c, ``prosumer_1`` buys it at value v.
  With ``mechanism="uniform"``, ``k=0.5`` it is the Chatterjee-Samuelson k-double auction: trade iff
  bid >= ask, at (b + s)/2 (the marginal-pair interval of one bid and one ask is [s, b]; the
  Walrasian one is the same here), linear BNE b(v) = 2v/3 + 1/12, s(c) = 2c/3 + 1/4.

**One stage game per episode.** ``Fleet`` holds one value of lost load and one cost per agent for
the whole episode, not per step, so these generators need ``max_cycles=1`` (and ``dt_h=1``, so a
1 kW demand is 1 kWh): every reset draws fresh types from the market's own random generator, and
the vector env's autoreset redraws them every step. Draws: one ``rng.random(K)`` per market, K the
number of bidders, in agent order (``bidders``).

**How the types enter the market** (``STAGE_GAME_MARKET``: prices [0, 1] $/kWh, retail 1 $/kWh,
feed-in 0, ``unmatched="curtail"``):

| agent | demand | DER interval | cost of the unit | shed_value |
|---|---|---|---|---|
| buyer (value v) | 1 kW | [0, 0] | - | v (unserved demand is shed, losing v) |
| single-unit seller | 0 | [1, 1] kW (must run) | 0 | - |
| bilateral seller (cost c) | 0 | [0, 1] kW, curtailable | c | - |

A buyer observes v as ``buy_value`` (min(shed_value, retail) = v), a seller its cost as
``mc_lo``/``mc_hi`` (marginal cost at both ends of its interval, c -+ ``COST_A``).

**Rewards against textbook utilities.** A buyer's reward is ``m (v - p) - v``: m the kWh it is
matched (1 if it wins, 1/j in a j-way tie for the highest bid, 0 otherwise), p the price it pays
(its own bid in pay-as-bid, (b + s)/2 in the k-double auction) and ``-v`` the value of its demand,
which it loses when it gets nothing: the reward is the textbook utility ``m (v - p)`` minus v, a
term its own action cannot change. A bilateral seller's reward is ``m (p - c) + COST_A m (1 - m)``,
m its matched kWh: exactly the textbook utility when it offers the whole unit (m in {0, 1}; an
unsold unit is curtailed and costs nothing). The single-unit seller always sells at its ask.

**Why the bilateral seller has a dispatch choice.** Curtailment never goes below the feasible
floor, so a unit that costs nothing when unsold needs a floor of 0: its dispatch interval is
[0, 1] kW and ``action[1]`` sets how much of the unit it offers (q = (u + 1)/2 kWh). Offering the
whole unit (``action[1] >= 1``) is weakly dominant (its utility is q times the full unit's) and the
diagnostics count q in the seller's utility. A must-run interval [1, 1] would fix q = 1 but make
an unsold unit cost c, which is not the game.

``Fleet.validate`` needs ``cost_a > 0`` and ``ramp_kw > 0``: ``cost_a = COST_A`` (1e-12 $/kWh^2)
with ``cost_b = c - COST_A`` makes the whole unit cost exactly c; the must-run seller's ramp is the
smallest positive float, so its interval [1 - R, 1 + R] cap 1 is [1, 1] exactly.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..market.prosumer import Fleet

COST_A = 1e-12  # $/kWh^2: the least quadratic cost term; cost_b = c - COST_A keeps C(1 kWh) = c
MUST_RUN_RAMP = float(np.finfo(float).tiny)  # kW per step: 1 - R == 1 exactly, so [lo, hi] = [1, 1]
UNIT_KWH = 1.0  # every order is one unit: 1 kW for dt_h = 1 h

# MarketConfig options shared by the stage games (the registry adds n_prosumers, generator, mechanism).
STAGE_GAME_MARKET: dict[str, Any] = dict(
    max_cycles=1,  # one stage game per episode: types are redrawn at every (auto)reset
    dt_h=1.0,
    price_floor=0.0,  # $/kWh: types and bids live on [0, 1]
    price_cap=1.0,
    retail_tariff=1.0,  # $/kWh >= every value: a buyer never prefers the backstop to shedding
    feed_in_tariff=0.0,
    unmatched="curtail",  # an unsold unit is not produced and costs nothing
)


class _StageGame(ABC):
    """Shared generator protocol: draw the bidders' types, then build the fleet from them."""

    n_agents: int
    bidders: tuple[int, ...]

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        return self.batch(n, horizon, dt_h, start_hour, [rng]).env(0)

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float,
              rngs: Sequence[np.random.Generator]) -> Fleet:
        """E markets, market e drawing its types from ``rngs[e]`` exactly as ``self(..., rngs[e])``."""
        self.check(n, horizon, dt_h)
        return self.fleet(np.stack([r.random(len(self.bidders)) for r in rngs]))

    def check(self, n: int, horizon: int, dt_h: float) -> None:
        """ValueError unless the config runs one 1 kWh stage game per episode with ``n_agents`` agents."""
        who = type(self).__name__
        if n != self.n_agents:
            raise ValueError(f"{who}: needs n_prosumers={self.n_agents}, got {n}")
        if horizon != 1:
            raise ValueError(f"{who}: types are redrawn only at a reset (Fleet holds one per episode), so the "
                             f"stage game needs max_cycles=1, got {horizon}")
        if dt_h != 1.0:
            raise ValueError(f"{who}: a unit is 1 kW for 1 h, so dt_h must be 1.0, got {dt_h}")

    @abstractmethod
    def fleet(self, types: np.ndarray) -> Fleet:
        """The fleet of E markets from the bidders' types ``(E, K)`` $/kWh."""


@dataclass(frozen=True)
class SingleUnitAuction(_StageGame):
    """One unit for sale at ask 0 and ``n_buyers`` buyers with values U[0, 1] (first price with
    ``mechanism="pay_as_bid"``). Agents: ``prosumer_0`` the seller (no type, does not learn),
    ``prosumer_1..n`` the buyers."""

    n_buyers: int = 2

    def __post_init__(self) -> None:
        if not (isinstance(self.n_buyers, (int, np.integer)) and self.n_buyers >= 2):
            raise ValueError(f"n_buyers: an auction needs an integer >= 2, got {self.n_buyers!r}")

    @property
    def n_agents(self) -> int:
        return self.n_buyers + 1

    @property
    def roles(self) -> tuple[str, ...]:
        return ("seller",) + ("buyer",) * self.n_buyers

    @property
    def bidders(self) -> tuple[int, ...]:
        """Agents with a private type, in the order of the columns of ``types``."""
        return tuple(range(1, self.n_agents))

    def fleet(self, types: np.ndarray) -> Fleet:
        """Fleet ``(E, 1, N)`` of the buyers' values ``types`` ``(E, n_buyers)`` $/kWh."""
        v = _types(types, self.n_buyers, type(self).__name__)
        return stage_fleet(np.zeros(v.shape[0]), v, must_run_seller=True)


@dataclass(frozen=True)
class BilateralTrade(_StageGame):
    """One seller (cost c) and one buyer (value v), both U[0, 1] (the Chatterjee-Samuelson k-double
    auction with ``mechanism="uniform"``). Agents: ``prosumer_0`` the seller, ``prosumer_1`` the buyer;
    ``types`` columns (c, v)."""

    n_agents = 2
    roles = ("seller", "buyer")
    bidders = (0, 1)

    def fleet(self, types: np.ndarray) -> Fleet:
        """Fleet ``(E, 1, 2)`` of the types ``(E, 2)``: column 0 the seller's cost, 1 the buyer's value."""
        t = _types(types, 2, type(self).__name__)
        return stage_fleet(t[:, 0], t[:, 1:], must_run_seller=False)


@dataclass(frozen=True, eq=False)
class FixedTypes:
    """The market of ``game`` with the given types instead of drawn ones (diagnostics and tests).

    ``types`` ``(E, K)`` $/kWh: market e plays row e (K = ``len(game.bidders)``, in that order);
    the markets' random generators are not used.
    """

    game: SingleUnitAuction | BilateralTrade
    types: np.ndarray

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        return self.batch(n, horizon, dt_h, start_hour, [rng]).env(0)

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float,
              rngs: Sequence[np.random.Generator]) -> Fleet:
        self.game.check(n, horizon, dt_h)
        t = np.atleast_2d(np.asarray(self.types, dtype=np.float64))
        if t.shape[0] != len(rngs):
            raise ValueError(f"types: {t.shape[0]} rows for {len(rngs)} markets (num_envs)")
        return self.game.fleet(t)


def stage_fleet(seller_cost: np.ndarray, buyer_values: np.ndarray, must_run_seller: bool) -> Fleet:
    """Fleet of one 1 kWh seller (agent 0) and B buyers of 1 kWh (agents 1..B), horizon 1.

    ``seller_cost`` ``(E,)`` $/kWh; ``buyer_values`` ``(E, B)`` $/kWh. A must-run seller's interval
    is [1, 1] kW; otherwise [0, 1] kW (p0 = 0, ramp 1 kW), curtailable down to 0. See the module doc.
    """
    e, b = buyer_values.shape
    n = b + 1
    seller = np.arange(n) == 0

    def row(seller_x: float, buyer_x: float) -> np.ndarray:  # (E, N): the seller's entry, then the buyers'
        return np.broadcast_to(np.where(seller, seller_x, buyer_x), (e, n)).copy()

    demand = row(0.0, UNIT_KWH)[:, None, :]
    p_max = row(UNIT_KWH, 0.0)[:, None, :]
    ramp = row(MUST_RUN_RAMP if must_run_seller else UNIT_KWH, UNIT_KWH)
    p0 = row(UNIT_KWH if must_run_seller else 0.0, 0.0)
    cost_a = np.full((e, n), COST_A)
    cost_b = np.zeros((e, n))
    cost_b[:, 0] = seller_cost - COST_A  # C(E) = a E^2 + (c - a) E: C(1 kWh) = c
    shed = np.full((e, n), np.inf)
    shed[:, 1:] = buyer_values
    bus = np.broadcast_to(np.arange(1, n + 1), (e, n)).copy()
    return Fleet(demand, p_max, ramp, np.ones((e, n)), cost_a, cost_b, p0, bus,
                 tuple(f"prosumer_{i}" for i in range(n)), shed)


def _types(types: np.ndarray, k: int, who: str) -> np.ndarray:
    t = np.asarray(types, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != k:
        raise ValueError(f"{who}: types must have shape (num_envs, {k}), got {t.shape}")
    if not np.all(np.isfinite(t) & (t >= 0.0) & (t <= 1.0)):
        raise ValueError(f"{who}: types are values or costs in [0, 1] $/kWh, got {t[~((t >= 0) & (t <= 1))][:3]}")
    return t
