"""One market step as a pure pipeline over arrays: actions -> orders -> clearing -> settlement.

    feasibility (DER limits) -> orders -> clearing (mechanism) -> settlement (payments, backstop)

The environments call ``run_step`` once per step; the diagnostics call the *same* function with a
leading batch of modified joint actions (``actions`` of shape ``(..., N, 2)``) to evaluate
deviations, so the market is never re-implemented.

Action of agent i: ``(u_price, u_dispatch)`` in [-1, 1]^2, mapped affinely to
``price = floor + (u_price + 1)/2 (cap - floor)`` ($/kWh) and
``p = lo + (u_dispatch + 1)/2 (hi - lo)`` (kW) inside the feasible interval, so capacity and ramp
hold by construction. The net position ``q = eta p - d`` becomes one order: sell ``q dt`` kWh at ask
``price`` if q > 0, buy ``-q dt`` kWh at bid ``price`` if q < 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .mechanisms.types import Clearing
from .prosumer import feasible_interval
from .settlement import Settlement, settle


@dataclass(frozen=True)
class StepContext:
    """What one step depends on besides the actions; arrays are (N,), kW unless noted."""

    demand_kw: np.ndarray
    p_max_kw: np.ndarray
    p_prev_kw: np.ndarray
    lo_kw: np.ndarray  # feasible dispatch interval
    hi_kw: np.ndarray
    ramp_violation_kw: np.ndarray  # unavoidable, availability below ramp floor
    eta: np.ndarray
    cost_a: np.ndarray  # $/kWh^2
    cost_b: np.ndarray  # $/kWh
    dt_h: float
    shed_value: np.ndarray | None = None  # $/kWh value of lost load of flexible loads (None: none)

    @staticmethod
    def build(demand_kw, p_max_kw, p_prev_kw, ramp_kw, eta, cost_a, cost_b, dt_h, shed_value=None) -> "StepContext":
        lo, hi, viol = feasible_interval(p_prev_kw, p_max_kw, ramp_kw)
        if shed_value is not None and not np.isfinite(shed_value).any():
            shed_value = None  # nobody sheds: skip the work on the hot path
        return StepContext(demand_kw, p_max_kw, p_prev_kw, lo, hi, viol, eta, cost_a, cost_b, dt_h, shed_value)


@dataclass(frozen=True)
class MarketRules:
    """Price bounds, tariffs and the clearing function the pipeline uses."""

    price_floor: float
    price_cap: float
    retail_tariff: float
    feed_in_tariff: float
    unmatched: str
    clear: Callable[..., Clearing]  # clear(prices, quantities, sides) -> Clearing (params bound)


@dataclass(frozen=True)
class StepOutcome:
    """Everything a step produced; arrays (..., N) for a batch of joint actions."""

    bid_price: np.ndarray  # $/kWh limit price of each agent's order
    dispatch_kw: np.ndarray  # chosen dispatch before any curtailment
    order_kwh: np.ndarray
    sides: np.ndarray  # +1 sell, -1 buy, 0 idle
    clip_excess: np.ndarray  # (..., N, 2) how far each action component lay outside [-1, 1]
    clearing: Clearing
    settlement: Settlement


def actions_to_orders(actions: np.ndarray, ctx: StepContext, rules: MarketRules):
    """Map (..., N, 2) actions in [-1, 1] to bid price, dispatch, order volume and side."""
    a = np.clip(actions, -1.0, 1.0)
    excess = np.abs(actions - a)
    price = rules.price_floor + 0.5 * (a[..., 0] + 1.0) * (rules.price_cap - rules.price_floor)
    dispatch = ctx.lo_kw + 0.5 * (a[..., 1] + 1.0) * (ctx.hi_kw - ctx.lo_kw)
    net_kwh = (ctx.eta * dispatch - ctx.demand_kw) * ctx.dt_h
    sides = np.sign(net_kwh).astype(np.int8)
    return price, dispatch, np.abs(net_kwh), sides, excess


def run_step(actions: np.ndarray, ctx: StepContext, rules: MarketRules) -> StepOutcome:
    """Run one step for a joint action (N, 2) or a batch of joint actions (..., N, 2)."""
    price, dispatch, qty, sides, excess = actions_to_orders(actions, ctx, rules)
    clr = rules.clear(price, qty, sides)
    st = settle(
        dispatch_kw=dispatch,
        floor_kw=ctx.lo_kw,
        demand_kw=ctx.demand_kw,
        eta=ctx.eta,
        cost_a=ctx.cost_a,
        cost_b=ctx.cost_b,
        dt_h=ctx.dt_h,
        order_kwh=qty,
        sides=sides,
        matched_kwh=clr.matched,
        unit_price=clr.unit_price,
        retail_tariff=rules.retail_tariff,
        feed_in_tariff=rules.feed_in_tariff,
        unmatched=rules.unmatched,
        shed_value=ctx.shed_value,
    )
    return StepOutcome(price, dispatch, qty, sides, excess, clr, st)


def validate_actions(actions: dict, agents: list[str], shape: tuple[int, ...] = (2,)) -> np.ndarray:
    """Dict of per-agent actions -> (N, 2) float array; ValueError names agent and field."""
    fields_ = ("price", "dispatch")
    try:
        arr = np.array([actions[a] for a in agents], dtype=np.float64)
    except KeyError as e:
        raise ValueError(f"agent {e.args[0]!r}: no action given (every live agent must act)") from None
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (len(agents),) + shape:
        for a in agents:
            v = np.asarray(actions[a])
            if v.shape != shape:
                raise ValueError(f"agent {a!r}: action has shape {v.shape}, expected {shape}")
        raise ValueError("actions: could not be stacked into an array")
    if not np.isfinite(arr).all():
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"agent {agents[i]!r}: action[{j}] ({fields_[j]}) is {arr[i, j]}")
    extra = set(actions) - set(agents)
    if extra:
        raise ValueError(f"actions given for agents that are not live: {sorted(extra)}")
    return arr
