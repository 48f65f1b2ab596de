"""Local market power behind binding network constraints (spec S9 on the feeder).

The system-wide indicators of ``market_power`` treat the community as one market. On a feeder a
binding line rating or voltage limit splits it: the buses behind the constraint (its *zone*) can
import only so much, so the sellers inside compete among themselves for the rest of the zone's
demand. Pure functions of one ``DlmpClearing`` (``env.last_lp``) plus the sellers' buses and
capacities:

* ``binding_constraints``: lines whose flow limit binds (nonzero congestion shadow price, or
  loading >= 1 - tol) and buses whose voltage limit binds (nonzero voltage shadow price, or V within
  ``v_tol`` of a limit). Shadow prices are read back from the DLMP components: the congestion part
  at bus k is the sum of the shadow prices of the lines on the root -> k path, so line l's price is
  the jump of the congestion part across it; the voltage part is ``sum_j nu_j r_path[j, k]``, solved
  for nu over the non-root buses.
* ``downstream_buses``: the zone a line feeds. A binding voltage limit at bus j gets the zone of the
  most upstream line on the root -> j path whose to-bus shares at least ``voltage_share`` (default
  1/2) of bus j's path resistance: the buses at least half as effective as j itself at moving V_j
  (``voltage_zone_line``).
* per zone: the sellers' matched volume, shares and HHI; the residual supply index
  RSI_i = (capacity of the zone's other sellers + import capability) / zonal demand and pivotal
  flags RSI_i < 1; the zonal DLMP and, given the competitive DLMP, the locational markup.

Import capability (kW) of a zone: a binding line's active limit at the cleared reactive flow,
sqrt(S_l^2 - Q_l^2) (the LP's own limit, either direction: a line at its export limit could still
carry that much in); for a binding v_min, the cleared flow on the zone line (more import would break
the limit); for a binding v_max, unlimited (importing relieves an overvoltage), so nobody is pivotal.
Zonal demand (kW) = fixed load + cleared bids on the zone's buses. ``direction`` says which side the
constraint limits: +1 supply into the zone (line flowing into the zone at its limit, v_min: the
zone's sellers are the scarce side), -1 export out of it (reverse flow, v_max: its buyers are).
Undefined values are nan (HHI without sales, RSI without demand), never errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..market.mechanisms.types import SELL
from ..network.dlmp import DlmpClearing
from ..network.feeder import Feeder


@dataclass(frozen=True)
class BindingConstraints:
    """Constraints that bind in one clearing.

    lines:        (k,) int line indices whose flow limit binds.
    line_price:   (k,) $/kWh shadow price of each (the jump of the congestion component across it;
                  > 0: more load behind it costs more).
    line_flow_kw: (k,) kW cleared active flow (parent -> child; < 0 reverse flow).
    buses:        (m,) int buses whose voltage limit binds.
    bus_limit:    (m,) int -1 at v_min, +1 at v_max.
    bus_price:    (m,) $/kWh the limit adds to the DLMP of the bus itself (nu_j r_path[j, j]).
    line_priced, bus_priced: (k,), (m,) bool: the shadow price is nonzero (> price_tol); False marks a
                  limit met with equality but not priced (e.g. several buses at v_max at once, only
                  one of them carrying the price).
    """

    lines: np.ndarray
    line_price: np.ndarray
    line_flow_kw: np.ndarray
    buses: np.ndarray
    bus_limit: np.ndarray
    bus_price: np.ndarray
    line_priced: np.ndarray
    bus_priced: np.ndarray

    @property
    def any(self) -> bool:
        return bool(self.lines.size or self.buses.size)


@dataclass(frozen=True)
class ZonalMarketPower:
    """Market power in the zone behind one binding constraint.

    kind:                 "line", "v_min" or "v_max".
    index:                the binding line (kind "line") or bus (voltage kinds).
    zone_line:            line feeding the zone (= index for a line).
    buses:                (z,) int buses of the zone, ascending.
    direction:            +1 the constraint limits supply into the zone, -1 export out of it.
    sellers:              (s,) int order/agent indices in the zone with capacity > 0.
    sold_kwh:             (s,) kWh each matched on the sell side.
    shares:               (s,) share of the zone's matched sales (nan if nobody sold).
    hhi:                  sum of squared shares in [1/s, 1] (nan if nobody sold).
    capacity_kw:          (s,) kW supply capacity of each (as given).
    demand_kw:            kW fixed load + cleared bids in the zone.
    import_capability_kw: kW the zone can import at the constraint (inf for v_max).
    rsi:                  (s,) (zone capacity - capacity_i + import) / demand (nan if demand <= 0).
    rsi_zone:             (zone capacity + import) / demand: < 1 means the zone is short even
                          with every seller in.
    pivotal:              (s,) bool RSI_i < 1: the zone's demand cannot be met without seller i.
    dlmp:                 $/kWh zonal DLMP, the zone's DLMPs weighted by bus demand (plain mean
                          when the zone has no demand).
    competitive_dlmp:     $/kWh the same average of the competitive DLMP (nan if not given).
    markup:               $/kWh dlmp - competitive_dlmp (nan if not given).
    """

    kind: str
    index: int
    zone_line: int
    buses: np.ndarray
    direction: int
    sellers: np.ndarray
    sold_kwh: np.ndarray
    shares: np.ndarray
    hhi: float
    capacity_kw: np.ndarray
    demand_kw: float
    import_capability_kw: float
    rsi: np.ndarray
    rsi_zone: float
    pivotal: np.ndarray
    dlmp: float
    competitive_dlmp: float
    markup: float


@dataclass(frozen=True)
class LocalMarketPower:
    """Binding constraints of one clearing and the market power in the zone behind each (lines
    first, then voltage limits, in the order of ``binding``)."""

    binding: BindingConstraints
    zones: tuple[ZonalMarketPower, ...]

    @property
    def any_pivotal(self) -> bool:
        """True when some seller is pivotal in some zone."""
        return any(bool(z.pivotal.any()) for z in self.zones)


def downstream_buses(feeder: Feeder, line: int) -> np.ndarray:
    """(z,) buses behind ``line`` (its to-bus and everything it feeds), ascending: the zone it serves."""
    if not 0 <= int(line) < feeder.n_line:
        raise ValueError(f"line: {line} outside [0, {feeder.n_line}) of feeder {feeder.name!r}")
    return np.flatnonzero(feeder.path[int(line)])


def _path_lines(feeder: Feeder, bus: int) -> list[int]:
    """Lines on the root -> bus path, root first."""
    out, b = [], int(bus)
    while feeder.parent_line[b] >= 0:
        out.append(int(feeder.parent_line[b]))
        b = int(feeder.parent[b])
    return out[::-1]


def voltage_zone_line(feeder: Feeder, bus: int, share: float = 0.5) -> int:
    """The line whose downstream is the zone of a voltage limit at ``bus``: the most upstream line on
    the root -> bus path whose to-bus shares >= ``share`` of the bus's own path resistance (buses
    behind it move V_bus at least ``share`` times as much per kW as the bus itself)."""
    if int(bus) == feeder.root or not 0 <= int(bus) < feeder.n_bus:
        raise ValueError(f"bus: {bus} is not a non-root bus of feeder {feeder.name!r}")
    if not 0 < share <= 1:
        raise ValueError(f"voltage_share: must be in (0, 1], got {share}")
    rjj = feeder.r_path[bus, bus]
    for l in _path_lines(feeder, bus):
        if feeder.r_path[bus, feeder.to_bus[l]] >= share * rjj - 1e-15:
            return l
    raise AssertionError("unreachable: the bus's own parent line always qualifies")


def line_shadow_prices(lp: DlmpClearing, feeder: Feeder) -> np.ndarray:
    """(n_line,) $/kWh shadow price of every line's flow limit, read back from the congestion part."""
    c = np.asarray(lp.congestion, dtype=np.float64)
    return c[feeder.to_bus] - c[feeder.from_bus]


