"""One definition each: the step's tariffs, the reservation buy price and the truthful price
(``p2penv.market.truthful``), and the NashConv along a trajectory (``p2penv.diagnostics.nash.trajectory_nash_conv``)."""
import dataclasses
import functools

import numpy as np
import pytest

from p2penv.diagnostics.nash import stage_nash_conv, trajectory_nash_conv
from p2penv.market.mechanisms import uniform
from p2penv.market.pipeline import MarketRules, StepContext, run_step
from p2penv.market.truthful import reservation_buy_price, step_tariffs, truthful_price

RULES = MarketRules(0.0, 0.4, 0.30, 0.05, "backstop", functools.partial(uniform.clear, k=0.5))


def ctx3(**kw) -> StepContext:
    """Seller (1 kW fixed DER), buyer (1 kW), flexible buyer (1 kW, lost value 0.2 $/kWh)."""
    c = StepContext.build(demand_kw=np.array([0.0, 1.0, 1.0]), p_max_kw=np.array([1.0, 0.0, 0.0]),
                          p_prev_kw=np.array([1.0, 0.0, 0.0]), ramp_kw=np.zeros(3), eta=np.ones(3),
                          cost_a=np.full(3, 0.01), cost_b=np.zeros(3), dt_h=1.0,
                          shed_value=np.array([np.inf, np.inf, 0.2]))
    return dataclasses.replace(c, **kw)


def test_step_tariffs_prefer_the_steps_own_and_fall_back_to_the_rules():
    assert step_tariffs(ctx3(), RULES) == (0.30, 0.05)
    assert step_tariffs(ctx3(retail_tariff=0.40, feed_in_tariff=0.02), RULES) == (0.40, 0.02)
    assert step_tariffs(ctx3(retail_tariff=0.40), RULES) == (0.40, 0.05)


def test_reservation_buy_price_is_retail_or_the_lower_lost_value():
    np.testing.assert_array_equal(reservation_buy_price(ctx3(), RULES), [0.30, 0.30, 0.20])
    np.testing.assert_array_equal(reservation_buy_price(ctx3(retail_tariff=0.15), RULES), [0.15, 0.15, 0.15])
    np.testing.assert_array_equal(reservation_buy_price(ctx3(shed_value=None), RULES), [0.30] * 3)
    # one tariff per market of a batched (E, N) context broadcasts over the agents
    batched = dataclasses.replace(ctx3(shed_value=None), demand_kw=np.ones((2, 3)), retail_tariff=np.array([0.3, 0.1]))
    np.testing.assert_array_equal(reservation_buy_price(batched, RULES), [[0.3] * 3, [0.1] * 3])


def test_truthful_price_sellers_ask_cost_at_least_feed_in_buyers_bid_their_value():
    p = truthful_price(np.array([True, True, False]), np.array([0.02, 0.12, 0.5]), np.array([0.3, 0.3, 0.25]), 0.05)
    np.testing.assert_array_equal(p, [0.05, 0.12, 0.25])


def test_trajectory_nash_conv_is_the_stage_nash_conv_of_every_step():
    c = ctx3()
    rng = np.random.default_rng(0)
    joints = [rng.uniform(-1, 1, (3, 2)) for _ in range(3)]
    ctxs = [c, ctx3(retail_tariff=0.2), c]
    joints.append(joints[0])  # a repeated (context, action) pair: served from the cache, same value
    ctxs.append(c)
    g = trajectory_nash_conv(ctxs, joints, RULES, method="grid")
    assert g.shape == (4, 3)
    for t in range(4):
        np.testing.assert_array_equal(g[t], stage_nash_conv(joints[t], ctxs[t], RULES, method="grid").gains)
    np.testing.assert_array_equal(g[3], g[0])
    # the cache key holds every field: the same demand and action under another tariff is another game
    two = trajectory_nash_conv([c, ctxs[1]], [joints[0], joints[0]], RULES, method="grid")
    np.testing.assert_array_equal(two[1], stage_nash_conv(joints[0], ctxs[1], RULES, method="grid").gains)
    assert not np.array_equal(two[1], two[0])
    sub = trajectory_nash_conv(ctxs, joints, RULES, players=[0, 2], method="grid")
    np.testing.assert_array_equal(sub, g[:, [0, 2]])
    with pytest.raises(ValueError, match="empty trajectory"):
        trajectory_nash_conv([], [], RULES)


def test_the_pipeline_settles_at_the_steps_tariffs():
    joint = np.array([[-1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])  # everyone at the floor: the buyers' bids match nothing
    flat = run_step(joint, ctx3(shed_value=None), RULES).settlement.reward
    tou = run_step(joint, ctx3(shed_value=None, retail_tariff=0.40), RULES).settlement.reward
    assert tou[1] < flat[1]  # the unmatched buyer imports at the step's retail tariff
