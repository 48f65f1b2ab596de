"""Pure equilibria as a set, and the "nash" label (issue 18, item 1), on the market-power study's
elastic-uniform market (p2penv.experiments.market_power, seed 0; stage game identical every step)."""
import numpy as np
import pytest

from p2penv.agents.baselines import competitive_joint_action
from p2penv.diagnostics.equilibrium_set import (
    NASH_TOL,
    label_joint,
    label_profile,
    pure_equilibria,
    symmetric_pure_equilibria,
)
from p2penv.diagnostics.grid_game import GridGame, price_dispatch_grid, symmetric_table
from p2penv.diagnostics.nash import action_grid
from p2penv.experiments.market_power import MarketPowerConfig, env_fns


def _market(n, setting="elastic-uniform"):
    single, _ = env_fns(MarketPowerConfig(), setting, n)
    env = single(0)()
    env.reset(seed=0)
    base, lam = competitive_joint_action(env.ctx, env.config)
    return env, base.astype(np.float64), lam


def test_labels():
    assert label_profile(3e-8).label == "nash" and label_profile(3e-8).is_equilibrium
    lab = label_profile(0.15)
    assert (lab.label, lab.nash_conv, lab.tol) == ("ibr (not converged)", 0.15, NASH_TOL)
    assert label_profile(float("nan")).label == "ibr (not converged)"
    assert label_profile(0.02, tol=0.05, solver="fictitious play").label == "nash"
    assert label_profile(0.2, solver="fictitious play").label == "fictitious play (not converged)"
    with pytest.raises(ValueError, match="tol"):
        label_profile(0.0, tol=-1.0)


def test_elastic_uniform_n2_study_grid_equilibria():
    """Study grid (21 prices x 11 dispatch levels): 36 equilibria up to permutation, all the issue's
    withholding point: each seller dispatches 1.8 kW (3.6 kW, just below the 4 kW demand step, where
    the 0.18 $/kWh buyer is marginal), asks anything <= 0.14: price 0.18, markup 0.385."""
    env, base, lam = _market(2)
    assert lam == pytest.approx(0.13)
    g = GridGame(env.ctx, env.rules, base, (0, 1), action_grid())
    assert g.is_symmetric() and g.k == 231
    eq = pure_equilibria(g, competitive_price=lam)
    assert eq.method == "symmetric-table" and eq.count == 36 and eq.books == 231 * 231
    assert eq.profiles_checked == 231 * 232 // 2
    np.testing.assert_allclose(eq.price, 0.18, atol=1e-8)  # buyers' float32 bids: 0.1799999997
    lo, hi = eq.range("markup_rel")
    assert lo == pytest.approx(0.18 / 0.13 - 1, abs=1e-7) and hi == pytest.approx(lo, abs=1e-12)
    kw = env.ctx.lo_kw[0] + 0.5 * (eq.actions[..., 1] + 1) * (env.ctx.hi_kw[0] - env.ctx.lo_kw[0])
    np.testing.assert_allclose(kw, 1.8)
    asks = 0.2 * (eq.actions[..., 0] + 1)  # floor 0, cap 0.40
    assert asks.max() == pytest.approx(0.14) and len(np.unique(np.round(asks, 6))) == 8
    # profit of each seller: 1.8 kWh x 0.18 - (0.01 x 1.8^2 + 0.08 x 1.8)
    np.testing.assert_allclose(eq.profit, 1.8 * 0.18 - (0.01 * 1.8**2 + 0.08 * 1.8), atol=1e-8)
    # the payoff tensor finds the same set, each asymmetric class in both orders: 8 + 2 x 28 profiles
    full = pure_equilibria(g, competitive_price=lam, symmetric=False)
    assert full.method == "payoff-tensor" and full.count == 64
    assert {tuple(p) for p in np.sort(full.profiles, axis=1)} == {tuple(p) for p in eq.profiles}
    # the all-equal profiles are an inner bound: the 8 classes (a, a)
    sym = symmetric_pure_equilibria(g, competitive_price=lam)
    assert sym.count == 8 and {tuple(p) for p in sym.profiles} <= {tuple(p) for p in eq.profiles}


