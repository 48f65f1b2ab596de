"""p2penv.experiments.stats on hand-checkable data, cross-checked against scipy.stats."""
import json

import numpy as np
import pytest
from scipy import stats as sps

from p2penv.experiments import stats

# PPO's markups at N = 2 in elastic-uniform (issue 18): bimodal, where a t interval misleads
PPO_N2 = [0.692] * 4 + [0.764, 0.839] + [1.0] * 4


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # (3+4+5+6)/4
    # n = 10 drops 2 at each end: (0.692*2 + 0.764 + 0.839 + 1.0*2) / 6
    assert stats.iqm(PPO_N2) == pytest.approx(4.987 / 6, abs=1e-12)
    assert stats.iqm([0.077] * 6 + [-0.5, 0.077, 0.077, 0.077]) == pytest.approx(0.077)
    rng = np.random.default_rng(0)
    for n in (4, 7, 10, 13):
        x = rng.normal(size=n)
        assert stats.iqm(x) == pytest.approx(sps.trim_mean(x, 0.25), abs=1e-12)


def test_nan_is_counted_never_dropped_silently():
    a, nf, nt = stats.finite([1.0, np.nan, 3.0, np.inf])
    assert a.tolist() == [1.0, 3.0] and (nf, nt) == (2, 4)
    iv = stats.stratified_bootstrap([1.0, np.nan, 3.0], "mean", reps=200)
    assert (iv.n_finite, iv.n_total, iv.point) == (2, 3, 2.0)
    assert stats.format_interval(iv).endswith("(2/3)")
    c = stats.summarise_cell([np.nan, np.nan])
    assert (c.n_finite, c.n_total) == (0, 2) and np.isnan(c.mean)
    rows = [dict(m="a", seed=s, v=v) for s, v in enumerate([1.0, np.nan, 2.0])] + [dict(m="b", seed=0)]
    out = {r["m"]: r for r in stats.summarise_rows(rows, ("m",), ("v",), reps=100)}
    assert (out["a"]["v_n"], out["a"]["v_n_total"]) == (2, 3)
    assert (out["b"]["v_n"], out["b"]["v_n_total"]) == (0, 1)  # the row without the metric is a missing seed


def test_zero_width_only_when_deterministic():
    det = stats.stratified_bootstrap([0.3] * 5, "iqm")
    assert det.deterministic and det.width == 0.0 and det.point == 0.3
    assert stats.format_interval(det) == "0.300 (identical over 5/5 seeds)"
    iv = stats.stratified_bootstrap(PPO_N2, "iqm", reps=4000, seed=1)
    assert not iv.deterministic and iv.lo < iv.point < iv.hi and iv.width > 0.1
    assert stats.format_interval(iv).startswith("0.831 [")
    c = stats.summarise_cell(PPO_N2)
    assert c.median == pytest.approx(0.8015) and c.mean == pytest.approx(0.8371)  # (4*0.692 + 0.764 + 0.839 + 4) / 10


def test_stratified_bootstrap_matches_scipy_percentile_bootstrap():
    """One task: the stratified bootstrap is the ordinary one; scipy's percentile interval of the mean
    and of the IQM agree to Monte-Carlo error (20,000 replicates each, different random streams)."""
    x = np.random.default_rng(3).gamma(2.0, 1.0, size=24)
    for name, fn in (("mean", np.mean), ("iqm", lambda a, axis: sps.trim_mean(a, 0.25, axis=axis))):
        ours = stats.stratified_bootstrap(x, name, reps=20_000, seed=0)
        ref = sps.bootstrap((x,), fn, n_resamples=20_000, method="percentile", random_state=1,
                            vectorized=True).confidence_interval
        assert ours.lo == pytest.approx(ref.low, abs=0.03) and ours.hi == pytest.approx(ref.high, abs=0.03)
    # stratified: (runs, tasks) resamples each column on its own, the point pools every run
    two = np.column_stack([np.arange(8.0), 100 + np.arange(8.0)])
    iv = stats.stratified_bootstrap(two, "mean", reps=2000)
    assert iv.point == pytest.approx(53.5) and (iv.n_finite, iv.n_total) == (16, 16)
    assert 50.0 < iv.lo < 53.5 < iv.hi < 57.0  # the task means never mix, unlike a pooled bootstrap


