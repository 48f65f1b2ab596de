"""Market-power indicators (spec S9)."""
import numpy as np
import pytest

from p2penv.diagnostics import (Cournot, aggregate_episode, competitive_benchmark, cournot_lerner, hhi, lerner,
                                lerner_mean, lerner_weighted, market_power_step, market_shares, pivotal, price_markup,
                                residual_supply_index, welfare_loss)
from p2penv.market.mechanisms import BUY, SELL


def test_hhi_seed_example():
    # S9: shares 40/30/20/10 % -> 0.16 + 0.09 + 0.04 + 0.01 = 0.30 (volumes or shares alike).
    assert hhi([0.4, 0.3, 0.2, 0.1]) == pytest.approx(0.30)
    assert hhi([4.0, 3.0, 2.0, 1.0]) == pytest.approx(0.30)
    np.testing.assert_allclose(market_shares([[4, 3, 2, 1], [0, 0, 0, 0]]), [[0.4, 0.3, 0.2, 0.1], [np.nan] * 4])


def test_cournot_lerner_seed_example_and_limit():
    # S9: L_avg = HHI / |epsilon| = 0.30 / 5 = 0.06, for either sign convention of epsilon.
    assert cournot_lerner(0.30, 5.0) == pytest.approx(0.06)
    assert cournot_lerner(0.30, -5.0) == pytest.approx(0.06)
    # ... and L -> 0 as |epsilon| -> infinity (0.3 / 1e9 = 3e-10).
    assert cournot_lerner(0.30, 1e9) == pytest.approx(3e-10)
    with pytest.raises(ValueError, match="elasticity"):
        cournot_lerner(0.3, 0.0)


def test_seed_numbers_from_a_cournot_game():
    # Built by hand: P = 60 - Q, c = (46, 47, 48, 49). Closed form q_i = (60 - 4 c_i + sum_{j!=i} c_j)/5
    # gives q = (4, 3, 2, 1), Q = 10, P = 50: shares 40/30/20/10, |eps| = P/(B Q) = 5,
    # L_i = (50 - c_i)/50 = (.08, .06, .04, .02), share-weighted .032+.018+.008+.002 = 0.06.
    eq = Cournot(60.0, 1.0, (46, 47, 48, 49)).equilibrium()
    np.testing.assert_allclose(eq.quantities, [4, 3, 2, 1])
    assert eq.hhi == pytest.approx(0.30) and eq.elasticity == pytest.approx(5.0)
    L = lerner_weighted(eq.price, [46, 47, 48, 49], eq.quantities)
    assert L == pytest.approx(0.06) == pytest.approx(cournot_lerner(eq.hhi, eq.elasticity))


def test_weighted_not_unweighted_lerner_matches_hhi_over_elasticity():
    # P = 100 - Q, c = (10, 20, 30): q = 40 - c_i = (30, 20, 10), Q = 60, P = 40, |eps| = 40/60.
    # HHI = (9 + 4 + 1)/36 = 7/18, HHI/|eps| = 7/12. L = (.75, .5, .25):
    # weighted .5*.75 + .5/3 + .25/6 = 7/12; unweighted mean 0.5 = 1/(N |eps|).
    costs = [10.0, 20.0, 30.0]
    eq = Cournot(100.0, 1.0, tuple(costs)).equilibrium()
    np.testing.assert_allclose(eq.quantities, [30, 20, 10])
    np.testing.assert_allclose(lerner(eq.price, costs), [0.75, 0.5, 0.25])
    lw = lerner_weighted(eq.price, costs, eq.quantities)
    assert lw == pytest.approx(7 / 12) == pytest.approx(eq.hhi / eq.elasticity)
    lm = lerner_mean(eq.price, costs, eq.quantities)
    assert lm == pytest.approx(0.5)
    assert abs(lm - eq.hhi / eq.elasticity) > 0.08


def test_lerner_undefined_price_and_inactive_sellers():
    np.testing.assert_allclose(lerner([0.0, 2.0], [[1.0], [1.0]]), [[np.nan], [0.5]])
    # Mean over active sellers only: seller 3 sells nothing, so mean of (0.5, 0.25) = 0.375.
    assert lerner_mean(4.0, [2.0, 3.0, 1.0], [1.0, 1.0, 0.0]) == pytest.approx(0.375)


