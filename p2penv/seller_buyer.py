"""Env factories of the sellers-and-buyers market (``p2penv.generators.sellers_buyers.SellerBuyerMarket``).

They sit next to ``auction_v0`` (the layer above ``p2penv.envs``), not with the generator in
``p2penv.generators``: a generator module never imports the env that consumes it. The learners of these
markets are ``p2penv.generators.sellers_buyers.sellers(n_sellers)`` (re-exported here).
"""
from __future__ import annotations

from typing import Any, Callable

from . import auction_v0
from .generators.sellers_buyers import SellerBuyerMarket, sellers

__all__ = ["SellerBuyerMarket", "seller_buyer_env_fn", "seller_buyer_vector_fn", "sellers"]


def seller_buyer_env_fn(n_sellers: int, n_buyers: int = 3, seed: int = 0, mechanism: str = "uniform",
                        max_cycles: int = 24, rule: str = "walrasian", **gen) -> Callable[[], Any]:
    """Factory of auction_v0 envs on ``SellerBuyerMarket(n_sellers, **gen)`` with ``n_buyers`` buyers;
    learners are ``sellers(n_sellers)``. ``max_cycles`` steps per episode.

    ``rule="walrasian"`` by default: with buyers bidding retail and excess capacity, the
    marginal-pair midpoint would pay even truthful sellers half the spread up to retail, a rent
    that has nothing to do with market power; the Walrasian interval is bounded by the first
    rejected ask, so truthful asks clear at the competitive price and any markup is strategic.
    """
    g = SellerBuyerMarket(n_sellers, **gen)
    return lambda: auction_v0.parallel_env(n_prosumers=n_sellers + n_buyers, generator=g, seed=seed,
                                           mechanism=mechanism, max_cycles=max_cycles, rule=rule)


def seller_buyer_vector_fn(n_sellers: int, n_buyers: int = 3, mechanism: str = "uniform", max_cycles: int = 24,
                           rule: str = "walrasian", **gen) -> Callable[[int, int], Any]:
    """``env_fn(num_envs, seed)`` of the same market as ``seller_buyer_env_fn`` as a vector env
    (``auction_v0.vector_env``; market i equals ``seller_buyer_env_fn(..., seed=seed + i)()``), the form
    ``p2penv.agents.vector_ppo.train_vector_ppo`` takes."""
    g = SellerBuyerMarket(n_sellers, **gen)
    return lambda num_envs, seed: auction_v0.vector_env(num_envs, n_prosumers=n_sellers + n_buyers, generator=g,
                                                        seed=seed, mechanism=mechanism, max_cycles=max_cycles,
                                                        rule=rule)
