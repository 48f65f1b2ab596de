"""Resilience scenarios (S11): line outage with reconfiguration, islanding, voltage stress day."""
import numpy as np
import pytest

import p2penv
from p2penv.agents.baselines import TruthfulAgent
from p2penv.agents.rollout import Assigned
from p2penv.diagnostics.local_market_power import binding_constraints
from p2penv.generators.feeders import FEEDER_SETTINGS, FeederSetting, register_feeder_setting
from p2penv.network.cases import TIE_LINES, ieee33, reconfigure
from p2penv.network.lindistflow import solve as lindistflow

IDS = ("dlmp_v0/outage-line7-v0", "dlmp_v0/island-v0", "dlmp_v0/voltage-stress-v0")


def _pairs(f):
    return {(int(min(a, b)), int(max(a, b))) for a, b in zip(f.from_bus, f.to_bus)}


def _truthful_episode(scenario_id, seed=0):
    """Yields (infos, env) per step with every agent truthful (``p2penv.agents.baselines.TruthfulAgent``)."""
    env = p2penv.make(scenario_id)
    pol = Assigned(TruthfulAgent(env.config))
    obs, _ = env.reset(seed=seed)
    while env.agents:
        obs, _, _, _, infos = env.step(pol(env, obs))
        yield infos, env


@pytest.mark.parametrize("scenario_id", IDS)
def test_scenario_builds_and_steps(scenario_id):
    env = p2penv.make(scenario_id, max_cycles=3)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    k = env.action_space(env.agents[0]).shape[0]
    while env.agents:
        obs, rew, *_ = env.step({a: rng.uniform(-1, 1, k) for a in env.agents})
        assert all(np.isfinite(r) for r in rew.values())
    assert env.config.n_prosumers == 32


def test_outage_feeder_is_radial_connected_and_differs_in_the_two_switched_lines():
    base, f = ieee33(), FEEDER_SETTINGS["ieee33-outage-line7"].build_feeder()
    # radial and connected: n - 1 lines and every bus reached from the root (Feeder validates both)
    assert f.n_line == f.n_bus - 1 and len(f.order) == f.n_bus and (f.parent >= 0).sum() == f.n_bus - 1
    assert _pairs(base) - _pairs(f) == {(7, 8)}  # paper branch 8-9 out
    assert _pairs(f) - _pairs(base) == {(11, 21)}  # paper tie 12-22 closed, in slot 7
    others = np.arange(f.n_line) != 7
    np.testing.assert_array_equal(f.r_pu[others], base.r_pu[others])
    np.testing.assert_array_equal(f.x_pu[others], base.x_pu[others])
    assert f.r_ohm()[7] == pytest.approx(2.0) and f.x_ohm()[7] == pytest.approx(2.0)
    np.testing.assert_array_equal(f.p_load_kw, base.p_load_kw)
    # buses 8..17 are now fed through 18 -> 21 -> 11 (bus 11's parent is 21)
    assert f.parent[11] == 21 and f.parent[8] == 9 and f.parent[12] == 11
    # LinDistFlow at the full base load: the tie carries the 675 kW of buses 8..17, every bus in 0.90..1.10
    lf = lindistflow(f)
    assert lf.p_flow_kw[7] == pytest.approx(675.0)
    assert lf.v.min() == pytest.approx(0.93159, abs=1e-5) and int(np.argmin(lf.v)) == 32
    assert np.all(lf.v[f.non_root] >= f.v_min[f.non_root]) and np.all(lf.v <= f.v_max)
    assert lindistflow(base).v.min() == pytest.approx(0.91593, abs=1e-5)  # base topology: bus 17


