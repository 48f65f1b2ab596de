"""Bilateral trades from a cleared book (p2penv.market.bilateral): conservation, quantity bounds and
individual rationality on random books of every mechanism, and the price-priority order by hand."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penv.market.bilateral import MATCHINGS, match_trades, trade_cash, trade_list
from p2penv.market.mechanisms import BUY, MECHANISMS, SELL

TOL = 1e-9


@st.composite
def books(draw):
    n = draw(st.integers(1, 12))
    grid = draw(st.booleans())  # a coarse price grid makes ties frequent
    if grid:
        prices = draw(st.lists(st.integers(0, 4).map(lambda x: 0.1 * x), min_size=n, max_size=n))
    else:
        prices = draw(st.lists(st.floats(0, 0.4, allow_nan=False), min_size=n, max_size=n))
    qty = draw(st.lists(st.floats(0, 5, allow_nan=False), min_size=n, max_size=n))
    sides = draw(st.lists(st.sampled_from([BUY, SELL, 0]), min_size=n, max_size=n))
    return np.array(prices), np.array(qty), np.array(sides, dtype=np.int8)


@settings(max_examples=400, deadline=None)
@given(books(), st.sampled_from(sorted(MECHANISMS)), st.sampled_from(MATCHINGS))
def test_trades_conserve_matched_volume_and_are_individually_rational(book, mech, matching):
    p, q, s = book
    c = MECHANISMS[mech](p, q, s)
    t = match_trades(p, c.matched, c.sides, matching)
    scale = 1.0 + c.matched.sum()
    # conservation: each seller's row and each buyer's column sum to its matched kWh
    np.testing.assert_allclose(t.sum(axis=1)[s == SELL], c.matched[s == SELL], rtol=0, atol=TOL * scale)
    np.testing.assert_allclose(t.sum(axis=0)[s == BUY], c.matched[s == BUY], rtol=0, atol=TOL * scale)
    # only seller -> buyer entries; none beyond either order's quantity
    seller, buyer = s == SELL, s == BUY
    assert np.all(t >= 0)
    assert np.all(t[~seller, :] == 0) and np.all(t[:, ~buyer] == 0)
    assert np.all(t <= np.minimum(q[:, None], q[None, :]) + TOL * scale)
    # IR: a trade only where the buyer's bid covers the seller's ask
    i, j = np.nonzero(t > 0)
    assert np.all(p[j] >= p[i])
    # cash: the trades pay exactly the clearing's cash per agent and its operator surplus per book
    pays, gets = trade_cash(t, c.unit_price)
    np.testing.assert_allclose(gets.sum(axis=1) - pays.sum(axis=0), c.cash, atol=TOL * scale)
    assert abs(pays.sum() - gets.sum() - float(c.operator_surplus)) <= TOL * scale


@settings(max_examples=100, deadline=None)
@given(st.lists(books(), min_size=3, max_size=3).filter(lambda bs: len({len(b[0]) for b in bs}) == 1))
def test_batch_equals_one_book_at_a_time(bs):
    p, q, s = (np.stack(x) for x in zip(*bs))
    c = MECHANISMS["uniform"](p, q, s)
    t = match_trades(p, c.matched, c.sides)
    for e in range(3):
        np.testing.assert_array_equal(t[e], match_trades(p[e], c.matched[e], c.sides[e]))


def test_price_priority_by_hand():
    # sellers: 0 asks 0.10 (2 kWh), 2 asks 0.05 (1 kWh), 4 asks 0.10 (3 kWh); buyers: 1 bids 0.30 (2 kWh),
    # 3 bids 0.20 (3 kWh), 5 bids 0.30 (1 kWh). All 6 kWh trade.
    p = np.array([0.10, 0.30, 0.05, 0.20, 0.10, 0.30])
    m = np.array([2.0, 2.0, 1.0, 3.0, 3.0, 1.0])
    s = np.array([SELL, BUY, SELL, BUY, SELL, BUY])
    t = match_trades(p, m, s)
    # asks in order 2, 0, 4 (0 before 4 on the tie); bids in order 1, 5, 3 (1 before 5 on the tie)
    expect = {(2, 1): 1.0, (0, 1): 1.0, (0, 5): 1.0, (4, 3): 3.0}
    got = {(int(i), int(j)): float(k) for i, j, k in zip(*trade_list(t).__dict__.values())}
    assert got == expect
    pr = match_trades(p, m, s, "pro_rata")
    np.testing.assert_allclose(pr[[0, 2, 4]][:, [1, 3, 5]], np.outer([2, 1, 3], [2, 3, 1]) / 6.0)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="matching"):
        match_trades([0.1, 0.2], [1, 1], [1, -1], "fifo")
    with pytest.raises(ValueError, match="matched"):
        match_trades([0.1, 0.2], [-1, 1], [1, -1])
    with pytest.raises(ValueError, match="one shape"):
        match_trades([0.1, 0.2], [1, 1, 1], [1, -1])
