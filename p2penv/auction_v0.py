"""``auction_v0``: P2P energy market cleared by a double auction each step.

PettingZoo module convention: ``parallel_env(**config)`` (native), ``env(**config)`` (AEC through
PettingZoo's conversion with order enforcing), ``raw_env(**config)`` (AEC, no wrappers).
Options are the fields of ``p2penv.envs.config.MarketConfig`` plus ``render_mode``.
The spec is the docstring of ``AuctionEnv``.
"""
from __future__ import annotations

from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

from .envs.auction_env import AuctionEnv
from .envs.config import MarketConfig

__all__ = ["AuctionEnv", "MarketConfig", "env", "parallel_env", "raw_env"]


def parallel_env(**kwargs) -> AuctionEnv:
    """The native parallel environment."""
    return AuctionEnv(**kwargs)


def raw_env(**kwargs):
    """AEC view without wrappers."""
    return parallel_to_aec_wrapper(AuctionEnv(**kwargs))


def env(**kwargs):
    """AEC view with PettingZoo's order-enforcing wrapper."""
    return parallel_to_aec(AuctionEnv(**kwargs))