def test_reconfigure_refuses_a_switching_that_islands_buses():
    f = ieee33()
    with pytest.raises(ValueError, match="not connected|closes a loop"):
        reconfigure(f, ((0, 3),), TIE_LINES["ieee33"])  # 0 -> 1 open: nothing is supplied, 17-32 makes a loop
    with pytest.raises(ValueError, match="switched once"):
        reconfigure(f, ((7, 2), (8, 2)), TIE_LINES["ieee33"])
    with pytest.raises(ValueError, match="not connected|closes a loop"):
        register_feeder_setting("bad-switching", FeederSetting("ieee33", switching=((0, 3),)))
    with pytest.raises(ValueError, match="no tie-line data"):
        FeederSetting("teaching4", switching=((0, 0),)).build_feeder()
    # default: no topology change
    plain = FeederSetting("ieee33")
    assert plain.switching == () and _pairs(plain.build_feeder()) == _pairs(f)


def test_tie_lines_match_pandapower_case33bw():
    import pandapower.networks as pn
    from p2penv.network.feeder import from_pandapower

    net = pn.case33bw()
    ties = net.line[~net.line.in_service]
    got = ties[["from_bus", "to_bus", "r_ohm_per_km", "x_ohm_per_km"]].to_numpy(float)
    got[:, 2:] *= ties.length_km.to_numpy(float)[:, None]
    rows = sorted(tuple(sorted(r[:2])) + tuple(r[2:]) for r in got)
    ours = sorted(tuple(sorted(r[:2])) + tuple(r[2:]) for r in TIE_LINES["ieee33"])
    np.testing.assert_allclose(rows, ours)
    # the same switching in pandapower gives the same feeder (lines as unordered pairs with r, x)
    net.line.loc[7, "in_service"] = False
    net.line.loc[ties.index[2], "in_service"] = True
    g, f = from_pandapower(net), FEEDER_SETTINGS["ieee33-outage-line7"].build_feeder()
    key = lambda h: sorted((min(a, b), max(a, b), round(r, 9), round(x, 9))  # noqa: E731
                           for a, b, r, x in zip(h.from_bus, h.to_bus, h.r_pu, h.x_pu))
    assert key(g) == key(f)


def test_island_imports_nothing_and_reports_unserved_energy():
    seen_short = 0
    for infos, env in _truthful_episode("dlmp_v0/island-v0"):
        m = next(iter(infos.values()))["market"]
        lp = env.last_lp
        assert m["substation_import_kw"] == pytest.approx(0.0, abs=1e-9)
        # balance with P0 = 0: unserved = sum of net loads + linearised losses
        assert m["unserved_kw"] == pytest.approx(lp.net_load_kw.sum() + lp.losses_kw, abs=1e-6)
        assert m["unserved_kw"] >= -1e-9  # nothing spilled: unneeded asks are rejected instead
        # no utility backstop: agents' unmatched demand is unserved (shed at the value of lost load),
        # never imported, so the realised feeder does not draw on the substation for it either
        g = {k: np.array([infos[x][k] for x in infos]) for k in ("backstop_import_kwh", "shed_kwh")}
        assert np.all(g["backstop_import_kwh"] == 0)
        net = next(iter(infos.values()))["network"]
        assert net["import_kw"] <= m["unserved_kw"] + 1e-6  # only the LP's own unserved fixed load is missing
        if m["unserved_kw"] > 1e-6:
            seen_short += 1
            assert m["clearing_price"] == pytest.approx(10.0)  # scarcity: the value of lost load
        else:
            assert m["clearing_price"] <= env.config.price_cap + 1e-9
    assert seen_short >= 3  # seed 0: the night start (gensets ramping up) and the evening peak


def test_voltage_stress_binds_vmax_at_noon_and_vmin_in_the_evening():
    hi, lo = [], []
    for infos, env in _truthful_episode("dlmp_v0/voltage-stress-v0"):
        bc = binding_constraints(env.last_lp, env.feeder)
        t = next(iter(infos.values()))["market"]["t"]
        if np.any(bc.bus_limit > 0):
            hi.append(t)
        if np.any(bc.bus_limit < 0):
            lo.append(t)
        net = next(iter(infos.values()))["network"]
        assert net["v_max_pu"] <= 1.001 + 1e-6  # rejected exports are curtailed, not fed in
    assert hi and lo
    assert min(hi) >= 9 and max(hi) <= 15  # PV around noon
    assert min(lo) >= 16  # evening peak
