"""DLMP clearing (spec S5, S6): decomposition, envelope theorem, hand checks, slacks, solvers."""
import dataclasses

import numpy as np
import pytest

from p2penv.network import LossModel, ieee33, loss_model_at, teaching4
from p2penv.network.dlmp import DlmpMarket, clear_dlmp

LAM = 0.10  # wholesale price at the substation ($/kWh)


def _teaching(**changes):
    f = dataclasses.replace(teaching4(), **changes) if changes else teaching4()
    # Loss model at the base-load LinDistFlow flows with V = 1 p.u.: MLF = [1, 1.006, 1.014, 1.012].
    return f, DlmpMarket(f, [2, 3], loss_model=loss_model_at(f, use_voltages=False))


def _book33(seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.3, 32), rng.uniform(10, 100, 32), rng.choice([-1, 1], 32)


def _scenario33(name):
    f = ieee33()
    if name == "congestion":  # line 5 (5->6) rated 1000 kVA binds; voltage limits slack
        lim = np.full(32, np.inf)
        lim[5] = 1000.0
        f = dataclasses.replace(f, line_limit_kva=lim, v_min=0.8)
    elif name == "voltage":  # v_min = 0.93 binds at the end of lateral 25..32
        f = dataclasses.replace(f, v_min=0.93)
    return f, DlmpMarket(f, f.non_root)


def test_teaching4_unconstrained_by_hand():
    f, m = _teaching()
    r = m.clear([0.2, 0.05], [100, 100], [0, 0], LAM, f.p_load_kw, f.q_load_kvar)
    # DLMP = lambda_0 * MLF; import = 300 kW load + 2.5 kW losses (hand values in test_lindistflow).
    np.testing.assert_allclose(r.dlmp, [0.1, 0.1006, 0.1014, 0.1012], atol=1e-12)
    np.testing.assert_allclose(r.energy, LAM)
    np.testing.assert_allclose(r.congestion, 0.0)
    np.testing.assert_allclose(r.voltage, 0.0)
    assert r.substation_import_kw == pytest.approx(302.5)
    assert r.losses_kw == pytest.approx(2.5)
    # Merchandising surplus: 0.1*(1.014*200 + 1.012*100) - 0.1*302.5 = 0.15 $.
    assert r.operator_surplus == pytest.approx(0.15)
    assert r.welfare == pytest.approx(-30.25) and not r.violated


def test_teaching4_congestion_by_hand():
    # Line 1->2 rated so Pmax = sqrt(S^2 - Q^2) = 150 kW with Q = 100 kvar: the ask at bus 2 (0.2 $/kWh)
    # must cover 200 - 150 = 50 kW and sets DLMP_2 = 0.2; congestion = 0.2 - 0.1014 only at bus 2.
    f, m = _teaching(line_limit_kva=[np.inf, np.hypot(150, 100), np.inf])
    r = m.clear([0.2, 0.05], [100, 100], [1, 0], LAM, f.p_load_kw, f.q_load_kvar)
    np.testing.assert_allclose(r.matched, [50, 0], atol=1e-9)
    np.testing.assert_allclose(r.dlmp, [0.1, 0.1006, 0.2, 0.1012], atol=1e-12)
    np.testing.assert_allclose(r.congestion, [0, 0, 0.0986, 0], atol=1e-12)
    assert r.loading[1] == pytest.approx(1.0)
    assert r.cash[0] == pytest.approx(50 * 0.2)


def test_teaching4_voltage_by_hand():
    # v_min(bus 2) = 0.99 => v2 >= 0.9801; base v2 = 0.976 and dv2/dp2 = 2 R_22 = 0.06 per p.u., so the ask
    # injects (0.9801 - 0.976)/0.06 = 0.068333 p.u. = 68.333 kW and DLMP_2 = 0.2. Voltage component at bus k
    # scales with R_2k: 0.0986 at bus 2, 0.0986 * 0.01/0.03 = 0.032867 at buses 1 and 3.
    f, m = _teaching(v_min=[0.95, 0.95, 0.99, 0.95])
    r = m.clear([0.2, 0.05], [100, 100], [1, 0], LAM, f.p_load_kw, f.q_load_kvar)
    np.testing.assert_allclose(r.matched, [68.333333333333, 0], atol=1e-9)
    np.testing.assert_allclose(r.voltage, [0, 0.0986 / 3, 0.0986, 0.0986 / 3], atol=1e-12)
    np.testing.assert_allclose(r.dlmp, [0.1, 0.1006 + 0.0986 / 3, 0.2, 0.1012 + 0.0986 / 3], atol=1e-12)
    assert r.voltages[2] == pytest.approx(0.99)


