"""Compiled part of ``DlmpMarket``: the clearing's arrays from one LP solution.

From the LP's column values x and row duals y, ``clearing_arrays`` computes in one pass what
``DlmpClearing`` reports: matched kWh, net loads, the DLMP and its four parts, LinDistFlow flows and
voltages, loadings, losses and slacks. As numpy this is ~25 small array operations per step, each
costing more in call overhead than in arithmetic at the size of one feeder. The formulas are those of
``p2penv.network.dlmp`` (module docstring); the column layout is ``DlmpMarket``'s: per order a buy and
a sell column, then P0, the two balance slacks, two slacks per rated line, two per non-root bus.

On a radial feeder the products with the path matrices are tree sweeps, O(n_bus) instead of
O(n_bus^2): line flows P = path @ d are subtree sums (one pass from the leaves up, in reverse BFS
order), and (R d)_j = sum of r_l P_l over the lines between the root and bus j (one pass down). The
DistFlow sensitivities (``path``, ``r_path``) stay the model; the sweeps are how they are applied.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..market.mechanisms.types import BUY, SELL


@numba.njit(cache=True, nogil=True, inline="always")
def _flows(d, order, parent, parent_line, acc, pf):
    """pf[l] = sum of d below line l (= path @ d); ``acc`` (n_bus,) scratch."""
    for k in range(d.shape[0]):
        acc[k] = d[k]
    for a in range(order.shape[0] - 1, 0, -1):
        k = order[a]
        acc[parent[k]] += acc[k]
        pf[parent_line[k]] = acc[k]


@numba.njit(cache=True, nogil=True, inline="always")
def _down(w, order, parent, parent_line, out):
    """out[j] = sum of w[l] over the lines between the root and bus j (= path.T @ w); out[root] = 0."""
    out[order[0]] = 0.0
    for a in range(1, order.shape[0]):
        k = order[a]
        out[k] = out[parent[k]] + w[parent_line[k]]


@numba.njit(cache=True, nogil=True)
def clearing_arrays(x, y, dt, buses, d_fixed, mlf, order, parent, parent_line, r_pu, rated, r_path, vrows, pf_off,
                    qf_all, vq_all, v_root, base_kva, lim_r, const_kw, g, h, dq, v_min, v_max, root, cost, p, lam):
    """Returns (orders (2, n): matched kWh and unit price; buses (8, n_bus): net load, energy, loss,
    congestion, voltage, DLMP, |V|, voltage violation; lines (3, n_line): flow kW, loading, rating slack
    kW; then P0, losses, operator surplus, welfare, objective, unserved kW, total slack). Three arrays,
    not sixteen: boxing each returned array costs about a microsecond.

    ``pf_off``: (n_line,) loss correction of the line flows, or an empty array for none.
    Sums run in the order numpy's would (dlmp = ((energy + loss) + congestion) + voltage)."""
    n = buses.shape[0]
    nb = d_fixed.shape[0]
    n_line = nb - 1
    nl = rated.shape[0]
    nv = vrows.shape[0]
    orders = np.empty((2, n))
    buses_out = np.zeros((8, nb))
    lines_out = np.zeros((3, n_line))
    matched = orders[0]
    d = buses_out[0]
    energy, loss, congestion, voltage, dlmp, v, vv = (buses_out[1], buses_out[2], buses_out[3], buses_out[4],
                                                      buses_out[5], buses_out[6], buses_out[7])
    pf, loading, line_v = lines_out[0], lines_out[1], lines_out[2]
    for k in range(nb):
        d[k] = d_fixed[k]
    bids = 0.0
    asks = 0.0
    for i in range(n):
        xb, xs = x[i], x[n + i]
        matched[i] = (xb + xs) * dt
        d[buses[i]] += xb - xs
        bids += p[i] * xb
        asks += p[i] * xs
    y0 = y[0] / dt
    for k in range(nb):
        energy[k] = y0
        loss[k] = y0 * (mlf[k] - 1.0)
    if nl > 0:  # -(y_lines . path): a zero sum keeps numpy's sign (-0.0), which observations carry
        y_line = np.zeros(n_line)
        for a in range(nl):
            y_line[rated[a]] = y[1 + a] / dt
        _down(y_line, order, parent, parent_line, congestion)
        for k in range(nb):
            congestion[k] = -congestion[k]
    for a in range(nv):
        yv = y[1 + nl + a] / dt
        if yv != 0.0:
            row = vrows[a]
            for k in range(nb):
                voltage[k] += yv * r_path[row, k]
    for k in range(nb):
        dlmp[k] = energy[k] + loss[k] + congestion[k] + voltage[k]
    for i in range(n):
        orders[1, i] = dlmp[buses[i]]
    acc = np.empty(nb)
    _flows(d, order, parent, parent_line, acc, pf)
    w = np.empty(n_line)
    for ln in range(n_line):
        w[ln] = r_pu[ln] * pf[ln]
    rd = np.empty(nb)  # r_path @ d
    _down(w, order, parent, parent_line, rd)
    if pf_off.shape[0] == n_line:
        for ln in range(n_line):
            pf[ln] += pf_off[ln]
    for j in range(nb):
        v[j] = math.sqrt(max(v_root * v_root - 2.0 * (rd[j] + vq_all[j]) / base_kva, 0.0))
        if j != root:
            vv[j] = max(max(v_min[j] - v[j], v[j] - v_max[j]), 0.0)
    c_line = 2 * n + 3
    for a in range(nl):
        ln = rated[a]
        loading[ln] = math.hypot(pf[ln], qf_all[ln]) / lim_r[a]
        line_v[ln] = x[c_line + a] + x[c_line + nl + a]
    losses = const_kw
    for k in range(nb):
        losses -= g[k] * d[k]
    for k in range(nb):
        losses -= h[k] * dq[k]
    p0 = x[2 * n]
    surplus = 0.0
    for k in range(nb):
        surplus += dlmp[k] * d[k]
    objective = 0.0
    for j in range(x.shape[0]):
        objective += cost[j] * x[j]
    slack_total = 0.0
    for j in range(2 * n + 1, x.shape[0]):
        slack_total += x[j]
    return (orders, buses_out, lines_out, p0, losses, dt * (surplus - lam * p0), dt * (bids - asks - lam * p0),
            objective, x[2 * n + 1] - x[2 * n + 2], slack_total)


