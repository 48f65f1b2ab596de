"""Uniform-price k-double auction on divisible orders (seed S3).

Volume is welfare-maximising (see ``book.py``); every matched order trades at one price
``p = lo + k (hi - lo)`` inside the uniform-price interval [lo, hi] of the chosen ``rule``.
k = 0.5 is the seed's midpoint rule; k = 0 favours buyers, k = 1 sellers (Chatterjee-Samuelson k).
Strongly budget balanced: buyers pay exactly what sellers receive.
"""
from __future__ import annotations

import numpy as np

from .book import allocate_1d, as_batch, efficient_allocation, uniform_price_interval
from .types import Clearing, check_book


def clear(prices, quantities, sides, *, k: float = 0.5, rule: str = "marginal_pair") -> Clearing:
    """Clear ``(..., n)`` order books at a uniform price; see module docstring."""
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"k: must lie in [0, 1], got {k}")
    p, q, s = check_book(prices, quantities, sides)
    if p.ndim == 1:
        return _clear_1d(p, q, s, k, rule)
    (p2, q2, s2), batch = as_batch(p, q, s)
    alloc = efficient_allocation(p2, q2, s2)
    lo, hi = uniform_price_interval(alloc, rule)
    price = lo + k * (hi - lo)
    # empty books have no price; their (unmatched) orders get 0 so cash stays finite
    unit = np.where(np.isnan(price), 0.0, price)[:, None].repeat(p2.shape[-1], axis=-1)
    sign = s2.astype(np.float64)  # +1 sell, -1 buy; idle orders are unmatched anyway
    bought = (alloc.matched * (sign < 0)).sum(-1)
    sold = (alloc.matched * (sign > 0)).sum(-1)
    surplus = (bought - sold) * unit[:, 0]
    welfare = -(sign * alloc.matched * p2).sum(-1)
    shape = p.shape
    return Clearing(
        matched=alloc.matched.reshape(shape),
        unit_price=unit.reshape(shape),
        clearing_price=price.reshape(batch),
        volume=alloc.volume.reshape(batch),
        operator_surplus=surplus.reshape(batch),
        welfare=welfare.reshape(batch),
        sides=s,
    )


def _clear_1d(p: np.ndarray, q: np.ndarray, s: np.ndarray, k: float, rule: str) -> Clearing:
    """One book (the environments' hot path): scalar price arithmetic, same result as the batch."""
    a = allocate_1d(p, q, s)
    lo, hi = a.price_interval(rule)
    price = lo + k * (hi - lo)
    unit = np.full(p.shape, 0.0 if price != price else price)  # empty book: no price, zero cash
    m = a.matched
    sold = float(m[a.is_ask].sum())
    bought = float(m[a.is_bid].sum())
    welfare = float(p[a.is_bid] @ m[a.is_bid]) - float(p[a.is_ask] @ m[a.is_ask])
    surplus = (bought - sold) * float(unit[0]) if p.size else 0.0
    return Clearing(m, unit, np.float64(price), np.float64(a.volume), np.float64(surplus), np.float64(welfare), s)
