"""Linearised DistFlow (LinDistFlow) for radial feeders (spec S4).

Signs: bus injections ``p_inj`` (kW) / ``q_inj`` (kvar) are positive for generation, so a load is a
negative injection. Line flows run parent -> child (away from the substation).

Model (Baran & Wu DistFlow with the quadratic loss terms dropped, squared voltages v = |V|^2):

    P_l = -sum_{k below l} p_inj_k          (flows = downstream net load, losses ignored)
    v_k = v_root + 2 (R p_inj + X q_inj)_k / S_base

with ``R = path.T diag(r) path`` the shared-path resistance matrix (p.u.) and S_base in kVA. It keeps
R and X, assumes |V| near 1 p.u., small angle differences and no shunt charging.

Losses are linearised around an operating point (P^, Q^, V^):
    L(P, Q) = sum_l r_l (P_l^2 + Q_l^2) / (V_from,l^2 S_base)     (kW)
    L_lin   = L(P^, Q^) + grad L . ((P, Q) - (P^, Q^))
which is exact at the operating point; as a function of injections L_lin = const + g.p_inj + h.q_inj.
Marginal loss factor of a *load* at bus k: MLF_k = 1 + dL/dP_load,k = 1 - g_k (spec S6).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .feeder import Feeder
from .kernels import linearise_states, realise_states


@dataclass(frozen=True, eq=False)
class LinDistFlowResult:
    """LinDistFlow solution.

    v_sq:        (n_bus,) squared voltage magnitude (p.u.^2).
    v:           (n_bus,) voltage magnitude sqrt(v_sq) (p.u.).
    p_flow_kw:   (n_line,) active flow parent -> child (kW).
    q_flow_kvar: (n_line,) reactive flow parent -> child (kvar).
    p_root_kw:   substation import (kW) = total net load (losses excluded).
    """

    v_sq: np.ndarray
    v: np.ndarray
    p_flow_kw: np.ndarray
    q_flow_kvar: np.ndarray
    p_root_kw: float


def _vec(x, n: int, name: str) -> np.ndarray:
    a = np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite")
    return a


def solve(feeder: Feeder, p_inj_kw=None, q_inj_kvar=None) -> LinDistFlowResult:
    """LinDistFlow voltages and flows; default injections are minus the feeder's base loads."""
    n = feeder.n_bus
    p = -feeder.p_load_kw if p_inj_kw is None else _vec(p_inj_kw, n, "p_inj_kw")
    q = -feeder.q_load_kvar if q_inj_kvar is None else _vec(q_inj_kvar, n, "q_inj_kvar")
    pf = -(feeder.path @ p)
    qf = -(feeder.path @ q)
    v_sq = feeder.v_root**2 + 2.0 * (feeder.r_path @ p + feeder.x_path @ q) / feeder.base_kva
    p_root = -float(np.delete(p, feeder.root).sum())
    return LinDistFlowResult(v_sq, np.sqrt(np.maximum(v_sq, 0.0)), pf, qf, p_root)


def voltage_sensitivities(feeder: Feeder) -> tuple[np.ndarray, np.ndarray]:
    """(dv_sq/dp_inj, dv_sq/dq_inj), each (n_bus, n_bus) in p.u.^2 per kW / per kvar."""
    return 2.0 * feeder.r_path / feeder.base_kva, 2.0 * feeder.x_path / feeder.base_kva


def flow_sensitivity(feeder: Feeder) -> np.ndarray:
    """dP_line/dp_inj (n_line, n_bus): -1 where the bus is downstream of the line, else 0."""
    return -feeder.path


def quadratic_loss_kw(feeder: Feeder, p_flow_kw, q_flow_kvar, v_bus_pu=1.0) -> float:
    """sum_l r_l (P_l^2 + Q_l^2) / V_from^2 in kW (exact for series lines given sending-end P, Q, V)."""
    nl = feeder.n_line
    p = _vec(p_flow_kw, nl, "p_flow_kw")
    q = _vec(q_flow_kvar, nl, "q_flow_kvar")
    v = _vec(v_bus_pu, feeder.n_bus, "v_bus_pu")[feeder.from_bus]
    return float(np.sum(feeder.r_pu * (p**2 + q**2) / v**2) / feeder.base_kva)


