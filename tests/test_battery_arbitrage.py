"""Price-taker battery arbitrage with a known optimum (p2penv.generators.arbitrage, diagnostics.arbitrage).

The battery's reward of step t is exactly ``lambda_t (x_t - c_t) - degradation_cost (c_t + x_t)`` ($),
with c_t, x_t the kWh charged and discharged at its terminals: its orders never meet a counterparty
(the other agent is inert) and settle with the backstop, which buys and sells at lambda_t.
"""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import p2penv
from p2penv.diagnostics.arbitrage import arbitrage_optimum, replay_actions, storage_actions
from p2penv.envs.core_kernels import O_BUY_VALUE, O_HOUR_COS, O_HOUR_SIN, N_OBS
from p2penv.generators.arbitrage import ArbitrageMarket

TOU, WHOLESALE = "auction_v0/arbitrage_tou-v0", "auction_v0/arbitrage_wholesale-v0"
IDS = (TOU, WHOLESALE)
OPT = {sid: arbitrage_optimum(sid) for sid in IDS}
O_SOC = N_OBS  # STORAGE_OBS_FIELDS come after the auction_v0 fields: soc, charge_max, discharge_max


def _play(env, acts):
    """Rewards (T, N) and infos of an episode of the parallel env under joint actions (T, N, 3)."""
    rew, infos = [], []
    env.reset(seed=0)
    for a in acts:
        _, r, _, _, info = env.step({name: a[j] for j, name in enumerate(env.possible_agents)})
        rew.append([r[name] for name in env.possible_agents])
        infos.append(info)
    assert not env.agents
    return np.array(rew), infos


def test_tou_optimum_by_hand():
    """The peak (4 h x 2.5 kW = 10 kWh) can take the whole usable SOC range 9 -> 1 kWh (7.6 kWh delivered);
    the shoulder buys and sells at one price, which losses make useless. So the battery fills from 5 to
    9 kWh off-peak at night, empties into the peak and refills 1 -> 5 kWh off-peak at 22-23 h: 8 kWh of
    SOC bought at (0.18 + 0.01) / 0.95 = 0.20 $ each and sold at (0.38 - 0.01) x 0.95 = 0.3515 $ each,
    8 x 0.1515 = 1.212 $ per episode. (Night charging is spread over the off-peak hours in any way: only
    the profit is unique.)"""
    opt = OPT[TOU]
    assert opt.profit == pytest.approx(1.212, abs=1e-6)
    np.testing.assert_allclose(opt.soc_kwh[[0, 17, 21, 24]], [5.0, 9.0, 1.0, 5.0], atol=1e-6)
    assert np.all(np.abs(opt.battery_kw[7:17]) < 1e-6) and abs(opt.battery_kw[21]) < 1e-6
    assert np.all(opt.battery_kw[17:21] < 0) and np.all(opt.battery_kw[:7] >= -1e-9)


def test_wholesale_optimum_is_two_cycles():
    """Noise-free June wholesale day: discharge into the 8 h peak, refill in the 13 h solar dip, discharge
    into the 19 h peak, back to 5 kWh at night. Pinned LP value."""
    opt = OPT[WHOLESALE]
    assert opt.profit == pytest.approx(0.2340891547, abs=1e-6)
    np.testing.assert_allclose(opt.soc_kwh[[0, 10, 15, 21, 24]], [5.0, 1.0, 9.0, 2.625, 5.0], atol=1e-6)


@pytest.mark.parametrize("sid", IDS)
def test_optimum_is_feasible_and_its_profit_is_the_schedules(sid):
    opt = OPT[sid]
    s = opt.storage
    assert np.all(opt.soc_kwh >= s.soc_min_kwh - 1e-9) and np.all(opt.soc_kwh <= s.soc_max_kwh + 1e-9)
    assert np.all(opt.battery_kw <= s.charge_kw + 1e-9) and np.all(-opt.battery_kw <= s.discharge_kw + 1e-9)
    assert opt.soc_kwh[-1] == pytest.approx(opt.soc_kwh[0], abs=1e-9)
    c, x = opt.charge_kwh, opt.discharge_kwh
    assert opt.profit == pytest.approx(float((opt.price * (x - c) - 0.01 * (c + x)).sum()), abs=1e-12)
    np.testing.assert_array_equal(opt.price, p2penv.get_spec(sid).config["generator"].price(24, 1.0, 0.0))


