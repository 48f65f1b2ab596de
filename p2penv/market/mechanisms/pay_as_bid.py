"""Pay-as-bid (discriminatory) double auction.

Same efficient allocation as the uniform auction, but every matched order settles at its own limit
price: buyers pay their bid, sellers receive their ask. The operator keeps the spread, so the
mechanism is weakly budget balanced (surplus = declared welfare >= 0) and gives no one a reason to
report truthfully: the textbook case for strategic shading.
"""
from __future__ import annotations

import numpy as np

from .book import allocate_1d, as_batch, efficient_allocation, uniform_price_interval
from .types import Clearing, check_book


def clear(prices, quantities, sides, *, k: float = 0.5, rule: str = "marginal_pair") -> Clearing:
    """Clear ``(..., n)`` books pay-as-bid. ``clearing_price`` is the uniform reference price
    (``k``, ``rule`` as in ``uniform.clear``), reported for observations and markups only."""
    p, q, s = check_book(prices, quantities, sides)
    if p.ndim == 1:  # one book (the environments' hot path): scalar arithmetic
        a = allocate_1d(p, q, s)
        lo, hi = a.price_interval(rule)
        m = a.matched
        welfare = float(p[a.is_bid] @ m[a.is_bid]) - float(p[a.is_ask] @ m[a.is_ask])
        w = np.float64(welfare)
        return Clearing(m, p, np.float64(lo + k * (hi - lo)), np.float64(a.volume), w, w, s)
    (p2, q2, s2), batch = as_batch(p, q, s)
    alloc = efficient_allocation(p2, q2, s2)
    lo, hi = uniform_price_interval(alloc, rule)
    ref = lo + k * (hi - lo)
    signed = alloc.matched * np.where(alloc.is_ask, 1.0, -1.0)
    welfare = -(signed * p2).sum(-1)
    shape = p.shape
    return Clearing(
        matched=alloc.matched.reshape(shape),
        unit_price=p,
        clearing_price=ref.reshape(batch),
        volume=alloc.volume.reshape(batch),
        operator_surplus=welfare.reshape(batch),
        welfare=welfare.reshape(batch),
        sides=s,
    )
