"""Compiled parts of ``AuctionCore``: settlement, state update and observations in one pass.

After the clearing, one call settles every order (``settlement.settle_order``, the code the
pipeline's ``settle`` uses), moves every market to the next step (previous dispatch, last price
and volume, the next feasible interval of ``prosumer.feasible_interval``) and writes the
observations. Done as numpy this is ~40 small array operations per step, each costing more in
call overhead than in arithmetic at the sizes of one market; compiled, one env or 4,096 envs
cost one call. Observation columns are addressed by their ``OBS_FIELDS`` name (constants below).
"""
from __future__ import annotations

import numba
import numpy as np

from ..market.mechanisms.book import clear_double_auction_kernel
from ..market.pipeline import orders_kernel
from ..market.settlement import settle_order
from .fields import OBS_FIELDS, names

_OBS = names(OBS_FIELDS)
N_OBS = len(_OBS)
(O_DEMAND, O_AVAILABILITY, O_PREV_DISPATCH, O_FEASIBLE_LO, O_FEASIBLE_HI, O_HOUR_SIN, O_HOUR_COS, O_LAST_PRICE,
 O_LAST_VOLUME, O_MC_LO, O_MC_HI, O_BUY_VALUE) = map(_OBS.index, (
    "demand", "availability", "prev_dispatch", "feasible_lo", "feasible_hi", "hour_sin", "hour_cos", "last_price",
    "last_volume", "mc_lo", "mc_hi", "buy_value"))


