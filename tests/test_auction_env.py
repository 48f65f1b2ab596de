"""auction_v0: PettingZoo conformance, input errors, physical and economic invariants, determinism."""
import numpy as np
import pytest
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test
from pettingzoo.test.state_test import test_state as pz_state_test
from pettingzoo.test.state_test import test_state_space as pz_state_space_test

from p2penv.agents.baselines import competitive_joint_action
from p2penv import auction_v0
from p2penv.envs.config import MarketConfig


def test_pettingzoo_api():
    api_test(auction_v0.env(seed=0), num_cycles=60)


def test_pettingzoo_parallel_api():
    parallel_api_test(auction_v0.parallel_env(seed=0), num_cycles=60)


def test_pettingzoo_parallel_seed():
    parallel_seed_test(lambda: auction_v0.parallel_env(), num_cycles=30)


def test_pettingzoo_max_cycles():
    max_cycles_test(auction_v0)


def test_pettingzoo_render():
    render_test(lambda render_mode=None: auction_v0.env(render_mode=render_mode, n_prosumers=3, seed=0))


def test_pettingzoo_state():
    e = auction_v0.env(seed=0)
    pz_state_space_test(e)
    pz_state_test(e, num_cycles=30)


def rollout(env, seed, policy="random"):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    trace = []
    while env.agents:
        if policy == "random":
            acts = {a: rng.uniform(-1.3, 1.3, 2) for a in env.agents}  # some outside the box
        else:
            arr, _ = competitive_joint_action(env.ctx, env.config)
            acts = {a: arr[i] for i, a in enumerate(env.agents)}
        lo, hi = env.ctx.lo_kw.copy(), env.ctx.hi_kw.copy()
        p_prev = env.p_prev.copy()
        ramp = env.fleet.ramp_kw
        pmax, viol = env.ctx.p_max_kw.copy(), env.ctx.ramp_violation_kw.copy()
        out = env.step(acts)
        trace.append((acts, out, lo, hi, p_prev, ramp, pmax, viol))
    return trace


@pytest.mark.parametrize("mechanism", ["uniform", "pay_as_bid"])
@pytest.mark.parametrize("unmatched", ["backstop", "curtail"])
def test_every_step_respects_physics_and_balances(mechanism, unmatched):
    env = auction_v0.parallel_env(n_prosumers=9, mechanism=mechanism, unmatched=unmatched)
    shed_seen = 0.0
    for seed in range(3):
        for acts, (obs, rew, term, trunc, infos), lo, hi, p_prev, ramp, pmax, viol in rollout(env, seed):
            agents = list(infos)
            g = {k: np.array([infos[a][k] for a in agents]) for k in infos[agents[0]] if k != "market"}
            p = g["dispatch_kw"]
            assert np.all(p >= lo - 1e-12) and np.all(p <= hi + 1e-12)  # capacity and ramp by construction
            assert np.all(p <= pmax + 1e-12) and np.all(p >= 0)
            assert np.all(np.abs(p - p_prev) <= ramp + viol + 1e-9)  # ramp, except reported violations
            side = g["side"]
            assert abs(g["matched_kwh"][side > 0].sum() - g["matched_kwh"][side < 0].sum()) < 1e-9
            # energy balance at every meter: net = matched + backstop (sign by side)
            net_from_market = side * g["matched_kwh"] + g["backstop_export_kwh"] - g["backstop_import_kwh"]
            np.testing.assert_allclose(g["net_kwh"], net_from_market, atol=1e-9)
            # reward = cash - cost (backstop at tariffs)
            r = np.array([rew[a] for a in agents])
            cash = g["market_cash"] + 0.05 * g["backstop_export_kwh"] - 0.30 * g["backstop_import_kwh"]
            lost = np.where(g["shed_kwh"] > 0, env.fleet.shed_values, 0.0) * g["shed_kwh"]
            np.testing.assert_allclose(r, cash - g["cost"] - lost, atol=1e-12)
            # only flexible loads shed, and only volume the market did not serve
            assert np.all(g["shed_kwh"][~np.isfinite(env.fleet.shed_values)] == 0)
            assert np.all(g["shed_kwh"] <= g["order_kwh"] - g["matched_kwh"] + 1e-12)
            assert np.all(np.isfinite(r))
            # clipping is reported exactly
            a = np.array([acts[x] for x in agents])
            np.testing.assert_allclose(g["clip_price"], np.maximum(np.abs(a[:, 0]) - 1, 0), atol=1e-12)
            np.testing.assert_allclose(g["clip_dispatch"], np.maximum(np.abs(a[:, 1]) - 1, 0), atol=1e-12)
            for o in obs.values():
                assert env.observation_space("prosumer_0").contains(o)
            shed_seen += g["shed_kwh"].sum()
    assert shed_seen > 0  # the default mix has flexible loads and random bids leave some unserved


def test_same_seed_same_trajectory_bit_for_bit():
    t1 = rollout(auction_v0.parallel_env(n_prosumers=5), 7)
    t2 = rollout(auction_v0.parallel_env(n_prosumers=5), 7)
    for (_, o1, *_), (_, o2, *_) in zip(t1, t2):
        for d1, d2 in zip(o1, o2):
            assert d1.keys() == d2.keys()
            for k in d1:
                assert np.array_equal(np.asarray(d1[k] if not isinstance(d1[k], dict) else list(d1[k].values())),
                                      np.asarray(d2[k] if not isinstance(d2[k], dict) else list(d2[k].values())))


