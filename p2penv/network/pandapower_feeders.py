"""pandapower networks as suite feeders: a per-unit converter and the LV feeders pandapower ships.

``from_pandapower(net)`` turns a radial pandapower net with one ext_grid into a ``Feeder``. Unlike
``feeder.from_pandapower`` (one voltage level, lines only) it takes the MV/LV substation transformers
and switches of the LV test feeders, through a per-unit model:

* **Per-unit bases.** Power base ``base_kva`` (three-phase, default 1000 kVA); voltage base of each
  bus its own ``vn_kv``. Every series impedance is converted to p.u. on the base of the buses it
  connects, so a transformer whose rated voltages equal its buses' nominal voltages becomes a plain
  series branch (the ideal ratio is 1 in p.u.). ``Feeder.base_kv`` is the level of the most buses
  (the LV level); ``Feeder.r_ohm()`` and ``ac_check.to_pandapower`` therefore give MV-side branches
  referred to the LV side.
* **Lines**: r, x = r_ohm_per_km, x_ohm_per_km x length / parallel; shunt capacitance and
  conductance are ignored (LinDistFlow assumption); rating sqrt(3) vn_kv max_i_ka df parallel kVA
  (above 1e6 kVA, e.g. pandapower's 99999 kA placeholder, reads as unrated).
* **Two-winding transformers**: the short-circuit impedance vk_percent / vkr_percent on the
  transformer's sn_mva, referred to the LV bus, r = vkr/100, |z| = vk/100 (p.u. on sn_mva), divided
  by ``parallel``; rated ``sn_mva x parallel`` MVA. The magnetising branch (pfe_kw iron losses,
  i0_percent) and the phase shift (vector group) are dropped: a radial feeder with one source turns
  every downstream angle by the same shift, which changes neither magnitudes nor flows. An
  off-nominal ratio (tap away from neutral, or rated voltages unlike the buses') is refused.
* **Switches**: a closed bus-bus switch merges its buses; an open line or transformer switch takes
  that branch out; other switches change nothing.
* **Loads**: ``load`` and ``asymmetric_load`` (the sum of the three phases, i.e. the **balanced
  three-phase equivalent** of an unbalanced feeder) minus ``sgen`` and ``asymmetric_sgen``, x scaling,
  as constant power (ZIP shares ignored).
* **Limits**: ``min_vm_pu``/``max_vm_pu`` bus columns when present, else 0.95/1.05 p.u.; the root at the
  ext_grid's ``vm_pu``.

Refused: trafo3w, gen, impedance, dcline, ward, xward, shunt, storage, meshes, several ext_grids.

The built-in feeders below (``ieee_eu_lv``, ``cigre_lv``, ``kerber_dorfnetz``) call pandapower's own
network functions, so pandapower (the ``test`` extra) is needed to build them; it is imported on call.
"""
from __future__ import annotations

import functools

import numpy as np

from .feeder import Feeder, pandapower_voltage_limits

_UNSUPPORTED = ("trafo3w", "gen", "impedance", "dcline", "ward", "xward", "shunt", "storage")
_RATIO_RTOL = 1e-6  # float32-stored nominal voltages (IEEE EU LV: 0.416000008 kV) are still nominal
_UNRATED_KVA = 1e6


def _table(net, name):
    """In-service rows of a pandapower table (None if absent or empty)."""
    if name not in net or not len(net[name]):
        return None
    t = net[name]
    return t[t.in_service] if "in_service" in t else t


def _merge_switched_buses(net, buses: list[int]) -> dict[int, int]:
    """Representative bus of every in-service bus after closing the closed bus-bus switches."""
    rep = {b: b for b in buses}

    def find(b):
        while rep[b] != b:
            rep[b] = rep[rep[b]]
            b = rep[b]
        return b

    sw = _table(net, "switch")
    if sw is not None:
        for b, e, et, closed in zip(sw.bus, sw.element, sw.et, sw.closed):
            if et == "b" and closed and int(b) in rep and int(e) in rep:
                ra, rb = find(int(b)), find(int(e))
                if ra != rb:
                    rep[max(ra, rb)] = min(ra, rb)
    return {b: find(b) for b in buses}


