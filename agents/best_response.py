"""Myopic best-response agent.

Best responses, NashConv and best-response dynamics live in ``p2penv.diagnostics.nash`` (one
implementation, evaluated on the env's own ``run_step``): ``stage_nash_conv``, ``env_nash_conv``,
``iterated_best_response``, ``action_grid``. This agent uses ``stage_nash_conv`` with
``method="grid"`` on ``action_grid(n_price, n_dispatch)`` (21 prices x 11 dispatch levels by
default) for speed, or ``method="exact"`` on request.
"""
from __future__ import annotations

import numpy as np

from p2penv.diagnostics.nash import action_grid, stage_nash_conv

__all__ = ["MyopicBestResponse"]


class MyopicBestResponse:
    """Joint policy: each player in ``players`` (default all) plays its stage-game best response to
    the others' previous-step actions (Cournot-style adjustment); the first step responds to the
    ``base`` agent's actions (default truthful). Other players follow ``base``.

    Best responses from ``p2penv.diagnostics.nash.stage_nash_conv``: exact (dispatch grid of
    ``n_grid`` points) when ``use_diagnostics`` (the name is kept for compatibility), else on the
    grid ``action_grid(n_price, n_dispatch)``.
    """

    def __init__(self, config, base=None, players=None, n_price: int = 21, n_dispatch: int = 11,
                 use_diagnostics: bool = False, n_grid: int = 41):
        from .baselines import TruthfulAgent

        self.base = base if base is not None else TruthfulAgent(config)
        self.players = players
        self.grid = action_grid(n_price, n_dispatch)
        self.use_diagnostics = use_diagnostics
        self.n_grid = n_grid
        self._prev = None

    def reset(self) -> None:
        self._prev = None

    def __call__(self, env, obs: dict) -> dict:
        names = list(env.agents)
        base = self.base.act_batch(np.stack([obs[a] for a in names])).astype(np.float64)
        ref = base if self._prev is None else self._prev
        method = "exact" if self.use_diagnostics else "grid"
        best = stage_nash_conv(ref, env.ctx, env.rules, players=self.players, method=method, grid=self.grid,
                               n_grid=self.n_grid).best_actions
        acts = best if self.players is None else np.where(np.isin(np.arange(len(names)), self.players)[:, None],
                                                          best, base)
        self._prev = acts
        return {a: acts[i].astype(np.float32) for i, a in enumerate(names)}