@dataclass(frozen=True, eq=False)
class LossModel:
    """Affine loss model L = const_kw + g . p_inj + h . q_inj (kW).

    const_kw:  constant term (kW); equals -L(P^, Q^) since L is quadratic.
    g, h:      (n_bus,) dL/dp_inj, dL/dq_inj (kW/kW, kW/kvar); 0 at the root.
    at_kw:     L(P^, Q^), the loss at the operating point (kW).
    """

    const_kw: float
    g: np.ndarray
    h: np.ndarray
    at_kw: float

    @property
    def mlf(self) -> np.ndarray:
        """(n_bus,) marginal loss factor 1 + dL/dP_load (spec S6)."""
        return 1.0 - self.g

    def loss_kw(self, p_inj_kw, q_inj_kvar) -> float:
        return float(self.const_kw + self.g @ np.asarray(p_inj_kw, float) + self.h @ np.asarray(q_inj_kvar, float))

    @classmethod
    def lossless(cls, feeder: Feeder) -> "LossModel":
        """Flat start (zero flows): no losses, MLF = 1."""
        z = np.zeros(feeder.n_bus)
        return cls(0.0, z, z.copy(), 0.0)


def linearise_losses(feeder: Feeder, p_flow_kw, q_flow_kvar, v_bus_pu=1.0) -> LossModel:
    """Linearise the quadratic loss around line flows (sending end) and bus voltages."""
    nl = feeder.n_line
    p = _vec(p_flow_kw, nl, "p_flow_kw")
    q = _vec(q_flow_kvar, nl, "q_flow_kvar")
    v = _vec(v_bus_pu, feeder.n_bus, "v_bus_pu")[feeder.from_bus]
    if np.any(v <= 0):
        raise ValueError("v_bus_pu: must be > 0")
    w = feeder.r_pu / (v**2 * feeder.base_kva)
    at = float(np.sum(w * (p**2 + q**2)))
    dp, dq = 2.0 * w * p, 2.0 * w * q          # dL/dP_l, dL/dQ_l
    # P_l = -path @ p_inj  =>  dL/dp_inj = -path.T @ dL/dP
    g = -(feeder.path.T @ dp)
    h = -(feeder.path.T @ dq)
    return LossModel(at - float(dp @ p + dq @ q), g, h, at)


def loss_model_at(feeder: Feeder, p_inj_kw=None, q_inj_kvar=None, *, use_voltages: bool = True) -> LossModel:
    """Loss model linearised at the LinDistFlow operating point of the given injections
    (default: base loads); ``use_voltages=False`` uses V = 1 p.u. in the loss formula."""
    pf = solve(feeder, p_inj_kw, q_inj_kvar)
    return linearise_losses(feeder, pf.p_flow_kw, pf.q_flow_kvar, pf.v if use_voltages else 1.0)


# LinDistFlow drops the loss terms of the DistFlow equations; below about 0.8 p.u. its voltages are
# off by more than the limits they are compared with, and as v^2 -> 0 the loss factors diverge.
# Outside this range the model means nothing, so the environments refuse instead of pricing it.
MIN_VALID_V_PU = 0.5

_V_TOL = 1e-9  # p.u. tolerance of the realised voltage-limit check
_KW_TOL = 1e-6  # kW tolerance of the realised line-rating check


@dataclass(frozen=True, eq=False)
class NetworkState:
    """Realised LinDistFlow state of a step at the given nodal net loads.

    net_load_kw:  (n_bus,) fixed load + every agent's physical net load (matched or backstop).
    voltages:     (n_bus,) |V| p.u.;  flows_kw, flows_kvar: (n_line,) parent -> child.
    loading:      (n_line,) |S| / rating (0 on unrated lines).
    losses_kw:    the affine loss model of the step at this point;  import_kw = sum(net load) + losses.
    overload_kw:  (n_line,) |P| beyond the active limit sqrt(S^2 - Q^2);  voltage_violation_pu
                  (n_bus,) beyond [v_min, v_max].  violated: any of them beyond tolerance.
    """

    net_load_kw: np.ndarray
    voltages: np.ndarray
    flows_kw: np.ndarray
    flows_kvar: np.ndarray
    loading: np.ndarray
    losses_kw: float
    import_kw: float
    overload_kw: np.ndarray
    voltage_violation_pu: np.ndarray
    violated: bool