def voltage_shadow_prices(lp: DlmpClearing, feeder: Feeder) -> np.ndarray:
    """(n_bus,) $/kWh each bus's voltage limit adds to its own DLMP, nu_j r_path[j, j] (0 at the root),
    with nu solved from voltage[k] = sum_j nu_j r_path[j, k] over the non-root buses."""
    nr = feeder.non_root
    out = np.zeros(feeder.n_bus)
    v = np.asarray(lp.voltage, dtype=np.float64)[nr]
    if np.any(v != 0):
        r = feeder.r_path[np.ix_(nr, nr)]
        out[nr] = np.linalg.solve(r, v) * np.diag(r)
    return out


def binding_constraints(lp: DlmpClearing, feeder: Feeder, *, tol: float = 1e-6, price_tol: float = 1e-6,
                        v_tol: float = 1e-6) -> BindingConstraints:
    """Lines and buses whose limits bind in ``lp``.

    A line binds when |shadow price| > ``price_tol`` $/kWh or it is rated and loading >= 1 - ``tol``;
    a bus when |its voltage price| > ``price_tol`` or V lies within ``v_tol`` p.u. of v_min or v_max.
    The side of a voltage limit comes from the price's sign (> 0: v_min, more load costs more), or
    from the nearer limit when the price is zero.
    """
    mu = line_shadow_prices(lp, feeder)
    rated = np.isfinite(feeder.line_limit_kva)
    lines = np.flatnonzero((np.abs(mu) > price_tol) | (rated & (np.asarray(lp.loading) >= 1.0 - tol)))
    nu = voltage_shadow_prices(lp, feeder)
    v = np.asarray(lp.voltages, dtype=np.float64)
    at_lo = np.abs(v - feeder.v_min) <= v_tol
    at_hi = np.abs(v - feeder.v_max) <= v_tol
    bind = (np.abs(nu) > price_tol) | at_lo | at_hi
    bind[feeder.root] = False
    buses = np.flatnonzero(bind)
    side = np.where(np.abs(nu[buses]) > price_tol, np.where(nu[buses] > 0, -1, 1),
                    np.where(at_lo[buses], -1, 1))
    return BindingConstraints(
        lines=lines, line_price=mu[lines], line_flow_kw=np.asarray(lp.line_flows_kw, dtype=np.float64)[lines],
        buses=buses, bus_limit=side.astype(np.int64), bus_price=nu[buses],
        line_priced=np.abs(mu[lines]) > price_tol, bus_priced=np.abs(nu[buses]) > price_tol)


