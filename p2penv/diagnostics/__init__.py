"""Diagnostics: market power (spec S9), fairness (spec S10), mechanism audits (spec S7), reference games
and equilibrium search on them (spec S8, ``continuous_*``), the environments' stage-game NashConv and
best-response dynamics (``nash``: ``stage_nash_conv``, ``env_nash_conv``, ``trajectory_nash_conv``,
``iterated_best_response``), the exact DLMP best response (``dlmp_best_response``, on the bilevel MILP of
``bilevel``), episode summaries (``episode``) and frozen profiles with their evaluation
(``exploitability``; the learned best responder that uses them is ``p2penv.agents.exploitability``).
Read-only: every diagnostic calls the market's own clearing and settlement code. Names: docs/glossary.md.
See docs/diagnostics.md. The names before issue 19 (``stage_nash_gap``, ``env_nash_gap``, ``NashGap``) remain
as aliases deprecated since 0.1.0."""
from __future__ import annotations


from ..aliases import deprecated_aliases
from .audit import MechanismAudit, audit_mechanism
from .equilibrium import (
    EquilibriumResult,
    continuous_best_response,
    continuous_best_response_dynamics,
    continuous_fictitious_play,
    maximise_1d,
    nash_conv,
)
from .dlmp_best_response import DlmpBestResponse, PiecewiseLinear, dlmp_best_response, grid_best_response
from .episode import EpisodeSummary, stack_infos, summarize_episode
from .fairness import (
    EnvyReport,
    FairnessSummary,
    envy,
    episode_fairness,
    jain_index,
    max_min,
    proportional_fairness,
    quasilinear_utilities,
)
from .market_power import (
    MarketPowerEpisode,
    MarketPowerStep,
    aggregate_episode,
    competitive_benchmark,
    cournot_lerner,
    hhi,
    lerner,
    lerner_mean,
    lerner_weighted,
    market_power_step,
    market_shares,
    pivotal,
    price_markup,
    residual_supply_index,
    welfare_loss,
)
from .nash import StageNashConv, env_nash_conv, iterated_best_response, stage_nash_conv, trajectory_nash_conv
from .reference_games import (
    ChatterjeeSamuelson,
    ContinuousGame,
    Cournot,
    CournotEquilibrium,
    LinearSFE,
    LinearStrategy,
)

__all__ = [
    "DlmpBestResponse", "EpisodeSummary", "PiecewiseLinear", "StageNashConv", "dlmp_best_response", "env_nash_conv",
    "grid_best_response", "stack_infos", "stage_nash_conv", "summarize_episode", "trajectory_nash_conv",
    "ChatterjeeSamuelson", "ContinuousGame", "Cournot", "CournotEquilibrium", "EnvyReport",
    "EquilibriumResult", "FairnessSummary", "LinearSFE", "LinearStrategy", "MarketPowerEpisode",
    "MarketPowerStep", "MechanismAudit", "aggregate_episode", "audit_mechanism", "competitive_benchmark",
    "continuous_best_response", "continuous_best_response_dynamics", "continuous_fictitious_play",
    "cournot_lerner", "envy", "episode_fairness", "hhi", "iterated_best_response", "jain_index", "lerner",
    "lerner_mean", "lerner_weighted",
    "market_power_step", "market_shares", "max_min", "maximise_1d", "nash_conv", "pivotal",
    "price_markup", "proportional_fairness", "quasilinear_utilities", "residual_supply_index",
    "welfare_loss",
]

# The names before issue 19 (deprecated aliases, docs/glossary.md): old name -> new name.
_RENAMED = {
    "stage_nash_gap": "stage_nash_conv",
    "env_nash_gap": "env_nash_conv",
    "NashGap": "StageNashConv",
}
__getattr__ = deprecated_aliases(__name__, _RENAMED, globals())
