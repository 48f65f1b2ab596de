"""agents.market_log: MarketLog rows (exact aggregation, files, resume, errors), the SB3 callback on
the shared trainer, the independent learners and SB3VectorEnv (rows replicated from the infos,
NashConv every k rows, tensorboard read back), and run.json's env_config from the CLI."""
import json
import math

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from p2penv import auction_v0, cli
from p2penv.agents.baselines import TruthfulAgent, competitive_joint_action
from p2penv.agents.independent import train_independent
from p2penv.agents.market_log import (CSV_NAME, MarketLog, agent_groups, eval_nash_conv, read_market_log)
from p2penv.agents.rollout import Assigned
from p2penv.agents.sb3_shared import MarketLogCallback, SB3Config, SharedPolicy, make_model, train_shared
from p2penv.agents.sb3_vector import make_sb3_vector_env, market_log_callback
from p2penv.agents.vec_adapter import MarketVecEnv
from p2penv.seller_buyer import seller_buyer_env_fn

torch.set_num_threads(1)
SELLERS = ["prosumer_0", "prosumer_1"]
COLS = ["agent_steps", "updates", "episodes", "return_sellers", "clearing_price", "traded_kwh", "welfare",
        "markup_rel", "nash_conv"]


def _market(p, v, w):
    return {"clearing_price": p, "volume_kwh": v, "welfare": w, "operator_surplus": 0.0}


# -- MarketLog itself -----------------------------------------------------------------------------
def test_rows_aggregate_exactly_and_mark_unmeasured_cells_empty(tmp_path):
    log = MarketLog(tmp_path, {"sellers": [0, 1], "buyers": [2]}, nash_conv_every=2)
    assert log.columns == ("agent_steps", "updates", "episodes", "return_sellers", "return_buyers",
                           "clearing_price", "traded_kwh", "welfare", "markup_rel", "nash_conv")
    # two markets, two steps; market 1's episode ends at step 1, market 0's at step 2
    log.add_step([[1.0, 2.0, -3.0], [4.0, 0.0, -1.0]], [False, True],
                 _market(np.array([0.2, np.nan]), np.array([2.0, 0.0]), np.array([0.5, 0.0])), [0.1, 0.1])
    log.add_step([[1.0, 1.0, -1.0], [9.0, 9.0, 9.0]], np.array([[True] * 3, [False] * 3]),
                 _market(np.array([0.3, 0.1]), np.array([1.0, 3.0]), np.array([1.5, 2.0])), [0.2, 0.0])
    assert not log.nash_due
    row = log.end_update(48)
    assert row.updates == 1 and row.episodes == 2
    # sellers: market 1 ends with (4, 0), market 0 with (2, 3); buyers: -1 and -4
    assert row.returns == {"sellers": pytest.approx(2.25, abs=1e-15), "buyers": pytest.approx(-2.5, abs=1e-15)}
    assert row.clearing_price == pytest.approx((0.2 + 0.3 + 0.1) / 3, abs=1e-15)  # the empty book (nan) left out
    assert row.traded_kwh == pytest.approx(6.0 / 4, abs=1e-15) and row.welfare == pytest.approx(4.0 / 4, abs=1e-15)
    # volume-weighted (p - lam) / lam over steps with trade and lam > 0: (0.2, 2 kWh, 0.1), (0.3, 1 kWh, 0.2)
    assert row.markup_rel == pytest.approx((2 * 1.0 + 1 * 0.5) / 3, abs=1e-15)
    assert row.nash_conv is None
    assert log.nash_due
    log.add_step([[0.0, 0.0, 0.0]] * 2, [False, False], _market(np.full(2, np.nan), np.zeros(2), np.zeros(2)))
    row2 = log.end_update(96, nash_conv=0.25)
    assert math.isnan(row2.returns["sellers"]) and math.isnan(row2.clearing_price) and math.isnan(row2.markup_rel)
    log.close()
    text = (tmp_path / CSV_NAME).read_text().splitlines()
    assert text[1].endswith(",") and text[2].endswith(",nan,nan,nan,0.0,0.0,nan,0.25")  # empty: not measured
    rows = read_market_log(tmp_path / CSV_NAME)
    assert rows[0]["nash_conv"] is None and rows[1]["nash_conv"] == 0.25 and rows[0]["agent_steps"] == 48


