"""Mixed equilibria of discretised stage games (issue 18, item 2), validated on the closed form of the
capacity-constrained pay-as-bid duopoly (p2penv.diagnostics.bertrand_edgeworth)."""
import numpy as np
import pytest

from p2penv.diagnostics.bertrand_edgeworth import BertrandEdgeworth
from p2penv.diagnostics.equilibrium_set import pure_equilibria
from p2penv.diagnostics.grid_game import symmetric_table
from p2penv.diagnostics.mixed import (
    bimatrix,
    expected_payoffs,
    mixed_nash_conv,
    solve_bimatrix,
    solve_zero_sum,
    symmetric_expected_payoffs,
    symmetric_mixed_equilibrium,
    two_player_equilibrium,
)

BE = BertrandEdgeworth()  # k = 3 kWh, c = 0.05, theta = 4 kWh, P = 0.30


def _prices(h):
    return np.round(np.arange(0.05, 0.30 + 1e-9, h), 6)


def test_closed_form():
    assert BE.support_low == pytest.approx(0.05 + 0.25 / 3) and BE.profit == pytest.approx(0.25)
    assert BE.cdf(BE.support_low) == pytest.approx(0.0, abs=1e-12) and BE.cdf(0.30) == 1.0
    assert BE.cdf(0.10) == 0.0
    # F(0.2) = [3 x 0.15 - 0.25] / [0.15 x 2]
    assert BE.cdf(0.2) == pytest.approx(0.2 / 0.3)
    with pytest.raises(ValueError, match="demand_kwh"):
        BertrandEdgeworth(demand_kwh=7.0)


def test_the_env_market_is_the_duopoly():
    """Built as auction_v0 (SellerBuyerMarket, pay-as-bid): the lower ask sells k at its ask, the
    higher one theta - k, ties share pro rata; unsold output earns c, so profit = sold x (ask - c)."""
    g = BE.game(_prices(0.05))  # asks 0.05, 0.10, ..., 0.30
    assert g.is_symmetric() and g.k == 6
    A, B = bimatrix(g)
    p = _prices(0.05)
    for i in range(6):
        for j in range(6):
            sold = 3.0 if p[i] < p[j] else (1.0 if p[i] > p[j] else 2.0)
            assert A[i, j] == pytest.approx(sold * (p[i] - 0.05), abs=1e-10), (i, j)
    np.testing.assert_allclose(B, A.T, atol=1e-12)
    # so coarse a grid has one weak pure equilibrium: both at 0.20 earn 2 x 0.15, undercutting to 0.15
    # earns 3 x 0.10, the same; from h = 0.01 on there is none
    eq = pure_equilibria(g)
    assert eq.count == 1 and p[eq.profiles[0]].tolist() == [0.2, 0.2]
    assert pure_equilibria(BE.game(_prices(0.01))).count == 0


@pytest.mark.parametrize("h", [0.01, 0.0025])
def test_two_player_solver_matches_the_closed_form(h):
    """Exact MILP equilibrium of the grid game: NashConv 0 on the grid; profit 0.25 + O(h) (measured
    0.2557 at h = 0.01, 0.2513 at 0.0025); the grid CDF lies between F one grid step left and right
    of each grid price; the support starts within one step of p_lo = 0.1333."""
    p = _prices(h)
    g = BE.game(p)
    r = two_player_equilibrium(g)
    assert r.method == "bimatrix-milp-symmetric" and r.nash_conv < 1e-9
    assert 0.25 <= r.payoff[0] <= 0.25 + 3.0 * h * 0.2  # within k x h / 5 of the closed form
    F = np.cumsum(r.strategies[0])
    assert np.all(F >= BE.cdf(p - h) - 1e-9) and np.all(F <= BE.cdf(p + h) + 1e-9)
    assert abs(p[r.support(0)].min() - BE.support_low) <= h
    assert np.abs(F - BE.cdf(p)).max() < {0.01: 0.05, 0.0025: 0.015}[h]  # measured 0.048, 0.014


