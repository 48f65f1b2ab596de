"""auction_v0's info levels, the fused step, action validation and the generator contract (issue 20 item 2,
issue 19 items 1-2 in these files). Exact comparisons throughout: a level or a code path that changed a
single number would fail here."""
import functools

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

import p2penv
from p2penv import auction_v0
from p2penv.envs.auction_env import prefer_lean_infos
from p2penv.envs.fields import INFO_FIELDS, LEAN_INFO_NAMES, MARKET_INFO_FIELDS, names
from p2penv.generators import HouseholdMix, SellerBuyerMarket
from p2penv.market.mechanisms import uniform
from p2penv.market.prosumer import Fleet
from p2penv.generators.protocol import (BatchGenerator, FleetGenerator, PricedGenerator, check_generator,
                                        draw_fleets)

from test_registry import PINNED, fingerprint


def _episode(env, seed, rng_seed=1, episodes=2, dtype=np.float64, scale=1.5):
    """Per step of ``episodes`` episodes under seeded random actions: (observations, rewards, infos,
    full_infos(), state, truncations); after each reset: (observations,)."""
    rng = np.random.default_rng(rng_seed)
    obs, _ = env.reset(seed=seed)
    rec = [(np.stack([obs[a] for a in env.possible_agents]),)]
    for _ in range(episodes):
        while env.agents:
            acts = {a: rng.uniform(-scale, scale, 2).astype(dtype) for a in env.agents}
            obs, rew, term, trunc, infos = env.step(acts)
            rec.append((np.stack([obs[a] for a in env.possible_agents]), [rew[a] for a in env.possible_agents],
                        infos, env.full_infos(), env.state(), trunc))
        obs, _ = env.reset()
        rec.append((np.stack([obs[a] for a in env.possible_agents]),))
    return rec


def _same(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert len(ra) == len(rb)
        for x, y in zip(ra, rb):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype
            else:
                assert x == y


@pytest.mark.parametrize("kw", [dict(), dict(mechanism="pay_as_bid", rule="walrasian", k=0.3),
                                dict(unmatched="curtail", generator=SellerBuyerMarket(2, buyer_values=(0.1, 0.3)))])
def test_lean_and_full_share_the_trajectory_and_full_infos_on_demand(kw):
    full = auction_v0.parallel_env(n_prosumers=5, max_cycles=4, seed=3, **kw)
    lean = auction_v0.parallel_env(n_prosumers=5, max_cycles=4, seed=3, info_level="lean", **kw)
    rf, rl = _episode(full, 3), _episode(lean, 3)
    steps = [(f, g) for f, g in zip(rf, rl) if len(f) > 1]
    assert len(steps) == 8 and len(rf) == len(rl)
    for f, g in zip(rf, rl):
        np.testing.assert_array_equal(f[0], g[0])  # observations
    for (obs, rew, infos, full_inf, state, trunc), (_, rew_l, infos_l, full_l, state_l, trunc_l) in steps:
        assert rew == rew_l and trunc == trunc_l
        np.testing.assert_array_equal(state, state_l)
        assert full_inf == infos and full_l == infos  # full_infos(): the full env's infos, at either level
        for a in infos:
            assert set(infos[a]) == {*names(INFO_FIELDS), "market"}
            assert set(infos[a]["market"]) == set(names(MARKET_INFO_FIELDS))
            assert infos_l[a] == {k: infos[a][k] for k in (*LEAN_INFO_NAMES, "market")}
        assert infos_l["prosumer_0"]["market"] is infos_l["prosumer_1"]["market"]  # one shared dict


def test_fused_step_equals_the_general_path_bit_for_bit():
    # the same uniform auction through an opaque clearing function takes the general path (pipeline objects)
    general = functools.partial(lambda p, q, s, k: uniform.clear(p, q, s, k=k), k=0.5)
    a = auction_v0.AuctionEnv(n_prosumers=6, max_cycles=5, seed=4)
    b = auction_v0.AuctionEnv(n_prosumers=6, max_cycles=5, seed=4, clear=general)
    ra = _episode(a, 4, dtype=np.float32, scale=3.0)
    assert a.core.fused and not b.core.fused
    _same(ra, _episode(b, 4, dtype=np.float32, scale=3.0))
    # the outcome and context objects built on demand are the general path's, array for array
    for env in (a, b):
        env.reset(seed=9)
        env.step({ag: np.array([0.2, -0.3]) for ag in env.agents})
    oa, ob = a.last_outcome, b.last_outcome
    for name in ("bid_price", "dispatch_kw", "order_kwh", "sides", "clip_excess"):
        np.testing.assert_array_equal(getattr(oa, name), getattr(ob, name))
        assert getattr(oa, name).dtype == getattr(ob, name).dtype
    for part in ("clearing", "settlement"):
        for k, v in vars(getattr(oa, part)).items():
            np.testing.assert_array_equal(v, getattr(getattr(ob, part), k), err_msg=f"{part}.{k}")
    for k, v in vars(a.ctx).items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, getattr(b.ctx, k), err_msg=k)


