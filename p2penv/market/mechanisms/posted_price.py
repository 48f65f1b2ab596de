"""Posted-price market (spec S7): the operator posts a price, agents choose quantities.

The common baseline of community-energy pilots (e.g. the "mid-market rate", half-way between the
grid's import and export tariffs: Long et al., IEEE PES General Meeting 2017; Zhou, Wu and Long,
Applied Energy 222:993, 2018). Every trade settles at the posted ``price`` $/kWh, so the order's own
price never sets what it pays or receives:

* ``reservation=True`` (default): an order's price is a **reservation price**. A bid takes part iff
  ``bid >= price`` and an ask iff ``ask <= price``; the others are treated as idle. Nobody trades
  beyond its limit price, so the market is individually rational on declared values.
* ``reservation=False``: prices are ignored; every non-idle order takes part with its full quantity
  (a quantity-only market; an agent then trades at ``price`` whatever its cost or value).

**Rationing, pro rata on the long side.** With D kWh of participating bids and S kWh of participating
asks the market trades V = min(D, S): every order of the short side fills completely, every order of
the long side fills the same fraction V / D (bids) or V / S (asks) of its quantity. The unmatched
rest goes to the environment's backstop (retail / feed-in) like any unmatched volume. Pro rata is
the only rule that treats identical orders identically without a queue; it rewards overstating
quantities on the long side (an agent asking for twice its need gets twice the share), a known
weakness of pro rata rationing that the audit's price misreports do not probe (see
``tests/test_posted_price.py``).

**Price rules in the environment.** ``clear`` is a pure function of the book and its ``price``.
``auction_v0(mechanism="posted_price")`` chooses the operator's rule by ``MarketConfig.posted_price_rule``:
``"fixed"`` posts ``posted_price`` (default ``DEFAULT_PRICE``; ``envs.auction_core.make_rules`` binds it
as ``price``); ``"tou"`` posts ``tou_price(start_hour + t dt_h, posted_price_schedule)`` at step t;
``"mid_market"`` posts ``mid_market`` of the same market's previous book (``posted_price`` at step 0, the
previous price after an empty book). The env puts the step's price into its ``StepContext.posted_price``
and ``market.pipeline.clear_book`` passes it here as ``price``, so replaying a step through ``run_step``
posts the same price. A caller that owns the loop passes ``price`` itself (a ``(...)``-shaped array, one
price per book).

Guarantees (audited in ``tests/test_posted_price.py``): strongly budget balanced (buyers pay what
sellers receive), IR with ``reservation=True``, dominant-strategy IC in the price report (the price
only switches participation, and participating is optimal iff the true value is on the right side
of the posted price), not efficient: trades at the wrong side of the posted price are lost and
rationing ignores values. Bilateral trade with values U[0, 1] and price 1/2: 3/4 of the first best.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .types import BUY, SELL, Clearing, check_book

# $/kWh: the mid-market rate of the environments' default tariffs, (retail 0.30 + feed-in 0.05) / 2.
DEFAULT_PRICE = 0.175


def mid_market_rate(retail_tariff: float, feed_in_tariff: float) -> float:
    """$/kWh half-way between the grid's import (retail) and export (feed-in) tariffs."""
    return 0.5 * (float(retail_tariff) + float(feed_in_tariff))


def mid_market(prices, sides) -> np.ndarray:
    """(...,) $/kWh midpoint of the best (highest) bid and best (lowest) ask of ``(..., n)`` books;
    the one side's best price when the other side is empty, nan for an empty book. Pass last
    step's book to post "the mid-market of the last step"."""
    p = np.asarray(prices, dtype=np.float64)
    s = np.asarray(sides)
    bb = np.where(s == BUY, p, -np.inf).max(-1)
    ba = np.where(s == SELL, p, np.inf).min(-1)
    has_b, has_a = np.isfinite(bb), np.isfinite(ba)
    both = 0.5 * (np.where(has_b, bb, 0.0) + np.where(has_a, ba, 0.0))
    return np.where(has_b & has_a, both, np.where(has_b, bb, np.where(has_a, ba, np.nan)))


def tou_price(hour, schedule: Sequence[tuple[float, float]]) -> np.ndarray:
    """$/kWh of a time-of-use ``schedule`` ((start hour, $/kWh), ...) at ``hour`` (any shape; hours
    mod 24). Each entry holds from its start to the next one's; the last wraps past midnight to the
    first. Example: ((0, 0.10), (7, 0.20), (17, 0.30), (21, 0.20))."""
    sched = sorted((float(h), float(p)) for h, p in schedule)
    if not sched:
        raise ValueError("schedule: needs at least one (start hour, price) entry")
    starts = np.array([h for h, _ in sched])
    prices = np.array([p for _, p in sched])
    if np.any((starts < 0) | (starts >= 24)) or np.any(np.diff(starts) == 0) or not np.all(np.isfinite(prices)):
        raise ValueError(f"schedule: start hours must be distinct in [0, 24) and prices finite, got {tuple(schedule)}")
    h = np.mod(np.asarray(hour, dtype=np.float64), 24.0)
    return prices[np.searchsorted(starts, h, side="right") - 1]  # index -1: before the first start = last entry


def clear(prices, quantities, sides, *, price=DEFAULT_PRICE, reservation: bool = True) -> Clearing:
    """Clear ``(..., n)`` books at the posted ``price`` ($/kWh; a scalar or an array broadcastable
    to the batch shape ``(...)``), rationing the long side pro rata; see module docstring.

    ``clearing_price`` and every ``unit_price`` (matched or not) are the posted price;
    ``operator_surplus`` is 0 up to rounding; ``welfare`` is declared (limit prices x matched kWh).
    """
    p, q, s = check_book(prices, quantities, sides)
    batch = p.shape[:-1]
    try:
        pp = np.broadcast_to(np.asarray(price, dtype=np.float64), batch)
    except ValueError:
        raise ValueError(f"price: shape {np.shape(price)} does not broadcast to the batch shape {batch}") from None
    if not np.all(np.isfinite(pp)):
        raise ValueError(f"price: posted price must be finite, got {price!r}")
    pc = pp[..., None]
    is_bid, is_ask = (s == BUY) & (q > 0), (s == SELL) & (q > 0)
    if reservation:
        is_bid &= p >= pc
        is_ask &= p <= pc
    demand = np.where(is_bid, q, 0.0).sum(-1)
    supply = np.where(is_ask, q, 0.0).sum(-1)
    volume = np.minimum(demand, supply)
    fill_b = np.divide(volume, demand, out=np.zeros_like(volume), where=demand > 0)
    fill_a = np.divide(volume, supply, out=np.zeros_like(volume), where=supply > 0)
    # the short side fills exactly (fill 1.0), so only the long side carries a rounding error
    matched = np.where(is_bid, q * fill_b[..., None], np.where(is_ask, q * fill_a[..., None], 0.0))
    sign = np.where(is_ask, 1.0, np.where(is_bid, -1.0, 0.0))
    unit = np.broadcast_to(pc, p.shape).copy()
    return Clearing(
        matched=matched,
        unit_price=unit,
        clearing_price=pp.copy(),
        volume=volume,
        operator_surplus=-(sign * matched * unit).sum(-1),
        welfare=-(sign * matched * p).sum(-1),
        sides=s,
    )
