"""``auction_v0``: P2P energy market cleared by a double auction each step.

PettingZoo module convention: ``parallel_env(**config)`` (native), ``env(**config)`` (AEC through
PettingZoo's conversion with order enforcing), ``raw_env(**config)`` (AEC, no wrappers), plus
``vector_env(num_envs, **config)``: E markets stepped as arrays ``(E, N, ...)``
(``p2penv.envs.auction_vector``). The single env is the vector core with E = 1.
Options are the fields of ``p2penv.envs.config.MarketConfig`` plus ``render_mode``.
The spec is the docstring of ``AuctionEnv``.
"""
from __future__ import annotations

from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

from .envs.auction_env import AuctionEnv
from .envs.auction_vector import AuctionVectorEnv
from .envs.config import MarketConfig

__all__ = ["AuctionEnv", "AuctionVectorEnv", "MarketConfig", "env", "parallel_env", "raw_env", "vector_env"]


def parallel_env(**kwargs) -> AuctionEnv:
    """The native parallel environment."""
    return AuctionEnv(**kwargs)


def raw_env(**kwargs):
    """AEC view without wrappers."""
    return parallel_to_aec_wrapper(AuctionEnv(**kwargs))


def env(**kwargs):
    """AEC view with PettingZoo's order-enforcing wrapper."""
    return parallel_to_aec(AuctionEnv(**kwargs))


def vector_env(num_envs: int, **kwargs) -> AuctionVectorEnv:
    """``num_envs`` markets of one configuration stepped as arrays; ``autoreset_mode=`` as in Gymnasium."""
    return AuctionVectorEnv(num_envs, **kwargs)
