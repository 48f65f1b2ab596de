"""Settlement: market cash, utility backstop, curtailment within the ramp floor (hand-checked)."""
import numpy as np
import pytest

from p2penv.market.settlement import settle

BASE = dict(
    demand_kw=np.array([1.0, 3.0]), eta=np.array([1.0, 1.0]), cost_a=np.array([0.01, 0.01]),
    cost_b=np.array([0.1, 0.1]), dt_h=1.0, sides=np.array([1, -1]), unit_price=np.array([0.2, 0.2]),
    retail_tariff=0.3, feed_in_tariff=0.05,
)


def test_backstop_settles_unmatched_volume():
    # seller: p = 5, d = 1 -> sells 4, 3 matched at 0.2 (0.6) + 1 at feed-in (0.05) - C(5) = 0.75 -> -0.1
    # buyer: d = 3 -> buys 3, 2 matched at 0.2 (-0.4) + 1 at retail (-0.3) -> -0.7
    st = settle(dispatch_kw=np.array([5.0, 0.0]), floor_kw=np.array([0.0, 0.0]), order_kwh=np.array([4.0, 3.0]),
                matched_kwh=np.array([3.0, 2.0]), **BASE)
    np.testing.assert_allclose(st.market_cash, [0.6, -0.4])
    np.testing.assert_allclose(st.backstop_export_kwh, [1.0, 0.0])
    np.testing.assert_allclose(st.backstop_import_kwh, [0.0, 1.0])
    np.testing.assert_allclose(st.reward, [0.6 + 0.05 - 0.75, -0.7])


def test_curtail_lowers_dispatch_but_never_below_the_floor():
    # unmatched export 1 kWh: floor 4.5 leaves 0.5 kWh of room -> dispatch 4.5, 0.5 still exported
    st = settle(dispatch_kw=np.array([5.0, 0.0]), floor_kw=np.array([4.5, 0.0]), order_kwh=np.array([4.0, 3.0]),
                matched_kwh=np.array([3.0, 2.0]), unmatched="curtail", **BASE)
    assert st.dispatch_kw[0] == 4.5 and st.curtailed_kwh[0] == pytest.approx(0.5)
    assert st.backstop_export_kwh[0] == pytest.approx(0.5)
    assert st.net_kwh[0] == pytest.approx(3.5)  # matched 3 + exported 0.5
    with pytest.raises(ValueError, match="unmatched"):
        settle(dispatch_kw=np.zeros(2), floor_kw=np.zeros(2), order_kwh=np.zeros(2), matched_kwh=np.zeros(2),
               unmatched="dump", **BASE)


def test_flexible_load_sheds_unmatched_demand_at_its_value():
    # buyer (value of lost load 0.2 < retail 0.3): 1 kWh unmatched is shed, not imported: -0.4 - 0.2
    st = settle(dispatch_kw=np.array([5.0, 0.0]), floor_kw=np.array([0.0, 0.0]), order_kwh=np.array([4.0, 3.0]),
                matched_kwh=np.array([3.0, 2.0]), shed_value=np.array([np.inf, 0.2]), **BASE)
    np.testing.assert_allclose(st.shed_kwh, [0.0, 1.0])
    np.testing.assert_allclose(st.backstop_import_kwh, [0.0, 0.0])
    np.testing.assert_allclose(st.reward[1], -0.4 - 0.2)
    assert st.net_kwh[1] == pytest.approx(-2.0)  # it consumed only what it bought
    # a value above retail never sheds: importing is cheaper
    st = settle(dispatch_kw=np.array([5.0, 0.0]), floor_kw=np.array([0.0, 0.0]), order_kwh=np.array([4.0, 3.0]),
                matched_kwh=np.array([3.0, 2.0]), shed_value=np.array([np.inf, 0.5]), **BASE)
    assert st.shed_kwh[1] == 0 and st.backstop_import_kwh[1] == 1.0
