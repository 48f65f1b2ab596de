"""Learner validation (p2penv.experiments.learner_validation): the known answers, the smoke run of the
validated vector PPO, and that the validation can fail (the pre-validation PPO settings do)."""
import json
import math

import numpy as np
import pytest

from p2penv.agents.vector_ppo import ReturnNormalizer, VectorPPOConfig, _Trainer, steps_linked
from p2penv.experiments import learner_validation as lv


def test_known_answers_of_the_monopoly_tasks():
    # the optima quoted in the validation issue: exact stage best response x 24 steps
    assert lv.market_setup("monopoly/elastic-uniform").optimum == pytest.approx(9.00, abs=1e-5)
    assert lv.market_setup("monopoly/inelastic-uniform").optimum == pytest.approx(27.36, abs=1e-5)  # float32 actions
    s = lv.market_setup("best_response/N3-truthful")
    assert s.rival_profile == "truthful" and s.learners == ("prosumer_0",) and s.optimum > 0


def test_the_optimum_is_attained_by_its_own_action_and_nothing_on_a_grid_beats_it():
    s = lv.market_setup("monopoly/elastic-pay_as_bid")
    best = np.array(s.optimum_action, np.float32)
    p = lv.episode_profit(s.vector_fn, lambda o: np.broadcast_to(best, o.shape[:2] + (2,)).copy(), s.learners, s.others)
    assert p == pytest.approx(s.optimum, rel=1e-5)
    g = np.linspace(-1, 1, 21, dtype=np.float32)
    for u in g:
        for d in g[::4]:
            a = np.array([u, d], np.float32)
            assert lv.episode_profit(s.vector_fn, lambda o: np.broadcast_to(a, o.shape[:2] + (2,)).copy(),
                                     s.learners, s.others) <= s.optimum + 1e-9


def test_discount_follows_the_env():
    sb = lv.market_setup("monopoly/elastic-uniform").vector_fn(2, 0)
    sb.reset(seed=0)
    assert not steps_linked(sb)  # a stationary stage game: no storage, ramp never binds
    import p2penv

    arb = p2penv.make_vector("auction_v0/arbitrage_tou-v0", 2, seed=0)
    arb.reset(seed=0)
    assert steps_linked(arb)  # SOC links the steps
    fp = p2penv.make_vector("auction_v0/first_price2-v0", 2, seed=0)
    fp.reset(seed=0)
    assert not steps_linked(fp)  # one-step episodes
    tr = _Trainer(lv.market_setup("monopoly/elastic-uniform").vector_fn, VectorPPOConfig(num_envs=2, learners=(
        "prosumer_0",)), None, False, lv.market_setup("monopoly/elastic-uniform").others)
    assert tr.gamma == 0.0
    assert _Trainer(lv.market_setup("monopoly/elastic-uniform").vector_fn, VectorPPOConfig(num_envs=2, gamma=0.9,
                    learners=("prosumer_0",)), None, False, lv.market_setup("monopoly/elastic-uniform").others).gamma == 0.9


def test_return_normalizer_tracks_the_variance_of_returns():
    rn = ReturnNormalizer(n_agents=2, num_envs=4, gamma=0.0)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        rn.observe(rng.normal(0.0, [1.0, 3.0], size=(4, 2)), np.zeros((4, 2), bool))
    np.testing.assert_allclose(np.sqrt(rn.var), [1.0, 3.0], rtol=0.05)
    np.testing.assert_allclose(rn.inverse_std().numpy(), 1.0 / np.sqrt(rn.var + 1e-8), rtol=1e-6)
    back = ReturnNormalizer(2, 4, 0.0)
    back.load_state(json.loads(json.dumps(rn.state())))
    np.testing.assert_array_equal(back.var, rn.var)