def test_symmetric_table_matches_the_tensor_for_three_players():
    env, base, lam = _market(3)
    grid = price_dispatch_grid([0.10, 0.14, 0.18, 0.22, 0.26], [-1.0, -0.2, 0.3, 1.0], env.rules)
    g = GridGame(env.ctx, env.rules, base, (0, 1, 2), grid)
    a = pure_equilibria(g, competitive_price=lam)
    b = pure_equilibria(g, competitive_price=lam, symmetric=False)
    assert a.count > 0
    assert {tuple(p) for p in a.profiles} == {tuple(p) for p in np.sort(b.profiles, axis=1)}
    # payoffs depend on the others' multiset only (pro-rata ties): permuting a profile permutes rewards
    rng = np.random.default_rng(0)
    prof = rng.integers(0, g.k, size=(50, 3))
    np.testing.assert_allclose(g.payoffs(prof[:, [2, 0, 1]]), g.payoffs(prof)[:, [2, 0, 1]], atol=1e-12)
    tab = symmetric_table(g)
    row = tab.index(np.sort(prof[:, 1:], axis=1))
    np.testing.assert_allclose(tab.payoff[row, prof[:, 0]], g.payoffs(prof)[:, 0], atol=1e-12)
    assert tab.multiplicity.sum() == g.k ** 2  # every ordered pair of the others once


@pytest.mark.parametrize("n, step_kw, price, equilibrium", [
    (2, 3, 0.22, True), (2, 4, 0.18, True), (2, 5, 0.14, False), (5, 3, 0.22, False), (5, 4, 0.18, True)])
def test_withholding_points(n, step_kw, price, equilibrium):
    """The issue's points: every seller asks the competitive price 0.13 and together they offer just
    below a demand step (step - 1e-7 kW), so the buyer valuing the next step is marginal and sets the
    price. Exact NashConv (measured): N = 2: 1.3e-8 at the 3 kW step (price 0.22, markup 0.692, the
    issue's weak equilibrium), 1.2e-8 at 4 kW (0.18, markup 0.385), 0.08 at 5 kW; N = 5: 3.0e-8 at 4 kW,
    0.105 at 3 kW (IBR's 0.14 is the other equilibrium there). The supremum is not attained: the gain
    left is ~ the 1e-7 kW withheld, below NASH_TOL."""
    env, base, lam = _market(n)
    joint = base.copy()
    cap = env.ctx.hi_kw[0]
    joint[:n, 0] = 2.0 * 0.13 / 0.40 - 1.0
    joint[:n, 1] = 2.0 * ((step_kw - 1e-7) / n) / cap - 1.0
    from p2penv.market.pipeline import run_step

    assert run_step(joint, env.ctx, env.rules).clearing.clearing_price == pytest.approx(price, abs=1e-7)
    lab = label_joint(joint, env.ctx, env.rules, players=range(n))
    assert lab.is_equilibrium == equilibrium
    assert lab.nash_conv < 1e-7 if equilibrium else lab.nash_conv > 0.05


def test_competitive_profile_is_not_labelled_nash():
    """Truthful asks at the competitive dispatch: each seller gains by withholding."""
    env, base, lam = _market(2)
    lab = label_joint(base, env.ctx, env.rules, players=[0, 1])
    assert lab.label == "ibr (not converged)" and lab.nash_conv > 0.05


def test_market_power_nash_rows_carry_the_label():
    """market_power's IBR rows: "nash" only with exact NashConv <= NASH_TOL. Pay-as-bid has no pure
    equilibrium to find: IBR's row there is "ibr (not converged)" (issue 18: 0.13 $/step at N = 2)."""
    from dataclasses import replace

    from p2penv.experiments import market_power as mp

    cfg = replace(mp.QUICK, seeds=(0,), methods=("nash",))
    (row,) = mp.benchmark_rows(cfg, "elastic-pay_as_bid", 2, "nash")
    assert row["label"] == "ibr (not converged)" and row["nash_conv"] == pytest.approx(0.13, abs=1e-6)
    assert row["nash_tol"] == NASH_TOL and row["method"] == "nash"


def test_equilibrium_sets_study_cell():
    """The study's table row (experiments/equilibrium_sets.py) for elastic-uniform, N = 2: the 36 pure
    equilibria at 0.18, and a symmetric mixed equilibrium with its certificate (the MILP's time is
    cut to 0.5 s here, so the regret-matching path runs: the MILP can take a minute on this game)."""
    from p2penv.experiments.equilibrium_sets import cell

    r = cell("elastic-uniform", 2, mc=2000, milp_seconds=0.5)
    assert r["grid"] == "study" and r["pure"]["count"] == 36 and r["pure"]["prices"] == [0.18]
    assert r["all_equal_study_grid"]["count"] == 8
    assert r["mixed"]["nash_conv"] < 1e-6
