"""The SimBench community (p2penv.generators.simbench_profiles, auction_v0/simbench-semiurb5-v0): kW profiles
equal SimBench's absolute values, the agent mapping, the PV-storage split, env invariants, the registry pin,
and the clear error without the ``simbench`` extra.

The data tests need ``pip install 'p2penv[simbench]'`` and skip without it; the grid loads once per process
(~5 s, cached by the module). The error test runs everywhere (the import is monkeypatched away)."""
import sys

import numpy as np
import pytest

import p2penv
from p2penv.registry import SIMBENCH_COMMUNITY, SimbenchGenerator

SID = "auction_v0/simbench-semiurb5-v0"
DAY = 170  # 19 June 2016 (day 0 = 1 January of SimBench's profile year)
NOON = DAY * 96 + 48  # quarter-hour index of 12:00 that day


@pytest.fixture(scope="module")
def sb():
    """(simbench, the module, its cached grid profiles, the cached net, its absolute values in MW)."""
    simbench = pytest.importorskip("simbench")
    from p2penv.generators import simbench_profiles as S

    net = S.simbench_net(S.DEFAULT_GRID)
    return simbench, S, S.grid_profiles(S.DEFAULT_GRID), net, simbench.get_absolute_values(net, True)


def _idx(table, name):
    (i,) = table.index[table["name"] == name]
    return i


def test_kw_profiles_are_simbench_absolute_values_times_1000(sb):
    simbench, S, g, net, absv = sb
    gen = S.SimbenchCommunity()
    m = gen.mapping(12)
    # hand-picked: prosumer_1 is the house at "LV5.201 Bus 81": load "Load 64" and PV "SGen 10", nothing else
    load, sgen = _idx(net.load, "LV5.201 Load 64"), _idx(net.sgen, "LV5.201 SGen 10")
    assert (m[1]["kind"], m[1]["bus_name"], m[1]["loads"], m[1]["sgens"]) == \
        ("pv_household", "LV5.201 Bus 81", (load,), (sgen,))
    load_mw = absv[("load", "p_mw")][load].to_numpy()
    sgen_mw = absv[("sgen", "p_mw")][sgen].to_numpy()
    assert sgen_mw[NOON] > 0 and load_mw[NOON] > 0  # a sunny noon: the check is not 0 == 0
    dem, pv = gen.profiles_kw(12, 96, 0.25, 0.0, DAY)  # native 15-min resolution
    assert dem[48, 1] == pytest.approx(1000 * load_mw[NOON], rel=1e-12)
    assert pv[48, 1] == pytest.approx(1000 * sgen_mw[NOON], rel=1e-12)
    dem_h, pv_h = gen.profiles_kw(12, 24, 1.0, 0.0, DAY)  # hourly: the mean of the hour's 4 quarter-hours
    assert dem_h[12, 1] == pytest.approx(1000 * load_mw[NOON:NOON + 4].mean(), rel=1e-12)
    assert pv_h[12, 1] == pytest.approx(1000 * sgen_mw[NOON:NOON + 4].mean(), rel=1e-12)
    # prosumer_0 owns the PV-storage system "Storage 9" (profile Storage_PV8_G5-A, |p_mw| 0.0182): its PV is
    # the PV8 profile x 18.2 kW, its battery 36.5 kWh, and SimBench's own system output is kept for reference
    st = _idx(net.storage, "LV5.201 Storage 9")
    assert net.storage.at[st, "profile"] == "Storage_PV8_G5-A" and m[0]["storages"] == (st,)
    assert pv[48, 0] == pytest.approx(net.profiles["renewables"]["PV8"].iloc[NOON] * 18.2, rel=1e-9)
    assert (m[0]["pv_kwp"], m[0]["capacity_kwh"]) == pytest.approx((18.2, 36.5))
    out = gen.storage_output_kw(12, 96, 0.25, 0.0, DAY)
    assert out[48, 0] == pytest.approx(-1000 * absv[("storage", "p_mw")][st].iloc[NOON], rel=1e-12)
    assert np.all(out[:, 1:][:, [m[i]["kind"] != "pv_battery" for i in range(1, 12)]] == 0)
    # every bus: demand = its loads' sum, over the whole year
    j = int(np.flatnonzero(g.buses == m[3]["bus"])[0])
    np.testing.assert_allclose(g.demand_kw[:, j], 1000 * absv[("load", "p_mw")][list(m[3]["loads"])].sum(axis=1),
                               rtol=1e-12)
    assert len(m[3]["loads"]) == 2  # a house with two loads (household and heat pump or EV): summed


def test_agents_cycle_through_kinds_in_bus_order(sb):
    _, S, g, _, _ = sb
    gen = S.SimbenchCommunity()
    m = gen.mapping(40)
    assert [x["kind"] for x in m[:4]] == list(S.DEFAULT_KINDS)
    for kind in S.SIMBENCH_KINDS:
        buses = [x["bus"] for x in m if x["kind"] == kind]
        assert buses == sorted(buses) and len(set(buses)) == len(buses)
    for x in m:
        assert bool(x["storages"]) == (x["kind"] == "pv_battery")
        assert bool(x["sgens"]) == (x["kind"] == "pv_household")  # no storage bus of this grid has an sgen
        assert (x["pv_kwp"] > 0) == (x["kind"] != "consumer") and (x["capacity_kwh"] > 0) == bool(x["storages"])
    assert g.kinds.count("pv_battery") == 10
    with pytest.raises(ValueError, match="agent 40 needs a 'pv_battery' bus but grid 1-LV-semiurb5--1-sw has only 10"):
        gen.columns(41)
    with pytest.raises(ValueError, match="multiple of 0.25 h"):
        gen(4, 24, 0.1, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="runs past the end of the profile year"):
        S.SimbenchCommunity(first_day=365)(4, 48, 1.0, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="kinds"):
        S.SimbenchCommunity(kinds=("pv",))


