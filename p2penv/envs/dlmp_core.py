"""The batched core of ``dlmp_v0``: the auction core with the DLMP clearing injected, plus the network.

    scenario (feeder, fixed loads, agents' buses) -> feasibility -> orders
        -> clearing: one DLMP LP per market (``network.dlmp.DlmpMarket``; its kept basis certified
           first, ``network.basis_cache``)
        -> settlement at the agent's bus DLMP
        -> realised network (``network.lindistflow.RealisedNetwork.states``) -> observations, infos

Everything the auction core does (orders, settlement, observations, seeding) is inherited; this
core adds the LPs, the realised network state of every market and the DLMP observation columns.
The LPs are solved one per market; what is batched is everything around them: the realised states
and the next loss models of all markets are one compiled pass each (``network.kernels``), the DLMP
observation columns another (``dlmp_kernels``).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from ..market.mechanisms.types import Clearing
from ..market.pipeline import StepContext, StepOutcome
from ..network.ac_check import AcAudit
from ..network.dlmp import DlmpMarket
from ..network.lindistflow import LossModel, NetworkState, NetworkStates, RealisedNetwork
from .auction_core import AuctionCore
from .dlmp_config import DlmpConfig
from .dlmp_kernels import dlmp_obs_kernel
from .fields import DLMP_INFO_FIELDS, DLMP_OBS_FIELDS, names

DLMP_OBS_NAMES = names(DLMP_OBS_FIELDS)
DLMP_INFO_NAMES = names(DLMP_INFO_FIELDS)
V_OBS_HALF_SPAN = 0.2  # p.u.: state() maps V in [1 - 0.2, 1 + 0.2] to [-1, 1]


@dataclass(frozen=True)
class DlmpBatchClearing(Clearing):
    """The DLMP clearing of E markets in the pipeline's ``Clearing`` layout, plus the LP results.

    matched, unit_price, sides: (E, N) kWh, $/kWh (the DLMP at the agent's bus), +1/-1/0.
    clearing_price:   (E,) $/kWh, the energy component (price at the substation; lambda_0 unless the
                      import/export limit binds).
    volume:           (E,) kWh, matched buys plus matched sells (the substation takes the imbalance).
    operator_surplus: (E,) $, merchandising surplus of the LP (fixed loads pay their DLMP too).
    welfare:          (E,) $, declared: bids - asks - lambda_0 x import.
    lp:               (E,) object array of ``DlmpClearing``.
    components:       (E, 5, n_bus) $/kWh: each market's DLMP, energy, loss, congestion and voltage parts.
    """

    lp: np.ndarray = None
    components: np.ndarray = None


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # the LP caches the row bounds these loads give (by identity)
    return a


def fixed_load_warning(feeder, fixed: NetworkState, scale: float, penalty: float) -> str:
    """What a scenario means whose fixed load alone (no agent yet) breaks a voltage or line limit.

    LinDistFlow's v^2 falls linearly in the load scale, so the largest scale that keeps every bus at
    or above its v_min is ``scale x min_k (v0^2 - v_min,k^2) / (v0^2 - v_k^2)``.
    """
    v0 = feeder.v_root
    parts = []
    if fixed.voltage_violation_pu.max() > 0:
        k = int(np.argmax(fixed.voltage_violation_pu))
        drop = v0**2 - fixed.voltages**2
        ok = drop > 0
        s_max = scale * float(np.min((v0**2 - feeder.v_min[ok] ** 2) / drop[ok]))
        parts.append(f"puts bus {k} at {fixed.voltages[k]:.3f} p.u., below its v_min of {feeder.v_min[k]:.3f} p.u. "
                     f"(load_scale <= {s_max:.2f} keeps every bus inside)")
    if fixed.overload_kw.max() > 0:
        line = int(np.argmax(fixed.overload_kw))
        parts.append(f"overloads line {feeder.from_bus[line]}->{feeder.to_bus[line]} by "
                     f"{fixed.overload_kw[line]:.0f} kW")
    return (f"dlmp_v0 load_scale={scale}: the fixed load alone, before any agent acts, {' and '.join(parts)} "
            "(LinDistFlow). The DLMP LP can then meet the limits only through its penalised slacks: expect "
            f"market['lp_violated'] on nearly every step and DLMPs near the penalty ({penalty:g} $/kWh). This "
            "models an overloaded feeder, not a normal one.")


class DlmpCore(AuctionCore):
    """E ``dlmp_v0`` markets: the auction core, the DLMP LPs and the realised network of each."""

    def __init__(self, config: DlmpConfig, num_envs: int = 1):
        if not isinstance(config, DlmpConfig):
            raise ValueError(f"config: expected a DlmpConfig, got {type(config).__name__}")
        sc = config.feeder_setting
        f = self.feeder = sc.build_feeder()
        self.buses = np.asarray(config.agent_buses, dtype=np.int64)
        s = config.fixed_scale
        self.p_fixed_kw = _read_only(s * f.p_load_kw)
        self.q_fixed_kvar = _read_only(s * f.q_load_kvar)
        self.lam = config.lam
        self.grid = RealisedNetwork(f, self.q_fixed_kvar)
        # refuse a load level where LinDistFlow means nothing (ValueError names the scale and voltage)
        fixed = self.grid.state(self.p_fixed_kw, LossModel.lossless(f), what=f"load_scale={s}")
        if fixed.violated:
            warnings.warn(fixed_load_warning(f, fixed, s, config.penalty), UserWarning, stacklevel=4)
        self.fixed_loss_model = self.grid.loss_model(fixed)
        super().__init__(config, num_envs, clear=self._clear)
        if config.import_limit_kw == 0 and config.export_limit_kw == 0:
            # islanded: no utility backstop; unmatched demand is unserved at the LP's value of lost load
            self.rules = dataclasses.replace(self.rules, island_voll=float(config.penalty))
        self.markets = [self._new_market() for _ in range(self.num_envs)]
        self.audit = AcAudit(f) if config.audit_ac else None
        self.networks: NetworkStates | None = None  # realised state of every market (``networks[e]``: one)
        self.lps = None

    def wholesale_price(self) -> float:
        """lambda_0 of the current step ($/kWh): the scenario's series when tariffs vary, else the config's."""
        return self.lam if self.prices is None else float(self.prices.wholesale[min(self.t, self.max_cycles - 1)])

    def _base_loss_model(self) -> LossModel:
        lossless = self.config.loss_linearisation == "none"
        return LossModel.lossless(self.feeder) if lossless else self.fixed_loss_model

    def _new_market(self) -> DlmpMarket:
        cfg = self.config
        return DlmpMarket(self.feeder, self.buses, loss_model=self._base_loss_model(), dt_h=cfg.dt_h,
                          import_limit_kw=cfg.import_limit_kw, export_limit_kw=cfg.export_limit_kw, penalty=cfg.penalty,
                          reuse_basis=bool(cfg.lp_reuse_basis))

    # -- episode ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:  # cold bases: a trajectory depends on the seed only
            self.markets = [self._new_market() for _ in range(self.num_envs)]
        super().reset(seed)

    def _on_reset(self) -> None:
        """Reset operating point: fixed loads plus every agent at its initial dispatch."""
        base = self._base_loss_model()
        f0, ctx = self.fleet, self.ctx
        for m in self.markets:
            m.set_loss_model(base)
        self.networks = self.grid.states(ctx.demand_kw - f0.eta * self.p_prev, self.buses, self.p_fixed_kw,
                                         [base] * self.num_envs, "reset point of env {e}")
        self.lps = None
        self._next_loss_models()
        lam = self.wholesale_price()
        rows = []
        for m in self.markets:  # before the first step: lambda_0 and its loss part at the reset point
            loss = lam * (m.loss_model.mlf - 1.0)
            zero = np.zeros_like(loss)
            rows.append((lam + loss, np.full_like(loss, lam), loss, zero, zero))
        self.dlmp_obs = self._dlmp_obs(rows)

    def _clear(self, prices, quantities, sides) -> DlmpBatchClearing:
        cfg, root = self.config, self.feeder.root
        e_n, n = sides.shape
        lps = np.empty(e_n, dtype=object)
        matched, unit = np.empty((e_n, n)), np.empty((e_n, n))
        comps = np.empty((e_n, 5, self.feeder.n_bus))
        surplus, welfare = np.empty(e_n), np.empty(e_n)
        self.last_wholesale_price = lam = self.wholesale_price()
        for e, m in enumerate(self.markets):
            lp = lps[e] = m.clear(prices[e], quantities[e], sides[e], lam, self.p_fixed_kw, self.q_fixed_kvar,
                                  solver=cfg.lp_solver, loss_iterations=cfg.loss_iterations, loss_point=cfg.loss_point)
            matched[e], unit[e] = lp.matched, lp.unit_price
            comps[e, 0], comps[e, 1], comps[e, 2], comps[e, 3], comps[e, 4] = (lp.dlmp, lp.energy, lp.loss,
                                                                                 lp.congestion, lp.voltage)
            surplus[e], welfare[e] = lp.operator_surplus, lp.welfare
        self.lps = lps
        self.last_loss_models = [m.loss_model for m in self.markets]  # what this step was cleared with
        return DlmpBatchClearing(matched=matched, unit_price=unit, clearing_price=comps[:, 1, root].copy(),
                                 volume=matched.sum(axis=1), operator_surplus=surplus, welfare=welfare, sides=sides,
                                 lp=lps, components=comps)

    def _on_step(self, out: StepOutcome) -> None:
        """Realise the network at the physical net positions; DLMP observations; next loss models."""
        net_load = out.settlement.net_kwh * (-1.0 / self.config.dt_h)
        self.networks = self.grid.states(net_load, self.buses, self.p_fixed_kw, [m.loss_model for m in self.markets],
                                         f"step {self.t - 1}: realised net load of env {{e}}")
        self.dlmp_obs = self._dlmp_obs(out.clearing.components)
        if not self.done:
            self._next_loss_models()

    def _next_loss_models(self) -> None:
        if self.config.loss_linearisation == "previous":  # losses linearised at the last realised point
            for m, lm in zip(self.markets, self.grid.loss_models(self.networks)):
                m.set_loss_model(lm)

    def _dlmp_obs(self, components) -> np.ndarray:
        """(E, N, 5) DLMP columns at the agents' buses, mapped like prices (differences without offset)."""
        return dlmp_obs_kernel(np.asarray(components, dtype=np.float64), self.buses, self.config.price_floor,
                               self._price_span)

    # -- observations, state, infos --------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        return np.concatenate([super()._observe(), self.dlmp_obs], axis=2)

    def state(self) -> np.ndarray:
        """Auction state, then the realised voltages ((V - 1) / 0.2) and line loadings (|S| / rating - 1;
        unrated lines -1) of each market, clipped to [-1, 1]."""
        rated = np.isfinite(self.feeder.line_limit_kva)
        nets = self.networks
        extra = np.concatenate([(nets.voltages - 1.0) / V_OBS_HALF_SPAN, np.where(rated, nets.loading - 1.0, -1.0)],
                               axis=1)
        return np.concatenate([super().state(), np.clip(extra, -1.0, 1.0).astype(np.float32)], axis=1)

    @property
    def observation_names(self) -> tuple[str, ...]:
        """The auction's observation columns, then ``fields.DLMP_OBS_FIELDS``."""
        return super().observation_names + tuple(DLMP_OBS_NAMES)

    @property
    def state_dim(self) -> int:
        return super().state_dim + self.feeder.n_bus + self.feeder.n_line

    def info_columns(self, out: StepOutcome, ctx: StepContext) -> dict[str, np.ndarray]:
        cols = super().info_columns(out, ctx)
        at_agents = out.clearing.components[:, :, self.buses]  # (E, 5, N)
        for j, name in enumerate(DLMP_INFO_NAMES[:5]):  # dlmp, energy, loss, congestion, voltage
            cols[name] = at_agents[:, j]
        cols["voltage_pu"] = self.networks.voltages[:, self.buses]
        return cols

    def market_columns(self, out: StepOutcome) -> dict[str, np.ndarray]:
        cols = super().market_columns(out)
        lps = out.clearing.lp
        cols["wholesale_price"] = np.full(len(lps), self.last_wholesale_price)
        for k in ("substation_import_kw", "losses_kw", "unserved_kw"):
            cols[k] = np.array([getattr(lp, k) for lp in lps])
        cols["max_line_slack_kw"] = np.array([lp.line_violation_kw.max() for lp in lps])
        cols["max_voltage_slack_pu"] = np.array([lp.voltage_violation_pu.max() for lp in lps])
        cols["lp_violated"] = np.array([lp.violated for lp in lps])
        return cols

    def network_columns(self) -> dict[str, np.ndarray]:
        """(E,) summaries of each market's realised network (and the AC audit when enabled)."""
        nets = self.networks
        cols = {
            "import_kw": nets.import_kw,
            "losses_kw": nets.losses_kw,
            "v_min_pu": nets.voltages.min(axis=1),
            "v_max_pu": nets.voltages.max(axis=1),
            "max_loading": nets.loading.max(axis=1),
            "max_overload_kw": nets.overload_kw.max(axis=1),
            "max_voltage_violation_pu": nets.voltage_violation_pu.max(axis=1),
            "violated": nets.violated,
        }
        if self.audit is not None:
            audits = [self.audit.compare(n, self.q_fixed_kvar) for n in nets]
            for k in audits[0]:
                cols[k] = np.array([a.get(k, np.nan) for a in audits])
        return cols
