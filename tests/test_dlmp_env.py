"""dlmp_v0: PettingZoo conformance, network invariants, scenarios, determinism, LP equivalence, AC audit."""
import numpy as np
import pytest
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test
from pettingzoo.test.state_test import test_state as pz_state_test
from pettingzoo.test.state_test import test_state_space as pz_state_space_test

from p2penv import dlmp_v0
from p2penv.envs.dlmp_config import FEEDER_SETTINGS, DlmpConfig
from p2penv.envs.auction_core import OBS_NAMES
from p2penv.network import lindistflow
from p2penv.network.dlmp import DlmpMarket, clear_dlmp
from p2penv.network.lindistflow import linearise_losses, loss_model_at


# -- PettingZoo suite (as for auction_v0) -------------------------------------------------------
def test_pettingzoo_api():
    api_test(dlmp_v0.env(seed=0), num_cycles=30)


def test_pettingzoo_parallel_api():
    parallel_api_test(dlmp_v0.parallel_env(seed=0, scenario="ieee33-congested"), num_cycles=30)


def test_pettingzoo_parallel_seed():
    parallel_seed_test(lambda: dlmp_v0.parallel_env(scenario="ieee33-undervoltage"), num_cycles=30)


def test_pettingzoo_max_cycles():
    max_cycles_test(dlmp_v0)


def test_pettingzoo_render():
    render_test(lambda render_mode=None: dlmp_v0.env(render_mode=render_mode, scenario="teaching4", seed=0))


def test_pettingzoo_state():
    e = dlmp_v0.env(seed=0)
    pz_state_space_test(e)
    pz_state_test(e, num_cycles=30)


# -- helpers --------------------------------------------------------------------------------------
def rollout(env, seed, n_episodes=1, lo=-1.3, hi=1.3):
    """Random actions (some outside the box); yields (actions, step output, env) per step."""
    rng = np.random.default_rng(seed)
    for ep in range(n_episodes):
        env.reset(seed=seed + ep)
        while env.agents:
            acts = {a: rng.uniform(lo, hi, 2) for a in env.agents}
            yield acts, env.step(acts), env


def gather(infos):
    agents = list(infos)
    first = infos[agents[0]]
    g = {k: np.array([infos[a][k] for a in agents]) for k in first if k not in ("market", "network")}
    return g, first["market"], first["network"]


# -- invariants -----------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", sorted(FEEDER_SETTINGS))
def test_every_step_balances_and_respects_limits_unless_reported(scenario):
    env = dlmp_v0.parallel_env(scenario=scenario, max_cycles=24)
    f = env.feeder
    q_fixed = env.q_fixed_kvar
    for acts, (obs, rew, term, trunc, infos), _ in rollout(env, seed=3, n_episodes=2):
        g, market, net = gather(infos)
        lp = env.last_lp
        # LP model: substation import = total net load + linearised losses, and = sum MLF d + const.
        lm = env.last_loss_model
        assert lp.substation_import_kw == pytest.approx(lp.net_load_kw.sum() + lp.losses_kw, abs=1e-6)
        assert lp.substation_import_kw == pytest.approx(
            lm.mlf @ lp.net_load_kw + lm.const_kw - lm.h @ q_fixed - lp.unserved_kw, abs=1e-6)
        # Matched volumes within orders; matched buys and sells make up the LP's agent net load.
        assert np.all(g["matched_kwh"] >= -1e-12) and np.all(g["matched_kwh"] <= g["order_kwh"] + 1e-9)
        agent_load = np.bincount(g["bus"], -g["side"] * g["matched_kwh"], minlength=f.n_bus)
        np.testing.assert_allclose(lp.net_load_kw, env.p_fixed_kw + agent_load, atol=1e-9)
        # Settlement at the own-bus DLMP, components add up, prices decide who clears.
        np.testing.assert_allclose(g["unit_price"], g["dlmp"], atol=1e-12)
        parts = g["dlmp_energy"] + g["dlmp_loss"] + g["dlmp_congestion"] + g["dlmp_voltage"]
        np.testing.assert_allclose(g["dlmp"], parts, atol=1e-9)
        buy, sell = g["side"] < 0, g["side"] > 0
        traded = g["matched_kwh"] > 1e-9
        assert np.all(g["bid_price"][buy & traded] >= g["dlmp"][buy & traded] - 1e-7)
        assert np.all(g["bid_price"][sell & traded] <= g["dlmp"][sell & traded] + 1e-7)
        full = g["matched_kwh"] >= g["order_kwh"] - 1e-9
        assert np.all(full[buy & (g["bid_price"] > g["dlmp"] + 1e-7)])
        assert np.all(full[sell & (g["bid_price"] < g["dlmp"] - 1e-7)])
        # LP voltages and flows within limits unless the LP reports a violation.
        if not market["lp_violated"]:
            nr = f.non_root
            assert np.all(lp.voltages[nr] >= f.v_min[nr] - 1e-9) and np.all(lp.voltages[nr] <= f.v_max[nr] + 1e-9)
            assert np.all(lp.loading <= 1 + 1e-9)
        # Realised state recomputed independently with lindistflow.solve at the physical positions.
        d_real = env.p_fixed_kw + np.bincount(g["bus"], -g["net_kwh"], minlength=f.n_bus)
        ref = lindistflow(f, -d_real, -q_fixed)
        np.testing.assert_allclose(g["voltage_pu"], ref.v[g["bus"]], atol=1e-12)
        loading = np.hypot(ref.p_flow_kw, ref.q_flow_kvar) / f.line_limit_kva
        nr = f.non_root
        bad = (np.any(ref.v[nr] < f.v_min[nr] - 1e-9) or np.any(ref.v[nr] > f.v_max[nr] + 1e-9)
               or np.any(loading > 1 + 1e-6))
        assert net["violated"] == bad
        assert net["import_kw"] == pytest.approx(d_real.sum() + net["losses_kw"], abs=1e-6)
        # Rewards as in auction_v0 (backstop at tariffs), observations inside the box.
        r = np.array([rew[a] for a in infos])
        cash = g["market_cash"] + 0.05 * g["backstop_export_kwh"] - 0.30 * g["backstop_import_kwh"]
        lost = np.where(g["shed_kwh"] > 0, env.fleet.shed_values, 0.0) * g["shed_kwh"]  # flexible loads
        np.testing.assert_allclose(r, cash - g["cost"] - lost, atol=1e-12)
        space = env.observation_space("prosumer_0")
        assert all(space.contains(o) for o in obs.values())
        assert env.state_space.contains(env.state())


