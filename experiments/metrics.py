"""Metrics of a joint policy (market power, welfare, stage-game NashConv) and their statistics.

Welfare is measured with true values: W = sum of rewards + operator surplus (transfers cancel; the
buyers' fixed utility is dropped), reported as gains from trade W - W_no_trade, where no trade
means every buyer imports at the retail tariff.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from p2penv.agents.rollout import CompetitivePolicy, Trajectory, rollout
from p2penv.diagnostics.nash import trajectory_nash_conv
from p2penv.market.competitive import competitive_joint_action
from p2penv.market.truthful import reservation_buy_price


def stage_nash_conv(env, traj: Trajectory, players: Sequence[int] | None = None, grid=None,
                    method: str = "grid") -> float:
    """Mean over steps of the stage-game NashConv ($/step) of the played joint actions, over
    ``players``: ``p2penv.diagnostics.nash.trajectory_nash_conv`` of the trajectory's contexts and
    actions (``method="exact"``: price breakpoints and a 41-point dispatch grid; ``"grid"``: ``grid``,
    default ``action_grid()``)."""
    return float(trajectory_nash_conv(traj.ctxs, traj.actions, env.rules, players=players, method=method,
                                      grid=grid, n_grid=41).sum(1).mean())


def evaluate(env_fn: Callable[[], Any], policy, *, seed: int, n_sellers: int | None = None, episodes: int = 1,
             nash_players: Sequence[int] | None = None, nash_conv: bool = True,
             nash_method: str = "grid") -> dict[str, float]:
    """Metrics of a joint policy on ``episodes`` episodes (means over them): prices $/kWh, welfare
    and profits $/episode, markups, Lerner, HHI, ``nash_conv`` $/step."""
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
        _, lam = zip(*[competitive_joint_action(c, cfg) for c in tr.ctxs])
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
    from .stats import group_rows

    out = []
    for d, rs in group_rows(rows, keys):
        d["n_seeds"] = len(rs)
        for m in metrics:
            d[m], d[m + "_ci"] = mean_ci([r[m] for r in rs if m in r])
        out.append(d)
    return out