def test_resume_keeps_rows_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    log = MarketLog(tmp_path, {"all": [0, 1]})
    for k in range(3):
        log.add_step([[1.0, 1.0]], [True], _market(0.2, 1.0, 0.1))
        log.end_update(10 * (k + 1))
    with open(tmp_path / CSV_NAME, "a") as f:
        f.write("40,4,1,1.0")  # a crash mid-line
    log2 = MarketLog(tmp_path, {"all": [0, 1]}, resume_step=20)
    assert log2.updates == 2
    log2.add_step([[1.0, 1.0]], [True], _market(0.2, 1.0, 0.1))
    log2.end_update(30)
    assert [r["agent_steps"] for r in read_market_log(tmp_path / CSV_NAME)] == [10, 20, 30]
    assert [r["updates"] for r in read_market_log(tmp_path / CSV_NAME)] == [1, 2, 3]
    with pytest.raises(ValueError, match="header"):
        MarketLog(tmp_path, {"sellers": [0]}, resume_step=20)
    MarketLog(tmp_path, {"sellers": [0]})  # a fresh run replaces the file
    assert (tmp_path / CSV_NAME).read_text().count("\n") == 1


def test_bad_input_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="nash_conv_every"):
        MarketLog(tmp_path, {"all": [0]}, nash_conv_every=-1)
    with pytest.raises(ValueError, match="groups"):
        MarketLog(tmp_path, {"bad name": [0]})
    log = MarketLog(tmp_path, {"all": [0, 1]})
    with pytest.raises(ValueError, match="rewards"):
        log.add_step([1.0, 2.0], [False], _market(0.2, 1.0, 0.0))
    with pytest.raises(ValueError, match="'welfare'"):
        log.add_step([[1.0, 2.0]], [False], {"clearing_price": 0.2, "volume_kwh": 1.0})
    with pytest.raises(ValueError, match="comp_price"):
        log.add_step([[1.0, 2.0]], [False], _market(0.2, 1.0, 0.0), [0.1, 0.2])
    with pytest.raises(ValueError, match="end_update"):
        log.end_update(0)
    with pytest.raises(ValueError, match="nash_conv_every"):
        SB3Config(nash_conv_every=-2)


def test_agent_groups():
    env = seller_buyer_env_fn(2)()
    assert agent_groups(env, SELLERS) == {"sellers": [0, 1]}
    assert agent_groups(env) == {"sellers": [0, 1], "buyers": [2, 3, 4]}
    plain = auction_v0.parallel_env(n_prosumers=3)
    assert agent_groups(plain) == {"all": [0, 1, 2]} and agent_groups(plain, ["prosumer_1"]) == {"learners": [0]}
    with pytest.raises(ValueError, match="learners"):
        agent_groups(plain, ["nobody"])


# -- SB3 shared trainer ---------------------------------------------------------------------------
class _Recorder(BaseCallback):
    """The market infos of copy 0..M-1 and the slots' rewards of every step; NashConv at rollout ends."""

    def __init__(self, slots, env, nash_every=0):
        super().__init__()
        self.slots, self.env, self.nash_every = slots, env, nash_every
        self.steps, self.rollouts, self.nash = [], [], []

    def _on_step(self):
        inf = self.locals["infos"]
        self.steps.append((np.asarray(self.locals["rewards"], np.float64).copy(),
                           np.asarray(self.locals["dones"]).copy(),
                           [dict(inf[i]["market"]) for i in range(0, len(inf), self.slots)]))
        return True

    def _on_rollout_end(self):
        self.rollouts.append(len(self.steps))
        if self.nash_every and len(self.rollouts) % self.nash_every == 0:
            pol = SharedPolicy(self.model, "ppo", False, self.env.observation_space("prosumer_0").shape[0])
            self.nash.append(eval_nash_conv(self.env, Assigned({a: pol for a in SELLERS},
                                                               default=TruthfulAgent(self.env.config)),
                                            seed=0, players=[0, 1]))


