"""Spec item S1 (docs/spec.md): welfare maximisation, lambda = the balance multiplier, KKT, transactive claim."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from p2penv.market.competitive import competitive_equilibrium, consumer_response, price_taker_response


def test_spec_s1_closed_form_two_producers_one_consumer():
    # C1 = 0.5 E^2 + E, C2 = E^2 + 2E, U = 10 d - 0.5 d^2, no limits binding.
    # KKT: E1 = lambda - 1, E2 = (lambda - 2)/2, d = 10 - lambda; balance -> 2.5 lambda = 12 -> 4.8
    o = competitive_equilibrium([0.5, 1.0], [1.0, 2.0], 0.0, 100.0, util_v=[10.0], util_w=[0.5])
    assert o.price == pytest.approx(4.8)
    np.testing.assert_allclose(o.energy_kwh, [3.8, 1.4])
    np.testing.assert_allclose(o.consumption_kwh, [5.2])
    # welfare = U(5.2) - C1(3.8) - C2(1.4) = 38.48 - 11.02 - 4.76
    assert o.welfare == pytest.approx(22.7)
    # KKT: every interior unit's marginal cost / utility equals lambda
    np.testing.assert_allclose(2 * np.array([0.5, 1.0]) * o.energy_kwh + [1.0, 2.0], 4.8)
    assert 10.0 - 2 * 0.5 * o.consumption_kwh[0] == pytest.approx(4.8)


def test_binding_capacity_unit_is_not_marginal():
    # E1 capped at 2: lambda solves 2 + (lambda-2)/2 = 10 - lambda -> lambda = 6
    o = competitive_equilibrium([0.5, 1.0], [1.0, 2.0], 0.0, [2.0, 100.0], util_v=[10.0], util_w=[0.5])
    assert o.price == pytest.approx(6.0)
    assert o.energy_kwh[0] == 2.0 and 2 * 0.5 * 2.0 + 1.0 < o.price  # at limit, MC < lambda


def test_grid_backstop_bounds_the_price():
    # 10 kWh fixed demand, one unit E <= 4 with MC 0.02 E (0.08 at the cap): lambda = retail, import 6
    o = competitive_equilibrium([0.01], [0.0], 0.0, 4.0, fixed_demand_kwh=10.0, retail_price=0.3, feed_in_price=0.05)
    assert o.price == 0.3 and o.grid_import_kwh == pytest.approx(6.0)
    # MC 0.2 E: at the retail price the unit stops at E = 1.5 kWh and 8.5 kWh are imported
    o = competitive_equilibrium([0.1], [0.0], 0.0, 4.0, fixed_demand_kwh=10.0, retail_price=0.3, feed_in_price=0.05)
    assert o.energy_kwh[0] == pytest.approx(1.5) and o.grid_import_kwh == pytest.approx(8.5)
    # surplus PV at zero cost: exports at feed-in, lambda = feed-in
    o = competitive_equilibrium([0.001], [0.0], 0.0, 50.0, fixed_demand_kwh=10.0, retail_price=0.3, feed_in_price=0.05)
    assert o.price == 0.05 and o.energy_kwh[0] == pytest.approx(25.0) and o.grid_export_kwh == pytest.approx(15.0)


def test_isolated_market_that_cannot_balance_raises():
    with pytest.raises(ValueError, match="cannot balance"):
        competitive_equilibrium([0.1], [0.0], 0.0, 4.0, fixed_demand_kwh=10.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 10_000))
def test_transactive_price_takers_reproduce_the_central_optimum(n, m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.1, 1, n), rng.uniform(0, 2, n)
    hi = rng.uniform(1, 6, n)
    eta = rng.uniform(0.8, 1.0, n)
    v, w = rng.uniform(3, 10, m), rng.uniform(0.2, 1, m)
    dhi = rng.uniform(2, 8, m)
    o = competitive_equilibrium(a, b, 0.0, hi, eta, util_v=v, util_w=w, d_lo=0.0, d_hi=dhi, retail_price=9.0, feed_in_price=0.5)
    # decentralised: broadcast lambda, everyone optimises alone
    np.testing.assert_allclose(price_taker_response(o.price, a, b, 0.0, hi, eta), o.energy_kwh)
    np.testing.assert_allclose(consumer_response(o.price, v, w, 0.0, dhi), o.consumption_kwh)
    # central optimum by a generic NLP solver agrees on welfare
    def neg_welfare(x):
        e, d, imp, exp = x[:n], x[n:n + m], x[-2], x[-1]
        return ((a * e + b) * e).sum() - ((v - w * d) * d).sum() + 9.0 * imp - 0.5 * exp
    cons = {"type": "eq", "fun": lambda x: (eta * x[:n]).sum() - x[n:n + m].sum() + x[-2] - x[-1]}
    bounds = [(0, h) for h in hi] + [(0, h) for h in dhi] + [(0, None), (0, None)]
    x0 = np.concatenate([o.energy_kwh, o.consumption_kwh, [o.grid_import_kwh, o.grid_export_kwh]])
    res = minimize(neg_welfare, np.zeros_like(x0) + 0.1, bounds=bounds, constraints=[cons], method="SLSQP",
                   options={"ftol": 1e-12, "maxiter": 500})
    assert -res.fun <= o.welfare + 1e-6
    assert -res.fun >= o.welfare - 1e-4 * (1 + abs(o.welfare))


def test_flexible_loads_are_steps_in_the_demand_curve():
    # supply E = lambda / (2a); loads 2 kWh at 0.5, 2 at 0.3, 2 at 0.1 $/kWh (isolated market)
    # a = 0.1: E = 5 lambda; serving only the 0.5-load needs lambda = 0.4 in (0.3, 0.5) -> lambda 0.4
    o = competitive_equilibrium([0.1], [0.0], 0.0, 100.0, flex_kwh=[2, 2, 2], flex_value=[0.5, 0.3, 0.1])
    assert o.price == pytest.approx(0.4)
    np.testing.assert_allclose(o.flex_served_kwh, [2, 0, 0])
    # a = 0.5: E = lambda never reaches 2 below 0.5, so the 0.5-load is rationed at lambda = 0.5
    o = competitive_equilibrium([0.5], [0.0], 0.0, 100.0, flex_kwh=[2, 2, 2], flex_value=[0.5, 0.3, 0.1])
    assert o.price == 0.5 and o.energy_kwh[0] == pytest.approx(0.5)
    np.testing.assert_allclose(o.flex_served_kwh, [0.5, 0, 0])
    assert o.welfare == pytest.approx(0.5 * 0.5 - 0.5 * 0.25)  # value 0.25 - cost 0.125
    # with a grid backstop a load whose value is below the price is shed, not imported
    o = competitive_equilibrium([1.0], [0.0], 0.0, 100.0, flex_kwh=[2, 2], flex_value=[0.25, 0.1],
                                retail_price=0.3, feed_in_price=0.05)
    # E = lambda / 2: at 0.25 only 0.125 kWh -> the 0.25-load is rationed there, the 0.1-load shed
    assert o.price == 0.25 and o.grid_import_kwh == 0.0
    np.testing.assert_allclose(o.flex_served_kwh, [0.125, 0.0])