@numba.njit(cache=True, nogil=True)
def _clip1(x):
    return min(max(x, -1.0), 1.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _empty3(e_n, n):
    """Three uninitialised ``(E, N)`` float64 outputs of a kernel (inlined into the caller)."""
    return np.empty((e_n, n)), np.empty((e_n, n)), np.empty((e_n, n))


@numba.njit(cache=True, nogil=True)
def observe_kernel(demand, p_max, p_prev, lo, hi, hour_sin, hour_cos, last_price, last_volume, mc_slope, mc_offset,
                   buy_value, kw_scale, price_floor, price_span, volume_scale):
    """Observations ``(E, N, N_OBS)`` float32 of the current step (see ``fields.OBS_FIELDS``).

    last_price ($/kWh) and last_volume (kWh) are per market ``(E,)``: prices map [floor, floor +
    span] to [-1, 1], volumes are multiplied by ``volume_scale`` (1 / (N obs_kw_scale dt_h)).
    """
    e_n, n = demand.shape
    obs = np.empty((e_n, n, N_OBS), np.float32)
    for e in range(e_n):
        last_price_unit = 2.0 * (last_price[e] - price_floor) / price_span - 1.0
        last_volume_unit = last_volume[e] * volume_scale
        for i in range(n):
            o = obs[e, i]
            o[O_DEMAND] = _clip1(demand[e, i] * kw_scale)
            o[O_AVAILABILITY] = _clip1(p_max[e, i] * kw_scale)
            o[O_PREV_DISPATCH] = _clip1(p_prev[e, i] * kw_scale)
            o[O_FEASIBLE_LO] = _clip1(lo[e, i] * kw_scale)
            o[O_FEASIBLE_HI] = _clip1(hi[e, i] * kw_scale)
            o[O_HOUR_SIN] = hour_sin
            o[O_HOUR_COS] = hour_cos
            o[O_LAST_PRICE] = _clip1(last_price_unit)
            o[O_LAST_VOLUME] = _clip1(last_volume_unit)
            # marginal cost (2 a E + b) / eta at both interval ends, already mapped like prices
            o[O_MC_LO] = _clip1(mc_slope[e, i] * lo[e, i] + mc_offset[e, i])
            o[O_MC_HI] = _clip1(mc_slope[e, i] * hi[e, i] + mc_offset[e, i])
            o[O_BUY_VALUE] = _clip1(buy_value[e, i])
    return obs


@numba.njit(cache=True, nogil=True)
def feasible_kernel(p_prev, p_max, ramp):
    """``prosumer.feasible_interval`` over ``(E, N)``: lo, hi and the ramp violation (kW)."""
    e_n, n = p_prev.shape
    lo, hi, viol = _empty3(e_n, n)
    for e in range(e_n):
        for i in range(n):
            low = max(0.0, p_prev[e, i] - ramp[e, i])
            hi[e, i] = min(p_max[e, i], p_prev[e, i] + ramp[e, i])
            viol[e, i] = max(low - p_max[e, i], 0.0)  # availability below the ramp floor: physics wins
            lo[e, i] = min(low, p_max[e, i])
    return lo, hi, viol


@numba.njit(cache=True, nogil=True)
def settle_markets_kernel(dispatch, order, sides, matched, unit, battery, lo, demand, eta, cost_a, cost_b, shed_value,
                          degradation, dt_h, retail, feed_in, curtail, island_voll, clearing_price, last_price):
    """Settle E markets ``(E, N)`` and return (settlement ``(9, E, N)``, new last price ``(E,)``).

    The last price keeps its previous value where a book had no price (nan: an empty book).
    """
    e_n, n = dispatch.shape
    out = np.empty((9, e_n, n))
    new_price = np.empty(e_n)
    for e in range(e_n):
        for i in range(n):
            settle_order(dispatch[e, i], order[e, i], sides[e, i], matched[e, i], unit[e, i], battery[e, i],
                         lo[e, i], demand[e, i], eta[e, i], cost_a[e, i], cost_b[e, i], shed_value[e, i],
                         degradation[e, i], dt_h, retail, feed_in, curtail, island_voll, out, e, i)
        cp = clearing_price[e]
        new_price[e] = cp if np.isfinite(cp) else last_price[e]
    return out, new_price


@numba.njit(cache=True, nogil=True)
def storage_kernel(soc, battery, charge_kw, discharge_kw, eta_c, eta_d, soc_min, soc_max, dt_h, advance):
    """``market.storage.next_soc`` (when ``advance``) then ``storage_interval`` over ``(E, N)``.

    Returns (SOC, charge_max, discharge_max) of the next step; one pass instead of ~12 array calls.
    """
    e_n, n = soc.shape
    new, cmax, dmax = _empty3(e_n, n)
    for e in range(e_n):
        for i in range(n):
            s = soc[e, i]
            if advance:
                b = battery[e, i]
                s = s + (eta_c[e, i] * max(b, 0.0) - max(-b, 0.0) / eta_d[e, i]) * dt_h
                s = min(max(s, soc_min[e, i]), soc_max[e, i])
            new[e, i] = s
            cmax[e, i] = max(min(charge_kw[e, i], (soc_max[e, i] - s) / (eta_c[e, i] * dt_h)), 0.0)
            dmax[e, i] = max(min(discharge_kw[e, i], (s - soc_min[e, i]) * eta_d[e, i] / dt_h), 0.0)
    return new, cmax, dmax


@numba.njit(cache=True, nogil=True)
def storage_obs_kernel(obs, soc, capacity, cmax, dmax, kw_scale):
    """Append ``STORAGE_OBS_FIELDS`` (SOC / capacity, battery interval) to observations ``(E, N, F)``."""
    e_n, n, f = obs.shape
    out = np.empty((e_n, n, f + 3), np.float32)
    for e in range(e_n):
        for i in range(n):
            for j in range(f):
                out[e, i, j] = obs[e, i, j]
            cap = capacity[e, i]
            out[e, i, f] = _clip1(2.0 * soc[e, i] / cap - 1.0) if cap > 0 else -1.0
            out[e, i, f + 1] = _clip1(cmax[e, i] * kw_scale)
            out[e, i, f + 2] = _clip1(dmax[e, i] * kw_scale)
    return out


@numba.njit(cache=True, nogil=True)
def soc_end_kernel(soc, target, cmax, dmax, charge_kw, discharge_kw, eta_c, eta_d, dt_h, steps_after):
    """``market.storage.soc_end_interval`` over ``(E, N)`` (same arithmetic): the battery interval
    narrowed so that ``target`` stays reachable, and the narrowing (kW of interval width removed)."""
    e_n, n = soc.shape
    c_out, d_out, cut = _empty3(e_n, n)
    for e in range(e_n):
        for i in range(n):
            s, ec, ed = soc[e, i], eta_c[e, i], eta_d[e, i]
            lo_soc = target[e, i] - steps_after * ec * charge_kw[e, i] * dt_h
            hi_soc = target[e, i] + steps_after * discharge_kw[e, i] * dt_h / ed
            phys_lo = s - dmax[e, i] * dt_h / ed
            phys_hi = s + ec * cmax[e, i] * dt_h
            low = min(max(lo_soc, phys_lo), phys_hi)
            high = max(min(hi_soc, phys_hi), low)
            c = cmax[e, i]
            if high < phys_hi:
                d_soc = high - s
                c = d_soc / (ec * dt_h) if d_soc >= 0.0 else d_soc * ed / dt_h
            d = dmax[e, i]
            if low > phys_lo:
                d_soc = low - s
                d = -(d_soc / (ec * dt_h) if d_soc >= 0.0 else d_soc * ed / dt_h)
            c_out[e, i] = c
            d_out[e, i] = d
            cut[e, i] = (cmax[e, i] + dmax[e, i]) - (c + d)
    return c_out, d_out, cut


@numba.njit(cache=True, nogil=True)
def storage_command_kernel(actions, cmax, dmax):
    """Storage actions on an interval that may exclude idle (``soc_end``): ``market.storage.battery_power``.

    Returns the actions with component 2 replaced by the sign of the battery power, the interval
    ``(max(b, 0), max(-b, 0))`` on which ``pipeline.orders_kernel`` turns that sign into exactly ``b``,
    and how far each original component 2 lay outside [-1, 1] (its clip excess).
    """
    e_n, n, k = actions.shape
    acts = actions.copy()
    c_out, d_out, excess = _empty3(e_n, n)
    for e in range(e_n):
        for i in range(n):
            a = actions[e, i, 2]
            u = min(max(a, -1.0), 1.0)
            excess[e, i] = abs(a - u)
            lo, hi = -dmax[e, i], cmax[e, i]
            z = min(max(0.0, lo), hi)
            b = z + u * (hi - z) if u >= 0.0 else z + u * (z - lo)
            acts[e, i, 2] = 1.0 if b > 0.0 else (-1.0 if b < 0.0 else 0.0)
            c_out[e, i] = max(b, 0.0)
            d_out[e, i] = max(-b, 0.0)
    return acts, c_out, d_out, excess


# -- the fused step of the common case (no batteries, flat tariffs, uniform or pay-as-bid clearing) ----------
# Rows of the per-agent block ``agent (A_ROWS, E, N)`` float64 that ``market_step_kernel`` returns: the first
# A_INFO rows are the info columns of the step in ``fields.INFO_FIELDS`` order (checked by the env core), then
# the reward, the chosen (pre-curtailment) dispatch and the next step's feasible interval.
(A_PRICE, A_REALISED, A_NET, A_SIDE, A_ORDER, A_MATCHED, A_UNIT, A_CASH, A_IMPORT, A_EXPORT, A_CURTAILED, A_SHED,
 A_COST, A_STEP_LO, A_STEP_HI, A_STEP_VIOLATION, A_CLIP_PRICE, A_CLIP_DISPATCH) = range(18)
A_INFO = 18
A_REWARD, A_DISPATCH, A_LO, A_HI, A_VIOLATION = 18, 19, 20, 21, 22  # A_LO..: the next step's interval (kW)
A_ROWS = 23
# ``settlement.Settlement``'s fields in order, as rows of the block
A_SETTLEMENT_ROWS = (A_REALISED, A_NET, A_CASH, A_IMPORT, A_EXPORT, A_CURTAILED, A_SHED, A_COST, A_REWARD)
# Rows of the per-market block ``market (M_ROWS, E)``: the first four in ``AuctionCore.market_columns`` order.
M_CLEARING_PRICE, M_VOLUME, M_WELFARE, M_SURPLUS, M_LAST_PRICE = 0, 1, 2, 3, 4
M_ROWS = 5
# Rows of the per-episode block ``static (S_ROWS, E, N)`` and entries of ``params``.
S_ETA, S_COST_A, S_COST_B, S_SHED, S_RAMP, S_ZERO, S_MC_SLOPE, S_MC_OFFSET, S_BUY_VALUE = range(9)
S_ROWS = 9
(P_DT, P_FLOOR, P_CAP, P_K, P_WALRASIAN, P_PAY_AS_BID, P_RETAIL, P_FEED_IN, P_CURTAIL, P_ISLAND_VOLL, P_KW_SCALE,
 P_VOLUME_SCALE) = range(12)
P_LEN = 12


@numba.njit(cache=True, nogil=True)
def first_nonfinite(actions):
    """Flat (C-order) index of the first NaN/inf entry of ``actions (E, N, K)``, or -1: one pass, and no
    arithmetic on the values, so huge finite actions cannot overflow into a false alarm."""
    e_n, n, k = actions.shape
    for e in range(e_n):
        for i in range(n):
            for j in range(k):
                if not np.isfinite(actions[e, i, j]):
                    return (e * n + i) * k + j
    return -1


@numba.njit(cache=True, nogil=True)
def market_step_kernel(actions, t, state, last_price, demand, p_max, sincos, static, params):
    """One step of E markets in one call: validation, orders, clearing, settlement, next interval, observations.

    The same compiled functions as ``AuctionCore``'s general path, in the same order (``pipeline.orders_kernel``,
    ``book.clear_double_auction_kernel`` as ``uniform.clear``/``pay_as_bid.clear`` call it, ``settle_markets_kernel``,
    ``feasible_kernel``, ``observe_kernel``), so the numbers are the general path's bit for bit; what is gone is
    the Python between them (about twenty calls and small objects per step) and most argument passing.

    actions ``(E, N, K)`` float32 or float64 (K = 2); t: this step's index; state: the last ``agent`` block (or
    the reset's), whose rows ``A_LO``, ``A_HI``, ``A_VIOLATION`` are this step's feasible interval (kW);
    last_price ``(E,)`` $/kWh; demand, p_max ``(E, T, N)`` kW (the fleet's); sincos ``(T + 1, 2)``: the hour of
    day of each step; static ``(S_ROWS, E, N)`` and params ``(P_LEN,)``: the episode's constants (``S_*``, ``P_*``).
    On the episode's last step (t + 1 = T) the observation keeps this step's context, as the general path does.

    Returns ``(bad, agent, market, obs)``: ``bad`` the flat index of the first non-finite action entry (then
    nothing was computed and the blocks are empty) or -1; ``agent (A_ROWS, E, N)`` float64 (rows ``A_*``; the
    interval rows hold the next step's), ``market (M_ROWS, E)`` float64 (rows ``M_*``), observations
    ``(E, N, N_OBS)`` float32.
    """
    e_n, n, _ = actions.shape
    bad = first_nonfinite(actions)
    if bad >= 0:
        return bad, np.empty((0, 0, 0)), np.empty((0, 0)), np.empty((0, 0, 0), np.float32)
    dt_h, floor, cap = params[P_DT], params[P_FLOOR], params[P_CAP]
    lo, hi, viol = state[A_LO], state[A_HI], state[A_VIOLATION]
    eta, zero = static[S_ETA], static[S_ZERO]
    dem, pmax = demand[:, t], p_max[:, t]
    price, dispatch, qty, sides, excess, battery = orders_kernel(actions, lo, hi, eta, dem, zero, zero, dt_h,
                                                                 floor, cap)
    matched, unit, cp, volume, surplus, welfare = clear_double_auction_kernel(
        price, qty, sides, params[P_K], params[P_WALRASIAN] != 0.0, params[P_PAY_AS_BID] != 0.0)
    st, new_price = settle_markets_kernel(dispatch, qty, sides, matched, unit, battery, lo, dem, eta,
                                          static[S_COST_A], static[S_COST_B], static[S_SHED], zero, dt_h,
                                          params[P_RETAIL], params[P_FEED_IN], params[P_CURTAIL] != 0.0,
                                          params[P_ISLAND_VOLL], cp, last_price)
    agent = np.empty((A_ROWS, e_n, n))
    for e in range(e_n):
        for i in range(n):
            agent[A_PRICE, e, i] = price[e, i]
            agent[A_DISPATCH, e, i] = dispatch[e, i]
            agent[A_ORDER, e, i] = qty[e, i]
            agent[A_SIDE, e, i] = sides[e, i]
            agent[A_MATCHED, e, i] = matched[e, i]
            agent[A_UNIT, e, i] = unit[e, i]
            for r in range(9):
                agent[A_SETTLEMENT_ROWS[r], e, i] = st[r, e, i]
            agent[A_STEP_LO, e, i] = lo[e, i]
            agent[A_STEP_HI, e, i] = hi[e, i]
            agent[A_STEP_VIOLATION, e, i] = viol[e, i]
            agent[A_CLIP_PRICE, e, i] = excess[e, i, 0]
            agent[A_CLIP_DISPATCH, e, i] = excess[e, i, 1]
    p_prev = agent[A_REALISED]
    hour_sin, hour_cos = sincos[t + 1, 0], sincos[t + 1, 1]
    kw_scale, volume_scale = params[P_KW_SCALE], params[P_VOLUME_SCALE]
    mc_slope, mc_offset, buy_value = static[S_MC_SLOPE], static[S_MC_OFFSET], static[S_BUY_VALUE]
    if t + 1 < demand.shape[1]:
        dem_next, pmax_next = demand[:, t + 1], p_max[:, t + 1]
        lo2, hi2, viol2 = feasible_kernel(p_prev, pmax_next, static[S_RAMP])
        obs = observe_kernel(dem_next, pmax_next, p_prev, lo2, hi2, hour_sin, hour_cos, new_price, volume,
                             mc_slope, mc_offset, buy_value, kw_scale, floor, cap - floor, volume_scale)
        agent[A_LO] = lo2
        agent[A_HI] = hi2
        agent[A_VIOLATION] = viol2
    else:
        obs = observe_kernel(dem, pmax, p_prev, lo, hi, hour_sin, hour_cos, new_price, volume, mc_slope,
                             mc_offset, buy_value, kw_scale, floor, cap - floor, volume_scale)
        agent[A_LO] = lo
        agent[A_HI] = hi
        agent[A_VIOLATION] = viol
    market = np.empty((M_ROWS, e_n))
    for e in range(e_n):
        market[M_CLEARING_PRICE, e] = cp[e]
        market[M_VOLUME, e] = volume[e]
        market[M_WELFARE, e] = welfare[e]
        market[M_SURPLUS, e] = surplus[e]
        market[M_LAST_PRICE, e] = new_price[e]
    return -1, agent, market, obs


@numba.njit(cache=True, nogil=True)
def fleet_values_ok(demand, p_max, ramp, eta, cost_a, cost_b, p0, shed):
    """True when a fleet's values (flattened 1-D arrays) pass ``Fleet.validate``'s checks: demand, availability
    and p0 finite and >= 0 (kW), ramp > 0 (inf allowed), eta in (0, 1], cost_a finite and > 0, cost_b finite,
    shed values >= 0 (inf allowed). One pass; the env calls ``Fleet.validate`` for the named error only when False."""
    for x in demand:
        if not (np.isfinite(x) and x >= 0.0):
            return False
    for x in p_max:
        if not (np.isfinite(x) and x >= 0.0):
            return False
    for x in ramp:
        if not x > 0.0:  # False for nan
            return False
    for x in eta:
        if not (np.isfinite(x) and 0.0 < x <= 1.0):
            return False
    for x in cost_a:
        if not (np.isfinite(x) and x > 0.0):
            return False
    for x in cost_b:
        if not np.isfinite(x):
            return False
    for x in p0:
        if not (np.isfinite(x) and x >= 0.0):
            return False
    for x in shed:
        if not x >= 0.0:  # False for nan
            return False
    return True
