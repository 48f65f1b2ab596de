"""Defects found by fuzzing the environments (11.2M agent-market steps with every invariant
recomputed): each is fixed and pinned here. The CLI's defects are in ``tests/test_cli_new_user.py``."""
import warnings

import numpy as np
import pytest

from p2penv import auction_v0, dlmp_v0
from p2penv.generators import HouseholdMix
from p2penv.market.mechanisms import vcg


# -- VCG: the payment path is chosen per book, so vector and single envs agree bit for bit ------------------
def test_vector_vcg_is_bit_identical_to_the_single_env_at_a_batch_above_the_old_switch():
    """E x N^2 = 11 x 400 > 4096 used to switch the whole batch to the fast payment path (rewards ~2e-16 off)."""
    e, n = 11, 20
    vec = auction_v0.vector_env(e, n_prosumers=n, mechanism="vcg", max_cycles=4)
    vec.reset(seed=0)
    singles = [auction_v0.parallel_env(n_prosumers=n, mechanism="vcg", max_cycles=4) for _ in range(e)]
    for k, s in enumerate(singles):
        s.reset(seed=k)
    rng = np.random.default_rng(0)
    for _ in range(4):
        acts = rng.uniform(-1, 1, (e, n, 2))
        _, rew, *_ = vec.step(acts)
        for k, s in enumerate(singles):
            _, r, *_ = s.step({a: acts[k, i] for i, a in enumerate(s.agents)})
            assert np.array_equal(np.array(list(r.values())), rew[k])


def test_vcg_brute_force_chunks_do_not_change_a_bit(monkeypatch):
    rng = np.random.default_rng(3)
    b, n = 7, 12
    p, q, s = rng.random((b, n)), rng.random((b, n)) + 0.1, rng.choice([-1, 1], (b, n)).astype(np.int8)
    whole = vcg.clear(p, q, s)
    monkeypatch.setattr(vcg, "BRUTE_FORCE_CHUNK_CELLS", 2 * n * n)  # 4 chunks of 2, 2, 2, 1 books
    chunked = vcg.clear(p, q, s)
    assert np.array_equal(whole.unit_price, chunked.unit_price) and np.array_equal(whole.matched, chunked.matched)
    one = vcg.clear(p[4], q[4], s[4])  # a book alone pays what it pays inside the batch
    assert np.array_equal(one.unit_price, whole.unit_price[4])


# -- huge finite actions are clipped, as documented, and reported ----------------------------------------
@pytest.mark.parametrize("big", [1e308, -1e308, np.finfo(np.float64).max])
def test_huge_finite_actions_are_clipped_and_reported(big):
    """``isfinite(arr.sum())`` overflowed to inf and the search for the non-finite entry found none: IndexError."""
    env = auction_v0.parallel_env(n_prosumers=3)
    env.reset(seed=0)
    _, rew, *_, infos = env.step({a: np.array([big, 0.0]) for a in env.agents})
    assert all(np.isfinite(list(rew.values())))
    for a in env.agents:
        assert infos[a]["clip_price"] == pytest.approx(abs(big) - 1.0, rel=1e-12)
        assert infos[a]["bid_price"] == (env.config.price_cap if big > 0 else env.config.price_floor)
    vec = auction_v0.vector_env(2, n_prosumers=3)
    vec.reset(seed=0)
    acts = np.zeros((2, 3, 2))
    acts[:, :, 0] = big
    _, rew, _, _, infos = vec.step(acts)
    assert np.all(np.isfinite(rew)) and np.allclose(infos["clip_price"], abs(big) - 1.0, rtol=1e-12)


def test_nan_among_huge_actions_is_still_named():
    env = auction_v0.parallel_env(n_prosumers=3)
    env.reset(seed=0)
    acts = {a: np.array([1e308, 1e308]) for a in env.agents}
    acts["prosumer_2"] = np.array([1e308, np.nan])
    with pytest.raises(ValueError, match=r"agent 'prosumer_2': action\[1\] \(dispatch\) is nan"):
        env.step(acts)


# -- bool and ragged actions -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.array([True, False]), [True, 0.5], np.array([1, 0], dtype=bool)])
def test_a_bool_action_among_float_ones_is_rejected(value):
    """numpy stacked it with the others' floats as 1.0 / 0.0; an all-bool batch was already refused."""
    env = auction_v0.parallel_env(n_prosumers=3)
    env.reset(seed=0)
    acts = {a: np.array([0.1, 0.2]) for a in env.agents}
    acts["prosumer_1"] = value
    with pytest.raises(ValueError, match=r"agent 'prosumer_1': action must be real numbers, got bool"):
        env.step(acts)


