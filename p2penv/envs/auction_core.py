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

from ..market.mechanisms import get_mechanism
from ..market.mechanisms.types import Clearing
from ..market.pipeline import MarketRules, StepContext, StepOutcome, orders_kernel
from ..market.prosumer import Fleet
from ..market.settlement import Settlement
from .config import SEED_RULE, MarketConfig, is_seed
from ..market.storage import SOC_END_MODES, STORAGE_FIELDS, Storage
from .core_kernels import (feasible_kernel, observe_kernel, settle_markets_kernel, soc_end_kernel,
                           storage_command_kernel, storage_kernel, storage_obs_kernel)
from .fields import INFO_FIELDS, OBS_FIELDS, STORAGE_INFO_FIELDS, STORAGE_OBS_FIELDS, names

OBS_NAMES = names(OBS_FIELDS)
INFO_NAMES = names(INFO_FIELDS)
STORAGE_OBS_NAMES = names(STORAGE_OBS_FIELDS)
STORAGE_INFO_NAMES = names(STORAGE_INFO_FIELDS)
MARKET_NAMES = ("clearing_price", "volume_kwh", "welfare", "operator_surplus")


def make_rules(cfg: MarketConfig, clear: Callable[..., Clearing] | None = None) -> MarketRules:
    """Market rules of a config; the mechanism gets only the parameters its ``clear`` declares.

    ``clear``: a clearing function ``(prices, quantities, sides) -> Clearing`` to use instead of the
    config's mechanism (the DLMP environment injects its network clearing this way).
    """
    if clear is None:
        fn = get_mechanism(cfg.mechanism)
        declared = inspect.signature(fn).parameters
        params = {k: v for k, v in (("k", cfg.k), ("rule", cfg.rule)) if k in declared}
        clear = functools.partial(fn, **params)  # a partial of a module function pickles; a closure would not

    return MarketRules(cfg.price_floor, cfg.price_cap, cfg.retail_tariff, cfg.feed_in_tariff, cfg.unmatched, clear)


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
        # Batteries add a third action component (storage) for every agent; see market.storage.
        self.has_storage = bool(getattr(config.generator, "has_storage", False))
        self.action_dim = 3 if self.has_storage else 2
        self.soc_end = getattr(config.generator, "soc_end", None)  # None (free) or "start"; market.storage
        if self.soc_end not in SOC_END_MODES:
            raise ValueError(f"generator: soc_end must be one of {SOC_END_MODES}, got {self.soc_end!r}")
        if self.soc_end is not None and not self.has_storage:
            raise ValueError(f"generator: soc_end={self.soc_end!r} needs batteries (has_storage is False)")
        self._price_span = config.price_cap - config.price_floor
        self.seed(config.seed)
        self.fleet: Fleet | None = None
        self.t = 0
        self.last_outcome: StepOutcome | None = None

    # -- episode ---------------------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        """Market e draws from ``default_rng(seed + e)`` (fresh entropy when seed is None)."""
        if not is_seed(seed):
            raise ValueError(f"seed: {SEED_RULE}, got {seed!r}")
        self._rngs = [np.random.default_rng(None if seed is None else seed + e) for e in range(self.num_envs)]

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
        if hasattr(gen, "batch"):
            fleet = gen.batch(n, horizon, cfg.dt_h, cfg.start_hour, self._rngs)
        else:  # any callable (n, horizon, dt_h, start_hour, rng) -> Fleet works, one market at a time
            fleet = Fleet.stack([gen(n, horizon, cfg.dt_h, cfg.start_hour, r) for r in self._rngs])
        if fleet.n != n or fleet.horizon != horizon or fleet.num_envs != self.num_envs:
            raise ValueError("generator: returned a fleet whose size or horizon does not match the config")
        fleet.validate()  # a generator is any callable: its fleet is checked here, naming agent and field
        if (fleet.storage is not None) != self.has_storage:
            raise ValueError(f"generator: has_storage={self.has_storage} but the fleet it returned "
                             f"{'has' if fleet.storage is not None else 'has no'} storage parameters")
        self.prices = gen.prices(horizon, cfg.dt_h, cfg.start_hour) if hasattr(gen, "prices") else None
        if self.prices is not None:
            self.prices.validate(horizon)
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
        self.last_outcome = None
        self.last_ctx = None
        self.ctx = self._context(self.t, *feasible_kernel(self.p_prev, fleet.p_max_kw[:, 0], fleet.ramp_kw))
        self._on_reset()
        self.obs = self._observe()

    def _context(self, t: int, lo, hi, viol) -> StepContext:
        """Context of step t (arrays (E, N)); the feasible interval depends on p_{t-1}."""
        f, dt = self.fleet, self.config.dt_h
        retail = feed_in = None
        if self.prices is not None:  # time-varying tariffs: the step's prices, and what buyers pay at most
            retail, feed_in = float(self.prices.retail[t]), float(self.prices.feed_in[t])
            self._buy_value_unit = self.price_to_unit(np.minimum(f.shed_values, retail))
        if self.storage is None:
            return StepContext(f.demand_kw[:, t], f.p_max_kw[:, t], self.p_prev, lo, hi, viol, f.eta, f.cost_a,
                               f.cost_b, dt, self._shed_value, retail_tariff=retail, feed_in_tariff=feed_in)
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
                           dt, self._shed_value, cmax, dmax, self.storage.degradation_cost, retail, feed_in)

    def step(self, actions: np.ndarray) -> StepOutcome:
        """Clear and settle every market for validated float64 actions ``(E, N, action_dim)``."""
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
        clr = rules.clear(price, qty, sides)
        st, self.last_price = settle_markets_kernel(
            dispatch, qty, sides, clr.matched, clr.unit_price, battery, ctx.lo_kw, ctx.demand_kw, ctx.eta, ctx.cost_a,
            ctx.cost_b, ctx.shed_value, zero if ctx.degradation_cost is None else ctx.degradation_cost, ctx.dt_h,
            rules.retail_tariff if ctx.retail_tariff is None else ctx.retail_tariff,
            rules.feed_in_tariff if ctx.feed_in_tariff is None else ctx.feed_in_tariff,
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
        self.last_outcome, self.last_ctx = out, ctx
        self._last_narrowing = self._narrowing
        self.t += 1
        if not self.done:
            f = self.fleet
            self.ctx = self._context(self.t, *feasible_kernel(self.p_prev, f.p_max_kw[:, self.t], f.ramp_kw))
        elif self.storage is not None:  # the episode's last step: only the SOC moves
            st = self.storage
            self.soc = storage_kernel(self.soc, battery, st.charge_kw, st.discharge_kw, st.eta_charge,
                                      st.eta_discharge, st.soc_min_kwh, st.soc_max_kwh, cfg.dt_h, True)[0]
        self._on_step(out)
        self.obs = self._observe()
        return out

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
        return len(OBS_NAMES) + (len(STORAGE_OBS_NAMES) if self.has_storage else 0)

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
