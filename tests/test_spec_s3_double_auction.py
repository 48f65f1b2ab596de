"""Spec item S3 (docs/spec.md): bids {12, 10, 8}, asks {5, 7, 9}, 1 kWh each -> Q = 2, p = 8.5, surplus 10."""
import numpy as np
import pytest

from p2penv.market.mechanisms import BUY, SELL, pay_as_bid, uniform

PRICES = np.array([12.0, 10.0, 8.0, 5.0, 7.0, 9.0])
QTY = np.ones(6)
SIDES = np.array([BUY, BUY, BUY, SELL, SELL, SELL])


@pytest.mark.parametrize("rule", ["marginal_pair", "walrasian"])
def test_spec_s3_double_auction_example(rule):
    c = uniform.clear(PRICES, QTY, SIDES, rule=rule)
    assert c.volume == 2.0
    assert c.clearing_price == 8.5
    assert c.welfare == 10.0  # (12 - 5) + (10 - 7)
    np.testing.assert_array_equal(c.matched, [1, 1, 0, 1, 1, 0])
    # the bidders 12, 10 and sellers 5, 7 trade at 8.5; buyers pay what sellers receive
    np.testing.assert_array_equal(c.cash, [-8.5, -8.5, 0, 8.5, 8.5, 0])
    assert c.operator_surplus == 0.0


def test_spec_s3_interval_ends_and_k():
    # marginal pair interval [a_Q, b_Q] = [7, 10]; Walrasian [max(7, 8), min(10, 9)] = [8, 9]
    assert uniform.clear(PRICES, QTY, SIDES, k=0.0).clearing_price == 7.0
    assert uniform.clear(PRICES, QTY, SIDES, k=1.0).clearing_price == 10.0
    assert uniform.clear(PRICES, QTY, SIDES, k=0.0, rule="walrasian").clearing_price == 8.0
    assert uniform.clear(PRICES, QTY, SIDES, k=1.0, rule="walrasian").clearing_price == 9.0


def test_spec_s3_pay_as_bid():
    c = pay_as_bid.clear(PRICES, QTY, SIDES)
    assert c.volume == 2.0
    np.testing.assert_array_equal(c.cash, [-12, -10, 0, 5, 7, 0])
    assert c.operator_surplus == 10.0  # 12 + 10 - 5 - 7: the operator keeps every spread


def test_ties_at_the_margin_share_pro_rata():
    # demand 3 kWh at 10; asks 1 kWh at 4 and 4 kWh at 6 split between two sellers at 6 (1 and 3 kWh)
    p = np.array([10.0, 4.0, 6.0, 6.0])
    q = np.array([3.0, 1.0, 1.0, 3.0])
    s = np.array([BUY, SELL, SELL, SELL])
    c = uniform.clear(p, q, s)
    assert c.volume == 3.0
    np.testing.assert_allclose(c.matched, [3.0, 1.0, 0.5, 1.5])  # the 2 kWh remainder split 1:3
    assert c.clearing_price == 8.0  # marginal pair [6, 10]


def test_partially_filled_marginal_bid_pins_walrasian_price():
    # bid 5 kWh at 10 against 2 kWh at 3: the bidder is rationed, so only p = 10 is Walrasian
    c = uniform.clear([10.0, 3.0], [5.0, 2.0], [BUY, SELL], rule="walrasian")
    assert c.volume == 2.0 and c.clearing_price == 10.0


def test_no_trade_and_empty_books():
    c = uniform.clear([5.0, 7.0], [1.0, 1.0], [BUY, SELL])
    assert c.volume == 0.0 and c.clearing_price == 6.0  # any price in [5, 7] clears nothing
    c = uniform.clear([5.0, 7.0], [1.0, 1.0], [0, 0])
    assert c.volume == 0.0 and np.isnan(c.clearing_price) and np.all(c.cash == 0)


@pytest.mark.parametrize("grid", [False, True])
def test_batch_matches_single_books(grid):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (7, 3, 12)) if not grid else rng.integers(0, 4, (7, 3, 12)).astype(float)
    q = rng.uniform(0, 2, (7, 3, 12))
    s = rng.choice([-1, 0, 1], (7, 3, 12))
    c = uniform.clear(p, q, s)
    assert c.matched.shape == (7, 3, 12) and c.clearing_price.shape == (7, 3)
    for i in range(7):
        for j in range(3):
            cij = uniform.clear(p[i, j], q[i, j], s[i, j])
            # single books take the 1-D path, batches the vectorised one: same result up to rounding
            np.testing.assert_allclose(cij.matched, c.matched[i, j], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(cij.clearing_price, c.clearing_price[i, j], rtol=1e-12)


def test_bad_books_raise_naming_the_field():
    with pytest.raises(ValueError, match="prices"):
        uniform.clear([np.nan, 1.0], [1.0, 1.0], [BUY, SELL])
    with pytest.raises(ValueError, match="quantities"):
        uniform.clear([1.0, 1.0], [-1.0, 1.0], [BUY, SELL])
    with pytest.raises(ValueError, match="sides"):
        uniform.clear([1.0, 1.0], [1.0, 1.0], [2, SELL])
    with pytest.raises(ValueError, match="shape"):
        uniform.clear([1.0], [1.0, 1.0], [BUY, SELL])
    with pytest.raises(ValueError, match="k"):
        uniform.clear([1.0, 1.0], [1.0, 1.0], [BUY, SELL], k=1.5)
