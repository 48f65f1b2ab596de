"""Vector PPO / MAPPO (agents.vector_ppo): outputs, determinism, resume, GAE with truncation,
independent and central variants, learning sanity, DLMP, evaluation adapter."""
import csv
import math

import numpy as np
import pytest
import torch

from p2penv.agents.vector_ppo import (ActorCritic, GroupMLP, VectorPolicy, VectorPPOConfig, _Trainer, compute_gae,
                               hour_columns, resolve_critic, train_vector_ppo, vector_env_fn)
from p2penv.agents.precision import autocast
from p2penv.generators.sellers_buyers import SellerBuyerMarket

AUCTION = vector_env_fn("auction_v0", n_prosumers=4)


def cfg(**kw):
    base = dict(total_steps=2 * 24 * 16 * 4, num_envs=16, minibatch_size=512, torch_threads=1, seed=3)
    base.update(kw)
    return VectorPPOConfig(**base)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_short_run_writes_model_progress_and_finite_loss(tmp_path):
    c = cfg(tensorboard=True)
    r = train_vector_ppo(AUCTION, c, tmp_path)
    assert r.num_timesteps == 2 * 24 * 16 * 4 and r.updates == 2
    assert (tmp_path / "model.pt").is_file() and any((tmp_path / "tb").iterdir())
    prog = rows(tmp_path / "progress.csv")
    assert [int(p["agent_steps"]) for p in prog] == [1536, 3072]
    for p in prog:
        for k in ("policy_loss", "value_loss", "entropy", "episode_return", "clearing_price", "welfare"):
            assert math.isfinite(float(p[k])), k
    assert math.isfinite(r.last["loss"])
    assert r.env_s > 0 and r.forward_s > 0 and r.update_s > 0 and r.steps_per_s > 0
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["num_timesteps"] == 3072 and ck["finished"] and ck["config"]["num_envs"] == 16


def test_same_seed_gives_identical_parameters():
    a = train_vector_ppo(AUCTION, cfg()).policy.model.state_dict()
    b = train_vector_ppo(AUCTION, cfg()).policy.model.state_dict()
    c = train_vector_ppo(AUCTION, cfg(seed=4)).policy.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_continues_step_counter_and_progress(tmp_path):
    per = 24 * 16 * 4
    train_vector_ppo(AUCTION, cfg(total_steps=per), tmp_path)
    first = torch.load(tmp_path / "model.pt", weights_only=True)
    r = train_vector_ppo(AUCTION, cfg(total_steps=3 * per), tmp_path, resume=True)
    assert r.num_timesteps == 3 * per and r.updates == 3
    assert [int(p["agent_steps"]) for p in rows(tmp_path / "progress.csv")] == [per, 2 * per, 3 * per]
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["num_timesteps"] == 3 * per
    assert not torch.equal(ck["model"]["actor.weights.0"], first["model"]["actor.weights.0"])
    # nothing left to do: a resumed finished run does no update
    assert train_vector_ppo(AUCTION, cfg(total_steps=3 * per), tmp_path, resume=True).updates == 3


def test_default_critic_is_the_validated_pair_and_is_saved_resolved(tmp_path):
    vec = AUCTION(2, 0)
    assert VectorPPOConfig().critic == "auto"
    assert resolve_critic("auto", "shared", vec) == "central"  # MAPPO
    assert resolve_critic("auto", "independent", vec) == "local"
    assert resolve_critic("auto", "shared", object()) == "local"  # no global state()
    assert resolve_critic("local", "shared", vec) == "local"
    with pytest.raises(ValueError, match="critic"):
        resolve_critic("global", "shared", vec)
    per = 24 * 16 * 4
    r = train_vector_ppo(AUCTION, cfg(total_steps=per), tmp_path)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["config"]["critic"] == "central" and ck["meta"]["state_dim"] > 0
    assert r.policy.config.critic == "central" and VectorPolicy.load(tmp_path / "model.pt").config.critic == "central"
    # "auto" resumes a run it resolved; an explicit other critic is refused
    assert train_vector_ppo(AUCTION, cfg(total_steps=2 * per), tmp_path, resume=True).updates == 2
    with pytest.raises(ValueError, match="critic"):
        train_vector_ppo(AUCTION, cfg(total_steps=3 * per, critic="local"), tmp_path, resume=True)
    # a run trained with a local critic (the default before "auto") resumes under "auto" with its own critic
    train_vector_ppo(AUCTION, cfg(total_steps=per, critic="local"), tmp_path / "local")
    r = train_vector_ppo(AUCTION, cfg(total_steps=2 * per), tmp_path / "local", resume=True)
    assert r.updates == 2 and r.policy.config.critic == "local"
    # a full config saved before the central critic existed trained a local one
    old = {k: v for k, v in ck["config"].items() if k != "critic"}
    assert VectorPPOConfig.from_dict(old).critic == "local"


