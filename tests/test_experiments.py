"""Experiments with tiny budgets: outputs written, tables printed, deterministic numbers."""
import json
from dataclasses import replace

import numpy as np
import pytest

from p2penv.experiments import algorithm_benchmark as ab
from p2penv.experiments import collusion_probe as cp
from p2penv.experiments import market_power as mp
from p2penv.experiments import mechanism_comparison as mc
from p2penv.experiments.metrics import mean_ci, summarise
from p2penv.generators.sellers_buyers import SellerBuyerMarket


def test_seller_buyer_market_keeps_aggregate_supply():
    rng = np.random.default_rng(0)
    f2, f5 = SellerBuyerMarket(2)(5, 4, 1.0, 0.0, rng), SellerBuyerMarket(5)(8, 4, 1.0, 0.0, rng)
    assert f2.p_max_kw[0, :2].sum() == pytest.approx(f5.p_max_kw[0, :5].sum())
    # cost a0*N: N equal sellers at E = D/N have the same marginal cost for every N
    assert 2 * f2.cost_a[0] * 9 / 2 == pytest.approx(2 * f5.cost_a[0] * 9 / 5)
    with pytest.raises(ValueError, match="n_sellers"):
        SellerBuyerMarket(5)(5, 4, 1.0, 0.0, rng)


def test_mean_ci_and_summarise():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 / np.sqrt(3), rel=1e-3)
    s = summarise([dict(k=1, x=1.0), dict(k=1, x=3.0)], ("k",), ("x",))
    assert s[0]["x"] == 2.0 and s[0]["n_seeds"] == 2


def test_config_checks_name_the_field():
    from p2penv.experiments.study_cli import check_known, check_seeds

    check_known("methods", ("a",), ("a", "b"))
    with pytest.raises(ValueError, match=r"^methods: unknown \['c'\]; known \('a', 'b'\)$"):
        check_known("methods", ("a", "c"), {"a": 1, "b": 2})
    with pytest.raises(ValueError, match="^seeds: need at least one seed$"):
        check_seeds(())
    with pytest.raises(ValueError, match=r"^settings: unknown \['x'\]"):
        mp.MarketPowerConfig(settings=("x",))


def test_market_power_quick_writes_outputs_and_is_deterministic(tmp_path, capsys):
    cfg = replace(mp.QUICK, ns=(2, 3), seeds=(0, 1), ppo_steps=192)
    a = mp.run(cfg, tmp_path)
    assert (tmp_path / "market_power_curves.png").stat().st_size > 0
    # learning curves: the first curve seed of each learning method, NashConv at every update
    ppo = next(c for c in a["curves"] if c["method"] == "ppo_shared" and c["N"] == 2)
    assert ppo["seeds"] == 1 and ppo["agent_steps"] == [192, 384] and len(ppo["nash_conv"]) == 2
    row = next(r for r in a["rows"] if r["method"] == "ppo_shared" and r["N"] == 2 and r["seed"] == 0)
    assert row["agent_steps"] == 384 and row["nash_conv"] == ppo["nash_conv"][-1]
    b = mp.run(cfg, None)
    for f in ("market_power.json", "market_power.png", "market_power_runs.csv", "market_power_summary.csv"):
        assert (tmp_path / f).stat().st_size > 0
    assert [r["markup_rel"] for r in a["rows"]] == [r["markup_rel"] for r in b["rows"]]
    comp = [r for r in a["summary"] if r["method"] == "competitive"]
    assert all(r["welfare_loss_rel"] == pytest.approx(0.0, abs=1e-12) for r in comp)
    hhi = {r["N"]: r["hhi"] for r in comp}
    assert hhi[2] == pytest.approx(0.5) and hhi[3] == pytest.approx(1 / 3)
    assert "markup_rel" in capsys.readouterr().out
    assert json.loads((tmp_path / "market_power.json").read_text())["meta"]["config"]["ns"] == [2, 3]
    # experiments.stats: finite counts, IQM with bootstrap intervals, the "nash" label rule, paired by seed
    d = json.loads((tmp_path / "market_power.json").read_text())
    for r in d["summary"]:
        assert r["markup_rel_n_total"] == 2 and r["markup_rel_iqm_lo"] <= r["markup_rel_iqm"] <= r["markup_rel_iqm_hi"]
        assert r["label"] in ("nash", "ibr (not converged)") if r["method"] == "nash" else r["label"] == r["method"]
    assert {(p["x"], p["y"]) for p in d["paired"]} == {(m, y) for m in ("ppo_shared", "qlearning")
                                                        for y in ("nash", "competitive")}
    assert {(e["setting"], e["N"]) for e in d["equilibrium_sets"]} == {("elastic-uniform", 2), ("elastic-uniform", 3)}


