"""Bayesian auctions as auction_v0 scenarios (first price, Chatterjee-Samuelson) and their BNE metrics."""
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

import p2penv
from p2penv.agents.baselines import TruthfulAgent
from p2penv.diagnostics.bayes_nash import (
    BnePolicy,
    FirstPriceGame,
    KDoubleBilateralGame,
    bid_functions,
    bne_metrics,
    default_grid,
    expected_utility,
    game_of,
    l2_distance,
    market_config,
    observed_types,
    utility_loss,
)
from p2penv.generators.bayesian_auctions import COST_A, STAGE_GAME_MARKET, BilateralTrade, FixedTypes, SingleUnitAuction

FP2, FP3, KDA = "auction_v0/first_price2-v0", "auction_v0/first_price3-v0", "auction_v0/k_double_bilateral-v0"
V = default_grid()  # 201 points of [0, 1]


def unit(price):
    """$/kWh -> price action (price_floor 0, price_cap 1)."""
    return 2.0 * np.asarray(price, dtype=np.float64) - 1.0


def fixed(scenario_id, types, num_envs=None, **overrides):
    """The scenario with the given types (rows: markets) instead of drawn ones."""
    gen = p2penv.get_spec(scenario_id).config["generator"]
    t = FixedTypes(gen, np.atleast_2d(np.asarray(types, dtype=np.float64)))
    if num_envs is None:
        return p2penv.make(scenario_id, generator=t, **overrides)
    return p2penv.make_vector(scenario_id, num_envs, generator=t, **overrides)


def step(env, prices, dispatch=(1.0, 0.0, 0.0, 0.0)):
    env.reset(seed=0)
    acts = {a: [unit(p), d] for a, p, d in zip(env.possible_agents, prices, dispatch)}
    _, rew, _, _, info = env.step(acts)
    return rew, info


# -- clearing of hand cases ----------------------------------------------------------------------
def test_first_price_winner_pays_its_own_bid_and_the_loser_sheds_its_demand():
    rew, info = step(fixed(FP2, [0.7, 0.9]), (0.0, 0.3, 0.6))
    seller, b1, b2 = (info[a] for a in ("prosumer_0", "prosumer_1", "prosumer_2"))
    assert (b2["matched_kwh"], b2["unit_price"], b2["market_cash"]) == (1.0, 0.6, -0.6)
    assert (b1["matched_kwh"], b1["shed_kwh"], b1["backstop_import_kwh"]) == (0.0, 1.0, 0.0)
    assert (seller["matched_kwh"], seller["market_cash"], seller["cost"]) == (1.0, 0.0, 0.0)
    # reward = utility m (v - b) minus the value v of the demand
    assert rew == {"prosumer_0": 0.0, "prosumer_1": -0.7, "prosumer_2": -0.6}
    assert rew["prosumer_2"] + 0.9 == pytest.approx(0.9 - 0.6, abs=1e-15)


def test_first_price_tie_shares_the_unit():
    rew, info = step(fixed(FP2, [0.7, 0.9]), (0.0, 0.4, 0.4))
    assert [info[a]["matched_kwh"] for a in ("prosumer_1", "prosumer_2")] == [0.5, 0.5]
    assert rew["prosumer_1"] == pytest.approx(0.5 * (0.7 - 0.4) - 0.7, abs=1e-15)
    assert rew["prosumer_2"] == pytest.approx(0.5 * (0.9 - 0.4) - 0.9, abs=1e-15)


