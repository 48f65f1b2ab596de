"""Exact best offer price of one strategic agent in the DLMP market (bilevel program -> MILP).

Setting (``p2penv.network.dlmp.DlmpMarket``): every order is fixed except the *price* of agent k's
order (quantity Q_k kWh and side fixed). The agent chooses its offer price p in [p_lo, p_hi] $/kWh
to maximise its true profit, anticipating the operator's clearing LP (the lower level):

    seller:  max_p  DLMP_b(p) * m(p) - C(m(p))          buyer:  max_p  V(m(p)) - DLMP_b(p) * m(p)

with m the matched kWh and b the agent's bus. C (V) is the agent's true cost (value) of the energy,
a convex (concave) piecewise-linear function of kWh (``PiecewiseLinear``; a quadratic cost enters
through its secant interpolation, error <= a h^2 / 4 $ for segment width h kWh). Quadratic C would
make the program an MIQP, which HiGHS does not solve.

Lower level in HiGHS form (read from the market after ``_prepare``, so it is the LP ``clear``
solves, losses linearised at the market's *fixed* ``loss_model``; lossless = ``LossModel.lossless``):

    min c.x   s.t.  rl <= A x <= ru,   l <= x <= u,      c_s = sgn * dt * p  (s = agent's column)

KKT conditions (Lagrangian duals: lam+ >= 0 for A x >= rl, lam- >= 0 for A x <= ru, mu+ >= 0 for
x >= l, mu- >= 0 for x <= u; y = lam+ - lam- is HiGHS's row dual):

    primal feasibility;  stationarity  A_j.y + mu+_j - mu-_j = c_j  for every column j;
    complementary slackness via binaries z:  lam+_i <= Y_i z,  A_i x - rl_i <= M_i (1 - z)  (and
    the same for every other finite bound).

DLMP_b = sgn * A_s.y / dt (see ``dlmp.py``), so the agent's cash (A_s.y) x_s is bilinear. Two
identities make it linear (Ruiz & Conejo 2009, IEEE TPWRS 24(4), "Pool strategy of a producer with
endogenous formation of locational marginal prices"):

* stationarity of x_s with complementarity:  (A_s.y) x_s = c_s x_s + u_s mu-_s;
* strong duality c.x = D(lam, mu) (dual objective, linear in the duals because the bounds are
  data):  c_s x_s = D - sum_{j != s} c_j x_j,  where only c_s = sgn dt p contains the decision.

so cash = D - sum_{j != s} c_j x_j + u_s mu-_s, linear in (x, lam, mu). (p x_s never appears.)

Big-M values are derived, not guessed. Dual bounds Y come from the penalised slack columns of the
LP: a column with one entry a in row i, cost c and bounds [0, inf) forces a y_i <= c, so every
row's dual lies in [-penalty dt / |a|, penalty dt / |a|]. Reduced costs are then bounded by
|c_j| + sum_i |A_ij| max|y_i|. Primal bounds: order columns carry their own bounds; a slack or the
substation column never exceeds 2 R_i / |a| + 1, R_i = |row bound| + sum of |A_ij| x order bounds
(at an LP optimum slacks are minimal, so that bound is never active; ``box_ok`` checks it).

Numerics: the MIP runs with integrality and feasibility tolerances 1e-9; the binaries are then
rounded, fixed, and the problem re-solved as an LP ("polish"), which satisfies complementarity
exactly. Finally ``DlmpMarket.clear`` re-clears the market at the found price (``recleared_*``).

Tie-breaking: the bilevel value is *optimistic*: when the LP has several optimal dispatches at p
(typically the agent's price equals another order's price), the MILP takes the one best for the
agent. HiGHS may pick another dispatch when it re-clears at exactly p; moving the price by
``delta`` to the favourable side recovers the one-sided limit to within Q x delta ($), and
``achievable_profit`` reports the best re-clear at p, p - delta and p + delta.

* Linear true cost (value): the profit is linear in the agent's dispatch on the optimal face of the
  LP at a tie, so the optimistic choice is one of the two one-sided limits and ``profit`` equals
  the supremum of the re-cleared profit curve over prices (checked against dense grids in the
  tests). This is the exact case.
* Strictly convex (concave) piecewise-linear cost (value): at a price where the agent is marginal
  against a flat price (e.g. the substation's), the LP is indifferent about the agent's dispatch
  in [x(p+), x(p-)], and the optimistic program may pick an interior kink of C where p = C'. That
  amounts to choosing its quantity, which a price-only offer cannot do, so ``profit`` is then an
  upper bound on the achievable supremum; ``achievable_profit`` < ``profit`` flags it.

Scope: one strategic agent, price-only offers, any fixed (lossless or linearised) loss model, the
line / voltage / import limits of ``DlmpMarket``. Not covered: strategic quantities, several
strategic agents (an EPEC), loss factors that move with the dispatch.
"""
from __future__ import annotations