def test_bad_actions_raise_naming_agent_and_field():
    env = auction_v0.parallel_env(n_prosumers=3, seed=0)
    env.reset()
    ok = {a: np.zeros(2) for a in env.agents}
    with pytest.raises(ValueError, match=r"'prosumer_1': action\[1\] \(dispatch\) is nan"):
        env.step({**ok, "prosumer_1": np.array([0.0, np.nan])})
    with pytest.raises(ValueError, match=r"'prosumer_2': action\[0\] \(price\) is inf"):
        env.step({**ok, "prosumer_2": np.array([np.inf, 0.0])})
    with pytest.raises(ValueError, match="'prosumer_0': action has shape"):
        env.step({**ok, "prosumer_0": np.zeros(3)})
    with pytest.raises(ValueError, match="'prosumer_2': no action"):
        env.step({"prosumer_0": np.zeros(2), "prosumer_1": np.zeros(2)})


def test_inconsistent_configs_raise():
    with pytest.raises(ValueError, match="price_floor"):
        MarketConfig(price_floor=1.0, price_cap=0.5)
    with pytest.raises(ValueError, match="mechanism"):
        MarketConfig(mechanism="nope")
    with pytest.raises(ValueError, match="unknown option"):
        auction_v0.parallel_env(n_agents=3)
    with pytest.raises(ValueError, match="feed_in_tariff"):
        MarketConfig(feed_in_tariff=0.5, retail_tariff=0.3)


def test_action_mapping_is_affine_and_documented():
    env = auction_v0.parallel_env(n_prosumers=4, seed=3, price_floor=0.0, price_cap=0.4)
    env.reset(seed=3)
    lo, hi = env.ctx.lo_kw.copy(), env.ctx.hi_kw.copy()
    u = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.5, -0.5]])
    _, _, _, _, infos = env.step({a: u[i] for i, a in enumerate(env.agents)})
    bids = [infos[a]["bid_price"] for a in env.possible_agents]
    np.testing.assert_allclose(bids, [0.0, 0.4, 0.2, 0.3])
    disp = np.array([infos[a]["dispatch_kw"] for a in env.possible_agents])
    np.testing.assert_allclose(disp, lo + np.array([0, 1, 0.5, 0.25]) * (hi - lo))


def test_competitive_baseline_dispatches_the_s1_benchmark():
    # The privileged competitive agents realise exactly the central optimum's dispatch each step,
    # and their truthful orders clear at a price inside the grid backstop band [feed-in, retail].
    from p2penv.market.competitive import competitive_equilibrium

    env = auction_v0.parallel_env(n_prosumers=8, seed=0)
    env.reset(seed=0)
    while env.agents:
        ctx = env.ctx
        arr, lam = competitive_joint_action(ctx, env.config)
        flex = np.isfinite(env.fleet.shed_values)  # flexible loads are demand-curve steps at their value
        ref = competitive_equilibrium(ctx.cost_a, ctx.cost_b, ctx.lo_kw, ctx.hi_kw, ctx.eta,
                                      fixed_demand_kwh=ctx.demand_kw[~flex].sum(), flex_kwh=ctx.demand_kw[flex],
                                      flex_value=env.fleet.shed_values[flex], retail_price=0.3, feed_in_price=0.05)
        _, _, _, _, infos = env.step({a: arr[i] for i, a in enumerate(env.agents)})
        disp = np.array([infos[a]["dispatch_kw"] for a in infos])
        np.testing.assert_allclose(disp, ref.energy_kwh, rtol=1e-6, atol=1e-7)  # float32 actions
        m = next(iter(infos.values()))["market"]
        assert m["volume_kwh"] > 0 and 0.05 <= m["clearing_price"] <= 0.30


def test_observation_fields_decode_to_the_physical_state():
    from p2penv.envs.auction_core import OBS_NAMES

    env = auction_v0.parallel_env(n_prosumers=6, seed=2, start_hour=6.0, obs_kw_scale=10.0)
    obs, _ = env.reset(seed=2)
    for _ in range(5):
        obs, *_ = env.step({a: np.zeros(2) for a in env.agents})
    o = np.stack([obs[a] for a in env.agents]).astype(np.float64)
    f, ctx = env.fleet, env.ctx
    col = {k: i for i, k in enumerate(OBS_NAMES)}
    np.testing.assert_allclose(o[:, col["demand"]], np.minimum(ctx.demand_kw / 10, 1), rtol=1e-6)
    np.testing.assert_allclose(o[:, col["feasible_hi"]], ctx.hi_kw / 10, rtol=1e-6)
    # hour 6 + 5 steps = 11:00
    np.testing.assert_allclose(o[:, col["hour_sin"]], np.sin(2 * np.pi * 11 / 24), rtol=1e-6)
    mc_lo = (2 * f.cost_a * ctx.lo_kw + f.cost_b) / f.eta  # $/kWh at the grid, mapped [0, 0.4] -> [-1, 1]
    np.testing.assert_allclose(o[:, col["mc_lo"]], np.clip(2 * mc_lo / 0.4 - 1, -1, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(o[:, col["last_price"]], 2 * env.last_price / 0.4 - 1, rtol=1e-5)


def test_fields_doc_is_generated_from_the_field_lists():
    from pathlib import Path

    from p2penv.envs.fields import fields_doc

    doc = Path(__file__).resolve().parents[1] / "docs" / "fields.md"
    assert doc.read_text() == fields_doc(), "regenerate: python -m p2penv.envs.fields > docs/fields.md"