@pytest.mark.parametrize("sid", IDS)
def test_replaying_the_lp_schedule_earns_the_lp_profit(sid):
    opt = OPT[sid]
    env = p2penv.make(sid)
    rew, infos = _play(env, replay_actions(opt, 2))
    assert rew[:, 0].sum() == pytest.approx(opt.profit, abs=1e-6)
    np.testing.assert_allclose(rew[:, 0], opt.step_profit, atol=1e-9)
    assert np.all(rew[:, 1] == 0.0)
    b = np.array([i["prosumer_0"]["charge_kw"] - i["prosumer_0"]["discharge_kw"] for i in infos])
    np.testing.assert_allclose(b, opt.battery_kw, atol=1e-9)
    soc = np.array([i["prosumer_0"]["soc_kwh"] for i in infos])
    np.testing.assert_allclose(soc, opt.soc_kwh[1:], atol=1e-9)
    assert soc[-1] == pytest.approx(5.0, abs=1e-9)


@pytest.mark.parametrize("sid", IDS)
def test_replay_in_the_vector_env_earns_the_lp_profit_in_every_market(sid):
    opt = OPT[sid]
    e = 3
    vec = p2penv.make_vector(sid, e)
    vec.reset(seed=5)
    acts = replay_actions(opt, 2)
    total = np.zeros((e, 2))
    for t in range(24):
        _, r, _, trunc, info = vec.step(np.broadcast_to(acts[t], (e, 2, 3)))
        total += r
    assert np.all(trunc)
    np.testing.assert_allclose(total[:, 0], opt.profit, atol=1e-6)
    assert np.all(total[:, 1] == 0.0)
    np.testing.assert_allclose(info["soc_kwh"][:, 0], 5.0, atol=1e-9)


@pytest.mark.parametrize("sid", IDS)
def test_idle_earns_nothing_and_keeps_the_soc(sid):
    rew, infos = _play(p2penv.make(sid), np.zeros((24, 2, 3)))
    assert np.all(rew == 0.0)
    assert all(i["prosumer_0"]["soc_kwh"] == 5.0 and i["prosumer_0"]["soc_end_narrowing_kw"] >= 0 for i in infos)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), sid=st.sampled_from(IDS), noise=st.sampled_from([0.05, 0.3, 2.0]))
