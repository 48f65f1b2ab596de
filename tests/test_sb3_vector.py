"""agents.sb3_vector.SB3VectorEnv: SB3 VecEnv over one batched vector env (shapes, seeding, rewards,
episode ends, fixed agents, VecMonitor, PPO, dlmp_v0)."""
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecCheckNan, VecMonitor

from p2penv.agents.baselines import TruthfulAgent
from p2penv.agents.sb3_vector import SB3VectorEnv, make_sb3_vector_env
from p2penv import auction_v0, dlmp_v0
from p2penv.envs.config import MarketConfig

E, N, T = 3, 4, 5
CFG = dict(n_prosumers=N, max_cycles=T)


def _acts(rng, slots, steps):
    return rng.uniform(-1, 1, (steps, slots, 2)).astype(np.float32)


def test_shapes_spaces_and_dtypes():
    venv = make_sb3_vector_env("auction_v0", E, seed=0, **CFG)
    vec = venv.vector_env
    assert venv.num_envs == E * N
    assert venv.observation_space == vec.single_observation_space
    assert venv.action_space == vec.single_action_space
    obs = venv.reset()
    f = vec.single_observation_space.shape[0]
    assert obs.shape == (E * N, f) and obs.dtype == np.float32
    assert all(venv.observation_space.contains(o) for o in obs)
    acts = _acts(np.random.default_rng(0), E * N, 1)[0]
    obs, rew, done, infos = venv.step(acts)
    assert obs.shape == (E * N, f) and obs.dtype == np.float32
    assert rew.shape == (E * N,) and rew.dtype == np.float32
    assert done.shape == (E * N,) and done.dtype == bool and not done.any()
    assert isinstance(infos, list) and len(infos) == E * N and all(i == {} for i in infos)
    assert set(venv.last_infos["market"]) >= {"clearing_price", "volume_kwh"}
    assert len(venv.reset_infos) == E * N
    # SB3 helpers
    assert venv.get_attr("num_envs") == [E] * (E * N)
    assert venv.get_attr("max_cycles", indices=[0, 5]) == [T, T]
    assert venv.get_attr("render_mode") == [None] * (E * N)
    assert venv.env_is_wrapped(VecMonitor) == [False] * (E * N)
    assert venv.env_method("state", indices=[1])[0].shape == vec.state_space.shape
    venv.set_attr("tag", 7)
    assert vec.tag == 7
    with pytest.raises(ValueError, match="every slot"):
        venv.set_attr("tag", 8, indices=[0])
    venv.close()


def test_vec_check_nan_and_step_before_reset():
    venv = make_sb3_vector_env(auction_v0, 2, seed=1, **CFG)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((venv.num_envs, 2), np.float32))
    checked = VecCheckNan(venv, raise_exception=True)
    checked.reset()
    for a in _acts(np.random.default_rng(1), venv.num_envs, 2 * T):
        checked.step(a)


