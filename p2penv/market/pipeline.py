"""One market step as a pure pipeline over arrays: actions -> orders -> clearing -> settlement.

    feasibility (DER limits) -> orders -> clearing (mechanism) -> settlement (payments, backstop)

Each stage is one compiled kernel over a batch: ``orders_kernel`` here, the mechanism's clearing,
``settlement.settle_order``. ``run_step`` chains them for any leading batch of joint actions
(``(..., N, 2)``; the diagnostics evaluate thousands of deviations in one call); the environments'
core (``p2penv.envs.auction_core``) calls the same kernels for E markets, with the settlement fused
into its state update. So the market is implemented once.

Action of agent i: ``(u_price, u_dispatch)`` in [-1, 1]^2, mapped affinely to
``price = floor + (u_price + 1)/2 (cap - floor)`` ($/kWh) and
``p = lo + (u_dispatch + 1)/2 (hi - lo)`` (kW) inside the feasible interval, so capacity and ramp
hold by construction. The net position ``q = eta p - d`` becomes one order: sell ``q dt`` kWh at ask
``price`` if q > 0, buy ``-q dt`` kWh at bid ``price`` if q < 0.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Callable

import numba
import numpy as np

from .mechanisms.types import Clearing
from .prosumer import feasible_interval
from .batching import agent_batches
from .settlement import Settlement, settle
from .truthful import step_tariffs


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
    charge_max_kw: np.ndarray | None = None  # battery interval this step (None: no batteries)
    discharge_max_kw: np.ndarray | None = None
    degradation_cost: np.ndarray | None = None  # $/kWh of battery throughput
    retail_tariff: float | None = None  # $/kWh of this step when tariffs vary (None: the rules')
    feed_in_tariff: float | None = None
    posted_price: float | np.ndarray | None = None  # $/kWh a posted-price market posts this step ((E,) per market)

    @staticmethod
    def build(demand_kw, p_max_kw, p_prev_kw, ramp_kw, eta, cost_a, cost_b, dt_h, shed_value=None) -> "StepContext":
        lo, hi, viol = feasible_interval(p_prev_kw, p_max_kw, ramp_kw)
        if shed_value is not None and not np.isfinite(shed_value).any():
            shed_value = None  # nobody sheds: skip the work on the hot path
        return StepContext(demand_kw, p_max_kw, p_prev_kw, lo, hi, viol, eta, cost_a, cost_b, dt_h, shed_value)

    def market(self, i: int) -> "StepContext":
        """Market ``i`` of a context built for E markets (arrays ``(E, N)`` -> ``(N,)``)."""
        return take_market(self, i)


@dataclass(frozen=True)
class MarketRules:
    """Price bounds, tariffs and the clearing function the pipeline uses."""

    price_floor: float
    price_cap: float
    retail_tariff: float
    feed_in_tariff: float
    unmatched: str
    clear: Callable[..., Clearing]  # clear(prices, quantities, sides) -> Clearing (params bound)
    island_voll: float = float("nan")  # $/kWh; set when no utility backstop exists (islanded feeder)


@dataclass(frozen=True)
class StepOutcome:
    """Everything a step produced; arrays (..., N) for a batch of joint actions."""

    bid_price: np.ndarray  # $/kWh limit price of each agent's order
    dispatch_kw: np.ndarray  # chosen dispatch before any curtailment
    order_kwh: np.ndarray
    sides: np.ndarray  # +1 sell, -1 buy, 0 idle
    clip_excess: np.ndarray  # (..., N, K) how far each action component lay outside [-1, 1]
    clearing: Clearing
    settlement: Settlement
    battery_kw: np.ndarray | None = None  # (..., N) battery power, > 0 charging (None: no storage)

    def market(self, i: int) -> "StepOutcome":
        """Market ``i`` of an outcome of E markets (per-agent ``(N,)``, per-market scalars)."""
        return take_market(self, i)


def take_market(record, i: int):
    """Slice market ``i`` from a frozen dataclass of batched arrays (nested records included)."""
    vals = {}
    for f in fields(record):
        v = getattr(record, f.name)
        if is_dataclass(v):
            v = take_market(v, i)
        elif isinstance(v, np.ndarray) and v.ndim >= 1:
            v = v[i]
        vals[f.name] = v
    return replace(record, **vals)


def actions_to_orders(actions: np.ndarray, ctx: StepContext, rules: MarketRules):
    """Map (..., N, 2) actions in [-1, 1] to bid price, dispatch, order volume, side and clip excess."""
    a, c = _as_batches(actions, ctx)
    out = orders_kernel(a, *c, float(ctx.dt_h), float(rules.price_floor), float(rules.price_cap))
    shape = np.shape(actions)[:-1]
    return tuple(x.reshape(shape + x.shape[2:]) for x in out)


def _as_batches(actions: np.ndarray, ctx: StepContext):
    """Actions as (B, N, K) and the context arrays lo, hi, eta, demand, charge_max, discharge_max as
    (Bc, N), Bc in {1, B}."""
    a = np.ascontiguousarray(actions, dtype=np.float64)
    n, k = a.shape[-2:]
    a = a.reshape(-1, n, k)
    zero = np.zeros(n)
    cmax = zero if ctx.charge_max_kw is None else ctx.charge_max_kw
    dmax = zero if ctx.discharge_max_kw is None else ctx.discharge_max_kw
    return a, agent_batches((ctx.lo_kw, ctx.hi_kw, ctx.eta, ctx.demand_kw, cmax, dmax), n, a.shape[0])


@numba.njit(cache=True, nogil=True)
def orders_kernel(actions, lo, hi, eta, demand, charge_max, discharge_max, dt_h, floor, cap):
    """(B, N, K) actions -> price, dispatch, |net| kWh, side (int8), clip excess (B, N, K), battery kW.

    K = 2 (price, dispatch) or 3 (+ storage: u in [-1, 0] discharges |u| x discharge_max, u in
    [0, 1] charges u x charge_max; 0 is idle). Net position ``q = eta p - d - b`` (b > 0 charging).
    """
    b_n, n, k = actions.shape
    shared = lo.shape[0] == 1
    price = np.empty((b_n, n))
    dispatch = np.empty((b_n, n))
    qty = np.empty((b_n, n))
    sides = np.empty((b_n, n), np.int8)
    excess = np.empty((b_n, n, k))
    battery = np.zeros((b_n, n))
    for b in range(b_n):
        c = 0 if shared else b
        for i in range(n):
            u0 = min(max(actions[b, i, 0], -1.0), 1.0)
            u1 = min(max(actions[b, i, 1], -1.0), 1.0)
            excess[b, i, 0] = abs(actions[b, i, 0] - u0)
            excess[b, i, 1] = abs(actions[b, i, 1] - u1)
            price[b, i] = floor + 0.5 * (u0 + 1.0) * (cap - floor)
            p = lo[c, i] + 0.5 * (u1 + 1.0) * (hi[c, i] - lo[c, i])
            dispatch[b, i] = p
            bat = 0.0
            if k == 3:
                u2 = min(max(actions[b, i, 2], -1.0), 1.0)
                excess[b, i, 2] = abs(actions[b, i, 2] - u2)
                bat = u2 * charge_max[c, i] if u2 >= 0.0 else u2 * discharge_max[c, i]
                battery[b, i] = bat
            net = (eta[c, i] * p - demand[c, i] - bat) * dt_h
            sides[b, i] = 1 if net > 0.0 else (-1 if net < 0.0 else 0)
            qty[b, i] = abs(net)
    return price, dispatch, qty, sides, excess, battery


def clear_book(price, qty, sides, ctx: StepContext, rules: MarketRules) -> Clearing:
    """``rules.clear`` of a book; with the step's ``ctx.posted_price`` ($/kWh, a posted-price market whose price
    rule varies by step: ``MarketConfig.posted_price_rule``) passed as the mechanism's ``price``."""
    if ctx.posted_price is None:
        return rules.clear(price, qty, sides)
    return rules.clear(price, qty, sides, price=ctx.posted_price)