def test_shared_ppo_rows_equal_the_infos_of_each_rollout_and_nash_conv_every_k(tmp_path):
    f = seller_buyer_env_fn(2)
    env = f()
    truth = TruthfulAgent(env.config)
    cfg = SB3Config(total_steps=384, n_copies=2, n_steps=48, batch_size=48, n_epochs=1, seed=0, nash_conv_every=2,
                    tensorboard=True)
    train_shared(f, cfg, tmp_path / "run", learners=SELLERS, others=truth)
    rows = read_market_log(tmp_path / "run" / CSV_NAME)
    assert list(rows[0]) == COLS
    # 384 agent-steps / (2 copies x 2 sellers x 48 steps) = 2 rollouts
    assert [r["agent_steps"] for r in rows] == [192, 384] and [r["updates"] for r in rows] == [1, 2]
    assert rows[0]["nash_conv"] is None and rows[1]["nash_conv"] > 0
    for r in rows:
        assert all(math.isfinite(r[c]) for c in COLS if c != "nash_conv")
    # replicate the run with a recorder next to the callback: same rows, and the rows are the infos' means
    venv = MarketVecEnv([f] * 2, learners=SELLERS, others=truth)
    model = make_model(cfg, venv)
    log = MarketLog(tmp_path / "rep", {"sellers": [0, 1]}, nash_conv_every=2)
    rec = _Recorder(2, f(), nash_every=2)

    def nash(m):
        pol = SharedPolicy(m, "ppo", False, venv.max_dim)
        return eval_nash_conv(f(), Assigned({a: pol for a in SELLERS}, default=truth), seed=0, players=[0, 1])

    model.learn(384, callback=CallbackList([MarketLogCallback(log, 2, nash_fn=nash), rec]), tb_log_name="shared")
    assert (tmp_path / "rep" / CSV_NAME).read_text() == (tmp_path / "run" / CSV_NAME).read_text()
    env.reset(seed=0)
    lam = competitive_joint_action(env.ctx, env.config)[1]  # the same every step: the market is stationary
    assert lam == pytest.approx(0.14, abs=1e-9)
    start = 0
    for r, end in zip(rows, rec.rollouts):
        steps = rec.steps[start:end]
        p = np.array([m["clearing_price"] for _, _, ms in steps for m in ms])
        v = np.array([m["volume_kwh"] for _, _, ms in steps for m in ms])
        w = np.array([m["welfare"] for _, _, ms in steps for m in ms])
        assert r["clearing_price"] == pytest.approx(np.mean(p), rel=1e-12)
        assert r["traded_kwh"] == pytest.approx(np.mean(v), rel=1e-12)
        assert r["welfare"] == pytest.approx(np.mean(w), rel=1e-12)
        assert r["markup_rel"] == pytest.approx(np.sum(v * (p - lam) / lam) / np.sum(v), rel=1e-9)
        rew = np.stack([x for x, _, _ in steps])  # (48, 4 slots): episodes of 24 steps, aligned
        ep = rew.reshape(2, 24, 4).sum(1)  # 2 episodes x 4 slots
        assert r["episodes"] == 4 and r["return_sellers"] == pytest.approx(ep.mean(), rel=1e-12)
        start = end
    assert rec.nash == [rows[1]["nash_conv"]]
    # tensorboard: SB3's own scalars and the market scalars, read back
    ea = EventAccumulator(str(tmp_path / "run" / "tb" / "market"))
    ea.Reload()
    assert {f"market/{c}" for c in COLS[2:]} <= set(ea.Tags()["scalars"])
    pts = ea.Scalars("market/clearing_price")
    assert [p.step for p in pts] == [192, 384]
    assert [p.value for p in pts] == pytest.approx([r["clearing_price"] for r in rows], rel=1e-6)
    assert [p.step for p in ea.Scalars("market/nash_conv")] == [384]
    sb3 = EventAccumulator(str(tmp_path / "run" / "tb" / "shared_1"))
    sb3.Reload()
    assert "train/value_loss" in sb3.Tags()["scalars"]


