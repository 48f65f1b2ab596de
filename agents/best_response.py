"""Stage-game best responses on the env's own market pipeline, and a myopic best-response agent.

Deviations are evaluated with ``p2penv.market.pipeline.run_step`` on a batch of joint actions
(agent i's action replaced by every point of an action grid, the others fixed), so the market is
never re-implemented. ``p2penv.diagnostics.nash`` (when present) is used by
``MyopicBestResponse(use_diagnostics=True)``; the grid functions here are the fallback and what the
experiments use for NashConv on a fixed, documented grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p2penv.market.pipeline import run_step


def action_grid(n_price: int = 21, n_dispatch: int = 11) -> np.ndarray:
    """(n_price * n_dispatch, 2) grid over [-1, 1]^2 of (price, dispatch) actions."""
    if n_price < 2 or n_dispatch < 1:
        raise ValueError(f"n_price/n_dispatch: need >= 2 and >= 1, got {n_price}, {n_dispatch}")
    p = np.linspace(-1.0, 1.0, n_price)
    d = np.linspace(-1.0, 1.0, n_dispatch) if n_dispatch > 1 else np.ones(1)
    return np.stack(np.meshgrid(p, d, indexing="ij"), -1).reshape(-1, 2)


def deviation_rewards(ctx, rules, joint: np.ndarray, grid: np.ndarray, players=None) -> np.ndarray:
    """(len(players), K) $ reward of player i when it alone plays grid[k] against ``joint`` (N, 2)."""
    joint = np.asarray(joint, dtype=np.float64)
    n = joint.shape[0]
    players = np.arange(n) if players is None else np.asarray(players, dtype=int)
    k = grid.shape[0]
    batch = np.broadcast_to(joint, (players.size, k, n, 2)).copy()
    rows = np.arange(players.size)
    batch[rows, :, players, :] = grid[None, :, :]
    rew = run_step(batch, ctx, rules).settlement.reward  # (P, K, N)
    return rew[rows, :, players]


@dataclass(frozen=True)
class StageGap:
    """Unilateral gains: ``gains`` (N,) $ (0 for players not examined), ``nash_conv`` = their sum,
    ``best_actions`` (N, 2) best grid action (or the current one when no gain)."""

    gains: np.ndarray
    nash_conv: float
    best_actions: np.ndarray


def _best_exact(ctx, rules, joint, players, n_grid: int):
    """(P, 2) actions and (P,) rewards of p2penv.diagnostics.nash.best_response (exact prices)."""
    nash = _diagnostics_nash()
    if nash is None:
        raise ValueError("method: 'exact' needs p2penv.diagnostics.nash, which is not available")
    res = [nash.best_response(int(i), joint, ctx, rules, n_grid=n_grid) for i in players]
    return np.array([r[0] for r in res]).reshape(-1, 2), np.array([r[1] for r in res])


def stage_gap(ctx, rules, joint, grid=None, players=None, method: str = "grid", n_grid: int = 41) -> StageGap:
    """NashConv of a joint action in the stage game of ``ctx``/``rules`` over ``players``.

    ``method="grid"``: best of the action grid; ``"exact"``: the diagnostics' best response
    (price breakpoints + dispatch grid of ``n_grid`` points + Brent)."""
    if method not in ("grid", "exact"):
        raise ValueError(f"method: expected 'grid' or 'exact', got {method!r}")
    joint = np.asarray(joint, dtype=np.float64)
    n = joint.shape[0]
    pl = np.arange(n) if players is None else np.asarray(players, dtype=int)
    cur = run_step(joint, ctx, rules).settlement.reward
    if method == "exact":
        cand, best = _best_exact(ctx, rules, joint, pl, n_grid)
    else:
        grid = action_grid() if grid is None else grid
        dev = deviation_rewards(ctx, rules, joint, grid, pl)
        j = dev.argmax(1)
        best, cand = dev[np.arange(pl.size), j], grid[j]
    gains = np.zeros(n)
    gains[pl] = np.maximum(best - cur[pl], 0.0)
    acts = joint.copy()
    better = best > cur[pl]
    acts[pl[better]] = cand[better]
    return StageGap(gains, float(gains.sum()), acts)


@dataclass(frozen=True)
class IBRResult:
    """Iterated best response: ``profile`` (N, 2), ``nash_conv`` per sweep (start included) $,
    ``converged`` (NashConv <= tol), ``iterations`` sweeps run."""

    profile: np.ndarray
    nash_conv: np.ndarray
    converged: bool
    iterations: int


def iterated_best_response(ctx, rules, init, grid=None, players=None, *, max_iter: int = 30,
                           tol: float = 1e-9, method: str = "grid", n_grid: int = 41) -> IBRResult:
    """Gauss-Seidel best-response dynamics on the grid; keeps the profile with the lowest NashConv
    (dynamics in auctions can cycle, so the result is the best profile found, flagged converged only
    when its NashConv is below ``tol``)."""
    grid = action_grid() if grid is None else grid
    prof = np.array(init, dtype=np.float64)
    n = prof.shape[0]
    pl = np.arange(n) if players is None else np.asarray(players, dtype=int)
    hist = [stage_gap(ctx, rules, prof, grid, pl, method, n_grid).nash_conv]
    best_prof, best_nc = prof.copy(), hist[0]
    it = 0
    while it < max_iter and best_nc > tol:
        it += 1
        for i in pl:
            cur = run_step(prof, ctx, rules).settlement.reward[i]
            if method == "exact":
                a, r = _best_exact(ctx, rules, prof, [i], n_grid)
                a, r = a[0], r[0]
            else:
                dev = deviation_rewards(ctx, rules, prof, grid, [i])[0]
                a, r = grid[int(dev.argmax())], dev.max()
            if r > cur + 1e-12:
                prof[i] = a
        nc = stage_gap(ctx, rules, prof, grid, pl, method, n_grid).nash_conv
        hist.append(nc)
        if nc < best_nc:
            best_prof, best_nc = prof.copy(), nc
    return IBRResult(best_prof, np.array(hist), bool(best_nc <= tol), it)


def _diagnostics_nash():
    try:
        from p2penv.diagnostics import nash  # noqa: PLC0415
    except ImportError:
        return None
    return nash if hasattr(nash, "stage_nash_gap") and hasattr(nash, "best_response") else None


class MyopicBestResponse:
    """Joint policy: each player in ``players`` (default all) plays its stage-game best response to
    the others' previous-step actions (Cournot-style adjustment); the first step responds to the
    ``base`` agent's actions (default truthful). Other players follow ``base``.

    Uses ``p2penv.diagnostics.nash.stage_nash_gap`` when available and ``use_diagnostics``, else
    the grid of ``action_grid(n_price, n_dispatch)``.
    """

    def __init__(self, config, base=None, players=None, n_price: int = 21, n_dispatch: int = 11,
                 use_diagnostics: bool = False):
        from .baselines import TruthfulAgent

        self.base = base if base is not None else TruthfulAgent(config)
        self.players = players
        self.grid = action_grid(n_price, n_dispatch)
        self.use_diagnostics = use_diagnostics
        self._prev = None

    def reset(self) -> None:
        self._prev = None

    def __call__(self, env, obs: dict) -> dict:
        names = list(env.agents)
        base = self.base.act_batch(np.stack([obs[a] for a in names])).astype(np.float64)
        ref = base if self._prev is None else self._prev
        nash = _diagnostics_nash() if self.use_diagnostics else None
        if nash is not None and self.players is None:
            best = np.asarray(nash.stage_nash_gap(ref, env.ctx, env.rules).best_actions, dtype=np.float64)
        else:
            best = stage_gap(env.ctx, env.rules, ref, self.grid, self.players).best_actions
        acts = best if self.players is None else np.where(np.isin(np.arange(len(names)), self.players)[:, None],
                                                          best, base)
        self._prev = acts
        return {a: acts[i].astype(np.float32) for i, a in enumerate(names)}
