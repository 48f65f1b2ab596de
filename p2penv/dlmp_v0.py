"""``dlmp_v0``: P2P energy market on a radial feeder, settled at distribution LMPs.

PettingZoo module convention: ``parallel_env(**config)`` (native), ``env(**config)`` (AEC through
PettingZoo's conversion with order enforcing), ``raw_env(**config)`` (AEC, no wrappers), plus
``vector_env(num_envs, **config)``: E feeders stepped as arrays (one warm-started LP each).
Options are the fields of ``p2penv.envs.dlmp_config.DlmpConfig`` plus ``render_mode``; scenarios are
in ``p2penv.envs.dlmp_config.SCENARIOS``. The spec is the docstring of ``DlmpEnv``.
"""
from __future__ import annotations

from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

from .envs.dlmp_config import SCENARIOS, DlmpConfig, Scenario
from .envs.dlmp_env import DlmpEnv, DlmpVectorEnv

__all__ = ["SCENARIOS", "DlmpConfig", "DlmpEnv", "DlmpVectorEnv", "Scenario", "env", "parallel_env", "raw_env",
           "vector_env"]


def parallel_env(**kwargs) -> DlmpEnv:
    """The native parallel environment."""
    return DlmpEnv(**kwargs)


def raw_env(**kwargs):
    """AEC view without wrappers."""
    return parallel_to_aec_wrapper(DlmpEnv(**kwargs))


def env(**kwargs):
    """AEC view with PettingZoo's order-enforcing wrapper."""
    return parallel_to_aec(DlmpEnv(**kwargs))


def vector_env(num_envs: int, **kwargs) -> DlmpVectorEnv:
    """``num_envs`` feeders of one configuration stepped as arrays; ``autoreset_mode=`` as in Gymnasium."""
    return DlmpVectorEnv(num_envs, **kwargs)
