"""Vickrey-Clarke-Groves double auction (seed S7).

Each order is one agent with a linear value (bid) or cost (ask) per kWh up to its quantity.
The allocation is the efficient one (``book.py``); agent i pays the externality it imposes,
t_i = W*_{-i} - (W* - w_i), with W* the maximal declared welfare, W*_{-i} the maximal welfare of the
book without order i and w_i = i's own declared value of its allocation (+bid x matched for buyers,
-ask x matched for sellers). Buyers pay t_i >= 0; sellers receive -t_i >= ask x matched.

Truthful reporting is dominant and no truthful agent loses (Clarke pivot rule), but each side is
paid its own threshold price (buyers pay the lowest bid that would still win, sellers receive the
highest winning ask), so the operator runs a deficit in general (Myerson-Satterthwaite; bilateral
trade with v >= c: buyer pays c, seller receives v, deficit v - c).

Cost: one extra efficient allocation per order, O(n^2) memory per book, fine for community sizes.
"""
from __future__ import annotations

import numpy as np

from .book import as_batch, efficient_allocation, uniform_price_interval
from .types import Clearing, check_book


def _welfare(p: np.ndarray, matched: np.ndarray, is_ask: np.ndarray) -> np.ndarray:
    return -(matched * np.where(is_ask, 1.0, -1.0) * p).sum(-1)


def clear(prices, quantities, sides) -> Clearing:
    """Clear ``(..., n)`` books with VCG payments. ``unit_price`` is payment / matched kWh for
    matched orders and the uniform midpoint reference price (``clearing_price``) otherwise."""
    p, q, s = check_book(prices, quantities, sides)
    (p2, q2, s2), batch = as_batch(p, q, s)
    b, n = p2.shape
    alloc = efficient_allocation(p2, q2, s2)
    w_star = _welfare(p2, alloc.matched, alloc.is_ask)

    # n copies of each book, copy i with order i's quantity zeroed: W*_{-i} for every i at once.
    eye = np.eye(n, dtype=bool)
    q_minus = np.where(eye[None], 0.0, q2[:, None, :]).reshape(b * n, n)
    p_rep = np.broadcast_to(p2[:, None, :], (b, n, n)).reshape(b * n, n)
    s_rep = np.broadcast_to(s2[:, None, :], (b, n, n)).reshape(b * n, n)
    alloc_minus = efficient_allocation(p_rep, q_minus, s_rep)
    w_minus = _welfare(p_rep, alloc_minus.matched, alloc_minus.is_ask).reshape(b, n)

    sign = np.where(alloc.is_ask, -1.0, 1.0)
    own = sign * p2 * alloc.matched  # w_i
    pay = w_minus - (w_star[:, None] - own)  # t_i: > 0 buyer pays, < 0 seller receives
    lo, hi = uniform_price_interval(alloc, "marginal_pair")
    ref = 0.5 * (lo + hi)
    cash_abs = np.where(alloc.is_ask, -pay, pay)  # $ a buyer pays / a seller receives
    per_kwh = np.divide(cash_abs, alloc.matched, out=np.zeros_like(pay), where=alloc.matched > 0)
    unit_price = np.where(alloc.matched > 0, per_kwh, np.nan_to_num(ref, nan=0.0)[:, None])
    # An unmatched order can still have a tiny nonzero t_i from float rounding; VCG charges it 0.
    surplus = np.where(alloc.matched > 0, pay, 0.0).sum(-1)
    shape = p.shape
    return Clearing(
        matched=alloc.matched.reshape(shape),
        unit_price=unit_price.reshape(shape),
        clearing_price=ref.reshape(batch),
        volume=alloc.volume.reshape(batch),
        operator_surplus=surplus.reshape(batch),
        welfare=w_star.reshape(batch),
        sides=s,
    )
