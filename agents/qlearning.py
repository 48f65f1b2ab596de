"""Tabular Q-learning pricing agents in the style of Calvano et al. (2020, AER 110(10):3267).

Each learner picks a price from a grid of ``n_prices`` points in [price_lo, price_hi] $/kWh
(default [feed-in, retail]); its dispatch follows a fixed rule: ``"own_price"`` (supply at its own
ask: the price-taker response to the price it names) or ``"last_price"`` (price-taker response to
the last clearing price). State: ``"joint"`` = last price indices of all learners (Calvano; m^N
states), ``"own_price"`` = (own last index, last clearing price binned on the grid) for many agents,
``"auto"`` = joint while m^N <= ``max_joint_states``. Exploration epsilon_t = exp(-beta t),
learning rate alpha, discount gamma; Q initialised to the discounted payoff against uniformly
random rivals (Calvano's Q0; sampled when the rivals' profiles are too many).

Vectorised: ``n_sessions`` independent sessions run in lockstep and Q has shape
(sessions, learners, states, m); one batched ``run_step`` clears all sessions' markets. The
market kernel replays ``auction_v0``'s dynamics on the fleet of ``env.reset(seed)``: time cycles
through the episode (dispatch history reset at each episode start, same fleet every episode) while
learning continues across episodes (a continuing game). Non-learners bid truthfully
(``p2penv.agents.baselines.TruthfulAgent`` semantics computed from the step context).
Checkpoints hold Q, states, t, market state and the rng state, so a resumed run is bit-identical.

Options for experiments on the learners themselves (Calvano-style collusion probes):

* ``kernel="table"``: the stage game is tabulated once (rewards $ of the learners and the clearing
  price $/kWh for every joint price-index profile, ``MarketKernel.tabulate``) and each step is a table
  look-up instead of a market clearing: identical rewards, tens of times faster. Only for stationary
  stage games (fleet constant over the episode, payoffs independent of the last price and of the
  previous dispatch); a ValueError names ``kernel`` otherwise.
* ``session_ids``: session b draws its exploration from its own stream keyed by
  (``seed``, ``session_ids[b]``), and with ``converge_steps`` > 0 a converged session stops learning
  and exploring (Calvano's stopping rule). A session's result then does not depend on which other
  sessions share its batch: ``n_sessions=1, session_ids=(k,)`` reproduces session k of any batch.
* ``exploration="staggered"``: only learner ``t mod L`` may explore at step t, with probability
  min(1, L epsilon_t): learners never experiment simultaneously, yet each makes about as many
  experiments as under simultaneous exploration, on the same schedule.
* ``frozen``: learner positions that neither explore nor update their Q (they play greedily).
"""
from __future__ import annotations

import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from p2penv.market.competitive import price_taker_response
from p2penv.market.pipeline import StepContext, run_step
from p2penv.market.truthful import reservation_buy_price, step_tariffs, truthful_price

from .checkpoint import atomic_write_bytes, atomic_write_json
from .config import check_choice

STATES = ("auto", "joint", "own_price")
DISPATCH = ("own_price", "last_price")
KERNELS = ("market", "table")
EXPLORATION = ("simultaneous", "staggered")
RNG_CHUNK = 256  # steps of per-session random draws generated at once (session_ids mode)


