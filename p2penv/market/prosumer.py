"""Prosumer and DER model (spec S2), vectorised over a fleet.

One prosumer has local demand ``d_t`` (kW), a DER with availability ``P_max,t`` (kW; constant for a
dispatchable unit, a profile for PV), ramp limit ``R`` (kW per step), conversion efficiency ``eta``
at the grid connection and a strictly convex cost ``C(E) = a E^2 + b E`` ($) of the energy
``E = p dt`` (kWh) it produces in a step of ``dt`` hours. Its net market position is
``q_t = eta p_t - d_t`` (kW; > 0 sells, < 0 buys). A pure consumer has ``P_max = 0``; a pure
producer has ``d = 0``. A *flexible load* has a finite ``shed_value`` ($/kWh, value of lost load
below the retail tariff): demand it cannot buy in the market is shed instead of imported, which is
what makes market demand price-elastic.

Feasible dispatch each step: ``[max(0, p_{t-1} - R), min(P_max,t, p_{t-1} + R)]``. When the
availability drops below the ramp floor (a cloud over PV), physics wins: the interval collapses to
``P_max,t`` and the ramp violation ``(p_{t-1} - R) - P_max,t`` is reported, never hidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .storage import Storage


@dataclass(frozen=True)
class Prosumer:
    """One household/unit. Profiles are per step; a scalar ``p_max_kw`` means a constant rating."""

    demand_kw: np.ndarray  # (T,) kW, >= 0
    p_max_kw: np.ndarray | float  # (T,) or scalar kW, >= 0
    ramp_kw: float  # kW per step, > 0 (np.inf: no ramp limit)
    eta: float = 1.0  # conversion efficiency at the grid connection, (0, 1]
    cost_a: float = 0.01  # $/kWh^2, > 0 (strict convexity)
    cost_b: float = 0.0  # $/kWh
    p0_kw: float = 0.0  # dispatch before the first step, kW
    bus: int = 1  # feeder bus (network environments)
    name: str = ""
    shed_value: float = np.inf  # $/kWh; unmatched demand is shed at this lost value if below retail


@dataclass(frozen=True)
class Fleet:
    """Struct-of-arrays view of N prosumers over T steps; what the hot path uses."""

    demand_kw: np.ndarray  # (T, N)
    p_max_kw: np.ndarray  # (T, N)
    ramp_kw: np.ndarray  # (N,)
    eta: np.ndarray  # (N,)
    cost_a: np.ndarray  # (N,) $/kWh^2
    cost_b: np.ndarray  # (N,) $/kWh
    p0_kw: np.ndarray  # (N,)
    bus: np.ndarray  # (N,) int
    names: tuple[str, ...] = field(default=())
    shed_value: np.ndarray | None = None  # (N,) $/kWh value of lost load; None = inf (never shed)
    storage: Storage | None = None  # batteries ((N,) arrays); None = no agent has one

    @property
    def shed_values(self) -> np.ndarray:
        """(N,) value of lost load, inf where the agent always imports at retail."""
        return np.full(self.n, np.inf) if self.shed_value is None else self.shed_value

    @property
    def n(self) -> int:
        return self.ramp_kw.shape[-1]

    @property
    def horizon(self) -> int:
        return self.demand_kw.shape[-2]

    @property
    def num_envs(self) -> int | None:
        """E for a batched fleet (arrays ``(E, T, N)`` / ``(E, N)``), None for one market."""
        return self.ramp_kw.shape[0] if self.ramp_kw.ndim == 2 else None

    def env(self, i: int) -> "Fleet":
        """Market ``i`` of a batched fleet (views, no copies)."""
        sv = None if self.shed_value is None else self.shed_value[i]
        st = None if self.storage is None else self.storage.env(i)
        return Fleet(self.demand_kw[i], self.p_max_kw[i], self.ramp_kw[i], self.eta[i], self.cost_a[i], self.cost_b[i],
                     self.p0_kw[i], self.bus[i], self.names, sv, st)

    @staticmethod
    def stack(fleets: Sequence["Fleet"]) -> "Fleet":
        """Batch E single-market fleets of one size and horizon into arrays ``(E, ...)``."""
        f0 = fleets[0]
        if any(f.n != f0.n or f.horizon != f0.horizon for f in fleets):
            raise ValueError("fleets: every market of a batch needs the same agents and horizon")
        arr = {name: np.stack([getattr(f, name) for f in fleets])
               for name in ("demand_kw", "p_max_kw", "ramp_kw", "eta", "cost_a", "cost_b", "p0_kw", "bus")}
        has = [f.storage is not None for f in fleets]
        if any(has) and not all(has):
            raise ValueError("fleets: either every market of a batch has storage parameters or none")
        st = Storage.stack([f.storage for f in fleets]) if all(has) else None
        return Fleet(**arr, names=f0.names, shed_value=np.stack([f.shed_values for f in fleets]), storage=st)

    @staticmethod
    def from_prosumers(prosumers: Sequence[Prosumer], horizon: int) -> "Fleet":
        """Stack prosumers; validates every field and names the offending prosumer."""
        if len(prosumers) == 0:
            raise ValueError("fleet: needs at least one prosumer")
        names = tuple(p.name or f"prosumer_{i}" for i, p in enumerate(prosumers))
        dem = np.empty((horizon, len(prosumers)))
        pmax = np.empty((horizon, len(prosumers)))
        for i, (p, nm) in enumerate(zip(prosumers, names)):
            d = np.asarray(p.demand_kw, dtype=float)
            m = np.broadcast_to(np.asarray(p.p_max_kw, dtype=float), d.shape if d.ndim else (horizon,))
            if d.shape != (horizon,):
                raise ValueError(f"prosumer '{nm}': demand_kw has shape {d.shape}, expected ({horizon},)")
            if m.shape != (horizon,):
                raise ValueError(f"prosumer '{nm}': p_max_kw has shape {m.shape}, expected ({horizon},)")
            dem[:, i], pmax[:, i] = d, m
        fleet = Fleet(
            demand_kw=dem,
            p_max_kw=pmax,
            ramp_kw=np.array([p.ramp_kw for p in prosumers], dtype=float),
            eta=np.array([p.eta for p in prosumers], dtype=float),
            cost_a=np.array([p.cost_a for p in prosumers], dtype=float),
            cost_b=np.array([p.cost_b for p in prosumers], dtype=float),
            p0_kw=np.array([p.p0_kw for p in prosumers], dtype=float),
            bus=np.array([p.bus for p in prosumers], dtype=int),
            names=names,
            shed_value=np.array([p.shed_value for p in prosumers], dtype=float),
        )
        fleet.validate()
        return fleet

    def validate(self) -> None:
        """Raise ValueError naming the prosumer and field of the first inconsistent value."""
        n = self.n
        dem, pmax = self.demand_kw.reshape(-1, n), self.p_max_kw.reshape(-1, n)
        checks = [
            ("demand_kw", np.all(np.isfinite(dem) & (dem >= 0), axis=0)),
            ("p_max_kw", np.all(np.isfinite(pmax) & (pmax >= 0), axis=0)),
            ("ramp_kw", ~np.isnan(self.ramp_kw) & (self.ramp_kw > 0)),
            ("eta", np.isfinite(self.eta) & (self.eta > 0) & (self.eta <= 1)),
            ("cost_a", np.isfinite(self.cost_a) & (self.cost_a > 0)),
            ("cost_b", np.isfinite(self.cost_b)),
            ("p0_kw", np.isfinite(self.p0_kw) & (self.p0_kw >= 0)),
            ("shed_value", ~np.isnan(self.shed_values) & (self.shed_values >= 0)),
        ]
        if self.storage is not None:
            self.storage.validate(self.names)
        for fname, ok in checks:
            ok = np.reshape(ok, (-1, n)).all(axis=0)
            if not np.all(ok):
                i = int(np.argmin(ok))
                who = self.names[i] if self.names else f"prosumer_{i}"
                raise ValueError(f"prosumer '{who}': {fname} is invalid (must be finite; see Prosumer docs)")


def feasible_interval(
    p_prev_kw: np.ndarray, p_max_kw: np.ndarray, ramp_kw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dispatch interval ``[lo, hi]`` (kW) for this step and the ramp violation (kW, >= 0).

    ``lo = max(0, p_prev - R)``, ``hi = min(P_max, p_prev + R)``; if ``P_max < lo`` the
    availability wins (``lo = hi = P_max``) and ``lo - P_max`` is the unavoidable ramp violation.
    """
    lo = np.maximum(0.0, p_prev_kw - ramp_kw)
    hi = np.minimum(p_max_kw, p_prev_kw + ramp_kw)
    violation = np.maximum(lo - p_max_kw, 0.0)
    lo = np.minimum(lo, p_max_kw)
    return lo, hi, violation


def net_position_kw(dispatch_kw: np.ndarray, demand_kw: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """``q = eta p - d`` (kW): positive sells to the market, negative buys (spec S2)."""
    return eta * dispatch_kw - demand_kw


def energy_cost(dispatch_kw: np.ndarray, cost_a: np.ndarray, cost_b: np.ndarray, dt_h: float) -> np.ndarray:
    """``C(E) = a E^2 + b E`` ($) with ``E = p dt`` (kWh) the DER energy of the step."""
    e = dispatch_kw * dt_h
    return (cost_a * e + cost_b) * e


def marginal_cost(dispatch_kw: np.ndarray, cost_a: np.ndarray, cost_b: np.ndarray, dt_h: float) -> np.ndarray:
    """``C'(E) = 2 a E + b`` ($/kWh of DER energy)."""
    return 2.0 * cost_a * dispatch_kw * dt_h + cost_b