@pytest.mark.parametrize("info_level", ["full", "lean"])
def test_pettingzoo_parallel_api_both_levels(info_level):
    with pytest.warns(UserWarning, match="reset\\(options"):
        parallel_api_test(auction_v0.parallel_env(n_prosumers=4, max_cycles=5, info_level=info_level),
                          num_cycles=12)


@pytest.mark.parametrize("scenario_id", [k for k in sorted(PINNED) if k.startswith("auction_v0/")
                                         and "profile" not in k and "simbench" not in k])
def test_info_level_leaves_registry_ids_and_pins_unchanged(scenario_id):
    ids = p2penv.list_scenarios()
    env = p2penv.make(scenario_id, info_level="lean")
    assert env.info_level == "lean" and env.metadata["scenario_id"] == scenario_id
    assert fingerprint(env) == PINNED[scenario_id]
    assert "info_level" not in p2penv.get_spec(scenario_id).config and p2penv.list_scenarios() == ids


def test_vector_env_lean_infos_and_market_e_equals_single_env_seeded_seed_plus_e():
    E, T = 3, 3
    vec = auction_v0.vector_env(E, n_prosumers=4, max_cycles=T, info_level="lean")
    full = auction_v0.vector_env(E, n_prosumers=4, max_cycles=T)
    acts = np.random.default_rng(0).uniform(-1.2, 1.2, (2 * T, E, 4, 2))
    ov, _ = vec.reset(seed=7)
    of, _ = full.reset(seed=7)
    np.testing.assert_array_equal(ov, of)
    singles = [auction_v0.parallel_env(n_prosumers=4, max_cycles=T, info_level="lean") for _ in range(E)]
    for e, env in enumerate(singles):
        env.reset(seed=7 + e)
    for t in range(2 * T):
        ov, rv, _, trv, iv = vec.step(acts[t])
        of, rf, _, trf, if_ = full.step(acts[t])
        np.testing.assert_array_equal(ov, of)
        np.testing.assert_array_equal(rv, rf)
        assert set(iv) - {"final_obs", "final_state", "_final_obs"} == {*LEAN_INFO_NAMES, "market"}
        for k in LEAN_INFO_NAMES:
            np.testing.assert_array_equal(iv[k], if_[k])
        for k, v in vec.full_infos().items():  # every field on demand, also after the SAME_STEP autoreset
            if k == "market":
                for m, col in v.items():
                    np.testing.assert_array_equal(col, if_["market"][m])
            else:
                np.testing.assert_array_equal(v, if_[k], err_msg=k)
        for e, env in enumerate(singles):
            if not env.agents:
                env.reset()
            _, rew, _, _, inf = env.step({a: acts[t, e, i] for i, a in enumerate(env.possible_agents)})
            assert [rew[a] for a in env.possible_agents] == rv[e].tolist()
            assert inf["prosumer_0"]["market"]["clearing_price"] == iv["market"]["clearing_price"][e] or \
                np.isnan(iv["market"]["clearing_price"][e])


def test_info_level_errors_and_trainer_default():
    with pytest.raises(ValueError, match="info_level: expected one of"):
        auction_v0.parallel_env(info_level="minimal")
    with pytest.raises(ValueError, match="info_level"):
        auction_v0.vector_env(2, info_level=None)
    env = auction_v0.parallel_env(n_prosumers=3)
    assert env.info_level == "full" and prefer_lean_infos(env) is env and env.info_level == "lean"
    dlmp = p2penv.dlmp_v0.parallel_env(scenario="teaching4")
    assert prefer_lean_infos(dlmp).info_level == "full"  # only auction_v0 has the lean level
    from p2penv.agents.rllib_ppo import make_env

    assert make_env("auction_v0", {"n_prosumers": 3}).info_level == "lean"
    assert make_env("auction_v0/sellers3-v0").info_level == "lean"
    assert make_env("auction_v0", {"info_level": "full"}).info_level == "full"