@pytest.mark.parametrize("name", ["plain", "congestion", "voltage"])
def test_components_sum_and_envelope_theorem(name):
    f, m = _scenario33(name)
    p, q, s = _book33()
    r = m.clear(p, q, s, 0.12, f.p_load_kw, f.q_load_kvar)
    assert np.array_equal(r.energy + r.loss + r.congestion + r.voltage, r.dlmp)
    np.testing.assert_array_equal(r.unit_price, r.dlmp[f.non_root])
    h, fd = 1e-3, np.zeros(33)
    for k in range(33):
        e = np.zeros(33)
        e[k] = h
        up = m.clear(p, q, s, 0.12, f.p_load_kw + e, f.q_load_kvar).objective
        dn = m.clear(p, q, s, 0.12, f.p_load_kw - e, f.q_load_kvar).objective
        fd[k] = (up - dn) / (2 * h)
    np.testing.assert_allclose(r.dlmp, fd, atol=1e-6)  # measured max error ~1e-10


def test_no_limits_no_losses_gives_flat_price():
    f = dataclasses.replace(ieee33(), v_min=0.0, v_max=np.inf)
    p, q, s = _book33(2)
    r = clear_dlmp(p, q, s, f.non_root, f, 0.12, f.p_load_kw, f.q_load_kvar, loss_model=LossModel.lossless(f))
    np.testing.assert_allclose(r.dlmp, 0.12, atol=1e-12)
    # Bids above 0.12 and asks below it clear in full, the rest not at all.
    np.testing.assert_allclose(r.matched, np.where((s == -1) == (p > 0.12), q, 0.0), atol=1e-9)
    assert r.substation_import_kw == pytest.approx(r.net_load_kw.sum())


def test_congestion_only_downstream_of_binding_line():
    f, m = _scenario33("congestion")
    p, q, s = _book33()
    r = m.clear(p, q, s, 0.12, f.p_load_kw, f.q_load_kvar)
    assert r.loading[5] == pytest.approx(1.0)
    down = np.zeros(33, bool)
    down[f.downstream(5)] = True  # buses 6..17
    assert np.all(r.congestion[down] > 1e-3)
    np.testing.assert_allclose(r.congestion[down], r.congestion[6])  # dP_5/dP_k = 1 for all of them
    assert np.all(r.congestion[~down] == 0.0)
    np.testing.assert_allclose(r.voltage, 0.0)


def test_binding_voltage_limit_gives_voltage_component():
    f, m = _scenario33("voltage")
    p, q, s = _book33()
    r = m.clear(p, q, s, 0.12, f.p_load_kw, f.q_load_kvar)
    assert r.voltages.min() == pytest.approx(0.93)
    assert np.all(r.voltage[f.non_root] > 0) and r.voltage[0] == 0.0
    np.testing.assert_allclose(r.congestion, 0.0)
    assert not r.violated


def test_mlf_scaled_trade_keeps_substation_import():
    f = ieee33()
    m = DlmpMarket(f, [1])
    r0 = m.clear([0.0], [0.0], [0], 0.12, f.p_load_kw, f.q_load_kvar)
    i, j, dp = 17, 1, 10.0
    for dpj, expect_zero in ((dp * r0.mlf[i] / r0.mlf[j], True), (dp, False)):
        load = f.p_load_kw.copy()
        load[i] -= dp
        load[j] += dpj
        r = m.clear([0.0], [0.0], [0], 0.12, load, f.q_load_kvar)
        change = r.substation_import_kw - r0.substation_import_kw
        if expect_zero:
            assert change == pytest.approx(0.0, abs=1e-9)  # exact in the affine loss model
        else:
            assert change == pytest.approx(dp * (r0.mlf[j] - r0.mlf[i]), rel=1e-9)