@numba.njit(cache=True, nogil=True)
def realise_states(agent_net_kw, buses, p_fixed, const_kw, g, h, q_fixed, order, parent, parent_line, r_pu, vq, qf,
                   p_limit, inv_limit, v_root, base_kva, v_min, v_max, root, v_tol, kw_tol, v_sq_valid):
    """LinDistFlow states of E markets at the fixed loads plus the agents' net loads (``RealisedNetwork``).

    agent_net_kw: (E, N) kW per agent at bus ``buses[i]``; const_kw (E,), g, h (E, n_bus): each market's
    affine loss model. Returns four arrays (each returned array costs about a microsecond to box):
    buses (4, E, n_bus): net load kW, v^2, |V| p.u., voltage violation p.u.;
    lines (3, E, n_line): flow kW, loading, overload kW;  totals (2, E): losses kW, import kW;
    violated (E,) bool; the first market with a v^2 below ``v_sq_valid`` (or NaN), -1 if none."""
    e_n, n = agent_net_kw.shape
    nb = p_fixed.shape[0]
    n_line = nb - 1
    acc = np.empty(nb)
    w = np.empty(n_line)
    rd = np.empty(nb)
    bus_out = np.zeros((4, e_n, nb))
    line_out = np.empty((3, e_n, n_line))
    totals = np.empty((2, e_n))
    d, v_sq, v, vv = bus_out[0], bus_out[1], bus_out[2], bus_out[3]
    pf, loading, over = line_out[0], line_out[1], line_out[2]
    losses, imp = totals[0], totals[1]
    violated = np.zeros(e_n, np.bool_)
    invalid = -1
    for e in range(e_n):
        de = d[e]
        for k in range(nb):
            de[k] = 0.0
        for i in range(n):
            de[buses[i]] += agent_net_kw[e, i]
        for k in range(nb):
            de[k] += p_fixed[k]
        pfe = pf[e]
        _flows(de, order, parent, parent_line, acc, pfe)
        for ln in range(n_line):
            w[ln] = r_pu[ln] * pfe[ln]
        _down(w, order, parent, parent_line, rd)
        worst = 0.0
        for j in range(nb):
            x = v_root * v_root - 2.0 * (rd[j] + vq[j]) / base_kva
            v_sq[e, j] = x
            if invalid < 0 and not x >= v_sq_valid:
                invalid = e
            v[e, j] = math.sqrt(max(x, 0.0))
            if j != root:
                vv[e, j] = max(max(v_min[j] - v[e, j], v[e, j] - v_max[j]), 0.0)
                worst = max(worst, vv[e, j])
        flow_bad = 0.0
        for ln in range(n_line):
            s = pfe[ln]
            loading[e, ln] = math.hypot(s, qf[ln]) * inv_limit[ln]
            over[e, ln] = max(abs(s) - p_limit[ln], 0.0)
            flow_bad = max(flow_bad, over[e, ln])
        lo = const_kw[e]
        for k in range(nb):
            lo -= g[e, k] * de[k]
        for k in range(nb):
            lo -= h[e, k] * q_fixed[k]
        losses[e] = lo
        tot = 0.0
        for k in range(nb):
            tot += de[k]
        imp[e] = tot + losses[e]
        violated[e] = flow_bad > kw_tol or worst > v_tol
    return bus_out, line_out, totals, violated, invalid


