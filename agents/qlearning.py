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

from .checkpoint import atomic_write_bytes, atomic_write_json

STATES = ("auto", "joint", "own_price")
DISPATCH = ("own_price", "last_price")


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
    seed: int = 0
    checkpoint_every: int = 0  # steps
    progress: bool = False
    record_every: int = 100  # steps between recorded mean prices/profits

    def __post_init__(self):
        if self.n_prices < 2:
            raise ValueError(f"n_prices: need >= 2, got {self.n_prices}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha: must lie in (0, 1], got {self.alpha}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma: must lie in [0, 1), got {self.gamma}")
        if self.beta < 0:
            raise ValueError(f"beta: must be >= 0, got {self.beta}")
        if self.state not in STATES:
            raise ValueError(f"state: expected one of {STATES}, got {self.state!r}")
        if self.dispatch not in DISPATCH:
            raise ValueError(f"dispatch: expected one of {DISPATCH}, got {self.dispatch!r}")
        for name in ("total_steps", "n_sessions", "record_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> "QConfig":
        bad = sorted(set(d) - set(cls.__dataclass_fields__))
        if bad:
            raise ValueError(f"QConfig: unknown option(s) {bad}; known {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


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
        buy_value = c.retail_tariff if ctx.shed_value is None else np.minimum(ctx.shed_value, c.retail_tariff)
        price = np.where(selling, np.maximum(mc, c.feed_in_tariff), buy_value)
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

    def load_state(self, s: dict) -> None:
        self.t, self.p_prev, self.last_price = s["t"], s["p_prev"].copy(), s["last_price"].copy()


@dataclass(frozen=True)
class QResult:
    """Q (B, L, S, m); greedy (B, L, S) argmax actions; t steps done; converged (B,) bool;
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
        self.rng = np.random.default_rng(cfg.seed)
        self.Q = self._q0()
        B = cfg.n_sessions
        self.s = np.zeros((B, L), dtype=np.int64)  # state index per session and learner
        self.t = 0
        self.stable = np.zeros(B, dtype=np.int64)
        self.trace: list[tuple[int, np.ndarray, np.ndarray]] = []
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
            s = np.ravel_multi_index(tuple(idx.T), (m,) * idx.shape[1]) if idx.shape[1] else np.zeros(len(idx), int)
            return np.broadcast_to(s[:, None], idx.shape).copy()
        g = self.kernel.prices
        pb = np.clip(np.searchsorted(g, np.nan_to_num(price, nan=g[0]) - 0.5 * (g[1] - g[0])), 0, m - 1)
        return idx * m + pb[:, None]

    # -- training ---------------------------------------------------------------------------------
    def _epsilon(self) -> float:
        return float(np.exp(-self.cfg.beta * self.t))

    def step(self) -> None:
        cfg, B, L, m = self.cfg, self.cfg.n_sessions, len(self.learners), self.cfg.n_prices
        bb, ll = np.arange(B)[:, None], np.arange(L)[None, :]
        q_s = self.Q[bb, ll, self.s]  # (B, L, m)
        greedy = q_s.argmax(-1)
        explore = self.rng.random((B, L)) < self._epsilon()
        rand = self.rng.integers(0, m, (B, L))
        a = np.where(explore, rand, greedy)
        rew, cp, _ = self.kernel.step(a)
        r = rew[:, self.kernel.learn_idx]
        s2 = self.encode(a, cp)
        target = r + cfg.gamma * self.Q[bb, ll, s2].max(-1)
        old = self.Q[bb, ll, self.s, a]
        self.Q[bb, ll, self.s, a] = old + cfg.alpha * (target - old)
        changed = (self.Q[bb, ll, self.s].argmax(-1) != greedy).any(1)
        self.stable = np.where(changed, 0, self.stable + 1)
        self.s = s2
        self.t += 1
        self._acc_p += np.nan_to_num(cp)
        self._acc_r += r
        self._acc_n += 1
        if self._acc_n == cfg.record_every:
            self.trace.append((self.t, self._acc_p / self._acc_n, self._acc_r / self._acc_n))
            self._acc_p = np.zeros(B)
            self._acc_r = np.zeros((B, L))
            self._acc_n = 0

    def converged(self) -> np.ndarray:
        c = self.cfg.converge_steps
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
        while self.t < self.cfg.total_steps and not (self.cfg.converge_steps and self.converged().all()):
            self.step()
            if bar is not None and self.t % 1000 == 0:
                bar.update(1000)
            if out is not None and self.cfg.checkpoint_every and self.t - last >= self.cfg.checkpoint_every:
                self.save(out / "checkpoint.pkl")
                last = self.t
        if bar is not None:
            bar.close()
        res = self.result(time.perf_counter() - t0)
        if out is not None:
            self.save(out / "checkpoint.pkl")
            atomic_write_json(out / "summary.json", dict(t=res.t, converged=res.converged, state_kind=res.state_kind,
                                                         learners=res.learners, config=asdict(self.cfg),
                                                         prices=res.prices, wall_s=res.wall_s))
        return res

    def result(self, wall_s: float = float("nan")) -> QResult:
        L, B = len(self.learners), self.cfg.n_sessions
        tr_t = np.array([x[0] for x in self.trace], dtype=np.int64)
        tr_p = np.array([x[1] for x in self.trace]).reshape(-1, B)
        tr_r = np.array([x[2] for x in self.trace]).reshape(-1, B, L)
        return QResult(self.Q.copy(), self.Q.argmax(-1), self.t, self.converged(), tr_t, tr_p, tr_r,
                       self.kernel.prices.copy(), self.state_kind, self.learners, self.cfg, wall_s)

    # -- checkpoints ------------------------------------------------------------------------------
    def _snapshot(self) -> dict:
        return dict(Q=self.Q, s=self.s, t=self.t, stable=self.stable, trace=self.trace, acc=(self._acc_p, self._acc_r, self._acc_n),
                    rng=self.rng.bit_generator.state, kernel=self.kernel.state(), config=asdict(self.cfg),
                    learners=self.learners, env_seed=self.env_seed)

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
        self._acc_p, self._acc_r, self._acc_n = d["acc"]
        self.rng.bit_generator.state = d["rng"]
        self.kernel.load_state(d["kernel"])

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
