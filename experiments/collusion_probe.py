"""Collusion probe in the style of Calvano et al. (2020, AER 110(10):3267), with enough sessions.

Cells: mechanism (uniform / pay-as-bid clearing) x N sellers x variant, ``sessions`` independent
Q-learning sessions each (tabular, memory-one joint state, m-point price grid, epsilon-greedy with
epsilon_t = exp(-beta t), Calvano's stopping rule: a session stops once its greedy policy held
``converge_steps`` steps). Variants (the alternative explanation "high prices come from
simultaneous experimentation, not from reward-punishment schemes"):

* ``baseline``: Calvano, all learners explore simultaneously.
* ``async``: staggered exploration: only learner t mod N may experiment at step t (with
  probability min(1, N epsilon_t): as many experiments per learner, never two at once).
* ``frozen``: after the baseline session converged, seller 0 is re-trained (exploration restarted)
  against frozen copies of the others, who play their converged greedy strategies without
  exploring or learning. Seller 0 then faces a fixed environment and learns its best reply to the
  rivals' *strategies*: if they punish, keeping the high price is the best reply; if their high
  prices are not backed by punishment, seller 0 learns to undercut.

Stage benchmarks on the learners' grid (the stage game is stationary: ``QConfig(kernel="table")``):
pi_N = per-seller profit $/step of the pure grid Nash equilibrium with the lowest joint profit;
pi_M = the joint-profit maximum over all grid profiles / N (Calvano's monopoly profit; here it can
be asymmetric: one seller supplies, the others stay out). Delta = (profit - pi_N) / (pi_M - pi_N)
with profit the sellers' mean profit $/step on the converged greedy cycle.

Impulse response (exploration off): from the converged state the greedy path is followed onto its
cycle; ``pre`` steps on the cycle, then seller 0 is forced for one step to its static best reply
to the rivals' current prices (brute force over the grid), then ``post`` greedy steps. Punishment:
the non-deviators' mean ask the step after the deviation is below what they would have asked
without it. Return: the path is back on the pre-deviation cycle within ``return_k`` steps.

Statistics (``experiments.stats``): per cell the finite sessions, mean, median and IQM of Delta, prices and
profits with stratified-bootstrap 95 % intervals (shares: Wilson 95 %); ``paired`` (JSON key): frozen vs
baseline and async vs baseline per (mechanism, N) on Delta and price, paired by session (session k of every
variant shares its seed; frozen re-trains session k's converged baseline): Wilcoxon signed-rank and the
paired bootstrap of the mean difference.

One row = one pure function call ``session_row(cfg, mechanism, n, variant, session)``; a session's
numbers do not depend on which other sessions share its training batch (``QConfig.session_ids``),
so ``run`` batches a cell's sessions and a dispatcher may split them freely.

    python -m p2penv.experiments.collusion_probe [--quick] [--out results/collusion_probe] [--resume] [--publish]
"""
from __future__ import annotations

import shutil
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from p2penv.seller_buyer import seller_buyer_env_fn, sellers

from . import stats
from .checkpoints import RowCheckpoint
from .dispatch import Task, run_tasks
from .output import echo, format_table, new_figure, save_figure, write_csv
from .study_cli import configured, overrides, run_study, study_parser

MECHANISMS = ("uniform", "pay_as_bid")
VARIANTS = ("baseline", "async", "frozen")
DOCS_JSON = Path("docs/results/collusion.json")
DOCS_FIGS = Path("docs/figures")