def test_gae_truncation_bootstraps_with_final_value():
    g, lam = 0.9, 0.8
    t = lambda *x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    b = lambda *x: torch.tensor(x)  # noqa: E731
    rew, val = t(1.0, 2.0), t(0.5, 0.6)
    # step 1 ends the episode by truncation: bootstrap with V(final obs) = 0.7, not with the next
    # episode's first value 0.9 (last_values)
    adv, ret = compute_gae(rew, val, t(0.9)[0], b(False, True), t(0.0, 0.7), b(False, False), g, lam)
    d1 = 2.0 + g * 0.7 - 0.6
    d0 = 1.0 + g * 0.6 - 0.5
    np.testing.assert_allclose(adv.numpy(), [d0 + g * lam * d1, d1], rtol=1e-6)
    np.testing.assert_allclose(ret.numpy(), [d0 + g * lam * d1 + 0.5, d1 + 0.6], rtol=1e-6)
    # termination: no bootstrap at all
    adv, _ = compute_gae(rew, val, t(0.9)[0], b(False, True), t(0.0, 0.7), b(False, True), g, lam)
    np.testing.assert_allclose(adv.numpy(), [d0 + g * lam * (2.0 - 0.6), 2.0 - 0.6], rtol=1e-6)
    # no episode end: bootstrap with last_values; an end at step 0 cuts the recursion
    adv, _ = compute_gae(rew, val, t(0.9)[0], b(False, False), t(0.0, 0.0), b(False, False), g, lam)
    e1 = 2.0 + g * 0.9 - 0.6
    np.testing.assert_allclose(adv.numpy(), [d0 + g * lam * e1, e1], rtol=1e-6)
    adv, _ = compute_gae(rew, val, t(0.9)[0], b(True, False), t(0.3, 0.0), b(False, False), g, lam)
    np.testing.assert_allclose(adv.numpy(), [1.0 + g * 0.3 - 0.5, e1], rtol=1e-6)


class Recording:
    """Vector env wrapper keeping the last infos["final_obs"]."""

    def __init__(self, vec):
        self.vec, self.final_obs = vec, None

    def __getattr__(self, k):
        return getattr(self.vec, k)

    def step(self, a):
        out = self.vec.step(a)
        if "final_obs" in out[4]:
            self.final_obs = out[4]["final_obs"].copy()
            self.final_state = out[4]["final_state"].copy()
        return out


def test_rollout_bootstraps_from_final_obs():
    holder = {}

    def fn(e, s):
        holder["env"] = Recording(AUCTION(e, s))
        return holder["env"]

    tr = _Trainer(fn, cfg(), None, False)
    assert tr.cfg.critic == "central"  # the default in shared mode: MAPPO, bootstrapping from the final state
    tr.rollout()
    assert tr.b_done[-1].all() and not tr.b_done[:-1].any()
    fo = torch.from_numpy(holder["env"].final_obs)
    fs = torch.from_numpy(holder["env"].final_state).float()
    with torch.no_grad(), autocast(tr.precision):  # as the rollout computes it
        expect = tr.model.value(fo.transpose(0, 1), fs).transpose(0, 1)
    torch.testing.assert_close(tr.b_final[-1], expect)
    assert not torch.allclose(tr.b_final[-1], tr.last_val)  # last_val: first obs of the next episode