def test_infeasible_limits_report_slack():
    f, m = _teaching(v_min=[0.95, 0.95, 0.99, 0.95])
    r = m.clear([0.2, 0.05], [10, 100], [1, 0], LAM, f.p_load_kw, f.q_load_kvar)  # 10 kW < 68.3 needed
    assert r.violated and r.voltage_violation_pu[2] > 1e-3
    assert r.dlmp[2] > 1000  # priced at the penalty
    m2 = DlmpMarket(f, [2, 3], import_limit_kw=100.0)
    r2 = m2.clear([0.2, 0.05], [100, 100], [1, 0], LAM, f.p_load_kw, f.q_load_kvar)
    assert r2.violated and r2.unserved_kw > 100 and r2.substation_import_kw == pytest.approx(100.0)
    f3, m3 = _teaching(line_limit_kva=[50.0, np.inf, np.inf])  # Q flow 150 kvar alone exceeds 50 kVA
    r3 = m3.clear([0.2, 0.05], [0, 0], [1, 0], LAM, f3.p_load_kw, f3.q_load_kvar)
    assert r3.violated and r3.line_violation_kw[0] == pytest.approx(300.0)


def test_linprog_matches_highs_and_warm_start_is_deterministic():
    f, m = _scenario33("congestion")
    books = [_book33(seed) for seed in (1, 2, 3)]
    first = [m.clear(*b, 0.12, f.p_load_kw, f.q_load_kvar) for b in books]
    again = [m.clear(*b, 0.12, f.p_load_kw, f.q_load_kvar) for b in books[::-1]][::-1]
    for b, r, r2 in zip(books, first, again):
        ref = m.clear(*b, 0.12, f.p_load_kw, f.q_load_kvar, solver="linprog")
        np.testing.assert_allclose(r.dlmp, ref.dlmp, atol=1e-9)
        np.testing.assert_allclose(r.matched, ref.matched, atol=1e-7)
        np.testing.assert_allclose(r.dlmp, r2.dlmp, atol=1e-12)


def test_set_loss_model_matches_fresh_market():
    f = ieee33()
    p, q, s = _book33(4)
    m = DlmpMarket(f, f.non_root)
    m.clear(p, q, s, 0.12, f.p_load_kw, f.q_load_kvar)
    lm = loss_model_at(f, -1.5 * f.p_load_kw, -1.5 * f.q_load_kvar)
    r = m.clear(p, q, s, 0.12, f.p_load_kw, f.q_load_kvar, loss_model=lm)
    ref = DlmpMarket(f, f.non_root, loss_model=lm).clear(p, q, s, 0.12, f.p_load_kw, f.q_load_kvar)
    np.testing.assert_allclose(r.dlmp, ref.dlmp, atol=1e-12)
    np.testing.assert_allclose(r.mlf, lm.mlf)


def test_input_validation():
    f, m = _teaching()
    with pytest.raises(ValueError, match="prices: expected shape"):
        m.clear([0.1], [1.0], [1], LAM)
    with pytest.raises(ValueError, match="p_load_kw"):
        m.clear([0.1, 0.1], [1.0, 1.0], [1, -1], LAM, p_load_kw=[1.0])
    with pytest.raises(ValueError, match="order_buses"):
        DlmpMarket(f, [7])
    with pytest.raises(ValueError, match="solver"):
        m.clear([0.1, 0.1], [1.0, 1.0], [1, -1], LAM, solver="cplex")


def test_dt_scales_energy_and_keeps_prices():
    f = teaching4()
    kw = dict(loss_model=loss_model_at(f, use_voltages=False))
    # 25 kWh over 0.25 h = 100 kW: same power dispatch and $/kWh prices as 100 kWh over 1 h.
    r1 = clear_dlmp([0.2], [100.0], [-1], [2], f, LAM, f.p_load_kw, f.q_load_kvar, **kw)
    r4 = clear_dlmp([0.2], [25.0], [-1], [2], f, LAM, f.p_load_kw, f.q_load_kvar, dt_h=0.25, **kw)
    np.testing.assert_allclose(r4.dlmp, r1.dlmp, atol=1e-12)
    assert r4.matched[0] == pytest.approx(25.0) and r1.matched[0] == pytest.approx(100.0)
    assert r4.welfare == pytest.approx(r1.welfare / 4)
