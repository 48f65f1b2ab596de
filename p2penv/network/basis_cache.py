"""Reuse of the last optimal basis of the DLMP LP: certify it, or hand over to HiGHS.

The LP is HiGHS's form, ``min c.x  s.t.  row_lo <= A x <= row_hi,  col_lo <= x <= col_hi`` (A dense,
m rows, n columns, inf = unbounded). With the row activities r = A x as m more variables, a *basis* is
a set S of m of the n + m variables whose matrix B = [A, -I][:, S] is nonsingular. S alone (not the
bound each nonbasic variable sits at) is what is kept between steps, because on a radial feeder
successive steps change prices, quantities, loads and loss factors but rarely which variables are
strictly between their bounds. ``certify`` tests S against the new data, in compiled code:

1. duals pi from B^T pi = c_S; reduced costs d_j = c_j - pi.A_j (columns) and d = pi_i (rows);
2. every nonbasic variable goes to the bound its reduced cost asks for (d > 0: lower, d < 0: upper;
   a fixed one to its value), so S is dual feasible unless that bound is infinite;
3. basic values from B x_S = -[A, -I]_N x_N; S is primal feasible when they are within their bounds.

Primal and dual feasible is the KKT certificate of optimality, whoever proposed S. The answer (x, pi)
is computed from (data, S) by the same code whether S came from the cache or from HiGHS, so a cached
step and a cold solve of the same book give bitwise the same numbers whenever the optimum is unique.

When S fails on primal feasibility only (a limit started or stopped binding, the marginal order
changed), it is still dual feasible by construction, so ``dual_simplex`` pivots from it in compiled code
(each pivot re-evaluates the basis: one k x k factorisation, k = 1 + binding limits) and the basis it
ends at is certified as above. HiGHS (warm-started) is called only when that fails too.

**Tie-break (degenerate optima).** An optimum can be non-unique: a nonbasic variable that could move
has a zero reduced cost (several dispatches are optimal: e.g. two asks at one bus priced exactly at
its DLMP behind a binding limit), or a basic variable sits on a bound (several duals are optimal: the
prices are not pinned down). A warm-started simplex then returns whichever optimum is nearest to the
previous step's, so the dispatch would depend on history. Here, whenever the certified optimum is
degenerate (``|d_j| <= DUAL_TOL (1 + |c_j|)`` for a nonbasic variable that is not fixed, or a basic
variable within ``PRIMAL_TOL (1 + |bound|)`` of a finite bound), the LP is solved again **cold**: a
new HiGHS instance, the LP as built from the book (``passModel``), presolve off, one thread, the
tolerances of ``configure``, dual simplex from the slack basis. That deterministic solve is the
answer (its basis certified as above; ties resolved at the bounds HiGHS put them). The result is then
a function of the book alone: it does not depend on what was solved before, and a cached run and a
cold run agree at ties too (``tests/test_dlmp_basis_cache.py``). The rule names HiGHS's cold path, so
its choice among tied optima can change with the HiGHS version (pinned in the benchmarks' JSON).
Every optimal basis of an LP with several primal (dual) optima is dual (primal) degenerate, so a tie
is never missed; a degenerate basis of an LP whose optimum is unique also goes to the cold solve,
which then returns that unique optimum.

Counters (``BasisCache.stats``): solves served by the kept basis as it was, after dual simplex pivots
from it, by HiGHS warm-started, by the cold re-solve at ties, and HiGHS answers whose basis failed the
check (numerical trouble; HiGHS's own solution used).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import highspy
import numba
import numpy as np
import scipy.sparse as sp

from .highs import new_highs

# Certification tolerances (relative: x (1 + |bound|) for values, x (1 + |c_j|) for reduced costs).
# HiGHS runs with tolerances 10x tighter (``configure``), so any basis HiGHS calls optimal passes.
PRIMAL_TOL = 1e-9
DUAL_TOL = 1e-9
HIGHS_TOL = 1e-10
PIVOT_TOL = 1e-11  # |pivot| / max|B| below this: the cached basis is singular for the new data
MAX_PIVOTS = 50  # dual simplex pivots from the kept basis before HiGHS is asked instead

OPTIMAL, DEGENERATE, PRIMAL_INFEASIBLE, DUAL_INFEASIBLE, SINGULAR = 0, 1, 2, 3, 4
_NO_HINT_NB = np.empty(0)  # (a global array is a constant inside compiled code)
STATUS_NAMES = ("optimal", "degenerate", "primal infeasible", "dual infeasible", "singular")


def configure(h: highspy.Highs) -> None:
    """The options every DLMP HiGHS solve runs with: no presolve, one thread, tolerances below ours."""
    h.setOptionValue("presolve", "off")
    h.setOptionValue("threads", 1)
    h.setOptionValue("primal_feasibility_tolerance", HIGHS_TOL)
    h.setOptionValue("dual_feasibility_tolerance", HIGHS_TOL)


@numba.njit(cache=True, nogil=True)
def _lu(B, perm):
    """In-place LU with partial pivoting (B -> L\\U, row i of the factors is row perm[i] of B);
    False when a pivot is tiny against the largest entry (singular for our purpose)."""
    m = B.shape[0]
    big = 0.0
    for i in range(m):
        perm[i] = i
        for j in range(m):
            a = abs(B[i, j])
            if a > big:
                big = a
    if big == 0.0:
        return False
    for k in range(m):
        p, best = k, abs(B[k, k])
        for i in range(k + 1, m):
            a = abs(B[i, k])
            if a > best:
                p, best = i, a
        if best <= PIVOT_TOL * big:
            return False
        if p != k:
            for j in range(m):
                t = B[k, j]
                B[k, j] = B[p, j]
                B[p, j] = t
            t2 = perm[k]
            perm[k] = perm[p]
            perm[p] = t2
        inv = 1.0 / B[k, k]
        for i in range(k + 1, m):
            f = B[i, k] * inv
            if f != 0.0:
                B[i, k] = f
                for j in range(k + 1, m):
                    B[i, j] -= f * B[k, j]
            else:
                B[i, k] = 0.0
    return True


@numba.njit(cache=True, nogil=True)
def _solve(LU, perm, b):
    """x with B x = b (B = P^T L U as factored by ``_lu``)."""
    m = LU.shape[0]
    z = np.empty(m)
    for i in range(m):
        s = b[perm[i]]
        for j in range(i):
            s -= LU[i, j] * z[j]
        z[i] = s
    for i in range(m - 1, -1, -1):
        s = z[i]
        for j in range(i + 1, m):
            s -= LU[i, j] * z[j]
        z[i] = s / LU[i, i]
    return z


@numba.njit(cache=True, nogil=True)
def _solve_t(LU, perm, c):
    """pi with B^T pi = c."""
    m = LU.shape[0]
    w = np.empty(m)
    for i in range(m):  # U^T w = c
        s = c[i]
        for j in range(i):
            s -= LU[j, i] * w[j]
        w[i] = s / LU[i, i]
    for i in range(m - 1, -1, -1):  # L^T v = w
        s = w[i]
        for j in range(i + 1, m):
            s -= LU[j, i] * w[j]
        w[i] = s
    pi = np.empty(m)
    for i in range(m):
        pi[perm[i]] = w[i]
    return pi


@numba.njit(cache=True, nogil=True, inline="always")
def _bound_check(gap, bound, q, worst, worst_gap, status):
    """Basic variable ``q`` at ``gap`` inside one finite ``bound`` (< 0: outside): (worst, worst_gap, status)
    updated: ``q`` is the worst violation so far when ``-gap / (1 + |bound|)`` exceeds ``worst_gap``; on the
    bound (within ``PRIMAL_TOL (1 + |bound|)``) the status becomes DEGENERATE."""
    tol = PRIMAL_TOL * (1.0 + abs(bound))
    if gap < -tol:
        if -gap / (1.0 + abs(bound)) > worst_gap:
            return q, -gap / (1.0 + abs(bound)), status
    elif gap <= tol:
        return worst, worst_gap, DEGENERATE
    return worst, worst_gap, status


@numba.njit(cache=True, nogil=True)
def _evaluate(A, cost, col_lo, col_hi, row_lo, row_hi, basic, hint):
    """The basis ``basic`` on this LP, everything kept (``certify``'s docstring says what is computed).

    Returns (status, v (n + m values: columns, then row activities), d (n + m reduced costs; 0 where
    basic), cols (k basic columns), tight (k rows whose activity is nonbasic), LU and perm of
    A[tight, cols], worst (position in ``basic`` of the most violated basic variable, -1 if none)).
    Unlike ``certify``, a primal infeasible basis is evaluated to the end (the dual simplex needs it).
    """
    m, n = A.shape
    v = np.zeros(n + m)  # values: nonbasic ones first, basic ones below
    d = np.zeros(n + m)
    is_basic = np.zeros(n + m, np.bool_)
    k = 0
    for q in range(m):
        j = basic[q]
        is_basic[j] = True
        if j < n:
            k += 1
    cols = np.empty(k, np.int64)
    tight = np.empty(k, np.int64)
    M = np.empty((k, k))
    perm = np.empty(k, np.int64)
    a = 0
    for q in range(m):
        if basic[q] < n:
            cols[a] = basic[q]
            a += 1
    a = 0
    for i in range(m):
        if not is_basic[n + i]:
            if a == k:  # more tight rows than basic columns: not a basis
                return SINGULAR, v, d, cols, tight, M, perm, -1
            tight[a] = i
            a += 1
    if a != k:
        return SINGULAR, v, d, cols, tight, M, perm, -1
    cb = np.empty(k)
    for q in range(k):
        cb[q] = cost[cols[q]]
        for t in range(k):
            M[t, q] = A[tight[t], cols[q]]
    if k > 0:
        if not _lu(M, perm):
            return SINGULAR, v, d, cols, tight, M, perm, -1
        pt = _solve_t(M, perm, cb)
        for t in range(k):
            d[n + tight[t]] = pt[t]  # a row activity's reduced cost is its row's dual
    # reduced costs of the columns: d = c - A^T pi (pi is zero off the tight rows)
    for j in range(n):
        d[j] = cost[j]
    for t in range(k):
        i = tight[t]
        p = d[n + i]
        if p != 0.0:
            for j in range(n):
                d[j] -= p * A[i, j]
    for q in range(k):
        d[cols[q]] = 0.0
    status = OPTIMAL
    has_hint = hint.shape[0] == n + m
    for j in range(n + m):
        if is_basic[j]:
            continue
        if j < n:
            lo, hi, dj, scale = col_lo[j], col_hi[j], d[j], 1.0 + abs(cost[j])
        else:
            lo, hi, dj, scale = row_lo[j - n], row_hi[j - n], d[j], 1.0
        if lo == hi:
            v[j] = lo
        elif dj > DUAL_TOL * scale:
            if not np.isfinite(lo):
                return DUAL_INFEASIBLE, v, d, cols, tight, M, perm, -1
            v[j] = lo
        elif dj < -DUAL_TOL * scale:
            if not np.isfinite(hi):
                return DUAL_INFEASIBLE, v, d, cols, tight, M, perm, -1
            v[j] = hi
        else:  # a tie: this variable could move without changing the objective
            status = DEGENERATE
            lo_ok, hi_ok = np.isfinite(lo), np.isfinite(hi)
            if lo_ok and hi_ok:
                if has_hint and abs(hint[j] - hi) < abs(hint[j] - lo):
                    v[j] = hi
                else:
                    v[j] = lo
            elif lo_ok:
                v[j] = lo
            elif hi_ok:
                v[j] = hi
            else:
                v[j] = 0.0  # free nonbasic variable
    if k > 0:  # basic columns: A[T, S_c] x_c = r_T - A[T, N] x_N
        b = np.empty(k)
        for t in range(k):
            i = tight[t]
            s = v[n + i]
            for j in range(n):
                if not is_basic[j]:
                    vj = v[j]
                    if vj != 0.0:
                        s -= A[i, j] * vj
            b[t] = s
        xc = _solve(M, perm, b)
        for q in range(k):
            v[cols[q]] = xc[q]
    nz = np.empty(n, np.int64)  # columns with a nonzero value: few (matched orders, P0, active slacks)
    n_nz = 0
    for j in range(n):
        if v[j] != 0.0:
            nz[n_nz] = j
            n_nz += 1
    for i in range(m):  # basic rows: r_i = A[i] x
        if is_basic[n + i]:
            s = 0.0
            for a in range(n_nz):
                j = nz[a]
                s += A[i, j] * v[j]
            v[n + i] = s
    worst, worst_gap = -1, 0.0
    for q in range(m):  # primal feasibility of the basic variables
        j = basic[q]
        if j < n:
            lo, hi = col_lo[j], col_hi[j]
        else:
            lo, hi = row_lo[j - n], row_hi[j - n]
        val = v[j]
        if np.isfinite(lo):
            worst, worst_gap, status = _bound_check(val - lo, lo, q, worst, worst_gap, status)
        if np.isfinite(hi):
            worst, worst_gap, status = _bound_check(hi - val, hi, q, worst, worst_gap, status)
    if worst >= 0:
        status = PRIMAL_INFEASIBLE
    return status, v, d, cols, tight, M, perm, worst


@numba.njit(cache=True, nogil=True)
def certify(A, cost, col_lo, col_hi, row_lo, row_hi, basic, hint):
    """Test the basis ``basic`` (m variable indices, ascending; j < n a column, n + i row i) on this LP.

    Returns (status, x (n,), pi (m,)). status: OPTIMAL, DEGENERATE (optimal, but a tie: see the
    module docstring), PRIMAL_INFEASIBLE, DUAL_INFEASIBLE or SINGULAR; x and pi are meaningful for
    the first two. ``hint`` (n + m values, or empty): where a solver put each variable; a nonbasic
    variable at a tie goes to the bound nearest its hint (without one, its lower bound when finite).

    Only the k basic columns need a factorisation: a basic row activity's column -e_i meets row i
    alone, so with T the k rows whose activity is nonbasic ("tight"), B x_S = b splits into
    A[T, S_c] x_c = b_T and r_i = A[i] x for the basic rows; likewise pi is zero on the basic rows and
    A[T, S_c]^T pi_T = c_{S_c}. On a feeder k is 1 + the number of binding limits, not m.
    """
    m, n = A.shape
    st, v, d, _, _, _, _, _ = _evaluate(A, cost, col_lo, col_hi, row_lo, row_hi, basic, hint)
    return st, v[:n].copy(), d[n:].copy()


@numba.njit(cache=True, nogil=True)
def dual_simplex(A, cost, col_lo, col_hi, row_lo, row_hi, basic, max_iter):
    """Bounded dual simplex from ``basic``, a basis that is dual feasible with every nonbasic variable at
    the bound its reduced cost asks for (a kept basis whose certificate failed on primal feasibility only).

    Each iteration evaluates the basis afresh (``_evaluate``: a k x k factorisation, k = basic columns),
    lets the most violated basic variable leave at the bound it violates and lets enter the nonbasic
    variable of the dual ratio test (smallest |d_j / alpha_j| among those that move it the right way;
    the largest |alpha_j| among near-equal ratios), so every reduced cost keeps its sign. Returns
    (status, basis, iterations): OPTIMAL or DEGENERATE when it got there (the basis is then certified by
    ``certify`` like any other), else the status it stopped at (the caller asks HiGHS).
    """
    m, n = A.shape
    b = basic.copy()
    for it in range(max_iter):
        st, v, d, cols, tight, LU, perm, worst = _evaluate(A, cost, col_lo, col_hi, row_lo, row_hi, b, _NO_HINT_NB)
        if st != PRIMAL_INFEASIBLE:
            return st, b, it
        jr = b[worst]
        if jr < n:
            lo_r, hi_r = col_lo[jr], col_hi[jr]
        else:
            lo_r, hi_r = row_lo[jr - n], row_hi[jr - n]
        up = v[jr] < lo_r  # the leaving variable must rise to its lower bound (else fall to its upper)
        k = cols.shape[0]
        # pivot row: x_r + sum_j alpha_j x_j = const over the nonbasic variables
        if jr < n:
            q = 0
            while cols[q] != jr:
                q += 1
            e = np.zeros(k)
            e[q] = 1.0
            rho = _solve_t(LU, perm, e)  # row q of A[T, cols]^-1
            sign_a = 0.0  # alpha_j = rho . A[T, j] for columns
        else:
            i_r = jr - n
            c_r = np.empty(k)
            for t in range(k):
                c_r[t] = A[i_r, cols[t]]
            rho = _solve_t(LU, perm, c_r) if k > 0 else np.zeros(0)  # sigma: A[i, cols] A[T, cols]^-1
            sign_a = -1.0  # alpha_j = sigma . A[T, j] - A[i, j]
        is_basic = np.zeros(n + m, np.bool_)
        for q2 in range(m):
            is_basic[b[q2]] = True
        best, best_ratio, best_alpha = -1, np.inf, 0.0
        for j in range(n + m):
            if is_basic[j]:
                continue
            if j < n:
                lo, hi = col_lo[j], col_hi[j]
                if lo == hi:
                    continue
                alpha = sign_a * A[jr - n, j] if jr >= n else 0.0
                for t in range(k):
                    alpha += rho[t] * A[tight[t], j]
            else:
                lo, hi = row_lo[j - n], row_hi[j - n]
                if lo == hi:
                    continue
                alpha = 0.0
                for t in range(k):
                    if tight[t] == j - n:
                        alpha = -rho[t]
                        break
            if abs(alpha) <= 1e-11:
                continue
            at_lo = np.isfinite(lo) and v[j] == lo
            at_hi = np.isfinite(hi) and v[j] == hi
            free = not (at_lo or at_hi)
            # dx_r = -alpha dx_j: rising x_r needs (j rising and alpha < 0) or (j falling and alpha > 0)
            want_neg = up  # at its lower bound j can only rise
            if at_lo and not free:
                ok = (alpha < 0.0) if want_neg else (alpha > 0.0)
            elif at_hi:
                ok = (alpha > 0.0) if want_neg else (alpha < 0.0)
            else:
                ok = True
            if not ok:
                continue
            ratio = abs(d[j]) / abs(alpha)
            if ratio < best_ratio - 1e-12 or (ratio <= best_ratio + 1e-12 and abs(alpha) > abs(best_alpha)):
                best, best_ratio, best_alpha = j, ratio, alpha
        if best < 0:
            return PRIMAL_INFEASIBLE, b, it  # the LP itself would be infeasible; let HiGHS say so
        b[worst] = best
        b.sort()
    return PRIMAL_INFEASIBLE, b, max_iter


_NO_HINT = np.empty(0)


def highs_lp(A, cost, col_lo, col_hi, row_lo, row_hi) -> highspy.HighsLp:
    """The LP as a ``highspy.HighsLp`` (column-wise sparse matrix; inf mapped to HiGHS's infinity)."""
    inf = highspy.kHighsInf
    csc = sp.csc_matrix(A)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.where(np.isfinite(col_lo), col_lo, -inf)
    lp.col_upper_ = np.where(np.isfinite(col_hi), col_hi, inf)
    lp.row_lower_ = np.where(np.isfinite(row_lo), row_lo, -inf)
    lp.row_upper_ = np.where(np.isfinite(row_hi), row_hi, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data
    return lp


def _basic_of(h: highspy.Highs, n: int) -> np.ndarray:
    """HiGHS's basic variables in our numbering (column j -> j, row i -> n + i), ascending."""
    _, bv = h.getBasicVariables()
    bv = np.asarray(bv, dtype=np.int64)
    return np.sort(np.where(bv >= 0, bv, n - 1 - bv))


def _hint(h: highspy.Highs) -> np.ndarray:
    sol = h.getSolution()
    return np.concatenate([np.asarray(sol.col_value), np.asarray(sol.row_value)])


@dataclass(frozen=True)
class BasisStats:
    """LP solves by how they were answered: the kept basis as it was (``cached``), after a few compiled
    dual simplex pivots from it (``pivoted``), HiGHS warm-started (``highs_warm``), the cold re-solve
    at a tie (``cold_ties``), HiGHS's own answer after a failed check (``numerical``)."""

    solves: int
    cached: int
    pivoted: int
    highs_warm: int
    cold_ties: int
    numerical: int

    @property
    def cached_share(self) -> float:
        """Share of solves answered by the kept basis unchanged."""
        return self.cached / self.solves if self.solves else float("nan")

    @property
    def without_highs_share(self) -> float:
        """Share of solves answered without HiGHS (the kept basis, or pivots from it)."""
        return (self.cached + self.pivoted) / self.solves if self.solves else float("nan")


# the routes of ``BasisCache.solve``: indices of its counts, in ``BasisStats`` order
_CACHED, _PIVOTED, _HIGHS_WARM, _COLD_TIES, _NUMERICAL = range(5)


class BasisCache:
    """The last optimal basis of one LP family (one ``DlmpMarket``) and the solve that uses it.

    ``solve(arrays, warm)``: certify the kept basis on the new arrays; if it is optimal and not
    degenerate, that is the answer (no HiGHS call); if it is only primal infeasible, dual simplex
    pivots from it (compiled) and the basis they reach is certified. Otherwise ``warm()`` (the owner's
    warm-started HiGHS solve, returning the ``Highs`` instance at an optimum) proposes a basis, which is
    certified the same way and kept. Degenerate optima go to the cold solve of the module docstring.
    ``reuse=False`` skips the kept basis (HiGHS every step; same answers, for benchmarks and tests).
    """

    def __init__(self, reuse: bool = True):
        self.reuse = bool(reuse)
        self.basic: np.ndarray | None = None
        self._counts = [0, 0, 0, 0, 0]  # cached, pivoted, highs_warm, cold_ties, numerical

    @property
    def stats(self) -> BasisStats:
        return BasisStats(sum(self._counts), *self._counts)

    def reset_stats(self) -> None:
        self._counts = [0, 0, 0, 0, 0]

    def forget(self) -> None:
        """Drop the kept basis (the next solve asks HiGHS)."""
        self.basic = None

    def solve(self, A, cost, col_lo, col_hi, row_lo, row_hi,
              warm: Callable[[], highspy.Highs]) -> tuple[np.ndarray, np.ndarray]:
        """(x, row duals) of the LP: from the kept basis, a warm HiGHS solve or, at ties, a cold one."""
        lp = (A, cost, col_lo, col_hi, row_lo, row_hi)
        if self.reuse and self.basic is not None:
            st, x, pi = certify(*lp, self.basic, _NO_HINT)
            if st == OPTIMAL:
                return self._keep(self.basic, _CACHED, x, pi)
            if st == PRIMAL_INFEASIBLE:  # still dual feasible: a few dual simplex pivots, compiled
                st, basic, _ = dual_simplex(*lp, self.basic, MAX_PIVOTS)
                if st == OPTIMAL:
                    st, x, pi = certify(*lp, basic, _NO_HINT)
                    if st == OPTIMAL:
                        return self._keep(basic, _PIVOTED, x, pi)
            if st == DEGENERATE:
                return self._cold(*lp)
        h = warm()
        basic = _basic_of(h, A.shape[1])
        st, x, pi = certify(*lp, basic, _NO_HINT)
        if st == PRIMAL_INFEASIBLE:  # a tie put at the other bound than HiGHS put it: ask where
            st, x, pi = certify(*lp, basic, _hint(h))
        if st == OPTIMAL:
            return self._keep(basic, _HIGHS_WARM, x, pi)
        if st == DEGENERATE:
            return self._cold(*lp)
        return self._numerical(h)

    def _cold(self, A, cost, col_lo, col_hi, row_lo, row_hi):
        """The tie-break: a fresh HiGHS instance solves the LP from the slack basis."""
        h = cold_solve(A, cost, col_lo, col_hi, row_lo, row_hi)
        basic = _basic_of(h, A.shape[1])
        st, x, pi = certify(A, cost, col_lo, col_hi, row_lo, row_hi, basic, _hint(h))
        if st in (OPTIMAL, DEGENERATE):
            return self._keep(basic, _COLD_TIES, x, pi)
        return self._numerical(h)

    def _keep(self, basic: np.ndarray, route: int, x: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, pi)``, certified from ``basic``: keep that basis for the next solve and count ``route``."""
        self.basic = basic
        self._counts[route] += 1
        return x, pi

    def _numerical(self, h: highspy.Highs):
        self._counts[_NUMERICAL] += 1
        sol = h.getSolution()
        return np.asarray(sol.col_value), np.asarray(sol.row_dual)


def cold_solve(A, cost, col_lo, col_hi, row_lo, row_hi) -> highspy.Highs:
    """A new HiGHS instance (``configure``d) solved on the LP from the slack basis; RuntimeError
    unless optimal (the DLMP LP's slacks make every instance feasible and bounded)."""
    h = new_highs()
    configure(h)
    h.passModel(highs_lp(A, cost, col_lo, col_hi, row_lo, row_hi))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"DLMP LP (cold): HiGHS status {h.modelStatusToString(h.getModelStatus())}")
    return h
