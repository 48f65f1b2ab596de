"""auction_v0.vector_env: equivalence with the single env, autoreset, seeding, bad input."""
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from p2penv import auction_v0
from p2penv.envs.auction_core import INFO_NAMES
from p2penv.market.mechanisms import MECHANISMS


def _actions(rng, steps, e, n):
    a = rng.uniform(-1.2, 1.2, (steps, e, n, 2))  # some outside [-1, 1]: clipping is part of the step
    return a


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_vector_env_i_equals_single_env_seeded_seed_plus_i(mechanism):
    e, n, seed, t_max = 3, 5, 11, 6
    cfg = dict(n_prosumers=n, mechanism=mechanism, max_cycles=t_max, rule="walrasian", unmatched="curtail")
    vec = auction_v0.vector_env(e, **cfg)
    acts = _actions(np.random.default_rng(0), 2 * t_max, e, n)  # two episodes: autoreset continues each rng
    obs_v, _ = vec.reset(seed=seed)
    rec_v = [(obs_v, None, None)]
    for k in range(2 * t_max):
        obs_v, r, term, trunc, info = vec.step(acts[k])
        rec_v.append((obs_v, r, info))
    for i in range(e):
        env = auction_v0.parallel_env(**cfg)
        obs, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.agents]), rec_v[0][0][i])
        for k in range(2 * t_max):
            if not env.agents:
                obs, _ = env.reset()
            names = env.agents
            obs, rew, _, _, info = env.step({a: acts[k, i, j] for j, a in enumerate(names)})
            o_v, r_v, info_v = rec_v[k + 1]
            np.testing.assert_array_equal([rew[a] for a in names], r_v[i])
            for f in INFO_NAMES:
                np.testing.assert_array_equal([info[a][f] for a in names], info_v[f][i], err_msg=f)
            m = info[names[0]]["market"]
            for f in ("clearing_price", "volume_kwh", "welfare", "operator_surplus"):
                np.testing.assert_array_equal(m[f], info_v["market"][f][i], err_msg=f)
            if env.agents:  # mid-episode: same next observation; at the end the vector env has reset
                np.testing.assert_array_equal(np.stack([obs[a] for a in names]), o_v[i])
            else:
                np.testing.assert_array_equal(np.stack([obs[a] for a in names]), info_v["final_obs"][i])


def test_same_step_autoreset_returns_next_episode_and_keeps_final_obs():
    vec = auction_v0.vector_env(2, n_prosumers=3, max_cycles=2)
    obs0, _ = vec.reset(seed=5)
    a = np.zeros((2, 3, 2))
    _, _, term, trunc, info = vec.step(a)
    assert not trunc.any() and not term.any() and "final_obs" not in info
    obs, _, term, trunc, info = vec.step(a)
    assert trunc.all() and not term.any()
    assert info["_final_obs"].tolist() == [True, True]
    assert info["final_obs"].shape == (2, 3, 12) and info["final_state"].shape == (2, 3 * 12 + 1)
    assert info["final_state"][0, -1] == 1.0  # progress t / T at the end
    # the returned obs is the first of a *new* episode: the hour is back at the start
    hour_cos = 6
    assert np.all(obs[:, :, hour_cos] == obs0[:, :, hour_cos])
    assert not np.array_equal(obs, obs0)  # a new scenario draw, not a replay
    assert vec.state()[0, -1] == 0.0


def test_next_step_autoreset_ignores_actions_and_returns_zero_rewards():
    vec = auction_v0.vector_env(2, n_prosumers=3, max_cycles=1, autoreset_mode=AutoresetMode.NEXT_STEP)
    vec.reset(seed=1)
    final_obs, r, _, trunc, info = vec.step(np.zeros((2, 3, 2)))
    assert trunc.all() and "final_obs" not in info
    obs, r, term, trunc, info = vec.step(np.full((2, 3, 2), np.nan))  # ignored: no validation error
    assert np.all(r == 0) and not trunc.any() and not term.any() and info == {}
    ref = auction_v0.vector_env(2, n_prosumers=3, max_cycles=1)
    ref.reset(seed=1)
    ref_obs, *_ = ref.step(np.zeros((2, 3, 2)))  # SAME_STEP: the next episode's first obs
    np.testing.assert_array_equal(obs, ref_obs)


def test_disabled_autoreset_requires_reset():
    vec = auction_v0.vector_env(2, n_prosumers=3, max_cycles=1, autoreset_mode="Disabled")
    vec.reset(seed=1)
    vec.step(np.zeros((2, 3, 2)))
    with pytest.raises(RuntimeError, match="call reset"):
        vec.step(np.zeros((2, 3, 2)))


def test_same_seed_same_trajectory_bit_for_bit():
    def run():
        vec = auction_v0.vector_env(4, n_prosumers=4, max_cycles=5)
        obs, _ = vec.reset(seed=3)
        acts = _actions(np.random.default_rng(9), 7, 4, 4)
        out = [obs]
        for a in acts:
            obs, r, *_ = vec.step(a)
            out += [obs, r]
        return out

    for x, y in zip(run(), run()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bad, msg", [
    ("nan", r"env 2, agent 'prosumer_1': action\[0\] \(price\) is nan"),
    ("inf", r"env 2, agent 'prosumer_1': action\[0\] \(price\) is inf"),
    ("shape", r"expected shape \(num_envs, agents, 2\) = \(3, 2, 2\), got \(3, 2\)"),
    ("dtype", r"expected real numbers, got dtype <U"),
    ("complex", r"expected real numbers, got dtype complex128"),
])
def test_bad_actions_name_env_agent_and_field(bad, msg):
    vec = auction_v0.vector_env(3, n_prosumers=2)
    vec.reset(seed=0)
    a = np.zeros((3, 2, 2))
    if bad in ("nan", "inf"):
        a[2, 1, 0] = float(bad)
    elif bad == "shape":
        a = np.zeros((3, 2))
    elif bad == "dtype":
        a = a.astype(str)
    else:
        a = a.astype(complex)
    with pytest.raises(ValueError, match=msg):
        vec.step(a)


def test_spaces_and_state_shapes():
    vec = auction_v0.vector_env(5, n_prosumers=4)
    obs, info = vec.reset(seed=0)
    assert vec.single_observation_space.shape == (12,) and vec.observation_space.shape == (5, 4, 12)
    assert vec.single_action_space.shape == (2,) and vec.action_space.shape == (5, 4, 2)
    assert obs.shape == (5, 4, 12) and obs.dtype == np.float32 and vec.observation_space.contains(obs)
    assert vec.state().shape == (5, 4 * 12 + 1) == vec.state_space.shape
    obs, r, term, trunc, info = vec.step(vec.action_space.sample())
    assert r.shape == term.shape == trunc.shape == (5, 4)
    assert all(info[f].shape == (5, 4) for f in INFO_NAMES)
    assert info["market"]["clearing_price"].shape == (5,)


def test_step_before_reset_and_bad_num_envs():
    vec = auction_v0.vector_env(2, n_prosumers=2)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((2, 2, 2)))
    with pytest.raises(RuntimeError, match="reset"):
        vec.state()
    with pytest.raises(ValueError, match="num_envs"):
        auction_v0.vector_env(0)