def test_no_policy_beats_the_lp(seed, sid, noise):
    """32 markets at once: the LP's actions plus noise (near-optimal policies), and uniform random ones."""
    opt, e = OPT[sid], 32
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1.0, 1.0, (24, e, 2, 3))
    acts[:, : e // 2, 0, 2] = np.clip(storage_actions(opt)[:, None] + noise * rng.standard_normal((24, e // 2)), -1, 1)
    vec = p2penv.make_vector(sid, e)
    vec.reset(seed=seed)
    total = np.zeros(e)
    for t in range(24):
        _, r, _, _, info = vec.step(acts[t])
        total += r[:, 0]
    assert np.all(total <= opt.profit + 1e-9)
    np.testing.assert_allclose(info["soc_kwh"][:, 0], 5.0, atol=1e-9)


@pytest.mark.parametrize("sid", IDS)
def test_reward_is_price_times_discharge_minus_charge_minus_degradation(sid):
    """r_t = lambda_t (x_t - c_t) - 0.01 (c_t + x_t), c_t = charge_kw dt, x_t = discharge_kw dt (dt = 1 h)."""
    lam = OPT[sid].price
    acts = np.random.default_rng(1).uniform(-1.2, 1.2, (24, 2, 3))
    rew, infos = _play(p2penv.make(sid), acts)
    for t, info in enumerate(infos):
        i = info["prosumer_0"]
        c, x = i["charge_kw"] * 1.0, i["discharge_kw"] * 1.0
        assert rew[t, 0] == pytest.approx(lam[t] * (x - c) - 0.01 * (c + x), abs=1e-12)
        assert i["matched_kwh"] == 0.0 and i["market_cash"] == 0.0
        assert i["backstop_export_kwh"] - i["backstop_import_kwh"] == pytest.approx(x - c, abs=1e-12)
        assert info["prosumer_1"]["order_kwh"] == 0.0 and rew[t, 1] == 0.0


@pytest.mark.parametrize("sid", IDS)
def test_observation_carries_hour_price_and_soc(sid):
    """hour_sin/cos of the step's start hour, this step's price in buy_value, SOC as 2 SOC / capacity - 1."""
    env = p2penv.make(sid)
    obs, _ = env.reset(seed=0)
    lam = OPT[sid].price
    for t in range(24):
        o = obs["prosumer_0"]
        assert o[O_HOUR_SIN] == pytest.approx(np.sin(2 * np.pi * t / 24), abs=1e-6)
        assert o[O_HOUR_COS] == pytest.approx(np.cos(2 * np.pi * t / 24), abs=1e-6)
        assert o[O_BUY_VALUE] == pytest.approx(2 * lam[t] / 0.40 - 1, abs=1e-6)
        soc = 5.0 if t == 0 else info["prosumer_0"]["soc_kwh"]
        assert o[O_SOC] == pytest.approx(2 * soc / 10.0 - 1, abs=1e-6)
        obs, _, _, _, info = env.step({a: np.array([0.0, 0.0, 0.7 if t % 3 else -0.9]) for a in env.agents})


def test_deterministic_whatever_the_seed():
    """The scenario draws nothing: every seed gives the same episode, and the optimum is reproducible."""
    acts = np.random.default_rng(3).uniform(-1, 1, (24, 2, 3))
    r0, _ = _play(p2penv.make(WHOLESALE), acts)
    r1, _ = _play(p2penv.make(WHOLESALE, seed=99), acts)
    np.testing.assert_array_equal(r0, r1)
    again = arbitrage_optimum(WHOLESALE, seed=7)
    np.testing.assert_array_equal(again.battery_kw, OPT[WHOLESALE].battery_kw)
    assert again.profit == OPT[WHOLESALE].profit


class _Busy(ArbitrageMarket):
    """The arbitrage battery with a 1 kW load next door: no longer a lone price taker."""

    def __call__(self, n, horizon, dt_h, start_hour, rng):
        f = super().__call__(n, horizon, dt_h, start_hour, rng)
        return dataclasses.replace(f, demand_kw=f.demand_kw + 1.0)


class _Spread(ArbitrageMarket):
    """Selling at 0.05 $/kWh below the buying price."""

    def prices(self, horizon, dt_h, start_hour):
        p = super().prices(horizon, dt_h, start_hour)
        return dataclasses.replace(p, feed_in=p.feed_in - 0.05)


def test_optimum_needs_a_price_taker_scenario():
    with pytest.raises(ValueError, match="needs batteries and a prices"):
        arbitrage_optimum("auction_v0/household6-v0")
    with pytest.raises(ValueError, match="exactly one battery and no demand or DER"):
        arbitrage_optimum(dict(n_prosumers=2, generator=_Busy()))
    with pytest.raises(ValueError, match="a price taker needs retail == feed_in"):
        arbitrage_optimum(dict(n_prosumers=2, generator=_Spread()))
    with pytest.raises(ValueError, match="needs an auction_v0 scenario"):
        arbitrage_optimum("dlmp_v0/teaching4-v0")
    with pytest.raises(ValueError, match="price_model must be one of"):
        ArbitrageMarket("spot")


def test_pettingzoo_parallel_api_with_a_forced_last_step():
    """The narrowed interval can exclude idle (charge_max or discharge_max < 0): observations stay in the box."""
    from pettingzoo.test import parallel_api_test

    parallel_api_test(p2penv.make(WHOLESALE), num_cycles=30)