def _feeder_buses(net) -> tuple[list[int], dict[int, int]]:
    """(pandapower bus of each feeder bus, feeder bus of each in-service pandapower bus)."""
    bus = net.bus[net.bus.in_service]
    rep = _merge_switched_buses(net, [int(b) for b in bus.index])
    vn_of = dict(zip((int(b) for b in bus.index), bus.vn_kv.to_numpy(float)))
    for b, r in rep.items():
        if not np.isclose(vn_of[b], vn_of[r], rtol=_RATIO_RTOL):
            raise ValueError(f"from_pandapower: a closed switch joins bus {b} ({vn_of[b]} kV) and {r} ({vn_of[r]} kV)")
    keep = [b for b in rep if rep[b] == b]
    idx = {b: i for i, b in enumerate(keep)}
    return keep, {b: idx[r] for b, r in rep.items()}


def pandapower_buses(net) -> np.ndarray:
    """(n_bus,) the pandapower bus index behind each bus of ``from_pandapower(net)`` (of switch-merged
    buses, the lowest index), to compare results bus by bus."""
    return np.array(_feeder_buses(net)[0], dtype=np.int64)


def _open_branches(net, et: str) -> set[int]:
    sw = _table(net, "switch")
    if sw is None:
        return set()
    return {int(e) for e, t, closed in zip(sw.element, sw.et, sw.closed) if t == et and not closed}


