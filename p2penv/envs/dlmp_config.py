"""Configuration of ``dlmp_v0``: ``DlmpConfig`` extends ``MarketConfig`` with the network.

The feeder settings (``FEEDER_SETTINGS``, the named network settings) live in ``p2penv.generators.feeders``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..generators.feeders import FEEDER_SETTINGS, FeederSetting, load_buses, register_feeder_setting
from ..network.dlmp import LOSS_POINTS
from .config import MarketConfig

__all__ = ["FEEDER_SETTINGS", "LOSS_LINEARISATIONS", "DlmpConfig", "FeederSetting", "load_buses",
           "register_feeder_setting"]

LOSS_LINEARISATIONS = ("previous", "fixed", "none")


@dataclass(frozen=True)
class DlmpConfig(MarketConfig):
    """Everything that defines a ``dlmp_v0`` run: the ``MarketConfig`` fields plus the network.

    n_prosumers:       None -> one agent per load bus of the feeder setting's feeder (32 on ieee33).
    mechanism, k, rule, posted_price, posted_price_rule, posted_price_schedule: do not apply (every order
        settles at its bus DLMP): leave them at their defaults.
    scenario:          name of the feeder setting, a key of ``FEEDER_SETTINGS``.
    agent_buses:       bus of each agent; None -> load buses, cycled if there are more agents.
    wholesale_price:   lambda_0 $/kWh; None -> the feeder setting's.
    load_scale:        fixed load multiplier; None -> the feeder setting's. Where the fixed load alone breaks a
                       voltage or line limit (ieee33 above 1.18) every step is lp_violated, with DLMPs near
                       the penalty: an overloaded feeder. The env warns when it is built.
    penalty:           $/kWh of the DLMP LP's slacks (unserved energy, overload, voltage).
    import_limit_kw, export_limit_kw: substation limits (kW).
    loss_linearisation: "previous" (losses linearised at the previous step's realised operating
                       point; default), "fixed" (at the fixed loads only, once) or "none" (lossless).
    audit_ac:          run a pandapower AC power flow on the realised injections every step (slow).
    lp_solver:         "highs" (warm-started highspy, default) or "linprog" (scipy, cold; benchmarks).
    lp_reuse_basis:    True (default): each market keeps its last optimal LP basis and certifies it on the
                       next step's LP before calling HiGHS (``network.basis_cache``); False: HiGHS every step.
                       Same results either way (ties included); False is for benchmarks.
    loss_iterations:   LP solves per step (``DlmpMarket.clear(loss_iterations=...)``): 1 (default) clears once
                       with the losses linearised as ``loss_linearisation`` says; n > 1 re-linearises them at
                       the cleared LinDistFlow point and re-solves, up to n solves (successive LP).
    loss_point:        where extra iterations re-linearise: "lindistflow" (default) or "distflow" (the exact
                       DistFlow point, with line and voltage limits shifted by its losses: DLMPs within
                       ~0.25 $/MWh of pandapower's AC-OPF at n >= 2, docs/network_model.md).
    """

    n_prosumers: int | None = None  # type: ignore[assignment]
    scenario: str = "ieee33-base"
    agent_buses: tuple[int, ...] | None = None
    wholesale_price: float | None = None
    load_scale: float | None = None
    penalty: float = 1000.0
    import_limit_kw: float = np.inf
    export_limit_kw: float = np.inf
    loss_linearisation: str = "previous"
    audit_ac: bool = False
    lp_solver: str = "highs"
    lp_reuse_basis: bool = True
    loss_iterations: int = 1
    loss_point: str = "lindistflow"  # or "distflow": re-linearise at the exact DistFlow point (AC-accurate)

    def __post_init__(self) -> None:
        err = []
        sc = FEEDER_SETTINGS.get(self.scenario)
        if sc is None:
            raise ValueError(f"DlmpConfig: scenario: unknown {self.scenario!r}; known {sorted(FEEDER_SETTINGS)}")
        feeder = sc.build_feeder()
        buses = self.agent_buses
        if self.n_prosumers is not None and (not isinstance(self.n_prosumers, (int, np.integer))
                                             or self.n_prosumers < 2):
            raise ValueError(f"DlmpConfig: n_prosumers: need an integer >= 2 agents (or None: one per load bus), "
                             f"got {self.n_prosumers!r}")
        if buses is None:
            lb = load_buses(feeder)
            n = len(lb) if self.n_prosumers is None else int(self.n_prosumers)
            buses = tuple(int(lb[i % len(lb)]) for i in range(n))
        else:
            buses = tuple(int(b) for b in buses)
            bad = [b for b in buses if not (0 <= b < feeder.n_bus) or b == feeder.root]
            if bad:
                err.append(f"agent_buses: {bad} are not non-root buses of feeder {sc.feeder!r} "
                           f"(0..{feeder.n_bus - 1}, root {feeder.root})")
            if self.n_prosumers is not None and self.n_prosumers != len(buses):
                err.append(f"agent_buses: {len(buses)} buses given for n_prosumers={self.n_prosumers}")
        object.__setattr__(self, "agent_buses", buses)
        object.__setattr__(self, "n_prosumers", len(buses))
        lam = self.lam
        if not np.isfinite(lam):
            err.append(f"wholesale_price: must be finite, got {lam}")
        if not (self.load_scale is None or (np.isfinite(self.load_scale) and self.load_scale >= 0)):
            err.append(f"load_scale: must be finite and >= 0, got {self.load_scale}")
        if not (np.isfinite(self.penalty) and self.penalty > 0):
            err.append(f"penalty: must be finite and > 0 $/kWh, got {self.penalty}")
        # the DLMP LP sets the prices: the auction's mechanism parameters do not apply
        defaults = MarketConfig()
        for name in ("mechanism", "k", "rule", "posted_price", "posted_price_rule", "posted_price_schedule"):
            if getattr(self, name) != getattr(defaults, name):
                err.append(f"{name}: does not apply to dlmp_v0 (every order settles at its bus DLMP), "
                           f"got {getattr(self, name)!r}")
        if not (self.import_limit_kw >= 0 and self.export_limit_kw >= 0):
            err.append("import_limit_kw/export_limit_kw: must be >= 0 kW")
        if self.loss_linearisation not in LOSS_LINEARISATIONS:
            err.append(f"loss_linearisation: expected one of {LOSS_LINEARISATIONS}, got {self.loss_linearisation!r}")
        if self.lp_solver not in ("highs", "linprog"):
            err.append(f"lp_solver: expected 'highs' or 'linprog', got {self.lp_solver!r}")
        if not isinstance(self.lp_reuse_basis, (bool, np.bool_)):
            err.append(f"lp_reuse_basis: expected True or False, got {self.lp_reuse_basis!r}")
        if (isinstance(self.loss_iterations, bool) or not isinstance(self.loss_iterations, (int, np.integer))
                or self.loss_iterations < 1):
            err.append(f"loss_iterations: expected an integer >= 1, got {self.loss_iterations!r}")
        if self.loss_point not in LOSS_POINTS:
            err.append(f"loss_point: expected one of {LOSS_POINTS}, got {self.loss_point!r}")
        if self.nash_gap_in_infos:
            err.append("nash_gap_in_infos: not supported by dlmp_v0 (the DLMP LP clears one book at a time)")
        if err:
            raise ValueError("DlmpConfig: " + "; ".join(err))
        super().__post_init__()

    @property
    def feeder_setting(self) -> FeederSetting:
        """The feeder setting named by ``scenario``."""
        return FEEDER_SETTINGS[self.scenario]

    @property
    def lam(self) -> float:
        """lambda_0, the wholesale price in use ($/kWh)."""
        return float(self.feeder_setting.wholesale_price if self.wholesale_price is None else self.wholesale_price)

    @property
    def fixed_scale(self) -> float:
        """Fixed-load multiplier in use."""
        return float(self.feeder_setting.load_scale if self.load_scale is None else self.load_scale)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "DlmpConfig":
        return super().from_kwargs(**kwargs)  # type: ignore[return-value]
