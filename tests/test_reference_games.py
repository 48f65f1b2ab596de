"""Reference games with closed-form equilibria, and the equilibrium tools that must reproduce them."""
import numpy as np
import pytest

from p2penv.diagnostics import (
    ChatterjeeSamuelson,
    ContinuousGame,
    Cournot,
    LinearSFE,
    LinearStrategy,
    continuous_best_response_dynamics,
    continuous_fictitious_play,
    maximise_1d,
    nash_conv,
)
from p2penv.market.mechanisms import BUY, SELL, uniform

DUO = Cournot(100.0, 1.0, (10.0, 20.0))
# Closed form q_i = (A - 2 c_i + c_j) / 3B: (100 - 20 + 20)/3 = 100/3, (100 - 40 + 10)/3 = 70/3.
DUO_Q = np.array([100 / 3, 70 / 3])


def test_games_implement_the_interface():
    for g in (DUO, LinearSFE(2, 1.0, 1.0)):
        assert isinstance(g, ContinuousGame)
        assert g.payoffs(np.zeros((5, 3, g.n_players))).shape == (5, 3, g.n_players)
    with pytest.raises(ValueError, match="actions"):
        DUO.payoffs([1.0, 2.0, 3.0])


def test_cournot_closed_form_and_interior_check():
    eq = DUO.equilibrium()
    np.testing.assert_allclose(eq.quantities, DUO_Q)
    assert eq.price == pytest.approx(100 - 170 / 3)
    with pytest.raises(ValueError, match="costs"):
        Cournot(100.0, 1.0, (10.0, 90.0)).equilibrium()  # q_2 = (100 - 180 + 10)/3 < 0
    with pytest.raises(ValueError, match="B"):
        Cournot(100.0, 0.0, (10.0,))


@pytest.mark.parametrize("exact", [True, False])
def test_nash_conv_hand_values(exact):
    # Profile (20, 20): Q = 40, P = 60, profits (60-10)*20 = 1000 and (60-20)*20 = 800.
    # BR_1 = (100-10-20)/2 = 35 -> P = 45, profit 35*35 = 1225; BR_2 = (100-20-20)/2 = 30 -> P = 50,
    # profit 30*30 = 900. NashConv = 225 + 100 = 325.
    assert nash_conv(DUO, [20.0, 20.0], exact=exact) == pytest.approx(325.0, abs=1e-6)
    # Profile (0, 0): monopoly BRs 45 and 40, profits 45^2 = 2025 and 40^2 = 1600, sum 3625.
    assert nash_conv(DUO, [0.0, 0.0], exact=exact) == pytest.approx(3625.0, abs=1e-6)
    assert nash_conv(DUO, DUO_Q, exact=exact) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("exact", [True, False])
def test_best_response_dynamics_reproduce_cournot(exact):
    g = Cournot(100.0, 1.0, (10.0, 20.0, 30.0))  # q = 40 - c_i = (30, 20, 10)
    r = continuous_best_response_dynamics(g, exact=exact, tol=1e-9)
    assert r.converged and r.method == "continuous_best_response_dynamics"
    np.testing.assert_allclose(r.profile, [30, 20, 10], atol=1e-4)
    assert r.nash_conv[0] > 100 and r.nash_conv[-1] < 1e-9 and len(r.nash_conv) == r.iterations + 1


def test_simultaneous_best_response_cycles_with_three_firms():
    # Jacobi BR map q <- (A - c - B(Q - q))/2B has Jacobian -(1/2)(J - I): eigenvalue -1 on (1,1,1),
    # so total output oscillates forever from a non-equilibrium start.
    g = Cournot(100.0, 1.0, (10.0, 20.0, 30.0))
    r = continuous_best_response_dynamics(g, simultaneous=True, max_iter=40)
    assert not r.converged and r.nash_conv[-1] > 100


