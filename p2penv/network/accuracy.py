"""LinDistFlow against pandapower's AC power flow on one feeder: the accuracy rows of docs/network_model.md.

Two comparisons at the feeder's base loads (optionally scaled):

* **model error**: LinDistFlow (``lindistflow.solve`` and the affine loss models) against the AC power
  flow of the *same* feeder (``ac_check.to_pandapower``: series branches in p.u., constant-power loads);
* **conversion error** (feeders imported with ``pandapower_feeders.from_pandapower``): the AC power
  flow of the converted feeder against the AC power flow of the original pandapower net (which keeps
  the transformers' magnetising branches and iron losses, the line shunts and taps the conversion
  drops). Unbalance is not part of either: pandapower's balanced power flow, like the conversion, sums
  the phases of an asymmetric load.

pandapower is imported on call (the ``test`` extra).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .ac_check import ac_power_flow
from .feeder import Feeder
from .lindistflow import linearise_losses, loss_model_at
from .lindistflow import solve as lindistflow


@dataclass(frozen=True)
class LinDistFlowAccuracy:
    """One feeder's LinDistFlow-vs-AC row (kW, p.u.).

    load_kw:            total base load x load_scale.
    ac_loss_kw:         AC series losses of the feeder (lines and transformer windings).
    ac_v_min_pu, lin_v_min_pu: lowest voltage in AC / LinDistFlow.
    max_dv_pu:          max_k |V_ac - V_lin|, at bus ``worst_bus``.
    loss_at_ac_kw:      the affine loss model linearised at the AC point, evaluated at the loads.
    loss_at_lin_kw:     linearised at LinDistFlow's own point (what ``dlmp_v0`` does each step).
    net_max_dv_pu:      max |V| difference between the AC flows of the converted feeder and of the
                        original pandapower net (nan without a net).
    net_loss_kw:        the original net's AC losses incl. iron losses (p_ext_grid - loads; nan without).
    """

    feeder: str
    n_bus: int
    load_kw: float
    ac_loss_kw: float
    ac_v_min_pu: float
    lin_v_min_pu: float
    max_dv_pu: float
    worst_bus: int
    loss_at_ac_kw: float
    loss_at_lin_kw: float
    net_max_dv_pu: float = float("nan")
    net_loss_kw: float = float("nan")

    def row(self) -> str:
        """Markdown row: feeder, buses, load, V, losses (errors relative to the AC loss), conversion."""
        rel = lambda x: f"{x:.2f} ({100 * (x - self.ac_loss_kw) / self.ac_loss_kw:+.1f} %)"  # noqa: E731
        conv = ("—" if np.isnan(self.net_max_dv_pu)
                else f"{self.net_max_dv_pu:.1e} / {self.net_loss_kw:.2f}")
        return (f"| `{self.feeder}` | {self.n_bus} | {self.load_kw:.1f} | {self.max_dv_pu:.5f} (bus {self.worst_bus}) "
                f"| {self.ac_v_min_pu:.4f} / {self.lin_v_min_pu:.4f} | {self.ac_loss_kw:.2f} | {rel(self.loss_at_ac_kw)} "
                f"| {rel(self.loss_at_lin_kw)} | {conv} |")


def lindistflow_accuracy(feeder: Feeder, net=None, *, load_scale: float = 1.0) -> LinDistFlowAccuracy:
    """The accuracy row of ``feeder`` at ``load_scale`` x its base loads; ``net``: the pandapower net it was
    converted from (``pandapower_feeders.from_pandapower``), whose loads are scaled alike, for the
    conversion columns."""
    p, q = -feeder.p_load_kw * load_scale, -feeder.q_load_kvar * load_scale
    ac = ac_power_flow(feeder, p, q)
    lin = lindistflow(feeder, p, q)
    dv = np.abs(ac.v - lin.v)
    at_ac = linearise_losses(feeder, ac.p_flow_kw, ac.q_flow_kvar, ac.v).loss_kw(p, q)
    at_lin = loss_model_at(feeder, p, q).loss_kw(p, q)
    extra = {}
    if net is not None:
        import pandapower as pp

        from .pandapower_feeders import pandapower_buses

        net = copy.deepcopy(net)
        for tab in ("load", "asymmetric_load", "sgen", "asymmetric_sgen"):
            if tab in net and len(net[tab]):
                net[tab]["scaling"] = net[tab]["scaling"] * load_scale
        pp.runpp(net, tolerance_mva=1e-10, calculate_voltage_angles=True)
        v_net = net.res_bus.vm_pu.loc[pandapower_buses(net)].to_numpy(float)
        extra = dict(net_max_dv_pu=float(np.max(np.abs(v_net - ac.v))),
                     net_loss_kw=float(net.res_ext_grid.p_mw.sum() * 1000.0 + p.sum()))
    return LinDistFlowAccuracy(feeder.name, feeder.n_bus, float(-p.sum()), ac.loss_kw, float(ac.v.min()),
                               float(lin.v.min()), float(dv.max()), int(dv.argmax()), at_ac, at_lin, **extra)
