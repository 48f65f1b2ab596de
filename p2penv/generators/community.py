"""``ProfileCommunity``: a seeded scenario generator built from pvlib PV and BDEW load profiles.

Needs the optional extra ``pip install p2penv[profiles]``. The deterministic shapes (clear-sky PV
per roof plane, BDEW load per profile, for every candidate start day of the window) are computed
once per ``(generator, horizon, dt_h, start_hour)`` and cached; each episode only draws the agents'
sizes, a cloudiness series and load noise from its ``rng`` and scales cached arrays, so resetting
thousands of markets at once costs milliseconds after the first draw.

Clock: the environment's ``start_hour`` and step times are *local standard time* (UTC +
``utc_offset_h``, no daylight saving) at the site; the sun follows that clock. Loads and tariffs
follow the civil wall clock of ``civil_tz`` (default Europe/Berlin, i.e. CEST in summer), because
people do: with ``civil_tz=None`` they follow standard time too.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..market.prices import PriceSeries
from .households import home_batteries
import pandas as pd

from ..market.prosumer import Fleet
from .checks import integer_errors, kinds_errors
from .profiles import (BDEW_PROFILES, CLEAR_SKY_MODELS, CLOUD_DAILY_A, CLOUD_DAILY_B, CLOUD_SIGMA, CLOUD_TAU_H,
                       PV_DERATE, bdew_shape_kw, cloud_factor, episode_days, pv_step_mean_kw_per_kwp)
from .tariffs import TouTariff, WholesaleModel

COMMUNITY_KINDS = ("pv_household", "consumer", "commercial", "flexible_load", "dispatchable", "pv_battery")
DEFAULT_KINDS = ("pv_household", "consumer", "pv_household", "commercial", "pv_household", "flexible_load")


@dataclass(frozen=True)
class ProfileCommunity:
    """Generator ``(n, horizon, dt_h, start_hour, rng) -> Fleet`` of a local energy community.

    Agents cycle through ``kinds``:

    pv_household:  BDEW household load (``household_profile``, default ``h0_dyn``) of
                   ``household_kwh`` a year, rooftop PV of ``pv_kwp`` kWp on one of ``pv_planes``
                   (tilt, azimuth), ramp = kWp (PV is curtailable at will), near-zero cost
                   (a = 0.002-0.006 $/kWh^2, b = 0.00-0.02 $/kWh), eta 0.96.
    consumer:      household load, no DER.
    commercial:    BDEW commerce load (``commercial_profile``, default ``g0``) of ``commercial_kwh``.
    flexible_load: household load that is shed when not bought in the market, at a value of lost
                   load of 0.12-0.28 $/kWh (the price-elastic side of demand).
    dispatchable:  household load plus a 3-6 kW micro-CHP, ramp 1-2.5 kW/step,
                   a = 0.005-0.02 $/kWh^2, b = 0.06-0.14 $/kWh, eta 0.98.

    Time: an episode starts ``start_hour`` hours (local standard time) into a day drawn uniformly
    from ``start_date + [0, n_days)`` days and may run over several days (a week at 1 h or 15 min).
    Weather: one cloudiness series per market (``profiles.cloudiness``: daily Beta clearness with
    AR(1) intra-day variation) multiplies every roof's clear-sky output. Loads get independent
    mean-one lognormal noise ``demand_noise`` per agent and step.

    Per-episode draws from ``rng``, in order: the start day (``integers(n_days)``), ``random((8, n))``
    agent parameters, ``beta(.., days)`` daily clearness, ``standard_normal(T)`` cloud noise,
    ``standard_normal((T, n))`` load noise. ``batch(..., rngs)`` market e equals ``self(..., rngs[e])``
    bit for bit.

    Prices (for environments that use time-varying tariffs): :meth:`retail_tariff` and
    :meth:`wholesale_price` give ``(T,)`` $/kWh arrays on the episode's clock.
    """

    latitude: float = 50.11  # Frankfurt am Main
    longitude: float = 8.68
    altitude: float = 112.0  # m
    utc_offset_h: float = 1.0  # local standard time: CET
    civil_tz: str | None = "Europe/Berlin"  # wall clock of loads and tariffs (DST); None: standard time
    start_date: str = "2025-06-16"  # a Monday in June
    n_days: int = 1  # start day drawn from start_date + [0, n_days)
    kinds: tuple[str, ...] = DEFAULT_KINDS
    pv_kwp: tuple[float, float] = (3.0, 8.0)  # uniform range, kWp
    pv_planes: tuple[tuple[float, float], ...] = ((30.0, 180.0), (30.0, 135.0), (30.0, 225.0))
    clear_sky_model: str = "ineichen"
    pv_derate: float = PV_DERATE
    household_profile: str = "h0_dyn"
    commercial_profile: str = "g0"
    household_kwh: tuple[float, float] = (2000.0, 5000.0)  # uniform range, kWh per year
    commercial_kwh: tuple[float, float] = (10000.0, 30000.0)
    demand_noise: float = 0.15  # lognormal sigma per agent and step
    cloud_daily_a: float = CLOUD_DAILY_A
    cloud_daily_b: float = CLOUD_DAILY_B
    cloud_sigma: float = CLOUD_SIGMA
    cloud_tau_h: float = CLOUD_TAU_H
    tariff: TouTariff = TouTariff()
    wholesale: WholesaleModel = WholesaleModel()

    def __post_init__(self) -> None:
        err = kinds_errors(self.kinds, COMMUNITY_KINDS) + integer_errors("n_days", self.n_days, 1)
        if self.clear_sky_model not in CLEAR_SKY_MODELS:
            err.append(f"clear_sky_model: unknown {self.clear_sky_model!r}; known {CLEAR_SKY_MODELS}")
        for name in ("household_profile", "commercial_profile"):
            if getattr(self, name) not in BDEW_PROFILES:
                err.append(f"{name}: unknown BDEW profile {getattr(self, name)!r}; known {BDEW_PROFILES}")
        for name in ("pv_kwp", "household_kwh", "commercial_kwh"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                err.append(f"{name}: need 0 <= low <= high, got {(lo, hi)}")
        if not self.pv_planes:
            err.append("pv_planes: need at least one (tilt, azimuth)")
        if not (0 < self.pv_derate <= 1 and self.demand_noise >= 0):
            err.append("pv_derate must lie in (0, 1] and demand_noise be >= 0")
        if err:
            raise ValueError("ProfileCommunity: " + "; ".join(err))
        pd.Timestamp(self.start_date)  # raises on a bad date

    # ----------------------------------------------------------------------------- clock
    @property
    def tz(self) -> _dt.timezone:
        """Local standard time of the site (fixed UTC offset)."""
        return _dt.timezone(_dt.timedelta(hours=float(self.utc_offset_h)))

    def episode_times(self, horizon: int, dt_h: float, start_hour: float, day: int = 0) -> pd.DatetimeIndex:
        """(T,) aware step start times (local standard time) of an episode starting on window day ``day``."""
        t0 = pd.Timestamp(self.start_date).tz_localize(self.tz) + pd.Timedelta(days=int(day)) \
            + pd.to_timedelta(float(start_hour), unit="h")
        return t0 + pd.to_timedelta(np.arange(horizon) * float(dt_h), unit="h")

    def civil_times(self, horizon: int, dt_h: float, start_hour: float, day: int = 0) -> pd.DatetimeIndex:
        """(T,) naive wall-clock step start times on ``civil_tz`` (standard time if None)."""
        t = self.episode_times(horizon, dt_h, start_hour, day)
        return (t.tz_convert(self.civil_tz) if self.civil_tz else t).tz_localize(None)

    # ---------------------------------------------------------------------------- prices
    def retail_tariff(self, horizon: int, dt_h: float, start_hour: float, day: int = 0) -> np.ndarray:
        """(T,) $/kWh: the time-of-use tariff ``self.tariff`` at each step start (civil clock).

        With the default tariff (same every day) this does not depend on ``day``; with
        ``n_days > 1`` and a weekday-dependent tariff pass the window day of the episode.
        """
        return self.tariff(self.civil_times(horizon, dt_h, start_hour, day))

    def wholesale_price(self, horizon: int, dt_h: float, start_hour: float,
                        rng: np.random.Generator | None = None, day: int = 0) -> np.ndarray:
        """(T,) $/kWh from ``self.wholesale`` on the civil clock; noise-free when ``rng`` is None.

        Draws ``rng.standard_normal(T)`` when given (use a generator other than the fleet's if the
        fleet draws must stay unchanged).
        """
        return self.wholesale(self.civil_times(horizon, dt_h, start_hour, day), rng, float(dt_h))

    @property
    def has_storage(self) -> bool:
        return "pv_battery" in self.kinds

    def prices(self, horizon: int, dt_h: float, start_hour: float) -> PriceSeries:
        """The environments' per-step tariffs: time-of-use retail for backstop imports, the
        (noise-free) wholesale price for the substation and for backstop exports (capped at retail)."""
        retail = self.retail_tariff(horizon, dt_h, start_hour)
        wholesale = self.wholesale_price(horizon, dt_h, start_hour)
        return PriceSeries(retail, np.minimum(wholesale, retail), wholesale)

    # ----------------------------------------------------------------------------- fleets
    def shapes(self, horizon: int, dt_h: float, start_hour: float) -> tuple[np.ndarray, np.ndarray]:
        """Cached read-only shapes for every window day: clear-sky PV ``(n_days, T, planes)`` kW/kWp
        and load ``(n_days, T, 2)`` kW per annual kWh (column 0 household, column 1 commercial)."""
        return _community_shapes(self, int(horizon), float(dt_h), float(start_hour))

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        return self.batch(n, horizon, dt_h, start_hour, [rng]).env(0)

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float,
              rngs: list[np.random.Generator]) -> Fleet:
        """E fleets at once (arrays ``(E, T, N)`` / ``(E, N)``), market e drawn from ``rngs[e]``."""
        pv_shape, load_shape = self.shapes(horizon, dt_h, start_hour)  # (n_days, T, planes), (n_days, T, 2)
        kinds = np.array([self.kinds[i % len(self.kinds)] for i in range(n)])
        e_n, days = len(rngs), episode_days(horizon, dt_h, start_hour)
        day = np.empty(e_n, dtype=np.int64)
        u = np.empty((e_n, 8, n))
        daily = np.empty((e_n, days))
        eps = np.empty((e_n, horizon))
        z = np.empty((e_n, horizon, n))
        for e, r in enumerate(rngs):  # only the draws are per market; fixed layout
            day[e] = r.integers(self.n_days)
            r.random(out=u[e])
            daily[e] = r.beta(self.cloud_daily_a, self.cloud_daily_b, days)
            r.standard_normal(out=eps[e])
            r.standard_normal(out=z[e])
        # battery draws after all others, so communities without batteries keep their streams
        u_bat = np.stack([r.random((2, n)) for r in rngs], axis=1) if self.has_storage else None
        u = u.transpose(1, 0, 2)  # (8, E, N)
        cloud = cloud_factor(daily, eps, dt_h, start_hour, sigma=self.cloud_sigma, tau_h=self.cloud_tau_h)  # (E, T)

        bat = kinds == "pv_battery"  # a PV household with a home battery (households.home_batteries)
        pv, disp = (kinds == "pv_household") | bat, kinds == "dispatchable"
        com, flex = kinds == "commercial", kinds == "flexible_load"
        h_lo, h_hi = self.household_kwh
        c_lo, c_hi = self.commercial_kwh
        kwh = np.where(com, c_lo + (c_hi - c_lo) * u[0], h_lo + (h_hi - h_lo) * u[0])  # (E, N)
        s = self.demand_noise
        z *= s
        z -= 0.5 * s * s
        noise = np.exp(z, out=z)  # (E, T, N) mean-one lognormal
        demand = np.take(load_shape[day], np.where(com, 1, 0), axis=2)  # (E, T, N)
        demand *= kwh[:, None, :]
        demand *= noise

        kwp = self.pv_kwp[0] + (self.pv_kwp[1] - self.pv_kwp[0]) * u[1]
        plane = np.minimum((u[2] * len(self.pv_planes)).astype(np.int64), len(self.pv_planes) - 1)  # (E, N)
        pmax = np.take_along_axis(pv_shape[day], np.broadcast_to(plane[:, None, :], (e_n, horizon, n)), axis=2)
        pmax *= cloud[:, :, None]
        pmax *= kwp[:, None, :]
        rating = 3.0 + 3.0 * u[1]
        pmax[:, :, ~pv] = 0.0
        pmax[:, :, disp] = rating[:, None, disp]
        ramp = np.select([pv, disp], [kwp, 1.0 + 1.5 * u[3]], default=1.0)
        ramp = np.where(pv & (ramp <= 0), 1.0, ramp)  # a zero-kWp range still needs a positive ramp
        cost_a = np.select([pv, disp], [0.002 + 0.004 * u[4], 0.005 + 0.015 * u[4]], default=0.01)
        cost_b = np.select([pv, disp], [0.02 * u[5], 0.06 + 0.08 * u[5]], default=0.0)
        eta = np.broadcast_to(np.select([pv, disp], [0.96, 0.98], default=1.0), ramp.shape).copy()
        p0 = np.minimum(np.where(disp, 0.5 * rating * u[6], 0.0), pmax[:, 0])
        shed = np.where(flex, 0.12 + 0.16 * u[7], np.inf)
        bus = np.broadcast_to(np.arange(1, n + 1), ramp.shape).copy()
        fleet = Fleet(demand_kw=demand, p_max_kw=pmax, ramp_kw=ramp, eta=eta, cost_a=cost_a, cost_b=cost_b,
                      p0_kw=p0, bus=bus, names=tuple(f"prosumer_{i}" for i in range(n)), shed_value=shed,
                      storage=home_batteries(bat, u_bat) if self.has_storage else None)
        fleet.validate()
        return fleet


@lru_cache(maxsize=64)
def _community_shapes(gen: ProfileCommunity, horizon: int, dt_h: float, start_hour: float):
    """The slow part (pvlib + demandlib), once per generator and episode clock."""
    starts = tuple(gen.episode_times(1, dt_h, start_hour, d)[0] for d in range(gen.n_days))
    pv = pv_step_mean_kw_per_kwp(starts, horizon, dt_h, float(gen.latitude), float(gen.longitude),
                                 tuple((float(t), float(a)) for t, a in gen.pv_planes), gen.clear_sky_model,
                                 float(gen.altitude), float(gen.pv_derate))
    civil = pd.DatetimeIndex(np.concatenate([np.asarray(gen.civil_times(horizon, dt_h, start_hour, d))
                                             for d in range(gen.n_days)]))
    load = np.stack([bdew_shape_kw(p, civil, dt_h).reshape(gen.n_days, horizon)
                     for p in (gen.household_profile, gen.commercial_profile)], axis=-1)
    pv = np.ascontiguousarray(np.moveaxis(pv, 0, -1))
    for a in (pv, load):
        a.setflags(write=False)
    return pv, load