@dataclass(frozen=True, eq=False)
class NetworkStates:
    """Realised states of E markets (``RealisedNetwork.states``): the fields of ``NetworkState`` with a
    leading market axis ((E, n_bus), (E, n_line), (E,)); ``states[e]`` is market e's ``NetworkState``."""

    net_load_kw: np.ndarray
    voltages: np.ndarray
    flows_kw: np.ndarray
    flows_kvar: np.ndarray  # (n_line,): the reactive loads are the same in every market
    loading: np.ndarray
    losses_kw: np.ndarray
    import_kw: np.ndarray
    overload_kw: np.ndarray
    voltage_violation_pu: np.ndarray
    violated: np.ndarray

    def __len__(self) -> int:
        return self.net_load_kw.shape[0]

    def __getitem__(self, e: int) -> NetworkState:
        return NetworkState(self.net_load_kw[e], self.voltages[e], self.flows_kw[e], self.flows_kvar,
                            self.loading[e], float(self.losses_kw[e]), float(self.import_kw[e]), self.overload_kw[e],
                            self.voltage_violation_pu[e], bool(self.violated[e]))


class RealisedNetwork:
    """LinDistFlow at varying active net loads with fixed reactive loads (the environments' case).

    Reactive power has no decision variable, so Q flows, the Q part of the voltages and the active
    line limits sqrt(S^2 - Q^2) are computed once; each ``state`` costs a few matrix-vector products.
    """

    def __init__(self, feeder: Feeder, q_load_kvar: np.ndarray):
        f = self.feeder = feeder
        self.q_load_kvar = q_load_kvar
        self.qf = f.path @ q_load_kvar
        self.vq = f.x_path @ q_load_kvar
        rated = np.isfinite(f.line_limit_kva)
        lim = np.where(rated, f.line_limit_kva, 1.0)
        self.inv_limit = np.where(rated, 1.0 / lim, 0.0)
        self.p_limit_kw = np.where(rated, np.sqrt(np.maximum(lim**2 - self.qf**2, 0.0)), np.inf)
        self.w_line = f.r_pu / f.base_kva  # loss weight of each line before the 1 / V^2 factor

    def voltages(self, net_load_kw: np.ndarray, what: str = "net load") -> np.ndarray:
        """|V| (p.u.); ValueError when LinDistFlow leaves its range (``MIN_VALID_V_PU``)."""
        f = self.feeder
        v_sq = f.v_root**2 - 2.0 * (f.r_path @ net_load_kw + self.vq) / f.base_kva
        k = int(np.argmin(v_sq))
        if not v_sq[k] >= MIN_VALID_V_PU**2:
            v = np.sqrt(max(v_sq[k], 0.0))
            raise ValueError(f"{what}: LinDistFlow puts bus {k} at v^2 = {v_sq[k]:.3g} (|V| = {v:.3f} p.u.), below "
                             f"the {MIN_VALID_V_PU} p.u. where the linear model is meaningless; reduce the load")
        return np.sqrt(v_sq)

    def state(self, net_load_kw: np.ndarray, loss_model: LossModel, what: str = "net load") -> NetworkState:
        f = self.feeder
        pf = f.path @ net_load_kw
        v = self.voltages(net_load_kw, what)
        losses = loss_model.const_kw - loss_model.g @ net_load_kw - loss_model.h @ self.q_load_kvar
        loading = np.hypot(pf, self.qf) * self.inv_limit
        over = np.maximum(np.abs(pf) - self.p_limit_kw, 0.0)
        vv = np.maximum(np.maximum(f.v_min - v, v - f.v_max), 0.0)
        vv[f.root] = 0.0
        violated = bool(over.max() > _KW_TOL or vv.max() > _V_TOL)
        return NetworkState(net_load_kw, v, pf, self.qf, loading, float(losses), float(net_load_kw.sum() + losses),
                            over, vv, violated)

    def loss_model(self, state: NetworkState) -> LossModel:
        """Losses linearised at a realised state: ``linearise_losses`` at its flows and voltages, with
        the argument checks skipped (a ``NetworkState`` is valid by construction; tested equal)."""
        f = self.feeder
        w = self.w_line / state.voltages[f.from_bus] ** 2
        p, q = state.flows_kw, state.flows_kvar
        at = float(w @ (p * p + q * q))
        dp, dq = 2.0 * w * p, 2.0 * w * q
        return LossModel(at - float(dp @ p + dq @ q), -(dp @ f.path), -(dq @ f.path), at)

    def states(self, agent_net_load_kw: np.ndarray, buses: np.ndarray, p_fixed_kw: np.ndarray,
               loss_models, what: str = "net load") -> NetworkStates:
        """E states at once: market e at ``p_fixed_kw`` plus ``agent_net_load_kw[e, i]`` at bus ``buses[i]``
        ((E, N) kW), losses by ``loss_models[e]``. One compiled pass (``kernels.realise_states``);
        ValueError naming the first market whose voltages leave LinDistFlow's range."""
        f = self.feeder
        const = np.array([lm.const_kw for lm in loss_models], dtype=np.float64)
        g = np.array([lm.g for lm in loss_models], dtype=np.float64)
        h = np.array([lm.h for lm in loss_models], dtype=np.float64)
        buses_out, lines_out, totals, violated, invalid = realise_states(
            np.ascontiguousarray(agent_net_load_kw, dtype=np.float64), buses, p_fixed_kw, const, g, h,
            self.q_load_kvar, f.order, f.parent, f.parent_line, f.r_pu, self.vq, self.qf, self.p_limit_kw,
            self.inv_limit, f.v_root, f.base_kva, f.v_min, f.v_max, f.root, _V_TOL, _KW_TOL, MIN_VALID_V_PU**2)
        d, v, vv = buses_out[0], buses_out[2], buses_out[3]
        pf, loading, over = lines_out[0], lines_out[1], lines_out[2]
        if invalid >= 0:
            self.voltages(d[invalid], what.format(e=invalid))  # raises, naming the bus
        return NetworkStates(d, v, pf, self.qf, loading, totals[0], totals[1], over, vv, violated)

    def loss_models(self, states: NetworkStates) -> list[LossModel]:
        """``loss_model`` of every market of ``states`` (one compiled pass, ``kernels.linearise_states``)."""
        f = self.feeder
        const, g, h, at = linearise_states(states.flows_kw, self.qf, states.voltages, self.w_line, f.from_bus,
                                           f.order, f.parent, f.parent_line)
        return [LossModel(float(const[e]), g[e], h[e], float(at[e])) for e in range(const.shape[0])]


