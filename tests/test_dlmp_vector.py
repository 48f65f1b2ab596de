"""dlmp_v0.vector_env and copies of every env: equivalence with the single env, pickle, deepcopy."""
import copy
import pickle

import numpy as np
import pytest

from p2penv import auction_v0, dlmp_v0
from p2penv.envs.auction_core import INFO_NAMES
from p2penv.envs.dlmp_core import DLMP_INFO_NAMES


@pytest.mark.parametrize("scenario", ["ieee33-congested", "teaching4"])
def test_dlmp_vector_env_i_equals_single_env_seeded_seed_plus_i(scenario):
    e, seed, t_max = 2, 4, 3
    vec = dlmp_v0.vector_env(e, scenario=scenario, max_cycles=t_max)
    n = len(vec.possible_agents)
    acts = np.random.default_rng(1).uniform(-1.2, 1.2, (2 * t_max, e, n, 2))
    vec.reset(seed=seed)
    rec = [vec.step(a) for a in acts]
    for i in range(e):
        env = dlmp_v0.parallel_env(scenario=scenario, max_cycles=t_max)
        env.reset(seed=seed + i)
        for k in range(2 * t_max):
            if not env.agents:
                env.reset()
            names = env.agents
            obs, rew, _, _, info = env.step({a: acts[k, i, j] for j, a in enumerate(names)})
            o_v, r_v, _, _, info_v = rec[k]
            np.testing.assert_array_equal([rew[a] for a in names], r_v[i])
            for f in INFO_NAMES + DLMP_INFO_NAMES:
                np.testing.assert_array_equal([info[a][f] for a in names], info_v[f][i], err_msg=f)
            for f, v in info[names[0]]["network"].items():
                assert v == info_v["network"][f][i], f
            final = np.stack([obs[a] for a in names])
            np.testing.assert_array_equal(final, info_v["final_obs"][i] if not env.agents else o_v[i])


def _continue(env, steps, rng_seed):
    rng = np.random.default_rng(rng_seed)
    out = []
    for _ in range(steps):
        if hasattr(env, "num_envs"):
            a = rng.uniform(-1, 1, env.action_space.shape)
            obs, r, *_ = env.step(a)
            out += [obs, r]
        else:
            obs, r, *_ = env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
            out += [np.stack(list(obs.values())), np.array(list(r.values()))]
    return out


@pytest.mark.parametrize("make", [
    lambda: auction_v0.parallel_env(n_prosumers=5),
    lambda: auction_v0.vector_env(3, n_prosumers=5),
    lambda: dlmp_v0.parallel_env(scenario="ieee33-congested"),
    lambda: dlmp_v0.vector_env(2, scenario="ieee33-undervoltage"),
])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_continues_exactly_like_the_original(make, how):
    env = make()
    env.reset(seed=3)
    _continue(env, 4, 0)  # mid-episode, warm LP bases
    twin = pickle.loads(pickle.dumps(env)) if how == "pickle" else copy.deepcopy(env)
    a, b = _continue(env, 6, 1), _continue(twin, 6, 1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
