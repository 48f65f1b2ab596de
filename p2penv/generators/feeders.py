"""Named network settings of ``dlmp_v0`` ("feeder settings"): a feeder, its fixed (inelastic) load and limits.

A *feeder setting* (class ``FeederSetting``, table ``FEEDER_SETTINGS``, named by the ``scenario=`` option of
``dlmp_v0``; not a registered scenario id, see docs/glossary.md) names a feeder, how much of its base load
stays on the feeder as fixed load, the wholesale price at the substation and any tightened limits. The
tightened limits of the built-in settings are chosen so that the fixed loads alone are feasible with a few
kW of headroom, so the prosumers' own trades make the limit bind (derivation next to each entry; checked in
``tests/test_dlmp_env.py``). A new feeder setting is one ``register_feeder_setting`` call.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..network.cases import FEEDERS, TIE_LINES, reconfigure
from ..network.feeder import Feeder


@dataclass(frozen=True)
class FeederSetting:
    """A named network setting (feeder setting) for ``dlmp_v0``.

    feeder:          key of ``p2penv.network.FEEDERS``.
    load_scale:      fixed loads = load_scale x the case's base loads (kW and kvar), every step.
    wholesale_price: lambda_0, $/kWh the substation imports and exports at.
    line_limits_kva: ((line index, rating kVA), ...) ratings set on top of the case's.
    v_min_pu:        if set, lower voltage limit (p.u.) at every bus (the root is held at v_root).
    v_max_pu:        if set, upper voltage limit (p.u.) at every bus.
    description:     one line for docs and ``render``.
    switching:       ((line, tie), ...) topology change: open ``line`` and close tie ``tie`` of
                     ``p2penv.network.cases.TIE_LINES[feeder]`` in its slot (``cases.reconfigure``;
                     other line indices unchanged, ``line_limits_kva`` apply afterwards).
                     Default (): the case's normal topology.
    """

    feeder: str
    load_scale: float = 1.0
    wholesale_price: float = 0.10
    line_limits_kva: tuple[tuple[int, float], ...] = ()
    v_min_pu: float | None = None
    v_max_pu: float | None = None
    description: str = ""
    switching: tuple[tuple[int, int], ...] = ()

    def build_feeder(self) -> Feeder:
        """The case's feeder, switched as ``switching`` says, with this setting's limits applied
        (base loads unchanged)."""
        f = FEEDERS[self.feeder]()
        if self.switching:
            if self.feeder not in TIE_LINES:
                raise ValueError(f"switching: feeder {self.feeder!r} has no tie-line data; known {sorted(TIE_LINES)}")
            f = reconfigure(f, self.switching, TIE_LINES[self.feeder])
        lim = f.line_limit_kva.copy()
        for line, kva in self.line_limits_kva:
            if not 0 <= line < f.n_line:
                raise ValueError(f"line_limits_kva: line {line} outside [0, {f.n_line}) of feeder {self.feeder!r}")
            lim[line] = kva
        vmin = f.v_min.copy() if self.v_min_pu is None else np.full(f.n_bus, float(self.v_min_pu))
        vmax = f.v_max.copy() if self.v_max_pu is None else np.full(f.n_bus, float(self.v_max_pu))
        return dataclasses.replace(f, line_limit_kva=lim, v_min=vmin, v_max=vmax)


FEEDER_SETTINGS: dict[str, FeederSetting] = {
    "ieee33-base": FeederSetting(
        "ieee33", description="Baran-Wu 33-bus, full base load, limits 0.90/1.10 p.u., unrated lines: "
                              "prices separate by losses only"),
    # Line 5 (bus 5 -> 6) carries 1075 kW + 510 kvar of fixed load (LinDistFlow); a 1193 kVA rating
    # leaves sqrt(1193^2 - 510^2) - 1075 = 3.5 kW for the 12 prosumers at buses 6..17.
    "ieee33-congested": FeederSetting(
        "ieee33", line_limits_kva=((5, 1193.0),),
        description="33-bus with line 5->6 rated 1193 kVA: 3.5 kW headroom above the fixed load"),
    # The fixed load puts bus 17 at 0.91593 p.u. (LinDistFlow); dV/dP there is 7.5e-5 p.u./kW, so
    # v_min = 0.9156 leaves about 4.4 kW of extra load at bus 17 before the limit binds.
    "ieee33-undervoltage": FeederSetting(
        "ieee33", v_min_pu=0.9156,
        description="33-bus with v_min = 0.9156 p.u.: about 4 kW of headroom at the end bus 17"),
    "teaching4": FeederSetting("teaching4", description="4-bus hand-check feeder, limits 0.95/1.05 p.u."),
    # -- resilience (S11; docs/resilience.md) --
    # Line 7 (bus 7 -> 8) out: buses 8..17 lose supply; closing tie 2 (bus 11 - bus 21, 2 + j2 ohm)
    # re-feeds them from the 18..21 lateral. LinDistFlow at the full base load: v_min 0.9316 p.u. at
    # bus 32 (base topology 0.9159 at bus 17), inside 0.90/1.10. The other tie that reconnects them,
    # 17 - 32, would leave bus 8 at 0.8623 p.u.
    "ieee33-outage-line7": FeederSetting(
        "ieee33", switching=((7, 2),),
        description="33-bus, line 7->8 out, tie 11-21 closed: buses 8..17 re-fed through the 18..21 lateral"),
    # Islanded: the env runs it with import/export limits 0 and a 10 $/kWh value of lost load. 1 % of
    # the base load (37.15 kW + 23.0 kvar) stays as critical fixed load next to the 32 households.
    "ieee33-island": FeederSetting(
        "ieee33", load_scale=0.01,
        description="33-bus with 1 % of the base load (37 kW) as critical fixed load, run islanded"),
    # No fixed load: the agents' own flows set the voltages (1.0 p.u. when nobody trades). PV-heavy agents
    # at the two feeder ends swing the end voltages by about +0.0017 p.u. at noon and -0.0018 p.u. in the
    # evening under truthful bids; a +-0.1 % band makes both limits bind (scaled stand-in for an LV
    # feeder's +-5 %, see docs/resilience.md).
    "ieee33-voltage-stress": FeederSetting(
        "ieee33", load_scale=0.0, v_min_pu=0.999, v_max_pu=1.001,
        description="33-bus without fixed load, limits 0.999/1.001 p.u.: PV at noon and the evening peak bind"),
    # -- more feeders (issue 21; docs/network_model.md "More feeders") --
    "ieee69-base": FeederSetting(
        "ieee69", description="Baran-Wu/Das 69-bus, full base load (3802 kW), limits 0.90/1.10 p.u., unrated lines: "
                              "prices separate by losses only"),
    # The LV feeders come from pandapower's network functions (needs pandapower, the test extra).
    "ieee-eu-lv-base": FeederSetting(
        "ieee_eu_lv", description="IEEE European LV feeder (balanced single-phase equivalent, 907 buses, 55 loads, "
                                  "57 kW peak snapshot), limits 0.90/1.10 p.u., lines and 800 kVA trafo rated"),
    "cigre-lv-base": FeederSetting(
        "cigre_lv", description="CIGRE LV benchmark (41 buses, 15 loads, 687 kW behind three 20/0.4 kV trafos), "
                                "limits 0.90/1.10 p.u., lines and trafos rated"),
    "kerber-dorfnetz-base": FeederSetting(
        "kerber_dorfnetz", description="Kerber village LV network (116 buses, 57 loads of 6 kW, 400 kVA trafo), "
                                       "limits 0.90/1.10 p.u., lines and trafo rated"),
}


def register_feeder_setting(name: str, setting: FeederSetting) -> None:
    """Add a feeder setting to ``FEEDER_SETTINGS`` (ValueError if the name is taken or the feeder unknown)."""
    if name in FEEDER_SETTINGS:
        raise ValueError(f"feeder setting: name {name!r} is already registered")
    if setting.feeder not in FEEDERS:
        raise ValueError(f"feeder setting.feeder: unknown {setting.feeder!r}; known {sorted(FEEDERS)}")
    if setting.switching:
        setting.build_feeder()  # ValueError if the switched feeder is not radial and connected
    FEEDER_SETTINGS[name] = setting


def load_buses(feeder: Feeder) -> np.ndarray:
    """Non-root buses with a nonzero base load, ascending (the default agent sites)."""
    nr = feeder.non_root
    return nr[(feeder.p_load_kw[nr] != 0) | (feeder.q_load_kvar[nr] != 0)]