# -- exact branch flow (DistFlow) operating points for successive linearisation ---------------------
@dataclass(frozen=True, eq=False)
class DistFlowResult:
    """Exact DistFlow (branch-flow) solution of a radial feeder at given net loads.

    p_flow_kw, q_flow_kvar: (n_line,) sending-end flows (downstream loads + downstream losses).
    v:            (n_bus,) |V| (p.u.).
    line_loss_kw: (n_line,) r_l (P_l^2 + Q_l^2) / V_from^2.
    iterations:   backward/forward sweeps used.
    """

    p_flow_kw: np.ndarray
    q_flow_kvar: np.ndarray
    v: np.ndarray
    line_loss_kw: np.ndarray
    iterations: int

    @property
    def loss_kw(self) -> float:
        return float(self.line_loss_kw.sum())


def _subtree(feeder: Feeder) -> np.ndarray:
    """T[l, m] = 1 when line m is line l or lies below it (m's to-bus is downstream of l)."""
    return feeder.path[:, feeder.to_bus]


def distflow(feeder: Feeder, net_load_kw, q_load_kvar, *, tol: float = 1e-10, max_iter: int = 100) -> DistFlowResult:
    """Baran & Wu DistFlow with its loss terms, by fixed-point sweeps from LinDistFlow:

        P_l = sum_{k below l} d_k + sum_{m at/below l} r_m l_m,   (Q alike with x)
        v_to = v_from - 2 (r P_l + x Q_l) + (r^2 + x^2) l_l,       l_l = (P_l^2 + Q_l^2) / v_from

    (v = |V|^2, p.u.). Exact AC for a radial feeder without shunts (pandapower agrees to ~1e-9).
    Stops when the line currents move by less than ``tol`` (p.u.); ValueError if it diverges."""
    f = feeder
    sb = f.base_kva
    d = _vec(net_load_kw, f.n_bus, "net_load_kw") / sb
    dq = _vec(q_load_kvar, f.n_bus, "q_load_kvar") / sb
    T = _subtree(f)
    p0, q0 = f.path @ d, f.path @ dq
    r, x = f.r_pu, f.x_pu
    z2 = r**2 + x**2
    u = np.zeros(f.n_line)
    for it in range(1, max_iter + 1):
        P = p0 + T @ (r * u)
        Q = q0 + T @ (x * u)
        v = f.v_root**2 - f.path.T @ (2.0 * (r * P + x * Q) - z2 * u)
        vf = v[f.from_bus]
        if not np.all(vf > 0):
            raise ValueError("distflow: voltage collapse (v^2 <= 0); the load is beyond the feeder's capacity")
        u_new = (P**2 + Q**2) / vf
        done = np.max(np.abs(u_new - u)) < tol
        u = u_new
        if done:
            break
    else:
        raise ValueError(f"distflow: no convergence in {max_iter} sweeps (load too heavy)")
    P = p0 + T @ (r * u)
    Q = q0 + T @ (x * u)
    v = f.v_root**2 - f.path.T @ (2.0 * (r * P + x * Q) - z2 * u)
    return DistFlowResult(P * sb, Q * sb, np.sqrt(v), r * u * sb, it)