def test_network_is_a_tanh_mlp_with_its_gradients():
    g = torch.Generator().manual_seed(0)
    for groups, one_hot, nx, fp32_out in [(1, False, 5, False), (1, True, 5, False), (1, True, 1, True),
                                          (5, False, 5, True), (5, False, 1, False)]:
        m = GroupMLP(groups, 5, 7, (16, 8), 3, 1.0, one_hot, g, fp32_out=fp32_out)
        for p in m.parameters():
            p.data.normal_(0, 0.5, generator=g)
        x = torch.randn(nx, 9, 7, generator=g)
        out, ref = m(x), m.reference_forward(x)
        torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-5)
        w = torch.randn(out.shape, generator=g)
        grads = torch.autograd.grad((out * w).sum(), list(m.parameters()))
        ref_grads = torch.autograd.grad((ref * w).sum(), list(m.parameters()))
        for a, b in zip(grads, ref_grads):  # every parameter, the biases behind the constant unit included
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_independent_mode_has_distinct_per_agent_parameters():
    r = train_vector_ppo(AUCTION, cfg(mode="independent", total_steps=1, action_dist="gaussian"))
    m = r.policy.model
    w = m.actor.weights[0]
    assert w.shape[0] == 4 and m.log_std.shape[0] == 4 and m.critic.weights[0].shape[0] == 4
    assert all(not torch.equal(w[i], w[j]) for i in range(4) for j in range(i))
    same = np.zeros((4, 12), np.float32)  # every agent sees the same observation
    acts = r.policy.act(same)
    assert acts.shape == (4, 2) and not np.allclose(acts[0], acts[1])
    shared = train_vector_ppo(AUCTION, cfg(total_steps=1)).policy
    np.testing.assert_allclose(shared.act(same), np.repeat(shared.act(same)[:1], 4, 0))
    with_id = train_vector_ppo(AUCTION, cfg(total_steps=1, agent_id=True)).policy
    assert not np.allclose(with_id.act(same)[0], with_id.act(same)[1])


def test_independent_gradient_stays_per_agent():
    c = cfg(mode="independent", critic="local")
    model = ActorCritic(4, 12, 0, 2, c, torch.Generator().manual_seed(0))
    obs = torch.randn(4, 8, 12)
    mean = model.actor(obs)
    mean[1].sum().backward()  # a loss on agent 1 only
    grad = model.actor.weights[0].grad
    assert grad[1].abs().sum() > 0 and grad[[0, 2, 3]].abs().sum() == 0


def test_central_critic_uses_state_not_obs():
    vec = AUCTION(3, 0)
    obs, _ = vec.reset(seed=0)
    state = torch.from_numpy(vec.state())
    model = ActorCritic(4, obs.shape[2], state.shape[1], 2, cfg(critic="central"), torch.Generator().manual_seed(0))
    assert model.critic.weights[0].shape[1] == state.shape[1] and model.critic.emb.shape[0] == 4
    o = torch.from_numpy(obs).transpose(0, 1)
    with torch.no_grad():
        v = model.value(o, state)
        assert v.shape == (4, 3)
        torch.testing.assert_close(model.value(torch.randn_like(o), state), v)  # obs does not matter
        assert not torch.allclose(model.value(o, state + 0.5), v)  # the state does
        assert not torch.allclose(v[0], v[1])  # the agent one-hot does
    r = train_vector_ppo(AUCTION, cfg(critic="central", total_steps=1))
    assert math.isfinite(r.last["value_loss"])
    r = train_vector_ppo(AUCTION, cfg(critic="central", mode="independent", total_steps=1))
    assert math.isfinite(r.last["value_loss"])


