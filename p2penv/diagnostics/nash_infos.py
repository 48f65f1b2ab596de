"""The stage-game NashConv of every step in the infos: a wrapper, so the environments never import diagnostics.

``NashConvInfos(env)`` wraps an ``auction_v0`` parallel env (any ``info_level``). It steps the env (which
validates the actions) and evaluates the joint action in the context the step was taken in with
``nash.stage_nash_conv`` (as ``nash.env_nash_conv`` does before a step: every agent's exact best unilateral
deviation in the step's stage game, evaluated through the market's own ``run_step``), and adds

* ``infos[agent]["nash_gain"]``: what the agent could have gained by deviating alone, $ (>= 0);
* ``infos[agent]["market"]["nash_conv"]``: the sum of the gains, $ (the market dict is shared by all agents).

``NashConvVectorInfos(vec)`` does the same for ``auction_v0.vector_env``: ``infos["nash_gain"]`` ``(E, N)`` $
and ``infos["market"]["nash_conv"]`` ``(E,)`` $, one stage game per market.

This replaces the env's former ``nash_gap_in_infos=True`` flag (now a ValueError pointing here). It costs one
deviation analysis per step and agent (milliseconds): for diagnostics and evaluation runs, not for training.
Keyword arguments go to ``nash.stage_nash_conv`` (``method="grid"``, ``players=...``).

``NashGapInfos`` and ``NashGapVectorInfos``, the names before issue 19, remain as aliases deprecated since 0.1.0
(a ``DeprecationWarning`` on use; docs/glossary.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

from ..aliases import deprecated_aliases
from .nash import stage_nash_conv

__all__ = ["NashConvInfos", "NashConvVectorInfos"]

# The names before issue 19 (deprecated aliases, docs/glossary.md): old name -> new name.
_RENAMED = {
    "NashGapInfos": "NashConvInfos",
    "NashGapVectorInfos": "NashConvVectorInfos",
}
__getattr__ = deprecated_aliases(__name__, _RENAMED, globals())


def _check_auction(env: Any, what: str) -> None:
    name = getattr(env, "metadata", {}).get("name")
    if name != "auction_v0":
        raise ValueError(f"{what}: the stage-game NashConv is defined for auction_v0 (one book per market; the "
                         f"DLMP LP couples the agents through the feeder), got {name!r}")


class NashConvInfos(BaseParallelWrapper):
    """``auction_v0`` parallel env whose step infos carry ``nash_gain`` ($ per agent) and
    ``market["nash_conv"]`` ($); everything else passes through unchanged (see the module docstring)."""

    def __init__(self, env, **stage_options: Any):
        _check_auction(env.unwrapped, "NashConvInfos")
        super().__init__(env)
        self.stage_options = stage_options

    def step(self, actions: dict):
        base = self.env.unwrapped
        agents = list(base.agents)
        ctx = base.ctx if agents else None  # the context this step is taken in
        obs, rewards, terminations, truncations, infos = self.env.step(actions)  # validates the actions
        joint = np.stack([np.asarray(actions[a], dtype=np.float64) for a in agents])
        snc = stage_nash_conv(joint, ctx, base.rules, **self.stage_options)
        infos[agents[0]]["market"]["nash_conv"] = snc.nash_conv
        for a, g in zip(agents, snc.gains.tolist()):
            infos[a]["nash_gain"] = g
        return obs, rewards, terminations, truncations, infos


class NashConvVectorInfos:
    """``auction_v0.vector_env`` whose step infos carry ``nash_gain`` ``(E, N)`` $ and ``market["nash_conv"]``
    ``(E,)`` $; every other attribute is the wrapped vector env's."""

    def __init__(self, vec, **stage_options: Any):
        _check_auction(vec, "NashConvVectorInfos")
        self.vec = vec
        self.stage_options = stage_options

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.vec, name)

    def reset(self, seed: int | None = None, options: dict | None = None):
        return self.vec.reset(seed=seed, options=options)

    def step(self, actions):
        vec = self.vec
        ctx = vec.core.ctx  # the context this step is taken in (None before a reset: the step raises)
        obs, rewards, terminations, truncations, infos = vec.step(actions)  # validates the actions
        if "market" in infos:  # not the reset-only step of NEXT_STEP autoreset
            joint = np.asarray(actions, dtype=np.float64)
            per_market = [stage_nash_conv(joint[e], ctx.market(e), vec.core.rules, **self.stage_options)
                          for e in range(vec.num_envs)]
            infos["nash_gain"] = np.stack([g.gains for g in per_market])
            infos["market"]["nash_conv"] = np.array([g.nash_conv for g in per_market])
        return obs, rewards, terminations, truncations, infos
