"""Posted-price mechanism: rules by hand, price rules, and the S7 audit (IC/IR/BB/efficiency)."""
import functools

import numpy as np
import pytest

from p2penv import auction_v0
from p2penv.diagnostics.audit import audit_mechanism
from p2penv.market.mechanisms import BUY as B
from p2penv.market.mechanisms import SELL as S
from p2penv.market.mechanisms import get_mechanism, posted_price, uniform

P = 0.5


def test_registered():
    assert get_mechanism("posted_price") is posted_price.clear
    assert posted_price.DEFAULT_PRICE == posted_price.mid_market_rate(0.30, 0.05) == 0.175


def test_pro_rata_on_the_long_side_by_hand():
    # Bids 0.9 x 3 kWh, 0.6 x 1, 0.4 x 5 (below the price: out); asks 0.1 x 2, 0.45 x 1, 0.7 x 4 (out).
    # D = 4, S = 3: sellers fill completely, buyers 3/4 each; everyone at 0.5.
    c = posted_price.clear([0.9, 0.6, 0.4, 0.1, 0.45, 0.7], [3, 1, 5, 2, 1, 4], [B, B, B, S, S, S], price=P)
    np.testing.assert_allclose(c.matched, [2.25, 0.75, 0, 2, 1, 0])
    np.testing.assert_allclose(c.unit_price, P)
    np.testing.assert_allclose(c.cash, [-1.125, -0.375, 0, 1.0, 0.5, 0])
    assert c.volume == 3.0 and c.clearing_price == P and c.operator_surplus == 0.0
    # declared welfare: 0.9*2.25 + 0.6*0.75 - 0.1*2 - 0.45*1 = 1.825 (the uniform auction gets 2.1...)
    assert c.welfare == pytest.approx(1.825)
    assert c.welfare < uniform.clear([0.9, 0.6, 0.4, 0.1, 0.45, 0.7], [3, 1, 5, 2, 1, 4], [B, B, B, S, S, S]).welfare
    # prices ignored: everyone in, D = 9 > S = 7, buyers fill 7/9
    c = posted_price.clear([0.9, 0.6, 0.4, 0.1, 0.45, 0.7], [3, 1, 5, 2, 1, 4], [B, B, B, S, S, S], price=P,
                           reservation=False)
    np.testing.assert_allclose(c.matched, [3 * 7 / 9, 7 / 9, 5 * 7 / 9, 2, 1, 4])


def test_batched_prices_tou_and_mid_market():
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.2]])
    c = posted_price.clear(p, np.ones((3, 2)), np.tile([B, S], (3, 1)), price=[0.5, 0.95, 0.25])
    np.testing.assert_allclose(c.volume, [1, 0, 1])  # 0.95 > the bid: no trade
    np.testing.assert_allclose(c.clearing_price, [0.5, 0.95, 0.25])
    np.testing.assert_allclose(c.unit_price[:, 0], [0.5, 0.95, 0.25])
    sched = ((0, 0.10), (7, 0.20), (17, 0.30), (21, 0.20))
    np.testing.assert_allclose(posted_price.tou_price([0, 6.5, 7, 18, 23, 24, 30], sched),
                               [0.10, 0.10, 0.20, 0.30, 0.20, 0.10, 0.10])
    np.testing.assert_allclose(posted_price.tou_price([1, 8], ((6, 0.2), (22, 0.1))), [0.1, 0.2])  # wraps
    mm = posted_price.mid_market([[0.9, 0.6, 0.1, 0.3], [0.9, 0.6, 0.1, 0.3]], [[B, B, S, S], [B, B, 0, 0]])
    np.testing.assert_allclose(mm, [0.5, 0.9])
    assert np.isnan(posted_price.mid_market([0.2], [0]))
    with pytest.raises(ValueError, match="price: shape"):
        posted_price.clear(p, np.ones((3, 2)), np.tile([B, S], (3, 1)), price=[0.5, 0.5])
    with pytest.raises(ValueError, match="price: posted price must be finite"):
        posted_price.clear(p, np.ones((3, 2)), np.tile([B, S], (3, 1)), price=np.nan)
    with pytest.raises(ValueError, match="schedule"):
        posted_price.tou_price(1, ((25, 0.1),))


def test_quantity_overstatement_pays_on_the_long_side():
    # Pro rata's known weakness, outside the audit (which probes prices only): two buyers of 1 kWh
    # against 1 kWh of supply get 0.5 each; one that asks for 3 kWh gets 0.75 of the 1 kWh.
    c = posted_price.clear([0.9, 0.9, 0.1], [1, 1, 1], [B, B, S], price=P)
    np.testing.assert_allclose(c.matched, [0.5, 0.5, 1])
    c = posted_price.clear([0.9, 0.9, 0.1], [3, 1, 1], [B, B, S], price=P)
    np.testing.assert_allclose(c.matched, [0.75, 0.25, 1])


