"""The episode-level competitive benchmark (S1 over the horizon, with batteries and ramps)."""
import dataclasses

import numpy as np
import pytest

from p2penv.generators import HouseholdMix
from p2penv.market.competitive import competitive_equilibrium
from p2penv.market.competitive_horizon import competitive_horizon
from p2penv.market.prosumer import Fleet
from p2penv.market.storage import Storage


def test_without_links_between_steps_it_is_the_per_step_equilibrium():
    """No batteries and no binding ramps: the horizon problem separates into S1 per step."""
    fleet = HouseholdMix()(6, 24, 1.0, 0.0, np.random.default_rng(3))
    fleet = dataclasses.replace(fleet, ramp_kw=np.full(6, np.inf))
    out = competitive_horizon(fleet, 1.0, 0.30, 0.05)
    total = 0.0
    for t in range(24):
        flex = np.isfinite(fleet.shed_values)
        eq = competitive_equilibrium(fleet.cost_a, fleet.cost_b, 0.0, fleet.p_max_kw[t], fleet.eta,
                                     fixed_demand_kwh=float(fleet.demand_kw[t, ~flex].sum()),
                                     flex_kwh=fleet.demand_kw[t, flex], flex_value=fleet.shed_values[flex],
                                     retail_price=0.30, feed_in_price=0.05)
        assert out.price[t] == pytest.approx(eq.price, abs=1e-6)
        np.testing.assert_allclose(out.der_kwh[t], eq.energy_kwh, atol=1e-5)
        total += eq.welfare
    assert out.welfare == pytest.approx(total, abs=1e-6)


def _one_battery(retail, eta=0.9, deg=0.01, cap=10.0, power=4.0):
    t = len(retail)
    z = np.zeros((t, 2))
    st = Storage(np.array([cap, 0.0]), np.array([power, 0.0]), np.array([power, 0.0]), np.array([eta, 1.0]),
                 np.array([eta, 1.0]), np.zeros(2), np.array([cap, 0.0]), np.zeros(2), np.array([deg, 0.0]))
    demand = z.copy()
    demand[:, 1] = 5.0  # a fixed 5 kW load next door
    return Fleet(demand, z, np.full(2, np.inf), np.ones(2), np.full(2, 0.01), np.zeros(2), np.zeros(2),
                 np.arange(1, 3), ("battery", "load"), None, st)


def test_battery_arbitrage_matches_the_hand_calculation():
    """Retail 0.10 then 0.30 $/kWh, feed-in 0: the battery charges 4 kWh (its power limit) from the grid
    and discharges eta^2 * 4 = 3.24 kWh into the neighbour's load, saving 0.30 x 3.24 - 0.10 x 4
    - 0.01 x (4 + 3.24) = 0.5 $; the price is the retail tariff at both steps."""
    out = competitive_horizon(_one_battery([0.10, 0.30]), 1.0, np.array([0.10, 0.30]), 0.0)
    assert out.charge_kwh[0, 0] == pytest.approx(4.0, abs=1e-6)
    assert out.discharge_kwh[1, 0] == pytest.approx(3.24, abs=1e-6)
    np.testing.assert_allclose(out.soc_kwh[:, 0], [0.0, 3.6, 0.0], atol=1e-6)
    np.testing.assert_allclose(out.price, [0.10, 0.30], atol=1e-9)
    no_battery = -(0.10 + 0.30) * 5.0
    assert out.welfare - no_battery == pytest.approx(0.30 * 3.24 - 0.10 * 4.0 - 0.01 * 7.24, abs=1e-6)


def test_battery_stays_idle_when_the_spread_does_not_pay_for_losses():
    """0.20 -> 0.24 $/kWh with 81 % round trip: 0.24 x 0.81 < 0.20, so arbitrage loses money."""
    out = competitive_horizon(_one_battery([0.20, 0.24]), 1.0, np.array([0.20, 0.24]), 0.0)
    assert np.all(out.charge_kwh < 1e-7) and np.all(out.discharge_kwh < 1e-7)


def test_storage_community_schedule_is_feasible():
    fleet = HouseholdMix(kinds=("pv_battery", "consumer", "dispatchable", "pv_battery", "flexible_load"))(
        5, 24, 1.0, 0.0, np.random.default_rng(0))
    out = competitive_horizon(fleet, 1.0, 0.30, 0.05)
    st = fleet.storage
    assert np.all(out.soc_kwh >= st.soc_min_kwh - 1e-7) and np.all(out.soc_kwh <= st.soc_max_kwh + 1e-7)
    e = np.vstack([fleet.p0_kw[None], out.der_kwh])
    assert np.all(np.abs(np.diff(e, axis=0)) <= fleet.ramp_kw + 1e-6)  # ramps over the whole horizon
    assert np.all((out.price >= 0.05 - 1e-9) & (out.price <= 0.30 + 1e-9))
    bal = (fleet.eta * out.der_kwh + out.discharge_kwh - out.charge_kwh).sum(1) + out.import_kwh - out.export_kwh
    flex = np.isfinite(fleet.shed_values)
    np.testing.assert_allclose(bal, fleet.demand_kw[:, ~flex].sum(1) + out.served_kwh[:, flex].sum(1), atol=1e-6)


def test_every_highs_instance_is_single_threaded():
    """HiGHS's thread scheduler is process-global: an instance asking for another thread count than
    the first run used fails with status "Not Set" (it broke DLMP solves after a 2-thread QP)."""
    from p2penv.network.highs import new_highs

    assert new_highs().getOptionValue("threads")[1] == 1