def run_step(actions: np.ndarray, ctx: StepContext, rules: MarketRules) -> StepOutcome:
    """Run one step for a joint action (N, 2) or a batch of joint actions (..., N, 2).

    The context arrays are (N,) for one market (shared by every joint action of the batch) or
    (E, N) for E markets, one joint action each (``actions`` (E, N, 2)).
    """
    price, dispatch, qty, sides, excess, battery = actions_to_orders(actions, ctx, rules)
    clr = clear_book(price, qty, sides, ctx, rules)
    retail, feed_in = step_tariffs(ctx, rules)
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
        retail_tariff=retail,
        feed_in_tariff=feed_in,
        unmatched=rules.unmatched,
        shed_value=ctx.shed_value,
        battery_kw=battery,
        degradation_cost=ctx.degradation_cost,
        island_voll=rules.island_voll,
    )
    return StepOutcome(price, dispatch, qty, sides, excess, clr, st, battery)


ACTION_FIELDS = ("price", "dispatch", "storage")


def validate_actions(actions: dict, agents: list[str], shape: tuple[int, ...] = (2,)) -> np.ndarray:
    """Dict of per-agent actions -> (N, 2) float array; ValueError names agent and field.

    Only real numbers are actions: strings, None, complex or object values are rejected (numpy
    would silently parse "0.1" or drop an imaginary part).
    """
    try:
        vals = [actions[a] for a in agents]
    except KeyError as e:
        raise ValueError(f"agent {e.args[0]!r}: no action given (every live agent must act)") from None
    except TypeError:
        raise ValueError(f"actions: expected a dict of agent -> action, got {type(actions).__name__}") from None
    try:
        arr = np.array(vals)
    except ValueError:  # ragged
        arr = None
    # a bool action stacked with float ones would silently become 1.0 / 0.0
    if arr is None or arr.dtype.kind not in "fiu" or arr.shape != (len(agents),) + shape or any(map(_has_bool, vals)):
        for a, v in zip(agents, vals):
            if _has_bool(v):
                raise ValueError(f"agent {a!r}: action must be real numbers, got bool")
            _check_one(np.asarray(v, dtype=object) if v is None else np.asarray(v), shape, f"agent {a!r}")
        raise ValueError("actions: could not be stacked into an array")
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr, lambda i: f"agent {agents[i[0]]!r}")
    if len(actions) != len(agents):
        extra = set(actions) - set(agents)
        raise ValueError(f"actions given for agents that are not live: {sorted(extra)}")
    return arr


