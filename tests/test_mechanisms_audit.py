"""McAfee and VCG double auctions, and the S7 audit (IC, IR, budget balance, efficiency)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penv.diagnostics import MechanismAudit, audit_mechanism
from p2penv.diagnostics import audit as audit_module
from p2penv.market.mechanisms import BUY, SELL, Clearing, get_mechanism, mcafee, pay_as_bid, uniform, vcg
from p2penv.market.mechanisms.book import efficient_allocation

B, S = BUY, SELL
UNIT_SIDES = [B, B, B, S, S, S]


# ---------------------------------------------------------------- McAfee
def test_mcafee_all_efficient_trades_at_p0():
    # Bids 10, 8, 3; asks 2, 4, 9: K = 2 (8 >= 4, 3 < 9), p0 = (3 + 9)/2 = 6 in [a_K, b_K] = [4, 8].
    c = mcafee.clear([10, 8, 3, 2, 4, 9], [1] * 6, UNIT_SIDES)
    np.testing.assert_allclose(c.matched, [1, 1, 0, 1, 1, 0])
    np.testing.assert_allclose(c.unit_price[c.matched > 0], 6.0)
    assert c.clearing_price == 6.0 and c.operator_surplus == 0.0 and c.welfare == 12.0


def test_mcafee_trade_reduction():
    # Bids 10, 5, 0; asks 2, 4, 12: K = 2, p0 = (0 + 12)/2 = 6 > b_K = 5, so K-1 = 1 pair trades:
    # buyer 10 pays b_K = 5, seller 2 receives a_K = 4, operator keeps 1; welfare 10-2 = 8 of 9.
    c = mcafee.clear([10, 5, 0, 2, 4, 12], [1] * 6, UNIT_SIDES)
    np.testing.assert_allclose(c.matched, [1, 0, 0, 1, 0, 0])
    np.testing.assert_allclose(c.cash, [-5, 0, 0, 4, 0, 0])
    assert c.operator_surplus == 1.0 and c.welfare == 8.0 and c.volume == 1.0
    assert c.clearing_price == 4.5  # (a_K + b_K)/2 reported in the reduction case


def test_mcafee_divisible_removes_one_unit():
    # Bid 10 x 2 kWh, 5 x 3; asks 2 x 1, 4 x 2, 12 x 1. Efficient Q = 3 (bid 5 level fills 1 of 3),
    # b_K = 5, a_K = 4, b_{K+1} = 5 (level kept volume back), a_{K+1} = 12 -> p0 = 8.5 > 5: reduce
    # by unit = 1 kWh to Q' = 2: bid 10 takes 2 kWh, asks 2 and 4 give 1 each; surplus (5-4)*2 = 2;
    # welfare 20 - 2 - 4 = 14 = 15 - (b_K - a_K).
    c = mcafee.clear([10, 5, 2, 4, 12], [2, 3, 1, 2, 1], [B, B, S, S, S])
    np.testing.assert_allclose(c.matched, [2, 0, 1, 1, 0])
    assert c.volume == 2.0 and c.operator_surplus == 2.0 and c.welfare == 14.0
    # A half-kWh unit only gives up half a kWh of the marginal pair: welfare 15 - 0.5.
    assert mcafee.clear([10, 5, 2, 4, 12], [2, 3, 1, 2, 1], [B, B, S, S, S], unit=0.5).welfare == 14.5


def test_mcafee_bilateral_bounds_give_posted_price():
    # One pair, values on [0, 1]: dummy bid 0 and ask 1 give p0 = 1/2, trade iff c <= 1/2 <= v.
    books = np.array([[0.8, 0.3], [0.4, 0.3], [0.8, 0.6]])
    c = mcafee.clear(books, np.ones((3, 2)), np.tile([B, S], (3, 1)), price_bounds=(0.0, 1.0))
    np.testing.assert_allclose(c.volume, [1, 0, 0])
    np.testing.assert_allclose(c.unit_price[0], [0.5, 0.5])
    # Without a value support the (K+1)-th pair does not exist and the single trade is reduced away.
    assert mcafee.clear([0.8, 0.3], [1, 1], [B, S]).volume == 0.0


def test_mcafee_rejects_bad_unit_and_keeps_batch_shape():
    with pytest.raises(ValueError, match="unit"):
        mcafee.clear([1, 0], [1, 1], [B, S], unit=0.0)
    with pytest.raises(ValueError, match="price_bounds"):
        mcafee.clear([1, 0], [1, 1], [B, S], price_bounds=(1.0, 0.0))
    p = np.broadcast_to([10.0, 8, 3, 2, 4, 9], (2, 3, 6))
    c = mcafee.clear(p, np.ones_like(p), np.broadcast_to(UNIT_SIDES, p.shape))
    assert c.matched.shape == (2, 3, 6) and c.volume.shape == (2, 3)
    np.testing.assert_allclose(c.clearing_price, 6.0)


# ---------------------------------------------------------------- VCG
def test_vcg_unit_book_pays_externalities():
    # Bids 10, 5, 0; asks 2, 4, 12; W* = (10-2) + (5-4) = 9.
    # Buyer 10: W without it = 5-2 = 3; others' welfare with it = 9-10 = -1 -> pays 3-(-1) = 4.
    # Buyer 5: without = 10-2 = 8; others = 9-5 = 4 -> pays 4.
    # Seller 2: without = 10-4 = 6; others = 9+2 = 11 -> receives 11-6 = 5. Seller 4: 9+4-(10-2) = 5.
    c = vcg.clear([10, 5, 0, 2, 4, 12], [1] * 6, UNIT_SIDES)
    np.testing.assert_allclose(c.cash, [-4, -4, 0, 5, 5, 0])
    assert c.operator_surplus == pytest.approx(-2.0) and c.welfare == 9.0


def test_vcg_divisible_book():
    # Bid 10 x 2 kWh; asks 2 x 1, 4 x 2. Q = 2, W* = 20 - 2 - 4 = 14.
    # Buyer: without it W = 0, others = 14 - 20 = -6 -> pays 6 (3 $/kWh: the sellers' costs).
    # Seller 2: without: 10 vs 4 x 2 -> 12; others = 14 + 2 = 16 -> receives 4 (its replacement).
    # Seller 4 (1 kWh): without: 10 vs 2 x 1 -> 8; others = 14 + 4 = 18 -> receives 10.
    c = vcg.clear([10, 2, 4], [2, 1, 2], [B, S, S])
    np.testing.assert_allclose(c.cash, [-6, 4, 10])
    np.testing.assert_allclose(c.unit_price, [3, 4, 10])
    assert c.operator_surplus == pytest.approx(-8.0)


def _book_arrays(draw, n_books, n):
    grid = draw(st.booleans())  # half-dollar prices -> many ties and partial fills at the margin
    if grid:
        price = st.integers(0, 12).map(lambda x: x / 2.0)
        qty = st.integers(0, 3).map(float)
    else:
        price = st.floats(0.0, 10.0, allow_nan=False, allow_subnormal=False)
        qty = st.floats(0.01, 5.0, allow_nan=False)
    shape = (n_books, n)
    p = np.array(draw(st.lists(price, min_size=n_books * n, max_size=n_books * n))).reshape(shape)
    q = np.array(draw(st.lists(qty, min_size=n_books * n, max_size=n_books * n))).reshape(shape)
    s = np.array(draw(st.lists(st.sampled_from([B, 0, S]), min_size=n_books * n, max_size=n_books * n)))
    return p, q, s.reshape(shape).astype(np.int8)


@st.composite
def _books(draw):
    return _book_arrays(draw, draw(st.integers(1, 4)), draw(st.integers(1, 12)))


@given(_books())
@settings(max_examples=400, deadline=None)
def test_vcg_fast_payments_equal_brute_force(book):
    # O(n log n) payments from the supply/demand curves against re-solving the book without each
    # order (the definition). Batches of 1 use np.searchsorted, larger ones the row-wise merge.
    p, q, s = book
    alloc = efficient_allocation(p, q, s)
    fast = vcg.payments(p, q, alloc)
    ref = vcg.payments_brute_force(p, q, alloc)
    scale = 1.0 + np.abs(p).max() * q.sum(-1, keepdims=True)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12 * scale.max())
    assert np.all(fast[alloc.matched == 0] == 0.0)
    # each side is paid its own threshold price: the operator never keeps money (deficit >= 0)
    assert np.all(fast.sum(-1) <= 1e-12 * scale[:, 0])


def test_vcg_large_book_is_fast_path_and_matches_brute_force():
    # Above the brute-force limits ``clear`` takes the fast path; same cash as the reference.
    rng = np.random.default_rng(11)
    n = 300
    p, q = np.round(rng.random(n), 2), rng.integers(1, 4, n).astype(float)
    s = rng.choice([B, S], n).astype(np.int8)
    assert n > vcg.BRUTE_FORCE_MAX_N
    c = vcg.clear(p, q, s)
    alloc = efficient_allocation(p[None], q[None], s[None])
    ref = vcg.payments_brute_force(p[None], q[None], alloc)[0]
    np.testing.assert_allclose(c.cash, -ref, atol=1e-10)  # buyers pay t_i, sellers receive -t_i
    assert c.operator_surplus == pytest.approx(ref.sum(), abs=1e-10)


def test_vcg_scales_to_thousands_of_orders():
    # The brute force needs n books of n orders: at n = 3,000 about 0.7 GB per array set. The fast
    # path keeps O(n) memory: a few dozen arrays of 3,000 floats.
    import tracemalloc

    rng = np.random.default_rng(5)
    n = 3000
    p, q, s = rng.random(n), rng.random(n) + 0.1, rng.choice([B, S], n)
    tracemalloc.start()
    try:
        c = vcg.clear(p, q, s)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10e6
    assert c.operator_surplus <= 1e-9 and c.welfare == pytest.approx(uniform.clear(p, q, s).welfare, rel=1e-12)


def test_registry_knows_new_mechanisms():
    assert get_mechanism("mcafee") is mcafee.clear and get_mechanism("vcg") is vcg.clear


# ---------------------------------------------------------------- audit on hand books
BILATERAL = ([0.9, 0.1], [1, 1], [B, S])  # buyer value 0.9, seller cost 0.1
GRID = np.linspace(0.0, 1.0, 11)


def test_audit_uniform_bilateral():
    # Truthful price (0.9+0.1)/2 = 0.5: utilities 0.4 each. Buyer bidding 0.1 sets the price to
    # 0.1 (u = 0.8), seller asking 0.9 sets it to 0.9 (u = 0.8): gain 0.4 each.
    a = audit_mechanism(uniform.clear, BILATERAL, grid=GRID)
    np.testing.assert_allclose(a.utility, [[0.4, 0.4]])
    np.testing.assert_allclose(a.ic_gain, [[0.4, 0.4]])
    assert a.total_surplus == 0.0 and a.efficiency == pytest.approx(1.0) and a.ir_violations == 0


def test_audit_pay_as_bid_bilateral():
    # Everyone settles at its own price: u = 0; buyer bidding 0.1 pays 0.1 -> u = 0.8 (gain 0.8).
    a = audit_mechanism(pay_as_bid.clear, BILATERAL, grid=GRID)
    np.testing.assert_allclose(a.utility, [[0, 0]], atol=1e-12)
    np.testing.assert_allclose(a.ic_gain, [[0.8, 0.8]])
    assert a.total_surplus == pytest.approx(0.8) and a.efficiency == pytest.approx(1.0)


def test_audit_mcafee_bilateral():
    # Posted price 1/2: u = 0.4 each; misreports either keep the same price or kill the trade.
    a = audit_mechanism(mcafee.clear, BILATERAL, grid=GRID, price_bounds=(0.0, 1.0))
    np.testing.assert_allclose(a.utility, [[0.4, 0.4]])
    assert a.ic_gain_max == 0.0 and a.total_surplus == 0.0


def test_audit_vcg_bilateral():
    # Buyer pays c = 0.1, seller receives v = 0.9: u = 0.8 each, operator deficit 0.8.
    a = audit_mechanism(vcg.clear, BILATERAL, grid=GRID)
    np.testing.assert_allclose(a.utility, [[0.8, 0.8]])
    assert a.ic_gain_max < 1e-12 and a.deficit_books == 1
    assert a.total_surplus == pytest.approx(-0.8)


def test_audit_mcafee_reduction_book():
    # Trade-reduction book from above: efficiency 8/9, surplus 1, no IR violation, and McAfee's
    # dominant-strategy property: no unilateral price misreport on a 0..12 grid helps anyone.
    a = audit_mechanism(mcafee.clear, ([10, 5, 0, 2, 4, 12], [1] * 6, UNIT_SIDES), grid=np.arange(0, 12.5, 0.5))
    assert a.efficiency == pytest.approx(8 / 9)
    assert a.total_surplus == 1.0 and a.ir_violations == 0
    np.testing.assert_allclose(a.utility, [[5, 0, 0, 2, 0, 0]])  # 10-5 and 4-2
    assert a.ic_gain_max == 0.0


def test_audit_counts_ir_violations():
    # A broken mechanism: uniform allocation, but buyers are charged their bid + 1 $/kWh.
    # Bilateral (0.9, 0.1): buyer pays 1.9 -> u = -1.0 (one violation, shortfall -1).
    def fee(prices, quantities, sides):
        c = uniform.clear(prices, quantities, sides)
        unit = np.where(c.sides == BUY, np.asarray(prices) + 1.0, c.unit_price)
        return Clearing(c.matched, unit, c.clearing_price, c.volume, c.operator_surplus, c.welfare, c.sides)

    a = audit_mechanism(fee, BILATERAL, grid=GRID)
    assert a.ir_violations == 1 and a.ir_shortfall == pytest.approx(-1.0)


def test_audit_rejects_empty_grid():
    with pytest.raises(ValueError, match="grid"):
        audit_mechanism(uniform.clear, BILATERAL, grid=[])


# ---------------------------------------------------------------- Myerson-Satterthwaite
N_DRAWS = 2000
RNG = np.random.default_rng(7)
V, C = RNG.random(N_DRAWS), RNG.random(N_DRAWS)
MS_BOOKS = (np.stack([V, C], -1), np.ones((N_DRAWS, 2)), np.tile([B, S], (N_DRAWS, 1)))
MS_GRID = np.linspace(0.0, 1.0, 41)
GAINS = np.maximum(V - C, 0.0)
# sd of (v-c)^+ for independent U[0,1]: E[d^2; d>0] = int d^2 (1-d) = 1/12, var = 1/12 - 1/36.
SE = np.sqrt(1 / 12 - 1 / 36) / np.sqrt(N_DRAWS)


def test_ms_vcg_efficient_ic_ir_but_deficit():
    a = audit_mechanism(vcg.clear, MS_BOOKS, grid=MS_GRID)
    assert a.efficiency == pytest.approx(1.0, abs=1e-12)
    assert a.ic_gain_max < 1e-12 and a.ir_violations == 0
    np.testing.assert_allclose(a.surplus, -GAINS, atol=1e-12)  # buyer pays c, seller gets v
    assert -a.total_surplus / N_DRAWS == pytest.approx(1 / 6, abs=4 * SE)  # E[(v-c)^+] = 1/6


def test_ms_uniform_half_is_budget_balanced_but_not_ic():
    a = audit_mechanism(uniform.clear, MS_BOOKS, grid=MS_GRID)
    assert np.all(a.surplus == 0.0) and a.ir_violations == 0
    assert a.efficiency == pytest.approx(1.0)  # truthful reports are efficient...
    # ...but not an equilibrium: with v >= c the buyer's best grid bid is g* = min grid point >= c,
    # price (g* + c)/2, gain v - (g*+c)/2 - (v-c)/2 = (v - g*)/2 (0 if negative or v < c).
    g_star = MS_GRID[np.searchsorted(MS_GRID, C, side="left")]
    expected = np.where(V >= C, np.maximum((V - g_star) / 2, 0.0), 0.0)
    np.testing.assert_allclose(a.ic_gain[:, 0], expected, atol=1e-12)
    assert a.ic_gain_max > 0.45


def test_ms_mcafee_ic_ir_balanced_but_inefficient():
    a = audit_mechanism(mcafee.clear, MS_BOOKS, grid=MS_GRID, price_bounds=(0.0, 1.0))
    assert a.ic_gain_max == 0.0 and a.ir_violations == 0 and np.all(a.surplus == 0.0)
    # Posted price 1/2: realised gains (v-c) 1{c <= 1/2 <= v}; expectation 1/4 * (3/4 - 1/4) = 1/8
    # against first-best 1/6, efficiency 3/4.
    posted = np.where((C <= 0.5) & (V >= 0.5), V - C, 0.0)
    assert a.efficiency == pytest.approx(posted.sum() / GAINS.sum(), rel=1e-12)
    # Relative standard error of this ratio at 2000 draws is ~1.8% (2000 simulated replications);
    # 6% is > 3 sigma.
    assert a.efficiency == pytest.approx(0.75, rel=0.06)


# ---------------------------------------------------------------- random books: the theorems
def test_random_books_mcafee_weak_bb_and_ir_vcg_efficient_and_ir():
    # McAfee: buyers pay b_K >= a_K sellers receive (weak BB), and nobody trades beyond its limit
    # price (IR). VCG: efficient allocation, Clarke-pivot payments are IR. Also each clearing
    # must balance physically (buy volume = sell volume = reported volume, matched <= quantity).
    rng = np.random.default_rng(3)
    p = rng.integers(0, 21, (2000, 7)) / 2.0  # half-dollar grid -> many price ties
    q = rng.integers(0, 4, (2000, 7)).astype(float)
    s = rng.choice([B, 0, S], (2000, 7))
    w_eff = uniform.clear(p, q, s).welfare
    for f in (mcafee.clear, vcg.clear):
        c = f(p, q, s)
        u = c.cash - c.sides * p * c.matched
        assert u.min() >= -1e-9
        np.testing.assert_allclose((c.matched * (s == B)).sum(-1), c.volume, atol=1e-9)
        np.testing.assert_allclose((c.matched * (s == S)).sum(-1), c.volume, atol=1e-9)
        assert np.all(c.matched <= q + 1e-12)
    assert mcafee.clear(p, q, s).operator_surplus.min() >= -1e-9
    assert np.all(mcafee.clear(p, q, s).welfare <= w_eff + 1e-9)
    np.testing.assert_allclose(vcg.clear(p, q, s).welfare, w_eff, atol=1e-9)


# ---------------------------------------------------------------- which regret ic_gain measures
def test_ic_gain_is_complete_information_ex_post_regret_not_bayesian():
    # Buyer of value 0.9 against a truthful seller, cost c on a midpoint grid of [0, 1], uniform
    # k = 1/2. Knowing c (ex post) the buyer bids c, pays c instead of (0.9 + c)/2 and gains
    # (0.9 - c)/2 for c <= 0.9: mean int_0^0.9 (0.9 - c)/2 dc = 0.2025 as the grid gets fine.
    # Not knowing c (Bayesian) it can only pick one bid b for all costs:
    # E u(b) = int_0^b (0.9 - (b + c)/2) dc = 0.9 b - 0.75 b^2, maximal at b = 0.6 (0.27) against
    # E u(0.9) = 0.2025: Bayesian regret 0.0675, less than a third of the ex-post one.
    from p2penv.diagnostics import ChatterjeeSamuelson, LinearStrategy

    n = 200
    c = (np.arange(n) + 0.5) / n
    books = (np.stack([np.full(n, 0.9), c], -1), np.ones((n, 2)), np.tile([B, S], (n, 1)))
    a = audit_mechanism(uniform.clear, books, grid=c)
    np.testing.assert_allclose(a.ic_gain[:, 0], np.maximum(0.9 - c, 0.0) / 2, atol=1e-12)
    # the midpoint rule is exact for this linear integrand: cells tile [0, 0.9] exactly
    assert a.ic_gain[:, 0].mean() == pytest.approx(0.2025, abs=1e-12)
    game, truthful = ChatterjeeSamuelson(0.5), LinearStrategy(0.0, 1.0)
    bayes = game.buyer_payoff(0.6, 0.9, truthful) - game.buyer_payoff(0.9, 0.9, truthful)
    assert bayes == pytest.approx(0.0675, abs=1e-15)
    # the docs say which regret it is
    for doc in (audit_mechanism.__doc__, MechanismAudit.__doc__, audit_module.__doc__):
        assert "ex-post" in doc and "Bayesian" in doc
