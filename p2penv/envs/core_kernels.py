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

from ..market.settlement import settle_order
from .fields import OBS_FIELDS, names

_OBS = names(OBS_FIELDS)
N_OBS = len(_OBS)
O_DEMAND = _OBS.index("demand")
O_AVAILABILITY = _OBS.index("availability")
O_PREV_DISPATCH = _OBS.index("prev_dispatch")
O_FEASIBLE_LO = _OBS.index("feasible_lo")
O_FEASIBLE_HI = _OBS.index("feasible_hi")
O_HOUR_SIN = _OBS.index("hour_sin")
O_HOUR_COS = _OBS.index("hour_cos")
O_LAST_PRICE = _OBS.index("last_price")
O_LAST_VOLUME = _OBS.index("last_volume")
O_MC_LO = _OBS.index("mc_lo")
O_MC_HI = _OBS.index("mc_hi")
O_BUY_VALUE = _OBS.index("buy_value")


@numba.njit(cache=True, nogil=True)
def _clip1(x):
    return min(max(x, -1.0), 1.0)


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
    lo = np.empty((e_n, n))
    hi = np.empty((e_n, n))
    viol = np.empty((e_n, n))
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
    new = np.empty((e_n, n))
    cmax = np.empty((e_n, n))
    dmax = np.empty((e_n, n))
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
    c_out = np.empty((e_n, n))
    d_out = np.empty((e_n, n))
    cut = np.empty((e_n, n))
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
    c_out = np.empty((e_n, n))
    d_out = np.empty((e_n, n))
    excess = np.empty((e_n, n))
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
