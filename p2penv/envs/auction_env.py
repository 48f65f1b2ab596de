"""Parallel PettingZoo environment behind ``p2penv.auction_v0`` (see the class docstring)."""
from __future__ import annotations

import operator
import warnings
from typing import Any, Callable

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..market.pipeline import StepContext, StepOutcome, validate_actions
from ..market.prosumer import Fleet
from .auction_core import INFO_NAMES, AuctionCore
from .config import MarketConfig
from .fields import INFO_LEVELS, OBS_FIELDS, field_table
from .viewer import StepView, ansi_table, step_curves_rgb

RESET_OPTIONS: tuple[str, ...] = ()  # reset(options=...) keys the environments accept (none yet)
_FAST_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})  # actions stacked without a second look
_DTYPE = operator.attrgetter("dtype")


def check_info_level(info_level: str) -> str:
    """ValueError unless ``info_level`` is one of ``fields.INFO_LEVELS`` ("full", "lean")."""
    if not isinstance(info_level, str) or info_level not in INFO_LEVELS:
        raise ValueError(f"info_level: expected one of {list(INFO_LEVELS)}, got {info_level!r}")
    return info_level


def check_reset_options(options: dict | None) -> None:
    """Warn (UserWarning) about ``reset(options=...)`` keys the environments do not use.

    Not an error: PettingZoo's conformance test resets with an arbitrary option
    (``{"options": 1}``) and expects it to be accepted. Scenario settings such as ``start_hour``
    belong to the config; the warning says so instead of ignoring them silently.
    """
    if options:
        if not isinstance(options, dict):
            raise ValueError(f"reset(options=...): expected a dict, got {type(options).__name__}")
        bad = sorted(set(options) - set(RESET_OPTIONS))
        if bad:
            warnings.warn(f"reset(options=...): ignoring unsupported option(s) {bad}; supported: "
                          f"{list(RESET_OPTIONS) or 'none'} (scenario settings such as start_hour belong to the "
                          "config: parallel_env(start_hour=8))", UserWarning, stacklevel=3)


def prefer_lean_infos(env):
    """``env`` switched to ``info_level="lean"`` if it is an auction_v0 env (single or vector, wrapped or not);
    any other env is returned unchanged. For trainers that build their envs from a caller's factory and pass on
    only the market dict (``docs/fields.md``); the trajectory is the same, and ``env.full_infos()`` still gives
    every field of the last step."""
    base = getattr(env, "unwrapped", env)
    if getattr(base, "metadata", {}).get("name") == "auction_v0" and getattr(base, "info_level", None) in INFO_LEVELS:
        base.info_level = "lean"
    return env