def test_observation_carries_own_dlmp_mapped_like_prices():
    env = dlmp_v0.parallel_env(scenario="ieee33-congested", price_floor=0.0, price_cap=0.4)
    i0 = len(OBS_NAMES)  # the DLMP columns follow the auction ones
    for _, (obs, _, _, _, infos), _ in rollout(env, seed=1):
        for a in list(infos)[:: 7]:
            inf, o = infos[a], obs[a]
            if inf["dlmp"] > 0.4 or abs(inf["dlmp_congestion"]) > 0.2:
                continue  # clipped
            np.testing.assert_allclose(o[i0], 2 * inf["dlmp"] / 0.4 - 1, atol=1e-6)
            np.testing.assert_allclose(o[i0 + 1], 2 * inf["dlmp_energy"] / 0.4 - 1, atol=1e-6)
            np.testing.assert_allclose(o[i0 + 3], 2 * inf["dlmp_congestion"] / 0.4, atol=1e-6)


# -- scenarios --------------------------------------------------------------------------------------
def _components_over_episodes(scenario, n_episodes=3):
    env = dlmp_v0.parallel_env(scenario=scenario)
    cong, volt, spread = [], [], []
    for *_, e in rollout(env, seed=0, n_episodes=n_episodes, lo=-1.0, hi=1.0):
        lp = e.last_lp
        cong.append(lp.congestion.copy())
        volt.append(lp.voltage.copy())
        spread.append(lp.dlmp.max() - lp.dlmp.min())
    return env, np.array(cong), np.array(volt), np.array(spread)


def test_congested_scenario_prices_congestion_downstream_of_the_rated_line():
    env, cong, volt, _ = _components_over_episodes("ieee33-congested")
    f = env.feeder
    assert np.abs(cong).max() > 1e-3  # binds at some step (seen: up to 0.21 $/kWh)
    down = f.path[5] > 0  # line 5 -> 6 feeds buses 6..17
    assert np.all(cong[:, ~down] == 0) and np.all(np.abs(volt) < 1e-12)
    # one price for all buses below the line: the shadow price of line 5
    assert np.allclose(cong[:, down], cong[:, [6]])


def test_undervoltage_scenario_prices_voltage():
    env, cong, volt, _ = _components_over_episodes("ieee33-undervoltage")
    assert np.abs(volt).max() > 1e-3 and np.all(cong == 0)
    k = int(np.argmax(np.abs(volt).max(axis=1)))
    # voltage part proportional to the shared path resistance with the binding end bus 17
    f = env.feeder
    np.testing.assert_allclose(volt[k] / volt[k, 17], f.r_path[:, 17] / f.r_path[17, 17], rtol=1e-6, atol=1e-9)