def test_policy_load_act_and_pettingzoo_adapter(tmp_path):
    from p2penv.agents.rollout import rollout
    from p2penv import auction_v0

    r = train_vector_ppo(AUCTION, cfg(mode="independent", total_steps=1), tmp_path)
    pol = VectorPolicy.load(tmp_path / "model.pt")
    vec = AUCTION(5, 9)
    obs, _ = vec.reset(seed=9)
    a = pol.act(obs)
    assert a.shape == (5, 4, 2) and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a, r.policy.act(obs))
    np.testing.assert_allclose(pol.act(obs[2]), a[2], atol=1e-6)
    assert VectorPolicy.load(tmp_path).agent_names == vec.possible_agents
    env = auction_v0.parallel_env(n_prosumers=4)
    traj = rollout(env, pol.joint(), seed=9)[0]
    assert traj.actions.shape == (24, 4, 2)
    # market 0 of the vector env seeded 9 is the single env seeded 9: same actions at step 0
    np.testing.assert_allclose(traj.actions[0], a[0], atol=1e-6)


def test_progress_bar_total_is_real_agent_steps(monkeypatch):
    import tqdm.auto

    seen = {}

    class Bar:
        def __init__(self, total, initial, **kw):
            seen.update(total=total, initial=initial, n=initial)

        def update(self, n):
            seen["n"] += n

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    r = train_vector_ppo(AUCTION, cfg(total_steps=2000, progress=True))  # rounds up to 2 rollouts of 1536
    assert seen == dict(total=3072, initial=0, n=3072) and r.num_timesteps == 3072


def _learning(updates):
    fn = vector_env_fn("auction_v0", n_prosumers=5, generator=SellerBuyerMarket(2), rule="walrasian")
    c = VectorPPOConfig(total_steps=updates * 24 * 16 * 5, num_envs=16, minibatch_size=512, learning_rate=1e-3,
                        torch_threads=1, seed=0)
    init = VectorPolicy(_Trainer(fn, c, None, False).model, [], c)
    r = train_vector_ppo(fn, c)

    def mean_reward(act):
        vec = fn(16, 123)
        obs, _ = vec.reset(seed=123)
        tot = 0.0
        for _ in range(24):
            obs, rew, *_ = vec.step(act(obs))
            tot += rew.mean()
        return tot

    rng = np.random.default_rng(0)
    random = mean_reward(lambda o: rng.uniform(-1, 1, o.shape[:2] + (2,)).astype(np.float32))
    return mean_reward(r.policy.act), random, mean_reward(init.act)


def test_learning_30_updates_beats_random_policy_clearly():
    # 2 sellers + 3 inelastic buyers; ~3 s here (not marked slow)
    trained, random, init = _learning(30)
    # the categorical policy starts near-uniform over its grid, i.e. about as good as the random policy
    assert trained > random + 2.0 and trained > init + 2.0, (trained, random, init)


def test_dlmp_vector_env_one_update():
    fn = vector_env_fn("dlmp_v0", scenario="teaching4")
    r = train_vector_ppo(fn, VectorPPOConfig(total_steps=1, num_envs=2, minibatch_size=64, torch_threads=1,
                                             critic="central"))
    assert r.updates == 1 and r.num_timesteps == 24 * 2 * len(r.policy.agent_names)
    assert math.isfinite(r.last["loss"])


def test_a_checkpoint_from_before_the_validated_defaults_loads_as_the_gaussian_it_was(tmp_path):
    r = train_vector_ppo(AUCTION, cfg(total_steps=1, action_dist="gaussian", lr_schedule="constant",
                                      ent_coef_final=None), tmp_path)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    for k in ("action_dist", "action_bins", "eval_point", "lr_schedule", "ent_coef_final"):
        ck["config"].pop(k)  # what a pre-validation model.pt holds
    torch.save(ck, tmp_path / "model.pt")
    pol = VectorPolicy.load(tmp_path)
    assert pol.config.action_dist == "gaussian" and pol.model.log_std is not None
    obs, _ = AUCTION(2, 0).reset(seed=0)
    np.testing.assert_array_equal(pol.act(obs), r.policy.act(obs))


ARBITRAGE = "auction_v0/arbitrage_tou-v0"


def _arbitrage_fn(e, s):
    import p2penv

    return p2penv.make_vector(ARBITRAGE, e, seed=s)


