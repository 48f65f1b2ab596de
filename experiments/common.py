"""Shared pieces of the experiments: scenarios, profile evaluation, statistics, output.

Scenario ``SellerBuyerMarket``: ``n_sellers`` identical dispatchable units (no own demand) and
``n_buyers`` pure consumers with flat demand (inelastic, or flexible loads with values of lost load
spread over an interval: elastic), so the stage game is the same every step. Total
capacity is ``capacity_ratio`` x total demand and seller i's cost is ``a0 * N E^2 + b E``, so the
*aggregate* competitive supply curve, the competitive price and the welfare optimum do not depend
on N: only the number of sellers it is split among does (the textbook market-power comparison).

Welfare is measured with true values: W = sum of rewards + operator surplus (transfers cancel; the
buyers' fixed utility is dropped), reported as gains from trade W - W_no_trade, where no trade
means every buyer imports at the retail tariff.
"""
from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from agents.best_response import action_grid, iterated_best_response, stage_gap
from agents.checkpoint import atomic_savefig, atomic_write_json, atomic_write_text
from agents.baselines import reservation_buy_price
from agents.rollout import CompetitivePolicy, Trajectory, rollout
from p2penv.market.prosumer import Fleet


@dataclass(frozen=True)
class SellerBuyerMarket:
    """Generator (see module doc): sellers first (``prosumer_0..``), then buyers. kW, $/kWh."""

    n_sellers: int
    capacity_ratio: float = 1.5  # total seller capacity / total demand
    demand_kw: float = 2.0  # per buyer
    a0: float = 0.005  # $/kWh^2 aggregate cost curvature (seller: a0 * n_sellers)
    b: float = 0.08  # $/kWh linear cost
    # None: inelastic buyers (always import at retail). (lo, hi): flexible loads whose values of lost
    # load are spread evenly over [lo, hi] $/kWh: a stepped, price-elastic demand curve.
    buyer_values: tuple[float, float] | None = None

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        ns = self.n_sellers
        nb = n - ns
        if ns < 1 or nb < 1:
            raise ValueError(f"n_sellers: need 1 <= n_sellers < n_prosumers, got {ns} of {n}")
        total_d = nb * self.demand_kw
        cap = self.capacity_ratio * total_d / ns
        sellers = np.arange(n) < ns
        demand = np.tile(np.where(sellers, 0.0, self.demand_kw), (horizon, 1))
        pmax = np.tile(np.where(sellers, cap, 0.0), (horizon, 1))
        ramp = np.where(sellers, cap, 1.0)
        cost_a = np.where(sellers, self.a0 * ns, 0.01)
        cost_b = np.where(sellers, self.b, 0.0)
        shed = np.full(n, np.inf)
        if self.buyer_values is not None:
            shed[ns:] = np.linspace(self.buyer_values[0], self.buyer_values[1], nb)
        f = Fleet(demand, pmax, ramp, np.ones(n), cost_a, cost_b, np.zeros(n), np.arange(1, n + 1),
                  tuple(f"prosumer_{i}" for i in range(n)), shed)
        f.validate()
        return f


def seller_buyer_env_fn(n_sellers: int, n_buyers: int = 3, seed: int = 0, mechanism: str = "uniform",
                        max_cycles: int = 24, rule: str = "walrasian", **gen) -> Callable[[], Any]:
    """Factory of auction_v0 envs on ``SellerBuyerMarket``; learners are ``sellers(n_sellers)``.

    ``rule="walrasian"`` by default: with buyers bidding retail and excess capacity, the
    marginal-pair midpoint would pay even truthful sellers half the spread up to retail, a rent
    that has nothing to do with market power; the Walrasian interval is bounded by the first
    rejected ask, so truthful asks clear at the competitive price and any markup is strategic.
    """
    from p2penv import auction_v0

    g = SellerBuyerMarket(n_sellers, **gen)
    return lambda: auction_v0.parallel_env(n_prosumers=n_sellers + n_buyers, generator=g, seed=seed,
                                           mechanism=mechanism, max_cycles=max_cycles, rule=rule)


def sellers(n: int) -> list[str]:
    return [f"prosumer_{i}" for i in range(n)]