from dataclasses import dataclass

import highspy

from ..network.highs import new_highs
import numpy as np
import scipy.sparse as sp

from ..market.mechanisms.types import BUY, SELL, check_book
from ..network.dlmp import DlmpMarket

INF = highspy.kHighsInf
_TOL = 1e-9


@dataclass(frozen=True)
class PiecewiseLinear:
    """Piecewise-linear function of energy E (kWh) -> $, through (breakpoints_kwh, values_usd).

    Beyond the last (before the first) breakpoint the last (first) segment is extended. A seller's
    true cost must be convex, a buyer's true value concave (checked where used).
    """

    breakpoints_kwh: tuple
    values_usd: tuple

    def __post_init__(self) -> None:
        e = np.asarray(self.breakpoints_kwh, dtype=np.float64).ravel()
        v = np.asarray(self.values_usd, dtype=np.float64).ravel()
        if e.size < 2 or e.size != v.size:
            raise ValueError("breakpoints_kwh: need >= 2 breakpoints and one value per breakpoint")
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(v))):
            raise ValueError("breakpoints_kwh / values_usd: must be finite")
        if np.any(np.diff(e) <= 0):
            raise ValueError("breakpoints_kwh: must be strictly increasing")
        object.__setattr__(self, "breakpoints_kwh", tuple(e.tolist()))
        object.__setattr__(self, "values_usd", tuple(v.tolist()))

    @property
    def slopes(self) -> np.ndarray:
        """(K,) $/kWh of each segment."""
        return np.diff(self.values_usd) / np.diff(self.breakpoints_kwh)

    @property
    def intercepts(self) -> np.ndarray:
        """(K,) $ value at E = 0 of each segment's line."""
        return np.asarray(self.values_usd[:-1]) - self.slopes * np.asarray(self.breakpoints_kwh[:-1])

    def curvature(self) -> int:
        """+1 convex, -1 concave, 0 linear (all slopes equal), 2 neither."""
        d = np.diff(self.slopes)
        scale = 1e-12 * max(1.0, float(np.abs(self.slopes).max()))
        if np.all(np.abs(d) <= scale):
            return 0
        return 1 if np.all(d >= -scale) else (-1 if np.all(d <= scale) else 2)

    def __call__(self, e_kwh) -> np.ndarray:
        """$ at energies ``e_kwh`` (any shape); segments extended outside the breakpoints."""
        e = np.asarray(e_kwh, dtype=np.float64)
        bp = np.asarray(self.breakpoints_kwh)
        k = np.clip(np.searchsorted(bp, e, side="right") - 1, 0, bp.size - 2)
        return self.intercepts[k] + self.slopes[k] * e

    @classmethod
    def linear(cls, slope: float, e_max_kwh: float, fixed: float = 0.0) -> "PiecewiseLinear":
        """fixed + slope * E on [0, e_max_kwh] ($, $/kWh, kWh)."""
        if not e_max_kwh > 0:
            raise ValueError(f"e_max_kwh: must be > 0, got {e_max_kwh}")
        return cls((0.0, e_max_kwh), (fixed, fixed + slope * e_max_kwh))

    @classmethod
    def quadratic(cls, a: float, b: float, e_max_kwh: float, n_segments: int = 8) -> "PiecewiseLinear":
        """Secant interpolation of a E^2 + b E ($; a $/kWh^2, b $/kWh) on [0, e_max_kwh] with
        ``n_segments`` equal segments; exact at the breakpoints, max error a (e_max/n)^2 / 4 $."""
        if not e_max_kwh > 0 or n_segments < 1:
            raise ValueError("e_max_kwh / n_segments: need e_max_kwh > 0 and n_segments >= 1")
        e = np.linspace(0.0, e_max_kwh, n_segments + 1)
        return cls(tuple(e), tuple(a * e**2 + b * e))


