"""Exact DLMP best response (bilevel -> MILP): hand-computed optima on teaching4 and dense-grid checks.

Grid checks re-clear the market with ``DlmpMarket.clear`` at every grid price. Between grid points
the profit moves by at most Q x (grid step) $ when the agent's dispatch is pinned, so the MILP must
satisfy grid_max - 1e-6 <= profit <= grid_max + Q * step + 1e-6 (Q kWh, step $/kWh).
"""
import dataclasses

import numpy as np
import pytest

from p2penv.diagnostics.dlmp_best_response import (
    PiecewiseLinear,
    dlmp_best_response,
    evaluate_offer,
    grid_best_response,
)
from p2penv.network import LossModel, loss_model_at, teaching4
from p2penv.network.dlmp import DlmpMarket

LAM = 0.10  # $/kWh at the substation
GRID = np.linspace(0.0, 0.4, 801)  # step 0.0005 $/kWh
STEP = GRID[1] - GRID[0]
LINE_150 = [np.inf, np.hypot(150.0, 100.0), np.inf]  # line 1->2: P <= 150 kW with its 100 kvar


def _market(buses, *, line=None, lossless=False, **kw):
    f = teaching4() if line is None else dataclasses.replace(teaching4(), line_limit_kva=line)
    lm = LossModel.lossless(f) if lossless else loss_model_at(f, use_voltages=False)  # MLF_2 = 1.014
    return f, DlmpMarket(f, buses, loss_model=lm, **kw)


def _check_against_grid(m, f, agent, book, q, **kw):
    r = dlmp_best_response(m, agent, *book, LAM, f.p_load_kw, f.q_load_kvar, **kw)
    g = grid_best_response(m, agent, *book, LAM, f.p_load_kw, f.q_load_kvar, grid=GRID, **kw)
    assert r.profit >= g.best_profit - 1e-6
    assert r.profit <= g.best_profit + q * STEP + 1e-6
    assert r.achievable_profit == pytest.approx(r.profit, abs=q * r.delta + 1e-6)
    assert r.status == "Optimal" and r.polished and r.box_ok
    return r, g


def test_congested_line_seller_by_hand():
    # Seller (Q = 80 kWh, cost 0.05 $/kWh) and a rival ask (0.25, 30 kWh), both at bus 2; line 1->2
    # carries <= 150 of the 200 kW load, so >= 50 kW must come from bus 2. Offer p:
    #   p < 0.1014 (= 0.1 x MLF_2): sells 80 at 0.1014 -> 4.112 $;  0.1014 < p < 0.25: marginal,
    #   sells 50 at DLMP_2 = p -> (p - 0.05) 50, sup 10 at p = 0.25;  p > 0.25: the rival sells 30
    #   first, 20 left at p <= 0.4 -> 7. Best: p = 0.25, profit 10 $, DLMP_2 = 0.25, 50 kWh.
    f, m = _market([2, 2], line=LINE_150)
    book = ([0.1, 0.25], [80.0, 30.0], [1, 1])
    r, g = _check_against_grid(m, f, 0, book, 80.0, true_cost=PiecewiseLinear.linear(0.05, 80.0))
    assert r.price == pytest.approx(0.25, abs=1e-9)
    assert r.profit == pytest.approx(10.0, abs=1e-7)
    assert r.dlmp == pytest.approx(0.25, abs=1e-9) and r.matched_kwh == pytest.approx(50.0, abs=1e-7)
    assert g.best_profit == pytest.approx(10.0, abs=80 * STEP)  # (0.2495 - 0.05) 50 = 9.975 at worst


def test_import_limit_without_line_limit_by_hand():
    # Lossless, no line rating, import <= 250 kW against 300 kW of load: 50 kW must be local.
    # Seller at bus 2 (80 kWh, cost 0.05), rival ask at bus 3 (0.15, 100 kWh). p < 0.1: sells 80 at
    # 0.1 -> 4 $; 0.1 < p < 0.15: marginal for 50 kW at DLMP = p, sup (0.15 - 0.05) 50 = 5 $ at 0.15;
    # p > 0.15: the rival covers the 50 kW. Best: p = 0.15, profit 5 $.
    f, m = _market([2, 3], lossless=True, import_limit_kw=250.0)
    book = ([0.1, 0.15], [80.0, 100.0], [1, 1])
    r, g = _check_against_grid(m, f, 0, book, 80.0, true_cost=PiecewiseLinear.linear(0.05, 80.0))
    assert r.price == pytest.approx(0.15, abs=1e-9)
    assert r.profit == pytest.approx(5.0, abs=1e-7)
    assert r.dlmp == pytest.approx(0.15, abs=1e-9) and r.matched_kwh == pytest.approx(50.0, abs=1e-7)


def test_strategic_buyer_behind_congested_line_by_hand():
    # Buyer at bus 2 (40 kWh, value 0.35 $/kWh); asks at bus 2: A (0.12, 60 kWh), B (0.30, 50 kWh).
    # Line 1->2 forces >= 50 + x_b kW local. Bid p < 0.12: unmatched (0 $); 0.12 < p < 0.30: A's
    # spare 10 kWh, buyer marginal so DLMP_2 = p -> (0.35 - p) 10, sup 2.3 $ as p -> 0.12;
    # p > 0.30: all 40 kWh, B marginal at 0.30 -> (0.35 - 0.30) 40 = 2 $. Best 2.3 $ at p = 0.12.
    f, m = _market([2, 2, 2], line=LINE_150)
    book = ([0.3, 0.12, 0.30], [40.0, 60.0, 50.0], [-1, 1, 1])
    r, g = _check_against_grid(m, f, 0, book, 40.0, true_value=PiecewiseLinear.linear(0.35, 40.0))
    assert r.price == pytest.approx(0.12, abs=1e-9)
    assert r.profit == pytest.approx(2.3, abs=1e-7)
    assert r.matched_kwh == pytest.approx(10.0, abs=1e-7) and r.dlmp == pytest.approx(0.12, abs=1e-9)


