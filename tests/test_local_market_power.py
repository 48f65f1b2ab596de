"""Local market power behind binding constraints: hand cases on teaching4 and the 33-bus feeder."""
import dataclasses

import numpy as np
import pytest

from p2penv import dlmp_v0
from p2penv.diagnostics.local_market_power import (
    binding_constraints,
    downstream_buses,
    local_market_power,
    offered_capacity_kw,
    voltage_zone_line,
)
from p2penv.envs.dlmp_config import FEEDER_SETTINGS
from p2penv.network.cases import FEEDERS
from p2penv.network.dlmp import DlmpMarket
from p2penv.network.lindistflow import LossModel

P5 = np.sqrt(1193.0**2 - 510.0**2)  # kW: line 5's active limit at the fixed loads' 510 kvar = 1078.4939


def _teaching4_rated():
    f = FEEDERS["teaching4"]()
    return dataclasses.replace(f, line_limit_kva=np.array([np.inf, 250.0, np.inf]))  # line 1: bus 1 -> 2


def test_teaching4_hand_case():
    # Line 1 feeds bus 2 (200 kW + 100 kvar fixed): Pmax = sqrt(250^2 - 100^2) = 229.1288 kW.
    # Book at bus 2 (lossless, lambda_0 = 0.10): A asks 0.15 for 30 kW, B asks 0.20 for 40 kW,
    # a buyer bids 0.30 for 60 kW. Zone demand 200 + 60 = 260 kW; import 229.1288 at the limit,
    # A sells 30, B the last 0.8712 kW and sets the zone's DLMP at 0.20 (congestion 0.10).
    f = _teaching4_rated()
    buses = [2, 2, 2]
    m = DlmpMarket(f, buses, loss_model=LossModel.lossless(f))
    lp = m.clear([0.15, 0.20, 0.30], [30, 40, 60], [1, 1, -1], 0.10, f.p_load_kw, f.q_load_kvar)
    comp = m.clear([0.12, 0.14, 0.30], [30, 40, 60], [1, 1, -1], 0.10, f.p_load_kw, f.q_load_kvar)
    bc = binding_constraints(lp, f)
    np.testing.assert_array_equal(bc.lines, [1])
    assert bc.line_price[0] == pytest.approx(0.10) and bc.buses.size == 0 and bc.line_priced.all()
    r = local_market_power(lp, f, buses, [30.0, 40.0, 0.0], competitive_dlmp=comp.dlmp)
    (z,) = r.zones
    pmax = np.sqrt(250.0**2 - 100.0**2)
    assert (z.kind, z.index, z.zone_line, z.direction) == ("line", 1, 1, 1)
    np.testing.assert_array_equal(z.buses, [2])
    np.testing.assert_array_equal(z.sellers, [0, 1])
    assert z.import_capability_kw == pytest.approx(pmax) == pytest.approx(229.1288, abs=1e-4)
    assert z.demand_kw == pytest.approx(260.0)
    b_sold = 260.0 - pmax - 30.0  # 0.8712 kW
    np.testing.assert_allclose(z.sold_kwh, [30.0, b_sold], atol=1e-7)
    assert z.hhi == pytest.approx((30.0**2 + b_sold**2) / (30.0 + b_sold) ** 2) == pytest.approx(0.94515, abs=1e-5)
    # RSI_A = (40 + 229.1288) / 260 = 1.0351, RSI_B = (30 + 229.1288) / 260 = 0.99665 -> only B pivotal
    np.testing.assert_allclose(z.rsi, [(40 + pmax) / 260, (30 + pmax) / 260])
    np.testing.assert_allclose(z.rsi, [1.03511, 0.99665], atol=1e-5)
    np.testing.assert_array_equal(z.pivotal, [False, True])
    assert z.rsi_zone == pytest.approx((70 + pmax) / 260) and r.any_pivotal
    # competitive book (asks 0.12, 0.14): zonal DLMP 0.14, so the markup is 0.20 - 0.14 = 0.06
    assert (z.dlmp, z.competitive_dlmp, z.markup) == pytest.approx((0.20, 0.14, 0.06))


def test_downstream_and_voltage_zones_on_ieee33():
    f = FEEDER_SETTINGS["ieee33-congested"].build_feeder()
    np.testing.assert_array_equal(downstream_buses(f, 5), np.arange(6, 18))  # line 5 -> 6 feeds 6..17
    np.testing.assert_array_equal(downstream_buses(f, 16), [17])
    np.testing.assert_array_equal(downstream_buses(f, 0), np.arange(1, 33))
    # path resistance to 17 is 11.063 ohm; bus 11 is the first on the path with >= half (5.695 ohm)
    assert voltage_zone_line(f, 17) == 10
    np.testing.assert_array_equal(downstream_buses(f, 10), np.arange(11, 18))
    assert voltage_zone_line(f, 17, share=1.0) == 16
    with pytest.raises(ValueError, match="outside"):
        downstream_buses(f, 32)