def distflow_loss_model(feeder: Feeder, net_load_kw, q_load_kvar, state: DistFlowResult | None = None) -> LossModel:
    """Losses linearised *exactly* at the DistFlow point of the given net loads (``distflow``).

    g, h are the derivatives of the total DistFlow loss with respect to the injections, through the
    whole branch-flow model: a load at bus k raises every upstream flow by its own marginal losses
    too (the chain), lowers the voltages that divide P^2 + Q^2, and draws the reactive losses x l
    upstream. ``linearise_losses`` at LinDistFlow flows keeps only the first-order term
    2 r P / V^2 of each line. MLF = 1 - g is then the AC marginal loss factor (radial, no shunts)."""
    f = feeder
    d = _vec(net_load_kw, f.n_bus, "net_load_kw")
    dq = _vec(q_load_kvar, f.n_bus, "q_load_kvar")
    st = distflow(f, d, dq) if state is None else state
    sb = f.base_kva
    P, Q = st.p_flow_kw / sb, st.q_flow_kvar / sb
    v = st.v**2
    r, x = f.r_pu, f.x_pu
    u = st.line_loss_kw / (r * sb)
    T, Dp = _subtree(f), f.path
    Ef = v[f.from_bus]
    # G(u, d, dq) = u * v_from - P^2 - Q^2 = 0 with P, Q, v affine in (u, d, dq).
    dP_du, dQ_du = T * r, T * x
    dv_du = -Dp.T @ (2.0 * (r[:, None] * dP_du + x[:, None] * dQ_du) - np.diag(r**2 + x**2))
    fb = f.from_bus
    dG_du = np.diag(Ef) + u[:, None] * dv_du[fb] - 2.0 * P[:, None] * dP_du - 2.0 * Q[:, None] * dQ_du
    dv_dd = -Dp.T @ (2.0 * r[:, None] * Dp)
    dv_ddq = -Dp.T @ (2.0 * x[:, None] * Dp)
    dG_dd = u[:, None] * dv_dd[fb] - 2.0 * P[:, None] * Dp
    dG_ddq = u[:, None] * dv_ddq[fb] - 2.0 * Q[:, None] * Dp
    # dL/dd = r . du/dd = -r . dG_du^-1 dG_dd: one adjoint solve.
    lam = np.linalg.solve(dG_du.T, r)
    dl_dd = -(lam @ dG_dd)
    dl_ddq = -(lam @ dG_ddq)
    g, h = -dl_dd, -dl_ddq  # injections are minus net loads
    at = st.loss_kw
    return LossModel(float(at + g @ d + h @ dq), g, h, at)
