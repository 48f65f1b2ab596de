"""Feeder equilibria of the DLMP stage game: iterated exact best response, coalitions, misreports.

Hand cases on teaching4 (lossless LP; line 1 -> 2 carries <= 150 kW with its 100 kvar, 200 kW of
fixed load at bus 2, so >= 50 kW must come from bus 2). Two strategic sellers at bus 2: A (30 kWh,
cost 0.05 $/kWh) and B (30 kWh, cost 0.06). Truthful, both sell 30 at DLMP_2 = lambda_0 = 0.10 (the
line carries 140 kW): profits 1.5 and 1.2 $.
"""
import dataclasses

import numpy as np
import pytest

from p2penv import dlmp_v0
from p2penv.diagnostics.dlmp_best_response import PiecewiseLinear as PL
from p2penv.diagnostics.dlmp_best_response import dlmp_best_response
from p2penv.diagnostics.feeder_equilibrium import (
    FeederBook,
    book_profits,
    coalition_best_response,
    demand_misreport,
    env_feeder_book,
    env_feeder_ibr,
    feeder_iterated_best_response,
)
from p2penv.diagnostics.local_market_power import local_market_power
from p2penv.generators.feeders import FEEDER_SETTINGS
from p2penv.network import LossModel, loss_model_at, teaching4
from p2penv.network.dlmp import DlmpMarket

DELTA = 1e-7
LINE_150 = [np.inf, np.hypot(150.0, 100.0), np.inf]


def _teaching4(prices, q, sides, fns):
    f = dataclasses.replace(teaching4(), line_limit_kva=LINE_150)
    m = DlmpMarket(f, [2] * len(prices), loss_model=LossModel.lossless(f))
    return f, m, FeederBook(prices, q, sides, 0.10, f.p_load_kw, f.q_load_kvar, fns)


def _check_equilibrium(m, book, r, truthful):
    assert r.converged
    assert r.nash_conv < 1e-6
    # the supremum gap: the tie side is approached to within delta $/kWh
    assert r.nash_conv_sup <= DELTA * book.quantities[r.strategic].sum() + 1e-9
    assert np.all(r.profits >= truthful[r.strategic] - 1e-9)


def test_nash_price_is_next_cheapest_supply_by_hand():
    # Rival ask R (30 kWh at 0.25, non-strategic) at bus 2. A raising its price above 0.10 makes the
    # line bind: B 30 + A 20 = 50 kW local, A marginal at DLMP_2 = p_A up to R's 0.25:
    # (0.25 - 0.05) 20 = 4 $ > 1.5. B, inframarginal, sells 30 at 0.25: 5.7 $ and has nothing better
    # (above 0.25, R sells first and B nothing). IBR: A -> 0.25 (- delta), B stays: 2 sweeps.
    f, m, book = _teaching4([0.05, 0.06, 0.25], [30.0, 30.0, 30.0], [1, 1, 1],
                            (PL.linear(0.05, 30.0), PL.linear(0.06, 30.0), None))
    truthful, lp0 = book_profits(m, book)
    assert truthful[:2] == pytest.approx([1.5, 1.2], abs=1e-9) and lp0.dlmp[2] == pytest.approx(0.10)
    r = feeder_iterated_best_response(m, book, [0, 1], delta=DELTA)
    _check_equilibrium(m, book, r, truthful)
    assert r.profile == pytest.approx([0.25, 0.06], abs=2 * DELTA)
    assert r.profits == pytest.approx([4.0, 5.7], abs=30 * DELTA + 1e-9)
    assert r.clearing.dlmp[2] == pytest.approx(0.25, abs=2 * DELTA)
    assert r.clearing.matched[:3] == pytest.approx([20.0, 30.0, 0.0], abs=1e-6)
    assert r.iterations == 2 and r.history.shape == (3, 2)