def test_residual_supply_index_and_pivotal():
    # Capacities 50, 30, 20 kWh, demand 60: RSI = (50/60, 70/60, 80/60); only seller 0 pivotal.
    np.testing.assert_allclose(residual_supply_index([50, 30, 20], 60), [50 / 60, 70 / 60, 80 / 60])
    np.testing.assert_array_equal(pivotal([50, 30, 20], 60), [True, False, False])
    with pytest.raises(ValueError, match="demand"):
        residual_supply_index([1, 2], 0.0)
    with pytest.raises(ValueError, match="capacities"):
        residual_supply_index([-1, 2], 1.0)


def test_markup_and_welfare_loss():
    m, mr = price_markup([0.25, 0.1], [0.20, 0.0])
    np.testing.assert_allclose(m, [0.05, 0.1])
    np.testing.assert_allclose(mr, [0.25, np.nan])  # 0.05 / 0.20; undefined for a zero benchmark
    d, dr = welfare_loss(9.0, 12.0)
    assert d == 3.0 and dr == 0.25


def test_competitive_benchmark_on_hand_book():
    # Bids 10, 8, 3; asks 2, 4, 9: Q = 2, marginal pair (a, b) = (4, 8) -> midpoint 6; W = 8 + 4 = 12.
    price, w = competitive_benchmark([10, 8, 3, 2, 4, 9], [1] * 6, [BUY] * 3 + [SELL] * 3)
    assert price == 6.0 and w == 12.0


def test_step_and_episode_aggregation():
    # Step 0: sold (4,3,2,1), HHI 0.3. Step 1: sold (15,15,0,0), HHI 0.5. Step 2: no trade (HHI nan,
    # zero weight). Volume-weighted HHI = (10*.3 + 30*.5)/40 = 0.45.
    sold = np.array([[4, 3, 2, 1], [15, 15, 0, 0], [0, 0, 0, 0]], float)
    cap = np.array([[10, 10, 10, 10], [40, 20, 5, 5], [10, 10, 10, 10]], float)
    # RSI_0: step 0: 30/10 = 3; step 1: (70-40)/31 < 1, pivotal; step 2: 30/5 = 6.
    demand = np.array([10.0, 31.0, 5.0])
    price = np.array([0.30, 0.40, 0.20])
    bench = np.array([0.25, 0.25, 0.20])
    mc = np.full(4, 0.2)
    st = market_power_step(price, sold, mc, cap, demand, bench, [10.0, 20.0, 0.0], [12.0, 28.0, 0.0])
    np.testing.assert_allclose(st.hhi, [0.3, 0.5, np.nan])
    np.testing.assert_allclose(st.lerner_weighted, [1 / 3, 0.5, np.nan])  # (P - 0.2)/P; no sales, no shares
    np.testing.assert_allclose(st.markup, [0.05, 0.15, 0.0])
    ep = aggregate_episode(st)
    assert ep.hhi == pytest.approx(0.45)
    # Markup: (10*.05 + 30*.15)/40 = 0.125; relative (10*.2 + 30*.6)/40 = 0.5.
    assert ep.markup == pytest.approx(0.125) and ep.markup_rel == pytest.approx(0.5)
    # Lerner: (10/3 + 30*.5)/40 = 0.4583...
    assert ep.lerner_weighted == pytest.approx((10 / 3 + 15) / 40)
    # Welfare loss 2 + 8 = 10 of benchmark 40; 1 of 3 steps has a pivotal seller; max HHI 0.5.
    assert ep.welfare_loss == 10.0 and ep.welfare_loss_rel == 0.25
    np.testing.assert_array_equal(st.pivotal.any(-1), [False, True, False])
    assert ep.pivotal_frequency == pytest.approx(1 / 3) and ep.max_hhi == 0.5 and ep.volume == 40.0


def test_bad_quantities_are_named():
    with pytest.raises(ValueError, match="quantities"):
        hhi([1.0, -1.0])
