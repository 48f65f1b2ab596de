"""Time-varying prices as functions of timestamps, in $/kWh: a time-of-use retail tariff and a
seeded wholesale price model. Pure numpy (no optional dependency).

Timestamps: anything ``np.asarray(..., dtype="datetime64[m]")`` takes (numpy datetime64, strings,
a naive pandas ``DatetimeIndex``); an aware pandas index is read on its own wall clock. Each step is
priced by the time at which it *begins*.

**Retail, time of use** (:class:`TouTariff`, defaults, every day of the week unless
``weekend_peak=False``):

=========  ====================================  ========
period     hours (local wall clock)              $/kWh
=========  ====================================  ========
off-peak   22:00-07:00                           0.18
shoulder   07:00-17:00 and 21:00-22:00           0.26
peak       17:00-21:00                           0.38
=========  ====================================  ========

(below the default ``MarketConfig.price_cap`` of 0.40 $/kWh, above its feed-in tariff 0.05).

**Wholesale** (:class:`WholesaleModel`, defaults): with ``h`` the hour of day, ``doy`` the day of
the year and ``g(h; c, w) = exp(-d(h, c)^2 / (2 w^2))`` a Gaussian bump on the 24-hour circle
(``d`` the circular hour distance),

``season = cos(2 pi (doy - 15) / 365.25)`` (+1 mid-January, -1 mid-July),

``price = base (1 + seasonal season) + morning g(h; 8, 1.5) + evening g(h; 19, 2)
- solar_dip (1 - season) / 2 g(h; 13, 2.5) - weekend [Sat/Sun] + x_t``, floored at ``floor``,

with base 0.08, seasonal 0.20 (relative), morning 0.025, evening 0.045, solar_dip 0.03 (the
summer midday "duck" dip), weekend 0.01, floor 0.01 $/kWh, and ``x`` a stationary AR(1) noise of
standard deviation ``noise_sigma = 0.012`` $/kWh and correlation time ``noise_tau_h = 4`` h
(``x_t = phi x_{t-1} + sigma sqrt(1 - phi^2) e_t``, ``phi = exp(-dt / tau)``; ``x_0 = sigma e_0``),
drawn as ``rng.standard_normal(T)``. Without an ``rng`` the noise-free shape is returned.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _minutes(times) -> np.ndarray:
    tz = getattr(times, "tz", None)
    if tz is not None:  # aware pandas index: its own wall clock
        times = times.tz_localize(None)
    return np.atleast_1d(np.asarray(times, dtype="datetime64[m]"))


def hour_of_day(times) -> np.ndarray:
    """(T,) fractional hour of day (wall clock)."""
    t = _minutes(times)
    return (t - t.astype("datetime64[D]")).astype(np.int64) / 60.0


def day_of_week(times) -> np.ndarray:
    """(T,) weekday, Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday)."""
    return (_minutes(times).astype("datetime64[D]").astype(np.int64) + 3) % 7


def day_of_year(times) -> np.ndarray:
    """(T,) day of the year, 1 = 1 January."""
    d = _minutes(times).astype("datetime64[D]")
    return (d - d.astype("datetime64[Y]")).astype(np.int64) + 1


def _step_hours(times, dt_h: float | None) -> float:
    if dt_h is not None:
        return float(dt_h)
    t = _minutes(times)
    if t.size < 2:
        raise ValueError("times: a single timestamp needs an explicit dt_h")
    return float((t[1] - t[0]).astype(np.int64)) / 60.0


@dataclass(frozen=True)
class TouTariff:
    """Time-of-use retail tariff ($/kWh); periods are whole hours ``[start, end)``, wrapping midnight.

    Hours not in a peak or shoulder period are off-peak. ``weekend_peak=False`` charges the peak
    hours of Saturday and Sunday at the shoulder rate.
    """

    off_peak: float = 0.18
    shoulder: float = 0.26
    peak: float = 0.38
    peak_hours: tuple[tuple[int, int], ...] = ((17, 21),)
    shoulder_hours: tuple[tuple[int, int], ...] = ((7, 17), (21, 22))
    weekend_peak: bool = True

    def hourly(self, weekend: bool = False) -> np.ndarray:
        """(24,) $/kWh for each hour of the day."""
        table = np.full(24, float(self.off_peak))
        for rate, periods in ((self.shoulder, self.shoulder_hours),
                              (self.shoulder if weekend and not self.weekend_peak else self.peak, self.peak_hours)):
            for a, b in periods:
                if not (float(a).is_integer() and float(b).is_integer() and 0 <= a <= 24 and 0 <= b <= 24):
                    raise ValueError(f"TouTariff: period ({a}, {b}) must be whole hours in [0, 24]")
                hrs = (np.arange(int(a), int(a) + (int(b) - int(a)) % 24)) % 24
                table[hrs] = rate
        return table

    def __call__(self, times) -> np.ndarray:
        """(T,) retail price ($/kWh) in force at each timestamp."""
        h = np.floor(hour_of_day(times)).astype(int) % 24
        price = self.hourly(False)[h]
        if not self.weekend_peak:
            price = np.where(day_of_week(times) >= 5, self.hourly(True)[h], price)
        return price


def tou_retail_price(times, tariff: TouTariff | None = None) -> np.ndarray:
    """(T,) $/kWh of the time-of-use tariff (default :class:`TouTariff`) at ``times``."""
    return (tariff or TouTariff())(times)


def _bump(h: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.abs(h - centre) % 24.0
    d = np.minimum(d, 24.0 - d)
    return np.exp(-0.5 * (d / width) ** 2)


@dataclass(frozen=True)
class WholesaleModel:
    """Seeded wholesale price model ($/kWh); the formula and defaults are in the module docstring."""

    base: float = 0.08
    seasonal: float = 0.20
    season_peak_doy: float = 15.0
    morning: float = 0.025
    evening: float = 0.045
    solar_dip: float = 0.03
    weekend: float = 0.01
    noise_sigma: float = 0.012
    noise_tau_h: float = 4.0
    floor: float = 0.01

    def shape(self, times) -> np.ndarray:
        """(T,) noise-free price before the floor."""
        h = hour_of_day(times)
        season = np.cos(2.0 * np.pi * (day_of_year(times) - self.season_peak_doy) / 365.25)
        return (self.base * (1.0 + self.seasonal * season)
                + self.morning * _bump(h, 8.0, 1.5) + self.evening * _bump(h, 19.0, 2.0)
                - self.solar_dip * 0.5 * (1.0 - season) * _bump(h, 13.0, 2.5)
                - self.weekend * (day_of_week(times) >= 5))

    def noise(self, eps: np.ndarray, dt_h: float) -> np.ndarray:
        """AR(1) noise ``(..., T)`` from standard normals ``eps (..., T)``."""
        phi = float(np.exp(-dt_h / self.noise_tau_h))
        u = self.noise_sigma * np.sqrt(1.0 - phi * phi) * np.asarray(eps, dtype=float)
        u[..., :1] = self.noise_sigma * np.asarray(eps, dtype=float)[..., :1]
        from scipy.signal import lfilter  # here, not at import: scipy.signal pulls scipy.stats (slow)

        return lfilter([1.0], [1.0, -phi], u, axis=-1)

    def __call__(self, times, rng: np.random.Generator | None = None, dt_h: float | None = None) -> np.ndarray:
        """(T,) wholesale price ($/kWh); ``rng`` None gives the noise-free shape (still floored)."""
        p = self.shape(times)
        if rng is not None and self.noise_sigma > 0:
            p = p + self.noise(rng.standard_normal(p.shape[-1]), _step_hours(times, dt_h))
        return np.maximum(p, self.floor)


def wholesale_price(times, rng: np.random.Generator | None = None, model: WholesaleModel | None = None,
                    dt_h: float | None = None) -> np.ndarray:
    """(T,) $/kWh of :class:`WholesaleModel` (defaults) at ``times``; seeded noise when ``rng`` given."""
    return (model or WholesaleModel())(times, rng, dt_h)