def test_pv_storage_split_matches_simbench_schedule(sb):
    """The documented split of a SimBench PV-storage element into PV and a battery: its implied battery
    power (PV - SimBench's system output) stays within the rated power, and what it charges in a day fits
    the capacity (up to SimBench's ~0.02 kW standby draw, < 3 %); a wrong PV profile or rating breaks both."""
    _, _, g, _, _ = sb
    cols = [j for j, k in enumerate(g.kinds) if k == "pv_battery"]
    for j in cols:
        b = g.pv_kw[:, j] - g.storage_output_kw[:, j]  # kW, > 0 charging
        assert np.all(np.abs(b) <= g.power_kw[j])
        assert b.max() > 0.1 * g.power_kw[j] and b.min() < -0.1 * g.power_kw[j]  # it both charges and discharges
        daily = (np.maximum(b, 0) * 0.25).reshape(-1, 96).sum(axis=1) * g.eta[j]
        assert daily.max() <= 1.03 * g.capacity_kwh[j]


def test_env_steps_are_simbench_days_and_balance(sb):
    _, _, g, _, _ = sb
    env = p2penv.make(SID)
    env.reset(seed=3)
    gen = SIMBENCH_COMMUNITY.generator
    f, n, dt = env.fleet, len(env.possible_agents), env.config.dt_h
    assert (env.max_cycles, dt, env.config.start_hour) == (24, 1.0, 0.0)
    hourly = g.demand_kw[:, gen.columns(n)].reshape(366, 24, 4, n).mean(axis=2)  # every day's hourly means, kW
    days = np.flatnonzero([np.allclose(h, f.demand_kw, rtol=1e-12, atol=0) for h in hourly])
    assert len(days) == 1  # the episode is one real day of the profile year
    dem, pv = gen.profiles_kw(n, 24, dt, 0.0, int(days[0]))
    np.testing.assert_array_equal(dem, f.demand_kw)
    np.testing.assert_array_equal(pv, f.p_max_kw)
    stg = f.storage
    soc = stg.soc0_kwh.copy()
    rng = np.random.default_rng(0)
    for _ in range(6):
        ctx = env.ctx
        acts = {a: rng.uniform(-1.2, 1.2, 3) for a in env.agents}
        _, rew, _, _, info = env.step(acts)
        g = {k: np.array([info[a][k] for a in info]) for k in info["prosumer_0"] if k != "market"}
        p, c, d = g["dispatch_kw"], g["charge_kw"], g["discharge_kw"]
        assert np.all(p >= g["feasible_lo_kw"] - 1e-12) and np.all(p <= g["feasible_hi_kw"] + 1e-12)
        assert np.all(p <= ctx.p_max_kw + 1e-12) and np.all(p >= 0)
        soc = soc + (stg.eta_charge * c - d / stg.eta_discharge) * dt
        np.testing.assert_allclose(g["soc_kwh"], soc, atol=1e-9)
        assert np.all(g["soc_kwh"] >= stg.soc_min_kwh - 1e-12) and np.all(g["soc_kwh"] <= stg.soc_max_kwh + 1e-12)
        net = (ctx.eta * p - ctx.demand_kw - (c - d)) * dt + g["shed_kwh"]
        np.testing.assert_allclose(g["net_kwh"], net, atol=1e-9)
        grid = g["side"] * g["matched_kwh"] + g["backstop_export_kwh"] - g["backstop_import_kwh"]
        np.testing.assert_allclose(g["net_kwh"], grid, atol=1e-9)
        sold, bought = g["matched_kwh"][g["side"] > 0].sum(), g["matched_kwh"][g["side"] < 0].sum()
        assert abs(sold - bought) <= 1e-9 * (1 + sold)
        assert np.all(np.isfinite([rew[a] for a in rew]))


def test_registered_pin_and_vector_env(sb):
    from test_registry import PINNED, assert_vector_market_e_is_make_seeded_seed_plus_e, fingerprint

    spec = p2penv.get_spec(SID)
    assert spec.extras == ("simbench",) and "ODbL" in spec.description
    assert fingerprint(p2penv.make(SID)) == PINNED[SID]
    assert_vector_market_e_is_make_seeded_seed_plus_e(SID, 2)


def test_without_the_extra_the_scenario_names_it(monkeypatch):
    """Simulated lean install: ``import simbench`` fails. The registry still lists the scenario; building it
    (the registered generator or a fresh one) raises an ImportError naming the extra."""
    monkeypatch.setitem(sys.modules, "simbench", None)  # any import of simbench now raises ImportError
    monkeypatch.delitem(sys.modules, "p2penv.generators.simbench_profiles", raising=False)
    monkeypatch.delitem(vars(SIMBENCH_COMMUNITY), "generator", raising=False)  # forget a generator built earlier
    assert SID in p2penv.list_scenarios()
    for kw in ({}, dict(generator=SimbenchGenerator(SIMBENCH_COMMUNITY.options))):
        with pytest.raises(ImportError, match=r"pip install 'p2penv\[simbench\]'"):
            p2penv.make(SID, **kw)
