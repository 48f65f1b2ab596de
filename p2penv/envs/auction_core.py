"""The batched core of the market environments: E markets stepped together as arrays.

    scenario (generator -> Fleet (E, T, N)) -> feasibility (StepContext (E, N))
        -> orders -> clearing -> settlement (``pipeline.run_step`` on (E, N, 2) actions)
        -> observations (E, N, F), info columns (E, N), market columns (E,)

``AuctionCore`` holds the state of E independent markets with the same configuration and the same
episode clock (episodes have a fixed length and end by truncation only, so the markets stay in
step). Market e draws its scenario from its own random generator, seeded ``seed + e``, so market e
of a batch reproduces a single market seeded ``seed + e`` bit for bit. The single environment
(``AuctionEnv``) is this core with E = 1 plus the PettingZoo dicts; the vector environment
(``AuctionVectorEnv``) is this core plus Gymnasium's vector conventions. Nothing here knows
about dicts or agents' names beyond the list of them.

End-of-episode SOC: a generator with ``soc_end = "start"`` (default ``None``: free) makes every
battery end the episode at its start SOC (``market.storage.soc_end_interval``): each step's battery
interval is narrowed so that the start SOC stays reachable, the last step lands on it, and the
narrowing is reported in the ``soc_end_narrowing_kw`` info (the interval itself in ``battery_lo_kw``,
``battery_hi_kw``). The storage action is mapped onto the narrowed interval by
``market.storage.battery_power``; scenarios without the option take exactly the old path.
"""
from __future__ import annotations

import functools
import math
import inspect
from typing import Callable

import numpy as np

from ..market.mechanisms import get_mechanism, pay_as_bid, posted_price, uniform
from ..market.mechanisms.types import Clearing
from ..market.pipeline import ACTION_FIELDS, MarketRules, StepContext, StepOutcome, clear_book, orders_kernel
from ..market.prosumer import Fleet
from ..market.settlement import Settlement
from ..market.truthful import step_tariffs
from .config import SEED_RULE, MarketConfig, is_seed
from ..market.storage import SOC_END_MODES, STORAGE_FIELDS, Storage
from ..generators.protocol import (BatchGenerator, PricedGenerator, check_generator, draw_fleets, draws_in_order,
                                   tariff_series)
from .core_kernels import (A_CASH, A_CLIP_DISPATCH, A_CLIP_PRICE, A_COST, A_DISPATCH, A_HI, A_INFO, A_LO, A_MATCHED,
                           A_ORDER, A_PRICE, A_REALISED, A_REWARD, A_ROWS, A_SETTLEMENT_ROWS, A_SIDE, A_UNIT,
                           A_VIOLATION, M_CLEARING_PRICE, M_LAST_PRICE, M_SURPLUS, M_VOLUME, M_WELFARE, P_LEN, S_ROWS,
                           feasible_kernel, first_nonfinite, fleet_values_ok, market_step_kernel, observe_kernel,
                           settle_markets_kernel, soc_end_kernel, storage_command_kernel, storage_kernel,
                           storage_obs_kernel)
from .fields import INFO_FIELDS, OBS_FIELDS, STORAGE_INFO_FIELDS, STORAGE_OBS_FIELDS, names

OBS_NAMES = names(OBS_FIELDS)
INFO_NAMES = names(INFO_FIELDS)
STORAGE_OBS_NAMES = names(STORAGE_OBS_FIELDS)
STORAGE_INFO_NAMES = names(STORAGE_INFO_FIELDS)
MARKET_NAMES = ("clearing_price", "volume_kwh", "welfare", "operator_surplus")
assert A_INFO == len(INFO_NAMES)  # the fused step's info rows are INFO_FIELDS in order (core_kernels)


def make_rules(cfg: MarketConfig, clear: Callable[..., Clearing] | None = None) -> MarketRules:
    """Market rules of a config; the mechanism gets only the parameters its ``clear`` declares.

    ``clear``: a clearing function ``(prices, quantities, sides) -> Clearing`` to use instead of the
    config's mechanism (the DLMP environment injects its network clearing this way).
    """
    if clear is None:
        fn = get_mechanism(cfg.mechanism)
        declared = inspect.signature(fn).parameters
        params = {k: v for k, v in (("k", cfg.k), ("rule", cfg.rule), ("price", cfg.posted_price)) if k in declared}
        clear = functools.partial(fn, **params)  # a partial of a module function pickles; a closure would not

    return MarketRules(cfg.price_floor, cfg.price_cap, cfg.retail_tariff, cfg.feed_in_tariff, cfg.unmatched, clear)