def _battery_next_to_a_load(soc0=6.0):
    """Night 0.10, evening 0.30, night 0.12 $/kWh (feed-in 0); a 10 kWh battery, 4 kW both ways,
    80 % one-way efficiencies (0.8 x 0.8 = 64 % round trip), 0.01 $/kWh throughput, SOC_0 = 6 kWh,
    next to a fixed 5 kW load (so every kWh it discharges displaces an import at retail)."""
    z = np.zeros((3, 2))
    demand = z.copy()
    demand[:, 1] = 5.0
    st = Storage(np.array([10.0, 0.0]), np.array([4.0, 0.0]), np.array([4.0, 0.0]), np.array([0.8, 1.0]),
                 np.array([0.8, 1.0]), np.zeros(2), np.array([10.0, 0.0]), np.array([soc0, 0.0]),
                 np.array([0.01, 0.0]))
    return Fleet(demand, z, np.full(2, np.inf), np.ones(2), np.full(2, 0.01), np.zeros(2), np.zeros(2),
                 np.arange(1, 3), ("battery", "load"), None, st)


PRICES_3 = np.array([0.10, 0.30, 0.12])
NO_BATTERY_3 = -float(PRICES_3.sum()) * 5.0  # the load imports everything at retail


def test_free_end_sells_the_battery_empty_when_it_pays():
    """soc_end=None. Step 1 (0.30) is power-limited: 4 kWh out takes 4 / 0.8 = 5 kWh of SOC, which SOC_0 = 6
    already holds, so charging at 0.10 buys nothing there (0.8 x 0.8 x (0.12 - 0.01) = 0.0704 < 0.11 to
    resell at step 2). The last 1 kWh of SOC is worth 0.8 x (0.12 - 0.01) > 0 at step 2, so it is sold:
    the battery ends empty. Profit 0.30 x 4 + 0.12 x 0.8 - 0.01 x 4.8 = 1.248 $."""
    out = competitive_horizon(_battery_next_to_a_load(), 1.0, PRICES_3, 0.0)
    np.testing.assert_allclose(out.charge_kwh[:, 0], [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out.discharge_kwh[:, 0], [0.0, 4.0, 0.8], atol=1e-6)
    np.testing.assert_allclose(out.soc_kwh[:, 0], [6.0, 6.0, 1.0, 0.0], atol=1e-6)
    assert out.welfare - NO_BATTERY_3 == pytest.approx(1.248, abs=1e-6)
    np.testing.assert_allclose(out.price, PRICES_3, atol=1e-9)


def test_soc_end_start_refills_the_battery_where_it_is_cheapest():
    """soc_end="start": SOC_3 = 6. A kWh of SOC costs (0.10 + 0.01) / 0.8 = 0.1375 $ at step 0 and
    (0.12 + 0.01) / 0.8 = 0.1625 $ at step 2, and is worth 0.8 x (0.30 - 0.01) = 0.232 $ at step 1: charge
    4 kWh (the power limit) at step 0 (SOC 9.2), discharge 4 kWh at step 1 (SOC 4.2), refill 1.8 kWh of
    SOC = 2.25 kWh at step 2. Profit 1.2 - 0.4 - 0.27 - 0.01 x 10.25 = 0.4275 $."""
    out = competitive_horizon(_battery_next_to_a_load(), 1.0, PRICES_3, 0.0, soc_end="start")
    np.testing.assert_allclose(out.charge_kwh[:, 0], [4.0, 0.0, 2.25], atol=1e-6)
    np.testing.assert_allclose(out.discharge_kwh[:, 0], [0.0, 4.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out.soc_kwh[:, 0], [6.0, 9.2, 4.2, 6.0], atol=1e-6)
    assert out.welfare - NO_BATTERY_3 == pytest.approx(0.4275, abs=1e-6)


def test_soc_end_array_binds_the_evening_discharge():
    """soc_end = [8, 0] kWh: both charging steps at their 4 kW limit add 3.2 kWh of SOC each, so the
    evening may only take 6 + 6.4 - 8 = 4.4 kWh of SOC, i.e. 3.52 kWh delivered.
    Profit 0.30 x 3.52 - 0.10 x 4 - 0.12 x 4 - 0.01 x 11.52 = 0.0608 $."""
    out = competitive_horizon(_battery_next_to_a_load(), 1.0, PRICES_3, 0.0, soc_end=np.array([8.0, 0.0]))
    np.testing.assert_allclose(out.charge_kwh[:, 0], [4.0, 0.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(out.discharge_kwh[:, 0], [0.0, 3.52, 0.0], atol=1e-6)
    np.testing.assert_allclose(out.soc_kwh[:, 0], [6.0, 9.2, 4.8, 8.0], atol=1e-6)
    assert out.welfare - NO_BATTERY_3 == pytest.approx(0.0608, abs=1e-6)


@pytest.mark.parametrize("soc_end, msg", [
    ("end", r"soc_end: expected None, 'start' or an \(N,\) array"),
    (np.array([1.0]), r"soc_end: expected shape \(2,\) kWh"),
    (np.array([11.0, 0.0]), r"agent 'battery': soc_end 11.0 kWh must lie in \[soc_min_kwh, soc_max_kwh\]"),
    (np.array([10.0, 0.0]), r"agent 'battery': soc_end 10.0 kWh .* reachable from soc0_kwh 0.0 in 3 steps"),
])
def test_soc_end_errors_name_the_agent(soc_end, msg):
    """(10 kWh from SOC_0 = 0 needs 10 / 3.2 > 3 full charging steps.)"""
    with pytest.raises(ValueError, match=msg):
        competitive_horizon(_battery_next_to_a_load(soc0=0.0), 1.0, PRICES_3, 0.0, soc_end=soc_end)
