"""AC power-flow reference through pandapower (used to validate LinDistFlow; not on the hot path)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .feeder import Feeder


@dataclass(frozen=True, eq=False)
class AcResult:
    """pandapower Newton-Raphson solution.

    v:           (n_bus,) voltage magnitude (p.u.).
    p_flow_kw:   (n_line,) sending-end (parent side) active flow (kW).
    q_flow_kvar: (n_line,) sending-end reactive flow (kvar).
    loss_kw:     total active line loss (kW).
    p_root_kw:   substation active import (kW).
    """

    v: np.ndarray
    p_flow_kw: np.ndarray
    q_flow_kvar: np.ndarray
    loss_kw: float
    p_root_kw: float


def to_pandapower(feeder: Feeder, p_inj_kw=None, q_inj_kvar=None):
    """pandapower net of the feeder with loads = minus the injections (default: base loads)."""
    import pandapower as pp

    p = -feeder.p_load_kw if p_inj_kw is None else np.asarray(p_inj_kw, float)
    q = -feeder.q_load_kvar if q_inj_kvar is None else np.asarray(q_inj_kvar, float)
    net = pp.create_empty_network(sn_mva=feeder.base_kva / 1000.0)
    for k in range(feeder.n_bus):
        pp.create_bus(net, vn_kv=feeder.base_kv, index=k)
    pp.create_ext_grid(net, feeder.root, vm_pu=feeder.v_root)
    r, x = feeder.r_ohm(), feeder.x_ohm()
    for l in range(feeder.n_line):
        pp.create_line_from_parameters(
            net, int(feeder.from_bus[l]), int(feeder.to_bus[l]), 1.0, r[l], x[l], 0.0, 1e5, index=l
        )
    for k in feeder.non_root:
        if p[k] != 0 or q[k] != 0:
            pp.create_load(net, int(k), p_mw=-p[k] / 1000.0, q_mvar=-q[k] / 1000.0)
    return net


def results(net) -> AcResult:
    """Extract an AcResult from a converged pandapower net (bus/line order as in the net)."""
    return AcResult(
        v=net.res_bus.vm_pu.to_numpy(float),
        p_flow_kw=net.res_line.p_from_mw.to_numpy(float) * 1000.0,
        q_flow_kvar=net.res_line.q_from_mvar.to_numpy(float) * 1000.0,
        loss_kw=float(net.res_line.pl_mw.sum()) * 1000.0,
        p_root_kw=float(net.res_ext_grid.p_mw.sum()) * 1000.0,
    )


def ac_power_flow(feeder: Feeder, p_inj_kw=None, q_inj_kvar=None) -> AcResult:
    """Run pandapower AC power flow (tolerance 1e-10 MVA) for the given injections."""
    import pandapower as pp

    net = to_pandapower(feeder, p_inj_kw, q_inj_kvar)
    pp.runpp(net, tolerance_mva=1e-10, calculate_voltage_angles=True)
    return results(net)


class AcAudit:
    """pandapower AC power flow on realised injections; one net, loads updated in place.

    ``compare`` reports AC minus LinDistFlow (voltages, flows, losses, import) for one
    ``NetworkState``; an AC divergence is reported in the result, never raised.
    """

    def __init__(self, feeder: Feeder):
        self.feeder = feeder
        self.net = to_pandapower(feeder, np.where(np.arange(feeder.n_bus) == feeder.root, 0.0, -1.0),
                                 np.zeros(feeder.n_bus))
        self.bus_of_load = feeder.non_root  # to_pandapower creates one load per non-root bus in this order

    def compare(self, state, q_load_kvar: np.ndarray) -> dict:
        import pandapower as pp

        b = self.bus_of_load
        self.net.load["p_mw"] = state.net_load_kw[b] / 1000.0
        self.net.load["q_mvar"] = q_load_kvar[b] / 1000.0
        try:
            pp.runpp(self.net, tolerance_mva=1e-10, calculate_voltage_angles=True, numba=False)
        except Exception as e:  # noqa: BLE001 - an AC divergence is reported, never raised
            return {"ac_converged": False, "ac_error": f"{type(e).__name__}: {e}"}
        ac = results(self.net)
        return {
            "ac_converged": True,
            "ac_max_dv_pu": float(np.max(np.abs(ac.v - state.voltages))),
            "ac_max_dflow_kw": float(np.max(np.abs(ac.p_flow_kw - state.flows_kw))),
            "ac_loss_kw": ac.loss_kw,
            "ac_dloss_kw": ac.loss_kw - state.losses_kw,
            "ac_import_kw": ac.p_root_kw,
            "ac_dimport_kw": ac.p_root_kw - state.import_kw,
            "ac_v_min_pu": float(ac.v.min()),
        }