def test_probability_of_improvement_is_mann_whitney():
    x, y = [1.0, 2.0, 3.0], [0.0, 2.0, 2.0]
    p = stats.probability_of_improvement(x, y, reps=500)
    assert p.point == pytest.approx(6 / 9)  # 5 wins + 2 ties / 2 of 9 pairs
    assert p.point == pytest.approx(sps.mannwhitneyu(x, y).statistic / 9)
    assert stats.probability_of_improvement([1.0] * 3, [1.0] * 3).point == 0.5
    two = stats.probability_of_improvement({"a": [2.0, 3.0], "b": [0.0]}, {"a": [1.0, 4.0], "b": [1.0]}, reps=200)
    assert two.point == pytest.approx((0.5 + 0.0) / 2)  # task a: 2 of 4 pairs; task b: 0
    assert 0.0 <= two.lo <= two.point <= two.hi <= 1.0


def test_performance_profile():
    prof = stats.performance_profile([0.0, 1.0, 2.0, 3.0], [-1.0, 0.0, 1.5, 3.0])
    np.testing.assert_allclose(prof, [1.0, 0.75, 0.5, 0.0])
    prof = stats.performance_profile({"a": [0.0, 1.0], "b": [5.0, np.nan]}, [0.5])
    np.testing.assert_allclose(prof, [(0.5 + 1.0) / 2])


def test_paired_comparison_ten_of_ten_seeds():
    """All ten seeds one way: Wilcoxon's exact two-sided p = 2 / 2^10 (the issue's storage-community case)."""
    truthful = np.linspace(1.0, 2.0, 10)
    ppo = truthful - np.arange(1, 11) * 0.01
    r = stats.paired_comparison(ppo, truthful, reps=2000)
    assert r.p_wilcoxon == pytest.approx(2 / 2**10)
    assert (r.wins, r.losses, r.ties, r.n_pairs, r.n_total) == (0, 10, 0, 10, 10)
    assert r.mean_diff == pytest.approx(-0.055) and r.hi < 0.0
    # a NaN seed is a missing pair, counted
    ppo[3] = np.nan
    r = stats.paired_comparison(ppo, truthful)
    assert (r.n_pairs, r.n_total) == (9, 10) and r.p_wilcoxon == pytest.approx(2 / 2**9)
    # identical methods: zero-width interval, no test
    same = stats.paired_comparison(truthful, truthful)
    assert (same.mean_diff, same.lo, same.hi, same.ties) == (0.0, 0.0, 0.0, 10) and np.isnan(same.p_wilcoxon)


def test_paired_by_seed_matches_rows_on_seeds():
    rows = ([dict(scenario="s", method="a", seed=k, profit=float(k)) for k in range(6)]
            + [dict(scenario="s", method="b", seed=k, profit=k + 1.0) for k in range(1, 6)]
            + [dict(scenario="t", method="a", seed=0, profit=99.0)])
    r = stats.paired_by_seed(rows, "profit", "a", "b", where={"scenario": "s"})
    assert (r.n_pairs, r.n_total, r.losses, r.mean_diff) == (5, 6, 5, -1.0)


def test_marl_eval_layout():
    rows = [dict(scenario="auction_v0/sellers3-v0", method="ppo_shared", seed=s, agent_steps=100, profit=1.0 + s,
                 nash_conv=float("nan")) for s in range(2)]
    d = stats.marl_eval_json(rows, ("profit", "nash_conv"), task_key="scenario", env_name="p2penv")
    run = d["p2penv"]["auction_v0/sellers3-v0"]["ppo_shared"]["run_1"]
    assert run["step_0"]["step_count"] == 100 and run["step_0"]["profit"] == [2.0]
    assert run["absolute_metrics"]["profit"] == [2.0] and np.isnan(run["absolute_metrics"]["nash_conv"][0])
    assert json.loads(json.dumps(d))["p2penv"]["auction_v0/sellers3-v0"]["ppo_shared"]["run_0"]["step_0"]["profit"] == [1.0]
    with pytest.raises(ValueError, match="two rows"):
        stats.marl_eval_json(rows + rows[:1], ("profit",), task_key="scenario")