def test_base_scenario_separates_by_losses_only():
    env, cong, volt, spread = _components_over_episodes("ieee33-base", n_episodes=1)
    assert np.all(cong == 0) and np.all(volt == 0)
    # marginal losses rise with electrical distance: end bus 17 pays more than bus 1
    lp = env.last_lp
    assert lp.dlmp[17] > lp.dlmp[1] > lp.dlmp[0]
    assert spread.min() > 0.005  # seen 0.0123 $/kWh at lambda_0 = 0.10 (MLF_17 about 1.12)


@pytest.mark.parametrize("scenario", ["ieee33-congested", "ieee33-undervoltage"])
def test_tight_scenarios_leave_headroom_for_the_fixed_loads_only(scenario):
    env = dlmp_v0.parallel_env(scenario=scenario)
    f = env.feeder
    m = DlmpMarket(f, [17], loss_model=loss_model_at(f, -env.p_fixed_kw, -env.q_fixed_kvar))
    idle = m.clear([0.1], [0.0], [0], 0.1, env.p_fixed_kw, env.q_fixed_kvar)
    assert not idle.violated and np.all(idle.congestion == 0) and np.all(idle.voltage == 0)
    # 12 kW more load at bus 17 (below line 5, at the end of the feeder) breaks the limit
    extra = env.p_fixed_kw.copy()
    extra[17] += 12.0
    assert m.clear([0.1], [0.0], [0], 0.1, extra, env.q_fixed_kvar).violated


def test_unmeetable_limits_are_reported_not_raised():
    env = dlmp_v0.parallel_env(scenario="ieee33-undervoltage", load_scale=1.2, max_cycles=3)
    for _, (obs, _, _, _, infos), e in rollout(env, seed=0):
        _, market, net = gather(infos)
        assert market["lp_violated"] and market["max_voltage_slack_pu"] > 0 and net["violated"]
        assert all(e.observation_space(a).contains(o) for a, o in obs.items())
        assert e.last_lp.dlmp.max() > 100  # the penalty (1000 $/kWh) is priced in


# -- loss linearisation, determinism, LP equivalence --------------------------------------------------
def test_losses_are_linearised_at_the_previous_realised_point():
    env = dlmp_v0.parallel_env(scenario="ieee33-base", max_cycles=4)
    f = env.feeder
    for *_, e in rollout(env, seed=2):
        if not e.agents:
            break
        prev = e.network
        ref = linearise_losses(f, prev.flows_kw, prev.flows_kvar, prev.voltages)
        lm = e.market.loss_model
        np.testing.assert_allclose(lm.g, ref.g, atol=1e-14)
        np.testing.assert_allclose(lm.h, ref.h, atol=1e-14)
        assert lm.const_kw == pytest.approx(ref.const_kw, abs=1e-9)


def _trajectory(env, seed):
    out = []
    for acts, (obs, rew, _, _, infos), _ in rollout(env, seed=seed, n_episodes=1):
        out.append((np.stack(list(obs.values())), np.array(list(rew.values())),
                    np.array([infos[a]["dlmp"] for a in infos])))
    return out


def test_same_seed_same_trajectory_bit_for_bit():
    a = _trajectory(dlmp_v0.parallel_env(scenario="ieee33-congested"), 5)
    used = dlmp_v0.parallel_env(scenario="ieee33-congested")
    _trajectory(used, 11)  # warm basis from another episode; reset(seed) must not depend on it
    b = _trajectory(used, 5)
    assert len(a) == len(b) == 24
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            assert np.array_equal(u, v)


def test_warm_incremental_lp_matches_a_cold_one_shot_build_on_random_books():
    """The market's warm path (cached load rows, lazy loss coefficients) equals a fresh cold LP."""
    rng = np.random.default_rng(0)
    for scenario in ("ieee33-congested", "ieee33-undervoltage"):
        env = dlmp_v0.parallel_env(scenario=scenario)
        f, buses = env.feeder, env.buses
        warm = DlmpMarket(f, buses)
        lm = None
        for k in range(40):
            if k % 5 == 0:
                lm = loss_model_at(f, -env.p_fixed_kw * rng.uniform(0.8, 1.2), -env.q_fixed_kvar)
                warm.set_loss_model(lm)
            book = (rng.uniform(0.0, 0.4, buses.size), rng.uniform(0, 6, buses.size), rng.choice([-1, 0, 1], buses.size))
            r1 = warm.clear(*book, 0.1, env.p_fixed_kw, env.q_fixed_kvar)  # read-only loads: rows cached
            r2 = clear_dlmp(*book, buses, f, 0.1, env.p_fixed_kw.copy(), env.q_fixed_kvar.copy(), loss_model=lm)
            assert r1.objective == pytest.approx(r2.objective, abs=1e-7)
            for name in ("matched", "dlmp", "energy", "loss", "congestion", "voltage", "voltages",
                         "line_flows_kw", "loading", "net_load_kw"):
                np.testing.assert_allclose(getattr(r1, name), getattr(r2, name), atol=1e-7, err_msg=name)
            for name in ("substation_import_kw", "losses_kw", "operator_surplus", "welfare", "violated"):
                assert getattr(r1, name) == pytest.approx(getattr(r2, name), abs=1e-7), name


