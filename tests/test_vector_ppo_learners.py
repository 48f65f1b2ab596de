"""Vector PPO with some agents learning and the rest fixed (the market-power study, the best responder of
p2penv.diagnostics.exploitability), the evaluator's learning curve, market_log.csv, and the CLI path."""
import csv

import numpy as np
import pytest

from p2penv import cli
from p2penv.agents.baselines import TruthfulAgent
from p2penv.agents.vector_ppo import VectorPPOConfig, train_vector_ppo
from p2penv.seller_buyer import seller_buyer_env_fn, seller_buyer_vector_fn, sellers

VEC = seller_buyer_vector_fn(2, 3)
TRUTH = TruthfulAgent(seller_buyer_env_fn(2, 3)().config)
PER = 24 * 4 * 2  # agent-steps of one update: 24 steps x 4 markets x 2 learners


def cfg(**kw):
    base = dict(total_steps=2 * PER, num_envs=4, minibatch_size=256, torch_threads=1, seed=1,
                learners=tuple(sellers(2)))
    base.update(kw)
    return VectorPPOConfig(**base)


class RecordingProfile:
    """A frozen joint profile: every agent plays 0.5 (price) and 1 (dispatch); records what it saw."""

    def __init__(self):
        self.seen = []

    def act_vector(self, obs):
        self.seen.append(obs.shape)
        return np.tile(np.array([0.5, 1.0], np.float32), obs.shape[:2] + (1,))


def test_only_the_learners_learn_and_the_others_play_the_fixed_agent(tmp_path):
    r = train_vector_ppo(VEC, cfg(), tmp_path, others=TRUTH)
    assert r.num_timesteps == 2 * PER and r.policy.agent_names == sellers(2)
    assert r.policy.model.n_agents == 2
    # the joint policy for the single env: learned sellers, truthful buyers
    env = seller_buyer_env_fn(2, 3)()
    obs, _ = env.reset(seed=0)
    acts = r.policy.joint(TRUTH)(env, obs)
    assert sorted(acts) == sorted(env.agents)
    for a in env.agents[2:]:
        np.testing.assert_array_equal(acts[a], TRUTH.act(obs[a]))
    with pytest.raises(ValueError, match=r"no policy for agents \['prosumer_2', 'prosumer_3', 'prosumer_4'\]"):
        r.policy.joint()(env, obs)
    # market_log.csv: the sellers' group only, one row per update
    with open(tmp_path / "market_log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    assert [int(x["agent_steps"]) for x in log] == [PER, 2 * PER]
    assert "return_sellers" in log[0] and "return_buyers" not in log[0]


def test_a_frozen_profile_sees_every_agent_and_is_overwritten_for_the_learner():
    prof = RecordingProfile()
    train_vector_ppo(VEC, cfg(learners=("prosumer_1",), total_steps=24 * 4), others=prof)
    assert prof.seen and all(s == (4, 5, prof.seen[0][2]) for s in prof.seen)


def test_learner_errors_name_the_agents():
    with pytest.raises(ValueError, match=r"learners: unknown agent\(s\) \['seller_9'\]"):
        train_vector_ppo(VEC, cfg(learners=("seller_9",)), others=TRUTH)
    with pytest.raises(ValueError, match=r"others: agents \['prosumer_2', 'prosumer_3', 'prosumer_4'\] do not learn"):
        train_vector_ppo(VEC, cfg())
    with pytest.raises(ValueError, match="learners: need distinct agent names"):
        cfg(learners=("prosumer_0", "prosumer_0"))


def test_evaluator_gives_the_learning_curve_and_the_progress_columns(tmp_path):
    calls = []

    def evaluator(pol):
        calls.append(pol.agent_names)
        return dict(nash_conv=0.25 * len(calls), markup_rel=0.1)

    r = train_vector_ppo(VEC, cfg(total_steps=3 * PER, eval_every=2, tensorboard=True), tmp_path, others=TRUTH,
                         evaluator=evaluator)
    # every 2nd update and after the last one
    assert [c["agent_steps"] for c in r.curve] == [2 * PER, 3 * PER]
    assert [c["nash_conv"] for c in r.curve] == [0.25, 0.5]
    with open(tmp_path / "progress.csv", newline="") as f:
        prog = list(csv.DictReader(f))
    assert [p["nash_conv"] for p in prog] == ["", "0.25", "0.5"]
    with open(tmp_path / "market_log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    assert [x["nash_conv"] for x in log] == ["", "0.25", "0.5"]
    # the vector path has no per-step competitive price: the evaluator's markup fills its rows
    assert [x["markup_rel"] for x in log] == ["nan", "0.1", "0.1"]
    # each market scalar is written once (by the market log), not also by the trainer
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for d in sorted({p.parent for p in (tmp_path / "tb").rglob("events.*")}):
        tags += EventAccumulator(str(d)).Reload().Tags()["scalars"]
    assert tags.count("market/nash_conv") == 1 and tags.count("market/markup_rel") == 1


def test_resume_refuses_a_different_num_envs(tmp_path):
    train_vector_ppo(VEC, cfg(total_steps=PER), tmp_path, others=TRUTH)
    with pytest.raises(ValueError, match=r"resume: model.pt was trained with different num_envs \(num_envs=4\)"):
        train_vector_ppo(VEC, cfg(total_steps=2 * PER, num_envs=8), tmp_path, resume=True, others=TRUTH)


def test_cli_vector_sellers_learn_with_nash_conv_logs(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--sellers", "2", "--num-envs", "4", "--steps", str(2 * 24 * 4 * 2),
                     "--nash-conv-every", "1", "--out", str(out)]) == 0
    with open(out / "market_log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    assert len(log) == 2 and all(float(x["nash_conv"]) >= 0 for x in log)
    assert "return_sellers" in log[0] and "return_buyers" not in log[0]