def _zone(lp, kind, index, zone_line, direction, import_kw, buses, sold_kw, cap, dt_h, feeder,
          competitive_dlmp) -> ZonalMarketPower:
    zone = downstream_buses(feeder, zone_line)
    inside = np.isin(buses, zone)
    sellers = np.flatnonzero(inside & (cap > 0))
    sold = sold_kw[sellers] * dt_h
    tot = sold.sum()
    shares = sold / tot if tot > 0 else np.full(sold.shape, np.nan)
    hhi = float((shares**2).sum()) if tot > 0 else float("nan")
    # zonal demand per bus: fixed load + cleared bids = net load + cleared asks
    per_bus = np.asarray(lp.net_load_kw, dtype=np.float64) + np.bincount(buses, sold_kw, minlength=feeder.n_bus)
    dz = per_bus[zone]
    demand = float(dz.sum())
    c = cap[sellers]
    czone = float(c.sum())
    if demand > 0:
        rsi = (czone - c + import_kw) / demand
        rsi_zone = (czone + import_kw) / demand
    else:
        rsi, rsi_zone = np.full(c.shape, np.nan), float("nan")
    w = np.where(dz > 0, dz, 0.0)
    w = w / w.sum() if w.sum() > 0 else np.full(zone.size, 1.0 / zone.size)
    zdlmp = float(w @ np.asarray(lp.dlmp)[zone])
    if competitive_dlmp is None:
        cd = mk = float("nan")
    else:
        cd = float(w @ np.asarray(competitive_dlmp, dtype=np.float64)[zone])
        mk = zdlmp - cd
    return ZonalMarketPower(
        kind=kind, index=int(index), zone_line=int(zone_line), buses=zone, direction=int(direction),
        sellers=sellers, sold_kwh=sold, shares=shares, hhi=hhi, capacity_kw=c, demand_kw=demand,
        import_capability_kw=float(import_kw), rsi=rsi, rsi_zone=float(rsi_zone),
        pivotal=np.nan_to_num(rsi, nan=np.inf) < 1.0, dlmp=zdlmp, competitive_dlmp=cd, markup=mk)


