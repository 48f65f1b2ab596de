"""Parallel PettingZoo environment behind ``p2penv.dlmp_v0`` (see the class docstring)."""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from ..market.pipeline import StepContext, StepOutcome
from ..network.dlmp import DlmpClearing, DlmpMarket
from ..network.lindistflow import LossModel, NetworkState
from .auction_env import AuctionEnv
from .auction_vector import AuctionVectorEnv
from .dlmp_config import DlmpConfig
from .dlmp_core import DlmpCore
from .feeder_viewer import bus_table, feeder_rgb, tree_layout
from .fields import DLMP_OBS_FIELDS, OBS_FIELDS, field_table


def _config(config: DlmpConfig | None, kwargs: dict) -> DlmpConfig:
    if config is not None and kwargs:
        raise ValueError("give either a DlmpConfig or keyword options, not both")
    cfg = config if config is not None else DlmpConfig.from_kwargs(**kwargs)
    if not isinstance(cfg, DlmpConfig):
        raise ValueError(f"config: expected a DlmpConfig, got {type(cfg).__name__}")
    return cfg


class DlmpEnv(AuctionEnv):
    """P2P energy market on a radial feeder, settled at distribution LMPs: ``p2penv.dlmp_v0``.

    **Agents** ``prosumer_0 .. prosumer_{N-1}`` as in ``auction_v0`` (same generator), each at a bus of
    the scenario's feeder (``DlmpConfig.agent_buses``; default one per load bus: 32 on ``ieee33``).

    **Action** ``Box(-1, 1, (2,), float32)`` ``(price, dispatch)`` with the order semantics of
    ``auction_v0``: net position ``q = eta p - d`` -> one sell/buy order of ``|q| dt`` kWh at ``price``.

    **Clearing**: the DLMP LP of ``p2penv.network.dlmp.DlmpMarket`` (its last optimal basis kept and
    certified each step, HiGHS when that fails; a tie is re-solved cold, so no result depends on the
    steps before: ``p2penv.network.basis_cache``). The
    substation imports/exports at lambda_0 (``wholesale_price``); the scenario's fixed loads
    (``load_scale`` x the case's base loads, kW and kvar, constant over the episode; the agents come on
    top of them) are inelastic and enter the nodal balance. A bid clears when it is at least the DLMP
    of its bus, an ask when it is at most it; ``unit_price`` = the DLMP at the agent's bus.
    Line ratings and voltage limits (LinDistFlow) enter the LP; when they cannot be met the LP's
    penalised slacks (``penalty`` $/kWh) keep it feasible and ``market["lp_violated"]`` says so.
    Losses are linearised around the previous step's realised operating point (at reset: the fixed
    loads plus every agent at its initial dispatch); ``loss_linearisation="fixed"``: once, at the fixed
    loads; ``"none"``: lossless.

    **Settlement and reward** ($ per step): matched kWh x own DLMP; unmatched volume goes to the
    backstop (retail / feed-in tariff) or is curtailed, as in ``auction_v0``; minus the DER cost.

    **Realised network** (``infos[...]["network"]``, ``state()``, ``render``): the energy flows whether
    or not it cleared (backstop energy is physical), so the realised state is LinDistFlow at the fixed
    loads plus every agent's physical net position. Its voltages and line loadings can break limits that
    the LP respected (e.g. a bid shed by congestion still consumes at retail): ``network["violated"]``.

    **Observation** ``Box(-1, 1, (17,), float32)``: the 12 ``auction_v0`` fields (``fields.OBS_FIELDS``;
    the last price is the substation's energy price) plus the agent's own last DLMP and its energy,
    loss, congestion and voltage components (``fields.DLMP_OBS_FIELDS``). The DLMP and energy part map [floor, cap] to
    [-1, 1] like prices; the loss, congestion and voltage parts are differences, scaled alike without
    offset (2 x / (cap - floor)); all clipped. Before the first step: lambda_0 plus its loss part at the
    reset point, no congestion or voltage part.
    ``state()``: all observations stacked, t / T, the realised bus voltages ((V - 1) / 0.2) and line
    loadings (|S| / rating - 1; unrated lines -1), clipped to [-1, 1].

    **Episode**: ``max_cycles`` steps, truncation only. ``reset(seed=s)`` also rebuilds the LP (cold
    basis) so a trajectory depends on the seed only; ``reset()`` keeps the warm basis.

    **Infos** per agent: ``fields.INFO_FIELDS`` and ``fields.DLMP_INFO_FIELDS`` (floats) plus ``"bus"`` (int), ``"market"`` (clearing
    price = energy price, volume = matched buys + sells, welfare, operator surplus, wholesale price, LP
    import and losses, unserved kW, max line / voltage slack, ``lp_violated``) and ``"network"`` (the
    realised state: import, losses, min/max V, max loading, overload, voltage violation, ``violated``;
    with ``audit_ac=True`` also pandapower's AC voltages, flows, losses and import minus the model's).

    **Render**: ``rgb_array`` the feeder as a tree, buses coloured by DLMP (top) and voltage (bottom),
    lines by loading; ``ansi`` a bus table; ``human`` prints it.

    **Version history**: v0 (0.1.0) first release.
    """

    metadata = {"name": "dlmp_v0", "render_modes": ["human", "ansi", "rgb_array"], "is_parallelizable": True}
    infos_from_fused_step = False  # _infos adds the DLMP fields

    def __init__(self, config: DlmpConfig | None = None, render_mode: str | None = None, **kwargs: Any):
        self._setup(DlmpCore(_config(config, kwargs), 1), render_mode)
        self._layout = None

    # -- views of market 0 (read-only conveniences for diagnostics, tests and agents) ------------
    @property
    def feeder(self):
        return self.core.feeder

    @property
    def buses(self) -> np.ndarray:
        return self.core.buses

    @property
    def p_fixed_kw(self) -> np.ndarray:
        return self.core.p_fixed_kw

    @property
    def q_fixed_kvar(self) -> np.ndarray:
        return self.core.q_fixed_kvar

    @property
    def market(self) -> DlmpMarket:
        """The DLMP LP of this env (its loss model is the one the next step clears with)."""
        return self.core.markets[0]

    @property
    def network(self) -> NetworkState:
        """Realised network state of the last step (at reset: the reset operating point)."""
        self._require_reset("network")
        return self.core.networks[0]

    @property
    def last_lp(self) -> DlmpClearing | None:
        lps = self.core.lps
        return None if lps is None else lps[0]

    @property
    def last_loss_model(self) -> LossModel | None:
        """The loss model the last step was cleared with."""
        return None if self.core.lps is None else self.core.last_loss_models[0]

    # -- PettingZoo edge -------------------------------------------------------------------------
    def _infos(self, out: StepOutcome, ctx: StepContext) -> dict:
        infos = super()._infos(out, ctx)
        network = {k: v[0].item() for k, v in self.core.network_columns().items()}
        for a, bus in zip(self.agents, self.buses.tolist()):
            infos[a]["bus"] = bus
            infos[a]["network"] = network
        return infos

    def render(self):
        if self.render_mode is None:
            return None
        self._require_reset("render()")
        f, net, lp = self.feeder, self.network, self.last_lp
        if lp is not None:
            dlmp = lp.dlmp
        else:  # before the first step: lambda_0 plus its loss part at the reset point
            dlmp = self.core.wholesale_price() * self.market.loss_model.mlf
        title = f"{self.metadata['name']} [{self.config.scenario}] step {self.t}"
        if self.render_mode == "rgb_array":
            if self._layout is None:
                self._layout = tree_layout(f)
            return feeder_rgb(f, self._layout, dlmp, net.voltages, net.loading, self.buses, title=title)
        text = bus_table(f, self.buses, dlmp, lp, net, title=title)
        if self.render_mode == "human":
            print(text)
            return None
        return text


DlmpEnv.__doc__ = (DlmpEnv.__doc__ or "") + "\n    **Observation fields**\n\n" + "\n".join(
    "    " + line for line in field_table(OBS_FIELDS + DLMP_OBS_FIELDS).splitlines()) + "\n"


class DlmpVectorEnv(AuctionVectorEnv):
    """E ``dlmp_v0`` markets stepped as arrays; the API of ``AuctionVectorEnv`` plus
    ``infos["network"]`` (dict of ``(E,)`` realised-network summaries). The LPs solve one per market."""

    metadata = {"name": "dlmp_v0", "autoreset_mode": AutoresetMode.SAME_STEP}
    infos_from_fused_step = False  # _infos adds the DLMP fields

    def __init__(self, num_envs: int, config: DlmpConfig | None = None, *,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP, **kwargs: Any):
        self._setup(DlmpCore(_config(config, kwargs), num_envs), autoreset_mode)

    def _infos(self, out, ctx) -> dict:
        infos = super()._infos(out, ctx)
        infos["network"] = self.core.network_columns()
        return infos
