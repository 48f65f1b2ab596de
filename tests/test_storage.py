"""Batteries: SOC dynamics, limits by construction, energy and budget balance, equivalence, errors."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penv import auction_v0
from p2penv.generators import HouseholdMix
from p2penv.market.storage import Storage

MIX = HouseholdMix(kinds=("pv_battery", "consumer", "dispatchable", "pv_battery", "flexible_load", "pv_household"))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), mechanism=st.sampled_from(["uniform", "pay_as_bid"]),
       unmatched=st.sampled_from(["backstop", "curtail"]))
def test_soc_limits_energy_and_budget_balance(seed, mechanism, unmatched):
    env = auction_v0.parallel_env(n_prosumers=6, generator=MIX, mechanism=mechanism, unmatched=unmatched,
                                  max_cycles=12)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    stg = env.fleet.storage
    soc = stg.soc0_kwh.copy()
    dt = env.config.dt_h
    while env.agents:
        ctx = env.ctx
        acts = {a: rng.uniform(-1.3, 1.3, 3) for a in env.agents}
        _, rew, _, _, info = env.step(acts)
        g = {k: np.array([info[a][k] for a in info]) for k in info["prosumer_0"] if k != "market"}
        c, d = g["charge_kw"], g["discharge_kw"]
        # limits hold by construction: power and SOC bounds, one direction at a time
        assert np.all(c <= ctx.charge_max_kw + 1e-12) and np.all(d <= ctx.discharge_max_kw + 1e-12)
        assert np.all(c * d == 0)
        expected = soc + (stg.eta_charge * c - d / stg.eta_discharge) * dt
        np.testing.assert_allclose(g["soc_kwh"], expected, atol=1e-9)
        assert np.all(g["soc_kwh"] >= stg.soc_min_kwh - 1e-12) and np.all(g["soc_kwh"] <= stg.soc_max_kwh + 1e-12)
        soc = g["soc_kwh"]
        # agents without a battery never move energy through one; their storage action is reported
        none = stg.capacity_kwh == 0
        assert np.all(c[none] == 0) and np.all(d[none] == 0)
        u = np.clip([acts[a][2] for a in info], -1, 1)
        np.testing.assert_allclose(g["storage_ignored"][none], np.abs(u[none]))
        # energy balance at each connection: DER out - demand - battery (+ shed demand) = market + backstop
        net = (ctx.eta * g["dispatch_kw"] - ctx.demand_kw - (c - d)) * dt + g["shed_kwh"]
        np.testing.assert_allclose(g["net_kwh"], net, atol=1e-9)
        grid = g["side"] * g["matched_kwh"] + g["backstop_export_kwh"] - g["backstop_import_kwh"]
        np.testing.assert_allclose(g["net_kwh"], grid, atol=1e-9)  # what the market and backstop moved
        # the market balances and pays out what it takes in (strong budget balance for uniform)
        sold = g["matched_kwh"][g["side"] > 0].sum()
        bought = g["matched_kwh"][g["side"] < 0].sum()
        assert abs(sold - bought) <= 1e-9 * (1 + sold)
        m = info["prosumer_0"]["market"]
        if mechanism == "uniform":
            assert abs(m["operator_surplus"]) <= 1e-9 * (1 + abs(m["welfare"]))
        else:
            assert m["operator_surplus"] >= -1e-12
        np.testing.assert_allclose(-g["market_cash"].sum(), m["operator_surplus"], atol=1e-9)
        # degradation is part of the cost: 0.02 $/kWh of throughput for the mix's batteries
        der = (ctx.cost_a * g["dispatch_kw"] * dt + ctx.cost_b) * g["dispatch_kw"] * dt
        np.testing.assert_allclose(g["cost"], der + stg.degradation_cost * (c + d) * dt, atol=1e-12)


def test_vector_env_with_storage_equals_single_env():
    e, seed = 3, 7
    vec = auction_v0.vector_env(e, n_prosumers=6, generator=MIX, max_cycles=5)
    acts = np.random.default_rng(2).uniform(-1, 1, (10, e, 6, 3))
    vec.reset(seed=seed)
    rec = [vec.step(a) for a in acts]
    for i in range(e):
        env = auction_v0.parallel_env(n_prosumers=6, generator=MIX, max_cycles=5)
        env.reset(seed=seed + i)
        for k in range(10):
            if not env.agents:
                env.reset()
            names = env.agents
            _, rew, _, _, info = env.step({a: acts[k, i, j] for j, a in enumerate(names)})
            np.testing.assert_array_equal([rew[a] for a in names], rec[k][1][i])
            np.testing.assert_array_equal([info[a]["soc_kwh"] for a in names], rec[k][4]["soc_kwh"][i])


def test_storage_observation_fields_decode():
    env = auction_v0.parallel_env(n_prosumers=6, generator=MIX)
    obs, _ = env.reset(seed=1)
    stg, ctx = env.fleet.storage, env.ctx
    o = np.stack([obs[a] for a in env.agents]).astype(np.float64)
    assert o.shape == (6, 15)
    bat = stg.capacity_kwh > 0
    np.testing.assert_allclose(o[bat, 12], 2 * stg.soc0_kwh[bat] / stg.capacity_kwh[bat] - 1, atol=1e-6)
    assert np.all(o[~bat, 12] == -1)
    np.testing.assert_allclose(o[:, 13], np.minimum(ctx.charge_max_kw / 10, 1), atol=1e-6)
    np.testing.assert_allclose(o[:, 14], np.minimum(ctx.discharge_max_kw / 10, 1), atol=1e-6)


def test_default_mix_has_no_storage_and_keeps_its_two_dim_action():
    env = auction_v0.parallel_env()
    env.reset(seed=0)
    assert env.action_space("prosumer_0").shape == (2,) and env.fleet.storage is None


class _BadBattery:
    """A generator whose first agent gets one battery parameter replaced."""

    has_storage = True

    def __init__(self, **bad):
        self.bad = bad

    def __call__(self, n, horizon, dt_h, start_hour, rng):
        f = MIX(n, horizon, dt_h, start_hour, rng)
        s = f.storage
        changed = {k: np.where(np.arange(n) == 0, v, getattr(s, k)) for k, v in self.bad.items()}
        return dataclasses.replace(f, storage=dataclasses.replace(s, **changed))


@pytest.mark.parametrize("bad, msg", [
    (dict(capacity_kwh=-1.0), r"agent 'prosumer_0': storage capacity_kwh must be finite and >= 0 kWh, got -1.0"),
    (dict(soc_max_kwh=99.0), r"agent 'prosumer_0': storage soc_max_kwh must be in \[soc_min_kwh, capacity_kwh\]"),
    (dict(soc_min_kwh=-0.5), r"agent 'prosumer_0': storage soc_min_kwh must be in \[0, soc_max_kwh\]"),
    (dict(soc0_kwh=1e6), r"agent 'prosumer_0': storage soc0_kwh must be in \[soc_min_kwh, soc_max_kwh\]"),
    (dict(eta_charge=1.2), r"agent 'prosumer_0': storage eta_charge must be in \(0, 1\]"),
    (dict(charge_kw=np.nan), r"agent 'prosumer_0': storage charge_kw must be finite"),
])
def test_bad_battery_parameters_name_agent_and_field(bad, msg):
    env = auction_v0.parallel_env(n_prosumers=4, generator=_BadBattery(**bad))
    with pytest.raises(ValueError, match=msg):
        env.reset(seed=0)


def test_storage_record_validation_names_env_in_a_batch():
    s = Storage.none((2, 3))
    s = dataclasses.replace(s, capacity_kwh=np.array([[0, 0, 0], [0, -2.0, 0]]))
    with pytest.raises(ValueError, match=r"env 1, agent 'b': storage capacity_kwh"):
        s.validate(("a", "b", "c"))


def test_stage_nash_conv_with_storage_is_myopic_and_holds_battery_power():
    """SOC is state: the stage-game NashConv deviates in price and dispatch and keeps each battery's power."""
    from p2penv.diagnostics.nash import env_nash_conv

    env = auction_v0.parallel_env(n_prosumers=6, generator=MIX)
    env.reset(seed=3)
    acts = {a: np.array([0.0, 0.0, 0.5]) for a in env.agents}
    snc = env_nash_conv(env, acts)
    assert snc.best_actions.shape == (6, 3) and np.all(snc.best_actions[:, 2] == 0.5)
    assert snc.nash_conv >= 0 and np.all(snc.gains >= 0)
    grid_snc = env_nash_conv(env, acts, method="grid")
    assert np.all(grid_snc.best_actions[:, 2] == 0.5) and grid_snc.nash_conv <= snc.nash_conv + 1e-9


