"""Trainers with tiny budgets: shared and independent SB3, tabular Q-learning; determinism, save/load
and resume after an interrupted run."""
import json

import numpy as np
import pytest

from p2penv.agents.baselines import TruthfulAgent
from p2penv.agents.independent import IndependentPolicy, train_independent
from p2penv.agents.qlearning import QConfig, QLearners
from p2penv.agents.rollout import Assigned, rollout
from p2penv.agents.sb3_shared import SB3Config, SharedPolicy, train_shared
from p2penv.seller_buyer import seller_buyer_env_fn, sellers
from p2penv import auction_v0


def _f():
    return auction_v0.parallel_env(n_prosumers=3, seed=0, max_cycles=12)


def _probe(policy):
    env = _f()
    o, _ = env.reset(seed=5)
    return policy.act_batch(np.stack([o[a] for a in env.agents]))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_shared_is_deterministic_saves_loads(tmp_path, algo):
    cfg = SB3Config(algo=algo, total_steps=144, n_steps=24, batch_size=24, learning_starts=36, n_epochs=2)
    a = train_shared(_f, cfg, tmp_path / "a")
    b = train_shared(_f, cfg, None)
    assert a.num_timesteps >= 144
    assert np.array_equal(_probe(a.policy), _probe(b.policy))
    loaded = SharedPolicy.load(tmp_path / "a" / "policy")
    assert np.array_equal(_probe(loaded), _probe(a.policy))
    assert json.loads((tmp_path / "a" / "state.json").read_text())["finished"]


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_shared_resume_continues_the_counter(tmp_path, algo):
    cfg = SB3Config(algo=algo, total_steps=144, n_steps=24, batch_size=24, learning_starts=36, n_epochs=1,
                    checkpoint_every=72)
    train_shared(_f, cfg, tmp_path)
    first = json.loads((tmp_path / "state.json").read_text())["num_timesteps"]
    r = train_shared(_f, SB3Config(**{**cfg.__dict__, "total_steps": 288}), tmp_path, resume=True)
    assert r.num_timesteps >= 288 > first
    assert json.loads((tmp_path / "state.json").read_text())["num_timesteps"] == r.num_timesteps
    if algo == "sac":
        assert (tmp_path / "replay.pkl").exists() and r.policy.model.replay_buffer.size() >= 288 // 3


def test_shared_with_fixed_buyers_and_tensorboard(tmp_path):
    f = seller_buyer_env_fn(2, seed=0)
    cfg = SB3Config(total_steps=96, n_steps=24, batch_size=24, n_epochs=1, tensorboard=True, progress=True)
    r = train_shared(f, cfg, tmp_path, learners=sellers(2), others=TruthfulAgent(f().config))
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))
    tr = rollout(f(), Assigned({a: r.policy for a in sellers(2)}, default=TruthfulAgent(f().config)), seed=0)[0]
    assert np.isfinite(tr.rewards).all()


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_independent_deterministic_and_resumes(tmp_path, algo):
    cfg = SB3Config(algo=algo, total_steps=3 * 48, n_steps=24, batch_size=24, learning_starts=12, n_epochs=1,
                    checkpoint_every=3 * 24)
    a = train_independent(_f, cfg, tmp_path)
    b = train_independent(_f, cfg, None)
    env = _f()
    o, _ = env.reset(seed=2)
    ja, jb = a.policy.joint(), b.policy.joint()
    assert all(np.array_equal(ja(env, o)[k], jb(env, o)[k]) for k in o)
    loaded = IndependentPolicy.load(tmp_path / "policy").joint()
    assert all(np.array_equal(ja(env, o)[k], loaded(env, o)[k]) for k in o)
    r = train_independent(_f, SB3Config(**{**cfg.__dict__, "total_steps": 3 * 96}), tmp_path, resume=True)
    st = json.loads((tmp_path / "state.json").read_text())
    assert st["env_steps"] == 96 and r.num_timesteps == 3 * 96
    assert len(list((tmp_path / "models").glob("*.zip"))) == 3


def _q(steps, **kw):
    f = seller_buyer_env_fn(2, seed=0)
    return QLearners(f, QConfig(total_steps=steps, n_sessions=3, beta=1e-3, seed=1, record_every=50, **kw),
                     learners=sellers(2))


def test_qlearning_is_deterministic_and_vectorised():
    a, b = _q(600).train(), _q(600).train()
    assert a.Q.shape == (3, 2, 15 * 15, 15) and a.state_kind == "joint"
    assert np.array_equal(a.Q, b.Q) and np.array_equal(a.trace_price, b.trace_price)
    assert a.trace_price.shape == (12, 3) and a.t == 600
    assert not np.array_equal(a.Q[0], a.Q[1])  # sessions explore independently


def test_qlearning_resume_is_bit_identical(tmp_path):
    full = _q(800).train()
    part = _q(400, checkpoint_every=100)
    part.train(tmp_path)
    resumed = _q(800).train(tmp_path, resume=True)
    assert resumed.t == 800
    assert np.array_equal(resumed.Q, full.Q) and np.array_equal(resumed.trace_profit, full.trace_profit)


def test_qlearning_state_and_policy_in_plain_loop():
    f = seller_buyer_env_fn(5, seed=0)
    q = QLearners(f, QConfig(total_steps=200, n_sessions=1, n_prices=7, max_joint_states=1000), learners=sellers(5))
    res = q.train()
    assert res.state_kind == "own_price" and res.Q.shape == (1, 5, 49, 7)
    tr = rollout(f(), q.policy(0), seed=0)[0]
    assert np.isfinite(tr.rewards).all()
    # prices named by learners lie on the grid
    span = f().config.price_cap - f().config.price_floor
    p = f().config.price_floor + (tr.actions[:, :5, 0] + 1) / 2 * span
    assert np.allclose(np.min(np.abs(p[..., None] - res.prices), -1), 0, atol=1e-9)
    with pytest.raises(ValueError, match="alpha"):
        QConfig(alpha=0)