def test_piecewise_quadratic_cost_congested_case_by_hand():
    # Same book as the congested-seller test with C(E) = 0.001 E^2 + 0.05 E (secant, 8 segments:
    # breakpoints every 10 kWh, so C is exact at 20, 50, 80). p = 0.25 sells 50: 12.5 - 5 = 7.5 $;
    # p = 0.4 sells 20: 8 - 1.4 = 6.6 $; p <= 0.1014 sells 80: 8.112 - 10.4 < 0. Best 7.5 $.
    f, m = _market([2, 2], line=LINE_150)
    book = ([0.1, 0.25], [80.0, 30.0], [1, 1])
    cost = PiecewiseLinear.quadratic(0.001, 0.05, 80.0, 8)
    r, _ = _check_against_grid(m, f, 0, book, 80.0, true_cost=cost)
    assert r.price == pytest.approx(0.25, abs=1e-9) and r.profit == pytest.approx(7.5, abs=1e-7)


@pytest.mark.parametrize("seed", range(8))
def test_random_books_linear_costs_match_dense_grid(seed):
    rng = np.random.default_rng(seed)
    line = [np.inf, np.hypot(rng.choice([150.0, 180.0, np.inf]), 100.0), np.inf]
    buses = rng.integers(1, 4, 4)
    f, m = _market(buses, line=line, lossless=bool(seed % 2), import_limit_kw=rng.choice([np.inf, 250.0]))
    prices, q, s = rng.uniform(0.05, 0.35, 4), rng.uniform(10, 80, 4), np.array([1, -1, 1, -1])
    s[0] = 1 if seed < 4 else -1
    kw = ({"true_cost": PiecewiseLinear.linear(rng.uniform(0.0, 0.2), q[0])} if s[0] == 1
          else {"true_value": PiecewiseLinear.linear(rng.uniform(0.1, 0.4), q[0])})
    r, _ = _check_against_grid(m, f, 0, (prices, q, s), q[0], **kw)
    # the reported price really earns the reported profit (one-sided limit at ties)
    near = [evaluate_offer(m, 0, r.price + d, prices, q, s, LAM, f.p_load_kw, f.q_load_kvar, **kw)[0]
            for d in (-1e-7, 0.0, 1e-7)]
    assert max(near) == pytest.approx(r.profit, abs=q[0] * 1e-7 + 1e-6)


def test_optimistic_tie_with_convex_cost_is_flagged():
    # No limits, lossless: DLMP = 0.1 everywhere whatever the offer. Seller 80 kWh, convex cost with
    # slopes 0.05 on [0, 40] and 0.15 on [40, 80] kWh. Price-only: p < 0.1 sells 80 -> 8 - 8 = 0 $;
    # p > 0.1 sells nothing (0 $). At p = 0.1 the LP is indifferent about the dispatch in [0, 80]
    # and the optimistic bilevel value picks 40 kWh: 4 - 2 = 2 $, which no price alone achieves.
    f, m = _market([2, 3], lossless=True)
    cost = PiecewiseLinear((0.0, 40.0, 80.0), (0.0, 2.0, 8.0))
    r = dlmp_best_response(m, 0, [0.1, 0.2], [80.0, 10.0], [1, -1], LAM, f.p_load_kw, f.q_load_kvar,
                           true_cost=cost)
    assert r.price == pytest.approx(0.1, abs=1e-9) and r.profit == pytest.approx(2.0, abs=1e-7)
    assert r.matched_kwh == pytest.approx(40.0, abs=1e-7)
    assert r.achievable_profit == pytest.approx(0.0, abs=80 * 1e-7 + 1e-9)


def test_piecewise_linear_helpers():
    c = PiecewiseLinear.quadratic(0.001, 0.05, 80.0, 8)
    e = np.linspace(0, 80, 8001)
    err = c(e) - (0.001 * e**2 + 0.05 * e)
    # secant error of a E^2 with segment h = 10 kWh peaks at a h^2 / 4 = 0.025 $ mid-segment
    assert err.min() >= -1e-12 and err.max() == pytest.approx(0.025, rel=1e-9)
    assert c.curvature() == 1 and PiecewiseLinear.linear(0.1, 5).curvature() == 0
    assert PiecewiseLinear((0, 1, 2), (0, 1, 1.5)).curvature() == -1


def test_input_validation_names_the_field():
    f, m = _market([2, 3])
    args = ([0.1, 0.2], [80.0, 10.0], [1, -1], LAM, f.p_load_kw, f.q_load_kvar)
    lin = PiecewiseLinear.linear(0.05, 80.0)
    with pytest.raises(ValueError, match="true_cost"):
        dlmp_best_response(m, 0, *args, true_value=lin)
    with pytest.raises(ValueError, match="true_value"):
        dlmp_best_response(m, 1, *args, true_cost=lin)
    with pytest.raises(ValueError, match="true_cost: must be convex"):
        dlmp_best_response(m, 0, *args, true_cost=PiecewiseLinear((0, 1, 2), (0, 1, 1.5)))
    with pytest.raises(ValueError, match="price_bounds"):
        dlmp_best_response(m, 0, *args, true_cost=lin, price_bounds=(0.4, 0.0))
    with pytest.raises(ValueError, match="agent"):
        dlmp_best_response(m, 0, [0.1, 0.2], [80.0, 10.0], [0, -1], *args[3:], true_cost=lin)
    with pytest.raises(ValueError, match="breakpoints_kwh"):
        PiecewiseLinear((0, 2, 1), (0, 1, 2))