def test_time_varying_tariffs_settle_each_step_at_its_price():
    """A generator with ``prices()`` sets the backstop per step; dlmp_v0's substation follows wholesale."""
    from p2penv import dlmp_v0
    from p2penv.market.prices import PriceSeries

    class TouMix(HouseholdMix):
        def prices(self, horizon, dt_h, start_hour):
            retail = np.where(np.arange(horizon) % 2 == 0, 0.20, 0.35)
            return PriceSeries(retail, np.full(horizon, 0.04), np.linspace(0.05, 0.15, horizon))

    env = auction_v0.parallel_env(n_prosumers=6, generator=TouMix(), max_cycles=6)
    env.reset(seed=0)
    t = 0
    while env.agents:
        ctx = env.ctx
        assert ctx.retail_tariff == (0.20 if t % 2 == 0 else 0.35)
        _, rew, _, _, info = env.step({a: np.zeros(2) for a in env.agents})
        g = {k: np.array([info[a][k] for a in info]) for k in ("market_cash", "backstop_import_kwh",
                                                               "backstop_export_kwh", "cost", "shed_kwh")}
        lost = np.where(g["shed_kwh"] > 0, env.fleet.shed_values, 0.0) * g["shed_kwh"]
        expect = g["market_cash"] + 0.04 * g["backstop_export_kwh"] - ctx.retail_tariff * g["backstop_import_kwh"]
        np.testing.assert_allclose([rew[a] for a in info], expect - g["cost"] - lost, atol=1e-12)
        t += 1
    grid = dlmp_v0.parallel_env(scenario="teaching4", generator=TouMix(), max_cycles=3)
    grid.reset(seed=0)
    for t in range(3):
        _, _, _, _, info = grid.step({a: np.zeros(2) for a in grid.agents})
        assert info["prosumer_0"]["market"]["wholesale_price"] == pytest.approx(np.linspace(0.05, 0.15, 3)[t])


