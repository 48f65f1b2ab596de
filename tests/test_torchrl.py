"""TorchRL wrapper (p2penv.agents.torchrl_env): specs, exact agreement with PettingZoo, a PPO smoke."""
from __future__ import annotations

import math

import numpy as np
import pytest

import torch  # the [torchrl] extra (torchrl >= 0.14)
from torchrl.envs.utils import check_env_specs, step_mdp

from p2penv.agents.torchrl_env import (
    TorchRLEnvOptions,
    TorchRLPPOConfig,
    infer_info_layout,
    make_pettingzoo_env,
    make_torchrl_env,
    train_ppo,
)
from p2penv.envs.fields import DLMP_INFO_FIELDS, INFO_FIELDS, STORAGE_INFO_FIELDS, names

torch.set_num_threads(1)

CASES = [("auction_v0", {}), ("dlmp_v0", {"scenario": "teaching4"})]


@pytest.mark.parametrize("env_id,kw", CASES)
def test_check_env_specs_and_info_layout(env_id, kw):
    env = make_torchrl_env(env_id, TorchRLEnvOptions(seed=0), **kw)
    check_env_specs(env)
    layout = env.info_layout
    expected = names(INFO_FIELDS) + (names(DLMP_INFO_FIELDS) + ("bus",) if env_id == "dlmp_v0" else ())
    assert [leaf.key for leaf in layout.agent] == list(expected)
    assert layout.shared_keys == (("market", "network") if env_id == "dlmp_v0" else ("market",))
    assert layout.dropped == ()
    assert list(env.group_map) == ["prosumer"]
    n = len(env.group_map["prosumer"])
    spec = env.observation_spec
    assert spec["prosumer", "info", "unit_price"].shape == (n,)
    assert spec["prosumer", "info", "unit_price"].dtype == torch.float64
    assert spec["market", "clearing_price"].shape == ()
    assert spec["market", "t"].dtype == torch.int64
    if env_id == "dlmp_v0":
        assert spec["market", "lp_violated"].dtype == torch.bool
        assert spec["prosumer", "info", "bus"].dtype == torch.int64


def test_scenario_id_with_batteries_per_agent_groups():
    env = make_torchrl_env("auction_v0/storage-community-v0", TorchRLEnvOptions(seed=1, group_map="per_agent"))
    check_env_specs(env)
    agents = make_pettingzoo_env("auction_v0/storage-community-v0").possible_agents
    assert env.group_map == {a: [a] for a in agents}
    keys = [leaf.key for leaf in env.info_layout.agent]
    assert keys == list(names(INFO_FIELDS) + names(STORAGE_INFO_FIELDS))
    assert env.full_action_spec[agents[0], "action"].shape == (1, 3)  # (price, dispatch, storage)


@pytest.mark.parametrize("env_id,kw", CASES)
def test_rollout_equals_pettingzoo_exactly(env_id, kw):
    """Same seed, same actions: every observation, reward, per-agent info and market number agree
    bit for bit (rewards as the wrapper's float32 cast of the env's float)."""
    seed, steps = 7, 4
    tenv = make_torchrl_env(env_id, **kw)
    pz = make_pettingzoo_env(env_id, **kw)
    agents = tenv.group_map["prosumer"]
    td = tenv.reset(seed=seed)
    obs, _ = pz.reset(seed=seed)
    np.testing.assert_array_equal(td["prosumer", "observation"].numpy(), np.stack([obs[a] for a in agents]))
    assert not td["market", "clearing_price"].item()  # zeros until the first clearing
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        act = torch.rand(td["prosumer", "observation"].shape[:1] + (2,), generator=gen) * 2 - 1
        td["prosumer", "action"] = act
        td = tenv.step(td)
        obs, rew, term, trunc, infos = pz.step({a: act[i].numpy() for i, a in enumerate(agents)})
        nxt = td["next"]
        market = infos[agents[0]]["market"]
        assert nxt["market", "clearing_price"].item() == market["clearing_price"]
        assert nxt["market", "welfare"].item() == market["welfare"]
        assert nxt["market", "volume_kwh"].item() == market["volume_kwh"]
        assert nxt["market", "t"].item() == market["t"]
        np.testing.assert_array_equal(nxt["prosumer", "reward"].squeeze(-1).numpy(),
                                      np.array([rew[a] for a in agents], dtype=np.float32))
        np.testing.assert_array_equal(nxt["prosumer", "observation"].numpy(), np.stack([obs[a] for a in agents]))
        for leaf in tenv.info_layout.agent:
            np.testing.assert_array_equal(nxt["prosumer", "info", leaf.key].numpy(),
                                          np.array([infos[a][leaf.key] for a in agents]), err_msg=leaf.key)
        if env_id == "dlmp_v0":
            net = infos[agents[0]]["network"]
            assert nxt["network", "losses_kw"].item() == net["losses_kw"]
            assert nxt["market", "lp_violated"].item() == market["lp_violated"]
        assert not nxt["done"].item() and not any(trunc.values())
        td = step_mdp(td)