def test_seeding_is_deterministic_and_follows_vector_env():
    def rollout(seed):
        venv = make_sb3_vector_env("auction_v0", E, seed=seed, **CFG)
        out = [venv.reset()]
        for a in _acts(np.random.default_rng(2), venv.num_envs, T + 2):
            out.append(venv.step(a)[0])
        return np.stack(out)

    a, b, c = rollout(5), rollout(5), rollout(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # market e is seeded seed + e, as in the vector env (and the single env)
    vec = auction_v0.vector_env(E, **CFG)
    obs, _ = vec.reset(seed=5)
    np.testing.assert_array_equal(a[0], obs.reshape(E * N, -1))
    # VecEnv.seed() applies to the next reset only, then markets continue their generators
    venv = SB3VectorEnv(auction_v0.vector_env(E, **CFG))
    assert venv.seed(5)[:2] == [5, 6]
    np.testing.assert_array_equal(venv.reset(), a[0])
    assert not np.array_equal(venv.reset(), a[0])


def test_slot_rewards_obs_and_terminal_observation_match_vector_env():
    venv = make_sb3_vector_env("auction_v0", E, seed=3, **CFG)
    vec = auction_v0.vector_env(E, **CFG)
    obs_s = venv.reset()
    obs_v, _ = vec.reset(seed=3)
    np.testing.assert_array_equal(obs_s, obs_v.reshape(E * N, -1))
    rng = np.random.default_rng(3)
    returns = np.zeros((E, N))
    ends = 0
    for k in range(2 * T + 1):
        a = _acts(rng, E * N, 1)[0]
        obs_s, rew_s, done, infos = venv.step(a)
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(a.reshape(E, N, 2))
        returns += rew_v
        for e in range(E):
            for i in range(N):
                assert rew_s[e * N + i] == np.float32(rew_v[e, i])  # slot (e, i) = agent i of market e
        np.testing.assert_array_equal(obs_s, obs_v.reshape(E * N, -1))
        np.testing.assert_array_equal(done, (term_v | trunc_v).reshape(-1))
        if done.any():
            ends += 1
            assert done.all() and (k + 1) % T == 0
            final = info_v["final_obs"].reshape(E * N, -1)
            for s, inf in enumerate(infos):
                np.testing.assert_array_equal(inf["terminal_observation"], final[s])
                assert inf["TimeLimit.truncated"] is True
                assert inf["episode"]["l"] == T
                assert inf["episode"]["r"] == pytest.approx(returns.reshape(-1)[s], rel=1e-5, abs=1e-5)
            returns[:] = 0.0
        else:
            assert all(inf == {} for inf in infos)
    assert ends == 2


def test_vec_monitor_wraps_and_agrees_with_episode_info():
    venv = make_sb3_vector_env("auction_v0", 2, seed=0, episode_info=False, **CFG)
    mon = VecMonitor(venv)
    mon.reset()
    infos = None
    for a in _acts(np.random.default_rng(4), venv.num_envs, T):
        _, _, done, infos = mon.step(a)
    assert done.all()
    assert all(inf["episode"]["l"] == T for inf in infos)
    ours = make_sb3_vector_env("auction_v0", 2, seed=0, **CFG)
    ours.reset()
    for a in _acts(np.random.default_rng(4), ours.num_envs, T):
        _, _, _, infos2 = ours.step(a)
    for i1, i2 in zip(infos, infos2):
        assert i1["episode"]["r"] == pytest.approx(i2["episode"]["r"], rel=1e-5, abs=1e-5)


def test_fixed_agents_act_through_others():
    learners = ["prosumer_0", "prosumer_2"]
    truthful = TruthfulAgent(MarketConfig(**CFG))
    venv = make_sb3_vector_env("auction_v0", E, seed=7, learners=learners, others=truthful, **CFG)
    assert venv.num_envs == E * len(learners)
    vec = auction_v0.vector_env(E, **CFG)
    obs_v, _ = vec.reset(seed=7)
    obs_s = venv.reset()
    np.testing.assert_array_equal(obs_s, obs_v[:, [0, 2]].reshape(-1, obs_v.shape[-1]))
    rng = np.random.default_rng(5)
    for _ in range(T):
        a = _acts(rng, venv.num_envs, 1)[0]
        full = np.empty((E, N, 2))
        full[:, [0, 2]] = a.reshape(E, 2, 2)
        full[:, [1, 3]] = truthful.act_batch(obs_v[:, [1, 3]].reshape(-1, obs_v.shape[-1])).reshape(E, 2, 2)
        obs_v, rew_v, _, _, _ = vec.step(full)
        obs_s, rew_s, _, _ = venv.step(a)
        np.testing.assert_array_equal(rew_s, rew_v[:, [0, 2]].reshape(-1).astype(np.float32))
        np.testing.assert_array_equal(obs_s, obs_v[:, [0, 2]].reshape(-1, obs_v.shape[-1]))
    with pytest.raises(ValueError, match="others"):
        make_sb3_vector_env("auction_v0", 1, learners=learners, **CFG)
    with pytest.raises(ValueError, match="learners"):
        make_sb3_vector_env("auction_v0", 1, learners=["nobody"], others=truthful, **CFG)


class _ColumnProfile:
    """A fixed joint profile that knows each column's agent: agent i asks -1 + i / 10 (act_vector)."""

    def act_vector(self, obs):
        e, n, _ = obs.shape
        out = np.zeros((e, n, 2))
        out[..., 0] = -1.0 + np.arange(n) / 10.0
        return out


def test_fixed_agents_act_through_act_vector_by_column():
    learners = ["prosumer_0", "prosumer_2"]
    venv = make_sb3_vector_env("auction_v0", E, seed=3, learners=learners, others=_ColumnProfile(), **CFG)
    vec = auction_v0.vector_env(E, **CFG)
    obs_v, _ = vec.reset(seed=3)
    venv.reset()
    rng = np.random.default_rng(1)
    for _ in range(T):
        a = _acts(rng, venv.num_envs, 1)[0]
        full = _ColumnProfile().act_vector(obs_v)
        full[:, [0, 2]] = a.reshape(E, 2, 2)
        obs_v, rew_v, _, _, _ = vec.step(full)
        _, rew_s, _, _ = venv.step(a)
        np.testing.assert_array_equal(rew_s, rew_v[:, [0, 2]].reshape(-1).astype(np.float32))
    # the rewards above match only if agents 1 and 3 played their own columns (-0.9 and -0.7)


def test_bootstrap_truncated_off_reports_truncations_as_plain_ends():
    on = make_sb3_vector_env("auction_v0", 2, seed=0, **CFG)
    off = SB3VectorEnv(auction_v0.vector_env(2, **CFG), bootstrap_truncated=False)
    off.seed(0)
    on.reset(), off.reset()
    a = np.zeros((on.num_envs, 2), np.float32)
    for _ in range(T):
        o1, r1, d1, i1 = on.step(a)
        o2, r2, d2, i2 = off.step(a)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
    assert d1.all()
    assert all(i["TimeLimit.truncated"] for i in i1)
    assert not any(i["TimeLimit.truncated"] for i in i2)
    np.testing.assert_array_equal(np.stack([i["terminal_observation"] for i in i1]),
                                  np.stack([i["terminal_observation"] for i in i2]))


def test_rejects_other_autoreset_modes_and_unknown_ids():
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VectorEnv(auction_v0.vector_env(1, autoreset_mode=AutoresetMode.NEXT_STEP, **CFG))
    with pytest.raises(ValueError, match="unknown env"):
        make_sb3_vector_env("nope_v0", 1)


def test_ppo_learns_two_rollouts():
    from stable_baselines3 import PPO

    venv = make_sb3_vector_env("auction_v0", 2, seed=0, **CFG)
    model = PPO("MlpPolicy", venv, n_steps=T, batch_size=20, n_epochs=1, seed=0, device="cpu", verbose=0,
                policy_kwargs=dict(net_arch=[16]))
    model.learn(2 * T * venv.num_envs)
    assert model.num_timesteps == 2 * T * venv.num_envs
    assert len(model.ep_info_buffer) == 2 * venv.num_envs
    assert all(ep["l"] == T for ep in model.ep_info_buffer)


def test_dlmp_vector_env():
    venv = make_sb3_vector_env(dlmp_v0, 2, seed=0, scenario="teaching4", max_cycles=3)
    vec = venv.vector_env
    n = len(vec.possible_agents)
    assert venv.num_envs == 2 * n
    obs = venv.reset()
    assert obs.shape == (2 * n, vec.single_observation_space.shape[0])
    rng = np.random.default_rng(6)
    for k in range(3):
        obs, rew, done, infos = venv.step(_acts(rng, venv.num_envs, 1)[0])
        assert np.isfinite(rew).all() and np.isfinite(obs).all()
    assert done.all() and all("terminal_observation" in i for i in infos)
    assert "network" in venv.last_infos
    from stable_baselines3 import PPO

    PPO("MlpPolicy", venv, n_steps=3, batch_size=2 * n, n_epochs=1, seed=0, device="cpu",
        policy_kwargs=dict(net_arch=[8])).learn(3 * venv.num_envs)