def test_linprog_solver_gives_the_same_step():
    e1 = dlmp_v0.parallel_env(scenario="ieee33-congested", max_cycles=6)
    e2 = dlmp_v0.parallel_env(scenario="ieee33-congested", max_cycles=6, lp_solver="linprog")
    for (_, o1, _), (_, o2, _) in zip(rollout(e1, 4), rollout(e2, 4)):
        r1, r2 = np.array(list(o1[1].values())), np.array(list(o2[1].values()))
        np.testing.assert_allclose(r1, r2, atol=1e-7)


# -- AC audit ---------------------------------------------------------------------------------------
def test_ac_audit_reports_differences_within_the_documented_lindistflow_error():
    env = dlmp_v0.parallel_env(scenario="ieee33-base", audit_ac=True, max_cycles=3)
    for *_, (obs, _, _, _, infos), _ in rollout(env, seed=0):
        _, _, net = gather(infos)
        assert net["ac_converged"]
        # docs/network_model.md: max |V_ac - V_lin| = 0.00284 p.u. at 1.0x base load; the agents add
        # about +-1 % to the 3715 kW, so the bound used by test_lindistflow (0.0030) still holds.
        assert 0 < net["ac_max_dv_pu"] < 0.0030
        # the affine loss model under-estimates AC losses by about 8 % there
        assert 0.05 < net["ac_dloss_kw"] / net["ac_loss_kw"] < 0.10
    assert "ac_max_dv_pu" not in gather(next(rollout(dlmp_v0.parallel_env(max_cycles=1), 0))[1][4])[2]


# -- errors, rendering -----------------------------------------------------------------------------
def test_inconsistent_configs_raise_naming_the_field():
    with pytest.raises(ValueError, match="scenario"):
        DlmpConfig(scenario="nope")
    with pytest.raises(ValueError, match="agent_buses"):
        DlmpConfig(agent_buses=(0, 5))
    with pytest.raises(ValueError, match="agent_buses"):
        DlmpConfig(agent_buses=(3, 5), n_prosumers=3)
    with pytest.raises(ValueError, match="nash_gap_in_infos"):
        DlmpConfig(nash_gap_in_infos=True)
    with pytest.raises(ValueError, match="loss_linearisation"):
        DlmpConfig(loss_linearisation="quadratic")
    with pytest.raises(ValueError, match="unknown option"):
        dlmp_v0.parallel_env(n_agents=3)
    assert DlmpConfig().n_prosumers == 32 and DlmpConfig(scenario="teaching4").agent_buses == (2, 3)
    assert DlmpConfig(n_prosumers=40).agent_buses[32] == 1  # cycles over the load buses


def test_render_shows_the_feeder():
    env = dlmp_v0.parallel_env(scenario="ieee33-congested", render_mode="ansi", seed=0)
    env.reset(seed=0)
    env.step({a: np.zeros(2) for a in env.agents})
    text = env.render()
    assert len(text.splitlines()) == 2 + 33 + 1 and "DLMP" in text
    env2 = dlmp_v0.parallel_env(render_mode="rgb_array", seed=0)
    env2.reset(seed=0)
    img = env2.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.std() > 0


def test_realised_loss_model_equals_linearise_losses():
    env = dlmp_v0.parallel_env(scenario="ieee33-congested")
    env.reset(seed=1)
    env.step({a: np.zeros(2) for a in env.agents})
    net = env.network
    fast = env.core.grid.loss_model(net)
    ref = linearise_losses(env.feeder, net.flows_kw, net.flows_kvar, net.voltages)
    np.testing.assert_allclose(fast.g, ref.g, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(fast.h, ref.h, rtol=1e-13, atol=1e-16)
    assert fast.const_kw == pytest.approx(ref.const_kw, rel=1e-13) and fast.at_kw == pytest.approx(ref.at_kw, rel=1e-13)
