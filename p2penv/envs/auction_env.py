"""Parallel PettingZoo environment behind ``p2penv.auction_v0`` (see the class docstring)."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..market.mechanisms import get_mechanism
from ..market.pipeline import MarketRules, StepContext, StepOutcome, run_step, validate_actions
from .config import MarketConfig
from .viewer import ansi_table, step_curves_rgb

OBS_FIELDS = (
    "demand",  # own demand d_t / obs_kw_scale
    "availability",  # own P_max,t / obs_kw_scale
    "prev_dispatch",  # p_{t-1} / obs_kw_scale
    "feasible_lo",  # lower end of this step's dispatch interval / obs_kw_scale
    "feasible_hi",  # upper end / obs_kw_scale
    "hour_sin",  # sin(2 pi hour / 24)
    "hour_cos",  # cos(2 pi hour / 24)
    "last_price",  # last clearing price mapped [floor, cap] -> [-1, 1]
    "last_volume",  # last traded kWh / (n * obs_kw_scale * dt_h)
    "mc_lo",  # marginal cost ($/kWh at the grid) at feasible_lo, mapped like prices
    "mc_hi",  # marginal cost at feasible_hi, mapped like prices
    "buy_value",  # most the agent pays for market energy: retail, or a flexible load's lost value
)

INFO_FIELDS = (
    "bid_price",  # $/kWh, limit price of the order
    "dispatch_kw",  # realised DER dispatch
    "net_kwh",  # realised net position (> 0 sold)
    "side",  # +1 sell, -1 buy, 0 no order
    "order_kwh",
    "matched_kwh",
    "unit_price",  # $/kWh paid/received on matched volume
    "market_cash",  # $ from matched trades (> 0 received)
    "backstop_import_kwh",  # bought at the retail tariff
    "backstop_export_kwh",  # sold at the feed-in tariff
    "curtailed_kwh",  # unmatched export removed by curtailment (unmatched="curtail")
    "shed_kwh",  # unmatched demand of a flexible load, shed at its value of lost load
    "cost",  # $ DER cost C(E)
    "feasible_lo_kw",
    "feasible_hi_kw",
    "ramp_violation_kw",  # > 0 only when availability fell below the ramp floor
    "clip_price",  # how far action[0] lay outside [-1, 1] (it was clipped)
    "clip_dispatch",  # how far action[1] lay outside [-1, 1]
)


class AuctionEnv(ParallelEnv):
    """P2P energy market with a double auction each step: ``p2penv.auction_v0``.

    **Agents** ``prosumer_0 .. prosumer_{N-1}``: households with demand and a DER (PV, a
    dispatchable unit, or none), made by a seeded generator (``MarketConfig.generator``).

    **Action** ``Box(-1, 1, (2,), float32)``: ``(price, dispatch)``. ``price`` maps affinely to
    [price_floor, price_cap] $/kWh; ``dispatch`` maps to the feasible DER interval
    ``[max(0, p_{t-1} - R), min(P_max,t, p_{t-1} + R)]`` kW, so ramp and capacity hold by
    construction. The net position ``q = eta p - d`` becomes one order: sell ``q dt`` kWh at ask
    ``price`` if q > 0, buy ``-q dt`` kWh at bid ``price`` if q < 0. Values outside [-1, 1] are
    clipped (reported in ``infos``); NaN/inf raise ValueError naming agent and field.

    **Clearing** ``MarketConfig.mechanism``: ``uniform`` k-double auction (default, k = 0.5,
    marginal-pair interval) or ``pay_as_bid`` (and any registered mechanism).

    **Settlement and reward** ($ per step): matched kWh x unit price, unmatched sells at the
    feed-in tariff, unmatched buys at the retail tariff (or curtailment first with
    ``unmatched="curtail"``; flexible loads shed unmatched demand at their value of lost load),
    minus the DER cost ``C(E) = a E^2 + b E``, ``E = p dt`` kWh.

    **Observation** ``Box(-1, 1, (12,), float32)``, fields in ``OBS_FIELDS``: own demand,
    availability, previous dispatch, feasible interval (kW / obs_kw_scale), hour of day (sin, cos),
    last clearing price and volume, own marginal cost at both ends of the interval, own buy value
    (retail, or a flexible load's value of lost load). Prices map [floor, cap] -> [-1, 1].
    ``state()``: all observations stacked plus the episode progress t / T.

    **Episode**: ``max_cycles`` steps (default 24 of 1 h); no termination, truncation at the end.
    **Infos** per agent: ``INFO_FIELDS`` (floats) plus ``"market"``: clearing price, volume,
    declared welfare, operator surplus, step. With ``nash_gap_in_infos=True`` also each agent's
    stage-game ``nash_gain`` ($) and ``market["nash_conv"]`` (``p2penv.diagnostics.nash``).

    **Render**: ``ansi`` (table), ``rgb_array`` (supply/demand curves), ``human`` (prints ansi).

    **Version history**: v0 (0.1.0) first release.
    """

    metadata = {"name": "auction_v0", "render_modes": ["human", "ansi", "rgb_array"], "is_parallelizable": True}

    def __init__(self, config: MarketConfig | None = None, render_mode: str | None = None, **kwargs: Any):
        if config is not None and kwargs:
            raise ValueError("give either a MarketConfig or keyword options, not both")
        self.config = cfg = config if config is not None else MarketConfig.from_kwargs(**kwargs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        n = cfg.n_prosumers
        self.possible_agents = [f"prosumer_{i}" for i in range(n)]
        self.agents: list[str] = []
        self.max_cycles = cfg.max_cycles
        self._obs_spaces = {a: spaces.Box(-1.0, 1.0, (len(OBS_FIELDS),), np.float32) for a in self.possible_agents}
        self._act_spaces = {a: spaces.Box(-1.0, 1.0, (2,), np.float32) for a in self.possible_agents}
        self.state_space = spaces.Box(-1.0, 1.0, (n * len(OBS_FIELDS) + 1,), np.float32)
        self.rules = self._make_rules(cfg)
        self._rng = np.random.default_rng(cfg.seed)
        self._price_span = cfg.price_cap - cfg.price_floor
        self.fleet = None
        self.last_outcome: StepOutcome | None = None

    # -- PettingZoo API ---------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        cfg = self.config
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.fleet = cfg.generator(cfg.n_prosumers, self.max_cycles, cfg.dt_h, cfg.start_hour, self._rng)
        if self.fleet.n != cfg.n_prosumers or self.fleet.horizon != self.max_cycles:
            raise ValueError("generator: returned a fleet whose size or horizon does not match the config")
        self.t = 0
        self.p_prev = self.fleet.p0_kw.copy()
        f, span = self.fleet, self._price_span
        self._mc_slope = 2.0 * (2.0 * f.cost_a * cfg.dt_h / f.eta) / span
        self._mc_offset = 2.0 * (f.cost_b / f.eta - cfg.price_floor) / span - 1.0
        self._buy_value_unit = self._price_to_unit(np.minimum(f.shed_values, cfg.retail_tariff))
        self.last_price = 0.5 * (cfg.price_floor + cfg.price_cap)
        self.last_volume = 0.0
        self.last_outcome = None
        self.agents = self.possible_agents[:]
        self._begin_step()
        obs = self._observe()
        return {a: obs[i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        arr = validate_actions(actions, self.agents)
        gap = self._nash_gap(arr) if self.config.nash_gap_in_infos else None
        out = run_step(arr, self.ctx, self.rules)
        self.last_outcome = out
        st = out.settlement
        clr = out.clearing
        cp = float(clr.clearing_price)
        if np.isfinite(cp):
            self.last_price = cp
        self.last_volume = float(clr.volume)
        self.p_prev = st.dispatch_kw
        infos = self._infos(out)
        if gap is not None:
            infos[self.agents[0]]["market"]["nash_conv"] = gap.nash_conv
            for a, g in zip(self.agents, gap.gains.tolist()):
                infos[a]["nash_gain"] = g
        self.t += 1
        done = self.t >= self.max_cycles
        if not done:
            self._begin_step()
        obs = self._observe()
        agents = self.agents
        rew = st.reward.tolist()
        observations = {a: obs[i] for i, a in enumerate(agents)}
        rewards = dict(zip(agents, rew))
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        obs = self._observe()
        return np.concatenate([obs.ravel(), [min(self.t / self.max_cycles, 1.0)]]).astype(np.float32)

    def render(self):
        if self.render_mode is None:
            return None
        out = self.last_outcome
        if out is None:
            n = self.config.n_prosumers
            z = np.zeros(n)
            args = (z, z.astype(np.int8), z, z, z, z, np.nan, 0.0)
        else:
            c = out.clearing
            args = (out.bid_price, out.sides, out.order_kwh, c.matched, c.unit_price, out.settlement.reward,
                    float(c.clearing_price), float(c.volume))
        if self.render_mode == "rgb_array":
            p, s, q = args[0], args[1], args[2]
            return step_curves_rgb(p, q, s, args[6], args[7], title=f"{self.metadata['name']} step {self.t}")
        text = ansi_table(self.t, self.possible_agents, args[1], args[0], args[2], args[3], args[4], args[5],
                          args[6], args[7])
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _make_rules(cfg: MarketConfig) -> MarketRules:
        clear = functools.partial(get_mechanism(cfg.mechanism), k=cfg.k, rule=cfg.rule)
        return MarketRules(cfg.price_floor, cfg.price_cap, cfg.retail_tariff, cfg.feed_in_tariff, cfg.unmatched, clear)

    def _nash_gap(self, joint: np.ndarray):
        from ..diagnostics.nash import stage_nash_gap  # lazy: diagnostics are read-only extras

        return stage_nash_gap(joint, self.ctx, self.rules)

    def _begin_step(self) -> None:
        """Build the context of step t: profiles, feasible interval (depends on p_{t-1})."""
        f, t = self.fleet, self.t
        self.ctx = StepContext.build(
            f.demand_kw[t], f.p_max_kw[t], self.p_prev, f.ramp_kw, f.eta, f.cost_a, f.cost_b, self.config.dt_h,
            f.shed_value,
        )

    def _observe(self) -> np.ndarray:
        cfg, ctx = self.config, self.ctx
        s = 1.0 / cfg.obs_kw_scale
        ang = 2.0 * np.pi * ((cfg.start_hour + cfg.dt_h * self.t) % 24.0) / 24.0
        n = self.fleet.n
        obs = np.empty((n, len(OBS_FIELDS)), dtype=np.float64)
        obs[:, :5] = np.column_stack((ctx.demand_kw, ctx.p_max_kw, self.p_prev, ctx.lo_kw, ctx.hi_kw))
        obs[:, :5] *= s
        obs[:, 5] = np.sin(ang)
        obs[:, 6] = np.cos(ang)
        obs[:, 7] = self._price_to_unit(self.last_price)
        obs[:, 8] = self.last_volume * s / (n * cfg.dt_h)
        # marginal cost (2 a E + b) / eta at both interval ends, already mapped like prices
        obs[:, 9] = self._mc_slope * ctx.lo_kw + self._mc_offset
        obs[:, 10] = self._mc_slope * ctx.hi_kw + self._mc_offset
        obs[:, 11] = self._buy_value_unit
        np.clip(obs, -1.0, 1.0, out=obs)
        return obs.astype(np.float32)

    def _price_to_unit(self, p):
        return 2.0 * (p - self.config.price_floor) / self._price_span - 1.0

    def _info_columns(self, out: StepOutcome) -> list[np.ndarray]:
        """(N,) arrays in ``INFO_FIELDS`` order; subclasses append their own fields."""
        st, c = out.settlement, out.clearing
        return [
            out.bid_price, st.dispatch_kw, st.net_kwh, out.sides, out.order_kwh, c.matched, c.unit_price,
            st.market_cash, st.backstop_import_kwh, st.backstop_export_kwh, st.curtailed_kwh, st.shed_kwh, st.cost,
            self.ctx.lo_kw, self.ctx.hi_kw, self.ctx.ramp_violation_kw, out.clip_excess[:, 0], out.clip_excess[:, 1],
        ]

    def _infos(self, out: StepOutcome) -> dict:
        c = out.clearing
        cols = np.stack(self._info_columns(out), axis=1).tolist()
        market = {
            "t": self.t,
            "clearing_price": float(c.clearing_price),
            "volume_kwh": float(c.volume),
            "welfare": float(c.welfare),
            "operator_surplus": float(c.operator_surplus),
        }
        infos = {}
        for a, row in zip(self.agents, cols):
            d = dict(zip(INFO_FIELDS, row))
            d["market"] = market
            infos[a] = d
        return infos