def test_wilcoxon_exact_matches_scipy():
    """The exact signed-rank null by dynamic programming equals scipy's exact p without ties, and scipy's
    (fully enumerated) permutation p with ties and zeros for n <= 13."""
    rng = np.random.default_rng(5)
    for n in (3, 6, 9, 12):
        d = rng.normal(0.3, 1.0, size=n)
        assert stats.wilcoxon_exact(d) == pytest.approx(sps.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    tied = np.array([1.0, 1.0, 1.0, -1.0, 2.0, 2.0, -2.0, 3.0, 0.5, 1.0, 0.0])
    assert stats.wilcoxon_exact(tied) == pytest.approx(sps.wilcoxon(tied).pvalue, rel=1e-9)
    assert stats.wilcoxon_exact(np.ones(10)) == pytest.approx(2 / 2**10)
    assert np.isnan(stats.wilcoxon_exact([0.0, 0.0]))


def test_round_off_differences_are_ties():
    """An exact solver's 1e-9 markups are not ten losses (p = 0.002) but ten ties (no test)."""
    ref = np.full(10, 0.385)
    r = stats.paired_comparison(ref - 1e-9, ref)
    assert (r.wins, r.losses, r.ties) == (0, 0, 10) and np.isnan(r.p_wilcoxon)
    r = stats.paired_comparison(ref - 1e-9, ref, atol=0.0)
    assert r.losses == 10 and r.p_wilcoxon == pytest.approx(2 / 2**10)


def test_sum_of_means_bootstrap():
    # two players x (3 responder seeds, 4 markets): the point is the sum of the players' means
    a = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    b = np.array([[5.0, 5.0, 5.0, 5.0], [4.0, 6.0, 5.0, 5.0], [np.nan, 1.0, 1.0, 1.0]])
    iv = stats.sum_of_means_bootstrap([a, b], reps=3000)
    assert iv.point == pytest.approx(a.mean() + b[:2].mean())
    assert (iv.n_finite, iv.n_total) == (5, 6)  # the responder with a NaN market is counted, not used
    assert iv.lo < iv.point < iv.hi and not iv.deterministic
    det = stats.sum_of_means_bootstrap([np.full((3, 2), 0.5), np.full((2, 2), -1.0)])
    assert det.deterministic and det.width == 0.0 and det.point == pytest.approx(-0.5)
    assert np.isnan(stats.sum_of_means_bootstrap([a, np.full((1, 4), np.nan)]).point)
    with pytest.raises(ValueError, match="same episodes"):
        stats.sum_of_means_bootstrap([a, np.ones((2, 3))])


def test_cross_check_with_rliable():
    """One figure of the algorithm benchmark recomputed with rliable (optional extra ``stats``): the IQM and its
    stratified-bootstrap interval of the learner profit over the scenarios Q-learning ran, and Q-learning's
    probability of improvement over truthful. Points agree exactly; interval ends to Monte-Carlo error."""
    rly = pytest.importorskip("rliable")
    from rliable import library, metrics

    from p2penv.experiments.report import RESULTS

    runs = json.loads((RESULTS / "algorithm_benchmark.json").read_text())["runs"]
    scen = sorted({r["scenario"] for r in runs if r["method"] == "qlearning"})
    assert len(scen) >= 2, rly

    def matrix(m):  # (runs, tasks) as rliable takes them
        return np.column_stack([[r["profit"] for r in runs if r["scenario"] == sc and r["method"] == m]
                                for sc in scen])

    q, t = matrix("qlearning"), matrix("truthful")
    ours = stats.stratified_bootstrap(q, "iqm", reps=20_000, seed=0)
    assert ours.point == pytest.approx(metrics.aggregate_iqm(q), abs=1e-12)
    point, ci = library.get_interval_estimates({"q": q}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=20_000)
    assert point["q"][0] == pytest.approx(ours.point, abs=1e-12)
    tol = 0.05 * ours.width + 1e-9
    assert ci["q"][0, 0] == pytest.approx(ours.lo, abs=tol) and ci["q"][1, 0] == pytest.approx(ours.hi, abs=tol)
    poi = stats.probability_of_improvement(q, t, reps=200)
    assert poi.point == pytest.approx(metrics.probability_of_improvement(q, t), abs=1e-12)