@dataclass(frozen=True)
class DlmpBestResponse:
    """Best offer price of one agent (money in $, prices $/kWh, energy kWh).

    price:            optimal offer price.
    profit:           bilevel optimum (optimistic ties, see module docstring): cash - C (seller)
                      or V - payment (buyer).
    matched_kwh, dlmp, cash: the agent's matched energy, DLMP at its bus and cash (> 0 received)
                      in the bilevel solution.
    recleared_profit, recleared_matched_kwh, recleared_dlmp: ``DlmpMarket.clear`` at ``price``.
    achievable_profit: best re-cleared profit at ``price`` and ``price`` -/+ ``delta`` (equals
                      ``profit`` up to Q x delta except in the convex-cost tie case).
    delta:            the price nudge ($/kWh) used for ``achievable_profit``.
    status:           HiGHS model status string of the MILP.
    mip_gap:          HiGHS relative gap at termination.
    n_binaries:       complementarity binaries in the MILP.
    polished:         the fixed-binary LP polish succeeded.
    box_ok:           no artificial primal bound (slack / substation) was active.
    """

    price: float
    profit: float
    matched_kwh: float
    dlmp: float
    cash: float
    recleared_profit: float
    recleared_matched_kwh: float
    recleared_dlmp: float
    achievable_profit: float
    delta: float
    status: str
    mip_gap: float
    n_binaries: int
    polished: bool
    box_ok: bool


@dataclass(frozen=True)
class GridProfile:
    """Profit of the agent over a grid of its offer prices ($/kWh -> $), each point re-cleared by
    ``DlmpMarket.clear``; best_price / best_profit: the grid maximum."""

    prices: np.ndarray
    profits: np.ndarray
    matched_kwh: np.ndarray
    dlmp: np.ndarray
    best_price: float
    best_profit: float


# -- evaluation through the market itself --------------------------------------------------------
def _check_agent(agent, prices, quantities, sides, true_cost, true_value):
    p, q, s = check_book(prices, quantities, sides)
    if p.ndim != 1:
        raise ValueError(f"prices: expected one book of shape (n,), got {p.shape}")
    if not 0 <= agent < p.size:
        raise ValueError(f"agent: index {agent} outside [0, {p.size})")
    side = int(s[agent])
    if side not in (SELL, BUY) or not q[agent] > 0:
        raise ValueError(f"agent: order {agent} must be a buy or sell with quantity > 0 (side {side}, "
                         f"quantity {q[agent]})")
    if side == SELL:
        if true_cost is None or true_value is not None:
            raise ValueError("true_cost: a seller needs true_cost (and no true_value)")
        if true_cost.curvature() == -1 or true_cost.curvature() == 2:
            raise ValueError("true_cost: must be convex (slopes non-decreasing)")
        fn = true_cost
    else:
        if true_value is None or true_cost is not None:
            raise ValueError("true_value: a buyer needs true_value (and no true_cost)")
        if true_value.curvature() in (1, 2):
            raise ValueError("true_value: must be concave (slopes non-increasing)")
        fn = true_value
    return p, q, s, side, fn


def _profit(side: int, fn: PiecewiseLinear, cash: float, matched: float) -> float:
    return float(cash - fn(matched)) if side == SELL else float(cash + fn(matched))


