"""Myopic best-response agent, and the experiments' defaults for the stage-game diagnostics.

Best responses and NashConv live in ``p2penv.diagnostics.nash`` (one implementation, evaluated on
the env's own ``run_step``); the experiments use its ``method="grid"`` on the fixed, documented
``action_grid()`` (21 prices x 11 dispatch levels) for speed, and ``method="exact"`` on request.
"""
from __future__ import annotations

import numpy as np

from p2penv.diagnostics import nash
from p2penv.diagnostics.equilibrium import EquilibriumResult
from p2penv.diagnostics.nash import NashGap, action_grid, deviation_rewards, stage_nash_gap

__all__ = ["MyopicBestResponse", "action_grid", "deviation_rewards", "iterated_best_response", "stage_gap"]


def stage_gap(ctx, rules, joint, grid=None, players=None, method: str = "grid", n_grid: int = 41) -> NashGap:
    """NashConv of ``joint`` in the stage game over ``players``: ``p2penv.diagnostics.nash`` with
    the experiments' default (the documented ``action_grid()``; ``method="exact"`` for the exact one)."""
    return stage_nash_gap(joint, ctx, rules, players=players, method=method, grid=grid, n_grid=n_grid)


def iterated_best_response(ctx, rules, init, grid=None, players=None, *, max_iter: int = 30,
                           tol: float = 1e-9, method: str = "grid", n_grid: int = 41) -> EquilibriumResult:
    """``p2penv.diagnostics.nash.iterated_best_response`` with the experiments' grid default."""
    return nash.iterated_best_response(ctx, rules, init, players=players, method=method, grid=grid,
                                       max_iter=max_iter, tol=tol, n_grid=n_grid)


class MyopicBestResponse:
    """Joint policy: each player in ``players`` (default all) plays its stage-game best response to
    the others' previous-step actions (Cournot-style adjustment); the first step responds to the
    ``base`` agent's actions (default truthful). Other players follow ``base``.

    Best responses from ``p2penv.diagnostics.nash.stage_nash_gap``: exact when ``use_diagnostics``
    (the name is kept for compatibility), else on the grid ``action_grid(n_price, n_dispatch)``.
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
        method = "exact" if self.use_diagnostics else "grid"
        best = stage_gap(env.ctx, env.rules, ref, self.grid, self.players, method=method).best_actions
        acts = best if self.players is None else np.where(np.isin(np.arange(len(names)), self.players)[:, None],
                                                          best, base)
        self._prev = acts
        return {a: acts[i].astype(np.float32) for i, a in enumerate(names)}