class AuctionEnv(ParallelEnv):
    """P2P energy market with a double auction each step: ``p2penv.auction_v0``.

    **Agents** ``prosumer_0 .. prosumer_{N-1}``: households with demand and a DER (PV, a
    dispatchable unit, or none), made by a seeded generator (``MarketConfig.generator``).

    **Action** ``Box(-1, 1, (2,), float32)``: ``(price, dispatch)``. ``price`` maps affinely to
    [price_floor, price_cap] $/kWh; ``dispatch`` maps to the feasible DER interval
    ``[max(0, p_{t-1} - R), min(P_max,t, p_{t-1} + R)]`` kW, so ramp and capacity hold by
    construction. The net position ``q = eta p - d`` becomes one order: sell ``q dt`` kWh at ask
    ``price`` if q > 0, buy ``-q dt`` kWh at bid ``price`` if q < 0. Values outside [-1, 1] are
    clipped (reported in ``infos``); NaN/inf raise ValueError naming agent and field. When the
    scenario has batteries (``generator.has_storage``) the action is ``(price, dispatch, storage)``
    (``p2penv.market.storage``) and the net position ``eta p - d - b``.

    **Clearing** ``MarketConfig.mechanism``: ``uniform`` k-double auction (default, k = 0.5,
    marginal-pair interval) or ``pay_as_bid`` (and any registered mechanism).

    **Settlement and reward** ($ per step): matched kWh x unit price, unmatched sells at the
    feed-in tariff, unmatched buys at the retail tariff (or curtailment first with
    ``unmatched="curtail"``; flexible loads shed unmatched demand at their value of lost load),
    minus the DER cost ``C(E) = a E^2 + b E``, ``E = p dt`` kWh.

    **Observation** ``Box(-1, 1, (12,), float32)`` (15 with batteries), fields in ``fields.OBS_FIELDS``
    (+ ``STORAGE_OBS_FIELDS``): own demand,
    availability, previous dispatch, feasible interval (kW / obs_kw_scale), hour of day (sin, cos),
    last clearing price and volume, own marginal cost at both ends of the interval, own buy value
    (retail, or a flexible load's value of lost load). Prices map [floor, cap] -> [-1, 1].
    ``state()``: all observations stacked plus the episode progress t / T.

    **Episode**: ``max_cycles`` steps (default 24 of 1 h); no termination, truncation at the end.
    **Infos** per agent, by ``info_level`` (a construction option, not part of the scenario):
    ``"full"`` (default): ``fields.INFO_FIELDS`` (+ ``STORAGE_INFO_FIELDS``; floats) plus ``"market"``:
    clearing price, volume, declared welfare, operator surplus, step (``fields.MARKET_INFO_FIELDS``, one dict
    shared by all agents). ``"lean"`` (what the trainers use): ``fields.LEAN_INFO_NAMES`` (own matched kWh,
    own market cash $ (> 0 revenue), own DER cost $) plus the same ``"market"``; ``full_infos()`` returns the
    full fields of the step last taken on demand. Same trajectory either way. The stage-game Nash gain per step
    is a wrapper: ``p2penv.diagnostics.nash_infos.NashConvInfos(env)``.

    **Render**: ``ansi`` (table), ``rgb_array`` (supply/demand curves), ``human`` (prints ansi).

    **Batched**: this env is ``AuctionCore`` with E = 1; ``auction_v0.vector_env(E)`` steps E markets
    as arrays with the same results (market e = this env seeded ``seed + e``).

    **Version history**: v0 (0.1.0) first release; batched core, batteries, time-varying tariffs
    (0.2.0 work; default scenarios unchanged, their first steps pinned in ``tests/test_registry.py``).
    """

    metadata = {"name": "auction_v0", "render_modes": ["human", "ansi", "rgb_array"], "is_parallelizable": True}
    # full infos may come straight from the fused step's info block; a subclass that adds to ``_infos`` sets False
    infos_from_fused_step: bool = True

    def __init__(self, config: MarketConfig | None = None, render_mode: str | None = None, *,
                 info_level: str = "full", clear: Callable | None = None, **kwargs: Any):
        if config is not None and kwargs:
            raise ValueError("give either a MarketConfig or keyword options, not both")
        check_info_level(info_level)
        cfg = config if config is not None else MarketConfig.from_kwargs(**kwargs)
        self._setup(AuctionCore(cfg, 1, clear), render_mode, info_level)

    def _setup(self, core: AuctionCore, render_mode: str | None, info_level: str = "full") -> None:
        """Spaces and agents of a core with E = 1 (shared with the DLMP env)."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.config = cfg = core.config
        self.render_mode = render_mode
        self.info_level = check_info_level(info_level)
        self.core = core
        n = cfg.n_prosumers
        self.possible_agents = [f"prosumer_{i}" for i in range(n)]
        self.agents: list[str] = []
        self.max_cycles = cfg.max_cycles
        obs_dim = core.observe_dim
        self._obs_spaces = {a: spaces.Box(-1.0, 1.0, (obs_dim,), np.float32) for a in self.possible_agents}
        self._act_spaces = {a: spaces.Box(-1.0, 1.0, (core.action_dim,), np.float32) for a in self.possible_agents}
        self.state_space = spaces.Box(-1.0, 1.0, (core.state_dim,), np.float32)
        self._take = operator.itemgetter(*self.possible_agents)  # the actions, in agent order, in one C call
        self._action_shape = (n, core.action_dim)

    # -- PettingZoo API ---------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        check_reset_options(options)
        self.core.reset(seed)
        self.agents = self.possible_agents[:]
        obs = self._observe()
        return {a: obs[i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict):
        agents = self.agents
        if not agents:
            self._require_reset("step()")
            raise RuntimeError("step() called on a finished episode; call reset() to start a new one")
        core = self.core
        core.advance(self._stack_actions(actions)[None], self._label)  # NaN/inf: ValueError naming agent, field
        infos = self._lean_infos() if self.info_level == "lean" else self._step_infos()
        done = core.done
        observations = dict(zip(agents, self._observe()))  # row views, as obs[i]
        rewards = dict(zip(agents, core.reward[0].tolist()))
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        self._require_reset("state()")
        return self._state()

    def render(self):
        if self.render_mode is None:
            return None
        self._require_reset("render()")
        view = self._step_view()
        if self.render_mode == "rgb_array":
            return step_curves_rgb(view.bid_price, view.order_kwh, view.sides, view.clearing_price, view.volume,
                                   title=f"{self.metadata['name']} step {self.t}")
        text = ansi_table(self.t, self.possible_agents, view)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass

    # -- views of market 0 of the core (read-only conveniences for diagnostics and agents) ------
    @property
    def t(self) -> int:
        return self.core.t

    @property
    def rules(self):
        return self.core.rules

    @property
    def ctx(self) -> StepContext:
        """Context of the current step, arrays (N,)."""
        self._require_reset("ctx")
        return self.core.ctx.market(0)

    @property
    def fleet(self) -> Fleet | None:
        return None if self.core.fleet is None else self.core.fleet.env(0)

    @property
    def p_prev(self) -> np.ndarray:
        return self.core.p_prev[0]

    @property
    def last_price(self) -> float:
        return float(self.core.last_price[0])

    @property
    def last_volume(self) -> float:
        return float(self.core.last_volume[0])

    @property
    def last_outcome(self) -> StepOutcome | None:
        out = self.core.last_outcome
        return None if out is None else out.market(0)

    # -- internals ----------------------------------------------------------------------------
    def _require_reset(self, what: str) -> None:
        if not self.core.started:
            raise RuntimeError(f"{what} before reset(): call reset() first")

    def _label(self, e: int, i: int) -> str:
        """How action errors name agent i (of market e = 0)."""
        return f"agent {self.possible_agents[i]!r}"

    def _stack_actions(self, actions: dict) -> np.ndarray:
        """The joint action ``(N, K)`` of a dict of per-agent actions (finite values are checked by the core).

        One C-level pass (``itemgetter``, a dtype set, ``np.array``) when every live agent sends a float32 or
        float64 array of shape ``(K,)``; anything else goes through ``pipeline.validate_actions``, which accepts
        lists and integers and raises a ValueError naming the agent and field of what is wrong (a missing or
        extra agent, a bool, a string, a wrong shape).
        """
        try:
            vals = self._take(actions)
            if len(actions) == len(self.possible_agents) and _FAST_DTYPES.issuperset(map(_DTYPE, vals)):
                arr = np.array(vals)
                if arr.shape == self._action_shape:
                    return arr
        except (KeyError, TypeError, AttributeError, ValueError):
            pass  # the slow path below names what is wrong
        return validate_actions(actions, self.agents, (self.core.action_dim,))

    def full_infos(self) -> dict[str, dict]:
        """The full per-agent infos of the step last taken, whatever ``info_level`` is: what a ``"full"`` env
        returned from that ``step`` (``fields.INFO_FIELDS`` and the level's others, plus ``"market"``); an empty
        dict per agent before the first step of an episode."""
        self._require_reset("full_infos()")
        core = self.core
        if core.fused_info_rows() is None and core.last_outcome is None:
            return {a: {} for a in self.possible_agents}
        live, self.agents = self.agents, self.possible_agents[:]  # the step's agents (the list empties at the end)
        try:
            return self._step_infos()
        finally:
            self.agents = live

    def _step_infos(self) -> dict:
        """The full infos of the step last taken: from the fused step's info block when there is one (one
        ``tolist`` for all agents and fields), else ``_infos`` of its outcome (the general path, the DLMP env)."""
        core = self.core
        rows = core.fused_info_rows() if self.infos_from_fused_step else None
        if rows is None:
            return self._infos(core.last_outcome, core.last_ctx)
        market = self._market_columns_info()
        infos = {}
        for a, row in zip(self.agents, rows[:, 0].T.tolist()):
            d = dict(zip(INFO_NAMES, row))
            d["market"] = market
            infos[a] = d
        return infos

    def _lean_infos(self) -> dict:
        """``fields.LEAN_INFO_NAMES`` per agent plus the shared market dict (``info_level="lean"``)."""
        core = self.core
        cols = core.lean_columns()
        market = self._market_columns_info()
        return {ag: {"matched_kwh": x, "market_cash": y, "cost": z, "market": market}
                for ag, x, y, z in zip(self.agents, cols["matched_kwh"][0].tolist(), cols["market_cash"][0].tolist(),
                                       cols["cost"][0].tolist())}

    def _market_columns_info(self) -> dict:
        market = {"t": self.core.t - 1}
        market.update(self.core.last_market_values(0))
        return market

    def _observe(self) -> np.ndarray:
        return self.core.observe()[0]

    def _state(self) -> np.ndarray:
        return self.core.state()[0]

    def _step_view(self) -> StepView:
        out = self.last_outcome
        if out is None:
            return StepView.empty(self.config.n_prosumers)
        c = out.clearing
        return StepView(out.bid_price, out.sides, out.order_kwh, c.matched, c.unit_price, out.settlement.reward,
                        float(c.clearing_price), float(c.volume))

    def _market_info(self, out: StepOutcome) -> dict:
        m = self.core.market_columns(out)
        market = {"t": self.core.t - 1}
        market.update({k: v[0].item() for k, v in m.items()})
        return market

    def _infos(self, out: StepOutcome, ctx: StepContext) -> dict:
        cols = self.core.info_columns(out, ctx)
        names = tuple(cols)
        rows = zip(*[cols[k][0].tolist() for k in names])
        market = self._market_info(out)
        return {a: {**dict(zip(names, row)), "market": market} for a, row in zip(self.agents, rows)}


AuctionEnv.__doc__ = (AuctionEnv.__doc__ or "") + "\n    **Observation fields**\n\n" + "\n".join(
    "    " + line for line in field_table(OBS_FIELDS).splitlines()) + "\n"
