"""Competitive benchmark over a whole episode: S1's welfare maximisation with storage and ramps.

With batteries (and ramp limits) the steps are linked, so the per-step benchmark of
``competitive.py`` is no longer the price-taking outcome. Over the horizon t = 0..T-1::

    max  sum_t [ sum_k s_k f_tk - sum_i (a_i E_ti^2 + b_i E_ti) - sum_i g_i (c_ti + x_ti)
                 - retail_t I_t + feed_in_t X_t ]
    s.t. sum_i (eta_i E_ti - D_ti - c_ti + x_ti) + sum_k (D_tk - f_tk) ... see below

with, per agent i: DER energy ``E_ti`` in [0, P_max,ti dt] and ramp ``|E_ti - E_t-1,i| <= R_i dt``
(E_-1 = p0 dt); battery charge ``c`` and discharge ``x`` (kWh at the terminals) within the power
limits, ``SOC_t+1 = SOC_t + eta_c c_t - x_t / eta_d`` inside [SOC_min, SOC_max] from SOC_0;
a flexible load is served ``f_tk`` in [0, D_tk dt] and values it at ``s_k``; everyone else's demand
is fixed. The community balance each step (kWh)::

    sum_i eta_i E_ti + x_ti - c_ti - sum_i D^fixed_ti dt - sum_k f_tk + I_t - X_t = 0

is priced by its multiplier ``lambda_t`` (the competitive price of step t), which lies in
[feed_in_t, retail_t]. A convex QP (diagonal Hessian 2 a_i), solved by HiGHS. Because the battery
only moves energy in time, each lambda_t is also what a price-taking battery sees: it charges in
cheap steps and discharges in dear ones until the spread no longer pays for its losses and wear.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .prosumer import Fleet
from .storage import Storage


@dataclass(frozen=True)
class HorizonOutcome:
    """Competitive schedule of one market over T steps: energies kWh (T, N), prices $/kWh (T,), money $."""

    price: np.ndarray  # (T,) lambda_t
    der_kwh: np.ndarray  # (T, N) DER energy E
    charge_kwh: np.ndarray  # (T, N) at the battery terminals
    discharge_kwh: np.ndarray  # (T, N)
    soc_kwh: np.ndarray  # (T + 1, N), SOC_0 first
    served_kwh: np.ndarray  # (T, N) flexible load served (0 for the others)
    import_kwh: np.ndarray  # (T,)
    export_kwh: np.ndarray  # (T,)
    welfare: float  # $ over the horizon (the objective)


def competitive_horizon(fleet: Fleet, dt_h: float, retail, feed_in, *,
                        soc_end: str | np.ndarray | None = None) -> HorizonOutcome:
    """Solve the episode's competitive benchmark for one market (``fleet`` arrays (T, N) / (N,)).

    ``retail``, ``feed_in``: backstop tariffs, scalars or (T,) arrays ($/kWh).
    ``soc_end``: the SOC every battery must end the horizon with: None (free: a battery ends empty
    whenever its energy is worth more sold than kept, since kept energy is worth nothing here),
    ``"start"`` (``SOC_T = SOC_0``, the environments' ``soc_end="start"``) or an (N,) array of kWh
    inside each agent's SOC bounds and reachable from ``SOC_0`` in T steps.
    """
    if fleet.num_envs is not None:
        raise ValueError("fleet: pass one market (fleet.env(e)), not a batch")
    t_n, n = fleet.horizon, fleet.n
    retail = np.broadcast_to(np.asarray(retail, dtype=float), (t_n,))
    feed_in = np.broadcast_to(np.asarray(feed_in, dtype=float), (t_n,))
    if np.any(feed_in > retail):
        raise ValueError("tariffs: feed_in must be <= retail at every step")
    st = fleet.storage if fleet.storage is not None else Storage.none((n,))
    soc_target = _soc_target(soc_end, st, fleet.names, t_n, float(dt_h))
    sv = fleet.shed_values
    # A finite value of lost load makes the load a demand step (served at most D dt, valued at s);
    # where s >= retail it is always served, exactly like a fixed load. Fixed demand's own value is a
    # constant and is left out of the welfare.
    flex = np.isfinite(sv)
    dt = float(dt_h)

    # Columns, each block (T, N) row-major: E, c, x, f, then SOC (T, N) for steps 1..T, then I, X (T,).
    blocks = ("E", "c", "x", "f", "s")
    off = {k: j * t_n * n for j, k in enumerate(blocks)}
    o_i, o_x = 5 * t_n * n, 5 * t_n * n + t_n
    n_col = o_x + t_n

    def col(block: str, t, i):
        return off[block] + np.asarray(t) * n + np.asarray(i)

    tt, ii = np.meshgrid(np.arange(t_n), np.arange(n), indexing="ij")
    tt, ii = tt.ravel(), ii.ravel()
    cost = np.zeros(n_col)
    lo = np.zeros(n_col)
    hi = np.zeros(n_col)
    hess = np.zeros(n_col)
    e_hi = fleet.p_max_kw * dt
    cost[col("E", tt, ii)] = fleet.cost_b[ii]
    hess[col("E", tt, ii)] = 2.0 * fleet.cost_a[ii]
    hi[col("E", tt, ii)] = e_hi.ravel()
    for k, lim in (("c", st.charge_kw), ("x", st.discharge_kw)):
        cost[col(k, tt, ii)] = st.degradation_cost[ii]
        hi[col(k, tt, ii)] = (lim * dt)[ii]
    # flexible loads: served f in [0, D dt] at value s (a negative cost); fixed loads are constants
    d = fleet.demand_kw * dt
    fl = flex[ii]
    cost[col("f", tt, ii)] = np.where(fl, -np.where(np.isfinite(sv), sv, 0.0)[ii], 0.0)
    hi[col("f", tt, ii)] = np.where(fl, d.ravel(), 0.0)
    lo[col("s", tt, ii)] = st.soc_min_kwh[ii]
    hi[col("s", tt, ii)] = st.soc_max_kwh[ii]
    cost[o_i:o_i + t_n] = retail
    cost[o_x:o_x + t_n] = -feed_in
    hi[o_i:o_x + t_n] = np.inf

    rows, cols, vals, rlo, rhi = [], [], [], [], []
    r = 0
    fixed = (d * ~flex[None, :]).sum(1)
    for t in range(t_n):  # balance of step t
        i = np.arange(n)
        for k, coef in (("E", fleet.eta), ("x", np.ones(n)), ("c", -np.ones(n)), ("f", -np.ones(n))):
            rows += [r] * n
            cols += col(k, t, i).tolist()
            vals += list(coef)
        rows += [r, r]
        cols += [o_i + t, o_x + t]
        vals += [1.0, -1.0]
        rlo.append(fixed[t])
        rhi.append(fixed[t])
        r += 1
    for t in range(t_n):  # SOC dynamics: s_t+1 - s_t - eta_c c_t + x_t / eta_d = 0 (s_0 given)
        for i in range(n):
            rows += [r, r, r]
            cols += [int(col("s", t, i)), int(col("c", t, i)), int(col("x", t, i))]
            vals += [1.0, -st.eta_charge[i], 1.0 / st.eta_discharge[i]]
            if t > 0:
                rows.append(r)
                cols.append(int(col("s", t - 1, i)))
                vals.append(-1.0)
                rlo.append(0.0)
                rhi.append(0.0)
            else:
                rlo.append(st.soc0_kwh[i])
                rhi.append(st.soc0_kwh[i])
            r += 1
    for t in range(t_n):  # ramps: |E_t - E_t-1| <= R dt  (E_-1 = p0 dt)
        for i in range(n):
            if not np.isfinite(fleet.ramp_kw[i]):
                continue
            rr = fleet.ramp_kw[i] * dt
            rows.append(r)
            cols.append(int(col("E", t, i)))
            vals.append(1.0)
            if t > 0:
                rows.append(r)
                cols.append(int(col("E", t - 1, i)))
                vals.append(-1.0)
                rlo.append(-rr)
                rhi.append(rr)
            else:
                p0 = fleet.p0_kw[i] * dt
                rlo.append(p0 - rr)
                rhi.append(p0 + rr)
            r += 1
    if soc_target is not None:  # end of the horizon: s_T = target
        for i in range(n):
            rows.append(r)
            cols.append(int(col("s", t_n - 1, i)))
            vals.append(1.0)
            rlo.append(soc_target[i])
            rhi.append(soc_target[i])
            r += 1
    a = sp.csr_matrix((vals, (rows, cols)), shape=(r, n_col))
    rlo, rhi = np.array(rlo), np.array(rhi)
    x, lam = _solve_qp(hess, cost, a, rlo, rhi, lo, hi, t_n)

    def block(k):
        return x[off[k]:off[k] + t_n * n].reshape(t_n, n)

    soc = np.vstack([st.soc0_kwh[None, :], block("s")])
    welfare = -float(cost @ x + 0.5 * hess @ (x * x))
    return HorizonOutcome(lam, block("E"), block("c"), block("x"), soc, block("f"), x[o_i:o_i + t_n],
                          x[o_x:o_x + t_n], welfare)


def _soc_target(soc_end, st: Storage, names: tuple[str, ...], t_n: int, dt_h: float) -> np.ndarray | None:
    """(N,) kWh every battery must end with, or None; ValueError naming the agent if out of reach."""
    if soc_end is None:
        return None
    if isinstance(soc_end, str):
        if soc_end != "start":
            raise ValueError(f"soc_end: expected None, 'start' or an (N,) array of kWh, got {soc_end!r}")
        return np.asarray(st.soc0_kwh, dtype=float)
    target = np.asarray(soc_end, dtype=float)
    n = np.shape(st.soc0_kwh)[-1]
    if target.shape != (n,):
        raise ValueError(f"soc_end: expected shape ({n},) kWh, got {target.shape}")
    up = t_n * st.eta_charge * st.charge_kw * dt_h  # most SOC gained / lost over the horizon
    down = t_n * st.discharge_kw * dt_h / st.eta_discharge
    ok = (np.isfinite(target) & (target >= st.soc_min_kwh) & (target <= st.soc_max_kwh)
          & (target - st.soc0_kwh <= up + 1e-9) & (st.soc0_kwh - target <= down + 1e-9))
    if not ok.all():
        i = int(np.argmin(ok))
        who = names[i] if names else f"prosumer_{i}"
        raise ValueError(f"agent '{who}': soc_end {target[i]} kWh must lie in [soc_min_kwh, soc_max_kwh] = "
                         f"[{st.soc_min_kwh[i]}, {st.soc_max_kwh[i]}] and be reachable from soc0_kwh "
                         f"{st.soc0_kwh[i]} in {t_n} steps")
    return target


def _solve_qp(hess, cost, a, rlo, rhi, lo, hi, n_balance: int):
    """min 1/2 x' diag(hess) x + cost' x  s.t.  rlo <= a x <= rhi, lo <= x <= hi, with Clarabel.

    Returns x and the multipliers of the first ``n_balance`` rows (equalities): d(min cost)/d(row
    bound), i.e. the price of one more kWh of fixed demand. Clarabel (a sparse interior-point
    solver) because HiGHS's active-set QP grows cubically with the free DER columns here (17 s
    for 96 steps x 10 agents, against milliseconds).
    """
    import clarabel

    n = cost.size
    eq = rlo == rhi
    eye = sp.identity(n, format="csr")
    fin_hi, fin_lo = np.isfinite(hi), np.isfinite(lo)
    fin_rhi, fin_rlo = np.isfinite(rhi) & ~eq, np.isfinite(rlo) & ~eq
    blocks = [a[eq], a[fin_rhi], -a[fin_rlo], eye[fin_hi], -eye[fin_lo]]
    rhs = [rlo[eq], rhi[fin_rhi], -rlo[fin_rlo], hi[fin_hi], -lo[fin_lo]]
    A = sp.vstack(blocks, format="csc")
    b = np.concatenate(rhs)
    n_eq = int(eq.sum())
    cones = [clarabel.ZeroConeT(n_eq), clarabel.NonnegativeConeT(A.shape[0] - n_eq)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    for k in ("tol_gap_abs", "tol_gap_rel", "tol_feas", "tol_ktratio"):
        setattr(settings, k, 1e-10)
    sol = clarabel.DefaultSolver(sp.diags(hess, format="csc"), cost, A, b, cones, settings).solve()
    if str(sol.status) not in ("Solved", "AlmostSolved"):
        raise RuntimeError(f"competitive_horizon: Clarabel status {sol.status}")
    z = np.asarray(sol.z)
    # rows of ``a`` that are equalities come first in ``A``; the balance rows are the first of them
    if not eq[:n_balance].all():
        raise ValueError("competitive_horizon: the first rows must be the (equality) balance rows")
    return np.asarray(sol.x), -z[:n_balance]
