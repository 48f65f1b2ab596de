"""Pay-as-bid (discriminatory) double auction.

Same efficient allocation as the uniform auction, but every matched order settles at its own limit
price: buyers pay their bid, sellers receive their ask. The operator keeps the spread, so the
mechanism is weakly budget balanced (surplus = declared welfare >= 0) and gives no one a reason to
report truthfully: the textbook case for strategic shading.
"""
from __future__ import annotations

from .types import Clearing
from .uniform import clear_double_auction


def clear(prices, quantities, sides, *, k: float = 0.5, rule: str = "marginal_pair") -> Clearing:
    """Clear ``(..., n)`` books pay-as-bid. ``clearing_price`` is the uniform reference price
    (``k``, ``rule`` as in ``uniform.clear``), reported for observations and markups only."""
    return clear_double_auction(prices, quantities, sides, k=k, rule=rule, pay_as_bid=True)