def test_nash_price_is_buyer_value_by_hand():
    # Buyer D (9 kWh, value 0.30) at bus 2 instead of R. A at p in (0.10, 0.30]: local need 59, A sells
    # 29 at p -> 0.25 x 29 = 7.25 $; above 0.30 D drops out, A sells 20 at <= 0.40 -> 7 $. So A -> 0.30,
    # the buyer's value sets DLMP_2; B sells 30 at 0.30: 7.2 $.
    f, m, book = _teaching4([0.05, 0.06, 0.30], [30.0, 30.0, 9.0], [1, 1, -1],
                            (PL.linear(0.05, 30.0), PL.linear(0.06, 30.0), None))
    truthful, _ = book_profits(m, book)
    r = feeder_iterated_best_response(m, book, [0, 1], delta=DELTA)
    _check_equilibrium(m, book, r, truthful)
    assert r.profile == pytest.approx([0.30, 0.06], abs=2 * DELTA)
    assert r.profits == pytest.approx([7.25, 7.2], abs=30 * DELTA + 1e-9)
    assert r.clearing.dlmp[2] == pytest.approx(0.30, abs=2 * DELTA)
    # zonal indices behind the binding line: demand 209 kW, import 150, sellers 29 + 30
    lmp = local_market_power(r.clearing, f, [2, 2, 2], [30.0, 30.0, 0.0], competitive_dlmp=book_profits(m, book)[1].dlmp)
    z = lmp.zones[0]
    assert z.kind == "line" and z.index == 1 and z.pivotal.all()
    assert z.rsi == pytest.approx([180 / 209, 180 / 209], abs=1e-6)
    assert z.markup == pytest.approx(0.20, abs=1e-6)

    # Coalition: both at the cap 0.40 price D out; 50 kW local: A 30 at 0.40 (10.5 $) + B 20 (6.8 $)
    # = 17.3 $ > 14.45 $ at the Nash profile.
    c = coalition_best_response(m, book, [0, 1], r.prices, delta=DELTA)
    assert c.profit == pytest.approx(17.3, abs=1e-6)
    assert c.prices == pytest.approx([0.40, 0.40], abs=1e-9)
    assert c.recleared_profit == pytest.approx(17.3, abs=60 * DELTA)
    assert c.recleared_profit - r.profits.sum() == pytest.approx(2.85, abs=1e-4)


def test_coalition_of_one_is_the_single_agent_best_response():
    f, m, book = _teaching4([0.05, 0.06, 0.30, 0.2], [30.0, 30.0, 9.0, 20.0], [1, 1, -1, 1],
                            (PL.linear(0.05, 30.0), PL.quadratic(0.001, 0.04, 30.0, 6), None, None))
    for i in (0, 1):
        c = coalition_best_response(m, book, [i])
        br = dlmp_best_response(m, i, book.prices, book.quantities, book.sides, 0.10, f.p_load_kw, f.q_load_kvar,
                                **book.fn_kwargs(i))
        assert c.profit == pytest.approx(br.profit, abs=1e-7)


def test_seller_withholding_by_hand():
    # Next-cheapest case, A declares Q' instead of 30 at its truthful price: for Q' < 20 the line
    # binds with R marginal at 0.25: 0.20 Q' $; Q' > 20: no congestion, 0.05 Q'. Best on the grid: 19.
    f, m, book = _teaching4([0.05, 0.06, 0.25], [30.0, 30.0, 30.0], [1, 1, 1],
                            (PL.linear(0.05, 30.0), PL.linear(0.06, 30.0), None))
    r = demand_misreport(m, book, 0, [0.0, 10.0, 19.0, 25.0, 30.0, 35.0], beyond_price=0.30)
    assert r.best_declared_kwh == 19.0 and r.best_gain == pytest.approx(0.2 * 19 - 1.5, abs=1e-7)
    assert r.dlmp[2] == pytest.approx(0.25) and r.dlmp[4] == pytest.approx(0.10)
    # declaring more than it has: sells 35, buys 5 back at 0.30: 35 x 0.10 - (1.5 + 1.5) = 0.5 $
    assert r.profits[-1] == pytest.approx(0.5, abs=1e-7)


def _ieee33(scenario):
    f = FEEDER_SETTINGS[scenario].build_feeder()
    buses = [12, 14, 15, 17, 20, 24]
    m = DlmpMarket(f, buses, loss_model=loss_model_at(f, use_voltages=False))
    p, q = [0.04, 0.05, 0.06, 0.30, 0.07, 0.25], [3.0, 3.0, 2.0, 10.0, 6.0, 5.0]
    fns = tuple(PL.linear(x, y) for x, y in zip(p, q))
    return f, m, buses, FeederBook(p, q, [1, 1, 1, -1, 1, -1], 0.10, f.p_load_kw, f.q_load_kvar, fns)