def test_market_power_resumes_an_interrupted_run(tmp_path):
    cfg = replace(mp.QUICK, ns=(2,), seeds=(0, 1), ppo_steps=96, methods=("competitive", "nash", "ppo_shared"))
    full = mp.run(cfg, tmp_path / "full")
    # interrupt: keep the first 3 of the 6 checkpointed rows, as if the run died there
    ck = tmp_path / "full" / "market_power_checkpoint.json"
    saved = json.loads(ck.read_text())
    assert len(saved["rows"]) == 6
    saved["rows"] = saved["rows"][:3]
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "market_power_checkpoint.json").write_text(json.dumps(saved))
    res = mp.run(cfg, tmp_path / "cut", resume=True)
    assert res["meta"]["resumed_rows"] == 3
    assert [r["markup_rel"] for r in res["rows"]] == [r["markup_rel"] for r in full["rows"]]
    assert [r["profit"] for r in res["rows"]] == [r["profit"] for r in full["rows"]]
    # a different config never reuses stale rows
    other = mp.run(replace(cfg, ppo_steps=48), tmp_path / "cut", resume=True)
    assert other["meta"]["resumed_rows"] == 0


def test_algorithm_benchmark_quick(tmp_path):
    cfg = replace(ab.QUICK, seeds=(0,), ppo_steps=96, q_steps=300)
    r = ab.run(cfg, tmp_path)
    assert {x["method"] for x in r["summary"]} == set(cfg.methods)
    assert (tmp_path / "algorithm_benchmark.png").exists()
    assert all(np.isfinite(x["profit"]) and x["nash_conv"] >= 0 for x in r["rows"])
    assert {(p["x"], p["metric"]) for p in r["paired"]} == {(m, k) for m in cfg.methods if m != "truthful"
                                                           for k in ("profit", "welfare")}
    marl = json.loads((tmp_path / "algorithm_benchmark_marl_eval.json").read_text())
    assert set(marl["auction_v0"]) == {"sellers3-v0", "household6-v0"}
    assert "run_0" in marl["auction_v0"]["sellers3-v0"]["ppo_shared"]
    assert {p["x"] for p in r["aggregate"]["probability_of_improvement"] if p["y"] == "truthful"} == {
        m for m in cfg.methods if m != "truthful"}


def test_mechanism_comparison_quick(tmp_path):
    r = mc.run(replace(mc.QUICK, seeds=(0,), q_steps=300), tmp_path)
    rows = {(x["mechanism"], x["profile"]): x for x in r["rows"]}
    # same truthful bids, same matched volume; the uniform price is >= every accepted ask while
    # pay-as-bid pays exactly the ask, so truthful sellers never earn less under uniform pricing
    # (equal here: identical sellers ask the same price and the Walrasian price is that ask)
    assert rows["uniform", "truthful"]["profit"] >= rows["pay_as_bid", "truthful"]["profit"] - 1e-9
    assert rows["uniform", "truthful"]["price"] >= rows["pay_as_bid", "truthful"]["price"] - 1e-9
    assert (tmp_path / "mechanism_comparison_summary.csv").exists()


def test_benchmarks_on_a_known_profit_matrix():
    # symmetric 2x2 prisoners' dilemma in profits: NE (0, 0) pays 1, collusion (1, 1) pays 3 each
    pm = np.zeros((2, 2, 2))
    pm[0, 0] = 1, 1
    pm[1, 1] = 3, 3
    pm[0, 1] = 4, 0
    pm[1, 0] = 0, 4
    pi_n, pi_m, ne = cp.benchmarks(pm)
    assert (pi_n, pi_m, ne) == (1.0, 3.0, (0, 0))


@pytest.mark.slow
def test_market_power_demo_budget_shape():
    """The `make demo` budget (minutes): every metric finite, HHI of the competitive profile 1/N;
    the smoke version is test_market_power_quick_writes_outputs_and_is_deterministic."""
    r = mp.run(mp.DEMO, None)
    comp = {x["N"]: x for x in r["summary"] if x["method"] == "competitive"}
    assert all(comp[n]["hhi"] == pytest.approx(1 / n) for n in mp.DEMO.ns)
    assert all(np.isfinite(x["markup_rel"]) and np.isfinite(x["nash_conv"]) for x in r["rows"])


def test_scenario_baselines_quick_covers_storage_and_feeders(tmp_path):
    from p2penv.experiments import scenario_baselines as sb

    cfg = replace(sb.QUICK, q_steps=200)
    r = sb.run(cfg, tmp_path)
    got = {(x["scenario"], x["method"]) for x in r["summary"]}
    assert ("auction_v0/storage-community-v0", "competitive") in got
    assert ("auction_v0/sellers3-v0", "qlearning") in got
    assert ("auction_v0/storage-community-v0", "qlearning") not in got  # Q-learning is 2-dim only
    assert ("dlmp_v0/teaching4-v0", "truthful") in got
    assert all(np.isfinite(x["profit"]) and np.isfinite(x["welfare"]) for x in r["rows"])