def evaluate_offer(market: DlmpMarket, agent: int, price: float, prices, quantities, sides,
                   wholesale_price: float, p_load_kw=None, q_load_kvar=None, *, true_cost=None,
                   true_value=None) -> tuple[float, float, float]:
    """(profit $, matched kWh, DLMP $/kWh at the agent's bus) when ``agent`` offers ``price`` and
    the market clears with ``DlmpMarket.clear`` (HiGHS's own tie-breaking)."""
    p, q, s, side, fn = _check_agent(agent, prices, quantities, sides, true_cost, true_value)
    p = p.copy()
    p[agent] = price
    r = market.clear(p, q, s, wholesale_price, p_load_kw, q_load_kvar)
    return _profit(side, fn, float(r.cash[agent]), float(r.matched[agent])), float(r.matched[agent]), \
        float(r.unit_price[agent])


def grid_best_response(market: DlmpMarket, agent: int, prices, quantities, sides, wholesale_price: float,
                       p_load_kw=None, q_load_kvar=None, *, grid, true_cost=None,
                       true_value=None) -> GridProfile:
    """Profit over the offer prices ``grid`` ($/kWh), one ``DlmpMarket.clear`` per point."""
    g = np.asarray(grid, dtype=np.float64).ravel()
    if g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError("grid: need at least one finite price")
    out = np.array([evaluate_offer(market, agent, x, prices, quantities, sides, wholesale_price, p_load_kw,
                                   q_load_kvar, true_cost=true_cost, true_value=true_value) for x in g])
    j = int(np.argmax(out[:, 0]))
    return GridProfile(g, out[:, 0], out[:, 1], out[:, 2], float(g[j]), float(out[j, 0]))


# -- the MILP --------------------------------------------------------------------------------------
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


