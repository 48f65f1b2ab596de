"""``auction_v0.vector_env``: E independent auction markets stepped as arrays (Gymnasium vector style).

Multi-agent carry-over of Gymnasium's vector API (``gymnasium.vector.VectorEnv``): every array has
the env axis first and the agent axis second.

=====================  ======================================================================
``reset(seed)``        ``obs (E, N, F)`` float32, ``infos`` {}; market e is seeded ``seed + e``
``step(actions)``      ``actions (E, N, 2)`` -> ``obs (E, N, F)``, ``rewards (E, N)`` float64 $,
                       ``terminations``/``truncations (E, N)`` bool, ``infos``
``infos``              ``INFO_FIELDS`` names -> ``(E, N)`` arrays (``info_level="lean"``: only
                       ``LEAN_INFO_NAMES``; ``full_infos()`` gives the rest on demand);
                       ``"market"`` -> dict of ``(E,)`` arrays (clearing price, volume, welfare,
                       operator surplus, step); at an episode end also ``"final_obs"``
                       ``(E, N, F)``, ``"final_state"`` ``(E, S)`` and the mask ``"_final_obs"``
                       ``(E,)`` (SAME_STEP mode)
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
from .auction_core import INFO_NAMES, AuctionCore
from .auction_env import check_info_level, check_reset_options
from .config import MarketConfig

_FAST_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})  # arrays the core takes as they are


class AuctionVectorEnv:
    """E copies of ``auction_v0`` with one configuration, stepped as arrays ``(E, N, ...)``."""

    metadata = {"name": "auction_v0", "autoreset_mode": AutoresetMode.SAME_STEP}
    # full infos may come straight from the fused step's info block; a subclass that adds to ``_infos`` sets False
    infos_from_fused_step: bool = True

    def __init__(self, num_envs: int, config: MarketConfig | None = None, *,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP, info_level: str = "full",
                 clear: Callable | None = None, **kwargs: Any):
        if config is not None and kwargs:
            raise ValueError("give either a MarketConfig or keyword options, not both")
        check_info_level(info_level)
        cfg = config if config is not None else MarketConfig.from_kwargs(**kwargs)
        self._setup(AuctionCore(cfg, num_envs, clear), autoreset_mode, info_level)

    def _setup(self, core: AuctionCore, autoreset_mode, info_level: str = "full") -> None:
        """Spaces and agents of a core (shared with the DLMP vector env)."""
        cfg = core.config
        self.info_level = check_info_level(info_level)
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
        self._last_step = False
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
            self._pending_reset = self._last_step = False
            false = np.zeros((e, n), dtype=bool)
            return self._observe(), np.zeros((e, n)), false, false.copy(), {}
        arr = actions if (isinstance(actions, np.ndarray) and actions.shape == self.action_space.shape
                          and actions.dtype in _FAST_DTYPES) else \
            validate_action_batch(actions, self.possible_agents, e, core.action_dim)  # names env, agent, field
        core.advance(arr, self._label)  # NaN/inf: ValueError naming env, agent and field
        self._last_step = True
        infos = self._lean_infos() if self.info_level == "lean" else self._step_infos()
        done = core.done
        terminations = np.zeros((e, n), dtype=bool)
        truncations = np.full((e, n), done)
        rewards = core.reward
        if done and self.autoreset_mode is AutoresetMode.SAME_STEP:
            infos["final_obs"] = self._observe()
            infos["final_state"] = self.state()
            infos["_final_obs"] = np.ones(e, dtype=bool)
            self._final = (core.last_outcome, core.last_ctx, core.t)  # full_infos() of this step after the reset
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

    def _label(self, e: int, i: int) -> str:
        """How action errors name agent i of market e."""
        return f"env {e}, agent {self.possible_agents[i]!r}"

    def _infos(self, out, ctx) -> dict:
        infos: dict[str, Any] = self.core.info_columns(out, ctx)
        market = self.core.market_columns(out)
        market["t"] = np.full(self.num_envs, self.core.t - 1)
        infos["market"] = market
        return infos

    def _step_infos(self) -> dict:
        """The full infos of the step last taken: views of the fused step's info block when there is one, else
        ``_infos`` of its outcome (the general path, the DLMP env)."""
        core = self.core
        rows = core.fused_info_rows() if self.infos_from_fused_step else None
        if rows is None:
            return self._infos(core.last_outcome, core.last_ctx)
        infos: dict[str, Any] = dict(zip(INFO_NAMES, rows))
        market = core.last_market_columns()
        market["t"] = np.full(self.num_envs, core.t - 1)
        infos["market"] = market
        return infos

    def _lean_infos(self) -> dict:
        """``fields.LEAN_INFO_NAMES`` -> ``(E, N)`` arrays plus the market dict (``info_level="lean"``)."""
        core = self.core
        infos: dict[str, Any] = core.lean_columns()
        market = core.last_market_columns()
        market["t"] = np.full(self.num_envs, core.t - 1)
        infos["market"] = market
        return infos

    def full_infos(self) -> dict:
        """The full infos of the step last taken (``INFO_FIELDS`` -> ``(E, N)`` arrays and ``"market"``), whatever
        ``info_level`` is; ``{}`` before the first step. After an autoreset (SAME_STEP) they are those of the
        step that ended the episode, without ``final_obs``."""
        core = self.core
        if not getattr(self, "_last_step", False):
            return {}
        if core.last_outcome is None:  # the step ended the episode and the markets were reset (SAME_STEP)
            out, ctx, t = self._final
            infos = self._infos(out, ctx)
            infos["market"]["t"] = np.full(self.num_envs, t - 1)
            return infos
        return self._step_infos()

    def __repr__(self) -> str:
        return f"AuctionVectorEnv(num_envs={self.num_envs}, n_agents={len(self.possible_agents)})"
