"""Bilateral trades from a cleared order book: who sold how many kWh to whom (issue 21).

An auction's clearing (``mechanisms.types.Clearing``) says how many kWh each order trades, not with
whom. A peer-to-peer settlement on a feeder needs the pairs, so this module decomposes the matched
volumes into a trade matrix ``T[..., i, j]``: kWh seller ``i`` sells to buyer ``j`` (one order per
agent, agents indexed as in the book). Two documented matchings:

* ``"price_priority"`` (default; continuous-double-auction priority): sellers sorted by ask
  ascending, buyers by bid descending, ties by agent index (lower first); the cheapest seller's
  matched kWh go to the highest bidder until one of them is exhausted, then the next in line
  (the "merge" of the two sorted lists). At most ``n_sellers + n_buyers - 1`` trades.
* ``"pro_rata"`` (the uniform-price pool's own pairing): every matched buyer buys from every matched
  seller in proportion to the seller's share of the volume, ``T_ij = m_i m_j / V``; unique, symmetric
  in the agents, no tie rule.

Both give (tested with hypothesis in ``tests/test_bilateral.py``):

* conservation: row ``i`` sums to seller ``i``'s matched kWh, column ``j`` to buyer ``j``'s;
* ``0 <= T_ij <= min(quantity_i, quantity_j)``, and no trade between two sellers, two buyers or an
  idle order;
* individual rationality: ``T_ij > 0`` only where ``bid_j >= ask_i``. This holds because every
  mechanism here matches bids at or above every matched ask (the efficient allocation accepts the
  bids above the marginal one and the asks below it; McAfee, VCG and posted price accept subsets).

Cash: the buyer pays its own ``unit_price`` per kWh and the seller receives its own, so the trades'
cash adds up to the clearing's ``cash`` per agent and to its ``operator_surplus`` per book
(``trade_cash``). The kernel runs over any leading batch ``(..., n)`` in one compiled pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .mechanisms.book import insertion_order

MATCHINGS = ("price_priority", "pro_rata")

# volumes below this share of the book's matched volume are rounding, not trades
_REL_TOL = 1e-12


@numba.njit(cache=True, nogil=True)
def _stable_order(key, idx):
    """``idx`` sorted by ``key[idx]`` ascending, ties kept in ``idx`` order (insertion sort: books are
    community-sized)."""
    out = idx.copy()
    insertion_order(key, out)
    return out


@numba.njit(cache=True, nogil=True)
def _match_one(p, m, s, pro_rata, t):
    """Fill ``t`` (n, n), zeroed, with one book's trades."""
    n = p.shape[0]
    n_s = 0
    n_b = 0
    vs = 0.0
    vb = 0.0
    for k in range(n):
        if m[k] > 0.0:
            if s[k] > 0:
                n_s += 1
                vs += m[k]
            elif s[k] < 0:
                n_b += 1
                vb += m[k]
    if n_s == 0 or n_b == 0:
        return
    sel = np.empty(n_s, np.int64)
    buy = np.empty(n_b, np.int64)
    a = 0
    b = 0
    for k in range(n):
        if m[k] > 0.0:
            if s[k] > 0:
                sel[a] = k
                a += 1
            elif s[k] < 0:
                buy[b] = k
                b += 1
    if pro_rata:
        v = max(vs, vb)
        for a in range(n_s):
            for b in range(n_b):
                t[sel[a], buy[b]] = m[sel[a]] * m[buy[b]] / v
        return
    sel = _stable_order(p, sel)  # asks ascending
    neg = np.empty(n)
    for k in range(n):
        neg[k] = -p[k]
    buy = _stable_order(neg, buy)  # bids descending
    tol = _REL_TOL * max(vs, vb)
    a = 0
    b = 0
    rs = m[sel[0]]
    rb = m[buy[0]]
    while a < n_s and b < n_b:
        x = min(rs, rb)
        if x > 0.0:
            t[sel[a], buy[b]] += x
        rs -= x
        rb -= x
        if rs <= tol:
            a += 1
            if a < n_s:
                rs = m[sel[a]]
        if rb <= tol:
            b += 1
            if b < n_b:
                rb = m[buy[b]]


@numba.njit(cache=True, nogil=True)
def match_kernel(p, m, s, pro_rata):
    """Trades ``(B, n, n)`` kWh of books ``(B, n)``: bid/ask prices ``p`` $/kWh, matched kWh ``m``, sides
    ``s`` (int8, +1 sell, -1 buy)."""
    bn, n = p.shape
    t = np.zeros((bn, n, n))
    for e in range(bn):
        _match_one(p[e], m[e], s[e], pro_rata, t[e])
    return t


def match_trades(prices, matched, sides, matching: str = "price_priority") -> np.ndarray:
    """Trade matrix ``T[..., i, j]`` (kWh seller ``i`` sells to buyer ``j``) of books ``(..., n)``.

    prices:  (..., n) $/kWh, each order's limit price (ask of a seller, bid of a buyer).
    matched: (..., n) kWh each order trades (``Clearing.matched``).
    sides:   (..., n) +1 sell, -1 buy, 0 idle (``Clearing.sides``).
    matching: one of ``MATCHINGS`` (module docstring).
    """
    if matching not in MATCHINGS:
        raise ValueError(f"matching: expected one of {MATCHINGS}, got {matching!r}")
    p = np.asarray(prices, dtype=np.float64)
    m = np.asarray(matched, dtype=np.float64)
    s = np.asarray(sides)
    if not (p.shape == m.shape == s.shape) or p.ndim == 0:
        raise ValueError(f"prices, matched, sides: need one shape (..., n), got {p.shape}, {m.shape}, {s.shape}")
    if not (np.all(np.isfinite(m)) and np.all(m >= 0)):
        raise ValueError("matched: kWh must be finite and >= 0")
    batch, n = p.shape[:-1], p.shape[-1]
    t = match_kernel(np.ascontiguousarray(p.reshape(-1, n)), np.ascontiguousarray(m.reshape(-1, n)),
                     np.ascontiguousarray(s.reshape(-1, n), dtype=np.int8), matching == "pro_rata")
    return t.reshape(*batch, n, n)


@dataclass(frozen=True)
class TradeList:
    """The trades of one book as a list: ``seller[k]`` sold ``kwh[k]`` to ``buyer[k]`` (agent indices)."""

    seller: np.ndarray
    buyer: np.ndarray
    kwh: np.ndarray

    def __len__(self) -> int:
        return len(self.kwh)


def trade_list(trades: np.ndarray) -> TradeList:
    """(seller, buyer, kWh) of the nonzero entries of one ``(n, n)`` trade matrix, row-major order."""
    t = np.asarray(trades)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"trades: expected one (n, n) matrix, got shape {t.shape}")
    i, j = np.nonzero(t > 0)
    return TradeList(i, j, t[i, j])


def trade_cash(trades: np.ndarray, unit_price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """$ the buyer pays and the seller receives on each trade, ``(..., n, n)``: ``T_ij unit_price_j`` and
    ``T_ij unit_price_i`` (each at its own clearing price; equal under a uniform price). Their
    difference summed over a book is the clearing's operator surplus."""
    u = np.asarray(unit_price, dtype=np.float64)
    return trades * u[..., None, :], trades * u[..., :, None]
