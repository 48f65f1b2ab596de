"""The bilevel price-offer program of the DLMP market as one MILP: KKT of the clearing LP, big-M complementarity.

One builder for every strategic-offer diagnostic on ``p2penv.network.dlmp.DlmpMarket``: the members
(one agent: ``dlmp_best_response``; several: ``feeder_equilibrium.coalition_best_response``) choose their
offer prices ($/kWh) to maximise their summed true profit, anticipating the operator's clearing LP. The
method (stationarity + complementarity of every member column and strong duality make the members' cash
linear, Ruiz & Conejo 2009; derived big-Ms; MILP then a fixed-binary LP polish) is described in the module
docstring of ``p2penv.diagnostics.dlmp_best_response``; a coalition of one is exactly the single-agent
program.

* ``solve_price_bilevel``: build and solve the program, returning a ``BilevelSolution`` (prices, matched
  kWh, DLMPs, cash and true profit per member, solver status);
* ``order_profit``: a member's true profit, cash - C(matched) for a seller, cash + V(matched) for a buyer ($);
* the pieces: ``Milp`` (column/row builder for HiGHS), ``row_dual_bounds`` / ``primal_box`` / ``big_m_bounds``
  (the big-Ms), ``add_row_optimality`` (primal rows and their duals with complementarity).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import highspy
import numpy as np
import scipy.sparse as sp

from ..market.mechanisms.types import SELL
from ..network.dlmp import DlmpMarket
from ..network.highs import new_highs

INF = highspy.kHighsInf
_TOL = 1e-9

__all__ = ["BigM", "BilevelSolution", "INF", "Milp", "add_row_optimality", "big_m_bounds", "order_profit",
           "primal_box", "row_dual_bounds", "solve_price_bilevel"]


def order_profit(side: int, fn, cash: float, matched_kwh: float) -> float:
    """True profit $ of an order: cash - C(matched) for a seller (``fn`` its true cost), cash + V(matched)
    for a buyer (``fn`` its true value; its cash is negative, the payment); ``fn``: kWh -> $."""
    return float(cash - fn(matched_kwh)) if side == SELL else float(cash + fn(matched_kwh))


class Milp:
    """Tiny column/row builder for a HiGHS model (maximisation)."""

    def __init__(self) -> None:
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.c: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[float, float, list[int], list[float]]] = []

    def var(self, lo: float, hi: float, cost: float = 0.0, integer: bool = False) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        self.c.append(cost)
        self.integer.append(integer)
        return len(self.lo) - 1

    def row(self, lo: float, hi: float, idx, val) -> None:
        self.rows.append((lo, hi, list(idx), list(val)))

    def highs(self, time_limit: float) -> highspy.Highs:
        r, c, v = [], [], []
        for i, (_, _, idx, val) in enumerate(self.rows):
            r += [i] * len(idx)
            c += idx
            v += val
        n, m = len(self.lo), len(self.rows)
        csc = sp.csc_matrix((v, (r, c)), shape=(m, n))
        csc.sum_duplicates()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        fin = lambda a: np.clip(np.asarray(a, dtype=np.float64), -INF, INF)  # noqa: E731
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = fin(self.c), fin(self.lo), fin(self.hi)
        lp.row_lower_ = fin([x[0] for x in self.rows])
        lp.row_upper_ = fin([x[1] for x in self.rows])
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous
                           for b in self.integer]
        h = new_highs()
        for k, val in (("threads", 1), ("time_limit", float(time_limit)),
                       ("mip_rel_gap", 1e-9), ("mip_abs_gap", 1e-9), ("mip_feasibility_tolerance", _TOL),
                       ("primal_feasibility_tolerance", _TOL), ("dual_feasibility_tolerance", _TOL)):
            h.setOptionValue(k, val)
        h.passModel(lp)
        return h

    def solve_polished(self, time_limit: float, who: str):
        """Solve the MILP, then fix the rounded binaries and re-solve the LP (exact complementarity).

        Returns (solution, MIP gap, whether the polish solve was optimal, status string).
        """
        h = self.highs(time_limit)
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"{who}: HiGHS MILP status {status}")
        gap = float(h.getInfo().mip_gap)
        sol = np.asarray(h.getSolution().col_value)
        ints = np.flatnonzero(self.integer).astype(np.int32)
        zr = np.round(sol[ints])
        h.changeColsBounds(ints.size, ints, zr, zr)
        h.run()
        polished = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        if polished:
            sol = np.asarray(h.getSolution().col_value)
        return sol, gap, polished, status


def row_dual_bounds(A, c, lo, hi, s):
    """Bounds on HiGHS row duals y implied by single-entry columns (penalised slacks, P0)."""
    ylo = np.full(A.shape[0], -np.inf)
    yhi = np.full(A.shape[0], np.inf)
    for j in range(A.shape[1]):
        nz = np.flatnonzero(A[:, j])
        if j == s or nz.size != 1 or (np.isfinite(lo[j]) and np.isfinite(hi[j])):
            continue
        i, r = nz[0], c[j] / A[nz[0], j]
        pos = A[i, j] > 0
        # stationarity a y_i = c_j - mu+ + mu-: mu+ exists iff lo finite, mu- iff hi finite, so
        # a y_i <= c_j when only mu+ exists, >= when only mu- exists, == when neither.
        if np.isfinite(lo[j]) or not np.isfinite(hi[j]):
            if pos:
                yhi[i] = min(yhi[i], r)
            else:
                ylo[i] = max(ylo[i], r)
        if np.isfinite(hi[j]) or not np.isfinite(lo[j]):
            if pos:
                ylo[i] = max(ylo[i], r)
            else:
                yhi[i] = min(yhi[i], r)
    bad = np.flatnonzero(~(np.isfinite(ylo) & np.isfinite(yhi)))
    if bad.size:
        raise ValueError(f"market: LP row {bad[0]} has no penalised slack pair, so its dual (big-M) is unbounded")
    return ylo, yhi


def primal_box(A, lo, hi, rl, ru):
    """Finite box containing every LP optimum: own bounds for bounded columns, 2 R_i/|a| + 1 for
    single-row columns with an infinite bound (slacks, substation). Returns (blo, bhi, artificial)."""
    fin_lo, fin_hi = np.isfinite(lo), np.isfinite(hi)
    bounded = fin_lo & fin_hi
    mag = np.where(bounded, np.maximum(np.abs(np.where(fin_lo, lo, 0)), np.abs(np.where(fin_hi, hi, 0))), 0.0)
    act = np.abs(A[:, bounded]) @ mag[bounded]
    rb = np.maximum(np.where(np.isfinite(rl), np.abs(rl), 0.0), np.where(np.isfinite(ru), np.abs(ru), 0.0))
    blo, bhi = lo.copy(), hi.copy()
    art_lo, art_hi = ~fin_lo, ~fin_hi
    for j in np.flatnonzero(~bounded):
        nz = np.flatnonzero(A[:, j])
        if nz.size != 1:
            raise ValueError(f"market: LP column {j} is unbounded and in several rows; cannot box it")
        big = 2.0 * (act[nz[0]] + rb[nz[0]]) / abs(A[nz[0], j]) + 1.0
        blo[j] = blo[j] if fin_lo[j] else -big
        bhi[j] = bhi[j] if fin_hi[j] else big
    return blo, bhi, art_lo, art_hi


@dataclass(frozen=True)
class BigM:
    """Bounds for the big-M encoding of one LP ``rl <= A x <= ru, lo <= x <= hi``, cost ``c``: row duals
    ``ylo``/``yhi``, reduced-cost bound ``mu_max`` per column, the primal box ``blo``/``bhi`` (with
    ``art_lo``/``art_hi`` marking artificial bounds) and the row activity range ``amin``/``amax``."""

    ylo: np.ndarray
    yhi: np.ndarray
    mu_max: np.ndarray
    blo: np.ndarray
    bhi: np.ndarray
    art_lo: np.ndarray
    art_hi: np.ndarray
    amin: np.ndarray
    amax: np.ndarray


def big_m_bounds(A, c, lo, hi, rl, ru, price_cols, price_cost_max: float, free_col: int) -> BigM:
    """``BigM`` of the DLMP LP whose ``price_cols`` carry a variable offer price (their cost in ``c`` set to 0;
    ``price_cost_max``: the largest |cost| they can take, $ per kWh column unit); ``free_col``: the column
    left out of the row-dual bounds (-1: none; see ``row_dual_bounds``)."""
    ylo, yhi = row_dual_bounds(A, c, lo, hi, free_col)
    ymax = np.maximum(np.abs(ylo), np.abs(yhi))
    c_abs = np.abs(c)
    c_abs[price_cols] = price_cost_max
    mu_max = c_abs + np.abs(A).T @ ymax
    blo, bhi, art_lo, art_hi = primal_box(A, lo, hi, rl, ru)
    amin = np.minimum(A * blo, A * bhi).sum(1)
    amax = np.maximum(A * blo, A * bhi).sum(1)
    return BigM(ylo, yhi, mu_max, blo, bhi, art_lo, art_hi, amin, amax)


def add_row_optimality(m: Milp, x: list[int], A, rl, ru, ylo, yhi, amin, amax):
    """Add the LP ``rl <= A x <= ru`` and its row duals with big-M complementarity to ``m``.

    ``x`` are the column variables, ``ylo``/``yhi`` bounds of the row duals (``row_dual_bounds``),
    ``amin``/``amax`` the range of ``A x`` over the primal box (big-M of the row slacks). Returns
    ``y_terms`` (each row's dual as a signed sum of multiplier variables), ``dual_obj`` (the dual
    objective's terms ``(variable, coefficient)``) and the number of binaries added. Shared by the
    single-agent and the coalition best response (``feeder_equilibrium``).
    """
    n_row = A.shape[0]
    for i in range(n_row):  # primal feasibility (column bounds are the box above)
        nz = np.flatnonzero(A[i])
        m.row(rl[i], ru[i], [x[j] for j in nz], A[i, nz])
    n_bin = 0
    dual_obj: list[tuple[int, float]] = []       # D = sum coef * var
    y_terms: list[list[tuple[int, float]]] = []  # y_i as a signed sum of multiplier variables
    for i in range(n_row):
        terms: list[tuple[int, float]] = []
        if np.isfinite(rl[i]) and rl[i] == ru[i]:  # equality row: free dual
            v = m.var(ylo[i], yhi[i])
            terms.append((v, 1.0))
            dual_obj.append((v, rl[i]))
        else:
            for bound, sign, ok, slack_M in ((rl[i], 1.0, yhi[i] > 0, amax[i] - rl[i]),
                                             (ru[i], -1.0, ylo[i] < 0, ru[i] - amin[i])):
                if not np.isfinite(bound):
                    continue
                lam = m.var(0.0, yhi[i] if sign > 0 else -ylo[i]) if ok else m.var(0.0, 0.0)
                z = m.var(0.0, 1.0, integer=True)
                n_bin += 1
                m.row(-INF, 0.0, [lam, z], [1.0, -max(yhi[i] if sign > 0 else -ylo[i], 0.0)])
                # row slack (A_i x - rl) or (ru - A_i x) <= M (1 - z)
                idx = x + [z]
                m.row(-INF, slack_M + sign * bound, idx, list(sign * A[i]) + [slack_M])
                terms.append((lam, sign))
                dual_obj.append((lam, sign * bound))
        y_terms.append(terms)
    return y_terms, dual_obj, n_bin


@dataclass(frozen=True)
class BilevelSolution:
    """Optimum of ``solve_price_bilevel`` for its k members (money $, prices $/kWh, energy kWh).

    prices:       (k,) offer prices.  profits: (k,) true profit (``order_profit``) at the bilevel optimum
                  (optimistic ties, see ``dlmp_best_response``).
    matched_kwh, cash, dlmp: (k,) each member's matched energy, cash (> 0 received) and DLMP at its bus.
    status, mip_gap, n_binaries, polished: HiGHS status of the MILP, relative gap, complementarity
                  binaries, whether the fixed-binary LP polish solved.
    box_ok:       no artificial primal bound (slack / substation) was active.
    """

    prices: np.ndarray
    profits: np.ndarray
    matched_kwh: np.ndarray
    cash: np.ndarray
    dlmp: np.ndarray
    status: str
    mip_gap: float
    n_binaries: int
    polished: bool
    box_ok: bool


def solve_price_bilevel(market: DlmpMarket, prices, quantities, sides, wholesale_price: float, p_load_kw,
                        q_load_kvar, members: Sequence[int], true_fns: Sequence, price_bounds: tuple[float, float],
                        *, time_limit: float, who: str) -> BilevelSolution:
    """Offer prices of the orders ``members`` (indices into the book) maximising their summed true profit,
    every other order fixed at ``prices``; ``true_fns[k]``: member k's true cost (seller, convex) or value
    (buyer, concave), a piecewise-linear kWh -> $ with ``intercepts`` and ``slopes``. ``price_bounds``:
    (lo, hi) $/kWh admissible offers; ``time_limit``: seconds for HiGHS; ``who`` names the caller in errors.

    The members' cash sum_s (A_s.y) x_s = D - sum_{j not a member} c_j x_j + sum_s u_s mu-_s is linear in
    (x, duals), so the program is a MILP (``dlmp_best_response``'s module docstring)."""
    p_lo, p_hi = price_bounds
    q, s = np.asarray(quantities), np.asarray(sides)
    lp = market.lp_arrays(prices, q, s, wholesale_price, p_load_kw, q_load_kvar)
    dt = market.dt_h
    A, c, lo, hi, rl, ru = lp.A, lp.cost, lp.col_lo, lp.col_hi, lp.row_lo, lp.row_hi
    members = [int(i) for i in members]
    cols = [int(market.c_sell[i] if s[i] == SELL else market.c_buy[i]) for i in members]
    sgns = [1.0 if s[i] == SELL else -1.0 for i in members]  # c_col = sgn * dt * price
    for col in cols:
        c[col] = 0.0
    n_row, n_col = A.shape
    # member columns are bounded (an order's own limits): none is left out of the row-dual bounds (-1)
    bm = big_m_bounds(A, c, lo, hi, rl, ru, cols, dt * max(abs(p_lo), abs(p_hi)), -1)

    m = Milp()
    x = [m.var(bm.blo[j], bm.bhi[j]) for j in range(n_col)]
    pv = {col: m.var(p_lo, p_hi) for col in cols}
    sg = dict(zip(cols, sgns))
    y_terms, dual_obj, n_bin = add_row_optimality(m, x, A, rl, ru, bm.ylo, bm.yhi, bm.amin, bm.amax)
    for j in range(n_col):  # stationarity of every column, complementarity of its finite bounds
        terms = [(v, A[i, j] * g) for i in range(n_row) if A[i, j] != 0 for v, g in y_terms[i]]
        if lo[j] == hi[j]:  # fixed column: free reduced cost, no complementarity
            v = m.var(-bm.mu_max[j], bm.mu_max[j])
            terms.append((v, 1.0))
            dual_obj.append((v, lo[j]))
        else:
            for bound, sign, art in ((lo[j], 1.0, bm.art_lo[j]), (hi[j], -1.0, bm.art_hi[j])):
                if art:  # infinite in the LP: no multiplier (the box bound is artificial)
                    continue
                mu = m.var(0.0, bm.mu_max[j])
                z = m.var(0.0, 1.0, integer=True)
                n_bin += 1
                gap = bm.bhi[j] - lo[j] if sign > 0 else hi[j] - bm.blo[j]
                m.row(-INF, 0.0, [mu, z], [1.0, -bm.mu_max[j]])
                m.row(-INF, gap + sign * bound, [x[j], z], [sign, gap])
                terms.append((mu, sign))
                if not (j in pv and sign < 0):  # -u mu- of a member column cancels in the cash
                    dual_obj.append((mu, sign * bound))
        if j in pv:
            terms.append((pv[j], -sg[j] * dt))
        m.row(c[j], c[j], [t[0] for t in terms], [t[1] for t in terms])
    # objective: cash = D - sum_{j not a member} c_j x_j + sum_s u_s mu-_s  (the -u mu- of D cancels)
    obj: dict[int, float] = {}
    for v, a in dual_obj:
        obj[v] = obj.get(v, 0.0) + a
    for j in range(n_col):
        if j not in pv and c[j] != 0:
            obj[x[j]] = obj.get(x[j], 0.0) - c[j]
    # true cost / value: epigraph t >= lines (seller, convex) or hypograph t <= lines (buyer, concave)
    for i, col, fn in zip(members, cols, true_fns):
        t = m.var(-INF, INF)
        for a0, b0 in zip(fn.intercepts, fn.slopes):
            if s[i] == SELL:
                m.row(a0, INF, [t, x[col]], [1.0, -b0 * dt])
            else:
                m.row(-INF, a0, [t, x[col]], [1.0, -b0 * dt])
        obj[t] = obj.get(t, 0.0) + (-1.0 if s[i] == SELL else 1.0)
    for v, a in obj.items():
        m.c[v] += a

    sol, gap, polished, status = m.solve_polished(time_limit, who)
    xs = sol[x]
    y = np.array([sum(sol[v] * g for v, g in terms) for terms in y_terms])
    ay = np.array([A[:, col] @ y for col in cols])  # each member column's A_s.y
    matched = np.array([xs[col] * dt for col in cols])
    cash = ay * np.array([xs[col] for col in cols])
    box_ok = bool(np.all(~bm.art_lo | (xs > bm.blo + 1e-6 * np.abs(bm.blo)))
                  and np.all(~bm.art_hi | (xs < bm.bhi - 1e-6 * bm.bhi)))
    return BilevelSolution(
        prices=np.array([float(sol[pv[col]]) for col in cols]),
        profits=np.array([order_profit(s[i], fn, float(cc), float(mm))
                          for i, fn, cc, mm in zip(members, true_fns, cash, matched)]),
        matched_kwh=matched, cash=cash, dlmp=np.array(sgns) * ay / dt, status=status, mip_gap=gap,
        n_binaries=n_bin, polished=bool(polished), box_ok=box_ok)