def test_fictitious_play_follows_its_linear_recursion():
    # Payoffs are linear in the rival's output, so a best response to the empirical mixture is the
    # best response to the mean m_t (t+1 profiles). Error e_t = m_t - q* then obeys
    # e_{t+1} = e_t (1 - (1 - lam)/(t + 2)) on eigenvectors of the BR Jacobian [[0,-1/2],[-1/2,0]]:
    # lam = +1/2 on (1,-1), lam = -1/2 on (1,1). Start (50, 50): e_0 = (50/3, 80/3).
    T = 150
    r = continuous_fictitious_play(DUO, init=[50.0, 50.0], max_iter=T, tol=1e-12)
    e0 = np.array([50 / 3, 80 / 3])
    slow = (e0[0] - e0[1]) / 2 * np.prod([1 - 0.5 / (t + 2) for t in range(T)])
    fast = (e0[0] + e0[1]) / 2 * np.prod([1 - 1.5 / (t + 2) for t in range(T)])
    np.testing.assert_allclose(r.profile - DUO_Q, [slow + fast, -slow + fast], atol=1e-6)
    assert r.iterations == T and not r.converged and r.method == "continuous_fictitious_play"
    assert r.nash_conv[-1] < 0.01 * r.nash_conv[0]


# ------------------------------------------------------------------ supply-function equilibrium
def test_sfe_golden_ratio_duopoly():
    # N = 2, gamma = c = 1, a = 0: beta^2 + beta - 1 = 0 -> beta = (sqrt 5 - 1)/2 (= 1/phi), and
    # BR(beta) = (1 + beta)/(2 + beta) = beta. With A = 10: p = 10/(1 + 2 beta) = 10/sqrt 5 = 2 sqrt 5,
    # between the competitive price (slopes 1/c = 1: 10/3) and Cournot with these costs
    # (q = (A - q_j)/3 -> q = A/4, p = A/2 = 5).
    g = LinearSFE(2, 1.0, 1.0, intercepts=(10.0,))
    beta = g.equilibrium_slope()
    assert beta == pytest.approx((np.sqrt(5) - 1) / 2)
    assert g.best_response(0, [beta, beta]) == pytest.approx(beta)
    p = g.price([beta, beta])[0]
    assert p == pytest.approx(2 * np.sqrt(5))
    p_comp = g.price([1.0, 1.0])[0]
    assert p_comp == pytest.approx(10 / 3)
    assert p_comp < p < 5.0
    r = continuous_best_response_dynamics(g, exact=False)
    assert r.converged
    np.testing.assert_allclose(r.profile, [beta, beta], atol=1e-4)


def test_sfe_three_firms_is_optimal_for_every_shock():
    # N = 3, gamma = 2, c = 0.5: 0.5*2 beta^2 + (1 - 1) beta - 2 = 0 -> beta = sqrt 2.
    for shocks in [(10.0,), (40.0,), (10.0, 20.0)]:
        g = LinearSFE(3, 2.0, 0.5, a=1.0, intercepts=shocks)
        assert g.equilibrium_slope() == pytest.approx(np.sqrt(2))
        # Numerical best responses (grid + Brent) find no profitable deviation at beta = sqrt 2...
        assert nash_conv(g, [np.sqrt(2)] * 3, exact=False) < 1e-9
        # ...but do at a steeper (more competitive) profile.
        assert nash_conv(g, [1.9] * 3, exact=False) > 1e-3
    with pytest.raises(ValueError, match="c"):
        LinearSFE(2, 1.0, 0.0)


# ------------------------------------------------------------------ Chatterjee-Samuelson
CS = ChatterjeeSamuelson(0.5)


def test_cs_linear_equilibrium_k_half():
    buyer, seller = CS.equilibrium()
    assert (buyer.intercept, buyer.slope) == pytest.approx((1 / 12, 2 / 3))
    assert (seller.intercept, seller.slope) == pytest.approx((1 / 4, 2 / 3))
    # 2v/3 + 1/12 >= 2c/3 + 1/4  <=>  v - c >= 1/4.
    v, c = np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41))
    np.testing.assert_array_equal(buyer(v) >= seller(c) - 1e-12, v - c >= 0.25 - 1e-12)
    assert CS.equilibrium_efficiency() == pytest.approx(27 / 32)


@pytest.mark.parametrize("k", [0.5, 0.3])
def test_cs_strategies_are_per_type_best_responses(k):
    # Every trading type's numerical best response (1-D grid + Brent) to the opponent's linear
    # strategy is its own linear strategy; types that never trade are indifferent, so skip them.
    game = ChatterjeeSamuelson(k)
    buyer, seller = game.equilibrium()
    for v in [0.4, 0.6, 0.9, 1.0]:
        bid, _ = maximise_1d(lambda b: game.buyer_payoff(b, v, seller), 0.0, 1.0)
        assert bid == pytest.approx(buyer(v), abs=1e-6)
    for c in [0.0, 0.2, 0.5, 0.7]:
        ask, _ = maximise_1d(lambda a: game.seller_payoff(a, c, buyer), 0.0, 1.0)
        assert ask == pytest.approx(seller(c), abs=1e-6)