def test_no_regret_plus_polish_finds_the_same_equilibrium():
    """The n-player method (symmetric regret matching+ on the multiset table, then the indifference
    polish) run on the duopoly: certified NashConv 0 and the MILP's mixture."""
    p = _prices(0.01)
    g = BE.game(p)
    tab = symmetric_table(g)
    rm = symmetric_mixed_equilibrium(tab, iterations=3000, polish=False)
    assert 1e-3 < rm.nash_conv < 1e-2  # measured 0.0054: regret matching alone is not there
    r = symmetric_mixed_equilibrium(tab, iterations=3000)
    assert r.method == "symmetric-rm+/polish" and r.nash_conv < 1e-9
    ref = two_player_equilibrium(g)
    np.testing.assert_allclose(r.strategies[0], ref.strategies[0], atol=1e-8)
    assert r.payoff[0] == pytest.approx(ref.payoff[0], abs=1e-10)


def test_expected_nash_conv_of_pure_and_mixed_profiles():
    h = 0.01
    p = _prices(h)
    g = BE.game(p)
    top = np.zeros((2, g.k))
    top[:, -1] = 1.0  # both ask P: 2 kWh each at 0.25; undercutting to P - h sells 3 at 0.25 - h
    r = mixed_nash_conv(g, top)
    np.testing.assert_allclose(r.payoff, 0.5, atol=1e-9)
    assert r.nash_conv == pytest.approx(2 * (3 * (0.25 - h) - 0.5), abs=1e-9)
    # the closed-form mixture sampled on the grid is nearly an equilibrium
    F = BE.cdf(p)
    mix = np.diff(np.r_[0.0, F])
    r = mixed_nash_conv(g, np.tile(mix, (2, 1)))
    assert r.nash_conv < 0.02
    # the symmetric table gives the same expected payoffs as the product enumeration
    tab = symmetric_table(g)
    np.testing.assert_allclose(symmetric_expected_payoffs(tab, mix), expected_payoffs(g, np.tile(mix, (2, 1)))[0],
                               atol=1e-12)
    with pytest.raises(ValueError, match="probability"):
        mixed_nash_conv(g, np.ones((2, g.k)))


def test_zero_sum_and_general_bimatrix_solvers():
    pennies = np.array([[1.0, -1.0], [-1.0, 1.0]])
    x, y, v = solve_zero_sum(pennies)
    np.testing.assert_allclose([x, y], 0.5, atol=1e-9) and pytest.approx(v, abs=1e-9) == 0.0
    x, y = solve_bimatrix(pennies, -pennies)
    np.testing.assert_allclose([x, y], 0.5, atol=1e-9)
    # battle of the sexes: three equilibria; the objective picks the best and the worst for the pair
    A = np.array([[2.0, 0.0], [0.0, 1.0]])
    B = np.array([[1.0, 0.0], [0.0, 2.0]])
    x, y = solve_bimatrix(A, B, objective="max_payoff")
    assert x @ A @ y + x @ B @ y == pytest.approx(3.0)
    x, y = solve_bimatrix(A, B, objective="min_payoff")  # the mixed one: (2/3, 1/3), (1/3, 2/3)
    np.testing.assert_allclose(x, [2 / 3, 1 / 3], atol=1e-7) and np.testing.assert_allclose(y, [1 / 3, 2 / 3], atol=1e-7)


def test_symmetric_payoff_jacobian_is_the_derivative():
    """Three sellers (inelastic pay-as-bid cell of the market-power study, 6 actions): the analytic
    d u_a / d s_b used by the polish equals central finite differences."""
    from p2penv.diagnostics.grid_game import GridGame, price_dispatch_grid
    from p2penv.diagnostics.mixed import symmetric_payoff_jacobian
    from p2penv.experiments.equilibrium_sets import market

    env, base, _ = market("inelastic-pay_as_bid", 3)
    g = GridGame(env.ctx, env.rules, base, (0, 1, 2), price_dispatch_grid([0.1, 0.2, 0.3], [0.0, 1.0], env.rules))
    tab = symmetric_table(g)
    s = np.random.default_rng(0).dirichlet(np.ones(g.k))
    J = symmetric_payoff_jacobian(tab, s)
    for b in range(g.k):
        e = np.zeros(g.k)
        e[b] = 1e-6
        num = (symmetric_expected_payoffs(tab, s + e) - symmetric_expected_payoffs(tab, s - e)) / 2e-6
        np.testing.assert_allclose(J[:, b], num, atol=1e-8)
    sup = np.array([1, 3, 4])
    s2 = np.zeros(g.k)
    s2[sup] = [0.2, 0.5, 0.3]
    np.testing.assert_allclose(symmetric_payoff_jacobian(tab, s2, support=sup),
                               symmetric_payoff_jacobian(tab, s2)[np.ix_(sup, sup)], atol=1e-14)
