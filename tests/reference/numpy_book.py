"""Independent reference for the allocation kernel: the earlier pure-numpy batched allocation.

Kept in the tests only (the package computes allocations with the numba kernel in
``p2penv.market.mechanisms.book``); the two are compared on random books in
``tests/test_clearing_properties.py``.
"""
import numpy as np

from p2penv.market.mechanisms.book import _VOL_RTOL, Allocation
from p2penv.market.mechanisms.types import BUY, SELL


def numpy_allocation(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> Allocation:
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