def test_cs_buyer_payoff_hand_value():
    # Buyer v = 1 bidding 3/4 against s(c) = 2c/3 + 1/4: trades for c <= 3/4 at price
    # (s + 3/4)/2; E = int_0^{3/4} (1 - 3/8 - c/3 - 1/8) dc = 3/8 - 9/96 = 9/32.
    _, seller = CS.equilibrium()
    assert CS.buyer_payoff(0.75, 1.0, seller) == pytest.approx(9 / 32)


def test_cs_efficiency_through_the_uniform_mechanism():
    # The bilateral uniform k = 1/2 auction *is* the CS double auction. Midpoint quadrature over
    # 400 x 400 type pairs of realised gains / first-best gains -> 27/32. The only error is cells cut
    # by the boundary v - c = 1/4 (integrand 1/4 there, ~400*0.75 cells of area 1/400^2), bounded by
    # 0.25 * 300 / 400^2 / (9/64) ~ 3.3e-3 relative; the first best's boundary v = c has integrand 0.
    h = 1 / 400
    t = (np.arange(400) + 0.5) * h
    v, c = (a.ravel() for a in np.meshgrid(t, t))
    buyer, seller = CS.equilibrium()
    n = v.size
    out = uniform.clear(np.stack([buyer(v), seller(c)], -1), np.ones((n, 2)), np.tile([BUY, SELL], (n, 1)))
    realised = (out.matched[:, 0] * (v - c)).sum() * h * h
    first_best = np.maximum(v - c, 0).sum() * h * h
    assert first_best == pytest.approx(1 / 6, rel=1e-4)
    assert realised / first_best == pytest.approx(27 / 32, rel=3.5e-3)
    np.testing.assert_allclose(out.unit_price[:, 0], (buyer(v) + seller(c)) / 2)


def test_cs_payoffs_against_a_posted_price_are_exact():
    # Seller posts 0.5 whatever its cost (slope 0). Buyer v = 0.8, k = 1/2: a bid b >= 0.5 trades
    # for sure at 0.5 + (b - 0.5)/2, a lower bid never trades. Bid 0.5 (the tie) -> 0.8 - 0.5 = 0.3;
    # bid 0.6 -> 0.8 - 0.55 = 0.25; bid 0.4 -> 0.
    posted = LinearStrategy(0.5, 0.0)
    np.testing.assert_allclose(CS.buyer_payoff(np.array([0.5, 0.6, 0.4]), 0.8, posted), [0.3, 0.25, 0.0])
    # Buyer posts 0.6. Seller c = 0.2: ask 0.4 trades at 0.5 (0.3), ask 0.6 at 0.6 (0.4), ask 0.7 never.
    np.testing.assert_allclose(CS.seller_payoff(np.array([0.4, 0.6, 0.7]), 0.2, LinearStrategy(0.6, 0.0)),
                               [0.3, 0.4, 0.0])


def test_cs_payoffs_against_decreasing_strategies():
    # Seller asks 1 - c: a bid 0.6 trades with costs c >= 0.4 at 0.5 (1 - c) + 0.3, so a buyer of
    # value 0.8 earns int_{0.4}^1 (0.8 - 0.5 + 0.5 c - 0.3) dc = 0.25 (1 - 0.16) = 0.21.
    assert CS.buyer_payoff(0.6, 0.8, LinearStrategy(1.0, -1.0)) == pytest.approx(0.21, abs=1e-15)
    # Buyer bids 1 - v: an ask 0.4 trades with values v <= 0.6 at 0.2 + 0.5 (1 - v); a seller of
    # cost 0.2 earns int_0^{0.6} (0.5 - 0.5 v) dv = 0.3 - 0.09 = 0.21.
    assert CS.seller_payoff(0.4, 0.2, LinearStrategy(1.0, -1.0)) == pytest.approx(0.21, abs=1e-15)


