"""The versioned scenario registry: every scenario builds, and its first steps are pinned."""
import hashlib

import numpy as np
import pytest

import p2penv
from p2penv.registry import ScenarioSpec, register

# sha256 prefix of the first observation, then 3 steps of observations and rewards under seeded
# random actions (reset(seed=0), actions from default_rng(0)); rounded to 1e-6 (obs) and 1e-9 $
# (rewards). A changed number here means the scenario changed: register a new version instead.
PINNED = {
    "auction_v0/household6-v0": "66849a8f39a57ae0",
    "auction_v0/profile-storage-community-v0": "2ba4cee4a9a67c61",
    "auction_v0/profile-week-v0": "7ed93c868edf0d45",
    "auction_v0/sellers3-v0": "4507637580bb7324",
    "auction_v0/storage-community-v0": "2ba47611ebbbae04",
    "auction_v0/storage-week-v0": "4176994b816e2814",
    "dlmp_v0/congested-v0": "711e91cbb3d51ac9",
    "dlmp_v0/default-v0": "00ce72ee774f813e",
    "dlmp_v0/teaching4-v0": "a4c04a573c027c57",
    "dlmp_v0/undervoltage-v0": "00ce72ee774f813e",
    "dlmp_v0/outage-line7-v0": "238cd2fa819e4a67",
    "dlmp_v0/island-v0": "a58cf9a8df2c5189",
    "dlmp_v0/voltage-stress-v0": "74718cf2fa3fd57b",
    "auction_v0/first_price2-v0": "1076c429003349dc",
    "auction_v0/first_price3-v0": "c0e6c2142dba57f3",
    "auction_v0/k_double_bilateral-v0": "e6145ee29594f246",
    "auction_v0/arbitrage_tou-v0": "ec352baa2bb99050",
    "auction_v0/arbitrage_wholesale-v0": "830fb7043d5b669c",
    # issue 21 feeders; the three LV ones hash pandapower's network data too (pandapower 3.5.6)
    "dlmp_v0/ieee69-v0": "7921c356d72c3240",
    "dlmp_v0/ieee-eu-lv-v0": "3e6689c4013cc0f9",
    "dlmp_v0/cigre-lv-v0": "ebecab29d279714d",
    "dlmp_v0/kerber-dorfnetz-v0": "6d646b4ad6392a7d",
    # issue 21 SimBench profiles (simbench 1.6.3; skipped without the simbench extra)
    "auction_v0/simbench-semiurb5-v0": "8254f5464c1f1c37",
}


def fingerprint(env) -> str:
    obs, _ = env.reset(seed=0)
    k = env.action_space(env.agents[0]).shape[0]
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    h.update(np.round(np.stack([obs[a] for a in env.agents]).astype(np.float64), 6).tobytes())
    for _ in range(3):
        if not env.agents:  # one-step episodes (the Bayesian stage games): the next stage game
            env.reset()
        acts = {a: rng.uniform(-1, 1, k) for a in env.possible_agents}
        obs, rew, *_ = env.step(acts)
        h.update(np.round(np.stack([obs[a] for a in env.possible_agents]).astype(np.float64), 6).tobytes())
        h.update(np.round(np.array([rew[a] for a in env.possible_agents]), 9).tobytes())
    return h.hexdigest()[:16]


def test_every_scenario_is_pinned():
    assert sorted(PINNED) == p2penv.list_scenarios()


@pytest.mark.parametrize("scenario_id", sorted(PINNED))
def test_scenario_first_steps_are_pinned(scenario_id):
    if "simbench" in p2penv.get_spec(scenario_id).extras:
        pytest.importorskip("simbench")  # an optional extra the test install leaves out (tests/test_simbench_scenario.py)
    assert fingerprint(p2penv.make(scenario_id)) == PINNED[scenario_id]


@pytest.mark.parametrize("scenario_id", ["auction_v0/sellers3-v0", "auction_v0/storage-community-v0",
                                         "dlmp_v0/teaching4-v0"])
def test_make_vector_market_e_is_make_seeded_seed_plus_e(scenario_id):
    assert_vector_market_e_is_make_seeded_seed_plus_e(scenario_id, 3)


def assert_vector_market_e_is_make_seeded_seed_plus_e(scenario_id: str, n_envs: int, seed: int = 4) -> None:
    """``make_vector(scenario_id, n_envs).reset(seed)`` observes in market e what ``make(scenario_id)`` does
    reset with ``seed + e``."""
    vec = p2penv.make_vector(scenario_id, n_envs)
    obs_v, _ = vec.reset(seed=seed)
    for e in range(n_envs):
        env = p2penv.make(scenario_id)
        obs, _ = env.reset(seed=seed + e)
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.agents]), obs_v[e])


def test_overrides_and_errors():
    env = p2penv.make("auction_v0/household6-v0", max_cycles=5, mechanism="pay_as_bid")
    assert env.max_cycles == 5 and env.config.mechanism == "pay_as_bid"
    assert p2penv.get_spec("auction_v0/sellers3-v0").learners == ("prosumer_0", "prosumer_1", "prosumer_2")
    assert set(p2penv.list_scenarios("dlmp_v0")) == {k for k in PINNED if k.startswith("dlmp_v0/")}
    with pytest.raises(ValueError, match="unknown 'auction_v0/nope-v0'"):
        p2penv.make("auction_v0/nope-v0")
    with pytest.raises(ValueError, match="already registered; register a new version"):
        register(p2penv.get_spec("auction_v0/sellers3-v0"))
    with pytest.raises(ValueError, match="expected '<env>/<name>-v<N>'"):
        ScenarioSpec("auction_v0/unversioned", "auction_v0", {}, "", "")
    with pytest.raises(ValueError, match="unknown option"):
        p2penv.make("auction_v0/household6-v0", n_agents=3)
