"""Joint policies used only by the experiments (the agents live in ``agents``)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from p2penv.diagnostics.nash import action_grid, iterated_best_response


class NashPolicy:
    """Stage-game Nash profile by grid iterated best response per step (from the competitive
    action; ``players`` best-respond, the rest keep the competitive action). Cached per context."""

    def __init__(self, players: Sequence[int] | None = None, grid=None, max_iter: int = 30, method: str = "grid"):
        self.players, self.grid, self.max_iter = players, grid if grid is not None else action_grid(), max_iter
        self.method = method
        self.cache: dict[bytes, np.ndarray] = {}
        self.last_nash_conv = []

    def __call__(self, env, obs: dict) -> dict:
        from p2penv.agents.baselines import competitive_joint_action

        ctx = env.ctx
        key = b"".join(np.ascontiguousarray(x).tobytes() for x in (ctx.demand_kw, ctx.lo_kw, ctx.hi_kw))
        if key not in self.cache:
            init, _ = competitive_joint_action(ctx, env.config)
            res = iterated_best_response(ctx, env.rules, init, grid=self.grid, players=self.players,
                                         max_iter=self.max_iter, method=self.method, tol=1e-9, n_grid=41)
            self.cache[key] = res.profile
            self.last_nash_conv.append(res.nash_conv[-1])
        prof = self.cache[key]
        # float64 on purpose: equilibrium asks often tie another order's price exactly, and float32
        # rounding of the normalised action (~1e-8) would break the tie and change the outcome
        return {a: prof[i].copy() for i, a in enumerate(env.agents)}