def test_ieee33_congested_constructed_book_by_hand():
    # Lossless LP on the ieee33-congested feeder: sellers at bus 6 (4 kW at 0.15) and bus 12 (3 kW at
    # 0.18), a buyer at bus 17 bids 0.30 for 10 kW. Zone of line 5: 1075 + 10 = 1085 kW against an import
    # of 1078.4939 kW: bus 6 sells 4, bus 12 the remaining 2.5061 and sets the DLMP 0.18 behind line 5.
    f = FEEDER_SETTINGS["ieee33-congested"].build_feeder()
    buses = [6, 12, 17]
    m = DlmpMarket(f, buses, loss_model=LossModel.lossless(f))
    lp = m.clear([0.15, 0.18, 0.30], [4, 3, 10], [1, 1, -1], 0.10, f.p_load_kw, f.q_load_kvar)
    r = local_market_power(lp, f, buses, [4.0, 3.0, 0.0])
    np.testing.assert_array_equal(r.binding.lines, [5])
    assert r.binding.line_price[0] == pytest.approx(0.08)
    (z,) = r.zones
    np.testing.assert_array_equal(z.buses, np.arange(6, 18))
    assert z.import_capability_kw == pytest.approx(P5) == pytest.approx(1078.4939, abs=1e-4)
    assert z.demand_kw == pytest.approx(1085.0)
    np.testing.assert_allclose(z.sold_kwh, [4.0, 1085.0 - P5 - 4.0], atol=1e-7)
    # RSI_6 = (3 + 1078.4939) / 1085 = 0.99677, RSI_12 = (4 + 1078.4939) / 1085 = 0.99769: both pivotal
    np.testing.assert_allclose(z.rsi, [0.996769, 0.997690], atol=1e-6)
    assert z.pivotal.all() and z.rsi_zone == pytest.approx((7 + P5) / 1085)
    assert z.hhi == pytest.approx(0.526360, abs=1e-6) and z.dlmp == pytest.approx(0.18)


def test_undervoltage_zone_by_hand():
    # ieee33-undervoltage (v_min 0.9156): a 10 kW bid at bus 17 pulls V_17 to the limit; the zone of the
    # limit is behind line 10 (buses 11..17), its import capability the cleared flow on line 10.
    f = FEEDER_SETTINGS["ieee33-undervoltage"].build_feeder()
    buses = [17, 16, 11]
    m = DlmpMarket(f, buses, loss_model=LossModel.lossless(f))
    lp = m.clear([0.30, 0.15, 0.20], [10, 3, 4], [-1, 1, 1], 0.10, f.p_load_kw, f.q_load_kvar)
    r = local_market_power(lp, f, buses, [0.0, 3.0, 4.0])
    np.testing.assert_array_equal(r.binding.buses, [17])
    assert r.binding.lines.size == 0 and r.binding.bus_limit[0] == -1
    assert r.binding.bus_price[0] == pytest.approx(lp.voltage[17])  # the only binding row: nu_17 r_17,17
    (z,) = r.zones
    assert (z.kind, z.zone_line, z.direction) == ("v_min", 10, 1)
    np.testing.assert_array_equal(z.buses, np.arange(11, 18))
    assert z.import_capability_kw == pytest.approx(lp.line_flows_kw[10])
    fixed = f.p_load_kw[11:18].sum()  # 505 kW
    assert z.demand_kw == pytest.approx(fixed + lp.matched[0])
    np.testing.assert_allclose(z.rsi, [(4 + z.import_capability_kw) / z.demand_kw, (3 + z.import_capability_kw) / z.demand_kw])


def test_env_congested_line5_zone_and_identities():
    env = dlmp_v0.parallel_env(scenario="ieee33-congested")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    found = 0
    while env.agents:
        *_, infos = env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
        lp = env.last_lp
        cap = offered_capacity_kw(infos, env.config.dt_h)
        r = local_market_power(lp, env.feeder, env.buses, cap)
        if 5 not in r.binding.lines:
            assert not any(z.kind == "line" for z in r.zones)
            continue
        found += 1
        np.testing.assert_array_equal(r.binding.lines, [5])
        z = r.zones[0]
        np.testing.assert_array_equal(z.buses, np.arange(6, 18))
        behind = np.flatnonzero((env.buses >= 6) & (env.buses <= 17))  # agents 5..16 (12 load buses)
        np.testing.assert_array_equal(behind, np.arange(5, 17))
        np.testing.assert_array_equal(z.sellers, behind[cap[behind] > 0])
        assert z.import_capability_kw == pytest.approx(P5)
        assert r.binding.line_price[0] == pytest.approx(lp.congestion[6])
        # the line at its limit: the zone's sellers cover exactly what the import cannot
        assert z.sold_kwh.sum() == pytest.approx(z.demand_kw - z.import_capability_kw, abs=1e-6)
        g = {k: np.array([infos[a][k] for a in infos]) for k in ("side", "matched_kwh")}
        bids_behind = g["matched_kwh"][behind][g["side"][behind] < 0].sum()
        assert z.demand_kw == pytest.approx(env.p_fixed_kw[6:18].sum() + bids_behind)  # 1075 kW + bids
        np.testing.assert_allclose(z.rsi, (cap[z.sellers].sum() - cap[z.sellers] + P5) / z.demand_kw)
    assert found >= 1  # seed 0: line 5 binds at several steps


def test_no_binding_constraint_and_errors():
    f = FEEDERS["teaching4"]()
    m = DlmpMarket(f, [2, 3], loss_model=LossModel.lossless(f))
    lp = m.clear([0.05, 0.30], [5, 5], [1, -1], 0.10, f.p_load_kw, f.q_load_kvar)
    r = local_market_power(lp, f, [2, 3], [5.0, 0.0])
    assert not r.binding.any and r.zones == () and not r.any_pivotal
    with pytest.raises(ValueError, match="one per order"):
        local_market_power(lp, f, [2], [5.0])
    with pytest.raises(ValueError, match=">= 0"):
        local_market_power(lp, f, [2, 3], [-1.0, 0.0])
