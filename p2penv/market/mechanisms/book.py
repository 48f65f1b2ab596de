"""Welfare-maximising allocation of a divisible order book, shared by all auction mechanisms.

The efficient volume of step supply and demand curves is ``Q = max_p min(D(p), S(p))`` over the
book's prices, with ``D(p)`` the bid volume at prices >= p and ``S(p)`` the ask volume at prices
<= p (any volume a uniform price can clear is efficient and vice versa). Orders strictly inside the
margin fill completely; orders *at* the marginal price share the remainder pro rata, which is the
tie rule the issue asks for and the only one that treats identical orders identically.

Everything is vectorised over a leading batch dimension: one argsort, a few cumulative sums and
reductions, no Python loop over orders or books.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import BUY, SELL

# Relative tolerance for comparing cumulative volumes summed in different orders.
_VOL_RTOL = 1e-12


@dataclass(frozen=True)
class Allocation:
    """Efficient allocation of a batch of books, shape (B, n) / (B,) (internal 2-D form).

    bid_q, ask_q: marginal (lowest accepted) bid and (highest accepted) ask price, $/kWh; nan if Q=0.
    bid_next, ask_next: highest bid / lowest ask price that still has unfilled volume (+-inf if none).
    best_bid, best_ask: highest bid / lowest ask in the book (-inf / +inf if that side is empty).
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