@pytest.mark.parametrize("rule", ["marginal_pair", "walrasian"])
def test_k_double_trades_at_the_midpoint_and_not_below_the_ask(rule):
    env = fixed(KDA, [0.2, 0.8], rule=rule)  # seller cost 0.2, buyer value 0.8
    rew, info = step(env, (0.3, 0.7))
    assert info["prosumer_0"]["unit_price"] == info["prosumer_1"]["unit_price"] == 0.5
    assert rew == {"prosumer_0": 0.3, "prosumer_1": -0.5}  # seller 0.5 - 0.2; buyer (0.8 - 0.5) - 0.8
    rew, info = step(env, (0.3, 0.3))  # bid == ask trades, at that price
    assert info["prosumer_1"]["matched_kwh"] == 1.0 and info["prosumer_1"]["unit_price"] == 0.3
    rew, info = step(env, (0.5, 0.3))  # bid < ask: no trade; the unsold unit is curtailed and costs nothing
    s = info["prosumer_0"]
    assert (s["matched_kwh"], s["curtailed_kwh"], s["dispatch_kw"], s["cost"]) == (0.0, 1.0, 0.0, 0.0)
    assert rew == {"prosumer_0": 0.0, "prosumer_1": -0.8}


def test_k_double_seller_offering_half_the_unit_trades_half():
    rew, info = step(fixed(KDA, [0.2, 0.8]), (0.3, 0.7), dispatch=(0.0, 0.0))
    assert info["prosumer_0"]["order_kwh"] == 0.5 and info["prosumer_1"]["matched_kwh"] == 0.5
    assert rew["prosumer_0"] == pytest.approx(0.5 * (0.5 - 0.2) + COST_A * 0.25, abs=1e-15)
    assert rew["prosumer_1"] == pytest.approx(0.5 * (0.8 - 0.5) - 0.8, abs=1e-15)


# -- rewards are the textbook utilities (buyers: minus their value) ------------------------------
@pytest.mark.parametrize("scenario_id", [FP2, FP3])
def test_first_price_rewards_are_utilities_minus_value(scenario_id):
    vec = p2penv.make_vector(scenario_id, 300)
    vec.reset(seed=3)
    n = vec.core.n_agents
    values = vec.core.fleet.shed_values[:, 1:].copy()  # read before the step: autoreset redraws them
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, (300, n, 2))
    acts[:, 1:, 0] = np.round(acts[:, 1:, 0], 1)  # coarse bids: ties happen
    acts[:, 0, 0] = -1.0  # the seller asks 0
    rew = vec.step(acts)[1]
    bids = 0.5 * (acts[:, 1:, 0] + 1.0)
    top = bids == bids.max(axis=1, keepdims=True)
    share = top / top.sum(axis=1, keepdims=True)
    assert (top.sum(axis=1) > 1).any()
    np.testing.assert_allclose(rew[:, 1:] + values, share * (values - bids), rtol=0, atol=1e-12)


