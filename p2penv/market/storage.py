"""Battery storage of the prosumers: parameters, the feasible power interval, the SOC update.

Sign convention: battery power ``b`` (kW) is positive when charging (the battery consumes) and
negative when discharging, so the agent's net market position becomes ``q = eta p - d - b``.
Energy balance over a step of ``dt`` hours::

    SOC_{t+1} = SOC_t + (eta_c c - d_dis / eta_d) dt,   c = max(b, 0), d_dis = max(-b, 0)

Feasible interval each step (limits hold by construction, never by a later projection)::

    charge_max    = min(P_charge,    (SOC_max - SOC_t) / (eta_c dt))
    discharge_max = min(P_discharge, (SOC_t - SOC_min) eta_d / dt)

An agent without a battery has capacity 0: both limits are 0 and its storage action is ignored
(reported as ``storage_ignored`` in infos). Degradation costs ``degradation_cost`` $ per kWh of
throughput (``(c + d_dis) dt``) and is part of the agent's step cost.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

STORAGE_FIELDS = ("capacity_kwh", "charge_kw", "discharge_kw", "eta_charge", "eta_discharge", "soc_min_kwh",
                  "soc_max_kwh", "soc0_kwh", "degradation_cost")


@dataclass(frozen=True)
class Storage:
    """Per-agent battery parameters, arrays ``(N,)`` (or ``(E, N)`` in a batched fleet).

    capacity_kwh:      usable energy capacity (kWh, >= 0; 0 = no battery).
    charge_kw, discharge_kw: power limits at the battery terminals (kW, >= 0).
    eta_charge, eta_discharge: one-way efficiencies, (0, 1].
    soc_min_kwh, soc_max_kwh: SOC bounds, 0 <= soc_min <= soc_max <= capacity.
    soc0_kwh:          SOC at the start of an episode, in [soc_min, soc_max].
    degradation_cost:  $ per kWh of throughput (>= 0).
    """

    capacity_kwh: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    soc_min_kwh: np.ndarray
    soc_max_kwh: np.ndarray
    soc0_kwh: np.ndarray
    degradation_cost: np.ndarray

    @staticmethod
    def none(shape: tuple[int, ...]) -> "Storage":
        """No battery anywhere (capacity 0, efficiencies 1)."""
        z = np.zeros(shape)
        one = np.ones(shape)
        return Storage(z, z, z, one, one, z, z, z, z)

    def env(self, i: int) -> "Storage":
        return Storage(*(getattr(self, f.name)[i] for f in fields(self)))

    @staticmethod
    def stack(items: list["Storage"]) -> "Storage":
        return Storage(*(np.stack([getattr(s, f.name) for s in items]) for f in fields(Storage)))

    def validate(self, names: tuple[str, ...]) -> None:
        """ValueError naming the agent and field of the first inconsistent value."""
        a = {f.name: np.asarray(getattr(self, f.name), dtype=float) for f in fields(self)}
        n = a["capacity_kwh"].shape[-1]
        checks = [
            ("capacity_kwh", np.isfinite(a["capacity_kwh"]) & (a["capacity_kwh"] >= 0), "finite and >= 0 kWh"),
            ("charge_kw", np.isfinite(a["charge_kw"]) & (a["charge_kw"] >= 0), "finite and >= 0 kW"),
            ("discharge_kw", np.isfinite(a["discharge_kw"]) & (a["discharge_kw"] >= 0), "finite and >= 0 kW"),
            ("eta_charge", (a["eta_charge"] > 0) & (a["eta_charge"] <= 1), "in (0, 1]"),
            ("eta_discharge", (a["eta_discharge"] > 0) & (a["eta_discharge"] <= 1), "in (0, 1]"),
            ("soc_min_kwh", (a["soc_min_kwh"] >= 0) & (a["soc_min_kwh"] <= a["soc_max_kwh"]),
             "in [0, soc_max_kwh]"),
            ("soc_max_kwh", np.isfinite(a["soc_max_kwh"]) & (a["soc_max_kwh"] <= a["capacity_kwh"]),
             "in [soc_min_kwh, capacity_kwh]"),
            ("soc0_kwh", (a["soc0_kwh"] >= a["soc_min_kwh"]) & (a["soc0_kwh"] <= a["soc_max_kwh"]),
             "in [soc_min_kwh, soc_max_kwh]"),
            ("degradation_cost", np.isfinite(a["degradation_cost"]) & (a["degradation_cost"] >= 0), "finite and >= 0 $/kWh"),
        ]
        for name, ok, rule in checks:
            ok = np.reshape(ok, (-1, n))
            if not ok.all():
                e, i = np.argwhere(~ok)[0]
                where = f"env {e}, " if np.ndim(a["capacity_kwh"]) == 2 else ""
                who = names[i] if names else f"prosumer_{i}"
                val = np.reshape(a[name], (-1, n))[e, i]
                raise ValueError(f"{where}agent '{who}': storage {name} must be {rule}, got {val}")


def storage_interval(soc_kwh, st: Storage, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """(charge_max_kw, discharge_max_kw) >= 0 allowed this step by power limits and SOC bounds."""
    cmax = np.minimum(st.charge_kw, (st.soc_max_kwh - soc_kwh) / (st.eta_charge * dt_h))
    dmax = np.minimum(st.discharge_kw, (soc_kwh - st.soc_min_kwh) * st.eta_discharge / dt_h)
    return np.maximum(cmax, 0.0), np.maximum(dmax, 0.0)


def next_soc(soc_kwh, battery_kw, st: Storage, dt_h: float) -> np.ndarray:
    """SOC after a step at battery power ``battery_kw`` (> 0 charging), held inside its bounds
    (the interval guarantees this up to rounding; the clip removes 1e-16 residues only)."""
    c = np.maximum(battery_kw, 0.0)
    d = np.maximum(-battery_kw, 0.0)
    soc = soc_kwh + (st.eta_charge * c - d / st.eta_discharge) * dt_h
    return np.clip(soc, st.soc_min_kwh, st.soc_max_kwh)