def test_quick_validation_run_passes_with_the_default_ppo(tmp_path):
    out = lv.run(lv.QUICK, tmp_path / "lv")
    assert [r["passed"] for r in out["rows"]] == [True, True]
    for r in out["rows"]:
        assert r["score"] >= lv.PASS_SCORE and r["budget"] == lv.TASKS[r["task"]].budget
        assert len(r["curve"]) >= 2 and r["curve"][-1]["agent_steps"] == r["budget"]
    s = out["summary"][0]
    assert s["seeds"] == 1 and s["score_n_finite"] == 1 and s["score_iqm_ci"][0] == s["score_iqm_ci"][1]
    again = lv.run(lv.QUICK, tmp_path / "lv", resume=True)  # rows come back from the checkpoint
    assert [r["score"] for r in again["rows"]] == [r["score"] for r in out["rows"]]


def test_the_validation_can_fail_the_pre_validation_ppo_settings_do():
    # the vector PPO as it was before validation: clipped Gaussian, gamma 0.99, lr 3e-4 constant, 4 epochs,
    # one 8,192-sample minibatch: at the study budget it asks above every buyer and earns nothing
    task = lv.TASKS["monopoly/elastic-uniform"]
    built = lv.build(task)
    act, _ = lv.train_vector(task, "ppo_shared", 0, task.budget, built, action_dist="gaussian", gamma=0.99,
                             learning_rate=3e-4, lr_schedule="constant", epochs=4, minibatch_size=8192,
                             eval_point="mode")
    m = lv.score(task, built, act)
    assert not m["passed"] and m["score"] < 0.5


def test_applicability_and_fixed_profiles():
    assert lv.applies("qlearning", lv.TASKS["best_response/N3-nash"]) is not None
    assert lv.applies("qlearning", lv.TASKS["monopoly/elastic-uniform"]) is None
    # RLlib trains every agent of the env: the first-price seller must stay at its BNE ask, so it does not fit
    assert lv.applies("rllib_ppo", lv.TASKS["bayesian/first_price2"]) is not None
    assert lv.applies("rllib_ppo", lv.TASKS["bayesian/k_double"]) is None
    assert lv.applies("rllib_ppo", lv.TASKS["battery/wholesale"]) is None
    fp = lv.FixedProfile(np.arange(6, dtype=np.float32).reshape(3, 2), np.array([0]))
    np.testing.assert_array_equal(fp.act_batch(np.zeros((2, 4))), [[2, 3], [4, 5]])
    assert fp.act_vector(np.zeros((5, 3, 4))).shape == (5, 3, 2)
    with pytest.raises(ValueError, match="non-learners"):
        fp.act_batch(np.zeros((3, 4)))
    s = lv.summarise_runs([dict(task="monopoly/elastic-uniform", learner="ppo_shared", seed=k, budget=1, wall_s=1.0,
                                passed=False, score=x, time_to_solve_s=float("nan")) for k, x in enumerate([0.5, np.nan])])
    assert s[0]["score_n_finite"] == 1 and s[0]["seeds"] == 2 and s[0]["score_iqm"] == 0.5  # NaN counted, not dropped
    assert math.isnan(s[0]["time_to_solve_s_median"])


def test_tune_ppo_smoke_run_records_its_trials():
    from p2penv.experiments import tune_ppo

    out = tune_ppo.run(2, tasks=(("monopoly/inelastic-pay_as_bid", 768),))
    assert len(out["trials"]) == 2 and out["best"]["value"] == max(t["value"] for t in out["trials"])
    assert all(-10 < t["value"] <= 1.0 for t in out["trials"])
    assert set(out["trials"][0]["params"]) >= {"learning_rate", "epochs", "action_bins"}