def test_hour_onehot_reads_the_hour_bin_from_sin_and_cos():
    vec = _arbitrage_fn(1, 0)
    cols = hour_columns(vec)
    assert cols == (vec.core.observation_names.index("hour_sin"), vec.core.observation_names.index("hour_cos"))
    model = ActorCritic(1, 15, 0, 3, cfg(critic="local"), torch.Generator().manual_seed(0), cols)
    hours = np.arange(0, 24, 0.25)  # quarter-hour steps fall in the bin of their whole hour
    obs = torch.zeros(1, hours.size, 15)
    obs[0, :, cols[0]] = torch.from_numpy(np.sin(2 * np.pi * hours / 24)).float()
    obs[0, :, cols[1]] = torch.from_numpy(np.cos(2 * np.pi * hours / 24)).float()
    x = model.features(obs)
    assert x.shape == (1, hours.size, 15 + 24)
    torch.testing.assert_close(x[..., :15], obs)
    np.testing.assert_array_equal(x[0, :, 15:].argmax(-1).numpy(), np.floor(hours).astype(int))
    assert float(x[..., 15:].sum()) == hours.size
    obs_v, _ = vec.reset(seed=0)  # the env's own float32 sin/cos of hours 0..23
    seen = []
    for t in range(24):
        seen.append(int(model.features(torch.from_numpy(obs_v[:, :1]).transpose(0, 1))[0, 0, 15:].argmax()))
        obs_v, *_ = vec.step(np.zeros((1, 2, 3), np.float32))
    assert seen == list(range(24))


def test_hour_onehot_follows_the_env_and_survives_save_and_load(tmp_path):
    # linked steps (a battery): on by default, in the actor, the local and the central critic
    r = train_vector_ppo(_arbitrage_fn, cfg(total_steps=1, learners=("prosumer_0",)), tmp_path,
                         others=_Idle())
    assert r.policy.model.hour_cols is not None
    assert r.policy.model.actor.weights[0].shape[1] == 15 + 24
    pol = VectorPolicy.load(tmp_path)
    assert pol.model.hour_cols == r.policy.model.hour_cols
    obs, _ = _arbitrage_fn(2, 0).reset(seed=0)
    np.testing.assert_array_equal(pol.act(obs[:, :1]), r.policy.act(obs[:, :1]))
    m = train_vector_ppo(_arbitrage_fn, cfg(total_steps=1, critic="central", learners=("prosumer_0",)),
                         others=_Idle()).policy.model
    assert m.critic.weights[0].shape[1] == m.state_dim + 24
    off = train_vector_ppo(_arbitrage_fn, cfg(total_steps=1, hour_onehot=False, learners=("prosumer_0",)),
                           others=_Idle()).policy.model
    assert off.hour_cols is None and off.actor.weights[0].shape[1] == 15
    # a stage game (no storage, no binding ramp): off by default; forced on where asked
    stage = vector_env_fn("auction_v0", n_prosumers=5, generator=SellerBuyerMarket(2), rule="walrasian")
    assert train_vector_ppo(stage, cfg(total_steps=1)).policy.model.hour_cols is None
    assert train_vector_ppo(stage, cfg(total_steps=1, hour_onehot=True)).policy.model.hour_cols is not None
    # a model.pt from before hour_onehot (no hour_cols in its meta) loads without it
    off_r = train_vector_ppo(_arbitrage_fn, cfg(total_steps=1, hour_onehot=False, learners=("prosumer_0",)),
                             tmp_path / "old", others=_Idle())
    ck_old = torch.load(tmp_path / "old" / "model.pt", weights_only=True)
    ck_old["meta"].pop("hour_cols")
    ck_old["config"].pop("hour_onehot")
    torch.save(ck_old, tmp_path / "old" / "model.pt")
    old = VectorPolicy.load(tmp_path / "old")
    assert old.model.hour_cols is None
    np.testing.assert_array_equal(old.act(obs[:, :1]), off_r.policy.act(obs[:, :1]))


def test_hour_columns_of_an_env_without_them_is_none():
    class Bare:
        pass

    assert hour_columns(Bare()) is None


class _Idle:
    def act_batch(self, obs):
        return np.zeros((obs.shape[0], 3), np.float32)

