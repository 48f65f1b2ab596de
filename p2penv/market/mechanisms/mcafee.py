"""McAfee's (1992) trade-reduction double auction (spec S7).

Classic unit rule: with K efficient trades, bids b_1 >= b_2 >= ... and asks a_1 <= a_2 <= ...,
the candidate price is p0 = (b_{K+1} + a_{K+1}) / 2. If a_K <= p0 <= b_K all K pairs trade at p0
(strong budget balance); otherwise only K-1 pairs trade, buyers pay b_K, sellers receive a_K and
the operator keeps (b_K - a_K)(K-1) (weak budget balance). Giving up the marginal trade makes
the price independent of every trader's own report, so truthful reporting is a dominant strategy
for unit traders (McAfee 1992, J. Econ. Theory 56:434-450).

Divisible generalisation used here: an order of q kWh is q/``unit`` identical units of ``unit`` kWh.
b_K / a_K are the marginal accepted bid / ask prices of the efficient allocation, b_{K+1} / a_{K+1}
the highest bid / lowest ask price with volume left unfilled. Trade reduction removes one unit
(``unit`` kWh) from the lowest-priority accepted volume of each side, shared pro rata within a price
level (the book's tie rule). With unit orders and ``unit=1`` this is exactly McAfee's rule.

A missing (K+1)-th order (one side fully filled) leaves p0 undefined, so the book falls back to
trade reduction, unless ``price_bounds=(lo, hi)`` supplies dummy traders at the bounds of the value
support (a bid at lo, an ask at hi). In bilateral trade with values on [0, 1] this turns the auction
into the posted price 1/2.
"""
from __future__ import annotations

import numpy as np

from .book import as_batch, efficient_allocation, uniform_price_interval
from .types import BUY, SELL, Clearing, check_book


def _fill_top(p: np.ndarray, q: np.ndarray, mask: np.ndarray, volume: np.ndarray, side: int) -> np.ndarray:
    """Fill ``volume`` kWh of the ``mask`` orders in price priority (pro rata at the last level).

    Done by matching them against one dummy counter-order of ``volume`` kWh priced beyond every
    order, so the rationing is the same code (and tie rule) as the efficient allocation.
    """
    b, n = p.shape
    span = np.abs(p).max(-1, keepdims=True) + 1.0
    dummy_p = np.where(side == BUY, p.min(-1, keepdims=True) - span, p.max(-1, keepdims=True) + span)
    pp = np.concatenate([p, dummy_p], -1)
    qq = np.concatenate([np.where(mask, q, 0.0), volume[:, None]], -1)
    ss = np.concatenate([np.full((b, n), side, np.int8), np.full((b, 1), -side, np.int8)], -1)
    return efficient_allocation(pp, qq, ss).matched[:, :n]


def clear(
    prices,
    quantities,
    sides,
    *,
    unit: float = 1.0,
    price_bounds: tuple[float, float] | None = None,
) -> Clearing:
    """Clear ``(..., n)`` books by McAfee trade reduction; see module docstring.

    unit: kWh per unit trade (> 0); price_bounds: optional (lo, hi) $/kWh support of values.
    ``clearing_price`` is p0 where all efficient units trade, else the midpoint (a_K + b_K)/2;
    with no trade it is the midpoint of [best bid, best ask] as in the uniform auction.
    """
    if not (np.isfinite(unit) and unit > 0):
        raise ValueError(f"unit: must be a finite positive kWh amount, got {unit}")
    if price_bounds is not None:
        lo_b, hi_b = (float(x) for x in price_bounds)
        if not lo_b <= hi_b:
            raise ValueError(f"price_bounds: need lo <= hi, got {price_bounds}")
    p, q, s = check_book(prices, quantities, sides)
    (p2, q2, s2), batch = as_batch(p, q, s)
    alloc = efficient_allocation(p2, q2, s2)
    traded = alloc.volume > 0

    b_next, a_next = alloc.bid_next, alloc.ask_next
    if price_bounds is not None:
        b_next = np.where(np.isfinite(b_next), b_next, lo_b)
        a_next = np.where(np.isfinite(a_next), a_next, hi_b)
    with np.errstate(invalid="ignore"):
        p0 = 0.5 * (b_next + a_next)  # nan when both sides are fully filled and unbounded
        keep_all = traded & (alloc.ask_q <= p0) & (p0 <= alloc.bid_q)
    reduce = traded & ~keep_all

    vol_red = np.maximum(alloc.volume - unit, 0.0)
    m_b = _fill_top(p2, q2, alloc.is_bid, vol_red, BUY)
    m_a = _fill_top(p2, q2, alloc.is_ask, vol_red, SELL)
    matched = np.where(reduce[:, None], m_b + m_a, alloc.matched)
    volume = np.where(reduce, vol_red, alloc.volume)

    lo, hi = uniform_price_interval(alloc, "marginal_pair")
    ref = np.where(keep_all, p0, 0.5 * (lo + hi))
    buy_price = np.where(reduce, alloc.bid_q, ref)
    sell_price = np.where(reduce, alloc.ask_q, ref)
    unit_price = np.where(alloc.is_ask, sell_price[:, None], buy_price[:, None])
    unit_price = np.nan_to_num(unit_price, nan=0.0)
    signed = matched * np.where(alloc.is_ask, 1.0, -1.0)
    surplus = -(signed * unit_price).sum(-1)
    welfare = -(signed * p2).sum(-1)
    shape = p.shape
    return Clearing(
        matched=matched.reshape(shape),
        unit_price=unit_price.reshape(shape),
        clearing_price=ref.reshape(batch),
        volume=volume.reshape(batch),
        operator_surplus=surplus.reshape(batch),
        welfare=welfare.reshape(batch),
        sides=s,
    )