def test_task_overrides_reach_the_trainer_and_merge_drops_rows_of_an_older_task_definition(tmp_path):
    kd = lv.TASKS["bayesian/k_double"]
    assert dict(kd.ppo_overrides) == {"action_dist": "tanh", "log_std_init": -1.0, "epochs": 3}
    # the overrides reach the trainer (a 1-update run is enough to read the config back)
    _, r = lv.train_vector(kd, "ppo_shared", 0, 1, lv.build(kd), num_envs=4)
    assert r.policy.config.action_dist == "tanh" and r.policy.config.log_std_init == -1.0 and r.policy.config.epochs == 3
    row = dict(task=kd.name, family="bayesian", learner="ppo_shared", seed=0, budget=kd.budget, applicable=True,
               passed=True, l2=0.01, utility_loss=0.0, wall_s=1.0, time_to_solve_s=1.0, ppo_overrides=dict(kd.ppo_overrides),
               curve=[], ppo_settings=lv.expected_ppo_settings(kd, "ppo_shared"))
    old = dict(row, budget=500_000, ppo_overrides={}, seed=1)  # the categorical 500k run of an earlier definition
    sb3 = dict(row, learner="sb3_ppo", ppo_overrides={}, budget=20_000)  # other learners keep their own budget
    assert lv.is_current(row) and lv.is_current(sb3) and not lv.is_current(old)
    assert not lv.is_current(dict(row, ppo_overrides={}))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "learner_validation_checkpoint.json").write_text(json.dumps(dict(rows=[row, old, sb3])))
    out = lv.merge([tmp_path / "a"])
    assert [(r["learner"], r["seed"]) for r in out["rows"]] == [("ppo_shared", 0), ("sb3_ppo", 0)]
    assert out["meta"]["superseded"] == {kd.name: 1}
    # a cell found twice with other numbers is an error, unless a replacing run (new rounding) holds it
    rerun = dict(row, l2=0.012)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "learner_validation_checkpoint.json").write_text(json.dumps(dict(rows=[rerun])))
    with pytest.raises(lv.CheckpointError, match="differs"):
        lv.merge([tmp_path / "a", tmp_path / "b"])
    out = lv.merge([tmp_path / "a"], replacing=[tmp_path / "b"])
    assert [(r["learner"], r["l2"]) for r in out["rows"]] == [("ppo_shared", 0.012), ("sb3_ppo", 0.01)]
    assert out["meta"]["replaced"] == {kd.name: 1}


def test_battery_rows_without_the_hour_onehot_are_superseded():
    bat, kd = lv.TASKS["battery/wholesale"], lv.TASKS["bayesian/k_double"]
    assert lv.hour_onehot_expected(bat) and not lv.hour_onehot_expected(kd)
    row = dict(task=bat.name, learner="ppo_shared", seed=0, budget=bat.budget, ppo_overrides=dict(bat.ppo_overrides),
               ppo_settings=lv.expected_ppo_settings(bat, "ppo_shared"))
    assert lv.is_current(dict(row, hour_onehot=True))
    assert not lv.is_current(row)  # a row from before the default (no flag: sin/cos only)
    assert not lv.is_current(dict(row, hour_onehot=False))
    assert lv.is_current(dict(task=kd.name, learner="mappo", seed=0, budget=kd.budget,
                              ppo_overrides=dict(kd.ppo_overrides),
                              ppo_settings=lv.expected_ppo_settings(kd, "mappo")))  # stage games: unchanged, off


def test_rows_record_how_the_ppo_learned_and_rows_of_other_defaults_are_superseded():
    task = lv.TASKS["monopoly/elastic-uniform"]
    row = lv.run_learner(task, "ppo_independent", 0, budget=768, curve_points=0)
    want = lv.expected_ppo_settings(task, "ppo_independent")
    assert row["ppo_settings"] == want and want["mode"] == "independent" and want["precision"] in ("bf16", "fp32")
    assert not set(want) & set(lv.RUN_FIELDS)  # the seed, size and threads of a run are not how it learns
    assert lv.is_current(dict(row, budget=task.budget))
    for stale in (dict(want, epochs=want["epochs"] + 1), dict(want, precision="fp32" if want["precision"] == "bf16"
                                                                  else "bf16"), None):
        assert not lv.is_current(dict(row, budget=task.budget, ppo_settings=stale))
    # a row written before a field was added (at a default that keeps the old behaviour) stays current
    older = {k: v for k, v in want.items() if k != "compile"}
    assert lv.is_current(dict(row, budget=task.budget, ppo_settings=older))


def test_sb3_runs_the_auctions_through_the_vector_adapter():
    row = lv.run_learner(lv.TASKS["bayesian/first_price2"], "sb3_ppo", 0, budget=4096)
    assert row["applicable"] and row["sb3_settings"] == lv.SB3_VECTOR_SETTINGS["bayesian"]
    assert np.isfinite(row["l2"]) and np.isfinite(row["utility_loss"]) and not row["passed"]
