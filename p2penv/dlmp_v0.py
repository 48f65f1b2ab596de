"""``dlmp_v0``: P2P energy market on a radial feeder, settled at distribution LMPs.

PettingZoo module convention: ``parallel_env(**config)`` (native), ``env(**config)`` (AEC through
PettingZoo's conversion with order enforcing), ``raw_env(**config)`` (AEC, no wrappers), plus
``vector_env(num_envs, **config)``: E feeders stepped as arrays (one warm-started LP each).
Options are the fields of ``p2penv.envs.dlmp_config.DlmpConfig`` plus ``render_mode``; feeder settings
(``scenario=``) are in ``p2penv.envs.dlmp_config.FEEDER_SETTINGS``. The spec is the docstring of ``DlmpEnv``.
"""
from __future__ import annotations

import inspect

from gymnasium.vector import AutoresetMode
from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

from .envs.dlmp_config import FEEDER_SETTINGS, DlmpConfig, FeederSetting
from .envs.dlmp_env import DlmpEnv, DlmpVectorEnv
from .envs.options import document

__all__ = ["FEEDER_SETTINGS", "DlmpConfig", "DlmpEnv", "DlmpVectorEnv", "FeederSetting", "env", "parallel_env",
           "raw_env", "vector_env"]


def parallel_env(**options) -> DlmpEnv:
    return DlmpEnv(**options)


def raw_env(**options):
    return parallel_to_aec_wrapper(DlmpEnv(**options))


def env(**options):
    return parallel_to_aec(DlmpEnv(**options))


def vector_env(num_envs: int, **options) -> DlmpVectorEnv:
    return DlmpVectorEnv(num_envs, **options)


_KW = inspect.Parameter.KEYWORD_ONLY
_CONFIG = inspect.Parameter("config", _KW, default=None, annotation=DlmpConfig | None)
_RENDER = (inspect.Parameter("render_mode", _KW, default=None, annotation=str | None),
           'None, "human" (prints the bus table), "ansi" (a bus table per step) or "rgb_array" (the feeder, '
           "coloured by DLMP and voltage)")
_AUTORESET = (inspect.Parameter("autoreset_mode", _KW, default=AutoresetMode.SAME_STEP, annotation=AutoresetMode | str),
              "SAME_STEP (next episode's first obs, the final one in infos['final_obs']), NEXT_STEP or DISABLED")
document(parallel_env, DlmpConfig, "The native parallel environment (spec: ``DlmpEnv``).", (_CONFIG,), (_RENDER,),
         DlmpEnv)
document(raw_env, DlmpConfig, "AEC view without wrappers.", (_CONFIG,), (_RENDER,))
document(env, DlmpConfig, "AEC view with PettingZoo's order-enforcing wrapper.", (_CONFIG,), (_RENDER,))
document(vector_env, DlmpConfig, "``num_envs`` feeders of one configuration stepped as arrays (one warm-started LP "
         "each); feeder e is the single env seeded ``seed + e``.",
         (inspect.Parameter("num_envs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int), _CONFIG),
         (_AUTORESET,), DlmpVectorEnv)
