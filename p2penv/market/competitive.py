"""Competitive (price-taking) benchmark: central welfare maximisation and its price (spec S1).

    max  sum_j U_j(d_j) - sum_i C_i(E_i) - pi_retail * import + pi_fit * export
    s.t. sum_i eta_i E_i - sum_j d_j - D_fixed + import - export = 0,   E_i, d_j within limits

with ``C_i(E) = a_i E^2 + b_i E`` (strictly convex) and ``U_j(d) = v_j d - w_j d^2`` (strictly
concave). Flexible loads with a constant value of lost load ``s_k`` ($/kWh) up to ``f_k`` kWh add
``sum_k s_k x_k`` with ``0 <= x_k <= f_k`` (a step in the demand curve: served in full below the
price ``s_k``, shed above it, rationed at it). The balance multiplier ``lambda`` is the market price. KKT: every unit strictly inside its
limits has ``C_i'(E_i) = lambda eta_i`` and ``U_j'(d_j) = lambda``. Transactive energy: broadcasting
``lambda`` and letting every agent solve ``max lambda eta E - C(E)`` alone (``price_taker_response``)
reproduces the central optimum, which is the counterfactual the diagnostics compare strategic
outcomes with.

The utility grid is a backstop that sells at the retail tariff and buys at the feed-in tariff, so
``lambda`` lies in [feed-in, retail]; ``grid=False`` gives an isolated market. Responses are
piecewise linear in ``lambda``, so the root of the net supply is found exactly from the sorted
breakpoints (no iteration, no tolerance). ``competitive_joint_action`` plays the benchmark in one env step:
its dispatch with truthful prices, as a normalised joint action.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .truthful import reservation_buy_price, step_tariffs, truthful_price


@dataclass(frozen=True)
class CompetitiveOutcome:
    """Competitive equilibrium of one step; energies in kWh, prices in $/kWh, money in $."""

    price: float  # lambda, $/kWh at the grid connection
    energy_kwh: np.ndarray  # (N,) producer DER energy E_i
    consumption_kwh: np.ndarray  # (M,) flexible consumption d_j
    grid_import_kwh: float
    grid_export_kwh: float
    cost: float  # sum C_i(E_i)
    utility: float  # sum U_j(d_j)
    welfare: float  # utility - cost - retail*import + fit*export
    flex_served_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) flexible loads served


def _as(x, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=float), (n,))


def price_taker_response(price, cost_a, cost_b, e_lo, e_hi, eta=1.0) -> np.ndarray:
    """Energy (kWh) maximising ``price*eta*E - a E^2 - b E`` over ``[e_lo, e_hi]``; broadcasts."""
    return np.clip((np.asarray(price) * eta - cost_b) / (2.0 * np.asarray(cost_a)), e_lo, e_hi)


def consumer_response(price, util_v, util_w, d_lo, d_hi) -> np.ndarray:
    """Consumption (kWh) maximising ``v d - w d^2 - price d`` over ``[d_lo, d_hi]``."""
    return np.clip((np.asarray(util_v) - price) / (2.0 * np.asarray(util_w)), d_lo, d_hi)


def competitive_equilibrium(
    cost_a,
    cost_b,
    e_lo,
    e_hi,
    eta=1.0,
    *,
    fixed_demand_kwh: float = 0.0,
    util_v=(),
    util_w=(),
    d_lo=0.0,
    d_hi=np.inf,
    retail_price: float | None = None,
    feed_in_price: float | None = None,
    flex_kwh=(),
    flex_value=(),
) -> CompetitiveOutcome:
    """Solve the S1 welfare maximisation exactly; see module docstring.

    ``retail_price`` / ``feed_in_price`` are the grid backstop (both or neither); without a grid the
    market must balance on its own and a ValueError says so when it cannot.
    """
    a = np.asarray(cost_a, dtype=float).ravel()
    n = a.shape[0]
    b, elo, ehi, et = _as(cost_b, n), _as(e_lo, n), _as(e_hi, n), _as(eta, n)
    v = np.asarray(util_v, dtype=float).ravel()
    m = v.shape[0]
    w, dlo, dhi = _as(util_w, m), _as(d_lo, m), _as(d_hi, m)
    if np.any(a <= 0) or np.any(w <= 0):
        raise ValueError("cost_a and util_w must be > 0 (strictly convex costs, concave utilities)")
    if np.any(elo > ehi) or np.any(dlo > dhi):
        raise ValueError("limits: every lower limit must be <= its upper limit")
    grid = retail_price is not None or feed_in_price is not None
    if grid and (retail_price is None or feed_in_price is None or feed_in_price > retail_price):
        raise ValueError("grid: give both retail_price and feed_in_price with feed_in <= retail")
    fq = np.asarray(flex_kwh, dtype=float).ravel()
    fv = np.broadcast_to(np.asarray(flex_value, dtype=float), fq.shape) if fq.size else np.zeros(0)
    if np.any(fq < 0) or np.any(np.isnan(fv)):
        raise ValueError("flex_kwh must be >= 0 and flex_value a number for every flexible load")

    def net_supply(lam: np.ndarray, served_at_value: bool = True) -> np.ndarray:
        """Z(lambda); at lambda == s_k a flexible load counts as served (left limit) or shed."""
        lam = np.asarray(lam)[..., None]
        s = (et * price_taker_response(lam, a, b, elo, ehi, et)).sum(-1)
        if m:
            s = s - consumer_response(lam, v, w, dlo, dhi).sum(-1)
        if fq.size:
            on = (fv >= lam) if served_at_value else (fv > lam)
            s = s - (fq * on).sum(-1)
        return s - fixed_demand_kwh

    bps = [(2 * a * elo + b) / et, (2 * a * ehi + b) / et]
    if m:
        bps += [v - 2 * w * dhi, v - 2 * w * dlo]
    if fq.size:
        bps += [fv]
    cand = np.concatenate(bps)
    cand = np.unique(cand[np.isfinite(cand)])
    if grid:
        lo_p, hi_p = float(feed_in_price), float(retail_price)
        cand = np.unique(np.concatenate([[lo_p, hi_p], cand[(cand > lo_p) & (cand < hi_p)]]))
    z = net_supply(cand)  # left limits (flexible loads at their value served)
    zr = net_supply(cand, served_at_value=False)  # right limits; Z jumps up at each s_k
    imp = exp = 0.0
    if grid and z[0] >= 0:
        lam, exp = cand[0], float(z[0])
    elif grid and zr[-1] <= 0:
        lam, imp = cand[-1], float(-zr[-1])
    else:
        if z[0] > 0 or zr[-1] < 0:
            raise ValueError(
                f"isolated market cannot balance: net supply ranges over [{z[0]:.6g}, {zr[-1]:.6g}] kWh"
            )
        j = int(np.argmax(zr >= 0))  # first candidate whose right limit is non-negative
        if z[j] <= 0 or j == 0:
            lam = cand[j]  # the root is at a breakpoint (a flexible load there is rationed)
        else:  # Z is linear on the open segment before cand[j]: interpolate exactly
            lam = cand[j - 1] + (cand[j] - cand[j - 1]) * (-zr[j - 1]) / (z[j] - zr[j - 1])
    lam = float(lam)
    e = price_taker_response(lam, a, b, elo, ehi, et)
    d = consumer_response(lam, v, w, dlo, dhi) if m else np.zeros(0)
    x = np.where(fv > lam, fq, 0.0)
    at = fv == lam
    if np.any(at):  # rationed loads at the price absorb exactly the remaining balance
        rest = float(net_supply(np.array(lam), served_at_value=False)) + exp - imp
        x = np.where(at, fq * min(max(rest / fq[at].sum(), 0.0), 1.0), x)
    cost = float(((a * e + b) * e).sum())
    util = float(((v - w * d) * d).sum()) if m else 0.0
    util += float((fv * x).sum()) if fq.size else 0.0
    welfare = util - cost - (retail_price or 0.0) * imp + (feed_in_price or 0.0) * exp
    return CompetitiveOutcome(lam, e, d, imp, exp, cost, util, welfare, x)


def competitive_joint_action(ctx, rules) -> tuple[np.ndarray, float]:
    """Privileged competitive baseline of one step: the S1 benchmark dispatch with truthful prices.

    Solves the central welfare maximisation of the step (``competitive_equilibrium``) with the true
    costs and feasible intervals in ``ctx`` (a ``p2penv.market.pipeline.StepContext``), dispatches every
    DER there, and bids true reservation values (``p2penv.market.truthful``: sellers their marginal cost
    at that dispatch, at least feed-in; buyers retail, or the value of lost load of a flexible load).
    ``rules``: price bounds and tariffs (``MarketRules`` or an env's ``MarketConfig``). Returns the (N, 2)
    normalised joint action (float32) and the competitive price lambda ($/kWh).
    """
    dt = ctx.dt_h
    retail, feed_in = step_tariffs(ctx, rules)
    value = reservation_buy_price(ctx, rules)
    flex = value < retail  # flexible loads: demand curve steps at their lost value
    out = competitive_equilibrium(
        ctx.cost_a, ctx.cost_b, ctx.lo_kw * dt, ctx.hi_kw * dt, ctx.eta,
        fixed_demand_kwh=float(ctx.demand_kw[~flex].sum() * dt),
        flex_kwh=ctx.demand_kw[flex] * dt, flex_value=value[flex],
        retail_price=retail, feed_in_price=feed_in,
    )
    p = out.energy_kwh / dt
    width = ctx.hi_kw - ctx.lo_kw
    u_disp = np.where(width > 0, 2.0 * (p - ctx.lo_kw) / np.where(width > 0, width, 1.0) - 1.0, -1.0)
    mc = (2.0 * ctx.cost_a * out.energy_kwh + ctx.cost_b) / ctx.eta
    price = truthful_price(ctx.eta * p - ctx.demand_kw > 0, mc, value, feed_in)
    span = rules.price_cap - rules.price_floor
    u_price = np.clip(2.0 * (price - rules.price_floor) / span - 1.0, -1.0, 1.0)
    return np.stack([u_price, np.clip(u_disp, -1.0, 1.0)], axis=1).astype(np.float32), out.price
