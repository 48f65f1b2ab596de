"""Uniform-price k-double auction on divisible orders (spec item S3).

Volume is welfare-maximising (see ``book.py``); every matched order trades at one price
``p = lo + k (hi - lo)`` inside the uniform-price interval [lo, hi] of the chosen ``rule``.
k = 0.5 is the midpoint rule; k = 0 favours buyers, k = 1 sellers (Chatterjee-Samuelson k).
Strongly budget balanced: buyers pay exactly what sellers receive.
"""
from __future__ import annotations

from .book import clear_double_auction_kernel
from .types import Clearing, check_book, clearing_from_kernel

RULES = ("marginal_pair", "walrasian")


def clear(prices, quantities, sides, *, k: float = 0.5, rule: str = "marginal_pair") -> Clearing:
    """Clear ``(..., n)`` order books at a uniform price; see module docstring."""
    return clear_double_auction(prices, quantities, sides, k=k, rule=rule, pay_as_bid=False)


def clear_double_auction(prices, quantities, sides, *, k: float, rule: str, pay_as_bid: bool) -> Clearing:
    """The efficient allocation priced uniformly (``pay_as_bid=False``) or at each order's own limit
    price; ``clearing_price`` is the uniform price ``lo + k (hi - lo)`` in both cases."""
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"k: must lie in [0, 1], got {k}")
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    p, q, s = check_book(prices, quantities, sides)
    sides_in = s
    if p.ndim != 2:
        n = p.shape[-1]
        p, q, s = p.reshape(-1, n), q.reshape(-1, n), s.reshape(-1, n)
    out = clear_double_auction_kernel(p, q, s, float(k), rule == "walrasian", pay_as_bid)
    return clearing_from_kernel(out, sides_in)