def test_construction_leaves_env_as_freshly_seeded():
    """The info probe steps once; the wrapper then resets with its seed, so the first observation is that
    of a PettingZoo env reset with the same seed (and a later reset() continues the same draws)."""
    tenv = make_torchrl_env("auction_v0", TorchRLEnvOptions(seed=5))
    pz = make_pettingzoo_env("auction_v0")
    pz.reset(seed=5)
    obs, _ = pz.reset()
    td = tenv.reset()
    np.testing.assert_array_equal(td["prosumer", "observation"].numpy(), np.stack([obs[a] for a in pz.agents]))


def test_full_episode_truncates_and_market_t_counts():
    tenv = make_torchrl_env("auction_v0", TorchRLEnvOptions(seed=0), max_cycles=5)
    roll = tenv.rollout(10, break_when_any_done=True)
    assert roll.batch_size == (5,)
    assert roll["next", "market", "t"].tolist() == [0, 1, 2, 3, 4]
    assert roll["next", "truncated"].squeeze(-1).tolist() == [False] * 4 + [True]
    price = roll["next", "market", "clearing_price"]
    assert bool(((price >= 0.0) & (price <= 0.40)).all())  # default [price_floor, price_cap] $/kWh


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="env: expected one of"):
        make_torchrl_env("auction_v9")
    with pytest.raises(ValueError, match="group_map"):
        TorchRLEnvOptions(group_map="everyone")
    with pytest.raises(ValueError, match="seed"):
        TorchRLEnvOptions(seed=1.5)
    with pytest.raises(ValueError, match="n_prosumers"):
        make_torchrl_env("auction_v0", n_prosumers=0)
    with pytest.raises(ValueError, match="minibatch_size"):
        TorchRLPPOConfig(frames_per_batch=8, minibatch_size=16)
    ok = {"x": 1.0, "market": {"clearing_price": 0.1}}
    with pytest.raises(ValueError, match=r"infos\['b'\]: field 'x' missing"):
        infer_info_layout({"a": ok, "b": {"market": ok["market"]}}, ["a", "b"])
    with pytest.raises(ValueError, match=r"infos\['b'\]\['market'\]"):
        infer_info_layout({"a": ok, "b": {"x": 2.0, "market": {"clearing_price": 0.2}}}, ["a", "b"])
    layout = infer_info_layout({"a": {**ok, "name": "p0"}}, ["a"])
    assert layout.dropped == ("name",)


def test_ppo_smoke_is_deterministic():
    """Two MAPPO iterations (2 x 48 frames, 6 agents, shared actor, centralised critic) twice: identical."""
    cfg = TorchRLPPOConfig(iterations=2, frames_per_batch=48, epochs=1, minibatch_size=24, seed=3)
    a = train_ppo("auction_v0", cfg)
    b = train_ppo("auction_v0", cfg)
    assert a.frames == b.frames == 96
    assert len(a.loss) == 2 and all(math.isfinite(x) for x in a.loss)
    assert (a.mean_reward, a.mean_clearing_price, a.loss) == (b.mean_reward, b.mean_clearing_price, b.loss)
    assert all(0.0 <= p <= 0.40 for p in a.mean_clearing_price)
    ippo = train_ppo("auction_v0", TorchRLPPOConfig(iterations=1, epochs=1, centralised_critic=False, seed=3))
    assert ippo.frames == 48 and math.isfinite(ippo.loss[0])