def test_k_double_rewards_are_utilities():
    e = 400
    vec = p2penv.make_vector(KDA, e)
    vec.reset(seed=5)
    c, v = vec.core.fleet.cost_b[:, 0] + COST_A, vec.core.fleet.shed_values[:, 1].copy()
    acts = np.random.default_rng(2).uniform(-1, 1, (e, 2, 2))
    acts[: e // 2, 0, 1] = 1.0  # half the sellers offer the whole unit
    rew = vec.step(acts)[1]
    s, b = 0.5 * (acts[:, 0, 0] + 1.0), 0.5 * (acts[:, 1, 0] + 1.0)
    q = 0.5 * (acts[:, 0, 1] + 1.0)
    m = np.where(b >= s, q, 0.0)
    p = 0.5 * (b + s)
    assert 0 < (b >= s).mean() < 1
    np.testing.assert_allclose(rew[:, 1] + v, m * (v - p), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rew[:, 0], m * (p - c) + COST_A * m * (1 - m), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rew[: e // 2, 0], (m * (p - c))[: e // 2], rtol=0, atol=1e-15)


# -- the closed-form interim utilities are the market's, integrated over the opponents' types -----
def test_first_price_interim_utility_is_the_markets_own():
    # n = 2: value 0.7 bids 0.3 against v' on 1,000 cell midpoints bidding v'/2: wins iff v' < 0.6 (a cell edge)
    vp = (np.arange(1000) + 0.5) / 1000
    vec = fixed(FP2, np.stack([np.full(1000, 0.7), vp], 1), num_envs=1000)
    vec.reset(seed=0)
    acts = np.stack([np.tile([-1.0, 1.0], (1000, 1)), np.tile([unit(0.3), 0.0], (1000, 1)),
                     np.stack([unit(vp / 2), np.zeros(1000)], 1)], 1)
    u_env = (vec.step(acts)[1][:, 1] + 0.7).mean()
    assert u_env == pytest.approx(0.4 * 0.6, abs=1e-12)
    assert FirstPriceGame(2).interim_utility("buyer", 0.3, 0.7) == pytest.approx(u_env, abs=1e-12)
    # n = 3: value 0.9 bids 0.4 against two opponents bidding 2v'/3 on a 40 x 40 grid: both below 0.6
    g = (np.arange(40) + 0.5) / 40
    v2, v3 = (x.ravel() for x in np.meshgrid(g, g))
    m = v2.size
    vec = fixed(FP3, np.stack([np.full(m, 0.9), v2, v3], 1), num_envs=m)
    vec.reset(seed=0)
    acts = np.stack([np.tile([-1.0, 1.0], (m, 1)), np.tile([unit(0.4), 0.0], (m, 1)),
                     np.stack([unit(2 * v2 / 3), np.zeros(m)], 1), np.stack([unit(2 * v3 / 3), np.zeros(m)], 1)], 1)
    u_env = (vec.step(acts)[1][:, 1] + 0.9).mean()
    assert u_env == pytest.approx(0.5 * 0.6**2, abs=1e-12)
    assert FirstPriceGame(3).interim_utility("buyer", 0.4, 0.9) == pytest.approx(u_env, abs=1e-12)


def test_k_double_interim_utilities_are_the_markets_own():
    game = KDoubleBilateralGame()
    s_star, b_star = game.bne("seller"), game.bne("buyer")
    # buyer v = 0.9 bids 0.55 against s(c) = 2c/3 + 1/4: trades iff c <= 0.45 (a cell edge of 100 cells)
    c = (np.arange(100) + 0.5) / 100
    vec = fixed(KDA, np.stack([c, np.full(100, 0.9)], 1), num_envs=100)
    vec.reset(seed=0)
    acts = np.stack([np.stack([unit(s_star(c)), np.ones(100)], 1), np.tile([unit(0.55), 0.0], (100, 1))], 1)
    u_env = (vec.step(acts)[1][:, 1] + 0.9).mean()
    assert game.interim_utility("buyer", 0.55, 0.9) == pytest.approx(u_env, abs=1e-12)
    # seller c = 0.1 asks 0.4 against b(v) = 2v/3 + 1/12: trades iff v >= 0.475 (a cell edge of 40 cells)
    v = (np.arange(40) + 0.5) / 40
    vec = fixed(KDA, np.stack([np.full(40, 0.1), v], 1), num_envs=40)
    vec.reset(seed=0)
    acts = np.stack([np.tile([unit(0.4), 1.0], (40, 1)), np.stack([unit(b_star(v)), np.zeros(40)], 1)], 1)
    u_env = vec.step(acts)[1][:, 0].mean()
    assert game.interim_utility("seller", 0.4, 0.1) == pytest.approx(u_env, abs=1e-12)


# -- metrics ----------------------------------------------------------------------------------------
GAMES = [(FirstPriceGame(2), "buyer"), (FirstPriceGame(3), "buyer"), (KDoubleBilateralGame(), "buyer"),
         (KDoubleBilateralGame(), "seller")]


@pytest.mark.parametrize("game, role", GAMES)
def test_bne_has_zero_distance_and_zero_utility_loss(game, role):
    b = game.bne(role)(V)
    assert l2_distance(game, role, V, b) == 0.0
    assert abs(utility_loss(game, role, V, b)) < 1e-9
    # Simpson on 201 points is exact for the BNE utilities: 1/6, 1/12, 9/128
    assert expected_utility(game, role, V, b) == pytest.approx(game.bne_utility(role), abs=1e-15)


def test_bne_closed_forms():
    assert FirstPriceGame(2).bne("buyer")(0.8) == 0.4 and FirstPriceGame(3).bne("buyer")(0.9) == pytest.approx(0.6)
    assert (FirstPriceGame(2).bne_utility("buyer"), FirstPriceGame(3).bne_utility("buyer")) == (1 / 6, 1 / 12)
    g = KDoubleBilateralGame()
    assert g.bne("buyer")(0.25) == pytest.approx(0.25) and g.bne("seller")(0.75) == pytest.approx(0.75)
    assert g.bne("buyer")(1.0) == pytest.approx(0.75) and g.bne("seller")(0.0) == 0.25
    assert (g.trading_region("buyer"), g.trading_region("seller")) == ((0.25, 1.0), (0.0, 0.75))
    assert g.bne_utility("buyer") == g.bne_utility("seller") == 9 / 128
    assert g.bne_utility("buyer") + g.bne_utility("seller") == g.reference.equilibrium_gains() == 9 / 64


@pytest.mark.parametrize("n", [2, 3])
def test_truthful_first_price_bidding_loses_all_utility(n):
    game = FirstPriceGame(n)
    assert expected_utility(game, "buyer", V, V) == 0.0
    assert utility_loss(game, "buyer", V, V) == 1.0
    # L2 = (1/n) sqrt(mean(v^2)): the shading it misses
    assert l2_distance(game, "buyer", V, V) == pytest.approx(np.sqrt(np.mean(V**2)) / n, abs=1e-15)


def test_shaded_first_price_bids_lose_the_hand_computed_utility():
    # n = 2, b = 0.4 v: u(v) = 0.6 v * P(v'/2 < 0.4 v) = 0.48 v^2 -> 0.16 against 1/6: L = 1 - 0.96
    g2 = FirstPriceGame(2)
    assert expected_utility(g2, "buyer", V, 0.4 * V) == pytest.approx(0.16, abs=1e-15)
    assert utility_loss(g2, "buyer", V, 0.4 * V) == pytest.approx(0.04, abs=1e-12)
    assert l2_distance(g2, "buyer", V, 0.4 * V) == pytest.approx(0.1 * np.sqrt(np.mean(V**2)), abs=1e-15)
    # n = 3, b = v/2: u(v) = v/2 (3v/4)^2 = 9 v^3 / 32 -> 9/128 against 1/12: L = 1 - 27/32 = 5/32
    assert utility_loss(FirstPriceGame(3), "buyer", V, 0.5 * V) == pytest.approx(5 / 32, abs=1e-12)


def test_k_double_deviations_lose_the_hand_computed_utility():
    g = KDoubleBilateralGame()
    # buyer bids 1/6 above the BNE, 2v/3 + 1/4: trades with every c <= v and gains v^2/2 - v/4:
    # ex ante 1/24 against 9/128, L = 1 - 16/27 = 11/27; by symmetry the seller asking 1/6 below the BNE too
    over = g.bne("buyer")(V) + 1 / 6
    assert expected_utility(g, "buyer", V, over) == pytest.approx(1 / 24, abs=1e-15)
    assert utility_loss(g, "buyer", V, over) == pytest.approx(11 / 27, abs=1e-12)
    assert l2_distance(g, "buyer", V, over) == pytest.approx(1 / 6, abs=1e-15)
    assert utility_loss(g, "seller", V, g.bne("seller")(V) - 1 / 6) == pytest.approx(11 / 27, abs=1e-12)
    # a seller offering half its unit at the BNE price earns half
    assert utility_loss(g, "seller", V, g.bne("seller")(V), quantities=0.5) == pytest.approx(0.5, abs=1e-15)
    # the L2 only counts the trading region: deviations outside it are free
    off = np.where(V < 0.25, 0.0, g.bne("buyer")(V))
    assert l2_distance(g, "buyer", V, off) == 0.0 and abs(utility_loss(g, "buyer", V, off)) < 1e-15


def test_utility_needs_an_odd_even_grid_of_the_unit_interval():
    g = FirstPriceGame(2)
    for bad in (np.linspace(0, 1, 200), np.linspace(0, 0.5, 101), np.array([0.0, 0.2, 1.0])):
        with pytest.raises(ValueError, match="Simpson"):
            expected_utility(g, "buyer", bad, bad)
    with pytest.raises(ValueError, match="does not bid strategically"):
        g.interim_utility("seller", 0.0, 0.0)
    with pytest.raises(ValueError, match="roles"):
        KDoubleBilateralGame().bne("auctioneer")


# -- bid functions of policies ----------------------------------------------------------------------
@pytest.mark.parametrize("scenario_id", [FP2, FP3, KDA])
def test_bid_functions_recover_a_policy_playing_the_bne(scenario_id):
    bf = bid_functions(scenario_id, BnePolicy(market_config(scenario_id)).act_vector)
    game = game_of(scenario_id)
    assert bf.agents == p2penv.get_spec(scenario_id).learners
    assert bf.bids.shape == bf.quantities.shape == (201, len(bf.agents))
    np.testing.assert_allclose(bf.bids, np.stack([game.bne(r)(V) for r in bf.roles], 1), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(bf.quantities, 1.0)
    for m in bne_metrics(bf):
        assert m.l2 < 1e-7 and abs(m.utility_loss) < 1e-9
        assert m.bne_utility == pytest.approx(game.bne_utility(m.role), abs=1e-15)


def test_bid_functions_of_learners_only_and_of_a_shaded_policy():
    cfg = market_config(FP2)
    buy_value = p2penv.envs.fields.names(p2penv.envs.fields.OBS_FIELDS).index("buy_value")

    def shaded(obs):  # two buyers' observations (E, 2, F): bid 0.4 v, read from the obs by field name
        v = 0.5 * (obs[..., buy_value].astype(np.float64) + 1.0)
        return np.stack([unit(0.4 * v), np.zeros_like(v)], -1)

    bf = bid_functions(FP2, shaded, agents=("prosumer_1", "prosumer_2"))
    np.testing.assert_allclose(bf.bids, np.stack([0.4 * V] * 2, 1), rtol=0, atol=1e-7)
    for m in bne_metrics(bf):
        assert m.utility_loss == pytest.approx(0.04, abs=1e-7)
    assert bf.game == FirstPriceGame(2) and cfg.mechanism == "pay_as_bid"
    with pytest.raises(ValueError, match="expected distinct names"):
        bid_functions(FP2, shaded, agents=("prosumer_9",))
    with pytest.raises(ValueError, match="act_vector: returned actions of shape"):
        bid_functions(FP2, lambda obs: shaded(obs[:, 1:]))  # actions for 2 of the 3 agents


def test_a_seller_offering_part_of_its_unit_loses_that_share():
    cfg = market_config(KDA)

    def half(obs):
        a = BnePolicy(cfg).act_vector(obs)
        a[:, 0, 1] = 0.0  # the seller offers half its unit
        return a

    seller = bne_metrics(bid_functions(KDA, half))[0]
    assert seller.role == "seller" and seller.utility_loss == pytest.approx(0.5, abs=1e-9)


def test_policies_read_their_types_from_the_observation():
    vec = p2penv.make_vector(KDA, 50)
    obs, _ = vec.reset(seed=9)
    f = vec.core.fleet
    t = observed_types(obs, vec.config, ("seller", "buyer"))
    np.testing.assert_allclose(t, np.stack([f.cost_b[:, 0] + COST_A, f.shed_values[:, 1]], 1), rtol=0, atol=1e-7)
    # the first-price seller's truthful ask is its cost 0, and it offers its one unit
    vec = p2penv.make_vector(FP2, 4)
    obs, _ = vec.reset(seed=0)
    a = TruthfulAgent(vec.config).act_batch(obs[:, 0])
    np.testing.assert_array_equal(a[:, 0], -1.0)
    assert (vec.step(np.concatenate([a[:, None], BnePolicy(vec.config).act_vector(obs)[:, 1:]], 1))[4]
            ["order_kwh"][:, 0] == 1.0).all()


# -- scenarios: registry, draws, determinism, API ---------------------------------------------------
def test_registered_stage_games():
    for sid, n, mech in ((FP2, 3, "pay_as_bid"), (FP3, 4, "pay_as_bid"), (KDA, 2, "uniform")):
        spec = p2penv.get_spec(sid)
        cfg = market_config(sid)
        assert (cfg.n_prosumers, cfg.mechanism, cfg.max_cycles) == (n, mech, 1)
        assert {k: getattr(cfg, k) for k in STAGE_GAME_MARKET} == STAGE_GAME_MARKET
        assert spec.learners == tuple(f"prosumer_{i}" for i in game_of(sid).learners)
    assert game_of(FP3) == FirstPriceGame(3) and game_of(KDA) == KDoubleBilateralGame(0.5)


def test_types_are_uniform_draws_of_the_markets_own_generator_redrawn_every_step():
    env = p2penv.make(FP3)
    env.reset(seed=7)
    np.testing.assert_array_equal(env.fleet.shed_value[1:], np.random.default_rng(7).random(3))
    env = p2penv.make(KDA)
    env.reset(seed=7)
    c, v = np.random.default_rng(7).random(2)
    assert env.fleet.shed_value[1] == v and env.fleet.cost_b[0] == c - COST_A
    vec = p2penv.make_vector(KDA, 1)
    obs0, _ = vec.reset(seed=7)
    obs1 = vec.step(np.zeros((1, 2, 2)))[0]  # one-step episodes: autoreset draws the next stage game
    assert not np.array_equal(obs0, obs1)


@pytest.mark.parametrize("scenario_id", [FP2, KDA])
def test_vector_market_i_is_the_single_env_seeded_seed_plus_i(scenario_id):
    e, seed, steps = 3, 11, 4
    vec = p2penv.make_vector(scenario_id, e)
    acts = np.random.default_rng(0).uniform(-1, 1, (steps, e, vec.core.n_agents, 2))
    rec = [vec.reset(seed=seed)[0]]
    rews = []
    for k in range(steps):
        obs, r, *_ = vec.step(acts[k])
        rec.append(obs)
        rews.append(r)
    for i in range(e):
        env = p2penv.make(scenario_id)
        for k in range(steps):
            obs, _ = env.reset(seed=seed + i) if k == 0 else env.reset()
            np.testing.assert_array_equal(np.stack([obs[a] for a in env.agents]), rec[k][i])
            _, r, _, trunc, _ = env.step(dict(zip(env.agents, acts[k, i])))
            assert all(trunc.values())
            np.testing.assert_array_equal(np.array(list(r.values())), rews[k][i])
    again = p2penv.make_vector(scenario_id, e)
    np.testing.assert_array_equal(again.reset(seed=seed)[0], rec[0])


@pytest.mark.filterwarnings("ignore:reset\\(options=")  # the API test resets with an arbitrary option
def test_parallel_api():
    parallel_api_test(p2penv.make(FP2, seed=0), num_cycles=5)


def test_generators_refuse_what_the_stage_game_is_not():
    with pytest.raises(ValueError, match="max_cycles=1"):
        p2penv.make(FP2, max_cycles=2).reset(seed=0)
    with pytest.raises(ValueError, match="n_prosumers=3"):
        p2penv.make(FP2, n_prosumers=4).reset(seed=0)
    with pytest.raises(ValueError, match="dt_h must be 1.0"):
        p2penv.make(KDA, dt_h=0.5).reset(seed=0)
    with pytest.raises(ValueError, match="n_buyers"):
        SingleUnitAuction(1)
    with pytest.raises(ValueError, match="types: 1 rows for 2 markets"):
        fixed(KDA, [0.2, 0.8], num_envs=2).reset(seed=0)
    with pytest.raises(ValueError, match=r"types are values or costs in \[0, 1\]"):
        BilateralTrade().fleet(np.array([[0.2, 1.5]]))
    with pytest.raises(ValueError, match="no closed-form BNE"):
        game_of(p2penv.make(FP2, mechanism="uniform"))
    with pytest.raises(ValueError, match="no closed-form BNE"):
        game_of("auction_v0/sellers3-v0")