# ---------------------------------------------------------------- the audit
N_DRAWS = 2000
RNG = np.random.default_rng(7)
V, C = RNG.random(N_DRAWS), RNG.random(N_DRAWS)
MS_BOOKS = (np.stack([V, C], -1), np.ones((N_DRAWS, 2)), np.tile([B, S], (N_DRAWS, 1)))
GRID = np.linspace(0.0, 1.0, 41)


def test_audit_bilateral_posted_half():
    # Myerson-Satterthwaite books (as tests/test_mechanisms_audit.py): IC, IR, strongly balanced;
    # realised gains (v - c) 1{c <= 1/2 <= v}: 3/4 of the first best in expectation.
    a = audit_mechanism(posted_price.clear, MS_BOOKS, grid=GRID, price=0.5)
    assert a.ic_gain_max == 0.0 and a.ir_violations == 0 and np.all(np.abs(a.surplus) == 0.0)
    gains = np.maximum(V - C, 0.0)
    posted = np.where((C <= 0.5) & (V >= 0.5), V - C, 0.0)
    assert a.efficiency == pytest.approx(posted.sum() / gains.sum(), rel=1e-12)
    assert a.efficiency == pytest.approx(0.75, rel=0.06)  # see test_ms_mcafee_ic_ir_balanced_but_inefficient


def test_audit_random_books():
    # Multi-order books on a half-dollar grid (many ties with the posted price 2.5): price misreports
    # only switch participation, so the ex-post regret is 0 on every book; IR and strong BB hold.
    rng = np.random.default_rng(3)
    p = rng.integers(0, 11, (500, 7)) / 2.0
    q = rng.integers(0, 4, (500, 7)).astype(float)
    s = rng.choice([B, 0, S], (500, 7))
    a = audit_mechanism(posted_price.clear, (p, q, s), grid=np.arange(0, 5.25, 0.25), price=2.5)
    assert a.ic_gain_max < 1e-12 and a.ir_violations == 0
    np.testing.assert_allclose(a.surplus, 0.0, atol=1e-12)
    assert 0.7 < a.efficiency < 0.85  # measured 0.789: pro rata ignores values, trades across 2.5 are lost
    # Without reservation prices agents are forced to trade at 2.5 whatever their value: IR fails.
    a = audit_mechanism(posted_price.clear, (p, q, s), grid=np.arange(0, 5.25, 0.25), price=2.5, reservation=False)
    assert a.ir_violations > 0 and a.ic_gain_max == 0.0