def test_inconsistent_price_series_is_refused():
    from p2penv.market.prices import PriceSeries

    class Bad(HouseholdMix):
        def prices(self, horizon, dt_h, start_hour):
            return PriceSeries(np.full(horizon, 0.1), np.full(horizon, 0.2), np.full(horizon, 0.1))

    with pytest.raises(ValueError, match=r"step 0: feed_in \(0.2\) must be <= retail \(0.1\)"):
        auction_v0.parallel_env(generator=Bad()).reset(seed=0)


# -- end-of-episode SOC (generator.soc_end = "start"): market.storage.soc_end_interval -----------------
class _HoldSoc(HouseholdMix):
    """The storage mix with every battery bound to end the episode at its start SOC."""

    soc_end = "start"


HOLD = _HoldSoc(kinds=MIX.kinds)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), horizon=st.integers(1, 30), dt_h=st.sampled_from([0.25, 1.0, 2.0]),
       extreme=st.booleans())
def test_soc_end_start_every_episode_ends_at_its_start_soc(seed, horizon, dt_h, extreme):
    """Random actions (uniform, or always full power one way or the other, which runs into the
    constraint): the SOC stays in its bounds, the battery power in the narrowed interval (the kernel
    equals ``soc_end_interval`` and ``battery_power``), the narrowing is what the interval lost, and
    every episode ends at SOC_0 to 1e-9."""
    from p2penv.market.storage import battery_power, soc_end_interval, storage_interval

    env = auction_v0.parallel_env(n_prosumers=6, generator=HOLD, max_cycles=horizon, dt_h=dt_h)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    stg = env.fleet.storage
    soc = stg.soc0_kwh.copy()
    for t in range(horizon):
        ctx = env.ctx
        cmax0, dmax0 = storage_interval(soc, stg, dt_h)
        cmax, dmax = soc_end_interval(soc, stg.soc0_kwh, cmax0, dmax0, stg, dt_h, horizon - t - 1)
        np.testing.assert_allclose(ctx.charge_max_kw, cmax, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ctx.discharge_max_kw, dmax, rtol=0, atol=1e-12)
        u = 1.2 * rng.choice([-1.0, 1.0], (6, 3)) if extreme else rng.uniform(-1.3, 1.3, (6, 3))
        _, _, _, _, info = env.step({a: u[j] for j, a in enumerate(env.agents)})
        g = {k: np.array([info[a][k] for a in info]) for k in info["prosumer_0"] if k != "market"}
        b = g["charge_kw"] - g["discharge_kw"]
        np.testing.assert_allclose(b, battery_power(u[:, 2], cmax, dmax), rtol=0, atol=1e-12)
        assert np.all(b >= g["battery_lo_kw"] - 1e-12) and np.all(b <= g["battery_hi_kw"] + 1e-12)
        np.testing.assert_allclose(g["soc_end_narrowing_kw"], (cmax0 + dmax0) - (cmax + dmax), rtol=0, atol=1e-12)
        assert np.all(g["soc_end_narrowing_kw"] >= -1e-12)
        np.testing.assert_allclose(g["clip_storage"], np.abs(u[:, 2] - np.clip(u[:, 2], -1, 1)), rtol=0, atol=0)
        soc = g["soc_kwh"]
        assert np.all(soc >= stg.soc_min_kwh - 1e-12) and np.all(soc <= stg.soc_max_kwh + 1e-12)
    assert not env.agents
    np.testing.assert_allclose(soc, stg.soc0_kwh, rtol=0, atol=1e-9)


