"""Spec item S2 (docs/spec.md): q = eta p - d, 0 <= p <= P_max, |p_t - p_{t-1}| <= R, with hand-checked numbers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penv.market.prosumer import Fleet, Prosumer, energy_cost, feasible_interval, marginal_cost, net_position_kw


def test_spec_s2_net_position_signs():
    # a 0.95-efficient 4 kW dispatch against 1.5 kW demand sells 2.3 kW; 1 kW against 3 kW buys 2.05 kW
    q = net_position_kw(np.array([4.0, 1.0]), np.array([1.5, 3.0]), np.array([0.95, 0.95]))
    np.testing.assert_allclose(q, [2.3, -2.05])
    # pure consumer (no DER) buys its demand; pure producer (no demand) sells eta p
    np.testing.assert_allclose(net_position_kw(np.array([0.0, 5.0]), np.array([2.0, 0.0]), np.array([1.0, 0.9])), [-2.0, 4.5])


def test_spec_s2_feasible_interval_capacity_and_ramp():
    # p_prev = 3, R = 1, P_max = 5 -> [2, 4]; P_max = 3.5 -> [2, 3.5]; p_prev = 0.5 -> [0, 1.5]
    lo, hi, viol = feasible_interval(np.array([3.0, 3.0, 0.5]), np.array([5.0, 3.5, 5.0]), np.array([1.0, 1.0, 1.0]))
    np.testing.assert_allclose(lo, [2.0, 2.0, 0.0])
    np.testing.assert_allclose(hi, [4.0, 3.5, 1.5])
    np.testing.assert_array_equal(viol, [0.0, 0.0, 0.0])


def test_availability_below_ramp_floor_wins_and_is_reported():
    # PV at 4 kW, ramp 1 kW/step, a cloud drops availability to 1.2 kW: dispatch must be 1.2
    lo, hi, viol = feasible_interval(np.array([4.0]), np.array([1.2]), np.array([1.0]))
    assert lo[0] == hi[0] == 1.2
    assert viol[0] == pytest.approx(1.8)  # ramp floor 3.0 - 1.2


def test_cost_is_strictly_convex_quadratic():
    # C(E) = a E^2 + b E with a = 0.01, b = 0.1, p = 3 kW over 2 h -> E = 6 kWh, C = 0.36 + 0.6
    assert energy_cost(np.array(3.0), 0.01, 0.1, 2.0) == pytest.approx(0.96)
    assert marginal_cost(np.array(3.0), 0.01, 0.1, 2.0) == pytest.approx(0.22)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 10), st.floats(0, 10), st.floats(0.01, 5),
)
def test_interval_always_inside_capacity(p_prev, p_max, ramp):
    lo, hi, viol = feasible_interval(np.array([p_prev]), np.array([p_max]), np.array([ramp]))
    assert 0 <= lo[0] <= hi[0] <= p_max
    # ramp holds unless availability forced a violation, which is then exactly reported
    assert abs(hi[0] - p_prev) <= ramp + 1e-12 or hi[0] == p_max
    assert lo[0] >= p_prev - ramp - viol[0] - 1e-12


def test_fleet_validation_names_prosumer_and_field():
    good = dict(demand_kw=np.ones(3), p_max_kw=2.0, ramp_kw=1.0)
    Fleet.from_prosumers([Prosumer(**good), Prosumer(**good)], 3)
    with pytest.raises(ValueError, match="'bad'.*eta"):
        Fleet.from_prosumers([Prosumer(**good), Prosumer(**good, eta=1.5, name="bad")], 3)
    with pytest.raises(ValueError, match="prosumer_1.*cost_a"):
        Fleet.from_prosumers([Prosumer(**good), Prosumer(**good, cost_a=0.0)], 3)
    with pytest.raises(ValueError, match="demand_kw has shape"):
        Fleet.from_prosumers([Prosumer(**good)], 4)