def from_pandapower(net, *, name: str = "pandapower", base_kva: float = 1000.0, **kwargs) -> Feeder:
    """Feeder of a radial pandapower ``net`` (see module docstring for the per-unit model).

    ``base_kva``: three-phase power base (kVA); ``kwargs`` override ``Feeder`` fields (e.g. v_min).
    Bus indices follow the order of the net's in-service buses after merging switched ones
    (``pandapower_buses``); branches are the in-service lines, then the transformers, in table order.
    """
    for tab in _UNSUPPORTED:
        if _table(net, tab) is not None:
            raise ValueError(f"from_pandapower: table '{tab}' is not supported (radial lines and 2-winding trafos)")
    eg = _table(net, "ext_grid")
    if eg is None or len(eg) != 1:
        raise ValueError(f"from_pandapower: need exactly one in-service ext_grid (root), found {0 if eg is None else len(eg)}")
    bus = net.bus[net.bus.in_service]
    keep, at = _feeder_buses(net)
    vn_of = dict(zip((int(b) for b in bus.index), bus.vn_kv.to_numpy(float)))
    sb_kva = float(base_kva)

    f, t, r_pu, x_pu, lim = [], [], [], [], []

    def ends(a, b, what):
        try:
            return at[int(a)], at[int(b)]
        except KeyError as e:
            raise ValueError(f"from_pandapower: in-service {what} connects out-of-service bus {e}") from None

    lines = _table(net, "line")
    if lines is not None:
        lines = lines[~lines.index.isin(list(_open_branches(net, "l")))]
        par = lines.parallel.to_numpy(float)
        df = lines.df.to_numpy(float) if "df" in lines else np.ones(len(lines))
        for li, (a, b, km, r, x, i_ka, p_, d_) in enumerate(zip(lines.from_bus, lines.to_bus, lines.length_km,
                                                                 lines.r_ohm_per_km, lines.x_ohm_per_km,
                                                                 lines.max_i_ka, par, df)):
            fa, fb = ends(a, b, f"line {lines.index[li]}")
            kv = vn_of[int(a)]
            if not np.isclose(kv, vn_of[int(b)], rtol=_RATIO_RTOL):
                raise ValueError(f"from_pandapower: line {lines.index[li]} joins {kv} kV and {vn_of[int(b)]} kV buses")
            z_base = kv**2 * 1000.0 / sb_kva
            f.append(fa), t.append(fb)
            r_pu.append(r * km / p_ / z_base), x_pu.append(x * km / p_ / z_base)
            kva = np.sqrt(3.0) * kv * i_ka * d_ * p_ * 1000.0
            lim.append(np.inf if kva > _UNRATED_KVA else kva)
    trafos = _table(net, "trafo")
    if trafos is not None:
        trafos = trafos[~trafos.index.isin(list(_open_branches(net, "t")))]
        for k, tr in trafos.iterrows():
            fa, fb = ends(tr.hv_bus, tr.lv_bus, f"trafo {k}")
            hv, lv = vn_of[int(tr.hv_bus)], vn_of[int(tr.lv_bus)]
            tap_off = False
            if "tap_pos" in tr and np.isfinite(tr.tap_pos):
                neutral = tr.tap_neutral if np.isfinite(tr.get("tap_neutral", np.nan)) else 0.0
                step = tr.get("tap_step_percent", np.nan)
                tap_off = tr.tap_pos != neutral and np.isfinite(step) and step != 0
            if tap_off or not (np.isclose(tr.vn_hv_kv, hv, rtol=_RATIO_RTOL) and np.isclose(tr.vn_lv_kv, lv, rtol=_RATIO_RTOL)):
                raise ValueError(f"from_pandapower: trafo {k} has an off-nominal ratio (tap or rated voltages "
                                 f"{tr.vn_hv_kv}/{tr.vn_lv_kv} kV on {hv}/{lv} kV buses); only nominal ratios are supported")
            n_par = float(tr.parallel)
            scale = (tr.vn_lv_kv / lv) ** 2 * sb_kva / (tr.sn_mva * 1000.0) / n_par  # trafo p.u. -> system p.u.
            rk, zk = tr.vkr_percent / 100.0, tr.vk_percent / 100.0
            f.append(fa), t.append(fb)
            r_pu.append(rk * scale), x_pu.append(np.sqrt(max(zk**2 - rk**2, 0.0)) * scale)
            lim.append(tr.sn_mva * 1000.0 * n_par)

    n = len(keep)
    p = np.zeros(n)
    q = np.zeros(n)
    for tab, sign, pcols, qcols in (("load", 1.0, ("p_mw",), ("q_mvar",)),
                                    ("sgen", -1.0, ("p_mw",), ("q_mvar",)),
                                    ("asymmetric_load", 1.0, ("p_a_mw", "p_b_mw", "p_c_mw"), ("q_a_mvar", "q_b_mvar", "q_c_mvar")),
                                    ("asymmetric_sgen", -1.0, ("p_a_mw", "p_b_mw", "p_c_mw"), ("q_a_mvar", "q_b_mvar", "q_c_mvar"))):
        el = _table(net, tab)
        if el is None:
            continue
        sc = el.scaling.to_numpy(float) if "scaling" in el else np.ones(len(el))
        pm = sum(el[c].to_numpy(float) for c in pcols) * sc
        qm = sum(el[c].to_numpy(float) for c in qcols) * sc
        for b, pk, qk in zip(el.bus, pm, qm):
            if int(b) not in at:
                continue  # an element on an out-of-service bus is out of service
            p[at[int(b)]] += sign * pk * 1000.0
            q[at[int(b)]] += sign * qk * 1000.0
    reach = {at[int(eg.bus.iloc[0])]}
    adj = {}
    for a, b in zip(f, t):
        adj.setdefault(a, []).append(b), adj.setdefault(b, []).append(a)
    todo = list(reach)
    while todo:
        for nb in adj.get(todo.pop(), ()):
            if nb not in reach:
                reach.add(nb), todo.append(nb)
    if len(reach) < n:
        lost = [keep[i] for i in range(n) if i not in reach]
        raise ValueError(f"from_pandapower: pandapower buses {lost[:10]}{' ...' if len(lost) > 10 else ''} are not "
                         "connected to the ext_grid (open switch or out-of-service branch); the feeder must be connected")
    root = at[int(eg.bus.iloc[0])]
    v_root = float(eg.vm_pu.iloc[0])
    vmin, vmax = pandapower_voltage_limits(bus.loc[keep], root, v_root)
    levels = [round(vn_of[b], 6) for b in keep]
    main = max(set(levels), key=levels.count)
    base_kv = next(vn_of[b] for b, lv in zip(keep, levels) if lv == main)  # as stored (z bases above use it)
    kw = dict(line_limit_kva=np.array(lim), v_min=vmin, v_max=vmax, root=root, v_root=v_root,
              p_load_kw=p, q_load_kvar=q, name=name)
    kw.update(kwargs)
    return Feeder(n, np.array(f, dtype=np.int64), np.array(t, dtype=np.int64), np.array(r_pu), np.array(x_pu),
                  base_kv, sb_kva, **kw)