def efficient_allocation(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> Allocation:
    """Allocate 2-D books ``(B, n)``; see module docstring."""
    if p.shape[0] == 1:
        return efficient_allocation_1d(p[0], q[0], s[0])
    return efficient_allocation_batched(p, q, s)


def efficient_allocation_batched(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> Allocation:
    """Vectorised over the batch: one argsort, cumulative sums and masked reductions."""
    # Volumes below the float resolution of the book's total are noise, not orders: letting them
    # in would make the Walrasian interval empty by rounding (1 + 1e-189 == 1).
    qtol = _VOL_RTOL * q.sum(-1, keepdims=True)
    is_bid = (s == BUY) & (q > qtol)
    is_ask = (s == SELL) & (q > qtol)
    qb = np.where(is_bid, q, 0.0)
    qa = np.where(is_ask, q, 0.0)

    # Evaluate D and S at every order price from one ascending sort.
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, -1)
    qbs = np.take_along_axis(qb, order, -1)
    qas = np.take_along_axis(qa, order, -1)
    n = p.shape[-1]
    idx = np.broadcast_to(np.arange(n), ps.shape)
    new_group = np.ones(ps.shape, dtype=bool)
    new_group[:, 1:] = ps[:, 1:] != ps[:, :-1]
    last_in_group = np.ones(ps.shape, dtype=bool)
    last_in_group[:, :-1] = new_group[:, 1:]
    group_first = np.maximum.accumulate(np.where(new_group, idx, 0), axis=-1)
    group_last = np.minimum.accumulate(np.where(last_in_group, idx, n)[:, ::-1], axis=-1)[:, ::-1]
    cum_a = np.cumsum(qas, axis=-1)
    # bids from position i to the end, summed from the top: exact zero above the best bid
    # (total - prefix would leave 1e-16 residues that look like tradeable volume)
    tail_b = np.cumsum(qbs[:, ::-1], axis=-1)[:, ::-1]
    supply = np.take_along_axis(cum_a, group_last, -1)  # S(p): asks priced <= p
    demand = np.take_along_axis(tail_b, group_first, -1)  # D(p): bids priced >= p
    volume = np.maximum(np.max(np.minimum(demand, supply), axis=-1), 0.0)

    tol = volume * _VOL_RTOL + 1e-300
    traded = volume > 0
    vol_c = volume[:, None]
    bid_sorted = qbs > 0
    ask_sorted = qas > 0
    # Marginal bid: highest bid price whose demand still covers Q; marginal ask symmetrically.
    bid_q = np.max(np.where(bid_sorted & (demand >= vol_c - tol[:, None]), ps, -np.inf), axis=-1)
    ask_q = np.min(np.where(ask_sorted & (supply >= vol_c - tol[:, None]), ps, np.inf), axis=-1)
    bid_q = np.where(traded, bid_q, np.nan)
    ask_q = np.where(traded, ask_q, np.nan)

    bq = bid_q[:, None]
    aq = ask_q[:, None]
    above = is_bid & (p > bq)
    at_b = is_bid & (p == bq)
    below = is_ask & (p < aq)
    at_a = is_ask & (p == aq)
    rem_b = np.maximum(volume - np.where(above, q, 0.0).sum(-1), 0.0)
    rem_a = np.maximum(volume - np.where(below, q, 0.0).sum(-1), 0.0)
    lvl_b = np.where(at_b, q, 0.0).sum(-1)
    lvl_a = np.where(at_a, q, 0.0).sum(-1)
    frac_b = np.divide(rem_b, lvl_b, out=np.zeros_like(rem_b), where=lvl_b > 0)
    frac_a = np.divide(rem_a, lvl_a, out=np.zeros_like(rem_a), where=lvl_a > 0)
    frac_b = np.minimum(frac_b, 1.0)
    frac_a = np.minimum(frac_a, 1.0)
    matched = np.where(above | below, q, 0.0)
    matched = matched + np.where(at_b, q * frac_b[:, None], 0.0) + np.where(at_a, q * frac_a[:, None], 0.0)

    best_bid = np.max(np.where(is_bid, p, -np.inf), axis=-1)
    best_ask = np.min(np.where(is_ask, p, np.inf), axis=-1)
    # First rejected units: the marginal level itself if it kept volume back, else the next level.
    left_b = lvl_b - rem_b > tol
    left_a = lvl_a - rem_a > tol
    next_b = np.max(np.where(is_bid & (p < bq), p, -np.inf), axis=-1)
    next_a = np.min(np.where(is_ask & (p > aq), p, np.inf), axis=-1)
    bid_next = np.where(traded, np.where(left_b, bid_q, next_b), best_bid)
    ask_next = np.where(traded, np.where(left_a, ask_q, next_a), best_ask)
    return Allocation(matched, volume, bid_q, ask_q, bid_next, ask_next, best_bid, best_ask, is_bid, is_ask)


def as_batch(*arrays: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """Reshape ``(..., n)`` arrays to 2-D ``(B, n)``; return them and the original batch shape."""
    batch = arrays[0].shape[:-1]
    n = arrays[0].shape[-1]
    return tuple(a.reshape(-1, n) for a in arrays), batch


def uniform_price_interval(alloc: Allocation, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper end of the uniform-price interval, $/kWh.

    ``rule="marginal_pair"``: [a_Q, b_Q] (the seed's S3 convention).
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


@dataclass(frozen=True)
class Allocation1D:
    """``Allocation`` of one book with the price levels as Python floats (see ``Allocation``)."""

    matched: np.ndarray  # (n,)
    volume: float
    bid_q: float
    ask_q: float
    bid_next: float
    ask_next: float
    best_bid: float
    best_ask: float
    is_bid: np.ndarray  # (n,) bool
    is_ask: np.ndarray

    def batched(self) -> Allocation:
        v = np.array([[self.volume, self.bid_q, self.ask_q, self.bid_next, self.ask_next, self.best_bid,
                       self.best_ask]]).T
        return Allocation(self.matched[None], *v, self.is_bid[None], self.is_ask[None])

    def price_interval(self, rule: str) -> tuple[float, float]:
        """Scalar version of ``uniform_price_interval``."""
        if self.volume > 0:
            if rule == "marginal_pair":
                return self.ask_q, self.bid_q
            if rule == "walrasian":
                return max(self.ask_q, self.bid_next), min(self.bid_q, self.ask_next)
            raise ValueError(f"rule: expected 'marginal_pair' or 'walrasian', got {rule!r}")
        if rule not in ("marginal_pair", "walrasian"):
            raise ValueError(f"rule: expected 'marginal_pair' or 'walrasian', got {rule!r}")
        bb, ba = self.best_bid, self.best_ask
        has_b, has_a = bb > -np.inf, ba < np.inf
        lo = bb if has_b else (ba if has_a else np.nan)
        hi = ba if has_a else (bb if has_b else np.nan)
        return lo, hi


def allocate_1d(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> Allocation1D:
    """Efficient allocation of one book ``(n,)``; same result as the batched path.

    The environments clear one small book per step, where the cost is the number of numpy calls,
    not the arithmetic. One sort by (price, asks before bids) makes both curves cumulative sums:
    at the last ask of a price level both ``S`` (asks up to here) and ``D`` (bids from here on)
    equal the true ``S(p)`` and ``D(p)``, and elsewhere they are lower bounds, so
    ``Q = max_i min(S_i, D_i)`` exactly. Marginal levels and pro-rata fills then need only
    scalar arithmetic on the sorted arrays. Cross-checked against the batched path in the tests.
    """
    n = p.shape[0]
    qtol = _VOL_RTOL * float(q.sum())
    sgn = np.where(q > qtol, s, 0)
    order = np.lexsort((-sgn, p))
    ps, qs, ss = p[order], q[order], sgn[order]
    qa = np.where(ss > 0, qs, 0.0)
    qb = np.where(ss < 0, qs, 0.0)
    sup = np.cumsum(qa)
    dem = np.cumsum(qb[::-1])[::-1]
    volume = float(np.minimum(sup, dem).max()) if n else 0.0
    bid_pos = (ss < 0).nonzero()[0]
    ask_pos = (ss > 0).nonzero()[0]
    best_bid = float(ps[bid_pos[-1]]) if bid_pos.size else -np.inf
    best_ask = float(ps[ask_pos[0]]) if ask_pos.size else np.inf
    matched_sorted = np.zeros(n)
    if volume > 0:
        tol = volume * _VOL_RTOL
        # lowest accepted bid: the last bid whose demand-from-here still covers Q; symmetric for asks
        kb = bid_pos[(dem[bid_pos] >= volume - tol).nonzero()[0][-1]]
        ka = ask_pos[(sup[ask_pos] >= volume - tol).nonzero()[0][0]]
        bid_q, ask_q = float(ps[kb]), float(ps[ka])
        lb, hb = int(ps.searchsorted(bid_q, "left")), int(ps.searchsorted(bid_q, "right"))
        la, ha = int(ps.searchsorted(ask_q, "left")), int(ps.searchsorted(ask_q, "right"))
        above_b = float(dem[hb]) if hb < n else 0.0  # bids strictly above the marginal bid
        below_a = float(sup[la - 1]) if la > 0 else 0.0  # asks strictly below the marginal ask
        lvl_b = float(dem[lb]) - above_b
        lvl_a = float(sup[ha - 1]) - below_a
        rem_b, rem_a = max(volume - above_b, 0.0), max(volume - below_a, 0.0)
        fb = min(rem_b / lvl_b, 1.0) if lvl_b > 0 else 0.0
        fa = min(rem_a / lvl_a, 1.0) if lvl_a > 0 else 0.0
        qb[:lb] = 0.0
        qb[lb:hb] *= fb
        qa[ha:] = 0.0
        qa[la:ha] *= fa
        matched_sorted = qa + qb
        if lvl_b - rem_b > tol:
            bid_next = bid_q
        else:
            j = int(bid_pos.searchsorted(lb)) - 1  # highest bid below the marginal level
            bid_next = float(ps[bid_pos[j]]) if j >= 0 else -np.inf
        if lvl_a - rem_a > tol:
            ask_next = ask_q
        else:
            j = int(ask_pos.searchsorted(ha))  # lowest ask above the marginal level
            ask_next = float(ps[ask_pos[j]]) if j < ask_pos.size else np.inf
    else:
        bid_q = ask_q = np.nan
        bid_next, ask_next = best_bid, best_ask
    matched = np.empty(n)
    matched[order] = matched_sorted
    return Allocation1D(matched, volume, bid_q, ask_q, bid_next, ask_next, best_bid, best_ask, sgn < 0, sgn > 0)


def efficient_allocation_1d(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> Allocation:
    """``allocate_1d`` in the batched ``Allocation`` layout (batch dimension 1)."""
    return allocate_1d(p, q, s).batched()
