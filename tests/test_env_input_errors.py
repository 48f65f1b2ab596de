"""Defects found by trying the environments as a new user: each raises a clear error now.

Every case failed (crashed late, or passed silently) before the batched-core rewrite; the messages
name the field, and the agent (and env index) where one is involved.
"""
import numpy as np
import pytest

from p2penv import auction_v0, dlmp_v0
from p2penv.market.mechanisms import MECHANISMS
from p2penv.network.cases import FEEDERS
from p2penv.network.feeder import Feeder


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_every_mechanism_steps_in_the_env(mechanism):
    """mcafee and vcg used to fail with `clear() got an unexpected keyword argument 'k'`."""
    env = auction_v0.parallel_env(n_prosumers=6, mechanism=mechanism, k=0.3, max_cycles=3)
    env.reset(seed=0)
    while env.agents:
        _, rew, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert np.all(np.isfinite(list(rew.values())))


@pytest.mark.parametrize("scale", [5, 7, 1000])
def test_dlmp_load_scale_outside_lindistflow_range_is_refused(scale):
    """load_scale=7 used to give DLMPs of 7e9 $/kWh silently; 1000 a HiGHS 'Empty' status."""
    with pytest.raises(ValueError, match=rf"load_scale={float(scale)}: LinDistFlow puts bus 17 .* below the 0.5 p.u."):
        dlmp_v0.parallel_env(load_scale=scale)
    env = dlmp_v0.parallel_env(load_scale=3)  # 0.72 p.u. at bus 17: inside the range, accepted
    env.reset(seed=0)
    assert env.network.voltages.min() == pytest.approx(0.7187, abs=1e-4)


def test_dlmp_infinite_penalty_is_refused():
    with pytest.raises(ValueError, match="penalty: must be finite"):
        dlmp_v0.parallel_env(penalty=float("inf"))


@pytest.mark.parametrize("value, msg", [
    (["0.1", "0.2"], r"agent 'prosumer_1': action must be real numbers, got <U3"),
    (np.array([0.1 + 1j, 0.2]), r"agent 'prosumer_1': action must be real numbers, got complex128"),
    (None, r"agent 'prosumer_1': action must be real numbers, got None"),
    ([0.1, float("nan")], r"agent 'prosumer_1': action\[1\] \(dispatch\) is nan"),
    ([0.1], r"agent 'prosumer_1': action has shape \(1,\), expected \(2,\)"),
])
def test_non_numeric_actions_name_agent_and_field(value, msg):
    env = auction_v0.parallel_env(n_prosumers=3)
    env.reset(seed=0)
    acts = {a: np.zeros(2) for a in env.agents}
    acts["prosumer_1"] = value
    with pytest.raises(ValueError, match=msg):
        env.step(acts)


@pytest.mark.parametrize("make", [lambda: auction_v0.parallel_env(render_mode="ansi"),
                                  lambda: dlmp_v0.parallel_env(scenario="teaching4", render_mode="ansi")])
def test_state_render_and_step_before_reset_say_reset_first(make):
    env = make()
    for call in (env.state, env.render, lambda: env.step({})):
        with pytest.raises(RuntimeError, match=r"before reset\(\): call reset\(\) first"):
            call()
    env.reset(seed=0)
    while env.agents:
        env.step({a: np.zeros(2) for a in env.agents})
    with pytest.raises(RuntimeError, match="finished episode; call reset"):
        env.step({})


def test_unknown_reset_option_warns_instead_of_being_ignored():
    env = auction_v0.parallel_env()
    with pytest.warns(UserWarning, match=r"ignoring unsupported option\(s\) \['start_hour'\].*parallel_env\(start_hour=8\)"):
        env.reset(seed=0, options={"start_hour": 8})
    with pytest.raises(ValueError, match="expected a dict"):
        env.reset(seed=0, options=[("start_hour", 8)])


@pytest.mark.parametrize("field, value", [("v_root", float("inf")), ("base_kva", float("inf"))])
def test_feeder_rejects_infinite_bases(field, value):
    f = FEEDERS["teaching4"]()
    kw = dict(n_bus=f.n_bus, from_bus=f.from_bus, to_bus=f.to_bus, r_pu=f.r_pu, x_pu=f.x_pu, base_kv=f.base_kv,
              base_kva=f.base_kva, v_root=f.v_root)
    kw[field] = value
    with pytest.raises(ValueError, match=f"{field}.*finite"):
        Feeder(**kw)


def test_feeder_rejects_fractional_bus_index():
    f = FEEDERS["teaching4"]()
    to_bus = f.to_bus.astype(float)
    to_bus[0] = 1.5
    with pytest.raises(ValueError, match=r"to_bus\[0\] = 1.5 is not an integer bus index"):
        Feeder(n_bus=f.n_bus, from_bus=f.from_bus, to_bus=to_bus, r_pu=f.r_pu, x_pu=f.x_pu, base_kv=f.base_kv,
               base_kva=f.base_kva)


@pytest.mark.parametrize("kw, msg", [
    (dict(mechanism="pay_as_bid"), "mechanism: does not apply to dlmp_v0"),
    (dict(k=0.3), "k: does not apply to dlmp_v0"),
    (dict(n_prosumers=-3), r"n_prosumers: need an integer >= 2 .* got -3"),
])
def test_dlmp_config_rejects_auction_only_fields_and_bad_sizes(kw, msg):
    with pytest.raises(ValueError, match=msg):
        dlmp_v0.parallel_env(**kw)


@pytest.mark.parametrize("kw, msg", [
    (dict(n_prosumers=-3), "n_prosumers: need an integer >= 2 agents for a market, got -3"),
    (dict(n_prosumers=2.5), "n_prosumers: need an integer"),
    (dict(start_hour=float("nan")), "start_hour: must be a finite number, got nan"),
    (dict(price_cap=float("inf")), "price_cap: must be a finite number, got inf"),
    (dict(retail_tariff="0.3"), "retail_tariff: must be a finite number, got '0.3'"),
])
def test_market_config_errors_name_the_field_at_construction(kw, msg):
    with pytest.raises(ValueError, match=msg):
        auction_v0.parallel_env(**kw)