def fused_clearing(clear: Callable) -> tuple[float, bool, bool] | None:
    """``(k, walrasian, pay_as_bid)`` when ``clear`` is the uniform or pay-as-bid double auction as
    ``make_rules`` builds it (a keyword partial of ``uniform.clear``/``pay_as_bid.clear``), whose compiled
    kernel the fused step calls directly; None for every other clearing (those take the general path)."""
    if not isinstance(clear, functools.partial) or clear.args:
        return None
    if clear.func is uniform.clear:
        pab = False
    elif clear.func is pay_as_bid.clear:
        pab = True
    else:
        return None
    kw = clear.keywords
    k, rule = kw.get("k", 0.5), kw.get("rule", "marginal_pair")
    if set(kw) - {"k", "rule"} or not 0.0 <= k <= 1.0 or rule not in uniform.RULES:
        return None  # let the mechanism itself raise its error
    return float(k), rule == "walrasian", pab


def _fleet_rows(fleet: Fleet, rows: slice) -> Fleet:
    """The markets ``rows`` of a batched fleet (views of every ``(E, ...)`` array, batteries included)."""
    st = fleet.storage
    if st is not None:
        st = Storage(*(a[rows] if a.ndim == 2 else a for a in (np.asarray(getattr(st, f)) for f in STORAGE_FIELDS)))
    sv = None if fleet.shed_value is None else fleet.shed_value[rows]
    return Fleet(fleet.demand_kw[rows], fleet.p_max_kw[rows], fleet.ramp_kw[rows], fleet.eta[rows],
                 fleet.cost_a[rows], fleet.cost_b[rows], fleet.p0_kw[rows], fleet.bus[rows], fleet.names, sv, st)