@pytest.mark.parametrize("slope", [1.5, 0.0, -0.7])
def test_cs_payoffs_match_quadrature(slope):
    # Both payoffs against increasing, flat and decreasing opponents, against direct quadrature of
    # the rule "trade iff bid >= ask at p = s + k (b - s)".
    from scipy.integrate import quad

    g = ChatterjeeSamuelson(0.3)
    opp = LinearStrategy(0.4 - 0.5 * slope, slope)  # 0.4 at the middle type
    for bid, v in [(0.3, 0.9), (0.45, 0.6), (0.8, 0.85)]:
        ref = quad(lambda c: (v - opp(c) - g.k * (bid - opp(c))) * (bid >= opp(c)), 0, 1, points=[0.5], limit=200)[0]
        assert g.buyer_payoff(bid, v, opp) == pytest.approx(ref, abs=1e-8)
    for ask, c in [(0.3, 0.1), (0.45, 0.2), (0.8, 0.5)]:
        ref = quad(lambda v: (ask + g.k * (opp(v) - ask) - c) * (opp(v) >= ask), 0, 1, points=[0.5], limit=200)[0]
        assert g.seller_payoff(ask, c, opp) == pytest.approx(ref, abs=1e-8)


def test_cs_payoffs_reject_non_finite_strategies():
    with pytest.raises(ValueError, match="strategy"):
        CS.buyer_payoff(0.5, 0.5, LinearStrategy(float("nan"), 1.0))


@pytest.mark.parametrize("k", [0.0, 0.25, 0.5, 0.8, 1.0])
def test_cs_equilibrium_holds_for_every_k(k):
    # Trading types are exactly v > (1-k)/2 and c < 1 - k/2; each one's numerical best response to
    # the opponent's linear strategy is its own linear strategy.
    game = ChatterjeeSamuelson(k)
    buyer, seller = game.equilibrium()
    a0, m = (1 - k) / 2, 1 - k / 2
    for v in a0 + (1 - a0) * np.array([0.2, 0.5, 0.9, 1.0]):
        bid, _ = maximise_1d(lambda b: game.buyer_payoff(b, v, seller), 0.0, 1.0)
        assert bid == pytest.approx(buyer(v), abs=1e-6)
    for c in m * np.array([0.0, 0.3, 0.6, 0.9]):
        ask, _ = maximise_1d(lambda a: game.seller_payoff(a, c, buyer), 0.0, 1.0)
        assert ask == pytest.approx(seller(c), abs=1e-6)


@pytest.mark.parametrize("k", [0.0, 0.25, 0.5, 0.8, 1.0])
def test_cs_equilibrium_gains_closed_form_for_every_k(k):
    # (1 + k)(2 - k)/16: 1/8 at k = 0 and 1, 9/64 at 1/2, 35/256 at 0.25, 0.135 at 0.8.
    from scipy.integrate import quad
    from scipy.optimize import brentq

    game = ChatterjeeSamuelson(k)
    hand = {0.0: 1 / 8, 0.25: 35 / 256, 0.5: 9 / 64, 0.8: 0.135, 1.0: 1 / 8}[k]
    assert game.equilibrium_gains() == pytest.approx(hand, abs=1e-15)
    assert game.equilibrium_efficiency() == pytest.approx(6 * hand, abs=1e-15)
    buyer, seller = game.equilibrium()

    # 1. Quadrature of (v - c) over the trade region, the boundary v(c) found by root finding.
    def inner(c):
        f = lambda v: buyer(v) - seller(c)  # noqa: E731
        if f(1.0) < 0:
            return 0.0
        lo = 0.0 if f(0.0) >= 0 else brentq(f, 0.0, 1.0, xtol=1e-14)
        return (1 - lo**2) / 2 - c * (1 - lo)

    assert quad(inner, 0, 1, points=[1 - k / 2], epsabs=1e-13)[0] == pytest.approx(game.equilibrium_gains(), abs=1e-10)
    # 2. Total gains = E[buyer payoff] + E[seller payoff] at the equilibrium (payments cancel).
    eb = quad(lambda v: game.buyer_payoff(buyer(v), v, seller), 0, 1, points=[(1 - k) / 2], epsabs=1e-13)[0]
    es = quad(lambda c: game.seller_payoff(seller(c), c, buyer), 0, 1, points=[1 - k / 2], epsabs=1e-13)[0]
    assert eb + es == pytest.approx(game.equilibrium_gains(), abs=1e-10)
