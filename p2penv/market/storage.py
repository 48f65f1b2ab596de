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

End-of-episode SOC (``soc_end="start"``, a scenario option; see ``soc_end_interval``): the battery
must end the episode at the SOC it started with, so an episode cannot be won by selling the
battery empty. Each step the interval is narrowed to the powers after which the start SOC is still
reachable with full power in every remaining step; in the last step it is the one power that lands
on it. The interval is then ``[-discharge_max, charge_max]`` with one end possibly of the "wrong"
sign (``charge_max < 0``: the battery must discharge at least ``-charge_max``; ``discharge_max <
0``: it must charge at least ``-discharge_max``), and ``battery_power`` maps the action onto it.
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


SOC_END_MODES = (None, "start")


def soc_end_interval(soc_kwh, target_kwh, charge_max_kw, discharge_max_kw, st: Storage, dt_h: float,
                     steps_after: int) -> tuple[np.ndarray, np.ndarray]:
    """The interval ``(charge_max_kw, discharge_max_kw)`` narrowed so that ``target_kwh`` stays reachable.

    ``charge_max_kw``, ``discharge_max_kw``: this step's interval by power limits and SOC bounds
    (``storage_interval``); ``steps_after``: whole steps left after this one. After this step the
    SOC must lie in ``[target - k eta_c P_c dt, target + k P_d dt / eta_d]`` (k = ``steps_after``),
    from where full power in the remaining steps reaches the target; with k = 0 that is the target
    itself. Starting at the target this is never empty (by induction: moving towards the target
    keeps it reachable and inside the SOC bounds); should rounding make it so, the physical
    interval wins. Where the end constraint does not bind the limits are returned unchanged (bit for
    bit), so the narrowing ``(cmax + dmax) - (cmax' + dmax')`` is exactly 0 there.
    """
    s, ec, ed = soc_kwh, st.eta_charge, st.eta_discharge
    lo_soc = target_kwh - steps_after * ec * st.charge_kw * dt_h
    hi_soc = target_kwh + steps_after * st.discharge_kw * dt_h / ed
    phys_lo = s - discharge_max_kw * dt_h / ed
    phys_hi = s + ec * charge_max_kw * dt_h
    low = np.minimum(np.maximum(lo_soc, phys_lo), phys_hi)
    high = np.maximum(np.minimum(hi_soc, phys_hi), low)
    cmax = np.where(high >= phys_hi, charge_max_kw, _power_for(high - s, st, dt_h))
    dmax = np.where(low <= phys_lo, discharge_max_kw, -_power_for(low - s, st, dt_h))
    return cmax, dmax


def _power_for(d_soc_kwh, st: Storage, dt_h: float) -> np.ndarray:
    """Battery power (kW, > 0 charging) that moves the SOC by ``d_soc_kwh`` in one step."""
    return np.where(d_soc_kwh >= 0, d_soc_kwh / (st.eta_charge * dt_h), d_soc_kwh * st.eta_discharge / dt_h)


def battery_power(u, charge_max_kw, discharge_max_kw) -> np.ndarray:
    """Storage action ``u`` in [-1, 1] -> battery power (kW, > 0 charging) on ``[-discharge_max, charge_max]``.

    With ``z`` the point of the interval nearest to idle (0 when the interval holds 0): ``u >= 0``
    moves from ``z`` towards ``charge_max``, ``u < 0`` towards ``-discharge_max``. When both limits are
    >= 0 (always, unless ``soc_end`` forces a direction) this is ``u charge_max`` or ``u discharge_max``,
    the mapping of ``pipeline.orders_kernel``, bit for bit.
    """
    u = np.clip(u, -1.0, 1.0)
    lo, hi = -np.asarray(discharge_max_kw, dtype=float), np.asarray(charge_max_kw, dtype=float)
    z = np.minimum(np.maximum(0.0, lo), hi)
    return np.where(u >= 0.0, z + u * (hi - z), z + u * (z - lo))


def storage_action(battery_kw, charge_max_kw, discharge_max_kw) -> np.ndarray:
    """The inverse of ``battery_power``: the action in [-1, 1] that gives ``battery_kw`` (clipped to the
    interval; 0 where the interval is one point)."""
    lo, hi = -np.asarray(discharge_max_kw, dtype=float), np.asarray(charge_max_kw, dtype=float)
    z = np.minimum(np.maximum(0.0, lo), hi)
    b = np.clip(battery_kw, lo, hi)
    up = np.where(hi > z, (b - z) / np.where(hi > z, hi - z, 1.0), 0.0)
    down = np.where(z > lo, (b - z) / np.where(z > lo, z - lo, 1.0), 0.0)
    return np.clip(np.where(b >= z, up, down), -1.0, 1.0)