def local_market_power(lp: DlmpClearing, feeder: Feeder, buses, capacities_kw, *, competitive_dlmp=None,
                       dt_h: float = 1.0, tol: float = 1e-6, price_tol: float = 1e-6, v_tol: float = 1e-6,
                       voltage_share: float = 0.5) -> LocalMarketPower:
    """Zonal market power behind every binding constraint of ``lp``.

    buses:            (n,) bus of each order of the book ``lp`` cleared (the env's ``env.buses``).
    capacities_kw:    (n,) kW each agent could supply (0 for non-sellers), e.g. the offered volume
                      ``offered_capacity_kw(infos)`` or the physical headroom eta p_max - demand.
    competitive_dlmp: (n_bus,) $/kWh the DLMPs of the competitive (truthful) book, for the markup.
    dt_h:             step length (h): matched kWh / dt_h = kW.
    tol, price_tol, v_tol, voltage_share: see ``binding_constraints`` and ``voltage_zone_line``.
    """
    b = np.asarray(buses, dtype=np.int64).ravel()
    cap = np.asarray(capacities_kw, dtype=np.float64).ravel()
    n = np.asarray(lp.matched).size
    if b.shape != (n,) or cap.shape != (n,):
        raise ValueError(f"buses/capacities_kw: expected {n} entries (one per order), got {b.size}, {cap.size}")
    if np.any(cap < 0) or not np.all(np.isfinite(cap)):
        raise ValueError("capacities_kw: must be finite and >= 0")
    if not (np.isfinite(dt_h) and dt_h > 0):
        raise ValueError(f"dt_h: must be finite and > 0, got {dt_h}")
    if competitive_dlmp is not None and np.asarray(competitive_dlmp).shape != (feeder.n_bus,):
        raise ValueError(f"competitive_dlmp: expected ({feeder.n_bus},) $/kWh, one per bus")
    sides = np.asarray(lp.sides)
    m_kw = np.asarray(lp.matched, dtype=np.float64) / dt_h
    sold_kw = np.where(sides == SELL, m_kw, 0.0)
    bc = binding_constraints(lp, feeder, tol=tol, price_tol=price_tol, v_tol=v_tol)
    zones = []
    qf = np.asarray(lp.line_flows_kvar, dtype=np.float64)
    pf = np.asarray(lp.line_flows_kw, dtype=np.float64)
    for l, flow in zip(bc.lines, bc.line_flow_kw):
        s = feeder.line_limit_kva[l]
        imp = float(np.sqrt(max(s**2 - qf[l] ** 2, 0.0))) if np.isfinite(s) else abs(float(flow))
        zones.append(_zone(lp, "line", l, l, 1 if flow >= 0 else -1, imp, b, sold_kw, cap, dt_h, feeder,
                           competitive_dlmp))
    for j, side in zip(bc.buses, bc.bus_limit):
        zl = voltage_zone_line(feeder, j, voltage_share)
        imp = max(float(pf[zl]), 0.0) if side < 0 else float("inf")
        zones.append(_zone(lp, "v_min" if side < 0 else "v_max", j, zl, 1 if side < 0 else -1, imp, b, sold_kw,
                           cap, dt_h, feeder, competitive_dlmp))
    return LocalMarketPower(binding=bc, zones=tuple(zones))


def offered_capacity_kw(infos: dict, dt_h: float = 1.0) -> np.ndarray:
    """(n,) kW each agent offered for sale in a step's ``infos`` (order_kwh / dt_h on sell orders, else
    0), agents in the infos' order: the capacity the market saw."""
    rows = list(infos.values())
    return np.array([r["order_kwh"] / dt_h if r["side"] > 0 else 0.0 for r in rows], dtype=np.float64)