@dataclass(frozen=True)
class QConfig:
    """Hyper-parameters (Calvano's baseline: m=15, alpha=0.15, gamma=0.95, beta=4e-6)."""

    n_prices: int = 15
    price_lo: float | None = None  # $/kWh, default feed-in tariff
    price_hi: float | None = None  # $/kWh, default retail tariff
    alpha: float = 0.15
    gamma: float = 0.95
    beta: float = 1e-4  # per step; epsilon_t = exp(-beta t)
    total_steps: int = 50_000  # steps per session
    n_sessions: int = 4
    state: str = "auto"
    max_joint_states: int = 50_000
    dispatch: str = "own_price"
    converge_steps: int = 0  # stop a session's clock once its greedy policy held this long (0: never)
    converge_eps: float = 1.0  # the holding count starts only once epsilon_t <= this (1: from the start)
    seed: int = 0
    checkpoint_every: int = 0  # steps
    progress: bool = False
    record_every: int = 100  # steps between recorded mean prices/profits
    kernel: str = "market"  # "table": tabulated stationary stage game (see module doc)
    exploration: str = "simultaneous"  # "staggered": only learner t mod L may explore at step t
    frozen: tuple[int, ...] = ()  # learner positions that never explore nor update Q
    session_ids: tuple[int, ...] = ()  # per-session random streams (batch-invariant sessions); () = one shared rng
    # market_log.csv (p2penv.agents.market_log) when train() has an out_dir: one row per log_every steps
    # (means over all sessions), the stage-game NashConv of session 0's greedy policy every nash_conv_every
    # rows (0: off), the same scalars to tensorboard with tensorboard=True
    log_every: int = 1000
    nash_conv_every: int = 0
    tensorboard: bool = False

    def __post_init__(self):
        if self.n_prices < 2:
            raise ValueError(f"n_prices: need >= 2, got {self.n_prices}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha: must lie in (0, 1], got {self.alpha}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma: must lie in [0, 1), got {self.gamma}")
        if self.beta < 0:
            raise ValueError(f"beta: must be >= 0, got {self.beta}")
        check_choice("state", self.state, STATES)
        check_choice("dispatch", self.dispatch, DISPATCH)
        for name in ("total_steps", "n_sessions", "record_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        check_choice("kernel", self.kernel, KERNELS)
        check_choice("exploration", self.exploration, EXPLORATION)
        if not 0 < self.converge_eps <= 1:
            raise ValueError(f"converge_eps: must lie in (0, 1], got {self.converge_eps}")
        if self.converge_steps < 0:
            raise ValueError(f"converge_steps: must be >= 0, got {self.converge_steps}")
        if self.session_ids and len(self.session_ids) != self.n_sessions:
            raise ValueError(f"session_ids: need one id per session ({self.n_sessions}), got {len(self.session_ids)}")
        if len(set(self.session_ids)) != len(self.session_ids) or any(i < 0 for i in self.session_ids):
            raise ValueError(f"session_ids: must be distinct and >= 0, got {self.session_ids}")
        if self.nash_conv_every < 0:
            raise ValueError(f"nash_conv_every: must be >= 0 (rows; 0 = off), got {self.nash_conv_every}")
        if len(set(self.frozen)) != len(self.frozen) or any(i < 0 for i in self.frozen):
            raise ValueError(f"frozen: learner positions must be distinct and >= 0, got {self.frozen}")

    @classmethod
    def from_dict(cls, d: dict) -> "QConfig":
        from .config import config_from_dict

        return config_from_dict(cls, d, ("frozen", "session_ids"))


class MarketKernel:
    """Batched replay of auction_v0 dynamics for B sessions: ``step(learner_price_idx)``."""

    def __init__(self, env, learners: Sequence[str], cfg: QConfig, n_sessions: int, seed: int):
        if env.metadata.get("name") != "auction_v0":
            raise ValueError(f"env: the Q-learning kernel replays auction_v0, got {env.metadata.get('name')!r}")
        env.reset(seed=seed)
        self.env, self.fleet, self.rules, self.config = env, env.fleet, env.rules, env.config
        names = list(env.possible_agents)
        self.learn_idx = np.array([names.index(a) for a in learners])
        c = self.config
        lo = c.feed_in_tariff if cfg.price_lo is None else cfg.price_lo
        hi = c.retail_tariff if cfg.price_hi is None else cfg.price_hi
        if not c.price_floor <= lo < hi <= c.price_cap:
            raise ValueError(f"price_lo/price_hi: need floor <= lo < hi <= cap, got {lo}, {hi}")
        self.prices = np.linspace(lo, hi, cfg.n_prices)
        self.dispatch_rule = cfg.dispatch
        self.B, self.N = n_sessions, self.fleet.n
        self.reset_market()

    def reset_market(self) -> None:
        self.t = 0
        self.p_prev = np.broadcast_to(self.fleet.p0_kw, (self.B, self.N)).copy()
        self.last_price = np.full(self.B, 0.5 * (self.config.price_floor + self.config.price_cap))

    def context(self) -> StepContext:
        f, t = self.fleet, self.t
        return StepContext.build(f.demand_kw[t], f.p_max_kw[t], self.p_prev, f.ramp_kw, f.eta, f.cost_a, f.cost_b,
                                 self.config.dt_h, f.shed_value)

    def _unit(self, price):
        c = self.config
        return np.clip(2.0 * (price - c.price_floor) / (c.price_cap - c.price_floor) - 1.0, -1.0, 1.0)

    def _disp_unit(self, ctx, price):
        dt = ctx.dt_h
        e = price_taker_response(price, ctx.cost_a, ctx.cost_b, ctx.lo_kw * dt, ctx.hi_kw * dt, ctx.eta)
        w = ctx.hi_kw - ctx.lo_kw
        return np.clip(np.where(w > 0, 2.0 * (e / dt - ctx.lo_kw) / np.where(w > 0, w, 1.0) - 1.0, -1.0), -1, 1), e

    def joint_action(self, ctx, idx: np.ndarray) -> np.ndarray:
        """(B, N, 2) actions: learners at grid prices ``idx`` (B, L), others truthful."""
        c = self.config
        lam = self.last_price[:, None]
        u_disp, e = self._disp_unit(ctx, lam)  # price-taker at last price (truthful dispatch)
        mc = (2.0 * ctx.cost_a * e + ctx.cost_b) / ctx.eta
        selling = ctx.eta * e / ctx.dt_h - ctx.demand_kw > 0
        price = truthful_price(selling, mc, reservation_buy_price(ctx, c), step_tariffs(ctx, c)[1])
        acts = np.stack([self._unit(price), u_disp], -1)
        li = self.learn_idx
        p = self.prices[idx]
        acts[:, li, 0] = self._unit(p)
        if self.dispatch_rule == "own_price":
            sub = StepContext(*(getattr(ctx, f)[..., li] if np.ndim(getattr(ctx, f)) else getattr(ctx, f)
                                for f in ctx.__dataclass_fields__))
            acts[:, li, 1] = self._disp_unit(sub, p)[0]
        else:
            acts[:, li, 1] = u_disp[:, li]
        return acts

    def step(self, idx: np.ndarray):
        """Clear all sessions; returns (rewards (B, N) $, clearing price (B,) $/kWh (the previous one
        where nothing cleared), outcome)."""
        ctx = self.context()
        out = run_step(self.joint_action(ctx, idx), ctx, self.rules)
        cp = np.asarray(out.clearing.clearing_price, dtype=np.float64)
        self.last_price = filled = np.where(np.isfinite(cp), cp, self.last_price)
        self.p_prev = out.settlement.dispatch_kw
        self.t += 1
        if self.t >= self.fleet.horizon:
            self.reset_market()
        return out.settlement.reward, filled, out

    def state(self) -> dict:
        return dict(t=self.t, p_prev=self.p_prev.copy(), last_price=self.last_price.copy())

    def tabulate(self, n_prices: int, last_price: float | None = None, p_prev_kw=None) -> tuple[np.ndarray, np.ndarray]:
        """Stage game at the first step of an episode: (rewards $ of the learners, shape
        (m,)*L + (L,); clearing price $/kWh (nan where nothing clears), shape (m,)*L) for every
        joint price-index profile; optionally with a given last clearing price $/kWh and previous
        dispatch (N,) kW. The kernel's own state is left unchanged."""
        m, L = n_prices, len(self.learn_idx)
        idx = np.stack(np.unravel_index(np.arange(m**L), (m,) * L), -1)
        saved = (self.B, self.state())
        try:
            self.B = idx.shape[0]
            self.reset_market()
            if last_price is not None:
                self.last_price = np.full(self.B, float(last_price))
            if p_prev_kw is not None:
                self.p_prev = np.broadcast_to(np.asarray(p_prev_kw, dtype=np.float64), (self.B, self.N)).copy()
            ctx = self.context()
            out = run_step(self.joint_action(ctx, idx), ctx, self.rules)
            r = np.asarray(out.settlement.reward[:, self.learn_idx], dtype=np.float64)
            cp = np.asarray(out.clearing.clearing_price, dtype=np.float64).reshape(-1)
        finally:
            self.B = saved[0]
            self.load_state(saved[1])
        return r.reshape((m,) * L + (L,)), np.broadcast_to(cp, (m**L,)).reshape((m,) * L).copy()

    def stationary_table(self, n_prices: int) -> tuple[np.ndarray, np.ndarray]:
        """``tabulate`` after checking that the stage game is stationary: the fleet's demand and
        capacity are constant over the episode and the learners' rewards and the clearing price do
        not change with the last clearing price or the previous dispatch. ValueError naming
        ``kernel`` otherwise."""
        f = self.fleet
        if not (np.all(f.demand_kw == f.demand_kw[0]) and np.all(f.p_max_kw == f.p_max_kw[0])):
            raise ValueError("kernel: 'table' needs a stationary stage game, but the fleet's demand or "
                             "capacity changes over the episode; use kernel='market'")
        c = self.config
        base = self.tabulate(n_prices)
        for lp, pp in ((c.price_floor, None), (c.price_cap, f.p_max_kw[0]), (None, np.zeros(self.N))):
            other = self.tabulate(n_prices, lp, pp)
            if not all(np.allclose(a, b, rtol=0, atol=1e-12, equal_nan=True) for a, b in zip(base, other)):
                raise ValueError("kernel: 'table' needs a stationary stage game, but the learners' rewards or "
                                 "the clearing price depend on the last price or the previous dispatch; "
                                 "use kernel='market'")
        return base

    def load_state(self, s: dict) -> None:
        self.t, self.p_prev, self.last_price = s["t"], s["p_prev"].copy(), s["last_price"].copy()


@dataclass(frozen=True)
class QResult:
    """Q (B, L, S, m); greedy (B, L, S) argmax actions; t steps done; converged (B,) bool;
    t_conv (B,) / s_conv (B, L): convergence step and state (session_ids mode, else -1 / 0);
    trace_t (K,), trace_price (K, B) mean clearing price, trace_profit (K, B, L) mean $/step of each
    window of ``record_every`` steps; prices (m,) grid $/kWh; state_kind; learners; wall_s."""

    Q: np.ndarray
    greedy: np.ndarray
    t: int
    converged: np.ndarray
    trace_t: np.ndarray
    trace_price: np.ndarray
    trace_profit: np.ndarray
    prices: np.ndarray
    state_kind: str
    learners: tuple[str, ...]
    config: QConfig
    wall_s: float = field(default=float("nan"))
    t_conv: np.ndarray | None = None  # (B,) step each session converged at (-1: not), session_ids mode
    s_conv: np.ndarray | None = None  # (B, L) state each session was in when it converged


class QLearners:
    """Vectorised Calvano Q-learners bound to an env factory; ``train()`` and ``policy(session)``."""

    def __init__(self, env_fn: Callable[[], Any], cfg: QConfig, learners: Sequence[str] | None = None,
                 env_seed: int = 0):
        self.cfg, self.env_fn, self.env_seed = cfg, env_fn, env_seed
        env = env_fn()
        self.learners = tuple(learners) if learners is not None else tuple(env.possible_agents)
        self.kernel = MarketKernel(env, self.learners, cfg, cfg.n_sessions, env_seed)
        m, L = cfg.n_prices, len(self.learners)
        kind = cfg.state
        if kind == "auto":
            kind = "joint" if m**L <= cfg.max_joint_states else "own_price"
        self.state_kind = kind
        self.S = m**L if kind == "joint" else m * m
        if any(i >= L for i in cfg.frozen):
            raise ValueError(f"frozen: learner positions must be < {L} (learners {self.learners}), got {cfg.frozen}")
        self.table = self.kernel.stationary_table(m) if cfg.kernel == "table" else None
        B_ = cfg.n_sessions
        # flat Q row of (session, learner) at state 0, and (session, learner) offset into a (B, L, m) block
        self._rows = ((np.arange(B_)[:, None] * L + np.arange(L)[None, :]) * self.S,
                      (np.arange(B_)[:, None] * L + np.arange(L)[None, :]) * m)
        self.rng = np.random.default_rng(cfg.seed)
        B = cfg.n_sessions
        # per-session streams (see module doc); draws are made RNG_CHUNK steps at a time
        self.streams = [np.random.default_rng([cfg.seed, int(k)]) for k in cfg.session_ids]
        self._draw_u = np.zeros((0, B, L))
        self._draw_a = np.zeros((0, B, L), dtype=np.int64)
        self.Q = self._q0()
        self.s = np.zeros((B, L), dtype=np.int64)  # state index per session and learner
        self.t = 0
        self.stable = np.zeros(B, dtype=np.int64)
        self.learning = np.ones(L, bool)
        self.learning[list(cfg.frozen)] = False
        self.done = np.zeros(B, bool)  # converged and stopped (session_ids mode)
        self.t_conv = np.full(B, -1, dtype=np.int64)  # step at which each session converged, -1: not yet
        self.s_conv = np.zeros((B, L), dtype=np.int64)  # state each session was in when it converged
        self.trace: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.market_log = None  # p2penv.agents.market_log.MarketLog while train() writes to an out_dir
        self._acc_p = np.zeros(B)
        self._acc_r = np.zeros((B, L))
        self._acc_n = 0

    # -- initialisation ------------------------------------------------------------------------
    def _q0(self) -> np.ndarray:
        """Calvano Q0: discounted mean payoff of each own price against uniformly random rivals
        (first step's market), same for every state."""
        k, m, L, B = self.kernel, self.cfg.n_prices, len(self.learners), self.cfg.n_sessions
        n_prof = m ** (L - 1)
        if n_prof <= 4096:
            others = np.stack(np.unravel_index(np.arange(n_prof), (m,) * (L - 1)), -1) if L > 1 else np.zeros((1, 0), int)
        else:
            others = np.random.default_rng(self.cfg.seed + 1).integers(0, m, (2048, L - 1))
        q0 = np.zeros((L, m))
        saved = (k.B, k.state())
        for i in range(L):
            idx = np.insert(np.repeat(others, m, 0), i, np.tile(np.arange(m), len(others)), axis=1)
            k.B = idx.shape[0]
            k.reset_market()
            ctx = k.context()
            r = run_step(k.joint_action(ctx, idx), ctx, k.rules).settlement.reward[:, k.learn_idx[i]]
            q0[i] = r.reshape(len(others), m).mean(0)
        k.B = saved[0]
        k.load_state(saved[1])
        return np.broadcast_to(q0[None, :, None, :] / (1.0 - self.cfg.gamma), (B, L, self.S, m)).copy()

    # -- state coding ------------------------------------------------------------------------------
    def encode(self, idx: np.ndarray, price: np.ndarray) -> np.ndarray:
        """(B, L) state index from the learners' price indices and the clearing price $/kWh."""
        m = self.cfg.n_prices
        if self.state_kind == "joint":
            s = idx @ (m ** np.arange(idx.shape[1] - 1, -1, -1, dtype=np.int64))  # C-order ravel of the profile
            return s[:, None].repeat(idx.shape[1], 1)
        g = self.kernel.prices
        pb = np.clip(np.searchsorted(g, np.nan_to_num(price, nan=g[0]) - 0.5 * (g[1] - g[0])), 0, m - 1)
        return idx * m + pb[:, None]

    # -- training ---------------------------------------------------------------------------------
    def _epsilon(self) -> float:
        return float(np.exp(-self.cfg.beta * self.t))

    def _draws(self) -> tuple[np.ndarray, np.ndarray]:
        """(uniform (B, L), random price index (B, L)) for this step."""
        B, L, m = self.cfg.n_sessions, len(self.learners), self.cfg.n_prices
        if not self.streams:
            return self.rng.random((B, L)), self.rng.integers(0, m, (B, L))
        k = self.t % RNG_CHUNK
        if k == 0 or self._draw_u.shape[0] != RNG_CHUNK:
            u, a = zip(*[(g.random((RNG_CHUNK, L)), g.integers(0, m, (RNG_CHUNK, L))) for g in self.streams])
            self._draw_u, self._draw_a = np.stack(u, 1), np.stack(a, 1)
        return self._draw_u[k], self._draw_a[k]

    def _play(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Learners' rewards (B, L) $ and the clearing price (B,) $/kWh of the joint indices ``a``."""
        if self.table is None:
            rew, cp, out = self.kernel.step(a)
            if self.market_log is not None:
                self._log_step(rew[:, self.kernel.learn_idx], cp, out)
            return rew[:, self.kernel.learn_idx], cp
        flat = a @ (self.cfg.n_prices ** np.arange(a.shape[1] - 1, -1, -1, dtype=np.int64))
        r = self.table[0].reshape(-1, a.shape[1])[flat]
        cp = self.table[1].reshape(-1)[flat]
        self.kernel.last_price = cp = np.where(np.isfinite(cp), cp, self.kernel.last_price)
        if self.market_log is not None:
            self._log_step(r, cp, None)
        return r, cp

    def _log_step(self, r: np.ndarray, cp: np.ndarray, out) -> None:
        """One step of every session into ``market_log`` (the table kernel has no volume or welfare:
        nan; its stationary game has no episodes: returns nan)."""
        B = r.shape[0]
        nan = np.full(B, np.nan)
        if out is not None:
            vol = np.asarray(out.clearing.volume, dtype=np.float64).reshape(B)
            welfare = np.asarray(out.clearing.welfare, dtype=np.float64).reshape(B)
            ended = np.full(B, self.kernel.t == 0)  # the kernel reset: every session's episode ended
        else:
            vol, welfare, ended = nan, nan, np.zeros(B, bool)
        self.market_log.add_step(r, ended, dict(clearing_price=cp, volume_kwh=vol, welfare=welfare))

    def step(self) -> np.ndarray:
        """One step of every session; returns the joint price indices played, ``(B, L)``."""
        cfg, B, L, m = self.cfg, self.cfg.n_sessions, len(self.learners), self.cfg.n_prices
        if not self.Q.flags.c_contiguous:
            self.Q = np.ascontiguousarray(self.Q)
        Qf = self.Q.reshape(-1, m)  # a view: row (b * L + l) * S + s
        base, flat_bl = self._rows
        rows = base + self.s
        q_s = Qf[rows]  # (B, L, m) copy
        greedy = q_s.argmax(-1)
        u, rand = self._draws()
        if cfg.exploration == "staggered":
            explore = (u < min(1.0, L * self._epsilon())) & (np.arange(L) == self.t % L)[None, :]
        else:
            explore = u < self._epsilon()
        upd = ~self.done[:, None] & self.learning[None, :]  # (B, L) who explores and learns
        a = np.where(explore & upd, rand, greedy)
        r, cp = self._play(a)
        s2 = self.encode(a, cp)
        target = r + cfg.gamma * Qf[base + s2].max(-1)
        pos = flat_bl + a  # (B, L) positions in q_s.ravel()
        q_flat = q_s.reshape(-1)
        old = q_flat[pos]
        new = np.where(upd, old + cfg.alpha * (target - old), old)
        Qf[rows, a] = new
        q_flat[pos] = new
        changed = (q_s.argmax(-1) != greedy).any(1)
        self.stable = np.where(changed | (self._epsilon() > cfg.converge_eps), 0, self.stable + 1)
        self.s = s2
        self.t += 1
        if self.streams and cfg.converge_steps:
            new = ~self.done & (self.stable >= cfg.converge_steps)
            self.t_conv[new] = self.t
            self.s_conv[new] = s2[new]
            self.done |= new
        self._acc_p += cp if self.table is not None else np.nan_to_num(cp)
        self._acc_r += r
        self._acc_n += 1
        if self._acc_n == cfg.record_every:
            self.trace.append((self.t, self._acc_p / self._acc_n, self._acc_r / self._acc_n))
            self._acc_p = np.zeros(B)
            self._acc_r = np.zeros((B, L))
            self._acc_n = 0
        return a

    def warm_start(self, Q: np.ndarray, s: np.ndarray) -> None:
        """Start training from Q-tables ``Q`` (B, L, S, m) and states ``s`` (B, L) (e.g. a converged
        run's ``QResult.Q`` and ``s_conv``), with the clock (and so epsilon) back at t = 0."""
        if Q.shape != self.Q.shape:
            raise ValueError(f"Q: expected shape {self.Q.shape}, got {Q.shape}")
        if s.shape != self.s.shape or s.min() < 0 or s.max() >= self.S:
            raise ValueError(f"s: expected shape {self.s.shape} with states in [0, {self.S}), got {s.shape}")
        self.Q, self.s = np.array(Q, dtype=np.float64, order="C"), np.array(s, dtype=np.int64)
        self.t = 0
        self.stable[:] = 0

    def converged(self) -> np.ndarray:
        c = self.cfg.converge_steps
        if self.streams:
            return self.done.copy()
        return self.stable >= c if c > 0 else np.zeros(self.cfg.n_sessions, bool)

    def train(self, out_dir: str | Path | None = None, resume: bool = False) -> QResult:
        """Run to ``total_steps`` (stops early when every session converged); checkpoints."""
        out = Path(out_dir) if out_dir is not None else None
        if resume and out is not None and (out / "checkpoint.pkl").exists():
            self.load(out / "checkpoint.pkl")
        bar = None
        if self.cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.cfg.total_steps, initial=self.t, unit="step", dynamic_ncols=True)
        t0 = time.perf_counter()
        last = self.t
        if out is not None:
            from .market_log import MarketLog, agent_groups

            env = self.env_fn()
            self.market_log = MarketLog(out, agent_groups(env, self.learners), tensorboard=self.cfg.tensorboard,
                                        nash_conv_every=self.cfg.nash_conv_every,
                                        resume_step=self.t * len(self.learners) if resume else None)
        try:
            while self.t < self.cfg.total_steps and not (self.cfg.converge_steps and self.converged().all()):
                self.step()
                if bar is not None and self.t % 1000 == 0:
                    bar.update(1000)
                if self.market_log is not None and self.t % self.cfg.log_every == 0:
                    self._log_row(env)
                if out is not None and self.cfg.checkpoint_every and self.t - last >= self.cfg.checkpoint_every:
                    self.save(out / "checkpoint.pkl")
                    last = self.t
            if self.market_log is not None and self.market_log.pending_steps:
                self._log_row(env)
        finally:
            if self.market_log is not None:
                self.market_log.close()
                self.market_log = None
        if bar is not None:
            bar.close()
        res = self.result(time.perf_counter() - t0)
        if out is not None:
            self.save(out / "checkpoint.pkl")
            atomic_write_json(out / "summary.json", dict(t=res.t, converged=res.converged, state_kind=res.state_kind,
                                                         learners=res.learners, config=asdict(self.cfg),
                                                         prices=res.prices, wall_s=res.wall_s))
        return res

    def _log_row(self, env) -> None:
        """Close a market_log row (agent-steps = steps x learners; NashConv of session 0 when due)."""
        from .market_log import eval_nash_conv

        nc = None
        if self.market_log.nash_due:
            names = list(env.possible_agents)
            nc = eval_nash_conv(env, self.policy(0), seed=self.env_seed,
                                players=[names.index(a) for a in self.learners])
        self.market_log.end_update(self.t * len(self.learners), nash_conv=nc)

    def result(self, wall_s: float = float("nan")) -> QResult:
        L, B = len(self.learners), self.cfg.n_sessions
        tr_t = np.array([x[0] for x in self.trace], dtype=np.int64)
        tr_p = np.array([x[1] for x in self.trace]).reshape(-1, B)
        tr_r = np.array([x[2] for x in self.trace]).reshape(-1, B, L)
        return QResult(self.Q.copy(), self.Q.argmax(-1), self.t, self.converged(), tr_t, tr_p, tr_r,
                       self.kernel.prices.copy(), self.state_kind, self.learners, self.cfg, wall_s,
                       self.t_conv.copy(), self.s_conv.copy())

    # -- checkpoints ------------------------------------------------------------------------------
    def _snapshot(self) -> dict:
        return dict(Q=self.Q, s=self.s, t=self.t, stable=self.stable, trace=self.trace, acc=(self._acc_p, self._acc_r, self._acc_n),
                    rng=self.rng.bit_generator.state, kernel=self.kernel.state(), config=asdict(self.cfg),
                    learners=self.learners, env_seed=self.env_seed,
                    streams=[g.bit_generator.state for g in self.streams], draws=(self._draw_u, self._draw_a),
                    done=self.done, t_conv=self.t_conv, s_conv=self.s_conv)

    def save(self, path: str | Path) -> Path:
        return atomic_write_bytes(path, pickle.dumps(self._snapshot(), protocol=pickle.HIGHEST_PROTOCOL))

    def load(self, path: str | Path) -> None:
        with open(path, "rb") as f:
            d = pickle.load(f)
        if tuple(d["learners"]) != self.learners:
            raise ValueError(f"learners: checkpoint has {d['learners']}, this run {self.learners}")
        if d["Q"].shape != self.Q.shape:
            raise ValueError(f"Q: checkpoint shape {d['Q'].shape} differs from {self.Q.shape} (n_sessions/n_prices/state)")
        self.Q, self.s, self.t, self.stable, self.trace = d["Q"], d["s"], d["t"], d["stable"], list(d["trace"])
        if d.get("config", {}).get("session_ids", ()) != asdict(self.cfg)["session_ids"]:
            raise ValueError(f"session_ids: checkpoint has {d.get('config', {}).get('session_ids')}, "
                             f"this run {self.cfg.session_ids}")
        self._acc_p, self._acc_r, self._acc_n = d["acc"]
        self.rng.bit_generator.state = d["rng"]
        self.kernel.load_state(d["kernel"])
        for g, st in zip(self.streams, d.get("streams", [])):
            g.bit_generator.state = st
        if "draws" in d:
            self._draw_u, self._draw_a = d["draws"]
            self.done, self.t_conv, self.s_conv = d["done"], d["t_conv"], d["s_conv"]

    def policy(self, session: int = 0, others: Any = None) -> "QPolicy":
        return QPolicy(self, session, others)


class QPolicy:
    """Greedy joint policy of one trained session for a plain PettingZoo loop (``p2penv.agents.rollout``):
    learners play argmax Q at their state, the others ``others`` (default TruthfulAgent).
    ``force`` = {learner position: price index} overrides the greedy choice for the next step."""

    def __init__(self, q: QLearners, session: int, others: Any = None):
        from .baselines import TruthfulAgent

        self.q, self.b = q, session
        self.others = others if others is not None else TruthfulAgent(q.kernel.config)
        self.force: dict[int, int] = {}
        self.reset()

    def reset(self) -> None:
        self.s = self.q.s[self.b].copy()  # start from the state training ended in
        self.last_idx = None

    def indices(self) -> np.ndarray:
        L = len(self.q.learners)
        a = self.q.Q[self.b, np.arange(L), self.s].argmax(-1)
        for i, k in self.force.items():
            a[i] = k
        self.force = {}
        return a

    def __call__(self, env, obs: dict) -> dict:
        k = self.q.kernel
        names = list(env.agents)
        a = self.indices()
        saved = (k.B, k.state())
        k.B, k.p_prev, k.last_price = 1, env.p_prev[None, :], np.array([env.last_price])
        acts = k.joint_action(env.ctx, a[None, :])[0]
        k.B = saved[0]
        k.load_state(saved[1])
        fixed = [i for i, n in enumerate(names) if n not in self.q.learners]
        if fixed:
            fa = self.others.act_batch(np.stack([obs[names[i]] for i in fixed]))
            acts[fixed] = fa
        self.last_idx = a
        self._last_price = env.last_price
        return {n: acts[i].astype(np.float32) for i, n in enumerate(names)}

    def observe(self, outcome) -> None:
        """Advance the state after the env step (``p2penv.agents.rollout`` calls it with ``env.last_outcome``)."""
        cp = float(outcome.clearing.clearing_price)
        cp = cp if np.isfinite(cp) else self._last_price
        self.s = self.q.encode(self.last_idx[None, :], np.array([cp]))[0]
