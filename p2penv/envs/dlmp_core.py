"""The batched core of ``dlmp_v0``: the auction core with the DLMP clearing injected, plus the network.

    scenario (feeder, fixed loads, agents' buses) -> feasibility -> orders
        -> clearing: one warm-started DLMP LP per market (``network.dlmp.DlmpMarket``)
        -> settlement at the agent's bus DLMP
        -> realised network (``network.lindistflow.RealisedNetwork``) -> observations, infos

Everything the auction core does (orders, settlement, observations, seeding) is inherited; this
core adds the LPs, the realised network state of every market and the DLMP observation columns.
The LPs are solved one per market; what is batched is everything around them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..market.mechanisms.types import Clearing
from ..market.pipeline import StepContext, StepOutcome
from ..network.ac_check import AcAudit
from ..network.dlmp import DlmpMarket
from ..network.lindistflow import LossModel, NetworkState, RealisedNetwork
from .auction_core import AuctionCore
from .dlmp_config import DlmpConfig
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
    """

    lp: np.ndarray = None


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # the LP caches the row bounds these loads give (by identity)
    return a


class DlmpCore(AuctionCore):
    """E ``dlmp_v0`` markets: the auction core, the DLMP LPs and the realised network of each."""

    def __init__(self, config: DlmpConfig, num_envs: int = 1):
        if not isinstance(config, DlmpConfig):
            raise ValueError(f"config: expected a DlmpConfig, got {type(config).__name__}")
        sc = config.scenario_spec
        f = self.feeder = sc.build_feeder()
        self.buses = np.asarray(config.agent_buses, dtype=np.int64)
        s = config.fixed_scale
        self.p_fixed_kw = _read_only(s * f.p_load_kw)
        self.q_fixed_kvar = _read_only(s * f.q_load_kvar)
        self.lam = config.lam
        self.grid = RealisedNetwork(f, self.q_fixed_kvar)
        # refuse a load level where LinDistFlow means nothing (ValueError names the scale and voltage)
        fixed = self.grid.state(self.p_fixed_kw, LossModel.lossless(f), what=f"load_scale={s}")
        self.fixed_loss_model = self.grid.loss_model(fixed)
        super().__init__(config, num_envs, clear=self._clear)
        if config.import_limit_kw == 0 and config.export_limit_kw == 0:
            # islanded: no utility backstop; unmatched demand is unserved at the LP's value of lost load
            self.rules = dataclasses.replace(self.rules, island_voll=float(config.penalty))
        self.markets = [self._new_market() for _ in range(self.num_envs)]
        self.audit = AcAudit(f) if config.audit_ac else None
        self.networks: list[NetworkState] = []
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
                          import_limit_kw=cfg.import_limit_kw, export_limit_kw=cfg.export_limit_kw, penalty=cfg.penalty)

    # -- episode ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:  # cold bases: a trajectory depends on the seed only
            self.markets = [self._new_market() for _ in range(self.num_envs)]
        super().reset(seed)

    def _on_reset(self) -> None:
        """Reset operating point: fixed loads plus every agent at its initial dispatch."""
        base = self._base_loss_model()
        f0, ctx = self.fleet, self.ctx
        self.networks = []
        for e, m in enumerate(self.markets):
            m.set_loss_model(base)
            self.networks.append(self._realise(e, ctx.demand_kw[e] - f0.eta[e] * self.p_prev[e], base))
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
        lps = np.empty(self.num_envs, dtype=object)
        self.last_wholesale_price = lam = self.wholesale_price()
        for e, m in enumerate(self.markets):
            lps[e] = m.clear(prices[e], quantities[e], sides[e], lam, self.p_fixed_kw, self.q_fixed_kvar,
                             solver=cfg.lp_solver, loss_iterations=cfg.loss_iterations, loss_point=cfg.loss_point)
        self.lps = lps
        self.last_loss_models = [m.loss_model for m in self.markets]  # what this step was cleared with
        return DlmpBatchClearing(
            matched=np.stack([lp.matched for lp in lps]), unit_price=np.stack([lp.unit_price for lp in lps]),
            clearing_price=np.array([lp.energy[root] for lp in lps]), volume=np.array([lp.matched.sum() for lp in lps]),
            operator_surplus=np.array([lp.operator_surplus for lp in lps]),
            welfare=np.array([lp.welfare for lp in lps]), sides=sides, lp=lps)

    def _on_step(self, out: StepOutcome) -> None:
        """Realise the network at the physical net positions; DLMP observations; next loss models."""
        net_load = out.settlement.net_kwh * (-1.0 / self.config.dt_h)
        self.networks = [self._realise(e, net_load[e], m.loss_model, f"step {self.t - 1}: realised net load of env {e}")
                         for e, m in enumerate(self.markets)]
        self.dlmp_obs = self._dlmp_obs([(lp.dlmp, lp.energy, lp.loss, lp.congestion, lp.voltage) for lp in self.lps])
        if not self.done:
            self._next_loss_models()

    def _next_loss_models(self) -> None:
        if self.config.loss_linearisation == "previous":  # losses linearised at the last realised point
            for m, net in zip(self.markets, self.networks):
                m.set_loss_model(self.grid.loss_model(net))

    def _realise(self, e: int, agent_net_load_kw: np.ndarray, loss_model: LossModel, what: str = "reset point"):
        d = self.p_fixed_kw + np.bincount(self.buses, agent_net_load_kw, minlength=self.feeder.n_bus)
        return self.grid.state(d, loss_model, what)

    def _dlmp_obs(self, rows) -> np.ndarray:
        """(E, N, 5) DLMP columns at the agents' buses, mapped like prices (differences without offset)."""
        lo, span = self.config.price_floor, self._price_span
        m = np.array(rows)[:, :, self.buses].transpose(0, 2, 1)  # (E, 5 components, N) -> (E, N, 5) $/kWh
        i = {k: j for j, k in enumerate(DLMP_OBS_NAMES)}
        for k in ("dlmp", "dlmp_energy"):
            m[..., i[k]] = 2.0 * (m[..., i[k]] - lo) / span - 1.0
        for k in ("dlmp_loss", "dlmp_congestion", "dlmp_voltage"):
            m[..., i[k]] *= 2.0 / span
        return np.clip(m, -1.0, 1.0).astype(np.float32)

    # -- observations, state, infos --------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        return np.concatenate([super()._observe(), self.dlmp_obs], axis=2)

    def state(self) -> np.ndarray:
        """Auction state, then the realised voltages ((V - 1) / 0.2) and line loadings (|S| / rating - 1;
        unrated lines -1) of each market, clipped to [-1, 1]."""
        rated = np.isfinite(self.feeder.line_limit_kva)
        extra = np.stack([np.concatenate([(n.voltages - 1.0) / V_OBS_HALF_SPAN, np.where(rated, n.loading - 1.0, -1.0)])
                          for n in self.networks])
        return np.concatenate([super().state(), np.clip(extra, -1.0, 1.0).astype(np.float32)], axis=1)

    @property
    def observe_dim(self) -> int:
        return super().observe_dim + len(DLMP_OBS_NAMES)

    @property
    def state_dim(self) -> int:
        return super().state_dim + self.feeder.n_bus + self.feeder.n_line

    def info_columns(self, out: StepOutcome, ctx: StepContext) -> dict[str, np.ndarray]:
        cols = super().info_columns(out, ctx)
        b, lps = self.buses, out.clearing.lp
        for name, attr in zip(DLMP_INFO_NAMES[:5], ("dlmp", "energy", "loss", "congestion", "voltage")):
            cols[name] = np.stack([getattr(lp, attr)[b] for lp in lps])
        cols["voltage_pu"] = np.stack([n.voltages[b] for n in self.networks])
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
            "import_kw": np.array([n.import_kw for n in nets]),
            "losses_kw": np.array([n.losses_kw for n in nets]),
            "v_min_pu": np.array([n.voltages.min() for n in nets]),
            "v_max_pu": np.array([n.voltages.max() for n in nets]),
            "max_loading": np.array([n.loading.max() for n in nets]),
            "max_overload_kw": np.array([n.overload_kw.max() for n in nets]),
            "max_voltage_violation_pu": np.array([n.voltage_violation_pu.max() for n in nets]),
            "violated": np.array([n.violated for n in nets]),
        }
        if self.audit is not None:
            audits = [self.audit.compare(n, self.q_fixed_kvar) for n in nets]
            for k in audits[0]:
                cols[k] = np.array([a.get(k, np.nan) for a in audits])
        return cols
