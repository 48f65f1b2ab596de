"""Seeded scenario generators: demand and PV shapes plus DER parameters, made in the package.

No downloads: shapes are stylised but physically sensible (residential double-peak demand, a
clear-sky PV bell scaled by a random cloudiness), and every random draw comes from the ``rng``
handed in, so the same seed gives the same fleet bit for bit.

A generator is any callable ``(n, horizon, dt_h, start_hour, rng) -> Fleet``; new ones need no
change to the environment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..market.prosumer import Fleet
from ..market.storage import Storage

KINDS = ("pv_household", "dispatchable", "consumer", "flexible_load", "pv_battery")
# Beyond sigma = 1 a step's demand is e^{+-2} = 0.14-7.4x its shape at two sigma, and it grows as e^{sigma z}
# (sigma 50 gave demands, and rewards, of 1e38): no household profile varies like that.
MAX_DEMAND_NOISE = 1.0


def hours_of_day(horizon: int, dt_h: float, start_hour: float) -> np.ndarray:
    """(T,) hour of day at the start of each step."""
    return (start_hour + dt_h * np.arange(horizon)) % 24.0


def residential_demand_shape(hours: np.ndarray) -> np.ndarray:
    """Unit-mean-ish residential shape: night base, 8 h morning and 19 h evening peaks."""
    morning = np.exp(-0.5 * ((hours - 8.0) / 1.5) ** 2)
    evening = np.exp(-0.5 * ((hours - 19.0) / 2.0) ** 2)
    return 0.45 + 0.5 * morning + 0.9 * evening


def pv_shape(hours: np.ndarray, sunrise: float = 6.0, sunset: float = 18.0) -> np.ndarray:
    """Clear-sky PV output per kW peak: a sine bell between sunrise and sunset, zero at night."""
    x = (hours - sunrise) / (sunset - sunrise)
    return np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 1.5, 0.0)


@dataclass(frozen=True)
class HouseholdMix:
    """Default generator: agents cycle through PV households, dispatchable units and consumers.

    pv_household: demand 0.6-1.4 kW mean, PV 3-6 kWp, ramp = rating (PV is curtailable at will),
                  near-zero cost (a = 0.002-0.006 $/kWh^2, b = 0.00-0.02 $/kWh), eta 0.96.
    dispatchable: small demand, 3-6 kW micro-CHP/genset, ramp 1-2.5 kW/step,
                  a = 0.005-0.02 $/kWh^2, b = 0.06-0.14 $/kWh, eta 0.98.
    consumer:     demand 0.8-2.0 kW mean, no DER.
    flexible_load: like a consumer, but sheds demand it cannot buy in the market at a value of lost
                  load of 0.12-0.28 $/kWh (below retail): the price-elastic side of demand.
    pv_battery:   a PV household with a battery of 5-13.5 kWh (a home battery's range), C/2 power
                  both ways, 95 % one-way efficiencies (90 % round trip), SOC in [5 %, 95 %] of
                  capacity starting uniformly inside, 0.02 $/kWh throughput degradation. Not in
                  the default kinds; a mix that lists it has storage (``has_storage``) and every
                  agent gets the 3-dim action (see ``p2penv.market.storage``).
    Noise: multiplicative lognormal demand noise (sigma 0.1) and one cloudiness factor per day.
    """

    kinds: tuple[str, ...] = KINDS[:4]
    demand_noise: float = 0.1  # sigma of the lognormal demand noise, in [0, MAX_DEMAND_NOISE]

    def __post_init__(self) -> None:
        if isinstance(self.kinds, str) or not isinstance(self.kinds, (tuple, list)) or not self.kinds:
            raise ValueError(f"HouseholdMix: kinds: need a non-empty tuple of {KINDS}, got {self.kinds!r}")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise ValueError(f"HouseholdMix: kinds: unknown {bad}; known {KINDS}")
        object.__setattr__(self, "kinds", tuple(self.kinds))  # frozen and hashable, as registry scenarios need
        sigma = self.demand_noise
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
                or not 0.0 <= sigma <= MAX_DEMAND_NOISE:
            raise ValueError(f"HouseholdMix: demand_noise: the lognormal sigma must lie in [0, {MAX_DEMAND_NOISE}], "
                             f"got {sigma!r}")

    @property
    def has_storage(self) -> bool:
        return "pv_battery" in self.kinds

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        return self.batch(n, horizon, dt_h, start_hour, [rng]).env(0)

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float,
              rngs: list[np.random.Generator]) -> Fleet:
        """E fleets at once, market e drawn from ``rngs[e]`` exactly as ``self(..., rngs[e])``.

        Only the draws are per market (three generator calls each); the shapes are one vector
        computation over ``(E, T, N)``, so an autoreset of 4,096 markets costs milliseconds.
        """
        kinds = np.array([self.kinds[i % len(self.kinds)] for i in range(n)])
        hours = hours_of_day(horizon, dt_h, start_hour)
        shape = residential_demand_shape(hours)[:, None]
        # battery draws come after the others, so mixes without batteries keep their streams
        draws = [(r.random((8, n)), r.standard_normal((horizon, n)), r.random(),
                  r.random((2, n)) if self.has_storage else None) for r in rngs]
        u = np.stack([d[0] for d in draws], axis=1)  # (8, E, N): fixed layout => stable across code changes
        noise = np.exp(self.demand_noise * np.stack([d[1] for d in draws]))  # (E, T, N)
        cloud = 0.6 + 0.4 * np.array([d[2] for d in draws])[:, None, None]  # one cloudiness per day
        bat = kinds == "pv_battery"
        pv, disp = (kinds == "pv_household") | bat, kinds == "dispatchable"
        cons = (kinds == "consumer") | (kinds == "flexible_load")
        flex = kinds == "flexible_load"

        def pick(a, b, other):  # per kind: PV households a, dispatchable units b, everyone else `other`
            return np.where(pv, a, np.where(disp, b, other))

        mean_d = pick(0.6 + 0.8 * u[0], 0.2 + 0.3 * u[0], np.where(cons, 0.8 + 1.2 * u[0], 0.0))
        demand = shape * mean_d[:, None, :] * noise
        kwp = 3.0 + 3.0 * u[1]
        rating = 3.0 + 3.0 * u[2]
        pmax = np.where(pv, pv_shape(hours)[:, None] * cloud * kwp[:, None, :], 0.0)
        pmax = np.where(disp, rating[:, None, :], pmax)
        ramp = pick(kwp, 1.0 + 1.5 * u[3], 1.0)
        cost_a = pick(0.002 + 0.004 * u[4], 0.005 + 0.015 * u[4], 0.01)
        cost_b = pick(0.02 * u[5], 0.06 + 0.08 * u[5], 0.0)
        eta = np.broadcast_to(pick(0.96, 0.98, 1.0), ramp.shape).copy()
        p0 = np.where(disp, 0.5 * rating * u[6], 0.0)
        p0 = np.minimum(p0, pmax[:, 0])
        names = tuple(f"prosumer_{i}" for i in range(n))
        shed = np.where(flex, 0.12 + 0.16 * u[7], np.inf)
        bus = np.broadcast_to(np.arange(1, n + 1), ramp.shape).copy()
        storage = home_batteries(bat, np.stack([d[3] for d in draws], axis=1)) if self.has_storage else None
        return Fleet(demand, pmax, ramp, eta, cost_a, cost_b, p0, bus, names, shed, storage)  # validated by the env


def home_batteries(bat: np.ndarray, u: np.ndarray) -> Storage:
    """Batteries of the ``bat`` agents (N,) from uniform draws ``u`` (2, E, N); the others have none.

    5-13.5 kWh (a home battery's range), C/2 power both ways, 95 % one-way efficiencies (90 %
    round trip), SOC in [5 %, 95 %] of capacity starting uniformly inside, 0.02 $/kWh of throughput.
    """
    cap = np.where(bat, 5.0 + 8.5 * u[0], 0.0)
    power = 0.5 * cap
    eta = np.ones_like(cap) * np.where(bat, 0.95, 1.0)
    lo, hi = 0.05 * cap, 0.95 * cap
    return Storage(cap, power, power.copy(), eta, eta.copy(), lo, hi, lo + u[1] * (hi - lo),
                   np.where(bat, 0.02, 0.0) * np.ones_like(cap))
