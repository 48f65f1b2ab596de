"""Baseline agents, rollout loop, best responses and the VecEnv adapter."""
import numpy as np
import pytest
from gymnasium import spaces

from p2penv.agents.baselines import CapacityWithholdingAgent, FixedMarkupAgent, RandomAgent, TruthfulAgent
from p2penv.agents.best_response import MyopicBestResponse
from p2penv.agents.rollout import Assigned, CompetitivePolicy, rollout
from p2penv.agents.vec_adapter import MarketVecEnv, padded_obs
from p2penv import auction_v0
from p2penv.diagnostics.nash import action_grid, iterated_best_response, stage_nash_conv


def _env(**kw):
    return auction_v0.parallel_env(n_prosumers=kw.pop("n", 4), seed=0, **kw)


def _obs(env):
    o, _ = env.reset(seed=0)
    return np.stack([o[a] for a in env.agents])


def test_markup_and_withholding_change_the_truthful_action():
    env = _env()
    O = _obs(env)
    t = TruthfulAgent(env.config).act_batch(O)
    m = FixedMarkupAgent(env.config, 0.05).act_batch(O)
    w = CapacityWithholdingAgent(env.config, 0.5).act_batch(O)
    for a in (t, m, w):
        assert a.shape == (4, 2) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    span = env.config.price_cap - env.config.price_floor
    # sellers ask +0.05 $/kWh more, buyers bid 0.05 less: |price shift| = 0.05 in $ for every agent
    assert np.allclose(np.abs(m[:, 0] - t[:, 0]) * span / 2, 0.05, atol=1e-5)
    assert np.all(w[:, 1] <= 0.0 + 1e-6) and np.all(w[:, 1] <= t[:, 1])
    assert np.array_equal(FixedMarkupAgent(env.config, 0.0).act(O[0]), TruthfulAgent(env.config).act(O[0]))


def test_withhold_out_of_range_names_the_field():
    with pytest.raises(ValueError, match="withhold"):
        CapacityWithholdingAgent(_env().config, 1.5)


def test_rollout_plain_loop_is_deterministic_and_records_steps():
    env = _env()
    a = rollout(env, Assigned({n: RandomAgent(1) for n in env.possible_agents}), seed=3)[0]
    b = rollout(_env(), Assigned({n: RandomAgent(1) for n in env.possible_agents}), seed=3)[0]
    assert a.actions.shape == (24, 4, 2) and a.rewards.shape == (24, 4) and len(a.ctxs) == 24
    assert np.array_equal(a.rewards, b.rewards)
    assert np.allclose(a.rewards.sum(), a.total_profit)


def test_best_response_nash_conv_and_ibr():
    env = _env(n=3)
    tr = rollout(env, CompetitivePolicy(), seed=0)[0]
    ctx, joint = tr.ctxs[12], tr.actions[12]
    g = stage_nash_conv(joint, ctx, env.rules, method="grid")
    assert np.all(g.gains >= 0) and g.nash_conv == pytest.approx(g.gains.sum())
    # the best actions really earn the claimed gain
    for i in range(3):
        dev = joint.copy()
        dev[i] = g.best_actions[i]
        from p2penv.market.pipeline import run_step

        r0 = run_step(joint, ctx, env.rules).settlement.reward[i]
        r1 = run_step(dev, ctx, env.rules).settlement.reward[i]
        assert r1 - r0 == pytest.approx(g.gains[i], abs=1e-12)
    res = iterated_best_response(ctx, env.rules, joint, max_iter=10, method="grid", tol=1e-9)
    assert res.nash_conv.min() <= res.nash_conv[0] and np.isfinite(res.nash_conv).all()
    assert stage_nash_conv(res.profile, ctx, env.rules, method="grid").nash_conv == pytest.approx(res.nash_conv.min())
    ex = stage_nash_conv(joint, ctx, env.rules, method="exact", n_grid=41)
    assert ex.nash_conv >= g.nash_conv - 1e-9  # exact prices find at least what the grid finds
    with pytest.raises(ValueError, match="method"):
        stage_nash_conv(joint, ctx, env.rules, method="bogus")
    assert action_grid(5, 3).shape == (15, 2)


def test_myopic_best_response_improves_on_truthful_in_stage_terms():
    env = _env(n=3)
    tr = rollout(env, MyopicBestResponse(env.config), seed=0)[0]
    assert tr.actions.shape == (24, 3, 2) and np.isfinite(tr.rewards).all()


class _ShortObs(auction_v0.AuctionEnv):
    """prosumer_0 sees only its first 7 observation fields (different observation size)."""

    def observation_space(self, agent):
        return spaces.Box(-1, 1, (7,), np.float32) if agent == "prosumer_0" else super().observation_space(agent)

    def _cut(self, obs):
        return {a: (o[:7] if a == "prosumer_0" else o) for a, o in obs.items()}

    def reset(self, seed=None, options=None):
        o, i = super().reset(seed, options)
        return self._cut(o), i

    def step(self, actions):
        o, *rest = super().step(actions)
        return (self._cut(o), *rest)


def test_vec_adapter_pads_unequal_observations_and_resets():
    v = MarketVecEnv([lambda: _ShortObs(n_prosumers=3, seed=0)] * 2)
    assert v.pad and v.observation_space.shape == (13,) and v.num_envs == 6
    v.seed(0)
    o = v.reset()
    # 12 fields + the size feature; prosumer_0's 7 fields are zero-padded and its size is 7/12
    assert o.shape == (6, 13) and o[0, 12] == pytest.approx(7 / 12) and np.all(o[0, 7:12] == 0)
    for t in range(24):
        o, r, d, info = v.step(np.zeros((6, 2), np.float32))
    assert d.all() and "terminal_observation" in info[0] and info[0]["TimeLimit.truncated"]
    assert np.array_equal(padded_obs(np.ones(3, np.float32), 4), np.array([1, 1, 1, 0, 0.75], np.float32))


def test_vec_adapter_fixed_agents_need_a_policy():
    with pytest.raises(ValueError, match="others"):
        MarketVecEnv([lambda: _env(n=3)], learners=["prosumer_0"])
    with pytest.raises(ValueError, match="learners"):
        MarketVecEnv([lambda: _env(n=3)], learners=["nobody"])