def test_action_validation_names_agent_env_and_field_and_leaves_state_unchanged():
    env = auction_v0.parallel_env(n_prosumers=3, max_cycles=4, seed=0)
    env.reset(seed=0)
    ok = {a: np.array([0.1, 0.2], dtype=np.float32) for a in env.agents}
    bad = dict(ok, prosumer_1=np.array([0.1, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match=r"agent 'prosumer_1': action\[1\] \(dispatch\) is nan"):
        env.step(bad)
    assert env.t == 0
    with pytest.raises(ValueError, match="prosumer_2"):
        env.step(dict(ok, prosumer_2=np.zeros(3, dtype=np.float32)))  # wrong shape
    with pytest.raises(ValueError, match="bool"):
        env.step(dict(ok, prosumer_0=np.array([True, False])))
    with pytest.raises(ValueError, match="not live"):
        env.step(dict(ok, prosumer_9=np.zeros(2)))
    ref = auction_v0.parallel_env(n_prosumers=3, max_cycles=4, seed=0)
    ref.reset(seed=0)
    huge = dict(ok, prosumer_0=np.array([1e308, -np.finfo(np.float64).max]))
    (_, rew, _, _, infos), (_, rew_ref, *_) = env.step(huge), ref.step(huge)
    assert rew == rew_ref  # the rejected steps above changed nothing
    assert infos["prosumer_0"]["clip_price"] == 1e308 - 1.0  # clipped and reported, no overflow
    assert infos["prosumer_0"]["bid_price"] == env.config.price_cap
    vec = auction_v0.vector_env(2, n_prosumers=3)
    vec.reset(seed=0)
    a = np.zeros((2, 3, 2))
    a[1, 2, 0] = np.inf
    with pytest.raises(ValueError, match=r"env 1, agent 'prosumer_2': action\[0\] \(price\) is inf"):
        vec.step(a)
    with pytest.raises(ValueError, match=r"shape"):
        vec.step(np.zeros((2, 3, 3)))
    assert vec.core.t == 0


def test_rejected_step_leaves_the_trajectory_unchanged():
    acts = np.random.default_rng(3).uniform(-1, 1, (4, 3, 2))
    runs = []
    for inject in (False, True):
        env = auction_v0.parallel_env(n_prosumers=3, max_cycles=4, seed=0)
        env.reset(seed=0)
        rec = []
        for t in range(4):
            if inject:
                with pytest.raises(ValueError):
                    env.step({a: np.full(2, np.nan) for a in env.agents})
            rec.append(env.step({a: acts[t, i] for i, a in enumerate(env.possible_agents)})[1])
        runs.append(rec)
    assert runs[0] == runs[1]


def test_generator_contract_is_declared_and_checked():
    mix = HouseholdMix()
    assert isinstance(mix, FleetGenerator) and isinstance(mix, BatchGenerator)
    assert not isinstance(mix, PricedGenerator)
    assert isinstance(SellerBuyerMarket(2), FleetGenerator) and not isinstance(SellerBuyerMarket(2), BatchGenerator)
    from p2penv.generators.arbitrage import ArbitrageMarket

    assert isinstance(ArbitrageMarket("tou"), PricedGenerator)
    with pytest.raises(ValueError, match="generator: expected a callable"):
        auction_v0.parallel_env(generator=42)
    with pytest.raises(ValueError, match="has_storage must be a bool"):
        check_generator(type("G", (), {"__call__": lambda self, *a: None, "has_storage": "yes"})())
    # a plain callable is drawn market by market, as its batch would be
    rngs = [np.random.default_rng(s) for s in (1, 2)]
    plain = lambda n, T, dt, h, rng: mix(n, T, dt, h, rng)  # noqa: E731
    a = draw_fleets(plain, 4, 3, 1.0, 0.0, rngs)
    b = draw_fleets(mix, 4, 3, 1.0, 0.0, [np.random.default_rng(s) for s in (1, 2)])
    np.testing.assert_array_equal(a.demand_kw, b.demand_kw)
    np.testing.assert_array_equal(a.p_max_kw, b.p_max_kw)


def test_bad_fleet_is_named_after_the_fast_check():
    def nan_demand(n, T, dt, h, rng):
        f = HouseholdMix()(n, T, dt, h, rng)
        d = f.demand_kw.copy()
        d[1, 2] = np.nan
        return Fleet(d, f.p_max_kw, f.ramp_kw, f.eta, f.cost_a, f.cost_b, f.p0_kw, f.bus, f.names, f.shed_value)

    env = auction_v0.parallel_env(n_prosumers=4, max_cycles=3, generator=nan_demand)
    with pytest.raises(ValueError, match="prosumer 'prosumer_2': demand_kw is invalid"):
        env.reset(seed=0)


def test_env_constructor_signature_lists_info_level():
    import inspect

    for fn in (auction_v0.parallel_env, auction_v0.env, auction_v0.raw_env, auction_v0.vector_env):
        p = inspect.signature(fn).parameters["info_level"]
        assert p.default == "full" and p.kind is inspect.Parameter.KEYWORD_ONLY
        assert "info_level: str = 'full'" in fn.__doc__


def test_vector_fused_step_equals_the_general_path():
    general = functools.partial(lambda p, q, s, k: uniform.clear(p, q, s, k=k), k=0.5)
    a = auction_v0.AuctionVectorEnv(3, n_prosumers=4, max_cycles=3)
    b = auction_v0.AuctionVectorEnv(3, n_prosumers=4, max_cycles=3, clear=general)
    acts = np.random.default_rng(2).uniform(-1.3, 1.3, (7, 3, 4, 2)).astype(np.float32)
    for env in (a, b):
        env.reset(seed=1)
    assert a.core.fused and not b.core.fused
    for t in range(7):
        ra, rb = a.step(acts[t]), b.step(acts[t])
        for x, y in zip(ra[:4], rb[:4]):
            np.testing.assert_array_equal(x, y)
        assert set(ra[4]) == set(rb[4])
        for k in ra[4]:
            if k == "market":
                assert set(ra[4][k]) == set(rb[4][k])
                for m in ra[4][k]:
                    np.testing.assert_array_equal(ra[4][k][m], rb[4][k][m])
            else:
                np.testing.assert_array_equal(ra[4][k], rb[4][k], err_msg=k)
                assert ra[4][k].dtype == rb[4][k].dtype
