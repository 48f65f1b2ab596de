"""Pay-as-bid (discriminatory) double auction.

Same efficient allocation as the uniform auction, but every matched order settles at its own limit
price: buyers pay their bid, sellers receive their ask. The operator keeps the spread, so the
mechanism is weakly budget balanced (surplus = declared welfare >= 0) and gives no one a reason to
report truthfully: the textbook case for strategic shading.
"""
from __future__ import annotations

from .book import clear_double_auction_kernel
from .types import Clearing, check_book, clearing_from_kernel
from .uniform import RULES


def clear(prices, quantities, sides, *, k: float = 0.5, rule: str = "marginal_pair") -> Clearing:
    """Clear ``(..., n)`` books pay-as-bid. ``clearing_price`` is the uniform reference price
    (``k``, ``rule`` as in ``uniform.clear``), reported for observations and markups only."""
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"k: must lie in [0, 1], got {k}")
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    p, q, s = check_book(prices, quantities, sides)
    sides_in = s
    if p.ndim != 2:
        n = p.shape[-1]
        p, q, s = p.reshape(-1, n), q.reshape(-1, n), s.reshape(-1, n)
    out = clear_double_auction_kernel(p, q, s, float(k),
                                      rule == "walrasian", True)
    return clearing_from_kernel(out, sides_in)
