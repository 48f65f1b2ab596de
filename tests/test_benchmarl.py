"""BenchMARL task (p2penv.agents.benchmarl_task): specs, seeding of the env copies, tiny MAPPO / IPPO runs.

Runs in the BenchMARL venv only (benchmarl 1.5 pins torchrl < 0.12; the main test venv has torchrl 0.14):
``.venv-benchmarl/bin/python -m pytest -q tests/test_benchmarl.py`` (see docs/ecosystem.md).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

from p2penv.agents.benchmarl_task import (
    BenchmarlRunConfig,
    P2PEnvTask,
    P2PEnvTaskClass,
    run_tiny_experiment,
)
from p2penv.envs.fields import DLMP_INFO_FIELDS, INFO_FIELDS, names

torch.set_num_threads(1)


def test_task_specs_and_env():
    task = P2PEnvTask.AUCTION_V0.get_task(config={"n_prosumers": 4, "max_cycles": 6})
    assert isinstance(task, P2PEnvTaskClass) and task.env_name() == "p2penv"
    env = task.get_env_fun(num_envs=1, continuous_actions=True, seed=0, device="cpu")()
    check_env_specs(env)
    agents = [f"prosumer_{i}" for i in range(4)]
    assert task.group_map(env) == {"prosumer": agents}
    assert task.max_steps(env) == 6
    assert list(task.observation_spec(env).keys(True, True)) == [("prosumer", "observation")]
    assert sorted(k[-1] for k in task.info_spec(env).keys(True, True)) == sorted(names(INFO_FIELDS))
    assert task.action_spec(env)["prosumer", "action"].shape == (4, 2)
    assert task.state_spec(env) is None and task.action_mask_spec(env) is None
    assert task.supports_continuous_actions() and not task.supports_discrete_actions()


def test_scenario_task_and_log_info_exact():
    task = P2PEnvTask.SCENARIO.get_task(config={"scenario_id": "dlmp_v0/teaching4-v0", "max_cycles": 4})
    env = task.get_env_fun(num_envs=1, continuous_actions=True, seed=1, device="cpu")()
    keys = {k[-1] for k in task.info_spec(env).keys(True, True)}
    assert set(names(INFO_FIELDS) + names(DLMP_INFO_FIELDS) + ("bus",)) == keys
    roll = env.rollout(4)
    logged = task.log_info(roll)
    price = roll["next", "market", "clearing_price"]
    assert logged["market/clearing_price"] == float(price.mean())
    assert logged["market/welfare"] == float(roll["next", "market", "welfare"].mean())
    assert set(logged) == {"market/clearing_price", "market/welfare", "market/volume_kwh"}


def test_env_copies_get_distinct_seeds_and_bad_configs_raise():
    make = P2PEnvTask.AUCTION_V0.get_task(config={}).get_env_fun(2, True, 5, "cpu")
    first, second = make().reset(), make().reset()
    again = P2PEnvTask.AUCTION_V0.get_task(config={}).get_env_fun(2, True, 5, "cpu")().reset()
    obs = ("prosumer", "observation")
    assert not torch.equal(first[obs], second[obs])  # seed 5 and 6
    assert torch.equal(first[obs], again[obs])  # deterministic per build order
    with pytest.raises(ValueError, match="continuous_actions"):
        P2PEnvTask.AUCTION_V0.get_task(config={}).get_env_fun(1, False, 0, "cpu")
    with pytest.raises(ValueError, match="scenario_id"):
        P2PEnvTask.SCENARIO.get_task(config={}).get_env_fun(1, True, 0, "cpu")
    with pytest.raises(ValueError, match="scenario_id"):
        P2PEnvTask.DLMP_V0.get_task(config={"scenario_id": "dlmp_v0/teaching4-v0"}).get_env_fun(1, True, 0, "cpu")
    with pytest.raises(ValueError, match="algorithm"):
        BenchmarlRunConfig(algorithm="qmix")
    with pytest.raises(ValueError, match="frames_per_batch"):
        BenchmarlRunConfig(frames_per_batch=47, n_envs=2)


def test_tiny_mappo_experiment_is_deterministic():
    """MAPPO, 2 iterations x 48 frames (2 env copies), twice: same rewards and clearing prices."""
    cfg = BenchmarlRunConfig(iterations=2, frames_per_batch=48, n_envs=2, seed=0)
    a = run_tiny_experiment(cfg)
    b = run_tiny_experiment(cfg)
    assert (a.iterations, a.frames) == (2, 96)
    assert a.mean_reward == b.mean_reward and a.mean_clearing_price == b.mean_clearing_price
    assert all(math.isfinite(r) for r in a.mean_reward)
    assert all(0.0 <= p <= 0.40 for p in a.mean_clearing_price)  # [price_floor, price_cap] $/kWh


def test_tiny_ippo_experiment_on_dlmp_teaching4():
    cfg = BenchmarlRunConfig(env="dlmp_v0/teaching4-v0", algorithm="ippo", iterations=1, seed=2)
    r = run_tiny_experiment(cfg)
    assert (r.iterations, r.frames) == (1, 48)
    assert np.isfinite(r.mean_reward).all() and np.isfinite(r.mean_clearing_price).all()
