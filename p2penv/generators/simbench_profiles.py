"""``SimbenchCommunity``: a community generator on real SimBench load, PV and home-storage profiles.

Needs the optional extra ``pip install 'p2penv[simbench]'`` (the ``simbench`` package, ~91 MB wheel:
its grids and a year of 15-min profiles ship inside it, nothing is downloaded at run time).

**Source and licence.** SimBench (https://simbench.de, package ``simbench`` 1.6; Meinecke et al.,
"SimBench - A Benchmark Dataset of Electric Power Systems to Compare Innovative Solutions Based on
Power Flow Analysis", Energies 13(12), 3290, 2020). The package's licence (its METADATA ``License``
field and ``LICENSE`` file) says: the database is made available under the Open Database License
(ODbL 1.0, http://opendatacommons.org/licenses/odbl/1.0/), its individual contents under the Database
Contents License (DbCL 1.0); the code is 3-clause BSD. p2penv derives profiles from the database at run
time and ships none of its data.

**The grid.** Default ``1-LV-semiurb5--1-sw``: SimBench's semi-urban LV grid 5 (0.4 kV behind a
630 kVA transformer, 111 buses) in scenario 1 (SimBench's 2024 projection), because scenario 0 (today)
has no storage in any LV grid, and of the scenario-1 LV grids this one mixes households (H0 profiles),
commerce (G profiles), heat pumps and home EV charging with 14 rooftop PV units and 10 PV home-storage
systems (rural1 is a few farms with 0.47 MW of PV against 0.08 MW of load; urban6-1 has no storage;
semiurb4-1 one PV unit and one storage).

**Agents.** A prosumer is one *house bus*: a bus of the grid with at least one load, PV unit (sgen) or
storage. Each house bus has a kind:

* ``pv_battery``: the bus holds a SimBench storage (type ``PV_Storage``);
* ``pv_household``: the bus holds PV units (sgens) but no storage;
* ``consumer``: loads only.

Agent ``i`` takes the next unused bus of kind ``kinds[i % len(kinds)]``, in increasing pandapower bus
index (a ``ValueError`` names a kind the grid runs out of). With the default
``("pv_battery", "pv_household", "consumer", "consumer")`` the first 12 agents are the 3 storage
buses, 3 PV buses and 6 load buses of lowest bus index. :meth:`SimbenchCommunity.mapping` lists every
agent's bus and SimBench elements.

**Profiles (kW).** ``simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)`` gives each
element's active power (MW) at the 35136 quarter-hours of SimBench's profile year (``01.01.2016 00:00``
to ``31.12.2016 23:45``, one fixed clock without daylight saving); x 1000 is kW.

* demand ``d`` = the sum of the bus's loads (households, commerce, heat pumps, EV charging), kW;
* PV availability ``P_max`` = the sum of the bus's sgens, kW; plus, for a ``pv_battery`` bus, the PV of
  its storage system: SimBench models a PV home-storage system as *one* storage element whose profile
  (e.g. ``Storage_PV6_H0-C``) is the system's output under a self-consumption strategy, i.e. its PV
  (profile ``PV6``, rated at the element's ``|p_mw|``) minus what the battery charges plus what it
  discharges to cover the household's load (``H0-C``). The env controls the battery itself, so the
  generator splits the system: PV = the named PV profile x ``|p_mw|`` (kW; at noon of a day with a
  full battery SimBench's system output equals it to 0.02 kW), and a battery of the element's
  capacity ``max_e_mwh`` (kWh), power ``|p_mw|`` both ways (C/2 in this grid), one-way efficiencies
  ``efficiency_percent`` (0.95, a fraction despite the column name), SOC in ``[min_e_mwh, max_e_mwh]``
  starting at ``soc_percent`` (0 %: empty). SimBench's own schedule of the system is kept for reference
  (:meth:`SimbenchCommunity.storage_output_kw`); its 0.13 %/day self-discharge is not modelled.

A step of ``dt_h`` hours (a multiple of 0.25 h) takes the mean of its quarter-hours (the exact energy of
the step); ``start_hour`` must be a multiple of 0.25 h too.

**Episodes.** Market ``e`` draws one number from ``rngs[e]``: the start day
``first_day + rng.integers(n)``, uniform over the ``n`` days of the window ``[first_day, first_day +
n_days)`` whose episode fits in the profile year (``n_days`` None: every such day). Everything else is
data or a fixed constant: PV (with or without battery) ``cost_a`` = ``pv_cost_a`` $/kWh^2, ``cost_b`` =
``pv_cost_b`` $/kWh, ramp = its rated kW (curtailable at will), ``eta`` = 1 (SimBench's PV is AC power
at the grid connection); a load-only agent ``cost_a`` = 0.01 $/kWh^2 (unused: no DER), ramp 1 kW;
batteries cost ``degradation_cost`` $/kWh of throughput; nobody sheds load (``shed_value`` inf).
Tariffs are the env config's flat ones (no ``prices`` method). ``Fleet.bus`` is ``1..N`` as in
``ProfileCommunity``; the SimBench buses are in :meth:`SimbenchCommunity.mapping`.

Speed: ``simbench.get_simbench_net`` parses the CSV database (~5 s); :func:`simbench_net` caches the net
and :func:`grid_profiles` the per-bus arrays of a grid for the process (module-level ``lru_cache``), so
every later episode only slices and averages cached arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Sequence

import numpy as np

from ..market.prosumer import Fleet
from ..market.storage import Storage
from .checks import integer_errors, kinds_errors, missing_extra

try:
    import simbench as _sb
except ImportError as exc:  # core install: SimBench is an optional extra
    raise missing_extra(__name__, "SimBench package (simbench)", "'p2penv[simbench]'") from exc

DEFAULT_GRID = "1-LV-semiurb5--1-sw"
SIMBENCH_KINDS = ("pv_battery", "pv_household", "consumer")
DEFAULT_KINDS = ("pv_battery", "pv_household", "consumer", "consumer")
QUARTER_H = 0.25  # SimBench's profile resolution, hours
STEPS_PER_DAY = 96  # quarter-hours per day
NO_DER_COST_A = 0.01  # $/kWh^2 of an agent without DER (Fleet needs cost_a > 0; never used)


@dataclass(frozen=True)
class GridProfiles:
    """The house buses of one SimBench grid and their year of profiles (read-only arrays).

    buses (B,): pandapower bus indices, increasing; bus_names (B,); kinds (B,): ``pv_battery``,
    ``pv_household`` or ``consumer``; demand_kw, pv_kw (Y, B): kW at the Y quarter-hours of the profile
    year; pv_kwp (B,): rated PV kW (sgens' ``p_mw`` plus the storage systems' ``|p_mw|``, x 1000);
    capacity_kwh, power_kw, eta, soc_min_kwh, soc0_kwh (B,): the bus's battery (0 without one);
    storage_output_kw (Y, B): SimBench's own output of the bus's PV-storage systems (kW, > 0 feeds the
    bus; 0 without one); loads, sgens, storages: the element indices (pandapower tables) at each bus.
    """

    code: str
    buses: np.ndarray
    bus_names: tuple[str, ...]
    kinds: tuple[str, ...]
    demand_kw: np.ndarray
    pv_kw: np.ndarray
    pv_kwp: np.ndarray
    capacity_kwh: np.ndarray
    power_kw: np.ndarray
    eta: np.ndarray
    soc_min_kwh: np.ndarray
    soc0_kwh: np.ndarray
    storage_output_kw: np.ndarray
    loads: tuple[tuple[int, ...], ...]
    sgens: tuple[tuple[int, ...], ...]
    storages: tuple[tuple[int, ...], ...]

    @property
    def n_steps(self) -> int:
        """Quarter-hours in the profile year (35136 for SimBench's 2016)."""
        return self.demand_kw.shape[0]


def storage_pv_profile(profile: str) -> str:
    """The PV profile named in a SimBench storage profile: ``"Storage_PV6_H0-C"`` -> ``"PV6"``."""
    parts = str(profile).split("_")
    if len(parts) < 3 or parts[0] != "Storage" or not parts[1].startswith("PV"):
        raise ValueError(f"storage profile {profile!r}: expected 'Storage_PV<k>_<load profile>'")
    return parts[1]


@lru_cache(maxsize=2)
def simbench_net(code: str = DEFAULT_GRID):
    """Cached ``simbench.get_simbench_net(code)``: the pandapower net with its ``profiles`` (~5 s on first use;
    shared, so do not modify it)."""
    return _sb.get_simbench_net(code)


@lru_cache(maxsize=4)
def grid_profiles(code: str = DEFAULT_GRID) -> GridProfiles:
    """Cached :class:`GridProfiles` of SimBench grid ``code`` (from :func:`simbench_net`)."""
    net = simbench_net(code)
    absv = _sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    for elm in ("load", "sgen", "storage"):
        scaling = net[elm]["scaling"].to_numpy(dtype=float) if "scaling" in net[elm] else np.ones(len(net[elm]))
        if np.any(scaling != 1.0) or not net[elm]["in_service"].all():
            raise ValueError(f"SimBench grid {code}: {elm} with scaling != 1 or out of service is not supported")
    load_kw = absv[("load", "p_mw")].to_numpy(dtype=float) * 1000.0  # (Y, loads), columns in net.load order
    sgen_kw = absv[("sgen", "p_mw")].to_numpy(dtype=float) * 1000.0
    # storage system output: pandapower's storage sign is load-like (p_mw < 0 feeds the grid)
    st_out_kw = -absv[("storage", "p_mw")].to_numpy(dtype=float) * 1000.0 if len(net.storage) else None
    ren = net.profiles["renewables"]
    n_year = load_kw.shape[0]

    load_bus = net.load["bus"].to_numpy()
    sgen_bus = net.sgen["bus"].to_numpy()
    st_bus = net.storage["bus"].to_numpy()
    buses = np.unique(np.concatenate([load_bus, sgen_bus, st_bus])).astype(np.int64)
    b = len(buses)
    demand = np.zeros((n_year, b))
    pv = np.zeros((n_year, b))
    st_out = np.zeros((n_year, b))
    kwp, cap, power, eta = np.zeros(b), np.zeros(b), np.zeros(b), np.ones(b)
    soc_min, soc0 = np.zeros(b), np.zeros(b)
    loads, sgens, storages, kinds = [], [], [], []
    for j, bus in enumerate(buses):
        li = np.flatnonzero(load_bus == bus)
        si = np.flatnonzero(sgen_bus == bus)
        ti = np.flatnonzero(st_bus == bus)
        demand[:, j] = load_kw[:, li].sum(axis=1)
        pv[:, j] = sgen_kw[:, si].sum(axis=1)
        kwp[j] = 1000.0 * net.sgen["p_mw"].to_numpy()[si].sum()
        for t in ti:
            row = net.storage.iloc[t]
            rated_kw = 1000.0 * abs(float(row["p_mw"]))
            pv[:, j] += ren[storage_pv_profile(row["profile"])].to_numpy(dtype=float) * rated_kw
            kwp[j] += rated_kw
            st_out[:, j] += st_out_kw[:, t]
            cap[j] += 1000.0 * float(row["max_e_mwh"])
            power[j] += rated_kw
            soc_min[j] += 1000.0 * float(row["min_e_mwh"])
            soc0[j] += 1000.0 * float(row["max_e_mwh"]) * float(row["soc_percent"]) / 100.0
            eta[j] = float(row["efficiency_percent"])  # a fraction (0.95) despite its name
        if not 0.0 < eta[j] <= 1.0:
            raise ValueError(f"SimBench grid {code}: storage efficiency at bus {bus} is {eta[j]}, expected (0, 1]")
        loads.append(tuple(int(i) for i in net.load.index[li]))
        sgens.append(tuple(int(i) for i in net.sgen.index[si]))
        storages.append(tuple(int(i) for i in net.storage.index[ti]))
        kinds.append("pv_battery" if len(ti) else "pv_household" if len(si) else "consumer")
    if np.any(demand < -1e-12) or np.any(pv < -1e-12):
        raise ValueError(f"SimBench grid {code}: negative load or PV power in its profiles")
    arrays = dict(demand_kw=np.maximum(demand, 0.0), pv_kw=np.maximum(pv, 0.0), pv_kwp=kwp, capacity_kwh=cap,
                  power_kw=power, eta=eta, soc_min_kwh=soc_min, soc0_kwh=np.maximum(soc0, soc_min),
                  storage_output_kw=st_out)
    for a in arrays.values():
        a.setflags(write=False)
    return GridProfiles(code=code, buses=buses, bus_names=tuple(str(net.bus.at[int(x), "name"]) for x in buses),
                        kinds=tuple(kinds), loads=tuple(loads), sgens=tuple(sgens), storages=tuple(storages),
                        **arrays)


def _quarters(hours: float, name: str) -> int:
    """``hours`` as a whole number of quarter-hours (ValueError otherwise)."""
    q = float(hours) / QUARTER_H
    if not (np.isfinite(q) and abs(q - round(q)) < 1e-9 and round(q) >= 0):
        raise ValueError(f"{name}: SimBench profiles are 15-min data; need a non-negative multiple of 0.25 h, "
                         f"got {hours}")
    return int(round(q))


@dataclass(frozen=True)
class SimbenchCommunity:
    """Generator ``(n, horizon, dt_h, start_hour, rng) -> Fleet`` on a SimBench LV grid's real profiles.

    See the module docstring for the agents (one house bus each, by ``kinds``), the kW conversion and
    the day draw. Meets ``p2penv.generators.protocol.BatchGenerator`` (``batch`` market e equals
    ``self(..., rngs[e])`` bit for bit, one draw per market in list order: ``batch_draws_in_order``).

    grid: SimBench code of an LV grid with profiles; kinds: agent kinds, cycled (``SIMBENCH_KINDS``);
    first_day, n_days: the window of start days (day 0 = 1 January 2016; ``n_days`` None: every day of the
    year from ``first_day`` whose episode fits); pv_cost_a ($/kWh^2), pv_cost_b ($/kWh): the PV cost
    curve; degradation_cost: $ per kWh of battery throughput.
    """

    grid: str = DEFAULT_GRID
    kinds: tuple[str, ...] = DEFAULT_KINDS
    first_day: int = 0
    n_days: int | None = None
    pv_cost_a: float = 0.004
    pv_cost_b: float = 0.01
    degradation_cost: float = 0.02

    batch_draws_in_order: ClassVar[bool] = True

    def __post_init__(self) -> None:
        err = (kinds_errors(self.kinds, SIMBENCH_KINDS) + integer_errors("first_day", self.first_day, 0)
               + integer_errors("n_days", self.n_days, 1, none_ok=True))
        if not (self.pv_cost_a > 0 and np.isfinite(self.pv_cost_b) and self.degradation_cost >= 0):
            err.append("need pv_cost_a > 0, a finite pv_cost_b and degradation_cost >= 0")
        if err:
            raise ValueError("SimbenchCommunity: " + "; ".join(err))

    @property
    def has_storage(self) -> bool:
        return "pv_battery" in self.kinds

    @property
    def profiles(self) -> GridProfiles:
        """The grid's cached :class:`GridProfiles` (loads the grid on first use)."""
        return grid_profiles(self.grid)

    # --------------------------------------------------------------------------- agents
    def columns(self, n: int) -> np.ndarray:
        """(n,) columns of :class:`GridProfiles` (house buses) of agents 0..n-1 (see the module docstring)."""
        return _columns(self, int(n))

    def mapping(self, n: int) -> list[dict]:
        """Agent i's SimBench origin: ``{"agent", "kind", "bus", "bus_name", "loads", "sgens", "storages",
        "pv_kwp", "capacity_kwh"}`` (element indices of the pandapower tables ``net.load`` etc.)."""
        g = self.profiles
        return [dict(agent=f"prosumer_{i}", kind=g.kinds[c], bus=int(g.buses[c]), bus_name=g.bus_names[c],
                     loads=g.loads[c], sgens=g.sgens[c], storages=g.storages[c], pv_kwp=float(g.pv_kwp[c]),
                     capacity_kwh=float(g.capacity_kwh[c]))
                for i, c in enumerate(self.columns(n))]

    # ----------------------------------------------------------------------------- clock
    def window(self, horizon: int, dt_h: float, start_hour: float) -> tuple[int, int, int]:
        """``(offset, k, days)``: quarter-hours from midnight to the first step, quarter-hours per step, and
        the number of start days of the window whose episode fits in the profile year (ValueError if none)."""
        k = _quarters(dt_h, "dt_h")
        if k < 1:
            raise ValueError(f"dt_h: need a positive multiple of 0.25 h, got {dt_h}")
        offset = _quarters(start_hour, "start_hour")
        span = offset + int(horizon) * k  # quarter-hours from the start day's midnight to the episode's end
        fit = (self.profiles.n_steps - span) // STEPS_PER_DAY + 1 - self.first_day  # days that fit
        days = fit if self.n_days is None else min(self.n_days, fit)
        if days < 1 or (self.n_days is not None and self.n_days > fit):
            raise ValueError(f"SimbenchCommunity: an episode of {horizon} steps of {dt_h} h from hour {start_hour} "
                             f"on days first_day={self.first_day} + [0, {self.n_days}) runs past the end of the "
                             f"profile year ({self.profiles.n_steps} quarter-hours); {max(fit, 0)} start days fit")
        return offset, k, days

    def profiles_kw(self, n: int, horizon: int, dt_h: float, start_hour: float,
                    day: int) -> tuple[np.ndarray, np.ndarray]:
        """``(demand, pv)`` (T, n) kW, step means of the quarter-hours, of an episode starting ``start_hour``
        hours after midnight of profile-year day ``day`` (0 = 1 January)."""
        offset, k, _ = self.window(horizon, dt_h, start_hour)
        cols = self.columns(n)
        g = self.profiles
        q0 = int(day) * STEPS_PER_DAY + offset
        if q0 < 0 or q0 + horizon * k > g.n_steps:
            raise ValueError(f"day {day}: the episode runs past the profile year")
        sl = slice(q0, q0 + horizon * k)
        dem = g.demand_kw[sl][:, cols].reshape(horizon, k, len(cols)).mean(axis=1)
        pv = g.pv_kw[sl][:, cols].reshape(horizon, k, len(cols)).mean(axis=1)
        return dem, pv

    def storage_output_kw(self, n: int, horizon: int, dt_h: float, start_hour: float, day: int) -> np.ndarray:
        """(T, n) kW: SimBench's own output of each agent's PV-storage system under its self-consumption
        schedule (step means; 0 for agents without one). For comparison with the agents' battery use."""
        offset, k, _ = self.window(horizon, dt_h, start_hour)
        cols = self.columns(n)
        q0 = int(day) * STEPS_PER_DAY + offset
        out = self.profiles.storage_output_kw[q0:q0 + horizon * k][:, cols]
        return out.reshape(horizon, k, len(cols)).mean(axis=1)

    # ----------------------------------------------------------------------------- fleets
    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        return self.batch(n, horizon, dt_h, start_hour, [rng]).env(0)

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float,
              rngs: Sequence[np.random.Generator]) -> Fleet:
        """E fleets at once (arrays ``(E, T, N)`` / ``(E, N)``); market e's start day from ``rngs[e]``."""
        _, _, days = self.window(horizon, dt_h, start_hour)
        day = np.array([self.first_day + int(r.integers(days)) for r in rngs], dtype=np.int64)
        g, cols = self.profiles, self.columns(n)
        parts = [self.profiles_kw(n, horizon, dt_h, start_hour, int(d)) for d in day]
        demand = np.stack([p[0] for p in parts])
        pmax = np.stack([p[1] for p in parts])
        e_n = len(rngs)
        kind = np.array([g.kinds[c] for c in cols])
        pv = kind != "consumer"
        full = lambda a: np.broadcast_to(np.asarray(a, dtype=float), (e_n, n)).copy()  # noqa: E731
        storage = None
        if self.has_storage:
            cap = g.capacity_kwh[cols]
            storage = Storage(full(cap), full(g.power_kw[cols]), full(g.power_kw[cols]), full(g.eta[cols]),
                              full(g.eta[cols]), full(g.soc_min_kwh[cols]), full(cap), full(g.soc0_kwh[cols]),
                              full(np.where(cap > 0, self.degradation_cost, 0.0)))
        fleet = Fleet(demand_kw=demand, p_max_kw=pmax,
                      ramp_kw=full(np.where(pv, np.maximum(g.pv_kwp[cols], 1e-3), 1.0)),
                      eta=full(np.ones(n)), cost_a=full(np.where(pv, self.pv_cost_a, NO_DER_COST_A)),
                      cost_b=full(np.where(pv, self.pv_cost_b, 0.0)), p0_kw=full(np.zeros(n)),
                      bus=np.broadcast_to(np.arange(1, n + 1), (e_n, n)).copy(),
                      names=tuple(f"prosumer_{i}" for i in range(n)), shed_value=full(np.full(n, np.inf)),
                      storage=storage)
        fleet.validate()
        return fleet


@lru_cache(maxsize=64)
def _columns(gen: SimbenchCommunity, n: int) -> np.ndarray:
    g = gen.profiles
    pools = {k: [j for j, kk in enumerate(g.kinds) if kk == k] for k in SIMBENCH_KINDS}  # by increasing bus
    used = {k: 0 for k in SIMBENCH_KINDS}
    cols = []
    for i in range(n):
        k = gen.kinds[i % len(gen.kinds)]
        if used[k] >= len(pools[k]):
            raise ValueError(f"SimbenchCommunity: agent {i} needs a '{k}' bus but grid {gen.grid} has only "
                             f"{len(pools[k])}; use fewer agents or other kinds")
        cols.append(pools[k][used[k]])
        used[k] += 1
    out = np.array(cols, dtype=np.int64)
    out.setflags(write=False)
    return out