def test_steps_in_auction_v0_with_default_and_injected_price():
    env = auction_v0.parallel_env(n_prosumers=6, mechanism="posted_price", max_cycles=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert info["prosumer_0"]["market"]["clearing_price"] == posted_price.DEFAULT_PRICE
    env = auction_v0.parallel_env(n_prosumers=6, max_cycles=2, clear=functools.partial(posted_price.clear, price=0.2))
    env.reset(seed=0)
    _, _, _, _, info = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert info["prosumer_0"]["market"]["clearing_price"] == 0.2


def test_random_books_balance_and_respect_limits():
    rng = np.random.default_rng(5)
    p = rng.random((300, 9))
    q = rng.integers(0, 4, (300, 9)).astype(float)
    s = rng.choice([B, 0, S], (300, 9))
    price = rng.random(300)
    c = posted_price.clear(p, q, s, price=price)
    buy, sell = (c.matched * (s == B)).sum(-1), (c.matched * (s == S)).sum(-1)
    np.testing.assert_allclose(buy, c.volume, rtol=1e-12)
    np.testing.assert_allclose(sell, c.volume, rtol=1e-12)
    assert np.all(c.matched <= q * (1 + 1e-12)) and np.all(c.matched[s == 0] == 0)
    traded = c.matched > 0
    assert np.all(np.where(traded & (s == B), p >= price[:, None], True))
    assert np.all(np.where(traded & (s == S), p <= price[:, None], True))
    # one side always fills completely (no order of the short side is rationed)
    full_b = np.all(np.where((s == B) & (p >= price[:, None]), c.matched == q, True), -1)
    full_s = np.all(np.where((s == S) & (p <= price[:, None]), c.matched == q, True), -1)
    assert np.all(full_b | full_s)
    np.testing.assert_allclose(c.operator_surplus, 0.0, atol=1e-12)


# -- the operator's price rules inside auction_v0 (MarketConfig.posted_price_rule) ------------------------------
def _rollout(env, seed, steps):
    """(posted clearing price, env rewards, run_step rewards on the step's context, bids, sides) per step."""
    from p2penv.market.pipeline import run_step

    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        ctx, names = env.ctx, list(env.agents)
        acts = {a: rng.uniform(-1, 1, 2) for a in names}
        ref = run_step(np.stack([acts[a] for a in names]), ctx, env.rules).settlement.reward
        _, rew, _, _, info = env.step(acts)
        out.append((info[names[0]]["market"]["clearing_price"], np.array([rew[a] for a in names]), ref,
                    np.array([info[a]["bid_price"] for a in names]), np.array([info[a]["side"] for a in names])))
    return out


def test_tou_rule_posts_the_schedule_at_each_steps_hour():
    schedule = ((0.0, 0.11), (6.0, 0.19), (8.5, 0.23), (22.0, 0.15))
    env = auction_v0.parallel_env(n_prosumers=6, mechanism="posted_price", posted_price_rule="tou",
                                  posted_price_schedule=schedule, start_hour=5.0, dt_h=0.75, max_cycles=24)
    hours = 5.0 + 0.75 * np.arange(24)  # 5:00, 5:45, 6:30, 7:15, 8:00, 8:45, ..., 21:30, 22:15
    expected = [0.11, 0.11, 0.19, 0.19, 0.19] + [0.23] * 18 + [0.15]
    np.testing.assert_allclose(posted_price.tou_price(hours, schedule), expected)  # the schedule read by hand
    for t, (cp, rew, ref, _, _) in enumerate(_rollout(env, 2, 24)):
        assert cp == expected[t]
        np.testing.assert_allclose(rew, ref, atol=1e-12)  # diagnostics (run_step on env.ctx) post the same price


def test_mid_market_rule_posts_the_last_steps_mid_market():
    env = auction_v0.parallel_env(n_prosumers=6, mechanism="posted_price", posted_price_rule="mid_market",
                                  posted_price=0.21, max_cycles=8)
    steps = _rollout(env, 3, 8)
    assert steps[0][0] == 0.21  # nothing traded before: the configured price
    for (_, _, _, bids, sides), (cp, rew, ref, _, _) in zip(steps, steps[1:]):
        bb, ba = bids[sides == B].max(initial=-np.inf), bids[sides == S].min(initial=np.inf)
        assert np.isfinite(bb) and np.isfinite(ba)  # both sides quoted (else the one side's best price is posted)
        assert cp == pytest.approx(0.5 * (bb + ba), rel=1e-12)
        np.testing.assert_allclose(rew, ref, atol=1e-12)
    # a vector env posts each market's own mid-market: market e equals the single env seeded seed + e
    vec = auction_v0.vector_env(3, n_prosumers=6, mechanism="posted_price", posted_price_rule="mid_market",
                                posted_price=0.21, max_cycles=8)
    vec.reset(seed=7)
    acts = np.random.default_rng(1).uniform(-1, 1, (8, 3, 6, 2))
    rv = np.stack([vec.step(acts[k])[1] for k in range(8)])
    for e in range(3):
        env.reset(seed=7 + e)
        for k in range(8):
            _, rew, _, _, _ = env.step({a: acts[k, e, j] for j, a in enumerate(env.agents)})
            np.testing.assert_array_equal([rew[a] for a in rew], rv[k, e])


def test_price_rules_are_checked():
    assert auction_v0.parallel_env(mechanism="posted_price", posted_price=0.2).config.posted_price == 0.2
    with pytest.raises(ValueError, match="posted_price_rule: 'tou' needs mechanism='posted_price', got 'uniform'"):
        auction_v0.parallel_env(posted_price_rule="tou")
    with pytest.raises(ValueError, match="posted_price_rule: expected one of"):
        auction_v0.parallel_env(mechanism="posted_price", posted_price_rule="hourly")
    with pytest.raises(ValueError, match="posted_price_schedule: .*distinct"):
        auction_v0.parallel_env(mechanism="posted_price", posted_price_rule="tou",
                                posted_price_schedule=((0.0, 0.1), (0.0, 0.2)))
    from p2penv import dlmp_v0

    with pytest.raises(ValueError, match="posted_price_rule: does not apply to dlmp_v0"):
        dlmp_v0.parallel_env(scenario="teaching4", posted_price_rule="tou", mechanism="posted_price")