@dataclass(frozen=True)
class CollusionConfig:
    """Study config. Prices $/kWh, profits $/step (one market step of ``dt_h`` hours)."""

    mechanisms: tuple[str, ...] = MECHANISMS
    ns: tuple[int, ...] = (2, 3, 4)
    variants: tuple[str, ...] = VARIANTS
    sessions: int = 20  # independent sessions per cell
    n_prices: int = 7  # price grid points in [feed-in, retail] $/kWh
    q_steps: int = 500_000  # max training steps per session (and per frozen re-training)
    q_beta: float = 3e-5  # epsilon_t = exp(-beta t)
    q_alpha: float = 0.15
    q_gamma: float = 0.95
    converge_steps: int = 20_000  # greedy policy unchanged this long = converged (training stops)
    converge_eps: float = 0.01  # ... counted only once epsilon_t <= this (no "convergence" on Q0 while exploring)
    seed: int = 0
    pre: int = 5  # greedy steps before the deviation
    post: int = 15  # steps traced after it
    return_k: int = 10  # "returns to the pre-deviation path within k steps"
    # elastic demand (flexible-load buyers): with inelastic buyers the stage game already has
    # equilibria at the retail cap, so Nash and collusion coincide
    n_buyers: int = 6
    demand_kw: float = 1.0
    buyer_values: tuple[float, float] | None = (0.10, 0.30)

    def __post_init__(self):
        bad = [m for m in self.mechanisms if m not in MECHANISMS]
        if bad or not self.mechanisms:
            raise ValueError(f"mechanisms: expected a non-empty subset of {MECHANISMS}, got {self.mechanisms}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants: expected a non-empty subset of {VARIANTS}, got {self.variants}")
        if not self.ns or any(n < 2 for n in self.ns):
            raise ValueError(f"ns: need seller counts >= 2, got {self.ns}")
        for name in ("sessions", "q_steps", "converge_steps", "pre", "post", "return_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.return_k > self.post:
            raise ValueError(f"return_k: must be <= post ({self.post}), got {self.return_k}")
        if self.n_prices**max(self.ns) > 200_000:
            raise ValueError(f"n_prices: {self.n_prices}^{max(self.ns)} joint states is too many for tabular Q")

    def env_fn(self, mechanism: str, n: int, max_cycles: int = 24):
        return seller_buyer_env_fn(n, self.n_buyers, seed=self.seed, mechanism=mechanism, max_cycles=max_cycles,
                                   demand_kw=self.demand_kw, buyer_values=self.buyer_values)

    def qconfig(self, n_sessions_ids: Sequence[int], exploration: str = "simultaneous", frozen: tuple[int, ...] = (),
                seed_offset: int = 0):
        from p2penv.agents.qlearning import QConfig

        return QConfig(n_prices=self.n_prices, alpha=self.q_alpha, gamma=self.q_gamma, beta=self.q_beta,
                       total_steps=self.q_steps, n_sessions=len(n_sessions_ids), state="joint",
                       max_joint_states=self.n_prices**max(self.ns), converge_steps=self.converge_steps,
                       converge_eps=self.converge_eps,
                       seed=self.seed + seed_offset, kernel="table", exploration=exploration, frozen=frozen,
                       session_ids=tuple(int(k) for k in n_sessions_ids), record_every=1000,
                       checkpoint_every=max(1, self.q_steps // 10))


QUICK = CollusionConfig(sessions=3, q_steps=4000, q_beta=2e-3, converge_steps=300, converge_eps=0.1, post=6,
                        return_k=4)


@dataclass(frozen=True)
class StageGame:
    """Grid stage game of one (mechanism, N): ``profit`` (m,)*N + (N,) $/step, ``price`` (m,)*N
    clearing price $/kWh, ``grid`` (m,) $/kWh, benchmarks pi_N, pi_M $/step, the Nash profile."""

    profit: np.ndarray
    price: np.ndarray
    grid: np.ndarray
    pi_nash: float
    pi_collusive: float
    nash_profile: tuple[int, ...]
    pi_collusive_sym: float  # symmetric-profile joint maximum / N (the earlier probe's benchmark)
    n_nash: int  # pure grid equilibria


def benchmarks(pm: np.ndarray) -> tuple[float, float, tuple]:
    """(pi_N, pi_M, Nash profile) per-learner profit $/step from a profit matrix (m,)*L + (L,):
    pi_N of the pure grid Nash equilibrium with the lowest joint profit (or, with none, of the
    profile with the smallest sum of unilateral gains); pi_M = max joint profit over all profiles / L."""
    L = pm.shape[-1]
    is_ne = nash_mask(pm)
    joint = pm.sum(-1)
    if is_ne.any():
        cand = np.argwhere(is_ne)
        ne = tuple(cand[int(np.argmin([joint[tuple(c)] for c in cand]))])
    else:
        gain = sum(pm[..., i].max(axis=i, keepdims=True) - pm[..., i] for i in range(L))
        ne = np.unravel_index(int(np.argmin(gain)), gain.shape)
    return float(pm[ne].mean()), float(joint.max() / L), tuple(int(x) for x in ne)


def nash_mask(pm: np.ndarray) -> np.ndarray:
    """(m,)*L bool: profiles where no learner gains by a unilateral grid deviation."""
    is_ne = np.ones(pm.shape[:-1], bool)
    for i in range(pm.shape[-1]):
        is_ne &= pm[..., i] >= pm[..., i].max(axis=i, keepdims=True) - 1e-12
    return is_ne


def delta(profit: float, pi_n: float, pi_m: float) -> float:
    """Calvano's Delta = (profit - pi_N) / (pi_M - pi_N); nan when pi_M == pi_N."""
    return (profit - pi_n) / (pi_m - pi_n) if pi_m != pi_n else float("nan")


def best_reply(pm: np.ndarray, profile: Sequence[int], who: int = 0) -> int:
    """Static best-reply price index of learner ``who`` to the others' indices in ``profile``
    (lowest index among ties)."""
    idx = list(profile)
    idx[who] = slice(None)
    return int(np.argmax(pm[tuple(idx) + (who,)]))


_GAMES: dict = {}


def stage_game(cfg: CollusionConfig, mechanism: str, n: int) -> StageGame:
    """The tabulated stage game and its benchmarks (cached per config fields that matter)."""
    from p2penv.agents.qlearning import QLearners

    key = (mechanism, n, cfg.n_prices, cfg.seed, cfg.n_buyers, cfg.demand_kw, cfg.buyer_values)
    if key not in _GAMES:
        q = QLearners(cfg.env_fn(mechanism, n), replace(cfg.qconfig([0]), total_steps=1), learners=sellers(n))
        pm, price = q.table
        pi_n, pi_m, ne = benchmarks(pm)
        joint = pm.sum(-1)
        sym = max(joint[(j,) * n] for j in range(cfg.n_prices)) / n
        _GAMES[key] = StageGame(pm, price, q.kernel.prices.copy(), pi_n, pi_m, ne, float(sym),
                                int(nash_mask(pm).sum()))
    return _GAMES[key]


# ---- greedy play on a converged Q (exploration off) ---------------------------------------------
def _greedy(Q: np.ndarray, s: int) -> np.ndarray:
    return Q[np.arange(Q.shape[0]), s].argmax(-1)


def _ravel(a: Sequence[int], m: int) -> int:
    return int(np.ravel_multi_index(tuple(int(x) for x in a), (m,) * len(a)))


def greedy_cycle(Q: np.ndarray, s0: int, m: int) -> list[tuple[int, ...]]:
    """Profiles on the limit cycle of greedy play from joint state ``s0`` (Q of one session,
    (L, S, m), memory-one joint state = last profile): the cycle in play order."""
    seen: dict[int, int] = {}
    order: list[int] = []
    s = int(s0)
    while s not in seen:
        seen[s] = len(order)
        order.append(s)
        s = _ravel(_greedy(Q, s), m)
    start = seen[s]
    # states order[start:] repeat; the profile played in state x is greedy(x) = next state
    cyc = order[start:]
    L = Q.shape[0]
    return [tuple(int(v) for v in np.unravel_index(x, (m,) * L)) for x in cyc[1:] + cyc[:1]]


@dataclass(frozen=True)
class Impulse:
    """One impulse response (see module doc). Arrays over pre + 1 + post steps; ``asks`` (T, L)
    grid indices, ``price`` (T,) clearing $/kWh, ``profit`` (T, L) $/step; ``cf_*`` the same
    without the deviation (the cycle continued)."""

    cycle: list
    asks: np.ndarray
    price: np.ndarray
    profit: np.ndarray
    cf_asks: np.ndarray
    cf_profit: np.ndarray
    deviation: int  # seller 0's forced index
    punish: bool
    returned: bool
    return_steps: int  # steps after the deviation until back on the cycle, -1: not within post


def impulse_response(Q: np.ndarray, s0: int, game: StageGame, pre: int, post: int, return_k: int) -> Impulse:
    """Greedy path onto the cycle from ``s0``, ``pre`` steps, seller 0 forced to its static best
    reply, ``post`` steps (pure; Q of one session (L, S, m))."""
    m, L = len(game.grid), Q.shape[0]
    cyc = greedy_cycle(Q, s0, m)
    cyc_states = {_ravel(a, m) for a in cyc}
    s = _ravel(cyc[-1], m)  # the state whose greedy profile is cyc[0]
    T = pre + 1 + post
    asks = np.zeros((T, L), dtype=np.int64)
    ret = -1
    dev = -1
    for t in range(T):
        a = _greedy(Q, s)
        if t == pre:
            dev = a[0] = best_reply(game.profit, a, 0)
        asks[t] = a
        s = _ravel(a, m)
        if t > pre and ret < 0 and s in cyc_states:
            ret = t - pre
    cf = np.array([cyc[t % len(cyc)] for t in range(T)], dtype=np.int64)
    prof = np.array([game.profit[tuple(a)] for a in asks])
    cf_prof = np.array([game.profit[tuple(a)] for a in cf])
    price = np.array([game.price[tuple(a)] for a in asks])
    g = game.grid
    punish = bool(L > 1 and g[asks[pre + 1, 1:]].mean() < g[cf[pre + 1, 1:]].mean() - 1e-12)
    return Impulse(cyc, asks, price, prof, cf, cf_prof, int(dev), punish, bool(0 < ret <= return_k), int(ret))


def cycle_stats(cyc: list, game: StageGame) -> dict:
    """Mean profits $/step (per seller and mean), asks and clearing price $/kWh on a cycle."""
    prof = np.array([game.profit[a] for a in cyc])
    asks = game.grid[np.array(cyc)]
    is_ne = nash_mask(game.profit)
    return dict(profit=float(prof.mean()), profit0=float(prof[:, 0].mean()), ask=float(asks.mean()),
                ask0=float(asks[:, 0].mean()), price=float(np.nanmean([game.price[a] for a in cyc])),
                cycle_len=len(cyc), is_nash=bool(all(is_ne[a] for a in cyc)))


# ---- training (batched, batch-invariant) ----------------------------------------------------------
_TRAINED: OrderedDict = OrderedDict()


def train_sessions(cfg: CollusionConfig, mechanism: str, n: int, kind: str, sessions: Sequence[int],
                   ckpt_dir: Path | None = None, resume: bool = False):
    """QResult of the sessions ``sessions`` of one training kind: ``baseline``, ``async`` or
    ``frozen`` (seller 0 re-trained against frozen converged baseline rivals). Cached (2 entries)."""
    from p2penv.agents.qlearning import QLearners

    key = (asdict(cfg).__repr__(), mechanism, n, kind, tuple(sessions))
    if key in _TRAINED:
        return _TRAINED[key]
    f = cfg.env_fn(mechanism, n)
    sub = None if ckpt_dir is None else ckpt_dir / f"{mechanism}_N{n}_{kind}"
    if kind == "frozen":
        base = train_sessions(cfg, mechanism, n, "baseline", sessions, ckpt_dir, resume)
        q = QLearners(f, cfg.qconfig(sessions, frozen=tuple(range(1, n)), seed_offset=1), learners=sellers(n))
        q.warm_start(base.Q, base.s_conv)
    else:
        q = QLearners(f, cfg.qconfig(sessions, exploration="staggered" if kind == "async" else "simultaneous"),
                      learners=sellers(n))
    res = q.train(sub, resume=resume)
    _TRAINED[key] = res
    while len(_TRAINED) > 2:
        _TRAINED.popitem(last=False)
    return res


def clear_cache() -> None:
    """Forget the in-process cache of trained batches (the next call retrains or reads checkpoints)."""
    _TRAINED.clear()


def session_rows(cfg: CollusionConfig, mechanism: str, n: int, variant: str, sessions: Sequence[int],
                 ckpt_dir: Path | None = None, resume: bool = False) -> list[dict]:
    """Result rows of ``sessions`` of one cell (see ``session_row``), trained as one batch."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    game = stage_game(cfg, mechanism, n)
    res = train_sessions(cfg, mechanism, n, variant, sessions, ckpt_dir, resume)
    before = train_sessions(cfg, mechanism, n, "baseline", sessions, ckpt_dir, resume) if variant == "frozen" else None
    m = cfg.n_prices
    rows = []
    for b, k in enumerate(sessions):
        s0 = int(res.s_conv[b, 0]) if res.t_conv[b] >= 0 else int(_ravel(res.Q[b].argmax(-1)[:, 0], m))
        imp = impulse_response(res.Q[b], s0, game, cfg.pre, cfg.post, cfg.return_k)
        st = cycle_stats(imp.cycle, game)
        T = cfg.pre + 1 + cfg.post
        disc = cfg.q_gamma ** np.arange(T - cfg.pre)
        dprof = imp.profit[cfg.pre:, 0] - imp.cf_profit[cfg.pre:, 0]
        row = dict(mechanism=mechanism, N=n, variant=variant, session=int(k),
                   converged=bool(res.t_conv[b] >= 0), t_conv=int(res.t_conv[b]),
                   delta=delta(st["profit"], game.pi_nash, game.pi_collusive), **st,
                   deviation_price=float(game.grid[imp.deviation]),
                   deviation_noop=bool(imp.deviation == imp.cf_asks[cfg.pre, 0]),
                   punish=imp.punish, returned=imp.returned, return_steps=imp.return_steps,
                   deviation_gain=float(dprof[0]), deviation_gain_disc=float(disc @ dprof),
                   unprofitable=bool(disc @ dprof < -1e-12))
        if before is not None:
            sb = cycle_stats(greedy_cycle(before.Q[b], int(before.s_conv[b, 0]) if before.t_conv[b] >= 0 else 0, m), game)
            row.update(delta_before=delta(sb["profit"], game.pi_nash, game.pi_collusive),
                       profit0_before=sb["profit0"], ask0_before=sb["ask0"],
                       undercut=bool(st["ask0"] < sb["ask0"] - 1e-12),
                       converged_before=bool(before.t_conv[b] >= 0))
        g = game.grid
        row.update(trace_price=imp.price, trace_ask_dev=g[imp.asks[:, 0]], trace_ask_rivals=g[imp.asks[:, 1:]].mean(1),
                   trace_cf_ask_rivals=g[imp.cf_asks[:, 1:]].mean(1), trace_profit_dev=imp.profit[:, 0])
        rows.append(row)
    return rows


def session_row(cfg: CollusionConfig, mechanism: str, n: int, variant: str, session: int) -> dict:
    """One row: the result of session ``session`` of cell (mechanism, N, variant): pure and
    deterministic (the same as in any batch). Fields: converged, t_conv (steps), delta, profit /
    profit0 ($/step, mean and seller 0), ask / ask0 / price ($/kWh on the greedy cycle),
    cycle_len, is_nash, deviation_price, punish, returned, return_steps, deviation_gain($/step) and
    its gamma-discounted sum over the trace, unprofitable; frozen: delta_before, profit0_before,
    ask0_before, undercut (seller 0's ask on its new cycle below its old one); trace_* arrays over
    pre + 1 + post steps."""
    return session_rows(cfg, mechanism, n, variant, [session])[0]


# ---- summary ----------------------------------------------------------------------------------------
def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a share k/n."""
    if n == 0:
        return float("nan"), float("nan")
    z = 1.959963984540054
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(c - h), float(c + h)


SHARES = ("converged", "punish", "returned", "unprofitable", "is_nash", "undercut")


CELL_METRICS = ("delta", "price", "ask", "profit", "deviation_gain_disc")
FROZEN_METRICS = ("delta_before", "profit0_before", "profit0", "gain0")
PAIRED_METRICS = ("delta", "price")


def _cell_stats(d: dict, k: str, values) -> None:
    """``d[k]`` (mean of the finite sessions) and the ``experiments.stats`` fields of one metric: finite
    sessions ``k_n`` of ``k_n_total``, mean/median/IQM with stratified-bootstrap 95 % intervals."""
    c = stats.summarise_cell(values)
    d.update({k: c.mean, f"{k}_n": c.n_finite, f"{k}_n_total": c.n_total, f"{k}_mean": c.mean,
              f"{k}_median": c.median, f"{k}_iqm": c.iqm.point, f"{k}_iqm_lo": c.iqm.lo, f"{k}_iqm_hi": c.iqm.hi,
              f"{k}_mean_lo": c.mean_ci.lo, f"{k}_mean_hi": c.mean_ci.hi, f"{k}_deterministic": c.deterministic})


def summarise_cells(rows: list[dict], cfg: CollusionConfig) -> list[dict]:
    """Per cell: Delta, prices, profits (``_cell_stats``: finite counts, IQM/mean/median with bootstrap 95 %
    intervals), shares with Wilson intervals; frozen: seller 0's gain from re-training ($/step)."""
    out = []
    for mech in cfg.mechanisms:
        for n in cfg.ns:
            game = stage_game(cfg, mech, n)
            for v in cfg.variants:
                rs = [r for r in rows if (r["mechanism"], r["N"], r["variant"]) == (mech, n, v)]
                if not rs:
                    continue
                d = dict(mechanism=mech, N=n, variant=v, sessions=len(rs), pi_nash=game.pi_nash,
                         pi_collusive=game.pi_collusive)
                for k in CELL_METRICS + (FROZEN_METRICS[:3] if v == "frozen" else ()):
                    _cell_stats(d, k, [r[k] for r in rs])
                for k in SHARES:
                    if k in rs[0]:
                        c = sum(bool(r[k]) for r in rs)
                        d[k + "_share"] = c / len(rs)
                        d[k + "_lo"], d[k + "_hi"] = wilson(c, len(rs))
                d["punish_and_return_share"] = sum(r["punish"] and r["returned"] for r in rs) / len(rs)
                d["deviation_noop_share"] = sum(bool(r["deviation_noop"]) for r in rs) / len(rs)
                if v == "frozen":  # seller 0's gain $/step from re-training against the frozen rivals
                    gain = [r["profit0"] - r["profit0_before"] for r in rs]
                    _cell_stats(d, "gain0", gain)
                    c = sum(x > 1e-9 for x in gain)
                    d["exploit_share"] = c / len(rs)
                    d["exploit_lo"], d["exploit_hi"] = wilson(c, len(rs))
                T = cfg.pre + 1 + cfg.post
                for k in ("trace_price", "trace_ask_rivals", "trace_ask_dev", "trace_cf_ask_rivals"):
                    d[k.replace("trace_", "mean_trace_")] = np.nanmean(
                        [np.asarray(r[k], dtype=np.float64).reshape(T) for r in rs], 0)
                out.append(d)
    return out


def paired(rows: list[dict]) -> list[dict]:
    """Frozen vs baseline and async vs baseline per (mechanism, N) on ``PAIRED_METRICS``, paired by session
    (session k of every variant shares its seed; frozen re-trains session k's converged baseline):
    Wilcoxon signed-rank and the paired bootstrap of the mean difference."""
    out = []
    for mech, n in dict.fromkeys((r["mechanism"], r["N"]) for r in rows):
        vs = {r["variant"] for r in rows if (r["mechanism"], r["N"]) == (mech, n)}
        for x in (v for v in ("frozen", "async") if v in vs and "baseline" in vs):
            for metric in PAIRED_METRICS:
                c = stats.paired_by_seed(rows, metric, x, "baseline", method_key="variant", seed_key="session",
                                         where=dict(mechanism=mech, N=n))
                out.append(dict(mechanism=mech, N=n, x=x, y="baseline", metric=metric, pairing="session",
                                **stats.paired_dict(c)))
    return out


def run(cfg: CollusionConfig, out_dir: str | Path | None = None, resume: bool = False, ray=None) -> dict:
    """Run every cell; writes ``collusion_probe.json`` ({"config", "sessions", "cells",
    "benchmarks", "meta"}), CSVs and the figures to ``out_dir`` when given. Rows are checkpointed
    (``<out>/collusion_probe_checkpoint.json``) and Q-tables every ``q_steps / 10`` steps
    (``<out>/q/``); ``resume=True`` keeps the finished rows and continues interrupted training.
    ``ray``: None (this process), "local" or a cluster address: one Ray task per cell
    (``p2penv.experiments.dispatch``; Q-tables are then not checkpointed, rows are, on the driver)."""
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    cells = [(mech, n, v) for mech in cfg.mechanisms for n in cfg.ns for v in cfg.variants]
    ck = RowCheckpoint(out, "collusion_probe", asdict(cfg), resume, total=len(cells) * cfg.sessions)
    ids = list(range(cfg.sessions))
    q_dir = None if out is None or ray is not None else out / "q"
    run_tasks([Task(session_rows, (cfg, mech, n, v, ids, q_dir, ck.matched),
                    tuple(dict(mechanism=mech, N=n, variant=v, session=k) for k in ids), f"{mech} N={n} {v}")
               for mech, n, v in cells], ck, ray)
    rows = [ck.find(mechanism=mech, N=n, variant=v, session=k) for mech, n, v in cells for k in ids]
    summary = summarise_cells(rows, cfg)
    pairs = paired(rows)
    bench = [dict(mechanism=mech, N=n, pi_nash=g.pi_nash, pi_collusive=g.pi_collusive,
                  pi_collusive_sym=g.pi_collusive_sym, nash_profile=g.nash_profile, n_nash=g.n_nash,
                  nash_price=float(g.price[g.nash_profile]), grid=g.grid)
             for mech in cfg.mechanisms for n in cfg.ns for g in [stage_game(cfg, mech, n)]]
    meta = dict(wall_s=time.perf_counter() - t0, resumed_rows=ck.reused,
                statistics="experiments.stats: per cell finite sessions (<m>_n of <m>_n_total), IQM/mean/median "
                           f"with stratified percentile bootstrap 95 % ({stats.DEFAULT_REPS} replicates); shares: "
                           "Wilson 95 %; paired: frozen/async - baseline by session, Wilcoxon signed-rank + paired "
                           "bootstrap")
    result = dict(config=asdict(cfg), sessions=rows, cells=summary, benchmarks=bench, paired=pairs, meta=meta)
    if out is not None:
        from p2penv.agents.checkpoint import atomic_write_json

        atomic_write_json(out / "collusion_probe.json", result)
        write_csv(out / "collusion_probe_sessions.csv", [{k: v for k, v in r.items() if not k.startswith("trace_")}
                                                          for r in rows])
        write_csv(out / "collusion_probe_cells.csv", [{k: v for k, v in c.items() if not k.startswith("mean_trace")}
                                                       for c in summary])
        plot_delta(summary, cfg, out / "collusion_delta.png")
        plot_impulse(summary, cfg, out / "collusion_impulse.png")
    echo(format_table(bench, ("mechanism", "N", "pi_nash", "pi_collusive", "pi_collusive_sym", "n_nash")))
    echo(format_table(summary, ("mechanism", "N", "variant", "sessions", "delta", "converged_share", "is_nash_share",
                                "punish_share", "returned_share", "unprofitable_share", "price")))
    echo(format_table(pairs, ("mechanism", "N", "x", "y", "metric", "mean_diff", "p_wilcoxon", "wins", "losses",
                              "n_pairs")))
    fr = [c for c in summary if c["variant"] == "frozen"]
    if fr:
        echo(format_table(fr, ("mechanism", "N", "delta_before", "delta", "profit0_before", "profit0", "gain0",
                               "exploit_share", "undercut_share")))
    return result


def plot_delta(cells: list[dict], cfg: CollusionConfig, path):
    """Delta by cell (IQM over sessions, error bars its bootstrap 95 % interval): one panel per mechanism, N on
    the x axis, one colour per variant."""
    fig, axes = new_figure(len(cfg.mechanisms), 4.2, 3.3)
    w = 0.8 / len(cfg.variants)
    for ax, mech in zip(axes, cfg.mechanisms):
        for j, v in enumerate(cfg.variants):
            cs = [c for c in cells if c["mechanism"] == mech and c["variant"] == v]
            x = np.array([cfg.ns.index(c["N"]) for c in cs]) + (j - (len(cfg.variants) - 1) / 2) * w
            y = np.array([c["delta_iqm"] for c in cs], dtype=float)
            err = np.nan_to_num(np.abs(np.array([[c["delta_iqm_lo"] for c in cs], [c["delta_iqm_hi"] for c in cs]],
                                                dtype=float) - y))
            ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, label=v)
        ax.axhline(0, color="r", ls="--", lw=0.7)
        ax.axhline(1, color="g", ls="--", lw=0.7)
        ax.set_xticks(range(len(cfg.ns)), [f"N={n}" for n in cfg.ns])
        ax.set_title(f"{mech}: Delta (IQM, bootstrap 95 %)")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_impulse(cells: list[dict], cfg: CollusionConfig, path):
    """Mean impulse response per cell: the non-deviators' mean ask minus what they would have asked
    without the deviation, $/kWh (below 0 = punishment), one line per variant; one panel per
    (mechanism, N)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(mech, n) for mech in cfg.mechanisms for n in cfg.ns]
    fig, axes = plt.subplots(len(cfg.mechanisms), len(cfg.ns), figsize=(3.4 * len(cfg.ns), 2.9 * len(cfg.mechanisms)),
                             squeeze=False)
    axes = axes.ravel()
    t = np.arange(cfg.pre + 1 + cfg.post) - cfg.pre
    for ax, (mech, n) in zip(axes, panels):
        for j, v in enumerate(cfg.variants):
            c = next((c for c in cells if (c["mechanism"], c["N"], c["variant"]) == (mech, n, v)), None)
            if c is None:
                continue
            ax.plot(t, np.asarray(c["mean_trace_ask_rivals"]) - np.asarray(c["mean_trace_cf_ask_rivals"]),
                    marker=".", label=v)
        ax.axvline(0, color="k", lw=0.5)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{mech} N={n}: rivals' ask change $/kWh", fontsize=9)
        ax.set_xlabel("steps after deviation")
    axes[0].legend(fontsize=6)
    return save_figure(fig, path)


def publish(out_dir: str | Path, root: str | Path = ".") -> list[Path]:
    """Copy the study's JSON and figures to ``docs/results/collusion.json`` and ``docs/figures/``."""
    out, root = Path(out_dir), Path(root)
    pairs = [(out / "collusion_probe.json", root / DOCS_JSON)] + [
        (out / f"collusion_{k}.png", root / DOCS_FIGS / f"collusion_{k}.png") for k in ("delta", "impulse")]
    for a, b in pairs:
        b.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(a, b)
    return [b for _, b in pairs]


def main(argv=None, prog: str | None = None) -> dict:
    ap = study_parser(__doc__, prog, "results/collusion_probe", quick="tiny budget (seconds), for tests",
                      resume="continue the run checkpointed in --out", ray="cells")
    ap.add_argument("--q-steps", type=int)
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--ns", type=int, nargs="+")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS)
    ap.add_argument("--mechanisms", nargs="+", choices=MECHANISMS)
    ap.add_argument("--publish", action="store_true", help="copy JSON and figures to docs/results, docs/figures")
    a = ap.parse_args(argv)
    cfg = configured(ap, QUICK if a.quick else CollusionConfig(),
                     **overrides(a, "q_steps", "sessions", "ns", "variants", "mechanisms"))
    res = run_study(ap, run, cfg, a.out, resume=a.resume, ray=a.ray)
    if a.publish:
        echo("published: " + ", ".join(str(p) for p in publish(a.out)))
    return res


if __name__ == "__main__":
    main()