def test_soc_end_by_hand_forces_the_last_step():
    """One battery, eta 1, 2 kW both ways, SOC 5 of [0, 10] kWh, 3 steps of 1 h, action always +1 (charge):
    step 0 charges 2 kW (SOC 7; 7 is still 2 steps x 2 kWh from 5); step 1 may not charge (from 7 one
    step reaches 5, from more it would not): interval [-2, 0], +1 means its upper end, idle, narrowing
    2 kW; step 2 must land on 5: interval [-2, -2], a forced 2 kW discharge, narrowing 4 kW."""
    from p2penv.generators.arbitrage import ArbitrageMarket

    gen = ArbitrageMarket("tou", capacity_kwh=10.0, power_kw=2.0, eta=1.0, soc_min_kwh=0.0, soc_max_kwh=10.0,
                          soc0_kwh=5.0)
    env = auction_v0.parallel_env(n_prosumers=2, generator=gen, max_cycles=3)
    env.reset(seed=0)
    rows = []
    while env.agents:
        _, _, _, _, info = env.step({a: np.array([0.0, 0.0, 1.0]) for a in env.agents})
        i = info["prosumer_0"]
        rows.append([i["battery_lo_kw"], i["battery_hi_kw"], i["charge_kw"] - i["discharge_kw"],
                     i["soc_end_narrowing_kw"], i["soc_kwh"]])
    np.testing.assert_array_equal(rows, [[-2.0, 2.0, 2.0, 0.0, 7.0], [-2.0, 0.0, 0.0, 2.0, 7.0],
                                         [-2.0, -2.0, -2.0, 4.0, 5.0]])


def test_soc_end_is_off_by_default_and_reported_as_zero():
    """Without the option the interval is storage_interval's and nothing is narrowed."""
    env = auction_v0.parallel_env(n_prosumers=6, generator=MIX, max_cycles=3)
    env.reset(seed=2)
    assert env.core.soc_end is None
    while env.agents:
        ctx = env.ctx
        _, _, _, _, info = env.step({a: np.array([0.0, 0.0, 1.0]) for a in env.agents})
        g = {k: np.array([info[a][k] for a in info])
             for k in ("battery_lo_kw", "battery_hi_kw", "soc_end_narrowing_kw")}
        np.testing.assert_array_equal(g["battery_lo_kw"], -ctx.discharge_max_kw)
        np.testing.assert_array_equal(g["battery_hi_kw"], ctx.charge_max_kw)
        assert np.all(g["soc_end_narrowing_kw"] == 0.0)


def test_battery_power_is_the_order_kernels_mapping_when_idle_is_allowed_and_inverts():
    from p2penv.market.pipeline import orders_kernel
    from p2penv.market.storage import battery_power, storage_action

    rng = np.random.default_rng(0)
    u = rng.uniform(-1, 1, (200, 1, 3))
    cmax, dmax = rng.uniform(0, 5, (200, 1)), rng.uniform(0, 5, (200, 1))
    z = np.zeros((200, 1))
    battery = orders_kernel(u, z, z, z + 1, z, cmax, dmax, 1.0, 0.0, 0.4)[-1]
    np.testing.assert_array_equal(battery_power(u[..., 2], cmax, dmax), battery)  # bit for bit
    # intervals that exclude idle (soc_end): [1, 3] kW and [-3, -1] kW
    np.testing.assert_allclose(battery_power([-1.0, 0.0, 0.5, 1.0], 3.0, -1.0), [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(battery_power([-1.0, -0.5, 0.0, 1.0], -1.0, 3.0), [-3.0, -2.0, -1.0, -1.0])
    for c, d in ((3.0, -1.0), (-1.0, 3.0), (2.0, 4.0), (0.0, 0.0), (-2.0, 2.0)):
        b = np.linspace(-d, c, 7)
        np.testing.assert_allclose(battery_power(storage_action(b, c, d), c, d), b, atol=1e-12)


def test_soc_end_needs_batteries_and_a_known_mode():
    class NoBattery(HouseholdMix):
        soc_end = "start"

    class Bad(HouseholdMix):
        soc_end = "empty"

    with pytest.raises(ValueError, match=r"generator: soc_end='start' needs batteries"):
        auction_v0.parallel_env(generator=NoBattery())
    with pytest.raises(ValueError, match=r"generator: soc_end must be one of \(None, 'start'\), got 'empty'"):
        auction_v0.parallel_env(generator=Bad(kinds=MIX.kinds))
