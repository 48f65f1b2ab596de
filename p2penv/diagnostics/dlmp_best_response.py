"""Exact best offer price of one strategic agent in the DLMP market (bilevel program -> MILP).

Setting (``p2penv.network.dlmp.DlmpMarket``): every order is fixed except the *price* of agent k's
order (quantity Q_k kWh and side fixed). The agent chooses its offer price p in [p_lo, p_hi] $/kWh
to maximise its true profit, anticipating the operator's clearing LP (the lower level):

    seller:  max_p  DLMP_b(p) * m(p) - C(m(p))          buyer:  max_p  V(m(p)) - DLMP_b(p) * m(p)

with m the matched kWh and b the agent's bus. C (V) is the agent's true cost (value) of the energy,
a convex (concave) piecewise-linear function of kWh (``PiecewiseLinear``; a quadratic cost enters
through its secant interpolation, error <= a h^2 / 4 $ for segment width h kWh). Quadratic C would
make the program an MIQP, which HiGHS does not solve.

The program is built and solved by ``p2penv.diagnostics.bilevel.solve_price_bilevel`` (one builder for
this single agent and for coalitions). Lower level in HiGHS form (read from the market after ``_prepare``,
so it is the LP ``clear`` solves, losses linearised at the market's *fixed* ``loss_model``; lossless = ``LossModel.lossless``):

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

import numpy as np

from ..market.mechanisms.types import BUY, SELL, check_book
from ..network.dlmp import DlmpMarket
from .bilevel import order_profit, solve_price_bilevel


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


def evaluate_offer(market: DlmpMarket, agent: int, price: float, prices, quantities, sides,
                   wholesale_price: float, p_load_kw=None, q_load_kvar=None, *, true_cost=None,
                   true_value=None) -> tuple[float, float, float]:
    """(profit $, matched kWh, DLMP $/kWh at the agent's bus) when ``agent`` offers ``price`` and
    the market clears with ``DlmpMarket.clear`` (HiGHS's own tie-breaking)."""
    p, q, s, side, fn = _check_agent(agent, prices, quantities, sides, true_cost, true_value)
    p = p.copy()
    p[agent] = price
    r = market.clear(p, q, s, wholesale_price, p_load_kw, q_load_kvar)
    return order_profit(side, fn, float(r.cash[agent]), float(r.matched[agent])), float(r.matched[agent]), \
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
    sol = solve_price_bilevel(market, p, q, s, wholesale_price, p_load_kw, q_load_kvar, [agent], [fn], (p_lo, p_hi),
                              time_limit=time_limit, who="dlmp_best_response")
    best_p = float(sol.prices[0])

    kw = dict(true_cost=true_cost, true_value=true_value)
    args = (p, q, s, wholesale_price, p_load_kw, q_load_kvar)
    rc = evaluate_offer(market, agent, best_p, *args, **kw)
    # One-sided limits: at a tie HiGHS may pick a dispatch the agent dislikes; p -/+ delta does not.
    achievable = max([rc[0]] + [evaluate_offer(market, agent, float(np.clip(best_p + d, p_lo, p_hi)), *args, **kw)[0]
                                for d in (-delta, delta)])
    return DlmpBestResponse(
        price=best_p, profit=float(sol.profits[0]), matched_kwh=float(sol.matched_kwh[0]), dlmp=float(sol.dlmp[0]),
        cash=float(sol.cash[0]), recleared_profit=rc[0], recleared_matched_kwh=rc[1], recleared_dlmp=rc[2],
        achievable_profit=achievable, delta=float(delta), status=sol.status, mip_gap=sol.mip_gap,
        n_binaries=sol.n_binaries, polished=sol.polished, box_ok=sol.box_ok,
    )