@numba.njit(cache=True, nogil=True)
def linearise_states(flows_kw, qf, voltages, w_line, from_bus, order, parent, parent_line):
    """Losses linearised at E realised states (``RealisedNetwork.loss_model`` of each): returns
    (const_kw (E,), g (E, n_bus), h (E, n_bus), at_kw (E,)); g = -path.T @ dL/dP as a downward sweep."""
    e_n, n_line = flows_kw.shape
    nb = n_line + 1
    const = np.empty(e_n)
    at = np.empty(e_n)
    g = np.empty((e_n, nb))
    h = np.empty((e_n, nb))
    dp = np.empty(n_line)
    dq = np.empty(n_line)
    for e in range(e_n):
        a = 0.0
        lin = 0.0
        for ln in range(n_line):
            vf = voltages[e, from_bus[ln]]
            w = w_line[ln] / (vf * vf)
            p, q = flows_kw[e, ln], qf[ln]
            a += w * (p * p + q * q)
            dp[ln], dq[ln] = 2.0 * w * p, 2.0 * w * q
            lin += dp[ln] * p + dq[ln] * q
        _down(dp, order, parent, parent_line, g[e])
        _down(dq, order, parent, parent_line, h[e])
        for k in range(nb):
            g[e, k] = -g[e, k]
            h[e, k] = -h[e, k]
        at[e] = a
        const[e] = a - lin
    return const, g, h, at


@numba.njit(cache=True, nogil=True)
def write_book(p, q, s, dt, lam, col_hi, cost, const_kw, h, dq, mlf, d):
    """Write a validated book into ``DlmpMarket``'s column bounds and costs (in place): an order's
    buy column is open up to q / dt kW when it bids (BUY), its sell column when it asks (SELL);
    costs -p dt (buy), +p dt (sell), lambda_0 dt (P0). Returns the balance row's value
    const - h.dq + MLF.d (kW)."""
    n = p.shape[0]
    for i in range(n):
        kw = q[i] / dt
        col_hi[i] = kw if s[i] == BUY else 0.0
        col_hi[n + i] = kw if s[i] == SELL else 0.0
        cost[i] = -p[i] * dt
        cost[n + i] = p[i] * dt
    cost[2 * n] = lam * dt
    hq = 0.0
    for k in range(dq.shape[0]):
        hq += h[k] * dq[k]
    md = 0.0
    for k in range(d.shape[0]):
        md += mlf[k] * d[k]
    return const_kw - hq + md