# ----------------------------------------------------------------------------------------------
class NashPolicy:
    """Stage-game Nash profile by grid iterated best response per step (from the competitive
    action; ``players`` best-respond, the rest keep the competitive action). Cached per context."""

    def __init__(self, players: Sequence[int] | None = None, grid=None, max_iter: int = 30, method: str = "grid"):
        self.players, self.grid, self.max_iter = players, grid if grid is not None else action_grid(), max_iter
        self.method = method
        self.cache: dict[bytes, np.ndarray] = {}
        self.last_nash_conv = []

    def __call__(self, env, obs: dict) -> dict:
        from agents.baselines import competitive_joint_action

        ctx = env.ctx
        key = b"".join(np.ascontiguousarray(x).tobytes() for x in (ctx.demand_kw, ctx.lo_kw, ctx.hi_kw))
        if key not in self.cache:
            init, _ = competitive_joint_action(ctx, env.config)
            res = iterated_best_response(ctx, env.rules, init, self.grid, self.players, max_iter=self.max_iter,
                                         method=self.method)
            self.cache[key] = res.profile
            self.last_nash_conv.append(res.nash_conv[-1])
        prof = self.cache[key]
        # float64 on purpose: equilibrium asks often tie another order's price exactly, and float32
        # rounding of the normalised action (~1e-8) would break the tie and change the outcome
        return {a: prof[i].copy() for i, a in enumerate(env.agents)}


def stage_nash_conv(env, traj: Trajectory, players: Sequence[int] | None = None, grid=None,
                    method: str = "grid") -> float:
    """Mean over steps of the stage-game NashConv ($/step) of the played joint actions, over
    ``players``; ``method="exact"`` uses ``p2penv.diagnostics.nash.best_response``, ``"grid"`` the
    grid of ``agents.best_response.action_grid`` (repeated (context, action) pairs computed once)."""
    grid = action_grid() if grid is None else grid
    cache: dict[bytes, float] = {}
    vals = []
    for c, a in zip(traj.ctxs, traj.actions):
        key = b"".join(np.ascontiguousarray(x).tobytes() for x in (c.demand_kw, c.lo_kw, c.hi_kw, a))
        if key not in cache:
            cache[key] = stage_gap(c, env.rules, a, grid, players, method).nash_conv
        vals.append(cache[key])
    return float(np.mean(vals))


def evaluate(env_fn: Callable[[], Any], policy, *, seed: int, n_sellers: int | None = None, episodes: int = 1,
             nash_players: Sequence[int] | None = None, nash_conv: bool = True,
             nash_method: str = "grid") -> dict[str, float]:
    """Metrics of a joint policy on ``episodes`` episodes (means over them)."""
    from p2penv.diagnostics.market_power import aggregate_episode, market_power_step

    env = env_fn()
    trajs = rollout(env, policy, seed=seed, episodes=episodes)
    comp = rollout(env_fn(), CompetitivePolicy(), seed=seed, episodes=episodes)
    rows = []
    for tr, tc in zip(trajs, comp):
        cfg = env.config
        n = len(tr.agents)
        s_idx = np.arange(n_sellers if n_sellers is not None else n)
        dt = cfg.dt_h
        demand = np.array([c.demand_kw.sum() * dt for c in tr.ctxs])
        # no trade: every buyer imports at retail, or a flexible load sheds at its lower lost value
        value = np.array([reservation_buy_price(c, cfg) @ c.demand_kw * dt for c in tr.ctxs])
        w_nt = -value
        w = tr.rewards.sum(1) + tr.operator_surplus - w_nt
        wc = tc.rewards.sum(1) + tc.operator_surplus - w_nt
        mc, cap = [], []  # sellers' true marginal cost at the chosen dispatch, capacity kWh
        for c, a in zip(tr.ctxs, tr.actions):
            p = c.lo_kw + 0.5 * (np.clip(a[:, 1], -1, 1) + 1.0) * (c.hi_kw - c.lo_kw)
            mc.append(((2.0 * c.cost_a * p * dt + c.cost_b) / c.eta)[s_idx])
            cap.append((c.hi_kw * dt * c.eta)[s_idx])
        _, lam = zip(*[_comp_price(c, cfg) for c in tr.ctxs])
        mp = market_power_step(np.nan_to_num(tr.prices), tr.sold_kwh[:, s_idx], np.array(mc), np.array(cap),
                               np.maximum(demand, 1e-12), np.array(lam), w, wc)
        ag = aggregate_episode(mp)
        row = dict(price=float(np.nanmean(tr.prices)), comp_price=float(np.mean(lam)), markup=ag.markup,
                   markup_rel=ag.markup_rel, lerner=ag.lerner_weighted, hhi=ag.hhi, welfare=float(w.sum()),
                   welfare_comp=float(wc.sum()), welfare_loss=ag.welfare_loss, welfare_loss_rel=ag.welfare_loss_rel,
                   profit=float(tr.rewards.sum(0)[s_idx].mean()), profit_all=float(tr.rewards.sum(1).mean() * len(tr.prices)))
        if nash_conv:
            row["nash_conv"] = stage_nash_conv(env, tr, nash_players, method=nash_method)
        rows.append(row)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _comp_price(ctx, cfg):
    from agents.baselines import competitive_joint_action

    return competitive_joint_action(ctx, cfg)


