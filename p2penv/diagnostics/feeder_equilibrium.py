"""Equilibria of the DLMP stage game on a feeder: several strategic agents, coalitions, misreports.

Builds on the exact single-agent best response of ``dlmp_best_response``
(bilevel program -> MILP on the market's own clearing LP):

* ``feeder_iterated_best_response``: iterated (Gauss-Seidel) best response of several strategic
  orders (sellers and/or buyers), each step the exact MILP best offer price of one agent against the
  others' current offers. Returns the profile, per-agent profits, NashConv (sum of the MILP
  best-response gains at the final profile), iterations and a converged flag (``FeederEquilibrium``).
* ``coalition_best_response``: the joint best response of a coalition (maximise the members' summed
  true profit over their offer prices), exact: the strong-duality linearisation of the single-agent
  MILP holds for the sum over several strategic columns (a "producer with several units", Ruiz &
  Conejo 2009), so the coalition's cash is linear in (x, duals) too. A coalition of one reproduces
  ``dlmp_best_response`` (tested).
* ``demand_misreport``: an agent declares another quantity (more / less than its true demand or
  capacity) and is evaluated at its true economics; gain and effect on the DLMPs.
* ``env_feeder_book`` / ``env_feeder_ibr``: the same for a live ``dlmp_v0`` step: the book is built
  from ``env.ctx`` and the actions exactly as the env does (``actions_to_orders``), and each agent's
  true cost (value) of matched energy is read off the env's own settlement (reward at price 0 as a
  function of the matched kWh: the backstop's feed-in / retail tariff, the curtailment savings or
  the shed value), so the diagnostic never re-implements settlement.

Prices are offers in $/kWh inside ``book.price_bounds``; money in $; energy kWh per step.

Ties and the supremum. The best offer typically ties another order's price (the DLMP jumps there)
and the best profit is then a supremum, reached only as the price approaches the tie from the
favourable side. The dynamics therefore move an agent to the best *re-cleared* price among the
MILP's price p* and p* -/+ ``delta`` (``DlmpMarket.clear``, HiGHS's own tie-breaking), and only when
that improves its re-cleared profit by more than ``tol`` ("lazy" updates: an agent already at a best
response keeps its price, which is what makes capacity-constrained price games, where many prices
are best responses, settle). At the result:

    nash_conv            = sum_i max(0, achievable_i - profit_i)   (<= tol per agent when converged)
    nash_conv_sup        = sum_i max(0, milp_profit_i - profit_i)  (the supremum gap: <= sum Q_i delta
                                                                   plus the optimistic-tie cases of
                                                                   ``dlmp_best_response``)

where achievable_i is the best re-clear at p*, p* -/+ delta. Both are reported.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np

from ..market.mechanisms.types import BUY, SELL, check_book
from ..market.pipeline import actions_to_orders, validate_actions
from ..market.settlement import settle
from ..market.truthful import step_tariffs
from ..network.dlmp import DlmpClearing, DlmpMarket
from .bilevel import order_profit, solve_price_bilevel
from .dlmp_best_response import PiecewiseLinear, dlmp_best_response

__all__ = [
    "CoalitionResponse", "DemandMisreport", "FeederBook", "FeederEquilibrium", "book_profits", "clear_book",
    "coalition_best_response", "demand_misreport", "env_feeder_book", "env_feeder_ibr",
    "feeder_iterated_best_response", "truthful_book",
]


@dataclass(frozen=True)
class FeederBook:
    """One DLMP order book with the agents' true economics.

    prices, quantities, sides: (n,) the book as ``DlmpMarket.clear`` takes it ($/kWh, kWh, +1/-1/0).
    wholesale_price: lambda_0 $/kWh;  p_load_kw, q_load_kvar: (n_bus,) fixed loads (None: none).
    true_fns:     (n,) per order a ``PiecewiseLinear`` true cost (sellers, convex) or value (buyers,
                  concave) of its matched kWh, or None (non-strategic order: no profit reported).
    price_bounds: (lo, hi) $/kWh admissible offers.
    """

    prices: np.ndarray
    quantities: np.ndarray
    sides: np.ndarray
    wholesale_price: float
    p_load_kw: np.ndarray | None = None
    q_load_kvar: np.ndarray | None = None
    true_fns: tuple = ()
    price_bounds: tuple = (0.0, 0.4)

    def __post_init__(self) -> None:
        p, q, s = check_book(self.prices, self.quantities, self.sides)
        if p.ndim != 1:
            raise ValueError(f"prices: expected one book (n,), got shape {p.shape}")
        fns = tuple(self.true_fns) if len(self.true_fns) else (None,) * p.size
        if len(fns) != p.size:
            raise ValueError(f"true_fns: expected {p.size} entries (one per order, None allowed), got {len(fns)}")
        lo, hi = (float(x) for x in self.price_bounds)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"price_bounds: need finite lo <= hi, got {self.price_bounds}")
        object.__setattr__(self, "prices", p.copy())
        object.__setattr__(self, "quantities", q.copy())
        object.__setattr__(self, "sides", s.copy())
        object.__setattr__(self, "true_fns", fns)
        object.__setattr__(self, "price_bounds", (lo, hi))

    @property
    def n(self) -> int:
        return int(self.prices.size)

    def fn_kwargs(self, i: int) -> dict:
        """``true_cost=`` / ``true_value=`` keyword for ``dlmp_best_response`` of order i."""
        f = self.true_fns[i]
        if f is None:
            raise ValueError(f"true_fns: order {i} has no true cost/value, so it cannot be strategic")
        return {"true_cost": f} if self.sides[i] == SELL else {"true_value": f}

    def with_prices(self, prices) -> "FeederBook":
        return _replace(self, prices=np.asarray(prices, dtype=np.float64))


def _replace(book: FeederBook, **kw) -> FeederBook:
    d = dict(prices=book.prices, quantities=book.quantities, sides=book.sides, wholesale_price=book.wholesale_price,
             p_load_kw=book.p_load_kw, q_load_kvar=book.q_load_kvar, true_fns=book.true_fns,
             price_bounds=book.price_bounds)
    d.update(kw)
    return FeederBook(**d)


def truthful_book(book: FeederBook) -> FeederBook:
    """The book with every order that has a true fn priced at its marginal cost (value) of the first
    kWh (linear fns: the true price), clipped to the price bounds."""
    p = book.prices.copy()
    for i, f in enumerate(book.true_fns):
        if f is not None:
            p[i] = float(np.clip(f.slopes[0], *book.price_bounds))
    return book.with_prices(p)


def clear_book(market: DlmpMarket, book: FeederBook, prices=None, quantities=None, *,
               cold: bool = True) -> DlmpClearing:
    """``DlmpMarket.clear`` of the book (optionally with other prices / quantities).

    cold: clear a deep copy of the market (HiGHS rebuilt, cold basis), so the result does not depend
    on what the market solved before. At tied prices the warm-started LP may pick another optimal
    dispatch depending on its previous basis; every evaluation of this module is cold, hence
    reproducible (about 2.5 ms per clear on the 33-bus feeder)."""
    p = book.prices if prices is None else np.asarray(prices, dtype=np.float64)
    q = book.quantities if quantities is None else np.asarray(quantities, dtype=np.float64)
    mk = copy.deepcopy(market) if cold else market
    return mk.clear(p, q, book.sides, book.wholesale_price, book.p_load_kw, book.q_load_kvar)


def _order_profits(book: FeederBook, lp: DlmpClearing, true_fns=None) -> np.ndarray:
    fns = book.true_fns if true_fns is None else true_fns
    out = np.full(book.n, np.nan)
    for i, f in enumerate(fns):
        if f is None or book.sides[i] == 0:
            continue
        out[i] = order_profit(int(book.sides[i]), f, float(lp.cash[i]), float(lp.matched[i]))
    return out


def book_profits(market: DlmpMarket, book: FeederBook, prices=None, quantities=None, true_fns=None, *,
                 cold: bool = True):
    """(profits (n,) $, clearing): true profit of every order with a true fn (nan otherwise) after one
    ``clear_book``: cash - C(matched) for sellers, V(matched) - payment for buyers."""
    lp = clear_book(market, book, prices, quantities, cold=cold)
    return _order_profits(book, lp, true_fns), lp


# -- iterated best response ------------------------------------------------------------------------
@dataclass(frozen=True)
class FeederEquilibrium:
    """Result of ``feeder_iterated_best_response`` (money $, prices $/kWh).

    strategic:        (k,) order indices of the strategic agents.
    profile:          (k,) their offer prices at the result.
    prices:           (n,) the whole book's prices at the result.
    profits:          (k,) re-cleared true profits at the result.
    best_profits:     (k,) MILP best-response profits (supremum) against the result.
    achievable:       (k,) best re-cleared profit at the MILP price -/+ delta.
    gains:            (k,) max(0, achievable - profits);  nash_conv = gains.sum().
    sup_gains:        (k,) max(0, best_profits - profits); nash_conv_sup = sup_gains.sum().
    iterations:       sweeps run (each sweep: one MILP per strategic agent).
    converged:        True when a whole sweep moved nobody.
    history:          (iterations + 1, k) profile after each sweep (row 0: the start).
    clearing:         ``DlmpClearing`` of the result.
    milp_calls:       MILPs solved.
    """

    strategic: np.ndarray
    profile: np.ndarray
    prices: np.ndarray
    profits: np.ndarray
    best_profits: np.ndarray
    achievable: np.ndarray
    gains: np.ndarray
    nash_conv: float
    sup_gains: np.ndarray
    nash_conv_sup: float
    iterations: int
    converged: bool
    history: np.ndarray
    clearing: DlmpClearing = field(repr=False)
    milp_calls: int = 0


def _check_strategic(book: FeederBook, strategic) -> np.ndarray:
    idx = np.asarray(list(strategic), dtype=np.int64).ravel()
    if idx.size == 0 or len(set(idx.tolist())) != idx.size:
        raise ValueError(f"strategic: need distinct order indices, got {list(strategic)}")
    for i in idx:
        if not 0 <= i < book.n:
            raise ValueError(f"strategic: index {i} outside [0, {book.n})")
        if book.sides[i] == 0 or not book.quantities[i] > 0:
            raise ValueError(f"strategic: order {i} is idle (side {book.sides[i]}, quantity {book.quantities[i]})")
        book.fn_kwargs(int(i))
    return idx


def _best_nudged(market, book, i, price, prices, delta):
    """(best re-cleared profit of order i, its price) over price, price -/+ delta (clipped)."""
    lo, hi = book.price_bounds
    best = (-np.inf, price)
    for d in (0.0, -delta, delta):
        x = float(np.clip(price + d, lo, hi))
        p = prices.copy()
        p[i] = x
        u = book_profits(market, book, p)[0][i]
        if u > best[0] + 1e-12:
            best = (u, x)
    return best


def feeder_iterated_best_response(market: DlmpMarket, book: FeederBook, strategic, *, init=None,
                                  max_iter: int = 20, tol: float = 1e-7, delta: float = 1e-7,
                                  time_limit: float = 30.0) -> FeederEquilibrium:
    """Iterated best response of the ``strategic`` orders on the DLMP stage game.

    Each sweep visits the strategic agents in order; agent i computes its exact best offer price
    (``dlmp_best_response``) against the current prices of everybody else and moves to the best
    re-cleared price among the MILP's p* and p* -/+ ``delta`` if that beats its current re-cleared
    profit by more than ``tol`` $ (see the module docstring). Stops after a sweep without a move
    (``converged``) or ``max_iter`` sweeps. init: (k,) starting prices of the strategic agents
    (default: the book's prices, e.g. ``truthful_book(book)``).
    """
    idx = _check_strategic(book, strategic)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"max_iter: need an integer >= 1, got {max_iter!r}")
    if not (tol >= 0 and delta >= 0):
        raise ValueError(f"tol/delta: must be >= 0, got {tol}, {delta}")
    prices = book.prices.copy()
    if init is not None:
        x = np.asarray(init, dtype=np.float64).ravel()
        if x.shape != idx.shape:
            raise ValueError(f"init: expected {idx.size} prices (one per strategic agent), got {x.size}")
        prices[idx] = np.clip(x, *book.price_bounds)
    args = (book.quantities, book.sides, book.wholesale_price, book.p_load_kw, book.q_load_kvar)
    history = [prices[idx].copy()]
    calls, converged, it = 0, False, 0
    k = idx.size
    best_p, ach, cur = np.zeros(k), np.zeros(k), np.zeros(k)
    for it in range(1, max_iter + 1):
        moved = False
        for a, i in enumerate(idx):
            u_now = book_profits(market, book, prices)[0][i]
            br = dlmp_best_response(market, int(i), prices, *args, price_bounds=book.price_bounds, delta=delta,
                                    time_limit=time_limit, **book.fn_kwargs(int(i)))
            calls += 1
            u_ach, x = _best_nudged(market, book, int(i), br.price, prices, delta)
            best_p[a], ach[a], cur[a] = br.profit, u_ach, u_now
            if u_ach > u_now + tol:
                prices[i] = x
                moved = True
                cur[a] = u_ach
        history.append(prices[idx].copy())
        if not moved:
            converged = True
            break
    profits, lp = book_profits(market, book, prices)
    u = profits[idx]
    if not converged:  # the sweep's best responses were against moving profiles: recompute at the result
        for a, i in enumerate(idx):
            br = dlmp_best_response(market, int(i), prices, *args, price_bounds=book.price_bounds, delta=delta,
                                    time_limit=time_limit, **book.fn_kwargs(int(i)))
            calls += 1
            best_p[a] = br.profit
            ach[a] = _best_nudged(market, book, int(i), br.price, prices, delta)[0]
    gains = np.maximum(ach - u, 0.0)
    sup = np.maximum(best_p - u, 0.0)
    return FeederEquilibrium(
        strategic=idx, profile=prices[idx].copy(), prices=prices, profits=u, best_profits=best_p.copy(),
        achievable=ach.copy(), gains=gains, nash_conv=float(gains.sum()), sup_gains=sup,
        nash_conv_sup=float(sup.sum()), iterations=it, converged=converged, history=np.array(history),
        clearing=lp, milp_calls=calls)


# -- coalition (exact joint best response) --------------------------------------------------------
@dataclass(frozen=True)
class CoalitionResponse:
    """Joint best offer prices of a coalition (money $, prices $/kWh).

    members:            (k,) order indices.
    prices:             (k,) optimal offer prices (MILP).
    profit:             coalition's summed true profit at the bilevel optimum (optimistic ties).
    member_profits:     (k,) each member's share of it (cash - C, or V - payment).
    recleared_prices:   (k,) best of the MILP prices and every -/+ delta nudge combination, re-cleared.
    recleared_profit:   coalition profit re-cleared by ``DlmpMarket.clear`` at ``recleared_prices``.
    recleared_member_profits: (k,) per member at ``recleared_prices``.
    status, mip_gap, n_binaries, polished: as ``DlmpBestResponse``.
    """

    members: np.ndarray
    prices: np.ndarray
    profit: float
    member_profits: np.ndarray
    recleared_prices: np.ndarray
    recleared_profit: float
    recleared_member_profits: np.ndarray
    status: str
    mip_gap: float
    n_binaries: int
    polished: bool


def coalition_best_response(market: DlmpMarket, book: FeederBook, members, prices=None, *, delta: float = 1e-7,
                            time_limit: float = 60.0) -> CoalitionResponse:
    """Offer prices of the ``members`` maximising their summed true profit, everybody else fixed at
    ``prices`` (default the book's). The MILP of ``dlmp_best_response`` with one price variable and
    one true-cost epigraph per member (one builder: ``p2penv.diagnostics.bilevel.solve_price_bilevel``);
    the cash of the coalition,

        sum_s (A_s.y) x_s = D - sum_{j not in K} c_j x_j + sum_{s in K} u_s mu-_s,

    follows from stationarity + complementarity of every member column and strong duality, as for
    one agent (big-Ms derived the same way)."""
    idx = _check_strategic(book, members)
    p = book.prices.copy() if prices is None else np.asarray(prices, dtype=np.float64).copy()
    p_lo, p_hi = book.price_bounds
    sol = solve_price_bilevel(market, p, book.quantities, book.sides, book.wholesale_price, book.p_load_kw,
                              book.q_load_kvar, idx, [book.true_fns[i] for i in idx], book.price_bounds,
                              time_limit=time_limit, who="coalition_best_response")
    member, best = sol.profits, sol.prices
    # re-clear at the MILP prices and every -/+ delta nudge (3^k clears)
    rc_best = (-np.inf, best, None)
    for d in itertools.product((0.0, -delta, delta), repeat=idx.size):
        pp = p.copy()
        pp[idx] = np.clip(best + np.asarray(d), p_lo, p_hi)
        u = book_profits(market, book, pp)[0][idx]
        if u.sum() > rc_best[0] + 1e-12:
            rc_best = (float(u.sum()), pp[idx].copy(), u)
    return CoalitionResponse(
        members=idx, prices=best, profit=float(member.sum()), member_profits=member,
        recleared_prices=rc_best[1], recleared_profit=rc_best[0], recleared_member_profits=rc_best[2],
        status=sol.status, mip_gap=sol.mip_gap, n_binaries=sol.n_binaries, polished=sol.polished)


# -- quantity (demand) misreport -------------------------------------------------------------------
@dataclass(frozen=True)
class DemandMisreport:
    """One agent declaring other quantities, evaluated at its true economics ($, kWh, $/kWh).

    agent:          order index;  true_kwh: its true quantity.
    declared_kwh:   (g,) declared quantities.
    profits:        (g,) true profit at each declaration (price fixed at ``prices[agent]``).
    gains:          (g,) profits - truthful profit (declared = true).
    matched_kwh:    (g,) matched energy;  dlmp: (g,) DLMP at its bus;  dlmp_buses: (g, n_bus) all DLMPs.
    best_declared_kwh, best_gain: the most profitable declaration and its gain.
    """

    agent: int
    true_kwh: float
    declared_kwh: np.ndarray
    profits: np.ndarray
    gains: np.ndarray
    matched_kwh: np.ndarray
    dlmp: np.ndarray
    dlmp_buses: np.ndarray
    best_declared_kwh: float
    best_gain: float
    clearings: tuple = field(default=(), repr=False)


def extend_true_fn(fn: PiecewiseLinear, side: int, true_kwh: float, max_kwh: float,
                   beyond_price: float) -> PiecewiseLinear:
    """The true fn on [0, true_kwh], continued linearly to ``max_kwh`` at ``beyond_price`` $/kWh:
    a seller that sells more than it has buys the shortfall (e.g. at retail: cost slope), a buyer
    that buys more than it needs resells the excess (e.g. at feed-in: value slope). Convexity
    (concavity) is kept when beyond_price >= (<=) the last slope."""
    bp = [e for e in fn.breakpoints_kwh if e < true_kwh - 1e-12] + [true_kwh]
    vals = [float(fn(e)) for e in bp]
    if max_kwh > true_kwh + 1e-12:
        bp.append(float(max_kwh))
        vals.append(vals[-1] + beyond_price * (max_kwh - true_kwh))
    else:  # continue the last slope beyond the true quantity: add a point so two breakpoints exist
        bp.append(true_kwh + 1.0)
        vals.append(vals[-1] + beyond_price)
    out = PiecewiseLinear(tuple(bp), tuple(vals))
    bad = out.curvature() == 2 or (side == SELL and out.curvature() == -1) or (side == BUY and out.curvature() == 1)
    if bad:
        raise ValueError(f"beyond_price: {beyond_price} $/kWh breaks the {'convexity' if side == SELL else 'concavity'}"
                         f" of the true {'cost' if side == SELL else 'value'}")
    return out


def demand_misreport(market: DlmpMarket, book: FeederBook, agent: int, declared_kwh, *, beyond_price: float,
                     prices=None) -> DemandMisreport:
    """Profit of ``agent`` when it declares each quantity of ``declared_kwh`` instead of its true
    ``book.quantities[agent]`` (others fixed at ``prices``, default the book's).

    beyond_price: $/kWh of energy traded beyond the true quantity (see ``extend_true_fn``); short of
    it the book's true fn applies. A buyer declaring more than its demand buys energy it resells at
    beyond_price; a seller declaring less withholds capacity (the DLMP may rise behind a binding
    constraint), declaring more sells energy it must buy back at beyond_price.
    """
    i = int(agent)
    _check_strategic(book, [i])
    dec = np.asarray(declared_kwh, dtype=np.float64).ravel()
    if dec.size == 0 or np.any(dec < 0) or not np.all(np.isfinite(dec)):
        raise ValueError("declared_kwh: need finite quantities >= 0")
    true_q = float(book.quantities[i])
    fn = extend_true_fn(book.true_fns[i], int(book.sides[i]), true_q, max(float(dec.max()), true_q), beyond_price)
    fns = list(book.true_fns)
    fns[i] = fn
    p = book.prices if prices is None else np.asarray(prices, dtype=np.float64)
    bus = int(market.buses[i])
    prof, mat, dl, dall, lps = [], [], [], [], []
    base = None
    for d in np.concatenate([[true_q], dec]):
        q = book.quantities.copy()
        q[i] = d
        u, lp = book_profits(market, book, p, q, fns)
        if base is None:
            base = float(u[i])
            continue
        prof.append(float(u[i]))
        mat.append(float(lp.matched[i]))
        dl.append(float(lp.dlmp[bus]))
        dall.append(np.asarray(lp.dlmp).copy())
        lps.append(lp)
    prof = np.array(prof)
    gains = prof - base
    j = int(np.argmax(gains))
    return DemandMisreport(agent=i, true_kwh=true_q, declared_kwh=dec, profits=prof, gains=gains,
                           matched_kwh=np.array(mat), dlmp=np.array(dl), dlmp_buses=np.array(dall),
                           best_declared_kwh=float(dec[j]), best_gain=float(gains[j]), clearings=tuple(lps))


# -- live dlmp_v0 env ------------------------------------------------------------------------------
def _secant(e: np.ndarray, v: np.ndarray, convex: bool) -> PiecewiseLinear:
    """PiecewiseLinear through (e, v) with slopes made monotone (removes round-off wiggles)."""
    keep = np.concatenate([[True], np.diff(e) > 1e-12])
    e, v = e[keep], v[keep]
    sl = np.diff(v) / np.diff(e)
    sl = np.maximum.accumulate(sl) if convex else np.minimum.accumulate(sl)
    if np.ptp(sl) <= 1e-9 * max(1.0, float(np.abs(sl).max())):
        sl = np.full_like(sl, sl.mean())
    vals = np.concatenate([[v[0]], v[0] + np.cumsum(sl * np.diff(e))])
    return PiecewiseLinear(tuple(e), tuple(vals))


def env_feeder_book(env, actions, *, n_segments: int = 8) -> tuple[FeederBook, np.ndarray]:
    """(book, bus of each order) of a live ``dlmp_v0`` env for the joint ``actions`` (dict agent ->
    action, as ``env.step``), built like the env builds it: ``actions_to_orders(actions, env.ctx,
    env.rules)``, the env's wholesale price and fixed loads, price bounds (floor, cap).

    True fns from the env's own settlement: for every active order, the step's reward at unit price 0
    as a function of its matched kWh, minus the reward unmatched: -cost(E) for sellers (feed-in
    opportunity cost under the backstop, DER cost saved by curtailment under ``unmatched="curtail"``),
    +value(E) for buyers (retail avoided, or the shed value of a flexible load), sampled at
    ``n_segments`` + 1 points on [0, Q] plus the curtailment kink, secant-interpolated."""
    core = env.core
    ctx, rules = env.ctx, env.rules
    act = validate_actions(actions, env.agents, tuple(env.action_space(env.agents[0]).shape))
    price, dispatch, qty, sides, _, battery = actions_to_orders(act, ctx, rules)
    n = qty.size
    retail, feed = step_tariffs(ctx, rules)
    dt = float(ctx.dt_h)
    # matched kWh grid per agent: fractions of Q plus the curtailment kink (seller: Q - curtailable kWh)
    frac = np.linspace(0.0, 1.0, n_segments + 1)
    curt = np.maximum(ctx.eta * (dispatch - ctx.lo_kw) * dt, 0.0)
    kink = np.clip(qty - curt, 0.0, qty)
    grids = [np.unique(np.concatenate([frac * qty[i], [kink[i]] if sides[i] == SELL else []])) for i in range(n)]
    g = max(len(x) for x in grids)
    e = np.array([np.pad(x, (0, g - len(x)), mode="edge") for x in grids]).T  # (g, n)
    st = settle(dispatch_kw=np.broadcast_to(dispatch, e.shape), floor_kw=ctx.lo_kw, demand_kw=ctx.demand_kw,
                eta=ctx.eta, cost_a=ctx.cost_a, cost_b=ctx.cost_b, dt_h=dt, order_kwh=np.broadcast_to(qty, e.shape),
                sides=np.broadcast_to(sides, e.shape), matched_kwh=e, unit_price=np.zeros(e.shape),
                retail_tariff=retail, feed_in_tariff=feed, unmatched=rules.unmatched, shed_value=ctx.shed_value,
                battery_kw=np.broadcast_to(battery, e.shape), degradation_cost=ctx.degradation_cost)
    r = st.reward - st.reward[:1]  # (g, n): reward gained by matching E at price 0
    fns = []
    for i in range(n):
        if sides[i] == 0 or not qty[i] > 0:
            fns.append(None)
            continue
        ei, ri = e[:, i], r[:, i]
        fns.append(_secant(ei, -ri, True) if sides[i] == SELL else _secant(ei, ri, False))
    book = FeederBook(price, qty, sides, core.wholesale_price(), core.p_fixed_kw, core.q_fixed_kvar, tuple(fns),
                      (rules.price_floor, rules.price_cap))
    return book, np.asarray(env.buses).copy()


def env_feeder_ibr(env, actions, strategic, **kwargs) -> FeederEquilibrium:
    """``feeder_iterated_best_response`` on a live ``dlmp_v0`` step: ``strategic`` are agent names or
    indices; the env's market is deep-copied (cold basis), so the env's warm LP is left untouched."""
    book, _ = env_feeder_book(env, actions)
    names = list(env.agents)
    idx = [names.index(a) if isinstance(a, str) else int(a) for a in strategic]
    return feeder_iterated_best_response(copy.deepcopy(env.market), book, idx, **kwargs)