class AuctionCore:
    """E markets of one ``MarketConfig``: state, step, observations and info columns as arrays.

    Arrays are ``(E, N, ...)``: E = ``num_envs`` markets, N = ``config.n_prosumers`` agents.
    ``reset`` must come before ``step``/``observe``/``state``.
    """

    def __init__(self, config: MarketConfig, num_envs: int = 1, clear: Callable[..., Clearing] | None = None):
        if isinstance(num_envs, bool) or not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise ValueError(f"num_envs: must be an integer >= 1, got {num_envs!r}")
        self.config = config
        self.num_envs = int(num_envs)
        self.n_agents = config.n_prosumers
        self.max_cycles = config.max_cycles
        self.rules = make_rules(config, clear)
        check_generator(config.generator)  # the declared contract (generators.protocol), named when it fails
        # Batteries add a third action component (storage) for every agent; see market.storage.
        self.has_storage = bool(getattr(config.generator, "has_storage", False))
        self.action_dim = 3 if self.has_storage else 2
        self.action_shape = (self.num_envs, self.n_agents, self.action_dim)
        self.soc_end = getattr(config.generator, "soc_end", None)  # None (free) or "start"; market.storage
        if self.soc_end not in SOC_END_MODES:
            raise ValueError(f"generator: soc_end must be one of {SOC_END_MODES}, got {self.soc_end!r}")
        if self.soc_end is not None and not self.has_storage:
            raise ValueError(f"generator: soc_end={self.soc_end!r} needs batteries (has_storage is False)")
        self._price_span = config.price_cap - config.price_floor
        # The fused step (one compiled call per step, ``core_kernels.market_step_kernel``) serves the common case:
        # no batteries, the uniform or pay-as-bid auction, and a core that does not extend the step (the DLMP
        # core does); flat tariffs are checked at each reset. Everything else takes the general path.
        hooks = all(getattr(type(self), m) is getattr(AuctionCore, m) for m in ("_on_step", "_observe", "_context"))
        self._fused_params = fused_clearing(self.rules.clear) if hooks and not self.has_storage else None
        self.fused = False  # True while the fused step serves this episode (set by reset)
        # sin and cos of the hour of day at each step t = 0..T (the observation's hour_sin, hour_cos)
        ang = [2.0 * np.pi * ((config.start_hour + config.dt_h * t) % 24.0) / 24.0 for t in range(self.max_cycles + 1)]
        self._sincos = np.array([(math.sin(a), math.cos(a)) for a in ang])
        self._batched = isinstance(config.generator, BatchGenerator)  # the protocol checks, once (they are slow)
        self._priced = isinstance(config.generator, PricedGenerator)
        # Episodes drawn ahead per batch call (generators.protocol.draws_in_order): market e's next K episodes come
        # from rngs[e] in one call, exactly as K resets would draw them; only for small E (a vector env with
        # many markets already shares each call among them).
        self._episodes_ahead = max(1, 16 // self.num_envs) if draws_in_order(config.generator) else 1
        self._drawn: list[Fleet] = []
        self.seed(config.seed)
        self.fleet: Fleet | None = None
        self.t = 0
        self._outcome: StepOutcome | None = None
        self._raw = None  # the fused step's outputs, from which last_outcome is built on demand
        self._ctx: StepContext | None = None
        self._ctx_parts = None  # (t, p_prev, lo, hi, violation) of a context not built yet
        self._last_ctx: StepContext | None = None
        self._last_ctx_parts = None

    # -- episode ---------------------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        """Market e draws from ``default_rng(seed + e)`` (fresh entropy when seed is None)."""
        if not is_seed(seed):
            raise ValueError(f"seed: {SEED_RULE}, got {seed!r}")
        self._rngs = [np.random.default_rng(None if seed is None else seed + e) for e in range(self.num_envs)]
        self._drawn = []  # episodes drawn ahead from the old generators

    @property
    def started(self) -> bool:
        return self.fleet is not None

    @property
    def done(self) -> bool:
        """True once the episode's last step has been taken (all markets at once)."""
        return self.t >= self.max_cycles

    def reset(self, seed: int | None = None) -> None:
        """Draw a new scenario for every market (continuing each market's generator unless seeded)."""
        cfg = self.config
        if seed is not None:
            self.seed(seed)
        gen, n, horizon = cfg.generator, cfg.n_prosumers, cfg.max_cycles
        if not self._drawn:
            # one draw for all E markets (generators.protocol: a BatchGenerator's batch, else market by market),
            # of the next K episodes of each when its batch draws in order (rows e K + k: market e, episode k)
            k_ahead = self._episodes_ahead
            rngs = self._rngs if k_ahead == 1 else [r for r in self._rngs for _ in range(k_ahead)]
            fleet = draw_fleets(gen, n, horizon, cfg.dt_h, cfg.start_hour, rngs, self._batched)
            if fleet.n != n or fleet.horizon != horizon or fleet.num_envs != len(rngs):
                raise ValueError("generator: returned a fleet whose size or horizon does not match the config")
            # a generator is any callable: its fleet is checked here (one compiled pass; Fleet.validate names
            # the agent and field when something is wrong, and checks batteries)
            if fleet.storage is not None or not fleet_values_ok(
                    fleet.demand_kw.ravel(), fleet.p_max_kw.ravel(), fleet.ramp_kw.ravel(), fleet.eta.ravel(),
                    fleet.cost_a.ravel(), fleet.cost_b.ravel(), fleet.p0_kw.ravel(), fleet.shed_values.ravel()):
                fleet.validate()
            self._drawn = [fleet] if k_ahead == 1 else [_fleet_rows(fleet, slice(k, None, k_ahead))
                                                        for k in range(k_ahead)]
        fleet = self._drawn.pop(0)
        if (fleet.storage is not None) != self.has_storage:
            raise ValueError(f"generator: has_storage={self.has_storage} but the fleet it returned "
                             f"{'has' if fleet.storage is not None else 'has no'} storage parameters")
        self.prices = tariff_series(gen, horizon, cfg.dt_h, cfg.start_hour, self._priced)  # None: flat tariffs
        self.fleet = fleet
        self.t = 0
        self.p_prev = fleet.p0_kw.copy()
        self.storage = fleet.storage
        self.soc = None if fleet.storage is None else np.array(fleet.storage.soc0_kwh, dtype=np.float64)
        self._last_battery = None
        self._no_battery = np.zeros(fleet.ramp_kw.shape)
        self._narrowing = self._last_narrowing = self._no_battery
        if self.storage is not None:  # (E, N) float64 copies the compiled kernels take as they are
            self.storage = Storage(*(np.ascontiguousarray(np.broadcast_to(getattr(fleet.storage, f), fleet.ramp_kw.shape),
                                                          dtype=np.float64) for f in STORAGE_FIELDS))
            self._soc_target = self.storage.soc0_kwh  # soc_end="start": where every episode must end
        span = self._price_span
        self._mc_slope = 2.0 * (2.0 * fleet.cost_a * cfg.dt_h / fleet.eta) / span
        self._mc_offset = 2.0 * (fleet.cost_b / fleet.eta - cfg.price_floor) / span - 1.0
        self._buy_value_unit = self.price_to_unit(np.minimum(fleet.shed_values, cfg.retail_tariff))
        self._shed_value = np.ascontiguousarray(np.broadcast_to(fleet.shed_values, fleet.ramp_kw.shape))
        self.last_price = np.full(self.num_envs, 0.5 * (cfg.price_floor + cfg.price_cap))
        self.last_volume = np.zeros(self.num_envs)
        self._posted = np.full(self.num_envs, float(cfg.posted_price))  # $/kWh, posted_price_rule "mid_market"
        self._outcome = self._raw = None
        self._last_ctx = self._last_ctx_parts = None
        self._lo, self._hi, self._viol = feasible_kernel(self.p_prev, fleet.p_max_kw[:, 0], fleet.ramp_kw)
        self.fused = self._fused_params is not None and self.prices is None
        if self.fused:  # _context has no side effects then: build it when read; the kernel's episode arguments
            self._ctx, self._ctx_parts = None, (0, self.p_prev, self._lo, self._hi, self._viol)
            self._fused_static = self._fused_arguments()
        else:
            self._ctx, self._ctx_parts = self._context(self.t, self._lo, self._hi, self._viol), None
        self._on_reset()
        self.obs = self._observe()

    def _fused_arguments(self) -> tuple:
        """``market_step_kernel``'s arguments that stay fixed for an episode: the state block of step 0 (its
        feasible interval), the fleet's ``(E, T, N)`` profiles, the hours, the ``static`` block and ``params``."""
        cfg, f, rules = self.config, self.fleet, self.rules
        k, walrasian, pab = self._fused_params
        shape = f.ramp_kw.shape
        static = np.empty((S_ROWS,) + shape)  # rows S_* (assignment broadcasts and converts to float64)
        for r, x in enumerate((f.eta, f.cost_a, f.cost_b, self._shed_value, f.ramp_kw, self._no_battery,
                               self._mc_slope, self._mc_offset, self._buy_value_unit)):
            static[r] = x
        s = 1.0 / cfg.obs_kw_scale
        params = np.array([cfg.dt_h, rules.price_floor, rules.price_cap, k, walrasian, pab, *step_tariffs(None, rules),
                           rules.unmatched == "curtail" or rules.island_voll == rules.island_voll, rules.island_voll,
                           s, s / (self.n_agents * cfg.dt_h)], dtype=np.float64)  # entries P_*
        assert params.shape == (P_LEN,)
        state = np.zeros((A_ROWS,) + shape)
        state[A_LO], state[A_HI], state[A_VIOLATION] = self._lo, self._hi, self._viol
        as_float = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        return state, as_float(f.demand_kw), as_float(f.p_max_kw), static, params

    # -- the current and the last step's context, and the last outcome (built on demand after a fused step) --
    @property
    def ctx(self) -> StepContext | None:
        """Context of the current step (arrays (E, N)); None before the first reset."""
        if self._ctx is None and self._ctx_parts is not None:
            self._ctx = self._build_context(*self._ctx_parts)
        return self._ctx

    @property
    def last_ctx(self) -> StepContext | None:
        """Context of the step last taken (None before the first step of an episode)."""
        if self._last_ctx is None and self._last_ctx_parts is not None:
            self._last_ctx = self._build_context(*self._last_ctx_parts)
        return self._last_ctx

    @property
    def last_outcome(self) -> StepOutcome | None:
        """Outcome of the step last taken (None before the first step of an episode)."""
        if self._outcome is None and self._raw is not None:
            self._outcome = self._build_outcome()
        return self._outcome

    def _build_context(self, t: int, p_prev, lo, hi, viol) -> StepContext:
        f = self.fleet  # the fused path has no batteries and flat tariffs: exactly what _context builds then
        return StepContext(f.demand_kw[:, t], f.p_max_kw[:, t], p_prev, lo, hi, viol, f.eta, f.cost_a, f.cost_b,
                           self.config.dt_h, self._shed_value)

    def _build_outcome(self) -> StepOutcome:
        agent, market = self._raw
        sides = agent[A_SIDE].astype(np.int8)
        excess = np.stack([agent[A_CLIP_PRICE], agent[A_CLIP_DISPATCH]], axis=-1)  # (E, N, 2)
        clr = Clearing(agent[A_MATCHED], agent[A_UNIT], market[M_CLEARING_PRICE], market[M_VOLUME],
                       market[M_SURPLUS], market[M_WELFARE], sides)
        st = Settlement(*(agent[r] for r in A_SETTLEMENT_ROWS))
        return StepOutcome(agent[A_PRICE], agent[A_DISPATCH], agent[A_ORDER], sides, excess, clr, st, None)

    def _posted_price(self, t: int) -> float | np.ndarray | None:
        """$/kWh a posted-price market posts at step t under ``config.posted_price_rule``: None for "fixed" (the
        mechanism's bound ``price``), the schedule at the step's start hour for "tou", and for "mid_market" the
        midpoint of the last step's best bid and best ask per market, (E,) (``posted_price.mid_market``; the
        one side's best price if the other was empty, the price before if the book was; step 0: ``posted_price``)."""
        cfg = self.config
        if cfg.posted_price_rule == "tou":
            return float(posted_price.tou_price(cfg.start_hour + cfg.dt_h * t, cfg.posted_price_schedule))
        return self._posted.copy() if cfg.posted_price_rule == "mid_market" else None

    def _context(self, t: int, lo, hi, viol) -> StepContext:
        """Context of step t (arrays (E, N)); the feasible interval depends on p_{t-1}."""
        f, dt = self.fleet, self.config.dt_h
        posted = self._posted_price(t)
        retail = feed_in = None
        if self.prices is not None:  # time-varying tariffs: the step's prices, and what buyers pay at most
            retail, feed_in = float(self.prices.retail[t]), float(self.prices.feed_in[t])
            self._buy_value_unit = self.price_to_unit(np.minimum(f.shed_values, retail))
        if self.storage is None:
            return StepContext(f.demand_kw[:, t], f.p_max_kw[:, t], self.p_prev, lo, hi, viol, f.eta, f.cost_a,
                               f.cost_b, dt, self._shed_value, retail_tariff=retail, feed_in_tariff=feed_in,
                               posted_price=posted)
        st = self.storage
        moved = self._last_battery is not None  # at reset the SOC is the initial one
        self.soc, cmax, dmax = storage_kernel(self.soc, self._last_battery if moved else self._no_battery,
                                              st.charge_kw, st.discharge_kw, st.eta_charge, st.eta_discharge,
                                              st.soc_min_kwh, st.soc_max_kwh, dt, moved)
        if self.soc_end is not None:  # keep the start SOC reachable in the steps left after this one
            cmax, dmax, self._narrowing = soc_end_kernel(self.soc, self._soc_target, cmax, dmax, st.charge_kw,
                                                         st.discharge_kw, st.eta_charge, st.eta_discharge, dt,
                                                         self.max_cycles - t - 1)
        return StepContext(f.demand_kw[:, t], f.p_max_kw[:, t], self.p_prev, lo, hi, viol, f.eta, f.cost_a, f.cost_b,
                           dt, self._shed_value, cmax, dmax, self.storage.degradation_cost, retail, feed_in, posted)

    def step(self, actions: np.ndarray, label: Callable[[int, int], str] | None = None) -> StepOutcome:
        """Clear and settle every market for actions ``(E, N, action_dim)``; the step's ``StepOutcome``.
        See ``advance`` for the actions and ``label``."""
        self.advance(actions, label)
        return self.last_outcome

    def advance(self, actions: np.ndarray, label: Callable[[int, int], str] | None = None) -> None:
        """Clear and settle every market for real-valued actions ``(E, N, action_dim)`` (float32 or float64,
        any finite values: components outside [-1, 1] are clipped and reported as clip excess).

        A NaN/inf entry raises ValueError naming ``label(e, i)`` (default ``"env e, agent i"``) and the action
        field, before anything changes. The outcome is read through ``reward``, ``lean_columns``,
        ``market_columns``, or ``last_outcome`` (built on first access after a fused step).
        """
        if np.shape(actions) != self.action_shape:
            raise ValueError(f"actions: expected shape (num_envs, agents, action_dim) = {self.action_shape}, "
                             f"got {np.shape(actions)}")
        if self.fused:
            return self._advance_fused(actions, label)
        actions = np.asarray(actions, dtype=np.float64)
        bad = first_nonfinite(actions)
        if bad >= 0:
            raise ValueError(self._bad_action(actions, bad, label))
        self._raw = None
        ctx, rules, cfg = self.ctx, self.rules, self.config
        zero = self._no_battery
        cmax = zero if ctx.charge_max_kw is None else ctx.charge_max_kw
        dmax = zero if ctx.discharge_max_kw is None else ctx.discharge_max_kw
        orders_in, storage_excess = actions, None
        if self.soc_end is not None:  # the interval may exclude idle: map u2 first, hand over the exact power
            orders_in, cmax, dmax, storage_excess = storage_command_kernel(actions, cmax, dmax)
        price, dispatch, qty, sides, excess, battery = orders_kernel(
            orders_in, ctx.lo_kw, ctx.hi_kw, ctx.eta, ctx.demand_kw, cmax, dmax, ctx.dt_h, rules.price_floor,
            rules.price_cap)
        if storage_excess is not None:
            excess[..., 2] = storage_excess
        clr = clear_book(price, qty, sides, ctx, rules)
        if cfg.posted_price_rule == "mid_market":  # what the next step posts: this book's mid-market
            mid = posted_price.mid_market(price, sides)
            self._posted = np.where(np.isfinite(mid), mid, self._posted)
        st, self.last_price = settle_markets_kernel(
            dispatch, qty, sides, clr.matched, clr.unit_price, battery, ctx.lo_kw, ctx.demand_kw, ctx.eta, ctx.cost_a,
            ctx.cost_b, ctx.shed_value, zero if ctx.degradation_cost is None else ctx.degradation_cost, ctx.dt_h,
            *step_tariffs(ctx, rules),
            rules.unmatched == "curtail" or rules.island_voll == rules.island_voll, rules.island_voll,
            clr.clearing_price,
            self.last_price)
        out = StepOutcome(price, dispatch, qty, sides, excess, clr, Settlement(*st),
                          None if self.storage is None else battery)
        self.last_volume = clr.volume
        self.p_prev = st[0]
        if self.storage is not None:
            self._last_battery = battery  # the SOC moves with it when the next context is built
            self._storage_action = np.clip(actions[..., 2], -1.0, 1.0)
        self._outcome, self._last_ctx, self._last_ctx_parts = out, ctx, None
        self._last_narrowing = self._narrowing
        self.t += 1
        if not self.done:
            f = self.fleet
            self._lo, self._hi, self._viol = feasible_kernel(self.p_prev, f.p_max_kw[:, self.t], f.ramp_kw)
            self._ctx = self._context(self.t, self._lo, self._hi, self._viol)
        elif self.storage is not None:  # the episode's last step: only the SOC moves
            st = self.storage
            self.soc = storage_kernel(self.soc, battery, st.charge_kw, st.discharge_kw, st.eta_charge,
                                      st.eta_discharge, st.soc_min_kwh, st.soc_max_kwh, cfg.dt_h, True)[0]
        self._on_step(out)
        self.obs = self._observe()

    def _advance_fused(self, actions: np.ndarray, label) -> None:
        """``advance`` in one compiled call (``core_kernels.market_step_kernel``); the same numbers as the
        general path. The context and outcome objects are built only when read."""
        if actions.dtype != np.float32 and actions.dtype != np.float64:
            actions = np.asarray(actions, dtype=np.float64)
        t = self.t
        state, demand, p_max, static, params = self._fused_static
        bad, agent, market, obs = market_step_kernel(actions, t, state, self.last_price, demand, p_max, self._sincos,
                                                     static, params)
        if bad >= 0:
            raise ValueError(self._bad_action(actions, bad, label))
        self._raw = (agent, market)
        self._outcome = None
        self._last_ctx, self._last_ctx_parts = self._ctx, self._ctx_parts  # (parts: when it was never built)
        self.p_prev = p_prev = agent[A_REALISED]
        self.last_price = market[M_LAST_PRICE]
        self.last_volume = market[M_VOLUME]
        self.t = t = t + 1
        if t < self.max_cycles:  # the next step's context, built when read
            self._fused_static = (agent, demand, p_max, static, params)
            self._lo, self._hi, self._viol = lo, hi, viol = agent[A_LO], agent[A_HI], agent[A_VIOLATION]
            self._ctx, self._ctx_parts = None, (t, p_prev, lo, hi, viol)
        self.obs = obs

    def _bad_action(self, actions: np.ndarray, flat: int, label) -> str:
        e, rest = divmod(flat, actions.shape[1] * actions.shape[2])
        i, j = divmod(rest, actions.shape[2])
        who = label(e, i) if label is not None else f"env {e}, agent {i}"
        return f"{who}: action[{j}] ({ACTION_FIELDS[j]}) is {actions[e, i, j]}"

    # -- the last step's results as arrays (fused or not) -----------------------------------------------
    @property
    def reward(self) -> np.ndarray:
        """``(E, N)`` $ rewards of the step last taken."""
        return self._raw[0][A_REWARD] if self._raw is not None else self._outcome.settlement.reward

    def lean_columns(self) -> dict[str, np.ndarray]:
        """The lean per-agent info arrays ``(E, N)`` of the step last taken, by ``LEAN_INFO_NAMES``."""
        if self._raw is not None:
            a = self._raw[0]
            return {"matched_kwh": a[A_MATCHED], "market_cash": a[A_CASH], "cost": a[A_COST]}
        c, st = self._outcome.clearing, self._outcome.settlement
        return {"matched_kwh": c.matched, "market_cash": st.market_cash, "cost": st.cost}

    def fused_info_rows(self) -> np.ndarray | None:
        """After a fused step: its ``INFO_FIELDS`` columns as one ``(len(INFO_FIELDS), E, N)`` float64 block
        (the same numbers as ``info_columns``); None after a general step."""
        return None if self._raw is None else self._raw[0][:A_INFO]

    def last_market_columns(self) -> dict[str, np.ndarray]:
        """``market_columns`` of the step last taken (``(E,)`` arrays), without building its outcome."""
        if self._raw is not None and type(self).market_columns is AuctionCore.market_columns:
            return dict(zip(MARKET_NAMES, self._raw[1]))  # rows M_* are in MARKET_NAMES order
        return self.market_columns(self.last_outcome)

    def last_market_values(self, e: int = 0) -> dict[str, float]:
        """``last_market_columns`` of market e as Python floats (the single env's ``infos[a]["market"]``)."""
        if self._raw is not None and type(self).market_columns is AuctionCore.market_columns:
            return dict(zip(MARKET_NAMES, self._raw[1][:4, e].tolist()))
        return {k: v[e].item() for k, v in self.market_columns(self.last_outcome).items()}

    # -- extension points for cores that add state (the DLMP core adds the network) ---------------
    def _on_reset(self) -> None:
        """Called at the end of ``reset``, before the first observation is built."""

    def _on_step(self, out: StepOutcome) -> None:
        """Called at the end of ``step`` (state already advanced), before the observation is built."""

    # -- observations and infos ------------------------------------------------------------------
    def price_to_unit(self, p):
        """$/kWh -> [-1, 1] over [price_floor, price_cap]."""
        return 2.0 * (p - self.config.price_floor) / self._price_span - 1.0

    def _observe(self) -> np.ndarray:
        obs = self._observe_market()
        if self.storage is None:
            return obs
        ctx = self.ctx  # STORAGE_OBS_FIELDS: SOC as a fraction of capacity, the battery interval
        return storage_obs_kernel(obs, self.soc, self.storage.capacity_kwh, ctx.charge_max_kw, ctx.discharge_max_kw,
                                  1.0 / self.config.obs_kw_scale)

    def _observe_market(self) -> np.ndarray:
        cfg, ctx = self.config, self.ctx
        s = 1.0 / cfg.obs_kw_scale
        ang = 2.0 * np.pi * ((cfg.start_hour + cfg.dt_h * self.t) % 24.0) / 24.0
        return observe_kernel(ctx.demand_kw, ctx.p_max_kw, self.p_prev, ctx.lo_kw, ctx.hi_kw, math.sin(ang), math.cos(ang),
                              self.last_price, self.last_volume, self._mc_slope, self._mc_offset, self._buy_value_unit,
                              s, cfg.price_floor, self._price_span, s / (self.n_agents * cfg.dt_h))

    def observe(self) -> np.ndarray:
        """``(E, N, len(OBS_FIELDS))`` float32 of the current step (see ``fields.OBS_FIELDS``)."""
        return self.obs

    def state(self) -> np.ndarray:
        """``(E, N * F + 1)`` float32: every agent's observation and the episode progress t / T."""
        obs = self.obs.reshape(self.num_envs, -1)
        progress = np.full((self.num_envs, 1), min(self.t / self.max_cycles, 1.0), dtype=np.float32)
        return np.concatenate([obs, progress], axis=1)

    @property
    def observe_dim(self) -> int:
        """Observation length F of one agent."""
        return len(self.observation_names)

    @property
    def observation_names(self) -> tuple[str, ...]:
        """The name of each of the F observation columns (``fields.OBS_FIELDS``, then the storage fields)."""
        return tuple(OBS_NAMES) + (tuple(STORAGE_OBS_NAMES) if self.has_storage else ())

    @property
    def state_dim(self) -> int:
        return self.n_agents * self.observe_dim + 1

    def info_columns(self, out: StepOutcome, ctx: StepContext) -> dict[str, np.ndarray]:
        """Per-agent info arrays ``(E, N)`` of a step, by ``INFO_FIELDS`` name."""
        st, c = out.settlement, out.clearing
        return {
            "bid_price": out.bid_price,
            "dispatch_kw": st.dispatch_kw,
            "net_kwh": st.net_kwh,
            "side": out.sides.astype(np.float64),  # info fields are floats
            "order_kwh": out.order_kwh,
            "matched_kwh": c.matched,
            "unit_price": c.unit_price,
            "market_cash": st.market_cash,
            "backstop_import_kwh": st.backstop_import_kwh,
            "backstop_export_kwh": st.backstop_export_kwh,
            "curtailed_kwh": st.curtailed_kwh,
            "shed_kwh": st.shed_kwh,
            "cost": st.cost,
            "feasible_lo_kw": ctx.lo_kw,
            "feasible_hi_kw": ctx.hi_kw,
            "ramp_violation_kw": ctx.ramp_violation_kw,
            "clip_price": out.clip_excess[..., 0],
            "clip_dispatch": out.clip_excess[..., 1],
            **(self._storage_columns(out, ctx) if self.storage is not None else {}),
        }

    def _storage_columns(self, out: StepOutcome, ctx: StepContext) -> dict[str, np.ndarray]:
        st, b = self.storage, out.battery_kw
        return {
            "soc_kwh": self.soc,
            "soc_min_kwh": st.soc_min_kwh,
            "soc_max_kwh": st.soc_max_kwh,
            "charge_kw": np.maximum(b, 0.0),
            "discharge_kw": np.maximum(-b, 0.0),
            "clip_storage": out.clip_excess[..., 2],
            # an agent without a battery has a storage component too (one action shape for the batch)
            "storage_ignored": np.where(st.capacity_kwh > 0, 0.0, np.abs(self._storage_action)),
            # the step's battery interval [-discharge_max, charge_max] and what soc_end cut from it
            "battery_lo_kw": -ctx.discharge_max_kw,
            "battery_hi_kw": ctx.charge_max_kw,
            "soc_end_narrowing_kw": self._last_narrowing,
        }

    @staticmethod
    def market_columns(out: StepOutcome) -> dict[str, np.ndarray]:
        """Per-market info arrays ``(E,)`` of a step."""
        c = out.clearing
        return {"clearing_price": c.clearing_price, "volume_kwh": c.volume, "welfare": c.welfare,
                "operator_surplus": c.operator_surplus}
