"""RLlib multi-agent PPO (p2penv.agents.rllib_ppo): one iteration on each env, checkpoints, the CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import ray  # the [rllib] extra (ray[rllib] >= 2.40)
import torch

import p2penv
from p2penv import auction_v0, cli
from p2penv.agents.rllib_ppo import (
    AUTO_MAX_ENVS,
    RLlibPolicy,
    RLlibPPOConfig,
    auto_num_envs,
    close_algorithm,
    restore_algorithm,
    train_rllib_ppo,
)
from p2penv.agents.rollout import rollout

torch.set_num_threads(1)
LOSSES = ("total_loss", "policy_loss", "vf_loss", "entropy", "mean_kl_loss")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    ray.shutdown()


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_config_and_env_errors_name_the_field():
    with pytest.raises(ValueError, match="policies: expected one of"):
        RLlibPPOConfig(policies="central")
    with pytest.raises(ValueError, match="minibatch_size: must be <= train_batch_size"):
        RLlibPPOConfig(train_batch_size=48, minibatch_size=96)
    with pytest.raises(ValueError, match="iterations: expected an integer >= 1"):
        RLlibPPOConfig(iterations=0)
    with pytest.raises(ValueError, match="num_envs_per_env_runner: expected an integer >= 1"):
        RLlibPPOConfig(num_envs_per_env_runner=0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['batch'\]"):
        RLlibPPOConfig.from_dict({"batch": 3})
    assert RLlibPPOConfig.from_dict({"hidden": [8], "lr": 1e-3}).hidden == (8,)
    with pytest.raises(ValueError, match="env_name: expected one of"):  # before Ray is started
        train_rllib_ppo("nope_v0", {}, RLlibPPOConfig())
    with pytest.raises(ValueError, match="scenario: unknown"):
        train_rllib_ppo("dlmp_v0/nope-v0", {}, RLlibPPOConfig())


def test_shared_ppo_one_iteration_on_auction(ray_session, tmp_path):
    cfg = RLlibPPOConfig(iterations=1, policies="shared", train_batch_size=72, minibatch_size=36, seed=0)
    res = train_rllib_ppo("auction_v0", dict(n_prosumers=3), cfg, out_dir=tmp_path)
    agents = [f"prosumer_{i}" for i in range(3)]
    assert res.iterations == 1 and len(res.iteration_wall_s) == 1
    assert res.agent_steps == 72 and res.env_steps == 24  # 3 agents x 24 intervals: exactly one episode
    assert res.policy_ids == ("shared",) and res.agent_policy == {a: "shared" for a in agents}
    for k in LOSSES:
        assert math.isfinite(res.losses["shared"][k]), k
    assert res.losses["shared"]["entropy"] > 0
    # the one finished episode: the shared policy's return is the sum of its agents' returns ($)
    assert set(res.agent_return_mean) == set(agents)
    assert res.episode_return_mean["shared"] == pytest.approx(sum(res.agent_return_mean.values()), rel=1e-9)
    meta = json.loads((tmp_path / "rllib.json").read_text())
    assert meta["env"] == "auction_v0" and meta["iterations"] == 1 and meta["config"]["train_batch_size"] == 72
    assert res.checkpoint == tmp_path / "checkpoint" and (res.checkpoint / "rllib_checkpoint.json").is_file()

    # deterministic given the seed (same process): same losses and returns
    again = train_rllib_ppo("auction_v0", dict(n_prosumers=3), cfg)
    assert again.checkpoint is None
    assert again.losses == res.losses and again.agent_return_mean == res.agent_return_mean

    # the saved module acts in the plain PettingZoo env: deterministic, inside the [-1, 1] box
    pol = RLlibPolicy.load(tmp_path)
    assert set(pol.modules) == {"shared"}
    env = auction_v0.parallel_env(n_prosumers=3, seed=0)
    a, b = rollout(env, pol, seed=0)[0], rollout(env, pol, seed=0)[0]
    assert a.actions.shape == (24, 3, 2) and np.abs(a.actions).max() <= 1.0
    np.testing.assert_array_equal(a.actions, b.actions)
    assert np.unique(a.actions[0], axis=0).shape[0] == 3  # agents see different observations


def test_auto_num_envs_fills_the_batch_with_whole_episodes():
    big = RLlibPPOConfig(train_batch_size=4000, minibatch_size=500)
    assert auto_num_envs(big, 3, 1) == AUTO_MAX_ENVS == 64  # one-interval auctions: capped
    assert auto_num_envs(big, 2, 24) == 64  # 4000 // 48 = 83
    assert auto_num_envs(RLlibPPOConfig(train_batch_size=72, minibatch_size=36), 3, 24) == 1  # one episode
    assert auto_num_envs(RLlibPPOConfig(), 2, 24) == 3  # 144 // 48
    assert auto_num_envs(RLlibPPOConfig(train_batch_size=4000, minibatch_size=500, num_env_runners=2), 2, 24) == 41
    assert auto_num_envs(big, 3, None) == 1  # episode length unknown
    assert auto_num_envs(RLlibPPOConfig(num_envs_per_env_runner=5), 2, 24) == 5  # explicit


def test_vector_envs_on_one_interval_auction_are_deterministic(ray_session):
    sid = "auction_v0/first_price2-v0"  # 3 agents, one-interval episodes
    cfg = RLlibPPOConfig(iterations=1, train_batch_size=96, minibatch_size=48, gamma=0.0, seed=0)
    res = train_rllib_ppo(sid, {}, cfg)
    assert res.num_envs_per_env_runner == 32  # auto: 96 // 3
    assert res.agent_steps == 96 and res.env_steps == 32  # one interval of each of 32 copies
    assert math.isfinite(res.episode_return_mean["shared"])
    for k in LOSSES:
        assert math.isfinite(res.losses["shared"][k]), k
    again = train_rllib_ppo(sid, {}, cfg)
    assert again.losses == res.losses and again.agent_return_mean == res.agent_return_mean
    one = train_rllib_ppo(sid, {}, RLlibPPOConfig(iterations=1, train_batch_size=96, minibatch_size=48, gamma=0.0,
                                                  seed=0, num_envs_per_env_runner=1))
    assert one.num_envs_per_env_runner == 1 and one.agent_steps == 96 and one.env_steps == 32


def test_independent_ppo_one_iteration_on_dlmp_teaching4_and_restore(ray_session, tmp_path):
    cfg = RLlibPPOConfig(iterations=1, policies="independent", train_batch_size=48, minibatch_size=24, seed=1)
    res = train_rllib_ppo("dlmp_v0/teaching4-v0", {}, cfg, out_dir=tmp_path)
    assert res.agent_steps == 48 and res.env_steps == 24  # 2 agents x 24 intervals
    assert res.policy_ids == ("prosumer_0", "prosumer_1")
    assert res.agent_policy == {"prosumer_0": "prosumer_0", "prosumer_1": "prosumer_1"}
    for p in res.policy_ids:
        for k in LOSSES:
            assert math.isfinite(res.losses[p][k]), (p, k)
        # each policy's return is its own agent's
        assert res.episode_return_mean[p] == pytest.approx(res.agent_return_mean[p], rel=1e-12)
    assert res.losses["prosumer_0"] != res.losses["prosumer_1"]  # two modules, two batches

    pol = RLlibPolicy.load(tmp_path)
    algo = restore_algorithm(tmp_path)
    try:
        assert algo.iteration == 1
        assert sorted(algo.config.policies) == ["prosumer_0", "prosumer_1"]
        for p in res.policy_ids:  # the restored Algorithm's (inference-only) modules are the saved ones
            sa, sb = _state(algo.get_module(p)), _state(pol.modules[p])
            assert "pi.net.mlp.0.weight" in sa and set(sa) <= set(sb)
            for k in sa:
                torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
        assert not torch.equal(next(iter(_state(pol.modules["prosumer_0"]).values())),
                               next(iter(_state(pol.modules["prosumer_1"]).values())))
    finally:
        close_algorithm(algo)
    assert not Path(algo.logdir).exists()
    tr = rollout(p2penv.make("dlmp_v0/teaching4-v0"), pol, seed=0)[0]
    assert tr.actions.shape == (24, 2, 2) and np.isfinite(tr.rewards).all()


def test_cli_train_resume_evaluate_rllib_ppo(ray_session, tmp_path, capsys):
    out = tmp_path / "rl"
    base = ["train", "--algo", "rllib_ppo", "--mode", "shared", "--scenario", "dlmp_v0/teaching4-v0", "--out", str(out)]
    assert cli.main(base + ["--steps", "100"]) == 0  # default train_batch_size 144 agent-steps: one iteration
    assert "rllib_ppo/shared: 1 iteration(s), 144 agent-steps" in capsys.readouterr().out
    spec = json.loads((out / "run.json").read_text())
    assert spec["algo"] == "rllib_ppo" and spec["train"]["total_steps"] == 100
    assert json.loads((out / "rllib.json").read_text())["agent_policy"] == {"prosumer_0": "shared",
                                                                             "prosumer_1": "shared"}
    assert cli.main(base + ["--steps", "288", "--resume"]) == 0  # 2 iterations in all: one more
    assert "rllib_ppo/shared: 2 iteration(s), 144 agent-steps" in capsys.readouterr().out
    assert cli.main(["evaluate", str(out)]) == 0
    ev = json.loads((out / "eval.json").read_text())
    assert math.isfinite(ev["price"]) and math.isfinite(ev["welfare"])
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--algo", "rllib_ppo", "--sellers", "2", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2
    assert "sellers: algo 'rllib_ppo' trains every agent" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
