"""``auction_v0``: P2P energy market cleared by a double auction each step.

PettingZoo module convention: ``parallel_env(**config)`` (native), ``env(**config)`` (AEC through
PettingZoo's conversion with order enforcing), ``raw_env(**config)`` (AEC, no wrappers), plus
``vector_env(num_envs, **config)``: E markets stepped as arrays ``(E, N, ...)``
(``p2penv.envs.auction_vector``). The single env is the vector core with E = 1.
Options are the fields of ``p2penv.envs.config.MarketConfig`` plus ``render_mode`` and ``info_level``
(``"full"``/``"lean"``: how many per-agent info fields a step returns; not part of the scenario, so it changes
neither the trajectory nor a registry id).
The spec is the docstring of ``AuctionEnv``.
"""
from __future__ import annotations

import inspect

from gymnasium.vector import AutoresetMode
from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

from .envs.auction_env import AuctionEnv
from .envs.auction_vector import AuctionVectorEnv
from .envs.config import MarketConfig
from .envs.options import document

__all__ = ["AuctionEnv", "AuctionVectorEnv", "MarketConfig", "env", "parallel_env", "raw_env", "vector_env"]


def parallel_env(**options) -> AuctionEnv:
    return AuctionEnv(**options)


def raw_env(**options):
    return parallel_to_aec_wrapper(AuctionEnv(**options))


def env(**options):
    return parallel_to_aec(AuctionEnv(**options))


def vector_env(num_envs: int, **options) -> AuctionVectorEnv:
    return AuctionVectorEnv(num_envs, **options)


_KW = inspect.Parameter.KEYWORD_ONLY
_CONFIG = inspect.Parameter("config", _KW, default=None, annotation=MarketConfig | None)
_RENDER = (inspect.Parameter("render_mode", _KW, default=None, annotation=str | None),
           'None, "human" (prints the ansi table), "ansi" (a table per step) or "rgb_array" (supply/demand curves)')
_INFO_LEVEL = (inspect.Parameter("info_level", _KW, default="full", annotation=str),
               '"full" (every per-agent field of docs/fields.md) or "lean" (matched_kwh, market_cash $, cost $ and '
               'the market dict; what the trainers use); either way env.full_infos() gives every field of the last '
               'step. A construction option, not a scenario field: same trajectories, same registry ids')
_AUTORESET = (inspect.Parameter("autoreset_mode", _KW, default=AutoresetMode.SAME_STEP, annotation=AutoresetMode | str),
              "SAME_STEP (next episode's first obs, the final one in infos['final_obs']), NEXT_STEP or DISABLED")
document(parallel_env, MarketConfig, "The native parallel environment (spec: ``AuctionEnv``).", (_CONFIG,),
         (_RENDER, _INFO_LEVEL), AuctionEnv)
document(raw_env, MarketConfig, "AEC view without wrappers.", (_CONFIG,), (_RENDER, _INFO_LEVEL))
document(env, MarketConfig, "AEC view with PettingZoo's order-enforcing wrapper.", (_CONFIG,), (_RENDER, _INFO_LEVEL))
document(vector_env, MarketConfig, "``num_envs`` markets of one configuration stepped as arrays ``(E, N, ...)``; "
         "market e is the single env seeded ``seed + e``.",
         (inspect.Parameter("num_envs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int), _CONFIG),
         (_AUTORESET, _INFO_LEVEL), AuctionVectorEnv)
