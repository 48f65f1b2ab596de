"""``auction_v0.vector_env``: E independent auction markets stepped as arrays (Gymnasium vector style).

Multi-agent carry-over of Gymnasium's vector API (``gymnasium.vector.VectorEnv``): every array has
the env axis first and the agent axis second.

=====================  ======================================================================
``reset(seed)``        ``obs (E, N, F)`` float32, ``infos`` {}; market e is seeded ``seed + e``
``step(actions)``      ``actions (E, N, 2)`` -> ``obs (E, N, F)``, ``rewards (E, N)`` float64 $,
                       ``terminations``/``truncations (E, N)`` bool, ``infos``
``infos``              ``INFO_FIELDS`` names -> ``(E, N)`` arrays; ``"market"`` -> dict of
                       ``(E,)`` arrays (clearing price, volume, welfare, operator surplus);
                       at an episode end also ``"final_obs"`` ``(E, N, F)``, ``"final_state"``
                       ``(E, S)`` and the mask ``"_final_obs"`` ``(E,)`` (SAME_STEP mode)
``state()``            ``(E, S)`` float32 for centralised critics
=====================  ======================================================================

**Autoreset.** Episodes have a fixed length (``max_cycles``) and end by truncation only, so all
E markets end on the same step. ``AutoresetMode.SAME_STEP`` (default): the step that ends the
episode returns the first observation of the next episode, and the final observation and state
sit in ``infos["final_obs"]``/``infos["final_state"]`` (what a learner needs to bootstrap the
value of a truncated state). ``AutoresetMode.NEXT_STEP`` (Gymnasium's default): the ending step
returns the final observation; the next ``step`` ignores its actions, resets, and returns the
first observation with zero rewards. ``AutoresetMode.DISABLED``: call ``reset()`` yourself.
Each market's next episode continues its own generator, so market e follows the single env
seeded ``seed + e`` across episodes too (``reset()`` without a seed there).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from ..market.pipeline import validate_action_batch
from .auction_core import AuctionCore
from .auction_env import check_reset_options
from .config import MarketConfig


class AuctionVectorEnv:
    """E copies of ``auction_v0`` with one configuration, stepped as arrays ``(E, N, ...)``."""

    metadata = {"name": "auction_v0", "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, config: MarketConfig | None = None, *,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP, clear: Callable | None = None,
                 **kwargs: Any):
        if config is not None and kwargs:
            raise ValueError("give either a MarketConfig or keyword options, not both")
        cfg = config if config is not None else MarketConfig.from_kwargs(**kwargs)
        self._setup(AuctionCore(cfg, num_envs, clear), autoreset_mode)

    def _setup(self, core: AuctionCore, autoreset_mode) -> None:
        """Spaces and agents of a core (shared with the DLMP vector env)."""
        cfg = core.config
        if cfg.nash_gap_in_infos:
            raise ValueError("nash_gap_in_infos: not supported by the vector env; use "
                             "p2penv.diagnostics.nash.stage_nash_gap on a market's context")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(f"autoreset_mode: expected one of {[m.value for m in AutoresetMode]}, "
                             f"got {autoreset_mode!r}") from None
        self.config = cfg
        self.core = core
        self.num_envs = core.num_envs
        self.autoreset_mode = mode
        self.metadata = dict(self.metadata, autoreset_mode=mode)
        self.possible_agents = [f"prosumer_{i}" for i in range(cfg.n_prosumers)]
        self.agents = self.possible_agents[:]
        self.max_cycles = cfg.max_cycles
        e, n, obs_dim = self.num_envs, cfg.n_prosumers, core.observe_dim
        self.single_observation_space = spaces.Box(-1.0, 1.0, (obs_dim,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (core.action_dim,), np.float32)
        self.observation_space = spaces.Box(-1.0, 1.0, (e, n, obs_dim), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (e, n, core.action_dim), np.float32)
        self.single_state_space = spaces.Box(-1.0, 1.0, (core.state_dim,), np.float32)
        self.state_space = spaces.Box(-1.0, 1.0, (e, core.state_dim), np.float32)
        self._pending_reset = False

    # -- vector API ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start a new episode in every market; market e is seeded ``seed + e``."""
        check_reset_options(options)
        self.core.reset(seed)
        self._pending_reset = False
        return self._observe(), {}

    def step(self, actions):
        """Step every market; see the module docstring for shapes and autoreset."""
        core = self.core
        if not core.started:
            raise RuntimeError("step() before reset(): call reset() first")
        e, n = self.num_envs, len(self.possible_agents)
        if self._pending_reset:
            if self.autoreset_mode is AutoresetMode.DISABLED:
                raise RuntimeError("step() called on finished episodes; call reset() (autoreset_mode=DISABLED)")
            core.reset()
            self._pending_reset = False
            false = np.zeros((e, n), dtype=bool)
            return self._observe(), np.zeros((e, n)), false, false.copy(), {}
        arr = validate_action_batch(actions, self.possible_agents, e, core.action_dim)
        ctx = core.ctx
        out = core.step(arr)
        infos = self._infos(out, ctx)
        done = core.done
        terminations = np.zeros((e, n), dtype=bool)
        truncations = np.full((e, n), done)
        rewards = out.settlement.reward
        if done and self.autoreset_mode is AutoresetMode.SAME_STEP:
            infos["final_obs"] = self._observe()
            infos["final_state"] = self.state()
            infos["_final_obs"] = np.ones(e, dtype=bool)
            core.reset()
        elif done:
            self._pending_reset = True
        return self._observe(), rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """``(E, S)`` float32 global state of every market (all observations and t / T)."""
        if not self.core.started:
            raise RuntimeError("state() before reset(): call reset() first")
        return self._state()

    def close(self) -> None:
        pass

    # -- internals --------------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        return self.core.observe()

    def _state(self) -> np.ndarray:
        return self.core.state()

    def _infos(self, out, ctx) -> dict:
        infos: dict[str, Any] = self.core.info_columns(out, ctx)
        market = self.core.market_columns(out)
        market["t"] = np.full(self.num_envs, self.core.t - 1)
        infos["market"] = market
        return infos

    def __repr__(self) -> str:
        return f"AuctionVectorEnv(num_envs={self.num_envs}, n_agents={len(self.possible_agents)})"