class _LamEnv(auction_v0.AuctionEnv):
    """auction_v0 that records the competitive price of every step before playing it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.lams = []

    def step(self, actions):
        self.lams.append(competitive_joint_action(self.ctx, self.config)[1])
        return super().step(actions)


def test_markup_rel_uses_the_competitive_price_of_the_step_played(tmp_path):
    env = _LamEnv(n_prosumers=4, max_cycles=6, seed=1)  # households: lambda changes from step to step
    venv = MarketVecEnv([lambda: env])
    model = make_model(SB3Config(n_steps=12, batch_size=24, n_epochs=1, seed=0), venv)
    log = MarketLog(tmp_path, agent_groups(env))
    rec = _Recorder(4, env)
    model.learn(96, callback=CallbackList([MarketLogCallback(log, 4), rec]))
    rows = read_market_log(tmp_path / CSV_NAME)
    lam = np.array(env.lams)
    assert len(rows) == 2 and len(lam) == 24 and np.ptp(lam) > 0.01
    start = 0
    for r, end in zip(rows, rec.rollouts):
        p = np.array([ms[0]["clearing_price"] for _, _, ms in rec.steps[start:end]])
        v = np.array([ms[0]["volume_kwh"] for _, _, ms in rec.steps[start:end]])
        ok = (v > 0) & (lam[start:end] > 0)
        mr = (p - lam[start:end]) / lam[start:end]
        assert r["markup_rel"] == pytest.approx(np.sum(v[ok] * mr[ok]) / np.sum(v[ok]), rel=1e-9)
        start = end


def test_nash_conv_and_markup_do_not_change_training(tmp_path):
    f = seller_buyer_env_fn(2)
    truth = TruthfulAgent(f().config)
    base = dict(total_steps=192, n_steps=48, batch_size=48, n_epochs=1, seed=3)
    for name, extra in (("a", dict(nash_conv_every=1)), ("b", dict(market_markup=False))):
        train_shared(f, SB3Config(**base, **extra), tmp_path / name, learners=SELLERS, others=truth)
    a, b = (read_market_log(tmp_path / n / CSV_NAME) for n in "ab")
    assert [r["clearing_price"] for r in a] == [r["clearing_price"] for r in b]
    assert all(r["nash_conv"] is not None for r in a) and all(r["nash_conv"] is None for r in b)
    assert all(math.isnan(r["markup_rel"]) for r in b) and all(math.isfinite(r["markup_rel"]) for r in a)


def test_shared_sac_writes_one_row_per_window(tmp_path):
    f = seller_buyer_env_fn(2)
    cfg = SB3Config(algo="sac", total_steps=120, n_steps=24, batch_size=16, learning_starts=20, seed=0,
                    net_arch=(16,))
    train_shared(f, cfg, tmp_path, learners=SELLERS, others=TruthfulAgent(f().config))
    rows = read_market_log(tmp_path / CSV_NAME)
    # 60 env steps of 2 slots in windows of 24 env steps: 24, 24 and a last partial window of 12
    assert [r["agent_steps"] for r in rows] == [48, 96, 120] and [r["episodes"] for r in rows] == [1, 1, 0]
    assert math.isnan(rows[2]["return_sellers"]) and math.isfinite(rows[2]["clearing_price"])


# -- independent learners ---------------------------------------------------------------------------
def test_independent_tensorboard_files_hold_scalars_and_rows_follow_updates(tmp_path):
    f = seller_buyer_env_fn(2)
    cfg = SB3Config(total_steps=192, n_steps=24, batch_size=24, n_epochs=1, seed=0, tensorboard=True,
                    nash_conv_every=2)
    train_independent(f, cfg, tmp_path, learners=SELLERS, others=TruthfulAgent(f().config))
    rows = read_market_log(tmp_path / CSV_NAME)
    assert list(rows[0]) == COLS
    assert [r["agent_steps"] for r in rows] == [48, 96, 144, 192]  # 96 env steps, a row per 24
    assert [r["nash_conv"] is not None for r in rows] == [False, True, False, True]
    assert all(r["episodes"] == 1 and math.isfinite(r["return_sellers"]) for r in rows)
    for agent in SELLERS:  # the per-model SB3 loggers used to write empty event files
        ea = EventAccumulator(str(tmp_path / "tb" / f"{agent}_1"))
        ea.Reload()
        assert len(ea.Scalars("train/value_loss")) == 4
    ea = EventAccumulator(str(tmp_path / "tb" / "market"))
    ea.Reload()
    assert [p.step for p in ea.Scalars("market/return_sellers")] == [48, 96, 144, 192]
    assert [p.value for p in ea.Scalars("market/nash_conv")] == pytest.approx(
        [rows[1]["nash_conv"], rows[3]["nash_conv"]], rel=1e-6)


# -- SB3 on the vector env ------------------------------------------------------------------------
class _VecRecorder(BaseCallback):
    def __init__(self):
        super().__init__()
        self.prices, self.rollouts = [], []

    def _on_step(self):
        self.prices.append(self.training_env.last_infos["market"]["clearing_price"].copy())
        return True

    def _on_rollout_end(self):
        self.rollouts.append(len(self.prices))


def test_sb3_vector_env_rows_equal_last_infos(tmp_path):
    from stable_baselines3 import PPO

    cfg = dict(n_prosumers=3, max_cycles=6)
    venv = make_sb3_vector_env("auction_v0", 2, seed=0, **cfg)
    cb = market_log_callback(venv, tmp_path, nash_conv_every=1, eval_env_fn=lambda: auction_v0.parallel_env(**cfg),
                             tensorboard=True)
    rec = _VecRecorder()
    model = PPO("MlpPolicy", venv, n_steps=12, batch_size=36, n_epochs=1, seed=0, device="cpu")
    model.learn(144, callback=CallbackList([cb, rec]))
    rows = read_market_log(tmp_path / CSV_NAME)
    assert [r["agent_steps"] for r in rows] == [72, 144] and list(rows[0])[3] == "return_all"
    start = 0
    for r, end in zip(rows, rec.rollouts):
        p = np.concatenate(rec.prices[start:end])
        assert r["clearing_price"] == pytest.approx(np.nanmean(p), rel=1e-12)
        assert r["episodes"] == 4 and math.isnan(r["markup_rel"]) and r["nash_conv"] >= 0
        start = end
    ea = EventAccumulator(str(tmp_path / "tb" / "market"))
    ea.Reload()
    assert len(ea.Scalars("market/nash_conv")) == 2
    with pytest.raises(ValueError, match="eval_env_fn"):
        market_log_callback(venv, tmp_path / "x", nash_conv_every=1)


# -- CLI: run.json and the logs of a --sellers run --------------------------------------------------
def test_cli_sellers_run_records_the_full_env_config_and_writes_market_logs(tmp_path):
    out = tmp_path / "ppo"
    base = ["train", "--algo", "ppo", "--sb3", "--sellers", "2", "--seed", "4", "--out", str(out), "--checkpoint-every", "96",
            "--tensorboard"]
    assert cli.main(base + ["--steps", "192"]) == 0
    spec = json.loads((out / "run.json").read_text())
    ec = spec["env_config"]
    assert ec["name"] == "auction_v0" and ec["class"] == "p2penv.envs.config.MarketConfig"
    assert ec["n_prosumers"] == 5 and ec["seed"] == 4 and ec["mechanism"] == "uniform" and ec["max_cycles"] == 24
    assert ec["generator"] == {"class": "p2penv.generators.sellers_buyers.SellerBuyerMarket", "n_sellers": 2,
                               "capacity_ratio": 1.5, "demand_kw": 2.0, "a0": 0.005, "b": 0.08, "buyer_values": None}
    assert spec["env"] == {} and spec["sellers"] == 2  # the options the run is rebuilt from
    rows = read_market_log(out / CSV_NAME)
    assert [r["agent_steps"] for r in rows] == [192] and "return_sellers" in rows[0]
    assert EventAccumulator(str(out / "tb" / "market")).Reload().Scalars("market/traded_kwh")[0].step == 192
    # resume: rows continue without duplicates; run.json still works as --config
    assert cli.main(base + ["--steps", "384", "--resume"]) == 0
    assert [r["agent_steps"] for r in read_market_log(out / CSV_NAME)] == [192, 384]
    again = tmp_path / "again"
    assert cli.main(["train", "--config", str(out / "run.json"), "--steps", "192", "--out", str(again)]) == 0
    assert json.loads((again / "run.json").read_text())["env_config"] == ec
    assert read_market_log(again / CSV_NAME) == read_market_log(out / CSV_NAME)[:1]  # deterministic


def test_qlearning_writes_market_log_with_nash_conv(tmp_path):
    """Q-learning (market kernel): one row per log_every steps, means over sessions, NashConv every k rows."""
    from p2penv.agents.market_log import read_market_log
    from p2penv.agents.qlearning import QConfig, QLearners
    from p2penv.seller_buyer import seller_buyer_env_fn, sellers

    f = seller_buyer_env_fn(2, 3)
    q = QLearners(f, QConfig(total_steps=96, n_sessions=2, log_every=48, nash_conv_every=2, seed=0),
                  learners=sellers(2))
    q.train(tmp_path)
    rows = read_market_log(tmp_path / "market_log.csv")
    assert [r["agent_steps"] for r in rows] == [96.0, 192.0]
    assert rows[0]["nash_conv"] is None and rows[1]["nash_conv"] >= 0.0
    # 48 steps = two 24-step episodes of each of the 2 sessions
    assert [r["episodes"] for r in rows] == [4.0, 4.0]
    assert all(r["traded_kwh"] > 0 and 0.0 <= r["clearing_price"] <= 0.30 for r in rows)
    assert "return_sellers" in rows[0] and "return_buyers" not in rows[0]