def dlmp_best_response(market: DlmpMarket, agent: int, prices, quantities, sides, wholesale_price: float,
                       p_load_kw=None, q_load_kvar=None, *, true_cost: PiecewiseLinear | None = None,
                       true_value: PiecewiseLinear | None = None, price_bounds=(0.0, 0.4),
                       delta: float = 1e-7, time_limit: float = 30.0) -> DlmpBestResponse:
    """Optimal offer price of order ``agent`` (index into the book) against the other fixed orders.

    prices, quantities, sides: the book (n,), as for ``DlmpMarket.clear`` (``prices[agent]`` is
    ignored); true_cost (seller) / true_value (buyer): ``PiecewiseLinear`` in kWh -> $;
    price_bounds: (p_lo, p_hi) $/kWh admissible offers; delta: $/kWh nudge for
    ``achievable_profit``; time_limit: seconds for HiGHS. See the module docstring.
    """
    p, q, s, side, fn = _check_agent(agent, prices, quantities, sides, true_cost, true_value)
    p_lo, p_hi = (float(x) for x in price_bounds)
    if not (np.isfinite(p_lo) and np.isfinite(p_hi) and p_lo <= p_hi):
        raise ValueError(f"price_bounds: need finite p_lo <= p_hi, got {price_bounds}")
    lp = market.lp_arrays(p, q, s, wholesale_price, p_load_kw, q_load_kvar)
    dt = market.dt_h
    A, c, lo, hi, rl, ru = lp.A, lp.cost, lp.col_lo, lp.col_hi, lp.row_lo, lp.row_hi
    col = int(market.c_sell[agent] if side == SELL else market.c_buy[agent])
    sgn = 1.0 if side == SELL else -1.0          # c_col = sgn * dt * price
    c[col] = 0.0
    n_row, n_col = A.shape

    bm = big_m_bounds(A, c, lo, hi, rl, ru, [col], dt * max(abs(p_lo), abs(p_hi)), col)
    ylo, yhi, mu_max, blo, bhi = bm.ylo, bm.yhi, bm.mu_max, bm.blo, bm.bhi
    art_lo, art_hi, amin, amax = bm.art_lo, bm.art_hi, bm.amin, bm.amax

    m = Milp()
    x = [m.var(blo[j], bhi[j]) for j in range(n_col)]
    price = m.var(p_lo, p_hi)
    y_terms, dual_obj, n_bin = add_row_optimality(m, x, A, rl, ru, ylo, yhi, amin, amax)

    for j in range(n_col):
        terms = [(v, A[i, j] * sg) for i in range(n_row) if A[i, j] != 0 for v, sg in y_terms[i]]
        if lo[j] == hi[j]:  # fixed column: free reduced cost, no complementarity
            v = m.var(-mu_max[j], mu_max[j])
            terms.append((v, 1.0))
            dual_obj.append((v, lo[j]))
        else:
            for bound, sign, art in ((lo[j], 1.0, art_lo[j]), (hi[j], -1.0, art_hi[j])):
                if art:  # infinite in the LP: no multiplier (the box bound is artificial)
                    continue
                mu = m.var(0.0, mu_max[j])
                z = m.var(0.0, 1.0, integer=True)
                n_bin += 1
                gap = bhi[j] - lo[j] if sign > 0 else hi[j] - blo[j]
                m.row(-INF, 0.0, [mu, z], [1.0, -mu_max[j]])
                m.row(-INF, gap + sign * bound, [x[j], z], [sign, gap])
                terms.append((mu, sign))
                if not (j == col and sign < 0):  # -u mu- of the agent's column cancels in the cash
                    dual_obj.append((mu, sign * bound))
        rhs = c[j]
        if j == col:
            terms.append((price, -sgn * dt))
        m.row(rhs, rhs, [t[0] for t in terms], [t[1] for t in terms])

    # objective: cash = D - sum_{j != col} c_j x_j + u_col mu-_col  (the -u mu- of D cancels)
    obj = {}
    for v, a in dual_obj:
        obj[v] = obj.get(v, 0.0) + a
    for j in range(n_col):
        if j != col and c[j] != 0:
            obj[x[j]] = obj.get(x[j], 0.0) - c[j]
    # true cost / value: epigraph t >= lines (seller, convex) or hypograph t <= lines (buyer)
    t = m.var(-INF, INF)
    for a0, b0 in zip(fn.intercepts, fn.slopes):
        if side == SELL:
            m.row(a0, INF, [t, x[col]], [1.0, -b0 * dt])
        else:
            m.row(-INF, a0, [t, x[col]], [1.0, -b0 * dt])
    obj[t] = -1.0 if side == SELL else 1.0
    for v, a in obj.items():
        m.c[v] += a

    sol, gap, polished, status = m.solve_polished(time_limit, "dlmp_best_response")
    xs = sol[x]
    y = np.array([sum(sol[v] * sg for v, sg in terms) for terms in y_terms])
    dlmp = float(sgn * (A[:, col] @ y) / dt)
    matched = float(xs[col] * dt)
    cash = float((A[:, col] @ y) * xs[col])
    best_p = float(sol[price])
    profit = _profit(side, fn, cash, matched)
    box_ok = bool(np.all(~art_lo | (xs > blo + 1e-6 * np.abs(blo))) and np.all(~art_hi | (xs < bhi - 1e-6 * bhi)))

    kw = dict(true_cost=true_cost, true_value=true_value)
    args = (p, q, s, wholesale_price, p_load_kw, q_load_kvar)
    rc = evaluate_offer(market, agent, best_p, *args, **kw)
    # One-sided limits: at a tie HiGHS may pick a dispatch the agent dislikes; p -/+ delta does not.
    achievable = max([rc[0]] + [evaluate_offer(market, agent, float(np.clip(best_p + d, p_lo, p_hi)), *args, **kw)[0]
                                for d in (-delta, delta)])
    return DlmpBestResponse(
        price=best_p, profit=profit, matched_kwh=matched, dlmp=dlmp, cash=cash,
        recleared_profit=rc[0], recleared_matched_kwh=rc[1], recleared_dlmp=rc[2],
        achievable_profit=achievable, delta=float(delta), status=status, mip_gap=gap,
        n_binaries=n_bin, polished=bool(polished), box_ok=box_ok,
    )
