"""Baseline bidders with the small interface every agent here shares: ``act(obs) -> action``.

They read only their own observation (``p2penv.envs.fields.OBS_FIELDS``) and the public market
rules (price bounds, tariffs, observation scale), and return the normalised action in [-1, 1]^2.
``act_batch`` maps an (N, obs_dim) array to (N, 2) actions in one vectorised call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p2penv.envs.auction_core import OBS_NAMES
from p2penv.envs.config import MarketConfig
# the step's tariffs, reservation and truthful prices, the competitive baseline: one definition each, in
# p2penv.market (re-exported here, where the baselines' users have always imported them)
from p2penv.market.competitive import competitive_joint_action  # noqa: F401
from p2penv.market.truthful import reservation_buy_price, step_tariffs, truthful_price  # noqa: F401

# Column indices into the observation, by field name.
DEMAND, AVAIL, PREV, LO, HI, LAST_PRICE, MC_LO, MC_HI, BUY_VALUE = (OBS_NAMES.index(k) for k in (
    "demand", "availability", "prev_dispatch", "feasible_lo", "feasible_hi", "last_price", "mc_lo", "mc_hi",
    "buy_value"))


@dataclass
class RandomAgent:
    """Uniform random actions from its own seeded generator."""

    seed: int | None = None

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, 2).astype(np.float32)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, (obs.shape[0], 2)).astype(np.float32)


@dataclass
class TruthfulAgent:
    """Price-taking, truthful bidder (the competitive baseline).

    Dispatch: the price-taker response to the last clearing price, i.e. where its marginal cost
    (linear between ``mc_lo`` and ``mc_hi`` over the feasible interval) equals that price.
    Price: its true reservation value: a seller asks ``max(marginal cost, feed-in tariff)`` (it can
    always export at feed-in), a buyer bids the retail tariff (it can always import at retail) or,
    for a flexible load, its value of lost load (observation field ``buy_value``).
    The side is judged from ``dispatch - demand`` (eta ~ 1; the env applies the exact eta).
    """

    config: MarketConfig
    markup: float = 0.0  # $/kWh added to asks and subtracted from bids (0 = truthful)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return _truthful_batch(np.asarray(obs), self.config, self.markup, 1.0)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.act_batch(np.asarray(obs)[None, :])[0]


@dataclass
class FixedMarkupAgent(TruthfulAgent):
    """Truthful dispatch, strategic price: asks ``markup`` $/kWh above marginal cost (at least the
    feed-in tariff) and bids ``markup`` below its buy value (retail, or a flexible load's lost value)."""

    markup: float = 0.05


@dataclass
class CapacityWithholdingAgent:
    """Physical withholding: truthful prices, but a seller offers at most ``1 - withhold`` of its
    feasible dispatch interval (``withhold`` in [0, 1]; 0 = truthful)."""

    config: MarketConfig
    withhold: float = 0.3

    def __post_init__(self):
        if not 0.0 <= self.withhold <= 1.0:
            raise ValueError(f"withhold: must lie in [0, 1], got {self.withhold}")

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return _truthful_batch(np.asarray(obs), self.config, 0.0, 1.0 - self.withhold)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.act_batch(np.asarray(obs)[None, :])[0]


def _truthful_batch(obs: np.ndarray, c: MarketConfig, markup: float, frac_cap: float) -> np.ndarray:
    """Price-taker dispatch (capped at ``frac_cap`` of the interval) with reservation prices +- markup."""
    span = c.price_cap - c.price_floor
    to_price = lambda u: c.price_floor + 0.5 * (u + 1.0) * span  # noqa: E731
    to_unit = lambda p: np.clip(2.0 * (p - c.price_floor) / span - 1.0, -1.0, 1.0)  # noqa: E731
    lam = to_price(obs[:, LAST_PRICE])
    mc_lo, mc_hi = to_price(obs[:, MC_LO]), to_price(obs[:, MC_HI])
    slope = mc_hi - mc_lo
    # fraction of the interval where mc = lambda (0 if even the floor costs more, 1 if ceiling cheaper)
    frac = np.where(slope > 1e-12, (lam - mc_lo) / np.where(slope > 1e-12, slope, 1.0), (lam >= mc_lo) * 1.0)
    frac = np.clip(frac, 0.0, frac_cap)
    lo, hi = obs[:, LO], obs[:, HI]
    dispatch = lo + frac * (hi - lo)
    mc = mc_lo + frac * slope
    selling = dispatch - obs[:, DEMAND] > 0
    price = truthful_price(selling, mc, to_price(obs[:, BUY_VALUE]), c.feed_in_tariff)
    price = price + np.where(selling, markup, -markup)
    return np.stack([to_unit(price), 2.0 * frac - 1.0], axis=1).astype(np.float32)


