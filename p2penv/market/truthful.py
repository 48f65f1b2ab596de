"""Truthful bids of one step: the step's tariffs, each agent's reservation buy price, the truthful price.

One definition each, for every caller (the env core, the baselines, the Q-learners, the diagnostics):

* ``step_tariffs(ctx, rules)``: (retail, feed-in) $/kWh of the step: the context's time-varying tariffs
  (``StepContext.retail_tariff`` / ``feed_in_tariff``, None when the tariffs are flat), else the rules'.
* ``reservation_buy_price(ctx, rules)``: (N,) $/kWh the most an agent pays for market energy: the retail
  tariff (its backstop), or a flexible load's lower value of lost load. Also what demand is worth with
  no trade (every buyer imports at retail or sheds).
* ``truthful_price(selling, marginal_cost, buy_value, feed_in)``: the reservation price of an order:
  a seller asks its marginal cost ($/kWh), at least the feed-in tariff (its outside option); a buyer bids
  its reservation buy price.

``rules`` is anything with ``retail_tariff`` and ``feed_in_tariff`` attributes ($/kWh): the market's
``MarketRules`` or an env's ``MarketConfig``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["reservation_buy_price", "step_tariffs", "truthful_price"]


def step_tariffs(ctx, rules) -> tuple[float, float]:
    """(retail, feed-in) $/kWh of the step: the context's time-varying tariffs where set, else the rules'."""
    retail = rules.retail_tariff if getattr(ctx, "retail_tariff", None) is None else ctx.retail_tariff
    feed_in = rules.feed_in_tariff if getattr(ctx, "feed_in_tariff", None) is None else ctx.feed_in_tariff
    return retail, feed_in


def reservation_buy_price(ctx, rules) -> np.ndarray:
    """(N,) $/kWh the most each agent would pay for market energy: the step's retail tariff, or, for a
    flexible load, its lower value of lost load (``ctx.shed_value``)."""
    retail, _ = step_tariffs(ctx, rules)
    if np.ndim(retail):  # one tariff per market of a batched context: broadcast over the agents
        retail = np.asarray(retail, dtype=np.float64)[..., None]
    if ctx.shed_value is None:
        return np.broadcast_to(np.asarray(retail, dtype=np.float64), np.shape(ctx.demand_kw)).copy()
    return np.minimum(ctx.shed_value, retail)


def truthful_price(selling, marginal_cost, buy_value, feed_in) -> np.ndarray:
    """Truthful limit price $/kWh (broadcast): sellers ask max(marginal cost, feed-in tariff), buyers bid
    ``buy_value`` (their reservation buy price)."""
    return np.where(selling, np.maximum(marginal_cost, feed_in), buy_value)