# ----------------------------------------------------------------------------------------------
def mean_ci(x: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t confidence interval (nan half-width for one sample)."""
    from scipy import stats

    a = np.asarray([v for v in x if np.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float("nan")
    return float(a.mean()), float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))


def summarise(rows: list[dict], keys: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Group rows by ``keys``; mean and 95% CI half-width (``<m>_ci``) of each metric."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for g, rs in groups.items():
        d = dict(zip(keys, g))
        d["n_seeds"] = len(rs)
        for m in metrics:
            d[m], d[m + "_ci"] = mean_ci([r[m] for r in rs if m in r])
        out.append(d)
    return out


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """CSV of dict rows (union of keys, first-seen order), written atomically."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def format_table(rows: list[dict], cols: Sequence[str], ci: bool = True) -> str:
    """Plain-text table; ``x +- ci`` when ``<col>_ci`` exists."""
    def num(x: float) -> str:
        # solver round-off (1e-9 markups of an exact benchmark) reads as 0, not as 9.2e-09
        return "0" if abs(x) < 5e-7 else f"{x:.4g}"

    def cell(r, c):
        v = r.get(c, "")
        if isinstance(v, float):
            e = r.get(c + "_ci")
            show = ci and isinstance(e, float) and np.isfinite(e) and abs(e) >= 5e-7
            return num(v) + (f" +- {e:.2g}" if show else "")
        return str(v)

    cells = [[cell(r, c) for c in cols] for r in rows]
    wid = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, wid)), "  ".join("-" * w for w in wid)]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, wid)) for row in cells]
    return "\n".join(lines)


class RowCheckpoint:
    """Completed result rows of an experiment, rewritten atomically after every row, so a run that
    is interrupted resumes where it stopped (``resume=True``) instead of recomputing (and
    retraining). Rows are only reused when the saved config equals the current one.

    ``<out_dir>/<name>_checkpoint.json``: {"config": ..., "rows": [...]}. No ``out_dir``: in memory.
    """

    def __init__(self, out_dir: str | Path | None, name: str, config: dict, resume: bool = False):
        import json

        from agents.checkpoint import _jsonable

        self.path = None if out_dir is None else Path(out_dir) / f"{name}_checkpoint.json"
        self.config = json.loads(json.dumps(config, default=_jsonable, sort_keys=True))
        self.rows: list[dict] = []
        self.reused = 0
        if resume and self.path is not None and self.path.exists():
            saved = json.loads(self.path.read_text())
            if saved.get("config") == self.config:
                self.rows = saved["rows"]
                self.reused = len(self.rows)

    def find(self, **key) -> dict | None:
        """The saved row whose fields match ``key``, or None."""
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, row: dict) -> dict:
        self.rows.append(row)
        if self.path is not None:
            atomic_write_json(self.path, dict(config=self.config, rows=self.rows))
        return row


def save_outputs(out_dir: str | Path, name: str, rows: list[dict], summary: list[dict], meta: dict) -> Path:
    """``<name>_runs.csv``, ``<name>_summary.csv`` and ``<name>.json`` in ``out_dir`` (atomic)."""
    out = Path(out_dir)
    write_csv(out / f"{name}_runs.csv", rows)
    write_csv(out / f"{name}_summary.csv", summary)
    atomic_write_json(out / f"{name}.json", dict(meta=meta, runs=rows, summary=summary))
    return out


def new_figure(ncols: int = 1, width: float = 4.5, height: float = 3.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def save_figure(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    p = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return p


def echo(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
