"""Welfare-maximising allocation of divisible order books, shared by all auction mechanisms.

The efficient volume of step supply and demand curves is ``Q = max_p min(D(p), S(p))`` over the
book's prices, with ``D(p)`` the bid volume at prices >= p and ``S(p)`` the ask volume at prices
<= p (any volume a uniform price can clear is efficient and vice versa). Orders strictly inside the
margin fill completely; orders *at* the marginal price share the remainder pro rata, the only tie
rule that treats identical orders identically.

One compiled kernel (numba, cached on disk) allocates a batch of books ``(B, n)``: per book one
stable sort by (price, asks before bids) makes both curves cumulative sums, because at the last ask
of a price level ``S`` (asks up to here) and ``D`` (bids from here on) equal the true ``S(p)`` and
``D(p)`` and elsewhere they are lower bounds, so ``Q = max_i min(S_i, D_i)`` exactly. The cost is
O(n log n) per book and no Python per book, so one env (B = 1) and 4,096 envs use the same code.
An independent pure-numpy allocation is kept in ``tests/reference/numpy_book.py`` and compared with
this kernel on random books.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# Relative tolerance for comparing cumulative volumes summed in different orders.
_VOL_RTOL = 1e-12
# Columns of the per-book statistics the kernel returns.
_VOLUME, _BID_Q, _ASK_Q, _BID_NEXT, _ASK_NEXT, _BEST_BID, _BEST_ASK = range(7)
N_STATS = 7


@dataclass(frozen=True)
class Allocation:
    """Efficient allocation of a batch of books, shape (B, n) / (B,).

    bid_q, ask_q: marginal (lowest accepted) bid and (highest accepted) ask price, $/kWh; nan if Q=0.
    bid_next, ask_next: highest bid / lowest ask price that still has unfilled volume (+-inf if none).
    best_bid, best_ask: highest bid / lowest ask in the book (-inf / +inf if that side is empty).
    is_bid, is_ask: orders that take part (volume above the book's float resolution).
    """

    matched: np.ndarray
    volume: np.ndarray
    bid_q: np.ndarray
    ask_q: np.ndarray
    bid_next: np.ndarray
    ask_next: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    is_bid: np.ndarray
    is_ask: np.ndarray


@numba.njit(cache=True, nogil=True)
def insertion_order(key, order):
    """Sort the indices ``order`` in place by ``key[order]`` ascending, ties kept in their order (a
    stable insertion sort: the fastest for community-sized books)."""
    for i in range(1, order.shape[0]):
        o = order[i]
        j = i - 1
        while j >= 0 and key[order[j]] > key[o]:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = o


@numba.njit(cache=True, nogil=True)
def _argsort(p):
    """Ascending order of ``p``: insertion sort for community-sized books, numpy's sort beyond."""
    n = p.shape[0]
    if n > 32:
        return np.argsort(p)
    order = np.arange(n)
    insertion_order(p, order)
    return order


@numba.njit(cache=True, nogil=True)
def _level(ps, x):
    """First index with ``ps >= x`` and first with ``ps > x`` in the sorted prices ``ps``."""
    lo, hi = 0, ps.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if ps[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    hi = ps.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if ps[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return first, lo


@numba.njit(cache=True, nogil=True)
def _allocate_one(p, q, s, matched, sgn, stats):
    """Allocate one book (1-D views); writes matched, effective sides and the 7 statistics."""
    n = p.shape[0]
    total = 0.0
    for i in range(n):
        total += q[i]
    # Volumes below the float resolution of the book's total are noise, not orders: letting them
    # in would make the Walrasian interval empty by rounding (1 + 1e-189 == 1).
    qtol = _VOL_RTOL * total
    for i in range(n):
        sgn[i] = s[i] if q[i] > qtol else 0
    order = _argsort(p)
    # within a price level: asks first, then idle, then bids (stable partition of each run)
    ps = np.empty(n)
    ss = np.empty(n, np.int8)
    qs = np.empty(n)
    pos = 0
    while pos < n:
        end = pos + 1
        while end < n and p[order[end]] == p[order[pos]]:
            end += 1
        w = pos
        for want in (1, 0, -1):
            for j in range(pos, end):
                o = order[j]
                if sgn[o] == want:
                    ps[w] = p[o]
                    ss[w] = sgn[o]
                    qs[w] = q[o]
                    matched[o] = w  # temporary: sorted position of order o
                    w += 1
        pos = end
    rank = np.empty(n, np.int64)
    for o in range(n):
        rank[int(matched[o])] = o
    sup = np.empty(n)
    dem = np.empty(n)
    acc = 0.0
    for i in range(n):
        if ss[i] > 0:
            acc += qs[i]
        sup[i] = acc
    acc = 0.0
    for i in range(n - 1, -1, -1):
        if ss[i] < 0:
            acc += qs[i]
        dem[i] = acc
    volume = 0.0
    for i in range(n):
        m = min(sup[i], dem[i])
        if m > volume:
            volume = m
    best_bid = -np.inf
    best_ask = np.inf
    for i in range(n):
        if ss[i] < 0:
            best_bid = ps[i]
        if ss[i] > 0 and best_ask == np.inf:
            best_ask = ps[i]
    ms = np.zeros(n)
    if volume > 0:
        tol = volume * _VOL_RTOL + 1e-300  # volumes below 1e-300 kWh are rounding, not orders
        kb = -1  # lowest accepted bid: the last bid whose demand-from-here still covers Q
        for i in range(n):
            if ss[i] < 0 and dem[i] >= volume - tol:
                kb = i
        ka = -1  # highest accepted ask: the first ask whose supply-up-to-here covers Q
        for i in range(n):
            if ss[i] > 0 and sup[i] >= volume - tol:
                ka = i
                break
        bid_q, ask_q = ps[kb], ps[ka]
        lb, hb = _level(ps, bid_q)
        la, ha = _level(ps, ask_q)
        above_b = dem[hb] if hb < n else 0.0  # bids strictly above the marginal bid
        below_a = sup[la - 1] if la > 0 else 0.0  # asks strictly below the marginal ask
        lvl_b = dem[lb] - above_b
        lvl_a = sup[ha - 1] - below_a
        rem_b = max(volume - above_b, 0.0)
        rem_a = max(volume - below_a, 0.0)
        fb = min(rem_b / lvl_b, 1.0) if lvl_b > 0 else 0.0
        fa = min(rem_a / lvl_a, 1.0) if lvl_a > 0 else 0.0
        for i in range(n):
            if ss[i] < 0:
                if i >= hb:
                    ms[i] = qs[i]
                elif i >= lb:
                    ms[i] = qs[i] * fb
            elif ss[i] > 0:
                if i < la:
                    ms[i] = qs[i]
                elif i < ha:
                    ms[i] = qs[i] * fa
        if lvl_b - rem_b > tol:
            bid_next = bid_q
        else:
            bid_next = -np.inf  # highest bid below the marginal level
            for i in range(lb - 1, -1, -1):
                if ss[i] < 0:
                    bid_next = ps[i]
                    break
        if lvl_a - rem_a > tol:
            ask_next = ask_q
        else:
            ask_next = np.inf  # lowest ask above the marginal level
            for i in range(ha, n):
                if ss[i] > 0:
                    ask_next = ps[i]
                    break
    else:
        bid_q = np.nan
        ask_q = np.nan
        bid_next = best_bid
        ask_next = best_ask
    for i in range(n):
        matched[rank[i]] = ms[i]
    stats[_VOLUME] = volume
    stats[_BID_Q] = bid_q
    stats[_ASK_Q] = ask_q
    stats[_BID_NEXT] = bid_next
    stats[_ASK_NEXT] = ask_next
    stats[_BEST_BID] = best_bid
    stats[_BEST_ASK] = best_ask


@numba.njit(cache=True, nogil=True)
def allocate_kernel(p, q, s):
    """Allocate books ``(B, n)``: matched kWh ``(B, n)``, effective sides ``(B, n)`` int8 and the
    statistics ``(B, 7)`` (volume, bid_q, ask_q, bid_next, ask_next, best_bid, best_ask)."""
    b, n = p.shape
    matched = np.empty((b, n))
    sgn = np.empty((b, n), np.int8)
    stats = np.empty((b, N_STATS))
    for i in range(b):
        _allocate_one(p[i], q[i], s[i], matched[i], sgn[i], stats[i])
    return matched, sgn, stats


@numba.njit(cache=True, nogil=True)
def _interval(st, walrasian):
    """Uniform-price interval [lo, hi] of one book from its statistics (see ``uniform_price_interval``)."""
    if st[_VOLUME] > 0:
        if walrasian:
            return max(st[_ASK_Q], st[_BID_NEXT]), min(st[_BID_Q], st[_ASK_NEXT])
        return st[_ASK_Q], st[_BID_Q]
    bb, ba = st[_BEST_BID], st[_BEST_ASK]
    has_b, has_a = bb > -np.inf, ba < np.inf
    lo = bb if has_b else (ba if has_a else np.nan)
    hi = ba if has_a else (bb if has_b else np.nan)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def clear_double_auction_kernel(p, q, s, k, walrasian, pay_as_bid):
    """Uniform-price k-double auction or pay-as-bid on books ``(B, n)``, one pass per book.

    Returns matched ``(B, n)`` kWh, unit price ``(B, n)`` $/kWh, and per book the reference
    clearing price, volume, operator surplus and declared welfare ``(B,)``.
    """
    b, n = p.shape
    matched = np.empty((b, n))
    unit = np.empty((b, n))
    sgn = np.empty(n, np.int8)
    st = np.empty(N_STATS)
    price = np.empty(b)
    volume = np.empty(b)
    surplus = np.empty(b)
    welfare = np.empty(b)
    for i in range(b):
        m = matched[i]
        _allocate_one(p[i], q[i], s[i], m, sgn, st)
        lo, hi = _interval(st, walrasian)
        cp = lo + k * (hi - lo)
        w = 0.0
        bought = 0.0
        sold = 0.0
        for j in range(n):
            if sgn[j] < 0:
                w += p[i, j] * m[j]
                bought += m[j]
            elif sgn[j] > 0:
                w -= p[i, j] * m[j]
                sold += m[j]
        if pay_as_bid:
            for j in range(n):
                unit[i, j] = p[i, j]
            surplus[i] = w
        else:
            u = 0.0 if cp != cp else cp  # empty book: no price, zero cash
            for j in range(n):
                unit[i, j] = u
            surplus[i] = (bought - sold) * u
        price[i] = cp
        volume[i] = st[_VOLUME]
        welfare[i] = w
    return matched, unit, price, volume, surplus, welfare


def efficient_allocation(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> Allocation:
    """Allocate 2-D books ``(B, n)``; see module docstring."""
    matched, sgn, st = allocate_kernel(np.ascontiguousarray(p, dtype=np.float64),
                                       np.ascontiguousarray(q, dtype=np.float64),
                                       np.ascontiguousarray(s, dtype=np.int8))
    return Allocation(matched, *st.T, sgn < 0, sgn > 0)


def as_batch(*arrays: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """Reshape ``(..., n)`` arrays to 2-D ``(B, n)``; return them and the original batch shape."""
    batch = arrays[0].shape[:-1]
    n = arrays[0].shape[-1]
    return tuple(a.reshape(-1, n) for a in arrays), batch


def uniform_price_interval(alloc: Allocation, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper end of the uniform-price interval, $/kWh.

    ``rule="marginal_pair"``: [a_Q, b_Q] (the S3 convention).
    ``rule="walrasian"``: [max(a_Q, b_{Q+1}), min(b_Q, a_{Q+1})], the prices at which every accepted
    order wants to trade and every rejected one does not.
    With no trade both rules give [best bid, best ask] (any price there clears zero), collapsing to
    the one existing side's best price when the other side is empty; nan for an empty book.
    """
    traded = alloc.volume > 0
    if rule == "marginal_pair":
        lo, hi = alloc.ask_q, alloc.bid_q
    elif rule == "walrasian":
        lo = np.maximum(alloc.ask_q, alloc.bid_next)
        hi = np.minimum(alloc.bid_q, alloc.ask_next)
    else:
        raise ValueError(f"rule: expected 'marginal_pair' or 'walrasian', got {rule!r}")
    bb, ba = alloc.best_bid, alloc.best_ask
    has_b, has_a = np.isfinite(bb), np.isfinite(ba)
    nt_lo = np.where(has_b, bb, np.where(has_a, ba, np.nan))
    nt_hi = np.where(has_a, ba, np.where(has_b, bb, np.nan))
    return np.where(traded, lo, nt_lo), np.where(traded, hi, nt_hi)