def validate_action_batch(actions, agents: list[str], num_envs: int, action_dim: int = 2) -> np.ndarray:
    """(E, N, K) array of joint actions -> float64 array; ValueError names env, agent and field."""
    shape = (num_envs, len(agents), action_dim)
    try:
        arr = np.asarray(actions)
    except ValueError:  # ragged nested lists: find the first env and agent whose action does not fit
        _check_nested(actions, agents, shape)
        raise
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"actions: expected real numbers, got dtype {arr.dtype} (shape {shape} expected)")
    if arr.shape != shape:
        raise ValueError(f"actions: expected shape (num_envs, agents, {action_dim}) = {shape}, got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    _check_finite(arr, lambda i: f"env {i[0]}, agent {agents[i[1]]!r}")
    return arr


def _check_finite(arr: np.ndarray, who) -> None:
    """ValueError naming ``who(index)`` and the field of the first NaN/inf. Huge finite values are
    actions like any other (clipped to [-1, 1], reported in ``clip_*``): the fast check sums
    ``0 x arr``, which is nan exactly where an entry is not finite and cannot overflow as ``arr.sum()`` can."""
    with np.errstate(invalid="ignore"):  # inf x 0 is nan on purpose
        bad = np.isnan((arr * 0.0).sum())
    if bad:
        *i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{who(i)}: action[{j}] ({ACTION_FIELDS[j]}) is {arr[(*i, j)]}")


def _has_bool(v) -> bool:
    """A bool array or a sequence holding bools (numpy would stack it with floats as 1.0 / 0.0)."""
    if isinstance(v, np.ndarray):
        return v.dtype.kind == "b"
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, (bool, np.bool_)) for x in v)
    return isinstance(v, (bool, np.bool_))


def _check_nested(actions, agents: list[str], shape: tuple[int, int, int]) -> None:
    """ValueError naming env and agent of the first action in nested sequences that breaks ``shape``."""
    num_envs, n, k = shape
    if len(actions) != num_envs:
        raise ValueError(f"actions: {len(actions)} envs given, expected {num_envs} (shape {shape})")
    for e, row in enumerate(actions):
        if not hasattr(row, "__len__") or len(row) != n:
            got = len(row) if hasattr(row, "__len__") else "no list of"
            raise ValueError(f"env {e}: actions for {got} agents, expected {n} (shape {shape})")
        for i, v in enumerate(row):
            try:
                got = np.shape(v)
            except ValueError:
                got = "ragged"
            if got != (k,):
                names = ", ".join(ACTION_FIELDS[:k])
                raise ValueError(f"env {e}, agent {agents[i]!r}: action has shape {got}, expected ({k},) ({names})")


def _check_one(v: np.ndarray, shape: tuple[int, ...], who: str) -> None:
    if v.dtype.kind not in "fiu":
        kind = "None" if v.dtype == object and v.ndim == 0 and v.item() is None else str(v.dtype)
        raise ValueError(f"{who}: action must be real numbers, got {kind}")
    if v.shape != shape:
        raise ValueError(f"{who}: action has shape {v.shape}, expected {shape}")