def test_ieee33_congested_three_sellers_behind_line_5():
    # 3.5 kW of headroom on line 5: the zone's 8 kWh of supply against the 10 kWh bid leaves 2 kW of
    # import truthfully; one seller withholding makes the line bind and the bus-17 bid (0.30) price it.
    f, m, buses, book = _ieee33("ieee33-congested")
    truthful, lp0 = book_profits(m, book)
    r = feeder_iterated_best_response(m, book, [0, 1, 2], delta=DELTA)
    _check_equilibrium(m, book, r, truthful)
    assert r.profits.sum() > truthful[:3].sum() + 1.0
    lmp = local_market_power(r.clearing, f, buses, np.where(book.sides > 0, book.quantities, 0.0),
                             competitive_dlmp=lp0.dlmp)
    z = lmp.zones[0]
    assert z.kind == "line" and z.index == 5 and z.pivotal.sum() == 3
    assert z.markup > 0.15
    # the same book on the unconstrained feeder: truthful is already a Nash equilibrium
    fb, mb, _, bb = _ieee33("ieee33-base")
    rb = feeder_iterated_best_response(mb, bb, [0, 1, 2], delta=DELTA)
    assert rb.converged and rb.iterations == 1 and rb.nash_conv < 1e-6
    assert rb.profile == pytest.approx([0.04, 0.05, 0.06])


def test_live_env_book_and_ibr():
    env = dlmp_v0.parallel_env(scenario="ieee33-congested")
    env.reset(seed=0)
    acts = {a: np.array([-0.2, 0.6], dtype=np.float32) for a in env.agents}
    book, buses = env_feeder_book(env, acts)
    assert np.array_equal(buses, env.buses) and book.price_bounds == (env.rules.price_floor, env.rules.price_cap)
    sellers = [i for i in range(book.n) if book.sides[i] == 1][:2]
    assert len(sellers) == 2
    # true fns from the env's settlement: under the backstop an unmatched sale earns the feed-in tariff
    # and an unmatched buy costs retail (a flexible load sheds it at its lower shed value), so matched
    # energy costs (is worth) exactly that per kWh
    assert env.rules.unmatched == "backstop"
    shed = env.ctx.shed_value if env.ctx.shed_value is not None else np.full(book.n, np.inf)
    for i in range(book.n):
        f = book.true_fns[i]
        if book.sides[i] == 0:
            assert f is None
        else:
            tariff = env.rules.feed_in_tariff if book.sides[i] == 1 else min(env.rules.retail_tariff, shed[i])
            assert f.slopes == pytest.approx(tariff, abs=1e-9) and f(0.0) == pytest.approx(0.0, abs=1e-9)
    _, _, _, _, infos = env.step(acts)
    assert np.allclose(book.quantities, [infos[a]["order_kwh"] for a in env.agents])
    assert np.allclose(book.prices, [infos[a]["bid_price"] for a in env.agents])
    env.reset(seed=0)
    r = env_feeder_ibr(env, acts, [env.agents[i] for i in sellers], max_iter=4, delta=DELTA)
    assert r.nash_conv >= 0 and r.profile.shape == (2,)
    assert np.all(r.profits >= book_profits(env.market, book)[0][sellers] - 1e-9)


def test_input_validation_names_the_field():
    f, m, book = _teaching4([0.05, 0.06, 0.25], [30.0, 30.0, 30.0], [1, 1, 1],
                            (PL.linear(0.05, 30.0), PL.linear(0.06, 30.0), None))
    with pytest.raises(ValueError, match="true_fns"):
        feeder_iterated_best_response(m, book, [2])
    with pytest.raises(ValueError, match="strategic"):
        feeder_iterated_best_response(m, book, [0, 0])
    with pytest.raises(ValueError, match="init"):
        feeder_iterated_best_response(m, book, [0, 1], init=[0.1])
    with pytest.raises(ValueError, match="true_fns"):
        FeederBook([0.1], [1.0], [1], 0.1, true_fns=(None, None))
    with pytest.raises(ValueError, match="beyond_price"):
        demand_misreport(m, book, 0, [35.0], beyond_price=0.01)