@pytest.mark.parametrize("make, msg", [
    (lambda ok: [ok[0], [ok[1][0], [0.0, 0.0, 0.0], ok[1][2]]],
     r"env 1, agent 'prosumer_1': action has shape \(3,\), expected \(2,\) \(price, dispatch\)"),
    (lambda ok: [ok[0], ok[1][:2]], r"env 1: actions for 2 agents, expected 3"),
    (lambda ok: [ok[0], [ok[1][0], [0.0, [1.0, 2.0]], ok[1][2]]], r"env 1, agent 'prosumer_1': action has shape"),
])
def test_ragged_vector_actions_name_env_and_agent(make, msg):
    vec = auction_v0.vector_env(2, n_prosumers=3)
    vec.reset(seed=0)
    ok = np.zeros((2, 3, 2)).tolist()
    with pytest.raises(ValueError, match=msg):
        vec.step(make(ok))


# -- unchecked inputs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, msg", [
    (dict(kinds=()), r"kinds: need a non-empty tuple"),  # was a ZeroDivisionError at reset
    (dict(kinds="consumer"), r"kinds: need a non-empty tuple"),
    (dict(kinds=("consumer", "heat_pump")), r"kinds: unknown \['heat_pump'\]"),
    (dict(demand_noise=50), r"demand_noise: the lognormal sigma must lie in \[0, 1.0\], got 50"),  # rewards of 1e38
    (dict(demand_noise=-0.1), r"demand_noise: .* got -0.1"),
    (dict(demand_noise=float("nan")), r"demand_noise: .* got nan"),
    (dict(demand_noise=True), r"demand_noise: .* got True"),
])
def test_household_mix_checks_its_fields(kw, msg):
    with pytest.raises(ValueError, match=msg):
        HouseholdMix(**kw)


def test_household_mix_still_accepts_its_range_and_lists():
    assert HouseholdMix(kinds=["consumer", "pv_household"], demand_noise=0).kinds == ("consumer", "pv_household")
    env = auction_v0.parallel_env(generator=HouseholdMix(demand_noise=1.0))
    env.reset(seed=0)


@pytest.mark.parametrize("seed", ["abc", 1.5, -1, True])
def test_bad_seeds_are_named(seed):
    """'abc' and 1.5 raised numpy's TypeError from inside reset(), -1 'expected non-negative integer'."""
    with pytest.raises(ValueError, match=r"seed: expected None or an integer >= 0"):
        auction_v0.parallel_env(seed=seed)
    env = auction_v0.parallel_env()
    with pytest.raises(ValueError, match=r"seed: expected None or an integer >= 0 .*, got "):
        env.reset(seed=seed)
    vec = auction_v0.vector_env(2)
    with pytest.raises(ValueError, match=r"seed: expected None or an integer >= 0"):
        vec.reset(seed=seed)
    auction_v0.parallel_env(seed=np.int64(3)).reset(seed=np.uint32(4))  # numpy integers are seeds


@pytest.mark.parametrize("num_envs", [True, False, 0, 2.0])
def test_vector_env_wants_an_integer_count(num_envs):
    """vector_env(True) made one env."""
    with pytest.raises(ValueError, match=r"num_envs: must be an integer >= 1"):
        auction_v0.vector_env(num_envs)


# -- dlmp_v0: a fixed load that breaks the limits by itself is an overloaded feeder, and the env says so --------
def test_dlmp_load_scale_whose_fixed_load_breaks_v_min_warns_at_construction():
    with pytest.warns(UserWarning, match=r"load_scale=1.5: the fixed load alone, before any agent acts, puts bus 17 "
                                         r"at 0.87\d p.u., below its v_min of 0.900 p.u. \(load_scale <= 1.18 keeps"):
        env = dlmp_v0.parallel_env(load_scale=1.5, max_cycles=2)
    env.reset(seed=0)
    *_, infos = env.step({a: np.zeros(2) for a in env.agents})
    assert infos["prosumer_0"]["market"]["lp_violated"]  # what the warning announced
    with pytest.warns(UserWarning, match=r"overloads line 5->6 by \d+ kW"):
        dlmp_v0.vector_env(2, scenario="ieee33-congested", load_scale=1.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dlmp_v0.parallel_env()  # the registered scenarios' loads are inside the limits
        dlmp_v0.parallel_env(scenario="ieee33-undervoltage")