# -- the LV feeders pandapower ships (balanced single-phase equivalents where the source is unbalanced) --
IEEE_EU_LV_CASE = "on_peak_566"  # pandapower's load snapshot: minute 566 of the published day, the peak


def ieee_eu_lv_net():
    """pandapower's IEEE European LV test feeder (``ieee_european_lv_asymmetric``, ``IEEE_EU_LV_CASE``)."""
    import pandapower.networks as pn

    return pn.ieee_european_lv_asymmetric(IEEE_EU_LV_CASE)


def cigre_lv_net():
    """pandapower's CIGRE LV benchmark (``create_cigre_network_lv``)."""
    import pandapower.networks as pn

    return pn.create_cigre_network_lv()


KERBER_SEED = 0  # pandapower draws each branch-out cable type 50/50 (NAYY 4x50 / NYY 4x35) from Python's `random`


def kerber_dorfnetz_net():
    """pandapower's Kerber village LV network (``create_kerber_dorfnetz``), its random cable types drawn
    with ``random.seed(KERBER_SEED)`` so the feeder is the same in every process (the global ``random``
    state is restored afterwards)."""
    import random

    import pandapower.networks as pn

    state = random.getstate()
    try:
        random.seed(KERBER_SEED)
        return pn.create_kerber_dorfnetz()
    finally:
        random.setstate(state)


LV_LIMITS = dict(v_min=0.90, v_max=1.10)  # EN 50160: +-10 % of nominal at LV customers


@functools.cache  # a Feeder is immutable; pandapower takes seconds to build the net
def ieee_eu_lv() -> Feeder:
    """IEEE European LV test feeder (IEEE PES distribution test feeders, 2015): 0.416 kV, 906 LV buses, 55
    single-phase loads, 800 kVA 11/0.416 kV transformer; pandapower's ``on_peak_566`` snapshot (57.4 kW).
    **Balanced single-phase equivalent**: the loads of the three phases are summed into balanced
    three-phase loads and lines use their positive-sequence impedance; the unbalance (neutral current,
    zero-sequence voltage drop) of the published feeder is not modelled. 907 buses (root = the 11 kV
    bus), limits 0.90/1.10 p.u., root at 1.05 p.u. as in pandapower."""
    return from_pandapower(ieee_eu_lv_net(), name="ieee_eu_lv", **LV_LIMITS)


@functools.cache  # a Feeder is immutable; pandapower takes seconds to build the net
def cigre_lv() -> Feeder:
    """CIGRE LV benchmark network (CIGRE TF C6.04.02, 2014; residential, industrial and commercial
    feeders behind three 20/0.4 kV transformers of 500, 150 and 300 kVA merged at the MV busbar): 41
    buses, 15 loads, 686.6 kW / 284.3 kvar; limits 0.90/1.10 p.u."""
    return from_pandapower(cigre_lv_net(), name="cigre_lv", **LV_LIMITS)


@functools.cache  # a Feeder is immutable; pandapower takes seconds to build the net
def kerber_dorfnetz() -> Feeder:
    """Kerber "Dorfnetz" (village) LV network (G. Kerber, TU Munich, 2011, as built by pandapower):
    10/0.4 kV 400 kVA transformer, 116 buses, 57 loads of 6 kW (cos phi = 1), 342 kW; limits 0.90/1.10 p.u.
    pandapower draws the branch-out cables' types at random; ``kerber_dorfnetz_net`` fixes the draw.
    The transformer's iron losses (pfe_kw) are dropped (module docstring)."""
    return from_pandapower(kerber_dorfnetz_net(), name="kerber_dorfnetz", **LV_LIMITS)
