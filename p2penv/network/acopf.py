"""DLMPs against pandapower's AC optimal power flow (project issue 10, "accuracy against AC").

One case description (``AcCase``: a feeder with its limits, the wholesale price, controllable DERs)
builds both models:

* ``to_acopf_net``: pandapower net (``ac_check.to_pandapower``) with the DERs as controllable sgens
  (active power only: ``min_q_mvar = max_q_mvar = 0``, like the market's active-power orders), linear
  costs (``create_poly_cost``), the ext_grid at the wholesale price, bus voltage limits and line
  current limits (``max_i_ka`` = rating / (sqrt(3) base_kv), ``max_loading_percent`` = 100);
  ``run_acopf`` solves it with ``pandapower.runopp(init="pf")`` and returns ``res_bus.lam_p`` ($/MWh).
* ``to_market``: a ``DlmpMarket`` book with one sell order per DER at its cost (quantity = its
  capacity over one 1 h step), the feeder's base loads as fixed loads, the substation at the price.

``compare`` clears the book with ``loss_iterations`` = 1, 2, ... and reports the DLMPs ($/kWh x 1000 =
$/MWh) against ``lam_p`` at every bus. The built-in cases (``CASES``) are the ``ieee33`` feeder (Baran &
Wu, identical to ``pandapower.networks.case33bw``) at lambda_0 = 100 $/MWh:

* ``voltage``: V in [0.93, 1.05] p.u. (the base loads give 0.913 p.u. at bus 17 in AC), DERs dearer
  than the substation at the remote buses 17 (130 $/MWh), 32 (140) and 24 (150), 500 kW each: they
  run only to hold the voltage;
* ``congestion``: line 5 (bus 5 -> 6, base flow 1075 kW + 510 kvar) rated 1000 kVA, voltage limits
  0.90/1.10 p.u. slack, DERs at buses 14 (130 $/MWh), 17 (140) and 32 (150), 300 kW each.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .ac_check import to_pandapower
from .cases import ieee33
from .dlmp import DlmpClearing, DlmpMarket
from .feeder import Feeder
from .lindistflow import loss_model_at


@dataclass(frozen=True)
class Der:
    """A controllable DER: bus, offer/cost ($/kWh) and capacity (kW, active power only)."""

    bus: int
    cost: float
    p_max_kw: float


@dataclass(frozen=True, eq=False)
class AcCase:
    """One case for both models: the feeder (limits, base loads = fixed loads), lambda_0 ($/kWh), DERs."""

    name: str
    feeder: Feeder
    wholesale_price: float
    ders: tuple[Der, ...]


def voltage_case() -> AcCase:
    f = dataclasses.replace(ieee33(), v_min=0.93, v_max=1.05)
    return AcCase("voltage", f, 0.10, (Der(17, 0.130, 500.0), Der(32, 0.140, 500.0), Der(24, 0.150, 500.0)))


def congestion_case() -> AcCase:
    lim = np.full(32, np.inf)
    lim[5] = 1000.0
    f = dataclasses.replace(ieee33(), line_limit_kva=lim)
    return AcCase("congestion", f, 0.10, (Der(14, 0.130, 300.0), Der(17, 0.140, 300.0), Der(32, 0.150, 300.0)))


CASES = {"voltage": voltage_case, "congestion": congestion_case}


UNRATED_I_KA = 10.0


# -- AC-OPF ------------------------------------------------------------------------------------------
def to_acopf_net(case: AcCase):
    """pandapower net of the case, ready for ``runopp`` (see the module docstring)."""
    import pandapower as pp

    f = case.feeder
    net = to_pandapower(f)
    net.bus["min_vm_pu"] = f.v_min
    net.bus["max_vm_pu"] = np.where(np.isfinite(f.v_max), f.v_max, 2.0)
    rated = np.isfinite(f.line_limit_kva)
    # unrated lines: 10 kA (219 MVA at 12.66 kV); to_pandapower's 1e5 kA stalls the interior point
    # solver as soon as one line has a real rating
    net.line["max_i_ka"] = np.where(rated, f.line_limit_kva / (np.sqrt(3.0) * f.base_kv * 1000.0), UNRATED_I_KA)
    net.line["max_loading_percent"] = 100.0
    pp.create_poly_cost(net, int(net.ext_grid.index[0]), "ext_grid", cp1_eur_per_mw=case.wholesale_price * 1000.0)
    for g in case.ders:
        s = pp.create_sgen(net, g.bus, p_mw=0.0, q_mvar=0.0, controllable=True, min_p_mw=0.0,
                           max_p_mw=g.p_max_kw / 1000.0, min_q_mvar=0.0, max_q_mvar=0.0)
        pp.create_poly_cost(net, s, "sgen", cp1_eur_per_mw=g.cost * 1000.0)
    return net


@dataclass(frozen=True, eq=False)
class AcOpfResult:
    """AC-OPF solution: lam_p ($/MWh per bus), vm_pu, DER dispatch (kW), import (kW), losses (kW), cost ($/h)."""

    lam_p: np.ndarray
    vm_pu: np.ndarray
    der_kw: np.ndarray
    import_kw: float
    loss_kw: float
    cost: float


def run_acopf(case: AcCase) -> AcOpfResult:
    """``pandapower.runopp(init="pf")`` on ``to_acopf_net(case)``; raises if it does not converge."""
    import pandapower as pp

    net = to_acopf_net(case)
    pp.runopp(net, init="pf", calculate_voltage_angles=True, numba=False)
    if not net.OPF_converged:
        raise RuntimeError(f"AC-OPF of case {case.name!r} did not converge")
    return AcOpfResult(
        lam_p=net.res_bus.lam_p.to_numpy(float), vm_pu=net.res_bus.vm_pu.to_numpy(float),
        der_kw=net.res_sgen.p_mw.to_numpy(float) * 1000.0, import_kw=float(net.res_ext_grid.p_mw.sum()) * 1000.0,
        loss_kw=float(net.res_line.pl_mw.sum()) * 1000.0, cost=float(net.res_cost),
    )


# -- DLMP market ---------------------------------------------------------------------------------------
def to_market(case: AcCase) -> tuple[DlmpMarket, dict]:
    """The case as a DLMP market and the keyword arguments of its ``clear`` (one 1 h step).

    The initial loss linearisation is LinDistFlow at the base loads (no DER running)."""
    f = case.feeder
    m = DlmpMarket(f, [g.bus for g in case.ders], loss_model=loss_model_at(f))
    book = dict(prices=np.array([g.cost for g in case.ders]), quantities=np.array([g.p_max_kw for g in case.ders]),
                sides=np.ones(len(case.ders), dtype=np.int8), wholesale_price=case.wholesale_price,
                p_load_kw=f.p_load_kw, q_load_kvar=f.q_load_kvar)
    return m, book


@dataclass(frozen=True, eq=False)
class Comparison:
    """DLMP ($/MWh) against AC-OPF lam_p ($/MWh) at every bus for one iteration budget."""

    case: str
    loss_point: str            # ``clear(loss_point=...)``
    loss_iterations: int       # budget passed to ``clear``
    iterations_used: int
    dlmp: np.ndarray           # $/MWh
    lam_p: np.ndarray          # $/MWh
    error: np.ndarray          # dlmp - lam_p
    max_abs_error: float
    worst_bus: int
    lp_cost: float             # $ (LP objective: lambda_0 P0 + DER cost, 1 h)
    ac_cost: float             # $ (AC-OPF objective)
    der_kw: np.ndarray
    ac_der_kw: np.ndarray
    clearing: DlmpClearing


def compare(case: AcCase, iterations=(1, 2, 3, 5), ac: AcOpfResult | None = None,
            loss_point: str = "lindistflow") -> list[Comparison]:
    """Clear the case's book with each ``loss_iterations`` budget (fresh market each) and compare."""
    ac = run_acopf(case) if ac is None else ac
    out = []
    for n in iterations:
        m, book = to_market(case)
        r = m.clear(**book, loss_iterations=n, loss_point=loss_point)
        dl = r.dlmp * 1000.0
        err = dl - ac.lam_p
        k = int(np.argmax(np.abs(err)))
        out.append(Comparison(case.name, loss_point, n, r.loss_iterations, dl, ac.lam_p, err, float(abs(err[k])), k,
                              float(r.objective), ac.cost, r.matched.copy(), ac.der_kw, r))
    return out
